/*
 * pkctl vm create|destroy|list|chain|snapshot: the VMs of one host (hsmd),
 * and the reference engine flow of a live snapshot:
 *
 *   for each drive: SPM CreateVolume (COW child of the drive's current leaf,
 *                   same capacity)
 *   for each drive: hsmd PrepareImage (the chain ending at the new volume)
 *   hsmd VmSnapshot (all drives at once)
 *   for each drive: SPM UpdateVolumeMeta (old leaf becomes INTERNAL)
 *
 * If any of the first three steps fails, the flow undoes its work: the
 * images are prepared again on their old leaves (hsmd drops the new
 * volumes), and the SPM deletes the new volumes (force: they were
 * prepared). A new volume a drive already runs on is never deleted (that
 * can only happen when VmSnapshot's answer was lost after it succeeded).
 *
 * Testing hook: when PK_CTL_TEST_SNAPSHOT_HOOK is set, it is run with
 * /bin/sh -c right before VmSnapshot, with PK_SNAPSHOT_VM and
 * PK_SNAPSHOT_VOLUMES ("vda=DOMAIN/IMAGE/VOLUME ...", the new volumes) in
 * its environment; a non-zero exit fails the flow. Integration tests use it
 * to break a new volume on purpose.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proc.h"
#include "common/uuid.h"
#include "common/xalloc.h"
#include "ctl/ctl.h"
#include "ctl/show.h"

#define VM_DISKS_MAX 64

struct vm_opts {
	const char *name;
	const char *domain;
	unsigned memory_mib;
	unsigned vcpus;
	const char *disks[VM_DISKS_MAX];
	size_t ndisks;
	const char *kernel, *initrd, *cmdline, *serial_log, *type;
	const char *drives; /* comma-separated */
	const char *image;
	bool quiesce;
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
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
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
			o->memory_mib = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !o->memory_mib) {
				return ctl_usage_error(ctl, "--memory wants MiB, not '%s'", optarg);
			}
			break;
		case OPT_VCPUS:
			o->vcpus = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !o->vcpus) {
				return ctl_usage_error(ctl, "--vcpus wants a number, not '%s'", optarg);
			}
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
		case OPT_SERIAL_LOG: o->serial_log = optarg; break;
		case OPT_TYPE: o->type = optarg; break;
		case OPT_DRIVE: o->drives = optarg; break;
		case OPT_QUIESCE: o->quiesce = true; break;
		case OPT_IMAGE: o->image = optarg; break;
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
		spec.serial_log = (char *)(o->serial_log ? o->serial_log : "");
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

/* Reads one VM; *ret freed by the caller (pk__response__free_unpacked). */
static int vm_get(struct ctl *ctl, const char *name, Pk__Response **ret, const Pk__VmInfo **vm,
		  struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__VmListRequest vl = PK__VM_LIST_REQUEST__INIT;
	int r;

	vl.name = (char *)name;
	req.call_case = PK__REQUEST__CALL_VM_LIST;
	req.vm_list = &vl;
	r = ctl_call(ctl, CTL_HSM, &req, ret, err);
	if (r < 0) {
		return r;
	}
	if ((*ret)->vm_list->n_vms != 1) {
		pk__response__free_unpacked(*ret, NULL);
		*ret = NULL;
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "no VM named '%s'", name);
	}
	*vm = (*ret)->vm_list->vms[0];
	return 0;
}

/* ---- snapshot: the engine flow ------------------------------------------------------ */

