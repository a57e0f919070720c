/*
 * The LVM adapter: report parsing on report text captured from LVM 2.03.16
 * (lvm2cmd with --nameprefixes --noheadings --units b --nosuffix), the
 * mapping of LVM's error text to codes, argument checks, the rendered
 * lvm.conf (common/lvm_text.h), and the handle's own rules (common/lvm.c:
 * one per process, bad configs refused, a missing VG reported as such).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <lvm2cmd.h>
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/lvm.h"
#include "common/lvm_text.h"

/* ---- captured samples ------------------------------------------------------ */

/* vgs -o pk_lvm_report_vg_fields of a VG on two 64 MiB loop devices. */
static const char vg_sample[] =
	"LVM2_VG_NAME='vgx' LVM2_VG_UUID='p37R24-11Rh-ZWYy-04JS-6eSD-x1yt-pQYuYT' "
	"LVM2_VG_SIZE='125829120' LVM2_VG_FREE='41943040' LVM2_VG_EXTENT_SIZE='4194304' "
	"LVM2_VG_EXTENT_COUNT='30' LVM2_VG_FREE_COUNT='10' "
	"LVM2_VG_TAGS='PK_DOMAIN=x,PK_VERSION=1' LVM2_PV_NAME='/dev/loop0' "
	"LVM2_PV_SIZE='62914560' LVM2_PV_FREE='0' LVM2_PE_START='1048576'\n"
	"LVM2_VG_NAME='vgx' LVM2_VG_UUID='p37R24-11Rh-ZWYy-04JS-6eSD-x1yt-pQYuYT' "
	"LVM2_VG_SIZE='125829120' LVM2_VG_FREE='41943040' LVM2_VG_EXTENT_SIZE='4194304' "
	"LVM2_VG_EXTENT_COUNT='30' LVM2_VG_FREE_COUNT='10' "
	"LVM2_VG_TAGS='PK_DOMAIN=x,PK_VERSION=1' LVM2_PV_NAME='/dev/loop1' "
	"LVM2_PV_SIZE='62914560' LVM2_PV_FREE='41943040' LVM2_PE_START='1048576'\n";

/* lvs --segments: lv1 extended onto the second PV, lv2 without tags. */
static const char lvs_sample[] =
	"LVM2_LV_NAME='lv1' LVM2_LV_UUID='WeXdf7-6ZAJ-SwT9-Xt89-ozdH-no8x-aaMmUo' "
	"LVM2_LV_SIZE='83886080' LVM2_LV_TAGS='PK_GEN=0,PK_IMG=abc' "
	"LVM2_VG_EXTENT_SIZE='4194304' LVM2_SEGTYPE='linear' LVM2_STRIPES='1' "
	"LVM2_SEG_START_PE='0' LVM2_SEG_SIZE_PE='15' LVM2_DEVICES='/dev/loop0(0)'\n"
	"LVM2_LV_NAME='lv1' LVM2_LV_UUID='WeXdf7-6ZAJ-SwT9-Xt89-ozdH-no8x-aaMmUo' "
	"LVM2_LV_SIZE='83886080' LVM2_LV_TAGS='PK_GEN=0,PK_IMG=abc' "
	"LVM2_VG_EXTENT_SIZE='4194304' LVM2_SEGTYPE='linear' LVM2_STRIPES='1' "
	"LVM2_SEG_START_PE='15' LVM2_SEG_SIZE_PE='5' LVM2_DEVICES='/dev/loop1(10)'\n"
	"LVM2_LV_NAME='lv2' LVM2_LV_UUID='RSYaIY-wnQC-lXoI-dZBk-llz8-Bei7-3NIHEI' "
	"LVM2_LV_SIZE='41943040' LVM2_LV_TAGS='' LVM2_VG_EXTENT_SIZE='4194304' "
	"LVM2_SEGTYPE='linear' LVM2_STRIPES='1' LVM2_SEG_START_PE='0' "
	"LVM2_SEG_SIZE_PE='10' LVM2_DEVICES='/dev/loop1(0)'\n";

