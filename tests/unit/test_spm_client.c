/*
 * The SPM client's failover (proto/spm_client.c): three small spmds
 * served over ipc in this process, each the SPM, not the SPM, hung or
 * gone, as a test sets them.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/uuid.h"
#include "proto/codec.h"
#include "proto/spm_client_wire.h"
#include "tests/lib/rpc_fixture.h"

#define TIMEOUT_MS 1000 /* above the client's 500 ms probe of a down spmd */

enum mode { SPM, NOT_SPM, HUNG };

struct spmd {
	char url[128];
	_Atomic int mode;
	atomic_int calls;
	pthread_mutex_t lock;
	char last_request[64]; /* request_id of the last mutating call */
	struct pk_daemon_info info;
	struct pk_dispatcher d;
	struct rpc_fixture *srv;
};

static struct spmd spmds[3];

static void seen(struct spmd *s, const char *request_id)
{
	pthread_mutex_lock(&s->lock);
	snprintf(s->last_request, sizeof(s->last_request), "%s", request_id ? request_id : "");
	pthread_mutex_unlock(&s->lock);
}

/* The request id s saw last, read under its lock (a hung verb may still write it). */
static const char *last_request(struct spmd *s)
{
	static _Thread_local char copy[3][64];

	pthread_mutex_lock(&s->lock);
	snprintf(copy[s - spmds], sizeof(copy[0]), "%s", s->last_request);
	pthread_mutex_unlock(&s->lock);
	return copy[s - spmds];
}

static int answer(struct spmd *s, struct pk_error *err)
{
	atomic_fetch_add(&s->calls, 1);
	switch (atomic_load(&s->mode)) {
	case NOT_SPM:
		return pk_error_set(err, PK_E_NOT_SPM, EPERM, "this host is not the SPM");
	case HUNG:
		usleep(2 * TIMEOUT_MS * 1000); /* answers, but after the client gave up */
		return 0;
	default:
		return 0;
	}
}

static int verb_extend(void *ctx, const Pk__Request *req, Pk__Response *resp,
		       struct pk_arena *a, struct pk_error *err)
{
	struct spmd *s = ctx;
	Pk__ExtendVolumeResponse *w = pk_arena_new(a, Pk__ExtendVolumeResponse);
	int r;

	seen(s, req->extend_volume->request_id);
	r = answer(s, err);
	pk__extend_volume_response__init(w);
	resp->extend_volume = w;
	return r;
}

static int verb_delete(void *ctx, const Pk__Request *req, Pk__Response *resp,
		       struct pk_arena *a, struct pk_error *err)
{
	struct spmd *s = ctx;
	Pk__DeleteVolumeResponse *w = pk_arena_new(a, Pk__DeleteVolumeResponse);
	int r;

	seen(s, req->delete_volume->request_id);
	r = answer(s, err);
	pk__delete_volume_response__init(w);
	resp->delete_volume = w;
	return r;
}

static const struct pk_verb verbs[] = {
	{ PK__REQUEST__CALL_EXTEND_VOLUME, PK_ROLES_ALL, verb_extend, NULL },
	{ PK__REQUEST__CALL_DELETE_VOLUME, PK_ROLES_ALL, verb_delete, NULL },
};

static void spmd_start(struct spmd *s)
{
	s->srv = rpc_fixture_start(s->url, &s->d);
}

static void spmd_stop(struct spmd *s)
{
	rpc_fixture_stop(s->srv);
	s->srv = NULL;
}

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		struct spmd *s = &spmds[i];
		snprintf(s->url, sizeof(s->url), "ipc:///tmp/pk-test-spmc-%d-%d.sock", (int)getpid(),
			 i);
		atomic_init(&s->mode, NOT_SPM);
		atomic_init(&s->calls, 0);
		pthread_mutex_init(&s->lock, NULL);
		s->last_request[0] = '\0';
		s->info.role = "spm";
		s->info.host_id = i + 1;
		s->d.verbs = verbs;
		s->d.nverbs = sizeof(verbs) / sizeof(verbs[0]);
		s->d.ctx = s;
		s->d.max_msg = PK_MAX_MESSAGE_DEFAULT;
		s->d.info = &s->info;
		spmd_start(s);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		spmd_stop(&spmds[i]);
		pthread_mutex_destroy(&spmds[i].lock);
		unlink(spmds[i].url + strlen("ipc://"));
	}
	return 0;
}

static struct pk_spm_client *client_of_all(void)
{
	char urls[512];
	struct pk_spm_client *sc = NULL;
	struct pk_error err = { PK_OK, "" };

	snprintf(urls, sizeof(urls), "%s,%s,%s", spmds[0].url, spmds[1].url, spmds[2].url);
	assert_int_equal(pk_spm_client_new(urls, &sc, &err), 0);
	return sc;
}

