#include "common/locks.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/xalloc.h"

struct lock_res {
	struct lock_res *next;
	unsigned ns;
	char name[PK_LOCK_NAME_MAX];
	unsigned readers;
	bool writer;
	unsigned waiting_writers;
	unsigned waiters; /* all waiters, to know when the entry can go */
	char holder[PK_LOCK_OWNER_MAX]; /* owner of the last grant, for messages */
};

struct pk_locks {
	const char *const *ns_names;
	size_t n_ns;
	pthread_mutex_t mutex;
	pthread_cond_t changed;
	struct lock_res *resources;
};

struct pk_locks *pk_locks_new(const char *const *ns_names, size_t n)
{
	struct pk_locks *l = pk_xcalloc(1, sizeof(*l));
	pthread_condattr_t ca;

	l->ns_names = ns_names;
	l->n_ns = n;
	pthread_mutex_init(&l->mutex, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->changed, &ca);
	pthread_condattr_destroy(&ca);
	return l;
}

void pk_locks_free(struct pk_locks *locks)
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

static struct lock_res *locks_find(struct pk_locks *l, unsigned ns, const char *name,
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

static void locks_gc(struct pk_locks *l, struct lock_res *res)
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

static bool lock_grantable(const struct lock_res *r, enum pk_lock_mode mode)
{
	if (mode == PK_LOCK_EXCLUSIVE) {
		return !r->writer && r->readers == 0;
	}
	return !r->writer && r->waiting_writers == 0;
}

/* Called with the mutex held. */
static int lock_take(struct pk_locks *l, struct pk_lockset_entry *e, const char *owner,
		     const struct timespec *deadline, int timeout_ms, struct pk_error *err)
{
	struct lock_res *r = locks_find(l, e->ns, e->name, true);
	int rc = 0;

	r->waiters++;
	if (e->mode == PK_LOCK_EXCLUSIVE) {
		r->waiting_writers++;
	}
	while (!lock_grantable(r, e->mode)) {
		rc = pthread_cond_timedwait(&l->changed, &l->mutex, deadline);
		if (rc == ETIMEDOUT) {
			break;
		}
	}
	if (e->mode == PK_LOCK_EXCLUSIVE) {
		r->waiting_writers--;
	}
	r->waiters--;
	if (rc == ETIMEDOUT && !lock_grantable(r, e->mode)) {
		int ret = pk_error_set(err, PK_E_BUSY, EBUSY,
				       "%s: %s '%s' is locked by '%s' (%s), waited %d ms; retry "
				       "when it finishes",
				       owner, l->ns_names[e->ns], e->name, r->holder,
				       r->writer ? "exclusive" : "shared", timeout_ms);
		/* Readers may now proceed if we were the writer they queued behind. */
		pthread_cond_broadcast(&l->changed);
		locks_gc(l, r);
		return ret;
	}
	if (e->mode == PK_LOCK_EXCLUSIVE) {
		r->writer = true;
	} else {
		r->readers++;
	}
	snprintf(r->holder, sizeof(r->holder), "%s", owner);
	e->held = true;
	return 0;
}

static void lock_drop(struct pk_locks *l, struct pk_lockset_entry *e)
{
	struct lock_res *r = locks_find(l, e->ns, e->name, false);

	if (!r || !e->held) {
		return;
	}
	if (e->mode == PK_LOCK_EXCLUSIVE) {
		r->writer = false;
	} else if (r->readers > 0) {
		r->readers--;
	}
	e->held = false;
	locks_gc(l, r);
}

void pk_lockset_init(struct pk_lockset *set, struct pk_locks *locks, const char *owner)
{
	memset(set, 0, sizeof(*set));
	set->locks = locks;
	snprintf(set->owner, sizeof(set->owner), "%s", owner);
}

void pk_lockset_add(struct pk_lockset *set, unsigned ns, const char *name,
		     enum pk_lock_mode mode)
{
	struct pk_lockset_entry *e;

	if (set->n >= PK_LOCKSET_MAX || ns >= set->locks->n_ns) {
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
	const struct pk_lockset_entry *x = a, *y = b;

	if (x->ns != y->ns) {
		return x->ns < y->ns ? -1 : 1;
	}
	return strcmp(x->name, y->name);
}

/* Sorted entries: a resource listed twice becomes one entry in the stronger
 * mode (taking it twice would wait for ourselves). */
static void entries_merge(struct pk_lockset *set)
{
	size_t k = 0;

	for (size_t i = 0; i < set->n; i++) {
		if (k > 0 && entry_cmp(&set->entries[k - 1], &set->entries[i]) == 0) {
			if (set->entries[i].mode == PK_LOCK_EXCLUSIVE) {
				set->entries[k - 1].mode = PK_LOCK_EXCLUSIVE;
			}
			continue;
		}
		if (k != i) {
			set->entries[k] = set->entries[i];
		}
		k++;
	}
	set->n = k;
}

int pk_lockset_acquire(struct pk_lockset *set, int timeout_ms, struct pk_error *err)
{
	struct timespec deadline;
	int r = 0;

	/* The global order: namespace, then name. */
	qsort(set->entries, set->n, sizeof(set->entries[0]), entry_cmp);
	entries_merge(set);
	/* The condition variables wait on CLOCK_MONOTONIC (pk_locks_new). */
	pk_clock_deadline(CLOCK_MONOTONIC, timeout_ms > 0 ? (unsigned)timeout_ms : 0, &deadline);
	pthread_mutex_lock(&set->locks->mutex);
	for (size_t i = 0; i < set->n; i++) {
		r = lock_take(set->locks, &set->entries[i], set->owner, &deadline, timeout_ms,
			      err);
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

void pk_lockset_release(struct pk_lockset *set)
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

size_t pk_locks_active(struct pk_locks *locks)
{
	size_t n = 0;

	pthread_mutex_lock(&locks->mutex);
	for (struct lock_res *r = locks->resources; r; r = r->next) {
		n++;
	}
	pthread_mutex_unlock(&locks->mutex);
	return n;
}

size_t pk_locks_waiting(struct pk_locks *locks, unsigned ns, const char *name)
{
	char cut[PK_LOCK_NAME_MAX];
	struct lock_res *r;
	size_t n = 0;

	snprintf(cut, sizeof(cut), "%s", name); /* as pk_lockset_add stores it */
	pthread_mutex_lock(&locks->mutex);
	r = locks_find(locks, ns, cut, false);
	if (r) {
		n = r->waiters;
	}
	pthread_mutex_unlock(&locks->mutex);
	return n;
}
