/*
 * libFuzzer target: the daemons' settings file (common/config.c over
 * inih), read through a memfd as pk_config_load_file reads a file, with a
 * schema of each value type (string, bounded integer, boolean) and a
 * section. Every value a file sets must be accepted again as an override,
 * and each line is also tried as a `-o key=value` override.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/config.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct pk_config_key schema[] = {
	{ "listen", PK_CONFIG_STR, NULL, 0, 0, "url" },
	{ "state_dir", PK_CONFIG_STR, "/var/lib/poolkeeper", 0, 0, "dir" },
	{ "host_id", PK_CONFIG_INT, "1", 1, 2000, "id" },
	{ "thin_free_mb", PK_CONFIG_INT, "0", 0, 1048576, "MiB" },
	{ "max_message", PK_CONFIG_INT, "4194304", 4096, 268435456, "bytes" },
	{ "thin_monitor", PK_CONFIG_BOOL, "true", 0, 0, "flag" },
	{ "spm_auto", PK_CONFIG_BOOL, "false", 0, 0, "flag" },
};
#define NKEYS (sizeof(schema) / sizeof(schema[0]))

static void values_check(struct pk_config *cfg)
{
	struct pk_error err;

	for (size_t i = 0; i < NKEYS; i++) {
		char *v = cfg->values[i] ? strdup(cfg->values[i]) : NULL;

		if (v && pk_config_set_value(cfg, schema[i].name, v, &err) < 0) {
			abort();
		}
		free(v);
		switch (schema[i].type) {
		case PK_CONFIG_INT: {
			long n = pk_config_int(cfg, schema[i].name);

			if (cfg->values[i] && (n < schema[i].min || n > schema[i].max)) {
				abort();
			}
			break;
		}
		case PK_CONFIG_BOOL:
			(void)pk_config_bool(cfg, schema[i].name);
			break;
		case PK_CONFIG_STR:
			(void)pk_config_str(cfg, schema[i].name);
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pk_config cfg;
	struct pk_error err;
	char path[64], *text;
	char **lines;
	size_t n;
	int fd = memfd_create("fuzz-config", 0);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size)) {
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	pk_config_init(&cfg, "hsm", schema, NKEYS);
	if (pk_config_load_file(&cfg, path, &err) == 0) {
		values_check(&cfg);
	}
	close(fd);
	text = fuzz_strndup(data, size);
	lines = fuzz_lines(text, 16, &n);
	for (size_t i = 0; i < n; i++) {
		(void)pk_config_set(&cfg, lines[i], &err);
	}
	values_check(&cfg);
	free(lines);
	free(text);
	pk_config_release(&cfg);
	return 0;
}
