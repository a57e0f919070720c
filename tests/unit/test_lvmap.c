/*
 * The lab mapper's table arithmetic and control command format
 * (common/lvmap.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "common/lvmap.h"
#include "tests/unit/test_lvmap_fixture.h"

#define S PK_LVMAP_SECTOR

/* ---- helpers ------------------------------------------------------------- */

/* Parses cmd (NUL-terminated) and returns the errno-style result. */
static int parse(const char *cmd, enum pk_lvmap_op *op, struct pk_lvmap_table *t,
		 struct pk_error *err)
{
	pk_error_clear(err);
	return pk_lvmap_command_parse(cmd, strlen(cmd), op, t, err);
}

static void parse_fails(const char *cmd, int expect)
{
	struct pk_lvmap_table t;
	struct pk_error err;
	enum pk_lvmap_op op;
	int r = parse(cmd, &op, &t, &err);

	if (r != expect) {
		print_error("command '%s': got %d (%s), want %d\n", cmd, r, err.message,
			    expect);
	}
	assert_int_equal(r, expect);
	assert_true(pk_error_is_set(&err));
	assert_true(err.message[0] != '\0');
	/* A failed parse leaves nothing to release. */
	assert_int_equal(t.nsegments, 0);
	assert_null(t.segments);
}

/* ---- names --------------------------------------------------------------- */

static void test_lvmap__name_rules(void **state)
{
	char longest[PK_LVMAP_NAME_MAX];
	char too_long[PK_LVMAP_NAME_MAX + 1];

	(void)state;
	assert_true(pk_lvmap_name_valid("vg0"));
	assert_true(pk_lvmap_name_valid("a"));
	assert_true(pk_lvmap_name_valid("6f1e2b3c-aaaa-4bbb-8ccc-0123456789ab"));
	assert_true(pk_lvmap_name_valid("A_b.c+d-e"));
	assert_true(pk_lvmap_name_valid("x."));
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	assert_true(pk_lvmap_name_valid(longest));

	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	assert_false(pk_lvmap_name_valid(too_long));
	assert_false(pk_lvmap_name_valid(NULL));
	assert_false(pk_lvmap_name_valid(""));
	assert_false(pk_lvmap_name_valid("-vg"));
	assert_false(pk_lvmap_name_valid("."));
	assert_false(pk_lvmap_name_valid(".."));
	assert_false(pk_lvmap_name_valid(".control"));
	assert_false(pk_lvmap_name_valid("a/b"));
	assert_false(pk_lvmap_name_valid("a b"));
	assert_false(pk_lvmap_name_valid("a\nb"));
	assert_false(pk_lvmap_name_valid("caf\xc3\xa9"));
	assert_false(pk_lvmap_name_valid("a*"));
}

/* ---- table arithmetic ---------------------------------------------------- */

static void test_lvmap__add_appends_contiguous_segments(void **state)
{
	struct pk_lvmap_table t;

	(void)state;
	table_named(&t, "vg", "lv");
	assert_int_equal(pk_lvmap_table_size(&t), 0);
	add_ok(&t, 8, "/dev/loop1", 2048);
	add_ok(&t, 16, "/dev/loop2", 0);
	add_ok(&t, 1, "/dev/loop1", 2056);
	assert_int_equal(t.nsegments, 3);
	assert_int_equal(t.segments[0].start, 0);
	assert_int_equal(t.segments[1].start, 8);
	assert_int_equal(t.segments[2].start, 24);
	assert_string_equal(t.segments[1].pv, "/dev/loop2");
	assert_int_equal(pk_lvmap_table_size(&t), 25 * S);
	assert_int_equal(pk_lvmap_table_validate(&t, NULL), 0);
	pk_lvmap_table_release(&t);
	assert_null(t.segments);
	assert_int_equal(t.nsegments, 0);
	pk_lvmap_table_release(NULL);
}

