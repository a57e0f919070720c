/*
 * pk-rpc-abuse URL — sends malformed requests to a running daemon over its
 * real socket and checks each is refused with INVALID_ARGUMENT (or, above
 * nng's hard limit, dropped), and that the daemon still answers Ping after
 * every one. Exit 0 when all held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rpc.h"
#include "proto/codec.h"

static int failures;

static void check(int ok, const char *what)
{
	printf("%s - %s\n", ok ? "ok" : "not ok", what);
	failures += !ok;
}

/* Sends raw bytes; returns the decoded response or NULL (no reply). */
static Pk__Response *send_raw(struct pk_rpc_client *c, const void *buf, size_t len, int timeout)
{
	void *reply = NULL;
	size_t rlen = 0;
	struct pk_error err;
	Pk__Response *resp;

	if (pk_rpc_client_call(c, buf, len, timeout, &reply, &rlen, &err) < 0) {
		return NULL;
	}
	resp = pk__response__unpack(NULL, rlen, reply);
	free(reply);
	return resp;
}

static int refused(Pk__Response *resp, const char *needle)
{
	int ok = resp && resp->error && resp->error->code == PK__ERROR_CODE__INVALID_ARGUMENT &&
		 (!needle || strstr(resp->error->message, needle));

	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
	return ok;
}

static int ping_ok(const char *url)
{
	struct pk_rpc_client *c = NULL;
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PingRequest ping = PK__PING_REQUEST__INIT;
	Pk__Response *resp = NULL;
	struct pk_error err;
	int ok;

	/* A fresh connection: the daemon may have closed the abusive one. */
	if (pk_rpc_client_new(url, 64 << 20, &c, &err) < 0) {
		return 0;
	}
	req.call_case = PK__REQUEST__CALL_PING;
	req.ping = &ping;
	ok = pk_codec_call(c, &req, 5000, &resp, NULL, &err) == 0;
	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
	pk_rpc_client_free(c);
	return ok;
}

int main(int argc, char **argv)
{
	struct pk_rpc_client *c = NULL;
	struct pk_error err;
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PingRequest ping = PK__PING_REQUEST__INIT;
	unsigned char buf[256];
	size_t len, big = (4u << 20) + (16u << 10), over = 6u << 20, huge = 40u << 20;
	unsigned char *mem;

	if (argc != 2) {
		fprintf(stderr, "usage: %s URL\n", argv[0]);
		return 2;
	}
	pk_log_setup("abuse", PK_LOG_ERROR);
	if (pk_rpc_client_new(argv[1], 64 << 20, &c, &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	srand(7);
	for (size_t i = 0; i < sizeof(buf); i++) {
		buf[i] = (unsigned char)rand();
	}
	check(refused(send_raw(c, buf, sizeof(buf), 5000), NULL), "random bytes -> INVALID_ARGUMENT");
	check(ping_ok(argv[1]), "still answers Ping");

	req.call_case = PK__REQUEST__CALL_PING;
	req.ping = &ping;
	req.api_version = 1;
	req.id = 99;
	len = pk__request__pack(&req, buf);
	check(refused(send_raw(c, buf, len - 1, 5000), NULL), "truncated envelope -> INVALID_ARGUMENT");
	req.api_version = 7;
	len = pk__request__pack(&req, buf);
	check(refused(send_raw(c, buf, len, 5000), "api_version 7"), "unknown api_version -> INVALID_ARGUMENT");
	check(refused(send_raw(c, "", 0, 5000), NULL), "empty message -> INVALID_ARGUMENT");
	check(ping_ok(argv[1]), "still answers Ping");

	mem = calloc(1, huge);
	check(refused(send_raw(c, mem, big, 10000), "exceeds"),
	      "4 MiB + 16 KiB message -> INVALID_ARGUMENT (limit 4 MiB)");
	/* nng's own limit is max_message + 64 KiB: nothing larger is buffered. */
	check(send_raw(c, mem, over, 3000) == NULL, "6 MiB message dropped by nng's limit");
	check(ping_ok(argv[1]), "still answers Ping");
	check(send_raw(c, mem, huge, 3000) == NULL, "40 MiB message dropped by nng's limit");
	free(mem);
	check(ping_ok(argv[1]), "still answers Ping");
	pk_rpc_client_free(c);
	return failures ? 1 : 0;
}
