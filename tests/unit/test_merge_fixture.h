/*
 * The fixture of test_merge.c: the test hsmd of test_hsm_fixture.h, a small
 * SPM served over nng in this process (ExtendVolume, UpdateVolumeMeta,
 * ImagePrepared on the fake LVM's tags; one request at a time, as the real
 * one holds its volume locks), the chain B (RAW) <- S1 (COW) <- S2 (COW,
 * leaf) of real image files under a running VM "vm1", and the helpers the
 * cases share (waiting for job states and fake libvirt calls, starting
 * merges, reading metadata, checking chains, restarting hsmd).
 *
 * Included by test_merge.c only (static functions; the SPM is one per
 * process); state is per test.
 */
#ifndef TEST_MERGE_FIXTURE_H
#define TEST_MERGE_FIXTURE_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "common/rpc.h"
#include "hsm/merge.h"
#include "hsm/merge_job.h"
#include "hsm/vm.h"
#include "proto/codec.h"
#include "proto/spm_client.h"
#include "tests/unit/test_hsm_fixture.h"

/* ---- a small SPM -------------------------------------------------------------------- */

struct fake_spm {
	struct fx *fx;
	struct pk_rpc_server *srv;
	struct pk_dispatcher d;
	struct pk_daemon_info info;
	char url[256];
	atomic_int extends, updates, prepared;
	atomic_int fail_updates; /* the next N updates answer UNAVAILABLE */
	pthread_mutex_t lock;    /* one request at a time: read-modify-write of tags */
};

static struct fake_spm g_spm;

static int spm_meta(struct fx *fx, const char *id, struct pk_volume_meta *m, uint64_t *lv_size,
		    struct pk_error *err)
{
	struct pk_lvm_lv_list lvs = { 0 };
	int r = pk_lvm_lv_report(fx->hsm.lvm, fx->domain, id, &lvs, err);

	if (r == 0) {
		r = pk_meta_volume_decode(id, lvs.lvs[0].tags, m, err);
		if (lv_size) {
			*lv_size = lvs.lvs[0].size;
		}
	}
	pk_lvm_lv_list_release(&lvs);
	return r;
}

static int update_volume_meta(void *ctx, const Pk__Request *req, Pk__Response *resp,
			      struct pk_arena *a, struct pk_error *err)
{
	struct fake_spm *spm = ctx;
	const Pk__UpdateVolumeMetaRequest *u = req->update_volume_meta;
	Pk__UpdateVolumeMetaResponse *w = pk_arena_new(a, Pk__UpdateVolumeMetaResponse);
	struct pk_lvm_lv_list lvs = { 0 };
	struct pk_volume_meta m;
	struct pk_meta_tags add, del;
	int r;

	atomic_fetch_add(&spm->updates, 1);
	if (atomic_load(&spm->fail_updates) > 0) {
		atomic_fetch_sub(&spm->fail_updates, 1);
		return pk_error_set(err, PK_E_UNAVAILABLE, ENOTCONN, "fake SPM: unavailable");
	}
	pk__update_volume_meta_response__init(w);
	r = pk_lvm_lv_report(spm->fx->hsm.lvm, u->domain_id, u->volume_id, &lvs, err);
	if (r == 0) {
		r = pk_meta_volume_decode(u->volume_id, lvs.lvs[0].tags, &m, err);
	}
	if (r == 0) {
		if (u->set_parent) {
			snprintf(m.parent, sizeof(m.parent), "%s",
				 *u->parent_id ? u->parent_id : PK_META_NO_PARENT);
		}
		if (u->role) {
			m.role = u->role == PK__VOLUME_ROLE__ROLE_LEAF ? PK_VOLUME_LEAF
								       : PK_VOLUME_INTERNAL;
		}
		if (u->legality) {
			m.legality = (enum pk_volume_legality)u->legality;
		}
		r = pk_meta_volume_diff(u->volume_id, lvs.lvs[0].tags, &m, &add, &del, NULL, err);
	}
	if (r == 0) {
		r = pk_lvm_lv_tags_change(spm->fx->hsm.lvm, u->domain_id, u->volume_id,
					  pk_meta_tags_strv(&add), pk_meta_tags_strv(&del), err);
	}
	pk_lvm_lv_list_release(&lvs);
	if (r == 0) {
		resp->update_volume_meta = w;
	}
	return r;
}

static int verb_update(void *ctx, const Pk__Request *req, Pk__Response *resp,
		       struct pk_arena *a, struct pk_error *err)
{
	struct fake_spm *spm = ctx;
	int r;

	pthread_mutex_lock(&spm->lock);
	r = update_volume_meta(ctx, req, resp, a, err);
	pthread_mutex_unlock(&spm->lock);
	return r;
}

static int verb_extend(void *ctx, const Pk__Request *req, Pk__Response *resp,
		       struct pk_arena *a, struct pk_error *err)
{
	struct fake_spm *spm = ctx;
	const Pk__ExtendVolumeRequest *e = req->extend_volume;
	Pk__ExtendVolumeResponse *w = pk_arena_new(a, Pk__ExtendVolumeResponse);
	int r;

