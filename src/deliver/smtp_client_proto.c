/*
 * smtp_client_proto.c — the client's protocol state machine: greeting,
 * EHLO/LHLO (HELO fallback), STARTTLS, AUTH, the envelope (pipelined or
 * one command at a time), the message with dot-stuffing, the final
 * replies, QUIT.  See smtp_client.h for the flow and the outcome mapping.
 *
 * RFC 5321 §4.1.1 and §4.5.2 (transparency), §3.3 (the order of replies);
 * RFC 2920 §3.1 (a pipelined DATA may get 354 although no recipient was
 * accepted: the client then sends just "."); RFC 2033 §4.2 (LMTP replies
 * after the dot); RFC 3207 §4.2 (after STARTTLS nothing of the plaintext
 * session is kept: capabilities are asked again); RFC 4954 and RFC 4616
 * (AUTH PLAIN), the LOGIN mechanism (draft-murchison-sasl-login).
 *
 * Everything here runs inside a callback of the client (a reply read, a
 * drain, a handshake end).  After any call that may end the attempt
 * (smtpc_fail, smtpc_quit) the caller returns at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "deliver/smtp_client_int.h"
#include "tls/tls.h"
#include "util/log.h"

/* Message bytes read per step, and the output kept queued at most. */
#define BODY_CHUNK		8192
#define BODY_HIGH_WATER		(16 * 1024)

static void	after_ehlo(struct smtp_client *);
static void	env_pump(struct smtp_client *);
static void	body_pump(struct smtp_client *);

double
smtpc_stage_timeout(const struct smtp_client *cl)
{
	switch (cl->stage) {
	case ST_GREETING:	return SMTPC_TIMEOUT_GREETING;
	case ST_ENVELOPE:
		if (cl->env_answered == 0)
			return SMTPC_TIMEOUT_MAIL;
		return cl->env_answered <= cl->nrcpts ? SMTPC_TIMEOUT_RCPT :
		    SMTPC_TIMEOUT_DATA_INIT;
	case ST_BODY:		return SMTPC_TIMEOUT_DATA_BLOCK;
	case ST_DOT:
	case ST_DOT_EMPTY:	return SMTPC_TIMEOUT_DOT;
	case ST_QUIT:		return SMTPC_TIMEOUT_QUIT;
	default:		return SMTPC_TIMEOUT_HELO;
	}
}

/* Enter a stage that waits for a reply, under its timeout. */
static void
expect(struct smtp_client *cl, enum smtpc_stage st)
{
	cl->stage = st;
	smtpc_arm(cl, smtpc_stage_timeout(cl));
}

/* Queue and flush one command; false if the attempt ended. */
static bool
command(struct smtp_client *cl, enum smtpc_stage next, const char *fmt,
    const char *arg)
{
	if (smtpc_send(cl, fmt, arg) != 0) {
		smtpc_fail(cl, false, 451, "4.3.0", "%s: output bound reached "
		    "(internal error)", cl->t.name);
		return false;
	}
	if (smtpc_flush(cl) == CONN_ERR)
		return false;
	expect(cl, next);
	return true;
}

/* "NAME said: 554 5.7.1 text (in reply to X)" for failure texts. */
static void
said(char *out, size_t outlen, const struct smtp_client *cl,
    const struct reply *r, const char *what)
{
	snprintf(out, outlen, "%s said: %d%s%s %s (in reply to %s)", cl->t.name,
	    r->code, r->ecode[0] ? " " : "", r->ecode, r->text, what);
}

/* The reply's enhanced code as a class-4 one, or dflt. */
static void
temp_ecode(char *out, size_t outlen, const struct reply *r, const char *dflt)
{
	if (r->ecode[0] != '\0')
		snprintf(out, outlen, "4%s", r->ecode + 1);
	else
		snprintf(out, outlen, "%s", dflt);
}

/*
 * The server refused something the whole attempt depends on (greeting,
 * EHLO, STARTTLS when required, AUTH), or said 421: 451 for everyone not
 * yet decided.  After a 421 the server closes: no QUIT.
 */
