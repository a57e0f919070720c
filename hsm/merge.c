/*
 * Merge jobs: the registry (the table of jobs, their threads, the records
 * read back at start) and the API of hsm/merge.h (JobGet, JobList,
 * JobAbort, JobSetBandwidth, the libvirt callbacks). A Merge request is
 * validated and planned in hsm/merge_plan.c; a job's state, its records
 * and events are kept by hsm/merge_state.c; its steps run in
 * hsm/merge_run.c (live), hsm/merge_cold.c (qemu-img) and
 * hsm/merge_steps.c (extend, cleanup).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/rpc.h"
#include "common/statefile.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "hsm/merge_job.h"

#define MERGE_JOBS_MAX 64
#define MERGE_HEADROOM_DEFAULT ((uint64_t)64 << 20)
#define MERGE_KEEP_FINISHED_DEFAULT 64
#define MERGE_UNCAP_SECONDS_DEFAULT 5

struct hsm_merge *hsm_merge_of(struct hsm *hsm)
{
	return hsm->merge;
}

/* ---- the registry --------------------------------------------------------------------- */

/* m->lock held. */
static struct hsm_merge_job *find_job(struct hsm_merge *m, const char *id)
{
	for (size_t i = 0; i < m->njobs; i++) {
		if (!strcmp(m->jobs[i]->id, id)) {
			return m->jobs[i];
		}
	}
	return NULL;
}

/* m->lock held. */
static struct hsm_merge_job *find_drive_job(struct hsm_merge *m, const char *vm,
					    const char *drive)
{
	for (size_t i = 0; i < m->njobs; i++) {
		struct hsm_merge_job *j = m->jobs[i];
		if ((!hsm_merge_state_final(j->state) || hsm_merge_job_reconciles(j)) &&
		    !strcmp(j->vm, vm) &&
		    !strcmp(j->drive, drive)) {
			return j;
		}
	}
	return NULL;
}

/* m->lock held. */
static void add_job(struct hsm_merge *m, struct hsm_merge_job *job)
{
	m->jobs = pk_xgrow(m->jobs, &m->cap, m->njobs + 1, sizeof(*m->jobs));
	m->jobs[m->njobs++] = job;
}

/*
 * Forgets the oldest finished jobs beyond keep_finished (their threads have
 * ended). m->lock held; the joins are of threads that already returned.
 */
static void prune_locked(struct hsm_merge *m)
{
	size_t finished = 0;

	for (size_t i = 0; i < m->njobs; i++) {
		finished += hsm_merge_state_final(m->jobs[i]->state) ? 1 : 0;
	}
	while (finished > m->keep_finished) {
		size_t oldest = m->njobs;
		for (size_t i = 0; i < m->njobs; i++) {
			struct hsm_merge_job *j = m->jobs[i];
			if (!hsm_merge_state_final(j->state) || (j->thread_started && !j->thread_done)) {
				continue;
			}
			if (oldest == m->njobs || j->updated_ms < m->jobs[oldest]->updated_ms) {
				oldest = i;
			}
		}
		if (oldest == m->njobs) {
			return;
		}
		struct hsm_merge_job *j = m->jobs[oldest];
		char name[64];
		hsm_merge_record_name(j, name, sizeof(name));
		pk_statefile_remove(m->dir, name, NULL);
		if (j->thread_started) {
			pthread_join(j->thread, NULL);
		}
		free(j);
		m->jobs[oldest] = m->jobs[--m->njobs];
		finished--;
	}
}

