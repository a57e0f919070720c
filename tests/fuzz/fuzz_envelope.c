/*
 * libFuzzer target: arbitrary bytes into the request path of a daemon
 * (decode, validate, dispatch, encode). Every input must produce a
 * response that decodes, and never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/log.h"
#include "proto/codec.h"
#include "tests/fuzz/fuzz_dispatch.h"

static int verb_echo_status(void *ctx, const Pk__Request *req, Pk__Response *resp,
			    struct pk_arena *arena, struct pk_error *err)
{
	Pk__SpmStatusResponse *s = pk_arena_new(arena, Pk__SpmStatusResponse);

	(void)ctx;
	(void)err;
	pk__spm_status_response__init(s);
	s->domain_id = pk_arena_strdup(arena, req->spm_status->domain_id);
	resp->spm_status = s;
	return 0;
}

static const struct pk_verb verbs[] = {
	{ PK__REQUEST__CALL_SPM_STATUS, PK_ROLES_ALL, verb_echo_status, NULL },
};
static const struct pk_daemon_info info = { "spm", 1, 0, "lab", false };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pk_dispatcher d = { verbs, 1, NULL, 65536, &info, PK_AUTH_INIT };

	pk_log_setup("fuzz", PK_LOG_ERROR);
	fuzz_dispatch_one(&d, data, size);
	return 0;
}
