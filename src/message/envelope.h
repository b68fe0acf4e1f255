/*
 * envelope.h — the queue envelope: who a queued message is from and who
 * still needs it, in a versioned text format no client byte can break.
 *
 * RFC 5321 §4.1.1.2/§4.1.1.3 (the envelope), RFC 3461 (DSN: ENVID, RET,
 * NOTIFY, ORCPT; its xtext is how every field is written here).
 *
 * Format (one record per line, fields separated by one space, every
 * variable field xtext-encoded: bytes outside "!".."~", "+" and "=" become
 * "+XX", so a field never holds a space, a line end or anything a parser
 * could take for structure — a quoted local part, CR LF or ">" included):
 *
 *   luasmtpd-envelope 1
 *   id <message id>
 *   created <unix seconds>
 *   from <sender>                  ("<>" is written as the empty field "+")
 *   mail <MAIL parameters, raw>    (optional)
 *   envid <ENVID>                  (optional, RFC 3461)
 *   ret FULL|HDRS                  (optional)
 *   smtputf8 0|1
 *   headers <fields hooks added, CRLF lines>   (optional)
 *   rcpt <address> <original> <orcpt> <notify> <status> <attempts> <next>
 *        (orcpt/notify "+" when absent; status 0 = to do, else the last
 *         reply code; next = unix seconds of the next attempt)
 *   end
 *
 * The "end" line makes a cut-off envelope detectable.  Ownership: an
 * envelope owns all its strings; envelope_free() releases them.
 */
#ifndef LUASMTPD_ENVELOPE_H
#define LUASMTPD_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/buf.h"

#define ENVELOPE_VERSION	1
/* A bound for a whole envelope file (recipients × fields). */
#define ENVELOPE_MAX		(8u * 1024 * 1024)
#define ENVELOPE_RCPTS_MAX	100000

struct env_rcpt {
	char		*address;	/* after any rewrite: where it goes */
	char		*original;	/* as the client sent it */
	char		*orcpt;		/* RFC 3461 ORCPT, or NULL */
	char		*notify;	/* RFC 3461 NOTIFY, or NULL */
	int		 status;	/* 0: to do; else the last reply code */
	unsigned	 attempts;
	int64_t		 next;		/* next attempt, unix seconds */
};

struct envelope {
	char		*id;
	int64_t		 created;
	char		*sender;	/* "" for the null sender */
	char		*mail_params;	/* raw, or NULL */
	char		*envid;		/* RFC 3461, or NULL */
	char		*ret;		/* "FULL", "HDRS" or NULL */
	bool		 smtputf8;
	char		*headers;	/* added fields sent before the data, or NULL */
	struct env_rcpt	*rcpts;
	size_t		 nrcpts;
	size_t		 caprcpts;
};

/* Append one recipient (strings are copied; NULL allowed for optionals). */
void	envelope_add_rcpt(struct envelope *, const char *address,
	    const char *original, const char *orcpt, const char *notify);
/* Serialize into b (bounded by the buf's max).  0, or -1 if too big. */
int	envelope_write(const struct envelope *, struct buf *b);
/* Parse; 0, or -1 with a reason in err.  e must be zeroed. */
int	envelope_parse(const char *data, size_t len, struct envelope *e,
	    char *err, size_t errlen);
void	envelope_free(struct envelope *);

/* xtext (RFC 3461 §4) of src into b; decode returns NULL on bad input. */
int	xtext_append(struct buf *b, const char *src);
char	*xtext_decode(const char *src, size_t len);

#endif
