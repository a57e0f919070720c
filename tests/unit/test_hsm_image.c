/*
 * hsm/image.c and hsm/chain.c: chains from metadata, preparing and tearing
 * down images (links, activation, undo), refresh, the qemu-img chain
 * parser, and hsmd's named locks.
 */
/* pk-test-fakes: fake_lvm fake_virt */
#include <errno.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/locks.h"
#include "common/log.h"
#include "common/strv.h"
#include "hsm/chain.h"
#include "hsm/vm.h"
#include "common/lvm.h"
#include "common/meta.h"
#include "common/proc.h"
#include "common/uuid.h"
#include "common/xalloc.h"
#include "hsm/image.h"
#include "tests/fakes/fake_lvm.h"
#include "tests/fakes/fake_virt.h"
#include "proto/spm_client.h"
#include "tests/lib/hsm_fixture.h"
#include "tests/lib/spm_fixture.h"

/* ---- chains from metadata (pure) ------------------------------------------------ */

struct vl {
	struct hsm_volume_list list;
	char image[PK_UUID_BUFLEN];
};

static struct hsm_volume *vl_add(struct vl *l, const char *image, const char *parent,
				 enum pk_volume_role role, enum pk_volume_legality legality)
{
	struct hsm_volume *v;

	l->list.v = pk_xrealloc(l->list.v, (l->list.n + 1) * sizeof(*l->list.v));
	v = &l->list.v[l->list.n++];
	memset(v, 0, sizeof(*v));
	pk_uuid_generate(v->id);
	snprintf(v->meta.image, sizeof(v->meta.image), "%s", image);
	snprintf(v->meta.parent, sizeof(v->meta.parent), "%s", parent ? parent : PK_META_NO_PARENT);
	v->meta.format = parent ? PK_VOLUME_COW : PK_VOLUME_RAW;
	v->meta.role = role;
	v->meta.legality = legality;
	v->meta.capacity = FX_MIB;
	v->meta.generation = 1;
	return v;
}

static void test_hsm_image__chain_build_picks_the_leaf(void **state)
{
	struct vl l = { 0 };
	struct hsm_chain c = { 0 };
	struct pk_error err;
	char other[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], mid[PK_UUID_BUFLEN], top[PK_UUID_BUFLEN];
	char gone[PK_UUID_BUFLEN];

	(void)state;
	pk_uuid_generate(l.image);
	pk_uuid_generate(other);
	snprintf(base, sizeof(base), "%s", vl_add(&l, l.image, NULL, PK_VOLUME_INTERNAL,
						   PK_VOLUME_LEGAL)->id);
	vl_add(&l, other, NULL, PK_VOLUME_LEAF, PK_VOLUME_LEGAL);
	snprintf(mid, sizeof(mid), "%s", vl_add(&l, l.image, base, PK_VOLUME_INTERNAL,
						 PK_VOLUME_LEGAL)->id);
	snprintf(top, sizeof(top), "%s", vl_add(&l, l.image, mid, PK_VOLUME_LEAF,
						 PK_VOLUME_LEGAL)->id);
	/* A merged-away layer and an unfinished creation do not count as tops. */
	snprintf(gone, sizeof(gone), "%s", vl_add(&l, l.image, base, PK_VOLUME_INTERNAL,
						   PK_VOLUME_ILLEGAL)->id);
	vl_add(&l, l.image, top, PK_VOLUME_LEAF, PK_VOLUME_ILLEGAL)->meta.generation = 0;

	assert_int_equal(hsm_chain_build(&l.list, "d", l.image, NULL, &c, &err), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.v[0].id, top);
	assert_string_equal(c.v[1].id, mid);
	assert_string_equal(c.v[2].id, base);
	hsm_chain_release(&c);

	/* An explicit start: the chain below it. */
	assert_int_equal(hsm_chain_build(&l.list, "d", l.image, mid, &c, &err), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.v[0].id, mid);
	hsm_chain_release(&c);
	(void)gone;
	free(l.list.v);
}

