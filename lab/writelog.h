/*
 * pk_writelog — the record format of the lab's writing guest and the check
 * of its acknowledged writes against a disk image.
 *
 * The writing guest (lab/guest/writer.c, see docs/GUEST.md) writes
 * 4096-byte records at block-aligned offsets of its disks and, after each
 * write returned, prints one line on its serial console:
 *
 *     PKACK <disk> <seq> <idx>
 *
 * A record is fully determined by (disk, seq, idx):
 *   bytes 0..127    the header line "PKW1 disk=<disk> seq=<seq> idx=<idx>\n",
 *                   then NUL bytes up to offset 128;
 *   bytes 128..4095 a pseudo-random pattern seeded from the header, so any
 *                   changed byte, torn write or misplaced block is detected.
 * seq is one counter for all disks of a guest, increasing for every write
 * issued, and continued across guest restarts (the writer starts after the
 * highest seq found on its disks).
 *
 * A block is intact when it holds the record of the last acknowledged seq
 * for that (disk, idx), or of a later seq (a write issued but not yet
 * acknowledged). Anything else — an older record, a record of another
 * block or disk, a damaged record, zeros — is an acknowledged write lost.
 *
 * Rules:
 *  - Disk names are 1..PK_WRITELOG_DISK_MAX characters of [A-Za-z0-9_-].
 *  - Record buffers are exactly PK_WRITELOG_BLOCK_SIZE bytes, owned by the
 *    caller.
 *  - struct pk_writelog_acks is owned by whoever called _new and released
 *    with _free; it is not thread-safe.
 */
#ifndef PK_WRITELOG_H
#define PK_WRITELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define PK_WRITELOG_BLOCK_SIZE 4096
#define PK_WRITELOG_HEADER_SIZE 128
#define PK_WRITELOG_DISK_MAX 31

struct pk_writelog_record {
	char disk[PK_WRITELOG_DISK_MAX + 1];
	uint64_t seq;
	uint64_t idx;
};

/* True when name is a valid disk name (see the rules above). */
bool pk_writelog_disk_name_valid(const char *name);

/*
 * Fills buf (PK_WRITELOG_BLOCK_SIZE bytes) with the record of (disk, seq,
 * idx). Returns -EINVAL for an invalid disk name (buf is then untouched).
 */
int pk_writelog_record_format(uint8_t *buf, const char *disk, uint64_t seq,
			      uint64_t idx);

/*
 * Reads the header of the record in buf into *ret_rec. Returns -EBADMSG when
 * buf does not start with a well-formed header (zeros, garbage). A parsed
 * header says nothing about the body: see pk_writelog_record_intact().
 */
int pk_writelog_header_parse(const uint8_t *buf,
			     struct pk_writelog_record *ret_rec);

/* True when buf holds exactly the record of rec, every byte. */
bool pk_writelog_record_intact(const uint8_t *buf,
			       const struct pk_writelog_record *rec);

/* What a block holds compared with its last acknowledged write. */
enum pk_writelog_verdict {
	PK_WRITELOG_OK = 0,         /* the acknowledged record */
	PK_WRITELOG_OK_NEWER,       /* a later record of the same disk and block */
	PK_WRITELOG_LOST_OLDER,     /* an earlier record of the same disk and block */
	PK_WRITELOG_LOST_MISPLACED, /* an intact record of another disk or block */
	PK_WRITELOG_LOST_DAMAGED,   /* a valid header but a changed body */
	PK_WRITELOG_LOST_ZERO,      /* all zero bytes */
	PK_WRITELOG_LOST_GARBAGE,   /* no record header */
};

/* True for the verdicts that mean an acknowledged write is intact. */
bool pk_writelog_verdict_ok(enum pk_writelog_verdict v);

/*
 * Judges block idx of disk, whose last acknowledged write had acked_seq.
 * When the block has a parsable header, *ret_found (may be NULL) receives
 * it; otherwise *ret_found is left untouched.
 */
enum pk_writelog_verdict pk_writelog_block_check(const uint8_t *buf,
						 const char *disk, uint64_t idx,
						 uint64_t acked_seq,
						 struct pk_writelog_record *ret_found);

/*
 * Writes a one-line explanation of a lost verdict into out, e.g.
 * "acknowledged seq 120, found seq 97 of the same block (older)".
 */
void pk_writelog_verdict_describe(enum pk_writelog_verdict v, uint64_t acked_seq,
				  const struct pk_writelog_record *found,
				  char *out, size_t out_size);

/* ---- acknowledgements read from a serial log ------------------------- */

struct pk_writelog_acks;

struct pk_writelog_acks *pk_writelog_acks_new(void);
/* NULL-safe. */
void pk_writelog_acks_free(struct pk_writelog_acks *acks);

/*
 * Feeds one line of console output, with its "\n" (or "\r\n"). Returns 1
 * when it was a well-formed PKACK line and was recorded, 0 when it was
 * another line (kernel output, PKSTATS, a PKACK line mangled by interleaved
 * output: those are counted, see _stats). A line without its final "\n" is
 * incomplete — the log was cut in the middle of it, "PKACK vda 12 45" may
 * have been "... 456" — and is never recorded. A PKREADY line's "blocks=N"
 * is remembered (see _stats). Lines never fail.
 */
int pk_writelog_acks_add_line(struct pk_writelog_acks *acks, const char *line,
			      size_t len);

/* Reads a whole serial log file line by line. */
int pk_writelog_acks_load(struct pk_writelog_acks *acks, const char *path,
			  struct pk_error *err);

/*
 * The last (highest) acknowledged seq of (disk, idx). Returns -ENOENT when
 * that block of that disk was never acknowledged.
 */
int pk_writelog_acks_get(const struct pk_writelog_acks *acks, const char *disk,
			 uint64_t idx, uint64_t *ret_seq);

/*
 * One past the highest acknowledged block index of disk (0 when the disk
 * has no acknowledgement): the number of blocks a check has to read.
 */
uint64_t pk_writelog_acks_block_end(const struct pk_writelog_acks *acks,
				    const char *disk);

/* Number of distinct acknowledged blocks of disk. */
uint64_t pk_writelog_acks_block_count(const struct pk_writelog_acks *acks,
				      const char *disk);

/* Number of disks seen, and the name of disk i (0 <= i < count). */
size_t pk_writelog_acks_disk_count(const struct pk_writelog_acks *acks);
const char *pk_writelog_acks_disk_name(const struct pk_writelog_acks *acks,
				       size_t i);

struct pk_writelog_ack_stats {
	uint64_t acks;        /* well-formed PKACK lines */
	uint64_t malformed;   /* lines holding "PKACK" not well formed or cut */
	uint64_t ready;       /* PKREADY lines (guest starts) */
	uint64_t ready_blocks; /* blocks=N of the last PKREADY line, 0 if none */
};

void pk_writelog_acks_stats(const struct pk_writelog_acks *acks,
			    struct pk_writelog_ack_stats *ret_stats);

#endif
