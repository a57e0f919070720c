/*
 * spm_volume — volumes and images of a block storage domain, as the SPM
 * writes them. A volume is an LV named by its UUID in the domain's VG; its
 * metadata is the LV's tags (common/meta.h); an image is the set of
 * volumes tagged with its id, forming one chain base <- ... <- leaf.
 *
 * Every function validates its input first (ids, sizes, the domain) and
 * changes nothing on storage when it fails for a reason it can name.
 * Mutating functions take the resource locks (domain shared > image >
 * volume), check the SPM lease right before each LVM write, and are
 * restartable:
 *  - create: the LV is made in one lvcreate with all its tags, ILLEGAL at
 *    generation 0 ("not finished"); a COW volume then gets its qcow2
 *    header; one lvchange makes it LEGAL at generation 1. A crash leaves
 *    an ILLEGAL generation-0 LV, which recovery removes (rolls back).
 *  - delete: one lvchange marks the LV REMOVING (after the checks), then
 *    optional zeroing, then lvremove. A crash after the mark is rolled
 *    forward by recovery (the removal completes); before it, nothing
 *    happened.
 *  - extend and metadata updates are single LVM commits.
 *
 * Prepared images: hsmd reports PrepareImage/TeardownImage through
 * ImagePrepared (one notice per volume of the chain it prepares, in order:
 * spm/prepseq.h); the SPM records it as tags PK_PREP=<host id> on the
 * volumes. DeleteVolume refuses, unless forced, any volume that is a LEAF
 * or carries a prepared tag, whatever its legality (IN_USE): a leaf is what
 * a VM may be started on next, and an ILLEGAL volume may still be open in
 * a running VM (a leaf is marked ILLEGAL before a pivot). A merged-away
 * layer is INTERNAL and torn down (untagged) by the merge's CLEANUP, so the
 * engine can delete it. A host that died with images prepared leaves its
 * tags behind: `force` is the operator's way past them.
 *
 * Implemented by spm/volume.c (the view and the reads), spm/volume_create.c
 * and spm/volume_mutate.c (the other changes); spm/volume_internal.h is what
 * they share.
 */
#ifndef SPM_VOLUME_H
#define SPM_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/meta.h"
#include "spm/spm.h"

#define SPM_VOLUME_MAX_HOSTS 8

struct spm_volume {
	char id[PK_UUID_BUFLEN];
	struct pk_volume_meta meta;
	uint64_t lv_size;
	size_t nprepared;
	int32_t prepared[SPM_VOLUME_MAX_HOSTS]; /* hosts that have it prepared */
};

/* The volumes of a domain (heap array owned by the list). */
struct spm_volume_list {
	struct spm_volume *v;
	size_t n;
	uint64_t extent_size;
};

void spm_volume_list_release(struct spm_volume_list *list);
const struct spm_volume *spm_volume_list_find(const struct spm_volume_list *list,
					      const char *id);

/* Reads every volume of domain (LVs whose tags do not decode are skipped and logged). */
int spm_volumes_load(struct spm *spm, const char *domain, struct spm_volume_list *ret,
		     struct pk_error *err);

struct spm_volume_create {
	const char *domain;
	const char *image;
	const char *volume; /* "" or NULL: generated */
	const char *parent; /* "" or NULL: a base volume */
	enum pk_volume_format format;
	uint64_t capacity;     /* bytes; 0 for a child: the parent's */
	uint64_t initial_size; /* LV bytes; 0: derived */
	const char *description;
};

int spm_volume_create(struct spm *spm, const struct spm_volume_create *args,
		      struct spm_volume *ret, struct pk_error *err);

/*
 * request (NULL or "": none) is the client's request id: the REMOVING mark
 * carries it (PK_REQ), and a repeat of a deletion this spmd finished is
 * answered 0 instead of NOT_FOUND (spm/requests.h).
 */
int spm_volume_delete(struct spm *spm, const char *domain, const char *image,
		      const char *volume, bool force, bool post_zero, const char *request,
		      struct pk_error *err);

/* Grows the LV to at least size bytes; never shrinks (a smaller size is a no-op). */
int spm_volume_extend(struct spm *spm, const char *domain, const char *image,
		      const char *volume, uint64_t size, struct spm_volume *ret,
		      struct pk_error *err);

