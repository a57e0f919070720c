/*
 * spm_prepseq — the order of ImagePrepared notices. hsmd numbers every
 * notice with a seq (its wall clock in microseconds, so a restarted hsmd
 * keeps counting up); a notice that arrives after a newer one of the same
 * host and image (a retry delayed on the way, a timeout answered late) is
 * stale and must not undo what the newer one recorded.
 *
 * Usage: under the image's exclusive lock, spm_prepseq_stale() first; if
 * not stale, apply the notice and, only when that succeeded,
 * spm_prepseq_record() — so a retry of a notice that failed is not taken
 * for stale, while a retry of one that was applied is (it is answered as
 * done). seq 0 (a client that does not number its notices) is never stale
 * and never recorded.
 *
 * The last seqs live in this spmd's memory: a new SPM starts without them
 * and takes the next notice of each image as it comes.
 * Thread-safe (one mutex); the table grows with the (host, image) pairs
 * seen.
 */
#ifndef SPM_PREPSEQ_H
#define SPM_PREPSEQ_H

#include <stdbool.h>
#include <stdint.h>

struct spm_prepseq;

struct spm_prepseq *spm_prepseq_new(void);
void spm_prepseq_free(struct spm_prepseq *t); /* NULL-safe */

/* True when a notice numbered seq of host about image is older than, or
 * the same as, the last one recorded. */
bool spm_prepseq_stale(struct spm_prepseq *t, int32_t host, const char *image, uint64_t seq);

/* Records seq as the last applied notice of host about image. */
void spm_prepseq_record(struct spm_prepseq *t, int32_t host, const char *image, uint64_t seq);

#endif
