/*
 * tests/fakes/fake_virt.c checked on its own, so the HSM logic tests that
 * use it can trust what it models: chains, jobs, pivots, events and their
 * loss while disconnected, errors.
 */
/* pk-test-fakes: fake_virt */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/strv.h"
#include "common/xalloc.h"
#include "hsm/virt.h"
#include "hsm/vmxml.h"
#include "tests/fakes/fake_virt.h"

#define ID1 "00000000-0000-4000-8000-000000000001"

struct evlog {
	pthread_mutex_t lock;
	char text[4096];
};

static struct evlog g_log = { PTHREAD_MUTEX_INITIALIZER, "" };

static void log_add(const char *s)
{
	pthread_mutex_lock(&g_log.lock);
	strncat(g_log.text, s, sizeof(g_log.text) - strlen(g_log.text) - 1);
	pthread_mutex_unlock(&g_log.lock);
}

static void on_job(void *opaque, const char *vm, const char *disk, enum hsm_virt_job_type type,
		   enum hsm_virt_job_status status)
{
	char b[128];

	(void)opaque;
	snprintf(b, sizeof(b), "job %s %s %s %s;", vm, disk, hsm_virt_job_type_name(type),
		 hsm_virt_job_status_name(status));
	log_add(b);
}

static void on_lifecycle(void *opaque, const char *vm, enum hsm_virt_lifecycle event, int detail)
{
	char b[128];

	(void)opaque;
	(void)detail;
	snprintf(b, sizeof(b), "lc %s %s;", vm, hsm_virt_lifecycle_name(event));
	log_add(b);
}

static void on_reconnected(void *opaque)
{
	(void)opaque;
	log_add("reconnected;");
}

static int setup(void **state)
{
	(void)state;
	fake_virt_reset();
	g_log.text[0] = '\0';
	fake_virt_image_add("/s/a3", "/s/a2", HSM_DISK_FORMAT_QCOW2);
	fake_virt_image_add("/s/a2", "/s/a1", HSM_DISK_FORMAT_QCOW2);
	fake_virt_image_add("/s/a1", NULL, HSM_DISK_FORMAT_RAW);
	return 0;
}

static struct hsm_virt *start(void)
{
	struct hsm_virt_callbacks cb = { .block_job = on_job, .lifecycle = on_lifecycle,
					.reconnected = on_reconnected };
	struct hsm_vm_disk d[2];
	struct hsm_vm_spec spec;
	struct hsm_virt *v = NULL;
	_cleanup_free_ char *xml = NULL;
	struct pk_error err;

	memset(d, 0, sizeof(d));
	for (int i = 0; i < 2; i++) {
		strcpy(d[i].id.domain_id, ID1);
		strcpy(d[i].id.image_id, ID1);
		strcpy(d[i].id.volume_id, ID1);
		d[i].format = HSM_DISK_FORMAT_QCOW2;
	}
	d[0].path = "/s/a3";
	d[1].path = "/s/b1";
	memset(&spec, 0, sizeof(spec));
	spec.name = "vm1";
	spec.memory_mib = 64;
	spec.vcpus = 1;
	spec.type = HSM_VM_TYPE_QEMU;
	spec.disks = d;
	spec.ndisks = 2;
	assert_int_equal(hsm_vmxml_domain_build(&spec, &xml, &err), 0);
	assert_int_equal(hsm_virt_new(NULL, &cb, &v, &err), 0);
	assert_int_equal(hsm_virt_domain_create(v, xml, NULL, &err), 0);
	assert_int_equal(hsm_virt_domain_create(v, xml, NULL, &err), -EEXIST);
	return v;
}

static void parse_live(struct hsm_virt *v, struct hsm_vmxml_domain *dom)
{
	_cleanup_free_ char *xml = NULL;
	struct pk_error err;

	assert_int_equal(hsm_virt_domain_xml(v, "vm1", &xml, &err), 0);
	if (hsm_vmxml_domain_parse(xml, dom, &err) < 0) {
		fail_msg("%s\n%s", err.message, xml);
	}
}

static void ref(struct hsm_virt *v, const char *disk, size_t pos, char buf[32])
{
	struct hsm_vmxml_domain dom;
	struct pk_error err;

	parse_live(v, &dom);
	assert_int_equal(hsm_vmxml_disk_layer_ref(hsm_vmxml_domain_disk(&dom, disk), pos, buf, 32,
						  &err),
			 0);
	hsm_vmxml_domain_release(&dom);
}

static void chain_is(const char *disk, const char *want)
{
	_cleanup_free_ char *c = fake_virt_chain("vm1", disk);

	assert_non_null(c);
	if (strcmp(c, want) != 0) {
		fail_msg("chain of %s is '%s', expected '%s'", disk, c, want);
	}
}

