/*
 * pk_codec — the protobuf envelope: decoding and validating requests,
 * dispatching them to a daemon's verb table, encoding responses, mapping
 * errors, and the client side of a call.
 *
 * Only proto/ and the daemons' rpc.c include generated *.pb-c.h headers;
 * everything else sees plain C.
 *
 * Server contract:
 *  - A request is validated before dispatch: it must decode, carry
 *    api_version == PK_API_VERSION, name a call, and fit max_msg. Anything
 *    else is answered INVALID_ARGUMENT (id 0 if the id is unknown) and
 *    logged; the daemon keeps serving.
 *  - A call with no entry in the verb table is answered UNSUPPORTED,
 *    except Ping and GetCapabilities, which the dispatcher answers from
 *    `info` when the table does not override them.
 *  - A verb fills `resp`'s result member (the case is preset to match the
 *    call) with memory from `arena`, or returns -errno with err set; then
 *    the result is dropped and the error sent.
 */
#ifndef PK_CODEC_H
#define PK_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/daemon.h"
#include "common/error.h"
#include "common/rpc.h"
#include "proto/rpc.pb-c.h"
#include "proto/server.h"

#define PK_MAX_MESSAGE_DEFAULT (4u << 20)

Pk__ErrorCode pk_codec_error_code(enum pk_errc code);
enum pk_errc pk_codec_errc(Pk__ErrorCode code);

/* Wire name of a call, e.g. "create_volume"; "unknown" if not a call. */
const char *pk_codec_call_name(Pk__Request__CallCase call);

typedef int (*pk_verb_fn)(void *ctx, const Pk__Request *req, Pk__Response *resp,
			  struct pk_arena *arena, struct pk_error *err);

struct pk_verb {
	Pk__Request__CallCase call;
	pk_verb_fn fn;
};

/* A pk_rpc_handler_fn; `dispatcher` is a struct pk_dispatcher *. Thread-safe. */
int pk_dispatch_handle(void *dispatcher, const void *req, size_t req_len, void **ret_reply,
		       size_t *ret_reply_len);

/*
 * Decodes and validates a request. On success *ret_req must be freed with
 * pk__request__free_unpacked(*ret_req, NULL).
 */
int pk_codec_request_decode(const void *buf, size_t len, size_t max_msg,
			    Pk__Request **ret_req, struct pk_error *err);

/* Encodes a response into a heap buffer (caller frees). */
int pk_codec_response_encode(const Pk__Response *resp, void **ret_buf, size_t *ret_len);

/*
 * Client: sends `req` (its call set by the caller; api_version and id are
 * filled here) and waits for the response. On success *ret_resp is the
 * decoded response whose result matches the call (free it with
 * pk__response__free_unpacked). If the daemon answered an error, returns
 * -errno with err set from it (code and message), and
 * *ret_spm_host_id (if not NULL) names the SPM for NOT_SPM.
 */
int pk_codec_call(struct pk_rpc_client *c, Pk__Request *req, int timeout_ms,
		  Pk__Response **ret_resp, int32_t *ret_spm_host_id, struct pk_error *err);


#endif
