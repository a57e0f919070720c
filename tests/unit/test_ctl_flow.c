/*
 * pkctl's engine flows (ctl/flow_*.c) against the test hsmd of
 * tests/lib/merge_fixture.h, served over nng in this process, and the
 * in-process SPM (tests/lib/spm_fixture.h): the chain B <- S1 <- S2 (leaf)
 * under the running VM "vm1". A delete that merges runs on a thread of its
 * own while the test plays libvirt's block job (progress, ready, complete).
 *
 * Covered: deleting an internal layer (commit) and the leaf (active commit
 * and pivot), re-running a delete whose merge is done (the orphan is only
 * deleted) and one whose deletion is done (already deleted; the command's
 * exit status and JSON), an unknown id (NOT_FOUND), two deletes of one
 * volume at once, an orphan left LEGAL while its merge job runs (followed,
 * then deleted), a delete refused (CONFLICT: another job on the drive)
 * that changes nothing, a live snapshot of the VM.
 */
/* pk-test-fakes: fake_lvm fake_virt */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/rpc.h"
#include "common/xalloc.h"
#include "ctl/ctl.h"
#include "ctl/flow.h"
#include "hsm/hsm.h"
#include "hsm/merge.h"
#include "hsm/rpc.h"
#include "proto/spm_client.h"
#include "tests/lib/merge_fixture.h"
#include "tests/lib/rpc_fixture.h"

struct cf {
	struct mfx *m;
	struct rpc_fixture *hsm_srv;
	struct pk_dispatcher d;
	char hsm_url[256];
	struct ctl ctl;
};

/* What the delete thread saw and ended with. */
struct del_run {
	struct cf *cf;
	struct ctl_snapshot_delete_opts o;
	struct ctl_snapshot_delete_result res;
	struct pk_error err;
	int r;
	atomic_int jobs_seen;   /* report->job calls */
	atomic_int done_seen;   /* ... with state DONE */
	pthread_t thread;
};

static void on_job(void *ctx, const Pk__JobInfo *j)
{
	struct del_run *d = ctx;

	atomic_fetch_add(&d->jobs_seen, 1);
	if (j->state == PK__JOB_STATE__DONE) {
		atomic_fetch_add(&d->done_seen, 1);
	}
}

static void *del_thread(void *arg)
{
	struct del_run *d = arg;
	struct ctl_flow_report rep = { .job = on_job, .ctx = d };

	d->r = ctl_flow_snapshot_delete(&d->cf->ctl, &d->o, &rep, &d->res, &d->err);
	return NULL;
}

static void del_start(struct cf *cf, struct del_run *d, const char *volume)
{
	memset(d, 0, sizeof(*d));
	d->cf = cf;
	d->o.vm = "vm1";
	d->o.volume = volume;
	d->o.direction = PK__MERGE_DIRECTION__MERGE_COMMIT;
	pk_error_clear(&d->err);
	assert_int_equal(pthread_create(&d->thread, NULL, del_thread, d), 0);
}

static void del_join(struct del_run *d)
{
	assert_int_equal(pthread_join(d->thread, NULL), 0);
}

static int setup(void **state)
{
	struct cf *cf = pk_xcalloc(1, sizeof(*cf));
	void *ms = NULL;

	mfx_setup(&ms);
	cf->m = ms;
	snprintf(cf->hsm_url, sizeof(cf->hsm_url), "ipc://%s/hsm.sock", cf->m->fx->tmp);
	cf->d.verbs = hsm_verbs;
	cf->d.nverbs = hsm_nverbs;
	cf->d.ctx = &cf->m->fx->hsm;
	cf->d.info = &cf->m->fx->hsm.info;
	cf->d.max_msg = PK_MAX_MESSAGE_DEFAULT;
	cf->hsm_srv = rpc_fixture_start(cf->hsm_url, &cf->d);
	cf->ctl.hsm_url = cf->hsm_url;
	cf->ctl.spm_url = cf->m->spm->url;
	cf->ctl.timeout_ms = 20000;
	*state = cf;
	return 0;
}

