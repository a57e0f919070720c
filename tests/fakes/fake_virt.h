/*
 * fake_virt — an in-memory libvirtd behind hsm/virt.h, for unit tests of
 * the HSM logic (VMs, snapshots, merge jobs, recovery). A test that names
 * it on its `pk-test-fakes:` line links tests/fakes/fake_virt*.c instead of
 * hsm/virt*.c.
 *
 * What it models, following what libvirt 9.0 + qemu 7.2 do (checked by
 * tests/integration/test_virt.sh against the real daemon):
 *  - "images": fake_virt_image_add(path, backing) is the qcow2 header of
 *    a file; when a domain is created, each disk's chain is followed from
 *    its leaf through these backing links (an unknown path ends the
 *    chain). From then on the fake keeps the chain itself, changed by
 *    snapshots and jobs as the qcow2 headers would be.
 *  - domains: persistent, created from our domain XML (parsed with
 *    hsm/vmxml.h), running or shut off; our <metadata> is stored and
 *    listed like libvirt's; foreign domains can be added.
 *  - live XML in libvirt's format: per disk the chain with `index`
 *    attributes (unique per domain, new ones for each overlay), nested
 *    <backingStore> ending with an empty one, <mirror job='active-commit'>
 *    with ready='yes' once ready; an inactive domain shows only the leaf.
 *  - disk-only atomic snapshots (the overlays become the leaves, all or
 *    none; QUIESCE fails UNAVAILABLE unless fake_virt_set_guest_agent);
 *  - block jobs, one per disk: commit, active commit, pull. A job stays
 *    running until the test moves it: fake_virt_job_progress / _ready /
 *    _complete / _fail. Pivot (abort with pivot=true) needs READY and then
 *    changes the chain and queues COMPLETED; abort without pivot queues
 *    CANCELED; stopping the VM drops its jobs silently.
 *  - events (BLOCK_JOB_2, lifecycle, reconnected) are delivered in order
 *    from the fake's own event thread, like libvirt's event loop, never
 *    from inside a verb. fake_virt_events_flush() waits for delivery.
 *  - connection loss: fake_virt_disconnect() makes every verb fail with
 *    UNAVAILABLE and DROPS every event until fake_virt_reconnect(), which
 *    bumps the generation and delivers `reconnected` (events lost while
 *    disconnected stay lost, as with libvirt).
 * Errors use the codes hsm/virt.c derives from libvirt's: NOT_FOUND for
 * an unknown VM and for abort/pivot/bandwidth on a disk without a job,
 * CONFLICT for a wrong state (not running, already running), a second job
 * on a disk, a pivot before READY; INVALID_ARGUMENT for unknown layers or
 * disks; UNAVAILABLE while disconnected or for QUIESCE without agent.
 *
 * Failure injection: fake_virt_fail_next(op, code, message) makes the
 * next call of op fail without effect (one shot each).
 *
 * State is process-global (a fake stands in for a daemon); tests MUST call
 * fake_virt_reset() first, with no struct hsm_virt alive. Verbs and
 * control functions are thread-safe; callbacks run on the event thread.
 */
#ifndef PK_FAKE_VIRT_H
#define PK_FAKE_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "hsm/virt.h"
#include "hsm/vmxml.h"

enum fake_virt_op {
	FAKE_VIRT_NEW,
	FAKE_VIRT_CREATE,
	FAKE_VIRT_START,
	FAKE_VIRT_DESTROY,
	FAKE_VIRT_LIST,
	FAKE_VIRT_XML,
	FAKE_VIRT_STATE,
	FAKE_VIRT_METADATA_GET,
	FAKE_VIRT_METADATA_SET,
	FAKE_VIRT_SNAPSHOT,
	FAKE_VIRT_COMMIT,
	FAKE_VIRT_PULL,
	FAKE_VIRT_JOB_INFO,
	FAKE_VIRT_JOB_ABORT,
	FAKE_VIRT_JOB_SET_BANDWIDTH,
	FAKE_VIRT_DISK_SOURCE_SET,
	FAKE_VIRT_BLOCK_STATS,
	FAKE_VIRT_THRESHOLD,
	FAKE_VIRT_BLOCK_INFO,
	FAKE_VIRT_RESUME,
	FAKE_VIRT_NODE_STATS,
	FAKE_VIRT_DISK_ERRORS,
	FAKE_VIRT_OP_COUNT,
};

/* Forgets every domain, image, failure, counter and queued event. */
void fake_virt_reset(void);

/* Declares an image file and its backing file (NULL: none). */
void fake_virt_image_add(const char *path, const char *backing, enum hsm_disk_format format);

/* The next call of op fails with code and message, without effect. */
void fake_virt_fail_next(enum fake_virt_op op, enum pk_errc code, const char *message);

/* How many times op was called since the reset (failed calls included). */
unsigned fake_virt_calls(enum fake_virt_op op);

/* ---- what the last calls asked ---------------------------------------------- */

