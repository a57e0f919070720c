/*
 * spm_tasks — the SPM's record of mutating operations, so an engine can
 * follow a long one (TaskGet/TaskList) and so an spmd restart can say what
 * became of the ones in flight.
 *
 * Every mutating verb runs as a task. A task record is written to
 * `<state_dir>/tasks/<id>.task` (atomically, pk_statefile) when it begins
 * and when it ends. Records found RUNNING when spmd starts belong to an
 * spmd that died; they are listed by spm_tasks_interrupted() and settled
 * by the SPM's recovery (which finishes or rolls back the storage side from
 * what the LV tags say; see spm/volume.h) with spm_task_settle().
 *
 * The task's storage effects are never decided from these records: the
 * records are this host's journal for the engine, the LV tags are the truth
 * (a new SPM on another host has no records but recovers all the same).
 *
 * Running one: spm_task_run() checks a mutating volume verb's arguments,
 * records it as a task and runs it, in the caller's thread or (async) on
 * one of the SPM's task workers (spm/taskpool.h: settings task_workers and
 * task_queue_max), which the caller does not wait for (spm_async_wait
 * does, at shutdown). A request refused by the checks, or refused BUSY
 * because the queue is full, leaves no record.
 *
 * Expiry: a finished record (DONE, FAILED, ROLLED_BACK) is removed, file
 * and all, once it is older than the keep time (setting
 * task_keep_seconds); records still waiting for recovery never expire.
 * spm_task_run and the TaskList/TaskGet verbs expire what is due.
 *
 * Thread-safe. Tasks are owned by the table; callers hold a task only
 * between begin and finish.
 */
#ifndef SPM_TASKS_H
#define SPM_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/meta.h"
#include "common/uuid.h"

enum spm_task_state {
	SPM_TASK_RUNNING = 1,
	SPM_TASK_DONE = 2,
	SPM_TASK_FAILED = 3,
	SPM_TASK_ROLLED_BACK = 4,
};

struct spm_task_info {
	char id[PK_UUID_BUFLEN];
	char verb[32];
	enum spm_task_state state;
	struct pk_error error; /* with FAILED / ROLLED_BACK */
	char domain_id[PK_UUID_BUFLEN];
	char image_id[PK_UUID_BUFLEN];
	char volume_id[PK_UUID_BUFLEN];
	uint64_t created_ms;  /* wall clock */
	uint64_t finished_ms; /* 0 while running */
	unsigned progress;    /* percent */
	uint64_t seq;         /* order of beginning on this host (records keep it) */
};

struct spm_tasks;

/* Loads the records in dir (created if missing). *ret owned by the caller. */
int spm_tasks_new(const char *dir, struct spm_tasks **ret, struct pk_error *err);
void spm_tasks_free(struct spm_tasks *tasks);

/* Starts a task (RUNNING, persisted). *ret_id receives its id. */
int spm_task_begin(struct spm_tasks *tasks, const char *verb, const char *domain_id,
		   const char *image_id, const char *volume_id, char ret_id[PK_UUID_BUFLEN],
		   struct pk_error *err);

/* Ends a task: r == 0 DONE, else FAILED with *failure (persisted). */
void spm_task_finish(struct spm_tasks *tasks, const char *id, int r,
		     const struct pk_error *failure);

/* Settles an interrupted task after recovery: state and an explanation. */
void spm_task_settle(struct spm_tasks *tasks, const char *id, enum spm_task_state state,
		     const char *explanation);

void spm_task_progress(struct spm_tasks *tasks, const char *id, unsigned percent);

int spm_tasks_get(struct spm_tasks *tasks, const char *id, struct spm_task_info *ret,
		  struct pk_error *err);

/* Copies every task, newest first (*ret heap, caller frees). */
size_t spm_tasks_list(struct spm_tasks *tasks, struct spm_task_info **ret);

#define SPM_TASK_PAGE_DEFAULT 100
#define SPM_TASK_PAGE_MAX 1000
#define SPM_TASK_TOKEN_BUFLEN 96 /* "<created_ms>.<seq>.<id>" */

/*
 * One page of the list, newest first: at most limit tasks (0: the default;
 * above SPM_TASK_PAGE_MAX: INVALID_ARGUMENT) after the task the cursor
 * `after` names ("" or NULL: from the newest). ret_next receives the
 * cursor of the next page, "" on the last. A cursor names a position, not
 * a record: a task that expired or was cleared in between leaves no gap.
 * *ret heap (caller frees, also when *ret_n is 0).
 */
