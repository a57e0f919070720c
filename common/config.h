/*
 * pk_config — daemon settings from a `key = value` file plus command-line
 * overrides, checked against a schema.
 *
 * File format (parsed by inih): `key = value` lines, `#`/`;` comments,
 * optional `[section]` headers. Keys before any section, and keys in the
 * section named at init (e.g. "hsm"), apply; other sections are skipped so
 * one file can configure both daemons. A key that is not in the schema, a
 * value of the wrong type or out of range is an error naming file and line.
 * Overrides (`-o key=value`) are applied after the file and win.
 *
 * The schema is a static table owned by the caller and must outlive the
 * config; values are owned by the config and freed by pk_config_release().
 */
#ifndef PK_CONFIG_H
#define PK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

enum pk_config_type {
	PK_CONFIG_STR,
	PK_CONFIG_INT,
	PK_CONFIG_BOOL,
};

struct pk_config_key {
	const char *name;
	enum pk_config_type type;
	const char *default_value; /* NULL: unset */
	long min, max;             /* PK_CONFIG_INT only */
	const char *help;
};

struct pk_config {
	const char *section;
	const struct pk_config_key *schema;
	size_t nkeys;
	char **values; /* parallel to schema */
};

void pk_config_init(struct pk_config *cfg, const char *section,
		    const struct pk_config_key *schema, size_t nkeys);
void pk_config_release(struct pk_config *cfg);

int pk_config_load_file(struct pk_config *cfg, const char *path, struct pk_error *err);
/* Applies one "key=value" override. */
int pk_config_set(struct pk_config *cfg, const char *assignment, struct pk_error *err);
/* Sets key to value (validated). */
int pk_config_set_value(struct pk_config *cfg, const char *key, const char *value,
			struct pk_error *err);

/* Getters: the key MUST be in the schema with that type (assert). */
const char *pk_config_str(const struct pk_config *cfg, const char *key); /* NULL if unset */
long pk_config_int(const struct pk_config *cfg, const char *key);        /* 0 if unset */
bool pk_config_bool(const struct pk_config *cfg, const char *key);

/* Fails with INVALID_ARGUMENT naming the first key of `keys` left unset. */
int pk_config_require(const struct pk_config *cfg, const char *const *keys, size_t n,
		      struct pk_error *err);

#endif
