#include "common/lvmap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/parse.h"
#include "common/xalloc.h"

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '+' || c == '-';
}

bool pk_lvmap_name_valid(const char *name)
{
	size_t n;

	if (!name || name[0] == '\0' || name[0] == '-' || name[0] == '.') {
		return false;
	}
	for (n = 0; name[n] != '\0'; n++) {
		if (n >= PK_LVMAP_NAME_MAX - 1 || !name_char_ok(name[n])) {
			return false;
		}
	}
	return true;
}

/*
 * An absolute path of printable characters without spaces, shorter than
 * PK_LVMAP_PATH_MAX, whose components are neither "." nor "..". Returns a
 * short reason or NULL when the path is fine.
 */
static const char *pv_path_problem(const char *pv)
{
	size_t n = strnlen(pv, PK_LVMAP_PATH_MAX);

	if (n == 0) {
		return "is empty";
	}
	if (n >= PK_LVMAP_PATH_MAX) {
		return "is too long";
	}
	if (pv[0] != '/') {
		return "is not absolute";
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)pv[i];

		if (c <= ' ' || c >= 0x7f) {
			return "has a space or a non-printable character";
		}
		if (c == '/' && pv[i + 1] == '.' &&
		    (pv[i + 2] == '/' || pv[i + 2] == '\0' ||
		     (pv[i + 2] == '.' && (pv[i + 3] == '/' || pv[i + 3] == '\0')))) {
			return "has a '.' or '..' component";
		}
	}
	return NULL;
}

void pk_lvmap_table_release(struct pk_lvmap_table *table)
{
	if (!table) {
		return;
	}
	free(table->segments);
	memset(table, 0, sizeof(*table));
}

static uint64_t table_end_sector(const struct pk_lvmap_table *table)
{
	const struct pk_lvmap_segment *last;

	if (table->nsegments == 0) {
		return 0;
	}
	last = &table->segments[table->nsegments - 1];
	return last->start + last->count;
}

uint64_t pk_lvmap_table_size(const struct pk_lvmap_table *table)
{
	return table_end_sector(table) * PK_LVMAP_SECTOR;
}

/* Checks one segment on its own; index is for the message only. */
static int segment_check(size_t index, uint64_t start, uint64_t count, const char *pv,
			 uint64_t pv_offset, struct pk_error *err)
{
	const char *problem;

	if (count == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "segment %zu has 0 sectors", index);
	}
	if (start > PK_LVMAP_MAX_SECTORS || count > PK_LVMAP_MAX_SECTORS - start) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EOVERFLOW,
				    "segment %zu ends beyond sector %" PRIu64
				    " (start %" PRIu64 " count %" PRIu64 ")",
				    index, PK_LVMAP_MAX_SECTORS, start, count);
	}
	if (pv_offset > PK_LVMAP_MAX_SECTORS || count > PK_LVMAP_MAX_SECTORS - pv_offset) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EOVERFLOW,
				    "segment %zu ends beyond sector %" PRIu64
				    " of its pv (pv offset %" PRIu64 " count %" PRIu64 ")",
				    index, PK_LVMAP_MAX_SECTORS, pv_offset, count);
	}
	problem = pv_path_problem(pv);
	if (problem) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "segment %zu: pv path '%.*s' %s", index,
				    (int)strnlen(pv, PK_LVMAP_PATH_MAX - 1), pv, problem);
	}
	return 0;
}

int pk_lvmap_table_add(struct pk_lvmap_table *table, uint64_t count, const char *pv,
		       uint64_t pv_offset, struct pk_error *err)
{
	uint64_t start = table_end_sector(table);
	struct pk_lvmap_segment *seg;
	size_t n = table->nsegments;
	int r;

	if (n >= PK_LVMAP_MAX_SEGMENTS) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "table of '%s/%s' has more than %d segments", table->vg,
				    table->lv, PK_LVMAP_MAX_SEGMENTS);
	}
	r = segment_check(n, start, count, pv, pv_offset, err);
	if (r < 0) {
		return r;
	}
	/* No capacity kept: the table may have been filled by the caller. */
	table->segments = pk_xgrow(table->segments, NULL, n + 1, sizeof(*table->segments));
	seg = &table->segments[n];
	memset(seg, 0, sizeof(*seg));
	seg->start = start;
	seg->count = count;
	memcpy(seg->pv, pv, strlen(pv) + 1);
	seg->pv_offset = pv_offset;
	table->nsegments = n + 1;
	return 0;
}

