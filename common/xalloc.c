#include "common/xalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void oom(size_t size)
{
	fprintf(stderr, "poolkeeper: out of memory allocating %zu bytes\n", size);
	abort();
}

void *pk_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p) {
		oom(size);
	}
	return p;
}

void *pk_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		oom(n * size);
	}
	return p;
}

void *pk_xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	if (!q) {
		oom(size);
	}
	return q;
}

void *pk_xgrow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t n = need;

	if (cap) {
		if (p && need <= *cap) {
			return p;
		}
		if (*cap > SIZE_MAX / 2) {
			oom(SIZE_MAX);
		}
		n = *cap ? *cap * 2 : 8;
		while (n < need) {
			if (n > SIZE_MAX / 2) {
				oom(SIZE_MAX);
			}
			n *= 2;
		}
	}
	if (elem && n > SIZE_MAX / elem) {
		oom(SIZE_MAX);
	}
	p = pk_xrealloc(p, n * elem);
	if (cap) {
		*cap = n;
	}
	return p;
}

char *pk_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p) {
		oom(strlen(s) + 1);
	}
	return p;
}

char *pk_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0) {
		oom(0);
	}
	return p;
}

void pk_freep(void *p)
{
	free(*(void **)p);
}

void pk_closep(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
	}
}
