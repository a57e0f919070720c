/*
 * spm_locks — resource locks of the SPM: namespaces domain > image >
 * volume, each lock shared or exclusive.
 *
 * Rules that make it deadlock-free and hang-free:
 *  - A caller takes all the locks of one operation at once, as a lock set
 *    (spm_lockset_*); the set is acquired in one global order (namespace
 *    first, then name), whatever order the caller listed them in.
 *  - Every acquisition has a deadline. When a lock is not had by then, the
 *    locks of the set taken so far are released and the call fails with
 *    PK_E_BUSY naming the resource and its current holder's operation.
 *  - Waiting writers block new readers of the same resource, so a steady
 *    stream of shared lockers cannot starve an exclusive one.
 *
 * Typical sets: create a volume = domain shared + image exclusive;
 * delete a volume = domain shared + image exclusive; extend = domain
 * shared + image shared + volume exclusive; delete a domain = domain
 * exclusive. Thread-safe.
 */
#ifndef SPM_LOCKS_H
#define SPM_LOCKS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

enum spm_lock_ns {
	SPM_LOCK_DOMAIN = 0,
	SPM_LOCK_IMAGE = 1,
	SPM_LOCK_VOLUME = 2,
};

enum spm_lock_mode {
	SPM_LOCK_SHARED = 0,
	SPM_LOCK_EXCLUSIVE = 1,
};

struct spm_locks;

struct spm_locks *spm_locks_new(void);
/* All locks must have been released. NULL-safe. */
void spm_locks_free(struct spm_locks *locks);

#define SPM_LOCKSET_MAX 6

struct spm_lockset_entry {
	enum spm_lock_ns ns;
	enum spm_lock_mode mode;
	char name[64];
	bool held;
};

/* Locks one operation holds; embedded on the caller's stack. */
struct spm_lockset {
	struct spm_locks *locks;
	char owner[64]; /* what holds them, for BUSY messages: "delete_volume <id>" */
	size_t n;
	struct spm_lockset_entry entries[SPM_LOCKSET_MAX];
};

void spm_lockset_init(struct spm_lockset *set, struct spm_locks *locks, const char *owner);
/* Adds a lock to take (at most SPM_LOCKSET_MAX). */
void spm_lockset_add(struct spm_lockset *set, enum spm_lock_ns ns, const char *name,
		     enum spm_lock_mode mode);
/* Takes every lock of the set or none, within timeout_ms (BUSY otherwise). */
int spm_lockset_acquire(struct spm_lockset *set, int timeout_ms, struct pk_error *err);
/* Releases what the set holds. Safe to call twice. */
void spm_lockset_release(struct spm_lockset *set);

/* Number of resources with holders or waiters (for tests). */
size_t spm_locks_active(struct spm_locks *locks);

#endif
