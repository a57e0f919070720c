/*
 * pk_daemon — what hsmd and spmd share at start-up and shutdown: command
 * line, the settings schema, logging set-up and signal handling.
 *
 * Command line:  <daemon> [-c FILE] [-o key=value]... [--help] [--version]
 * Settings (file and -o): see pk_daemon_settings / `--help`; a file may hold
 * `[hsm]` and `[spm]` sections so one file serves both daemons of a host.
 *
 * pk_daemon_setup() blocks SIGTERM/SIGINT/SIGHUP in the calling thread
 * before any other thread exists, so every thread inherits the mask and
 * pk_daemon_wait_for_signal() receives them synchronously in main.
 *
 * struct pk_daemon_info is who a daemon is, as Ping and GetCapabilities
 * report it; filled once at start-up, read-only afterwards.
 */
#ifndef PK_DAEMON_H
#define PK_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"

struct pk_daemon_info {
	const char *role;       /* "hsm" or "spm" */
	int32_t host_id;
	uint64_t start_ms;      /* CLOCK_MONOTONIC ms at start (pk_clock_monotonic_ms) */
	const char *activation; /* "dm" or "lab" */
	bool kvm;
};

/*
 * Parses argv, loads the settings into *cfg (initialised here; release
 * with pk_config_release), sets up logging. Returns 0 to run, 1 when the
 * command line asked only for --help/--version (already printed), or
 * -errno with err set.
 */
int pk_daemon_setup(const char *role, int argc, char **argv, struct pk_config *cfg,
		    struct pk_error *err);

/* Waits for SIGTERM or SIGINT; returns the signal number. */
int pk_daemon_wait_for_signal(void);

/* True when /dev/kvm can be opened for use. */
bool pk_daemon_kvm_usable(void);

#endif
