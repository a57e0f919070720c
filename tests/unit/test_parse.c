/* Decimal number parsing (common/parse.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/parse.h"

static void test_parse__whole_string(void **state)
{
	uint64_t v = 42;

	(void)state;
	assert_int_equal(pk_parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(pk_parse_u64("1234567890", &v), 0);
	assert_int_equal(v, 1234567890u);
	assert_int_equal(pk_parse_u64("007", &v), 0);
	assert_int_equal(v, 7);
}

static void test_parse__refuses_no_number(void **state)
{
	uint64_t v = 42;

	(void)state;
	assert_int_equal(pk_parse_u64("", &v), -EINVAL);
	assert_int_equal(pk_parse_u64("x1", &v), -EINVAL);
	assert_int_equal(pk_parse_u64("-1", &v), -EINVAL);
	assert_int_equal(pk_parse_u64("+1", &v), -EINVAL);
	assert_int_equal(pk_parse_u64(" 1", &v), -EINVAL);
	assert_int_equal(pk_parse_u64("0x10", &v), -EINVAL);
	assert_int_equal(v, 42); /* untouched on failure */
}

static void test_parse__refuses_trailing_garbage(void **state)
{
	uint64_t v = 42;

	(void)state;
	assert_int_equal(pk_parse_u64("12a", &v), -EINVAL);
	assert_int_equal(pk_parse_u64("12 ", &v), -EINVAL);
	assert_int_equal(pk_parse_u64("1.5", &v), -EINVAL);
	assert_int_equal(v, 42);
}

static void test_parse__max_and_overflow(void **state)
{
	uint64_t v = 42;

	(void)state;
	assert_int_equal(pk_parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	v = 42;
	assert_int_equal(pk_parse_u64("18446744073709551616", &v), -ERANGE); /* 2^64 */
	assert_int_equal(pk_parse_u64("18446744073709551620", &v), -ERANGE);
	assert_int_equal(pk_parse_u64("99999999999999999999999", &v), -ERANGE);
	assert_int_equal(v, 42);
	/* leading zeros do not count towards the range */
	assert_int_equal(pk_parse_u64("0018446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
}

static void test_parse__prefix_stops_at_non_digit(void **state)
{
	const char *s = "512 rest";
	uint64_t v = 0;
	size_t used = 0;

	(void)state;
	assert_int_equal(pk_parse_u64_prefix(s, strlen(s), &v, &used), 0);
	assert_int_equal(v, 512);
	assert_int_equal(used, 3);
	/* the length bounds the read: no NUL needed */
	assert_int_equal(pk_parse_u64_prefix("98765", 2, &v, &used), 0);
	assert_int_equal(v, 98);
	assert_int_equal(used, 2);
	assert_int_equal(pk_parse_u64_prefix("98765", 0, &v, NULL), -EINVAL);
	assert_int_equal(pk_parse_u64_prefix(" 1", 2, &v, NULL), -EINVAL);
	assert_int_equal(pk_parse_u64_prefix("18446744073709551616x", 21, &v, NULL), -ERANGE);
	assert_int_equal(pk_parse_u64_prefix("18446744073709551615x", 21, &v, &used), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(used, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse__whole_string),
		cmocka_unit_test(test_parse__refuses_no_number),
		cmocka_unit_test(test_parse__refuses_trailing_garbage),
		cmocka_unit_test(test_parse__max_and_overflow),
		cmocka_unit_test(test_parse__prefix_stops_at_non_digit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
