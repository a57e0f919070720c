/*
 * What spmd refuses before it records a task (spm/tasks.h): every mutating
 * verb with bad arguments answers INVALID_ARGUMENT or NOT_FOUND and leaves
 * no task record; a full task queue answers BUSY, also with no record; the
 * repeated fields of a request are counted before anything is allocated.
 * Against the LVM and sanlock fakes, the chain B <- S1 <- S2.
 */
/* pk-test-fakes: fake_lvm fake_sanlock */
#include <dirent.h>
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

#include "common/arena.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/lvm.h"
#include "proto/codec.h"
#include "proto/rpc.pb-c.h"
#include "spm/domain.h"
#include "spm/rpc.h"
#include "spm/spm.h"
#include "spm/taskpool.h"
#include "spm/tasks.h"
#include "spm/volume.h"
#include "tests/fakes/fake_lvm.h"
#include "tests/fakes/fake_sanlock.h"

#define DOMAIN "11111111-2222-4333-8444-555555555555"
#define OTHER "22222222-2222-4333-8444-555555555555"
#define IMAGE "aaaaaaaa-2222-4333-8444-555555555555"
#define BASE "bbbbbbbb-2222-4333-8444-555555555555"
#define S1 "cccccccc-2222-4333-8444-555555555555"
#define S2 "dddddddd-2222-4333-8444-555555555555"
#define NEW "eeeeeeee-2222-4333-8444-555555555555"
#define MISSING "ffffffff-2222-4333-8444-555555555555"

struct fixture {
	char dir[64];
	char state_opt[128], run_opt[128], tasks_dir[128];
	struct pk_config cfg;
	struct spm spm;
};

static void spm_up(struct fixture *f, bool role)
{
	struct pk_error err;
	struct spm_role_status st;
	char *argv[] = { "spmd", "-o", "host_id=1", "-o", "lvm_devices=/dev/fakepv1", "-o",
			 "activation=dm", "-o", f->state_opt, "-o", f->run_opt, "-o",
			 "log_level=error", "-o", "task_workers=1", "-o", "task_queue_max=2", NULL };

	memset(&f->cfg, 0, sizeof(f->cfg));
	memset(&f->spm, 0, sizeof(f->spm));
	assert_int_equal(pk_daemon_setup("spm", 17, argv, &f->cfg, &err), 0);
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/pk-test-spmchk-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->state_opt, sizeof(f->state_opt), "state_dir=%s/state", f->dir);
	snprintf(f->run_opt, sizeof(f->run_opt), "run_dir=%s/run", f->dir);
	snprintf(f->tasks_dir, sizeof(f->tasks_dir), "%s/state/spm-tasks", f->dir);
	spm_up(f, false);
	if (spm_domain_create(&f->spm, DOMAIN, pvs, 1, "test", &info, &err) < 0) {
		fail_msg("domain create: %s", err.message);
	}
	spm_down(f);
	spm_up(f, true);
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

/* Task records in memory and on disk. */
static size_t records(struct fixture *f)
{
	struct spm_task_info *list = NULL;
	size_t n = spm_tasks_list(f->spm.tasks, &list), files = 0;
	DIR *d = opendir(f->tasks_dir);
	struct dirent *e;

	free(list);
	assert_non_null(d);
	while ((e = readdir(d))) {
		files += strstr(e->d_name, ".task") != NULL;
	}
	closedir(d);
	assert_int_equal(files, n);
	return n;
}

/* req is refused with code, a message containing what, and no record (sync and async). */
static void refused(struct fixture *f, const struct spm_task_request *req, enum pk_errc code,
		    const char *what)
{
	struct spm_task_info info;
	struct pk_error err;

	for (int async = 0; async < 2; async++) {
		pk_error_clear(&err);
		assert_true(spm_task_run(&f->spm, req, async, NULL, &info, &err) < 0);
		if (err.code != code || !strstr(err.message, what)) {
			fail_msg("verb %d (async %d): %s '%s', expected %s with '%s'", (int)req->verb,
				 async, pk_errc_name(err.code), err.message, pk_errc_name(code), what);
		}
		assert_int_equal(records(f), 0);
	}
}

static struct spm_task_request create_req(void)
{
	struct spm_task_request c = {
		.verb = SPM_TASK_CREATE_VOLUME,
		.domain = DOMAIN,
		.image = IMAGE,
		.volume = NEW,
		.parent = S2,
		.format = PK_VOLUME_COW,
		.capacity = 64 << 20,
	};
	return c;
}

