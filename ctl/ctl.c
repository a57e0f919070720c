#include "ctl/ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static int ctl_no_address(enum ctl_target target, struct pk_error *err)
{
	return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
			    "no %s address: pass --%s URL or set %s",
			    target == CTL_HSM ? "hsmd" : "spmd", target == CTL_HSM ? "hsm" : "spm",
			    target == CTL_HSM ? "PK_HSM" : "PK_SPM");
}

static int ctl_spm(struct ctl *ctl, struct pk_error *err)
{
	int r;

	if (!ctl->spm) {
		if (!ctl->spm_url) {
			return ctl_no_address(CTL_SPM, err);
		}
		r = pk_spm_client_new(ctl->spm_url, &ctl->spm, err);
		if (r == 0) {
			r = pk_spm_client_set_tls(ctl->spm, &ctl->tls, err);
		}
		if (r < 0) {
			pk_spm_client_free(ctl->spm);
			ctl->spm = NULL;
			return r;
		}
	}
	return 0;
}

int ctl_call(struct ctl *ctl, enum ctl_target target, Pk__Request *req,
	     Pk__Response **ret_resp, struct pk_error *err)
{
	int r;

	if (target == CTL_SPM) {
		r = ctl_spm(ctl, err);
		if (r < 0) {
			return r;
		}
		return pk_spm_client_call(ctl->spm, req, ctl->timeout_ms, ret_resp, err);
	}
	if (!ctl->hsm) {
		if (!ctl->hsm_url) {
			return ctl_no_address(CTL_HSM, err);
		}
		r = pk_rpc_client_new(ctl->hsm_url, PK_MAX_MESSAGE_DEFAULT * 4, &ctl->hsm, err);
		if (r == 0) {
			r = pk_rpc_client_set_tls(ctl->hsm, &ctl->tls, err);
		}
		if (r < 0) {
			pk_rpc_client_free(ctl->hsm);
			ctl->hsm = NULL;
			return r;
		}
	}
	return pk_codec_call(ctl->hsm, req, ctl->timeout_ms, ret_resp, NULL, err);
}

int ctl_call_discard(struct ctl *ctl, enum ctl_target target, Pk__Request *req,
		     struct pk_error *err)
{
	Pk__Response *resp = NULL;
	int r = ctl_call(ctl, target, req, &resp, err);

	if (resp) {
		pk__response__free_unpacked(resp, NULL);
	}
	return r;
}

int ctl_vm_get(struct ctl *ctl, const char *name, Pk__Response **ret_resp,
	       const Pk__VmInfo **ret_vm, struct pk_error *err)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__VmListRequest vl = PK__VM_LIST_REQUEST__INIT;
	Pk__Response *resp = NULL;
	int r;

	vl.name = (char *)name;
	req.call_case = PK__REQUEST__CALL_VM_LIST;
	req.vm_list = &vl;
	r = ctl_call(ctl, CTL_HSM, &req, &resp, err);
	if (r == 0 && resp->vm_list->n_vms != 1) {
		r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "no VM named '%s' on this host", name);
	}
	if (r < 0) {
		if (resp) {
			pk__response__free_unpacked(resp, NULL);
		}
		return r;
	}
	*ret_resp = resp;
	*ret_vm = resp->vm_list->vms[0];
	return 0;
}

int ctl_call_spm_direct(struct ctl *ctl, Pk__Request *req, Pk__Response **ret_resp,
			struct pk_error *err)
{
	int r = ctl_spm(ctl, err);

	if (r < 0) {
		return r;
	}
	return pk_codec_call(pk_spm_client_at(ctl->spm, 0), req, ctl->timeout_ms, ret_resp, NULL,
			     err);
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
	return err->code == PK_E_PERMISSION_DENIED ? CTL_EXIT_DENIED : CTL_EXIT_FAILED;
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
