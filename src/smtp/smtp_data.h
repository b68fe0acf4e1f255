/*
 * smtp_data.h — the DATA/BDAT content decoder (pure; no I/O).
 *
 * RFC 5321 §4.1.1.4 (end of data is CRLF "." CRLF), §4.5.2 (dot
 * transparency), §4.5.3.1.6 (text line 1000 octets with CRLF), §6.3 (hop
 * count); RFC 3030 (BDAT: length-delimited, no dot handling).
 *
 * SECURITY (SMTP smuggling, CVE-2023-51764/51765/51766): in the default
 * reject mode a bare LF or bare CR never ends a line, so none of
 * <LF>.<LF>, <LF>.<CR><LF>, <CR><LF>.<LF>, <CR>.<CR> ... can end the
 * message: only <CR><LF>.<CR><LF> does, and the message that contained the
 * bare newline is refused after it.  In normalize mode a bare LF is stored
 * as CRLF, and the end of data still requires CRLF "." CRLF with a real
 * CRLF before the dot.
 *
 * Errors are sticky: decoding goes on to the end of data so that the
 * reply comes after the final dot, and nothing after a bogus terminator is
 * taken as a command.
 */
#ifndef LUASMTPD_SMTP_DATA_H
#define LUASMTPD_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SMTP_DATA_ERR_BARE_LF		0x01
#define SMTP_DATA_ERR_BARE_CR		0x02
#define SMTP_DATA_ERR_LINE_TOO_LONG	0x04

enum smtp_data_result {
	SMTP_DATA_MORE,		/* all input consumed (or output full) */
	SMTP_DATA_END,		/* CRLF.CRLF consumed; the rest is not data */
};

struct smtp_data {
	int		state;
	bool		bdat;		/* RFC 3030 chunk: no dots, no end */
	enum bare_lf_mode mode;
	size_t		line_max;	/* octets per line including CRLF */
	size_t		line_len;	/* octets of the current line so far */
	bool		eod_allowed;	/* a "." line here may end the data */
	unsigned	errors;		/* SMTP_DATA_ERR_* (sticky) */
	uint64_t	out_bytes;	/* decoded bytes produced */
	/* Header section scan for the hop count. */
	bool		in_headers;
	unsigned	hdr_match;	/* matched prefix of "received:" */
	unsigned	received;	/* Received: headers seen */
};

void	smtp_data_init(struct smtp_data *, bool bdat, enum bare_lf_mode,
	    size_t line_max);

/*
 * Decode input into out.  Consumes bytes from in until the input is used
 * up, the output is full (outcap must be at least 3: "." CRLF), or
 * the end of data is reached.  *consumed and *produced report progress.
 * The terminating CRLF.CRLF is consumed; its CRLF before the dot belongs to
 * the last line and is produced.
 */
enum smtp_data_result smtp_data_decode(struct smtp_data *, const char *in,
	    size_t inlen, size_t *consumed, char *out, size_t outcap,
	    size_t *produced);

/*
 * End of a BDAT LAST message: a pending CR becomes a bare-CR error; if the
 * content did not end with CRLF, writes "\r\n" to out and returns 2 (the
 * caller appends it), else returns 0.
 */
size_t	smtp_data_finish_bdat(struct smtp_data *, char out[2]);

#endif
