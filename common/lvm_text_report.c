#include "common/lvm_text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/strv.h"
#include "common/xalloc.h"

#define REPORT_FIELDS_MAX 24

/* ---- report rows -------------------------------------------------------- */

struct report_field {
	const char *key; /* without the LVM2_ prefix, e.g. "LV_NAME" */
	const char *value;
};

struct report_row {
	struct report_field fields[REPORT_FIELDS_MAX];
	size_t n;
};

/*
 * Splits one row, `LVM2_A='x' LVM2_B='y'`, in place. Values are names,
 * numbers, tags and device paths, none of which can hold a quote, so a
 * value ends at the quote before " LVM2_" or at the end of the line.
 */
static int row_parse(char *line, struct report_row *row, struct pk_error *err)
{
	char *p = line;

	row->n = 0;
	while (*p == ' ') {
		p++;
	}
	while (*p) {
		char *key, *eq, *value, *end;

		if (strncmp(p, "LVM2_", 5) != 0) {
			return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
					    "unexpected LVM report text '%.60s'", p);
		}
		key = p + 5;
		eq = strchr(key, '=');
		if (!eq || eq[1] != '\'') {
			return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
					    "malformed LVM report field '%.60s'", p);
		}
		*eq = '\0';
		value = eq + 2;
		end = strstr(value, "' LVM2_");
		if (end) {
			*end = '\0';
			p = end + 2;
		} else {
			size_t n = strlen(value);

			if (n == 0 || value[n - 1] != '\'') {
				return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
						    "LVM report field %s is not terminated", key);
			}
			value[n - 1] = '\0';
			p = value + n;
		}
		if (row->n == REPORT_FIELDS_MAX) {
			return pk_error_set(err, PK_E_INTERNAL, E2BIG,
					    "LVM report row has more than %d fields",
					    REPORT_FIELDS_MAX);
		}
		row->fields[row->n].key = key;
		row->fields[row->n].value = value;
		row->n++;
	}
	return 0;
}

static int row_get(const struct report_row *row, const char *key, const char **ret,
		   struct pk_error *err)
{
	for (size_t i = 0; i < row->n; i++) {
		if (strcmp(row->fields[i].key, key) == 0) {
			*ret = row->fields[i].value;
			return 0;
		}
	}
	*ret = NULL;
	pk_error_set(err, PK_E_INTERNAL, EBADMSG, "LVM report row lacks field %s", key);
	return -EBADMSG;
}

static int row_u64(const struct report_row *row, const char *key, uint64_t *ret,
		   struct pk_error *err)
{
	const char *v;
	int r = row_get(row, key, &v, err);

	if (r < 0) {
		return r;
	}
	if (pk_parse_u64(v, ret) < 0) {
		pk_error_set(err, PK_E_INTERNAL, EBADMSG,
			     "LVM report field %s='%.40s' is not a number", key, v);
		return -EBADMSG;
	}
	return 0;
}

static int row_str(const struct report_row *row, const char *key, char *out, size_t size,
		   struct pk_error *err)
{
	const char *v;
	int r = row_get(row, key, &v, err);
	size_t n;

	if (r < 0) {
		return r;
	}
	n = strlen(v);
	if (n >= size) {
		return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
				    "LVM report field %s='%.40s...' is too long", key, v);
	}
	memcpy(out, v, n + 1);
	return 0;
}

/* Splits LVM's comma-separated tag list into a NULL-terminated heap list
 * (never NULL: an empty list is an array holding only the NULL). */
static char **tags_split(const char *s, size_t *ret_n)
{
	struct pk_strv tags = PK_STRV_INIT;

	while (*s) {
		size_t len = strcspn(s, ",");

		if (len > 0) {
			char *tag = pk_xmalloc(len + 1);

			memcpy(tag, s, len);
			tag[len] = '\0';
			pk_strv_push_take(&tags, tag);
		}
		s += len;
		if (*s == ',') {
			s++;
		}
	}
	if (!tags.v) {
		*ret_n = 0;
		return pk_xcalloc(1, sizeof(char *));
	}
	return pk_strv_steal(&tags, ret_n);
}

static int row_tags(const struct report_row *row, const char *key, char ***ret,
		    size_t *ret_n, struct pk_error *err)
{
	const char *v;
	int r = row_get(row, key, &v, err);

	if (r < 0) {
		return r;
	}
	*ret = tags_split(v, ret_n);
	return 0;
}

/* The next line of a report, NUL-terminated in place; NULL at the end. */
static char *next_line(char **cursor)
{
	char *line = *cursor;
	char *nl;

	if (!line || !*line) {
		return NULL;
	}
	nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		*cursor = nl + 1;
	} else {
		*cursor = line + strlen(line);
	}
	return line;
}

/* ---- VG report ---------------------------------------------------------- */

const char pk_lvm_report_vg_fields[] = "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,"
				       "vg_extent_count,vg_free_count,vg_tags,pv_name,"
				       "pv_size,pv_free,pe_start";

