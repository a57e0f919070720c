/*
 * SPM benchmark: CreateVolume + DeleteVolume through spmd (RPC, in-process
 * LVM, metadata tags, the lease check) next to the bare `lvcreate` +
 * `lvremove` commands on the same VG, at 10, 100 and 1000 LVs in the VG,
 * in the same run. The bare commands run twice: with LVM's distro defaults
 * (what an administrator's lvcreate does here, only activation=0 and a
 * device filter added) and with the same tuned settings spmd uses.
 *
 *   pk-bench-spm --spm URL --domain UUID --pvs DEV,DEV [--iterations K]
 *                [--counts 10,100,1000]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/rpc.h"
#include "common/uuid.h"
#include "common/xalloc.h"
#include "proto/codec.h"

static char *filter_of(const char *pvs)
{
	char *copy = pk_xstrdup(pvs), *save = NULL, *out = pk_xstrdup("");

	for (char *d = strtok_r(copy, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
		char *n = pk_xasprintf("%s\"a|^%s$|\",", out, d);
		free(out);
		out = n;
	}
	free(copy);
	{
		char *n = pk_xasprintf("%s\"r|.*|\"", out);
		free(out);
		out = n;
	}
	return out;
}

static int lvm_cli(const char *config, const char *const *args)
{
	const char *argv[16];
	struct pk_error err;
	size_t n = 0;

	argv[n++] = "lvm";
	argv[n++] = args[0];
	argv[n++] = "--config";
	argv[n++] = config;
	for (size_t i = 1; args[i] && n < 15; i++) {
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	if (pk_proc_check(argv, 120000, PK_E_INTERNAL, NULL, &err) < 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		return -1;
	}
	return 0;
}

static int count_lvs(const char *config, const char *vg)
{
	const char *argv[] = { "lvm", "lvs", "--config", config, "--noheadings", "-o", "lv_name", vg, NULL };
	struct pk_error err;
	char *out = NULL;
	int n = 0;

	if (pk_proc_check(argv, 120000, PK_E_INTERNAL, &out, &err) < 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		return -1;
	}
	for (char *p = out; *p; p++) {
		n += *p == '\n';
	}
	free(out);
	return n;
}

static int spm_cycle(struct pk_rpc_client *c, const char *domain, double *ret_ms)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__CreateVolumeRequest cv = PK__CREATE_VOLUME_REQUEST__INIT;
	Pk__DeleteVolumeRequest dv = PK__DELETE_VOLUME_REQUEST__INIT;
	Pk__Response *resp = NULL;
	char image[PK_UUID_BUFLEN], volume[PK_UUID_BUFLEN];
	struct pk_error err;
	double t0 = (double)pk_clock_monotonic_us() / 1e3;

	pk_uuid_generate(image);
	pk_uuid_generate(volume);
	cv.domain_id = (char *)domain;
	cv.image_id = image;
	cv.volume_id = volume;
	cv.format = PK__VOLUME_FORMAT__FORMAT_RAW;
	cv.capacity = 4 << 20;
	req.call_case = PK__REQUEST__CALL_CREATE_VOLUME;
	req.create_volume = &cv;
	if (pk_codec_call(c, &req, 60000, &resp, NULL, &err) < 0) {
		fprintf(stderr, "bench: create: %s\n", err.message);
		return -1;
	}
	pk__response__free_unpacked(resp, NULL);
	dv.domain_id = (char *)domain;
	dv.image_id = image;
	dv.volume_id = volume;
	dv.force = true; /* the only volume of its image is its leaf: refused without force */
	req = (Pk__Request)PK__REQUEST__INIT;
	req.call_case = PK__REQUEST__CALL_DELETE_VOLUME;
	req.delete_volume = &dv;
	if (pk_codec_call(c, &req, 60000, &resp, NULL, &err) < 0) {
		fprintf(stderr, "bench: delete: %s\n", err.message);
		return -1;
	}
	pk__response__free_unpacked(resp, NULL);
	*ret_ms = (double)pk_clock_monotonic_us() / 1e3 - t0;
	return 0;
}

