/*
 * An RPC server for tests that serve a dispatcher in their own process
 * (the test hsmd, the in-process SPM): four workers, a receive limit of
 * four default messages, and a failed test when it cannot listen.
 * rpc_fixture_stop is pk_rpc_server_stop: calls in progress get their
 * replies first.
 *
 * Owned by the test: rpc_fixture_start / rpc_fixture_stop (NULL-safe).
 * The dispatcher must outlive the server.
 */
#ifndef TESTS_LIB_RPC_FIXTURE_H
#define TESTS_LIB_RPC_FIXTURE_H

#include "common/error.h"
#include "common/rpc.h"
#include "proto/codec.h"

struct rpc_fixture;

/* Serves d at url; fails the test when it cannot listen. */
struct rpc_fixture *rpc_fixture_start(const char *url, struct pk_dispatcher *d);
/* The same on a tls+tcp:// url with the server's TLS material (borrowed, read here). */
struct rpc_fixture *rpc_fixture_start_tls(const char *url, struct pk_dispatcher *d,
					  const struct pk_rpc_tls *tls);
void rpc_fixture_stop(struct rpc_fixture *f);

#endif
