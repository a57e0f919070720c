#include "spm/tasks.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/statefile.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "spm/requests.h"
#include "spm/spm.h"
#include "spm/taskpool.h"
#include "spm/volume.h"

struct task {
	struct spm_task_info info;
	bool interrupted; /* found RUNNING at load, not settled */
};

struct spm_tasks {
	pthread_mutex_t mutex;
	char *dir;
	uint64_t keep_ms; /* a finished task's record is kept this long */
	struct task *v;
	size_t n, cap;
	uint64_t next_seq; /* above every record's seq */
};

static const char *const state_names[] = { "?", "RUNNING", "DONE", "FAILED", "ROLLED_BACK" };

const char *spm_task_state_name(enum spm_task_state state)
{
	if (state < SPM_TASK_RUNNING || state > SPM_TASK_ROLLED_BACK) {
		return "?";
	}
	return state_names[state];
}

/* Record format: one `key=value` line each; the message is the last line,
 * its line breaks written as spaces so that it cannot add fields. */
char *spm_task_record_encode(const struct spm_task_info *t)
{
	char msg[sizeof(t->error.message)];

	snprintf(msg, sizeof(msg), "%s", t->error.message);
	for (char *p = msg; *p; p++) {
		if (*p == '\n' || *p == '\r') {
			*p = ' ';
		}
	}
	return pk_xasprintf("id=%s\nverb=%s\nstate=%s\ndomain=%s\nimage=%s\nvolume=%s\n"
			    "created=%" PRIu64 "\nfinished=%" PRIu64 "\nprogress=%u\n"
			    "seq=%" PRIu64 "\nerror_code=%s\nerror_message=%s\n",
			    t->id, t->verb, spm_task_state_name(t->state), t->domain_id,
			    t->image_id, t->volume_id, t->created_ms, t->finished_ms, t->progress,
			    t->seq, pk_errc_name(t->error.code), msg);
}

static void copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

int spm_task_record_parse(char *text, struct spm_task_info *t)
{
	char *save = NULL;

	memset(t, 0, sizeof(*t));
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		const char *v;
		if (!eq) {
			continue;
		}
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(line, "id")) {
			copy_field(t->id, sizeof(t->id), v);
		} else if (!strcmp(line, "verb")) {
			copy_field(t->verb, sizeof(t->verb), v);
		} else if (!strcmp(line, "state")) {
			for (int s = SPM_TASK_RUNNING; s <= SPM_TASK_ROLLED_BACK; s++) {
				if (!strcmp(v, state_names[s])) {
					t->state = (enum spm_task_state)s;
				}
			}
		} else if (!strcmp(line, "domain")) {
			copy_field(t->domain_id, sizeof(t->domain_id), v);
		} else if (!strcmp(line, "image")) {
			copy_field(t->image_id, sizeof(t->image_id), v);
		} else if (!strcmp(line, "volume")) {
			copy_field(t->volume_id, sizeof(t->volume_id), v);
		} else if (!strcmp(line, "created")) {
			(void)pk_parse_u64(v, &t->created_ms);
		} else if (!strcmp(line, "seq")) {
			(void)pk_parse_u64(v, &t->seq);
		} else if (!strcmp(line, "finished")) {
			(void)pk_parse_u64(v, &t->finished_ms);
		} else if (!strcmp(line, "progress")) {
			uint64_t p = 0;

			if (pk_parse_u64(v, &p) == 0 && p <= UINT_MAX) {
				t->progress = (unsigned)p;
			}
		} else if (!strcmp(line, "error_code")) {
			enum pk_errc c;
			if (pk_errc_from_name(v, &c) == 0) {
				t->error.code = c;
			}
		} else if (!strcmp(line, "error_message")) {
			copy_field(t->error.message, sizeof(t->error.message), v);
		}
	}
	return pk_uuid_valid(t->id) && t->state ? 0 : -EINVAL;
}

static void task_persist(struct spm_tasks *tasks, const struct spm_task_info *t)
{
	char name[64];
	char *text = spm_task_record_encode(t);
	struct pk_error err;

	snprintf(name, sizeof(name), "%s.task", t->id);
	if (pk_statefile_write(tasks->dir, name, text, strlen(text), &err) < 0) {
		/* The operation itself goes on; only the engine's view is affected. */
		pk_log_error("cannot write task record task='%s': %s", t->id, err.message);
	}
	free(text);
}