static int extend(struct pk_spm_client *sc, struct pk_error *err)
{
	static const char *id = "5b0b7b3e-8d43-4e2c-9d5a-0f9d3c1e2a10";

	return pk_spm_client_extend_volume(sc, id, id, id, 1 << 20, NULL, TIMEOUT_MS, err);
}

/*
 * The scenario of a kill -9 of the SPM's spmd: the client had talked to
 * it (its connection was up), so a call to it times out or finds the
 * connection lost. The call moves on, finds the new SPM, and the calls
 * after it go there first, without waiting for the dead one again.
 */
static void test_spm_client__a_dead_spm_is_left_for_the_next_one(void **state)
{
	struct pk_spm_client *sc = client_of_all();
	struct pk_error err = { PK_OK, "" };
	uint64_t t0;

	(void)state;
	atomic_store(&spmds[0].mode, SPM);
	assert_int_equal(extend(sc, &err), 0);
	assert_int_equal(atomic_load(&spmds[0].calls), 1);

	spmd_stop(&spmds[0]); /* killed */
	atomic_store(&spmds[2].mode, SPM); /* pkctl spm start on host 3 */
	assert_int_equal(extend(sc, &err), 0);
	assert_int_equal(atomic_load(&spmds[1].calls), 1); /* NOT_SPM on the way */
	assert_int_equal(atomic_load(&spmds[2].calls), 1);
	assert_true(pk_spm_client_is_down(sc, 0));

	t0 = pk_clock_monotonic_ms();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(extend(sc, &err), 0);
	}
	assert_true(pk_clock_monotonic_ms() - t0 < TIMEOUT_MS); /* no wait for the dead one */
	assert_int_equal(atomic_load(&spmds[2].calls), 4);
	assert_int_equal(atomic_load(&spmds[1].calls), 1);
	pk_spm_client_free(sc);
	spmd_start(&spmds[0]);
}

/* tests/unit/data/tls/NAME.pem and .key, trusting its ca.pem. */
static void tls_of(const char *name, char paths[3][256], struct pk_rpc_tls *ret)
{
	const char *d = getenv("PK_TEST_DATA_DIR") ? getenv("PK_TEST_DATA_DIR")
						    : "tests/unit/data/tls";

	snprintf(paths[0], 256, "%s/ca.pem", d);
	snprintf(paths[1], 256, "%s/%s.pem", d, name);
	snprintf(paths[2], 256, "%s/%s.key", d, name);
	*ret = (struct pk_rpc_tls){ paths[0], paths[1], paths[2] };
}

/*
 * An spmd over mutual TLS: with a certificate it accepts, calls go to it;
 * one it refuses (another CA's) counts as a peer that is down, so the
 * call moves on to the next spmd instead of failing.
 */
static void test_spm_client__tls_spmd_and_a_refused_handshake(void **state)
{
	char server_paths[3][256], client_paths[3][256], rogue_paths[3][256];
	struct pk_rpc_tls server_tls, client_tls, rogue_tls;
	struct spmd tls_spmd = { 0 };
	struct pk_spm_client *sc = NULL;
	struct pk_error err = { PK_OK, "" };
	char urls[512];

	(void)state;
	tls_of("server", server_paths, &server_tls);
	tls_of("client", client_paths, &client_tls);
	tls_of("rogue", rogue_paths, &rogue_tls);
	snprintf(tls_spmd.url, sizeof(tls_spmd.url), "tls+tcp://127.0.0.1:%d",
		 20000 + (int)(getpid() % 20000));
	atomic_init(&tls_spmd.mode, SPM);
	atomic_init(&tls_spmd.calls, 0);
	pthread_mutex_init(&tls_spmd.lock, NULL);
	tls_spmd.info.role = "spm";
	tls_spmd.info.host_id = 4;
	tls_spmd.d = spmds[0].d;
	tls_spmd.d.ctx = &tls_spmd;
	tls_spmd.d.info = &tls_spmd.info;
	tls_spmd.srv = rpc_fixture_start_tls(tls_spmd.url, &tls_spmd.d, &server_tls);
	snprintf(urls, sizeof(urls), "%s,%s", tls_spmd.url, spmds[1].url);

	assert_int_equal(pk_spm_client_new(urls, &sc, &err), 0);
	assert_int_equal(pk_spm_client_set_tls(sc, &client_tls, &err), 0);
	assert_int_equal(extend(sc, &err), 0);
	assert_int_equal(atomic_load(&tls_spmd.calls), 1);
	pk_spm_client_free(sc);

	atomic_store(&spmds[1].mode, SPM);
	assert_int_equal(pk_spm_client_new(urls, &sc, &err), 0);
	assert_int_equal(pk_spm_client_set_tls(sc, &rogue_tls, &err), 0);
	assert_int_equal(extend(sc, &err), 0);
	assert_int_equal(atomic_load(&tls_spmd.calls), 1); /* never reached */
	assert_int_equal(atomic_load(&spmds[1].calls), 1);
	assert_true(pk_spm_client_is_down(sc, 0));
	pk_spm_client_free(sc);
	atomic_store(&spmds[1].mode, NOT_SPM);
	atomic_store(&spmds[1].calls, 0);

	rpc_fixture_stop(tls_spmd.srv);
	pthread_mutex_destroy(&tls_spmd.lock);
}

