#include "hsm/vm.h"
#include "hsm/thinp.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/locks.h"
#include "common/log.h"
#include "common/strv.h"
#include "common/uuid.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "hsm/vmfiles.h"

/* ---- small helpers ------------------------------------------------------------- */

char *hsm_path_volume_id(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return pk_xstrdup(pk_uuid_valid(base) ? base : path);
}

int hsm_vm_disk_chain(const struct hsm_vmxml_disk *disk, char ***ret, size_t *ret_n)
{
	char **ids = pk_xcalloc(disk->nlayers + 1, sizeof(*ids));

	for (size_t i = 0; i < disk->nlayers; i++) {
		ids[i] = hsm_path_volume_id(disk->layers[i].path ? disk->layers[i].path : "");
	}
	*ret = ids;
	*ret_n = disk->nlayers;
	return 0;
}

void hsm_vm_info_release(struct hsm_vm_info *info)
{
	if (!info) {
		return;
	}
	for (size_t i = 0; i < info->ndrives; i++) {
		pk_strv_free(info->drives[i].live_chain);
	}
	free(info->drives);
	memset(info, 0, sizeof(*info));
}

void hsm_vm_infos_free(struct hsm_vm_info *infos, size_t n)
{
	for (size_t i = 0; infos && i < n; i++) {
		hsm_vm_info_release(&infos[i]);
	}
	free(infos);
}

const struct hsm_drive_info *hsm_vm_info_drive(const struct hsm_vm_info *info,
					       const char *target)
{
	for (size_t i = 0; target && i < info->ndrives; i++) {
		if (!strcmp(info->drives[i].id.target, target)) {
			return &info->drives[i];
		}
	}
	return NULL;
}

static int vm_name_check(const char *name, struct pk_error *err)
{
	if (!hsm_vm_name_valid(name)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "VM name '%s' is not valid: 1-%d characters of A-Z a-z 0-9 _ . "
				    "+ -, not starting with '.' or '-'", name ? name : "",
				    HSM_VM_NAME_MAX);
	}
	return 0;
}

static int vm_not_found(const char *name, struct pk_error *err)
{
	return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "no poolkeeper VM named '%s' on this host",
			    name);
}

/* ---- reading VMs ------------------------------------------------------------------ */

static int vm_parse(struct hsm *hsm, const char *name, struct hsm_vmxml_domain *ret,
		    struct pk_error *err)
{
	char *xml = NULL;
	int r;

	r = hsm_virt_domain_xml(hsm->virt, name, &xml, err);
	if (r == 0) {
		r = hsm_vmxml_domain_parse(xml, ret, err);
		if (r < 0) {
			pk_error_prefix(err, "VM '%s'", name);
		}
	}
	free(xml);
	if (r == 0 && !ret->has_metadata) {
		hsm_vmxml_domain_release(ret);
		return vm_not_found(name, err);
	}
	return r;
}

/*
 * When the live leaf of a drive is another volume of the drive's image
 * (after a snapshot or a pivot whose metadata update did not happen),
 * libvirt is right: the metadata follows it.
 */
