/*
 * hsmd's wire edge: the verb table its dispatcher serves. hsm/rpc.c holds
 * the image and VM verbs and the table; hsm/rpc_merge.c the merge job
 * verbs (and the Event they publish). Each verb decodes its protobuf
 * arguments into plain C, calls the HSM logic, encodes the result.
 *
 * Included by hsm/main.c and the hsm/rpc*.c files only. The wire's types
 * are named here by their struct tags, so a file including this header
 * does not see the generated schema; only the rpc*.c files include it.
 */
#ifndef HSM_RPC_H
#define HSM_RPC_H

#include <stddef.h>

#include "common/error.h"

struct pk_arena;
struct pk_verb; /* proto/codec.h */
struct Pk__Request;
struct Pk__Response;

/*
 * The verb table of hsmd, for struct pk_dispatcher (proto/server.h); each
 * row names the roles allowed (docs/SECURITY.md, Authorization).
 */
extern const struct pk_verb *const hsm_verbs;
extern const size_t hsm_nverbs;

/* ---- merge job verbs (hsm/rpc_merge.c), entries of hsm_verbs -------------- */

int hsm_rpc_merge(void *ctx, const struct Pk__Request *req, struct Pk__Response *resp,
		  struct pk_arena *arena, struct pk_error *err);
int hsm_rpc_job_get(void *ctx, const struct Pk__Request *req, struct Pk__Response *resp,
		    struct pk_arena *arena, struct pk_error *err);
int hsm_rpc_job_list(void *ctx, const struct Pk__Request *req, struct Pk__Response *resp,
		     struct pk_arena *arena, struct pk_error *err);
int hsm_rpc_job_abort(void *ctx, const struct Pk__Request *req, struct Pk__Response *resp,
		      struct pk_arena *arena, struct pk_error *err);
int hsm_rpc_job_set_bandwidth(void *ctx, const struct Pk__Request *req,
			      struct Pk__Response *resp, struct pk_arena *arena,
			      struct pk_error *err);
int hsm_rpc_job_events(void *ctx, const struct Pk__Request *req, struct Pk__Response *resp,
		       struct pk_arena *arena, struct pk_error *err);

#endif
