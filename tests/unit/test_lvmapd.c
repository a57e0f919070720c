/*
 * The mappings served by pk-lvmapd (lvmapd/lvmapd.c), on regular files
 * standing in for pvs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "common/lvmap.h"
#include "common/strv.h"
#include "lvmapd/lvmapd.h"
#include "tests/unit/test_lvmap_fixture.h"

struct fixture {
	char dir[64];
	char pv[2][96];
	struct pk_lvmapd *d;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pk_lvmapd_config cfg = { 107, 64055, 0640, NULL, 0 };

	char dir[sizeof(f->dir)] = "/tmp/test_lvmapd.XXXXXX";

	assert_non_null(f);
	assert_non_null(mkdtemp(dir));
	memcpy(f->dir, dir, sizeof(dir));
	for (int i = 0; i < 2; i++) {
		int fd;

		snprintf(f->pv[i], sizeof(f->pv[i]), "%s/pv%d", dir, i);
		fd = open(f->pv[i], O_RDWR | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, 1 << 20), 0); /* 2048 sectors */
		close(fd);
	}
	cfg.mount_dir = f->dir; /* stands in for "our own mount" in one test */
	f->d = pk_lvmapd_new(&cfg);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	pk_lvmapd_free(f->d);
	for (int i = 0; i < 2; i++) {
		unlink(f->pv[i]);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/*
 * The fixture's registry treats the fixture dir as its own mount, which
 * holds the pvs; every test but the one about that check replaces it with a
 * registry without a mount dir.
 */
static struct pk_lvmapd *plain(struct fixture *f, unsigned busy_wait_ms)
{
	struct pk_lvmapd_config cfg = { 107, 64055, 0640, NULL, busy_wait_ms };

	pk_lvmapd_free(f->d);
	f->d = pk_lvmapd_new(&cfg);
	return f->d;
}

static int cmd(struct pk_lvmapd *d, struct pk_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cmd(struct pk_lvmapd *d, struct pk_error *err, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	pk_error_clear(err);
	return pk_lvmapd_command(d, buf, (size_t)n, NULL, NULL, err);
}

static void pv_read(const char *pv, void *buf, size_t len, off_t off)
{
	int fd = open(pv, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void test_lvmapd__io_lands_at_the_mapped_pv_offsets(void **state)
{
	struct fixture *f = *state;
	struct pk_lvmapd *d = plain(f, 0);
	struct pk_lvmapd_lv *lv;
	struct pk_error err;
	char *pattern = malloc(3 * 512);
	char *back = malloc(3 * 512);

	assert_non_null(pattern);
	assert_non_null(back);
	for (int i = 0; i < 3 * 512; i++) {
		pattern[i] = (char)(i * 7 + 1);
	}
	/* lv sectors [0,2) -> pv0 @ 100, [2,3) -> pv1 @ 7 */
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 2 %s 100\n2 1 %s 7\n", f->pv[0], f->pv[1]),
			 0);
	assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &lv), 0);
	/* One write across the segment boundary, not sector aligned. */
	assert_int_equal(pk_lvmapd_write(d, lv, pattern + 300, 1000, 300, &err), 1000);
	assert_int_equal(pk_lvmapd_write(d, lv, pattern, 300, 0, &err), 300);
	assert_int_equal(pk_lvmapd_write(d, lv, pattern + 1300, 236, 1300, &err), 236);
	pv_read(f->pv[0], back, 1024, 100 * 512);
	assert_memory_equal(back, pattern, 1024);
	pv_read(f->pv[1], back, 512, 7 * 512);
	assert_memory_equal(back, pattern + 1024, 512);

	memset(back, 0, 3 * 512);
	assert_int_equal(pk_lvmapd_read(d, lv, back, 3 * 512, 0, &err), 3 * 512);
	assert_memory_equal(back, pattern, 3 * 512);
	assert_int_equal(pk_lvmapd_read(d, lv, back, 100, 1000, &err), 100);
	assert_memory_equal(back, pattern + 1000, 100);
	assert_int_equal(pk_lvmapd_sync(d, lv, false, &err), 0);
	assert_int_equal(pk_lvmapd_sync(d, lv, true, &err), 0);
	pk_lvmapd_close(d, lv);
	free(pattern);
	free(back);
}

static void test_lvmapd__io_at_the_end(void **state)
{
	struct fixture *f = *state;
	struct pk_lvmapd *d = plain(f, 0);
	struct pk_lvmapd_lv *lv;
	struct pk_error err;
	char buf[1024];

	memset(buf, 'z', sizeof(buf));
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 2 %s 0\n", f->pv[0]), 0);
	assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &lv), 0);
	/* Reads: short at the end, empty at and beyond it. */
	assert_int_equal(pk_lvmapd_read(d, lv, buf, sizeof(buf), 512, &err), 512);
	assert_int_equal(pk_lvmapd_read(d, lv, buf, sizeof(buf), 1024, &err), 0);
	assert_int_equal(pk_lvmapd_read(d, lv, buf, sizeof(buf), UINT64_MAX, &err), 0);
	/* Writes: cut at the end, ENOSPC at and beyond it. */
	assert_int_equal(pk_lvmapd_write(d, lv, buf, sizeof(buf), 1000, &err), 24);
	pk_error_clear(&err);
	assert_int_equal(pk_lvmapd_write(d, lv, buf, sizeof(buf), 1024, &err), -ENOSPC);
	assert_int_equal(err.code, PK_E_NO_SPACE);
	assert_int_equal(pk_lvmapd_write(d, lv, buf, 1, UINT64_MAX, &err), -ENOSPC);
	pk_lvmapd_close(d, lv);
}

