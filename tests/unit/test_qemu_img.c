/*
 * hsm/qemu_img.c: qemu-img info's JSON (pure), and the chain of the qcow2
 * headers read with real qemu-img, each image opened with the format it is
 * given, never probed. A backing file that must not be opened is named
 * where no file exists: a qemu-img that opened it would fail.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/proc.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "hsm/qemu_img.h"

static void test_qemu_img__info_json(void **state)
{
	static const char json[] =
		"{\n    \"backing-filename-format\": \"raw\",\n"
		"    \"virtual-size\": 1048576,\n    \"filename\": \"/run/s/d/i/t\\\"o\\u0070\",\n"
		"    \"format\": \"qcow2\", \"dirty-flag\": false, \"x\": null, \"n\": -1.5e3,\n"
		"    \"format-specific\": {\"type\": \"qcow2\", \"data\": {\"compat\": \"1.1\","
		" \"filename\": \"nested, ignored\", \"lazy-refcounts\": false}},\n"
		"    \"children\": [{\"name\": \"file\", \"info\": {\"filename\": \"x\"}}],\n"
		"    \"full-backing-filename\": \"/run/s/d/i/base\",\n"
		"    \"backing-filename\": \"base\"\n}\n";
	struct hsm_qemu_img_info info = { 0 };
	struct pk_error err;

	(void)state;
	assert_int_equal(hsm_qemu_img_info_parse(json, &info, &err), 0);
	assert_string_equal(info.filename, "/run/s/d/i/t\"op");
	assert_string_equal(info.format, "qcow2");
	assert_string_equal(info.backing, "/run/s/d/i/base");
	assert_string_equal(info.backing_format, "raw");
	hsm_qemu_img_info_release(&info);

	/* only the relative name printed: it is what there is */
	assert_int_equal(hsm_qemu_img_info_parse("{\"filename\":\"/a\",\"backing-filename\":\"b\"}",
						 &info, &err), 0);
	assert_string_equal(info.backing, "b");
	assert_null(info.backing_format);
	hsm_qemu_img_info_release(&info);
	assert_int_equal(hsm_qemu_img_info_parse("{\"filename\":\"/a\",\"format\":\"raw\"}", &info,
						 &err), 0);
	assert_null(info.backing);
	hsm_qemu_img_info_release(&info);

	static const char *const bad[] = {
		"", "[]", "{}", "{\"filename\": \"a\"", "{\"filename\": \"a}", "{\"filename\" \"a\"}",
		"{\"filename\": \"\\u00zz\"}", "{\"filename\": \"a\",}", "{\"filename\": \"a\"}x",
		"{\"filename\": \"a\" \"format\": \"raw\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(hsm_qemu_img_info_parse(bad[i], &info, &err) < 0);
		assert_int_equal(err.code, PK_E_INTERNAL);
	}
	assert_true(hsm_qemu_img_info_parse(NULL, &info, &err) < 0);
}

/* ---- real qemu-img ------------------------------------------------------------------ */

struct dir {
	char path[64];
};

static int setup(void **state)
{
	struct dir *d = pk_xcalloc(1, sizeof(*d));

	snprintf(d->path, sizeof(d->path), "/tmp/pk-test-qemu-img-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dir *d = *state;
	const char *argv[] = { "rm", "-rf", d->path, NULL };

	assert_int_equal(pk_proc_check(argv, 10000, PK_OK, NULL, NULL), 0);
	free(d);
	return 0;
}

static void run(const char *cmd)
{
	const char *argv[] = { "sh", "-ec", cmd, NULL };
	struct pk_error err;

	if (pk_proc_check(argv, 30000, PK_E_IO, NULL, &err) < 0) {
		fail_msg("%s: %s", cmd, err.message);
	}
}

/* raw: a RAW volume whose first bytes are a qcow2 header naming <dir>/gone
 * (absent) as its backing; leaf: qcow2 over raw (relative name, raw). */
static void make_images(struct dir *d)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "cd %s; qemu-img create -q -f qcow2 -u -o backing_file=%s/gone,backing_fmt=qcow2 "
		 "hdr 1M; truncate -s 4M raw; dd if=hdr of=raw conv=notrunc status=none; "
		 "qemu-img create -q -f qcow2 -u -o backing_file=raw,backing_fmt=raw leaf 4M",
		 d->path, d->path);
	run(cmd);
}

