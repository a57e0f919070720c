/*
 * hsmd's RPC layer: decodes each call's protobuf arguments into plain C,
 * calls the HSM logic, encodes the result. Ping and GetCapabilities are
 * answered by the dispatcher.
 */
#include "hsm/hsm.h"

const struct pk_verb hsm_verbs[] = {
	{ PK__REQUEST__CALL__NOT_SET, NULL },
};
const size_t hsm_nverbs = 0;
