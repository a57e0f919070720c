/*
 * Whether a capped active commit converges: the contract is
 * hsm/merge_converge.h.
 */
#include "hsm/merge_converge.h"

#include <stdio.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)

void hsm_merge_converge_init(struct hsm_merge_converge *c, unsigned window_ms)
{
	memset(c, 0, sizeof(*c));
	c->window_ms = window_ms ? window_ms : HSM_MERGE_CONVERGE_WINDOW_MS;
}

void hsm_merge_converge_reset(struct hsm_merge_converge *c)
{
	c->head = 0;
	c->n = 0;
}

static const struct hsm_merge_converge_sample *at(const struct hsm_merge_converge *c, size_t i)
{
	return &c->s[(c->head + i) % HSM_MERGE_CONVERGE_SAMPLES];
}

static void drop_oldest(struct hsm_merge_converge *c)
{
	c->head = (c->head + 1) % HSM_MERGE_CONVERGE_SAMPLES;
	c->n--;
}

void hsm_merge_converge_add(struct hsm_merge_converge *c,
			    const struct hsm_merge_converge_sample *s)
{
	if (c->n) {
		const struct hsm_merge_converge_sample *last = at(c, c->n - 1);
		if (s->t_ms < last->t_ms || s->cur < last->cur) {
			hsm_merge_converge_reset(c); /* not the same job any more */
		}
	}
	if (c->n == HSM_MERGE_CONVERGE_SAMPLES) {
		drop_oldest(c);
	}
	c->s[(c->head + c->n) % HSM_MERGE_CONVERGE_SAMPLES] = *s;
	c->n++;
	/* Keep the oldest sample that is at least a window older than s. */
	while (c->n > 2 && s->t_ms - at(c, 1)->t_ms >= c->window_ms) {
		drop_oldest(c);
	}
}

static uint64_t remaining(const struct hsm_merge_converge_sample *s)
{
	return s->end > s->cur ? s->end - s->cur : 0;
}

static uint64_t per_second(uint64_t from, uint64_t to, uint64_t ms)
{
	return to > from && ms ? (to - from) * 1000 / ms : 0;
}

void hsm_merge_converge_judge(const struct hsm_merge_converge *c, uint64_t bandwidth,
			      struct hsm_merge_converge_verdict *ret)
{
	const struct hsm_merge_converge_sample *first, *last;
	uint64_t span, mid, min_old = UINT64_MAX, min_new = UINT64_MAX, max = 0;

	memset(ret, 0, sizeof(*ret));
	if (c->n < 2) {
		return;
	}
	first = at(c, 0);
	last = at(c, c->n - 1);
	span = last->t_ms - first->t_ms;
	if (span < c->window_ms) {
		return;
	}
	mid = first->t_ms + span / 2;
	for (size_t i = 0; i < c->n; i++) {
		const struct hsm_merge_converge_sample *s = at(c, i);
		uint64_t rem = remaining(s);
		uint64_t *min = s->t_ms < mid ? &min_old : &min_new;
		if (rem < *min) {
			*min = rem;
		}
		if (rem > max) {
			max = rem;
		}
	}
	ret->remaining = max;
	ret->copy_rate = per_second(first->cur, last->cur, span);
	if (first->has_written && last->has_written) {
		ret->guest_rate = per_second(first->written, last->written, span);
	} else {
		ret->guest_rate = per_second(first->end, last->end, span);
	}
	if (min_new < min_old) {
		ret->state = HSM_MERGE_CONVERGENCE_CONVERGING;
	} else if (bandwidth) {
		ret->state = HSM_MERGE_CONVERGENCE_NOT_CONVERGING;
	}
}

bool hsm_merge_converge_uncap_due(const struct hsm_merge_converge_verdict *v,
				  uint64_t bandwidth, unsigned seconds)
{
	return v->state == HSM_MERGE_CONVERGENCE_NOT_CONVERGING && bandwidth &&
	       v->remaining <= bandwidth * (uint64_t)seconds;
}

void hsm_merge_converge_note(enum hsm_merge_convergence state, uint64_t guest_rate,
			     uint64_t bandwidth, bool cap_lifted, char *buf, size_t size)
{
	char rate[64];

	if (state != HSM_MERGE_CONVERGENCE_NOT_CONVERGING || !bandwidth) {
		snprintf(buf, size, "%s", "");
		return;
	}
	if (guest_rate) {
		snprintf(rate, sizeof(rate), "the guest writes %.1f MiB/s", (double)guest_rate / MIB);
	} else {
		snprintf(rate, sizeof(rate), "the guest writes faster than the limit");
	}
	if (cap_lifted) {
		snprintf(buf, size, "not converging: %s, the limit of %.1f MiB/s was lifted for the "
			 "last pass", rate, (double)bandwidth / MIB);
	} else {
		snprintf(buf, size, "not converging: %s, the limit is %.1f MiB/s", rate,
			 (double)bandwidth / MIB);
	}
}
