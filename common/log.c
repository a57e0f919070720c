#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/*
 * The process's logging settings: written once by pk_log_setup() from
 * main() before any thread starts, read-only afterwards, so no lock.
 */
static struct {
	char ident[32];
	enum pk_log_level level;
} log_settings = { "poolkeeper", PK_LOG_INFO };

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void pk_log_setup(const char *ident, enum pk_log_level level)
{
	snprintf(log_settings.ident, sizeof(log_settings.ident), "%s", ident);
	log_settings.level = level;
}

enum pk_log_level pk_log_get_level(void)
{
	return log_settings.level;
}

int pk_log_level_parse(const char *s, enum pk_log_level *ret_level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0 ||
		    (i == PK_LOG_WARN && strcasecmp(s, "warning") == 0)) {
			*ret_level = (enum pk_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

char *pk_log_escape(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!size) {
		return out;
	}
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			if (o + 4 >= size) {
				break;
			}
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 0xf];
		} else {
			if (o + 1 >= size) {
				break;
			}
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
	return out;
}

void pk_log_write(enum pk_log_level level, const char *fmt, ...)
{
	char msg[2048], escaped[4096];
	char line[4200];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%d] %s %s", stamp,
		     ts.tv_nsec / 1000000, log_settings.ident, (int)getpid(),
		     level_names[level], pk_log_escape(msg, escaped, sizeof(escaped)));
	(void)n;
	/* One write per line so lines from threads never interleave. */
	fprintf(stderr, "%s\n", line);
}
