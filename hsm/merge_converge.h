/*
 * hsm_merge_converge — does a capped active commit get done? Pure code over
 * samples (no libvirt, no locks, no clock of its own): the job thread of
 * hsm/merge_run.c feeds it what it reads every poll and asks for a verdict.
 *
 * An active commit is a mirror: qemu copies the leaf into base at most at
 * the job's bandwidth while the guest keeps dirtying the leaf. When the
 * guest dirties faster than the limit lets qemu copy, the mirror never gets
 * in sync (never READY) and the job sits near 100 % for as long as one
 * waits. qemu's numbers do not show the guest's rate: `end` is qemu's
 * offset + the dirty bytes counted at the top of its copy loop, and between
 * two throttled iterations libvirt reports cur == end - 1 (it never shows
 * cur == end before READY). So:
 *
 *   converging      the least remaining bytes (end - cur) seen in the newer
 *                   half of the window is below the least seen in the older
 *                   half (the backlog shrinks; one-off peaks do not count);
 *   not converging  it is not, over a full window, while a cap is set;
 *   unknown         no cap (nothing to lift), or less than a window seen.
 *
 * The guest's write rate comes from the drive's write counter (block stats)
 * when both ends of the window have it, else from the growth of `end`.
 * The backlog the last-pass rule compares with the cap is the largest
 * remaining seen in the window (the real backlog is at least that).
 *
 * Ownership: struct hsm_merge_converge is a plain value, embedded in the
 * job; no allocation. Not thread-safe: one job thread uses it.
 */
#ifndef HSM_MERGE_CONVERGE_H
#define HSM_MERGE_CONVERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HSM_MERGE_CONVERGE_SAMPLES 64
#define HSM_MERGE_CONVERGE_WINDOW_MS 4000 /* default window */

/* Values equal the wire enum JobConvergence. */
enum hsm_merge_convergence {
	HSM_MERGE_CONVERGENCE_UNKNOWN = 0,
	HSM_MERGE_CONVERGENCE_CONVERGING = 1,
	HSM_MERGE_CONVERGENCE_NOT_CONVERGING = 2,
};

struct hsm_merge_converge_sample {
	uint64_t t_ms;        /* CLOCK_MONOTONIC */
	uint64_t cur, end;    /* the block job's progress */
	uint64_t written;     /* the drive's bytes written so far (a counter) */
	bool has_written;     /* written was read */
};

struct hsm_merge_converge {
	unsigned window_ms;
	size_t head, n;       /* ring of samples: s[head] is the oldest */
	struct hsm_merge_converge_sample s[HSM_MERGE_CONVERGE_SAMPLES];
};

struct hsm_merge_converge_verdict {
	enum hsm_merge_convergence state;
	uint64_t guest_rate;  /* bytes/s the guest writes (0: not measured) */
	uint64_t copy_rate;   /* bytes/s the job advanced */
	uint64_t remaining;   /* the largest end - cur seen in the window */
};

/* An empty window of window_ms (0: HSM_MERGE_CONVERGE_WINDOW_MS). */
void hsm_merge_converge_init(struct hsm_merge_converge *c, unsigned window_ms);

/* Forgets every sample (a new block job, a new cap): judged afresh. */
void hsm_merge_converge_reset(struct hsm_merge_converge *c);

/*
 * Adds a sample; samples older than the window are dropped (one at least a
 * window old is kept, so a full window is always measured). A sample whose
 * time or cur goes backwards (qemu's offset only grows within a block job:
 * this is another one) resets the window first.
 */
void hsm_merge_converge_add(struct hsm_merge_converge *c,
			    const struct hsm_merge_converge_sample *s);

/* The verdict on the samples now, for a job limited to bandwidth bytes/s
 * (0: no limit, which is never judged "not converging"). */
void hsm_merge_converge_judge(const struct hsm_merge_converge *c, uint64_t bandwidth,
			      struct hsm_merge_converge_verdict *ret);

/* True when the cap is to be lifted for the last pass: not converging and
 * the backlog would take at most `seconds` at the cap. */
bool hsm_merge_converge_uncap_due(const struct hsm_merge_converge_verdict *v,
				  uint64_t bandwidth, unsigned seconds);

/*
 * The sentence for a person ("" when there is nothing to say):
 *   "not converging: the guest writes 3.6 MiB/s, the limit is 2.0 MiB/s"
 *   "not converging: the guest writes 3.6 MiB/s, the limit of 2.0 MiB/s was
 *    lifted for the last pass"
 * guest_rate 0 says "faster than" the limit (the rate was not measured).
 */
void hsm_merge_converge_note(enum hsm_merge_convergence state, uint64_t guest_rate,
			     uint64_t bandwidth, bool cap_lifted, char *buf, size_t size);

#endif
