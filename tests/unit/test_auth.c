/*
 * Authorization: the auth_* mapping parser and resolution (common/auth.c),
 * the caller a peer is (pk_dispatch_caller) and the verb tables' role
 * column as the dispatcher applies it (proto/codec.c, hsm/rpc.c, spm/rpc.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/version.h"
#include "hsm/rpc.h"
#include "proto/codec.h"
#include "spm/rpc.h"

static void test_auth__parses_the_three_lists(void **state)
{
	struct pk_auth a = PK_AUTH_INIT;
	struct pk_caller c;
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_auth_parse(&a, "engine, ops", " host1:1,host2:2 ", "viewer", &err), 0);
	assert_int_equal(a.n, 5);
	assert_true(pk_auth_is_set(&a));
	pk_auth_resolve(&a, "ops", &c);
	assert_int_equal(c.role, PK_ROLE_ENGINE);
	assert_string_equal(c.name, "ops");
	pk_auth_resolve(&a, "host2", &c);
	assert_int_equal(c.role, PK_ROLE_HOST);
	assert_int_equal(c.host_id, 2);
	pk_auth_resolve(&a, "viewer", &c);
	assert_int_equal(c.role, PK_ROLE_VIEWER);
	assert_int_equal(c.host_id, 0);
	pk_auth_resolve(&a, "Viewer", &c); /* names are exact */
	assert_int_equal(c.role, PK_ROLE_NONE);
	assert_string_equal(c.name, "Viewer");
	pk_auth_release(&a);
	assert_false(pk_auth_is_set(&a));
}

static void test_auth__unset_and_empty_map_nothing(void **state)
{
	struct pk_auth a = PK_AUTH_INIT;
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_auth_parse(&a, NULL, "", "  ", &err), 0);
	assert_false(pk_auth_is_set(&a));
	pk_auth_release(&a);
}

static void expect_bad(const char *engine, const char *host, const char *viewer,
		       const char *needle)
{
	struct pk_auth a = PK_AUTH_INIT;
	struct pk_error err = { PK_OK, "" };

	assert_true(pk_auth_parse(&a, engine, host, viewer, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	if (!strstr(err.message, needle)) {
		fail_msg("'%s' does not say '%s'", err.message, needle);
	}
	assert_int_equal(a.n, 0);
}

static void test_auth__refuses_bad_entries(void **state)
{
	(void)state;
	expect_bad("a,,b", NULL, NULL, "empty entry");
	expect_bad("a,", NULL, NULL, "empty entry");
	expect_bad(NULL, "host1", NULL, "<host id 1-2000>");
	expect_bad(NULL, "host1:0", NULL, "<host id 1-2000>");
	expect_bad(NULL, "host1:2001", NULL, "<host id 1-2000>");
	expect_bad(NULL, "host1:x", NULL, "<host id 1-2000>");
	expect_bad(NULL, ":3", NULL, "names no certificate");
	expect_bad("engine:1", NULL, NULL, "only auth_host");
	expect_bad("engine", NULL, "engine", "already mapped (role engine)");
	expect_bad(NULL, "h:1,h:2", NULL, "already mapped");
}

static void test_auth__allows_by_mask(void **state)
{
	struct pk_caller none = { PK_ROLE_NONE, "x", 0 };
	struct pk_caller host = { PK_ROLE_HOST, "host1", 1 };
	struct pk_caller viewer = { PK_ROLE_VIEWER, "viewer", 0 };
	struct pk_caller engine = { PK_ROLE_ENGINE, "engine", 0 };

	(void)state;
	assert_false(pk_auth_allows(PK_ROLES_ALL, &none));
	assert_true(pk_auth_allows(PK_ROLES_READ, &viewer));
	assert_false(pk_auth_allows(PK_ROLES_READ, &host));
	assert_true(pk_auth_allows(PK_ROLES_HOST, &host));
	assert_false(pk_auth_allows(PK_ROLES_HOST, &viewer));
	assert_true(pk_auth_allows(PK_ROLES_ADMIN, &engine));
	assert_false(pk_auth_allows(PK_ROLES_ADMIN, &host));
	assert_false(pk_auth_allows(0, &engine));
}

static const struct pk_daemon_info info = { "spm", 3, 0, "lab", false };

static void test_auth__caller_of_a_peer(void **state)
{
	struct pk_dispatcher d = { spm_verbs, spm_nverbs, NULL, 4096, &info, PK_AUTH_INIT };
	struct pk_rpc_peer ipc = { PK_RPC_PEER_IPC, 0, NULL };
	struct pk_rpc_peer tcp = { PK_RPC_PEER_TCP, 0, NULL };
	struct pk_rpc_peer tls = { PK_RPC_PEER_TLS, 0, "host4" };
	struct pk_rpc_peer tls_anon = { PK_RPC_PEER_TLS, 0, NULL };
	struct pk_caller c;
	struct pk_error err;

	(void)state;
	pk_dispatch_caller(&d, &ipc, &c);
	assert_int_equal(c.role, PK_ROLE_ENGINE);
	assert_string_equal(c.name, "ipc uid=0");
	pk_dispatch_caller(&d, &tcp, &c);
	assert_int_equal(c.role, PK_ROLE_ENGINE);
	/* No mapping: every certificate of the CA is engine. */
	pk_dispatch_caller(&d, &tls, &c);
	assert_int_equal(c.role, PK_ROLE_ENGINE);
	assert_string_equal(c.name, "host4");
	assert_int_equal(pk_auth_parse(&d.auth, "engine", "host4:4", NULL, &err), 0);
	pk_dispatch_caller(&d, &tls, &c);
	assert_int_equal(c.role, PK_ROLE_HOST);
	assert_int_equal(c.host_id, 4);
	pk_dispatch_caller(&d, &tls_anon, &c);
	assert_int_equal(c.role, PK_ROLE_NONE);
	pk_dispatch_caller(&d, &ipc, &c); /* the mapping is for TLS peers only */
	assert_int_equal(c.role, PK_ROLE_ENGINE);
	pk_auth_release(&d.auth);
}

static const struct pk_verb *find(const struct pk_verb *v, size_t n, Pk__Request__CallCase call)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].call == call) {
			return &v[i];
		}
	}
	fail_msg("call %d not in the table", (int)call);
	return NULL;
}

