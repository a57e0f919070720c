/* pk-test-fakes: fake_lvm */
/*
 * LV activation (common/activation*.c): the lab backend's table (LVM
 * segments -> 512-byte sectors on the PVs), the commands it writes to
 * pk-lvmapd's control file (a regular file stands in for the mount here),
 * the dm backend on the fake LVM, paths and backend selection.
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
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/activation.h"
#include "common/lvm.h"
#include "common/lvmap.h"
#include "tests/fakes/fake_lvm.h"

#define MiB (1ull << 20)

static const char *const devices[] = { "/dev/pv0", "/dev/pv1", NULL };

/* ---- table construction ---------------------------------------------------- */

static void vg_with_pvs(struct pk_lvm_vg *vg, uint64_t pe_start0, uint64_t pe_start1)
{
	memset(vg, 0, sizeof(*vg));
	snprintf(vg->name, sizeof(vg->name), "vg");
	vg->npvs = 2;
	vg->pvs = calloc(2, sizeof(*vg->pvs));
	assert_non_null(vg->pvs);
	snprintf(vg->pvs[0].name, sizeof(vg->pvs[0].name), "/dev/pv0");
	vg->pvs[0].pe_start = pe_start0;
	snprintf(vg->pvs[1].name, sizeof(vg->pvs[1].name), "/dev/pv1");
	vg->pvs[1].pe_start = pe_start1;
}

static void lv_add_segment(struct pk_lvm_lv *lv, uint64_t count, const char *pv,
			   uint64_t pv_extent)
{
	struct pk_lvm_segment *s;
	uint64_t start = 0;

	for (size_t i = 0; i < lv->nsegments; i++) {
		start += lv->segments[i].extent_count;
	}
	lv->segments = realloc(lv->segments, (lv->nsegments + 1) * sizeof(*s));
	assert_non_null(lv->segments);
	s = &lv->segments[lv->nsegments++];
	memset(s, 0, sizeof(*s));
	s->start_extent = start;
	s->extent_count = count;
	snprintf(s->pv, sizeof(s->pv), "%s", pv);
	s->pv_start_extent = pv_extent;
}

static void test_activation__lab_table_maps_extents_to_sectors(void **state)
{
	struct pk_lvm_lv lv = { .name = "lv", .linear = true };
	struct pk_lvmap_table t;
	struct pk_lvm_vg vg;
	struct pk_error err;
	const uint64_t ext = 4 * MiB;

	(void)state;
	vg_with_pvs(&vg, 1 * MiB, 192 * 1024);
	lv_add_segment(&lv, 15, "/dev/pv0", 0);
	lv_add_segment(&lv, 5, "/dev/pv1", 10);
	lv_add_segment(&lv, 1, "/dev/pv0", 29);
	assert_int_equal(pk_activation_lab_table(&vg, &lv, ext, &t, &err), 0);
	assert_string_equal(t.vg, "vg");
	assert_string_equal(t.lv, "lv");
	assert_int_equal(t.nsegments, 3);
	/* 15 extents of 4 MiB = 122880 sectors at pe_start 1 MiB = sector 2048 */
	assert_int_equal(t.segments[0].start, 0);
	assert_int_equal(t.segments[0].count, 122880);
	assert_string_equal(t.segments[0].pv, "/dev/pv0");
	assert_int_equal(t.segments[0].pv_offset, 2048);
	/* PV extent 10 of pv1: (192 KiB + 40 MiB) / 512 */
	assert_int_equal(t.segments[1].start, 122880);
	assert_int_equal(t.segments[1].count, 40960);
	assert_string_equal(t.segments[1].pv, "/dev/pv1");
	assert_int_equal(t.segments[1].pv_offset, 384 + 81920);
	assert_int_equal(t.segments[2].start, 163840);
	assert_int_equal(t.segments[2].count, 8192);
	assert_int_equal(t.segments[2].pv_offset, 2048 + 29 * 8192);
	assert_int_equal(pk_lvmap_table_size(&t), 21 * ext);
	assert_int_equal(pk_lvmap_table_validate(&t, &err), 0);
	pk_lvmap_table_release(&t);
	free(lv.segments);
	pk_lvm_vg_release(&vg);
}