static void test_lvmapd__reload_under_an_open_file(void **state)
{
	struct fixture *f = *state;
	struct pk_lvmapd *d = plain(f, 0);
	struct pk_lvmapd_lv *lv;
	struct pk_lvmapd_attr a;
	struct pk_error err;
	bool replaced = true;
	struct pk_lvmap_table t;
	char buf[512];
	char back[512];

	table_named(&t, "vg", "lv");
	add_ok(&t, 4, f->pv[0], 0);
	assert_int_equal(pk_lvmapd_load(d, &t, &replaced, &err), 0);
	assert_false(replaced);
	assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &lv), 0);
	assert_int_equal(pk_lvmapd_chown(d, "vg", "lv", 5, (gid_t)-1), 0);
	assert_int_equal(pk_lvmapd_chmod(d, "vg", "lv", 0100604), 0);

	/* Extend by a segment on the other pv, with the file open. */
	add_ok(&t, 4, f->pv[1], 1000);
	assert_int_equal(pk_lvmapd_load(d, &t, &replaced, &err), 0);
	assert_true(replaced);
	pk_lvmapd_fstat(d, lv, &a);
	assert_int_equal(a.size, 8 * 512);
	/* Ownership and mode survive a reload. */
	assert_int_equal(a.uid, 5);
	assert_int_equal(a.gid, 64055);
	assert_int_equal(a.mode, 0604);

	memset(buf, 'N', sizeof(buf));
	assert_int_equal(pk_lvmapd_write(d, lv, buf, sizeof(buf), 5 * 512, &err), 512);
	pv_read(f->pv[1], back, sizeof(back), 1001 * 512);
	assert_memory_equal(back, buf, sizeof(buf));

	/* Shrinking is a reload too. */
	pk_lvmap_table_release(&t);
	table_named(&t, "vg", "lv");
	add_ok(&t, 1, f->pv[0], 0);
	assert_int_equal(pk_lvmapd_load(d, &t, NULL, &err), 0);
	assert_int_equal(pk_lvmapd_read(d, lv, back, sizeof(back), 512, &err), 0);
	pk_lvmapd_close(d, lv);
	pk_lvmap_table_release(&t);

	/* After remove and load, the defaults are back. */
	assert_int_equal(cmd(d, &err, "remove vg/lv\n"), 0);
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 1 %s 0\n", f->pv[0]), 0);
	assert_int_equal(pk_lvmapd_stat(d, "vg", "lv", &a), 0);
	assert_int_equal(a.uid, 107);
	assert_int_equal(a.gid, 64055);
	assert_int_equal(a.mode, 0640);
}

