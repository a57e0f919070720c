#include "lab/writelog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/xalloc.h"

/*
 * Limits that keep a mangled log line from asking for absurd memory:
 * 2^24 blocks of 4 KiB is a 64 GiB region, far more than the guest uses.
 */
#define ACK_IDX_LIMIT (UINT64_C(1) << 24)
#define ACK_DISK_LIMIT 64

static const char header_magic[] = "PKW1 disk=";

bool pk_writelog_disk_name_valid(const char *name)
{
	size_t n = 0;

	if (!name) {
		return false;
	}
	for (; name[n]; n++) {
		char c = name[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-';

		if (!ok || n >= PK_WRITELOG_DISK_MAX) {
			return false;
		}
	}
	return n > 0;
}

/* FNV-1a: spreads the header into the pattern's seed. */
static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

int pk_writelog_record_format(uint8_t *buf, const char *disk, uint64_t seq,
			      uint64_t idx)
{
	char header[PK_WRITELOG_HEADER_SIZE];
	uint64_t state;
	int n;

	if (!pk_writelog_disk_name_valid(disk)) {
		return -EINVAL;
	}
	n = snprintf(header, sizeof(header), "%s%s seq=%" PRIu64 " idx=%" PRIu64 "\n",
		     header_magic, disk, seq, idx);
	/* 10 + 31 + 5 + 20 + 5 + 20 + 1 < 128: never truncated. */
	memset(buf, 0, PK_WRITELOG_HEADER_SIZE);
	memcpy(buf, header, (size_t)n);

	state = fnv1a64(buf, (size_t)n);
	for (size_t off = PK_WRITELOG_HEADER_SIZE; off < PK_WRITELOG_BLOCK_SIZE; off += 8) {
		uint64_t x = splitmix64(&state);

		for (size_t b = 0; b < 8; b++) {
			buf[off + b] = (uint8_t)(x >> (8 * b));
		}
	}
	return 0;
}

/* The decimal number at s[*pos..len), advancing *pos past it; false when
 * there is none or it exceeds 64 bits. */
static bool number_at(const char *s, size_t len, size_t *pos, uint64_t *ret)
{
	size_t used = 0;

	if (pk_parse_u64_prefix(s + *pos, len - *pos, ret, &used) < 0) {
		return false;
	}
	*pos += used;
	return true;
}

static bool parse_disk(const char *s, size_t len, size_t *pos, char stop,
		       char out[PK_WRITELOG_DISK_MAX + 1])
{
	size_t start = *pos;
	size_t i = start;

	while (i < len && s[i] != stop) {
		i++;
	}
	if (i == len || i - start == 0 || i - start > PK_WRITELOG_DISK_MAX) {
		return false;
	}
	memcpy(out, s + start, i - start);
	out[i - start] = '\0';
	if (!pk_writelog_disk_name_valid(out)) {
		return false;
	}
	*pos = i;
	return true;
}

static bool expect(const char *s, size_t len, size_t *pos, const char *lit)
{
	size_t n = strlen(lit);

	if (len - *pos < n || memcmp(s + *pos, lit, n) != 0) {
		return false;
	}
	*pos += n;
	return true;
}

int pk_writelog_header_parse(const uint8_t *buf, struct pk_writelog_record *ret_rec)
{
	const char *s = (const char *)buf;
	size_t len = PK_WRITELOG_HEADER_SIZE;
	struct pk_writelog_record rec;
	size_t pos = 0;

	if (!expect(s, len, &pos, header_magic) ||
	    !parse_disk(s, len, &pos, ' ', rec.disk) ||
	    !expect(s, len, &pos, " seq=") || !number_at(s, len, &pos, &rec.seq) ||
	    !expect(s, len, &pos, " idx=") || !number_at(s, len, &pos, &rec.idx) ||
	    !expect(s, len, &pos, "\n")) {
		return -EBADMSG;
	}
	*ret_rec = rec;
	return 0;
}

bool pk_writelog_record_intact(const uint8_t *buf, const struct pk_writelog_record *rec)
{
	uint8_t expected[PK_WRITELOG_BLOCK_SIZE];

	if (pk_writelog_record_format(expected, rec->disk, rec->seq, rec->idx) < 0) {
		return false;
	}
	return memcmp(buf, expected, sizeof(expected)) == 0;
}

bool pk_writelog_verdict_ok(enum pk_writelog_verdict v)
{
	return v == PK_WRITELOG_OK || v == PK_WRITELOG_OK_NEWER;
}

static bool all_zero(const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i]) {
			return false;
		}
	}
	return true;
}

enum pk_writelog_verdict pk_writelog_block_check(const uint8_t *buf, const char *disk,
						 uint64_t idx, uint64_t acked_seq,
						 struct pk_writelog_record *ret_found)
{
	struct pk_writelog_record found;