static struct task *tasks_find(struct spm_tasks *tasks, const char *id)
{
	for (size_t i = 0; i < tasks->n; i++) {
		if (!strcmp(tasks->v[i].info.id, id)) {
			return &tasks->v[i];
		}
	}
	return NULL;
}

static struct task *tasks_append(struct spm_tasks *tasks)
{
	tasks->v = pk_xgrow(tasks->v, &tasks->cap, tasks->n + 1, sizeof(*tasks->v));
	memset(&tasks->v[tasks->n], 0, sizeof(tasks->v[0]));
	return &tasks->v[tasks->n++];
}

int spm_tasks_new(const char *dir, struct spm_tasks **ret, struct pk_error *err)
{
	struct spm_tasks *tasks;
	char **names = NULL;
	size_t n = 0;
	int r;

	r = pk_statefile_mkdir(dir, err);
	if (r < 0) {
		return r;
	}
	r = pk_statefile_list(dir, ".task", &names, &n, err);
	if (r < 0) {
		return r;
	}
	tasks = pk_xcalloc(1, sizeof(*tasks));
	pthread_mutex_init(&tasks->mutex, NULL);
	tasks->dir = pk_xstrdup(dir);
	tasks->keep_ms = SPM_TASK_KEEP_DEFAULT_MS;
	for (size_t i = 0; i < n; i++) {
		void *data = NULL;
		struct spm_task_info info;
		struct pk_error rerr;
		if (pk_statefile_read(dir, names[i], &data, NULL, &rerr) < 0) {
			pk_log_warn("skipping task record file='%s': %s", names[i], rerr.message);
			continue;
		}
		if (spm_task_record_parse(data, &info) < 0) {
			pk_log_warn("skipping unreadable task record file='%s/%s'", dir, names[i]);
		} else {
			struct task *t = tasks_append(tasks);
			t->info = info;
			t->interrupted = info.state == SPM_TASK_RUNNING;
			if (info.seq >= tasks->next_seq) {
				tasks->next_seq = info.seq + 1;
			}
		}
		free(data);
	}
	pk_strv_free(names);
	*ret = tasks;
	return 0;
}

void spm_tasks_free(struct spm_tasks *tasks)
{
	if (!tasks) {
		return;
	}
	pthread_mutex_destroy(&tasks->mutex);
	free(tasks->v);
	free(tasks->dir);
	free(tasks);
}

int spm_task_begin(struct spm_tasks *tasks, const char *verb, const char *domain_id,
		   const char *image_id, const char *volume_id, char ret_id[PK_UUID_BUFLEN],
		   struct pk_error *err)
{
	struct spm_task_info info = { 0 };

	(void)err;
	pk_uuid_generate(info.id);
	copy_field(info.verb, sizeof(info.verb), verb);
	copy_field(info.domain_id, sizeof(info.domain_id), domain_id ? domain_id : "");
	copy_field(info.image_id, sizeof(info.image_id), image_id ? image_id : "");
	copy_field(info.volume_id, sizeof(info.volume_id), volume_id ? volume_id : "");
	info.state = SPM_TASK_RUNNING;
	info.created_ms = pk_clock_realtime_ms();
	pthread_mutex_lock(&tasks->mutex);
	info.seq = tasks->next_seq++;
	tasks_append(tasks)->info = info;
	task_persist(tasks, &info);
	pthread_mutex_unlock(&tasks->mutex);
	memcpy(ret_id, info.id, PK_UUID_BUFLEN);
	return 0;
}

static void task_end(struct spm_tasks *tasks, const char *id, enum spm_task_state state,
		     const struct pk_error *failure, const char *explanation)
{
	struct task *t;

	pthread_mutex_lock(&tasks->mutex);
	t = tasks_find(tasks, id);
	if (t) {
		t->info.state = state;
		t->info.finished_ms = pk_clock_realtime_ms();
		t->interrupted = false;
		if (state == SPM_TASK_DONE) {
			t->info.progress = 100;
		}
		if (failure) {
			t->info.error = *failure;
		} else if (explanation) {
			t->info.error.code = state == SPM_TASK_DONE ? PK_OK : PK_E_ABORTED;
			copy_field(t->info.error.message, sizeof(t->info.error.message), explanation);
		}
		task_persist(tasks, &t->info);
	}
	pthread_mutex_unlock(&tasks->mutex);
}

void spm_task_finish(struct spm_tasks *tasks, const char *id, int r,
		     const struct pk_error *failure)
{
	task_end(tasks, id, r == 0 ? SPM_TASK_DONE : SPM_TASK_FAILED, r == 0 ? NULL : failure,
		 NULL);
}

