/*
 * After a merge: the base that stays an internal COW volume gives its LV
 * space back (docs/THIN.md, "Reduce after merge"). The EXTENDING step grew
 * it for the worst case (everything the merged layers held); what it holds
 * afterwards is usually much less. Best effort: a failure leaves a larger
 * LV than needed, nothing else, so it is logged and the job stays DONE.
 */
#include "hsm/merge_job.h"

#include <inttypes.h>

#include "common/log.h"
#include "hsm/image.h"
#include "hsm/qemu_img.h"
#include "hsm/spm_calls.h"
#include "hsm/thinp_policy.h"

#define MIB HSM_THINP_MIB

void hsm_merge_reduce_base(struct hsm_merge_job *job)
{
	struct hsm *hsm = job->hsm;
	struct hsm_volume_list list = { 0 };
	const struct hsm_volume *v;
	struct pk_error err = { PK_OK, "" };
	const char *base = hsm_merge_job_target(job);
	uint64_t end = 0, full = 0, want, chunk, lv_size = 0;
	char path[HSM_PATH_MAX];

	/* Only a commit keeps its base internal; an active commit makes it the
	 * leaf (still growing), a pull removes it. */
	if ((job->kind != HSM_MERGE_COMMIT &&
	     !(job->kind == HSM_MERGE_COLD_COMMIT && !job->active_leaf)) ||
	    !hsm->spm) {
		return;
	}
	if (hsm_volumes_read(hsm, job->domain, &list, &err) < 0) {
		goto fail;
	}
	v = hsm_volume_list_find(&list, base);
	if (!v || v->meta.format != PK_VOLUME_COW || v->meta.role != PK_VOLUME_INTERNAL) {
		goto out;
	}
	if (hsm_image_link_path(hsm, job->domain, job->image, base, path, sizeof(path), &err) < 0 ||
	    hsm_qemu_img_image_end(path, &end, &err) < 0 ||
	    hsm_qemu_img_measure_full(v->meta.capacity, &full, &err) < 0) {
		goto fail;
	}
	/* What it holds plus one chunk (a later merge into it need not extend
	 * first), never past the fully allocated size. */
	chunk = hsm->settings.thin.chunk ? hsm->settings.thin.chunk
					 : (uint64_t)HSM_THINP_DEFAULT_CHUNK_MB * MIB;
	want = (end + chunk + MIB - 1) / MIB * MIB;
	if (want > full) {
		want = (full + MIB - 1) / MIB * MIB;
	}
	if (want >= v->lv_size) {
		goto out;
	}
	if (hsm_spm_volume_reduce(hsm, job->domain, job->image, base, want, &lv_size, &err) < 0 ||
	    hsm_volume_refresh(hsm, job->domain, job->image, base, NULL, &err) < 0) {
		goto fail;
	}
	pk_log_info("merge job job='%s': base '%s' reduced from %" PRIu64 " to %" PRIu64
		    " MiB (data end %" PRIu64 " MiB)", job->id, base, v->lv_size / MIB,
		    lv_size / MIB, end / MIB);
	goto out;
fail:
	pk_log_warn("merge job job='%s': the base '%s' keeps its LV size (reduce not done): %s",
		    job->id, base, err.message);
out:
	hsm_volume_list_release(&list);
}
