#include "common/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

#define ARENA_BLOCK_SIZE 4096

struct pk_arena_block {
	struct pk_arena_block *next;
	size_t used;
	size_t size;
	max_align_t data[];
};

void pk_arena_init(struct pk_arena *a)
{
	a->head = NULL;
}

void pk_arena_release(struct pk_arena *a)
{
	struct pk_arena_block *b = a->head;

	while (b) {
		struct pk_arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
}

void *pk_arena_alloc(struct pk_arena *a, size_t size)
{
	const size_t align = sizeof(max_align_t);
	struct pk_arena_block *b = a->head;
	size_t need = (size + align - 1) / align * align;
	void *p;

	if (need == 0) {
		need = align;
	}
	if (!b || b->size - b->used < need) {
		size_t bsize = need > ARENA_BLOCK_SIZE ? need : ARENA_BLOCK_SIZE;
		b = pk_xmalloc(sizeof(*b) + bsize);
		b->used = 0;
		b->size = bsize;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += need;
	memset(p, 0, need);
	return p;
}

char *pk_arena_strdup(struct pk_arena *a, const char *s)
{
	size_t n;
	char *p;

	if (!s) {
		return NULL;
	}
	n = strlen(s) + 1;
	p = pk_arena_alloc(a, n);
	memcpy(p, s, n);
	return p;
}

char *pk_arena_printf(struct pk_arena *a, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return pk_arena_strdup(a, "");
	}
	p = pk_arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
