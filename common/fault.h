/*
 * pk_fault — named crash points for crash-recovery tests.
 *
 * `pk_fault_point("delete_volume:marked")` kills the process with SIGKILL
 * when the environment variable PK_FAULT names that point (a
 * comma-separated list is allowed). Production never sets PK_FAULT; the
 * check is one getenv per point, on paths that already run LVM or libvirt.
 */
#ifndef PK_FAULT_H
#define PK_FAULT_H

void pk_fault_point(const char *name);

#endif
