/*
 * libFuzzer target: hsmd's real verb table (hsm/rpc.c, hsm/rpc_merge.c)
 * behind the real request path (proto/codec.c: decode, validate,
 * dispatch, encode), on the LVM and libvirt fakes and the lab activation
 * backend writing into a plain file (tests/lib/hsm_fixture.h), in
 * process, without sockets. hsmd starts with a domain holding one image
 * (a RAW base under a COW leaf); the fixture's ids are random, so the ids
 * of tests/fuzz/seeds/ (the SPM target's) are replaced in each input by
 * them (same length: the encoding stays valid), and requests naming them
 * reach the image, VM and merge logic. The state inputs build up
 * (prepared images, VMs, merge jobs) stays between inputs, as in a
 * running hsmd.
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
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "proto/codec.h"
#include "hsm/hsm.h"
#include "hsm/rpc.h"
#include "tests/fuzz/fuzz_dispatch.h"
#include "tests/lib/hsm_fixture.h"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fx *fx;
static struct pk_dispatcher dispatcher;

/* The seeds' ids and the fixture's: domain, image, base, leaf. */
static const char *const seed_ids[4] = {
	"11111111-2222-4333-8444-555555555555", "aaaaaaaa-2222-4333-8444-555555555555",
	"bbbbbbbb-2222-4333-8444-555555555555", "cccccccc-2222-4333-8444-555555555555",
};
static char fx_ids[4][PK_UUID_BUFLEN];

static void ids_map(uint8_t *buf, size_t size)
{
	const size_t n = PK_UUID_BUFLEN - 1;

	for (size_t i = 0; i + n <= size; i++) {
		for (size_t k = 0; k < 4; k++) {
			if (memcmp(buf + i, seed_ids[k], n) == 0) {
				memcpy(buf + i, fx_ids[k], n);
				i += n - 1;
				break;
			}
		}
	}
}

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
	(void)argc;
	(void)argv;
	pk_log_setup("fuzz", PK_LOG_ERROR);
	/* The fixture's helpers assert with cmocka; they only fail on a broken setup. */
	fx_setup(&state);
	fx = state;
	atexit(fixture_remove);
	fx_image(fx, fx_ids[1], fx_ids[2], fx_ids[3]);
	memcpy(fx_ids[0], fx->domain, PK_UUID_BUFLEN);
	dispatcher.verbs = hsm_verbs;
	dispatcher.nverbs = hsm_nverbs;
	dispatcher.ctx = &fx->hsm;
	dispatcher.max_msg = PK_MAX_MESSAGE_DEFAULT;
	dispatcher.info = &fx->hsm.info;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *in = malloc(size ? size : 1);
	if (!in) {
		abort();
	}
	memcpy(in, data, size);
	ids_map(in, size);
	fuzz_dispatch_one(&dispatcher, in, size);
	free(in);
	return 0;
}
