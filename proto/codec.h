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
 *  - Authorization (docs/SECURITY.md): the caller's role comes from the
 *    peer (pk_dispatch_caller); a verb runs only when its table entry's
 *    `roles` holds that role, else PERMISSION_DENIED, logged with the
 *    identity and the verb. Ping and GetCapabilities answered from `info`
 *    are open to every role; a caller without a role gets nothing.
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
#include "common/auth.h"
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

/* A verb that acts on who calls (ImagePrepared records the host's own id). */
typedef int (*pk_verb_caller_fn)(void *ctx, const struct pk_caller *caller,
				 const Pk__Request *req, Pk__Response *resp,
				 struct pk_arena *arena, struct pk_error *err);

/*
 * One row of a daemon's verb table: the call, the roles allowed (mask of
 * enum pk_role; 0: nobody), and its function: fn, or fn_caller when the
 * verb needs the caller.
 */
struct pk_verb {
	Pk__Request__CallCase call;
	unsigned roles;
	pk_verb_fn fn;
	pk_verb_caller_fn fn_caller;
};

/*
 * Who the peer is for d's policy:
 *  - ipc:// (uid already checked: ours or root): engine, the local
 *    administrator;
 *  - plain tcp:// (insecure_tcp, loopback only): engine;
 *  - tls+tcp://: with a mapping (d->auth set), the role the certificate's
 *    CN maps to, none when unmapped or when libnng cannot report it;
 *    without a mapping, engine (every certificate of tls_ca; the daemons
 *    warn about it at start).
 */
void pk_dispatch_caller(const struct pk_dispatcher *d, const struct pk_rpc_peer *peer,
			struct pk_caller *ret);

/* True when the verb row v lets caller call it. */
bool pk_verb_allows(const struct pk_verb *v, const struct pk_caller *caller);

/*
 * A pk_rpc_handler_fn; `dispatcher` is a struct pk_dispatcher *, peer
 * MUST NOT be NULL. Thread-safe.
 */
int pk_dispatch_handle(void *dispatcher, const struct pk_rpc_peer *peer, const void *req,
		       size_t req_len, void **ret_reply, size_t *ret_reply_len);

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
