/*
 * pkctl spm | domain | volume | image | task: the SPM's verbs.
 * Mutating calls go to whichever spmd of --spm holds the lease.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "ctl/ctl.h"
#include "ctl/show.h"

/* Options shared by the SPM commands; each command uses some. */
struct spm_opts {
	const char *domain;
	const char *image;
	const char *volume;
	const char *parent;
	const char *format;
	const char *capacity;
	const char *size;
	const char *description;
	const char *pvs;
	const char *task;
	const char *role;
	const char *legality;
	bool set_parent;
	bool force;
	bool post_zero;
	bool async;
};

enum {
	OPT_DOMAIN = 1000,
	OPT_IMAGE,
	OPT_VOLUME,
	OPT_PARENT,
	OPT_FORMAT,
	OPT_CAPACITY,
	OPT_SIZE,
	OPT_DESCRIPTION,
	OPT_PV,
	OPT_FORCE,
	OPT_POST_ZERO,
	OPT_ASYNC,
	OPT_ROLE,
	OPT_LEGALITY,
	OPT_NO_PARENT,
};

static int spm_opts_parse(struct ctl *ctl, int argc, char **argv, struct spm_opts *o)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "volume", required_argument, NULL, OPT_VOLUME },
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ "no-parent", no_argument, NULL, OPT_NO_PARENT },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "capacity", required_argument, NULL, OPT_CAPACITY },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "description", required_argument, NULL, OPT_DESCRIPTION },
		{ "pv", required_argument, NULL, OPT_PV },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "post-zero", no_argument, NULL, OPT_POST_ZERO },
		{ "async", no_argument, NULL, OPT_ASYNC },
		{ "role", required_argument, NULL, OPT_ROLE },
		{ "legality", required_argument, NULL, OPT_LEGALITY },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->domain = getenv("PK_DOMAIN");
	optind = 2; /* argv[0] = area, argv[1] = action */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_DOMAIN: o->domain = optarg; break;
		case OPT_IMAGE: o->image = optarg; break;
		case OPT_VOLUME: o->volume = optarg; break;
		case OPT_PARENT: o->parent = optarg; o->set_parent = true; break;
		case OPT_NO_PARENT: o->parent = ""; o->set_parent = true; break;
		case OPT_FORMAT: o->format = optarg; break;
		case OPT_CAPACITY: o->capacity = optarg; break;
		case OPT_SIZE: o->size = optarg; break;
		case OPT_DESCRIPTION: o->description = optarg; break;
		case OPT_PV: o->pvs = optarg; break;
		case OPT_FORCE: o->force = true; break;
		case OPT_POST_ZERO: o->post_zero = true; break;
		case OPT_ASYNC: o->async = true; break;
		case OPT_ROLE: o->role = optarg; break;
		case OPT_LEGALITY: o->legality = optarg; break;
		default:
			return ctl_usage_error(ctl, "%s %s: unknown option '%s'", argv[0], argv[1],
					       argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (!o->task && (!strcmp(argv[0], "task"))) {
			o->task = argv[optind];
		} else {
			return ctl_usage_error(ctl, "%s %s: unexpected argument '%s'", argv[0], argv[1],
					       argv[optind]);
		}
	}
	return 0;
}

static int need(struct ctl *ctl, const char *value, const char *what)
{
	if (!value || !*value) {
		return ctl_usage_error(ctl, "missing %s", what);
	}
	return 0;
}

/* Prints the outcome of a call whose response is already decoded. */
typedef void (*show_fn)(struct ctl *ctl, const Pk__Response *resp);

