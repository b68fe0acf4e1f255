/*
 * log.h — one line per event on stderr.
 *
 * Line format:
 *   2026-11-21T09:55:01.123Z info 4f3a9c0d12e8b7a1 smtp connect ip=127.0.0.1
 * i.e. time, level, the 16-hex session id (zeros for events outside a
 * session), subsystem, event, key=value pairs.  Each line is written with a
 * single write(2) so lines never interleave.
 *
 * Client text must go through log_excerpt() before it reaches a log line.
 */
#ifndef LUASMTPD_LOG_H
#define LUASMTPD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_DEBUG,
	LOG_LVL_INFO,
	LOG_LVL_WARN,
	LOG_LVL_ERROR,
};

void	log_set_level(enum log_level);
int	log_level_from_name(const char *, enum log_level *);
int	log_enabled(enum log_level);

/* fmt starts with the subsystem and the event: "smtp connect ip=%s". */
void	log_sid(enum log_level, uint64_t sid, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#define log_debug(sid, ...)	do { if (log_enabled(LOG_LVL_DEBUG)) \
	log_sid(LOG_LVL_DEBUG, (sid), __VA_ARGS__); } while (0)
#define log_info(sid, ...)	log_sid(LOG_LVL_INFO, (sid), __VA_ARGS__)
#define log_warn(sid, ...)	log_sid(LOG_LVL_WARN, (sid), __VA_ARGS__)
#define log_error(sid, ...)	log_sid(LOG_LVL_ERROR, (sid), __VA_ARGS__)

/* Broken environment: log and exit(1).  Nothing a client does gets here. */
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
/* Same, with strerror(errno) appended. */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Copy at most max bytes of untrusted text into dst as printable ASCII:
 * backslash, quote and bytes outside 0x20..0x7e become \xNN, and a cut is
 * marked with "...".  dst must hold 4 * max + 4 bytes.  Returns dst.
 */
char	*log_excerpt(char *dst, const char *src, size_t len, size_t max);
#define LOG_EXCERPT_BUFSZ(max)	(4 * (max) + 4)
/*
 * The same for a bare key=value token (an address, an SNI name): a space
 * is escaped too, so the value cannot end early and forge the next key.
 * src is a C string.
 */
char	*log_token(char *dst, const char *src, size_t max);
/* A buffer for an address (RFC 5321 §4.5.3.1.3: 256 octets). */
#define LOG_ADDR_BUFSZ		LOG_EXCERPT_BUFSZ(256)

#endif
