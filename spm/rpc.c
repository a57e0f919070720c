/*
 * spmd's RPC layer: decodes each call's protobuf arguments into plain C,
 * calls the SPM logic, encodes the result. Ping and GetCapabilities are
 * answered by the dispatcher.
 *
 * Mutating volume verbs run as tasks (spm_task_run, spm/tasks.h):
 * synchronously by default, on the SPM's task pool with `async`.
 */
#include "spm/rpc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "proto/codec.h"
#include "proto/wire.h"
#include "spm/domain.h"
#include "spm/spm.h"
#include "spm/tasks.h"
#include "spm/volume.h"

/* ---- translations ------------------------------------------------------------ */

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static Pk__VolumeInfo *volume_to_wire(struct pk_arena *a, const char *domain,
				      const struct spm_volume *v)
{
	return pk_wire_volume_info(a, domain, v->id, &v->meta, v->lv_size, NULL);
}

/* task_to_wire casts the state: a renumbering on either side must not build. */
PK_WIRE_SAME(SPM_TASK_RUNNING, PK__TASK_STATE__TASK_RUNNING);
PK_WIRE_SAME(SPM_TASK_DONE, PK__TASK_STATE__TASK_DONE);
PK_WIRE_SAME(SPM_TASK_FAILED, PK__TASK_STATE__TASK_FAILED);
PK_WIRE_SAME(SPM_TASK_ROLLED_BACK, PK__TASK_STATE__TASK_ROLLED_BACK);

static Pk__TaskInfo *task_to_wire(struct pk_arena *a, const struct spm_task_info *t)
{
	Pk__TaskInfo *w = pk_arena_new(a, Pk__TaskInfo);

	pk__task_info__init(w);
	w->task_id = pk_arena_strdup(a, t->id);
	w->verb = pk_arena_strdup(a, t->verb);
	w->state = (Pk__TaskState)t->state; /* same numbering */
	w->domain_id = pk_arena_strdup(a, t->domain_id);
	w->image_id = pk_arena_strdup(a, t->image_id);
	w->volume_id = pk_arena_strdup(a, t->volume_id);
	w->created_ms = t->created_ms;
	w->finished_ms = t->finished_ms;
	w->progress = t->progress;
	if (t->error.code != PK_OK || t->error.message[0]) {
		w->error = pk_arena_new(a, Pk__Error);
		pk__error__init(w->error);
		w->error->code = pk_codec_error_code(t->error.code);
		w->error->message = pk_arena_strdup(a, t->error.message);
	}
	return w;
}

static Pk__SpmStatusResponse *status_to_wire(struct pk_arena *a, const struct spm_role_status *s)
{
	Pk__SpmStatusResponse *w = pk_arena_new(a, Pk__SpmStatusResponse);

	pk__spm_status_response__init(w);
	w->domain_id = pk_arena_strdup(a, s->domain);
	w->host_id = s->host_id;
	w->spm_host_id = s->spm_host_id;
	w->lease_version = s->lease_version;
	w->recovery_pending = s->recovery_pending;
	switch (s->state) {
	case SPM_ROLE_HELD:
		w->state = PK__SPM_STATE__SPM_HELD;
		w->spm_host_id = s->host_id;
		break;
	case SPM_ROLE_CONTENDING:
		w->state = PK__SPM_STATE__SPM_CONTENDING;
		break;
	case SPM_ROLE_RECOVERING:
		w->state = PK__SPM_STATE__SPM_RECOVERING;
		w->spm_host_id = s->host_id;
		break;
	case SPM_ROLE_OTHER:
		w->state = PK__SPM_STATE__SPM_OTHER;
		break;
	default:
		w->state = PK__SPM_STATE__SPM_FREE;
	}
	return w;
}

static int format_from_wire(Pk__VolumeFormat f, enum pk_volume_format *ret, struct pk_error *err)
{
	switch (f) {
	case PK__VOLUME_FORMAT__FORMAT_RAW:
		*ret = PK_VOLUME_RAW;
		return 0;
	case PK__VOLUME_FORMAT__FORMAT_COW:
		*ret = PK_VOLUME_COW;
		return 0;
	default:
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "format is required: FORMAT_RAW or FORMAT_COW");
	}
}

/* Runs req as a task (spm/tasks.h) and answers its record. */
static int task_start(struct spm *spm, const struct spm_task_request *req, bool async,
		      struct spm_volume *vol, struct pk_arena *a, Pk__TaskInfo **ret_task,
		      struct pk_error *err)
{
	struct spm_task_info info;
	int r = spm_task_run(spm, req, async, vol, &info, err);

