/*
 * hsm/merge*.c against the fake libvirtd and LVM (tests/unit/test_hsm_fixture.h)
 * and a small SPM served over nng in this process (ExtendVolume,
 * UpdateVolumeMeta, ImagePrepared on the fake LVM's tags), set up by
 * tests/lib/merge_fixture.h. The volumes' files are real qcow2 images,
 * so qemu-img measure/check/info/commit run for real.
 *
 * Covered: internal commit, active commit with pivot (the old leaf ILLEGAL
 * before it, LEGAL again after a failed pivot), pull, EXTENDING through the
 * SPM, abort, a block job failing or vanishing, a VM stopping mid-commit,
 * libvirt reconnection with lost events, hsmd restarts (records resumed),
 * a pivot under load (the new chain while the job is listed, the job gone
 * before the new chain, the job gone for good, neither chain: judged once
 * the job ended), FAILED records with the old leaf ILLEGAL reconciled at
 * start, a merge already done in qemu (CLEANUP only), cold commit with qemu-img (of
 * an internal layer, and of the leaf: the definition switched),
 * bad input, one job per drive, bandwidth, events on the pub socket, and a
 * record that cannot be written (no state, no ILLEGAL mark, no abort, no
 * bandwidth change takes effect without it).
 *
 * Threads: fake_lvm runs one verb at a time, and the small SPM runs one
 * request at a time (as the real one holds its volume locks), so the SPM's
 * workers, the job threads and the test thread may all touch LVM.
 */
/* pk-test-fakes: fake_lvm fake_virt */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/rpc.h"
#include "common/statefile.h"
#include "hsm/merge.h"
#include "hsm/merge_job.h"
#include "hsm/vm.h"
#include "proto/codec.h"
#include "tests/fakes/fake_lvm.h"
#include "tests/lib/merge_fixture.h"

/* ---- cases -------------------------------------------------------------------------------- */

static void test_merge__internal_commit(void **state)
{
	struct mfx *t = *state;
	struct fake_virt_call call;
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);

	assert_int_equal(j.kind, HSM_MERGE_COMMIT);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	mfx_wait_state(t, j.id, HSM_MERGE_COMMITTING);
	assert_true(fake_virt_last_call(FAKE_VIRT_COMMIT, &call));
	assert_false(call.active);
	assert_string_equal(call.disk, "vda");
	assert_string_not_equal(call.top, "");
	/* Progress moves, and ends at the total. */
	assert_int_equal(fake_virt_job_progress("vm1", "vda", 10, 40), 0);
	struct hsm_merge_job_info p = mfx_wait_progress(t, j.id, 10, 40);
	assert_int_equal(p.state, HSM_MERGE_COMMITTING);
	assert_int_equal(fake_virt_job_progress("vm1", "vda", 40, 40), 0);
	p = mfx_wait_progress(t, j.id, 40, 40);
	assert_int_equal(p.state, HSM_MERGE_COMMITTING);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	p = mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(p.end, 40);
	assert_int_equal(p.cur, p.end);
	mfx_assert_chain(t, t->s2, t->b, NULL);
	struct pk_volume_meta s1 = mfx_meta(t, t->s1), s2 = mfx_meta(t, t->s2), b = mfx_meta(t, t->b);
	assert_int_equal(s1.legality, PK_VOLUME_ILLEGAL);
	assert_int_equal(s1.role, PK_VOLUME_INTERNAL);
	assert_string_equal(s2.parent, t->b);
	assert_int_equal(s2.role, PK_VOLUME_LEAF);
	assert_int_equal(b.legality, PK_VOLUME_LEGAL);
	assert_false(mfx_linked(t, t->s1));
	assert_true(mfx_linked(t, t->s2));
	assert_false(fake_lvm_lv_active(t->fx->domain, t->s1));
	assert_false(hsm_merge_drive_busy(&t->fx->hsm, "vm1", "vda", NULL));
}

static void test_merge__active_commit_extends_and_pivots(void **state)
{
	struct mfx *t = *state;
	struct fake_virt_call call;
	struct hsm_drive_id *drives = NULL;
	char *xml = NULL;
	size_t n = 0;
	uint64_t lv_before = 0, lv_after = 0;
	struct pk_volume_meta m;

	assert_int_equal(spm_fixture_meta(t->fx, t->s1, &m, &lv_before, NULL), 0);
	fake_virt_set_manual_pivot(true);
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, NULL, HSM_MERGE_DIR_COMMIT);
	assert_int_equal(j.kind, HSM_MERGE_ACTIVE_COMMIT);
	assert_string_equal(j.top, t->s2);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_true(fake_virt_last_call(FAKE_VIRT_COMMIT, &call));
	assert_true(call.active);
	/* EXTENDING asked the SPM: S1 (COW) must hold S2's data + headroom. */
	assert_true(atomic_load(&t->spm->extends) >= 1);
	assert_int_equal(spm_fixture_meta(t->fx, t->s1, &m, &lv_after, NULL), 0);
	assert_true(lv_after > lv_before);
	/* cur == end is not READY. */
	assert_int_equal(fake_virt_job_progress("vm1", "vda", 50, 50), 0);
	struct hsm_merge_job_info i = mfx_wait_progress(t, j.id, 50, 50);
	assert_int_equal(i.state, HSM_MERGE_COMMITTING);
	/* READY: the old leaf becomes ILLEGAL, then the pivot is asked. */
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_PIVOTING);
	mfx_wait_calls(FAKE_VIRT_JOB_ABORT, 1);
	assert_true(fake_virt_last_call(FAKE_VIRT_JOB_ABORT, &call));
	assert_true(call.pivot);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_ILLEGAL);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	fake_virt_set_manual_pivot(false);
	mfx_assert_chain(t, t->s1, t->b, NULL);
	m = mfx_meta(t, t->s1);
	assert_int_equal(m.role, PK_VOLUME_LEAF);
	assert_int_equal(m.legality, PK_VOLUME_LEGAL);
	m = mfx_meta(t, t->s2);
	assert_int_equal(m.role, PK_VOLUME_INTERNAL);
	assert_int_equal(m.legality, PK_VOLUME_ILLEGAL);
	/* The drive's metadata names the new leaf. */
	assert_int_equal(hsm_virt_metadata_get(t->fx->hsm.virt, "vm1", &xml, NULL), 0);
	assert_int_equal(hsm_vmxml_metadata_parse(xml, &drives, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(drives[0].volume_id, t->s1);
	free(drives);
	free(xml);
	assert_false(mfx_linked(t, t->s2));
}

static void test_merge__failed_pivot_restores_legal_and_retries(void **state)
{
	struct mfx *t = *state;

	fake_virt_set_manual_pivot(true);
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, t->s2, HSM_MERGE_DIR_COMMIT);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	mfx_wait_calls(FAKE_VIRT_JOB_ABORT, 1);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", false), 0);
	/* The job sees ready='yes' again with the old chain: LEGAL, READY, pivot again. */
	mfx_wait_calls(FAKE_VIRT_JOB_ABORT, 2);
	assert_true(atomic_load(&t->spm->updates) >= 3); /* ILLEGAL, LEGAL, ILLEGAL */
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	fake_virt_set_manual_pivot(false);
	mfx_assert_chain(t, t->s1, t->b, NULL);
}