static int cli_cycle(const char *config, const char *vg, int i, double *ret_ms)
{
	char name[64], full[256];
	double t0 = (double)pk_clock_monotonic_us() / 1e3;

	snprintf(name, sizeof(name), "pkbench-%d", i);
	snprintf(full, sizeof(full), "%s/%s", vg, name);
	{
		const char *create[] = { "lvcreate", "-q", "-y", "-n", name, "-L", "4m", vg, NULL };
		const char *remove[] = { "lvremove", "-q", "-f", full, NULL };
		if (lvm_cli(config, create) < 0 || lvm_cli(config, remove) < 0) {
			return -1;
		}
	}
	*ret_ms = (double)pk_clock_monotonic_us() / 1e3 - t0;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "spm", required_argument, NULL, 's' },
		{ "domain", required_argument, NULL, 'd' },
		{ "pvs", required_argument, NULL, 'p' },
		{ "iterations", required_argument, NULL, 'i' },
		{ "counts", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *domain = NULL, *pvs = NULL, *counts = "10,100,1000";
	int iterations = 10, c, filled = 0;
	struct pk_rpc_client *client = NULL;
	struct pk_error err;
	char *filter, *cfg_default, *cfg_tuned, *copy, *save = NULL;

	pk_log_setup("bench", PK_LOG_ERROR);
	while ((c = getopt_long(argc, argv, "s:d:p:i:c:", opts, NULL)) != -1) {
		switch (c) {
		case 's': url = optarg; break;
		case 'd': domain = optarg; break;
		case 'p': pvs = optarg; break;
		case 'i': iterations = atoi(optarg); break;
		case 'c': counts = optarg; break;
		default:
			return 2;
		}
	}
	if (!url || !domain || !pvs || iterations < 1) {
		fprintf(stderr, "usage: %s --spm URL --domain UUID --pvs DEV,DEV [--iterations K] "
				"[--counts 10,100,1000]\n", argv[0]);
		return 2;
	}
	filter = filter_of(pvs);
	cfg_default = pk_xasprintf("global{activation=0} devices{filter=[%s] global_filter=[%s] "
				   "obtain_device_list_from_udev=0}", filter, filter);
	cfg_tuned = pk_xasprintf("global{activation=0 use_aio=0 use_lvmlockd=0} devices{filter=[%s] "
				 "global_filter=[%s] obtain_device_list_from_udev=0 use_devicesfile=0 "
				 "hints=\"none\"} activation{udev_sync=0 udev_rules=0 monitoring=0} "
				 "backup{backup=0 archive=0}", filter, filter);
	if (pk_rpc_client_new(url, 1 << 22, &client, &err) < 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		return 1;
	}
	printf("SPM benchmark: one CreateVolume(RAW 4 MiB) + DeleteVolume through spmd vs bare "
	       "lvcreate + lvremove, median of %d cycles\n\n", iterations);
	printf("%6s %14s %14s %14s %12s %12s\n", "LVs", "spmd ms", "bare-default", "bare-tuned",
	       "vs default", "vs tuned");
	copy = pk_xstrdup(counts);
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int want = atoi(t), have = count_lvs(cfg_tuned, domain);
		double *a = pk_xcalloc((size_t)iterations, sizeof(double));
		double *b = pk_xcalloc((size_t)iterations, sizeof(double));
		double *d = pk_xcalloc((size_t)iterations, sizeof(double));
		double ms, mb, md;

		if (have < 0) {
			return 1;
		}
		/* Fill the VG up to `want` LVs (small ones) with the tuned CLI. */
		while (have < want) {
			char name[64];
			const char *create[] = { "lvcreate", "-q", "-y", "-n", name, "-L", "4m", domain, NULL };
			snprintf(name, sizeof(name), "pkfill-%d", filled++);
			if (lvm_cli(cfg_tuned, create) < 0) {
				return 1;
			}
			have++;
		}
		for (int i = 0; i < iterations; i++) {
			if (spm_cycle(client, domain, &a[i]) < 0 || cli_cycle(cfg_default, domain, i, &b[i]) < 0 ||
			    cli_cycle(cfg_tuned, domain, i, &d[i]) < 0) {
				return 1;
			}
		}
		ms = median(a, iterations);
		mb = median(b, iterations);
		md = median(d, iterations);
		printf("%6d %14.1f %14.1f %14.1f %12.2f %12.2f\n", have, ms, mb, md, ms / mb, ms / md);
		fflush(stdout);
		free(a);
		free(b);
		free(d);
	}
	free(copy);
	free(filter);
	free(cfg_default);
	free(cfg_tuned);
	pk_rpc_client_free(client);
	return 0;
}