/* Appends to a message buffer; cut at its end. */
static void __attribute__((format(printf, 3, 4))) msg_append(char *buf, size_t size,
							     const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

struct snap_item {
	const Pk__DriveInfo *drive;
	const char *old_leaf;
	char new_id[PK_UUID_BUFLEN];
	bool create_tried;
	bool prepared;
};

static int spm_call(struct ctl *ctl, Pk__Request *req, struct pk_error *err)
{
	Pk__Response *resp = NULL;
	int r = ctl_call(ctl, CTL_SPM, req, &resp, err);

	if (r == 0 && resp->result_case == PK__RESPONSE__RESULT_CREATE_VOLUME &&
	    resp->create_volume->task &&
	    resp->create_volume->task->state == PK__TASK_STATE__TASK_FAILED) {
		const Pk__Error *e = resp->create_volume->task->error;
		r = pk_error_set(err, e ? pk_codec_errc(e->code) : PK_E_INTERNAL, 0, "%s",
				 e && e->message ? e->message : "CreateVolume task failed");
	}
	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
	return r;
}

static int snap_create(struct ctl *ctl, const char *vm, struct snap_item *it,
		       struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__CreateVolumeRequest cv = PK__CREATE_VOLUME_REQUEST__INIT;
	char desc[128];

	snprintf(desc, sizeof(desc), "snapshot of VM %s drive %s", vm, it->drive->target);
	cv.domain_id = it->drive->domain_id;
	cv.image_id = it->drive->image_id;
	cv.volume_id = it->new_id;
	cv.parent_id = (char *)it->old_leaf;
	cv.format = PK__VOLUME_FORMAT__FORMAT_COW;
	cv.capacity = 0; /* the parent's */
	cv.description = desc;
	req.call_case = PK__REQUEST__CALL_CREATE_VOLUME;
	req.create_volume = &cv;
	it->create_tried = true;
	return spm_call(ctl, &req, err);
}

static int snap_prepare(struct ctl *ctl, const Pk__DriveInfo *d, const char *volume,
			struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PrepareImageRequest pi = PK__PREPARE_IMAGE_REQUEST__INIT;
	Pk__Response *resp = NULL;
	int r;

	pi.domain_id = d->domain_id;
	pi.image_id = d->image_id;
	pi.volume_id = (char *)volume;
	req.call_case = PK__REQUEST__CALL_PREPARE_IMAGE;
	req.prepare_image = &pi;
	r = ctl_call(ctl, CTL_HSM, &req, &resp, err);
	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
	return r;
}

static int snap_hook(const char *vm, const struct snap_item *items, size_t n,
		     struct pk_error *err)
{
	const char *hook = getenv("PK_CTL_TEST_SNAPSHOT_HOOK");
	struct pk_proc_result res = { 0 };
	char vols[8192] = "";
	size_t len = 0;
	int r;

	if (!hook || !*hook) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(vols + len, sizeof(vols) - len, "%s%s=%s/%s/%s",
					i ? " " : "", items[i].drive->target,
					items[i].drive->domain_id, items[i].drive->image_id,
					items[i].new_id);
		if (len >= sizeof(vols)) {
			return pk_error_set(err, PK_E_INTERNAL, E2BIG, "too many volumes for the hook");
		}
	}
	setenv("PK_SNAPSHOT_VM", vm, 1);
	setenv("PK_SNAPSHOT_VOLUMES", vols, 1);
	{
		const char *argv[] = { "/bin/sh", "-c", hook, NULL };
		r = pk_proc_run(argv, 60000, &res, err);
	}
	if (r == 0 && res.exit_status != 0) {
		r = pk_error_set(err, PK_E_ABORTED, ECANCELED,
				 "the snapshot hook exited with %d: %s", res.exit_status, res.err);
	}
	pk_proc_result_release(&res);
	return r;
}

static int snap_switch(struct ctl *ctl, const char *vm, const struct snap_item *items, size_t n,
		       bool quiesce, Pk__Response **ret, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__VmSnapshotRequest vs = PK__VM_SNAPSHOT_REQUEST__INIT;
	Pk__SnapshotDisk disks[VM_DISKS_MAX];
	Pk__SnapshotDisk *dptr[VM_DISKS_MAX];

	for (size_t i = 0; i < n; i++) {
		pk__snapshot_disk__init(&disks[i]);
		disks[i].drive = items[i].drive->target;
		disks[i].domain_id = items[i].drive->domain_id;
		disks[i].image_id = items[i].drive->image_id;
		disks[i].volume_id = (char *)items[i].new_id;
		dptr[i] = &disks[i];
	}
	vs.vm = (char *)vm;
	vs.disks = dptr;
	vs.n_disks = n;
	vs.quiesce = quiesce;
	req.call_case = PK__REQUEST__CALL_VM_SNAPSHOT;
	req.vm_snapshot = &vs;
	return ctl_call(ctl, CTL_HSM, &req, ret, err);
}

