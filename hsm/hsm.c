#include "hsm/hsm.h"

#include <errno.h>
#include <inttypes.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/activation.h"
#include "common/clock.h"
#include "common/locks.h"
#include "common/log.h"
#include "common/lvm.h"
#include "common/storage.h"
#include "common/xalloc.h"
#include "hsm/merge.h"
#include "hsm/thinp.h"
#include "proto/spm_client.h"

#define HSM_LOCK_TIMEOUT_MS 30000
#define HSM_SPM_TIMEOUT_MS 10000
#define HSM_QEMU_CONF "/etc/libvirt/qemu.conf"

/* Indexed by enum hsm_lock_ns: the order locks are taken in. */
static const char *const hsm_lock_ns_names[] = { "image", "vm" };
/* VmCreate and VmSnapshot lock every disk's image and the VM in one set. */
_Static_assert(HSM_VM_DISKS_MAX + 1 <= PK_LOCKSET_MAX, "a VM's locks fit one lock set");
_Static_assert(2 * PK_UUID_BUFLEN <= PK_LOCK_NAME_MAX, "an image lock name fits");
_Static_assert(HSM_VM_NAME_MAX + 1 <= PK_LOCK_NAME_MAX, "a VM lock name fits");

void hsm_settings_from_config(const struct pk_config *cfg, struct hsm_settings *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->host_id = (int32_t)pk_config_int(cfg, "host_id");
	ret->run_dir = pk_config_str(cfg, "run_dir");
	ret->state_dir = pk_config_str(cfg, "state_dir");
	ret->boot_dir = pk_config_str(cfg, "boot_dir");
	ret->log_dir = pk_config_str(cfg, "log_dir");
	ret->activation = pk_config_str(cfg, "activation");
	ret->lvmap_dir = pk_config_str(cfg, "lvmap_dir");
	ret->lvm_devices = pk_config_str(cfg, "lvm_devices");
	ret->spm = pk_config_str(cfg, "spm");
	ret->events = pk_config_str(cfg, "events");
	ret->domain_type = pk_config_str(cfg, "domain_type");
	ret->virt.uri = pk_config_str(cfg, "libvirt_uri");
	ret->merge_keep_cap = !pk_config_bool(cfg, "merge_uncap_last_pass");
	ret->merge_uncap_seconds = (int)pk_config_int(cfg, "merge_uncap_seconds");
	ret->spm_wait_limit_s = (int)pk_config_int(cfg, "spm_wait_limit");
	ret->virt.connect_timeout_ms = 15000;
	hsm_thinp_policy_init(&ret->thin);
	ret->thin.monitor = pk_config_bool(cfg, "thin_monitor");
	ret->thin.chunk = (uint64_t)pk_config_int(cfg, "thin_chunk_mb") * HSM_THINP_MIB;
	ret->thin.free_mb = (uint64_t)pk_config_int(cfg, "thin_free_mb");
	ret->thin.free_pct = (unsigned)pk_config_int(cfg, "thin_free_pct");
	ret->thin.check_seconds = (unsigned)pk_config_int(cfg, "thin_check_seconds");
	ret->thin.workers = (unsigned)pk_config_int(cfg, "thin_workers");
	ret->thin.retry_max_ms = (unsigned)pk_config_int(cfg, "thin_retry_max_ms");
}

/* ---- qemu's user -------------------------------------------------------------- */

/* Reads `key = "value"` from libvirt's qemu.conf; false when absent. */
static bool qemu_conf_value(const char *key, char *buf, size_t size)
{
	FILE *f = fopen(HSM_QEMU_CONF, "re");
	char line[512];
	bool found = false;

	if (!f) {
		return false;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *q;
		size_t klen = strlen(key);

		while (*p == ' ' || *p == '\t') {
			p++;
		}
		if (strncmp(p, key, klen) != 0) {
			continue;
		}
		p += klen;
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		if (*p++ != '=') {
			continue;
		}
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		if (*p++ != '"' || !(q = strchr(p, '"'))) {
			continue;
		}
		*q = '\0';
		snprintf(buf, size, "%s", p);
		found = true;
	}
	fclose(f);
	return found;
}