static void
fail_reply(struct smtp_client *cl, const struct reply *r, const char *what,
    const char *dflt_ecode)
{
	char text[SMTP_REPLY_TEXT_MAX + 1], ecode[REPLY_ECODE_MAX + 1];

	said(text, sizeof(text), cl, r, what);
	temp_ecode(ecode, sizeof(ecode), r, dflt_ecode);
	smtpc_fail(cl, r->code != 421, 451, ecode, "%s", text);
}

static void
protocol_error(struct smtp_client *cl, const struct reply *r)
{
	char text[SMTP_REPLY_TEXT_MAX + 1];

	said(text, sizeof(text), cl, r, smtpc_stage_name(cl));
	smtpc_fail(cl, false, 451, "4.5.0", "protocol error: unexpected "
	    "reply: %s", text);
}

static int
cls(const struct reply *r)
{
	return r->code / 100;
}

/* ---- greeting, EHLO, STARTTLS ---- */

void
smtpc_proto_connected(struct smtp_client *cl)
{
	expect(cl, ST_GREETING);
}

static void
send_ehlo(struct smtp_client *cl)
{
	memset(&cl->caps, 0, sizeof(cl->caps));
	command(cl, ST_EHLO, cl->proto == SMTPC_LMTP ? "LHLO %s" : "EHLO %s",
	    cl->helo);
}

static void
tls_done(void *owner, bool ok)
{
	struct smtp_client *cl = owner;
	struct tls_info info;

	if (cl->stage != ST_TLS)
		return;
	if (!ok) {
		smtpc_fail(cl, false, 451, "4.7.5", "%s: TLS handshake failed: "
		    "%s", cl->t.name, cl->conn.error[0] ? cl->conn.error :
		    "unknown error");
		return;
	}
	cl->tls_on = true;
	tls_conn_info(&cl->conn, &info);
	log_info(cl->sid, "smtpc tls established target=%s version=%s "
	    "cipher=%s verify=%s", cl->t.name, info.version, info.cipher,
	    cl->verify ? "yes" : "no");
	/* RFC 3207 §4.2: forget what the plaintext session said. */
	reply_parser_reset(&cl->rp, true);
	send_ehlo(cl);
}

static void
start_tls(struct smtp_client *cl)
{
	const char *host = cl->t.host[0] ? cl->t.host : NULL;
	const char *vname = cl->verify_name != NULL ? cl->verify_name : host;
	const char *sni = cl->verify_name;
	unsigned char tmp[sizeof(struct in6_addr)];
	char err[200];

	/* SNI carries a name, never an address (RFC 6066 §3). */
	if (sni == NULL && host != NULL && inet_pton(AF_INET, host, tmp) != 1 &&
	    inet_pton(AF_INET6, host, tmp) != 1)
		sni = host;
	cl->tls_tried = true;
	expect(cl, ST_TLS);
	if (tls_conn_connect(&cl->conn, sni, cl->verify, vname, cl->ca_file,
	    tls_done, err, sizeof(err)) != 0)
		smtpc_fail(cl, false, 451, "4.7.5", "%s: cannot start TLS: %s",
		    cl->t.name, err);
}

static void
starttls_reply(struct smtp_client *cl, const struct reply *r, bool more)
{
	char ex[LOG_EXCERPT_BUFSZ(100)];

	if (cls(r) == 2) {
		/* SECURITY: bytes after the 220 would be read as if they
		 * came through TLS (RFC 3207 §4.2, CVE-2011-0411). */
		if (more) {
			smtpc_fail(cl, false, 451, "4.5.0", "%s: protocol "
			    "error: data after the 220 to STARTTLS",
			    cl->t.name);
			return;
		}
		start_tls(cl);
		return;
	}
	if (cl->tls == SMTPC_TLS_REQUIRE || r->code == 421 || cls(r) == 3) {
		fail_reply(cl, r, "STARTTLS", "4.7.4");
		return;
	}
	/* Opportunistic: go on in plaintext. */
	log_info(cl->sid, "smtpc starttls-refused target=%s code=%d text=\"%s\"",
	    cl->t.name, r->code, log_excerpt(ex, r->text, r->textlen, 100));
	cl->tls_tried = true;
	after_ehlo(cl);
}

