#include "common/endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool pk_endpoint_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!host || !*host) {
		return false;
	}
	if (strcmp(host, "localhost") == 0) {
		return true;
	}
	if (inet_pton(AF_INET, host, &a4) == 1) {
		return (ntohl(a4.s_addr) >> 24) == 127;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		return IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

/* Copies the host of "scheme://host:port" (brackets removed) into buf. */
static int endpoint_host(const char *rest, char *buf, size_t size)
{
	const char *end;
	size_t n;

	if (rest[0] == '[') {
		end = strchr(rest, ']');
		if (!end) {
			return -EINVAL;
		}
		rest++;
	} else {
		end = strrchr(rest, ':');
		if (!end) {
			return -EINVAL;
		}
	}
	n = (size_t)(end - rest);
	if (n == 0 || n >= size) {
		return -EINVAL;
	}
	memcpy(buf, rest, n);
	buf[n] = '\0';
	return 0;
}

int pk_endpoint_url_host(const char *url, char *buf, size_t size)
{
	const char *rest = url ? strstr(url, "://") : NULL;

	if (!rest) {
		return -EINVAL;
	}
	return endpoint_host(rest + 3, buf, size);
}

int pk_endpoint_check(const char *setting, const char *url,
		      const struct pk_endpoint_policy *policy,
		      enum pk_endpoint_kind *ret_kind, bool *ret_warn,
		      struct pk_error *err)
{
	char host[256];

	if (!url || !*url) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s: no URL set", setting);
	}
	if (strncmp(url, "ipc:///", 7) == 0) {
		*ret_kind = PK_ENDPOINT_IPC;
		*ret_warn = false;
		return 0;
	}
	if (strncmp(url, "tls+tcp://", 10) == 0) {
		if (endpoint_host(url + 10, host, sizeof(host)) < 0) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s: '%s' is not tls+tcp://host:port", setting, url);
		}
		if (!policy->tls_ready) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s: '%s' needs the settings tls_ca, tls_cert and tls_key",
					    setting, url);
		}
		*ret_kind = PK_ENDPOINT_TLS_TCP;
		*ret_warn = false;
		return 0;
	}
	if (strncmp(url, "tcp://", 6) == 0) {
		if (endpoint_host(url + 6, host, sizeof(host)) < 0) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s: '%s' is not tcp://host:port", setting, url);
		}
		if (!policy->insecure_tcp) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s: plain '%s' is refused: use tls+tcp:// (with tls_ca, tls_cert, tls_key) or ipc://; insecure_tcp = true allows tcp:// on loopback only",
					    setting, url);
		}
		if (!pk_endpoint_host_is_loopback(host)) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s: plain '%s' is refused: insecure_tcp allows loopback hosts only; use tls+tcp://",
					    setting, url);
		}
		*ret_kind = PK_ENDPOINT_TCP;
		*ret_warn = true;
		return 0;
	}
	return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
			    "%s: '%s' has an unsupported scheme (use ipc://, tls+tcp:// or, on loopback with insecure_tcp, tcp://)",
			    setting, url);
}

int pk_endpoint_prepare_ipc_dir(const char *url, struct pk_error *err)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	if (!url || strncmp(url, "ipc://", 6) != 0) {
		return 0;
	}
	if (snprintf(dir, sizeof(dir), "%s", url + 6) >= (int)sizeof(dir)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "ipc path of '%s' is too long", url);
	}
	slash = strrchr(dir, '/');
	if (!slash || slash == dir) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "'%s': the ipc socket must be in a directory of its own, not /", url);
	}
	*slash = '\0';
	if (mkdir(dir, 0700) == 0) {
		return 0;
	}
	if (errno != EEXIST) {
		return pk_error_set(err, PK_E_INTERNAL, errno, "cannot create ipc directory '%s': %s",
				    dir, strerror(errno));
	}
	if (stat(dir, &st) < 0) {
		return pk_error_set(err, PK_E_INTERNAL, errno, "cannot stat ipc directory '%s': %s",
				    dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENOTDIR,
				    "ipc directory '%s' is not a directory", dir);
	}
	if (st.st_uid != geteuid() || (st.st_mode & S_ISVTX)) {
		return 0; /* shared (e.g. /tmp) or not ours: the socket's 0600 protects it */
	}
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0) {
		return pk_error_set(err, PK_E_INTERNAL, errno, "cannot chmod ipc directory '%s' to 0700: %s",
				    dir, strerror(errno));
	}
	return 0;
}