static void vm_metadata_follow(struct hsm *hsm, const char *name, struct hsm_vm_info *info,
			       const struct hsm_vmxml_domain *dom)
{
	struct hsm_drive_id *ids;
	struct pk_error err;
	char *xml = NULL;
	bool changed = false;

	ids = pk_xcalloc(info->ndrives + 1, sizeof(*ids));
	for (size_t i = 0; i < info->ndrives; i++) {
		const struct hsm_vmxml_disk *disk = hsm_vmxml_domain_disk(dom, info->drives[i].id.target);
		struct hsm_drive_info *d = &info->drives[i];
		char link[HSM_PATH_MAX];

		ids[i] = d->id;
		if (!disk || !disk->nlayers || !d->nlive || !pk_uuid_valid(d->live_chain[0]) ||
		    !strcmp(d->live_chain[0], d->id.volume_id)) {
			continue;
		}
		if (hsm_image_link_path(hsm, d->id.domain_id, d->id.image_id, d->live_chain[0], link,
					sizeof(link), NULL) < 0 ||
		    strcmp(link, disk->layers[0].path) != 0) {
			continue; /* not a volume of this drive's image */
		}
		pk_log_info("drive leaf follows libvirt vm='%s' drive='%s' old='%s' new='%s'", name,
			    d->id.target, d->id.volume_id, d->live_chain[0]);
		snprintf(ids[i].volume_id, sizeof(ids[i].volume_id), "%s", d->live_chain[0]);
		d->id = ids[i];
		changed = true;
	}
	if (changed && (hsm_vmxml_metadata_build(ids, info->ndrives, &xml, &err) < 0 ||
			hsm_virt_metadata_set(hsm->virt, name, xml, &err) < 0)) {
		pk_log_warn("cannot update the drive metadata of vm='%s': %s", name, err.message);
	}
	free(xml);
	free(ids);
}

int hsm_vm_get(struct hsm *hsm, const char *name, struct hsm_vm_info *ret,
	       struct pk_error *err)
{
	struct hsm_vmxml_domain dom = { 0 };
	struct hsm_vm_info info = { 0 };
	int r;

	r = vm_name_check(name, err);
	if (r == 0) {
		r = hsm_virt_ready(hsm, err);
	}
	if (r == 0) {
		r = vm_parse(hsm, name, &dom, err);
	}
	if (r < 0) {
		return r;
	}
	r = hsm_virt_domain_state(hsm->virt, name, &info.state, &info.state_reason, err);
	if (r < 0) {
		hsm_vmxml_domain_release(&dom);
		return r;
	}
	hsm_thinp_vm_status(hsm->thinp, name, info.waiting, sizeof(info.waiting));
	snprintf(info.name, sizeof(info.name), "%s", dom.name);
	snprintf(info.uuid, sizeof(info.uuid), "%s", dom.uuid);
	info.type = !strcmp(dom.type, "kvm")	? HSM_VM_TYPE_KVM
		    : !strcmp(dom.type, "qemu") ? HSM_VM_TYPE_QEMU
						: 0;
	info.drives = pk_xcalloc(dom.ndrives + 1, sizeof(*info.drives));
	info.ndrives = dom.ndrives;
	for (size_t i = 0; i < dom.ndrives; i++) {
		const struct hsm_vmxml_disk *disk = hsm_vmxml_domain_disk(&dom, dom.drives[i].target);

		info.drives[i].id = dom.drives[i];
		if (disk) {
			hsm_vm_disk_chain(disk, &info.drives[i].live_chain, &info.drives[i].nlive);
		}
	}
	if (info.state == HSM_VIRT_STATE_RUNNING || info.state == HSM_VIRT_STATE_PAUSED) {
		vm_metadata_follow(hsm, name, &info, &dom);
	}
	hsm_vmxml_domain_release(&dom);
	*ret = info;
	return 0;
}

int hsm_vm_list(struct hsm *hsm, const char *name, struct hsm_vm_info **ret, size_t *ret_n,
		struct pk_error *err)
{
	struct hsm_vm_info *infos;
	char **names = NULL;
	size_t n = 0, count = 0;
	int r;

	if (name && *name) {
		infos = pk_xcalloc(1, sizeof(*infos));
		r = hsm_vm_get(hsm, name, &infos[0], err);
		if (r < 0) {
			free(infos);
			return r;
		}
		*ret = infos;
		*ret_n = 1;
		return 0;
	}
	r = hsm_virt_ready(hsm, err);
	if (r == 0) {
		r = hsm_virt_domain_list(hsm->virt, &names, &n, err);
	}
	if (r < 0) {
		return r;
	}
	infos = pk_xcalloc(n + 1, sizeof(*infos));
	for (size_t i = 0; i < n; i++) {
		struct pk_error e2 = { PK_OK, "" };
		r = hsm_vm_get(hsm, names[i], &infos[count], &e2);
		if (r == 0) {
			count++;
		} else if (e2.code != PK_E_NOT_FOUND) {
			/* A VM that cannot be read is an error, not a silent gap. */
			pk_error_set(err, e2.code, -r, "%s", e2.message);
			pk_strv_free(names);
			hsm_vm_infos_free(infos, count);
			return r;
		}
	}
	pk_strv_free(names);
	*ret = infos;
	*ret_n = count;
	return 0;
}

