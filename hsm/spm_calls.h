/*
 * hsm_spm — every call hsmd makes to the SPM, in one place and in plain C.
 * hsmd never writes LVM metadata itself (hsm/hsm.h): it asks the SPM to
 * extend a volume, to change a volume's metadata and records which images
 * this host prepared. The calls go through hsm->spm (proto/spm_client.h)
 * with settings.spm_timeout_ms.
 *
 * When no SPM address is configured (setting 'spm', hsm->spm NULL), the
 * calls a merge needs fail with UNAVAILABLE; hsm_spm_image_prepared, which
 * is only a protection, succeeds without doing anything.
 *
 * Errors: 0 or -errno with err set from the SPM's answer (its code and
 * message), NOT_SPM when no spmd holds the lease, UNAVAILABLE when none
 * answers. Thread-safe.
 */
#ifndef HSM_SPM_CALLS_H
#define HSM_SPM_CALLS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "hsm/hsm.h"
#include "proto/spm_client.h"

/*
 * Grows volume to hold size bytes (ExtendVolume); *ret_lv_size (may be
 * NULL) receives the LV's new size.
 */
int hsm_spm_volume_extend(struct hsm *hsm, const char *domain, const char *image,
			  const char *volume, uint64_t size, uint64_t *ret_lv_size,
			  struct pk_error *err);

/* Shrinks an internal COW volume to size bytes after a merge (ReduceVolume);
 * *ret_lv_size (may be NULL) receives the LV's new size. */
int hsm_spm_volume_reduce(struct hsm *hsm, const char *domain, const char *image,
			  const char *volume, uint64_t size, uint64_t *ret_lv_size,
			  struct pk_error *err);

/* Changes volume's metadata as u says (UpdateVolumeMeta). */
int hsm_spm_volume_meta_update(struct hsm *hsm, const char *domain, const char *image,
			       const char *volume, const struct pk_spm_meta_update *u,
			       struct pk_error *err);

/*
 * The n changes to volumes of image in one UpdateVolumeMeta, one step for
 * the SPM's readers (pk_spm_client_update_volumes_meta). An SPM older than
 * that call refuses it (INVALID_ARGUMENT): changes without an expected
 * generation then go one call each, in order, as they did before (logged
 * once per call). Idempotent
 * when the changes are (no expected generations): run it again after any
 * failure.
 */
int hsm_spm_volumes_meta_update(struct hsm *hsm, const char *domain, const char *image,
				const struct pk_spm_meta_change *changes, size_t n,
				struct pk_error *err);

/*
 * Tells the SPM that this host prepared (or tore down) an image, so its
 * volumes cannot be deleted under a VM; with volume (may be NULL), only
 * that volume of the image. Each notice is numbered (ImagePrepared seq) so
 * the SPM ignores one overtaken by a newer one. Returns 0 when no spm is
 * configured; otherwise the SPM's error, which the caller acts on.
 */
int hsm_spm_image_prepared(struct hsm *hsm, const char *domain, const char *image,
			   const char *volume, bool prepared, struct pk_error *err);

#endif
