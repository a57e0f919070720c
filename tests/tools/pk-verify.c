/*
 * pk-verify — checks that every write the lab guest saw acknowledged is
 * intact on its disk images (see docs/GUEST.md, lab/writelog.h).
 *
 *   pk-verify --log SERIAL_LOG --disk vda=IMAGE [--disk vdb=IMAGE]
 *             [--blocks N] [--max-report K] [--allow-empty]
 *
 * IMAGE is a raw file or block device, or a qcow2 image (a chain is followed
 * through its backing files): qcow2 is flattened first with
 * `qemu-img convert -O raw` into a temporary file.
 *
 * Prints one summary line per disk, "vda: 1234 acknowledged blocks
 * verified, 0 lost", preceded by one line per lost block (at most
 * --max-report per disk). Exit status: 0 nothing lost, 1 something lost,
 * 2 usage or I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/parse.h"
#include "common/xalloc.h"
#include "lab/writelog.h"

#define MAX_DISKS 16
#define READ_CHUNK_BLOCKS 256

extern char **environ;

struct verify_disk {
	char name[PK_WRITELOG_DISK_MAX + 1];
	const char *image;
};

struct verify_opts {
	const char *log;
	struct verify_disk disks[MAX_DISKS];
	size_t ndisks;
	uint64_t blocks; /* 0 = take it from the log's PKREADY line */
	uint64_t max_report;
	bool allow_empty;
};

struct verify_result {
	uint64_t verified; /* acknowledged blocks checked */
	uint64_t newer;    /* of which hold a later, unacknowledged record */
	uint64_t lost;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pk-verify --log SERIAL_LOG --disk NAME=IMAGE [--disk NAME=IMAGE ...]\n"
		"                 [--blocks N] [--max-report K] [--allow-empty]\n"
		"\n"
		"Checks that every block the guest acknowledged (PKACK lines in\n"
		"SERIAL_LOG) holds that write or a later one. IMAGE: raw file, block\n"
		"device or qcow2 (flattened with qemu-img convert).\n"
		"Exit: 0 nothing lost, 1 acknowledged writes lost, 2 usage/IO error.\n");
}

static int parse_disk_arg(struct verify_opts *o, char *arg, struct pk_error *err)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq[1] == '\0') {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "--disk '%s': expected NAME=IMAGE, e.g. vda=/tmp/vda.qcow2",
				    arg);
	}
	*eq = '\0';
	if (!pk_writelog_disk_name_valid(arg)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "--disk: invalid disk name '%s' (1-%d of [A-Za-z0-9_-])",
				    arg, PK_WRITELOG_DISK_MAX);
	}
	if (o->ndisks >= MAX_DISKS) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "--disk: at most %d disks", MAX_DISKS);
	}
	for (size_t i = 0; i < o->ndisks; i++) {
		if (strcmp(o->disks[i].name, arg) == 0) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "--disk: disk '%s' given twice", arg);
		}
	}
	snprintf(o->disks[o->ndisks].name, sizeof(o->disks[0].name), "%s", arg);
	o->disks[o->ndisks].image = eq + 1;
	o->ndisks++;
	return 0;
}

static int parse_args(struct verify_opts *o, int argc, char **argv, struct pk_error *err)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "disk", required_argument, NULL, 'd' },
		{ "blocks", required_argument, NULL, 'n' },
		{ "max-report", required_argument, NULL, 'm' },
		{ "allow-empty", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r;

	while ((c = getopt_long(argc, argv, "l:d:n:m:eh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->log = optarg;
			break;
		case 'd':
			r = parse_disk_arg(o, optarg, err);
			if (r < 0) {
				return r;
			}
			break;
		case 'n':
			if (pk_parse_u64(optarg, &o->blocks) < 0 || o->blocks == 0) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						    "--blocks '%s': expected a positive number",
						    optarg);
			}
			break;
		case 'm':
			if (pk_parse_u64(optarg, &o->max_report) < 0) {
				return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
						    "--max-report '%s': expected a number", optarg);
			}
			break;
		case 'e':
			o->allow_empty = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "unknown option (see --help)");
		}
	}
	if (optind != argc) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "unexpected argument '%s'", argv[optind]);
	}
	if (!o->log || o->ndisks == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "--log and at least one --disk are required");
	}
	return 0;
}