	atomic_fetch_add(&spm->extends, 1);
	pk__extend_volume_response__init(w);
	r = pk_lvm_lv_extend(spm->fx->hsm.lvm, e->domain_id, e->volume_id, e->new_size, err);
	if (r == 0) {
		resp->extend_volume = w;
	}
	return r;
}

static int verb_prepared(void *ctx, const Pk__Request *req, Pk__Response *resp,
			 struct pk_arena *a, struct pk_error *err)
{
	struct fake_spm *spm = ctx;
	Pk__ImagePreparedResponse *w = pk_arena_new(a, Pk__ImagePreparedResponse);

	(void)req;
	(void)err;
	atomic_fetch_add(&spm->prepared, 1);
	pk__image_prepared_response__init(w);
	resp->image_prepared = w;
	return 0;
}

static const struct pk_verb spm_verbs_fake[] = {
	{ PK__REQUEST__CALL_UPDATE_VOLUME_META, verb_update },
	{ PK__REQUEST__CALL_EXTEND_VOLUME, verb_extend },
	{ PK__REQUEST__CALL_IMAGE_PREPARED, verb_prepared },
};

/* ---- fixture ------------------------------------------------------------------------- */

struct t {
	struct fx *fx;
	char img[PK_UUID_BUFLEN];
	char b[PK_UUID_BUFLEN], s1[PK_UUID_BUFLEN], s2[PK_UUID_BUFLEN];
	char events[256];
	struct hsm_settings settings;
};

static void run(const char *const *argv)
{
	struct pk_error err = { PK_OK, "" };

	if (pk_proc_check(argv, 30000, PK_OK, NULL, &err) < 0) {
		fail_msg("%s", err.message);
	}
}

static void mapper_file(struct t *t, const char *id, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s/%s", t->fx->lvmap, t->fx->domain, id);
}

/* The merge subsystem again, with an events URL (the fixture starts it without). */
static void merge_restart(struct t *t)
{
	struct hsm_merge_config mc = { .events_url = t->events };
	struct pk_error err = { PK_OK, "" };

	hsm_merge_release(&t->fx->hsm);
	assert_int_equal(hsm_merge_init(&t->fx->hsm, &mc, &err), 0);
	assert_int_equal(hsm_merge_start(&t->fx->hsm, &err), 0);
}

static void spm_attach(struct t *t)
{
	struct pk_error err = { PK_OK, "" };

	assert_int_equal(pk_spm_client_new(g_spm.url, &t->fx->hsm.spm, &err), 0);
}

/*
 * base B (RAW) <- S1 (COW) <- S2 (COW, leaf), real image files, prepared,
 * and a running VM "vm1" on it (drive vda).
 */
static int setup(void **state)
{
	struct t *t = pk_xcalloc(1, sizeof(*t));
	struct pk_error err = { PK_OK, "" };
	struct hsm_chain c = { 0 };
	struct pk_rpc_server_config sc = { 0 };
	char f[512], raw[600];
	void *fxs = NULL;

	fx_setup(&fxs);
	t->fx = fxs;
	t->settings = t->fx->hsm.settings;
	/* The SPM. */
	memset(&g_spm, 0, sizeof(g_spm));
	pthread_mutex_init(&g_spm.lock, NULL);
	g_spm.fx = t->fx;
	snprintf(g_spm.url, sizeof(g_spm.url), "ipc://%s/spm.sock", t->fx->tmp);
	g_spm.info.role = "spm";
	g_spm.d.verbs = spm_verbs_fake;
	g_spm.d.nverbs = sizeof(spm_verbs_fake) / sizeof(spm_verbs_fake[0]);
	g_spm.d.ctx = &g_spm;
	g_spm.d.max_msg = PK_MAX_MESSAGE_DEFAULT;
	g_spm.d.info = &g_spm.info;
	sc.url = g_spm.url;
	sc.workers = 2;
	sc.hard_max_msg = PK_MAX_MESSAGE_DEFAULT * 2;
	assert_int_equal(pk_rpc_server_start(&sc, pk_dispatch_handle, &g_spm.d, &g_spm.srv, &err), 0);
	spm_attach(t);
	snprintf(t->events, sizeof(t->events), "ipc://%s/events.sock", t->fx->tmp);
	merge_restart(t);

	/* The chain, with real files. */
	fx_image(t->fx, t->img, t->b, t->s1);
	fx_volume(t->fx, t->img, t->s1, t->s2);
	fx_volume_update(t->fx, t->s1, PK_VOLUME_INTERNAL, 0);
	mapper_file(t, t->b, f, sizeof(f));
	const char *trunc[] = { "truncate", "-s", "64M", f, NULL };
	run(trunc);
	snprintf(raw, sizeof(raw), "%s", f);
	mapper_file(t, t->s1, f, sizeof(f));
	const char *mk1[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", t->b, "-F",
			      "raw", f, "64M", NULL };
	run(mk1);
	mapper_file(t, t->s2, f, sizeof(f));
	const char *mk2[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", t->s1, "-F",
			      "qcow2", f, "64M", NULL };
	run(mk2);
	(void)raw;
	assert_int_equal(hsm_image_prepare(&t->fx->hsm, t->fx->domain, t->img, NULL, &c, &err), 0);
	assert_int_equal(c.n, 3);
	hsm_chain_release(&c);

	struct hsm_vm_create_disk disk = { .domain = t->fx->domain, .image = t->img,
					   .volume = t->s2 };
	struct hsm_vm_create_spec spec = { .name = "vm1", .memory_mib = 64, .vcpus = 1,
					   .disks = &disk, .ndisks = 1 };
	if (hsm_vm_create(&t->fx->hsm, &spec, NULL, &err) < 0) {
		fail_msg("vm create: %s", err.message);
	}
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	void *fxs = t->fx;

	hsm_merge_release(&t->fx->hsm);
	pk_rpc_server_stop(g_spm.srv);
	fx_teardown(&fxs);
	free(t);
	return 0;
}

