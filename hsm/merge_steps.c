/*
 * Steps shared by live and cold merge jobs: EXTENDING (measure what the
 * receiving volume must hold, have the SPM grow it, refresh it here) and
 * CLEANUP (metadata through the SPM, the VM's drive metadata, teardown of
 * the removed volumes on this host); and the chain of the qcow2 headers
 * as volume ids (read by hsm/chain.h hsm_image_header_chain).
 *
 * qemu-img runs with -U (force-share) on images a running qemu holds: it
 * only reads them; and always with the formats of the volume metadata
 * (json: specs), never probing one (hsm/qemu_img.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/activation.h"
#include "common/fault.h"
#include "common/locks.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/proc.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "hsm/chain.h"
#include "hsm/image.h"
#include "hsm/merge_job.h"
#include "hsm/qemu_img.h"
#include "hsm/spm_calls.h"

#define MIB ((uint64_t)1024 * 1024)
#define DEACTIVATE_TRIES 20

bool hsm_merge_error_transient(const struct pk_error *err)
{
	switch (err->code) {
	case PK_E_UNAVAILABLE:
	case PK_E_TIMEOUT:
	case PK_E_BUSY:
	case PK_E_NOT_SPM:
		return true;
	default:
		return false;
	}
}

enum hsm_merge_step hsm_merge_step_of(int r, const struct pk_error *err)
{
	if (r == 0) {
		return HSM_MERGE_STEP_MOVED;
	}
	return hsm_merge_error_transient(err) ? HSM_MERGE_STEP_RETRY : HSM_MERGE_STEP_FAIL;
}

/* ---- paths ------------------------------------------------------------------------- */

static int link_path(struct hsm *hsm, const char *domain, const char *image, const char *volume,
		     char path[HSM_PATH_MAX], struct pk_error *err)
{
	return hsm_image_link_path(hsm, domain, image, volume, path, HSM_PATH_MAX, err);
}

/* qemu's protocol driver for a path: a block device or a file. */
static const char *proto_driver(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISBLK(st.st_mode) ? "host_device" : "file";
}

int hsm_merge_disk_chain(struct hsm *hsm, const char *domain, const char *image,
			 const char *leaf, char (*ids)[PK_UUID_BUFLEN], size_t *ret_n,
			 struct pk_error *err)
{
	char prefix[HSM_PATH_MAX + 2 * PK_UUID_BUFLEN + 4];
	char **names = NULL;
	size_t n = 0, plen;
	int r;

	r = hsm_image_header_chain(hsm, domain, image, leaf, &names, &n, err);
	if (r < 0) {
		return r;
	}
	if (n > HSM_MERGE_CHAIN_MAX) {
		pk_strv_free(names);
		return pk_error_set(err, PK_E_ILLEGAL, E2BIG,
				    "the backing chain of volume '%s' has more than %d layers", leaf,
				    HSM_MERGE_CHAIN_MAX);
	}
	snprintf(prefix, sizeof(prefix), "%s/%s/%s/", hsm->storage_dir, domain, image);
	plen = strlen(prefix);
	for (size_t i = 0; i < n; i++) {
		ids[i][0] = '\0';
		if (!strncmp(names[i], prefix, plen) && pk_uuid_valid(names[i] + plen)) {
			snprintf(ids[i], PK_UUID_BUFLEN, "%s", names[i] + plen);
		}
	}
	pk_strv_free(names);
	*ret_n = n;
	return 0;
}

/* ---- EXTENDING ------------------------------------------------------------------------ */

