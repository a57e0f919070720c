/*
 * pk_tls_engine — the TLS engine under nng's tls+tcp transport: mbedTLS,
 * as libnng's own, plus what libnng 1.5.2 does not give: the verified
 * peer certificate's subject CN, which authorization maps to a role.
 *
 * nng lets an application replace its TLS engine (nng_tls_engine_register,
 * <nng/supplemental/tls/engine.h>) but offers no pipe option for the peer's
 * certificate before nng 1.7 (NNG_OPT_TLS_PEER_CN). The one engine hook a
 * pipe reaches synchronously is `verified` (NNG_OPT_TLS_VERIFIED), so
 * pk_tls_engine_peer reads that option and the hook leaves the connection's
 * CN for the calling thread (a thread-local copy, so the name stays valid
 * even if the connection closes right after).
 *
 * Usage: pk_tls_engine_install() once before the first TLS configuration
 * is made (common/rpc_ep.c does, under pthread_once); configurations made
 * earlier keep libnng's engine. Thread-safe after that.
 */
#ifndef PK_TLS_ENGINE_H
#define PK_TLS_ENGINE_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

/* Registers the engine; false (logged) when libnng refuses it. Idempotent. */
bool pk_tls_engine_install(void);

/* True once the engine is installed: peers' names can be reported. */
bool pk_tls_engine_installed(void);

/*
 * For a TLS pipe: *ret_verified, and the peer certificate's subject CN in
 * cn (cn_size bytes, "" when it has none or the pipe is not ours).
 * Returns false when pipe is not a TLS pipe.
 */
bool pk_tls_engine_peer(nng_pipe pipe, bool *ret_verified, char *cn, size_t cn_size);

#endif
