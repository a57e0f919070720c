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
