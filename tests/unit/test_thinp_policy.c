/* Thin provisioning policy (hsm/thinp_policy.c): thresholds, sizes, backoff. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hsm/thinp_policy.h"

#define MIB HSM_THINP_MIB
#define EXT (4 * MIB)

static void test_thinp_policy__defaults_are_valid(void **state)
{
	struct hsm_thinp_policy p;

	(void)state;
	hsm_thinp_policy_init(&p);
	assert_true(p.monitor);
	assert_int_equal(p.chunk, 1024 * MIB);
	assert_int_equal(hsm_thinp_free_trigger(&p), 512 * MIB);
	assert_int_equal(hsm_thinp_policy_check(&p), 0);
}

static void test_thinp_policy__check_refuses_bad_settings(void **state)
{
	struct hsm_thinp_policy p;

	(void)state;
	hsm_thinp_policy_init(&p);
	p.chunk = 0;
	assert_int_equal(hsm_thinp_policy_check(&p), -EINVAL);
	hsm_thinp_policy_init(&p);
	p.free_pct = 101;
	assert_int_equal(hsm_thinp_policy_check(&p), -EINVAL);
	hsm_thinp_policy_init(&p);
	p.free_mb = 1024;
	assert_int_equal(hsm_thinp_policy_check(&p), -EINVAL);
	hsm_thinp_policy_init(&p);
	p.workers = 0;
	assert_int_equal(hsm_thinp_policy_check(&p), -EINVAL);
}

static void test_thinp_policy__free_mb_wins_over_pct(void **state)
{
	struct hsm_thinp_policy p;

	(void)state;
	hsm_thinp_policy_init(&p);
	p.free_mb = 256;
	assert_int_equal(hsm_thinp_free_trigger(&p), 256 * MIB);
}

static void test_thinp_policy__threshold(void **state)
{
	struct hsm_thinp_policy p;
	bool armed;

	(void)state;
	hsm_thinp_policy_init(&p);
	/* 2 GiB LV of a 10 GiB disk: arm at 1.5 GiB */
	assert_int_equal(hsm_thinp_threshold(&p, 2048 * MIB, 10240 * MIB, &armed), 1536 * MIB);
	assert_true(armed);
	/* a 32 MiB leaf is below the trigger: extend at once */
	assert_int_equal(hsm_thinp_threshold(&p, 32 * MIB, 10240 * MIB, &armed), 0);
	assert_true(armed);
	/* full size reached: nothing to arm */
	hsm_thinp_threshold(&p, 10240 * MIB, 10240 * MIB, &armed);
	assert_false(armed);
	assert_false(hsm_thinp_needs_extend(&p, 10240 * MIB, 10240 * MIB, 10240 * MIB));
	assert_true(hsm_thinp_needs_extend(&p, 1536 * MIB, 2048 * MIB, 10240 * MIB));
	assert_false(hsm_thinp_needs_extend(&p, 1535 * MIB, 2048 * MIB, 10240 * MIB));
}

static void test_thinp_policy__next_size_one_chunk(void **state)
{
	struct hsm_thinp_policy p;

	(void)state;
	hsm_thinp_policy_init(&p);
	assert_int_equal(hsm_thinp_next_size(&p, 1536 * MIB, 2048 * MIB, 10240 * MIB, EXT),
			 3072 * MIB);
}

static void test_thinp_policy__next_size_catches_up(void **state)
{
	struct hsm_thinp_policy p;

	(void)state;
	hsm_thinp_policy_init(&p);
	p.chunk = 64 * MIB;
	/* allocation ran past the LV end (a pause on ENOSPC): leave the trigger */
	assert_int_equal(hsm_thinp_next_size(&p, 200 * MIB, 32 * MIB, 10240 * MIB, EXT),
			 236 * MIB);
}

static void test_thinp_policy__next_size_capped_and_rounded(void **state)
{
	struct hsm_thinp_policy p;
	uint64_t max = 1100 * MIB + 123;

	(void)state;
	hsm_thinp_policy_init(&p);
	assert_int_equal(hsm_thinp_next_size(&p, 900 * MIB, 1024 * MIB, max, EXT), 1104 * MIB);
	assert_int_equal(hsm_thinp_next_size(&p, 0, 1104 * MIB, max, EXT), 1104 * MIB);
	p.chunk = 10 * MIB + 1;
	assert_int_equal(hsm_thinp_next_size(&p, 0, 32 * MIB, 10240 * MIB, EXT), 44 * MIB);
	assert_int_equal(hsm_thinp_next_size(&p, 0, 32 * MIB, 10240 * MIB, 0), 42 * MIB + 1);
}

static void test_thinp_policy__backoff_doubles_to_cap(void **state)
{
	struct hsm_thinp_policy p;

	(void)state;
	hsm_thinp_policy_init(&p);
	assert_int_equal(hsm_thinp_retry_delay_ms(&p, 1), 50);
	assert_int_equal(hsm_thinp_retry_delay_ms(&p, 2), 100);
	assert_int_equal(hsm_thinp_retry_delay_ms(&p, 5), 800);
	assert_int_equal(hsm_thinp_retry_delay_ms(&p, 6), 1000);
	assert_int_equal(hsm_thinp_retry_delay_ms(&p, 1000), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thinp_policy__defaults_are_valid),
		cmocka_unit_test(test_thinp_policy__check_refuses_bad_settings),
		cmocka_unit_test(test_thinp_policy__free_mb_wins_over_pct),
		cmocka_unit_test(test_thinp_policy__threshold),
		cmocka_unit_test(test_thinp_policy__next_size_one_chunk),
		cmocka_unit_test(test_thinp_policy__next_size_catches_up),
		cmocka_unit_test(test_thinp_policy__next_size_capped_and_rounded),
		cmocka_unit_test(test_thinp_policy__backoff_doubles_to_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
