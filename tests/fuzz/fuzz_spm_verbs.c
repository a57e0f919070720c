/*
 * libFuzzer target: spmd's real verb table (spm/rpc.c) behind the real
 * request path (proto/codec.c: decode, validate, dispatch, encode), on
 * the LVM and sanlock fakes, in process. The SPM starts holding the lease
 * of a domain with one RAW volume (the ids of tests/fuzz/seeds/), so
 * requests naming them reach the volume logic; the state the inputs
 * build up (volumes, tasks, the role) stays between inputs, as in a
 * running spmd. Every input must be answered with a response that decodes
 * (tests/fuzz/fuzz_dispatch.h), and never crash or leak.
 */
/* pk-test-fakes: fake_lvm fake_sanlock */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/log.h"
#include "proto/codec.h"
#include "spm/domain.h"
#include "spm/rpc.h"
#include "spm/spm.h"
#include "spm/volume.h"
#include "tests/fakes/fake_lvm.h"
#include "tests/fakes/fake_sanlock.h"
#include "tests/fuzz/fuzz_dispatch.h"


#define DOMAIN "11111111-2222-4333-8444-555555555555"
#define IMAGE "aaaaaaaa-2222-4333-8444-555555555555"
#define BASE "bbbbbbbb-2222-4333-8444-555555555555"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static struct pk_config cfg;
static struct spm spm;
static struct pk_dispatcher dispatcher;

static void dir_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "fuzz_spm_verbs: cannot remove %s\n", dir);
	}
}

static void die(const char *what, const struct pk_error *err)
{
	fprintf(stderr, "fuzz_spm_verbs: %s: %s\n", what, err->message);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *pvs[] = { "/dev/fakepv1", "/dev/fakepv2" };
	char state_opt[128], run_opt[128];
	char *args[] = { "spmd", "-o", "host_id=1", "-o", "lvm_devices=/dev/fakepv1,/dev/fakepv2",
			 "-o", "activation=dm", "-o", state_opt, "-o", run_opt, "-o",
			 "log_level=error", NULL };
	struct spm_domain_info info;
	struct spm_role_status st;
	struct spm_volume_create c = { DOMAIN, IMAGE, BASE, NULL, PK_VOLUME_RAW, 64ull << 20, 0, "" };
	struct spm_volume v;
	struct pk_error err;

	(void)argc;
	(void)argv;
	fake_lvm_reset();
	fake_sanlock_reset();
	fake_lvm_set_pv_size("/dev/fakepv1", 64ull << 30);
	fake_lvm_set_pv_size("/dev/fakepv2", 64ull << 30);
	snprintf(dir, sizeof(dir), "/tmp/pk-fuzz-spm-XXXXXX");
	if (!mkdtemp(dir)) {
		abort();
	}
	atexit(dir_remove);
	snprintf(state_opt, sizeof(state_opt), "state_dir=%s/state", dir);
	snprintf(run_opt, sizeof(run_opt), "run_dir=%s/run", dir);
	if (pk_daemon_setup("spm", 13, args, &cfg, &err) != 0) {
		die("settings", &err);
	}
	if (spm_init(&spm, &cfg, &err) < 0) {
		die("spm_init", &err);
	}
	if (spm_domain_create(&spm, DOMAIN, pvs, 2, "fuzz", &info, &err) < 0) {
		die("domain", &err);
	}
	if (spm_role_start(&spm, DOMAIN, &st, &err) < 0) {
		die("role", &err);
	}
	if (spm_volume_create(&spm, &c, &v, &err) < 0) {
		die("volume", &err);
	}
	dispatcher.verbs = spm_verbs;
	dispatcher.nverbs = spm_nverbs;
	dispatcher.ctx = &spm;
	dispatcher.max_msg = PK_MAX_MESSAGE_DEFAULT;
	dispatcher.info = &spm.info;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_dispatch_one(&dispatcher, data, size);
	return 0;
}
