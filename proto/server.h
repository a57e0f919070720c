/*
 * pk_server — starts a daemon's RPC service: a pk_rpc_server whose
 * handler is the protobuf dispatcher over the daemon's verb table, with the
 * listen URL, worker count and message limit taken from the settings.
 *
 * struct pk_dispatcher names what the dispatcher serves (proto/codec.h
 * dispatches): a daemon's verb table, the context every verb receives and
 * the identity Ping reports. It is plain C so a daemon's main.c can fill
 * it without seeing the wire's types.
 */
#ifndef PK_SERVER_H
#define PK_SERVER_H

#include <stddef.h>

#include "common/auth.h"
#include "common/config.h"
#include "common/error.h"
#include "common/rpc.h"

struct pk_daemon_info;
struct pk_verb; /* proto/codec.h */

struct pk_dispatcher {
	const struct pk_verb *verbs;
	size_t nverbs;
	void *ctx;      /* passed to every verb */
	size_t max_msg; /* requests above this are refused */
	const struct pk_daemon_info *info;
	struct pk_auth auth; /* certificate names -> roles (pk_server_start fills it) */
};

/*
 * The daemon's TLS material from the settings tls_ca, tls_cert, tls_key
 * (borrowed from cfg; fields NULL when unset).
 */
void pk_server_tls_from_config(const struct pk_config *cfg, struct pk_rpc_tls *ret);

/*
 * `dispatcher` must outlive the server; a tls+tcp:// listen URL gets the
 * settings' TLS material (clients must present a certificate signed by
 * tls_ca), an ipc:// one a 0600 socket in a 0700 directory. its max_msg is set from the
 * settings here, and so are its auth mapping (auth_engine, auth_host,
 * auth_viewer; released by pk_server_release) and the server's
 * max_connections. `default_url` is used when `listen` is unset.
 *
 * Start-up rules of the mapping (docs/SECURITY.md, Authorization): a
 * mapping that does not parse is INVALID_ARGUMENT; so is a mapping on a
 * tls+tcp:// listener when this libnng cannot report a peer's certificate
 * name (pk_rpc_peer_names_known), rather than serving without it. A
 * tls+tcp:// listener without a mapping serves every certificate of
 * tls_ca as engine, with a warning.
 */
int pk_server_start(const struct pk_config *cfg, const char *default_url,
		    struct pk_dispatcher *dispatcher, struct pk_rpc_server **ret,
		    struct pk_error *err);

/* Releases what pk_server_start put in dispatcher (after the server stopped). */
void pk_server_release(struct pk_dispatcher *dispatcher);

#endif
