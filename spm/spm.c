#include "spm/spm.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/activation.h"
#include "common/clock.h"
#include "common/locks.h"
#include "common/log.h"
#include "common/lvm.h"
#include "common/meta.h"
#include "common/statefile.h"
#include "common/storage.h"
#include "common/xalloc.h"
#include "spm/lease.h"
#include "spm/tasks.h"
#include "spm/volume.h"

#define SPM_LOCK_TIMEOUT_MS 10000
#define SPM_JOIN_TIMEOUT_MS 120000

/* Indexed by enum spm_lock_ns: the order locks are taken in. */
static const char *const spm_lock_ns_names[] = { "domain", "image", "volume" };

int spm_init(struct spm *spm, const struct pk_config *cfg, struct pk_error *err)
{
	struct pk_storage_config sc = { 0 };
	char conf_dir[PATH_MAX];
	const char *domain = pk_config_str(cfg, "domain");
	const char *sanlock_dir = pk_config_str(cfg, "sanlock_run_dir");
	char tasks_dir[PATH_MAX];
	int r;

	memset(spm, 0, sizeof(*spm));
	spm->cfg = cfg;
	spm->info.role = "spm";
	spm->info.host_id = (int32_t)pk_config_int(cfg, "host_id");
	spm->info.start_ms = pk_clock_monotonic_ms();
	spm->info.activation = pk_config_str(cfg, "activation");
	spm->lock_timeout_ms = SPM_LOCK_TIMEOUT_MS;
	spm->role = SPM_ROLE_FREE;
	pthread_mutex_init(&spm->role_lock, NULL);
	pthread_mutex_init(&spm->async_lock, NULL);
	pthread_cond_init(&spm->async_done, NULL);
	if (domain) {
		r = pk_uuid_check("setting 'domain'", domain, err);
		if (r < 0) {
			return r;
		}
		snprintf(spm->domain, sizeof(spm->domain), "%s", domain);
	}
	if (sanlock_dir) {
		/* Before any thread: the sanlock client library reads it. */
		setenv("SANLOCK_RUN_DIR", sanlock_dir, 1);
	}
	snprintf(conf_dir, sizeof(conf_dir), "%s/lvm-spm", pk_config_str(cfg, "run_dir"));
	sc.devices = pk_config_str(cfg, "lvm_devices");
	sc.activation = pk_config_str(cfg, "activation");
	sc.lvmap_dir = pk_config_str(cfg, "lvmap_dir");
	sc.conf_dir = conf_dir;
	r = pk_storage_open(&sc, &spm->lvm, &spm->act, err);
	if (r < 0) {
		return r;
	}
	snprintf(tasks_dir, sizeof(tasks_dir), "%s/spm-tasks", pk_config_str(cfg, "state_dir"));
	r = spm_tasks_new(tasks_dir, &spm->tasks, err);
	if (r < 0) {
		return r;
	}
	spm->locks = pk_locks_new(spm_lock_ns_names,
				  sizeof(spm_lock_ns_names) / sizeof(spm_lock_ns_names[0]));
	spm_volume_cache_init(spm);
	return 0;
}

void spm_release(struct spm *spm)
{
	if (spm->lease) {
		struct pk_error err;
		if (spm_lease_release(spm->lease, &err) < 0) {
			pk_log_warn("releasing the SPM lease failed: %s", err.message);
		}
		spm_lease_free(spm->lease);
		spm->lease = NULL;
	}
	spm_volume_cache_free(spm);
	pk_locks_free(spm->locks);
	spm_tasks_free(spm->tasks);
	pk_activation_free(spm->act);
	pk_lvm_free(spm->lvm);
	pthread_mutex_destroy(&spm->role_lock);
	pthread_mutex_destroy(&spm->async_lock);
	pthread_cond_destroy(&spm->async_done);
}

int spm_lv_activate(struct spm *spm, const char *vg, const char *lv, char *path, size_t size,
		    struct pk_error *err)
{
	int r = pk_activation_activate(spm->act, vg, lv, err);

