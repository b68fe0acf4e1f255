/*
 * smtp_client.h — one delivery attempt of one message to one SMTP or LMTP
 * server, non-blocking on libev.
 *
 * RFC 5321 (SMTP; §4.5.3.2 timeouts, §4.1.1.1 EHLO with the HELO
 * fallback), RFC 2033 (LMTP: LHLO, one reply per accepted recipient after
 * the final dot), RFC 2920 (PIPELINING), RFC 1870 (SIZE), RFC 6152
 * (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3207 (STARTTLS), RFC 4954 (AUTH
 * PLAIN and LOGIN), RFC 3463 (enhanced status codes).
 *
 * The flow: connect (unix:/path, host:port or [ipv6]:port; names resolved
 * with getaddrinfo on a worker thread; every address is tried in turn, at
 * most SMTPC_MAX_ADDRS) -> greeting -> EHLO/LHLO (SMTP falls back to HELO
 * on a 5xx when neither TLS nor AUTH is required) -> STARTTLS when offered
 * (opportunistic) or required -> EHLO again -> AUTH -> MAIL FROM (SIZE=,
 * BODY=8BITMIME, SMTPUTF8 as offered and needed) -> RCPT TO for each
 * recipient -> DATA -> the message -> the final reply (SMTP: one; LMTP: one
 * per accepted recipient) -> QUIT.  With PIPELINING, MAIL, every RCPT and
 * DATA go out in one write (as the output bound allows); without it they
 * go one at a time.  The message is streamed from its spool file in
 * chunks as the socket drains, dot-stuffed (RFC 5321 §4.5.2), and ended
 * with CRLF . CRLF; it is never held in memory.  BDAT is not used.
 *
 * Outcomes, one struct smtpc_result per recipient:
 *   - a server reply to MAIL applies to every recipient; to RCPT, to that
 *     recipient; to DATA or the final dot, to every accepted recipient
 *     (LMTP: the final replies in RCPT order).  Codes, enhanced codes and
 *     texts are the server's.
 *   - a 421 anywhere (the server is closing): 451 with the server's text
 *     for every recipient not yet decided (421 is not ours to repeat).
 *   - connect failures, unknown hosts, timeouts, TLS failures, STARTTLS
 *     missing when required, AUTH failures, a closed connection, protocol
 *     errors (a malformed or unexpected reply): 451 4.x.x with a text that
 *     says what happened, for every recipient not yet decided.
 *   - SMTPUTF8 needed but not offered: 553 5.6.7 for all (permanent);
 *     a message larger than the server's SIZE limit: 552 5.3.4 for all.
 * A message received as 8BITMIME goes to a server without 8BITMIME as it
 * is (as Postfix does); no conversion.
 *
 * TLS: with SMTPC_TLS_MAY, STARTTLS is used when offered; a server that
 * does not offer it (or answers it with an error) gets the message in
 * plaintext.  With SMTPC_TLS_REQUIRE, no STARTTLS means 451 4.7.4 and the
 * message is not sent.  verify checks the certificate against the system
 * CAs (or ca_file) and the name verify_name (default: the host); a failed
 * check or handshake is a 451 4.7.5 in every mode (the connection is gone:
 * XXX: no retry in plaintext after a failed opportunistic handshake).
 *
 * SECURITY: AUTH is only sent under TLS unless allow_plaintext_auth; the
 * password is never logged and is wiped when the client is freed.
 * Every wait has a timer (below); replies are bounded (reply_parse.h);
 * plaintext bytes after the 220 to STARTTLS are a protocol error (no
 * injection into the TLS session, RFC 3207 §4.2 / CVE-2011-0411).
 *
 * Timeouts (seconds), RFC 5321 §4.5.3.2; opts.timeout > 0 replaces all:
 *   connect 30 (per address), greeting 300, EHLO/STARTTLS/AUTH 300,
 *   MAIL 300, RCPT 300, DATA initiation 120, data block 180, final dot
 *   600, QUIT 30.
 *
 * Ownership: the client copies everything it is given.  It calls done()
 * exactly once, always from an event-loop callback (never from inside
 * smtp_client_start*), unless it was cancelled first; after done() the
 * caller must forget the client: it sends QUIT by itself and frees itself.
 * smtp_client_cancel() may be called any time before done(): it stops
 * every watcher, closes the connection and the message file, and frees
 * the client (at the next loop iteration: it may be inside a callback of
 * its own connection); no callback follows.
 */
#ifndef LUASMTPD_SMTP_CLIENT_H
#define LUASMTPD_SMTP_CLIENT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "util/limits.h"

#define SMTPC_MAX_ADDRS			10
/* RFC 5321 §4.5.3.2 (connect is ours: Postfix's smtp_connect_timeout). */
#define SMTPC_TIMEOUT_CONNECT		30.0
#define SMTPC_TIMEOUT_GREETING		300.0	/* §4.5.3.2.1 */
#define SMTPC_TIMEOUT_HELO		300.0	/* as MAIL */
#define SMTPC_TIMEOUT_MAIL		300.0	/* §4.5.3.2.2 */
#define SMTPC_TIMEOUT_RCPT		300.0	/* §4.5.3.2.3 */
#define SMTPC_TIMEOUT_DATA_INIT		120.0	/* §4.5.3.2.4 */
#define SMTPC_TIMEOUT_DATA_BLOCK	180.0	/* §4.5.3.2.5 */
#define SMTPC_TIMEOUT_DOT		600.0	/* §4.5.3.2.6 */
#define SMTPC_TIMEOUT_QUIT		30.0