static void test_hsm_image__chain_build_errors(void **state)
{
	struct vl l = { 0 };
	struct hsm_chain c = { 0 };
	struct pk_error err;
	char other[PK_UUID_BUFLEN], missing[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN];
	char ovol[PK_UUID_BUFLEN];

	(void)state;
	pk_uuid_generate(l.image);
	pk_uuid_generate(other);
	pk_uuid_generate(missing);
	snprintf(ovol, sizeof(ovol), "%s", vl_add(&l, other, NULL, PK_VOLUME_LEAF,
						   PK_VOLUME_LEGAL)->id);

	/* No volume of the image. */
	assert_int_equal(hsm_chain_build(&l.list, "d", l.image, NULL, &c, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	/* A volume of another image. */
	assert_int_equal(hsm_chain_build(&l.list, "d", l.image, ovol, &c, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "belongs to image"));
	/* An unknown volume. */
	assert_int_equal(hsm_chain_build(&l.list, "d", l.image, missing, &c, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);

	/* A parent that does not exist. */
	vl_add(&l, l.image, missing, PK_VOLUME_LEAF, PK_VOLUME_LEGAL);
	assert_true(hsm_chain_build(&l.list, "d", l.image, NULL, &c, &err) < 0);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	assert_non_null(strstr(err.message, "does not exist"));
	l.list.n--;

	/* Two tops. */
	snprintf(base, sizeof(base), "%s", vl_add(&l, l.image, NULL, PK_VOLUME_INTERNAL,
						   PK_VOLUME_LEGAL)->id);
	vl_add(&l, l.image, base, PK_VOLUME_LEAF, PK_VOLUME_LEGAL);
	vl_add(&l, l.image, NULL, PK_VOLUME_LEAF, PK_VOLUME_LEGAL);
	assert_true(hsm_chain_build(&l.list, "d", l.image, NULL, &c, &err) < 0);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	assert_non_null(strstr(err.message, "two tops"));
	l.list.n--;

	/* A loop (a <-> b) is found when a start inside it is given. */
	snprintf(l.list.v[l.list.n - 2].meta.parent, PK_UUID_BUFLEN, "%s",
		 l.list.v[l.list.n - 1].id);
	assert_true(hsm_chain_build(&l.list, "d", l.image, base, &c, &err) < 0);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	assert_non_null(strstr(err.message, "loop"));
	free(l.list.v);
}

static void test_hsm_image__path_volume_id(void **state)
{
	char *s;

	(void)state;
	s = hsm_path_volume_id("/run/x/2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e");
	assert_string_equal(s, "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e");
	free(s);
	s = hsm_path_volume_id("/var/lib/images/disk.qcow2");
	assert_string_equal(s, "/var/lib/images/disk.qcow2");
	free(s);
}

/* ---- prepare / teardown / refresh --------------------------------------------------- */

static void test_hsm_image__prepare_links_the_chain(void **state)
{
	struct fx *fx = *state;
	struct hsm_chain c = { 0 };
	struct pk_error err;
	char image[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], leaf[PK_UUID_BUFLEN];
	char link[512], target[512], want[512];
	ssize_t n;

	fx_image(fx, image, base, leaf);
	assert_false(hsm_image_is_prepared(&fx->hsm, fx->domain, image));
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, "", &c, &err), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.v[0].id, leaf);
	assert_string_equal(c.v[1].id, base);
	assert_int_equal(c.v[0].meta.format, PK_VOLUME_COW);
	assert_int_equal(c.v[0].lv_size, 64 * FX_MIB);
	hsm_chain_release(&c);
	assert_true(hsm_image_is_prepared(&fx->hsm, fx->domain, image));

	/* Links point at the mapper's files. */
	n = readlink(fx_link(fx, image, leaf, link, sizeof(link)), target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	snprintf(want, sizeof(want), "%s/%s/%s", fx->lvmap, fx->domain, leaf);
	assert_string_equal(target, want);
	assert_true(fx_exists(fx_link(fx, image, base, link, sizeof(link))));
	assert_int_equal(hsm_image_volume_ready(&fx->hsm, fx->domain, image, leaf, NULL, &err), 0);

	/* Idempotent. */
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, NULL, &c, &err), 0);
	hsm_chain_release(&c);

	/* Teardown removes links and dirs, deactivates; a second teardown is a no-op. */
	assert_int_equal(hsm_image_teardown(&fx->hsm, fx->domain, image, false, &err), 0);
	assert_false(fx_exists(fx_link(fx, image, leaf, link, sizeof(link))));
	snprintf(link, sizeof(link), "%s/storage/%s", fx->run, fx->domain);
	assert_false(fx_exists(link));
	{
		char *ctl = fx_control(fx);
		assert_int_equal(strncmp(ctl, "remove ", 7), 0);
		free(ctl);
	}
	assert_int_equal(hsm_image_teardown(&fx->hsm, fx->domain, image, false, &err), 0);
	assert_int_equal(hsm_image_volume_ready(&fx->hsm, fx->domain, image, leaf, NULL, &err),
			 -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "not prepared"));
}

