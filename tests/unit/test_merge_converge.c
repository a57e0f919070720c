/*
 * hsm/merge_converge.c: the verdict on a capped active commit from sample
 * sequences like qemu's (a bulk copy that shrinks, a throttled mirror under
 * a faster writer, libvirt's cur == end - 1 between iterations), the
 * last-pass rule and the sentences a person reads. Pure code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hsm/merge_converge.h"

#define MIB (1024ull * 1024)
#define CAP (2 * MIB)
#define GUEST (3774873ull) /* 3.6 MiB/s */

/* n samples every 500 ms from t0: cur, end and written advanced per second. */
static void feed(struct hsm_merge_converge *c, unsigned n, uint64_t t0, uint64_t cur0,
		 uint64_t end0, uint64_t cur_rate, uint64_t end_rate, uint64_t write_rate,
		 bool has_written)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t ms = (uint64_t)i * 500;
		struct hsm_merge_converge_sample s = {
			.t_ms = t0 + ms,
			.cur = cur0 + cur_rate * ms / 1000,
			.end = end0 + end_rate * ms / 1000,
			.written = 1000 + write_rate * ms / 1000,
			.has_written = has_written,
		};
		if (s.cur > s.end) {
			s.cur = s.end;
		}
		hsm_merge_converge_add(c, &s);
	}
}

static void test_merge_converge__unknown_until_a_full_window(void **state)
{
	struct hsm_merge_converge c;
	struct hsm_merge_converge_verdict v;

	(void)state;
	hsm_merge_converge_init(&c, 4000);
	hsm_merge_converge_judge(&c, CAP, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_UNKNOWN);
	/* 3.5 s of a writer faster than the cap: not a window yet. */
	feed(&c, 8, 10000, 100 * MIB, 100 * MIB + 1, CAP, GUEST, GUEST, true);
	hsm_merge_converge_judge(&c, CAP, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_UNKNOWN);
	assert_false(hsm_merge_converge_uncap_due(&v, CAP, 5));
}

static void test_merge_converge__bulk_copy_converges(void **state)
{
	struct hsm_merge_converge c;
	struct hsm_merge_converge_verdict v;

	(void)state;
	hsm_merge_converge_init(&c, 4000);
	/* The first pass over 1 GiB at the cap, a slow guest: the backlog shrinks. */
	feed(&c, 20, 0, 0, 1024 * MIB, CAP, 100 * 1024, 100 * 1024, true);
	hsm_merge_converge_judge(&c, CAP, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_CONVERGING);
	assert_true(v.copy_rate >= CAP - 1024 && v.copy_rate <= CAP + 1024);
	assert_false(hsm_merge_converge_uncap_due(&v, CAP, 5));
}

static void test_merge_converge__faster_writer_does_not_converge(void **state)
{
	struct hsm_merge_converge c;
	struct hsm_merge_converge_verdict v;
	char note[256];

	(void)state;
	hsm_merge_converge_init(&c, 4000);
	/* qemu copies at the cap, the backlog grows by what the guest writes more. */
	feed(&c, 12, 0, 500 * MIB, 500 * MIB + MIB, CAP, GUEST, GUEST, true);
	hsm_merge_converge_judge(&c, CAP, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_NOT_CONVERGING);
	assert_true(v.guest_rate >= GUEST - 1024 && v.guest_rate <= GUEST + 1024);
	/* ~1 MiB + 4 s * 1.6 MiB/s left: within 5 s at 2 MiB/s. */
	assert_true(v.remaining > MIB && v.remaining < 10 * MIB);
	assert_true(hsm_merge_converge_uncap_due(&v, CAP, 5));
	assert_false(hsm_merge_converge_uncap_due(&v, CAP, 1));
	hsm_merge_converge_note(v.state, v.guest_rate, CAP, false, note, sizeof(note));
	assert_string_equal(note, "not converging: the guest writes 3.6 MiB/s, the limit is "
				  "2.0 MiB/s");
	hsm_merge_converge_note(v.state, v.guest_rate, CAP, true, note, sizeof(note));
	assert_string_equal(note, "not converging: the guest writes 3.6 MiB/s, the limit of "
				  "2.0 MiB/s was lifted for the last pass");
}

