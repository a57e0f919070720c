#include "lvmapd/lvmapd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/strv.h"
#include "common/xalloc.h"

/* One open pv of a map. */
struct map_pv {
	char *path;
	int fd;
	uint64_t size; /* bytes, at load time */
};

/* A loaded table with its pv fds. Immutable after map_build; refcounted. */
struct map {
	atomic_uint refs;
	struct pk_lvmap_table table;
	size_t *seg_pv; /* index into pvs of each segment */
	struct map_pv *pvs;
	size_t npvs;
	uint64_t size;
};

struct pk_lvmapd_lv {
	char vg[PK_LVMAP_NAME_MAX];
	char lv[PK_LVMAP_NAME_MAX];
	/* Guarded by pk_lvmapd.lock: */
	struct map *map;
	unsigned opens;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	struct timespec changed;
};

struct pk_lvmapd {
	pthread_mutex_t lock;
	pthread_cond_t closed; /* signalled when an LV's last open is closed */
	unsigned busy_wait_ms;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	char *mount_dir; /* NULL: no check */
	/* Guarded by lock: sorted by (vg, lv). */
	struct pk_lvmapd_lv **lvs;
	size_t nlvs;
	size_t lvs_cap;
};

/* ---- maps ---------------------------------------------------------------- */

static void map_free(struct map *m)
{
	for (size_t i = 0; i < m->npvs; i++) {
		if (m->pvs[i].fd >= 0) {
			close(m->pvs[i].fd);
		}
		free(m->pvs[i].path);
	}
	free(m->pvs);
	free(m->seg_pv);
	pk_lvmap_table_release(&m->table);
	free(m);
}

static void map_unref(struct map *m)
{
	if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
		map_free(m);
	}
}

/* Is path (resolved) the mount dir or under it? */
static bool under_dir(const char *resolved, const char *dir)
{
	size_t n = strlen(dir);

	if (strncmp(resolved, dir, n) != 0) {
		return false;
	}
	return resolved[n] == '\0' || resolved[n] == '/' || (n == 1 && dir[0] == '/');
}

static int pv_open(struct pk_lvmapd *d, struct map_pv *pv, struct pk_error *err)
{
	struct stat st;
	uint64_t size;

	if (d->mount_dir) {
		char *resolved = realpath(pv->path, NULL);
		bool inside = resolved && under_dir(resolved, d->mount_dir);

		free(resolved);
		if (inside) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "pv '%s' is inside the mapper's own mount '%s'",
					    pv->path, d->mount_dir);
		}
	}
	pv->fd = open(pv->path, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (pv->fd < 0) {
		return pk_error_set(err, errno == ENOENT ? PK_E_NOT_FOUND : PK_E_IO, errno,
				    "cannot open pv '%s': %s", pv->path, strerror(errno));
	}
	if (fstat(pv->fd, &st) < 0) {
		return pk_error_set(err, PK_E_IO, errno, "cannot stat pv '%s': %s", pv->path,
				    strerror(errno));
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(pv->fd, BLKGETSIZE64, &size) < 0) {
			return pk_error_set(err, PK_E_IO, errno,
					    "cannot read the size of pv '%s': %s", pv->path,
					    strerror(errno));
		}
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "pv '%s' is not a block device or a regular file",
				    pv->path);
	}
	pv->size = size;
	return 0;
}

/* Index of pv path in m->pvs, adding (not yet opened) it if new. */
static size_t map_pv_index(struct map *m, const char *path)
{
	for (size_t i = 0; i < m->npvs; i++) {
		if (strcmp(m->pvs[i].path, path) == 0) {
			return i;
		}
	}
	m->pvs = pk_xgrow(m->pvs, NULL, m->npvs + 1, sizeof(*m->pvs));
	m->pvs[m->npvs].path = pk_xstrdup(path);
	m->pvs[m->npvs].fd = -1;
	m->pvs[m->npvs].size = 0;
	return m->npvs++;
}

static void table_copy(struct pk_lvmap_table *dst, const struct pk_lvmap_table *src)
{
	*dst = *src;
	dst->segments = pk_xcalloc(src->nsegments, sizeof(*src->segments));
	memcpy(dst->segments, src->segments, src->nsegments * sizeof(*src->segments));
}

