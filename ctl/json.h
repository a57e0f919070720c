/*
 * ctl_json — a small streaming JSON writer for pkctl's --json output.
 * Produces one compact object per command on stdout. Keys and string
 * values are escaped here; the caller keeps the nesting balanced.
 */
#ifndef CTL_JSON_H
#define CTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct ctl_json {
	FILE *out;
	int depth;
	bool need_comma[32];
};

void ctl_json_init(struct ctl_json *j, FILE *out);
void ctl_json_object_begin(struct ctl_json *j, const char *key); /* key NULL at top / in arrays */
void ctl_json_object_end(struct ctl_json *j);
void ctl_json_array_begin(struct ctl_json *j, const char *key);
void ctl_json_array_end(struct ctl_json *j);
void ctl_json_string(struct ctl_json *j, const char *key, const char *value); /* NULL -> null */
void ctl_json_int(struct ctl_json *j, const char *key, int64_t value);
void ctl_json_uint(struct ctl_json *j, const char *key, uint64_t value);
void ctl_json_double(struct ctl_json *j, const char *key, double value);
void ctl_json_bool(struct ctl_json *j, const char *key, bool value);
/* Ends the document with a newline. */
void ctl_json_finish(struct ctl_json *j);

#endif
