/*
 * The in-process SPM of the tests: the contract is tests/lib/spm_fixture.h.
 */
#include "tests/lib/spm_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/arena.h"
#include "common/lvm.h"
#include "common/rpc.h"
#include "common/volchain.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "proto/codec.h"
#include "tests/fakes/fake_virt.h"
#include "tests/lib/rpc_fixture.h"

struct spm_fixture_server {
	struct rpc_fixture *srv;
	struct pk_dispatcher d;
	struct pk_daemon_info info;
	pthread_mutex_t lock; /* one request at a time: read-modify-write of tags */
	/* Volumes the host reported prepared (ImagePrepared), under lock. */
	char prepared[64][PK_UUID_BUFLEN];
	size_t nprepared;
};

int spm_fixture_meta(struct fx *fx, const char *id, struct pk_volume_meta *m, uint64_t *lv_size,
		     struct pk_error *err)
{
	struct pk_lvm_lv_list lvs = { 0 };
	int r = pk_lvm_lv_report(fx->hsm.lvm, fx->domain, id, &lvs, err);

	if (r == 0) {
		r = pk_meta_volume_decode(id, lvs.lvs[0].tags, m, err);
		if (lv_size) {
			*lv_size = lvs.lvs[0].size;
		}
	}
	pk_lvm_lv_list_release(&lvs);
	return r;
}

/* ---- every volume of the domain ---------------------------------------------------------- */

struct vols {
	struct pk_lvm_lv_list lvs;
	struct pk_volume_meta *meta; /* per LV; meta[i].image[0] == '\0': not a volume */
};

static int vols_load(struct spm_fixture *spm, const char *domain, struct vols *v,
		     struct pk_error *err)
{
	int r = pk_lvm_lv_report(spm->fx->hsm.lvm, domain, NULL, &v->lvs, err);

	if (r < 0) {
		return r;
	}
	v->meta = pk_xcalloc(v->lvs.count + 1, sizeof(*v->meta));
	for (size_t i = 0; i < v->lvs.count; i++) {
		if (pk_meta_lv_is_volume(v->lvs.lvs[i].name) &&
		    pk_meta_volume_decode(v->lvs.lvs[i].name, v->lvs.lvs[i].tags, &v->meta[i],
					  NULL) < 0) {
			memset(&v->meta[i], 0, sizeof(v->meta[i]));
		}
	}
	return 0;
}

static void vols_release(struct vols *v)
{
	pk_lvm_lv_list_release(&v->lvs);
	free(v->meta);
}

static Pk__VolumeInfo *volume_wire(struct pk_arena *a, const char *domain, const char *id,
				   const struct pk_volume_meta *m, uint64_t lv_size)
{
	Pk__VolumeInfo *w = pk_arena_new(a, Pk__VolumeInfo);

	pk__volume_info__init(w);
	w->domain_id = pk_arena_strdup(a, domain);
	w->image_id = pk_arena_strdup(a, m->image);
	w->volume_id = pk_arena_strdup(a, id);
	w->parent_id = pk_arena_strdup(a, strcmp(m->parent, PK_META_NO_PARENT) ? m->parent : "");
	w->format = (Pk__VolumeFormat)m->format;
	w->role = (Pk__VolumeRole)m->role;
	w->legality = (Pk__Legality)m->legality;
	w->capacity = m->capacity;
	w->lv_size = lv_size;
	w->generation = m->generation;
	w->description = pk_arena_strdup(a, m->description);
	return w;
}

/* ---- verbs --------------------------------------------------------------------------------- */

