/*
 * pkctl vm create|destroy|list|chain|snapshot: the VMs of one host (hsmd),
 * and the command of a live snapshot (its engine flow, the steps and the
 * undo: ctl/flow_snapshot_create.c).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/xalloc.h"
#include "ctl/ctl.h"
#include "ctl/flow.h"
#include "ctl/show.h"

#define VM_DISKS_MAX 64

struct vm_opts {
	const char *name;
	const char *domain;
	unsigned memory_mib;
	unsigned vcpus;
	const char *disks[VM_DISKS_MAX];
	size_t ndisks;
	const char *kernel, *initrd, *cmdline, *type;
	const char *drives; /* comma-separated */
	const char *image;
	bool quiesce;
	uint64_t leaf_size; /* snapshot: LV size of the new leaves, 0: the SPM's default */
};

enum {
	OPT_NAME = 1000,
	OPT_DOMAIN,
	OPT_MEMORY,
	OPT_VCPUS,
	OPT_DISK,
	OPT_KERNEL,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_SERIAL_LOG,
	OPT_TYPE,
	OPT_DRIVE,
	OPT_QUIESCE,
	OPT_IMAGE,
	OPT_LEAF_SIZE,
};

static int vm_opts_parse(struct ctl *ctl, int argc, char **argv, struct vm_opts *o)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, OPT_NAME },
		{ "vm", required_argument, NULL, OPT_NAME },
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "vcpus", required_argument, NULL, OPT_VCPUS },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "serial-log", required_argument, NULL, OPT_SERIAL_LOG },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "drive", required_argument, NULL, OPT_DRIVE },
		{ "quiesce", no_argument, NULL, OPT_QUIESCE },
		{ "leaf-size", required_argument, NULL, OPT_LEAF_SIZE },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->domain = getenv("PK_DOMAIN");
	o->memory_mib = 256;
	o->vcpus = 1;
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_NAME: o->name = optarg; break;
		case OPT_DOMAIN: o->domain = optarg; break;
		case OPT_MEMORY:
			if (pk_parse_u64(optarg, &v) < 0 || v == 0 || v > UINT_MAX) {
				return ctl_usage_error(ctl, "--memory wants MiB, not '%s'", optarg);
			}
			o->memory_mib = (unsigned)v;
			break;
		case OPT_VCPUS:
			if (pk_parse_u64(optarg, &v) < 0 || v == 0 || v > UINT_MAX) {
				return ctl_usage_error(ctl, "--vcpus wants a number, not '%s'", optarg);
			}
			o->vcpus = (unsigned)v;
			break;
		case OPT_DISK:
			if (o->ndisks == VM_DISKS_MAX) {
				return ctl_usage_error(ctl, "at most %d --disk", VM_DISKS_MAX);
			}
			o->disks[o->ndisks++] = optarg;
			break;
		case OPT_KERNEL: o->kernel = optarg; break;
		case OPT_INITRD: o->initrd = optarg; break;
		case OPT_CMDLINE: o->cmdline = optarg; break;
		case OPT_SERIAL_LOG:
			/* Kept so an old script gets a reason, not "unknown option". */
			return ctl_usage_error(ctl, "--serial-log is gone: hsmd writes the serial "
						    "log to <log_dir>/<vm>.serial (its log_dir setting)");
		case OPT_TYPE: o->type = optarg; break;
		case OPT_DRIVE: o->drives = optarg; break;
		case OPT_QUIESCE: o->quiesce = true; break;
		case OPT_IMAGE: o->image = optarg; break;
		case OPT_LEAF_SIZE:
			if (ctl_parse_size(optarg, &o->leaf_size) < 0 || o->leaf_size % 512) {
				return ctl_usage_error(ctl, "--leaf-size '%s' is not a size in bytes "
						       "(K, M, G suffixes; a multiple of 512)", optarg);
			}
			break;
		default:
			return ctl_usage_error(ctl, "vm %s: unknown option '%s'", argv[1],
					       argv[optind - 1]);
		}
	}
	if (optind < argc && !o->name) {
		o->name = argv[optind++];
	}
	if (optind < argc) {
		return ctl_usage_error(ctl, "vm %s: unexpected argument '%s'", argv[1], argv[optind]);
	}
	return 0;
}

