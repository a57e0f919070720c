/*
 * struct hsm — the state of one hsmd: settings, identity and the
 * subsystems (images, VMs, merge jobs) as they are added. Created once by
 * main(); every verb receives it.
 */
#ifndef HSM_HSM_H
#define HSM_HSM_H

#include "common/config.h"
#include "common/error.h"
#include "proto/codec.h"

struct hsm {
	const struct pk_config *cfg; /* owned by main */
	struct pk_daemon_info info;
};

int hsm_init(struct hsm *hsm, const struct pk_config *cfg, struct pk_error *err);
void hsm_release(struct hsm *hsm);

/* The verb table of hsmd (hsm/rpc.c). */
extern const struct pk_verb hsm_verbs[];
extern const size_t hsm_nverbs;

#endif
