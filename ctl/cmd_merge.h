/*
 * ctl/cmd_merge.h — what ctl/cmd_merge.c (pkctl merge, job) shares with
 * ctl/cmd_snapshot.c (pkctl snapshot delete): options, starting a Merge and
 * following a job to its end with a progress display.
 *
 * Display: a progress bar (state, percent, MiB/s, ETA) redrawn on stdout
 * when it is a terminal; plain lines (each state, every 10 %) otherwise;
 * nothing with --json. Events come from hsmd's pub socket (JobEvents) when
 * it has one, JobGet is the fallback (every 500 ms).
 */
#ifndef CTL_CMD_MERGE_H
#define CTL_CMD_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/rpc.h"
#include "ctl/ctl.h"

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

struct ctl_watch {
	struct ctl *ctl;
	struct pk_rpc_sub *sub;
	bool bar;       /* a progress bar on the terminal */
	bool lines;     /* plain lines */
	bool drawn;
	uint64_t t0;    /* when the job was first seen copying */
	uint64_t cur0;
	uint64_t last_draw;
	int last_state;
	int last_decile;
};

/* Subscribes to hsmd's events (before the job starts, so none is missed). */
void ctl_watch_init(struct ctl_watch *w, struct ctl *ctl, bool progress);
void ctl_watch_release(struct ctl_watch *w);
/* Follows job id to DONE or FAILED; *ret_resp is the last JobGet (caller frees). */
int ctl_watch_job(struct ctl_watch *w, const char *id, Pk__Response **ret_resp,
		  struct pk_error *err);

/* Sends Merge; *ret (caller frees) holds the new job. */
int ctl_merge_start(struct ctl *ctl, const char *vm, const char *drive, const char *domain,
		    const char *image, const char *base, const char *top,
		    Pk__MergeDirection dir, uint64_t bandwidth, Pk__Response **ret,
		    struct pk_error *err);

/* A FAILED job's error as err (returns -errno). */
int ctl_merge_job_error(const Pk__JobInfo *j, struct pk_error *err);

#endif
