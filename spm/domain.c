#include "spm/domain.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/fault.h"
#include "common/locks.h"
#include "common/log.h"
#include "common/lvm.h"
#include "spm/lease.h"

#define INIT_TAG "PK_INITIALIZING=1"

int spm_domain_info(struct spm *spm, const char *domain, struct spm_domain_info *ret,
		    struct pk_error *err)
{
	struct pk_lvm_vg vg = { 0 };
	struct pk_lvm_lv_list lvs = { 0 };
	struct pk_domain_meta meta;
	int r;

	r = spm_domain_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
	r = pk_lvm_vg_report(spm->lvm, domain, &vg, err);
	if (r < 0) {
		if (err && err->code == PK_E_NOT_FOUND) {
			pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				     "storage domain '%s' does not exist on the PVs this host sees "
				     "(setting lvm_devices)", domain);
		}
		return r;
	}
	r = pk_meta_domain_decode(vg.name, vg.tags, &meta, err);
	if (r == 0) {
		r = pk_lvm_lv_report(spm->lvm, domain, NULL, &lvs, err);
	}
	if (r == 0) {
		memset(ret, 0, sizeof(*ret));
		snprintf(ret->domain, sizeof(ret->domain), "%s", meta.domain);
		snprintf(ret->vg, sizeof(ret->vg), "%s", vg.name);
		ret->version = meta.version;
		ret->size = vg.size;
		ret->free = vg.free;
		ret->extent_size = vg.extent_size;
		for (size_t i = 0; i < vg.npvs && i < SPM_DOMAIN_MAX_PVS; i++) {
			snprintf(ret->pvs[i], sizeof(ret->pvs[i]), "%s", vg.pvs[i].name);
			ret->npvs++;
		}
		for (size_t i = 0; i < lvs.count; i++) {
			if (pk_meta_lv_is_volume(lvs.lvs[i].name)) {
				ret->volume_count++;
			}
		}
		snprintf(ret->description, sizeof(ret->description), "%s", meta.description);
		ret->initializing = pk_lvm_tags_contain(vg.tags, INIT_TAG);
	}
	pk_lvm_lv_list_release(&lvs);
	pk_lvm_vg_release(&vg);
	return r;
}

/* Makes the special LV if missing; fills path with its activated path. */
static int domain_special_lv(struct spm *spm, const char *domain, const char *name,
			     uint64_t size, char *path, size_t path_size, struct pk_error *err)
{
	struct pk_lvm_lv_list one = { 0 };
	char tag[64];
	const char *tags[] = { tag, NULL };
	int r;

	snprintf(tag, sizeof(tag), "PK_SPECIAL=%s", name);
	r = pk_lvm_lv_report(spm->lvm, domain, name, &one, err);
	pk_lvm_lv_list_release(&one);
	if (r < 0 && err && err->code == PK_E_NOT_FOUND) {
		r = pk_lvm_lv_create(spm->lvm, domain, name, size, tags, err);
	}
	if (r == 0) {
		r = spm_lv_activate(spm, domain, name, path, path_size, err);
	}
	return r;
}

