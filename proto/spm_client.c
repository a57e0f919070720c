#include "proto/spm_client_wire.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/uuid.h"
#include "common/xalloc.h"
#include "proto/wire.h"

/*
 * Which spmd to ask first: the one that answered last (preferred), unless
 * it stopped answering; spmds that timed out or refused the connection
 * (down) are asked only after every other one, so a dead SPM costs one
 * timeout, not one per call. Any answer clears the mark.
 */
struct pk_spm_client {
	struct pk_rpc_client **clients;
	_Atomic bool *down;
	size_t n;
	_Atomic size_t preferred;
};

int pk_spm_client_new(const char *urls, struct pk_spm_client **ret, struct pk_error *err)
{
	struct pk_spm_client *sc;
	char *copy, *save = NULL;
	int r = 0;

	if (!urls || !*urls) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "no spmd address configured (setting 'spm', or --spm / PK_SPM)");
	}
	sc = pk_xcalloc(1, sizeof(*sc));
	copy = pk_xstrdup(urls);
	for (char *u = strtok_r(copy, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		while (*u == ' ') {
			u++;
		}
		if (!*u) {
			continue;
		}
		sc->clients = pk_xgrow(sc->clients, NULL, sc->n + 1, sizeof(*sc->clients));
		sc->down = pk_xgrow(sc->down, NULL, sc->n + 1, sizeof(*sc->down));
		atomic_init(&sc->down[sc->n], false);
		r = pk_rpc_client_new(u, PK_MAX_MESSAGE_DEFAULT * 4, &sc->clients[sc->n], err);
		if (r < 0) {
			break;
		}
		sc->n++;
	}
	free(copy);
	if (r == 0 && sc->n == 0) {
		r = pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "no spmd address in '%s'", urls);
	}
	if (r < 0) {
		pk_spm_client_free(sc);
		return r;
	}
	*ret = sc;
	return 0;
}

void pk_spm_client_free(struct pk_spm_client *sc)
{
	if (!sc) {
		return;
	}
	for (size_t i = 0; i < sc->n; i++) {
		pk_rpc_client_free(sc->clients[i]);
	}
	free(sc->clients);
	free(sc->down);
	free(sc);
}

int pk_spm_client_set_tls(struct pk_spm_client *sc, const struct pk_rpc_tls *tls,
			  struct pk_error *err)
{
	for (size_t i = 0; i < sc->n; i++) {
		int r = pk_rpc_client_set_tls(sc->clients[i], tls, err);
		if (r < 0) {
			return r;
		}
	}
	return 0;
}

size_t pk_spm_client_count(const struct pk_spm_client *sc)
{
	return sc->n;
}

struct pk_rpc_client *pk_spm_client_at(struct pk_spm_client *sc, size_t i)
{
	return i < sc->n ? sc->clients[i] : NULL;
}

bool pk_spm_client_is_down(const struct pk_spm_client *sc, size_t i)
{
	return i < sc->n && atomic_load(&sc->down[i]);
}

/* The order of this call's attempts: preferred first, then the others, down ones last. */
static void call_order(struct pk_spm_client *sc, size_t *order)
{
	size_t first = atomic_load(&sc->preferred) % sc->n;
	size_t k = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t j = 0; j < sc->n; j++) {
			size_t i = (first + j) % sc->n;
			if (atomic_load(&sc->down[i]) == (pass == 1)) {
				order[k++] = i;
			}
		}
	}
}

/*
 * The request id field of a mutating verb (NULL for the others): filled
 * once per call, so every attempt of it carries the same one.
 */
static char **request_id_field(Pk__Request *req)
{
	switch (req->call_case) {
	case PK__REQUEST__CALL_DELETE_VOLUME:
		return &req->delete_volume->request_id;
	case PK__REQUEST__CALL_EXTEND_VOLUME:
		return &req->extend_volume->request_id;
	case PK__REQUEST__CALL_REDUCE_VOLUME:
		return &req->reduce_volume->request_id;
	case PK__REQUEST__CALL_UPDATE_VOLUME_META:
		return &req->update_volume_meta->request_id;
	default:
		return NULL;
	}
}

/*
 * An spmd marked down gets a Ping first, answered by its dispatcher
 * without touching storage: a dead one costs PROBE_MS instead of the
 * call's whole timeout, a live one (busy, or back) gets the call.
 */
#define PROBE_MS 500