static void test_merge__pull(void **state)
{
	struct mfx *t = *state;
	struct fake_virt_call call;
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, NULL, HSM_MERGE_DIR_PULL);

	assert_int_equal(j.kind, HSM_MERGE_PULL);
	mfx_wait_calls(FAKE_VIRT_PULL, 1);
	assert_true(fake_virt_last_call(FAKE_VIRT_PULL, &call));
	assert_string_not_equal(call.base, ""); /* the new backing: B */
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	mfx_assert_chain(t, t->s2, t->b, NULL);
	assert_string_equal(mfx_meta(t, t->s2).parent, t->b);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_ILLEGAL);
	assert_false(mfx_linked(t, t->s1));
}

static void test_merge__abort_cancels_and_keeps_chain(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT), i;
	struct pk_error err = { PK_OK, "" };

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_int_equal(hsm_merge_job_abort(&t->fx->hsm, j.id, &i, &err), 0);
	i = mfx_wait_state(t, j.id, HSM_MERGE_FAILED);
	assert_int_equal(i.error.code, PK_E_ABORTED);
	mfx_assert_chain(t, t->s2, t->s1, t->b);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_LEGAL);
	assert_true(mfx_linked(t, t->s1));
	/* The drive is free again. */
	j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 2);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
}

static void test_merge__block_job_failure_is_clean(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	mfx_wait_state(t, j.id, HSM_MERGE_COMMITTING);
	assert_int_equal(fake_virt_job_fail("vm1", "vda"), 0);
	j = mfx_wait_state(t, j.id, HSM_MERGE_FAILED);
	assert_int_equal(j.error.code, PK_E_IO);
	mfx_assert_chain(t, t->s2, t->s1, t->b);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_LEGAL);
}

static void test_merge__vm_stopped_mid_commit(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, t->s2, HSM_MERGE_DIR_COMMIT);

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	fake_virt_set_manual_pivot(true);
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	mfx_wait_calls(FAKE_VIRT_JOB_ABORT, 1);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_ILLEGAL);
	/* qemu dies while the pivot waits: the old leaf was ILLEGAL, becomes LEGAL. */
	assert_int_equal(fake_virt_domain_set_state("vm1", HSM_VIRT_STATE_SHUTOFF), 0);
	j = mfx_wait_state(t, j.id, HSM_MERGE_FAILED);
	fake_virt_set_manual_pivot(false);
	assert_int_equal(j.error.code, PK_E_ABORTED);
	assert_non_null(strstr(j.error.message, "intact"));
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_LEGAL);
	assert_int_equal(mfx_meta(t, t->s2).role, PK_VOLUME_LEAF);
}

static void test_merge__lost_events_reconciled_after_reconnect(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	mfx_wait_state(t, j.id, HSM_MERGE_COMMITTING);
	fake_virt_disconnect();
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0); /* event lost */
	fake_virt_events_flush();
	struct hsm_merge_job_info i;
	assert_int_equal(hsm_merge_job_get(&t->fx->hsm, j.id, &i, NULL), 0);
	assert_int_equal(i.state, HSM_MERGE_COMMITTING); /* nothing told it */
	fake_virt_reconnect();
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	mfx_assert_chain(t, t->s2, t->b, NULL);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_COMMIT), 1); /* not started twice */
}

static void test_merge__resumed_after_restart(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, NULL, HSM_MERGE_DIR_COMMIT);

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	mfx_wait_state(t, j.id, HSM_MERGE_COMMITTING);
	mfx_restart(t);
	/* The resumed job adopts the running block job. */
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_COMMIT), 1);
	mfx_assert_chain(t, t->s1, t->b, NULL);
	assert_int_equal(mfx_meta(t, t->s1).role, PK_VOLUME_LEAF);
}

/* A record left in PIVOTING after a pivot that happened: only CLEANUP is left. */
static void test_merge__resumed_in_pivoting_after_pivot(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, NULL, HSM_MERGE_DIR_COMMIT);

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	fake_virt_set_manual_pivot(true);
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	mfx_wait_calls(FAKE_VIRT_JOB_ABORT, 1);
	hsm_merge_stop(&t->fx->hsm); /* "killed" while the pivot runs */
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	fake_virt_set_manual_pivot(false);
	mfx_restart(t);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_JOB_ABORT), 1);
	assert_int_equal(mfx_meta(t, t->s1).role, PK_VOLUME_LEAF);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_ILLEGAL);
}

/* ---- a pivot under load: judged once the block job has ended ---------------------------- */

/* An active commit of vm1/vda (S2 into S1) whose pivot was asked and is pending. */
static struct hsm_merge_job_info pivot_pending(struct mfx *t)
{
	fake_virt_set_manual_pivot(true);
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, NULL, HSM_MERGE_DIR_COMMIT);

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	mfx_wait_calls(FAKE_VIRT_JOB_ABORT, 1);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_ILLEGAL);
	return j;
}

static enum hsm_merge_state job_state_now(struct mfx *t, const char *id)
{
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_job_info j;

	assert_int_equal(hsm_merge_job_get(&t->fx->hsm, id, &j, &err), 0);
	return j.state;
}

