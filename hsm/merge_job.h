/*
 * hsm/merge_job.h — the inside of hsm/merge.h, shared by hsm/merge*.c only.
 *
 * A job is described by its record (every field below the "record" mark),
 * written with pk_statefile at each transition. Its chain is the drive's
 * chain, leaf first, as it was when the job was created; everything else a
 * step needs (the layers removed, the volume that receives the data, the
 * child to rebase, the chain expected afterwards) is derived from it.
 *
 * Locking: struct hsm_merge.lock guards the job list and every mutable
 * field of every job. Only the job's own thread changes state and the
 * fields of its steps; RPC threads set `abort_requested` and `bandwidth`;
 * libvirt callbacks set the ev_* fields. All of them broadcast `cond`.
 */
#ifndef HSM_MERGE_JOB_H
#define HSM_MERGE_JOB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/meta.h"
#include "hsm/hsm.h"
#include "hsm/merge.h"
#include "hsm/spm_wait.h"

#define HSM_MERGE_CHAIN_MAX 128
#define HSM_MERGE_RECORD_VERSION 1
#define HSM_MERGE_SUFFIX ".job"

struct pk_rpc_pub;

struct hsm_merge_job {
	/* ---- record ---- */
	char id[PK_UUID_BUFLEN];
	char vm[HSM_VM_NAME_MAX + 1];
	char drive[HSM_VMXML_TARGET_MAX];
	enum hsm_merge_kind kind;
	enum hsm_merge_state state;
	enum hsm_merge_state failed_in;   /* the state a FAILED job failed in */
	char domain[PK_UUID_BUFLEN];
	char image[PK_UUID_BUFLEN];
	char base[PK_UUID_BUFLEN];
	char top[PK_UUID_BUFLEN];
	size_t nchain;                    /* the chain before, leaf first */
	char chain[HSM_MERGE_CHAIN_MAX][PK_UUID_BUFLEN];
	bool active_leaf;                 /* cold: top was the leaf */
	uint64_t bandwidth;
	uint64_t cur, end;
	uint64_t started_ms, updated_ms;
	uint64_t extend_size;             /* LV size asked of the SPM (0: none yet) */
	unsigned attempts;                /* block jobs / qemu-img runs started */
	unsigned pivot_attempts;
	bool leaf_illegal;                /* old leaf marked ILLEGAL for the pivot */
	bool abort_requested;
	bool cap_lifted;                  /* bandwidth lifted for the last pass: block
					   * jobs run unlimited from then on */
	uint64_t guest_rate;              /* bytes/s the guest wrote when judged */
	struct pk_error error;

	/* ---- runtime ---- */
	struct hsm *hsm;
	pthread_t thread;
	bool thread_started;
	bool thread_done;
	int ev_status;                    /* last BLOCK_JOB_2 status, -1: none */
	bool ev_ready;                    /* READY seen since the job started */
	bool ev_stopped;                  /* the VM stopped */
	unsigned wakeups;                 /* bumped by every event */
	uint64_t published_ms;            /* last progress event */
	uint64_t published_cur;
	enum hsm_merge_convergence convergence;
	struct hsm_merge_converge conv;   /* the job thread's samples */
	uint64_t conv_bandwidth;          /* the limit the samples were taken under */
	unsigned conv_attempts;           /* ... and the block job */
	struct hsm_spm_wait spm_wait;     /* no SPM answers a step (hsm_merge_spm_result) */
	unsigned spm_backoff_ms;          /* the loop's sleep while waiting for the SPM; 0: not */
};

struct hsm_merge {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct hsm_merge_job **jobs;
	size_t njobs, cap;
	bool stopping;
	char dir[HSM_PATH_MAX];           /* <state_dir>/merge */
	char events_url[HSM_PATH_MAX];
	struct pk_rpc_pub *pub;
	pthread_mutex_t pub_lock;
	uint64_t seq;
	uint64_t headroom;
	unsigned keep_finished;
	bool keep_cap;                    /* hsm_merge_config */
	unsigned uncap_seconds;
	unsigned converge_window_ms;
};

/* ---- derived from the chain (pure) ------------------------------------------ */

/* Positions (0 = leaf) of top and base in job->chain; -1 when absent. */
int hsm_merge_job_pos(const struct hsm_merge_job *job, const char *volume);

/* The removed layers are chain[*ret_lo .. *ret_hi] (inclusive). */
void hsm_merge_job_removed(const struct hsm_merge_job *job, size_t *ret_lo, size_t *ret_hi);

/* The volume that receives the data (base, or the leaf for a pull). */
const char *hsm_merge_job_target(const struct hsm_merge_job *job);

