/*
 * The thread of a merge job: runs its states until DONE or FAILED (or
 * until hsmd stops; the record then lets the next hsmd resume it).
 *
 * Every step starts from what libvirt and the storage say now, never from
 * what this thread believed before a crash: the live XML chain, the block
 * job on the disk, the chain in the qcow2 headers of a stopped VM. So a
 * resumed job, a reconnection to a restarted libvirtd and a missed event
 * all go through the same code.
 *
 * Every step answers an enum hsm_merge_step (hsm/merge_job.h): moved,
 * stop, retry a transient failure (libvirtd or the SPM away: the loop
 * retries for a while), or fail the job.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "hsm/merge_job.h"
#include "hsm/spm_calls.h"

#define START_ATTEMPTS_MAX 3
#define PIVOT_ATTEMPTS_MAX 3
#define POLL_MS 500
#define PIVOT_TIMEOUT_MS 60000
#define PIVOT_SETTLE_MS 5000 /* job gone, no end event: time for the XML to follow */
#define PIVOT_KEPT_MS 2000   /* ready='yes' this long after the ask: qemu kept the leaf */
#define ABORT_TIMEOUT_MS 30000
#define VANISH_CONFIRM_MS 1000
#define TRANSIENT_LIMIT_MS (30u * 60 * 1000)

static enum hsm_merge_state job_state(struct hsm_merge_job *job)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	enum hsm_merge_state s;

	pthread_mutex_lock(&m->lock);
	s = job->state;
	pthread_mutex_unlock(&m->lock);
	return s;
}

static bool ev_ready(struct hsm_merge_job *job)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	bool r;

	pthread_mutex_lock(&m->lock);
	r = job->ev_ready;
	pthread_mutex_unlock(&m->lock);
	return r;
}

static bool is_active_commit(const struct hsm_merge_job *job)
{
	return job->kind == HSM_MERGE_ACTIVE_COMMIT;
}

/* Reads the drive's live view; NOT_FOUND (VM gone) is final. */
static enum hsm_merge_step live_read(struct hsm_merge_job *job, struct hsm_merge_live *live,
				     struct pk_error *err)
{
	return hsm_merge_step_of(hsm_merge_live_read(job->hsm, job->vm, job->drive, live, err),
				 err);
}

/* ---- the old leaf's legality around a pivot ------------------------------------- */

/* The record is written before the mark and after the unmark: merge_job.h. */
enum hsm_merge_step hsm_merge_leaf_set_legal(struct hsm_merge_job *job, bool legal,
					     struct pk_error *err)
{
	struct pk_spm_meta_update u = {
		.legality = legal ? PK_VOLUME_LEGAL : PK_VOLUME_ILLEGAL,
	};
	int r;

	if (!legal && !job->leaf_illegal) {
		/* No mark the record does not name: a resumed job must know to undo it. */
		r = hsm_merge_job_record_set(job, HSM_MERGE_FIELD_LEAF_ILLEGAL, true, err);
		if (r < 0) {
			pk_error_prefix(err, "the old leaf '%s' is not marked ILLEGAL", job->top);
			return HSM_MERGE_STEP_RETRY;
		}
	}
	r = hsm_spm_volume_meta_update(job->hsm, job->domain, job->image, job->top, &u, err);
	if (r < 0) {
		pk_error_prefix(err, "cannot mark the old leaf '%s' %s", job->top,
				legal ? "LEGAL again" : "ILLEGAL before the pivot");
		return hsm_merge_step_of(r, err);
	}
	if (legal) {
		/* A record that still says ILLEGAL is safe: a resumed job marks the
		 * leaf LEGAL once more (idempotent), and the next write forgets it. */
		if (hsm_merge_job_record_set(job, HSM_MERGE_FIELD_LEAF_ILLEGAL, false, err) < 0) {
			struct hsm_merge *m = hsm_merge_of(job->hsm);
			pthread_mutex_lock(&m->lock);
			job->leaf_illegal = false;
			pthread_mutex_unlock(&m->lock);
			pk_log_warn("merge job job='%s': %s", job->id, err->message);
			pk_error_clear(err);
		}
	}
	return HSM_MERGE_STEP_MOVED;
}

/* Restores the old leaf LEGAL (bounded retries) when a pivot did not happen. */
enum hsm_merge_step hsm_merge_leaf_restore(struct hsm_merge_job *job, struct pk_error *err)
{
	enum hsm_merge_step s = HSM_MERGE_STEP_MOVED;