/* ---- create ------------------------------------------------------------------- */

/* "image=ID,volume=ID[,domain=ID][,target=vda][,bus=virtio]" into d (strings in buf). */
static int disk_parse(struct ctl *ctl, const char *text, const char *domain, char *buf,
		      Pk__DiskSpec *d)
{
	char *save = NULL;

	strcpy(buf, text);
	d->domain_id = (char *)(domain ? domain : "");
	for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		if (!v) {
			return ctl_usage_error(ctl, "--disk '%s': '%s' is not key=value", text, kv);
		}
		*v++ = '\0';
		if (!strcmp(kv, "image")) {
			d->image_id = v;
		} else if (!strcmp(kv, "volume")) {
			d->volume_id = v;
		} else if (!strcmp(kv, "domain")) {
			d->domain_id = v;
		} else if (!strcmp(kv, "target")) {
			d->target = v;
		} else if (!strcmp(kv, "bus")) {
			d->bus = v;
		} else {
			return ctl_usage_error(ctl, "--disk '%s': unknown key '%s' (image, volume, "
						    "domain, target, bus)", text, kv);
		}
	}
	if (!*d->image_id || !*d->volume_id || !*d->domain_id) {
		return ctl_usage_error(ctl, "--disk '%s' needs image=ID and volume=ID (and domain= "
					    "or --domain / PK_DOMAIN)", text);
	}
	return 0;
}

static void show_vm_result(struct ctl *ctl, const Pk__Response *resp)
{
	const Pk__VmInfo *vm = resp->result_case == PK__RESPONSE__RESULT_VM_CREATE
				       ? resp->vm_create->vm
				       : resp->vm_snapshot->vm;

	if (ctl->json) {
		ctl_json_vm(&ctl->out, "vm", vm);
	} else {
		ctl_print_vm(vm);
	}
}

static int vm_create(struct ctl *ctl, const struct vm_opts *o)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__VmCreateRequest vc = PK__VM_CREATE_REQUEST__INIT;
	Pk__VmSpec spec = PK__VM_SPEC__INIT;
	Pk__DiskSpec disks[VM_DISKS_MAX];
	Pk__DiskSpec *dptr[VM_DISKS_MAX];
	char *bufs[VM_DISKS_MAX] = { NULL };
	int r = 0;

	if (!o->name) {
		return ctl_usage_error(ctl, "vm create needs --name NAME");
	}
	for (size_t i = 0; i < o->ndisks && r == 0; i++) {
		pk__disk_spec__init(&disks[i]);
		bufs[i] = pk_xstrdup(o->disks[i]);
		r = disk_parse(ctl, o->disks[i], o->domain, bufs[i], &disks[i]);
		dptr[i] = &disks[i];
	}
	if (r == 0) {
		spec.name = (char *)o->name;
		spec.memory_mib = o->memory_mib;
		spec.vcpus = o->vcpus;
		spec.disks = dptr;
		spec.n_disks = o->ndisks;
		spec.kernel = (char *)(o->kernel ? o->kernel : "");
		spec.initrd = (char *)(o->initrd ? o->initrd : "");
		spec.cmdline = (char *)(o->cmdline ? o->cmdline : "");
		if (!o->type || !strcmp(o->type, "auto")) {
			spec.type = PK__DOMAIN_TYPE__DOMAIN_TYPE_AUTO;
		} else if (!strcmp(o->type, "kvm")) {
			spec.type = PK__DOMAIN_TYPE__DOMAIN_TYPE_KVM;
		} else if (!strcmp(o->type, "qemu") || !strcmp(o->type, "tcg")) {
			spec.type = PK__DOMAIN_TYPE__DOMAIN_TYPE_QEMU;
		} else {
			r = ctl_usage_error(ctl, "--type '%s' is not auto, kvm or qemu", o->type);
		}
	}
	if (r == 0) {
		vc.spec = &spec;
		req.call_case = PK__REQUEST__CALL_VM_CREATE;
		req.vm_create = &vc;
		r = ctl_hsm_run(ctl, &req, show_vm_result);
	}
	for (size_t i = 0; i < o->ndisks; i++) {
		free(bufs[i]);
	}
	return r;
}

