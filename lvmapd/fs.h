/*
 * pk_lvmapd_fs — the FUSE file system of pk-lvmapd: the high-level libfuse3
 * operations that serve each LV of a struct pk_lvmapd (lvmapd/lvmapd.h) as
 * the file `<mount>/<vg>/<lv>`, below the directory `<mount>/<vg>`, and take
 * control commands (common/lvmap.h) written to `<mount>/.control`.
 *
 * Every LV file is opened with direct_io, and entries and attributes are
 * never cached by the kernel, so two mappers on the same pvs see each
 * other's writes at once and a reloaded (extended) LV shows its new size
 * at once. The operations log what they apply and what they refuse.
 *
 * For pk-lvmapd's start-up (lvmapd/main.c): pass pk_lvmapd_fs_ops()
 * to fuse_new() with a struct pk_lvmapd_fs as its private data; the struct
 * must outlive the FUSE session. Built with FUSE_USE_VERSION 314.
 */
#ifndef PK_LVMAPD_FS_H
#define PK_LVMAPD_FS_H

#include <sys/types.h>
#include <time.h>

#include "lvmapd/lvmapd.h"

struct fuse_operations;

/* What the operations reach through fuse_get_context()->private_data. */
struct pk_lvmapd_fs {
	struct pk_lvmapd *maps;
	uid_t uid; /* owner of the directories and of .control */
	gid_t gid;
	struct timespec started;
};

/* The operations table (static storage, never NULL). */
const struct fuse_operations *pk_lvmapd_fs_ops(void);

#endif
