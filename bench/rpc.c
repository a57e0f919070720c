/*
 * RPC benchmark: Ping round trips through a real hsmd, next to a bare nng
 * req/rep echo of the same request bytes, over ipc://, tcp:// and (with
 * --tls-dir) mutual TLS on tls+tcp://, with 1 and 8 concurrent clients, in
 * the same run. Prints p50/p99 latency, calls/s and the ratio
 * poolkeeper/bare (latency) for each case. Each client keeps its
 * connection, so the TLS cases measure the record layer, not handshakes.
 *
 *   pk-bench-rpc --hsmd PATH [--seconds S] [--tls-dir DIR]
 *   pk-bench-rpc --echo URL [--tls-dir DIR]  (internal: the bare echo server)
 *
 * DIR holds ca.pem, server.pem/.key (the listeners' certificate, naming
 * 127.0.0.1) and client.pem/.key (the clients'), as
 * tests/integration/tls_lib.sh makes them, and server-bundle.pem (the
 * server's certificate and key in one file, for the bare echo).
 */
#include <errno.h>
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/rpc.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "proto/codec.h"

extern char **environ;

static int echo_serve(const char *url)
{
	nng_socket s;
	int rv = nng_rep0_open(&s);

	if (rv == 0) {
		rv = nng_listen(s, url, NULL, 0);
	}
	if (rv != 0) {
		fprintf(stderr, "echo: %s: %s\n", url, nng_strerror(rv));
		return 1;
	}
	/* A raw socket loop with several contexts would be fairer at 8 clients; use workers. */
	for (;;) {
		nng_msg *m;
		if (nng_recvmsg(s, &m, 0) != 0) {
			break;
		}
		if (nng_sendmsg(s, m, 0) != 0) {
			nng_msg_free(m);
		}
	}
	return 0;
}

struct echo_worker {
	nng_socket s;
	pthread_t t;
};

static void *echo_ctx_main(void *arg)
{
	struct echo_worker *w = arg;
	nng_ctx ctx;
	nng_aio *aio;

	nng_ctx_open(&ctx, w->s);
	nng_aio_alloc(&aio, NULL, NULL);
	for (;;) {
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0) {
			break;
		}
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0) {
			nng_msg_free(nng_aio_get_msg(aio));
		}
	}
	return NULL;
}

/* The bare echo's TLS listener: the same mutual TLS the daemons require. */
static int echo_listen_tls(nng_socket s, const char *url, const char *dir)
{
	char ca[4096], bundle[4096];
	nng_tls_config *cfg = NULL;
	nng_listener l;
	int rv;

	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(bundle, sizeof(bundle), "%s/server-bundle.pem", dir);
	rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER);
	if (rv == 0) {
		rv = nng_tls_config_ca_file(cfg, ca);
	}
	if (rv == 0) {
		rv = nng_tls_config_cert_key_file(cfg, bundle, NULL); /* certificate and key */
	}
	if (rv == 0) {
		rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	}
	if (rv == 0) {
		rv = nng_listener_create(&l, s, url);
	}
	if (rv == 0) {
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
	}
	if (rv == 0) {
		rv = nng_listener_start(l, 0);
	}
	if (cfg) {
		nng_tls_config_free(cfg);
	}
	return rv;
}

/* Bare echo with 8 worker contexts, the same concurrency model as the daemons. */
static int echo_serve_ctx(const char *url, const char *tls_dir)
{
	struct echo_worker w[8];
	nng_socket s;
	int rv = nng_rep0_open(&s);

	if (rv == 0) {
		rv = tls_dir ? echo_listen_tls(s, url, tls_dir) : nng_listen(s, url, NULL, 0);
	}
	if (rv != 0) {
		fprintf(stderr, "echo: %s: %s\n", url, nng_strerror(rv));
		return 1;
	}
	for (int i = 0; i < 8; i++) {
		w[i].s = s;
		pthread_create(&w[i].t, NULL, echo_ctx_main, &w[i]);
	}
	pthread_join(w[0].t, NULL);
	return 0;
}

struct client_run {
	const char *url;
	const struct pk_rpc_tls *tls; /* for tls+tcp:// */
	int bare;
	double seconds;
	double *lat; /* microseconds */
	size_t nlat, cap;
	int failed;
	pthread_t t;
};

static int client_open(const char *url, const struct pk_rpc_tls *tls,
		       struct pk_rpc_client **ret, struct pk_error *err)
{
	if (pk_rpc_client_new(url, 1 << 20, ret, err) < 0) {
		return -1;
	}
	if (tls && pk_rpc_client_set_tls(*ret, tls, err) < 0) {
		pk_rpc_client_free(*ret);
		*ret = NULL;
		return -1;
	}
	return 0;
}

