/*
 * pk_meta — volume and domain metadata, stored as LVM tags.
 *
 * A volume is an LV named by its UUID; its metadata is the set of LV tags
 * below, written in the same LVM commit that creates the LV (lvcreate
 * --addtag) or changes it (one lvchange with --deltag/--addtag), so it is
 * always whole on storage:
 *
 *   PK_IMG=<uuid>            image the volume belongs to         required
 *   PK_PARENT=<uuid>         parent volume, or the nil UUID      required
 *                            (PK_META_NO_PARENT) for a base volume
 *   PK_FMT=RAW|COW           qemu format                         required
 *   PK_ROLE=LEAF|INTERNAL    top of its chain or not             required
 *   PK_LEGAL=LEGAL|ILLEGAL|REMOVING                              required
 *                            ILLEGAL: not to be used (merged away, half
 *                            made); REMOVING: a deletion was started and
 *                            is rolled forward by the next SPM
 *   PK_CAP=<bytes>           virtual size (decimal, > 0, 512-aligned)  required
 *   PK_GEN=<n>               generation, +1 at every update      required
 *   PK_CTIME=<seconds>       creation time (Unix)                optional
 *   PK_DESC=<text>           description, escaped (below)        optional
 *   PK_REQ=<uuid>            the client request id of the last   optional
 *                            metadata write, so the SPM (or the next
 *                            one) recognises a repeat of it (docs/SPM.md)
 *
 * A storage domain is a VG with the tags PK_ROLE=DOMAIN, PK_DOMAIN=<uuid>,
 * PK_VERSION=<n> (this code writes PK_META_DOMAIN_VERSION and reads
 * versions up to it) and optionally PK_DESC=<text>.
 *
 * Decoding is strict about what poolkeeper needs and lenient about the
 * rest: a known tag that is missing (when required), given twice or not in
 * the exact form encode writes (canonical UUIDs, decimal numbers without
 * leading zeros, canonical escapes) fails with PK_E_ILLEGAL naming the LV
 * (or VG) and the tag; tags without the PK_ prefix and unknown PK_ tags (a
 * newer poolkeeper's) are ignored, and an update never touches them.
 *
 * Tag charset: LVM allows [A-Za-z0-9_+.-/=!:&#] and we keep a tag to 128
 * characters, so a description keeps [A-Za-z0-9_.+/=!:-] as is and writes
 * every other byte as '&' and two upper-case hex digits ("a b" ->
 * "a&20b"); its escaped form is at most PK_META_DESC_MAX characters.
 *
 * All functions are pure (no I/O); results are filled only on success.
 */
#ifndef PK_META_H
#define PK_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/lvm.h"
#include "common/uuid.h"

#define PK_META_NO_PARENT "00000000-0000-0000-0000-000000000000"
#define PK_META_DOMAIN_VERSION 1
/* Longest escaped description: a 128-character tag minus "PK_DESC=". */
#define PK_META_DESC_MAX 120
/* Most tags one encode produces. */
#define PK_META_TAGS_MAX 12

enum pk_volume_format {
	PK_VOLUME_RAW = 1,
	PK_VOLUME_COW = 2,
};

enum pk_volume_role {
	PK_VOLUME_LEAF = 1,
	PK_VOLUME_INTERNAL = 2,
};

enum pk_volume_legality {
	PK_VOLUME_LEGAL = 1,
	PK_VOLUME_ILLEGAL = 2,
	PK_VOLUME_REMOVING = 3,
};

/* A volume's metadata (the volume id is the LV name, not in here). */
struct pk_volume_meta {
	char image[PK_UUID_BUFLEN];
	char parent[PK_UUID_BUFLEN]; /* PK_META_NO_PARENT for a base volume */
	enum pk_volume_format format;
	enum pk_volume_role role;
	enum pk_volume_legality legality;
	uint64_t capacity;   /* bytes */
	uint64_t generation;
	uint64_t ctime;      /* seconds since the epoch; 0: not recorded */
	/*
	 * Plain text, "" for none: encode escapes it into PK_DESC and decode
	 * unescapes it, so callers never see the escaped form. Its escaped
	 * form must fit PK_META_DESC_MAX (pk_meta_volume_check).
	 */
	char description[PK_META_DESC_MAX + 1];
	char request[PK_UUID_BUFLEN]; /* "" for none */
};