static void test_hsm_image__prepare_refuses_bad_input(void **state)
{
	struct fx *fx = *state;
	struct hsm_chain c = { 0 };
	struct pk_error err;
	char image[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], leaf[PK_UUID_BUFLEN];
	char image2[PK_UUID_BUFLEN], base2[PK_UUID_BUFLEN], leaf2[PK_UUID_BUFLEN];
	char unknown[PK_UUID_BUFLEN];

	fx_image(fx, image, base, leaf);
	fx_image(fx, image2, base2, leaf2);
	pk_uuid_generate(unknown);

	assert_int_equal(hsm_image_prepare(&fx->hsm, "nope", image, NULL, &c, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, unknown, NULL, &c, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, leaf2, &c, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, image2));
	assert_int_equal(hsm_image_prepare(&fx->hsm, unknown, image, NULL, &c, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);

	/* A chain with an ILLEGAL volume: refused, nothing linked. */
	fx_volume_update(fx, base, 0, PK_VOLUME_ILLEGAL);
	assert_true(hsm_image_prepare(&fx->hsm, fx->domain, image, NULL, &c, &err) < 0);
	assert_int_equal(err.code, PK_E_ILLEGAL);
	assert_non_null(strstr(err.message, base));
	assert_false(hsm_image_is_prepared(&fx->hsm, fx->domain, image));
}

static void test_hsm_image__prepare_failure_undoes(void **state)
{
	struct fx *fx = *state;
	struct hsm_chain c = { 0 };
	struct pk_error err;
	char image[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], leaf[PK_UUID_BUFLEN];
	char link[512];

	fx_image(fx, image, base, leaf);
	/* The leaf's link cannot be published (a directory is in the way):
	 * the base, activated first, is deactivated and unlinked again. */
	snprintf(link, sizeof(link), "%s/storage/%s/%s/%s", fx->run, fx->domain, image, leaf);
	{
		const char *argv[] = { "mkdir", "-p", link, NULL };
		assert_int_equal(pk_proc_check(argv, 5000, PK_OK, NULL, NULL), 0);
	}
	assert_true(hsm_image_prepare(&fx->hsm, fx->domain, image, NULL, &c, &err) < 0);
	assert_int_equal(err.code, PK_E_IO);
	assert_non_null(strstr(err.message, leaf));
	assert_false(fx_exists(fx_link(fx, image, base, link, sizeof(link))));
	{
		char *ctl = fx_control(fx);
		assert_int_equal(strncmp(ctl, "remove ", 7), 0);
		assert_non_null(strstr(ctl, base));
		free(ctl);
	}

	/* An activation failure (LVM) leaves nothing either. */
	rmdir(fx_link(fx, image, leaf, link, sizeof(link)));
	fake_lvm_fail_op(FAKE_LVM_VG_REPORT, -EIO);
	assert_true(hsm_image_prepare(&fx->hsm, fx->domain, image, NULL, &c, &err) < 0);
	assert_false(hsm_image_is_prepared(&fx->hsm, fx->domain, image));
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, NULL, &c, &err), 0);
	hsm_chain_release(&c);
}

