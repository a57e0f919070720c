/* spm_prepseq: the last ImagePrepared seq per host and image (see prepseq.h). */
#include "spm/prepseq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/uuid.h"
#include "common/xalloc.h"

struct entry {
	int32_t host;
	char image[PK_UUID_BUFLEN];
	uint64_t seq;
};

struct spm_prepseq {
	pthread_mutex_t lock;
	struct entry *v;
	size_t n, cap;
};

struct spm_prepseq *spm_prepseq_new(void)
{
	struct spm_prepseq *t = pk_xcalloc(1, sizeof(*t));

	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void spm_prepseq_free(struct spm_prepseq *t)
{
	if (!t) {
		return;
	}
	pthread_mutex_destroy(&t->lock);
	free(t->v);
	free(t);
}

/* Under t->lock. NULL when absent. */
static struct entry *find(struct spm_prepseq *t, int32_t host, const char *image)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].host == host && !strcmp(t->v[i].image, image)) {
			return &t->v[i];
		}
	}
	return NULL;
}

bool spm_prepseq_stale(struct spm_prepseq *t, int32_t host, const char *image, uint64_t seq)
{
	const struct entry *e;
	bool stale;

	if (seq == 0) {
		return false;
	}
	pthread_mutex_lock(&t->lock);
	e = find(t, host, image);
	stale = e && seq <= e->seq;
	pthread_mutex_unlock(&t->lock);
	return stale;
}

void spm_prepseq_record(struct spm_prepseq *t, int32_t host, const char *image, uint64_t seq)
{
	struct entry *e;

	if (seq == 0) {
		return;
	}
	pthread_mutex_lock(&t->lock);
	e = find(t, host, image);
	if (!e) {
		if (t->n == t->cap) {
			t->cap = t->cap ? 2 * t->cap : 16;
			t->v = pk_xrealloc(t->v, t->cap * sizeof(*t->v));
		}
		e = &t->v[t->n++];
		e->host = host;
		snprintf(e->image, sizeof(e->image), "%s", image);
		e->seq = 0;
	}
	if (seq > e->seq) {
		e->seq = seq;
	}
	pthread_mutex_unlock(&t->lock);
}
