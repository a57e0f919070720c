/*
 * pk_lvmap — the table format of the lab's userspace linear mapper.
 *
 * Production hosts map an LV onto its physical volumes with device-mapper
 * (a "linear" table loaded by LVM). Lab hosts whose kernel has no
 * device-mapper run pk-lvmapd instead: a FUSE file system that exposes each
 * loaded table as a regular file `<mount>/<vg>/<lv>` whose bytes map onto
 * ranges of the PVs. This header is the contract between the two sides:
 * the activation backend (common/activation_lab.c) builds a table from LVM
 * metadata and loads it; pk-lvmapd parses it and serves I/O.
 *
 * Control protocol: the mount has a file `<mount>/.control`. One write(2)
 * of one command (text, at most PK_LVMAP_CMD_MAX bytes) is one operation,
 * applied atomically; the write fails with an errno when it is refused:
 *   load <vg>/<lv>\n<table>     create or replace (refresh) the mapping
 *   remove <vg>/<lv>\n          drop it (EBUSY while the file is open)
 * A command split over several writes is refused: from a shell, bash's
 * printf writes line by line, so pipe it through
 * `dd of=<mount>/.control bs=65536 iflag=fullblock conv=notrunc`.
 * FUSE reports a file's release after close(2) has returned, so remove
 * waits up to a second for a close in flight before it answers EBUSY.
 * <table> is one line per segment, in order, covering [0, size) with no
 * gap:  "<start_sector> <num_sectors> <pv_path> <pv_offset_sector>\n"
 * (512-byte sectors, like a dm linear table; decimal numbers). The final
 * newline of a command may be left out; nothing else is optional.
 * Names are LVM names ([A-Za-z0-9_.+-], 1..PK_LVMAP_NAME_MAX-1 chars, not
 * starting with '-' or '.', so they can never be "..", ".control" or a
 * hidden file); pv paths are absolute, printable, without spaces and
 * without "." or ".." components. A table has 1..PK_LVMAP_MAX_SEGMENTS
 * segments, each of count > 0, starting at sector 0 and contiguous; no two
 * segments map the same PV sectors; every sector number, end included,
 * fits PK_LVMAP_MAX_SECTORS (so byte offsets fit an off_t).
 * Replacing a table under open files is allowed (it is how an extend is
 * refreshed): I/O after the load uses the new table.
 *
 * Errors (the errno of the failed write(2), and of the functions below):
 *   EINVAL  malformed command, bad name/path, segments not contiguous,
 *           overlapping, a pv that is not a block device or regular file
 *           (or lies inside the mapper's own mount), a segment beyond the
 *           end of its pv
 *   ENOENT, EACCES, EISDIR ...  a pv cannot be opened read-write (the
 *           errno of open(2))
 *   E2BIG   command longer than PK_LVMAP_CMD_MAX, more than
 *           PK_LVMAP_MAX_SEGMENTS segments
 *   EOVERFLOW  a sector number beyond PK_LVMAP_MAX_SECTORS
 *   ENOENT  remove of a name that is not loaded
 *   EBUSY   remove of a file that is open
 * The daemon also logs every refused command with its reason.
 *
 * The functions below are pure (no I/O, no locking): the daemon checks the
 * pvs on disk when it applies a load.
 */
#ifndef PK_LVMAP_H
#define PK_LVMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define PK_LVMAP_CMD_MAX 65536
#define PK_LVMAP_MAX_SEGMENTS 1024
#define PK_LVMAP_NAME_MAX 128
#define PK_LVMAP_PATH_MAX 256
#define PK_LVMAP_SECTOR 512
/* Largest sector number (exclusive end) a table may use: INT64_MAX bytes. */
#define PK_LVMAP_MAX_SECTORS ((uint64_t)INT64_MAX / PK_LVMAP_SECTOR)

struct pk_lvmap_segment {
	uint64_t start;      /* first sector of the LV this segment maps */
	uint64_t count;      /* sectors */
	char pv[PK_LVMAP_PATH_MAX];
	uint64_t pv_offset;  /* first sector on the PV */
};

/*
 * One LV's mapping. Owned by whoever declared it; segments is heap-owned:
 * grown by pk_lvmap_table_add, freed by pk_lvmap_table_release.
 */
struct pk_lvmap_table {
	char vg[PK_LVMAP_NAME_MAX];
	char lv[PK_LVMAP_NAME_MAX];
	size_t nsegments;
	struct pk_lvmap_segment *segments;
};

enum pk_lvmap_op {
	PK_LVMAP_LOAD = 1,
	PK_LVMAP_REMOVE = 2,
};

/* Frees table->segments and zeroes the table. NULL-safe. */
void pk_lvmap_table_release(struct pk_lvmap_table *table);

/*
 * Appends a segment (start = current end), copying pv. Checks what one
 * segment can be checked for (count > 0, pv path, sector overflow, segment
 * limit); returns 0 or -errno and leaves the table unchanged on failure.
 */
int pk_lvmap_table_add(struct pk_lvmap_table *table, uint64_t count,
		       const char *pv, uint64_t pv_offset, struct pk_error *err);

/* Size of the mapped LV in bytes (end of the last segment). */
uint64_t pk_lvmap_table_size(const struct pk_lvmap_table *table);

/*
 * Checks every rule of the table format above (names, segment count,
 * contiguity from 0, count > 0, pv paths, overflow, no overlap on a pv).
 * Returns 0 or -errno with err naming the first offending segment.
 */
int pk_lvmap_table_validate(const struct pk_lvmap_table *table, struct pk_error *err);

/*
 * Finds the segment holding byte `offset`; returns its index or -ERANGE
 * (offset at or beyond the end). ret_pv_byte: the byte offset on that PV;
 * ret_len: bytes left in the segment from `offset`. Either may be NULL.
 * The table must be valid (segments contiguous from 0); O(log n).
 */
int pk_lvmap_table_lookup(const struct pk_lvmap_table *table, uint64_t offset,
			  uint64_t *ret_pv_byte, uint64_t *ret_len);

/*
 * Writes a control command into a heap string (*ret_cmd, NUL-terminated,
 * caller frees). LOAD validates the whole table; REMOVE uses only the
 * names. Fails with E2BIG when the command exceeds PK_LVMAP_CMD_MAX.
 */
int pk_lvmap_command_format(enum pk_lvmap_op op, const struct pk_lvmap_table *table,
			    char **ret_cmd, struct pk_error *err);

/*
 * Parses and validates a control command (cmd need not be NUL-terminated;
 * a NUL byte inside is an error). On success fills *ret_op and ret_table
 * (for REMOVE only the names); the caller releases ret_table. On failure
 * ret_table is left released (zeroed).
 */
int pk_lvmap_command_parse(const char *cmd, size_t len, enum pk_lvmap_op *ret_op,
			   struct pk_lvmap_table *ret_table, struct pk_error *err);

/* True when name is a valid vg or lv name for the mapper (see above). */
bool pk_lvmap_name_valid(const char *name);

#endif