static int run(struct ctl *ctl, Pk__Request *req, bool direct, show_fn show)
{
	Pk__Response *resp = NULL;
	struct pk_error err = { PK_OK, "" };
	int r;

	r = direct ? ctl_call_spm_direct(ctl, req, &resp, &err)
		   : ctl_call(ctl, CTL_SPM, req, &resp, &err);
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

/* ---- spm start|stop|status ---------------------------------------------- */

static const Pk__SpmStatusResponse *spm_status_of(const Pk__Response *resp)
{
	switch (resp->result_case) {
	case PK__RESPONSE__RESULT_SPM_START:
		return resp->spm_start;
	case PK__RESPONSE__RESULT_SPM_STOP:
		return resp->spm_stop;
	default:
		return resp->spm_status;
	}
}

static void show_spm_status(struct ctl *ctl, const Pk__Response *resp)
{
	const Pk__SpmStatusResponse *s = spm_status_of(resp);

	if (ctl->json) {
		ctl_json_string(&ctl->out, "domain_id", s->domain_id);
		ctl_json_string(&ctl->out, "state", ctl_spm_state_name(s->state));
		ctl_json_int(&ctl->out, "host_id", s->host_id);
		ctl_json_int(&ctl->out, "spm_host_id", s->spm_host_id);
		ctl_json_uint(&ctl->out, "lease_version", s->lease_version);
		ctl_json_bool(&ctl->out, "recovery_pending", s->recovery_pending);
		return;
	}
	printf("domain %s: host %d is %s", s->domain_id, s->host_id, ctl_spm_state_name(s->state));
	if (s->spm_host_id) {
		printf("; SPM is host %d", s->spm_host_id);
	}
	if (s->recovery_pending) {
		printf("; recovery of interrupted work failed (see spmd's log): run `pkctl spm "
		       "start` again to retry it");
	}
	printf("\n");
}

int ctl_cmd_spm(struct ctl *ctl, int argc, char **argv)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__SpmStartRequest start = PK__SPM_START_REQUEST__INIT;
	Pk__SpmStopRequest stop = PK__SPM_STOP_REQUEST__INIT;
	Pk__SpmStatusRequest status = PK__SPM_STATUS_REQUEST__INIT;
	struct spm_opts o;
	int r;

	if (argc < 2) {
		return ctl_usage_error(ctl, "usage: pkctl spm start|stop|status [--domain ID]");
	}
	r = spm_opts_parse(ctl, argc, argv, &o);
	if (r) {
		return r;
	}
	if (!strcmp(argv[1], "start")) {
		start.domain_id = (char *)(o.domain ? o.domain : "");
		req.call_case = PK__REQUEST__CALL_SPM_START;
		req.spm_start = &start;
	} else if (!strcmp(argv[1], "stop")) {
		stop.domain_id = (char *)(o.domain ? o.domain : "");
		req.call_case = PK__REQUEST__CALL_SPM_STOP;
		req.spm_stop = &stop;
	} else if (!strcmp(argv[1], "status")) {
		status.domain_id = (char *)(o.domain ? o.domain : "");
		req.call_case = PK__REQUEST__CALL_SPM_STATUS;
		req.spm_status = &status;
	} else {
		return ctl_usage_error(ctl, "unknown action 'spm %s' (start, stop, status)", argv[1]);
	}
	return run(ctl, &req, true, show_spm_status);
}

/* ---- domain create|info --------------------------------------------------- */

