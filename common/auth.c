#include "common/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/xalloc.h"

const char *pk_role_name(enum pk_role role)
{
	switch (role) {
	case PK_ROLE_ENGINE:
		return "engine";
	case PK_ROLE_HOST:
		return "host";
	case PK_ROLE_VIEWER:
		return "viewer";
	default:
		return "none";
	}
}

static const struct pk_auth_entry *auth_find(const struct pk_auth *auth, const char *name)
{
	for (size_t i = 0; i < auth->n; i++) {
		if (strcmp(auth->entries[i].name, name) == 0) {
			return &auth->entries[i];
		}
	}
	return NULL;
}

static const char *role_setting(enum pk_role role)
{
	return role == PK_ROLE_ENGINE ? "auth_engine"
	       : role == PK_ROLE_HOST ? "auth_host"
				      : "auth_viewer";
}

/* Parses one trimmed entry [start, end) of the list of `role`. */
static int auth_add(struct pk_auth *auth, enum pk_role role, const char *start, size_t len,
		    struct pk_error *err)
{
	const char *setting = role_setting(role);
	char entry[PK_AUTH_NAME_MAX + 16];
	char *colon;
	int32_t host_id = 0;
	const struct pk_auth_entry *dup;

	if (len == 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s: empty entry (a comma too many?)", setting);
	}
	if (len >= sizeof(entry)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, ENAMETOOLONG,
				    "%s: entry '%.40s...' is longer than %d characters", setting,
				    start, PK_AUTH_NAME_MAX - 1);
	}
	memcpy(entry, start, len);
	entry[len] = '\0';
	colon = strrchr(entry, ':');
	if (role == PK_ROLE_HOST) {
		uint64_t id;

		if (!colon || pk_parse_u64(colon + 1, &id) < 0 || id < 1 || id > 2000) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "%s: entry '%s' must be <certificate name>:<host id 1-2000>",
					    setting, entry);
		}
		*colon = '\0';
		host_id = (int32_t)id;
	} else if (colon) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s: entry '%s': only auth_host entries carry ':<host id>'",
				    setting, entry);
	}
	if (entry[0] == '\0' || strlen(entry) >= PK_AUTH_NAME_MAX) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s: entry '%.*s' names no certificate", setting, (int)len, start);
	}
	dup = auth_find(auth, entry);
	if (dup) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EEXIST,
				    "%s: '%s' is already mapped (role %s); a name has one role",
				    setting, entry, pk_role_name(dup->role));
	}
	auth->entries = pk_xrealloc(auth->entries, (auth->n + 1) * sizeof(*auth->entries));
	auth->entries[auth->n].name = pk_xstrdup(entry);
	auth->entries[auth->n].role = role;
	auth->entries[auth->n].host_id = host_id;
	auth->n++;
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int auth_add_list(struct pk_auth *auth, enum pk_role role, const char *list,
			 struct pk_error *err)
{
	const char *p = list;

	if (!list) {
		return 0;
	}
	while (is_blank(*p)) {
		p++;
	}
	if (*p == '\0') {
		return 0; /* set but empty: nothing mapped */
	}
	for (;;) {
		const char *end = strchr(p, ',');
		const char *stop = end ? end : p + strlen(p);
		int r;

		while (p < stop && is_blank(*p)) {
			p++;
		}
		while (stop > p && is_blank(stop[-1])) {
			stop--;
		}
		r = auth_add(auth, role, p, (size_t)(stop - p), err);
		if (r < 0) {
			return r;
		}
		if (!end) {
			return 0;
		}
		p = end + 1;
	}
}

int pk_auth_parse(struct pk_auth *auth, const char *engine, const char *host,
		  const char *viewer, struct pk_error *err)
{
	struct pk_auth a = PK_AUTH_INIT;
	int r;

	r = auth_add_list(&a, PK_ROLE_ENGINE, engine, err);
	if (r == 0) {
		r = auth_add_list(&a, PK_ROLE_HOST, host, err);
	}
	if (r == 0) {
		r = auth_add_list(&a, PK_ROLE_VIEWER, viewer, err);
	}
	if (r < 0) {
		pk_auth_release(&a);
		return r;
	}
	*auth = a;
	return 0;
}

void pk_auth_release(struct pk_auth *auth)
{
	if (!auth) {
		return;
	}
	for (size_t i = 0; i < auth->n; i++) {
		free(auth->entries[i].name);
	}
	free(auth->entries);
	auth->entries = NULL;
	auth->n = 0;
}

bool pk_auth_is_set(const struct pk_auth *auth)
{
	return auth && auth->n > 0;
}

void pk_auth_resolve(const struct pk_auth *auth, const char *name, struct pk_caller *ret)
{
	const struct pk_auth_entry *e = auth_find(auth, name);

	snprintf(ret->name, sizeof(ret->name), "%s", name);
	ret->role = e ? e->role : PK_ROLE_NONE;
	ret->host_id = e ? e->host_id : 0;
}

bool pk_auth_allows(unsigned allowed, const struct pk_caller *caller)
{
	return caller->role != PK_ROLE_NONE && (allowed & (unsigned)caller->role) != 0;
}
