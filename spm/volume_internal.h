/*
 * spm_volume internals: what the files implementing spm/volume.h share.
 * Include only from spm/volume*.c; everyone else uses spm/volume.h.
 *
 *  - spm/volume.c holds the SPM's view of its domain's volumes (the cache
 *    behind spm_volume_cache_*) and the reads: load, find, info, chain.
 *  - spm/volume_create.c creates volumes.
 *  - spm/volume_mutate.c holds the common frame of a mutation (validation,
 *    lease, locks, metadata writes) and the other changes: delete, extend,
 *    metadata update, image delete, image preparation, recovery.
 */
#ifndef SPM_VOLUME_INTERNAL_H
#define SPM_VOLUME_INTERNAL_H

#include <stdint.h>

#include "common/error.h"
#include "common/locks.h"
#include "common/meta.h"
#include "spm/spm.h"
#include "spm/volume.h"

/* Tag of a volume prepared on a host: PK_PREP=<host id>. */
#define PREP_TAG_PREFIX "PK_PREP="
#define MIB ((uint64_t)1024 * 1024)

static inline uint64_t round_up(uint64_t v, uint64_t to)
{
	return to ? (v + to - 1) / to * to : v;
}

/* ---- the view (spm/volume.c) ------------------------------------------------ */

/*
 * The volumes for a mutation: from the SPM's view, or read (and kept) when
 * there is none. The caller holds the lease and its locks.
 */
int spm_volumes_for_mutation(struct spm *spm, const char *domain, struct spm_volume_list *ret,
			     uint64_t *ret_free, struct pk_error *err);

/* Reads one volume from storage (never the view); NOT_FOUND when it is gone. */
int spm_volume_read(struct spm *spm, const char *domain, const char *id, struct spm_volume *ret,
		    struct pk_error *err);

/* Applies one of our own successful changes: add/replace v, or remove id. */
void spm_volume_cache_update(struct spm *spm, const char *domain, const struct spm_volume *v,
			     const char *removed_id, int64_t free_delta);

/* Finds volume in list, in image; NOT_FOUND/INVALID_ARGUMENT otherwise. */
int spm_volume_find_in_image(struct spm_volume_list *list, const char *domain, const char *image,
			     const char *volume, const struct spm_volume **ret,
			     struct pk_error *err);

/* ---- the frame of a mutation (spm/volume_mutate.c) --------------------------- */

/*
 * The common start of a mutation: valid ids, our domain, the SPM lease
 * (and the role generation pinned, spm_role_mutation_begin), the locks,
 * then the domain's volumes as they are now. On failure nothing is held;
 * on success the caller releases list and ends with spm_volume_mutation_end.
 */
int spm_volume_mutation_begin(struct spm *spm, const char *what, const char *domain,
			      const char *image, enum pk_lock_mode image_mode, const char *volume,
			      struct pk_lockset *set, struct spm_volume_list *list,
			      uint64_t *ret_free, struct pk_error *err);

/*
 * The start of an extend or reduce to size bytes: size checked (a positive
 * multiple of 512 below 8 EiB), spm_volume_mutation_begin, then the volume found in its
 * image (*ret_v points into list). On failure nothing is held.
 */
int spm_volume_resize_begin(struct spm *spm, const char *what, const char *domain,
			    const char *image, enum pk_lock_mode image_mode, const char *volume,
			    uint64_t size, struct pk_lockset *set, struct spm_volume_list *list,
			    uint64_t *ret_free, const struct spm_volume **ret_v,
			    struct pk_error *err);

/* The end of a mutation begun by spm_volume_mutation_begin: releases set, unpins the role. */
void spm_volume_mutation_end(struct pk_lockset *set);

/*
 * Tag change on one LV, under the lease; keeps the SPM's view in step.
 * cur is the volume as on storage (its meta decoded from storage). The
 * volume's PK_REQ becomes request (NULL or "": none), whatever next says.
 */
int spm_volume_write_meta(struct spm *spm, const char *domain, const struct spm_volume *cur,
			  const struct pk_volume_meta *next, const char *request,
			  struct pk_error *err);

#endif
