#include "hsm/virt.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/xalloc.h"
#include "hsm/vmxml.h"

#define DEFAULT_URI "qemu:///system"

struct hsm_virt {
	char *uri;
	int keepalive_interval_s;
	unsigned keepalive_count;
	unsigned reconnect_min_ms;
	unsigned reconnect_max_ms;
	struct hsm_virt_callbacks cb;

	pthread_mutex_t lock;
	pthread_cond_t cond;          /* need_reconnect / stopping changed */
	/* Guarded by lock. */
	virConnectPtr conn;           /* NULL only before the first connect and
				       * while the reconnect thread swaps it */
	int id_lifecycle, id_blockjob;
	bool connected;               /* conn is usable */
	bool need_reconnect;
	bool stopping;
	unsigned generation;

	atomic_bool loop_quit;
	pthread_t loop_thread;
	bool loop_started;
	pthread_t reconnect_thread;
	bool reconnect_started;
};

/* Our enums carry libvirt's values (virt.h); the casts below rely on it. */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(HSM_VIRT_JOB_PULL, VIR_DOMAIN_BLOCK_JOB_TYPE_PULL) &&
		       SAME(HSM_VIRT_JOB_COPY, VIR_DOMAIN_BLOCK_JOB_TYPE_COPY) &&
		       SAME(HSM_VIRT_JOB_COMMIT, VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT) &&
		       SAME(HSM_VIRT_JOB_ACTIVE_COMMIT, VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT) &&
		       SAME(HSM_VIRT_JOB_BACKUP, VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP),
	       "block job types");
_Static_assert(SAME(HSM_VIRT_JOB_COMPLETED, VIR_DOMAIN_BLOCK_JOB_COMPLETED) &&
		       SAME(HSM_VIRT_JOB_FAILED, VIR_DOMAIN_BLOCK_JOB_FAILED) &&
		       SAME(HSM_VIRT_JOB_CANCELED, VIR_DOMAIN_BLOCK_JOB_CANCELED) &&
		       SAME(HSM_VIRT_JOB_READY, VIR_DOMAIN_BLOCK_JOB_READY),
	       "block job status");
_Static_assert(SAME(HSM_VIRT_EV_DEFINED, VIR_DOMAIN_EVENT_DEFINED) &&
		       SAME(HSM_VIRT_EV_STARTED, VIR_DOMAIN_EVENT_STARTED) &&
		       SAME(HSM_VIRT_EV_STOPPED, VIR_DOMAIN_EVENT_STOPPED) &&
		       SAME(HSM_VIRT_EV_CRASHED, VIR_DOMAIN_EVENT_CRASHED),
	       "lifecycle events");
_Static_assert(SAME(HSM_VIRT_STATE_RUNNING, VIR_DOMAIN_RUNNING) &&
		       SAME(HSM_VIRT_STATE_PAUSED, VIR_DOMAIN_PAUSED) &&
		       SAME(HSM_VIRT_STATE_SHUTOFF, VIR_DOMAIN_SHUTOFF) &&
		       SAME(HSM_VIRT_STATE_PMSUSPENDED, VIR_DOMAIN_PMSUSPENDED),
	       "domain states");

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

/* ---- errors ------------------------------------------------------------------ */