/* The job thread: runs the steps, then marks its end. */
static void *job_thread(void *arg)
{
	struct hsm_merge_job *job = arg;
	struct hsm_merge *m = hsm_merge_of(job->hsm);

	hsm_merge_job_run(job);
	pthread_mutex_lock(&m->lock);
	job->thread_done = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* m->lock held. */
static int start_thread_locked(struct hsm_merge *m, struct hsm_merge_job *job,
			       struct pk_error *err)
{
	int rv;

	(void)m;
	rv = pthread_create(&job->thread, NULL, job_thread, job);
	if (rv != 0) {
		return pk_error_set(err, PK_E_INTERNAL, rv, "cannot start the thread of job '%s': %s",
				    job->id, strerror(rv));
	}
	job->thread_started = true;
	return 0;
}

int hsm_merge_init(struct hsm *hsm, const struct hsm_merge_config *cfg, struct pk_error *err)
{
	struct hsm_merge *m = pk_xcalloc(1, sizeof(*m));
	pthread_condattr_t ca;
	int r;

	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->pub_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	m->headroom = cfg && cfg->headroom ? cfg->headroom : MERGE_HEADROOM_DEFAULT;
	m->keep_finished = cfg && cfg->keep_finished ? cfg->keep_finished
						     : MERGE_KEEP_FINISHED_DEFAULT;
	m->keep_cap = cfg && cfg->keep_cap;
	m->uncap_seconds = cfg && cfg->uncap_seconds ? cfg->uncap_seconds
						     : MERGE_UNCAP_SECONDS_DEFAULT;
	m->converge_window_ms = cfg ? cfg->converge_window_ms : 0;
	hsm->merge = m;
	if (!hsm->settings.state_dir || hsm->settings.state_dir[0] != '/') {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "setting 'state_dir' must be an absolute path (merge job records)");
		goto fail;
	}
	if (snprintf(m->dir, sizeof(m->dir), "%s/merge", hsm->settings.state_dir) >=
	    (int)sizeof(m->dir)) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				 "setting 'state_dir' is too long");
		goto fail;
	}
	r = pk_statefile_mkdir(m->dir, err);
	if (r < 0) {
		goto fail;
	}
	if (cfg && cfg->events_url && *cfg->events_url) {
		snprintf(m->events_url, sizeof(m->events_url), "%s", cfg->events_url);
		r = pk_rpc_pub_new(cfg->events_url, &hsm->settings.tls, &m->pub, err);
		if (r < 0) {
			goto fail;
		}
	}
	return 0;
fail:
	hsm_merge_release(hsm);
	return r;
}

static void load_record(struct hsm_merge *m, struct hsm *hsm, const char *name)
{
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_job *job = pk_xcalloc(1, sizeof(*job));
	char *text = NULL;
	size_t len;

	if (pk_statefile_read(m->dir, name, (void **)&text, &len, &err) == 0) {
		hsm_merge_record_decode(text, job, &err);
	}
	free(text);
	if (err.code == PK_OK && strncmp(name, job->id, PK_UUID_STRLEN) != 0) {
		pk_error_set(&err, PK_E_ILLEGAL, EINVAL, "the record names job '%s'", job->id);
	}
	if (err.code != PK_OK) {
		char from[HSM_PATH_MAX + 64], to[HSM_PATH_MAX + 64];
		snprintf(from, sizeof(from), "%s/%s", m->dir, name);
		snprintf(to, sizeof(to), "%s/%s.bad", m->dir, name);
		if (rename(from, to) == 0) {
			pk_log_error("merge job record '%s' cannot be read (%s); moved to '%s'",
				     from, err.message, to);
		} else {
			int e = errno;
			pk_log_error("merge job record '%s' cannot be read (%s) nor moved to '%s' "
				     "(%s); it stays and is skipped at every start", from, err.message,
				     to, strerror(e));
		}
		free(job);
		return;
	}
	job->hsm = hsm;
	job->ev_status = -1;
	add_job(m, job);
}

int hsm_merge_start(struct hsm *hsm, struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(hsm);
	char **names = NULL;
	size_t n = 0;
	unsigned resumed = 0;
	int r;

	r = pk_statefile_list(m->dir, HSM_MERGE_SUFFIX, &names, &n, err);
	if (r < 0) {
		return r;
	}
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		load_record(m, hsm, names[i]);
	}
	for (size_t i = 0; i < m->njobs && r == 0; i++) {
		struct hsm_merge_job *job = m->jobs[i];
		if ((hsm_merge_state_final(job->state) && !hsm_merge_job_reconciles(job)) ||
		    job->thread_started) {
			continue;
		}
		pk_log_info("resuming merge job job='%s' vm='%s' drive='%s' kind=%s state=%s",
			    job->id, job->vm, job->drive, hsm_merge_kind_name(job->kind),
			    hsm_merge_state_name(job->state));
		r = start_thread_locked(m, job, err);
		resumed++;
	}
	prune_locked(m);
	pthread_mutex_unlock(&m->lock);
	pk_strv_free(names);
	if (n) {
		pk_log_info("merge jobs loaded records=%zu resumed=%u", n, resumed);
	}
	return r;
}