/* The volume whose parent changes ("" when none: the top was the leaf)
 * and its new parent ("" for none). */
const char *hsm_merge_job_child(const struct hsm_merge_job *job);
const char *hsm_merge_job_new_parent(const struct hsm_merge_job *job);

/* The leaf once the merge is done. */
const char *hsm_merge_job_new_leaf(const struct hsm_merge_job *job);

/* True when ids[0..n) is the chain expected after the merge. */
bool hsm_merge_job_chain_is_after(const struct hsm_merge_job *job,
				  const char (*ids)[PK_UUID_BUFLEN],
				  size_t n);
/* True when ids[0..n) is the chain before the merge. */
bool hsm_merge_job_chain_is_before(const struct hsm_merge_job *job,
				   const char (*ids)[PK_UUID_BUFLEN],
				   size_t n);

/* ---- the live view of a drive (hsm/merge_plan.c) ------------------------------- */

struct hsm_merge_live {
	enum hsm_virt_state state;
	bool running;                   /* qemu runs: the XML is the live one */
	struct hsm_drive_id drive;      /* our metadata of the drive */
	size_t n;                       /* layers, leaf first */
	char ids[HSM_MERGE_CHAIN_MAX][PK_UUID_BUFLEN]; /* "" for a layer that is not a
						* volume of the drive's image */
	int index[HSM_MERGE_CHAIN_MAX]; /* libvirt's backingStore index */
	bool foreign;                   /* some layer is not a volume of the image */
	bool complete;                  /* libvirt reported the whole chain */
	enum hsm_vmxml_mirror mirror;
};

/*
 * Reads vm's state, XML and drive (NOT_FOUND for an unknown VM or drive).
 * For a VM that does not run only the leaf is known (n = 1).
 */
int hsm_merge_live_read(struct hsm *hsm, const char *vm, const char *drive,
			struct hsm_merge_live *ret, struct pk_error *err);

/* "vda[3]" for the layer of volume in live (INVALID_ARGUMENT if absent). */
int hsm_merge_live_ref(const struct hsm_merge_live *live, const char *drive, const char *volume,
		       char *buf, size_t size, struct pk_error *err);

/* ---- records (hsm/merge_job.c, pure) ---------------------------------------- */

/* Heap text of the record (free()). */
char *hsm_merge_record_encode(const struct hsm_merge_job *job);

/* Fills the record part of *job from text; ILLEGAL naming the line when
 * a field is missing, unknown in a known form, or malformed. */
int hsm_merge_record_decode(const char *text, struct hsm_merge_job *job, struct pk_error *err);

int hsm_merge_state_parse(const char *name, enum hsm_merge_state *ret);
int hsm_merge_kind_parse(const char *name, enum hsm_merge_kind *ret);

/* Copies the public view. */
void hsm_merge_job_info_of(const struct hsm_merge_job *job, struct hsm_merge_job_info *ret);

/* ---- the registry (hsm/merge.c) --------------------------------------------- */

struct hsm_merge *hsm_merge_of(struct hsm *hsm);

/* 0 or INVALID_ARGUMENT: 0 (no limit) or HSM_MERGE_BANDWIDTH_MIN..MAX. */
int hsm_merge_check_bandwidth(uint64_t bandwidth, struct pk_error *err);

/*
 * Adds a new job (its state set) to the registry, writes its record and
 * starts its thread. CONFLICT when its drive has an unfinished job, BUSY
 * when too many jobs run. On success the registry owns job.
 */
int hsm_merge_register(struct hsm_merge *m, struct hsm_merge_job *job, struct pk_error *err);

/* ---- a job's durable state (hsm/merge_state.c) ------------------------------ */

/* The file name of job's record in m->dir ("<id>.job"). */
void hsm_merge_record_name(const struct hsm_merge_job *job, char *buf, size_t size);

/* Writes job's record as it is now (updated_ms set). m->lock held. */
int hsm_merge_job_write_locked(struct hsm_merge *m, struct hsm_merge_job *job,
			       struct pk_error *err);

/* Publishes info as an event (when events are on); a failure is only logged:
 * events are a hint, JobGet is the truth. */
void hsm_merge_publish(struct hsm_merge *m, const struct hsm_merge_job_info *info,
		       int32_t host_id);

/*
 * Moves job to state: writes the record (then the fault point
 * "merge:<state>" fires, for crash tests), publishes an event. When the
 * record cannot be written the job stays in its state (no event, no fault
 * point) and this fails with the error of the write.
 */
int hsm_merge_job_transition(struct hsm_merge_job *job, enum hsm_merge_state state,
			     struct pk_error *err);

