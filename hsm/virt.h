/*
 * hsm_virt — hsmd's seam to libvirt, in our own verbs. Only its
 * implementation (hsm/virt.c, virt_loop.c, virt_domain.c, virt_blockjob.c,
 * virt_names.c, sharing the internal hsm/virt_internal.h) calls libvirt;
 * tests/fakes/fake_virt.c implements the same header for unit tests of
 * the HSM logic. The XML it sends and reads is built and parsed by
 * hsm/vmxml.h.
 *
 * Connection:
 *  - struct hsm_virt owns one connection to the configured URI
 *    (qemu:///system). Before the first connection the process registers
 *    libvirt's default event loop (virEventRegisterDefaultImpl, once per
 *    process) and hsm_virt runs it on its own thread, which delivers the
 *    domain events and keepalives.
 *  - Keepalive is enabled; a close callback (libvirtd stopped, keepalive
 *    timeout) wakes a reconnect thread that reopens the connection with
 *    exponential backoff, re-registers the event callbacks and then calls
 *    `reconnected`. Events fired while disconnected are LOST: the
 *    reconnected callback must reconcile everything from the live state
 *    (domain list, live XML chains, block job info).
 *  - While disconnected every verb fails at once with PK_E_UNAVAILABLE.
 *    A verb failing on a dead connection also triggers the reconnect (in
 *    case the close callback was missed).
 *
 * Callbacks (struct hsm_virt_callbacks) fire for every domain of the host
 * (ignore names that are not yours) and run on the event-loop thread
 * (block_job, lifecycle) or on the reconnect thread (reconnected). They
 * must return quickly: hand work to another thread. They must not call
 * hsm_virt_free. Calling verbs from them works but stalls event delivery.
 * BLOCK_JOB_2 events carry no job id: the HSM keeps one job per disk.
 * A finished block job simply disappears; decide success from the live
 * XML chain, never from the event or the job's absence alone.
 *
 * Domains are PERSISTENT (defined, then started): a persistent domain and
 * its <metadata> survive libvirtd restarts and stay listed when the guest
 * stops, so hsmd finds its VMs again after restarting; libvirt also keeps
 * the persistent definition's disk sources in step with snapshots and
 * pivots. Domains are never set to autostart.
 * A poolkeeper domain is one whose definition carries our metadata
 * element (HSM_VMXML_NS); the others on the host are ignored.
 *
 * Errors: every verb returns 0 or -errno and fills err with a message
 * naming the VM (and disk) followed by libvirt's own, and a code mapped
 * from libvirt's error:
 *   NOT_FOUND        no such domain (VIR_ERR_NO_DOMAIN), no metadata, no
 *                    block job on the disk (abort, pivot, bandwidth)
 *   ALREADY_EXISTS   domain_create of an existing name
 *   CONFLICT         wrong state (VIR_ERR_OPERATION_INVALID: not running,
 *                    already running), a second block job on a disk, a
 *                    pivot before READY (VIR_ERR_BLOCK_COPY_ACTIVE)
 *   INVALID_ARGUMENT bad XML, unknown disk or layer (VIR_ERR_INVALID_ARG,
 *                    VIR_ERR_XML_*)
 *   UNSUPPORTED      the driver or qemu cannot do it (VIR_ERR_NO_SUPPORT,
 *                    *_UNSUPPORTED)
 *   UNAVAILABLE      not connected, connection lost (VIR_ERR_RPC,
 *                    VIR_ERR_NO_CONNECT, system errors of the RPC layer),
 *                    guest agent not answering (VIR_ERR_AGENT_*)
 *   TIMEOUT/ABORTED  VIR_ERR_OPERATION_TIMEOUT / _ABORTED
 *   NO_SPACE, IO     system errors (ENOSPC, others) of the hypervisor side
 *   INTERNAL         anything else (qemu monitor errors included)
 * Threads: every verb may be called from any thread, concurrently, but
 * not concurrently with (or after) hsm_virt_free.
 * Process-wide effects: the first hsm_virt_new registers libvirt's default
 * event loop implementation and replaces libvirt's default error printer
 * (errors reach the caller through err, not stderr). At most one
 * struct hsm_virt may exist at a time in a process (it runs the process's
 * only libvirt event loop).
 */
#ifndef HSM_VIRT_H
#define HSM_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"
#include "hsm/vmxml.h"

struct hsm_virt;

/* Values equal libvirt's virDomainBlockJobType. */
enum hsm_virt_job_type {
	HSM_VIRT_JOB_UNKNOWN = 0,
	HSM_VIRT_JOB_PULL = 1,
	HSM_VIRT_JOB_COPY = 2,
	HSM_VIRT_JOB_COMMIT = 3,
	HSM_VIRT_JOB_ACTIVE_COMMIT = 4,
	HSM_VIRT_JOB_BACKUP = 5,
};

