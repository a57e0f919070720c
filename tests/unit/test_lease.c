/* The SPM lease (spm/lease*.c) against an in-memory sanlock. */
/* pk-test-fakes: fake_sanlock */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_rv.h>

#include "spm/lease.h"
#include "tests/fakes/fake_sanlock.h"

#define LS "2f6f7a3c-4a49-4d4e-9d8e-2b3f1c0d9e11"
#define IDS "/dev/" LS "/ids"
#define LEASES "/dev/" LS "/leases"
#define RUN_DIR "/run/pk-test-lease/sanlock"

static struct spm_lease_config config(uint64_t host_id)
{
	struct spm_lease_config cfg = {
		.lockspace = LS,
		.ids_path = IDS,
		.leases_path = LEASES,
		.host_id = host_id,
		.io_timeout = 1,
		.sanlock_run_dir = RUN_DIR,
	};
	return cfg;
}

static int setup(void **state)
{
	(void)state;
	fake_sanlock_reset();
	return 0;
}

/* A formatted domain and a lease object for host 1 that joined it. */
static struct spm_lease *joined_lease(uint64_t host_id)
{
	struct spm_lease_config cfg = config(host_id);
	struct spm_lease *lease = NULL;
	struct pk_error err;

	assert_int_equal(spm_lease_format_lockspace(&cfg, &err), 0);
	assert_int_equal(spm_lease_format_resource(&cfg, &err), 0);
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), 0);
	assert_int_equal(spm_lease_join(lease, 1000, &err), 0);
	return lease;
}

static void test_lease__config_is_validated(void **state)
{
	struct spm_lease_config cfg;
	struct spm_lease *lease = NULL;
	struct pk_error err;

	(void)state;
	cfg = config(0);
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), -EINVAL);
	assert_int_equal(err.code, PK_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "host id 0"));

	cfg = config(2001);
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), -EINVAL);

	cfg = config(1);
	cfg.lockspace = "has:colon";
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), -EINVAL);
	assert_non_null(strstr(err.message, "lockspace name"));

	cfg = config(1);
	cfg.lockspace = "012345678901234567890123456789012345678901234567"; /* 48 */
	assert_int_equal(spm_lease_format_lockspace(&cfg, &err), -EINVAL);

	cfg = config(1);
	cfg.ids_path = "relative/ids";
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), -EINVAL);
	assert_non_null(strstr(err.message, "ids path 'relative/ids'"));

	cfg = config(1);
	cfg.leases_path = "/a:b";
	assert_int_equal(spm_lease_format_resource(&cfg, &err), -EINVAL);

	cfg = config(1);
	cfg.io_timeout = 0;
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), -EINVAL);
	assert_non_null(strstr(err.message, "io_timeout"));

	assert_null(lease);
	assert_int_equal(fake_sanlock_calls(FAKE_SANLOCK_WRITE_LOCKSPACE), 0);
}

static void test_lease__format_writes_lockspace_and_sdm(void **state)
{
	struct spm_lease_config cfg = config(0);
	struct spm_lease_owner owner = { 9, 9 };
	struct pk_error err;

	(void)state;
	cfg.io_timeout = 7;
	assert_int_equal(spm_lease_format_lockspace(&cfg, &err), 0);
	assert_true(fake_sanlock_lockspace_written(IDS, LS));
	assert_int_equal(fake_sanlock_last_io_timeout(), 7);
	assert_int_equal(fake_sanlock_last_ls_flags(), SANLK_LSF_ALIGN1M | SANLK_LSF_SECTOR512);

	assert_int_equal(spm_lease_format_resource(&cfg, &err), 0);
	assert_true(fake_sanlock_resource_written(LEASES, SPM_LEASE_SDM_OFFSET, LS, "SDM"));
	assert_int_equal(fake_sanlock_last_res_flags(), SANLK_RES_ALIGN1M | SANLK_RES_SECTOR512);

	assert_int_equal(spm_lease_read_owner(&cfg, &owner, &err), 0);
	assert_int_equal(owner.host_id, 0);
	assert_string_equal(getenv("SANLOCK_RUN_DIR"), RUN_DIR);
}

