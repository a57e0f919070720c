/* The chain rule shared by spmd and hsmd (common/volchain.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/volchain.h"

#define IMG "11111111-0000-4000-8000-000000000000"
#define OTHER "22222222-0000-4000-8000-000000000000"
#define A "aaaaaaaa-0000-4000-8000-000000000000"
#define B "bbbbbbbb-0000-4000-8000-000000000000"
#define C "cccccccc-0000-4000-8000-000000000000"

static struct pk_volume_meta vol(const char *image, const char *parent, enum pk_volume_role role,
				 enum pk_volume_legality legal, uint64_t gen)
{
	struct pk_volume_meta m = { 0 };

	snprintf(m.image, sizeof(m.image), "%s", image);
	snprintf(m.parent, sizeof(m.parent), "%s", parent ? parent : PK_META_NO_PARENT);
	m.format = PK_VOLUME_COW;
	m.role = role;
	m.legality = legal;
	m.capacity = 1 << 20;
	m.generation = gen;
	return m;
}

static int order(struct pk_volume_meta *m, size_t n, const char *leaf, char *out, size_t size,
		 struct pk_error *err)
{
	static const char *const ids[] = { A, B, C };
	struct pk_volchain_item items[3];
	size_t idx[3], len = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		items[i].id = ids[i];
		items[i].meta = &m[i];
	}
	r = pk_volchain_build(items, n, "d", IMG, leaf, idx, &len, err);
	out[0] = '\0';
	for (size_t k = 0; r == 0 && k < len; k++) {
		size_t used = strlen(out);
		snprintf(out + used, size - used, "%c", ids[idx[k]][0]);
	}
	return r;
}

static void test_volchain__states_of_a_merge(void **state)
{
	struct pk_volume_meta m[3];
	struct pk_error err;
	char got[8];

	(void)state;
	/* base a <- b <- leaf c */
	m[0] = vol(IMG, NULL, PK_VOLUME_INTERNAL, PK_VOLUME_LEGAL, 2);
	m[1] = vol(IMG, A, PK_VOLUME_INTERNAL, PK_VOLUME_LEGAL, 2);
	m[2] = vol(IMG, B, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 1);
	assert_int_equal(order(m, 3, NULL, got, sizeof(got), &err), 0);
	assert_string_equal(got, "cba");
	/* internal merge of b into a: c's parent is a, b an orphan. */
	m[2] = vol(IMG, A, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 2);
	m[1] = vol(IMG, A, PK_VOLUME_INTERNAL, PK_VOLUME_ILLEGAL, 3);
	assert_int_equal(order(m, 3, NULL, got, sizeof(got), &err), 0);
	assert_string_equal(got, "ca");
	/* active commit of c into a, before the pivot: c ILLEGAL but still the top. */
	m[2] = vol(IMG, A, PK_VOLUME_LEAF, PK_VOLUME_ILLEGAL, 3);
	assert_int_equal(order(m, 3, NULL, got, sizeof(got), &err), 0);
	assert_string_equal(got, "ca");
	/* after cleanup: a is the LEAF, c an orphan. */
	m[0] = vol(IMG, NULL, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 3);
	m[2] = vol(IMG, A, PK_VOLUME_INTERNAL, PK_VOLUME_ILLEGAL, 4);
	assert_int_equal(order(m, 3, NULL, got, sizeof(got), &err), 0);
	assert_string_equal(got, "a");
	/* an unfinished creation on top is not the leaf. */
	m[1] = vol(IMG, A, PK_VOLUME_LEAF, PK_VOLUME_ILLEGAL, 0);
	assert_int_equal(order(m, 3, NULL, got, sizeof(got), &err), 0);
	assert_string_equal(got, "a");
}

static void test_volchain__broken_chains(void **state)
{
	struct pk_volume_meta m[3];
	struct pk_error err;
	char got[8];

	(void)state;
	m[0] = vol(IMG, NULL, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 1);
	m[1] = vol(IMG, NULL, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 1);
	assert_int_equal(order(m, 2, NULL, got, sizeof(got), &err), -EINVAL);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	assert_non_null(strstr(err.message, "two tops"));
	m[1] = vol(IMG, C, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 1); /* parent missing */
	m[0] = vol(IMG, NULL, PK_VOLUME_INTERNAL, PK_VOLUME_ILLEGAL, 2);
	assert_true(order(m, 2, NULL, got, sizeof(got), &err) < 0);
	assert_non_null(strstr(err.message, "does not exist"));
	m[0] = vol(OTHER, NULL, PK_VOLUME_INTERNAL, PK_VOLUME_LEGAL, 1);
	m[1] = vol(IMG, A, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 1);
	assert_true(order(m, 2, NULL, got, sizeof(got), &err) < 0);
	assert_non_null(strstr(err.message, "another image"));
	/* a loop: a -> b -> a */
	m[0] = vol(IMG, B, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 1);
	m[1] = vol(IMG, A, PK_VOLUME_INTERNAL, PK_VOLUME_LEGAL, 1);
	assert_true(order(m, 2, A, got, sizeof(got), &err) < 0);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	assert_true(order(m, 0, NULL, got, sizeof(got), &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	m[0] = vol(OTHER, NULL, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 1);
	assert_true(order(m, 1, A, got, sizeof(got), &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_volchain__states_of_a_merge),
		cmocka_unit_test(test_volchain__broken_chains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