static int qemu_owner_setup(struct hsm *hsm, struct pk_error *err)
{
	const struct hsm_settings *s = &hsm->settings;
	char user[128] = "libvirt-qemu", group[128] = "kvm";
	struct passwd *pw;
	struct group *gr;

	if (s->qemu_user && !*s->qemu_user) {
		hsm->chown_volumes = false;
		return 0;
	}
	if (s->qemu_user) {
		snprintf(user, sizeof(user), "%s", s->qemu_user);
	} else {
		qemu_conf_value("user", user, sizeof(user));
	}
	if (s->qemu_group) {
		snprintf(group, sizeof(group), "%s", s->qemu_group);
	} else {
		qemu_conf_value("group", group, sizeof(group));
	}
	if (!strcmp(user, "root") || !strcmp(user, "+0")) {
		hsm->chown_volumes = false; /* qemu runs as root: nothing to do */
		return 0;
	}
	pw = getpwnam(user[0] == '+' ? user + 1 : user);
	gr = getgrnam(group[0] == '+' ? group + 1 : group);
	if (!pw && user[0] == '+') {
		hsm->qemu_uid = (uid_t)strtoul(user + 1, NULL, 10);
	} else if (pw) {
		hsm->qemu_uid = pw->pw_uid;
	} else {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENOENT,
				    "qemu's user '%s' (%s) does not exist on this host", user,
				    HSM_QEMU_CONF);
	}
	if (!gr && group[0] == '+') {
		hsm->qemu_gid = (gid_t)strtoul(group + 1, NULL, 10);
	} else if (gr) {
		hsm->qemu_gid = gr->gr_gid;
	} else {
		hsm->qemu_gid = pw ? pw->pw_gid : 0;
	}
	hsm->chown_volumes = true;
	return 0;
}

/* ---- set-up ----------------------------------------------------------------- */

static int hsm_storage_open(struct hsm *hsm, struct pk_error *err)
{
	const struct hsm_settings *s = &hsm->settings;
	struct pk_storage_config sc = { s->lvm_devices, s->activation, s->lvmap_dir, NULL };
	char conf_dir[HSM_PATH_MAX];

	/* Its own directory: spmd on the same host writes <run_dir>/lvm-spm. */
	snprintf(conf_dir, sizeof(conf_dir), "%s/lvm-hsm", s->run_dir);
	sc.conf_dir = conf_dir;
	return pk_storage_open(&sc, &hsm->lvm, &hsm->act, err);
}

static int hsm_type_setup(struct hsm *hsm, struct pk_error *err)
{
	const char *t = hsm->settings.domain_type;

	if (!t || !*t || !strcmp(t, "auto")) {
		hsm->default_type = hsm->settings.kvm ? HSM_VM_TYPE_KVM : HSM_VM_TYPE_QEMU;
	} else if (!strcmp(t, "kvm")) {
		hsm->default_type = HSM_VM_TYPE_KVM;
	} else if (!strcmp(t, "qemu")) {
		hsm->default_type = HSM_VM_TYPE_QEMU;
	} else {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "setting 'domain_type' = '%s' is not auto, kvm or qemu", t);
	}
	return 0;
}

int hsm_init(struct hsm *hsm, const struct hsm_settings *settings, struct pk_error *err)
{
	int r;

	memset(hsm, 0, sizeof(*hsm));
	hsm->settings = *settings;
	if (!hsm->settings.lock_timeout_ms) {
		hsm->settings.lock_timeout_ms = HSM_LOCK_TIMEOUT_MS;
	}
	if (!hsm->settings.spm_timeout_ms) {
		hsm->settings.spm_timeout_ms = HSM_SPM_TIMEOUT_MS;
	}
	hsm->locks = pk_locks_new(hsm_lock_ns_names,
				  sizeof(hsm_lock_ns_names) / sizeof(hsm_lock_ns_names[0]));
	hsm->info.role = "hsm";
	hsm->info.host_id = settings->host_id;
	hsm->info.start_ms = pk_clock_monotonic_ms();
	hsm->info.activation = settings->activation;
	hsm->info.kvm = settings->kvm;
	if (!settings->run_dir || settings->run_dir[0] != '/') {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "setting 'run_dir' must be an absolute path");
		goto fail;
	}
	if (snprintf(hsm->storage_dir, sizeof(hsm->storage_dir), "%s/storage", settings->run_dir) >=
	    (int)sizeof(hsm->storage_dir)) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				 "setting 'run_dir' is too long");
		goto fail;
	}
	r = hsm_type_setup(hsm, err);
	if (r == 0) {
		r = qemu_owner_setup(hsm, err);
	}
	if (r == 0) {
		r = hsm_storage_open(hsm, err);
	}
	if (r == 0 && settings->spm && *settings->spm) {
		r = pk_spm_client_new(settings->spm, &hsm->spm, err);
	}
	if (r == 0) {
		struct hsm_merge_config mc = {
			.events_url = settings->events,
			.keep_cap = settings->merge_keep_cap,
			.uncap_seconds = settings->merge_uncap_seconds > 0
						 ? (unsigned)settings->merge_uncap_seconds : 0,
		};
		r = hsm_merge_init(hsm, &mc, err);
	}
	if (r == 0) {
		r = hsm_thinp_new(hsm, &hsm->settings.thin, &hsm->thinp, err);
	}
	if (r < 0) {
		goto fail;
	}
	return 0;
fail:
	hsm_release(hsm);
	return r;
}

/* ---- libvirt events ------------------------------------------------------------ */

