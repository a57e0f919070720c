#include "ctl/ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static int ctl_client(struct ctl *ctl, enum ctl_target target, struct pk_rpc_client **ret,
		      struct pk_error *err)
{
	struct pk_rpc_client **slot = target == CTL_HSM ? &ctl->hsm : &ctl->spm;
	const char *url = target == CTL_HSM ? ctl->hsm_url : ctl->spm_url;
	int r;

	if (!*slot) {
		if (!url) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "no %s address: pass --%s URL or set %s",
					    target == CTL_HSM ? "hsmd" : "spmd",
					    target == CTL_HSM ? "hsm" : "spm",
					    target == CTL_HSM ? "PK_HSM" : "PK_SPM");
		}
		r = pk_rpc_client_new(url, PK_MAX_MESSAGE_DEFAULT * 4, slot, err);
		if (r < 0) {
			return r;
		}
	}
	*ret = *slot;
	return 0;
}

int ctl_call(struct ctl *ctl, enum ctl_target target, Pk__Request *req,
	     Pk__Response **ret_resp, struct pk_error *err)
{
	struct pk_rpc_client *c = NULL;
	int r = ctl_client(ctl, target, &c, err);

	if (r < 0) {
		return r;
	}
	return pk_codec_call(c, req, ctl->timeout_ms, ret_resp, NULL, err);
}

int ctl_fail(struct ctl *ctl, const struct pk_error *err)
{
	if (ctl->json) {
		ctl_json_init(&ctl->out, stdout);
		ctl_json_object_begin(&ctl->out, NULL);
		ctl_json_object_begin(&ctl->out, "error");
		ctl_json_string(&ctl->out, "code", pk_errc_name(err->code));
		ctl_json_string(&ctl->out, "message", err->message);
		ctl_json_object_end(&ctl->out);
		ctl_json_object_end(&ctl->out);
		ctl_json_finish(&ctl->out);
	} else {
		fprintf(stderr, "pkctl: %s: %s\n", pk_errc_name(err->code), err->message);
	}
	return CTL_EXIT_FAILED;
}

int ctl_usage_error(struct ctl *ctl, const char *fmt, ...)
{
	struct pk_error err = { PK_E_INVALID_ARGUMENT, "" };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	ctl_fail(ctl, &err);
	return CTL_EXIT_USAGE;
}
