/*
 * hsm/xmldoc.h — the libxml2 toolkit of hsm/vmxml*.c, and of them only:
 * the rest of hsmd speaks hsm/vmxml.h and never sees a libxml2 type.
 *
 * Building: nodes, child elements and attributes are created here, and a
 * finished tree or document is serialised into a heap string. Allocation
 * failures inside libxml2 abort, as pk_x* allocations do (common/xalloc.h).
 * Reading: a document is parsed with the safety checks every input gets
 * (size limit, no network, no DTD), then walked with the element,
 * attribute and text helpers below.
 *
 * Ownership: every char * result is a heap string the caller frees with
 * free(); a parsed document is freed with xmlFreeDoc().
 * Thread-safety: reentrant; callers MUST call hsm_xml_init() before they
 * create the first node (hsm_xml_doc_parse calls it itself).
 */
#ifndef HSM_XMLDOC_H
#define HSM_XMLDOC_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "common/error.h"

/* Initialises libxml2 once per process (pthread_once); cheap afterwards. */
void hsm_xml_init(void);

/* ---- writing ------------------------------------------------------------ */

/* A new element without a parent (the root of a tree). */
xmlNodePtr hsm_xml_node_new(const char *name);

/* A child element of parent in namespace ns (may be NULL); text (escaped on
 * output) may be NULL. */
xmlNodePtr hsm_xml_child_new(xmlNodePtr parent, xmlNsPtr ns, const char *name,
			     const char *text);

/* An attribute; the value is escaped on output. */
void hsm_xml_prop_new(xmlNodePtr node, const char *name, const char *value);

/* Serialises the tree under root (indented, no declaration, trailing
 * newline) and frees it. */
char *hsm_xml_tree_dump_and_free(xmlNodePtr root);

/* Serialises doc as it is (no re-indenting, no declaration); doc stays the
 * caller's. */
char *hsm_xml_doc_dump(xmlDocPtr doc);

/* ---- reading ------------------------------------------------------------ */

/*
 * Parses xml (`what` names it in messages: "domain", "metadata"). Refuses
 * NULL (INVALID_ARGUMENT), an input larger than 16 MiB (INVALID_ARGUMENT),
 * malformed XML, a DTD and a document without a root (ILLEGAL). Returns
 * the document, or NULL with err filled.
 */
xmlDocPtr hsm_xml_doc_parse(const char *what, const char *xml, struct pk_error *err);

/* True when n is an element named name (in any namespace). */
bool hsm_xml_is_elem(const xmlNode *n, const char *name);
bool hsm_xml_in_no_ns(const xmlNode *n);
/* True when n is in namespace HSM_VMXML_NS (hsm/vmxml.h). */
bool hsm_xml_in_our_ns(const xmlNode *n);

/* First element child named name in no namespace, or NULL. */
xmlNodePtr hsm_xml_child_elem(const xmlNode *parent, const char *name);

/* An attribute (in no namespace) as a heap string, or NULL. */
char *hsm_xml_attr_dup(const xmlNode *n, const char *name);

/* Copies an attribute into buf; false when absent or too long. */
bool hsm_xml_attr_copy(const xmlNode *n, const char *name, char *buf, size_t len);

/*
 * Reads a non-negative int attribute (in no namespace): 0 with *ret_present
 * false when absent, or true and the number in *ret_value; ILLEGAL (err set)
 * when present but not a number in 0..INT_MAX. Outputs are written only on
 * success.
 */
int hsm_xml_attr_index(const xmlNode *n, const char *name, bool *ret_present, int *ret_value,
		       struct pk_error *err);

/* Copies the text content of n into buf; false when absent or too long. */
bool hsm_xml_text_copy(const xmlNode *n, char *buf, size_t len);

#endif
