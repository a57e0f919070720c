#include "spm/volume.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/locks.h"
#include "common/log.h"
#include "common/lvm.h"
#include "common/xalloc.h"
#include "spm/requests.h"
#include "spm/prepseq.h"
#include "spm/volume_internal.h"

static int lock_image(struct spm *spm, struct pk_lockset *set, const char *what,
		      const char *domain, const char *image, enum pk_lock_mode image_mode,
		      const char *volume, struct pk_error *err)
{
	char owner[64];

	snprintf(owner, sizeof(owner), "%s %.36s", what, volume ? volume : image);
	pk_lockset_init(set, spm->locks, owner);
	pk_lockset_add(set, SPM_LOCK_DOMAIN, domain, PK_LOCK_SHARED);
	pk_lockset_add(set, SPM_LOCK_IMAGE, image, image_mode);
	if (volume) {
		pk_lockset_add(set, SPM_LOCK_VOLUME, volume, PK_LOCK_EXCLUSIVE);
	}
	return pk_lockset_acquire(set, spm->lock_timeout_ms, err);
}

int spm_volume_mutation_begin(struct spm *spm, const char *what, const char *domain,
			      const char *image, enum pk_lock_mode image_mode, const char *volume,
			      struct pk_lockset *set, struct spm_volume_list *list,
			      uint64_t *ret_free, struct pk_error *err)
{
	int r = pk_uuid_check_ids(domain, image, volume, err);

	if (r == 0) {
		r = spm_domain_check(spm, domain, err);
	}
	if (r < 0) {
		return r;
	}
	r = spm_role_mutation_begin(spm, domain, err);
	if (r == 0) {
		r = lock_image(spm, set, what, domain, image, image_mode, volume, err);
		if (r < 0) {
			spm_role_mutation_end();
			return r;
		}
	}
	if (r < 0) {
		return r;
	}
	r = spm_volumes_for_mutation(spm, domain, list, ret_free, err);
	if (r < 0) {
		spm_volume_mutation_end(set);
	}
	return r;
}

void spm_volume_mutation_end(struct pk_lockset *set)
{
	pk_lockset_release(set);
	spm_role_mutation_end();
}

int spm_volume_write_meta(struct spm *spm, const char *domain, const struct spm_volume *cur,
			  const struct pk_volume_meta *next_in, const char *request,
			  struct pk_error *err)
{
	struct pk_meta_tags stored, add, del;
	struct pk_volume_meta next_req = *next_in;
	const struct pk_volume_meta *next = &next_req;
	struct spm_volume updated;
	int r;

	/* The request that writes is the one a repeat is recognised by (PK_REQ). */
	snprintf(next_req.request, sizeof(next_req.request), "%s", request ? request : "");

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
	spm_volume_cache_update(spm, domain, &updated, NULL, 0);
	return 0;
}

/* ---- delete ----------------------------------------------------------------- */

static int zero_lv(struct spm *spm, const char *domain, const char *volume, uint64_t size,
		   struct pk_error *err)
{
	char path[PK_LVM_PATH_MAX * 2];
	void *buf = NULL;
	uint64_t done = 0;
	int fd, r, r2;

	/* Zeroing writes the domain: with the lease, checked again before each chunk. */
	r = spm_role_check(spm, domain, err);
	if (r < 0) {
		return r;
	}
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
		ssize_t w;

