/*
 * pkctl image prepare|teardown|refresh|live-chain: hsmd verbs on this host's
 * view of images; and the printers of hsmd's objects (VMs, chains) that
 * ctl/cmd_vm.c shares.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/show.h"

/* ---- printers ---------------------------------------------------------------- */

static const char *vm_type_name(Pk__DomainType t)
{
	switch (t) {
	case PK__DOMAIN_TYPE__DOMAIN_TYPE_KVM:
		return "kvm";
	case PK__DOMAIN_TYPE__DOMAIN_TYPE_QEMU:
		return "qemu";
	default:
		return "auto";
	}
}

void ctl_json_vm(struct ctl_json *j, const char *key, const Pk__VmInfo *vm)
{
	ctl_json_object_begin(j, key);
	ctl_json_string(j, "name", vm->name);
	ctl_json_string(j, "uuid", vm->uuid);
	ctl_json_string(j, "state", vm->state);
	if (vm->state_reason && *vm->state_reason) {
		ctl_json_string(j, "state_reason", vm->state_reason);
	}
	if (vm->waiting && *vm->waiting) {
		ctl_json_string(j, "waiting", vm->waiting);
	}
	ctl_json_string(j, "type", vm_type_name(vm->type));
	ctl_json_array_begin(j, "drives");
	for (size_t i = 0; i < vm->n_drives; i++) {
		const Pk__DriveInfo *d = vm->drives[i];
		ctl_json_object_begin(j, NULL);
		ctl_json_string(j, "target", d->target);
		ctl_json_string(j, "domain_id", d->domain_id);
		ctl_json_string(j, "image_id", d->image_id);
		ctl_json_string(j, "volume_id", d->volume_id);
		ctl_json_array_begin(j, "live_chain");
		for (size_t k = 0; k < d->n_live_chain; k++) {
			ctl_json_string(j, NULL, d->live_chain[k]);
		}
		ctl_json_array_end(j);
		if (d->job_id && *d->job_id) {
			ctl_json_string(j, "job_id", d->job_id);
		}
		ctl_json_object_end(j);
	}
	ctl_json_array_end(j);
	ctl_json_object_end(j);
}

void ctl_print_vm(const Pk__VmInfo *vm)
{
	printf("%s  %s  %s%s%s (%s)\n", vm->name, vm->uuid, vm->state,
	       vm->state_reason && *vm->state_reason ? ": " : "",
	       vm->state_reason ? vm->state_reason : "", vm_type_name(vm->type));
	if (vm->waiting && *vm->waiting) {
		printf("  waiting: %s\n", vm->waiting);
	}
	for (size_t i = 0; i < vm->n_drives; i++) {
		const Pk__DriveInfo *d = vm->drives[i];
		printf("  %-4s image %s leaf %s\n", d->target, d->image_id, d->volume_id);
		printf("       chain:");
		for (size_t k = 0; k < d->n_live_chain; k++) {
			printf("%s%s", k ? " <- " : " ", d->live_chain[k]);
		}
		printf("%s\n", d->n_live_chain ? "" : " (unknown)");
		if (d->job_id && *d->job_id) {
			printf("       job %s\n", d->job_id);
		}
	}
}

void ctl_show_volume_chain(struct ctl *ctl, const Pk__Response *resp)
{
	const Pk__GetVolumeChainResponse *c = resp->get_volume_chain;

	if (ctl->json) {
		ctl_json_array_begin(&ctl->out, "metadata_chain");
		for (size_t i = 0; i < c->n_metadata_chain; i++) {
			ctl_json_string(&ctl->out, NULL, c->metadata_chain[i]);
		}
		ctl_json_array_end(&ctl->out);
		ctl_json_array_begin(&ctl->out, "live_chain");
		for (size_t i = 0; i < c->n_live_chain; i++) {
			ctl_json_string(&ctl->out, NULL, c->live_chain[i]);
		}
		ctl_json_array_end(&ctl->out);
		ctl_json_string(&ctl->out, "live_source", c->live_source);
		ctl_json_bool(&ctl->out, "consistent", c->consistent);
		return;
	}
	printf("metadata chain (leaf first):\n");
	for (size_t i = 0; i < c->n_metadata_chain; i++) {
		printf("  %zu %s\n", i, c->metadata_chain[i]);
	}
	printf("live chain from %s:\n", c->live_source);
	for (size_t i = 0; i < c->n_live_chain; i++) {
		printf("  %zu %s\n", i, c->live_chain[i]);
	}
	printf("%s\n", c->consistent ? "consistent" : "INCONSISTENT: metadata and live chain differ");
}

int ctl_hsm_run(struct ctl *ctl, Pk__Request *req,
		void (*show)(struct ctl *ctl, const Pk__Response *resp))
{
	Pk__Response *resp = NULL;
	struct pk_error err = { PK_OK, "" };
	int r;

	r = ctl_call(ctl, CTL_HSM, req, &resp, &err);
	if (r < 0) {
		return ctl_fail(ctl, &err);
	}
	if (ctl->json) {
		ctl_json_init(&ctl->out, stdout);
		ctl_json_object_begin(&ctl->out, NULL);
	}
	show(ctl, resp);
	if (ctl->json) {
		ctl_json_object_end(&ctl->out);
		ctl_json_finish(&ctl->out);
	}
	pk__response__free_unpacked(resp, NULL);
	return CTL_EXIT_OK;
}

