/* Resource locks of both daemons (common/locks.c). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/locks.h"

/* The namespaces of spmd, in its order. */
enum { NS_DOMAIN, NS_IMAGE, NS_VOLUME };
static const char *const ns_names[] = { "domain", "image", "volume" };

static struct pk_locks *locks_new(void)
{
	return pk_locks_new(ns_names, 3);
}

/* Returns once n threads wait for (ns, name); fails the test after 10 s. */
static void wait_for_waiters(struct pk_locks *l, unsigned ns, const char *name, size_t n)
{
	uint64_t until = pk_clock_monotonic_ms() + 10000;
	const struct timespec tick = { 0, 1000 * 1000 };

	while (pk_locks_waiting(l, ns, name) < n) {
		assert_true(pk_clock_monotonic_ms() < until);
		nanosleep(&tick, NULL);
	}
}

static void test_locks__shared_coexist_exclusive_busy(void **state)
{
	struct pk_locks *l = locks_new();
	struct pk_lockset a, b, c;
	struct pk_error err;
	uint64_t t0;

	(void)state;
	pk_lockset_init(&a, l, "a");
	pk_lockset_add(&a, NS_DOMAIN, "d", PK_LOCK_SHARED);
	pk_lockset_add(&a, NS_IMAGE, "i1", PK_LOCK_EXCLUSIVE);
	assert_int_equal(pk_lockset_acquire(&a, 100, &err), 0);

	/* Another image in the same domain: no wait. */
	pk_lockset_init(&b, l, "b");
	pk_lockset_add(&b, NS_IMAGE, "i2", PK_LOCK_EXCLUSIVE);
	pk_lockset_add(&b, NS_DOMAIN, "d", PK_LOCK_SHARED);
	assert_int_equal(pk_lockset_acquire(&b, 100, &err), 0);

	/* The same image: BUSY after the timeout, naming the holder. */
	pk_lockset_init(&c, l, "create_volume x");
	pk_lockset_add(&c, NS_DOMAIN, "d", PK_LOCK_SHARED);
	pk_lockset_add(&c, NS_IMAGE, "i1", PK_LOCK_EXCLUSIVE);
	t0 = pk_clock_monotonic_ms();
	assert_int_equal(pk_lockset_acquire(&c, 150, &err), -EBUSY);
	assert_true(pk_clock_monotonic_ms() - t0 >= 140);
	assert_int_equal(err.code, PK_E_BUSY);
	assert_non_null(strstr(err.message, "image 'i1' is locked by 'a'"));
	/* Nothing of c is held after the failure. */
	assert_false(c.entries[0].held);
	pk_lockset_release(&c);

	pk_lockset_release(&a);
	assert_int_equal(pk_lockset_acquire(&c, 100, &err), 0);
	pk_lockset_release(&c);
	pk_lockset_release(&b);
	pk_lockset_release(&b); /* twice is harmless */
	assert_int_equal(pk_locks_active(l), 0);
	pk_locks_free(l);
}

struct waiter {
	struct pk_locks *l;
	int rc;
	uint64_t waited;
};

static void *exclusive_waiter(void *arg)
{
	struct waiter *w = arg;
	struct pk_lockset s;
	struct pk_error err;
	uint64_t t0 = pk_clock_monotonic_ms();

	pk_lockset_init(&s, w->l, "waiter");
	pk_lockset_add(&s, NS_DOMAIN, "d", PK_LOCK_EXCLUSIVE);
	w->rc = pk_lockset_acquire(&s, 2000, &err);
	w->waited = pk_clock_monotonic_ms() - t0;
	pk_lockset_release(&s);
	return NULL;
}

static void test_locks__writer_waits_then_gets_it_and_blocks_new_readers(void **state)
{
	struct pk_locks *l = locks_new();
	struct pk_lockset r1, r2;
	struct waiter w = { l, -1, 0 };
	struct pk_error err;
	pthread_t t;

	(void)state;
	pk_lockset_init(&r1, l, "reader1");
	pk_lockset_add(&r1, NS_DOMAIN, "d", PK_LOCK_SHARED);
	assert_int_equal(pk_lockset_acquire(&r1, 100, &err), 0);
	pthread_create(&t, NULL, exclusive_waiter, &w);
	wait_for_waiters(l, NS_DOMAIN, "d", 1);
	/* A new reader queues behind the waiting writer, for all its timeout. */
	pk_lockset_init(&r2, l, "reader2");
	pk_lockset_add(&r2, NS_DOMAIN, "d", PK_LOCK_SHARED);
	assert_int_equal(pk_lockset_acquire(&r2, 150, &err), -EBUSY);
	pk_lockset_release(&r1);
	pthread_join(t, NULL);
	assert_int_equal(pk_locks_waiting(l, NS_DOMAIN, "d"), 0);
	assert_int_equal(w.rc, 0);
	assert_true(w.waited >= 150);
	assert_int_equal(pk_lockset_acquire(&r2, 100, &err), 0);
	pk_lockset_release(&r2);
	assert_int_equal(pk_locks_active(l), 0);
	pk_locks_free(l);
}

