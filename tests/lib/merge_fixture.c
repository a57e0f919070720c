/*
 * The merge tests' fixture: the contract is tests/lib/merge_fixture.h.
 */
#include "tests/lib/merge_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/proc.h"
#include "common/xalloc.h"
#include "hsm/chain.h"
#include "hsm/image.h"
#include "hsm/merge_job.h"
#include "hsm/vm.h"
#include "proto/codec.h"
#include "proto/spm_client.h"

/* ---- fixture ------------------------------------------------------------------------- */

void mfx_run(const char *const *argv)
{
	struct pk_error err = { PK_OK, "" };

	if (pk_proc_check(argv, 30000, PK_OK, NULL, &err) < 0) {
		fail_msg("%s", err.message);
	}
}

void mfx_mapper_file(struct mfx *t, const char *id, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s/%s", t->fx->lvmap, t->fx->domain, id);
}

/*
 * The merge subsystem again, with an events URL (the fixture starts it
 * without). start: resume its jobs now; without it hsm_start does, after it
 * has set up libvirt, as hsmd's start does (job threads read hsm->virt).
 */
static void merge_reinit(struct mfx *t, bool start)
{
	struct pk_error err = { PK_OK, "" };

	t->merge.events_url = t->events;
	hsm_merge_release(&t->fx->hsm);
	assert_int_equal(hsm_merge_init(&t->fx->hsm, &t->merge, &err), 0);
	if (start) {
		assert_int_equal(hsm_merge_start(&t->fx->hsm, &err), 0);
	}
}

static void spm_attach(struct mfx *t)
{
	struct pk_error err = { PK_OK, "" };

	assert_int_equal(pk_spm_client_new(t->spm->url, &t->fx->hsm.spm, &err), 0);
}

/*
 * base B (RAW) <- S1 (COW) <- S2 (COW, leaf), real image files, prepared,
 * and a running VM "vm1" on it (drive vda).
 */
