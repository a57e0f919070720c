/*
 * pkctl snapshot delete: deletes a snapshot volume of a VM by the engine
 * flow of ctl/flow_snapshot_delete.c (the steps, and why re-running is
 * safe, are there); here the options, the progress display (a progress bar
 * on a terminal, plain lines otherwise, nothing with --json) and the
 * result. Merge jobs themselves: ctl/cmd_merge.c.
 */
#include <stdio.h>
#include <string.h>

#include "common/uuid.h"
#include "ctl/cmd_merge.h"
#include "ctl/flow.h"
#include "ctl/show.h"

static void print_deleted(struct ctl *ctl, const struct ctl_snapshot_delete_result *res)
{
	const char *volume = res->volume, *drive = res->drive;
	const Pk__JobInfo *job = res->job;
	const Pk__GetVolumeChainResponse *chain = res->chain;
	uint64_t ms = res->elapsed_ms;

	if (ctl->json) {
		ctl_json_init(&ctl->out, stdout);
		ctl_json_object_begin(&ctl->out, NULL);
		ctl_json_string(&ctl->out, "volume_id", volume);
		ctl_json_string(&ctl->out, "drive", drive);
		ctl_json_string(&ctl->out, "how", res->how);
		ctl_json_bool(&ctl->out, "deleted", true);
		ctl_json_bool(&ctl->out, "already_deleted", res->already_deleted);
		ctl_json_uint(&ctl->out, "elapsed_ms", ms);
		if (job) {
			ctl_json_job(&ctl->out, "job", job);
		}
		if (chain) {
			ctl_json_array_begin(&ctl->out, "chain");
			for (size_t i = 0; i < chain->n_metadata_chain; i++) {
				ctl_json_string(&ctl->out, NULL, chain->metadata_chain[i]);
			}
			ctl_json_array_end(&ctl->out);
		}
		ctl_json_object_end(&ctl->out);
		ctl_json_finish(&ctl->out);
		return;
	}
	if (res->already_deleted) {
		printf("volume %s: already deleted (by an earlier or a concurrent run); nothing to "
		       "do\n", volume);
	} else {
		printf("volume %s: %s%s%s, deleted in %.2f s\n", volume, res->how,
		       job ? " into " : "",
		       job ? (job->kind == PK__JOB_KIND__PULL ? job->top_id : job->base_id) : "",
		       (double)ms / 1000.0);
	}
	if (chain) {
		printf("chain of %s:", drive);
		for (size_t i = 0; i < chain->n_metadata_chain; i++) {
			printf(" %s%s", i ? "<- " : "", chain->metadata_chain[i]);
		}
		printf("\n");
	}
}

static int snapshot_delete(struct ctl *ctl, const struct ctl_merge_opts *o)
{
	struct pk_error err = { PK_OK, "" };
	struct ctl_snapshot_delete_opts fo = { 0 };
	struct ctl_snapshot_delete_result res;
	Pk__MergeDirection dir = PK__MERGE_DIRECTION__MERGE_COMMIT;
	struct ctl_watch w;
	uint64_t bw = 0;
	int r;

	if (!o->vm || !o->volume) {
		return ctl_usage_error(ctl, "usage: pkctl snapshot delete --vm NAME --volume ID "
					    "[--direction commit|pull] [--bandwidth BYTES/s] "
					    "[--no-progress]");
	}
	if (!pk_uuid_valid(o->volume)) {
		return ctl_usage_error(ctl, "--volume '%s' is not a UUID", o->volume);
	}
	r = ctl_parse_bandwidth(ctl, o->bandwidth, &bw);
	if (r == 0 && o->direction) {
		r = ctl_parse_direction(ctl, o->direction, &dir);
	}
	if (r) {
		return r;
	}
	fo.vm = o->vm;
	fo.volume = o->volume;
	fo.direction = dir;
	fo.direction_set = o->direction != NULL;
	fo.bandwidth = bw;
	ctl_progress_init(&w, ctl, !o->no_progress);
	r = ctl_flow_snapshot_delete(ctl, &fo, &w.report, &res, &err);
	ctl_progress_end(&w);
	if (r < 0) {
		return ctl_fail(ctl, &err);
	}
	print_deleted(ctl, &res);
	ctl_snapshot_delete_result_release(&res);
	return CTL_EXIT_OK;
}

int ctl_cmd_snapshot(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_merge_opts o;
	int r;

	if (argc < 2 || strcmp(argv[1], "delete") != 0) {
		return ctl_usage_error(ctl, "usage: pkctl snapshot delete --vm NAME --volume ID "
					    "[--direction commit|pull] [--bandwidth BYTES/s] "
					    "[--no-progress]   (take snapshots with: pkctl vm snapshot)");
	}
	r = ctl_merge_opts_parse(ctl, argc, argv, 2, &o);
	return r ? r : snapshot_delete(ctl, &o);
}
