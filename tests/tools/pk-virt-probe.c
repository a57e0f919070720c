/*
 * pk-virt-probe — drives hsm/virt.h and hsm/vmxml.h against a real
 * libvirtd for integration tests (tests/integration/test_virt.sh).
 *
 * Usage: pk-virt-probe [--uri URI] [--keepalive INTERVAL_S COUNT] < commands
 *
 * Reads one command per line from stdin, runs it, prints "ok: ..." or
 * "FAIL: ..." and exits 1 at the first failure (0 at EOF). Blank lines
 * and lines starting with '#' are skipped. Words are separated by blanks
 * (paths must not contain any).
 *
 *   create VM XMLFILE                 define + start (hsm_virt_domain_create)
 *   build-create VM TYPE MEM SERIAL T=PATH[:FMT]...
 *                                     build the XML with hsm_vmxml (qcow2 by
 *                                     default, virtio, made-up ids) and create
 *   show VM                           print every disk's live chain
 *   dump-xml VM FILE                  write the live XML to FILE
 *   expect-chain VM DISK PATH...      live chain leaf -> base is exactly PATH...
 *   expect-mirror VM DISK STATE       none|syncing|ready|...
 *   expect-state VM STATE             running|shutoff|paused...
 *   expect-list VM...                 poolkeeper's domains are exactly VM...
 *   expect-metadata VM DISK VOLUME    our metadata names VOLUME for DISK
 *   set-volume VM DISK VOLUME         rewrite our metadata: DISK's leaf is VOLUME
 *   snapshot VM [quiesce] DISK=PATH...
 *   commit VM DISK BASEPATH TOPPATH [BW]   (paths resolved to vda[N])
 *   active-commit VM DISK BASEPATH [BW]
 *   pull VM DISK BASEPATH|none [BW]
 *   pivot VM DISK | abort VM DISK
 *   set-bandwidth VM DISK BW
 *   expect-job VM DISK none|TYPE [BW]     job info: no job, or type (and bandwidth)
 *   wait-job VM DISK STATUS SECONDS   wait for a BLOCK_JOB_2 event
 *   wait-lifecycle VM EVENT SECONDS   wait for a lifecycle event
 *   wait-disconnected SECONDS | wait-reconnect SECONDS
 *   destroy VM
 *   fail CODE COMMAND...              COMMAND must fail with pk error CODE
 *   sh COMMAND...                     run a shell command (must exit 0)
 *   sleep SECONDS
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "hsm/virt.h"
#include "tests/lib/virt_probe_steps.h"

#define MAX_WORDS 64

static void push_event(struct probe *p, const struct event *ev)
{
	pthread_mutex_lock(&p->lock);
	if (p->nevents == MAX_EVENTS) {
		memmove(p->events, p->events + 1, (MAX_EVENTS - 1) * sizeof(p->events[0]));
		p->nevents--;
	}
	p->events[p->nevents++] = *ev;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void on_job(void *opaque, const char *vm, const char *disk,
		   enum hsm_virt_job_type type, enum hsm_virt_job_status status)
{
	struct event ev = { .kind = EV_JOB, .a = (int)type, .b = (int)status };

	snprintf(ev.vm, sizeof(ev.vm), "%s", vm);
	snprintf(ev.disk, sizeof(ev.disk), "%s", disk);
	printf("   event: block job vm='%s' disk='%s' type=%s status=%s\n", vm, disk,
	       hsm_virt_job_type_name(type), hsm_virt_job_status_name(status));
	fflush(stdout);
	push_event(opaque, &ev);
}

static void on_lifecycle(void *opaque, const char *vm, enum hsm_virt_lifecycle event,
			 int detail)
{
	struct event ev = { .kind = EV_LIFECYCLE, .a = (int)event, .b = detail };

	snprintf(ev.vm, sizeof(ev.vm), "%s", vm);
	push_event(opaque, &ev);
}

static void on_reconnected(void *opaque)
{
	struct probe *p = opaque;

	printf("   event: reconnected to libvirt\n");
	fflush(stdout);
	pthread_mutex_lock(&p->lock);
	p->reconnects++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static int run(struct probe *p, char **w, int n, struct pk_error *err)
{
	const char *c = w[0];

	if (strcmp(c, "fail") == 0) {
		enum pk_errc want;
		struct pk_error e2;
		int r;

		if (n < 3 || pk_errc_from_name(w[1], &want) < 0) {
			return virt_probe_fail(err, "usage: fail CODE COMMAND...");
		}
		pk_error_clear(&e2);
		r = run(p, w + 2, n - 2, &e2);
		if (r == 0) {
			return virt_probe_fail(err, "'%s' succeeded, expected %s", w[2], w[1]);
		}
		printf("   failed as expected: %s: %s\n", pk_errc_name(e2.code), e2.message);
		if (e2.code != want) {
			return virt_probe_fail(err, "'%s' failed with %s, expected %s: %s", w[2],
				    pk_errc_name(e2.code), w[1], e2.message);
		}
		return 0;
	}
	if (strcmp(c, "create") == 0) {
		return virt_probe_cmd_create(p, w, n, err);
	}
	if (strcmp(c, "build-create") == 0) {
		return virt_probe_cmd_build_create(p, w, n, err);
	}
	if (strcmp(c, "show") == 0) {
		return virt_probe_cmd_show(p, w, n, err);
	}
	if (strcmp(c, "dump-xml") == 0) {
		return virt_probe_cmd_dump_xml(p, w, n, err);
	}
	if (strcmp(c, "expect-chain") == 0) {
		return virt_probe_cmd_expect_chain(p, w, n, err);
	}
	if (strcmp(c, "expect-mirror") == 0) {
		return virt_probe_cmd_expect_mirror(p, w, n, err);
	}
	if (strcmp(c, "expect-state") == 0) {
		return virt_probe_cmd_expect_state(p, w, n, err);
	}
	if (strcmp(c, "expect-list") == 0) {
		return virt_probe_cmd_expect_list(p, w, n, err);
	}
	if (strcmp(c, "expect-metadata") == 0) {
		return virt_probe_cmd_expect_metadata(p, w, n, err);
	}
	if (strcmp(c, "set-volume") == 0) {
		return virt_probe_cmd_set_volume(p, w, n, err);
	}
	if (strcmp(c, "snapshot") == 0) {
		return virt_probe_cmd_snapshot(p, w, n, err);
	}
	if (strcmp(c, "commit") == 0) {
		return virt_probe_cmd_commit(p, w, n, false, err);
	}
	if (strcmp(c, "active-commit") == 0) {
		return virt_probe_cmd_commit(p, w, n, true, err);
	}
	if (strcmp(c, "pull") == 0) {
		return virt_probe_cmd_pull(p, w, n, err);
	}
	if ((strcmp(c, "pivot") == 0 || strcmp(c, "abort") == 0) && n == 3) {
		return hsm_virt_block_job_abort(p->virt, w[1], w[2], c[0] == 'p', err);
	}
	if (strcmp(c, "set-bandwidth") == 0 && n == 4) {
		return hsm_virt_block_job_set_bandwidth(p->virt, w[1], w[2],
							strtoull(w[3], NULL, 10), err);
	}
	if (strcmp(c, "expect-job") == 0) {
		return virt_probe_cmd_expect_job(p, w, n, err);
	}
	if (strcmp(c, "wait-job") == 0) {
		return virt_probe_cmd_wait(p, w, n, EV_JOB, err);
	}
	if (strcmp(c, "wait-lifecycle") == 0) {
		return virt_probe_cmd_wait(p, w, n, EV_LIFECYCLE, err);
	}
	if (strcmp(c, "wait-disconnected") == 0) {
		return virt_probe_cmd_wait_conn(p, w, n, false, err);
	}
	if (strcmp(c, "wait-reconnect") == 0) {
		return virt_probe_cmd_wait_conn(p, w, n, true, err);
	}
	if (strcmp(c, "destroy") == 0 && n == 2) {
		return hsm_virt_domain_destroy(p->virt, w[1], err);
	}
	if (strcmp(c, "start") == 0 && n == 2) {
		return hsm_virt_domain_start(p->virt, w[1], err);
	}
	if (strcmp(c, "sleep") == 0 && n == 2) {
		struct timespec ts;
		double s = atof(w[1]);

		ts.tv_sec = (time_t)s;
		ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
		return 0;
	}
	return virt_probe_fail(err, "unknown command or wrong arguments: '%s'", c);
}

int main(int argc, char **argv)
{
	struct hsm_virt_config cfg = { .connect_timeout_ms = 10000 };
	struct hsm_virt_callbacks cb = { 0 };
	struct probe p;
	struct pk_error err;
	pthread_condattr_t ca;
	char *line = NULL;
	size_t cap = 0;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--uri") == 0 && i + 1 < argc) {
			cfg.uri = argv[++i];
		} else if (strcmp(argv[i], "--keepalive") == 0 && i + 2 < argc) {
			cfg.keepalive_interval_s = atoi(argv[++i]);
			cfg.keepalive_count = (unsigned)atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: pk-virt-probe [--uri URI] [--keepalive INTERVAL_S COUNT]"
					" < commands\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&p, 0, sizeof(p));
	pthread_mutex_init(&p.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p.cond, &ca);
	pthread_condattr_destroy(&ca);
	cb.block_job = on_job;
	cb.lifecycle = on_lifecycle;
	cb.reconnected = on_reconnected;
	cb.opaque = &p;
	pk_error_clear(&err);
	cfg.reconnect_min_ms = 100;
	cfg.reconnect_max_ms = 1000;
	if (hsm_virt_new(&cfg, &cb, &p.virt, &err) < 0) {
		printf("FAIL: connect: %s: %s\n", pk_errc_name(err.code), err.message);
		return 1;
	}
	printf("ok: connected\n");

	while (getline(&line, &cap, stdin) >= 0) {
		char *w[MAX_WORDS];
		char *save = NULL;
		int n = 0;

		line[strcspn(line, "\n")] = '\0';
		if (line[strspn(line, " \t")] == '\0' || line[strspn(line, " \t")] == '#') {
			continue;
		}
		printf(">> %s\n", line);
		if (strncmp(line, "sh ", 3) == 0) {
			int rc = system(line + 3);

			if (rc != 0) {
				printf("FAIL: shell command exited with %d\n", rc);
				status = 1;
				break;
			}
			printf("ok\n");
			continue;
		}
		for (char *t = strtok_r(line, " \t", &save); t && n < MAX_WORDS;
		     t = strtok_r(NULL, " \t", &save)) {
			w[n++] = t;
		}
		pk_error_clear(&err);
		if (run(&p, w, n, &err) < 0) {
			printf("FAIL: %s: %s\n", pk_errc_name(err.code), err.message);
			status = 1;
			break;
		}
		printf("ok\n");
	}
	free(line);
	hsm_virt_free(p.virt);
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	return status;
}