static void show_domain(struct ctl *ctl, const Pk__Response *resp)
{
	const Pk__DomainInfoResponse *d = resp->result_case == PK__RESPONSE__RESULT_CREATE_DOMAIN
						  ? resp->create_domain
						  : resp->domain_info;
	char size[32], freeb[32], ext[32];

	if (ctl->json) {
		ctl_json_string(&ctl->out, "domain_id", d->domain_id);
		ctl_json_string(&ctl->out, "vg_name", d->vg_name);
		ctl_json_uint(&ctl->out, "version", d->version);
		ctl_json_uint(&ctl->out, "size", d->size);
		ctl_json_uint(&ctl->out, "free", d->free);
		ctl_json_uint(&ctl->out, "extent_size", d->extent_size);
		ctl_json_uint(&ctl->out, "volume_count", d->volume_count);
		ctl_json_string(&ctl->out, "description", d->description);
		ctl_json_array_begin(&ctl->out, "pvs");
		for (size_t i = 0; i < d->n_pvs; i++) {
			ctl_json_string(&ctl->out, NULL, d->pvs[i]);
		}
		ctl_json_array_end(&ctl->out);
		return;
	}
	printf("domain %s (VG %s, format %u)\n  size %s, free %s, extent %s, %u volumes\n  pvs:",
	       d->domain_id, d->vg_name, d->version, ctl_format_size(d->size, size, sizeof(size)),
	       ctl_format_size(d->free, freeb, sizeof(freeb)),
	       ctl_format_size(d->extent_size, ext, sizeof(ext)), d->volume_count);
	for (size_t i = 0; i < d->n_pvs; i++) {
		printf(" %s", d->pvs[i]);
	}
	printf("\n");
}

int ctl_cmd_domain(struct ctl *ctl, int argc, char **argv)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__CreateDomainRequest create = PK__CREATE_DOMAIN_REQUEST__INIT;
	Pk__DomainInfoRequest info = PK__DOMAIN_INFO_REQUEST__INIT;
	struct spm_opts o;
	char *pvs_copy = NULL;
	char *pv_list[64];
	int r;

	if (argc < 2) {
		return ctl_usage_error(ctl, "usage: pkctl domain create --pv DEV[,DEV...] [--domain ID] "
					    "[--description TEXT] | domain info [--domain ID]");
	}
	r = spm_opts_parse(ctl, argc, argv, &o);
	if (r) {
		return r;
	}
	if (!strcmp(argv[1], "create")) {
		size_t n = 0;
		char *save = NULL;
		if ((r = need(ctl, o.pvs, "--pv DEV[,DEV...]"))) {
			return r;
		}
		pvs_copy = strdup(o.pvs);
		for (char *p = strtok_r(pvs_copy, ",", &save); p && n < 64; p = strtok_r(NULL, ",", &save)) {
			pv_list[n++] = p;
		}
		create.domain_id = (char *)(o.domain ? o.domain : "");
		create.pvs = pv_list;
		create.n_pvs = n;
		create.description = (char *)(o.description ? o.description : "");
		req.call_case = PK__REQUEST__CALL_CREATE_DOMAIN;
		req.create_domain = &create;
		/* Formatting a domain is what makes an SPM possible: any spmd does it. */
		r = run(ctl, &req, true, show_domain);
		free(pvs_copy);
		return r;
	}
	if (!strcmp(argv[1], "info")) {
		if ((r = need(ctl, o.domain, "--domain ID (or PK_DOMAIN)"))) {
			return r;
		}
		info.domain_id = (char *)o.domain;
		req.call_case = PK__REQUEST__CALL_DOMAIN_INFO;
		req.domain_info = &info;
		return run(ctl, &req, false, show_domain);
	}
	return ctl_usage_error(ctl, "unknown action 'domain %s' (create, info)", argv[1]);
}

/* ---- volume create|delete|extend|info|update ------------------------------ */

static void show_task_and_volume(struct ctl *ctl, const Pk__TaskInfo *task,
				 const Pk__VolumeInfo *vol)
{
	if (ctl->json) {
		if (task) {
			ctl_json_task(&ctl->out, "task", task);
		}
		if (vol) {
			ctl_json_volume(&ctl->out, "volume", vol);
		}
		return;
	}
	if (vol) {
		ctl_print_volume(vol);
	}
	if (task && (task->state == PK__TASK_STATE__TASK_RUNNING || !vol)) {
		printf("task ");
		ctl_print_task(task);
	}
}

