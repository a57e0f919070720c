/*
 * pk_log — leveled, format-checked logging for the daemons and tools.
 *
 * Lines go to stderr as `<time> <ident>[pid] <LEVEL> message`; context is
 * written by the caller as key='value' pairs inside the message, e.g.
 *   pk_log_error("merge failed vm='%s' disk='%s' job='%s': %s", ...);
 *
 * Rules:
 *  - Library code (common/, the daemons' logic) returns errors in a
 *    struct pk_error and does not log them; the layer that decides what a
 *    failure means logs it, once.
 *  - The level is tested before any argument is evaluated.
 *  - pk_log_setup() is called once from main() before threads start; the
 *    setting is the process's only logging state and is read-only afterwards.
 */
#ifndef PK_LOG_H
#define PK_LOG_H

#include <errno.h>
#include <stddef.h>

enum pk_log_level {
	PK_LOG_ERROR = 0,
	PK_LOG_WARN = 1,
	PK_LOG_INFO = 2,
	PK_LOG_DEBUG = 3,
};

void pk_log_setup(const char *ident, enum pk_log_level level);
enum pk_log_level pk_log_get_level(void);
/* Parses "error|warn|info|debug"; returns -EINVAL for anything else. */
int pk_log_level_parse(const char *s, enum pk_log_level *ret_level);

/*
 * Writes one line. Control characters (< 0x20, 0x7f) in the message are
 * written as \xNN (pk_log_escape): a name or an error text that came from
 * a request, a guest or a child process cannot forge or split log lines.
 */
void pk_log_write(enum pk_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Copies in into out (size bytes, always terminated, cut when full) with
 * every control character as \xNN. Returns out. */
char *pk_log_escape(const char *in, char *out, size_t size);

#define pk_log_at(lvl, ...)                                     \
	do {                                                    \
		if ((lvl) <= pk_log_get_level()) {              \
			pk_log_write((lvl), __VA_ARGS__);       \
		}                                               \
	} while (0)

#define pk_log_error(...) pk_log_at(PK_LOG_ERROR, __VA_ARGS__)
#define pk_log_warn(...) pk_log_at(PK_LOG_WARN, __VA_ARGS__)
#define pk_log_info(...) pk_log_at(PK_LOG_INFO, __VA_ARGS__)
#define pk_log_debug(...) pk_log_at(PK_LOG_DEBUG, __VA_ARGS__)

#endif