void spm_task_settle(struct spm_tasks *tasks, const char *id, enum spm_task_state state,
		     const char *explanation)
{
	task_end(tasks, id, state, NULL, explanation);
}

void spm_task_progress(struct spm_tasks *tasks, const char *id, unsigned percent)
{
	struct task *t;

	pthread_mutex_lock(&tasks->mutex);
	t = tasks_find(tasks, id);
	if (t) {
		t->info.progress = percent > 100 ? 100 : percent;
	}
	pthread_mutex_unlock(&tasks->mutex);
}

int spm_tasks_get(struct spm_tasks *tasks, const char *id, struct spm_task_info *ret,
		  struct pk_error *err)
{
	struct task *t;
	int r = 0;

	pthread_mutex_lock(&tasks->mutex);
	t = tasks_find(tasks, id);
	if (t) {
		*ret = t->info;
	} else {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				 "no task '%s' on this spmd (cleared, or run by another host's spmd)",
				 id);
	}
	pthread_mutex_unlock(&tasks->mutex);
	return r;
}

/*
 * Newest first: created descending, then the order of beginning (tasks of
 * one millisecond), then id (records written before seq existed): a total
 * order a cursor can name.
 */
static int info_cmp_newest(const void *a, const void *b)
{
	const struct spm_task_info *x = a, *y = b;

	if (x->created_ms != y->created_ms) {
		return x->created_ms > y->created_ms ? -1 : 1;
	}
	if (x->seq != y->seq) {
		return x->seq > y->seq ? -1 : 1;
	}
	return -strcmp(x->id, y->id);
}

static size_t tasks_copy(struct spm_tasks *tasks, struct spm_task_info **ret, bool only_interrupted)
{
	size_t n = 0;

	pthread_mutex_lock(&tasks->mutex);
	*ret = pk_xcalloc(tasks->n + 1, sizeof(**ret));
	for (size_t i = tasks->n; i > 0; i--) {
		if (!only_interrupted || tasks->v[i - 1].interrupted) {
			(*ret)[n++] = tasks->v[i - 1].info;
		}
	}
	pthread_mutex_unlock(&tasks->mutex);
	/* Records load in directory order: sort, so "newest first" holds after a restart. */
	qsort(*ret, n, sizeof(**ret), info_cmp_newest);
	return n;
}

size_t spm_tasks_list(struct spm_tasks *tasks, struct spm_task_info **ret)
{
	return tasks_copy(tasks, ret, false);
}

size_t spm_tasks_interrupted(struct spm_tasks *tasks, struct spm_task_info **ret)
{
	return tasks_copy(tasks, ret, true);
}

/* Forgets t, record file and all (under the mutex). */
static int task_remove(struct spm_tasks *tasks, struct task *t, struct pk_error *err)
{
	char name[64];
	int r;

	snprintf(name, sizeof(name), "%s.task", t->info.id);
	r = pk_statefile_remove(tasks->dir, name, err);
	if (r == 0) {
		size_t i = (size_t)(t - tasks->v);
		memmove(&tasks->v[i], &tasks->v[i + 1], (tasks->n - i - 1) * sizeof(*t));
		tasks->n--;
	}
	return r;
}

void spm_tasks_keep(struct spm_tasks *tasks, uint64_t keep_ms)
{
	pthread_mutex_lock(&tasks->mutex);
	tasks->keep_ms = keep_ms;
	pthread_mutex_unlock(&tasks->mutex);
}

static bool task_expired(const struct task *t, uint64_t now_ms, uint64_t keep_ms)
{
	/* Interrupted records wait for recovery to settle them, whatever their age. */
	return t->info.state != SPM_TASK_RUNNING && !t->interrupted &&
	       t->info.finished_ms <= now_ms && now_ms - t->info.finished_ms >= keep_ms;
}

size_t spm_tasks_expire(struct spm_tasks *tasks, uint64_t now_ms)
{
	size_t removed = 0;

	pthread_mutex_lock(&tasks->mutex);
	for (size_t i = 0; i < tasks->n;) {
		struct task *t = &tasks->v[i];
		struct pk_error err;

		if (!task_expired(t, now_ms, tasks->keep_ms)) {
			i++;
			continue;
		}
		pk_log_debug("task expired task='%s' verb='%s'", t->info.id, t->info.verb);
		if (task_remove(tasks, t, &err) < 0) {
			/* Kept in memory too, so the two never disagree; tried again next time. */
			pk_log_warn("cannot remove expired task record task='%s': %s", t->info.id,
				    err.message);
			i++;
			continue;
		}
		removed++;
	}
	pthread_mutex_unlock(&tasks->mutex);
	return removed;
}