static void test_fake_virt__live_xml_has_the_chain(void **state)
{
	struct hsm_virt *v = start();
	struct hsm_vmxml_domain dom;

	(void)state;
	chain_is("vda", "/s/a3 <- /s/a2 <- /s/a1");
	chain_is("vdb", "/s/b1");
	parse_live(v, &dom);
	assert_true(dom.has_metadata);
	assert_int_equal(dom.disks[0].nlayers, 3);
	assert_true(dom.disks[0].chain_complete);
	assert_int_equal(dom.disks[0].layers[2].format, HSM_DISK_FORMAT_RAW);
	assert_true(dom.disks[0].layers[0].index >= 0);
	hsm_vmxml_domain_release(&dom);
	hsm_virt_free(v);
}

static void test_fake_virt__snapshot_commit_pivot_pull(void **state)
{
	struct hsm_virt *v = start();
	struct hsm_virt_job_info info;
	struct hsm_vmxml_domain dom;
	char base[32], top[32];
	struct pk_error err;

	(void)state;
	assert_true(hsm_virt_snapshot(v, "vm1",
				      "<domainsnapshot><disks><disk name='vda' snapshot='external'>"
				      "<source file='/s/a4'/></disk></disks></domainsnapshot>",
				      true, &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_int_equal(hsm_virt_snapshot(v, "vm1",
					   "<domainsnapshot><disks>"
					   "<disk name='vda' snapshot='external'><source file='/s/a4'/></disk>"
					   "<disk name='vdb' snapshot='external'><source file='/s/b2'/></disk>"
					   "</disks></domainsnapshot>",
					   false, &err),
			 0);
	chain_is("vda", "/s/a4 <- /s/a3 <- /s/a2 <- /s/a1");
	chain_is("vdb", "/s/b2 <- /s/b1");

	/* internal commit: a2 into a1 */
	ref(v, "vda", 3, base);
	ref(v, "vda", 2, top);
	assert_int_equal(hsm_virt_block_commit(v, "vm1", "vda", base, top, false, 100, &err), 0);
	assert_int_equal(hsm_virt_block_commit(v, "vm1", "vda", base, top, false, 100, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_CONFLICT);
	assert_int_equal(hsm_virt_block_job_info(v, "vm1", "vda", &info, &err), 0);
	assert_true(info.active);
	assert_int_equal(info.type, HSM_VIRT_JOB_COMMIT);
	assert_int_equal(info.bandwidth, 100);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), 0);
	chain_is("vda", "/s/a4 <- /s/a3 <- /s/a1");
	assert_int_equal(hsm_virt_block_job_info(v, "vm1", "vda", &info, &err), 0);
	assert_false(info.active);

	/* active commit into a1, pivot only when ready */
	ref(v, "vda", 2, base);
	assert_int_equal(hsm_virt_block_commit(v, "vm1", "vda", base, NULL, true, 0, &err), 0);
	assert_int_equal(hsm_virt_block_job_abort(v, "vm1", "vda", true, &err), -EAGAIN);
	assert_int_equal(err.code, PK_E_CONFLICT);
	assert_int_equal(fake_virt_job_complete("vm1", "vda"), -EINVAL);
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	parse_live(v, &dom);
	assert_int_equal(dom.disks[0].mirror, HSM_VMXML_MIRROR_READY);
	assert_int_equal(dom.disks[0].mirror_job, HSM_VMXML_MIRROR_JOB_ACTIVE_COMMIT);
	assert_string_equal(dom.disks[0].mirror_dest.path, "/s/a1");
	hsm_vmxml_domain_release(&dom);
	assert_int_equal(hsm_virt_block_job_abort(v, "vm1", "vda", true, &err), 0);
	chain_is("vda", "/s/a1");

	/* pull to no base */
	assert_int_equal(hsm_virt_block_pull(v, "vm1", "vdb", NULL, 0, &err), 0);
	assert_int_equal(fake_virt_job_complete("vm1", "vdb"), 0);
	chain_is("vdb", "/s/b2");
	fake_virt_events_flush();
	assert_string_equal(g_log.text, "lc vm1 defined;lc vm1 started;"
					"job vm1 vda commit completed;"
					"job vm1 vda active-commit ready;"
					"job vm1 vda active-commit completed;"
					"job vm1 vdb pull completed;");
	hsm_virt_free(v);
}

static void test_fake_virt__manual_pivot(void **state)
{
	struct hsm_virt *v = start();
	struct hsm_vmxml_domain dom;
	struct fake_virt_call call;
	char base[32];
	struct pk_error err;

	(void)state;
	fake_virt_set_manual_pivot(true);
	ref(v, "vda", 2, base);
	assert_int_equal(hsm_virt_block_commit(v, "vm1", "vda", base, NULL, true, 0, &err), 0);
	assert_true(fake_virt_last_call(FAKE_VIRT_COMMIT, &call));
	assert_true(call.active);
	assert_string_equal(call.base, base);
	assert_int_equal(fake_virt_job_ready("vm1", "vda"), 0);
	assert_int_equal(hsm_virt_block_job_abort(v, "vm1", "vda", true, &err), 0);
	parse_live(v, &dom);
	assert_int_equal(dom.disks[0].mirror, HSM_VMXML_MIRROR_PIVOTING);
	hsm_vmxml_domain_release(&dom);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", false), 0);
	chain_is("vda", "/s/a3 <- /s/a2 <- /s/a1");
	assert_int_equal(hsm_virt_block_job_abort(v, "vm1", "vda", true, &err), 0);
	assert_int_equal(fake_virt_pivot_finish("vm1", "vda", true), 0);
	chain_is("vda", "/s/a1");
	hsm_virt_free(v);
}

static void test_fake_virt__errors(void **state)
{
	struct hsm_virt *v = start();
	char base[32], top[32];
	struct pk_error err;

	(void)state;
	assert_int_equal(hsm_virt_block_job_abort(v, "vm1", "vda", false, &err), -ESRCH);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	ref(v, "vda", 2, base);
	ref(v, "vda", 0, top);
	assert_int_equal(hsm_virt_block_commit(v, "vm1", "vda", base, top, false, 0, &err), -EINVAL);
	assert_int_equal(hsm_virt_block_commit(v, "vm1", "vda", "vda[99]", NULL, true, 0, &err),
			 -EINVAL);
	assert_int_equal(hsm_virt_block_commit(v, "vm1", "vdz", base, NULL, true, 0, &err), -EINVAL);
	assert_int_equal(hsm_virt_domain_start(v, "vm1", &err), -EALREADY);
	assert_int_equal(err.code, PK_E_CONFLICT);
	assert_int_equal(hsm_virt_domain_destroy(v, "nope", &err), -ENOENT);
	fake_virt_fail_next(FAKE_VIRT_DESTROY, PK_E_INTERNAL, "boom");
	assert_true(hsm_virt_domain_destroy(v, "vm1", &err) < 0);
	assert_string_equal(err.message, "boom");
	assert_int_equal(fake_virt_calls(FAKE_VIRT_DESTROY), 2);
	assert_true(fake_virt_domain_exists("vm1"));
	assert_true(hsm_virt_metadata_set(v, "vm1", "<vm", &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	hsm_virt_free(v);
}

static void test_fake_virt__stop_and_start(void **state)
{
	struct hsm_virt *v = start();
	struct hsm_virt_job_info info;
	struct hsm_vmxml_domain dom;
	enum hsm_virt_state st;
	struct pk_error err;

	(void)state;
	assert_int_equal(hsm_virt_block_pull(v, "vm1", "vdb", NULL, 0, &err), 0);
	assert_int_equal(fake_virt_domain_set_state("vm1", HSM_VIRT_STATE_SHUTOFF), 0);
	assert_int_equal(hsm_virt_block_job_info(v, "vm1", "vdb", &info, &err), -EALREADY);
	assert_int_equal(err.code, PK_E_CONFLICT);
	assert_int_equal(hsm_virt_domain_state(v, "vm1", &st, NULL, &err), 0);
	assert_int_equal(st, HSM_VIRT_STATE_SHUTOFF);
	parse_live(v, &dom);
	assert_int_equal(dom.id, -1);
	assert_false(dom.disks[0].chain_complete);
	assert_int_equal(dom.disks[0].layers[0].index, -1);
	hsm_vmxml_domain_release(&dom);
	assert_int_equal(hsm_virt_domain_start(v, "vm1", &err), 0);
	assert_int_equal(hsm_virt_block_job_info(v, "vm1", "vdb", &info, &err), 0);
	assert_false(info.active);
	chain_is("vda", "/s/a3 <- /s/a2 <- /s/a1");
	hsm_virt_free(v);
}

static void test_fake_virt__events_are_lost_while_disconnected(void **state)
{
	struct hsm_virt *v = start();
	char **names = NULL;
	size_t n = 0;
	struct pk_error err;

	(void)state;
	fake_virt_events_flush();
	g_log.text[0] = '\0';
	assert_int_equal(hsm_virt_block_pull(v, "vm1", "vdb", NULL, 0, &err), 0);
	fake_virt_disconnect();
	assert_false(hsm_virt_connected(v));
	assert_int_equal(fake_virt_job_complete("vm1", "vdb"), 0);
	assert_int_equal(hsm_virt_domain_list(v, &names, &n, &err), -ENOTCONN);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	fake_virt_reconnect();
	fake_virt_events_flush();
	assert_string_equal(g_log.text, "reconnected;");
	assert_int_equal(hsm_virt_generation(v), 2);
	chain_is("vdb", "/s/b1");
	fake_virt_domain_add_foreign("other");
	assert_int_equal(hsm_virt_domain_list(v, &names, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "vm1");
	pk_strv_free(names);
	hsm_virt_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_fake_virt__live_xml_has_the_chain, setup),
		cmocka_unit_test_setup(test_fake_virt__snapshot_commit_pivot_pull, setup),
		cmocka_unit_test_setup(test_fake_virt__manual_pivot, setup),
		cmocka_unit_test_setup(test_fake_virt__errors, setup),
		cmocka_unit_test_setup(test_fake_virt__stop_and_start, setup),
		cmocka_unit_test_setup(test_fake_virt__events_are_lost_while_disconnected, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