static void path_of(struct dir *d, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", d->path, name);
}

static void test_qemu_img__chain_follows_metadata_formats(void **state)
{
	struct dir *d = *state;
	char leaf[128], raw[128];
	struct hsm_qemu_img_file files[2] = { { leaf, true }, { raw, false } };
	struct pk_error err;
	char **names = NULL;
	size_t n = 0;

	make_images(d);
	path_of(d, "leaf", leaf, sizeof(leaf));
	path_of(d, "raw", raw, sizeof(raw));
	assert_int_equal(hsm_qemu_img_chain(files, 2, &names, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], leaf);
	assert_string_equal(names[1], raw);
	pk_strv_free(names);

	/* the RAW volume alone: its "header" is data, its backing never looked at */
	assert_int_equal(hsm_qemu_img_chain(&files[1], 1, &names, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], raw);
	pk_strv_free(names);
}

static void test_qemu_img__chain_stops_at_foreign_files(void **state)
{
	struct dir *d = *state;
	char leaf[128], raw[128], gone[128];
	struct hsm_qemu_img_file files[2] = { { leaf, true }, { raw, true } };
	struct pk_error err;
	char **names = NULL;
	size_t n = 0;

	make_images(d);
	path_of(d, "leaf", leaf, sizeof(leaf));
	path_of(d, "raw", raw, sizeof(raw));
	path_of(d, "gone", gone, sizeof(gone));
	/* the leaf's header says raw, the table qcow2: not followed */
	assert_int_equal(hsm_qemu_img_chain(files, 2, &names, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_non_null(strstr(names[1], "(format raw in the header)"));
	pk_strv_free(names);

	/* the "RAW" volume taken for qcow2: its backing is named, not opened */
	assert_int_equal(hsm_qemu_img_chain(&files[1], 1, &names, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[1], gone);
	pk_strv_free(names);

	/* a file not in the table: named, not opened */
	assert_int_equal(hsm_qemu_img_chain(files, 1, &names, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[1], raw);
	pk_strv_free(names);
}

static void test_qemu_img__chain_refuses_loops_and_odd_paths(void **state)
{
	struct dir *d = *state;
	char a[128], b[128], cmd[512];
	struct hsm_qemu_img_file files[2] = { { a, true }, { b, true } };
	struct hsm_qemu_img_file quote = { "/tmp/x\"y", true }, rel = { "x", false };
	struct pk_error err;
	char **names = NULL;
	size_t n = 0;

	snprintf(cmd, sizeof(cmd),
		 "cd %s; qemu-img create -q -f qcow2 -u -o backing_file=b,backing_fmt=qcow2 a 1M; "
		 "qemu-img create -q -f qcow2 -u -o backing_file=a,backing_fmt=qcow2 b 1M",
		 d->path);
	run(cmd);
	path_of(d, "a", a, sizeof(a));
	path_of(d, "b", b, sizeof(b));
	assert_int_equal(hsm_qemu_img_chain(files, 2, &names, &n, &err), -ELOOP);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	assert_int_equal(hsm_qemu_img_chain(&quote, 1, &names, &n, &err), -EINVAL);
	assert_int_equal(hsm_qemu_img_chain(&rel, 1, &names, &n, &err), -EINVAL);
	assert_int_equal(hsm_qemu_img_chain(files, 0, &names, &n, &err), -EINVAL);
	/* qemu-img failing (no such file) is IO */
	path_of(d, "missing", a, sizeof(a));
	assert_true(hsm_qemu_img_chain(files, 1, &names, &n, &err) < 0);
	assert_int_equal(err.code, PK_E_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_img__info_json),
		cmocka_unit_test_setup_teardown(test_qemu_img__chain_follows_metadata_formats, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_qemu_img__chain_stops_at_foreign_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_qemu_img__chain_refuses_loops_and_odd_paths,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
