/*
 * spm_taskpool — a fixed set of worker threads and a bounded queue for the
 * SPM's asynchronous tasks, so a burst of requests costs at most `workers`
 * threads and `queue_max` waiting jobs, never a thread per request.
 *
 * Admission is two steps so a caller can refuse before it records
 * anything: spm_taskpool_reserve() takes a place in the queue (or fails
 * with -EBUSY when every place is taken), then spm_taskpool_submit() fills
 * it (it cannot fail) or spm_taskpool_cancel() gives it back.
 *
 * Thread-safe. spm_taskpool_free() runs what is queued, then joins the
 * workers.
 */
#ifndef SPM_TASKPOOL_H
#define SPM_TASKPOOL_H

#include <stddef.h>

struct spm_taskpool;

/* workers >= 1 threads; at most queue_max (>= 1) jobs waiting for one. */
struct spm_taskpool *spm_taskpool_new(unsigned workers, unsigned queue_max);
void spm_taskpool_free(struct spm_taskpool *pool); /* NULL-safe */

/* 0: a place is held for one submit; -EBUSY: the queue is full. */
int spm_taskpool_reserve(struct spm_taskpool *pool);
void spm_taskpool_cancel(struct spm_taskpool *pool);
/* Queues fn(arg) in the place reserve held; a worker runs it. */
void spm_taskpool_submit(struct spm_taskpool *pool, void (*fn)(void *arg), void *arg);

/* Waits until nothing is queued, reserved or running. */
void spm_taskpool_wait_idle(struct spm_taskpool *pool);

/* Jobs queued or reserved, and running (for tests and status). */
void spm_taskpool_counts(struct spm_taskpool *pool, size_t *ret_queued, size_t *ret_running);

#endif
