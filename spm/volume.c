#include "spm/volume.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/log.h"
#include "common/lvm.h"
#include "common/proc.h"
#include "common/volchain.h"
#include "common/xalloc.h"
#include "spm/locks.h"

#define PREP_TAG_PREFIX "PK_PREP="
#define MIB ((uint64_t)1024 * 1024)
#define GIB ((uint64_t)1024 * MIB)
/* Upper bound of a volume's virtual size: 64 TiB, qemu's qcow2 practical limit is far above. */
#define CAPACITY_MAX ((uint64_t)64 << 40)

void spm_volume_list_release(struct spm_volume_list *list)
{
	free(list->v);
	list->v = NULL;
	list->n = 0;
}

const struct spm_volume *spm_volume_list_find(const struct spm_volume_list *list,
					      const char *id)
{
	for (size_t i = 0; i < list->n; i++) {
		if (!strcmp(list->v[i].id, id)) {
			return &list->v[i];
		}
	}
	return NULL;
}

static void volume_read_prepared(struct spm_volume *v, char *const *tags)
{
	v->nprepared = 0;
	for (size_t i = 0; tags && tags[i]; i++) {
		if (!strncmp(tags[i], PREP_TAG_PREFIX, strlen(PREP_TAG_PREFIX)) &&
		    v->nprepared < SPM_VOLUME_MAX_HOSTS) {
			v->prepared[v->nprepared++] = atoi(tags[i] + strlen(PREP_TAG_PREFIX));
		}
	}
}

/*
 * The SPM's view of its domain's volumes. The SPM is the only writer of
 * the domain's LVM metadata, so while it holds the lease it can keep what
 * it read and apply its own changes to it, instead of re-reading the whole
 * VG (one LVM command, ~20 ms at 1000 LVs) before every mutation. The view
 * is filled on the first mutation after SpmStart, dropped whenever the role
 * changes or an LVM command fails (the state on storage is then unknown),
 * and never used by an spmd that is not the SPM.
 */
struct spm_volume_cache {
	pthread_mutex_t lock;
	bool valid;
	char domain[PK_UUID_BUFLEN];
	struct spm_volume_list list;
	size_t cap;
	uint64_t vg_free;
};

void spm_volume_cache_init(struct spm *spm)
{
	spm->cache = pk_xcalloc(1, sizeof(*spm->cache));
	pthread_mutex_init(&spm->cache->lock, NULL);
}

void spm_volume_cache_free(struct spm *spm)
{
	if (!spm->cache) {
		return;
	}
	spm_volume_list_release(&spm->cache->list);
	pthread_mutex_destroy(&spm->cache->lock);
	free(spm->cache);
	spm->cache = NULL;
}

void spm_volume_cache_invalidate(struct spm *spm)
{
	pthread_mutex_lock(&spm->cache->lock);
	spm->cache->valid = false;
	pthread_mutex_unlock(&spm->cache->lock);
}

static void list_copy(struct spm_volume_list *dst, const struct spm_volume_list *src)
{
	dst->v = pk_xcalloc(src->n + 1, sizeof(*dst->v));
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = src->n;
	dst->extent_size = src->extent_size;
}

