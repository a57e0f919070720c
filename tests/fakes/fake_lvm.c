/*
 * fake_lvm — see fake_lvm.h. Defines every function of common/lvm.h.
 */
#include "tests/fakes/fake_lvm.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lvm.h"
#include "common/lvm_text.h"
#include "common/xalloc.h"

#define FAKE_PE_START (1ull << 20)
#define FAKE_PV_SIZE (1ull << 30)
#define FAKE_EXTENT_SIZE (4ull << 20)

struct fake_pv {
	char path[PK_LVM_PATH_MAX];
	uint64_t size;
	char vg[PK_LVM_NAME_MAX]; /* "" while not in a VG */
};

struct fake_lv {
	char name[PK_LVM_NAME_MAX];
	char uuid[PK_LVM_UUID_MAX];
	char **tags; /* NULL-terminated */
	struct pk_lvm_segment *segs;
	size_t nsegs;
	bool active;
	bool open;
};

struct fake_vg {
	char name[PK_LVM_NAME_MAX];
	char uuid[PK_LVM_UUID_MAX];
	char **tags;
	uint64_t extent_size;
	char **pvs; /* paths, in order */
	struct fake_lv *lvs;
	size_t nlvs;
};

static struct {
	struct fake_pv *pvs;
	size_t npvs;
	struct fake_vg *vgs;
	size_t nvgs;
	int fail_any;
	int fail_op[FAKE_LVM_OP_COUNT];
	int calls[FAKE_LVM_OP_COUNT];
	unsigned uuids;
	int busy_attempts; /* writes still to meet a held LVM lock */
	int busy_retries;  /* attempts that met it */
	void (*after_fn[FAKE_LVM_OP_COUNT])(void *ctx);
	void *after_ctx[FAKE_LVM_OP_COUNT];
} world;

/* Serializes the verbs and the controls: the SPM (an nng worker) and the HSM
 * (job threads) of one test may both call in, as hsmd and spmd would. */
static pthread_mutex_t world_lock = PTHREAD_MUTEX_INITIALIZER;

struct pk_lvm {
	char **devices;
	bool activation;
	pk_lvm_write_guard_fn *write_guard;
	void *write_guard_ctx;
};

/* ---- string lists ------------------------------------------------------ */

static size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n]) {
		n++;
	}
	return n;
}

static char **strv_copy(const char *const *v)
{
	size_t n = strv_len((char *const *)v);
	char **c = pk_xcalloc(n + 1, sizeof(*c));

	for (size_t i = 0; i < n; i++) {
		c[i] = pk_xstrdup(v[i]);
	}
	return c;
}

static void strv_add(char ***v, const char *s)
{
	size_t n = strv_len(*v);

	if (pk_lvm_tags_contain(*v, s)) {
		return;
	}
	*v = pk_xgrow(*v, NULL, n + 2, sizeof(**v));
	(*v)[n] = pk_xstrdup(s);
	(*v)[n + 1] = NULL;
}

static void strv_del(char **v, const char *s)
{
	size_t n = strv_len(v);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i], s) == 0) {
			free(v[i]);
			memmove(&v[i], &v[i + 1], (n - i) * sizeof(*v));
			return;
		}
	}
}

static void tags_apply(char ***tags, const char *const *add, const char *const *del)
{
	for (size_t i = 0; del && del[i]; i++) {
		strv_del(*tags, del[i]);
	}
	for (size_t i = 0; add && add[i]; i++) {
		strv_add(tags, add[i]);
	}
}

/* ---- lookups --------------------------------------------------------------- */

static struct fake_pv *pv_find(const char *path)
{
	for (size_t i = 0; i < world.npvs; i++) {
		if (strcmp(world.pvs[i].path, path) == 0) {
			return &world.pvs[i];
		}
	}
	return NULL;
}

static struct fake_pv *pv_get(const char *path)
{
	struct fake_pv *pv = pv_find(path);

	if (pv) {
		return pv;
	}
	world.pvs = pk_xrealloc(world.pvs, (world.npvs + 1) * sizeof(*world.pvs));
	pv = &world.pvs[world.npvs++];
	memset(pv, 0, sizeof(*pv));
	snprintf(pv->path, sizeof(pv->path), "%s", path);
	pv->size = FAKE_PV_SIZE;
	return pv;
}

