/* The host files of a VM (hsm/vmfiles.c): boot file names resolved inside
 * the boot directory only, the serial log path derived from the VM name. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/proc.h"
#include "common/xalloc.h"
#include "hsm/vmfiles.h"

struct dirs {
	char tmp[PATH_MAX];      /* realpath'd */
	char boot[PATH_MAX + 8]; /* <tmp>/boot: vmlinuz, sub/initrd.img, links */
	char logs[PATH_MAX + 8]; /* <tmp>/log, not created */
};

static void touch(const char *dir, const char *name)
{
	char path[2 * PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void link_in(const char *dir, const char *name, const char *target)
{
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(symlink(target, path), 0);
}

static int setup(void **state)
{
	struct dirs *d = pk_xcalloc(1, sizeof(*d));
	char tmpl[] = "/tmp/pk-test-vmfiles-XXXXXX", sub[PATH_MAX + 32];

	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, d->tmp));
	snprintf(d->boot, sizeof(d->boot), "%s/boot", d->tmp);
	snprintf(d->logs, sizeof(d->logs), "%s/log", d->tmp);
	assert_int_equal(mkdir(d->boot, 0755), 0);
	snprintf(sub, sizeof(sub), "%s/sub", d->boot);
	assert_int_equal(mkdir(sub, 0755), 0);
	touch(d->boot, "vmlinuz");
	touch(sub, "initrd.img");
	touch(d->tmp, "secret");
	link_in(d->boot, "current", "vmlinuz");
	link_in(d->boot, "shadow", "/etc/shadow");
	link_in(d->boot, "up", "../secret");
	link_in(d->boot, "dirlink", "..");
	assert_int_equal(mkfifo(strcat(sub, "/fifo"), 0600), 0);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dirs *d = *state;
	const char *argv[] = { "rm", "-rf", d->tmp, NULL };

	assert_int_equal(pk_proc_check(argv, 10000, PK_OK, NULL, NULL), 0);
	free(d);
	return 0;
}

static int resolve(struct dirs *d, const char *name, char *out, struct pk_error *err)
{
	return hsm_vmfiles_boot_resolve(d->boot, "kernel", name, out, PATH_MAX, err);
}

static void test_vmfiles__boot_names_resolve_inside(void **state)
{
	struct dirs *d = *state;
	struct pk_error err;
	char out[PATH_MAX], want[2 * PATH_MAX];

	assert_int_equal(resolve(d, "vmlinuz", out, &err), 0);
	snprintf(want, sizeof(want), "%s/vmlinuz", d->boot);
	assert_string_equal(out, want);
	/* a symlink that stays inside resolves to its target */
	assert_int_equal(resolve(d, "current", out, &err), 0);
	assert_string_equal(out, want);
	assert_int_equal(hsm_vmfiles_boot_resolve(d->boot, "initrd", "sub/initrd.img", out,
						  sizeof(out), &err), 0);
	snprintf(want, sizeof(want), "%s/sub/initrd.img", d->boot);
	assert_string_equal(out, want);
}

static void test_vmfiles__boot_names_refused(void **state)
{
	static const char *const bad[] = {
		"", "/etc/shadow", "..", "../secret", "sub/../../secret", "./vmlinuz",
		"sub//initrd.img", "sub/", "with space", "tab\tname",
	};
	struct dirs *d = *state;
	struct pk_error err;
	char out[PATH_MAX] = "untouched";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(resolve(d, bad[i], out, &err) < 0);
		assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
		assert_non_null(strstr(err.message, "kernel"));
	}
	assert_string_equal(out, "untouched");
}

static void test_vmfiles__boot_links_out_and_odd_files_refused(void **state)
{
	static const char *const bad[] = { "shadow", "up", "dirlink/secret", "sub", "sub/fifo",
					   "missing" };
	struct dirs *d = *state;
	struct pk_error err;
	char out[PATH_MAX] = "untouched", secret[2 * PATH_MAX];

	snprintf(secret, sizeof(secret), "%s/secret", d->tmp);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(resolve(d, bad[i], out, &err) < 0);
		assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
		/* where a link leads is not echoed back */
		assert_null(strstr(err.message, "/etc/shadow"));
		assert_null(strstr(err.message, secret));
	}
	assert_int_equal(resolve(d, "shadow", out, &err), -EACCES);
	assert_non_null(strstr(err.message, "out of the boot directory"));
	assert_string_equal(out, "untouched");
}

static void test_vmfiles__boot_dir_missing_or_relative(void **state)
{
	struct dirs *d = *state;
	struct pk_error err;
	char out[PATH_MAX];

	assert_int_equal(hsm_vmfiles_boot_resolve(d->logs, "kernel", "vmlinuz", out, sizeof(out),
						  &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "boot directory"));
	assert_true(hsm_vmfiles_boot_resolve("boot", "kernel", "vmlinuz", out, sizeof(out),
					     &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
}

static void test_vmfiles__serial_log_derived(void **state)
{
	struct dirs *d = *state;
	struct pk_error err;
	char out[PATH_MAX] = "untouched", want[2 * PATH_MAX];
	struct stat st;

	assert_int_equal(hsm_vmfiles_serial_log(d->logs, "vm1", out, sizeof(out), &err), 0);
	snprintf(want, sizeof(want), "%s/vm1.serial", d->logs);
	assert_string_equal(out, want);
	assert_int_equal(stat(d->logs, &st), 0); /* created */
	assert_true(S_ISDIR(st.st_mode));

	assert_true(hsm_vmfiles_serial_log(d->logs, "../x", out, sizeof(out), &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_true(hsm_vmfiles_serial_log(d->logs, ".hidden", out, sizeof(out), &err) < 0);
	assert_true(hsm_vmfiles_serial_log("log", "vm1", out, sizeof(out), &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	/* a planted symlink is not followed by virtlogd: refused */
	link_in(d->logs, "vm2.serial", "/etc/cron.d/x");
	assert_int_equal(hsm_vmfiles_serial_log(d->logs, "vm2", out, sizeof(out), &err), -EEXIST);
	assert_int_equal(err.code, PK_E_IN_USE);
	assert_string_equal(out, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vmfiles__boot_names_resolve_inside, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vmfiles__boot_names_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmfiles__boot_links_out_and_odd_files_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmfiles__boot_dir_missing_or_relative, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vmfiles__serial_log_derived, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
