#include "ctl/show.h"

#include "common/error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *ctl_errc_name(Pk__ErrorCode code)
{
	return pk_errc_name((enum pk_errc)code);
}

int ctl_parse_size(const char *s, uint64_t *ret)
{
	char *end = NULL;
	double v;
	uint64_t mult = 1;

	if (!s || !*s) {
		return -EINVAL;
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v)) {
		return -EINVAL;
	}
	if (*end) {
		if (!strcasecmp(end, "k") || !strcasecmp(end, "kib") || !strcasecmp(end, "kb")) {
			mult = 1ull << 10;
		} else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib") || !strcasecmp(end, "mb")) {
			mult = 1ull << 20;
		} else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib") || !strcasecmp(end, "gb")) {
			mult = 1ull << 30;
		} else if (!strcasecmp(end, "t") || !strcasecmp(end, "tib") || !strcasecmp(end, "tb")) {
			mult = 1ull << 40;
		} else if (!strcasecmp(end, "b")) {
			mult = 1;
		} else {
			return -EINVAL;
		}
	}
	if (v * (double)mult > 1.8e19) {
		return -ERANGE;
	}
	*ret = (uint64_t)(v * (double)mult);
	return 0;
}

const char *ctl_format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0) {
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	} else {
		snprintf(buf, size, "%.1f %s", v, units[u]);
	}
	return buf;
}

const char *ctl_format_name(Pk__VolumeFormat f)
{
	return f == PK__VOLUME_FORMAT__FORMAT_RAW ? "RAW" : f == PK__VOLUME_FORMAT__FORMAT_COW ? "COW" : "?";
}

const char *ctl_role_name(Pk__VolumeRole r)
{
	return r == PK__VOLUME_ROLE__ROLE_LEAF ? "LEAF" : r == PK__VOLUME_ROLE__ROLE_INTERNAL ? "INTERNAL" : "?";
}

const char *ctl_legality_name(Pk__Legality l)
{
	switch (l) {
	case PK__LEGALITY__LEGALITY_LEGAL:
		return "LEGAL";
	case PK__LEGALITY__LEGALITY_ILLEGAL:
		return "ILLEGAL";
	case PK__LEGALITY__LEGALITY_REMOVING:
		return "REMOVING";
	default:
		return "?";
	}
}

const char *ctl_task_state_name(Pk__TaskState s)
{
	static const char *const n[] = { "?", "RUNNING", "DONE", "FAILED", "ROLLED_BACK" };

	return (unsigned)s < 5 ? n[s] : "?";
}

const char *ctl_spm_state_name(Pk__SpmState s)
{
	static const char *const n[] = { "?", "FREE", "CONTENDING", "SPM", "OTHER", "RECOVERING" };

	return (unsigned)s < 6 ? n[s] : "?";
}

const char *ctl_job_state_name(Pk__JobState s)
{
	static const char *const n[] = { "?", "PREPARING", "EXTENDING", "COMMITTING", "READY",
					 "PIVOTING", "CLEANUP", "DONE", "FAILED", "ABORTING" };

	return (unsigned)s < 10 ? n[s] : "?";
}

const char *ctl_job_convergence_name(Pk__JobConvergence c)
{
	static const char *const n[] = { "UNKNOWN", "CONVERGING", "NOT_CONVERGING" };

	return (unsigned)c < 3 ? n[c] : "?";
}

const char *ctl_job_kind_name(Pk__JobKind k)
{
	static const char *const n[] = { "?", "COMMIT", "ACTIVE_COMMIT", "PULL", "COLD_COMMIT" };

	return (unsigned)k < 5 ? n[k] : "?";
}

void ctl_json_volume(struct ctl_json *j, const char *key, const Pk__VolumeInfo *v)
{
	ctl_json_object_begin(j, key);
	ctl_json_string(j, "domain_id", v->domain_id);
	ctl_json_string(j, "image_id", v->image_id);
	ctl_json_string(j, "volume_id", v->volume_id);
	ctl_json_string(j, "parent_id", v->parent_id && *v->parent_id ? v->parent_id : NULL);
	ctl_json_string(j, "format", ctl_format_name(v->format));
	ctl_json_string(j, "role", ctl_role_name(v->role));
	ctl_json_string(j, "legality", ctl_legality_name(v->legality));
	ctl_json_uint(j, "capacity", v->capacity);
	ctl_json_uint(j, "lv_size", v->lv_size);
	ctl_json_uint(j, "generation", v->generation);
	ctl_json_string(j, "description", v->description);
	if (v->path && *v->path) {
		ctl_json_string(j, "path", v->path);
	}
	ctl_json_object_end(j);
}

