#include "common/meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/lvm_text.h"

/* ---- names -------------------------------------------------------------- */

static const char *const format_names[] = { [PK_VOLUME_RAW] = "RAW", [PK_VOLUME_COW] = "COW" };
static const char *const role_names[] = { [PK_VOLUME_LEAF] = "LEAF",
					  [PK_VOLUME_INTERNAL] = "INTERNAL" };
static const char *const legality_names[] = { [PK_VOLUME_LEGAL] = "LEGAL",
					      [PK_VOLUME_ILLEGAL] = "ILLEGAL",
					      [PK_VOLUME_REMOVING] = "REMOVING" };

#define NNAMES(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, int value)
{
	if (value <= 0 || (size_t)value >= n || !names[value]) {
		return NULL;
	}
	return names[value];
}

static int value_of(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 1; name && i < n; i++) {
		if (names[i] && strcmp(names[i], name) == 0) {
			return (int)i;
		}
	}
	return -EINVAL;
}

const char *pk_volume_format_name(enum pk_volume_format format)
{
	const char *s = name_of(format_names, NNAMES(format_names), (int)format);

	return s ? s : "UNKNOWN";
}

const char *pk_volume_role_name(enum pk_volume_role role)
{
	const char *s = name_of(role_names, NNAMES(role_names), (int)role);

	return s ? s : "UNKNOWN";
}

const char *pk_volume_legality_name(enum pk_volume_legality legality)
{
	const char *s = name_of(legality_names, NNAMES(legality_names), (int)legality);

	return s ? s : "UNKNOWN";
}

int pk_volume_format_parse(const char *name, enum pk_volume_format *ret)
{
	int v = value_of(format_names, NNAMES(format_names), name);

	if (v < 0) {
		return v;
	}
	*ret = (enum pk_volume_format)v;
	return 0;
}

int pk_volume_role_parse(const char *name, enum pk_volume_role *ret)
{
	int v = value_of(role_names, NNAMES(role_names), name);

	if (v < 0) {
		return v;
	}
	*ret = (enum pk_volume_role)v;
	return 0;
}

int pk_volume_legality_parse(const char *name, enum pk_volume_legality *ret)
{
	int v = value_of(legality_names, NNAMES(legality_names), name);

	if (v < 0) {
		return v;
	}
	*ret = (enum pk_volume_legality)v;
	return 0;
}

/* ---- tag lists and values ------------------------------------------------ */

const char *const *pk_meta_tags_strv(struct pk_meta_tags *tags)
{
	for (size_t i = 0; i < tags->count; i++) {
		tags->strv[i] = tags->tag[i];
	}
	tags->strv[tags->count] = NULL;
	return tags->strv;
}

__attribute__((format(printf, 3, 4))) static int tags_add(struct pk_meta_tags *tags,
							   struct pk_error *err,
							   const char *fmt, ...)
{
	char *tag;
	va_list ap;
	int n;

	if (tags->count == PK_META_TAGS_MAX) {
		return pk_error_set(err, PK_E_INTERNAL, E2BIG, "more than %d metadata tags",
				    PK_META_TAGS_MAX);
	}
	tag = tags->tag[tags->count];
	va_start(ap, fmt);
	n = vsnprintf(tag, sizeof(tags->tag[0]), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tags->tag[0])) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "metadata tag '%.40s...' is longer than %d characters", tag,
				    PK_LVM_TAG_MAX);
	}
	if (pk_lvm_tag_check(tag, err) < 0) {
		return -EINVAL;
	}
	tags->count++;
	return 0;
}

static bool tags_have(const struct pk_meta_tags *tags, const char *tag)
{
	for (size_t i = 0; i < tags->count; i++) {
		if (strcmp(tags->tag[i], tag) == 0) {
			return true;
		}
	}
	return false;
}

/* A decimal number exactly as "%" PRIu64 prints it. */
static int canonical_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1] != '\0')) {
		return -EINVAL;
	}
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) {
			return -EINVAL;
		}
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

/* ---- description escaping ------------------------------------------------- */

static bool desc_literal(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("_.+/=!:-", c) != NULL);
}