/* Calls fn for the metadata drives of every VM; stops when fn returns != 0. */
static int vm_each_drive(struct hsm *hsm,
			 int (*fn)(void *ctx, const char *vm, const struct hsm_drive_id *d),
			 void *ctx, struct pk_error *err)
{
	char **names = NULL;
	size_t n = 0;
	int r;

	r = hsm_virt_ready(hsm, err);
	if (r == 0) {
		r = hsm_virt_domain_list(hsm->virt, &names, &n, err);
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct hsm_drive_id *drives = NULL;
		size_t nd = 0;
		char *xml = NULL;
		struct pk_error e2;

		if (hsm_virt_metadata_get(hsm->virt, names[i], &xml, &e2) < 0 ||
		    hsm_vmxml_metadata_parse(xml, &drives, &nd, &e2) < 0) {
			free(xml);
			if (e2.code == PK_E_NOT_FOUND) {
				continue; /* gone meanwhile */
			}
			r = pk_error_set(err, e2.code, pk_errc_errno(e2.code), "VM '%s': %s",
					 names[i], e2.message);
			break;
		}
		free(xml);
		for (size_t k = 0; k < nd && r == 0; k++) {
			r = fn(ctx, names[i], &drives[k]);
		}
		free(drives);
	}
	pk_strv_free(names);
	return r;
}

struct image_user_ctx {
	const char *domain, *image;
	char *vm, *target;
};

static int image_user_fn(void *ctx, const char *vm, const struct hsm_drive_id *d)
{
	struct image_user_ctx *c = ctx;

	if (strcmp(d->domain_id, c->domain) || strcmp(d->image_id, c->image)) {
		return 0;
	}
	if (c->vm) {
		snprintf(c->vm, HSM_VM_NAME_MAX + 1, "%s", vm);
	}
	if (c->target) {
		snprintf(c->target, HSM_VMXML_TARGET_MAX, "%s", d->target);
	}
	return 1;
}

int hsm_vm_image_user(struct hsm *hsm, const char *domain, const char *image,
		      char ret_vm[HSM_VM_NAME_MAX + 1], char ret_target[HSM_VMXML_TARGET_MAX],
		      struct pk_error *err)
{
	struct image_user_ctx c = { domain, image, ret_vm, ret_target };

	return vm_each_drive(hsm, image_user_fn, &c, err);
}

int hsm_vm_volume_user(struct hsm *hsm, const char *domain, const char *image,
		       const char *volume, char ret_vm[HSM_VM_NAME_MAX + 1],
		       struct pk_error *err)
{
	struct hsm_vm_info *infos = NULL;
	size_t n = 0;
	int r, found = 0;

	r = hsm_vm_list(hsm, NULL, &infos, &n, err);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < n && !found; i++) {
		for (size_t k = 0; k < infos[i].ndrives && !found; k++) {
			const struct hsm_drive_info *d = &infos[i].drives[k];
			if (strcmp(d->id.domain_id, domain) || strcmp(d->id.image_id, image)) {
				continue;
			}
			found = !strcmp(d->id.volume_id, volume);
			for (size_t l = 0; l < d->nlive && !found; l++) {
				found = !strcmp(d->live_chain[l], volume);
			}
			if (found && ret_vm) {
				snprintf(ret_vm, HSM_VM_NAME_MAX + 1, "%s", infos[i].name);
			}
		}
	}
	hsm_vm_infos_free(infos, n);
	return found;
}