static int probe(struct pk_rpc_client *c, int timeout_ms, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PingRequest ping = PK__PING_REQUEST__INIT;
	Pk__Response *resp = NULL;
	int r;

	req.call_case = PK__REQUEST__CALL_PING;
	req.ping = &ping;
	r = pk_codec_call(c, &req, timeout_ms > 0 && timeout_ms < PROBE_MS ? timeout_ms : PROBE_MS,
			  &resp, NULL, err);
	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
	return r;
}

static bool moves_on(enum pk_errc code)
{
	/* Not the SPM, not reachable, or no answer in time: ask the next one. */
	return code == PK_E_NOT_SPM || code == PK_E_UNAVAILABLE || code == PK_E_TIMEOUT;
}

int pk_spm_client_call(struct pk_spm_client *sc, Pk__Request *req, int timeout_ms,
		       Pk__Response **ret_resp, struct pk_error *err)
{
	struct pk_error last = { PK_OK, "" };
	char tried[PK_ERROR_MSG_MAX / 2] = "";
	char request_id[PK_UUID_BUFLEN];
	char **rid = request_id_field(req);
	size_t *order = pk_xcalloc(sc->n, sizeof(*order));
	char *rid_given = rid ? *rid : NULL;
	bool saw_not_spm = false;
	int r = -EIO;

	if (rid && (!rid_given || !*rid_given)) {
		pk_uuid_generate(request_id);
		*rid = request_id;
	}
	call_order(sc, order);
	for (size_t k = 0; k < sc->n; k++) {
		size_t i = order[k];
		struct pk_error e;
		size_t used = strlen(tried);

		req->id = 0; /* a fresh envelope id per attempt; the request id stays */
		if (atomic_load(&sc->down[i])) {
			r = probe(sc->clients[i], timeout_ms, &e);
			req->id = 0;
		} else {
			r = 0;
		}
		if (r == 0) {
			r = pk_codec_call(sc->clients[i], req, timeout_ms, ret_resp, NULL, &e);
		}
		atomic_store(&sc->down[i], r < 0 && (e.code == PK_E_UNAVAILABLE ||
						     e.code == PK_E_TIMEOUT));
		if (r == 0 || !moves_on(e.code)) {
			/* The SPM (or an spmd that can answer) answered: that is the answer. */
			atomic_store(&sc->preferred, i);
			if (r < 0 && err) {
				*err = e;
			}
			goto out;
		}
		if (e.code == PK_E_NOT_SPM) {
			saw_not_spm = true;
			last = e;
		} else if (!saw_not_spm) {
			last = e;
		}
		snprintf(tried + used, sizeof(tried) - used, "%s%s", used ? ", " : "",
			 pk_rpc_client_url(sc->clients[i]));
	}
	if (sc->n == 1) {
		/* One address: its own answer says it best. */
		if (err) {
			*err = last;
		}
	} else if (saw_not_spm) {
		r = pk_error_set(err, PK_E_NOT_SPM, EPERM,
				 "no reachable spmd holds the SPM lease (asked %s): %s; start one "
				 "with 'pkctl spm start'", tried, last.message);
	} else {
		r = pk_error_set(err, last.code ? last.code : PK_E_UNAVAILABLE, ECONNREFUSED,
				 "no spmd answered (asked %s): %s", tried, last.message);
	}
out:
	if (rid) {
		*rid = rid_given; /* the caller's request keeps no pointer into this frame */
	}
	free(order);
	return r;
}

/* ---- typed calls ------------------------------------------------------------ */

/* The call, its response dropped: for verbs whose answer the caller does not need. */
static int call_drop(struct pk_spm_client *sc, Pk__Request *req, int timeout_ms,
		     struct pk_error *err)
{
	Pk__Response *resp = NULL;
	int r = pk_spm_client_call(sc, req, timeout_ms, &resp, err);

	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
	return r;
}

/* ExtendVolume or ReduceVolume (synchronous): *ret_lv_size from the answer. */
static int resize_call(struct pk_spm_client *sc, bool reduce, const char *domain,
		       const char *image, const char *volume, uint64_t size,
		       uint64_t *ret_lv_size, int timeout_ms, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__ExtendVolumeRequest ev = PK__EXTEND_VOLUME_REQUEST__INIT;
	Pk__ReduceVolumeRequest rv = PK__REDUCE_VOLUME_REQUEST__INIT;
	Pk__Response *resp = NULL;
	const Pk__VolumeInfo *vol = NULL;
	int r;

	if (reduce) {
		rv.domain_id = (char *)domain;
		rv.image_id = (char *)image;
		rv.volume_id = (char *)volume;
		rv.new_size = size;
		req.call_case = PK__REQUEST__CALL_REDUCE_VOLUME;
		req.reduce_volume = &rv;
	} else {
		ev.domain_id = (char *)domain;
		ev.image_id = (char *)image;
		ev.volume_id = (char *)volume;
		ev.new_size = size;
		req.call_case = PK__REQUEST__CALL_EXTEND_VOLUME;
		req.extend_volume = &ev;
	}
	r = pk_spm_client_call(sc, &req, timeout_ms, &resp, err);
	if (r == 0 && ret_lv_size) {
		if (reduce && resp->reduce_volume) {
			vol = resp->reduce_volume->volume;
		} else if (!reduce && resp->extend_volume) {
			vol = resp->extend_volume->volume;
		}
		*ret_lv_size = vol ? vol->lv_size : size;
	}
	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
	return r;
}

