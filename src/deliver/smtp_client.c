/*
 * smtp_client.c — the SMTP/LMTP client: life cycle, reading replies,
 * timers and outcomes.  Connecting is in smtp_client_connect.c, the
 * protocol in smtp_client_proto.c (see smtp_client.h).
 *
 * Ownership: a client owns its copies of the options and the message's
 * envelope, its socket (a conn once connected), the message file
 * descriptor, the address list, and its results.  The password is wiped
 * before it is freed.
 *
 * A client is never freed inside a callback of its own: conn.c reads the
 * conn after on_read/on_drain return.  smtpc_close() stops everything and
 * starts the reaper, a zero timer that frees the client at the next loop
 * iteration.
 *
 * SECURITY: every wait (resolving, connecting, each reply, each block of
 * the message written) runs under the stage's timer; input goes through
 * reply_parse(), which bounds lines and replies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/smtp_client_int.h"
#include "util/log.h"
#include "util/xmalloc.h"

static unsigned nclients;

static void	on_read(void *);
static void	on_drain(void *);

/* ---- timers and output ---- */

void
smtpc_arm(struct smtp_client *cl, double default_secs)
{
	double secs = cl->timeout > 0 ? cl->timeout : default_secs;

	ev_timer_stop(cl->loop, &cl->timer);
	ev_timer_set(&cl->timer, secs, 0.);
	ev_timer_start(cl->loop, &cl->timer);
}

