#include "common/rpc_ep.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/endpoint.h"
#include "common/log.h"
#include "common/tls_engine.h"
#include "common/xalloc.h"

/* PEM files are a few KiB; anything far larger is not one. */
#define TLS_PEM_MAX (1u << 20)

bool pk_rpc_tls_is_set(const struct pk_rpc_tls *tls)
{
	return tls && tls->ca && *tls->ca && tls->cert && *tls->cert && tls->key && *tls->key;
}

bool pk_rpc_ipc_peer_allowed(uint64_t peer_uid, uid_t self)
{
	return peer_uid == (uint64_t)self || peer_uid == 0;
}

bool pk_rpc_ep_is_tls(const char *url)
{
	return url && strncmp(url, "tls+tcp://", 10) == 0;
}

/* Reads a PEM file into a NUL-terminated heap string (*ret, caller frees). */
static int read_pem(const char *setting, const char *path, char **ret, struct pk_error *err)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, errno, "%s '%s' cannot be read: %s",
				    setting, path, strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (size_t)st.st_size > TLS_PEM_MAX) {
		close(fd);
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s '%s' is not a PEM file (empty, not a regular file or over 1 MiB)",
				    setting, path);
	}
	buf = pk_xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, n < 0 ? errno : EIO,
					 "%s '%s' cannot be read: %s", setting, path,
					 n < 0 ? strerror(errno) : "short read");
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[got] = '\0';
	*ret = buf;
	return 0;
}

int pk_rpc_ep_tls_config(const struct pk_rpc_tls *tls, bool server, const char *url,
			 nng_tls_config **ret, struct pk_error *err)
{
	nng_tls_config *cfg = NULL;
	char *ca = NULL, *cert = NULL, *key = NULL;
	char host[256];
	int rv, r;

	r = read_pem("tls_ca", tls->ca, &ca, err);
	if (r == 0) {
		r = read_pem("tls_cert", tls->cert, &cert, err);
	}
	if (r == 0) {
		r = read_pem("tls_key", tls->key, &key, err);
	}
	if (r < 0) {
		goto out;
	}
	/* Our engine (it reports peers' names) must be in place before any config. */
	pk_tls_engine_install();
	rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
	if (rv != 0) {
		r = pk_error_set(err, PK_E_INTERNAL, ENOMEM, "cannot set up TLS for '%s': %s", url,
				 nng_strerror(rv));
		goto out;
	}
	/* Mutual: both sides require and verify the other's certificate. */
	rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv != 0) {
		r = pk_error_set(err, PK_E_INTERNAL, EIO, "cannot set up TLS for '%s': %s", url,
				 nng_strerror(rv));
		goto out;
	}
	rv = nng_tls_config_ca_chain(cfg, ca, NULL);
	if (rv != 0) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "tls_ca '%s' holds no usable PEM CA certificate (%s)", tls->ca,
				 nng_strerror(rv));
		goto out;
	}
	rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
	if (rv != 0) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				 "tls_cert '%s' and tls_key '%s' are not a usable PEM certificate and "
				 "its unencrypted private key (%s)",
				 tls->cert, tls->key, nng_strerror(rv));
		goto out;
	}
	if (!server) {
		/* The server's certificate must name the host we dial. */
		if (pk_endpoint_url_host(url, host, sizeof(host)) < 0) {
			r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					 "'%s' is not tls+tcp://host:port", url);
			goto out;
		}
		rv = nng_tls_config_server_name(cfg, host);
		if (rv != 0) {
			r = pk_error_set(err, PK_E_INTERNAL, EIO, "cannot set up TLS for '%s': %s",
					 url, nng_strerror(rv));
			goto out;
		}
	}
	*ret = cfg;
	cfg = NULL;
	r = 0;
out:
	if (cfg) {
		nng_tls_config_free(cfg);
	}
	free(ca);
	free(cert);
	if (key) {
		/* Do not leave the private key in freed heap memory. */
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return r;
}

void pk_rpc_ep_guard_init(struct pk_rpc_ep_guard *g, const char *url, unsigned max_connections)
{
	g->url = url;
	g->max_connections = max_connections;
	atomic_init(&g->connections, 0);
	atomic_init(&g->dropped, 0);
	atomic_init(&g->last_warn_ms, 0);
}

bool pk_rpc_ep_guard_enter(struct pk_rpc_ep_guard *g)
{
	unsigned n = atomic_fetch_add(&g->connections, 1) + 1;

	return g->max_connections == 0 || n <= g->max_connections;
}

void pk_rpc_ep_guard_leave(struct pk_rpc_ep_guard *g)
{
	atomic_fetch_sub(&g->connections, 1);
}

/* A flood of connections must not become a flood of log lines. */
#define GUARD_WARN_INTERVAL_MS 10000u

