/*
 * The engine flow of pkctl snapshot delete: deletes a snapshot volume of a
 * VM (the command, its options and output: ctl/cmd_snapshot.c):
 *
 *   hsmd VmList       the VM's drives, their live chains and state
 *   SPM ImageChain    the metadata chain of each drive's image: which drive
 *                     has the volume, where in the chain
 *   (VM down)         hsmd PrepareImage, so hsmd can run qemu-img on it
 *   hsmd Merge        the kind follows from the volume's place: the leaf is
 *                     committed into its parent (active commit + pivot), an
 *                     internal volume into its parent, a base volume whose
 *                     child is the leaf is pulled up into the leaf
 *   watch the job     ctl/flow_job.c; every state seen goes to report->job
 *   hsmd GetVolumeChain   the actual chain: metadata and live agree and no
 *                     longer hold the volume
 *   SPM DeleteVolume  the merged-away volume (an ILLEGAL orphan)
 *
 * Safe to re-run after any failure: a volume already merged away (ILLEGAL,
 * INTERNAL, outside the chain, absent from the live chain) is just deleted;
 * a merge done in qemu whose metadata is behind is finished by hsmd (its
 * Merge then runs CLEANUP only); a failed merge left the old chain intact
 * and is started again.
 *
 * An orphan that looks wrong (LEGAL, or still in the live chain) while a
 * merge job on its drive is unfinished is that job's work in flight: its
 * CLEANUP writes the metadata of several volumes, one LVM commit each (the
 * SPM's readers see them at once, but an SPM that crashed between two
 * commits leaves the first ones until the job runs CLEANUP again). The
 * flow then follows that job to its end and plans again, instead of
 * refusing.
 *
 * Already deleted (success, how "already deleted", the same result as a
 * delete that did the work, so engines can retry blindly). The flow
 * cannot ask the SPM about a volume that is gone: its LV and tags are all
 * there was. What it can know is hsmd's record of the merge that removed
 * it. So the rule is: the volume is in no chain and no orphan list of the
 * images of the VM's drives, AND hsmd holds a DONE merge job of this VM
 * whose drive has that image and which merged that very volume away (the
 * top of a commit, the base of a pull); the drive's chains must then
 * still agree without it. A volume id that meets the first half only (a
 * typo, another VM's volume, or a deletion so old that hsmd no longer
 * keeps the job: see keep_finished) is NOT_FOUND. Layers removed as the
 * middle of a multi-layer merge are not named by the job and so are
 * NOT_FOUND once gone. The race where another run deletes the orphan
 * between our plan and our DeleteVolume (NOT_FOUND) is already deleted
 * too, once ImageChain confirms the volume is gone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "ctl/flow.h"
#include "ctl/show.h"

struct del_plan {
	const Pk__DriveInfo *drive;
	char base[PK_UUID_BUFLEN];
	char top[PK_UUID_BUFLEN];
	Pk__MergeDirection dir;
	const char *how;   /* "active commit", "commit", "pull", "already merged", "cold ..." */
	bool orphan;       /* merged away already: only the deletion is left */
	bool gone;         /* deleted already (see the header): nothing is left */
	bool doubt;        /* refused an orphan that a running merge may explain */
	bool cold;
};

#define PLAN_WAITS 3 /* merge jobs followed before an orphan's refusal stands */

static bool in_strv(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i], s)) {
			return true;
		}
	}
	return false;
}

static int spm_image_chain(struct ctl *ctl, const char *domain, const char *image,
			   Pk__Response **ret, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__ImageChainRequest ic = PK__IMAGE_CHAIN_REQUEST__INIT;

	ic.domain_id = (char *)domain;
	ic.image_id = (char *)image;
	req.call_case = PK__REQUEST__CALL_IMAGE_CHAIN;
	req.image_chain = &ic;
	return ctl_call(ctl, CTL_SPM, &req, ret, err);
}

/* Where the volume is and what removes it. */
static int plan_delete(const Pk__VmInfo *vm, const char *volume, const Pk__DriveInfo *d,
		       const Pk__ImageChainResponse *c, Pk__MergeDirection want, bool want_set,
		       struct del_plan *p, struct pk_error *err)
{
	size_t n = c->n_volumes, pos = n;