/* Validates table, opens its pvs and checks every segment fits its pv. */
static int map_build(struct pk_lvmapd *d, const struct pk_lvmap_table *table,
		     struct map **ret_map, struct pk_error *err)
{
	struct map *m;
	int r;

	r = pk_lvmap_table_validate(table, err);
	if (r < 0) {
		return r;
	}
	m = pk_xcalloc(1, sizeof(*m));
	atomic_init(&m->refs, 1);
	table_copy(&m->table, table);
	m->size = pk_lvmap_table_size(table);
	m->seg_pv = pk_xcalloc(table->nsegments, sizeof(*m->seg_pv));
	for (size_t i = 0; i < table->nsegments; i++) {
		m->seg_pv[i] = map_pv_index(m, table->segments[i].pv);
	}
	for (size_t i = 0; i < m->npvs; i++) {
		r = pv_open(d, &m->pvs[i], err);
		if (r < 0) {
			goto fail;
		}
	}
	for (size_t i = 0; i < table->nsegments; i++) {
		const struct pk_lvmap_segment *seg = &table->segments[i];
		const struct map_pv *pv = &m->pvs[m->seg_pv[i]];
		uint64_t end = seg->pv_offset + seg->count;

		if (end > pv->size / PK_LVMAP_SECTOR) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "segment %zu maps pv '%s' up to sector %" PRIu64
					 ", beyond its end (%" PRIu64 " sectors)",
					 i, pv->path, end, pv->size / PK_LVMAP_SECTOR);
			goto fail;
		}
	}
	*ret_map = m;
	return 0;

fail:
	map_free(m);
	return r;
}

/* ---- the registry -------------------------------------------------------- */

struct pk_lvmapd *pk_lvmapd_new(const struct pk_lvmapd_config *cfg)
{
	struct pk_lvmapd *d = pk_xcalloc(1, sizeof(*d));

	pthread_condattr_t ca;

	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->closed, &ca);
	pthread_condattr_destroy(&ca);
	d->busy_wait_ms = cfg->busy_wait_ms;
	d->uid = cfg->uid;
	d->gid = cfg->gid;
	d->mode = cfg->mode & 0777;
	d->mount_dir = cfg->mount_dir ? pk_xstrdup(cfg->mount_dir) : NULL;
	return d;
}

