#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

char *pk_buf_reserve(struct pk_buf *b, size_t n)
{
	if (n > (size_t)-1 - b->len - 1) {
		abort(); /* no buffer that large */
	}
	b->data = pk_xgrow(b->data, &b->cap, b->len + n + 1, 1);
	b->data[b->len] = '\0';
	return b->data + b->len;
}

void pk_buf_commit(struct pk_buf *b, size_t k)
{
	b->len += k;
	b->data[b->len] = '\0';
}

void pk_buf_append(struct pk_buf *b, const void *p, size_t n)
{
	memcpy(pk_buf_reserve(b, n), p, n);
	pk_buf_commit(b, n);
}

void pk_buf_putc(struct pk_buf *b, char c)
{
	*pk_buf_reserve(b, 1) = c;
	pk_buf_commit(b, 1);
}

void pk_buf_vprintf(struct pk_buf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(pk_buf_reserve(b, 0), b->cap - b->len, fmt, ap);
	if (n < 0) {
		abort(); /* only an invalid format string fails */
	}
	if ((size_t)n >= b->cap - b->len) {
		n = vsnprintf(pk_buf_reserve(b, (size_t)n), (size_t)n + 1, fmt, again);
	}
	va_end(again);
	pk_buf_commit(b, (size_t)n);
}

void pk_buf_printf(struct pk_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pk_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void pk_buf_reset(struct pk_buf *b)
{
	b->len = 0;
	if (b->data) {
		b->data[0] = '\0';
	}
}

void pk_buf_release(struct pk_buf *b)
{
	if (!b) {
		return;
	}
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

char *pk_buf_steal(struct pk_buf *b, size_t *ret_len)
{
	char *data = b->data ? b->data : pk_xstrdup("");

	if (ret_len) {
		*ret_len = b->len;
	}
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return data;
}
