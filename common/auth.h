/*
 * pk_auth — who may call which verb: the roles a caller can have, the
 * mapping from a certificate's name to a role (settings auth_engine,
 * auth_host, auth_viewer) and the check a verb table entry makes.
 *
 * Roles (docs/SECURITY.md, Authorization):
 *  - engine: every verb (the management engine, the local administrator);
 *  - host:   only what an hsmd needs from spmd; carries the host id its
 *            certificate maps to, which ImagePrepared records instead of
 *            the request's;
 *  - viewer: read-only verbs.
 * A verb table entry names the roles allowed as a mask of enum pk_role.
 *
 * Mapping syntax (each setting a comma-separated list, blanks ignored):
 *   auth_engine = engine,ops1
 *   auth_viewer = viewer
 *   auth_host   = host1:1,host2:2      (name ':' host id 1-2000)
 * A name may appear once over all three lists (one name, one role).
 *
 * A struct pk_auth is built once at start-up and read-only afterwards, so
 * workers may resolve concurrently without a lock.
 */
#ifndef PK_AUTH_H
#define PK_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

enum pk_role {
	PK_ROLE_NONE = 0,
	PK_ROLE_ENGINE = 1u << 0,
	PK_ROLE_HOST = 1u << 1,
	PK_ROLE_VIEWER = 1u << 2,
};

#define PK_ROLES_ALL (PK_ROLE_ENGINE | PK_ROLE_HOST | PK_ROLE_VIEWER)
/* The columns of the verb tables. */
#define PK_ROLES_ADMIN PK_ROLE_ENGINE                   /* changes state */
#define PK_ROLES_READ (PK_ROLE_ENGINE | PK_ROLE_VIEWER) /* read-only */
#define PK_ROLES_HOST (PK_ROLE_ENGINE | PK_ROLE_HOST)   /* what an hsmd calls on spmd */

#define PK_AUTH_NAME_MAX 256

/* Who calls: a plain-C identity handed to verbs (protobuf stays at the edge). */
struct pk_caller {
	enum pk_role role;           /* one role, or PK_ROLE_NONE: unmapped */
	char name[PK_AUTH_NAME_MAX]; /* certificate name, "ipc uid=N", "tcp" */
	int32_t host_id;             /* PK_ROLE_HOST: from the mapping; else 0 */
};

struct pk_auth_entry {
	char *name;
	enum pk_role role;
	int32_t host_id; /* PK_ROLE_HOST only */
};

struct pk_auth {
	struct pk_auth_entry *entries;
	size_t n;
};

#define PK_AUTH_INIT { NULL, 0 }

/*
 * Parses the three lists (each may be NULL: unset). On success *auth owns
 * the entries (pk_auth_release). INVALID_ARGUMENT naming the setting and
 * the entry: an empty name, a host entry without a valid host id, an id
 * on an engine/viewer entry, a name mapped twice.
 */
int pk_auth_parse(struct pk_auth *auth, const char *engine, const char *host,
		  const char *viewer, struct pk_error *err);
void pk_auth_release(struct pk_auth *auth);

/* True when at least one name is mapped. */
bool pk_auth_is_set(const struct pk_auth *auth);

/*
 * The caller a certificate name maps to: its role and host id, or
 * PK_ROLE_NONE when unmapped (name still recorded, for the log).
 */
void pk_auth_resolve(const struct pk_auth *auth, const char *name, struct pk_caller *ret);

/* True when caller's role is in the mask `allowed`. PK_ROLE_NONE never is. */
bool pk_auth_allows(unsigned allowed, const struct pk_caller *caller);

/* "engine", "host", "viewer" or "none". */
const char *pk_role_name(enum pk_role role);

#endif
