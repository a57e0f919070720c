/*
 * spmd's metadata changes of several volumes in one call
 * (spm_volumes_update, UpdateVolumeMeta with changes) and the ImageChain
 * read beside them, against the LVM and sanlock fakes: the chain
 * B <- S1 <- S2 (leaf) and the cleanup of a merge of S1 into B (S2 onto B,
 * S1 an ILLEGAL orphan). A reader of the chain must see it before or
 * after, never the child moved while the orphan is still LEGAL.
 */
/* pk-test-fakes: fake_lvm fake_sanlock */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/arena.h"
#include "common/daemon.h"
#include "common/locks.h"
#include "common/log.h"
#include "common/lvm.h"
#include "proto/codec.h"
#include "spm/domain.h"
#include "spm/rpc.h"
#include "spm/spm.h"
#include "spm/volume.h"
#include "tests/fakes/fake_lvm.h"
#include "tests/fakes/fake_sanlock.h"

#define DOMAIN "11111111-2222-4333-8444-555555555555"
#define IMAGE "aaaaaaaa-2222-4333-8444-555555555555"
#define BASE "bbbbbbbb-2222-4333-8444-555555555555"
#define S1 "cccccccc-2222-4333-8444-555555555555"
#define S2 "dddddddd-2222-4333-8444-555555555555"
#define UNKNOWN "eeeeeeee-2222-4333-8444-555555555555"

struct fixture {
	char dir[64];
	struct pk_config cfg;
	struct spm spm;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pk_error err;
	char state_opt[128], run_opt[128];
	char *argv[] = { "spmd", "-o", "host_id=1", "-o", "lvm_devices=/dev/fakepv1", "-o",
			 "activation=dm", "-o", state_opt, "-o", run_opt, "-o", "log_level=error",
			 NULL };
	const char *pvs[] = { "/dev/fakepv1" };
	struct spm_domain_info info;
	struct spm_role_status st;

