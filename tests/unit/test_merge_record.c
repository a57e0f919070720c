/*
 * hsm/merge_job.c: merge job records (encode, strict decode) and what a job
 * derives from its chain (removed layers, receiving volume, child, new
 * parent, new leaf, the chain expected after the merge). Pure code.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hsm/merge_job.h"

#define V0 "00000000-0000-4000-8000-000000000000"
#define V1 "11111111-1111-4111-8111-111111111111"
#define V2 "22222222-2222-4222-8222-222222222222"
#define V3 "33333333-3333-4333-8333-333333333333"
#define DOM "44444444-4444-4444-8444-444444444444"
#define IMG "55555555-5555-4555-8555-555555555555"
#define JOB "66666666-6666-4666-8666-666666666666"

/* chain leaf first: V3 <- V2 <- V1 <- V0 (base) */
static void job_make(struct hsm_merge_job *job, enum hsm_merge_kind kind, const char *base,
		     const char *top)
{
	const char *chain[] = { V3, V2, V1, V0 };

	memset(job, 0, sizeof(*job));
	snprintf(job->id, sizeof(job->id), "%s", JOB);
	snprintf(job->vm, sizeof(job->vm), "vm-1");
	snprintf(job->drive, sizeof(job->drive), "vdb");
	snprintf(job->domain, sizeof(job->domain), "%s", DOM);
	snprintf(job->image, sizeof(job->image), "%s", IMG);
	snprintf(job->base, sizeof(job->base), "%s", base);
	snprintf(job->top, sizeof(job->top), "%s", top);
	job->kind = kind;
	job->state = HSM_MERGE_COMMITTING;
	job->nchain = 4;
	for (size_t i = 0; i < 4; i++) {
		snprintf(job->chain[i], PK_UUID_BUFLEN, "%s", chain[i]);
	}
}

static void test_merge_record__roundtrip(void **state)
{
	struct hsm_merge_job a, b;
	struct pk_error err = { PK_OK, "" };
	char *text, *again;

	(void)state;
	job_make(&a, HSM_MERGE_ACTIVE_COMMIT, V2, V3);
	a.bandwidth = 1 << 20;
	a.cur = 5;
	a.end = 10;
	a.started_ms = 1700000000000ull;
	a.updated_ms = 1700000000500ull;
	a.extend_size = 64ull << 20;
	a.attempts = 2;
	a.pivot_attempts = 1;
	a.leaf_illegal = true;
	a.abort_requested = true;
	a.state = HSM_MERGE_FAILED;
	a.failed_in = HSM_MERGE_PIVOTING;
	pk_error_set(&a.error, PK_E_ABORTED, ECANCELED, "line one\nline two");
	text = hsm_merge_record_encode(&a);
	assert_int_equal(hsm_merge_record_decode(text, &b, &err), 0);
	assert_string_equal(b.id, JOB);
	assert_string_equal(b.vm, "vm-1");
	assert_string_equal(b.drive, "vdb");
	assert_int_equal(b.kind, HSM_MERGE_ACTIVE_COMMIT);
	assert_int_equal(b.state, HSM_MERGE_FAILED);
	assert_int_equal(b.failed_in, HSM_MERGE_PIVOTING);
	assert_int_equal(b.nchain, 4);
	assert_string_equal(b.chain[3], V0);
	assert_int_equal(b.bandwidth, 1 << 20);
	assert_int_equal(b.extend_size, 64ull << 20);
	assert_int_equal(b.attempts, 2);
	assert_int_equal(b.pivot_attempts, 1);
	assert_true(b.leaf_illegal);
	assert_true(b.abort_requested);
	assert_int_equal(b.error.code, PK_E_ABORTED);
	assert_string_equal(b.error.message, "line one line two");
	again = hsm_merge_record_encode(&b);
	assert_string_equal(text, again);
	free(text);
	free(again);
}

static void expect_bad(const char *text, const char *needle)
{
	struct hsm_merge_job job;
	struct pk_error err = { PK_OK, "" };

	assert_int_not_equal(hsm_merge_record_decode(text, &job, &err), 0);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	if (!strstr(err.message, needle)) {
		fail_msg("'%s' does not mention '%s'", err.message, needle);
	}
}

static char *replace(const char *text, const char *from, const char *to)
{
	const char *p = strstr(text, from);
	char *out;

	assert_non_null(p);
	out = malloc(strlen(text) + strlen(to) + 1);
	memcpy(out, text, (size_t)(p - text));
	strcpy(out + (p - text), to);
	strcat(out, p + strlen(from));
	return out;
}

