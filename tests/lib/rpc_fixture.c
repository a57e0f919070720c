/*
 * A test's RPC server that stops safely: the contract is tests/lib/rpc_fixture.h.
 */
#include "tests/lib/rpc_fixture.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/rpc.h"
#include "common/xalloc.h"

/* Not a protobuf Request: the dispatcher never sees it. */
static const char QUIESCE[] = "pk-test-quiesce";

struct rpc_fixture {
	char *url;
	struct pk_dispatcher *d;
	struct pk_rpc_server *srv;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool quiesced;
};

static int serve(void *ctx, const void *req, size_t len, void **ret, size_t *ret_len)
{
	struct rpc_fixture *f = ctx;

	if (len == sizeof(QUIESCE) && !memcmp(req, QUIESCE, len)) {
		pthread_mutex_lock(&f->lock);
		f->quiesced = true;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
		return -1; /* no reply: the worker goes straight back to receiving */
	}
	return pk_dispatch_handle(f->d, req, len, ret, ret_len);
}

struct rpc_fixture *rpc_fixture_start(const char *url, struct pk_dispatcher *d)
{
	struct rpc_fixture *f = pk_xcalloc(1, sizeof(*f));
	struct pk_rpc_server_config sc = { 0 };
	struct pk_error err = { PK_OK, "" };

	f->url = pk_xstrdup(url);
	f->d = d;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	sc.url = url;
	sc.workers = 1;
	sc.hard_max_msg = PK_MAX_MESSAGE_DEFAULT * 4;
	if (pk_rpc_server_start(&sc, serve, f, &f->srv, &err) < 0) {
		fail_msg("rpc server %s: %s", url, err.message);
	}
	return f;
}

void rpc_fixture_stop(struct rpc_fixture *f)
{
	struct pk_rpc_client *c = NULL;
	struct timespec until;
	void *reply = NULL;
	size_t len = 0;

	if (!f) {
		return;
	}
	/* The call times out (no reply comes); what counts is that the worker handled it. */
	if (pk_rpc_client_new(f->url, PK_MAX_MESSAGE_DEFAULT, &c, NULL) == 0) {
		(void)pk_rpc_client_call(c, QUIESCE, sizeof(QUIESCE), 200, &reply, &len, NULL);
		free(reply);
		pk_rpc_client_free(c);
	}
	pk_clock_deadline(CLOCK_REALTIME, 10000, &until);
	pthread_mutex_lock(&f->lock);
	while (!f->quiesced) {
		if (pthread_cond_timedwait(&f->cond, &f->lock, &until) != 0) {
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	pk_rpc_server_stop(f->srv);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f->url);
	free(f);
}
