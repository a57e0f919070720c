/*
 * pk_rpc — message transport over nng: a request/reply server with worker
 * threads, a request client, and an event publisher/subscriber.
 *
 * This layer moves opaque byte strings; the envelope (protobuf) lives in
 * proto/codec.h. URLs are nng URLs: ipc:///path, tcp://host:port (and
 * tls+tcp:// once TLS is configured; nothing here depends on the scheme).
 *
 * Server: `workers` threads each own one nng context and block in
 * receive -> handler -> send, so a slow call (LVM, libvirt, sanlock)
 * occupies one worker while the others keep answering. The handler MUST
 * be thread-safe. nng drops (and closes the pipe of) messages above
 * `hard_max_msg`; the handler is expected to answer messages above its own,
 * smaller limit with an error so clients learn why.
 */
#ifndef PK_RPC_H
#define PK_RPC_H

#include <stddef.h>

#include "common/error.h"

/*
 * Handles one request. Returns 0 and a heap reply (*ret_reply, freed by
 * the server with free()) or a negative errno to send no reply.
 */
typedef int (*pk_rpc_handler_fn)(void *ctx, const void *req, size_t req_len,
				 void **ret_reply, size_t *ret_reply_len);

/* How long a stop waits for the calls in progress unless the config says. */
#define PK_RPC_STOP_WAIT_MS_DEFAULT 10000u

struct pk_rpc_server_config {
	const char *url;
	unsigned workers;      /* >= 1 */
	size_t hard_max_msg;   /* nng's receive limit; larger messages are dropped */
	unsigned stop_wait_ms; /* see pk_rpc_server_stop; 0: PK_RPC_STOP_WAIT_MS_DEFAULT */
};

struct pk_rpc_server;

/* Listens and starts the workers. *ret owned by the caller (stop frees it). */
int pk_rpc_server_start(const struct pk_rpc_server_config *cfg, pk_rpc_handler_fn fn,
			void *ctx, struct pk_rpc_server **ret, struct pk_error *err);
/*
 * Stops and frees the server. NULL-safe; call it from one thread, not
 * from a handler. In order:
 *  1. no new call starts: a request not yet handed to the handler is not
 *     served (its client times out);
 *  2. waits up to stop_wait_ms for every call in progress to return from
 *     the handler and for its reply to be sent (or to fail);
 *  3. closes the contexts, then the socket: pending sends fail, and a
 *     call still in its handler after the wait gets its reply dropped;
 *  4. joins the workers, so it returns only once every handler returned
 *     (the handler's ctx may be freed then).
 */
void pk_rpc_server_stop(struct pk_rpc_server *srv);

struct pk_rpc_client;

/*
 * Creates a client for url. Nothing is connected yet: the first call dials,
 * and a call to an address where nobody listens fails with UNAVAILABLE, as
 * does a call once the peer went away (its connection lost and not back
 * within about a second: nng redials in the background), instead of
 * waiting for its timeout.
 * Thread-safe: concurrent calls each use their own nng context.
 */
int pk_rpc_client_new(const char *url, size_t max_msg, struct pk_rpc_client **ret,
		      struct pk_error *err);
/*
 * Closes and frees c (NULL-safe); calls on it must have returned. Returns
 * within a bound even when libnng's close hangs (common/rpc.c says why):
 * the socket is then left to the process and a warning logged.
 */
void pk_rpc_client_free(struct pk_rpc_client *c);
const char *pk_rpc_client_url(const struct pk_rpc_client *c);

/* Sends req and waits up to timeout_ms for the reply (heap, caller frees). */
int pk_rpc_client_call(struct pk_rpc_client *c, const void *req, size_t req_len,
		       int timeout_ms, void **ret_reply, size_t *ret_reply_len,
		       struct pk_error *err);

/* Publisher of events (nng pub). Sends never block; slow subscribers lose messages. */
struct pk_rpc_pub;
int pk_rpc_pub_new(const char *url, struct pk_rpc_pub **ret, struct pk_error *err);
void pk_rpc_pub_free(struct pk_rpc_pub *p);
int pk_rpc_pub_send(struct pk_rpc_pub *p, const void *msg, size_t len, struct pk_error *err);

/* Subscriber to all messages of a publisher. */
struct pk_rpc_sub;
int pk_rpc_sub_new(const char *url, struct pk_rpc_sub **ret, struct pk_error *err);
void pk_rpc_sub_free(struct pk_rpc_sub *s);
/* Waits up to timeout_ms; -ETIMEDOUT when nothing came. *ret_msg heap. */
int pk_rpc_sub_recv(struct pk_rpc_sub *s, int timeout_ms, void **ret_msg, size_t *ret_len,
		    struct pk_error *err);

/* Maps an nng error number to a pk code, an errno and a message with context. */
int pk_rpc_nng_error(struct pk_error *err, int nng_rv, const char *what, const char *url);

#endif
