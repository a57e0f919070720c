/*
 * Repeats of spmd's mutating verbs (a client that timed out and asked
 * again, maybe another spmd after a failover): answered, not applied
 * twice. Against the LVM and sanlock fakes, the chain B <- S1 <- S2.
 * "Failover" here is a new spmd on the same storage: spm_release, then
 * spm_init and SpmStart again, so nothing of the first one's memory is
 * left, only what it wrote.
 */
/* pk-test-fakes: fake_lvm fake_sanlock */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/lvm.h"
#include "spm/domain.h"
#include "spm/spm.h"
#include "spm/volume.h"
#include "tests/fakes/fake_lvm.h"
#include "tests/fakes/fake_sanlock.h"

#define DOMAIN "11111111-2222-4333-8444-555555555555"
#define IMAGE "aaaaaaaa-2222-4333-8444-555555555555"
#define BASE "bbbbbbbb-2222-4333-8444-555555555555"
#define S1 "cccccccc-2222-4333-8444-555555555555"
#define S2 "dddddddd-2222-4333-8444-555555555555"
#define REQ1 "0c5f6f52-3c1e-4d36-8a55-7f8a3a6a1b22"
#define REQ2 "1d6a7a63-4d2f-4e47-9b66-8a9b4b7b2c33"

struct fixture {
	char dir[64];
	char state_opt[128], run_opt[128];
	struct pk_config cfg;
	struct spm spm;
};

static void spm_up(struct fixture *f, bool role)
{
	struct pk_error err;
	struct spm_role_status st;
	char *argv[] = { "spmd", "-o", "host_id=1", "-o", "lvm_devices=/dev/fakepv1", "-o",
			 "activation=dm", "-o", f->state_opt, "-o", f->run_opt, "-o",
			 "log_level=error", NULL };

	memset(&f->cfg, 0, sizeof(f->cfg));
	memset(&f->spm, 0, sizeof(f->spm));
	assert_int_equal(pk_daemon_setup("spm", 13, argv, &f->cfg, &err), 0);
	assert_int_equal(spm_init(&f->spm, &f->cfg, &err), 0);
	if (role && spm_role_start(&f->spm, DOMAIN, &st, &err) < 0) {
		fail_msg("SpmStart: %s", err.message);
	}
}

static void spm_down(struct fixture *f)
{
	spm_release(&f->spm);
	pk_config_release(&f->cfg);
}

/* The SPM goes away (with all it remembers) and a new one takes over the storage. */
static void failover(struct fixture *f)
{
	spm_down(f);
	spm_up(f, true);
}

static void volume_add(struct fixture *f, const char *id, const char *parent,
		       enum pk_volume_format format, enum pk_volume_role role)
{
	struct pk_volume_meta meta = { 0 };
	struct pk_meta_tags tags;
	struct pk_error err;

	snprintf(meta.image, sizeof(meta.image), "%s", IMAGE);
	snprintf(meta.parent, sizeof(meta.parent), "%s", parent ? parent : PK_META_NO_PARENT);
	meta.format = format;
	meta.role = role;
	meta.legality = PK_VOLUME_LEGAL;
	meta.capacity = 64 << 20;
	meta.generation = 1;
	assert_int_equal(pk_meta_volume_encode(&meta, &tags, &err), 0);
	assert_int_equal(pk_lvm_lv_create(f->spm.lvm, DOMAIN, id, 64 << 20,
					  pk_meta_tags_strv(&tags), &err), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pk_error err;
	const char *pvs[] = { "/dev/fakepv1" };
	struct spm_domain_info info;

	fake_lvm_reset();
	fake_sanlock_reset();
	fake_lvm_set_pv_size("/dev/fakepv1", 4ull << 30);
	snprintf(f->dir, sizeof(f->dir), "/tmp/pk-test-spmidem-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->state_opt, sizeof(f->state_opt), "state_dir=%s/state", f->dir);
	snprintf(f->run_opt, sizeof(f->run_opt), "run_dir=%s/run", f->dir);
	spm_up(f, false);
	if (spm_domain_create(&f->spm, DOMAIN, pvs, 1, "test", &info, &err) < 0) {
		fail_msg("domain create: %s", err.message);
	}
	failover(f); /* now with the domain: SpmStart */
	volume_add(f, BASE, NULL, PK_VOLUME_RAW, PK_VOLUME_INTERNAL);
	volume_add(f, S1, BASE, PK_VOLUME_COW, PK_VOLUME_INTERNAL);
	volume_add(f, S2, S1, PK_VOLUME_COW, PK_VOLUME_LEAF);
	spm_volume_cache_invalidate(&f->spm);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	spm_down(f);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0) {
		return -1;
	}
	free(f);
	return 0;
}

static struct pk_volume_meta meta_of(struct fixture *f, const char *id)
{
	struct spm_volume v;
	struct pk_error err;

