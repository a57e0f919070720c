/*
 * pk-lease-probe — drives spm/lease*.c against a real sanlock daemon, for
 * tests/integration/test_lease.sh.
 *
 *   pk-lease-probe CMD -s LOCKSPACE -i IDS_PATH -l LEASES_PATH
 *                  [-H HOST_ID] [-t IO_TIMEOUT] [-r SANLOCK_RUN_DIR]
 *                  [-w JOIN_TIMEOUT_MS] [-f READY_FILE]
 *
 *   format   write the lockspace and the SDM resource
 *   join     join the lockspace as HOST_ID (the daemon stays joined)
 *   acquire  one attempt at the SPM lease: "ACQUIRED" (exit 0) or
 *            "BUSY holder=N" (exit 2); the lease goes with the process
 *   hold     acquire, print "HELD host_id=N" (and create READY_FILE), then
 *            check the lease every 100 ms until it is lost ("LOST ...",
 *            exit 3) or SIGTERM arrives ("TERMINATED", exit 4)
 *   owner    print "owner=N generation=G" from storage
 *   status   print "join=STATE held=0|1 owner=N"
 *   leave    leave the lockspace
 * Other failures print "ERROR CODE: message" on stderr and exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "spm/lease.h"

struct probe_args {
	const char *cmd;
	struct spm_lease_config cfg;
	int join_timeout_ms;
	const char *ready_file;
};

static volatile sig_atomic_t terminated;

static void on_sigterm(int sig)
{
	(void)sig;
	terminated = 1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: pk-lease-probe format|join|acquire|hold|owner|status|leave\n"
		"       -s LOCKSPACE -i IDS -l LEASES [-H HOST_ID] [-t IO_TIMEOUT]\n"
		"       [-r SANLOCK_RUN_DIR] [-w JOIN_TIMEOUT_MS] [-f READY_FILE]\n");
	return 1;
}

static int parse(int argc, char **argv, struct probe_args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->cfg.io_timeout = 10;
	a->join_timeout_ms = 60000;
	if (argc < 2) {
		return -1;
	}
	a->cmd = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "s:i:l:H:t:r:w:f:")) != -1) {
		switch (c) {
		case 's':
			a->cfg.lockspace = optarg;
			break;
		case 'i':
			a->cfg.ids_path = optarg;
			break;
		case 'l':
			a->cfg.leases_path = optarg;
			break;
		case 'H':
			a->cfg.host_id = strtoull(optarg, NULL, 10);
			break;
		case 't':
			a->cfg.io_timeout = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			a->cfg.sanlock_run_dir = optarg;
			break;
		case 'w':
			a->join_timeout_ms = atoi(optarg);
			break;
		case 'f':
			a->ready_file = optarg;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

static int fail(const struct pk_error *err)
{
	fprintf(stderr, "ERROR %s: %s\n", pk_errc_name(err->code), err->message);
	return 1;
}

static int acquire_once(struct spm_lease *lease, struct pk_error *err)
{
	struct spm_lease_owner holder = { 0, 0 };

	if (spm_lease_acquire(lease, &holder, err) < 0) {
		if (err->code == PK_E_BUSY) {
			printf("BUSY holder=%llu\n", (unsigned long long)holder.host_id);
			fprintf(stderr, "%s\n", err->message);
			return 2;
		}
		return fail(err);
	}
	return 0;
}

static int hold(struct spm_lease *lease, const char *ready_file, struct pk_error *err)
{
	struct sigaction sa;
	int r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigterm;
	sigaction(SIGTERM, &sa, NULL);

	r = acquire_once(lease, err);
	if (r != 0) {
		return r;
	}
	printf("HELD host_id=%llu\n", (unsigned long long)spm_lease_host_id(lease));
	fflush(stdout);
	if (ready_file) {
		int fd = open(ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd >= 0) {
			close(fd);
		}
	}
	while (!terminated) {
		if (spm_lease_check(lease, err) < 0) {
			printf("LOST %s: %s\n", pk_errc_name(err->code), err->message);
			return 3;
		}
		usleep(100 * 1000);
	}
	spm_lease_mark_lost(lease);
	if (spm_lease_check(lease, err) == 0) {
		printf("BUG: check passed after mark_lost\n");
		return 1;
	}
	printf("TERMINATED\n");
	return 4;
}

static const char *join_name(enum spm_lease_join_state s)
{
	switch (s) {
	case SPM_LEASE_JOINED:
		return "joined";
	case SPM_LEASE_JOINING:
		return "joining";
	case SPM_LEASE_NOT_JOINED:
		break;
	}
	return "not-joined";
}

static int run(const struct probe_args *a, struct pk_error *err)
{
	struct spm_lease *lease = NULL;
	struct spm_lease_owner owner;
	struct spm_lease_status st;
	int rc = 0;

	if (strcmp(a->cmd, "format") == 0) {
		if (spm_lease_format_lockspace(&a->cfg, err) < 0 ||
		    spm_lease_format_resource(&a->cfg, err) < 0) {
			return fail(err);
		}
		printf("FORMATTED\n");
		return 0;
	}
	if (strcmp(a->cmd, "owner") == 0) {
		if (spm_lease_read_owner(&a->cfg, &owner, err) < 0) {
			return fail(err);
		}
		printf("owner=%llu generation=%llu\n", (unsigned long long)owner.host_id,
		       (unsigned long long)owner.generation);
		return 0;
	}
	if (spm_lease_new(&a->cfg, &lease, err) < 0) {
		return fail(err);
	}
	if (strcmp(a->cmd, "join") == 0) {
		rc = spm_lease_join(lease, a->join_timeout_ms, err) < 0 ? fail(err) : 0;
		if (rc == 0) {
			printf("JOINED host_id=%llu\n",
			       (unsigned long long)spm_lease_host_id(lease));
		}
	} else if (strcmp(a->cmd, "acquire") == 0) {
		rc = acquire_once(lease, err);
		if (rc == 0) {
			printf("ACQUIRED\n");
		}
	} else if (strcmp(a->cmd, "hold") == 0) {
		rc = hold(lease, a->ready_file, err);
	} else if (strcmp(a->cmd, "status") == 0) {
		if (spm_lease_status(lease, &st, err) < 0) {
			rc = fail(err);
		} else {
			printf("join=%s held=%d owner=%llu\n", join_name(st.join),
			       st.held ? 1 : 0, (unsigned long long)st.owner.host_id);
		}
	} else if (strcmp(a->cmd, "leave") == 0) {
		rc = spm_lease_leave(lease, err) < 0 ? fail(err) : 0;
		if (rc == 0) {
			printf("LEFT\n");
		}
	} else {
		rc = usage();
	}
	spm_lease_free(lease);
	return rc;
}

int main(int argc, char **argv)
{
	struct probe_args a;
	struct pk_error err;

	pk_error_clear(&err);
	if (parse(argc, argv, &a) < 0) {
		return usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return run(&a, &err);
}