static enum pk_errc errc_of(const virError *e)
{
	switch (e->code) {
	case VIR_ERR_NO_DOMAIN:
	case VIR_ERR_NO_DOMAIN_METADATA:
	case VIR_ERR_NO_DOMAIN_SNAPSHOT:
	case VIR_ERR_NO_STORAGE_VOL:
		return PK_E_NOT_FOUND;
	case VIR_ERR_DOM_EXIST:
		return PK_E_ALREADY_EXISTS;
	case VIR_ERR_OPERATION_INVALID:  /* wrong state: not running, job active... */
	case VIR_ERR_BLOCK_COPY_ACTIVE:
		return PK_E_CONFLICT;
	case VIR_ERR_INVALID_ARG:
	case VIR_ERR_XML_ERROR:
	case VIR_ERR_XML_DETAIL:
	case VIR_ERR_XML_INVALID_SCHEMA:
	case VIR_ERR_INVALID_DOMAIN:
		return PK_E_INVALID_ARGUMENT;
	case VIR_ERR_NO_SUPPORT:
	case VIR_ERR_ARGUMENT_UNSUPPORTED:
	case VIR_ERR_OPERATION_UNSUPPORTED:
	case VIR_ERR_CONFIG_UNSUPPORTED:
		return PK_E_UNSUPPORTED;
	case VIR_ERR_NO_CONNECT:
	case VIR_ERR_INVALID_CONN:
	case VIR_ERR_RPC:
	case VIR_ERR_AUTH_FAILED:
	case VIR_ERR_AUTH_UNAVAILABLE:
	case VIR_ERR_AGENT_UNRESPONSIVE:
	case VIR_ERR_AGENT_UNSYNCED:
		return PK_E_UNAVAILABLE;
	case VIR_ERR_OPERATION_TIMEOUT:
		return PK_E_TIMEOUT;
	case VIR_ERR_OPERATION_ABORTED:
		return PK_E_ABORTED;
	case VIR_ERR_SYSTEM_ERROR:
		if (e->domain == VIR_FROM_RPC || e->domain == VIR_FROM_REMOTE) {
			return PK_E_UNAVAILABLE;
		}
		if (e->int1 == ENOSPC) {
			return PK_E_NO_SPACE;
		}
		return PK_E_IO;
	case VIR_ERR_INTERNAL_ERROR:
		if (e->domain == VIR_FROM_RPC || e->domain == VIR_FROM_REMOTE) {
			return PK_E_UNAVAILABLE; /* "client socket is closed" */
		}
		return PK_E_INTERNAL;
	default:
		return PK_E_INTERNAL;
	}
}

static bool is_connection_error(const virError *e)
{
	return errc_of(e) == PK_E_UNAVAILABLE && e->code != VIR_ERR_AGENT_UNRESPONSIVE &&
	       e->code != VIR_ERR_AGENT_UNSYNCED;
}