		if (done > 0 && (r = spm_role_check(spm, domain, err)) < 0) {
			pk_error_prefix(err, "zeroing '%s' stopped at %" PRIu64 " of %" PRIu64 " bytes",
					path, done, size);
			goto out;
		}
		w = pwrite(fd, buf, n, (off_t)done);
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
			 bool post_zero, const char *request, struct pk_error *err)
{
	struct pk_volume_meta next = v->meta;
	int r;

	if (v->meta.legality != PK_VOLUME_REMOVING) {
		next.legality = PK_VOLUME_REMOVING;
		r = spm_volume_write_meta(spm, domain, v, &next, request, err);
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
	spm_volume_cache_update(spm, domain, NULL, v->id, (int64_t)v->lv_size);
	spm_requests_deleted(spm->requests, request, v->id);
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
	if (force) {
		return 0;
	}
	/* Whatever the legality: an ILLEGAL leaf is one being pivoted away
	 * from, still open in its VM. */
	if (v->nprepared) {
		return pk_error_set(err, PK_E_IN_USE, EBUSY,
				    "volume '%s' (%s, %s) is prepared on host %d; tear the image "
				    "down there first (or pass force if that host is gone)",
				    v->id, pk_volume_role_name(v->meta.role),
				    pk_volume_legality_name(v->meta.legality), v->prepared[0]);
	}
	if (v->meta.role == PK_VOLUME_LEAF) {
		return pk_error_set(err, PK_E_IN_USE, EBUSY,
				    "volume '%s' is the leaf of image '%s' (%s): a VM may use it; "
				    "delete the image, or pass force", v->id, v->meta.image,
				    pk_volume_legality_name(v->meta.legality));
	}
	return 0;
}

/* request is ours and names a real request id. */
static bool request_given(const char *request)
{
	return request && *request;
}

static int request_check(const char *request, struct pk_error *err)
{
	return request_given(request) ? pk_uuid_check("request_id", request, err) : 0;
}

int spm_volume_delete(struct spm *spm, const char *domain, const char *image,
		      const char *volume, bool force, bool post_zero, const char *request,
		      struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	const struct spm_volume *v = NULL;
	struct pk_lockset set;
	int r = request_check(request, err);

	if (r < 0) {
		return r;
	}
	r = spm_volume_mutation_begin(spm, "delete_volume", domain, image, PK_LOCK_EXCLUSIVE,
				      volume, &set, &list, NULL, err);
	if (r < 0) {
		return r;
	}
	r = spm_volume_find_in_image(&list, domain, image, volume, &v, err);
	if (r < 0 && err->code == PK_E_NOT_FOUND &&
	    spm_requests_did_delete(spm->requests, request, volume)) {
		/* A repeat of a deletion done here: its answer was lost on the way. */
		pk_log_info("delete_volume repeated request='%s' volume='%s': already deleted",
			    request, volume);
		pk_error_clear(err);
		r = 0;
		goto out;
	}
	if (r == 0) {
		r = delete_check_in_use(&list, v, force, err);
	}
	if (r == 0) {
		r = volume_remove(spm, domain, v, post_zero, request, err);
	}
out:
	spm_volume_list_release(&list);
	spm_volume_mutation_end(&set);
	return r;
}

/* ---- extend, update ---------------------------------------------------------- */

int spm_volume_resize_begin(struct spm *spm, const char *what, const char *domain,
			    const char *image, enum pk_lock_mode image_mode, const char *volume,
			    uint64_t size, struct pk_lockset *set, struct spm_volume_list *list,
			    uint64_t *ret_free, const struct spm_volume **ret_v,
			    struct pk_error *err)
{
	int r;

	/* Bounded (8 EiB) before anything rounds it: near 2^64 it would wrap. */
	if (size == 0 || size % 512 != 0 || size > (uint64_t)INT64_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "new size %" PRIu64 " is not a positive multiple of 512 bytes "
				    "below 8 EiB", size);
	}
	r = spm_volume_mutation_begin(spm, what, domain, image, image_mode, volume, set, list,
				      ret_free, err);
	if (r < 0) {
		return r;
	}
	r = spm_volume_find_in_image(list, domain, image, volume, ret_v, err);
	if (r < 0) {
		spm_volume_list_release(list);
		spm_volume_mutation_end(set);
	}
	return r;
}