struct pk_domain_meta {
	char domain[PK_UUID_BUFLEN];
	unsigned version;
	char description[PK_META_DESC_MAX + 1]; /* plain text, as for volumes */
};

/* A small list of tags, by value (no heap). */
struct pk_meta_tags {
	size_t count;
	char tag[PK_META_TAGS_MAX][PK_LVM_TAG_MAX + 1];
	const char *strv[PK_META_TAGS_MAX + 1];
};

/*
 * The tags as the NULL-terminated list pk_lvm takes. The pointers refer
 * into *tags: valid while tags is neither changed nor moved.
 */
const char *const *pk_meta_tags_strv(struct pk_meta_tags *tags);

/* True when an LV name is a volume id (a canonical UUID). */
bool pk_meta_lv_is_volume(const char *lv);

/*
 * Checks a volume's metadata for what encode and decode require: UUIDs,
 * known enums, capacity, description length, and that a volume is not its
 * own parent and a RAW volume has none. lv may be NULL (not checked).
 * Fails with PK_E_INVALID_ARGUMENT.
 */
int pk_meta_volume_check(const char *lv, const struct pk_volume_meta *meta,
			 struct pk_error *err);

/* The full tag set of a volume, in the order of the table above. */
int pk_meta_volume_encode(const struct pk_volume_meta *meta, struct pk_meta_tags *ret,
			  struct pk_error *err);

/*
 * Reads a volume's metadata from the tags (NULL-terminated) of LV lv.
 * PK_E_ILLEGAL when lv is not a UUID or a required tag is missing,
 * repeated or malformed, or the result fails pk_meta_volume_check.
 */
int pk_meta_volume_decode(const char *lv, char *const *tags, struct pk_volume_meta *ret,
			  struct pk_error *err);

/*
 * The one tag change that turns the tags LV lv has on storage (stored,
 * NULL-terminated, as reported) into the tags of next, with the generation
 * bumped: next->generation is ignored and the stored generation + 1 is
 * written (and returned in *ret_generation when non-NULL). ret_del and
 * ret_add hold only what differs (PK_GEN always does), for
 * pk_lvm_lv_tags_change; tags that are not poolkeeper's volume tags are
 * left alone. Fails like pk_meta_volume_decode for bad stored tags and with
 * PK_E_INVALID_ARGUMENT when next fails pk_meta_volume_check.
 */
int pk_meta_volume_diff(const char *lv, char *const *stored, const struct pk_volume_meta *next,
			struct pk_meta_tags *ret_add, struct pk_meta_tags *ret_del,
			uint64_t *ret_generation, struct pk_error *err);

/* The VG tags of a domain. version 0 means PK_META_DOMAIN_VERSION. */
int pk_meta_domain_encode(const struct pk_domain_meta *meta, struct pk_meta_tags *ret,
			  struct pk_error *err);

/*
 * Reads a domain from the tags of VG vg. PK_E_NOT_FOUND when the VG has
 * no PK_ROLE=DOMAIN tag (not a domain), PK_E_UNSUPPORTED for a version
 * newer than PK_META_DOMAIN_VERSION, PK_E_ILLEGAL for bad or missing tags.
 */
int pk_meta_domain_decode(const char *vg, char *const *tags, struct pk_domain_meta *ret,
			  struct pk_error *err);

/*
 * The escaping encode and decode apply to descriptions (exposed for tests
 * and tools; callers of encode/decode do not need it). Escapes text into
 * out (size > PK_META_DESC_MAX); INVALID_ARGUMENT when it does not fit.
 */
int pk_meta_desc_escape(const char *text, char *out, size_t size, struct pk_error *err);
/* Undoes pk_meta_desc_escape; -EINVAL for a malformed escape. */
int pk_meta_desc_unescape(const char *escaped, char *out, size_t size);

/* Stable names ("RAW", "LEAF", "ILLEGAL"...) and their parsers (-EINVAL). */
const char *pk_volume_format_name(enum pk_volume_format format);
const char *pk_volume_role_name(enum pk_volume_role role);
const char *pk_volume_legality_name(enum pk_volume_legality legality);
int pk_volume_format_parse(const char *name, enum pk_volume_format *ret);
int pk_volume_role_parse(const char *name, enum pk_volume_role *ret);
int pk_volume_legality_parse(const char *name, enum pk_volume_legality *ret);

#endif