	if (r == 0) {
		r = pk_activation_path(spm->act, vg, lv, path, size, err);
	}
	return r;
}

int spm_lv_deactivate(struct spm *spm, const char *vg, const char *lv, struct pk_error *err)
{
	struct pk_error local;
	int r = pk_activation_deactivate(spm->act, vg, lv, err ? err : &local);

	if (r < 0 && !err) {
		pk_log_warn("cannot deactivate vg='%s' lv='%s': %s", vg, lv, local.message);
	}
	return err ? r : 0;
}

int spm_domain_check(struct spm *spm, const char *domain, struct pk_error *err)
{
	char served[PK_UUID_BUFLEN];
	int r = pk_uuid_check("domain_id", domain, err);

	if (r < 0) {
		return r;
	}
	pthread_mutex_lock(&spm->role_lock);
	snprintf(served, sizeof(served), "%s", spm->domain);
	pthread_mutex_unlock(&spm->role_lock);
	if (served[0] && strcmp(served, domain) != 0) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				    "this spmd serves storage domain '%s', not '%s'", served, domain);
	}
	return 0;
}

/* ---- the SPM role --------------------------------------------------------- */

/* Sets up spm->lease for domain. Called with role_lock held. */
static int role_lease_setup(struct spm *spm, const char *domain, struct pk_error *err)
{
	struct spm_lease_config lc = { 0 };
	char ids[PATH_MAX], leases[PATH_MAX];
	int r;

	if (spm->lease) {
		return 0;
	}
	r = spm_lv_activate(spm, domain, "ids", ids, sizeof(ids), err);
	if (r == 0) {
		r = spm_lv_activate(spm, domain, "leases", leases, sizeof(leases), err);
	}
	if (r < 0) {
		pk_error_prefix(err, "cannot reach the lease areas of domain '%s'", domain);
		return r;
	}
	lc.lockspace = domain;
	lc.ids_path = ids;
	lc.leases_path = leases;
	lc.host_id = (uint64_t)spm->info.host_id;
	lc.io_timeout = (unsigned)pk_config_int(spm->cfg, "sanlock_io_timeout");
	lc.sanlock_run_dir = pk_config_str(spm->cfg, "sanlock_run_dir");
	return spm_lease_new(&lc, &spm->lease, err);
}

static int role_holder_error(struct spm *spm, const char *domain, struct pk_error *err)
{
	struct spm_lease_status st;
	struct pk_error e;

	if (spm->lease && spm_lease_status(spm->lease, &st, &e) == 0 && st.owner.host_id &&
	    st.owner.host_id != (uint64_t)spm->info.host_id) {
		return pk_error_set(err, PK_E_NOT_SPM, EPERM,
				    "host %llu holds the SPM lease of domain '%s'; send mutating "
				    "calls to its spmd", (unsigned long long)st.owner.host_id, domain);
	}
	return pk_error_set(err, PK_E_NOT_SPM, EPERM,
			    "host %d is not the SPM of domain '%s' and no holder is known; "
			    "run 'pkctl spm start' on one host", spm->info.host_id, domain);
}

static void role_fill_status(struct spm *spm, const char *domain, struct spm_role_status *ret)
{
	struct spm_lease_status st;
	struct pk_error e;

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->domain, sizeof(ret->domain), "%s", domain);
	ret->host_id = spm->info.host_id;
	ret->state = spm->role;
	ret->lease_version = spm->lease_version;
	if (spm->lease && spm_lease_status(spm->lease, &st, &e) == 0) {
		ret->spm_host_id = (int32_t)st.owner.host_id;
		ret->lease_version = st.owner.generation;
		if (spm->role == SPM_ROLE_HELD && !st.held) {
			/* sanlock dropped it: never claim a lease we lost. */
			spm->role = SPM_ROLE_FREE;
			spm_volume_cache_invalidate(spm);
			ret->state = SPM_ROLE_FREE;
		}
		if (ret->state != SPM_ROLE_HELD && st.owner.host_id &&
		    st.owner.host_id != (uint64_t)spm->info.host_id) {
			ret->state = SPM_ROLE_OTHER;
		}
		if (ret->state == SPM_ROLE_FREE && st.owner.host_id == (uint64_t)spm->info.host_id) {
			/* Stale owner record of our own released lease. */
			ret->spm_host_id = 0;
		}
	}
}