static int vg_first_row(const struct report_row *row, struct pk_lvm_vg *vg,
			struct pk_error *err)
{
	int r;

	if ((r = row_str(row, "VG_NAME", vg->name, sizeof(vg->name), err)) < 0 ||
	    (r = row_str(row, "VG_UUID", vg->uuid, sizeof(vg->uuid), err)) < 0 ||
	    (r = row_u64(row, "VG_SIZE", &vg->size, err)) < 0 ||
	    (r = row_u64(row, "VG_FREE", &vg->free, err)) < 0 ||
	    (r = row_u64(row, "VG_EXTENT_SIZE", &vg->extent_size, err)) < 0 ||
	    (r = row_u64(row, "VG_EXTENT_COUNT", &vg->extent_count, err)) < 0 ||
	    (r = row_u64(row, "VG_FREE_COUNT", &vg->free_count, err)) < 0 ||
	    (r = row_tags(row, "VG_TAGS", &vg->tags, &vg->ntags, err)) < 0) {
		return r;
	}
	if (vg->extent_size == 0 || vg->extent_size % 512 != 0) {
		return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
				    "VG '%s' reports extent size %" PRIu64, vg->name,
				    vg->extent_size);
	}
	return 0;
}

static int vg_pv_row(const struct report_row *row, struct pk_lvm_vg *vg, struct pk_error *err)
{
	struct pk_lvm_pv pv = { 0 };
	char name[PK_LVM_NAME_MAX];
	int r;

	if ((r = row_str(row, "VG_NAME", name, sizeof(name), err)) < 0 ||
	    (r = row_str(row, "PV_NAME", pv.name, sizeof(pv.name), err)) < 0 ||
	    (r = row_u64(row, "PV_SIZE", &pv.size, err)) < 0 ||
	    (r = row_u64(row, "PV_FREE", &pv.free, err)) < 0 ||
	    (r = row_u64(row, "PE_START", &pv.pe_start, err)) < 0) {
		return r;
	}
	if (strcmp(name, vg->name) != 0) {
		return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
				    "LVM report of VG '%s' has a row of VG '%s'", vg->name, name);
	}
	vg->pvs = pk_xgrow(vg->pvs, NULL, vg->npvs + 1, sizeof(*vg->pvs));
	vg->pvs[vg->npvs++] = pv;
	return 0;
}

int pk_lvm_report_vg_parse(char *text, struct pk_lvm_vg *ret, struct pk_error *err)
{
	struct pk_lvm_vg vg = { 0 };
	struct report_row row;
	char *cursor = text;
	char *line;
	int r;

	while ((line = next_line(&cursor)) != NULL) {
		r = row_parse(line, &row, err);
		if (r == 0 && vg.npvs == 0) {
			r = vg_first_row(&row, &vg, err);
		}
		if (r == 0) {
			r = vg_pv_row(&row, &vg, err);
		}
		if (r < 0) {
			pk_lvm_vg_release(&vg);
			return r;
		}
	}
	if (vg.npvs == 0) {
		pk_lvm_vg_release(&vg);
		return pk_error_set(err, PK_E_INTERNAL, EBADMSG, "LVM VG report has no rows");
	}
	*ret = vg;
	return 0;
}

/* ---- LV report ---------------------------------------------------------- */

const char pk_lvm_report_lv_fields[] = "lv_name,lv_uuid,lv_size,lv_tags,vg_extent_size,"
				       "segtype,stripes,seg_start_pe,seg_size_pe,devices";

/* Parses the devices field of a one-stripe segment: "<path>(<extent>)". */
static int devices_parse(const char *lv, const char *devices, struct pk_lvm_segment *seg,
			 struct pk_error *err)
{
	const char *open = strrchr(devices, '(');
	size_t n = strlen(devices);
	size_t pvlen, numlen;
	char num[24];

	if (!open || open == devices || devices[n - 1] != ')') {
		goto bad;
	}
	pvlen = (size_t)(open - devices);
	numlen = n - pvlen - 2;
	if (pvlen >= sizeof(seg->pv) || numlen == 0 || numlen >= sizeof(num)) {
		goto bad;
	}
	memcpy(num, open + 1, numlen);
	num[numlen] = '\0';
	if (pk_parse_u64(num, &seg->pv_start_extent) < 0) {
		goto bad;
	}
	memcpy(seg->pv, devices, pvlen);
	seg->pv[pvlen] = '\0';
	return 0;
bad:
	return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
			    "LV '%s': segment devices '%.60s' is not '<pv>(<extent>)'", lv,
			    devices);
}

static int lv_segment_add(struct pk_lvm_lv *lv, const struct report_row *row,
			  struct pk_error *err)
{
	struct pk_lvm_segment seg = { 0 };
	const char *segtype, *devices;
	uint64_t stripes;
	int r;