int spm_tasks_page(struct spm_tasks *tasks, const char *after, size_t limit,
		   struct spm_task_info **ret, size_t *ret_n, char ret_next[SPM_TASK_TOKEN_BUFLEN],
		   struct pk_error *err);

#define SPM_TASK_KEEP_DEFAULT_MS (3600u * 1000u)

/* How long a finished task is kept (default SPM_TASK_KEEP_DEFAULT_MS). */
void spm_tasks_keep(struct spm_tasks *tasks, uint64_t keep_ms);
/*
 * Removes the finished tasks whose end is at least the keep time before
 * now_ms (wall clock ms, as finished_ms; callers pass pk_clock_realtime_ms(),
 * tests any instant). Returns how many went.
 */
size_t spm_tasks_expire(struct spm_tasks *tasks, uint64_t now_ms);

/* Tasks found RUNNING at load and not settled yet (*ret heap, caller frees). */
size_t spm_tasks_interrupted(struct spm_tasks *tasks, struct spm_task_info **ret);

/* Forgets a finished task (CONFLICT while it runs, NOT_FOUND if unknown). */
int spm_tasks_clear(struct spm_tasks *tasks, const char *id, struct pk_error *err);

const char *spm_task_state_name(enum spm_task_state state);

/*
 * The record of a task as spm_tasks_new reads it back from its directory
 * (`key=value` lines; unknown keys and malformed numbers are skipped), for
 * the tests and the fuzz target (tests/fuzz/fuzz_task_record.c). parse
 * modifies text and fails with -EINVAL without a valid id and state;
 * encode returns heap text (free()).
 */
int spm_task_record_parse(char *text, struct spm_task_info *ret);
char *spm_task_record_encode(const struct spm_task_info *t);

/* ---- running a verb as a task -------------------------------------------- */

struct spm;
struct spm_volume;

enum spm_task_verb {
	SPM_TASK_CREATE_VOLUME,
	SPM_TASK_DELETE_VOLUME,
	SPM_TASK_EXTEND_VOLUME,
	SPM_TASK_DELETE_IMAGE,
	SPM_TASK_REDUCE_VOLUME,
};

/*
 * What a task runs. Strings are borrowed for the call (NULL reads as "");
 * spm_task_run copies them, so an asynchronous task owns its arguments.
 * An id longer than a UUID is kept as a prefix ending in '?', for the
 * message the volume functions give when they refuse it.
 */
struct spm_task_request {
	enum spm_task_verb verb;
	const char *domain, *image, *volume; /* volume: none for DELETE_IMAGE */
	const char *parent;                  /* CREATE_VOLUME */
	const char *description;             /* CREATE_VOLUME, at most PK_META_DESC_MAX bytes */
	enum pk_volume_format format;        /* CREATE_VOLUME */
	uint64_t capacity;                   /* CREATE_VOLUME */
	uint64_t size;                       /* CREATE_VOLUME initial size, EXTEND/REDUCE_VOLUME new size */
	bool force, post_zero;               /* DELETE_VOLUME (force also DELETE_IMAGE) */
	const char *request;                 /* DELETE_VOLUME: the client's request id, or "" */
};

/*
 * What spm_task_run checks before it records anything: ids well formed,
 * sizes in range, the format, the description's length (whole, before any
 * copy), and (spm not NULL) that domain is the one this spmd serves.
 * INVALID_ARGUMENT or NOT_FOUND, naming the field and the limit.
 */
int spm_task_request_check(struct spm *spm, const struct spm_task_request *req,
			   struct pk_error *err);

/*
 * Checks req (above) and that the volumes it names (the one to extend,
 * reduce or delete, a new volume's parent) exist in the SPM's view of the
 * domain (NOT_FOUND), begins a task of spm->tasks for it and runs it: in
 * this thread, or with async on the task pool (BUSY, nothing recorded,
 * when its queue is full).
 * Fills *ret with the task's record: finished when synchronous, RUNNING
 * when async. ret_vol (may be NULL) receives the volume of a synchronous
 * create or extend.
 *
 * Synchronous: returns the verb's own result (and error); the task record
 * says the same. Async: returns 0 once the task runs; its outcome is in
 * the record (TaskGet).
 */
int spm_task_run(struct spm *spm, const struct spm_task_request *req, bool async,
		 struct spm_volume *ret_vol, struct spm_task_info *ret, struct pk_error *err);

#endif
