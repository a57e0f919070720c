/*
 * The liblvm2cmd instance behind common/lvm.h: the one handle of the
 * process (pk_lvm_new/free, its rendered lvm.conf), the lock around every
 * call into the library, the capture of what a command prints (report rows,
 * errors, notes) and running one command line with the retry on LVM's
 * file locks (common/lvm_internal.h). The verbs are in common/lvm_verbs.c.
 */
#include "common/lvm.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <lvm2cmd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/lvm_internal.h"
#include "common/lvm_text.h"
#include "common/statefile.h"
#include "common/strv.h"
#include "common/xalloc.h"

/* liblvm2cmd splits a command line into at most 64 words (MAX_ARGS). */
#define LVM_MAX_ARGS 60
/* LVM formats every log line into a 4096-byte buffer. */
#define LVM_LINE_MAX 4095
#define LOCK_TIMEOUT_DEFAULT_MS 10000

/* ---- process-wide liblvm2cmd state ------------------------------------ */

/*
 * liblvm2cmd keeps its log function, device cache and command state in
 * process globals and has no user pointer in its log callback, so this is
 * the one place poolkeeper keeps process-wide state: one mutex serialising
 * every call into the library, the capture of the command under way, and
 * whether a struct pk_lvm exists. All three are guarded by lvm_lock.
 */
static pthread_mutex_t lvm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pk_lvm_capture *lvm_capture;
static bool lvm_exists;

void pk_lvm_capture_release(struct pk_lvm_capture *cap)
{
	pk_buf_release(&cap->report);
	pk_buf_release(&cap->errors);
	pk_buf_release(&cap->notes);
	cap->truncated = false;
}

static void capture_line(struct pk_buf *b, const char *msg)
{
	if (b->len > 0) {
		pk_buf_append(b, "; ", 2);
	}
	pk_buf_append(b, msg, strlen(msg));
}

static void lvm_log(int level, const char *file, int line, int dm_errno, const char *msg)
{
	struct pk_lvm_capture *cap = lvm_capture;
	const char *m = msg;

	(void)file;
	(void)line;
	(void)dm_errno;
	if (!cap || !msg) {
		return;
	}
	if (level == LVM2_LOG_PRINT) {
		while (*m == ' ') {
			m++;
		}
		/* Report rows come at the same level as warnings; the
		 * --nameprefixes "LVM2_" prefix tells them apart. */
		if (strncmp(m, "LVM2_", 5) == 0) {
			if (strlen(msg) >= LVM_LINE_MAX - 1) {
				cap->truncated = true;
			}
			pk_buf_append(&cap->report, m, strlen(m));
			pk_buf_append(&cap->report, "\n", 1);
		} else {
			capture_line(&cap->notes, m);
		}
	} else if (level > LVM2_LOG_SUPPRESS && level <= LVM2_LOG_ERROR) {
		capture_line(&cap->errors, msg);
	}
}

void pk_lvm_write_guard_set(struct pk_lvm *lvm, pk_lvm_write_guard_fn *fn, void *ctx)
{
	lvm->write_guard = fn;
	lvm->write_guard_ctx = ctx;
}

bool pk_lvm_device_allowed(const struct pk_lvm *lvm, const char *path)
{
	return path && pk_lvm_tags_contain(lvm->devices, path);
}

/* ---- settings --------------------------------------------------------- */

/* The process umask, read without changing it (Linux >= 4.7). */
static unsigned process_umask(void)
{
	char line[128];
	unsigned mask = 022;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f) {
		return mask;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Umask: %o", &mask) == 1) {
			break;
		}
	}
	fclose(f);
	return mask;
}

/* ---- running commands ------------------------------------------------- */

void pk_lvm_cmd_arg(struct pk_lvm_cmd *c, const char *arg)
{
	/* lvm2_run splits on blanks, strips a leading quote and treats a
	 * word starting with '#' as a comment. */
	assert(arg[0] != '\0' && arg[0] != '#' && !strpbrk(arg, " \t\n'\""));
	if (c->line.len > 0) {
		pk_buf_append(&c->line, " ", 1);
	}
	pk_buf_append(&c->line, arg, strlen(arg));
	c->argc++;
}

void pk_lvm_cmd_argf(struct pk_lvm_cmd *c, const char *fmt, ...)
{
	char *s;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		abort();
	}
	va_end(ap);
	pk_lvm_cmd_arg(c, s);
	free(s);
}

void pk_lvm_cmd_tags(struct pk_lvm_cmd *c, const char *option, const char *const *tags)
{
	for (size_t i = 0; tags && tags[i]; i++) {
		pk_lvm_cmd_arg(c, option);
		pk_lvm_cmd_arg(c, tags[i]);
	}
}

/*
 * Runs one command. On failure fills err with "<what>: <LVM's errors>".
 * A command that met one of LVM's file locks held by another process is
 * retried (outside lvm_lock) until the lock timeout.
 */
