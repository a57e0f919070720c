/*
 * Unit tests of lab/writelog: the writing guest's record format, the
 * parsing of its acknowledgements and the judgement of a block.
 */
/* pk-test-fakes: */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "lab/writelog.h"

#define BS PK_WRITELOG_BLOCK_SIZE

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static int add(struct pk_writelog_acks *acks, const char *line)
{
	return pk_writelog_acks_add_line(acks, line, strlen(line));
}

static void test_verify__record_round_trip(void **state)
{
	uint8_t buf[BS];
	struct pk_writelog_record rec;
	const char header[] = "PKW1 disk=vda seq=42 idx=7\n";

	(void)state;
	assert_int_equal(pk_writelog_record_format(buf, "vda", 42, 7), 0);
	assert_memory_equal(buf, header, sizeof(header) - 1);
	for (size_t i = sizeof(header) - 1; i < PK_WRITELOG_HEADER_SIZE; i++) {
		assert_int_equal(buf[i], 0);
	}
	assert_int_equal(pk_writelog_header_parse(buf, &rec), 0);
	assert_string_equal(rec.disk, "vda");
	assert_int_equal(rec.seq, 42);
	assert_int_equal(rec.idx, 7);
	assert_true(pk_writelog_record_intact(buf, &rec));
}

/* The format is what old serial logs and images were written with. */
static void test_verify__record_format_is_stable(void **state)
{
	uint8_t buf[BS];

	(void)state;
	assert_int_equal(pk_writelog_record_format(buf, "vdb", 123456789, 2047), 0);
	assert_int_equal(fnv(buf, sizeof(buf)), UINT64_C(0xec5035615a656820));
}

/* The pattern as docs/GUEST.md states it: splitmix64 seeded by FNV-1a of the header. */
static void test_verify__pattern_follows_the_documented_recipe(void **state)
{
	const char header[] = "PKW1 disk=vda seq=5 idx=9\n";
	uint64_t s = fnv((const uint8_t *)header, sizeof(header) - 1);
	uint8_t buf[BS];

	(void)state;
	pk_writelog_record_format(buf, "vda", 5, 9);
	for (size_t off = PK_WRITELOG_HEADER_SIZE; off < BS; off += 8) {
		uint64_t z = (s += UINT64_C(0x9e3779b97f4a7c15));

		z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
		z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
		z ^= z >> 31;
		for (size_t b = 0; b < 8; b++) {
			assert_int_equal(buf[off + b], (uint8_t)(z >> (8 * b)));
		}
	}
}

static void test_verify__patterns_differ_by_every_field(void **state)
{
	uint8_t a[BS], b[BS];

	(void)state;
	pk_writelog_record_format(a, "vda", 1, 1);
	pk_writelog_record_format(b, "vdb", 1, 1);
	assert_memory_not_equal(a + 128, b + 128, BS - 128);
	pk_writelog_record_format(b, "vda", 2, 1);
	assert_memory_not_equal(a + 128, b + 128, BS - 128);
	pk_writelog_record_format(b, "vda", 1, 2);
	assert_memory_not_equal(a + 128, b + 128, BS - 128);
}

static void test_verify__invalid_disk_names_are_refused(void **state)
{
	uint8_t buf[BS];

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(pk_writelog_record_format(buf, "", 1, 1), -EINVAL);
	assert_int_equal(pk_writelog_record_format(buf, "vd a", 1, 1), -EINVAL);
	assert_int_equal(pk_writelog_record_format(buf, "../vda", 1, 1), -EINVAL);
	assert_int_equal(pk_writelog_record_format(buf, "abcdefghijklmnopqrstuvwxyz0123456", 1, 1),
			 -EINVAL);
	assert_int_equal(buf[0], 0xee);
	assert_true(pk_writelog_disk_name_valid("vda"));
	assert_true(pk_writelog_disk_name_valid("sd_b-1"));
	assert_false(pk_writelog_disk_name_valid(NULL));
}

static void test_verify__header_parse_rejects_garbage(void **state)
{
	uint8_t buf[BS];
	struct pk_writelog_record rec;

	(void)state;
	memset(buf, 0, sizeof(buf));
	assert_int_equal(pk_writelog_header_parse(buf, &rec), -EBADMSG);
	memcpy(buf, "PKW1 disk=vda seq=1 idx=\n", 25);
	assert_int_equal(pk_writelog_header_parse(buf, &rec), -EBADMSG);
	memcpy(buf, "PKW1 disk=vda seq=99999999999999999999 idx=1\n", 46);
	assert_int_equal(pk_writelog_header_parse(buf, &rec), -EBADMSG);
	memset(buf, 'A', PK_WRITELOG_HEADER_SIZE);
	memcpy(buf, "PKW1 disk=vda seq=1 idx=1", 25); /* no newline in the header */
	assert_int_equal(pk_writelog_header_parse(buf, &rec), -EBADMSG);
}

