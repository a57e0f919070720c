/*
 * hsmd's RPC layer: decodes each call's protobuf arguments into plain C,
 * calls the HSM logic, encodes the result (built from the request's
 * arena). Ping and GetCapabilities are answered by the dispatcher.
 * The calls hsmd itself makes to the SPM are in hsm/spm_calls.c.
 */
#include "hsm/rpc.h"

#include <errno.h>
#include <string.h>

#include "common/xalloc.h"
#include "hsm/chain.h"
#include "hsm/hsm.h"
#include "hsm/image.h"
#include "hsm/merge.h"
#include "hsm/snapshot.h"
#include "hsm/vm.h"
#include "proto/codec.h"
#include "proto/wire.h"

/* ---- plain C -> protobuf ------------------------------------------------------- */

static char **arena_strv(struct pk_arena *a, char **strv, size_t n)
{
	char **out = pk_arena_array(a, char *, n + 1);

	for (size_t i = 0; i < n; i++) {
		out[i] = pk_arena_strdup(a, strv[i]);
	}
	return out;
}

static Pk__VolumeInfo *volume_info(struct pk_arena *a, struct hsm *hsm, const char *domain,
				   const struct hsm_volume *v)
{
	char path[HSM_PATH_MAX];
	bool linked = hsm_image_link_path(hsm, domain, v->meta.image, v->id, path, sizeof(path),
					  NULL) == 0;

	return pk_wire_volume_info(a, domain, v->id, &v->meta, v->lv_size, linked ? path : NULL);
}

static Pk__DomainType domain_type(enum hsm_vm_type t)
{
	switch (t) {
	case HSM_VM_TYPE_KVM:
		return PK__DOMAIN_TYPE__DOMAIN_TYPE_KVM;
	case HSM_VM_TYPE_QEMU:
		return PK__DOMAIN_TYPE__DOMAIN_TYPE_QEMU;
	default:
		return PK__DOMAIN_TYPE__DOMAIN_TYPE_AUTO;
	}
}

static Pk__VmInfo *vm_info(struct pk_arena *a, const struct hsm_vm_info *info)
{
	Pk__VmInfo *vi = pk_arena_new(a, Pk__VmInfo);

	pk__vm_info__init(vi);
	vi->name = pk_arena_strdup(a, info->name);
	vi->uuid = pk_arena_strdup(a, info->uuid);
	vi->state = pk_arena_strdup(a, hsm_virt_state_name(info->state));
	vi->state_reason = pk_arena_strdup(
		a, info->state == HSM_VIRT_STATE_PAUSED ? hsm_virt_paused_reason_name(info->state_reason)
							: "");
	vi->waiting = pk_arena_strdup(a, info->waiting);
	vi->type = domain_type(info->type);
	vi->drives = pk_arena_array(a, Pk__DriveInfo *, info->ndrives + 1);
	vi->n_drives = info->ndrives;
	for (size_t i = 0; i < info->ndrives; i++) {
		const struct hsm_drive_info *d = &info->drives[i];
		Pk__DriveInfo *di = pk_arena_new(a, Pk__DriveInfo);

		pk__drive_info__init(di);
		di->target = pk_arena_strdup(a, d->id.target);
		di->domain_id = pk_arena_strdup(a, d->id.domain_id);
		di->image_id = pk_arena_strdup(a, d->id.image_id);
		di->volume_id = pk_arena_strdup(a, d->id.volume_id);
		di->live_chain = arena_strv(a, d->live_chain, d->nlive);
		di->n_live_chain = d->nlive;
		vi->drives[i] = di;
	}
	return vi;
}

/* ---- verbs ------------------------------------------------------------------------ */

static int verb_prepare_image(void *ctx, const Pk__Request *req, Pk__Response *resp,
			      struct pk_arena *arena, struct pk_error *err)
{
	const Pk__PrepareImageRequest *q = req->prepare_image;
	Pk__PrepareImageResponse *p = pk_arena_new(arena, Pk__PrepareImageResponse);
	struct hsm_chain chain = { 0 };
	int r;

	r = hsm_image_prepare(ctx, q->domain_id, q->image_id, q->volume_id, &chain, err);
	if (r < 0) {
		return r;
	}
	pk__prepare_image_response__init(p);
	p->volumes = pk_arena_array(arena, Pk__VolumeInfo *, chain.n + 1);
	p->n_volumes = chain.n;
	for (size_t i = 0; i < chain.n; i++) {
		p->volumes[i] = volume_info(arena, ctx, q->domain_id, &chain.v[i]);
	}
	hsm_chain_release(&chain);
	resp->prepare_image = p;
	return 0;
}

