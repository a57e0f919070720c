/*
 * The state of a merge job, durable: its record written before a state or
 * a field of a step takes effect, the events published on its changes,
 * and the waits of its thread (events, stop and abort requests). The
 * registry of jobs and the API of hsm/merge.h are in hsm/merge.c; the
 * text of a record in hsm/merge_job.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/rpc.h"
#include "common/statefile.h"
#include "hsm/merge_job.h"

#define PROGRESS_EVENT_MS 250

/* ---- records and events --------------------------------------------------------- */

void hsm_merge_record_name(const struct hsm_merge_job *job, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", job->id, HSM_MERGE_SUFFIX);
}

int hsm_merge_job_write_locked(struct hsm_merge *m, struct hsm_merge_job *job,
			       struct pk_error *err)
{
	char name[64];
	char *text;
	int r;

	job->updated_ms = pk_clock_realtime_ms();
	text = hsm_merge_record_encode(job);
	hsm_merge_record_name(job, name, sizeof(name));
	r = pk_statefile_write(m->dir, name, text, strlen(text), err);
	if (r < 0) {
		pk_error_prefix(err, "cannot write the record of merge job '%s' (state %s)", job->id,
				hsm_merge_state_name(job->state));
	}
	free(text);
	return r;
}

void hsm_merge_publish(struct hsm_merge *m, const struct hsm_merge_job_info *info, int32_t host_id)
{
	struct pk_error err = { PK_OK, "" };
	void *buf = NULL;
	size_t len = 0;

	if (!m->pub) {
		return;
	}
	pthread_mutex_lock(&m->pub_lock);
	if (hsm_merge_event_encode(info, ++m->seq, host_id, &buf, &len) == 0 &&
	    pk_rpc_pub_send(m->pub, buf, len, &err) < 0) {
		pk_log_warn("cannot publish a job event job='%s': %s", info->id, err.message);
	}
	pthread_mutex_unlock(&m->pub_lock);
	free(buf);
}

void hsm_merge_publish_vm_wait(struct hsm *hsm, const char *vm, const char *waiting)
{
	struct hsm_merge *m = hsm_merge_of(hsm);
	struct pk_error err = { PK_OK, "" };
	void *buf = NULL;
	size_t len = 0;

	if (!m || !m->pub) {
		return;
	}
	pthread_mutex_lock(&m->pub_lock);
	if (hsm_vm_wait_event_encode(vm, waiting, ++m->seq, hsm->info.host_id, &buf, &len) == 0 &&
	    pk_rpc_pub_send(m->pub, buf, len, &err) < 0) {
		pk_log_warn("cannot publish a VM event vm='%s': %s", vm, err.message);
	}
	pthread_mutex_unlock(&m->pub_lock);
	free(buf);
}

static uint64_t field_get(const struct hsm_merge_job *job, enum hsm_merge_field f)
{
	switch (f) {
	case HSM_MERGE_FIELD_ATTEMPTS: return job->attempts;
	case HSM_MERGE_FIELD_PIVOT_ATTEMPTS: return job->pivot_attempts;
	case HSM_MERGE_FIELD_LEAF_ILLEGAL: return job->leaf_illegal;
	case HSM_MERGE_FIELD_EXTEND_SIZE: return job->extend_size;
	case HSM_MERGE_FIELD_CAP_LIFTED: return job->cap_lifted;
	}
	return 0;
}

static void field_set(struct hsm_merge_job *job, enum hsm_merge_field f, uint64_t v)
{
	switch (f) {
	case HSM_MERGE_FIELD_ATTEMPTS: job->attempts = (unsigned)v; break;
	case HSM_MERGE_FIELD_PIVOT_ATTEMPTS: job->pivot_attempts = (unsigned)v; break;
	case HSM_MERGE_FIELD_LEAF_ILLEGAL: job->leaf_illegal = v != 0; break;
	case HSM_MERGE_FIELD_EXTEND_SIZE: job->extend_size = v; break;
	case HSM_MERGE_FIELD_CAP_LIFTED: job->cap_lifted = v != 0; break;
	}
}