struct fake_virt_call {
	char vm[HSM_VM_NAME_MAX + 1];
	char disk[HSM_VMXML_TARGET_MAX];
	char base[64];          /* "vda[3]", "" when NULL */
	char top[64];           /* "" when NULL */
	bool active;            /* commit: ACTIVE */
	bool pivot;             /* abort: PIVOT */
	bool quiesce;           /* snapshot: QUIESCE */
	uint64_t bandwidth;
};

/* The arguments of the last successful call of op; false when none. */
bool fake_virt_last_call(enum fake_virt_op op, struct fake_virt_call *ret);

/* ---- domains ----------------------------------------------------------------- */

/* A running domain without our metadata (never listed). */
void fake_virt_domain_add_foreign(const char *name);

bool fake_virt_domain_exists(const char *name);

/* The XML of the last successful domain create as hsmd sent it (heap, free
 * it), NULL when none. */
char *fake_virt_created_xml(void);

/* Changes the state as the guest or qemu would (shut off: jobs vanish and
 * indexes are dropped; running again: new indexes) and queues the
 * lifecycle event (STOPPED, STARTED, SUSPENDED, RESUMED). -EINVAL for
 * another transition, -ENOENT for an unknown VM. */
int fake_virt_domain_set_state(const char *name, enum hsm_virt_state state);

/* Whether the guest agent answers (QUIESCE); default false. */
void fake_virt_set_guest_agent(const char *name, bool responding);

/* The disk's chain as "leaf <- ... <- base" (paths); heap, free(). NULL if
 * there is no such VM or disk. */
char *fake_virt_chain(const char *name, const char *disk);

/* ---- block jobs --------------------------------------------------------------- */

int fake_virt_job_progress(const char *name, const char *disk, uint64_t cur, uint64_t end);
/* An active commit's mirror is in sync: ready='yes', READY event. */
int fake_virt_job_ready(const char *name, const char *disk);
/* A commit or pull finished: chain changed, job gone, COMPLETED event.
 * (An active commit never completes by itself: it needs a pivot.) */
int fake_virt_job_complete(const char *name, const char *disk);
/* The job failed: chain unchanged, job gone, FAILED event. */
int fake_virt_job_fail(const char *name, const char *disk);
/* With manual pivots on, a pivot leaves the mirror at ready='pivot' until
 * fake_virt_pivot_finish (success: chain changed + COMPLETED; else the
 * job stays READY and FAILED is NOT sent, as when qemu refuses). */
void fake_virt_set_manual_pivot(bool manual);
int fake_virt_pivot_finish(const char *name, const char *disk, bool success);

/*
 * What libvirt shows while a manual pivot is under way (seen under load for
 * most of a second), each one until fake_virt_pivot_finish:
 *   SWITCHED   the chain is the new one, the job and <mirror ready='pivot'>
 *              still listed;
 *   JOB_GONE   job info says "no job", the chain and mirror the old ones,
 *              no event yet;
 *   DROPPED    the job is gone for good, without an event, the old chain
 *              kept (the pivot did not happen; finish is not called);
 *   FOREIGN    the job is gone (COMPLETED event) and the chain is only its
 *              last layer: neither the chain before nor after.
 * -ESRCH when the disk has no job, -EINVAL when no pivot is pending.
 */
enum fake_virt_pivot_view {
	FAKE_VIRT_PIVOT_SWITCHED,
	FAKE_VIRT_PIVOT_JOB_GONE,
	FAKE_VIRT_PIVOT_DROPPED,
	FAKE_VIRT_PIVOT_FOREIGN,
};
int fake_virt_pivot_show(const char *name, const char *disk, enum fake_virt_pivot_view view);

/*
 * The guest writes rate bytes/s to the disk from now on (0: stops), in a
 * region of region bytes that it rewrites (0: unbounded), as the lab's
 * writer does. Time is the real monotonic clock, advanced whenever the
 * disk is looked at (job info, block stats, bandwidth). The write counter
 * (hsm_virt_block_written) grows by it; an active commit's mirror, while
 * syncing, gets the writes as dirt (at most region) and copies at most its
 * bandwidth (0: all of it at once): cur and end move as qemu's offset and
 * offset + dirt do, and a mirror with no dirt left becomes ready (ready='yes',
 * READY event). So a limit below rate never converges.
 */
int fake_virt_guest_writes(const char *name, const char *disk, uint64_t rate, uint64_t region);

/* ---- connection and events ------------------------------------------------------ */

void fake_virt_disconnect(void);
void fake_virt_reconnect(void);

/* Waits until every queued event has been delivered (callbacks returned). */
void fake_virt_events_flush(void);

/* Thin provisioning: the allocation and physical size block_info answers
 * for a disk ("vda" or any "vda[N]" of it), and the threshold last armed
 * on it (0: none). */
void fake_virt_block_set(const char *vm, const char *target, uint64_t allocation,
			 uint64_t physical);
uint64_t fake_virt_block_threshold(const char *vm, const char *target);
/* Pauses a running domain (as an I/O error or `virsh suspend` would). */
void fake_virt_pause(const char *vm);
/* Pauses vm as an I/O error would: its disks report NO_SPACE (nospace) or
 * another error to hsm_virt_disk_errors until it is resumed. */
void fake_virt_pause_io(const char *vm, bool nospace);

#endif
