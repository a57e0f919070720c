#include "spm/volume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/fault.h"
#include "common/locks.h"
#include "common/log.h"
#include "common/lvm.h"
#include "common/proc.h"
#include "common/volchain.h"
#include "spm/volume_internal.h"

#define GIB ((uint64_t)1024 * MIB)
/* Upper bound of a volume's virtual size: 64 TiB, qemu's qcow2 practical limit is far above. */
#define CAPACITY_MAX ((uint64_t)64 << 40)

static int create_validate(const struct spm_volume_create *a, const struct spm_volume_list *list,
			   const struct spm_volume **ret_parent, uint64_t *ret_capacity,
			   struct pk_error *err)
{
	const struct spm_volume *parent = NULL;
	uint64_t capacity = a->capacity;
	bool image_has_volumes = false;

	if (a->format != PK_VOLUME_RAW && a->format != PK_VOLUME_COW) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "format must be RAW or COW");
	}
	if (spm_volume_list_find(list, a->volume)) {
		return pk_error_set(err, PK_E_ALREADY_EXISTS, EEXIST,
				    "volume '%s' already exists in domain '%s'", a->volume, a->domain);
	}
	for (size_t i = 0; i < list->n; i++) {
		if (!strcmp(list->v[i].meta.image, a->image) &&
		    list->v[i].meta.legality != PK_VOLUME_REMOVING) {
			image_has_volumes = true;
		}
	}
	if (a->parent && *a->parent) {
		if (a->format == PK_VOLUME_RAW) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "a RAW volume cannot have a parent; create the snapshot "
					    "volume as COW");
		}
		parent = spm_volume_list_find(list, a->parent);
		if (!parent) {
			return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
					    "parent volume '%s' does not exist in domain '%s'",
					    a->parent, a->domain);
		}
		if (strcmp(parent->meta.image, a->image) != 0) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "parent volume '%s' belongs to image '%s', not to image "
					    "'%s'; a snapshot stays in its parent's image", a->parent,
					    parent->meta.image, a->image);
		}
		if (parent->meta.legality != PK_VOLUME_LEGAL) {
			return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
					    "parent volume '%s' is %s and cannot get a child", a->parent,
					    pk_volume_legality_name(parent->meta.legality));
		}
		for (size_t i = 0; i < list->n; i++) {
			if (!strcmp(list->v[i].meta.parent, a->parent) && pk_volchain_live(&list->v[i].meta) &&
			    !pk_volchain_orphaned(&list->v[i].meta)) {
				return pk_error_set(err, PK_E_CONFLICT, EEXIST,
						    "parent volume '%s' already has a child '%s'; "
						    "snapshot the image's leaf instead", a->parent,
						    list->v[i].id);
			}
		}
		if (capacity == 0) {
			capacity = parent->meta.capacity;
		}
		if (capacity < parent->meta.capacity) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "capacity %" PRIu64 " is smaller than the parent's %" PRIu64
					    "; a snapshot cannot shrink the disk", capacity,
					    parent->meta.capacity);
		}
	} else if (image_has_volumes) {
		return pk_error_set(err, PK_E_CONFLICT, EEXIST,
				    "image '%s' already has volumes; a new volume in it needs "
				    "--parent (the image's leaf)", a->image);
	}
	if (capacity == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "capacity is required and must be greater than zero");
	}
	if (capacity % 512 != 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "capacity %" PRIu64 " is not a multiple of 512 bytes", capacity);
	}
	if (capacity > CAPACITY_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "capacity %" PRIu64 " is beyond the limit of 64 TiB", capacity);
	}
	if (a->initial_size % 512 != 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "initial size %" PRIu64 " is not a multiple of 512 bytes",
				    a->initial_size);
	}
	if (a->format == PK_VOLUME_RAW && a->initial_size && a->initial_size < capacity) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "initial size %" PRIu64 " is smaller than the capacity %" PRIu64
				    " of a RAW volume", a->initial_size, capacity);
	}
	*ret_parent = parent;
	*ret_capacity = capacity;
	return 0;
}