	if (!job->leaf_illegal) {
		return HSM_MERGE_STEP_MOVED;
	}
	for (unsigned i = 0; i < 10; i++) {
		pk_error_clear(err);
		s = hsm_merge_leaf_set_legal(job, true, err);
		if (s != HSM_MERGE_STEP_RETRY) {
			break;
		}
		if (hsm_merge_sleep(job, 500u << (i < 4 ? i : 4))) {
			return HSM_MERGE_STEP_STOP;
		}
	}
	if (s != HSM_MERGE_STEP_MOVED) {
		pk_log_error("merge job job='%s': the old leaf '%s' stays ILLEGAL: %s; re-run the "
			     "merge to finish or repair it", job->id, job->top, err->message);
	}
	return s;
}

/* Cancels a block job still running on the drive (best effort, no wait). */
static void cancel_block_job(struct hsm_merge_job *job)
{
	struct pk_error err = { PK_OK, "" };
	struct hsm_virt_job_info info;

	if (hsm_virt_ready(job->hsm, &err) < 0 ||
	    hsm_virt_block_job_info(job->hsm->virt, job->vm, job->drive, &info, &err) < 0 ||
	    !info.active) {
		return;
	}
	if (hsm_virt_block_job_abort(job->hsm->virt, job->vm, job->drive, false, &err) < 0) {
		pk_log_warn("merge job job='%s': cannot cancel the block job of vm='%s' drive='%s': %s",
			    job->id, job->vm, job->drive, err.message);
	}
}

/*
 * The VM stopped: decide from the chain in the qcow2 headers. If the merge
 * completed in qemu before the stop, only CLEANUP is left; otherwise the
 * old chain is intact and the job fails cleanly.
 */
enum hsm_merge_step hsm_merge_stopped_chain_is_after(struct hsm_merge_job *job,
						    const struct hsm_merge_live *live,
						    bool *ret_after, struct pk_error *err)
{
	char (*ids)[PK_UUID_BUFLEN] = pk_xcalloc(HSM_MERGE_CHAIN_MAX, PK_UUID_BUFLEN);
	/* After a pivot the definition names base as the leaf. */
	const char *leaf = is_active_commit(job) ? live->ids[0] : job->chain[0];
	size_t n = 0;
	int r;

	r = hsm_merge_disk_chain(job->hsm, job->domain, job->image, leaf, ids, &n, err);
	*ret_after = r == 0 &&
		     hsm_merge_job_chain_is_after(job, (const char(*)[PK_UUID_BUFLEN])ids, n);
	free(ids);
	return r < 0 ? HSM_MERGE_STEP_FAIL : HSM_MERGE_STEP_MOVED;
}

/*
 * The VM stopped: decide from the chain in the qcow2 headers. If the merge
 * completed in qemu before the stop, only CLEANUP is left; otherwise the
 * old chain is intact and the job fails cleanly.
 */
static enum hsm_merge_step vm_stopped(struct hsm_merge_job *job, struct pk_error *err)
{
	struct hsm_merge_live live;
	enum hsm_merge_step s;
	bool after = false;

	s = live_read(job, &live, err);
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	s = hsm_merge_stopped_chain_is_after(job, &live, &after, err);
	if (s == HSM_MERGE_STEP_MOVED && after) {
		pk_log_warn("merge job job='%s': VM '%s' stopped after the merge completed in qemu; "
			    "finishing the cleanup", job->id, job->vm);
		return hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, err);
	}
	if (s != HSM_MERGE_STEP_MOVED) {
		pk_error_prefix(err, "VM '%s' stopped during the merge and its chain cannot be read",
				job->vm);
		return HSM_MERGE_STEP_FAIL;
	}
	s = hsm_merge_leaf_restore(job, err);
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	pk_error_set(err, PK_E_ABORTED, ECANCELED,
		     "VM '%s' stopped during the merge; the chain before the merge is intact "
		     "and the VM can be started from it; merge again afterwards", job->vm);
	return HSM_MERGE_STEP_FAIL;
}

/*
 * One look at the drive for a step's loop: job info first (once libvirt
 * forgets a job, the XML shows its result), then the live XML. *ret_seen
 * is true when both were read off a running VM; otherwise the answer is
 * the step to return: vm_stopped's decision for a VM that stopped, RETRY
 * while libvirtd is away, FAIL when a running VM's job cannot be read.
 */
