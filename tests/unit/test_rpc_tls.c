/*
 * Mutual TLS and ipc protection of common/rpc.c over real sockets in this
 * process. Certificates in tests/unit/data/tls/ (run from the repository
 * root, or set PK_TEST_DATA_DIR); tests/unit/data/tls/README says how they
 * were made.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <nng/nng.h>

#include "common/log.h"
#include "common/rpc.h"
#include "proto/spm_client.h"

static char tls_url[64];

static const char *data_dir(void)
{
	const char *d = getenv("PK_TEST_DATA_DIR");

	return d ? d : "tests/unit/data/tls";
}

/* Paths of one identity's files (NAME.pem, NAME.key) and of a CA. */
struct ident {
	char ca[256], cert[256], key[256];
	struct pk_rpc_tls tls;
};

static void ident_init(struct ident *id, const char *ca, const char *name)
{
	snprintf(id->ca, sizeof(id->ca), "%s/%s.pem", data_dir(), ca);
	snprintf(id->cert, sizeof(id->cert), "%s/%s.pem", data_dir(), name);
	snprintf(id->key, sizeof(id->key), "%s/%s.key", data_dir(), name);
	id->tls = (struct pk_rpc_tls){ id->ca, id->cert, id->key };
}

static int echo_handler(void *ctx, const struct pk_rpc_peer *peer, const void *req, size_t len,
			void **ret, size_t *ret_len)
{
	(void)ctx;
	if (len == 6 && memcmp(req, "whoami", 6) == 0) {
		/* who the server says the peer is: "tls:<CN>", or the transport */
		char who[300];
		snprintf(who, sizeof(who), "%s:%s",
			 peer->kind == PK_RPC_PEER_TLS ? "tls"
			 : peer->kind == PK_RPC_PEER_IPC ? "ipc" : "tcp",
			 peer->cn ? peer->cn : "");
		*ret = strdup(who);
		*ret_len = strlen(who);
		return 0;
	}
	*ret = malloc(len ? len : 1);
	memcpy(*ret, req, len);
	*ret_len = len;
	return 0;
}

static struct pk_rpc_server *tls_server(void)
{
	static struct ident server;
	struct pk_rpc_server_config sc = { tls_url, 2, 1 << 20, 0, &server.tls, 0 };
	struct pk_rpc_server *srv = NULL;
	struct pk_error err;

	ident_init(&server, "ca", "server");
	if (pk_rpc_server_start(&sc, echo_handler, NULL, &srv, &err) < 0) {
		fail_msg("server: %s", err.message);
	}
	return srv;
}

/* One call as the identity; returns the call's result, err filled. */
static int call_as(const char *ca, const char *name, struct pk_error *err)
{
	struct pk_rpc_client *c = NULL;
	struct ident id;
	void *reply = NULL;
	size_t len = 0;
	int r;

	assert_int_equal(pk_rpc_client_new(tls_url, 1 << 20, &c, err), 0);
	if (name) {
		ident_init(&id, ca, name);
		assert_int_equal(pk_rpc_client_set_tls(c, &id.tls, err), 0);
	}
	r = pk_rpc_client_call(c, "hi", 2, 3000, &reply, &len, err);
	if (r == 0) {
		assert_int_equal(len, 2);
		assert_memory_equal(reply, "hi", 2);
		free(reply);
	}
	pk_rpc_client_free(c);
	return r;
}

static void test_rpc_tls__mutual_ok(void **state)
{
	struct pk_rpc_server *srv = tls_server();
	struct pk_error err;

	(void)state;
	assert_int_equal(call_as("ca", "client", &err), 0);
	pk_rpc_server_stop(srv);
}

/* The server learns the verified client certificate's CN (common/tls_engine.h). */
static void test_rpc_tls__peer_cn(void **state)
{
	struct pk_rpc_server *srv = tls_server();
	struct pk_rpc_client *c = NULL;
	struct ident id;
	struct pk_error err;
	void *reply = NULL;
	size_t len = 0;

	(void)state;
	assert_true(pk_rpc_peer_names_known());
	ident_init(&id, "ca", "client");
	assert_int_equal(pk_rpc_client_new(tls_url, 1 << 20, &c, &err), 0);
	assert_int_equal(pk_rpc_client_set_tls(c, &id.tls, &err), 0);
	for (int i = 0; i < 3; i++) { /* every message, not only the first */
		assert_int_equal(pk_rpc_client_call(c, "whoami", 6, 3000, &reply, &len, &err), 0);
		assert_int_equal(len, strlen("tls:client"));
		assert_memory_equal(reply, "tls:client", len);
		free(reply);
	}
	pk_rpc_client_free(c);
	pk_rpc_server_stop(srv);
}

