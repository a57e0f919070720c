/* Listen-URL policy and the ipc directory (common/endpoint.c). */
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

#include "common/endpoint.h"

static int check(const char *url, bool insecure, bool tls, enum pk_endpoint_kind *kind,
		 bool *warn, struct pk_error *err)
{
	struct pk_endpoint_policy p = { .insecure_tcp = insecure, .tls_ready = tls };

	return pk_endpoint_check("listen", url, &p, kind, warn, err);
}

static void test_endpoint__policy(void **state)
{
	enum pk_endpoint_kind kind;
	struct pk_error err;
	bool warn;

	(void)state;
	assert_int_equal(check("ipc:///run/pk/hsm.sock", false, false, &kind, &warn, &err), 0);
	assert_int_equal(kind, PK_ENDPOINT_IPC);
	assert_false(warn);
	assert_int_equal(check("tcp://127.0.0.1:7000", false, false, &kind, &warn, &err), -EINVAL);
	assert_non_null(strstr(err.message, "refused"));
	assert_int_equal(check("tcp://127.0.0.1:7000", true, false, &kind, &warn, &err), 0);
	assert_int_equal(kind, PK_ENDPOINT_TCP);
	assert_true(warn);
	assert_int_equal(check("tcp://[::1]:7000", true, false, &kind, &warn, &err), 0);
	assert_int_equal(check("tcp://localhost:7000", true, false, &kind, &warn, &err), 0);
	assert_int_equal(check("tcp://10.0.0.1:7000", true, false, &kind, &warn, &err), -EINVAL);
	assert_non_null(strstr(err.message, "loopback"));
	assert_int_equal(check("tcp://0.0.0.0:7000", true, false, &kind, &warn, &err), -EINVAL);
	assert_int_equal(check("tls+tcp://10.0.0.1:7000", false, false, &kind, &warn, &err), -EINVAL);
	assert_non_null(strstr(err.message, "tls_ca"));
	assert_int_equal(check("tls+tcp://10.0.0.1:7000", false, true, &kind, &warn, &err), 0);
	assert_int_equal(kind, PK_ENDPOINT_TLS_TCP);
	assert_false(warn);
	assert_int_equal(check("ws://127.0.0.1:7000", true, true, &kind, &warn, &err), -EINVAL);
	assert_non_null(strstr(err.message, "scheme"));
	assert_int_equal(check("tcp://nohost", true, true, &kind, &warn, &err), -EINVAL);
	assert_int_equal(check("", true, true, &kind, &warn, &err), -EINVAL);
}

static void test_endpoint__url_host(void **state)
{
	char h[64];

	(void)state;
	assert_int_equal(pk_endpoint_url_host("tls+tcp://spm1.example:7001", h, sizeof(h)), 0);
	assert_string_equal(h, "spm1.example");
	assert_int_equal(pk_endpoint_url_host("tls+tcp://10.0.0.5:7001", h, sizeof(h)), 0);
	assert_string_equal(h, "10.0.0.5");
	assert_int_equal(pk_endpoint_url_host("tls+tcp://[fd00::5]:7001", h, sizeof(h)), 0);
	assert_string_equal(h, "fd00::5");
	assert_int_equal(pk_endpoint_url_host("tls+tcp://nohost", h, sizeof(h)), -EINVAL);
	assert_int_equal(pk_endpoint_url_host("tls+tcp://:7001", h, sizeof(h)), -EINVAL);
	assert_int_equal(pk_endpoint_url_host("no-scheme:7001", h, sizeof(h)), -EINVAL);
	assert_int_equal(pk_endpoint_url_host(NULL, h, sizeof(h)), -EINVAL);
	assert_int_equal(pk_endpoint_url_host("tls+tcp://averyveryverylonghostname:1", h, 8),
			 -EINVAL);
}

static void test_endpoint__ipc_dir(void **state)
{
	char base[] = "/tmp/pk-test-endpoint-XXXXXX";
	char dir[128], url[160];
	struct pk_error err;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/run", base);
	snprintf(url, sizeof(url), "ipc://%s/hsm.sock", dir);
	assert_int_equal(pk_endpoint_prepare_ipc_dir(url, &err), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(pk_endpoint_prepare_ipc_dir(url, &err), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* sticky shared directories are left alone */
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(pk_endpoint_prepare_ipc_dir(url, &err), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01777);
	assert_int_equal(pk_endpoint_prepare_ipc_dir("tcp://127.0.0.1:1", &err), 0);
	assert_int_equal(pk_endpoint_prepare_ipc_dir("ipc:///sock", &err), -EINVAL);
	rmdir(dir);
	rmdir(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoint__policy),
		cmocka_unit_test(test_endpoint__url_host),
		cmocka_unit_test(test_endpoint__ipc_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