	if (r == 0) {
		*ret_task = task_to_wire(a, &info);
	}
	return r;
}

/* ---- verbs ------------------------------------------------------------------- */

static int verb_spm_start(void *ctx, const Pk__Request *req, Pk__Response *resp,
			  struct pk_arena *a, struct pk_error *err)
{
	struct spm_role_status st;
	int r = spm_role_start(ctx, str_or_empty(req->spm_start->domain_id), &st, err);

	if (r == 0) {
		resp->spm_start = status_to_wire(a, &st);
	}
	return r;
}

static int verb_spm_stop(void *ctx, const Pk__Request *req, Pk__Response *resp,
			 struct pk_arena *a, struct pk_error *err)
{
	struct spm_role_status st;
	int r = spm_role_stop(ctx, str_or_empty(req->spm_stop->domain_id), &st, err);

	if (r == 0) {
		resp->spm_stop = status_to_wire(a, &st);
	}
	return r;
}

static int verb_spm_status(void *ctx, const Pk__Request *req, Pk__Response *resp,
			   struct pk_arena *a, struct pk_error *err)
{
	struct spm_role_status st;
	int r = spm_role_status(ctx, str_or_empty(req->spm_status->domain_id), &st, err);

	if (r == 0) {
		resp->spm_status = status_to_wire(a, &st);
	}
	return r;
}

static Pk__DomainInfoResponse *domain_to_wire(struct pk_arena *a, const struct spm_domain_info *d)
{
	Pk__DomainInfoResponse *w = pk_arena_new(a, Pk__DomainInfoResponse);

	pk__domain_info_response__init(w);
	w->domain_id = pk_arena_strdup(a, d->domain);
	w->vg_name = pk_arena_strdup(a, d->vg);
	w->version = d->version;
	w->size = d->size;
	w->free = d->free;
	w->extent_size = d->extent_size;
	w->volume_count = d->volume_count;
	w->description = pk_arena_strdup(a, d->description);
	w->pvs = pk_arena_array(a, char *, d->npvs + 1);
	for (size_t i = 0; i < d->npvs; i++) {
		w->pvs[i] = pk_arena_strdup(a, d->pvs[i]);
	}
	w->n_pvs = d->npvs;
	return w;
}

static int verb_create_domain(void *ctx, const Pk__Request *req, Pk__Response *resp,
			      struct pk_arena *a, struct pk_error *err)
{
	const Pk__CreateDomainRequest *c = req->create_domain;
	struct spm_domain_info d;
	int r = pk_wire_count_check("pvs", c->n_pvs, SPM_DOMAIN_MAX_PVS, err);

	if (r == 0) {
		r = spm_domain_create(ctx, c->domain_id, (const char *const *)c->pvs, c->n_pvs,
				      c->description, &d, err);
	}

	if (r == 0) {
		resp->create_domain = domain_to_wire(a, &d);
	}
	return r;
}

static int verb_domain_info(void *ctx, const Pk__Request *req, Pk__Response *resp,
			    struct pk_arena *a, struct pk_error *err)
{
	struct spm_domain_info d;
	int r = spm_domain_info(ctx, str_or_empty(req->domain_info->domain_id), &d, err);

	if (r == 0) {
		resp->domain_info = domain_to_wire(a, &d);
	}
	return r;
}

static int verb_create_volume(void *ctx, const Pk__Request *req, Pk__Response *resp,
			      struct pk_arena *a, struct pk_error *err)
{
	const Pk__CreateVolumeRequest *c = req->create_volume;
	Pk__CreateVolumeResponse *w = pk_arena_new(a, Pk__CreateVolumeResponse);
	struct spm_task_request t = { .verb = SPM_TASK_CREATE_VOLUME };
	struct spm_volume vol;
	char generated[PK_UUID_BUFLEN];
	int r;

	pk__create_volume_response__init(w);
	t.domain = c->domain_id;
	t.image = c->image_id;
	t.volume = c->volume_id;
	if (!t.volume || !*t.volume) {
		/* Known before the task starts, so an async caller learns the id. */
		pk_uuid_generate(generated);
		t.volume = generated;
	}
	t.parent = c->parent_id;
	t.description = c->description;
	r = format_from_wire(c->format, &t.format, err);
	if (r < 0) {
		return r;
	}
	t.capacity = c->capacity;
	t.size = c->initial_size;
	memset(&vol, 0, sizeof(vol));
	r = task_start(ctx, &t, c->async, &vol, a, &w->task, err);
	if (r == 0) {
		if (!c->async) {
			w->volume = volume_to_wire(a, c->domain_id, &vol);
		}
		resp->create_volume = w;
	}
	return r;
}