static void test_merge_record__strict_decode(void **state)
{
	struct hsm_merge_job a, b;
	struct pk_error err = { PK_OK, "" };
	char *text, *bad;

	(void)state;
	job_make(&a, HSM_MERGE_COMMIT, V1, V2);
	text = hsm_merge_record_encode(&a);

	bad = replace(text, "vm=vm-1\n", "");
	expect_bad(bad, "'vm' is missing");
	free(bad);
	bad = replace(text, "id=" JOB, "id=../../etc");
	expect_bad(bad, "bad id");
	free(bad);
	bad = replace(text, "attempts=0\n", "attempts=0\nattempts=1\n");
	expect_bad(bad, "twice");
	free(bad);
	bad = replace(text, "cur=0", "cur=-1");
	expect_bad(bad, "bad cur");
	free(bad);
	bad = replace(text, "cur=0", "cur=007");
	expect_bad(bad, "bad cur");
	free(bad);
	bad = replace(text, "state=COMMITTING", "state=SLEEPING");
	expect_bad(bad, "bad state");
	free(bad);
	bad = replace(text, "version=1", "version=2");
	expect_bad(bad, "bad version");
	free(bad);
	bad = replace(text, "kind=COMMIT", "kind=ACTIVE_COMMIT"); /* top is not the leaf */
	expect_bad(bad, "does not fit");
	free(bad);
	bad = replace(text, "base=" V1, "base=" V3); /* base above top */
	expect_bad(bad, "does not fit");
	free(bad);
	bad = replace(text, "leaf_illegal=0", "leaf_illegal=yes");
	expect_bad(bad, "bad leaf_illegal");
	free(bad);
	bad = replace(text, "vm=vm-1", "novalue");
	expect_bad(bad, "no '='");
	free(bad);
	/* A newer hsmd's field is ignored. */
	bad = replace(text, "vm=vm-1\n", "vm=vm-1\nfuture_field=42\n");
	assert_int_equal(hsm_merge_record_decode(bad, &b, &err), 0);
	free(bad);
	free(text);
}

static void test_merge_record__derived_commit(void **state)
{
	struct hsm_merge_job job;
	size_t lo, hi;
	const char after[][PK_UUID_BUFLEN] = { V3, V0 };
	const char before[][PK_UUID_BUFLEN] = { V3, V2, V1, V0 };

	(void)state;
	/* Commit V2 and V1 into V0: V3's parent becomes V0. */
	job_make(&job, HSM_MERGE_COMMIT, V0, V2);
	hsm_merge_job_removed(&job, &lo, &hi);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 2);
	assert_string_equal(hsm_merge_job_target(&job), V0);
	assert_string_equal(hsm_merge_job_child(&job), V3);
	assert_string_equal(hsm_merge_job_new_parent(&job), V0);
	assert_string_equal(hsm_merge_job_new_leaf(&job), V3);
	assert_true(hsm_merge_job_chain_is_after(&job, after, 2));
	assert_false(hsm_merge_job_chain_is_after(&job, before, 4));
	assert_true(hsm_merge_job_chain_is_before(&job, before, 4));
	assert_false(hsm_merge_job_chain_is_before(&job, after, 2));
}

static void test_merge_record__derived_active_and_pull(void **state)
{
	struct hsm_merge_job job;
	size_t lo, hi;
	const char after_active[][PK_UUID_BUFLEN] = { V2, V1, V0 };
	const char after_pull[][PK_UUID_BUFLEN] = { V3 };

	(void)state;
	job_make(&job, HSM_MERGE_ACTIVE_COMMIT, V2, V3);
	hsm_merge_job_removed(&job, &lo, &hi);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 0);
	assert_string_equal(hsm_merge_job_target(&job), V2);
	assert_string_equal(hsm_merge_job_child(&job), "");
	assert_string_equal(hsm_merge_job_new_leaf(&job), V2);
	assert_true(hsm_merge_job_chain_is_after(&job, after_active, 3));

	/* Pull everything below the leaf: the leaf ends with no backing. */
	job_make(&job, HSM_MERGE_PULL, V0, V3);
	hsm_merge_job_removed(&job, &lo, &hi);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 3);
	assert_string_equal(hsm_merge_job_target(&job), V3);
	assert_string_equal(hsm_merge_job_child(&job), V3);
	assert_string_equal(hsm_merge_job_new_parent(&job), "");
	assert_string_equal(hsm_merge_job_new_leaf(&job), V3);
	assert_true(hsm_merge_job_chain_is_after(&job, after_pull, 1));

	/* Pull one layer: V2 goes up into V3, whose parent becomes V1. */
	job_make(&job, HSM_MERGE_PULL, V2, V3);
	assert_string_equal(hsm_merge_job_new_parent(&job), V1);
}

static void test_merge_record__names(void **state)
{
	enum hsm_merge_state s;
	enum hsm_merge_kind k;

	(void)state;
	for (int i = HSM_MERGE_PREPARING; i <= HSM_MERGE_ABORTING; i++) {
		assert_int_equal(hsm_merge_state_parse(hsm_merge_state_name(i), &s), 0);
		assert_int_equal(s, i);
	}
	for (int i = HSM_MERGE_COMMIT; i <= HSM_MERGE_COLD_COMMIT; i++) {
		assert_int_equal(hsm_merge_kind_parse(hsm_merge_kind_name(i), &k), 0);
		assert_int_equal(k, i);
	}
	assert_string_equal(hsm_merge_state_name(0), "UNKNOWN");
	assert_string_equal(hsm_merge_kind_name(99), "UNKNOWN");
	assert_true(hsm_merge_state_final(HSM_MERGE_DONE));
	assert_true(hsm_merge_state_final(HSM_MERGE_FAILED));
	assert_false(hsm_merge_state_final(HSM_MERGE_ABORTING));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_record__roundtrip),
		cmocka_unit_test(test_merge_record__strict_decode),
		cmocka_unit_test(test_merge_record__derived_commit),
		cmocka_unit_test(test_merge_record__derived_active_and_pull),
		cmocka_unit_test(test_merge_record__names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
