/*
 * spm_lease — the SPM lease: poolkeeper's seam over sanlock.
 *
 * On storage (one storage domain):
 *  - the lockspace, named after the domain UUID, fills the start of the
 *    domain's `ids` LV (offset 0, 1 MiB: 512-byte sectors, 1 MiB alignment,
 *    host ids 1..2000);
 *  - the SPM lease is the sanlock resource "SDM" in that lockspace, at the
 *    fixed offset SPM_LEASE_SDM_OFFSET of the domain's `leases` LV (1 MiB).
 * spm_lease_format_lockspace()/spm_lease_format_resource() write both when a
 * domain is created; they need a running sanlock daemon but no lockspace.
 *
 * Life of an spmd (one struct spm_lease per domain, per process):
 *   spm_lease_new()        validates the configuration
 *   spm_lease_join_start() asks sanlock to join the lockspace with our host
 *                          id (asynchronous: it takes ~3 s at io_timeout 1,
 *                          ~21 s at 10); spm_lease_join_poll() reports when
 *                          it is done; spm_lease_join() does both, blocking
 *   spm_lease_acquire()    one non-blocking attempt at the SPM lease:
 *                          0 = held; BUSY naming the holder's host id
 *   spm_lease_check()      MUST be called before every mutation (0 = still
 *                          held, NOT_SPM otherwise)
 *   spm_lease_release()    gives the lease up (SpmStop)
 *   spm_lease_leave()      releases, then leaves the lockspace
 *   spm_lease_free()
 * The daemon's membership in a lockspace outlives the process that asked
 * for it; joining an already joined lockspace succeeds at once.
 *
 * How losing the lease stops mutations (DESIGN rule 2). The first acquire
 * registers the process with sanlock (sanlock_register); from then on the
 * lease belongs to this process and is released by sanlock when the process
 * exits or dies. When sanlock cannot renew our host's lockspace lease (the
 * storage is gone or too slow), it must make the lease holders stop before
 * another host may take the lease, and it does so by killing them: no
 * killpath is set, so sanlock sends the registered pid SIGTERM, repeatedly,
 * and SIGKILL once its grace period (`sanlock daemon -g`, 40 s) ends
 * (measured at io_timeout 1: SIGTERM ~8 s after the last renewal). An
 * operator's `sanlock client rem_lockspace` SIGKILLs the holder at once.
 * spmd therefore:
 *  1. handles SIGTERM by first calling spm_lease_mark_lost() (async-signal-
 *     safe: it only stores an atomic flag) and then shutting down — a
 *     SIGTERM from an operator is handled the same way;
 *  2. calls spm_lease_check() right before each LVM/metadata write; it fails
 *     once the flag is set, and otherwise asks sanlock whether this process
 *     still holds the lease (one local socket round trip, ~0.1 ms), so a
 *     lease that sanlock dropped is noticed even before the signal arrives.
 * A write already inside LVM when the lease is lost finishes or is killed
 * with the process; the next SPM rolls tasks forward (DESIGN rule 5).
 * A killpath helper (sanlock_killpath) was not chosen: it would keep a
 * process alive that no longer holds the lease, for no benefit here.
 *
 * Threads: the functions taking a struct spm_lease serialize on a mutex in
 * it (sanlock requires one user at a time of a registered connection), so
 * they may be called from several threads. libsanlock finds the daemon
 * through $SANLOCK_RUN_DIR: spm_lease_new() and the functions taking a
 * config set it when cfg->sanlock_run_dir differs from the environment, so
 * the first of them MUST run before other threads start (later calls with
 * the same directory never write the environment again).
 *
 * Errors: UNAVAILABLE when the sanlock daemon cannot be reached (the message
 * names SANLOCK_RUN_DIR); NOT_FOUND when the lockspace is not joined, or when
 * the lease area holds no lease of that name (not formatted, or another
 * domain's); BUSY when another host holds the lease (the message and
 * ret_holder name its host id); NOT_SPM from spm_lease_check(); TIMEOUT from
 * spm_lease_join(); IO when sanlock cannot read or write the lease areas or
 * a join fails; INVALID_ARGUMENT for a bad configuration; INTERNAL for any
 * other sanlock result (named in the message).
 *
 * Implemented by spm/lease.c (the lease object), spm/lease_storage.c (the
 * storage-only verbs) and spm/lease_sanlock.c (what both say to sanlock);
 * spm/lease_internal.h is what they share.
 */
#ifndef SPM_LEASE_H
#define SPM_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* The SPM resource name and its place in the domain's `leases` LV. */
#define SPM_LEASE_RESOURCE "SDM"
#define SPM_LEASE_SDM_OFFSET UINT64_C(1048576)
/* Sizes the LVs must have at least: lockspace 1 MiB, leases 2 MiB. */
#define SPM_LEASE_IDS_MIN_SIZE UINT64_C(1048576)
#define SPM_LEASE_LEASES_MIN_SIZE UINT64_C(2097152)
#define SPM_LEASE_MAX_HOST_ID 2000
/* Longest lockspace name (sanlock's limit, without the terminating NUL). */
#define SPM_LEASE_NAME_MAX 47

