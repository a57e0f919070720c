#include "hsm/snapshot.h"
#include "hsm/merge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/locks.h"
#include "common/log.h"
#include "common/uuid.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "hsm/thinp.h"

static int snapshot_args_check(const char *vm, const struct hsm_snapshot_disk *disks, size_t n,
			       struct pk_error *err)
{
	int r;

	if (!hsm_vm_name_valid(vm)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "VM name '%s' is not valid",
				    vm ? vm : "");
	}
	if (n == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "a snapshot needs at least one disk");
	}
	if (n > HSM_VM_DISKS_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "a snapshot has at most %d disks", HSM_VM_DISKS_MAX);
	}
	for (size_t i = 0; i < n; i++) {
		if (!disks[i].drive || !*disks[i].drive) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "disks[%zu]: the drive (e.g. vda) is missing", i);
		}
		r = pk_uuid_check_ids(disks[i].domain, disks[i].image, disks[i].volume, err);
		if (r < 0) {
			pk_error_prefix(err, "disks[%zu] (drive %s)", i, disks[i].drive);
			return r;
		}
		for (size_t k = 0; k < i; k++) {
			if (!strcmp(disks[k].drive, disks[i].drive)) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						    "drive '%s' is listed twice", disks[i].drive);
			}
			if (!strcmp(disks[k].volume, disks[i].volume)) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						    "volume '%s' is given for two drives",
						    disks[i].volume);
			}
		}
	}
	return 0;
}

/* Checks one disk against the VM and the metadata; fills the overlay. */
static int snapshot_disk_check(struct hsm *hsm, const char *vm, const struct hsm_vm_info *info,
			       const struct hsm_snapshot_disk *sd,
			       struct hsm_vmxml_snapshot_disk *out, char *path, size_t size,
			       struct pk_error *err)
{
	const struct hsm_drive_info *d = hsm_vm_info_drive(info, sd->drive);
	struct hsm_volume_list list = { 0 };
	const struct hsm_volume *v;
	const char *leaf;
	int r;

	if (!d) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' has no drive '%s'", vm,
				    sd->drive);
	}
	if (strcmp(d->id.domain_id, sd->domain) || strcmp(d->id.image_id, sd->image)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "drive '%s' of VM '%s' holds image '%s' of domain '%s', not "
				    "image '%s'", sd->drive, vm, d->id.image_id, d->id.domain_id,
				    sd->image);
	}
	if (!d->nlive || !pk_uuid_valid(d->live_chain[0])) {
		return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
				    "drive '%s' of VM '%s' does not run on a poolkeeper volume (%s)",
				    sd->drive, vm, d->nlive ? d->live_chain[0] : "no source");
	}
	leaf = d->live_chain[0];
	r = hsm_volumes_read(hsm, sd->domain, &list, err);
	if (r < 0) {
		return r;
	}
	v = hsm_volume_list_find(&list, sd->volume);
	if (!v) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				 "new volume '%s' for drive '%s' not found in domain '%s'",
				 sd->volume, sd->drive, sd->domain);
	} else if (strcmp(v->meta.image, sd->image) != 0) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "new volume '%s' belongs to image '%s', not to image '%s' of drive "
				 "'%s'", sd->volume, v->meta.image, sd->image, sd->drive);
	} else if (!strcmp(sd->volume, leaf)) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "volume '%s' is already the leaf of drive '%s'", sd->volume,
				 sd->drive);
	} else if (strcmp(v->meta.parent, leaf) != 0) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "new volume '%s' has parent '%s', but drive '%s' runs on '%s'; "
				 "create the new volume on top of the current leaf", sd->volume,
				 v->meta.parent, sd->drive, leaf);
	} else if (v->meta.format != PK_VOLUME_COW) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "new volume '%s' is RAW; a snapshot overlay must be COW",
				 sd->volume);
	} else if (v->meta.legality != PK_VOLUME_LEGAL) {
		r = pk_error_set(err, PK_E_ILLEGAL, EINVAL, "new volume '%s' is %s", sd->volume,
				 pk_volume_legality_name(v->meta.legality));
	}
	hsm_volume_list_release(&list);
	if (r == 0) {
		r = hsm_image_volume_ready(hsm, sd->domain, sd->image, sd->volume, &out->block, err);
	}
	if (r == 0) {
		r = hsm_image_link_path(hsm, sd->domain, sd->image, sd->volume, path, size, err);
	}
	if (r == 0) {
		out->target = d->id.target;
		out->path = path;
	}
	return r;
}

