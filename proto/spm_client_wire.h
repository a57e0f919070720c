/*
 * The wire-level side of pk_spm_client (proto/spm_client.h): any request,
 * as a protobuf message. For proto/ and ctl/ only (pkctl sends every verb
 * the SPM has); everything else uses the typed calls of spm_client.h.
 */
#ifndef PK_SPM_CLIENT_WIRE_H
#define PK_SPM_CLIENT_WIRE_H

#include "common/error.h"
#include "proto/codec.h"
#include "proto/spm_client.h"

/*
 * Like pk_codec_call, to the SPM. When no spmd holds the lease the error
 * is NOT_SPM; when none answers, UNAVAILABLE naming every address tried.
 */
int pk_spm_client_call(struct pk_spm_client *sc, Pk__Request *req, int timeout_ms,
		       Pk__Response **ret_resp, struct pk_error *err);

#endif
