/*
 * hsm_merge — live and cold merge jobs of hsmd: delete a layer of a drive's
 * chain while the VM runs (or while it is down), without losing data,
 * whatever crashes along the way. See docs/MERGE.md.
 *
 * A job merges one contiguous part of a drive's chain (leaf first):
 *
 *   COMMIT         top is an internal layer: the data of top (and of any
 *                  layer between top and base) goes down into base; the
 *                  layer above top (the "child") is rebased onto base.
 *   ACTIVE_COMMIT  top is the leaf: same, then a pivot makes base the leaf.
 *   PULL           the data of base (and of the layers between base and the
 *                  leaf) goes up into the leaf, whose backing becomes base's
 *                  parent (or nothing). base is removed; top must be the leaf.
 *   COLD_COMMIT    COMMIT or ACTIVE_COMMIT of a VM that is not running,
 *                  with `qemu-img commit` on this host.
 *
 * States, each written to <state_dir>/merge/<job>.job (pk_statefile)
 * BEFORE it takes effect, so a restarted hsmd resumes every job from its
 * record:
 *
 *   PREPARING -> EXTENDING -> COMMITTING -> [READY -> PIVOTING] -> CLEANUP
 *             -> DONE | FAILED(reason)        (ABORTING -> FAILED on JobAbort)
 *
 *   EXTENDING  the volume that receives the data is grown by the SPM to
 *              hold it (qemu-img measure of the merged layers + headroom)
 *              and refreshed here.
 *   COMMITTING the block job (or qemu-img) runs; progress from BLOCK_JOB_2
 *              events and block job info; bandwidth can change.
 *   READY      active commit only: the mirror is in sync (the READY event
 *              or <mirror ready='yes'>, never cur == end).
 *   PIVOTING   the old leaf is marked ILLEGAL through the SPM, then the
 *              pivot is asked; hsmd waits until the live XML shows the new
 *              chain; if the pivot fails the old leaf is made LEGAL again.
 *   CLEANUP    metadata through the SPM: every removed layer ILLEGAL and
 *              INTERNAL (an orphan, safe to delete), the child's parent =
 *              the new parent, after an active commit base = LEAF; the VM's
 *              drive metadata names the new leaf; the removed volumes are
 *              torn down on this host. Each step is idempotent and retried
 *              a bounded number of times.
 *
 * Success is decided from the live XML chain, never from a block job that
 * disappeared. While the chain has not changed, the old chain is intact
 * and a FAILED job leaves it usable (the VM may be restarted from it).
 *
 * Rules: one unfinished job per drive (a second Merge answers CONFLICT);
 * every volume of the chain LEGAL; base below top in the same chain; the
 * metadata chain and the live chain agree — or differ exactly by a merge
 * already done in qemu, then the Merge only finishes its CLEANUP (the
 * engine flow re-runs safely).
 *
 * Ownership: struct hsm_merge hangs on hsm->merge (hsm_merge_init /
 * hsm_merge_release). Job infos are plain values.
 * Threads: every function may be called from any thread; each job runs
 * on a thread of its own. The hsm_merge_on_* callbacks only record and
 * wake (they run on libvirt's event thread).
 */
#ifndef HSM_MERGE_H
#define HSM_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"
#include "hsm/hsm.h"
#include "hsm/merge_converge.h"

/* Values equal the wire enum JobKind. */
enum hsm_merge_kind {
	HSM_MERGE_COMMIT = 1,
	HSM_MERGE_ACTIVE_COMMIT = 2,
	HSM_MERGE_PULL = 3,
	HSM_MERGE_COLD_COMMIT = 4,
};

/* Values equal the wire enum JobState. */
enum hsm_merge_state {
	HSM_MERGE_PREPARING = 1,
	HSM_MERGE_EXTENDING = 2,
	HSM_MERGE_COMMITTING = 3,
	HSM_MERGE_READY = 4,
	HSM_MERGE_PIVOTING = 5,
	HSM_MERGE_CLEANUP = 6,
	HSM_MERGE_DONE = 7,
	HSM_MERGE_FAILED = 8,
	HSM_MERGE_ABORTING = 9,
};

enum hsm_merge_direction {
	HSM_MERGE_DIR_COMMIT = 0,
	HSM_MERGE_DIR_PULL = 1,
};

/* Bandwidth limits in bytes/s (0 = unlimited). */
#define HSM_MERGE_BANDWIDTH_MIN (64u * 1024)
#define HSM_MERGE_BANDWIDTH_MAX (1ull << 40)

#define HSM_MERGE_NOTE_MAX 160
#define HSM_MERGE_WAITING_MAX 512 /* = HSM_SPM_WAIT_REASON_MAX (hsm/spm_wait.h) */

/* A Merge request. Strings are borrowed for the call; domain, image and
 * top may be NULL or "" (the drive's domain and image; the leaf). */
struct hsm_merge_request {
	const char *vm;
	const char *drive;
	const char *domain;
	const char *image;
	const char *base;
	const char *top;
	uint64_t bandwidth;
	enum hsm_merge_direction direction;
};

