/*
 * pkctl merge | job: hsmd's merge jobs (start one, list, show, wait with a
 * progress bar, abort, change the bandwidth), and the display of a job's
 * progress that ctl/cmd_snapshot.c shares (following the job itself:
 * ctl/flow_job.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/uuid.h"
#include "ctl/ctl.h"
#include "ctl/cmd_merge.h"
#include "ctl/show.h"

#define BAR_WIDTH 30

enum {
	OPT_VM = 1000,
	OPT_DRIVE,
	OPT_DOMAIN,
	OPT_IMAGE,
	OPT_BASE,
	OPT_TOP,
	OPT_VOLUME,
	OPT_DIRECTION,
	OPT_BANDWIDTH,
	OPT_WAIT,
	OPT_NO_PROGRESS,
};

int ctl_merge_opts_parse(struct ctl *ctl, int argc, char **argv, int first,
			 struct ctl_merge_opts *o)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, OPT_VM },
		{ "drive", required_argument, NULL, OPT_DRIVE },
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "base", required_argument, NULL, OPT_BASE },
		{ "top", required_argument, NULL, OPT_TOP },
		{ "volume", required_argument, NULL, OPT_VOLUME },
		{ "direction", required_argument, NULL, OPT_DIRECTION },
		{ "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = first;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_VM: o->vm = optarg; break;
		case OPT_DRIVE: o->drive = optarg; break;
		case OPT_DOMAIN: o->domain = optarg; break;
		case OPT_IMAGE: o->image = optarg; break;
		case OPT_BASE: o->base = optarg; break;
		case OPT_TOP: o->top = optarg; break;
		case OPT_VOLUME: o->volume = optarg; break;
		case OPT_DIRECTION: o->direction = optarg; break;
		case OPT_BANDWIDTH: o->bandwidth = optarg; break;
		case OPT_WAIT: o->wait = true; break;
		case OPT_NO_PROGRESS: o->no_progress = true; break;
		default:
			return ctl_usage_error(ctl, "%s: unknown option '%s'", argv[0], argv[optind - 1]);
		}
	}
	if (optind < argc) {
		o->arg = argv[optind++];
	}
	if (optind < argc) {
		o->arg2 = argv[optind++];
	}
	if (optind < argc) {
		return ctl_usage_error(ctl, "%s: unexpected argument '%s'", argv[0], argv[optind]);
	}
	return 0;
}

/* "10M" or "10MiB/s" -> bytes/s; 0 = unlimited. */
int ctl_parse_bandwidth(struct ctl *ctl, const char *s, uint64_t *ret)
{
	char buf[64];
	size_t n;

	if (!s) {
		*ret = 0;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	n = strlen(buf);
	if (n > 2 && !strcmp(buf + n - 2, "/s")) {
		buf[n - 2] = '\0';
	}
	if (ctl_parse_size(buf, ret) < 0) {
		return ctl_usage_error(ctl, "--bandwidth wants bytes per second (e.g. 50M), not '%s'",
				       s);
	}
	return 0;
}

int ctl_parse_direction(struct ctl *ctl, const char *s, Pk__MergeDirection *ret)
{
	if (!s || !strcmp(s, "commit")) {
		*ret = PK__MERGE_DIRECTION__MERGE_COMMIT;
	} else if (!strcmp(s, "pull")) {
		*ret = PK__MERGE_DIRECTION__MERGE_PULL;
	} else {
		return ctl_usage_error(ctl, "--direction is commit or pull, not '%s'", s);
	}
	return 0;
}

/* ---- watching a job ----------------------------------------------------------------- */


static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static void watch_show(void *ctx, const Pk__JobInfo *j)
{
	struct ctl_watch *w = ctx;
	uint64_t now = pk_clock_monotonic_ms();
	double pct = j->end ? 100.0 * (double)j->cur / (double)j->end : 0;
	double rate = 0;
	char eta[32] = "--:--";
	bool final = j->state == PK__JOB_STATE__DONE || j->state == PK__JOB_STATE__FAILED;
	bool changed = (int)j->state != w->last_state;

	if (final && !changed) {
		return; /* shown already (the event, then JobGet) */
	}

	if (j->state == PK__JOB_STATE__COMMITTING && !w->t0 && j->end) {
		w->t0 = now;
		w->cur0 = j->cur;
	}
	if (w->t0 && now > w->t0 && j->cur > w->cur0) {
		rate = (double)(j->cur - w->cur0) * 1000.0 / (double)(now - w->t0);
		if (rate > 0 && j->end > j->cur) {
			unsigned s = (unsigned)((double)(j->end - j->cur) / rate + 0.5);
			snprintf(eta, sizeof(eta), "%u:%02u", s / 60, s % 60);
		} else if (j->end && j->cur >= j->end) {
			snprintf(eta, sizeof(eta), "0:00");
		}
	}
	if ((w->bar || w->lines) && j->note && *j->note && strcmp(j->note, w->last_note) != 0) {
		/* Why a job is slow, once each time it changes, on a line of its own. */
		printf("%sjob %s: %s\n", w->drawn ? "\n" : "", j->job_id, j->note);
		fflush(stdout);
		w->drawn = false;
	}
	snprintf(w->last_note, sizeof(w->last_note), "%s", j->note ? j->note : "");
	if (w->bar && (changed || final || now - w->last_draw >= 100)) {
		int fill = (int)(pct / 100.0 * BAR_WIDTH + 0.5);
		char bar[BAR_WIDTH + 1];
		for (int i = 0; i < BAR_WIDTH; i++) {
			bar[i] = i < fill ? '#' : '.';
		}
		bar[BAR_WIDTH] = '\0';
		printf("\r  %-10s [%s] %5.1f%%  %7.1f MiB/s  ETA %s   ", ctl_job_state_name(j->state),
		       bar, pct, mib((uint64_t)rate), eta);
		if (final) {
			printf("\n");
		}
		fflush(stdout);
		w->drawn = !final;
		w->last_draw = now;
	}
	if (w->lines) {
		int decile = (int)(pct / 10);
		if (changed) {
			printf("job %s: %s\n", j->job_id, ctl_job_state_name(j->state));
		} else if (j->state == PK__JOB_STATE__COMMITTING && decile != w->last_decile) {
			printf("job %s: COMMITTING %.0f%% (%.1f MiB of %.1f MiB, %.1f MiB/s, ETA %s)\n",
			       j->job_id, pct, mib(j->cur), mib(j->end), mib((uint64_t)rate), eta);
		}
		fflush(stdout);
		w->last_decile = decile;
	}
	w->last_state = (int)j->state;
}

void ctl_progress_init(struct ctl_watch *w, struct ctl *ctl, bool progress)
{
	memset(w, 0, sizeof(*w));
	w->last_state = -1;
	w->last_decile = -1;
	if (progress && !ctl->json) {
		w->bar = isatty(STDOUT_FILENO);
		w->lines = !w->bar;
	}
	w->report.job = watch_show;
	w->report.ctx = w;
}

void ctl_progress_end(struct ctl_watch *w)
{
	if (w->drawn) {
		printf("\n");
	}
	w->drawn = false;
}

void ctl_watch_init(struct ctl_watch *w, struct ctl *ctl, bool progress)
{
	ctl_progress_init(w, ctl, progress);
	ctl_flow_watch_init(&w->flow, ctl, &w->report);
}

void ctl_watch_release(struct ctl_watch *w)
{
	ctl_progress_end(w);
	ctl_flow_watch_release(&w->flow);
}

int ctl_watch_job(struct ctl_watch *w, const char *id, Pk__Response **ret_resp,
		  struct pk_error *err)
{
	return ctl_flow_watch_job(&w->flow, id, ret_resp, err);
}

/* ---- pkctl merge ------------------------------------------------------------------------ */

static void print_job_result(struct ctl *ctl, const Pk__JobInfo *j)
{
	if (ctl->json) {
		ctl_json_init(&ctl->out, stdout);
		ctl_json_object_begin(&ctl->out, NULL);
		ctl_json_job(&ctl->out, "job", j);
		ctl_json_object_end(&ctl->out);
		ctl_json_finish(&ctl->out);
	} else {
		ctl_print_job(j);
	}
}

static int cmd_merge(struct ctl *ctl, const struct ctl_merge_opts *o)
{
	struct pk_error err = { PK_OK, "" };
	Pk__Response *resp = NULL, *fin = NULL;
	Pk__MergeDirection dir;
	struct ctl_watch w;
	uint64_t bw = 0;
	int r;

	if (!o->vm || !o->drive || !o->base) {
		return ctl_usage_error(ctl, "usage: pkctl merge --vm NAME --drive vdX --base ID "
					    "[--top ID] [--direction commit|pull] [--bandwidth BYTES/s] "
					    "[--wait]");
	}
	r = ctl_parse_direction(ctl, o->direction, &dir);
	if (r == 0) {
		r = ctl_parse_bandwidth(ctl, o->bandwidth, &bw);
	}
	if (r) {
		return r;
	}
	if (o->wait) {
		ctl_watch_init(&w, ctl, !o->no_progress);
	}
	r = ctl_merge_start(ctl, o->vm, o->drive, o->domain, o->image, o->base, o->top, dir, bw, &resp,
			&err);
	if (r == 0 && o->wait) {
		r = ctl_watch_job(&w, resp->merge->job->job_id, &fin, &err);
	}
	if (o->wait) {
		ctl_watch_release(&w);
	}
	if (r < 0) {
		if (resp) {
			pk__response__free_unpacked(resp, NULL);
		}
		return ctl_fail(ctl, &err);
	}
	const Pk__JobInfo *j = fin ? fin->job_get->job : resp->merge->job;
	if (fin && j->state == PK__JOB_STATE__FAILED) {
		ctl_merge_job_error(j, &err);
		r = ctl_fail(ctl, &err);
	} else {
		print_job_result(ctl, j);
		r = CTL_EXIT_OK;
	}
	pk__response__free_unpacked(resp, NULL);
	if (fin) {
		pk__response__free_unpacked(fin, NULL);
	}
	return r;
}

int ctl_cmd_merge(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_merge_opts o;
	int r = ctl_merge_opts_parse(ctl, argc, argv, 1, &o);

	return r ? r : cmd_merge(ctl, &o);
}

/* ---- pkctl job ----------------------------------------------------------------------------- */

static void show_job_list(struct ctl *ctl, const Pk__Response *resp)
{
	const Pk__JobListResponse *l = resp->job_list;

	if (ctl->json) {
		ctl_json_array_begin(&ctl->out, "jobs");
		for (size_t i = 0; i < l->n_jobs; i++) {
			ctl_json_job(&ctl->out, NULL, l->jobs[i]);
		}
		ctl_json_array_end(&ctl->out);
		return;
	}
	if (!l->n_jobs) {
		printf("no merge jobs\n");
	}
	for (size_t i = 0; i < l->n_jobs; i++) {
		ctl_print_job(l->jobs[i]);
	}
}

static void show_one_job(struct ctl *ctl, const Pk__JobInfo *j)
{
	char bw[32];

	if (ctl->json) {
		ctl_json_job(&ctl->out, "job", j);
		return;
	}
	ctl_print_job(j);
	printf("    kind %s, state %s, %" PRIu64 " of %" PRIu64 " bytes, bandwidth %s%s\n",
	       ctl_job_kind_name(j->kind), ctl_job_state_name(j->state), j->cur, j->end,
	       j->bandwidth ? ctl_format_size(j->bandwidth, bw, sizeof(bw)) : "unlimited",
	       j->cap_lifted ? " (lifted for the last pass)" : "");
}

static void show_job_get(struct ctl *ctl, const Pk__Response *resp)
{
	show_one_job(ctl, resp->job_get->job);
}

static void show_job_abort(struct ctl *ctl, const Pk__Response *resp)
{
	show_one_job(ctl, resp->job_abort->job);
}

static void show_job_bandwidth(struct ctl *ctl, const Pk__Response *resp)
{
	show_one_job(ctl, resp->job_set_bandwidth->job);
}

static int job_wait(struct ctl *ctl, const struct ctl_merge_opts *o)
{
	struct pk_error err = { PK_OK, "" };
	Pk__Response *fin = NULL;
	struct ctl_watch w;
	int r;

	ctl_watch_init(&w, ctl, !o->no_progress);
	r = ctl_watch_job(&w, o->arg, &fin, &err);
	ctl_watch_release(&w);
	if (r < 0) {
		return ctl_fail(ctl, &err);
	}
	if (fin->job_get->job->state == PK__JOB_STATE__FAILED) {
		ctl_merge_job_error(fin->job_get->job, &err);
		r = ctl_fail(ctl, &err);
	} else {
		print_job_result(ctl, fin->job_get->job);
		r = CTL_EXIT_OK;
	}
	pk__response__free_unpacked(fin, NULL);
	return r;
}

int ctl_cmd_job(struct ctl *ctl, int argc, char **argv)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__JobListRequest jl = PK__JOB_LIST_REQUEST__INIT;
	Pk__JobGetRequest jg = PK__JOB_GET_REQUEST__INIT;
	Pk__JobAbortRequest ja = PK__JOB_ABORT_REQUEST__INIT;
	Pk__JobSetBandwidthRequest jb = PK__JOB_SET_BANDWIDTH_REQUEST__INIT;
	struct ctl_merge_opts o;
	uint64_t bw = 0;
	int r;

	if (argc < 2) {
		return ctl_usage_error(ctl, "usage: pkctl job list | show ID | wait ID | abort ID | "
					    "bandwidth ID BYTES/s");
	}
	r = ctl_merge_opts_parse(ctl, argc, argv, 2, &o);
	if (r) {
		return r;
	}
	if (!strcmp(argv[1], "list")) {
		req.call_case = PK__REQUEST__CALL_JOB_LIST;
		req.job_list = &jl;
		return ctl_hsm_run(ctl, &req, show_job_list);
	}
	if (!o.arg) {
		return ctl_usage_error(ctl, "job %s needs a job id", argv[1]);
	}
	if (!strcmp(argv[1], "show")) {
		jg.job_id = (char *)o.arg;
		req.call_case = PK__REQUEST__CALL_JOB_GET;
		req.job_get = &jg;
		return ctl_hsm_run(ctl, &req, show_job_get);
	}
	if (!strcmp(argv[1], "wait")) {
		return job_wait(ctl, &o);
	}
	if (!strcmp(argv[1], "abort")) {
		ja.job_id = (char *)o.arg;
		req.call_case = PK__REQUEST__CALL_JOB_ABORT;
		req.job_abort = &ja;
		return ctl_hsm_run(ctl, &req, show_job_abort);
	}
	if (!strcmp(argv[1], "bandwidth")) {
		if (!o.arg2) {
			return ctl_usage_error(ctl, "job bandwidth needs a job id and BYTES/s (0: "
						    "unlimited)");
		}
		r = ctl_parse_bandwidth(ctl, o.arg2, &bw);
		if (r) {
			return r;
		}
		jb.job_id = (char *)o.arg;
		jb.bandwidth = bw;
		req.call_case = PK__REQUEST__CALL_JOB_SET_BANDWIDTH;
		req.job_set_bandwidth = &jb;
		return ctl_hsm_run(ctl, &req, show_job_bandwidth);
	}
	return ctl_usage_error(ctl, "unknown action 'job %s' (list, show, wait, abort, bandwidth)",
			       argv[1]);
}