static void test_lease__daemon_down_is_unavailable_naming_run_dir(void **state)
{
	struct spm_lease_config cfg = config(1);
	struct spm_lease *lease = NULL;
	struct pk_error err;

	(void)state;
	fake_sanlock_set_running(false);
	assert_int_equal(spm_lease_format_lockspace(&cfg, &err), -ECONNREFUSED);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_non_null(strstr(err.message, "SANLOCK_RUN_DIR='" RUN_DIR "'"));

	/* new() does not contact sanlock; the first real call fails. */
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), 0);
	assert_true(spm_lease_join(lease, 100, &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	assert_true(spm_lease_acquire(lease, NULL, &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	spm_lease_free(lease);
}

static void test_lease__join_is_asynchronous_and_polled(void **state)
{
	struct spm_lease_config cfg = config(3);
	struct spm_lease *lease = NULL;
	enum spm_lease_join_state js = SPM_LEASE_JOINED;
	struct pk_error err;

	(void)state;
	assert_int_equal(spm_lease_format_lockspace(&cfg, &err), 0);
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), 0);
	assert_int_equal(spm_lease_join_poll(lease, &js, &err), 0);
	assert_int_equal(js, SPM_LEASE_NOT_JOINED);

	fake_sanlock_set_join_polls(2);
	assert_int_equal(spm_lease_join_start(lease, &err), 0);
	assert_true(fake_sanlock_last_add_flags() & SANLK_ADD_ASYNC);
	assert_int_equal(fake_sanlock_last_io_timeout(), 1);
	assert_int_equal(spm_lease_join_poll(lease, &js, &err), 0);
	assert_int_equal(js, SPM_LEASE_JOINING);
	/* Asking again while joining is harmless. */
	assert_int_equal(spm_lease_join_start(lease, &err), 0);
	assert_int_equal(spm_lease_join_poll(lease, &js, &err), 0);
	assert_int_equal(js, SPM_LEASE_JOINING);
	assert_int_equal(spm_lease_join_poll(lease, &js, &err), 0);
	assert_int_equal(js, SPM_LEASE_JOINED);
	assert_true(fake_sanlock_joined(LS, 3));

	/* Joining a joined lockspace succeeds at once. */
	assert_int_equal(spm_lease_join(lease, 0, &err), 0);
	spm_lease_free(lease);
}

static void test_lease__join_failure_and_timeout(void **state)
{
	struct spm_lease_config cfg = config(1);
	struct spm_lease *lease = NULL;
	struct pk_error err;

	(void)state;
	/* Lockspace never written: sanlock's async join ends in failure. */
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), 0);
	assert_int_equal(spm_lease_join(lease, 1000, &err), -EIO);
	assert_int_equal(err.code, PK_E_IO);
	assert_non_null(strstr(err.message, "host id 1"));
	assert_non_null(strstr(err.message, "sanlock log"));

	assert_int_equal(spm_lease_format_lockspace(&cfg, &err), 0);
	fake_sanlock_set_join_polls(1000000);
	assert_int_equal(spm_lease_join(lease, 150, &err), -ETIMEDOUT);
	assert_int_equal(err.code, PK_E_TIMEOUT);
	assert_non_null(strstr(err.message, "did not finish in 150 ms"));
	spm_lease_free(lease);
}

static void test_lease__acquire_needs_the_lockspace(void **state)
{
	struct spm_lease_config cfg = config(1);
	struct spm_lease *lease = NULL;
	struct pk_error err;

	(void)state;
	assert_int_equal(spm_lease_format_lockspace(&cfg, &err), 0);
	assert_int_equal(spm_lease_format_resource(&cfg, &err), 0);
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), 0);
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "not joined"));
	assert_int_equal(spm_lease_check(lease, &err), -EPERM);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	spm_lease_free(lease);
}

static void test_lease__acquire_check_release(void **state)
{
	struct spm_lease *lease = joined_lease(1);
	struct spm_lease_status st;
	struct pk_error err;

	(void)state;
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), 0);
	assert_int_equal(fake_sanlock_owner(LS, "SDM"), 1);
	assert_int_equal(spm_lease_check(lease, &err), 0);
	/* A second acquire is a no-op on the same registration. */
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), 0);
	assert_int_equal(fake_sanlock_calls(FAKE_SANLOCK_REGISTER), 1);
	assert_int_equal(fake_sanlock_calls(FAKE_SANLOCK_ACQUIRE), 1);

	assert_int_equal(spm_lease_status(lease, &st, &err), 0);
	assert_int_equal(st.join, SPM_LEASE_JOINED);
	assert_true(st.held);
	assert_int_equal(st.owner.host_id, 1);

	assert_int_equal(spm_lease_release(lease, &err), 0);
	assert_int_equal(fake_sanlock_owner(LS, "SDM"), 0);
	assert_int_equal(spm_lease_check(lease, &err), -EPERM);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_non_null(strstr(err.message, "does not hold"));
	assert_int_equal(spm_lease_release(lease, &err), 0);

	/* Taken again after a release, on the same registration. */
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), 0);
	assert_int_equal(spm_lease_check(lease, &err), 0);
	assert_int_equal(fake_sanlock_calls(FAKE_SANLOCK_REGISTER), 1);
	spm_lease_free(lease);
}