/* Copies the view into *ret if it is valid for domain. */
static bool cache_get(struct spm *spm, const char *domain, struct spm_volume_list *ret,
		      uint64_t *ret_free)
{
	struct spm_volume_cache *c = spm->cache;
	bool hit;

	pthread_mutex_lock(&c->lock);
	hit = c->valid && !strcmp(c->domain, domain);
	if (hit) {
		list_copy(ret, &c->list);
		if (ret_free) {
			*ret_free = c->vg_free;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void cache_put(struct spm *spm, const char *domain, const struct spm_volume_list *list,
		      uint64_t vg_free)
{
	struct spm_volume_cache *c = spm->cache;

	pthread_mutex_lock(&c->lock);
	spm_volume_list_release(&c->list);
	list_copy(&c->list, list);
	c->cap = list->n + 1;
	c->vg_free = vg_free;
	snprintf(c->domain, sizeof(c->domain), "%s", domain);
	c->valid = true;
	pthread_mutex_unlock(&c->lock);
}

/* Applies one of our own successful changes: add/replace v, or remove id. */
static void cache_update(struct spm *spm, const char *domain, const struct spm_volume *v,
			 const char *removed_id, int64_t free_delta)
{
	struct spm_volume_cache *c = spm->cache;

	pthread_mutex_lock(&c->lock);
	if (c->valid && !strcmp(c->domain, domain)) {
		const char *id = v ? v->id : removed_id;
		size_t i;

		for (i = 0; i < c->list.n && strcmp(c->list.v[i].id, id) != 0; i++) {
		}
		if (!v) {
			if (i < c->list.n) {
				c->list.v[i] = c->list.v[--c->list.n];
			}
		} else if (i < c->list.n) {
			c->list.v[i] = *v;
		} else {
			if (c->list.n + 1 >= c->cap) {
				c->cap = c->cap * 2 + 16;
				c->list.v = pk_xrealloc(c->list.v, c->cap * sizeof(*c->list.v));
			}
			c->list.v[c->list.n++] = *v;
		}
		c->vg_free = (uint64_t)((int64_t)c->vg_free + free_delta);
	}
	pthread_mutex_unlock(&c->lock);
}

static int volumes_load_fresh(struct spm *spm, const char *domain, struct spm_volume_list *ret,
			      struct pk_error *err);

/*
 * The volumes for a mutation: from the SPM's view, or read (and kept) when
 * there is none. The caller holds the lease and its locks.
 */
static int volumes_for_mutation(struct spm *spm, const char *domain,
				struct spm_volume_list *ret, uint64_t *ret_free,
				struct pk_error *err)
{
	struct pk_lvm_vg vg = { 0 };
	int r;

	if (cache_get(spm, domain, ret, ret_free)) {
		return 0;
	}
	r = volumes_load_fresh(spm, domain, ret, err);
	if (r == 0) {
		r = pk_lvm_vg_report(spm->lvm, domain, &vg, err);
		if (r == 0) {
			cache_put(spm, domain, ret, vg.free);
			if (ret_free) {
				*ret_free = vg.free;
			}
		} else {
			spm_volume_list_release(ret);
		}
	}
	pk_lvm_vg_release(&vg);
	return r;
}

int spm_volumes_load(struct spm *spm, const char *domain, struct spm_volume_list *ret,
		     struct pk_error *err)
{
	if (cache_get(spm, domain, ret, NULL)) {
		return 0;
	}
	return volumes_load_fresh(spm, domain, ret, err);
}

static int volumes_load_fresh(struct spm *spm, const char *domain, struct spm_volume_list *ret,
			      struct pk_error *err)
{
	struct pk_lvm_lv_list lvs = { 0 };
	struct spm_volume_list list = { 0 };
	int r;

	r = pk_lvm_lv_report(spm->lvm, domain, NULL, &lvs, err);
	if (r < 0) {
		return r;
	}
	list.v = pk_xcalloc(lvs.count + 1, sizeof(*list.v));
	list.extent_size = lvs.extent_size;
	for (size_t i = 0; i < lvs.count; i++) {
		const struct pk_lvm_lv *lv = &lvs.lvs[i];
		struct spm_volume *v = &list.v[list.n];
		struct pk_error derr;

		if (!pk_meta_lv_is_volume(lv->name)) {
			continue; /* ids, leases and foreign LVs */
		}
		if (pk_meta_volume_decode(lv->name, lv->tags, &v->meta, &derr) < 0) {
			pk_log_warn("ignoring LV with bad metadata domain='%s' lv='%s': %s", domain,
				    lv->name, derr.message);
			continue;
		}
		/* A volume LV name is a UUID (checked by pk_meta_lv_is_volume): it fits. */
		memcpy(v->id, lv->name, PK_UUID_STRLEN);
		v->id[PK_UUID_STRLEN] = '\0';
		v->lv_size = lv->size;
		volume_read_prepared(v, lv->tags);
		list.n++;
	}
	pk_lvm_lv_list_release(&lvs);
	*ret = list;
	return 0;
}


static uint64_t round_up(uint64_t v, uint64_t to)
{
	return to ? (v + to - 1) / to * to : v;
}

/* Loads the domain and finds volume in image; NOT_FOUND/INVALID_ARGUMENT otherwise. */
static int volume_find_in_image(struct spm_volume_list *list, const char *domain,
				const char *image, const char *volume,
				const struct spm_volume **ret, struct pk_error *err)
{
	const struct spm_volume *v = spm_volume_list_find(list, volume);

	if (!v) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				    "volume '%s' does not exist in domain '%s'", volume, domain);
	}
	if (strcmp(v->meta.image, image) != 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume '%s' belongs to image '%s', not to image '%s'", volume,
				    v->meta.image, image);
	}
	*ret = v;
	return 0;
}

