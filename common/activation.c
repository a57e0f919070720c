#include "common/activation.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

struct pk_activation {
	enum pk_activation_kind kind;
	const struct pk_activation_ops *ops;
	struct pk_activation_ctx ctx; /* ctx.lvmap_dir owned here */
};

static const struct {
	const char *name;
	const struct pk_activation_ops *ops;
} backends[] = {
	[PK_ACTIVATION_DM] = { "dm", &pk_activation_dm_ops },
	[PK_ACTIVATION_LAB] = { "lab", &pk_activation_lab_ops },
};

#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

int pk_activation_kind_parse(const char *name, enum pk_activation_kind *ret,
			     struct pk_error *err)
{
	for (size_t i = 1; name && i < NBACKENDS; i++) {
		if (strcmp(backends[i].name, name) == 0) {
			*ret = (enum pk_activation_kind)i;
			return 0;
		}
	}
	return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
			    "activation '%.32s' is not 'dm' (device-mapper) or 'lab' "
			    "(pk-lvmapd)",
			    name ? name : "");
}

const char *pk_activation_kind_name(enum pk_activation_kind kind)
{
	if ((size_t)kind == 0 || (size_t)kind >= NBACKENDS) {
		return "unknown";
	}
	return backends[kind].name;
}

int pk_activation_new(const struct pk_activation_config *config, struct pk_lvm *lvm,
		      struct pk_activation **ret, struct pk_error *err)
{
	struct pk_activation *act;

	if ((size_t)config->kind == 0 || (size_t)config->kind >= NBACKENDS) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "unknown activation backend %d", (int)config->kind);
	}
	if (config->kind == PK_ACTIVATION_LAB &&
	    (!config->lvmap_dir || config->lvmap_dir[0] != '/')) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "lab activation needs lvmap_dir, the absolute path where "
				    "pk-lvmapd is mounted");
	}
	act = pk_xcalloc(1, sizeof(*act));
	act->kind = config->kind;
	act->ops = backends[config->kind].ops;
	act->ctx.lvm = lvm;
	act->ctx.lvmap_dir = config->lvmap_dir ? pk_xstrdup(config->lvmap_dir) : NULL;
	*ret = act;
	return 0;
}

void pk_activation_free(struct pk_activation *act)
{
	if (!act) {
		return;
	}
	free((char *)act->ctx.lvmap_dir);
	free(act);
}

enum pk_activation_kind pk_activation_kind(const struct pk_activation *act)
{
	return act->kind;
}

int pk_activation_activate(struct pk_activation *act, const char *vg, const char *lv,
			   struct pk_error *err)
{
	return act->ops->activate(&act->ctx, vg, lv, err);
}

int pk_activation_refresh(struct pk_activation *act, const char *vg, const char *lv,
			  struct pk_error *err)
{
	return act->ops->refresh(&act->ctx, vg, lv, err);
}

int pk_activation_deactivate(struct pk_activation *act, const char *vg, const char *lv,
			     struct pk_error *err)
{
	return act->ops->deactivate(&act->ctx, vg, lv, err);
}

int pk_activation_path(const struct pk_activation *act, const char *vg, const char *lv,
		       char *buf, size_t size, struct pk_error *err)
{
	return act->ops->path(&act->ctx, vg, lv, buf, size, err);
}