/* True when path starts with the qcow2 magic "QFI\xfb". */
static int image_is_qcow2(const char *path, bool *ret, struct pk_error *err)
{
	unsigned char magic[4];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		return pk_error_set(err, PK_E_IO, errno, "cannot open image '%s': %s", path,
				    strerror(errno));
	}
	n = pread(fd, magic, sizeof(magic), 0);
	if (n < 0) {
		int e = errno;

		close(fd);
		return pk_error_set(err, PK_E_IO, e, "cannot read image '%s': %s", path,
				    strerror(e));
	}
	close(fd);
	*ret = n == 4 && memcmp(magic, "QFI\xfb", 4) == 0;
	return 0;
}

/*
 * Flattens the qcow2 chain at image into a new temporary raw file; on
 * success *ret_path (caller frees and unlinks) names it.
 */
static int qcow2_flatten(const char *image, char **ret_path, struct pk_error *err)
{
	const char *tmpdir = getenv("TMPDIR");
	char *path = pk_xasprintf("%s/pk-verify.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	char *argv[] = { "qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw",
			 (char *)image, path, NULL };
	pid_t pid;
	int fd, r, status;

	fd = mkstemp(path);
	if (fd < 0) {
		r = pk_error_set(err, PK_E_IO, errno, "cannot create a temporary file '%s': %s",
				 path, strerror(errno));
		free(path);
		return r;
	}
	close(fd);
	r = posix_spawnp(&pid, "qemu-img", NULL, NULL, argv, environ);
	if (r != 0) {
		r = pk_error_set(err, PK_E_IO, r, "cannot run qemu-img: %s (is qemu-utils installed?)",
				 strerror(r));
		goto fail;
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			r = pk_error_set(err, PK_E_INTERNAL, errno, "waitpid(qemu-img): %s",
					 strerror(errno));
			goto fail;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		r = pk_error_set(err, PK_E_IO, EIO,
				 "'qemu-img convert -f qcow2 -O raw %s' failed (%s %d): see its"
				 " message above",
				 image, WIFEXITED(status) ? "exit status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		goto fail;
	}
	*ret_path = path;
	return 0;
fail:
	unlink(path);
	free(path);
	return r;
}

/* Reads up to n blocks at block b; blocks past the end come back as zeros. */
static int read_blocks(int fd, const char *path, uint8_t *buf, uint64_t b, uint64_t n,
		       uint64_t *ret_short, struct pk_error *err)
{
	size_t want = (size_t)n * PK_WRITELOG_BLOCK_SIZE;
	size_t got = 0;

	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got,
				  (off_t)(b * PK_WRITELOG_BLOCK_SIZE + got));

		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			return pk_error_set(err, PK_E_IO, errno,
					    "cannot read '%s' at block %" PRIu64 ": %s", path,
					    b + got / PK_WRITELOG_BLOCK_SIZE, strerror(errno));
		}
		if (r == 0) {
			break;
		}
		got += (size_t)r;
	}
	memset(buf + got, 0, want - got);
	*ret_short = (want - got) / PK_WRITELOG_BLOCK_SIZE;
	return 0;
}

static int verify_raw(const struct verify_opts *o, const struct pk_writelog_acks *acks,
		      const struct verify_disk *vd, const char *raw,
		      struct verify_result *res, struct pk_error *err)
{
	uint64_t end = pk_writelog_acks_block_end(acks, vd->name);
	uint64_t past_end = 0;
	uint8_t *buf = pk_xmalloc((size_t)READ_CHUNK_BLOCKS * PK_WRITELOG_BLOCK_SIZE);
	int fd = open(raw, O_RDONLY | O_CLOEXEC);
	int r = 0;

	if (fd < 0) {
		r = pk_error_set(err, PK_E_IO, errno, "cannot open '%s': %s", raw,
				 strerror(errno));
		goto out;
	}
	for (uint64_t b = 0; b < end; b += READ_CHUNK_BLOCKS) {
		uint64_t n = end - b < READ_CHUNK_BLOCKS ? end - b : READ_CHUNK_BLOCKS;
		uint64_t short_blocks = 0;

		r = read_blocks(fd, raw, buf, b, n, &short_blocks, err);
		if (r < 0) {
			goto out;
		}
		for (uint64_t k = 0; k < n; k++) {
			struct pk_writelog_record found = { 0 };
			enum pk_writelog_verdict v;
			uint64_t acked;
			char why[256];

			if (pk_writelog_acks_get(acks, vd->name, b + k, &acked) < 0) {
				continue;
			}
			if (k >= n - short_blocks) {
				past_end++;
			}
			v = pk_writelog_block_check(buf + k * PK_WRITELOG_BLOCK_SIZE, vd->name,
						    b + k, acked, &found);
			res->verified++;
			if (v == PK_WRITELOG_OK_NEWER) {
				res->newer++;
			}
			if (pk_writelog_verdict_ok(v)) {
				continue;
			}
			res->lost++;
			if (res->lost <= o->max_report) {
				pk_writelog_verdict_describe(v, acked, &found, why, sizeof(why));
				printf("%s: block %" PRIu64 " lost: %s\n", vd->name, b + k, why);
			}
		}
	}
	if (res->lost > o->max_report) {
		printf("%s: ... %" PRIu64 " more lost blocks not listed (--max-report)\n",
		       vd->name, res->lost - o->max_report);
	}
	if (past_end) {
		fprintf(stderr,
			"pk-verify: %s: image '%s' ends before %" PRIu64
			" acknowledged blocks (counted as lost): wrong image?\n",
			vd->name, vd->image, past_end);
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	free(buf);
	return r;
}

static int verify_disk(const struct verify_opts *o, const struct pk_writelog_acks *acks,
		       const struct verify_disk *vd, struct verify_result *res,
		       struct pk_error *err)
{
	char *tmp = NULL;
	bool qcow2 = false;
	int r;