static int teardown(void **state)
{
	struct cf *cf = *state;
	void *ms = cf->m;

	pk_rpc_client_free(cf->ctl.hsm);
	pk_spm_client_free(cf->ctl.spm);
	rpc_fixture_stop(cf->hsm_srv);
	mfx_teardown(&ms);
	free(cf);
	return 0;
}

static bool volume_exists(struct cf *cf, const char *id)
{
	struct pk_volume_meta m;
	struct pk_error err = { PK_OK, "" };

	if (spm_fixture_meta(cf->m->fx, id, &m, NULL, &err) == 0) {
		return true;
	}
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	return false;
}

static void assert_result_chain(const struct ctl_snapshot_delete_result *res, const char *a,
				const char *b)
{
	assert_non_null(res->chain);
	assert_int_equal(res->chain->n_metadata_chain, 2);
	assert_string_equal(res->chain->metadata_chain[0], a);
	assert_string_equal(res->chain->metadata_chain[1], b);
}

/* ---- cases ------------------------------------------------------------------------------- */

static void test_ctl_flow__delete_internal_layer_commits_then_deletes(void **state)
{
	struct cf *cf = *state;
	struct mfx *t = cf->m;
	struct del_run d;

	del_start(cf, &d, t->s1);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_int_equal(fake_virt_job_progress("vm1", "vda", 20, 40), 0);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	del_join(&d);
	if (d.r < 0) {
		fail_msg("%s: %s", pk_errc_name(d.err.code), d.err.message);
	}
	assert_string_equal(d.res.how, "commit");
	assert_string_equal(d.res.volume, t->s1);
	assert_string_equal(d.res.drive, "vda");
	assert_non_null(d.res.job);
	assert_int_equal(d.res.job->state, PK__JOB_STATE__DONE);
	assert_string_equal(d.res.job->base_id, t->b);
	assert_true(atomic_load(&d.jobs_seen) >= 1);
	assert_true(atomic_load(&d.done_seen) >= 1);
	assert_result_chain(&d.res, t->s2, t->b);
	mfx_assert_chain(t, t->s2, t->b, NULL);
	assert_false(volume_exists(cf, t->s1));
	assert_int_equal(atomic_load(&t->spm->deletes), 1);
	assert_string_equal(mfx_meta(t, t->s2).parent, t->b);
	ctl_snapshot_delete_result_release(&d.res);
}

static void test_ctl_flow__delete_leaf_active_commit_and_pivot(void **state)
{
	struct cf *cf = *state;
	struct mfx *t = cf->m;
	struct del_run d;

	del_start(cf, &d, t->s2);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	del_join(&d);
	if (d.r < 0) {
		fail_msg("%s: %s", pk_errc_name(d.err.code), d.err.message);
	}
	assert_string_equal(d.res.how, "active commit");
	assert_non_null(d.res.job);
	assert_int_equal(d.res.job->kind, PK__JOB_KIND__ACTIVE_COMMIT);
	assert_int_equal(d.res.job->state, PK__JOB_STATE__DONE);
	assert_result_chain(&d.res, t->s1, t->b);
	mfx_assert_chain(t, t->s1, t->b, NULL);
	assert_false(volume_exists(cf, t->s2));
	assert_int_equal(mfx_meta(t, t->s1).role, PK_VOLUME_LEAF);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_LEGAL);
	ctl_snapshot_delete_result_release(&d.res);
}