static void test_merge_converge__libvirt_end_minus_one_does_not_converge(void **state)
{
	struct hsm_merge_converge c;
	struct hsm_merge_converge_verdict v;
	char note[256];

	(void)state;
	hsm_merge_converge_init(&c, 4000);
	/* What libvirt shows of a throttled mirror: cur = end - 1 between
	 * iterations, end growing at the cap, and now and then the backlog
	 * counted at the top of qemu's loop. No write counter: end's growth. */
	for (unsigned i = 0; i < 12; i++) {
		uint64_t cur = 1879048191ull + (uint64_t)i * CAP / 2;
		struct hsm_merge_converge_sample s = {
			.t_ms = 5000 + (uint64_t)i * 500,
			.cur = cur,
			.end = i % 4 == 2 ? cur + 3 * MIB : cur + 1,
		};
		hsm_merge_converge_add(&c, &s);
	}
	hsm_merge_converge_judge(&c, CAP, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_NOT_CONVERGING);
	assert_int_equal(v.remaining, 3 * MIB); /* the peak, not the - 1 */
	assert_true(v.guest_rate >= CAP - 1024 && v.guest_rate <= CAP + 1024);
	assert_true(hsm_merge_converge_uncap_due(&v, CAP, 5));
	hsm_merge_converge_note(v.state, 0, CAP, false, note, sizeof(note));
	assert_string_equal(note, "not converging: the guest writes faster than the limit, the "
				  "limit is 2.0 MiB/s");
}

static void test_merge_converge__large_backlog_keeps_the_cap(void **state)
{
	struct hsm_merge_converge c;
	struct hsm_merge_converge_verdict v;

	(void)state;
	hsm_merge_converge_init(&c, 4000);
	/* Not converging, but 64 MiB behind: 32 s at the cap, not a last pass. */
	feed(&c, 12, 0, 0, 64 * MIB, CAP, GUEST, GUEST, true);
	hsm_merge_converge_judge(&c, CAP, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_NOT_CONVERGING);
	assert_false(hsm_merge_converge_uncap_due(&v, CAP, 5));
	assert_true(hsm_merge_converge_uncap_due(&v, CAP, 60));
}

static void test_merge_converge__no_cap_is_never_not_converging(void **state)
{
	struct hsm_merge_converge c;
	struct hsm_merge_converge_verdict v;
	char note[256];

	(void)state;
	hsm_merge_converge_init(&c, 4000);
	feed(&c, 12, 0, 0, MIB, CAP, GUEST, GUEST, true);
	hsm_merge_converge_judge(&c, 0, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_UNKNOWN);
	assert_false(hsm_merge_converge_uncap_due(&v, 0, 5));
	hsm_merge_converge_note(v.state, v.guest_rate, 0, false, note, sizeof(note));
	assert_string_equal(note, "");
}

static void test_merge_converge__cap_lifted_converges_then(void **state)
{
	struct hsm_merge_converge c;
	struct hsm_merge_converge_verdict v;

	(void)state;
	hsm_merge_converge_init(&c, 4000);
	feed(&c, 12, 0, 500 * MIB, 500 * MIB + MIB, CAP, GUEST, GUEST, true);
	hsm_merge_converge_judge(&c, CAP, &v);
	assert_true(hsm_merge_converge_uncap_due(&v, CAP, 5));
	/* Unlimited: qemu copies 5 MiB/s, the backlog drains. */
	hsm_merge_converge_reset(&c);
	feed(&c, 10, 6000, 510 * MIB, 518 * MIB, 5 * MIB, GUEST, GUEST, true);
	hsm_merge_converge_judge(&c, 0, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_CONVERGING);
}

static void test_merge_converge__another_block_job_resets(void **state)
{
	struct hsm_merge_converge c;
	struct hsm_merge_converge_verdict v;

	(void)state;
	hsm_merge_converge_init(&c, 4000);
	feed(&c, 12, 0, 500 * MIB, 500 * MIB + MIB, CAP, GUEST, GUEST, true);
	/* A restarted block job starts from 0 again: a new window. */
	feed(&c, 3, 7000, 0, 400 * MIB, CAP, GUEST, GUEST, true);
	hsm_merge_converge_judge(&c, CAP, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_UNKNOWN);
}

static void test_merge_converge__window_slides(void **state)
{
	struct hsm_merge_converge c;
	struct hsm_merge_converge_verdict v;

	(void)state;
	hsm_merge_converge_init(&c, 2000);
	/* Long converging, then 3 s of a faster writer: only the last window counts. */
	feed(&c, 30, 0, 0, 1024 * MIB, CAP, 0, 0, true);
	feed(&c, 7, 15000, 30 * MIB, 31 * MIB, CAP, GUEST, GUEST, true);
	hsm_merge_converge_judge(&c, CAP, &v);
	assert_int_equal(v.state, HSM_MERGE_CONVERGENCE_NOT_CONVERGING);
	assert_true(c.n <= 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_converge__unknown_until_a_full_window),
		cmocka_unit_test(test_merge_converge__bulk_copy_converges),
		cmocka_unit_test(test_merge_converge__faster_writer_does_not_converge),
		cmocka_unit_test(test_merge_converge__libvirt_end_minus_one_does_not_converge),
		cmocka_unit_test(test_merge_converge__large_backlog_keeps_the_cap),
		cmocka_unit_test(test_merge_converge__no_cap_is_never_not_converging),
		cmocka_unit_test(test_merge_converge__cap_lifted_converges_then),
		cmocka_unit_test(test_merge_converge__another_block_job_resets),
		cmocka_unit_test(test_merge_converge__window_slides),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