/* One volume's change (the single form's fields, or one of changes). */
static int update_one(struct spm_fixture *spm, const char *domain, const char *volume,
		      bool set_parent, const char *parent, Pk__VolumeRole role,
		      Pk__Legality legality, struct pk_error *err)
{
	struct pk_lvm_lv_list lvs = { 0 };
	struct pk_volume_meta m;
	struct pk_meta_tags add, del;
	int r;

	r = pk_lvm_lv_report(spm->fx->hsm.lvm, domain, volume, &lvs, err);
	if (r == 0) {
		r = pk_meta_volume_decode(volume, lvs.lvs[0].tags, &m, err);
	}
	if (r == 0) {
		if (set_parent) {
			snprintf(m.parent, sizeof(m.parent), "%s", *parent ? parent : PK_META_NO_PARENT);
		}
		if (role) {
			m.role = role == PK__VOLUME_ROLE__ROLE_LEAF ? PK_VOLUME_LEAF : PK_VOLUME_INTERNAL;
		}
		if (legality) {
			m.legality = (enum pk_volume_legality)legality;
		}
		r = pk_meta_volume_diff(volume, lvs.lvs[0].tags, &m, &add, &del, NULL, err);
	}
	if (r == 0) {
		r = pk_lvm_lv_tags_change(spm->fx->hsm.lvm, domain, volume, pk_meta_tags_strv(&add),
					  pk_meta_tags_strv(&del), err);
	}
	pk_lvm_lv_list_release(&lvs);
	return r;
}

/* The single form, or every change of changes in order (one request: one step for readers). */
static int update_volume_meta(struct spm_fixture *spm, const Pk__Request *req,
			      Pk__Response *resp, struct pk_arena *a, struct pk_error *err)
{
	const Pk__UpdateVolumeMetaRequest *u = req->update_volume_meta;
	Pk__UpdateVolumeMetaResponse *w = pk_arena_new(a, Pk__UpdateVolumeMetaResponse);
	int r = 0;

	atomic_fetch_add(&spm->updates, 1);
	if (atomic_load(&spm->fail_updates) > 0) {
		atomic_fetch_sub(&spm->fail_updates, 1);
		return pk_error_set(err, PK_E_UNAVAILABLE, ENOTCONN, "fake SPM: unavailable");
	}
	pk__update_volume_meta_response__init(w);
	if (!u->n_changes) {
		r = update_one(spm, u->domain_id, u->volume_id, u->set_parent, u->parent_id, u->role,
			       u->legality, err);
	}
	for (size_t i = 0; i < u->n_changes && r == 0; i++) {
		const Pk__VolumeMetaChange *c = u->changes[i];
		r = update_one(spm, u->domain_id, c->volume_id, c->set_parent, c->parent_id, c->role,
			       c->legality, err);
	}
	if (r == 0) {
		resp->update_volume_meta = w;
	}
	return r;
}

static int extend_volume(struct spm_fixture *spm, const Pk__Request *req, Pk__Response *resp,
			 struct pk_arena *a, struct pk_error *err)
{
	const Pk__ExtendVolumeRequest *e = req->extend_volume;
	Pk__ExtendVolumeResponse *w = pk_arena_new(a, Pk__ExtendVolumeResponse);
	int r;

	atomic_fetch_add(&spm->extends, 1);
	if (atomic_load(&spm->fail_extends) > 0) {
		atomic_fetch_sub(&spm->fail_extends, 1);
		return pk_error_set(err, PK_E_NOT_SPM, EPERM, "fake SPM: this host is not the SPM");
	}
	pk__extend_volume_response__init(w);
	r = pk_lvm_lv_extend(spm->fx->hsm.lvm, e->domain_id, e->volume_id, e->new_size, err);
	if (r == 0) {
		resp->extend_volume = w;
	}
	return r;
}

/* Under srv->lock. */
static bool is_prepared(const struct spm_fixture_server *srv, const char *volume)
{
	for (size_t i = 0; i < srv->nprepared; i++) {
		if (!strcmp(srv->prepared[i], volume)) {
			return true;
		}
	}
	return false;
}

static int image_prepared(struct spm_fixture *spm, const Pk__Request *req, Pk__Response *resp,
			  struct pk_arena *a, struct pk_error *err)
{
	const Pk__ImagePreparedRequest *p = req->image_prepared;
	Pk__ImagePreparedResponse *w = pk_arena_new(a, Pk__ImagePreparedResponse);
	struct spm_fixture_server *srv = spm->srv;
	const char *vol = p->volume_id && *p->volume_id ? p->volume_id : NULL;