static void test_lease__busy_names_the_holder(void **state)
{
	struct spm_lease *lease = joined_lease(1);
	struct spm_lease_owner holder = { 0, 0 };
	struct pk_error err;

	(void)state;
	fake_sanlock_set_owner(LS, "SDM", 2);
	assert_int_equal(spm_lease_acquire(lease, &holder, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_BUSY);
	assert_int_equal(holder.host_id, 2);
	assert_non_null(strstr(err.message, "held by host 2"));
	assert_int_equal(spm_lease_check(lease, &err), -EPERM);

	/* Holder unknown (owner read fails): still BUSY, says so. */
	fake_sanlock_fail_next(FAKE_SANLOCK_READ_OWNERS, SANLK_AIO_TIMEOUT);
	holder.host_id = 99;
	assert_int_equal(spm_lease_acquire(lease, &holder, &err), -EBUSY);
	assert_int_equal(holder.host_id, 0);
	assert_non_null(strstr(err.message, "holder unknown"));

	/* Host 2 stops being SPM: host 1 gets the lease. */
	fake_sanlock_set_owner(LS, "SDM", 0);
	assert_int_equal(spm_lease_acquire(lease, &holder, &err), 0);
	assert_int_equal(fake_sanlock_owner(LS, "SDM"), 1);
	spm_lease_free(lease);
}

static void test_lease__mark_lost_stops_mutations(void **state)
{
	struct spm_lease *lease = joined_lease(1);
	struct pk_error err;

	(void)state;
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), 0);
	spm_lease_mark_lost(lease);
	assert_int_equal(spm_lease_check(lease, &err), -EPERM);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_non_null(strstr(err.message, "was lost"));
	/* Checking does not even ask sanlock any more. */
	assert_int_equal(fake_sanlock_calls(FAKE_SANLOCK_INQUIRE), 0);
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), -ECANCELED);
	assert_int_equal(err.code, PK_E_ABORTED);
	spm_lease_free(lease);
}

static void test_lease__lockspace_loss_is_detected_by_check(void **state)
{
	struct spm_lease *lease = joined_lease(1);
	struct pk_error err;

	(void)state;
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), 0);
	fake_sanlock_lose_lockspace(LS);
	assert_int_equal(spm_lease_check(lease, &err), -EPERM);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_non_null(strstr(err.message, "lease was lost"));
	/* Storage still names us until another host takes over. */
	assert_int_equal(fake_sanlock_owner(LS, "SDM"), 1);
	spm_lease_free(lease);
}

static void test_lease__check_fails_closed(void **state)
{
	struct spm_lease *lease = joined_lease(1);
	struct pk_error err;

	(void)state;
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), 0);

	/* sanlock answers an error: the lease cannot be confirmed. */
	fake_sanlock_fail_next(FAKE_SANLOCK_INQUIRE, -EINVAL);
	assert_int_equal(spm_lease_check(lease, &err), -EPERM);
	assert_int_equal(err.code, PK_E_NOT_SPM);
	assert_int_equal(spm_lease_check(lease, &err), 0);

	/* The daemon went away. */
	fake_sanlock_set_running(false);
	assert_true(spm_lease_check(lease, &err) < 0);
	assert_int_equal(err.code, PK_E_UNAVAILABLE);
	fake_sanlock_set_running(true);
	assert_int_equal(spm_lease_check(lease, &err), -EPERM);
	spm_lease_free(lease);
}

static void test_lease__sanlock_failures_are_mapped(void **state)
{
	struct spm_lease *lease = joined_lease(1);
	struct spm_lease_config cfg = config(1);
	struct spm_lease_owner owner;
	struct pk_error err;

	(void)state;
	fake_sanlock_fail_next(FAKE_SANLOCK_ACQUIRE, SANLK_AIO_TIMEOUT);
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), -EIO);
	assert_int_equal(err.code, PK_E_IO);
	assert_non_null(strstr(err.message, LEASES));

	fake_sanlock_fail_next(FAKE_SANLOCK_REGISTER, -EMFILE);
	spm_lease_free(lease);
	lease = NULL;
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), 0);
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), -EMFILE);
	assert_int_equal(err.code, PK_E_INTERNAL);

	fake_sanlock_fail_next(FAKE_SANLOCK_WRITE_LOCKSPACE, SANLK_LEADER_WRITE);
	assert_int_equal(spm_lease_format_lockspace(&cfg, &err), -EIO);
	assert_int_equal(err.code, PK_E_IO);
	assert_non_null(strstr(err.message, IDS));

	fake_sanlock_fail_next(FAKE_SANLOCK_WRITE_RESOURCE, -ENODEV);
	assert_int_equal(spm_lease_format_resource(&cfg, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "cannot open " LEASES));

	/* An area without our lease: not formatted, or another domain's. */
	cfg.leases_path = "/dev/other/leases";
	assert_int_equal(spm_lease_read_owner(&cfg, &owner, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "not formatted"));
	spm_lease_free(lease);
}

