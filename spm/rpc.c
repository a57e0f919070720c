/*
 * spmd's RPC layer: decodes each call's protobuf arguments into plain C,
 * calls the SPM logic, encodes the result. Ping and GetCapabilities are
 * answered by the dispatcher.
 */
#include "spm/spm.h"

const struct pk_verb spm_verbs[] = {
	{ PK__REQUEST__CALL__NOT_SET, NULL },
};
const size_t spm_nverbs = 0;