/* Values equal libvirt's virConnectDomainEventBlockJobStatus. */
enum hsm_virt_job_status {
	HSM_VIRT_JOB_COMPLETED = 0,
	HSM_VIRT_JOB_FAILED = 1,
	HSM_VIRT_JOB_CANCELED = 2,
	HSM_VIRT_JOB_READY = 3,   /* a mirror is in sync: a pivot may be asked */
};

/* Values equal libvirt's virDomainEventType. */
enum hsm_virt_lifecycle {
	HSM_VIRT_EV_DEFINED = 0,
	HSM_VIRT_EV_UNDEFINED = 1,
	HSM_VIRT_EV_STARTED = 2,
	HSM_VIRT_EV_SUSPENDED = 3,
	HSM_VIRT_EV_RESUMED = 4,
	HSM_VIRT_EV_STOPPED = 5,
	HSM_VIRT_EV_SHUTDOWN = 6,
	HSM_VIRT_EV_PMSUSPENDED = 7,
	HSM_VIRT_EV_CRASHED = 8,
};

/* Values equal libvirt's virDomainState. */
enum hsm_virt_state {
	HSM_VIRT_STATE_NOSTATE = 0,
	HSM_VIRT_STATE_RUNNING = 1,
	HSM_VIRT_STATE_BLOCKED = 2,
	HSM_VIRT_STATE_PAUSED = 3,   /* reason: e.g. an I/O error (error_policy stop) */
	HSM_VIRT_STATE_SHUTDOWN = 4,
	HSM_VIRT_STATE_SHUTOFF = 5,
	HSM_VIRT_STATE_CRASHED = 6,
	HSM_VIRT_STATE_PMSUSPENDED = 7,
};

struct hsm_virt_callbacks {
	/* A block job on vm's disk (target name, "vda") changed state. */
	void (*block_job)(void *opaque, const char *vm, const char *disk,
			  enum hsm_virt_job_type type, enum hsm_virt_job_status status);
	/* A domain lifecycle event; detail is libvirt's per-event detail. */
	void (*lifecycle)(void *opaque, const char *vm, enum hsm_virt_lifecycle event,
			  int detail);
	/* The connection was re-established after a loss (not called for the
	 * first connection): reconcile, events may have been missed. */
	void (*reconnected)(void *opaque);
	/* A block threshold armed on dev ("vda[3]", or "vda") was crossed:
	 * the allocation is threshold + excess bytes. It fired once; re-arm. */
	void (*block_threshold)(void *opaque, const char *vm, const char *dev,
				uint64_t threshold, uint64_t excess);
	/* A guest write (or read) on the image at path failed; reason is
	 * qemu's ("enospc", "eio", ...). With error_policy='stop' the domain
	 * is paused by now. */
	void (*io_error)(void *opaque, const char *vm, const char *path, const char *reason);
	void *opaque;
};

struct hsm_virt_config {
	const char *uri;                /* NULL: "qemu:///system" */
	int keepalive_interval_s;       /* 0: 5; < 0: keepalive off */
	unsigned keepalive_count;       /* 0: 3 */
	unsigned reconnect_min_ms;      /* 0: 250 (first retry delay) */
	unsigned reconnect_max_ms;      /* 0: 5000 (backoff cap) */
	/* How long hsm_virt_new keeps trying the first connection (with the
	 * same backoff) before failing with UNAVAILABLE. 0: one attempt. */
	unsigned connect_timeout_ms;
};

/*
 * Connects and starts the event-loop and reconnect threads. Callback
 * pointers may be NULL; cb is copied. On success *ret is owned by the
 * caller (hsm_virt_free). Fails with UNAVAILABLE when libvirtd cannot be
 * reached within cfg->connect_timeout_ms.
 */
int hsm_virt_new(const struct hsm_virt_config *cfg, const struct hsm_virt_callbacks *cb,
		 struct hsm_virt **ret, struct pk_error *err);

/* Deregisters the callbacks, closes the connection and joins the threads.
 * No callback runs after it returns. NULL-safe. */
void hsm_virt_free(struct hsm_virt *virt);

/* True while the connection is up. */
bool hsm_virt_connected(struct hsm_virt *virt);

/* How many connections were made so far (1 after hsm_virt_new). */
unsigned hsm_virt_generation(struct hsm_virt *virt);

/* ---- domains --------------------------------------------------------------- */

