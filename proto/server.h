/*
 * pk_server — starts a daemon's RPC service: a pk_rpc_server whose
 * handler is the protobuf dispatcher over the daemon's verb table, with the
 * listen URL, worker count and message limit taken from the settings.
 */
#ifndef PK_SERVER_H
#define PK_SERVER_H

#include "common/config.h"
#include "common/error.h"
#include "common/rpc.h"

struct pk_dispatcher;

/*
 * `dispatcher` must outlive the server; its max_msg is set from the
 * settings here. `default_url` is used when `listen` is unset.
 */
int pk_server_start(const struct pk_config *cfg, const char *default_url,
		    struct pk_dispatcher *dispatcher, struct pk_rpc_server **ret,
		    struct pk_error *err);

#endif
