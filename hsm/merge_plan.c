/*
 * What a Merge request means on this host: the live view of a drive (its
 * live XML chain, or for a stopped VM its leaf), the validation of the
 * request against that view and the metadata chain, and the job it
 * becomes (hsm_merge_begin).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/locks.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "hsm/merge_job.h"

/* ---- the live view --------------------------------------------------------------------- */

static bool state_running(enum hsm_virt_state s)
{
	return s == HSM_VIRT_STATE_RUNNING || s == HSM_VIRT_STATE_BLOCKED ||
	       s == HSM_VIRT_STATE_PAUSED || s == HSM_VIRT_STATE_PMSUSPENDED ||
	       s == HSM_VIRT_STATE_SHUTDOWN;
}

/* The volume id a layer path names when it is <storage>/<domain>/<image>/<uuid>. */
static void layer_id(const struct hsm *hsm, const struct hsm_drive_id *drive, const char *path,
		     char out[PK_UUID_BUFLEN])
{
	char prefix[HSM_PATH_MAX + 2 * PK_UUID_BUFLEN + 4];
	size_t plen;

	out[0] = '\0';
	snprintf(prefix, sizeof(prefix), "%s/%s/%s/", hsm->storage_dir, drive->domain_id,
		 drive->image_id);
	plen = strlen(prefix);
	if (path && !strncmp(path, prefix, plen) && pk_uuid_valid(path + plen)) {
		snprintf(out, PK_UUID_BUFLEN, "%s", path + plen);
	}
}

int hsm_merge_live_read(struct hsm *hsm, const char *vm, const char *drive,
			struct hsm_merge_live *ret, struct pk_error *err)
{
	struct hsm_vmxml_domain dom = { 0 };
	const struct hsm_vmxml_disk *disk;
	const struct hsm_drive_id *id;
	char *xml = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = hsm_virt_ready(hsm, err);
	if (r == 0) {
		r = hsm_virt_domain_state(hsm->virt, vm, &ret->state, NULL, err);
	}
	if (r == 0) {
		r = hsm_virt_domain_xml(hsm->virt, vm, &xml, err);
	}
	if (r == 0) {
		r = hsm_vmxml_domain_parse(xml, &dom, err);
	}
	free(xml);
	if (r < 0) {
		return r;
	}
	ret->running = state_running(ret->state) && dom.id >= 0;
	id = hsm_vmxml_domain_drive(&dom, drive);
	disk = hsm_vmxml_domain_disk(&dom, drive);
	if (!dom.has_metadata) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' is not a poolkeeper VM", vm);
	} else if (!id || !disk) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' has no drive '%s'", vm, drive);
	} else if (disk->nlayers == 0 || disk->nlayers > HSM_MERGE_CHAIN_MAX) {
		r = pk_error_set(err, PK_E_ILLEGAL, EINVAL, "drive '%s' of VM '%s' has %zu layers",
				 drive, vm, disk->nlayers);
	}
	if (r == 0) {
		ret->drive = *id;
		ret->n = ret->running ? disk->nlayers : 1;
		for (size_t i = 0; i < ret->n; i++) {
			layer_id(hsm, id, disk->layers[i].path, ret->ids[i]);
			ret->index[i] = disk->layers[i].index;
			if (!ret->ids[i][0]) {
				ret->foreign = true;
			}
		}
		ret->complete = ret->running && disk->chain_complete;
		ret->mirror = disk->mirror;
	}
	hsm_vmxml_domain_release(&dom);
	return r;
}

int hsm_merge_live_ref(const struct hsm_merge_live *live, const char *drive, const char *volume,
		       char *buf, size_t size, struct pk_error *err)
{
	for (size_t i = 0; i < live->n; i++) {
		if (!strcmp(live->ids[i], volume)) {
			if (live->index[i] < 0) {
				break;
			}
			snprintf(buf, size, "%s[%d]", drive, live->index[i]);
			return 0;
		}
	}
	return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENOENT,
			    "volume '%s' is not a layer of drive '%s' libvirt can address", volume,
			    drive);
}

/* ---- Merge: validation ------------------------------------------------------------------ */

static bool drive_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= HSM_VMXML_TARGET_MAX) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) {
			return false;
		}
	}
	return true;
}

static bool empty(const char *s)
{
	return !s || !*s;
}

