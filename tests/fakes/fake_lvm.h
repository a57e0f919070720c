/*
 * fake_lvm — an in-memory LVM behind common/lvm.h.
 *
 * A unit test that names `fake_lvm` on its `pk-test-fakes:` line runs the
 * SPM/HSM logic against this simulation instead of liblvm2cmd: every
 * function of common/lvm.h is defined here, so the real common/lvm.c and
 * common/lvm_verbs.c are never linked in.
 *
 * What it models:
 *  - "storage", shared by every struct pk_lvm of the process (so one test
 *    can play several hosts): PVs, VGs with tags and an extent size, LVs
 *    with tags and linear segments;
 *  - PVs are the configured devices; each has a size (1 GiB unless
 *    fake_lvm_set_pv_size said otherwise) and pe_start 1 MiB, so a PV holds
 *    (size - 1 MiB) / extent_size extents;
 *  - extents are allocated first-fit over the VG's PVs in their order,
 *    splitting an LV across PVs when one is full (as LVM's normal policy
 *    does); an extend appends segments, merging one that continues the last;
 *  - activation: an LV is active or not (one state for the whole process);
 *    fake_lvm_set_open() marks an LV open, so remove and deactivate answer
 *    PK_E_IN_USE as LVM does for an LV in use.
 * Arguments are checked with the real adapter's checks (common/lvm_text.h)
 * and failures carry the codes the real adapter maps LVM's errors to
 * (NOT_FOUND, ALREADY_EXISTS, NO_SPACE, IN_USE, UNSUPPORTED).
 *
 * Failure injection: fake_lvm_fail_next(rv) makes the next verb (after its
 * arguments were checked) fail with rv (a negative errno: -ENOSPC ->
 * NO_SPACE, -ENOENT -> NOT_FOUND, -EEXIST -> ALREADY_EXISTS, -EBUSY ->
 * BUSY, anything else -> INTERNAL) and no effect; fake_lvm_fail_op() does
 * the same for the next call of one verb. One shot each.
 *
 * The write guard (pk_lvm_write_guard_set) runs before every writing verb,
 * outside the fake's lock; a verb it refuses is not counted and changes
 * nothing.
 *
 * State is process-global; tests MUST call fake_lvm_reset() first (with no
 * struct pk_lvm alive). Thread-safe: one verb or control runs at a time.
 */
#ifndef PK_FAKE_LVM_H
#define PK_FAKE_LVM_H

#include <stdbool.h>
#include <stdint.h>

enum fake_lvm_op {
	FAKE_LVM_VG_CREATE,
	FAKE_LVM_VG_REPORT,
	FAKE_LVM_VG_REMOVE,
	FAKE_LVM_VG_TAGS,
	FAKE_LVM_LV_CREATE,
	FAKE_LVM_LV_REMOVE,
	FAKE_LVM_LV_EXTEND,
	FAKE_LVM_LV_REDUCE,
	FAKE_LVM_LV_TAGS,
	FAKE_LVM_LV_REPORT,
	FAKE_LVM_LV_ACTIVATION,
	FAKE_LVM_OP_COUNT,
};

/* Forgets all storage, injected failures and counters. */
void fake_lvm_reset(void);

/* The next verb of any kind fails with rv (< 0). */
void fake_lvm_fail_next(int rv);

/* The next call of op fails with rv (< 0). */
void fake_lvm_fail_op(enum fake_lvm_op op, int rv);

/* Size of a PV (before it joins a VG). */
void fake_lvm_set_pv_size(const char *path, uint64_t size);

/* Calls made to op since the reset (failed ones included). */
int fake_lvm_calls(enum fake_lvm_op op);

bool fake_lvm_lv_active(const char *vg, const char *lv);

/*
 * The next write verbs meet LVM's file lock held by another process for
 * `attempts` attempts in all; each attempt asks the write guard again, as
 * common/lvm.c does. fake_lvm_busy_retries() counts the busy attempts.
 */
void fake_lvm_set_busy_attempts(int attempts);
int fake_lvm_busy_retries(void);

/*
 * After the next successful call of op, fn(ctx) runs once on the calling
 * thread, outside the fake's lock (a test's way to act between two verbs,
 * e.g. lose the lease right after a write).
 */
void fake_lvm_after_op(enum fake_lvm_op op, void (*fn)(void *ctx), void *ctx);

/* An open LV cannot be removed or deactivated (PK_E_IN_USE). */
void fake_lvm_set_open(const char *vg, const char *lv, bool open);

#endif