/* Our metadata after the switch: the new leaves. Failure is only logged. */
static void snapshot_metadata_update(struct hsm *hsm, const char *vm,
				     const struct hsm_vm_info *info,
				     const struct hsm_snapshot_disk *disks, size_t n)
{
	struct hsm_drive_id *ids = pk_xcalloc(info->ndrives + 1, sizeof(*ids));
	struct pk_error err = { PK_OK, "" };
	char *xml = NULL;

	for (size_t i = 0; i < info->ndrives; i++) {
		ids[i] = info->drives[i].id;
		for (size_t k = 0; k < n; k++) {
			if (!strcmp(ids[i].target, disks[k].drive)) {
				snprintf(ids[i].volume_id, sizeof(ids[i].volume_id), "%s",
					 disks[k].volume);
			}
		}
	}
	if (hsm_vmxml_metadata_build(ids, info->ndrives, &xml, &err) < 0 ||
	    hsm_virt_metadata_set(hsm->virt, vm, xml, &err) < 0) {
		pk_log_error("snapshot of vm='%s' taken, but its drive metadata still names the old "
			     "leaves (corrected at the next read): %s", vm, err.message);
	}
	free(xml);
	free(ids);
}

int hsm_vm_snapshot(struct hsm *hsm, const char *vm, const struct hsm_snapshot_disk *disks,
		    size_t n, bool quiesce, struct hsm_vm_info *ret, struct pk_error *err)
{
	struct hsm_vm_info info = { 0 };
	struct hsm_vmxml_domain dom = { 0 };
	struct hsm_vmxml_snapshot_disk *sdisks = NULL;
	char (*paths)[HSM_PATH_MAX] = NULL;
	struct pk_lockset set;
	char *xml = NULL, *snap = NULL;
	int r;

	r = snapshot_args_check(vm, disks, n, err);
	if (r == 0) {
		r = hsm_virt_ready(hsm, err);
	}
	if (r < 0) {
		return r;
	}
	pk_lockset_init(&set, hsm->locks, "VmSnapshot");
	hsm_lockset_add_vm(&set, vm);
	for (size_t i = 0; i < n; i++) {
		hsm_lockset_add_image(&set, disks[i].domain, disks[i].image);
	}
	r = pk_lockset_acquire(&set, hsm->settings.lock_timeout_ms, err);
	if (r < 0) {
		goto out_free;
	}
	/* A drive with a merge under way keeps its chain until the job ends. */
	for (size_t i = 0; i < n; i++) {
		char job[PK_UUID_BUFLEN] = "";
		if (hsm_merge_drive_busy(hsm, vm, disks[i].drive, job)) {
			r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
					 "drive '%s' of VM '%s' has merge job '%s' under way; snapshot "
					 "it when the job has ended", disks[i].drive, vm, job);
			goto out;
		}
	}
	r = hsm_vm_get(hsm, vm, &info, err);
	if (r < 0) {
		goto out;
	}
	if (info.state != HSM_VIRT_STATE_RUNNING && info.state != HSM_VIRT_STATE_PAUSED) {
		r = pk_error_set(err, PK_E_CONFLICT, EINVAL,
				 "VM '%s' is %s; a live snapshot needs a running VM", vm,
				 hsm_virt_state_name(info.state));
		goto out;
	}
	sdisks = pk_xcalloc(n, sizeof(*sdisks));
	paths = pk_xcalloc(n, sizeof(*paths));
	for (size_t i = 0; i < n; i++) {
		r = snapshot_disk_check(hsm, vm, &info, &disks[i], &sdisks[i], paths[i],
					sizeof(paths[i]), err);
		if (r < 0) {
			goto out;
		}
	}
	r = hsm_virt_domain_xml(hsm->virt, vm, &xml, err);
	if (r == 0) {
		r = hsm_vmxml_domain_parse(xml, &dom, err);
	}
	if (r == 0) {
		r = hsm_vmxml_snapshot_build(&dom, sdisks, n, &snap, err);
	}
	if (r == 0) {
		r = hsm_virt_snapshot(hsm->virt, vm, snap, quiesce, err);
	}
	if (r < 0) {
		pk_error_prefix(err, "snapshot of VM '%s' not taken (it runs on its old leaves)", vm);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct hsm_drive_info *d = hsm_vm_info_drive(&info, disks[i].drive);
		pk_log_info("snapshot taken vm='%s' drive='%s' image='%s' old_leaf='%s' "
			    "new_leaf='%s'%s", vm, disks[i].drive, disks[i].image,
			    d->live_chain[0], disks[i].volume, quiesce ? " quiesced" : "");
	}
	snapshot_metadata_update(hsm, vm, &info, disks, n);
	hsm_thinp_kick(hsm->thinp, vm); /* the new leaves are watched at once */
out:
	pk_lockset_release(&set);
out_free:
	hsm_vmxml_domain_release(&dom);
	hsm_vm_info_release(&info);
	free(snap);
	free(xml);
	free(paths);
	free(sdisks);
	if (r == 0 && ret) {
		struct pk_error e2;
		if (hsm_vm_get(hsm, vm, ret, &e2) < 0) {
			pk_log_warn("snapshot of vm='%s' taken; reading the VM back failed: %s", vm,
				    e2.message);
			memset(ret, 0, sizeof(*ret));
			snprintf(ret->name, sizeof(ret->name), "%s", vm);
		}
	}
	return r;
}
