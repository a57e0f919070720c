/*
 * The checks of hsm/vmxml*.c (hsm/vmxml_internal.h): what a VM spec must
 * satisfy before XML is built from it, and what a name, a target, a path
 * or a drive id read from XML (or about to be written into it) must be.
 */
#include "hsm/vmxml.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "hsm/vmxml_internal.h"

/* ---- names and targets ------------------------------------------------------ */

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

bool hsm_vmxml_target_valid(const char *t, const char *prefix)
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

/* ---- text and paths ---------------------------------------------------------- */

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

int hsm_vmxml_path_check(const char *field, const char *path, struct pk_error *err)
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

/* ---- specs -------------------------------------------------------------------- */

int hsm_vmxml_drive_id_check(size_t i, const struct hsm_drive_id *id, struct pk_error *err)
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

int hsm_vmxml_spec_check(const struct hsm_vm_spec *spec, struct pk_error *err)
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
		r = hsm_vmxml_path_check("kernel", spec->kernel, err);
		if (r < 0) {
			return r;
		}
	}
	if ((spec->initrd || spec->cmdline) && !spec->kernel) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "initrd and cmdline need a kernel");
	}
	if (spec->initrd) {
		r = hsm_vmxml_path_check("initrd", spec->initrd, err);
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
		r = hsm_vmxml_path_check("serial_log", spec->serial_log, err);
		if (r < 0) {
			return r;
		}
	}
	return 0;
}
