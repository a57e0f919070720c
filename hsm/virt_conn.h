/*
 * hsm/virt_conn.h — the inside of hsm/virt.h, shared by hsm/virt*.c only
 * (hsm/virt.c implements it): what every verb needs to reach libvirt.
 *
 *  - hsm_virt_conn_get / hsm_virt_dom_get borrow the current connection
 *    (and a domain of it); the verb drops them with hsm_virt_dom_put (or
 *    virConnectClose for a bare connection) before it returns.
 *  - hsm_virt_check_arg refuses a missing, overlong or non-printable
 *    argument before it reaches libvirt.
 *  - hsm_virt_fail is the one place a libvirt failure becomes err, with
 *    the code mapping hsm/virt.h documents; it also notices a dead
 *    connection and has the reconnect thread reopen it.
 */
#ifndef HSM_VIRT_CONN_H
#define HSM_VIRT_CONN_H

#include <libvirt/libvirt.h>

#include "common/error.h"
#include "hsm/virt.h"

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

/* Frees d and drops c; either may be NULL. */
void hsm_virt_dom_put(virConnectPtr c, virDomainPtr d);

#endif