int pk_meta_desc_escape(const char *text, char *out, size_t size, struct pk_error *err)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		size_t need = desc_literal(*p) ? 1 : 3;

		if (n + need > PK_META_DESC_MAX || n + need >= size) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "description '%.32s...' is too long: at most %d "
					    "characters once escaped, and each byte outside "
					    "[A-Za-z0-9_.+/=!:-] takes 3",
					    text, PK_META_DESC_MAX);
		}
		if (need == 1) {
			out[n] = (char)*p;
		} else {
			snprintf(out + n, 4, "&%02X", *p);
		}
		n += need;
	}
	out[n] = '\0';
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

int pk_meta_desc_unescape(const char *escaped, char *out, size_t size)
{
	size_t n = 0;

	for (const char *p = escaped; *p; n++) {
		int c;

		if (n + 1 >= size) {
			return -EINVAL;
		}
		if (*p == '&') {
			int hi = hex_digit(p[1]);
			int lo = hi < 0 ? -1 : hex_digit(p[2]);

			c = hi * 16 + lo;
			/* Only the form escape writes: no NUL, no escaped literal. */
			if (hi < 0 || lo < 0 || c == 0 || desc_literal((unsigned char)c)) {
				return -EINVAL;
			}
			p += 3;
		} else if (desc_literal((unsigned char)*p)) {
			c = (unsigned char)*p++;
		} else {
			return -EINVAL;
		}
		out[n] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* ---- scanning tags -------------------------------------------------------- */

/*
 * Collects the values of the known keys from tags. what/name name the
 * object in errors ("LV", "<uuid>"). A known key given twice is an error;
 * other tags are skipped.
 */
static int tags_scan(const char *what, const char *name, char *const *tags,
		     const char *const *keys, size_t nkeys, const char **vals,
		     struct pk_error *err)
{
	for (size_t k = 0; k < nkeys; k++) {
		vals[k] = NULL;
	}
	for (size_t i = 0; tags && tags[i]; i++) {
		const char *eq = strchr(tags[i], '=');
		size_t keylen = eq ? (size_t)(eq - tags[i]) : 0;

		if (strncmp(tags[i], "PK_", 3) != 0 || !eq) {
			continue;
		}
		for (size_t k = 0; k < nkeys; k++) {
			if (strlen(keys[k]) != keylen || strncmp(tags[i], keys[k], keylen) != 0) {
				continue;
			}
			if (vals[k]) {
				return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
						    "%s '%s' has tag %s twice ('%s' and '%s')",
						    what, name, keys[k], vals[k], eq + 1);
			}
			vals[k] = eq + 1;
		}
	}
	return 0;
}

/* ---- volumes ------------------------------------------------------------- */

enum vkey { V_IMG, V_PARENT, V_FMT, V_ROLE, V_LEGAL, V_CAP, V_GEN, V_CTIME, V_DESC, V_REQ, V_COUNT };

static const char *const vkeys[V_COUNT] = {
	[V_IMG] = "PK_IMG",   [V_PARENT] = "PK_PARENT", [V_FMT] = "PK_FMT",
	[V_ROLE] = "PK_ROLE", [V_LEGAL] = "PK_LEGAL",   [V_CAP] = "PK_CAP",
	[V_GEN] = "PK_GEN",   [V_CTIME] = "PK_CTIME",   [V_DESC] = "PK_DESC",
	[V_REQ] = "PK_REQ",
};

#define V_REQUIRED V_CTIME /* keys before it are required */

bool pk_meta_lv_is_volume(const char *lv)
{
	return pk_uuid_valid(lv);
}

int pk_meta_volume_check(const char *lv, const struct pk_volume_meta *m, struct pk_error *err)
{
	char escaped[PK_META_DESC_MAX + 1];
	const char *who = lv ? lv : "(new)";

	if (lv && !pk_meta_lv_is_volume(lv)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume id '%.64s' is not a lowercase UUID", lv);
	}
	if (!pk_uuid_valid(m->image) || strcmp(m->image, PK_META_NO_PARENT) == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume %s: image id '%.40s' is not a lowercase UUID", who,
				    m->image);
	}
	if (!pk_uuid_valid(m->parent)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume %s: parent id '%.40s' is not a lowercase UUID (the "
				    "nil UUID for none)",
				    who, m->parent);
	}
	if (lv && strcmp(lv, m->parent) == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume %s names itself as its parent", who);
	}
	if (!name_of(format_names, NNAMES(format_names), (int)m->format) ||
	    !name_of(role_names, NNAMES(role_names), (int)m->role) ||
	    !name_of(legality_names, NNAMES(legality_names), (int)m->legality)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume %s: unknown format %d, role %d or legality %d", who,
				    (int)m->format, (int)m->role, (int)m->legality);
	}
	if (m->format == PK_VOLUME_RAW && strcmp(m->parent, PK_META_NO_PARENT) != 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume %s is RAW but has parent %s (only COW volumes have a "
				    "backing volume)",
				    who, m->parent);
	}
	if (m->capacity == 0 || m->capacity % 512 != 0 || m->capacity > (uint64_t)INT64_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume %s: capacity %" PRIu64 " is not a positive multiple "
				    "of 512",
				    who, m->capacity);
	}
	if (m->request[0] && !pk_uuid_valid(m->request)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume %s: request id '%.40s' is not a lowercase UUID", who,
				    m->request);
	}
	if (strnlen(m->description, sizeof(m->description)) == sizeof(m->description)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "volume %s: description is not terminated", who);
	}
	return pk_meta_desc_escape(m->description, escaped, sizeof(escaped), err);
}

