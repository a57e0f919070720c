/*
 * pk_endpoint — which listen URLs a daemon may use, checked at start.
 *
 *   ipc:///path      allowed; its directory is prepared with
 *                    pk_endpoint_prepare_ipc_dir (0700).
 *   tls+tcp://h:p    allowed only with tls_ca, tls_cert and tls_key all set.
 *   tcp://h:p        refused, unless the operator set insecure_tcp AND the
 *                    host is loopback (127.0.0.0/8, ::1, localhost); then
 *                    *ret_warn is set and the caller MUST log a warning.
 *   anything else    refused.
 *
 * Pure functions of their arguments (prepare_ipc_dir touches the file
 * system); they do not log. Errors: INVALID_ARGUMENT with a message naming
 * the URL and what to change.
 */
#ifndef PK_ENDPOINT_H
#define PK_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

struct pk_endpoint_policy {
	bool insecure_tcp; /* setting insecure_tcp */
	bool tls_ready;    /* tls_ca, tls_cert and tls_key are all set */
};

enum pk_endpoint_kind {
	PK_ENDPOINT_IPC = 1,
	PK_ENDPOINT_TCP = 2,
	PK_ENDPOINT_TLS_TCP = 3,
};

/*
 * Checks url against the policy. On success writes *ret_kind and *ret_warn
 * (true for an accepted insecure tcp:// endpoint) and returns 0; else
 * -EINVAL with err set. setting names the setting for the message
 * ("listen", "events").
 */
int pk_endpoint_check(const char *setting, const char *url,
		      const struct pk_endpoint_policy *policy,
		      enum pk_endpoint_kind *ret_kind, bool *ret_warn,
		      struct pk_error *err);

/*
 * Copies the host of a "scheme://host:port" URL (IPv6 brackets removed)
 * into buf: the name a TLS client verifies in the server's certificate.
 * Returns 0, or -EINVAL for a URL without scheme, host or port, or a host
 * that does not fit.
 */
int pk_endpoint_url_host(const char *url, char *buf, size_t size);

/* True when host (no brackets, no port) is a loopback name or address. */
bool pk_endpoint_host_is_loopback(const char *host);

/*
 * For an ipc:// URL: creates the socket's directory with mode 0700, or,
 * when it exists, is owned by us and is not sticky (not /tmp), tightens it
 * to 0700. A directory owned by someone else is left alone. Returns 0 or
 * -errno with err set. Other URLs: 0, nothing done.
 */
int pk_endpoint_prepare_ipc_dir(const char *url, struct pk_error *err);

#endif
