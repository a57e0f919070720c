/*
 * pk_strv — a heap vector of heap strings.
 *
 * Shape: a char ** that is both counted and NULL-terminated: v[0..n) are
 * heap strings and v[n] == NULL, so a vector handed out (pk_strv_steal)
 * is read with its count or up to the NULL, and freed by pk_strv_free
 * without its count. A vector that never got a string is NULL.
 *
 * Ownership: the vector owns the array and every string in it. Whoever
 * holds the struct calls pk_strv_release; whoever receives the array from
 * pk_strv_steal (or from any API documented "free with pk_strv_free")
 * calls pk_strv_free. An array built elsewhere may be freed with
 * pk_strv_free only if it keeps the same shape (NULL after the last).
 *
 * Allocation aborts on out-of-memory (common/xalloc.h); nothing fails.
 * Not thread-safe: one owner at a time.
 */
#ifndef PK_STRV_H
#define PK_STRV_H

#include <stddef.h>

struct pk_strv {
	char **v;   /* NULL, or n heap strings followed by NULL */
	size_t n;
	size_t cap; /* slots allocated in v, the terminator's included */
};

#define PK_STRV_INIT { NULL, 0, 0 }

/* Appends a copy of s. */
void pk_strv_push(struct pk_strv *sv, const char *s);

/* Appends s itself: the vector takes ownership of the heap string s. */
void pk_strv_push_take(struct pk_strv *sv, char *s);

/* Hands the array out (NULL when empty) with its count in *ret_n (may be
 * NULL) and leaves sv empty. The caller frees it with pk_strv_free. */
char **pk_strv_steal(struct pk_strv *sv, size_t *ret_n);

/* Frees every string and the array; sv is empty afterwards. NULL-safe. */
void pk_strv_release(struct pk_strv *sv);

/* Frees a NULL-terminated heap array of heap strings. NULL-safe. */
void pk_strv_free(char **strv);

#endif
