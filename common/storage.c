#include "common/storage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/statefile.h"
#include "common/xalloc.h"

#define STORAGE_DEVICES_MAX 64

int pk_storage_open(const struct pk_storage_config *cfg, struct pk_lvm **ret_lvm,
		    struct pk_activation **ret_act, struct pk_error *err)
{
	struct pk_lvm_config lc = { 0 };
	struct pk_activation_config ac = { 0 };
	const char *list[STORAGE_DEVICES_MAX + 1];
	struct pk_lvm *lvm = NULL;
	char *copy, *save = NULL;
	size_t n = 0;
	int r;

	if (!cfg->devices || !*cfg->devices) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "setting 'lvm_devices' is required: the PV device paths of the "
				    "storage domains this host uses");
	}
	r = pk_activation_kind_parse(cfg->activation, &ac.kind, err);
	if (r < 0) {
		return r;
	}
	ac.lvmap_dir = cfg->lvmap_dir;
	copy = pk_xstrdup(cfg->devices);
	for (char *d = strtok_r(copy, ",", &save); d && n < STORAGE_DEVICES_MAX;
	     d = strtok_r(NULL, ",", &save)) {
		list[n++] = d;
	}
	list[n] = NULL;
	lc.devices = list;
	lc.activation = ac.kind == PK_ACTIVATION_DM;
	lc.conf_dir = cfg->conf_dir;
	r = pk_statefile_mkdir(cfg->conf_dir, err);
	if (r == 0) {
		r = pk_lvm_new(&lc, &lvm, err);
	}
	free(copy);
	if (r == 0) {
		r = pk_activation_new(&ac, lvm, ret_act, err);
		if (r < 0) {
			pk_lvm_free(lvm);
			lvm = NULL;
		}
	}
	if (r == 0) {
		*ret_lvm = lvm;
	}
	return r;
}