/*
 * What a step of a job did, for the loop of hsm/merge_run.c (a helper of a
 * step answers the same, MOVED meaning "go on"):
 *   MOVED  the job moved on (or the step is to run again at once);
 *   STOP   hsmd stops: the thread returns, the record resumes the job;
 *   RETRY  a transient failure, in err (libvirtd or the SPM away, a lock
 *          not had, a record not written): the loop runs the state again
 *          for a while, then fails the job with err;
 *   FAIL   a failure, in err, that ends the job FAILED.
 * A failure is never told by its errno: an error of a dependency that
 * happens to be EAGAIN is a failure like any other.
 */
enum hsm_merge_step {
	HSM_MERGE_STEP_MOVED,
	HSM_MERGE_STEP_STOP,
	HSM_MERGE_STEP_RETRY,
	HSM_MERGE_STEP_FAIL,
};

/* The step result of r (0 or -errno with err set): MOVED for 0, RETRY when
 * err is transient (hsm_merge_error_transient), FAIL otherwise. */
enum hsm_merge_step hsm_merge_step_of(int r, const struct pk_error *err);

/*
 * hsm_merge_job_transition for a step: MOVED, or RETRY (err set) when the
 * record cannot be written, so the loop runs the step again while the job
 * stays in its state.
 */
enum hsm_merge_step hsm_merge_job_step_to(struct hsm_merge_job *job, enum hsm_merge_state state,
					  struct pk_error *err);

/*
 * Ends the job FAILED with err (copied), remembering the state it failed
 * in. When the record cannot be written the job stays as it was and this
 * fails with the error of the write in ret_err.
 */
int hsm_merge_job_fail(struct hsm_merge_job *job, const struct pk_error *err,
		       struct pk_error *ret_err);

/*
 * The step result of an SPM call (r, err) of a step that cannot go on
 * without the SPM (EXTENDING, CLEANUP): MOVED when it answered 0; RETRY
 * when no SPM answers (hsm/spm_wait.h): the job stays in its state, its
 * info says "waiting for the SPM since ..." (an event tells it), and the
 * loop runs the state again after the wait's backoff (the step holds no
 * lock meanwhile); FAIL when that lasted settings.spm_wait_limit_s, or for
 * a refusal. Job thread only.
 */
enum hsm_merge_step hsm_merge_spm_result(struct hsm_merge_job *job, int r, struct pk_error *err);

/* While the job waits for the SPM: the loop's sleep before the next try; else 0. */
unsigned hsm_merge_spm_backoff(struct hsm_merge_job *job);

/* The record fields a step changes before it acts on them. */
enum hsm_merge_field {
	HSM_MERGE_FIELD_ATTEMPTS,
	HSM_MERGE_FIELD_PIVOT_ATTEMPTS,
	HSM_MERGE_FIELD_LEAF_ILLEGAL,
	HSM_MERGE_FIELD_EXTEND_SIZE,
	HSM_MERGE_FIELD_CAP_LIFTED,
};

/*
 * Sets field to value and writes the record, both under the lock (the
 * record and job info are read by other threads), before the step acts on
 * that field. When the record cannot be written the field keeps its old
 * value and this fails with the error of the write: the step does not act.
 */
int hsm_merge_job_record_set(struct hsm_merge_job *job, enum hsm_merge_field field,
			     uint64_t value, struct pk_error *err);

/* Updates progress (under the lock) and publishes it when it moved enough. */
void hsm_merge_job_progress(struct hsm_merge_job *job, uint64_t cur, uint64_t end);

/*
 * Sets what is known of the job's convergence (under the lock) and
 * publishes an event when the state or the cap changed; a guest_rate of 0
 * keeps the last one measured.
 */
void hsm_merge_job_convergence(struct hsm_merge_job *job, enum hsm_merge_convergence state,
			       uint64_t guest_rate);

/* The bandwidth a block job of the job runs at (read under the lock): 0
 * once the cap is lifted. */
uint64_t hsm_merge_job_bandwidth(struct hsm_merge_job *job);

/*
 * COMMITTING of an active commit (hsm/merge_progress.c): samples the running
 * block job (info, and the drive's write counter), judges whether it
 * converges under its limit, publishes that, and lifts the limit for the
 * last pass when due (recorded first). A failure to lift is logged and
 * tried again at the next sample.
 */
void hsm_merge_job_watch_converge(struct hsm_merge_job *job,
				  const struct hsm_virt_job_info *info);

/*
 * Waits up to ms for an event on the job (or a stop or abort request).
 * Returns 1 when the subsystem stops, 0 otherwise.
 */
int hsm_merge_job_wait(struct hsm_merge_job *job, unsigned ms);

