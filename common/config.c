#include "common/config.h"

#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"

static ssize_t config_find(const struct pk_config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->nkeys; i++) {
		if (strcmp(cfg->schema[i].name, key) == 0) {
			return (ssize_t)i;
		}
	}
	return -1;
}

static int config_parse_bool(const char *v, bool *ret)
{
	if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "on")) {
		*ret = true;
		return 0;
	}
	if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
	    !strcasecmp(v, "off")) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

static int config_parse_int(const char *v, long *ret)
{
	char *end = NULL;
	long n;

	errno = 0;
	n = strtol(v, &end, 0);
	if (errno || end == v || *end != '\0') {
		return -EINVAL;
	}
	*ret = n;
	return 0;
}

void pk_config_init(struct pk_config *cfg, const char *section,
		    const struct pk_config_key *schema, size_t nkeys)
{
	cfg->section = section;
	cfg->schema = schema;
	cfg->nkeys = nkeys;
	cfg->values = pk_xcalloc(nkeys, sizeof(char *));
	for (size_t i = 0; i < nkeys; i++) {
		if (schema[i].default_value) {
			cfg->values[i] = pk_xstrdup(schema[i].default_value);
		}
	}
}

void pk_config_release(struct pk_config *cfg)
{
	if (!cfg->values) {
		return;
	}
	for (size_t i = 0; i < cfg->nkeys; i++) {
		free(cfg->values[i]);
	}
	free(cfg->values);
	cfg->values = NULL;
}

int pk_config_set_value(struct pk_config *cfg, const char *key, const char *value,
			struct pk_error *err)
{
	ssize_t i = config_find(cfg, key);
	const struct pk_config_key *k;

	if (i < 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "unknown setting '%s'", key);
	}
	k = &cfg->schema[i];
	if (k->type == PK_CONFIG_INT) {
		long n;
		if (config_parse_int(value, &n) < 0) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "setting '%s' wants a whole number, got '%s'", key, value);
		}
		if (n < k->min || n > k->max) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, ERANGE,
					    "setting '%s' = %ld is out of range [%ld, %ld]", key, n,
					    k->min, k->max);
		}
	} else if (k->type == PK_CONFIG_BOOL) {
		bool b;
		if (config_parse_bool(value, &b) < 0) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "setting '%s' wants yes/no, got '%s'", key, value);
		}
	}
	free(cfg->values[i]);
	cfg->values[i] = pk_xstrdup(value);
	return 0;
}

int pk_config_set(struct pk_config *cfg, const char *assignment, struct pk_error *err)
{
	const char *eq = strchr(assignment, '=');
	char key[128];
	size_t klen;
	const char *value;

	if (!eq || eq == assignment) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "override '%s' is not of the form key=value", assignment);
	}
	klen = (size_t)(eq - assignment);
	while (klen > 0 && assignment[klen - 1] == ' ') {
		klen--;
	}
	if (klen >= sizeof(key)) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL, "override key too long");
	}
	memcpy(key, assignment, klen);
	key[klen] = '\0';
	value = eq + 1;
	while (*value == ' ') {
		value++;
	}
	return pk_config_set_value(cfg, key, value, err);
}

struct config_load_ctx {
	struct pk_config *cfg;
	const char *path;
	struct pk_error *err;
	int failed;
};

static int config_ini_handler(void *user, const char *section, const char *name,
			      const char *value)
{
	struct config_load_ctx *ctx = user;

	if (ctx->failed) {
		return 0;
	}
	if (section[0] != '\0' && strcmp(section, ctx->cfg->section) != 0) {
		return 1; /* another daemon's section */
	}
	if (pk_config_set_value(ctx->cfg, name, value, ctx->err) < 0) {
		pk_error_prefix(ctx->err, "%s", ctx->path);
		ctx->failed = 1;
		return 0;
	}
	return 1;
}

int pk_config_load_file(struct pk_config *cfg, const char *path, struct pk_error *err)
{
	struct config_load_ctx ctx = { cfg, path, err, 0 };
	FILE *f = fopen(path, "re");
	int r;

	if (!f) {
		int e = errno;
		return pk_error_set(err, e == ENOENT ? PK_E_NOT_FOUND : PK_E_IO, e,
				    "cannot open config file '%s': %s", path, strerror(e));
	}
	r = ini_parse_file(f, config_ini_handler, &ctx);
	fclose(f);
	if (ctx.failed) {
		return -EINVAL;
	}
	if (r != 0) {
		return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
				    "%s:%d: syntax error (expected 'key = value' or '[section]')",
				    path, r);
	}
	return 0;
}

static const char *config_get(const struct pk_config *cfg, const char *key,
			      enum pk_config_type type)
{
	ssize_t i = config_find(cfg, key);

	assert(i >= 0 && "config key missing from schema");
	assert(cfg->schema[i].type == type);
	(void)type;
	return cfg->values[i];
}

const char *pk_config_str(const struct pk_config *cfg, const char *key)
{
	const char *v = config_get(cfg, key, PK_CONFIG_STR);

	return v && *v ? v : NULL;
}

long pk_config_int(const struct pk_config *cfg, const char *key)
{
	const char *v = config_get(cfg, key, PK_CONFIG_INT);
	long n = 0;

	if (v) {
		config_parse_int(v, &n);
	}
	return n;
}

bool pk_config_bool(const struct pk_config *cfg, const char *key)
{
	const char *v = config_get(cfg, key, PK_CONFIG_BOOL);
	bool b = false;

	if (v) {
		config_parse_bool(v, &b);
	}
	return b;
}

int pk_config_require(const struct pk_config *cfg, const char *const *keys, size_t n,
		      struct pk_error *err)
{
	for (size_t i = 0; i < n; i++) {
		ssize_t k = config_find(cfg, keys[i]);
		if (k < 0 || !cfg->values[k] || !*cfg->values[k]) {
			return pk_error_set(err, PK_E_INVALID_ARGUMENT, EINVAL,
					    "setting '%s' is required (%s)", keys[i],
					    k >= 0 ? cfg->schema[k].help : "");
		}
	}
	return 0;
}
