#include "proto/server.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/endpoint.h"
#include "common/log.h"
#include "common/statefile.h"
#include "proto/codec.h"

void pk_server_tls_from_config(const struct pk_config *cfg, struct pk_rpc_tls *ret)
{
	ret->ca = pk_config_str(cfg, "tls_ca");
	ret->cert = pk_config_str(cfg, "tls_cert");
	ret->key = pk_config_str(cfg, "tls_key");
}

int pk_server_start(const struct pk_config *cfg, const char *default_url,
		    struct pk_dispatcher *dispatcher, struct pk_rpc_server **ret,
		    struct pk_error *err)
{
	struct pk_rpc_server_config sc = { 0 };
	const char *url = pk_config_str(cfg, "listen");
	struct pk_rpc_tls tls;

	sc.url = url ? url : default_url;
	if (strncmp(sc.url, "ipc://", 6) == 0) {
		/* The socket's directory must exist before nng can bind there. */
		char dir[PATH_MAX];
		char *slash;
		int r;

		snprintf(dir, sizeof(dir), "%s", sc.url + 6);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			r = pk_statefile_mkdir(dir, err);
			if (r < 0) {
				return r;
			}
		}
		r = pk_endpoint_prepare_ipc_dir(sc.url, err);
		if (r < 0) {
			return r;
		}
	}
	pk_server_tls_from_config(cfg, &tls);
	sc.tls = &tls; /* read while the listener starts, not later */
	sc.workers = (unsigned)pk_config_int(cfg, "workers");
	dispatcher->max_msg = (size_t)pk_config_int(cfg, "max_message");
	/*
	 * nng's own limit is max_message plus a little: a request a little too
	 * large is still read and answered with an explanation, and nothing
	 * larger is ever buffered for a connection (no multiple of the limit
	 * per peer).
	 */
	sc.hard_max_msg = dispatcher->max_msg + 65536;
	pk_log_info("listening url='%s' workers=%u max_message=%zu", sc.url, sc.workers,
		    dispatcher->max_msg);
	return pk_rpc_server_start(&sc, pk_dispatch_handle, dispatcher, ret, err);
}