static enum hsm_merge_step drive_observe(struct hsm_merge_job *job,
					 struct hsm_virt_job_info *info,
					 struct hsm_merge_live *live, bool *ret_seen,
					 struct pk_error *err)
{
	struct pk_error info_err = { PK_OK, "" };
	enum hsm_merge_step s;
	int ri;

	*ret_seen = false;
	ri = hsm_virt_ready(job->hsm, &info_err);
	if (ri == 0) {
		ri = hsm_virt_block_job_info(job->hsm->virt, job->vm, job->drive, info, &info_err);
	}
	if (ri < 0 && hsm_merge_error_transient(&info_err)) {
		*err = info_err;
		return HSM_MERGE_STEP_RETRY;
	}
	s = live_read(job, live, err);
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	if (!live->running) {
		return vm_stopped(job, err);
	}
	if (ri < 0) {
		*err = info_err; /* the VM runs but its block job cannot be read */
		return HSM_MERGE_STEP_FAIL;
	}
	*ret_seen = true;
	return HSM_MERGE_STEP_MOVED;
}

/* ---- PREPARING ------------------------------------------------------------------- */

static enum hsm_merge_step step_prepare(struct hsm_merge_job *job, struct pk_error *err)
{
	struct hsm_merge_live live;
	enum hsm_merge_step s;

	pk_fault_point("merge:preparing");
	s = live_read(job, &live, err);
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	if (!live.running) {
		pk_error_set(err, PK_E_ABORTED, ECANCELED,
			     "VM '%s' stopped before the merge started; nothing changed", job->vm);
		return HSM_MERGE_STEP_FAIL;
	}
	if (hsm_merge_job_chain_is_before(job, live.ids, live.n)) {
		return hsm_merge_job_step_to(job, HSM_MERGE_EXTENDING, err);
	}
	pk_error_set(err, PK_E_ILLEGAL, EINVAL,
		     "the chain of drive '%s' of VM '%s' changed before the merge started; "
		     "nothing was done", job->drive, job->vm);
	return HSM_MERGE_STEP_FAIL;
}

/* ---- COMMITTING -------------------------------------------------------------------- */

static enum hsm_merge_step start_block_job(struct hsm_merge_job *job,
					   const struct hsm_merge_live *live, struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	char base[64] = "", top[64] = "";
	const char *new_parent;
	int r;

	if (job->kind == HSM_MERGE_PULL) {
		new_parent = hsm_merge_job_new_parent(job);
		r = *new_parent ? hsm_merge_live_ref(live, job->drive, new_parent, base, sizeof(base),
						     err)
				: 0;
	} else {
		r = hsm_merge_live_ref(live, job->drive, job->base, base, sizeof(base), err);
		if (r == 0 && !is_active_commit(job)) {
			r = hsm_merge_live_ref(live, job->drive, job->top, top, sizeof(top), err);
		}
	}
	if (r < 0) {
		return HSM_MERGE_STEP_FAIL;
	}
	/* Counted in the record before it starts: bounded across restarts too. */
	r = hsm_merge_job_record_set(job, HSM_MERGE_FIELD_ATTEMPTS, job->attempts + 1, err);
	if (r < 0) {
		return HSM_MERGE_STEP_RETRY;
	}
	pthread_mutex_lock(&m->lock);
	job->ev_status = -1;
	job->ev_ready = false;
	pthread_mutex_unlock(&m->lock);
	if (job->kind == HSM_MERGE_PULL) {
		r = hsm_virt_block_pull(job->hsm->virt, job->vm, job->drive, *base ? base : NULL,
					hsm_merge_job_bandwidth(job), err);
	} else {
		/* Unlimited once the limit was lifted for the last pass. */
		r = hsm_virt_block_commit(job->hsm->virt, job->vm, job->drive, base,
					  is_active_commit(job) ? NULL : top, is_active_commit(job),
					  hsm_merge_job_bandwidth(job), err);
	}
	if (r < 0) {
		return hsm_merge_step_of(r, err);
	}
	pk_log_info("merge job job='%s': block job started vm='%s' drive='%s' kind=%s base='%s' "
		    "top='%s' attempt=%u", job->id, job->vm, job->drive,
		    hsm_merge_kind_name(job->kind), base, top, job->attempts);
	return HSM_MERGE_STEP_MOVED;
}

static bool job_type_matches(const struct hsm_merge_job *job, enum hsm_virt_job_type t)
{
	switch (job->kind) {
	case HSM_MERGE_PULL: return t == HSM_VIRT_JOB_PULL;
	case HSM_MERGE_ACTIVE_COMMIT: return t == HSM_VIRT_JOB_ACTIVE_COMMIT;
	default: return t == HSM_VIRT_JOB_COMMIT;
	}
}