/*
 * Shrinks an internal COW volume's LV to size bytes (rounded up to
 * extents) after a merge left it holding less; never grows (a larger size
 * is a no-op). CONFLICT for a leaf, INVALID_ARGUMENT for RAW, ILLEGAL when
 * not LEGAL. The caller (the hsmd that ran the merge, which can read the
 * image) says what size still holds all the data.
 */
int spm_volume_reduce(struct spm *spm, const char *domain, const char *image,
		      const char *volume, uint64_t size, struct spm_volume *ret,
		      struct pk_error *err);

int spm_volume_info(struct spm *spm, const char *domain, const char *image,
		    const char *volume, struct spm_volume *ret, struct pk_error *err);

struct spm_volume_update {
	bool set_parent;
	const char *parent;            /* with set_parent: "" = no parent */
	enum pk_volume_role role;      /* 0: unchanged */
	enum pk_volume_legality legality; /* 0: unchanged; REMOVING is refused */
	uint64_t expected_generation;  /* 0: any */
	/*
	 * The client's request id (NULL or "": none), written with the change
	 * (PK_REQ). A volume that carries it already was written by this
	 * request: a repeat answers it as it is, with no generation check.
	 */
	const char *request;
};

int spm_volume_update(struct spm *spm, const char *domain, const char *image,
		      const char *volume, const struct spm_volume_update *u,
		      struct spm_volume *ret, struct pk_error *err);

/*
 * Several metadata changes to volumes of one image, as one step for
 * readers: every change is checked first (ids, generations, the result),
 * then written in order, one LVM commit per volume, all under the image's
 * lock held exclusively. spm_image_chain takes that lock shared, so it
 * answers the image before or after, never between two writes. Changes
 * that leave a volume as it is write nothing, so a retry of a partly
 * applied call finishes it. A crash (or a failed write) between two
 * commits leaves the first ones on storage: the caller must be able to
 * run the same call again, and readers of storage must allow for it.
 * ret (may be NULL) receives n volumes after the changes, in order.
 */
#define SPM_VOLUME_CHANGES_MAX 130 /* a merge of hsmd's longest chain (128) and two more */

struct spm_volume_change {
	const char *volume;
	struct spm_volume_update u;
};

int spm_volumes_update(struct spm *spm, const char *domain, const char *image,
		       const struct spm_volume_change *changes, size_t n,
		       struct spm_volume *ret, struct pk_error *err);

/*
 * An image's chain from metadata: leaf first; volumes outside it are
 * orphans. Read under the image's lock (shared): never half of a
 * spm_volumes_update.
 */
struct spm_chain {
	struct spm_volume *chain;
	size_t n;
	struct spm_volume *orphans;
	size_t norphans;
};

void spm_chain_release(struct spm_chain *c);
int spm_image_chain(struct spm *spm, const char *domain, const char *image,
		    struct spm_chain *ret, struct pk_error *err);

int spm_image_delete(struct spm *spm, const char *domain, const char *image, bool force,
		     struct pk_error *err);

/*
 * Records (prepared) or clears the preparation of an image (or one volume)
 * on host. seq orders the notices of a host about an image (spm/prepseq.h):
 * a stale one changes nothing and answers 0; 0 is not numbered.
 */
int spm_image_prepared(struct spm *spm, const char *domain, const char *image,
		       const char *volume, int32_t host_id, bool prepared, uint64_t seq,
		       struct pk_error *err);

/*
 * The SPM's in-memory view of its volumes (see spm/volume.c). init/free
 * from spm_init/spm_release; invalidate whenever the SPM role changes. The
 * view is tagged with the role generation it was read under and is never
 * used under another one.
 */
void spm_volume_cache_init(struct spm *spm);
void spm_volume_cache_free(struct spm *spm);
void spm_volume_cache_invalidate(struct spm *spm);

struct spm_recovery {
	unsigned removed;     /* REMOVING volumes whose removal was completed */
	unsigned rolled_back; /* unfinished creations removed */
	unsigned skipped;     /* found finished (or gone) when read again under its lock */
};

/*
 * Finishes what crashed SPMs left half done (called when becoming SPM,
 * while RECOVERING). Each candidate is read again under its image and
 * volume locks before anything is done to it: a CreateVolume or
 * DeleteVolume that finished meanwhile is left as it is.
 */
int spm_volumes_recover(struct spm *spm, const char *domain, struct spm_recovery *ret,
			struct pk_error *err);

#endif