int pk_spm_client_extend_volume(struct pk_spm_client *sc, const char *domain,
				const char *image, const char *volume, uint64_t size,
				uint64_t *ret_lv_size, int timeout_ms, struct pk_error *err)
{
	return resize_call(sc, false, domain, image, volume, size, ret_lv_size, timeout_ms, err);
}

int pk_spm_client_reduce_volume(struct pk_spm_client *sc, const char *domain,
				const char *image, const char *volume, uint64_t size,
				uint64_t *ret_lv_size, int timeout_ms, struct pk_error *err)
{
	return resize_call(sc, true, domain, image, volume, size, ret_lv_size, timeout_ms, err);
}

int pk_spm_client_update_volume_meta(struct pk_spm_client *sc, const char *domain,
				     const char *image, const char *volume,
				     const struct pk_spm_meta_update *u, int timeout_ms,
				     struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__UpdateVolumeMetaRequest um = PK__UPDATE_VOLUME_META_REQUEST__INIT;

	um.domain_id = (char *)domain;
	um.image_id = (char *)image;
	um.volume_id = (char *)volume;
	um.set_parent = u->set_parent;
	um.parent_id = (char *)(u->parent ? u->parent : "");
	/* 0 (unchanged) goes out as the wire's UNSPECIFIED, which means the same. */
	um.role = pk_wire_volume_role(u->role);
	um.legality = pk_wire_legality(u->legality);
	req.call_case = PK__REQUEST__CALL_UPDATE_VOLUME_META;
	req.update_volume_meta = &um;
	return call_drop(sc, &req, timeout_ms, err);
}

int pk_spm_client_update_volumes_meta(struct pk_spm_client *sc, const char *domain,
				      const char *image, const struct pk_spm_meta_change *changes,
				      size_t n, int timeout_ms, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__UpdateVolumeMetaRequest um = PK__UPDATE_VOLUME_META_REQUEST__INIT;
	Pk__VolumeMetaChange *w = pk_xcalloc(n + 1, sizeof(*w));
	Pk__VolumeMetaChange **wp = pk_xcalloc(n + 1, sizeof(*wp));
	int r;

	for (size_t i = 0; i < n; i++) {
		const struct pk_spm_meta_change *c = &changes[i];
		pk__volume_meta_change__init(&w[i]);
		w[i].volume_id = (char *)c->volume;
		w[i].set_parent = c->u.set_parent;
		w[i].parent_id = (char *)(c->u.parent ? c->u.parent : "");
		w[i].role = pk_wire_volume_role(c->u.role);
		w[i].legality = pk_wire_legality(c->u.legality);
		w[i].expected_generation = c->expected_generation;
		wp[i] = &w[i];
	}
	um.domain_id = (char *)domain;
	um.image_id = (char *)image;
	um.changes = wp;
	um.n_changes = n;
	req.call_case = PK__REQUEST__CALL_UPDATE_VOLUME_META;
	req.update_volume_meta = &um;
	r = call_drop(sc, &req, timeout_ms, err);
	free(wp);
	free(w);
	return r;
}

int pk_spm_client_image_prepared(struct pk_spm_client *sc, const char *domain,
				 const char *image, const char *volume, int32_t host_id,
				 bool prepared, uint64_t seq, int timeout_ms, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__ImagePreparedRequest ip = PK__IMAGE_PREPARED_REQUEST__INIT;

	ip.domain_id = (char *)domain;
	ip.image_id = (char *)image;
	ip.host_id = host_id;
	ip.prepared = prepared;
	ip.seq = seq;
	if (volume) {
		ip.volume_id = (char *)volume;
	}
	req.call_case = PK__REQUEST__CALL_IMAGE_PREPARED;
	req.image_prepared = &ip;
	return call_drop(sc, &req, timeout_ms, err);
}