/* The block job is gone and the chain did not change: why? */
static enum hsm_merge_step job_vanished(struct hsm_merge_job *job,
					const struct hsm_merge_live *live, struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	int status;

	pthread_mutex_lock(&m->lock);
	status = job->ev_status;
	pthread_mutex_unlock(&m->lock);
	if (job->attempts == 0) {
		return start_block_job(job, live, err);
	}
	if (status == HSM_VIRT_JOB_FAILED) {
		pk_error_set(err, PK_E_IO, EIO,
			     "the block job of drive '%s' failed in qemu (see libvirtd's and qemu's "
			     "logs); the chain before the merge is intact", job->drive);
		return HSM_MERGE_STEP_FAIL;
	}
	if (job->attempts >= START_ATTEMPTS_MAX) {
		pk_error_set(err, PK_E_ABORTED, ECANCELED,
			     "the block job of drive '%s' ended %d times without merging (last: %s); "
			     "the chain before the merge is intact", job->drive, job->attempts,
			     status == HSM_VIRT_JOB_CANCELED ? "cancelled outside poolkeeper"
							     : "vanished");
		return HSM_MERGE_STEP_FAIL;
	}
	pk_log_warn("merge job job='%s': the block job of vm='%s' drive='%s' vanished (%s) with "
		    "the chain unchanged; starting it again", job->id, job->vm, job->drive,
		    status == HSM_VIRT_JOB_CANCELED ? "cancelled" : "no event");
	return start_block_job(job, live, err);
}

static enum hsm_merge_step step_commit(struct hsm_merge_job *job, struct pk_error *err)
{
	uint64_t gone_since = 0;
	enum hsm_merge_step s;

	for (;;) {
		struct hsm_merge_live live;
		struct hsm_virt_job_info info;
		bool seen;

		if (hsm_merge_stopping(job)) {
			return HSM_MERGE_STEP_STOP;
		}
		if (hsm_merge_abort_requested(job)) {
			return hsm_merge_job_step_to(job, HSM_MERGE_ABORTING, err);
		}
		s = drive_observe(job, &info, &live, &seen, err);
		if (!seen) {
			return s;
		}
		if (info.active) {
			gone_since = 0;
			if (!job_type_matches(job, info.type)) {
				pk_error_set(err, PK_E_CONFLICT, EBUSY,
					     "drive '%s' runs a %s block job poolkeeper did not start",
					     job->drive, hsm_virt_job_type_name(info.type));
				return HSM_MERGE_STEP_FAIL;
			}
			if (info.end) {
				hsm_merge_job_progress(job, info.cur, info.end);
			}
			if (is_active_commit(job) &&
			    (ev_ready(job) || live.mirror == HSM_VMXML_MIRROR_READY)) {
				return hsm_merge_job_step_to(job, HSM_MERGE_READY, err);
			}
			/* Under a limit a mirror may never get in sync: watch it. */
			hsm_merge_job_watch_converge(job, &info);
		} else if (hsm_merge_job_chain_is_after(job, live.ids, live.n)) {
			hsm_merge_job_progress(job, job->end ? job->end : 1, job->end ? job->end : 1);
			return hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, err);
		} else if (!hsm_merge_job_chain_is_before(job, live.ids, live.n)) {
			pk_error_set(err, PK_E_ILLEGAL, EINVAL,
				     "the chain of drive '%s' changed into neither the chain before "
				     "nor the one after the merge", job->drive);
			return HSM_MERGE_STEP_FAIL;
		} else if (job->attempts == 0) {
			s = start_block_job(job, &live, err);
			if (s != HSM_MERGE_STEP_MOVED) {
				return s;
			}
		} else {
			/* No job, old chain: confirm over a second (events and XML may lag). */
			uint64_t now = pk_clock_monotonic_ms();
			if (!gone_since) {
				gone_since = now;
			} else if (now - gone_since >= VANISH_CONFIRM_MS) {
				gone_since = 0;
				s = job_vanished(job, &live, err);
				if (s != HSM_MERGE_STEP_MOVED) {
					return s;
				}
			}
		}
		if (hsm_merge_job_wait(job, gone_since ? 200 : POLL_MS)) {
			return HSM_MERGE_STEP_STOP;
		}
	}
}

/* ---- PIVOTING ------------------------------------------------------------------------ */