void pk_lvmapd_free(struct pk_lvmapd *d)
{
	if (!d) {
		return;
	}
	for (size_t i = 0; i < d->nlvs; i++) {
		map_unref(d->lvs[i]->map);
		free(d->lvs[i]);
	}
	free(d->lvs);
	free(d->mount_dir);
	pthread_cond_destroy(&d->closed);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int lv_cmp(const char *vg, const char *lv, const struct pk_lvmapd_lv *x)
{
	int c = strcmp(vg, x->vg);

	return c != 0 ? c : strcmp(lv, x->lv);
}

/*
 * Binary search under d->lock: returns true and *ret_pos = index when found,
 * else false and *ret_pos = where it would be inserted.
 */
static bool lv_find(struct pk_lvmapd *d, const char *vg, const char *lv, size_t *ret_pos)
{
	size_t lo = 0;
	size_t hi = d->nlvs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = lv_cmp(vg, lv, d->lvs[mid]);

		if (c == 0) {
			*ret_pos = mid;
			return true;
		}
		if (c < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	*ret_pos = lo;
	return false;
}

static struct pk_lvmapd_lv *lv_get_locked(struct pk_lvmapd *d, const char *vg,
					  const char *lv)
{
	size_t pos;

	return lv_find(d, vg, lv, &pos) ? d->lvs[pos] : NULL;
}

static void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

int pk_lvmapd_load(struct pk_lvmapd *d, const struct pk_lvmap_table *table,
		   bool *replaced, struct pk_error *err)
{
	struct pk_lvmapd_lv *lv;
	struct map *m = NULL;
	struct map *old = NULL;
	size_t pos;
	int r;

	r = map_build(d, table, &m, err);
	if (r < 0) {
		return r;
	}
	pthread_mutex_lock(&d->lock);
	if (lv_find(d, table->vg, table->lv, &pos)) {
		lv = d->lvs[pos];
		old = lv->map;
		lv->map = m;
	} else {
		lv = pk_xcalloc(1, sizeof(*lv));
		memcpy(lv->vg, table->vg, sizeof(lv->vg));
		memcpy(lv->lv, table->lv, sizeof(lv->lv));
		lv->map = m;
		lv->uid = d->uid;
		lv->gid = d->gid;
		lv->mode = d->mode;
		d->lvs = pk_xgrow(d->lvs, &d->lvs_cap, d->nlvs + 1, sizeof(*d->lvs));
		memmove(&d->lvs[pos + 1], &d->lvs[pos], (d->nlvs - pos) * sizeof(*d->lvs));
		d->lvs[pos] = lv;
		d->nlvs++;
	}
	now(&lv->changed);
	pthread_mutex_unlock(&d->lock);
	if (replaced) {
		*replaced = old != NULL;
	}
	map_unref(old);
	return 0;
}

int pk_lvmapd_remove(struct pk_lvmapd *d, const char *vg, const char *lv,
		     struct pk_error *err)
{
	struct pk_lvmapd_lv *victim;
	struct timespec deadline;
	bool timed_out = d->busy_wait_ms == 0;
	size_t pos;
	unsigned opens;

	pk_clock_deadline(CLOCK_MONOTONIC, d->busy_wait_ms, &deadline);
	pthread_mutex_lock(&d->lock);
	for (;;) {
		if (!lv_find(d, vg, lv, &pos)) {
			pthread_mutex_unlock(&d->lock);
			return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "'%s/%s' is not loaded",
					    vg, lv);
		}
		victim = d->lvs[pos];
		opens = victim->opens;
		if (opens == 0 || timed_out) {
			break;
		}
		/* Look again after every wake-up, the timeout included. */
		timed_out = pthread_cond_timedwait(&d->closed, &d->lock, &deadline) ==
			    ETIMEDOUT;
	}
	if (opens > 0) {
		pthread_mutex_unlock(&d->lock);
		return pk_error_set(err, PK_E_IN_USE, EBUSY,
				    "'%s/%s' is open (%u open file%s); close it first", vg, lv,
				    opens, opens == 1 ? "" : "s");
	}
	memmove(&d->lvs[pos], &d->lvs[pos + 1], (d->nlvs - pos - 1) * sizeof(*d->lvs));
	d->nlvs--;
	pthread_mutex_unlock(&d->lock);
	map_unref(victim->map);
	free(victim);
	return 0;
}

int pk_lvmapd_command(struct pk_lvmapd *d, const char *cmd, size_t len,
		      enum pk_lvmap_op *ret_op, struct pk_lvmap_table *ret_table,
		      struct pk_error *err)
{
	struct pk_lvmap_table table;
	enum pk_lvmap_op op;
	int r;

	r = pk_lvmap_command_parse(cmd, len, &op, &table, err);
	if (r < 0) {
		return r;
	}
	if (op == PK_LVMAP_LOAD) {
		r = pk_lvmapd_load(d, &table, NULL, err);
	} else {
		r = pk_lvmapd_remove(d, table.vg, table.lv, err);
	}
	if (r < 0 || !ret_table) {
		pk_lvmap_table_release(&table);
	} else {
		*ret_table = table;
	}
	if (r == 0 && ret_op) {
		*ret_op = op;
	}
	return r;
}

/* ---- the name space ------------------------------------------------------ */

static void attr_fill_locked(const struct pk_lvmapd_lv *lv, struct pk_lvmapd_attr *a)
{
	a->size = lv->map->size;
	a->uid = lv->uid;
	a->gid = lv->gid;
	a->mode = lv->mode;
	a->changed = lv->changed;
}

int pk_lvmapd_stat(struct pk_lvmapd *d, const char *vg, const char *lv,
		   struct pk_lvmapd_attr *ret_attr)
{
	struct pk_lvmapd_lv *x;

	pthread_mutex_lock(&d->lock);
	x = lv_get_locked(d, vg, lv);
	if (x) {
		attr_fill_locked(x, ret_attr);
	}
	pthread_mutex_unlock(&d->lock);
	return x ? 0 : -ENOENT;
}

bool pk_lvmapd_vg_exists(struct pk_lvmapd *d, const char *vg)
{
	size_t pos;
	bool found;

	pthread_mutex_lock(&d->lock);
	/* "" sorts before every LV name: pos is the vg's first LV if any. */
	lv_find(d, vg, "", &pos);
	found = pos < d->nlvs && strcmp(d->lvs[pos]->vg, vg) == 0;
	pthread_mutex_unlock(&d->lock);
	return found;
}

int pk_lvmapd_list(struct pk_lvmapd *d, const char *vg, char ***ret_names,
		   size_t *ret_count)
{
	struct pk_strv names = PK_STRV_INIT;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nlvs; i++) {
		const struct pk_lvmapd_lv *x = d->lvs[i];
		const char *name;

		if (vg) {
			if (strcmp(x->vg, vg) != 0) {
				continue;
			}
			name = x->lv;
		} else {
			/* Sorted by vg: a vg repeats only on consecutive entries. */
			if (i > 0 && strcmp(d->lvs[i - 1]->vg, x->vg) == 0) {
				continue;
			}
			name = x->vg;
		}
		pk_strv_push(&names, name);
	}
	pthread_mutex_unlock(&d->lock);
	if (vg && names.n == 0) {
		return -ENOENT;
	}
	*ret_names = pk_strv_steal(&names, ret_count);
	return 0;
}

