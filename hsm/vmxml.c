#include "hsm/vmxml.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "common/xalloc.h"

/* Largest XML we accept to parse; a domain with 64 disks of 256-deep
 * chains stays far below it. */
#define VMXML_INPUT_MAX (16u * 1024 * 1024)
/* Deepest chain we walk; qcow2 chains this long are a bug somewhere. */
#define VMXML_CHAIN_MAX 1024
/* Largest 1-3 letter target index: a..z, aa..zz, aaa..zzz. */
#define TARGET_INDEX_MAX (26u + 26u * 26u + 26u * 26u * 26u)

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init_once(void)
{
	xmlInitParser();
}

static void xml_init(void)
{
	pthread_once(&xml_once, xml_init_once);
}

/* ---- names ---------------------------------------------------------------- */

const char *hsm_disk_format_name(enum hsm_disk_format format)
{
	switch (format) {
	case HSM_DISK_FORMAT_RAW:
		return "raw";
	case HSM_DISK_FORMAT_QCOW2:
		return "qcow2";
	case HSM_DISK_FORMAT_UNKNOWN:
		break;
	}
	return "unknown";
}

const char *hsm_disk_bus_name(enum hsm_disk_bus bus)
{
	switch (bus) {
	case HSM_DISK_BUS_VIRTIO:
		return "virtio";
	case HSM_DISK_BUS_SATA:
		return "sata";
	case HSM_DISK_BUS_SCSI:
		return "scsi";
	}
	return "unknown";
}

const char *hsm_vmxml_mirror_name(enum hsm_vmxml_mirror mirror)
{
	switch (mirror) {
	case HSM_VMXML_MIRROR_NONE:
		return "none";
	case HSM_VMXML_MIRROR_SYNCING:
		return "syncing";
	case HSM_VMXML_MIRROR_READY:
		return "ready";
	case HSM_VMXML_MIRROR_ABORTING:
		return "aborting";
	case HSM_VMXML_MIRROR_PIVOTING:
		return "pivoting";
	case HSM_VMXML_MIRROR_OTHER:
		break;
	}
	return "other";
}

static enum hsm_disk_format format_parse(const char *s)
{
	if (!s) {
		return HSM_DISK_FORMAT_UNKNOWN;
	}
	if (strcmp(s, "qcow2") == 0) {
		return HSM_DISK_FORMAT_QCOW2;
	}
	if (strcmp(s, "raw") == 0) {
		return HSM_DISK_FORMAT_RAW;
	}
	return HSM_DISK_FORMAT_UNKNOWN;
}

bool hsm_vm_name_valid(const char *name)
{
	size_t len;

	if (!name) {
		return false;
	}
	len = strlen(name);
	if (len == 0 || len > HSM_VM_NAME_MAX || name[0] == '.' || name[0] == '-') {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '+' ||
		      c == '-')) {
			return false;
		}
	}
	return true;
}

static const char *bus_prefix(enum hsm_disk_bus bus)
{
	return bus == HSM_DISK_BUS_VIRTIO ? "vd" : "sd";
}

int hsm_vmxml_target_name(enum hsm_disk_bus bus, size_t index,
			  char out[HSM_VMXML_TARGET_MAX], struct pk_error *err)
{
	char letters[4];
	size_t n = 0;
	size_t v = index;

	if (bus != HSM_DISK_BUS_VIRTIO && bus != HSM_DISK_BUS_SATA &&
	    bus != HSM_DISK_BUS_SCSI) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "unknown disk bus %d", (int)bus);
	}
	if (index >= TARGET_INDEX_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "disk index %zu has no target name", index);
	}
	/* Bijective base 26: 0 -> a, 25 -> z, 26 -> aa. */
	do {
		letters[n++] = (char)('a' + v % 26);
		v = v / 26;
	} while (v-- > 0 && n < sizeof(letters));
	snprintf(out, HSM_VMXML_TARGET_MAX, "%s", bus_prefix(bus));
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(out);
		out[l] = letters[n - 1 - i];
		out[l + 1] = '\0';
	}
	return 0;
}

/* A target we accept: vd or sd followed by 1-3 lowercase letters. With
 * prefix NULL either prefix is fine. */
static bool target_valid(const char *t, const char *prefix)
{
	size_t len;

	if (!t) {
		return false;
	}
	len = strlen(t);
	if (len < 3 || len > 5) {
		return false;
	}
	if (prefix ? strncmp(t, prefix, 2) != 0
		   : (strncmp(t, "vd", 2) != 0 && strncmp(t, "sd", 2) != 0 &&
		      strncmp(t, "hd", 2) != 0)) {
		return false;
	}
	for (size_t i = 2; i < len; i++) {
		if (t[i] < 'a' || t[i] > 'z') {
			return false;
		}
	}
	return true;
}

/* Printable ASCII only: no control characters (XML 1.0 cannot carry most
 * of them, and none belong in a path or a kernel command line). */
static bool text_valid(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p > 0x7e) {
			return false;
		}
	}
	return true;
}