static int segment_ptr_cmp(const void *a, const void *b)
{
	const struct pk_lvmap_segment *x = *(const struct pk_lvmap_segment *const *)a;
	const struct pk_lvmap_segment *y = *(const struct pk_lvmap_segment *const *)b;
	int c = strcmp(x->pv, y->pv);

	if (c != 0) {
		return c;
	}
	return (x->pv_offset > y->pv_offset) - (x->pv_offset < y->pv_offset);
}

/* Two segments of one table mapping the same pv sectors is a table bug. */
static int check_no_overlap(const struct pk_lvmap_table *table, struct pk_error *err)
{
	const struct pk_lvmap_segment **sorted;
	int r = 0;

	sorted = pk_xcalloc(table->nsegments, sizeof(*sorted));
	for (size_t i = 0; i < table->nsegments; i++) {
		sorted[i] = &table->segments[i];
	}
	qsort(sorted, table->nsegments, sizeof(*sorted), segment_ptr_cmp);
	for (size_t i = 1; i < table->nsegments; i++) {
		const struct pk_lvmap_segment *a = sorted[i - 1];
		const struct pk_lvmap_segment *b = sorted[i];

		if (strcmp(a->pv, b->pv) == 0 && a->pv_offset + a->count > b->pv_offset) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "segments %zu and %zu map the same sectors of pv '%s'"
					 " (from sector %" PRIu64 ")",
					 (size_t)(a - table->segments),
					 (size_t)(b - table->segments), b->pv, b->pv_offset);
			break;
		}
	}
	free(sorted);
	return r;
}

static int check_names(const struct pk_lvmap_table *table, struct pk_error *err)
{
	const char *names[2] = { table->vg, table->lv };
	const char *what[2] = { "vg", "lv" };

	for (int i = 0; i < 2; i++) {
		if (!pk_lvmap_name_valid(names[i])) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "invalid %s name '%.*s' (allowed: 1-%d of"
					    " [A-Za-z0-9_.+-], not starting with '-' or '.')",
					    what[i], PK_LVMAP_NAME_MAX - 1, names[i],
					    PK_LVMAP_NAME_MAX - 1);
		}
	}
	return 0;
}

int pk_lvmap_table_validate(const struct pk_lvmap_table *table, struct pk_error *err)
{
	uint64_t expect = 0;
	int r;

	r = check_names(table, err);
	if (r < 0) {
		return r;
	}
	if (table->nsegments == 0 || !table->segments) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "table of '%s/%s' has no segments", table->vg, table->lv);
	}
	if (table->nsegments > PK_LVMAP_MAX_SEGMENTS) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "table of '%s/%s' has %zu segments, more than %d",
				    table->vg, table->lv, table->nsegments,
				    PK_LVMAP_MAX_SEGMENTS);
	}
	for (size_t i = 0; i < table->nsegments; i++) {
		const struct pk_lvmap_segment *seg = &table->segments[i];

		if (seg->start != expect) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "segment %zu starts at sector %" PRIu64
					    ", expected %" PRIu64 " (segments must be"
					    " contiguous from 0)",
					    i, seg->start, expect);
		}
		r = segment_check(i, seg->start, seg->count, seg->pv, seg->pv_offset, err);
		if (r < 0) {
			return r;
		}
		expect = seg->start + seg->count;
	}
	return check_no_overlap(table, err);
}