int
smtpc_send(struct smtp_client *cl, const char *fmt, ...)
{
	char line[SMTP_AUTH_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return -1;
	line[n++] = '\r';
	line[n++] = '\n';
	n = conn_send(&cl->conn, line, (size_t)n);
	/* SECURITY: the line may hold credentials (AUTH). */
	explicit_bzero(line, sizeof(line));
	return n;
}

int
smtpc_flush(struct smtp_client *cl)
{
	int r = conn_flush(&cl->conn);

	if (r == CONN_ERR)
		smtpc_fail(cl, false, 451, "4.4.2", "%s: lost connection "
		    "during %s: %s", cl->t.name, smtpc_stage_name(cl),
		    cl->conn.error[0] ? cl->conn.error : "write failed");
	return r;
}

/* ---- outcomes ---- */

void
smtpc_decide(struct smtp_client *cl, size_t i, int code, const char *ecode,
    const char *text)
{
	struct smtpc_result *o = &cl->res[i];

	if (cl->rst[i] == RST_DECIDED)
		return;
	if (cl->rst[i] == RST_ACCEPTED)
		cl->naccepted--;
	cl->rst[i] = RST_DECIDED;
	o->code = code;
	snprintf(o->ecode, sizeof(o->ecode), "%s", ecode != NULL ? ecode : "");
	snprintf(o->text, sizeof(o->text), "%s", text != NULL ? text : "");
}

void
smtpc_decide_reply(struct smtp_client *cl, size_t i, const struct reply *r)
{
	char ecode[REPLY_ECODE_MAX];

	if (r->code != 421) {
		smtpc_decide(cl, i, r->code, r->ecode, r->text);
		return;
	}
	/* 421 closes the channel: not a reply to repeat to our client. */
	snprintf(ecode, sizeof(ecode), "%s", r->ecode[0] ? r->ecode : "4.4.2");
	smtpc_decide(cl, i, 451, ecode, r->text);
}

static void
report(struct smtp_client *cl)
{
	smtpc_done_cb done = cl->done;

	if (cl->reported)
		return;
	cl->reported = true;
	for (size_t i = 0; i < cl->nrcpts; i++)
		if (cl->rst[i] != RST_DECIDED)
			smtpc_decide(cl, i, 451, "4.3.0", "no outcome "
			    "(internal error)");
	cl->done = NULL;
	if (done != NULL)
		done(cl->arg, cl->res, cl->nrcpts,
		    cl->error[0] ? cl->error : NULL);
}

void
smtpc_fail(struct smtp_client *cl, bool quit, int code, const char *ecode,
    const char *fmt, ...)
{
	char ex[LOG_EXCERPT_BUFSZ(300)];
	va_list ap;

	if (cl->stage == ST_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(cl->error, sizeof(cl->error), fmt, ap);
	va_end(ap);
	log_warn(cl->sid, "smtpc failed target=%s stage=%s code=%d error=\"%s\"",
	    cl->t.name, smtpc_stage_name(cl), code,
	    log_excerpt(ex, cl->error, strlen(cl->error), 300));
	for (size_t i = 0; i < cl->nrcpts; i++)
		smtpc_decide(cl, i, code, ecode, cl->error);
	if (quit && cl->have_conn && !cl->conn.failed)
		smtpc_quit(cl);
	else {
		report(cl);
		smtpc_close(cl);
	}
}

void
smtpc_quit(struct smtp_client *cl)
{
	report(cl);
	if (cl->stage == ST_DONE)
		return;
	if (!cl->have_conn || cl->conn.failed ||
	    smtpc_send(cl, "QUIT") != 0 || conn_flush(&cl->conn) == CONN_ERR) {
		smtpc_close(cl);
		return;
	}
	cl->stage = ST_QUIT;
	smtpc_arm(cl, SMTPC_TIMEOUT_QUIT);
}

static void
client_free(struct smtp_client *cl)
{
	for (size_t i = 0; i < cl->nrcpts; i++)
		free(cl->rcpts[i]);
	free(cl->rcpts);
	free(cl->res);
	free(cl->rst);
	free(cl->helo);
	free(cl->verify_name);
	free(cl->ca_file);
	free(cl->auth_user);
	if (cl->auth_pass != NULL) {
		explicit_bzero(cl->auth_pass, strlen(cl->auth_pass));
		free(cl->auth_pass);
	}
	free(cl->sender);
	free(cl->path);
	free(cl->prefix);
	if (cl->ai != NULL)
		freeaddrinfo(cl->ai);
	free(cl);
	nclients--;
}

static void
reaper_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	client_free(w->data);
}

void
smtpc_close(struct smtp_client *cl)
{
	ev_timer_stop(cl->loop, &cl->timer);
	ev_io_stop(cl->loop, &cl->cio);
	if (cl->have_conn)
		conn_close(&cl->conn);
	else if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
	if (cl->given_fd >= 0)
		close(cl->given_fd);
	cl->given_fd = -1;
	if (cl->msgfd >= 0)
		close(cl->msgfd);
	cl->msgfd = -1;
	smtpc_resolve_abandon(cl);
	cl->stage = ST_DONE;
	if (!ev_is_active(&cl->reaper)) {
		ev_timer_set(&cl->reaper, 0., 0.);
		ev_timer_start(cl->loop, &cl->reaper);
	}
}

void
smtp_client_cancel(struct smtp_client *cl)
{
	cl->done = NULL;
	cl->reported = true;
	smtpc_close(cl);
}

unsigned
smtp_client_count(void)
{
	return nclients;
}

const char *
smtpc_stage_name(const struct smtp_client *cl)
{
	switch (cl->stage) {
	case ST_START:		return "start";
	case ST_RESOLVE:	return "name resolution";
	case ST_CONNECT:	return "connect";
	case ST_GREETING:	return "greeting";
	case ST_EHLO:		return cl->proto == SMTPC_LMTP ? "LHLO" : "EHLO";
	case ST_HELO:		return "HELO";
	case ST_STARTTLS:	return "STARTTLS";
	case ST_TLS:		return "TLS handshake";
	case ST_AUTH_PLAIN:
	case ST_AUTH_PLAIN2:
	case ST_AUTH_LOGIN:
	case ST_AUTH_USER:
	case ST_AUTH_PASS:	return "AUTH";
	case ST_ENVELOPE:
		if (cl->env_answered == 0)
			return "MAIL FROM";
		return cl->env_answered <= cl->nrcpts ? "RCPT TO" : "DATA";
	case ST_BODY:		return "message content";
	case ST_DOT:
	case ST_DOT_EMPTY:	return "end of data";
	case ST_QUIT:		return "QUIT";
	case ST_DONE:		return "done";
	}
	return "?";
}

/* ---- connected ---- */

void
smtpc_connected(struct smtp_client *cl, int fd)
{
	ev_io_stop(cl->loop, &cl->cio);
	cl->fd = -1;
	conn_init(&cl->conn, cl->loop, fd, cl, on_read, on_drain);
	cl->have_conn = true;
	reply_parser_reset(&cl->rp, true);
	conn_want_read(&cl->conn, true);
	smtpc_proto_connected(cl);
}

/* The first callback: everything that may fail happens from here on. */
static void
kickoff(struct smtp_client *cl)
{
	struct stat st;

	if (!cl->check_only) {
		cl->msgfd = open(cl->path, O_RDONLY | O_CLOEXEC);
		if (cl->msgfd < 0 || fstat(cl->msgfd, &st) != 0) {
			smtpc_fail(cl, false, 451, "4.3.0", "cannot open the "
			    "message %s: %s", cl->path, strerror(errno));
			return;
		}
		cl->size = (uint64_t)st.st_size + cl->prefix_len;
	}
	if (cl->given_fd >= 0) {
		int fd = cl->given_fd, fl = fcntl(fd, F_GETFL);

		cl->given_fd = -1;
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			close(fd);
			smtpc_fail(cl, false, 451, "4.3.0", "%s: bad descriptor: "
			    "%s", cl->t.name, strerror(errno));
			return;
		}
		smtpc_connected(cl, fd);
	} else {
		smtpc_connect(cl);
	}
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_client *cl = w->data;

	(void)loop;
	(void)revents;
	switch (cl->stage) {
	case ST_START:
		kickoff(cl);
		return;
	case ST_RESOLVE:
		smtpc_fail(cl, false, 451, "4.4.3", "%s: timed out resolving "
		    "%s", cl->t.name, cl->t.host);
		return;
	case ST_CONNECT:
		smtpc_connect_timeout(cl);
		return;
	case ST_QUIT:
	case ST_DONE:
		smtpc_close(cl);
		return;
	case ST_BODY:
		smtpc_fail(cl, false, 451, "4.4.2", "%s: timed out sending the "
		    "message", cl->t.name);
		return;
	default:
		smtpc_fail(cl, false, 451, "4.4.2", "%s: timed out waiting for "
		    "the reply to %s", cl->t.name, smtpc_stage_name(cl));
		return;
	}
}