static int check_text(const char *field, const char *s, size_t max, struct pk_error *err)
{
	if (!text_valid(s)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s contains a control or non-ASCII character", field);
	}
	if (strlen(s) > max) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "%s is longer than %zu characters", field, max);
	}
	return 0;
}

static int check_path(const char *field, const char *path, struct pk_error *err)
{
	int r;

	if (!path || path[0] != '/') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s must be an absolute path", field);
	}
	r = check_text(field, path, PATH_MAX - 1, err);
	if (r < 0) {
		return r;
	}
	return 0;
}

/* ---- writing XML ------------------------------------------------------------ */

static xmlNodePtr xnode_new(const char *name)
{
	xmlNodePtr n = xmlNewNode(NULL, BAD_CAST name);

	if (!n) {
		abort();
	}
	return n;
}

/* A child element; text (escaped on output) may be NULL. */
static xmlNodePtr xchild(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
	xmlNodePtr n = xmlNewTextChild(parent, ns, BAD_CAST name, BAD_CAST text);

	if (!n) {
		abort();
	}
	return n;
}

/* An attribute; the value is escaped on output. */
static void xprop(xmlNodePtr node, const char *name, const char *value)
{
	if (!xmlNewProp(node, BAD_CAST name, BAD_CAST value)) {
		abort();
	}
}

/* Serialises the tree under root (indented, no declaration, trailing
 * newline) and frees it. */
static char *xml_dump_and_free(xmlNodePtr root)
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

static void add_seclabel_norelabel(xmlNodePtr source)
{
	xmlNodePtr sl = xchild(source, NULL, "seclabel", NULL);

	xprop(sl, "model", "dac");
	xprop(sl, "relabel", "no");
}

static void add_drive_elements(xmlNodePtr vm, xmlNsPtr ns, const struct hsm_drive_id *drives,
			       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		xmlNodePtr d = xchild(vm, ns, "drive", NULL);

		xprop(d, "target", drives[i].target);
		xprop(d, "domain", drives[i].domain_id);
		xprop(d, "image", drives[i].image_id);
		xprop(d, "volume", drives[i].volume_id);
	}
}

static int check_drive_id(size_t i, const struct hsm_drive_id *id, struct pk_error *err)
{
	char field[48];
	int r;

	snprintf(field, sizeof(field), "disks[%zu].domain_id", i);
	r = pk_uuid_check(field, id->domain_id, err);
	if (r < 0) {
		return r;
	}
	snprintf(field, sizeof(field), "disks[%zu].image_id", i);
	r = pk_uuid_check(field, id->image_id, err);
	if (r < 0) {
		return r;
	}
	snprintf(field, sizeof(field), "disks[%zu].volume_id", i);
	return pk_uuid_check(field, id->volume_id, err);
}

static bool target_taken(const struct hsm_drive_id *ids, size_t n, const char *target)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ids[i].target, target) == 0) {
			return true;
		}
	}
	return false;
}

/* Validates the disks and fills ids[] with their final targets. */
static int resolve_disks(const struct hsm_vm_spec *spec, struct hsm_drive_id *ids,
			 struct pk_error *err)
{
	char field[48];
	int r;

	/* Explicit targets first, so automatic ones never take them. */
	for (size_t i = 0; i < spec->ndisks; i++) {
		const struct hsm_vm_disk *d = &spec->disks[i];

		memset(&ids[i], 0, sizeof(ids[i]));
		snprintf(field, sizeof(field), "disks[%zu].path", i);
		r = check_path(field, d->path, err);
		if (r < 0) {
			return r;
		}
		if (d->format != HSM_DISK_FORMAT_RAW && d->format != HSM_DISK_FORMAT_QCOW2) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "disks[%zu].format must be raw or qcow2", i);
		}
		if (d->bus != HSM_DISK_BUS_VIRTIO && d->bus != HSM_DISK_BUS_SATA &&
		    d->bus != HSM_DISK_BUS_SCSI) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "disks[%zu].bus must be virtio, sata or scsi", i);
		}
		r = check_drive_id(i, &d->id, err);
		if (r < 0) {
			return r;
		}
		if (memchr(d->id.target, '\0', sizeof(d->id.target)) == NULL) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "disks[%zu].target is not terminated", i);
		}
		ids[i] = d->id;
		if (d->id.target[0] == '\0') {
			continue;
		}
		if (!target_valid(d->id.target, bus_prefix(d->bus))) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "disks[%zu].target '%s' is not a %s target "
					    "(%sa, %sb, ...)", i, d->id.target,
					    hsm_disk_bus_name(d->bus), bus_prefix(d->bus),
					    bus_prefix(d->bus));
		}
		if (target_taken(ids, i, d->id.target)) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EEXIST,
					    "disks[%zu].target '%s' is used twice", i,
					    d->id.target);
		}
	}
	for (size_t i = 0; i < spec->ndisks; i++) {
		if (ids[i].target[0] != '\0') {
			continue;
		}
		for (size_t k = 0;; k++) {
			char name[HSM_VMXML_TARGET_MAX];

			r = hsm_vmxml_target_name(spec->disks[i].bus, k, name, err);
			if (r < 0) {
				return r;
			}
			if (!target_taken(ids, spec->ndisks, name)) {
				memcpy(ids[i].target, name, sizeof(name));
				break;
			}
		}
	}
	return 0;
}