static int verb_teardown_image(void *ctx, const Pk__Request *req, Pk__Response *resp,
			       struct pk_arena *arena, struct pk_error *err)
{
	const Pk__TeardownImageRequest *q = req->teardown_image;
	Pk__TeardownImageResponse *p = pk_arena_new(arena, Pk__TeardownImageResponse);
	int r;

	r = hsm_image_teardown(ctx, q->domain_id, q->image_id, q->force, err);
	if (r < 0) {
		return r;
	}
	pk__teardown_image_response__init(p);
	resp->teardown_image = p;
	return 0;
}

static int verb_refresh_volume(void *ctx, const Pk__Request *req, Pk__Response *resp,
			       struct pk_arena *arena, struct pk_error *err)
{
	const Pk__RefreshVolumeRequest *q = req->refresh_volume;
	Pk__RefreshVolumeResponse *p = pk_arena_new(arena, Pk__RefreshVolumeResponse);
	uint64_t size = 0;
	int r;

	r = hsm_volume_refresh(ctx, q->domain_id, q->image_id, q->volume_id, &size, err);
	if (r < 0) {
		return r;
	}
	pk__refresh_volume_response__init(p);
	p->lv_size = size;
	resp->refresh_volume = p;
	return 0;
}

static int verb_get_volume_chain(void *ctx, const Pk__Request *req, Pk__Response *resp,
				 struct pk_arena *arena, struct pk_error *err)
{
	const Pk__GetVolumeChainRequest *q = req->get_volume_chain;
	Pk__GetVolumeChainResponse *p = pk_arena_new(arena, Pk__GetVolumeChainResponse);
	struct hsm_chain_report rep = { 0 };
	int r;

	r = hsm_volume_chain(ctx, q->domain_id, q->image_id, q->vm, q->drive, &rep, err);
	if (r < 0) {
		return r;
	}
	pk__get_volume_chain_response__init(p);
	p->metadata_chain = arena_strv(arena, rep.metadata, rep.nmetadata);
	p->n_metadata_chain = rep.nmetadata;
	p->live_chain = arena_strv(arena, rep.live, rep.nlive);
	p->n_live_chain = rep.nlive;
	p->consistent = rep.consistent;
	p->live_source = pk_arena_strdup(arena, rep.live_source);
	hsm_chain_report_release(&rep);
	resp->get_volume_chain = p;
	return 0;
}

static int verb_vm_create(void *ctx, const Pk__Request *req, Pk__Response *resp,
			  struct pk_arena *arena, struct pk_error *err)
{
	const Pk__VmSpec *s = req->vm_create->spec;
	Pk__VmCreateResponse *p = pk_arena_new(arena, Pk__VmCreateResponse);
	struct hsm_vm_create_spec spec = { 0 };
	struct hsm_vm_create_disk *disks;
	struct hsm_vm_info info = { 0 };
	int r;

	if (!s) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "VmCreate without a spec");
	}
	r = pk_wire_count_check("spec.disks", s->n_disks, HSM_VM_DISKS_MAX, err);
	if (r < 0) {
		return r;
	}
	disks = pk_arena_array(arena, struct hsm_vm_create_disk, s->n_disks + 1);
	for (size_t i = 0; i < s->n_disks; i++) {
		disks[i].domain = s->disks[i]->domain_id;
		disks[i].image = s->disks[i]->image_id;
		disks[i].volume = s->disks[i]->volume_id;
		disks[i].bus = s->disks[i]->bus;
		disks[i].target = s->disks[i]->target;
	}
	spec.name = s->name;
	spec.memory_mib = s->memory_mib;
	spec.vcpus = s->vcpus;
	spec.disks = disks;
	spec.ndisks = s->n_disks;
	spec.kernel = s->kernel;
	spec.initrd = s->initrd;
	spec.cmdline = s->cmdline;
	switch (s->type) {
	case PK__DOMAIN_TYPE__DOMAIN_TYPE_KVM:
		spec.type = HSM_VM_TYPE_WANT_KVM;
		break;
	case PK__DOMAIN_TYPE__DOMAIN_TYPE_QEMU:
		spec.type = HSM_VM_TYPE_WANT_QEMU;
		break;
	case PK__DOMAIN_TYPE__DOMAIN_TYPE_AUTO:
		spec.type = HSM_VM_TYPE_AUTO;
		break;
	default:
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "unknown domain type %d",
				    (int)s->type);
	}
	r = hsm_vm_create(ctx, &spec, &info, err);
	if (r < 0) {
		return r;
	}
	pk__vm_create_response__init(p);
	p->vm = vm_info(arena, &info);
	hsm_vm_info_release(&info);
	resp->vm_create = p;
	return 0;
}

static int verb_vm_destroy(void *ctx, const Pk__Request *req, Pk__Response *resp,
			   struct pk_arena *arena, struct pk_error *err)
{
	Pk__VmDestroyResponse *p = pk_arena_new(arena, Pk__VmDestroyResponse);
	int r;