int spm_domain_create(struct spm *spm, const char *domain, const char *const *pvs, size_t npvs,
		      const char *description, struct spm_domain_info *ret, struct pk_error *err)
{
	char id[PK_UUID_BUFLEN];
	struct pk_domain_meta meta = { 0 };
	struct pk_meta_tags tags;
	struct spm_domain_info existing;
	struct spm_lease_config lc = { 0 };
	struct pk_lockset set;
	char ids[PATH_MAX], leases[PATH_MAX];
	const char *vg_tags[PK_META_TAGS_MAX + 2];
	const char *del_init[] = { INIT_TAG, NULL };
	const char *pv_list[SPM_DOMAIN_MAX_PVS + 1];
	size_t nt = 0;
	int r;

	if (domain && *domain) {
		r = pk_uuid_check("domain_id", domain, err);
		if (r < 0) {
			return r;
		}
		snprintf(id, sizeof(id), "%s", domain);
	} else {
		pk_uuid_generate(id);
	}
	if (npvs == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "a storage domain needs at least one PV (--pv DEV)");
	}
	if (npvs > SPM_DOMAIN_MAX_PVS) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "at most %d PVs per domain", SPM_DOMAIN_MAX_PVS);
	}
	for (size_t i = 0; i < npvs; i++) {
		if (!pvs[i] || pvs[i][0] != '/' || !pk_lvm_device_allowed(spm->lvm, pvs[i])) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "'%s' is not one of this host's storage devices (setting "
					    "lvm_devices)", pvs[i] ? pvs[i] : "");
		}
	}
	/* pk_lvm takes NULL-terminated lists. */
	for (size_t i = 0; i < npvs; i++) {
		pv_list[i] = pvs[i];
	}
	pv_list[npvs] = NULL;
	r = spm_domain_check(spm, id, err);
	if (r < 0) {
		if (err) {
			err->code = PK_E_CONFLICT;
		}
		return r;
	}
	snprintf(meta.domain, sizeof(meta.domain), "%s", id);
	meta.version = PK_META_DOMAIN_VERSION;
	if (description && strlen(description) >= sizeof(meta.description)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "description is too long (at most %d characters)", PK_META_DESC_MAX);
	}
	snprintf(meta.description, sizeof(meta.description), "%s", description ? description : "");
	r = pk_meta_domain_encode(&meta, &tags, err);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < tags.count; i++) {
		vg_tags[nt++] = pk_meta_tags_strv(&tags)[i];
	}
	vg_tags[nt++] = INIT_TAG;
	vg_tags[nt] = NULL;

	pk_lockset_init(&set, spm->locks, "create_domain");
	pk_lockset_add(&set, SPM_LOCK_DOMAIN, id, PK_LOCK_EXCLUSIVE);
	r = pk_lockset_acquire(&set, spm->lock_timeout_ms, err);
	if (r < 0) {
		return r;
	}
	/* No lease exists before the domain does: this thread may write its VG. */
	spm_write_guard_exempt_begin(id);
	r = spm_domain_info(spm, id, &existing, err);
	if (r == 0 && !existing.initializing) {
		r = pk_error_set(err, PK_E_ALREADY_EXISTS, EEXIST,
				 "storage domain '%s' already exists", id);
		goto out;
	}
	if (r < 0 && err && err->code != PK_E_NOT_FOUND) {
		goto out;
	}
	if (r < 0) {
		r = pk_lvm_vg_create(spm->lvm, id, pv_list, 0, vg_tags, err);
		if (r < 0) {
			goto out;
		}
	} else {
		pk_log_info("resuming an interrupted CreateDomain domain='%s'", id);
	}
	pk_fault_point("create_domain:vg_created");
	r = domain_special_lv(spm, id, "ids", SPM_LEASE_IDS_MIN_SIZE, ids, sizeof(ids), err);
	if (r == 0) {
		r = domain_special_lv(spm, id, "leases", SPM_LEASE_LEASES_MIN_SIZE, leases,
				      sizeof(leases), err);
	}
	if (r < 0) {
		goto out;
	}
	lc.lockspace = id;
	lc.ids_path = ids;
	lc.leases_path = leases;
	lc.host_id = (uint64_t)spm->info.host_id;
	lc.io_timeout = (unsigned)pk_config_int(spm->cfg, "sanlock_io_timeout");
	lc.sanlock_run_dir = pk_config_str(spm->cfg, "sanlock_run_dir");
	r = spm_lease_format_lockspace(&lc, err);
	if (r == 0) {
		r = spm_lease_format_resource(&lc, err);
	}
	if (r < 0) {
		pk_error_prefix(err, "domain '%s' created but its leases could not be formatted "
				"(repeat CreateDomain to resume)", id);
		goto out;
	}
	pk_fault_point("create_domain:formatted");
	r = pk_lvm_vg_tags_change(spm->lvm, id, NULL, del_init, err);
	if (r < 0) {
		goto out;
	}
	pthread_mutex_lock(&spm->role_lock);
	if (!spm->domain[0]) {
		snprintf(spm->domain, sizeof(spm->domain), "%s", id);
	}
	pthread_mutex_unlock(&spm->role_lock);
	pk_log_info("storage domain created domain='%s' pvs=%zu", id, npvs);
	r = spm_domain_info(spm, id, ret, err);
out:
	spm_write_guard_exempt_end();
	pk_lockset_release(&set);
	return r;
}
