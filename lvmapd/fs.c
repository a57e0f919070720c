#define FUSE_USE_VERSION 314

#include "lvmapd/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/log.h"
#include "common/lvmap.h"
#include "common/strv.h"

#define CONTROL_NAME ".control"

static struct pk_lvmapd_fs *daemon_get(void)
{
	return fuse_get_context()->private_data;
}

/* ---- paths --------------------------------------------------------------- */

enum node_kind {
	NODE_NONE,
	NODE_ROOT,
	NODE_CONTROL,
	NODE_VG,
	NODE_LV,
};

struct node {
	enum node_kind kind;
	char vg[PK_LVMAP_NAME_MAX];
	char lv[PK_LVMAP_NAME_MAX];
};

/* Copies the component at *p (up to '/' or the end) into out; advances. */
static bool take_component(const char **p, char *out, size_t size)
{
	const char *slash = strchr(*p, '/');
	size_t n = slash ? (size_t)(slash - *p) : strlen(*p);

	if (n == 0 || n >= size) {
		return false;
	}
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	return pk_lvmap_name_valid(out);
}

/* "/", "/.control", "/<vg>", "/<vg>/<lv>"; the names are not looked up. */
static enum node_kind node_parse(const char *path, struct node *n)
{
	const char *p = path;

	n->kind = NODE_NONE;
	if (strcmp(path, "/") == 0) {
		n->kind = NODE_ROOT;
	} else if (strcmp(path, "/" CONTROL_NAME) == 0) {
		n->kind = NODE_CONTROL;
	} else if (*p++ == '/' && take_component(&p, n->vg, sizeof(n->vg))) {
		if (*p == '\0') {
			n->kind = NODE_VG;
		} else if (*p++ == '/' && take_component(&p, n->lv, sizeof(n->lv)) &&
			   *p == '\0') {
			n->kind = NODE_LV;
		}
	}
	return n->kind;
}

/* The LV handle of an open file, NULL for .control (fh 0). */
static struct pk_lvmapd_lv *handle_lv(const struct fuse_file_info *fi)
{
	return fi ? (struct pk_lvmapd_lv *)(uintptr_t)fi->fh : NULL;
}

/* ---- attributes ---------------------------------------------------------- */

static void stat_dir(const struct pk_lvmapd_fs *dm, struct stat *st)
{
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = dm->uid;
	st->st_gid = dm->gid;
	st->st_atim = st->st_mtim = st->st_ctim = dm->started;
}

