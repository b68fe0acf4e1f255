/*
 * reply_parse.h — pure parsing of SMTP and LMTP server replies from a byte
 * stream (no I/O, no allocation, no state outside the parser struct).
 *
 * RFC 5321 §4.2 (reply lines, multi-line replies), §4.2.1 (codes),
 * §4.5.3.1.5 (reply line length), §4.1.1.1 (EHLO keywords); RFC 2034 and
 * RFC 3463 (enhanced status codes); RFC 2033 (LMTP, LHLO); RFC 2920
 * PIPELINING, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8,
 * RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 3030 CHUNKING.
 *
 * The caller feeds whatever bytes arrived; the parser returns at the end of
 * each complete reply and says how many bytes it took, so the rest belongs
 * to the next reply (pipelining).  It is meant to be fed hostile input (and
 * fuzzed): every line and every reply is bounded, and anything that is not
 * a well-formed reply is a protocol error after which the stream is
 * unusable.
 *
 * SECURITY: bounds.  A line may be REPLY_LINE_MAX octets including its line
 * end (RFC 5321 §4.5.3.1.5 says 512; real servers send longer texts, so we
 * allow four times that, as Postfix's line_length_limit does); a reply may
 * have REPLY_LINES_MAX lines; codes are 200-599 (a 1xx, a 6xx or anything
 * that is not three digits is an error).  The kept text is cut at
 * REPLY_TEXT_MAX octets, and control bytes in it become '?', so it can be
 * logged and repeated to our own client after escaping.
 */
#ifndef LUASMTPD_REPLY_PARSE_H
#define LUASMTPD_REPLY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One reply line, including CRLF (or a bare LF, which is tolerated). */
#define REPLY_LINE_MAX		2048
/* Lines in one reply (an EHLO reply has one per extension). */
#define REPLY_LINES_MAX		100
/* Text kept from a reply: its lines joined by one space. */
#define REPLY_TEXT_MAX		512
/* "x.yyy.zzz" and a NUL (RFC 3463 §2: at most 3 digits per part). */
#define REPLY_ECODE_MAX		12

/* Results of reply_parse(). */
#define REPLY_AGAIN		0	/* every byte taken; reply incomplete */
#define REPLY_DONE		1	/* a complete reply is in p->r */
#define REPLY_ERROR		(-1)	/* protocol error; p->error says why */

/* Extensions an EHLO or LHLO reply advertised (lines after the first). */
struct reply_caps {
	bool		pipelining;
	bool		size;
	uint64_t	size_max;	/* 0: SIZE without a (valid) limit */
	bool		eightbitmime;
	bool		smtputf8;
	bool		starttls;
	bool		enhancedstatuscodes;
	bool		chunking;
	bool		auth;		/* AUTH (or AUTH=) with any mechanism */
	bool		auth_plain;
	bool		auth_login;
};

struct reply {
	int		code;		/* 200-599 */
	char		ecode[REPLY_ECODE_MAX];	/* "" unless the first line had
						   one of the code's class */
	char		text[REPLY_TEXT_MAX + 1];	/* NUL-terminated */
	size_t		textlen;
	bool		truncated;	/* text was cut at REPLY_TEXT_MAX */
	size_t		nlines;
	struct reply_caps caps;		/* filled only when parsing caps */
};

struct reply_parser {
	bool		want_caps;	/* read lines 2..n as EHLO keywords */
	size_t		len;		/* bytes of the current line so far */
	bool		done;		/* p->r complete; reset before reuse */
	bool		failed;
	struct reply	r;
	char		error[96];
	char		line[REPLY_LINE_MAX];
};

/*
 * Prepare p for the next reply; with want_caps the lines after the first
 * are read as EHLO/LHLO extension keywords into p->r.caps.
 */
void	reply_parser_reset(struct reply_parser *p, bool want_caps);

/*
 * Feed len bytes.  Returns REPLY_DONE when a reply is complete: *used says
 * how many bytes of buf it took (the rest starts the next reply) and p->r
 * holds it until the next reply_parser_reset().  Returns REPLY_AGAIN when
 * all len bytes were taken and the reply is not complete yet, and
 * REPLY_ERROR on a protocol error (p->error); after an error or a
 * completed reply, feeding again without a reset returns REPLY_ERROR.
 */
int	reply_parse(struct reply_parser *p, const char *buf, size_t len,
	    size_t *used);

#endif
