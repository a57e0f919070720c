/*
 * pk_spm_client — reaches "the SPM" when only the cluster's spmd
 * addresses are known (a comma-separated list). Used by hsmd (extend and
 * metadata updates during a merge) and pkctl (the engine flows).
 *
 * Failover (docs/SPM.md "Finding the SPM"): a call goes to the spmd that
 * answered last; if that one answers NOT_SPM, refuses the connection or
 * does not answer in time, the others are tried in list order, and the one
 * that answers is asked first from then on. An spmd that timed out or
 * refused is marked down and asked only after every other one until it
 * answers again, so a dead SPM costs one timeout, not one per call. Calls
 * that only read (VolumeInfo, ImageChain, DomainInfo, TaskGet...) are
 * answered by any spmd, since every host can read the domain's metadata.
 *
 * Retries are safe: a call of a mutating verb (DeleteVolume, ExtendVolume,
 * UpdateVolumeMeta) carries one request id (a UUID, generated here unless
 * the request names one) on every attempt, and the SPM answers a repeat of
 * a request it (or the SPM before it) carried out instead of applying it
 * again (docs/SPM.md "Idempotent mutations").
 *
 * This header is plain C: the typed calls below pack and unpack the wire
 * messages here in proto/, so their callers never see the generated
 * schema. The wire-level call (any Pk__Request) is in
 * proto/spm_client_wire.h, for proto/ and ctl/ only.
 *
 * Errors: a typed call returns 0 or -errno with err set: the SPM's own
 * answer (code and message), NOT_SPM when no spmd holds the lease,
 * UNAVAILABLE naming every address tried when none answers.
 *
 * Thread-safe.
 */
#ifndef PK_SPM_CLIENT_H
#define PK_SPM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/meta.h"

struct pk_rpc_client;
struct pk_rpc_tls;
struct pk_spm_client;

/* urls: "ipc:///a,tcp://h:1". *ret owned by the caller. */
int pk_spm_client_new(const char *urls, struct pk_spm_client **ret, struct pk_error *err);
void pk_spm_client_free(struct pk_spm_client *sc);

/*
 * Gives every tls+tcp:// address of sc the TLS material (the files are
 * read here; see pk_rpc_client_set_tls: a tls+tcp:// address without
 * material is INVALID_ARGUMENT). Callers MUST call it before the first
 * call on sc. Other addresses are left as they are.
 */
int pk_spm_client_set_tls(struct pk_spm_client *sc, const struct pk_rpc_tls *tls,
			  struct pk_error *err);

/* The number of addresses and the i-th client (for calls to one spmd). */
size_t pk_spm_client_count(const struct pk_spm_client *sc);
struct pk_rpc_client *pk_spm_client_at(struct pk_spm_client *sc, size_t i);

/* True while the i-th spmd is marked down (it timed out or refused last). */
bool pk_spm_client_is_down(const struct pk_spm_client *sc, size_t i);

/* ---- typed calls ------------------------------------------------------------ */

/*
 * ExtendVolume (synchronous): grows the volume's LV to hold size bytes.
 * *ret_lv_size (may be NULL) receives the LV's new size as the SPM
 * reports it, or size when the answer carries no volume.
 */
int pk_spm_client_extend_volume(struct pk_spm_client *sc, const char *domain,
				const char *image, const char *volume, uint64_t size,
				uint64_t *ret_lv_size, int timeout_ms, struct pk_error *err);

/* ReduceVolume (synchronous): shrinks an internal COW volume's LV to size
 * bytes (never grows); *ret_lv_size as for extend. */
int pk_spm_client_reduce_volume(struct pk_spm_client *sc, const char *domain,
				const char *image, const char *volume, uint64_t size,
				uint64_t *ret_lv_size, int timeout_ms, struct pk_error *err);

/* One metadata change of UpdateVolumeMeta; a zero field leaves it as it is. */
struct pk_spm_meta_update {
	bool set_parent;
	const char *parent;               /* with set_parent; "" or NULL = none */
	enum pk_volume_role role;         /* 0: unchanged */
	enum pk_volume_legality legality; /* 0: unchanged */
};

int pk_spm_client_update_volume_meta(struct pk_spm_client *sc, const char *domain,
				     const char *image, const char *volume,
				     const struct pk_spm_meta_update *u, int timeout_ms,
				     struct pk_error *err);

/* One volume's change in pk_spm_client_update_volumes_meta. */
struct pk_spm_meta_change {
	const char *volume;
	struct pk_spm_meta_update u;
	uint64_t expected_generation; /* 0: any; else CONFLICT when the volume moved on */
};

/*
 * UpdateVolumeMeta with changes: n (1..130) changes to volumes of image as
 * one step for readers: the SPM checks them all, then writes them in order
 * under the image's lock, which its ImageChain takes too. A call that
 * failed may have written the first changes (a crash between two LVM
 * commits): run it again, changes already made write nothing. An spmd
 * older than the changes field answers INVALID_ARGUMENT (it sees an empty
 * single change).
 */
int pk_spm_client_update_volumes_meta(struct pk_spm_client *sc, const char *domain,
				      const char *image, const struct pk_spm_meta_change *changes,
				      size_t n, int timeout_ms, struct pk_error *err);

/*
 * ImagePrepared: host_id prepared (or tore down) the image; with volume
 * (NULL: the whole image), only that volume of it. seq orders the notices
 * about one image (0: unnumbered); a retry carries the same seq.
 */
int pk_spm_client_image_prepared(struct pk_spm_client *sc, const char *domain,
				 const char *image, const char *volume, int32_t host_id,
				 bool prepared, uint64_t seq, int timeout_ms, struct pk_error *err);

#endif
