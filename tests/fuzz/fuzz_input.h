/*
 * Helpers of the fuzz targets (tests/fuzz/fuzz_*.c): libFuzzer's input is
 * bytes without a terminator; the parsers take C strings or lists of them.
 */
#ifndef TESTS_FUZZ_INPUT_H
#define TESTS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated heap copy of the input (caller frees); aborts on ENOMEM. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s) {
		abort();
	}
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * Splits text in place at each '\n' into a NULL-terminated list of at most
 * max lines (the rest stay in the last one); free() the list, not the lines.
 */
static inline char **fuzz_lines(char *text, size_t max, size_t *ret_n)
{
	char **v = calloc(max + 1, sizeof(*v));
	size_t n = 0;

	if (!v) {
		abort();
	}
	while (n < max) {
		char *nl = strchr(text, '\n');

		v[n++] = text;
		if (!nl) {
			break;
		}
		*nl = '\0';
		text = nl + 1;
	}
	*ret_n = n;
	return v;
}

#endif
