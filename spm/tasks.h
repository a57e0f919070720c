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
 * Running one: spm_task_run() records a mutating volume verb as a task
 * and runs it, in the caller's thread or (async) in a thread of its own,
 * which the caller does not wait for (spm_async_wait does, at shutdown).
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
	const char *description;             /* CREATE_VOLUME, at most 255 bytes kept */
	enum pk_volume_format format;        /* CREATE_VOLUME */
	uint64_t capacity;                   /* CREATE_VOLUME */
	uint64_t size;                       /* CREATE_VOLUME initial size, EXTEND/REDUCE_VOLUME new size */
	bool force, post_zero;               /* DELETE_VOLUME (force also DELETE_IMAGE) */
	const char *request;                 /* DELETE_VOLUME: the client's request id, or "" */
};

/*
 * Begins a task of spm->tasks for req and runs it: in this thread, or with
 * async in a detached thread of its own (counted for spm_async_wait).
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
