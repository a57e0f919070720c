#include "spm/spm.h"

#include <errno.h>
#include <stdatomic.h>
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
#include "spm/auto.h"
#include "spm/lease.h"
#include "spm/prepseq.h"
#include "spm/requests.h"
#include "spm/taskpool.h"
#include "spm/tasks.h"
#include "spm/volume.h"

#define SPM_LOCK_TIMEOUT_MS 10000
#define SPM_JOIN_TIMEOUT_MS 120000

/* Set on the thread of SpmStart while it recovers: its writes pass in RECOVERING. */
static _Thread_local bool tl_recovering;
/*
 * The role generation a mutation on this thread began under (0: none): its
 * writes pass only under that same generation, so a mutation that began
 * before a loss and a regain of the lease never writes what it read then.
 */
static _Thread_local uint64_t tl_pinned_gen;
/* The VG this thread creates (CreateDomain), written before any lease exists. */
static _Thread_local char tl_exempt_vg[PK_UUID_BUFLEN];

void spm_write_guard_exempt_begin(const char *vg)
{
	snprintf(tl_exempt_vg, sizeof(tl_exempt_vg), "%s", vg);
}

void spm_write_guard_exempt_end(void)
{
	tl_exempt_vg[0] = '\0';
}

/* The write guard of spm->lvm (common/lvm.h): the lease, right before each attempt. */
static int spm_write_guard(void *ctx, const char *vg, struct pk_error *err)
{
	if (tl_exempt_vg[0] && strcmp(tl_exempt_vg, vg) == 0) {
		return 0;
	}
	return spm_role_check(ctx, vg, err);
}

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
	atomic_init(&spm->lease, NULL);
	atomic_init(&spm->role_gen, 1);
	atomic_init(&spm->stopping, false);
	pthread_mutex_init(&spm->role_lock, NULL);
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
	spm_tasks_keep(spm->tasks, (uint64_t)pk_config_int(cfg, "task_keep_seconds") * 1000);
	spm->pool = spm_taskpool_new((unsigned)pk_config_int(cfg, "task_workers"),
				     (unsigned)pk_config_int(cfg, "task_queue_max"));
	spm->locks = pk_locks_new(spm_lock_ns_names,
				  sizeof(spm_lock_ns_names) / sizeof(spm_lock_ns_names[0]));
	spm_volume_cache_init(spm);
	spm->requests = spm_requests_new();
	spm->prepseq = spm_prepseq_new();
	/* Every LVM write of this spmd, each retry included, asks for the lease first. */
	pk_lvm_write_guard_set(spm->lvm, spm_write_guard, spm);
	return 0;
}

