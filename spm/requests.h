/*
 * spm_requests — the deletions this spmd carried out lately, by the
 * client's request id, so a repeat of a DeleteVolume whose answer was lost
 * (the client timed out and asked again) is answered as done instead of
 * NOT_FOUND.
 *
 * Only deletions need it: every other mutating verb leaves its request id
 * on the volume it wrote (tag PK_REQ, common/meta.h) or is idempotent by
 * nature (ExtendVolume), so a repeat is recognised from storage, by any
 * SPM. A deleted volume leaves nothing on storage; this record is in
 * memory, so after a failover the next SPM answers a repeat of a deletion
 * that finished NOT_FOUND (one that was interrupted after its REMOVING mark
 * is finished by recovery and by the repeat itself). docs/SPM.md says so.
 *
 * Bounded: the newest SPM_REQUESTS_MAX deletions. Thread-safe.
 */
#ifndef SPM_REQUESTS_H
#define SPM_REQUESTS_H

#include <stdbool.h>

#define SPM_REQUESTS_MAX 256

struct spm_requests;

struct spm_requests *spm_requests_new(void);
void spm_requests_free(struct spm_requests *rq); /* NULL-safe */

/* Records that request (a UUID; NULL or "": nothing) deleted volume. */
void spm_requests_deleted(struct spm_requests *rq, const char *request, const char *volume);

/* True when request deleted volume (and is still remembered). */
bool spm_requests_did_delete(struct spm_requests *rq, const char *request, const char *volume);

#endif
