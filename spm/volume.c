#include "spm/volume.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/locks.h"
#include "common/log.h"
#include "common/lvm.h"
#include "common/volchain.h"
#include "common/xalloc.h"
#include "spm/volume_internal.h"

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
 * and never used by an spmd that is not the SPM. It carries the role
 * generation (struct spm) of the read that filled it: a load that raced
 * with a loss and a regain of the lease fills it under the old generation,
 * so it is never used, nor are changes applied to it.
 */
struct spm_volume_cache {
	pthread_mutex_t lock;
	bool valid;
	uint64_t gen; /* role generation of the read that filled it */
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
	hit = c->valid && c->gen == spm_role_gen(spm) && !strcmp(c->domain, domain);
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
		      uint64_t vg_free, uint64_t gen)
{
	struct spm_volume_cache *c = spm->cache;

	pthread_mutex_lock(&c->lock);
	c->gen = gen;
	spm_volume_list_release(&c->list);
	list_copy(&c->list, list);
	c->cap = list->n + 1;
	c->vg_free = vg_free;
	snprintf(c->domain, sizeof(c->domain), "%s", domain);
	c->valid = true;
	pthread_mutex_unlock(&c->lock);
}

void spm_volume_cache_update(struct spm *spm, const char *domain, const struct spm_volume *v,
			     const char *removed_id, int64_t free_delta)
{
	struct spm_volume_cache *c = spm->cache;

	pthread_mutex_lock(&c->lock);
	if (c->valid && c->gen == spm_role_gen(spm) && !strcmp(c->domain, domain)) {
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
			c->list.v = pk_xgrow(c->list.v, &c->cap, c->list.n + 1, sizeof(*c->list.v));
			c->list.v[c->list.n++] = *v;
		}
		c->vg_free = (uint64_t)((int64_t)c->vg_free + free_delta);
	}
	pthread_mutex_unlock(&c->lock);
}

static int volumes_load_fresh(struct spm *spm, const char *domain, struct spm_volume_list *ret,
			      struct pk_error *err);

int spm_volumes_for_mutation(struct spm *spm, const char *domain, struct spm_volume_list *ret,
			     uint64_t *ret_free, struct pk_error *err)
{
	struct pk_lvm_vg vg = { 0 };
	uint64_t gen;
	int r;

	if (cache_get(spm, domain, ret, ret_free)) {
		return 0;
	}
	/* The generation before the read: a role change during it voids what it reads. */
	gen = spm_role_gen(spm);
	r = volumes_load_fresh(spm, domain, ret, err);
	if (r == 0) {
		r = pk_lvm_vg_report(spm->lvm, domain, &vg, err);
		if (r == 0) {
			cache_put(spm, domain, ret, vg.free, gen);
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

int spm_volume_read(struct spm *spm, const char *domain, const char *id, struct spm_volume *ret,
		    struct pk_error *err)
{
	struct pk_lvm_lv_list lvs = { 0 };
	int r;

	r = pk_lvm_lv_report(spm->lvm, domain, id, &lvs, err);
	if (r == 0 && lvs.count != 1) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "volume '%s' does not exist in domain '%s'",
				 id, domain);
	}
	if (r == 0) {
		memset(ret, 0, sizeof(*ret));
		r = pk_meta_volume_decode(lvs.lvs[0].name, lvs.lvs[0].tags, &ret->meta, err);
	}
	if (r == 0) {
		snprintf(ret->id, sizeof(ret->id), "%s", id);
		ret->lv_size = lvs.lvs[0].size;
		volume_read_prepared(ret, lvs.lvs[0].tags);
	}
	pk_lvm_lv_list_release(&lvs);
	return r;
}

int spm_volume_find_in_image(struct spm_volume_list *list, const char *domain, const char *image,
			     const char *volume, const struct spm_volume **ret,
			     struct pk_error *err)
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
		r = spm_volume_find_in_image(&list, domain, image, volume, &v, err);
	}
	if (r == 0) {
		*ret = *v;
	}
	spm_volume_list_release(&list);
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
	struct pk_lockset set;
	int r;

	r = pk_uuid_check_ids(domain, image, NULL, err);
	if (r == 0) {
		r = spm_domain_check(spm, domain, err);
	}
	if (r < 0) {
		return r;
	}
	/* Shared with other readers; waits for a mutation of the image to end. */
	pk_lockset_init(&set, spm->locks, "image_chain");
	pk_lockset_add(&set, SPM_LOCK_DOMAIN, domain, PK_LOCK_SHARED);
	pk_lockset_add(&set, SPM_LOCK_IMAGE, image, PK_LOCK_SHARED);
	r = pk_lockset_acquire(&set, spm->lock_timeout_ms, err);
	if (r == 0) {
		r = spm_volumes_load(spm, domain, &list, err);
	}
	if (r == 0) {
		r = chain_build(&list, domain, image, ret, err);
	}
	spm_volume_list_release(&list);
	pk_lockset_release(&set);
	return r;
}