/* The role column of spmd's table: hsmd's needs for host, reads for viewer. */
static void test_auth__spm_table_roles(void **state)
{
	static const Pk__Request__CallCase host_calls[] = {
		/* every verb hsmd calls on spmd (proto/spm_client.c) */
		PK__REQUEST__CALL_EXTEND_VOLUME,
		PK__REQUEST__CALL_REDUCE_VOLUME,
		PK__REQUEST__CALL_UPDATE_VOLUME_META,
		PK__REQUEST__CALL_IMAGE_PREPARED,
	};
	static const Pk__Request__CallCase reads[] = {
		PK__REQUEST__CALL_SPM_STATUS, PK__REQUEST__CALL_DOMAIN_INFO,
		PK__REQUEST__CALL_VOLUME_INFO, PK__REQUEST__CALL_IMAGE_CHAIN,
		PK__REQUEST__CALL_TASK_GET,   PK__REQUEST__CALL_TASK_LIST,
	};
	struct pk_caller host = { PK_ROLE_HOST, "host1", 1 };
	struct pk_caller viewer = { PK_ROLE_VIEWER, "viewer", 0 };
	struct pk_caller engine = { PK_ROLE_ENGINE, "engine", 0 };
	size_t nhost = 0, nread = 0;

	(void)state;
	for (size_t i = 0; i < spm_nverbs; i++) {
		assert_true(pk_verb_allows(&spm_verbs[i], &engine));
		nhost += pk_verb_allows(&spm_verbs[i], &host);
		nread += pk_verb_allows(&spm_verbs[i], &viewer);
	}
	for (size_t i = 0; i < sizeof(host_calls) / sizeof(host_calls[0]); i++) {
		const struct pk_verb *v = find(spm_verbs, spm_nverbs, host_calls[i]);
		assert_true(pk_verb_allows(v, &host));
		assert_false(pk_verb_allows(v, &viewer));
	}
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		assert_true(pk_verb_allows(find(spm_verbs, spm_nverbs, reads[i]), &viewer));
	}
	/* exactly those */
	assert_int_equal(nhost, sizeof(host_calls) / sizeof(host_calls[0]));
	assert_int_equal(nread, sizeof(reads) / sizeof(reads[0]));
	assert_false(pk_verb_allows(find(spm_verbs, spm_nverbs, PK__REQUEST__CALL_SPM_STOP),
				    &host));
	assert_false(pk_verb_allows(find(spm_verbs, spm_nverbs, PK__REQUEST__CALL_DELETE_VOLUME),
				    &viewer));
	/* ImagePrepared is told who calls (the host id comes from it). */
	assert_non_null(find(spm_verbs, spm_nverbs, PK__REQUEST__CALL_IMAGE_PREPARED)->fn_caller);
}