static int check_spec(const struct hsm_vm_spec *spec, struct pk_error *err)
{
	int r;

	if (!spec) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "no VM spec");
	}
	if (!hsm_vm_name_valid(spec->name)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "VM name '%.80s' is invalid: use 1-%d characters of "
				    "[A-Za-z0-9_.+-], not starting with '.' or '-'",
				    spec->name ? spec->name : "", HSM_VM_NAME_MAX);
	}
	if (spec->uuid) {
		r = pk_uuid_check("uuid", spec->uuid, err);
		if (r < 0) {
			return r;
		}
	}
	if (spec->memory_mib == 0 || spec->memory_mib > HSM_VM_MEMORY_MIB_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "memory_mib %u is out of range (1..%u)", spec->memory_mib,
				    HSM_VM_MEMORY_MIB_MAX);
	}
	if (spec->vcpus == 0 || spec->vcpus > HSM_VM_VCPUS_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "vcpus %u is out of range (1..%d)", spec->vcpus,
				    HSM_VM_VCPUS_MAX);
	}
	if (spec->type != HSM_VM_TYPE_KVM && spec->type != HSM_VM_TYPE_QEMU) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "domain type must be kvm or qemu");
	}
	if (spec->io != HSM_DISK_IO_NATIVE && spec->io != HSM_DISK_IO_THREADS &&
	    spec->io != HSM_DISK_IO_URING) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "disk io mode must be native, threads or io_uring");
	}
	if (spec->ndisks > HSM_VM_DISKS_MAX || (spec->ndisks > 0 && !spec->disks)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "a VM has at most %d disks", HSM_VM_DISKS_MAX);
	}
	if (spec->kernel) {
		r = check_path("kernel", spec->kernel, err);
		if (r < 0) {
			return r;
		}
	}
	if ((spec->initrd || spec->cmdline) && !spec->kernel) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "initrd and cmdline need a kernel");
	}
	if (spec->initrd) {
		r = check_path("initrd", spec->initrd, err);
		if (r < 0) {
			return r;
		}
	}
	if (spec->cmdline) {
		r = check_text("cmdline", spec->cmdline, 4096, err);
		if (r < 0) {
			return r;
		}
	}
	if (spec->serial_log) {
		r = check_path("serial_log", spec->serial_log, err);
		if (r < 0) {
			return r;
		}
	}
	return 0;
}

static const char *io_name(enum hsm_disk_io io)
{
	switch (io) {
	case HSM_DISK_IO_THREADS:
		return "threads";
	case HSM_DISK_IO_URING:
		return "io_uring";
	case HSM_DISK_IO_NATIVE:
		break;
	}
	return "native";
}

static void add_disk(xmlNodePtr devices, const struct hsm_vm_spec *spec,
		     const struct hsm_vm_disk *d, const struct hsm_drive_id *id)
{
	xmlNodePtr disk = xchild(devices, NULL, "disk", NULL);
	xmlNodePtr n;

	xprop(disk, "type", d->block ? "block" : "file");
	xprop(disk, "device", "disk");

	n = xchild(disk, NULL, "driver", NULL);
	xprop(n, "name", "qemu");
	xprop(n, "type", hsm_disk_format_name(d->format));
	xprop(n, "cache", "none");
	xprop(n, "io", io_name(spec->io));
	xprop(n, "error_policy", "stop");
	if (spec->discard) {
		xprop(n, "discard", "unmap");
	}

	n = xchild(disk, NULL, "source", NULL);
	xprop(n, d->block ? "dev" : "file", d->path);
	add_seclabel_norelabel(n);

	n = xchild(disk, NULL, "target", NULL);
	xprop(n, "dev", id->target);
	xprop(n, "bus", hsm_disk_bus_name(d->bus));
}

int hsm_vmxml_domain_build(const struct hsm_vm_spec *spec, char **ret_xml,
			   struct pk_error *err)
{
	_cleanup_free_ struct hsm_drive_id *ids = NULL;
	xmlNodePtr root, n, os, devices, vm;
	xmlNsPtr ns;
	bool sata = false, scsi = false;
	char num[32];
	int r;

	r = check_spec(spec, err);
	if (r < 0) {
		return r;
	}
	ids = pk_xcalloc(spec->ndisks ? spec->ndisks : 1, sizeof(*ids));
	r = resolve_disks(spec, ids, err);
	if (r < 0) {
		return r;
	}
	xml_init();

	root = xnode_new("domain");
	xprop(root, "type", spec->type == HSM_VM_TYPE_KVM ? "kvm" : "qemu");
	xchild(root, NULL, "name", spec->name);
	if (spec->uuid) {
		xchild(root, NULL, "uuid", spec->uuid);
	}