/* Encodes m with generation gen (no check). */
static int volume_tags(const struct pk_volume_meta *m, uint64_t gen, struct pk_meta_tags *t,
		       struct pk_error *err)
{
	char escaped[PK_META_DESC_MAX + 1];
	int r;

	memset(t, 0, sizeof(*t));
	if ((r = tags_add(t, err, "PK_IMG=%s", m->image)) < 0 ||
	    (r = tags_add(t, err, "PK_PARENT=%s", m->parent)) < 0 ||
	    (r = tags_add(t, err, "PK_FMT=%s", pk_volume_format_name(m->format))) < 0 ||
	    (r = tags_add(t, err, "PK_ROLE=%s", pk_volume_role_name(m->role))) < 0 ||
	    (r = tags_add(t, err, "PK_LEGAL=%s", pk_volume_legality_name(m->legality))) < 0 ||
	    (r = tags_add(t, err, "PK_CAP=%" PRIu64, m->capacity)) < 0 ||
	    (r = tags_add(t, err, "PK_GEN=%" PRIu64, gen)) < 0) {
		return r;
	}
	if (m->ctime && (r = tags_add(t, err, "PK_CTIME=%" PRIu64, m->ctime)) < 0) {
		return r;
	}
	if (m->description[0]) {
		r = pk_meta_desc_escape(m->description, escaped, sizeof(escaped), err);
		if (r < 0 || (r = tags_add(t, err, "PK_DESC=%s", escaped)) < 0) {
			return r;
		}
	}
	if (m->request[0] && (r = tags_add(t, err, "PK_REQ=%s", m->request)) < 0) {
		return r;
	}
	return 0;
}

int pk_meta_volume_encode(const struct pk_volume_meta *meta, struct pk_meta_tags *ret,
			  struct pk_error *err)
{
	struct pk_meta_tags t;
	int r = pk_meta_volume_check(NULL, meta, err);

	if (r < 0 || (r = volume_tags(meta, meta->generation, &t, err)) < 0) {
		return r;
	}
	*ret = t;
	return 0;
}

static int bad_tag(const char *lv, enum vkey k, const char *val, const char *why,
		   struct pk_error *err)
{
	return pk_error_set(err, PK_E_ILLEGAL, EBADMSG, "LV '%s': tag %s='%.60s' %s", lv,
			    vkeys[k], val, why);
}

