/*
 * The verbs of common/lvm.h on VGs and LVs: each checks its arguments
 * (common/lvm_text.h), builds one command line and runs it on the
 * instance of common/lvm.c (common/lvm_internal.h), parsing a report when
 * it asks for one.
 */
#include "common/lvm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lvm_internal.h"
#include "common/lvm_text.h"

static int vg_lv_check(const char *vg, const char *lv, struct pk_error *err)
{
	int r = pk_lvm_vg_name_check(vg, err);

	return r < 0 ? r : pk_lvm_lv_name_check(lv, err);
}

int pk_lvm_vg_create(struct pk_lvm *lvm, const char *vg, const char *const *pvs,
		     uint64_t extent_size, const char *const *tags, struct pk_error *err)
{
	struct pk_lvm_cmd c = { .write_vg = vg };
	int r;

	r = pk_lvm_vg_create_check((const char *const *)lvm->devices, vg, pvs, extent_size, tags,
				   err);
	if (r < 0) {
		return r;
	}
	pk_lvm_cmd_arg(&c, "vgcreate");
	pk_lvm_cmd_arg(&c, "-qq"); /* answers no: a foreign signature is never wiped */
	if (extent_size) {
		pk_lvm_cmd_arg(&c, "--physicalextentsize");
		pk_lvm_cmd_argf(&c, "%" PRIu64 "b", extent_size);
	}
	pk_lvm_cmd_tags(&c, "--addtag", tags);
	pk_lvm_cmd_arg(&c, vg);
	for (size_t i = 0; pvs[i]; i++) {
		pk_lvm_cmd_arg(&c, pvs[i]);
	}
	return pk_lvm_exec(lvm, &c, NULL, err, "vgcreate of '%s'", vg);
}

int pk_lvm_vg_report(struct pk_lvm *lvm, const char *vg, struct pk_lvm_vg *ret,
		     struct pk_error *err)
{
	struct pk_lvm_capture cap = { 0 };
	struct pk_lvm_cmd c = { 0 };
	int r;

	r = pk_lvm_vg_name_check(vg, err);
	if (r < 0) {
		return r;
	}
	pk_lvm_cmd_report(&c, "vgs", pk_lvm_report_vg_fields);
	pk_lvm_cmd_arg(&c, vg);
	r = pk_lvm_exec(lvm, &c, &cap, err, "report of volume group '%s'", vg);
	if (r == 0) {
		r = pk_lvm_report_vg_parse(cap.report.data ? cap.report.data : (char *)"", ret, err);
		if (r < 0) {
			pk_error_prefix(err, "report of volume group '%s'", vg);
		}
	}
	pk_lvm_capture_release(&cap);
	return r;
}

int pk_lvm_vg_remove(struct pk_lvm *lvm, const char *vg, bool force, struct pk_error *err)
{
	struct pk_lvm_lv_list lvs = { 0 };
	struct pk_lvm_cmd c = { .write_vg = vg };
	int r;

	r = pk_lvm_lv_report(lvm, vg, NULL, &lvs, err);
	if (r < 0) {
		return r;
	}
	if (lvs.count > 0 && !force) {
		r = pk_error_set(err, PK_E_IN_USE, EBUSY,
				 "volume group '%s' still has %zu logical volumes (e.g. '%s')", vg,
				 lvs.count, lvs.lvs[0].name);
		pk_lvm_lv_list_release(&lvs);
		return r;
	}
	pk_lvm_lv_list_release(&lvs);
	pk_lvm_cmd_arg(&c, "vgremove");
	pk_lvm_cmd_arg(&c, "-f");
	pk_lvm_cmd_arg(&c, vg);
	return pk_lvm_exec(lvm, &c, NULL, err, "vgremove of '%s'", vg);
}

