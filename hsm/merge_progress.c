/*
 * A capped active commit while it copies: is it getting done? The job
 * thread's COMMITTING loop (hsm/merge_run.c) hands every block job info it
 * reads to hsm_merge_job_watch_converge, which samples it with the drive's
 * write counter, asks hsm/merge_converge.h for a verdict, shows the verdict
 * in the job info and its events, and lifts the limit for the last pass
 * when the job does not converge but is a few seconds from done at it (a
 * mirror under a guest that writes faster than the limit never gets in
 * sync: without this the job stays COMMITTING near 100 % for ever).
 *
 * The lift is recorded (cap_lifted=1) before the block job is told, so a
 * restarted hsmd, and a block job started again, run unlimited; a block
 * job found still limited with the record saying lifted (hsmd died between
 * the two, or the call failed) is told again at the next sample.
 */
#include <inttypes.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/log.h"
#include "hsm/merge_job.h"

#define MIB (1024.0 * 1024.0)

/* The record says lifted: the running block job must be unlimited too. */
static void keep_uncapped(struct hsm_merge_job *job, const struct hsm_virt_job_info *info)
{
	struct pk_error err = { PK_OK, "" };

	if (!info->bandwidth) {
		return;
	}
	if (hsm_virt_block_job_set_bandwidth(job->hsm->virt, job->vm, job->drive, 0, &err) < 0) {
		pk_log_warn("merge job job='%s': the block job of vm='%s' drive='%s' still runs at "
			    "%" PRIu64 " bytes/s after its limit was lifted: %s; trying again",
			    job->id, job->vm, job->drive, info->bandwidth, err.message);
		return;
	}
	pk_log_info("merge job job='%s': the block job of vm='%s' drive='%s' runs unlimited "
		    "again (its limit was lifted for the last pass)", job->id, job->vm,
		    job->drive);
}

static void lift_cap(struct hsm_merge_job *job, const struct hsm_merge_converge_verdict *v,
		     uint64_t bandwidth)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_job_info info;

	/* Recorded first: a restarted hsmd and a restarted block job stay unlimited. */
	if (hsm_merge_job_record_set(job, HSM_MERGE_FIELD_CAP_LIFTED, true, &err) < 0) {
		pk_log_warn("merge job job='%s': the limit is not lifted: %s", job->id,
			    err.message);
		return;
	}
	pk_log_info("merge job job='%s' vm='%s' drive='%s': not converging (the guest writes "
		    "%.1f MiB/s, the limit is %.1f MiB/s, %.1f MiB left); lifting the limit for "
		    "the last pass", job->id, job->vm, job->drive, (double)v->guest_rate / MIB,
		    (double)bandwidth / MIB, (double)v->remaining / MIB);
	if (hsm_virt_block_job_set_bandwidth(job->hsm->virt, job->vm, job->drive, 0, &err) < 0) {
		pk_log_warn("merge job job='%s': cannot lift the limit of the block job of vm='%s' "
			    "drive='%s': %s; trying again", job->id, job->vm, job->drive,
			    err.message);
	}
	pthread_mutex_lock(&m->lock);
	hsm_merge_job_info_of(job, &info);
	pthread_mutex_unlock(&m->lock);
	hsm_merge_publish(m, &info, job->hsm->info.host_id);
}

void hsm_merge_job_watch_converge(struct hsm_merge_job *job,
				  const struct hsm_virt_job_info *info)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_converge_sample s = { 0 };
	struct hsm_merge_converge_verdict v;
	enum hsm_merge_convergence before;
	uint64_t bandwidth;
	bool lifted;

	if (job->kind != HSM_MERGE_ACTIVE_COMMIT || !info->active) {
		return;
	}
	pthread_mutex_lock(&m->lock);
	bandwidth = job->bandwidth;
	lifted = job->cap_lifted;
	before = job->convergence;
	pthread_mutex_unlock(&m->lock);
	if (lifted) {
		job->conv_bandwidth = UINT64_MAX; /* judged afresh if a limit is set again */
		keep_uncapped(job, info);
		return;
	}
	if (bandwidth != job->conv_bandwidth || job->attempts != job->conv_attempts) {
		/* A new limit or a new block job: what was seen says nothing of it. */
		if (!job->conv.window_ms) {
			hsm_merge_converge_init(&job->conv, m->converge_window_ms);
		}
		hsm_merge_converge_reset(&job->conv);
		job->conv_bandwidth = bandwidth;
		job->conv_attempts = job->attempts;
		hsm_merge_job_convergence(job, HSM_MERGE_CONVERGENCE_UNKNOWN, 0);
		before = HSM_MERGE_CONVERGENCE_UNKNOWN;
	}
	if (!bandwidth) {
		return; /* nothing to lift: qemu copies as fast as it can */
	}
	s.t_ms = pk_clock_monotonic_ms();
	s.cur = info->cur;
	s.end = info->end;
	/* Best effort: without the counter, end's growth tells the rate. */
	s.has_written = hsm_virt_block_written(job->hsm->virt, job->vm, job->drive, &s.written,
					       &err) == 0;
	hsm_merge_converge_add(&job->conv, &s);
	hsm_merge_converge_judge(&job->conv, bandwidth, &v);
	if (v.state == HSM_MERGE_CONVERGENCE_UNKNOWN) {
		return; /* less than a window: the last verdict stands */
	}
	hsm_merge_job_convergence(job, v.state,
				  v.state == HSM_MERGE_CONVERGENCE_NOT_CONVERGING ? v.guest_rate : 0);
	if (v.state == HSM_MERGE_CONVERGENCE_NOT_CONVERGING && before != v.state) {
		pk_log_info("merge job job='%s' vm='%s' drive='%s': not converging: the guest "
			    "writes %.1f MiB/s, the limit is %.1f MiB/s (%.1f MiB left)%s", job->id,
			    job->vm, job->drive, (double)v.guest_rate / MIB,
			    (double)bandwidth / MIB, (double)v.remaining / MIB,
			    m->keep_cap ? "; the limit stays (merge_uncap_last_pass = false)" : "");
	}
	if (!m->keep_cap && hsm_merge_converge_uncap_due(&v, bandwidth, m->uncap_seconds)) {
		lift_cap(job, &v, bandwidth);
	}
}