static void
ehlo_reply(struct smtp_client *cl, const struct reply *r)
{
	if (cls(r) == 2) {
		if (cl->stage == ST_EHLO)
			cl->caps = r->caps;
		else
			memset(&cl->caps, 0, sizeof(cl->caps));	/* HELO */
		after_ehlo(cl);
		return;
	}
	/* RFC 5321 §3.2: a server that does not know EHLO gets HELO. */
	if (cls(r) == 5 && cl->proto == SMTPC_SMTP && cl->stage == ST_EHLO &&
	    cl->tls != SMTPC_TLS_REQUIRE && cl->auth_user == NULL &&
	    !cl->tls_on) {
		command(cl, ST_HELO, "HELO %s", cl->helo);
		return;
	}
	if (cls(r) == 3) {
		protocol_error(cl, r);
		return;
	}
	fail_reply(cl, r, smtpc_stage_name(cl), "4.4.2");
}

/* ---- AUTH ---- */

/* Base64 of a credential string; wiped by the caller. */
static void
b64(char *out, const void *in, size_t len)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void
start_auth(struct smtp_client *cl)
{
	/* \0user\0pass: RFC 4616 §2. */
	char raw[2 * SMTPC_AUTH_MAX + 3], enc[4 * ((2 * SMTPC_AUTH_MAX + 5) / 3) + 4];
	size_t ul = strlen(cl->auth_user), pl = strlen(cl->auth_pass);

	if (!cl->tls_on && !cl->allow_plaintext_auth) {
		smtpc_fail(cl, true, 451, "4.7.0", "%s: refusing to send "
		    "credentials without TLS (allow_plaintext_auth is off)",
		    cl->t.name);
		return;
	}
	if (!cl->caps.auth_plain && !cl->caps.auth_login) {
		smtpc_fail(cl, true, 451, "4.7.0", "%s: the server offers no "
		    "AUTH PLAIN or LOGIN", cl->t.name);
		return;
	}
	if (ul > SMTPC_AUTH_MAX || pl > SMTPC_AUTH_MAX) {
		smtpc_fail(cl, false, 451, "4.7.0", "%s: credentials too long",
		    cl->t.name);
		return;
	}
	if (!cl->caps.auth_plain) {
		command(cl, ST_AUTH_LOGIN, "AUTH LOGIN%s", "");
		return;
	}
	raw[0] = '\0';
	memcpy(raw + 1, cl->auth_user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, cl->auth_pass, pl);
	b64(enc, raw, ul + pl + 2);
	command(cl, ST_AUTH_PLAIN, "AUTH PLAIN %s", enc);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(enc, sizeof(enc));
}

/* Send one base64 credential line (user or password, or PLAIN's). */
static void
send_secret(struct smtp_client *cl, enum smtpc_stage next, const char *what)
{
	char raw[2 * SMTPC_AUTH_MAX + 3], enc[4 * ((2 * SMTPC_AUTH_MAX + 5) / 3) + 4];
	size_t len;

	if (what == NULL) {	/* PLAIN's response again */
		size_t ul = strlen(cl->auth_user), pl = strlen(cl->auth_pass);

		raw[0] = '\0';
		memcpy(raw + 1, cl->auth_user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, cl->auth_pass, pl);
		len = ul + pl + 2;
	} else {
		len = strlen(what);
		memcpy(raw, what, len);
	}
	b64(enc, raw, len);
	command(cl, next, "%s", enc);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(enc, sizeof(enc));
}

static void
auth_reply(struct smtp_client *cl, const struct reply *r)
{
	char ex[LOG_EXCERPT_BUFSZ(200)], ux[LOG_EXCERPT_BUFSZ(64)];

	if (r->code == 235 && (cl->stage == ST_AUTH_PLAIN ||
	    cl->stage == ST_AUTH_PLAIN2 || cl->stage == ST_AUTH_PASS)) {
		cl->authed = true;
		log_info(cl->sid, "smtpc auth ok target=%s user=%s mech=%s",
		    cl->t.name, log_excerpt(ux, cl->auth_user,
		    strlen(cl->auth_user), 64), cl->caps.auth_plain ? "PLAIN" :
		    "LOGIN");
		after_ehlo(cl);
		return;
	}
	if (r->code == 334) {
		switch (cl->stage) {
		case ST_AUTH_PLAIN:
			send_secret(cl, ST_AUTH_PLAIN2, NULL);
			return;
		case ST_AUTH_LOGIN:
			send_secret(cl, ST_AUTH_USER, cl->auth_user);
			return;
		case ST_AUTH_USER:
			send_secret(cl, ST_AUTH_PASS, cl->auth_pass);
			return;
		default:
			break;
		}
	}
	/* SECURITY: the user name and the server's text; no password. */
	log_warn(cl->sid, "smtpc auth failed target=%s user=%s code=%d "
	    "text=\"%s\"", cl->t.name, log_excerpt(ux, cl->auth_user,
	    strlen(cl->auth_user), 64), r->code,
	    log_excerpt(ex, r->text, r->textlen, 200));
	if (cls(r) == 2 || cls(r) == 3) {
		/* Don't answer a 3xx we did not expect: it could take our
		 * next line as a credential. */
		protocol_error(cl, r);
		return;
	}
	fail_reply(cl, r, "AUTH", "4.7.0");
}

