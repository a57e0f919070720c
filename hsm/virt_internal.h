/*
 * hsm/virt_internal.h — the inside of hsm/virt.h. Included by hsm/virt.c
 * (which implements the connection and the helpers below), hsm/virt_loop.c
 * (the event loop and reconnect threads, hsm_virt_new/free) and the verbs,
 * hsm/virt_domain.c and hsm/virt_blockjob.c; by no other file.
 *
 *  - struct hsm_virt is the fields of virt.c and virt_loop.c; the verbs
 *    reach libvirt only through the functions here.
 *  - hsm_virt_conn_get / hsm_virt_dom_get borrow the current connection
 *    (and a domain of it); the verb drops them with hsm_virt_dom_put (or
 *    virConnectClose for a bare connection) before it returns.
 *  - hsm_virt_check_arg refuses a missing, overlong or non-printable
 *    argument before it reaches libvirt.
 *  - hsm_virt_fail is the one place a libvirt failure becomes err, with
 *    the code mapping hsm/virt.h documents; it also notices a dead
 *    connection and has the reconnect thread reopen it.
 */
#ifndef HSM_VIRT_INTERNAL_H
#define HSM_VIRT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <libvirt/libvirt.h>

#include "common/error.h"
#include "hsm/virt.h"

/* The domain event callbacks registered on one connection (-1: none). */
#define HSM_VIRT_NEVENTS 4
struct hsm_virt_event_ids {
	int id[HSM_VIRT_NEVENTS];
};

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
	struct hsm_virt_event_ids events;
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

/* ---- the connection (hsm/virt.c) ------------------------------------------- */

/* Opens a connection to v->uri with keepalive, close callback and event
 * callbacks; UNAVAILABLE when libvirtd cannot be reached. */
int hsm_virt_conn_open(struct hsm_virt *v, virConnectPtr *ret_conn,
		       struct hsm_virt_event_ids *ret_events, struct pk_error *err);

/* Drops everything registered on conn and closes it; conn may be NULL. */
void hsm_virt_conn_teardown(virConnectPtr conn, const struct hsm_virt_event_ids *events);

/* No callback registered (every id -1). */
void hsm_virt_event_ids_none(struct hsm_virt_event_ids *events);

/* Asks for a reconnect if conn (just published in v) is already dead: a
 * close callback that fired before it was published was ignored. */
void hsm_virt_conn_recheck(struct hsm_virt *v, virConnectPtr conn);

/* ---- for the verbs ----------------------------------------------------------- */

/*
 * Turns libvirt's last error of this thread into err, prefixed with the
 * formatted context. conn (may be NULL) is checked for liveness when the
 * error looks like a lost connection, so a dead connection is noticed even
 * if its close callback was missed. Returns -errno.
 */
int hsm_virt_fail(struct hsm_virt *v, virConnectPtr conn, struct pk_error *err,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The code of libvirt's last error of this thread (VIR_ERR_OK: none). */
int hsm_virt_last_error_code(void);

/* A reference to the current connection (virConnectClose to drop it). */
virConnectPtr hsm_virt_conn_get(struct hsm_virt *v, struct pk_error *err);

/* 0 when s is a non-empty printable ASCII string of at most 256
 * characters; else INVALID_ARGUMENT naming it as what. */
int hsm_virt_check_arg(const char *what, const char *s, struct pk_error *err);

/* Looks up a domain by name; the caller frees *ret_dom and drops *ret_conn. */
int hsm_virt_dom_get(struct hsm_virt *v, const char *name, virConnectPtr *ret_conn,
		     virDomainPtr *ret_dom, struct pk_error *err);

/* The same for a call on disk of the domain: disk is checked first
 * (hsm_virt_check_arg). */
int hsm_virt_disk_dom_get(struct hsm_virt *v, const char *name, const char *disk,
			  virConnectPtr *ret_conn, virDomainPtr *ret_dom, struct pk_error *err);

/* Frees d and drops c; either may be NULL. */
void hsm_virt_dom_put(virConnectPtr c, virDomainPtr d);

#endif