	p->drive = d;
	p->cold = strcmp(vm->state, "running") && strcmp(vm->state, "paused") &&
		  strcmp(vm->state, "blocked");
	for (size_t i = 0; i < c->n_orphans; i++) {
		if (!strcmp(c->orphans[i]->volume_id, volume)) {
			const Pk__VolumeInfo *v = c->orphans[i];
			p->doubt = true;
			if (in_strv(d->live_chain, d->n_live_chain, volume)) {
				return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
						    "volume '%s' is outside the metadata chain but drive "
						    "%s of VM '%s' still uses it; repair the metadata first",
						    volume, d->target, vm->name);
			}
			if (v->legality != PK__LEGALITY__LEGALITY_ILLEGAL &&
			    v->legality != PK__LEGALITY__LEGALITY_REMOVING) {
				return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
						    "volume '%s' is outside the chain of image '%s' but "
						    "%s; it was not merged by poolkeeper", volume,
						    d->image_id, ctl_legality_name(v->legality));
			}
			p->doubt = false;
			p->orphan = true;
			p->how = "already merged";
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(c->volumes[i]->volume_id, volume)) {
			pos = i;
		}
	}
	if (n < 2) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume '%s' is the only volume of image '%s': nothing to merge "
				    "it with (delete the image instead)", volume, d->image_id);
	}
	snprintf(p->top, sizeof(p->top), "%s", volume);
	p->dir = PK__MERGE_DIRECTION__MERGE_COMMIT;
	if (pos == 0) {
		snprintf(p->base, sizeof(p->base), "%s", c->volumes[1]->volume_id);
		p->how = p->cold ? "cold commit of the leaf" : "active commit";
	} else if (pos + 1 < n && !(want_set && want == PK__MERGE_DIRECTION__MERGE_PULL)) {
		snprintf(p->base, sizeof(p->base), "%s", c->volumes[pos + 1]->volume_id);
		p->how = p->cold ? "cold commit" : "commit";
	} else if (pos == 1) {
		/* The base volume (or a pull asked for): its data goes up into the leaf. */
		snprintf(p->base, sizeof(p->base), "%s", volume);
		snprintf(p->top, sizeof(p->top), "%s", c->volumes[0]->volume_id);
		p->dir = PK__MERGE_DIRECTION__MERGE_PULL;
		p->how = "pull";
	} else {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume '%s' is %s of image '%s' and its child is not the leaf: a "
				    "pull would remove the layers above it too; delete those first",
				    volume, pos + 1 == n ? "the base" : "an internal volume",
				    d->image_id);
	}
	if (want_set && want == PK__MERGE_DIRECTION__MERGE_PULL &&
	    p->dir != PK__MERGE_DIRECTION__MERGE_PULL) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume '%s' is the leaf: it cannot be pulled, only committed",
				    volume);
	}
	return 0;
}

static int job_list(struct ctl *ctl, Pk__Response **ret)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__JobListRequest jl = PK__JOB_LIST_REQUEST__INIT;

	req.call_case = PK__REQUEST__CALL_JOB_LIST;
	req.job_list = &jl;
	return ctl_call(ctl, CTL_HSM, &req, ret, NULL);
}

/*
 * A DONE merge job of vm that removed volume from the image of one of its
 * drives (*ret_drive, in vm): the record that it is deleted, not unknown.
 */
static int find_done_job(struct ctl *ctl, const Pk__VmInfo *vm, const char *volume,
			 const Pk__DriveInfo **ret_drive)
{
	Pk__Response *resp = NULL;
	int r = -ENOENT;

	if (job_list(ctl, &resp) < 0) {
		return -EIO;
	}
	for (size_t i = 0; i < resp->job_list->n_jobs && r < 0; i++) {
		const Pk__JobInfo *j = resp->job_list->jobs[i];
		const char *removed = j->kind == PK__JOB_KIND__PULL ? j->base_id : j->top_id;

		if (j->state != PK__JOB_STATE__DONE || strcmp(j->vm, vm->name) ||
		    strcmp(removed, volume)) {
			continue;
		}
		for (size_t k = 0; k < vm->n_drives; k++) {
			const Pk__DriveInfo *d = vm->drives[k];
			if (!strcmp(d->target, j->drive) && !strcmp(d->image_id, j->image_id)) {
				*ret_drive = d;
				r = 0;
				break;
			}
		}
	}
	pk__response__free_unpacked(resp, NULL);
	return r;
}