static void test_lvmap__lookup_at_boundaries(void **state)
{
	struct pk_lvmap_table t;
	uint64_t pv_byte;
	uint64_t len;

	(void)state;
	table_named(&t, "vg", "lv");
	add_ok(&t, 4, "/dev/a", 100); /* bytes [0, 2048)    -> a @ 51200 */
	add_ok(&t, 2, "/dev/b", 7);   /* bytes [2048, 3072) -> b @ 3584 */
	add_ok(&t, 1, "/dev/a", 10);  /* bytes [3072, 3584) -> a @ 5120 */

	assert_int_equal(pk_lvmap_table_lookup(&t, 0, &pv_byte, &len), 0);
	assert_int_equal(pv_byte, 100 * S);
	assert_int_equal(len, 4 * S);

	assert_int_equal(pk_lvmap_table_lookup(&t, 4 * S - 1, &pv_byte, &len), 0);
	assert_int_equal(pv_byte, 104 * S - 1);
	assert_int_equal(len, 1);

	assert_int_equal(pk_lvmap_table_lookup(&t, 4 * S, &pv_byte, &len), 1);
	assert_int_equal(pv_byte, 7 * S);
	assert_int_equal(len, 2 * S);

	/* Not sector aligned, inside segment 1. */
	assert_int_equal(pk_lvmap_table_lookup(&t, 4 * S + 700, &pv_byte, &len), 1);
	assert_int_equal(pv_byte, 7 * S + 700);
	assert_int_equal(len, 2 * S - 700);

	assert_int_equal(pk_lvmap_table_lookup(&t, 6 * S, &pv_byte, &len), 2);
	assert_int_equal(pv_byte, 10 * S);
	assert_int_equal(len, S);

	/* Last byte, then the end and beyond. */
	assert_int_equal(pk_lvmap_table_lookup(&t, 7 * S - 1, &pv_byte, &len), 2);
	assert_int_equal(pv_byte, 11 * S - 1);
	assert_int_equal(len, 1);
	assert_int_equal(pk_lvmap_table_lookup(&t, 7 * S, &pv_byte, &len), -ERANGE);
	assert_int_equal(pk_lvmap_table_lookup(&t, UINT64_MAX, NULL, NULL), -ERANGE);
	assert_int_equal(pk_lvmap_table_lookup(&t, 5 * S, NULL, NULL), 1);
	pk_lvmap_table_release(&t);

	/* An empty table holds nothing. */
	table_named(&t, "vg", "lv");
	assert_int_equal(pk_lvmap_table_lookup(&t, 0, NULL, NULL), -ERANGE);
}

static void test_lvmap__lookup_many_segments_matches_linear_scan(void **state)
{
	struct pk_lvmap_table t;
	char pv[32];

	(void)state;
	table_named(&t, "vg", "lv");
	for (uint64_t i = 0; i < PK_LVMAP_MAX_SEGMENTS; i++) {
		snprintf(pv, sizeof(pv), "/dev/pv%" PRIu64, i % 3);
		add_ok(&t, 1 + i % 5, pv, 1000 * i);
	}
	assert_int_equal(pk_lvmap_table_validate(&t, NULL), 0);
	for (uint64_t off = 0; off < pk_lvmap_table_size(&t); off += 511) {
		size_t want = 0;
		uint64_t pv_byte;
		uint64_t len;
		const struct pk_lvmap_segment *seg;

		while ((t.segments[want].start + t.segments[want].count) * S <= off) {
			want++;
		}
		seg = &t.segments[want];
		assert_int_equal(pk_lvmap_table_lookup(&t, off, &pv_byte, &len), (int)want);
		assert_int_equal(pv_byte, seg->pv_offset * S + off - seg->start * S);
		assert_int_equal(len, (seg->start + seg->count) * S - off);
	}
	pk_lvmap_table_release(&t);
}

static void test_lvmap__lookup_near_the_largest_size(void **state)
{
	struct pk_lvmap_table t;
	uint64_t pv_byte;
	uint64_t len;

	(void)state;
	table_named(&t, "vg", "lv");
	add_ok(&t, PK_LVMAP_MAX_SECTORS - 1, "/dev/a", 0);
	add_ok(&t, 1, "/dev/b", PK_LVMAP_MAX_SECTORS - 1);
	assert_int_equal(pk_lvmap_table_size(&t), PK_LVMAP_MAX_SECTORS * S);
	assert_true(pk_lvmap_table_size(&t) <= (uint64_t)INT64_MAX);
	assert_int_equal(pk_lvmap_table_validate(&t, NULL), 0);
	assert_int_equal(pk_lvmap_table_lookup(&t, PK_LVMAP_MAX_SECTORS * S - 1, &pv_byte,
					       &len),
			 1);
	assert_int_equal(pv_byte, PK_LVMAP_MAX_SECTORS * S - 1);
	assert_int_equal(len, 1);
	pk_lvmap_table_release(&t);
}