int hsm_merge_job_record_set(struct hsm_merge_job *job, enum hsm_merge_field field,
			     uint64_t value, struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	uint64_t old;
	int r;

	pthread_mutex_lock(&m->lock);
	old = field_get(job, field);
	field_set(job, field, value);
	r = hsm_merge_job_write_locked(m, job, err);
	if (r < 0) {
		field_set(job, field, old);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int hsm_merge_job_transition(struct hsm_merge_job *job, enum hsm_merge_state state,
			     struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct hsm_merge_job_info info;
	enum hsm_merge_state from;
	char point[64];
	int r;

	pthread_mutex_lock(&m->lock);
	from = job->state;
	job->state = state;
	r = hsm_merge_job_write_locked(m, job, err);
	if (r < 0) {
		/* Written before it takes effect: without its record it does not. */
		job->state = from;
		pthread_mutex_unlock(&m->lock);
		pk_error_prefix(err, "merge job '%s' stays %s instead of %s", job->id,
				hsm_merge_state_name(from), hsm_merge_state_name(state));
		return r;
	}
	/* A new state waits for nothing yet (a wait for the SPM was the old state's). */
	hsm_spm_wait_reset(&job->spm_wait);
	job->spm_backoff_ms = 0;
	hsm_merge_job_info_of(job, &info);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (state == HSM_MERGE_FAILED) {
		pk_log_error("merge job failed job='%s' vm='%s' drive='%s' kind=%s in=%s code=%s: %s",
			     job->id, job->vm, job->drive, hsm_merge_kind_name(job->kind),
			     hsm_merge_state_name(from), pk_errc_name(info.error.code),
			     info.error.message);
	} else {
		pk_log_info("merge job job='%s' vm='%s' drive='%s' kind=%s state=%s -> %s", job->id,
			    job->vm, job->drive, hsm_merge_kind_name(job->kind),
			    hsm_merge_state_name(from), hsm_merge_state_name(state));
	}
	hsm_merge_publish(m, &info, job->hsm->info.host_id);
	/* Crash tests: "merge:committing" kills hsmd right after the record
	 * of COMMITTING was written, before the state took effect. */
	snprintf(point, sizeof(point), "merge:%s", hsm_merge_state_name(state));
	for (char *p = point; *p; p++) {
		if (*p >= 'A' && *p <= 'Z') {
			*p = (char)(*p - 'A' + 'a');
		}
	}
	pk_fault_point(point);
	return 0;
}

enum hsm_merge_step hsm_merge_job_step_to(struct hsm_merge_job *job, enum hsm_merge_state state,
					  struct pk_error *err)
{
	return hsm_merge_job_transition(job, state, err) < 0 ? HSM_MERGE_STEP_RETRY
							      : HSM_MERGE_STEP_MOVED;
}

int hsm_merge_job_fail(struct hsm_merge_job *job, const struct pk_error *err,
		       struct pk_error *ret_err)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct pk_error old_error;
	enum hsm_merge_state old_failed_in;
	int r;

	pthread_mutex_lock(&m->lock);
	old_error = job->error;
	old_failed_in = job->failed_in;
	job->error = *err;
	if (job->error.code == PK_OK) {
		job->error.code = PK_E_INTERNAL;
	}
	if (!job->failed_in) {
		job->failed_in = job->state;
	}
	pthread_mutex_unlock(&m->lock);
	r = hsm_merge_job_transition(job, HSM_MERGE_FAILED, ret_err);
	if (r < 0) {
		pthread_mutex_lock(&m->lock);
		job->error = old_error;
		job->failed_in = old_failed_in;
		pthread_mutex_unlock(&m->lock);
	}
	return r;
}

void hsm_merge_job_progress(struct hsm_merge_job *job, uint64_t cur, uint64_t end)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct hsm_merge_job_info info;
	uint64_t now = pk_clock_realtime_ms();
	bool send = false;

	pthread_mutex_lock(&m->lock);
	job->cur = cur;
	job->end = end;
	if (cur != job->published_cur &&
	    (now - job->published_ms >= PROGRESS_EVENT_MS || (end && cur == end))) {
		job->published_ms = now;
		job->published_cur = cur;
		job->updated_ms = now;
		hsm_merge_job_info_of(job, &info);
		send = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (send) {
		hsm_merge_publish(m, &info, job->hsm->info.host_id);
	}
}

void hsm_merge_job_convergence(struct hsm_merge_job *job, enum hsm_merge_convergence state,
			       uint64_t guest_rate)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct hsm_merge_job_info info;
	bool send;

	pthread_mutex_lock(&m->lock);
	send = job->convergence != state;
	job->convergence = state;
	if (guest_rate) {
		job->guest_rate = guest_rate;
	}
	if (send) {
		hsm_merge_job_info_of(job, &info);
	}
	pthread_mutex_unlock(&m->lock);
	if (send) {
		hsm_merge_publish(m, &info, job->hsm->info.host_id);
	}
}

