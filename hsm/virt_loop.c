/*
 * The threads of hsm/virt.h: libvirt's process-wide set-up and its event
 * loop (which keepalive and events need), the reconnect thread that
 * reopens a lost connection with backoff and tells the owner
 * (cb.reconnected) so it reconciles what events it may have missed, and
 * hsm_virt_new/free that start and stop them. Opening a connection is
 * hsm/virt.c's (hsm/virt_internal.h).
 */
#include "hsm/virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "hsm/virt_internal.h"

#define DEFAULT_URI "qemu:///system"

/* ---- process-wide libvirt set-up ----------------------------------------- */

static pthread_once_t virt_once = PTHREAD_ONCE_INIT;
static int virt_once_result; /* written once under virt_once */

static void silent_error(void *opaque, virErrorPtr e)
{
	(void)opaque;
	(void)e;
}

static void virt_init_once(void)
{
	/* Errors reach callers through struct pk_error; libvirt's default
	 * handler would also print every one of them on stderr. */
	virSetErrorFunc(NULL, silent_error);
	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
		virt_once_result = -1;
	}
}

/* ---- event loop -------------------------------------------------------------- */

static void *loop_main(void *arg)
{
	struct hsm_virt *v = arg;

	while (!atomic_load(&v->loop_quit)) {
		if (virEventRunDefaultImpl() < 0) {
			/* Only fails on a broken poll set; do not spin. */
			struct timespec ts = { 0, 100 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static void wake_timer_cb(int timer, void *opaque)
{
	(void)timer;
	(void)opaque;
}

/* ---- reconnecting -------------------------------------------------------------- */

/* Waits up to ms or until stopping; returns true when stopping. Called
 * with v->lock held. */
static bool wait_or_stop_locked(struct hsm_virt *v, unsigned ms)
{
	struct timespec until;

	pk_clock_deadline(CLOCK_MONOTONIC, ms, &until);
	while (!v->stopping) {
		if (pthread_cond_timedwait(&v->cond, &v->lock, &until) == ETIMEDOUT) {
			break;
		}
	}
	return v->stopping;
}

static void *reconnect_main(void *arg)
{
	struct hsm_virt *v = arg;

	pthread_mutex_lock(&v->lock);
	while (true) {
		virConnectPtr old, conn = NULL;
		struct hsm_virt_event_ids old_ev, ev;
		unsigned delay = v->reconnect_min_ms;

		while (!v->need_reconnect && !v->stopping) {
			pthread_cond_wait(&v->cond, &v->lock);
		}
		if (v->stopping) {
			break;
		}
		old = v->conn;
		old_ev = v->events;
		v->conn = NULL;
		hsm_virt_event_ids_none(&v->events);
		v->connected = false;
		pthread_mutex_unlock(&v->lock);

		hsm_virt_conn_teardown(old, &old_ev);
		while (true) {
			bool stop;

			if (hsm_virt_conn_open(v, &conn, &ev, NULL) == 0) {
				break;
			}
			pthread_mutex_lock(&v->lock);
			stop = wait_or_stop_locked(v, delay);
			pthread_mutex_unlock(&v->lock);
			if (stop) {
				pthread_mutex_lock(&v->lock);
				goto out;
			}
			delay = delay * 2 > v->reconnect_max_ms ? v->reconnect_max_ms : delay * 2;
		}

		pthread_mutex_lock(&v->lock);
		if (v->stopping) {
			pthread_mutex_unlock(&v->lock);
			hsm_virt_conn_teardown(conn, &ev);
			pthread_mutex_lock(&v->lock);
			break;
		}
		v->conn = conn;
		v->events = ev;
		v->connected = true;
		v->need_reconnect = false;
		v->generation++;
		pthread_mutex_unlock(&v->lock);
		hsm_virt_conn_recheck(v, conn);

		if (v->cb.reconnected) {
			v->cb.reconnected(v->cb.opaque);
		}
		pthread_mutex_lock(&v->lock);
	}
out:
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

static void loop_stop(struct hsm_virt *v)
{
	int timer;

	if (!v->loop_started) {
		return;
	}
	atomic_store(&v->loop_quit, true);
	/* A timer due at once wakes the loop out of poll(). */
	timer = virEventAddTimeout(0, wake_timer_cb, NULL, NULL);
	pthread_join(v->loop_thread, NULL);
	if (timer >= 0) {
		virEventRemoveTimeout(timer);
	}
	v->loop_started = false;
}

void hsm_virt_free(struct hsm_virt *v)
{
	virConnectPtr conn;
	struct hsm_virt_event_ids ev;

	if (!v) {
		return;
	}
	pthread_mutex_lock(&v->lock);
	v->stopping = true;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	if (v->reconnect_started) {
		pthread_join(v->reconnect_thread, NULL);
	}
	pthread_mutex_lock(&v->lock);
	conn = v->conn;
	ev = v->events;
	v->conn = NULL;
	v->connected = false;
	pthread_mutex_unlock(&v->lock);
	hsm_virt_conn_teardown(conn, &ev);
	loop_stop(v);

	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v->uri);
	free(v);
}

int hsm_virt_new(const struct hsm_virt_config *cfg, const struct hsm_virt_callbacks *cb,
		 struct hsm_virt **ret, struct pk_error *err)
{
	struct hsm_virt *v;
	pthread_condattr_t ca;
	uint64_t until_ms;
	unsigned delay;
	int r;

	pthread_once(&virt_once, virt_init_once);
	if (virt_once_result < 0) {
		return pk_error_set(err, PK_E_INTERNAL, EIO,
				    "cannot initialise libvirt or its event loop");
	}
	v = pk_xcalloc(1, sizeof(*v));
	v->uri = pk_xstrdup(cfg && cfg->uri ? cfg->uri : DEFAULT_URI);
	v->keepalive_interval_s = cfg && cfg->keepalive_interval_s ? cfg->keepalive_interval_s : 5;
	v->keepalive_count = cfg && cfg->keepalive_count ? cfg->keepalive_count : 3;
	v->reconnect_min_ms = cfg && cfg->reconnect_min_ms ? cfg->reconnect_min_ms : 250;
	v->reconnect_max_ms = cfg && cfg->reconnect_max_ms ? cfg->reconnect_max_ms : 5000;
	if (v->reconnect_max_ms < v->reconnect_min_ms) {
		v->reconnect_max_ms = v->reconnect_min_ms;
	}
	if (cb) {
		v->cb = *cb;
	}
	hsm_virt_event_ids_none(&v->events);
	atomic_init(&v->loop_quit, false);
	pthread_mutex_init(&v->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->cond, &ca);
	pthread_condattr_destroy(&ca);

	/* The loop must run before connecting: keepalive and events need it. */
	r = pthread_create(&v->loop_thread, NULL, loop_main, v);
	if (r != 0) {
		r = pk_error_set(err, PK_E_INTERNAL, r, "cannot start the libvirt event thread");
		goto fail;
	}
	v->loop_started = true;

	until_ms = pk_clock_monotonic_ms() + (cfg ? cfg->connect_timeout_ms : 0);
	delay = v->reconnect_min_ms;
	while (true) {
		virConnectPtr conn = NULL;
		struct hsm_virt_event_ids ev;
		struct pk_error e1;

		pk_error_clear(&e1);
		r = hsm_virt_conn_open(v, &conn, &ev, &e1);
		if (r == 0) {
			/* The close callback may already run: publish under the lock. */
			pthread_mutex_lock(&v->lock);
			v->conn = conn;
			v->events = ev;
			v->connected = true;
			v->generation = 1;
			pthread_mutex_unlock(&v->lock);
			hsm_virt_conn_recheck(v, conn);
			break;
		}
		if (pk_clock_monotonic_ms() >= until_ms) {
			if (err) {
				*err = e1;
			}
			goto fail;
		}
		pthread_mutex_lock(&v->lock);
		wait_or_stop_locked(v, delay);
		pthread_mutex_unlock(&v->lock);
		delay = delay * 2 > v->reconnect_max_ms ? v->reconnect_max_ms : delay * 2;
	}
	r = pthread_create(&v->reconnect_thread, NULL, reconnect_main, v);
	if (r != 0) {
		r = pk_error_set(err, PK_E_INTERNAL, r, "cannot start the libvirt reconnect thread");
		goto fail;
	}
	v->reconnect_started = true;
	*ret = v;
	return 0;
fail:
	hsm_virt_free(v);
	return r;
}