static void role_recover(struct spm *spm, const char *domain)
{
	struct spm_task_info *tasks = NULL;
	struct spm_recovery rec = { 0 };
	struct pk_error err;
	size_t n;
	int r;

	r = spm_volumes_recover(spm, domain, &rec, &err);
	if (r < 0) {
		pk_log_error("recovery of domain '%s' incomplete (retried at next SpmStart): %s",
			     domain, err.message);
	} else if (rec.removed || rec.rolled_back) {
		pk_log_info("recovery done domain='%s' removals_completed=%u creations_rolled_back=%u",
			    domain, rec.removed, rec.rolled_back);
	}
	/* This host's interrupted tasks: say what became of them. */
	n = spm_tasks_interrupted(spm->tasks, &tasks);
	for (size_t i = 0; i < n; i++) {
		const char *verb = tasks[i].verb;
		if (!strcmp(verb, "delete_volume") || !strcmp(verb, "delete_image")) {
			spm_task_settle(spm->tasks, tasks[i].id, r == 0 ? SPM_TASK_DONE : SPM_TASK_FAILED,
					"finished by recovery after an spmd restart");
		} else if (!strcmp(verb, "create_volume")) {
			spm_task_settle(spm->tasks, tasks[i].id, SPM_TASK_ROLLED_BACK,
					"interrupted by an spmd restart; an unfinished volume was "
					"removed (or the volume was complete): check it and retry");
		} else {
			spm_task_settle(spm->tasks, tasks[i].id, SPM_TASK_FAILED,
					"interrupted by an spmd restart; the operation is safe to retry");
		}
	}
	free(tasks);
}

int spm_role_start(struct spm *spm, const char *domain, struct spm_role_status *ret,
		   struct pk_error *err)
{
	struct spm_lease_owner holder = { 0 };
	int r;

	if (!domain || !*domain) {
		domain = spm->domain;
	}
	r = spm_domain_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
	pthread_mutex_lock(&spm->role_lock);
	if (spm->role == SPM_ROLE_HELD && spm->lease && spm_lease_check(spm->lease, NULL) == 0) {
		role_fill_status(spm, domain, ret);
		pthread_mutex_unlock(&spm->role_lock);
		return 0;
	}
	if (spm->role == SPM_ROLE_CONTENDING) {
		pthread_mutex_unlock(&spm->role_lock);
		return pk_error_set(err, PK_E_BUSY, EBUSY, "an SpmStart is already under way");
	}
	snprintf(spm->domain, sizeof(spm->domain), "%s", domain);
	r = role_lease_setup(spm, domain, err);
	if (r < 0) {
		pthread_mutex_unlock(&spm->role_lock);
		return r;
	}
	spm->role = SPM_ROLE_CONTENDING;
	pthread_mutex_unlock(&spm->role_lock);

	/* Joining takes seconds (sanlock's delta lease): not under role_lock. */
	r = spm_lease_join(spm->lease, SPM_JOIN_TIMEOUT_MS, err);
	if (r == 0) {
		r = spm_lease_acquire(spm->lease, &holder, err);
	}
	pthread_mutex_lock(&spm->role_lock);
	if (r < 0) {
		spm->role = holder.host_id ? SPM_ROLE_OTHER : SPM_ROLE_FREE;
		pthread_mutex_unlock(&spm->role_lock);
		if (holder.host_id) {
			return pk_error_set(err, PK_E_NOT_SPM, EPERM,
					    "host %llu holds the SPM lease of domain '%s'; this host (%d) "
					    "stays HSM-only", (unsigned long long)holder.host_id, domain,
					    spm->info.host_id);
		}
		return r;
	}
	spm->role = SPM_ROLE_HELD;
	spm_volume_cache_invalidate(spm);
	pk_log_info("this host is now the SPM domain='%s' host_id=%d", domain, spm->info.host_id);
	pthread_mutex_unlock(&spm->role_lock);
	/* Roll forward what a previous SPM left unfinished, before serving writes. */
	role_recover(spm, domain);
	pthread_mutex_lock(&spm->role_lock);
	role_fill_status(spm, domain, ret);
	pthread_mutex_unlock(&spm->role_lock);
	return 0;
}