void spm_release(struct spm *spm)
{
	struct spm_lease *lease;

	/* First: queued tasks still run (and end) while the lease is there. */
	spm_taskpool_free(spm->pool);
	spm->pool = NULL;
	lease = atomic_exchange(&spm->lease, NULL);
	if (lease) {
		struct pk_error err;
		if (spm_lease_release(lease, &err) < 0) {
			pk_log_warn("releasing the SPM lease failed: %s", err.message);
		}
		spm_lease_free(lease);
	}
	spm_volume_cache_free(spm);
	spm_requests_free(spm->requests);
	spm_prepseq_free(spm->prepseq);
	spm->prepseq = NULL;
	pk_locks_free(spm->locks);
	spm_tasks_free(spm->tasks);
	pk_activation_free(spm->act);
	pk_lvm_free(spm->lvm);
	pthread_mutex_destroy(&spm->role_lock);
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

/*
 * Sets the role; every change bumps the generation. Called with role_lock
 * held; the caller drops the volume cache when the lease came or went.
 */
static void role_set(struct spm *spm, enum spm_role_state state)
{
	if (spm->role != state) {
		spm->role = state;
		atomic_fetch_add(&spm->role_gen, 1);
	}
}

uint64_t spm_role_gen(struct spm *spm)
{
	return atomic_load(&spm->role_gen);
}

/* Copies the domain served (may be "") under role_lock. */
static void role_domain(struct spm *spm, char *buf, size_t size)
{
	pthread_mutex_lock(&spm->role_lock);
	snprintf(buf, size, "%s", spm->domain);
	pthread_mutex_unlock(&spm->role_lock);
}

/*
 * The lease object for domain, set up on first use. The activation of the
 * lease LVs and spm_lease_new() run outside role_lock; when two threads
 * race, the first one published wins and the other's copy is freed.
 */
static int role_lease_get(struct spm *spm, const char *domain, struct spm_lease **ret,
			  struct pk_error *err)
{
	struct spm_lease_config lc = { 0 };
	char ids[PATH_MAX], leases[PATH_MAX];
	struct spm_lease *made = NULL, *expected = NULL;
	int r;

	*ret = atomic_load(&spm->lease);
	if (*ret) {
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
	r = spm_lease_new(&lc, &made, err);
	if (r < 0) {
		return r;
	}
	if (!atomic_compare_exchange_strong(&spm->lease, &expected, made)) {
		spm_lease_free(made);
		made = expected;
	} else if (atomic_load(&spm->stopping)) {
		/* A SIGTERM came before the lease was published: it is lost from the start. */
		spm_lease_mark_lost(made);
	}
	*ret = made;
	return 0;
}

/* NOT_SPM naming the holder if storage names one (asks sanlock: no lock held). */
static int role_holder_error(struct spm *spm, struct spm_lease *lease, const char *domain,
			     struct pk_error *err)
{
	struct spm_lease_status st;
	struct pk_error e;

	if (atomic_load(&spm->stopping)) {
		return pk_error_set(err, PK_E_NOT_SPM, EPERM,
				    "this spmd is stopping and no longer writes domain '%s'", domain);
	}
	if (lease && spm_lease_status(lease, &st, &e) == 0 && st.owner.host_id &&
	    st.owner.host_id != (uint64_t)spm->info.host_id) {
		return pk_error_set(err, PK_E_NOT_SPM, EPERM,
				    "host %llu holds the SPM lease of domain '%s'; send mutating "
				    "calls to its spmd", (unsigned long long)st.owner.host_id, domain);
	}
	return pk_error_set(err, PK_E_NOT_SPM, EPERM,
			    "host %d is not the SPM of domain '%s' and no holder is known; "
			    "run 'pkctl spm start' on one host", spm->info.host_id, domain);
}

/* The lease is gone: FREE, unless the role moved on meanwhile (gen changed). */
static void role_lost(struct spm *spm, uint64_t gen)
{
	pthread_mutex_lock(&spm->role_lock);
	if (atomic_load(&spm->role_gen) == gen &&
	    (spm->role == SPM_ROLE_HELD || spm->role == SPM_ROLE_RECOVERING)) {
		role_set(spm, SPM_ROLE_FREE);
	}
	pthread_mutex_unlock(&spm->role_lock);
	spm_volume_cache_invalidate(spm);
}

/* Fills *ret; the sanlock status is read outside role_lock. */
static void role_fill_status(struct spm *spm, const char *domain, struct spm_role_status *ret)
{
	struct spm_lease_status st;
	struct spm_lease *lease;
	struct pk_error e;
	enum spm_role_state role;
	uint64_t gen;

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&spm->role_lock);
	role = spm->role;
	gen = atomic_load(&spm->role_gen);
	ret->lease_version = spm->lease_version;
	ret->recovery_pending = spm->recovery_pending && role == SPM_ROLE_HELD;
	pthread_mutex_unlock(&spm->role_lock);
	lease = atomic_load(&spm->lease);
	if (atomic_load(&spm->stopping)) {
		role = SPM_ROLE_FREE;
	}
	snprintf(ret->domain, sizeof(ret->domain), "%s", domain);
	ret->host_id = spm->info.host_id;
	ret->state = role;
	if (lease && spm_lease_status(lease, &st, &e) == 0) {
		bool ours = role == SPM_ROLE_HELD || role == SPM_ROLE_RECOVERING;
		ret->spm_host_id = (int32_t)st.owner.host_id;
		ret->lease_version = st.owner.generation;
		if (ours && !st.held) {
			/* sanlock dropped it: never claim a lease we lost. */
			role_lost(spm, gen);
			ret->state = SPM_ROLE_FREE;
			ours = false;
		}
		if (!ours && st.owner.host_id && st.owner.host_id != (uint64_t)spm->info.host_id) {
			ret->state = SPM_ROLE_OTHER;
		}
		if (ret->state == SPM_ROLE_FREE && st.owner.host_id == (uint64_t)spm->info.host_id) {
			/* Stale owner record of our own released lease. */
			ret->spm_host_id = 0;
		}
	}
}

/* Finishes what a previous SPM left; < 0 when some of it is left still. */
static int role_recover(struct spm *spm, const char *domain)
{
	struct spm_task_info *tasks = NULL;
	struct spm_recovery rec = { 0 };
	struct pk_error err;
	size_t n;
	int r;

	tl_recovering = true;
	r = spm_volumes_recover(spm, domain, &rec, &err);
	tl_recovering = false;
	if (r < 0) {
		pk_log_error("recovery of domain '%s' incomplete (SpmStart retries it): %s",
			     domain, err.message);
	} else if (rec.removed || rec.rolled_back || rec.skipped) {
		pk_log_info("recovery done domain='%s' removals_completed=%u creations_rolled_back=%u "
			    "found_finished=%u", domain, rec.removed, rec.rolled_back, rec.skipped);
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
	return r;
}

/*
 * SpmStart on a lease held whose recovery failed: recovery again, while
 * the role stays HELD (its generation unchanged, so the mutations under way
 * go on; recovery locks each volume it touches, as they do).
 */
static void role_recover_retry(struct spm *spm, const char *domain, uint64_t gen)
{
	bool claimed = false;
	int r;

	pthread_mutex_lock(&spm->role_lock);
	if (spm->recovery_pending && !spm->recovery_running) {
		spm->recovery_running = claimed = true;
	}
	pthread_mutex_unlock(&spm->role_lock);
	if (!claimed) {
		return;
	}
	pk_log_info("retrying the recovery of domain '%s'", domain);
	r = role_recover(spm, domain);
	pthread_mutex_lock(&spm->role_lock);
	spm->recovery_running = false;
	if (atomic_load(&spm->role_gen) == gen) {
		spm->recovery_pending = r < 0;
	}
	pthread_mutex_unlock(&spm->role_lock);
	if (r == 0) {
		pk_log_info("recovery of domain '%s' done", domain);
	}
}

/* The domain a role verb is about: the argument, else the one served (a copy: never aliased). */
static void role_domain_arg(struct spm *spm, const char *domain, char *buf, size_t size)
{
	if (!domain || !*domain || domain == spm->domain) {
		role_domain(spm, buf, size);
	} else {
		snprintf(buf, size, "%s", domain);
	}
}

int spm_role_start(struct spm *spm, const char *domain_arg, struct spm_role_status *ret,
		   struct pk_error *err)
{
	struct spm_lease_owner holder = { 0 };
	struct spm_lease *lease = NULL;
	char domain[PK_UUID_BUFLEN];
	uint64_t gen;
	int r;

	role_domain_arg(spm, domain_arg, domain, sizeof(domain));
	r = spm_domain_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
	if (atomic_load(&spm->stopping)) {
		return pk_error_set(err, PK_E_ABORTED, ECANCELED,
				    "this spmd is stopping; it will not take the SPM lease");
	}
	pthread_mutex_lock(&spm->role_lock);
	if (spm->role == SPM_ROLE_HELD) {
		gen = atomic_load(&spm->role_gen);
		lease = atomic_load(&spm->lease);
		pthread_mutex_unlock(&spm->role_lock);
		if (lease && spm_lease_check(lease, NULL) == 0) {
			role_recover_retry(spm, domain, gen);
			role_fill_status(spm, domain, ret);
			return 0;
		}
		role_lost(spm, gen);
		pthread_mutex_lock(&spm->role_lock);
	}
	if (spm->role == SPM_ROLE_CONTENDING || spm->role == SPM_ROLE_RECOVERING ||
	    spm->role == SPM_ROLE_HELD) {
		pthread_mutex_unlock(&spm->role_lock);
		return pk_error_set(err, PK_E_BUSY, EBUSY, "an SpmStart is already under way");
	}
	snprintf(spm->domain, sizeof(spm->domain), "%s", domain);
	role_set(spm, SPM_ROLE_CONTENDING);
	gen = atomic_load(&spm->role_gen);
	pthread_mutex_unlock(&spm->role_lock);

	/* Lease setup, joining (seconds: sanlock's delta lease) and acquiring: not under role_lock. */
	r = role_lease_get(spm, domain, &lease, err);
	if (r == 0) {
		r = spm_lease_join(lease, SPM_JOIN_TIMEOUT_MS, err);
	}
	if (r == 0) {
		r = spm_lease_acquire(lease, &holder, err);
	}
	pthread_mutex_lock(&spm->role_lock);
	if (r == 0 && (atomic_load(&spm->stopping) || atomic_load(&spm->role_gen) != gen)) {
		r = pk_error_set(err, PK_E_ABORTED, ECANCELED,
				 "this spmd is stopping (or SpmStop came) while taking the SPM lease "
				 "of domain '%s'", domain);
		holder.host_id = 0;
	}
	if (r < 0) {
		if (atomic_load(&spm->role_gen) == gen) {
			role_set(spm, holder.host_id ? SPM_ROLE_OTHER : SPM_ROLE_FREE);
		}
		pthread_mutex_unlock(&spm->role_lock);
		if (holder.host_id) {
			return pk_error_set(err, PK_E_NOT_SPM, EPERM,
					    "host %llu holds the SPM lease of domain '%s'; this host (%d) "
					    "stays HSM-only", (unsigned long long)holder.host_id, domain,
					    spm->info.host_id);
		}
		return r;
	}
	/* Recovery first: no other mutation is accepted until it is done. */
	role_set(spm, SPM_ROLE_RECOVERING);
	gen = atomic_load(&spm->role_gen);
	pthread_mutex_unlock(&spm->role_lock);
	spm_volume_cache_invalidate(spm);
	pk_log_info("this host took the SPM lease domain='%s' host_id=%d; recovering first",
		    domain, spm->info.host_id);
	/* Roll forward what a previous SPM left unfinished, before serving writes. */
	r = role_recover(spm, domain);
	pthread_mutex_lock(&spm->role_lock);
	if (spm->role == SPM_ROLE_RECOVERING && atomic_load(&spm->role_gen) == gen) {
		/* Serve anyway: what failed is left as it was, for a retry. */
		spm->recovery_pending = r < 0;
		role_set(spm, SPM_ROLE_HELD);
		pk_log_info("this host is now the SPM domain='%s' host_id=%d", domain,
			    spm->info.host_id);
	}
	pthread_mutex_unlock(&spm->role_lock);
	role_fill_status(spm, domain, ret);
	return 0;
}

int spm_role_stop(struct spm *spm, const char *domain_arg, struct spm_role_status *ret,
		  struct pk_error *err)
{
	struct spm_lease *lease;
	struct pk_lockset set;
	char domain[PK_UUID_BUFLEN];
	enum spm_role_state was;
	int r;

	role_domain_arg(spm, domain_arg, domain, sizeof(domain));
	r = spm_domain_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
	/*
	 * Take every domain lock exclusively: no mutation may be half way
	 * through when the lease goes.
	 */
	pk_lockset_init(&set, spm->locks, "spm_stop");
	pk_lockset_add(&set, SPM_LOCK_DOMAIN, domain, PK_LOCK_EXCLUSIVE);
	r = pk_lockset_acquire(&set, spm->lock_timeout_ms * 3, err);
	if (r < 0) {
		return r;
	}
	/* An operator's stop moves the lease away: spm_auto holds back here. */
	atomic_store(&spm->auto_hold_until_ms, pk_clock_monotonic_ms() + SPM_AUTO_HOLD_MS);
	/* Writes stop first (the role), then sanlock is told, outside role_lock. */
	pthread_mutex_lock(&spm->role_lock);
	was = spm->role;
	if (was == SPM_ROLE_HELD || was == SPM_ROLE_RECOVERING) {
		role_set(spm, SPM_ROLE_FREE);
	}
	pthread_mutex_unlock(&spm->role_lock);
	spm_volume_cache_invalidate(spm);
	lease = atomic_load(&spm->lease);
	if (lease) {
		r = spm_lease_release(lease, err);
	}
	if (r == 0 && (was == SPM_ROLE_HELD || was == SPM_ROLE_RECOVERING)) {
		pk_log_info("SPM role released domain='%s'", domain);
	}
	role_fill_status(spm, domain, ret);
	pk_lockset_release(&set);
	return r;
}

int spm_role_status(struct spm *spm, const char *domain_arg, struct spm_role_status *ret,
		    struct pk_error *err)
{
	struct spm_lease *lease;
	char domain[PK_UUID_BUFLEN];
	int r;

	role_domain_arg(spm, domain_arg, domain, sizeof(domain));
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
	if (!atomic_load(&spm->lease)) {
		/* Set up the lease view so the holder can be named; no join needed to read. */
		struct pk_error e;
		if (role_lease_get(spm, domain, &lease, &e) < 0) {
			pk_log_debug("SPM status without lease view domain='%s': %s", domain, e.message);
		}
	}
	role_fill_status(spm, domain, ret);
	return 0;
}

static int role_check(struct spm *spm, const char *domain, uint64_t *ret_gen,
		      struct pk_error *err)
{
	struct spm_lease *lease;
	enum spm_role_state role;
	uint64_t gen;
	bool same;
	int r;

	if (atomic_load(&spm->stopping)) {
		return role_holder_error(spm, NULL, domain, err);
	}
	pthread_mutex_lock(&spm->role_lock);
	role = spm->role;
	gen = atomic_load(&spm->role_gen);
	same = strcmp(spm->domain, domain) == 0;
	pthread_mutex_unlock(&spm->role_lock);
	lease = atomic_load(&spm->lease);
	if (tl_pinned_gen && tl_pinned_gen != gen && !tl_recovering) {
		return pk_error_set(err, PK_E_NOT_SPM, EPERM,
				    "the SPM role of domain '%s' changed while this call ran (the "
				    "lease was lost); it writes nothing more: run it again", domain);
	}
	if (same && role == SPM_ROLE_RECOVERING && !tl_recovering) {
		return pk_error_set(err, PK_E_UNAVAILABLE, EAGAIN,
				    "the SPM of domain '%s' is finishing interrupted tasks (recovery "
				    "in progress); retry in a moment", domain);
	}
	if (!same || !lease || (role != SPM_ROLE_HELD && role != SPM_ROLE_RECOVERING)) {
		return role_holder_error(spm, lease, domain, err);
	}
	/* One sanlock round trip, without role_lock: SIGTERM and status never wait for it. */
	r = spm_lease_check(lease, err);
	if (r < 0) {
		pk_log_error("the SPM lease is lost domain='%s': %s; no more writes", domain,
			     err ? err->message : "");
		role_lost(spm, gen);
		return role_holder_error(spm, lease, domain, err);
	}
	*ret_gen = gen;
	return 0;
}

int spm_role_check(struct spm *spm, const char *domain, struct pk_error *err)
{
	uint64_t gen;

	return role_check(spm, domain, &gen, err);
}

int spm_role_mutation_begin(struct spm *spm, const char *domain, struct pk_error *err)
{
	uint64_t gen = 0;
	int r;

	tl_pinned_gen = 0;
	r = role_check(spm, domain, &gen, err);
	if (r == 0) {
		tl_pinned_gen = gen;
	}
	return r;
}

void spm_role_mutation_end(void)
{
	tl_pinned_gen = 0;
}

void spm_role_shutdown(struct spm *spm)
{
	struct spm_lease *lease;

	/* Atomics only: a thread inside sanlock or LVM must not delay this. */
	atomic_store(&spm->stopping, true);
	lease = atomic_load(&spm->lease);
	if (lease) {
		spm_lease_mark_lost(lease);
	}
	atomic_fetch_add(&spm->role_gen, 1);
	spm_volume_cache_invalidate(spm);
}
