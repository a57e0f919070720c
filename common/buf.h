/*
 * pk_buf — a growable byte buffer (text or bytes).
 *
 * Invariant: data is NULL until something is reserved or appended; from
 * then on data[len] == '\0', so text in the buffer is always a C string
 * (the NUL is not counted in len, and bytes may hold NULs of their own).
 *
 * Ownership: whoever holds the struct owns data. pk_buf_release frees it;
 * pk_buf_steal hands it to the caller (free()) and empties the buffer.
 * Allocation aborts on out-of-memory (common/xalloc.h); nothing fails.
 * Not thread-safe: one owner at a time.
 */
#ifndef PK_BUF_H
#define PK_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct pk_buf {
	char *data;
	size_t len;
	size_t cap; /* bytes allocated in data, the NUL's included */
};

#define PK_BUF_INIT { NULL, 0, 0 }

/* Appends n bytes of p. */
void pk_buf_append(struct pk_buf *b, const void *p, size_t n);

/* Appends one byte. */
void pk_buf_putc(struct pk_buf *b, char c);

/* Appends the formatted text. */
void pk_buf_printf(struct pk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pk_buf_vprintf(struct pk_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * For writers that fill the buffer themselves (read(2) loops): returns
 * room for at least n more bytes at data + len (the NUL's slot not
 * counted); pk_buf_commit(b, k) then adds the k <= n bytes written.
 */
char *pk_buf_reserve(struct pk_buf *b, size_t n);
void pk_buf_commit(struct pk_buf *b, size_t k);

/* Empties the buffer and keeps its memory. */
void pk_buf_reset(struct pk_buf *b);

/* Frees data; b is empty afterwards. NULL-safe. */
void pk_buf_release(struct pk_buf *b);

/* Hands data out (never NULL: an empty buffer gives a heap ""), with its
 * length in *ret_len (may be NULL), and leaves b empty. */
char *pk_buf_steal(struct pk_buf *b, size_t *ret_len);

#endif
