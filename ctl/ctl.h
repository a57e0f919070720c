/*
 * pkctl's shared state and helpers for its commands. Each command lives in
 * ctl/cmd_<area>.c and is listed in the table in ctl/main.c.
 *
 * Output rules: human text on stdout by default; with --json exactly one
 * JSON object on stdout (errors included: {"error":{"code":..,"message":..}}).
 * Exit status: 0 success, 1 the operation failed, 2 bad usage.
 */
#ifndef CTL_CTL_H
#define CTL_CTL_H

#include <stdbool.h>

#include "common/error.h"
#include "common/rpc.h"
#include "ctl/json.h"
#include "proto/codec.h"
#include "proto/spm_client_wire.h"

enum ctl_target {
	CTL_HSM,
	CTL_SPM,
};

struct ctl {
	const char *hsm_url;
	const char *spm_url;
	bool hsm_from_flag; /* given on the command line (not from PK_HSM) */
	bool spm_from_flag;
	bool json;
	int timeout_ms;
	/* --tls-ca/--tls-cert/--tls-key or PK_TLS_*: for tls+tcp:// addresses */
	struct pk_rpc_tls tls;
	struct pk_rpc_client *hsm;
	struct pk_spm_client *spm; /* --spm may list every host's spmd */
	struct ctl_json out;
};

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAILED 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_DENIED 3 /* PERMISSION_DENIED: scripts tell "not allowed" from "failed" */

/*
 * Sends req to the target daemon; on success *ret_resp is owned by the
 * caller (pk__response__free_unpacked). On failure err is set.
 */
int ctl_call(struct ctl *ctl, enum ctl_target target, Pk__Request *req,
	     Pk__Response **ret_resp, struct pk_error *err);

/* ctl_call for a verb whose answer the caller does not read. */
int ctl_call_discard(struct ctl *ctl, enum ctl_target target, Pk__Request *req,
		     struct pk_error *err);

/*
 * Reads the VM `name` from the hsmd (VmList). On success *ret_resp is
 * owned by the caller (pk__response__free_unpacked) and *ret_vm points
 * into it; a name that lists no VM is NOT_FOUND and *ret_resp stays NULL.
 */
int ctl_vm_get(struct ctl *ctl, const char *name, Pk__Response **ret_resp,
	       const Pk__VmInfo **ret_vm, struct pk_error *err);

/*
 * Like ctl_call to CTL_SPM, but to the first address of --spm only (for
 * verbs about one host's spmd: spm start/stop/status, ping).
 */
int ctl_call_spm_direct(struct ctl *ctl, Pk__Request *req, Pk__Response **ret_resp,
			struct pk_error *err);

/* Reports err (human on stderr, or the JSON error object) and returns CTL_EXIT_FAILED (CTL_EXIT_DENIED for PERMISSION_DENIED). */
int ctl_fail(struct ctl *ctl, const struct pk_error *err);
/* Reports a usage error and returns CTL_EXIT_USAGE. */
int ctl_usage_error(struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Commands. */
int ctl_cmd_ping(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_capabilities(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_spm(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_domain(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_volume(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_image(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_image_hsm(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_task(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_vm(struct ctl *ctl, int argc, char **argv);
/* merge jobs (ctl/cmd_merge.c), snapshot delete (ctl/cmd_snapshot.c; its flow: ctl/flow.h) */
int ctl_cmd_merge(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_job(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_snapshot(struct ctl *ctl, int argc, char **argv);

/* hsmd calls and printers (ctl/cmd_hsm.c), shared with ctl/cmd_vm.c. */
int ctl_hsm_run(struct ctl *ctl, Pk__Request *req,
		void (*show)(struct ctl *ctl, const Pk__Response *resp));
void ctl_json_vm(struct ctl_json *j, const char *key, const Pk__VmInfo *vm);
void ctl_print_vm(const Pk__VmInfo *vm);
void ctl_show_volume_chain(struct ctl *ctl, const Pk__Response *resp);

#endif
