#include "common/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int errnum;
} errc_table[] = {
	[PK_OK] = { "OK", 0 },
	[PK_E_INVALID_ARGUMENT] = { "INVALID_ARGUMENT", EINVAL },
	[PK_E_NOT_FOUND] = { "NOT_FOUND", ENOENT },
	[PK_E_ALREADY_EXISTS] = { "ALREADY_EXISTS", EEXIST },
	[PK_E_BUSY] = { "BUSY", EBUSY },
	[PK_E_NOT_SPM] = { "NOT_SPM", EPERM },
	[PK_E_IN_USE] = { "IN_USE", EBUSY },
	[PK_E_NO_SPACE] = { "NO_SPACE", ENOSPC },
	[PK_E_CONFLICT] = { "CONFLICT", EALREADY },
	[PK_E_UNSUPPORTED] = { "UNSUPPORTED", EOPNOTSUPP },
	[PK_E_INTERNAL] = { "INTERNAL", EIO },
	[PK_E_UNAVAILABLE] = { "UNAVAILABLE", ECONNREFUSED },
	[PK_E_TIMEOUT] = { "TIMEOUT", ETIMEDOUT },
	[PK_E_ILLEGAL] = { "ILLEGAL", EBADMSG },
	[PK_E_ABORTED] = { "ABORTED", ECANCELED },
	[PK_E_IO] = { "IO", EIO },
	[PK_E_PERMISSION_DENIED] = { "PERMISSION_DENIED", EACCES },
};

#define ERRC_COUNT (sizeof(errc_table) / sizeof(errc_table[0]))

void pk_error_clear(struct pk_error *err)
{
	if (!err) {
		return;
	}
	err->code = PK_OK;
	err->message[0] = '\0';
}

int pk_errc_errno(enum pk_errc code)
{
	if ((size_t)code >= ERRC_COUNT || code == PK_OK) {
		return code == PK_OK ? 0 : EIO;
	}
	return errc_table[code].errnum;
}

int pk_error_setv(struct pk_error *err, enum pk_errc code, int errnum,
		  const char *fmt, va_list ap)
{
	if (errnum < 0) {
		errnum = -errnum;
	}
	if (errnum == 0) {
		errnum = pk_errc_errno(code);
	}
	if (errnum == 0) {
		errnum = EIO;
	}
	if (err) {
		err->code = code;
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
	}
	return -errnum;
}

int pk_error_set(struct pk_error *err, enum pk_errc code, int errnum,
		 const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = pk_error_setv(err, code, errnum, fmt, ap);
	va_end(ap);
	return r;
}

void pk_error_prefix(struct pk_error *err, const char *fmt, ...)
{
	char prefix[PK_ERROR_MSG_MAX];
	char joined[PK_ERROR_MSG_MAX];
	va_list ap;

	if (!err) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	{
		size_t plen = strnlen(prefix, sizeof(joined) - 3);
		memcpy(joined, prefix, plen);
		joined[plen] = ':';
		joined[plen + 1] = ' ';
		snprintf(joined + plen + 2, sizeof(joined) - plen - 2, "%s", err->message);
	}
	memcpy(err->message, joined, sizeof(joined));
}

int pk_error_is_set(const struct pk_error *err)
{
	return err && err->code != PK_OK;
}

const char *pk_errc_name(enum pk_errc code)
{
	if ((size_t)code >= ERRC_COUNT || !errc_table[code].name) {
		return "UNKNOWN";
	}
	return errc_table[code].name;
}

int pk_errc_from_name(const char *name, enum pk_errc *ret_code)
{
	for (size_t i = 0; i < ERRC_COUNT; i++) {
		if (errc_table[i].name && strcmp(errc_table[i].name, name) == 0) {
			*ret_code = (enum pk_errc)i;
			return 0;
		}
	}
	return -EINVAL;
}
