/* spm_auto: the lease contender thread (see auto.h). */
#include "spm/auto.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "spm/spm.h"

struct spm_auto {
	struct spm *spm;
	unsigned interval_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* guarded by lock */
	pthread_t thread;
};

/* The domain to contend for: the one this spmd serves, or "" when unknown. */
static void auto_domain(struct spm *spm, char *buf, size_t size)
{
	const char *d;

	pthread_mutex_lock(&spm->role_lock);
	snprintf(buf, size, "%s", spm->domain);
	pthread_mutex_unlock(&spm->role_lock);
	if (!buf[0] && (d = pk_config_str(spm->cfg, "domain"))) {
		snprintf(buf, size, "%s", d);
	}
}

/* One round: ask for the lease when nobody here holds or takes it. */
static void auto_round(struct spm_auto *a, unsigned *failures)
{
	struct spm *spm = a->spm;
	struct spm_role_status st;
	struct pk_error err = { PK_OK, "" };
	char domain[PK_UUID_BUFLEN];
	uint64_t t0;

	auto_domain(spm, domain, sizeof(domain));
	if (!domain[0] || pk_clock_monotonic_ms() < atomic_load(&spm->auto_hold_until_ms)) {
		return;
	}
	if (spm_role_status(spm, domain, &st, &err) < 0 ||
	    (st.state != SPM_ROLE_FREE && st.state != SPM_ROLE_OTHER)) {
		return;
	}
	t0 = pk_clock_monotonic_ms();
	if (spm_role_start(spm, domain, &st, &err) == 0) {
		pk_log_info("spm_auto: took the SPM lease of domain '%s' in %llu ms (after %u refusals)",
			    domain, (unsigned long long)(pk_clock_monotonic_ms() - t0), *failures);
		*failures = 0;
		return;
	}
	/* Refused while another host holds it: the normal case, quietly. */
	if ((*failures)++ == 0 || err.code != PK_E_NOT_SPM) {
		pk_log_debug("spm_auto: SPM lease of domain '%s' not taken: %s", domain, err.message);
	}
}

static void *auto_main(void *arg)
{
	struct spm_auto *a = arg;
	unsigned failures = 0;

	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		struct timespec until;

		pthread_mutex_unlock(&a->lock);
		auto_round(a, &failures);
		pthread_mutex_lock(&a->lock);
		pk_clock_deadline(CLOCK_MONOTONIC, a->interval_ms, &until);
		while (!a->stop && pthread_cond_timedwait(&a->cond, &a->lock, &until) != ETIMEDOUT) {
		}
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int spm_auto_start(struct spm *spm, unsigned interval_ms, struct spm_auto **ret,
		   struct pk_error *err)
{
	struct spm_auto *a = pk_xcalloc(1, sizeof(*a));
	pthread_condattr_t ca;
	int r;

	a->spm = spm;
	a->interval_ms = interval_ms ? interval_ms : 500;
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&a->thread, NULL, auto_main, a);
	if (r != 0) {
		pthread_cond_destroy(&a->cond);
		pthread_mutex_destroy(&a->lock);
		free(a);
		return pk_error_set(err, PK_E_INTERNAL, r, "cannot start the spm_auto thread");
	}
	pk_log_info("spm_auto on: contending for the SPM lease every %u ms while nobody holds it",
		    a->interval_ms);
	*ret = a;
	return 0;
}

void spm_auto_stop(struct spm_auto *a)
{
	if (!a) {
		return;
	}
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