void ctl_print_volume(const Pk__VolumeInfo *v)
{
	char cap[32], lv[32];

	printf("%s  %-3s %-8s %-8s capacity %s, LV %s, gen %llu%s%s%s%s\n", v->volume_id,
	       ctl_format_name(v->format), ctl_role_name(v->role), ctl_legality_name(v->legality),
	       ctl_format_size(v->capacity, cap, sizeof(cap)),
	       ctl_format_size(v->lv_size, lv, sizeof(lv)), (unsigned long long)v->generation,
	       v->parent_id && *v->parent_id ? ", parent " : "",
	       v->parent_id && *v->parent_id ? v->parent_id : "", v->path && *v->path ? "\n    " : "",
	       v->path && *v->path ? v->path : "");
}

void ctl_json_volumes(struct ctl_json *j, const char *key, Pk__VolumeInfo *const *v, size_t n)
{
	ctl_json_array_begin(j, key);
	for (size_t i = 0; i < n; i++) {
		ctl_json_volume(j, NULL, v[i]);
	}
	ctl_json_array_end(j);
}

void ctl_print_volume_chain(const char *what, Pk__VolumeInfo *const *v, size_t n)
{
	printf("%s, leaf first (%zu volumes):\n", what, n);
	for (size_t i = 0; i < n; i++) {
		printf("  %zu ", i);
		ctl_print_volume(v[i]);
	}
}

void ctl_json_task(struct ctl_json *j, const char *key, const Pk__TaskInfo *t)
{
	ctl_json_object_begin(j, key);
	ctl_json_string(j, "task_id", t->task_id);
	ctl_json_string(j, "verb", t->verb);
	ctl_json_string(j, "state", ctl_task_state_name(t->state));
	ctl_json_string(j, "domain_id", t->domain_id);
	ctl_json_string(j, "image_id", t->image_id);
	ctl_json_string(j, "volume_id", t->volume_id);
	ctl_json_uint(j, "created_ms", t->created_ms);
	ctl_json_uint(j, "finished_ms", t->finished_ms);
	ctl_json_uint(j, "progress", t->progress);
	if (t->error && t->error->code) {
		ctl_json_object_begin(j, "error");
		ctl_json_string(j, "code", ctl_errc_name(t->error->code));
		ctl_json_string(j, "message", t->error->message);
		ctl_json_object_end(j);
	}
	ctl_json_object_end(j);
}

void ctl_print_task(const Pk__TaskInfo *t)
{
	printf("%s  %-16s %-11s %3u%%  volume %s%s%s\n", t->task_id, t->verb,
	       ctl_task_state_name(t->state), t->progress, t->volume_id && *t->volume_id ? t->volume_id : "-",
	       t->error && t->error->code ? "\n    " : "",
	       t->error && t->error->code ? t->error->message : "");
}

void ctl_json_job(struct ctl_json *j, const char *key, const Pk__JobInfo *job)
{
	ctl_json_object_begin(j, key);
	ctl_json_string(j, "job_id", job->job_id);
	ctl_json_string(j, "vm", job->vm);
	ctl_json_string(j, "drive", job->drive);
	ctl_json_string(j, "kind", ctl_job_kind_name(job->kind));
	ctl_json_string(j, "state", ctl_job_state_name(job->state));
	ctl_json_string(j, "domain_id", job->domain_id);
	ctl_json_string(j, "image_id", job->image_id);
	ctl_json_string(j, "base_id", job->base_id);
	ctl_json_string(j, "top_id", job->top_id);
	ctl_json_uint(j, "cur", job->cur);
	ctl_json_uint(j, "end", job->end);
	ctl_json_uint(j, "bandwidth", job->bandwidth);
	ctl_json_uint(j, "started_ms", job->started_ms);
	ctl_json_uint(j, "updated_ms", job->updated_ms);
	ctl_json_string(j, "convergence", ctl_job_convergence_name(job->convergence));
	ctl_json_uint(j, "guest_write_rate", job->guest_write_rate);
	ctl_json_bool(j, "cap_lifted", job->cap_lifted);
	ctl_json_string(j, "note", job->note ? job->note : "");
	ctl_json_string(j, "waiting", job->waiting ? job->waiting : "");
	if (job->error && job->error->code) {
		ctl_json_object_begin(j, "error");
		ctl_json_string(j, "code", ctl_errc_name(job->error->code));
		ctl_json_string(j, "message", job->error->message);
		ctl_json_object_end(j);
	}
	ctl_json_object_end(j);
}

void ctl_print_job(const Pk__JobInfo *job)
{
	double pct = job->end ? 100.0 * (double)job->cur / (double)job->end : 0;

	bool note = job->note && *job->note;
	bool waiting = job->waiting && *job->waiting;

	printf("%s  %-13s %-10s %5.1f%%  vm %s drive %s, top %s -> base %s%s%s%s%s%s%s\n",
	       job->job_id, ctl_job_kind_name(job->kind), ctl_job_state_name(job->state), pct,
	       job->vm, job->drive, job->top_id, job->base_id, note ? "\n    " : "",
	       note ? job->note : "", waiting ? "\n    " : "", waiting ? job->waiting : "",
	       job->error && job->error->code ? "\n    " : "",
	       job->error && job->error->code ? job->error->message : "");
}