static void test_activation__lab_table_refusals(void **state)
{
	struct pk_lvm_lv lv = { .name = "lv", .linear = true };
	struct pk_lvmap_table t = { 0 };
	struct pk_lvm_vg vg;
	struct pk_error err;

	(void)state;
	vg_with_pvs(&vg, MiB, MiB);
	/* no segment */
	assert_int_equal(pk_activation_lab_table(&vg, &lv, 4 * MiB, &t, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	lv_add_segment(&lv, 1, "/dev/elsewhere", 0);
	assert_int_equal(pk_activation_lab_table(&vg, &lv, 4 * MiB, &t, &err), -ENODEV);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	assert_non_null(strstr(err.message, "'/dev/elsewhere', which is not a PV"));
	snprintf(lv.segments[0].pv, sizeof(lv.segments[0].pv), "/dev/pv0");
	/* extent size not in sectors, numbers that overflow */
	assert_int_equal(pk_activation_lab_table(&vg, &lv, 1000, &t, &err), -EINVAL);
	lv.segments[0].pv_start_extent = UINT64_MAX / 2;
	assert_int_equal(pk_activation_lab_table(&vg, &lv, 4 * MiB, &t, &err), -EOVERFLOW);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	lv.segments[0].pv_start_extent = 0;
	vg.pvs[0].pe_start = 1000;
	assert_int_equal(pk_activation_lab_table(&vg, &lv, 4 * MiB, &t, &err), -EOVERFLOW);
	vg.pvs[0].pe_start = MiB;
	/* not linear, or a name pk-lvmapd refuses */
	lv.linear = false;
	assert_int_equal(pk_activation_lab_table(&vg, &lv, 4 * MiB, &t, &err), -EOPNOTSUPP);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	lv.linear = true;
	snprintf(lv.name, sizeof(lv.name), ".hidden");
	assert_int_equal(pk_activation_lab_table(&vg, &lv, 4 * MiB, &t, &err), -EINVAL);
	assert_int_equal(t.nsegments, 0);
	assert_null(t.segments);
	free(lv.segments);
	pk_lvm_vg_release(&vg);
}

/* ---- backends on the fake LVM ----------------------------------------------- */

struct fixture {
	char dir[64];
	char control[96];
	struct pk_lvm *lvm;
};

static int setup(void **state)
{
	struct pk_lvm_config cfg = { .devices = devices, .activation = true };
	struct fixture *f = calloc(1, sizeof(*f));
	struct pk_error err;

	assert_non_null(f);
	fake_lvm_reset();
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_activation.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->control, sizeof(f->control), "%s/.control", f->dir);
	assert_int_equal(pk_lvm_new(&cfg, &f->lvm, &err), 0);
	assert_int_equal(pk_lvm_vg_create(f->lvm, "vg", devices, 0, NULL, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pk_lvm_free(f->lvm);
	unlink(f->control);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The control "file" as the commands written to it. */
static char *control_text(const struct fixture *f)
{
	static char buf[4096];
	ssize_t n;
	int fd = open(f->control, O_RDONLY);

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

static void test_activation__lab_loads_removes_and_names(void **state)
{
	struct pk_activation_config cfg = { .kind = PK_ACTIVATION_LAB };
	struct fixture *f = *state;
	struct pk_activation *act = NULL;
	struct pk_error err;
	char path[256];
	int fd;

	assert_int_equal(pk_activation_new(&cfg, f->lvm, &act, &err), -EINVAL);
	assert_non_null(strstr(err.message, "lvmap_dir"));
	cfg.lvmap_dir = f->dir;
	assert_int_equal(pk_activation_new(&cfg, f->lvm, &act, &err), 0);
	assert_int_equal(pk_activation_kind(act), PK_ACTIVATION_LAB);

	assert_int_equal(pk_activation_path(act, "vg", "lv", path, sizeof(path), &err), 0);
	assert_non_null(strstr(path, "/lv"));
	assert_int_equal(strncmp(path, f->dir, strlen(f->dir)), 0);
	assert_int_equal(pk_activation_path(act, "vg", "lv", path, 10, &err), -ENAMETOOLONG);
	assert_int_equal(pk_activation_path(act, "vg", "../x", path, sizeof(path), &err),
			 -EINVAL);

	/* no pk-lvmapd: nothing at <dir>/.control */
	assert_int_equal(pk_lvm_lv_create(f->lvm, "vg", "lv", 8 * MiB, NULL, &err), 0);
	assert_int_equal(pk_activation_activate(act, "vg", "lv", &err), -ENOENT);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_non_null(strstr(err.message, "pk-lvmapd is not serving"));

	fd = open(f->control, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pk_activation_activate(act, "vg", "lv", &err), 0);
	/* fake PVs: pe_start 1 MiB, 4 MiB extents, first fit on pv0 */
	assert_string_equal(control_text(f), "load vg/lv\n0 16384 /dev/pv0 2048\n");

	/* refresh after an extend: the new segments are loaded */
	assert_int_equal(pk_lvm_lv_create(f->lvm, "vg", "other", 4 * MiB, NULL, &err), 0);
	assert_int_equal(pk_lvm_lv_extend(f->lvm, "vg", "lv", 12 * MiB, &err), 0);
	assert_int_equal(truncate(f->control, 0), 0);
	assert_int_equal(pk_activation_refresh(act, "vg", "lv", &err), 0);
	assert_string_equal(control_text(f), "load vg/lv\n0 16384 /dev/pv0 2048\n"
					     "16384 8192 /dev/pv0 26624\n");

	assert_int_equal(truncate(f->control, 0), 0);
	assert_int_equal(pk_activation_deactivate(act, "vg", "lv", &err), 0);
	assert_string_equal(control_text(f), "remove vg/lv\n");

	/* LVM metadata errors come through */
	assert_int_equal(pk_activation_activate(act, "vg", "missing", &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	fake_lvm_fail_op(FAKE_LVM_VG_REPORT, -EBUSY);
	assert_int_equal(pk_activation_activate(act, "vg", "lv", &err), -EBUSY);
	pk_activation_free(act);
	pk_activation_free(NULL);
}

static void test_activation__dm_goes_through_lvm(void **state)
{
	struct pk_activation_config cfg = { .kind = PK_ACTIVATION_DM };
	struct pk_lvm_config nodm = { .devices = devices };
	struct fixture *f = *state;
	struct pk_activation *act;
	struct pk_lvm *lvm2;
	struct pk_error err;
	char path[64];

	assert_int_equal(pk_activation_new(&cfg, f->lvm, &act, &err), 0);
	assert_int_equal(pk_activation_path(act, "vg", "lv", path, sizeof(path), &err), 0);
	assert_string_equal(path, "/dev/vg/lv");
	assert_int_equal(pk_lvm_lv_create(f->lvm, "vg", "lv", 8 * MiB, NULL, &err), 0);
	assert_int_equal(pk_activation_activate(act, "vg", "lv", &err), 0);
	assert_true(fake_lvm_lv_active("vg", "lv"));
	assert_int_equal(pk_activation_activate(act, "vg", "lv", &err), 0);
	assert_int_equal(pk_activation_refresh(act, "vg", "lv", &err), 0);
	assert_true(fake_lvm_lv_active("vg", "lv"));
	fake_lvm_set_open("vg", "lv", true);
	assert_int_equal(pk_activation_deactivate(act, "vg", "lv", &err), -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);
	fake_lvm_set_open("vg", "lv", false);
	assert_int_equal(pk_activation_deactivate(act, "vg", "lv", &err), 0);
	assert_false(fake_lvm_lv_active("vg", "lv"));
	assert_int_equal(pk_activation_deactivate(act, "vg", "lv", &err), 0);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_ACTIVATION), 6);
	assert_int_equal(pk_activation_activate(act, "vg", "missing", &err), -ENOENT);
	pk_activation_free(act);

	/* LVM without device-mapper cannot serve the dm backend */
	assert_int_equal(pk_lvm_new(&nodm, &lvm2, &err), 0);
	assert_int_equal(pk_activation_new(&cfg, lvm2, &act, &err), 0);
	assert_int_equal(pk_activation_activate(act, "vg", "lv", &err), -EOPNOTSUPP);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	pk_activation_free(act);
	pk_lvm_free(lvm2);
}

static void test_activation__kinds(void **state)
{
	struct pk_activation_config cfg = { .kind = 7 };
	enum pk_activation_kind kind;
	struct pk_activation *act;
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_activation_kind_parse("dm", &kind, &err), 0);
	assert_int_equal(kind, PK_ACTIVATION_DM);
	assert_int_equal(pk_activation_kind_parse("lab", &kind, &err), 0);
	assert_int_equal(kind, PK_ACTIVATION_LAB);
	assert_int_equal(pk_activation_kind_parse("fuse", &kind, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(pk_activation_kind_parse(NULL, &kind, &err), -EINVAL);
	assert_string_equal(pk_activation_kind_name(PK_ACTIVATION_LAB), "lab");
	assert_string_equal(pk_activation_kind_name(0), "unknown");
	assert_int_equal(pk_activation_new(&cfg, NULL, &act, &err), -EINVAL);
	cfg.kind = PK_ACTIVATION_LAB;
	cfg.lvmap_dir = "relative";
	assert_int_equal(pk_activation_new(&cfg, NULL, &act, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_activation__lab_table_maps_extents_to_sectors),
		cmocka_unit_test(test_activation__lab_table_refusals),
		cmocka_unit_test_setup_teardown(test_activation__lab_loads_removes_and_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_activation__dm_goes_through_lvm, setup,
						teardown),
		cmocka_unit_test(test_activation__kinds),
	};

	return cmocka_run_group_tests_name("activation", tests, NULL, NULL);
}
