/*
 * pk-lvmapd — the lab's userspace linear mapper: a FUSE file system that
 * serves each loaded LV table as `<mount>/<vg>/<lv>` (see common/lvmap.h
 * for the control protocol, common/lvmapd.h for the mappings and
 * docs/LVMAP.md for how it is used).
 *
 * This file is the FUSE side only: path parsing, the operations table,
 * start-up (options, mount, daemonizing) and shutdown. Every LV file is
 * opened with direct_io, and entries and attributes are never cached by the
 * kernel, so two mappers on the same pvs see each other's writes at once
 * and a reloaded (extended) LV shows its new size at once.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/lvmap.h"
#include "common/lvmapd.h"
#include "common/xalloc.h"

#define CONTROL_NAME ".control"
#define BUSY_WAIT_MS 1000

struct options {
	const char *mount;
	bool foreground;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	enum pk_log_level log_level;
};

/* What the operations reach through fuse_get_context()->private_data. */
struct daemon {
	struct pk_lvmapd *maps;
	uid_t uid; /* owner of the directories and of .control */
	gid_t gid;
	struct timespec started;
};

static struct daemon *daemon_get(void)
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

static void stat_dir(const struct daemon *dm, struct stat *st)
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
	struct daemon *dm = daemon_get();
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
			pk_lvmapd_names_free(names, count);
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
	struct daemon *dm = daemon_get();
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
	pk_lvmapd_names_free(names, count);
	return 0;
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct daemon *dm = daemon_get();
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
	struct daemon *dm = daemon_get();
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
	struct daemon *dm = daemon_get();
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
	struct daemon *dm = daemon_get();
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
	struct daemon *dm = daemon_get();
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

/* ---- start-up ------------------------------------------------------------ */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: pk-lvmapd --mount DIR [--foreground] [--uid N] [--gid N]\n"
		"                 [--mode 0660] [--log-level error|warn|info|debug]\n"
		"\n"
		"Serves LV tables loaded through DIR/.control as files DIR/<vg>/<lv>\n"
		"(the lab's replacement for device-mapper linear targets).\n"
		"  --mount DIR     mount point, created if missing\n"
		"  --foreground    do not daemonize (log to stderr either way)\n"
		"  --uid, --gid    owner of new LV files (number or name; default 0)\n"
		"  --mode          permission bits of new LV files (default 0660)\n"
		"  --log-level     default info\n");
}

static int parse_id(const char *s, bool group, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s != '\0' && *end == '\0' && errno == 0 && v < UINT32_MAX) {
		*ret = (unsigned)v;
		return 0;
	}
	if (group) {
		const struct group *g = getgrnam(s);

		if (g) {
			*ret = g->gr_gid;
			return 0;
		}
	} else {
		const struct passwd *p = getpwnam(s);

		if (p) {
			*ret = p->pw_uid;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "mount", required_argument, NULL, 'm' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "mode", required_argument, NULL, 'M' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned id;
	char *end;
	unsigned long mode;
	int c;

	memset(o, 0, sizeof(*o));
	o->mode = 0660;
	o->log_level = PK_LOG_INFO;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->mount = optarg;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'u':
		case 'g':
			if (parse_id(optarg, c == 'g', &id) < 0) {
				fprintf(stderr, "pk-lvmapd: unknown %s '%s'\n",
					c == 'g' ? "group" : "user", optarg);
				return -EINVAL;
			}
			if (c == 'u') {
				o->uid = (uid_t)id;
			} else {
				o->gid = (gid_t)id;
			}
			break;
		case 'M':
			errno = 0;
			mode = strtoul(optarg, &end, 8);
			if (*optarg == '\0' || *end != '\0' || errno != 0 || mode > 0777) {
				fprintf(stderr, "pk-lvmapd: --mode wants octal permission bits"
						" (0000-0777), not '%s'\n",
					optarg);
				return -EINVAL;
			}
			o->mode = (mode_t)mode;
			break;
		case 'l':
			if (pk_log_level_parse(optarg, &o->log_level) < 0) {
				fprintf(stderr, "pk-lvmapd: unknown log level '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc || !o->mount) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* mkdir -p; *ret_created tells whether the last component was made here. */
static int make_mount_dir(const char *dir, bool *ret_created, struct pk_error *err)
{
	char *copy = pk_xstrdup(dir);
	size_t len;
	int r = 0;

	*ret_created = false;
	len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/') {
		copy[--len] = '\0';
	}
	for (char *p = copy + 1; r == 0; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last) {
			continue;
		}
		*p = '\0';
		if (mkdir(copy, 0755) == 0) {
			*ret_created = last;
		} else if (errno != EEXIST) {
			r = pk_error_set(err, PK_E_IO, errno, "cannot create '%s': %s", copy,
					 strerror(errno));
		}
		if (last) {
			break;
		}
		*p = '/';
	}
	free(copy);
	return r;
}

/* The mount dir must be a directory that is not already a mount point. */
static int check_mount_dir(const char *dir, struct pk_error *err)
{
	char parent[PATH_MAX];
	struct stat st;
	struct stat pst;

	if (stat(dir, &st) < 0) {
		if (errno == ENOTCONN) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EBUSY,
					    "'%s' is a dead FUSE mount (its mapper exited);"
					    " run 'umount -l %s' first",
					    dir, dir);
		}
		return pk_error_set(err, PK_E_IO, errno, "cannot stat '%s': %s", dir,
				    strerror(errno));
	}
	if (!S_ISDIR(st.st_mode)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENOTDIR,
				    "'%s' is not a directory", dir);
	}
	snprintf(parent, sizeof(parent), "%s/..", dir);
	if (stat(parent, &pst) < 0) {
		return pk_error_set(err, PK_E_IO, errno, "cannot stat '%s': %s", parent,
				    strerror(errno));
	}
	if (st.st_dev != pst.st_dev || st.st_ino == pst.st_ino) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EBUSY,
				    "'%s' is already a mount point", dir);
	}
	return 0;
}