/* S2 merged into S1, S1 the LEAF: what every pivot that happened ends with. */
static void assert_pivoted(struct mfx *t, const char *id)
{
	mfx_wait_state(t, id, HSM_MERGE_DONE);
	fake_virt_set_manual_pivot(false);
	mfx_assert_chain(t, t->s1, t->b, NULL);
	assert_int_equal(mfx_meta(t, t->s1).role, PK_VOLUME_LEAF);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_LEGAL);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_ILLEGAL);
	assert_false(hsm_merge_drive_busy(&t->fx->hsm, "vm1", "vda", NULL));
}

/* The new chain shows while the job and <mirror ready='pivot'> are still listed. */
static void test_merge__slow_pivot_is_waited_for(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = pivot_pending(t);

	assert_int_equal(fake_virt_pivot_show("vm1", "vda", FAKE_VIRT_PIVOT_SWITCHED), 0);
	mfx_sleep_ms(1500);
	assert_int_equal(job_state_now(t, j.id), HSM_MERGE_PIVOTING);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	assert_pivoted(t, j.id);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_JOB_ABORT), 1);
}

/* Job info says "no job" before the XML shows the new chain: not a failure. */
static void test_merge__job_gone_before_the_new_chain(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = pivot_pending(t);

	assert_int_equal(fake_virt_pivot_show("vm1", "vda", FAKE_VIRT_PIVOT_JOB_GONE), 0);
	mfx_sleep_ms(1500);
	assert_int_equal(job_state_now(t, j.id), HSM_MERGE_PIVOTING);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_ILLEGAL);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	assert_pivoted(t, j.id);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_JOB_ABORT), 1);
}

/* The job ended for good with the old chain: leaf LEGAL, the commit runs again. */
static void test_merge__job_gone_with_the_old_chain_commits_again(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = pivot_pending(t);

	assert_int_equal(fake_virt_pivot_show("vm1", "vda", FAKE_VIRT_PIVOT_DROPPED), 0);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 2);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_LEGAL);
	assert_int_equal(job_state_now(t, j.id), HSM_MERGE_COMMITTING);
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	mfx_wait_calls(FAKE_VIRT_JOB_ABORT, 2);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	assert_pivoted(t, j.id);
}

/* Neither chain once the job ended: FAILED ILLEGAL, and the old leaf LEGAL again. */
static void test_merge__neither_chain_fails_with_the_leaf_legal(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = pivot_pending(t);

	assert_int_equal(fake_virt_pivot_show("vm1", "vda", FAKE_VIRT_PIVOT_FOREIGN), 0);
	j = mfx_wait_state(t, j.id, HSM_MERGE_FAILED);
	fake_virt_set_manual_pivot(false);
	assert_int_equal(j.error.code, PK_E_ILLEGAL);
	assert_non_null(strstr(j.error.message, "neither"));
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_LEGAL);
	assert_int_equal(mfx_meta(t, t->s2).role, PK_VOLUME_LEAF);
}

/* hsmd restarts while libvirt shows the new chain with the job still listed. */
static void test_merge__resumed_in_pivoting_mid_pivot(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = pivot_pending(t);

	hsm_merge_stop(&t->fx->hsm);
	assert_int_equal(fake_virt_pivot_show("vm1", "vda", FAKE_VIRT_PIVOT_SWITCHED), 0);
	mfx_restart(t);
	mfx_sleep_ms(1000);
	assert_int_equal(job_state_now(t, j.id), HSM_MERGE_PIVOTING);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	assert_pivoted(t, j.id);
}

/* Rewrites the stopped job's record as FAILED in PIVOTING with the leaf ILLEGAL
 * (as an hsmd left it that died before unmarking the leaf). */
static void record_failed_in_pivoting(struct mfx *t, const char *id)
{
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge *m = hsm_merge_of(&t->fx->hsm);
	char name[64], *text = NULL, *out;
	size_t len = 0;

	snprintf(name, sizeof(name), "%s%s", id, HSM_MERGE_SUFFIX);
	assert_int_equal(pk_statefile_read(m->dir, name, (void **)&text, &len, &err), 0);
	char *state_line = strstr(text, "state=PIVOTING\nfailed_in=\n");
	assert_non_null(state_line);
	assert_non_null(strstr(text, "leaf_illegal=1\n"));
	*state_line = '\0';
	assert_true(asprintf(&out, "%sstate=FAILED\nfailed_in=PIVOTING\n%s"
			     "error_code=ILLEGAL\nerror=the chain changed\n", text,
			     state_line + strlen("state=PIVOTING\nfailed_in=\n")) > 0);
	assert_int_equal(pk_statefile_write(m->dir, name, out, strlen(out), &err), 0);
	free(out);
	free(text);
}

/* A FAILED record with the leaf ILLEGAL whose pivot did happen: finished at start. */
static void test_merge__failed_record_after_a_pivot_is_finished(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = pivot_pending(t);

	hsm_merge_stop(&t->fx->hsm);
	record_failed_in_pivoting(t, j.id);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	mfx_restart(t);
	/* FAILED (final) until the job's thread has looked at the chain. */
	uint64_t deadline = mfx_now_ms() + 10000;
	while (job_state_now(t, j.id) != HSM_MERGE_DONE && mfx_now_ms() < deadline) {
		mfx_sleep_ms(20);
	}
	j = mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(j.error.code, PK_OK);
	assert_pivoted(t, j.id);
}

/* A FAILED record with the leaf ILLEGAL whose pivot did not happen: leaf LEGAL at start. */
static void test_merge__failed_record_before_a_pivot_restores_the_leaf(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = pivot_pending(t);

	hsm_merge_stop(&t->fx->hsm);
	record_failed_in_pivoting(t, j.id);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", false), 0);
	fake_virt_set_manual_pivot(false);
	mfx_restart(t);
	uint64_t deadline = mfx_now_ms() + 10000;
	while (mfx_meta(t, t->s2).legality != PK_VOLUME_LEGAL && mfx_now_ms() < deadline) {
		mfx_sleep_ms(50);
	}
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_LEGAL);
	assert_int_equal(job_state_now(t, j.id), HSM_MERGE_FAILED);
	mfx_assert_chain(t, t->s2, t->s1, t->b);
	deadline = mfx_now_ms() + 10000;
	while (hsm_merge_drive_busy(&t->fx->hsm, "vm1", "vda", NULL) && mfx_now_ms() < deadline) {
		mfx_sleep_ms(50);
	}
	assert_false(hsm_merge_drive_busy(&t->fx->hsm, "vm1", "vda", NULL));
}

