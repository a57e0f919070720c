#include "spm/taskpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/xalloc.h"

struct pool_job {
	void (*fn)(void *arg);
	void *arg;
};

struct spm_taskpool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a job was queued, or stop */
	pthread_cond_t idle; /* a job ended or a place was given back */
	pthread_t *threads;
	unsigned nthreads;
	/* Ring of queue_max places; `reserved` of them are promised, not filled. */
	struct pool_job *ring;
	size_t cap, head, nqueued, reserved, running;
	bool stop;
};

static void *pool_worker(void *arg)
{
	struct spm_taskpool *pool = arg;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		struct pool_job job;

		while (!pool->nqueued && !(pool->stop && !pool->reserved)) {
			pthread_cond_wait(&pool->work, &pool->lock);
		}
		if (!pool->nqueued) {
			break; /* stopping, and nothing left to run */
		}
		job = pool->ring[pool->head];
		pool->head = (pool->head + 1) % pool->cap;
		pool->nqueued--;
		pool->running++;
		pthread_mutex_unlock(&pool->lock);
		job.fn(job.arg);
		pthread_mutex_lock(&pool->lock);
		pool->running--;
		pthread_cond_broadcast(&pool->idle);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

struct spm_taskpool *spm_taskpool_new(unsigned workers, unsigned queue_max)
{
	struct spm_taskpool *pool = pk_xcalloc(1, sizeof(*pool));

	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pthread_cond_init(&pool->idle, NULL);
	pool->cap = queue_max ? queue_max : 1;
	pool->ring = pk_xcalloc(pool->cap, sizeof(*pool->ring));
	pool->threads = pk_xcalloc(workers ? workers : 1, sizeof(*pool->threads));
	for (unsigned i = 0; i < (workers ? workers : 1); i++) {
		if (pthread_create(&pool->threads[pool->nthreads], NULL, pool_worker, pool) != 0) {
			/* Fewer workers still run everything queued, only slower. */
			pk_log_warn("cannot start task worker %u of %u", i + 1, workers);
			continue;
		}
		pool->nthreads++;
	}
	if (!pool->nthreads) {
		pk_log_error("no task worker thread could be started");
		abort();
	}
	return pool;
}

void spm_taskpool_free(struct spm_taskpool *pool)
{
	if (!pool) {
		return;
	}
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->nthreads; i++) {
		pthread_join(pool->threads[i], NULL);
	}
	pthread_cond_destroy(&pool->idle);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool->ring);
	free(pool);
}

int spm_taskpool_reserve(struct spm_taskpool *pool)
{
	int r = 0;

	pthread_mutex_lock(&pool->lock);
	if (pool->nqueued + pool->reserved >= pool->cap) {
		r = -EBUSY;
	} else {
		pool->reserved++;
	}
	pthread_mutex_unlock(&pool->lock);
	return r;
}

void spm_taskpool_cancel(struct spm_taskpool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->reserved--;
	pthread_cond_broadcast(&pool->idle);
	pthread_cond_broadcast(&pool->work); /* a stopping worker may be waiting for it */
	pthread_mutex_unlock(&pool->lock);
}

void spm_taskpool_submit(struct spm_taskpool *pool, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&pool->lock);
	pool->reserved--;
	pool->ring[(pool->head + pool->nqueued) % pool->cap] = (struct pool_job){ fn, arg };
	pool->nqueued++;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

void spm_taskpool_wait_idle(struct spm_taskpool *pool)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->nqueued || pool->reserved || pool->running) {
		pthread_cond_wait(&pool->idle, &pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
}

void spm_taskpool_counts(struct spm_taskpool *pool, size_t *ret_queued, size_t *ret_running)
{
	pthread_mutex_lock(&pool->lock);
	*ret_queued = pool->nqueued + pool->reserved;
	*ret_running = pool->running;
	pthread_mutex_unlock(&pool->lock);
}