static int lvm_run(struct pk_lvm *lvm, struct pk_lvm_cmd *c, const char *what, struct pk_lvm_capture *cap,
		   struct pk_error *err)
{
	uint64_t start;
	unsigned delay_ms = 2;
	enum pk_errc code;
	const char *text;
	int rc;

	if (c->argc > LVM_MAX_ARGS) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, E2BIG,
				    "%s: %d arguments in one LVM command, at most %d (too many "
				    "tags at once?)",
				    what, c->argc, LVM_MAX_ARGS);
	}
	start = pk_clock_monotonic_ms();
	for (;;) {
		pk_lvm_capture_release(cap);
		/* Every attempt of a write asks first: a retry may come seconds later. */
		if (c->write_vg && lvm->write_guard) {
			int g = lvm->write_guard(lvm->write_guard_ctx, c->write_vg, err);
			if (g < 0) {
				pk_error_prefix(err, "%s not run", what);
				return g;
			}
		}
		pthread_mutex_lock(&lvm_lock);
		lvm_capture = cap;
		rc = lvm2_run(lvm->handle, c->line.data);
		lvm_capture = NULL;
		pthread_mutex_unlock(&lvm_lock);

		if (rc == LVM2_COMMAND_SUCCEEDED) {
			if (cap->truncated) {
				return pk_error_set(err, PK_E_INTERNAL, EOVERFLOW,
						    "%s: a report line filled LVM's %d-byte "
						    "line buffer and was cut",
						    what, LVM_LINE_MAX + 1);
			}
			return 0;
		}
		text = cap->errors.len ? cap->errors.data : (cap->notes.len ? cap->notes.data : "");
		code = pk_lvm_classify_failure(rc, text);
		if (code == PK_E_BUSY && pk_clock_monotonic_ms() - start < lvm->lock_timeout_ms) {
			struct timespec ts = { 0, (long)delay_ms * 1000000L };

			nanosleep(&ts, NULL);
			delay_ms = delay_ms >= 50 ? 100 : delay_ms * 2;
			continue;
		}
		if (code == PK_E_BUSY) {
			return pk_error_set(err, code, 0,
					    "%s: an LVM lock stayed held for more than %u ms: %s",
					    what, lvm->lock_timeout_ms, text);
		}
		if (!*text) {
			return pk_error_set(err, code, 0, "%s failed (lvm2_run returned %d)",
					    what, rc);
		}
		return pk_error_set(err, code, 0, "%s: %s", what, text);
	}
}

/* The common start of every report command. */
void pk_lvm_cmd_report(struct pk_lvm_cmd *c, const char *command, const char *fields)
{
	pk_lvm_cmd_arg(c, command);
	pk_lvm_cmd_arg(c, "--nameprefixes");
	pk_lvm_cmd_arg(c, "--noheadings");
	pk_lvm_cmd_arg(c, "--units");
	pk_lvm_cmd_arg(c, "b");
	pk_lvm_cmd_arg(c, "--nosuffix");
	pk_lvm_cmd_arg(c, "-o");
	pk_lvm_cmd_arg(c, fields);
}

/* ---- handle ----------------------------------------------------------- */

static int config_check(const struct pk_lvm_config *config, struct pk_error *err)
{
	int r;

	if (!config->devices || !config->devices[0]) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "no LVM devices configured (lvm_devices): LVM would see "
				    "no PV");
	}
	for (size_t i = 0; config->devices[i]; i++) {
		r = pk_lvm_path_check("LVM device", config->devices[i], err);
		if (r < 0) {
			return r;
		}
	}
	if (config->conf_dir &&
	    (r = pk_lvm_path_check("LVM config directory", config->conf_dir, err)) < 0) {
		return r;
	}
	if (config->backup_dir &&
	    (r = pk_lvm_path_check("LVM backup directory", config->backup_dir, err)) < 0) {
		return r;
	}
	return 0;
}

/* lvm2_init() on conf_dir, undoing the process-wide changes it makes. */
static void *lvm_init_on(const char *conf_dir)
{
	const char *env = getenv("LVM_SYSTEM_DIR");
	char *saved_env = env ? pk_xstrdup(env) : NULL;
	const char *loc = setlocale(LC_ALL, NULL);
	char *saved_locale = loc ? pk_xstrdup(loc) : NULL;
	void *handle;

	setenv("LVM_SYSTEM_DIR", conf_dir, 1);
	lvm2_log_fn(lvm_log);
	handle = lvm2_init();
	if (saved_env) {
		setenv("LVM_SYSTEM_DIR", saved_env, 1);
	} else {
		unsetenv("LVM_SYSTEM_DIR");
	}
	if (saved_locale) {
		setlocale(LC_ALL, saved_locale);
	}
	free(saved_env);
	free(saved_locale);
	return handle;
}

