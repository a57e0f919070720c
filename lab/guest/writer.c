/*
 * pk-writer — the lab guest's disk writer (runs as a child of the guest's
 * /init; built statically by lab/guest-build, see docs/GUEST.md).
 *
 * Writes 4096-byte records (lab/writelog.h) round-robin over its disks,
 * each with O_DIRECT|O_SYNC, and after every write that returned success
 * prints exactly one line on stdout (the serial console):
 *
 *     PKACK <disk> <seq> <idx>
 *
 * Also: "PKREADY ..." once before the first write, "PKSTATS ..." every few
 * seconds, "PKERR <disk> <seq> <idx> <error>" for a failed write (not
 * acknowledged; the writer goes on), "PKFAIL <reason>" before exiting on a
 * start-up error. seq continues after the highest one found on the disks,
 * so it stays monotonic across guest restarts.
 *
 * It also runs on a host (for tests) against files: --dev-dir DIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/parse.h"
#include "lab/writelog.h"

#define MAX_DISKS 16
#define SCAN_CHUNK_BLOCKS 256

struct disk {
	char name[PK_WRITELOG_DISK_MAX + 1];
	int fd;
	uint64_t next_idx; /* sequential order: this disk's next block */
};

struct writer {
	struct disk disks[MAX_DISKS];
	size_t ndisks;
	uint64_t blocks;
	uint64_t interval_ms;
	uint64_t stats_s;
	uint64_t count; /* stop after this many writes; 0 = never */
	bool random_order;
	const char *dev_dir;
	uint64_t rng;
};

static void out_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One write(2) per line, so a line is never split by our own buffering. */
static void out_line(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	size_t len, off = 0;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return;
	}
	len = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 2;
	line[len++] = '\n';
	while (off < len) {
		ssize_t w = write(STDOUT_FILENO, line + off, len - off);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return;
		}
		off += (size_t)w;
	}
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static int add_disks(struct writer *w, const char *list)
{
	char copy[512];
	char *save = NULL;

	snprintf(copy, sizeof(copy), "%s", list);
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!pk_writelog_disk_name_valid(tok) || w->ndisks >= MAX_DISKS) {
			return -EINVAL;
		}
		snprintf(w->disks[w->ndisks].name, sizeof(w->disks[0].name), "%s", tok);
		w->disks[w->ndisks].fd = -1;
		w->ndisks++;
	}
	return w->ndisks ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pk-writer --disks vda[,vdb...] [--blocks N] [--interval-ms MS]\n"
		   "                 [--order random|seq] [--stats-s S] [--count N]\n"
		   "                 [--dev-dir DIR]\n");
}

/* Returns 0, or 2 after printing a usage error. */
static int parse_args(struct writer *w, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "disks", required_argument, NULL, 'd' },
		{ "blocks", required_argument, NULL, 'n' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "order", required_argument, NULL, 'o' },
		{ "stats-s", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'c' },
		{ "dev-dir", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "d:n:i:o:s:c:D:h", opts, NULL)) != -1) {
		int r = 0;

		switch (c) {
		case 'd':
			r = add_disks(w, optarg);
			break;
		case 'n':
			r = pk_parse_u64(optarg, &w->blocks);
			break;
		case 'i':
			r = pk_parse_u64(optarg, &w->interval_ms);
			break;
		case 'o':
			if (strcmp(optarg, "random") == 0 || strcmp(optarg, "seq") == 0) {
				w->random_order = strcmp(optarg, "random") == 0;
			} else {
				r = -EINVAL;
			}
			break;
		case 's':
			r = pk_parse_u64(optarg, &w->stats_s);
			break;
		case 'c':
			r = pk_parse_u64(optarg, &w->count);
			break;
		case 'D':
			w->dev_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
		if (r < 0) {
			fprintf(stderr, "pk-writer: invalid value '%s' for option -%c\n",
				optarg, c);
			return 2;
		}
	}
	if (optind != argc || w->ndisks == 0 || w->blocks == 0) {
		usage(stderr);
		return 2;
	}
	return 0;
}

/* Opens every disk and shrinks blocks to the smallest disk. */
static int open_disks(struct writer *w)
{
	for (size_t i = 0; i < w->ndisks; i++) {
		struct disk *d = &w->disks[i];
		char path[512];
		off_t size;
		uint64_t nblocks;

		snprintf(path, sizeof(path), "%s/%s", w->dev_dir, d->name);
		d->fd = open(path, O_RDWR | O_DIRECT | O_SYNC | O_CLOEXEC);
		if (d->fd < 0) {
			out_line("PKFAIL cannot open disk=%s path=%s: %s", d->name, path,
				 strerror(errno));
			return -errno;
		}
		size = lseek(d->fd, 0, SEEK_END);
		if (size < 0) {
			out_line("PKFAIL cannot size disk=%s: %s", d->name, strerror(errno));
			return -errno;
		}
		nblocks = (uint64_t)size / PK_WRITELOG_BLOCK_SIZE;
		if (nblocks < w->blocks) {
			out_line("PKWARN disk=%s holds only %" PRIu64 " blocks, using %" PRIu64
				 " instead of %" PRIu64,
				 d->name, nblocks, nblocks, w->blocks);
			w->blocks = nblocks;
		}
	}
	if (w->blocks == 0) {
		out_line("PKFAIL disks too small for one %d-byte block", PK_WRITELOG_BLOCK_SIZE);
		return -ENOSPC;
	}
	return 0;
}