	n = xchild(root, NULL, "metadata", NULL);
	vm = xchild(n, NULL, "vm", NULL);
	ns = xmlNewNs(vm, BAD_CAST HSM_VMXML_NS, BAD_CAST HSM_VMXML_NS_PREFIX);
	if (!ns) {
		abort();
	}
	xmlSetNs(vm, ns);
	add_drive_elements(vm, ns, ids, spec->ndisks);

	snprintf(num, sizeof(num), "%u", spec->memory_mib);
	n = xchild(root, NULL, "memory", num);
	xprop(n, "unit", "MiB");
	snprintf(num, sizeof(num), "%u", spec->vcpus);
	xchild(root, NULL, "vcpu", num);

	os = xchild(root, NULL, "os", NULL);
	xchild(os, NULL, "type", "hvm");
	if (spec->kernel) {
		xchild(os, NULL, "kernel", spec->kernel);
		if (spec->initrd) {
			xchild(os, NULL, "initrd", spec->initrd);
		}
		if (spec->cmdline) {
			xchild(os, NULL, "cmdline", spec->cmdline);
		}
	} else {
		n = xchild(os, NULL, "boot", NULL);
		xprop(n, "dev", "hd");
	}
	n = xchild(root, NULL, "features", NULL);
	xchild(n, NULL, "acpi", NULL);
	xchild(n, NULL, "apic", NULL);
	xchild(root, NULL, "on_poweroff", "destroy");
	xchild(root, NULL, "on_reboot", "restart");
	xchild(root, NULL, "on_crash", "destroy");

	devices = xchild(root, NULL, "devices", NULL);
	for (size_t i = 0; i < spec->ndisks; i++) {
		add_disk(devices, spec, &spec->disks[i], &ids[i]);
		sata = sata || spec->disks[i].bus == HSM_DISK_BUS_SATA;
		scsi = scsi || spec->disks[i].bus == HSM_DISK_BUS_SCSI;
	}
	n = xchild(devices, NULL, "controller", NULL);
	xprop(n, "type", "usb");
	xprop(n, "model", "none");
	if (sata) {
		n = xchild(devices, NULL, "controller", NULL);
		xprop(n, "type", "sata");
		xprop(n, "index", "0");
	}
	if (scsi) {
		n = xchild(devices, NULL, "controller", NULL);
		xprop(n, "type", "scsi");
		xprop(n, "index", "0");
		xprop(n, "model", "virtio-scsi");
	}
	if (spec->serial_log) {
		xmlNodePtr serial = xchild(devices, NULL, "serial", NULL);

		xprop(serial, "type", "file");
		n = xchild(serial, NULL, "source", NULL);
		xprop(n, "path", spec->serial_log);
		n = xchild(serial, NULL, "target", NULL);
		xprop(n, "port", "0");
	}
	n = xchild(devices, NULL, "channel", NULL);
	xprop(n, "type", "unix");
	n = xchild(n, NULL, "target", NULL);
	xprop(n, "type", "virtio");
	xprop(n, "name", "org.qemu.guest_agent.0");
	n = xchild(devices, NULL, "memballoon", NULL);
	xprop(n, "model", "none");

	*ret_xml = xml_dump_and_free(root);
	return 0;
}

/* ---- reading XML -------------------------------------------------------------- */

static bool is_elem(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static bool in_no_ns(const xmlNode *n)
{
	return n->ns == NULL;
}

static bool in_our_ns(const xmlNode *n)
{
	return n->ns && n->ns->href && strcmp((const char *)n->ns->href, HSM_VMXML_NS) == 0;
}

/* First element child named name in no namespace, or NULL. */
static xmlNodePtr child_elem(const xmlNode *parent, const char *name)
{
	for (xmlNodePtr c = parent->children; c; c = c->next) {
		if (is_elem(c, name) && in_no_ns(c)) {
			return c;
		}
	}
	return NULL;
}

/* An attribute as a heap string (free()), or NULL. */
static char *attr_dup(const xmlNode *n, const char *name)
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

/* Copies an attribute into buf; false when absent or too long. */
static bool attr_copy(const xmlNode *n, const char *name, char *buf, size_t len)
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

/* Parses a non-negative int attribute; -1 when absent; -2 when invalid. */
static int attr_index(const xmlNode *n, const char *name)
{
	_cleanup_free_ char *s = attr_dup(n, name);
	char *end = NULL;
	long v;

	if (!s) {
		return -1;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > INT_MAX) {
		return -2;
	}
	return (int)v;
}

static bool text_copy(const xmlNode *n, char *buf, size_t len)
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

static xmlDocPtr parse_doc(const char *what, const char *xml, struct pk_error *err)
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
	xml_init();
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

static void layer_release(struct hsm_vmxml_layer *l)
{
	free(l->path);
	l->path = NULL;
}

static void disk_release(struct hsm_vmxml_disk *d)
{
	for (size_t i = 0; i < d->nlayers; i++) {
		layer_release(&d->layers[i]);
	}
	free(d->layers);
	layer_release(&d->mirror_dest);
	memset(d, 0, sizeof(*d));
}

void hsm_vmxml_domain_release(struct hsm_vmxml_domain *dom)
{
	if (!dom) {
		return;
	}
	for (size_t i = 0; i < dom->ndisks; i++) {
		disk_release(&dom->disks[i]);
	}
	free(dom->disks);
	free(dom->drives);
	memset(dom, 0, sizeof(*dom));
}

/*
 * Reads the image described by a <source> element (and the type= and
 * <format> of its holder). Returns 0 and fills *l; 1 when the source has
 * no file/dev (an empty drive); <0 on error.
 */
static int read_source(const char *target, const xmlNode *holder, const xmlNode *source,
		       enum hsm_disk_format format, int index, struct hsm_vmxml_layer *l,
		       struct pk_error *err)
{
	_cleanup_free_ char *type = attr_dup(holder, "type");
	char *path;

	memset(l, 0, sizeof(*l));
	l->index = -1;
	if (!source) {
		return 1;
	}
	path = attr_dup(source, "file");
	l->block = false;
	if (!path) {
		path = attr_dup(source, "dev");
		l->block = path != NULL;
	}
	if (!path) {
		return 1;
	}
	if (type && strcmp(type, "block") == 0) {
		l->block = true;
	}
	if (index == -2) {
		free(path);
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "disk '%s': invalid index attribute", target);
	}
	l->path = path;
	l->format = format;
	l->index = index;
	return 0;
}

