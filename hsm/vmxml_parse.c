#include "hsm/vmxml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "common/xalloc.h"
#include "hsm/vmxml_internal.h"
#include "hsm/xmldoc.h"

/* Deepest chain we walk; qcow2 chains this long are a bug somewhere. */
#define VMXML_CHAIN_MAX 1024

/* ---- domain XML ---------------------------------------------------------- */

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
 * <format> of its holder; its libvirt index= on index_of, NULL for none).
 * Returns 0 and fills *l; 1 when the source has no file/dev (an empty
 * drive); <0 on error.
 */
static int read_source(const char *target, const xmlNode *holder, const xmlNode *source,
		       enum hsm_disk_format format, const xmlNode *index_of,
		       struct hsm_vmxml_layer *l, struct pk_error *err)
{
	_cleanup_free_ char *type = hsm_xml_attr_dup(holder, "type");
	bool has_index = false;
	int index = -1;
	char *path;

	memset(l, 0, sizeof(*l));
	l->index = -1;
	if (!source) {
		return 1;
	}
	path = hsm_xml_attr_dup(source, "file");
	l->block = false;
	if (!path) {
		path = hsm_xml_attr_dup(source, "dev");
		l->block = path != NULL;
	}
	if (!path) {
		return 1;
	}
	if (type && strcmp(type, "block") == 0) {
		l->block = true;
	}
	if (index_of && hsm_xml_attr_index(index_of, "index", &has_index, &index, err) < 0) {
		free(path);
		pk_error_prefix(err, "disk '%s': invalid index attribute", target);
		return -EBADMSG;
	}
	l->path = path;
	l->format = format;
	l->index = has_index ? index : -1;
	return 0;
}

static enum hsm_disk_format format_of(const xmlNode *elem_with_format)
{
	xmlNodePtr f = hsm_xml_child_elem(elem_with_format, "format");
	_cleanup_free_ char *t = f ? hsm_xml_attr_dup(f, "type") : NULL;

	return format_parse(t);
}

static void push_layer(struct hsm_vmxml_disk *d, struct hsm_vmxml_layer *l)
{
	d->layers = pk_xgrow(d->layers, NULL, d->nlayers + 1, sizeof(*d->layers));
	d->layers[d->nlayers++] = *l;
	memset(l, 0, sizeof(*l));
}

static int parse_mirror(struct hsm_vmxml_disk *d, const xmlNode *m, struct pk_error *err)
{
	_cleanup_free_ char *job = hsm_xml_attr_dup(m, "job");
	_cleanup_free_ char *ready = hsm_xml_attr_dup(m, "ready");
	xmlNodePtr src = hsm_xml_child_elem(m, "source");
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
	r = read_source(d->target, m, src, format_of(m), src, &d->mirror_dest, err);
	if (r < 0) {
		return r;
	}
	if (r == 1) {
		/* Old libvirt wrote the destination as mirror's file= attribute. */
		d->mirror_dest.path = hsm_xml_attr_dup(m, "file");
		d->mirror_dest.index = -1;
	}
	return 0;
}