int pk_lvmapd_chown(struct pk_lvmapd *d, const char *vg, const char *lv, uid_t uid,
		    gid_t gid)
{
	struct pk_lvmapd_lv *x;

	pthread_mutex_lock(&d->lock);
	x = lv_get_locked(d, vg, lv);
	if (x) {
		if (uid != (uid_t)-1) {
			x->uid = uid;
		}
		if (gid != (gid_t)-1) {
			x->gid = gid;
		}
		now(&x->changed);
	}
	pthread_mutex_unlock(&d->lock);
	return x ? 0 : -ENOENT;
}

int pk_lvmapd_chmod(struct pk_lvmapd *d, const char *vg, const char *lv, mode_t mode)
{
	struct pk_lvmapd_lv *x;

	pthread_mutex_lock(&d->lock);
	x = lv_get_locked(d, vg, lv);
	if (x) {
		x->mode = mode & 0777;
		now(&x->changed);
	}
	pthread_mutex_unlock(&d->lock);
	return x ? 0 : -ENOENT;
}

int pk_lvmapd_truncate(struct pk_lvmapd *d, const char *vg, const char *lv,
		       uint64_t size, struct pk_error *err)
{
	struct pk_lvmapd_attr a;

	if (pk_lvmapd_stat(d, vg, lv, &a) < 0) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "'%s/%s' is not loaded", vg,
				    lv);
	}
	if (size == 0 || size == a.size) {
		return 0;
	}
	return pk_error_set(err, PK_E_UNSUPPORTED, EPERM,
			    "cannot resize '%s/%s' from %" PRIu64 " to %" PRIu64
			    " bytes: the size of a mapped LV is set by its table",
			    vg, lv, a.size, size);
}

/* ---- open files ---------------------------------------------------------- */

int pk_lvmapd_open(struct pk_lvmapd *d, const char *vg, const char *lv,
		   struct pk_lvmapd_lv **ret_lv)
{
	struct pk_lvmapd_lv *x;

	pthread_mutex_lock(&d->lock);
	x = lv_get_locked(d, vg, lv);
	if (x) {
		x->opens++;
	}
	pthread_mutex_unlock(&d->lock);
	if (!x) {
		return -ENOENT;
	}
	*ret_lv = x;
	return 0;
}

void pk_lvmapd_close(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv)
{
	pthread_mutex_lock(&d->lock);
	lv->opens--;
	if (lv->opens == 0) {
		pthread_cond_broadcast(&d->closed);
	}
	pthread_mutex_unlock(&d->lock);
}

void pk_lvmapd_fstat(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv,
		     struct pk_lvmapd_attr *ret_attr)
{
	pthread_mutex_lock(&d->lock);
	attr_fill_locked(lv, ret_attr);
	pthread_mutex_unlock(&d->lock);
}

/* The LV's current map, referenced; release with map_unref. */
static struct map *map_get(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv)
{
	struct map *m;

	pthread_mutex_lock(&d->lock);
	m = lv->map;
	atomic_fetch_add(&m->refs, 1);
	pthread_mutex_unlock(&d->lock);
	return m;
}

