/*
 * Merge job records and what is derived from a job's chain. Pure code:
 * no I/O, no locks (callers hold what they need).
 *
 * A record is text, one `key=value` per line, written whole by
 * pk_statefile (so it is never torn):
 *
 *   version=1            id=<uuid>         vm=<name>      drive=vda
 *   kind=ACTIVE_COMMIT   state=COMMITTING  failed_in=     domain=<uuid>
 *   image=<uuid>         base=<uuid>       top=<uuid>
 *   chain=<leaf>,...,<base of the drive>   active_leaf=0|1
 *   bandwidth= cur= end= started_ms= updated_ms= extend_size=
 *   attempts= pivot_attempts= leaf_illegal=0|1 abort=0|1
 *   cap_lifted=0|1 guest_rate=<bytes/s>
 *   error_code=NAME      error=<message on one line>
 *
 * Unknown keys are ignored (a newer hsmd's); every key above but
 * failed_in, cap_lifted, guest_rate (added later: an older record lacks
 * them), error_code and error is required.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/parse.h"
#include "common/xalloc.h"
#include "hsm/merge_job.h"

/* ---- names ------------------------------------------------------------------ */

static const char *const state_names[] = {
	[HSM_MERGE_PREPARING] = "PREPARING", [HSM_MERGE_EXTENDING] = "EXTENDING",
	[HSM_MERGE_COMMITTING] = "COMMITTING", [HSM_MERGE_READY] = "READY",
	[HSM_MERGE_PIVOTING] = "PIVOTING", [HSM_MERGE_CLEANUP] = "CLEANUP",
	[HSM_MERGE_DONE] = "DONE", [HSM_MERGE_FAILED] = "FAILED",
	[HSM_MERGE_ABORTING] = "ABORTING",
};

static const char *const kind_names[] = {
	[HSM_MERGE_COMMIT] = "COMMIT", [HSM_MERGE_ACTIVE_COMMIT] = "ACTIVE_COMMIT",
	[HSM_MERGE_PULL] = "PULL", [HSM_MERGE_COLD_COMMIT] = "COLD_COMMIT",
};

const char *hsm_merge_state_name(enum hsm_merge_state state)
{
	if ((unsigned)state < sizeof(state_names) / sizeof(state_names[0]) && state_names[state]) {
		return state_names[state];
	}
	return "UNKNOWN";
}

const char *hsm_merge_kind_name(enum hsm_merge_kind kind)
{
	if ((unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) && kind_names[kind]) {
		return kind_names[kind];
	}
	return "UNKNOWN";
}

bool hsm_merge_state_final(enum hsm_merge_state state)
{
	return state == HSM_MERGE_DONE || state == HSM_MERGE_FAILED;
}