static void test_auth__hsm_table_roles(void **state)
{
	struct pk_caller host = { PK_ROLE_HOST, "host1", 1 };
	struct pk_caller viewer = { PK_ROLE_VIEWER, "viewer", 0 };
	struct pk_caller engine = { PK_ROLE_ENGINE, "engine", 0 };

	(void)state;
	for (size_t i = 0; i < hsm_nverbs; i++) {
		assert_true(pk_verb_allows(&hsm_verbs[i], &engine));
		assert_false(pk_verb_allows(&hsm_verbs[i], &host)); /* hsmd calls no hsmd */
		assert_true(hsm_verbs[i].fn != NULL);
	}
	assert_true(pk_verb_allows(find(hsm_verbs, hsm_nverbs, PK__REQUEST__CALL_VM_LIST), &viewer));
	assert_true(pk_verb_allows(find(hsm_verbs, hsm_nverbs, PK__REQUEST__CALL_JOB_LIST), &viewer));
	assert_false(pk_verb_allows(find(hsm_verbs, hsm_nverbs, PK__REQUEST__CALL_VM_DESTROY),
				    &viewer));
	assert_false(pk_verb_allows(find(hsm_verbs, hsm_nverbs, PK__REQUEST__CALL_MERGE), &viewer));
}

/* Through the dispatcher: a denial is PERMISSION_DENIED, a ping open to all roles. */
static Pk__Response *call(struct pk_dispatcher *d, const struct pk_rpc_peer *peer,
			  Pk__Request *req)
{
	uint8_t buf[512];
	size_t len;
	void *out = NULL;
	size_t out_len = 0;
	Pk__Response *resp;

	req->api_version = PK_API_VERSION;
	req->id = 9;
	len = pk__request__get_packed_size(req);
	assert_true(len < sizeof(buf));
	pk__request__pack(req, buf);
	assert_int_equal(pk_dispatch_handle(d, peer, buf, len, &out, &out_len), 0);
	resp = pk__response__unpack(NULL, out_len, out);
	free(out);
	assert_non_null(resp);
	return resp;
}

static void test_auth__dispatch_denies(void **state)
{
	struct pk_dispatcher d = { spm_verbs, spm_nverbs, NULL, 4096, &info, PK_AUTH_INIT };
	struct pk_rpc_peer viewer = { PK_RPC_PEER_TLS, 0, "viewer" };
	struct pk_rpc_peer host = { PK_RPC_PEER_TLS, 0, "host1" };
	struct pk_rpc_peer stranger = { PK_RPC_PEER_TLS, 0, "stranger" };
	Pk__Request req = PK__REQUEST__INIT;
	Pk__DeleteVolumeRequest del = PK__DELETE_VOLUME_REQUEST__INIT;
	Pk__SpmStopRequest stop = PK__SPM_STOP_REQUEST__INIT;
	Pk__PingRequest ping = PK__PING_REQUEST__INIT;
	Pk__Response *resp;
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_auth_parse(&d.auth, "engine", "host1:1", "viewer", &err), 0);
	req.call_case = PK__REQUEST__CALL_DELETE_VOLUME;
	req.delete_volume = &del;
	resp = call(&d, &viewer, &req);
	assert_non_null(resp->error);
	assert_int_equal(resp->error->code, PK__ERROR_CODE__PERMISSION_DENIED);
	assert_non_null(strstr(resp->error->message, "'viewer' (role viewer) may not call"));
	pk__response__free_unpacked(resp, NULL);

	req.call_case = PK__REQUEST__CALL_SPM_STOP;
	req.delete_volume = NULL;
	req.spm_stop = &stop;
	resp = call(&d, &host, &req);
	assert_int_equal(resp->error->code, PK__ERROR_CODE__PERMISSION_DENIED);
	pk__response__free_unpacked(resp, NULL);

	req.call_case = PK__REQUEST__CALL_PING;
	req.spm_stop = NULL;
	req.ping = &ping;
	resp = call(&d, &host, &req);
	assert_null(resp->error);
	assert_non_null(resp->ping);
	pk__response__free_unpacked(resp, NULL);
	resp = call(&d, &stranger, &req);
	assert_int_equal(resp->error->code, PK__ERROR_CODE__PERMISSION_DENIED);
	assert_non_null(strstr(resp->error->message, "maps to no role"));
	pk__response__free_unpacked(resp, NULL);
	pk_auth_release(&d.auth);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth__parses_the_three_lists),
		cmocka_unit_test(test_auth__unset_and_empty_map_nothing),
		cmocka_unit_test(test_auth__refuses_bad_entries),
		cmocka_unit_test(test_auth__allows_by_mask),
		cmocka_unit_test(test_auth__caller_of_a_peer),
		cmocka_unit_test(test_auth__spm_table_roles),
		cmocka_unit_test(test_auth__hsm_table_roles),
		cmocka_unit_test(test_auth__dispatch_denies),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
