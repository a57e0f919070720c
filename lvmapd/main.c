/*
 * pk-lvmapd — the lab's userspace linear mapper: a FUSE file system that
 * serves each loaded LV table as `<mount>/<vg>/<lv>` (see common/lvmap.h
 * for the control protocol, lvmapd/lvmapd.h for the mappings,
 * lvmapd/fs.h for the file system and docs/LVMAP.md for how it is
 * used).
 *
 * This file is start-up (options, mount, daemonizing) and shutdown only.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/xalloc.h"
#include "lvmapd/fs.h"
#include "lvmapd/lvmapd.h"

#define BUSY_WAIT_MS 1000

struct options {
	const char *mount;
	bool foreground;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	enum pk_log_level log_level;
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
	uint64_t v;

	if (pk_parse_u64(s, &v) == 0 && v < UINT32_MAX) {
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

static int serve(const struct options *o, const char *mount_dir, struct pk_lvmapd_fs *dm)
{
	char *fargv[] = {
		"pk-lvmapd",
		"-o",
		"allow_other,default_permissions,nosuid,nodev,noexec,"
		"fsname=pk-lvmapd,subtype=pk-lvmapd",
		NULL,
	};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	const struct fuse_operations *ops = pk_lvmapd_fs_ops();
	struct fuse_loop_config *loop_cfg = NULL;
	struct pk_error err;
	struct fuse *fuse;
	int ready_fd = -1;
	int r = 1;

	pk_error_clear(&err);
	fuse = fuse_new(&args, ops, sizeof(*ops), dm);
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
	struct pk_lvmapd_fs dm;
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