int pk_lvm_vg_tags_change(struct pk_lvm *lvm, const char *vg, const char *const *add,
			  const char *const *del, struct pk_error *err)
{
	struct pk_lvm_cmd c = { .write_vg = vg };
	int r;

	if ((r = pk_lvm_vg_name_check(vg, err)) < 0 ||
	    (r = pk_lvm_tags_change_check(add, del, err)) < 0) {
		return r;
	}
	pk_lvm_cmd_arg(&c, "vgchange");
	pk_lvm_cmd_tags(&c, "--deltag", del);
	pk_lvm_cmd_tags(&c, "--addtag", add);
	pk_lvm_cmd_arg(&c, vg);
	return pk_lvm_exec(lvm, &c, NULL, err, "tag change of volume group '%s'", vg);
}

int pk_lvm_lv_create(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
		     const char *const *tags, struct pk_error *err)
{
	struct pk_lvm_cmd c = { .write_vg = vg };
	int r;

	if ((r = vg_lv_check(vg, lv, err)) < 0 ||
	    (r = pk_lvm_size_check("LV size", size, err)) < 0 ||
	    (r = pk_lvm_tags_check(tags, NULL, err)) < 0) {
		return r;
	}
	pk_lvm_cmd_arg(&c, "lvcreate");
	pk_lvm_cmd_arg(&c, "-qq");
	pk_lvm_cmd_arg(&c, "--type");
	pk_lvm_cmd_arg(&c, "linear");
	pk_lvm_cmd_arg(&c, "--activate");
	pk_lvm_cmd_arg(&c, "n");
	pk_lvm_cmd_arg(&c, "--zero");
	pk_lvm_cmd_arg(&c, "n");
	pk_lvm_cmd_arg(&c, "--wipesignatures");
	pk_lvm_cmd_arg(&c, "n");
	pk_lvm_cmd_arg(&c, "--size");
	pk_lvm_cmd_argf(&c, "%" PRIu64 "b", size);
	pk_lvm_cmd_arg(&c, "--name");
	pk_lvm_cmd_arg(&c, lv);
	pk_lvm_cmd_tags(&c, "--addtag", tags);
	pk_lvm_cmd_arg(&c, vg);
	return pk_lvm_exec(lvm, &c, NULL, err, "lvcreate of '%s/%s'", vg, lv);
}

int pk_lvm_lv_remove(struct pk_lvm *lvm, const char *vg, const char *lv, struct pk_error *err)
{
	struct pk_lvm_cmd c = { .write_vg = vg };
	int r;

	r = vg_lv_check(vg, lv, err);
	if (r < 0) {
		return r;
	}
	pk_lvm_cmd_arg(&c, "lvremove");
	pk_lvm_cmd_arg(&c, "-f");
	pk_lvm_cmd_argf(&c, "%s/%s", vg, lv);
	return pk_lvm_exec(lvm, &c, NULL, err, "lvremove of '%s/%s'", vg, lv);
}

/* lvextend / lvreduce (tool) to size bytes; the LV already at (or past, in
 * the direction asked) that size is success: LVM refuses a no-op resize. */
static int lv_resize(struct pk_lvm *lvm, const char *tool, const char *vg, const char *lv,
		     uint64_t size, const char *no_op_message, struct pk_error *err)
{
	struct pk_lvm_capture cap = { 0 };
	struct pk_lvm_cmd c = { .write_vg = vg };
	int r;

	if ((r = vg_lv_check(vg, lv, err)) < 0 ||
	    (r = pk_lvm_size_check("LV size", size, err)) < 0) {
		return r;
	}
	pk_lvm_cmd_arg(&c, tool);
	pk_lvm_cmd_arg(&c, "-qq");
	if (!strcmp(tool, "lvreduce")) {
		pk_lvm_cmd_arg(&c, "--force"); /* the caller knows nothing lives past size */
	}
	pk_lvm_cmd_arg(&c, "--size");
	pk_lvm_cmd_argf(&c, "%" PRIu64 "b", size);
	pk_lvm_cmd_argf(&c, "%s/%s", vg, lv);
	r = pk_lvm_exec(lvm, &c, &cap, err, "%s of '%s/%s' to %" PRIu64 " bytes", tool, vg, lv,
			size);
	if (r < 0 && cap.errors.len &&
	    (strstr(cap.errors.data, "matches existing size") ||
	     strstr(cap.errors.data, no_op_message))) {
		pk_error_clear(err);
		r = 0;
	}
	pk_lvm_capture_release(&cap);
	return r;
}

