/*
 * ctl/flow.h — pkctl's engine flows, free of argv and of output: each takes
 * a struct of options, talks to hsmd and the SPM through struct ctl
 * (ctl_call), reports progress through a struct ctl_flow_report, and
 * returns 0 or -errno with err filled (callers branch on err->code). The
 * commands (ctl/cmd_*.c) parse argv, print, and map the result to an exit
 * status.
 *
 *   ctl/flow_job.c              start a Merge, follow a job to its end
 *   ctl/flow_snapshot_create.c  a live snapshot of a VM's drives
 *   ctl/flow_snapshot_delete.c  delete a snapshot volume (merge, then SPM
 *                               DeleteVolume)
 *
 * Threads: a flow runs on its caller's thread and calls the report's
 * callbacks there; struct ctl is not shared between threads.
 */
#ifndef CTL_FLOW_H
#define CTL_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/rpc.h"
#include "common/uuid.h"
#include "ctl/ctl.h"

/* What a flow tells while it runs; each callback may be NULL. */
struct ctl_flow_report {
	/* Every state of the followed job seen (events, then the JobGet fallback). */
	void (*job)(void *ctx, const Pk__JobInfo *job);
	/* A step that failed without failing the flow (a person should know). */
	void (*warning)(void *ctx, const char *message);
	void *ctx;
};

/* ---- jobs (ctl/flow_job.c) ------------------------------------------------------------ */

struct ctl_flow_watch {
	struct ctl *ctl;
	struct pk_rpc_sub *sub; /* hsmd's events; NULL: JobGet polling only */
	const struct ctl_flow_report *report;
};

/*
 * Subscribes to hsmd's job events (JobEvents). Call it before the job
 * starts, so no early event is missed; without events the watch polls
 * JobGet. report may be NULL.
 */
void ctl_flow_watch_init(struct ctl_flow_watch *w, struct ctl *ctl,
			 const struct ctl_flow_report *report);
void ctl_flow_watch_release(struct ctl_flow_watch *w);
/* Follows job id to DONE or FAILED; *ret_resp is the last JobGet (caller frees). */
int ctl_flow_watch_job(struct ctl_flow_watch *w, const char *id, Pk__Response **ret_resp,
		       struct pk_error *err);

/* Sends Merge; *ret (caller frees) holds the new job. */
int ctl_merge_start(struct ctl *ctl, const char *vm, const char *drive, const char *domain,
		    const char *image, const char *base, const char *top,
		    Pk__MergeDirection dir, uint64_t bandwidth, Pk__Response **ret,
		    struct pk_error *err);

/* A FAILED job's error as err (returns -errno). */
int ctl_merge_job_error(const Pk__JobInfo *j, struct pk_error *err);

/* ---- snapshot delete (ctl/flow_snapshot_delete.c) --------------------------------------- */

struct ctl_snapshot_delete_opts {
	const char *vm;
	const char *volume;
	Pk__MergeDirection direction; /* when direction_set: pull asked for */
	bool direction_set;
	uint64_t bandwidth; /* bytes/s, 0: unlimited */
};

/* What was done; strings and responses owned by it (ctl_snapshot_delete_result_release). */
struct ctl_snapshot_delete_result {
	char volume[PK_UUID_BUFLEN];
	char drive[64];
	/* "active commit", "commit", "pull", "already merged", "cold ...", "already deleted" */
	const char *how;
	bool already_deleted; /* another run (or an earlier one) deleted it: nothing left to do */
	const Pk__JobInfo *job;                      /* the finished job; NULL: none ran */
	const Pk__GetVolumeChainResponse *chain;     /* the drive's chain afterwards */
	uint64_t elapsed_ms;
	Pk__Response *job_resp, *chain_resp;
};

/*
 * Deletes a snapshot volume of a VM (see the flow's file for the steps).
 * Safe to re-run after any failure, and after success: a volume that an
 * earlier or concurrent run deleted answers success with already_deleted
 * (the rule that tells it from an unknown id is in the flow's file).
 * Refusals change nothing: INVALID_ARGUMENT (nothing to merge it with, the
 * leaf pulled, ...), NOT_FOUND (an id no drive's image holds and no merge
 * job removed), ILLEGAL (an orphan still used or not merged by poolkeeper
 * with no merge job running on its drive, a chain not as expected after
 * the merge), CONFLICT (another job on the drive).
 */
int ctl_flow_snapshot_delete(struct ctl *ctl, const struct ctl_snapshot_delete_opts *o,
			     const struct ctl_flow_report *report,
			     struct ctl_snapshot_delete_result *ret, struct pk_error *err);
void ctl_snapshot_delete_result_release(struct ctl_snapshot_delete_result *res);

/* ---- snapshot create (ctl/flow_snapshot_create.c) --------------------------------------- */

#define CTL_SNAPSHOT_DRIVES_MAX 64

struct ctl_snapshot_create_opts {
	const char *vm;
	const char *drives; /* comma-separated targets; NULL: every drive */
	bool quiesce;
	/* LV size the new leaves start with (they grow as the guest writes,
	 * docs/THIN.md); 0: the SPM's default for a COW volume. */
	uint64_t leaf_size;
};

struct ctl_snapshot_item {
	const Pk__DriveInfo *drive; /* in the result's vm_resp */
	const char *old_leaf;
	char new_id[PK_UUID_BUFLEN];
	bool create_tried;
	bool prepared;
};

/* Owned responses and texts: ctl_snapshot_create_result_release. */
struct ctl_snapshot_create_result {
	struct ctl_snapshot_item items[CTL_SNAPSHOT_DRIVES_MAX];
	size_t n;                /* 0: the VM has no (selected) drive; nothing done */
	const Pk__VmInfo *vm;    /* the VM after the snapshot (VmSnapshot's answer) */
	char warnings[PK_ERROR_MSG_MAX]; /* " ...;" per old leaf left LEAF in metadata */
	Pk__Response *vm_resp, *snap_resp;
};

/*
 * Takes a live snapshot of the VM's drives (see the flow's file for the
 * steps and the undo). On failure the VM keeps its old leaves and err says
 * what could not be undone; NOT_FOUND names a drive the VM lacks.
 */
int ctl_flow_snapshot_create(struct ctl *ctl, const struct ctl_snapshot_create_opts *o,
			     const struct ctl_flow_report *report,
			     struct ctl_snapshot_create_result *ret, struct pk_error *err);
void ctl_snapshot_create_result_release(struct ctl_snapshot_create_result *res);

#endif