static int check_request(const struct hsm_merge_request *req, struct pk_error *err)
{
	if (!hsm_vm_name_valid(req->vm)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "vm '%s' is not a valid VM name", req->vm ? req->vm : "");
	}
	if (!drive_name_valid(req->drive)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "drive '%s' is not a drive name like 'vda'",
				    req->drive ? req->drive : "");
	}
	if (empty(req->base)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "base_id is required: the volume that stays (commit) or the "
				    "volume pulled up and removed (pull)");
	}
	if (pk_uuid_check("base_id", req->base, err) < 0 ||
	    (!empty(req->top) && pk_uuid_check("top_id", req->top, err) < 0) ||
	    (!empty(req->domain) && pk_uuid_check("domain_id", req->domain, err) < 0) ||
	    (!empty(req->image) && pk_uuid_check("image_id", req->image, err) < 0)) {
		return -EINVAL;
	}
	if (req->direction != HSM_MERGE_DIR_COMMIT && req->direction != HSM_MERGE_DIR_PULL) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "direction must be COMMIT or PULL");
	}
	return hsm_merge_check_bandwidth(req->bandwidth, err);
}

static void chain_text(char *buf, size_t size, const char (*ids)[PK_UUID_BUFLEN], size_t n)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < size; i++) {
		off += (size_t)snprintf(buf + off, size - off, "%s%.8s", i ? "," : "",
					ids[i][0] ? ids[i] : "(foreign)");
	}
}

/* Resolves a volume named by the request against the domain's volumes. */
static int check_volume(const struct hsm_volume_list *list, const char *what, const char *id,
			const struct hsm_drive_id *drive, struct pk_error *err)
{
	const struct hsm_volume *v = hsm_volume_list_find(list, id);

	if (!v) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "%s volume '%s' not found in domain '%s'",
				    what, id, drive->domain_id);
	}
	if (strcmp(v->meta.image, drive->image_id) != 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s volume '%s' belongs to image '%s', not to image '%s' of drive "
				    "'%s'", what, id, v->meta.image, drive->image_id, drive->target);
	}
	return 0;
}

/* The chain of hsm_chain as ids into job->chain. */
static int job_set_chain(struct hsm_merge_job *job, const struct hsm_chain *c, struct pk_error *err)
{
	if (c->n < 2 || c->n > HSM_MERGE_CHAIN_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "the chain of image '%s' has %zu volume(s): nothing to merge",
				    job->image, c->n);
	}
	job->nchain = c->n;
	for (size_t i = 0; i < c->n; i++) {
		snprintf(job->chain[i], PK_UUID_BUFLEN, "%s", c->v[i].id);
	}
	return 0;
}

static bool chain_equal(const struct hsm_chain *c, const struct hsm_merge_live *live)
{
	if (c->n != live->n) {
		return false;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->v[i].id, live->ids[i]) != 0) {
			return false;
		}
	}
	return true;
}

/* Positions, order, kind. job->chain, top, base set. */
static int job_shape(struct hsm_merge_job *job, bool live, enum hsm_merge_direction dir,
		     struct pk_error *err)
{
	int top = hsm_merge_job_pos(job, job->top);
	int base = hsm_merge_job_pos(job, job->base);

	if (!strcmp(job->top, job->base)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "top and base are the same volume '%s'", job->top);
	}
	if (top < 0 || base < 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENOENT,
				    "volume '%s' is not in the chain of drive '%s' (leaf %s); it may "
				    "have been merged away already", top < 0 ? job->top : job->base,
				    job->drive, job->chain[0]);
	}
	if (base <= top) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "base '%s' is not below top '%s' in the chain of drive '%s' (base "
				    "at depth %d, top at depth %d; 0 is the leaf)", job->base, job->top,
				    job->drive, base, top);
	}
	if (dir == HSM_MERGE_DIR_PULL) {
		if (top != 0) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "a pull streams into the active layer: top must be the "
					    "leaf '%s', not '%s'", job->chain[0], job->top);
		}
		if (!live) {
			return pk_error_set(err, PK_E_UNSUPPORTED, ENOTSUP,
					    "VM '%s' is not running: a pull needs a running VM; "
					    "merge with direction COMMIT instead", job->vm);
		}
		job->kind = HSM_MERGE_PULL;
	} else if (!live) {
		job->kind = HSM_MERGE_COLD_COMMIT;
		job->active_leaf = top == 0;
	} else {
		job->kind = top == 0 ? HSM_MERGE_ACTIVE_COMMIT : HSM_MERGE_COMMIT;
	}
	return 0;
}