/* ---- after EHLO: STARTTLS, AUTH, then the envelope ---- */

static void
start_envelope(struct smtp_client *cl)
{
	if (cl->need_utf8 && !cl->caps.smtputf8) {
		/* RFC 6531 §3.2: no downgrade; permanent. */
		smtpc_fail(cl, true, 553, "5.6.7", "%s: the message needs "
		    "SMTPUTF8, which the server does not offer", cl->t.name);
		return;
	}
	if (cl->caps.size && cl->caps.size_max > 0 &&
	    cl->size > cl->caps.size_max) {
		smtpc_fail(cl, true, 552, "5.3.4", "%s: message size %llu "
		    "exceeds the server's limit of %llu", cl->t.name,
		    (unsigned long long)cl->size,
		    (unsigned long long)cl->caps.size_max);
		return;
	}
	cl->env_total = 1 + cl->nrcpts + (cl->check_only ? 0 : 1);
	cl->env_sent = cl->env_answered = 0;
	cl->stage = ST_ENVELOPE;
	env_pump(cl);
}

static void
after_ehlo(struct smtp_client *cl)
{
	if (!cl->tls_on && !cl->tls_tried && cl->tls != SMTPC_TLS_NONE) {
		if (cl->caps.starttls) {
			command(cl, ST_STARTTLS, "STARTTLS%s", "");
			return;
		}
		if (cl->tls == SMTPC_TLS_REQUIRE) {
			smtpc_fail(cl, true, 451, "4.7.4", "%s: STARTTLS is "
			    "required but not offered", cl->t.name);
			return;
		}
	}
	if (cl->auth_user != NULL && !cl->authed) {
		start_auth(cl);
		return;
	}
	start_envelope(cl);
}

/* ---- the envelope ---- */

/* Queue envelope command k (0 MAIL, 1..n RCPT, n+1 DATA). */
static int
env_command(struct smtp_client *cl, size_t k)
{
	char params[80];

	if (k == 0) {
		params[0] = '\0';
		if (cl->caps.size && !cl->check_only)
			snprintf(params, sizeof(params), " SIZE=%llu",
			    (unsigned long long)cl->size);
		if (cl->eightbit && cl->caps.eightbitmime)
			strcat(params, " BODY=8BITMIME");
		if (cl->need_utf8)
			strcat(params, " SMTPUTF8");
		return smtpc_send(cl, "MAIL FROM:<%s>%s", cl->sender, params);
	}
	if (k <= cl->nrcpts)
		return smtpc_send(cl, "RCPT TO:<%s>", cl->rcpts[k - 1]);
	return smtpc_send(cl, "DATA");
}

/*
 * Send what may be sent: with PIPELINING everything (as the output bound
 * allows; the rest after a drain), else one command per reply.
 */
static void
env_pump(struct smtp_client *cl)
{
	bool pipelining = cl->caps.pipelining;
	bool sent = false;

	for (;;) {
		while (cl->env_sent < cl->env_total) {
			if (!pipelining && cl->env_sent > cl->env_answered)
				break;
			/* Without pipelining, no DATA for nobody. */
			if (!pipelining && cl->env_sent == cl->nrcpts + 1 &&
			    cl->naccepted == 0) {
				smtpc_quit(cl);
				return;
			}
			if (env_command(cl, cl->env_sent) != 0)
				break;	/* output full: go on after a drain */
			cl->env_sent++;
			sent = true;
		}
		if (!sent)
			return;
		sent = false;
		if (smtpc_flush(cl) != CONN_OK || cl->env_sent == cl->env_total ||
		    (!pipelining && cl->env_sent > cl->env_answered))
			break;
	}
	if (cl->stage == ST_ENVELOPE)
		smtpc_arm(cl, smtpc_stage_timeout(cl));
}

