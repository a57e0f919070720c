/*
 * The lab activation backend: LVs served by pk-lvmapd (common/lvmap.h) on
 * hosts whose kernel has no device-mapper. The table of an LV is built from
 * LVM metadata (one VG report for the PVs' pe_start, one LV report for the
 * segments) and loaded with one write(2) to <lvmap_dir>/.control.
 */
#include "common/activation.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/lvm_text.h"

#define SECTOR PK_LVMAP_SECTOR

static const struct pk_lvm_pv *vg_pv(const struct pk_lvm_vg *vg, const char *name)
{
	for (size_t i = 0; i < vg->npvs; i++) {
		if (strcmp(vg->pvs[i].name, name) == 0) {
			return &vg->pvs[i];
		}
	}
	return NULL;
}

/* Sector numbers of one segment on its PV; false when they do not fit. */
static bool segment_sectors(const struct pk_lvm_segment *seg, uint64_t pe_start,
			    uint64_t extent_size, uint64_t *ret_count, uint64_t *ret_offset)
{
	uint64_t bytes, offset;

	if (__builtin_mul_overflow(seg->extent_count, extent_size, &bytes) ||
	    __builtin_mul_overflow(seg->pv_start_extent, extent_size, &offset) ||
	    __builtin_add_overflow(offset, pe_start, &offset)) {
		return false;
	}
	*ret_count = bytes / SECTOR;
	*ret_offset = offset / SECTOR;
	return true;
}

int pk_activation_lab_table(const struct pk_lvm_vg *vg, const struct pk_lvm_lv *lv,
			    uint64_t extent_size, struct pk_lvmap_table *ret,
			    struct pk_error *err)
{
	struct pk_lvmap_table t = { 0 };
	int r;

	if (!lv->linear) {
		return pk_error_set(err, PK_E_UNSUPPORTED, EOPNOTSUPP,
				    "LV '%s/%s' is not linear; the lab mapper maps linear LVs "
				    "only",
				    vg->name, lv->name);
	}
	if (!pk_lvmap_name_valid(vg->name) || !pk_lvmap_name_valid(lv->name)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "'%s/%s' is not a name pk-lvmapd accepts", vg->name, lv->name);
	}
	if (extent_size == 0 || extent_size % SECTOR != 0 || lv->nsegments == 0) {
		return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
				    "LV '%s/%s': extent size %" PRIu64 " and %zu segments "
				    "cannot be mapped",
				    vg->name, lv->name, extent_size, lv->nsegments);
	}
	memcpy(t.vg, vg->name, strlen(vg->name) + 1);
	memcpy(t.lv, lv->name, strlen(lv->name) + 1);
	for (size_t i = 0; i < lv->nsegments; i++) {
		const struct pk_lvm_segment *seg = &lv->segments[i];
		const struct pk_lvm_pv *pv = vg_pv(vg, seg->pv);
		uint64_t count, offset;

		if (!pv) {
			r = pk_error_set(err, PK_E_ILLEGAL, ENODEV,
					 "LV '%s/%s': segment %zu lies on '%s', which is not a "
					 "PV of the VG as reported",
					 vg->name, lv->name, i, seg->pv);
			goto fail;
		}
		if (pv->pe_start % SECTOR != 0 ||
		    !segment_sectors(seg, pv->pe_start, extent_size, &count, &offset)) {
			r = pk_error_set(err, PK_E_ILLEGAL, EOVERFLOW,
					 "LV '%s/%s': segment %zu (%" PRIu64 " extents at %" PRIu64
					 " on '%s', pe_start %" PRIu64 ") cannot be mapped",
					 vg->name, lv->name, i, seg->extent_count,
					 seg->pv_start_extent, seg->pv, pv->pe_start);
			goto fail;
		}
		r = pk_lvmap_table_add(&t, count, seg->pv, offset, err);
		if (r < 0) {
			pk_error_prefix(err, "LV '%s/%s'", vg->name, lv->name);
			goto fail;
		}
	}
	*ret = t;
	return 0;
fail:
	pk_lvmap_table_release(&t);
	return r;
}

/* Sends one command to pk-lvmapd. A refusal with the errno `tolerated` (0:
 * none) is success with *ret_tolerated set (the caller decides). */
