/*
 * smtp_auth.c — AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN.
 *
 * The credentials go to the auth hook (which may yield for a lookup):
 * accept -> 235 2.7.0, reject -> 535 5.7.8, tempfail or a hook error ->
 * 454 4.7.0.  AUTH is offered and accepted only under TLS, or on a
 * listener marked auth_plaintext (trusted, e.g. loopback).
 *
 * SECURITY: the password is never logged and is wiped from memory once the
 * hook has answered; AUTH lines are logged as "AUTH <mechanism>" only.
 * Every failure delays its 535 by auth_failure_delay times the number of
 * failures so far, and max_auth_failures failures end the session.
 * User names and authzids are bounded by AUTH_FIELD_MAX, passwords only by
 * the AUTH line (SMTP_AUTH_LINE_MAX, base64-decoded).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "server.h"
#include "smtp/smtp_internal.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* RFC 4616 §2: authcid and authzid (servers must take at least 255). */
#define AUTH_FIELD_MAX	255
/*
 * A decoded response: whatever fits an AUTH line (RFC 4954 §4) once
 * base64-decoded.  Passwords are bounded only by this (passphrases are
 * long; RFC 4616's 255 octets is a minimum, not a maximum).
 */
#define AUTH_DECODED_MAX	(SMTP_AUTH_LINE_MAX / 4 * 3)

enum { MECH_NONE, MECH_PLAIN, MECH_LOGIN };
enum { STEP_NONE, STEP_PLAIN, STEP_LOGIN_USER, STEP_LOGIN_PASS };

/*
 * RFC 4954 §4: base64 decode into out (outsz bytes, room for a NUL after
 * the decoded bytes); -1 if malformed or too long for out.
 */
static int
b64_decode(const char *in, size_t len, unsigned char *out, size_t outsz,
    size_t *outlen)
{
	EVP_ENCODE_CTX *ctx;
	int n = 0, fin = 0, r;

	if (len / 4 * 3 >= outsz)	/* the decoded bytes and a NUL */
		return -1;
	/* EVP_Decode* skips whitespace and '-'; SMTP base64 has neither. */
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' ||
		    ch == '='))
			return -1;
	}
	if (len % 4 != 0)
		return -1;
	if ((ctx = EVP_ENCODE_CTX_new()) == NULL)
		return -1;
	EVP_DecodeInit(ctx);
	r = EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *)in, (int)len);
	if (r >= 0)
		r = EVP_DecodeFinal(ctx, out + n, &fin);
	EVP_ENCODE_CTX_free(ctx);
	if (r < 0)
		return -1;
	*outlen = (size_t)(n + fin);
	return 0;
}

static void
wipe(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void
auth_reset(struct smtp_session *s)
{
	s->auth_step = STEP_NONE;
	wipe(&s->auth_pass);
	free(s->auth_try_user);
	s->auth_try_user = NULL;
	free(s->auth_authzid);
	s->auth_authzid = NULL;
}

static void
malformed(struct smtp_session *s)
{
	auth_reset(s);
	reply(s, 501, "5.5.2", "Error: cannot Base64-decode client response");
}

/* Credentials complete: ask the hook. */
static void
auth_check(struct smtp_session *s)
{
	s->auth_step = STEP_NONE;
	session_call_hook(s, HOOK_AUTH, NULL);
}

/* authzid \0 authcid \0 passwd (RFC 4616 §2). */
static void
plain_response(struct smtp_session *s, const char *b64, size_t len)
{
	unsigned char buf[AUTH_DECODED_MAX + 1];
	const char *authzid, *authcid, *passwd;
	size_t n, a, b;

	if (b64_decode(b64, len, buf, sizeof(buf), &n) != 0) {
		explicit_bzero(buf, sizeof(buf));
		malformed(s);
		return;
	}
	buf[n] = '\0';
	authzid = (const char *)buf;
	a = strnlen(authzid, n);
	if (a >= n) {
		explicit_bzero(buf, n);
		malformed(s);
		return;
	}
	authcid = authzid + a + 1;
	b = strnlen(authcid, n - a - 1);
	if (a + 1 + b >= n) {
		explicit_bzero(buf, n);
		malformed(s);
		return;
	}
	passwd = authcid + b + 1;
	if (b == 0 || b > AUTH_FIELD_MAX || a > AUTH_FIELD_MAX ||
	    strlen(passwd) != n - a - b - 2) {
		explicit_bzero(buf, n);
		malformed(s);
		return;
	}
	s->auth_try_user = xstrdup(authcid);
	s->auth_authzid = xstrdup(authzid);
	s->auth_pass = xstrdup(passwd);
	explicit_bzero(buf, n);
	auth_check(s);
}

/* One base64 field of LOGIN: the user (max bytes) or the password. */
static char *
login_field(struct smtp_session *s, const char *b64, size_t len, size_t max)
{
	unsigned char buf[AUTH_DECODED_MAX + 1];
	size_t n;
	char *v;

	if (b64_decode(b64, len, buf, sizeof(buf), &n) != 0 || n > max ||
	    memchr(buf, '\0', n) != NULL) {
		/* A failed decode may have written part of a password. */
		explicit_bzero(buf, sizeof(buf));
		malformed(s);
		return NULL;
	}
	v = xstrndup((const char *)buf, n);
	explicit_bzero(buf, n);
	return v;
}

static void
login_user(struct smtp_session *s, const char *b64, size_t len)
{
	if ((s->auth_try_user = login_field(s, b64, len, AUTH_FIELD_MAX)) ==
	    NULL)
		return;
	s->auth_step = STEP_LOGIN_PASS;
	reply(s, 334, NULL, "UGFzc3dvcmQ6");	/* "Password:" */
}

void
auth_line(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		/* RFC 4954 §4: the client cancelled. */
		auth_reset(s);
		reply(s, 501, "5.7.0", "Error: authentication cancelled");
		return;
	}
	switch (s->auth_step) {
	case STEP_PLAIN:
		plain_response(s, line, len);
		break;
	case STEP_LOGIN_USER:
		login_user(s, line, len);
		break;
	case STEP_LOGIN_PASS:
		if ((s->auth_pass = login_field(s, line, len,
		    AUTH_DECODED_MAX)) != NULL)
			auth_check(s);
		break;
	}
}

