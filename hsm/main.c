/* hsmd: start-up and shutdown only. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/version.h"
#include "hsm/hsm.h"
#include "hsm/rpc.h"
#include "proto/server.h"
#include "proto/spm_client.h"

int main(int argc, char **argv)
{
	struct pk_config cfg = { 0 };
	struct pk_error err = { PK_OK, "" };
	struct pk_dispatcher dispatcher = { 0 };
	struct pk_rpc_server *srv = NULL;
	struct hsm_settings settings;
	struct hsm hsm;
	int r, sig, status = 1;

	r = pk_daemon_setup("hsm", argc, argv, &cfg, &err);
	if (r != 0) {
		if (r < 0) {
			fprintf(stderr, "hsmd: %s\n", err.message);
		}
		pk_config_release(&cfg);
		return r < 0 ? 2 : 0;
	}
	hsm_settings_from_config(&cfg, &settings);
	pk_server_tls_from_config(&cfg, &settings.tls);
	settings.kvm = pk_daemon_kvm_usable();
	/* Before any thread: liblvm2cmd is set up here. */
	r = hsm_init(&hsm, &settings, &err);
	if (r < 0) {
		pk_log_error("cannot start: %s", err.message);
		goto out_cfg;
	}
	if (!hsm.spm) {
		pk_log_warn("no 'spm' setting: the SPM will not learn which images this host "
			    "prepares");
	} else {
		/* Before hsm_start: no thread has called the SPM yet. */
		r = pk_spm_client_set_tls(hsm.spm, &settings.tls, &err);
		if (r < 0) {
			pk_log_error("cannot start: spm: %s", err.message);
			goto out_hsm;
		}
	}
	r = hsm_start(&hsm, &err);
	if (r < 0) {
		pk_log_error("cannot start: libvirt: %s", err.message);
		goto out_hsm;
	}
	dispatcher.verbs = hsm_verbs;
	dispatcher.nverbs = hsm_nverbs;
	dispatcher.ctx = &hsm;
	dispatcher.info = &hsm.info;
	r = pk_server_start(&cfg, "ipc:///run/poolkeeper/hsm.sock", &dispatcher, &srv, &err);
	if (r < 0) {
		pk_log_error("cannot start: %s", err.message);
		goto out_hsm;
	}
	pk_log_info("hsmd %s started host_id=%d kvm=%s activation=%s default_type=%s", PK_VERSION,
		    hsm.info.host_id, hsm.info.kvm ? "yes" : "no", hsm.info.activation,
		    hsm.default_type == HSM_VM_TYPE_KVM ? "kvm" : "qemu");
	sig = pk_daemon_wait_for_signal();
	pk_log_info("shutting down on signal %s", strsignal(sig));
	pk_rpc_server_stop(srv);
	pk_server_release(&dispatcher);
	status = 0;
out_hsm:
	hsm_release(&hsm);
out_cfg:
	pk_config_release(&cfg);
	return status;
}
