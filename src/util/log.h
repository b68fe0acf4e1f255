/*
 * log.h — one line per event, to stderr, syslog or the systemd journal.
 *
 * Line format on stderr:
 *   2026-11-21T09:55:01.123Z info 4f3a9c0d12e8b7a1 smtp connect ip=127.0.0.1
 * i.e. time, level, the 16-hex session id (zeros for events outside a
 * session), subsystem, event, key=value pairs.  Each line is written with a
 * single write(2) so lines never interleave.  The syslog and journal sinks
 * get the same line from the session id on (they keep their own time) in
 * one datagram, with the level as the priority (log_open_sink).
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

/* Where lines go: the `log` setting (lua/lua_config_obs.c). */
enum log_sink {
	LOG_SINK_STDERR,	/* the default */
	LOG_SINK_SYSLOG,	/* RFC 3164 datagrams to /dev/log */
	LOG_SINK_JOURNAL,	/* journald's native protocol */
};

#define LOG_IDENT_MAX		32
#define LOG_SOCKET_PATH_MAX	107	/* sun_path less its NUL */

struct log_sink_config {
	enum log_sink	 sink;
	int		 facility;	/* syslog facility code (mail: 2) */
	char		 ident[LOG_IDENT_MAX + 1];	/* "luasmtpd" */
	/* "": the sink's standard socket; otherwise (tests) this path. */
	char		 socket[LOG_SOCKET_PATH_MAX + 1];
};

/* Defaults: stderr, facility mail, ident "luasmtpd". */
void	log_sink_defaults(struct log_sink_config *);
/*
 * Send every later line to the sink (stderr needs nothing).  Returns 0,
 * or -1 with errno if no socket could be made.  A sink that refuses a
 * line (not running, full) gets it written to stderr instead and counted
 * (log_dropped).  Safe from any thread once set; set it once, at start.
 */
int	log_open_sink(const struct log_sink_config *);
void	log_close_sink(void);
/* Lines the syslog or journal socket did not take. */
unsigned long long log_dropped(void);
/* "mail", "daemon", "user", "local0" ... "local7": the code, or -1. */
int	log_facility_from_name(const char *);
/* The sink's name from the config, or -1. */
int	log_sink_from_name(const char *, enum log_sink *);

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