/* "<created_ms>.<seq>.<id>", as spm_tasks_page writes it. */
static int token_parse(const char *token, struct spm_task_info *ret)
{
	char buf[SPM_TASK_TOKEN_BUFLEN];
	char *seq, *id;

	if (strlen(token) >= sizeof(buf)) {
		return -EINVAL;
	}
	memcpy(buf, token, strlen(token) + 1);
	seq = strchr(buf, '.');
	id = seq ? strchr(seq + 1, '.') : NULL;
	if (!id) {
		return -EINVAL;
	}
	*seq++ = '\0';
	*id++ = '\0';
	if (pk_parse_u64(buf, &ret->created_ms) < 0 || pk_parse_u64(seq, &ret->seq) < 0 ||
	    !pk_uuid_valid(id)) {
		return -EINVAL;
	}
	copy_field(ret->id, sizeof(ret->id), id);
	return 0;
}

int spm_tasks_page(struct spm_tasks *tasks, const char *after, size_t limit,
		   struct spm_task_info **ret, size_t *ret_n, char ret_next[SPM_TASK_TOKEN_BUFLEN],
		   struct pk_error *err)
{
	struct spm_task_info *all = NULL, cursor = { 0 };
	size_t n, start = 0, count;

	ret_next[0] = '\0';
	if (after && *after && token_parse(after, &cursor) < 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "page_token '%.40s' is not one a TaskList answer gave "
				    "(next_page_token)", after);
	}
	if (limit == 0) {
		limit = SPM_TASK_PAGE_DEFAULT;
	}
	if (limit > SPM_TASK_PAGE_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "limit %zu is above the largest page of %d tasks", limit,
				    SPM_TASK_PAGE_MAX);
	}
	n = spm_tasks_list(tasks, &all);
	if (after && *after) {
		/* The first task after the cursor: one expired or cleared meanwhile is no gap. */
		while (start < n && info_cmp_newest(&all[start], &cursor) <= 0) {
			start++;
		}
	}
	count = n - start < limit ? n - start : limit;
	if (start + count < n) {
		const struct spm_task_info *last = &all[start + count - 1];

		snprintf(ret_next, SPM_TASK_TOKEN_BUFLEN, "%" PRIu64 ".%" PRIu64 ".%s",
			 last->created_ms, last->seq, last->id);
	}
	memmove(all, all + start, count * sizeof(*all));
	*ret = all;
	*ret_n = count;
	return 0;
}

int spm_tasks_clear(struct spm_tasks *tasks, const char *id, struct pk_error *err)
{
	struct task *t;
	int r = 0;

	pthread_mutex_lock(&tasks->mutex);
	t = tasks_find(tasks, id);
	if (!t) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "no task '%s' on this spmd", id);
	} else if (t->info.state == SPM_TASK_RUNNING) {
		r = pk_error_set(err, PK_E_CONFLICT, 0, /* errno from the code: no BUSY retry */
				 "task '%s' (%s) is still running; clear it when it has ended", id,
				 t->info.verb);
	} else {
		r = task_remove(tasks, t, err);
	}
	pthread_mutex_unlock(&tasks->mutex);
	return r;
}

/* ---- running a verb as a task -------------------------------------------- */

static const char *const verb_names[] = {
	[SPM_TASK_CREATE_VOLUME] = "create_volume",
	[SPM_TASK_DELETE_VOLUME] = "delete_volume",
	[SPM_TASK_EXTEND_VOLUME] = "extend_volume",
	[SPM_TASK_DELETE_IMAGE] = "delete_image",
	[SPM_TASK_REDUCE_VOLUME] = "reduce_volume",
};

/* A task's arguments, copied so an asynchronous task owns them. */
struct job {
	struct spm *spm;
	enum spm_task_verb verb;
	char task_id[PK_UUID_BUFLEN];
	char domain[PK_UUID_BUFLEN];
	char image[PK_UUID_BUFLEN];
	char volume[PK_UUID_BUFLEN];
	char parent[PK_UUID_BUFLEN];
	char request[PK_UUID_BUFLEN];
	char description[PK_META_DESC_MAX + 1]; /* checked to fit before it is copied */
	enum pk_volume_format format;
	uint64_t capacity, size;
	bool force, post_zero;
};

