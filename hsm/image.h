/*
 * hsm_image — images on this host: their chains read from LVM metadata,
 * and their preparation (LVs activated, links published for libvirt).
 *
 * Metadata: hsmd reads the domain's LV tags (common/meta.h) with one LVM
 * report and builds an image's chain the way the SPM does: the leaf is the
 * live volume (not REMOVING, not an unfinished creation) that no live,
 * non-orphaned volume names as parent, preferring role LEAF; then parents
 * are followed down to the base. It never writes metadata.
 *
 * Preparation: for a chain leaf..base, every LV is activated through the
 * activation backend, given to qemu's user (libvirt does not relabel our
 * disks) and published as the symlink
 *     <run_dir>/storage/<domain>/<image>/<volume> -> activated LV path.
 * libvirt and qemu open the leaf by this link and find each parent beside
 * it (qcow2 backing names are the parent's volume id, relative). The set of
 * links IS the record of what is prepared here: it survives hsmd restarts
 * and is what TeardownImage undoes.
 *
 * Volumes of one image are changed under the lock "image/<domain>/<image>".
 * Outputs (ret_*) are written only on success; chains are owned by the
 * caller (hsm_chain_release).
 */
#ifndef HSM_IMAGE_H
#define HSM_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/meta.h"
#include "common/uuid.h"
#include "hsm/hsm.h"

struct hsm_volume {
	char id[PK_UUID_BUFLEN];
	struct pk_volume_meta meta;
	uint64_t lv_size;
};

/* Every volume of a domain whose tags decode (others are skipped). */
struct hsm_volume_list {
	struct hsm_volume *v; /* heap */
	size_t n;
};

/* A chain, leaf first (copies of the list entries). */
struct hsm_chain {
	struct hsm_volume *v; /* heap */
	size_t n;
};

void hsm_volume_list_release(struct hsm_volume_list *list);
const struct hsm_volume *hsm_volume_list_find(const struct hsm_volume_list *list,
					      const char *id);
void hsm_chain_release(struct hsm_chain *chain);

/* Reads the volumes of domain (the VG named by the domain id). NOT_FOUND
 * when the domain's VG is not visible on this host. */
int hsm_volumes_read(struct hsm *hsm, const char *domain, struct hsm_volume_list *ret,
		     struct pk_error *err);

/*
 * The chain of image in list. leaf NULL or "": the image's leaf by the rule
 * above; else the chain starting at that volume, which must belong to the
 * image (INVALID_ARGUMENT when it belongs to another, NOT_FOUND when it
 * does not exist). ILLEGAL for a broken chain (missing parent, a parent in
 * another image, a loop, two tops). Pure.
 */
int hsm_chain_build(const struct hsm_volume_list *list, const char *domain, const char *image,
		    const char *leaf, struct hsm_chain *ret, struct pk_error *err);

/* hsm_volumes_read + hsm_chain_build. */
int hsm_image_chain_read(struct hsm *hsm, const char *domain, const char *image,
			 const char *leaf, struct hsm_chain *ret, struct pk_error *err);

/*
 * Prepares the chain ending at volume (NULL/"": the image's leaf): every
 * volume must be LEGAL (else ILLEGAL, nothing done). Links of volumes of
 * the image prepared here before that are not in this chain are removed
 * and their LVs deactivated (that is how the engine drops a new leaf after
 * a failed snapshot), unless a VM on this host still uses them (IN_USE,
 * nothing done). Before activating anything, the SPM records every volume
 * of the chain as prepared here (ImagePrepared, in order); when it cannot
 * (no SPM answers, NOT_SPM...), the prepare fails with the SPM's error and
 * nothing is activated. Idempotent. *ret: the chain, leaf first.
 */
int hsm_image_prepare(struct hsm *hsm, const char *domain, const char *image,
		      const char *volume, struct hsm_chain *ret, struct pk_error *err);

/*
 * Removes the image's links and deactivates its LVs. Refused with IN_USE
 * while a VM of this host has a drive on the image, unless force (then LVs
 * still open stay active, with a warning). An image not prepared here
 * succeeds (nothing to do). Tells the SPM afterwards (best effort: a tag
 * left behind only protects the volumes; the next teardown clears it).
 */
int hsm_image_teardown(struct hsm *hsm, const char *domain, const char *image, bool force,
		       struct pk_error *err);

/* Reloads a prepared volume's LV after the SPM extended it; *ret_lv_size
 * (may be NULL) gets its LV size from metadata. */
int hsm_volume_refresh(struct hsm *hsm, const char *domain, const char *image,
		       const char *volume, uint64_t *ret_lv_size, struct pk_error *err);

/* The link path of a volume, <run_dir>/storage/<domain>/<image>/<volume>. */
int hsm_image_link_path(const struct hsm *hsm, const char *domain, const char *image,
			const char *volume, char *buf, size_t size, struct pk_error *err);

/*
 * Checks that volume is prepared here and reachable: its link exists,
 * points at the LV's activation path, and that path exists. NOT_FOUND
 * ("not prepared on this host") or UNAVAILABLE (the LV is gone). *ret_block
 * (may be NULL): the LV is a block device.
 */
int hsm_image_volume_ready(struct hsm *hsm, const char *domain, const char *image,
			   const char *volume, bool *ret_block, struct pk_error *err);

/* True when at least one volume of the image is linked here. */
bool hsm_image_is_prepared(const struct hsm *hsm, const char *domain, const char *image);

#endif
