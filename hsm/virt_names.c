/*
 * The names of hsm/virt.h that need no connection: the enums' names for logs
 * (with the compile-time check that their values are libvirt's). The unit
 * tests' fake libvirtd links this file as it is.
 */
#include "hsm/virt.h"

#include <libvirt/libvirt.h>

/* Our enums carry libvirt's values (virt.h); the casts in hsm/virt*.c rely on it. */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(HSM_VIRT_JOB_PULL, VIR_DOMAIN_BLOCK_JOB_TYPE_PULL) &&
		       SAME(HSM_VIRT_JOB_COPY, VIR_DOMAIN_BLOCK_JOB_TYPE_COPY) &&
		       SAME(HSM_VIRT_JOB_COMMIT, VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT) &&
		       SAME(HSM_VIRT_JOB_ACTIVE_COMMIT, VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT) &&
		       SAME(HSM_VIRT_JOB_BACKUP, VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP),
	       "block job types");
_Static_assert(SAME(HSM_VIRT_JOB_COMPLETED, VIR_DOMAIN_BLOCK_JOB_COMPLETED) &&
		       SAME(HSM_VIRT_JOB_FAILED, VIR_DOMAIN_BLOCK_JOB_FAILED) &&
		       SAME(HSM_VIRT_JOB_CANCELED, VIR_DOMAIN_BLOCK_JOB_CANCELED) &&
		       SAME(HSM_VIRT_JOB_READY, VIR_DOMAIN_BLOCK_JOB_READY),
	       "block job status");
_Static_assert(SAME(HSM_VIRT_EV_DEFINED, VIR_DOMAIN_EVENT_DEFINED) &&
		       SAME(HSM_VIRT_EV_STARTED, VIR_DOMAIN_EVENT_STARTED) &&
		       SAME(HSM_VIRT_EV_STOPPED, VIR_DOMAIN_EVENT_STOPPED) &&
		       SAME(HSM_VIRT_EV_CRASHED, VIR_DOMAIN_EVENT_CRASHED),
	       "lifecycle events");
_Static_assert(SAME(HSM_VIRT_STATE_RUNNING, VIR_DOMAIN_RUNNING) &&
		       SAME(HSM_VIRT_STATE_PAUSED, VIR_DOMAIN_PAUSED) &&
		       SAME(HSM_VIRT_STATE_SHUTOFF, VIR_DOMAIN_SHUTOFF) &&
		       SAME(HSM_VIRT_STATE_PMSUSPENDED, VIR_DOMAIN_PMSUSPENDED),
	       "domain states");

/* ---- names ------------------------------------------------------------------------ */

const char *hsm_virt_job_type_name(enum hsm_virt_job_type type)
{
	static const char *const names[] = { "unknown", "pull", "copy", "commit",
					     "active-commit", "backup" };

	return (unsigned)type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

const char *hsm_virt_job_status_name(enum hsm_virt_job_status status)
{
	static const char *const names[] = { "completed", "failed", "canceled", "ready" };

	return (unsigned)status < sizeof(names) / sizeof(names[0]) ? names[status] : "unknown";
}

const char *hsm_virt_lifecycle_name(enum hsm_virt_lifecycle event)
{
	static const char *const names[] = { "defined", "undefined", "started",
					     "suspended", "resumed", "stopped",
					     "shutdown", "pmsuspended", "crashed" };

	return (unsigned)event < sizeof(names) / sizeof(names[0]) ? names[event] : "unknown";
}

const char *hsm_virt_state_name(enum hsm_virt_state state)
{
	static const char *const names[] = { "nostate", "running", "blocked", "paused",
					     "shutdown", "shutoff", "crashed", "pmsuspended" };

	return (unsigned)state < sizeof(names) / sizeof(names[0]) ? names[state] : "unknown";
}

const char *hsm_virt_paused_reason_name(int reason)
{
	static const char *const names[] = {
		"unknown", "user", "migration", "save", "dump", "ioerror", "watchdog",
		"from-snapshot", "shutting-down", "snapshot", "crashed", "starting-up",
		"postcopy", "postcopy-failed", "api-error",
	};

	if (reason < 0 || (size_t)reason >= sizeof(names) / sizeof(names[0])) {
		return "unknown";
	}
	return names[reason];
}