/* The merge happened in qemu but the metadata is behind: Merge only cleans up. */
static void test_merge__done_in_qemu_only_cleans_up(void **state)
{
	struct mfx *t = *state;
	char base[64], top[64];
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_live live;

	assert_int_equal(hsm_merge_live_read(&t->fx->hsm, "vm1", "vda", &live, &err), 0);
	assert_int_equal(hsm_merge_live_ref(&live, "vda", t->b, base, sizeof(base), &err), 0);
	assert_int_equal(hsm_merge_live_ref(&live, "vda", t->s1, top, sizeof(top), &err), 0);
	assert_int_equal(hsm_virt_block_commit(t->fx->hsm.virt, "vm1", "vda", base, top, false, 0,
					       &err), 0);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	fake_virt_events_flush();
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);
	assert_int_equal(j.state, HSM_MERGE_CLEANUP);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_string_equal(mfx_meta(t, t->s2).parent, t->b);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_ILLEGAL);
}

static void test_merge__cleanup_retries_transient_spm_errors(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	atomic_store(&t->spm->fail_updates, 2);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_ILLEGAL);
}

/* Waits (10 s) until the job says it waits for the SPM; it stays in state. */
static struct hsm_merge_job_info wait_waiting(struct mfx *t, const char *id,
					      enum hsm_merge_state state)
{
	struct hsm_merge_job_info info = { 0 };
	uint64_t end = mfx_now_ms() + 10000;

	while (mfx_now_ms() < end) {
		assert_int_equal(hsm_merge_job_get(&t->fx->hsm, id, &info, NULL), 0);
		if (info.waiting[0]) {
			break;
		}
		mfx_sleep_ms(10);
	}
	if (!strstr(info.waiting, "waiting for the SPM since ")) {
		fail_msg("job %s is %s, not waiting for the SPM (%s)", id,
			 hsm_merge_state_name(info.state), info.error.message);
	}
	assert_int_equal(info.state, state);
	return info;
}

/*
 * CLEANUP while no SPM answers (its spmd killed, no other one SPM yet):
 * the job stays in CLEANUP, says since when it waits and what the SPM
 * answered last, keeps trying well past the old 8 attempts, and finishes
 * once an SPM answers.
 */
static void test_merge__cleanup_waits_for_the_spm(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);
	struct hsm_merge_job_info w;
	int asked;

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	atomic_store(&t->spm->fail_updates, INT_MAX);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	w = wait_waiting(t, j.id, HSM_MERGE_CLEANUP);
	assert_non_null(strstr(w.waiting, "fake SPM: unavailable"));
	asked = atomic_load(&t->spm->updates);
	while (atomic_load(&t->spm->updates) < asked + 9) {
		mfx_sleep_ms(50); /* backoff 250 ms doubling to 5 s: about 20 s */
	}
	assert_int_equal(hsm_merge_job_get(&t->fx->hsm, j.id, &w, NULL), 0);
	assert_int_equal(w.state, HSM_MERGE_CLEANUP);
	assert_non_null(strstr(w.waiting, "waiting for the SPM since "));
	atomic_store(&t->spm->fail_updates, 0); /* pkctl spm start elsewhere */
	w = mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_string_equal(w.waiting, "");
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_ILLEGAL);
	assert_string_equal(mfx_meta(t, t->s2).parent, t->b);
}

/* EXTENDING while no spmd is the SPM (NOT_SPM): waits in EXTENDING, then goes on. */
static void test_merge__extending_waits_for_the_spm(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j, w;

	atomic_store(&t->spm->fail_extends, INT_MAX);
	j = mfx_merge(t, t->s1, NULL, HSM_MERGE_DIR_COMMIT);
	w = wait_waiting(t, j.id, HSM_MERGE_EXTENDING);
	assert_non_null(strstr(w.waiting, "not the SPM"));
	assert_int_equal(fake_virt_calls(FAKE_VIRT_COMMIT), 0); /* no block job without the room */
	atomic_store(&t->spm->fail_extends, 0);
	w = mfx_wait_state(t, j.id, HSM_MERGE_COMMITTING);
	assert_string_equal(w.waiting, "");
	assert_int_equal(hsm_merge_job_abort(&t->fx->hsm, j.id, &w, NULL), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_FAILED);
}

/* Nobody answers for the whole limit (setting spm_wait_limit): the job fails, saying so. */
static void test_merge__spm_wait_has_a_limit(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j, w;

	t->fx->hsm.settings.spm_wait_limit_s = 1;
	atomic_store(&t->spm->fail_extends, INT_MAX);
	j = mfx_merge(t, t->s1, NULL, HSM_MERGE_DIR_COMMIT);
	w = mfx_wait_state(t, j.id, HSM_MERGE_FAILED);
	assert_int_equal(w.error.code, PK_E_TIMEOUT);
	assert_non_null(strstr(w.error.message, "no SPM answered since"));
	assert_string_equal(w.waiting, "");
	assert_int_equal(fake_virt_calls(FAKE_VIRT_COMMIT), 0);
	atomic_store(&t->spm->fail_extends, 0);
}

static void test_merge__bad_input(void **state)
{
	struct mfx *t = *state;
	char other_img[PK_UUID_BUFLEN], ob[PK_UUID_BUFLEN], ol[PK_UUID_BUFLEN];
	char unknown[PK_UUID_BUFLEN];
	struct hsm_merge_request r = { .vm = "vm1", .drive = "vda", .base = t->b, .top = t->s1 };

	fx_image(t->fx, other_img, ob, ol);
	pk_uuid_generate(unknown);
	r.vm = "nope";
	mfx_expect_error(t, &r, PK_E_NOT_FOUND);
	r.vm = "bad name!";
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT);
	r.vm = "vm1";
	r.drive = "vdz";
	mfx_expect_error(t, &r, PK_E_NOT_FOUND);
	r.drive = "../x";
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT);
	r.drive = "vda";
	r.top = t->b;
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT); /* top == base */
	r.top = t->b;
	r.base = t->s1;
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT); /* base above top */
	r.base = ob;
	r.top = t->s1;
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT); /* another image */
	r.base = unknown;
	mfx_expect_error(t, &r, PK_E_NOT_FOUND);
	r.base = "not-a-uuid";
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT);
	r.base = t->b;
	r.image = other_img;
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT); /* drive is another image */
	r.image = NULL;
	r.bandwidth = 1;
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT);
	r.bandwidth = HSM_MERGE_BANDWIDTH_MAX + 1;
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT);
	r.bandwidth = 0;
	r.direction = HSM_MERGE_DIR_PULL; /* a pull needs top = leaf */
	mfx_expect_error(t, &r, PK_E_INVALID_ARGUMENT);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_COMMIT) + fake_virt_calls(FAKE_VIRT_PULL), 0);
	assert_int_equal(atomic_load(&t->spm->updates), 0);
	mfx_assert_chain(t, t->s2, t->s1, t->b);
}

