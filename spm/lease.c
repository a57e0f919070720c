/*
 * The lease object of spm/lease.h over libsanlock (the client library talks
 * to the local sanlock daemon through $SANLOCK_RUN_DIR/sanlock.sock): its
 * life cycle from spm_lease_new() to spm_lease_leave(). The storage-only
 * verbs are in spm/lease_storage.c, what both say to sanlock in
 * spm/lease_sanlock.c.
 */
#include "spm/lease.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_resource.h>
#include <sanlock_rv.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "spm/lease_internal.h"

#define JOIN_POLL_MS 100

struct spm_lease {
	pthread_mutex_t lock;
	char lockspace[SANLK_NAME_LEN];
	char *ids_path;
	char *leases_path;
	char *run_dir; /* NULL: taken from the environment */
	uint64_t host_id;
	unsigned io_timeout;
	int sock;          /* registered connection; -1 before the first acquire */
	bool held;         /* acquired and not released */
	bool join_started; /* this object asked sanlock to join */
	atomic_int lost;   /* set by spm_lease_mark_lost() */
};

/* ---- the lease object -------------------------------------------------- */

int spm_lease_new(const struct spm_lease_config *cfg, struct spm_lease **ret,
		  struct pk_error *err)
{
	struct spm_lease *lease;
	int r;

	r = spm_lease_config_check_storage(cfg, true, true, err);
	if (r < 0) {
		return r;
	}
	if (cfg->host_id < 1 || cfg->host_id > SPM_LEASE_MAX_HOST_ID) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "sanlock host id %llu is out of range 1-%d",
				    (unsigned long long)cfg->host_id, SPM_LEASE_MAX_HOST_ID);
	}
	spm_lease_run_dir_apply(cfg->sanlock_run_dir);

	lease = pk_xcalloc(1, sizeof(*lease));
	pthread_mutex_init(&lease->lock, NULL);
	spm_lease_copy_str(lease->lockspace, SANLK_NAME_LEN, cfg->lockspace);
	lease->ids_path = pk_xstrdup(cfg->ids_path);
	lease->leases_path = pk_xstrdup(cfg->leases_path);
	lease->run_dir = cfg->sanlock_run_dir ? pk_xstrdup(cfg->sanlock_run_dir) : NULL;
	lease->host_id = cfg->host_id;
	lease->io_timeout = cfg->io_timeout;
	lease->sock = -1;
	atomic_init(&lease->lost, 0);
	*ret = lease;
	return 0;
}

void spm_lease_free(struct spm_lease *lease)
{
	if (!lease) {
		return;
	}
	if (lease->sock >= 0) {
		close(lease->sock);
	}
	pthread_mutex_destroy(&lease->lock);
	free(lease->ids_path);
	free(lease->leases_path);
	free(lease->run_dir);
	free(lease);
}

uint64_t spm_lease_host_id(const struct spm_lease *lease)
{
	return lease->host_id;
}

const char *spm_lease_lockspace(const struct spm_lease *lease)
{
	return lease->lockspace;
}

static const char *lease_run_dir(const struct spm_lease *lease)
{
	return spm_lease_run_dir_name(lease->run_dir);
}

static void lease_lockspace(const struct spm_lease *lease, struct sanlk_lockspace *ls)
{
	spm_lease_fill_lockspace(ls, lease->lockspace, lease->host_id, lease->ids_path);
}

/* ---- joining ----------------------------------------------------------- */

static int join_start_locked(struct spm_lease *lease, struct pk_error *err)
{
	struct sanlk_lockspace ls;
	int r;

	lease_lockspace(lease, &ls);
	r = sanlock_add_lockspace_timeout(&ls, SANLK_ADD_ASYNC, lease->io_timeout);
	if (r == 0 || r == -EEXIST || r == -EINPROGRESS) {
		lease->join_started = true;
		return 0;
	}
	if (r == -EAGAIN) {
		return pk_error_set(err, PK_E_BUSY, EAGAIN,
				    "lockspace '%s' is being left by this host; retry "
				    "when sanlock has finished",
				    lease->lockspace);
	}
	return spm_lease_sanlock_failed(lease_run_dir(lease), r, "joining the lockspace",
					lease->ids_path, err);
}

int spm_lease_join_start(struct spm_lease *lease, struct pk_error *err)
{
	int r;

	pthread_mutex_lock(&lease->lock);
	r = join_start_locked(lease, err);
	pthread_mutex_unlock(&lease->lock);
	return r;
}

static int join_poll_locked(struct spm_lease *lease, enum spm_lease_join_state *ret_state,
			    struct pk_error *err)
{
	struct sanlk_lockspace ls;
	int r;

