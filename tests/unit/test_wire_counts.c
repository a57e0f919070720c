/*
 * Repeated fields from the wire are counted before anything is allocated
 * for them (proto/wire.h): hsmd's VmCreate and VmSnapshot with more disks
 * than a VM can have answer INVALID_ARGUMENT naming the field and the
 * limit, without touching a single entry or the daemon's state.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/arena.h"
#include "common/log.h"
#include "hsm/rpc.h"
#include "hsm/vmxml.h"
#include "proto/codec.h"
#include "proto/rpc.pb-c.h"
#include "proto/wire.h"

/* Calls hsmd's verb for req with no daemon behind it: only what precedes any use of it runs. */
static int call(const Pk__Request *req, struct pk_error *err)
{
	Pk__Response resp = PK__RESPONSE__INIT;
	struct pk_arena a;
	int r = -ENOSYS;

	pk_arena_init(&a);
	for (size_t i = 0; i < hsm_nverbs; i++) {
		if (hsm_verbs[i].call == req->call_case) {
			r = hsm_verbs[i].fn(NULL, req, &resp, &a, err);
		}
	}
	pk_arena_release(&a);
	return r;
}

static void test_wire_counts__the_check(void **state)
{
	struct pk_error err;

	(void)state;
	assert_int_equal(pk_wire_count_check("pvs", 32, 32, &err), 0);
	assert_int_equal(pk_wire_count_check("pvs", 0, 32, &err), 0);
	assert_int_equal(pk_wire_count_check("pvs", SIZE_MAX, 32, &err), -E2BIG);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "pvs has"));
	assert_non_null(strstr(err.message, "the limit of 32"));
}

static void test_wire_counts__hsm_disks(void **state)
{
	Pk__Request req = PK__REQUEST__INIT;
	Pk__VmCreateRequest vc = PK__VM_CREATE_REQUEST__INIT;
	Pk__VmSpec spec = PK__VM_SPEC__INIT;
	Pk__VmSnapshotRequest vs = PK__VM_SNAPSHOT_REQUEST__INIT;
	struct pk_error err;
	char msg[128];

	(void)state;
	/* Entries never read: a count far beyond the array would crash if it were. */
	spec.name = "vm";
	spec.n_disks = (size_t)1 << 40;
	spec.disks = NULL;
	vc.spec = &spec;
	req.call_case = PK__REQUEST__CALL_VM_CREATE;
	req.vm_create = &vc;
	assert_true(call(&req, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	snprintf(msg, sizeof(msg), "spec.disks has %zu entries, more than the limit of %d",
		 spec.n_disks, HSM_VM_DISKS_MAX);
	assert_string_equal(err.message, msg);

	vs.vm = "vm";
	vs.n_disks = HSM_VM_DISKS_MAX + 1;
	vs.disks = NULL;
	req.call_case = PK__REQUEST__CALL_VM_SNAPSHOT;
	req.vm_snapshot = &vs;
	assert_true(call(&req, &err) < 0);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	snprintf(msg, sizeof(msg), "disks has %d entries, more than the limit of %d",
		 HSM_VM_DISKS_MAX + 1, HSM_VM_DISKS_MAX);
	assert_string_equal(err.message, msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_counts__the_check),
		cmocka_unit_test(test_wire_counts__hsm_disks),
	};

	pk_log_setup("test", PK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