static void test_rpc_tls__refusals(void **state)
{
	struct pk_rpc_server *srv = tls_server();
	struct pk_error err;

	(void)state;
	/* a client certificate from another CA */
	assert_true(call_as("ca", "rogue", &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_non_null(strstr(err.message, "TLS handshake"));
	assert_non_null(strstr(err.message, tls_url));
	/* an expired client certificate */
	assert_true(call_as("ca", "expired", &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	/* a client that does not trust the server's CA */
	assert_true(call_as("otherca", "client", &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	/* no TLS material at all: refused before any connection */
	assert_true(call_as(NULL, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "--tls-ca"));
	/* and the server still serves a good client */
	assert_int_equal(call_as("ca", "client", &err), 0);
	pk_rpc_server_stop(srv);
}

static void test_rpc_tls__bad_material(void **state)
{
	struct pk_rpc_server_config sc = { tls_url, 1, 1 << 20, 0, NULL, 0 };
	struct pk_rpc_server *srv = NULL;
	struct pk_rpc_client *c = NULL;
	struct pk_error err;
	struct ident id;
	void *reply = NULL;
	size_t len;

	(void)state;
	/* a tls+tcp:// listener without TLS material */
	assert_true(pk_rpc_server_start(&sc, echo_handler, NULL, &srv, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "tls_ca"));
	/* no material, a file that is not there, a key given as CA */
	assert_int_equal(pk_rpc_client_new(tls_url, 1 << 20, &c, &err), 0);
	assert_int_equal(pk_rpc_client_set_tls(c, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.message, "PK_TLS_CA"));
	ident_init(&id, "ca", "client");
	id.tls.cert = "/nonexistent/client.pem";
	assert_true(pk_rpc_client_set_tls(c, &id.tls, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "/nonexistent/client.pem"));
	ident_init(&id, "ca", "client");
	id.tls.ca = id.key;
	assert_true(pk_rpc_client_set_tls(c, &id.tls, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "tls_ca"));
	pk_rpc_client_free(c);
	/* TLS is set before the first call, not after */
	srv = tls_server();
	assert_int_equal(pk_rpc_client_new(tls_url, 1 << 20, &c, &err), 0);
	ident_init(&id, "ca", "client");
	assert_int_equal(pk_rpc_client_set_tls(c, &id.tls, &err), 0);
	assert_int_equal(pk_rpc_client_call(c, "x", 1, 3000, &reply, &len, &err), 0);
	free(reply);
	assert_int_equal(pk_rpc_client_set_tls(c, &id.tls, &err), -EBUSY);
	pk_rpc_client_free(c);
	pk_rpc_server_stop(srv);
	/* other schemes ignore TLS material */
	assert_int_equal(pk_rpc_client_new("ipc:///tmp/pk-test-none.sock", 1 << 20, &c, &err), 0);
	assert_int_equal(pk_rpc_client_set_tls(c, &id.tls, &err), 0);
	pk_rpc_client_free(c);
}

/* hsmd and pkctl reach spmds through pk_spm_client: every tls+tcp:// address gets TLS. */
static void test_rpc_tls__spm_client(void **state)
{
	struct pk_rpc_server *srv = tls_server();
	struct pk_spm_client *sc = NULL;
	struct pk_error err;
	struct ident id;
	char urls[160];
	void *reply = NULL;
	size_t len = 0;

	(void)state;
	snprintf(urls, sizeof(urls), "ipc:///tmp/pk-test-rpc-tls-none.sock,%s", tls_url);
	assert_int_equal(pk_spm_client_new(urls, &sc, &err), 0);
	ident_init(&id, "ca", "client");
	assert_int_equal(pk_spm_client_set_tls(sc, &id.tls, &err), 0);
	assert_int_equal(pk_rpc_client_call(pk_spm_client_at(sc, 1), "hi", 2, 3000, &reply, &len,
					    &err), 0);
	assert_memory_equal(reply, "hi", 2);
	free(reply);
	pk_spm_client_free(sc);
	/* a key that cannot be read is an error of the set-up, not of a later call */
	assert_int_equal(pk_spm_client_new(urls, &sc, &err), 0);
	id.tls.key = "/nonexistent/client.key";
	assert_true(pk_spm_client_set_tls(sc, &id.tls, &err) < 0);
	assert_non_null(strstr(err.message, "/nonexistent/client.key"));
	pk_spm_client_free(sc);
	pk_rpc_server_stop(srv);
}

static void test_rpc_tls__pub_sub(void **state)
{
	struct pk_rpc_pub *p = NULL;
	struct pk_rpc_sub *s = NULL;
	struct ident server, client, rogue;
	struct pk_error err;
	char purl[64];
	void *msg = NULL;
	size_t len = 0;
	int got = 0;

	(void)state;
	ident_init(&server, "ca", "server");
	ident_init(&client, "ca", "client");
	ident_init(&rogue, "ca", "rogue");
	snprintf(purl, sizeof(purl), "tls+tcp://127.0.0.1:%d", 20000 + (int)(getpid() % 20000) + 1);
	assert_true(pk_rpc_pub_new(purl, NULL, &p, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(pk_rpc_pub_new(purl, &server.tls, &p, &err), 0);
	assert_true(pk_rpc_sub_new(purl, &rogue.tls, &s, &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_int_equal(pk_rpc_sub_new(purl, &client.tls, &s, &err), 0);
	for (int i = 0; i < 50 && !got; i++) {
		assert_int_equal(pk_rpc_pub_send(p, "evt", 3, &err), 0);
		if (pk_rpc_sub_recv(s, 50, &msg, &len, &err) == 0) {
			got = 1;
		}
	}
	assert_true(got);
	assert_memory_equal(msg, "evt", 3);
	free(msg);
	pk_rpc_sub_free(s);
	pk_rpc_pub_free(p);
}

static void test_rpc_tls__errors_are_unavailable(void **state)
{
	static const int codes[] = { NNG_EPEERAUTH, NNG_ECRYPTO, NNG_ECONNRESET };
	struct pk_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_true(pk_rpc_nng_error(&err, codes[i], "cannot connect", "tls+tcp://h:1") < 0);
		assert_int_equal(err.code, PK_E_UNAVAILABLE);
		assert_non_null(strstr(err.message, "tls+tcp://h:1"));
		assert_non_null(strstr(err.message, "tls_"));
	}
	pk_rpc_nng_error(&err, NNG_EPEERAUTH, "cannot connect", "tls+tcp://h:1");
	assert_non_null(strstr(err.message, "peer certificate not trusted"));
}

static void test_rpc_tls__ipc_socket_and_peer(void **state)
{
	struct pk_rpc_server_config sc = { NULL, 1, 1 << 20, 0, NULL, 0 };
	struct pk_rpc_server *srv = NULL;
	struct pk_error err;
	char path[96], ipc[112];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/pk-test-rpc-tls-%d.sock", (int)getpid());
	snprintf(ipc, sizeof(ipc), "ipc://%s", path);
	sc.url = ipc;
	assert_int_equal(pk_rpc_server_start(&sc, echo_handler, NULL, &srv, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	pk_rpc_server_stop(srv);
	unlink(path);

	assert_true(pk_rpc_ipc_peer_allowed(1000, 1000));
	assert_true(pk_rpc_ipc_peer_allowed(0, 1000));
	assert_false(pk_rpc_ipc_peer_allowed(1001, 1000));
	assert_false(pk_rpc_ipc_peer_allowed(65534, 0));
	assert_false(pk_rpc_ipc_peer_allowed((uint64_t)1 << 32, 0));
}

static void test_rpc_tls__is_set(void **state)
{
	struct pk_rpc_tls t = { "a", "b", "c" };

	(void)state;
	assert_true(pk_rpc_tls_is_set(&t));
	assert_false(pk_rpc_tls_is_set(NULL));
	t.key = "";
	assert_false(pk_rpc_tls_is_set(&t));
	t.key = "c";
	t.ca = NULL;
	assert_false(pk_rpc_tls_is_set(&t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rpc_tls__mutual_ok),
		cmocka_unit_test(test_rpc_tls__peer_cn),
		cmocka_unit_test(test_rpc_tls__refusals),
		cmocka_unit_test(test_rpc_tls__bad_material),
		cmocka_unit_test(test_rpc_tls__spm_client),
		cmocka_unit_test(test_rpc_tls__pub_sub),
		cmocka_unit_test(test_rpc_tls__errors_are_unavailable),
		cmocka_unit_test(test_rpc_tls__ipc_socket_and_peer),
		cmocka_unit_test(test_rpc_tls__is_set),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	snprintf(tls_url, sizeof(tls_url), "tls+tcp://127.0.0.1:%d",
		 20000 + (int)(getpid() % 20000));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
