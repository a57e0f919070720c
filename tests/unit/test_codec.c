/* Envelope validation, dispatch and error mapping (proto/codec.c); the
 * volume-to-wire conversion (proto/wire.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/version.h"
#include "proto/codec.h"
#include "proto/wire.h"

/* A local administrator (ipc): role engine. */
static const struct pk_rpc_peer local_peer = { PK_RPC_PEER_IPC, 0, NULL };

static const struct pk_daemon_info info = { "spm", 7, 0, "lab", false };

static int verb_fails_not_spm(void *ctx, const Pk__Request *req, Pk__Response *resp,
			      struct pk_arena *arena, struct pk_error *err)
{
	(void)ctx;
	(void)req;
	(void)resp;
	(void)arena;
	return pk_error_set(err, PK_E_NOT_SPM, 0, "host 2 holds the SPM lease of domain 'x'");
}

static int verb_status(void *ctx, const Pk__Request *req, Pk__Response *resp,
		       struct pk_arena *arena, struct pk_error *err)
{
	Pk__SpmStatusResponse *s = pk_arena_new(arena, Pk__SpmStatusResponse);

	(void)ctx;
	(void)req;
	(void)err;
	pk__spm_status_response__init(s);
	s->host_id = 7;
	s->state = PK__SPM_STATE__SPM_HELD;
	resp->spm_status = s;
	return 0;
}

static const struct pk_verb verbs[] = {
	{ PK__REQUEST__CALL_SPM_START, PK_ROLES_ALL, verb_fails_not_spm, NULL },
	{ PK__REQUEST__CALL_SPM_STATUS, PK_ROLES_ALL, verb_status, NULL },
};

static struct pk_dispatcher dispatcher = { verbs, 2, NULL, 4096, &info, PK_AUTH_INIT };

static Pk__Response *roundtrip_bytes(const void *buf, size_t len)
{
	void *out = NULL;
	size_t out_len = 0;
	Pk__Response *resp;

	assert_int_equal(pk_dispatch_handle(&dispatcher, &local_peer, buf, len, &out, &out_len), 0);
	resp = pk__response__unpack(NULL, out_len, out);
	free(out);
	assert_non_null(resp);
	return resp;
}

static Pk__Response *roundtrip(Pk__Request *req)
{
	size_t len = pk__request__get_packed_size(req);
	uint8_t *buf = malloc(len + 1);
	Pk__Response *resp;

	pk__request__pack(req, buf);
	resp = roundtrip_bytes(buf, len);
	free(buf);
	return resp;
}

static void expect_error(Pk__Response *resp, Pk__ErrorCode code)
{
	assert_non_null(resp->error);
	assert_int_equal(resp->error->code, code);
	assert_true(strlen(resp->error->message) > 10);
	assert_int_equal(resp->result_case, PK__RESPONSE__RESULT__NOT_SET);
	pk__response__free_unpacked(resp, NULL);
}

static void test_codec__ping_answered_by_dispatcher(void **state)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PingRequest ping = PK__PING_REQUEST__INIT;
	Pk__Response *resp;

	(void)state;
	req.api_version = PK_API_VERSION;
	req.id = 42;
	req.call_case = PK__REQUEST__CALL_PING;
	req.ping = &ping;
	resp = roundtrip(&req);
	assert_null(resp->error);
	assert_int_equal(resp->id, 42);
	assert_int_equal(resp->result_case, PK__RESPONSE__RESULT_PING);
	assert_int_equal(resp->ping->host_id, 7);
	assert_string_equal(resp->ping->role, "spm");
	assert_string_equal(resp->ping->version, PK_VERSION);
	pk__response__free_unpacked(resp, NULL);
}

static void test_codec__capabilities_list_table_verbs(void **state)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__GetCapabilitiesRequest caps = PK__GET_CAPABILITIES_REQUEST__INIT;
	Pk__Response *resp;

	(void)state;
	req.api_version = PK_API_VERSION;
	req.call_case = PK__REQUEST__CALL_GET_CAPABILITIES;
	req.get_capabilities = &caps;
	resp = roundtrip(&req);
	assert_null(resp->error);
	assert_int_equal(resp->get_capabilities->n_verbs, 4);
	assert_string_equal(resp->get_capabilities->verbs[2], "spm_start");
	assert_string_equal(resp->get_capabilities->verbs[3], "spm_status");
	assert_string_equal(resp->get_capabilities->activation, "lab");
	pk__response__free_unpacked(resp, NULL);
}