static void on_block_job(void *opaque, const char *vm, const char *disk,
			 enum hsm_virt_job_type type, enum hsm_virt_job_status status)
{
	pk_log_debug("block job event vm='%s' disk='%s' type=%s status=%s", vm, disk,
		     hsm_virt_job_type_name(type), hsm_virt_job_status_name(status));
	hsm_merge_on_block_job(opaque, vm, disk, type, status);
	/* An active commit's base receives writes once its job runs. */
	hsm_thinp_kick(((struct hsm *)opaque)->thinp, vm);
}

static void on_lifecycle(void *opaque, const char *vm, enum hsm_virt_lifecycle event, int detail)
{
	pk_log_debug("domain event vm='%s' event=%s detail=%d", vm,
		     hsm_virt_lifecycle_name(event), detail);
	hsm_merge_on_lifecycle(opaque, vm, event);
	if (event == HSM_VIRT_EV_STARTED || event == HSM_VIRT_EV_RESUMED ||
	    event == HSM_VIRT_EV_SUSPENDED) {
		hsm_thinp_kick(((struct hsm *)opaque)->thinp, vm);
	}
}

static void on_block_threshold(void *opaque, const char *vm, const char *dev,
			       uint64_t threshold, uint64_t excess)
{
	pk_log_debug("block threshold event vm='%s' dev='%s' threshold=%" PRIu64
		     " excess=%" PRIu64, vm, dev, threshold, excess);
	hsm_thinp_on_threshold(((struct hsm *)opaque)->thinp, vm, dev);
}

static void on_io_error(void *opaque, const char *vm, const char *path, const char *reason)
{
	pk_log_info("I/O error event vm='%s' path='%s' reason='%s'", vm, path, reason);
	hsm_thinp_on_io_error(((struct hsm *)opaque)->thinp, vm, path, reason);
}

static void on_reconnected(void *opaque)
{
	struct hsm *hsm = opaque;
	unsigned n = atomic_fetch_add(&hsm->reconnects, 1) + 1;

	/* Images and VMs cache nothing from libvirt (every verb reads the live
	 * state); only merge jobs need to reconcile. */
	pk_log_info("libvirt connection re-established reconnects=%u generation=%u", n,
		    hsm_virt_generation(hsm->virt));
	/* Merge jobs reconcile with the live state: events may have been lost. */
	hsm_merge_on_reconnected(hsm);
	/* Thresholds do not survive a libvirtd restart; pauses may have happened. */
	hsm_thinp_kick_all(hsm->thinp);
}

int hsm_start(struct hsm *hsm, struct pk_error *err)
{
	struct hsm_virt_callbacks cb = {
		.block_job = on_block_job,
		.lifecycle = on_lifecycle,
		.reconnected = on_reconnected,
		.block_threshold = on_block_threshold,
		.io_error = on_io_error,
		.opaque = hsm,
	};

	int r = hsm_virt_new(&hsm->settings.virt, &cb, &hsm->virt, err);

	if (r == 0) {
		r = hsm_merge_start(hsm, err); /* resumes the recorded merge jobs */
	}
	if (r == 0) {
		r = hsm_thinp_start(hsm->thinp, err); /* checks every VM: re-arms, resumes */
	}
	return r;
}

void hsm_release(struct hsm *hsm)
{
	if (!hsm) {
		return;
	}
	hsm_thinp_stop(hsm->thinp); /* its workers use virt */
	hsm_merge_stop(hsm); /* job threads use virt */
	hsm_virt_free(hsm->virt);
	hsm->virt = NULL;
	hsm_merge_release(hsm); /* no callback runs any more */
	hsm_thinp_free(hsm->thinp);
	hsm->thinp = NULL;
	pk_spm_client_free(hsm->spm);
	hsm->spm = NULL;
	pk_activation_free(hsm->act);
	hsm->act = NULL;
	pk_lvm_free(hsm->lvm);
	hsm->lvm = NULL;
	pk_locks_free(hsm->locks);
	hsm->locks = NULL;
}

int hsm_virt_ready(struct hsm *hsm, struct pk_error *err)
{
	if (!hsm->virt || !hsm_virt_connected(hsm->virt)) {
		return pk_error_set(err, PK_E_UNAVAILABLE, ENOTCONN,
				    "hsmd is not connected to libvirtd (%s); it reconnects as soon "
				    "as libvirtd answers",
				    hsm->settings.virt.uri ? hsm->settings.virt.uri : "qemu:///system");
	}
	return 0;
}

/* ---- locks -------------------------------------------------------------------- */

void hsm_lockset_add_image(struct pk_lockset *set, const char *domain, const char *image)
{
	char name[PK_LOCK_NAME_MAX];

	snprintf(name, sizeof(name), "%s/%s", domain, image);
	pk_lockset_add(set, HSM_LOCK_IMAGE, name, PK_LOCK_EXCLUSIVE);
}

void hsm_lockset_add_vm(struct pk_lockset *set, const char *vm)
{
	pk_lockset_add(set, HSM_LOCK_VM, vm, PK_LOCK_EXCLUSIVE);
}
