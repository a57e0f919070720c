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
 * <table> is one line per segment, in order, covering [0, size) with no
 * gap:  "<start_sector> <num_sectors> <pv_path> <pv_offset_sector>\n"
 * (512-byte sectors, like a dm linear table). Names are LVM names
 * ([A-Za-z0-9_.+-], not starting with '-'); pv paths are absolute.
 * Replacing a table under open files is allowed (it is how an extend is
 * refreshed): I/O after the load uses the new table.
 */
#ifndef PK_LVMAP_H
#define PK_LVMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define PK_LVMAP_CMD_MAX 65536
#define PK_LVMAP_MAX_SEGMENTS 1024
#define PK_LVMAP_NAME_MAX 128
#define PK_LVMAP_PATH_MAX 256

struct pk_lvmap_segment {
	uint64_t start;      /* first sector of the LV this segment maps */
	uint64_t count;      /* sectors */
	char pv[PK_LVMAP_PATH_MAX];
	uint64_t pv_offset;  /* first sector on the PV */
};

/* One LV's mapping. Owned by whoever declared it; segments is heap-owned. */
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

/* Appends a segment (start = current end). Returns 0 or -errno. */
int pk_lvmap_table_add(struct pk_lvmap_table *table, uint64_t count,
		       const char *pv, uint64_t pv_offset, struct pk_error *err);

/* Size of the mapped LV in bytes. */
uint64_t pk_lvmap_table_size(const struct pk_lvmap_table *table);

/*
 * Finds the segment holding byte `offset`; returns its index or -ERANGE.
 * ret_pv_byte: the byte offset on that PV; ret_len: bytes left in the
 * segment from `offset`.
 */
int pk_lvmap_table_lookup(const struct pk_lvmap_table *table, uint64_t offset,
			  uint64_t *ret_pv_byte, uint64_t *ret_len);

/* Writes a control command into a heap string (*ret_cmd, caller frees). */
int pk_lvmap_command_format(enum pk_lvmap_op op, const struct pk_lvmap_table *table,
			    char **ret_cmd, struct pk_error *err);

/*
 * Parses and validates a control command. On success fills *ret_op and
 * ret_table (for REMOVE only the names); the caller releases ret_table.
 */
int pk_lvmap_command_parse(const char *cmd, size_t len, enum pk_lvmap_op *ret_op,
			   struct pk_lvmap_table *ret_table, struct pk_error *err);

/* Validates an LVM object name. */
int pk_lvmap_name_valid(const char *name);

#endif
