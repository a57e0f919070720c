#include "common/tls_engine.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <nng/supplemental/tls/engine.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"

#define PEER_CN_MAX 256
#define OWN_CERTS_MAX 4

struct nng_tls_engine_config {
	mbedtls_ssl_config ssl;
	mbedtls_x509_crt ca;
	mbedtls_x509_crl crl;
	bool have_crl;
	mbedtls_x509_crt own_crt[OWN_CERTS_MAX];
	mbedtls_pk_context own_key[OWN_CERTS_MAX];
	int nown;
	char *server_name;
};

struct nng_tls_engine_conn {
	void *tls; /* nng's side, for nng_tls_engine_send/recv */
	mbedtls_ssl_context ssl;
	char peer_cn[PEER_CN_MAX];
};

/* One random generator for all connections (mbedTLS locks it: THREADING_C). */
static mbedtls_entropy_context engine_entropy;
static mbedtls_ctr_drbg_context engine_drbg;
static atomic_bool engine_ready;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

/* What the `verified` hook leaves for the thread that read the option. */
static _Thread_local bool peer_seen;
static _Thread_local char peer_cn[PEER_CN_MAX];

static int engine_errno(int rv)
{
	switch (rv) {
	case MBEDTLS_ERR_SSL_WANT_READ:
	case MBEDTLS_ERR_SSL_WANT_WRITE:
		return NNG_EAGAIN;
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
		return NNG_ECLOSED;
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
	case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
		return NNG_EPEERAUTH;
	case MBEDTLS_ERR_NET_RECV_FAILED:
	case MBEDTLS_ERR_NET_SEND_FAILED:
	case MBEDTLS_ERR_NET_CONN_RESET:
		return NNG_ECONNRESET;
	case MBEDTLS_ERR_SSL_ALLOC_FAILED:
		return NNG_ENOMEM;
	default:
		return NNG_ECRYPTO;
	}
}

/* ---- bio: mbedTLS reads and writes through nng's stream ------------------ */

static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
	struct nng_tls_engine_conn *c = arg;
	size_t sz = len;
	int rv = nng_tls_engine_send(c->tls, buf, &sz);

	if (rv == 0) {
		return (int)sz;
	}
	return rv == NNG_EAGAIN ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
	struct nng_tls_engine_conn *c = arg;
	size_t sz = len;
	int rv = nng_tls_engine_recv(c->tls, buf, &sz);

	if (rv == 0) {
		return (int)sz;
	}
	return rv == NNG_EAGAIN ? MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_NET_RECV_FAILED;
}

/* ---- connections ---------------------------------------------------------- */

static int conn_init(nng_tls_engine_conn *c, void *tls, nng_tls_engine_config *cfg)
{
	int rv;

	c->tls = tls;
	mbedtls_ssl_init(&c->ssl);
	rv = mbedtls_ssl_setup(&c->ssl, &cfg->ssl);
	if (rv != 0) {
		mbedtls_ssl_free(&c->ssl);
		return engine_errno(rv);
	}
	if (cfg->server_name) {
		rv = mbedtls_ssl_set_hostname(&c->ssl, cfg->server_name);
		if (rv != 0) {
			mbedtls_ssl_free(&c->ssl);
			return engine_errno(rv);
		}
	}
	mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
	return 0;
}

static void conn_fini(nng_tls_engine_conn *c)
{
	mbedtls_ssl_free(&c->ssl);
}

static void conn_close(nng_tls_engine_conn *c)
{
	(void)mbedtls_ssl_close_notify(&c->ssl);
}

/* Keeps the verified peer's subject CN for the `verified` hook. */
static void conn_keep_peer_cn(nng_tls_engine_conn *c)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
	const mbedtls_x509_name *n;

	c->peer_cn[0] = '\0';
	if (!crt) {
		return;
	}
	for (n = &crt->subject; n; n = n->next) {
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
			size_t len = n->val.len < sizeof(c->peer_cn) - 1 ? n->val.len
									  : sizeof(c->peer_cn) - 1;
			memcpy(c->peer_cn, n->val.p, len);
			c->peer_cn[len] = '\0';
			if (memchr(c->peer_cn, '\0', len)) {
				c->peer_cn[0] = '\0'; /* an embedded NUL: no usable name */
			}
			return;
		}
	}
}

static int conn_handshake(nng_tls_engine_conn *c)
{
	int rv = mbedtls_ssl_handshake(&c->ssl);

	if (rv == 0) {
		conn_keep_peer_cn(c);
		return 0;
	}
	return engine_errno(rv);
}