	if (pk_writelog_header_parse(buf, &found) < 0) {
		return all_zero(buf, PK_WRITELOG_BLOCK_SIZE) ? PK_WRITELOG_LOST_ZERO
							     : PK_WRITELOG_LOST_GARBAGE;
	}
	if (ret_found) {
		*ret_found = found;
	}
	if (!pk_writelog_record_intact(buf, &found)) {
		return PK_WRITELOG_LOST_DAMAGED;
	}
	if (strcmp(found.disk, disk) != 0 || found.idx != idx) {
		return PK_WRITELOG_LOST_MISPLACED;
	}
	if (found.seq < acked_seq) {
		return PK_WRITELOG_LOST_OLDER;
	}
	return found.seq == acked_seq ? PK_WRITELOG_OK : PK_WRITELOG_OK_NEWER;
}

void pk_writelog_verdict_describe(enum pk_writelog_verdict v, uint64_t acked_seq,
				  const struct pk_writelog_record *found, char *out,
				  size_t out_size)
{
	switch (v) {
	case PK_WRITELOG_OK:
		snprintf(out, out_size, "holds acknowledged seq %" PRIu64, acked_seq);
		break;
	case PK_WRITELOG_OK_NEWER:
		snprintf(out, out_size,
			 "acknowledged seq %" PRIu64 ", holds later seq %" PRIu64,
			 acked_seq, found->seq);
		break;
	case PK_WRITELOG_LOST_OLDER:
		snprintf(out, out_size,
			 "acknowledged seq %" PRIu64 ", found older seq %" PRIu64
			 " of the same block",
			 acked_seq, found->seq);
		break;
	case PK_WRITELOG_LOST_MISPLACED:
		snprintf(out, out_size,
			 "acknowledged seq %" PRIu64 ", found the record of disk=%s"
			 " idx=%" PRIu64 " seq=%" PRIu64 " (misplaced)",
			 acked_seq, found->disk, found->idx, found->seq);
		break;
	case PK_WRITELOG_LOST_DAMAGED:
		snprintf(out, out_size,
			 "acknowledged seq %" PRIu64 ", found a damaged record (header"
			 " disk=%s idx=%" PRIu64 " seq=%" PRIu64 ", body differs)",
			 acked_seq, found->disk, found->idx, found->seq);
		break;
	case PK_WRITELOG_LOST_ZERO:
		snprintf(out, out_size,
			 "acknowledged seq %" PRIu64 ", found only zeros", acked_seq);
		break;
	case PK_WRITELOG_LOST_GARBAGE:
	default:
		snprintf(out, out_size,
			 "acknowledged seq %" PRIu64 ", found no record (garbage)",
			 acked_seq);
		break;
	}
}

/* ---- acknowledgements ---------------------------------------------------- */

struct ack_disk {
	char name[PK_WRITELOG_DISK_MAX + 1];
	uint64_t *seq_plus1; /* [idx] = last acked seq + 1; 0 = never acked */
	size_t cap;
	uint64_t end;        /* one past the highest acked idx */
	uint64_t count;      /* distinct acked blocks */
};

struct pk_writelog_acks {
	struct ack_disk *disks;
	size_t ndisks;
	struct pk_writelog_ack_stats stats;
};

struct pk_writelog_acks *pk_writelog_acks_new(void)
{
	return pk_xcalloc(1, sizeof(struct pk_writelog_acks));
}

void pk_writelog_acks_free(struct pk_writelog_acks *acks)
{
	if (!acks) {
		return;
	}
	for (size_t i = 0; i < acks->ndisks; i++) {
		free(acks->disks[i].seq_plus1);
	}
	free(acks->disks);
	free(acks);
}

static struct ack_disk *disk_find(const struct pk_writelog_acks *acks, const char *name)
{
	for (size_t i = 0; i < acks->ndisks; i++) {
		if (strcmp(acks->disks[i].name, name) == 0) {
			return &acks->disks[i];
		}
	}
	return NULL;
}

static struct ack_disk *disk_get(struct pk_writelog_acks *acks, const char *name)
{
	struct ack_disk *d = disk_find(acks, name);

	if (d || acks->ndisks >= ACK_DISK_LIMIT) {
		return d;
	}
	acks->disks = pk_xgrow(acks->disks, NULL, acks->ndisks + 1, sizeof(*acks->disks));
	d = &acks->disks[acks->ndisks++];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	return d;
}