static void request_reconnect(struct hsm_virt *v, virConnectPtr conn)
{
	pthread_mutex_lock(&v->lock);
	if (v->conn == conn && v->connected && !v->stopping) {
		v->connected = false;
		v->need_reconnect = true;
		pthread_cond_broadcast(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
}

/*
 * Turns libvirt's last error of this thread into err, prefixed with the
 * formatted context. conn (may be NULL) is checked for liveness when the
 * error looks like a lost connection, so a dead connection is noticed even
 * if its close callback was missed. Returns -errno.
 */
static int virt_fail(struct hsm_virt *v, virConnectPtr conn, struct pk_error *err,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int virt_fail(struct hsm_virt *v, virConnectPtr conn, struct pk_error *err,
		     const char *fmt, ...)
{
	virErrorPtr e = virSaveLastError();
	char ctx[256];
	va_list ap;
	int errnum;
	int r;

	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	if (!e || e->code == VIR_ERR_OK) {
		r = pk_error_set(err, PK_E_INTERNAL, EIO, "%s: libvirt failed without an error",
				 ctx);
		virFreeError(e);
		return r;
	}
	errnum = (e->code == VIR_ERR_SYSTEM_ERROR && e->int1 > 0) ? e->int1 : 0;
	r = pk_error_set(err, errc_of(e), errnum, "%s: %s", ctx,
			 e->message ? e->message : "unknown libvirt error");
	if (conn && v && is_connection_error(e) && virConnectIsAlive(conn) != 1) {
		request_reconnect(v, conn);
	}
	virFreeError(e);
	return r;
}

static int last_error_code(void)
{
	virErrorPtr e = virGetLastError();

	return e ? e->code : VIR_ERR_OK;
}

/* ---- event loop and callbacks ----------------------------------------------- */

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

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
			void *opaque)
{
	struct hsm_virt *v = opaque;
	const char *name = virDomainGetName(dom);

	(void)conn;
	if (v->cb.lifecycle && name) {
		v->cb.lifecycle(v->cb.opaque, name, (enum hsm_virt_lifecycle)event, detail);
	}
	return 0;
}

static void on_block_job(virConnectPtr conn, virDomainPtr dom, const char *disk, int type,
			 int status, void *opaque)
{
	struct hsm_virt *v = opaque;
	const char *name = virDomainGetName(dom);

	(void)conn;
	if (v->cb.block_job && name && disk) {
		v->cb.block_job(v->cb.opaque, name, disk, (enum hsm_virt_job_type)type,
				(enum hsm_virt_job_status)status);
	}
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	(void)reason;
	request_reconnect(opaque, conn);
}

/* ---- connecting ------------------------------------------------------------------ */

/* Drops everything registered on conn and closes it (errors are moot:
 * the connection is going away). */
static void conn_teardown(virConnectPtr conn, int id_lifecycle, int id_blockjob)
{
	if (!conn) {
		return;
	}
	if (id_lifecycle >= 0) {
		virConnectDomainEventDeregisterAny(conn, id_lifecycle);
	}
	if (id_blockjob >= 0) {
		virConnectDomainEventDeregisterAny(conn, id_blockjob);
	}
	virConnectUnregisterCloseCallback(conn, on_close);
	virConnectClose(conn);
	virResetLastError();
}

/* Opens a connection with keepalive, close callback and event callbacks. */
static int conn_open(struct hsm_virt *v, virConnectPtr *ret_conn, int *ret_lifecycle,
		     int *ret_blockjob, struct pk_error *err)
{
	virConnectPtr conn;
	int id_lc = -1, id_bj = -1;
	int r;

	conn = virConnectOpen(v->uri);
	if (!conn) {
		r = virt_fail(v, NULL, err, "cannot connect to libvirt at '%s'", v->uri);
		if (err) {
			err->code = PK_E_UNAVAILABLE;
		}
		return r;
	}
	if (v->keepalive_interval_s > 0 &&
	    virConnectSetKeepAlive(conn, v->keepalive_interval_s, v->keepalive_count) < 0 &&
	    last_error_code() != VIR_ERR_NO_SUPPORT) {
		r = virt_fail(v, NULL, err, "cannot enable keepalive on '%s'", v->uri);
		goto fail;
	}
	if (virConnectRegisterCloseCallback(conn, on_close, v, NULL) < 0 &&
	    last_error_code() != VIR_ERR_NO_SUPPORT) {
		r = virt_fail(v, NULL, err, "cannot watch the connection to '%s'", v->uri);
		goto fail;
	}
	id_lc = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
						 VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), v,
						 NULL);
	if (id_lc < 0) {
		r = virt_fail(v, NULL, err, "cannot register lifecycle events on '%s'", v->uri);
		goto fail;
	}
	id_bj = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
						 VIR_DOMAIN_EVENT_CALLBACK(on_block_job), v,
						 NULL);
	if (id_bj < 0) {
		r = virt_fail(v, NULL, err, "cannot register block job events on '%s'", v->uri);
		goto fail;
	}
	/* The connection may have died before the close callback was set. */
	if (virConnectIsAlive(conn) == 0) {
		r = pk_error_set(err, PK_E_UNAVAILABLE, ECONNRESET,
				 "connection to '%s' closed while setting it up", v->uri);
		goto fail;
	}
	virResetLastError();
	*ret_conn = conn;
	*ret_lifecycle = id_lc;
	*ret_blockjob = id_bj;
	return 0;
fail:
	if (err) {
		err->code = PK_E_UNAVAILABLE;
	}
	conn_teardown(conn, id_lc, id_bj);
	return r;
}

/* A close callback that fired before conn was published was ignored:
 * look again once it is. */