int spm_role_stop(struct spm *spm, const char *domain, struct spm_role_status *ret,
		  struct pk_error *err)
{
	int r;

	if (!domain || !*domain) {
		domain = spm->domain;
	}
	r = spm_domain_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
	/*
	 * Take every domain lock exclusively: no mutation may be half way
	 * through when the lease goes.
	 */
	{
		struct pk_lockset set;
		pk_lockset_init(&set, spm->locks, "spm_stop");
		pk_lockset_add(&set, SPM_LOCK_DOMAIN, domain, PK_LOCK_EXCLUSIVE);
		r = pk_lockset_acquire(&set, spm->lock_timeout_ms * 3, err);
		if (r < 0) {
			return r;
		}
		pthread_mutex_lock(&spm->role_lock);
		if (spm->lease) {
			r = spm_lease_release(spm->lease, err);
		}
		if (r == 0) {
			if (spm->role == SPM_ROLE_HELD) {
				pk_log_info("SPM role released domain='%s'", domain);
			}
			spm->role = SPM_ROLE_FREE;
			spm_volume_cache_invalidate(spm);
		}
		role_fill_status(spm, domain, ret);
		pthread_mutex_unlock(&spm->role_lock);
		pk_lockset_release(&set);
	}
	return r;
}

int spm_role_status(struct spm *spm, const char *domain, struct spm_role_status *ret,
		    struct pk_error *err)
{
	int r;

	if (!domain || !*domain) {
		domain = spm->domain;
	}
	if (!domain[0]) {
		memset(ret, 0, sizeof(*ret));
		ret->state = SPM_ROLE_FREE;
		ret->host_id = spm->info.host_id;
		return 0;
	}
	r = spm_domain_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
	pthread_mutex_lock(&spm->role_lock);
	if (!spm->lease) {
		/* Set up the lease view so the holder can be named; no join needed to read. */
		struct pk_error e;
		if (role_lease_setup(spm, domain, &e) < 0) {
			pk_log_debug("SPM status without lease view domain='%s': %s", domain, e.message);
		}
	}
	role_fill_status(spm, domain, ret);
	pthread_mutex_unlock(&spm->role_lock);
	return 0;
}

int spm_role_check(struct spm *spm, const char *domain, struct pk_error *err)
{
	int r;

	pthread_mutex_lock(&spm->role_lock);
	if (spm->role != SPM_ROLE_HELD || !spm->lease || strcmp(spm->domain, domain) != 0) {
		r = role_holder_error(spm, domain, err);
	} else {
		r = spm_lease_check(spm->lease, err);
		if (r < 0) {
			pk_log_error("the SPM lease is lost domain='%s': %s; no more writes", domain,
				     err ? err->message : "");
			spm->role = SPM_ROLE_FREE;
			spm_volume_cache_invalidate(spm);
			r = role_holder_error(spm, domain, err);
		}
	}
	pthread_mutex_unlock(&spm->role_lock);
	return r;
}

void spm_role_shutdown(struct spm *spm)
{
	pthread_mutex_lock(&spm->role_lock);
	if (spm->lease) {
		spm_lease_mark_lost(spm->lease);
	}
	spm->role = SPM_ROLE_FREE;
	pthread_mutex_unlock(&spm->role_lock);
	spm_volume_cache_invalidate(spm);
}