static void show_volume_result(struct ctl *ctl, const Pk__Response *resp)
{
	switch (resp->result_case) {
	case PK__RESPONSE__RESULT_CREATE_VOLUME:
		show_task_and_volume(ctl, resp->create_volume->task, resp->create_volume->volume);
		break;
	case PK__RESPONSE__RESULT_DELETE_VOLUME:
		show_task_and_volume(ctl, resp->delete_volume->task, NULL);
		break;
	case PK__RESPONSE__RESULT_EXTEND_VOLUME:
		show_task_and_volume(ctl, resp->extend_volume->task, resp->extend_volume->volume);
		break;
	case PK__RESPONSE__RESULT_REDUCE_VOLUME:
		show_task_and_volume(ctl, resp->reduce_volume->task, resp->reduce_volume->volume);
		break;
	case PK__RESPONSE__RESULT_VOLUME_INFO:
		show_task_and_volume(ctl, NULL, resp->volume_info->volume);
		break;
	case PK__RESPONSE__RESULT_UPDATE_VOLUME_META:
		show_task_and_volume(ctl, NULL, resp->update_volume_meta->volume);
		break;
	case PK__RESPONSE__RESULT_DELETE_IMAGE:
		show_task_and_volume(ctl, resp->delete_image->task, NULL);
		break;
	default:
		break;
	}
}

static int parse_size_opt(struct ctl *ctl, const char *value, const char *name, uint64_t *ret)
{
	if (!value) {
		*ret = 0;
		return 0;
	}
	if (ctl_parse_size(value, ret) < 0) {
		return ctl_usage_error(ctl, "%s '%s' is not a size (bytes, or with K, M, G, T)", name,
				       value);
	}
	return 0;
}

