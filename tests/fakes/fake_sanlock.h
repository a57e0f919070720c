/*
 * fake_sanlock — an in-memory sanlock daemon behind libsanlock's client API.
 *
 * The fake replaces the libsanlock client functions that spm/lease*.c call
 * (sanlock_write_lockspace, _write_resource, _read_resource_owners,
 * _add_lockspace_timeout, _inq_lockspace, _rem_lockspace, _register,
 * _acquire, _release, _inquire, _version): a test that names it on its
 * `pk-test-fakes:` line runs the real spm/lease*.c — and whatever spmd logic
 * sits on top of it — against this simulation instead of a daemon. The
 * executable's definitions win over the shared libsanlock at link time.
 *
 * What it models (one local host, other hosts only as lease owners):
 *  - "storage": lockspaces written per path, resources written per
 *    (path, offset), each resource with its owner host id on storage;
 *  - the local daemon: joined lockspaces (a join takes `join_polls`
 *    sanlock_inq_lockspace calls to finish), registrations (a real fd the
 *    caller may close — closing it releases its leases, as in sanlock);
 *  - other hosts: fake_sanlock_set_owner() makes a host own a resource, so
 *    an acquire answers SANLK_ACQUIRE_IDLIVE.
 * Results follow what sanlock 3.8 answers (measured against the daemon):
 * -ECONNREFUSED when "stopped", -ENOSPC for an acquire in a lockspace not
 * joined, SANLK_LEADER_MAGIC for a resource never written, -EINVAL from
 * read_resource_owners on an area with no lease, -EEXIST for a second
 * acquire, -EBUSY from rem_lockspace(UNUSED) while a lease is held.
 *
 * Failure injection: fake_sanlock_fail_next(op, rv) makes the next call of
 * `op` return rv (negative) without effect; one shot per call.
 *
 * State is process-global (a fake stands in for a daemon); tests MUST call
 * fake_sanlock_reset() first. Not thread-safe.
 */
#ifndef PK_FAKE_SANLOCK_H
#define PK_FAKE_SANLOCK_H

#include <stdbool.h>
#include <stdint.h>

enum fake_sanlock_op {
	FAKE_SANLOCK_WRITE_LOCKSPACE,
	FAKE_SANLOCK_WRITE_RESOURCE,
	FAKE_SANLOCK_READ_OWNERS,
	FAKE_SANLOCK_ADD_LOCKSPACE,
	FAKE_SANLOCK_INQ_LOCKSPACE,
	FAKE_SANLOCK_REM_LOCKSPACE,
	FAKE_SANLOCK_REGISTER,
	FAKE_SANLOCK_ACQUIRE,
	FAKE_SANLOCK_RELEASE,
	FAKE_SANLOCK_INQUIRE,
	FAKE_SANLOCK_VERSION,
	FAKE_SANLOCK_OP_COUNT,
};

/* Forgets everything (closes the fake's registrations); daemon running. */
void fake_sanlock_reset(void);

/* A stopped daemon answers -ECONNREFUSED to every call. */
void fake_sanlock_set_running(bool running);

/* The next call of op returns rv (< 0) and does nothing else. */
void fake_sanlock_fail_next(enum fake_sanlock_op op, int rv);

/* How many sanlock_inq_lockspace calls a join stays in progress (default 1). */
void fake_sanlock_set_join_polls(int polls);

/* Another host (or 0: nobody) owns the resource `name` of `lockspace`. */
void fake_sanlock_set_owner(const char *lockspace, const char *name, uint64_t host_id);

/*
 * The local daemon loses the lockspace (renewal failed): it leaves it and
 * drops every lease held in it; the owner on storage stays (as after a
 * host failure).
 */
void fake_sanlock_lose_lockspace(const char *lockspace);

/* Calls made to op since the reset (failed ones included). */
int fake_sanlock_calls(enum fake_sanlock_op op);

/* Inspection of the simulated state. */
bool fake_sanlock_lockspace_written(const char *path, const char *lockspace);
bool fake_sanlock_resource_written(const char *path, uint64_t offset, const char *lockspace,
				   const char *name);
bool fake_sanlock_joined(const char *lockspace, uint64_t host_id);
uint64_t fake_sanlock_owner(const char *lockspace, const char *name);
/* The arguments of the last add_lockspace / write_lockspace. */
uint32_t fake_sanlock_last_io_timeout(void);
uint32_t fake_sanlock_last_add_flags(void);
/* Flags (SANLK_LSF_ / SANLK_RES_) of the last lockspace / resource struct seen. */
uint32_t fake_sanlock_last_ls_flags(void);
uint32_t fake_sanlock_last_res_flags(void);

#endif