int spm_volume_extend(struct spm *spm, const char *domain, const char *image,
		      const char *volume, uint64_t size, struct spm_volume *ret,
		      struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	const struct spm_volume *v = NULL;
	struct pk_lockset set;
	uint64_t want, vg_free = 0;
	int r;

	r = spm_volume_resize_begin(spm, "extend_volume", domain, image, PK_LOCK_SHARED, volume,
				    size, &set, &list, &vg_free, &v, err);
	if (r < 0) {
		return r;
	}
	if (v->meta.legality == PK_VOLUME_REMOVING) {
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
				spm_volume_cache_update(spm, domain, &grown, NULL,
							-(int64_t)(want - v->lv_size));
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
	spm_volume_mutation_end(&set);
	return r;
}

int spm_volume_update(struct spm *spm, const char *domain, const char *image,
		      const char *volume, const struct spm_volume_update *u,
		      struct spm_volume *ret, struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	const struct spm_volume *v = NULL;
	struct pk_volume_meta next;
	struct pk_lockset set;
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
	r = request_check(u->request, err);
	if (r < 0) {
		return r;
	}
	r = spm_volume_mutation_begin(spm, "update_volume_meta", domain, image, PK_LOCK_EXCLUSIVE,
				      NULL, &set, &list, NULL, err);
	if (r < 0) {
		return r;
	}
	if (r == 0) {
		r = spm_volume_find_in_image(&list, domain, image, volume, &v, err);
	}
	if (r < 0) {
		goto out;
	}
	if (request_given(u->request) && !strcmp(v->meta.request, u->request)) {
		/* A repeat of the request that wrote it last: answered, not applied again. */
		pk_log_info("update_volume_meta repeated request='%s' volume='%s' generation=%" PRIu64
			    ": already done", u->request, volume, v->meta.generation);
		if (ret) {
			*ret = *v;
		}
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
			r = spm_volume_find_in_image(&list, domain, image, p, &pv, err);
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
		r = spm_volume_write_meta(spm, domain, v, &next, u->request, err);
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
			snprintf(ret->meta.request, sizeof(ret->meta.request), "%s",
				 request_given(u->request) ? u->request : "");
		}
	}
out:
	spm_volume_list_release(&list);
	spm_volume_mutation_end(&set);
	return r;
}

/* ---- several volumes at once --------------------------------------------------- */

/* What can be checked of change i before any lock. */
static int change_check_input(const struct spm_volume_change *changes, size_t i,
			      struct pk_error *err)
{
	const struct spm_volume_change *c = &changes[i];
	int r = pk_uuid_check("volume_id", c->volume, err);

	if (r == 0) {
		r = request_check(c->u.request, err);
	}
	if (r == 0 && c->u.set_parent && c->u.parent && *c->u.parent) {
		r = pk_uuid_check("parent_id", c->u.parent, err);
	}
	if (r < 0) {
		return r;
	}
	if (c->u.legality == PK_VOLUME_REMOVING) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "legality REMOVING is set by DeleteVolume only");
	}
	if (!c->u.set_parent && !c->u.role && !c->u.legality) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "nothing to update for volume '%s': give a parent, a role or a "
				    "legality", c->volume);
	}
	for (size_t k = 0; k < i; k++) {
		if (!strcmp(changes[k].volume, c->volume)) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "volume '%s' is named twice; give each volume one change",
					    c->volume);
		}
	}
	return 0;
}

/* The volume of change c as it is (*ret_cur, in list) and as it will be (*next). */
static int change_next(struct spm_volume_list *list, const char *domain, const char *image,
		       const struct spm_volume_change *c, const struct spm_volume **ret_cur,
		       struct pk_volume_meta *next, struct pk_error *err)
{
	const struct spm_volume *v = NULL;
	int r = spm_volume_find_in_image(list, domain, image, c->volume, &v, err);

	if (r < 0) {
		return r;
	}
	*ret_cur = v;
	if (request_given(c->u.request) && !strcmp(v->meta.request, c->u.request)) {
		/* This request wrote it already (a repeat): nothing left to do to it. */
		*next = v->meta;
		return 0;
	}
	if (c->u.expected_generation && v->meta.generation != c->u.expected_generation) {
		return pk_error_set(err, PK_E_CONFLICT, EAGAIN,
				    "volume '%s' is at generation %" PRIu64 ", not %" PRIu64
				    "; someone changed it: read it again", c->volume,
				    v->meta.generation, c->u.expected_generation);
	}
	if (v->meta.legality == PK_VOLUME_REMOVING) {
		return pk_error_set(err, PK_E_ILLEGAL, EINVAL, "volume '%s' is being removed",
				    c->volume);
	}
	*next = v->meta;
	if (c->u.set_parent) {
		const char *p = c->u.parent && *c->u.parent ? c->u.parent : PK_META_NO_PARENT;
		if (strcmp(p, PK_META_NO_PARENT) != 0) {
			const struct spm_volume *pv = NULL;
			if (!strcmp(p, c->volume)) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						    "volume '%s' cannot be its own parent", c->volume);
			}
			r = spm_volume_find_in_image(list, domain, image, p, &pv, err);
			if (r < 0) {
				pk_error_prefix(err, "new parent of volume '%s'", c->volume);
				return r;
			}
		}
		snprintf(next->parent, sizeof(next->parent), "%s", p);
	}
	if (c->u.role) {
		next->role = c->u.role;
	}
	if (c->u.legality) {
		next->legality = c->u.legality;
	}
	return pk_meta_volume_check(c->volume, next, err);
}

