/*
 * The engine flow of a live snapshot (pkctl vm snapshot; the command, its
 * options and output: ctl/cmd_vm.c):
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proc.h"
#include "common/uuid.h"
#include "ctl/flow.h"

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

static int snap_create(struct ctl *ctl, const char *vm, uint64_t leaf_size,
		       struct ctl_snapshot_item *it, struct pk_error *err)
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
	cv.initial_size = leaf_size;
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
	int r;

	pi.domain_id = d->domain_id;
	pi.image_id = d->image_id;
	pi.volume_id = (char *)volume;
	req.call_case = PK__REQUEST__CALL_PREPARE_IMAGE;
	req.prepare_image = &pi;
	r = ctl_call_discard(ctl, CTL_HSM, &req, err);
	return r;
}

static int snap_hook(const char *vm, const struct ctl_snapshot_item *items, size_t n,
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

static int snap_switch(struct ctl *ctl, const char *vm, const struct ctl_snapshot_item *items, size_t n,
		       bool quiesce, Pk__Response **ret, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__VmSnapshotRequest vs = PK__VM_SNAPSHOT_REQUEST__INIT;
	Pk__SnapshotDisk disks[CTL_SNAPSHOT_DRIVES_MAX];
	Pk__SnapshotDisk *dptr[CTL_SNAPSHOT_DRIVES_MAX];

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
static bool snap_in_use(const Pk__VmInfo *now, const struct ctl_snapshot_item *it)
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
static void snap_rollback(struct ctl *ctl, const char *vm, struct ctl_snapshot_item *items, size_t n,
			  const struct ctl_flow_report *report, struct pk_error *err)
{
	Pk__Response *now_resp = NULL;
	const Pk__VmInfo *now = NULL;
	struct pk_error e2 = { PK_OK, "" };
	char left[PK_ERROR_MSG_MAX] = "";
	size_t removed = 0;

	if (ctl_vm_get(ctl, vm, &now_resp, &now, &e2) < 0) {
		now = NULL; /* cannot tell: only volumes not prepared are safe to delete */
	}
	for (size_t i = 0; i < n; i++) {
		struct ctl_snapshot_item *it = &items[i];
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
		if (it->prepared && snap_prepare(ctl, it->drive, it->old_leaf, &e2) < 0 && report &&
		    report->warning) {
			char msg[PK_ERROR_MSG_MAX + 128];
			snprintf(msg, sizeof(msg), "preparing drive %s on its old leaf again: %s",
				 it->drive->target, e2.message);
			report->warning(report->ctx, msg);
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

static int drives_check(const char *list, const Pk__VmInfo *vm, struct pk_error *err)
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
			return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' has no drive '%.*s'",
					    vm->name, (int)l, p);
		}
		p += l + (e ? 1 : 0);
	}
	return 0;
}

int ctl_flow_snapshot_create(struct ctl *ctl, const struct ctl_snapshot_create_opts *o,
			     const struct ctl_flow_report *report,
			     struct ctl_snapshot_create_result *ret, struct pk_error *err)
{
	struct ctl_snapshot_item *items = ret->items;
	const Pk__VmInfo *vm = NULL;
	size_t n = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = ctl_vm_get(ctl, o->vm, &ret->vm_resp, &vm, err);
	if (r == 0) {
		r = drives_check(o->drives, vm, err);
	}
	if (r < 0) {
		goto fail;
	}
	for (size_t i = 0; i < vm->n_drives && n < CTL_SNAPSHOT_DRIVES_MAX; i++) {
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
		return 0; /* nothing to snapshot: the caller says so */
	}
	/* 1. new leaves, 2. prepared here, 3. switched. */
	for (size_t i = 0; i < n && r == 0; i++) {
		r = snap_create(ctl, o->vm, o->leaf_size, &items[i], err);
		if (r < 0) {
			pk_error_prefix(err, "creating the new volume of drive %s",
					items[i].drive->target);
		}
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		r = snap_prepare(ctl, items[i].drive, items[i].new_id, err);
		items[i].prepared = true; /* even on failure: it may be half prepared */
		if (r < 0) {
			pk_error_prefix(err, "preparing the new volume of drive %s",
					items[i].drive->target);
		}
	}
	if (r == 0) {
		r = snap_hook(o->vm, items, n, err);
	}
	if (r == 0) {
		r = snap_switch(ctl, o->vm, items, n, o->quiesce, &ret->snap_resp, err);
	}
	if (r < 0) {
		snap_rollback(ctl, o->vm, items, n, report, err);
		goto fail;
	}
	ret->n = n;
	ret->vm = ret->snap_resp->vm_snapshot->vm;
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
			msg_append(ret->warnings, sizeof(ret->warnings),
				   " volume %s (old leaf of %s) is still LEAF in metadata: %s; run "
				   "'pkctl volume update --role internal' for it;",
				   items[i].old_leaf, items[i].drive->target, e2.message);
		}
	}
	return 0;
fail:
	ctl_snapshot_create_result_release(ret);
	return r;
}

void ctl_snapshot_create_result_release(struct ctl_snapshot_create_result *res)
{
	if (res->snap_resp) {
		pk__response__free_unpacked(res->snap_resp, NULL);
	}
	if (res->vm_resp) {
		pk__response__free_unpacked(res->vm_resp, NULL);
	}
	memset(res, 0, sizeof(*res));
}
