/*
 * The steps of pk-virt-probe (tests/tools/pk-virt-probe.c): the probe's
 * state (the hsm_virt connection and the events its callbacks recorded)
 * and the virt_probe_cmd_* functions of the script commands that need more
 * than one call, each taking the command's words w[0..n-1] and returning 0
 * or -errno with err filled. Their output lines start with three blanks,
 * under the ">>" line of the command.
 *
 * Threads: the callbacks of pk-virt-probe.c append to probe.events under
 * probe.lock and signal probe.cond; the wait commands sleep on it.
 */
#ifndef TESTS_LIB_VIRT_PROBE_STEPS_H
#define TESTS_LIB_VIRT_PROBE_STEPS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "hsm/virt.h"
#include "hsm/vmxml.h"

#define MAX_EVENTS 512

enum ev_kind { EV_JOB, EV_LIFECYCLE };

struct event {
	enum ev_kind kind;
	char vm[HSM_VM_NAME_MAX + 1];
	char disk[HSM_VMXML_TARGET_MAX];
	int a, b; /* job: type, status; lifecycle: event, detail */
	bool used;
};

struct probe {
	struct hsm_virt *virt;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct event events[MAX_EVENTS];
	size_t nevents;
	unsigned reconnects;
	unsigned reconnects_seen;
};

/* err filled with INVALID_ARGUMENT and the message; returns its -errno. */
int virt_probe_fail(struct pk_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The script commands (see the usage in pk-virt-probe.c). */
int virt_probe_cmd_build_create(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_create(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_show(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_dump_xml(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_expect_chain(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_expect_mirror(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_expect_state(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_expect_list(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_expect_metadata(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_set_volume(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_snapshot(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_commit(struct probe *p, char **w, int n, bool active, struct pk_error *err);
int virt_probe_cmd_pull(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_expect_job(struct probe *p, char **w, int n, struct pk_error *err);
int virt_probe_cmd_wait(struct probe *p, char **w, int n, enum ev_kind kind, struct pk_error *err);
int virt_probe_cmd_wait_conn(struct probe *p, char **w, int n, bool reconnect, struct pk_error *err);

#endif
