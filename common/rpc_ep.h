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
#include <stdbool.h>

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
 * Listens on url with the protection of its scheme. For ipc:// the pipe
 * callback is registered on sock (it logs refusals naming log_url, which
 * MUST outlive the socket). what prefixes error messages.
 */
int pk_rpc_ep_listen(nng_socket sock, const char *url, const struct pk_rpc_tls *tls,
		     const char *log_url, const char *what, struct pk_error *err);

/*
 * Dials url synchronously (the first connection, its TLS handshake
 * included, succeeded when this returns 0); nng redials in the background
 * after that. tls_cfg: for tls+tcp://, from pk_rpc_ep_tls_config (NULL
 * otherwise; a tls+tcp:// url without one is INVALID_ARGUMENT).
 */
int pk_rpc_ep_dial(nng_socket sock, const char *url, nng_tls_config *tls_cfg,
		   const char *what, struct pk_error *err);

#endif