static void test_merge__one_job_per_drive(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_request r = { .vm = "vm1", .drive = "vda", .base = t->s1 };
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT), i;
	struct pk_error err = { PK_OK, "" };
	char id[PK_UUID_BUFLEN] = "";

	mfx_expect_error(t, &r, PK_E_CONFLICT);
	assert_true(hsm_merge_drive_busy(&t->fx->hsm, "vm1", "vda", id));
	assert_string_equal(id, j.id);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	/* Bandwidth while it runs. */
	assert_int_equal(hsm_merge_job_set_bandwidth(&t->fx->hsm, j.id, 1 << 20, &i, &err), 0);
	assert_int_equal(i.bandwidth, 1 << 20);
	assert_int_not_equal(hsm_merge_job_set_bandwidth(&t->fx->hsm, j.id, 5, &i, &err), 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	/* Unknown job ids. */
	assert_int_not_equal(hsm_merge_job_get(&t->fx->hsm, t->b, &i, &err), 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_int_not_equal(hsm_merge_job_abort(&t->fx->hsm, "x", &i, &err), 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
}

static void test_merge__events_published(void **state)
{
	struct mfx *t = *state;
	struct pk_rpc_sub *sub = NULL;
	struct pk_error err = { PK_OK, "" };
	bool done = false, committing = false;

	assert_int_equal(pk_rpc_sub_new(t->events, NULL, &sub, &err), 0);
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT), i;
	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	mfx_wait_state(t, j.id, HSM_MERGE_COMMITTING);
	/*
	 * The subscription reaches the publisher some time after the dial:
	 * events before that are lost. Publish (a bandwidth change) until one
	 * arrives instead of sleeping.
	 */
	for (uint64_t end = mfx_now_ms() + 5000; !committing && mfx_now_ms() < end;) {
		void *msg = NULL;
		size_t len = 0;
		assert_int_equal(hsm_merge_job_set_bandwidth(&t->fx->hsm, j.id, 1 << 20, &i, &err), 0);
		if (pk_rpc_sub_recv(sub, 50, &msg, &len, &err) < 0) {
			continue;
		}
		Pk__Event *ev = pk__event__unpack(NULL, len, msg);
		assert_non_null(ev);
		assert_int_equal(ev->host_id, 2);
		assert_string_equal(ev->job->job_id, j.id);
		committing = ev->job->state == PK__JOB_STATE__COMMITTING;
		pk__event__free_unpacked(ev, NULL);
		free(msg);
	}
	assert_true(committing);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	for (uint64_t end = mfx_now_ms() + 5000; !done && mfx_now_ms() < end;) {
		void *msg = NULL;
		size_t len = 0;
		if (pk_rpc_sub_recv(sub, 500, &msg, &len, &err) < 0) {
			continue;
		}
		Pk__Event *ev = pk__event__unpack(NULL, len, msg);
		assert_non_null(ev);
		assert_int_equal(ev->host_id, 2);
		assert_string_equal(ev->job->job_id, j.id);
		committing |= ev->job->state == PK__JOB_STATE__COMMITTING;
		done = ev->job->state == PK__JOB_STATE__DONE;
		pk__event__free_unpacked(ev, NULL);
		free(msg);
	}
	pk_rpc_sub_free(sub);
	assert_true(committing);
	assert_true(done);
}

static void test_merge__cold_commit_with_qemu_img(void **state)
{
	struct mfx *t = *state;
	char f[512];

	/* Data in S1 that must reach B. */
	mfx_mapper_file(t, t->s1, f, sizeof(f));
	const char *w[] = { "qemu-io", "-f", "qcow2", "-c", "write -q -P 0x5a 1M 1M", f, NULL };
	mfx_run(w);
	assert_int_equal(fake_virt_domain_set_state("vm1", HSM_VIRT_STATE_SHUTOFF), 0);
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);
	assert_int_equal(j.kind, HSM_MERGE_COLD_COMMIT);
	j = mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_true(j.end > 0);
	assert_int_equal(j.cur, j.end);
	/* B holds the data; S2's header names B. */
	mfx_mapper_file(t, t->b, f, sizeof(f));
	const char *rd[] = { "qemu-io", "-f", "raw", "-c", "read -q -P 0x5a 1M 1M", f, NULL };
	mfx_run(rd);
	mfx_mapper_file(t, t->s2, f, sizeof(f));
	struct pk_proc_result res = { 0 };
	const char *info[] = { "qemu-img", "info", "--output=json", f, NULL };
	assert_int_equal(pk_proc_run(info, 30000, &res, NULL), 0);
	assert_non_null(strstr(res.out, t->b));
	assert_null(strstr(res.out, t->s1));
	pk_proc_result_release(&res);
	assert_string_equal(mfx_meta(t, t->s2).parent, t->b);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_ILLEGAL);
	/* A pull needs a running VM. */
	struct hsm_merge_request r = { .vm = "vm1", .drive = "vda", .base = t->b,
				       .direction = HSM_MERGE_DIR_PULL };
	mfx_expect_error(t, &r, PK_E_UNSUPPORTED);
}

