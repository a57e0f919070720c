/*
 * spmd's domain, role and volume logic against the LVM and sanlock fakes:
 * effects, refusals, rollbacks, roll-forward and the lease check.
 */
/* pk-test-fakes: fake_lvm fake_sanlock */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
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
#define CHILD "cccccccc-2222-4333-8444-555555555555"

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
	char *argv[] = { "spmd", "-o", "host_id=1", "-o", "lvm_devices=/dev/fakepv1,/dev/fakepv2",
			 "-o", "activation=dm", "-o", state_opt, "-o", run_opt, "-o",
			 "log_level=error", NULL };

	fake_lvm_reset();
	fake_sanlock_reset();
	fake_lvm_set_pv_size("/dev/fakepv1", 4ull << 30);
	fake_lvm_set_pv_size("/dev/fakepv2", 4ull << 30);
	snprintf(f->dir, sizeof(f->dir), "/tmp/pk-test-spm-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(state_opt, sizeof(state_opt), "state_dir=%s/state", f->dir);
	snprintf(run_opt, sizeof(run_opt), "run_dir=%s/run", f->dir);
	assert_int_equal(pk_daemon_setup("spm", 13, argv, &f->cfg, &err), 0);
	assert_int_equal(spm_init(&f->spm, &f->cfg, &err), 0);
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

static void make_domain_and_spm(struct fixture *f)
{
	const char *pvs[] = { "/dev/fakepv1", "/dev/fakepv2" };
	struct spm_domain_info info;
	struct spm_role_status st;
	struct pk_error err;

	if (spm_domain_create(&f->spm, DOMAIN, pvs, 2, "test", &info, &err) < 0) {
		fail_msg("domain create: %s", err.message);
	}
	assert_string_equal(info.domain, DOMAIN);
	assert_false(info.initializing);
	assert_int_equal(spm_role_start(&f->spm, DOMAIN, &st, &err), 0);
	assert_int_equal(st.state, SPM_ROLE_HELD);
}

static int create_raw(struct fixture *f, const char *image, const char *volume,
		      uint64_t capacity, struct pk_error *err)
{
	struct spm_volume_create c = { DOMAIN, image, volume, NULL, PK_VOLUME_RAW, capacity, 0, "" };
	struct spm_volume v;

	return spm_volume_create(&f->spm, &c, &v, err);
}

static void test_spm_volume__writes_need_the_lease(void **state)
{
	struct fixture *f = *state;
	const char *pvs[] = { "/dev/fakepv1" };
	struct spm_domain_info info;
	struct pk_error err;

	assert_int_equal(spm_domain_create(&f->spm, DOMAIN, pvs, 1, "", &info, &err), 0);
	assert_true(create_raw(f, IMAGE, BASE, 64 << 20, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	/* Another host holds the lease: SpmStart names it. */
	fake_sanlock_set_owner(DOMAIN, "SDM", 2);
	{
		struct spm_role_status st;
		assert_true(spm_role_start(&f->spm, DOMAIN, &st, &err) < 0);
		assert_int_equal(err.code, PK_E_NOT_SPM);
		assert_non_null(strstr(err.message, "host 2 holds"));
	}
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_CREATE), 2); /* ids and leases only */
}

static void test_spm_volume__create_chain_delete(void **state)
{
	struct fixture *f = *state;
	struct spm_chain chain;
	struct pk_error err;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	assert_int_equal(spm_image_chain(&f->spm, DOMAIN, IMAGE, &chain, &err), 0);
	assert_int_equal(chain.n, 1);
	assert_string_equal(chain.chain[0].id, BASE);
	assert_int_equal(chain.chain[0].meta.legality, PK_VOLUME_LEGAL);
	assert_int_equal(chain.chain[0].meta.generation, 1);
	spm_chain_release(&chain);
	/* A second base in the same image is a conflict; nothing is made. */
	assert_true(create_raw(f, IMAGE, CHILD, 64 << 20, &err) < 0);
	assert_int_equal(err.code, PK_E_CONFLICT);
	assert_int_equal(spm_volume_delete(&f->spm, DOMAIN, IMAGE, BASE, true, false, NULL, &err), 0);
	assert_true(spm_image_chain(&f->spm, DOMAIN, IMAGE, &chain, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
}

static void test_spm_volume__bad_input_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct pk_error err;
	int creates;

	make_domain_and_spm(f);
	creates = fake_lvm_calls(FAKE_LVM_LV_CREATE);
	assert_true(create_raw(f, IMAGE, "not-a-uuid", 64 << 20, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_true(create_raw(f, IMAGE, BASE, 0, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_true(create_raw(f, IMAGE, BASE, 1000, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_true(create_raw(f, IMAGE, BASE, 100ull << 30, &err) < 0);
	assert_int_equal(err.code, PK_E_NO_SPACE);
	assert_true(spm_volume_delete(&f->spm, "22222222-2222-4333-8444-555555555555", IMAGE, BASE,
				      false, false, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_CREATE), creates);
}

/* A COW volume of 64 MiB capacity on an LV of lv_size, planted with its tags. */
static void plant_cow(struct fixture *f, const char *volume, enum pk_volume_role role,
		      enum pk_volume_legality legality, uint64_t generation, uint64_t lv_size)
{
	struct pk_volume_meta meta = { 0 };
	struct pk_meta_tags tags;
	struct pk_error err;

	snprintf(meta.image, sizeof(meta.image), "%s", IMAGE);
	snprintf(meta.parent, sizeof(meta.parent), "%s", PK_META_NO_PARENT);
	meta.format = PK_VOLUME_COW;
	meta.role = role;
	meta.legality = legality;
	meta.capacity = 64 << 20;
	meta.generation = generation;
	assert_int_equal(pk_meta_volume_encode(&meta, &tags, &err), 0);
	assert_int_equal(pk_lvm_lv_create(f->spm.lvm, DOMAIN, volume, lv_size,
					  pk_meta_tags_strv(&tags), &err), 0);
}

/* An unfinished COW volume (ILLEGAL, generation 0), as a crash after lvcreate leaves it. */
static void plant_unfinished(struct fixture *f, const char *volume)
{
	plant_cow(f, volume, PK_VOLUME_LEAF, PK_VOLUME_ILLEGAL, 0, 8 << 20);
}

static void test_spm_volume__reduce_only_an_internal_cow_volume(void **state)
{
	struct fixture *f = *state;
	struct spm_volume v;
	struct pk_error err;

	make_domain_and_spm(f);
	plant_cow(f, BASE, PK_VOLUME_INTERNAL, PK_VOLUME_LEGAL, 1, 64 << 20);
	spm_volume_cache_invalidate(&f->spm); /* planted behind the SPM's back */
	/* Rounded up to the extent (4 MiB), and only down. */
	assert_int_equal(spm_volume_reduce(&f->spm, DOMAIN, IMAGE, BASE, (18 << 20) + 512, &v, &err),
			 0);
	assert_int_equal(v.lv_size, 20 << 20);
	assert_int_equal(spm_volume_info(&f->spm, DOMAIN, IMAGE, BASE, &v, &err), 0);
	assert_int_equal(v.lv_size, 20 << 20);
	assert_int_equal(spm_volume_reduce(&f->spm, DOMAIN, IMAGE, BASE, 40 << 20, &v, &err), 0);
	assert_int_equal(v.lv_size, 20 << 20);
	assert_true(spm_volume_reduce(&f->spm, DOMAIN, IMAGE, BASE, 0, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	/* A size near 2^64 is refused, not rounded into a small one (nor "done"). */
	assert_true(spm_volume_extend(&f->spm, DOMAIN, IMAGE, BASE, UINT64_MAX - 511, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	/* A leaf may still grow under a guest. */
	plant_cow(f, CHILD, PK_VOLUME_LEAF, PK_VOLUME_LEGAL, 1, 64 << 20);
	spm_volume_cache_invalidate(&f->spm);
	assert_true(spm_volume_reduce(&f->spm, DOMAIN, IMAGE, CHILD, 8 << 20, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_CONFLICT);
	assert_int_equal(spm_volume_info(&f->spm, DOMAIN, IMAGE, CHILD, &v, &err), 0);
	assert_int_equal(v.lv_size, 64 << 20);
	/* A RAW volume's LV is its data. */
	assert_int_equal(create_raw(f, "eeeeeeee-2222-4333-8444-555555555555", "ffffffff-2222-4333-8444-555555555555", 64 << 20, &err),
			 0);
	assert_true(spm_volume_reduce(&f->spm, DOMAIN, "eeeeeeee-2222-4333-8444-555555555555", "ffffffff-2222-4333-8444-555555555555",
				      8 << 20, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
}

static void test_spm_volume__unfinished_create_rolls_back(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_list list;
	struct spm_recovery rec;
	struct pk_error err;

	make_domain_and_spm(f);
	/* lvcreate itself fails: nothing is left. */
	fake_lvm_fail_op(FAKE_LVM_LV_CREATE, -ENOSPC);
	assert_true(create_raw(f, IMAGE, BASE, 64 << 20, &err) < 0);
	assert_int_equal(err.code, PK_E_NO_SPACE);
	assert_int_equal(spm_volumes_load(&f->spm, DOMAIN, &list, &err), 0);
	assert_int_equal(list.n, 0);
	spm_volume_list_release(&list);
	/* What a crash between lvcreate and the qcow2 header leaves: ILLEGAL at gen 0. */
	plant_unfinished(f, CHILD);
	assert_int_equal(spm_volumes_recover(&f->spm, DOMAIN, &rec, &err), 0);
	assert_int_equal(rec.rolled_back, 1);
	assert_int_equal(spm_volumes_load(&f->spm, DOMAIN, &list, &err), 0);
	assert_int_equal(list.n, 0);
	spm_volume_list_release(&list);
}

static void test_spm_volume__interrupted_delete_rolls_forward(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_list list;
	struct spm_recovery rec;
	struct pk_error err;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	/* lvremove fails after the REMOVING mark (as if spmd died there). */
	fake_lvm_fail_op(FAKE_LVM_LV_REMOVE, -EIO);
	assert_true(spm_volume_delete(&f->spm, DOMAIN, IMAGE, BASE, true, false, NULL, &err) < 0);
	assert_int_equal(spm_volumes_load(&f->spm, DOMAIN, &list, &err), 0);
	assert_int_equal(list.n, 1);
	assert_int_equal(list.v[0].meta.legality, PK_VOLUME_REMOVING);
	spm_volume_list_release(&list);
	assert_int_equal(spm_volumes_recover(&f->spm, DOMAIN, &rec, &err), 0);
	assert_int_equal(rec.removed, 1);
	assert_int_equal(spm_volumes_load(&f->spm, DOMAIN, &list, &err), 0);
	assert_int_equal(list.n, 0);
	spm_volume_list_release(&list);
}

static void test_spm_volume__lost_lease_stops_writes(void **state)
{
	struct fixture *f = *state;
	struct pk_error err;

	make_domain_and_spm(f);
	fake_sanlock_lose_lockspace(DOMAIN);
	assert_true(create_raw(f, IMAGE, BASE, 64 << 20, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	spm_role_shutdown(&f->spm);
	assert_true(create_raw(f, IMAGE, BASE, 64 << 20, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
}

static void test_spm_volume__metadata_update_and_generation(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_update u = { 0 };
	struct spm_volume v;
	struct pk_error err;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	u.legality = PK_VOLUME_ILLEGAL;
	u.expected_generation = 1;
	assert_int_equal(spm_volume_update(&f->spm, DOMAIN, IMAGE, BASE, &u, &v, &err), 0);
	assert_int_equal(v.meta.generation, 2);
	assert_int_equal(v.meta.legality, PK_VOLUME_ILLEGAL);
	/* A stale generation is a conflict. */
	assert_true(spm_volume_update(&f->spm, DOMAIN, IMAGE, BASE, &u, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_CONFLICT);
	u.expected_generation = 0;
	u.legality = PK_VOLUME_REMOVING;
	assert_true(spm_volume_update(&f->spm, DOMAIN, IMAGE, BASE, &u, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(spm_volume_info(&f->spm, DOMAIN, IMAGE, BASE, &v, &err), 0);
	assert_int_equal(v.meta.generation, 2);
}

/*
 * DeleteVolume refuses a LEAF (LEGAL or ILLEGAL) and a volume prepared on a
 * host (any role, any legality) unless forced; ImagePrepared notices older
 * than the last one applied change nothing.
 */
static void test_spm_volume__delete_refuses_leaves_and_prepared(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_update u = { 0 };
	struct spm_volume v;
	struct pk_error err;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	assert_int_equal(spm_volume_delete(&f->spm, DOMAIN, IMAGE, BASE, false, false, NULL, &err),
			 -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);
	assert_non_null(strstr(err.message, "leaf"));
	u.legality = PK_VOLUME_ILLEGAL;
	assert_int_equal(spm_volume_update(&f->spm, DOMAIN, IMAGE, BASE, &u, &v, &err), 0);
	assert_int_equal(spm_volume_delete(&f->spm, DOMAIN, IMAGE, BASE, false, false, NULL, &err),
			 -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);

	/* A merged-away layer (INTERNAL, ILLEGAL) still prepared on host 2. */
	u.legality = 0;
	u.role = PK_VOLUME_INTERNAL;
	assert_int_equal(spm_volume_update(&f->spm, DOMAIN, IMAGE, BASE, &u, &v, &err), 0);
	assert_int_equal(spm_image_prepared(&f->spm, DOMAIN, IMAGE, BASE, 2, true, 100, &err), 0);
	assert_int_equal(spm_volume_delete(&f->spm, DOMAIN, IMAGE, BASE, false, false, NULL, &err),
			 -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);
	assert_non_null(strstr(err.message, "prepared on host 2"));
	/* A teardown notice overtaken by the prepare above is stale: ignored. */
	assert_int_equal(spm_image_prepared(&f->spm, DOMAIN, IMAGE, BASE, 2, false, 99, &err), 0);
	assert_int_equal(spm_image_prepared(&f->spm, DOMAIN, IMAGE, NULL, 2, false, 100, &err), 0);
	assert_int_equal(spm_volume_info(&f->spm, DOMAIN, IMAGE, BASE, &v, &err), 0);
	assert_int_equal(v.nprepared, 1);
	/* Another host's notices are ordered on their own. */
	assert_int_equal(spm_image_prepared(&f->spm, DOMAIN, IMAGE, BASE, 3, true, 5, &err), 0);
	assert_int_equal(spm_image_prepared(&f->spm, DOMAIN, IMAGE, BASE, 3, false, 6, &err), 0);
	/* The newer teardown of host 2 is applied: now it can go. */
	assert_int_equal(spm_image_prepared(&f->spm, DOMAIN, IMAGE, BASE, 2, false, 101, &err), 0);
	assert_int_equal(spm_volume_info(&f->spm, DOMAIN, IMAGE, BASE, &v, &err), 0);
	assert_int_equal(v.nprepared, 0);
	assert_int_equal(spm_volume_delete(&f->spm, DOMAIN, IMAGE, BASE, false, false, NULL, &err),
			 0);
}

/* A notice that failed is not taken for stale when it is retried. */
static void test_spm_volume__failed_prepared_notice_can_be_retried(void **state)
{
	struct fixture *f = *state;
	struct spm_volume v;
	struct pk_error err;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	fake_lvm_fail_op(FAKE_LVM_LV_TAGS, -EIO);
	assert_true(spm_image_prepared(&f->spm, DOMAIN, IMAGE, NULL, 2, true, 7, &err) < 0);
	assert_int_equal(spm_image_prepared(&f->spm, DOMAIN, IMAGE, NULL, 2, true, 7, &err), 0);
	assert_int_equal(spm_volume_info(&f->spm, DOMAIN, IMAGE, BASE, &v, &err), 0);
	assert_int_equal(v.nprepared, 1);
	assert_int_equal(v.prepared[0], 2);
}

/* ---- the lease before every write, recovery first --------------------------- */

#define OTHER "dddddddd-2222-4333-8444-555555555555"

static void lose_lease(void *ctx)
{
	(void)ctx;
	fake_sanlock_lose_lockspace(DOMAIN);
}

static void test_spm_volume__lvm_writes_ask_for_the_lease(void **state)
{
	struct fixture *f = *state;
	struct pk_error err;
	int creates;

	make_domain_and_spm(f);
	/* Every attempt of a write asks: three busy attempts, then the write. */
	fake_lvm_set_busy_attempts(3);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	assert_int_equal(fake_lvm_busy_retries(), 3);
	/* The guard is the lease: a write straight to LVM after the loss is not run. */
	fake_sanlock_lose_lockspace(DOMAIN);
	creates = fake_lvm_calls(FAKE_LVM_LV_CREATE);
	assert_true(pk_lvm_lv_create(f->spm.lvm, DOMAIN, CHILD, 8 << 20, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_non_null(strstr(err.message, "not run"));
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_CREATE), creates);
}

static void test_spm_volume__no_undo_after_the_lease_is_lost(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_create c = { DOMAIN, IMAGE, BASE, NULL, PK_VOLUME_COW, 64 << 20, 0, "" };
	struct spm_volume v;
	struct pk_lvm_lv_list lvs = { 0 };
	struct pk_error err;

	make_domain_and_spm(f);
	/* The lease goes right after lvcreate: no qcow2 header, no undo, nothing written. */
	fake_lvm_after_op(FAKE_LVM_LV_CREATE, lose_lease, NULL);
	assert_true(spm_volume_create(&f->spm, &c, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_REMOVE), 0);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), 0);
	/* The unfinished LV stays for the next SPM's recovery. */
	assert_int_equal(pk_lvm_lv_report(f->spm.lvm, DOMAIN, BASE, &lvs, &err), 0);
	assert_int_equal(lvs.count, 1);
	pk_lvm_lv_list_release(&lvs);
}

static void test_spm_volume__no_zeroing_after_the_lease_is_lost(void **state)
{
	struct fixture *f = *state;
	struct pk_error err;
	int activations;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	activations = fake_lvm_calls(FAKE_LVM_LV_ACTIVATION);
	/* The lease goes right after the REMOVING mark: zeroing must not start. */
	fake_lvm_after_op(FAKE_LVM_LV_TAGS, lose_lease, NULL);
	assert_true(spm_volume_delete(&f->spm, DOMAIN, IMAGE, BASE, true, true, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_ACTIVATION), activations);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_REMOVE), 0);
}

static void test_spm_volume__update_of_several_stops_at_the_loss(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_change ch[2] = { { 0 } };
	struct spm_volume_list list;
	struct pk_error err;
	int tags;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	plant_unfinished(f, CHILD); /* a second volume of the image, made by hand */
	spm_volume_cache_invalidate(&f->spm);
	ch[0].volume = BASE;
	ch[0].u.legality = PK_VOLUME_ILLEGAL;
	ch[1].volume = CHILD;
	ch[1].u.legality = PK_VOLUME_LEGAL;
	tags = fake_lvm_calls(FAKE_LVM_LV_TAGS);
	fake_lvm_after_op(FAKE_LVM_LV_TAGS, lose_lease, NULL);
	assert_true(spm_volumes_update(&f->spm, DOMAIN, IMAGE, ch, 2, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), tags + 1);
	assert_int_equal(spm_volumes_load(&f->spm, DOMAIN, &list, &err), 0);
	assert_int_equal(spm_volume_list_find(&list, CHILD)->meta.legality, PK_VOLUME_ILLEGAL);
	spm_volume_list_release(&list);
}

static void test_spm_volume__shutdown_takes_no_role_lock(void **state)
{
	struct fixture *f = *state;
	struct pk_error err;

	make_domain_and_spm(f);
	/* As if another thread held role_lock across a slow call: SIGTERM still marks the loss. */
	pthread_mutex_lock(&f->spm.role_lock);
	spm_role_shutdown(&f->spm);
	pthread_mutex_unlock(&f->spm.role_lock);
	assert_true(create_raw(f, IMAGE, BASE, 64 << 20, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_true(pk_lvm_lv_create(f->spm.lvm, DOMAIN, BASE, 8 << 20, NULL, &err) < 0);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_CREATE), 2); /* ids and leases only */
}

struct during_recovery {
	struct fixture *f;
	struct spm_role_status st;
	int create_r, create_code, info_r, status_r;
	char message[512];
};

static void *during_recovery_thread(void *arg)
{
	struct during_recovery *d = arg;
	struct spm_volume v;
	struct pk_error err;

	d->create_r = create_raw(d->f, IMAGE, CHILD, 64 << 20, &err);
	d->create_code = err.code;
	snprintf(d->message, sizeof(d->message), "%s", err.message);
	d->info_r = spm_volume_info(&d->f->spm, DOMAIN, IMAGE, BASE, &v, &err);
	d->status_r = spm_role_status(&d->f->spm, DOMAIN, &d->st, &err);
	return NULL;
}

/* Runs on the recovery thread (its first LV report): other threads meet RECOVERING. */
static void call_during_recovery(void *arg)
{
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, during_recovery_thread, arg), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_spm_volume__mutations_wait_for_recovery(void **state)
{
	struct fixture *f = *state;
	struct during_recovery d = { .f = f };
	struct spm_role_status st;
	struct pk_error err;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	assert_int_equal(spm_role_stop(&f->spm, DOMAIN, &st, &err), 0);
	assert_int_equal(st.state, SPM_ROLE_FREE);
	fake_lvm_after_op(FAKE_LVM_LV_REPORT, call_during_recovery, &d);
	assert_int_equal(spm_role_start(&f->spm, DOMAIN, &st, &err), 0);
	assert_int_equal(st.state, SPM_ROLE_HELD);
	/* A mutation during recovery: retryable, named; reads and status answer. */
	assert_true(d.create_r < 0);
	assert_int_equal(d.create_code, PK_E_UNAVAILABLE);
	assert_non_null(strstr(d.message, "recovery in progress"));
	assert_int_equal(d.info_r, 0);
	assert_int_equal(d.status_r, 0);
	assert_int_equal(d.st.state, SPM_ROLE_RECOVERING);
	/* Once HELD, the same call works. */
	assert_int_equal(create_raw(f, "eeeeeeee-2222-4333-8444-555555555555", CHILD, 64 << 20, &err),
			 0);
}

/* A recovery that fails leaves the SPM serving, says so, and SpmStart retries it. */
static void test_spm_volume__failed_recovery_is_retried(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_list list;
	struct spm_role_status st;
	struct pk_error err;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	fake_lvm_fail_op(FAKE_LVM_LV_REMOVE, -EIO);
	assert_true(spm_volume_delete(&f->spm, DOMAIN, IMAGE, BASE, true, false, NULL, &err) < 0);
	assert_int_equal(spm_role_stop(&f->spm, DOMAIN, &st, &err), 0);
	/* The next SPM's recovery meets the same failure. */
	fake_lvm_fail_op(FAKE_LVM_LV_REMOVE, -EIO);
	assert_int_equal(spm_role_start(&f->spm, DOMAIN, &st, &err), 0);
	assert_int_equal(st.state, SPM_ROLE_HELD);
	assert_true(st.recovery_pending);
	assert_int_equal(spm_role_status(&f->spm, DOMAIN, &st, &err), 0);
	assert_true(st.recovery_pending);
	/* It serves meanwhile. */
	assert_int_equal(create_raw(f, "eeeeeeee-2222-4333-8444-555555555555", CHILD, 64 << 20, &err),
			 0);
	/* SpmStart again: recovery runs again and finishes the delete. */
	assert_int_equal(spm_role_start(&f->spm, DOMAIN, &st, &err), 0);
	assert_int_equal(st.state, SPM_ROLE_HELD);
	assert_false(st.recovery_pending);
	assert_int_equal(spm_volumes_load(&f->spm, DOMAIN, &list, &err), 0);
	assert_int_equal(list.n, 1);
	assert_string_equal(list.v[0].id, CHILD);
	spm_volume_list_release(&list);
}

struct finish_ctx {
	struct fixture *f;
};

/* The concurrent CreateVolume finishes its volume (LEGAL, generation 1). */
static void finish_child(void *arg)
{
	struct finish_ctx *c = arg;
	struct pk_lvm_lv_list lvs = { 0 };
	struct pk_volume_meta meta;
	struct pk_meta_tags add, del;
	struct pk_error err;

	assert_int_equal(pk_lvm_lv_report(c->f->spm.lvm, DOMAIN, CHILD, &lvs, &err), 0);
	assert_int_equal(pk_meta_volume_decode(CHILD, lvs.lvs[0].tags, &meta, &err), 0);
	meta.legality = PK_VOLUME_LEGAL;
	assert_int_equal(pk_meta_volume_diff(CHILD, lvs.lvs[0].tags, &meta, &add, &del, NULL, &err),
			 0);
	assert_int_equal(pk_lvm_lv_tags_change(c->f->spm.lvm, DOMAIN, CHILD, pk_meta_tags_strv(&add),
					       pk_meta_tags_strv(&del), &err), 0);
	pk_lvm_lv_list_release(&lvs);
}

static void test_spm_volume__recovery_reads_again_under_the_lock(void **state)
{
	struct fixture *f = *state;
	struct finish_ctx c = { f };
	struct spm_recovery rec;
	struct spm_volume v;
	struct pk_error err;

	make_domain_and_spm(f);
	plant_unfinished(f, CHILD);
	/* Recovery's first read sees CHILD unfinished; it is finished before the lock. */
	fake_lvm_after_op(FAKE_LVM_LV_REPORT, finish_child, &c);
	assert_int_equal(spm_volumes_recover(&f->spm, DOMAIN, &rec, &err), 0);
	assert_int_equal(rec.rolled_back, 0);
	assert_int_equal(rec.skipped, 1);
	assert_int_equal(spm_volume_info(&f->spm, DOMAIN, IMAGE, CHILD, &v, &err), 0);
	assert_int_equal(v.meta.legality, PK_VOLUME_LEGAL);
	assert_int_equal(v.meta.generation, 1);
}

struct regain_ctx {
	struct fixture *f;
	struct pk_lvm *other; /* another host's LVM view of the same storage */
};

/* While a mutation reads: the lease is lost, another SPM adds a volume, the lease comes back. */
static void lose_and_regain(void *arg)
{
	struct regain_ctx *c = arg;
	struct spm_role_status st;
	struct pk_volume_meta meta = { 0 };
	struct pk_meta_tags tags;
	struct pk_error err;

	fake_sanlock_lose_lockspace(DOMAIN);
	assert_true(spm_role_check(&c->f->spm, DOMAIN, &err) < 0);
	snprintf(meta.image, sizeof(meta.image), "eeeeeeee-2222-4333-8444-555555555555");
	snprintf(meta.parent, sizeof(meta.parent), "%s", PK_META_NO_PARENT);
	meta.format = PK_VOLUME_RAW;
	meta.role = PK_VOLUME_LEAF;
	meta.legality = PK_VOLUME_LEGAL;
	meta.capacity = 64 << 20;
	meta.generation = 1;
	assert_int_equal(pk_meta_volume_encode(&meta, &tags, &err), 0);
	assert_int_equal(pk_lvm_lv_create(c->other, DOMAIN, OTHER, 64 << 20,
					  pk_meta_tags_strv(&tags), &err), 0);
	assert_int_equal(spm_role_start(&c->f->spm, DOMAIN, &st, &err), 0);
	assert_int_equal(st.state, SPM_ROLE_HELD);
}

static void test_spm_volume__cache_of_an_old_role_is_not_used(void **state)
{
	struct fixture *f = *state;
	const char *devices[] = { "/dev/fakepv1", "/dev/fakepv2", NULL };
	struct pk_lvm_config lc = { .devices = devices, .activation = true };
	struct regain_ctx c = { f, NULL };
	struct spm_volume v;
	struct pk_error err;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	assert_int_equal(pk_lvm_new(&lc, &c.other, &err), 0);
	spm_volume_cache_invalidate(&f->spm);
	/* The next mutation reads the domain; during that read the role changes twice. */
	fake_lvm_after_op(FAKE_LVM_LV_REPORT, lose_and_regain, &c);
	assert_int_equal(spm_volume_extend(&f->spm, DOMAIN, IMAGE, BASE, 4096, &v, &err), 0);
	/* What that read found must not be served under the new role. */
	assert_int_equal(spm_volume_info(&f->spm, DOMAIN, "eeeeeeee-2222-4333-8444-555555555555",
					 OTHER, &v, &err), 0);
	pk_lvm_free(c.other);
}

/* The lease is lost and taken again (no other change). */
static void lose_and_take_again(void *arg)
{
	struct fixture *f = arg;
	struct spm_role_status st;
	struct pk_error err;

	fake_sanlock_lose_lockspace(DOMAIN);
	assert_true(spm_role_check(&f->spm, DOMAIN, &err) < 0);
	assert_int_equal(spm_role_start(&f->spm, DOMAIN, &st, &err), 0);
	assert_int_equal(st.state, SPM_ROLE_HELD);
}

static void test_spm_volume__a_call_of_an_old_role_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct spm_volume_update u = { 0 };
	struct spm_volume v;
	struct pk_error err;
	int tags;

	make_domain_and_spm(f);
	assert_int_equal(create_raw(f, IMAGE, BASE, 64 << 20, &err), 0);
	spm_volume_cache_invalidate(&f->spm);
	tags = fake_lvm_calls(FAKE_LVM_LV_TAGS);
	/* While the update reads the domain the role changes twice: what it read is old. */
	fake_lvm_after_op(FAKE_LVM_LV_REPORT, lose_and_take_again, f);
	u.legality = PK_VOLUME_ILLEGAL;
	assert_true(spm_volume_update(&f->spm, DOMAIN, IMAGE, BASE, &u, &v, &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_non_null(strstr(err.message, "run it again"));
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), tags);
	/* Run again, it works. */
	assert_int_equal(spm_volume_update(&f->spm, DOMAIN, IMAGE, BASE, &u, &v, &err), 0);
	assert_int_equal(v.meta.legality, PK_VOLUME_ILLEGAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spm_volume__writes_need_the_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__create_chain_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__bad_input_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__unfinished_create_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__interrupted_delete_rolls_forward, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__lost_lease_stops_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__metadata_update_and_generation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__delete_refuses_leaves_and_prepared,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__failed_prepared_notice_can_be_retried,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__lvm_writes_ask_for_the_lease, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__no_undo_after_the_lease_is_lost, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__no_zeroing_after_the_lease_is_lost,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__update_of_several_stops_at_the_loss,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__shutdown_takes_no_role_lock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__mutations_wait_for_recovery, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__failed_recovery_is_retried, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__recovery_reads_again_under_the_lock,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__cache_of_an_old_role_is_not_used, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__a_call_of_an_old_role_writes_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_volume__reduce_only_an_internal_cow_volume,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
