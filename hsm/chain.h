/*
 * hsm_chain — an image's chain as metadata says it is and as it is really
 * used, compared (GetVolumeChain). Before anything is merged or deleted,
 * these two must agree (DESIGN: "a chain read from metadata is checked
 * against the chain that qemu/libvirt actually uses").
 *
 *  - metadata chain: hsm/image.h's rule on the domain's LV tags;
 *  - live chain: from the live domain XML when a running VM of this host
 *    has a drive on the image (live_source "libvirt"), else from
 *    `qemu-img info --backing-chain --output=json -U` on the prepared leaf
 *    (live_source "qemu-img"). Elements are volume ids, leaf first; a layer
 *    that is not a volume of the image is reported by its path.
 *
 * Outputs are owned by the caller (hsm_chain_report_release).
 */
#ifndef HSM_CHAIN_H
#define HSM_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "hsm/hsm.h"

struct hsm_chain_report {
	char domain[PK_UUID_BUFLEN];
	char image[PK_UUID_BUFLEN];
	char **metadata; /* leaf first; both NULL-terminated (common/strv.h) */
	size_t nmetadata;
	char **live;
	size_t nlive;
	bool consistent;
	const char *live_source; /* static: "libvirt" or "qemu-img" */
	char **defined;  /* a shut-off VM's definition: its leaf and any <backingStore>
			  * layers it lists (NULL without a VM); the next start opens
			  * these, so they must agree too */
	size_t ndefined;
};

void hsm_chain_report_release(struct hsm_chain_report *rep);

/*
 * vm and drive are optional (NULL/""): with vm, the live chain of that VM's
 * drive (drive given, or the drive on the image); domain and image may then
 * be empty (taken from the drive). Without vm, domain and image are
 * required. Fails with NOT_FOUND for an unknown VM or drive, or an image
 * not prepared here when no VM runs on it; INVALID_ARGUMENT when the
 * drive holds another image.
 */
int hsm_volume_chain(struct hsm *hsm, const char *domain, const char *image, const char *vm,
		     const char *drive, struct hsm_chain_report *ret, struct pk_error *err);

/*
 * The backing chain the qcow2 headers describe, from volume leaf of image
 * down: the prepared links of the image's volumes, each opened by qemu-img
 * with the format of its metadata (hsm/qemu_img.h hsm_qemu_img_chain, whose
 * rules for a header naming anything else apply). *ret: a common/strv.h
 * array of paths (pk_strv_free). NOT_FOUND when leaf is not a volume of
 * the image; IO when qemu-img cannot read a layer (one not prepared here).
 */
int hsm_image_header_chain(struct hsm *hsm, const char *domain, const char *image,
			   const char *leaf, char ***ret, size_t *ret_n, struct pk_error *err);

#endif