int pk_lvmap_table_lookup(const struct pk_lvmap_table *table, uint64_t offset,
			  uint64_t *ret_pv_byte, uint64_t *ret_len)
{
	const struct pk_lvmap_segment *seg;
	size_t lo = 0;
	size_t hi = table->nsegments;
	uint64_t seg_byte;

	if (offset >= pk_lvmap_table_size(table)) {
		return -ERANGE;
	}
	/* Last segment whose first byte is <= offset. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (table->segments[mid].start * PK_LVMAP_SECTOR <= offset) {
			lo = mid;
		} else {
			hi = mid;
		}
	}
	seg = &table->segments[lo];
	seg_byte = offset - seg->start * PK_LVMAP_SECTOR;
	if (ret_pv_byte) {
		*ret_pv_byte = seg->pv_offset * PK_LVMAP_SECTOR + seg_byte;
	}
	if (ret_len) {
		*ret_len = seg->count * PK_LVMAP_SECTOR - seg_byte;
	}
	return (int)lo;
}

/* ---- command text -------------------------------------------------------- */

static const char *op_word(enum pk_lvmap_op op)
{
	switch (op) {
	case PK_LVMAP_LOAD:
		return "load";
	case PK_LVMAP_REMOVE:
		return "remove";
	}
	return NULL;
}

int pk_lvmap_command_format(enum pk_lvmap_op op, const struct pk_lvmap_table *table,
			    char **ret_cmd, struct pk_error *err)
{
	struct pk_buf b = PK_BUF_INIT;
	const char *word = op_word(op);
	int r;

	if (!word) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "unknown mapper operation %d", (int)op);
	}
	if (op == PK_LVMAP_LOAD) {
		r = pk_lvmap_table_validate(table, err);
	} else {
		r = check_names(table, err);
	}
	if (r < 0) {
		return r;
	}
	pk_buf_printf(&b, "%s %s/%s\n", word, table->vg, table->lv);
	for (size_t i = 0; op == PK_LVMAP_LOAD && i < table->nsegments; i++) {
		const struct pk_lvmap_segment *seg = &table->segments[i];

		pk_buf_printf(&b, "%" PRIu64 " %" PRIu64 " %s %" PRIu64 "\n", seg->start,
			      seg->count, seg->pv, seg->pv_offset);
	}
	if (b.len > PK_LVMAP_CMD_MAX) {
		pk_buf_release(&b);
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "mapper command for '%s/%s' needs %zu bytes, more than"
				    " %d",
				    table->vg, table->lv, b.len, PK_LVMAP_CMD_MAX);
	}
	*ret_cmd = pk_buf_steal(&b, NULL);
	return 0;
}

/* A cursor over the command text; lines end at '\n' or at the end. */
struct cursor {
	const char *p;
	const char *end;
	size_t line; /* 1-based, for messages */
};

/* Copies the next line into buf (NUL-terminated). 0, or -EINVAL if too long. */
static int next_line(struct cursor *c, char *buf, size_t size)
{
	const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	const char *stop = nl ? nl : c->end;
	size_t n = (size_t)(stop - c->p);

	c->line++;
	if (n >= size) {
		return -EINVAL;
	}
	memcpy(buf, c->p, n);
	buf[n] = '\0';
	c->p = nl ? nl + 1 : c->end;
	return 0;
}

static int segment_malformed(size_t lineno, const char *line, struct pk_error *err)
{
	return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
			    "line %zu is not '<start> <count> <pv> <pv_offset>'"
			    " (pv shorter than %d characters): '%.200s'",
			    lineno, PK_LVMAP_PATH_MAX, line);
}

/* Reads the number at *s and advances *s past it. */
static int segment_number(const char **s, size_t lineno, const char *line, uint64_t *ret,
			  struct pk_error *err)
{
	size_t used = 0;
	int r = pk_parse_u64_prefix(*s, strlen(*s), ret, &used);

	if (r == -ERANGE) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EOVERFLOW,
				    "line %zu: a number does not fit 64 bits: '%.200s'", lineno,
				    line);
	}
	if (r < 0) {
		return segment_malformed(lineno, line, err);
	}
	*s += used;
	return 0;
}

static int parse_header(const char *line, enum pk_lvmap_op *ret_op,
			struct pk_lvmap_table *table, struct pk_error *err)
{
	const char *sp = strchr(line, ' ');
	const char *slash;
	size_t wlen;
	size_t vlen;

	if (!sp) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "command line '%.64s' is not '<load|remove> <vg>/<lv>'",
				    line);
	}
	wlen = (size_t)(sp - line);
	if (wlen == 4 && strncmp(line, "load", 4) == 0) {
		*ret_op = PK_LVMAP_LOAD;
	} else if (wlen == 6 && strncmp(line, "remove", 6) == 0) {
		*ret_op = PK_LVMAP_REMOVE;
	} else {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "unknown command '%.*s' (expected load or remove)",
				    (int)(wlen > 32 ? 32 : wlen), line);
	}
	slash = strchr(sp + 1, '/');
	if (!slash) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "'%.200s' is not '<vg>/<lv>'", sp + 1);
	}
	vlen = (size_t)(slash - (sp + 1));
	if (vlen >= sizeof(table->vg) || strlen(slash + 1) >= sizeof(table->lv)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "name in '%.200s' is too long (at most %d characters)",
				    sp + 1, PK_LVMAP_NAME_MAX - 1);
	}
	memcpy(table->vg, sp + 1, vlen);
	table->vg[vlen] = '\0';
	strcpy(table->lv, slash + 1);
	return check_names(table, err);
}

