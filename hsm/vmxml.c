/*
 * The builders of hsm/vmxml.h: the names of formats, buses and targets,
 * and the XML we generate (a domain from a spec, a snapshot, our
 * metadata). What a spec or a parsed document must satisfy is checked in
 * hsm/vmxml_check.c; reading and editing XML is hsm/vmxml_parse.c.
 */
#include "hsm/vmxml.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "common/xalloc.h"
#include "hsm/vmxml_internal.h"
#include "hsm/xmldoc.h"

/* Largest 1-3 letter target index: a..z, aa..zz, aaa..zzz. */
#define TARGET_INDEX_MAX (26u + 26u * 26u + 26u * 26u * 26u)

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

/* ---- writing XML ------------------------------------------------------------ */

static void add_seclabel_norelabel(xmlNodePtr source)
{
	xmlNodePtr sl = hsm_xml_child_new(source, NULL, "seclabel", NULL);

	hsm_xml_prop_new(sl, "model", "dac");
	hsm_xml_prop_new(sl, "relabel", "no");
}

static void add_drive_elements(xmlNodePtr vm, xmlNsPtr ns, const struct hsm_drive_id *drives,
			       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		xmlNodePtr d = hsm_xml_child_new(vm, ns, "drive", NULL);

		hsm_xml_prop_new(d, "target", drives[i].target);
		hsm_xml_prop_new(d, "domain", drives[i].domain_id);
		hsm_xml_prop_new(d, "image", drives[i].image_id);
		hsm_xml_prop_new(d, "volume", drives[i].volume_id);
	}
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
		r = hsm_vmxml_path_check(field, d->path, err);
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
		r = hsm_vmxml_drive_id_check(i, &d->id, err);
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
		if (!hsm_vmxml_target_valid(d->id.target, bus_prefix(d->bus))) {
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
	xmlNodePtr disk = hsm_xml_child_new(devices, NULL, "disk", NULL);
	xmlNodePtr n;

	hsm_xml_prop_new(disk, "type", d->block ? "block" : "file");
	hsm_xml_prop_new(disk, "device", "disk");

	n = hsm_xml_child_new(disk, NULL, "driver", NULL);
	hsm_xml_prop_new(n, "name", "qemu");
	hsm_xml_prop_new(n, "type", hsm_disk_format_name(d->format));
	hsm_xml_prop_new(n, "cache", "none");
	hsm_xml_prop_new(n, "io", io_name(spec->io));
	hsm_xml_prop_new(n, "error_policy", "stop");
	if (spec->discard) {
		hsm_xml_prop_new(n, "discard", "unmap");
	}

	n = hsm_xml_child_new(disk, NULL, "source", NULL);
	hsm_xml_prop_new(n, d->block ? "dev" : "file", d->path);
	add_seclabel_norelabel(n);

	n = hsm_xml_child_new(disk, NULL, "target", NULL);
	hsm_xml_prop_new(n, "dev", id->target);
	hsm_xml_prop_new(n, "bus", hsm_disk_bus_name(d->bus));
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

	r = hsm_vmxml_spec_check(spec, err);
	if (r < 0) {
		return r;
	}
	ids = pk_xcalloc(spec->ndisks ? spec->ndisks : 1, sizeof(*ids));
	r = resolve_disks(spec, ids, err);
	if (r < 0) {
		return r;
	}
	hsm_xml_init();

	root = hsm_xml_node_new("domain");
	hsm_xml_prop_new(root, "type", spec->type == HSM_VM_TYPE_KVM ? "kvm" : "qemu");
	hsm_xml_child_new(root, NULL, "name", spec->name);
	if (spec->uuid) {
		hsm_xml_child_new(root, NULL, "uuid", spec->uuid);
	}

	n = hsm_xml_child_new(root, NULL, "metadata", NULL);
	vm = hsm_xml_child_new(n, NULL, "vm", NULL);
	ns = xmlNewNs(vm, BAD_CAST HSM_VMXML_NS, BAD_CAST HSM_VMXML_NS_PREFIX);
	if (!ns) {
		abort();
	}
	xmlSetNs(vm, ns);
	add_drive_elements(vm, ns, ids, spec->ndisks);

	snprintf(num, sizeof(num), "%u", spec->memory_mib);
	n = hsm_xml_child_new(root, NULL, "memory", num);
	hsm_xml_prop_new(n, "unit", "MiB");
	snprintf(num, sizeof(num), "%u", spec->vcpus);
	hsm_xml_child_new(root, NULL, "vcpu", num);

	os = hsm_xml_child_new(root, NULL, "os", NULL);
	hsm_xml_child_new(os, NULL, "type", "hvm");
	if (spec->kernel) {
		hsm_xml_child_new(os, NULL, "kernel", spec->kernel);
		if (spec->initrd) {
			hsm_xml_child_new(os, NULL, "initrd", spec->initrd);
		}
		if (spec->cmdline) {
			hsm_xml_child_new(os, NULL, "cmdline", spec->cmdline);
		}
	} else {
		n = hsm_xml_child_new(os, NULL, "boot", NULL);
		hsm_xml_prop_new(n, "dev", "hd");
	}
	n = hsm_xml_child_new(root, NULL, "features", NULL);
	hsm_xml_child_new(n, NULL, "acpi", NULL);
	hsm_xml_child_new(n, NULL, "apic", NULL);
	hsm_xml_child_new(root, NULL, "on_poweroff", "destroy");
	hsm_xml_child_new(root, NULL, "on_reboot", "restart");
	hsm_xml_child_new(root, NULL, "on_crash", "destroy");

	devices = hsm_xml_child_new(root, NULL, "devices", NULL);
	for (size_t i = 0; i < spec->ndisks; i++) {
		add_disk(devices, spec, &spec->disks[i], &ids[i]);
		sata = sata || spec->disks[i].bus == HSM_DISK_BUS_SATA;
		scsi = scsi || spec->disks[i].bus == HSM_DISK_BUS_SCSI;
	}
	n = hsm_xml_child_new(devices, NULL, "controller", NULL);
	hsm_xml_prop_new(n, "type", "usb");
	hsm_xml_prop_new(n, "model", "none");
	if (sata) {
		n = hsm_xml_child_new(devices, NULL, "controller", NULL);
		hsm_xml_prop_new(n, "type", "sata");
		hsm_xml_prop_new(n, "index", "0");
	}
	if (scsi) {
		n = hsm_xml_child_new(devices, NULL, "controller", NULL);
		hsm_xml_prop_new(n, "type", "scsi");
		hsm_xml_prop_new(n, "index", "0");
		hsm_xml_prop_new(n, "model", "virtio-scsi");
	}
	if (spec->serial_log) {
		xmlNodePtr serial = hsm_xml_child_new(devices, NULL, "serial", NULL);

		hsm_xml_prop_new(serial, "type", "file");
		n = hsm_xml_child_new(serial, NULL, "source", NULL);
		hsm_xml_prop_new(n, "path", spec->serial_log);
		n = hsm_xml_child_new(serial, NULL, "target", NULL);
		hsm_xml_prop_new(n, "port", "0");
	}
	n = hsm_xml_child_new(devices, NULL, "channel", NULL);
	hsm_xml_prop_new(n, "type", "unix");
	n = hsm_xml_child_new(n, NULL, "target", NULL);
	hsm_xml_prop_new(n, "type", "virtio");
	hsm_xml_prop_new(n, "name", "org.qemu.guest_agent.0");
	n = hsm_xml_child_new(devices, NULL, "memballoon", NULL);
	hsm_xml_prop_new(n, "model", "none");

	*ret_xml = hsm_xml_tree_dump_and_free(root);
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
		r = hsm_vmxml_path_check(field, disks[i].path, err);
		if (r < 0) {
			return r;
		}
	}
	hsm_xml_init();
	root = hsm_xml_node_new("domainsnapshot");
	list = hsm_xml_child_new(root, NULL, "disks", NULL);
	for (size_t i = 0; i < live->ndisks; i++) {
		const struct hsm_vmxml_snapshot_disk *s = NULL;
		xmlNodePtr d, c;

		for (size_t k = 0; k < n; k++) {
			if (strcmp(disks[k].target, live->disks[i].target) == 0) {
				s = &disks[k];
			}
		}
		d = hsm_xml_child_new(list, NULL, "disk", NULL);
		hsm_xml_prop_new(d, "name", live->disks[i].target);
		if (!s) {
			hsm_xml_prop_new(d, "snapshot", "no");
			continue;
		}
		hsm_xml_prop_new(d, "snapshot", "external");
		hsm_xml_prop_new(d, "type", s->block ? "block" : "file");
		c = hsm_xml_child_new(d, NULL, "driver", NULL);
		hsm_xml_prop_new(c, "type", "qcow2");
		c = hsm_xml_child_new(d, NULL, "source", NULL);
		hsm_xml_prop_new(c, s->block ? "dev" : "file", s->path);
		add_seclabel_norelabel(c);
	}
	*ret_xml = hsm_xml_tree_dump_and_free(root);
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
		    !hsm_vmxml_target_valid(drives[i].target, NULL)) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "drive %zu has no valid target", i);
		}
		r = hsm_vmxml_drive_id_check(i, &drives[i], err);
		if (r < 0) {
			return r;
		}
		if (target_taken(drives, i, drives[i].target)) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EEXIST,
					    "drive '%s' is listed twice", drives[i].target);
		}
	}
	hsm_xml_init();
	vm = hsm_xml_node_new("vm");
	add_drive_elements(vm, NULL, drives, n);
	*ret_xml = hsm_xml_tree_dump_and_free(vm);
	return 0;
}