static void test_lvmap__add_rejects_bad_segments(void **state)
{
	struct pk_lvmap_table t;
	struct pk_error err;
	char long_pv[PK_LVMAP_PATH_MAX + 8];
	static const char *const bad_pvs[] = {
		"", "dev/loop0", "/dev/loop 0", "/dev/./loop0", "/dev/../dev/loop0",
		"/dev/loop0/..", "/dev/\tx", "/dev/\x7f", "/dev/caf\xc3\xa9",
	};

	(void)state;
	table_named(&t, "vg", "lv");
	add_ok(&t, 8, "/dev/a", 0);

	pk_error_clear(&err);
	assert_int_equal(pk_lvmap_table_add(&t, 0, "/dev/a", 8, &err), -EINVAL);
	assert_true(pk_error_is_set(&err));
	for (size_t i = 0; i < sizeof(bad_pvs) / sizeof(bad_pvs[0]); i++) {
		pk_error_clear(&err);
		assert_int_equal(pk_lvmap_table_add(&t, 1, bad_pvs[i], 8, &err), -EINVAL);
		assert_non_null(strstr(err.message, "pv path"));
	}
	memset(long_pv, 'x', sizeof(long_pv));
	long_pv[0] = '/';
	long_pv[PK_LVMAP_PATH_MAX] = '\0';
	assert_int_equal(pk_lvmap_table_add(&t, 1, long_pv, 8, NULL), -EINVAL);
	long_pv[PK_LVMAP_PATH_MAX - 1] = '\0'; /* 255 characters: fits */
	add_ok(&t, 1, long_pv, 0);
	/* Hidden files and names with dots are fine. */
	add_ok(&t, 1, "/dev/.x/a..b", 0);

	/* The table is unchanged by the failures. */
	assert_int_equal(t.nsegments, 3);
	assert_int_equal(pk_lvmap_table_size(&t), 10 * S);
	pk_lvmap_table_release(&t);
}

static void test_lvmap__add_rejects_overflow(void **state)
{
	struct pk_lvmap_table t;
	struct pk_error err;

	(void)state;
	table_named(&t, "vg", "lv");
	pk_error_clear(&err);
	assert_int_equal(pk_lvmap_table_add(&t, PK_LVMAP_MAX_SECTORS + 1, "/dev/a", 0, &err),
			 -EOVERFLOW);
	assert_int_equal(pk_lvmap_table_add(&t, UINT64_MAX, "/dev/a", 0, NULL), -EOVERFLOW);
	/* pv offset + count beyond the limit, also when the sum wraps. */
	assert_int_equal(pk_lvmap_table_add(&t, 2, "/dev/a", PK_LVMAP_MAX_SECTORS - 1, NULL),
			 -EOVERFLOW);
	assert_int_equal(pk_lvmap_table_add(&t, 2, "/dev/a", UINT64_MAX, NULL), -EOVERFLOW);
	/* LV end beyond the limit. */
	add_ok(&t, PK_LVMAP_MAX_SECTORS - 1, "/dev/a", 0);
	assert_int_equal(pk_lvmap_table_add(&t, 2, "/dev/b", 0, NULL), -EOVERFLOW);
	assert_int_equal(t.nsegments, 1);
	pk_lvmap_table_release(&t);
}

static void test_lvmap__add_rejects_too_many_segments(void **state)
{
	struct pk_lvmap_table t;
	struct pk_error err;

	(void)state;
	table_named(&t, "vg", "lv");
	for (int i = 0; i < PK_LVMAP_MAX_SEGMENTS; i++) {
		add_ok(&t, 1, "/dev/a", (uint64_t)i);
	}
	pk_error_clear(&err);
	assert_int_equal(pk_lvmap_table_add(&t, 1, "/dev/a", 5000, &err), -E2BIG);
	assert_int_equal(t.nsegments, PK_LVMAP_MAX_SEGMENTS);
	pk_lvmap_table_release(&t);
}