static void disk_ack(struct ack_disk *d, uint64_t idx, uint64_t seq)
{
	if (idx >= d->cap) {
		size_t old = d->cap;

		/* idx < ACK_IDX_LIMIT: idx + 1 fits */
		d->seq_plus1 = pk_xgrow(d->seq_plus1, &d->cap, (size_t)idx + 1, sizeof(uint64_t));
		memset(d->seq_plus1 + old, 0, (d->cap - old) * sizeof(uint64_t));
	}
	if (d->seq_plus1[idx] == 0) {
		d->count++;
	}
	if (seq + 1 > d->seq_plus1[idx]) {
		d->seq_plus1[idx] = seq + 1;
	}
	if (idx + 1 > d->end) {
		d->end = idx + 1;
	}
}

/* Drops trailing "\n", "\r" and leading "\r" (console line endings). */
static void trim_line(const char **line, size_t *len)
{
	while (*len > 0 && ((*line)[*len - 1] == '\n' || (*line)[*len - 1] == '\r')) {
		(*len)--;
	}
	while (*len > 0 && (*line)[0] == '\r') {
		(*line)++;
		(*len)--;
	}
}

static bool contains(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(s + i, lit, n) == 0) {
			return true;
		}
	}
	return false;
}

static void ready_line(struct pk_writelog_acks *acks, const char *s, size_t len)
{
	acks->stats.ready++;
	for (size_t i = 0; i + 7 < len; i++) {
		if ((i == 0 || s[i - 1] == ' ') && memcmp(s + i, "blocks=", 7) == 0) {
			size_t pos = i + 7;
			uint64_t v;

			if (number_at(s, len, &pos, &v)) {
				acks->stats.ready_blocks = v;
			}
			return;
		}
	}
}

int pk_writelog_acks_add_line(struct pk_writelog_acks *acks, const char *line, size_t len)
{
	char disk[PK_WRITELOG_DISK_MAX + 1];
	struct ack_disk *d;
	uint64_t seq, idx;
	size_t pos = 0;
	bool complete;

	complete = len > 0 && line[len - 1] == '\n';
	trim_line(&line, &len);
	if (expect(line, len, &pos, "PKREADY") && (pos == len || line[pos] == ' ')) {
		ready_line(acks, line, len);
		return 0;
	}
	pos = 0;
	if (!contains(line, len, "PKACK")) {
		return 0;
	}
	if (!complete || !expect(line, len, &pos, "PKACK ") || !parse_disk(line, len, &pos, ' ', disk) ||
	    !expect(line, len, &pos, " ") || !number_at(line, len, &pos, &seq) ||
	    !expect(line, len, &pos, " ") || !number_at(line, len, &pos, &idx) ||
	    pos != len || idx >= ACK_IDX_LIMIT || seq == UINT64_MAX) {
		acks->stats.malformed++;
		return 0;
	}
	d = disk_get(acks, disk);
	if (!d) {
		acks->stats.malformed++;
		return 0;
	}
	disk_ack(d, idx, seq);
	acks->stats.acks++;
	return 1;
}

int pk_writelog_acks_load(struct pk_writelog_acks *acks, const char *path,
			  struct pk_error *err)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	if (!f) {
		return pk_error_set(err, PK_E_IO, errno, "cannot open serial log '%s': %s",
				    path, strerror(errno));
	}
	errno = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		pk_writelog_acks_add_line(acks, line, (size_t)n);
	}
	if (ferror(f)) {
		r = pk_error_set(err, PK_E_IO, errno ? errno : EIO,
				 "cannot read serial log '%s': %s", path,
				 strerror(errno ? errno : EIO));
	}
	free(line);
	fclose(f);
	return r;
}

int pk_writelog_acks_get(const struct pk_writelog_acks *acks, const char *disk,
			 uint64_t idx, uint64_t *ret_seq)
{
	const struct ack_disk *d = disk_find(acks, disk);

	if (!d || idx >= d->end || d->seq_plus1[idx] == 0) {
		return -ENOENT;
	}
	*ret_seq = d->seq_plus1[idx] - 1;
	return 0;
}

uint64_t pk_writelog_acks_block_end(const struct pk_writelog_acks *acks, const char *disk)
{
	const struct ack_disk *d = disk_find(acks, disk);

	return d ? d->end : 0;
}

uint64_t pk_writelog_acks_block_count(const struct pk_writelog_acks *acks,
				      const char *disk)
{
	const struct ack_disk *d = disk_find(acks, disk);

	return d ? d->count : 0;
}

size_t pk_writelog_acks_disk_count(const struct pk_writelog_acks *acks)
{
	return acks->ndisks;
}

const char *pk_writelog_acks_disk_name(const struct pk_writelog_acks *acks, size_t i)
{
	return i < acks->ndisks ? acks->disks[i].name : NULL;
}

void pk_writelog_acks_stats(const struct pk_writelog_acks *acks,
			    struct pk_writelog_ack_stats *ret_stats)
{
	*ret_stats = acks->stats;
}
