/*
 * rpc_ep — how common/rpc.c opens its nng endpoints; internal to
 * common/rpc*.c (callers use common/rpc.h).
 *
 *  - tls+tcp:// listeners get a server TLS config: our certificate and key,
 *    the CA, and a client certificate REQUIRED (nng closes a connection
 *    whose certificate does not verify). Dialers get a client config: our
 *    certificate and key (presented when the server asks), the CA, the
 *    server's certificate REQUIRED and checked against the URL's host.
 *  - ipc:// listeners: socket file mode 0600, and a pipe callback that
 *    closes connections from other uids (pk_rpc_ipc_peer_allowed).
 *  - anything else: nng's defaults.
 *
 * Each endpoint gets its own nng_tls_config (nng holds a reference while
 * the endpoint lives, so a config is freed here right after it is set).
 */
#ifndef PK_RPC_EP_H
#define PK_RPC_EP_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/rpc.h"

/* True for a tls+tcp:// URL. */
bool pk_rpc_ep_is_tls(const char *url);

/*
 * Builds the TLS config for url (server: a listener; else a dialer, whose
 * expected server name is url's host). tls MUST be set
 * (pk_rpc_tls_is_set). *ret owned by the caller (nng_tls_config_free).
 * Errors: INVALID_ARGUMENT naming the file that cannot be read or parsed.
 */
int pk_rpc_ep_tls_config(const struct pk_rpc_tls *tls, bool server, const char *url,
			 nng_tls_config **ret, struct pk_error *err);

/* INVALID_ARGUMENT: url is tls+tcp:// and no TLS material was given (says where to give it). */
int pk_rpc_ep_tls_missing(const char *url, const char *what, struct pk_error *err);

/*
 * A listening socket's connection gate, run by nng's pipe callbacks
 * (ADD_PRE, REM_POST) on nng's threads: the ipc peer-uid check and the
 * bound on connections. Embedded in the socket's owner; it MUST outlive
 * the socket. Counting is lock-free: a pipe is counted when ADD_PRE runs
 * and uncounted by its REM_POST, which nng runs for every pipe whose
 * ADD_PRE ran, also one closed there.
 */
struct pk_rpc_ep_guard {
	const char *url;          /* named in the log */
	unsigned max_connections; /* 0: unbounded */
	atomic_uint connections;
	atomic_uint dropped;      /* since the last warning */
	atomic_uint_least64_t last_warn_ms;
};

void pk_rpc_ep_guard_init(struct pk_rpc_ep_guard *g, const char *url, unsigned max_connections);

/*
 * Counts one more connection; false when that makes more than
 * max_connections (the caller closes it; it stays counted until
 * pk_rpc_ep_guard_leave, as nng's REM_POST follows).
 */
bool pk_rpc_ep_guard_enter(struct pk_rpc_ep_guard *g);
void pk_rpc_ep_guard_leave(struct pk_rpc_ep_guard *g);

/*
 * Listens on url with the protection of its scheme, and guard's gate
 * registered on sock (its url names refusals in the log). what prefixes
 * error messages.
 */
int pk_rpc_ep_listen(nng_socket sock, const char *url, const struct pk_rpc_tls *tls,
		     struct pk_rpc_ep_guard *guard, const char *what, struct pk_error *err);

/*
 * Dials url synchronously (the first connection, its TLS handshake
 * included, succeeded when this returns 0); nng redials in the background
 * after that. tls_cfg: for tls+tcp://, from pk_rpc_ep_tls_config (NULL
 * otherwise; a tls+tcp:// url without one is INVALID_ARGUMENT).
 */
int pk_rpc_ep_dial(nng_socket sock, const char *url, nng_tls_config *tls_cfg,
		   const char *what, struct pk_error *err);

#endif