void hsm_merge_stop(struct hsm *hsm)
{
	struct hsm_merge *m;

	if (!hsm || !hsm->merge) {
		return;
	}
	m = hsm->merge;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	/* No job is added once stopping is set, so the list is stable here. */
	for (size_t i = 0; i < m->njobs; i++) {
		struct hsm_merge_job *job = m->jobs[i];
		if (job->thread_started) {
			pthread_join(job->thread, NULL);
			job->thread_started = false;
		}
	}
}

void hsm_merge_release(struct hsm *hsm)
{
	struct hsm_merge *m;

	if (!hsm || !hsm->merge) {
		return;
	}
	hsm_merge_stop(hsm);
	m = hsm->merge;
	hsm->merge = NULL;
	for (size_t i = 0; i < m->njobs; i++) {
		free(m->jobs[i]);
	}
	free(m->jobs);
	pk_rpc_pub_free(m->pub);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->pub_lock);
	free(m);
}

/* ---- registering a new job ------------------------------------------------------------ */

int hsm_merge_check_bandwidth(uint64_t bw, struct pk_error *err)
{
	if (bw != 0 && (bw < HSM_MERGE_BANDWIDTH_MIN || bw > HSM_MERGE_BANDWIDTH_MAX)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "bandwidth %" PRIu64 " bytes/s is out of range: give 0 (no limit) "
				    "or %u .. %llu bytes/s", bw, HSM_MERGE_BANDWIDTH_MIN,
				    (unsigned long long)HSM_MERGE_BANDWIDTH_MAX);
	}
	return 0;
}

/* Registers job (state set) and starts it; CONFLICT when its drive is busy. */
int hsm_merge_register(struct hsm_merge *m, struct hsm_merge_job *job, struct pk_error *err)
{
	struct hsm_merge_job *other;
	size_t unfinished = 0;
	int r;

	pthread_mutex_lock(&m->lock);
	other = find_drive_job(m, job->vm, job->drive);
	for (size_t i = 0; i < m->njobs; i++) {
		unfinished += hsm_merge_state_final(m->jobs[i]->state) ? 0 : 1;
	}
	if (m->stopping) {
		r = pk_error_set(err, PK_E_UNAVAILABLE, ESHUTDOWN, "hsmd is shutting down");
	} else if (other) {
		r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
				 "drive '%s' of VM '%s' already has merge job '%s' (%s, %s); one job "
				 "per drive", job->drive, job->vm, other->id,
				 hsm_merge_kind_name(other->kind), hsm_merge_state_name(other->state));
	} else if (unfinished >= MERGE_JOBS_MAX) {
		r = pk_error_set(err, PK_E_BUSY, EBUSY,
				 "%zu merge jobs are running on this host; retry later", unfinished);
	} else {
		r = hsm_merge_job_write_locked(m, job, err);
	}
	if (r == 0) {
		add_job(m, job);
		r = start_thread_locked(m, job, err);
		if (r < 0) {
			/* The record stays: the next hsmd resumes the job. */
			m->njobs--;
		}
		prune_locked(m);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- JobGet, JobList, JobAbort, JobSetBandwidth --------------------------------------- */

static int not_found(const char *id, struct pk_error *err)
{
	return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "merge job '%s' not found on this host",
			    id ? id : "");
}

