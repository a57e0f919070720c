/* pk-test-fakes: fake_lvm */
/*
 * Volume and domain metadata as LVM tags (common/meta.c): encode, strict
 * decode, the one-commit update diff, description escaping; and the same
 * flows through the LVM seam, on the fake LVM the SPM tests use (whose
 * own behaviour, failure injection included, is checked here too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include "common/lvm.h"
#include "common/lvm_text.h"
#include "common/meta.h"
#include "tests/fakes/fake_lvm.h"

#define VOL "0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b"
#define IMG "11111111-2222-4333-8444-555555555555"
#define PARENT "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
#define DOMAIN "dddddddd-0000-4000-8000-000000000001"

static void base_meta(struct pk_volume_meta *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->image, sizeof(m->image), "%s", IMG);
	snprintf(m->parent, sizeof(m->parent), "%s", PARENT);
	m->format = PK_VOLUME_COW;
	m->role = PK_VOLUME_LEAF;
	m->legality = PK_VOLUME_LEGAL;
	m->capacity = 10737418240ull;
	m->generation = 7;
}

/* A heap NULL-terminated copy of a literal list (as a report gives). */
static char **tags_of(const char *const *list)
{
	size_t n = 0;
	char **v;

	while (list[n]) {
		n++;
	}
	v = calloc(n + 1, sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(list[i]);
	}
	return v;
}

static const char *const good_tags[] = {
	"PK_IMG=" IMG,     "PK_PARENT=" PARENT, "PK_FMT=COW", "PK_ROLE=LEAF", "PK_LEGAL=LEGAL",
	"PK_CAP=10737418240", "PK_GEN=7", NULL,
};

/* good_tags with `tag` replacing the tag of the same key (or removing it
 * when tag is "KEY" without '='), plus `extra` when non-NULL. */
static char **tags_with(const char *tag, const char *extra)
{
	const char *list[32];
	size_t n = 0;
	const char *eq = strchr(tag, '=');
	size_t keylen = eq ? (size_t)(eq - tag) : strlen(tag);

	for (size_t i = 0; good_tags[i]; i++) {
		if (strncmp(good_tags[i], tag, keylen) == 0 && good_tags[i][keylen] == '=') {
			if (eq) {
				list[n++] = tag;
			}
			continue;
		}
		list[n++] = good_tags[i];
	}
	if (extra) {
		list[n++] = extra;
	}
	list[n] = NULL;
	return tags_of(list);
}

static void expect_illegal(const char *lv, char **tags, const char *needle)
{
	struct pk_volume_meta m;
	struct pk_error err;

	pk_error_clear(&err);
	assert_int_equal(pk_meta_volume_decode(lv, tags, &m, &err), -EBADMSG);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	if (!strstr(err.message, needle)) {
		fail_msg("message '%s' lacks '%s'", err.message, needle);
	}
	pk_strv_free(tags);
}

/* ---- encode / decode ------------------------------------------------------ */

static void test_meta__encode_decode_round_trip(void **state)
{
	struct pk_volume_meta m, back;
	struct pk_meta_tags tags;
	const char *const *strv;
	struct pk_error err;

	(void)state;
	base_meta(&m);
	m.ctime = 1700000000;
	snprintf(m.description, sizeof(m.description), "boot disk: vm-1 (été)");
	assert_int_equal(pk_meta_volume_encode(&m, &tags, &err), 0);
	assert_int_equal(tags.count, 9);
	assert_string_equal(tags.tag[0], "PK_IMG=" IMG);
	assert_string_equal(tags.tag[1], "PK_PARENT=" PARENT);
	assert_string_equal(tags.tag[2], "PK_FMT=COW");
	assert_string_equal(tags.tag[3], "PK_ROLE=LEAF");
	assert_string_equal(tags.tag[4], "PK_LEGAL=LEGAL");
	assert_string_equal(tags.tag[5], "PK_CAP=10737418240");
	assert_string_equal(tags.tag[6], "PK_GEN=7");
	assert_string_equal(tags.tag[7], "PK_CTIME=1700000000");
	assert_string_equal(tags.tag[8], "PK_DESC=boot&20disk:&20vm-1&20&28&C3&A9t&C3&A9&29");
	strv = pk_meta_tags_strv(&tags);
	assert_null(strv[9]);
	/* Every tag is one LVM accepts. */
	assert_int_equal(pk_lvm_tags_check(strv, NULL, &err), 0);

	assert_int_equal(pk_meta_volume_decode(VOL, (char *const *)strv, &back, &err), 0);
	assert_memory_equal(&m, &back, sizeof(m));
}