static void recheck_alive(struct hsm_virt *v, virConnectPtr conn)
{
	if (virConnectIsAlive(conn) == 0) {
		request_reconnect(v, conn);
	}
	virResetLastError();
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Waits up to ms or until stopping; returns true when stopping. Called
 * with v->lock held. */
static bool wait_or_stop_locked(struct hsm_virt *v, unsigned ms)
{
	struct timespec until;

	deadline_after(&until, ms);
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
		int old_lc, old_bj, id_lc = -1, id_bj = -1;
		unsigned delay = v->reconnect_min_ms;

		while (!v->need_reconnect && !v->stopping) {
			pthread_cond_wait(&v->cond, &v->lock);
		}
		if (v->stopping) {
			break;
		}
		old = v->conn;
		old_lc = v->id_lifecycle;
		old_bj = v->id_blockjob;
		v->conn = NULL;
		v->id_lifecycle = v->id_blockjob = -1;
		v->connected = false;
		pthread_mutex_unlock(&v->lock);

		conn_teardown(old, old_lc, old_bj);
		while (true) {
			bool stop;

			if (conn_open(v, &conn, &id_lc, &id_bj, NULL) == 0) {
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
			conn_teardown(conn, id_lc, id_bj);
			pthread_mutex_lock(&v->lock);
			break;
		}
		v->conn = conn;
		v->id_lifecycle = id_lc;
		v->id_blockjob = id_bj;
		v->connected = true;
		v->need_reconnect = false;
		v->generation++;
		pthread_mutex_unlock(&v->lock);
		recheck_alive(v, conn);

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
	int id_lc, id_bj;

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
	id_lc = v->id_lifecycle;
	id_bj = v->id_blockjob;
	v->conn = NULL;
	v->connected = false;
	pthread_mutex_unlock(&v->lock);
	conn_teardown(conn, id_lc, id_bj);
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
	struct timespec until, now;
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
	v->id_lifecycle = v->id_blockjob = -1;
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

	deadline_after(&until, cfg ? cfg->connect_timeout_ms : 0);
	delay = v->reconnect_min_ms;
	while (true) {
		virConnectPtr conn = NULL;
		int id_lc = -1, id_bj = -1;
		struct pk_error e1;

		pk_error_clear(&e1);
		r = conn_open(v, &conn, &id_lc, &id_bj, &e1);
		if (r == 0) {
			/* The close callback may already run: publish under the lock. */
			pthread_mutex_lock(&v->lock);
			v->conn = conn;
			v->id_lifecycle = id_lc;
			v->id_blockjob = id_bj;
			v->connected = true;
			v->generation = 1;
			pthread_mutex_unlock(&v->lock);
			recheck_alive(v, conn);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > until.tv_sec ||
		    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec)) {
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

bool hsm_virt_connected(struct hsm_virt *v)
{
	bool c;

	pthread_mutex_lock(&v->lock);
	c = v->connected;
	pthread_mutex_unlock(&v->lock);
	return c;
}

unsigned hsm_virt_generation(struct hsm_virt *v)
{
	unsigned g;

	pthread_mutex_lock(&v->lock);
	g = v->generation;
	pthread_mutex_unlock(&v->lock);
	return g;
}

/* ---- verbs: helpers ----------------------------------------------------------------- */

/* A reference to the current connection (virConnectClose to drop it). */
static virConnectPtr conn_get(struct hsm_virt *v, struct pk_error *err)
{
	virConnectPtr c = NULL;

	pthread_mutex_lock(&v->lock);
	if (v->connected && v->conn && virConnectRef(v->conn) == 0) {
		c = v->conn;
	}
	pthread_mutex_unlock(&v->lock);
	if (!c) {
		pk_error_set(err, PK_E_UNAVAILABLE, ENOTCONN,
			     "not connected to libvirt at '%s' (reconnecting)", v->uri);
	}
	return c;
}

static int check_arg(const char *what, const char *s, struct pk_error *err)
{
	if (!s || !*s || strlen(s) > 256) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "%s is missing or too long",
				    what);
	}
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s contains a control or non-ASCII character", what);
		}
	}
	return 0;
}

/* Looks up a domain by name; the caller frees *ret_dom and drops *ret_conn. */
static int dom_get(struct hsm_virt *v, const char *name, virConnectPtr *ret_conn,
		   virDomainPtr *ret_dom, struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = check_arg("VM name", name, err);
	if (r < 0) {
		return r;
	}
	c = conn_get(v, err);
	if (!c) {
		return -ENOTCONN;
	}
	d = virDomainLookupByName(c, name);
	if (!d) {
		if (last_error_code() == VIR_ERR_NO_DOMAIN) {
			virResetLastError();
			virConnectClose(c);
			return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' not found", name);
		}
		r = virt_fail(v, c, err, "cannot look up VM '%s'", name);
		virConnectClose(c);
		return r;
	}
	*ret_conn = c;
	*ret_dom = d;
	return 0;
}

static void dom_put(virConnectPtr c, virDomainPtr d)
{
	if (d) {
		virDomainFree(d);
	}
	if (c) {
		virConnectClose(c);
	}
}

/* ---- verbs: domains ----------------------------------------------------------------- */

