/* pkctl: the command-line client and the reference engine flows. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/version.h"
#include "ctl/ctl.h"

struct ctl_command {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
	const char *summary;
};

static const struct ctl_command commands[] = {
	{ "ping", ctl_cmd_ping, "check that hsmd/spmd answer" },
	{ "capabilities", ctl_cmd_capabilities, "show version and verbs of hsmd/spmd" },
	{ "spm", ctl_cmd_spm, "start|stop|status: the SPM role of one spmd" },
	{ "domain", ctl_cmd_domain, "create|info: block storage domains" },
	{ "volume", ctl_cmd_volume, "create|delete|extend|info|update: volumes (LVs)" },
	{ "image", ctl_cmd_image, "chain|delete (spmd), prepare|teardown (hsmd)" },
	{ "task", ctl_cmd_task, "list|show|clear: the SPM's tasks" },
	{ "vm", ctl_cmd_vm, "create|destroy|list|chain|snapshot: VMs of one host (hsmd)" },
	{ "merge", ctl_cmd_merge, "merge a drive's layers (hsmd job), --wait to follow it" },
	{ "job", ctl_cmd_job, "list|show|wait|abort|bandwidth: merge jobs of one host (hsmd)" },
	{ "snapshot", ctl_cmd_snapshot, "delete: merge a snapshot volume away and delete it" },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: pkctl [--hsm URL] [--spm URL] [--json] [--timeout MS]\n"
		"             [--tls-ca FILE --tls-cert FILE --tls-key FILE] COMMAND [ARGS]\n"
		"\n"
		"  --hsm URL     hsmd address (default: $PK_HSM)\n"
		"  --spm URL     spmd address (default: $PK_SPM)\n"
		"  --json        one JSON object on stdout instead of text\n"
		"  --timeout MS  per-call timeout (default 30000)\n"
		"  --tls-ca FILE    CA certificate (PEM) for tls+tcp:// (default: $PK_TLS_CA)\n"
		"  --tls-cert FILE  our certificate (PEM) for tls+tcp:// (default: $PK_TLS_CERT)\n"
		"  --tls-key FILE   its private key (PEM) (default: $PK_TLS_KEY)\n"
		"\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
	}
	fprintf(out, "\nexit status: 0 ok, 1 the operation failed, 2 bad usage, 3 permission denied\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hsm", required_argument, NULL, 'H' },
		{ "spm", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "tls-ca", required_argument, NULL, 'A' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { 0 };
	int c, status;

	pk_log_setup("pkctl", PK_LOG_WARN);
	ctl.hsm_url = getenv("PK_HSM");
	ctl.spm_url = getenv("PK_SPM");
	ctl.tls.ca = getenv("PK_TLS_CA");
	ctl.tls.cert = getenv("PK_TLS_CERT");
	ctl.tls.key = getenv("PK_TLS_KEY");
	ctl.timeout_ms = 30000;
	/* '+': stop at the command, its options are its own. */
	while ((c = getopt_long(argc, argv, "+H:S:jt:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			ctl.hsm_url = optarg;
			ctl.hsm_from_flag = true;
			break;
		case 'S':
			ctl.spm_url = optarg;
			ctl.spm_from_flag = true;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'A':
			ctl.tls.ca = optarg;
			break;
		case 'C':
			ctl.tls.cert = optarg;
			break;
		case 'K':
			ctl.tls.key = optarg;
			break;
		case 't':
			ctl.timeout_ms = atoi(optarg);
			if (ctl.timeout_ms <= 0) {
				return ctl_usage_error(&ctl, "--timeout wants a positive number of ms");
			}
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		case 'V':
			printf("pkctl %s (api %d)\n", PK_VERSION, PK_API_VERSION);
			return CTL_EXIT_OK;
		default:
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (ctl.hsm_url && !*ctl.hsm_url) {
		ctl.hsm_url = NULL;
	}
	if (ctl.spm_url && !*ctl.spm_url) {
		ctl.spm_url = NULL;
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	status = -1;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, argv[optind]) == 0) {
			int cargc = argc - optind;
			char **cargv = argv + optind;

			/* Commands see argv[0] = their name and parse their own options. */
			optind = 1;
			status = commands[i].fn(&ctl, cargc, cargv);
			break;
		}
	}
	if (status < 0) {
		return ctl_usage_error(&ctl, "unknown command '%s' (see pkctl --help)", argv[optind]);
	}
	pk_rpc_client_free(ctl.hsm);
	pk_spm_client_free(ctl.spm);
	return status;
}