/* ---- validation ---------------------------------------------------------- */

static struct pk_lvmap_segment seg(uint64_t start, uint64_t count, const char *pv,
				   uint64_t off)
{
	struct pk_lvmap_segment s;

	memset(&s, 0, sizeof(s));
	s.start = start;
	s.count = count;
	snprintf(s.pv, sizeof(s.pv), "%s", pv);
	s.pv_offset = off;
	return s;
}

/* Validates a table of n literal segments; returns the result. */
static int validate(const char *vg, const char *lv, const struct pk_lvmap_segment *segs,
		    size_t n, struct pk_error *err)
{
	struct pk_lvmap_table t;

	table_named(&t, vg, lv);
	t.nsegments = n;
	t.segments = (struct pk_lvmap_segment *)segs;
	pk_error_clear(err);
	return pk_lvmap_table_validate(&t, err);
}

static void test_lvmap__validate_rejects_every_rule(void **state)
{
	struct pk_lvmap_segment s[3];
	struct pk_error err;

	(void)state;
	s[0] = seg(0, 8, "/dev/a", 0);
	s[1] = seg(8, 8, "/dev/b", 0);
	s[2] = seg(16, 8, "/dev/a", 8); /* adjacent to s[0] on /dev/a: fine */
	assert_int_equal(validate("vg", "lv", s, 3, &err), 0);

	assert_int_equal(validate("vg", "lv", s, 0, &err), -EINVAL);
	assert_non_null(strstr(err.message, "no segments"));
	assert_int_equal(validate("-vg", "lv", s, 3, &err), -EINVAL);
	assert_non_null(strstr(err.message, "vg name"));
	assert_int_equal(validate("vg", "l/v", s, 3, &err), -EINVAL);
	assert_non_null(strstr(err.message, "lv name"));
	assert_int_equal(validate("vg", "", s, 3, &err), -EINVAL);

	/* Not starting at 0. */
	s[0].start = 1;
	assert_int_equal(validate("vg", "lv", s, 1, &err), -EINVAL);
	assert_non_null(strstr(err.message, "contiguous"));
	s[0].start = 0;
	/* A gap, then an overlap inside the LV. */
	s[1].start = 9;
	assert_int_equal(validate("vg", "lv", s, 2, &err), -EINVAL);
	s[1].start = 7;
	assert_int_equal(validate("vg", "lv", s, 2, &err), -EINVAL);
	assert_non_null(strstr(err.message, "segment 1"));
	s[1].start = 8;
	/* count 0. */
	s[1].count = 0;
	assert_int_equal(validate("vg", "lv", s, 2, &err), -EINVAL);
	s[1].count = 8;
	/* Two segments on the same pv sectors. */
	s[2].pv_offset = 7;
	assert_int_equal(validate("vg", "lv", s, 3, &err), -EINVAL);
	assert_non_null(strstr(err.message, "same sectors"));
	s[2].pv_offset = 8;
	/* Relative pv. */
	snprintf(s[1].pv, sizeof(s[1].pv), "loop0");
	assert_int_equal(validate("vg", "lv", s, 3, &err), -EINVAL);
	snprintf(s[1].pv, sizeof(s[1].pv), "/dev/b");
	/* A pv path filling the whole buffer without a NUL. */
	memset(s[1].pv, 'x', sizeof(s[1].pv));
	s[1].pv[0] = '/';
	assert_int_equal(validate("vg", "lv", s, 3, &err), -EINVAL);
	snprintf(s[1].pv, sizeof(s[1].pv), "/dev/b");
	/* Overflow of the LV end and of the pv end. */
	s[0].count = PK_LVMAP_MAX_SECTORS + 1;
	assert_int_equal(validate("vg", "lv", s, 1, &err), -EOVERFLOW);
	s[0].count = 8;
	s[0].pv_offset = UINT64_MAX - 4;
	assert_int_equal(validate("vg", "lv", s, 1, &err), -EOVERFLOW);
	s[0].pv_offset = 0;
	assert_int_equal(validate("vg", "lv", s, 3, &err), 0);
}