/* What JobGet/JobList answer and events carry. */
struct hsm_merge_job_info {
	char id[PK_UUID_BUFLEN];
	char vm[HSM_VM_NAME_MAX + 1];
	char drive[HSM_VMXML_TARGET_MAX];
	enum hsm_merge_kind kind;
	enum hsm_merge_state state;
	char domain[PK_UUID_BUFLEN];
	char image[PK_UUID_BUFLEN];
	char base[PK_UUID_BUFLEN];
	char top[PK_UUID_BUFLEN];
	uint64_t cur, end;          /* bytes done / to do */
	uint64_t bandwidth;         /* bytes/s, 0 = unlimited */
	struct pk_error error;      /* with FAILED */
	uint64_t started_ms;        /* CLOCK_REALTIME */
	uint64_t updated_ms;
	/* A capped active commit (hsm/merge_converge.h): */
	enum hsm_merge_convergence convergence;
	uint64_t guest_rate;        /* bytes/s the guest writes (0: not measured) */
	bool cap_lifted;            /* the limit was lifted for the last pass */
	char note[HSM_MERGE_NOTE_MAX]; /* for a person; "" when nothing to say */
	char waiting[HSM_MERGE_WAITING_MAX]; /* "waiting for the SPM since ...", or "" */
};

/* Settings of the merge subsystem (strings borrowed for the call). */
struct hsm_merge_config {
	const char *events_url;     /* nng pub URL; NULL: no events */
	/* Extra bytes given to the volume that receives the data of an
	 * active commit or a pull (the guest keeps writing). 0: 64 MiB. */
	uint64_t headroom;
	/* Finished jobs kept for JobGet/JobList. 0: 64. */
	unsigned keep_finished;
	/*
	 * A capped active commit that does not converge (the guest writes
	 * faster than the limit) gets its limit lifted once its backlog would
	 * take at most uncap_seconds at the limit (0: 5), unless keep_cap
	 * (setting merge_uncap_last_pass = false): then it keeps the limit and
	 * says why it does not finish. converge_window_ms: how long the backlog
	 * is watched before a verdict (0: HSM_MERGE_CONVERGE_WINDOW_MS).
	 */
	bool keep_cap;
	unsigned uncap_seconds;
	unsigned converge_window_ms;
};

/*
 * Creates the subsystem on hsm->merge: <state_dir>/merge, the event
 * publisher. Does not resume jobs yet (hsm_merge_start does).
 */
int hsm_merge_init(struct hsm *hsm, const struct hsm_merge_config *cfg, struct pk_error *err);

/*
 * Loads the job records and resumes every unfinished job. Call once hsm->virt
 * is connected (after hsm_start). A record that cannot be read is moved aside
 * (<name>.bad) and logged.
 */
int hsm_merge_start(struct hsm *hsm, struct pk_error *err);

/*
 * Stops every job thread at its next step, without changing its record
 * (a later hsmd resumes it). The libvirt callbacks stay safe to call until
 * hsm_merge_release. NULL-safe; idempotent.
 */
void hsm_merge_stop(struct hsm *hsm);

/* hsm_merge_stop, then frees the subsystem (call after hsm_virt_free, so no
 * callback runs any more). NULL-safe; safe when never initialised. */
void hsm_merge_release(struct hsm *hsm);

/* Validates, records a job in PREPARING (or CLEANUP when the merge is
 * already done in qemu) and starts it; returns at once. */
int hsm_merge_begin(struct hsm *hsm, const struct hsm_merge_request *req,
		    struct hsm_merge_job_info *ret, struct pk_error *err);

/* NOT_FOUND for an unknown job id. */
int hsm_merge_job_get(struct hsm *hsm, const char *id, struct hsm_merge_job_info *ret,
		      struct pk_error *err);

/* Every known job, unfinished first then finished, newest first. *ret: heap (free()). */
int hsm_merge_job_list(struct hsm *hsm, struct hsm_merge_job_info **ret, size_t *ret_n,
		       struct pk_error *err);

/*
 * Asks a job to stop: before the pivot point the block job is cancelled
 * and the job ends FAILED with ABORTED; in PIVOTING or CLEANUP (the chain
 * already changed) answers CONFLICT. A finished job answers its info.
 */
int hsm_merge_job_abort(struct hsm *hsm, const char *id, struct hsm_merge_job_info *ret,
			struct pk_error *err);

/* Changes the bandwidth (bytes/s, 0 or HSM_MERGE_BANDWIDTH_MIN..MAX) of a
 * job; applied at once to a running block job. */
int hsm_merge_job_set_bandwidth(struct hsm *hsm, const char *id, uint64_t bandwidth,
				struct hsm_merge_job_info *ret, struct pk_error *err);

/* The URL events are published on ("" when none). */
const char *hsm_merge_events_url(struct hsm *hsm);

/* Publishes a drive monitor wait on vm ("" waiting: it ended) on the same
 * event socket as the jobs (hsmd has one). Nothing when there is none. */
void hsm_merge_publish_vm_wait(struct hsm *hsm, const char *vm, const char *waiting);

/* True (and the job id in ret_id when not NULL) when vm's drive has an
 * unfinished merge job. */
bool hsm_merge_drive_busy(struct hsm *hsm, const char *vm, const char *drive,
			  char ret_id[PK_UUID_BUFLEN]);

/* libvirt callbacks, forwarded by hsm.c. Quick: record and wake. */
void hsm_merge_on_block_job(struct hsm *hsm, const char *vm, const char *disk,
			    enum hsm_virt_job_type type, enum hsm_virt_job_status status);
void hsm_merge_on_lifecycle(struct hsm *hsm, const char *vm, enum hsm_virt_lifecycle event);
void hsm_merge_on_reconnected(struct hsm *hsm);

const char *hsm_merge_state_name(enum hsm_merge_state state); /* "COMMITTING" */
const char *hsm_merge_kind_name(enum hsm_merge_kind kind);    /* "ACTIVE_COMMIT" */
bool hsm_merge_state_final(enum hsm_merge_state state);       /* DONE or FAILED */

#endif