static int lock_image(struct spm *spm, struct spm_lockset *set, const char *what,
		      const char *domain, const char *image, enum spm_lock_mode image_mode,
		      const char *volume, struct pk_error *err)
{
	char owner[64];

	snprintf(owner, sizeof(owner), "%s %.36s", what, volume ? volume : image);
	spm_lockset_init(set, spm->locks, owner);
	spm_lockset_add(set, SPM_LOCK_DOMAIN, domain, SPM_LOCK_SHARED);
	spm_lockset_add(set, SPM_LOCK_IMAGE, image, image_mode);
	if (volume) {
		spm_lockset_add(set, SPM_LOCK_VOLUME, volume, SPM_LOCK_EXCLUSIVE);
	}
	return spm_lockset_acquire(set, spm->lock_timeout_ms, err);
}

/*
 * The common start of a mutation: valid ids, our domain, the SPM lease,
 * the locks, then the domain's volumes as they are now. On failure nothing
 * is held; on success the caller releases set and list.
 */
static int mutation_begin(struct spm *spm, const char *what, const char *domain,
			  const char *image, enum spm_lock_mode image_mode, const char *volume,
			  struct spm_lockset *set, struct spm_volume_list *list, uint64_t *ret_free,
			  struct pk_error *err)
{
	int r = pk_uuid_check_ids(domain, image, volume, err);

	if (r == 0) {
		r = spm_domain_check(spm, domain, err);
	}
	if (r == 0) {
		r = spm_role_check(spm, domain, err);
	}
	if (r == 0) {
		r = lock_image(spm, set, what, domain, image, image_mode, volume, err);
	}
	if (r < 0) {
		return r;
	}
	r = volumes_for_mutation(spm, domain, list, ret_free, err);
	if (r < 0) {
		spm_lockset_release(set);
	}
	return r;
}

/*
 * Tag change on one LV, under the lease; keeps the SPM's view in step.
 * cur is the volume as on storage (its meta decoded from storage).
 */
static int volume_write_meta(struct spm *spm, const char *domain, const struct spm_volume *cur,
			     const struct pk_volume_meta *next, struct pk_error *err)
{
	struct pk_meta_tags stored, add, del;
	struct spm_volume updated;
	int r;

	/* cur was decoded from storage; its canonical encoding is what is stored. */
	r = pk_meta_volume_encode(&cur->meta, &stored, err);
	if (r == 0) {
		r = pk_meta_volume_diff(cur->id, (char *const *)pk_meta_tags_strv(&stored), next,
					&add, &del, NULL, err);
	}
	if (r < 0) {
		return r;
	}
	r = spm_role_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
	r = pk_lvm_lv_tags_change(spm->lvm, domain, cur->id, pk_meta_tags_strv(&add),
				  pk_meta_tags_strv(&del), err);
	if (r < 0) {
		spm_volume_cache_invalidate(spm);
		return r;
	}
	updated = *cur;
	updated.meta = *next;
	updated.meta.generation = cur->meta.generation + 1;
	cache_update(spm, domain, &updated, NULL, 0);
	return 0;
}