/* Nobody holds the lease yet: NOT_SPM (transient for callers), naming every address. */
static void test_spm_client__no_spm_answers_not_spm(void **state)
{
	struct pk_spm_client *sc = client_of_all();
	struct pk_error err = { PK_OK, "" };
	uint64_t t0;

	(void)state;
	atomic_store(&spmds[0].mode, SPM);
	assert_int_equal(extend(sc, &err), 0);
	spmd_stop(&spmds[0]);
	assert_true(extend(sc, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_non_null(strstr(err.message, spmds[0].url));
	/* The next calls ask the live ones first, and the dead one only a short Ping. */
	t0 = pk_clock_monotonic_ms();
	assert_true(extend(sc, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_true(pk_clock_monotonic_ms() - t0 < TIMEOUT_MS);
	atomic_store(&spmds[1].mode, SPM);
	assert_int_equal(extend(sc, &err), 0);
	pk_spm_client_free(sc);
	spmd_start(&spmds[0]);
}

/*
 * A hung SPM (it answers, too late): the call is ambiguous, so the retry
 * at the next spmd carries the same request id, which lets an SPM that
 * did it answer instead of applying it twice. Another call has another id.
 */
static void test_spm_client__a_retry_carries_the_same_request_id(void **state)
{
	struct pk_spm_client *sc = client_of_all();
	struct pk_error err = { PK_OK, "" };
	char first[64];

	(void)state;
	atomic_store(&spmds[0].mode, HUNG);
	atomic_store(&spmds[2].mode, SPM);
	assert_int_equal(extend(sc, &err), 0);
	assert_true(pk_uuid_valid(last_request(&spmds[0])));
	assert_string_equal(last_request(&spmds[0]), last_request(&spmds[2]));
	assert_string_equal(last_request(&spmds[1]), last_request(&spmds[2]));
	snprintf(first, sizeof(first), "%s", last_request(&spmds[2]));

	assert_int_equal(extend(sc, &err), 0);
	assert_true(pk_uuid_valid(last_request(&spmds[2])));
	assert_string_not_equal(first, last_request(&spmds[2]));
	usleep(2 * TIMEOUT_MS * 1000); /* the hung call ends before the teardown */
	pk_spm_client_free(sc);
}

/* A request id given by the caller is kept (a job retrying one step across calls). */
static void test_spm_client__a_given_request_id_is_kept(void **state)
{
	struct pk_spm_client *sc = client_of_all();
	struct pk_error err = { PK_OK, "" };
	Pk__Request req = PK__REQUEST__INIT;
	Pk__DeleteVolumeRequest dv = PK__DELETE_VOLUME_REQUEST__INIT;
	Pk__Response *resp = NULL;
	char id[] = "0c5f6f52-3c1e-4d36-8a55-7f8a3a6a1b22";

	(void)state;
	atomic_store(&spmds[1].mode, SPM);
	dv.request_id = id;
	req.call_case = PK__REQUEST__CALL_DELETE_VOLUME;
	req.delete_volume = &dv;
	assert_int_equal(pk_spm_client_call(sc, &req, TIMEOUT_MS, &resp, &err), 0);
	pk__response__free_unpacked(resp, NULL);
	assert_string_equal(last_request(&spmds[1]), id);
	assert_ptr_equal(dv.request_id, id);

	/* None given: one is generated, and the caller's request is left as it was. */
	dv.request_id = (char *)protobuf_c_empty_string;
	assert_int_equal(pk_spm_client_call(sc, &req, TIMEOUT_MS, &resp, &err), 0);
	pk__response__free_unpacked(resp, NULL);
	assert_true(pk_uuid_valid(last_request(&spmds[1])));
	assert_ptr_equal(dv.request_id, protobuf_c_empty_string);
	pk_spm_client_free(sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_spm_client__a_dead_spm_is_left_for_the_next_one, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_spm_client__no_spm_answers_not_spm, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_client__a_retry_carries_the_same_request_id,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_client__a_given_request_id_is_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_client__tls_spmd_and_a_refused_handshake,
						setup, teardown),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
