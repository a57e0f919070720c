/*
 * hsm_thinp — hsmd's drive monitor: the thin (COW) volumes its running VMs
 * write never fill up (docs/THIN.md).
 *
 * What it watches: every COW leaf of every running poolkeeper VM of this
 * host, and during an active commit the base too (the mirror writes the
 * guest's data into it). Each is one node of a disk's chain, "vda[N]".
 *
 * How:
 *  - A block threshold (hsm/virt.h) is armed on every watched node at
 *    lv_size - free trigger (hsm/thinp_policy.h). Its event, an ENOSPC
 *    I/O error, a VM starting or resuming, a block job event, a libvirt
 *    reconnect and a periodic backstop (every check_seconds) all do one
 *    thing: queue the VM for a check. A VM is queued at most once; a kick
 *    while it is being checked makes it checked again right after. That is
 *    how concurrent triggers for one volume coalesce into one extension.
 *  - A check reads every node's allocation (hsm_virt_block_stats), and for
 *    each watched volume that needs it asks the SPM for a bigger LV
 *    (ExtendVolume, wherever the SPM runs), refreshes the LV here and arms
 *    the threshold again. Checks run on a pool of `workers` threads, so one
 *    slow extension never holds back another VM's.
 *  - No SPM, a full VG, any refused extension: the VM is checked again
 *    after a backoff (50 ms doubling to retry_max_ms) for as long as it
 *    takes; hsm_thinp_vm_status says why it waits, and every wait is
 *    logged and counted.
 *  - A VM paused on ENOSPC (its disks report NO_SPACE) is resumed once its
 *    volumes have room again; one paused for any other reason (EIO, an
 *    administrator's pause) is never resumed.
 *  - Nothing is kept on disk: the live state (libvirt's domains, qemu's
 *    allocations, the LVs' sizes) is the state. After a restart or a
 *    reconnect every VM is checked, which re-arms every threshold and
 *    resumes the VMs that ENOSPC paused meanwhile.
 *
 * The monitor takes no image or VM lock: extending and refreshing a volume
 * is safe at any time (the SPM serializes its own changes, a refresh is
 * idempotent), and waiting behind a long merge step would pause the guest.
 *
 * Threads: the hooks may be called from any thread (libvirt's event thread
 * included) and only queue work; hsm_thinp_vm_status from any thread.
 */
#ifndef HSM_THINP_H
#define HSM_THINP_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "hsm/thinp_policy.h"

struct hsm;
struct hsm_thinp;

#define HSM_THINP_STATUS_MAX 512

/* A monitor for hsm with policy p (checked, hsm_thinp_policy_check, when
 * p->monitor is on; off, e.g. a zeroed policy, it never runs). It does
 * nothing until hsm_thinp_start. */
int hsm_thinp_new(struct hsm *hsm, const struct hsm_thinp_policy *p, struct hsm_thinp **ret,
		  struct pk_error *err);

/* Starts the workers and the backstop, and queues every VM of the host.
 * hsm->virt must be connected. Does nothing when the policy's monitor is
 * off. */
int hsm_thinp_start(struct hsm_thinp *t, struct pk_error *err);

/* Stops and joins the threads (before hsm->virt goes away). Idempotent. */
void hsm_thinp_stop(struct hsm_thinp *t);

/* Stops, then frees. NULL-safe. */
void hsm_thinp_free(struct hsm_thinp *t);

/* ---- hooks: each queues a check of the VM -------------------------------- */

void hsm_thinp_on_threshold(struct hsm_thinp *t, const char *vm, const char *dev);
/* reason "enospc" also records the image at path as the one that filled. */
void hsm_thinp_on_io_error(struct hsm_thinp *t, const char *vm, const char *path,
			   const char *reason);
/* The VM started, resumed, took a snapshot or a block job changed. */
void hsm_thinp_kick(struct hsm_thinp *t, const char *vm);
/* Every VM (libvirt reconnected: thresholds may be gone, events lost). */
void hsm_thinp_kick_all(struct hsm_thinp *t);

/* ---- what it says -------------------------------------------------------- */

/* Why the monitor waits on vm, "" when it does not: "waiting for space on
 * volume <id> (VG full?) since ...: <the SPM's answer>". NULL-safe t. */
void hsm_thinp_vm_status(struct hsm_thinp *t, const char *vm, char *buf, size_t size);

struct hsm_thinp_counters {
	uint64_t checks;     /* VM checks finished */
	uint64_t extends;    /* volumes extended */
	uint64_t waits;      /* extensions that could not be done and wait */
	uint64_t resumes;    /* VMs resumed after an ENOSPC pause */
};
void hsm_thinp_counters(struct hsm_thinp *t, struct hsm_thinp_counters *ret);

#endif