/* The merge ran (an earlier run's), the deletion did not: a re-run only deletes. */
static void test_ctl_flow__rerun_deletes_the_merged_orphan(void **state)
{
	struct cf *cf = *state;
	struct mfx *t = cf->m;
	struct ctl_snapshot_delete_opts o = { .vm = "vm1", .volume = t->s1 };
	struct ctl_snapshot_delete_result res;
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_ILLEGAL);
	if (ctl_flow_snapshot_delete(&cf->ctl, &o, NULL, &res, &err) < 0) {
		fail_msg("%s: %s", pk_errc_name(err.code), err.message);
	}
	assert_string_equal(res.how, "already merged");
	assert_null(res.job);
	assert_result_chain(&res, t->s2, t->b);
	assert_false(volume_exists(cf, t->s1));
	assert_int_equal(fake_virt_calls(FAKE_VIRT_COMMIT), 1); /* no second merge */
	ctl_snapshot_delete_result_release(&res);
	/* Once more: nothing left to delete, and that is what was asked for. */
	if (ctl_flow_snapshot_delete(&cf->ctl, &o, NULL, &res, &err) < 0) {
		fail_msg("%s: %s", pk_errc_name(err.code), err.message);
	}
	assert_true(res.already_deleted);
	assert_string_equal(res.how, "already deleted");
	assert_result_chain(&res, t->s2, t->b);
	assert_int_equal(atomic_load(&t->spm->deletes), 1); /* no second DeleteVolume */
	ctl_snapshot_delete_result_release(&res);
}