int hsm_virt_domain_create(struct hsm_virt *v, const char *xml,
			   char ret_uuid[PK_UUID_BUFLEN], struct pk_error *err)
{
	struct hsm_vmxml_domain parsed;
	char name[HSM_VM_NAME_MAX + 1];
	char uuid[VIR_UUID_STRING_BUFLEN];
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_vmxml_domain_parse(xml, &parsed, err);
	if (r < 0) {
		if (err) {
			err->code = PK_E_INVALID_ARGUMENT;
		}
		return r;
	}
	memcpy(name, parsed.name, sizeof(name));
	hsm_vmxml_domain_release(&parsed);

	c = conn_get(v, err);
	if (!c) {
		return -ENOTCONN;
	}
	d = virDomainLookupByName(c, name);
	if (d) {
		dom_put(c, d);
		return pk_error_set(err, PK_E_ALREADY_EXISTS, EEXIST, "VM '%s' already exists",
				    name);
	}
	if (last_error_code() != VIR_ERR_NO_DOMAIN) {
		r = virt_fail(v, c, err, "cannot look up VM '%s'", name);
		virConnectClose(c);
		return r;
	}
	virResetLastError();
	d = virDomainDefineXMLFlags(c, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	if (!d) {
		r = virt_fail(v, c, err, "cannot define VM '%s'", name);
		virConnectClose(c);
		return r;
	}
	if (virDomainCreate(d) < 0) {
		r = virt_fail(v, c, err, "cannot start VM '%s'", name);
		/* Undo the definition; keep the start error. */
		virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
		virResetLastError();
		dom_put(c, d);
		return r;
	}
	if (ret_uuid) {
		if (virDomainGetUUIDString(d, uuid) < 0) {
			uuid[0] = '\0';
		}
		snprintf(ret_uuid, PK_UUID_BUFLEN, "%s", uuid);
	}
	dom_put(c, d);
	return 0;
}

int hsm_virt_domain_start(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	r = 0;
	if (virDomainCreate(d) < 0) {
		r = virt_fail(v, c, err, "cannot start VM '%s'", name);
	}
	dom_put(c, d);
	return r;
}

int hsm_virt_domain_destroy(struct hsm_virt *v, const char *name, struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	r = 0;
	if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0 &&
	    last_error_code() != VIR_ERR_OPERATION_INVALID) { /* stopped meanwhile */
		r = virt_fail(v, c, err, "cannot stop VM '%s'", name);
		goto out;
	}
	if (virDomainIsPersistent(d) == 1 &&
	    virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
				      VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0 &&
	    last_error_code() != VIR_ERR_NO_DOMAIN) {
		r = virt_fail(v, c, err, "cannot undefine VM '%s'", name);
		goto out;
	}
	virResetLastError();
out:
	dom_put(c, d);
	return r;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void hsm_virt_names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++) {
		free(names[i]);
	}
	free(names);
}

int hsm_virt_domain_list(struct hsm_virt *v, char ***ret_names, size_t *ret_n,
			 struct pk_error *err)
{
	virConnectPtr c = conn_get(v, err);
	virDomainPtr *doms = NULL;
	char **names = NULL;
	size_t n = 0;
	int count;
	int r = 0;

	if (!c) {
		return -ENOTCONN;
	}
	count = virConnectListAllDomains(c, &doms, 0);
	if (count < 0) {
		r = virt_fail(v, c, err, "cannot list VMs");
		virConnectClose(c);
		return r;
	}
	names = pk_xcalloc((size_t)count + 1, sizeof(*names));
	for (int i = 0; i < count; i++) {
		char *md = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT,
						HSM_VMXML_NS, 0);
		const char *name;

		if (!md) {
			int code = last_error_code();

			if (code == VIR_ERR_NO_DOMAIN_METADATA || code == VIR_ERR_NO_DOMAIN) {
				continue; /* not ours, or gone meanwhile */
			}
			r = virt_fail(v, c, err, "cannot read metadata of a VM");
			break;
		}
		free(md);
		name = virDomainGetName(doms[i]);
		if (name) {
			names[n++] = pk_xstrdup(name);
		}
	}
	virResetLastError();
	for (int i = 0; i < count; i++) {
		virDomainFree(doms[i]);
	}
	free(doms);
	virConnectClose(c);
	if (r < 0) {
		hsm_virt_names_free(names, n);
		return r;
	}
	qsort(names, n, sizeof(*names), cmp_names);
	*ret_names = names;
	*ret_n = n;
	return 0;
}