static void *client_main(void *arg)
{
	struct client_run *cr = arg;
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PingRequest ping = PK__PING_REQUEST__INIT;
	struct pk_rpc_client *c = NULL;
	struct pk_error err;
	uint8_t buf[64];
	size_t len;
	double end;

	req.call_case = PK__REQUEST__CALL_PING;
	req.ping = &ping;
	req.api_version = PK_API_VERSION;
	req.id = 1;
	len = pk__request__pack(&req, buf);
	if (client_open(cr->url, cr->tls, &c, &err) < 0) {
		fprintf(stderr, "client: %s\n", err.message);
		cr->failed = 1;
		return NULL;
	}
	end = (double)pk_clock_monotonic_us() + cr->seconds * 1e6;
	while ((double)pk_clock_monotonic_us() < end) {
		double t0 = (double)pk_clock_monotonic_us();
		if (cr->bare) {
			void *reply = NULL;
			size_t rlen;
			if (pk_rpc_client_call(c, buf, len, 5000, &reply, &rlen, &err) < 0) {
				cr->failed = 1;
				break;
			}
			free(reply);
		} else {
			Pk__Response *resp = NULL;
			req.id = 0;
			if (pk_codec_call(c, &req, 5000, &resp, NULL, &err) < 0) {
				fprintf(stderr, "ping failed: %s\n", err.message);
				cr->failed = 1;
				break;
			}
			pk__response__free_unpacked(resp, NULL);
		}
		cr->lat = pk_xgrow(cr->lat, &cr->cap, cr->nlat + 1, sizeof(double));
		cr->lat[cr->nlat++] = (double)pk_clock_monotonic_us() - t0;
	}
	pk_rpc_client_free(c);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct result {
	double p50, p99, rate;
};

static int measure(const char *url, const struct pk_rpc_tls *tls, int bare, int clients,
		   double seconds, struct result *res)
{
	struct client_run *cr = pk_xcalloc((size_t)clients, sizeof(*cr));
	double *all = NULL;
	size_t n = 0;
	int failed = 0;

	for (int i = 0; i < clients; i++) {
		cr[i].url = url;
		cr[i].tls = tls;
		cr[i].bare = bare;
		cr[i].seconds = seconds;
		pthread_create(&cr[i].t, NULL, client_main, &cr[i]);
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(cr[i].t, NULL);
		failed |= cr[i].failed;
		all = pk_xgrow(all, NULL, n + cr[i].nlat + 1, sizeof(double));
		memcpy(all + n, cr[i].lat, cr[i].nlat * sizeof(double));
		n += cr[i].nlat;
		free(cr[i].lat);
	}
	free(cr);
	if (failed || n == 0) {
		free(all);
		return -1;
	}
	qsort(all, n, sizeof(double), cmp_double);
	res->p50 = all[n / 2];
	res->p99 = all[(size_t)((double)n * 0.99)];
	res->rate = (double)n / seconds;
	free(all);
	return 0;
}

static pid_t spawn(char *const argv[])
{
	pid_t pid;

	if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0) {
		return -1;
	}
	return pid;
}

static int wait_ready(const char *url, const struct pk_rpc_tls *tls)
{
	for (int i = 0; i < 100; i++) {
		struct pk_rpc_client *c = NULL;
		struct pk_error err;
		void *r = NULL;
		size_t rl;
		int ok;

		Pk__Request req = PK__REQUEST__INIT;
		Pk__PingRequest ping = PK__PING_REQUEST__INIT;
		uint8_t buf[64];
		size_t len;

		req.call_case = PK__REQUEST__CALL_PING;
		req.ping = &ping;
		req.api_version = PK_API_VERSION;
		len = pk__request__pack(&req, buf);
		ok = client_open(url, tls, &c, &err) == 0 &&
		     pk_rpc_client_call(c, buf, len, 500, &r, &rl, &err) == 0;
		free(r);
		pk_rpc_client_free(c);
		if (ok) {
			return 0;
		}
		usleep(50 * 1000);
	}
	return -1;
}

static const char *const trans_name[] = { "ipc", "tcp", "tls" };