static void test_merge__cold_commit_of_the_leaf_switches_the_definition(void **state)
{
	struct mfx *t = *state;
	struct fake_virt_call call;
	char f[512];

	mfx_mapper_file(t, t->s2, f, sizeof(f));
	const char *w[] = { "qemu-io", "-f", "qcow2", "-c", "write -q -P 0x6b 2M 1M", f, NULL };
	mfx_run(w);
	assert_int_equal(fake_virt_domain_set_state("vm1", HSM_VIRT_STATE_SHUTOFF), 0);
	/* The first switch meets libvirtd away: retried, not failed. */
	fake_virt_fail_next(FAKE_VIRT_DISK_SOURCE_SET, PK_E_UNAVAILABLE, "libvirtd away");
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, NULL, HSM_MERGE_DIR_COMMIT);
	assert_int_equal(j.kind, HSM_MERGE_COLD_COMMIT);
	j = mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_DISK_SOURCE_SET), 2);
	/* S1 holds S2's data and is what the VM will open. */
	mfx_mapper_file(t, t->s1, f, sizeof(f));
	const char *rd[] = { "qemu-io", "-f", "qcow2", "-c", "read -q -P 0x6b 2M 1M", f, NULL };
	mfx_run(rd);
	assert_true(fake_virt_last_call(FAKE_VIRT_DISK_SOURCE_SET, &call));
	assert_string_equal(call.disk, "vda");
	mfx_assert_chain(t, t->s1, t->b, NULL); /* probed from S1's header */
	mfx_assert_defined_leaf(t, t->s1);
	assert_int_equal(mfx_meta(t, t->s1).role, PK_VOLUME_LEAF);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_ILLEGAL);
	assert_int_equal(mfx_meta(t, t->s2).role, PK_VOLUME_INTERNAL);
	assert_false(mfx_linked(t, t->s2));
	/* The VM starts on the new chain. */
	assert_int_equal(fake_virt_domain_set_state("vm1", HSM_VIRT_STATE_RUNNING), 0);
	mfx_assert_chain(t, t->s1, t->b, NULL);
}

static void test_merge__cold_leaf_switch_refused_keeps_the_old_leaf(void **state)
{
	struct mfx *t = *state;

	assert_int_equal(fake_virt_domain_set_state("vm1", HSM_VIRT_STATE_SHUTOFF), 0);
	/* As when the VM is started just before the switch. */
	fake_virt_fail_next(FAKE_VIRT_DISK_SOURCE_SET, PK_E_CONFLICT,
			    "VM 'vm1' runs: its disk source changes only while it is shut off");
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, t->s2, HSM_MERGE_DIR_COMMIT);
	j = mfx_wait_state(t, j.id, HSM_MERGE_FAILED);
	assert_int_equal(j.error.code, PK_E_CONFLICT);
	assert_non_null(strstr(j.error.message, "keeps its leaf"));
	mfx_assert_defined_leaf(t, t->s2);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_LEGAL);
	assert_int_equal(mfx_meta(t, t->s2).role, PK_VOLUME_LEAF);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_LEGAL);
	assert_true(mfx_linked(t, t->s2));
	/* Merged again, it finishes. */
	j = mfx_merge(t, t->s1, t->s2, HSM_MERGE_DIR_COMMIT);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	mfx_assert_defined_leaf(t, t->s1);
}

/* A state whose record cannot be written does not take effect: the job stays
 * where it was (in memory and on disk) and goes on once the record can be. */
static void test_merge__unwritable_record_does_not_advance(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT), i;
	char tmp[PATH_MAX], dir[PATH_MAX], name[64], *text = NULL;
	struct pk_error err = { PK_OK, "" };
	size_t len = 0;

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	mfx_wait_state(t, j.id, HSM_MERGE_COMMITTING);
	/* A directory where the write puts its temp file: every write fails (even as root). */
	snprintf(tmp, sizeof(tmp), "%s/merge/.%s.job.tmp", t->settings.state_dir, j.id);
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	/* A window for the job to try (and fail) its CLEANUP record: the
	 * assertion is that nothing happens, so there is no event to wait on. */
	mfx_sleep_ms(1500);
	assert_int_equal(hsm_merge_job_get(&t->fx->hsm, j.id, &i, &err), 0);
	assert_int_equal(i.state, HSM_MERGE_COMMITTING);
	/* Its record still says COMMITTING. */
	snprintf(dir, sizeof(dir), "%s/merge", t->settings.state_dir);
	snprintf(name, sizeof(name), "%s.job", j.id);
	assert_int_equal(pk_statefile_read(dir, name, (void **)&text, &len, &err), 0);
	assert_non_null(strstr(text, "COMMITTING"));
	assert_null(strstr(text, "CLEANUP"));
	free(text);
	/* Nothing of CLEANUP ran: the removed layer is still LEGAL. */
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_LEGAL);
	assert_int_equal(rmdir(tmp), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_ILLEGAL);
}

/* Every write of the job's record fails (even as root): a directory where
 * pk_statefile puts its temp file. The path is written to tmp for rmdir. */
static void record_block(struct mfx *t, const char *id, char *tmp, size_t size)
{
	snprintf(tmp, size, "%s/merge/.%s.job.tmp", t->settings.state_dir, id);
	assert_int_equal(mkdir(tmp, 0700), 0);
}

/* The text of the job's record (free()). */
static char *record_text(struct mfx *t, const char *id)
{
	char dir[PATH_MAX], name[64], *text = NULL;
	struct pk_error err = { PK_OK, "" };
	size_t len = 0;

	snprintf(dir, sizeof(dir), "%s/merge", t->settings.state_dir);
	snprintf(name, sizeof(name), "%s.job", id);
	assert_int_equal(pk_statefile_read(dir, name, (void **)&text, &len, &err), 0);
	return text;
}

/* The old leaf is marked ILLEGAL only once the record says so: with the
 * record unwritable the SPM is not asked, and the job waits in PIVOTING. */
static void test_merge__unwritable_record_keeps_the_leaf_legal(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->s1, NULL, HSM_MERGE_DIR_COMMIT), i;
	struct pk_error err = { PK_OK, "" };
	char tmp[PATH_MAX], dir[PATH_MAX], name[64], *text, *p;
	int updates;

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	mfx_wait_state(t, j.id, HSM_MERGE_COMMITTING);
	/* "Killed" in COMMITTING, the mirror ready; the record is edited into the
	 * one a crash right after the PIVOTING record leaves (no mark yet). */
	hsm_merge_stop(&t->fx->hsm);
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	text = record_text(t, j.id);
	p = strstr(text, "state=COMMITTING\n");
	assert_non_null(p);
	assert_non_null(strstr(text, "leaf_illegal=0\n"));
	memmove(p + strlen("state=PIVOTING"), p + strlen("state=COMMITTING"),
		strlen(p + strlen("state=COMMITTING")) + 1);
	memcpy(p, "state=PIVOTING", strlen("state=PIVOTING"));
	snprintf(dir, sizeof(dir), "%s/merge", t->settings.state_dir);
	snprintf(name, sizeof(name), "%s.job", j.id);
	assert_int_equal(pk_statefile_write(dir, name, text, strlen(text), &err), 0);
	free(text);
	record_block(t, j.id, tmp, sizeof(tmp));
	updates = atomic_load(&t->spm->updates);
	mfx_restart(t);
	/* A window for the resumed job to try (and fail) the record of the mark:
	 * the assertion is that nothing happens, so there is no event to wait on. */
	mfx_sleep_ms(1500);
	assert_int_equal(hsm_merge_job_get(&t->fx->hsm, j.id, &i, &err), 0);
	assert_int_equal(i.state, HSM_MERGE_PIVOTING);
	assert_int_equal(atomic_load(&t->spm->updates), updates);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_LEGAL);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_JOB_ABORT), 0);
	text = record_text(t, j.id);
	assert_non_null(strstr(text, "leaf_illegal=0\n"));
	free(text);
	/* Once the record can be written the step goes on: marked, pivoted. */
	assert_int_equal(rmdir(tmp), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	mfx_assert_chain(t, t->s1, t->b, NULL);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_ILLEGAL);
}