static enum hsm_disk_format format_of(const xmlNode *elem_with_format)
{
	xmlNodePtr f = child_elem(elem_with_format, "format");
	_cleanup_free_ char *t = f ? attr_dup(f, "type") : NULL;

	return format_parse(t);
}

static void push_layer(struct hsm_vmxml_disk *d, struct hsm_vmxml_layer *l)
{
	d->layers = pk_xrealloc(d->layers, (d->nlayers + 1) * sizeof(*d->layers));
	d->layers[d->nlayers++] = *l;
	memset(l, 0, sizeof(*l));
}

static int parse_mirror(struct hsm_vmxml_disk *d, const xmlNode *m, struct pk_error *err)
{
	_cleanup_free_ char *job = attr_dup(m, "job");
	_cleanup_free_ char *ready = attr_dup(m, "ready");
	xmlNodePtr src = child_elem(m, "source");
	int r;

	if (!ready) {
		d->mirror = HSM_VMXML_MIRROR_SYNCING;
	} else if (strcmp(ready, "yes") == 0) {
		d->mirror = HSM_VMXML_MIRROR_READY;
	} else if (strcmp(ready, "abort") == 0) {
		d->mirror = HSM_VMXML_MIRROR_ABORTING;
	} else if (strcmp(ready, "pivot") == 0) {
		d->mirror = HSM_VMXML_MIRROR_PIVOTING;
	} else {
		d->mirror = HSM_VMXML_MIRROR_OTHER;
	}
	if (!job || strcmp(job, "copy") == 0) {
		d->mirror_job = HSM_VMXML_MIRROR_JOB_COPY; /* libvirt omits job= for copy */
	} else if (strcmp(job, "active-commit") == 0) {
		d->mirror_job = HSM_VMXML_MIRROR_JOB_ACTIVE_COMMIT;
	} else {
		d->mirror_job = HSM_VMXML_MIRROR_JOB_OTHER;
	}
	r = read_source(d->target, m, src, format_of(m), src ? attr_index(src, "index") : -1,
			&d->mirror_dest, err);
	if (r < 0) {
		return r;
	}
	if (r == 1) {
		/* Old libvirt wrote the destination as mirror's file= attribute. */
		d->mirror_dest.path = attr_dup(m, "file");
		d->mirror_dest.index = -1;
	}
	return 0;
}

static int parse_disk(const xmlNode *node, struct hsm_vmxml_disk *d, struct pk_error *err)
{
	xmlNodePtr target = child_elem(node, "target");
	xmlNodePtr driver = child_elem(node, "driver");
	xmlNodePtr source = child_elem(node, "source");
	xmlNodePtr mirror = child_elem(node, "mirror");
	_cleanup_free_ char *dtype = driver ? attr_dup(driver, "type") : NULL;
	struct hsm_vmxml_layer l;
	const xmlNode *bs;
	int r;

	memset(d, 0, sizeof(*d));
	if (!target || !attr_copy(target, "dev", d->target, sizeof(d->target)) ||
	    d->target[0] == '\0') {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "a disk has no (or an overlong) <target dev=>");
	}
	if (!attr_copy(target, "bus", d->bus, sizeof(d->bus))) {
		d->bus[0] = '\0';
	}
	r = read_source(d->target, node, source, format_parse(dtype),
			source ? attr_index(source, "index") : -1, &l, err);
	if (r < 0) {
		goto fail;
	}
	if (r == 1) {
		/* No medium: no chain to report. */
		d->chain_complete = true;
	} else {
		push_layer(d, &l);
		bs = child_elem(node, "backingStore");
		while (true) {
			if (!bs) {
				d->chain_complete = false;
				break;
			}
			r = read_source(d->target, bs, child_elem(bs, "source"), format_of(bs),
					attr_index(bs, "index"), &l, err);
			if (r < 0) {
				goto fail;
			}
			if (r == 1) {
				/* <backingStore/>: the end of a known chain. */
				d->chain_complete = true;
				break;
			}
			if (d->nlayers >= VMXML_CHAIN_MAX) {
				layer_release(&l);
				r = pk_error_set(err, PK_E_ILLEGAL, ELOOP,
						 "disk '%s': backing chain deeper than %d",
						 d->target, VMXML_CHAIN_MAX);
				goto fail;
			}
			push_layer(d, &l);
			bs = child_elem(bs, "backingStore");
		}
	}
	if (mirror) {
		r = parse_mirror(d, mirror, err);
		if (r < 0) {
			goto fail;
		}
	}
	return 0;