static int verb_delete_volume(void *ctx, const Pk__Request *req, Pk__Response *resp,
			      struct pk_arena *a, struct pk_error *err)
{
	const Pk__DeleteVolumeRequest *d = req->delete_volume;
	Pk__DeleteVolumeResponse *w = pk_arena_new(a, Pk__DeleteVolumeResponse);
	struct spm_task_request t = {
		.verb = SPM_TASK_DELETE_VOLUME,
		.domain = d->domain_id,
		.image = d->image_id,
		.volume = d->volume_id,
		.force = d->force,
		.post_zero = d->post_zero,
		.request = d->request_id,
	};
	int r;

	pk__delete_volume_response__init(w);
	r = task_start(ctx, &t, d->async, NULL, a, &w->task, err);
	if (r == 0) {
		resp->delete_volume = w;
	}
	return r;
}

/* ExtendVolume and ReduceVolume: one task each, the same answer (task, volume). */
static int resize_task(void *ctx, enum spm_task_verb verb, const char *domain, const char *image,
		       const char *volume, uint64_t size, bool async, struct pk_arena *a,
		       Pk__TaskInfo **ret_task, Pk__VolumeInfo **ret_volume, struct pk_error *err)
{
	struct spm_task_request t = {
		.verb = verb,
		.domain = domain,
		.image = image,
		.volume = volume,
		.size = size,
	};
	struct spm_volume vol;
	int r = task_start(ctx, &t, async, &vol, a, ret_task, err);

	if (r == 0 && !async) {
		*ret_volume = volume_to_wire(a, domain, &vol);
	}
	return r;
}

static int verb_extend_volume(void *ctx, const Pk__Request *req, Pk__Response *resp,
			      struct pk_arena *a, struct pk_error *err)
{
	const Pk__ExtendVolumeRequest *e = req->extend_volume;
	Pk__ExtendVolumeResponse *w = pk_arena_new(a, Pk__ExtendVolumeResponse);
	int r;

	pk__extend_volume_response__init(w);
	r = resize_task(ctx, SPM_TASK_EXTEND_VOLUME, e->domain_id, e->image_id, e->volume_id,
			e->new_size, e->async, a, &w->task, &w->volume, err);
	if (r == 0) {
		resp->extend_volume = w;
	}
	return r;
}

static int verb_reduce_volume(void *ctx, const Pk__Request *req, Pk__Response *resp,
			      struct pk_arena *a, struct pk_error *err)
{
	const Pk__ReduceVolumeRequest *e = req->reduce_volume;
	Pk__ReduceVolumeResponse *w = pk_arena_new(a, Pk__ReduceVolumeResponse);
	int r;

	pk__reduce_volume_response__init(w);
	r = resize_task(ctx, SPM_TASK_REDUCE_VOLUME, e->domain_id, e->image_id, e->volume_id,
			e->new_size, e->async, a, &w->task, &w->volume, err);
	if (r == 0) {
		resp->reduce_volume = w;
	}
	return r;
}

static int verb_delete_image(void *ctx, const Pk__Request *req, Pk__Response *resp,
			     struct pk_arena *a, struct pk_error *err)
{
	const Pk__DeleteImageRequest *d = req->delete_image;
	Pk__DeleteImageResponse *w = pk_arena_new(a, Pk__DeleteImageResponse);
	struct spm_task_request t = {
		.verb = SPM_TASK_DELETE_IMAGE,
		.domain = d->domain_id,
		.image = d->image_id,
		.force = d->force,
	};
	int r;

	pk__delete_image_response__init(w);
	r = task_start(ctx, &t, d->async, NULL, a, &w->task, err);
	if (r == 0) {
		resp->delete_image = w;
	}
	return r;
}

static int verb_volume_info(void *ctx, const Pk__Request *req, Pk__Response *resp,
			    struct pk_arena *a, struct pk_error *err)
{
	const Pk__VolumeInfoRequest *v = req->volume_info;
	Pk__VolumeInfoResponse *w = pk_arena_new(a, Pk__VolumeInfoResponse);
	struct spm_volume vol;
	int r;

