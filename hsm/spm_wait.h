/*
 * hsm_spm_wait — waiting for the SPM instead of failing: what an hsmd
 * caller that cannot go on without the SPM (a merge in EXTENDING or
 * CLEANUP, the extension of a thin volume) does while no spmd answers.
 *
 * The SPM can be away for a while: its spmd killed, its host lost, the
 * lease not taken yet by the next one. The SPM client (proto/spm_client.h)
 * already asks every configured spmd on each call; what is left to the
 * caller is to call again with backoff, say why it waits, and give up only
 * after settings.spm_wait_limit_s (setting 'spm_wait_limit', default 30
 * min). Waiting is right only for answers that say "no SPM now":
 * UNAVAILABLE, TIMEOUT, NOT_SPM and BUSY (a lock held on the SPM); any other
 * answer is the SPM's verdict and ends the wait at once.
 *
 * Retrying is safe: the mutating SPM calls are idempotent (request ids,
 * docs/SPM.md), and a call that timed out may have been applied.
 *
 * Two ways to use it:
 *  - step by step, for a caller whose wait spans several attempts of a
 *    larger step (a merge job releases its locks between attempts): keep a
 *    struct hsm_spm_wait, hand it every result (hsm_spm_wait_next), sleep
 *    what it says, show hsm_spm_wait_reason;
 *  - the whole loop (hsm_spm_call_waiting), for a caller that can wait
 *    where it is, with a sleep of its own that may cut the wait short.
 *
 * Not thread-safe: one struct per waiting caller.
 */
#ifndef HSM_SPM_WAIT_H
#define HSM_SPM_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "hsm/hsm.h"

#define HSM_SPM_WAIT_LIMIT_S_DEFAULT 1800
#define HSM_SPM_WAIT_BACKOFF_MIN_MS 250
#define HSM_SPM_WAIT_BACKOFF_MAX_MS 5000
#define HSM_SPM_WAIT_REASON_MAX 512

struct hsm_spm_wait {
	uint64_t limit_ms;      /* how long to wait in all */
	uint64_t since_ms;      /* CLOCK_REALTIME of the first unanswered call; 0: not waiting */
	uint64_t since_mono_ms; /* the same on the monotonic clock (the limit) */
	unsigned backoff_ms;    /* the sleep before the next attempt */
	unsigned attempts;      /* unanswered calls so far */
	struct pk_error last;   /* the last answer that made it wait */
};

/* A wait with hsm's limit (settings.spm_wait_limit_s), not waiting yet. */
void hsm_spm_wait_init(struct hsm_spm_wait *w, const struct hsm *hsm);

/* True for the answers that mean "no SPM now" (see above). */
bool hsm_spm_error_waits(const struct pk_error *err);

enum hsm_spm_wait_next {
	HSM_SPM_WAIT_DONE,    /* answered (r == 0, the wait is over) or refused: go on with r */
	HSM_SPM_WAIT_AGAIN,   /* no SPM now: sleep *ret_sleep_ms, then call again */
	HSM_SPM_WAIT_EXPIRED, /* no SPM for the whole limit: err says so; fail */
};

/*
 * Takes the result of one SPM call (r, and err when r < 0). On AGAIN the
 * wait began or goes on (since_ms, last, attempts) and *ret_sleep_ms is the
 * backoff (250 ms doubling to 5 s); on EXPIRED err is rewritten as TIMEOUT
 * naming the time waited and the last answer; on DONE err is left as it
 * is and the wait is reset (not waiting any more).
 */
enum hsm_spm_wait_next hsm_spm_wait_next(struct hsm_spm_wait *w, int r, struct pk_error *err,
					 unsigned *ret_sleep_ms);

/* Not waiting any more (as after DONE); the limit stays. */
void hsm_spm_wait_reset(struct hsm_spm_wait *w);

/* True between an AGAIN and the next DONE. */
bool hsm_spm_wait_waiting(const struct hsm_spm_wait *w);

/*
 * "waiting for the SPM since 2026-12-04 06:31:07 UTC (3 attempts): <last
 * answer>", or "" when not waiting.
 */
void hsm_spm_wait_reason(const struct hsm_spm_wait *w, char *buf, size_t size);

/* One SPM call of a caller (0 or -errno with err set). */
typedef int hsm_spm_call_fn(void *ctx, struct pk_error *err);
/*
 * Sleeps ms before the next attempt; w says why (for the caller to show).
 * Returns true to stop waiting (the caller's own reason: hsmd stops).
 */
typedef bool hsm_spm_sleep_fn(void *ctx, unsigned ms, const struct hsm_spm_wait *w);

/*
 * Calls call(ctx) until the SPM answers it, sleeping with sleep(ctx)
 * between unanswered attempts, up to hsm's limit. Returns call's result;
 * TIMEOUT (hsm_spm_wait_next) past the limit; ABORTED when sleep said stop.
 */
int hsm_spm_call_waiting(struct hsm *hsm, hsm_spm_call_fn *call, hsm_spm_sleep_fn *sleep,
			 void *ctx, struct pk_error *err);

#endif