static void stat_lv(const struct pk_lvmapd_attr *a, struct stat *st)
{
	st->st_mode = S_IFREG | a->mode;
	st->st_nlink = 1;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)(a->size / 512);
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = a->changed;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct pk_lvmapd_fs *dm = daemon_get();
	struct pk_lvmapd_lv *lv = handle_lv(fi);
	struct pk_lvmapd_attr a;
	char **names = NULL;
	size_t count = 0;
	struct node n;

	memset(st, 0, sizeof(*st));
	if (lv) {
		pk_lvmapd_fstat(dm->maps, lv, &a);
		stat_lv(&a, st);
		return 0;
	}
	switch (node_parse(path, &n)) {
	case NODE_ROOT:
		stat_dir(dm, st);
		/* "." and the parent's entry, plus one ".." per vg directory. */
		if (pk_lvmapd_list(dm->maps, NULL, &names, &count) == 0) {
			st->st_nlink = 2 + count;
			pk_strv_free(names);
		}
		return 0;
	case NODE_CONTROL:
		st->st_mode = S_IFREG | 0200;
		st->st_nlink = 1;
		st->st_uid = dm->uid;
		st->st_gid = dm->gid;
		/* stdio sizes its buffer from this: one command, one write(2). */
		st->st_blksize = PK_LVMAP_CMD_MAX;
		st->st_atim = st->st_mtim = st->st_ctim = dm->started;
		return 0;
	case NODE_VG:
		if (!pk_lvmapd_vg_exists(dm->maps, n.vg)) {
			return -ENOENT;
		}
		stat_dir(dm, st);
		return 0;
	case NODE_LV:
		if (pk_lvmapd_stat(dm->maps, n.vg, n.lv, &a) < 0) {
			return -ENOENT;
		}
		stat_lv(&a, st);
		return 0;
	case NODE_NONE:
		break;
	}
	return -ENOENT;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct pk_lvmapd_fs *dm = daemon_get();
	char **names = NULL;
	size_t count = 0;
	struct node n;
	int r;

	(void)off;
	(void)fi;
	(void)flags;
	switch (node_parse(path, &n)) {
	case NODE_ROOT:
		r = pk_lvmapd_list(dm->maps, NULL, &names, &count);
		break;
	case NODE_VG:
		r = pk_lvmapd_list(dm->maps, n.vg, &names, &count);
		break;
	case NODE_CONTROL:
	case NODE_LV:
		return -ENOTDIR;
	default:
		return -ENOENT;
	}
	if (r < 0) {
		return r;
	}
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (n.kind == NODE_ROOT) {
		filler(buf, CONTROL_NAME, NULL, 0, 0);
	}
	for (size_t i = 0; i < count; i++) {
		filler(buf, names[i], NULL, 0, 0);
	}
	pk_strv_free(names);
	return 0;
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct pk_lvmapd_fs *dm = daemon_get();
	struct node n;
	int r;

	(void)fi;
	if (node_parse(path, &n) != NODE_LV) {
		return n.kind == NODE_NONE ? -ENOENT : -EPERM;
	}
	r = pk_lvmapd_chown(dm->maps, n.vg, n.lv, uid, gid);
	if (r == 0) {
		pk_log_info("chown vg='%s' lv='%s' uid=%d gid=%d", n.vg, n.lv,
			    uid == (uid_t)-1 ? -1 : (int)uid, gid == (gid_t)-1 ? -1 : (int)gid);
	}
	return r;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct pk_lvmapd_fs *dm = daemon_get();
	struct node n;
	int r;

	(void)fi;
	if (node_parse(path, &n) != NODE_LV) {
		return n.kind == NODE_NONE ? -ENOENT : -EPERM;
	}
	r = pk_lvmapd_chmod(dm->maps, n.vg, n.lv, mode);
	if (r == 0) {
		pk_log_info("chmod vg='%s' lv='%s' mode=%04o", n.vg, n.lv,
			    (unsigned)(mode & 0777));
	}
	return r;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct pk_lvmapd_fs *dm = daemon_get();
	struct pk_error err;
	struct node n;
	int r;

	(void)fi;
	switch (node_parse(path, &n)) {
	case NODE_CONTROL:
		return 0; /* `> .control` truncates before writing */
	case NODE_LV:
		break;
	case NODE_NONE:
		return -ENOENT;
	default:
		return -EISDIR;
	}
	pk_error_clear(&err);
	r = pk_lvmapd_truncate(dm->maps, n.vg, n.lv, (uint64_t)size, &err);
	if (r < 0) {
		pk_log_warn("truncate refused vg='%s' lv='%s': %s", n.vg, n.lv, err.message);
	}
	return r;
}

static int op_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct node n;

	(void)tv;
	(void)fi;
	/* Times are the load time; touching a file is accepted and ignored. */
	return node_parse(path, &n) == NODE_NONE ? -ENOENT : 0;
}

/* The name space changes only through .control. */
static int op_mknod(const char *path, mode_t mode, dev_t rdev)
{
	(void)path;
	(void)mode;
	(void)rdev;
	return -EPERM;
}

static int op_mkdir(const char *path, mode_t mode)
{
	(void)path;
	(void)mode;
	return -EPERM;
}

static int op_unlink(const char *path)
{
	(void)path;
	return -EPERM;
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	(void)from;
	(void)to;
	(void)flags;
	return -EPERM;
}