static uint64_t create_lv_size(enum pk_volume_format format, uint64_t capacity,
			       uint64_t initial, uint64_t extent)
{
	uint64_t size;

	if (format == PK_VOLUME_RAW) {
		size = initial ? initial : capacity;
	} else if (initial) {
		size = initial;
	} else {
		/*
		 * A COW volume starts small and grows by extension: room for its
		 * qcow2 metadata plus the first data, at most 1 GiB (VDSM's
		 * initial chunk), never more than a full copy.
		 */
		uint64_t meta = capacity / 4096 + 2 * MIB; /* L1/L2/refcounts, generous */
		size = capacity + meta;
		if (size > GIB) {
			size = GIB;
		}
	}
	return round_up(size, extent ? extent : 4 * MIB);
}

static int create_format_cow(struct spm *spm, const char *domain, const char *volume,
			     const struct spm_volume *parent, uint64_t capacity,
			     struct pk_error *err)
{
	char path[PK_LVM_PATH_MAX * 2], cap[32], opts[256];
	int r, r2;

	/* qemu-img writes the LV: with the lease. */
	r = spm_role_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
	r = spm_lv_activate(spm, domain, volume, path, sizeof(path), err);
	if (r < 0) {
		return r;
	}
	snprintf(cap, sizeof(cap), "%" PRIu64, capacity);
	if (parent) {
		/* Relative backing name: the parent's volume id, resolved beside the leaf. */
		snprintf(opts, sizeof(opts), "compat=1.1,backing_file=%s,backing_fmt=%s", parent->id,
			 parent->meta.format == PK_VOLUME_RAW ? "raw" : "qcow2");
	} else {
		snprintf(opts, sizeof(opts), "compat=1.1");
	}
	{
		const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-o", opts,
				       path, cap, NULL };
		r = pk_proc_check(argv, 60000, PK_E_IO, NULL, err);
	}
	r2 = spm_lv_deactivate(spm, domain, volume, r < 0 ? NULL : err);
	return r < 0 ? r : r2;
}

int spm_volume_create(struct spm *spm, const struct spm_volume_create *args,
		      struct spm_volume *ret, struct pk_error *err)
{
	struct spm_volume_create a = *args;
	struct spm_volume_list list = { 0 };
	struct pk_lockset set;
	const struct spm_volume *parent = NULL;
	struct pk_volume_meta meta = { 0 }, done;
	struct pk_meta_tags tags;
	struct spm_volume made;
	char generated[PK_UUID_BUFLEN];
	uint64_t capacity = 0, lv_size, vg_free = 0;
	bool lv_made = false;
	int r;