int hsm_virt_domain_xml(struct hsm_virt *v, const char *name, char **ret_xml,
			struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	char *xml;
	int r;

	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	xml = virDomainGetXMLDesc(d, 0);
	if (!xml) {
		r = virt_fail(v, c, err, "cannot read the XML of VM '%s'", name);
	} else {
		*ret_xml = xml;
	}
	dom_put(c, d);
	return r;
}

int hsm_virt_domain_state(struct hsm_virt *v, const char *name,
			  enum hsm_virt_state *ret_state, int *ret_reason,
			  struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int state, reason;
	int r;

	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainGetState(d, &state, &reason, 0) < 0) {
		r = virt_fail(v, c, err, "cannot read the state of VM '%s'", name);
	} else {
		*ret_state = (enum hsm_virt_state)state;
		if (ret_reason) {
			*ret_reason = reason;
		}
	}
	dom_put(c, d);
	return r;
}

/* Defines xml over an existing domain: only its persistent definition changes. */
static int redefine(struct hsm_virt *v, virConnectPtr c, const char *name, const char *xml,
		    struct pk_error *err)
{
	virDomainPtr nd = virDomainDefineXMLFlags(c, xml, VIR_DOMAIN_DEFINE_VALIDATE);

	if (!nd) {
		return virt_fail(v, c, err, "cannot redefine VM '%s'", name);
	}
	virDomainFree(nd);
	return 0;
}

int hsm_virt_disk_source_set(struct hsm_virt *v, const char *name, const char *disk,
			     const char *path, enum hsm_disk_format format, const char *volume_id,
			     struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	char *old = NULL, *next = NULL;
	int r;

	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainIsActive(d) != 0) {
		r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
				 "VM '%s' runs: its disk source changes only while it is shut off",
				 name);
		goto out;
	}
	old = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
	if (!old) {
		r = virt_fail(v, c, err, "cannot read the definition of VM '%s'", name);
		goto out;
	}
	r = hsm_vmxml_disk_source_set(old, disk, path, format, volume_id, &next, err);
	if (r == 0) {
		r = redefine(v, c, name, next, err);
	}
	/*
	 * A start racing with the redefinition runs on the old disk: put the old
	 * definition back, so the next boot uses what this one ran on.
	 */
	if (r == 0 && virDomainIsActive(d) != 0) {
		struct pk_error undo = { PK_OK, "" };

		if (redefine(v, c, name, old, &undo) < 0) {
			r = pk_error_set(err, PK_E_ILLEGAL, EIO,
					 "VM '%s' started while its disk '%s' was redefined, and "
					 "the old definition could not be put back (%s): check "
					 "its disk source before it stops", name, disk, undo.message);
		} else {
			r = pk_error_set(err, PK_E_CONFLICT, EBUSY,
					 "VM '%s' started while its disk '%s' was redefined; it "
					 "keeps its old disk", name, disk);
		}
	}
out:
	free(next);
	free(old);
	dom_put(c, d);
	return r;
}

int hsm_virt_metadata_get(struct hsm_virt *v, const char *name, char **ret_xml,
			  struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	char *md;
	int r;

	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	md = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, HSM_VMXML_NS, 0);
	if (!md) {
		if (last_error_code() == VIR_ERR_NO_DOMAIN_METADATA) {
			virResetLastError();
			r = pk_error_set(err, PK_E_NOT_FOUND, ENOENT,
					 "VM '%s' has no poolkeeper metadata", name);
		} else {
			r = virt_fail(v, c, err, "cannot read the metadata of VM '%s'", name);
		}
	} else {
		*ret_xml = md;
	}
	dom_put(c, d);
	return r;
}

int hsm_virt_metadata_set(struct hsm_virt *v, const char *name, const char *xml,
			  struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	if (!xml) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "no metadata XML");
	}
	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	/* Two tries: the VM may stop between reading its state and writing. */
	for (int attempt = 0; attempt < 2; attempt++) {
		unsigned flags = 0;

		if (virDomainIsActive(d) == 1) {
			flags |= VIR_DOMAIN_AFFECT_LIVE;
		}
		if (virDomainIsPersistent(d) == 1) {
			flags |= VIR_DOMAIN_AFFECT_CONFIG;
		}
		if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, xml, HSM_VMXML_NS_PREFIX,
					 HSM_VMXML_NS, flags) == 0) {
			r = 0;
			break;
		}
		r = virt_fail(v, c, err, "cannot write the metadata of VM '%s'", name);
		if (last_error_code() != VIR_ERR_OPERATION_INVALID) {
			break;
		}
	}
	dom_put(c, d);
	return r;
}