static int parse_disk(const xmlNode *node, struct hsm_vmxml_disk *d, struct pk_error *err)
{
	xmlNodePtr target = hsm_xml_child_elem(node, "target");
	xmlNodePtr driver = hsm_xml_child_elem(node, "driver");
	xmlNodePtr source = hsm_xml_child_elem(node, "source");
	xmlNodePtr mirror = hsm_xml_child_elem(node, "mirror");
	_cleanup_free_ char *dtype = driver ? hsm_xml_attr_dup(driver, "type") : NULL;
	struct hsm_vmxml_layer l;
	const xmlNode *bs;
	int r;

	memset(d, 0, sizeof(*d));
	if (!target || !hsm_xml_attr_copy(target, "dev", d->target, sizeof(d->target)) ||
	    d->target[0] == '\0') {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "a disk has no (or an overlong) <target dev=>");
	}
	if (!hsm_xml_attr_copy(target, "bus", d->bus, sizeof(d->bus))) {
		d->bus[0] = '\0';
	}
	r = read_source(d->target, node, source, format_parse(dtype), source, &l, err);
	if (r < 0) {
		goto fail;
	}
	if (r == 1) {
		/* No medium: no chain to report. */
		d->chain_complete = true;
	} else {
		push_layer(d, &l);
		bs = hsm_xml_child_elem(node, "backingStore");
		while (true) {
			if (!bs) {
				d->chain_complete = false;
				break;
			}
			r = read_source(d->target, bs, hsm_xml_child_elem(bs, "source"),
					format_of(bs), bs, &l, err);
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
			bs = hsm_xml_child_elem(bs, "backingStore");
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
	size_t n = 0, cap = 0;

	for (xmlNodePtr c = vm->children; c; c = c->next) {
		struct hsm_drive_id id;

		if (!hsm_xml_is_elem(c, "drive") ||
		    !(hsm_xml_in_no_ns(c) || hsm_xml_in_our_ns(c))) {
			continue;
		}
		memset(&id, 0, sizeof(id));
		if (!hsm_xml_attr_copy(c, "target", id.target, sizeof(id.target)) ||
		    !hsm_vmxml_target_valid(id.target, NULL)) {
			return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
					    "poolkeeper metadata: drive %zu has no valid target", n);
		}
		if (!hsm_xml_attr_copy(c, "domain", id.domain_id, sizeof(id.domain_id)) ||
		    !hsm_xml_attr_copy(c, "image", id.image_id, sizeof(id.image_id)) ||
		    !hsm_xml_attr_copy(c, "volume", id.volume_id, sizeof(id.volume_id)) ||
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
		drives = pk_xgrow(drives, &cap, n + 1, sizeof(*drives));
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
	bool has_id = false;
	int id = -1;
	int r;

	if (!hsm_xml_is_elem(root, "domain") || !hsm_xml_in_no_ns(root)) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "domain XML: the root element is not <domain>");
	}
	if (!hsm_xml_attr_copy(root, "type", dom->type, sizeof(dom->type))) {
		dom->type[0] = '\0';
	}
	/* id= only tells a running domain's number: one that does not parse
	 * counts as none rather than refusing the definition. */
	if (hsm_xml_attr_index(root, "id", &has_id, &id, NULL) < 0 || !has_id) {
		id = -1;
	}
	dom->id = id;
	name = hsm_xml_child_elem(root, "name");
	if (!name || !hsm_xml_text_copy(name, dom->name, sizeof(dom->name)) ||
	    dom->name[0] == '\0') {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "domain XML: no <name>, or one longer than %d characters",
				    HSM_VM_NAME_MAX);
	}
	uuid = hsm_xml_child_elem(root, "uuid");
	if (uuid && (!hsm_xml_text_copy(uuid, dom->uuid, sizeof(dom->uuid)) ||
		     !pk_uuid_valid(dom->uuid))) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "domain '%s': <uuid> is not a lowercase UUID", dom->name);
	}
	meta = hsm_xml_child_elem(root, "metadata");
	if (meta) {
		for (xmlNodePtr c = meta->children; c; c = c->next) {
			if (hsm_xml_is_elem(c, "vm") && hsm_xml_in_our_ns(c)) {
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
	devices = hsm_xml_child_elem(root, "devices");
	if (!devices) {
		return 0;
	}
	for (xmlNodePtr c = devices->children; c; c = c->next) {
		_cleanup_free_ char *device = NULL;
		struct hsm_vmxml_disk d;

		if (!hsm_xml_is_elem(c, "disk") || !hsm_xml_in_no_ns(c)) {
			continue;
		}
		device = hsm_xml_attr_dup(c, "device");
		if (device && strcmp(device, "disk") != 0) {
			continue;
		}
		r = parse_disk(c, &d, err);
		if (r < 0) {
			pk_error_prefix(err, "domain '%s'", dom->name);
			return r;
		}
		dom->disks = pk_xgrow(dom->disks, NULL, dom->ndisks + 1, sizeof(*dom->disks));
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

	doc = hsm_xml_doc_parse("domain", xml, err);
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

/* ---- metadata ------------------------------------------------------------- */

int hsm_vmxml_metadata_parse(const char *xml, struct hsm_drive_id **ret_drives,
			     size_t *ret_n, struct pk_error *err)
{
	xmlDocPtr doc = hsm_xml_doc_parse("metadata", xml, err);
	xmlNodePtr root;
	int r;

	if (!doc) {
		return -EBADMSG;
	}
	root = xmlDocGetRootElement(doc);
	if (!hsm_xml_is_elem(root, "vm") ||
	    !(hsm_xml_in_no_ns(root) || hsm_xml_in_our_ns(root))) {
		xmlFreeDoc(doc);
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "poolkeeper metadata: the root element is not <vm>");
	}
	r = parse_drives(root, ret_drives, ret_n, err);
	xmlFreeDoc(doc);
	return r;
}

/* ---- editing a persistent definition -------------------------------------- */

static xmlNodePtr find_disk_elem(xmlNodePtr root, const char *target)
{
	xmlNodePtr devices = hsm_xml_child_elem(root, "devices");

	for (xmlNodePtr c = devices ? devices->children : NULL; c; c = c->next) {
		_cleanup_free_ char *device = NULL, *dev = NULL;
		xmlNodePtr t;

		if (!hsm_xml_is_elem(c, "disk") || !hsm_xml_in_no_ns(c)) {
			continue;
		}
		device = hsm_xml_attr_dup(c, "device");
		t = hsm_xml_child_elem(c, "target");
		dev = t ? hsm_xml_attr_dup(t, "dev") : NULL;
		if ((!device || !strcmp(device, "disk")) && dev && !strcmp(dev, target)) {
			return c;
		}
	}
	return NULL;
}

static xmlNodePtr find_drive_elem(xmlNodePtr root, const char *target)
{
	xmlNodePtr meta = hsm_xml_child_elem(root, "metadata");

	for (xmlNodePtr vm = meta ? meta->children : NULL; vm; vm = vm->next) {
		if (!hsm_xml_is_elem(vm, "vm") || !hsm_xml_in_our_ns(vm)) {
			continue;
		}
		for (xmlNodePtr d = vm->children; d; d = d->next) {
			_cleanup_free_ char *t = NULL;

			if (!hsm_xml_is_elem(d, "drive") || !hsm_xml_in_our_ns(d)) {
				continue;
			}
			t = hsm_xml_attr_dup(d, "target");
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

	r = hsm_vmxml_path_check("the new disk source", path, err);
	if (r == 0 && (!target || !hsm_vmxml_target_valid(target, NULL))) {
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
	doc = hsm_xml_doc_parse("domain", xml, err);
	if (!doc) {
		return -EBADMSG;
	}
	root = xmlDocGetRootElement(doc);
	if (!hsm_xml_is_elem(root, "domain") || !hsm_xml_in_no_ns(root)) {
		r = pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				 "domain XML: the root element is not <domain>");
		goto out;
	}
	disk = find_disk_elem(root, target);
	source = disk ? hsm_xml_child_elem(disk, "source") : NULL;
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
	driver = hsm_xml_child_elem(disk, "driver");
	if (driver) {
		xmlSetProp(driver, BAD_CAST "type", BAD_CAST hsm_disk_format_name(format));
	}
	/* libvirt detects the new chain from the image headers at the next start. */
	for (c = disk->children; c; c = next) {
		next = c->next;
		if (hsm_xml_is_elem(c, "backingStore") && hsm_xml_in_no_ns(c)) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		}
	}
	xmlSetProp(drive, BAD_CAST "volume", BAD_CAST volume_id);
	*ret_xml = hsm_xml_doc_dump(doc);
out:
	xmlFreeDoc(doc);
	return r;
}