struct crosser {
	struct pk_locks *l;
	int flip;
	int ok;
};

static void *cross_locker(void *arg)
{
	struct crosser *c = arg;
	struct pk_error err;

	for (int i = 0; i < 2000; i++) {
		struct pk_lockset s;
		pk_lockset_init(&s, c->l, "x");
		/* Listed in opposite orders by the two threads: no deadlock. */
		pk_lockset_add(&s, NS_VOLUME, c->flip ? "a" : "b", PK_LOCK_EXCLUSIVE);
		pk_lockset_add(&s, NS_VOLUME, c->flip ? "b" : "a", PK_LOCK_EXCLUSIVE);
		pk_lockset_add(&s, NS_IMAGE, "i", PK_LOCK_SHARED);
		if (pk_lockset_acquire(&s, 5000, &err) == 0) {
			c->ok++;
		}
		pk_lockset_release(&s);
	}
	return NULL;
}

static void test_locks__opposite_orders_never_deadlock(void **state)
{
	struct pk_locks *l = locks_new();
	struct crosser a = { l, 0, 0 }, b = { l, 1, 0 };
	pthread_t ta, tb;

	(void)state;
	pthread_create(&ta, NULL, cross_locker, &a);
	pthread_create(&tb, NULL, cross_locker, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.ok, 2000);
	assert_int_equal(b.ok, 2000);
	assert_int_equal(pk_locks_active(l), 0);
	pk_locks_free(l);
}

/* The namespaces of hsmd: named keys, every lock exclusive. */
enum { NS_HSM_IMAGE, NS_HSM_VM };
static const char *const hsm_ns_names[] = { "image", "vm" };