/* The pivot did not happen: the old leaf LEGAL again, one pivot attempt counted. */
static enum hsm_merge_step pivot_undo(struct hsm_merge_job *job, struct pk_error *err)
{
	enum hsm_merge_step s = hsm_merge_leaf_restore(job, err);

	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	if (hsm_merge_job_record_set(job, HSM_MERGE_FIELD_PIVOT_ATTEMPTS, job->pivot_attempts + 1,
				     err) < 0) {
		return HSM_MERGE_STEP_RETRY;
	}
	return HSM_MERGE_STEP_MOVED;
}

/*
 * The pivot did not happen and the block job still runs: undone, then
 * READY (ask again) or FAILED after PIVOT_ATTEMPTS_MAX.
 */
static enum hsm_merge_step pivot_failed(struct hsm_merge_job *job, const char *why,
					struct pk_error *err)
{
	enum hsm_merge_step s = pivot_undo(job, err);

	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	if (job->pivot_attempts < PIVOT_ATTEMPTS_MAX) {
		pk_log_warn("merge job job='%s': pivot of vm='%s' drive='%s' failed (%s); retrying",
			    job->id, job->vm, job->drive, why);
		return hsm_merge_job_step_to(job, HSM_MERGE_READY, err);
	}
	cancel_block_job(job);
	pk_error_set(err, PK_E_ABORTED, ECANCELED,
		     "the pivot of drive '%s' failed %u times (%s); the block job was cancelled "
		     "and the chain before the merge is intact", job->drive, job->pivot_attempts,
		     why);
	return HSM_MERGE_STEP_FAIL;
}

/*
 * The block job ended with the old chain in place: the pivot did not
 * happen. Undone, and back to COMMITTING, which starts the block job
 * again (bounded by its own attempts) or fails cleanly.
 */
static enum hsm_merge_step pivot_job_ended(struct hsm_merge_job *job, struct pk_error *err)
{
	enum hsm_merge_step s = pivot_undo(job, err);

	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	pk_log_warn("merge job job='%s': the block job of vm='%s' drive='%s' ended without a "
		    "pivot (the chain is the one before the merge); committing again", job->id,
		    job->vm, job->drive);
	return hsm_merge_job_step_to(job, HSM_MERGE_COMMITTING, err);
}

/* "a,b,c" of the live chain's volume ids ("?" for a layer that is not one). */
static void chain_text(const struct hsm_merge_live *live, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < live->n && off + 1 < size; i++) {
		int w = snprintf(buf + off, size - off, "%s%s", i ? "," : "",
				 live->ids[i][0] ? live->ids[i] : "?");
		off += w > 0 ? (size_t)w : 0;
	}
	if (off >= size) {
		snprintf(buf + size - 4, 4, "...");
	}
}

/* The last BLOCK_JOB event ended the job (libvirt updated the XML before it). */
static bool ev_job_ended(struct hsm_merge_job *job)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	int st;

	pthread_mutex_lock(&m->lock);
	st = job->ev_status;
	pthread_mutex_unlock(&m->lock);
	return st == HSM_VIRT_JOB_COMPLETED || st == HSM_VIRT_JOB_FAILED ||
	       st == HSM_VIRT_JOB_CANCELED;
}

/*
 * Asks the pivot once the mirror is ready and judges the chain only once
 * the block job has ended: while it runs, libvirt may show the old chain,
 * the new one with <mirror ready='pivot'> still listed, or something in
 * between (seen under load for most of a second); and job info may say
 * "no job" before the XML shows the new chain. So:
 *   job running   wait (the pivot is asked when ready='yes'; asked again
 *                 when qemu keeps the old leaf);
 *   job gone      the chain after the merge: CLEANUP. The chain before:
 *                 COMMITTING again, once the job's end event came or after
 *                 PIVOT_SETTLE_MS (the XML may lag the job list). Anything
 *                 else for PIVOT_SETTLE_MS: FAILED, leaf LEGAL.
 */
static enum hsm_merge_step step_pivot(struct hsm_merge_job *job, struct pk_error *err)
{
	uint64_t entered = pk_clock_monotonic_ms(), asked = 0, gone_since = 0;
	enum hsm_merge_step s;