/*
 * Defines the domain from xml (hsm_vmxml_domain_build) and starts it.
 * Fails with ALREADY_EXISTS when a domain of that name exists (a define
 * would silently replace its definition). If the start fails the
 * definition is removed again. ret_uuid (may be NULL) gets the UUID.
 */
int hsm_virt_domain_create(struct hsm_virt *virt, const char *xml,
			   char ret_uuid[PK_UUID_BUFLEN], struct pk_error *err);

/* Starts a defined, shut-off domain. */
int hsm_virt_domain_start(struct hsm_virt *virt, const char *name, struct pk_error *err);

/* Stops the domain if it runs (hard power-off) and removes its definition.
 * NOT_FOUND when no such domain. */
int hsm_virt_domain_destroy(struct hsm_virt *virt, const char *name, struct pk_error *err);

/*
 * The names of poolkeeper's domains (those carrying our metadata), active
 * or not, sorted. *ret_names is a common/strv.h array (NULL-terminated;
 * free with pk_strv_free).
 */
int hsm_virt_domain_list(struct hsm_virt *virt, char ***ret_names, size_t *ret_n,
			 struct pk_error *err);

/* The domain's XML: live when it runs (with backing chains, indexes and
 * mirrors), else the persistent definition. *ret_xml: heap, free(). */
int hsm_virt_domain_xml(struct hsm_virt *virt, const char *name, char **ret_xml,
			struct pk_error *err);

/* The domain's state and libvirt's reason for it (ret_reason may be NULL). */
int hsm_virt_domain_state(struct hsm_virt *virt, const char *name,
			  enum hsm_virt_state *ret_state, int *ret_reason,
			  struct pk_error *err);

/*
 * Points disk of a shut-off domain at another image, in its persistent
 * definition: source path, driver format, and our metadata's leaf
 * volume_id, in one redefinition (hsm_vmxml_disk_source_set). CONFLICT
 * when the domain runs. If it is started while being redefined, it runs
 * on its old disk, so the old definition is put back and CONFLICT
 * answered: the next boot never differs from what ran.
 */
int hsm_virt_disk_source_set(struct hsm_virt *virt, const char *name, const char *disk,
			     const char *path, enum hsm_disk_format format, const char *volume_id,
			     struct pk_error *err);

/* Our metadata element (the form hsm_vmxml_metadata_parse reads); NOT_FOUND
 * when the domain has none. *ret_xml: heap, free(). */
int hsm_virt_metadata_get(struct hsm_virt *virt, const char *name, char **ret_xml,
			  struct pk_error *err);

/* Replaces our metadata element (hsm_vmxml_metadata_build) in the live
 * domain, when it runs, and in its persistent definition. */
int hsm_virt_metadata_set(struct hsm_virt *virt, const char *name, const char *xml,
			  struct pk_error *err);

/* ---- snapshots and block jobs ---------------------------------------------- */

/*
 * Takes a disk-only snapshot (hsm_vmxml_snapshot_build) with DISK_ONLY |
 * REUSE_EXT | NO_METADATA | ATOMIC, + QUIESCE when quiesce: all listed
 * disks switch to their overlays, or none does. A quiesce without a
 * responding qemu guest agent fails with UNAVAILABLE saying so.
 */
int hsm_virt_snapshot(struct hsm_virt *virt, const char *name, const char *snapshot_xml,
		      bool quiesce, struct pk_error *err);

/*
 * Starts a block commit of disk's layers top..above base into base, with
 * VIR_DOMAIN_BLOCK_COMMIT_RELATIVE (the qcow2 headers keep relative
 * backing names). base and top are libvirt layer names ("vda[3]",
 * hsm_vmxml_disk_layer_ref). active: top is the leaf (ACTIVE flag; top may
 * then be NULL); the job becomes READY and must be finished with
 * hsm_virt_block_job_abort(pivot = true). bandwidth: bytes/s, 0 = no limit.
 */
int hsm_virt_block_commit(struct hsm_virt *virt, const char *name, const char *disk,
			  const char *base, const char *top, bool active,
			  uint64_t bandwidth, struct pk_error *err);

/*
 * Starts a block pull (rebase without copy): the data of the layers above
 * base is pulled into the leaf and the leaf's backing file becomes base
 * (relative), or the leaf gets no backing file when base is NULL.
 */
int hsm_virt_block_pull(struct hsm_virt *virt, const char *name, const char *disk,
			const char *base, uint64_t bandwidth, struct pk_error *err);

struct hsm_virt_job_info {
	bool active;                 /* false: no block job on the disk */
	enum hsm_virt_job_type type;
	uint64_t cur, end;           /* progress; cur == end does NOT mean ready */
	uint64_t bandwidth;          /* bytes/s, 0 = no limit */
};