uint64_t hsm_merge_job_bandwidth(struct hsm_merge_job *job)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	uint64_t bw;

	pthread_mutex_lock(&m->lock);
	bw = job->cap_lifted ? 0 : job->bandwidth;
	pthread_mutex_unlock(&m->lock);
	return bw;
}

/* ---- waiting ----------------------------------------------------------------------- */

enum hsm_merge_step hsm_merge_spm_result(struct hsm_merge_job *job, int r, struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct hsm_merge_job_info info;
	enum hsm_spm_wait_next next;
	unsigned ms = 0;
	bool was;

	pthread_mutex_lock(&m->lock);
	was = hsm_spm_wait_waiting(&job->spm_wait);
	if (!was) {
		hsm_spm_wait_init(&job->spm_wait, job->hsm);
	}
	next = hsm_spm_wait_next(&job->spm_wait, r, err, &ms);
	job->spm_backoff_ms = next == HSM_SPM_WAIT_AGAIN ? ms : 0;
	if (next == HSM_SPM_WAIT_EXPIRED) {
		/* The job fails with err, which says how long it waited: nothing waits now. */
		hsm_spm_wait_reset(&job->spm_wait);
	}
	hsm_merge_job_info_of(job, &info);
	pthread_mutex_unlock(&m->lock);
	/* Whoever follows the job sees it begin and end waiting, not every attempt. */
	if (next == HSM_SPM_WAIT_AGAIN && !was) {
		pk_log_warn("merge job job='%s' state=%s: %s; retrying until the SPM answers", job->id,
			    hsm_merge_state_name(info.state), info.waiting);
		hsm_merge_publish(m, &info, job->hsm->info.host_id);
	} else if (next != HSM_SPM_WAIT_AGAIN && was) {
		pk_log_info("merge job job='%s' state=%s: %s", job->id,
			    hsm_merge_state_name(info.state),
			    next == HSM_SPM_WAIT_DONE ? "the SPM answers again" : err->message);
		hsm_merge_publish(m, &info, job->hsm->info.host_id);
	}
	switch (next) {
	case HSM_SPM_WAIT_AGAIN:
		return HSM_MERGE_STEP_RETRY;
	case HSM_SPM_WAIT_EXPIRED:
		return HSM_MERGE_STEP_FAIL;
	default:
		return hsm_merge_step_of(r, err);
	}
}

unsigned hsm_merge_spm_backoff(struct hsm_merge_job *job)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	unsigned ms;

	pthread_mutex_lock(&m->lock);
	ms = job->spm_backoff_ms;
	pthread_mutex_unlock(&m->lock);
	return ms;
}

bool hsm_merge_stopping(struct hsm_merge_job *job)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	bool r;

	pthread_mutex_lock(&m->lock);
	r = m->stopping;
	pthread_mutex_unlock(&m->lock);
	return r;
}

bool hsm_merge_abort_requested(struct hsm_merge_job *job)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	bool r;

	pthread_mutex_lock(&m->lock);
	r = job->abort_requested;
	pthread_mutex_unlock(&m->lock);
	return r;
}

int hsm_merge_job_wait(struct hsm_merge_job *job, unsigned ms)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct timespec deadline;
	unsigned seen;
	int r;

	pk_clock_deadline(CLOCK_MONOTONIC, ms, &deadline);
	pthread_mutex_lock(&m->lock);
	seen = job->wakeups;
	/* An abort request ends the wait only where the job can still act on it. */
	bool abortable = job->state >= HSM_MERGE_PREPARING && job->state <= HSM_MERGE_READY;
	while (!m->stopping && !(abortable && job->abort_requested) && job->wakeups == seen) {
		if (pthread_cond_timedwait(&m->cond, &m->lock, &deadline) == ETIMEDOUT) {
			break;
		}
	}
	r = m->stopping ? 1 : 0;
	pthread_mutex_unlock(&m->lock);
	return r;
}

int hsm_merge_sleep(struct hsm_merge_job *job, unsigned ms)
{
	struct hsm_merge *m = hsm_merge_of(job->hsm);
	struct timespec deadline;
	int r;

	pk_clock_deadline(CLOCK_MONOTONIC, ms, &deadline);
	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		if (pthread_cond_timedwait(&m->cond, &m->lock, &deadline) == ETIMEDOUT) {
			break;
		}
	}
	r = m->stopping ? 1 : 0;
	pthread_mutex_unlock(&m->lock);
	return r;
}