static void test_lvmap__validate_rejects_too_many_segments(void **state)
{
	struct pk_lvmap_segment *s;
	struct pk_error err;
	size_t n = PK_LVMAP_MAX_SEGMENTS + 1;

	(void)state;
	s = calloc(n, sizeof(*s));
	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		s[i] = seg(i, 1, "/dev/a", i);
	}
	assert_int_equal(validate("vg", "lv", s, n - 1, &err), 0);
	assert_int_equal(validate("vg", "lv", s, n, &err), -E2BIG);
	free(s);
}

/* ---- format and parse ---------------------------------------------------- */

static void test_lvmap__format_parse_round_trip(void **state)
{
	struct pk_lvmap_table t;
	struct pk_lvmap_table back;
	struct pk_error err;
	enum pk_lvmap_op op;
	char *cmd = NULL;

	(void)state;
	table_named(&t, "6f1e2b3c-vg", "d1c7e0aa-lv");
	add_ok(&t, 2048, "/dev/loop7", 2048);
	add_ok(&t, 4096, "/dev/disk/by-id/wwn-0x5000", 0);
	add_ok(&t, PK_LVMAP_MAX_SECTORS - 6144, "/dev/loop7", 4096);
	pk_error_clear(&err);
	assert_int_equal(pk_lvmap_command_format(PK_LVMAP_LOAD, &t, &cmd, &err), 0);
	assert_string_equal(cmd, "load 6f1e2b3c-vg/d1c7e0aa-lv\n"
				 "0 2048 /dev/loop7 2048\n"
				 "2048 4096 /dev/disk/by-id/wwn-0x5000 0\n"
				 "6144 18014398509475839 /dev/loop7 4096\n");
	assert_int_equal(parse(cmd, &op, &back, &err), 0);
	assert_int_equal(op, PK_LVMAP_LOAD);
	assert_string_equal(back.vg, t.vg);
	assert_string_equal(back.lv, t.lv);
	assert_int_equal(back.nsegments, t.nsegments);
	assert_memory_equal(back.segments, t.segments, t.nsegments * sizeof(*t.segments));
	free(cmd);
	pk_lvmap_table_release(&back);

	assert_int_equal(pk_lvmap_command_format(PK_LVMAP_REMOVE, &t, &cmd, &err), 0);
	assert_string_equal(cmd, "remove 6f1e2b3c-vg/d1c7e0aa-lv\n");
	assert_int_equal(parse(cmd, &op, &back, &err), 0);
	assert_int_equal(op, PK_LVMAP_REMOVE);
	assert_string_equal(back.vg, t.vg);
	assert_string_equal(back.lv, t.lv);
	assert_int_equal(back.nsegments, 0);
	free(cmd);
	pk_lvmap_table_release(&back);
	pk_lvmap_table_release(&t);
}

static void test_lvmap__parse_accepts_a_missing_final_newline(void **state)
{
	struct pk_lvmap_table t;
	struct pk_error err;
	enum pk_lvmap_op op;

	(void)state;
	assert_int_equal(parse("load vg/lv\n0 8 /dev/a 0\n8 8 /dev/b 0", &op, &t, &err), 0);
	assert_int_equal(t.nsegments, 2);
	assert_int_equal(pk_lvmap_table_size(&t), 16 * S);
	pk_lvmap_table_release(&t);
	assert_int_equal(parse("remove vg/lv", &op, &t, &err), 0);
	assert_int_equal(op, PK_LVMAP_REMOVE);
	pk_lvmap_table_release(&t);
}

