/* Thin provisioning policy: see thinp_policy.h. */
#include "hsm/thinp_policy.h"

#include <errno.h>

void hsm_thinp_policy_init(struct hsm_thinp_policy *p)
{
	*p = (struct hsm_thinp_policy){
		.monitor = true,
		.chunk = (uint64_t)HSM_THINP_DEFAULT_CHUNK_MB * HSM_THINP_MIB,
		.free_mb = 0,
		.free_pct = HSM_THINP_DEFAULT_FREE_PCT,
		.check_seconds = HSM_THINP_DEFAULT_CHECK_SECONDS,
		.workers = HSM_THINP_DEFAULT_WORKERS,
		.retry_max_ms = HSM_THINP_DEFAULT_RETRY_MAX_MS,
	};
}

int hsm_thinp_policy_check(const struct hsm_thinp_policy *p)
{
	if (p->chunk == 0 || p->free_pct > 100 || p->workers == 0 || p->check_seconds == 0) {
		return -EINVAL;
	}
	if (p->free_mb != 0 && p->free_mb * HSM_THINP_MIB >= p->chunk) {
		return -EINVAL;
	}
	return 0;
}

uint64_t hsm_thinp_free_trigger(const struct hsm_thinp_policy *p)
{
	if (p->free_mb != 0) {
		return p->free_mb * HSM_THINP_MIB;
	}
	return p->chunk * p->free_pct / 100;
}

uint64_t hsm_thinp_threshold(const struct hsm_thinp_policy *p, uint64_t lv_size,
			     uint64_t max_size, bool *ret_armed)
{
	uint64_t trig = hsm_thinp_free_trigger(p);

	*ret_armed = lv_size < max_size;
	if (!*ret_armed) {
		return 0;
	}
	return lv_size > trig ? lv_size - trig : 0;
}

bool hsm_thinp_needs_extend(const struct hsm_thinp_policy *p, uint64_t alloc,
			    uint64_t lv_size, uint64_t max_size)
{
	bool armed;
	uint64_t thr = hsm_thinp_threshold(p, lv_size, max_size, &armed);

	return armed && alloc >= thr;
}

static uint64_t round_up(uint64_t v, uint64_t unit)
{
	if (unit == 0 || v % unit == 0) {
		return v;
	}
	return v - v % unit + unit;
}

uint64_t hsm_thinp_next_size(const struct hsm_thinp_policy *p, uint64_t alloc,
			     uint64_t lv_size, uint64_t max_size, uint64_t extent)
{
	uint64_t cap = round_up(max_size, extent);
	uint64_t want = lv_size + p->chunk;
	uint64_t floor = alloc + hsm_thinp_free_trigger(p) + 1;

	if (lv_size >= cap) {
		return lv_size;
	}
	if (want < floor) {
		want = floor;
	}
	want = round_up(want, extent);
	return want > cap ? cap : want;
}

unsigned hsm_thinp_retry_delay_ms(const struct hsm_thinp_policy *p, unsigned attempt)
{
	unsigned d = 50;

	for (unsigned i = 1; i < attempt && d < p->retry_max_ms; i++) {
		d *= 2;
	}
	return d > p->retry_max_ms ? p->retry_max_ms : d;
}