/* pread or pwrite all of len bytes; 0 or -errno (-EIO for an early EOF). */
static int pv_io(bool write, const struct map_pv *pv, void *buf, size_t len,
		 uint64_t off, const struct pk_lvmapd_lv *lv, struct pk_error *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (write) {
			n = pwrite(pv->fd, (char *)buf + done, len - done, (off_t)(off + done));
		} else {
			n = pread(pv->fd, (char *)buf + done, len - done, (off_t)(off + done));
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			return pk_error_set(err, PK_E_IO, e,
					    "%s of %zu bytes at byte %" PRIu64
					    " of pv '%s' for '%s/%s' failed: %s",
					    write ? "write" : "read", len - done, off + done,
					    pv->path, lv->vg, lv->lv,
					    n < 0 ? strerror(e) : "unexpected end of pv");
		}
		done += (size_t)n;
	}
	return 0;
}

static ssize_t lv_io(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv, bool write, void *buf,
		     size_t size, uint64_t off, struct pk_error *err)
{
	struct map *m = map_get(d, lv);
	size_t done = 0;
	ssize_t r;

	if (off >= m->size) {
		r = write ? pk_error_set(err, PK_E_NO_SPACE, ENOSPC,
					 "write at byte %" PRIu64 " is beyond the end of"
					 " '%s/%s' (%" PRIu64 " bytes)",
					 off, lv->vg, lv->lv, m->size)
			  : 0;
		goto out;
	}
	if (size > m->size - off) {
		size = (size_t)(m->size - off);
	}
	if (size > SSIZE_MAX) {
		size = SSIZE_MAX;
	}
	while (done < size) {
		uint64_t pv_byte;
		uint64_t seg_left;
		size_t n;
		int seg;
		int e;

		seg = pk_lvmap_table_lookup(&m->table, off + done, &pv_byte, &seg_left);
		if (seg < 0) {
			/* Cannot happen: off + done < size of a valid table. */
			r = pk_error_set(err, PK_E_INTERNAL, EIO,
					 "no segment of '%s/%s' holds byte %" PRIu64, lv->vg,
					 lv->lv, off + done);
			goto out;
		}
		n = size - done;
		if (n > seg_left) {
			n = (size_t)seg_left;
		}
		e = pv_io(write, &m->pvs[m->seg_pv[seg]], (char *)buf + done, n, pv_byte, lv,
			  err);
		if (e < 0) {
			r = e;
			goto out;
		}
		done += n;
	}
	r = (ssize_t)done;
out:
	map_unref(m);
	return r;
}

ssize_t pk_lvmapd_read(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv, void *buf,
		       size_t size, uint64_t off, struct pk_error *err)
{
	return lv_io(d, lv, false, buf, size, off, err);
}

ssize_t pk_lvmapd_write(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv, const void *buf,
			size_t size, uint64_t off, struct pk_error *err)
{
	/* lv_io only reads from buf when writing. */
	return lv_io(d, lv, true, (void *)buf, size, off, err);
}

int pk_lvmapd_sync(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv, bool datasync,
		   struct pk_error *err)
{
	struct map *m = map_get(d, lv);
	int r = 0;

	for (size_t i = 0; i < m->npvs; i++) {
		const struct map_pv *pv = &m->pvs[i];

		if ((datasync ? fdatasync(pv->fd) : fsync(pv->fd)) < 0) {
			r = pk_error_set(err, PK_E_IO, errno, "%s of pv '%s' for '%s/%s': %s",
					 datasync ? "fdatasync" : "fsync", pv->path, lv->vg,
					 lv->lv, strerror(errno));
			break;
		}
	}
	map_unref(m);
	return r;
}

int pk_lvmapd_fallocate(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv, int mode,
			uint64_t off, uint64_t len, struct pk_error *err)
{
	struct pk_lvmapd_attr a;

	pk_lvmapd_fstat(d, lv, &a);
	if ((mode == 0 || mode == FALLOC_FL_KEEP_SIZE) && off <= a.size &&
	    len <= a.size - off) {
		return 0;
	}
	return pk_error_set(err, PK_E_UNSUPPORTED, EOPNOTSUPP,
			    "fallocate mode 0x%x of %" PRIu64 " bytes at %" PRIu64
			    " on '%s/%s' (%" PRIu64 " bytes) is not supported",
			    (unsigned)mode, len, off, lv->vg, lv->lv, a.size);
}