static int find_volume(struct ctl *ctl, const Pk__VmInfo *vm, const char *volume,
		       Pk__MergeDirection want, bool want_set, struct del_plan *p,
		       struct pk_error *err)
{
	for (size_t i = 0; i < vm->n_drives; i++) {
		const Pk__DriveInfo *d = vm->drives[i];
		Pk__Response *resp = NULL;
		bool found = false;
		int r;

		r = spm_image_chain(ctl, d->domain_id, d->image_id, &resp, err);
		if (r < 0) {
			return r;
		}
		const Pk__ImageChainResponse *c = resp->image_chain;
		for (size_t k = 0; k < c->n_volumes; k++) {
			found |= !strcmp(c->volumes[k]->volume_id, volume);
		}
		for (size_t k = 0; k < c->n_orphans; k++) {
			found |= !strcmp(c->orphans[k]->volume_id, volume);
		}
		if (found) {
			r = plan_delete(vm, volume, d, c, want, want_set, p, err);
		}
		pk__response__free_unpacked(resp, NULL);
		if (found) {
			return r;
		}
	}
	if (find_done_job(ctl, vm, volume, &p->drive) == 0) {
		p->gone = true;
		p->how = "already deleted";
		return 0;
	}
	return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
			    "volume '%s' is not in the image of any drive of VM '%s', and no merge "
			    "job this host keeps removed it: check the id (a volume deleted long "
			    "ago is forgotten with its job)", volume, vm->name);
}

static int hsm_prepare(struct ctl *ctl, const Pk__DriveInfo *d, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PrepareImageRequest pi = PK__PREPARE_IMAGE_REQUEST__INIT;
	int r;

	pi.domain_id = d->domain_id;
	pi.image_id = d->image_id;
	pi.volume_id = d->volume_id;
	req.call_case = PK__REQUEST__CALL_PREPARE_IMAGE;
	req.prepare_image = &pi;
	r = ctl_call_discard(ctl, CTL_HSM, &req, err);
	return r;
}

/* The actual chain must agree with the metadata and no longer hold volume. */
static int check_chain(struct ctl *ctl, const char *vm, const Pk__DriveInfo *d,
		       const char *volume, Pk__Response **ret, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__GetVolumeChainRequest gc = PK__GET_VOLUME_CHAIN_REQUEST__INIT;
	const Pk__GetVolumeChainResponse *c;
	int r;

	gc.domain_id = d->domain_id;
	gc.image_id = d->image_id;
	gc.vm = (char *)vm;
	gc.drive = d->target;
	req.call_case = PK__REQUEST__CALL_GET_VOLUME_CHAIN;
	req.get_volume_chain = &gc;
	r = ctl_call(ctl, CTL_HSM, &req, ret, err);
	if (r < 0) {
		return r;
	}
	c = (*ret)->get_volume_chain;
	if (!c->consistent || in_strv(c->metadata_chain, c->n_metadata_chain, volume) ||
	    in_strv(c->live_chain, c->n_live_chain, volume)) {
		return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
				    "after the merge the chain of drive %s is not as expected "
				    "(metadata and live chains %s, volume '%s' %s); volume not "
				    "deleted", d->target, c->consistent ? "agree" : "DIFFER", volume,
				    in_strv(c->live_chain, c->n_live_chain, volume) ? "still in use"
										     : "still listed");
	}
	return 0;
}

/* The volume is in neither the chain nor the orphans of d's image. */
static bool volume_gone(struct ctl *ctl, const Pk__DriveInfo *d, const char *volume)
{
	Pk__Response *resp = NULL;
	bool gone = false;

	if (spm_image_chain(ctl, d->domain_id, d->image_id, &resp, NULL) == 0) {
		const Pk__ImageChainResponse *c = resp->image_chain;
		gone = true;
		for (size_t k = 0; k < c->n_volumes; k++) {
			gone &= strcmp(c->volumes[k]->volume_id, volume) != 0;
		}
		for (size_t k = 0; k < c->n_orphans; k++) {
			gone &= strcmp(c->orphans[k]->volume_id, volume) != 0;
		}
	}
	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
	return gone;
}

