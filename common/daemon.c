#include "common/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/endpoint.h"
#include "common/log.h"
#include "common/version.h"

/* One schema for both daemons; each reads the keys it uses. */
static const struct pk_config_key daemon_settings[] = {
	{ "host_id", PK_CONFIG_INT, "1", 1, 2000, "this host's id in the cluster (1-2000), also its sanlock host id" },
	{ "listen", PK_CONFIG_STR, NULL, 0, 0, "URL the daemon answers on: ipc:///path, or tls+tcp://host:port with tls_ca/tls_cert/tls_key (tcp:// only with insecure_tcp, on loopback)" },
	{ "events", PK_CONFIG_STR, NULL, 0, 0, "hsmd: URL where job and drive monitor events are published (same schemes as listen)" },
	{ "spm", PK_CONFIG_STR, NULL, 0, 0, "hsmd: comma-separated URLs of the cluster's spmds" },
	{ "state_dir", PK_CONFIG_STR, "/var/lib/poolkeeper", 0, 0, "durable per-host state (job and task records)" },
	{ "run_dir", PK_CONFIG_STR, "/run/poolkeeper", 0, 0, "volatile per-host state (image links)" },
	{ "boot_dir", PK_CONFIG_STR, "/var/lib/poolkeeper/boot", 0, 0, "hsmd: directory of the kernels and initrds VmCreate names (nothing outside it is booted)" },
	{ "log_dir", PK_CONFIG_STR, "/var/log/poolkeeper", 0, 0, "hsmd: directory of the VMs' serial console logs (<log_dir>/<vm>.serial)" },
	{ "log_level", PK_CONFIG_STR, "info", 0, 0, "error, warn, info or debug" },
	{ "workers", PK_CONFIG_INT, "8", 1, 256, "RPC worker threads (concurrent calls)" },
	{ "max_message", PK_CONFIG_INT, "4194304", 4096, 268435456, "largest accepted request in bytes" },
	{ "activation", PK_CONFIG_STR, "dm", 0, 0, "LV activation backend: dm (device-mapper) or lab (pk-lvmapd)" },
	{ "lvmap_dir", PK_CONFIG_STR, NULL, 0, 0, "lab activation: mount point of pk-lvmapd" },
	{ "sanlock_run_dir", PK_CONFIG_STR, NULL, 0, 0, "directory of the sanlock daemon's socket (SANLOCK_RUN_DIR)" },
	{ "sanlock_io_timeout", PK_CONFIG_INT, "10", 1, 60, "sanlock io_timeout in seconds for the domain lockspace" },
	{ "lvm_devices", PK_CONFIG_STR, NULL, 0, 0, "comma-separated PV device paths LVM may scan" },
	{ "domain", PK_CONFIG_STR, NULL, 0, 0, "storage domain UUID this host serves" },
	{ "libvirt_uri", PK_CONFIG_STR, "qemu:///system", 0, 0, "hsmd: libvirt connection URI" },
	{ "domain_type", PK_CONFIG_STR, "auto", 0, 0, "hsmd: VM domain type: auto, kvm or qemu (TCG)" },
	{ "merge_uncap_last_pass", PK_CONFIG_BOOL, "true", 0, 0, "hsmd: lift the bandwidth limit of an active commit that does not converge once it is merge_uncap_seconds from done" },
	{ "merge_uncap_seconds", PK_CONFIG_INT, "5", 1, 3600, "hsmd: the backlog (seconds at the limit) under which the limit is lifted for the last pass" },
	{ "spm_wait_limit", PK_CONFIG_INT, "1800", 1, 604800, "hsmd: seconds a merge (or a thin extension) waits for an SPM to answer before it fails" },
	{ "thin_monitor", PK_CONFIG_BOOL, "true", 0, 0, "hsmd: grow thin (COW) volumes of running VMs before they fill (docs/THIN.md)" },
	{ "thin_chunk_mb", PK_CONFIG_INT, "1024", 1, 1048576, "hsmd: MiB a thin volume grows by per extension" },
	{ "thin_free_mb", PK_CONFIG_INT, "0", 0, 1048576, "hsmd: free MiB left in a thin volume that trigger an extension; 0: thin_free_pct of a chunk" },
	{ "thin_free_pct", PK_CONFIG_INT, "50", 1, 100, "hsmd: free space that triggers an extension, in % of a chunk" },
	{ "thin_check_seconds", PK_CONFIG_INT, "10", 1, 3600, "hsmd: period of the drive monitor's backstop allocation check" },
	{ "thin_workers", PK_CONFIG_INT, "4", 1, 64, "hsmd: thin volume checks and extensions run at once" },
	{ "thin_retry_max_ms", PK_CONFIG_INT, "1000", 50, 60000, "hsmd: backoff ceiling of an extension waiting for the SPM or for space" },
	{ "spm_auto", PK_CONFIG_BOOL, "false", 0, 0, "spmd: contend for the SPM lease whenever nobody holds it (no operator needed after a failure)" },
	{ "spm_auto_interval_ms", PK_CONFIG_INT, "500", 50, 60000, "spmd: how often spm_auto asks for the lease while another host holds it" },
	{ "task_workers", PK_CONFIG_INT, "4", 1, 64, "spmd: threads that run asynchronous tasks" },
	{ "task_queue_max", PK_CONFIG_INT, "64", 1, 4096, "spmd: asynchronous tasks waiting for a worker; beyond it a new task is refused with BUSY" },
	{ "task_keep_seconds", PK_CONFIG_INT, "3600", 1, 31536000, "spmd: seconds a finished task's record is kept before it expires" },
	{ "tls_ca", PK_CONFIG_STR, NULL, 0, 0, "PEM file of the cluster CA (tls+tcp:// endpoints)" },
	{ "tls_cert", PK_CONFIG_STR, NULL, 0, 0, "PEM certificate of this daemon (tls+tcp:// endpoints)" },
	{ "tls_key", PK_CONFIG_STR, NULL, 0, 0, "PEM private key of tls_cert" },
	{ "max_connections", PK_CONFIG_INT, "256", 1, 65536, "connections served at once on listen; more are closed as they arrive (logged)" },
	{ "auth_engine", PK_CONFIG_STR, NULL, 0, 0, "tls+tcp:// peers: certificate CNs of role engine (every verb), comma-separated" },
	{ "auth_host", PK_CONFIG_STR, NULL, 0, 0, "tls+tcp:// peers: <CN>:<host id> of role host (what hsmd needs from spmd), comma-separated" },
	{ "auth_viewer", PK_CONFIG_STR, NULL, 0, 0, "tls+tcp:// peers: certificate CNs of role viewer (read-only verbs), comma-separated" },
	{ "insecure_tcp", PK_CONFIG_BOOL, "false", 0, 0, "allow plain tcp:// endpoints, on loopback only (testing)" },
	{ "fault", PK_CONFIG_STR, NULL, 0, 0, "testing only: a fault point name at which the daemon kills itself" },
};