/* ---- create ----------------------------------------------------------------- */

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
	struct spm_lockset set;
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
	r = mutation_begin(spm, "create_volume", a.domain, a.image, SPM_LOCK_EXCLUSIVE, NULL, &set,
			   &list, &vg_free, err);
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
	cache_update(spm, a.domain, &made, NULL, -(int64_t)lv_size);
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
		r = volume_write_meta(spm, a.domain, &made, &done, err);
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
		/* Undo our own half-made LV; recovery removes it if this fails too. */
		if (pk_lvm_lv_remove(spm->lvm, a.domain, a.volume, &rerr) < 0) {
			pk_log_warn("cannot remove half-made volume domain='%s' volume='%s': %s",
				    a.domain, a.volume, rerr.message);
		}
		spm_volume_cache_invalidate(spm);
	}
out:
	spm_volume_list_release(&list);
	spm_lockset_release(&set);
	return r;
}

/* ---- delete ----------------------------------------------------------------- */

static int zero_lv(struct spm *spm, const char *domain, const char *volume, uint64_t size,
		   struct pk_error *err)
{
	char path[PK_LVM_PATH_MAX * 2];
	void *buf = NULL;
	uint64_t done = 0;
	int fd, r, r2;

	r = spm_lv_activate(spm, domain, volume, path, sizeof(path), err);
	if (r < 0) {
		return r;
	}
	fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0 || posix_memalign(&buf, 4096, MIB) != 0) {
		int e = errno;
		r = pk_error_set(err, PK_E_IO, e, "cannot open '%s' to zero it: %s", path, strerror(e));
		goto out;
	}
	memset(buf, 0, MIB);
	while (done < size) {
		size_t n = size - done < MIB ? (size_t)(size - done) : MIB;
		ssize_t w = pwrite(fd, buf, n, (off_t)done);
		if (w <= 0) {
			int e = errno;
			r = pk_error_set(err, PK_E_IO, e, "zeroing '%s' failed at %" PRIu64 ": %s",
					 path, done, strerror(e));
			goto out;
		}
		done += (uint64_t)w;
	}
	if (fdatasync(fd) < 0) {
		int e = errno;
		r = pk_error_set(err, PK_E_IO, e, "sync of '%s' failed: %s", path, strerror(e));
	}
out:
	free(buf);
	if (fd >= 0) {
		close(fd);
	}
	r2 = spm_lv_deactivate(spm, domain, volume, r < 0 ? NULL : err);
	return r < 0 ? r : r2;
}

/* Marks volume REMOVING, then removes the LV. Expects the locks held. */
static int volume_remove(struct spm *spm, const char *domain, const struct spm_volume *v,
			 bool post_zero, struct pk_error *err)
{
	struct pk_volume_meta next = v->meta;
	int r;

	if (v->meta.legality != PK_VOLUME_REMOVING) {
		next.legality = PK_VOLUME_REMOVING;
		r = volume_write_meta(spm, domain, v, &next, err);
		if (r < 0) {
			return r;
		}
	}
	pk_fault_point("delete_volume:marked");
	if (post_zero) {
		r = zero_lv(spm, domain, v->id, v->lv_size, err);
		if (r < 0) {
			return r;
		}
	}
	r = spm_role_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
	r = pk_lvm_lv_remove(spm->lvm, domain, v->id, err);
	if (r < 0) {
		spm_volume_cache_invalidate(spm);
		return r;
	}
	cache_update(spm, domain, NULL, v->id, (int64_t)v->lv_size);
	pk_fault_point("delete_volume:removed");
	pk_log_info("volume deleted domain='%s' image='%s' volume='%s'", domain, v->meta.image,
		    v->id);
	return 0;
}

