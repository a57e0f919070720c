/*
 * Starting a Merge and following a job to its end: hsmd's events (pub
 * socket, JobEvents) when it has them, JobGet as the fallback (after each
 * event wait of WATCH_POLL_MS, or every 250 ms without events).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/flow.h"

#define WATCH_POLL_MS 500

static void report_job(const struct ctl_flow_watch *w, const Pk__JobInfo *j)
{
	if (w->report && w->report->job) {
		w->report->job(w->report->ctx, j);
	}
}

void ctl_flow_watch_init(struct ctl_flow_watch *w, struct ctl *ctl,
			 const struct ctl_flow_report *report)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__JobEventsRequest je = PK__JOB_EVENTS_REQUEST__INIT;
	Pk__Response *resp = NULL;
	struct pk_error err = { PK_OK, "" };

	memset(w, 0, sizeof(*w));
	w->ctl = ctl;
	w->report = report;
	req.call_case = PK__REQUEST__CALL_JOB_EVENTS;
	req.job_events = &je;
	if (ctl_call(ctl, CTL_HSM, &req, &resp, &err) == 0 && resp->job_events &&
	    resp->job_events->url && *resp->job_events->url) {
		if (pk_rpc_sub_new(resp->job_events->url, &ctl->tls, &w->sub, &err) < 0) {
			w->sub = NULL; /* JobGet polling only */
		}
	}
	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
}

void ctl_flow_watch_release(struct ctl_flow_watch *w)
{
	pk_rpc_sub_free(w->sub);
	w->sub = NULL;
}

static int job_get(struct ctl *ctl, const char *id, Pk__Response **ret, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__JobGetRequest jg = PK__JOB_GET_REQUEST__INIT;

	jg.job_id = (char *)id;
	req.call_case = PK__REQUEST__CALL_JOB_GET;
	req.job_get = &jg;
	return ctl_call(ctl, CTL_HSM, &req, ret, err);
}

static bool final_state(Pk__JobState s)
{
	return s == PK__JOB_STATE__DONE || s == PK__JOB_STATE__FAILED;
}

int ctl_flow_watch_job(struct ctl_flow_watch *w, const char *id, Pk__Response **ret_resp,
		       struct pk_error *err)
{
	Pk__Response *resp = NULL;
	int r;

	for (;;) {
		if (w->sub) {
			void *msg = NULL;
			size_t len = 0;
			if (pk_rpc_sub_recv(w->sub, WATCH_POLL_MS, &msg, &len, NULL) == 0) {
				Pk__Event *ev = pk__event__unpack(NULL, len, msg);
				free(msg);
				if (ev && ev->job && ev->job->job_id && !strcmp(ev->job->job_id, id)) {
					bool fin = final_state(ev->job->state);
					report_job(w, ev->job);
					pk__event__free_unpacked(ev, NULL);
					if (!fin) {
						continue;
					}
				} else {
					if (ev) {
						pk__event__free_unpacked(ev, NULL);
					}
					continue;
				}
			}
		} else {
			struct timespec ts = { 0, 250 * 1000000L };
			nanosleep(&ts, NULL);
		}
		r = job_get(w->ctl, id, &resp, err);
		if (r < 0) {
			return r;
		}
		report_job(w, resp->job_get->job);
		if (final_state(resp->job_get->job->state)) {
			break;
		}
		pk__response__free_unpacked(resp, NULL);
		resp = NULL;
	}
	*ret_resp = resp;
	return 0;
}

int ctl_merge_job_error(const Pk__JobInfo *j, struct pk_error *err)
{
	return pk_error_set(err,
			    j->error ? pk_codec_errc(j->error->code) : PK_E_INTERNAL, EIO,
			    "merge job %s failed: %s", j->job_id,
			    j->error && j->error->message ? j->error->message : "(no reason)");
}

int ctl_merge_start(struct ctl *ctl, const char *vm, const char *drive, const char *domain,
		    const char *image, const char *base, const char *top,
		    Pk__MergeDirection dir, uint64_t bandwidth, Pk__Response **ret,
		    struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__MergeRequest mr = PK__MERGE_REQUEST__INIT;

	mr.vm = (char *)vm;
	mr.drive = (char *)drive;
	mr.domain_id = (char *)(domain ? domain : "");
	mr.image_id = (char *)(image ? image : "");
	mr.base_id = (char *)base;
	mr.top_id = (char *)(top ? top : "");
	mr.bandwidth = bandwidth;
	mr.direction = dir;
	req.call_case = PK__REQUEST__CALL_MERGE;
	req.merge = &mr;
	return ctl_call(ctl, CTL_HSM, &req, ret, err);
}
