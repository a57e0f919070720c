/* spmd: start-up and shutdown only. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/version.h"
#include "spm/auto.h"
#include "spm/rpc.h"
#include "spm/spm.h"
#include "proto/server.h"

int main(int argc, char **argv)
{
	struct pk_config cfg = { 0 };
	struct pk_error err = { PK_OK, "" };
	struct pk_dispatcher dispatcher = { 0 };
	struct pk_rpc_server *srv = NULL;
	struct spm spm;
	struct spm_auto *autos = NULL;
	int r, sig, status = 1;

	r = pk_daemon_setup("spm", argc, argv, &cfg, &err);
	if (r != 0) {
		if (r < 0) {
			fprintf(stderr, "spmd: %s\n", err.message);
		}
		pk_config_release(&cfg);
		return r < 0 ? 2 : 0;
	}
	r = spm_init(&spm, &cfg, &err);
	if (r < 0) {
		pk_log_error("cannot start: %s", err.message);
		goto out_cfg;
	}
	dispatcher.verbs = spm_verbs;
	dispatcher.nverbs = spm_nverbs;
	dispatcher.ctx = &spm;
	dispatcher.info = &spm.info;
	r = pk_server_start(&cfg, "ipc:///run/poolkeeper/spm.sock", &dispatcher, &srv, &err);
	if (r < 0) {
		pk_log_error("cannot start: %s", err.message);
		goto out_spm;
	}
	if (pk_config_bool(&cfg, "spm_auto") &&
	    spm_auto_start(&spm, (unsigned)pk_config_int(&cfg, "spm_auto_interval_ms"), &autos,
			   &err) < 0) {
		pk_log_error("cannot start: %s", err.message);
		pk_rpc_server_stop(srv);
		pk_server_release(&dispatcher);
		goto out_spm;
	}
	pk_log_info("spmd %s started host_id=%d", PK_VERSION, spm.info.host_id);
	sig = pk_daemon_wait_for_signal();
	spm_auto_stop(autos); /* no SpmStart may begin while stopping */
	/*
	 * First stop writing (sanlock's kill path also arrives as SIGTERM when
	 * the lease cannot be renewed), then stop serving.
	 */
	spm_role_shutdown(&spm);
	pk_log_info("shutting down on signal %s", strsignal(sig));
	pk_rpc_server_stop(srv);
	pk_server_release(&dispatcher);
	spm_async_wait(&spm);
	status = 0;
out_spm:
	spm_release(&spm);
out_cfg:
	pk_config_release(&cfg);
	return status;
}