static int delete_check_in_use(const struct spm_volume_list *list, const struct spm_volume *v,
			       bool force, struct pk_error *err)
{
	for (size_t i = 0; i < list->n; i++) {
		if (!strcmp(list->v[i].meta.parent, v->id) &&
		    list->v[i].meta.legality != PK_VOLUME_REMOVING) {
			return pk_error_set(err, PK_E_IN_USE, EBUSY,
					    "volume '%s' is the parent of '%s'; merge or delete the "
					    "child first", v->id, list->v[i].id);
		}
	}
	if (v->nprepared && !force && v->meta.legality == PK_VOLUME_LEGAL &&
	    v->meta.role == PK_VOLUME_LEAF) {
		return pk_error_set(err, PK_E_IN_USE, EBUSY,
				    "volume '%s' is the leaf of an image prepared on host %d; tear "
				    "the image down there first (or pass force if that host is gone)",
				    v->id, v->prepared[0]);
	}
	return 0;
}

int spm_volume_delete(struct spm *spm, const char *domain, const char *image,
		      const char *volume, bool force, bool post_zero, struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	const struct spm_volume *v = NULL;
	struct spm_lockset set;
	int r;

	r = mutation_begin(spm, "delete_volume", domain, image, SPM_LOCK_EXCLUSIVE, volume, &set,
			   &list, NULL, err);
	if (r < 0) {
		return r;
	}
	if (r == 0) {
		r = volume_find_in_image(&list, domain, image, volume, &v, err);
	}
	if (r == 0) {
		r = delete_check_in_use(&list, v, force, err);
	}
	if (r == 0) {
		r = volume_remove(spm, domain, v, post_zero, err);
	}
	spm_volume_list_release(&list);
	spm_lockset_release(&set);
	return r;
}

/* ---- extend, info, update ---------------------------------------------------- */

int spm_volume_extend(struct spm *spm, const char *domain, const char *image,
		      const char *volume, uint64_t size, struct spm_volume *ret,
		      struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	const struct spm_volume *v = NULL;
	struct spm_lockset set;
	uint64_t want, vg_free = 0;
	int r;

	if (size == 0 || size % 512 != 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "new size %" PRIu64 " must be a positive multiple of 512 bytes", size);
	}
	r = mutation_begin(spm, "extend_volume", domain, image, SPM_LOCK_SHARED, volume, &set, &list,
			   &vg_free, err);
	if (r < 0) {
		return r;
	}
	r = volume_find_in_image(&list, domain, image, volume, &v, err);
	if (r == 0 && v->meta.legality == PK_VOLUME_REMOVING) {
		r = pk_error_set(err, PK_E_ILLEGAL, EINVAL, "volume '%s' is being removed", volume);
	}
	if (r < 0) {
		goto out;
	}
	want = round_up(size, list.extent_size);
	if (want > v->lv_size) {
		if (want - v->lv_size > vg_free) {
			r = pk_error_set(err, PK_E_NO_SPACE, ENOSPC,
					 "domain '%s' has %" PRIu64 " MiB free, extending volume '%s' "
					 "to %" PRIu64 " MiB needs %" PRIu64 " MiB more", domain,
					 vg_free / MIB, volume, want / MIB, (want - v->lv_size) / MIB);
		}
		if (r == 0) {
			r = spm_role_check(spm, domain, err);
		}
		if (r == 0) {
			r = pk_lvm_lv_extend(spm->lvm, domain, volume, want, err);
			if (r < 0) {
				spm_volume_cache_invalidate(spm);
			} else {
				struct spm_volume grown = *v;
				grown.lv_size = want;
				cache_update(spm, domain, &grown, NULL, -(int64_t)(want - v->lv_size));
			}
		}
		if (r == 0) {
			pk_log_info("volume extended domain='%s' volume='%s' from=%" PRIu64 " to=%" PRIu64,
				    domain, volume, v->lv_size, want);
		}
	}
	if (r == 0 && ret) {
		*ret = *v;
		if (want > ret->lv_size) {
			ret->lv_size = want;
		}
	}
