/*
 * An RPC server for tests that serve a dispatcher in their own process
 * (the test hsmd, the in-process SPM), and stop it safely.
 *
 * Why: libnng panics when a socket closes while one of its workers is
 * still inside nng_ctx_send (the reply of a call whose answer the client
 * already has), which a test hits when it stops a server right after its
 * last call. So the server runs one worker, and stopping first sends it a
 * request it answers with nothing: once that request was handled, the
 * worker has finished every earlier send and waits in a receive, which a
 * close ends cleanly.
 *
 * Owned by the test: rpc_fixture_start / rpc_fixture_stop (NULL-safe).
 * The dispatcher must outlive the server.
 */
#ifndef TESTS_LIB_RPC_FIXTURE_H
#define TESTS_LIB_RPC_FIXTURE_H

#include "common/error.h"
#include "proto/codec.h"

struct rpc_fixture;

/* Serves d at url with one worker; fails the test when it cannot listen. */
struct rpc_fixture *rpc_fixture_start(const char *url, struct pk_dispatcher *d);
void rpc_fixture_stop(struct rpc_fixture *f);

#endif
