/*
 * pk_arena — a region allocator for the life of one request.
 *
 * RPC handlers build their protobuf responses out of many small pieces;
 * every piece comes from the request's arena and everything is freed at
 * once when the response has been encoded. Allocation failure aborts
 * (as everywhere in poolkeeper: there is no useful recovery from OOM).
 * Not thread-safe: one arena belongs to one request on one thread.
 */
#ifndef PK_ARENA_H
#define PK_ARENA_H

#include <stddef.h>

struct pk_arena_block;

struct pk_arena {
	struct pk_arena_block *head;
};

#define PK_ARENA_INIT { NULL }

void pk_arena_init(struct pk_arena *a);
/* Frees every allocation made from the arena. The arena is reusable. */
void pk_arena_release(struct pk_arena *a);

/* Zeroed memory owned by the arena. Never NULL. */
void *pk_arena_alloc(struct pk_arena *a, size_t size);
/* Copies of strings owned by the arena. NULL in, NULL out. */
char *pk_arena_strdup(struct pk_arena *a, const char *s);
char *pk_arena_printf(struct pk_arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pk_arena_new(a, type) ((type *)pk_arena_alloc((a), sizeof(type)))
#define pk_arena_array(a, type, n) ((type *)pk_arena_alloc((a), sizeof(type) * (n)))

#endif
