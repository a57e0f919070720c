/* pkctl ping / capabilities: is each daemon there, and what does it serve. */
#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/version.h"
#include "ctl/ctl.h"

struct ping_target {
	enum ctl_target target;
	const char *role;
	const char *url;
};

static size_t ping_targets(const struct ctl *ctl, struct ping_target out[2])
{
	size_t n = 0;
	bool flags = ctl->hsm_from_flag || ctl->spm_from_flag;

	/* Flags name exactly the daemons to ask; without flags, the environment does. */
	if (ctl->hsm_url && (!flags || ctl->hsm_from_flag)) {
		out[n++] = (struct ping_target){ CTL_HSM, "hsm", ctl->hsm_url };
	}
	if (ctl->spm_url && (!flags || ctl->spm_from_flag)) {
		out[n++] = (struct ping_target){ CTL_SPM, "spm", ctl->spm_url };
	}
	return n;
}

int ctl_cmd_ping(struct ctl *ctl, int argc, char **argv)
{
	struct ping_target targets[2];
	size_t n = ping_targets(ctl, targets);
	int status = CTL_EXIT_OK;

	(void)argv;
	if (argc > 1) {
		return ctl_usage_error(ctl, "ping takes no arguments");
	}
	if (n == 0) {
		return ctl_usage_error(ctl, "nothing to ping: pass --hsm URL and/or --spm URL "
					    "(or set PK_HSM / PK_SPM)");
	}
	if (ctl->json) {
		ctl_json_init(&ctl->out, stdout);
		ctl_json_object_begin(&ctl->out, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		Pk__Request req = PK__REQUEST__INIT;
		Pk__PingRequest ping = PK__PING_REQUEST__INIT;
		Pk__Response *resp = NULL;
		struct pk_error err = { PK_OK, "" };
		uint64_t t0 = pk_clock_monotonic_ms();
		double ms;
		int r;

		req.call_case = PK__REQUEST__CALL_PING;
		req.ping = &ping;
		r = targets[i].target == CTL_SPM ? ctl_call_spm_direct(ctl, &req, &resp, &err)
						 : ctl_call(ctl, targets[i].target, &req, &resp, &err);
		ms = (double)(pk_clock_monotonic_ms() - t0);
		if (ctl->json) {
			ctl_json_object_begin(&ctl->out, targets[i].role);
			ctl_json_string(&ctl->out, "url", targets[i].url);
			ctl_json_bool(&ctl->out, "ok", r == 0);
			if (r == 0) {
				ctl_json_int(&ctl->out, "host_id", resp->ping->host_id);
				ctl_json_string(&ctl->out, "role", resp->ping->role);
				ctl_json_string(&ctl->out, "version", resp->ping->version);
				ctl_json_string(&ctl->out, "hostname", resp->ping->hostname);
				ctl_json_uint(&ctl->out, "uptime_ms", resp->ping->uptime_ms);
				ctl_json_uint(&ctl->out, "api_version", resp->ping->api_version);
				ctl_json_double(&ctl->out, "rtt_ms", ms);
			} else {
				ctl_json_object_begin(&ctl->out, "error");
				ctl_json_string(&ctl->out, "code", pk_errc_name(err.code));
				ctl_json_string(&ctl->out, "message", err.message);
				ctl_json_object_end(&ctl->out);
			}
			ctl_json_object_end(&ctl->out);
		} else if (r == 0) {
			printf("%sd host %d (%s) poolkeeper %s api %u at %s: up %.1f s, %.1f ms\n",
			       resp->ping->role, resp->ping->host_id, resp->ping->hostname,
			       resp->ping->version, resp->ping->api_version, targets[i].url,
			       (double)resp->ping->uptime_ms / 1000.0, ms);
		} else {
			fprintf(stderr, "pkctl: %sd at %s: %s: %s\n", targets[i].role, targets[i].url,
				pk_errc_name(err.code), err.message);
		}
		if (r < 0 && status != CTL_EXIT_DENIED) {
			status = err.code == PK_E_PERMISSION_DENIED ? CTL_EXIT_DENIED
								    : CTL_EXIT_FAILED;
		}
		if (resp) {
			pk__response__free_unpacked(resp, NULL);
		}
	}
	if (ctl->json) {
		ctl_json_object_end(&ctl->out);
		ctl_json_finish(&ctl->out);
	}
	return status;
}

int ctl_cmd_capabilities(struct ctl *ctl, int argc, char **argv)
{
	struct ping_target targets[2];
	size_t n = ping_targets(ctl, targets);
	int status = CTL_EXIT_OK;

	(void)argv;
	if (argc > 1) {
		return ctl_usage_error(ctl, "capabilities takes no arguments");
	}
	if (n == 0) {
		return ctl_usage_error(ctl, "pass --hsm URL and/or --spm URL (or set PK_HSM / PK_SPM)");
	}
	if (ctl->json) {
		ctl_json_init(&ctl->out, stdout);
		ctl_json_object_begin(&ctl->out, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		Pk__Request req = PK__REQUEST__INIT;
		Pk__GetCapabilitiesRequest caps = PK__GET_CAPABILITIES_REQUEST__INIT;
		Pk__Response *resp = NULL;
		struct pk_error err = { PK_OK, "" };
		int r;

		req.call_case = PK__REQUEST__CALL_GET_CAPABILITIES;
		req.get_capabilities = &caps;
		r = targets[i].target == CTL_SPM ? ctl_call_spm_direct(ctl, &req, &resp, &err)
						 : ctl_call(ctl, targets[i].target, &req, &resp, &err);
		if (r < 0) {
			if (status != CTL_EXIT_DENIED) {
				status = err.code == PK_E_PERMISSION_DENIED ? CTL_EXIT_DENIED
									    : CTL_EXIT_FAILED;
			}
			if (ctl->json) {
				ctl_json_object_begin(&ctl->out, targets[i].role);
				ctl_json_object_begin(&ctl->out, "error");
				ctl_json_string(&ctl->out, "code", pk_errc_name(err.code));
				ctl_json_string(&ctl->out, "message", err.message);
				ctl_json_object_end(&ctl->out);
				ctl_json_object_end(&ctl->out);
			} else {
				fprintf(stderr, "pkctl: %sd at %s: %s: %s\n", targets[i].role,
					targets[i].url, pk_errc_name(err.code), err.message);
			}
			continue;
		}
		Pk__GetCapabilitiesResponse *c = resp->get_capabilities;
		if (ctl->json) {
			ctl_json_object_begin(&ctl->out, targets[i].role);
			ctl_json_int(&ctl->out, "host_id", c->host_id);
			ctl_json_string(&ctl->out, "version", c->version);
			ctl_json_uint(&ctl->out, "api_version", c->api_version);
			ctl_json_bool(&ctl->out, "kvm", c->kvm);
			ctl_json_string(&ctl->out, "activation", c->activation);
			ctl_json_array_begin(&ctl->out, "verbs");
			for (size_t k = 0; k < c->n_verbs; k++) {
				ctl_json_string(&ctl->out, NULL, c->verbs[k]);
			}
			ctl_json_array_end(&ctl->out);
			ctl_json_object_end(&ctl->out);
		} else {
			printf("%sd host %d, poolkeeper %s, api %u, activation %s%s\n  verbs:",
			       c->role, c->host_id, c->version, c->api_version,
			       c->activation[0] ? c->activation : "-", c->kvm ? ", kvm" : "");
			for (size_t k = 0; k < c->n_verbs; k++) {
				printf(" %s", c->verbs[k]);
			}
			printf("\n");
		}
		pk__response__free_unpacked(resp, NULL);
	}
	if (ctl->json) {
		ctl_json_object_end(&ctl->out);
		ctl_json_finish(&ctl->out);
	}
	return status;
}