/* One segment row of LV `name` with the given fields. */
static char *lv_row(const char *name, const char *size, const char *segtype,
		    const char *stripes, const char *start, const char *count,
		    const char *devices)
{
	char *s;

	assert_true(asprintf(&s,
			     "LVM2_LV_NAME='%s' LVM2_LV_UUID='u' LVM2_LV_SIZE='%s' "
			     "LVM2_LV_TAGS='' LVM2_VG_EXTENT_SIZE='4194304' LVM2_SEGTYPE='%s' "
			     "LVM2_STRIPES='%s' LVM2_SEG_START_PE='%s' LVM2_SEG_SIZE_PE='%s' "
			     "LVM2_DEVICES='%s'\n",
			     name, size, segtype, stripes, start, count, devices) > 0);
	return s;
}

static char *text_copy(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* ---- report parsing ------------------------------------------------------- */

static void test_lvm__vg_report_is_parsed(void **state)
{
	struct pk_lvm_vg vg;
	struct pk_error err;
	char *text = text_copy(vg_sample);

	(void)state;
	assert_int_equal(pk_lvm_report_vg_parse(text, &vg, &err), 0);
	assert_string_equal(vg.name, "vgx");
	assert_string_equal(vg.uuid, "p37R24-11Rh-ZWYy-04JS-6eSD-x1yt-pQYuYT");
	assert_int_equal(vg.size, 125829120);
	assert_int_equal(vg.free, 41943040);
	assert_int_equal(vg.extent_size, 4194304);
	assert_int_equal(vg.extent_count, 30);
	assert_int_equal(vg.free_count, 10);
	assert_int_equal(vg.ntags, 2);
	assert_string_equal(vg.tags[0], "PK_DOMAIN=x");
	assert_string_equal(vg.tags[1], "PK_VERSION=1");
	assert_null(vg.tags[2]);
	assert_int_equal(vg.npvs, 2);
	assert_string_equal(vg.pvs[0].name, "/dev/loop0");
	assert_string_equal(vg.pvs[1].name, "/dev/loop1");
	assert_int_equal(vg.pvs[1].pe_start, 1048576);
	assert_int_equal(vg.pvs[1].size, 62914560);
	assert_int_equal(vg.pvs[0].free, 0);
	assert_int_equal(vg.pvs[1].free, 41943040);
	pk_lvm_vg_release(&vg);
	pk_lvm_vg_release(NULL);
	free(text);
}

static void test_lvm__lv_report_builds_segments(void **state)
{
	struct pk_lvm_lv_list list;
	const struct pk_lvm_lv *lv;
	struct pk_error err;
	char *text = text_copy(lvs_sample);

	(void)state;
	assert_int_equal(pk_lvm_report_lvs_parse(text, &list, &err), 0);
	assert_int_equal(list.count, 2);
	assert_int_equal(list.extent_size, 4194304);
	lv = pk_lvm_lv_list_find(&list, "lv1");
	assert_non_null(lv);
	assert_true(lv->linear);
	assert_int_equal(lv->size, 83886080);
	assert_int_equal(lv->ntags, 2);
	assert_true(pk_lvm_tags_contain(lv->tags, "PK_IMG=abc"));
	assert_false(pk_lvm_tags_contain(lv->tags, "PK_IMG"));
	assert_int_equal(lv->nsegments, 2);
	assert_int_equal(lv->segments[0].start_extent, 0);
	assert_int_equal(lv->segments[0].extent_count, 15);
	assert_string_equal(lv->segments[0].pv, "/dev/loop0");
	assert_int_equal(lv->segments[0].pv_start_extent, 0);
	assert_int_equal(lv->segments[1].start_extent, 15);
	assert_int_equal(lv->segments[1].extent_count, 5);
	assert_string_equal(lv->segments[1].pv, "/dev/loop1");
	assert_int_equal(lv->segments[1].pv_start_extent, 10);
	lv = pk_lvm_lv_list_find(&list, "lv2");
	assert_non_null(lv);
	assert_int_equal(lv->ntags, 0);
	assert_non_null(lv->tags);
	assert_null(lv->tags[0]);
	assert_null(pk_lvm_lv_list_find(&list, "lv3"));
	pk_lvm_lv_list_release(&list);
	free(text);
}

static void test_lvm__empty_lv_report_is_an_empty_list(void **state)
{
	struct pk_lvm_lv_list list;
	struct pk_error err;
	char text[] = "";

	(void)state;
	assert_int_equal(pk_lvm_report_lvs_parse(text, &list, &err), 0);
	assert_int_equal(list.count, 0);
	assert_int_equal(list.extent_size, 0);
	pk_lvm_lv_list_release(&list);
}

static void test_lvm__non_linear_lv_has_no_segments(void **state)
{
	struct pk_lvm_lv_list list;
	struct pk_error err;
	char *row = lv_row("st", "8388608", "striped", "2", "0", "2",
			   "/dev/loop0(0),/dev/loop1(0)");

	(void)state;
	assert_int_equal(pk_lvm_report_lvs_parse(row, &list, &err), 0);
	assert_int_equal(list.count, 1);
	assert_false(list.lvs[0].linear);
	assert_int_equal(list.lvs[0].nsegments, 0);
	pk_lvm_lv_list_release(&list);
	free(row);
}

static void expect_lvs_rejected(char *text, const char *needle)
{
	struct pk_lvm_lv_list list = { 0 };
	struct pk_error err;

	pk_error_clear(&err);
	assert_true(pk_lvm_report_lvs_parse(text, &list, &err) < 0);
	assert_int_equal(err.code, PK_E_INTERNAL);
	if (!strstr(err.message, needle)) {
		fail_msg("message '%s' lacks '%s'", err.message, needle);
	}
	assert_int_equal(list.count, 0);
	free(text);
}

static void test_lvm__garbled_lv_reports_are_rejected(void **state)
{
	char *a, *b, *joined;

	(void)state;
	/* not a report row, unterminated value, missing field, bad number */
	expect_lvs_rejected(text_copy("  WARNING: something\n"), "unexpected LVM report text");
	expect_lvs_rejected(text_copy("LVM2_LV_NAME='x\n"), "not terminated");
	expect_lvs_rejected(text_copy("LVM2_LV_NAME='x' LVM2_VG_EXTENT_SIZE='4194304'\n"),
			    "lacks field LV_UUID");
	expect_lvs_rejected(lv_row("a", "4194304", "linear", "1", "0", "x1", "/dev/a(0)"),
			    "SEG_SIZE_PE='x1' is not a number");
	expect_lvs_rejected(lv_row("a", "99999999999999999999", "linear", "1", "0", "1",
				   "/dev/a(0)"),
			    "is not a number");
	/* devices field */
	expect_lvs_rejected(lv_row("a", "4194304", "linear", "1", "0", "1", "/dev/a"),
			    "is not '<pv>(<extent>)'");
	expect_lvs_rejected(lv_row("a", "4194304", "linear", "1", "0", "1", "/dev/a()"),
			    "is not '<pv>(<extent>)'");
	expect_lvs_rejected(lv_row("a", "4194304", "linear", "1", "0", "1", "(3)"),
			    "is not '<pv>(<extent>)'");
	/* a gap, a size that the segments do not cover */
	expect_lvs_rejected(lv_row("a", "4194304", "linear", "1", "1", "1", "/dev/a(0)"),
			    "starts at extent 1, expected 0");
	expect_lvs_rejected(lv_row("a", "8388608", "linear", "1", "0", "1", "/dev/a(0)"),
			    "segments cover 1 extents");
	/* the segments of one LV apart */
	a = lv_row("a", "8388608", "linear", "1", "0", "1", "/dev/a(0)");
	b = lv_row("b", "4194304", "linear", "1", "0", "1", "/dev/a(1)");
	assert_true(asprintf(&joined, "%s%s%s", a, b, a) > 0);
	free(a);
	free(b);
	expect_lvs_rejected(joined, "segments of LV 'a' apart");
	/* more fields than a row may have */
	joined = NULL;
	{
		char buf[2048] = "";

		for (int i = 0; i < 30; i++) {
			strcat(buf, "LVM2_X='1' ");
		}
		strcat(buf, "LVM2_Y='2'\n");
		joined = text_copy(buf);
	}
	expect_lvs_rejected(joined, "more than");
}

static void test_lvm__garbled_vg_reports_are_rejected(void **state)
{
	struct pk_lvm_vg vg = { 0 };
	struct pk_error err;
	char *text;

	(void)state;
	text = text_copy("");
	assert_int_equal(pk_lvm_report_vg_parse(text, &vg, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "no rows"));
	free(text);

	/* a second row of another VG */
	assert_true(asprintf(&text, "%.*sLVM2_VG_NAME='vgy' LVM2_PV_NAME='/dev/x' "
				    "LVM2_PV_SIZE='1' LVM2_PV_FREE='0' LVM2_PE_START='1'\n",
			     (int)(strchr(vg_sample, '\n') - vg_sample + 1), vg_sample) > 0);
	assert_int_equal(pk_lvm_report_vg_parse(text, &vg, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "has a row of VG 'vgy'"));
	assert_null(vg.tags);
	free(text);

	/* an extent size that is no multiple of a sector */
	text = text_copy(vg_sample);
	memcpy(strstr(text, "'4194304'"), "'4194305'", 9);
	assert_int_equal(pk_lvm_report_vg_parse(text, &vg, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "extent size 4194305"));
	free(text);
}

/* ---- failure mapping -------------------------------------------------------- */

static void test_lvm__lvm_errors_map_to_codes(void **state)
{
	static const struct {
		int rc;
		const char *text;
		enum pk_errc code;
	} cases[] = {
		{ 5, "Volume group \"vgnope\" not found; Cannot process volume group vgnope",
		  PK_E_NOT_FOUND },
		{ 5, "Failed to find logical volume \"vgx/nope\"", PK_E_NOT_FOUND },
		{ 5, "Logical Volume \"lv1\" already exists in volume group \"vgx\"",
		  PK_E_ALREADY_EXISTS },
		{ 5, "A volume group called vgx already exists.", PK_E_ALREADY_EXISTS },
		{ 5, "Volume group \"vgx\" has insufficient free space (0 extents): 100 required.",
		  PK_E_NO_SPACE },
		{ 5, "Insufficient free space: 980 extents needed, but only 0 available",
		  PK_E_NO_SPACE },
		{ 5,
		  "Physical volume '/dev/loop0' is already in volume group 'vgx'; Unable to add "
		  "physical volume '/dev/loop0' to volume group 'vgx'",
		  PK_E_IN_USE },
		{ 5, "Aborted wiping of ext4.", PK_E_IN_USE },
		{ 5, "Logical volume vgx/lv1 in use.", PK_E_IN_USE },
		{ 5,
		  "/run/lock/lvm/V_vgx: flock failed: Resource temporarily unavailable; Can't get "
		  "lock for vgx.; Cannot process volume group vgx",
		  PK_E_BUSY },
		{ 3,
		  "Invalid argument for --addtag: bad*tag; Error during parsing of command line.",
		  PK_E_INTERNAL },
		{ 5, "something nobody expected", PK_E_INTERNAL },
		{ 5, "", PK_E_INTERNAL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum pk_errc got = pk_lvm_classify_failure(cases[i].rc, cases[i].text);

		if (got != cases[i].code) {
			fail_msg("'%s' -> %s, expected %s", cases[i].text, pk_errc_name(got),
				 pk_errc_name(cases[i].code));
		}
	}
	assert_int_equal(pk_lvm_classify_failure(LVM2_NO_SUCH_COMMAND, "not found"),
			 PK_E_INTERNAL);
	assert_int_equal(pk_lvm_classify_failure(5, NULL), PK_E_INTERNAL);
}

/* ---- argument checks -------------------------------------------------------- */

static void expect_invalid(int r, const struct pk_error *err, const char *needle)
{
	assert_int_equal(r, -EINVAL);
	assert_int_equal(err->code, PK_E_INVALID_ARGUMENT);
	if (!strstr(err->message, needle)) {
		fail_msg("message '%s' lacks '%s'", err->message, needle);
	}
}

static void test_lvm__names_are_checked(void **state)
{
	char long_name[200];
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_lvm_vg_name_check("pk-0b6a3f1e_x.y+z", &err), 0);
	assert_int_equal(pk_lvm_lv_name_check("0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b", &err), 0);
	expect_invalid(pk_lvm_vg_name_check("", &err), &err, "empty");
	expect_invalid(pk_lvm_vg_name_check(NULL, &err), &err, "empty");
	expect_invalid(pk_lvm_vg_name_check("-vg", &err), &err, "starts with '-'");
	expect_invalid(pk_lvm_lv_name_check(".lv", &err), &err, "starts with '.'");
	expect_invalid(pk_lvm_lv_name_check("a b", &err), &err, "outside [A-Za-z0-9_.+-]");
	expect_invalid(pk_lvm_lv_name_check("a/b", &err), &err, "at offset 1");
	expect_invalid(pk_lvm_lv_name_check("x'y", &err), &err, "outside");
	expect_invalid(pk_lvm_lv_name_check("snapshot", &err), &err, "reserved");
	expect_invalid(pk_lvm_lv_name_check("pvmove0", &err), &err, "reserved");
	expect_invalid(pk_lvm_lv_name_check("data_tmeta", &err), &err, "'_tmeta'");
	memset(long_name, 'a', sizeof(long_name));
	long_name[128] = '\0';
	expect_invalid(pk_lvm_vg_name_check(long_name, &err), &err, "longer than 127");
	long_name[127] = '\0';
	assert_int_equal(pk_lvm_vg_name_check(long_name, &err), 0);
}

static void test_lvm__tags_are_checked(void **state)
{
	const char *good[] = { "PK_IMG=0b6a3f1e", "a.b+c-d/e=f!g:h&i#j", NULL };
	const char *bad[] = { "ok", "bad tag", NULL };
	const char *add[] = { "A=1", NULL };
	const char *del_same[] = { "A=1", NULL };
	char tag[200];
	struct pk_error err;
	size_t n;

	(void)state;
	assert_int_equal(pk_lvm_tags_check(good, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(pk_lvm_tags_check(NULL, &n, &err), 0);
	assert_int_equal(n, 0);
	expect_invalid(pk_lvm_tags_check(bad, NULL, &err), &err, "'bad tag'");
	expect_invalid(pk_lvm_tag_check("", &err), &err, "empty");
	expect_invalid(pk_lvm_tag_check("#comment", &err), &err, "letter or digit");
	expect_invalid(pk_lvm_tag_check("-opt", &err), &err, "letter or digit");
	expect_invalid(pk_lvm_tag_check("@ref", &err), &err, "letter or digit");
	expect_invalid(pk_lvm_tag_check("a,b", &err), &err, "outside");
	expect_invalid(pk_lvm_tag_check("a*b", &err), &err, "at offset 1");
	memset(tag, 'T', sizeof(tag));
	tag[PK_LVM_TAG_MAX] = '\0';
	assert_int_equal(pk_lvm_tag_check(tag, &err), 0);
	tag[PK_LVM_TAG_MAX] = 'T';
	tag[PK_LVM_TAG_MAX + 1] = '\0';
	expect_invalid(pk_lvm_tag_check(tag, &err), &err, "more than 128");

	assert_int_equal(pk_lvm_tags_change_check(add, NULL, &err), 0);
	assert_int_equal(pk_lvm_tags_change_check(NULL, add, &err), 0);
	expect_invalid(pk_lvm_tags_change_check(NULL, NULL, &err), &err, "at least one tag");
	expect_invalid(pk_lvm_tags_change_check(add, del_same, &err), &err,
		       "both added and deleted");
}

static void test_lvm__sizes_paths_and_vg_arguments_are_checked(void **state)
{
	const char *devices[] = { "/dev/loop0", "/dev/disk/by-id/wwn-0x5000:1.2", NULL };
	const char *pvs[] = { "/dev/loop0", NULL };
	const char *twice[] = { "/dev/loop0", "/dev/loop0", NULL };
	const char *other[] = { "/dev/sda", NULL };
	const char *none[] = { NULL };
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_lvm_size_check("LV size", 512, &err), 0);
	expect_invalid(pk_lvm_size_check("LV size", 0, &err), &err, "LV size 0");
	expect_invalid(pk_lvm_size_check("LV size", 1000, &err), &err, "multiple of 512");
	expect_invalid(pk_lvm_size_check("LV size", UINT64_MAX - 511, &err), &err, "8 EiB");

	assert_int_equal(pk_lvm_path_check("dev", devices[1], &err), 0);
	expect_invalid(pk_lvm_path_check("dev", "loop0", &err), &err, "not an absolute path");
	expect_invalid(pk_lvm_path_check("dev", NULL, &err), &err, "not an absolute path");
	expect_invalid(pk_lvm_path_check("dev", "/dev/a b", &err), &err, "outside");
	expect_invalid(pk_lvm_path_check("dev", "/dev/a\"b", &err), &err, "outside");
	expect_invalid(pk_lvm_path_check("dev", "/dev/a|b", &err), &err, "outside");

	assert_int_equal(pk_lvm_vg_create_check(devices, "vg", pvs, 0, NULL, &err), 0);
	assert_int_equal(pk_lvm_vg_create_check(devices, "vg", pvs, 128u << 20, NULL, &err), 0);
	expect_invalid(pk_lvm_vg_create_check(devices, "vg", none, 0, NULL, &err), &err,
		       "at least one PV");
	expect_invalid(pk_lvm_vg_create_check(devices, "vg", NULL, 0, NULL, &err), &err,
		       "at least one PV");
	expect_invalid(pk_lvm_vg_create_check(devices, "vg", other, 0, NULL, &err), &err,
		       "'/dev/sda' is not one of the configured");
	expect_invalid(pk_lvm_vg_create_check(devices, "vg", twice, 0, NULL, &err), &err,
		       "given twice");
	expect_invalid(pk_lvm_vg_create_check(devices, "vg", pvs, 3u << 20, NULL, &err), &err,
		       "power of two");
	expect_invalid(pk_lvm_vg_create_check(devices, "vg", pvs, 512u << 10, NULL, &err), &err,
		       "power of two");
}

static void test_lvm__activation_arguments_are_checked(void **state)
{
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_lvm_activation_check(true, "vg", "lv", PK_LVM_REFRESH, &err), 0);
	expect_invalid(pk_lvm_activation_check(true, "vg", "l v", PK_LVM_ACTIVATE, &err), &err,
		       "outside");
	expect_invalid(pk_lvm_activation_check(true, "vg", "lv", 0, &err), &err,
		       "unknown activation operation 0");
	assert_int_equal(pk_lvm_activation_check(false, "vg", "lv", PK_LVM_DEACTIVATE, &err),
			 -EOPNOTSUPP);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	assert_non_null(strstr(err.message, "no deactivation of 'vg/lv'"));
	assert_string_equal(pk_lvm_activation_name(PK_LVM_ACTIVATE), "activation");
	assert_string_equal(pk_lvm_activation_name(9), "unknown");
}

/* ---- settings ---------------------------------------------------------------- */

static void expect_in(const char *text, const char *needle)
{
	if (!strstr(text, needle)) {
		fail_msg("settings lack '%s':\n%s", needle, text);
	}
}

static void test_lvm__settings_filter_exactly_the_devices(void **state)
{
	const char *devices[] = { "/dev/loop0", "/dev/mapper/3600+1.x", NULL };
	char *s;

	(void)state;
	s = pk_lvm_settings_render(devices, false, 022, NULL);
	expect_in(s, "\tfilter = [ \"a|^/dev/loop0$|\", \"a|^/dev/mapper/3600[+]1[.]x$|\", "
		     "\"r|.*|\" ]\n");
	expect_in(s, "\tglobal_filter = [ \"a|^/dev/loop0$|\"");
	expect_in(s, "use_aio = 0\n");
	expect_in(s, "use_lvmlockd = 0\n");
	expect_in(s, "wait_for_locks = 0\n");
	expect_in(s, "\tactivation = 0\n");
	expect_in(s, "umask = 0022\n");
	expect_in(s, "udev_sync = 0\n");
	expect_in(s, "udev_rules = 0\n");
	expect_in(s, "use_devicesfile = 0\n");
	expect_in(s, "obtain_device_list_from_udev = 0\n");
	expect_in(s, "backup = 0\n\tarchive = 0\n");
	free(s);

	s = pk_lvm_settings_render(devices, true, 027, "/var/lib/poolkeeper/lvm");
	expect_in(s, "\tactivation = 1\n");
	expect_in(s, "umask = 0027\n");
	expect_in(s, "backup_dir = \"/var/lib/poolkeeper/lvm/backup\"");
	expect_in(s, "archive_dir = \"/var/lib/poolkeeper/lvm/archive\"");
	free(s);
}

/* ---- the handle ---------------------------------------------------------------- */

static void test_lvm__bad_configs_are_refused(void **state)
{
	const char *none[] = { NULL };
	const char *relative[] = { "loop0", NULL };
	const char *ok[] = { "/dev/pk-test-no-such-device", NULL };
	struct pk_lvm_config cfg = { 0 };
	struct pk_lvm *lvm = NULL;
	struct pk_error err;

	(void)state;
	expect_invalid(pk_lvm_new(&cfg, &lvm, &err), &err, "no LVM devices");
	cfg.devices = none;
	expect_invalid(pk_lvm_new(&cfg, &lvm, &err), &err, "no LVM devices");
	cfg.devices = relative;
	expect_invalid(pk_lvm_new(&cfg, &lvm, &err), &err, "not an absolute path");
	cfg.devices = ok;
	cfg.backup_dir = "relative/dir";
	expect_invalid(pk_lvm_new(&cfg, &lvm, &err), &err, "LVM backup directory");
	cfg.backup_dir = NULL;
	cfg.conf_dir = "/tmp/a b";
	expect_invalid(pk_lvm_new(&cfg, &lvm, &err), &err, "LVM config directory");
	assert_null(lvm);
	pk_lvm_free(NULL);
}

/*
 * Real liblvm2cmd, but with a filter that matches no device: the handle
 * is one per process, and a VG that does not exist is NOT_FOUND with LVM's
 * words in the message.
 */
static void test_lvm__one_handle_per_process_and_missing_vg(void **state)
{
	const char *devices[] = { "/dev/pk-test-no-such-device", NULL };
	struct pk_lvm_config cfg = { .devices = devices };
	struct pk_lvm_lv_list list;
	struct pk_lvm *lvm, *second = NULL;
	struct pk_lvm_vg vg;
	struct pk_error err;

	(void)state;
	umask(027);
	assert_int_equal(pk_lvm_new(&cfg, &lvm, &err), 0);
	/* LVM would set 0077 for the whole process; ours keeps the process's. */
	assert_int_equal(umask(022), 027);
	assert_true(pk_lvm_device_allowed(lvm, devices[0]));
	assert_false(pk_lvm_device_allowed(lvm, "/dev/sda"));
	assert_int_equal(pk_lvm_new(&cfg, &second, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_BUSY);
	assert_null(second);

	assert_int_equal(pk_lvm_vg_report(lvm, "pk-test-no-such-vg", &vg, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "Volume group \"pk-test-no-such-vg\" not found"));
	assert_int_equal(pk_lvm_lv_report(lvm, "pk-test-no-such-vg", NULL, &list, &err),
			 -ENOENT);
	assert_int_equal(pk_lvm_lv_activation(lvm, "vg", "lv", PK_LVM_ACTIVATE, &err),
			 -EOPNOTSUPP);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	expect_invalid(pk_lvm_lv_create(lvm, "vg", "lv", 1000, NULL, &err), &err,
		       "multiple of 512");
	/* a command reloads nothing that would change the umask either */
	assert_int_equal(umask(022), 022);
	pk_lvm_free(lvm);

	/* Freed: a new handle may be made. */
	assert_int_equal(pk_lvm_new(&cfg, &lvm, &err), 0);
	pk_lvm_free(lvm);
}

/* ---- the write guard ----------------------------------------------------------- */

struct guard_log {
	int calls;
	int refuse_from; /* the call (1-based) from which the guard refuses */
	char vg[PK_LVM_NAME_MAX];
};

static int counting_guard(void *ctx, const char *vg, struct pk_error *err)
{
	struct guard_log *g = ctx;

	g->calls++;
	snprintf(g->vg, sizeof(g->vg), "%s", vg);
	if (g->refuse_from && g->calls >= g->refuse_from) {
		return pk_error_set(err, PK_E_NOT_SPM, EPERM, "lease lost (test guard)");
	}
	return 0;
}

/*
 * Real liblvm2cmd: the guard runs before each attempt of a write and never
 * for a read; a write that meets LVM's VG lock held by another process is
 * retried, and the guard refusing the retry stops it at once (not after the
 * lock timeout).
 */
static void test_lvm__write_guard_runs_before_each_attempt(void **state)
{
	const char *devices[] = { "/dev/pk-test-no-such-device", NULL };
	struct pk_lvm_config cfg = { .devices = devices, .lock_timeout_ms = 5000 };
	struct guard_log g = { 0 };
	struct pk_lvm_lv_list list;
	struct pk_lvm *lvm;
	struct pk_error err;
	uint64_t start;
	pid_t child;
	int fd;

	(void)state;
	assert_int_equal(pk_lvm_new(&cfg, &lvm, &err), 0);
	pk_lvm_write_guard_set(lvm, counting_guard, &g);
	assert_true(pk_lvm_lv_report(lvm, "pk-test-guard-vg", NULL, &list, &err) < 0);
	assert_int_equal(g.calls, 0);
	/* Refused at once: LVM never runs. */
	g.refuse_from = 1;
	assert_true(pk_lvm_lv_remove(lvm, "pk-test-guard-vg", "lv0", &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_non_null(strstr(err.message, "lvremove of 'pk-test-guard-vg/lv0' not run"));
	assert_int_equal(g.calls, 1);
	assert_string_equal(g.vg, "pk-test-guard-vg");
	/* The VG lock is held by "another process": the second attempt is refused. */
	if (mkdir("/run/lock/lvm", 0700) < 0 && errno != EEXIST) {
		skip();
	}
	fd = open("/run/lock/lvm/V_pk-test-guard-vg", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		skip();
	}
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* flock locks belong to the open file: the child's own open contends. */
		int cfd = open("/run/lock/lvm/V_pk-test-guard-vg", O_RDWR | O_CLOEXEC);
		if (cfd < 0 || flock(cfd, LOCK_EX) < 0) {
			_exit(1);
		}
		pause();
		_exit(0);
	}
	usleep(300000);
	g.calls = 0;
	g.refuse_from = 2;
	start = (uint64_t)time(NULL);
	assert_true(pk_lvm_lv_remove(lvm, "pk-test-guard-vg", "lv0", &err) < 0);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_int_equal(g.calls, 2);
	assert_true((uint64_t)time(NULL) - start < 2);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(fd);
	unlink("/run/lock/lvm/V_pk-test-guard-vg");
	pk_lvm_free(lvm);
}

struct worker {
	struct pk_lvm *lvm;
	int index;
	int failures;
};

/* Reports a VG of its own name many times; each answer must be its own. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	char vg[32], want[64];

	snprintf(vg, sizeof(vg), "pk-test-vg-%d", w->index);
	snprintf(want, sizeof(want), "Volume group \"%s\" not found", vg);
	for (int i = 0; i < 20; i++) {
		struct pk_lvm_vg r;
		struct pk_error err;

		pk_error_clear(&err);
		if (pk_lvm_vg_report(w->lvm, vg, &r, &err) != -ENOENT ||
		    !strstr(err.message, want) || strstr(err.message, "pk-test-vg-") !=
							     strstr(err.message, vg)) {
			w->failures++;
		}
	}
	return NULL;
}

/* Commands from several threads are serialised and each gets its own output. */
static void test_lvm__threads_get_their_own_answers(void **state)
{
	const char *devices[] = { "/dev/pk-test-no-such-device", NULL };
	struct pk_lvm_config cfg = { .devices = devices };
	struct worker workers[4];
	pthread_t threads[4];
	struct pk_error err;
	struct pk_lvm *lvm;

	(void)state;
	assert_int_equal(pk_lvm_new(&cfg, &lvm, &err), 0);
	for (int i = 0; i < 4; i++) {
		workers[i] = (struct worker){ .lvm = lvm, .index = i };
		assert_int_equal(pthread_create(&threads[i], NULL, worker_run, &workers[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(workers[i].failures, 0);
	}
	pk_lvm_free(lvm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lvm__vg_report_is_parsed),
		cmocka_unit_test(test_lvm__lv_report_builds_segments),
		cmocka_unit_test(test_lvm__empty_lv_report_is_an_empty_list),
		cmocka_unit_test(test_lvm__non_linear_lv_has_no_segments),
		cmocka_unit_test(test_lvm__garbled_lv_reports_are_rejected),
		cmocka_unit_test(test_lvm__garbled_vg_reports_are_rejected),
		cmocka_unit_test(test_lvm__lvm_errors_map_to_codes),
		cmocka_unit_test(test_lvm__names_are_checked),
		cmocka_unit_test(test_lvm__tags_are_checked),
		cmocka_unit_test(test_lvm__sizes_paths_and_vg_arguments_are_checked),
		cmocka_unit_test(test_lvm__activation_arguments_are_checked),
		cmocka_unit_test(test_lvm__settings_filter_exactly_the_devices),
		cmocka_unit_test(test_lvm__bad_configs_are_refused),
		cmocka_unit_test(test_lvm__one_handle_per_process_and_missing_vg),
		cmocka_unit_test(test_lvm__write_guard_runs_before_each_attempt),
		cmocka_unit_test(test_lvm__threads_get_their_own_answers),
	};

	return cmocka_run_group_tests_name("lvm", tests, NULL, NULL);
}
