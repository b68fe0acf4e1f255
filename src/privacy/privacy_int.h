/*
 * privacy_int.h — small helpers shared by the files of src/privacy (not an API).
 */
#ifndef LUASMTPD_PRIVACY_INT_H
#define LUASMTPD_PRIVACY_INT_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/err.h>

/* printf into err[errlen] when the caller gave one. */
static inline void privacy_seterr(char *err, size_t errlen,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline void
privacy_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * The most recent OpenSSL error of this thread as text, and the thread's
 * error queue emptied (workers reuse their thread: a stale error must not
 * show up in the next job's message).
 */
static inline const char *
privacy_ossl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "no OpenSSL error recorded");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/*
 * read(2) until n bytes or the end of the file, retrying on EINTR.
 * Returns the count (< n only at the end) or -1/errno.
 */
static inline ssize_t
privacy_read_full(int fd, void *p, size_t n)
{
	unsigned char *c = p;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, c + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

#endif
