#include "hsm/chain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proc.h"
#include "common/strv.h"
#include "common/uuid.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "hsm/qemu_img.h"
#include "hsm/vm.h"

void hsm_chain_report_release(struct hsm_chain_report *rep)
{
	if (!rep) {
		return;
	}
	pk_strv_free(rep->metadata);
	pk_strv_free(rep->live);
	pk_strv_free(rep->defined);
	memset(rep, 0, sizeof(*rep));
}

/* ---- the chain of the qcow2 headers --------------------------------------------- */

int hsm_image_header_chain(struct hsm *hsm, const char *domain, const char *image,
			   const char *leaf, char ***ret, size_t *ret_n, struct pk_error *err)
{
	struct hsm_volume_list list = { 0 };
	struct hsm_qemu_img_file *files = NULL;
	char (*paths)[HSM_PATH_MAX] = NULL;
	const struct hsm_volume *top;
	size_t n = 0;
	int r;

	r = hsm_volumes_read(hsm, domain, &list, err);
	if (r < 0) {
		return r;
	}
	top = hsm_volume_list_find(&list, leaf);
	if (!top || strcmp(top->meta.image, image) != 0) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				 "volume '%s' is not a volume of image '%s'", leaf, image);
		goto out;
	}
	/* Every volume of the image, the leaf first, opened as its metadata says. */
	files = pk_xcalloc(list.n, sizeof(*files));
	paths = pk_xcalloc(list.n, sizeof(*paths));
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < list.n && r == 0; i++) {
			const struct hsm_volume *v = &list.v[i];

			if ((pass == 0) != (v == top) || strcmp(v->meta.image, image) != 0) {
				continue;
			}
			r = hsm_image_link_path(hsm, domain, image, v->id, paths[n],
						sizeof(paths[n]), err);
			files[n].path = paths[n];
			files[n].qcow2 = v->meta.format == PK_VOLUME_COW;
			n++;
		}
	}
	if (r == 0) {
		r = hsm_qemu_img_chain(files, n, ret, ret_n, err);
	}
out:
	free(files);
	free(paths);
	hsm_volume_list_release(&list);
	return r;
}

static int qemu_img_chain(struct hsm *hsm, const char *domain, const char *image,
			  const char *leaf, char ***ret, size_t *ret_n, struct pk_error *err)
{
	char **files = NULL;
	size_t n = 0;
	int r;

	r = hsm_image_header_chain(hsm, domain, image, leaf, &files, &n, err);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		char *id = hsm_path_volume_id(files[i]);
		free(files[i]);
		files[i] = id;
	}
	*ret = files;
	*ret_n = n;
	return 0;
}

/* ---- GetVolumeChain ------------------------------------------------------------ */

static bool chains_equal(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb) {
		return false;
	}
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i], b[i]) != 0) {
			return false;
		}
	}
	return true;
}

/*
 * A shut-off VM's definition agrees with the chain qemu-img reads when it
 * names the same leaf and every backing layer it lists (libvirt writes the
 * chain there at a live snapshot; with none listed it reads the headers) is
 * a layer of that chain: a merged-away layer listed there is what the next
 * start would look for. Only the layers it lists are judged, not their
 * order or number, which libvirt keeps in its own ways across live jobs;
 * a path that is not a volume cannot be judged and is skipped.
 */
static bool definition_agrees(char **def, size_t ndef, char **live, size_t nlive)
{
	if (ndef == 0) {
		return true;
	}
	if (nlive == 0 || strcmp(def[0], live[0]) != 0) {
		return false;
	}
	for (size_t i = 1; i < ndef; i++) {
		bool found = !pk_uuid_valid(def[i]);
		for (size_t k = 0; k < nlive && !found; k++) {
			found = !strcmp(def[i], live[k]);
		}
		if (!found) {
			return false;
		}
	}
	return true;
}

/* The live chain from a VM's drive (rep->domain/image filled or checked). */
static int live_from_vm(struct hsm *hsm, const char *vm, const char *drive,
			struct hsm_chain_report *rep, struct pk_error *err)
{
	struct hsm_vm_info info = { 0 };
	const struct hsm_drive_info *d = NULL;
	int r;