static void test_codec__verb_result_and_error(void **state)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__SpmStatusRequest st = PK__SPM_STATUS_REQUEST__INIT;
	Pk__SpmStartRequest start = PK__SPM_START_REQUEST__INIT;
	Pk__Response *resp;

	(void)state;
	req.api_version = PK_API_VERSION;
	req.call_case = PK__REQUEST__CALL_SPM_STATUS;
	req.spm_status = &st;
	resp = roundtrip(&req);
	assert_null(resp->error);
	assert_int_equal(resp->result_case, PK__RESPONSE__RESULT_SPM_STATUS);
	assert_int_equal(resp->spm_status->state, PK__SPM_STATE__SPM_HELD);
	pk__response__free_unpacked(resp, NULL);

	req.call_case = PK__REQUEST__CALL_SPM_START;
	req.spm_start = &start;
	resp = roundtrip(&req);
	assert_non_null(resp->error);
	assert_int_equal(resp->error->spm_host_id, 2);
	expect_error(resp, PK__ERROR_CODE__NOT_SPM);
}

static void test_codec__unknown_verb_unsupported(void **state)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__MergeRequest merge = PK__MERGE_REQUEST__INIT;
	Pk__Response *resp;

	(void)state;
	req.api_version = PK_API_VERSION;
	req.call_case = PK__REQUEST__CALL_MERGE;
	req.merge = &merge;
	resp = roundtrip(&req);
	assert_non_null(strstr(resp->error->message, "merge"));
	expect_error(resp, PK__ERROR_CODE__UNSUPPORTED);
}

static void test_codec__wrong_api_version_refused(void **state)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PingRequest ping = PK__PING_REQUEST__INIT;
	Pk__Response *resp;

	(void)state;
	req.api_version = 99;
	req.id = 5;
	req.call_case = PK__REQUEST__CALL_PING;
	req.ping = &ping;
	resp = roundtrip(&req);
	assert_non_null(strstr(resp->error->message, "api_version 99"));
	expect_error(resp, PK__ERROR_CODE__INVALID_ARGUMENT);
}

static void test_codec__no_call_refused(void **state)
{
	Pk__Request req = PK__REQUEST__INIT;

	(void)state;
	req.api_version = PK_API_VERSION;
	expect_error(roundtrip(&req), PK__ERROR_CODE__INVALID_ARGUMENT);
}

static void test_codec__garbage_refused(void **state)
{
	uint8_t buf[512];

	(void)state;
	srand(1);
	for (int round = 0; round < 200; round++) {
		size_t len = (size_t)(rand() % (int)sizeof(buf));
		Pk__Response *resp;
		for (size_t i = 0; i < len; i++) {
			buf[i] = (uint8_t)rand();
		}
		resp = roundtrip_bytes(buf, len);
		/* Random bytes may decode by chance; they must never reach a verb as valid. */
		if (resp->error) {
			assert_int_not_equal(resp->error->code, PK__ERROR_CODE__OK);
		}
		pk__response__free_unpacked(resp, NULL);
	}
}

static void test_codec__truncated_refused(void **state)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__CreateVolumeRequest cv = PK__CREATE_VOLUME_REQUEST__INIT;
	uint8_t buf[256];
	size_t len;

	(void)state;
	req.api_version = PK_API_VERSION;
	req.call_case = PK__REQUEST__CALL_CREATE_VOLUME;
	cv.domain_id = "0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b";
	cv.image_id = "1b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b";
	req.create_volume = &cv;
	len = pk__request__get_packed_size(&req);
	assert_true(len < sizeof(buf));
	pk__request__pack(&req, buf);
	expect_error(roundtrip_bytes(buf, len - 5), PK__ERROR_CODE__INVALID_ARGUMENT);
}

static void test_codec__oversized_refused(void **state)
{
	uint8_t *buf = calloc(1, 8192);
	Pk__Response *resp;

	(void)state;
	resp = roundtrip_bytes(buf, 8192);
	free(buf);
	assert_non_null(strstr(resp->error->message, "exceeds"));
	expect_error(resp, PK__ERROR_CODE__INVALID_ARGUMENT);
}

static void test_codec__error_codes_match_wire(void **state)
{
	(void)state;
	for (int c = PK_OK; c <= PK_E_PERMISSION_DENIED; c++) {
		const ProtobufCEnumValue *v =
			protobuf_c_enum_descriptor_get_value(&pk__error_code__descriptor, c);
		enum pk_errc back;
		assert_non_null(v);
		assert_string_equal(v->name, pk_errc_name((enum pk_errc)c));
		assert_int_equal(pk_codec_error_code((enum pk_errc)c), c);
		assert_int_equal(pk_errc_from_name(v->name, &back), 0);
		assert_int_equal(back, c);
	}
	assert_int_equal(pk__error_code__descriptor.n_values, PK_E_PERMISSION_DENIED + 1);
	assert_int_equal(pk_codec_errc((Pk__ErrorCode)999), PK_E_INTERNAL);
}

static void test_codec__call_names(void **state)
{
	(void)state;
	assert_string_equal(pk_codec_call_name(PK__REQUEST__CALL_DELETE_VOLUME), "delete_volume");
	assert_string_equal(pk_codec_call_name(PK__REQUEST__CALL__NOT_SET), "unknown");
	assert_string_equal(pk_codec_call_name((Pk__Request__CallCase)2), "unknown");
}

