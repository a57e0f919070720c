#include "proto/codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "proto/wire.h"

/* pk_errc values are the wire values: both casts below rely on it. */
PK_WIRE_SAME(PK_OK, PK__ERROR_CODE__OK);
PK_WIRE_SAME(PK_E_INVALID_ARGUMENT, PK__ERROR_CODE__INVALID_ARGUMENT);
PK_WIRE_SAME(PK_E_NOT_FOUND, PK__ERROR_CODE__NOT_FOUND);
PK_WIRE_SAME(PK_E_ALREADY_EXISTS, PK__ERROR_CODE__ALREADY_EXISTS);
PK_WIRE_SAME(PK_E_BUSY, PK__ERROR_CODE__BUSY);
PK_WIRE_SAME(PK_E_NOT_SPM, PK__ERROR_CODE__NOT_SPM);
PK_WIRE_SAME(PK_E_IN_USE, PK__ERROR_CODE__IN_USE);
PK_WIRE_SAME(PK_E_NO_SPACE, PK__ERROR_CODE__NO_SPACE);
PK_WIRE_SAME(PK_E_CONFLICT, PK__ERROR_CODE__CONFLICT);
PK_WIRE_SAME(PK_E_UNSUPPORTED, PK__ERROR_CODE__UNSUPPORTED);
PK_WIRE_SAME(PK_E_INTERNAL, PK__ERROR_CODE__INTERNAL);
PK_WIRE_SAME(PK_E_UNAVAILABLE, PK__ERROR_CODE__UNAVAILABLE);
PK_WIRE_SAME(PK_E_TIMEOUT, PK__ERROR_CODE__TIMEOUT);
PK_WIRE_SAME(PK_E_ILLEGAL, PK__ERROR_CODE__ILLEGAL);
PK_WIRE_SAME(PK_E_ABORTED, PK__ERROR_CODE__ABORTED);
PK_WIRE_SAME(PK_E_IO, PK__ERROR_CODE__IO);
PK_WIRE_SAME(PK_E_PERMISSION_DENIED, PK__ERROR_CODE__PERMISSION_DENIED);

Pk__ErrorCode pk_codec_error_code(enum pk_errc code)
{
	if (code < PK_OK || code > PK_E_PERMISSION_DENIED) {
		return PK__ERROR_CODE__INTERNAL;
	}
	return (Pk__ErrorCode)code;
}

enum pk_errc pk_codec_errc(Pk__ErrorCode code)
{
	if ((int)code < (int)PK_OK || (int)code > (int)PK_E_PERMISSION_DENIED) {
		return PK_E_INTERNAL;
	}
	return (enum pk_errc)code;
}

const char *pk_codec_call_name(Pk__Request__CallCase call)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(&pk__request__descriptor, (unsigned)call);

	if (!f || call == PK__REQUEST__CALL__NOT_SET || f->id < 16) {
		return "unknown";
	}
	return f->name;
}

int pk_codec_request_decode(const void *buf, size_t len, size_t max_msg,
			    Pk__Request **ret_req, struct pk_error *err)
{
	Pk__Request *req;

	if (len > max_msg) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EMSGSIZE,
				    "request of %zu bytes exceeds the limit of %zu bytes", len,
				    max_msg);
	}
	req = pk__request__unpack(NULL, len, buf);
	if (!req) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EBADMSG,
				    "request of %zu bytes is not a valid poolkeeper envelope "
				    "(protobuf pk.Request)", len);
	}
	if (req->api_version != PK_API_VERSION) {
		uint32_t v = req->api_version;
		pk__request__free_unpacked(req, NULL);
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EPROTO,
				    "api_version %u is not supported; this daemon speaks "
				    "api_version %d (poolkeeper %s)", v, PK_API_VERSION, PK_VERSION);
	}
	if (req->call_case == PK__REQUEST__CALL__NOT_SET) {
		pk__request__free_unpacked(req, NULL);
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EBADMSG,
				    "request names no call (unknown or missing call field)");
	}
	*ret_req = req;
	return 0;
}