static void test_hsm_image__prepare_drops_volumes_outside_the_chain(void **state)
{
	struct fx *fx = *state;
	struct hsm_chain c = { 0 };
	struct pk_error err;
	char image[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], leaf[PK_UUID_BUFLEN];
	char snap[PK_UUID_BUFLEN], link[512];

	fx_image(fx, image, base, leaf);
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, NULL, &c, &err), 0);
	hsm_chain_release(&c);
	/* A snapshot's new leaf, prepared... */
	fx_volume(fx, image, leaf, snap);
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, snap, &c, &err), 0);
	assert_int_equal(c.n, 3);
	hsm_chain_release(&c);
	assert_true(fx_exists(fx_link(fx, image, snap, link, sizeof(link))));
	/* ...and dropped again by preparing the old leaf. */
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, leaf, &c, &err), 0);
	assert_int_equal(c.n, 2);
	hsm_chain_release(&c);
	assert_false(fx_exists(fx_link(fx, image, snap, link, sizeof(link))));
	assert_true(fx_exists(fx_link(fx, image, leaf, link, sizeof(link))));
}

static void test_hsm_image__refresh(void **state)
{
	struct fx *fx = *state;
	struct hsm_chain c = { 0 };
	struct pk_error err;
	char image[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], leaf[PK_UUID_BUFLEN];
	char image2[PK_UUID_BUFLEN], base2[PK_UUID_BUFLEN], leaf2[PK_UUID_BUFLEN];
	uint64_t size = 0;

	fx_image(fx, image, base, leaf);
	fx_image(fx, image2, base2, leaf2);
	assert_int_equal(hsm_volume_refresh(&fx->hsm, fx->domain, image, leaf, &size, &err),
			 -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "not prepared"));
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, NULL, &c, &err), 0);
	hsm_chain_release(&c);
	/* The SPM extended the LV. */
	assert_int_equal(pk_lvm_lv_extend(fx->hsm.lvm, fx->domain, leaf, 128 * FX_MIB, &err), 0);
	assert_int_equal(hsm_volume_refresh(&fx->hsm, fx->domain, image, leaf, &size, &err), 0);
	assert_int_equal(size, 128 * FX_MIB);
	{
		char *ctl = fx_control(fx);
		assert_int_equal(strncmp(ctl, "load ", 5), 0);
		assert_non_null(strstr(ctl, leaf));
		free(ctl);
	}
	assert_int_equal(hsm_volume_refresh(&fx->hsm, fx->domain, image, leaf2, &size, &err),
			 -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
}

