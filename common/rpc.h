/*
 * pk_rpc — message transport over nng: a request/reply server with worker
 * threads, a request client, and an event publisher/subscriber.
 *
 * This layer moves opaque byte strings; the envelope (protobuf) lives in
 * proto/codec.h. URLs are nng URLs: ipc:///path, tcp://host:port and
 * tls+tcp://host:port. Which URLs a daemon may use is common/endpoint.h's
 * policy; here each scheme gets its protection:
 *
 *  - tls+tcp:// is mutual TLS (struct pk_rpc_tls): a listener requires a
 *    client certificate signed by the CA, a dialer presents its own and
 *    verifies the server's against the CA and the URL's host name. A
 *    tls+tcp:// URL without a pk_rpc_tls is refused (INVALID_ARGUMENT).
 *  - ipc:// listeners create the socket file with mode 0600 and close any
 *    connection whose peer uid is neither ours nor root's (logged).
 *  - tcp:// is plain; the daemons allow it only on loopback when told to.
 *
 * A handshake that fails (the peer's certificate is not trusted, ours is
 * refused) is UNAVAILABLE with a message naming the URL and what to check.
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* How the peer of a request reached us, and who it says it is. */
enum pk_rpc_peer_kind {
	PK_RPC_PEER_IPC, /* ipc://: uid checked (self or root) */
	PK_RPC_PEER_TCP, /* plain tcp:// (insecure_tcp, loopback) */
	PK_RPC_PEER_TLS, /* tls+tcp://: certificate verified against tls_ca */
};

struct pk_rpc_peer {
	enum pk_rpc_peer_kind kind;
	uint64_t uid;   /* PK_RPC_PEER_IPC */
	const char *cn; /* PK_RPC_PEER_TLS: the certificate's subject CN; NULL when it
			 * cannot be told (see pk_rpc_peer_names_known) */
};

/*
 * True when TLS peers' certificate names can be reported: libnng 1.5.2
 * has no option for it, so poolkeeper runs TLS through its own engine
 * (common/tls_engine.h), installed here if not yet.
 */
bool pk_rpc_peer_names_known(void);

/*
 * Handles one request from peer (valid during the call). Returns 0 and a
 * heap reply (*ret_reply, freed by the server with free()) or a negative
 * errno to send no reply.
 */
typedef int (*pk_rpc_handler_fn)(void *ctx, const struct pk_rpc_peer *peer, const void *req,
				 size_t req_len, void **ret_reply, size_t *ret_reply_len);

/*
 * Mutual TLS material: paths of PEM files, borrowed (they are read when a
 * socket is set up, not later). ca is the cluster CA every peer's
 * certificate must chain to; cert is ours (the CA's signature on it is
 * what the peer checks; for a server, it must name the host the clients
 * dial: subjectAltName DNS entry or CN); key is its unencrypted private
 * key. A pk_rpc_tls is usable when all three are set (pk_rpc_tls_is_set).
 */
struct pk_rpc_tls {
	const char *ca;
	const char *cert;
	const char *key;
};

/* True when tls is non-NULL and names all of ca, cert and key. */
bool pk_rpc_tls_is_set(const struct pk_rpc_tls *tls);

/* Connections a server accepts at once unless the config says. */
#define PK_RPC_MAX_CONNECTIONS_DEFAULT 256u

/* How long a stop waits for the calls in progress unless the config says. */
#define PK_RPC_STOP_WAIT_MS_DEFAULT 10000u

struct pk_rpc_server_config {
	const char *url;
	unsigned workers;      /* >= 1 */
	size_t hard_max_msg;   /* nng's receive limit; larger messages are dropped */
	unsigned stop_wait_ms; /* see pk_rpc_server_stop; 0: PK_RPC_STOP_WAIT_MS_DEFAULT */
	const struct pk_rpc_tls *tls; /* for a tls+tcp:// url; NULL: none (borrowed) */
	/*
	 * Connections served at once; one more is closed as it arrives, before
	 * any byte of it is read as a request (logged at warning, at most once
	 * per 10 s with the count dropped). 0: PK_RPC_MAX_CONNECTIONS_DEFAULT.
	 */
	unsigned max_connections;
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
/*
 * Gives a client for a tls+tcp:// URL its TLS material, read here: a file
 * that cannot be read or parsed, or missing material (tls NULL or not all
 * three files named), is INVALID_ARGUMENT now, not at the first call.
 * Callers MUST call it before the first pk_rpc_client_call, from one
 * thread (-EBUSY after). For other schemes it does nothing.
 */
int pk_rpc_client_set_tls(struct pk_rpc_client *c, const struct pk_rpc_tls *tls,
			  struct pk_error *err);
const char *pk_rpc_client_url(const struct pk_rpc_client *c);

/* Sends req and waits up to timeout_ms for the reply (heap, caller frees). */
int pk_rpc_client_call(struct pk_rpc_client *c, const void *req, size_t req_len,
		       int timeout_ms, void **ret_reply, size_t *ret_reply_len,
		       struct pk_error *err);

/* Publisher of events (nng pub). Sends never block; slow subscribers lose messages. */
struct pk_rpc_pub;
/* tls: for a tls+tcp:// url (subscribers must present a certificate); NULL: none. */
int pk_rpc_pub_new(const char *url, const struct pk_rpc_tls *tls, struct pk_rpc_pub **ret,
		   struct pk_error *err);
void pk_rpc_pub_free(struct pk_rpc_pub *p);
int pk_rpc_pub_send(struct pk_rpc_pub *p, const void *msg, size_t len, struct pk_error *err);

/* Subscriber to all messages of a publisher. */
struct pk_rpc_sub;
/* Dials at once; tls: for a tls+tcp:// url; NULL: none. */
int pk_rpc_sub_new(const char *url, const struct pk_rpc_tls *tls, struct pk_rpc_sub **ret,
		   struct pk_error *err);
void pk_rpc_sub_free(struct pk_rpc_sub *s);
/* Waits up to timeout_ms; -ETIMEDOUT when nothing came. *ret_msg heap. */
int pk_rpc_sub_recv(struct pk_rpc_sub *s, int timeout_ms, void **ret_msg, size_t *ret_len,
		    struct pk_error *err);

/*
 * Maps an nng error number to a pk code, an errno and a message with
 * context. Connection failures (refused, reset, TLS handshake: peer
 * authentication or crypto errors) are UNAVAILABLE, so callers that fail
 * over treat them like a peer that is down.
 */
int pk_rpc_nng_error(struct pk_error *err, int nng_rv, const char *what, const char *url);

/*
 * The ipc peer check: a connection from peer_uid is served when it is
 * self (the daemon's effective uid) or root (who can reach the socket
 * anyway). Pure.
 */
bool pk_rpc_ipc_peer_allowed(uint64_t peer_uid, uid_t self);

#endif
