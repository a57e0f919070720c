/*
 * A test's RPC server: the contract is tests/lib/rpc_fixture.h.
 */
#include "tests/lib/rpc_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "common/rpc.h"
#include "common/xalloc.h"

struct rpc_fixture {
	struct pk_rpc_server *srv;
};

struct rpc_fixture *rpc_fixture_start(const char *url, struct pk_dispatcher *d)
{
	return rpc_fixture_start_tls(url, d, NULL);
}

struct rpc_fixture *rpc_fixture_start_tls(const char *url, struct pk_dispatcher *d,
					  const struct pk_rpc_tls *tls)
{
	struct rpc_fixture *f = pk_xcalloc(1, sizeof(*f));
	struct pk_rpc_server_config sc = { 0 };
	struct pk_error err = { PK_OK, "" };

	sc.url = url;
	sc.workers = 4;
	sc.hard_max_msg = PK_MAX_MESSAGE_DEFAULT * 4;
	sc.tls = tls;
	if (pk_rpc_server_start(&sc, pk_dispatch_handle, d, &f->srv, &err) < 0) {
		fail_msg("rpc server %s: %s", url, err.message);
	}
	return f;
}

void rpc_fixture_stop(struct rpc_fixture *f)
{
	if (!f) {
		return;
	}
	pk_rpc_server_stop(f->srv);
	free(f);
}
