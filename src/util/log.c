/*
 * log.c — the logger: one line per event, bounded, to a sink (log.h).
 *
 * stderr: one write(2) per line.  syslog and the journal: one datagram per
 * line on a unix datagram socket, sent with MSG_DONTWAIT, so a logger that
 * stalls can never stall the event loop; a line it does not take goes to
 * stderr instead and is counted (log_dropped, and the metric
 * luasmtpd_log_lines_dropped_total).
 *
 *   syslog   RFC 3164 as glibc's syslog(3) writes it to /dev/log:
 *            "<PRI>Mmm dd hh:mm:ss ident[pid]: text", PRI = facility * 8
 *            + severity.  Not syslog(3) itself: it always writes to
 *            /dev/log (so no test can see what it sent without taking
 *            over the host's logger) and it blocks in send(2) when the
 *            daemon's queue is full, which would freeze every session.
 *   journal  the native protocol of systemd-journald (systemd.journal-
 *            fields(7), "Native protocol"): KEY=value lines in one
 *            datagram to /run/systemd/journal/socket: MESSAGE, PRIORITY,
 *            SYSLOG_FACILITY, SYSLOG_IDENTIFIER, SYSLOG_PID and
 *            LUASMTPD_SESSION (the session id, for journalctl filters).
 *            No value contains a newline (lines are one line), so the
 *            simple KEY=value form always applies.  No libsystemd.
 *
 * Severities (RFC 5424 §6.2.1): debug 7, info 6, warn 4 (warning),
 * error 3.  The socket path can be set (log.socket) for tests, which bind
 * a datagram socket of their own and read what arrives.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define LOG_LINE_MAX	4096
/* A datagram: the line and the fields or header around it. */
#define LOG_DGRAM_MAX	(LOG_LINE_MAX + 512)
#define LOG_SYSLOG_PATH		"/dev/log"
#define LOG_JOURNAL_PATH	"/run/systemd/journal/socket"
#define LOG_FACILITY_MAIL	2

static enum log_level	log_min = LOG_LVL_INFO;
/* The formatted date of the current second, per thread. */
static _Thread_local time_t	cached_sec = -1;
static _Thread_local char	cached[32];
static _Thread_local size_t	cached_len;
static const char	*level_names[] = { "debug", "info", "warn", "error" };
static const int	 severities[] = { 7, 6, 4, 3 };

/* The sink, set once at start (log_open_sink) before threads log. */
static enum log_sink		 sink = LOG_SINK_STDERR;
static int			 sink_fd = -1;
static struct sockaddr_un	 sink_addr;
static socklen_t		 sink_addrlen;
static int			 sink_facility = LOG_FACILITY_MAIL;
static char			 sink_ident[LOG_IDENT_MAX + 1] = "luasmtpd";
static int			 sink_pid;
static unsigned long long	 dropped;	/* atomic */

void
log_set_level(enum log_level lvl)
{
	log_min = lvl;
}

int
log_level_from_name(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_enabled(enum log_level lvl)
{
	return lvl >= log_min;
}

static const struct {
	const char	*name;
	int		 code;
} facilities[] = {
	{ "kern", 0 }, { "user", 1 }, { "mail", 2 }, { "daemon", 3 },
	{ "auth", 4 }, { "syslog", 5 }, { "local0", 16 }, { "local1", 17 },
	{ "local2", 18 }, { "local3", 19 }, { "local4", 20 }, { "local5", 21 },
	{ "local6", 22 }, { "local7", 23 },
};

void
log_sink_defaults(struct log_sink_config *c)
{
	memset(c, 0, sizeof(*c));
	c->sink = LOG_SINK_STDERR;
	c->facility = LOG_FACILITY_MAIL;
	snprintf(c->ident, sizeof(c->ident), "luasmtpd");
}

int
log_facility_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcmp(name, facilities[i].name) == 0)
			return facilities[i].code;
	return -1;
}

int
log_sink_from_name(const char *name, enum log_sink *out)
{
	static const char *names[] = { "stderr", "syslog", "journal" };

	for (int i = 0; i < 3; i++)
		if (strcmp(name, names[i]) == 0) {
			*out = (enum log_sink)i;
			return 0;
		}
	return -1;
}

