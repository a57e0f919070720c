/*
 * common/lvm_internal.h — the inside of common/lvm.h. Included by
 * common/lvm.c (the liblvm2cmd instance, which implements it) and
 * common/lvm_verbs.c (the verbs); by no other file.
 *
 * A verb builds a struct pk_lvm_cmd with pk_lvm_cmd_arg* (arguments are
 * validated before they get here: no blanks, quotes or leading '#') and
 * runs it with pk_lvm_exec, which serialises the call into liblvm2cmd,
 * retries LVM's file locks and releases the command line.
 */
#ifndef PK_LVM_INTERNAL_H
#define PK_LVM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/lvm.h"

/* What one LVM command printed, as the log function received it. */
struct pk_lvm_capture {
	struct pk_buf report; /* report lines ("LVM2_..."), each ending in '\n' */
	struct pk_buf errors; /* error lines, "; " between them */
	struct pk_buf notes;  /* other printed lines, "; " between them */
	bool truncated;           /* a report line filled LVM's line buffer */
};

/* The handle (common/lvm.c owns its fields; the verbs read devices and
 * activation). */
struct pk_lvm {
	void *handle;
	char **devices; /* NULL-terminated */
	bool activation;
	char *conf_dir;
	bool conf_dir_owned; /* a temporary directory made by pk_lvm_new */
	unsigned lock_timeout_ms;
	pk_lvm_write_guard_fn *write_guard; /* NULL: none (pk_lvm_write_guard_set) */
	void *write_guard_ctx;
};

/* One LVM command line; arguments are validated before they get here. */
struct pk_lvm_cmd {
	struct pk_buf line;
	int argc;
	/* Non-NULL: the command writes metadata of this VG; the write guard
	 * runs before each attempt. */
	const char *write_vg;
};

void pk_lvm_capture_release(struct pk_lvm_capture *cap);

/* Appends one argument (or a formatted one) to the command line. */
void pk_lvm_cmd_arg(struct pk_lvm_cmd *c, const char *arg);
void pk_lvm_cmd_argf(struct pk_lvm_cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "option tag" for every tag of the NULL-terminated tags (may be NULL). */
void pk_lvm_cmd_tags(struct pk_lvm_cmd *c, const char *option, const char *const *tags);
/* The common start of every report command. */
void pk_lvm_cmd_report(struct pk_lvm_cmd *c, const char *command, const char *fields);

/*
 * Runs c and releases it. what (formatted) names the operation in the
 * error message. When report is non-NULL the command's report rows are
 * left there (caller releases); otherwise output is dropped.
 */
int pk_lvm_exec(struct pk_lvm *lvm, struct pk_lvm_cmd *c, struct pk_lvm_capture *report,
		struct pk_error *err, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
