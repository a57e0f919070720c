/*
 * libFuzzer target: hsmd's real verb table (hsm/rpc.c, hsm/rpc_merge.c)
 * behind the real request path (proto/codec.c: decode, validate,
 * dispatch, encode), on the LVM and libvirt fakes and the lab activation
 * backend writing into a plain file (tests/lib/hsm_fixture.h), in
 * process, without sockets. hsmd starts with a domain holding one image
 * (a RAW base under a COW leaf); the state inputs build up (prepared
 * images, VMs, merge jobs) stays between inputs, as in a running hsmd.
 * Every input must be answered with a response that decodes, and never
 * crash or leak.
 */
/* pk-test-fakes: fake_lvm fake_virt */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/log.h"
#include "proto/codec.h"
#include "hsm/hsm.h"
#include "hsm/rpc.h"
#include "tests/lib/hsm_fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fx *fx;
static struct pk_dispatcher dispatcher;

static void fixture_remove(void)
{
	char cmd[192];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->tmp);
	if (system(cmd) != 0) {
		fprintf(stderr, "fuzz_hsm_verbs: cannot remove %s\n", fx->tmp);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	void *state = NULL;
	char image[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], leaf[PK_UUID_BUFLEN];

	(void)argc;
	(void)argv;
	pk_log_setup("fuzz", PK_LOG_ERROR);
	/* The fixture's helpers assert with cmocka; they only fail on a broken setup. */
	fx_setup(&state);
	fx = state;
	atexit(fixture_remove);
	fx_image(fx, image, base, leaf);
	dispatcher.verbs = hsm_verbs;
	dispatcher.nverbs = hsm_nverbs;
	dispatcher.ctx = &fx->hsm;
	dispatcher.max_msg = PK_MAX_MESSAGE_DEFAULT;
	dispatcher.info = &fx->hsm.info;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	void *out = NULL;
	size_t out_len = 0;
	Pk__Response *resp;

	pk_dispatch_handle(&dispatcher, data, size, &out, &out_len);
	resp = pk__response__unpack(NULL, out_len, out);
	if (!resp) {
		abort();
	}
	pk__response__free_unpacked(resp, NULL);
	free(out);
	return 0;
}
