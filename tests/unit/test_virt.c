/*
 * hsm/virt*.c, the real libvirt adapter, against libvirt's built-in test
 * driver (test:///default: in-process, no daemon, a fresh state per
 * process). It checks the connection life cycle, the event thread,
 * domain verbs, metadata, a stopped domain's disk source, listing, and the mapping of libvirt errors to
 * pk_error codes. Block jobs are not implemented by the test driver; the
 * real ones are covered by tests/integration/test_virt.sh.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <libvirt/libvirt.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "hsm/virt.h"
#include "hsm/vmxml.h"

#define TEST_URI "test:///default"
#define DOM1 "5b0e8a0c-6f1d-4d2e-8c3b-9a8f7e6d5c4b"
#define IMG1 "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
#define VOL1 "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
#define VOL2 "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"

struct events {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned started, stopped, defined, undefined;
	char last_vm[HSM_VM_NAME_MAX + 1];
};

static struct events g_ev = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0,
			      "" };

static void on_lifecycle(void *opaque, const char *vm, enum hsm_virt_lifecycle event,
			 int detail)
{
	struct events *ev = opaque;

	(void)detail;
	pthread_mutex_lock(&ev->lock);
	snprintf(ev->last_vm, sizeof(ev->last_vm), "%s", vm);
	ev->started += event == HSM_VIRT_EV_STARTED;
	ev->stopped += event == HSM_VIRT_EV_STOPPED;
	ev->defined += event == HSM_VIRT_EV_DEFINED;
	ev->undefined += event == HSM_VIRT_EV_UNDEFINED;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

/* Waits (up to 5 s) until *counter reaches want. */
static bool wait_count(unsigned *counter, unsigned want)
{
	struct timespec until;
	bool ok;

	pk_clock_deadline(CLOCK_REALTIME, 5000, &until);
	pthread_mutex_lock(&g_ev.lock);
	while (*counter < want) {
		if (pthread_cond_timedwait(&g_ev.cond, &g_ev.lock, &until) != 0) {
			break;
		}
	}
	ok = *counter >= want;
	pthread_mutex_unlock(&g_ev.lock);
	return ok;
}

static struct hsm_virt *connect_test(void)
{
	struct hsm_virt_config cfg = { .uri = TEST_URI };
	struct hsm_virt_callbacks cb = { .lifecycle = on_lifecycle, .opaque = &g_ev };
	struct hsm_virt *v = NULL;
	struct pk_error err;

	pk_error_clear(&err);
	if (hsm_virt_new(&cfg, &cb, &v, &err) < 0) {
		fail_msg("connect %s: %s", TEST_URI, err.message);
	}
	return v;
}

static char *vm_xml(const char *name)
{
	struct hsm_vm_disk disks[2];
	struct hsm_vm_spec spec;
	struct pk_error err;
	char *xml = NULL;

	memset(disks, 0, sizeof(disks));
	snprintf(disks[0].id.domain_id, PK_UUID_BUFLEN, DOM1);
	snprintf(disks[0].id.image_id, PK_UUID_BUFLEN, IMG1);
	snprintf(disks[0].id.volume_id, PK_UUID_BUFLEN, VOL1);
	disks[0].path = "/nonexistent/pk/a.qcow2";
	disks[0].format = HSM_DISK_FORMAT_QCOW2;
	disks[1] = disks[0];
	disks[1].path = "/nonexistent/pk/b.qcow2";
	memset(&spec, 0, sizeof(spec));
	spec.name = name;
	spec.memory_mib = 64;
	spec.vcpus = 1;
	spec.type = HSM_VM_TYPE_QEMU;
	spec.disks = disks;
	spec.ndisks = 2;
	assert_int_equal(hsm_vmxml_domain_build(&spec, &xml, &err), 0);
	return xml;
}

