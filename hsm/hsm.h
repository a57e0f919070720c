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
 * Locks: verbs that change an image or a VM hold the named locks
 * "image/<domain>/<image>" and "vm/<name>" (hsm_lock_acquire). A set of
 * locks is taken all at once or not at all, so two verbs never deadlock;
 * one that cannot have them within lock_timeout_ms fails with BUSY.
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
#include "hsm/virt.h"
#include "hsm/vmxml.h"

struct pk_lvm;
struct pk_activation;
struct pk_spm_client;

#define HSM_PATH_MAX 512
#define HSM_LOCK_KEY_MAX 128

/* Plain settings of an hsmd; strings are borrowed and must outlive the hsm. */
struct hsm_settings {
	int32_t host_id;
	const char *run_dir;     /* image links under <run_dir>/storage */
	const char *state_dir;   /* durable records (merge jobs) */
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
	int lock_timeout_ms;     /* 0: 30000 */
	int spm_timeout_ms;      /* 0: 10000 */
};

struct hsm_lock_table {
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	char (*keys)[HSM_LOCK_KEY_MAX]; /* held keys */
	size_t n, cap;
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
	struct hsm_lock_table locks;
	atomic_uint reconnects;         /* libvirt reconnections seen */
	/* Merge jobs (hsm/merge*.c) hang their state here when added. */
	void *merge;
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

/* ---- named locks ------------------------------------------------------------ */

/*
 * Takes every key of keys[0..n) (duplicates allowed) or none: waits while
 * any is held, at most settings.lock_timeout_ms, then fails with BUSY naming
 * `what`. Release with hsm_lock_release and the same keys.
 */
int hsm_lock_acquire(struct hsm *hsm, const char *const *keys, size_t n, const char *what,
		     struct pk_error *err);
void hsm_lock_release(struct hsm *hsm, const char *const *keys, size_t n);

/* Lock key of an image / a VM into buf (HSM_LOCK_KEY_MAX). */
void hsm_lock_key_image(char *buf, const char *domain, const char *image);
void hsm_lock_key_vm(char *buf, const char *vm);

#endif