	if (spm_volume_info(&f->spm, DOMAIN, IMAGE, id, &v, &err) < 0) {
		fail_msg("%s: %s", id, err.message);
	}
	return v.meta;
}

/*
 * UpdateVolumeMeta with an expected generation, asked twice with one
 * request id: the second is answered as done (it would be CONFLICT: the
 * first moved the generation on), by this SPM and by the next one, which
 * finds the request id on the volume. Another request is still checked.
 */
static void test_spm_idempotent__update_repeat_is_answered_by_this_and_the_next_spm(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_update u = { .legality = PK_VOLUME_ILLEGAL, .expected_generation = 1,
				       .request = REQ1 };
	struct spm_volume v;
	struct pk_error err;
	int writes;

	assert_int_equal(spm_volume_update(&f->spm, DOMAIN, IMAGE, S1, &u, &v, &err), 0);
	assert_int_equal(v.meta.generation, 2);
	assert_string_equal(meta_of(f, S1).request, REQ1);
	writes = fake_lvm_calls(FAKE_LVM_LV_TAGS);

	assert_int_equal(spm_volume_update(&f->spm, DOMAIN, IMAGE, S1, &u, &v, &err), 0);
	assert_int_equal(v.meta.generation, 2);
	assert_int_equal(v.meta.legality, PK_VOLUME_ILLEGAL);
	failover(f);
	assert_int_equal(spm_volume_update(&f->spm, DOMAIN, IMAGE, S1, &u, &v, &err), 0);
	assert_int_equal(v.meta.generation, 2);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), writes);

	u.request = REQ2;
	assert_true(spm_volume_update(&f->spm, DOMAIN, IMAGE, S1, &u, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_CONFLICT);
	u.request = NULL;
	assert_true(spm_volume_update(&f->spm, DOMAIN, IMAGE, S1, &u, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_CONFLICT);
	u.request = "not-a-uuid";
	assert_true(spm_volume_update(&f->spm, DOMAIN, IMAGE, S1, &u, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
}

/* The cleanup of a merge of S1 into B, each change with its expected generation. */
static void cleanup_changes(struct spm_volume_change c[2], const char *request)
{
	memset(c, 0, 2 * sizeof(*c));
	c[0].volume = S2;
	c[0].u.set_parent = true;
	c[0].u.parent = BASE;
	c[0].u.expected_generation = 1;
	c[0].u.request = request;
	c[1].volume = S1;
	c[1].u.role = PK_VOLUME_INTERNAL;
	c[1].u.legality = PK_VOLUME_ILLEGAL;
	c[1].u.expected_generation = 1;
	c[1].u.request = request;
}

/*
 * The changes form, cut after its first LVM commit (the SPM died), asked
 * again at the next SPM with the same request id: the volume it wrote is
 * recognised (no CONFLICT for its old expected generation), the other one
 * is written. A third ask writes nothing.
 */
static void test_spm_idempotent__changes_cut_by_a_failover_are_finished_by_the_repeat(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_change c[2];
	struct spm_volume out[2];
	struct pk_error err;
	int writes;

	cleanup_changes(c, REQ1);
	assert_int_equal(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 1, NULL, &err), 0);
	failover(f);
	assert_int_equal(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, out, &err), 0);
	assert_string_equal(out[0].meta.parent, BASE);
	assert_int_equal(out[0].meta.generation, 2);
	assert_int_equal(out[1].meta.legality, PK_VOLUME_ILLEGAL);
	assert_int_equal(out[1].meta.generation, 2);
	writes = fake_lvm_calls(FAKE_LVM_LV_TAGS);
	assert_int_equal(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, out, &err), 0);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), writes);
	assert_int_equal(out[1].meta.generation, 2);

	/* Without the request id the repeat is what it was: a conflict. */
	cleanup_changes(c, NULL);
	assert_true(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, out, &err) < 0);
	assert_int_equal(err.code, PK_E_CONFLICT);
}

/*
 * DeleteVolume (forced: S2 is the leaf) asked twice with one request id: the second answers done
 * (it would be NOT_FOUND). Another request for the gone volume is
 * NOT_FOUND; so is the repeat at the next SPM once the LV is gone (only
 * this spmd remembers deletions, spm/requests.h).
 */
static void test_spm_idempotent__delete_repeat_is_answered(void **state)
{
	struct fixture *f = *state;
	struct pk_error err;
	int removes;

	assert_int_equal(spm_volume_delete(&f->spm, DOMAIN, IMAGE, S2, true, false, REQ1, &err),
			 0);
	removes = fake_lvm_calls(FAKE_LVM_LV_REMOVE);
	assert_int_equal(spm_volume_delete(&f->spm, DOMAIN, IMAGE, S2, true, false, REQ1, &err),
			 0);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_REMOVE), removes);
	assert_true(spm_volume_delete(&f->spm, DOMAIN, IMAGE, S2, false, false, REQ2, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_true(spm_volume_delete(&f->spm, DOMAIN, IMAGE, S2, false, false, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	failover(f);
	assert_true(spm_volume_delete(&f->spm, DOMAIN, IMAGE, S2, false, false, REQ1, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
}

/* ExtendVolume is idempotent by nature: a size reached is answered, nothing is grown again. */
static void test_spm_idempotent__extend_repeat_grows_nothing(void **state)
{
	struct fixture *f = *state;
	struct spm_volume v;
	struct pk_error err;
	int extends;

	assert_int_equal(spm_volume_extend(&f->spm, DOMAIN, IMAGE, S2, 128 << 20, &v, &err), 0);
	assert_int_equal(v.lv_size, 128 << 20);
	extends = fake_lvm_calls(FAKE_LVM_LV_EXTEND);
	assert_int_equal(spm_volume_extend(&f->spm, DOMAIN, IMAGE, S2, 128 << 20, &v, &err), 0);
	assert_int_equal(v.lv_size, 128 << 20);
	failover(f);
	assert_int_equal(spm_volume_extend(&f->spm, DOMAIN, IMAGE, S2, 128 << 20, &v, &err), 0);
	assert_int_equal(v.lv_size, 128 << 20);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_EXTEND), extends);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_spm_idempotent__update_repeat_is_answered_by_this_and_the_next_spm, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_spm_idempotent__changes_cut_by_a_failover_are_finished_by_the_repeat,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_idempotent__delete_repeat_is_answered, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_idempotent__extend_repeat_grows_nothing,
						setup, teardown),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
