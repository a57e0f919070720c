/*
 * The domain verbs of hsm/virt.h: create (define, then start), start,
 * destroy (stop, then undefine), list, XML, state, a shut-off domain's disk
 * source, and our metadata element.
 */
#include "hsm/virt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/strv.h"
#include "common/xalloc.h"
#include "hsm/virt_internal.h"
#include "hsm/vmxml.h"

int hsm_virt_domain_create(struct hsm_virt *v, const char *xml,
			   char ret_uuid[PK_UUID_BUFLEN], struct pk_error *err)
{
	struct hsm_vmxml_domain parsed;
	char name[HSM_VM_NAME_MAX + 1];
	char uuid[VIR_UUID_STRING_BUFLEN];
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_vmxml_domain_parse(xml, &parsed, err);
	if (r < 0) {
		if (err) {
			err->code = PK_E_INVALID_ARGUMENT;
		}
		return r;
	}
	memcpy(name, parsed.name, sizeof(name));
	hsm_vmxml_domain_release(&parsed);

	c = hsm_virt_conn_get(v, err);
	if (!c) {
		return -ENOTCONN;
	}
	d = virDomainLookupByName(c, name);
	if (d) {
		hsm_virt_dom_put(c, d);
		return pk_error_set(err, PK_E_ALREADY_EXISTS, EEXIST, "VM '%s' already exists",
				    name);
	}
	if (hsm_virt_last_error_code() != VIR_ERR_NO_DOMAIN) {
		r = hsm_virt_fail(v, c, err, "cannot look up VM '%s'", name);
		virConnectClose(c);
		return r;
	}
	virResetLastError();
	d = virDomainDefineXMLFlags(c, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	if (!d) {
		r = hsm_virt_fail(v, c, err, "cannot define VM '%s'", name);
		virConnectClose(c);
		return r;
	}
	if (virDomainCreate(d) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot start VM '%s'", name);
		/* Undo the definition; keep the start error. */
		virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
		virResetLastError();
		hsm_virt_dom_put(c, d);
		return r;
	}
	if (ret_uuid) {
		if (virDomainGetUUIDString(d, uuid) < 0) {
			uuid[0] = '\0';
		}
		snprintf(ret_uuid, PK_UUID_BUFLEN, "%s", uuid);
	}
	hsm_virt_dom_put(c, d);
	return 0;
}

int hsm_virt_domain_start(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	r = 0;
	if (virDomainCreate(d) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot start VM '%s'", name);
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_domain_destroy(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	r = 0;
	if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0 &&
	    hsm_virt_last_error_code() != VIR_ERR_OPERATION_INVALID) { /* stopped meanwhile */
		r = hsm_virt_fail(v, c, err, "cannot stop VM '%s'", name);
		goto out;
	}
	if (virDomainIsPersistent(d) == 1 &&
	    virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
				      VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0 &&
	    hsm_virt_last_error_code() != VIR_ERR_NO_DOMAIN) {
		r = hsm_virt_fail(v, c, err, "cannot undefine VM '%s'", name);
		goto out;
	}
	virResetLastError();
out:
	hsm_virt_dom_put(c, d);
	return r;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int hsm_virt_domain_list(struct hsm_virt *v, char ***ret_names, size_t *ret_n,
			 struct pk_error *err)
{
	virConnectPtr c = hsm_virt_conn_get(v, err);
	virDomainPtr *doms = NULL;
	char **names = NULL;
	size_t n = 0;
	int count;
	int r = 0;

	if (!c) {
		return -ENOTCONN;
	}
	count = virConnectListAllDomains(c, &doms, 0);
	if (count < 0) {
		r = hsm_virt_fail(v, c, err, "cannot list VMs");
		virConnectClose(c);
		return r;
	}
	names = pk_xcalloc((size_t)count + 1, sizeof(*names));
	for (int i = 0; i < count; i++) {
		char *md = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT,
						HSM_VMXML_NS, 0);
		const char *name;

		if (!md) {
			int code = hsm_virt_last_error_code();

			if (code == VIR_ERR_NO_DOMAIN_METADATA || code == VIR_ERR_NO_DOMAIN) {
				continue; /* not ours, or gone meanwhile */
			}
			r = hsm_virt_fail(v, c, err, "cannot read metadata of a VM");
			break;
		}
		free(md);
		name = virDomainGetName(doms[i]);
		if (name) {
			names[n++] = pk_xstrdup(name);
		}
	}
	virResetLastError();
	for (int i = 0; i < count; i++) {
		virDomainFree(doms[i]);
	}
	free(doms);
	virConnectClose(c);
	if (r < 0) {
		pk_strv_free(names);
		return r;
	}
	qsort(names, n, sizeof(*names), cmp_names);
	*ret_names = names;
	*ret_n = n;
	return 0;
}

int hsm_virt_domain_xml(struct hsm_virt *v, const char *name, char **ret_xml,
			struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	char *xml;
	int r;

	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	xml = virDomainGetXMLDesc(d, 0);
	if (!xml) {
		r = hsm_virt_fail(v, c, err, "cannot read the XML of VM '%s'", name);
	} else {
		*ret_xml = xml;
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_domain_state(struct hsm_virt *v, const char *name,
			  enum hsm_virt_state *ret_state, int *ret_reason,
			  struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int state, reason;
	int r;

	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainGetState(d, &state, &reason, 0) < 0) {
		r = hsm_virt_fail(v, c, err, "cannot read the state of VM '%s'", name);
	} else {
		*ret_state = (enum hsm_virt_state)state;
		if (ret_reason) {
			*ret_reason = reason;
		}
	}
	hsm_virt_dom_put(c, d);
	return r;
}

/* Defines xml over an existing domain: only its persistent definition changes. */
static int redefine(struct hsm_virt *v, virConnectPtr c, const char *name, const char *xml,
		    struct pk_error *err)
{
	virDomainPtr nd = virDomainDefineXMLFlags(c, xml, VIR_DOMAIN_DEFINE_VALIDATE);

	if (!nd) {
		return hsm_virt_fail(v, c, err, "cannot redefine VM '%s'", name);
	}
	virDomainFree(nd);
	return 0;
}

int hsm_virt_disk_source_set(struct hsm_virt *v, const char *name, const char *disk,
			     const char *path, enum hsm_disk_format format, const char *volume_id,
			     struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	char *old = NULL, *next = NULL;
	int r;

	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainIsActive(d) != 0) {
		r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
				 "VM '%s' runs: its disk source changes only while it is shut off",
				 name);
		goto out;
	}
	old = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
	if (!old) {
		r = hsm_virt_fail(v, c, err, "cannot read the definition of VM '%s'", name);
		goto out;
	}
	r = hsm_vmxml_disk_source_set(old, disk, path, format, volume_id, &next, err);
	if (r == 0) {
		r = redefine(v, c, name, next, err);
	}
	/*
	 * A start racing with the redefinition runs on the old disk: put the old
	 * definition back, so the next boot uses what this one ran on.
	 */
	if (r == 0 && virDomainIsActive(d) != 0) {
		struct pk_error undo = { PK_OK, "" };

		if (redefine(v, c, name, old, &undo) < 0) {
			r = pk_error_set(err, PK_E_ILLEGAL, EIO,
					 "VM '%s' started while its disk '%s' was redefined, and "
					 "the old definition could not be put back (%s): check "
					 "its disk source before it stops", name, disk, undo.message);
		} else {
			r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
					 "VM '%s' started while its disk '%s' was redefined; it "
					 "keeps its old disk", name, disk);
		}
	}
out:
	free(next);
	free(old);
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_metadata_get(struct hsm_virt *v, const char *name, char **ret_xml,
			  struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	char *md;
	int r;

	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	md = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, HSM_VMXML_NS, 0);
	if (!md) {
		if (hsm_virt_last_error_code() == VIR_ERR_NO_DOMAIN_METADATA) {
			virResetLastError();
			r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
					 "VM '%s' has no poolkeeper metadata", name);
		} else {
			r = hsm_virt_fail(v, c, err, "cannot read the metadata of VM '%s'", name);
		}
	} else {
		*ret_xml = md;
	}
	hsm_virt_dom_put(c, d);
	return r;
}

int hsm_virt_metadata_set(struct hsm_virt *v, const char *name, const char *xml,
			  struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	if (!xml) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "no metadata XML");
	}
	r = hsm_virt_dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	/* Two tries: the VM may stop between reading its state and writing. */
	for (int attempt = 0; attempt < 2; attempt++) {
		unsigned flags = 0;

		if (virDomainIsActive(d) == 1) {
			flags |= VIR_DOMAIN_AFFECT_LIVE;
		}
		if (virDomainIsPersistent(d) == 1) {
			flags |= VIR_DOMAIN_AFFECT_CONFIG;
		}
		if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, xml, HSM_VMXML_NS_PREFIX,
					 HSM_VMXML_NS, flags) == 0) {
			r = 0;
			break;
		}
		r = hsm_virt_fail(v, c, err, "cannot write the metadata of VM '%s'", name);
		if (hsm_virt_last_error_code() != VIR_ERR_OPERATION_INVALID) {
			break;
		}
	}
	hsm_virt_dom_put(c, d);
	return r;
}