/* Legality and sizes of the chain's volumes. */
static int job_check_volumes(const struct hsm_merge_job *job, const struct hsm_volume_list *list,
			     bool done_in_qemu, struct pk_error *err)
{
	size_t lo, hi;
	const struct hsm_volume *top = hsm_volume_list_find(list, job->top);
	const struct hsm_volume *base = hsm_volume_list_find(list, job->base);

	hsm_merge_job_removed(job, &lo, &hi);
	for (size_t i = 0; i < job->nchain; i++) {
		const struct hsm_volume *v = hsm_volume_list_find(list, job->chain[i]);
		bool removed = i >= lo && i <= hi;

		if (!v) {
			return pk_error_set(err, PK_E_ILLEGAL, ENOENT, "volume '%s' of the chain vanished",
					    job->chain[i]);
		}
		if (v->meta.legality == PK_VOLUME_LEGAL || (removed && done_in_qemu)) {
			continue;
		}
		/* An interrupted pivot leaves the old leaf ILLEGAL: merging it again is the fix. */
		if (i == 0 && removed && (job->kind == HSM_MERGE_ACTIVE_COMMIT || job->active_leaf) &&
		    v->meta.legality == PK_VOLUME_ILLEGAL) {
			continue;
		}
		return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
				    "volume '%s' of the chain of drive '%s' is %s; repair it first",
				    v->id, job->drive, pk_volume_legality_name(v->meta.legality));
	}
	if (job->kind != HSM_MERGE_PULL && base->meta.capacity < top->meta.capacity) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "base '%s' (%" PRIu64 " bytes) is smaller than top '%s' (%" PRIu64
				    " bytes); grow the base first", job->base, base->meta.capacity,
				    job->top, top->meta.capacity);
	}
	return 0;
}

/*
 * Fills job from the request and what hsmd sees (locks held). Sets
 * *ret_state to PREPARING, or CLEANUP when the merge already happened in
 * qemu and only the metadata is behind.
 */
static int plan(struct hsm *hsm, const struct hsm_merge_request *req,
		const struct hsm_merge_live *live, struct hsm_merge_job *job,
		enum hsm_merge_state *ret_state, struct pk_error *err)
{
	struct hsm_volume_list list = { 0 };
	struct hsm_chain mchain = { 0 };
	const struct hsm_drive_id *d = &live->drive;
	bool done_in_qemu = false;
	int r;

	snprintf(job->vm, sizeof(job->vm), "%s", req->vm);
	snprintf(job->drive, sizeof(job->drive), "%s", req->drive);
	snprintf(job->domain, sizeof(job->domain), "%s", d->domain_id);
	snprintf(job->image, sizeof(job->image), "%s", d->image_id);
	if ((!empty(req->domain) && strcmp(req->domain, d->domain_id)) ||
	    (!empty(req->image) && strcmp(req->image, d->image_id))) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "drive '%s' of VM '%s' is image '%s' of domain '%s', not image "
				    "'%s' of domain '%s'", req->drive, req->vm, d->image_id,
				    d->domain_id, empty(req->image) ? d->image_id : req->image,
				    empty(req->domain) ? d->domain_id : req->domain);
	}
	if (live->running) {
		struct hsm_virt_job_info info;
		if (live->foreign || !live->complete) {
			return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
					    "the live chain of drive '%s' of VM '%s' has a layer that is "
					    "not a volume of image '%s'", req->drive, req->vm, d->image_id);
		}
		r = hsm_virt_block_job_info(hsm->virt, req->vm, req->drive, &info, err);
		if (r < 0) {
			return r;
		}
		if (info.active || live->mirror != HSM_VMXML_MIRROR_NONE) {
			return pk_error_set(err, PK_E_CONFLICT, EBUSY,
					    "drive '%s' of VM '%s' already has a block job (%s) that "
					    "poolkeeper did not start; wait for it or abort it",
					    req->drive, req->vm, hsm_virt_job_type_name(info.type));
		}
	} else if (live->state != HSM_VIRT_STATE_SHUTOFF && live->state != HSM_VIRT_STATE_CRASHED) {
		return pk_error_set(err, PK_E_CONFLICT, EBUSY, "VM '%s' is %s; retry when it runs or is "
				    "shut off", req->vm, hsm_virt_state_name(live->state));
	}
	r = hsm_volumes_read(hsm, d->domain_id, &list, err);
	if (r < 0) {
		return r;
	}
	r = check_volume(&list, "base", req->base, d, err);
	if (r == 0 && !empty(req->top)) {
		r = check_volume(&list, "top", req->top, d, err);
	}
	if (r == 0) {
		/* Running: the image's leaf by the metadata; else from the drive's leaf. */
		r = hsm_chain_build(&list, d->domain_id, d->image_id,
				    live->running ? NULL : d->volume_id, &mchain, err);
	}
	if (r == 0) {
		r = job_set_chain(job, &mchain, err);
	}
	if (r < 0) {
		goto out;
	}
	snprintf(job->base, sizeof(job->base), "%s", req->base);
	snprintf(job->top, sizeof(job->top), "%s", empty(req->top) ? job->chain[0] : req->top);
	if (live->running && !chain_equal(&mchain, live)) {
		char mtext[512], ltext[512];
		r = job_shape(job, true, req->direction, err);
		done_in_qemu = r == 0 && hsm_merge_job_chain_is_after(job, live->ids, live->n);
		if (!done_in_qemu) {
			pk_error_clear(err);
			chain_text(mtext, sizeof(mtext), job->chain, job->nchain);
			chain_text(ltext, sizeof(ltext), live->ids, live->n);
			r = pk_error_set(err, PK_E_ILLEGAL, EINVAL,
					 "the metadata chain (%s) and the live chain (%s) of drive '%s' "
					 "differ, and not by this merge; compare them with GetVolumeChain",
					 mtext, ltext, req->drive);
			goto out;
		}
	} else {
		r = job_shape(job, live->running, req->direction, err);
	}
	if (r == 0) {
		r = job_check_volumes(job, &list, done_in_qemu, err);
	}
	if (r == 0) {
		*ret_state = done_in_qemu ? HSM_MERGE_CLEANUP : HSM_MERGE_PREPARING;
	}