fail:
	disk_release(d);
	return r;
}

/* Reads the <drive> children of our <vm> element into a heap array. */
static int parse_drives(const xmlNode *vm, struct hsm_drive_id **ret_drives, size_t *ret_n,
			struct pk_error *err)
{
	_cleanup_free_ struct hsm_drive_id *drives = NULL;
	size_t n = 0;

	for (xmlNodePtr c = vm->children; c; c = c->next) {
		struct hsm_drive_id id;

		if (!is_elem(c, "drive") || !(in_no_ns(c) || in_our_ns(c))) {
			continue;
		}
		memset(&id, 0, sizeof(id));
		if (!attr_copy(c, "target", id.target, sizeof(id.target)) ||
		    !target_valid(id.target, NULL)) {
			return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
					    "poolkeeper metadata: drive %zu has no valid target", n);
		}
		if (!attr_copy(c, "domain", id.domain_id, sizeof(id.domain_id)) ||
		    !attr_copy(c, "image", id.image_id, sizeof(id.image_id)) ||
		    !attr_copy(c, "volume", id.volume_id, sizeof(id.volume_id)) ||
		    !pk_uuid_valid(id.domain_id) || !pk_uuid_valid(id.image_id) ||
		    !pk_uuid_valid(id.volume_id)) {
			return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
					    "poolkeeper metadata: drive '%s' lacks a valid "
					    "domain/image/volume id", id.target);
		}
		for (size_t i = 0; i < n; i++) {
			if (strcmp(drives[i].target, id.target) == 0) {
				return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
						    "poolkeeper metadata: drive '%s' "
						    "listed twice", id.target);
			}
		}
		if (n >= HSM_VM_DISKS_MAX) {
			return pk_error_set(err, PK_E_ILLEGAL, E2BIG,
					    "poolkeeper metadata: more than %d drives",
					    HSM_VM_DISKS_MAX);
		}
		drives = pk_xrealloc(drives, (n + 1) * sizeof(*drives));
		drives[n++] = id;
	}
	*ret_drives = pk_steal_pointer(&drives);
	*ret_n = n;
	return 0;
}

static int parse_domain_root(const xmlNode *root, struct hsm_vmxml_domain *dom,
			     struct pk_error *err)
{
	xmlNodePtr name, uuid, meta, devices;
	int id;
	int r;

	if (!is_elem(root, "domain") || !in_no_ns(root)) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "domain XML: the root element is not <domain>");
	}
	if (!attr_copy(root, "type", dom->type, sizeof(dom->type))) {
		dom->type[0] = '\0';
	}
	id = attr_index(root, "id");
	dom->id = id >= 0 ? id : -1;
	name = child_elem(root, "name");
	if (!name || !text_copy(name, dom->name, sizeof(dom->name)) || dom->name[0] == '\0') {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "domain XML: no <name>, or one longer than %d characters",
				    HSM_VM_NAME_MAX);
	}
	uuid = child_elem(root, "uuid");
	if (uuid && (!text_copy(uuid, dom->uuid, sizeof(dom->uuid)) ||
		     !pk_uuid_valid(dom->uuid))) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "domain '%s': <uuid> is not a lowercase UUID", dom->name);
	}
	meta = child_elem(root, "metadata");
	if (meta) {
		for (xmlNodePtr c = meta->children; c; c = c->next) {
			if (is_elem(c, "vm") && in_our_ns(c)) {
				r = parse_drives(c, &dom->drives, &dom->ndrives, err);
				if (r < 0) {
					pk_error_prefix(err, "domain '%s'", dom->name);
					return r;
				}
				dom->has_metadata = true;
				break;
			}
		}
	}
	devices = child_elem(root, "devices");
	if (!devices) {
		return 0;
	}
	for (xmlNodePtr c = devices->children; c; c = c->next) {
		_cleanup_free_ char *device = NULL;
		struct hsm_vmxml_disk d;

		if (!is_elem(c, "disk") || !in_no_ns(c)) {
			continue;
		}
		device = attr_dup(c, "device");
		if (device && strcmp(device, "disk") != 0) {
			continue;
		}
		r = parse_disk(c, &d, err);
		if (r < 0) {
			pk_error_prefix(err, "domain '%s'", dom->name);
			return r;
		}
		dom->disks = pk_xrealloc(dom->disks, (dom->ndisks + 1) * sizeof(*dom->disks));
		dom->disks[dom->ndisks++] = d;
	}
	return 0;
}

