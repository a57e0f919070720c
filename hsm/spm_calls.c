#include "hsm/spm_calls.h"

#include <errno.h>

#include "common/clock.h"
#include "common/log.h"

/* The merge calls cannot do without an SPM; say which setting is missing. */
static int spm_required(struct hsm *hsm, struct pk_error *err)
{
	if (!hsm->spm) {
		return pk_error_set(err, PK_E_UNAVAILABLE, ENOTCONN,
				    "no SPM address is configured on this host (setting 'spm')");
	}
	return 0;
}

int hsm_spm_volume_extend(struct hsm *hsm, const char *domain, const char *image,
			  const char *volume, uint64_t size, uint64_t *ret_lv_size,
			  struct pk_error *err)
{
	int r = spm_required(hsm, err);

	if (r < 0) {
		return r;
	}
	return pk_spm_client_extend_volume(hsm->spm, domain, image, volume, size, ret_lv_size,
					   hsm->settings.spm_timeout_ms, err);
}

int hsm_spm_volume_reduce(struct hsm *hsm, const char *domain, const char *image,
			  const char *volume, uint64_t size, uint64_t *ret_lv_size,
			  struct pk_error *err)
{
	int r = spm_required(hsm, err);

	if (r < 0) {
		return r;
	}
	return pk_spm_client_reduce_volume(hsm->spm, domain, image, volume, size, ret_lv_size,
					   hsm->settings.spm_timeout_ms, err);
}

int hsm_spm_volume_meta_update(struct hsm *hsm, const char *domain, const char *image,
			       const char *volume, const struct pk_spm_meta_update *u,
			       struct pk_error *err)
{
	int r = spm_required(hsm, err);

	if (r < 0) {
		return r;
	}
	return pk_spm_client_update_volume_meta(hsm->spm, domain, image, volume, u,
						hsm->settings.spm_timeout_ms, err);
}

int hsm_spm_volumes_meta_update(struct hsm *hsm, const char *domain, const char *image,
				const struct pk_spm_meta_change *changes, size_t n,
				struct pk_error *err)
{
	int r = spm_required(hsm, err);

	if (r < 0) {
		return r;
	}
	r = pk_spm_client_update_volumes_meta(hsm->spm, domain, image, changes, n,
					      hsm->settings.spm_timeout_ms, err);
	if (r == 0 || err->code != PK_E_INVALID_ARGUMENT) {
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		if (changes[i].expected_generation) {
			return r; /* single calls cannot carry it */
		}
	}
	pk_log_warn("the SPM refused %zu metadata changes in one call (%s); an older spmd? "
		    "sending them one by one domain='%s' image='%s'", n, err->message, domain,
		    image);
	for (size_t i = 0; i < n; i++) {
		pk_error_clear(err);
		r = hsm_spm_volume_meta_update(hsm, domain, image, changes[i].volume,
					       &changes[i].u, err);
		if (r < 0) {
			break;
		}
	}
	return r;
}

int hsm_spm_image_prepared(struct hsm *hsm, const char *domain, const char *image,
			   const char *volume, bool prepared, struct pk_error *err)
{
	if (!hsm->spm) {
		return 0;
	}
	/* Wall-clock microseconds: notices about one image are sent one after
	 * another under its lock, each a round trip apart, and a restarted
	 * hsmd goes on counting up. */
	return pk_spm_client_image_prepared(hsm->spm, domain, image, volume, hsm->info.host_id,
					    prepared, pk_clock_realtime_us(),
					    hsm->settings.spm_timeout_ms, err);
}