/* The highest seq of any intact record of ours on the disks (0 if none). */
static int scan_max_seq(struct writer *w, uint8_t *chunk, uint64_t *ret_max)
{
	uint64_t max = 0;

	for (size_t i = 0; i < w->ndisks; i++) {
		struct disk *d = &w->disks[i];

		for (uint64_t b = 0; b < w->blocks; b += SCAN_CHUNK_BLOCKS) {
			uint64_t n = w->blocks - b < SCAN_CHUNK_BLOCKS ? w->blocks - b
								       : SCAN_CHUNK_BLOCKS;
			ssize_t r = pread(d->fd, chunk, n * PK_WRITELOG_BLOCK_SIZE,
					  (off_t)(b * PK_WRITELOG_BLOCK_SIZE));

			if (r < 0) {
				out_line("PKFAIL cannot read disk=%s: %s", d->name,
					 strerror(errno));
				return -errno;
			}
			for (uint64_t k = 0; k < (uint64_t)r / PK_WRITELOG_BLOCK_SIZE; k++) {
				const uint8_t *blk = chunk + k * PK_WRITELOG_BLOCK_SIZE;
				struct pk_writelog_record rec;

				if (pk_writelog_header_parse(blk, &rec) == 0 &&
				    rec.seq > max && pk_writelog_record_intact(blk, &rec)) {
					max = rec.seq;
				}
			}
		}
	}
	*ret_max = max;
	return 0;
}

static uint64_t next_idx(struct writer *w, struct disk *d)
{
	uint64_t idx;

	if (w->random_order) {
		return xorshift64(&w->rng) % w->blocks;
	}
	idx = d->next_idx;
	d->next_idx = (idx + 1) % w->blocks;
	return idx;
}

static int run(struct writer *w, uint8_t *buf, uint64_t seq)
{
	uint64_t writes = 0, errors = 0, period_writes = 0, max_lat = 0;
	uint64_t start = pk_clock_monotonic_us(), period_start = start;
	size_t di = 0;

	for (;;) {
		struct disk *d = &w->disks[di];
		uint64_t idx = next_idx(w, d);
		uint64_t t0, lat, now;
		ssize_t r;

		pk_writelog_record_format(buf, d->name, seq, idx);
		t0 = pk_clock_monotonic_us();
		r = pwrite(d->fd, buf, PK_WRITELOG_BLOCK_SIZE, (off_t)(idx * PK_WRITELOG_BLOCK_SIZE));
		lat = pk_clock_monotonic_us() - t0;
		if (r == PK_WRITELOG_BLOCK_SIZE) {
			out_line("PKACK %s %" PRIu64 " %" PRIu64, d->name, seq, idx);
			writes++;
			period_writes++;
		} else {
			out_line("PKERR %s %" PRIu64 " %" PRIu64 " %s", d->name, seq, idx,
				 r < 0 ? strerror(errno) : "short write");
			errors++;
			sleep_ms(100);
		}
		if (lat > max_lat) {
			max_lat = lat;
		}
		seq++;
		di = (di + 1) % w->ndisks;

		now = pk_clock_monotonic_us();
		if (w->stats_s && now - period_start >= w->stats_s * 1000000u) {
			double secs = (double)(now - period_start) / 1e6;

			out_line("PKSTATS seq=%" PRIu64 " writes=%" PRIu64 " errors=%" PRIu64
				 " rate=%.1f/s max_lat_ms=%.1f uptime_s=%.0f",
				 seq, writes, errors, (double)period_writes / secs,
				 (double)max_lat / 1e3, (double)(now - start) / 1e6);
			period_start = now;
			period_writes = 0;
			max_lat = 0;
		}
		if (w->count && writes + errors >= w->count) {
			return errors ? 1 : 0;
		}
		if (w->interval_ms) {
			sleep_ms(w->interval_ms);
		}
	}
}

int main(int argc, char **argv)
{
	struct writer w = {
		.blocks = 2048,
		.stats_s = 5,
		.random_order = true,
		.dev_dir = "/dev",
	};
	uint8_t *chunk = NULL;
	uint64_t max_seq = 0;
	int r;

	r = parse_args(&w, argc, argv);
	if (r) {
		return r;
	}
	if (open_disks(&w) < 0) {
		return 1;
	}
	if (posix_memalign((void **)&chunk, PK_WRITELOG_BLOCK_SIZE,
			   (size_t)SCAN_CHUNK_BLOCKS * PK_WRITELOG_BLOCK_SIZE)) {
		out_line("PKFAIL out of memory");
		return 1;
	}
	if (scan_max_seq(&w, chunk, &max_seq) < 0) {
		return 1;
	}
	w.rng = (pk_clock_monotonic_us() ^ (max_seq * UINT64_C(0x9e3779b97f4a7c15))) | 1;

	char names[MAX_DISKS * (PK_WRITELOG_DISK_MAX + 1) + 1] = "";
	size_t used = 0;
	for (size_t i = 0; i < w.ndisks; i++) {
		used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
					 i ? "," : "", w.disks[i].name);
	}
	out_line("PKREADY disks=%s blocks=%" PRIu64 " seq=%" PRIu64 " order=%s interval_ms=%" PRIu64,
		 names, w.blocks, max_seq + 1, w.random_order ? "random" : "seq",
		 w.interval_ms);
	r = run(&w, chunk, max_seq + 1);
	free(chunk);
	return r;
}