static bool listed(struct hsm_virt *v, const char *name)
{
	char **names = NULL;
	size_t n = 0;
	bool found = false;
	struct pk_error err;

	assert_int_equal(hsm_virt_domain_list(v, &names, &n, &err), 0);
	for (size_t i = 0; i < n; i++) {
		found = found || strcmp(names[i], name) == 0;
	}
	pk_strv_free(names);
	return found;
}

static void test_virt__connect_and_free_repeatedly(void **state)
{
	(void)state;
	/* The event thread must stop and the process-wide loop be reusable. */
	for (int i = 0; i < 3; i++) {
		struct hsm_virt *v = connect_test();

		assert_true(hsm_virt_connected(v));
		assert_int_equal(hsm_virt_generation(v), 1);
		hsm_virt_free(v);
	}
	hsm_virt_free(NULL);
}

/* A daemon socket that does not exist: the remote driver fails at once. */
#define UNREACHABLE_URI "qemu+unix:///system?socket=/nonexistent/pk-test-virt.sock"

static void test_virt__unreachable_uri_is_unavailable(void **state)
{
	struct hsm_virt_config cfg = { .uri = UNREACHABLE_URI };
	struct hsm_virt *v = NULL;
	uint64_t t0;
	struct pk_error err;

	(void)state;
	pk_error_clear(&err);
	t0 = pk_clock_monotonic_ms();
	assert_true(hsm_virt_new(&cfg, NULL, &v, &err) < 0);
	assert_true(pk_clock_monotonic_ms() - t0 < 2000); /* one attempt */
	assert_null(v);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_non_null(strstr(err.message, "cannot connect to libvirt at '" UNREACHABLE_URI "'"));

	/* With a connect timeout the first connection is retried until it. */
	cfg.connect_timeout_ms = 400;
	cfg.reconnect_min_ms = 50;
	cfg.reconnect_max_ms = 100;
	pk_error_clear(&err);
	t0 = pk_clock_monotonic_ms();
	assert_true(hsm_virt_new(&cfg, NULL, &v, &err) < 0);
	assert_true(pk_clock_monotonic_ms() - t0 >= 400);
	assert_true(pk_clock_monotonic_ms() - t0 < 5000);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
}