/* ---- destroy / list / chain --------------------------------------------------------- */

static void show_destroyed(struct ctl *ctl, const Pk__Response *resp)
{
	(void)resp;
	if (!ctl->json) {
		printf("destroyed\n");
	}
}

static void show_vm_list(struct ctl *ctl, const Pk__Response *resp)
{
	const Pk__VmListResponse *l = resp->vm_list;

	if (ctl->json) {
		ctl_json_array_begin(&ctl->out, "vms");
		for (size_t i = 0; i < l->n_vms; i++) {
			ctl_json_vm(&ctl->out, NULL, l->vms[i]);
		}
		ctl_json_array_end(&ctl->out);
		return;
	}
	if (l->n_vms == 0) {
		printf("no VMs\n");
	}
	for (size_t i = 0; i < l->n_vms; i++) {
		ctl_print_vm(l->vms[i]);
	}
}

/* ---- snapshot (the engine flow: ctl/flow_snapshot_create.c) ------------------------ */

static void snap_report(struct ctl *ctl, const char *vm_name,
			const struct ctl_snapshot_create_result *res)
{
	const struct ctl_snapshot_item *items = res->items;
	const Pk__VmInfo *vm = res->vm;
	const char *warnings = res->warnings;
	size_t n = res->n;

	if (ctl->json) {
		ctl_json_init(&ctl->out, stdout);
		ctl_json_object_begin(&ctl->out, NULL);
		ctl_json_string(&ctl->out, "vm_name", vm_name);
		ctl_json_array_begin(&ctl->out, "snapshot");
		for (size_t i = 0; i < n; i++) {
			ctl_json_object_begin(&ctl->out, NULL);
			ctl_json_string(&ctl->out, "drive", items[i].drive->target);
			ctl_json_string(&ctl->out, "domain_id", items[i].drive->domain_id);
			ctl_json_string(&ctl->out, "image_id", items[i].drive->image_id);
			ctl_json_string(&ctl->out, "old_leaf", items[i].old_leaf);
			ctl_json_string(&ctl->out, "new_leaf", items[i].new_id);
			ctl_json_object_end(&ctl->out);
		}
		ctl_json_array_end(&ctl->out);
		if (vm) {
			ctl_json_vm(&ctl->out, "vm", vm);
		}
		ctl_json_string(&ctl->out, "warnings", warnings[0] ? warnings : NULL);
		ctl_json_object_end(&ctl->out);
		ctl_json_finish(&ctl->out);
		return;
	}
	printf("snapshot of VM %s taken:\n", vm_name);
	for (size_t i = 0; i < n; i++) {
		printf("  %-4s %s -> %s\n", items[i].drive->target, items[i].old_leaf, items[i].new_id);
	}
	if (warnings[0]) {
		fprintf(stderr, "pkctl: warning:%s\n", warnings);
	}
}

static void snap_warning(void *ctx, const char *message)
{
	(void)ctx;
	fprintf(stderr, "pkctl: warning: %s\n", message);
}