/* ---- verbs: snapshots and block jobs ----------------------------------------------- */

int hsm_virt_snapshot(struct hsm_virt *v, const char *name, const char *snapshot_xml,
		      bool quiesce, struct pk_error *err)
{
	unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
			 VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT |
			 VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
			 VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
	virDomainSnapshotPtr snap;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	if (!snapshot_xml) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "no snapshot XML");
	}
	if (quiesce) {
		flags |= VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE;
	}
	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	snap = virDomainSnapshotCreateXML(d, snapshot_xml, flags);
	if (!snap) {
		int code = last_error_code();

		if (quiesce && (code == VIR_ERR_AGENT_UNRESPONSIVE ||
				code == VIR_ERR_AGENT_UNSYNCED)) {
			r = virt_fail(v, c, err,
				      "cannot snapshot VM '%s' quiesced: the qemu guest agent "
				      "does not answer (install and start qemu-ga in the "
				      "guest, or snapshot without quiesce)", name);
		} else {
			r = virt_fail(v, c, err, "cannot snapshot VM '%s'%s", name,
				      quiesce ? " (quiesced)" : "");
		}
	} else {
		virDomainSnapshotFree(snap);
	}
	dom_put(c, d);
	return r;
}

static int check_bandwidth(uint64_t bandwidth, struct pk_error *err)
{
	if (bandwidth > (uint64_t)(unsigned long)-1) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
				    "bandwidth %" PRIu64 " bytes/s is too large", bandwidth);
	}
	return 0;
}

/*
 * Gives block job failures the code the caller can act on, by asking
 * libvirt whether the disk has a job (right after the failed call):
 *  - starting a job: libvirt refuses a second one with
 *    OPERATION_UNSUPPORTED ("already in active block job") -> CONFLICT;
 *  - acting on the job (abort, pivot, speed): libvirt says INVALID_ARG
 *    ("does not have an active block job") -> NOT_FOUND: the job is gone,
 *    perhaps finished; the caller decides from the live XML.
 */
static void fix_job_error(virDomainPtr d, const char *disk, bool starting,
			  struct pk_error *err)
{
	virDomainBlockJobInfo info;
	int has;

	if (!err || (err->code != PK_E_UNSUPPORTED && err->code != PK_E_INVALID_ARGUMENT)) {
		return;
	}
	has = virDomainGetBlockJobInfo(d, disk, &info, 0);
	if (starting && has == 1 && err->code == PK_E_UNSUPPORTED) {
		err->code = PK_E_CONFLICT;
	} else if (!starting && has == 0) {
		err->code = PK_E_NOT_FOUND;
	}
	virResetLastError();
}

int hsm_virt_block_commit(struct hsm_virt *v, const char *name, const char *disk,
			  const char *base, const char *top, bool active,
			  uint64_t bandwidth, struct pk_error *err)
{
	unsigned flags = VIR_DOMAIN_BLOCK_COMMIT_RELATIVE |
			 VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = check_arg("disk", disk, err);
	if (r == 0) {
		r = check_arg("commit base", base, err);
	}
	if (r == 0 && (top || !active)) {
		r = check_arg("commit top", top, err);
	}
	if (r == 0) {
		r = check_bandwidth(bandwidth, err);
	}
	if (r < 0) {
		return r;
	}
	if (active) {
		flags |= VIR_DOMAIN_BLOCK_COMMIT_ACTIVE;
	}
	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainBlockCommit(d, disk, base, top, (unsigned long)bandwidth, flags) < 0) {
		r = virt_fail(v, c, err, "cannot start %scommit of VM '%s' disk '%s' "
			      "(base '%s', top '%s')", active ? "active " : "", name, disk, base,
			      top ? top : "leaf");
		fix_job_error(d, disk, true, err);
	}
	dom_put(c, d);
	return r;
}