/* ---- image prepare|teardown|refresh|live-chain ----------------------------------- */

static void show_prepared(struct ctl *ctl, const Pk__Response *resp)
{
	const Pk__PrepareImageResponse *p = resp->prepare_image;

	if (ctl->json) {
		ctl_json_volumes(&ctl->out, "volumes", p->volumes, p->n_volumes);
		return;
	}
	ctl_print_volume_chain("prepared", p->volumes, p->n_volumes);
}

static void show_done(struct ctl *ctl, const Pk__Response *resp)
{
	if (resp->result_case == PK__RESPONSE__RESULT_REFRESH_VOLUME) {
		char lv[32];
		if (ctl->json) {
			ctl_json_uint(&ctl->out, "lv_size", resp->refresh_volume->lv_size);
		} else {
			printf("refreshed: LV %s\n",
			       ctl_format_size(resp->refresh_volume->lv_size, lv, sizeof(lv)));
		}
	} else if (!ctl->json) {
		printf("torn down\n");
	}
}

enum { OPT_DOMAIN = 1000, OPT_IMAGE, OPT_VOLUME, OPT_FORCE, OPT_VM, OPT_DRIVE, OPT_LIVE };

int ctl_cmd_image_hsm(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "volume", required_argument, NULL, OPT_VOLUME },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "vm", required_argument, NULL, OPT_VM },
		{ "drive", required_argument, NULL, OPT_DRIVE },
		{ "live", no_argument, NULL, OPT_LIVE },
		{ NULL, 0, NULL, 0 },
	};
	Pk__Request req = PK__REQUEST__INIT;
	Pk__PrepareImageRequest pi = PK__PREPARE_IMAGE_REQUEST__INIT;
	Pk__TeardownImageRequest ti = PK__TEARDOWN_IMAGE_REQUEST__INIT;
	Pk__RefreshVolumeRequest rv = PK__REFRESH_VOLUME_REQUEST__INIT;
	Pk__GetVolumeChainRequest gc = PK__GET_VOLUME_CHAIN_REQUEST__INIT;
	const char *domain = getenv("PK_DOMAIN"), *image = NULL, *volume = NULL;
	const char *vm = NULL, *drive = NULL;
	const char *action = argc > 1 ? argv[1] : "";
	bool force = false;
	int c;

	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_DOMAIN: domain = optarg; break;
		case OPT_IMAGE: image = optarg; break;
		case OPT_VOLUME: volume = optarg; break;
		case OPT_FORCE: force = true; break;
		case OPT_VM: vm = optarg; break;
		case OPT_DRIVE: drive = optarg; break;
		case OPT_LIVE: break;
		default:
			return ctl_usage_error(ctl, "image %s: unknown option '%s'", action,
					       argv[optind - 1]);
		}
	}
	if (optind < argc) {
		return ctl_usage_error(ctl, "image %s: unexpected argument '%s'", action, argv[optind]);
	}
	if (!strcmp(action, "live-chain") || !strcmp(action, "chain")) {
		/* GetVolumeChain: --image (+ --domain), or --vm with --drive or --image. */
		if (!vm && (!image || !domain)) {
			return ctl_usage_error(ctl, "image %s needs --image ID (and --domain ID or "
						    "PK_DOMAIN), or --vm NAME --drive vdX", action);
		}
		gc.domain_id = (char *)(image && domain ? domain : "");
		gc.image_id = (char *)(image ? image : "");
		gc.vm = (char *)(vm ? vm : "");
		gc.drive = (char *)(drive ? drive : "");
		req.call_case = PK__REQUEST__CALL_GET_VOLUME_CHAIN;
		req.get_volume_chain = &gc;
		return ctl_hsm_run(ctl, &req, ctl_show_volume_chain);
	}
	if (!domain || !*domain) {
		return ctl_usage_error(ctl, "missing --domain ID (or PK_DOMAIN)");
	}
	if (!image || !*image) {
		return ctl_usage_error(ctl, "missing --image ID");
	}
	if (!strcmp(action, "prepare")) {
		pi.domain_id = (char *)domain;
		pi.image_id = (char *)image;
		pi.volume_id = (char *)(volume ? volume : "");
		req.call_case = PK__REQUEST__CALL_PREPARE_IMAGE;
		req.prepare_image = &pi;
		return ctl_hsm_run(ctl, &req, show_prepared);
	}
	if (!strcmp(action, "teardown")) {
		ti.domain_id = (char *)domain;
		ti.image_id = (char *)image;
		ti.force = force;
		req.call_case = PK__REQUEST__CALL_TEARDOWN_IMAGE;
		req.teardown_image = &ti;
		return ctl_hsm_run(ctl, &req, show_done);
	}
	if (!strcmp(action, "refresh")) {
		if (!volume || !*volume) {
			return ctl_usage_error(ctl, "missing --volume ID");
		}
		rv.domain_id = (char *)domain;
		rv.image_id = (char *)image;
		rv.volume_id = (char *)volume;
		req.call_case = PK__REQUEST__CALL_REFRESH_VOLUME;
		req.refresh_volume = &rv;
		return ctl_hsm_run(ctl, &req, show_done);
	}
	return ctl_usage_error(ctl, "unknown action 'image %s' (hsmd: prepare, teardown, refresh, "
				    "live-chain)", action);
}
