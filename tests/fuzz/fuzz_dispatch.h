/*
 * The request path of a daemon under a fuzz target: one input through
 * pk_dispatch_handle as the local administrator (an ipc peer of our uid:
 * role engine, every verb reachable). Whatever the input, the answer must
 * be a response that decodes; anything else aborts, which libFuzzer
 * reports with the input.
 */
#ifndef TESTS_FUZZ_DISPATCH_H
#define TESTS_FUZZ_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/codec.h"

static inline void fuzz_dispatch_one(const struct pk_dispatcher *d, const uint8_t *data,
				     size_t size)
{
	static const struct pk_rpc_peer local_peer = { PK_RPC_PEER_IPC, 0, NULL };
	void *out = NULL;
	size_t out_len = 0;
	Pk__Response *resp;

	pk_dispatch_handle(d, &local_peer, data, size, &out, &out_len);
	resp = pk__response__unpack(NULL, out_len, out);
	if (!resp) {
		abort();
	}
	pk__response__free_unpacked(resp, NULL);
	free(out);
}

#endif