	/* Idempotent: marked again when the step is entered again. */
	s = hsm_merge_leaf_set_legal(job, false, err);
	if (s != HSM_MERGE_STEP_MOVED) {
		return s;
	}
	pk_fault_point("merge:pivoting:marked");
	for (;;) {
		struct hsm_merge_live live;
		struct hsm_virt_job_info info = { 0 };
		uint64_t now;
		bool after, before, seen;

		if (hsm_merge_stopping(job)) {
			return HSM_MERGE_STEP_STOP;
		}
		s = drive_observe(job, &info, &live, &seen, err);
		if (!seen) {
			return s;
		}
		after = hsm_merge_job_chain_is_after(job, live.ids, live.n);
		before = hsm_merge_job_chain_is_before(job, live.ids, live.n);
		now = pk_clock_monotonic_ms();
		if (!info.active) {
			if (after) {
				return hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, err);
			}
			if (!gone_since) {
				gone_since = now;
			}
			if (before && (ev_job_ended(job) || now - gone_since >= PIVOT_SETTLE_MS)) {
				return pivot_job_ended(job, err);
			}
			if (!before && now - gone_since >= PIVOT_SETTLE_MS) {
				char text[512];
				chain_text(&live, text, sizeof(text));
				pk_error_set(err, PK_E_ILLEGAL, EINVAL,
					     "the chain of drive '%s' changed into neither the chain "
					     "before nor the one after the pivot (it is %s)", job->drive,
					     text);
				return HSM_MERGE_STEP_FAIL;
			}
		} else {
			gone_since = 0;
			if (asked && before && live.mirror == HSM_VMXML_MIRROR_READY &&
			    now - asked > PIVOT_KEPT_MS) {
				return pivot_failed(job, "qemu kept the old leaf", err);
			}
			if (now - (asked ? asked : entered) > PIVOT_TIMEOUT_MS) {
				return pivot_failed(job, asked ? "no new chain within 60 s"
							       : "the mirror did not become ready "
								 "within 60 s", err);
			}
			if (!asked && before && live.mirror == HSM_VMXML_MIRROR_READY) {
				int r = hsm_virt_block_job_abort(job->hsm->virt, job->vm,
								 job->drive, true, err);
				if (r < 0 && err->code == PK_E_CONFLICT) {
					char why[PK_ERROR_MSG_MAX];
					snprintf(why, sizeof(why), "%s", err->message);
					pk_error_clear(err);
					return pivot_failed(job, why, err);
				}
				if (r < 0 && err->code != PK_E_NOT_FOUND) {
					return hsm_merge_step_of(r, err);
				}
				pk_error_clear(err);
				asked = pk_clock_monotonic_ms();
				pk_log_info("merge job job='%s': pivot asked vm='%s' drive='%s'",
					    job->id, job->vm, job->drive);
			}
		}
		if (hsm_merge_job_wait(job, asked || gone_since ? 100 : POLL_MS)) {
			return HSM_MERGE_STEP_STOP;
		}
	}
}

/* ---- ABORTING ----------------------------------------------------------------------- */

static enum hsm_merge_step step_abort(struct hsm_merge_job *job, struct pk_error *err)
{
	uint64_t start = pk_clock_monotonic_ms();
	bool asked = false;
	enum hsm_merge_step s;
	int r;

	for (;;) {
		struct hsm_merge_live live;
		struct hsm_virt_job_info info = { 0 };

		if (hsm_merge_stopping(job)) {
			return HSM_MERGE_STEP_STOP;
		}
		s = live_read(job, &live, err);
		if (s != HSM_MERGE_STEP_MOVED) {
			return s;
		}
		if (live.running) {
			r = hsm_virt_block_job_info(job->hsm->virt, job->vm, job->drive, &info, err);
			if (r < 0) {
				return hsm_merge_step_of(r, err);
			}
		}
		if (!info.active) {
			if (live.running && hsm_merge_job_chain_is_after(job, live.ids, live.n)) {
				pk_log_warn("merge job job='%s': the merge completed before the abort; "
					    "finishing it", job->id);
				return hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, err);
			}
			s = hsm_merge_leaf_restore(job, err);
			if (s != HSM_MERGE_STEP_MOVED) {
				return s;
			}
			pk_error_set(err, PK_E_ABORTED, ECANCELED,
				     "aborted by request; the chain of drive '%s' is unchanged",
				     job->drive);
			return HSM_MERGE_STEP_FAIL;
		}
		if (!asked) {
			r = hsm_virt_block_job_abort(job->hsm->virt, job->vm, job->drive, false, err);
			if (r < 0 && err->code != PK_E_NOT_FOUND) {
				return hsm_merge_step_of(r, err);
			}
			pk_error_clear(err);
			asked = true;
		}
		if (pk_clock_monotonic_ms() - start > ABORT_TIMEOUT_MS) {
			/* A timeout of ours, not of a peer: the job fails. */
			pk_error_set(err, PK_E_TIMEOUT, ETIMEDOUT,
				     "the block job of drive '%s' did not end within 30 s of the abort",
				     job->drive);
			return HSM_MERGE_STEP_FAIL;
		}
		if (hsm_merge_job_wait(job, 200)) {
			return HSM_MERGE_STEP_STOP;
		}
	}
}