	if ((r = row_get(row, "SEGTYPE", &segtype, err)) < 0 ||
	    (r = row_u64(row, "STRIPES", &stripes, err)) < 0 ||
	    (r = row_u64(row, "SEG_START_PE", &seg.start_extent, err)) < 0 ||
	    (r = row_u64(row, "SEG_SIZE_PE", &seg.extent_count, err)) < 0 ||
	    (r = row_get(row, "DEVICES", &devices, err)) < 0) {
		return r;
	}
	if (!lv->linear) {
		return 0;
	}
	if (stripes != 1 || (strcmp(segtype, "linear") != 0 && strcmp(segtype, "striped") != 0)) {
		lv->linear = false;
		free(lv->segments);
		lv->segments = NULL;
		lv->nsegments = 0;
		return 0;
	}
	r = devices_parse(lv->name, devices, &seg, err);
	if (r < 0) {
		return r;
	}
	lv->segments = pk_xgrow(lv->segments, NULL, lv->nsegments + 1, sizeof(seg));
	lv->segments[lv->nsegments++] = seg;
	return 0;
}

static int lv_segments_check(const struct pk_lvm_lv *lv, uint64_t extent_size,
			     struct pk_error *err)
{
	uint64_t next = 0;

	if (!lv->linear) {
		return 0;
	}
	for (size_t i = 0; i < lv->nsegments; i++) {
		if (lv->segments[i].start_extent != next || lv->segments[i].extent_count == 0) {
			return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
					    "LV '%s': segment %zu starts at extent %" PRIu64
					    ", expected %" PRIu64,
					    lv->name, i, lv->segments[i].start_extent, next);
		}
		next += lv->segments[i].extent_count;
	}
	if (next * extent_size != lv->size) {
		return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
				    "LV '%s': segments cover %" PRIu64 " extents of %" PRIu64
				    " bytes, but the LV has %" PRIu64 " bytes",
				    lv->name, next, extent_size, lv->size);
	}
	return 0;
}

/* Starts a new LV from the first row of its segments. */
static int lv_first_row(struct pk_lvm_lv_list *list, const struct report_row *row,
			const char *name, struct pk_error *err)
{
	struct pk_lvm_lv *lv;
	int r;

	if (pk_lvm_lv_list_find(list, name)) {
		return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
				    "LVM report lists the segments of LV '%s' apart", name);
	}
	list->lvs = pk_xgrow(list->lvs, NULL, list->count + 1, sizeof(*list->lvs));
	lv = &list->lvs[list->count++];
	memset(lv, 0, sizeof(*lv));
	lv->linear = true;
	if ((r = row_str(row, "LV_NAME", lv->name, sizeof(lv->name), err)) < 0 ||
	    (r = row_str(row, "LV_UUID", lv->uuid, sizeof(lv->uuid), err)) < 0 ||
	    (r = row_u64(row, "LV_SIZE", &lv->size, err)) < 0 ||
	    (r = row_tags(row, "LV_TAGS", &lv->tags, &lv->ntags, err)) < 0) {
		return r;
	}
	return 0;
}

static int lvs_row(struct pk_lvm_lv_list *list, const struct report_row *row,
		   struct pk_error *err)
{
	struct pk_lvm_lv *last = list->count ? &list->lvs[list->count - 1] : NULL;
	uint64_t extent_size;
	const char *name;
	int r;

	if ((r = row_get(row, "LV_NAME", &name, err)) < 0 ||
	    (r = row_u64(row, "VG_EXTENT_SIZE", &extent_size, err)) < 0) {
		return r;
	}
	if (extent_size == 0 || extent_size % 512 != 0 ||
	    (list->extent_size && extent_size != list->extent_size)) {
		return pk_error_set(err, PK_E_INTERNAL, EBADMSG,
				    "LVM report has extent size %" PRIu64 " (LV '%s')",
				    extent_size, name);
	}
	list->extent_size = extent_size;
	if (!last || strcmp(last->name, name) != 0) {
		r = lv_first_row(list, row, name, err);
		if (r < 0) {
			return r;
		}
		last = &list->lvs[list->count - 1];
	}
	return lv_segment_add(last, row, err);
}

int pk_lvm_report_lvs_parse(char *text, struct pk_lvm_lv_list *ret, struct pk_error *err)
{
	struct pk_lvm_lv_list list = { 0 };
	struct report_row row;
	char *cursor = text;
	char *line;
	int r = 0;

	while (r == 0 && (line = next_line(&cursor)) != NULL) {
		r = row_parse(line, &row, err);
		if (r == 0) {
			r = lvs_row(&list, &row, err);
		}
	}
	for (size_t i = 0; r == 0 && i < list.count; i++) {
		r = lv_segments_check(&list.lvs[i], list.extent_size, err);
	}
	if (r < 0) {
		pk_lvm_lv_list_release(&list);
		return r;
	}
	*ret = list;
	return 0;
}
