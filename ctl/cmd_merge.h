/*
 * ctl/cmd_merge.h — what ctl/cmd_merge.c (pkctl merge, job) shares with
 * ctl/cmd_snapshot.c (pkctl snapshot delete): options and the progress
 * display of a job (starting and following it: ctl/flow.h).
 *
 * Display: a progress bar (state, percent, MiB/s, ETA) redrawn on stdout
 * when it is a terminal; plain lines (each state, every 10 %) otherwise;
 * either way a line with the job's note each time it changes ("not
 * converging: the guest writes 3.6 MiB/s, the limit is 2.0 MiB/s");
 * nothing with --json. Events come from hsmd's pub socket (JobEvents) when
 * it has one, JobGet is the fallback (every 500 ms).
 */
#ifndef CTL_CMD_MERGE_H
#define CTL_CMD_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "ctl/ctl.h"
#include "ctl/flow.h"

struct ctl_merge_opts {
	const char *vm, *drive, *domain, *image, *base, *top, *volume, *direction, *bandwidth;
	const char *arg;  /* first positional argument: a job id */
	const char *arg2; /* second: a bandwidth */
	bool wait;
	bool no_progress;
};

/* Parses argv[first..] (options and up to two positional arguments). */
int ctl_merge_opts_parse(struct ctl *ctl, int argc, char **argv, int first,
			 struct ctl_merge_opts *o);

/* "50M", "50M/s" -> bytes/s (NULL: 0, unlimited); a usage error otherwise. */
int ctl_parse_bandwidth(struct ctl *ctl, const char *s, uint64_t *ret);
/* "commit" (or NULL) / "pull". */
int ctl_parse_direction(struct ctl *ctl, const char *s, Pk__MergeDirection *ret);

/* A job's progress display, and the watch that feeds it. */
struct ctl_watch {
	struct ctl_flow_watch flow;
	struct ctl_flow_report report; /* job: the display; ctx: this */
	bool bar;       /* a progress bar on the terminal */
	bool lines;     /* plain lines */
	bool drawn;
	uint64_t t0;    /* when the job was first seen copying */
	uint64_t cur0;
	uint64_t last_draw;
	int last_state;
	int last_decile;
	char last_note[192]; /* the job's note shown last ("not converging: ...") */
};

/* The display only (w->report for a flow); end: the bar's line is closed. */
void ctl_progress_init(struct ctl_watch *w, struct ctl *ctl, bool progress);
void ctl_progress_end(struct ctl_watch *w);

/* The display and the watch: subscribes to hsmd's events (before the job starts). */
void ctl_watch_init(struct ctl_watch *w, struct ctl *ctl, bool progress);
void ctl_watch_release(struct ctl_watch *w);
/* Follows job id to DONE or FAILED; *ret_resp is the last JobGet (caller frees). */
int ctl_watch_job(struct ctl_watch *w, const char *id, Pk__Response **ret_resp,
		  struct pk_error *err);

#endif