/* qemu-img measure of the sub-chain chain[lo..hi] with no backing below hi. */
static int measure_layers(struct hsm_merge_job *job, const struct hsm_volume_list *list,
			  size_t lo, size_t hi, uint64_t *ret, struct pk_error *err)
{
	char *spec = pk_xstrdup("json:"), *out = NULL;
	int r = 0;

	for (size_t i = lo; i <= hi && r == 0; i++) {
		const struct hsm_volume *v = hsm_volume_list_find(list, job->chain[i]);
		char path[HSM_PATH_MAX];
		bool cow = v && v->meta.format == PK_VOLUME_COW;
		char *next;

		r = link_path(job->hsm, job->domain, job->image, job->chain[i], path, err);
		if (r == 0 && strpbrk(path, "\"\\")) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "path '%s' cannot be passed to qemu-img", path);
		}
		if (r < 0) {
			break;
		}
		next = pk_xasprintf("%s%s{\"driver\":\"%s\",\"file\":{\"driver\":\"%s\","
				    "\"filename\":\"%s\"}%s", spec, i == lo ? "" : ",\"backing\":",
				    cow ? "qcow2" : "raw", proto_driver(path), path,
				    cow && i == hi ? ",\"backing\":null" : "");
		free(spec);
		spec = next;
	}
	for (size_t i = lo; i <= hi && r == 0; i++) {
		char *next = pk_xasprintf("%s}", spec);
		free(spec);
		spec = next;
	}
	if (r == 0) {
		const char *argv[] = { "qemu-img", "measure", "-U", "--output=json", "-O", "qcow2",
				       spec, NULL };
		r = pk_proc_check(argv, HSM_QEMU_IMG_TIMEOUT_MS, PK_E_IO, &out, err);
	}
	if (r == 0 && hsm_qemu_img_json_u64(out, "required", ret) < 0) {
		r = pk_error_set(err, PK_E_INTERNAL, EINVAL, "qemu-img measure gave no size");
	}
	free(out);
	free(spec);
	return r;
}

enum hsm_merge_step hsm_merge_step_extend(struct hsm_merge_job *job, struct pk_error *err)
{
	enum hsm_merge_step s = HSM_MERGE_STEP_MOVED;
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct hsm_volume_list list = { 0 };
	const char *target = hsm_merge_job_target(job);
	const struct hsm_volume *v;
	uint64_t need = 0, end = 0, data = 0, full = 0, lv_size = 0;
	size_t lo, hi;
	char path[HSM_PATH_MAX];
	int r;

	r = hsm_volumes_read(job->hsm, job->domain, &list, err);
	if (r < 0) {
		return hsm_merge_step_of(r, err);
	}
	v = hsm_volume_list_find(&list, target);
	if (!v) {
		pk_error_set(err, PK_E_ILLEGAL, ENOENT, "volume '%s' vanished", target);
		s = HSM_MERGE_STEP_FAIL;
		goto out;
	}
	hsm_merge_job_removed(job, &lo, &hi);
	/* What the merged layers hold: the size to ask for, and the progress scale. */
	r = measure_layers(job, &list, lo, hi, &data, err);
	if (r < 0) {
		s = HSM_MERGE_STEP_FAIL;
		goto out;
	}
	if (v->meta.format == PK_VOLUME_RAW) {
		need = v->meta.capacity;
	} else {
		r = link_path(job->hsm, job->domain, job->image, target, path, err);
		if (r == 0 && hsm_qemu_img_image_end(path, &end, err) < 0) {
			pk_error_clear(err);
			end = v->lv_size; /* unknown: assume it is full */
		}
		if (r == 0) {
			r = hsm_qemu_img_measure_full(v->meta.capacity, &full, err);
		}
		if (r < 0) {
			s = HSM_MERGE_STEP_FAIL;
			goto out;
		}
		need = end + data;
		if (job->kind == HSM_MERGE_ACTIVE_COMMIT || job->kind == HSM_MERGE_PULL) {
			need += m->headroom;
		}
		if (need > full) {
			need = full;
		}
	}
	need = (need + MIB - 1) / MIB * MIB;
	hsm_merge_job_progress(job, 0, data ? data : 1);
	pk_log_info("merge job job='%s': volume '%s' needs %" PRIu64 " MiB (data end %" PRIu64
		    " MiB + merged %" PRIu64 " MiB%s), has %" PRIu64 " MiB", job->id, target,
		    need / MIB, end / MIB, data / MIB,
		    job->kind == HSM_MERGE_ACTIVE_COMMIT || job->kind == HSM_MERGE_PULL
			    ? " + headroom" : "", v->lv_size / MIB);
	if (need <= v->lv_size) {
		goto out;
	}
	r = hsm_merge_job_record_set(job, HSM_MERGE_FIELD_EXTEND_SIZE, need, err);
	if (r < 0) {
		s = HSM_MERGE_STEP_RETRY;
		goto out;
	}
	r = hsm_spm_volume_extend(job->hsm, job->domain, job->image, target, need, &lv_size, err);
	s = hsm_merge_spm_result(job, r, err);
	if (r < 0) {
		pk_error_prefix(err, "cannot extend volume '%s' to %" PRIu64 " MiB", target, need / MIB);
		goto out;
	}
	r = hsm_volume_refresh(job->hsm, job->domain, job->image, target, NULL, err);
	if (r < 0) {
		pk_error_prefix(err, "volume '%s' was extended but cannot be refreshed here", target);
		s = hsm_merge_step_of(r, err);
		goto out;
	}
	pk_log_info("merge job job='%s': volume '%s' extended to %" PRIu64 " MiB and refreshed",
		    job->id, target, lv_size / MIB);
out:
	hsm_volume_list_release(&list);
	return s;
}

