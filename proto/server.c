#include "proto/server.h"

#include <errno.h>
#include <limits.h>
#include <nng/nng.h>
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

/* The authorization mapping and its start-up rules (header). */
static int server_auth_setup(const struct pk_config *cfg, const char *url,
			     struct pk_auth *auth, struct pk_error *err)
{
	bool tls = strncmp(url, "tls+tcp://", 10) == 0;
	int r;

	r = pk_auth_parse(auth, pk_config_str(cfg, "auth_engine"), pk_config_str(cfg, "auth_host"),
			  pk_config_str(cfg, "auth_viewer"), err);
	if (r < 0) {
		return r;
	}
	if (!tls) {
		if (pk_auth_is_set(auth)) {
			pk_log_info("auth_* settings apply to tls+tcp:// peers only; listen='%s' "
				    "serves its peers as engine", url);
		}
		return 0;
	}
	if (!pk_auth_is_set(auth)) {
		pk_log_warn("listen='%s' has no auth_engine/auth_host/auth_viewer mapping: every "
			    "certificate signed by tls_ca may call every verb (role engine)", url);
		return 0;
	}
	if (!pk_rpc_peer_names_known()) {
		pk_auth_release(auth);
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENOTSUP,
				    "auth_* settings are set for listen='%s', but peers' "
				    "certificate names cannot be read (poolkeeper's TLS engine is not "
				    "installed under libnng %s; see the log); refusing to start "
				    "rather than serve without the mapping",
				    url, nng_version());
	}
	pk_log_info("authorization listen='%s' names=%zu", url, auth->n);
	return 0;
}

void pk_server_release(struct pk_dispatcher *dispatcher)
{
	pk_auth_release(&dispatcher->auth);
}

int pk_server_start(const struct pk_config *cfg, const char *default_url,
		    struct pk_dispatcher *dispatcher, struct pk_rpc_server **ret,
		    struct pk_error *err)
{
	struct pk_rpc_server_config sc = { 0 };
	const char *url = pk_config_str(cfg, "listen");
	struct pk_rpc_tls tls;
	int r;

	sc.url = url ? url : default_url;
	if (strncmp(sc.url, "ipc://", 6) == 0) {
		/* The socket's directory must exist before nng can bind there. */
		char dir[PATH_MAX];
		char *slash;

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
	r = server_auth_setup(cfg, sc.url, &dispatcher->auth, err);
	if (r < 0) {
		return r;
	}
	pk_server_tls_from_config(cfg, &tls);
	sc.tls = &tls; /* read while the listener starts, not later */
	sc.workers = (unsigned)pk_config_int(cfg, "workers");
	sc.max_connections = (unsigned)pk_config_int(cfg, "max_connections");
	dispatcher->max_msg = (size_t)pk_config_int(cfg, "max_message");
	/*
	 * nng's own limit is max_message plus a little: a request a little too
	 * large is still read and answered with an explanation, and nothing
	 * larger is ever buffered for a connection (no multiple of the limit
	 * per peer).
	 */
	sc.hard_max_msg = dispatcher->max_msg + 65536;
	pk_log_info("listening url='%s' workers=%u max_message=%zu max_connections=%u", sc.url,
		    sc.workers, dispatcher->max_msg, sc.max_connections);
	r = pk_rpc_server_start(&sc, pk_dispatch_handle, dispatcher, ret, err);
	if (r < 0) {
		pk_server_release(dispatcher);
	}
	return r;
}
