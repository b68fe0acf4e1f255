/*
 * getline.h — the one bounded line reader.
 *
 * RFC 5321 §2.3.8 (lines end in CRLF), §4.5.3.1.4 and §4.5.3.1.6 (line
 * limits), RFC 4954 §4 (AUTH lines of up to 12288 octets).
 *
 * getline_next() finds the next line in an input buffer without copying
 * it: the line is a view into the buffer, valid until the buffer is next
 * consumed, reset or appended to.  The bound is applied in one place, with
 * or without a line end (OpenSMTPD io_getline, Redis inline-request cap):
 * a line is too long when no LF occurs within its first `max` octets, so a
 * line of exactly `max` octets including its CRLF passes and one more
 * octet does not, whether the LF has arrived yet or not.
 *
 * SECURITY: callers must not copy a line into a fixed buffer sized from
 * anything but `max`; the view never extends past `max` octets.
 */
#ifndef LUASMTPD_GETLINE_H
#define LUASMTPD_GETLINE_H

#include <stddef.h>

#include "util/buf.h"

enum getline_status {
	GETLINE_AGAIN,		/* no complete line yet, and not too long */
	GETLINE_OK,		/* *line filled */
	GETLINE_TOO_LONG,	/* no LF within max octets */
};

enum line_end {
	LINE_END_CRLF,
	LINE_END_LF,		/* a bare LF (the caller decides) */
};

struct line {
	const char	*p;	/* into the buffer; not NUL-terminated */
	size_t		 len;	/* without the CRLF or LF */
	enum line_end	 end;
	size_t		 span;	/* octets to consume, terminator included */
};

/* max: the longest line accepted, in octets including CRLF (> 1). */
enum getline_status getline_next(const struct buf *, size_t max, struct line *);

#endif