int hsm_merge_state_parse(const char *name, enum hsm_merge_state *ret)
{
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
		if (state_names[i] && !strcmp(state_names[i], name)) {
			*ret = (enum hsm_merge_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

int hsm_merge_kind_parse(const char *name, enum hsm_merge_kind *ret)
{
	for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
		if (kind_names[i] && !strcmp(kind_names[i], name)) {
			*ret = (enum hsm_merge_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- derived from the chain --------------------------------------------------- */

int hsm_merge_job_pos(const struct hsm_merge_job *job, const char *volume)
{
	for (size_t i = 0; i < job->nchain; i++) {
		if (!strcmp(job->chain[i], volume)) {
			return (int)i;
		}
	}
	return -1;
}

void hsm_merge_job_removed(const struct hsm_merge_job *job, size_t *ret_lo, size_t *ret_hi)
{
	int top = hsm_merge_job_pos(job, job->top);
	int base = hsm_merge_job_pos(job, job->base);

	if (job->kind == HSM_MERGE_PULL) {
		*ret_lo = 1;
		*ret_hi = (size_t)base;
	} else {
		*ret_lo = (size_t)top;
		*ret_hi = (size_t)base - 1;
	}
}

const char *hsm_merge_job_target(const struct hsm_merge_job *job)
{
	return job->kind == HSM_MERGE_PULL ? job->chain[0] : job->base;
}

const char *hsm_merge_job_child(const struct hsm_merge_job *job)
{
	size_t lo, hi;

	hsm_merge_job_removed(job, &lo, &hi);
	return lo > 0 ? job->chain[lo - 1] : "";
}

const char *hsm_merge_job_new_parent(const struct hsm_merge_job *job)
{
	size_t lo, hi;

	hsm_merge_job_removed(job, &lo, &hi);
	return hi + 1 < job->nchain ? job->chain[hi + 1] : "";
}

const char *hsm_merge_job_new_leaf(const struct hsm_merge_job *job)
{
	size_t lo, hi;

	hsm_merge_job_removed(job, &lo, &hi);
	return lo == 0 ? job->chain[hi + 1] : job->chain[0];
}

bool hsm_merge_job_chain_is_after(const struct hsm_merge_job *job,
				  const char (*ids)[PK_UUID_BUFLEN],
				  size_t n)
{
	size_t lo, hi, k = 0;

	hsm_merge_job_removed(job, &lo, &hi);
	if (n != job->nchain - (hi - lo + 1)) {
		return false;
	}
	for (size_t i = 0; i < job->nchain; i++) {
		if (i >= lo && i <= hi) {
			continue;
		}
		if (strcmp(ids[k++], job->chain[i]) != 0) {
			return false;
		}
	}
	return true;
}

bool hsm_merge_job_chain_is_before(const struct hsm_merge_job *job,
				   const char (*ids)[PK_UUID_BUFLEN],
				   size_t n)
{
	if (n != job->nchain) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ids[i], job->chain[i]) != 0) {
			return false;
		}
	}
	return true;
}

bool hsm_merge_job_reconciles(const struct hsm_merge_job *job)
{
	return job->state == HSM_MERGE_FAILED && job->leaf_illegal &&
	       job->kind != HSM_MERGE_COLD_COMMIT;
}

void hsm_merge_job_info_of(const struct hsm_merge_job *job, struct hsm_merge_job_info *ret)
{
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->id, sizeof(ret->id), "%s", job->id);
	snprintf(ret->vm, sizeof(ret->vm), "%s", job->vm);
	snprintf(ret->drive, sizeof(ret->drive), "%s", job->drive);
	ret->kind = job->kind;
	ret->state = job->state;
	snprintf(ret->domain, sizeof(ret->domain), "%s", job->domain);
	snprintf(ret->image, sizeof(ret->image), "%s", job->image);
	snprintf(ret->base, sizeof(ret->base), "%s", job->base);
	snprintf(ret->top, sizeof(ret->top), "%s", job->top);
	ret->cur = job->cur;
	ret->end = job->end;
	ret->bandwidth = job->bandwidth;
	ret->error = job->error;
	ret->started_ms = job->started_ms;
	ret->updated_ms = job->updated_ms;
	/* Once lifted, the verdict that lifted it stays the job's story. */
	ret->convergence = job->cap_lifted ? HSM_MERGE_CONVERGENCE_NOT_CONVERGING
					   : job->convergence;
	ret->guest_rate = ret->convergence == HSM_MERGE_CONVERGENCE_NOT_CONVERGING
				  ? job->guest_rate : 0;
	ret->cap_lifted = job->cap_lifted;
	hsm_merge_converge_note(ret->convergence, ret->guest_rate, job->bandwidth, job->cap_lifted,
				ret->note, sizeof(ret->note));
	hsm_spm_wait_reason(&job->spm_wait, ret->waiting, sizeof(ret->waiting));
}

_Static_assert(HSM_MERGE_WAITING_MAX == HSM_SPM_WAIT_REASON_MAX, "the wait's reason fits");

/* ---- encode ------------------------------------------------------------------- */

char *hsm_merge_record_encode(const struct hsm_merge_job *job)
{
	struct pk_buf b = PK_BUF_INIT;
	char msg[PK_ERROR_MSG_MAX];

	pk_buf_printf(&b, "version=%d\nid=%s\nvm=%s\ndrive=%s\nkind=%s\nstate=%s\nfailed_in=%s\n",
		      HSM_MERGE_RECORD_VERSION, job->id, job->vm, job->drive,
		      hsm_merge_kind_name(job->kind), hsm_merge_state_name(job->state),
		      job->failed_in ? hsm_merge_state_name(job->failed_in) : "");
	pk_buf_printf(&b, "domain=%s\nimage=%s\nbase=%s\ntop=%s\nchain=", job->domain, job->image,
		      job->base, job->top);
	for (size_t i = 0; i < job->nchain; i++) {
		pk_buf_printf(&b, "%s%s", i ? "," : "", job->chain[i]);
	}
	pk_buf_printf(&b, "\nactive_leaf=%d\nbandwidth=%" PRIu64 "\ncur=%" PRIu64 "\nend=%" PRIu64
		      "\nstarted_ms=%" PRIu64 "\nupdated_ms=%" PRIu64 "\nextend_size=%" PRIu64
		      "\nattempts=%u\npivot_attempts=%u\nleaf_illegal=%d\nabort=%d\n",
		      job->active_leaf, job->bandwidth, job->cur, job->end, job->started_ms,
		      job->updated_ms, job->extend_size, job->attempts, job->pivot_attempts,
		      job->leaf_illegal, job->abort_requested);
	pk_buf_printf(&b, "cap_lifted=%d\nguest_rate=%" PRIu64 "\n", job->cap_lifted,
		      job->guest_rate);
	if (job->error.code != PK_OK) {
		snprintf(msg, sizeof(msg), "%s", job->error.message);
		for (char *p = msg; *p; p++) {
			if (*p == '\n' || *p == '\r') {
				*p = ' ';
			}
		}
		pk_buf_printf(&b, "error_code=%s\nerror=%s\n", pk_errc_name(job->error.code), msg);
	}
	return pk_buf_steal(&b, NULL);
}

/* ---- decode ------------------------------------------------------------------- */

enum field {
	F_VERSION, F_ID, F_VM, F_DRIVE, F_KIND, F_STATE, F_DOMAIN, F_IMAGE, F_BASE, F_TOP,
	F_CHAIN, F_ACTIVE_LEAF, F_BANDWIDTH, F_CUR, F_END, F_STARTED, F_UPDATED, F_EXTEND,
	F_ATTEMPTS, F_PIVOT_ATTEMPTS, F_LEAF_ILLEGAL, F_ABORT, F_REQUIRED,
	F_FAILED_IN = F_REQUIRED, F_CAP_LIFTED, F_GUEST_RATE, F_ERROR_CODE, F_ERROR, F_COUNT,
};

static const char *const field_names[F_COUNT] = {
	"version", "id", "vm", "drive", "kind", "state", "domain", "image", "base", "top",
	"chain", "active_leaf", "bandwidth", "cur", "end", "started_ms", "updated_ms",
	"extend_size", "attempts", "pivot_attempts", "leaf_illegal", "abort", "failed_in",
	"cap_lifted", "guest_rate", "error_code", "error",
};

/* A record's number has one spelling (no leading zero), as the encoder
 * writes it. */
static int parse_u64(const char *s, uint64_t *ret)
{
	if (s[0] == '0' && s[1]) {
		return -EINVAL;
	}
	return pk_parse_u64(s, ret);
}

static int parse_bool(const char *s, bool *ret)
{
	if (!strcmp(s, "0") || !strcmp(s, "1")) {
		*ret = s[0] == '1';
		return 0;
	}
	return -EINVAL;
}

static int copy_uuid(const char *s, char *out)
{
	if (!pk_uuid_valid(s)) {
		return -EINVAL;
	}
	snprintf(out, PK_UUID_BUFLEN, "%s", s);
	return 0;
}

static int parse_chain(const char *s, struct hsm_merge_job *job)
{
	char buf[HSM_MERGE_CHAIN_MAX * PK_UUID_BUFLEN + 1], *save = NULL;

	if (strlen(s) >= sizeof(buf)) {
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	job->nchain = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (job->nchain == HSM_MERGE_CHAIN_MAX || copy_uuid(t, job->chain[job->nchain]) < 0) {
			return -EINVAL;
		}
		job->nchain++;
	}
	return job->nchain >= 2 ? 0 : -EINVAL;
}

static int decode_field(enum field f, const char *v, struct hsm_merge_job *job)
{
	uint64_t u = 0;
	bool b = false;
	int r = 0;

	switch (f) {
	case F_VERSION:
		r = parse_u64(v, &u);
		return r == 0 && u == HSM_MERGE_RECORD_VERSION ? 0 : -EINVAL;
	case F_ID: return copy_uuid(v, job->id);
	case F_VM:
		if (!hsm_vm_name_valid(v)) {
			return -EINVAL;
		}
		snprintf(job->vm, sizeof(job->vm), "%s", v);
		return 0;
	case F_DRIVE:
		if (!*v || strlen(v) >= sizeof(job->drive)) {
			return -EINVAL;
		}
		snprintf(job->drive, sizeof(job->drive), "%s", v);
		return 0;
	case F_KIND: return hsm_merge_kind_parse(v, &job->kind);
	case F_STATE: return hsm_merge_state_parse(v, &job->state);
	case F_FAILED_IN: return *v ? hsm_merge_state_parse(v, &job->failed_in) : 0;
	case F_DOMAIN: return copy_uuid(v, job->domain);
	case F_IMAGE: return copy_uuid(v, job->image);
	case F_BASE: return copy_uuid(v, job->base);
	case F_TOP: return copy_uuid(v, job->top);
	case F_CHAIN: return parse_chain(v, job);
	case F_ACTIVE_LEAF: return parse_bool(v, &job->active_leaf);
	case F_BANDWIDTH: return parse_u64(v, &job->bandwidth);
	case F_CUR: return parse_u64(v, &job->cur);
	case F_END: return parse_u64(v, &job->end);
	case F_STARTED: return parse_u64(v, &job->started_ms);
	case F_UPDATED: return parse_u64(v, &job->updated_ms);
	case F_EXTEND: return parse_u64(v, &job->extend_size);
	case F_ATTEMPTS:
	case F_PIVOT_ATTEMPTS:
		r = parse_u64(v, &u);
		if (r < 0 || u > 1000000) {
			return -EINVAL;
		}
		*(f == F_ATTEMPTS ? &job->attempts : &job->pivot_attempts) = (unsigned)u;
		return 0;
	case F_LEAF_ILLEGAL:
		r = parse_bool(v, &b);
		job->leaf_illegal = b;
		return r;
	case F_ABORT:
		r = parse_bool(v, &b);
		job->abort_requested = b;
		return r;
	case F_CAP_LIFTED:
		r = parse_bool(v, &b);
		job->cap_lifted = b;
		return r;
	case F_GUEST_RATE: return parse_u64(v, &job->guest_rate);
	case F_ERROR_CODE: {
		enum pk_errc code;
		if (pk_errc_from_name(v, &code) < 0 || code == PK_OK) {
			return -EINVAL;
		}
		job->error.code = code;
		return 0;
	}
	case F_ERROR:
		snprintf(job->error.message, sizeof(job->error.message), "%s", v);
		return 0;
	default:
		return -EINVAL;
	}
}

/* The chain must hold top and base in an order the kind allows. */
static int check_shape(const struct hsm_merge_job *job)
{
	int top = hsm_merge_job_pos(job, job->top);
	int base = hsm_merge_job_pos(job, job->base);

	if (top < 0 || base < 0 || base <= top) {
		return -EINVAL;
	}
	if (job->kind == HSM_MERGE_PULL && top != 0) {
		return -EINVAL;
	}
	if (job->kind == HSM_MERGE_ACTIVE_COMMIT && top != 0) {
		return -EINVAL;
	}
	if (job->kind == HSM_MERGE_COMMIT && top == 0) {
		return -EINVAL;
	}
	return 0;
}

int hsm_merge_record_decode(const char *text, struct hsm_merge_job *job, struct pk_error *err)
{
	bool seen[F_COUNT] = { false };
	const char *p = text;
	unsigned line = 0;

	memset(job, 0, sizeof(*job));
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char buf[HSM_MERGE_CHAIN_MAX * PK_UUID_BUFLEN + 64];
		char *eq;
		int f = -1;

		line++;
		if (len >= sizeof(buf)) {
			return pk_error_set(err, PK_E_ILLEGAL, EINVAL, "line %u is too long", line);
		}
		memcpy(buf, p, len);
		buf[len] = '\0';
		p += len + (nl ? 1 : 0);
		if (!len) {
			continue;
		}
		eq = strchr(buf, '=');
		if (!eq) {
			return pk_error_set(err, PK_E_ILLEGAL, EINVAL, "line %u has no '='", line);
		}
		*eq = '\0';
		for (int i = 0; i < F_COUNT; i++) {
			if (!strcmp(field_names[i], buf)) {
				f = i;
			}
		}
		if (f < 0) {
			continue; /* a newer hsmd's field */
		}
		if (seen[f]) {
			return pk_error_set(err, PK_E_ILLEGAL, EINVAL, "line %u: '%s' given twice",
					    line, buf);
		}
		seen[f] = true;
		if (decode_field((enum field)f, eq + 1, job) < 0) {
			return pk_error_set(err, PK_E_ILLEGAL, EINVAL, "line %u: bad %s '%.64s'",
					    line, buf, eq + 1);
		}
	}
	for (int i = 0; i < F_REQUIRED; i++) {
		if (!seen[i]) {
			return pk_error_set(err, PK_E_ILLEGAL, EINVAL, "field '%s' is missing",
					    field_names[i]);
		}
	}
	if (check_shape(job) < 0) {
		return pk_error_set(err, PK_E_ILLEGAL, EINVAL,
				    "kind %s does not fit top '%s' and base '%s' in the chain",
				    hsm_merge_kind_name(job->kind), job->top, job->base);
	}
	if (job->state == HSM_MERGE_FAILED && job->error.code == PK_OK) {
		job->error.code = PK_E_INTERNAL;
	}
	return 0;
}
