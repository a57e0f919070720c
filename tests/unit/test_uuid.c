/* Identities (common/uuid.c): generation, parse and format. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/uuid.h"

static void test_uuid__generate_is_canonical_v4(void **state)
{
	char a[PK_UUID_BUFLEN], b[PK_UUID_BUFLEN];
	uint8_t u[PK_UUID_BYTES];

	(void)state;
	pk_uuid_generate(a);
	pk_uuid_generate(b);
	assert_int_equal(strlen(a), PK_UUID_STRLEN);
	assert_true(pk_uuid_valid(a));
	assert_true(pk_uuid_valid(b));
	assert_string_not_equal(a, b);
	/* the text shows the version and variant ... */
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89ab", a[19]));
	/* ... and so do the bytes */
	assert_int_equal(pk_uuid_parse(a, u), 0);
	assert_int_equal(u[6] >> 4, 4);
	assert_int_equal(u[8] >> 6, 2);
}

static void test_uuid__many_differ(void **state)
{
	char ids[64][PK_UUID_BUFLEN];

	(void)state;
	for (int i = 0; i < 64; i++) {
		pk_uuid_generate(ids[i]);
		for (int j = 0; j < i; j++) {
			assert_string_not_equal(ids[i], ids[j]);
		}
	}
}

static void test_uuid__parse_format_round_trip(void **state)
{
	static const char text[] = "0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b";
	static const uint8_t bytes[PK_UUID_BYTES] = { 0x0b, 0x6a, 0x3f, 0x1e, 0x5c, 0x2d,
						      0x4e, 0x8f, 0x9a, 0x7b, 0x1c, 0x2d,
						      0x3e, 0x4f, 0x5a, 0x6b };
	uint8_t u[PK_UUID_BYTES];
	char out[PK_UUID_BUFLEN];

	(void)state;
	assert_int_equal(pk_uuid_parse(text, u), 0);
	assert_memory_equal(u, bytes, sizeof(bytes));
	pk_uuid_format(u, out);
	assert_string_equal(out, text);

	for (int i = 0; i < 16; i++) {
		char id[PK_UUID_BUFLEN];

		pk_uuid_generate(id);
		assert_int_equal(pk_uuid_parse(id, u), 0);
		pk_uuid_format(u, out);
		assert_string_equal(out, id);
	}
	memset(out, 0, sizeof(out));
	pk_uuid_format((const uint8_t[PK_UUID_BYTES]){ 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
						       0, 0, 0, 0, 0, 0, 0, 0xa5 },
		       out);
	assert_string_equal(out, "ffffffff-0000-0000-0000-0000000000a5");
}

static void test_uuid__parse_refuses_non_canonical(void **state)
{
	uint8_t u[PK_UUID_BYTES] = { 0 };

	(void)state;
	assert_int_equal(pk_uuid_parse(NULL, u), -EINVAL);
	assert_int_equal(pk_uuid_parse("", u), -EINVAL);
	assert_int_equal(pk_uuid_parse("0B6A3F1E-5C2D-4E8F-9A7B-1C2D3E4F5A6B", u), -EINVAL);
	assert_int_equal(pk_uuid_parse("0b6a3f1e5c2d4e8f9a7b1c2d3e4f5a6b", u), -EINVAL);
	assert_int_equal(pk_uuid_parse("0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6", u), -EINVAL);
	assert_int_equal(pk_uuid_parse("0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6bb", u), -EINVAL);
	assert_int_equal(pk_uuid_parse("0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6g", u), -EINVAL);
	for (size_t i = 0; i < sizeof(u); i++) {
		assert_int_equal(u[i], 0); /* untouched */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid__generate_is_canonical_v4),
		cmocka_unit_test(test_uuid__many_differ),
		cmocka_unit_test(test_uuid__parse_format_round_trip),
		cmocka_unit_test(test_uuid__parse_refuses_non_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
