/*
 * pk_lvmapd — the mappings pk-lvmapd serves, independent of FUSE.
 *
 * A struct pk_lvmapd holds the loaded LVs by "<vg>/<lv>". Each LV has a
 * current *map*: a validated table (common/lvmap.h) together with open fds
 * on its pvs. A map is immutable once built and reference-counted:
 *  - `load` builds the new map (opens and checks the pvs) without holding
 *    any lock, then swaps it in under the registry lock; the old map is
 *    freed (its pv fds closed) when the last I/O that took it finishes.
 *    So every request uses exactly one table from start to end, and a
 *    reload (an LV extend) is atomic for open files;
 *  - I/O takes a reference to the LV's current map under the lock, then
 *    runs pread/pwrite on the pvs without it.
 * An LV open through pk_lvmapd_open() cannot be removed (EBUSY) until every
 * such open is matched by pk_lvmapd_close(); so the struct pk_lvmapd_lv
 * pointer an open returns stays valid until its close.
 *
 * Owner, group and mode of an LV file live here in memory (set from the
 * defaults when the LV is first loaded, kept across reloads, forgotten on
 * remove).
 *
 * Threads: every function may be called from any thread at once, except
 * pk_lvmapd_new/_free. Functions return 0 (or a byte count) or -errno and
 * fill err; they do not log.
 */
#ifndef PK_LVMAPD_H
#define PK_LVMAPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/error.h"
#include "common/lvmap.h"

struct pk_lvmapd;
struct pk_lvmapd_lv;

struct pk_lvmapd_config {
	uid_t uid;   /* owner of a newly loaded LV file */
	gid_t gid;
	mode_t mode; /* permission bits of a newly loaded LV file */
	/*
	 * Canonical path of the mount point, or NULL. A pv that resolves to a
	 * path under it is refused (the mapper would call into itself).
	 */
	const char *mount_dir;
	/*
	 * How long a remove waits for the LV's last close before failing with
	 * EBUSY. A FUSE release arrives after close(2) has returned, so a
	 * remove right after the last close would otherwise race it.
	 */
	unsigned busy_wait_ms;
};

struct pk_lvmapd_attr {
	uint64_t size;
	uid_t uid;
	gid_t gid;
	mode_t mode;             /* permission bits only */
	struct timespec changed; /* last load, chown or chmod */
};

/* Never NULL (aborts on OOM). cfg is copied. Free with pk_lvmapd_free. */
struct pk_lvmapd *pk_lvmapd_new(const struct pk_lvmapd_config *cfg);
/* Frees every LV and map; no other call may be running. NULL-safe. */
void pk_lvmapd_free(struct pk_lvmapd *d);

/*
 * Parses and applies one control command (see common/lvmap.h). On success
 * *ret_op / ret_table (may be NULL) describe what was done: for a load,
 * ret_table->nsegments and the size; the caller releases ret_table.
 */
int pk_lvmapd_command(struct pk_lvmapd *d, const char *cmd, size_t len,
		      enum pk_lvmap_op *ret_op, struct pk_lvmap_table *ret_table,
		      struct pk_error *err);

/*
 * Loads or replaces "<table->vg>/<table->lv>". The table is validated
 * again, its pvs opened and their sizes checked. *replaced (may be NULL)
 * tells whether an existing LV was refreshed. The table is not consumed.
 */
int pk_lvmapd_load(struct pk_lvmapd *d, const struct pk_lvmap_table *table,
		   bool *replaced, struct pk_error *err);

/*
 * Drops an LV: -ENOENT if not loaded, -EBUSY if it is still open after
 * busy_wait_ms.
 */
int pk_lvmapd_remove(struct pk_lvmapd *d, const char *vg, const char *lv,
		     struct pk_error *err);

/* ---- the name space ------------------------------------------------------ */

/* Attributes of a loaded LV, or -ENOENT. */
int pk_lvmapd_stat(struct pk_lvmapd *d, const char *vg, const char *lv,
		   struct pk_lvmapd_attr *ret_attr);

/* True when at least one LV of vg is loaded (the vg directory exists). */
bool pk_lvmapd_vg_exists(struct pk_lvmapd *d, const char *vg);

/*
 * Names, in order: of the vgs when vg is NULL, else of vg's LVs (-ENOENT
 * if the vg has none). *ret_names is a common/strv.h array (NULL when
 * empty), free with pk_strv_free.
 */
int pk_lvmapd_list(struct pk_lvmapd *d, const char *vg, char ***ret_names,
		   size_t *ret_count);

/* (uid_t)-1 / (gid_t)-1 leave that id unchanged. -ENOENT if not loaded. */
int pk_lvmapd_chown(struct pk_lvmapd *d, const char *vg, const char *lv, uid_t uid,
		    gid_t gid);
/* Keeps the permission bits (0777) of mode. -ENOENT if not loaded. */
int pk_lvmapd_chmod(struct pk_lvmapd *d, const char *vg, const char *lv, mode_t mode);

/*
 * A truncate request: an LV file keeps its size. Truncating to its size is
 * a no-op, and so is truncating to 0 (which `qemu-img create` and
 * O_TRUNC issue on regular files before writing; like on a block device,
 * no data is discarded). Any other size: -EPERM.
 */
int pk_lvmapd_truncate(struct pk_lvmapd *d, const char *vg, const char *lv,
		       uint64_t size, struct pk_error *err);

/* ---- open files ---------------------------------------------------------- */

/* Opens a loaded LV (-ENOENT otherwise); pair with pk_lvmapd_close. */
int pk_lvmapd_open(struct pk_lvmapd *d, const char *vg, const char *lv,
		   struct pk_lvmapd_lv **ret_lv);
void pk_lvmapd_close(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv);

/* Attributes of an open LV. */
void pk_lvmapd_fstat(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv,
		     struct pk_lvmapd_attr *ret_attr);

/*
 * Reads up to size bytes at off through the current table, splitting at
 * segment ends. Returns the bytes read: fewer than size only at the end of
 * the LV, 0 at or beyond it; or -errno (-EIO ...) with err naming the pv.
 */
ssize_t pk_lvmapd_read(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv, void *buf,
		       size_t size, uint64_t off, struct pk_error *err);

/*
 * Writes like pk_lvmapd_read reads. A write starting at or beyond the end
 * fails with -ENOSPC; one crossing the end is cut there (a short count).
 */
ssize_t pk_lvmapd_write(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv, const void *buf,
			size_t size, uint64_t off, struct pk_error *err);

/* fsync (fdatasync if datasync) every pv of the current table. */
int pk_lvmapd_sync(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv, bool datasync,
		   struct pk_error *err);

/*
 * A fallocate request. Modes 0 and FALLOC_FL_KEEP_SIZE inside the LV are
 * no-ops (the space exists); anything else (beyond the end, punch hole,
 * zero range ...) is -EOPNOTSUPP, so callers fall back to writing.
 */
int pk_lvmapd_fallocate(struct pk_lvmapd *d, struct pk_lvmapd_lv *lv, int mode,
			uint64_t off, uint64_t len, struct pk_error *err);

#endif