static void test_spm_task_checks__create_volume(void **state)
{
	struct fixture *f = *state;
	struct spm_task_request c;
	char desc[5000];

	c = create_req(), c.domain = "not-a-uuid";
	refused(f, &c, PK_E_INVALID_ARGUMENT, "domain_id");
	c = create_req(), c.domain = OTHER;
	refused(f, &c, PK_E_NOT_FOUND, OTHER);
	c = create_req(), c.image = "";
	refused(f, &c, PK_E_INVALID_ARGUMENT, "image_id");
	c = create_req(), c.volume = "x";
	refused(f, &c, PK_E_INVALID_ARGUMENT, "volume_id");
	c = create_req(), c.parent = "12";
	refused(f, &c, PK_E_INVALID_ARGUMENT, "parent_id");
	c = create_req(), c.parent = NEW;
	refused(f, &c, PK_E_INVALID_ARGUMENT, "its own parent");
	c = create_req(), c.parent = MISSING;
	refused(f, &c, PK_E_NOT_FOUND, MISSING);
	c = create_req(), c.format = 0;
	refused(f, &c, PK_E_INVALID_ARGUMENT, "format");
	c = create_req(), c.format = 7;
	refused(f, &c, PK_E_INVALID_ARGUMENT, "format");
	c = create_req(), c.capacity = 1000;
	refused(f, &c, PK_E_INVALID_ARGUMENT, "capacity");
	c = create_req(), c.capacity = UINT64_MAX - 511;
	refused(f, &c, PK_E_INVALID_ARGUMENT, "capacity");
	c = create_req(), c.size = 513;
	refused(f, &c, PK_E_INVALID_ARGUMENT, "initial size");
	/* Too long whole, never cut first: the message gives its length and the limit. */
	memset(desc, 'a', sizeof(desc) - 1);
	desc[sizeof(desc) - 1] = '\0';
	c = create_req(), c.description = desc;
	refused(f, &c, PK_E_INVALID_ARGUMENT, "4999 bytes, longer than the limit of 120");
	desc[PK_META_DESC_MAX + 1] = '\0';
	refused(f, &c, PK_E_INVALID_ARGUMENT, "121 bytes, longer than the limit of 120");
	/* Short, but too long once escaped for its tag. */
	memset(desc, ' ', 60);
	desc[60] = '\0';
	refused(f, &c, PK_E_INVALID_ARGUMENT, "description");
}

static void test_spm_task_checks__delete_extend_reduce_image(void **state)
{
	struct fixture *f = *state;
	struct spm_task_request d = { .verb = SPM_TASK_DELETE_VOLUME, .domain = DOMAIN,
				      .image = IMAGE, .volume = S2 };
	struct spm_task_request e = { .verb = SPM_TASK_EXTEND_VOLUME, .domain = DOMAIN,
				      .image = IMAGE, .volume = S2, .size = 128 << 20 };
	struct spm_task_request i = { .verb = SPM_TASK_DELETE_IMAGE, .domain = DOMAIN,
				      .image = IMAGE };
	struct spm_task_request t;

	t = d, t.request = "abc";
	refused(f, &t, PK_E_INVALID_ARGUMENT, "request_id");
	t = d, t.volume = NULL;
	refused(f, &t, PK_E_INVALID_ARGUMENT, "volume_id");
	t = d, t.volume = MISSING;
	refused(f, &t, PK_E_NOT_FOUND, MISSING);
	t = d, t.domain = OTHER;
	refused(f, &t, PK_E_NOT_FOUND, OTHER);

	for (int verb = 0; verb < 2; verb++) {
		t = e, t.verb = verb ? SPM_TASK_REDUCE_VOLUME : SPM_TASK_EXTEND_VOLUME;
		t.size = 0;
		refused(f, &t, PK_E_INVALID_ARGUMENT, "new size 0");
		t.size = 1000;
		refused(f, &t, PK_E_INVALID_ARGUMENT, "new size 1000");
		t.size = UINT64_MAX - 511; /* near 2^64: refused, never wrapped */
		refused(f, &t, PK_E_INVALID_ARGUMENT, "below 8 EiB");
		t.size = 128 << 20;
		t.volume = MISSING;
		refused(f, &t, PK_E_NOT_FOUND, MISSING);
		t.volume = S2;
		t.image = "aaaaaaaa-2222-4333-8444-55555555555"; /* one digit short */
		refused(f, &t, PK_E_INVALID_ARGUMENT, "image_id");
		t.image = BASE; /* well formed, but S2 is not of that image */
		refused(f, &t, PK_E_INVALID_ARGUMENT, "belongs to image");
	}

	t = i, t.image = "x";
	refused(f, &t, PK_E_INVALID_ARGUMENT, "image_id");
	t = i, t.domain = NULL;
	refused(f, &t, PK_E_INVALID_ARGUMENT, "domain_id");
}