	r = hsm_vm_get(hsm, vm, &info, err);
	if (r < 0) {
		return r;
	}
	if (drive && *drive) {
		d = hsm_vm_info_drive(&info, drive);
		if (!d) {
			r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' has no drive '%s'", vm,
					 drive);
			goto out;
		}
		if (rep->image[0] &&
		    (strcmp(d->id.image_id, rep->image) || strcmp(d->id.domain_id, rep->domain))) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "drive '%s' of VM '%s' holds image '%s', not image '%s'",
					 drive, vm, d->id.image_id, rep->image);
			goto out;
		}
	} else {
		for (size_t i = 0; i < info.ndrives && !d; i++) {
			if (!strcmp(info.drives[i].id.image_id, rep->image) &&
			    !strcmp(info.drives[i].id.domain_id, rep->domain)) {
				d = &info.drives[i];
			}
		}
		if (!d) {
			r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
					 "VM '%s' has no drive on image '%s'", vm, rep->image);
			goto out;
		}
	}
	snprintf(rep->domain, sizeof(rep->domain), "%s", d->id.domain_id);
	snprintf(rep->image, sizeof(rep->image), "%s", d->id.image_id);
	if (info.state != HSM_VIRT_STATE_RUNNING && info.state != HSM_VIRT_STATE_PAUSED) {
		rep->defined = pk_xcalloc(d->nlive + 1, sizeof(char *));
		for (size_t i = 0; i < d->nlive; i++) {
			rep->defined[i] = pk_xstrdup(d->live_chain[i]);
		}
		rep->ndefined = d->nlive;
		r = 1; /* not running: the caller asks qemu-img */
		goto out;
	}
	rep->live = pk_xcalloc(d->nlive + 1, sizeof(char *));
	for (size_t i = 0; i < d->nlive; i++) {
		rep->live[i] = pk_xstrdup(d->live_chain[i]);
	}
	rep->nlive = d->nlive;
	rep->live_source = "libvirt";
out:
	hsm_vm_info_release(&info);
	return r;
}

int hsm_volume_chain(struct hsm *hsm, const char *domain, const char *image, const char *vm,
		     const char *drive, struct hsm_chain_report *ret, struct pk_error *err)
{
	struct hsm_chain_report rep = { 0 };
	struct hsm_chain chain = { 0 };
	char user[HSM_VM_NAME_MAX + 1];
	int r, live = 0;

	if (vm && !*vm) {
		vm = NULL;
	}
	if (vm && (!drive || !*drive) && (!image || !*image)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "with a VM, name its drive or the image");
	}
	if (!vm || (domain && *domain) || (image && *image)) {
		r = pk_uuid_check_ids(domain, image, NULL, err);
		if (r < 0) {
			return r;
		}
		snprintf(rep.domain, sizeof(rep.domain), "%s", domain);
		snprintf(rep.image, sizeof(rep.image), "%s", image);
	}
	if (!vm) {
		/* A VM of this host on the image? Its live XML is the truth. */
		r = hsm_vm_image_user(hsm, rep.domain, rep.image, user, NULL, err);
		if (r < 0) {
			return r;
		}
		if (r > 0) {
			vm = user;
		}
	}
	if (vm) {
		live = live_from_vm(hsm, vm, drive, &rep, err);
		if (live < 0) {
			hsm_chain_report_release(&rep);
			return live;
		}
	}
	r = hsm_image_chain_read(hsm, rep.domain, rep.image, NULL, &chain, err);
	if (r < 0) {
		goto fail;
	}
	rep.metadata = pk_xcalloc(chain.n + 1, sizeof(char *));
	for (size_t i = 0; i < chain.n; i++) {
		rep.metadata[i] = pk_xstrdup(chain.v[i].id);
	}
	rep.nmetadata = chain.n;
	if (!rep.live_source) {
		/* No running VM: what qemu would open from the prepared leaf. */
		const char *leaf = chain.v[0].id;
		r = hsm_image_volume_ready(hsm, rep.domain, rep.image, leaf, NULL, err);
		if (r == 0) {
			r = qemu_img_chain(hsm, rep.domain, rep.image, leaf, &rep.live, &rep.nlive,
					   err);
		}
		if (r < 0) {
			goto fail;
		}
		rep.live_source = "qemu-img";
	}
	rep.consistent = chains_equal(rep.metadata, rep.nmetadata, rep.live, rep.nlive) &&
			 definition_agrees(rep.defined, rep.ndefined, rep.live, rep.nlive);
	hsm_chain_release(&chain);
	*ret = rep;
	return 0;
fail:
	hsm_chain_release(&chain);
	hsm_chain_report_release(&rep);
	return r;
}