	fake_lvm_reset();
	fake_sanlock_reset();
	fake_lvm_set_pv_size("/dev/fakepv1", 4ull << 30);
	snprintf(f->dir, sizeof(f->dir), "/tmp/pk-test-spmchain-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(state_opt, sizeof(state_opt), "state_dir=%s/state", f->dir);
	snprintf(run_opt, sizeof(run_opt), "run_dir=%s/run", f->dir);
	assert_int_equal(pk_daemon_setup("spm", 13, argv, &f->cfg, &err), 0);
	assert_int_equal(spm_init(&f->spm, &f->cfg, &err), 0);
	if (spm_domain_create(&f->spm, DOMAIN, pvs, 1, "test", &info, &err) < 0) {
		fail_msg("domain create: %s", err.message);
	}
	assert_int_equal(spm_role_start(&f->spm, DOMAIN, &st, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	spm_release(&f->spm);
	pk_config_release(&f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0) {
		return -1;
	}
	free(f);
	return 0;
}

/* A LEGAL volume of IMAGE made directly in the fake LVM (no qemu-img for COW). */
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

/* B <- S1 <- S2, made behind the SPM's back: its view is dropped. */
static void make_chain(struct fixture *f)
{
	volume_add(f, BASE, NULL, PK_VOLUME_RAW, PK_VOLUME_INTERNAL);
	volume_add(f, S1, BASE, PK_VOLUME_COW, PK_VOLUME_INTERNAL);
	volume_add(f, S2, S1, PK_VOLUME_COW, PK_VOLUME_LEAF);
	spm_volume_cache_invalidate(&f->spm);
}

/* The cleanup of a merge of S1 into B (forward) or its reverse (back to the chain). */
static void cleanup_changes(struct spm_volume_change c[2], bool forward)
{
	memset(c, 0, 2 * sizeof(*c));
	if (forward) {
		c[0].volume = S2;
		c[0].u.set_parent = true;
		c[0].u.parent = BASE;
		c[1].volume = S1;
		c[1].u.role = PK_VOLUME_INTERNAL;
		c[1].u.legality = PK_VOLUME_ILLEGAL;
	} else {
		c[0].volume = S1;
		c[0].u.legality = PK_VOLUME_LEGAL;
		c[1].volume = S2;
		c[1].u.set_parent = true;
		c[1].u.parent = S1;
	}
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

/* 0: the chain before the cleanup, 1: after it, -1: anything else (printed). */
static int chain_state(const struct spm_chain *c)
{
	if (c->n == 3 && c->norphans == 0 && !strcmp(c->chain[0].id, S2) &&
	    !strcmp(c->chain[1].id, S1) && c->chain[1].meta.legality == PK_VOLUME_LEGAL) {
		return 0;
	}
	if (c->n == 2 && c->norphans == 1 && !strcmp(c->chain[0].id, S2) &&
	    !strcmp(c->chain[1].id, BASE) && !strcmp(c->orphans[0].id, S1) &&
	    c->orphans[0].meta.legality == PK_VOLUME_ILLEGAL) {
		return 1;
	}
	print_message("chain of %zu, %zu orphan(s)%s%s\n", c->n, c->norphans,
		      c->norphans ? ", orphan legality " : "",
		      c->norphans ? pk_volume_legality_name(c->orphans[0].meta.legality) : "");
	return -1;
}

/* ---- cases ------------------------------------------------------------------------------- */

static void test_spm_chain_update__changes_apply_together(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_change c[2];
	struct spm_volume out[2];
	struct spm_chain chain;
	struct pk_error err;

	make_chain(f);
	cleanup_changes(c, true);
	if (spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, out, &err) < 0) {
		fail_msg("%s", err.message);
	}
	assert_string_equal(out[0].id, S2);
	assert_string_equal(out[0].meta.parent, BASE);
	assert_int_equal(out[0].meta.generation, 2);
	assert_string_equal(out[1].id, S1);
	assert_int_equal(out[1].meta.legality, PK_VOLUME_ILLEGAL);
	assert_int_equal(out[1].meta.generation, 2);
	assert_int_equal(spm_image_chain(&f->spm, DOMAIN, IMAGE, &chain, &err), 0);
	assert_int_equal(chain_state(&chain), 1);
	spm_chain_release(&chain);
	/* The same call again changes nothing and writes nothing. */
	int tags_before = fake_lvm_calls(FAKE_LVM_LV_TAGS);
	assert_int_equal(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, out, &err), 0);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), tags_before);
	assert_int_equal(out[0].meta.generation, 2);
	assert_int_equal(meta_of(f, S1).generation, 2);
}

static void test_spm_chain_update__a_bad_change_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_change c[2];
	struct pk_error err;
	int tags_before;

	make_chain(f);
	tags_before = fake_lvm_calls(FAKE_LVM_LV_TAGS);
	/* The second change names a stale generation: the first is not written either. */
	cleanup_changes(c, true);
	c[1].u.expected_generation = 7;
	assert_true(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_CONFLICT);
	/* A volume outside the image. */
	cleanup_changes(c, true);
	c[1].volume = UNKNOWN;
	assert_true(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	/* A volume named twice, REMOVING asked for, an empty change, no change at all. */
	cleanup_changes(c, true);
	c[1].volume = S2;
	assert_true(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	cleanup_changes(c, true);
	c[1].u.legality = PK_VOLUME_REMOVING;
	assert_true(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	cleanup_changes(c, true);
	memset(&c[1].u, 0, sizeof(c[1].u));
	assert_true(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_true(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 0, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), tags_before);
	assert_string_equal(meta_of(f, S2).parent, S1);
	assert_int_equal(meta_of(f, S1).legality, PK_VOLUME_LEGAL);
}

/*
 * What an SPM crash between the two LVM commits leaves: the child moved,
 * the orphan still LEGAL (readers of storage see that until the call runs
 * again). The same call finishes it, writing only what is missing; a
 * write that fails on the way changes nothing more.
 */
static void test_spm_chain_update__partly_written_call_is_finished_by_a_rerun(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_change c[2];
	struct spm_chain chain;
	struct pk_error err;
	int tags_before;

	make_chain(f);
	cleanup_changes(c, true);
	/* The first commit only, as a crash after it leaves storage. */
	assert_int_equal(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 1, NULL, &err), 0);
	assert_int_equal(spm_image_chain(&f->spm, DOMAIN, IMAGE, &chain, &err), 0);
	assert_int_equal(chain.n, 2);
	assert_int_equal(chain.norphans, 1);
	assert_string_equal(chain.orphans[0].id, S1);
	assert_int_equal(chain.orphans[0].meta.legality, PK_VOLUME_LEGAL);
	spm_chain_release(&chain);
	tags_before = fake_lvm_calls(FAKE_LVM_LV_TAGS);
	fake_lvm_fail_op(FAKE_LVM_LV_TAGS, -EIO);
	assert_true(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, NULL, &err) < 0);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), tags_before + 1);
	assert_int_equal(meta_of(f, S1).legality, PK_VOLUME_LEGAL);
	assert_int_equal(spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, NULL, &err), 0);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), tags_before + 2); /* S1 only */
	assert_int_equal(meta_of(f, S2).generation, 2);
	assert_int_equal(spm_image_chain(&f->spm, DOMAIN, IMAGE, &chain, &err), 0);
	assert_int_equal(chain_state(&chain), 1);
	spm_chain_release(&chain);
}

