#include "common/uuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

bool pk_uuid_valid(const char *s)
{
	if (!s || strlen(s) != PK_UUID_STRLEN) {
		return false;
	}
	for (size_t i = 0; i < PK_UUID_STRLEN; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-') {
				return false;
			}
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return true;
}

/* Text offsets of the 16 bytes: two hex digits each, dashes between groups. */
static const uint8_t uuid_pos[PK_UUID_BYTES] = { 0,  2,  4,  6,  9,  11, 14, 16,
						 19, 21, 24, 26, 28, 30, 32, 34 };

static unsigned hex_value(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

int pk_uuid_parse(const char *s, uint8_t ret[PK_UUID_BYTES])
{
	if (!pk_uuid_valid(s)) {
		return -EINVAL;
	}
	for (size_t i = 0; i < PK_UUID_BYTES; i++) {
		const char *h = s + uuid_pos[i];

		ret[i] = (uint8_t)(hex_value(h[0]) << 4 | hex_value(h[1]));
	}
	return 0;
}

void pk_uuid_format(const uint8_t u[PK_UUID_BYTES], char out[PK_UUID_BUFLEN])
{
	static const char hex[] = "0123456789abcdef";

	memset(out, '-', PK_UUID_STRLEN);
	for (size_t i = 0; i < PK_UUID_BYTES; i++) {
		out[uuid_pos[i]] = hex[u[i] >> 4];
		out[uuid_pos[i] + 1] = hex[u[i] & 0xf];
	}
	out[PK_UUID_STRLEN] = '\0';
}

void pk_uuid_generate(char out[PK_UUID_BUFLEN])
{
	uint8_t u[PK_UUID_BYTES];
	size_t got = 0;

	while (got < sizeof(u)) {
		ssize_t n = getrandom(u + got, sizeof(u) - got, 0);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			fprintf(stderr, "poolkeeper: getrandom failed: %s\n", strerror(errno));
			abort();
		}
		got += (size_t)n;
	}
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4: random */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* variant 10: RFC 4122 */
	pk_uuid_format(u, out);
}

int pk_uuid_check(const char *field, const char *s, struct pk_error *err)
{
	if (!s || !*s) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s is required (a lowercase UUID such as "
				    "'0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b')", field);
	}
	if (!pk_uuid_valid(s)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s '%.64s' is not a lowercase UUID "
				    "(8-4-4-4-12 hex digits)", field, s);
	}
	return 0;
}

int pk_uuid_check_ids(const char *domain, const char *image, const char *volume,
		      struct pk_error *err)
{
	int r = pk_uuid_check("domain_id", domain, err);

	if (r == 0) {
		r = pk_uuid_check("image_id", image, err);
	}
	if (r == 0 && volume) {
		r = pk_uuid_check("volume_id", volume, err);
	}
	return r;
}
