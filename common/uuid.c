#include "common/uuid.h"

#include <errno.h>
#include <string.h>
#include <uuid/uuid.h>

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

void pk_uuid_generate(char out[PK_UUID_BUFLEN])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
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