/* ---- reading ---- */

static void
on_read(void *owner)
{
	struct smtp_client *cl = owner;
	char buf[4096], ex[LOG_EXCERPT_BUFSZ(200)];

	for (;;) {
		ssize_t n;
		size_t off = 0;

		/* A handshake reads for itself; a closed client reads no more. */
		if (cl->stage == ST_TLS || cl->stage == ST_DONE)
			return;
		n = conn_read(&cl->conn, buf, sizeof(buf));
		if (n == CONN_AGAIN)
			return;
		if (n == CONN_EOF || n == CONN_ERR || n <= 0) {
			if (cl->stage == ST_QUIT) {
				smtpc_close(cl);
				return;
			}
			smtpc_fail(cl, false, 451, "4.4.2", "%s: lost connection "
			    "during %s%s%s", cl->t.name, smtpc_stage_name(cl),
			    n == CONN_ERR ? ": " : "",
			    n == CONN_ERR ? cl->conn.error : "");
			return;
		}
		while (off < (size_t)n) {
			struct reply r;
			size_t used;
			int rc;

			rc = reply_parse(&cl->rp, buf + off, (size_t)n - off, &used);
			off += used;
			if (rc == REPLY_AGAIN)
				break;
			if (rc == REPLY_ERROR) {
				smtpc_fail(cl, false, 451, "4.5.0", "%s: protocol "
				    "error during %s: %s", cl->t.name,
				    smtpc_stage_name(cl), cl->rp.error);
				return;
			}
			r = cl->rp.r;
			reply_parser_reset(&cl->rp, true);
			log_debug(cl->sid, "smtpc reply target=%s stage=%s "
			    "code=%d text=\"%s\"", cl->t.name,
			    smtpc_stage_name(cl), r.code,
			    log_excerpt(ex, r.text, r.textlen, 200));
			smtpc_proto_reply(cl, &r, off < (size_t)n);
			if (cl->stage == ST_TLS || cl->stage == ST_DONE)
				return;
		}
	}
}