	lease_lockspace(lease, &ls);
	r = sanlock_inq_lockspace(&ls, 0);
	if (r == 0) {
		*ret_state = SPM_LEASE_JOINED;
		return 0;
	}
	if (r == -EINPROGRESS) {
		*ret_state = SPM_LEASE_JOINING;
		return 0;
	}
	if (r == -ENOENT || r == -EAGAIN) {
		if (!spm_lease_daemon_reachable()) {
			return spm_lease_unavailable(lease_run_dir(lease), r, err);
		}
		if (lease->join_started) {
			lease->join_started = false;
			return pk_error_set(err, PK_E_IO, EIO,
					    "joining lockspace '%s' as host id %llu on '%s' "
					    "failed: the host id is held by another live host, "
					    "the lockspace is not formatted, or the storage is "
					    "unreadable; see the sanlock log of this host",
					    lease->lockspace,
					    (unsigned long long)lease->host_id,
					    lease->ids_path);
		}
		*ret_state = SPM_LEASE_NOT_JOINED;
		return 0;
	}
	return spm_lease_sanlock_failed(lease_run_dir(lease), r, "querying the lockspace",
					lease->ids_path, err);
}

int spm_lease_join_poll(struct spm_lease *lease, enum spm_lease_join_state *ret_state,
			struct pk_error *err)
{
	int r;

	pthread_mutex_lock(&lease->lock);
	r = join_poll_locked(lease, ret_state, err);
	pthread_mutex_unlock(&lease->lock);
	return r;
}

int spm_lease_join(struct spm_lease *lease, int timeout_ms, struct pk_error *err)
{
	enum spm_lease_join_state state = SPM_LEASE_NOT_JOINED;
	uint64_t deadline = pk_clock_monotonic_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int r;

	r = spm_lease_join_start(lease, err);
	if (r < 0) {
		return r;
	}
	for (;;) {
		r = spm_lease_join_poll(lease, &state, err);
		if (r < 0) {
			return r;
		}
		if (state == SPM_LEASE_JOINED) {
			return 0;
		}
		if (state == SPM_LEASE_NOT_JOINED) {
			/* Joined, then left by someone else meanwhile: start again. */
			r = spm_lease_join_start(lease, err);
			if (r < 0) {
				return r;
			}
		}
		if (pk_clock_monotonic_ms() >= deadline) {
			return pk_error_set(err, PK_E_TIMEOUT, ETIMEDOUT,
					    "joining lockspace '%s' as host id %llu did not "
					    "finish in %d ms (a join takes about 2 x io_timeout "
					    "+ 1 s = %u s; sanlock waits much longer when "
					    "another live host uses the same host id)",
					    lease->lockspace,
					    (unsigned long long)lease->host_id, timeout_ms,
					    2 * lease->io_timeout + 1);
		}
		usleep(JOIN_POLL_MS * 1000);
	}
}

/* ---- acquire, release, check ------------------------------------------- */

static int register_locked(struct spm_lease *lease, struct pk_error *err)
{
	int fd;

	if (lease->sock >= 0) {
		return 0;
	}
	fd = sanlock_register();
	if (fd < 0) {
		return spm_lease_sanlock_failed(lease_run_dir(lease), fd,
						"registering with sanlock",
						lease_run_dir(lease), err);
	}
	lease->sock = fd;
	return 0;
}

/* Drops a registration the daemon no longer answers on. */
static void drop_registration(struct spm_lease *lease)
{
	if (lease->sock >= 0) {
		close(lease->sock);
		lease->sock = -1;
	}
	lease->held = false;
}

static bool rv_is_busy(int rv)
{
	return rv == SANLK_ACQUIRE_IDLIVE || rv == SANLK_ACQUIRE_OWNED ||
	       rv == SANLK_ACQUIRE_OWNED_RETRY || rv == SANLK_ACQUIRE_OTHER ||
	       rv == SANLK_ACQUIRE_SHRETRY || rv == SANLK_ACQUIRE_LVER ||
	       rv == SANLK_DBLOCK_LVER || rv == SANLK_DBLOCK_MBAL ||
	       rv == -EAGAIN || rv == -EBUSY;
}

static int busy(struct spm_lease *lease, int rv, struct spm_lease_owner *ret_holder,
		struct pk_error *err)
{
	struct spm_lease_owner owner = { 0, 0 };
	struct pk_error ignored;