/* ---- helpers --------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
	return pk_codec_monotonic_ms();
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits (5 s) until the job is in state; returns its info. */
static struct hsm_merge_job_info wait_state(struct t *t, const char *id,
					    enum hsm_merge_state want)
{
	struct hsm_merge_job_info info = { 0 };
	struct pk_error err = { PK_OK, "" };
	uint64_t end = now_ms() + 10000;

	while (now_ms() < end) {
		assert_int_equal(hsm_merge_job_get(&t->fx->hsm, id, &info, &err), 0);
		if (info.state == want) {
			return info;
		}
		if (hsm_merge_state_final(info.state)) {
			break;
		}
		sleep_ms(10);
	}
	fail_msg("job %s is %s (%s), not %s", id, hsm_merge_state_name(info.state),
		 info.error.message, hsm_merge_state_name(want));
	return info;
}

/* Waits until the fake libvirt saw n calls of op. */
static void wait_calls(enum fake_virt_op op, unsigned n)
{
	uint64_t end = now_ms() + 10000;

	while (fake_virt_calls(op) < n && now_ms() < end) {
		sleep_ms(5);
	}
	assert_true(fake_virt_calls(op) >= n);
}

static struct hsm_merge_job_info merge(struct t *t, const char *base, const char *top,
				       enum hsm_merge_direction dir)
{
	struct hsm_merge_request req = { .vm = "vm1", .drive = "vda", .base = base, .top = top,
					 .direction = dir };
	struct hsm_merge_job_info info;
	struct pk_error err = { PK_OK, "" };

	if (hsm_merge_begin(&t->fx->hsm, &req, &info, &err) < 0) {
		fail_msg("merge: %s: %s", pk_errc_name(err.code), err.message);
	}
	return info;
}

static struct pk_volume_meta meta(struct t *t, const char *id)
{
	struct pk_volume_meta m = { 0 };
	struct pk_error err = { PK_OK, "" };

	if (spm_meta(t->fx, id, &m, NULL, &err) < 0) {
		fail_msg("%s", err.message);
	}
	return m;
}

static bool linked(struct t *t, const char *id)
{
	char link[512];

	return fx_exists(fx_link(t->fx, t->img, id, link, sizeof(link)));
}

/* "leaf <- ... <- base" of the fake, as volume ids. */
static void assert_chain(struct t *t, const char *a, const char *b, const char *c)
{
	char *chain = fake_virt_chain("vm1", "vda"), want[2048], l1[512], l2[512], l3[512];

	snprintf(want, sizeof(want), "%s%s%s%s%s", fx_link(t->fx, t->img, a, l1, sizeof(l1)),
		 b ? " <- " : "", b ? fx_link(t->fx, t->img, b, l2, sizeof(l2)) : "",
		 c ? " <- " : "", c ? fx_link(t->fx, t->img, c, l3, sizeof(l3)) : "");
	assert_non_null(chain);
	assert_string_equal(chain, want);
	free(chain);
}

static void expect_error(struct t *t, const struct hsm_merge_request *req, enum pk_errc code)
{
	struct hsm_merge_job_info info;
	struct pk_error err = { PK_OK, "" };

	assert_int_not_equal(hsm_merge_begin(&t->fx->hsm, req, &info, &err), 0);
	if (err.code != code) {
		fail_msg("expected %s, got %s: %s", pk_errc_name(code), pk_errc_name(err.code),
			 err.message);
	}
	assert_true(strlen(err.message) > 10);
}

/* The leaf the stopped VM's definition names, by hsm_merge_live_read. */
static void assert_defined_leaf(struct t *t, const char *want)
{
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_live live;

	assert_int_equal(hsm_merge_live_read(&t->fx->hsm, "vm1", "vda", &live, &err), 0);
	assert_string_equal(live.ids[0], want);
	assert_string_equal(live.drive.volume_id, want); /* our metadata agrees */
}

/* hsmd "restarts" (the subsystem stops and a new one reads the records). */
static void restart(struct t *t)
{
	struct pk_error err = { PK_OK, "" };

	hsm_release(&t->fx->hsm);
	assert_int_equal(hsm_init(&t->fx->hsm, &t->settings, &err), 0);
	spm_attach(t);
	merge_restart(t);
	assert_int_equal(hsm_start(&t->fx->hsm, &err), 0);
}

#endif