/* ---- create / destroy ------------------------------------------------------------------ */

static int bus_parse(const char *bus, size_t i, enum hsm_disk_bus *ret, struct pk_error *err)
{
	if (!bus || !*bus || !strcmp(bus, "virtio")) {
		*ret = HSM_DISK_BUS_VIRTIO;
	} else if (!strcmp(bus, "sata")) {
		*ret = HSM_DISK_BUS_SATA;
	} else if (!strcmp(bus, "scsi")) {
		*ret = HSM_DISK_BUS_SCSI;
	} else {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "disks[%zu].bus '%s' is not virtio, sata or scsi", i, bus);
	}
	return 0;
}

/* Checks one disk of a spec and fills the builder's disk (path in pathbuf). */
static int create_disk_check(struct hsm *hsm, const struct hsm_vm_create_disk *d, size_t i,
			     struct hsm_vm_disk *out, char *pathbuf, size_t pathsize,
			     struct pk_error *err)
{
	struct hsm_volume_list list = { 0 };
	struct hsm_chain chain = { 0 };
	char vm[HSM_VM_NAME_MAX + 1], target[HSM_VMXML_TARGET_MAX];
	const struct hsm_volume *v;
	int r;

	r = hsm_volumes_read(hsm, d->domain, &list, err);
	if (r == 0) {
		r = hsm_chain_build(&list, d->domain, d->image, NULL, &chain, err);
	}
	if (r < 0) {
		goto out;
	}
	if (strcmp(chain.v[0].id, d->volume) != 0) {
		v = hsm_volume_list_find(&list, d->volume);
		if (!v) {
			r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
					 "disks[%zu]: volume '%s' not found in domain '%s'", i,
					 d->volume, d->domain);
		} else if (strcmp(v->meta.image, d->image) != 0) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "disks[%zu]: volume '%s' belongs to image '%s', not to "
					 "image '%s'", i, d->volume, v->meta.image, d->image);
		} else {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "disks[%zu]: volume '%s' is not the leaf of image '%s' (the "
					 "leaf is '%s'); a VM runs on the leaf only", i, d->volume,
					 d->image, chain.v[0].id);
		}
		goto out;
	}
	for (size_t k = 0; k < chain.n; k++) {
		if (chain.v[k].meta.legality != PK_VOLUME_LEGAL) {
			r = pk_error_set(err, PK_E_ILLEGAL, EINVAL,
					 "disks[%zu]: volume '%s' of image '%s' is %s", i,
					 chain.v[k].id, d->image,
					 pk_volume_legality_name(chain.v[k].meta.legality));
			goto out;
		}
		r = hsm_image_volume_ready(hsm, d->domain, d->image, chain.v[k].id,
					   k == 0 ? &out->block : NULL, err);
		if (r < 0) {
			goto out;
		}
	}
	r = hsm_vm_image_user(hsm, d->domain, d->image, vm, target, err);
	if (r > 0) {
		r = pk_error_set(err, PK_E_IN_USE, EBUSY,
				 "disks[%zu]: image '%s' is already used by VM '%s' (drive %s)", i,
				 d->image, vm, target);
	}
	if (r < 0) {
		goto out;
	}
	r = hsm_image_link_path(hsm, d->domain, d->image, d->volume, pathbuf, pathsize, err);
	if (r < 0) {
		goto out;
	}
	out->path = pathbuf;
	out->format = chain.v[0].meta.format == PK_VOLUME_COW ? HSM_DISK_FORMAT_QCOW2
							       : HSM_DISK_FORMAT_RAW;
	snprintf(out->id.domain_id, sizeof(out->id.domain_id), "%s", d->domain);
	snprintf(out->id.image_id, sizeof(out->id.image_id), "%s", d->image);
	snprintf(out->id.volume_id, sizeof(out->id.volume_id), "%s", d->volume);
out:
	hsm_chain_release(&chain);
	hsm_volume_list_release(&list);
	return r;
}

