/*
 * struct spm — the state of one spmd: settings, identity, and the
 * subsystems every verb uses. Created once by main(); verbs receive it.
 *
 * One spmd serves the storage domain named by the setting `domain`, or —
 * when that is unset — the first domain it is asked to create or to become
 * SPM of. The VG of a domain is named by the domain's UUID.
 *
 * Role (the SPM lease): state and domain are guarded by role_lock, which is
 * only ever held for a few loads and stores, never across sanlock or LVM
 * I/O (a SIGTERM, a status call or a write check must not wait behind a
 * slow storage round trip). A mutating verb calls spm_role_check() first,
 * and the write guard installed in spm->lvm calls it again right before
 * each attempt of every LVM write (common/lvm.h), so a host that lost the
 * lease stops writing at once, also between the retries of one command.
 *
 * Every role change bumps role_gen; what was read under an older
 * generation (the volume cache) is never used again, so a host that lost
 * and regained the lease never serves what it read before.
 *
 * Becoming the SPM goes CONTENDING -> RECOVERING -> HELD: while RECOVERING
 * the thread of SpmStart finishes what earlier SPMs left half done, and
 * every other mutation is refused with UNAVAILABLE ("recovery in progress,
 * retry"); reads are served.
 */
#ifndef SPM_SPM_H
#define SPM_SPM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/error.h"
#include "common/uuid.h"

struct pk_lvm;
struct pk_activation;
struct spm_lease;
struct pk_locks;
struct spm_tasks;
struct spm_taskpool;
struct spm_volume_cache;
struct spm_prepseq;

/* Namespaces of spm->locks (common/locks.h), in the order they are taken. */
enum spm_lock_ns {
	SPM_LOCK_DOMAIN = 0,
	SPM_LOCK_IMAGE = 1,
	SPM_LOCK_VOLUME = 2,
};

enum spm_role_state {
	SPM_ROLE_FREE = 1,       /* not the SPM; nobody known to be */
	SPM_ROLE_CONTENDING = 2, /* SpmStart under way */
	SPM_ROLE_HELD = 3,       /* this host is the SPM */
	SPM_ROLE_OTHER = 4,      /* another host holds the lease */
	SPM_ROLE_RECOVERING = 5, /* lease held; recovery runs, mutations refused */
};

struct spm {
	const struct pk_config *cfg; /* owned by main */
	struct pk_daemon_info info;
	struct pk_lvm *lvm;
	struct pk_activation *act;
	struct pk_locks *locks; /* namespaces: enum spm_lock_ns */
	struct spm_tasks *tasks;
	int lock_timeout_ms;
	struct spm_volume_cache *cache; /* spm/volume.c */
	struct spm_requests *requests;  /* spm/requests.h; NULL: none remembered */
	struct spm_prepseq *prepseq;    /* spm/prepseq.h: order of ImagePrepared notices */

	/* Workers and queue of the asynchronous tasks (spm/taskpool.h); settings
	 * task_workers, task_queue_max. main waits for them at shutdown. */
	struct spm_taskpool *pool;

	pthread_mutex_t role_lock;
	char domain[PK_UUID_BUFLEN]; /* "" until known */
	/* NULL until the domain's lease is set up; then fixed until spm_release
	 * (atomic: spm_role_shutdown reads it without role_lock). */
	struct spm_lease *_Atomic lease;
	enum spm_role_state role;
	uint64_t lease_version;
	_Atomic uint64_t role_gen; /* bumped on every role change */
	atomic_bool stopping;      /* spm_role_shutdown was called */
	/* The last recovery of the lease held failed: SpmStart runs it again. */
	bool recovery_pending;
	bool recovery_running;     /* a retry is under way (one at a time) */
	/* spm/auto.h: no automatic SpmStart before this (monotonic ms); set by SpmStop. */
	_Atomic uint64_t auto_hold_until_ms;
};

struct spm_role_status {
	char domain[PK_UUID_BUFLEN];
	enum spm_role_state state;
	int32_t host_id;
	int32_t spm_host_id; /* 0 when unknown */
	uint64_t lease_version;
	bool recovery_pending; /* held, but interrupted work is not all finished */
};

int spm_init(struct spm *spm, const struct pk_config *cfg, struct pk_error *err);
void spm_release(struct spm *spm);

/* Becomes the SPM of domain (joins the lockspace, takes the lease, recovers). */
int spm_role_start(struct spm *spm, const char *domain, struct spm_role_status *ret,
		   struct pk_error *err);
int spm_role_stop(struct spm *spm, const char *domain, struct spm_role_status *ret,
		  struct pk_error *err);
int spm_role_status(struct spm *spm, const char *domain, struct spm_role_status *ret,
		    struct pk_error *err);
/*
 * 0 when this spmd holds the SPM lease of domain and serves writes (asks
 * sanlock, outside role_lock), else NOT_SPM naming the holder; UNAVAILABLE
 * while another thread recovers (the recovery thread itself passes).
 */
int spm_role_check(struct spm *spm, const char *domain, struct pk_error *err);
/*
 * spm_role_check() at the start of a mutation, which then pins this
 * thread's later checks (and the write guard's) to the role generation of
 * this one: after a loss and a regain of the lease they fail with NOT_SPM.
 * end (always, after begin) unpins.
 */
int spm_role_mutation_begin(struct spm *spm, const char *domain, struct pk_error *err);
void spm_role_mutation_end(void);
/*
 * Called from main on SIGTERM: no write may start afterwards. Takes no lock
 * (atomics only), so it never waits for a thread inside sanlock or LVM.
 */
void spm_role_shutdown(struct spm *spm);
/* The current role generation (see above). */
uint64_t spm_role_gen(struct spm *spm);

/*
 * CreateDomain writes its VG before any lease exists: between begin and
 * end the write guard lets this thread's writes to vg through. Not nested.
 */
void spm_write_guard_exempt_begin(const char *vg);
void spm_write_guard_exempt_end(void);

/* Checks domain is a UUID and the domain this spmd serves (NOT_FOUND otherwise). */
int spm_domain_check(struct spm *spm, const char *domain, struct pk_error *err);

/*
 * Activates vg/lv on this host for the SPM's own I/O (qcow2 headers,
 * zeroing, the lease LVs) and writes its path. deactivate: err may be NULL
 * (a failure is then only logged: the LV stays active, which is harmless).
 */
int spm_lv_activate(struct spm *spm, const char *vg, const char *lv, char *path, size_t size,
		    struct pk_error *err);
int spm_lv_deactivate(struct spm *spm, const char *vg, const char *lv, struct pk_error *err);

/* Waits until no asynchronous task is queued or runs (shutdown; spm/tasks.c). */
void spm_async_wait(struct spm *spm);

#endif