/* PK_REQ: the request id of the last write, optional, a UUID or nothing. */
static void test_meta__request_tag(void **state)
{
	struct pk_volume_meta m, back;
	struct pk_meta_tags tags, add, del;
	struct pk_error err;
	char **stored;
	const char *bad[] = { "PK_IMG=" IMG, "PK_PARENT=" PK_META_NO_PARENT, "PK_FMT=RAW",
			      "PK_ROLE=LEAF", "PK_LEGAL=LEGAL", "PK_CAP=512", "PK_GEN=1",
			      "PK_REQ=not-a-uuid", NULL };

	(void)state;
	base_meta(&m);
	snprintf(m.request, sizeof(m.request), "%s", "0c5f6f52-3c1e-4d36-8a55-7f8a3a6a1b22");
	assert_int_equal(pk_meta_volume_encode(&m, &tags, &err), 0);
	assert_string_equal(tags.tag[tags.count - 1], "PK_REQ=0c5f6f52-3c1e-4d36-8a55-7f8a3a6a1b22");
	assert_int_equal(pk_meta_volume_decode(VOL, (char *const *)pk_meta_tags_strv(&tags), &back,
					       &err), 0);
	assert_memory_equal(&m, &back, sizeof(m));
	/* A write without a request drops the old one, in the same commit. */
	back.request[0] = '\0';
	assert_int_equal(pk_meta_volume_diff(VOL, (char *const *)pk_meta_tags_strv(&tags), &back,
					     &add, &del, NULL, &err), 0);
	assert_int_equal(del.count, 2); /* PK_GEN and PK_REQ */
	assert_string_equal(del.tag[1], "PK_REQ=0c5f6f52-3c1e-4d36-8a55-7f8a3a6a1b22");
	assert_int_equal(add.count, 1);
	stored = tags_of(bad);
	expect_illegal(VOL, stored, "PK_REQ");
	snprintf(m.request, sizeof(m.request), "%s", "nope");
	assert_true(pk_meta_volume_check(VOL, &m, &err) < 0);
}

static void test_meta__optional_tags_and_foreign_tags(void **state)
{
	struct pk_volume_meta m;
	struct pk_error err;
	char **tags;
	const char *list[] = { "PK_IMG=" IMG, "PK_PARENT=" PK_META_NO_PARENT, "PK_FMT=RAW",
			       "PK_ROLE=INTERNAL", "PK_LEGAL=REMOVING", "PK_CAP=512", "PK_GEN=0",
			       /* a newer poolkeeper's tag, someone else's, odd ones */
			       "PK_FUTURE=42", "OVIRT_VOL=x", "PK_NOVALUE", "pk_img=lower",
			       NULL };

	(void)state;
	tags = tags_of(list);
	assert_int_equal(pk_meta_volume_decode(VOL, tags, &m, &err), 0);
	assert_int_equal(m.format, PK_VOLUME_RAW);
	assert_int_equal(m.role, PK_VOLUME_INTERNAL);
	assert_int_equal(m.legality, PK_VOLUME_REMOVING);
	assert_string_equal(m.parent, PK_META_NO_PARENT);
	assert_int_equal(m.capacity, 512);
	assert_int_equal(m.generation, 0);
	assert_int_equal(m.ctime, 0);
	assert_string_equal(m.description, "");
	pk_strv_free(tags);
}

static void test_meta__missing_or_repeated_tags_are_illegal(void **state)
{
	static const char *const keys[] = { "PK_IMG",  "PK_PARENT", "PK_FMT", "PK_ROLE",
					    "PK_LEGAL", "PK_CAP",   "PK_GEN", NULL };
	char needle[64];

	(void)state;
	for (size_t i = 0; keys[i]; i++) {
		snprintf(needle, sizeof(needle), "lacks the volume tag %s=", keys[i]);
		expect_illegal(VOL, tags_with(keys[i], NULL), needle);
	}
	expect_illegal(VOL, tags_with("PK_GEN=7", "PK_GEN=8"),
		       "has tag PK_GEN twice ('7' and '8')");
}

