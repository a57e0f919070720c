#include "common/parse.h"

#include <errno.h>

int pk_parse_u64_prefix(const char *s, size_t len, uint64_t *ret, size_t *ret_used)
{
	uint64_t v = 0;
	size_t i = 0;

	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10) {
			return -ERANGE;
		}
		v = v * 10 + d;
	}
	if (i == 0) {
		return -EINVAL;
	}
	*ret = v;
	if (ret_used) {
		*ret_used = i;
	}
	return 0;
}

int pk_parse_u64(const char *s, uint64_t *ret)
{
	size_t len = 0;
	size_t used = 0;
	uint64_t v = 0;
	int r;

	while (s[len] >= '0' && s[len] <= '9') {
		len++;
	}
	if (s[len] != '\0') {
		return -EINVAL; /* a non-digit, or nothing but one */
	}
	r = pk_parse_u64_prefix(s, len, &v, &used);
	if (r < 0) {
		return r;
	}
	*ret = v;
	return 0;
}