static struct fake_vg *vg_find(const char *name)
{
	for (size_t i = 0; i < world.nvgs; i++) {
		if (strcmp(world.vgs[i].name, name) == 0) {
			return &world.vgs[i];
		}
	}
	return NULL;
}

static struct fake_lv *lv_find(struct fake_vg *vg, const char *name)
{
	for (size_t i = 0; vg && i < vg->nlvs; i++) {
		if (strcmp(vg->lvs[i].name, name) == 0) {
			return &vg->lvs[i];
		}
	}
	return NULL;
}

static int vg_missing(const char *vg, struct pk_error *err)
{
	return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "Volume group \"%s\" not found", vg);
}

static int lv_missing(const char *vg, const char *lv, struct pk_error *err)
{
	return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
			    "Failed to find logical volume \"%s/%s\"", vg, lv);
}

/* Looks up vg and (when lv_name) the LV; fills err when missing. */
static int lookup(const char *vg_name, const char *lv_name, struct fake_vg **ret_vg,
		  struct fake_lv **ret_lv, struct pk_error *err)
{
	struct fake_vg *vg = vg_find(vg_name);

	if (!vg) {
		vg_missing(vg_name, err);
		return -ENOENT;
	}
	*ret_vg = vg;
	if (lv_name) {
		*ret_lv = lv_find(vg, lv_name);
		if (!*ret_lv) {
			lv_missing(vg_name, lv_name, err);
			return -ENOENT;
		}
	}
	return 0;
}

/* ---- failure injection ----------------------------------------------------- */

static int inject(enum fake_lvm_op op, struct pk_error *err)
{
	int rv = world.fail_op[op] ? world.fail_op[op] : world.fail_any;
	enum pk_errc code;

	world.calls[op]++;
	if (!rv) {
		return 0;
	}
	if (world.fail_op[op]) {
		world.fail_op[op] = 0;
	} else {
		world.fail_any = 0;
	}
	switch (-rv) {
	case ENOSPC:
		code = PK_E_NO_SPACE;
		break;
	case ENOENT:
		code = PK_E_NOT_FOUND;
		break;
	case EEXIST:
		code = PK_E_ALREADY_EXISTS;
		break;
	case EBUSY:
		code = PK_E_BUSY;
		break;
	default:
		code = PK_E_INTERNAL;
	}
	return pk_error_set(err, code, -rv, "fake LVM failure (injected): %s", strerror(-rv));
}

void fake_lvm_fail_next(int rv)
{
	pthread_mutex_lock(&world_lock);
	world.fail_any = rv;
	pthread_mutex_unlock(&world_lock);
}

void fake_lvm_fail_op(enum fake_lvm_op op, int rv)
{
	pthread_mutex_lock(&world_lock);
	world.fail_op[op] = rv;
	pthread_mutex_unlock(&world_lock);
}

int fake_lvm_calls(enum fake_lvm_op op)
{
	int n;

	pthread_mutex_lock(&world_lock);
	n = world.calls[op];
	pthread_mutex_unlock(&world_lock);
	return n;
}

void fake_lvm_set_pv_size(const char *path, uint64_t size)
{
	pthread_mutex_lock(&world_lock);
	pv_get(path)->size = size;
	pthread_mutex_unlock(&world_lock);
}

bool fake_lvm_lv_active(const char *vg, const char *lv)
{
	struct fake_lv *l;
	bool active;

	pthread_mutex_lock(&world_lock);
	l = lv_find(vg_find(vg), lv);
	active = l && l->active;
	pthread_mutex_unlock(&world_lock);
	return active;
}

void fake_lvm_set_open(const char *vg, const char *lv, bool open)
{
	struct fake_lv *l;

	pthread_mutex_lock(&world_lock);
	l = lv_find(vg_find(vg), lv);
	if (l) {
		l->open = open;
	}
	pthread_mutex_unlock(&world_lock);
}

static void lv_release(struct fake_lv *lv)
{
	pk_strv_free(lv->tags);
	free(lv->segs);
}

static void vg_release(struct fake_vg *vg)
{
	for (size_t i = 0; i < vg->nlvs; i++) {
		lv_release(&vg->lvs[i]);
	}
	free(vg->lvs);
	pk_strv_free(vg->tags);
	pk_strv_free(vg->pvs);
}