/* Runs `pkctl --json snapshot delete --vm vm1 --volume id`; *out: its stdout (caller frees). */
static int run_delete_command(struct cf *cf, const char *id, char **out)
{
	char path[512], *argv[] = { "snapshot", "delete", "--vm", "vm1", "--volume", (char *)id,
				    "--no-progress", NULL };
	int saved, fd, rc;
	FILE *f;
	long len;

	snprintf(path, sizeof(path), "%s/ctl-out.json", cf->m->fx->tmp);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	assert_true(dup2(fd, STDOUT_FILENO) >= 0);
	close(fd);
	cf->ctl.json = true;
	rc = ctl_cmd_snapshot(&cf->ctl, 7, argv);
	cf->ctl.json = false;
	fflush(stdout);
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	f = fopen(path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	*out = pk_xcalloc((size_t)len + 1, 1);
	assert_int_equal(fread(*out, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return rc;
}

/* A delete of a volume deleted before: exit 0 and the JSON of a delete, saying so. */
static void test_ctl_flow__already_deleted_exits_0_with_the_json(void **state)
{
	struct cf *cf = *state;
	struct mfx *t = cf->m;
	struct del_run d;
	char *out = NULL;

	del_start(cf, &d, t->s1);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	del_join(&d);
	if (d.r < 0) {
		fail_msg("%s: %s", pk_errc_name(d.err.code), d.err.message);
	}
	assert_false(d.res.already_deleted);
	ctl_snapshot_delete_result_release(&d.res);
	assert_int_equal(run_delete_command(cf, t->s1, &out), CTL_EXIT_OK);
	assert_non_null(strstr(out, "\"how\":\"already deleted\""));
	assert_non_null(strstr(out, "\"deleted\":true"));
	assert_non_null(strstr(out, "\"volume_id\""));
	assert_non_null(strstr(out, "\"chain\""));
	assert_null(strstr(out, "\"error\""));
	free(out);
	assert_int_equal(atomic_load(&t->spm->deletes), 1);
}

/* An id that no image holds and no merge removed (a typo): NOT_FOUND, and it says so. */
static void test_ctl_flow__unknown_volume_is_not_found(void **state)
{
	struct cf *cf = *state;
	char typo[PK_UUID_BUFLEN];
	struct ctl_snapshot_delete_opts o = { .vm = "vm1", .volume = typo };
	struct ctl_snapshot_delete_result res;
	struct pk_error err = { PK_OK, "" };
	char *out = NULL;

	pk_uuid_generate(typo);
	assert_true(ctl_flow_snapshot_delete(&cf->ctl, &o, NULL, &res, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, typo));
	assert_non_null(strstr(err.message, "check the id"));
	assert_int_equal(run_delete_command(cf, typo, &out), CTL_EXIT_FAILED);
	assert_non_null(strstr(out, "NOT_FOUND"));
	free(out);
	assert_int_equal(atomic_load(&cf->m->spm->deletes), 0);
}

static void wait_seen(struct del_run *d)
{
	for (int i = 0; i < 2000 && atomic_load(&d->jobs_seen) == 0; i++) {
		mfx_sleep_ms(10);
	}
	assert_true(atomic_load(&d->jobs_seen) > 0);
}

/* Two engines delete the same snapshot at once: both succeed, one of them "already deleted". */
static void test_ctl_flow__two_deletes_of_one_volume_both_succeed(void **state)
{
	struct cf *cf = *state;
	struct mfx *t = cf->m;
	struct cf other = *cf;
	struct del_run d1, d2;

	/* Each engine its own connections. */
	other.ctl.hsm = NULL;
	other.ctl.spm = NULL;
	del_start(cf, &d1, t->s1);
	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	del_start(&other, &d2, t->s1);
	wait_seen(&d2); /* it follows the first one's job */
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	del_join(&d1);
	del_join(&d2);
	if (d1.r < 0 || d2.r < 0) {
		fail_msg("%s: %s / %s: %s", pk_errc_name(d1.err.code), d1.err.message,
			 pk_errc_name(d2.err.code), d2.err.message);
	}
	assert_true(d1.res.already_deleted != d2.res.already_deleted);
	assert_string_equal((d1.res.already_deleted ? d1 : d2).res.how, "already deleted");
	assert_string_equal((d1.res.already_deleted ? d2 : d1).res.how, "commit");
	assert_result_chain(&d1.res, t->s2, t->b);
	assert_result_chain(&d2.res, t->s2, t->b);
	assert_false(volume_exists(cf, t->s1));
	assert_int_equal(fake_virt_calls(FAKE_VIRT_COMMIT), 1);
	ctl_snapshot_delete_result_release(&d1.res);
	ctl_snapshot_delete_result_release(&d2.res);
	pk_rpc_client_free(other.ctl.hsm);
	pk_spm_client_free(other.ctl.spm);
}

/*
 * The metadata half written (the child moved, the orphan still LEGAL, as
 * an SPM that crashed between two commits leaves it) while the merge job
 * is unfinished: the delete follows the job and then deletes.
 */
static void test_ctl_flow__legal_orphan_of_a_running_merge_waits_for_it(void **state)
{
	struct cf *cf = *state;
	struct mfx *t = cf->m;
	struct pk_spm_client *sc = NULL;
	struct pk_spm_meta_update u = { .set_parent = true, .parent = t->b };
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);
	struct del_run d;

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_int_equal(pk_spm_client_new(t->spm->url, &sc, &err), 0);
	assert_int_equal(pk_spm_client_update_volume_meta(sc, t->fx->domain, t->img, t->s2, &u,
							  5000, &err), 0);
	pk_spm_client_free(sc);
	assert_int_equal(mfx_meta(t, t->s1).legality, PK_VOLUME_LEGAL);
	del_start(cf, &d, t->s1);
	wait_seen(&d);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	del_join(&d);
	if (d.r < 0) {
		fail_msg("%s: %s", pk_errc_name(d.err.code), d.err.message);
	}
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_string_equal(d.res.how, "already merged");
	assert_false(d.res.already_deleted);
	assert_result_chain(&d.res, t->s2, t->b);
	assert_false(volume_exists(cf, t->s1));
	assert_int_equal(fake_virt_calls(FAKE_VIRT_COMMIT), 1);
	ctl_snapshot_delete_result_release(&d.res);
}

/* Another job runs on the drive: CONFLICT, and nothing changes. */
static void test_ctl_flow__delete_refused_changes_nothing(void **state)
{
	struct cf *cf = *state;
	struct mfx *t = cf->m;
	struct ctl_snapshot_delete_opts o = { .vm = "vm1", .volume = t->s2 };
	struct ctl_snapshot_delete_result res;
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_job_info j = mfx_merge(t, t->b, t->s1, HSM_MERGE_DIR_COMMIT);

	mfx_wait_calls(FAKE_VIRT_COMMIT, 1);
	assert_true(ctl_flow_snapshot_delete(&cf->ctl, &o, NULL, &res, &err) < 0);
	assert_int_equal(err.code, PK_E_CONFLICT);
	assert_true(strlen(err.message) > 10);
	assert_int_equal(atomic_load(&t->spm->deletes), 0);
	assert_int_equal(fake_virt_calls(FAKE_VIRT_COMMIT), 1);
	mfx_assert_chain(t, t->s2, t->s1, t->b);
	assert_int_equal(mfx_meta(t, t->s2).role, PK_VOLUME_LEAF);
	assert_int_equal(mfx_meta(t, t->s2).legality, PK_VOLUME_LEGAL);
	assert_true(volume_exists(cf, t->s2));
	/* The other job ends as it would have. */
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	mfx_wait_state(t, j.id, HSM_MERGE_DONE);
	assert_true(volume_exists(cf, t->s2));
}

static void test_ctl_flow__snapshot_create_adds_a_leaf(void **state)
{
	struct cf *cf = *state;
	struct mfx *t = cf->m;
	struct ctl_snapshot_create_opts o = { .vm = "vm1" };
	struct ctl_snapshot_create_result res;
	struct pk_error err = { PK_OK, "" };
	char leaf[PK_UUID_BUFLEN];

	if (ctl_flow_snapshot_create(&cf->ctl, &o, NULL, &res, &err) < 0) {
		fail_msg("%s: %s", pk_errc_name(err.code), err.message);
	}
	assert_int_equal(res.n, 1);
	assert_string_equal(res.items[0].drive->target, "vda");
	assert_string_equal(res.items[0].old_leaf, t->s2);
	assert_string_equal(res.warnings, "");
	snprintf(leaf, sizeof(leaf), "%s", res.items[0].new_id);
	assert_non_null(res.vm);
	assert_int_equal(res.vm->n_drives, 1);
	assert_string_equal(res.vm->drives[0]->live_chain[0], leaf);
	ctl_snapshot_create_result_release(&res);
	/* The new leaf over S2, S2 an internal layer now. */
	struct pk_volume_meta m = mfx_meta(t, leaf);
	assert_string_equal(m.parent, t->s2);
	assert_int_equal(m.role, PK_VOLUME_LEAF);
	assert_int_equal(m.format, PK_VOLUME_COW);
	assert_int_equal(mfx_meta(t, t->s2).role, PK_VOLUME_INTERNAL);
	assert_int_equal(atomic_load(&t->spm->creates), 1);
	assert_true(mfx_linked(t, leaf));
	/* A drive the VM lacks: refused before anything is made. */
	o.drives = "vdz";
	assert_true(ctl_flow_snapshot_create(&cf->ctl, &o, NULL, &res, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_int_equal(atomic_load(&t->spm->creates), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_ctl_flow__delete_internal_layer_commits_then_deletes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_flow__delete_leaf_active_commit_and_pivot,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_flow__rerun_deletes_the_merged_orphan, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ctl_flow__delete_refused_changes_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ctl_flow__already_deleted_exits_0_with_the_json,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_flow__unknown_volume_is_not_found, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ctl_flow__two_deletes_of_one_volume_both_succeed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_ctl_flow__legal_orphan_of_a_running_merge_waits_for_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_flow__snapshot_create_adds_a_leaf, setup,
						teardown),
	};

	pk_log_setup("test_ctl_flow", getenv("PK_TEST_DEBUG") ? PK_LOG_DEBUG : PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