static void
env_reply(struct smtp_client *cl, const struct reply *r)
{
	size_t k = cl->env_answered++;

	if (k >= cl->env_sent) {
		protocol_error(cl, r);	/* a reply to nothing we sent */
		return;
	}
	if (r->code == 421) {
		fail_reply(cl, r, k == 0 ? "MAIL FROM" : k <= cl->nrcpts ?
		    "RCPT TO" : "DATA", "4.4.2");
		return;
	}
	if (cls(r) == 3 && !(k > cl->nrcpts && r->code == 354)) {
		protocol_error(cl, r);
		return;
	}
	if (k == 0) {				/* MAIL */
		if (cls(r) != 2) {
			for (size_t i = 0; i < cl->nrcpts; i++)
				smtpc_decide_reply(cl, i, r);
			cl->mail_failed = true;
			if (!cl->caps.pipelining) {
				smtpc_quit(cl);
				return;
			}
		}
	} else if (k <= cl->nrcpts) {		/* RCPT */
		size_t i = k - 1;

		if (!cl->mail_failed) {
			if (cls(r) == 2 && !cl->check_only) {
				cl->rst[i] = RST_ACCEPTED;
				cl->naccepted++;
			} else {
				smtpc_decide_reply(cl, i, r);
			}
		}
		if (cl->check_only && k == cl->nrcpts) {
			smtpc_quit(cl);
			return;
		}
	} else {				/* DATA */
		if (r->code == 354) {
			if (cl->mail_failed || cl->naccepted == 0) {
				/* RFC 2920 §3.1: end the empty message. */
				if (smtpc_send(cl, ".") != 0 ||
				    smtpc_flush(cl) == CONN_ERR)
					return;
				expect(cl, ST_DOT_EMPTY);
				return;
			}
			cl->stage = ST_BODY;
			cl->at_bol = true;
			cl->body_eof = false;
			smtpc_arm(cl, SMTPC_TIMEOUT_DATA_BLOCK);
			body_pump(cl);
			return;
		}
		if (cls(r) == 2) {
			protocol_error(cl, r);
			return;
		}
		for (size_t i = 0; i < cl->nrcpts; i++)
			if (cl->rst[i] == RST_ACCEPTED)
				smtpc_decide_reply(cl, i, r);
		smtpc_quit(cl);
		return;
	}
	env_pump(cl);
}

/* ---- the message ---- */

/* Dot-stuff in[0..n) into out (at most 2n bytes); returns the length. */
static size_t
stuff(struct smtp_client *cl, const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (cl->at_bol && in[i] == '.')
			out[o++] = '.';
		out[o++] = (char)in[i];
		cl->at_bol = in[i] == '\n';
	}
	if (n > 0)
		cl->last = in[n - 1];
	return o;
}

/*
 * Read, stuff and queue the message while the output stays under the high
 * water mark; at the end add CRLF (if missing) and ".".  A read error
 * fails the attempt without sending the dot: the server never sees a
 * truncated message as complete.
 */