static int lab_send(const struct pk_activation_ctx *ctx, const char *cmd, const char *what,
		    int tolerated, bool *ret_tolerated, struct pk_error *err)
{
	size_t len = strlen(cmd);
	char path[PATH_MAX];
	ssize_t n;
	int fd, e;

	if (snprintf(path, sizeof(path), "%s/.control", ctx->lvmap_dir) >= (int)sizeof(path)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "lvmap_dir '%s' is too long", ctx->lvmap_dir);
	}
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		return pk_error_set(err, PK_E_UNAVAILABLE, e,
				    "%s: pk-lvmapd is not serving '%s' (open of %s: %s)", what,
				    ctx->lvmap_dir, path, strerror(e));
	}
	n = write(fd, cmd, len);
	e = errno;
	close(fd);
	if (n == (ssize_t)len) {
		return 0;
	}
	if (n >= 0) {
		return pk_error_set(err, PK_E_INTERNAL, EIO,
				    "%s: pk-lvmapd took %zd of %zu bytes of the command", what, n,
				    len);
	}
	if (tolerated && e == tolerated) {
		*ret_tolerated = true;
		return 0;
	}
	switch (e) {
	case EBUSY:
		return pk_error_set(err, PK_E_IN_USE, e, "%s: the LV is open on this host", what);
	case ENOTCONN:
	case ECONNABORTED:
	case ENODEV:
		return pk_error_set(err, PK_E_UNAVAILABLE, e, "%s: pk-lvmapd at '%s' is gone: %s",
				    what, ctx->lvmap_dir, strerror(e));
	default:
		return pk_error_set(err, PK_E_INTERNAL, e,
				    "%s: pk-lvmapd refused the command: %s (its log has the "
				    "reason)",
				    what, strerror(e));
	}
}

static int lab_load(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
		    struct pk_error *err)
{
	struct pk_lvm_lv_list lvs = { 0 };
	struct pk_lvmap_table table = { 0 };
	struct pk_lvm_vg vgr = { 0 };
	char what[2 * PK_LVM_NAME_MAX + 32];
	char *cmd = NULL;
	int r;

	if ((r = pk_lvm_lv_report(ctx->lvm, vg, lv, &lvs, err)) < 0 ||
	    (r = pk_lvm_vg_report(ctx->lvm, vg, &vgr, err)) < 0 ||
	    (r = pk_activation_lab_table(&vgr, &lvs.lvs[0], lvs.extent_size, &table, err)) < 0 ||
	    (r = pk_lvmap_command_format(PK_LVMAP_LOAD, &table, &cmd, err)) < 0) {
		goto out;
	}
	snprintf(what, sizeof(what), "load of '%s/%s' into pk-lvmapd", vg, lv);
	r = lab_send(ctx, cmd, what, 0, NULL, err);
out:
	free(cmd);
	pk_lvmap_table_release(&table);
	pk_lvm_vg_release(&vgr);
	pk_lvm_lv_list_release(&lvs);
	return r;
}

static int lab_names_check(const char *vg, const char *lv, struct pk_error *err)
{
	int r;

	if ((r = pk_lvm_vg_name_check(vg, err)) < 0 || (r = pk_lvm_lv_name_check(lv, err)) < 0) {
		return r;
	}
	if (!pk_lvmap_name_valid(vg) || !pk_lvmap_name_valid(lv)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "'%s/%s' is not a name pk-lvmapd accepts", vg, lv);
	}
	return 0;
}

static int lab_deactivate(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
			  struct pk_error *err)
{
	struct pk_lvmap_table table = { 0 };
	char what[2 * PK_LVM_NAME_MAX + 32];
	char *cmd = NULL;
	bool not_loaded = false;
	int r;

	r = lab_names_check(vg, lv, err);
	if (r < 0) {
		return r;
	}
	memcpy(table.vg, vg, strlen(vg) + 1);
	memcpy(table.lv, lv, strlen(lv) + 1);
	r = pk_lvmap_command_format(PK_LVMAP_REMOVE, &table, &cmd, err);
	if (r < 0) {
		return r;
	}
	snprintf(what, sizeof(what), "removal of '%s/%s' from pk-lvmapd", vg, lv);
	/* ENOENT: not loaded, so already inactive. */
	r = lab_send(ctx, cmd, what, ENOENT, &not_loaded, err);
	free(cmd);
	return r;
}

static int lab_path(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
		    char *buf, size_t size, struct pk_error *err)
{
	int r, n;

	r = lab_names_check(vg, lv, err);
	if (r < 0) {
		return r;
	}
	n = snprintf(buf, size, "%s/%s/%s", ctx->lvmap_dir, vg, lv);
	if (n < 0 || (size_t)n >= size) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "path of '%s/%s' under '%s' does not fit %zu bytes", vg, lv,
				    ctx->lvmap_dir, size);
	}
	return 0;
}

/* Activation and refresh are the same load: the table is rebuilt from the
 * metadata as it is now, and pk-lvmapd replaces an existing one. */
const struct pk_activation_ops pk_activation_lab_ops = {
	.activate = lab_load,
	.refresh = lab_load,
	.deactivate = lab_deactivate,
	.path = lab_path,
};
