/*
 * spm_lease over libsanlock (the client library talks to the local sanlock
 * daemon through $SANLOCK_RUN_DIR/sanlock.sock). See spm/lease.h.
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

#include "common/xalloc.h"

#define DEFAULT_RUN_DIR "/run/sanlock"
#define IO_TIMEOUT_MAX 60
#define JOIN_POLL_MS 100

/* 512-byte sectors, 1 MiB areas: max 2000 hosts, the same on every LV. */
#define LS_FLAGS (SANLK_LSF_ALIGN1M | SANLK_LSF_SECTOR512)
#define RES_FLAGS (SANLK_RES_ALIGN1M | SANLK_RES_SECTOR512)

/* A resource with its one disk, laid out as sanlock expects. */
struct one_disk_resource {
	union {
		struct sanlk_resource res;
		char bytes[sizeof(struct sanlk_resource) + sizeof(struct sanlk_disk)];
	} u;
};

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

/* ---- configuration ----------------------------------------------------- */

static const char *run_dir_name(const char *configured)
{
	const char *env;

	if (configured) {
		return configured;
	}
	env = getenv("SANLOCK_RUN_DIR");
	return env && env[0] ? env : DEFAULT_RUN_DIR;
}

/*
 * libsanlock finds the daemon through $SANLOCK_RUN_DIR. Set it only when it
 * differs, so that after the first call (made before threads start) this
 * never writes the environment again.
 */
static void apply_run_dir(const char *configured)
{
	const char *env;

	if (!configured) {
		return;
	}
	env = getenv("SANLOCK_RUN_DIR");
	if (env && strcmp(env, configured) == 0) {
		return;
	}
	setenv("SANLOCK_RUN_DIR", configured, 1);
}

static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SPM_LEASE_NAME_MAX) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
			return false;
		}
	}
	return true;
}

static int path_check(const char *what, const char *path, struct pk_error *err)
{
	if (!path || path[0] != '/') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "sanlock %s path '%s' must be absolute", what,
				    path ? path : "");
	}
	if (strlen(path) >= SANLK_PATH_LEN) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "sanlock %s path is longer than %d bytes", what,
				    SANLK_PATH_LEN - 1);
	}
	if (strpbrk(path, ": \t\n")) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "sanlock %s path '%s' contains ':' or white space",
				    what, path);
	}
	return 0;
}

/* Checks what the format and read functions need (no host id). */
static int config_check_storage(const struct spm_lease_config *cfg, bool need_ids,
				bool need_leases, struct pk_error *err)
{
	int r;

	if (!cfg || !cfg->lockspace || !name_valid(cfg->lockspace)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "lockspace name '%s' must be 1-%d characters of "
				    "[A-Za-z0-9_.-]",
				    cfg && cfg->lockspace ? cfg->lockspace : "",
				    SPM_LEASE_NAME_MAX);
	}
	if (need_ids) {
		r = path_check("ids", cfg->ids_path, err);
		if (r < 0) {
			return r;
		}
	}
	if (need_leases) {
		r = path_check("leases", cfg->leases_path, err);
		if (r < 0) {
			return r;
		}
	}
	if (cfg->io_timeout < 1 || cfg->io_timeout > IO_TIMEOUT_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "sanlock io_timeout %u is out of range 1-%d",
				    cfg->io_timeout, IO_TIMEOUT_MAX);
	}
	if (cfg->sanlock_run_dir && cfg->sanlock_run_dir[0] != '/') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "sanlock run dir '%s' must be absolute",
				    cfg->sanlock_run_dir);
	}
	return 0;
}

