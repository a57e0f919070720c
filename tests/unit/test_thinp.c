/*
 * hsm/thinp.c, the drive monitor, against the fake libvirtd and LVM and the
 * small SPM of tests/lib/merge_fixture.h (vm1 runs on the chain B <- S1 <-
 * S2, S2 a COW leaf of 64 MiB capacity). The monitor under test is a second
 * one beside the fixture hsmd's own (which is off), with 8 MiB chunks and
 * 4 MiB of free space as its trigger.
 *
 * Covered: a leaf near its end is extended through the SPM and its
 * threshold armed above the new size; a leaf with room only gets its
 * threshold; an ENOSPC pause is extended and resumed; an administrator's
 * pause and an EIO pause are never resumed (the EIO one says why); an SPM
 * that is away makes the monitor wait, say so, and resume once it answers.
 */
/* pk-test-fakes: fake_lvm fake_virt */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hsm/thinp.h"
#include "hsm/virt.h"
#include "tests/fakes/fake_virt.h"
#include "tests/lib/merge_fixture.h"

#define MIB (UINT64_C(1) << 20)

struct tt {
	struct mfx *m;
	struct hsm_thinp *thinp;
};

static int tt_setup(void **state)
{
	struct tt *t = calloc(1, sizeof(*t));
	void *ms = NULL;

	mfx_setup(&ms);
	t->m = ms;
	*state = t;
	return 0;
}

static int tt_teardown(void **state)
{
	struct tt *t = *state;
	void *ms = t->m;

	hsm_thinp_free(t->thinp);
	mfx_teardown(&ms);
	free(t);
	return 0;
}

static void tt_start(struct tt *t)
{
	struct hsm_thinp_policy p;
	struct pk_error err = { PK_OK, "" };

	hsm_thinp_policy_init(&p);
	p.monitor = true;
	p.chunk = 8 * MIB;
	p.free_mb = 4;
	p.check_seconds = 3600; /* the tests kick; the backstop stays out of the way */
	p.retry_max_ms = 100;
	assert_int_equal(hsm_thinp_new(&t->m->fx->hsm, &p, &t->thinp, &err), 0);
	assert_int_equal(hsm_thinp_start(t->thinp, &err), 0);
}

static uint64_t lv_size(struct tt *t, const char *id)
{
	struct pk_volume_meta m;
	uint64_t size = 0;

	assert_int_equal(spm_fixture_meta(t->m->fx, id, &m, &size, NULL), 0);
	return size;
}

static enum hsm_virt_state vm_state(struct tt *t)
{
	enum hsm_virt_state s = HSM_VIRT_STATE_NOSTATE;

	assert_int_equal(hsm_virt_domain_state(t->m->fx->hsm.virt, "vm1", &s, NULL, NULL), 0);
	return s;
}

static struct hsm_thinp_counters counters(struct tt *t)
{
	struct hsm_thinp_counters c;

	hsm_thinp_counters(t->thinp, &c);
	return c;
}

/* Waits (10 s) until the monitor ran more than n checks. */
static void wait_checks(struct tt *t, uint64_t n)
{
	uint64_t end = mfx_now_ms() + 10000;

	while (counters(t).checks <= n && mfx_now_ms() < end) {
		mfx_sleep_ms(5);
	}
	assert_true(counters(t).checks > n);
}

/* Waits (10 s) until the threshold of vm1/vda is want. */
static void wait_threshold(uint64_t want)
{
	uint64_t end = mfx_now_ms() + 10000;

	while (fake_virt_block_threshold("vm1", "vda") != want && mfx_now_ms() < end) {
		mfx_sleep_ms(5);
	}
	assert_int_equal(fake_virt_block_threshold("vm1", "vda"), want);
}

static void wait_running(struct tt *t)
{
	uint64_t end = mfx_now_ms() + 10000;

	while (vm_state(t) != HSM_VIRT_STATE_RUNNING && mfx_now_ms() < end) {
		mfx_sleep_ms(5);
	}
	assert_int_equal(vm_state(t), HSM_VIRT_STATE_RUNNING);
}

/* ---- cases ------------------------------------------------------------------------ */

