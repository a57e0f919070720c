/*
 * pk_locks — named resource locks of a daemon, each shared or exclusive,
 * in namespaces the daemon names (spmd: domain > image > volume; hsmd:
 * image > vm).
 *
 * Rules that make it deadlock-free and hang-free:
 *  - A caller takes all the locks of one operation at once, as a lock set
 *    (pk_lockset_*), and takes no further lock while it holds a set. The
 *    set is acquired in one global order (namespace in the order given to
 *    pk_locks_new, then name), whatever order the caller listed them in.
 *  - A set is had whole or not at all. Every acquisition has a deadline:
 *    when a lock is not had by then, the locks of the set taken so far are
 *    released and the call fails with PK_E_BUSY (-EBUSY) naming the caller,
 *    the resource and its current holder.
 *  - Waiting writers block new readers of the same resource, so a steady
 *    stream of shared lockers cannot starve an exclusive one.
 *  - A resource listed twice in one set is taken once, in the stronger of
 *    the two modes.
 *
 * Names longer than PK_LOCK_NAME_MAX - 1 are cut; two names that differ
 * only after the cut share one lock (coarser, never unsafe).
 *
 * Threads: every function is thread-safe; one lock set is used by one
 * thread at a time.
 */
#ifndef PK_LOCKS_H
#define PK_LOCKS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

enum pk_lock_mode {
	PK_LOCK_SHARED = 0,
	PK_LOCK_EXCLUSIVE = 1,
};

struct pk_locks;

/*
 * A lock table with n namespaces; ns_names[i] names namespace i in
 * messages and i is its rank in the acquisition order. ns_names (and its
 * strings) are borrowed and must outlive the table.
 */
struct pk_locks *pk_locks_new(const char *const *ns_names, size_t n);
/* All locks must have been released. NULL-safe. */
void pk_locks_free(struct pk_locks *locks);

/* Number of resources with holders or waiters (for tests). */
size_t pk_locks_active(struct pk_locks *locks);

/*
 * Number of threads waiting now in pk_lockset_acquire for the resource
 * (ns, name), 0 for a resource nobody holds or waits for. For tests and
 * diagnostics only (a test acts once another thread is blocked): the
 * answer may be stale as soon as it is returned.
 */
size_t pk_locks_waiting(struct pk_locks *locks, unsigned ns, const char *name);

/* Large enough for a VM of hsmd (its disks' images and the VM itself). */
#define PK_LOCKSET_MAX 72
#define PK_LOCK_NAME_MAX 96
#define PK_LOCK_OWNER_MAX 64

struct pk_lockset_entry {
	unsigned ns;
	enum pk_lock_mode mode;
	char name[PK_LOCK_NAME_MAX];
	bool held;
};

/* Locks one operation holds; embedded on the caller's stack. */
struct pk_lockset {
	struct pk_locks *locks;
	char owner[PK_LOCK_OWNER_MAX]; /* for BUSY messages: "delete_volume <id>" */
	size_t n;
	struct pk_lockset_entry entries[PK_LOCKSET_MAX];
};

void pk_lockset_init(struct pk_lockset *set, struct pk_locks *locks, const char *owner);
/*
 * Adds a lock to take. More than PK_LOCKSET_MAX entries, or a namespace
 * the table does not have, is a programmer error (abort).
 */
void pk_lockset_add(struct pk_lockset *set, unsigned ns, const char *name,
		    enum pk_lock_mode mode);
/*
 * Takes every lock of the set or none, within timeout_ms; otherwise -EBUSY
 * with PK_E_BUSY. A set that failed may be acquired again.
 */
int pk_lockset_acquire(struct pk_lockset *set, int timeout_ms, struct pk_error *err);
/* Releases what the set holds. Safe to call twice, and on a set that failed. */
void pk_lockset_release(struct pk_lockset *set);

#endif