/* Copies a string already checked to fit (with its NUL) into dst. */
static void copy_str(char *dst, size_t dst_size, const char *src)
{
	size_t n = strlen(src);

	if (n >= dst_size) {
		n = dst_size - 1;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void fill_lockspace(struct sanlk_lockspace *ls, const char *name,
			   uint64_t host_id, const char *ids_path)
{
	memset(ls, 0, sizeof(*ls));
	copy_str(ls->name, SANLK_NAME_LEN, name);
	ls->host_id = host_id;
	ls->flags = LS_FLAGS;
	copy_str(ls->host_id_disk.path, SANLK_PATH_LEN, ids_path);
	ls->host_id_disk.offset = 0;
}

static void fill_resource(struct one_disk_resource *r, const char *lockspace,
			  const char *leases_path)
{
	memset(r, 0, sizeof(*r));
	copy_str(r->u.res.lockspace_name, SANLK_NAME_LEN, lockspace);
	copy_str(r->u.res.name, SANLK_NAME_LEN, SPM_LEASE_RESOURCE);
	r->u.res.flags = RES_FLAGS;
	r->u.res.num_disks = 1;
	copy_str(r->u.res.disks[0].path, SANLK_PATH_LEN, leases_path);
	r->u.res.disks[0].offset = SPM_LEASE_SDM_OFFSET;
}

/* ---- errors ------------------------------------------------------------ */

static bool rv_maybe_unreachable(int rv)
{
	return rv == -ECONNREFUSED || rv == -ENOENT || rv == -ECONNRESET ||
	       rv == -EPIPE || rv == -ENOTCONN || rv == -EACCES;
}

/* True when the daemon answers a harmless request. */
static bool daemon_reachable(void)
{
	uint32_t version = 0, proto = 0;

	return sanlock_version(0, &version, &proto) == 0;
}

/* strerror() is not thread-safe; this is (glibc's static descriptions). */
static const char *errno_text(int errnum)
{
	const char *d = strerrordesc_np(errnum);

	return d ? d : "unknown error";
}

static int unavailable(const char *run_dir, int rv, struct pk_error *err)
{
	return pk_error_set(err, PK_E_UNAVAILABLE, ECONNREFUSED,
			    "sanlock daemon not reachable at SANLOCK_RUN_DIR='%s' "
			    "(%s/sanlock.sock: %s); is sanlock running?",
			    run_dir, run_dir, errno_text(rv < 0 ? -rv : ECONNREFUSED));
}

static const char *rv_text(int rv)
{
	if (rv <= -200) {
		return sanlock_strerror(rv);
	}
	return errno_text(-rv);
}

/* True for sanlock's "the lease area holds no (matching) lease" results. */
static bool rv_is_unformatted(int rv)
{
	return rv == SANLK_LEADER_MAGIC || rv == SANLK_LEADER_VERSION ||
	       rv == SANLK_LEADER_LOCKSPACE || rv == SANLK_LEADER_RESOURCE ||
	       rv == SANLK_LEADER_CHECKSUM || rv == SANLK_LEADER_SECTORSIZE;
}

static bool rv_is_io(int rv)
{
	return rv == SANLK_AIO_TIMEOUT || rv == SANLK_DBLOCK_READ ||
	       rv == SANLK_DBLOCK_WRITE || rv == SANLK_LEADER_READ ||
	       rv == SANLK_LEADER_WRITE || rv == -EIO;
}

/*
 * The generic mapping of a sanlock result for an operation `what` on
 * `where`; callers handle their operation's special results first.
 */
static int sanlock_failed(const char *run_dir, int rv, const char *what,
			  const char *where, struct pk_error *err)
{
	if (rv_maybe_unreachable(rv) && !daemon_reachable()) {
		return unavailable(run_dir, rv, err);
	}
	if (rv == -ENOENT || rv == -ENODEV) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				    "%s: sanlock cannot open %s (does it exist?): "
				    "sanlock %d",
				    what, where, rv);
	}
	if (rv_is_unformatted(rv)) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				    "%s: no sanlock lease of the expected name on %s "
				    "(not formatted, or another domain's): sanlock %d (%s)",
				    what, where, rv, rv_text(rv));
	}
	if (rv_is_io(rv)) {
		return pk_error_set(err, PK_E_IO, EIO,
				    "%s: sanlock could not read/write %s: %d (%s)", what,
				    where, rv, rv_text(rv));
	}
	return pk_error_set(err, PK_E_INTERNAL, rv > -200 && rv < 0 ? -rv : EIO,
			    "%s on %s failed: sanlock %d (%s)", what, where, rv,
			    rv_text(rv));
}

/* ---- storage-only verbs ------------------------------------------------ */

int spm_lease_format_lockspace(const struct spm_lease_config *cfg, struct pk_error *err)
{
	struct sanlk_lockspace ls;
	int r;

	r = config_check_storage(cfg, true, false, err);
	if (r < 0) {
		return r;
	}
	apply_run_dir(cfg->sanlock_run_dir);
	fill_lockspace(&ls, cfg->lockspace, 0, cfg->ids_path);
	r = sanlock_write_lockspace(&ls, 0, 0, cfg->io_timeout);
	if (r < 0) {
		return sanlock_failed(run_dir_name(cfg->sanlock_run_dir), r,
				      "writing the sanlock lockspace", cfg->ids_path, err);
	}
	return 0;
}

int spm_lease_format_resource(const struct spm_lease_config *cfg, struct pk_error *err)
{
	struct one_disk_resource res;
	int r;

	r = config_check_storage(cfg, false, true, err);
	if (r < 0) {
		return r;
	}
	apply_run_dir(cfg->sanlock_run_dir);
	fill_resource(&res, cfg->lockspace, cfg->leases_path);
	r = sanlock_write_resource(&res.u.res, 0, 0, 0);
	if (r < 0) {
		return sanlock_failed(run_dir_name(cfg->sanlock_run_dir), r,
				      "writing the SPM lease", cfg->leases_path, err);
	}
	return 0;
}

static int read_owner(const char *run_dir, const char *lockspace, const char *leases_path,
		      struct spm_lease_owner *ret_owner, struct pk_error *err)
{
	struct one_disk_resource res;
	struct sanlk_host *hosts = NULL;
	int count = 0;
	int r;

	fill_resource(&res, lockspace, leases_path);
	r = sanlock_read_resource_owners(&res.u.res, 0, &hosts, &count);
	if (r == -EINVAL) {
		/* sanlock's answer when the area has no lease (sector size 0). */
		r = SANLK_LEADER_MAGIC;
	}
	if (r < 0) {
		free(hosts);
		return sanlock_failed(run_dir, r, "reading the SPM lease owner",
				      leases_path, err);
	}
	ret_owner->host_id = 0;
	ret_owner->generation = 0;
	if (hosts && count > 0) {
		ret_owner->host_id = hosts[0].host_id;
		ret_owner->generation = hosts[0].generation;
	}
	free(hosts);
	return 0;
}

