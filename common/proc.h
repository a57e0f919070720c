/*
 * pk_proc — runs a helper program (qemu-img) and collects its output.
 *
 * Children are started with posix_spawn, never fork(): nng and libvirt
 * threads make fork unsafe in the daemons. stdin is /dev/null; stdout and
 * stderr are captured (up to 1 MiB each). No shell is involved: argv is
 * passed as is, so no quoting issues and no injection.
 */
#ifndef PK_PROC_H
#define PK_PROC_H

#include <stddef.h>

#include "common/error.h"

struct pk_proc_result {
	int exit_status; /* exit code, or 128 + signal */
	char *out;       /* heap, NUL-terminated; never NULL after a run */
	char *err;
};

/*
 * Runs argv[0] (looked up in PATH) with a time limit (timeout_ms <= 0:
 * none); kills it with SIGKILL when the limit passes (PK_E_TIMEOUT).
 * Returns 0 when the program ran (whatever its exit status) and fills
 * *ret; the caller releases it with pk_proc_result_release.
 */
int pk_proc_run(const char *const *argv, int timeout_ms, struct pk_proc_result *ret,
		struct pk_error *err);
void pk_proc_result_release(struct pk_proc_result *res);

/*
 * Runs argv and requires exit status 0; otherwise fails with
 * PK_E_INTERNAL (or `code_on_failure` if not PK_OK) and a message with the
 * command and the last line of its stderr. *ret_out (may be NULL) gets
 * stdout (heap, caller frees).
 */
int pk_proc_check(const char *const *argv, int timeout_ms, enum pk_errc code_on_failure,
		  char **ret_out, struct pk_error *err);

#endif