/* JobAbort and JobSetBandwidth answer the error of a record they cannot
 * write, and the job is as it was: not aborting, its bandwidth unchanged
 * (the running block job's too). */
static void test_merge__unwritable_record_refuses_abort_and_bandwidth(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT), i;
	struct pk_error err = { PK_OK, "" };
	struct fake_virt_call call;
	char tmp[PATH_MAX], *text;

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	mfx_wait_state(t, j.id, HSM_MERGE_COMMITTING);
	record_block(t, j.id, tmp, sizeof(tmp));
	assert_true(hsm_merge_job_abort(&t->fx->hsm, j.id, &i, &err) < 0);
	assert_int_not_equal(err.code, PK_OK);
	assert_non_null(strstr(err.message, "not recorded"));
	pk_error_clear(&err);
	assert_true(hsm_merge_job_set_bandwidth(&t->fx->hsm, j.id, 1 << 20, &i, &err) < 0);
	assert_int_not_equal(err.code, PK_OK);
	assert_non_null(strstr(err.message, "not recorded"));
	assert_int_equal(hsm_merge_job_get(&t->fx->hsm, j.id, &i, &err), 0);
	assert_int_equal(i.state, HSM_MERGE_COMMITTING);
	assert_int_equal(i.bandwidth, 0);
	/* The block job was given the new bandwidth, then its old one back. */
	assert_int_equal(fake_virt_calls(FAKE_VIRT_JOB_SET_BANDWIDTH), 2);
	assert_true(fake_virt_last_call(FAKE_VIRT_JOB_SET_BANDWIDTH, &call));
	assert_int_equal(call.bandwidth, 0);
	text = record_text(t, j.id);
	assert_non_null(strstr(text, "abort=0\n"));
	assert_non_null(strstr(text, "bandwidth=0\n"));
	free(text);
	/* Not aborted: it merges once the block job completes. */
	assert_int_equal(rmdir(tmp), 0);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_ILLEGAL);
}

/* ---- a capped active commit under a faster writer (hsm/merge_progress.c) ----------------- */

#define CONV_CAP (2u << 20)            /* --bandwidth 2M */
#define CONV_GUEST 3774873u            /* a guest writing 3.6 MiB/s */
#define CONV_REGION (32u << 20)        /* ... over 32 MiB it rewrites */

/* An active commit limited to 2 MiB/s of S2 into S1, under the guest. */
static struct hsm_merge_job_info conv_start(struct mfx *t, bool keep_cap)
{
	struct hsm_merge_request req = { .vm = "vm1", .drive = "vda", .base = t->s1,
					 .bandwidth = CONV_CAP };
	struct hsm_merge_job_info j;
	struct pk_error err = { PK_OK, "" };

	t->merge.keep_cap = keep_cap;
	t->merge.converge_window_ms = 1000;
	mfx_merge_restart(t);
	assert_int_equal(fake_virt_guest_writes("vm1", "vda", CONV_GUEST, CONV_REGION), 0);
	assert_int_equal(hsm_merge_begin(&t->fx->hsm, &req, &j, &err), 0);
	assert_int_equal(j.kind, HSM_MERGE_ACTIVE_COMMIT);
	return j;
}

/* Waits (10 s) until the job says it does not converge. */
static struct hsm_merge_job_info conv_wait_verdict(struct mfx *t, const char *id)
{
	struct hsm_merge_job_info i = { 0 };
	struct pk_error err = { PK_OK, "" };

	for (uint64_t end = mfx_now_ms() + 10000; mfx_now_ms() < end; mfx_sleep_ms(20)) {
		assert_int_equal(hsm_merge_job_get(&t->fx->hsm, id, &i, &err), 0);
		if (i.convergence == HSM_MERGE_CONVERGENCE_NOT_CONVERGING) {
			return i;
		}
		assert_false(hsm_merge_state_final(i.state));
	}
	fail_msg("job %s never said it does not converge (state %s)", id,
		 hsm_merge_state_name(i.state));
	return i;
}

/* The guest's rate measured within 10 %. */
static void conv_assert_rate(const struct hsm_merge_job_info *i)
{
	assert_true(i->guest_rate > CONV_GUEST - CONV_GUEST / 10);
	assert_true(i->guest_rate < CONV_GUEST + CONV_GUEST / 10);
}

/* By default: not converging, the limit lifted for the last pass (recorded),
 * the job finishes and says why it was slow, in JobGet and its event. */