out:
	hsm_chain_release(&mchain);
	hsm_volume_list_release(&list);
	return r;
}

int hsm_merge_begin(struct hsm *hsm, const struct hsm_merge_request *req,
		    struct hsm_merge_job_info *ret, struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(hsm);
	struct hsm_merge_live *live = NULL;
	struct hsm_merge_job *job = NULL;
	enum hsm_merge_state state = HSM_MERGE_PREPARING;
	struct pk_lockset set;
	char id[PK_UUID_BUFLEN] = "";
	bool locked = false;
	int r;

	r = check_request(req, err);
	/* Early answer for a busy drive (hsm_merge_register checks again). */
	if (r == 0 && hsm_merge_drive_busy(hsm, req->vm, req->drive, id)) {
		r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
				 "drive '%s' of VM '%s' already has merge job '%s'; one job per drive",
				 req->drive, req->vm, id);
	}
	if (r < 0) {
		return r;
	}
	live = pk_xcalloc(1, sizeof(*live));
	r = hsm_merge_live_read(hsm, req->vm, req->drive, live, err);
	if (r == 0) {
		pk_lockset_init(&set, hsm->locks, "merge");
		hsm_lockset_add_vm(&set, req->vm);
		hsm_lockset_add_image(&set, live->drive.domain_id, live->drive.image_id);
		r = pk_lockset_acquire(&set, hsm->settings.lock_timeout_ms, err);
		locked = r == 0;
	}
	if (r == 0) {
		r = hsm_merge_live_read(hsm, req->vm, req->drive, live, err);
	}
	if (r == 0) {
		job = pk_xcalloc(1, sizeof(*job));
		r = plan(hsm, req, live, job, &state, err);
	}
	if (r == 0) {
		pk_uuid_generate(job->id);
		job->hsm = hsm;
		job->ev_status = -1;
		job->state = state;
		job->bandwidth = req->bandwidth;
		job->started_ms = pk_clock_realtime_ms();
		hsm_merge_job_info_of(job, ret);
		r = hsm_merge_register(m, job, err);
		if (r == 0) {
			job = NULL; /* owned by the registry (and running) */
			pk_log_info("merge job started job='%s' vm='%s' drive='%s' kind=%s top='%s' "
				    "base='%s' state=%s bandwidth=%" PRIu64, ret->id, ret->vm,
				    ret->drive, hsm_merge_kind_name(ret->kind), ret->top, ret->base,
				    hsm_merge_state_name(state), ret->bandwidth);
		}
	}
	if (locked) {
		pk_lockset_release(&set);
	}
	free(job);
	free(live);
	return r;
}