bool
auth_offered(const struct smtp_session *s)
{
	return s->lc->auth && hook_impl != NULL && hook_impl->has(HOOK_AUTH) &&
	    ((s->flags & SESS_F_TLS) || s->lc->auth_plaintext);
}

void
cmd_auth(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const char *arg = cmd->arg, *sp, *ir = NULL;
	size_t mlen, irlen = 0;

	if (!s->lc->auth) {
		reply(s, 503, "5.5.1", "Error: authentication not enabled");
		return;
	}
	if (!auth_offered(s)) {
		/* RFC 4954 §6: plaintext AUTH needs a secure channel first. */
		reply(s, 538, "5.7.11", "Encryption required for requested "
		    "authentication mechanism");
		return;
	}
	if (s->state == SMTP_STATE_INIT) {
		reply(s, 503, "5.5.1", "Error: send EHLO first");
		return;
	}
	if (s->flags & SESS_F_AUTH) {
		reply(s, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (s->tx != NULL) {
		reply(s, 503, "5.5.1", "Error: AUTH not allowed during a mail "
		    "transaction");
		return;
	}
	sp = memchr(arg, ' ', cmd->arglen);
	mlen = sp != NULL ? (size_t)(sp - arg) : cmd->arglen;
	if (sp != NULL) {
		ir = sp + 1;
		irlen = cmd->arglen - mlen - 1;
	}
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		s->auth_mech = MECH_PLAIN;
		if (ir == NULL) {
			s->auth_step = STEP_PLAIN;
			reply(s, 334, NULL, "%s", "");
		} else if (irlen == 1 && ir[0] == '=') {
			malformed(s);	/* an empty PLAIN response is never valid */
		} else {
			plain_response(s, ir, irlen);
		}
	} else if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
		s->auth_mech = MECH_LOGIN;
		if (ir == NULL) {
			s->auth_step = STEP_LOGIN_USER;
			reply(s, 334, NULL, "VXNlcm5hbWU6");	/* "Username:" */
		} else {
			login_user(s, ir, irlen);
		}
	} else if (mlen == 0) {
		reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
	} else {
		reply(s, 504, "5.5.4", "Error: unrecognized authentication type");
	}
}

const char *
auth_mech_name(const struct smtp_session *s)
{
	return s->auth_mech == MECH_PLAIN ? "PLAIN" :
	    s->auth_mech == MECH_LOGIN ? "LOGIN" : "";
}

static void
delay_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	(void)loop;
	(void)revents;
	if (s->state == SMTP_STATE_CLOSED)
		return;
	reply(s, 535, "5.7.8", "Error: authentication credentials invalid");
	if (s->auth_failures >= s->cfg->max_auth_failures) {
		reply(s, 421, "4.7.0", "%s Error: too many authentication "
		    "failures", s->cfg->hostname);
		session_quit(s, "too many authentication failures");
		return;
	}
	session_set_busy(s, BUSY_NONE);
	session_process(s);
}

void
auth_hook_done(struct smtp_session *s, const struct hook_verdict *v)
{
	char ex[LOG_EXCERPT_BUFSZ(64)];
	const char *user = s->auth_try_user != NULL ? s->auth_try_user : "";

	log_excerpt(ex, user, strlen(user), 64);
	wipe(&s->auth_pass);
	switch (v->kind) {
	case VERDICT_ACCEPT:
	case VERDICT_DISCARD:
		s->flags |= SESS_F_AUTH;
		free(s->auth_user);
		s->auth_user = s->auth_try_user;
		s->auth_try_user = NULL;
		log_info(s->id, "auth success user=\"%s\" mechanism=%s", ex,
		    auth_mech_name(s));
		reply(s, 235, "2.7.0", "Authentication successful");
		break;
	case VERDICT_TEMPFAIL:
	case VERDICT_ERROR:
		log_info(s->id, "auth tempfail user=\"%s\" mechanism=%s", ex,
		    auth_mech_name(s));
		reply(s, 454, "4.7.0", "Temporary authentication failure");
		break;
	case VERDICT_DISCONNECT: {
		static const struct stage_replies st = { 0, NULL, NULL, 0, NULL,
		    NULL, 0, NULL, NULL };

		(void)reply_verdict(s, v, &st, false);
		break;
	}
	case VERDICT_DEFAULT:
	case VERDICT_REJECT:
		s->auth_failures++;
		log_info(s->id, "auth failure user=\"%s\" mechanism=%s failures=%u",
		    ex, auth_mech_name(s), s->auth_failures);
		/* Slow down guessing: the 535 comes after a growing delay. */
		ev_timer_set(&s->delay_timer, s->cfg->auth_failure_delay *
		    s->auth_failures, 0.);
		s->delay_timer.data = s;
		ev_set_cb(&s->delay_timer, delay_done);
		ev_timer_start(server.loop, &s->delay_timer);
		session_set_busy(s, BUSY_DELAY);
		break;
	}
	free(s->auth_try_user);
	s->auth_try_user = NULL;
	free(s->auth_authzid);
	s->auth_authzid = NULL;
}