static void copy_id(char *dst, const char *src)
{
	/* Anything longer than an id is invalid anyway; keep a prefix for the message. */
	snprintf(dst, PK_UUID_BUFLEN, "%s", src ? src : "");
	if (src && strlen(src) > PK_UUID_STRLEN) {
		dst[PK_UUID_STRLEN - 1] = '?';
	}
}

static struct job *job_new(struct spm *spm, const struct spm_task_request *req)
{
	struct job *j = pk_xcalloc(1, sizeof(*j));

	j->spm = spm;
	j->verb = req->verb;
	copy_id(j->domain, req->domain);
	copy_id(j->image, req->image);
	copy_id(j->volume, req->volume);
	copy_id(j->parent, req->parent);
	copy_id(j->request, req->request);
	snprintf(j->description, sizeof(j->description), "%s",
		 req->description ? req->description : "");
	j->format = req->format;
	j->capacity = req->capacity;
	j->size = req->size;
	j->force = req->force;
	j->post_zero = req->post_zero;
	return j;
}

static int job_run(struct job *j, struct spm_volume *vol, struct pk_error *err)
{
	struct spm_volume_create c;

	switch (j->verb) {
	case SPM_TASK_CREATE_VOLUME:
		c.domain = j->domain;
		c.image = j->image;
		c.volume = j->volume;
		c.parent = j->parent;
		c.format = j->format;
		c.capacity = j->capacity;
		c.initial_size = j->size;
		c.description = j->description;
		return spm_volume_create(j->spm, &c, vol, err);
	case SPM_TASK_DELETE_VOLUME:
		return spm_volume_delete(j->spm, j->domain, j->image, j->volume, j->force,
					 j->post_zero, j->request, err);
	case SPM_TASK_EXTEND_VOLUME:
		return spm_volume_extend(j->spm, j->domain, j->image, j->volume, j->size, vol, err);
	case SPM_TASK_DELETE_IMAGE:
		return spm_image_delete(j->spm, j->domain, j->image, j->force, err);
	case SPM_TASK_REDUCE_VOLUME:
		return spm_volume_reduce(j->spm, j->domain, j->image, j->volume, j->size, vol, err);
	}
	return -EINVAL;
}

static void job_work(void *arg)
{
	struct job *j = arg;
	struct spm *spm = j->spm;
	struct pk_error err = { PK_OK, "" };
	int r = job_run(j, NULL, &err);

	if (r < 0) {
		pk_log_info("task failed task='%s' verb='%s' volume='%s': %s", j->task_id,
			    verb_names[j->verb], j->volume, err.message);
	}
	spm_task_finish(spm->tasks, j->task_id, r, &err);
	free(j);
}

void spm_async_wait(struct spm *spm)
{
	spm_taskpool_wait_idle(spm->pool);
}

/* A UUID argument: its name for the message, and whether "" means "none". */
static int id_check(const char *what, const char *id, bool optional, struct pk_error *err)
{
	if (optional && (!id || !*id)) {
		return 0;
	}
	return pk_uuid_check(what, id ? id : "", err);
}

static int size_check(const char *what, uint64_t size, bool zero_ok, struct pk_error *err)
{
	/* The volume functions check it again under the lock; here it is only refused early. */
	if ((!zero_ok && size == 0) || size % 512 != 0 || size > (uint64_t)INT64_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s %" PRIu64 " is not a %s multiple of 512 bytes below 8 EiB",
				    what, size, zero_ok ? "" : "positive");
	}
	return 0;
}

int spm_task_request_check(struct spm *spm, const struct spm_task_request *req,
			   struct pk_error *err)
{
	bool has_volume = req->verb != SPM_TASK_DELETE_IMAGE;
	int r = pk_uuid_check_ids(req->domain ? req->domain : "", req->image ? req->image : "",
				  NULL, err);