int ctl_cmd_volume(struct ctl *ctl, int argc, char **argv)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__CreateVolumeRequest cv = PK__CREATE_VOLUME_REQUEST__INIT;
	Pk__DeleteVolumeRequest dv = PK__DELETE_VOLUME_REQUEST__INIT;
	Pk__ExtendVolumeRequest ev = PK__EXTEND_VOLUME_REQUEST__INIT;
	Pk__ReduceVolumeRequest rv = PK__REDUCE_VOLUME_REQUEST__INIT;
	Pk__VolumeInfoRequest vi = PK__VOLUME_INFO_REQUEST__INIT;
	Pk__UpdateVolumeMetaRequest um = PK__UPDATE_VOLUME_META_REQUEST__INIT;
	struct spm_opts o;
	int r;

	if (argc < 2) {
		return ctl_usage_error(ctl,
				       "usage: pkctl volume create --image ID [--volume ID] [--parent ID] "
				       "--format raw|cow [--capacity SIZE] [--size SIZE] | delete --image ID "
				       "--volume ID [--force] [--post-zero] | extend --image ID --volume ID "
				       "--size SIZE | reduce --image ID --volume ID --size SIZE | info --image ID --volume ID | update --image ID --volume ID "
				       "[--parent ID|--no-parent] [--role leaf|internal] [--legality legal|illegal]");
	}
	r = spm_opts_parse(ctl, argc, argv, &o);
	if (r) {
		return r;
	}
	if ((r = need(ctl, o.domain, "--domain ID (or PK_DOMAIN)")) ||
	    (r = need(ctl, o.image, "--image ID"))) {
		return r;
	}
	if (!strcmp(argv[1], "create")) {
		if ((r = need(ctl, o.format, "--format raw|cow"))) {
			return r;
		}
		if (!strcasecmp(o.format, "raw")) {
			cv.format = PK__VOLUME_FORMAT__FORMAT_RAW;
		} else if (!strcasecmp(o.format, "cow") || !strcasecmp(o.format, "qcow2")) {
			cv.format = PK__VOLUME_FORMAT__FORMAT_COW;
		} else {
			return ctl_usage_error(ctl, "--format '%s' is not raw or cow", o.format);
		}
		if ((r = parse_size_opt(ctl, o.capacity, "--capacity", &cv.capacity)) ||
		    (r = parse_size_opt(ctl, o.size, "--size", &cv.initial_size))) {
			return r;
		}
		cv.domain_id = (char *)o.domain;
		cv.image_id = (char *)o.image;
		cv.volume_id = (char *)(o.volume ? o.volume : "");
		cv.parent_id = (char *)(o.parent ? o.parent : "");
		cv.description = (char *)(o.description ? o.description : "");
		cv.async = o.async;
		req.call_case = PK__REQUEST__CALL_CREATE_VOLUME;
		req.create_volume = &cv;
	} else if (!strcmp(argv[1], "delete")) {
		if ((r = need(ctl, o.volume, "--volume ID"))) {
			return r;
		}
		dv.domain_id = (char *)o.domain;
		dv.image_id = (char *)o.image;
		dv.volume_id = (char *)o.volume;
		dv.force = o.force;
		dv.post_zero = o.post_zero;
		dv.async = o.async;
		req.call_case = PK__REQUEST__CALL_DELETE_VOLUME;
		req.delete_volume = &dv;
	} else if (!strcmp(argv[1], "extend")) {
		if ((r = need(ctl, o.volume, "--volume ID")) || (r = need(ctl, o.size, "--size SIZE")) ||
		    (r = parse_size_opt(ctl, o.size, "--size", &ev.new_size))) {
			return r;
		}
		ev.domain_id = (char *)o.domain;
		ev.image_id = (char *)o.image;
		ev.volume_id = (char *)o.volume;
		ev.async = o.async;
		req.call_case = PK__REQUEST__CALL_EXTEND_VOLUME;
		req.extend_volume = &ev;
	} else if (!strcmp(argv[1], "reduce")) {
		if ((r = need(ctl, o.volume, "--volume ID")) || (r = need(ctl, o.size, "--size SIZE")) ||
		    (r = parse_size_opt(ctl, o.size, "--size", &rv.new_size))) {
			return r;
		}
		rv.domain_id = (char *)o.domain;
		rv.image_id = (char *)o.image;
		rv.volume_id = (char *)o.volume;
		rv.async = o.async;
		req.call_case = PK__REQUEST__CALL_REDUCE_VOLUME;
		req.reduce_volume = &rv;
	} else if (!strcmp(argv[1], "info")) {
		if ((r = need(ctl, o.volume, "--volume ID"))) {
			return r;
		}
		vi.domain_id = (char *)o.domain;
		vi.image_id = (char *)o.image;
		vi.volume_id = (char *)o.volume;
		req.call_case = PK__REQUEST__CALL_VOLUME_INFO;
		req.volume_info = &vi;
	} else if (!strcmp(argv[1], "update")) {
		if ((r = need(ctl, o.volume, "--volume ID"))) {
			return r;
		}
		um.domain_id = (char *)o.domain;
		um.image_id = (char *)o.image;
		um.volume_id = (char *)o.volume;
		um.set_parent = o.set_parent;
		um.parent_id = (char *)(o.parent ? o.parent : "");
		if (o.role) {
			um.role = !strcasecmp(o.role, "leaf")       ? PK__VOLUME_ROLE__ROLE_LEAF
				  : !strcasecmp(o.role, "internal") ? PK__VOLUME_ROLE__ROLE_INTERNAL
								    : PK__VOLUME_ROLE__ROLE_UNSPECIFIED;
			if (!um.role) {
				return ctl_usage_error(ctl, "--role '%s' is not leaf or internal", o.role);
			}
		}
		if (o.legality) {
			um.legality = !strcasecmp(o.legality, "legal")     ? PK__LEGALITY__LEGALITY_LEGAL
				      : !strcasecmp(o.legality, "illegal") ? PK__LEGALITY__LEGALITY_ILLEGAL
									   : PK__LEGALITY__LEGALITY_UNSPECIFIED;
			if (!um.legality) {
				return ctl_usage_error(ctl, "--legality '%s' is not legal or illegal",
						       o.legality);
			}
		}
		req.call_case = PK__REQUEST__CALL_UPDATE_VOLUME_META;
		req.update_volume_meta = &um;
	} else {
		return ctl_usage_error(ctl, "unknown action 'volume %s' (create, delete, extend, reduce, "
					    "info, update)", argv[1]);
	}
	return run(ctl, &req, false, show_volume_result);
}