/* ---- files --------------------------------------------------------------- */

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct pk_lvmapd_fs *dm = daemon_get();
	struct pk_lvmapd_lv *lv;
	struct node n;
	int r;

	switch (node_parse(path, &n)) {
	case NODE_CONTROL:
		if ((fi->flags & O_ACCMODE) != O_WRONLY) {
			return -EACCES;
		}
		fi->fh = 0;
		fi->direct_io = 1;
		fi->nonseekable = 1;
		return 0;
	case NODE_LV:
		break;
	case NODE_NONE:
		return -ENOENT;
	default:
		return -EISDIR;
	}
	r = pk_lvmapd_open(dm->maps, n.vg, n.lv, &lv);
	if (r < 0) {
		return r;
	}
	fi->fh = (uint64_t)(uintptr_t)lv;
	/* No page cache: every read and write reaches the pvs. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	pk_log_debug("open vg='%s' lv='%s' flags=0%o", n.vg, n.lv, (unsigned)fi->flags);
	return 0;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	struct pk_lvmapd_lv *lv = handle_lv(fi);

	(void)path;
	if (lv) {
		pk_lvmapd_close(daemon_get()->maps, lv);
		pk_log_debug("release path='%s'", path ? path : "?");
	}
	return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct pk_lvmapd_lv *lv = handle_lv(fi);
	struct pk_error err;
	ssize_t r;

	(void)path;
	if (!lv) {
		return -EBADF;
	}
	pk_error_clear(&err);
	r = pk_lvmapd_read(daemon_get()->maps, lv, buf, size, (uint64_t)off, &err);
	if (r < 0) {
		pk_log_error("read failed path='%s': %s", path ? path : "?", err.message);
	}
	return (int)r;
}

static int control_write(const char *buf, size_t size)
{
	struct pk_lvmapd_fs *dm = daemon_get();
	struct pk_lvmap_table table;
	struct pk_error err;
	enum pk_lvmap_op op = PK_LVMAP_LOAD;
	int r;

	pk_error_clear(&err);
	r = pk_lvmapd_command(dm->maps, buf, size, &op, &table, &err);
	if (r < 0) {
		pk_log_warn("control command refused (%s, pid=%d): %s", strerror(-r),
			    (int)fuse_get_context()->pid, err.message);
		return r;
	}
	if (op == PK_LVMAP_LOAD) {
		pk_log_info("loaded vg='%s' lv='%s' size=%" PRIu64 " segments=%zu",
			    table.vg, table.lv, pk_lvmap_table_size(&table), table.nsegments);
	} else {
		pk_log_info("removed vg='%s' lv='%s'", table.vg, table.lv);
	}
	pk_lvmap_table_release(&table);
	return (int)size;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct pk_lvmapd_lv *lv = handle_lv(fi);
	struct pk_error err;
	ssize_t r;

	if (!lv) {
		return control_write(buf, size);
	}
	pk_error_clear(&err);
	r = pk_lvmapd_write(daemon_get()->maps, lv, buf, size, (uint64_t)off, &err);
	if (r < 0 && r != -ENOSPC) {
		pk_log_error("write failed path='%s': %s", path ? path : "?", err.message);
	}
	return (int)r;
}

static int lv_sync(const char *path, bool datasync, struct fuse_file_info *fi)
{
	struct pk_lvmapd_lv *lv = handle_lv(fi);
	struct pk_error err;
	int r;

	if (!lv) {
		return 0;
	}
	pk_error_clear(&err);
	r = pk_lvmapd_sync(daemon_get()->maps, lv, datasync, &err);
	if (r < 0) {
		pk_log_error("sync failed path='%s': %s", path ? path : "?", err.message);
	}
	return r;
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	return lv_sync(path, false, fi);
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	return lv_sync(path, datasync != 0, fi);
}

static int op_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	struct pk_lvmapd_lv *lv = handle_lv(fi);
	struct pk_error err;
	int r;

	if (!lv) {
		return -EOPNOTSUPP;
	}
	pk_error_clear(&err);
	r = pk_lvmapd_fallocate(daemon_get()->maps, lv, mode, (uint64_t)off, (uint64_t)len,
				&err);
	if (r < 0) {
		pk_log_debug("fallocate refused path='%s': %s", path ? path : "?",
			     err.message);
	}
	return r;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* Nothing cached: sizes change on reload, data is shared with peers. */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->direct_io = 1;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	cfg->hard_remove = 1;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	pk_log_debug("fuse init proto=%u.%u max_write=%u max_read=%u", conn->proto_major,
		     conn->proto_minor, conn->max_write, conn->max_read);
	return fuse_get_context()->private_data;
}

static const struct fuse_operations lvmapd_ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_unlink,
	.rename = op_rename,
	.chmod = op_chmod,
	.chown = op_chown,
	.truncate = op_truncate,
	.utimens = op_utimens,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
};

const struct fuse_operations *pk_lvmapd_fs_ops(void)
{
	return &lvmapd_ops;
}