/* ---- the reader waits for the image's mutation ------------------------------------------- */

struct reader {
	struct fixture *f;
	atomic_bool stop;
	atomic_int reads, bad, failed;
	int r;
	struct spm_chain chain;
	struct pk_error err;
	pthread_t thread;
};

static void *read_once(void *arg)
{
	struct reader *rd = arg;

	rd->r = spm_image_chain(&rd->f->spm, DOMAIN, IMAGE, &rd->chain, &rd->err);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ImageChain waits while a mutation holds the image, and reads what it left. */
static void test_spm_chain_update__image_chain_waits_for_the_image_lock(void **state)
{
	struct fixture *f = *state;
	struct reader rd = { .f = f };
	struct pk_lockset set;
	struct pk_error err;

	make_chain(f);
	/* What every mutation of the image holds while it writes. */
	pk_lockset_init(&set, f->spm.locks, "test mutation");
	pk_lockset_add(&set, SPM_LOCK_DOMAIN, DOMAIN, PK_LOCK_SHARED);
	pk_lockset_add(&set, SPM_LOCK_IMAGE, IMAGE, PK_LOCK_EXCLUSIVE);
	assert_int_equal(pk_lockset_acquire(&set, 1000, &err), 0);
	assert_int_equal(pthread_create(&rd.thread, NULL, read_once, &rd), 0);
	for (int i = 0; i < 200 && pk_locks_waiting(f->spm.locks, SPM_LOCK_IMAGE, IMAGE) == 0; i++) {
		sleep_ms(10);
	}
	assert_int_equal(pk_locks_waiting(f->spm.locks, SPM_LOCK_IMAGE, IMAGE), 1);
	pk_lockset_release(&set);
	assert_int_equal(pthread_join(rd.thread, NULL), 0);
	assert_int_equal(rd.r, 0);
	assert_int_equal(chain_state(&rd.chain), 0);
	spm_chain_release(&rd.chain);
}

static void *read_loop(void *arg)
{
	struct reader *rd = arg;

	while (!atomic_load(&rd->stop)) {
		struct spm_chain c;
		struct pk_error err;

		if (spm_image_chain(&rd->f->spm, DOMAIN, IMAGE, &c, &err) < 0) {
			atomic_fetch_add(&rd->failed, 1);
			continue;
		}
		if (chain_state(&c) < 0) {
			atomic_fetch_add(&rd->bad, 1);
		}
		atomic_fetch_add(&rd->reads, 1);
		spm_chain_release(&c);
	}
	return NULL;
}

/* Cleanups and their reverse, over and over, while a reader reads the chain. */
static void test_spm_chain_update__image_chain_never_sees_half_a_change(void **state)
{
	struct fixture *f = *state;
	struct reader rd = { .f = f };
	struct spm_volume_change c[2];
	struct pk_error err;

	make_chain(f);
	assert_int_equal(pthread_create(&rd.thread, NULL, read_loop, &rd), 0);
	/* At least 400 changes and 100 reads between them (the reader may start late). */
	for (int i = 0; i < 400 || (atomic_load(&rd.reads) < 100 && i < 100000); i++) {
		cleanup_changes(c, i % 2 == 0);
		if (spm_volumes_update(&f->spm, DOMAIN, IMAGE, c, 2, NULL, &err) < 0) {
			fail_msg("update %d: %s", i, err.message);
		}
		sched_yield();
	}
	atomic_store(&rd.stop, true);
	assert_int_equal(pthread_join(rd.thread, NULL), 0);
	assert_true(atomic_load(&rd.reads) > 0);
	assert_int_equal(atomic_load(&rd.failed), 0);
	assert_int_equal(atomic_load(&rd.bad), 0);
}

/* ---- the wire ------------------------------------------------------------------------------ */

static int call_verb(struct fixture *f, Pk__Request *req, Pk__Response *resp,
		     struct pk_arena *a, struct pk_error *err)
{
	for (size_t i = 0; i < spm_nverbs; i++) {
		if (spm_verbs[i].call == req->call_case) {
			return spm_verbs[i].fn(&f->spm, req, resp, a, err);
		}
	}
	fail_msg("no verb %d", (int)req->call_case);
	return -1;
}

/* UpdateVolumeMeta with changes, and the single form (older hsmd) beside it. */
static void test_spm_chain_update__wire_changes_and_single_form(void **state)
{
	struct fixture *f = *state;
	Pk__Request req = PK__REQUEST__INIT;
	Pk__UpdateVolumeMetaRequest um = PK__UPDATE_VOLUME_META_REQUEST__INIT;
	Pk__VolumeMetaChange c0 = PK__VOLUME_META_CHANGE__INIT, c1 = PK__VOLUME_META_CHANGE__INIT;
	Pk__VolumeMetaChange *cs[] = { &c0, &c1 };
	Pk__Response resp = PK__RESPONSE__INIT;
	struct pk_arena a;
	struct pk_error err;

	make_chain(f);
	pk_arena_init(&a);
	um.domain_id = DOMAIN;
	um.image_id = IMAGE;
	c0.volume_id = S2;
	c0.set_parent = true;
	c0.parent_id = BASE;
	c1.volume_id = S1;
	c1.role = PK__VOLUME_ROLE__ROLE_INTERNAL;
	c1.legality = PK__LEGALITY__LEGALITY_ILLEGAL;
	c1.expected_generation = 1;
	um.changes = cs;
	um.n_changes = 2;
	req.call_case = PK__REQUEST__CALL_UPDATE_VOLUME_META;
	req.update_volume_meta = &um;
	if (call_verb(f, &req, &resp, &a, &err) < 0) {
		fail_msg("%s", err.message);
	}
	assert_non_null(resp.update_volume_meta);
	assert_int_equal(resp.update_volume_meta->n_volumes, 2);
	assert_string_equal(resp.update_volume_meta->volumes[0]->parent_id, BASE);
	assert_int_equal(resp.update_volume_meta->volumes[1]->legality,
			 PK__LEGALITY__LEGALITY_ILLEGAL);
	assert_int_equal(resp.update_volume_meta->volumes[1]->generation, 2);
	/* Both forms at once: refused. */
	resp.update_volume_meta = NULL;
	um.volume_id = S1;
	um.legality = PK__LEGALITY__LEGALITY_LEGAL;
	assert_true(call_verb(f, &req, &resp, &a, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	/* The single form, as an older hsmd sends it. */
	um.changes = NULL;
	um.n_changes = 0;
	if (call_verb(f, &req, &resp, &a, &err) < 0) {
		fail_msg("%s", err.message);
	}
	assert_non_null(resp.update_volume_meta->volume);
	assert_int_equal(resp.update_volume_meta->volume->legality, PK__LEGALITY__LEGALITY_LEGAL);
	assert_int_equal(meta_of(f, S1).legality, PK_VOLUME_LEGAL);
	pk_arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spm_chain_update__changes_apply_together, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_chain_update__a_bad_change_writes_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_spm_chain_update__partly_written_call_is_finished_by_a_rerun, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_spm_chain_update__image_chain_waits_for_the_image_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_spm_chain_update__image_chain_never_sees_half_a_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_chain_update__wire_changes_and_single_form,
						setup, teardown),
	};

	pk_log_setup("test_spm_chain_update", getenv("PK_TEST_DEBUG") ? PK_LOG_DEBUG : PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