	pk__volume_info_response__init(w);
	r = spm_volume_info(ctx, str_or_empty(v->domain_id), str_or_empty(v->image_id),
			    str_or_empty(v->volume_id), &vol, err);
	if (r == 0) {
		w->volume = volume_to_wire(a, v->domain_id, &vol);
		resp->volume_info = w;
	}
	return r;
}

/* verb_update_volume_meta casts the legality (0 = unchanged on both sides). */
PK_WIRE_SAME(PK_VOLUME_LEGAL, PK__LEGALITY__LEGALITY_LEGAL);
PK_WIRE_SAME(PK_VOLUME_ILLEGAL, PK__LEGALITY__LEGALITY_ILLEGAL);
PK_WIRE_SAME(PK_VOLUME_REMOVING, PK__LEGALITY__LEGALITY_REMOVING);

static int change_from_wire(const Pk__VolumeMetaChange *c, struct spm_volume_change *ret,
			    struct pk_error *err)
{
	memset(ret, 0, sizeof(*ret));
	ret->volume = str_or_empty(c->volume_id);
	ret->u.set_parent = c->set_parent;
	ret->u.parent = str_or_empty(c->parent_id);
	if (c->role == PK__VOLUME_ROLE__ROLE_LEAF) {
		ret->u.role = PK_VOLUME_LEAF;
	} else if (c->role == PK__VOLUME_ROLE__ROLE_INTERNAL) {
		ret->u.role = PK_VOLUME_INTERNAL;
	} else if (c->role != PK__VOLUME_ROLE__ROLE_UNSPECIFIED) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "unknown role %d", c->role);
	}
	if ((int)c->legality < 0 || (int)c->legality > PK__LEGALITY__LEGALITY_REMOVING) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "unknown legality %d",
				    c->legality);
	}
	ret->u.legality = (enum pk_volume_legality)c->legality; /* same numbering, see above */
	ret->u.expected_generation = c->expected_generation;
	return 0;
}

/* The request id of the call, for every change of it. */
static void changes_request(struct spm_volume_change *changes, size_t n, const char *request)
{
	for (size_t i = 0; i < n; i++) {
		changes[i].u.request = request;
	}
}

/* UpdateVolumeMeta with changes: several volumes of the image in one step. */
static int update_volumes_meta(void *ctx, const Pk__UpdateVolumeMetaRequest *u,
			       Pk__UpdateVolumeMetaResponse *w, struct pk_arena *a,
			       struct pk_error *err)
{
	struct spm_volume_change *changes;
	struct spm_volume *vols;
	int r = 0;

	if ((u->volume_id && *u->volume_id) || u->set_parent || u->role || u->legality ||
	    u->expected_generation) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "give either volume_id and its change, or changes");
	}
	r = pk_wire_count_check("changes", u->n_changes, SPM_VOLUME_CHANGES_MAX, err);
	if (r < 0) {
		return r;
	}
	changes = pk_xcalloc(u->n_changes, sizeof(*changes));
	vols = pk_xcalloc(u->n_changes, sizeof(*vols));
	for (size_t i = 0; i < u->n_changes && r == 0; i++) {
		r = change_from_wire(u->changes[i], &changes[i], err);
	}
	changes_request(changes, u->n_changes, str_or_empty(u->request_id));
	if (r == 0) {
		r = spm_volumes_update(ctx, str_or_empty(u->domain_id), str_or_empty(u->image_id),
				       changes, u->n_changes, vols, err);
	}
	if (r == 0) {
		w->volumes = pk_arena_array(a, Pk__VolumeInfo *, u->n_changes + 1);
		for (size_t i = 0; i < u->n_changes; i++) {
			w->volumes[i] = volume_to_wire(a, u->domain_id, &vols[i]);
		}
		w->n_volumes = u->n_changes;
	}
	free(changes);
	free(vols);
	return r;
}

static int verb_update_volume_meta(void *ctx, const Pk__Request *req, Pk__Response *resp,
				   struct pk_arena *a, struct pk_error *err)
{
	const Pk__UpdateVolumeMetaRequest *u = req->update_volume_meta;
	Pk__UpdateVolumeMetaResponse *w = pk_arena_new(a, Pk__UpdateVolumeMetaResponse);
	struct spm_volume_update up = { 0 };
	struct spm_volume vol;
	int r;

