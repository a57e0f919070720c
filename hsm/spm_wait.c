#include "hsm/spm_wait.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

void hsm_spm_wait_init(struct hsm_spm_wait *w, const struct hsm *hsm)
{
	int limit_s = hsm->settings.spm_wait_limit_s;

	memset(w, 0, sizeof(*w));
	w->limit_ms = (uint64_t)(limit_s > 0 ? limit_s : HSM_SPM_WAIT_LIMIT_S_DEFAULT) * 1000;
	w->backoff_ms = HSM_SPM_WAIT_BACKOFF_MIN_MS;
}

bool hsm_spm_error_waits(const struct pk_error *err)
{
	switch (err->code) {
	case PK_E_UNAVAILABLE:
	case PK_E_TIMEOUT:
	case PK_E_NOT_SPM:
	case PK_E_BUSY:
		return true;
	default:
		return false;
	}
}

void hsm_spm_wait_reset(struct hsm_spm_wait *w)
{
	w->since_ms = 0;
	w->since_mono_ms = 0;
	w->attempts = 0;
	w->backoff_ms = HSM_SPM_WAIT_BACKOFF_MIN_MS;
	w->last = (struct pk_error){ PK_OK, "" };
}

bool hsm_spm_wait_waiting(const struct hsm_spm_wait *w)
{
	return w->since_ms != 0;
}

/* "2026-12-04 06:31:07 UTC" */
static void format_time(uint64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
		snprintf(buf, size, "%llu ms", (unsigned long long)ms);
	}
}

enum hsm_spm_wait_next hsm_spm_wait_next(struct hsm_spm_wait *w, int r, struct pk_error *err,
					 unsigned *ret_sleep_ms)
{
	uint64_t now = pk_clock_monotonic_ms();
	char since[64];

	if (r == 0 || !hsm_spm_error_waits(err)) {
		hsm_spm_wait_reset(w);
		return HSM_SPM_WAIT_DONE;
	}
	if (!w->since_ms) {
		w->since_ms = pk_clock_realtime_ms();
		w->since_mono_ms = now;
		w->backoff_ms = HSM_SPM_WAIT_BACKOFF_MIN_MS;
	}
	w->attempts++;
	w->last = *err;
	if (now - w->since_mono_ms >= w->limit_ms) {
		format_time(w->since_ms, since, sizeof(since));
		pk_error_set(err, PK_E_TIMEOUT, ETIMEDOUT,
			     "no SPM answered since %s (%u attempts, the limit is %llu s, setting "
			     "'spm_wait_limit'): %s", since, w->attempts,
			     (unsigned long long)(w->limit_ms / 1000), w->last.message);
		return HSM_SPM_WAIT_EXPIRED;
	}
	*ret_sleep_ms = w->backoff_ms;
	w->backoff_ms = w->backoff_ms * 2 < HSM_SPM_WAIT_BACKOFF_MAX_MS ? w->backoff_ms * 2
									: HSM_SPM_WAIT_BACKOFF_MAX_MS;
	return HSM_SPM_WAIT_AGAIN;
}

void hsm_spm_wait_reason(const struct hsm_spm_wait *w, char *buf, size_t size)
{
	char since[64];

	if (!size) {
		return;
	}
	if (!w->since_ms) {
		buf[0] = '\0';
		return;
	}
	format_time(w->since_ms, since, sizeof(since));
	snprintf(buf, size, "waiting for the SPM since %s (%u attempt%s): %s", since, w->attempts,
		 w->attempts == 1 ? "" : "s", w->last.message);
}

int hsm_spm_call_waiting(struct hsm *hsm, hsm_spm_call_fn *call, hsm_spm_sleep_fn *sleep,
			 void *ctx, struct pk_error *err)
{
	struct hsm_spm_wait w;
	int r;

	hsm_spm_wait_init(&w, hsm);
	for (;;) {
		unsigned ms = 0;

		pk_error_clear(err);
		r = call(ctx, err);
		switch (hsm_spm_wait_next(&w, r, err, &ms)) {
		case HSM_SPM_WAIT_DONE:
			return r;
		case HSM_SPM_WAIT_EXPIRED:
			return -ETIMEDOUT;
		case HSM_SPM_WAIT_AGAIN:
			break;
		}
		if (sleep(ctx, ms, &w)) {
			return pk_error_set(err, PK_E_ABORTED, ECANCELED,
					    "stopped while waiting for the SPM: %s", w.last.message);
		}
	}
}