static struct pk_volume_meta sample_meta(void)
{
	struct pk_volume_meta m = { 0 };

	strcpy(m.image, "11111111-1111-4111-8111-111111111111");
	strcpy(m.parent, "22222222-2222-4222-8222-222222222222");
	m.format = PK_VOLUME_COW;
	m.role = PK_VOLUME_LEAF;
	m.legality = PK_VOLUME_REMOVING;
	m.capacity = 1u << 30;
	m.generation = 5;
	strcpy(m.description, "disk one");
	return m;
}

static void test_codec__volume_info_to_wire(void **state)
{
	struct pk_arena a = PK_ARENA_INIT;
	struct pk_volume_meta m = sample_meta();
	Pk__VolumeInfo *w;

	(void)state;
	w = pk_wire_volume_info(&a, "d", "v", &m, 3u << 20, "/run/x/v");
	assert_string_equal(w->domain_id, "d");
	assert_string_equal(w->image_id, m.image);
	assert_string_equal(w->volume_id, "v");
	assert_string_equal(w->parent_id, m.parent);
	assert_int_equal(w->format, PK__VOLUME_FORMAT__FORMAT_COW);
	assert_int_equal(w->role, PK__VOLUME_ROLE__ROLE_LEAF);
	assert_int_equal(w->legality, PK__LEGALITY__LEGALITY_REMOVING);
	assert_int_equal(w->capacity, 1u << 30);
	assert_int_equal(w->lv_size, 3u << 20);
	assert_int_equal(w->generation, 5);
	assert_string_equal(w->description, "disk one");
	assert_string_equal(w->path, "/run/x/v");

	/* A base volume has no parent on the wire; no path is "". */
	strcpy(m.parent, PK_META_NO_PARENT);
	m.format = PK_VOLUME_RAW;
	m.role = PK_VOLUME_INTERNAL;
	m.legality = PK_VOLUME_ILLEGAL;
	w = pk_wire_volume_info(&a, "d", "v", &m, 0, NULL);
	assert_string_equal(w->parent_id, "");
	assert_string_equal(w->path, "");
	assert_int_equal(w->format, PK__VOLUME_FORMAT__FORMAT_RAW);
	assert_int_equal(w->role, PK__VOLUME_ROLE__ROLE_INTERNAL);
	assert_int_equal(w->legality, PK__LEGALITY__LEGALITY_ILLEGAL);
	pk_arena_release(&a);
}

/* A value with no wire counterpart is UNSPECIFIED, not a neighbour (RAW, COW, INTERNAL...). */
static void test_codec__volume_unknown_values_unspecified(void **state)
{
	struct pk_arena a = PK_ARENA_INIT;
	struct pk_volume_meta m = sample_meta();
	Pk__VolumeInfo *w;

	(void)state;
	m.format = (enum pk_volume_format)0;
	m.role = (enum pk_volume_role)7;
	m.legality = (enum pk_volume_legality)9;
	w = pk_wire_volume_info(&a, "d", "v", &m, 0, NULL);
	assert_int_equal(w->format, PK__VOLUME_FORMAT__FORMAT_UNSPECIFIED);
	assert_int_equal(w->role, PK__VOLUME_ROLE__ROLE_UNSPECIFIED);
	assert_int_equal(w->legality, PK__LEGALITY__LEGALITY_UNSPECIFIED);
	assert_int_equal(pk_wire_volume_format((enum pk_volume_format)3),
			 PK__VOLUME_FORMAT__FORMAT_UNSPECIFIED);
	assert_int_equal(pk_wire_volume_role((enum pk_volume_role)0),
			 PK__VOLUME_ROLE__ROLE_UNSPECIFIED);
	assert_int_equal(pk_wire_legality((enum pk_volume_legality)0),
			 PK__LEGALITY__LEGALITY_UNSPECIFIED);
	pk_arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec__ping_answered_by_dispatcher),
		cmocka_unit_test(test_codec__capabilities_list_table_verbs),
		cmocka_unit_test(test_codec__verb_result_and_error),
		cmocka_unit_test(test_codec__unknown_verb_unsupported),
		cmocka_unit_test(test_codec__wrong_api_version_refused),
		cmocka_unit_test(test_codec__no_call_refused),
		cmocka_unit_test(test_codec__garbage_refused),
		cmocka_unit_test(test_codec__truncated_refused),
		cmocka_unit_test(test_codec__oversized_refused),
		cmocka_unit_test(test_codec__error_codes_match_wire),
		cmocka_unit_test(test_codec__call_names),
		cmocka_unit_test(test_codec__volume_info_to_wire),
		cmocka_unit_test(test_codec__volume_unknown_values_unspecified),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