static void test_merge__capped_commit_lifts_the_cap_for_the_last_pass(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = conv_start(t, false), i;
	struct fake_virt_call call;
	void *buf = NULL;
	size_t len = 0;
	char *text;

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_true(fake_virt_last_call(FAKE_VIRT_COMMIT, &call));
	assert_int_equal(call.bandwidth, CONV_CAP);
	i = mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(i.convergence, HSM_MERGE_CONVERGENCE_NOT_CONVERGING);
	assert_true(i.cap_lifted);
	assert_int_equal(i.bandwidth, CONV_CAP); /* what was asked stays shown */
	conv_assert_rate(&i);
	assert_non_null(strstr(i.note, "not converging: the guest writes 3."));
	assert_non_null(strstr(i.note, "MiB/s, the limit of 2.0 MiB/s was lifted for the last "
				       "pass"));
	/* The block job was told: unlimited. */
	assert_true(fake_virt_last_call(FAKE_VIRT_JOB_SET_BANDWIDTH, &call));
	assert_int_equal(call.bandwidth, 0);
	mfx_assert_chain(t, t->s1, t->b, NULL);
	text = record_text(t, j.id);
	assert_non_null(strstr(text, "cap_lifted=1\n"));
	free(text);
	/* The event carries it as JobGet does. */
	assert_int_equal(hsm_merge_event_encode(&i, 1, 2, &buf, &len), 0);
	Pk__Event *ev = pk__event__unpack(NULL, len, buf);
	assert_non_null(ev);
	assert_int_equal(ev->job->convergence, PK__JOB_CONVERGENCE__NOT_CONVERGING);
	assert_true(ev->job->cap_lifted);
	assert_int_equal(ev->job->guest_write_rate, i.guest_rate);
	assert_string_equal(ev->job->note, i.note);
	pk__event__free_unpacked(ev, NULL);
	free(buf);
}

/* merge_uncap_last_pass = false: it keeps the limit and keeps saying why it
 * does not finish; a limit raised by hand lets it finish. */
static void test_merge__capped_commit_keeps_the_cap_when_told(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j = conv_start(t, true), i;
	struct pk_error err = { PK_OK, "" };

	i = conv_wait_verdict(t, j.id);
	mfx_sleep_ms(1500); /* three more samples: still so, and nothing lifted */
	assert_int_equal(hsm_merge_job_get(&t->fx->hsm, j.id, &i, &err), 0);
	assert_int_equal(i.state, HSM_MERGE_COMMITTING);
	assert_int_equal(i.convergence, HSM_MERGE_CONVERGENCE_NOT_CONVERGING);
	assert_false(i.cap_lifted);
	conv_assert_rate(&i);
	assert_non_null(strstr(i.note, "not converging: the guest writes 3."));
	assert_non_null(strstr(i.note, "MiB/s, the limit is 2.0 MiB/s"));
	assert_int_equal(fake_virt_calls(FAKE_VIRT_JOB_SET_BANDWIDTH), 0);
	assert_true(i.cur + 1 < i.end);
	/* Raised by hand to 8 MiB/s: a new verdict, and READY. */
	assert_int_equal(hsm_merge_job_set_bandwidth(&t->fx->hsm, j.id, 8u << 20, &i, &err), 0);
	assert_int_equal(i.convergence, HSM_MERGE_CONVERGENCE_NOT_CONVERGING); /* not judged yet */
	i = mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_false(i.cap_lifted);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_JOB_SET_BANDWIDTH), 1);
}

/* The lift is recorded before the block job is told: when telling it fails
 * it is told again; a block job started again after the lift (the pivot
 * did not happen) runs unlimited. */
static void test_merge__lifted_cap_survives_a_failed_call_and_a_new_block_job(void **state)
{
	struct mfx *t = *state;
	struct hsm_merge_job_info j;
	struct fake_virt_call call;

	fake_virt_set_manual_pivot(true);
	fake_virt_fail_next(FAKE_VIRT_JOB_SET_BANDWIDTH, PK_E_UNAVAILABLE, "cannot reach qemu");
	j = conv_start(t, false);
	mfx_wait_calls(FAKE_VIRT_JOB_SET_BANDWIDTH, 2);
	assert_true(fake_virt_last_call(FAKE_VIRT_JOB_SET_BANDWIDTH, &call));
	assert_int_equal(call.bandwidth, 0);
	/* Unlimited, the mirror gets in sync: the pivot is asked, then dropped. */
	mfx_wait_state(t, j.id, HSM_MERGE_PIVOTING);
	mfx_wait_calls(FAKE_VIRT_JOB_ABORT, 1);
	assert_int_equal(fake_virt_pivot_show("vm1", "vda", FAKE_VIRT_PIVOT_DROPPED), 0);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 2);
	assert_true(fake_virt_last_call(FAKE_VIRT_COMMIT, &call));
	assert_int_equal(call.bandwidth, 0);
	mfx_wait_calls(FAKE_VIRT_JOB_ABORT, 2);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	struct hsm_merge_job_info i = mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	fake_virt_set_manual_pivot(false);
	assert_true(i.cap_lifted);
	assert_non_null(strstr(i.note, "was lifted for the last pass"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_merge__internal_commit, mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__active_commit_extends_and_pivots, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__failed_pivot_restores_legal_and_retries,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__pull, mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__abort_cancels_and_keeps_chain, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__block_job_failure_is_clean, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__vm_stopped_mid_commit, mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__lost_events_reconciled_after_reconnect,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__resumed_after_restart, mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__resumed_in_pivoting_after_pivot, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__slow_pivot_is_waited_for, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__job_gone_before_the_new_chain, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__job_gone_with_the_old_chain_commits_again,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__neither_chain_fails_with_the_leaf_legal,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__resumed_in_pivoting_mid_pivot, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__failed_record_after_a_pivot_is_finished,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(
			test_merge__failed_record_before_a_pivot_restores_the_leaf, mfx_setup,
			mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__done_in_qemu_only_cleans_up, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__cleanup_retries_transient_spm_errors,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__unwritable_record_keeps_the_leaf_legal,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(
			test_merge__unwritable_record_refuses_abort_and_bandwidth, mfx_setup,
			mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__unwritable_record_does_not_advance,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__cleanup_waits_for_the_spm, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__extending_waits_for_the_spm, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__spm_wait_has_a_limit, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__bad_input, mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__one_job_per_drive, mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__events_published, mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__capped_commit_lifts_the_cap_for_the_last_pass,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__capped_commit_keeps_the_cap_when_told,
						mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(
			test_merge__lifted_cap_survives_a_failed_call_and_a_new_block_job, mfx_setup,
			mfx_teardown),
		cmocka_unit_test_setup_teardown(test_merge__cold_commit_with_qemu_img, mfx_setup,
						mfx_teardown),
		cmocka_unit_test_setup_teardown(
			test_merge__cold_commit_of_the_leaf_switches_the_definition, mfx_setup, mfx_teardown),
		cmocka_unit_test_setup_teardown(
			test_merge__cold_leaf_switch_refused_keeps_the_old_leaf, mfx_setup, mfx_teardown),
	};

	pk_log_setup("test_merge", getenv("PK_TEST_DEBUG") ? PK_LOG_DEBUG : PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