/* The disk's block job; "no job" is success with ret->active = false. */
int hsm_virt_block_job_info(struct hsm_virt *virt, const char *name, const char *disk,
			    struct hsm_virt_job_info *ret, struct pk_error *err);

/*
 * Ends the disk's block job asynchronously (ASYNC): pivot = false cancels
 * it (event CANCELED); pivot = true switches an active commit or copy to
 * its destination (only when READY; event COMPLETED). Wait for the event
 * and the live XML before trusting the chain.
 */
int hsm_virt_block_job_abort(struct hsm_virt *virt, const char *name, const char *disk,
			     bool pivot, struct pk_error *err);

/* Changes a running job's bandwidth (bytes/s, 0 = no limit). */
int hsm_virt_block_job_set_bandwidth(struct hsm_virt *virt, const char *name,
				     const char *disk, uint64_t bandwidth,
				     struct pk_error *err);

/*
 * The bytes written to disk by the guest since qemu started
 * (virDomainBlockStats wr_bytes): how fast the guest writes, for a merge
 * that does not converge.
 */
int hsm_virt_block_written(struct hsm_virt *virt, const char *name, const char *disk,
			   uint64_t *ret_bytes, struct pk_error *err);

/* ---- thin provisioning ---------------------------------------------------- */

/*
 * Arms a block threshold (virDomainSetBlockThreshold) on dev, a disk
 * target or one node of its chain ("vda[3]"): a BLOCK_THRESHOLD event
 * fires once when the guest's allocation on it passes threshold bytes.
 * 0 disarms. Thresholds do not survive a libvirtd restart: re-arm.
 */
int hsm_virt_block_threshold_set(struct hsm_virt *virt, const char *name, const char *dev,
				 uint64_t threshold, struct pk_error *err);

/* Capacity, allocation (highest offset written) and physical size of dev
 * (virDomainGetBlockInfo), the backstop check of the drive monitor. */
int hsm_virt_block_info(struct hsm_virt *virt, const char *name, const char *dev,
			uint64_t *ret_capacity, uint64_t *ret_allocation,
			uint64_t *ret_physical, struct pk_error *err);

/* One node of a running domain's disk chains, as qemu reports it. */
struct hsm_virt_node {
	char target[HSM_VMXML_TARGET_MAX]; /* the disk, "vda" */
	int index;            /* libvirt's backing index (vda[N]); -1 when unknown */
	unsigned depth;       /* 0: the disk's active image, 1: its backing file... */
	char *path;           /* heap; NULL when qemu names none */
	uint64_t allocation;  /* highest offset written (bytes) */
	uint64_t capacity;    /* virtual size */
	uint64_t physical;    /* size of the container (file or device) */
	uint64_t threshold;   /* armed block threshold, 0: none */
};

/*
 * Every node of every disk's chain of a running domain, in one call
 * (virDomainListGetStats, BLOCK with BACKING): disks in XML order, each
 * leaf first. The backstop of the drive monitor; it also reaches the
 * backing nodes virDomainGetBlockInfo cannot. CONFLICT when the domain
 * does not run. *ret: heap array (hsm_virt_nodes_free).
 */
int hsm_virt_block_stats(struct hsm_virt *virt, const char *name, struct hsm_virt_node **ret,
			 size_t *ret_n, struct pk_error *err);
void hsm_virt_nodes_free(struct hsm_virt_node *nodes, size_t n);

/*
 * What the disks of a paused domain failed with (virDomainGetDiskErrors):
 * *ret_nospace when one ran out of space, *ret_other when one failed for
 * another reason (EIO...). Both false: no disk error (an administrator's
 * pause).
 */
int hsm_virt_disk_errors(struct hsm_virt *virt, const char *name, bool *ret_nospace,
			 bool *ret_other, struct pk_error *err);

/* Resumes a paused domain (virDomainResume). CONFLICT when not paused. */
int hsm_virt_domain_resume(struct hsm_virt *virt, const char *name, struct pk_error *err);

/* ---- names ------------------------------------------------------------------ */

const char *hsm_virt_job_type_name(enum hsm_virt_job_type type);       /* "active-commit" */
const char *hsm_virt_job_status_name(enum hsm_virt_job_status status); /* "ready" */
const char *hsm_virt_lifecycle_name(enum hsm_virt_lifecycle event);    /* "stopped" */
const char *hsm_virt_state_name(enum hsm_virt_state state);            /* "running" */
/* libvirt's virDomainPausedReason: "ioerror", "user", ... */
const char *hsm_virt_paused_reason_name(int reason);

#endif