	if (!a.volume || !*a.volume) {
		pk_uuid_generate(generated);
		a.volume = generated;
	}
	r = pk_uuid_check_ids(a.domain, a.image, a.volume, err);
	if (r == 0 && a.parent && *a.parent) {
		r = pk_uuid_check("parent_id", a.parent, err);
	}
	if (r == 0 && a.parent && !strcmp(a.parent, a.volume)) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "volume '%s' cannot be its own parent", a.volume);
	}
	if (r < 0) {
		return r;
	}
	/* The image lock only: the new volume's id is nobody else's yet. */
	r = spm_volume_mutation_begin(spm, "create_volume", a.domain, a.image, PK_LOCK_EXCLUSIVE,
				      NULL, &set, &list, &vg_free, err);
	if (r < 0) {
		return r;
	}
	r = create_validate(&a, &list, &parent, &capacity, err);
	if (r < 0) {
		goto out;
	}
	lv_size = create_lv_size(a.format, capacity, a.initial_size, list.extent_size);
	if (lv_size > vg_free) {
		r = pk_error_set(err, PK_E_NO_SPACE, ENOSPC,
				 "domain '%s' has %" PRIu64 " MiB free, the volume needs %" PRIu64
				 " MiB; extend the volume group or delete volumes", a.domain,
				 vg_free / MIB, lv_size / MIB);
		goto out;
	}
	snprintf(meta.image, sizeof(meta.image), "%s", a.image);
	snprintf(meta.parent, sizeof(meta.parent), "%s", parent ? parent->id : PK_META_NO_PARENT);
	meta.format = a.format;
	meta.role = PK_VOLUME_LEAF;
	/*
	 * A RAW volume is complete once its LV exists: one lvcreate makes it
	 * LEGAL at generation 1. A COW volume needs its qcow2 header first, so
	 * it is made ILLEGAL at generation 0 ("unfinished") and finished below.
	 */
	meta.legality = a.format == PK_VOLUME_RAW ? PK_VOLUME_LEGAL : PK_VOLUME_ILLEGAL;
	meta.capacity = capacity;
	meta.generation = a.format == PK_VOLUME_RAW ? 1 : 0;
	meta.ctime = (uint64_t)time(NULL);
	if (a.description && strlen(a.description) >= sizeof(meta.description)) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				 "description is too long (at most %d characters)", PK_META_DESC_MAX);
		goto out;
	}
	snprintf(meta.description, sizeof(meta.description), "%s", a.description ? a.description : "");
	r = pk_meta_volume_check(a.volume, &meta, err);
	if (r == 0) {
		r = pk_meta_volume_encode(&meta, &tags, err);
	}
	if (r < 0) {
		goto out;
	}
	r = spm_role_check(spm, a.domain, err);
	if (r < 0) {
		goto out;
	}
	r = pk_lvm_lv_create(spm->lvm, a.domain, a.volume, lv_size, pk_meta_tags_strv(&tags), err);
	if (r < 0) {
		spm_volume_cache_invalidate(spm);
		goto out;
	}
	lv_made = true;
	memset(&made, 0, sizeof(made));
	snprintf(made.id, sizeof(made.id), "%s", a.volume);
	made.meta = meta;
	made.lv_size = lv_size;
	spm_volume_cache_update(spm, a.domain, &made, NULL, -(int64_t)lv_size);
	pk_fault_point("create_volume:lv_created");
	if (a.format == PK_VOLUME_COW) {
		r = create_format_cow(spm, a.domain, a.volume, parent, capacity, err);
		if (r < 0) {
			goto fail;
		}
	}
	pk_fault_point("create_volume:formatted");
	done = meta;
	if (a.format == PK_VOLUME_COW) {
		done.legality = PK_VOLUME_LEGAL;
		r = spm_volume_write_meta(spm, a.domain, &made, &done, NULL, err);
		if (r < 0) {
			goto fail;
		}
	}
	if (ret) {
		memset(ret, 0, sizeof(*ret));
		snprintf(ret->id, sizeof(ret->id), "%s", a.volume);
		ret->meta = done;
		ret->meta.generation = 1;
		ret->lv_size = lv_size;
	}
	pk_log_info("volume created domain='%s' image='%s' volume='%s' format=%s capacity=%" PRIu64
		    " lv_size=%" PRIu64 " parent='%s'", a.domain, a.image, a.volume,
		    pk_volume_format_name(a.format), capacity, lv_size, parent ? parent->id : "");
	goto out;
fail:
	if (lv_made) {
		struct pk_error rerr;
		/*
		 * Undo our own half-made LV, with the lease (the write guard
		 * checks it too): after a loss the next SPM's recovery removes it.
		 */
		if (spm_role_check(spm, a.domain, &rerr) < 0 ||
		    pk_lvm_lv_remove(spm->lvm, a.domain, a.volume, &rerr) < 0) {
			pk_log_warn("cannot remove half-made volume domain='%s' volume='%s': %s",
				    a.domain, a.volume, rerr.message);
		}
		spm_volume_cache_invalidate(spm);
	}
out:
	spm_volume_list_release(&list);
	spm_volume_mutation_end(&set);
	return r;
}