int main(int argc, char **argv)
{
	const char *hsmd = NULL, *tls_dir = NULL, *echo_url = NULL;
	double seconds = 2.0;
	char self[4096];
	char dir[] = "/tmp/pk-bench-rpc-XXXXXX";
	char ca[4096], ccert[4096], ckey[4096], scert[4096], skey[4096];
	struct pk_rpc_tls ctls = { ca, ccert, ckey };
	int port = 20000 + (int)(getpid() % 20000);
	int c, status = 0, ntrans = 2;

	static const struct option opts[] = {
		{ "hsmd", required_argument, NULL, 'H' },
		{ "seconds", required_argument, NULL, 's' },
		{ "echo", required_argument, NULL, 'e' },
		{ "tls-dir", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	pk_log_setup("bench", PK_LOG_ERROR);
	while ((c = getopt_long(argc, argv, "H:s:e:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			hsmd = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'e':
			echo_url = optarg;
			break;
		case 't':
			tls_dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s --hsmd PATH [--seconds S] [--tls-dir DIR]\n", argv[0]);
			return 2;
		}
	}
	(void)echo_serve;
	if (echo_url) {
		return echo_serve_ctx(echo_url, strncmp(echo_url, "tls+", 4) == 0 ? tls_dir : NULL);
	}
	if (!hsmd) {
		fprintf(stderr, "usage: %s --hsmd PATH [--seconds S] [--tls-dir DIR]\n", argv[0]);
		return 2;
	}
	if (!realpath("/proc/self/exe", self) || !mkdtemp(dir)) {
		perror("bench");
		return 1;
	}
	if (tls_dir) {
		snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
		snprintf(ccert, sizeof(ccert), "%s/client.pem", tls_dir);
		snprintf(ckey, sizeof(ckey), "%s/client.key", tls_dir);
		snprintf(scert, sizeof(scert), "%s/server.pem", tls_dir);
		snprintf(skey, sizeof(skey), "%s/server.key", tls_dir);
		ntrans = 3;
	}
	printf("poolkeeper %s RPC benchmark: Ping through hsmd vs bare nng echo of the same "
	       "request bytes; %.1f s per case%s\n\n", PK_VERSION, seconds,
	       tls_dir ? "; tls = mutual TLS (tls+tcp://) on both sides" : "");
	printf("%-6s %-8s %-11s %10s %10s %12s %10s\n", "trans", "clients", "server", "p50 us",
	       "p99 us", "calls/s", "p50 ratio");
	for (int t = 0; t < ntrans; t++) {
		char pk_url[256], e_url[256], listen_opt[300], run_opt[300], state_opt[300];
		char ca_opt[4200], cert_opt[4200], key_opt[4200];
		const struct pk_rpc_tls *tls = t == 2 ? &ctls : NULL;
		pid_t pk_pid, echo_pid;

		if (t == 0) {
			snprintf(pk_url, sizeof(pk_url), "ipc://%s/hsm.sock", dir);
			snprintf(e_url, sizeof(e_url), "ipc://%s/echo.sock", dir);
		} else {
			snprintf(pk_url, sizeof(pk_url), "%s://127.0.0.1:%d", t == 2 ? "tls+tcp" : "tcp",
				 port + 2 * t);
			snprintf(e_url, sizeof(e_url), "%s://127.0.0.1:%d", t == 2 ? "tls+tcp" : "tcp",
				 port + 2 * t + 1);
		}
		snprintf(listen_opt, sizeof(listen_opt), "listen=%s", pk_url);
		snprintf(run_opt, sizeof(run_opt), "run_dir=%s/run", dir);
		snprintf(state_opt, sizeof(state_opt), "state_dir=%s/state", dir);
		snprintf(ca_opt, sizeof(ca_opt), "tls_ca=%s", ca);
		snprintf(cert_opt, sizeof(cert_opt), "tls_cert=%s", scert);
		snprintf(key_opt, sizeof(key_opt), "tls_key=%s", skey);
		{
			/* A storage device that does not exist: Ping needs no storage. */
			char *pk_argv[] = { (char *)hsmd, "-o", listen_opt, "-o", "log_level=error",
					    "-o", "lvm_devices=/dev/pk-bench-no-device", "-o", run_opt,
					    "-o", state_opt, "-o", "insecure_tcp=true",
					    t == 2 ? "-o" : NULL, ca_opt, "-o", cert_opt, "-o", key_opt,
					    NULL };
			char *echo_argv[] = { self, "--echo", e_url, "--tls-dir",
					      (char *)(tls_dir ? tls_dir : "-"), NULL };
			pk_pid = spawn(pk_argv);
			echo_pid = spawn(echo_argv);
		}
		if (pk_pid < 0 || echo_pid < 0 || wait_ready(pk_url, tls) < 0 ||
		    wait_ready(e_url, tls) < 0) {
			fprintf(stderr, "bench: servers did not start\n");
			status = 1;
		}
		for (int k = 0; k < 2 && status == 0; k++) {
			int clients = k == 0 ? 1 : 8;
			struct result bare, pk;
			if (measure(e_url, tls, 1, clients, seconds, &bare) < 0 ||
			    measure(pk_url, tls, 0, clients, seconds, &pk) < 0) {
				fprintf(stderr, "bench: a client failed\n");
				status = 1;
				break;
			}
			printf("%-6s %-8d %-11s %10.1f %10.1f %12.0f %10s\n", trans_name[t], clients,
			       "bare-nng", bare.p50, bare.p99, bare.rate, "");
			printf("%-6s %-8d %-11s %10.1f %10.1f %12.0f %10.2f\n", trans_name[t], clients,
			       "hsmd", pk.p50, pk.p99, pk.rate, pk.p50 / bare.p50);
		}
		if (pk_pid > 0) {
			kill(pk_pid, SIGTERM);
			waitpid(pk_pid, NULL, 0);
		}
		if (echo_pid > 0) {
			kill(echo_pid, SIGKILL);
			waitpid(echo_pid, NULL, 0);
		}
	}
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0) {
			status = 1;
		}
	}
	return status;
}