static int vm_snapshot(struct ctl *ctl, const struct vm_opts *o)
{
	struct ctl_snapshot_create_opts fo = { .vm = o->name, .drives = o->drives,
					       .quiesce = o->quiesce, .leaf_size = o->leaf_size };
	struct ctl_flow_report report = { .warning = snap_warning };
	struct ctl_snapshot_create_result res;
	struct pk_error err = { PK_OK, "" };

	if (!o->name) {
		return ctl_usage_error(ctl, "vm snapshot needs --vm NAME");
	}
	if (ctl_flow_snapshot_create(ctl, &fo, &report, &res, &err) < 0) {
		return ctl_fail(ctl, &err);
	}
	if (res.n == 0) {
		ctl_snapshot_create_result_release(&res);
		return ctl_usage_error(ctl, "VM '%s' has no drives to snapshot", o->name);
	}
	snap_report(ctl, o->name, &res);
	ctl_snapshot_create_result_release(&res);
	return CTL_EXIT_OK;
}

int ctl_cmd_vm(struct ctl *ctl, int argc, char **argv)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__VmDestroyRequest vd = PK__VM_DESTROY_REQUEST__INIT;
	Pk__VmListRequest vl = PK__VM_LIST_REQUEST__INIT;
	Pk__GetVolumeChainRequest gc = PK__GET_VOLUME_CHAIN_REQUEST__INIT;
	struct vm_opts o;
	int r;

	if (argc < 2) {
		return ctl_usage_error(
			ctl, "usage: pkctl vm create --name NAME [--memory MIB] [--vcpus N] "
			     "--disk image=ID,volume=ID[,domain=ID][,target=vdX][,bus=virtio|sata|scsi]"
			     "... [--kernel NAME [--initrd NAME] [--cmdline TEXT]] "
			     "[--type auto|kvm|qemu] | destroy --vm NAME | list [--vm NAME] | chain "
			     "--vm NAME --drive vdX | chain --image ID | snapshot --vm NAME [--drive vda,vdb] [--quiesce] [--leaf-size SIZE]");
	}
	r = vm_opts_parse(ctl, argc, argv, &o);
	if (r) {
		return r;
	}
	if (!strcmp(argv[1], "create")) {
		return vm_create(ctl, &o);
	}
	if (!strcmp(argv[1], "snapshot")) {
		return vm_snapshot(ctl, &o);
	}
	if (!strcmp(argv[1], "destroy")) {
		if (!o.name) {
			return ctl_usage_error(ctl, "vm destroy needs --vm NAME");
		}
		vd.name = (char *)o.name;
		req.call_case = PK__REQUEST__CALL_VM_DESTROY;
		req.vm_destroy = &vd;
		return ctl_hsm_run(ctl, &req, show_destroyed);
	}
	if (!strcmp(argv[1], "list")) {
		vl.name = (char *)(o.name ? o.name : "");
		req.call_case = PK__REQUEST__CALL_VM_LIST;
		req.vm_list = &vl;
		return ctl_hsm_run(ctl, &req, show_vm_list);
	}
	if (!strcmp(argv[1], "chain")) {
		/* GetVolumeChain: a VM's drive, or an image with no VM running on it. */
		if (!((o.name && o.drives && !strchr(o.drives, ',')) || (!o.name && o.image))) {
			return ctl_usage_error(ctl, "vm chain needs --vm NAME --drive vdX, or --image ID "
						    "[--domain ID]");
		}
		if (o.image && (!o.domain || !*o.domain)) {
			return ctl_usage_error(ctl, "missing --domain ID (or PK_DOMAIN)");
		}
		gc.domain_id = (char *)(o.image ? o.domain : "");
		gc.image_id = (char *)(o.image ? o.image : "");
		gc.vm = (char *)(o.name ? o.name : "");
		gc.drive = (char *)(o.drives ? o.drives : "");
		req.call_case = PK__REQUEST__CALL_GET_VOLUME_CHAIN;
		req.get_volume_chain = &gc;
		return ctl_hsm_run(ctl, &req, ctl_show_volume_chain);
	}
	return ctl_usage_error(ctl, "unknown action 'vm %s' (create, destroy, list, chain, snapshot)",
			       argv[1]);
}