static void test_meta__garbled_values_are_illegal(void **state)
{
	(void)state;
	expect_illegal("not-a-uuid", tags_with("PK_GEN=7", NULL), "name is not a UUID");
	expect_illegal(VOL, tags_with("PK_IMG=" "11111111-2222-4333-8444-55555555555X", NULL),
		       "PK_IMG='11111111-2222-4333-8444-55555555555X' is not a lowercase UUID");
	expect_illegal(VOL, tags_with("PK_IMG=" "11111111-2222-4333-8444-55555555555A", NULL),
		       "PK_IMG=");
	expect_illegal(VOL, tags_with("PK_PARENT=none", NULL), "PK_PARENT='none'");
	expect_illegal(VOL, tags_with("PK_FMT=QCOW2", NULL), "is not RAW or COW");
	expect_illegal(VOL, tags_with("PK_ROLE=TOP", NULL), "is not LEAF or INTERNAL");
	expect_illegal(VOL, tags_with("PK_LEGAL=1", NULL), "is not LEGAL, ILLEGAL or REMOVING");
	expect_illegal(VOL, tags_with("PK_CAP=012", NULL), "PK_CAP='012'");
	expect_illegal(VOL, tags_with("PK_CAP=-1", NULL), "PK_CAP='-1'");
	expect_illegal(VOL, tags_with("PK_CAP=18446744073709551616", NULL), "PK_CAP=");
	expect_illegal(VOL, tags_with("PK_CAP=", NULL), "PK_CAP=''");
	expect_illegal(VOL, tags_with("PK_GEN=x", NULL), "PK_GEN='x' is not a decimal number");
	expect_illegal(VOL, tags_with("PK_GEN=7", "PK_CTIME=0"), "PK_CTIME='0'");
	expect_illegal(VOL, tags_with("PK_GEN=7", "PK_DESC="), "PK_DESC=''");
	expect_illegal(VOL, tags_with("PK_GEN=7", "PK_DESC=a&2"), "is not an escaped description");
	expect_illegal(VOL, tags_with("PK_GEN=7", "PK_DESC=a&41"), "PK_DESC='a&41'");
	expect_illegal(VOL, tags_with("PK_GEN=7", "PK_DESC=a&00"), "PK_DESC='a&00'");
	expect_illegal(VOL, tags_with("PK_GEN=7", "PK_DESC=a&2f"), "PK_DESC='a&2f'");
	expect_illegal(VOL, tags_with("PK_GEN=7", "PK_DESC=a#b"), "PK_DESC='a#b'");
	/* consistent values only */
	expect_illegal(VOL, tags_with("PK_CAP=1000", NULL), "capacity 1000");
	expect_illegal(VOL, tags_with("PK_CAP=0", NULL), "capacity 0");
	expect_illegal(VOL, tags_with("PK_FMT=RAW", NULL), "is RAW but has parent");
	expect_illegal(PARENT, tags_with("PK_GEN=7", NULL), "names itself as its parent");
	expect_illegal(VOL, tags_with("PK_IMG=" PK_META_NO_PARENT, NULL), "image id");
}