void fake_lvm_reset(void)
{
	pthread_mutex_lock(&world_lock);
	for (size_t i = 0; i < world.nvgs; i++) {
		vg_release(&world.vgs[i]);
	}
	free(world.vgs);
	free(world.pvs);
	memset(&world, 0, sizeof(world));
	pthread_mutex_unlock(&world_lock);
}

/* ---- extents ------------------------------------------------------------------ */

static uint64_t pv_extents(const struct fake_pv *pv, uint64_t extent_size)
{
	return pv->size > FAKE_PE_START ? (pv->size - FAKE_PE_START) / extent_size : 0;
}

/* Which extents of pv are used by an LV of vg (caller frees). */
static bool *pv_used(const struct fake_vg *vg, const struct fake_pv *pv, uint64_t n)
{
	bool *used = pk_xcalloc(n ? n : 1, sizeof(*used));

	for (size_t l = 0; l < vg->nlvs; l++) {
		for (size_t s = 0; s < vg->lvs[l].nsegs; s++) {
			const struct pk_lvm_segment *seg = &vg->lvs[l].segs[s];

			if (strcmp(seg->pv, pv->path) != 0) {
				continue;
			}
			for (uint64_t e = 0; e < seg->extent_count; e++) {
				used[seg->pv_start_extent + e] = true;
			}
		}
	}
	return used;
}

static uint64_t pv_free_extents(const struct fake_vg *vg, const struct fake_pv *pv)
{
	uint64_t n = pv_extents(pv, vg->extent_size), nfree = 0;
	bool *used = pv_used(vg, pv, n);

	for (uint64_t e = 0; e < n; e++) {
		nfree += !used[e];
	}
	free(used);
	return nfree;
}

static uint64_t vg_extents(const struct fake_vg *vg, bool free_only)
{
	uint64_t total = 0;

	for (size_t i = 0; vg->pvs[i]; i++) {
		const struct fake_pv *pv = pv_get(vg->pvs[i]);

		total += free_only ? pv_free_extents(vg, pv) : pv_extents(pv, vg->extent_size);
	}
	return total;
}

static uint64_t lv_extents(const struct fake_lv *lv)
{
	uint64_t n = 0;

	for (size_t i = 0; i < lv->nsegs; i++) {
		n += lv->segs[i].extent_count;
	}
	return n;
}

static void lv_append(struct fake_lv *lv, const char *pv, uint64_t pv_start, uint64_t count)
{
	struct pk_lvm_segment *last = lv->nsegs ? &lv->segs[lv->nsegs - 1] : NULL;
	uint64_t start = lv_extents(lv);

	if (last && strcmp(last->pv, pv) == 0 &&
	    last->pv_start_extent + last->extent_count == pv_start) {
		last->extent_count += count;
		return;
	}
	lv->segs = pk_xrealloc(lv->segs, (lv->nsegs + 1) * sizeof(*lv->segs));
	last = &lv->segs[lv->nsegs++];
	memset(last, 0, sizeof(*last));
	last->start_extent = start;
	last->extent_count = count;
	snprintf(last->pv, sizeof(last->pv), "%s", pv);
	last->pv_start_extent = pv_start;
}

/* Gives lv `count` more extents, first fit over the VG's PVs in order. */
static int lv_allocate(struct fake_vg *vg, struct fake_lv *lv, uint64_t count,
		       struct pk_error *err)
{
	uint64_t free_extents = vg_extents(vg, true);

	if (free_extents < count) {
		return pk_error_set(err, PK_E_NO_SPACE, ENOSPC,
				    "Volume group \"%s\" has insufficient free space (%" PRIu64
				    " extents): %" PRIu64 " required.",
				    vg->name, free_extents, count);
	}
	for (size_t i = 0; vg->pvs[i] && count > 0; i++) {
		const struct fake_pv *pv = pv_get(vg->pvs[i]);
		uint64_t n = pv_extents(pv, vg->extent_size);
		bool *used = pv_used(vg, pv, n);

		for (uint64_t e = 0; e < n && count > 0;) {
			uint64_t run = 0;

			while (e + run < n && !used[e + run] && run < count) {
				run++;
			}
			if (run > 0) {
				lv_append(lv, pv->path, e, run);
				count -= run;
				e += run;
			} else {
				e++;
			}
		}
		free(used);
	}
	return 0;
}

