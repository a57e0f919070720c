/* nng transport (common/rpc.c) over a real ipc socket in this process. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/rpc.h"

static char url[128];

/* Echoes; a request starting with "slow" takes 500 ms; "drop" gets no reply. */
static int echo_handler(void *ctx, const void *req, size_t len, void **ret, size_t *ret_len)
{
	(void)ctx;
	if (len >= 4 && memcmp(req, "slow", 4) == 0) {
		usleep(500 * 1000);
	}
	if (len >= 4 && memcmp(req, "drop", 4) == 0) {
		return -EINVAL;
	}
	*ret = malloc(len + 1);
	memcpy(*ret, req, len);
	*ret_len = len;
	return 0;
}

static void test_rpc__echo_and_errors(void **state)
{
	struct pk_rpc_server_config sc = { url, 4, 1 << 20 };
	struct pk_rpc_server *srv = NULL;
	struct pk_rpc_client *c = NULL;
	struct pk_error err;
	void *reply = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(pk_rpc_server_start(&sc, echo_handler, NULL, &srv, &err), 0);
	assert_int_equal(pk_rpc_client_new(url, 1 << 20, &c, &err), 0);
	assert_int_equal(pk_rpc_client_call(c, "hello", 5, 2000, &reply, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(reply, "hello", 5);
	free(reply);
	/* No reply: the caller times out with a clear error. */
	assert_int_equal(pk_rpc_client_call(c, "drop", 4, 200, &reply, &len, &err), -ETIMEDOUT);
	assert_int_equal(err.code, PK_E_TIMEOUT);
	/* The server keeps serving. */
	assert_int_equal(pk_rpc_client_call(c, "again", 5, 2000, &reply, &len, &err), 0);
	free(reply);
	/* A second server on the same address is refused. */
	{
		struct pk_rpc_server *srv2 = NULL;
		assert_true(pk_rpc_server_start(&sc, echo_handler, NULL, &srv2, &err) < 0);
		assert_null(srv2);
	}
	pk_rpc_client_free(c);
	pk_rpc_server_stop(srv);
}

static void *slow_caller(void *arg)
{
	struct pk_rpc_client *c = arg;
	struct pk_error err;
	void *reply = NULL;
	size_t len;

	if (pk_rpc_client_call(c, "slowly", 6, 3000, &reply, &len, &err) == 0) {
		free(reply);
	}
	return NULL;
}

static void test_rpc__slow_call_does_not_block_fast(void **state)
{
	struct pk_rpc_server_config sc = { url, 4, 1 << 20 };
	struct pk_rpc_server *srv = NULL;
	struct pk_rpc_client *c = NULL;
	struct pk_error err;
	void *reply = NULL;
	size_t len;
	pthread_t t;
	uint64_t t0;

	(void)state;
	assert_int_equal(pk_rpc_server_start(&sc, echo_handler, NULL, &srv, &err), 0);
	/* One client, two concurrent calls: each call has its own nng context. */
	assert_int_equal(pk_rpc_client_new(url, 1 << 20, &c, &err), 0);
	assert_int_equal(pthread_create(&t, NULL, slow_caller, c), 0);
	usleep(100 * 1000);
	t0 = pk_clock_monotonic_ms();
	assert_int_equal(pk_rpc_client_call(c, "quick", 5, 2000, &reply, &len, &err), 0);
	free(reply);
	assert_true(pk_clock_monotonic_ms() - t0 < 300);
	pthread_join(t, NULL);
	pk_rpc_client_free(c);
	pk_rpc_server_stop(srv);
}

static void test_rpc__nobody_listening(void **state)
{
	struct pk_rpc_client *c = NULL;
	struct pk_error err;
	void *reply = NULL;
	size_t len;

	(void)state;
	assert_int_equal(pk_rpc_client_new("ipc:///tmp/pk-test-nobody-here.sock", 1 << 20, &c, &err), 0);
	assert_true(pk_rpc_client_call(c, "x", 1, 500, &reply, &len, &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_non_null(strstr(err.message, "nobody answers"));
	pk_rpc_client_free(c);
	assert_int_equal(pk_rpc_client_new("bogus://x", 1 << 20, &c, &err), 0);
	assert_true(pk_rpc_client_call(c, "x", 1, 500, &reply, &len, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	pk_rpc_client_free(c);
}

static void test_rpc__pub_sub(void **state)
{
	struct pk_rpc_pub *p = NULL;
	struct pk_rpc_sub *s = NULL;
	struct pk_error err;
	char purl[160];
	void *msg = NULL;
	size_t len = 0;
	int got = 0;

	(void)state;
	snprintf(purl, sizeof(purl), "%s.events", url);
	assert_int_equal(pk_rpc_pub_new(purl, &p, &err), 0);
	assert_int_equal(pk_rpc_sub_new(purl, &s, &err), 0);
	/* Subscriptions take a moment to reach the publisher. */
	for (int i = 0; i < 50 && !got; i++) {
		assert_int_equal(pk_rpc_pub_send(p, "evt", 3, &err), 0);
		if (pk_rpc_sub_recv(s, 50, &msg, &len, &err) == 0) {
			got = 1;
		}
	}
	assert_true(got);
	assert_memory_equal(msg, "evt", 3);
	free(msg);
	assert_int_equal(pk_rpc_sub_recv(s, 20, &msg, &len, &err), -ETIMEDOUT);
	pk_rpc_sub_free(s);
	pk_rpc_pub_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rpc__echo_and_errors),
		cmocka_unit_test(test_rpc__slow_call_does_not_block_fast),
		cmocka_unit_test(test_rpc__nobody_listening),
		cmocka_unit_test(test_rpc__pub_sub),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	snprintf(url, sizeof(url), "ipc:///tmp/pk-test-rpc-%d.sock", (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