/* ---- the loop ------------------------------------------------------------------------- */

static bool abortable(enum hsm_merge_state s)
{
	return s == HSM_MERGE_PREPARING || s == HSM_MERGE_EXTENDING ||
	       s == HSM_MERGE_COMMITTING || s == HSM_MERGE_READY;
}

static enum hsm_merge_step run_state(struct hsm_merge_job *job, enum hsm_merge_state s,
				     struct pk_error *err)
{
	bool cold = job->kind == HSM_MERGE_COLD_COMMIT;
	enum hsm_merge_step r;

	switch (s) {
	case HSM_MERGE_PREPARING:
		return cold ? hsm_merge_cold_prepare(job, err) : step_prepare(job, err);
	case HSM_MERGE_EXTENDING:
		r = hsm_merge_step_extend(job, err);
		if (r == HSM_MERGE_STEP_MOVED) {
			r = hsm_merge_job_step_to(job, HSM_MERGE_COMMITTING, err);
		}
		return r;
	case HSM_MERGE_COMMITTING:
		return cold ? hsm_merge_cold_commit(job, err) : step_commit(job, err);
	case HSM_MERGE_READY:
		return hsm_merge_job_step_to(job, HSM_MERGE_PIVOTING, err);
	case HSM_MERGE_PIVOTING:
		return cold ? hsm_merge_cold_pivot(job, err) : step_pivot(job, err);
	case HSM_MERGE_CLEANUP:
		r = hsm_merge_step_cleanup(job, err);
		if (r == HSM_MERGE_STEP_MOVED) {
			r = hsm_merge_job_step_to(job, HSM_MERGE_DONE, err);
			if (r == HSM_MERGE_STEP_MOVED) {
				hsm_merge_reduce_base(job);
			}
		}
		return r;
	case HSM_MERGE_ABORTING:
		return cold ? hsm_merge_cold_abort(job, err) : step_abort(job, err);
	default:
		pk_error_set(err, PK_E_INTERNAL, EINVAL, "job in state %d", (int)s);
		return HSM_MERGE_STEP_FAIL;
	}
}

/*
 * A failure out of PIVOTING must not leave the old leaf ILLEGAL under a VM
 * that still runs on it, nor fail a merge qemu finished. True when the
 * live chain shows the merge done and the job moved to CLEANUP instead;
 * otherwise the old leaf is LEGAL again (as far as the SPM answers) and
 * the job may fail. Best effort on libvirt: a chain that cannot be read
 * is treated as not done (the record keeps leaf_illegal for startup).
 */
static bool pivot_fail_safely(struct hsm_merge_job *job, const struct pk_error *why)
{
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_live live;

	if (hsm_merge_live_read(job->hsm, job->vm, job->drive, &live, &err) == 0 &&
	    live.running && hsm_merge_job_chain_is_after(job, live.ids, live.n)) {
		pk_log_warn("merge job job='%s': %s, but the chain of vm='%s' drive='%s' is the one "
			    "after the merge; finishing it", job->id, why->message, job->vm,
			    job->drive);
		if (hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, &err) == HSM_MERGE_STEP_MOVED) {
			return true;
		}
		pk_log_warn("merge job job='%s': %s", job->id, err.message);
		return false;
	}
	pk_error_clear(&err);
	hsm_merge_leaf_restore(job, &err);
	return false;
}

/*
 * A record FAILED with the old leaf still marked ILLEGAL (hsmd died between
 * the failure and the unmark, or the SPM did not answer then): the chain
 * decides, as at a failure out of PIVOTING. True when the job moved to
 * CLEANUP (the merge had happened: it ends DONE); false when the leaf is
 * LEGAL again or hsmd stops. Retries a transient failure until then.
 */