static void test_hsm_image__volume_chain_from_qemu_img_needs_prepare(void **state)
{
	struct fx *fx = *state;
	struct hsm_chain_report rep = { 0 };
	struct pk_error err;
	char image[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], leaf[PK_UUID_BUFLEN];

	fx_image(fx, image, base, leaf);
	/* No VM and not prepared: no live chain to read. */
	assert_int_equal(hsm_volume_chain(&fx->hsm, fx->domain, image, NULL, NULL, &rep, &err),
			 -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "not prepared"));
	assert_int_equal(hsm_volume_chain(&fx->hsm, "", "", NULL, NULL, &rep, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
}

/* ---- locks ------------------------------------------------------------------------ */

static void test_hsm_image__locks(void **state)
{
	struct fx *fx = *state;
	struct pk_error err;
	struct pk_lockset a, b, c;
	int t = fx->hsm.settings.lock_timeout_ms;

	pk_lockset_init(&a, fx->hsm.locks, "t");
	hsm_lockset_add_image(&a, fx->domain, "a");
	hsm_lockset_add_vm(&a, "x");
	pk_lockset_init(&b, fx->hsm.locks, "second");
	hsm_lockset_add_vm(&b, "x");
	pk_lockset_init(&c, fx->hsm.locks, "t");
	hsm_lockset_add_image(&c, fx->domain, "b");
	hsm_lockset_add_image(&c, fx->domain, "b");

	assert_int_equal(pk_lockset_acquire(&a, t, &err), 0);
	assert_int_equal(pk_lockset_acquire(&b, t, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_BUSY);
	assert_non_null(strstr(err.message, "second"));
	assert_int_equal(pk_lockset_acquire(&c, t, &err), 0);
	pk_lockset_release(&a);
	assert_int_equal(pk_lockset_acquire(&b, t, &err), 0);
	pk_lockset_release(&b);
	pk_lockset_release(&c);
	assert_int_equal(pk_locks_active(fx->hsm.locks), 0);
}

/*
 * The SPM records every volume of the chain as prepared before anything is
 * activated; when it cannot, PrepareImage fails and nothing is linked.
 */
static void test_hsm_image__prepare_fails_when_the_spm_cannot_record_it(void **state)
{
	struct fx *fx = *state;
	struct spm_fixture *spm = NULL;
	struct hsm_chain c = { 0 };
	struct pk_error err;
	char image[PK_UUID_BUFLEN], base[PK_UUID_BUFLEN], leaf[PK_UUID_BUFLEN], link[512];
	int before;

	fx_image(fx, image, base, leaf);
	spm_fixture_start(fx, &spm);
	assert_int_equal(pk_spm_client_new(spm->url, &fx->hsm.spm, &err), 0);
	fx->hsm.settings.spm_timeout_ms = 1000;
	atomic_store(&spm->fail_prepared, 1000);
	assert_true(hsm_image_prepare(&fx->hsm, fx->domain, image, NULL, &c, &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_non_null(strstr(err.message, "cannot record"));
	assert_false(fx_exists(fx_link(fx, image, leaf, link, sizeof(link))));
	assert_false(fx_exists(fx_link(fx, image, base, link, sizeof(link))));

	atomic_store(&spm->fail_prepared, 0);
	before = atomic_load(&spm->prepared);
	assert_int_equal(hsm_image_prepare(&fx->hsm, fx->domain, image, NULL, &c, &err), 0);
	hsm_chain_release(&c);
	assert_int_equal(atomic_load(&spm->prepared) - before, 2); /* one notice per volume */
	assert_true(fx_exists(fx_link(fx, image, leaf, link, sizeof(link))));
	/* A teardown that cannot reach the SPM still tears down (the tag only protects). */
	atomic_store(&spm->fail_prepared, 1000);
	assert_int_equal(hsm_image_teardown(&fx->hsm, fx->domain, image, false, &err), 0);
	assert_false(fx_exists(fx_link(fx, image, leaf, link, sizeof(link))));
	spm_fixture_stop(spm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hsm_image__chain_build_picks_the_leaf),
		cmocka_unit_test(test_hsm_image__chain_build_errors),
		cmocka_unit_test(test_hsm_image__path_volume_id),
		cmocka_unit_test_setup_teardown(test_hsm_image__prepare_fails_when_the_spm_cannot_record_it,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_image__prepare_links_the_chain, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_image__prepare_refuses_bad_input, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_image__prepare_failure_undoes, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_image__prepare_drops_volumes_outside_the_chain,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_image__refresh, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_image__volume_chain_from_qemu_img_needs_prepare,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hsm_image__locks, fx_setup, fx_teardown),
	};

	pk_log_setup("test_hsm_image", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
