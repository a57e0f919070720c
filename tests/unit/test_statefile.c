/* Atomic state files (common/statefile.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/statefile.h"
#include "common/strv.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pk-test-state-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_statefile__write_read_replace_remove(void **state)
{
	struct pk_error err;
	void *data = NULL;
	size_t len = 0;
	char sub[128];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/a/b/jobs", dir);
	assert_int_equal(pk_statefile_mkdir(sub, &err), 0);
	assert_int_equal(pk_statefile_write(sub, "j1.job", "one", 3, &err), 0);
	assert_int_equal(pk_statefile_write(sub, "j1.job", "second", 6, &err), 0);
	assert_int_equal(pk_statefile_read(sub, "j1.job", &data, &len, &err), 0);
	assert_int_equal(len, 6);
	assert_string_equal(data, "second");
	free(data);
	assert_int_equal(pk_statefile_remove(sub, "j1.job", &err), 0);
	assert_int_equal(pk_statefile_remove(sub, "j1.job", &err), 0);
	assert_int_equal(pk_statefile_read(sub, "j1.job", &data, &len, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
}

static void test_statefile__list_skips_temp_and_other(void **state)
{
	struct pk_error err;
	char **names = NULL;
	size_t n = 0;
	char tmp[128];
	FILE *f;

	(void)state;
	assert_int_equal(pk_statefile_write(dir, "b.job", "x", 1, &err), 0);
	assert_int_equal(pk_statefile_write(dir, "a.job", "x", 1, &err), 0);
	assert_int_equal(pk_statefile_write(dir, "a.task", "x", 1, &err), 0);
	/* A temp file left by a crash mid-write is not a record. */
	snprintf(tmp, sizeof(tmp), "%s/.c.job.tmp", dir);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(pk_statefile_list(dir, ".job", &names, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "a.job");
	assert_string_equal(names[1], "b.job");
	pk_strv_free(names);
	assert_int_equal(pk_statefile_list("/nonexistent-pk", ".job", &names, &n, &err), 0);
	assert_int_equal(n, 0);
}

static void test_statefile__rejects_path_names(void **state)
{
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_statefile_write(dir, "../escape", "x", 1, &err), -EINVAL);
	assert_int_equal(pk_statefile_write(dir, ".hidden", "x", 1, &err), -EINVAL);
	assert_int_equal(pk_statefile_write(dir, "", "x", 1, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_true(pk_statefile_write("/nonexistent-pk/dir", "a", "x", 1, &err) < 0);
	assert_int_equal(err.code, PK_E_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_statefile__write_read_replace_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statefile__list_skips_temp_and_other, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statefile__rejects_path_names, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