/* ---- lvm.h ------------------------------------------------------------------- */

int pk_lvm_new(const struct pk_lvm_config *config, struct pk_lvm **ret, struct pk_error *err)
{
	struct pk_lvm *lvm;
	int r;

	if (!config->devices || !config->devices[0]) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "no LVM devices configured (lvm_devices)");
	}
	for (size_t i = 0; config->devices[i]; i++) {
		r = pk_lvm_path_check("LVM device", config->devices[i], err);
		if (r < 0) {
			return r;
		}
		pthread_mutex_lock(&world_lock);
		pv_get(config->devices[i]);
		pthread_mutex_unlock(&world_lock);
	}
	lvm = pk_xcalloc(1, sizeof(*lvm));
	lvm->devices = strv_copy(config->devices);
	lvm->activation = config->activation;
	*ret = lvm;
	return 0;
}

void pk_lvm_free(struct pk_lvm *lvm)
{
	if (!lvm) {
		return;
	}
	pk_strv_free(lvm->devices);
	free(lvm);
}

void pk_lvm_write_guard_set(struct pk_lvm *lvm, pk_lvm_write_guard_fn *fn, void *ctx)
{
	lvm->write_guard = fn;
	lvm->write_guard_ctx = ctx;
}

/*
 * The write guard before a writing verb, as common/lvm.c runs it before
 * each attempt: outside the world lock, and a refusal leaves the verb
 * uncounted (LVM never ran). busy_attempts models LVM's file lock held by
 * another process: each busy attempt asks the guard again.
 */
static int write_guard(struct pk_lvm *lvm, const char *vg, const char *what,
		       struct pk_error *err)
{
	for (;;) {
		bool busy;
		if (lvm->write_guard) {
			int g = lvm->write_guard(lvm->write_guard_ctx, vg, err);
			if (g < 0) {
				pk_error_prefix(err, "%s not run", what);
				return g;
			}
		}
		pthread_mutex_lock(&world_lock);
		busy = world.busy_attempts > 0;
		if (busy) {
			world.busy_attempts--;
			world.busy_retries++;
		}
		pthread_mutex_unlock(&world_lock);
		if (!busy) {
			return 0;
		}
	}
}

void fake_lvm_set_busy_attempts(int attempts)
{
	pthread_mutex_lock(&world_lock);
	world.busy_attempts = attempts;
	pthread_mutex_unlock(&world_lock);
}

int fake_lvm_busy_retries(void)
{
	int n;

	pthread_mutex_lock(&world_lock);
	n = world.busy_retries;
	pthread_mutex_unlock(&world_lock);
	return n;
}

bool pk_lvm_device_allowed(const struct pk_lvm *lvm, const char *path)
{
	return path && pk_lvm_tags_contain(lvm->devices, path);
}

static int vg_create_unlocked(struct pk_lvm *lvm, const char *vg, const char *const *pvs,
			      uint64_t extent_size, const char *const *tags, struct pk_error *err)
{
	struct fake_vg *v;
	int r;

	if ((r = pk_lvm_vg_create_check((const char *const *)lvm->devices, vg, pvs, extent_size,
					tags, err)) < 0 ||
	    (r = inject(FAKE_LVM_VG_CREATE, err)) < 0) {
		return r;
	}
	if (vg_find(vg)) {
		return pk_error_set(err, PK_E_ALREADY_EXISTS, EEXIST,
				    "A volume group called %s already exists.", vg);
	}
	for (size_t i = 0; pvs[i]; i++) {
		const struct fake_pv *pv = pv_get(pvs[i]);

		if (pv->vg[0]) {
			return pk_error_set(err, PK_E_IN_USE, EBUSY,
					    "Physical volume '%s' is already in volume group '%s'",
					    pv->path, pv->vg);
		}
	}
	world.vgs = pk_xrealloc(world.vgs, (world.nvgs + 1) * sizeof(*world.vgs));
	v = &world.vgs[world.nvgs++];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", vg);
	snprintf(v->uuid, sizeof(v->uuid), "fakevg-%06u", ++world.uuids);
	v->tags = strv_copy(tags);
	v->extent_size = extent_size ? extent_size : FAKE_EXTENT_SIZE;
	v->pvs = strv_copy(pvs);
	for (size_t i = 0; pvs[i]; i++) {
		snprintf(pv_get(pvs[i])->vg, PK_LVM_NAME_MAX, "%s", vg);
	}
	return 0;
}