static void test_lvmapd__remove_of_an_open_file_is_busy(void **state)
{
	struct fixture *f = *state;
	struct pk_lvmapd *d = plain(f, 0);
	struct pk_lvmapd_lv *lv1;
	struct pk_lvmapd_lv *lv2;
	struct pk_lvmapd_attr a;
	struct pk_error err;

	assert_int_equal(cmd(d, &err, "load vg/lv\n0 1 %s 0\n", f->pv[0]), 0);
	assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &lv1), 0);
	assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &lv2), 0);
	assert_ptr_equal(lv1, lv2);
	assert_int_equal(cmd(d, &err, "remove vg/lv\n"), -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);
	assert_non_null(strstr(err.message, "2 open files"));
	pk_lvmapd_close(d, lv1);
	assert_int_equal(cmd(d, &err, "remove vg/lv\n"), -EBUSY);
	pk_lvmapd_close(d, lv2);
	assert_int_equal(cmd(d, &err, "remove vg/lv\n"), 0);
	assert_int_equal(pk_lvmapd_stat(d, "vg", "lv", &a), -ENOENT);
	assert_int_equal(cmd(d, &err, "remove vg/lv\n"), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &lv1), -ENOENT);
}

struct late_close {
	struct pk_lvmapd *d;
	struct pk_lvmapd_lv *lv;
};

static void *close_later(void *arg)
{
	struct late_close *lc = arg;

	usleep(50 * 1000);
	pk_lvmapd_close(lc->d, lc->lv);
	return NULL;
}

static void test_lvmapd__remove_waits_for_a_release_in_flight(void **state)
{
	struct fixture *f = *state;
	struct pk_lvmapd *d = plain(f, 2000);
	struct late_close lc = { d, NULL };
	struct pk_error err;
	pthread_t t;

	assert_int_equal(cmd(d, &err, "load vg/lv\n0 1 %s 0\n", f->pv[0]), 0);
	assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &lc.lv), 0);
	assert_int_equal(pthread_create(&t, NULL, close_later, &lc), 0);
	assert_int_equal(cmd(d, &err, "remove vg/lv\n"), 0);
	pthread_join(t, NULL);

	/* A file that stays open still fails, after the wait. */
	d = plain(f, 100);
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 1 %s 0\n", f->pv[0]), 0);
	assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &lc.lv), 0);
	assert_int_equal(cmd(d, &err, "remove vg/lv\n"), -EBUSY);
	pk_lvmapd_close(d, lc.lv);
}

static void test_lvmapd__load_checks_the_pvs(void **state)
{
	struct fixture *f = *state;
	struct pk_lvmapd *d = plain(f, 0);
	struct pk_lvmapd_attr a;
	struct pk_error err;
	char missing[128];

	snprintf(missing, sizeof(missing), "%s/missing", f->dir);
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 1 %s 0\n", missing), -ENOENT);
	assert_non_null(strstr(err.message, missing));
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 1 %s 0\n", f->dir), -EISDIR);
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 1 /dev/null 0\n"), -EINVAL);
	assert_non_null(strstr(err.message, "not a block device or a regular file"));
	/* The pv holds 2048 sectors. */
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 1 %s 2048\n", f->pv[0]), -EINVAL);
	assert_non_null(strstr(err.message, "beyond its end"));
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 2 %s 0\n2 1 %s 2047\n", f->pv[0],
			     f->pv[1]),
			 0);
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 2048 %s 0\n2048 1 %s 2048\n", f->pv[0],
			     f->pv[1]),
			 -EINVAL);
	/* A refused reload leaves the old table in place. */
	assert_int_equal(pk_lvmapd_stat(d, "vg", "lv", &a), 0);
	assert_int_equal(a.size, 3 * 512);
	/* Parse errors come through unchanged. */
	assert_int_equal(cmd(d, &err, "load vg/lv\n1 1 %s 0\n", f->pv[0]), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
}

