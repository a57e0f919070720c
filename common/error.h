/*
 * pk_error — the one error type poolkeeper carries from the place that fails
 * up to the RPC layer.
 *
 * Invariants:
 *  - Functions that can fail return 0 on success or a negative errno, and
 *    take a `struct pk_error *err` as their last argument.
 *  - The function that detects a failure fills `err` once (pk_error_set);
 *    callers above it pass it on unchanged, or add context with
 *    pk_error_prefix. A function never overwrites an error a callee set.
 *  - `err` may be NULL when the caller does not want the details.
 *  - The codes are stable: they are mapped one-to-one onto the wire enum
 *    (proto/types.proto ErrorCode) by pk_codec_error_code().
 */
#ifndef PK_ERROR_H
#define PK_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum pk_errc {
	PK_OK = 0,
	PK_E_INVALID_ARGUMENT = 1, /* the request is wrong; retrying it unchanged fails again */
	PK_E_NOT_FOUND = 2,        /* a named object does not exist */
	PK_E_ALREADY_EXISTS = 3,   /* an object with that identity exists */
	PK_E_BUSY = 4,             /* a lock was not had in time; retry later */
	PK_E_NOT_SPM = 5,          /* a mutating call reached an spmd without the lease */
	PK_E_IN_USE = 6,           /* the object is referenced (parent, prepared, running) */
	PK_E_NO_SPACE = 7,         /* the volume group or a volume is too small */
	PK_E_CONFLICT = 8,         /* another operation on the same object is under way */
	PK_E_UNSUPPORTED = 9,      /* the verb or option is not implemented here */
	PK_E_INTERNAL = 10,        /* a bug or an unexpected failure of a dependency */
	PK_E_UNAVAILABLE = 11,     /* a peer (daemon, libvirtd, sanlock) cannot be reached */
	PK_E_TIMEOUT = 12,         /* a peer did not answer in time */
	PK_E_ILLEGAL = 13,         /* the data is marked ILLEGAL or inconsistent */
	PK_E_ABORTED = 14,         /* the operation was cancelled */
	PK_E_IO = 15,              /* storage read/write failed */
	PK_E_PERMISSION_DENIED = 16, /* the caller's role may not call this verb */
};

#define PK_ERROR_MSG_MAX 512

struct pk_error {
	enum pk_errc code;
	char message[PK_ERROR_MSG_MAX];
};

/* Resets to PK_OK with an empty message. NULL-safe. */
void pk_error_clear(struct pk_error *err);

/*
 * Records the failure and returns -errnum (errnum > 0), so a caller writes
 * `return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "volume '%s' ...", id);`
 * If errnum is 0 it is derived from the code.
 */
int pk_error_set(struct pk_error *err, enum pk_errc code, int errnum,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int pk_error_setv(struct pk_error *err, enum pk_errc code, int errnum,
		  const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* Prepends "context: " to an error already set. NULL-safe. */
void pk_error_prefix(struct pk_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* True when err is set (code != PK_OK). */
int pk_error_is_set(const struct pk_error *err);

/* Stable upper-case name of a code, e.g. "NOT_SPM". Never NULL. */
const char *pk_errc_name(enum pk_errc code);

/* Parses a name from pk_errc_name; returns -EINVAL for an unknown one. */
int pk_errc_from_name(const char *name, enum pk_errc *ret_code);

/* The errno a code stands for when no better one is known (EINVAL, ENOENT...). */
int pk_errc_errno(enum pk_errc code);

#endif