/* DeleteVolume of the orphan; *ret_gone when another run deleted it first. */
static int spm_delete(struct ctl *ctl, const Pk__DriveInfo *d, const char *volume,
		      bool *ret_gone, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__DeleteVolumeRequest dv = PK__DELETE_VOLUME_REQUEST__INIT;
	int r;

	dv.domain_id = d->domain_id;
	dv.image_id = d->image_id;
	dv.volume_id = (char *)volume;
	req.call_case = PK__REQUEST__CALL_DELETE_VOLUME;
	req.delete_volume = &dv;
	r = ctl_call_discard(ctl, CTL_SPM, &req, err);
	if (r < 0 && err && err->code == PK_E_NOT_FOUND && volume_gone(ctl, d, volume)) {
		pk_error_clear(err);
		*ret_gone = true;
		return 0;
	}
	if (r < 0) {
		pk_error_prefix(err, "volume '%s' is merged away but the SPM did not delete it "
				"(run the same command again)", volume);
	}
	return r;
}

/*
 * An unfinished job on the drive of vm; with base and top (NULL: any job),
 * only that merge. ret_id: its id. The drive already runs a job
 * (CONFLICT): when it is this very merge (an earlier run's, resumed by
 * hsmd), the flow follows it instead.
 */
static int find_running_job(struct ctl *ctl, const char *vm, const char *drive,
			    const char *base, const char *top, char ret_id[PK_UUID_BUFLEN])
{
	Pk__Response *resp = NULL;
	int r = -ENOENT;

	if (job_list(ctl, &resp) < 0) {
		return -EIO;
	}
	for (size_t i = 0; i < resp->job_list->n_jobs; i++) {
		const Pk__JobInfo *j = resp->job_list->jobs[i];
		if (!strcmp(j->vm, vm) && !strcmp(j->drive, drive) &&
		    j->state != PK__JOB_STATE__DONE && j->state != PK__JOB_STATE__FAILED &&
		    (!base || !strcmp(j->base_id, base)) && (!top || !strcmp(j->top_id, top))) {
			snprintf(ret_id, PK_UUID_BUFLEN, "%s", j->job_id);
			r = 0;
		}
	}
	pk__response__free_unpacked(resp, NULL);
	return r;
}

/* Follows job id to its end (its states go to report), its outcome dropped. */
static int follow_job(struct ctl *ctl, const struct ctl_flow_report *report, const char *id,
		      struct pk_error *err)
{
	struct ctl_flow_watch w;
	Pk__Response *fin = NULL;
	int r;

	ctl_flow_watch_init(&w, ctl, report);
	r = ctl_flow_watch_job(&w, id, &fin, err);
	ctl_flow_watch_release(&w);
	if (fin) {
		pk__response__free_unpacked(fin, NULL);
	}
	return r;
}

/*
 * Reads the VM and plans the deletion. An orphan refused while a merge job
 * on its drive is unfinished is that job's work in flight (see the
 * header): follow the job, then plan again. On failure *vm_resp may be set
 * (the caller frees it).
 */
static int plan(struct ctl *ctl, const struct ctl_snapshot_delete_opts *o,
		const struct ctl_flow_report *report, Pk__Response **vm_resp,
		const Pk__VmInfo **vm, struct del_plan *p, struct pk_error *err)
{
	for (unsigned i = 0;; i++) {
		char job_id[PK_UUID_BUFLEN];
		int r;

		memset(p, 0, sizeof(*p));
		r = ctl_vm_get(ctl, o->vm, vm_resp, vm, err);
		if (r == 0) {
			r = find_volume(ctl, *vm, o->volume, o->direction, o->direction_set, p, err);
		}
		if (r == 0 || !p->doubt || i == PLAN_WAITS ||
		    find_running_job(ctl, (*vm)->name, p->drive->target, NULL, NULL, job_id) < 0) {
			return r;
		}
		pk_error_clear(err);
		r = follow_job(ctl, report, job_id, err);
		pk__response__free_unpacked(*vm_resp, NULL);
		*vm_resp = NULL;
		if (r < 0) {
			return r;
		}
	}
}

