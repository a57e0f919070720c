/*
 * spm_volume_reduce (spm/volume.h): gives back the LV space a COW volume
 * no longer needs after a merge. Only an internal volume shrinks: a leaf
 * may still grow under a running guest (the drive monitor would only have
 * to extend it again), and a RAW volume's LV is its data.
 */
#include "spm/volume.h"

#include <errno.h>
#include <inttypes.h>

#include "common/locks.h"
#include "common/log.h"
#include "common/lvm.h"
#include "spm/volume_internal.h"

int spm_volume_reduce(struct spm *spm, const char *domain, const char *image,
		      const char *volume, uint64_t size, struct spm_volume *ret,
		      struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	const struct spm_volume *v = NULL;
	struct pk_lockset set;
	uint64_t want, vg_free = 0;
	int r;

	/* Exclusive on the image: no snapshot or merge of it changes roles meanwhile. */
	r = spm_volume_resize_begin(spm, "reduce_volume", domain, image, PK_LOCK_EXCLUSIVE, volume,
				    size, &set, &list, &vg_free, &v, err);
	if (r < 0) {
		return r;
	}
	if (v->meta.format != PK_VOLUME_COW) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "volume '%s' is RAW: its LV holds its whole capacity and is not reduced",
				 volume);
	} else if (v->meta.role == PK_VOLUME_LEAF) {
		r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
				 "volume '%s' is a leaf: a running guest may still grow it; only an "
				 "internal volume is reduced", volume);
	} else if (v->meta.legality != PK_VOLUME_LEGAL) {
		r = pk_error_set(err, PK_E_ILLEGAL, EINVAL, "volume '%s' is %s, not LEGAL", volume,
				 pk_volume_legality_name(v->meta.legality));
	}
	if (r < 0) {
		goto out;
	}
	want = round_up(size, list.extent_size);
	if (want < v->lv_size) {
		r = spm_role_check(spm, domain, err);
		if (r == 0) {
			r = pk_lvm_lv_reduce(spm->lvm, domain, volume, want, err);
			if (r < 0) {
				spm_volume_cache_invalidate(spm);
			}
		}
		if (r == 0) {
			struct spm_volume shrunk = *v;

			shrunk.lv_size = want;
			spm_volume_cache_update(spm, domain, &shrunk, NULL,
						(int64_t)(v->lv_size - want));
			pk_log_info("volume reduced domain='%s' volume='%s' from=%" PRIu64 " to=%" PRIu64,
				    domain, volume, v->lv_size, want);
		}
	}
	if (r == 0 && ret) {
		*ret = *v;
		if (want < ret->lv_size) {
			ret->lv_size = want;
		}
	}
out:
	spm_volume_list_release(&list);
	spm_volume_mutation_end(&set);
	return r;
}