	r = image_is_qcow2(vd->image, &qcow2, err);
	if (r < 0) {
		return r;
	}
	if (qcow2) {
		r = qcow2_flatten(vd->image, &tmp, err);
		if (r < 0) {
			return r;
		}
	}
	r = verify_raw(o, acks, vd, tmp ? tmp : vd->image, res, err);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	return r;
}

/* Checks the log against the options before any image is read. */
static int check_log(const struct verify_opts *o, const struct pk_writelog_acks *acks,
		     struct pk_error *err)
{
	struct pk_writelog_ack_stats st;
	uint64_t blocks = o->blocks;

	pk_writelog_acks_stats(acks, &st);
	if (st.malformed) {
		fprintf(stderr,
			"pk-verify: note: %" PRIu64 " mangled PKACK lines in '%s' ignored"
			" (console output interleaved)\n",
			st.malformed, o->log);
	}
	if (!blocks) {
		blocks = st.ready_blocks;
	}
	for (size_t i = 0; i < o->ndisks; i++) {
		const char *name = o->disks[i].name;
		uint64_t end = pk_writelog_acks_block_end(acks, name);

		if (end == 0 && !o->allow_empty) {
			return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
					    "no acknowledged write of disk '%s' in '%s' (%" PRIu64
					    " PKACK lines, %" PRIu64 " PKREADY): wrong log or disk"
					    " name? (--allow-empty accepts this)",
					    name, o->log, st.acks, st.ready);
		}
		if (blocks && end > blocks) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
					    "disk '%s': block %" PRIu64 " acknowledged but the guest"
					    " cycles over %" PRIu64 " blocks: wrong --blocks or log?",
					    name, end - 1, blocks);
		}
	}
	for (size_t i = 0; i < pk_writelog_acks_disk_count(acks); i++) {
		const char *name = pk_writelog_acks_disk_name(acks, i);
		bool given = false;

		for (size_t k = 0; k < o->ndisks; k++) {
			given = given || strcmp(o->disks[k].name, name) == 0;
		}
		if (!given) {
			fprintf(stderr,
				"pk-verify: note: disk '%s' has %" PRIu64 " acknowledged blocks"
				" but no --disk %s=IMAGE: not checked\n",
				name, pk_writelog_acks_block_count(acks, name), name);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct verify_opts o = { .max_report = 20 };
	struct pk_writelog_acks *acks = NULL;
	struct pk_error err;
	uint64_t total_lost = 0;
	int status = 2;

	pk_error_clear(&err);
	if (parse_args(&o, argc, argv, &err) < 0) {
		fprintf(stderr, "pk-verify: %s\n", err.message);
		usage(stderr);
		return 2;
	}
	acks = pk_writelog_acks_new();
	if (pk_writelog_acks_load(acks, o.log, &err) < 0 || check_log(&o, acks, &err) < 0) {
		goto out;
	}
	for (size_t i = 0; i < o.ndisks; i++) {
		struct verify_result res = { 0 };

		if (verify_disk(&o, acks, &o.disks[i], &res, &err) < 0) {
			pk_error_prefix(&err, "disk '%s'", o.disks[i].name);
			goto out;
		}
		printf("%s: %" PRIu64 " acknowledged blocks verified, %" PRIu64 " lost\n",
		       o.disks[i].name, res.verified, res.lost);
		fflush(stdout);
		total_lost += res.lost;
	}
	status = total_lost ? 1 : 0;
out:
	if (status == 2) {
		fprintf(stderr, "pk-verify: %s\n", err.message);
	}
	pk_writelog_acks_free(acks);
	return status;
}
