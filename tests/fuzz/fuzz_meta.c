/*
 * libFuzzer target: LV and VG tag metadata (common/meta.c). The input is
 * lines: the LV (or VG) name, then its tags. Whatever decodes must pass
 * the checks, encode, and decode from its own tags to the same metadata;
 * a description must unescape and escape back to itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/meta.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void volume_roundtrip(const char *lv, char *const *tags)
{
	struct pk_volume_meta m, again;
	struct pk_meta_tags enc;
	struct pk_error err;

	if (pk_meta_volume_decode(lv, tags, &m, &err) < 0) {
		return;
	}
	if (pk_meta_volume_check(lv, &m, &err) < 0 || pk_meta_volume_encode(&m, &enc, &err) < 0 ||
	    pk_meta_volume_decode(lv, (char *const *)pk_meta_tags_strv(&enc), &again, &err) < 0) {
		abort();
	}
	if (strcmp(m.image, again.image) || strcmp(m.parent, again.parent) ||
	    m.format != again.format || m.role != again.role || m.legality != again.legality ||
	    m.capacity != again.capacity || m.generation != again.generation ||
	    m.ctime != again.ctime || strcmp(m.description, again.description) ||
	    strcmp(m.request, again.request)) {
		abort();
	}
}

static void domain_roundtrip(const char *vg, char *const *tags)
{
	struct pk_domain_meta m, again;
	struct pk_meta_tags enc;
	struct pk_error err;

	if (pk_meta_domain_decode(vg, tags, &m, &err) < 0) {
		return;
	}
	if (pk_meta_domain_encode(&m, &enc, &err) < 0 ||
	    pk_meta_domain_decode(vg, (char *const *)pk_meta_tags_strv(&enc), &again, &err) < 0 ||
	    strcmp(m.domain, again.domain) || m.version != again.version ||
	    strcmp(m.description, again.description)) {
		abort();
	}
}

static void desc_roundtrip(const char *escaped)
{
	char plain[PK_META_DESC_MAX + 1], back[PK_META_DESC_MAX + 1];
	struct pk_error err;

	if (pk_meta_desc_unescape(escaped, plain, sizeof(plain)) < 0) {
		return;
	}
	if (pk_meta_desc_escape(plain, back, sizeof(back), &err) == 0 && strcmp(back, escaped)) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	size_t n;
	char **lines = fuzz_lines(text, 32, &n);

	volume_roundtrip(lines[0], lines + 1);
	domain_roundtrip(lines[0], lines + 1);
	for (size_t i = 1; i < n; i++) {
		if (strncmp(lines[i], "PK_DESC=", 8) == 0) {
			desc_roundtrip(lines[i] + 8);
		}
	}
	free(lines);
	free(text);
	return 0;
}