	if (r == 0 && has_volume) {
		r = id_check("volume_id", req->volume, false, err);
	}
	if (r < 0) {
		return r;
	}
	switch (req->verb) {
	case SPM_TASK_CREATE_VOLUME: {
		char escaped[PK_META_DESC_MAX + 1];
		size_t len = req->description ? strlen(req->description) : 0;

		r = id_check("parent_id", req->parent, true, err);
		if (r == 0 && req->parent && !strcmp(req->parent, req->volume)) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "volume '%s' cannot be its own parent", req->volume);
		}
		if (r == 0 && req->format != PK_VOLUME_RAW && req->format != PK_VOLUME_COW) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "format must be RAW or COW");
		}
		if (r == 0 && req->capacity) {
			r = size_check("capacity", req->capacity, false, err);
		}
		if (r == 0) {
			r = size_check("initial size", req->size, true, err);
		}
		/* Measured whole, before anything would cut it to a buffer. */
		if (r == 0 && len > PK_META_DESC_MAX) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
					 "description is %zu bytes, longer than the limit of %d",
					 len, PK_META_DESC_MAX);
		}
		if (r == 0 && len) {
			r = pk_meta_desc_escape(req->description, escaped, sizeof(escaped), err);
		}
		break;
	}
	case SPM_TASK_DELETE_VOLUME:
		r = id_check("request_id", req->request, true, err);
		break;
	case SPM_TASK_EXTEND_VOLUME:
	case SPM_TASK_REDUCE_VOLUME:
		r = size_check("new size", req->size, false, err);
		break;
	case SPM_TASK_DELETE_IMAGE:
		break;
	default:
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "unknown task verb %d",
				 (int)req->verb);
	}
	if (r == 0 && spm) {
		/* Known without a lock: the domain this spmd serves. */
		r = spm_domain_check(spm, req->domain, err);
	}
	return r;
}

/*
 * The volumes req names must exist: known from the SPM's view of the
 * domain without any lock, so only a definite "no such volume" (or one of
 * another image) is answered here; anything else (the view cannot be
 * read) is left to the task, which checks again under the lock.
 */
static int existence_check(struct spm *spm, const struct spm_task_request *req,
			   struct pk_error *err)
{
	const char *volume = NULL;
	struct spm_volume v;
	struct pk_error lerr;

	switch (req->verb) {
	case SPM_TASK_CREATE_VOLUME:
		volume = req->parent && *req->parent ? req->parent : NULL;
		break;
	case SPM_TASK_EXTEND_VOLUME:
	case SPM_TASK_REDUCE_VOLUME:
		volume = req->volume;
		break;
	case SPM_TASK_DELETE_VOLUME:
		/* A repeat of a deletion done here is answered done by the task (spm/requests.h). */
		if (!spm_requests_did_delete(spm->requests, req->request, req->volume)) {
			volume = req->volume;
		}
		break;
	case SPM_TASK_DELETE_IMAGE:
		break;
	}
	if (!volume || spm_volume_info(spm, req->domain, req->image, volume, &v, &lerr) == 0) {
		return 0;
	}
	if (lerr.code == PK_E_NOT_FOUND || lerr.code == PK_E_INVALID_ARGUMENT) {
		if (err) {
			*err = lerr;
		}
		return -pk_errc_errno(lerr.code);
	}
	return 0;
}

int spm_task_run(struct spm *spm, const struct spm_task_request *req, bool async,
		 struct spm_volume *ret_vol, struct spm_task_info *ret, struct pk_error *err)
{
	struct job *j;
	int r;

	/* Refused before a record exists: a task record means the SPM took the work. */
	r = spm_task_request_check(spm, req, err);
	if (r == 0) {
		r = existence_check(spm, req, err);
	}
	if (r < 0) {
		return r;
	}
	if (async && spm_taskpool_reserve(spm->pool) < 0) {
		return pk_error_set(err, PK_E_BUSY, EBUSY,
				    "the SPM is at its task limit (%lld tasks waiting, setting "
				    "task_queue_max); retry later",
				    (long long)pk_config_int(spm->cfg, "task_queue_max"));
	}
	(void)spm_tasks_expire(spm->tasks, pk_clock_realtime_ms());
	j = job_new(spm, req);
	r = spm_task_begin(spm->tasks, verb_names[j->verb], j->domain, j->image, j->volume,
			   j->task_id, err);
	if (r < 0) {
		if (async) {
			spm_taskpool_cancel(spm->pool);
		}
		free(j);
		return r;
	}
	if (async) {
		char id[PK_UUID_BUFLEN];

		memcpy(id, j->task_id, sizeof(id));
		spm_taskpool_submit(spm->pool, job_work, j); /* j is the worker's now */
		return spm_tasks_get(spm->tasks, id, ret, err);
	}
	r = job_run(j, ret_vol, err);
	spm_task_finish(spm->tasks, j->task_id, r, err);
	if (r == 0) {
		r = spm_tasks_get(spm->tasks, j->task_id, ret, err);
	}
	free(j);
	return r;
}