static int create_spec_check(const struct hsm_vm_create_spec *spec, struct pk_error *err)
{
	int r = vm_name_check(spec->name, err);

	if (r < 0) {
		return r;
	}
	if (spec->ndisks > HSM_VM_DISKS_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "a VM has at most %d disks, not %zu", HSM_VM_DISKS_MAX,
				    spec->ndisks);
	}
	for (size_t i = 0; i < spec->ndisks; i++) {
		const struct hsm_vm_create_disk *d = &spec->disks[i];
		r = pk_uuid_check_ids(d->domain, d->image, d->volume, err);
		if (r < 0) {
			pk_error_prefix(err, "disks[%zu]", i);
			return r;
		}
		for (size_t k = 0; k < i; k++) {
			if (!strcmp(spec->disks[k].domain, d->domain) &&
			    !strcmp(spec->disks[k].image, d->image)) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						    "disks[%zu] and disks[%zu] are the same image '%s'",
						    k, i, d->image);
			}
		}
	}
	return 0;
}

static const char *opt(const char *s)
{
	return s && *s ? s : NULL;
}

/* Host paths of a new VM's files, derived here (hsm/vmfiles.h), never
 * taken from the request. Empty: none. */
struct create_files {
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char serial_log[PATH_MAX];
};

static int create_files_resolve(struct hsm *hsm, const struct hsm_vm_create_spec *spec,
				struct create_files *f, struct pk_error *err)
{
	const char *boot_dir = hsm->settings.boot_dir ? hsm->settings.boot_dir
						      : HSM_BOOT_DIR_DEFAULT;
	int r = 0;

	if (opt(spec->kernel)) {
		r = hsm_vmfiles_boot_resolve(boot_dir, "kernel", spec->kernel, f->kernel,
					     sizeof(f->kernel), err);
	}
	if (r == 0 && opt(spec->initrd)) {
		r = hsm_vmfiles_boot_resolve(boot_dir, "initrd", spec->initrd, f->initrd,
					     sizeof(f->initrd), err);
	}
	if (r == 0 && hsm->settings.log_dir) {
		r = hsm_vmfiles_serial_log(hsm->settings.log_dir, spec->name, f->serial_log,
					   sizeof(f->serial_log), err);
	}
	return r;
}

int hsm_vm_create(struct hsm *hsm, const struct hsm_vm_create_spec *spec,
		  struct hsm_vm_info *ret, struct pk_error *err)
{
	struct hsm_vm_spec vs = { 0 };
	struct hsm_vm_disk *disks = NULL;
	struct create_files *files = NULL;
	char (*paths)[HSM_PATH_MAX] = NULL;
	struct pk_lockset set;
	enum hsm_virt_state state;
	char uuid[PK_UUID_BUFLEN];
	char *xml = NULL;
	bool locked = false;
	int r;