static void test_lvmap__format_rejects_bad_tables(void **state)
{
	struct pk_lvmap_table t;
	struct pk_error err;
	char *cmd = NULL;
	char pv[PK_LVMAP_PATH_MAX];

	(void)state;
	/* An empty table cannot be loaded, but its name can be removed. */
	table_named(&t, "vg", "lv");
	pk_error_clear(&err);
	assert_int_equal(pk_lvmap_command_format(PK_LVMAP_LOAD, &t, &cmd, &err), -EINVAL);
	assert_null(cmd);
	assert_int_equal(pk_lvmap_command_format(PK_LVMAP_REMOVE, &t, &cmd, &err), 0);
	free(cmd);
	cmd = NULL;
	assert_int_equal(pk_lvmap_command_format((enum pk_lvmap_op)9, &t, &cmd, &err),
			 -EINVAL);
	table_named(&t, "vg", "lv/x");
	assert_int_equal(pk_lvmap_command_format(PK_LVMAP_REMOVE, &t, &cmd, &err), -EINVAL);
	assert_null(cmd);

	/* 1024 segments on 255-character pv paths do not fit one command. */
	table_named(&t, "vg", "lv");
	memset(pv, 'p', sizeof(pv));
	pv[0] = '/';
	pv[sizeof(pv) - 1] = '\0';
	for (int i = 0; i < PK_LVMAP_MAX_SEGMENTS; i++) {
		add_ok(&t, 1, pv, (uint64_t)i);
	}
	assert_int_equal(pk_lvmap_command_format(PK_LVMAP_LOAD, &t, &cmd, &err), -E2BIG);
	assert_null(cmd);
	pk_lvmap_table_release(&t);
}

static void test_lvmap__parse_rejects_malformed_commands(void **state)
{
	(void)state;
	parse_fails("", -EINVAL);
	parse_fails("\n", -EINVAL);
	parse_fails("load", -EINVAL);
	parse_fails("load vg/lv", -EINVAL);   /* no table */
	parse_fails("load vg/lv\n", -EINVAL); /* no table */
	parse_fails("LOAD vg/lv\n0 8 /dev/a 0\n", -EINVAL);
	parse_fails("create vg/lv\n", -EINVAL);
	parse_fails("remove vglv\n", -EINVAL);
	parse_fails("remove vg/\n", -EINVAL);
	parse_fails("remove /lv\n", -EINVAL);
	parse_fails("remove vg/lv/x\n", -EINVAL);
	parse_fails("remove -vg/lv\n", -EINVAL);
	parse_fails("remove vg/..\n", -EINVAL);
	parse_fails("remove ../lv\n", -EINVAL);
	parse_fails("remove vg/.control\n", -EINVAL);
	parse_fails("remove  vg/lv\n", -EINVAL);
	parse_fails("remove vg/lv \n", -EINVAL);
	parse_fails("remove vg/lv\r\n", -EINVAL);
	parse_fails("remove vg/lv\n\n", -EINVAL);
	parse_fails("remove vg/lv\n0 8 /dev/a 0\n", -EINVAL);
	parse_fails("load vg/lv\n0 8 /dev/a\n", -EINVAL);
	parse_fails("load vg/lv\n0 8 /dev/a 0 9\n", -EINVAL);
	parse_fails("load vg/lv\n0 8  /dev/a 0\n", -EINVAL);
	parse_fails("load vg/lv\n0 8 /dev/a 0 \n", -EINVAL);
	parse_fails("load vg/lv\n 0 8 /dev/a 0\n", -EINVAL);
	parse_fails("load vg/lv\n0\t8 /dev/a 0\n", -EINVAL);
	parse_fails("load vg/lv\n-0 8 /dev/a 0\n", -EINVAL);
	parse_fails("load vg/lv\n0 -8 /dev/a 0\n", -EINVAL);
	parse_fails("load vg/lv\n0 +8 /dev/a 0\n", -EINVAL);
	parse_fails("load vg/lv\n0 0x8 /dev/a 0\n", -EINVAL);
	parse_fails("load vg/lv\n0 8 /dev/a 1e3\n", -EINVAL);
	parse_fails("load vg/lv\n0 8 /dev/a 0\n\n8 8 /dev/a 8\n", -EINVAL);
	parse_fails("load vg/lv\n0 8 /dev/a 0\n\n", -EINVAL);
	parse_fails("load vg/lv\n0 8 /dev/a 0\r\n", -EINVAL);
	parse_fails("load vg/lv\n0 8 /dev/a 0\n8 8\n", -EINVAL);
}