static int conn_recv(nng_tls_engine_conn *c, uint8_t *buf, size_t *szp)
{
	int rv = mbedtls_ssl_read(&c->ssl, buf, *szp);

	if (rv < 0) {
		return engine_errno(rv);
	}
	if (rv == 0) {
		return NNG_ECLOSED;
	}
	*szp = (size_t)rv;
	return 0;
}

static int conn_send(nng_tls_engine_conn *c, const uint8_t *buf, size_t *szp)
{
	int rv = mbedtls_ssl_write(&c->ssl, buf, *szp);

	if (rv < 0) {
		return engine_errno(rv);
	}
	*szp = (size_t)rv;
	return 0;
}

static bool conn_verified(nng_tls_engine_conn *c)
{
	bool ok = mbedtls_ssl_get_verify_result(&c->ssl) == 0;

	/* Runs on the thread that read NNG_OPT_TLS_VERIFIED (see the header). */
	peer_seen = true;
	snprintf(peer_cn, sizeof(peer_cn), "%s", ok ? c->peer_cn : "");
	return ok;
}

/* ---- configurations -------------------------------------------------------- */

static int config_init(nng_tls_engine_config *cfg, nng_tls_mode mode)
{
	int server = mode == NNG_TLS_MODE_SERVER;
	int rv;

	mbedtls_ssl_config_init(&cfg->ssl);
	mbedtls_x509_crt_init(&cfg->ca);
	mbedtls_x509_crl_init(&cfg->crl);
	rv = mbedtls_ssl_config_defaults(&cfg->ssl,
					 server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
					 MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (rv != 0) {
		mbedtls_ssl_config_free(&cfg->ssl);
		return engine_errno(rv);
	}
	/* nng's defaults: servers do not ask for a certificate, clients require one. */
	mbedtls_ssl_conf_authmode(&cfg->ssl,
				  server ? MBEDTLS_SSL_VERIFY_NONE : MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_min_version(&cfg->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
				     MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_rng(&cfg->ssl, mbedtls_ctr_drbg_random, &engine_drbg);
	return 0;
}

static void config_fini(nng_tls_engine_config *cfg)
{
	mbedtls_ssl_config_free(&cfg->ssl);
	mbedtls_x509_crt_free(&cfg->ca);
	mbedtls_x509_crl_free(&cfg->crl);
	for (int i = 0; i < cfg->nown; i++) {
		mbedtls_x509_crt_free(&cfg->own_crt[i]);
		mbedtls_pk_free(&cfg->own_key[i]);
	}
	free(cfg->server_name);
}

static int config_server(nng_tls_engine_config *cfg, const char *name)
{
	free(cfg->server_name);
	cfg->server_name = pk_xstrdup(name);
	return 0;
}

static int config_auth(nng_tls_engine_config *cfg, nng_tls_auth_mode mode)
{
	switch (mode) {
	case NNG_TLS_AUTH_MODE_NONE:
		mbedtls_ssl_conf_authmode(&cfg->ssl, MBEDTLS_SSL_VERIFY_NONE);
		return 0;
	case NNG_TLS_AUTH_MODE_OPTIONAL:
		mbedtls_ssl_conf_authmode(&cfg->ssl, MBEDTLS_SSL_VERIFY_OPTIONAL);
		return 0;
	case NNG_TLS_AUTH_MODE_REQUIRED:
		mbedtls_ssl_conf_authmode(&cfg->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
		return 0;
	}
	return NNG_EINVAL;
}

static int config_ca_chain(nng_tls_engine_config *cfg, const char *certs, const char *crl)
{
	int rv = mbedtls_x509_crt_parse(&cfg->ca, (const unsigned char *)certs,
					strlen(certs) + 1);

	if (rv != 0) {
		return NNG_EINVAL;
	}
	if (crl) {
		rv = mbedtls_x509_crl_parse(&cfg->crl, (const unsigned char *)crl,
					    strlen(crl) + 1);
		if (rv != 0) {
			return NNG_EINVAL;
		}
		cfg->have_crl = true;
	}
	mbedtls_ssl_conf_ca_chain(&cfg->ssl, &cfg->ca, cfg->have_crl ? &cfg->crl : NULL);
	return 0;
}

static int config_own_cert(nng_tls_engine_config *cfg, const char *cert, const char *key,
			   const char *pass)
{
	mbedtls_x509_crt *crt;
	mbedtls_pk_context *pk;
	int rv;

	if (cfg->nown >= OWN_CERTS_MAX) {
		return NNG_ENOMEM;
	}
	crt = &cfg->own_crt[cfg->nown];
	pk = &cfg->own_key[cfg->nown];
	mbedtls_x509_crt_init(crt);
	mbedtls_pk_init(pk);
	rv = mbedtls_x509_crt_parse(crt, (const unsigned char *)cert, strlen(cert) + 1);
	if (rv == 0) {
		rv = mbedtls_pk_parse_key(pk, (const unsigned char *)key, strlen(key) + 1,
					  (const unsigned char *)pass, pass ? strlen(pass) : 0);
	}
	if (rv == 0) {
		rv = mbedtls_ssl_conf_own_cert(&cfg->ssl, crt, pk);
	}
	if (rv != 0) {
		mbedtls_x509_crt_free(crt);
		mbedtls_pk_free(pk);
		return NNG_EINVAL;
	}
	cfg->nown++;
	return 0;
}

static int config_version(nng_tls_engine_config *cfg, nng_tls_version min, nng_tls_version max)
{
	int vmin, vmax;

	if (min > max || min > NNG_TLS_1_2) {
		return NNG_ENOTSUP; /* mbedTLS 2.28 has no TLS 1.3 for us */
	}
	vmin = min <= NNG_TLS_1_0 ? MBEDTLS_SSL_MINOR_VERSION_1
	       : min == NNG_TLS_1_1 ? MBEDTLS_SSL_MINOR_VERSION_2
				    : MBEDTLS_SSL_MINOR_VERSION_3;
	vmax = max >= NNG_TLS_1_2 ? MBEDTLS_SSL_MINOR_VERSION_3
	       : max == NNG_TLS_1_1 ? MBEDTLS_SSL_MINOR_VERSION_2
				    : MBEDTLS_SSL_MINOR_VERSION_1;
	mbedtls_ssl_conf_min_version(&cfg->ssl, MBEDTLS_SSL_MAJOR_VERSION_3, vmin);
	mbedtls_ssl_conf_max_version(&cfg->ssl, MBEDTLS_SSL_MAJOR_VERSION_3, vmax);
	return 0;
}

static nng_tls_engine_config_ops config_ops = {
	.size = sizeof(struct nng_tls_engine_config),
	.init = config_init,
	.fini = config_fini,
	.server = config_server,
	.auth = config_auth,
	.ca_chain = config_ca_chain,
	.own_cert = config_own_cert,
	.version = config_version,
};

static nng_tls_engine_conn_ops conn_ops = {
	.size = sizeof(struct nng_tls_engine_conn),
	.init = conn_init,
	.fini = conn_fini,
	.close = conn_close,
	.handshake = conn_handshake,
	.recv = conn_recv,
	.send = conn_send,
	.verified = conn_verified,
};

static const nng_tls_engine engine = {
	.version = NNG_TLS_ENGINE_VERSION,
	.config_ops = &config_ops,
	.conn_ops = &conn_ops,
	.name = "poolkeeper-mbedtls",
	.description = "mbed TLS " MBEDTLS_VERSION_STRING " (poolkeeper: reports the peer's CN)",
	.fips_mode = false,
};

static void engine_install_once(void)
{
	static const char pers[] = "poolkeeper-tls";
	nng_tls_config *probe = NULL;
	int rv;

	mbedtls_entropy_init(&engine_entropy);
	mbedtls_ctr_drbg_init(&engine_drbg);
	rv = mbedtls_ctr_drbg_seed(&engine_drbg, mbedtls_entropy_func, &engine_entropy,
				   (const unsigned char *)pers, sizeof(pers) - 1);
	if (rv != 0) {
		pk_log_error("tls engine: cannot seed the random generator (mbedtls %d)", rv);
		return;
	}
	/*
	 * libnng registers its own engine when it initialises, which happens
	 * on first use: make it happen now, or it would replace ours later.
	 */
	if (nng_tls_config_alloc(&probe, NNG_TLS_MODE_CLIENT) == 0) {
		nng_tls_config_free(probe);
	}
	rv = nng_tls_engine_register(&engine);
	if (rv != 0) {
		pk_log_error("tls engine: libnng refused it (%s); peers' certificate names are "
			     "unknown", nng_strerror(rv));
		return;
	}
	atomic_store(&engine_ready, true);
}

bool pk_tls_engine_install(void)
{
	pthread_once(&engine_once, engine_install_once);
	return atomic_load(&engine_ready);
}

bool pk_tls_engine_installed(void)
{
	return atomic_load(&engine_ready);
}

bool pk_tls_engine_peer(nng_pipe pipe, bool *ret_verified, char *cn, size_t cn_size)
{
	bool verified = false;

	peer_seen = false;
	peer_cn[0] = '\0';
	if (nng_pipe_get_bool(pipe, NNG_OPT_TLS_VERIFIED, &verified) != 0) {
		return false;
	}
	*ret_verified = verified;
	snprintf(cn, cn_size, "%s", peer_seen ? peer_cn : "");
	return true;
}