int hsm_virt_block_pull(struct hsm_virt *v, const char *name, const char *disk,
			const char *base, uint64_t bandwidth, struct pk_error *err)
{
	unsigned flags = VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = check_arg("disk", disk, err);
	if (r == 0 && base) {
		r = check_arg("pull base", base, err);
	}
	if (r == 0) {
		r = check_bandwidth(bandwidth, err);
	}
	if (r < 0) {
		return r;
	}
	/* libvirt accepts RELATIVE only with a base. */
	if (base) {
		flags |= VIR_DOMAIN_BLOCK_REBASE_RELATIVE;
	}
	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainBlockRebase(d, disk, base, (unsigned long)bandwidth, flags) < 0) {
		r = virt_fail(v, c, err, "cannot start pull of VM '%s' disk '%s' (base '%s')",
			      name, disk, base ? base : "none");
		fix_job_error(d, disk, true, err);
	}
	dom_put(c, d);
	return r;
}

int hsm_virt_block_job_info(struct hsm_virt *v, const char *name, const char *disk,
			    struct hsm_virt_job_info *ret, struct pk_error *err)
{
	virDomainBlockJobInfo info;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = check_arg("disk", disk, err);
	if (r < 0) {
		return r;
	}
	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	memset(&info, 0, sizeof(info));
	r = virDomainGetBlockJobInfo(d, disk, &info, VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES);
	if (r < 0) {
		r = virt_fail(v, c, err, "cannot read the block job of VM '%s' disk '%s'", name,
			      disk);
	} else {
		memset(ret, 0, sizeof(*ret));
		ret->active = r == 1;
		if (ret->active) {
			ret->type = (enum hsm_virt_job_type)info.type;
			ret->cur = info.cur;
			ret->end = info.end;
			ret->bandwidth = info.bandwidth;
		}
		r = 0;
	}
	dom_put(c, d);
	return r;
}

int hsm_virt_block_job_abort(struct hsm_virt *v, const char *name, const char *disk,
			     bool pivot, struct pk_error *err)
{
	unsigned flags = VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC;
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = check_arg("disk", disk, err);
	if (r < 0) {
		return r;
	}
	if (pivot) {
		flags |= VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT;
	}
	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainBlockJobAbort(d, disk, flags) < 0) {
		r = virt_fail(v, c, err, "cannot %s the block job of VM '%s' disk '%s'",
			      pivot ? "pivot" : "abort", name, disk);
		fix_job_error(d, disk, false, err);
	}
	dom_put(c, d);
	return r;
}

int hsm_virt_block_job_set_bandwidth(struct hsm_virt *v, const char *name,
				     const char *disk, uint64_t bandwidth,
				     struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = check_arg("disk", disk, err);
	if (r == 0) {
		r = check_bandwidth(bandwidth, err);
	}
	if (r < 0) {
		return r;
	}
	r = dom_get(v, name, &c, &d, err);
	if (r < 0) {
		return r;
	}
	if (virDomainBlockJobSetSpeed(d, disk, (unsigned long)bandwidth,
				      VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES) < 0) {
		r = virt_fail(v, c, err, "cannot set the bandwidth of VM '%s' disk '%s'", name,
			      disk);
		fix_job_error(d, disk, false, err);
	}
	dom_put(c, d);
	return r;
}

/* ---- names ------------------------------------------------------------------------ */

const char *hsm_virt_job_type_name(enum hsm_virt_job_type type)
{
	static const char *const names[] = { "unknown", "pull", "copy", "commit",
					     "active-commit", "backup" };

	return (unsigned)type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

const char *hsm_virt_job_status_name(enum hsm_virt_job_status status)
{
	static const char *const names[] = { "completed", "failed", "canceled", "ready" };

	return (unsigned)status < sizeof(names) / sizeof(names[0]) ? names[status] : "unknown";
}

const char *hsm_virt_lifecycle_name(enum hsm_virt_lifecycle event)
{
	static const char *const names[] = { "defined", "undefined", "started",
					     "suspended", "resumed", "stopped",
					     "shutdown", "pmsuspended", "crashed" };

	return (unsigned)event < sizeof(names) / sizeof(names[0]) ? names[event] : "unknown";
}

const char *hsm_virt_state_name(enum hsm_virt_state state)
{
	static const char *const names[] = { "nostate", "running", "blocked", "paused",
					     "shutdown", "shutoff", "crashed", "pmsuspended" };

	return (unsigned)state < sizeof(names) / sizeof(names[0]) ? names[state] : "unknown";
}