/* True when the VM's drive already runs on volume (VmSnapshot's answer was lost). */
static bool snap_in_use(const Pk__VmInfo *now, const struct snap_item *it)
{
	for (size_t i = 0; now && i < now->n_drives; i++) {
		const Pk__DriveInfo *d = now->drives[i];
		if (strcmp(d->target, it->drive->target) != 0) {
			continue;
		}
		for (size_t k = 0; k < d->n_live_chain; k++) {
			if (!strcmp(d->live_chain[k], it->new_id)) {
				return true;
			}
		}
	}
	return false;
}

/* Undoes steps 1-2; appends what it could not undo to err's message. */
static void snap_rollback(struct ctl *ctl, const char *vm, struct snap_item *items, size_t n,
			  struct pk_error *err)
{
	Pk__Response *now_resp = NULL;
	const Pk__VmInfo *now = NULL;
	struct pk_error e2 = { PK_OK, "" };
	char left[PK_ERROR_MSG_MAX] = "";
	size_t removed = 0;

	if (vm_get(ctl, vm, &now_resp, &now, &e2) < 0) {
		now = NULL; /* cannot tell: only volumes not prepared are safe to delete */
	}
	for (size_t i = 0; i < n; i++) {
		struct snap_item *it = &items[i];
		Pk__Request req = PK__REQUEST__INIT;
		Pk__DeleteVolumeRequest dv = PK__DELETE_VOLUME_REQUEST__INIT;

		if (!it->create_tried) {
			continue;
		}
		if (snap_in_use(now, it) || (!now && it->prepared)) {
			msg_append(left, sizeof(left), " %s kept (%s);", it->new_id,
				   now ? "the VM runs on it" : "VM state unknown");
			continue;
		}
		if (it->prepared && snap_prepare(ctl, it->drive, it->old_leaf, &e2) < 0) {
			fprintf(stderr, "pkctl: warning: preparing drive %s on its old leaf again: %s\n",
				it->drive->target, e2.message);
		}
		dv.domain_id = it->drive->domain_id;
		dv.image_id = it->drive->image_id;
		dv.volume_id = it->new_id;
		dv.force = true;
		req.call_case = PK__REQUEST__CALL_DELETE_VOLUME;
		req.delete_volume = &dv;
		if (spm_call(ctl, &req, &e2) == 0) {
			removed++;
		} else if (e2.code != PK_E_NOT_FOUND) {
			msg_append(left, sizeof(left), " %s not deleted (%s);", it->new_id,
				   e2.message);
		}
	}
	if (now_resp) {
		pk__response__free_unpacked(now_resp, NULL);
	}
	pk_error_prefix(err, "snapshot of VM '%s' failed; the VM keeps its old leaves, %zu new "
			     "volume(s) removed%s%s", vm, removed, left[0] ? ";" : "", left);
}

static bool drive_selected(const char *list, const char *target)
{
	size_t len = strlen(target);

	if (!list) {
		return true;
	}
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == len && !strncmp(p, target, len)) {
			return true;
		}
		p += l + (e ? 1 : 0);
	}
	return false;
}

static int drives_check(struct ctl *ctl, const char *list, const Pk__VmInfo *vm)
{
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		bool found = false;
		for (size_t i = 0; i < vm->n_drives && !found; i++) {
			found = strlen(vm->drives[i]->target) == l &&
				!strncmp(vm->drives[i]->target, p, l);
		}
		if (!found) {
			struct pk_error err = { PK_E_NOT_FOUND, "" };
			snprintf(err.message, sizeof(err.message), "VM '%s' has no drive '%.*s'",
				 vm->name, (int)l, p);
			return ctl_fail(ctl, &err);
		}
		p += l + (e ? 1 : 0);
	}
	return 0;
}