static void lvm_dispose(struct pk_lvm *lvm)
{
	if (lvm->conf_dir_owned) {
		char *path = pk_xasprintf("%s/lvm.conf", lvm->conf_dir);

		unlink(path);
		free(path);
		rmdir(lvm->conf_dir);
	}
	pk_strv_free(lvm->devices);
	free(lvm->conf_dir);
	free(lvm);
}

/* Claims or gives back the one liblvm2cmd instance of the process. */
static bool lvm_claim(bool claim)
{
	bool ok = true;

	pthread_mutex_lock(&lvm_lock);
	if (claim && lvm_exists) {
		ok = false;
	} else {
		lvm_exists = claim;
	}
	pthread_mutex_unlock(&lvm_lock);
	return ok;
}

/* Creates the config directory (or a temporary one) and writes lvm.conf. */
static int lvm_write_settings(struct pk_lvm *lvm, const struct pk_lvm_config *config,
			      struct pk_error *err)
{
	char *settings;
	int r;

	if (config->conf_dir) {
		lvm->conf_dir = pk_xstrdup(config->conf_dir);
		r = pk_statefile_mkdir(lvm->conf_dir, err);
		if (r < 0) {
			return r;
		}
	} else {
		char tmpl[] = "/tmp/pk-lvm.XXXXXX";

		if (!mkdtemp(tmpl)) {
			int e = errno;

			return pk_error_set(err, PK_E_IO, e,
					    "cannot create a directory for the LVM config: %s",
					    strerror(e));
		}
		lvm->conf_dir = pk_xstrdup(tmpl);
		lvm->conf_dir_owned = true;
	}
	settings = pk_lvm_settings_render((const char *const *)lvm->devices, lvm->activation,
					  process_umask(), config->backup_dir);
	r = pk_statefile_write(lvm->conf_dir, "lvm.conf", settings, strlen(settings), err);
	free(settings);
	return r;
}

int pk_lvm_new(const struct pk_lvm_config *config, struct pk_lvm **ret, struct pk_error *err)
{
	struct pk_lvm_capture cap = { 0 };
	struct pk_lvm *lvm;
	size_t n = 0;
	int r;

	r = config_check(config, err);
	if (r < 0) {
		return r;
	}
	if (!lvm_claim(true)) {
		return pk_error_set(err, PK_E_BUSY, EBUSY,
				    "liblvm2cmd is already in use in this process (one struct "
				    "pk_lvm per process)");
	}
	lvm = pk_xcalloc(1, sizeof(*lvm));
	while (config->devices[n]) {
		n++;
	}
	lvm->devices = pk_xcalloc(n + 1, sizeof(*lvm->devices));
	for (size_t i = 0; i < n; i++) {
		lvm->devices[i] = pk_xstrdup(config->devices[i]);
	}
	lvm->activation = config->activation;
	lvm->lock_timeout_ms =
		config->lock_timeout_ms ? config->lock_timeout_ms : LOCK_TIMEOUT_DEFAULT_MS;
	r = lvm_write_settings(lvm, config, err);
	if (r < 0) {
		goto fail;
	}
	pthread_mutex_lock(&lvm_lock);
	lvm_capture = &cap;
	lvm->handle = lvm_init_on(lvm->conf_dir);
	lvm_capture = NULL;
	pthread_mutex_unlock(&lvm_lock);
	if (!lvm->handle) {
		r = pk_error_set(err, PK_E_INTERNAL, EIO, "lvm2_init on '%s' failed: %s",
				 lvm->conf_dir, cap.errors.len ? cap.errors.data : "no reason given");
		goto fail;
	}
	pk_lvm_capture_release(&cap);
	*ret = lvm;
	return 0;
fail:
	pk_lvm_capture_release(&cap);
	lvm_dispose(lvm);
	lvm_claim(false);
	return r;
}

void pk_lvm_free(struct pk_lvm *lvm)
{
	if (!lvm) {
		return;
	}
	pthread_mutex_lock(&lvm_lock);
	lvm2_exit(lvm->handle);
	pthread_mutex_unlock(&lvm_lock);
	lvm_dispose(lvm);
	lvm_claim(false);
}

/* ---- running a verb's command ------------------------------------------- */

/*
 * Runs c and releases it. what (formatted) names the operation in the
 * error message. When report is non-NULL the command's report rows are
 * left there (caller releases); otherwise output is dropped.
 */
int pk_lvm_exec(struct pk_lvm *lvm, struct pk_lvm_cmd *c, struct pk_lvm_capture *report, struct pk_error *err,
	 const char *fmt, ...)
{
	struct pk_lvm_capture local = { 0 };
	char *what;
	va_list ap;
	int r;

	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0) {
		abort();
	}
	va_end(ap);
	r = lvm_run(lvm, c, what, report ? report : &local, err);
	free(what);
	pk_buf_release(&c->line);
	pk_lvm_capture_release(&local);
	return r;
}