int hsm_vmxml_domain_parse(const char *xml, struct hsm_vmxml_domain *ret,
			   struct pk_error *err)
{
	struct hsm_vmxml_domain dom;
	xmlDocPtr doc;
	int r;

	doc = parse_doc("domain", xml, err);
	if (!doc) {
		return -EBADMSG;
	}
	memset(&dom, 0, sizeof(dom));
	dom.id = -1;
	r = parse_domain_root(xmlDocGetRootElement(doc), &dom, err);
	xmlFreeDoc(doc);
	if (r < 0) {
		hsm_vmxml_domain_release(&dom);
		return r;
	}
	*ret = dom;
	return 0;
}

const struct hsm_vmxml_disk *hsm_vmxml_domain_disk(const struct hsm_vmxml_domain *dom,
						   const char *target)
{
	for (size_t i = 0; dom && target && i < dom->ndisks; i++) {
		if (strcmp(dom->disks[i].target, target) == 0) {
			return &dom->disks[i];
		}
	}
	return NULL;
}

const struct hsm_drive_id *hsm_vmxml_domain_drive(const struct hsm_vmxml_domain *dom,
						  const char *target)
{
	for (size_t i = 0; dom && target && i < dom->ndrives; i++) {
		if (strcmp(dom->drives[i].target, target) == 0) {
			return &dom->drives[i];
		}
	}
	return NULL;
}

int hsm_vmxml_disk_find_path(const struct hsm_vmxml_disk *disk, const char *path)
{
	for (size_t i = 0; disk && path && i < disk->nlayers; i++) {
		if (strcmp(disk->layers[i].path, path) == 0) {
			return (int)i;
		}
	}
	return -ENOENT;
}

int hsm_vmxml_disk_layer_ref(const struct hsm_vmxml_disk *disk, size_t pos,
			     char *buf, size_t len, struct pk_error *err)
{
	int n;

	if (!disk || pos >= disk->nlayers) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "disk '%s' has no layer %zu", disk ? disk->target : "?",
				    pos);
	}
	if (disk->layers[pos].index < 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENOENT,
				    "disk '%s': layer %zu ('%s') has no libvirt index "
				    "(is the VM running?)", disk->target, pos,
				    disk->layers[pos].path);
	}
	n = snprintf(buf, len, "%s[%d]", disk->target, disk->layers[pos].index);
	if (n < 0 || (size_t)n >= len) {
		return pk_error_set(err, PK_E_INTERNAL, ENOBUFS,
				    "buffer too small for a layer name");
	}
	return 0;
}

/* ---- snapshot ------------------------------------------------------------- */

int hsm_vmxml_snapshot_build(const struct hsm_vmxml_domain *live,
			     const struct hsm_vmxml_snapshot_disk *disks, size_t n,
			     char **ret_xml, struct pk_error *err)
{
	xmlNodePtr root, list;
	int r;

	if (!live || n == 0 || !disks) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "a snapshot needs at least one disk");
	}
	for (size_t i = 0; i < n; i++) {
		char field[48];

		if (!disks[i].target || !hsm_vmxml_domain_disk(live, disks[i].target)) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENOENT,
					    "VM '%s' has no disk '%.32s'", live->name,
					    disks[i].target ? disks[i].target : "");
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(disks[k].target, disks[i].target) == 0) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EEXIST,
						    "disk '%s' is listed twice in the "
						    "snapshot", disks[i].target);
			}
		}
		snprintf(field, sizeof(field), "snapshot disk '%s' path", disks[i].target);
		r = check_path(field, disks[i].path, err);
		if (r < 0) {
			return r;
		}
	}
	xml_init();
	root = xnode_new("domainsnapshot");
	list = xchild(root, NULL, "disks", NULL);
	for (size_t i = 0; i < live->ndisks; i++) {
		const struct hsm_vmxml_snapshot_disk *s = NULL;
		xmlNodePtr d, c;

		for (size_t k = 0; k < n; k++) {
			if (strcmp(disks[k].target, live->disks[i].target) == 0) {
				s = &disks[k];
			}
		}
		d = xchild(list, NULL, "disk", NULL);
		xprop(d, "name", live->disks[i].target);
		if (!s) {
			xprop(d, "snapshot", "no");
			continue;
		}
		xprop(d, "snapshot", "external");
		xprop(d, "type", s->block ? "block" : "file");
		c = xchild(d, NULL, "driver", NULL);
		xprop(c, "type", "qcow2");
		c = xchild(d, NULL, "source", NULL);
		xprop(c, s->block ? "dev" : "file", s->path);
		add_seclabel_norelabel(c);
	}
	*ret_xml = xml_dump_and_free(root);
	return 0;
}

/* ---- metadata ------------------------------------------------------------- */