static void
on_drain(void *owner)
{
	struct smtp_client *cl = owner;

	if (cl->stage == ST_DONE)
		return;
	if (cl->conn.failed) {
		if (cl->stage == ST_QUIT) {
			smtpc_close(cl);
			return;
		}
		smtpc_fail(cl, false, 451, "4.4.2", "%s: lost connection "
		    "during %s: %s", cl->t.name, smtpc_stage_name(cl),
		    cl->conn.error[0] ? cl->conn.error : "write failed");
		return;
	}
	smtpc_proto_drain(cl);
}

/* ---- starting ---- */

static bool
has_non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static struct smtp_client *
client_new(struct ev_loop *loop, uint64_t sid, const struct smtpc_opts *o,
    const struct smtpc_msg *m, smtpc_done_cb done, void *arg)
{
	struct smtp_client *cl = xcalloc(1, sizeof(*cl));

	nclients++;
	cl->loop = loop;
	cl->sid = sid;
	cl->proto = o->proto;
	cl->helo = xstrdup(o->helo != NULL ? o->helo : "localhost");
	cl->tls = o->tls;
	cl->verify = o->verify;
	cl->verify_name = dup_or_null(o->verify_name);
	cl->ca_file = dup_or_null(o->ca_file);
	cl->auth_user = dup_or_null(o->auth_user);
	cl->auth_pass = dup_or_null(o->auth_user != NULL ? o->auth_pass : NULL);
	cl->allow_plaintext_auth = o->allow_plaintext_auth;
	cl->timeout = o->timeout;
	cl->check_only = o->check_only;

	cl->sender = xstrdup(m->sender != NULL ? m->sender : "");
	cl->nrcpts = m->nrcpts;
	cl->rcpts = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof(*cl->rcpts));
	cl->need_utf8 = m->smtputf8 || has_non_ascii(cl->sender);
	for (size_t i = 0; i < m->nrcpts; i++) {
		cl->rcpts[i] = xstrdup(m->rcpts[i]);
		cl->need_utf8 = cl->need_utf8 || has_non_ascii(cl->rcpts[i]);
	}
	cl->path = dup_or_null(m->path);
	if (m->prefix != NULL && m->prefix_len > 0) {
		cl->prefix = xmalloc(m->prefix_len);
		memcpy(cl->prefix, m->prefix, m->prefix_len);
		cl->prefix_len = m->prefix_len;
	}
	cl->eightbit = m->eightbit;
	cl->msgfd = -1;
	cl->res = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof(*cl->res));
	cl->rst = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof(*cl->rst));
	cl->done = done;
	cl->arg = arg;

	cl->fd = -1;
	cl->given_fd = -1;
	smtpc_connect_init(cl);
	ev_init(&cl->timer, timer_cb);
	cl->timer.data = cl;
	ev_init(&cl->reaper, reaper_cb);
	cl->reaper.data = cl;
	reply_parser_reset(&cl->rp, true);
	/* Nothing may fail or call back from start(): begin from the loop. */
	cl->stage = ST_START;
	ev_timer_set(&cl->timer, 0., 0.);
	ev_timer_start(loop, &cl->timer);
	return cl;
}

struct smtp_client *
smtp_client_start(struct ev_loop *loop, uint64_t sid,
    const struct smtpc_target *t, const struct smtpc_opts *o,
    const struct smtpc_msg *m, smtpc_done_cb done, void *arg)
{
	struct smtp_client *cl = client_new(loop, sid, o, m, done, arg);

	cl->t = *t;
	return cl;
}

struct smtp_client *
smtp_client_start_fd(struct ev_loop *loop, uint64_t sid, int fd,
    const char *name, const struct smtpc_opts *o, const struct smtpc_msg *m,
    smtpc_done_cb done, void *arg)
{
	struct smtp_client *cl = client_new(loop, sid, o, m, done, arg);

	snprintf(cl->t.name, sizeof(cl->t.name), "%s",
	    name != NULL ? name : "fd");
	cl->given_fd = fd;
	return cl;
}