int pk_codec_response_encode(const Pk__Response *resp, void **ret_buf, size_t *ret_len)
{
	size_t len = pk__response__get_packed_size(resp);
	uint8_t *buf = pk_xmalloc(len ? len : 1);

	pk__response__pack(resp, buf);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

static int dispatch_ping(const struct pk_daemon_info *info, Pk__Response *resp,
			 struct pk_arena *arena)
{
	Pk__PingResponse *p = pk_arena_new(arena, Pk__PingResponse);
	char host[256] = "";

	pk__ping_response__init(p);
	gethostname(host, sizeof(host) - 1);
	p->host_id = info->host_id;
	p->role = pk_arena_strdup(arena, info->role);
	p->version = pk_arena_strdup(arena, PK_VERSION);
	p->hostname = pk_arena_strdup(arena, host);
	p->uptime_ms = pk_clock_monotonic_ms() - info->start_ms;
	p->api_version = PK_API_VERSION;
	resp->ping = p;
	return 0;
}

static int dispatch_capabilities(const struct pk_dispatcher *d, Pk__Response *resp,
				 struct pk_arena *arena)
{
	Pk__GetCapabilitiesResponse *c = pk_arena_new(arena, Pk__GetCapabilitiesResponse);
	size_t n = 0;

	pk__get_capabilities_response__init(c);
	c->host_id = d->info->host_id;
	c->role = pk_arena_strdup(arena, d->info->role);
	c->version = pk_arena_strdup(arena, PK_VERSION);
	c->api_version = PK_API_VERSION;
	c->kvm = d->info->kvm;
	c->activation = pk_arena_strdup(arena, d->info->activation ? d->info->activation : "");
	c->verbs = pk_arena_array(arena, char *, d->nverbs + 2);
	c->verbs[n++] = pk_arena_strdup(arena, "ping");
	c->verbs[n++] = pk_arena_strdup(arena, "get_capabilities");
	for (size_t i = 0; i < d->nverbs; i++) {
		if (d->verbs[i].call == PK__REQUEST__CALL_PING ||
		    d->verbs[i].call == PK__REQUEST__CALL_GET_CAPABILITIES) {
			continue;
		}
		c->verbs[n++] = pk_arena_strdup(arena, pk_codec_call_name(d->verbs[i].call));
	}
	c->n_verbs = n;
	resp->get_capabilities = c;
	return 0;
}

static const struct pk_verb *dispatch_find(const struct pk_dispatcher *d,
					   Pk__Request__CallCase call)
{
	for (size_t i = 0; i < d->nverbs; i++) {
		if (d->verbs[i].call == call) {
			return &d->verbs[i];
		}
	}
	return NULL;
}

void pk_dispatch_caller(const struct pk_dispatcher *d, const struct pk_rpc_peer *peer,
			struct pk_caller *ret)
{
	ret->role = PK_ROLE_ENGINE;
	ret->host_id = 0;
	switch (peer->kind) {
	case PK_RPC_PEER_IPC:
		snprintf(ret->name, sizeof(ret->name), "ipc uid=%llu",
			 (unsigned long long)peer->uid);
		return;
	case PK_RPC_PEER_TCP:
		snprintf(ret->name, sizeof(ret->name), "tcp (insecure_tcp)");
		return;
	case PK_RPC_PEER_TLS:
		break;
	}
	if (!pk_auth_is_set(&d->auth)) {
		snprintf(ret->name, sizeof(ret->name), "%s", peer->cn ? peer->cn : "tls");
		return;
	}
	if (!peer->cn) {
		ret->role = PK_ROLE_NONE;
		snprintf(ret->name, sizeof(ret->name), "(certificate name not reported by libnng)");
		return;
	}
	pk_auth_resolve(&d->auth, peer->cn, ret);
}

bool pk_verb_allows(const struct pk_verb *v, const struct pk_caller *caller)
{
	return pk_auth_allows(v->roles, caller);
}

static int dispatch_denied(const struct pk_dispatcher *d, const struct pk_caller *caller,
			   const Pk__Request *req, struct pk_error *err)
{
	const char *verb = pk_codec_call_name(req->call_case);

	pk_log_warn("permission denied verb='%s' identity='%s' role=%s id=%llu", verb,
		    caller->name, pk_role_name(caller->role), (unsigned long long)req->id);
	if (caller->role == PK_ROLE_NONE) {
		return pk_error_set(err, PK_E_PERMISSION_DENIED, EACCES,
				    "%sd: certificate '%s' maps to no role (settings auth_engine, "
				    "auth_host, auth_viewer)",
				    d->info->role, caller->name);
	}
	return pk_error_set(err, PK_E_PERMISSION_DENIED, EACCES,
			    "%sd: '%s' (role %s) may not call '%s'", d->info->role, caller->name,
			    pk_role_name(caller->role), verb);
}

static int dispatch_call(const struct pk_dispatcher *d, const struct pk_caller *caller,
			 const Pk__Request *req, Pk__Response *resp, struct pk_arena *arena,
			 struct pk_error *err)
{
	const struct pk_verb *v = dispatch_find(d, req->call_case);

	resp->result_case = (Pk__Response__ResultCase)req->call_case;
	if (caller->role == PK_ROLE_NONE || (v && !pk_verb_allows(v, caller))) {
		return dispatch_denied(d, caller, req, err);
	}
	if (v) {
		return v->fn_caller ? v->fn_caller(d->ctx, caller, req, resp, arena, err)
				    : v->fn(d->ctx, req, resp, arena, err);
	}
	if (req->call_case == PK__REQUEST__CALL_PING) {
		return dispatch_ping(d->info, resp, arena);
	}
	if (req->call_case == PK__REQUEST__CALL_GET_CAPABILITIES) {
		return dispatch_capabilities(d, resp, arena);
	}
	return pk_error_set(err, PK_E_UNSUPPORTED, EOPNOTSUPP,
			    "%sd does not implement '%s' (see get_capabilities for the verbs "
			    "it serves)", d->info->role, pk_codec_call_name(req->call_case));
}

int pk_dispatch_handle(void *dispatcher, const struct pk_rpc_peer *peer, const void *buf,
		       size_t len, void **ret_reply, size_t *ret_reply_len)
{
	const struct pk_dispatcher *d = dispatcher;
	struct pk_caller caller;
	struct pk_arena arena = PK_ARENA_INIT;
	struct pk_error err = { PK_OK, "" };
	Pk__Request *req = NULL;
	Pk__Response resp = PK__RESPONSE__INIT;
	Pk__Error wire_err = PK__ERROR__INIT;
	uint64_t t0 = pk_clock_monotonic_ms();
	int r;

	r = pk_codec_request_decode(buf, len, d->max_msg, &req, &err);
	if (r < 0) {
		pk_log_warn("refused request bytes=%zu code=%s: %s", len, pk_errc_name(err.code),
			    err.message);
	} else {
		resp.id = req->id;
		pk_dispatch_caller(d, peer, &caller);
		r = dispatch_call(d, &caller, req, &resp, &arena, &err);
	}
	if (r < 0) {
		if (!pk_error_is_set(&err)) {
			pk_error_set(&err, PK_E_INTERNAL, -r, "internal error (errno %d)", -r);
		}
		resp.result_case = PK__RESPONSE__RESULT__NOT_SET;
		wire_err.code = pk_codec_error_code(err.code);
		wire_err.message = err.message;
		if (err.code == PK_E_NOT_SPM) {
			/* NOT_SPM messages start with the holder: "host N holds ..." */
			int holder = 0;
			if (sscanf(err.message, "host %d holds", &holder) == 1) {
				wire_err.spm_host_id = holder;
			}
		}
		resp.error = &wire_err;
		if (req) {
			pk_log_info("call failed verb='%s' id=%llu code=%s ms=%llu: %s",
				    pk_codec_call_name(req->call_case),
				    (unsigned long long)req->id, pk_errc_name(err.code),
				    (unsigned long long)(pk_clock_monotonic_ms() - t0), err.message);
		}
	} else {
		pk_log_debug("call done verb='%s' id=%llu ms=%llu",
			     pk_codec_call_name(req->call_case), (unsigned long long)req->id,
			     (unsigned long long)(pk_clock_monotonic_ms() - t0));
	}
	pk_codec_response_encode(&resp, ret_reply, ret_reply_len);
	pk_arena_release(&arena);
	if (req) {
		pk__request__free_unpacked(req, NULL);
	}
	return 0;
}