int hsm_vmxml_metadata_build(const struct hsm_drive_id *drives, size_t n,
			     char **ret_xml, struct pk_error *err)
{
	xmlNodePtr vm;
	int r;

	if (n > HSM_VM_DISKS_MAX || (n > 0 && !drives)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "a VM has at most %d drives", HSM_VM_DISKS_MAX);
	}
	for (size_t i = 0; i < n; i++) {
		if (memchr(drives[i].target, '\0', sizeof(drives[i].target)) == NULL ||
		    !target_valid(drives[i].target, NULL)) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "drive %zu has no valid target", i);
		}
		r = check_drive_id(i, &drives[i], err);
		if (r < 0) {
			return r;
		}
		if (target_taken(drives, i, drives[i].target)) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EEXIST,
					    "drive '%s' is listed twice", drives[i].target);
		}
	}
	xml_init();
	vm = xnode_new("vm");
	add_drive_elements(vm, NULL, drives, n);
	*ret_xml = xml_dump_and_free(vm);
	return 0;
}

int hsm_vmxml_metadata_parse(const char *xml, struct hsm_drive_id **ret_drives,
			     size_t *ret_n, struct pk_error *err)
{
	xmlDocPtr doc = parse_doc("metadata", xml, err);
	xmlNodePtr root;
	int r;

	if (!doc) {
		return -EBADMSG;
	}
	root = xmlDocGetRootElement(doc);
	if (!is_elem(root, "vm") || !(in_no_ns(root) || in_our_ns(root))) {
		xmlFreeDoc(doc);
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "poolkeeper metadata: the root element is not <vm>");
	}
	r = parse_drives(root, ret_drives, ret_n, err);
	xmlFreeDoc(doc);
	return r;
}

/* ---- editing a persistent definition -------------------------------------- */

static char *doc_dump(xmlDocPtr doc)
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

static xmlNodePtr find_disk_elem(xmlNodePtr root, const char *target)
{
	xmlNodePtr devices = child_elem(root, "devices");

	for (xmlNodePtr c = devices ? devices->children : NULL; c; c = c->next) {
		_cleanup_free_ char *device = NULL, *dev = NULL;
		xmlNodePtr t;

		if (!is_elem(c, "disk") || !in_no_ns(c)) {
			continue;
		}
		device = attr_dup(c, "device");
		t = child_elem(c, "target");
		dev = t ? attr_dup(t, "dev") : NULL;
		if ((!device || !strcmp(device, "disk")) && dev && !strcmp(dev, target)) {
			return c;
		}
	}
	return NULL;
}

static xmlNodePtr find_drive_elem(xmlNodePtr root, const char *target)
{
	xmlNodePtr meta = child_elem(root, "metadata");

	for (xmlNodePtr vm = meta ? meta->children : NULL; vm; vm = vm->next) {
		if (!is_elem(vm, "vm") || !in_our_ns(vm)) {
			continue;
		}
		for (xmlNodePtr d = vm->children; d; d = d->next) {
			_cleanup_free_ char *t = NULL;

			if (!is_elem(d, "drive") || !in_our_ns(d)) {
				continue;
			}
			t = attr_dup(d, "target");
			if (t && !strcmp(t, target)) {
				return d;
			}
		}
	}
	return NULL;
}

int hsm_vmxml_disk_source_set(const char *xml, const char *target, const char *path,
			      enum hsm_disk_format format, const char *volume_id,
			      char **ret_xml, struct pk_error *err)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr root, disk, source, driver, drive, c, next;
	int r;

	r = check_path("the new disk source", path, err);
	if (r == 0 && (!target || !target_valid(target, NULL))) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "'%s' is not a disk target",
				 target ? target : "");
	}
	if (r == 0 && !pk_uuid_valid(volume_id)) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "volume id '%s' is not a lowercase UUID", volume_id ? volume_id : "");
	}
	if (r < 0) {
		return r;
	}
	doc = parse_doc("domain", xml, err);
	if (!doc) {
		return -EBADMSG;
	}
	root = xmlDocGetRootElement(doc);
	if (!is_elem(root, "domain") || !in_no_ns(root)) {
		r = pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				 "domain XML: the root element is not <domain>");
		goto out;
	}
	disk = find_disk_elem(root, target);
	source = disk ? child_elem(disk, "source") : NULL;
	drive = find_drive_elem(root, target);
	if (!disk || !source) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "the domain has no disk '%s' with a "
				 "source", target);
		goto out;
	}
	if (!drive) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				 "the domain's poolkeeper metadata has no drive '%s'", target);
		goto out;
	}
	xmlSetProp(source, BAD_CAST(xmlHasProp(source, BAD_CAST "dev") ? "dev" : "file"),
		   BAD_CAST path);
	driver = child_elem(disk, "driver");
	if (driver) {
		xmlSetProp(driver, BAD_CAST "type", BAD_CAST hsm_disk_format_name(format));
	}
	/* libvirt detects the new chain from the image headers at the next start. */
	for (c = disk->children; c; c = next) {
		next = c->next;
		if (is_elem(c, "backingStore") && in_no_ns(c)) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		}
	}
	xmlSetProp(drive, BAD_CAST "volume", BAD_CAST volume_id);
	*ret_xml = doc_dump(doc);
out:
	xmlFreeDoc(doc);
	return r;
}