static int vg_report_unlocked(struct pk_lvm *lvm, const char *vg, struct pk_lvm_vg *ret,
			      struct pk_error *err)
{
	struct pk_lvm_vg r = { 0 };
	struct fake_vg *v;
	int rc;

	(void)lvm;
	if ((rc = pk_lvm_vg_name_check(vg, err)) < 0 ||
	    (rc = inject(FAKE_LVM_VG_REPORT, err)) < 0 ||
	    (rc = lookup(vg, NULL, &v, NULL, err)) < 0) {
		return rc;
	}
	snprintf(r.name, sizeof(r.name), "%s", v->name);
	snprintf(r.uuid, sizeof(r.uuid), "%s", v->uuid);
	r.extent_size = v->extent_size;
	r.extent_count = vg_extents(v, false);
	r.free_count = vg_extents(v, true);
	r.size = r.extent_count * v->extent_size;
	r.free = r.free_count * v->extent_size;
	r.tags = strv_copy((const char *const *)v->tags);
	r.ntags = strv_len(r.tags);
	r.npvs = strv_len(v->pvs);
	r.pvs = pk_xcalloc(r.npvs, sizeof(*r.pvs));
	for (size_t i = 0; i < r.npvs; i++) {
		const struct fake_pv *pv = pv_get(v->pvs[i]);

		snprintf(r.pvs[i].name, sizeof(r.pvs[i].name), "%s", pv->path);
		r.pvs[i].size = pv->size;
		r.pvs[i].free = pv_free_extents(v, pv) * v->extent_size;
		r.pvs[i].pe_start = FAKE_PE_START;
	}
	*ret = r;
	return 0;
}

static int vg_remove_unlocked(struct pk_lvm *lvm, const char *vg, bool force, struct pk_error *err)
{
	struct fake_vg *v;
	int r;

	(void)lvm;
	if ((r = pk_lvm_vg_name_check(vg, err)) < 0 ||
	    (r = inject(FAKE_LVM_VG_REMOVE, err)) < 0 ||
	    (r = lookup(vg, NULL, &v, NULL, err)) < 0) {
		return r;
	}
	if (v->nlvs > 0 && !force) {
		return pk_error_set(err, PK_E_IN_USE, EBUSY,
				    "volume group '%s' still has %zu logical volumes (e.g. '%s')",
				    vg, v->nlvs, v->lvs[0].name);
	}
	for (size_t i = 0; i < v->nlvs; i++) {
		if (v->lvs[i].open) {
			return pk_error_set(err, PK_E_IN_USE, EBUSY,
					    "Logical volume %s/%s in use.", vg, v->lvs[i].name);
		}
	}
	for (size_t i = 0; v->pvs[i]; i++) {
		pv_get(v->pvs[i])->vg[0] = '\0';
	}
	vg_release(v);
	memmove(v, v + 1, (size_t)(&world.vgs[world.nvgs] - (v + 1)) * sizeof(*v));
	world.nvgs--;
	return 0;
}

static int vg_tags_change_unlocked(struct pk_lvm *lvm, const char *vg, const char *const *add,
				   const char *const *del, struct pk_error *err)
{
	struct fake_vg *v;
	int r;

	(void)lvm;
	if ((r = pk_lvm_vg_name_check(vg, err)) < 0 ||
	    (r = pk_lvm_tags_change_check(add, del, err)) < 0 ||
	    (r = inject(FAKE_LVM_VG_TAGS, err)) < 0 || (r = lookup(vg, NULL, &v, NULL, err)) < 0) {
		return r;
	}
	tags_apply(&v->tags, add, del);
	return 0;
}

static int vg_lv_check(const char *vg, const char *lv, struct pk_error *err)
{
	int r = pk_lvm_vg_name_check(vg, err);

	return r < 0 ? r : pk_lvm_lv_name_check(lv, err);
}