	atomic_fetch_add(&spm->prepared, 1);
	if (atomic_load(&spm->fail_prepared) > 0) {
		atomic_fetch_sub(&spm->fail_prepared, 1);
		return pk_error_set(err, PK_E_UNAVAILABLE, ENOTCONN, "fake SPM: no SPM (injected)");
	}
	/* The fixture serves one image per test: NULL clears every volume. */
	if (p->prepared && vol && !is_prepared(srv, vol) && srv->nprepared < 64) {
		snprintf(srv->prepared[srv->nprepared++], PK_UUID_BUFLEN, "%s", vol);
	} else if (!p->prepared) {
		size_t k = 0;
		for (size_t i = 0; i < srv->nprepared; i++) {
			if (vol && strcmp(srv->prepared[i], vol) != 0) {
				memmove(srv->prepared[k++], srv->prepared[i], PK_UUID_BUFLEN);
			}
		}
		srv->nprepared = k;
	}
	pk__image_prepared_response__init(w);
	resp->image_prepared = w;
	return 0;
}

static int image_chain(struct spm_fixture *spm, const Pk__Request *req, Pk__Response *resp,
		       struct pk_arena *a, struct pk_error *err)
{
	const Pk__ImageChainRequest *c = req->image_chain;
	Pk__ImageChainResponse *w = pk_arena_new(a, Pk__ImageChainResponse);
	struct vols v = { 0 };
	struct pk_volchain_item *items = NULL;
	size_t *idx = NULL, *map = NULL, n = 0, len = 0;
	bool *used = NULL;
	int r;

	atomic_fetch_add(&spm->chains, 1);
	pk__image_chain_response__init(w);
	r = vols_load(spm, c->domain_id, &v, err);
	if (r < 0) {
		return r;
	}
	items = pk_xcalloc(v.lvs.count + 1, sizeof(*items));
	map = pk_xcalloc(v.lvs.count + 1, sizeof(*map));
	idx = pk_xcalloc(v.lvs.count + 1, sizeof(*idx));
	used = pk_xcalloc(v.lvs.count + 1, sizeof(*used));
	for (size_t i = 0; i < v.lvs.count; i++) {
		if (v.meta[i].image[0]) {
			items[n].id = v.lvs.lvs[i].name;
			items[n].meta = &v.meta[i];
			map[n++] = i;
		}
	}
	r = pk_volchain_build(items, n, c->domain_id, c->image_id, NULL, idx, &len, err);
	if (r == 0) {
		w->volumes = pk_arena_array(a, Pk__VolumeInfo *, len + 1);
		w->orphans = pk_arena_array(a, Pk__VolumeInfo *, n + 1);
		for (size_t k = 0; k < len; k++) {
			size_t i = map[idx[k]];
			used[idx[k]] = true;
			w->volumes[w->n_volumes++] = volume_wire(a, c->domain_id, v.lvs.lvs[i].name,
								 &v.meta[i], v.lvs.lvs[i].size);
		}
		for (size_t k = 0; k < n; k++) {
			size_t i = map[k];
			if (!used[k] && !strcmp(v.meta[i].image, c->image_id)) {
				w->orphans[w->n_orphans++] = volume_wire(
					a, c->domain_id, v.lvs.lvs[i].name, &v.meta[i],
					v.lvs.lvs[i].size);
			}
		}
		resp->image_chain = w;
	}
	free(items);
	free(map);
	free(idx);
	free(used);
	vols_release(&v);
	return r;
}

static int create_volume(struct spm_fixture *spm, const Pk__Request *req, Pk__Response *resp,
			 struct pk_arena *a, struct pk_error *err)
{
	const Pk__CreateVolumeRequest *c = req->create_volume;
	Pk__CreateVolumeResponse *w = pk_arena_new(a, Pk__CreateVolumeResponse);
	struct fx *fx = spm->fx;
	struct pk_volume_meta parent = { 0 }, m = { 0 };
	struct pk_meta_tags tags;
	char path[512], link[512], plink[512];
	uint64_t lv_size = 0;
	int fd, r;