int pk_lvm_lv_extend(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
		     struct pk_error *err)
{
	return lv_resize(lvm, "lvextend", vg, lv, size, "not larger than existing size", err);
}

int pk_lvm_lv_reduce(struct pk_lvm *lvm, const char *vg, const char *lv, uint64_t size,
		     struct pk_error *err)
{
	return lv_resize(lvm, "lvreduce", vg, lv, size, "not smaller than existing size", err);
}

int pk_lvm_lv_tags_change(struct pk_lvm *lvm, const char *vg, const char *lv,
			  const char *const *add, const char *const *del, struct pk_error *err)
{
	struct pk_lvm_cmd c = { .write_vg = vg };
	int r;

	if ((r = vg_lv_check(vg, lv, err)) < 0 ||
	    (r = pk_lvm_tags_change_check(add, del, err)) < 0) {
		return r;
	}
	pk_lvm_cmd_arg(&c, "lvchange");
	pk_lvm_cmd_tags(&c, "--deltag", del);
	pk_lvm_cmd_tags(&c, "--addtag", add);
	pk_lvm_cmd_argf(&c, "%s/%s", vg, lv);
	return pk_lvm_exec(lvm, &c, NULL, err, "tag change of '%s/%s'", vg, lv);
}

int pk_lvm_lv_report(struct pk_lvm *lvm, const char *vg, const char *lv,
		     struct pk_lvm_lv_list *ret, struct pk_error *err)
{
	struct pk_lvm_capture cap = { 0 };
	struct pk_lvm_cmd c = { 0 };
	int r;

	r = lv ? vg_lv_check(vg, lv, err) : pk_lvm_vg_name_check(vg, err);
	if (r < 0) {
		return r;
	}
	pk_lvm_cmd_report(&c, "lvs", pk_lvm_report_lv_fields);
	pk_lvm_cmd_arg(&c, "--segments");
	if (lv) {
		pk_lvm_cmd_argf(&c, "%s/%s", vg, lv);
	} else {
		pk_lvm_cmd_arg(&c, vg);
	}
	r = pk_lvm_exec(lvm, &c, &cap, err, "report of %s '%s%s%s'", lv ? "LV" : "the LVs of", vg,
		     lv ? "/" : "", lv ? lv : "");
	if (r == 0) {
		r = pk_lvm_report_lvs_parse(cap.report.data ? cap.report.data : (char *)"", ret, err);
		if (r == 0 && lv && ret->count != 1) {
			size_t count = ret->count;

			pk_lvm_lv_list_release(ret);
			r = pk_error_set(err, PK_E_INTERNAL, EBADMSG,
					 "LVM reported %zu LVs instead of one", count);
		}
		if (r < 0) {
			pk_error_prefix(err, "report of '%s%s%s'", vg, lv ? "/" : "",
					lv ? lv : "");
		}
	}
	pk_lvm_capture_release(&cap);
	return r;
}

int pk_lvm_lv_activation(struct pk_lvm *lvm, const char *vg, const char *lv,
			 enum pk_lvm_activation op, struct pk_error *err)
{
	struct pk_lvm_cmd c = { 0 };
	int r;

	r = pk_lvm_activation_check(lvm->activation, vg, lv, op, err);
	if (r < 0) {
		return r;
	}
	pk_lvm_cmd_arg(&c, "lvchange");
	pk_lvm_cmd_arg(&c, "-qq");
	if (op == PK_LVM_REFRESH) {
		pk_lvm_cmd_arg(&c, "--refresh");
	} else {
		pk_lvm_cmd_arg(&c, "--activate");
		pk_lvm_cmd_arg(&c, op == PK_LVM_ACTIVATE ? "y" : "n");
	}
	pk_lvm_cmd_argf(&c, "%s/%s", vg, lv);
	return pk_lvm_exec(lvm, &c, NULL, err, "%s of '%s/%s'", pk_lvm_activation_name(op), vg,
			lv);
}