static void guard_warn_dropped(struct pk_rpc_ep_guard *g)
{
	uint64_t now = pk_clock_monotonic_ms();
	uint64_t last = atomic_load(&g->last_warn_ms);
	unsigned dropped = atomic_fetch_add(&g->dropped, 1) + 1;

	if (last != 0 && now - last < GUARD_WARN_INTERVAL_MS) {
		return;
	}
	if (!atomic_compare_exchange_strong(&g->last_warn_ms, &last, now)) {
		return; /* another thread warns */
	}
	atomic_fetch_sub(&g->dropped, dropped);
	pk_log_warn("connection refused url='%s' max_connections=%u dropped=%u: too many "
		    "connections at once (dropped counts refusals since the last such line)",
		    g->url, g->max_connections, dropped);
}

/*
 * Runs in nng's thread before a connection is handed to the protocol:
 * closing the pipe here refuses it before any request is read. Only ipc
 * pipes carry a peer uid.
 */
static void guard_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct pk_rpc_ep_guard *g = arg;
	uint64_t uid;

	if (ev == NNG_PIPE_EV_REM_POST) {
		pk_rpc_ep_guard_leave(g);
		return;
	}
	if (ev != NNG_PIPE_EV_ADD_PRE) {
		return;
	}
	if (!pk_rpc_ep_guard_enter(g)) {
		guard_warn_dropped(g);
		nng_pipe_close(pipe);
		return;
	}
	if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_UID, &uid) != 0) {
		return; /* not an ipc connection */
	}
	if (!pk_rpc_ipc_peer_allowed(uid, geteuid())) {
		pk_log_warn("ipc connection refused url='%s' peer_uid=%llu: only uid %u and root "
			    "may call this daemon",
			    g->url, (unsigned long long)uid, (unsigned)geteuid());
		nng_pipe_close(pipe);
	}
}

int pk_rpc_ep_tls_missing(const char *url, const char *what, struct pk_error *err)
{
	return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
			    "%s: '%s' needs TLS certificates (daemons: settings tls_ca, tls_cert, "
			    "tls_key; pkctl: --tls-ca, --tls-cert, --tls-key or PK_TLS_CA, "
			    "PK_TLS_CERT, PK_TLS_KEY)",
			    what, url);
}

int pk_rpc_ep_listen(nng_socket sock, const char *url, const struct pk_rpc_tls *tls,
		     struct pk_rpc_ep_guard *guard, const char *what, struct pk_error *err)
{
	nng_listener l;
	nng_tls_config *cfg = NULL;
	int rv, r;

	rv = nng_listener_create(&l, sock, url);
	if (rv != 0) {
		return pk_rpc_nng_error(err, rv, what, url);
	}
	if (pk_rpc_ep_is_tls(url)) {
		if (!pk_rpc_tls_is_set(tls)) {
			r = pk_rpc_ep_tls_missing(url, what, err);
			goto fail;
		}
		r = pk_rpc_ep_tls_config(tls, true, url, &cfg, err);
		if (r < 0) {
			goto fail;
		}
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg); /* the listener holds its own reference */
		if (rv != 0) {
			r = pk_rpc_nng_error(err, rv, what, url);
			goto fail;
		}
	} else if (strncmp(url, "ipc://", 6) == 0) {
		rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600);
		if (rv != 0) {
			r = pk_rpc_nng_error(err, rv, what, url);
			goto fail;
		}
	}
	rv = nng_pipe_notify(sock, NNG_PIPE_EV_ADD_PRE, guard_pipe_event, guard);
	if (rv == 0) {
		rv = nng_pipe_notify(sock, NNG_PIPE_EV_REM_POST, guard_pipe_event, guard);
	}
	if (rv != 0) {
		r = pk_rpc_nng_error(err, rv, what, url);
		goto fail;
	}
	rv = nng_listener_start(l, 0);
	if (rv != 0) {
		r = pk_rpc_nng_error(err, rv, what, url);
		goto fail;
	}
	return 0;
fail:
	nng_listener_close(l);
	return r;
}

int pk_rpc_ep_dial(nng_socket sock, const char *url, nng_tls_config *tls_cfg,
		   const char *what, struct pk_error *err)
{
	nng_dialer d;
	int rv;

	if (pk_rpc_ep_is_tls(url) && !tls_cfg) {
		return pk_rpc_ep_tls_missing(url, what, err);
	}
	rv = nng_dialer_create(&d, sock, url);
	if (rv != 0) {
		return pk_rpc_nng_error(err, rv, what, url);
	}
	if (tls_cfg) {
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls_cfg);
	}
	if (rv == 0) {
		rv = nng_dialer_start(d, 0);
	}
	if (rv != 0) {
		/* A failed synchronous start leaves the dialer to us. */
		nng_dialer_close(d);
		return pk_rpc_nng_error(err, rv, what, url);
	}
	return 0;
}