static uint64_t size_extents(uint64_t size, uint64_t extent_size)
{
	return size / extent_size + (size % extent_size != 0);
}

static int lv_create_unlocked(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
			      const char *const *tags, struct pk_error *err)
{
	struct fake_lv *l;
	struct fake_vg *v;
	int r;

	(void)lvm;
	if ((r = vg_lv_check(vg, lv, err)) < 0 ||
	    (r = pk_lvm_size_check("LV size", size, err)) < 0 ||
	    (r = pk_lvm_tags_check(tags, NULL, err)) < 0 ||
	    (r = inject(FAKE_LVM_LV_CREATE, err)) < 0 ||
	    (r = lookup(vg, NULL, &v, NULL, err)) < 0) {
		return r;
	}
	if (lv_find(v, lv)) {
		return pk_error_set(err, PK_E_ALREADY_EXISTS, EEXIST,
				    "Logical Volume \"%s\" already exists in volume group \"%s\"",
				    lv, vg);
	}
	v->lvs = pk_xrealloc(v->lvs, (v->nlvs + 1) * sizeof(*v->lvs));
	l = &v->lvs[v->nlvs];
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", lv);
	snprintf(l->uuid, sizeof(l->uuid), "fakelv-%06u", ++world.uuids);
	r = lv_allocate(v, l, size_extents(size, v->extent_size), err);
	if (r < 0) {
		lv_release(l);
		return r;
	}
	l->tags = strv_copy(tags);
	v->nlvs++;
	return 0;
}

static int lv_remove_unlocked(struct pk_lvm *lvm, const char *vg, const char *lv,
			      struct pk_error *err)
{
	struct fake_lv *l;
	struct fake_vg *v;
	int r;

	(void)lvm;
	if ((r = vg_lv_check(vg, lv, err)) < 0 || (r = inject(FAKE_LVM_LV_REMOVE, err)) < 0 ||
	    (r = lookup(vg, lv, &v, &l, err)) < 0) {
		return r;
	}
	if (l->open) {
		return pk_error_set(err, PK_E_IN_USE, EBUSY, "Logical volume %s/%s in use.", vg,
				    lv);
	}
	lv_release(l);
	memmove(l, l + 1, (size_t)(&v->lvs[v->nlvs] - (l + 1)) * sizeof(*l));
	v->nlvs--;
	return 0;
}

static int lv_extend_unlocked(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
			      struct pk_error *err)
{
	uint64_t want, have;
	struct fake_lv *l;
	struct fake_vg *v;
	int r;

	(void)lvm;
	if ((r = vg_lv_check(vg, lv, err)) < 0 ||
	    (r = pk_lvm_size_check("LV size", size, err)) < 0 ||
	    (r = inject(FAKE_LVM_LV_EXTEND, err)) < 0 || (r = lookup(vg, lv, &v, &l, err)) < 0) {
		return r;
	}
	want = size_extents(size, v->extent_size);
	have = lv_extents(l);
	return want <= have ? 0 : lv_allocate(v, l, want - have, err);
}

/* Drops extents from the LV's end (its last segments first). */
static int lv_reduce_unlocked(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
			      struct pk_error *err)
{
	uint64_t want, drop;
	struct fake_lv *l;
	struct fake_vg *v;
	int r;

	(void)lvm;
	if ((r = vg_lv_check(vg, lv, err)) < 0 ||
	    (r = pk_lvm_size_check("LV size", size, err)) < 0 ||
	    (r = inject(FAKE_LVM_LV_REDUCE, err)) < 0 || (r = lookup(vg, lv, &v, &l, err)) < 0) {
		return r;
	}
	want = size_extents(size, v->extent_size);
	if (want == 0 || want >= lv_extents(l)) {
		return 0;
	}
	drop = lv_extents(l) - want;
	while (drop && l->nsegs) {
		struct pk_lvm_segment *last = &l->segs[l->nsegs - 1];

		if (last->extent_count > drop) {
			last->extent_count -= drop;
			drop = 0;
		} else {
			drop -= last->extent_count;
			l->nsegs--;
		}
	}
	return 0;
}