static bool meta_changes(const struct pk_volume_meta *a, const struct pk_volume_meta *b)
{
	return strcmp(a->parent, b->parent) != 0 || a->role != b->role ||
	       a->legality != b->legality;
}

int spm_volumes_update(struct spm *spm, const char *domain, const char *image,
		       const struct spm_volume_change *changes, size_t n,
		       struct spm_volume *ret, struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	const struct spm_volume **cur = NULL;
	struct pk_volume_meta *next = NULL;
	struct pk_lockset set;
	size_t written = 0;
	int r = 0;

	if (n == 0 || n > SPM_VOLUME_CHANGES_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%zu changes: give 1 to %d", n, SPM_VOLUME_CHANGES_MAX);
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		r = change_check_input(changes, i, err);
	}
	if (r < 0) {
		return r;
	}
	r = spm_volume_mutation_begin(spm, "update_volumes_meta", domain, image,
				      PK_LOCK_EXCLUSIVE, NULL, &set, &list, NULL, err);
	if (r < 0) {
		return r;
	}
	cur = pk_xcalloc(n, sizeof(*cur));
	next = pk_xcalloc(n, sizeof(*next));
	/* Every change is checked before the first write. */
	for (size_t i = 0; i < n && r == 0; i++) {
		r = change_next(&list, domain, image, &changes[i], &cur[i], &next[i], err);
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!meta_changes(&cur[i]->meta, &next[i])) {
			next[i].generation = cur[i]->meta.generation;
			continue;
		}
		r = spm_volume_write_meta(spm, domain, cur[i], &next[i], changes[i].u.request, err);
		if (r < 0) {
			if (written) {
				pk_error_prefix(err, "%zu of the %zu changes are written, volume '%s' "
						"not (run the same call again to finish)", written, n,
						changes[i].volume);
			}
			break;
		}
		written++;
		if (i + 1 < n) {
			pk_fault_point("update_volume_meta:partial");
		}
		next[i].generation = cur[i]->meta.generation + 1;
		snprintf(next[i].request, sizeof(next[i].request), "%s",
			 request_given(changes[i].u.request) ? changes[i].u.request : "");
		pk_log_info("volume metadata updated domain='%s' volume='%s' parent='%s' role=%s "
			    "legality=%s generation=%" PRIu64 " (change %zu of %zu)", domain,
			    changes[i].volume, next[i].parent, pk_volume_role_name(next[i].role),
			    pk_volume_legality_name(next[i].legality), next[i].generation, i + 1, n);
	}
	if (r == 0 && ret) {
		for (size_t i = 0; i < n; i++) {
			ret[i] = *cur[i];
			ret[i].meta = next[i];
		}
	}
	free(cur);
	free(next);
	spm_volume_list_release(&list);
	spm_volume_mutation_end(&set);
	return r;
}

/* ---- images ------------------------------------------------------------------ */

int spm_image_delete(struct spm *spm, const char *domain, const char *image, bool force,
		     struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	struct pk_lockset set;
	size_t members = 0;
	int r;

	r = spm_volume_mutation_begin(spm, "delete_image", domain, image, PK_LOCK_EXCLUSIVE, NULL,
				      &set, &list, NULL, err);
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
		r = spm_volume_write_meta(spm, domain, v, &next, NULL, err);
		if (r == 0) {
			v->meta.legality = PK_VOLUME_REMOVING;
			v->meta.generation++;
		}
	}
	for (size_t i = 0; i < list.n && r == 0; i++) {
		if (!strcmp(list.v[i].meta.image, image)) {
			r = volume_remove(spm, domain, &list.v[i], false, NULL, err);
		}
	}