static void test_lvmap__parse_rejects_bad_tables(void **state)
{
	(void)state;
	parse_fails("load vg/lv\n0 0 /dev/a 0\n", -EINVAL);           /* count 0 */
	parse_fails("load vg/lv\n8 8 /dev/a 0\n", -EINVAL);           /* not from 0 */
	parse_fails("load vg/lv\n0 8 /dev/a 0\n9 8 /dev/b 0\n", -EINVAL); /* gap */
	parse_fails("load vg/lv\n0 8 /dev/a 0\n7 8 /dev/b 0\n", -EINVAL); /* overlap */
	parse_fails("load vg/lv\n0 8 /dev/a 0\n8 8 /dev/a 4\n", -EINVAL); /* same pv */
	parse_fails("load vg/lv\n0 8 dev/a 0\n", -EINVAL);             /* relative */
	parse_fails("load vg/lv\n0 8 /dev/../a 0\n", -EINVAL);
	parse_fails("load 1vg/-lv\n0 8 /dev/a 0\n", -EINVAL);
	/* Numbers beyond 64 bits, and sums beyond the sector limit. */
	parse_fails("load vg/lv\n0 18446744073709551616 /dev/a 0\n", -EOVERFLOW);
	parse_fails("load vg/lv\n0 99999999999999999999999 /dev/a 0\n", -EOVERFLOW);
	parse_fails("load vg/lv\n0 18014398509481984 /dev/a 0\n", -EOVERFLOW);
	parse_fails("load vg/lv\n0 8 /dev/a 18014398509481980\n", -EOVERFLOW);
	parse_fails("load vg/lv\n0 18014398509481983 /dev/a 0\n"
		    "18014398509481983 1 /dev/b 0\n"
		    "18014398509481984 1 /dev/c 0\n",
		    -EOVERFLOW);
}

static void test_lvmap__parse_rejects_nul_and_oversized_commands(void **state)
{
	struct pk_lvmap_table t;
	struct pk_error err;
	enum pk_lvmap_op op;
	static const char with_nul[] = "remove vg/lv\0x\n";
	char *big;
	char *p;
	size_t len = PK_LVMAP_CMD_MAX + 1;

	(void)state;
	pk_error_clear(&err);
	assert_int_equal(pk_lvmap_command_parse(with_nul, sizeof(with_nul) - 1, &op, &t,
						&err),
			 -EINVAL);
	assert_non_null(strstr(err.message, "NUL"));

	big = malloc(len + 1);
	assert_non_null(big);
	memset(big, 'x', len);
	big[len] = '\0';
	pk_error_clear(&err);
	assert_int_equal(pk_lvmap_command_parse(big, len, &op, &t, &err), -E2BIG);

	/* A pv line longer than any valid one. */
	p = big + sprintf(big, "load vg/lv\n0 8 /");
	memset(p, 'a', 400);
	strcpy(p + 400, " 0\n");
	parse_fails(big, -EINVAL);

	/* 1025 segments. */
	p = big + sprintf(big, "load vg/lv\n");
	for (int i = 0; i <= PK_LVMAP_MAX_SEGMENTS; i++) {
		p += sprintf(p, "%d 1 /a %d\n", i, i);
	}
	parse_fails(big, -E2BIG);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lvmap__name_rules),
		cmocka_unit_test(test_lvmap__add_appends_contiguous_segments),
		cmocka_unit_test(test_lvmap__lookup_at_boundaries),
		cmocka_unit_test(test_lvmap__lookup_many_segments_matches_linear_scan),
		cmocka_unit_test(test_lvmap__lookup_near_the_largest_size),
		cmocka_unit_test(test_lvmap__add_rejects_bad_segments),
		cmocka_unit_test(test_lvmap__add_rejects_overflow),
		cmocka_unit_test(test_lvmap__add_rejects_too_many_segments),
		cmocka_unit_test(test_lvmap__validate_rejects_every_rule),
		cmocka_unit_test(test_lvmap__validate_rejects_too_many_segments),
		cmocka_unit_test(test_lvmap__format_parse_round_trip),
		cmocka_unit_test(test_lvmap__parse_accepts_a_missing_final_newline),
		cmocka_unit_test(test_lvmap__format_rejects_bad_tables),
		cmocka_unit_test(test_lvmap__parse_rejects_malformed_commands),
		cmocka_unit_test(test_lvmap__parse_rejects_bad_tables),
		cmocka_unit_test(test_lvmap__parse_rejects_nul_and_oversized_commands),
	};

	return cmocka_run_group_tests_name("lvmap", tests, NULL, NULL);
}
