/*
 * pk_storage — a host's way to the shared storage, as hsmd and spmd both
 * set it up: LVM (liblvm2cmd) limited to the host's storage devices, and
 * the LV activation backend named by the settings.
 *
 * Call before other threads start (pk_lvm_new's rule). On success the
 * caller owns *ret_lvm and *ret_act: free the activation first
 * (pk_activation_free), then LVM (pk_lvm_free). On failure nothing is
 * left to free.
 */
#ifndef PK_STORAGE_H
#define PK_STORAGE_H

#include "common/activation.h"
#include "common/error.h"
#include "common/lvm.h"

struct pk_storage_config {
	const char *devices;    /* setting lvm_devices: comma-separated PV paths */
	const char *activation; /* setting activation: "dm" or "lab" */
	const char *lvmap_dir;  /* setting lvmap_dir (lab) */
	const char *conf_dir;   /* the daemon's own directory for its lvm.conf */
};

int pk_storage_open(const struct pk_storage_config *cfg, struct pk_lvm **ret_lvm,
		    struct pk_activation **ret_act, struct pk_error *err);

#endif