static void test_thinp__leaf_near_its_end_is_extended_and_armed(void **state)
{
	struct tt *t = *state;
	uint64_t lv0 = lv_size(t, t->m->s2), lv1;

	fake_virt_block_set("vm1", "vda", lv0 - MIB, lv0);
	tt_start(t);
	hsm_thinp_on_threshold(t->thinp, "vm1", "vda[1]");
	wait_checks(t, 0);
	lv1 = lv_size(t, t->m->s2);
	assert_true(lv1 >= lv0 + 8 * MIB || lv1 >= 64 * MIB);
	assert_true(atomic_load(&t->m->spm->extends) >= 1);
	if (lv1 < 64 * MIB) {
		wait_threshold(lv1 - 4 * MIB);
	}
	assert_int_equal(counters(t).extends, 1);
}

static void test_thinp__leaf_with_room_only_gets_its_threshold(void **state)
{
	struct tt *t = *state;
	uint64_t lv0 = lv_size(t, t->m->s2);

	fake_virt_block_set("vm1", "vda", 0, lv0);
	tt_start(t);
	wait_threshold(lv0 > 4 * MIB ? lv0 - 4 * MIB : 0);
	assert_int_equal(atomic_load(&t->m->spm->extends), 0);
	assert_int_equal(lv_size(t, t->m->s2), lv0);
}

static void test_thinp__enospc_pause_is_extended_and_resumed(void **state)
{
	struct tt *t = *state;
	uint64_t lv0 = lv_size(t, t->m->s2);

	fake_virt_block_set("vm1", "vda", lv0 - MIB, lv0);
	fake_virt_pause_io("vm1", true);
	tt_start(t); /* a restarted hsmd finds the VM paused */
	wait_running(t);
	assert_true(lv_size(t, t->m->s2) > lv0);
	assert_int_equal(counters(t).resumes, 1);
}

static void test_thinp__administrator_pause_is_never_resumed(void **state)
{
	struct tt *t = *state;
	char status[HSM_THINP_STATUS_MAX];

	fake_virt_pause("vm1");
	tt_start(t);
	wait_checks(t, 0);
	hsm_thinp_kick(t->thinp, "vm1");
	wait_checks(t, 1);
	assert_int_equal(vm_state(t), HSM_VIRT_STATE_PAUSED);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_RESUME), 0);
	hsm_thinp_vm_status(t->thinp, "vm1", status, sizeof(status));
	assert_string_equal(status, "");
}

static void test_thinp__eio_pause_is_never_resumed(void **state)
{
	struct tt *t = *state;
	char status[HSM_THINP_STATUS_MAX];

	fake_virt_pause_io("vm1", false);
	tt_start(t);
	wait_checks(t, 0);
	assert_int_equal(vm_state(t), HSM_VIRT_STATE_PAUSED);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_RESUME), 0);
	hsm_thinp_vm_status(t->thinp, "vm1", status, sizeof(status));
	assert_non_null(strstr(status, "not ENOSPC"));
}

static void test_thinp__spm_away_waits_visibly_then_resumes(void **state)
{
	struct tt *t = *state;
	uint64_t lv0 = lv_size(t, t->m->s2);
	char status[HSM_THINP_STATUS_MAX];

	fake_virt_block_set("vm1", "vda", lv0 - MIB, lv0);
	fake_virt_pause_io("vm1", true);
	atomic_store(&t->m->spm->fail_extends, 3); /* NOT_SPM three times */
	tt_start(t);
	wait_checks(t, 0);
	hsm_thinp_vm_status(t->thinp, "vm1", status, sizeof(status));
	assert_non_null(strstr(status, "waiting for space on volume"));
	assert_non_null(strstr(status, t->m->s2));
	assert_int_equal(vm_state(t), HSM_VIRT_STATE_PAUSED);
	wait_running(t);
	assert_true(counters(t).waits >= 3);
	assert_true(lv_size(t, t->m->s2) > lv0);
	hsm_thinp_vm_status(t->thinp, "vm1", status, sizeof(status));
	assert_string_equal(status, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_thinp__leaf_near_its_end_is_extended_and_armed,
						tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_thinp__leaf_with_room_only_gets_its_threshold,
						tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_thinp__enospc_pause_is_extended_and_resumed,
						tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_thinp__administrator_pause_is_never_resumed,
						tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_thinp__eio_pause_is_never_resumed, tt_setup,
						tt_teardown),
		cmocka_unit_test_setup_teardown(test_thinp__spm_away_waits_visibly_then_resumes,
						tt_setup, tt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