	pk__update_volume_meta_response__init(w);
	if (u->n_changes) {
		r = update_volumes_meta(ctx, u, w, a, err);
		if (r == 0) {
			resp->update_volume_meta = w;
		}
		return r;
	}
	up.set_parent = u->set_parent;
	up.parent = str_or_empty(u->parent_id);
	if (u->role == PK__VOLUME_ROLE__ROLE_LEAF) {
		up.role = PK_VOLUME_LEAF;
	} else if (u->role == PK__VOLUME_ROLE__ROLE_INTERNAL) {
		up.role = PK_VOLUME_INTERNAL;
	} else if (u->role != PK__VOLUME_ROLE__ROLE_UNSPECIFIED) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "unknown role %d", u->role);
	}
	if ((int)u->legality < 0 || (int)u->legality > PK__LEGALITY__LEGALITY_REMOVING) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "unknown legality %d",
				    u->legality);
	}
	up.legality = (enum pk_volume_legality)u->legality;
	up.expected_generation = u->expected_generation;
	up.request = str_or_empty(u->request_id);
	r = spm_volume_update(ctx, str_or_empty(u->domain_id), str_or_empty(u->image_id),
			      str_or_empty(u->volume_id), &up, &vol, err);
	if (r == 0) {
		w->volume = volume_to_wire(a, u->domain_id, &vol);
		resp->update_volume_meta = w;
	}
	return r;
}

static int verb_image_chain(void *ctx, const Pk__Request *req, Pk__Response *resp,
			    struct pk_arena *a, struct pk_error *err)
{
	const Pk__ImageChainRequest *c = req->image_chain;
	Pk__ImageChainResponse *w = pk_arena_new(a, Pk__ImageChainResponse);
	struct spm_chain chain = { 0 };
	int r;

	pk__image_chain_response__init(w);
	r = spm_image_chain(ctx, str_or_empty(c->domain_id), str_or_empty(c->image_id), &chain, err);
	if (r < 0) {
		return r;
	}
	w->volumes = pk_arena_array(a, Pk__VolumeInfo *, chain.n + 1);
	for (size_t i = 0; i < chain.n; i++) {
		w->volumes[i] = volume_to_wire(a, c->domain_id, &chain.chain[i]);
	}
	w->n_volumes = chain.n;
	w->orphans = pk_arena_array(a, Pk__VolumeInfo *, chain.norphans + 1);
	for (size_t i = 0; i < chain.norphans; i++) {
		w->orphans[i] = volume_to_wire(a, c->domain_id, &chain.orphans[i]);
	}
	w->n_orphans = chain.norphans;
	spm_chain_release(&chain);
	resp->image_chain = w;
	return 0;
}

/*
 * A host records its own prepares only: its host id comes from its
 * certificate's mapping, never from the request. A request naming another
 * host is served under the certificate's id (not refused, so an hsmd with a
 * wrong host_id setting still keeps the SPM's view right) and logged.
 */
static int verb_image_prepared(void *ctx, const struct pk_caller *caller, const Pk__Request *req,
			       Pk__Response *resp, struct pk_arena *a, struct pk_error *err)
{
	const Pk__ImagePreparedRequest *p = req->image_prepared;
	Pk__ImagePreparedResponse *w = pk_arena_new(a, Pk__ImagePreparedResponse);
	int32_t host_id = p->host_id;
	int r;

	if (caller->role == PK_ROLE_HOST) {
		if (host_id != caller->host_id) {
			pk_log_warn("image_prepared host_id=%d from '%s' ignored: recorded under the "
				    "certificate's host_id=%d image='%s' volume='%s'",
				    host_id, caller->name, caller->host_id,
				    str_or_empty(p->image_id), str_or_empty(p->volume_id));
		}
		host_id = caller->host_id;
	}
	pk__image_prepared_response__init(w);
	r = spm_image_prepared(ctx, str_or_empty(p->domain_id), str_or_empty(p->image_id),
			       str_or_empty(p->volume_id), host_id, p->prepared, p->seq, err);
	if (r == 0) {
		resp->image_prepared = w;
	}
	return r;
}

static int verb_task_get(void *ctx, const Pk__Request *req, Pk__Response *resp,
			 struct pk_arena *a, struct pk_error *err)
{
	struct spm *spm = ctx;
	Pk__TaskGetResponse *w = pk_arena_new(a, Pk__TaskGetResponse);
	struct spm_task_info info;
	int r = pk_uuid_check("task_id", req->task_get->task_id, err);