static void test_meta__check_refuses_what_decode_would(void **state)
{
	struct pk_volume_meta m;
	struct pk_meta_tags tags;
	struct pk_error err;

	(void)state;
	base_meta(&m);
	assert_int_equal(pk_meta_volume_check(VOL, &m, &err), 0);
	assert_int_equal(pk_meta_volume_check("VOL", &m, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	m.format = 0;
	assert_int_equal(pk_meta_volume_encode(&m, &tags, &err), -EINVAL);
	assert_non_null(strstr(err.message, "unknown format 0"));
	base_meta(&m);
	m.legality = 9;
	assert_int_equal(pk_meta_volume_encode(&m, &tags, &err), -EINVAL);
	base_meta(&m);
	memset(m.description, 'x', PK_META_DESC_MAX);
	assert_int_equal(pk_meta_volume_encode(&m, &tags, &err), 0);
	assert_int_equal(strlen(tags.tag[7]), PK_LVM_TAG_MAX);
	m.description[PK_META_DESC_MAX - 1] = ' '; /* 3 characters escaped */
	assert_int_equal(pk_meta_volume_encode(&m, &tags, &err), -EINVAL);
	assert_non_null(strstr(err.message, "too long"));
	base_meta(&m);
	m.image[0] = 'A';
	assert_int_equal(pk_meta_volume_encode(&m, &tags, &err), -EINVAL);
	assert_non_null(strstr(err.message, "image id"));
}

static void test_meta__description_escaping(void **state)
{
	char out[PK_META_DESC_MAX + 1], back[PK_META_DESC_MAX + 1];
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_meta_desc_escape("a-b_c.d+e/f=g!h:i", out, sizeof(out), &err), 0);
	assert_string_equal(out, "a-b_c.d+e/f=g!h:i");
	assert_int_equal(pk_meta_desc_escape("x & y #1, 'q'", out, sizeof(out), &err), 0);
	assert_string_equal(out, "x&20&26&20y&20&231&2C&20&27q&27");
	assert_int_equal(pk_meta_desc_unescape(out, back, sizeof(back)), 0);
	assert_string_equal(back, "x & y #1, 'q'");
	assert_int_equal(pk_meta_desc_escape("", out, sizeof(out), &err), 0);
	assert_string_equal(out, "");
	/* output buffer too small for the escaped text */
	assert_int_equal(pk_meta_desc_escape("abc", out, 3, &err), -EINVAL);
	assert_int_equal(pk_meta_desc_unescape("abc", back, 3), -EINVAL);
	assert_int_equal(pk_meta_desc_unescape("a&", back, sizeof(back)), -EINVAL);
	assert_int_equal(pk_meta_desc_unescape("a&G0", back, sizeof(back)), -EINVAL);
}

/* ---- diff -------------------------------------------------------------------- */

static void test_meta__diff_is_one_commit_with_generation_bumped(void **state)
{
	struct pk_meta_tags add, del;
	struct pk_volume_meta next;
	struct pk_error err;
	uint64_t gen = 0;
	char **stored = tags_with("PK_GEN=7", "OVIRT_X=keep");

	(void)state;
	/* After a merge: the base becomes the leaf and gets the top's parent. */
	base_meta(&next);
	next.role = PK_VOLUME_INTERNAL;
	snprintf(next.parent, sizeof(next.parent), "%s", PK_META_NO_PARENT);
	next.generation = 12345; /* ignored */
	assert_int_equal(pk_meta_volume_diff(VOL, stored, &next, &add, &del, &gen, &err), 0);
	assert_int_equal(gen, 8);
	assert_int_equal(del.count, 3);
	assert_string_equal(del.tag[0], "PK_PARENT=" PARENT);
	assert_string_equal(del.tag[1], "PK_ROLE=LEAF");
	assert_string_equal(del.tag[2], "PK_GEN=7");
	assert_int_equal(add.count, 3);
	assert_string_equal(add.tag[0], "PK_PARENT=" PK_META_NO_PARENT);
	assert_string_equal(add.tag[1], "PK_ROLE=INTERNAL");
	assert_string_equal(add.tag[2], "PK_GEN=8");
	pk_strv_free(stored);

	/* Nothing changed: the generation alone moves; unknown tags stay. */
	stored = tags_with("PK_GEN=7", "PK_FUTURE=1");
	base_meta(&next);
	assert_int_equal(pk_meta_volume_diff(VOL, stored, &next, &add, &del, NULL, &err), 0);
	assert_int_equal(del.count, 1);
	assert_string_equal(del.tag[0], "PK_GEN=7");
	assert_int_equal(add.count, 1);
	assert_string_equal(add.tag[0], "PK_GEN=8");

	/* Optional tags appear and disappear. */
	next.ctime = 99;
	snprintf(next.description, sizeof(next.description), "d");
	assert_int_equal(pk_meta_volume_diff(VOL, stored, &next, &add, &del, NULL, &err), 0);
	assert_int_equal(add.count, 3);
	assert_string_equal(add.tag[1], "PK_CTIME=99");
	assert_string_equal(add.tag[2], "PK_DESC=d");
	pk_strv_free(stored);
	stored = tags_with("PK_GEN=7", "PK_DESC=old");
	base_meta(&next);
	assert_int_equal(pk_meta_volume_diff(VOL, stored, &next, &add, &del, NULL, &err), 0);
	assert_int_equal(del.count, 2);
	assert_string_equal(del.tag[1], "PK_DESC=old");

	/* Bad input either side. */
	next.capacity = 0;
	assert_int_equal(pk_meta_volume_diff(VOL, stored, &next, &add, &del, NULL, &err),
			 -EINVAL);
	pk_strv_free(stored);
	stored = tags_with("PK_FMT", NULL);
	base_meta(&next);
	assert_int_equal(pk_meta_volume_diff(VOL, stored, &next, &add, &del, NULL, &err),
			 -EBADMSG);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	pk_strv_free(stored);
	stored = tags_with("PK_GEN=18446744073709551615", NULL);
	assert_int_equal(pk_meta_volume_diff(VOL, stored, &next, &add, &del, NULL, &err),
			 -EOVERFLOW);
	pk_strv_free(stored);
}

/* ---- domains ----------------------------------------------------------------- */

/*
 * A domain's PK_DESC longer than encode ever writes (PK_META_DESC_MAX
 * escaped characters) is refused: its plain text would fit, but the
 * domain could never be written back (found by tests/fuzz/fuzz_meta.c).
 */
static void test_meta__domain_desc_too_long(void **state)
{
	char desc[16 + PK_META_DESC_MAX + 8];
	struct pk_domain_meta back;
	struct pk_error err;
	char **t;
	int n;

	(void)state;
	/* 118 literal characters and "&20": 121 escaped, 119 plain. */
	n = snprintf(desc, sizeof(desc), "PK_DESC=%.*s&20", PK_META_DESC_MAX - 2,
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(n, 8 + PK_META_DESC_MAX + 1);
	t = tags_of((const char *const[]){ "PK_ROLE=DOMAIN", "PK_DOMAIN=" DOMAIN, "PK_VERSION=1",
					   desc, NULL });
	assert_int_equal(pk_meta_domain_decode("vg0", t, &back, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "PK_DESC"));
	pk_strv_free(t);

	desc[8 + PK_META_DESC_MAX - 3] = '\0'; /* 117 literal characters: fits */
	t = tags_of((const char *const[]){ "PK_ROLE=DOMAIN", "PK_DOMAIN=" DOMAIN, "PK_VERSION=1",
					   desc, NULL });
	assert_int_equal(pk_meta_domain_decode("vg0", t, &back, &err), 0);
	assert_int_equal(strlen(back.description), PK_META_DESC_MAX - 3);
	pk_strv_free(t);
}

static void test_meta__domain_tags(void **state)
{
	struct pk_domain_meta d = { .domain = DOMAIN }, back;
	struct pk_meta_tags tags;
	struct pk_error err;
	char **t;

	(void)state;
	snprintf(d.description, sizeof(d.description), "lab pool");
	assert_int_equal(pk_meta_domain_encode(&d, &tags, &err), 0);
	assert_int_equal(tags.count, 4);
	assert_string_equal(tags.tag[0], "PK_ROLE=DOMAIN");
	assert_string_equal(tags.tag[1], "PK_DOMAIN=" DOMAIN);
	assert_string_equal(tags.tag[2], "PK_VERSION=1");
	assert_string_equal(tags.tag[3], "PK_DESC=lab&20pool");
	assert_int_equal(pk_meta_domain_decode("vg", (char *const *)pk_meta_tags_strv(&tags),
					       &back, &err),
			 0);
	assert_string_equal(back.domain, DOMAIN);
	assert_int_equal(back.version, 1);
	assert_string_equal(back.description, "lab pool");

	d.version = 2;
	assert_int_equal(pk_meta_domain_encode(&d, &tags, &err), -EOPNOTSUPP);
	d.domain[0] = 'X';
	d.version = 0;
	assert_int_equal(pk_meta_domain_encode(&d, &tags, &err), -EINVAL);

	t = tags_of((const char *const[]){ "PK_DOMAIN=" DOMAIN, "PK_VERSION=1", NULL });
	assert_int_equal(pk_meta_domain_decode("vg0", t, &back, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "VG 'vg0' is not a poolkeeper storage domain"));
	pk_strv_free(t);
	assert_int_equal(pk_meta_domain_decode("vg0", NULL, &back, &err), -ENOENT);

	t = tags_of((const char *const[]){ "PK_ROLE=DOMAIN", "PK_DOMAIN=" DOMAIN,
					   "PK_VERSION=2", NULL });
	assert_int_equal(pk_meta_domain_decode("vg0", t, &back, &err), -EOPNOTSUPP);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	pk_strv_free(t);

	t = tags_of((const char *const[]){ "PK_ROLE=DOMAIN", "PK_VERSION=1", NULL });
	assert_int_equal(pk_meta_domain_decode("vg0", t, &back, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "PK_DOMAIN"));
	pk_strv_free(t);

	t = tags_of((const char *const[]){ "PK_ROLE=DOMAIN", "PK_DOMAIN=" DOMAIN,
					   "PK_VERSION=01", NULL });
	assert_int_equal(pk_meta_domain_decode("vg0", t, &back, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "PK_VERSION='01'"));
	pk_strv_free(t);

	t = tags_of((const char *const[]){ "PK_ROLE=DOMAIN", "PK_ROLE=DOMAIN2", NULL });
	assert_int_equal(pk_meta_domain_decode("vg0", t, &back, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "twice"));
	pk_strv_free(t);
}

static void test_meta__names(void **state)
{
	enum pk_volume_format f;
	enum pk_volume_role r;
	enum pk_volume_legality l;

	(void)state;
	assert_string_equal(pk_volume_format_name(PK_VOLUME_COW), "COW");
	assert_string_equal(pk_volume_format_name(0), "UNKNOWN");
	assert_string_equal(pk_volume_role_name(PK_VOLUME_INTERNAL), "INTERNAL");
	assert_string_equal(pk_volume_legality_name(PK_VOLUME_ILLEGAL), "ILLEGAL");
	assert_string_equal(pk_volume_legality_name(42), "UNKNOWN");
	assert_int_equal(pk_volume_format_parse("RAW", &f), 0);
	assert_int_equal(f, PK_VOLUME_RAW);
	assert_int_equal(pk_volume_format_parse("raw", &f), -EINVAL);
	assert_int_equal(pk_volume_role_parse("LEAF", &r), 0);
	assert_int_equal(pk_volume_legality_parse("REMOVING", &l), 0);
	assert_int_equal(pk_volume_legality_parse(NULL, &l), -EINVAL);
	assert_true(pk_meta_lv_is_volume(VOL));
	assert_false(pk_meta_lv_is_volume("ids"));
	assert_false(pk_meta_lv_is_volume(NULL));
}

/* ---- through the LVM seam (fake) ----------------------------------------- */

static const char *const devices[] = { "/dev/fake0", "/dev/fake1", NULL };

static int setup(void **state)
{
	(void)state;
	fake_lvm_reset();
	return 0;
}

static struct pk_lvm *open_lvm(void)
{
	struct pk_lvm_config cfg = { .devices = devices };
	struct pk_lvm *lvm = NULL;
	struct pk_error err;

	assert_int_equal(pk_lvm_new(&cfg, &lvm, &err), 0);
	return lvm;
}

static void test_meta__volume_life_through_the_seam(void **state)
{
	struct pk_domain_meta dom = { .domain = DOMAIN }, dback;
	struct pk_meta_tags tags, add, del;
	struct pk_volume_meta m, back;
	struct pk_lvm_lv_list list;
	struct pk_lvm *lvm = open_lvm();
	struct pk_lvm_vg vg;
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_meta_domain_encode(&dom, &tags, &err), 0);
	assert_int_equal(pk_lvm_vg_create(lvm, "dom", devices, 0, pk_meta_tags_strv(&tags), &err),
			 0);
	assert_int_equal(pk_lvm_vg_report(lvm, "dom", &vg, &err), 0);
	assert_int_equal(pk_meta_domain_decode("dom", vg.tags, &dback, &err), 0);
	assert_string_equal(dback.domain, DOMAIN);
	pk_lvm_vg_release(&vg);

	base_meta(&m);
	assert_int_equal(pk_meta_volume_encode(&m, &tags, &err), 0);
	assert_int_equal(pk_lvm_lv_create(lvm, "dom", VOL, 1 << 20, pk_meta_tags_strv(&tags),
					  &err),
			 0);
	/* ids is no volume: the caller skips what pk_meta_lv_is_volume refuses */
	assert_int_equal(pk_lvm_lv_create(lvm, "dom", "ids", 1 << 20, NULL, &err), 0);

	assert_int_equal(pk_lvm_lv_report(lvm, "dom", NULL, &list, &err), 0);
	assert_int_equal(list.count, 2);
	assert_int_equal(pk_meta_volume_decode(VOL, pk_lvm_lv_list_find(&list, VOL)->tags, &back,
					       &err),
			 0);
	assert_memory_equal(&m, &back, sizeof(m));

	/* mark it ILLEGAL in one change */
	back.legality = PK_VOLUME_ILLEGAL;
	assert_int_equal(pk_meta_volume_diff(VOL, pk_lvm_lv_list_find(&list, VOL)->tags, &back,
					     &add, &del, NULL, &err),
			 0);
	pk_lvm_lv_list_release(&list);
	assert_int_equal(pk_lvm_lv_tags_change(lvm, "dom", VOL, pk_meta_tags_strv(&add),
					       pk_meta_tags_strv(&del), &err),
			 0);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), 1);
	assert_int_equal(pk_lvm_lv_report(lvm, "dom", VOL, &list, &err), 0);
	assert_int_equal(pk_meta_volume_decode(VOL, list.lvs[0].tags, &back, &err), 0);
	assert_int_equal(back.legality, PK_VOLUME_ILLEGAL);
	assert_int_equal(back.generation, 8);
	assert_int_equal(list.lvs[0].ntags, 7);
	pk_lvm_lv_list_release(&list);
	pk_lvm_free(lvm);
}