/* ---- CLEANUP --------------------------------------------------------------------------- */

/*
 * Runs the idempotent SPM call of changes: MOVED; RETRY while no SPM
 * answers (hsm_merge_spm_result: CLEANUP then runs again from its start,
 * its locks released meanwhile); FAIL for a refusal or a wait too long.
 */
static enum hsm_merge_step spm_update(struct hsm_merge_job *job,
				      const struct pk_spm_meta_change *changes, size_t n,
				      struct pk_error *err)
{
	enum hsm_merge_step s;
	int r;

	r = hsm_spm_volumes_meta_update(job->hsm, job->domain, job->image, changes, n, err);
	s = hsm_merge_spm_result(job, r, err);
	if (r < 0) {
		pk_error_prefix(err, "cannot update the metadata of image '%s' (%zu volume(s))",
				job->image, n);
	}
	return s;
}

/* Our drive metadata names the new leaf (after a commit of the leaf). */
static int drive_meta_update(struct hsm_merge_job *job, const char *leaf, struct pk_error *err)
{
	struct hsm_drive_id *drives = NULL;
	char *xml = NULL, *next = NULL;
	size_t n = 0;
	bool found = false, changed = false;
	int r;

	r = hsm_virt_ready(job->hsm, err);
	if (r == 0) {
		r = hsm_virt_metadata_get(job->hsm->virt, job->vm, &xml, err);
	}
	if (r == 0) {
		r = hsm_vmxml_metadata_parse(xml, &drives, &n, err);
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!strcmp(drives[i].target, job->drive)) {
			found = true;
			changed = strcmp(drives[i].volume_id, leaf) != 0;
			snprintf(drives[i].volume_id, sizeof(drives[i].volume_id), "%s", leaf);
		}
	}
	if (r == 0 && !found) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' has no drive '%s' any more",
				 job->vm, job->drive);
	}
	if (r == 0 && changed) {
		r = hsm_vmxml_metadata_build(drives, n, &next, err);
		if (r == 0) {
			r = hsm_virt_metadata_set(job->hsm->virt, job->vm, next, err);
		}
	}
	free(next);
	free(xml);
	free(drives);
	return r;
}

/* Removes the link of a merged-away volume and deactivates its LV here:
 * MOVED, STOP or FAIL. */
static enum hsm_merge_step teardown_volume(struct hsm_merge_job *job, const char *volume,
					   struct pk_error *err)
{
	char path[HSM_PATH_MAX];
	int r;

	r = link_path(job->hsm, job->domain, job->image, volume, path, err);
	if (r < 0) {
		return HSM_MERGE_STEP_FAIL;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		pk_error_set(err, PK_E_IO, errno, "cannot remove link '%s': %s", path,
			     strerror(errno));
		return HSM_MERGE_STEP_FAIL;
	}
	for (unsigned i = 0; i < DEACTIVATE_TRIES; i++) {
		pk_error_clear(err);
		r = pk_activation_deactivate(job->hsm->act, job->domain, volume, err);
		if (r == 0 || err->code != PK_E_IN_USE) {
			break;
		}
		/* qemu may still be closing the node it dropped. */
		if (hsm_merge_sleep(job, 250)) {
			return HSM_MERGE_STEP_STOP;
		}
	}
	if (r < 0) {
		pk_error_prefix(err, "merged volume '%s' cannot be deactivated on this host", volume);
		return HSM_MERGE_STEP_FAIL;
	}
	/* Untagged, or DeleteVolume refuses the orphan as prepared here. */
	r = hsm_spm_image_prepared(job->hsm, job->domain, job->image, volume, false, err);
	if (r < 0) {
		pk_error_prefix(err, "the SPM was not told that merged volume '%s' is torn down",
				volume);
		return hsm_merge_step_of(r, err);
	}
	return HSM_MERGE_STEP_MOVED;
}