out:
	spm_volume_list_release(&list);
	spm_lockset_release(&set);
	return r;
}

int spm_volume_info(struct spm *spm, const char *domain, const char *image,
		    const char *volume, struct spm_volume *ret, struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	const struct spm_volume *v = NULL;
	int r;

	r = pk_uuid_check_ids(domain, image, volume, err);
	if (r == 0) {
		r = spm_domain_check(spm, domain, err);
	}
	if (r == 0) {
		r = spm_volumes_load(spm, domain, &list, err);
	}
	if (r == 0) {
		r = volume_find_in_image(&list, domain, image, volume, &v, err);
	}
	if (r == 0) {
		*ret = *v;
	}
	spm_volume_list_release(&list);
	return r;
}

int spm_volume_update(struct spm *spm, const char *domain, const char *image,
		      const char *volume, const struct spm_volume_update *u,
		      struct spm_volume *ret, struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	const struct spm_volume *v = NULL;
	struct pk_volume_meta next;
	struct spm_lockset set;
	int r;

	if (u->set_parent && u->parent && *u->parent) {
		r = pk_uuid_check("parent_id", u->parent, err);
		if (r < 0) {
			return r;
		}
	}
	if (u->legality == PK_VOLUME_REMOVING) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "legality REMOVING is set by DeleteVolume only");
	}
	if (!u->set_parent && !u->role && !u->legality) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "nothing to update: give a parent, a role or a legality");
	}
	r = mutation_begin(spm, "update_volume_meta", domain, image, SPM_LOCK_EXCLUSIVE, NULL, &set,
			   &list, NULL, err);
	if (r < 0) {
		return r;
	}
	if (r == 0) {
		r = volume_find_in_image(&list, domain, image, volume, &v, err);
	}
	if (r < 0) {
		goto out;
	}
	if (u->expected_generation && v->meta.generation != u->expected_generation) {
		r = pk_error_set(err, PK_E_CONFLICT, EAGAIN,
				 "volume '%s' is at generation %" PRIu64 ", not %" PRIu64
				 "; someone changed it: read it again", volume, v->meta.generation,
				 u->expected_generation);
		goto out;
	}
	if (v->meta.legality == PK_VOLUME_REMOVING) {
		r = pk_error_set(err, PK_E_ILLEGAL, EINVAL, "volume '%s' is being removed", volume);
		goto out;
	}
	next = v->meta;
	if (u->set_parent) {
		const char *p = u->parent && *u->parent ? u->parent : PK_META_NO_PARENT;
		if (strcmp(p, PK_META_NO_PARENT) != 0) {
			const struct spm_volume *pv = NULL;
			if (!strcmp(p, volume)) {
				r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						 "volume '%s' cannot be its own parent", volume);
				goto out;
			}
			r = volume_find_in_image(&list, domain, image, p, &pv, err);
			if (r < 0) {
				pk_error_prefix(err, "new parent");
				goto out;
			}
		}
		snprintf(next.parent, sizeof(next.parent), "%s", p);
	}
	if (u->role) {
		next.role = u->role;
	}
	if (u->legality) {
		next.legality = u->legality;
	}
	r = pk_meta_volume_check(volume, &next, err);
	if (r == 0) {
		r = volume_write_meta(spm, domain, v, &next, err);
	}
	if (r == 0) {
		pk_log_info("volume metadata updated domain='%s' volume='%s' parent='%s' role=%s "
			    "legality=%s generation=%" PRIu64, domain, volume, next.parent,
			    pk_volume_role_name(next.role), pk_volume_legality_name(next.legality),
			    v->meta.generation + 1);
		if (ret) {
			*ret = *v;
			ret->meta = next;
			ret->meta.generation = v->meta.generation + 1;
		}
	}
