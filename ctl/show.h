/*
 * ctl_show — how pkctl prints the API's objects, as text and as JSON,
 * and parses the values users type (sizes, formats).
 */
#ifndef CTL_SHOW_H
#define CTL_SHOW_H

#include <stddef.h>
#include <stdint.h>

#include "ctl/json.h"
#include "proto/rpc.pb-c.h"

/* Stable name of a wire error code. */
const char *ctl_errc_name(Pk__ErrorCode code);

/* "10G", "512M", "4096", "1.5GiB" -> bytes. Returns -EINVAL on garbage. */
int ctl_parse_size(const char *s, uint64_t *ret);
/* "1.2 GiB" style text into buf. */
const char *ctl_format_size(uint64_t bytes, char *buf, size_t size);

const char *ctl_format_name(Pk__VolumeFormat f);
const char *ctl_role_name(Pk__VolumeRole r);
const char *ctl_legality_name(Pk__Legality l);
const char *ctl_task_state_name(Pk__TaskState s);
const char *ctl_spm_state_name(Pk__SpmState s);
const char *ctl_job_state_name(Pk__JobState s);
const char *ctl_job_kind_name(Pk__JobKind k);
const char *ctl_job_convergence_name(Pk__JobConvergence c); /* "NOT_CONVERGING" */

void ctl_json_volume(struct ctl_json *j, const char *key, const Pk__VolumeInfo *v);
void ctl_print_volume(const Pk__VolumeInfo *v);
/* A JSON array of n volumes under key. */
void ctl_json_volumes(struct ctl_json *j, const char *key, Pk__VolumeInfo *const *v, size_t n);
/* "<what>, leaf first (N volumes):" and the volumes numbered from 0. */
void ctl_print_volume_chain(const char *what, Pk__VolumeInfo *const *v, size_t n);
void ctl_json_task(struct ctl_json *j, const char *key, const Pk__TaskInfo *t);
void ctl_print_task(const Pk__TaskInfo *t);
void ctl_json_job(struct ctl_json *j, const char *key, const Pk__JobInfo *job);
void ctl_print_job(const Pk__JobInfo *job);

#endif