	r = hsm_vm_destroy(ctx, req->vm_destroy->name, err);
	if (r < 0) {
		return r;
	}
	pk__vm_destroy_response__init(p);
	resp->vm_destroy = p;
	return 0;
}

static int verb_vm_list(void *ctx, const Pk__Request *req, Pk__Response *resp,
			struct pk_arena *arena, struct pk_error *err)
{
	Pk__VmListResponse *p = pk_arena_new(arena, Pk__VmListResponse);
	struct hsm_vm_info *infos = NULL;
	size_t n = 0;
	int r;

	r = hsm_vm_list(ctx, req->vm_list->name, &infos, &n, err);
	if (r < 0) {
		return r;
	}
	pk__vm_list_response__init(p);
	p->vms = pk_arena_array(arena, Pk__VmInfo *, n + 1);
	p->n_vms = n;
	for (size_t i = 0; i < n; i++) {
		p->vms[i] = vm_info(arena, &infos[i]);
	}
	hsm_vm_infos_free(infos, n);
	resp->vm_list = p;
	return 0;
}

static int verb_vm_snapshot(void *ctx, const Pk__Request *req, Pk__Response *resp,
			    struct pk_arena *arena, struct pk_error *err)
{
	const Pk__VmSnapshotRequest *q = req->vm_snapshot;
	Pk__VmSnapshotResponse *p = pk_arena_new(arena, Pk__VmSnapshotResponse);
	struct hsm_snapshot_disk *disks;
	struct hsm_vm_info info = { 0 };
	int r = pk_wire_count_check("disks", q->n_disks, HSM_VM_DISKS_MAX, err);

	if (r < 0) {
		return r;
	}
	disks = pk_arena_array(arena, struct hsm_snapshot_disk, q->n_disks + 1);
	for (size_t i = 0; i < q->n_disks; i++) {
		disks[i].drive = q->disks[i]->drive;
		disks[i].domain = q->disks[i]->domain_id;
		disks[i].image = q->disks[i]->image_id;
		disks[i].volume = q->disks[i]->volume_id;
	}
	r = hsm_vm_snapshot(ctx, q->vm, disks, q->n_disks, q->quiesce, &info, err);
	if (r < 0) {
		return r;
	}
	pk__vm_snapshot_response__init(p);
	p->vm = vm_info(arena, &info);
	hsm_vm_info_release(&info);
	resp->vm_snapshot = p;
	return 0;
}

static const struct pk_verb verbs[] = {
	{ PK__REQUEST__CALL_PREPARE_IMAGE, PK_ROLES_ADMIN, verb_prepare_image, NULL },
	{ PK__REQUEST__CALL_TEARDOWN_IMAGE, PK_ROLES_ADMIN, verb_teardown_image, NULL },
	{ PK__REQUEST__CALL_REFRESH_VOLUME, PK_ROLES_ADMIN, verb_refresh_volume, NULL },
	{ PK__REQUEST__CALL_GET_VOLUME_CHAIN, PK_ROLES_READ, verb_get_volume_chain, NULL },
	{ PK__REQUEST__CALL_VM_CREATE, PK_ROLES_ADMIN, verb_vm_create, NULL },
	{ PK__REQUEST__CALL_VM_DESTROY, PK_ROLES_ADMIN, verb_vm_destroy, NULL },
	{ PK__REQUEST__CALL_VM_LIST, PK_ROLES_READ, verb_vm_list, NULL },
	{ PK__REQUEST__CALL_VM_SNAPSHOT, PK_ROLES_ADMIN, verb_vm_snapshot, NULL },
	/* merge jobs: hsm/rpc_merge.c */
	{ PK__REQUEST__CALL_MERGE, PK_ROLES_ADMIN, hsm_rpc_merge, NULL },
	{ PK__REQUEST__CALL_JOB_GET, PK_ROLES_READ, hsm_rpc_job_get, NULL },
	{ PK__REQUEST__CALL_JOB_LIST, PK_ROLES_READ, hsm_rpc_job_list, NULL },
	{ PK__REQUEST__CALL_JOB_ABORT, PK_ROLES_ADMIN, hsm_rpc_job_abort, NULL },
	{ PK__REQUEST__CALL_JOB_SET_BANDWIDTH, PK_ROLES_ADMIN, hsm_rpc_job_set_bandwidth, NULL },
	{ PK__REQUEST__CALL_JOB_EVENTS, PK_ROLES_READ, hsm_rpc_job_events, NULL },
};
const struct pk_verb *const hsm_verbs = verbs;
const size_t hsm_nverbs = sizeof(verbs) / sizeof(verbs[0]);
