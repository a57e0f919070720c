/* The client side of a call: envelope out, envelope in, errors mapped back. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/version.h"
#include "common/xalloc.h"
#include "proto/codec.h"

int pk_codec_call(struct pk_rpc_client *c, Pk__Request *req, int timeout_ms,
		  Pk__Response **ret_resp, int32_t *ret_spm_host_id, struct pk_error *err)
{
	static _Atomic uint64_t next_id = 1;
	void *out = NULL, *in = NULL;
	size_t out_len, in_len = 0;
	Pk__Response *resp;
	int r;

	req->api_version = PK_API_VERSION;
	if (req->id == 0) {
		req->id = ((uint64_t)getpid() << 32) | atomic_fetch_add(&next_id, 1);
	}
	out_len = pk__request__get_packed_size(req);
	out = pk_xmalloc(out_len ? out_len : 1);
	pk__request__pack(req, out);
	r = pk_rpc_client_call(c, out, out_len, timeout_ms, &in, &in_len, err);
	free(out);
	if (r < 0) {
		return r;
	}
	resp = pk__response__unpack(NULL, in_len, in);
	free(in);
	if (!resp) {
		return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
				    "reply from '%s' is not a poolkeeper response",
				    pk_rpc_client_url(c));
	}
	if (resp->error && resp->error->code != PK__ERROR_CODE__OK) {
		enum pk_errc code = pk_codec_errc(resp->error->code);
		if (ret_spm_host_id) {
			*ret_spm_host_id = resp->error->spm_host_id;
		}
		r = pk_error_set(err, code, 0, "%s", resp->error->message ? resp->error->message : "");
		pk__response__free_unpacked(resp, NULL);
		return r;
	}
	if (resp->id != req->id ||
	    (int)resp->result_case != (int)req->call_case) {
		pk__response__free_unpacked(resp, NULL);
		return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
				    "reply from '%s' does not match the request", pk_rpc_client_url(c));
	}
	*ret_resp = resp;
	return 0;
}