int hsm_merge_job_get(struct hsm *hsm, const char *id, struct hsm_merge_job_info *ret,
		      struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(hsm);
	struct hsm_merge_job *job;
	int r = 0;

	if (!id || !pk_uuid_valid(id)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "job_id '%s' is not a UUID",
				    id ? id : "");
	}
	pthread_mutex_lock(&m->lock);
	job = find_job(m, id);
	if (job) {
		hsm_merge_job_info_of(job, ret);
	} else {
		r = not_found(id, err);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int info_cmp(const void *a, const void *b)
{
	const struct hsm_merge_job_info *x = a, *y = b;
	bool fx = hsm_merge_state_final(x->state), fy = hsm_merge_state_final(y->state);

	if (fx != fy) {
		return fx ? 1 : -1;
	}
	if (x->started_ms != y->started_ms) {
		return x->started_ms > y->started_ms ? -1 : 1;
	}
	return strcmp(x->id, y->id);
}

int hsm_merge_job_list(struct hsm *hsm, struct hsm_merge_job_info **ret, size_t *ret_n,
		       struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(hsm);
	struct hsm_merge_job_info *infos;
	size_t n;

	(void)err;
	pthread_mutex_lock(&m->lock);
	n = m->njobs;
	infos = pk_xcalloc(n + 1, sizeof(*infos));
	for (size_t i = 0; i < n; i++) {
		hsm_merge_job_info_of(m->jobs[i], &infos[i]);
	}
	pthread_mutex_unlock(&m->lock);
	qsort(infos, n, sizeof(*infos), info_cmp);
	*ret = infos;
	*ret_n = n;
	return 0;
}

int hsm_merge_job_abort(struct hsm *hsm, const char *id, struct hsm_merge_job_info *ret,
			struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(hsm);
	struct hsm_merge_job *job;
	int r = 0;

	r = hsm_merge_job_get(hsm, id, ret, err);
	if (r < 0) {
		return r;
	}
	pthread_mutex_lock(&m->lock);
	job = find_job(m, id);
	if (!job) {
		r = not_found(id, err);
	} else if (job->state == HSM_MERGE_PIVOTING || job->state == HSM_MERGE_CLEANUP) {
		r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
				 "merge job '%s' is %s: the chain already changed, it can only "
				 "finish", id, hsm_merge_state_name(job->state));
	} else if (!hsm_merge_state_final(job->state) && !job->abort_requested) {
		/* Recorded before it takes effect: a restarted hsmd aborts it too. */
		job->abort_requested = true;
		r = hsm_merge_job_write_locked(m, job, err);
		if (r < 0) {
			job->abort_requested = false;
			pk_error_prefix(err, "the abort of merge job '%s' is not recorded", id);
		} else {
			job->wakeups++;
			pthread_cond_broadcast(&m->cond);
			pk_log_info("merge job abort requested job='%s' state=%s", id,
				    hsm_merge_state_name(job->state));
		}
	}
	if (job && r == 0) {
		hsm_merge_job_info_of(job, ret);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* The running block job back at the job's bandwidth (best effort: the next
 * block job of the job starts with it anyway). */
static void undo_bandwidth(struct hsm *hsm, const struct hsm_merge_job_info *info)
{
	struct pk_error err = { PK_OK, "" };

	if (hsm_virt_block_job_set_bandwidth(hsm->virt, info->vm, info->drive,
					     info->cap_lifted ? 0 : info->bandwidth, &err) < 0 &&
	    err.code != PK_E_NOT_FOUND) {
		pk_log_warn("merge job job='%s': the block job keeps the bandwidth that was not "
			    "recorded: %s", info->id, err.message);
	}
}

int hsm_merge_job_set_bandwidth(struct hsm *hsm, const char *id, uint64_t bandwidth,
				struct hsm_merge_job_info *ret, struct pk_error *err)
{
	struct hsm_merge *m = hsm_merge_of(hsm);
	struct hsm_merge_job *job;
	struct hsm_merge_job_info info;
	bool apply = false;
	int r;

	r = hsm_merge_check_bandwidth(bandwidth, err);
	if (r == 0) {
		r = hsm_merge_job_get(hsm, id, &info, err);
	}
	if (r < 0) {
		return r;
	}
	if (hsm_merge_state_final(info.state)) {
		return pk_error_set(err, PK_E_CONFLICT, EINVAL, "merge job '%s' is %s already", id,
				    hsm_merge_state_name(info.state));
	}
	/* A running block job changes at once; the job keeps the value for restarts. */
	if (info.state == HSM_MERGE_COMMITTING || info.state == HSM_MERGE_READY) {
		apply = info.kind != HSM_MERGE_COLD_COMMIT;
	}
	if (apply) {
		r = hsm_virt_ready(hsm, err);
		if (r == 0) {
			r = hsm_virt_block_job_set_bandwidth(hsm->virt, info.vm, info.drive, bandwidth,
							     err);
		}
		if (r < 0 && err && err->code == PK_E_NOT_FOUND) {
			pk_error_clear(err); /* between two block jobs: kept for the next */
			r = 0;
		}
		if (r < 0) {
			return r;
		}
	}
	pthread_mutex_lock(&m->lock);
	job = find_job(m, id);
	if (job) {
		uint64_t old = job->bandwidth;
		bool old_lifted = job->cap_lifted;
		/* A limit asked for wins over one lifted for the last pass. */
		job->bandwidth = bandwidth;
		job->cap_lifted = false;
		r = hsm_merge_job_write_locked(m, job, err);
		if (r < 0) {
			job->bandwidth = old;
			job->cap_lifted = old_lifted;
			pk_error_prefix(err, "the bandwidth of merge job '%s' is not recorded", id);
		} else {
			job->wakeups++;
			hsm_merge_job_info_of(job, ret);
			pthread_cond_broadcast(&m->cond);
		}
	} else {
		r = not_found(id, err);
	}
	pthread_mutex_unlock(&m->lock);
	if (r < 0 && job && apply) {
		undo_bandwidth(hsm, &info);
	}
	if (r == 0) {
		pk_log_info("merge job bandwidth job='%s' bandwidth=%" PRIu64, id, bandwidth);
		hsm_merge_publish(m, ret, hsm->info.host_id);
	}
	return r;
}

const char *hsm_merge_events_url(struct hsm *hsm)
{
	struct hsm_merge *m = hsm_merge_of(hsm);

	return m ? m->events_url : "";
}

bool hsm_merge_drive_busy(struct hsm *hsm, const char *vm, const char *drive,
			  char ret_id[PK_UUID_BUFLEN])
{
	struct hsm_merge *m = hsm_merge_of(hsm);
	struct hsm_merge_job *job;

	if (!m || !vm || !drive) {
		return false;
	}
	pthread_mutex_lock(&m->lock);
	job = find_drive_job(m, vm, drive);
	if (job && ret_id) {
		snprintf(ret_id, PK_UUID_BUFLEN, "%s", job->id);
	}
	pthread_mutex_unlock(&m->lock);
	return job != NULL;
}

/* ---- libvirt callbacks ------------------------------------------------------------------ */

void hsm_merge_on_block_job(struct hsm *hsm, const char *vm, const char *disk,
			    enum hsm_virt_job_type type, enum hsm_virt_job_status status)
{
	struct hsm_merge *m = hsm_merge_of(hsm);
	struct hsm_merge_job *job;

	if (!m) {
		return;
	}
	pthread_mutex_lock(&m->lock);
	job = find_drive_job(m, vm, disk);
	if (job) {
		job->ev_status = (int)status;
		if (status == HSM_VIRT_JOB_READY) {
			job->ev_ready = true;
		}
		job->wakeups++;
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->lock);
	if (job) {
		pk_log_debug("block job event for merge job='%s' vm='%s' disk='%s' type=%s status=%s",
			     job->id, vm, disk, hsm_virt_job_type_name(type),
			     hsm_virt_job_status_name(status));
	}
}

void hsm_merge_on_lifecycle(struct hsm *hsm, const char *vm, enum hsm_virt_lifecycle event)
{
	struct hsm_merge *m = hsm_merge_of(hsm);

	if (!m) {
		return;
	}
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->njobs; i++) {
		struct hsm_merge_job *job = m->jobs[i];
		if (!hsm_merge_state_final(job->state) && !strcmp(job->vm, vm)) {
			if (event == HSM_VIRT_EV_STOPPED || event == HSM_VIRT_EV_CRASHED ||
			    event == HSM_VIRT_EV_UNDEFINED) {
				job->ev_stopped = true;
			}
			job->wakeups++;
		}
	}
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

void hsm_merge_on_reconnected(struct hsm *hsm)
{
	struct hsm_merge *m = hsm_merge_of(hsm);

	if (!m) {
		return;
	}
	/* Events may have been lost: every job re-reads the live state. */
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->njobs; i++) {
		m->jobs[i]->wakeups++;
	}
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}
