/*
 * pk_spm_client — reaches "the SPM" when only the cluster's spmd
 * addresses are known (a comma-separated list). Used by hsmd (extend and
 * metadata updates during a merge) and pkctl (the engine flows).
 *
 * A call goes to the spmd that answered last; if that one answers NOT_SPM
 * or cannot be reached, the others are tried in list order. Calls that only
 * read (VolumeInfo, ImageChain, DomainInfo, TaskGet...) are answered by any
 * spmd, since every host can read the domain's metadata.
 *
 * Thread-safe.
 */
#ifndef PK_SPM_CLIENT_H
#define PK_SPM_CLIENT_H

#include "common/error.h"
#include "proto/codec.h"

struct pk_spm_client;

/* urls: "ipc:///a,tcp://h:1". *ret owned by the caller. */
int pk_spm_client_new(const char *urls, struct pk_spm_client **ret, struct pk_error *err);
void pk_spm_client_free(struct pk_spm_client *sc);

/*
 * Like pk_codec_call, to the SPM. When no spmd holds the lease the error
 * is NOT_SPM; when none answers, UNAVAILABLE naming every address tried.
 */
int pk_spm_client_call(struct pk_spm_client *sc, Pk__Request *req, int timeout_ms,
		       Pk__Response **ret_resp, struct pk_error *err);

/* The number of addresses and the i-th client (for calls to one spmd). */
size_t pk_spm_client_count(const struct pk_spm_client *sc);
struct pk_rpc_client *pk_spm_client_at(struct pk_spm_client *sc, size_t i);

#endif