static void snap_report(struct ctl *ctl, const char *vm_name, const struct snap_item *items,
			size_t n, const Pk__VmInfo *vm, const char *warnings)
{
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

static int vm_snapshot(struct ctl *ctl, const struct vm_opts *o)
{
	struct snap_item items[VM_DISKS_MAX];
	struct pk_error err = { PK_OK, "" };
	Pk__Response *vm_resp = NULL, *snap_resp = NULL;
	const Pk__VmInfo *vm = NULL;
	char warnings[PK_ERROR_MSG_MAX] = "";
	size_t n = 0;
	int r;

	if (!o->name) {
		return ctl_usage_error(ctl, "vm snapshot needs --vm NAME");
	}
	r = vm_get(ctl, o->name, &vm_resp, &vm, &err);
	if (r < 0) {
		return ctl_fail(ctl, &err);
	}
	r = drives_check(ctl, o->drives, vm);
	if (r) {
		pk__response__free_unpacked(vm_resp, NULL);
		return r;
	}
	memset(items, 0, sizeof(items));
	for (size_t i = 0; i < vm->n_drives && n < VM_DISKS_MAX; i++) {
		const Pk__DriveInfo *d = vm->drives[i];
		if (!drive_selected(o->drives, d->target)) {
			continue;
		}
		items[n].drive = d;
		items[n].old_leaf = d->n_live_chain && pk_uuid_valid(d->live_chain[0])
					    ? d->live_chain[0]
					    : d->volume_id;
		pk_uuid_generate(items[n].new_id);
		n++;
	}
	if (n == 0) {
		pk__response__free_unpacked(vm_resp, NULL);
		return ctl_usage_error(ctl, "VM '%s' has no drives to snapshot", o->name);
	}
	/* 1. new leaves, 2. prepared here, 3. switched. */
	for (size_t i = 0; i < n && r == 0; i++) {
		r = snap_create(ctl, o->name, &items[i], &err);
		if (r < 0) {
			pk_error_prefix(&err, "creating the new volume of drive %s",
					items[i].drive->target);
		}
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		r = snap_prepare(ctl, items[i].drive, items[i].new_id, &err);
		items[i].prepared = true; /* even on failure: it may be half prepared */
		if (r < 0) {
			pk_error_prefix(&err, "preparing the new volume of drive %s",
					items[i].drive->target);
		}
	}
	if (r == 0) {
		r = snap_hook(o->name, items, n, &err);
	}
	if (r == 0) {
		r = snap_switch(ctl, o->name, items, n, o->quiesce, &snap_resp, &err);
	}
	if (r < 0) {
		snap_rollback(ctl, o->name, items, n, &err);
		pk__response__free_unpacked(vm_resp, NULL);
		return ctl_fail(ctl, &err);
	}
	/* 4. the old leaves are internal layers now. */
	for (size_t i = 0; i < n; i++) {
		Pk__Request req = PK__REQUEST__INIT;
		Pk__UpdateVolumeMetaRequest um = PK__UPDATE_VOLUME_META_REQUEST__INIT;
		struct pk_error e2 = { PK_OK, "" };

		um.domain_id = items[i].drive->domain_id;
		um.image_id = items[i].drive->image_id;
		um.volume_id = (char *)items[i].old_leaf;
		um.role = PK__VOLUME_ROLE__ROLE_INTERNAL;
		req.call_case = PK__REQUEST__CALL_UPDATE_VOLUME_META;
		req.update_volume_meta = &um;
		if (spm_call(ctl, &req, &e2) < 0) {
			msg_append(warnings, sizeof(warnings),
				   " volume %s (old leaf of %s) is still LEAF in metadata: %s; run "
				   "'pkctl volume update --role internal' for it;",
				   items[i].old_leaf, items[i].drive->target, e2.message);
		}
	}
	snap_report(ctl, o->name, items, n, snap_resp->vm_snapshot->vm, warnings);
	pk__response__free_unpacked(snap_resp, NULL);
	pk__response__free_unpacked(vm_resp, NULL);
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
			     "... [--kernel PATH [--initrd PATH] [--cmdline TEXT]] [--serial-log PATH] "
			     "[--type auto|kvm|qemu] | destroy --vm NAME | list [--vm NAME] | chain "
			     "--vm NAME --drive vdX | chain --image ID | snapshot --vm NAME [--drive vda,vdb] [--quiesce]");
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