/* ---- image chain|delete --------------------------------------------------- */

static void show_chain(struct ctl *ctl, const Pk__Response *resp)
{
	const Pk__ImageChainResponse *c = resp->image_chain;

	if (ctl->json) {
		ctl_json_volumes(&ctl->out, "chain", c->volumes, c->n_volumes);
		ctl_json_volumes(&ctl->out, "orphans", c->orphans, c->n_orphans);
		return;
	}
	ctl_print_volume_chain("chain", c->volumes, c->n_volumes);
	if (c->n_orphans) {
		printf("outside the chain (%zu):\n", c->n_orphans);
		for (size_t i = 0; i < c->n_orphans; i++) {
			printf("  - ");
			ctl_print_volume(c->orphans[i]);
		}
	}
}

int ctl_cmd_image(struct ctl *ctl, int argc, char **argv)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__ImageChainRequest ic = PK__IMAGE_CHAIN_REQUEST__INIT;
	Pk__DeleteImageRequest di = PK__DELETE_IMAGE_REQUEST__INIT;
	struct spm_opts o;
	int r;

	if (argc < 2) {
		return ctl_usage_error(ctl, "usage: pkctl image chain|delete --image ID [--force] "
					    "(spmd); image prepare|teardown|refresh|live-chain, chain --live "
					    "(hsmd)");
	}
	if (!strcmp(argv[1], "prepare") || !strcmp(argv[1], "teardown") ||
	    !strcmp(argv[1], "refresh") || !strcmp(argv[1], "live-chain")) {
		return ctl_cmd_image_hsm(ctl, argc, argv);
	}
	/* `image chain --live` compares metadata and live chains on an hsmd. */
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[1], "chain") && !strcmp(argv[i], "--live")) {
			return ctl_cmd_image_hsm(ctl, argc, argv);
		}
	}
	r = spm_opts_parse(ctl, argc, argv, &o);
	if (r) {
		return r;
	}
	if ((r = need(ctl, o.domain, "--domain ID (or PK_DOMAIN)")) ||
	    (r = need(ctl, o.image, "--image ID"))) {
		return r;
	}
	if (!strcmp(argv[1], "chain")) {
		ic.domain_id = (char *)o.domain;
		ic.image_id = (char *)o.image;
		req.call_case = PK__REQUEST__CALL_IMAGE_CHAIN;
		req.image_chain = &ic;
		return run(ctl, &req, false, show_chain);
	}
	if (!strcmp(argv[1], "delete")) {
		di.domain_id = (char *)o.domain;
		di.image_id = (char *)o.image;
		di.force = o.force;
		di.async = o.async;
		req.call_case = PK__REQUEST__CALL_DELETE_IMAGE;
		req.delete_image = &di;
		return run(ctl, &req, false, show_volume_result);
	}
	return ctl_usage_error(ctl, "unknown action 'image %s' (chain, delete, prepare, teardown)",
			       argv[1]);
}

/* ---- task list|show|clear ------------------------------------------------- */

static void show_tasks(struct ctl *ctl, const Pk__Response *resp)
{
	if (resp->result_case == PK__RESPONSE__RESULT_TASK_LIST) {
		if (ctl->json) {
			ctl_json_array_begin(&ctl->out, "tasks");
			for (size_t i = 0; i < resp->task_list->n_tasks; i++) {
				ctl_json_task(&ctl->out, NULL, resp->task_list->tasks[i]);
			}
			ctl_json_array_end(&ctl->out);
		} else {
			for (size_t i = 0; i < resp->task_list->n_tasks; i++) {
				ctl_print_task(resp->task_list->tasks[i]);
			}
		}
	} else if (resp->result_case == PK__RESPONSE__RESULT_TASK_GET) {
		if (ctl->json) {
			ctl_json_task(&ctl->out, "task", resp->task_get->task);
		} else {
			ctl_print_task(resp->task_get->task);
		}
	} else if (!ctl->json) {
		printf("cleared\n");
	}
}