static void test_verify__block_check_verdicts(void **state)
{
	uint8_t buf[BS];
	struct pk_writelog_record found;

	(void)state;
	pk_writelog_record_format(buf, "vda", 10, 5);
	assert_int_equal(pk_writelog_block_check(buf, "vda", 5, 10, &found), PK_WRITELOG_OK);
	assert_int_equal(pk_writelog_block_check(buf, "vda", 5, 9, &found),
			 PK_WRITELOG_OK_NEWER);
	assert_int_equal(found.seq, 10);
	assert_int_equal(pk_writelog_block_check(buf, "vda", 5, 11, &found),
			 PK_WRITELOG_LOST_OLDER);
	assert_int_equal(pk_writelog_block_check(buf, "vda", 6, 10, &found),
			 PK_WRITELOG_LOST_MISPLACED);
	assert_int_equal(pk_writelog_block_check(buf, "vdb", 5, 10, &found),
			 PK_WRITELOG_LOST_MISPLACED);

	buf[BS - 1] ^= 1;
	assert_int_equal(pk_writelog_block_check(buf, "vda", 5, 10, &found),
			 PK_WRITELOG_LOST_DAMAGED);

	/* A torn write: the first half of a newer record over an older one. */
	pk_writelog_record_format(buf, "vda", 10, 5);
	{
		uint8_t newer[BS];

		pk_writelog_record_format(newer, "vda", 12, 5);
		memcpy(buf, newer, BS / 2);
	}
	assert_int_equal(pk_writelog_block_check(buf, "vda", 5, 10, NULL),
			 PK_WRITELOG_LOST_DAMAGED);

	memset(buf, 0, sizeof(buf));
	assert_int_equal(pk_writelog_block_check(buf, "vda", 5, 10, NULL),
			 PK_WRITELOG_LOST_ZERO);
	buf[100] = 1;
	assert_int_equal(pk_writelog_block_check(buf, "vda", 5, 10, NULL),
			 PK_WRITELOG_LOST_GARBAGE);

	assert_true(pk_writelog_verdict_ok(PK_WRITELOG_OK));
	assert_true(pk_writelog_verdict_ok(PK_WRITELOG_OK_NEWER));
	assert_false(pk_writelog_verdict_ok(PK_WRITELOG_LOST_OLDER));
	assert_false(pk_writelog_verdict_ok(PK_WRITELOG_LOST_ZERO));
}

static void test_verify__describe_names_the_seqs(void **state)
{
	struct pk_writelog_record found = { .disk = "vda", .seq = 97, .idx = 3 };
	char out[256];

	(void)state;
	pk_writelog_verdict_describe(PK_WRITELOG_LOST_OLDER, 120, &found, out, sizeof(out));
	assert_non_null(strstr(out, "acknowledged seq 120"));
	assert_non_null(strstr(out, "older seq 97"));
	pk_writelog_verdict_describe(PK_WRITELOG_LOST_ZERO, 5, NULL, out, sizeof(out));
	assert_non_null(strstr(out, "zeros"));
}