int mfx_setup(void **state)
{
	struct mfx *t = pk_xcalloc(1, sizeof(*t));
	struct pk_error err = { PK_OK, "" };
	struct hsm_chain c = { 0 };
	char f[512], raw[600];
	void *fxs = NULL;

	fx_setup(&fxs);
	t->fx = fxs;
	t->settings = t->fx->hsm.settings;
	spm_fixture_start(t->fx, &t->spm);
	spm_attach(t);
	snprintf(t->events, sizeof(t->events), "ipc://%s/events.sock", t->fx->tmp);
	merge_reinit(t, true);

	/* The chain, with real files. */
	fx_image(t->fx, t->img, t->b, t->s1);
	fx_volume(t->fx, t->img, t->s1, t->s2);
	fx_volume_update(t->fx, t->s1, PK_VOLUME_INTERNAL, 0);
	mfx_mapper_file(t, t->b, f, sizeof(f));
	const char *trunc[] = { "truncate", "-s", "64M", f, NULL };
	mfx_run(trunc);
	snprintf(raw, sizeof(raw), "%s", f);
	mfx_mapper_file(t, t->s1, f, sizeof(f));
	const char *mk1[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", t->b, "-F",
			      "raw", f, "64M", NULL };
	mfx_run(mk1);
	mfx_mapper_file(t, t->s2, f, sizeof(f));
	const char *mk2[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", t->s1, "-F",
			      "qcow2", f, "64M", NULL };
	mfx_run(mk2);
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

int mfx_teardown(void **state)
{
	struct mfx *t = *state;
	void *fxs = t->fx;

	/*
	 * Stop the job threads before the SPM goes; the merge state itself is
	 * freed by hsm_release after libvirt's callbacks are gone (it is what
	 * those callbacks read).
	 */
	hsm_merge_stop(&t->fx->hsm);
	spm_fixture_stop(t->spm);
	fx_teardown(&fxs);
	free(t);
	return 0;
}

/* ---- helpers --------------------------------------------------------------------------- */

uint64_t mfx_now_ms(void)
{
	return pk_clock_monotonic_ms();
}

void mfx_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct hsm_merge_job_info mfx_wait_state(struct mfx *t, const char *id,
					    enum hsm_merge_state want)
{
	struct hsm_merge_job_info info = { 0 };
	struct pk_error err = { PK_OK, "" };
	uint64_t end = mfx_now_ms() + 10000;

	while (mfx_now_ms() < end) {
		assert_int_equal(hsm_merge_job_get(&t->fx->hsm, id, &info, &err), 0);
		if (info.state == want) {
			return info;
		}
		if (hsm_merge_state_final(info.state)) {
			break;
		}
		mfx_sleep_ms(10);
	}
	fail_msg("job %s is %s (%s), not %s", id, hsm_merge_state_name(info.state),
		 info.error.message, hsm_merge_state_name(want));
	return info;
}

struct hsm_merge_job_info mfx_wait_progress(struct mfx *t, const char *id, uint64_t cur,
					    uint64_t end)
{
	struct hsm_merge_job_info info = { 0 };
	uint64_t until = mfx_now_ms() + 10000;

	while (mfx_now_ms() < until) {
		assert_int_equal(hsm_merge_job_get(&t->fx->hsm, id, &info, NULL), 0);
		if (info.cur == cur && info.end == end) {
			return info;
		}
		mfx_sleep_ms(10);
	}
	fail_msg("job %s reports %llu of %llu, not %llu of %llu", id,
		 (unsigned long long)info.cur, (unsigned long long)info.end,
		 (unsigned long long)cur, (unsigned long long)end);
	return info;
}

void mfx_wait_calls(enum fake_virt_op op, unsigned n)
{
	uint64_t end = mfx_now_ms() + 10000;

	while (fake_virt_calls(op) < n && mfx_now_ms() < end) {
		mfx_sleep_ms(5);
	}
	assert_true(fake_virt_calls(op) >= n);
}

struct hsm_merge_job_info mfx_merge(struct mfx *t, const char *base, const char *top,
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

struct pk_volume_meta mfx_meta(struct mfx *t, const char *id)
{
	struct pk_volume_meta m = { 0 };
	struct pk_error err = { PK_OK, "" };

	if (spm_fixture_meta(t->fx, id, &m, NULL, &err) < 0) {
		fail_msg("%s", err.message);
	}
	return m;
}

bool mfx_linked(struct mfx *t, const char *id)
{
	char link[512];

	return fx_exists(fx_link(t->fx, t->img, id, link, sizeof(link)));
}

void mfx_assert_chain(struct mfx *t, const char *a, const char *b, const char *c)
{
	char *chain = fake_virt_chain("vm1", "vda"), want[2048], l1[512], l2[512], l3[512];

	snprintf(want, sizeof(want), "%s%s%s%s%s", fx_link(t->fx, t->img, a, l1, sizeof(l1)),
		 b ? " <- " : "", b ? fx_link(t->fx, t->img, b, l2, sizeof(l2)) : "",
		 c ? " <- " : "", c ? fx_link(t->fx, t->img, c, l3, sizeof(l3)) : "");
	assert_non_null(chain);
	assert_string_equal(chain, want);
	free(chain);
}

void mfx_expect_error(struct mfx *t, const struct hsm_merge_request *req, enum pk_errc code)
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

void mfx_assert_defined_leaf(struct mfx *t, const char *want)
{
	struct pk_error err = { PK_OK, "" };
	struct hsm_merge_live live;

	assert_int_equal(hsm_merge_live_read(&t->fx->hsm, "vm1", "vda", &live, &err), 0);
	assert_string_equal(live.ids[0], want);
	assert_string_equal(live.drive.volume_id, want); /* our metadata agrees */
}

void mfx_restart(struct mfx *t)
{
	struct pk_error err = { PK_OK, "" };

	hsm_release(&t->fx->hsm);
	assert_int_equal(hsm_init(&t->fx->hsm, &t->settings, &err), 0);
	spm_attach(t);
	merge_reinit(t, false);
	assert_int_equal(hsm_start(&t->fx->hsm, &err), 0);
}

void mfx_merge_restart(struct mfx *t)
{
	/* All of hsmd: its event thread reads the merge subsystem, which is never
	 * replaced under a running hsmd. */
	mfx_restart(t);
}