	/* Best effort: the holder's id makes the error actionable. */
	if (spm_lease_read_owner_at(lease_run_dir(lease), lease->lockspace, lease->leases_path,
				    &owner, &ignored) < 0) {
		owner.host_id = 0;
		owner.generation = 0;
	}
	if (ret_holder) {
		*ret_holder = owner;
	}
	if (owner.host_id == lease->host_id) {
		return pk_error_set(err, PK_E_BUSY, EBUSY,
				    "the SPM lease of domain '%s' is held by another "
				    "process of this host (host %llu)",
				    lease->lockspace, (unsigned long long)owner.host_id);
	}
	if (owner.host_id == 0) {
		return pk_error_set(err, PK_E_BUSY, EBUSY,
				    "the SPM lease of domain '%s' is held or being "
				    "taken by another host (holder unknown; sanlock %d: "
				    "%s); retry later",
				    lease->lockspace, rv, spm_lease_rv_text(rv));
	}
	return pk_error_set(err, PK_E_BUSY, EBUSY,
			    "the SPM lease of domain '%s' is held by host %llu",
			    lease->lockspace, (unsigned long long)owner.host_id);
}

static int acquire_locked(struct spm_lease *lease, struct spm_lease_owner *ret_holder,
			  struct pk_error *err)
{
	struct spm_lease_one_disk_resource res;
	struct sanlk_resource *list[1];
	int r;

	if (atomic_load(&lease->lost)) {
		return pk_error_set(err, PK_E_ABORTED, ECANCELED,
				    "the SPM lease of domain '%s' was lost and this "
				    "spmd is stopping; it will not take it again",
				    lease->lockspace);
	}
	if (lease->held) {
		return 0;
	}
	r = register_locked(lease, err);
	if (r < 0) {
		return r;
	}
	spm_lease_fill_resource(&res, lease->lockspace, lease->leases_path);
	list[0] = &res.u.res;
	r = sanlock_acquire(lease->sock, -1, SANLK_ACQUIRE_OWNER_NOWAIT, 1, list, NULL);
	if (r == 0 || r == -EEXIST) {
		lease->held = true;
		return 0;
	}
	if (rv_is_busy(r)) {
		return busy(lease, r, ret_holder, err);
	}
	if (r == -ENOSPC) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				    "cannot take the SPM lease: lockspace '%s' is not "
				    "joined by this host (host id %llu); join it first",
				    lease->lockspace, (unsigned long long)lease->host_id);
	}
	if (spm_lease_rv_maybe_unreachable(r) && !spm_lease_daemon_reachable()) {
		drop_registration(lease);
		return spm_lease_unavailable(lease_run_dir(lease), r, err);
	}
	return spm_lease_sanlock_failed(lease_run_dir(lease), r, "taking the SPM lease",
					lease->leases_path, err);
}

int spm_lease_acquire(struct spm_lease *lease, struct spm_lease_owner *ret_holder,
		      struct pk_error *err)
{
	int r;

	pthread_mutex_lock(&lease->lock);
	r = acquire_locked(lease, ret_holder, err);
	pthread_mutex_unlock(&lease->lock);
	return r;
}

static int release_locked(struct spm_lease *lease, struct pk_error *err)
{
	struct spm_lease_one_disk_resource res;
	struct sanlk_resource *list[1];
	int r;

	if (!lease->held || lease->sock < 0) {
		lease->held = false;
		return 0;
	}
	spm_lease_fill_resource(&res, lease->lockspace, lease->leases_path);
	list[0] = &res.u.res;
	r = sanlock_release(lease->sock, -1, 0, 1, list);
	if (r == 0 || r == -ENOENT) {
		/* -ENOENT: sanlock had dropped it already. */
		lease->held = false;
		return 0;
	}
	if (spm_lease_rv_maybe_unreachable(r) && !spm_lease_daemon_reachable()) {
		drop_registration(lease);
		return spm_lease_unavailable(lease_run_dir(lease), r, err);
	}
	return spm_lease_sanlock_failed(lease_run_dir(lease), r, "releasing the SPM lease",
					lease->leases_path, err);
}

int spm_lease_release(struct spm_lease *lease, struct pk_error *err)
{
	int r;

	pthread_mutex_lock(&lease->lock);
	r = release_locked(lease, err);
	pthread_mutex_unlock(&lease->lock);
	return r;
}

/*
 * True when sanlock's inquire state ("LS:NAME:PATH:OFF:LVER ...") lists our
 * resource.
 */
static bool state_lists(const char *state, const char *lockspace)
{
	size_t ls_len = strlen(lockspace);
	size_t res_len = strlen(SPM_LEASE_RESOURCE);
	const char *p = state;

	while (p && *p) {
		while (*p == ' ') {
			p++;
		}
		if (strncmp(p, lockspace, ls_len) == 0 && p[ls_len] == ':' &&
		    strncmp(p + ls_len + 1, SPM_LEASE_RESOURCE, res_len) == 0 &&
		    p[ls_len + 1 + res_len] == ':') {
			return true;
		}
		p = strchr(p, ' ');
	}
	return false;
}