static void
body_pump(struct smtp_client *cl)
{
	unsigned char in[BODY_CHUNK];
	char out[2 * BODY_CHUNK + 8];

	for (;;) {
		int r;

		while (!cl->body_eof &&
		    conn_out_pending(&cl->conn) < BODY_HIGH_WATER) {
			ssize_t n;
			size_t o;

			if (cl->prefix_off < cl->prefix_len) {
				/* Added header fields go first, stuffed alike. */
				n = (ssize_t)(cl->prefix_len - cl->prefix_off);
				if ((size_t)n > sizeof(in))
					n = (ssize_t)sizeof(in);
				memcpy(in, cl->prefix + cl->prefix_off, (size_t)n);
				cl->prefix_off += (size_t)n;
			} else {
				n = read(cl->msgfd, in, sizeof(in));
			}
			if (n < 0) {
				smtpc_fail(cl, false, 451, "4.3.0", "cannot read "
				    "the message %s: %s", cl->path,
				    strerror(errno));
				return;
			}
			if (n == 0) {
				o = 0;
				if (!cl->at_bol) {
					if (cl->last != '\r')
						out[o++] = '\r';
					out[o++] = '\n';
				}
				memcpy(out + o, ".\r\n", 3);
				o += 3;
				cl->body_eof = true;
			} else {
				o = stuff(cl, in, (size_t)n, out);
			}
			if (conn_send(&cl->conn, out, o) != 0) {
				smtpc_fail(cl, false, 451, "4.3.0", "%s: output "
				    "bound reached (internal error)",
				    cl->t.name);
				return;
			}
		}
		r = smtpc_flush(cl);
		if (r == CONN_ERR)
			return;
		if (r == CONN_AGAIN)
			return;		/* on_drain goes on */
		if (cl->body_eof) {
			cl->dot_next = 0;
			expect(cl, ST_DOT);
			return;
		}
	}
}

void
smtpc_proto_drain(struct smtp_client *cl)
{
	switch (cl->stage) {
	case ST_ENVELOPE:
		env_pump(cl);
		break;
	case ST_BODY:
		smtpc_arm(cl, SMTPC_TIMEOUT_DATA_BLOCK);
		body_pump(cl);
		break;
	default:
		break;
	}
}

/* ---- the end of data ---- */

static void
dot_reply(struct smtp_client *cl, const struct reply *r)
{
	if (cls(r) == 3) {
		protocol_error(cl, r);
		return;
	}
	if (cl->proto == SMTPC_SMTP) {
		for (size_t i = 0; i < cl->nrcpts; i++)
			if (cl->rst[i] == RST_ACCEPTED)
				smtpc_decide_reply(cl, i, r);
	} else {
		/* RFC 2033 §4.2: one reply per accepted RCPT, in order. */
		while (cl->dot_next < cl->nrcpts &&
		    cl->rst[cl->dot_next] != RST_ACCEPTED)
			cl->dot_next++;
		if (cl->dot_next < cl->nrcpts)
			smtpc_decide_reply(cl, cl->dot_next++, r);
	}
	if (r->code == 421) {
		fail_reply(cl, r, "end of data", "4.4.2");
		return;
	}
	if (cl->naccepted > 0) {
		expect(cl, ST_DOT);	/* the next LMTP reply */
		return;
	}
	smtpc_quit(cl);
}

void
smtpc_proto_reply(struct smtp_client *cl, const struct reply *r, bool more)
{
	switch (cl->stage) {
	case ST_GREETING:
		if (cls(r) == 2) {
			send_ehlo(cl);
			return;
		}
		if (cls(r) == 3)
			protocol_error(cl, r);
		else
			fail_reply(cl, r, "the greeting", "4.4.2");
		return;
	case ST_EHLO:
	case ST_HELO:
		ehlo_reply(cl, r);
		return;
	case ST_STARTTLS:
		starttls_reply(cl, r, more);
		return;
	case ST_AUTH_PLAIN:
	case ST_AUTH_PLAIN2:
	case ST_AUTH_LOGIN:
	case ST_AUTH_USER:
	case ST_AUTH_PASS:
		auth_reply(cl, r);
		return;
	case ST_ENVELOPE:
		env_reply(cl, r);
		return;
	case ST_BODY:
		/* A refusal in the middle of the content: take it as the
		 * final word, the protocol is out of step anyway. */
		if (cls(r) == 4 || cls(r) == 5) {
			for (size_t i = 0; i < cl->nrcpts; i++)
				if (cl->rst[i] == RST_ACCEPTED)
					smtpc_decide_reply(cl, i, r);
			smtpc_fail(cl, false, 451, "4.5.0", "%s: reply "
			    "during the message content", cl->t.name);
			return;
		}
		protocol_error(cl, r);
		return;
	case ST_DOT:
		dot_reply(cl, r);
		return;
	case ST_DOT_EMPTY:
		smtpc_quit(cl);
		return;
	case ST_QUIT:
		smtpc_close(cl);
		return;
	default:
		protocol_error(cl, r);
		return;
	}
}
