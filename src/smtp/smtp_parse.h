/*
 * smtp_parse.h — pure parsing of SMTP command lines (no I/O, no state).
 *
 * RFC 5321 §4.1.1 (commands), §4.1.2 (path and mailbox syntax), §4.1.3
 * (address literals); RFC 6531 §3.3 (UTF-8 in mailboxes); RFC 1869/5321
 * §4.1.2 (ESMTP parameters); RFC 1870 SIZE; RFC 6152 BODY; RFC 3030 BDAT.
 *
 * Every function here takes bytes and a length and fills caller-owned
 * structures; nothing allocates.  Errors come back as a reply triple
 * (struct smtp_err) ready to send.
 */
#ifndef LUASMTPD_SMTP_PARSE_H
#define LUASMTPD_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_LHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_FORBIDDEN,	/* GET, POST, CONNECT, "Header:" — not SMTP */
};

/* A reply to send for a parse failure: "501 5.5.4 text". */
struct smtp_err {
	int		 code;
	const char	*ecode;
	const char	*text;
};

struct smtp_cmd {
	enum smtp_verb	 verb;
	const char	*name;		/* canonical verb name, "" if unknown */
	const char	*arg;		/* after the verb and its separator */
	size_t		 arglen;
};

/*
 * Split one command line (CRLF already removed) into verb and argument.
 * The line may contain any bytes; a NUL makes the verb unknown.
 */
void	smtp_parse_command(const char *line, size_t len, struct smtp_cmd *);

/* A parsed RFC 5321 path. */
struct smtp_path {
	char	mailbox[SMTP_PATH_MAX + 1];	/* local@domain, "" when null */
	size_t	local_len;			/* bytes of local part in mailbox */
	bool	null;				/* "<>" */
	bool	postmaster;			/* "<Postmaster>" without domain */
	bool	utf8;				/* has non-ASCII (RFC 6531) */
};

struct smtp_param {
	char		 name[SMTP_PARAM_NAME_MAX + 1];	/* upper-cased */
	const char	*value;				/* NULL: no "=" */
	size_t		 vlen;
};

struct smtp_params {
	struct smtp_param	p[SMTP_PARAMS_MAX];
	size_t			n;
	const char		*raw;	/* the parameter text as sent */
	size_t			rawlen;
};

enum smtp_path_kind {
	SMTP_PATH_REVERSE,	/* MAIL FROM: may be <> */
	SMTP_PATH_FORWARD,	/* RCPT TO: may be <Postmaster> */
};

/*
 * Parse the argument of MAIL ("FROM:<path> params") or RCPT ("TO:<path>
 * params").  Whitespace after the colon is tolerated, as most servers do.
 * The parameters point into arg.  Returns 0, or -1 with *err set.
 */
int	smtp_parse_path_arg(const char *arg, size_t len, enum smtp_path_kind,
	    struct smtp_path *, struct smtp_params *, struct smtp_err *);

/*
 * Validate a mailbox (no angle brackets), as used by the rcpt hook to
 * rewrite a recipient.  Returns 0 or -1.
 */
int	smtp_parse_mailbox(const char *s, size_t len, struct smtp_path *);

/* Validate an EHLO/HELO argument: a domain or an address literal. */
int	smtp_parse_helo(const char *arg, size_t len, struct smtp_err *);

enum smtp_body {
	SMTP_BODY_UNSPEC = 0,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

/* What the MAIL parameters we support mean, once checked. */
struct smtp_mail_opts {
	bool		has_size;
	uint64_t	size;
	enum smtp_body	body;
	bool		smtputf8;
	bool		has_auth;
	char		auth[SMTP_PATH_MAX + 1];	/* xtext-decoded AUTH= */
};

/* Which extensions the session advertised (unknown ones get 555). */
struct smtp_ext {
	bool	size;
	bool	eightbitmime;
	bool	smtputf8;
	bool	auth;
};

/*
 * Interpret MAIL parameters: SIZE=, BODY=, SMTPUTF8, AUTH=.  Unknown or
 * unadvertised ones, duplicates and bad values fail with 555 5.5.4 or 501.
 */
int	smtp_parse_mail_params(const struct smtp_params *,
	    const struct smtp_ext *, struct smtp_mail_opts *, struct smtp_err *);

/* RFC 3030: "BDAT" SP chunk-size [ SP end-marker ]. */
int	smtp_parse_bdat(const char *arg, size_t len, uint64_t *size,
	    bool *last, struct smtp_err *);

/* true if s[0..len) is well-formed UTF-8 (RFC 3629, no overlongs). */
bool	smtp_utf8_valid(const unsigned char *s, size_t len);

#endif