/* True when hsmd is stopping (the job thread returns without a change). */
bool hsm_merge_stopping(struct hsm_merge_job *job);
bool hsm_merge_abort_requested(struct hsm_merge_job *job);

/* Sleeps ms unless stopping; 1 when stopping. */
int hsm_merge_sleep(struct hsm_merge_job *job, unsigned ms);

/* ---- steps (hsm/merge_run.c, hsm/merge_cold.c, hsm/merge_steps.c) ------------- */

/* The job thread's body: runs states until DONE/FAILED or a stop. */
void hsm_merge_job_run(struct hsm_merge_job *job);

/* Steps shared by live and cold jobs (hsm/merge_steps.c). MOVED to go on
 * (the caller moves the job to its next state). CLEANUP retries a
 * transient SPM failure a bounded number of times, then FAILs. */
enum hsm_merge_step hsm_merge_step_extend(struct hsm_merge_job *job, struct pk_error *err);
enum hsm_merge_step hsm_merge_step_cleanup(struct hsm_merge_job *job, struct pk_error *err);

/*
 * The chain in the qcow2 headers, from leaf down (hsm_image_header_chain:
 * each layer opened with its metadata format): volume ids into ids (room
 * for HSM_MERGE_CHAIN_MAX), "" for a file that is not a volume of the
 * image (never opened). ILLEGAL for a longer chain.
 */
int hsm_merge_disk_chain(struct hsm *hsm, const char *domain, const char *image,
			 const char *leaf, char (*ids)[PK_UUID_BUFLEN], size_t *ret_n,
			 struct pk_error *err);

/*
 * The old leaf's legality around a pivot (hsm/merge_run.c), live or cold.
 * The record says leaf_illegal before the SPM is asked for ILLEGAL and
 * forgets it only once the SPM made the volume LEGAL again, so a resumed
 * job restores whatever may have been marked. set_legal: MOVED, RETRY for
 * a transient SPM failure or a record not written, FAIL. restore: MOVED
 * when nothing is marked any more (or nothing was), STOP, RETRY when the
 * bounded retries ran out (the state runs again), FAIL.
 */
enum hsm_merge_step hsm_merge_leaf_set_legal(struct hsm_merge_job *job, bool legal,
					     struct pk_error *err);
enum hsm_merge_step hsm_merge_leaf_restore(struct hsm_merge_job *job, struct pk_error *err);

/*
 * A FAILED live merge whose record still says the old leaf is ILLEGAL: at
 * start its thread reconciles it with the chain (CLEANUP when the merge had
 * happened, else the leaf LEGAL again), and the drive is busy until then.
 */
bool hsm_merge_job_reconciles(const struct hsm_merge_job *job);

/* For a VM that does not run: whether the chain its definition and the
 * qcow2 headers give is the one after the merge (*ret_after). */
enum hsm_merge_step hsm_merge_stopped_chain_is_after(struct hsm_merge_job *job,
						    const struct hsm_merge_live *live,
						    bool *ret_after, struct pk_error *err);

/* Cold jobs (hsm/merge_cold.c): PREPARING, COMMITTING (qemu-img commit,
 * then the child rebased; or, for the leaf, PIVOTING next), PIVOTING (the
 * leaf only: the old leaf ILLEGAL, then the VM's definition switched to
 * the base), ABORTING. */
enum hsm_merge_step hsm_merge_cold_prepare(struct hsm_merge_job *job, struct pk_error *err);
enum hsm_merge_step hsm_merge_cold_commit(struct hsm_merge_job *job, struct pk_error *err);
enum hsm_merge_step hsm_merge_cold_pivot(struct hsm_merge_job *job, struct pk_error *err);
enum hsm_merge_step hsm_merge_cold_abort(struct hsm_merge_job *job, struct pk_error *err);

/* After DONE (hsm/merge_reduce.c): a commit's base that stays an internal
 * COW volume is reduced to its data end plus one chunk. Best effort. */
void hsm_merge_reduce_base(struct hsm_merge_job *job);

/* ---- the wire (hsm/rpc_merge.c) ---------------------------------------- */

/* Encodes an Event for info (heap buffer, free()). */
int hsm_merge_event_encode(const struct hsm_merge_job_info *info, uint64_t seq,
			   int32_t host_id, void **ret_buf, size_t *ret_len);

/* Encodes an Event for a drive monitor wait on vm ("" waiting: it ended). */
int hsm_vm_wait_event_encode(const char *vm, const char *waiting, uint64_t seq,
			     int32_t host_id, void **ret_buf, size_t *ret_len);

/* True for errors worth retrying (the peer may come back). */
bool hsm_merge_error_transient(const struct pk_error *err);

#endif
