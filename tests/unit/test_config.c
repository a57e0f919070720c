/* Settings file and overrides (common/config.c), uuid and error helpers. */
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

#include "common/config.h"
#include "common/uuid.h"

static const struct pk_config_key schema[] = {
	{ "host_id", PK_CONFIG_INT, "1", 1, 2000, "host id" },
	{ "listen", PK_CONFIG_STR, NULL, 0, 0, "url" },
	{ "verbose", PK_CONFIG_BOOL, "no", 0, 0, "flag" },
};

static char *write_file(const char *text)
{
	char *path = strdup("/tmp/pk-test-config-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_config__defaults_file_and_overrides(void **state)
{
	struct pk_config cfg;
	struct pk_error err;
	char *path = write_file("# comment\nhost_id = 3\n[hsm]\nlisten = ipc:///a\n"
				"[spm]\nlisten = ipc:///b\nverbose = yes\n");

	(void)state;
	pk_config_init(&cfg, "hsm", schema, 3);
	assert_int_equal(pk_config_int(&cfg, "host_id"), 1);
	assert_null(pk_config_str(&cfg, "listen"));
	assert_int_equal(pk_config_load_file(&cfg, path, &err), 0);
	assert_int_equal(pk_config_int(&cfg, "host_id"), 3);
	assert_string_equal(pk_config_str(&cfg, "listen"), "ipc:///a");
	assert_false(pk_config_bool(&cfg, "verbose")); /* [spm] section skipped */
	assert_int_equal(pk_config_set(&cfg, "host_id = 9", &err), 0);
	assert_int_equal(pk_config_int(&cfg, "host_id"), 9);
	assert_int_equal(pk_config_set(&cfg, "verbose=on", &err), 0);
	assert_true(pk_config_bool(&cfg, "verbose"));
	pk_config_release(&cfg);
	unlink(path);
	free(path);
}

static void test_config__rejects_bad_input(void **state)
{
	struct pk_config cfg;
	struct pk_error err;
	char *path = write_file("hostid = 3\n");
	char *bad_syntax = write_file("this is not a setting\n");
	const char *required[] = { "listen" };

	(void)state;
	pk_config_init(&cfg, "hsm", schema, 3);
	assert_int_equal(pk_config_load_file(&cfg, path, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "unknown setting 'hostid'"));
	assert_non_null(strstr(err.message, path));
	assert_true(pk_config_load_file(&cfg, bad_syntax, &err) < 0);
	assert_non_null(strstr(err.message, "syntax error"));
	assert_true(pk_config_load_file(&cfg, "/nonexistent/pk.conf", &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_true(pk_config_set(&cfg, "host_id=0", &err) < 0);
	assert_non_null(strstr(err.message, "out of range"));
	assert_true(pk_config_set(&cfg, "host_id=abc", &err) < 0);
	assert_true(pk_config_set(&cfg, "verbose=maybe", &err) < 0);
	assert_true(pk_config_set(&cfg, "=x", &err) < 0);
	assert_true(pk_config_set(&cfg, "novalue", &err) < 0);
	assert_true(pk_config_require(&cfg, required, 1, &err) < 0);
	assert_non_null(strstr(err.message, "'listen' is required"));
	assert_int_equal(pk_config_int(&cfg, "host_id"), 1); /* unchanged by failures */
	pk_config_release(&cfg);
	unlink(path);
	unlink(bad_syntax);
	free(path);
	free(bad_syntax);
}

static void test_config__uuid_validation(void **state)
{
	char id[PK_UUID_BUFLEN];
	struct pk_error err;

	(void)state;
	pk_uuid_generate(id);
	assert_true(pk_uuid_valid(id));
	assert_true(pk_uuid_valid("0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b"));
	assert_false(pk_uuid_valid("0B6A3F1E-5C2D-4E8F-9A7B-1C2D3E4F5A6B"));
	assert_false(pk_uuid_valid("0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6"));
	assert_false(pk_uuid_valid("0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b0"));
	assert_false(pk_uuid_valid("../../../../etc/passwd-aaaaaaaaaaaaaaa"));
	assert_false(pk_uuid_valid(NULL));
	assert_int_equal(pk_uuid_check("volume_id", "", &err), -EINVAL);
	assert_non_null(strstr(err.message, "volume_id is required"));
	assert_int_equal(pk_uuid_check("image_id", "x/y", &err), -EINVAL);
	assert_non_null(strstr(err.message, "image_id 'x/y'"));
}

static void test_config__error_helpers(void **state)
{
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_error_set(&err, PK_E_NOT_FOUND, 0, "volume %s", "v"), -ENOENT);
	pk_error_prefix(&err, "delete");
	assert_string_equal(err.message, "delete: volume v");
	assert_int_equal(pk_error_set(NULL, PK_E_BUSY, 0, "x"), -EBUSY);
	assert_int_equal(pk_error_set(&err, PK_E_IO, -EROFS, "x"), -EROFS);
	pk_error_clear(&err);
	assert_false(pk_error_is_set(&err));
	assert_string_equal(pk_errc_name((enum pk_errc)1000), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config__defaults_file_and_overrides),
		cmocka_unit_test(test_config__rejects_bad_input),
		cmocka_unit_test(test_config__uuid_validation),
		cmocka_unit_test(test_config__error_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