static int lv_tags_change_unlocked(struct pk_lvm *lvm, const char *vg, const char *lv,
				   const char *const *add, const char *const *del,
				   struct pk_error *err)
{
	struct fake_lv *l;
	struct fake_vg *v;
	int r;

	(void)lvm;
	if ((r = vg_lv_check(vg, lv, err)) < 0 ||
	    (r = pk_lvm_tags_change_check(add, del, err)) < 0 ||
	    (r = inject(FAKE_LVM_LV_TAGS, err)) < 0 || (r = lookup(vg, lv, &v, &l, err)) < 0) {
		return r;
	}
	tags_apply(&l->tags, add, del);
	return 0;
}

static void lv_report_one(const struct fake_vg *v, const struct fake_lv *l,
			  struct pk_lvm_lv *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", l->name);
	snprintf(out->uuid, sizeof(out->uuid), "%s", l->uuid);
	out->size = lv_extents(l) * v->extent_size;
	out->tags = strv_copy((const char *const *)l->tags);
	out->ntags = strv_len(out->tags);
	out->linear = true;
	out->nsegments = l->nsegs;
	out->segments = pk_xcalloc(l->nsegs ? l->nsegs : 1, sizeof(*out->segments));
	memcpy(out->segments, l->segs, l->nsegs * sizeof(*out->segments));
}

static int lv_report_unlocked(struct pk_lvm *lvm, const char *vg, const char *lv,
			      struct pk_lvm_lv_list *ret, struct pk_error *err)
{
	struct pk_lvm_lv_list list = { 0 };
	struct fake_lv *l = NULL;
	struct fake_vg *v;
	int r;

	(void)lvm;
	r = lv ? vg_lv_check(vg, lv, err) : pk_lvm_vg_name_check(vg, err);
	if (r < 0 || (r = inject(FAKE_LVM_LV_REPORT, err)) < 0 ||
	    (r = lookup(vg, lv, &v, &l, err)) < 0) {
		return r;
	}
	list.count = l ? 1 : v->nlvs;
	list.lvs = pk_xcalloc(list.count ? list.count : 1, sizeof(*list.lvs));
	list.extent_size = list.count ? v->extent_size : 0;
	for (size_t i = 0; i < list.count; i++) {
		lv_report_one(v, l ? l : &v->lvs[i], &list.lvs[i]);
	}
	*ret = list;
	return 0;
}

static int lv_activation_unlocked(struct pk_lvm *lvm, const char *vg, const char *lv,
				  enum pk_lvm_activation op, struct pk_error *err)
{
	struct fake_lv *l;
	struct fake_vg *v;
	int r;

	if ((r = pk_lvm_activation_check(lvm->activation, vg, lv, op, err)) < 0 ||
	    (r = inject(FAKE_LVM_LV_ACTIVATION, err)) < 0 ||
	    (r = lookup(vg, lv, &v, &l, err)) < 0) {
		return r;
	}
	if (op == PK_LVM_DEACTIVATE && l->open) {
		return pk_error_set(err, PK_E_IN_USE, EBUSY, "Logical volume %s/%s in use.", vg,
				    lv);
	}
	if (op != PK_LVM_REFRESH) {
		l->active = op == PK_LVM_ACTIVATE;
	}
	return 0;
}

/* ---- common/lvm.h: one verb at a time, as the real adapter runs LVM ---------- */

/* The hook of fake_lvm_after_op, if one is set for op: taken (one shot). */
static void after_op(enum fake_lvm_op op)
{
	void (*fn)(void *) = NULL;
	void *ctx = NULL;

	pthread_mutex_lock(&world_lock);
	if (world.after_fn[op]) {
		fn = world.after_fn[op];
		ctx = world.after_ctx[op];
		world.after_fn[op] = NULL;
	}
	pthread_mutex_unlock(&world_lock);
	if (fn) {
		fn(ctx);
	}
}

void fake_lvm_after_op(enum fake_lvm_op op, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&world_lock);
	world.after_fn[op] = fn;
	world.after_ctx[op] = ctx;
	pthread_mutex_unlock(&world_lock);
}