	atomic_fetch_add(&spm->creates, 1);
	pk__create_volume_response__init(w);
	if (!*c->parent_id || !*c->volume_id) {
		return pk_error_set(err, PK_E_UNSUPPORTED, ENOTSUP,
				    "fake SPM: only COW children with their id given");
	}
	r = spm_fixture_meta(fx, c->parent_id, &parent, &lv_size, err);
	if (r < 0) {
		return r;
	}
	snprintf(m.image, sizeof(m.image), "%s", c->image_id);
	snprintf(m.parent, sizeof(m.parent), "%s", c->parent_id);
	snprintf(m.description, sizeof(m.description), "%s", c->description);
	m.format = PK_VOLUME_COW;
	m.role = PK_VOLUME_LEAF;
	m.legality = PK_VOLUME_LEGAL;
	m.capacity = c->capacity ? c->capacity : parent.capacity;
	m.generation = 1;
	r = pk_meta_volume_encode(&m, &tags, err);
	if (r == 0) {
		r = pk_lvm_lv_create(fx->hsm.lvm, c->domain_id, c->volume_id, lv_size,
				     pk_meta_tags_strv(&tags), err);
	}
	if (r == 0) {
		r = hsm_image_link_path(&fx->hsm, c->domain_id, c->image_id, c->volume_id, link,
					sizeof(link), err);
	}
	if (r == 0) {
		r = hsm_image_link_path(&fx->hsm, c->domain_id, c->image_id, c->parent_id, plink,
					sizeof(plink), err);
	}
	if (r < 0) {
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", fx->lvmap, c->domain_id, c->volume_id);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		return pk_error_set(err, PK_E_IO, errno, "fake SPM: %s: %s", path, strerror(errno));
	}
	close(fd);
	fake_virt_image_add(link, plink, HSM_DISK_FORMAT_QCOW2);
	w->volume = volume_wire(a, c->domain_id, c->volume_id, &m, lv_size);
	resp->create_volume = w;
	return 0;
}

static int delete_volume(struct spm_fixture *spm, const Pk__Request *req, Pk__Response *resp,
			 struct pk_arena *a, struct pk_error *err)
{
	const Pk__DeleteVolumeRequest *d = req->delete_volume;
	Pk__DeleteVolumeResponse *w = pk_arena_new(a, Pk__DeleteVolumeResponse);
	struct vols v = { 0 };
	bool found = false;
	int r;

	atomic_fetch_add(&spm->deletes, 1);
	pk__delete_volume_response__init(w);
	r = vols_load(spm, d->domain_id, &v, err);
	for (size_t i = 0; r == 0 && i < v.lvs.count; i++) {
		if (!strcmp(v.lvs.lvs[i].name, d->volume_id) && v.meta[i].image[0] &&
		    !strcmp(v.meta[i].image, d->image_id)) {
			found = true;
		}
		if (!strcmp(v.meta[i].parent, d->volume_id) &&
		    v.meta[i].legality != PK_VOLUME_REMOVING) {
			r = pk_error_set(err, PK_E_IN_USE, EBUSY,
					 "volume '%s' is the parent of '%s'; merge or delete the "
					 "child first", d->volume_id, v.lvs.lvs[i].name);
		}
	}
	if (r == 0 && !found) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "fake SPM: no volume '%s' in image '%s'",
				 d->volume_id, d->image_id);
	}
	for (size_t i = 0; r == 0 && !d->force && i < v.lvs.count; i++) {
		if (strcmp(v.lvs.lvs[i].name, d->volume_id) != 0) {
			continue;
		}
		if (is_prepared(spm->srv, d->volume_id)) {
			r = pk_error_set(err, PK_E_IN_USE, EBUSY, "fake SPM: volume '%s' is prepared",
					 d->volume_id);
		} else if (v.meta[i].role == PK_VOLUME_LEAF) {
			r = pk_error_set(err, PK_E_IN_USE, EBUSY, "fake SPM: volume '%s' is a leaf",
					 d->volume_id);
		}
	}
	if (r == 0) {
		r = pk_lvm_lv_remove(spm->fx->hsm.lvm, d->domain_id, d->volume_id, err);
	}
	vols_release(&v);
	if (r == 0) {
		resp->delete_volume = w;
	}
	return r;
}