enum hsm_merge_step hsm_merge_step_cleanup(struct hsm_merge_job *job, struct pk_error *err)
{
	enum hsm_merge_step s = HSM_MERGE_STEP_MOVED;
	struct pk_lockset set;
	const char *child = hsm_merge_job_child(job);
	const char *new_leaf = hsm_merge_job_new_leaf(job);
	bool leaf_commit = job->kind == HSM_MERGE_ACTIVE_COMMIT ||
			   (job->kind == HSM_MERGE_COLD_COMMIT && job->active_leaf);
	size_t lo, hi;
	int r;

	pk_lockset_init(&set, job->hsm->locks, "merge cleanup");
	hsm_lockset_add_vm(&set, job->vm);
	hsm_lockset_add_image(&set, job->domain, job->image);
	r = pk_lockset_acquire(&set, job->hsm->settings.lock_timeout_ms, err);
	if (r < 0) {
		return HSM_MERGE_STEP_RETRY;
	}
	hsm_merge_job_removed(job, &lo, &hi);
	/*
	 * 1. The metadata in one SPM call, which its readers (ImageChain) see
	 * whole or not at all: the child's new parent skips the removed layers,
	 * the removed layers become orphans (ILLEGAL, INTERNAL), and after a
	 * commit of the leaf the base is the leaf again. The SPM writes them in
	 * this order, one LVM commit each: a crash between two leaves the
	 * child re-parented first, so no reader ever finds two tops (the base
	 * without a child while the old child still names a removed layer);
	 * the orphans may then stay LEGAL until this step runs again, which
	 * readers allow for while this job is unfinished.
	 */
	{
		struct pk_spm_meta_change changes[HSM_MERGE_CHAIN_MAX + 2];
		size_t n = 0;

		if (*child) {
			changes[n++] = (struct pk_spm_meta_change){
				.volume = child,
				.u = { .set_parent = true, .parent = hsm_merge_job_new_parent(job) },
			};
		}
		for (size_t i = lo; i <= hi; i++) {
			changes[n++] = (struct pk_spm_meta_change){
				.volume = job->chain[i],
				.u = { .role = PK_VOLUME_INTERNAL, .legality = PK_VOLUME_ILLEGAL },
			};
		}
		if (leaf_commit) {
			changes[n++] = (struct pk_spm_meta_change){
				.volume = job->base,
				.u = { .role = PK_VOLUME_LEAF },
			};
		}
		s = spm_update(job, changes, n, err);
	}
	if (s == HSM_MERGE_STEP_MOVED) {
		pk_fault_point("merge:cleanup:orphaned");
	}
	/* 3. Our drive metadata names the leaf. */
	if (s == HSM_MERGE_STEP_MOVED && leaf_commit) {
		r = drive_meta_update(job, new_leaf, err);
		if (r < 0) {
			pk_error_prefix(err, "cannot record the new leaf '%s' in VM '%s'", new_leaf,
					job->vm);
			s = hsm_merge_step_of(r, err);
		}
	}
	if (s == HSM_MERGE_STEP_MOVED) {
		pk_fault_point("merge:cleanup:synced");
	}
	/* 4. Nothing of the removed layers stays open here. */
	for (size_t i = lo; i <= hi && s == HSM_MERGE_STEP_MOVED; i++) {
		s = teardown_volume(job, job->chain[i], err);
	}
	pk_lockset_release(&set);
	if (s == HSM_MERGE_STEP_MOVED) {
		pk_log_info("merge job job='%s': metadata synced, %zu volume(s) orphaned and torn "
			    "down, leaf '%s'", job->id, hi - lo + 1, new_leaf);
	}
	return s;
}