static void test_virt__domain_life_cycle(void **state)
{
	struct hsm_virt *v = connect_test();
	_cleanup_free_ char *xml = vm_xml("pkt-unit-a");
	_cleanup_free_ char *live = NULL;
	char uuid[PK_UUID_BUFLEN];
	enum hsm_virt_state st;
	struct hsm_vmxml_domain dom;
	unsigned started0;
	struct pk_error err;

	(void)state;
	pthread_mutex_lock(&g_ev.lock);
	started0 = g_ev.started;
	pthread_mutex_unlock(&g_ev.lock);

	assert_int_equal(hsm_virt_domain_create(v, xml, uuid, &err), 0);
	assert_true(pk_uuid_valid(uuid));
	/* Delivered by the event thread. */
	assert_true(wait_count(&g_ev.started, started0 + 1));

	assert_int_equal(hsm_virt_domain_state(v, "pkt-unit-a", &st, NULL, &err), 0);
	assert_int_equal(st, HSM_VIRT_STATE_RUNNING);
	assert_string_equal(hsm_virt_state_name(st), "running");

	assert_int_equal(hsm_virt_domain_xml(v, "pkt-unit-a", &live, &err), 0);
	assert_int_equal(hsm_vmxml_domain_parse(live, &dom, &err), 0);
	assert_true(dom.has_metadata);
	assert_int_equal(dom.ndrives, 2);
	assert_string_equal(dom.uuid, uuid);
	hsm_vmxml_domain_release(&dom);

	/* Ours is listed; the test driver's own "test" domain is not. */
	assert_true(listed(v, "pkt-unit-a"));
	assert_false(listed(v, "test"));

	/* A second create of the same name must not redefine it. */
	assert_int_equal(hsm_virt_domain_create(v, xml, NULL, &err), -EEXIST);
	assert_int_equal(err.code, PK_E_ALREADY_EXISTS);

	/* Starting a running domain fails (the test driver calls it an
	 * internal error; qemu's OPERATION_INVALID -> CONFLICT is checked by
	 * the integration test). */
	assert_true(hsm_virt_domain_start(v, "pkt-unit-a", &err) < 0);
	assert_non_null(strstr(err.message, "cannot start VM 'pkt-unit-a': "));

	assert_int_equal(hsm_virt_domain_destroy(v, "pkt-unit-a", &err), 0);
	assert_false(listed(v, "pkt-unit-a"));
	assert_int_equal(hsm_virt_domain_destroy(v, "pkt-unit-a", &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_string_equal(err.message, "VM 'pkt-unit-a' not found");
	hsm_virt_free(v);
}

static void test_virt__metadata(void **state)
{
	struct hsm_virt *v = connect_test();
	_cleanup_free_ char *xml = vm_xml("pkt-unit-b");
	_cleanup_free_ char *md = NULL;
	_cleanup_free_ char *md2 = NULL;
	_cleanup_free_ char *newmd = NULL;
	_cleanup_free_ struct hsm_drive_id *drives = NULL;
	_cleanup_free_ struct hsm_drive_id *drives2 = NULL;
	char *none = NULL;
	size_t n = 0, n2 = 0;
	struct pk_error err;

	(void)state;
	assert_int_equal(hsm_virt_domain_create(v, xml, NULL, &err), 0);
	assert_int_equal(hsm_virt_metadata_get(v, "pkt-unit-b", &md, &err), 0);
	assert_int_equal(hsm_vmxml_metadata_parse(md, &drives, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(drives[0].target, "vda");
	assert_string_equal(drives[1].volume_id, VOL1);

	/* After a snapshot hsmd records the new leaf. */
	snprintf(drives[1].volume_id, PK_UUID_BUFLEN, VOL2);
	assert_int_equal(hsm_vmxml_metadata_build(drives, n, &newmd, &err), 0);
	assert_int_equal(hsm_virt_metadata_set(v, "pkt-unit-b", newmd, &err), 0);
	assert_int_equal(hsm_virt_metadata_get(v, "pkt-unit-b", &md2, &err), 0);
	assert_int_equal(hsm_vmxml_metadata_parse(md2, &drives2, &n2, &err), 0);
	assert_int_equal(n2, 2);
	assert_string_equal(drives2[1].volume_id, VOL2);
	assert_true(listed(v, "pkt-unit-b"));

	/* A domain that is not ours has no metadata. */
	assert_int_equal(hsm_virt_metadata_get(v, "test", &none, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_null(none);
	assert_int_equal(hsm_virt_metadata_set(v, "pkt-unit-b", NULL, &err), -EINVAL);
	assert_int_equal(hsm_virt_metadata_set(v, "pkt-unit-b", "<vm", &err) < 0, 1);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);

	assert_int_equal(hsm_virt_domain_destroy(v, "pkt-unit-b", &err), 0);
	hsm_virt_free(v);
}

/* Shuts the domain off, keeping its definition (hsm/virt.h has no such verb). */
static void power_off(const char *name)
{
	virConnectPtr c = virConnectOpen(TEST_URI);
	virDomainPtr d = c ? virDomainLookupByName(c, name) : NULL;

	assert_non_null(d);
	assert_int_equal(virDomainDestroy(d), 0);
	virDomainFree(d);
	virConnectClose(c);
}

static void test_virt__disk_source_set(void **state)
{
	struct hsm_virt *v = connect_test();
	_cleanup_free_ char *xml = vm_xml("pkt-unit-src");
	_cleanup_free_ char *def = NULL;
	struct hsm_vmxml_domain dom;
	const struct hsm_vmxml_disk *vda;
	struct pk_error err;

	(void)state;
	assert_int_equal(hsm_virt_domain_create(v, xml, NULL, &err), 0);
	/* Running: refused, nothing changes. */
	assert_int_equal(hsm_virt_disk_source_set(v, "pkt-unit-src", "vda", "/nonexistent/pk/base",
						  HSM_DISK_FORMAT_RAW, VOL2, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_CONFLICT);
	power_off("pkt-unit-src");
	assert_int_equal(hsm_virt_disk_source_set(v, "pkt-unit-src", "vda", "/nonexistent/pk/base",
						  HSM_DISK_FORMAT_RAW, VOL2, &err), 0);
	assert_int_equal(hsm_virt_domain_xml(v, "pkt-unit-src", &def, &err), 0);
	assert_int_equal(hsm_vmxml_domain_parse(def, &dom, &err), 0);
	vda = hsm_vmxml_domain_disk(&dom, "vda");
	assert_non_null(vda);
	assert_string_equal(vda->layers[0].path, "/nonexistent/pk/base");
	assert_int_equal(vda->layers[0].format, HSM_DISK_FORMAT_RAW);
	assert_string_equal(hsm_vmxml_domain_drive(&dom, "vda")->volume_id, VOL2);
	assert_string_equal(hsm_vmxml_domain_drive(&dom, "vdb")->volume_id, VOL1);
	assert_string_equal(hsm_vmxml_domain_disk(&dom, "vdb")->layers[0].path,
			    "/nonexistent/pk/b.qcow2");
	hsm_vmxml_domain_release(&dom);
	/* Unknown disk, unknown VM. */
	assert_int_equal(hsm_virt_disk_source_set(v, "pkt-unit-src", "vdq", "/x",
						  HSM_DISK_FORMAT_RAW, VOL2, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_int_equal(hsm_virt_disk_source_set(v, "pkt-unit-nosuch", "vda", "/x",
						  HSM_DISK_FORMAT_RAW, VOL2, &err), -ENOENT);
	assert_int_equal(hsm_virt_domain_destroy(v, "pkt-unit-src", &err), 0);
	hsm_virt_free(v);
}

static void test_virt__bad_definitions(void **state)
{
	struct hsm_virt *v = connect_test();
	struct pk_error err;

	(void)state;
	/* Refused by our parser. */
	assert_true(hsm_virt_domain_create(v, "<domain", NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	/* Parsed by us, refused by libvirt's schema validation. */
	assert_true(hsm_virt_domain_create(v, "<domain type='qemu'><name>pkt-unit-bad</name>"
					      "<bogus/></domain>",
					   NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "cannot define VM 'pkt-unit-bad'"));
	assert_false(listed(v, "pkt-unit-bad"));
	hsm_virt_free(v);
}

static void test_virt__unknown_vm_is_not_found(void **state)
{
	struct hsm_virt *v = connect_test();
	struct hsm_virt_job_info info;
	enum hsm_virt_state st;
	char *xml = NULL;
	struct pk_error err;

	(void)state;
	assert_int_equal(hsm_virt_domain_xml(v, "pkt-nope", &xml, &err), -ENOENT);
	assert_int_equal(hsm_virt_domain_state(v, "pkt-nope", &st, NULL, &err), -ENOENT);
	assert_int_equal(hsm_virt_domain_start(v, "pkt-nope", &err), -ENOENT);
	assert_int_equal(hsm_virt_metadata_get(v, "pkt-nope", &xml, &err), -ENOENT);
	assert_int_equal(hsm_virt_snapshot(v, "pkt-nope", "<domainsnapshot/>", false, &err),
			 -ENOENT);
	assert_int_equal(hsm_virt_block_commit(v, "pkt-nope", "vda", "vda[1]", "vda[2]", false, 0,
					       &err),
			 -ENOENT);
	assert_int_equal(hsm_virt_block_pull(v, "pkt-nope", "vda", NULL, 0, &err), -ENOENT);
	assert_int_equal(hsm_virt_block_job_info(v, "pkt-nope", "vda", &info, &err), -ENOENT);
	assert_int_equal(hsm_virt_block_job_abort(v, "pkt-nope", "vda", true, &err), -ENOENT);
	assert_int_equal(hsm_virt_block_job_set_bandwidth(v, "pkt-nope", "vda", 1, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_null(xml);
	hsm_virt_free(v);
}

static void test_virt__arguments_are_checked(void **state)
{
	struct hsm_virt *v = connect_test();
	struct hsm_virt_job_info info;
	struct pk_error err;

	(void)state;
	assert_int_equal(hsm_virt_domain_destroy(v, NULL, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_int_equal(hsm_virt_domain_destroy(v, "a\nb", &err), -EINVAL);
	assert_int_equal(hsm_virt_block_commit(v, "test", NULL, "vda[1]", "vda[2]", false, 0, &err),
			 -EINVAL);
	/* A non-active commit needs a top; an active one does not. */
	assert_int_equal(hsm_virt_block_commit(v, "test", "vda", "vda[1]", NULL, false, 0, &err),
			 -EINVAL);
	assert_int_equal(hsm_virt_block_job_info(v, "test", "", &info, &err), -EINVAL);
	assert_int_equal(hsm_virt_snapshot(v, "test", NULL, false, &err), -EINVAL);
	hsm_virt_free(v);
}

/* The test driver has no block jobs: its "not supported" maps to UNSUPPORTED. */
static void test_virt__unsupported_is_reported(void **state)
{
	struct hsm_virt *v = connect_test();
	_cleanup_free_ char *xml = vm_xml("pkt-unit-c");
	struct hsm_virt_job_info info;
	struct pk_error err;

	(void)state;
	assert_int_equal(hsm_virt_domain_create(v, xml, NULL, &err), 0);
	assert_true(hsm_virt_block_commit(v, "pkt-unit-c", "vda", "vda[1]", NULL, true, 1 << 20,
					  &err) < 0);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	assert_non_null(strstr(err.message, "cannot start active commit of VM 'pkt-unit-c' disk "
					    "'vda' (base 'vda[1]', top 'leaf')"));
	assert_true(hsm_virt_block_pull(v, "pkt-unit-c", "vda", "vda[1]", 0, &err) < 0);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	assert_true(hsm_virt_block_job_info(v, "pkt-unit-c", "vda", &info, &err) < 0);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	assert_true(hsm_virt_block_job_abort(v, "pkt-unit-c", "vda", false, &err) < 0);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	assert_true(hsm_virt_block_job_set_bandwidth(v, "pkt-unit-c", "vda", 0, &err) < 0);
	assert_int_equal(err.code, PK_E_UNSUPPORTED);
	assert_int_equal(hsm_virt_domain_destroy(v, "pkt-unit-c", &err), 0);
	hsm_virt_free(v);
}

static void test_virt__names(void **state)
{
	(void)state;
	assert_string_equal(hsm_virt_job_type_name(HSM_VIRT_JOB_ACTIVE_COMMIT), "active-commit");
	assert_string_equal(hsm_virt_job_type_name(99), "unknown");
	assert_string_equal(hsm_virt_job_status_name(HSM_VIRT_JOB_READY), "ready");
	assert_string_equal(hsm_virt_job_status_name(-1), "unknown");
	assert_string_equal(hsm_virt_lifecycle_name(HSM_VIRT_EV_STOPPED), "stopped");
	assert_string_equal(hsm_virt_state_name(HSM_VIRT_STATE_PAUSED), "paused");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virt__connect_and_free_repeatedly),
		cmocka_unit_test(test_virt__unreachable_uri_is_unavailable),
		cmocka_unit_test(test_virt__domain_life_cycle),
		cmocka_unit_test(test_virt__metadata),
		cmocka_unit_test(test_virt__disk_source_set),
		cmocka_unit_test(test_virt__bad_definitions),
		cmocka_unit_test(test_virt__unknown_vm_is_not_found),
		cmocka_unit_test(test_virt__arguments_are_checked),
		cmocka_unit_test(test_virt__unsupported_is_reported),
		cmocka_unit_test(test_virt__names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
