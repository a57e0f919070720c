/*
 * The device-mapper activation backend: LVM activates, refreshes and
 * deactivates the LV on this host, udev or LVM itself makes /dev/<vg>/<lv>.
 */
#include "common/activation.h"

#include <errno.h>
#include <stdio.h>

#include "common/lvm_text.h"

static int dm_activate(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
		       struct pk_error *err)
{
	return pk_lvm_lv_activation(ctx->lvm, vg, lv, PK_LVM_ACTIVATE, err);
}

static int dm_refresh(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
		      struct pk_error *err)
{
	return pk_lvm_lv_activation(ctx->lvm, vg, lv, PK_LVM_REFRESH, err);
}

static int dm_deactivate(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
			 struct pk_error *err)
{
	return pk_lvm_lv_activation(ctx->lvm, vg, lv, PK_LVM_DEACTIVATE, err);
}

static int dm_path(const struct pk_activation_ctx *ctx, const char *vg, const char *lv,
		   char *buf, size_t size, struct pk_error *err)
{
	int r, n;

	(void)ctx;
	if ((r = pk_lvm_vg_name_check(vg, err)) < 0 || (r = pk_lvm_lv_name_check(lv, err)) < 0) {
		return r;
	}
	n = snprintf(buf, size, "/dev/%s/%s", vg, lv);
	if (n < 0 || (size_t)n >= size) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "path of '%s/%s' does not fit %zu bytes", vg, lv, size);
	}
	return 0;
}

const struct pk_activation_ops pk_activation_dm_ops = {
	.activate = dm_activate,
	.refresh = dm_refresh,
	.deactivate = dm_deactivate,
	.path = dm_path,
};
