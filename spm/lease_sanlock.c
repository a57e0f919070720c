/*
 * What spm/lease*.c say to libsanlock, and how its answers become errors:
 * configuration checks, $SANLOCK_RUN_DIR, the sanlock structs describing
 * our lockspace and the SDM resource, and the mapping of sanlock results.
 * See spm/lease_internal.h.
 */
#include "spm/lease.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_rv.h>

#include "spm/lease_internal.h"

#define DEFAULT_RUN_DIR "/run/sanlock"
#define IO_TIMEOUT_MAX 60

/* 512-byte sectors, 1 MiB areas: max 2000 hosts, the same on every LV. */
#define LS_FLAGS (SANLK_LSF_ALIGN1M | SANLK_LSF_SECTOR512)
#define RES_FLAGS (SANLK_RES_ALIGN1M | SANLK_RES_SECTOR512)

/* ---- configuration ----------------------------------------------------- */

const char *spm_lease_run_dir_name(const char *configured)
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
void spm_lease_run_dir_apply(const char *configured)
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
int spm_lease_config_check_storage(const struct spm_lease_config *cfg, bool need_ids,
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
void spm_lease_copy_str(char *dst, size_t dst_size, const char *src)
{
	size_t n = strlen(src);

	if (n >= dst_size) {
		n = dst_size - 1;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void spm_lease_fill_lockspace(struct sanlk_lockspace *ls, const char *name,
			      uint64_t host_id, const char *ids_path)
{
	memset(ls, 0, sizeof(*ls));
	spm_lease_copy_str(ls->name, SANLK_NAME_LEN, name);
	ls->host_id = host_id;
	ls->flags = LS_FLAGS;
	spm_lease_copy_str(ls->host_id_disk.path, SANLK_PATH_LEN, ids_path);
	ls->host_id_disk.offset = 0;
}

void spm_lease_fill_resource(struct spm_lease_one_disk_resource *r, const char *lockspace,
			     const char *leases_path)
{
	memset(r, 0, sizeof(*r));
	spm_lease_copy_str(r->u.res.lockspace_name, SANLK_NAME_LEN, lockspace);
	spm_lease_copy_str(r->u.res.name, SANLK_NAME_LEN, SPM_LEASE_RESOURCE);
	r->u.res.flags = RES_FLAGS;
	r->u.res.num_disks = 1;
	spm_lease_copy_str(r->u.res.disks[0].path, SANLK_PATH_LEN, leases_path);
	r->u.res.disks[0].offset = SPM_LEASE_SDM_OFFSET;
}

/* ---- errors ------------------------------------------------------------ */

bool spm_lease_rv_maybe_unreachable(int rv)
{
	return rv == -ECONNREFUSED || rv == -ENOENT || rv == -ECONNRESET ||
	       rv == -EPIPE || rv == -ENOTCONN || rv == -EACCES;
}

/* True when the daemon answers a harmless request. */
bool spm_lease_daemon_reachable(void)
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

int spm_lease_unavailable(const char *run_dir, int rv, struct pk_error *err)
{
	return pk_error_set(err, PK_E_UNAVAILABLE, ECONNREFUSED,
			    "sanlock daemon not reachable at SANLOCK_RUN_DIR='%s' "
			    "(%s/sanlock.sock: %s); is sanlock running?",
			    run_dir, run_dir, errno_text(rv < 0 ? -rv : ECONNREFUSED));
}

const char *spm_lease_rv_text(int rv)
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
int spm_lease_sanlock_failed(const char *run_dir, int rv, const char *what,
			     const char *where, struct pk_error *err)
{
	if (spm_lease_rv_maybe_unreachable(rv) && !spm_lease_daemon_reachable()) {
		return spm_lease_unavailable(run_dir, rv, err);
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
				    what, where, rv, spm_lease_rv_text(rv));
	}
	if (rv_is_io(rv)) {
		return pk_error_set(err, PK_E_IO, EIO,
				    "%s: sanlock could not read/write %s: %d (%s)", what,
				    where, rv, spm_lease_rv_text(rv));
	}
	return pk_error_set(err, PK_E_INTERNAL, rv > -200 && rv < 0 ? -rv : EIO,
			    "%s on %s failed: sanlock %d (%s)", what, where, rv,
			    spm_lease_rv_text(rv));
}