static int volume_values(const char *lv, const char *const *v, struct pk_volume_meta *m,
			 struct pk_error *err)
{
	if (!pk_uuid_valid(v[V_IMG])) {
		return bad_tag(lv, V_IMG, v[V_IMG], "is not a lowercase UUID", err);
	}
	if (!pk_uuid_valid(v[V_PARENT])) {
		return bad_tag(lv, V_PARENT, v[V_PARENT], "is not a lowercase UUID", err);
	}
	memcpy(m->image, v[V_IMG], PK_UUID_BUFLEN);
	memcpy(m->parent, v[V_PARENT], PK_UUID_BUFLEN);
	if (pk_volume_format_parse(v[V_FMT], &m->format) < 0) {
		return bad_tag(lv, V_FMT, v[V_FMT], "is not RAW or COW", err);
	}
	if (pk_volume_role_parse(v[V_ROLE], &m->role) < 0) {
		return bad_tag(lv, V_ROLE, v[V_ROLE], "is not LEAF or INTERNAL", err);
	}
	if (pk_volume_legality_parse(v[V_LEGAL], &m->legality) < 0) {
		return bad_tag(lv, V_LEGAL, v[V_LEGAL], "is not LEGAL, ILLEGAL or REMOVING", err);
	}
	if (canonical_u64(v[V_CAP], &m->capacity) < 0) {
		return bad_tag(lv, V_CAP, v[V_CAP], "is not a decimal number of bytes", err);
	}
	if (canonical_u64(v[V_GEN], &m->generation) < 0) {
		return bad_tag(lv, V_GEN, v[V_GEN], "is not a decimal number", err);
	}
	if (v[V_CTIME] && (canonical_u64(v[V_CTIME], &m->ctime) < 0 || m->ctime == 0)) {
		return bad_tag(lv, V_CTIME, v[V_CTIME], "is not a positive decimal number", err);
	}
	if (v[V_DESC] && (!v[V_DESC][0] || pk_meta_desc_unescape(v[V_DESC], m->description,
								 sizeof(m->description)) < 0)) {
		return bad_tag(lv, V_DESC, v[V_DESC], "is not an escaped description", err);
	}
	if (v[V_REQ]) {
		if (!pk_uuid_valid(v[V_REQ])) {
			return bad_tag(lv, V_REQ, v[V_REQ], "is not a lowercase UUID", err);
		}
		memcpy(m->request, v[V_REQ], PK_UUID_BUFLEN);
	}
	return 0;
}

int pk_meta_volume_decode(const char *lv, char *const *tags, struct pk_volume_meta *ret,
			  struct pk_error *err)
{
	struct pk_volume_meta m = { 0 };
	struct pk_error check_err;
	const char *v[V_COUNT];
	int r;

	if (!pk_meta_lv_is_volume(lv)) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "LV '%.64s' is not a volume: its name is not a UUID",
				    lv ? lv : "");
	}
	r = tags_scan("LV", lv, tags, vkeys, V_COUNT, v, err);
	if (r < 0) {
		return r;
	}
	for (size_t k = 0; k < V_REQUIRED; k++) {
		if (!v[k]) {
			return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
					    "LV '%s' lacks the volume tag %s=", lv, vkeys[k]);
		}
	}
	r = volume_values(lv, v, &m, err);
	if (r < 0) {
		return r;
	}
	r = pk_meta_volume_check(lv, &m, &check_err);
	if (r < 0) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG, "LV '%s': inconsistent tags: %s",
				    lv, check_err.message);
	}
	*ret = m;
	return 0;
}

/* True when tag is one of the volume keys decode reads. */
static bool volume_key(const char *tag)
{
	const char *eq = strchr(tag, '=');

	for (size_t k = 0; eq && k < V_COUNT; k++) {
		if (strlen(vkeys[k]) == (size_t)(eq - tag) &&
		    strncmp(tag, vkeys[k], (size_t)(eq - tag)) == 0) {
			return true;
		}
	}
	return false;
}

int pk_meta_volume_diff(const char *lv, char *const *stored, const struct pk_volume_meta *next,
			struct pk_meta_tags *ret_add, struct pk_meta_tags *ret_del,
			uint64_t *ret_generation, struct pk_error *err)
{
	struct pk_meta_tags want, add = { 0 }, del = { 0 };
	struct pk_volume_meta cur = { 0 };
	int r;

	if ((r = pk_meta_volume_decode(lv, stored, &cur, err)) < 0 ||
	    (r = pk_meta_volume_check(lv, next, err)) < 0) {
		return r;
	}
	if (cur.generation == UINT64_MAX) {
		return pk_error_set(err, PK_E_ILLEGAL, EOVERFLOW,
				    "LV '%s': generation %" PRIu64 " cannot grow", lv,
				    cur.generation);
	}
	r = volume_tags(next, cur.generation + 1, &want, err);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; stored && stored[i]; i++) {
		if (volume_key(stored[i]) && !tags_have(&want, stored[i]) &&
		    (r = tags_add(&del, err, "%s", stored[i])) < 0) {
			return r;
		}
	}
	for (size_t i = 0; i < want.count; i++) {
		if (!pk_lvm_tags_contain(stored, want.tag[i]) &&
		    (r = tags_add(&add, err, "%s", want.tag[i])) < 0) {
			return r;
		}
	}
	*ret_add = add;
	*ret_del = del;
	if (ret_generation) {
		*ret_generation = cur.generation + 1;
	}
	return 0;
}