	r = create_spec_check(spec, err);
	if (r == 0) {
		r = hsm_virt_ready(hsm, err);
	}
	if (r < 0) {
		return r;
	}
	files = pk_xcalloc(1, sizeof(*files));
	r = create_files_resolve(hsm, spec, files, err);
	if (r < 0) {
		free(files);
		return r;
	}
	disks = pk_xcalloc(spec->ndisks + 1, sizeof(*disks));
	paths = pk_xcalloc(spec->ndisks + 1, sizeof(*paths));
	pk_lockset_init(&set, hsm->locks, "VmCreate");
	hsm_lockset_add_vm(&set, spec->name);
	for (size_t i = 0; i < spec->ndisks; i++) {
		hsm_lockset_add_image(&set, spec->disks[i].domain, spec->disks[i].image);
	}
	r = pk_lockset_acquire(&set, hsm->settings.lock_timeout_ms, err);
	if (r < 0) {
		goto out;
	}
	locked = true;
	if (hsm_virt_domain_state(hsm->virt, spec->name, &state, NULL, NULL) == 0) {
		r = pk_error_set(err, PK_E_ALREADY_EXISTS, EEXIST,
				 "a VM named '%s' already exists on this host (state %s)",
				 spec->name, hsm_virt_state_name(state));
		goto out;
	}
	for (size_t i = 0; i < spec->ndisks; i++) {
		const struct hsm_vm_create_disk *d = &spec->disks[i];
		r = bus_parse(d->bus, i, &disks[i].bus, err);
		if (r == 0 && d->target) {
			if (strlen(d->target) >= sizeof(disks[i].id.target)) {
				r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						 "disks[%zu].target '%s' is too long", i, d->target);
			} else {
				snprintf(disks[i].id.target, sizeof(disks[i].id.target), "%s", d->target);
			}
		}
		if (r == 0) {
			r = create_disk_check(hsm, d, i, &disks[i], paths[i], sizeof(paths[i]), err);
		}
		if (r < 0) {
			goto out;
		}
	}
	vs.name = spec->name;
	vs.memory_mib = spec->memory_mib;
	vs.vcpus = spec->vcpus;
	vs.type = spec->type == HSM_VM_TYPE_WANT_KVM	? HSM_VM_TYPE_KVM
		  : spec->type == HSM_VM_TYPE_WANT_QEMU ? HSM_VM_TYPE_QEMU
							: hsm->default_type;
	vs.io = HSM_DISK_IO_NATIVE;
	vs.disks = disks;
	vs.ndisks = spec->ndisks;
	vs.kernel = opt(files->kernel);
	vs.initrd = opt(files->initrd);
	vs.cmdline = opt(spec->cmdline);
	vs.serial_log = opt(files->serial_log);
	r = hsm_vmxml_domain_build(&vs, &xml, err);
	if (r == 0) {
		r = hsm_virt_domain_create(hsm->virt, xml, uuid, err);
	}
	if (r < 0) {
		goto out;
	}
	pk_log_info("VM created vm='%s' uuid='%s' type=%s disks=%zu", spec->name, uuid,
		    vs.type == HSM_VM_TYPE_KVM ? "kvm" : "qemu", spec->ndisks);
out:
	if (locked) {
		pk_lockset_release(&set);
	}
	free(xml);
	free(paths);
	free(disks);
	free(files);
	if (r == 0 && ret) {
		struct pk_error e2;
		if (hsm_vm_get(hsm, spec->name, ret, &e2) < 0) {
			/* Created; only the read-back failed. Say so rather than fail. */
			pk_log_warn("VM '%s' created but cannot be read back: %s", spec->name,
				    e2.message);
			memset(ret, 0, sizeof(*ret));
			snprintf(ret->name, sizeof(ret->name), "%s", spec->name);
			snprintf(ret->uuid, sizeof(ret->uuid), "%s", uuid);
		}
	}
	return r;
}

int hsm_vm_destroy(struct hsm *hsm, const char *name, struct pk_error *err)
{
	struct pk_lockset set;
	char *xml = NULL;
	int r;

	r = vm_name_check(name, err);
	if (r == 0) {
		r = hsm_virt_ready(hsm, err);
	}
	if (r < 0) {
		return r;
	}
	pk_lockset_init(&set, hsm->locks, "VmDestroy");
	hsm_lockset_add_vm(&set, name);
	r = pk_lockset_acquire(&set, hsm->settings.lock_timeout_ms, err);
	if (r < 0) {
		return r;
	}
	/* Only our own domains: one without our metadata is not ours to destroy. */
	r = hsm_virt_metadata_get(hsm->virt, name, &xml, err);
	if (r < 0 && err && err->code == PK_E_NOT_FOUND) {
		r = vm_not_found(name, err);
	}
	if (r == 0) {
		r = hsm_virt_domain_destroy(hsm->virt, name, err);
	}
	if (r == 0) {
		pk_log_info("VM destroyed vm='%s'", name);
	}
	free(xml);
	pk_lockset_release(&set);
	return r;
}