#define NSETTINGS (sizeof(daemon_settings) / sizeof(daemon_settings[0]))

static void daemon_usage(const char *role, FILE *out)
{
	fprintf(out,
		"usage: %sd [-c FILE] [-o key=value]... [--help] [--version]\n"
		"\n"
		"  -c, --config FILE   settings file (key = value; [%s] section applies)\n"
		"  -o, --set KEY=VALUE override one setting (repeatable)\n"
		"\nsettings:\n", role, role);
	for (size_t i = 0; i < NSETTINGS; i++) {
		fprintf(out, "  %-20s %s%s%s%s\n", daemon_settings[i].name, daemon_settings[i].help,
			daemon_settings[i].default_value ? " [default: " : "",
			daemon_settings[i].default_value ? daemon_settings[i].default_value : "",
			daemon_settings[i].default_value ? "]" : "");
	}
}

/* The URL of setting (listen, events) against common/endpoint.h's policy;
 * an insecure tcp:// endpoint is allowed with a warning. Unset: 0. */
static int check_endpoint(const struct pk_config *cfg, const char *setting,
			  struct pk_error *err)
{
	const char *url = pk_config_str(cfg, setting);
	struct pk_endpoint_policy policy = {
		.insecure_tcp = pk_config_bool(cfg, "insecure_tcp"),
		.tls_ready = pk_config_str(cfg, "tls_ca") && pk_config_str(cfg, "tls_cert") &&
			     pk_config_str(cfg, "tls_key"),
	};
	enum pk_endpoint_kind kind;
	bool warn = false;
	int r;

	if (!url) {
		return 0;
	}
	r = pk_endpoint_check(setting, url, &policy, &kind, &warn, err);
	if (r < 0) {
		return r;
	}
	if (warn) {
		pk_log_warn("%s='%s' is plain tcp without TLS or authentication (insecure_tcp = true): any local process can call every verb",
			    setting, url);
	}
	return 0;
}

int pk_daemon_setup(const char *role, int argc, char **argv, struct pk_config *cfg,
		    struct pk_error *err)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	char ident[16];
	enum pk_log_level level;
	sigset_t mask;
	int c, r;

	pk_config_init(cfg, role, daemon_settings, NSETTINGS);
	/* First pass: find the file, so -o overrides apply after it. */
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:o:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'o':
			break;
		case 'h':
			daemon_usage(role, stdout);
			return 1;
		case 'V':
			printf("%sd %s\n", role, PK_VERSION);
			return 1;
		default:
			daemon_usage(role, stderr);
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "bad command line (see --help)");
		}
	}
	if (optind < argc) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "unexpected argument '%s' (see --help)", argv[optind]);
	}
	if (config_path) {
		r = pk_config_load_file(cfg, config_path, err);
		if (r < 0) {
			return r;
		}
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:o:hV", opts, NULL)) != -1) {
		if (c == 'o') {
			r = pk_config_set(cfg, optarg, err);
			if (r < 0) {
				return r;
			}
		}
	}
	if (pk_log_level_parse(pk_config_str(cfg, "log_level"), &level) < 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "log_level '%s' is not one of error, warn, info, debug",
				    pk_config_str(cfg, "log_level"));
	}
	snprintf(ident, sizeof(ident), "%sd", role);
	pk_log_setup(ident, level);
	r = check_endpoint(cfg, "listen", err);
	if (r < 0) {
		return r;
	}
	r = check_endpoint(cfg, "events", err);
	if (r < 0) {
		return r;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	/* A peer that vanishes mid-write must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int pk_daemon_wait_for_signal(void)
{
	sigset_t mask;
	int sig = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	for (;;) {
		if (sigwait(&mask, &sig) == 0) {
			return sig;
		}
	}
}

bool pk_daemon_kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		return false;
	}
	close(fd);
	return true;
}