/*
 * What the lease is made of. Strings are borrowed: spm_lease_new() copies
 * them, the format functions only read them during the call.
 */
struct spm_lease_config {
	const char *lockspace;       /* lockspace name: the domain UUID */
	const char *ids_path;        /* file or device of the `ids` LV */
	const char *leases_path;     /* file or device of the `leases` LV */
	uint64_t host_id;            /* 1..SPM_LEASE_MAX_HOST_ID; unused by format */
	unsigned io_timeout;         /* seconds (sanlock io_timeout), 1..60 */
	const char *sanlock_run_dir; /* NULL: $SANLOCK_RUN_DIR or /run/sanlock */
};

/* The holder of the SPM lease as recorded on storage. */
struct spm_lease_owner {
	uint64_t host_id;    /* 0: nobody holds it */
	uint64_t generation; /* the holder's lockspace generation */
};

enum spm_lease_join_state {
	SPM_LEASE_NOT_JOINED = 0,
	SPM_LEASE_JOINING = 1,
	SPM_LEASE_JOINED = 2,
};

struct spm_lease_status {
	enum spm_lease_join_state join;
	bool held;                   /* this process holds the SPM lease */
	struct spm_lease_owner owner; /* from storage; host_id 0 if unknown */
};

struct spm_lease;

/*
 * Writes the lockspace to cfg->ids_path (offset 0) and the SDM resource to
 * cfg->leases_path (SPM_LEASE_SDM_OFFSET). Destroys whatever lease state was
 * there: only for a new domain. Needs the sanlock daemon.
 */
int spm_lease_format_lockspace(const struct spm_lease_config *cfg, struct pk_error *err);
int spm_lease_format_resource(const struct spm_lease_config *cfg, struct pk_error *err);

/*
 * Reads the current holder of the SDM resource from storage (any host may
 * ask; no lockspace membership needed). A holder whose host died keeps
 * appearing here until another host takes the lease.
 */
int spm_lease_read_owner(const struct spm_lease_config *cfg,
			 struct spm_lease_owner *ret_owner, struct pk_error *err);

/* Validates cfg and copies it. Does not contact sanlock. *ret owned by caller. */
int spm_lease_new(const struct spm_lease_config *cfg, struct spm_lease **ret,
		  struct pk_error *err);

/*
 * Closes the registration with sanlock (which releases the lease if held)
 * but does not leave the lockspace. NULL-safe.
 */
void spm_lease_free(struct spm_lease *lease);

/* Starts joining the lockspace; 0 also when joined or joining already. */
int spm_lease_join_start(struct spm_lease *lease, struct pk_error *err);

/*
 * Reports the join state. An asynchronous join that failed (for example a
 * host id used by a live host) ends as NOT_JOINED, with an error naming the
 * likely causes; *ret_state is written on success only.
 */
int spm_lease_join_poll(struct spm_lease *lease, enum spm_lease_join_state *ret_state,
			struct pk_error *err);

/* join_start + join_poll every 100 ms until joined, failed or timeout_ms. */
int spm_lease_join(struct spm_lease *lease, int timeout_ms, struct pk_error *err);

/*
 * One attempt at the SPM lease, never waiting for another host. 0: held by
 * this process (also when it already was). BUSY: another host (or another
 * process of this host) holds it, its host id in *ret_holder (may be NULL;
 * written on BUSY only, host_id 0 when storage did not name one).
 * NOT_FOUND: the lockspace is not joined, or the SDM lease is not formatted.
 */
int spm_lease_acquire(struct spm_lease *lease, struct spm_lease_owner *ret_holder,
		      struct pk_error *err);

/* Gives the lease up. 0 also when it was not held. */
int spm_lease_release(struct spm_lease *lease, struct pk_error *err);

/*
 * 0 when this process still holds the lease; NOT_SPM otherwise (never
 * acquired, released, marked lost, or dropped by sanlock). Call before every
 * mutation. UNAVAILABLE when sanlock cannot be asked (treat as not held).
 */
int spm_lease_check(struct spm_lease *lease, struct pk_error *err);

/*
 * Records that the lease must be considered lost: every later
 * spm_lease_check() fails. Async-signal-safe (for a SIGTERM handler).
 */
void spm_lease_mark_lost(struct spm_lease *lease);

/* Join state, whether held, and the owner on storage. */
int spm_lease_status(struct spm_lease *lease, struct spm_lease_status *ret_status,
		     struct pk_error *err);

/*
 * Releases the lease if held, then leaves the lockspace (waits until sanlock
 * has released our host id). 0 also when not joined.
 */
int spm_lease_leave(struct spm_lease *lease, struct pk_error *err);

/* The host id and lockspace this lease was made for (for messages). */
uint64_t spm_lease_host_id(const struct spm_lease *lease);
const char *spm_lease_lockspace(const struct spm_lease *lease);

#endif
