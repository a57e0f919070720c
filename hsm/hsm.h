/*
 * struct hsm — the state of one hsmd: settings, identity and the
 * subsystems every verb uses (LVM for reading metadata, the activation
 * backend, the libvirt connection, the SPM client, the resource locks).
 * Created once by main() (hsm_init, then hsm_start); every verb receives it.
 *
 * Rules hsmd keeps (docs/HSM.md):
 *  - hsmd READS LVM metadata and activates/refreshes/deactivates LVs; it
 *    never writes LVM metadata: it asks the SPM (ImagePrepared, and later
 *    extend and metadata updates during merges).
 *  - What a host has prepared lives in the file system, not in memory:
 *    <run_dir>/storage/<domain>/<image>/<volume> is a symlink to the
 *    activated LV for every volume of a prepared chain. A restarted hsmd
 *    finds its prepared images there, and its VMs in libvirt (our
 *    <metadata> on every domain).
 *  - Paths are derived only from validated UUIDs and settings.
 *
 * Locks: verbs that change an image or a VM hold the exclusive locks of
 * the image ("<domain>/<image>") and of the VM in hsm->locks, taken as one
 * pk_lockset (common/locks.h): all at once or not at all, in one order, so
 * two verbs never deadlock; one that cannot have them within
 * lock_timeout_ms fails with BUSY.
 *
 * Threads: every function may be called from any RPC worker concurrently.
 */
#ifndef HSM_HSM_H
#define HSM_HSM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/error.h"
#include "common/rpc.h"
#include "hsm/thinp_policy.h"
#include "hsm/virt.h"
#include "hsm/vmxml.h"

struct pk_lvm;
struct pk_activation;
struct pk_spm_client;
struct pk_locks;
struct pk_lockset;
struct hsm_thinp;

#define HSM_PATH_MAX 512

/* Plain settings of an hsmd; strings are borrowed and must outlive the hsm. */
struct hsm_settings {
	int32_t host_id;
	const char *run_dir;     /* image links under <run_dir>/storage */
	const char *state_dir;   /* durable records (merge jobs) */
	const char *boot_dir;    /* kernels/initrds VmCreate names (hsm/vmfiles.h) */
	const char *log_dir;     /* serial logs <log_dir>/<vm>.serial; NULL: none */
	const char *activation;  /* "dm" or "lab" */
	const char *lvmap_dir;   /* lab activation */
	const char *lvm_devices; /* comma-separated PV paths */
	const char *spm;         /* comma-separated spmd URLs; NULL: none */
	const char *events;      /* nng pub URL of merge job events; NULL: none */
	const char *domain_type; /* "auto", "kvm" or "qemu" */
	bool kvm;                /* /dev/kvm usable */
	/*
	 * Owner given to every activated LV so qemu can open it (libvirt does
	 * not relabel our disks, see hsm/vmxml.h). NULL: the user and group
	 * of /etc/libvirt/qemu.conf (default libvirt-qemu:kvm); "": leave
	 * ownership alone (tests).
	 */
	const char *qemu_user;
	const char *qemu_group;
	struct hsm_virt_config virt;
	/* merge_uncap_last_pass = false keeps a non-converging job's limit;
	 * merge_uncap_seconds (0: 5), see hsm_merge_config. */
	bool merge_keep_cap;
	int merge_uncap_seconds;
	int lock_timeout_ms;     /* 0: 30000 */
	int spm_timeout_ms;      /* 0: 10000 */
	int spm_wait_limit_s;    /* how long a caller waits for the SPM (hsm/spm_wait.h); 0: 1800 */
	struct hsm_thinp_policy thin; /* the drive monitor (hsm/thinp.h) */
	/*
	 * tls_ca, tls_cert, tls_key (borrowed): the events publisher on a
	 * tls+tcp:// URL; hsmd/main.c gives them to the SPM client too.
	 */
	struct pk_rpc_tls tls;
};

/* Namespaces of hsm->locks (common/locks.h), in the order they are taken. */
enum hsm_lock_ns {
	HSM_LOCK_IMAGE = 0,
	HSM_LOCK_VM = 1,
};

struct hsm {
	struct hsm_settings settings;
	struct pk_daemon_info info;
	char storage_dir[HSM_PATH_MAX]; /* <run_dir>/storage */
	struct pk_lvm *lvm;
	struct pk_activation *act;
	struct hsm_virt *virt;          /* NULL until hsm_start */
	struct pk_spm_client *spm;      /* NULL when no spm setting */
	enum hsm_vm_type default_type;  /* for VmSpec type AUTO */
	bool chown_volumes;
	uid_t qemu_uid;
	gid_t qemu_gid;
	struct pk_locks *locks;         /* namespaces: enum hsm_lock_ns */
	atomic_uint reconnects;         /* libvirt reconnections seen */
	/* Merge jobs (hsm/merge*.c) hang their state here when added. */
	void *merge;
	struct hsm_thinp *thinp;        /* the drive monitor, hsm/thinp.h */
};

/* Reads the settings hsmd uses from cfg (borrowed strings). */
void hsm_settings_from_config(const struct pk_config *cfg, struct hsm_settings *ret);

/*
 * Sets up everything that must exist before threads start (LVM through
 * liblvm2cmd, activation, SPM client, storage dir). On failure the hsm is
 * released already.
 */
int hsm_init(struct hsm *hsm, const struct hsm_settings *settings, struct pk_error *err);

/* Connects to libvirt (starts its event and reconnect threads). */
int hsm_start(struct hsm *hsm, struct pk_error *err);

/* Disconnects and frees everything. NULL-safe on a zeroed hsm. */
void hsm_release(struct hsm *hsm);

/* 0 when hsm->virt is connected, else UNAVAILABLE. */
int hsm_virt_ready(struct hsm *hsm, struct pk_error *err);

/* ---- locks ------------------------------------------------------------------ */

/*
 * Add the exclusive lock of an image / a VM to a set of hsm->locks; the
 * caller acquires it with settings.lock_timeout_ms (pk_lockset_acquire).
 */
void hsm_lockset_add_image(struct pk_lockset *set, const char *domain, const char *image);
void hsm_lockset_add_vm(struct pk_lockset *set, const char *vm);

#endif