/* A full queue answers BUSY before anything is recorded; a place freed takes the next. */
static void test_spm_task_checks__busy_at_the_task_limit(void **state)
{
	struct fixture *f = *state;
	struct spm_task_request e = { .verb = SPM_TASK_EXTEND_VOLUME, .domain = DOMAIN,
				      .image = IMAGE, .volume = S2, .size = 128 << 20 };
	struct spm_task_info info;
	struct pk_error err;
	struct spm_volume v;
	size_t held = 0;

	/* Hold every place of the queue (task_queue_max=2), as waiting tasks would. */
	while (spm_taskpool_reserve(f->spm.pool) == 0) {
		held++;
	}
	assert_int_equal(held, 2);
	assert_int_equal(spm_task_run(&f->spm, &e, true, NULL, &info, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_BUSY);
	assert_non_null(strstr(err.message, "task limit"));
	assert_non_null(strstr(err.message, "task_queue_max"));
	assert_int_equal(records(f), 0);
	/* A synchronous call runs in the caller's thread: not bounded by the queue. */
	assert_int_equal(spm_task_run(&f->spm, &e, false, &v, &info, &err), 0);
	assert_int_equal(info.state, SPM_TASK_DONE);
	assert_int_equal(records(f), 1);

	spm_taskpool_cancel(f->spm.pool);
	e.size = 192 << 20;
	assert_int_equal(spm_task_run(&f->spm, &e, true, NULL, &info, &err), 0);
	assert_int_equal(info.state == SPM_TASK_RUNNING || info.state == SPM_TASK_DONE, true);
	spm_taskpool_cancel(f->spm.pool);
	spm_async_wait(&f->spm);
	assert_int_equal(spm_tasks_get(f->spm.tasks, info.id, &info, &err), 0);
	assert_int_equal(info.state, SPM_TASK_DONE);
	assert_int_equal(spm_volume_info(&f->spm, DOMAIN, IMAGE, S2, &v, &err), 0);
	assert_true(v.lv_size >= (192u << 20));
	assert_int_equal(records(f), 2);
}

/* Many async tasks at once: all run on the pool (one worker here), each ends DONE. */
static void test_spm_task_checks__async_tasks_run_on_the_pool(void **state)
{
	struct fixture *f = *state;
	struct spm_task_request e = { .verb = SPM_TASK_EXTEND_VOLUME, .domain = DOMAIN,
				      .image = IMAGE, .volume = S2 };
	struct spm_task_info info, *list = NULL;
	struct pk_error err;
	size_t accepted = 0, busy = 0, n;

	for (int i = 0; i < 20; i++) {
		e.size = (uint64_t)(65 + i) << 20;
		if (spm_task_run(&f->spm, &e, true, NULL, &info, &err) == 0) {
			accepted++;
		} else {
			assert_int_equal(err.code, PK_E_BUSY);
			busy++;
		}
	}
	spm_async_wait(&f->spm);
	assert_int_equal(accepted + busy, 20);
	assert_true(accepted >= 2);
	n = spm_tasks_list(f->spm.tasks, &list);
	assert_int_equal(n, accepted);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(list[i].state, SPM_TASK_DONE);
	}
	free(list);
}

static int call(struct fixture *f, Pk__Request *req, struct pk_error *err)
{
	Pk__Response resp = PK__RESPONSE__INIT;
	struct pk_arena a;
	int r = -ENOSYS;

	pk_arena_init(&a);
	for (size_t i = 0; i < spm_nverbs; i++) {
		if (spm_verbs[i].call == req->call_case) {
			r = spm_verbs[i].fn(&f->spm, req, &resp, &a, err);
		}
	}
	pk_arena_release(&a);
	return r;
}

/* Repeated fields beyond the verb's bound are refused by name before any allocation. */
static void test_spm_task_checks__wire_counts(void **state)
{
	struct fixture *f = *state;
	Pk__Request req = PK__REQUEST__INIT;
	Pk__CreateDomainRequest cd = PK__CREATE_DOMAIN_REQUEST__INIT;
	Pk__UpdateVolumeMetaRequest um = PK__UPDATE_VOLUME_META_REQUEST__INIT;
	Pk__TaskListRequest tl = PK__TASK_LIST_REQUEST__INIT;
	char *pvs[SPM_DOMAIN_MAX_PVS + 1];
	Pk__VolumeMetaChange *changes[SPM_VOLUME_CHANGES_MAX + 1];
	struct pk_error err;

	for (size_t i = 0; i <= SPM_DOMAIN_MAX_PVS; i++) {
		pvs[i] = "/dev/fakepv1";
	}
	cd.domain_id = OTHER;
	cd.pvs = pvs;
	cd.n_pvs = SPM_DOMAIN_MAX_PVS + 1;
	req.call_case = PK__REQUEST__CALL_CREATE_DOMAIN;
	req.create_domain = &cd;
	assert_true(call(f, &req, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_string_equal(err.message, "pvs has 33 entries, more than the limit of 32");

	/* Only counted: not one of the entries is read. */
	memset(changes, 0, sizeof(changes));
	um.domain_id = DOMAIN;
	um.image_id = IMAGE;
	um.changes = changes;
	um.n_changes = SPM_VOLUME_CHANGES_MAX + 1;
	req.call_case = PK__REQUEST__CALL_UPDATE_VOLUME_META;
	req.update_volume_meta = &um;
	assert_true(call(f, &req, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_string_equal(err.message, "changes has 131 entries, more than the limit of 130");

	tl.limit = SPM_TASK_PAGE_MAX + 1;
	req.call_case = PK__REQUEST__CALL_TASK_LIST;
	req.task_list = &tl;
	assert_true(call(f, &req, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "limit 1001"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spm_task_checks__create_volume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_task_checks__delete_extend_reduce_image,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_task_checks__busy_at_the_task_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spm_task_checks__async_tasks_run_on_the_pool,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_spm_task_checks__wire_counts, setup, teardown),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