/* Runs one verb under the world lock, then a successful one's hook; returns what it returned. */
#define RETURN_LOCKED(op, call)                    \
	do {                                       \
		int r_;                            \
		pthread_mutex_lock(&world_lock);   \
		r_ = (call);                       \
		pthread_mutex_unlock(&world_lock); \
		if (r_ == 0) {                     \
			after_op(op);              \
		}                                  \
		return r_;                         \
	} while (0)

int pk_lvm_vg_create(struct pk_lvm *lvm, const char *vg, const char *const *pvs,
		     uint64_t extent_size, const char *const *tags, struct pk_error *err)
{
	int g = write_guard(lvm, vg, "vgcreate", err);

	if (g < 0) {
		return g;
	}
	RETURN_LOCKED(FAKE_LVM_VG_CREATE, vg_create_unlocked(lvm, vg, pvs, extent_size, tags, err));
}

int pk_lvm_vg_report(struct pk_lvm *lvm, const char *vg, struct pk_lvm_vg *ret,
		     struct pk_error *err)
{
	RETURN_LOCKED(FAKE_LVM_VG_REPORT, vg_report_unlocked(lvm, vg, ret, err));
}

int pk_lvm_vg_remove(struct pk_lvm *lvm, const char *vg, bool force, struct pk_error *err)
{
	int g = write_guard(lvm, vg, "vgremove", err);

	if (g < 0) {
		return g;
	}
	RETURN_LOCKED(FAKE_LVM_VG_REMOVE, vg_remove_unlocked(lvm, vg, force, err));
}

int pk_lvm_vg_tags_change(struct pk_lvm *lvm, const char *vg, const char *const *add,
			  const char *const *del, struct pk_error *err)
{
	int g = write_guard(lvm, vg, "vgchange", err);

	if (g < 0) {
		return g;
	}
	RETURN_LOCKED(FAKE_LVM_VG_TAGS, vg_tags_change_unlocked(lvm, vg, add, del, err));
}

int pk_lvm_lv_create(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
		     const char *const *tags, struct pk_error *err)
{
	int g = write_guard(lvm, vg, "lvcreate", err);

	if (g < 0) {
		return g;
	}
	RETURN_LOCKED(FAKE_LVM_LV_CREATE, lv_create_unlocked(lvm, vg, lv, size, tags, err));
}

int pk_lvm_lv_remove(struct pk_lvm *lvm, const char *vg, const char *lv, struct pk_error *err)
{
	int g = write_guard(lvm, vg, "lvremove", err);

	if (g < 0) {
		return g;
	}
	RETURN_LOCKED(FAKE_LVM_LV_REMOVE, lv_remove_unlocked(lvm, vg, lv, err));
}

int pk_lvm_lv_extend(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
		     struct pk_error *err)
{
	int g = write_guard(lvm, vg, "lvextend", err);

	if (g < 0) {
		return g;
	}
	RETURN_LOCKED(FAKE_LVM_LV_EXTEND, lv_extend_unlocked(lvm, vg, lv, size, err));
}

int pk_lvm_lv_reduce(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
		     struct pk_error *err)
{
	int g = write_guard(lvm, vg, "lvreduce", err);

	if (g < 0) {
		return g;
	}
	RETURN_LOCKED(FAKE_LVM_LV_REDUCE, lv_reduce_unlocked(lvm, vg, lv, size, err));
}

int pk_lvm_lv_tags_change(struct pk_lvm *lvm, const char *vg, const char *lv,
			  const char *const *add, const char *const *del, struct pk_error *err)
{
	int g = write_guard(lvm, vg, "lvchange", err);

	if (g < 0) {
		return g;
	}
	RETURN_LOCKED(FAKE_LVM_LV_TAGS, lv_tags_change_unlocked(lvm, vg, lv, add, del, err));
}

int pk_lvm_lv_report(struct pk_lvm *lvm, const char *vg, const char *lv,
		     struct pk_lvm_lv_list *ret, struct pk_error *err)
{
	RETURN_LOCKED(FAKE_LVM_LV_REPORT, lv_report_unlocked(lvm, vg, lv, ret, err));
}

int pk_lvm_lv_activation(struct pk_lvm *lvm, const char *vg, const char *lv,
			 enum pk_lvm_activation op, struct pk_error *err)
{
	RETURN_LOCKED(FAKE_LVM_LV_ACTIVATION, lv_activation_unlocked(lvm, vg, lv, op, err));
}