/*
 * Splits "<start> <count> <pv> <pv_offset>" (single spaces, nothing else)
 * into its fields; pv is copied into pvbuf.
 */
static int split_segment(const char *line, size_t lineno, uint64_t *start, uint64_t *count,
			 char *pvbuf, size_t pvsize, uint64_t *pv_offset, struct pk_error *err)
{
	const char *p = line;
	const char *pv_end;
	int r;

	if ((r = segment_number(&p, lineno, line, start, err)) < 0) {
		return r;
	}
	if (*p++ != ' ') {
		return segment_malformed(lineno, line, err);
	}
	if ((r = segment_number(&p, lineno, line, count, err)) < 0) {
		return r;
	}
	if (*p++ != ' ') {
		return segment_malformed(lineno, line, err);
	}
	pv_end = strchr(p, ' ');
	if (!pv_end || (size_t)(pv_end - p) >= pvsize) {
		return segment_malformed(lineno, line, err);
	}
	memcpy(pvbuf, p, (size_t)(pv_end - p));
	pvbuf[pv_end - p] = '\0';
	p = pv_end + 1;
	if ((r = segment_number(&p, lineno, line, pv_offset, err)) < 0) {
		return r;
	}
	if (*p != '\0') {
		return segment_malformed(lineno, line, err);
	}
	return 0;
}

static int parse_segment(const char *line, size_t lineno, struct pk_lvmap_table *table,
			 struct pk_error *err)
{
	char pvbuf[PK_LVMAP_PATH_MAX];
	uint64_t start;
	uint64_t count;
	uint64_t pv_offset;
	int r;

	r = split_segment(line, lineno, &start, &count, pvbuf, sizeof(pvbuf), &pv_offset, err);
	if (r < 0) {
		return r;
	}
	if (start != table_end_sector(table)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "segment %zu starts at sector %" PRIu64
				    ", expected %" PRIu64
				    " (segments must be contiguous from 0)",
				    table->nsegments, start, table_end_sector(table));
	}
	return pk_lvmap_table_add(table, count, pvbuf, pv_offset, err);
}

int pk_lvmap_command_parse(const char *cmd, size_t len, enum pk_lvmap_op *ret_op,
			   struct pk_lvmap_table *ret_table, struct pk_error *err)
{
	struct pk_lvmap_table table;
	struct cursor c = { cmd, cmd + len, 0 };
	enum pk_lvmap_op op = PK_LVMAP_LOAD;
	/* A line holds at most three 20-digit numbers, a path and 3 spaces. */
	char line[PK_LVMAP_PATH_MAX + 3 * 20 + 4];
	int r;

	memset(&table, 0, sizeof(table));
	memset(ret_table, 0, sizeof(*ret_table));
	if (len == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "empty command");
	}
	if (len > PK_LVMAP_CMD_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "command of %zu bytes, more than %d", len,
				    PK_LVMAP_CMD_MAX);
	}
	if (memchr(cmd, '\0', len)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "command contains a NUL byte");
	}
	if (next_line(&c, line, sizeof(line)) < 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "first line of the command is too long");
	}
	r = parse_header(line, &op, &table, err);
	if (r < 0) {
		goto fail;
	}
	while (c.p < c.end) {
		if (op == PK_LVMAP_REMOVE) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "remove takes no table (line %zu)", c.line + 1);
			goto fail;
		}
		if (next_line(&c, line, sizeof(line)) < 0) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "line %zu is too long", c.line);
			goto fail;
		}
		r = parse_segment(line, c.line, &table, err);
		if (r < 0) {
			goto fail;
		}
	}
	if (op == PK_LVMAP_LOAD) {
		r = pk_lvmap_table_validate(&table, err);
		if (r < 0) {
			goto fail;
		}
	}
	*ret_op = op;
	*ret_table = table;
	return 0;

fail:
	pk_lvmap_table_release(&table);
	return r;
}