	if (r == 0) {
		(void)spm_tasks_expire(spm->tasks, pk_clock_realtime_ms());
		r = spm_tasks_get(spm->tasks, req->task_get->task_id, &info, err);
	}
	if (r == 0) {
		pk__task_get_response__init(w);
		w->task = task_to_wire(a, &info);
		resp->task_get = w;
	}
	return r;
}

static int verb_task_list(void *ctx, const Pk__Request *req, Pk__Response *resp,
			  struct pk_arena *a, struct pk_error *err)
{
	struct spm *spm = ctx;
	const Pk__TaskListRequest *l = req->task_list;
	Pk__TaskListResponse *w = pk_arena_new(a, Pk__TaskListResponse);
	struct spm_task_info *list = NULL;
	char next[SPM_TASK_TOKEN_BUFLEN];
	size_t n = 0;
	int r;

	(void)spm_tasks_expire(spm->tasks, pk_clock_realtime_ms());
	r = spm_tasks_page(spm->tasks, str_or_empty(l->page_token), l->limit, &list, &n, next,
			   err);
	if (r < 0) {
		return r;
	}
	pk__task_list_response__init(w);
	w->tasks = pk_arena_array(a, Pk__TaskInfo *, n + 1);
	for (size_t i = 0; i < n; i++) {
		w->tasks[i] = task_to_wire(a, &list[i]);
	}
	w->n_tasks = n;
	w->next_page_token = pk_arena_strdup(a, next);
	free(list);
	resp->task_list = w;
	return 0;
}

static int verb_task_clear(void *ctx, const Pk__Request *req, Pk__Response *resp,
			   struct pk_arena *a, struct pk_error *err)
{
	struct spm *spm = ctx;
	Pk__TaskClearResponse *w = pk_arena_new(a, Pk__TaskClearResponse);
	int r = pk_uuid_check("task_id", req->task_clear->task_id, err);

	if (r == 0) {
		r = spm_tasks_clear(spm->tasks, req->task_clear->task_id, err);
	}
	if (r == 0) {
		pk__task_clear_response__init(w);
		resp->task_clear = w;
	}
	return r;
}

static const struct pk_verb verbs[] = {
	{ PK__REQUEST__CALL_SPM_START, PK_ROLES_ADMIN, verb_spm_start, NULL },
	{ PK__REQUEST__CALL_SPM_STOP, PK_ROLES_ADMIN, verb_spm_stop, NULL },
	{ PK__REQUEST__CALL_SPM_STATUS, PK_ROLES_READ, verb_spm_status, NULL },
	{ PK__REQUEST__CALL_CREATE_DOMAIN, PK_ROLES_ADMIN, verb_create_domain, NULL },
	{ PK__REQUEST__CALL_DOMAIN_INFO, PK_ROLES_READ, verb_domain_info, NULL },
	{ PK__REQUEST__CALL_CREATE_VOLUME, PK_ROLES_ADMIN, verb_create_volume, NULL },
	{ PK__REQUEST__CALL_DELETE_VOLUME, PK_ROLES_ADMIN, verb_delete_volume, NULL },
	{ PK__REQUEST__CALL_EXTEND_VOLUME, PK_ROLES_HOST, verb_extend_volume, NULL },
	{ PK__REQUEST__CALL_REDUCE_VOLUME, PK_ROLES_HOST, verb_reduce_volume, NULL },
	{ PK__REQUEST__CALL_VOLUME_INFO, PK_ROLES_READ, verb_volume_info, NULL },
	{ PK__REQUEST__CALL_UPDATE_VOLUME_META, PK_ROLES_HOST, verb_update_volume_meta, NULL },
	{ PK__REQUEST__CALL_IMAGE_CHAIN, PK_ROLES_READ, verb_image_chain, NULL },
	{ PK__REQUEST__CALL_DELETE_IMAGE, PK_ROLES_ADMIN, verb_delete_image, NULL },
	{ PK__REQUEST__CALL_TASK_GET, PK_ROLES_READ, verb_task_get, NULL },
	{ PK__REQUEST__CALL_TASK_LIST, PK_ROLES_READ, verb_task_list, NULL },
	{ PK__REQUEST__CALL_TASK_CLEAR, PK_ROLES_ADMIN, verb_task_clear, NULL },
	{ PK__REQUEST__CALL_IMAGE_PREPARED, PK_ROLES_HOST, NULL, verb_image_prepared },
};
const struct pk_verb *const spm_verbs = verbs;
const size_t spm_nverbs = sizeof(verbs) / sizeof(verbs[0]);
