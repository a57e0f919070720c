#include "hsm/xmldoc.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlsave.h>

#include "common/xalloc.h"
#include "hsm/vmxml.h"

/* Largest XML we accept to parse; a domain with 64 disks of 256-deep
 * chains stays far below it. */
#define VMXML_INPUT_MAX (16u * 1024 * 1024)

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init_once(void)
{
	xmlInitParser();
}

void hsm_xml_init(void)
{
	pthread_once(&xml_once, xml_init_once);
}

/* ---- writing XML ------------------------------------------------------------ */

xmlNodePtr hsm_xml_node_new(const char *name)
{
	xmlNodePtr n = xmlNewNode(NULL, BAD_CAST name);

	if (!n) {
		abort();
	}
	return n;
}

xmlNodePtr hsm_xml_child_new(xmlNodePtr parent, xmlNsPtr ns, const char *name,
			     const char *text)
{
	xmlNodePtr n = xmlNewTextChild(parent, ns, BAD_CAST name, BAD_CAST text);

	if (!n) {
		abort();
	}
	return n;
}

void hsm_xml_prop_new(xmlNodePtr node, const char *name, const char *value)
{
	if (!xmlNewProp(node, BAD_CAST name, BAD_CAST value)) {
		abort();
	}
}

char *hsm_xml_tree_dump_and_free(xmlNodePtr root)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlBufferPtr buf = xmlBufferCreate();
	xmlSaveCtxtPtr save;
	char *out;

	if (!doc || !buf) {
		abort();
	}
	xmlDocSetRootElement(doc, root);
	save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
	if (!save) {
		abort();
	}
	if (xmlSaveDoc(save, doc) < 0) {
		abort();
	}
	xmlSaveClose(save);
	out = pk_xstrdup((const char *)xmlBufferContent(buf));
	xmlBufferFree(buf);
	xmlFreeDoc(doc);
	return out;
}

char *hsm_xml_doc_dump(xmlDocPtr doc)
{
	xmlBufferPtr buf = xmlBufferCreate();
	xmlSaveCtxtPtr save;
	char *out;

	if (!buf) {
		abort();
	}
	/* No re-indenting: libvirt's own whitespace text nodes are kept. */
	save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_NO_DECL);
	if (!save || xmlSaveDoc(save, doc) < 0) {
		abort();
	}
	xmlSaveClose(save);
	out = pk_xstrdup((const char *)xmlBufferContent(buf));
	xmlBufferFree(buf);
	return out;
}

/* ---- reading XML -------------------------------------------------------------- */

bool hsm_xml_is_elem(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

bool hsm_xml_in_no_ns(const xmlNode *n)
{
	return n->ns == NULL;
}

bool hsm_xml_in_our_ns(const xmlNode *n)
{
	return n->ns && n->ns->href && strcmp((const char *)n->ns->href, HSM_VMXML_NS) == 0;
}

xmlNodePtr hsm_xml_child_elem(const xmlNode *parent, const char *name)
{
	for (xmlNodePtr c = parent->children; c; c = c->next) {
		if (hsm_xml_is_elem(c, name) && hsm_xml_in_no_ns(c)) {
			return c;
		}
	}
	return NULL;
}

char *hsm_xml_attr_dup(const xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(n, BAD_CAST name);
	char *s;

	if (!v) {
		return NULL;
	}
	s = pk_xstrdup((const char *)v);
	xmlFree(v);
	return s;
}

bool hsm_xml_attr_copy(const xmlNode *n, const char *name, char *buf, size_t len)
{
	xmlChar *v = xmlGetNoNsProp(n, BAD_CAST name);
	bool ok;

	if (!v) {
		return false;
	}
	ok = strlen((const char *)v) < len;
	if (ok) {
		memcpy(buf, v, strlen((const char *)v) + 1);
	}
	xmlFree(v);
	return ok;
}

int hsm_xml_attr_index(const xmlNode *n, const char *name, bool *ret_present, int *ret_value,
		       struct pk_error *err)
{
	_cleanup_free_ char *s = hsm_xml_attr_dup(n, name);
	char *end = NULL;
	long v;

	if (!s) {
		*ret_present = false;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > INT_MAX) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "attribute %s='%.64s' is not an integer in 0..%d", name, s,
				    INT_MAX);
	}
	*ret_present = true;
	*ret_value = (int)v;
	return 0;
}

bool hsm_xml_text_copy(const xmlNode *n, char *buf, size_t len)
{
	xmlChar *v = xmlNodeGetContent(n);
	bool ok;

	if (!v) {
		return false;
	}
	ok = strlen((const char *)v) < len;
	if (ok) {
		memcpy(buf, v, strlen((const char *)v) + 1);
	}
	xmlFree(v);
	return ok;
}

xmlDocPtr hsm_xml_doc_parse(const char *what, const char *xml, struct pk_error *err)
{
	xmlParserCtxtPtr ctxt;
	xmlDocPtr doc;
	size_t len;

	if (!xml) {
		pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "no %s XML", what);
		return NULL;
	}
	len = strlen(xml);
	if (len > VMXML_INPUT_MAX) {
		pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
			     "%s XML is larger than %u bytes", what, VMXML_INPUT_MAX);
		return NULL;
	}
	hsm_xml_init();
	ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		abort();
	}
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, what, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		char msg[160] = "unknown error";
		size_t l;

		if (e && e->message) {
			snprintf(msg, sizeof(msg), "%s", e->message);
			l = strlen(msg);
			while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == ' ')) {
				msg[--l] = '\0';
			}
		}
		pk_error_set(err, PK_E_ILLEGAL, EBADMSG, "malformed %s XML (line %d): %s",
			     what, e ? e->line : 0, msg);
		xmlFreeParserCtxt(ctxt);
		return NULL;
	}
	xmlFreeParserCtxt(ctxt);
	/* libvirt never writes a DTD; refusing one rules out entity tricks. */
	if (doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc)) {
		xmlFreeDoc(doc);
		pk_error_set(err, PK_E_ILLEGAL, EBADMSG, "%s XML has a DTD or no root", what);
		return NULL;
	}
	return doc;
}
