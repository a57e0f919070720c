/*
 * pk_volchain — the one rule that turns an image's volumes (as their LV
 * tags describe them) into its chain. spmd (ImageChain, deletes) and hsmd
 * (PrepareImage, GetVolumeChain, merges) both use it, so they never
 * disagree about which volume is the leaf.
 *
 * The rule: a volume is *live* unless it is being removed (REMOVING) or an
 * unfinished creation (ILLEGAL at generation 0); it is *orphaned* when a
 * merge took it out of the chain (ILLEGAL and INTERNAL). The leaf is the
 * live, non-orphaned volume of the image that no live, non-orphaned volume
 * names as parent — preferring role LEAF, since during an active commit the
 * old leaf is ILLEGAL but still the top. From the leaf, parents are
 * followed to the base. Pure functions, no I/O.
 */
#ifndef PK_VOLCHAIN_H
#define PK_VOLCHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/meta.h"

struct pk_volchain_item {
	const char *id; /* the volume id (LV name) */
	const struct pk_volume_meta *meta;
};

bool pk_volchain_live(const struct pk_volume_meta *meta);
bool pk_volchain_orphaned(const struct pk_volume_meta *meta);

/*
 * Orders the chain of image among items (every volume of the domain):
 * ret_idx (room for n entries, caller's) receives item indices leaf first,
 * *ret_len their number. leaf_id NULL or "": the image's leaf by the rule;
 * else the chain from that volume (NOT_FOUND if absent, INVALID_ARGUMENT
 * if of another image). NOT_FOUND when the image has no volume; ILLEGAL
 * for two tops, no usable leaf, a missing parent, a parent in another
 * image, a loop. domain is for messages only.
 */
int pk_volchain_build(const struct pk_volchain_item *items, size_t n, const char *domain,
		      const char *image, const char *leaf_id, size_t *ret_idx, size_t *ret_len,
		      struct pk_error *err);

#endif