static void test_meta__fake_lvm_allocates_and_reports_like_lvm(void **state)
{
	const char *one[] = { "/dev/fake0", NULL };
	struct pk_lvm_lv_list list;
	struct pk_lvm *lvm;
	struct pk_lvm_vg vg;
	struct pk_error err;

	(void)state;
	fake_lvm_set_pv_size("/dev/fake0", (1 << 20) + 10 * (4 << 20)); /* 10 extents */
	fake_lvm_set_pv_size("/dev/fake1", (1 << 20) + 10 * (4 << 20));
	lvm = open_lvm();
	assert_int_equal(pk_lvm_vg_create(lvm, "vg", devices, 0, NULL, &err), 0);
	assert_int_equal(pk_lvm_vg_create(lvm, "vg", one, 0, NULL, &err), -EEXIST);
	assert_int_equal(err.code, PK_E_ALREADY_EXISTS);
	assert_int_equal(pk_lvm_vg_create(lvm, "vg2", one, 0, NULL, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);

	assert_int_equal(pk_lvm_lv_create(lvm, "vg", "a", 6 * (4 << 20), NULL, &err), 0);
	assert_int_equal(pk_lvm_lv_create(lvm, "vg", "b", 1, NULL, &err), -EINVAL);
	assert_int_equal(pk_lvm_lv_create(lvm, "vg", "b", 512, NULL, &err), 0); /* 1 extent */
	assert_int_equal(pk_lvm_lv_create(lvm, "vg", "b", 512, NULL, &err), -EEXIST);
	/* extend a over the rest of fake0 (after b), then onto fake1 */
	assert_int_equal(pk_lvm_lv_extend(lvm, "vg", "a", 9 * (4 << 20), &err), 0);
	assert_int_equal(pk_lvm_lv_extend(lvm, "vg", "a", 4 << 20, &err), 0); /* no-op */
	assert_int_equal(pk_lvm_lv_report(lvm, "vg", "a", &list, &err), 0);
	assert_int_equal(list.lvs[0].size, 9 * (4 << 20));
	assert_int_equal(list.lvs[0].nsegments, 2);
	assert_int_equal(list.lvs[0].segments[0].extent_count, 6);
	assert_string_equal(list.lvs[0].segments[1].pv, "/dev/fake0");
	assert_int_equal(list.lvs[0].segments[1].pv_start_extent, 7);
	assert_int_equal(list.lvs[0].segments[1].extent_count, 3);
	pk_lvm_lv_list_release(&list);
	assert_int_equal(pk_lvm_lv_extend(lvm, "vg", "a", 13 * (4 << 20), &err), 0);
	assert_int_equal(pk_lvm_lv_report(lvm, "vg", "a", &list, &err), 0);
	assert_int_equal(list.lvs[0].nsegments, 3);
	assert_string_equal(list.lvs[0].segments[2].pv, "/dev/fake1");
	assert_int_equal(list.lvs[0].segments[2].start_extent, 9);
	assert_int_equal(list.lvs[0].segments[2].pv_start_extent, 0);
	pk_lvm_lv_list_release(&list);

	assert_int_equal(pk_lvm_vg_report(lvm, "vg", &vg, &err), 0);
	assert_int_equal(vg.extent_count, 20);
	assert_int_equal(vg.free_count, 6);
	assert_int_equal(vg.pvs[1].pe_start, 1 << 20);
	assert_int_equal(vg.pvs[0].free, 0);
	assert_int_equal(vg.pvs[1].free, 6 * (4 << 20));
	pk_lvm_vg_release(&vg);

	assert_int_equal(pk_lvm_lv_create(lvm, "vg", "c", 7 * (4 << 20), NULL, &err), -ENOSPC);
	assert_int_equal(err.code, PK_E_NO_SPACE);
	assert_int_equal(pk_lvm_lv_report(lvm, "vg", "c", &list, &err), -ENOENT);
	assert_int_equal(pk_lvm_lv_remove(lvm, "vg", "c", &err), -ENOENT);
	assert_int_equal(pk_lvm_lv_report(lvm, "nope", NULL, &list, &err), -ENOENT);

	assert_int_equal(pk_lvm_vg_remove(lvm, "vg", false, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);
	fake_lvm_set_open("vg", "b", true);
	assert_int_equal(pk_lvm_lv_remove(lvm, "vg", "b", &err), -EBUSY);
	assert_int_equal(pk_lvm_vg_remove(lvm, "vg", true, &err), -EBUSY);
	fake_lvm_set_open("vg", "b", false);
	assert_int_equal(pk_lvm_lv_remove(lvm, "vg", "b", &err), 0);
	assert_int_equal(pk_lvm_vg_remove(lvm, "vg", true, &err), 0);
	assert_int_equal(pk_lvm_vg_report(lvm, "vg", &vg, &err), -ENOENT);
	/* the PVs are free again */
	assert_int_equal(pk_lvm_vg_create(lvm, "vg2", one, 0, NULL, &err), 0);
	pk_lvm_free(lvm);
}

static void test_meta__fake_lvm_failure_injection(void **state)
{
	const char *tags[] = { "A=1", NULL };
	struct pk_lvm_lv_list list;
	struct pk_lvm *lvm = open_lvm();
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_lvm_vg_create(lvm, "vg", devices, 0, NULL, &err), 0);
	fake_lvm_fail_next(-ENOSPC);
	/* a bad argument is refused before the injected failure is used */
	assert_int_equal(pk_lvm_lv_create(lvm, "vg", "bad name", 512, NULL, &err), -EINVAL);
	assert_int_equal(pk_lvm_lv_create(lvm, "vg", "a", 512, tags, &err), -ENOSPC);
	assert_int_equal(err.code, PK_E_NO_SPACE);
	assert_int_equal(pk_lvm_lv_report(lvm, "vg", NULL, &list, &err), 0);
	assert_int_equal(list.count, 0); /* no effect */
	pk_lvm_lv_list_release(&list);
	assert_int_equal(pk_lvm_lv_create(lvm, "vg", "a", 512, tags, &err), 0);

	fake_lvm_fail_op(FAKE_LVM_LV_TAGS, -EIO);
	assert_int_equal(pk_lvm_lv_remove(lvm, "vg", "missing", &err), -ENOENT);
	assert_int_equal(pk_lvm_lv_tags_change(lvm, "vg", "a", NULL, tags, &err), -EIO);
	assert_int_equal(err.code, PK_E_INTERNAL);
	assert_int_equal(pk_lvm_lv_tags_change(lvm, "vg", "a", NULL, tags, &err), 0);
	fake_lvm_fail_op(FAKE_LVM_VG_REPORT, -EBUSY);
	{
		struct pk_lvm_vg vg;

		assert_int_equal(pk_lvm_vg_report(lvm, "vg", &vg, &err), -EBUSY);
		assert_int_equal(err.code, PK_E_BUSY);
	}
	fake_lvm_fail_next(-EEXIST);
	assert_int_equal(pk_lvm_vg_tags_change(lvm, "vg", tags, NULL, &err), -EEXIST);
	assert_int_equal(err.code, PK_E_ALREADY_EXISTS);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_CREATE), 2);
	assert_int_equal(fake_lvm_calls(FAKE_LVM_LV_TAGS), 2);
	pk_lvm_free(lvm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta__encode_decode_round_trip),
		cmocka_unit_test(test_meta__optional_tags_and_foreign_tags),
		cmocka_unit_test(test_meta__request_tag),
		cmocka_unit_test(test_meta__missing_or_repeated_tags_are_illegal),
		cmocka_unit_test(test_meta__garbled_values_are_illegal),
		cmocka_unit_test(test_meta__check_refuses_what_decode_would),
		cmocka_unit_test(test_meta__description_escaping),
		cmocka_unit_test(test_meta__diff_is_one_commit_with_generation_bumped),
		cmocka_unit_test(test_meta__domain_tags),
		cmocka_unit_test(test_meta__domain_desc_too_long),
		cmocka_unit_test(test_meta__names),
		cmocka_unit_test_setup(test_meta__volume_life_through_the_seam, setup),
		cmocka_unit_test_setup(test_meta__fake_lvm_allocates_and_reports_like_lvm, setup),
		cmocka_unit_test_setup(test_meta__fake_lvm_failure_injection, setup),
	};

	return cmocka_run_group_tests_name("meta", tests, NULL, NULL);
}
