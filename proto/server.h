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
 * settings here. `default_url` is used when `listen` is unset.
 */
int pk_server_start(const struct pk_config *cfg, const char *default_url,
		    struct pk_dispatcher *dispatcher, struct pk_rpc_server **ret,
		    struct pk_error *err);

#endif
