/*
 * struct spm — the state of one spmd: settings, identity and the
 * subsystems (domain, volumes, lease, locks, tasks) as they are added. Created once by
 * main(); every verb receives it.
 */
#ifndef SPM_SPM_H
#define SPM_SPM_H

#include "common/config.h"
#include "common/error.h"
#include "proto/codec.h"

struct spm {
	const struct pk_config *cfg; /* owned by main */
	struct pk_daemon_info info;
};

int spm_init(struct spm *hsm, const struct pk_config *cfg, struct pk_error *err);
void spm_release(struct spm *hsm);

/* The verb table of spmd (spm/rpc.c). */
extern const struct pk_verb spm_verbs[];
extern const size_t spm_nverbs;

#endif