static void test_verify__acks_keep_the_highest_seq(void **state)
{
	struct pk_writelog_acks *acks = pk_writelog_acks_new();
	struct pk_writelog_ack_stats st;
	uint64_t seq = 0;

	(void)state;
	assert_int_equal(add(acks, "PKREADY disks=vda,vdb blocks=2048 seq=1\r\n"), 0);
	assert_int_equal(add(acks, "PKACK vda 8 4"), 0); /* cut: no newline */
	assert_int_equal(add(acks, "PKACK vda 1 5\r\n"), 1);
	assert_int_equal(add(acks, "PKACK vdb 2 5\n"), 1);
	assert_int_equal(add(acks, "PKACK vda 7 5\n"), 1);
	assert_int_equal(add(acks, "PKACK vda 3 5\r\n"), 1); /* out of order: kept 7 */
	assert_int_equal(add(acks, "PKACK vda 9 100\r\n"), 1);

	assert_int_equal(pk_writelog_acks_get(acks, "vda", 5, &seq), 0);
	assert_int_equal(seq, 7);
	assert_int_equal(pk_writelog_acks_get(acks, "vdb", 5, &seq), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(pk_writelog_acks_get(acks, "vda", 6, &seq), -ENOENT);
	assert_int_equal(pk_writelog_acks_get(acks, "vda", 100000, &seq), -ENOENT);
	assert_int_equal(pk_writelog_acks_get(acks, "vdc", 5, &seq), -ENOENT);
	assert_int_equal(pk_writelog_acks_block_end(acks, "vda"), 101);
	assert_int_equal(pk_writelog_acks_block_count(acks, "vda"), 2);
	assert_int_equal(pk_writelog_acks_block_count(acks, "vdb"), 1);
	assert_int_equal(pk_writelog_acks_block_end(acks, "vdc"), 0);
	assert_int_equal(pk_writelog_acks_disk_count(acks), 2);
	assert_string_equal(pk_writelog_acks_disk_name(acks, 0), "vda");
	assert_string_equal(pk_writelog_acks_disk_name(acks, 1), "vdb");
	assert_null(pk_writelog_acks_disk_name(acks, 2));

	pk_writelog_acks_stats(acks, &st);
	assert_int_equal(st.acks, 5);
	assert_int_equal(st.malformed, 1);
	assert_int_equal(st.ready, 1);
	assert_int_equal(st.ready_blocks, 2048);
	pk_writelog_acks_free(acks);
}

static void test_verify__mangled_ack_lines_are_ignored(void **state)
{
	static const char *const bad[] = {
		"PKACK vda 12[    3.1] random: crng init done",
		"[    3.1] foo PKACK vda 1 2",
		"PKACK vda 1",
		"PKACK vda 1 2 3",
		"PKACK vda  1 2",
		"PKACK vda -1 2",
		"PKACK vda 1 99999999999",          /* beyond the block limit */
		"PKACK vda 99999999999999999999 1", /* overflows */
		"PKACK v/da 1 2",
	};
	struct pk_writelog_acks *acks = pk_writelog_acks_new();
	struct pk_writelog_ack_stats st;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[128];

		snprintf(line, sizeof(line), "%s\r\n", bad[i]);
		assert_int_equal(add(acks, line), 0);
	}
	assert_int_equal(add(acks, "PKSTATS seq=5 writes=4"), 0);
	assert_int_equal(add(acks, "Booting from ROM..."), 0);
	pk_writelog_acks_stats(acks, &st);
	assert_int_equal(st.acks, 0);
	assert_int_equal(st.malformed, sizeof(bad) / sizeof(bad[0]));
	assert_int_equal(pk_writelog_acks_disk_count(acks), 0);
	pk_writelog_acks_free(acks);
}

static void test_verify__load_reads_a_log_file(void **state)
{
	char path[] = "/tmp/pk-test-verify.XXXXXX";
	struct pk_writelog_acks *acks = pk_writelog_acks_new();
	struct pk_error err;
	uint64_t seq = 0;
	FILE *f;
	int fd;

	(void)state;
	pk_error_clear(&err);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("SeaBIOS\r\nPKBOOT kernel=x\r\nPKREADY disks=vda blocks=16 seq=1\r\n", f);
	fputs("PKACK vda 1 3\r\nPKACK vda 2 3\r\nPKACK vda 3 3", f); /* last line cut */
	fclose(f);

	assert_int_equal(pk_writelog_acks_load(acks, path, &err), 0);
	assert_int_equal(pk_writelog_acks_get(acks, "vda", 3, &seq), 0);
	assert_int_equal(seq, 2);
	unlink(path);

	assert_int_equal(pk_writelog_acks_load(acks, path, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_IO);
	assert_non_null(strstr(err.message, path));
	pk_writelog_acks_free(acks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify__record_round_trip),
		cmocka_unit_test(test_verify__record_format_is_stable),
		cmocka_unit_test(test_verify__pattern_follows_the_documented_recipe),
		cmocka_unit_test(test_verify__patterns_differ_by_every_field),
		cmocka_unit_test(test_verify__invalid_disk_names_are_refused),
		cmocka_unit_test(test_verify__header_parse_rejects_garbage),
		cmocka_unit_test(test_verify__block_check_verdicts),
		cmocka_unit_test(test_verify__describe_names_the_seqs),
		cmocka_unit_test(test_verify__acks_keep_the_highest_seq),
		cmocka_unit_test(test_verify__mangled_ack_lines_are_ignored),
		cmocka_unit_test(test_verify__load_reads_a_log_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
