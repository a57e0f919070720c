/* SPM resource locks (spm/locks.c). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "spm/locks.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void test_locks__shared_coexist_exclusive_busy(void **state)
{
	struct spm_locks *l = spm_locks_new();
	struct spm_lockset a, b, c;
	struct pk_error err;
	double t0;

	(void)state;
	spm_lockset_init(&a, l, "a");
	spm_lockset_add(&a, SPM_LOCK_DOMAIN, "d", SPM_LOCK_SHARED);
	spm_lockset_add(&a, SPM_LOCK_IMAGE, "i1", SPM_LOCK_EXCLUSIVE);
	assert_int_equal(spm_lockset_acquire(&a, 100, &err), 0);

	/* Another image in the same domain: no wait. */
	spm_lockset_init(&b, l, "b");
	spm_lockset_add(&b, SPM_LOCK_IMAGE, "i2", SPM_LOCK_EXCLUSIVE);
	spm_lockset_add(&b, SPM_LOCK_DOMAIN, "d", SPM_LOCK_SHARED);
	assert_int_equal(spm_lockset_acquire(&b, 100, &err), 0);

	/* The same image: BUSY after the timeout, naming the holder. */
	spm_lockset_init(&c, l, "create_volume x");
	spm_lockset_add(&c, SPM_LOCK_DOMAIN, "d", SPM_LOCK_SHARED);
	spm_lockset_add(&c, SPM_LOCK_IMAGE, "i1", SPM_LOCK_EXCLUSIVE);
	t0 = now_ms();
	assert_int_equal(spm_lockset_acquire(&c, 150, &err), -EBUSY);
	assert_true(now_ms() - t0 >= 140);
	assert_int_equal(err.code, PK_E_BUSY);
	assert_non_null(strstr(err.message, "image 'i1' is locked by 'a'"));
	/* Nothing of c is held after the failure. */
	assert_false(c.entries[0].held);
	spm_lockset_release(&c);

	spm_lockset_release(&a);
	assert_int_equal(spm_lockset_acquire(&c, 100, &err), 0);
	spm_lockset_release(&c);
	spm_lockset_release(&b);
	spm_lockset_release(&b); /* twice is harmless */
	assert_int_equal(spm_locks_active(l), 0);
	spm_locks_free(l);
}

struct waiter {
	struct spm_locks *l;
	int rc;
	double waited;
};

static void *exclusive_waiter(void *arg)
{
	struct waiter *w = arg;
	struct spm_lockset s;
	struct pk_error err;
	double t0 = now_ms();

	spm_lockset_init(&s, w->l, "waiter");
	spm_lockset_add(&s, SPM_LOCK_DOMAIN, "d", SPM_LOCK_EXCLUSIVE);
	w->rc = spm_lockset_acquire(&s, 2000, &err);
	w->waited = now_ms() - t0;
	spm_lockset_release(&s);
	return NULL;
}

static void test_locks__writer_waits_then_gets_it_and_blocks_new_readers(void **state)
{
	struct spm_locks *l = spm_locks_new();
	struct spm_lockset r1, r2;
	struct waiter w = { l, -1, 0 };
	struct pk_error err;
	pthread_t t;

	(void)state;
	spm_lockset_init(&r1, l, "reader1");
	spm_lockset_add(&r1, SPM_LOCK_DOMAIN, "d", SPM_LOCK_SHARED);
	assert_int_equal(spm_lockset_acquire(&r1, 100, &err), 0);
	pthread_create(&t, NULL, exclusive_waiter, &w);
	usleep(100 * 1000);
	/* A new reader queues behind the waiting writer. */
	spm_lockset_init(&r2, l, "reader2");
	spm_lockset_add(&r2, SPM_LOCK_DOMAIN, "d", SPM_LOCK_SHARED);
	assert_int_equal(spm_lockset_acquire(&r2, 50, &err), -EBUSY);
	usleep(100 * 1000);
	spm_lockset_release(&r1);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	assert_true(w.waited >= 150);
	assert_int_equal(spm_lockset_acquire(&r2, 100, &err), 0);
	spm_lockset_release(&r2);
	assert_int_equal(spm_locks_active(l), 0);
	spm_locks_free(l);
}

struct crosser {
	struct spm_locks *l;
	int flip;
	int ok;
};

static void *cross_locker(void *arg)
{
	struct crosser *c = arg;
	struct pk_error err;

	for (int i = 0; i < 2000; i++) {
		struct spm_lockset s;
		spm_lockset_init(&s, c->l, "x");
		/* Listed in opposite orders by the two threads: no deadlock. */
		spm_lockset_add(&s, SPM_LOCK_VOLUME, c->flip ? "a" : "b", SPM_LOCK_EXCLUSIVE);
		spm_lockset_add(&s, SPM_LOCK_VOLUME, c->flip ? "b" : "a", SPM_LOCK_EXCLUSIVE);
		spm_lockset_add(&s, SPM_LOCK_IMAGE, "i", SPM_LOCK_SHARED);
		if (spm_lockset_acquire(&s, 5000, &err) == 0) {
			c->ok++;
		}
		spm_lockset_release(&s);
	}
	return NULL;
}

static void test_locks__opposite_orders_never_deadlock(void **state)
{
	struct spm_locks *l = spm_locks_new();
	struct crosser a = { l, 0, 0 }, b = { l, 1, 0 };
	pthread_t ta, tb;

	(void)state;
	pthread_create(&ta, NULL, cross_locker, &a);
	pthread_create(&tb, NULL, cross_locker, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.ok, 2000);
	assert_int_equal(b.ok, 2000);
	assert_int_equal(spm_locks_active(l), 0);
	spm_locks_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locks__shared_coexist_exclusive_busy),
		cmocka_unit_test(test_locks__writer_waits_then_gets_it_and_blocks_new_readers),
		cmocka_unit_test(test_locks__opposite_orders_never_deadlock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