out:
	spm_volume_list_release(&list);
	spm_lockset_release(&set);
	return r;
}

/* ---- images ------------------------------------------------------------------ */

void spm_chain_release(struct spm_chain *c)
{
	free(c->chain);
	free(c->orphans);
	memset(c, 0, sizeof(*c));
}

/* The chain of an image by the common rule (common/volchain.h); the rest are orphans. */
static int chain_build(const struct spm_volume_list *list, const char *domain, const char *image,
		       struct spm_chain *ret, struct pk_error *err)
{
	struct pk_volchain_item *items = pk_xcalloc(list->n + 1, sizeof(*items));
	size_t *idx = pk_xcalloc(list->n + 1, sizeof(*idx));
	bool *used = pk_xcalloc(list->n + 1, sizeof(*used));
	struct spm_chain c = { 0 };
	size_t len = 0;
	int r;

	for (size_t i = 0; i < list->n; i++) {
		items[i].id = list->v[i].id;
		items[i].meta = &list->v[i].meta;
	}
	r = pk_volchain_build(items, list->n, domain, image, NULL, idx, &len, err);
	if (r == 0) {
		c.chain = pk_xcalloc(len + 1, sizeof(*c.chain));
		c.orphans = pk_xcalloc(list->n + 1, sizeof(*c.orphans));
		for (size_t k = 0; k < len; k++) {
			c.chain[c.n++] = list->v[idx[k]];
			used[idx[k]] = true;
		}
		for (size_t i = 0; i < list->n; i++) {
			if (!used[i] && !strcmp(list->v[i].meta.image, image)) {
				c.orphans[c.norphans++] = list->v[i];
			}
		}
		*ret = c;
	}
	free(items);
	free(idx);
	free(used);
	return r;
}

int spm_image_chain(struct spm *spm, const char *domain, const char *image,
		    struct spm_chain *ret, struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	int r;

	r = pk_uuid_check_ids(domain, image, NULL, err);
	if (r == 0) {
		r = spm_domain_check(spm, domain, err);
	}
	if (r == 0) {
		r = spm_volumes_load(spm, domain, &list, err);
	}
	if (r == 0) {
		r = chain_build(&list, domain, image, ret, err);
	}
	spm_volume_list_release(&list);
	return r;
}

int spm_image_delete(struct spm *spm, const char *domain, const char *image, bool force,
		     struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	struct spm_lockset set;
	size_t members = 0;
	int r;

	r = mutation_begin(spm, "delete_image", domain, image, SPM_LOCK_EXCLUSIVE, NULL, &set, &list,
			   NULL, err);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < list.n; i++) {
		const struct spm_volume *v = &list.v[i];
		if (strcmp(v->meta.image, image) != 0) {
			continue;
		}
		members++;
		if (v->nprepared && !force) {
			r = pk_error_set(err, PK_E_IN_USE, EBUSY,
					 "image '%s' is prepared on host %d (volume '%s'); tear it "
					 "down there first (or pass force if that host is gone)",
					 image, v->prepared[0], v->id);
			goto out;
		}
	}
	if (members == 0) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "image '%s' has no volumes in domain '%s'",
				 image, domain);
		goto out;
	}
	/* Mark every volume first, so a crash leaves the whole image to roll forward. */
	for (size_t i = 0; i < list.n && r == 0; i++) {
		struct spm_volume *v = &list.v[i];
		struct pk_volume_meta next = v->meta;
		if (strcmp(v->meta.image, image) || v->meta.legality == PK_VOLUME_REMOVING) {
			continue;
		}
		next.legality = PK_VOLUME_REMOVING;
		r = volume_write_meta(spm, domain, v, &next, err);
		if (r == 0) {
			v->meta.legality = PK_VOLUME_REMOVING;
			v->meta.generation++;
		}
	}
	for (size_t i = 0; i < list.n && r == 0; i++) {
		if (!strcmp(list.v[i].meta.image, image)) {
			r = volume_remove(spm, domain, &list.v[i], false, err);
		}
	}