static void test_lease__unformatted_resource_is_not_found(void **state)
{
	struct spm_lease_config cfg = config(1);
	struct spm_lease *lease = NULL;
	struct pk_error err;

	(void)state;
	assert_int_equal(spm_lease_format_lockspace(&cfg, &err), 0);
	assert_int_equal(spm_lease_new(&cfg, &lease, &err), 0);
	assert_int_equal(spm_lease_join(lease, 1000, &err), 0);
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), -ENOENT);
	assert_int_equal(err.code, PK_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "not formatted"));
	spm_lease_free(lease);
}

static void test_lease__free_releases_through_the_registration(void **state)
{
	struct spm_lease *lease = joined_lease(1);
	struct spm_lease *other = NULL;
	struct spm_lease_config cfg = config(1);
	struct pk_error err;

	(void)state;
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), 0);
	/* A second process of the same host cannot take it meanwhile. */
	assert_int_equal(spm_lease_new(&cfg, &other, &err), 0);
	assert_int_equal(spm_lease_acquire(other, NULL, &err), -EBUSY);
	assert_non_null(strstr(err.message, "another process of this host (host 1)"));

	spm_lease_free(lease); /* closes the registered fd: sanlock releases */
	assert_int_equal(fake_sanlock_owner(LS, "SDM"), 0);
	assert_int_equal(spm_lease_acquire(other, NULL, &err), 0);
	assert_int_equal(spm_lease_check(other, &err), 0);
	spm_lease_free(other);
}

static void test_lease__leave(void **state)
{
	struct spm_lease *lease = joined_lease(1);
	struct spm_lease *other = NULL;
	struct spm_lease_config cfg = config(1);
	enum spm_lease_join_state js;
	struct pk_error err;

	(void)state;
	assert_int_equal(spm_lease_acquire(lease, NULL, &err), 0);
	assert_int_equal(spm_lease_leave(lease, &err), 0);
	assert_false(fake_sanlock_joined(LS, 1));
	assert_int_equal(fake_sanlock_owner(LS, "SDM"), 0);
	assert_int_equal(spm_lease_join_poll(lease, &js, &err), 0);
	assert_int_equal(js, SPM_LEASE_NOT_JOINED);
	/* Leaving again is fine. */
	assert_int_equal(spm_lease_leave(lease, &err), 0);

	/* Another process still holds a lease in the lockspace: refused. */
	assert_int_equal(spm_lease_join(lease, 1000, &err), 0);
	assert_int_equal(spm_lease_new(&cfg, &other, &err), 0);
	assert_int_equal(spm_lease_acquire(other, NULL, &err), 0);
	assert_int_equal(spm_lease_leave(lease, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_IN_USE);
	assert_true(fake_sanlock_joined(LS, 1));
	spm_lease_free(other);
	assert_int_equal(spm_lease_leave(lease, &err), 0);
	spm_lease_free(lease);
}

static void test_lease__accessors_and_null_free(void **state)
{
	struct spm_lease *lease = joined_lease(5);

	(void)state;
	assert_int_equal(spm_lease_host_id(lease), 5);
	assert_string_equal(spm_lease_lockspace(lease), LS);
	spm_lease_free(lease);
	spm_lease_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_lease__config_is_validated, setup),
		cmocka_unit_test_setup(test_lease__format_writes_lockspace_and_sdm, setup),
		cmocka_unit_test_setup(test_lease__daemon_down_is_unavailable_naming_run_dir, setup),
		cmocka_unit_test_setup(test_lease__join_is_asynchronous_and_polled, setup),
		cmocka_unit_test_setup(test_lease__join_failure_and_timeout, setup),
		cmocka_unit_test_setup(test_lease__acquire_needs_the_lockspace, setup),
		cmocka_unit_test_setup(test_lease__acquire_check_release, setup),
		cmocka_unit_test_setup(test_lease__busy_names_the_holder, setup),
		cmocka_unit_test_setup(test_lease__mark_lost_stops_mutations, setup),
		cmocka_unit_test_setup(test_lease__lockspace_loss_is_detected_by_check, setup),
		cmocka_unit_test_setup(test_lease__check_fails_closed, setup),
		cmocka_unit_test_setup(test_lease__sanlock_failures_are_mapped, setup),
		cmocka_unit_test_setup(test_lease__unformatted_resource_is_not_found, setup),
		cmocka_unit_test_setup(test_lease__free_releases_through_the_registration, setup),
		cmocka_unit_test_setup(test_lease__leave, setup),
		cmocka_unit_test_setup(test_lease__accessors_and_null_free, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
