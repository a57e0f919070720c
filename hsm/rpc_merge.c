/*
 * Merge jobs on the wire: the hsmd verbs Merge, JobGet, JobList, JobAbort,
 * JobSetBandwidth and JobEvents (protobuf in, plain C to hsm/merge.h,
 * protobuf out) and the Event published for each change.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "hsm/merge_job.h"
#include "hsm/rpc.h"
#include "proto/codec.h"
#include "proto/wire.h"

static const char *str(const char *s)
{
	return s ? s : "";
}

/* job_to_wire casts kind and state: a renumbering on either side must not build. */
PK_WIRE_SAME(HSM_MERGE_COMMIT, PK__JOB_KIND__COMMIT);
PK_WIRE_SAME(HSM_MERGE_ACTIVE_COMMIT, PK__JOB_KIND__ACTIVE_COMMIT);
PK_WIRE_SAME(HSM_MERGE_PULL, PK__JOB_KIND__PULL);
PK_WIRE_SAME(HSM_MERGE_COLD_COMMIT, PK__JOB_KIND__COLD_COMMIT);
PK_WIRE_SAME(HSM_MERGE_PREPARING, PK__JOB_STATE__PREPARING);
PK_WIRE_SAME(HSM_MERGE_EXTENDING, PK__JOB_STATE__EXTENDING);
PK_WIRE_SAME(HSM_MERGE_COMMITTING, PK__JOB_STATE__COMMITTING);
PK_WIRE_SAME(HSM_MERGE_READY, PK__JOB_STATE__READY);
PK_WIRE_SAME(HSM_MERGE_PIVOTING, PK__JOB_STATE__PIVOTING);
PK_WIRE_SAME(HSM_MERGE_CLEANUP, PK__JOB_STATE__CLEANUP);
PK_WIRE_SAME(HSM_MERGE_DONE, PK__JOB_STATE__DONE);
PK_WIRE_SAME(HSM_MERGE_FAILED, PK__JOB_STATE__FAILED);
PK_WIRE_SAME(HSM_MERGE_ABORTING, PK__JOB_STATE__ABORTING);
PK_WIRE_SAME(HSM_MERGE_CONVERGENCE_UNKNOWN, PK__JOB_CONVERGENCE__CONVERGENCE_UNKNOWN);
PK_WIRE_SAME(HSM_MERGE_CONVERGENCE_CONVERGING, PK__JOB_CONVERGENCE__CONVERGING);
PK_WIRE_SAME(HSM_MERGE_CONVERGENCE_NOT_CONVERGING, PK__JOB_CONVERGENCE__NOT_CONVERGING);

static Pk__JobInfo *job_to_wire(struct pk_arena *a, const struct hsm_merge_job_info *j)
{
	Pk__JobInfo *w = pk_arena_new(a, Pk__JobInfo);

	pk__job_info__init(w);
	w->job_id = pk_arena_strdup(a, j->id);
	w->vm = pk_arena_strdup(a, j->vm);
	w->drive = pk_arena_strdup(a, j->drive);
	w->kind = (Pk__JobKind)j->kind;    /* same numbering */
	w->state = (Pk__JobState)j->state; /* same numbering */
	w->domain_id = pk_arena_strdup(a, j->domain);
	w->image_id = pk_arena_strdup(a, j->image);
	w->base_id = pk_arena_strdup(a, j->base);
	w->top_id = pk_arena_strdup(a, j->top);
	w->cur = j->cur;
	w->end = j->end;
	w->bandwidth = j->bandwidth;
	w->started_ms = j->started_ms;
	w->updated_ms = j->updated_ms;
	w->convergence = (Pk__JobConvergence)j->convergence; /* same numbering */
	w->guest_write_rate = j->guest_rate;
	w->cap_lifted = j->cap_lifted;
	w->note = pk_arena_strdup(a, j->note);
	w->waiting = pk_arena_strdup(a, j->waiting);
	if (j->error.code != PK_OK) {
		w->error = pk_arena_new(a, Pk__Error);
		pk__error__init(w->error);
		w->error->code = pk_codec_error_code(j->error.code);
		w->error->message = pk_arena_strdup(a, j->error.message);
	}
	return w;
}

/* ---- verbs ------------------------------------------------------------------------ */

int hsm_rpc_merge(void *ctx, const Pk__Request *req, Pk__Response *resp, struct pk_arena *a,
		  struct pk_error *err)
{
	const Pk__MergeRequest *m = req->merge;
	Pk__MergeResponse *w = pk_arena_new(a, Pk__MergeResponse);
	struct hsm_merge_request mr = { 0 };
	struct hsm_merge_job_info info;
	int r;

	pk__merge_response__init(w);
	mr.vm = str(m->vm);
	mr.drive = str(m->drive);
	mr.domain = str(m->domain_id);
	mr.image = str(m->image_id);
	mr.base = str(m->base_id);
	mr.top = str(m->top_id);
	mr.bandwidth = m->bandwidth;
	switch (m->direction) {
	case PK__MERGE_DIRECTION__MERGE_DIRECTION_UNSPECIFIED:
	case PK__MERGE_DIRECTION__MERGE_COMMIT:
		mr.direction = HSM_MERGE_DIR_COMMIT;
		break;
	case PK__MERGE_DIRECTION__MERGE_PULL:
		mr.direction = HSM_MERGE_DIR_PULL;
		break;
	default:
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "unknown direction %d",
				    (int)m->direction);
	}
	r = hsm_merge_begin(ctx, &mr, &info, err);
	if (r == 0) {
		w->job = job_to_wire(a, &info);
		resp->merge = w;
	}
	return r;
}

