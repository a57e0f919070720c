#include "spm/locks.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"

static const char *const ns_names[] = { "domain", "image", "volume" };

struct lock_res {
	struct lock_res *next;
	enum spm_lock_ns ns;
	char name[64];
	unsigned readers;
	bool writer;
	unsigned waiting_writers;
	unsigned waiters; /* all waiters, to know when the entry can go */
	char holder[64];  /* owner of the last grant, for messages */
};

struct spm_locks {
	pthread_mutex_t mutex;
	pthread_cond_t changed;
	struct lock_res *resources;
};

struct spm_locks *spm_locks_new(void)
{
	struct spm_locks *l = pk_xcalloc(1, sizeof(*l));
	pthread_condattr_t ca;

	pthread_mutex_init(&l->mutex, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->changed, &ca);
	pthread_condattr_destroy(&ca);
	return l;
}

void spm_locks_free(struct spm_locks *locks)
{
	if (!locks) {
		return;
	}
	while (locks->resources) {
		struct lock_res *r = locks->resources;
		locks->resources = r->next;
		free(r);
	}
	pthread_cond_destroy(&locks->changed);
	pthread_mutex_destroy(&locks->mutex);
	free(locks);
}

static struct lock_res *locks_find(struct spm_locks *l, enum spm_lock_ns ns, const char *name,
				   bool create)
{
	struct lock_res *r;

	for (r = l->resources; r; r = r->next) {
		if (r->ns == ns && strcmp(r->name, name) == 0) {
			return r;
		}
	}
	if (!create) {
		return NULL;
	}
	r = pk_xcalloc(1, sizeof(*r));
	r->ns = ns;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->next = l->resources;
	l->resources = r;
	return r;
}

static void locks_gc(struct spm_locks *l, struct lock_res *res)
{
	struct lock_res **pp;

	if (res->readers || res->writer || res->waiters) {
		return;
	}
	for (pp = &l->resources; *pp; pp = &(*pp)->next) {
		if (*pp == res) {
			*pp = res->next;
			free(res);
			return;
		}
	}
}

static bool lock_grantable(const struct lock_res *r, enum spm_lock_mode mode)
{
	if (mode == SPM_LOCK_EXCLUSIVE) {
		return !r->writer && r->readers == 0;
	}
	return !r->writer && r->waiting_writers == 0;
}

/* Called with the mutex held. */
static int lock_take(struct spm_locks *l, struct spm_lockset_entry *e, const char *owner,
		     const struct timespec *deadline, struct pk_error *err)
{
	struct lock_res *r = locks_find(l, e->ns, e->name, true);
	int rc = 0;

	r->waiters++;
	if (e->mode == SPM_LOCK_EXCLUSIVE) {
		r->waiting_writers++;
	}
	while (!lock_grantable(r, e->mode)) {
		rc = pthread_cond_timedwait(&l->changed, &l->mutex, deadline);
		if (rc == ETIMEDOUT) {
			break;
		}
	}
	if (e->mode == SPM_LOCK_EXCLUSIVE) {
		r->waiting_writers--;
	}
	r->waiters--;
	if (rc == ETIMEDOUT && !lock_grantable(r, e->mode)) {
		int ret = pk_error_set(err, PK_E_BUSY, EBUSY,
				       "%s '%s' is locked by '%s' (%s); retry when it finishes",
				       ns_names[e->ns], e->name, r->holder,
				       r->writer ? "exclusive" : "shared");
		/* Readers may now proceed if we were the writer they queued behind. */
		pthread_cond_broadcast(&l->changed);
		locks_gc(l, r);
		return ret;
	}
	if (e->mode == SPM_LOCK_EXCLUSIVE) {
		r->writer = true;
	} else {
		r->readers++;
	}
	snprintf(r->holder, sizeof(r->holder), "%s", owner);
	e->held = true;
	return 0;
}

static void lock_drop(struct spm_locks *l, struct spm_lockset_entry *e)
{
	struct lock_res *r = locks_find(l, e->ns, e->name, false);

	if (!r || !e->held) {
		return;
	}
	if (e->mode == SPM_LOCK_EXCLUSIVE) {
		r->writer = false;
	} else if (r->readers > 0) {
		r->readers--;
	}
	e->held = false;
	locks_gc(l, r);
}

void spm_lockset_init(struct spm_lockset *set, struct spm_locks *locks, const char *owner)
{
	memset(set, 0, sizeof(*set));
	set->locks = locks;
	snprintf(set->owner, sizeof(set->owner), "%s", owner);
}

void spm_lockset_add(struct spm_lockset *set, enum spm_lock_ns ns, const char *name,
		     enum spm_lock_mode mode)
{
	struct spm_lockset_entry *e;

	if (set->n >= SPM_LOCKSET_MAX) {
		abort(); /* programmer error: sets are small and fixed per verb */
	}
	e = &set->entries[set->n++];
	e->ns = ns;
	e->mode = mode;
	e->held = false;
	snprintf(e->name, sizeof(e->name), "%s", name);
}

static int entry_cmp(const void *a, const void *b)
{
	const struct spm_lockset_entry *x = a, *y = b;

	if (x->ns != y->ns) {
		return x->ns < y->ns ? -1 : 1;
	}
	return strcmp(x->name, y->name);
}

int spm_lockset_acquire(struct spm_lockset *set, int timeout_ms, struct pk_error *err)
{
	struct timespec deadline;
	int r = 0;

	/* The global order: namespace, then name. */
	qsort(set->entries, set->n, sizeof(set->entries[0]), entry_cmp);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&set->locks->mutex);
	for (size_t i = 0; i < set->n; i++) {
		r = lock_take(set->locks, &set->entries[i], set->owner, &deadline, err);
		if (r < 0) {
			break;
		}
	}
	if (r < 0) {
		for (size_t i = 0; i < set->n; i++) {
			lock_drop(set->locks, &set->entries[i]);
		}
		pthread_cond_broadcast(&set->locks->changed);
	}
	pthread_mutex_unlock(&set->locks->mutex);
	return r;
}

void spm_lockset_release(struct spm_lockset *set)
{
	if (!set->locks) {
		return;
	}
	pthread_mutex_lock(&set->locks->mutex);
	for (size_t i = set->n; i > 0; i--) {
		lock_drop(set->locks, &set->entries[i - 1]);
	}
	pthread_cond_broadcast(&set->locks->changed);
	pthread_mutex_unlock(&set->locks->mutex);
}

size_t spm_locks_active(struct spm_locks *locks)
{
	size_t n = 0;

	pthread_mutex_lock(&locks->mutex);
	for (struct lock_res *r = locks->resources; r; r = r->next) {
		n++;
	}
	pthread_mutex_unlock(&locks->mutex);
	return n;
}
