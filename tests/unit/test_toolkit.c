/* String vectors, growable buffers and array growth (common/strv.c,
 * common/buf.c, pk_xgrow in common/xalloc.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/strv.h"
#include "common/xalloc.h"

static void test_toolkit__strv_push_steal_free(void **state)
{
	struct pk_strv sv = PK_STRV_INIT;
	char **v;
	size_t n = 99;
	char word[16];

	(void)state;
	assert_null(pk_strv_steal(&sv, &n));
	assert_int_equal(n, 0);
	pk_strv_free(NULL);
	pk_strv_release(NULL);
	for (int i = 0; i < 100; i++) {
		snprintf(word, sizeof(word), "w%d", i);
		pk_strv_push(&sv, word);
		assert_int_equal(sv.n, (size_t)i + 1);
		assert_null(sv.v[sv.n]); /* terminated after every push */
	}
	pk_strv_push_take(&sv, pk_xstrdup("taken"));
	v = pk_strv_steal(&sv, &n);
	assert_null(sv.v);
	assert_int_equal(sv.n, 0);
	assert_int_equal(n, 101);
	assert_string_equal(v[0], "w0");
	assert_string_equal(v[99], "w99");
	assert_string_equal(v[100], "taken");
	assert_null(v[101]);
	pk_strv_free(v);

	pk_strv_push(&sv, "again");
	pk_strv_release(&sv);
	assert_null(sv.v);
	assert_int_equal(sv.n, 0);
}

static void test_toolkit__buf_append_printf_steal(void **state)
{
	struct pk_buf b = PK_BUF_INIT;
	char *s;
	size_t len = 99;

	(void)state;
	s = pk_buf_steal(&b, &len);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);

	pk_buf_append(&b, "ab", 2);
	pk_buf_putc(&b, 'c');
	assert_int_equal(b.len, 3);
	assert_string_equal(b.data, "abc");
	for (int i = 0; i < 1000; i++) {
		pk_buf_printf(&b, " %d", i);
	}
	assert_int_equal(strncmp(b.data, "abc 0 1 2", 9), 0);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(strlen(b.data), b.len);
	pk_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	/* one long formatted piece, beyond any capacity so far */
	pk_buf_printf(&b, "%5000s|", "x");
	assert_int_equal(b.len, 5001);
	assert_int_equal(b.data[4999], 'x');
	assert_int_equal(b.data[5000], '|');
	s = pk_buf_steal(&b, &len);
	assert_int_equal(len, 5001);
	assert_null(b.data);
	free(s);
	pk_buf_release(&b);
	pk_buf_release(NULL);
}

static void test_toolkit__buf_reserve_commit(void **state)
{
	struct pk_buf b = PK_BUF_INIT;
	char *p;

	(void)state;
	p = pk_buf_reserve(&b, 10);
	assert_true(b.cap >= 11);
	memcpy(p, "0123456789", 10);
	pk_buf_commit(&b, 4);
	assert_string_equal(b.data, "0123");
	pk_buf_append(&b, "\0z", 2); /* bytes with a NUL of their own */
	assert_int_equal(b.len, 6);
	assert_int_equal(b.data[5], 'z');
	assert_int_equal(b.data[6], '\0');
	pk_buf_release(&b);
}

static void test_toolkit__xgrow(void **state)
{
	int *v = NULL;
	size_t cap = 0, n = 0, reallocs = 0;

	(void)state;
	for (int i = 0; i < 10000; i++) {
		size_t before = cap;

		v = pk_xgrow(v, &cap, n + 1, sizeof(*v));
		reallocs += cap != before;
		assert_true(cap >= n + 1);
		v[n++] = i;
	}
	assert_true(reallocs < 20); /* doubling, not one by one */
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(v[i], i);
	}
	free(v);

	/* no capacity kept: exactly the size asked for */
	v = pk_xgrow(NULL, NULL, 3, sizeof(*v));
	v[2] = 7;
	v = pk_xgrow(v, NULL, 4, sizeof(*v));
	assert_int_equal(v[2], 7);
	free(v);
}

static void test_toolkit__log_escape(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(pk_log_escape("vm\nINFO forged\r\x1b[2J", out, sizeof(out)),
			    "vm\\x0aINFO forged\\x0d\\x1b[2J");
	assert_string_equal(pk_log_escape("plain 'text' ok", out, sizeof(out)), "plain 'text' ok");
	/* Cut when full, never in the middle of an escape. */
	assert_string_equal(pk_log_escape("ab\ncd", out, 6), "ab");
	assert_string_equal(pk_log_escape("abcdef", out, 4), "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toolkit__strv_push_steal_free),
		cmocka_unit_test(test_toolkit__buf_append_printf_steal),
		cmocka_unit_test(test_toolkit__buf_reserve_commit),
		cmocka_unit_test(test_toolkit__xgrow),
		cmocka_unit_test(test_toolkit__log_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