out:
	spm_volume_list_release(&list);
	spm_volume_mutation_end(&set);
	return r;
}

int spm_image_prepared(struct spm *spm, const char *domain, const char *image,
		       const char *volume, int32_t host_id, bool prepared, uint64_t seq,
		       struct pk_error *err)
{
	struct spm_volume_list list = { 0 };
	struct pk_lockset set;
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
	r = spm_volume_mutation_begin(spm, "image_prepared", domain, image, PK_LOCK_EXCLUSIVE, NULL,
				      &set, &list, NULL, err);
	if (r < 0) {
		return r;
	}
	/* Under the image's lock: no other notice of this image in between. */
	if (spm_prepseq_stale(spm->prepseq, host_id, image, seq)) {
		pk_log_info("image_prepared: stale notice ignored domain='%s' image='%s' host=%d "
			    "prepared=%d seq=%" PRIu64, domain, image, host_id, prepared, seq);
		goto out;
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
				spm_volume_cache_update(spm, domain, &changed, NULL, 0);
			}
		}
	}
	if (r == 0) {
		spm_prepseq_record(spm->prepseq, host_id, image, seq);
	}
out:
	spm_volume_list_release(&list);
	spm_volume_mutation_end(&set);
	return r;
}

/* What recovery does to a volume as read: remove it (unfinished or REMOVING) or nothing. */
static bool recovery_candidate(const struct spm_volume *v, bool *ret_unfinished)
{
	*ret_unfinished = v->meta.legality == PK_VOLUME_ILLEGAL && v->meta.generation == 0;
	return v->meta.legality == PK_VOLUME_REMOVING || *ret_unfinished;
}

/*
 * One candidate of the first read: locked, read again, then acted on. A
 * CreateVolume may have finished it (LEGAL now) or a DeleteVolume removed
 * it between the first read and the lock: then it is left alone.
 */
static int recover_one(struct spm *spm, const char *domain, const struct spm_volume *seen,
		       struct spm_recovery *rec, struct pk_error *err)
{
	struct spm_volume now;
	struct pk_lockset set;
	struct pk_error rerr;
	bool unfinished = false;
	int r;

	r = lock_image(spm, &set, "recovery", domain, seen->meta.image, PK_LOCK_EXCLUSIVE, seen->id,
		       err);
	if (r < 0) {
		return r;
	}
	r = spm_volume_read(spm, domain, seen->id, &now, &rerr);
	if (r < 0 && rerr.code == PK_E_NOT_FOUND) {
		rec->skipped++;
		pk_log_info("recovery: volume gone meanwhile domain='%s' volume='%s'", domain, seen->id);
		r = 0;
		goto out;
	}
	if (r < 0) {
		pk_error_set(err, rerr.code, 0, "%s", rerr.message);
		goto out;
	}
	if (!recovery_candidate(&now, &unfinished) || strcmp(now.meta.image, seen->meta.image)) {
		rec->skipped++;
		pk_log_info("recovery: volume finished meanwhile, left as it is domain='%s' "
			    "volume='%s' legality=%s generation=%" PRIu64, domain, now.id,
			    pk_volume_legality_name(now.meta.legality), now.meta.generation);
		goto out;
	}
	r = volume_remove(spm, domain, &now, false, now.meta.request, err);
	if (r == 0 && unfinished) {
		rec->rolled_back++;
		pk_log_info("recovery: removed unfinished volume domain='%s' volume='%s'", domain,
			    now.id);
	} else if (r == 0) {
		rec->removed++;
		pk_log_info("recovery: completed removal domain='%s' volume='%s'", domain, now.id);
	}
out:
	pk_lockset_release(&set);
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
		bool unfinished;

		if (recovery_candidate(&list.v[i], &unfinished)) {
			r = recover_one(spm, domain, &list.v[i], &rec, err);
		}
	}
	spm_volume_list_release(&list);
	if (r == 0 && ret) {
		*ret = rec;
	}
	return r;
}