int ctl_flow_snapshot_delete(struct ctl *ctl, const struct ctl_snapshot_delete_opts *o,
			     const struct ctl_flow_report *report,
			     struct ctl_snapshot_delete_result *ret, struct pk_error *err)
{
	Pk__Response *vm_resp = NULL, *merge_resp = NULL, *fin = NULL, *chain = NULL;
	const Pk__VmInfo *vm = NULL;
	struct del_plan p = { 0 };
	uint64_t t0 = pk_clock_monotonic_ms();
	struct ctl_flow_watch w = { 0 };
	char job_id[PK_UUID_BUFLEN] = "";
	bool watching = false;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = plan(ctl, o, report, &vm_resp, &vm, &p, err);
	if (r == 0 && !p.orphan && !p.gone) {
		if (p.cold) {
			r = hsm_prepare(ctl, p.drive, err);
		}
		if (r == 0) {
			ctl_flow_watch_init(&w, ctl, report);
			watching = true;
			r = ctl_merge_start(ctl, vm->name, p.drive->target, p.drive->domain_id,
					    p.drive->image_id, p.base, p.top, p.dir, o->bandwidth,
					    &merge_resp, err);
			if (r == 0) {
				snprintf(job_id, sizeof(job_id), "%s", merge_resp->merge->job->job_id);
			} else if (find_running_job(ctl, vm->name, p.drive->target, p.base, p.top,
						    job_id) == 0) {
				/*
				 * An earlier run's job (resumed by hsmd) is on this drive:
				 * CONFLICT, or it already moved the chain past what we
				 * planned from. Follow it.
				 */
				pk_error_clear(err);
				r = 0;
			} else if (err && err->code == PK_E_INVALID_ARGUMENT) {
				/* The chain changed under us (a resumed job just ended): plan again. */
				struct pk_error again = { PK_OK, "" };
				Pk__Response *vm2 = NULL;
				const Pk__VmInfo *vi = NULL;
				struct del_plan p2 = { 0 };

				if (ctl_vm_get(ctl, o->vm, &vm2, &vi, &again) == 0 &&
				    find_volume(ctl, vi, o->volume, o->direction, o->direction_set,
						&p2, &again) == 0 &&
				    (p2.orphan || p2.gone)) {
					pk__response__free_unpacked(vm_resp, NULL);
					vm_resp = vm2;
					vm = vi;
					p = p2;
					vm2 = NULL;
					pk_error_clear(err);
					r = 0;
				}
				if (vm2) {
					pk__response__free_unpacked(vm2, NULL);
				}
			}
		}
		if (r == 0 && !p.orphan && !p.gone) {
			r = ctl_flow_watch_job(&w, job_id, &fin, err);
		}
		if (watching) {
			ctl_flow_watch_release(&w);
		}
		if (r == 0 && fin && fin->job_get->job->state == PK__JOB_STATE__FAILED) {
			r = ctl_merge_job_error(fin->job_get->job, err);
		}
	}
	if (r == 0) {
		r = check_chain(ctl, vm->name, p.drive, o->volume, &chain, err);
	}
	if (r == 0 && !p.gone) {
		r = spm_delete(ctl, p.drive, o->volume, &p.gone, err);
	}
	if (r == 0) {
		snprintf(ret->volume, sizeof(ret->volume), "%s", o->volume);
		snprintf(ret->drive, sizeof(ret->drive), "%s", p.drive->target);
		ret->how = p.gone ? "already deleted" : p.how;
		ret->already_deleted = p.gone;
		ret->job_resp = fin;
		ret->job = fin ? fin->job_get->job : NULL;
		ret->chain_resp = chain;
		ret->chain = chain->get_volume_chain;
		ret->elapsed_ms = pk_clock_monotonic_ms() - t0;
		fin = NULL;
		chain = NULL;
	}
	if (vm_resp) {
		pk__response__free_unpacked(vm_resp, NULL);
	}
	if (merge_resp) {
		pk__response__free_unpacked(merge_resp, NULL);
	}
	if (fin) {
		pk__response__free_unpacked(fin, NULL);
	}
	if (chain) {
		pk__response__free_unpacked(chain, NULL);
	}
	return r;
}

void ctl_snapshot_delete_result_release(struct ctl_snapshot_delete_result *res)
{
	if (res->job_resp) {
		pk__response__free_unpacked(res->job_resp, NULL);
	}
	if (res->chain_resp) {
		pk__response__free_unpacked(res->chain_resp, NULL);
	}
	memset(res, 0, sizeof(*res));
}