/* Asks sanlock whether this process holds the lease; *ret_held on success. */
static int inquire_locked(struct spm_lease *lease, bool *ret_held, struct pk_error *err)
{
	char *state = NULL;
	int count = 0;
	int r;

	if (lease->sock < 0) {
		*ret_held = false;
		return 0;
	}
	r = sanlock_inquire(lease->sock, -1, 0, &count, &state);
	if (r < 0) {
		free(state);
		if (spm_lease_rv_maybe_unreachable(r) && !spm_lease_daemon_reachable()) {
			drop_registration(lease);
			return spm_lease_unavailable(lease_run_dir(lease), r, err);
		}
		return pk_error_set(err, PK_E_NOT_SPM, EPERM,
				    "cannot confirm the SPM lease of domain '%s' with "
				    "sanlock (%d: %s); treating it as lost",
				    lease->lockspace, r, spm_lease_rv_text(r));
	}
	*ret_held = count > 0 && state && state_lists(state, lease->lockspace);
	free(state);
	return 0;
}

static int check_locked(struct spm_lease *lease, struct pk_error *err)
{
	bool held = false;
	int r;

	if (atomic_load(&lease->lost)) {
		return pk_error_set(err, PK_E_NOT_SPM, EPERM,
				    "the SPM lease of domain '%s' was lost; this spmd "
				    "is stopping",
				    lease->lockspace);
	}
	if (!lease->held) {
		return pk_error_set(err, PK_E_NOT_SPM, EPERM,
				    "this spmd (host %llu) does not hold the SPM lease "
				    "of domain '%s'",
				    (unsigned long long)lease->host_id, lease->lockspace);
	}
	r = inquire_locked(lease, &held, err);
	if (r < 0) {
		return r;
	}
	if (!held) {
		lease->held = false;
		return pk_error_set(err, PK_E_NOT_SPM, EPERM,
				    "sanlock no longer holds the SPM lease of domain "
				    "'%s' for this spmd (host %llu): the lease was lost",
				    lease->lockspace, (unsigned long long)lease->host_id);
	}
	return 0;
}

int spm_lease_check(struct spm_lease *lease, struct pk_error *err)
{
	int r;

	pthread_mutex_lock(&lease->lock);
	r = check_locked(lease, err);
	pthread_mutex_unlock(&lease->lock);
	return r;
}

void spm_lease_mark_lost(struct spm_lease *lease)
{
	atomic_store(&lease->lost, 1);
}

int spm_lease_status(struct spm_lease *lease, struct spm_lease_status *ret_status,
		     struct pk_error *err)
{
	struct spm_lease_status st;
	int r;

	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&lease->lock);
	r = join_poll_locked(lease, &st.join, err);
	if (r < 0) {
		goto out;
	}
	if (lease->held && !atomic_load(&lease->lost)) {
		r = inquire_locked(lease, &st.held, err);
		if (r < 0) {
			goto out;
		}
		lease->held = st.held;
	}
	r = spm_lease_read_owner_at(lease_run_dir(lease), lease->lockspace, lease->leases_path,
				    &st.owner, err);
	if (r < 0) {
		goto out;
	}
	*ret_status = st;
out:
	pthread_mutex_unlock(&lease->lock);
	return r;
}

/* ---- leaving ----------------------------------------------------------- */

static int leave_locked(struct spm_lease *lease, struct pk_error *err)
{
	struct sanlk_lockspace ls;
	int r;

	r = release_locked(lease, err);
	if (r < 0) {
		return r;
	}
	lease_lockspace(lease, &ls);
	r = sanlock_rem_lockspace(&ls, SANLK_REM_UNUSED);
	lease->join_started = false;
	if (r == 0 || r == -EINPROGRESS) {
		return 0;
	}
	if (r == -ENOENT) {
		if (!spm_lease_daemon_reachable()) {
			return spm_lease_unavailable(lease_run_dir(lease), r, err);
		}
		return 0;
	}
	if (r == -EBUSY) {
		return pk_error_set(err, PK_E_IN_USE, EBUSY,
				    "cannot leave lockspace '%s': another process on "
				    "this host still holds a lease in it",
				    lease->lockspace);
	}
	return spm_lease_sanlock_failed(lease_run_dir(lease), r, "leaving the lockspace",
					lease->ids_path, err);
}

int spm_lease_leave(struct spm_lease *lease, struct pk_error *err)
{
	int r;

	pthread_mutex_lock(&lease->lock);
	r = leave_locked(lease, err);
	pthread_mutex_unlock(&lease->lock);
	return r;
}