int
log_open_sink(const struct log_sink_config *c)
{
	const char *path;
	size_t len;
	int fd;

	log_close_sink();
	if (c->sink == LOG_SINK_STDERR)
		return 0;
	path = c->socket[0] != '\0' ? c->socket : c->sink == LOG_SINK_SYSLOG ?
	    LOG_SYSLOG_PATH : LOG_JOURNAL_PATH;
	if ((len = strlen(path)) >= sizeof(sink_addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* Not connected: each sendto finds a restarted daemon's socket. */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sink_addr, 0, sizeof(sink_addr));
	sink_addr.sun_family = AF_UNIX;
	memcpy(sink_addr.sun_path, path, len + 1);
	sink_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    len + 1);
	sink_facility = c->facility;
	snprintf(sink_ident, sizeof(sink_ident), "%s", c->ident);
	sink_pid = (int)getpid();
	sink_fd = fd;
	sink = c->sink;
	return 0;
}

void
log_close_sink(void)
{
	sink = LOG_SINK_STDERR;
	if (sink_fd >= 0)
		close(sink_fd);
	sink_fd = -1;
}

unsigned long long
log_dropped(void)
{
	return __atomic_load_n(&dropped, __ATOMIC_RELAXED);
}

static void
write_stderr(const char *line, size_t n)
{
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
}

/*
 * One datagram for the syslog or journal sink: text is the line from the
 * session id on, without its newline.  0, or -1 if the sink refused it.
 */
static int
send_sink(enum log_level lvl, uint64_t sid, const char *text, size_t tlen)
{
	char d[LOG_DGRAM_MAX], stamp[32];
	struct tm tm;
	time_t now;
	ssize_t r;
	int n;

	if (sink == LOG_SINK_SYSLOG) {
		now = time(NULL);
		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		n = snprintf(d, sizeof(d), "<%d>%s %s[%d]: %.*s",
		    sink_facility * 8 + severities[lvl], stamp, sink_ident,
		    sink_pid, (int)tlen, text);
	} else {
		char session[48] = "";

		if (sid != 0)
			snprintf(session, sizeof(session),
			    "LUASMTPD_SESSION=%016llx\n", (unsigned long long)sid);
		n = snprintf(d, sizeof(d), "PRIORITY=%d\nSYSLOG_FACILITY=%d\n"
		    "SYSLOG_IDENTIFIER=%s\nSYSLOG_PID=%d\n%sMESSAGE=%.*s\n",
		    severities[lvl], sink_facility, sink_ident, sink_pid, session,
		    (int)tlen, text);
	}
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(d))
		n = (int)sizeof(d) - 1;
	do {
		r = sendto(sink_fd, d, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL,
		    (struct sockaddr *)&sink_addr, sink_addrlen);
	} while (r < 0 && errno == EINTR);
	return r == n ? 0 : -1;
}

static void
log_vemit(enum log_level lvl, uint64_t sid, const char *fmt, va_list ap,
    const char *suffix, bool fatal_line)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t n, body;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* The date part changes once a second: format it then. */
	if (ts.tv_sec != cached_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		cached_len = strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S",
		    &tm);
		cached_sec = ts.tv_sec;
	}
	memcpy(line, cached, cached_len);
	n = cached_len;
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
	    ts.tv_nsec / 1000000, level_names[lvl]);
	if (r > 0)
		n += (size_t)r;
	body = n;
	r = snprintf(line + n, sizeof(line) - n, "%016llx ",
	    (unsigned long long)sid);
	if (r > 0)
		n += (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n = n + (size_t)r < sizeof(line) ? n + (size_t)r : sizeof(line) - 1;
	if (suffix != NULL && n < sizeof(line) - 1) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", suffix);
		if (r > 0)
			n = n + (size_t)r < sizeof(line) ? n + (size_t)r :
			    sizeof(line) - 1;
	}
	/* Keep the one-line promise even if a caller passed a newline. */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	if (sink == LOG_SINK_STDERR) {
		write_stderr(line, n);
		return;
	}
	if (send_sink(lvl, sid, line + body, n - 1 - body) != 0) {
		__atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
		write_stderr(line, n);
	} else if (fatal_line) {
		/* The reason we exit also goes where a shell or unit sees it. */
		write_stderr(line, n);
	}
}

void
log_sid(enum log_level lvl, uint64_t sid, const char *fmt, ...)
{
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	log_vemit(lvl, sid, fmt, ap, NULL, false);
	va_end(ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, 0, fmt, ap, NULL, true);
	va_end(ap);
	exit(1);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *err = strerror(errno);

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, 0, fmt, ap, err, true);
	va_end(ap);
	exit(1);
}

static char *
escape(char *dst, const char *src, size_t len, size_t max, bool space)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len && i < max; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"' &&
		    (c != ' ' || space)) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (len > max) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

char *
log_excerpt(char *dst, const char *src, size_t len, size_t max)
{
	return escape(dst, src, len, max, true);
}

char *
log_token(char *dst, const char *src, size_t max)
{
	return escape(dst, src, strlen(src), max, false);
}
