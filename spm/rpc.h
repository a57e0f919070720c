/*
 * spmd's wire edge: the verb table its dispatcher serves (spm/rpc.c).
 * Each verb decodes its protobuf arguments into plain C, calls the SPM
 * logic, encodes the result.
 *
 * Included by spm/main.c and the spm/rpc*.c files only; it names no wire
 * type, so a file including it does not see the generated schema.
 */
#ifndef SPM_RPC_H
#define SPM_RPC_H

#include <stddef.h>

struct pk_verb; /* proto/codec.h */

/*
 * The verb table of spmd, for struct pk_dispatcher (proto/server.h); each
 * row names the roles allowed (docs/SECURITY.md, Authorization): a host
 * gets exactly the verbs hsmd calls (proto/spm_client.c).
 */
extern const struct pk_verb *const spm_verbs;
extern const size_t spm_nverbs;

#endif