int spm_lease_read_owner(const struct spm_lease_config *cfg,
			 struct spm_lease_owner *ret_owner, struct pk_error *err)
{
	int r;

	r = config_check_storage(cfg, false, true, err);
	if (r < 0) {
		return r;
	}
	apply_run_dir(cfg->sanlock_run_dir);
	return read_owner(run_dir_name(cfg->sanlock_run_dir), cfg->lockspace,
			  cfg->leases_path, ret_owner, err);
}

/* ---- the lease object -------------------------------------------------- */

int spm_lease_new(const struct spm_lease_config *cfg, struct spm_lease **ret,
		  struct pk_error *err)
{
	struct spm_lease *lease;
	int r;

	r = config_check_storage(cfg, true, true, err);
	if (r < 0) {
		return r;
	}
	if (cfg->host_id < 1 || cfg->host_id > SPM_LEASE_MAX_HOST_ID) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "sanlock host id %llu is out of range 1-%d",
				    (unsigned long long)cfg->host_id, SPM_LEASE_MAX_HOST_ID);
	}
	apply_run_dir(cfg->sanlock_run_dir);

	lease = pk_xcalloc(1, sizeof(*lease));
	pthread_mutex_init(&lease->lock, NULL);
	copy_str(lease->lockspace, SANLK_NAME_LEN, cfg->lockspace);
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
	return run_dir_name(lease->run_dir);
}

static void lease_lockspace(const struct spm_lease *lease, struct sanlk_lockspace *ls)
{
	fill_lockspace(ls, lease->lockspace, lease->host_id, lease->ids_path);
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
	return sanlock_failed(lease_run_dir(lease), r, "joining the lockspace",
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
		if (!daemon_reachable()) {
			return unavailable(lease_run_dir(lease), r, err);
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
	return sanlock_failed(lease_run_dir(lease), r, "querying the lockspace",
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

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int spm_lease_join(struct spm_lease *lease, int timeout_ms, struct pk_error *err)
{
	enum spm_lease_join_state state = SPM_LEASE_NOT_JOINED;
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
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
		if (now_ms() >= deadline) {
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
		return sanlock_failed(lease_run_dir(lease), fd,
				      "registering with sanlock", lease_run_dir(lease), err);
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
	if (read_owner(lease_run_dir(lease), lease->lockspace, lease->leases_path,
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
				    lease->lockspace, rv, rv_text(rv));
	}
	return pk_error_set(err, PK_E_BUSY, EBUSY,
			    "the SPM lease of domain '%s' is held by host %llu",
			    lease->lockspace, (unsigned long long)owner.host_id);
}

static int acquire_locked(struct spm_lease *lease, struct spm_lease_owner *ret_holder,
			  struct pk_error *err)
{
	struct one_disk_resource res;
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
	fill_resource(&res, lease->lockspace, lease->leases_path);
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
	if (rv_maybe_unreachable(r) && !daemon_reachable()) {
		drop_registration(lease);
		return unavailable(lease_run_dir(lease), r, err);
	}
	return sanlock_failed(lease_run_dir(lease), r, "taking the SPM lease",
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
	struct one_disk_resource res;
	struct sanlk_resource *list[1];
	int r;

	if (!lease->held || lease->sock < 0) {
		lease->held = false;
		return 0;
	}
	fill_resource(&res, lease->lockspace, lease->leases_path);
	list[0] = &res.u.res;
	r = sanlock_release(lease->sock, -1, 0, 1, list);
	if (r == 0 || r == -ENOENT) {
		/* -ENOENT: sanlock had dropped it already. */
		lease->held = false;
		return 0;
	}
	if (rv_maybe_unreachable(r) && !daemon_reachable()) {
		drop_registration(lease);
		return unavailable(lease_run_dir(lease), r, err);
	}
	return sanlock_failed(lease_run_dir(lease), r, "releasing the SPM lease",
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
		if (rv_maybe_unreachable(r) && !daemon_reachable()) {
			drop_registration(lease);
			return unavailable(lease_run_dir(lease), r, err);
		}
		return pk_error_set(err, PK_E_NOT_SPM, EPERM,
				    "cannot confirm the SPM lease of domain '%s' with "
				    "sanlock (%d: %s); treating it as lost",
				    lease->lockspace, r, rv_text(r));
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
	r = read_owner(lease_run_dir(lease), lease->lockspace, lease->leases_path,
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
		if (!daemon_reachable()) {
			return unavailable(lease_run_dir(lease), r, err);
		}
		return 0;
	}
	if (r == -EBUSY) {
		return pk_error_set(err, PK_E_IN_USE, EBUSY,
				    "cannot leave lockspace '%s': another process on "
				    "this host still holds a lease in it",
				    lease->lockspace);
	}
	return sanlock_failed(lease_run_dir(lease), r, "leaving the lockspace",
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