/* Every verb, one at a time. */
static int serve(void *ctx, const Pk__Request *req, Pk__Response *resp, struct pk_arena *a,
		 struct pk_error *err)
{
	struct spm_fixture *spm = ctx;
	int r;

	pthread_mutex_lock(&spm->srv->lock);
	switch (req->call_case) {
	case PK__REQUEST__CALL_UPDATE_VOLUME_META:
		r = update_volume_meta(spm, req, resp, a, err);
		break;
	case PK__REQUEST__CALL_EXTEND_VOLUME:
		r = extend_volume(spm, req, resp, a, err);
		break;
	case PK__REQUEST__CALL_IMAGE_PREPARED:
		r = image_prepared(spm, req, resp, a, err);
		break;
	case PK__REQUEST__CALL_IMAGE_CHAIN:
		r = image_chain(spm, req, resp, a, err);
		break;
	case PK__REQUEST__CALL_CREATE_VOLUME:
		r = create_volume(spm, req, resp, a, err);
		break;
	case PK__REQUEST__CALL_DELETE_VOLUME:
		r = delete_volume(spm, req, resp, a, err);
		break;
	default:
		r = pk_error_set(err, PK_E_UNSUPPORTED, ENOTSUP, "fake SPM: verb %d",
				 (int)req->call_case);
		break;
	}
	pthread_mutex_unlock(&spm->srv->lock);
	return r;
}

static const struct pk_verb spm_fixture_verbs[] = {
	{ PK__REQUEST__CALL_UPDATE_VOLUME_META, PK_ROLES_ALL, serve, NULL },
	{ PK__REQUEST__CALL_EXTEND_VOLUME, PK_ROLES_ALL, serve, NULL },
	{ PK__REQUEST__CALL_IMAGE_PREPARED, PK_ROLES_ALL, serve, NULL },
	{ PK__REQUEST__CALL_IMAGE_CHAIN, PK_ROLES_ALL, serve, NULL },
	{ PK__REQUEST__CALL_CREATE_VOLUME, PK_ROLES_ALL, serve, NULL },
	{ PK__REQUEST__CALL_DELETE_VOLUME, PK_ROLES_ALL, serve, NULL },
};

void spm_fixture_start(struct fx *fx, struct spm_fixture **ret)
{
	struct spm_fixture *spm = pk_xcalloc(1, sizeof(*spm));
	struct spm_fixture_server *s = pk_xcalloc(1, sizeof(*s));

	spm->fx = fx;
	spm->srv = s;
	pthread_mutex_init(&s->lock, NULL);
	snprintf(spm->url, sizeof(spm->url), "ipc://%s/spm.sock", fx->tmp);
	s->info.role = "spm";
	s->d.verbs = spm_fixture_verbs;
	s->d.nverbs = sizeof(spm_fixture_verbs) / sizeof(spm_fixture_verbs[0]);
	s->d.ctx = spm;
	s->d.max_msg = PK_MAX_MESSAGE_DEFAULT;
	s->d.info = &s->info;
	s->srv = rpc_fixture_start(spm->url, &s->d);
	*ret = spm;
}

void spm_fixture_stop(struct spm_fixture *spm)
{
	if (!spm) {
		return;
	}
	rpc_fixture_stop(spm->srv->srv);
	pthread_mutex_destroy(&spm->srv->lock);
	free(spm->srv);
	free(spm);
}