int hsm_rpc_job_get(void *ctx, const Pk__Request *req, Pk__Response *resp, struct pk_arena *a,
		    struct pk_error *err)
{
	Pk__JobGetResponse *w = pk_arena_new(a, Pk__JobGetResponse);
	struct hsm_merge_job_info info;
	int r;

	pk__job_get_response__init(w);
	r = hsm_merge_job_get(ctx, str(req->job_get->job_id), &info, err);
	if (r == 0) {
		w->job = job_to_wire(a, &info);
		resp->job_get = w;
	}
	return r;
}

int hsm_rpc_job_list(void *ctx, const Pk__Request *req, Pk__Response *resp, struct pk_arena *a,
		     struct pk_error *err)
{
	Pk__JobListResponse *w = pk_arena_new(a, Pk__JobListResponse);
	struct hsm_merge_job_info *infos = NULL;
	size_t n = 0;
	int r;

	(void)req;
	pk__job_list_response__init(w);
	r = hsm_merge_job_list(ctx, &infos, &n, err);
	if (r == 0) {
		w->jobs = pk_arena_array(a, Pk__JobInfo *, n + 1);
		for (size_t i = 0; i < n; i++) {
			w->jobs[i] = job_to_wire(a, &infos[i]);
		}
		w->n_jobs = n;
		resp->job_list = w;
	}
	free(infos);
	return r;
}

int hsm_rpc_job_abort(void *ctx, const Pk__Request *req, Pk__Response *resp, struct pk_arena *a,
		      struct pk_error *err)
{
	Pk__JobAbortResponse *w = pk_arena_new(a, Pk__JobAbortResponse);
	struct hsm_merge_job_info info;
	int r;

	pk__job_abort_response__init(w);
	r = hsm_merge_job_abort(ctx, str(req->job_abort->job_id), &info, err);
	if (r == 0) {
		w->job = job_to_wire(a, &info);
		resp->job_abort = w;
	}
	return r;
}

int hsm_rpc_job_set_bandwidth(void *ctx, const Pk__Request *req, Pk__Response *resp,
			      struct pk_arena *a, struct pk_error *err)
{
	const Pk__JobSetBandwidthRequest *b = req->job_set_bandwidth;
	Pk__JobSetBandwidthResponse *w = pk_arena_new(a, Pk__JobSetBandwidthResponse);
	struct hsm_merge_job_info info;
	int r;

	pk__job_set_bandwidth_response__init(w);
	r = hsm_merge_job_set_bandwidth(ctx, str(b->job_id), b->bandwidth, &info, err);
	if (r == 0) {
		w->job = job_to_wire(a, &info);
		resp->job_set_bandwidth = w;
	}
	return r;
}

int hsm_rpc_job_events(void *ctx, const Pk__Request *req, Pk__Response *resp,
		       struct pk_arena *a, struct pk_error *err)
{
	Pk__JobEventsResponse *w = pk_arena_new(a, Pk__JobEventsResponse);
	const char *url = hsm_merge_events_url(ctx);

	(void)req;
	if (!*url) {
		return pk_error_set(err, PK_E_UNSUPPORTED, ENOTSUP,
				    "this hsmd publishes no events (setting 'events' is not set); "
				    "poll JobGet instead");
	}
	pk__job_events_response__init(w);
	w->url = pk_arena_strdup(a, url);
	resp->job_events = w;
	return 0;
}

/* ---- events ------------------------------------------------------------------------ */

int hsm_merge_event_encode(const struct hsm_merge_job_info *info, uint64_t seq,
			   int32_t host_id, void **ret_buf, size_t *ret_len)
{
	struct pk_arena a = PK_ARENA_INIT;
	Pk__Event ev = PK__EVENT__INIT;
	size_t len;
	void *buf;

	ev.seq = seq;
	ev.time_ms = pk_clock_realtime_ms();
	ev.host_id = host_id;
	ev.job = job_to_wire(&a, info);
	len = pk__event__get_packed_size(&ev);
	buf = pk_xmalloc(len ? len : 1);
	pk__event__pack(&ev, buf);
	pk_arena_release(&a);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int hsm_vm_wait_event_encode(const char *vm, const char *waiting, uint64_t seq,
			     int32_t host_id, void **ret_buf, size_t *ret_len)
{
	Pk__Event ev = PK__EVENT__INIT;
	Pk__VmWaitEvent w = PK__VM_WAIT_EVENT__INIT;
	size_t len;
	void *buf;

	w.vm = (char *)vm;
	w.waiting = (char *)waiting;
	ev.seq = seq;
	ev.time_ms = pk_clock_realtime_ms();
	ev.host_id = host_id;
	ev.vm_wait = &w;
	len = pk__event__get_packed_size(&ev);
	buf = pk_xmalloc(len ? len : 1);
	pk__event__pack(&ev, buf);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}
