/*
 * pk-image-prepared URL DOMAIN IMAGE HOST_ID — sends one ImagePrepared (as
 * hsmd does after preparing an image) with the host id given, which may be
 * forged: it tests that spmd takes a host's id from its certificate.
 * TLS material from PK_TLS_CA, PK_TLS_CERT, PK_TLS_KEY (as pkctl).
 * Prints "OK" or "<CODE>: <message>"; exit 0 when the daemon answered OK,
 * 3 on PERMISSION_DENIED, 1 on any other error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/rpc.h"
#include "proto/codec.h"

int main(int argc, char **argv)
{
	struct pk_rpc_tls tls = { getenv("PK_TLS_CA"), getenv("PK_TLS_CERT"),
				  getenv("PK_TLS_KEY") };
	Pk__Request req = PK__REQUEST__INIT;
	Pk__ImagePreparedRequest p = PK__IMAGE_PREPARED_REQUEST__INIT;
	Pk__Response *resp = NULL;
	struct pk_rpc_client *c = NULL;
	struct pk_error err = { PK_OK, "" };
	int r;

	if (argc != 5) {
		fprintf(stderr, "usage: %s URL DOMAIN IMAGE HOST_ID\n", argv[0]);
		return 2;
	}
	pk_log_setup("pk-image-prepared", PK_LOG_ERROR);
	r = pk_rpc_client_new(argv[1], 1 << 20, &c, &err);
	if (r == 0 && pk_rpc_tls_is_set(&tls)) {
		r = pk_rpc_client_set_tls(c, &tls, &err);
	}
	if (r == 0) {
		p.domain_id = argv[2];
		p.image_id = argv[3];
		p.host_id = atoi(argv[4]);
		p.prepared = true;
		p.seq = 1;
		req.call_case = PK__REQUEST__CALL_IMAGE_PREPARED;
		req.image_prepared = &p;
		r = pk_codec_call(c, &req, 5000, &resp, NULL, &err);
	}
	if (r == 0) {
		printf("OK\n");
		pk__response__free_unpacked(resp, NULL);
	} else {
		printf("%s: %s\n", pk_errc_name(err.code), err.message);
	}
	pk_rpc_client_free(c);
	return r == 0 ? 0 : err.code == PK_E_PERMISSION_DENIED ? 3 : 1;
}