static void test_locks__a_set_is_had_whole_or_not_at_all(void **state)
{
	struct pk_locks *l = pk_locks_new(hsm_ns_names, 2);
	struct pk_lockset holder, set, other;
	struct pk_error err;

	(void)state;
	pk_lockset_init(&holder, l, "VmDestroy");
	pk_lockset_add(&holder, NS_HSM_VM, "x", PK_LOCK_EXCLUSIVE);
	assert_int_equal(pk_lockset_acquire(&holder, 100, &err), 0);

	/* The image is free, the VM is not: the set gets neither. */
	pk_lockset_init(&set, l, "VmCreate");
	pk_lockset_add(&set, NS_HSM_VM, "x", PK_LOCK_EXCLUSIVE);
	pk_lockset_add(&set, NS_HSM_IMAGE, "d/i", PK_LOCK_EXCLUSIVE);
	assert_int_equal(pk_lockset_acquire(&set, 100, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_BUSY);
	for (size_t i = 0; i < set.n; i++) {
		assert_false(set.entries[i].held);
	}
	assert_int_equal(pk_locks_active(l), 1);
	pk_lockset_init(&other, l, "PrepareImage");
	pk_lockset_add(&other, NS_HSM_IMAGE, "d/i", PK_LOCK_EXCLUSIVE);
	assert_int_equal(pk_lockset_acquire(&other, 0, &err), 0);
	pk_lockset_release(&other);
	pk_lockset_release(&set); /* after a failure: harmless */

	/* Once the VM is free the whole set is had. */
	pk_lockset_release(&holder);
	assert_int_equal(pk_lockset_acquire(&set, 100, &err), 0);
	for (size_t i = 0; i < set.n; i++) {
		assert_true(set.entries[i].held);
	}
	assert_int_equal(pk_locks_active(l), 2);
	pk_lockset_release(&set);
	assert_int_equal(pk_locks_active(l), 0);
	pk_locks_free(l);
}

static void test_locks__a_resource_listed_twice_is_taken_once(void **state)
{
	struct pk_locks *l = locks_new();
	struct pk_lockset dup, mixed, reader;
	struct pk_error err;
	uint64_t t0;

	(void)state;
	/* Twice exclusive (two disks on one image): no wait for ourselves. */
	pk_lockset_init(&dup, l, "dup");
	pk_lockset_add(&dup, NS_IMAGE, "i", PK_LOCK_EXCLUSIVE);
	pk_lockset_add(&dup, NS_DOMAIN, "d", PK_LOCK_SHARED);
	pk_lockset_add(&dup, NS_IMAGE, "i", PK_LOCK_EXCLUSIVE);
	t0 = pk_clock_monotonic_ms();
	assert_int_equal(pk_lockset_acquire(&dup, 1000, &err), 0);
	assert_true(pk_clock_monotonic_ms() - t0 < 500);
	assert_int_equal(dup.n, 2);
	assert_int_equal(pk_locks_active(l), 2);
	pk_lockset_release(&dup);
	assert_int_equal(pk_locks_active(l), 0);

	/* Shared and exclusive of one resource: taken once, exclusive. */
	pk_lockset_init(&mixed, l, "mixed");
	pk_lockset_add(&mixed, NS_VOLUME, "v", PK_LOCK_SHARED);
	pk_lockset_add(&mixed, NS_VOLUME, "v", PK_LOCK_EXCLUSIVE);
	assert_int_equal(pk_lockset_acquire(&mixed, 1000, &err), 0);
	assert_int_equal(mixed.n, 1);
	pk_lockset_init(&reader, l, "reader");
	pk_lockset_add(&reader, NS_VOLUME, "v", PK_LOCK_SHARED);
	assert_int_equal(pk_lockset_acquire(&reader, 0, &err), -EBUSY);
	assert_non_null(strstr(err.message, "(exclusive)"));
	pk_lockset_release(&mixed);
	assert_int_equal(pk_lockset_acquire(&reader, 0, &err), 0);
	pk_lockset_release(&reader);
	assert_int_equal(pk_locks_active(l), 0);
	pk_locks_free(l);
}

static void test_locks__busy_names_the_caller_the_resource_and_its_holder(void **state)
{
	struct pk_locks *l = pk_locks_new(hsm_ns_names, 2);
	struct pk_lockset first, second;
	struct pk_error err;

	(void)state;
	pk_lockset_init(&first, l, "merge cleanup");
	pk_lockset_add(&first, NS_HSM_VM, "vm1", PK_LOCK_EXCLUSIVE);
	assert_int_equal(pk_lockset_acquire(&first, 100, &err), 0);
	pk_lockset_init(&second, l, "VmSnapshot");
	pk_lockset_add(&second, NS_HSM_VM, "vm1", PK_LOCK_EXCLUSIVE);
	assert_int_equal(pk_lockset_acquire(&second, 20, &err), -EBUSY);
	assert_int_equal(err.code, PK_E_BUSY);
	assert_non_null(strstr(err.message, "VmSnapshot: vm 'vm1' is locked by 'merge cleanup' "
					    "(exclusive), waited 20 ms"));
	pk_lockset_release(&first);
	pk_lockset_release(&second);
	assert_int_equal(pk_locks_active(l), 0);
	pk_locks_free(l);
}

static void test_locks__busy_comes_at_the_timeout(void **state)
{
	struct pk_locks *l = locks_new();
	struct pk_lockset holder, waiter;
	struct pk_error err;
	uint64_t t0, waited;

	(void)state;
	pk_lockset_init(&holder, l, "holder");
	pk_lockset_add(&holder, NS_DOMAIN, "d", PK_LOCK_EXCLUSIVE);
	assert_int_equal(pk_lockset_acquire(&holder, 0, &err), 0);
	pk_lockset_init(&waiter, l, "waiter");
	pk_lockset_add(&waiter, NS_DOMAIN, "d", PK_LOCK_SHARED);

	/* A zero timeout answers at once. */
	t0 = pk_clock_monotonic_ms();
	assert_int_equal(pk_lockset_acquire(&waiter, 0, &err), -EBUSY);
	assert_true(pk_clock_monotonic_ms() - t0 < 100);
	/* Otherwise not before the timeout, and not long after it. */
	t0 = pk_clock_monotonic_ms();
	assert_int_equal(pk_lockset_acquire(&waiter, 300, &err), -EBUSY);
	waited = pk_clock_monotonic_ms() - t0;
	assert_true(waited >= 290);
	assert_true(waited < 2000);
	assert_int_equal(err.code, PK_E_BUSY);
	pk_lockset_release(&holder);
	assert_int_equal(pk_lockset_acquire(&waiter, 0, &err), 0);
	pk_lockset_release(&waiter);
	assert_int_equal(pk_locks_active(l), 0);
	pk_locks_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locks__shared_coexist_exclusive_busy),
		cmocka_unit_test(test_locks__writer_waits_then_gets_it_and_blocks_new_readers),
		cmocka_unit_test(test_locks__opposite_orders_never_deadlock),
		cmocka_unit_test(test_locks__a_set_is_had_whole_or_not_at_all),
		cmocka_unit_test(test_locks__a_resource_listed_twice_is_taken_once),
		cmocka_unit_test(test_locks__busy_names_the_caller_the_resource_and_its_holder),
		cmocka_unit_test(test_locks__busy_comes_at_the_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
