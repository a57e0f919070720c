/*
 * Thin provisioning policy (pure arithmetic, no I/O, no locks).
 *
 * A COW volume on a block domain is an LV smaller than what qcow2 may need
 * for its capacity. hsmd arms a block threshold at
 *   threshold = lv_size - free_trigger
 * and, when the guest's allocation reaches it, asks the SPM for a bigger LV:
 *   new_size = lv_size + chunk (more when the allocation already ran past),
 * rounded up to the VG's extent size and never past max_size, the fully
 * allocated qcow2 size of the capacity (`qemu-img measure`).
 *
 * Every size is in bytes. Functions are thread-safe (no state).
 */
#ifndef HSM_THINP_POLICY_H
#define HSM_THINP_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#define HSM_THINP_MIB (UINT64_C(1) << 20)

/* Defaults a cluster administrator would accept (docs/THIN.md). */
#define HSM_THINP_DEFAULT_CHUNK_MB 1024
#define HSM_THINP_DEFAULT_FREE_PCT 50
#define HSM_THINP_DEFAULT_CHECK_SECONDS 10
#define HSM_THINP_DEFAULT_WORKERS 4
#define HSM_THINP_DEFAULT_RETRY_MAX_MS 1000

struct hsm_thinp_policy {
	bool monitor;		/* thin_monitor */
	uint64_t chunk;		/* thin_chunk_mb, bytes added per extension */
	uint64_t free_mb;	/* thin_free_mb; 0: use free_pct */
	unsigned free_pct;	/* thin_free_pct, % of a chunk */
	unsigned check_seconds; /* thin_check_seconds, backstop period */
	unsigned workers;	/* thin_workers */
	unsigned retry_max_ms;	/* thin_retry_max_ms, backoff ceiling */
};

/* Fill *p with the defaults. */
void hsm_thinp_policy_init(struct hsm_thinp_policy *p);

/* 0, or -EINVAL with nothing changed when a setting is out of range:
 * chunk 0, free_pct over 100, free space not below the chunk, no worker. */
int hsm_thinp_policy_check(const struct hsm_thinp_policy *p);

/* Free space (bytes) whose crossing triggers an extension. */
uint64_t hsm_thinp_free_trigger(const struct hsm_thinp_policy *p);

/* Threshold to arm on an LV of lv_size bytes; 0 means "extend now" (the LV
 * is already smaller than the free-space trigger). No threshold is needed
 * once lv_size >= max_size: then *ret_armed is false. */
uint64_t hsm_thinp_threshold(const struct hsm_thinp_policy *p, uint64_t lv_size,
			     uint64_t max_size, bool *ret_armed);

/* True when a volume with this allocation should grow now. */
bool hsm_thinp_needs_extend(const struct hsm_thinp_policy *p, uint64_t alloc,
			    uint64_t lv_size, uint64_t max_size);

/* Size to ask the SPM for: at least lv_size + chunk, and enough that the
 * allocation leaves the free trigger again; a multiple of extent (0: no
 * rounding); at most max_size rounded up to extent. Returns lv_size when
 * the volume cannot grow any more. */
uint64_t hsm_thinp_next_size(const struct hsm_thinp_policy *p, uint64_t alloc,
			     uint64_t lv_size, uint64_t max_size, uint64_t extent);

/* Delay before retry number attempt (1, 2, ...): 50 ms doubling, capped at
 * retry_max_ms. */
unsigned hsm_thinp_retry_delay_ms(const struct hsm_thinp_policy *p, unsigned attempt);

#endif
