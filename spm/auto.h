/*
 * spm_auto — SPM election without an operator (setting spm_auto, off by
 * default). While no spmd of the domain holds the SPM lease, every spmd
 * with spm_auto contends for it: every spm_auto_interval_ms it asks for the
 * lease (spm_role_start) when its role is FREE or OTHER. sanlock grants the
 * lease to one of them, so two SPMs never exist; the others stay OTHER and
 * keep asking, cheaply (the lockspace stays joined, a held lease is
 * refused at once).
 *
 * What that repairs: the SPM's spmd dying (sanlock frees the lease of a
 * dead process at once: another host takes it within one interval plus
 * the acquire), and the SPM's host dying (the lease frees when the host's
 * lockspace expires, the sanlock floor; then within one interval).
 *
 * An operator's SpmStop on this host holds this host back for
 * SPM_AUTO_HOLD_MS, so the lease moves to another host instead of coming
 * straight back.
 *
 * One thread; spm_auto_stop joins it (before spm_role_shutdown).
 */
#ifndef SPM_AUTO_H
#define SPM_AUTO_H

#include "common/error.h"

struct spm;
struct spm_auto;

#define SPM_AUTO_HOLD_MS 10000

/* Starts contending for spm's domain (the setting `domain`, or the one it
 * learns) every interval_ms. */
int spm_auto_start(struct spm *spm, unsigned interval_ms, struct spm_auto **ret,
		   struct pk_error *err);

/* Stops and frees. NULL-safe. */
void spm_auto_stop(struct spm_auto *a);

#endif
