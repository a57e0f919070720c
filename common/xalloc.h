/*
 * Allocation that never returns NULL: poolkeeper aborts on out-of-memory
 * (there is no useful recovery in a storage daemon, and a partial state
 * is worse than a restart that recovers from persisted records).
 */
#ifndef PK_XALLOC_H
#define PK_XALLOC_H

#include <stddef.h>

void *pk_xmalloc(size_t size);
void *pk_xcalloc(size_t n, size_t size);
void *pk_xrealloc(void *p, size_t size);
char *pk_xstrdup(const char *s);

/*
 * Array growth, the one way arrays grow here. Returns p (an array of *cap
 * elements of elem bytes; NULL when there is none yet) reallocated to hold
 * at least need elements, and updates *cap; p is returned untouched when
 * it is already large enough. The capacity at least doubles (from 8), so
 * n appends cost O(n) copies. Slots past the old capacity are
 * uninitialised. The rule: keep the capacity beside the count, and grow
 * only through here, assigning the result:
 *
 *	v = pk_xgrow(v, &cap, n + 1, sizeof(*v));
 *	v[n++] = x;
 *
 * cap NULL is for arrays whose owner keeps no capacity (their count is
 * their size, e.g. one a caller may fill by hand): they grow to exactly
 * need elements. Sizes that overflow abort, like out-of-memory.
 */
void *pk_xgrow(void *p, size_t *cap, size_t need, size_t elem);
char *pk_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Cleanup helpers for memory and fds only (effects are undone explicitly). */
void pk_freep(void *p);
void pk_closep(int *fd);
#define _cleanup_free_ __attribute__((cleanup(pk_freep)))
#define _cleanup_close_ __attribute__((cleanup(pk_closep)))

/* Hands ownership out of a cleanup variable: returns *pp and sets it NULL. */
#define pk_steal_pointer(pp)                      \
	({                                        \
		__typeof__(*(pp)) _p_ = *(pp);    \
		*(pp) = NULL;                     \
		_p_;                              \
	})

#endif
