#include "ctl/json.h"

#include <inttypes.h>

void ctl_json_init(struct ctl_json *j, FILE *out)
{
	j->out = out;
	j->depth = 0;
	j->need_comma[0] = false;
}

static void json_escape(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (*p < 0x20) {
				fprintf(out, "\\u%04x", *p);
			} else {
				fputc(*p, out);
			}
		}
	}
	fputc('"', out);
}

static void json_key(struct ctl_json *j, const char *key)
{
	if (j->need_comma[j->depth]) {
		fputc(',', j->out);
	}
	j->need_comma[j->depth] = true;
	if (key) {
		json_escape(j->out, key);
		fputc(':', j->out);
	}
}

static void json_open(struct ctl_json *j, const char *key, char c)
{
	json_key(j, key);
	fputc(c, j->out);
	if (j->depth < 31) {
		j->depth++;
	}
	j->need_comma[j->depth] = false;
}

void ctl_json_object_begin(struct ctl_json *j, const char *key)
{
	json_open(j, key, '{');
}

void ctl_json_object_end(struct ctl_json *j)
{
	fputc('}', j->out);
	j->depth--;
}

void ctl_json_array_begin(struct ctl_json *j, const char *key)
{
	json_open(j, key, '[');
}

void ctl_json_array_end(struct ctl_json *j)
{
	fputc(']', j->out);
	j->depth--;
}

void ctl_json_string(struct ctl_json *j, const char *key, const char *value)
{
	json_key(j, key);
	if (value) {
		json_escape(j->out, value);
	} else {
		fputs("null", j->out);
	}
}

void ctl_json_int(struct ctl_json *j, const char *key, int64_t value)
{
	json_key(j, key);
	fprintf(j->out, "%" PRId64, value);
}

void ctl_json_uint(struct ctl_json *j, const char *key, uint64_t value)
{
	json_key(j, key);
	fprintf(j->out, "%" PRIu64, value);
}

void ctl_json_double(struct ctl_json *j, const char *key, double value)
{
	json_key(j, key);
	fprintf(j->out, "%.3f", value);
}

void ctl_json_bool(struct ctl_json *j, const char *key, bool value)
{
	json_key(j, key);
	fputs(value ? "true" : "false", j->out);
}

void ctl_json_finish(struct ctl_json *j)
{
	fputc('\n', j->out);
	fflush(j->out);
}