/* Pages an spmd answers before pkctl stops following next_page_token (a loop guard). */
#define TASK_LIST_PAGES_MAX 10000

/* `task list`: every page, newest first, printed as one list. */
static int task_list_all(struct ctl *ctl)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__TaskListRequest tl = PK__TASK_LIST_REQUEST__INIT;
	struct pk_error err = { PK_OK, "" };
	char *token = NULL;
	bool begun = false;
	int rc = CTL_EXIT_OK;

	req.call_case = PK__REQUEST__CALL_TASK_LIST;
	req.task_list = &tl;
	for (unsigned page = 0; page < TASK_LIST_PAGES_MAX; page++) {
		Pk__Response *resp = NULL;
		const Pk__TaskListResponse *l;

		tl.page_token = token ? token : "";
		/* Tasks live on the spmd that ran them: ask the one named first. */
		if (ctl_call_spm_direct(ctl, &req, &resp, &err) < 0) {
			break;
		}
		if (ctl->json && !begun) {
			ctl_json_init(&ctl->out, stdout);
			ctl_json_object_begin(&ctl->out, NULL);
			ctl_json_array_begin(&ctl->out, "tasks");
		}
		begun = true;
		l = resp->task_list;
		for (size_t i = 0; l && i < l->n_tasks; i++) {
			if (ctl->json) {
				ctl_json_task(&ctl->out, NULL, l->tasks[i]);
			} else {
				ctl_print_task(l->tasks[i]);
			}
		}
		free(token);
		token = l && l->next_page_token && *l->next_page_token
				? pk_xstrdup(l->next_page_token)
				: NULL;
		pk__response__free_unpacked(resp, NULL);
		if (!token) {
			break;
		}
	}
	free(token);
	if (ctl->json && begun) {
		ctl_json_array_end(&ctl->out);
		ctl_json_object_end(&ctl->out);
		ctl_json_finish(&ctl->out);
	}
	if (err.code != PK_OK) {
		/* A later page failing still fails the command: the list is incomplete. */
		rc = ctl_fail(ctl, &err);
	}
	return rc;
}

int ctl_cmd_task(struct ctl *ctl, int argc, char **argv)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__TaskGetRequest tg = PK__TASK_GET_REQUEST__INIT;
	Pk__TaskClearRequest tc = PK__TASK_CLEAR_REQUEST__INIT;
	struct spm_opts o;
	int r;

	if (argc < 2) {
		return ctl_usage_error(ctl, "usage: pkctl task list | show ID | clear ID");
	}
	r = spm_opts_parse(ctl, argc, argv, &o);
	if (r) {
		return r;
	}
	if (!strcmp(argv[1], "list")) {
		return task_list_all(ctl);
	} else if (!strcmp(argv[1], "show")) {
		if ((r = need(ctl, o.task, "task ID"))) {
			return r;
		}
		tg.task_id = (char *)o.task;
		req.call_case = PK__REQUEST__CALL_TASK_GET;
		req.task_get = &tg;
	} else if (!strcmp(argv[1], "clear")) {
		if ((r = need(ctl, o.task, "task ID"))) {
			return r;
		}
		tc.task_id = (char *)o.task;
		req.call_case = PK__REQUEST__CALL_TASK_CLEAR;
		req.task_clear = &tc;
	} else {
		return ctl_usage_error(ctl, "unknown action 'task %s' (list, show, clear)", argv[1]);
	}
	/* Tasks live on the spmd that ran them: ask the one named first. */
	return run(ctl, &req, true, show_tasks);
}
