/*
 * pk_parse — decimal numbers out of text we read back (records, command
 * lines, tool reports, options).
 *
 * The accepted form is strict: ASCII digits only — no sign, no leading
 * space, no base prefix. Errors are return values, never sentinels:
 * -EINVAL when there is no number (empty, a non-digit first, or — for the
 * whole-string form — anything after the digits), -ERANGE when the number
 * exceeds UINT64_MAX. *ret is written only on success.
 *
 * Leading zeros are accepted ("007" is 7); a format that wants one
 * spelling per value checks that itself. Pure, thread-safe.
 */
#ifndef PK_PARSE_H
#define PK_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* All of the NUL-terminated s is one number. */
int pk_parse_u64(const char *s, uint64_t *ret);

/*
 * The number at the start of s[0..len) (s need not be NUL-terminated):
 * the longest run of digits, which must not be empty; what follows is the
 * caller's. *ret_used (may be NULL) is the number of digits read.
 */
int pk_parse_u64_prefix(const char *s, size_t len, uint64_t *ret, size_t *ret_used);

#endif
