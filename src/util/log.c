/*
 * log.c — stderr logger: one write(2) per line, bounded line length.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define LOG_LINE_MAX	4096

static enum log_level	log_min = LOG_LVL_INFO;
/* The formatted date of the current second, per thread. */
static _Thread_local time_t	cached_sec = -1;
static _Thread_local char	cached[32];
static _Thread_local size_t	cached_len;
static const char	*level_names[] = { "debug", "info", "warn", "error" };

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

static void
log_vemit(enum log_level lvl, uint64_t sid, const char *fmt, va_list ap,
    const char *suffix)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t n;
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
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %016llx ",
	    ts.tv_nsec / 1000000, level_names[lvl], (unsigned long long)sid);
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
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
}

void
log_sid(enum log_level lvl, uint64_t sid, const char *fmt, ...)
{
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	log_vemit(lvl, sid, fmt, ap, NULL);
	va_end(ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, 0, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *err = strerror(errno);

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, 0, fmt, ap, err);
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
