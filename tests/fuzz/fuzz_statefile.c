/*
 * libFuzzer target: durable state records (common/statefile.c). The first
 * line is a record name (from a directory listing or a record's id), the
 * rest its content. A name the checks accept must write, read back the
 * same bytes, show in the listing and remove; a refused one must leave
 * the directory empty. The directory is on tmpfs when /dev/shm exists so
 * the fsyncs cost nothing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/statefile.h"
#include "common/strv.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void dir_remove(void)
{
	(void)rmdir(dir); /* empty after every input */
}

static void dir_once(void)
{
	if (dir[0]) {
		return;
	}
	snprintf(dir, sizeof(dir), "%s/pk-fuzz-state.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir)) {
		abort();
	}
	atexit(dir_remove);
}

static size_t listed(const char *name)
{
	char **names = NULL;
	size_t n = 0, found = 0;
	struct pk_error err;

	if (pk_statefile_list(dir, "", &names, &n, &err) < 0) {
		abort();
	}
	for (size_t i = 0; i < n; i++) {
		found += name && !strcmp(names[i], name);
	}
	pk_strv_free(names);
	return name ? found : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t name_len = nl ? (size_t)(nl - data) : size;
	char *name = fuzz_strndup(data, name_len);
	const uint8_t *body = nl ? nl + 1 : data + size;
	size_t body_len = (size_t)(data + size - body);
	struct pk_error err;
	void *back = NULL;
	size_t back_len = 0;

	dir_once();
	if (strlen(name) != name_len) {
		goto out; /* a NUL inside: no file name has one */
	}
	if (pk_statefile_write(dir, name, body, body_len, &err) < 0) {
		if (listed(NULL) != 0) {
			abort();
		}
		goto out;
	}
	if (pk_statefile_read(dir, name, &back, &back_len, &err) < 0 || back_len != body_len ||
	    memcmp(back, body, body_len) || ((char *)back)[back_len] != '\0' ||
	    listed(name) != 1 || pk_statefile_remove(dir, name, &err) < 0 || listed(NULL) != 0) {
		abort();
	}
out:
	free(back);
	free(name);
	return 0;
}