static void test_lvmapd__load_refuses_pvs_inside_the_mount(void **state)
{
	struct fixture *f = *state;
	struct pk_error err;
	char link[128];
	int r;

	/* The fixture's own registry has mount_dir = its dir. */
	assert_int_equal(cmd(f->d, &err, "load vg/lv\n0 1 %s 0\n", f->pv[0]), -EINVAL);
	assert_non_null(strstr(err.message, "own mount"));
	/* Also through a symlink from outside that resolves there. */
	snprintf(link, sizeof(link), "%s.link", f->dir);
	assert_int_equal(symlink(f->pv[1], link), 0);
	r = cmd(f->d, &err, "load vg/lv\n0 1 %s 0\n", link);
	unlink(link);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err.message, "own mount"));
}

static void test_lvmapd__names_listing_and_attributes(void **state)
{
	struct fixture *f = *state;
	struct pk_lvmapd *d = plain(f, 0);
	struct pk_lvmapd_attr a;
	struct pk_error err;
	char **names;
	size_t n;

	assert_int_equal(pk_lvmapd_list(d, NULL, &names, &n), 0);
	assert_int_equal(n, 0);
	pk_strv_free(names);
	assert_int_equal(cmd(d, &err, "load b/x\n0 1 %s 0\n", f->pv[0]), 0);
	assert_int_equal(cmd(d, &err, "load a/z\n0 1 %s 1\n", f->pv[0]), 0);
	assert_int_equal(cmd(d, &err, "load b/a\n0 1 %s 2\n", f->pv[0]), 0);
	assert_int_equal(cmd(d, &err, "load c/y\n0 1 %s 3\n", f->pv[0]), 0);

	assert_int_equal(pk_lvmapd_list(d, NULL, &names, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	assert_string_equal(names[2], "c");
	pk_strv_free(names);
	assert_int_equal(pk_lvmapd_list(d, "b", &names, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "x");
	pk_strv_free(names);
	assert_int_equal(pk_lvmapd_list(d, "nope", &names, &n), -ENOENT);

	assert_true(pk_lvmapd_vg_exists(d, "a"));
	assert_true(pk_lvmapd_vg_exists(d, "c"));
	assert_false(pk_lvmapd_vg_exists(d, "d"));
	assert_false(pk_lvmapd_vg_exists(d, ""));
	assert_int_equal(cmd(d, &err, "remove a/z\n"), 0);
	assert_false(pk_lvmapd_vg_exists(d, "a"));

	assert_int_equal(pk_lvmapd_stat(d, "b", "x", &a), 0);
	assert_int_equal(a.size, 512);
	assert_int_equal(a.uid, 107);
	assert_int_equal(a.mode, 0640);
	assert_int_equal(pk_lvmapd_chown(d, "b", "x", (uid_t)-1, 9), 0);
	assert_int_equal(pk_lvmapd_stat(d, "b", "x", &a), 0);
	assert_int_equal(a.uid, 107);
	assert_int_equal(a.gid, 9);
	assert_int_equal(pk_lvmapd_chown(d, "b", "nope", 1, 1), -ENOENT);
	assert_int_equal(pk_lvmapd_chmod(d, "b", "nope", 0600), -ENOENT);
	assert_int_equal(pk_lvmapd_stat(d, "b", "nope", &a), -ENOENT);
}

static void test_lvmapd__truncate_and_fallocate_keep_the_size(void **state)
{
	struct fixture *f = *state;
	struct pk_lvmapd *d = plain(f, 0);
	struct pk_lvmapd_lv *lv;
	struct pk_error err;
	char buf[512];
	char back[512];

	assert_int_equal(cmd(d, &err, "load vg/lv\n0 4 %s 0\n", f->pv[0]), 0);
	assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &lv), 0);
	memset(buf, 'T', sizeof(buf));
	assert_int_equal(pk_lvmapd_write(d, lv, buf, sizeof(buf), 0, &err), 512);
	/* To 0 and to the size: accepted, nothing discarded. */
	assert_int_equal(pk_lvmapd_truncate(d, "vg", "lv", 0, &err), 0);
	assert_int_equal(pk_lvmapd_truncate(d, "vg", "lv", 2048, &err), 0);
	assert_int_equal(pk_lvmapd_read(d, lv, back, sizeof(back), 0, &err), 512);
	assert_memory_equal(back, buf, sizeof(buf));
	pk_error_clear(&err);
	assert_int_equal(pk_lvmapd_truncate(d, "vg", "lv", 4096, &err), -EPERM);
	assert_true(pk_error_is_set(&err));
	assert_int_equal(pk_lvmapd_truncate(d, "vg", "lv", 1024, &err), -EPERM);
	assert_int_equal(pk_lvmapd_truncate(d, "vg", "nope", 0, &err), -ENOENT);

	assert_int_equal(pk_lvmapd_fallocate(d, lv, 0, 0, 2048, &err), 0);
	assert_int_equal(pk_lvmapd_fallocate(d, lv, FALLOC_FL_KEEP_SIZE, 1024, 1024, &err),
			 0);
	assert_int_equal(pk_lvmapd_fallocate(d, lv, 0, 1024, 1025, &err), -EOPNOTSUPP);
	assert_int_equal(pk_lvmapd_fallocate(d, lv, 0, 4096, 1, &err), -EOPNOTSUPP);
	assert_int_equal(pk_lvmapd_fallocate(d, lv, 0, 1, UINT64_MAX, &err), -EOPNOTSUPP);
	assert_int_equal(pk_lvmapd_fallocate(d, lv,
					     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
					     512, &err),
			 -EOPNOTSUPP);
	assert_int_equal(pk_lvmapd_fallocate(d, lv, FALLOC_FL_ZERO_RANGE, 0, 512, &err),
			 -EOPNOTSUPP);
	pk_lvmapd_close(d, lv);
}

/* I/O on several threads while the table is reloaded between two layouts. */
struct io_worker {
	struct pk_lvmapd *d;
	struct pk_lvmapd_lv *lv;
	int id;
	int failures;
};

static void *io_loop(void *arg)
{
	struct io_worker *w = arg;
	char buf[4096];
	char back[4096];
	struct pk_error err;

	for (int i = 0; i < 300; i++) {
		uint64_t off = (uint64_t)((w->id * 4 + i % 4) * 4096) % (16 * 4096);

		memset(buf, 'a' + w->id, sizeof(buf));
		if (pk_lvmapd_write(w->d, w->lv, buf, sizeof(buf), off, &err) != 4096 ||
		    pk_lvmapd_read(w->d, w->lv, back, sizeof(back), off, &err) != 4096) {
			w->failures++;
		}
	}
	return NULL;
}

static void test_lvmapd__reloads_race_safely_with_io(void **state)
{
	struct fixture *f = *state;
	struct pk_lvmapd *d = plain(f, 0);
	struct io_worker w[4];
	pthread_t t[4];
	struct pk_error err;

	/* 128 sectors, split differently by the two layouts. */
	assert_int_equal(cmd(d, &err, "load vg/lv\n0 128 %s 0\n", f->pv[0]), 0);
	for (int i = 0; i < 4; i++) {
		w[i].d = d;
		w[i].id = i;
		w[i].failures = 0;
		assert_int_equal(pk_lvmapd_open(d, "vg", "lv", &w[i].lv), 0);
		assert_int_equal(pthread_create(&t[i], NULL, io_loop, &w[i]), 0);
	}
	for (int i = 0; i < 200; i++) {
		if (i % 2) {
			assert_int_equal(cmd(d, &err, "load vg/lv\n0 128 %s 0\n", f->pv[0]), 0);
		} else {
			assert_int_equal(cmd(d, &err, "load vg/lv\n0 13 %s 0\n13 100 %s 0\n"
						      "113 15 %s 13\n",
					     f->pv[0], f->pv[1], f->pv[0]),
					 0);
		}
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
		pk_lvmapd_close(d, w[i].lv);
	}
	assert_int_equal(cmd(d, &err, "remove vg/lv\n"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lvmapd__io_lands_at_the_mapped_pv_offsets,
						fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lvmapd__io_at_the_end, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lvmapd__reload_under_an_open_file,
						fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lvmapd__remove_of_an_open_file_is_busy,
						fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lvmapd__remove_waits_for_a_release_in_flight,
						fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lvmapd__load_checks_the_pvs, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lvmapd__load_refuses_pvs_inside_the_mount,
						fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lvmapd__names_listing_and_attributes,
						fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lvmapd__truncate_and_fallocate_keep_the_size,
						fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lvmapd__reloads_race_safely_with_io,
						fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests_name("lvmapd", tests, NULL, NULL);
}