/*
 * Forks; the parent waits until the child reports that it serves the
 * mount, then exits 0 (or 1 if the child died first). The child leaves
 * the session and the cwd, and keeps stderr (the log) as it was given.
 * Returns the fd on which the child reports readiness, or -errno.
 */
static int daemonize(struct pk_error *err)
{
	int pfd[2];
	int null;
	pid_t pid;
	char c;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		return pk_error_set(err, PK_E_INTERNAL, errno, "pipe: %s", strerror(errno));
	}
	pid = fork();
	if (pid < 0) {
		return pk_error_set(err, PK_E_INTERNAL, errno, "fork: %s", strerror(errno));
	}
	if (pid > 0) {
		close(pfd[1]);
		_exit(read(pfd[0], &c, 1) == 1 ? 0 : 1);
	}
	close(pfd[0]);
	setsid();
	if (chdir("/") < 0) {
		return pk_error_set(err, PK_E_INTERNAL, errno, "chdir /: %s", strerror(errno));
	}
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (null > STDERR_FILENO) {
			close(null);
		}
	}
	return pfd[1];
}

static int serve(const struct options *o, const char *mount_dir, struct daemon *dm)
{
	char *fargv[] = {
		"pk-lvmapd",
		"-o",
		"allow_other,default_permissions,nosuid,nodev,noexec,"
		"fsname=pk-lvmapd,subtype=pk-lvmapd",
		NULL,
	};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_loop_config *loop_cfg = NULL;
	struct pk_error err;
	struct fuse *fuse;
	int ready_fd = -1;
	int r = 1;

	pk_error_clear(&err);
	fuse = fuse_new(&args, &lvmapd_ops, sizeof(lvmapd_ops), dm);
	if (!fuse) {
		pk_log_error("cannot create the FUSE file system mount='%s'", mount_dir);
		goto out;
	}
	if (fuse_mount(fuse, mount_dir) != 0) {
		pk_log_error("cannot mount mount='%s' (is /dev/fuse there, are we root?)",
			     mount_dir);
		goto out_destroy;
	}
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
		pk_log_error("cannot install signal handlers");
		goto out_unmount;
	}
	if (!o->foreground) {
		ready_fd = daemonize(&err);
		if (ready_fd < 0) {
			pk_log_error("cannot daemonize: %s", err.message);
			goto out_signals;
		}
	}
	pk_log_info("serving mount='%s' uid=%u gid=%u mode=%04o pid=%d", mount_dir,
		    (unsigned)o->uid, (unsigned)o->gid, (unsigned)o->mode, (int)getpid());
	loop_cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(loop_cfg, 0);
	fuse_loop_cfg_set_max_threads(loop_cfg, 16);
	if (ready_fd >= 0) {
		if (write(ready_fd, "1", 1) != 1) {
			pk_log_warn("cannot report readiness to the parent: %s",
				    strerror(errno));
		}
		close(ready_fd);
	}
	/* 0: unmounted from outside; > 0: the signal that stopped us. */
	r = fuse_loop_mt(fuse, loop_cfg);
	fuse_loop_cfg_destroy(loop_cfg);
	if (r < 0) {
		pk_log_error("FUSE loop failed mount='%s': %s", mount_dir, strerror(-r));
		r = 1;
	} else {
		pk_log_info("stopping mount='%s'%s%s", mount_dir, r > 0 ? " on " : "",
			    r > 0 ? strsignal(r) : "");
		r = 0;
	}
out_signals:
	fuse_remove_signal_handlers(fuse_get_session(fuse));
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	fuse_destroy(fuse);
out:
	fuse_opt_free_args(&args);
	return r;
}

int main(int argc, char **argv)
{
	struct pk_lvmapd_config cfg;
	struct options o;
	struct pk_error err;
	struct daemon dm;
	char *mount_dir = NULL;
	bool created = false;
	int r;

	if (parse_options(argc, argv, &o) < 0) {
		return 2;
	}
	pk_log_setup("pk-lvmapd", o.log_level);
	pk_error_clear(&err);
	if (make_mount_dir(o.mount, &created, &err) < 0 ||
	    check_mount_dir(o.mount, &err) < 0) {
		pk_log_error("cannot use mount='%s': %s", o.mount, err.message);
		r = 1;
		goto out;
	}
	mount_dir = realpath(o.mount, NULL);
	if (!mount_dir) {
		pk_log_error("cannot resolve mount='%s': %s", o.mount, strerror(errno));
		r = 1;
		goto out;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.uid = o.uid;
	cfg.gid = o.gid;
	cfg.mode = o.mode;
	cfg.mount_dir = mount_dir;
	cfg.busy_wait_ms = BUSY_WAIT_MS;
	memset(&dm, 0, sizeof(dm));
	dm.maps = pk_lvmapd_new(&cfg);
	dm.uid = getuid();
	dm.gid = getgid();
	clock_gettime(CLOCK_REALTIME, &dm.started);
	r = serve(&o, mount_dir, &dm);
	pk_lvmapd_free(dm.maps);
out:
	/* By its absolute path: a daemon has changed its cwd to "/". */
	if (created && rmdir(mount_dir ? mount_dir : o.mount) < 0) {
		pk_log_warn("cannot remove mount='%s' made at start: %s", o.mount,
			    strerror(errno));
	}
	free(mount_dir);
	return r;
}
