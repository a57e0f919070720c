/*
 * The connection half of hsm/virt.h: opening a connection to libvirtd
 * (keepalive, close callback, event callbacks), turning libvirt's error
 * into struct pk_error (and noticing a dead connection there), and what
 * every verb shares (hsm/virt_internal.h): borrowing the connection or a
 * domain, checking arguments. The event loop and reconnect threads and
 * hsm_virt_new/free are in hsm/virt_loop.c; the verbs in
 * hsm/virt_domain.c and hsm/virt_blockjob.c.
 */
#include "hsm/virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hsm/virt_internal.h"

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

int hsm_virt_fail(struct hsm_virt *v, virConnectPtr conn, struct pk_error *err,
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

int hsm_virt_last_error_code(void)
{
	virErrorPtr e = virGetLastError();

	return e ? e->code : VIR_ERR_OK;
}

/* ---- event callbacks ------------------------------------------------------- */

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

static void on_block_threshold(virConnectPtr conn, virDomainPtr dom, const char *dev,
			       const char *path, unsigned long long threshold,
			       unsigned long long excess, void *opaque)
{
	struct hsm_virt *v = opaque;
	const char *name = virDomainGetName(dom);

	(void)conn;
	(void)path;
	if (v->cb.block_threshold && name && dev) {
		v->cb.block_threshold(v->cb.opaque, name, dev, threshold, excess);
	}
}

static void on_io_error(virConnectPtr conn, virDomainPtr dom, const char *path,
			const char *alias, int action, const char *reason, void *opaque)
{
	struct hsm_virt *v = opaque;
	const char *name = virDomainGetName(dom);

	(void)conn;
	(void)alias;
	(void)action;
	if (v->cb.io_error && name) {
		v->cb.io_error(v->cb.opaque, name, path ? path : "", reason ? reason : "");
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
void hsm_virt_event_ids_none(struct hsm_virt_event_ids *events)
{
	for (size_t i = 0; i < HSM_VIRT_NEVENTS; i++) {
		events->id[i] = -1;
	}
}

void hsm_virt_conn_teardown(virConnectPtr conn, const struct hsm_virt_event_ids *events)
{
	if (!conn) {
		return;
	}
	for (size_t i = 0; i < HSM_VIRT_NEVENTS; i++) {
		if (events->id[i] >= 0) {
			virConnectDomainEventDeregisterAny(conn, events->id[i]);
		}
	}
	virConnectUnregisterCloseCallback(conn, on_close);
	virConnectClose(conn);
	virResetLastError();
}

/* Opens a connection with keepalive, close callback and event callbacks. */
int hsm_virt_conn_open(struct hsm_virt *v, virConnectPtr *ret_conn,
		       struct hsm_virt_event_ids *ret_events, struct pk_error *err)
{
	static const struct {
		int id;
		virConnectDomainEventGenericCallback fn;
		const char *what;
	} regs[HSM_VIRT_NEVENTS] = {
		{ VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle),
		  "lifecycle" },
		{ VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, VIR_DOMAIN_EVENT_CALLBACK(on_block_job),
		  "block job" },
		{ VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD, VIR_DOMAIN_EVENT_CALLBACK(on_block_threshold),
		  "block threshold" },
		{ VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, VIR_DOMAIN_EVENT_CALLBACK(on_io_error),
		  "I/O error" },
	};
	struct hsm_virt_event_ids ids;
	virConnectPtr conn;
	int r;

	hsm_virt_event_ids_none(&ids);
	conn = virConnectOpen(v->uri);
	if (!conn) {
		r = hsm_virt_fail(v, NULL, err, "cannot connect to libvirt at '%s'", v->uri);
		if (err) {
			err->code = PK_E_UNAVAILABLE;
		}
		return r;
	}
	if (v->keepalive_interval_s > 0 &&
	    virConnectSetKeepAlive(conn, v->keepalive_interval_s, v->keepalive_count) < 0 &&
	    hsm_virt_last_error_code() != VIR_ERR_NO_SUPPORT) {
		r = hsm_virt_fail(v, NULL, err, "cannot enable keepalive on '%s'", v->uri);
		goto fail;
	}
	if (virConnectRegisterCloseCallback(conn, on_close, v, NULL) < 0 &&
	    hsm_virt_last_error_code() != VIR_ERR_NO_SUPPORT) {
		r = hsm_virt_fail(v, NULL, err, "cannot watch the connection to '%s'", v->uri);
		goto fail;
	}
	for (size_t i = 0; i < HSM_VIRT_NEVENTS; i++) {
		ids.id[i] = virConnectDomainEventRegisterAny(conn, NULL, regs[i].id, regs[i].fn, v,
							     NULL);
		if (ids.id[i] < 0) {
			r = hsm_virt_fail(v, NULL, err, "cannot register %s events on '%s'",
					  regs[i].what, v->uri);
			goto fail;
		}
	}
	/* The connection may have died before the close callback was set. */
	if (virConnectIsAlive(conn) == 0) {
		r = pk_error_set(err, PK_E_UNAVAILABLE, ECONNRESET,
				 "connection to '%s' closed while setting it up", v->uri);
		goto fail;
	}
	virResetLastError();
	*ret_conn = conn;
	*ret_events = ids;
	return 0;
fail:
	if (err) {
		err->code = PK_E_UNAVAILABLE;
	}
	hsm_virt_conn_teardown(conn, &ids);
	return r;
}

/* A close callback that fired before conn was published was ignored:
 * look again once it is. */
void hsm_virt_conn_recheck(struct hsm_virt *v, virConnectPtr conn)
{
	if (virConnectIsAlive(conn) == 0) {
		request_reconnect(v, conn);
	}
	virResetLastError();
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

virConnectPtr hsm_virt_conn_get(struct hsm_virt *v, struct pk_error *err)
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

int hsm_virt_check_arg(const char *what, const char *s, struct pk_error *err)
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

int hsm_virt_dom_get(struct hsm_virt *v, const char *name, virConnectPtr *ret_conn,
		     virDomainPtr *ret_dom, struct pk_error *err)
{
	virConnectPtr c;
	virDomainPtr d;
	int r;

	r = hsm_virt_check_arg("VM name", name, err);
	if (r < 0) {
		return r;
	}
	c = hsm_virt_conn_get(v, err);
	if (!c) {
		return -ENOTCONN;
	}
	d = virDomainLookupByName(c, name);
	if (!d) {
		if (hsm_virt_last_error_code() == VIR_ERR_NO_DOMAIN) {
			virResetLastError();
			virConnectClose(c);
			return pk_error_set(err, PK_E_NOT_FOUND, ENOENT, "VM '%s' not found", name);
		}
		r = hsm_virt_fail(v, c, err, "cannot look up VM '%s'", name);
		virConnectClose(c);
		return r;
	}
	*ret_conn = c;
	*ret_dom = d;
	return 0;
}

int hsm_virt_disk_dom_get(struct hsm_virt *v, const char *name, const char *disk,
			  virConnectPtr *ret_conn, virDomainPtr *ret_dom, struct pk_error *err)
{
	int r = hsm_virt_check_arg("disk", disk, err);

	return r < 0 ? r : hsm_virt_dom_get(v, name, ret_conn, ret_dom, err);
}

void hsm_virt_dom_put(virConnectPtr c, virDomainPtr d)
{
	if (d) {
		virDomainFree(d);
	}
	if (c) {
		virConnectClose(c);
	}
}