/* ---- domains -------------------------------------------------------------- */

enum dkey { D_ROLE, D_DOMAIN, D_VERSION, D_DESC, D_COUNT };

static const char *const dkeys[D_COUNT] = {
	[D_ROLE] = "PK_ROLE",
	[D_DOMAIN] = "PK_DOMAIN",
	[D_VERSION] = "PK_VERSION",
	[D_DESC] = "PK_DESC",
};

int pk_meta_domain_encode(const struct pk_domain_meta *meta, struct pk_meta_tags *ret,
			  struct pk_error *err)
{
	char escaped[PK_META_DESC_MAX + 1];
	unsigned version = meta->version ? meta->version : PK_META_DOMAIN_VERSION;
	struct pk_meta_tags t = { 0 };
	int r;

	if ((r = pk_uuid_check("domain id", meta->domain, err)) < 0) {
		return r;
	}
	if (version > PK_META_DOMAIN_VERSION) {
		return pk_error_set(err, PK_E_UNSUPPORTED, EOPNOTSUPP,
				    "domain format version %u is newer than this poolkeeper's (%d)",
				    version, PK_META_DOMAIN_VERSION);
	}
	if ((r = tags_add(&t, err, "PK_ROLE=DOMAIN")) < 0 ||
	    (r = tags_add(&t, err, "PK_DOMAIN=%s", meta->domain)) < 0 ||
	    (r = tags_add(&t, err, "PK_VERSION=%u", version)) < 0) {
		return r;
	}
	if (meta->description[0]) {
		r = pk_meta_desc_escape(meta->description, escaped, sizeof(escaped), err);
		if (r < 0 || (r = tags_add(&t, err, "PK_DESC=%s", escaped)) < 0) {
			return r;
		}
	}
	*ret = t;
	return 0;
}

int pk_meta_domain_decode(const char *vg, char *const *tags, struct pk_domain_meta *ret,
			  struct pk_error *err)
{
	struct pk_domain_meta m = { 0 };
	const char *v[D_COUNT];
	uint64_t version;
	int r;

	r = tags_scan("VG", vg, tags, dkeys, D_COUNT, v, err);
	if (r < 0) {
		return r;
	}
	if (!v[D_ROLE] || strcmp(v[D_ROLE], "DOMAIN") != 0) {
		return pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
				    "VG '%s' is not a poolkeeper storage domain (no tag "
				    "PK_ROLE=DOMAIN)",
				    vg);
	}
	if (!v[D_DOMAIN] || !pk_uuid_valid(v[D_DOMAIN])) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "VG '%s': tag PK_DOMAIN='%.60s' is missing or not a lowercase "
				    "UUID",
				    vg, v[D_DOMAIN] ? v[D_DOMAIN] : "");
	}
	if (!v[D_VERSION] || canonical_u64(v[D_VERSION], &version) < 0 || version == 0) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "VG '%s': tag PK_VERSION='%.60s' is missing or not a positive "
				    "number",
				    vg, v[D_VERSION] ? v[D_VERSION] : "");
	}
	if (version > PK_META_DOMAIN_VERSION) {
		return pk_error_set(err, PK_E_UNSUPPORTED, EOPNOTSUPP,
				    "VG '%s' holds a version %" PRIu64 " domain; this poolkeeper "
				    "reads up to version %d",
				    vg, version, PK_META_DOMAIN_VERSION);
	}
	/* Longer than encode writes: its text fits, but the domain could never
	 * be written back (a volume's is caught by pk_meta_volume_check). */
	if (v[D_DESC] && (!v[D_DESC][0] || strlen(v[D_DESC]) > PK_META_DESC_MAX ||
			  pk_meta_desc_unescape(v[D_DESC], m.description, sizeof(m.description)) < 0)) {
		return pk_error_set(err, PK_E_ILLEGAL, EBADMSG,
				    "VG '%s': tag PK_DESC='%.60s' is not an escaped description",
				    vg, v[D_DESC]);
	}
	memcpy(m.domain, v[D_DOMAIN], PK_UUID_BUFLEN);
	m.version = (unsigned)version;
	*ret = m;
	return 0;
}