/* Credentials we accept (RFC 4616 allows 255 octets each). */
#define SMTPC_AUTH_MAX			255

enum smtpc_proto {
	SMTPC_SMTP,
	SMTPC_LMTP,
};

enum smtpc_tls {
	SMTPC_TLS_NONE,		/* never STARTTLS */
	SMTPC_TLS_MAY,		/* STARTTLS when offered ("opportunistic") */
	SMTPC_TLS_REQUIRE,	/* STARTTLS or nothing ("required") */
};

/* Where to connect (smtpc_target_parse). */
struct smtpc_target {
	bool	is_unix;
	char	path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char	host[SMTP_DOMAIN_MAX + 1];	/* without [] for IPv6 */
	char	port[6];
	char	name[SMTP_DOMAIN_MAX + 120];	/* as written, for texts */
};

struct smtpc_opts {
	enum smtpc_proto proto;
	const char	*helo;		/* EHLO/LHLO name; required */
	enum smtpc_tls	 tls;
	bool		 verify;	/* check the server certificate */
	const char	*verify_name;	/* NULL: the target host */
	const char	*ca_file;	/* NULL: the system CAs */
	const char	*auth_user;	/* NULL: no AUTH */
	const char	*auth_pass;
	bool		 allow_plaintext_auth;
	double		 timeout;	/* > 0: every stage; 0: the defaults */
	/*
	 * The RCPT-time check: MAIL and RCPT (no DATA, msg->path unused),
	 * then QUIT; the recipients' results are the RCPT replies.
	 */
	bool		 check_only;
};

struct smtpc_msg {
	const char		*sender;	/* "" for the null sender */
	const char *const	*rcpts;
	size_t			 nrcpts;	/* >= 1 */
	const char		*path;		/* the message: CRLF, unstuffed */
	/* Header fields sent before the file (CRLF; copied), or NULL. */
	const char		*prefix;
	size_t			 prefix_len;
	bool			 eightbit;	/* received as BODY=8BITMIME */
	bool			 smtputf8;	/* needs SMTPUTF8 */
};

struct smtpc_result {
	int	code;				/* 2xx, 4xx, 5xx */
	char	ecode[12];			/* "" if none */
	char	text[SMTP_REPLY_TEXT_MAX + 1];
};

/*
 * The attempt is over.  res[i] is the outcome of msg->rcpts[i]; error is
 * NULL, or what went wrong for the whole attempt (the 4xx texts say it
 * too).  Both are valid only during the call.  Must not cancel the client.
 */
typedef void (*smtpc_done_cb)(void *arg, const struct smtpc_result *res,
    size_t n, const char *error);

/*
 * Parse "unix:/path", "host:port", "[ipv6]:port", or a bare host or IPv6
 * address when default_port is given (NULL: the port is required).
 * Returns 0, or -1 with a reason in err.
 */
int	smtpc_target_parse(const char *spec, const char *default_port,
	    struct smtpc_target *, char *err, size_t errlen);

struct smtp_client;

/*
 * Start one attempt.  sid is the session id for log lines.  Never fails
 * at once: every failure (including a message file that cannot be
 * opened) reaches done() from the loop.
 */
struct smtp_client *smtp_client_start(struct ev_loop *, uint64_t sid,
	    const struct smtpc_target *, const struct smtpc_opts *,
	    const struct smtpc_msg *, smtpc_done_cb done, void *arg);

/*
 * The same over a stream that is ALREADY CONNECTED to a server, e.g. one
 * end of a socketpair(2) whose other end is the stdin and stdout of a
 * child such as `dovecot lmtp` (an LMTP server on stdio):
 *
 *	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
 *	fork(): the child dup2()s sv[1] to 0 and 1 and execs the server;
 *	smtp_client_start_fd(loop, sid, sv[0], "pipe:dovecot", &opts, ...);
 *
 * The protocol starts at the greeting.  The client takes ownership of fd
 * (it makes it non-blocking and closes it when done, cancelled or freed);
 * name says what the peer is in texts and logs.  STARTTLS is not
 * attempted unless opts->tls says so.  The caller still owns the child
 * process (reaping it, killing it on cancel).  A child that dies makes
 * writes fail with EPIPE: the process must ignore SIGPIPE (main.c does).
 */
struct smtp_client *smtp_client_start_fd(struct ev_loop *, uint64_t sid,
	    int fd, const char *name, const struct smtpc_opts *,
	    const struct smtpc_msg *, smtpc_done_cb done, void *arg);

/* Abandon an attempt before done(): see the ownership note above. */
void	smtp_client_cancel(struct smtp_client *);

/* Clients alive (started and not yet freed): for tests and shutdown. */
unsigned smtp_client_count(void);

#endif