static bool reconcile_failed_pivot(struct hsm_merge_job *job)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	unsigned backoff = 500;

	for (;;) {
		struct pk_error err = { PK_OK, "" };
		struct hsm_merge_live live;
		enum hsm_merge_step s;
		bool after = false;

		s = live_read(job, &live, &err);
		if (s == HSM_MERGE_STEP_MOVED && live.running) {
			after = hsm_merge_job_chain_is_after(job, live.ids, live.n);
		} else if (s == HSM_MERGE_STEP_MOVED) {
			s = hsm_merge_stopped_chain_is_after(job, &live, &after, &err);
		} else if (s == HSM_MERGE_STEP_FAIL) {
			s = HSM_MERGE_STEP_MOVED; /* the VM is gone: nothing runs on the leaf */
		}
		if (s == HSM_MERGE_STEP_MOVED && after) {
			pk_log_warn("merge job job='%s' was recorded FAILED but the chain of vm='%s' "
				    "drive='%s' is the one after the merge; finishing it", job->id,
				    job->vm, job->drive);
			pthread_mutex_lock(&m->lock);
			job->error = (struct pk_error){ PK_OK, "" };
			job->failed_in = 0;
			pthread_mutex_unlock(&m->lock);
			s = hsm_merge_job_step_to(job, HSM_MERGE_CLEANUP, &err);
			if (s == HSM_MERGE_STEP_MOVED) {
				return true;
			}
		} else if (s == HSM_MERGE_STEP_MOVED) {
			s = hsm_merge_leaf_restore(job, &err);
			if (s == HSM_MERGE_STEP_MOVED) {
				pk_log_info("merge job job='%s': the old leaf '%s' of the failed merge "
					    "is LEGAL again", job->id, job->top);
				return false;
			}
		}
		if (s == HSM_MERGE_STEP_STOP || hsm_merge_sleep(job, backoff)) {
			return false;
		}
		pk_log_warn("merge job job='%s': the legality of the old leaf '%s' is not "
			    "reconciled yet: %s; retrying", job->id, job->top, err.message);
		backoff = backoff < 8000 ? backoff * 2 : 10000;
	}
}

void hsm_merge_job_run(struct hsm_merge_job *job)
{
	uint64_t transient_since = 0;
	unsigned backoff = 250;

	if (job_state(job) == HSM_MERGE_FAILED && hsm_merge_job_reconciles(job) &&
	    !reconcile_failed_pivot(job)) {
		return;
	}
	for (;;) {
		struct pk_error err = { PK_OK, "" };
		enum hsm_merge_state s = job_state(job);
		enum hsm_merge_step r;

		if (hsm_merge_state_final(s) || hsm_merge_stopping(job)) {
			return;
		}
		if (abortable(s) && hsm_merge_abort_requested(job)) {
			r = hsm_merge_job_step_to(job, HSM_MERGE_ABORTING, &err);
		} else {
			r = run_state(job, s, &err);
		}
		if (r == HSM_MERGE_STEP_STOP) {
			return;
		}
		if (r == HSM_MERGE_STEP_RETRY && hsm_merge_spm_backoff(job)) {
			/* No SPM answers: the wait has its own backoff and limit. */
			if (hsm_merge_sleep(job, hsm_merge_spm_backoff(job))) {
				return;
			}
			continue;
		}
		if (r == HSM_MERGE_STEP_RETRY) {
			uint64_t now = pk_clock_monotonic_ms();
			if (!transient_since) {
				transient_since = now;
			}
			if (now - transient_since < TRANSIENT_LIMIT_MS) {
				pk_log_warn("merge job job='%s' state=%s: %s; retrying", job->id,
					    hsm_merge_state_name(s), err.message);
				if (hsm_merge_sleep(job, backoff)) {
					return;
				}
				backoff = backoff < 4000 ? backoff * 2 : 5000;
				continue;
			}
		}
		transient_since = 0;
		backoff = 250;
		/* A failure, or a transient one that lasted too long. */
		if (r != HSM_MERGE_STEP_MOVED) {
			/* Leave no block job behind a failure before the pivot point. */
			if (s == HSM_MERGE_COMMITTING || s == HSM_MERGE_READY) {
				if (job->kind != HSM_MERGE_COLD_COMMIT) {
					cancel_block_job(job);
				}
			}
			if (s == HSM_MERGE_PIVOTING && pivot_fail_safely(job, &err)) {
				continue;
			}
			struct pk_error fail_err = { PK_OK, "" };
			if (hsm_merge_job_fail(job, &err, &fail_err) < 0) {
				/* Not recorded FAILED: it stays, and its state runs again. */
				pk_log_error("merge job job='%s' state=%s: %s; then %s; retrying",
					     job->id, hsm_merge_state_name(s), err.message,
					     fail_err.message);
				if (hsm_merge_sleep(job, 5000)) {
					return;
				}
			}
		}
	}
}