out:
	spm_volume_list_release(&list);
	spm_lockset_release(&set);
	return r;
}

int spm_image_prepared(struct spm *spm, const char *domain, const char *image,
		       const char *volume, int32_t host_id, bool prepared, struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	struct spm_lockset set;
	char tag[32];
	const char *tagv[2] = { tag, NULL };
	int r;

	if (host_id < 1 || host_id > 2000) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "host_id %d is not in 1..2000", host_id);
	}
	if (volume && *volume) {
		r = pk_uuid_check("volume_id", volume, err);
		if (r < 0) {
			return r;
		}
	}
	snprintf(tag, sizeof(tag), PREP_TAG_PREFIX "%d", host_id);
	r = mutation_begin(spm, "image_prepared", domain, image, SPM_LOCK_EXCLUSIVE, NULL, &set,
			   &list, NULL, err);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; r == 0 && i < list.n; i++) {
		const struct spm_volume *v = &list.v[i];
		bool has = false;
		if (strcmp(v->meta.image, image) || (volume && *volume && strcmp(v->id, volume))) {
			continue;
		}
		for (size_t k = 0; k < v->nprepared; k++) {
			has |= v->prepared[k] == host_id;
		}
		if (has == prepared) {
			continue;
		}
		r = spm_role_check(spm, domain, err);
		if (r == 0) {
			r = pk_lvm_lv_tags_change(spm->lvm, domain, v->id, prepared ? tagv : NULL,
						  prepared ? NULL : tagv, err);
			if (r < 0) {
				spm_volume_cache_invalidate(spm);
			} else {
				struct spm_volume changed = *v;
				changed.nprepared = 0;
				for (size_t k = 0; k < v->nprepared; k++) {
					if (v->prepared[k] != host_id) {
						changed.prepared[changed.nprepared++] = v->prepared[k];
					}
				}
				if (prepared && changed.nprepared < SPM_VOLUME_MAX_HOSTS) {
					changed.prepared[changed.nprepared++] = host_id;
				}
				cache_update(spm, domain, &changed, NULL, 0);
			}
		}
	}
	spm_volume_list_release(&list);
	spm_lockset_release(&set);
	return r;
}

int spm_volumes_recover(struct spm *spm, const char *domain, struct spm_recovery *ret,
			struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	struct spm_recovery rec = { 0 };
	int r;

	r = spm_volumes_load(spm, domain, &list, err);
	for (size_t i = 0; r == 0 && i < list.n; i++) {
		const struct spm_volume *v = &list.v[i];
		struct spm_lockset set;
		bool unfinished = v->meta.legality == PK_VOLUME_ILLEGAL && v->meta.generation == 0;

		if (v->meta.legality != PK_VOLUME_REMOVING && !unfinished) {
			continue;
		}
		r = lock_image(spm, &set, "recovery", domain, v->meta.image, SPM_LOCK_EXCLUSIVE, v->id,
			       err);
		if (r < 0) {
			break;
		}
		r = volume_remove(spm, domain, v, false, err);
		spm_lockset_release(&set);
		if (r == 0) {
			if (unfinished) {
				rec.rolled_back++;
				pk_log_info("recovery: removed unfinished volume domain='%s' volume='%s'",
					    domain, v->id);
			} else {
				rec.removed++;
				pk_log_info("recovery: completed removal domain='%s' volume='%s'",
					    domain, v->id);
			}
		}
	}
	spm_volume_list_release(&list);
	if (r == 0 && ret) {
		*ret = rec;
	}
	return r;
}
