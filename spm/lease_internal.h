/*
 * spm_lease internals: what the files implementing spm/lease.h share.
 * Include only from spm/lease*.c; everyone else uses spm/lease.h.
 *
 *  - spm/lease_sanlock.c holds the vocabulary of the others: checking a
 *    configuration, $SANLOCK_RUN_DIR, the sanlock structs that describe
 *    our lockspace and the SDM resource, and the mapping of sanlock results
 *    to struct pk_error.
 *  - spm/lease_storage.c holds the storage-only verbs: formatting the areas
 *    of a new domain and reading the lease owner.
 *  - spm/lease.c holds struct spm_lease and its life cycle: join, acquire,
 *    release, check, status, leave.
 */
#ifndef SPM_LEASE_INTERNAL_H
#define SPM_LEASE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sanlock.h>

#include "common/error.h"
#include "spm/lease.h"

/* A resource with its one disk, laid out as sanlock expects. */
struct spm_lease_one_disk_resource {
	union {
		struct sanlk_resource res;
		char bytes[sizeof(struct sanlk_resource) + sizeof(struct sanlk_disk)];
	} u;
};

/* ---- configuration (spm/lease_sanlock.c) ----------------------------------- */

/* The run dir libsanlock uses: configured, else $SANLOCK_RUN_DIR, else the default. */
const char *spm_lease_run_dir_name(const char *configured);

/*
 * Sets $SANLOCK_RUN_DIR to configured (NULL: leaves it) when it differs;
 * see the thread rule in spm/lease.h.
 */
void spm_lease_run_dir_apply(const char *configured);

/*
 * INVALID_ARGUMENT unless cfg has a valid lockspace name, io_timeout and run
 * dir, and the ids (need_ids) and leases (need_leases) paths sanlock takes.
 * The host id is not checked.
 */
int spm_lease_config_check_storage(const struct spm_lease_config *cfg, bool need_ids,
				   bool need_leases, struct pk_error *err);

/* Copies a string already checked to fit (with its NUL) into dst. */
void spm_lease_copy_str(char *dst, size_t dst_size, const char *src);

/* Our lockspace and the SDM resource, as sanlock takes them. */
void spm_lease_fill_lockspace(struct sanlk_lockspace *ls, const char *name,
			      uint64_t host_id, const char *ids_path);
void spm_lease_fill_resource(struct spm_lease_one_disk_resource *r, const char *lockspace,
			     const char *leases_path);

/* ---- sanlock results (spm/lease_sanlock.c) --------------------------------- */

/* True for results that may mean the daemon is gone (then ask it). */
bool spm_lease_rv_maybe_unreachable(int rv);

/* True when the daemon answers a harmless request. */
bool spm_lease_daemon_reachable(void);

/* UNAVAILABLE, naming run_dir and rv. */
int spm_lease_unavailable(const char *run_dir, int rv, struct pk_error *err);

/* A description of a sanlock result; thread-safe. */
const char *spm_lease_rv_text(int rv);

/*
 * The generic mapping of a sanlock result for an operation `what` on
 * `where`; callers handle their operation's special results first.
 */
int spm_lease_sanlock_failed(const char *run_dir, int rv, const char *what,
			     const char *where, struct pk_error *err);

/* ---- storage (spm/lease_storage.c) ----------------------------------------- */

/*
 * spm_lease_read_owner() for arguments already checked; run_dir only names
 * the daemon in errors.
 */
int spm_lease_read_owner_at(const char *run_dir, const char *lockspace,
			    const char *leases_path, struct spm_lease_owner *ret_owner,
			    struct pk_error *err);

#endif
