/*
 * smtp_session.c — session lifecycle, input loop, timers and hook glue.
 *
 * RFC 5321 §4.5.3.2 (timeouts), RFC 2920 (pipelining: replies are queued
 * while complete commands remain in the input and flushed before we wait
 * for the client or for a hook).
 *
 * The input loop (session_process) takes complete lines from the input
 * buffer, or message bytes in DATA/BDAT, until the buffer runs dry, a hook
 * or a worker makes the session busy, or the client stops reading its
 * replies (output above OUTPUT_HIGH_WATER).  Reading is off whenever
 * processing is paused, so a busy session costs no input memory growth.
 *
 * SECURITY: every line is bounded (SMTP_READ_LINE_MAX without a newline
 * ends the session), every wait has a timer, and errors are counted.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "net/getline.h"
#include "net/iplimit.h"
#include "server.h"
#include "tls/tls.h"
#include "smtp/smtp_internal.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define READ_SIZE	(16 * 1024)

static void	on_read(void *);
static void	on_drain(void *);
static void	maybe_free(struct smtp_session *);
static void	process_input(struct smtp_session *);

static void
sockaddr_to_str(const struct sockaddr_storage *ss, char *ip, size_t iplen,
    int *port)
{
	*port = 0;
	snprintf(ip, iplen, "unknown");
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)iplen);
		*port = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen);
		*port = ntohs(in6->sin6_port);
	}
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	(void)loop;
	(void)revents;
	if (s->flags & SESS_F_QUITTING) {
		smtp_session_close(s, s->close_reason ? s->close_reason :
		    "linger timeout");
		return;
	}
	if (s->busy == BUSY_TLS) {
		/* No reply: the channel is in the middle of a handshake. */
		log_info(s->id, "tls handshake-timeout seconds=%.1f",
		    s->cfg->timeout_tls_handshake);
		smtp_session_close(s, "TLS handshake timeout");
		return;
	}
	if (s->busy != BUSY_NONE)
		return;
	log_info(s->id, "smtp timeout state=%d", (int)s->state);
	reply(s, 421, "4.4.2", "%s Error: timeout exceeded", s->cfg->hostname);
	session_quit(s, "timeout");
}

static void
greet_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	(void)loop;
	(void)revents;
	s->flags &= ~SESS_F_GREET_WAIT;
	/* The connect hook already answered: send its greeting now. */
	if (s->busy == BUSY_NONE && s->state == SMTP_STATE_GREETING)
		cmd_send_greeting(s, NULL);
}

/*
 * Progress in DATA or BDAT: the deadline is timeout_data plus the time
 * the bytes so far may take at min_data_rate (Postfix's
 * smtpd_min_data_rate), so a client that trickles a byte now and then
 * cannot hold a session for ever, while a big message on a slow link is
 * fine.
 */
static void
data_progress(struct smtp_session *s, size_t n)
{
	double deadline, now = ev_now(server.loop);

	if (s->cfg->min_data_rate == 0) {
		session_restart_timer(s);
		return;
	}
	s->data_bytes += n;
	deadline = s->data_started + s->cfg->timeout_data +
	    (double)s->data_bytes / s->cfg->min_data_rate;
	s->timer.repeat = deadline > now ? deadline - now : 0.001;
	ev_timer_again(server.loop, &s->timer);
}

/*
 * A fresh full timeout: after each complete command, and when the
 * session changes state.  Partial input does not restart it, so
 * timeout_command is a deadline for a whole command line.
 */
void
session_restart_timer(struct smtp_session *s)
{
	double t;

	if (s->state == SMTP_STATE_CLOSED || (s->flags & SESS_F_QUITTING))
		return;
	t = (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT) ?
	    s->cfg->timeout_data : s->cfg->timeout_command;
	s->timer.repeat = t;
	ev_timer_again(server.loop, &s->timer);
}

/* The connect hook and greet_pause run; the banner follows both. */
static void
begin_greeting(struct smtp_session *s)
{
	/* Watch input from the start: a client that talks first is caught. */
	conn_want_read(&s->conn, true);
	session_restart_timer(s);
	if (s->cfg->greet_pause > 0) {
		s->flags |= SESS_F_GREET_WAIT;
		ev_timer_start(server.loop, &s->greet_timer);
	}
	session_call_hook(s, HOOK_CONNECT, NULL);
}

static void
tls_done(void *arg, bool ok)
{
	struct smtp_session *s = arg;
	struct tls_info ti;

	if (s->state == SMTP_STATE_CLOSED)
		return;
	if (!ok) {
		log_info(s->id, "tls handshake-failed error=\"%s\"",
		    s->conn.error[0] ? s->conn.error : "unknown");
		smtp_session_close(s, "TLS handshake failed");
		return;
	}
	s->flags |= SESS_F_TLS;
	tls_conn_info(&s->conn, &ti);
	{
		/* Both come from the client: its SNI and its certificate. */
		char sni[LOG_EXCERPT_BUFSZ(255)], subj[LOG_EXCERPT_BUFSZ(256)];

		log_info(s->id, "tls established version=%s cipher=%s bits=%d "
		    "sni=%s%s%s%s", ti.version, ti.cipher, ti.bits,
		    ti.sni[0] ? log_token(sni, ti.sni, 255) : "-",
		    ti.peer_subject[0] ? " client=\"" : "",
		    log_excerpt(subj, ti.peer_subject, strlen(ti.peer_subject),
		    256), ti.peer_subject[0] ? "\"" : "");
	}
	s->busy = BUSY_NONE;
	if (s->state == SMTP_STATE_GREETING) {
		begin_greeting(s);
		return;
	}
	session_set_busy(s, BUSY_NONE);
	/*
	 * The client's next command may already sit decrypted in OpenSSL,
	 * where the socket will not signal it.  The handshake may also have
	 * finished inside the STARTTLS handler itself, under process_input's
	 * line view: so never read from here, have the loop call on_read.
	 */
	conn_want_read(&s->conn, true);
	conn_kick_read(&s->conn);
}

void
session_starttls(struct smtp_session *s)
{
	size_t used = buf_used(&s->in);
	size_t junk = used > s->line_span ? used - s->line_span : 0;

	/*
	 * SECURITY (CVE-2011-0411, Wietse Venema): plaintext that arrived
	 * with or after STARTTLS must never be read as if it came over TLS.
	 * (The STARTTLS line itself is still in the buffer: line_span.)
	 */
	if (junk > 0)
		log_info(s->id, "smtp starttls-discarded bytes=%zu", junk);
	buf_reset(&s->in);
	/* RFC 3207 §4.2: forget everything learnt before TLS. */
	tx_end(s);
	free(s->helo);
	s->helo = NULL;
	/* An identity from AUTH over plaintext (auth_plaintext) too: the
	 * client must authenticate again inside TLS. */
	free(s->auth_user);
	s->auth_user = NULL;
	s->flags &= ~(SESS_F_ESMTP | SESS_F_AUTH);
	session_enter_state(s, SMTP_STATE_INIT);
	session_set_busy(s, BUSY_TLS);
	s->flags |= SESS_F_STARTTLS;
	switch (conn_flush(&s->conn)) {
	case CONN_OK:
		s->flags &= ~SESS_F_STARTTLS;
		tls_conn_accept(&s->conn, tls_done);
		break;
	case CONN_AGAIN:
		break;		/* on_drain starts the handshake */
	default:
		smtp_session_close(s, "write error");
	}
}

struct smtp_session *
smtp_session_new(const struct net_client *nc, const struct listener_config *lc)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	socklen_t llen = sizeof(s->local);
	int on = 1;

	s->cfg = server.cfg;
	s->lc = lc;
	s->id = server_new_session_id();
	snprintf(s->idstr, sizeof(s->idstr), "%016llx", (unsigned long long)s->id);
	s->peer = nc->addr;
	getsockname(nc->fd, (struct sockaddr *)&s->local, &llen);
	sockaddr_to_str(&s->peer, s->peer_ip, sizeof(s->peer_ip), &s->peer_port);
	if (nc->name != NULL)	/* "unix", "stdin" (net/client.h) */
		snprintf(s->peer_ip, sizeof(s->peer_ip), "%s", nc->name);
	sockaddr_to_str(&s->local, s->local_ip, sizeof(s->local_ip),
	    &s->local_port);
	/* Replies are small and answer a waiting client: no Nagle delay. */
	setsockopt(nc->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));

	conn_init(&s->conn, server.loop, nc->fd, s, on_read, on_drain);
	if (nc->wfd >= 0)
		conn_use_pipes(&s->conn, nc->wfd);
	buf_init(&s->in, INPUT_MAX);
	ev_init(&s->timer, timer_cb);
	s->timer.data = s;
	ev_timer_init(&s->greet_timer, greet_timer_cb, s->cfg->greet_pause, 0.);
	s->greet_timer.data = s;
	ev_init(&s->delay_timer, NULL);
	s->delay_timer.data = s;
	s->started = ev_now(server.loop);
	s->state = SMTP_STATE_GREETING;
	server.connections++;
	metric_gauge_add(M_CONNECTIONS_OPEN, 1);

	log_info(s->id, "smtp connect ip=%s port=%d listener=%s", s->peer_ip,
	    s->peer_port, lc->name);

	if (lc->tls == TLS_IMPLICIT) {
		/* RFC 8314: TLS from the first byte, then the greeting. */
		session_set_busy(s, BUSY_TLS);
		tls_conn_accept(&s->conn, tls_done);
		return s;
	}
	begin_greeting(s);
	return s;
}

void
session_ref(struct smtp_session *s)
{
	s->refs++;
}

void
session_unref(struct smtp_session *s)
{
	s->refs--;
	maybe_free(s);
}

static void
maybe_free(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_CLOSED && s->close_queued &&
	    s->conn.closed && s->refs == 0 && !s->queued_free) {
		s->queued_free = true;
		server_defer_free(s);
	}
}

void
session_set_busy(struct smtp_session *s, enum smtp_busy busy)
{
	s->busy = busy;
	if (s->state == SMTP_STATE_CLOSED)
		return;
	if (busy == BUSY_TLS) {
		/* The handshake has its own timeout. */
		conn_want_read(&s->conn, false);
		s->timer.repeat = s->cfg->timeout_tls_handshake;
		ev_timer_again(server.loop, &s->timer);
	} else if (busy != BUSY_NONE) {
		/* The hook's own timers bound this wait, not the client's. */
		ev_timer_stop(server.loop, &s->timer);
		/*
		 * Keep watching the socket: before the banner for early
		 * talkers, afterwards to notice a client that went away
		 * (on_read peeks; nothing is consumed while busy).
		 */
		conn_want_read(&s->conn, true);
		/* Pipelined replies so far go out before we wait. */
		if (conn_flush(&s->conn) == CONN_ERR)
			smtp_session_close(s, "write error");
	} else {
		session_restart_timer(s);
	}
}

void
session_call_hook(struct smtp_session *s, enum hook_id id, char *arg)
{
	struct hook_verdict v;
	int r;

	free(s->pending_arg);
	s->pending_arg = arg;		/* owned until the verdict */
	memset(&v, 0, sizeof(v));
	if (hook_impl == NULL || !hook_impl->has(id)) {
		v.kind = VERDICT_DEFAULT;
		cmd_hook_done(s, id, &v);
		return;
	}
	s->pending_hook = id;
	r = hook_impl->run(s, id, arg, &v);
	if (r == HOOK_DONE) {
		cmd_hook_done(s, id, &v);
		return;
	}
	session_set_busy(s, BUSY_HOOK);
}

void
smtp_session_hook_done(struct smtp_session *s, const struct hook_verdict *v)
{
	enum hook_id id = s->pending_hook;

	if (s->flags & SESS_F_HOOK_CLOSE) {
		/* The disconnect hook finished: the session can go. */
		s->flags &= ~SESS_F_HOOK_CLOSE;
		session_unref(s);
		return;
	}
	if (s->state == SMTP_STATE_CLOSED)
		return;
	session_set_busy(s, BUSY_NONE);
	cmd_hook_done(s, id, v);
	if (s->state != SMTP_STATE_CLOSED && s->busy == BUSY_NONE)
		session_process(s);
}

void
session_quit(struct smtp_session *s, const char *reason)
{
	if (s->state == SMTP_STATE_CLOSED || (s->flags & SESS_F_QUITTING))
		return;
	s->flags |= SESS_F_QUITTING;
	s->close_reason = reason;
	conn_want_read(&s->conn, false);
	switch (conn_flush(&s->conn)) {
	case CONN_OK:
		smtp_session_close(s, reason);
		return;
	case CONN_AGAIN:
		/* Give the client a moment to read the last reply. */
		ev_timer_stop(server.loop, &s->timer);
		ev_timer_set(&s->timer, CLOSE_LINGER_SECONDS, 0.);
		ev_timer_start(server.loop, &s->timer);
		return;
	default:
		smtp_session_close(s, "write error");
	}
}

/* Input arrived before the banner (RFC 5321 §4.3.1, Postfix PREGREET). */
static void
greeting_input(struct smtp_session *s)
{
	if (buf_used(&s->in) == 0) {
		if (s->flags & SESS_F_EOF)
			smtp_session_close(s, "client disconnected before greeting");
		return;
	}
	s->flags |= SESS_F_EARLY_TALKER;
	if (!s->cfg->reject_early_talkers) {
		/* Keep what was said; it is read after the banner. */
		conn_want_read(&s->conn, false);
		return;
	}
	log_info(s->id, "smtp early-talker bytes=%zu", buf_used(&s->in));
	if (s->busy == BUSY_HOOK && hook_impl != NULL)
		hook_impl->cancel(s);
	s->busy = BUSY_NONE;
	ev_timer_stop(server.loop, &s->greet_timer);
	buf_reset(&s->in);
	reply(s, 554, "5.5.1", "%s Error: SMTP protocol synchronization "
	    "(talked before the greeting)", s->cfg->hostname);
	session_quit(s, "early talker");
}

/*
 * The socket is readable while a hook or a worker is busy.  If the client
 * has gone (and left nothing we still have to answer), close now: that
 * cancels the hook and whatever it waits for (a delivery, a child).
 * Input that is waiting stays in the socket until we are not busy.
 */
static void
busy_input(struct smtp_session *s)
{
	switch (conn_peek_closed(&s->conn)) {
	case 1:
		if (buf_used(&s->in) == 0 && !(s->flags & SESS_F_QUITTING)) {
			log_info(s->id, "smtp client-gone while=%s",
			    s->busy == BUSY_HOOK ? hook_name(s->pending_hook) :
			    s->busy == BUSY_WORK ? "queue-commit" : "busy");
			smtp_session_close(s, "client disconnected while busy");
			return;
		}
		/* Commands are still buffered: answer them, then close. */
		s->flags |= SESS_F_EOF;
		conn_want_read(&s->conn, false);
		break;
	case 0:
		conn_want_read(&s->conn, false);
		break;
	default:
		break;
	}
}

static void
on_read(void *arg)
{
	struct smtp_session *s = arg;

	if (s->busy != BUSY_NONE && s->state != SMTP_STATE_GREETING &&
	    s->state != SMTP_STATE_CLOSED) {
		busy_input(s);
		return;
	}
	for (int rounds = 0; rounds < 16; rounds++) {
		size_t room, want;
		ssize_t n;
		char *p;

		if (s->state == SMTP_STATE_CLOSED ||
		    (s->busy != BUSY_NONE && s->state != SMTP_STATE_GREETING) ||
		    (s->flags & (SESS_F_QUITTING | SESS_F_EOF)))
			return;
		room = buf_room(&s->in);
		if (room == 0) {
			/* Full: stop reading until processing makes room. */
			conn_want_read(&s->conn, false);
			session_process(s);
			return;
		}
		want = room < READ_SIZE ? room : READ_SIZE;
		if ((p = buf_reserve(&s->in, want)) == NULL)
			return;
		n = conn_read(&s->conn, p, want);
		if (n > 0) {
			buf_commit(&s->in, (size_t)n);
			s->bytes_in += (uint64_t)n;
			if (s->state == SMTP_STATE_DATA ||
			    s->state == SMTP_STATE_BDAT)
				data_progress(s, (size_t)n);
		} else if (n == CONN_AGAIN) {
			if (buf_used(&s->in) == 0)
				buf_reset(&s->in);	/* idle: hold no memory */
			return;
		} else if (n == CONN_EOF) {
			s->flags |= SESS_F_EOF;
			conn_want_read(&s->conn, false);
		} else {
			log_info(s->id, "smtp read-error error=\"%s\"",
			    s->conn.error);
			smtp_session_close(s, "read error");
			return;
		}
		if (s->state == SMTP_STATE_GREETING) {
			greeting_input(s);
			return;
		}
		session_process(s);
		/* TLS may hold decrypted bytes the socket will not signal. */
		if (s->conn.ops->pending(&s->conn) == 0)
			return;
	}
}

static void
on_drain(void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SMTP_STATE_CLOSED)
		return;
	if (s->conn.failed) {
		smtp_session_close(s, "write error");
		return;
	}
	if (s->flags & SESS_F_QUITTING) {
		smtp_session_close(s, s->close_reason);
		return;
	}
	if (s->flags & SESS_F_STARTTLS) {
		s->flags &= ~SESS_F_STARTTLS;
		tls_conn_accept(&s->conn, tls_done);
		return;
	}
	/* The client read its replies: continue with pipelined input. */
	if (s->busy == BUSY_NONE && s->state != SMTP_STATE_GREETING)
		session_process(s);
}

/*
 * A lone QUIT behind the final dot is how many clients end (it smuggles
 * nothing): the pipelining check lets it through.
 */
static bool
only_quit(const struct buf *in)
{
	return buf_used(in) == 6 && strncasecmp(buf_head(in), "QUIT\r\n", 6) == 0;
}

/* The reader found no LF within SMTP_READ_LINE_MAX octets. */
static void
line_too_long(struct smtp_session *s)
{
	log_info(s->id, "smtp line-too-long bytes=%zu", buf_used(&s->in));
	buf_reset(&s->in);
	reply(s, 500, "5.5.2", "Error: line too long");
	reply(s, 421, "4.7.0", "%s Error: closing connection", s->cfg->hostname);
	session_quit(s, "line too long");
}

/*
 * Run the buffered input: message bytes in DATA/BDAT, otherwise command
 * lines.  A line is handled in place (a view into s->in) and consumed
 * after its handler returns; handlers that must drop the input (STARTTLS,
 * a closing session) reset the buffer, and consuming an emptied buffer is
 * harmless.  The guard makes a nested call (a handler that ends up here
 * again) a no-op, so the view cannot be consumed under our feet.
 */
void
session_process(struct smtp_session *s)
{
	if (s->in_process)
		return;
	s->in_process = true;
	process_input(s);
	s->in_process = false;
}

static void
process_input(struct smtp_session *s)
{
	while (s->state != SMTP_STATE_CLOSED && s->busy == BUSY_NONE &&
	    !(s->flags & SESS_F_QUITTING) && s->state != SMTP_STATE_GREETING) {
		struct line ln;
		const char *p;
		size_t used, n;

		if (conn_out_pending(&s->conn) > OUTPUT_HIGH_WATER) {
			/* Client is not reading replies: wait for on_drain. */
			if (conn_flush(&s->conn) == CONN_ERR) {
				smtp_session_close(s, "write error");
				return;
			}
			if (conn_out_pending(&s->conn) > OUTPUT_HIGH_WATER) {
				conn_want_read(&s->conn, false);
				return;
			}
		}
		if ((used = buf_used(&s->in)) == 0)
			break;
		p = buf_head(&s->in);
		if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT) {
			bool data = s->state == SMTP_STATE_DATA;

			n = message_consume(s, p, used);
			buf_consume(&s->in, n);
			/*
			 * RFC 2920 §3.1: the end of data ends a group; a client
			 * that sends on without waiting for our reply may be
			 * smuggling a second message.  Postfix 3.9 hangs up on
			 * unauthenticated ones (smtpd_forbid_unauth_pipelining);
			 * the message itself is answered first.
			 */
			if (data && s->state != SMTP_STATE_DATA &&
			    buf_used(&s->in) > 0 &&
			    s->cfg->forbid_unauth_pipelining &&
			    !(s->flags & SESS_F_AUTH) && !only_quit(&s->in))
				s->flags |= SESS_F_ILL_PIPELINING;
			if (n == 0)
				break;
			continue;
		}
		if (s->flags & SESS_F_ILL_PIPELINING) {
			log_info(s->id, "smtp improper-pipelining after=DATA "
			    "bytes=%zu", used);
			buf_reset(&s->in);
			reply(s, 554, "5.5.0", "Error: SMTP protocol "
			    "synchronization");
			session_quit(s, "improper pipelining after DATA");
			return;
		}
		if (s->ncmds == 0 && s->state == SMTP_STATE_INIT &&
		    ((unsigned char)p[0] == 0x16 || (unsigned char)p[0] == 0x80)) {
			/* A TLS ClientHello (or SSLv2) on a plaintext port. */
			log_info(s->id, "smtp tls-on-plaintext-port bytes=%zu", used);
			buf_reset(&s->in);
			reply(s, 554, "5.5.1", "Error: this port does not speak TLS "
			    "first; use STARTTLS");
			session_quit(s, "TLS handshake on a plaintext port");
			return;
		}
		switch (getline_next(&s->in, SMTP_READ_LINE_MAX, &ln)) {
		case GETLINE_AGAIN:
			goto drained;
		case GETLINE_TOO_LONG:
			line_too_long(s);
			return;
		case GETLINE_OK:
			break;
		}
		s->line_span = ln.span;
		cmd_line(s, ln.p, ln.len, ln.end == LINE_END_CRLF);
		s->line_span = 0;
		buf_consume(&s->in, ln.span);
		if (s->busy == BUSY_NONE)
			session_restart_timer(s);

		if (s->state != SMTP_STATE_CLOSED &&
		    !(s->flags & SESS_F_QUITTING) &&
		    s->nerrors > s->cfg->max_errors) {
			log_info(s->id, "smtp too-many-errors errors=%u",
			    s->nerrors);
			reply(s, 421, "4.7.0", "%s Error: too many errors",
			    s->cfg->hostname);
			session_quit(s, "too many errors");
			return;
		}
	}
drained:
	if (s->state == SMTP_STATE_CLOSED || (s->flags & SESS_F_QUITTING) ||
	    s->state == SMTP_STATE_GREETING)
		return;
	if (s->busy != BUSY_NONE)
		return;
	if (s->flags & SESS_F_EOF) {
		const char *why = (s->state == SMTP_STATE_DATA ||
		    s->state == SMTP_STATE_BDAT) ?
		    "client disconnected during message" :
		    "client disconnected without QUIT";

		(void)conn_flush(&s->conn);
		smtp_session_close(s, why);
		return;
	}
	if (conn_flush(&s->conn) == CONN_ERR) {
		smtp_session_close(s, "write error");
		return;
	}
	conn_want_read(&s->conn, conn_out_pending(&s->conn) <= OUTPUT_HIGH_WATER);
}

static const char *
state_name(enum smtp_state st)
{
	static const char *names[] = {
		[SMTP_STATE_GREETING] = "greeting", [SMTP_STATE_REJECTED] = "rejected",
		[SMTP_STATE_INIT] = "init", [SMTP_STATE_HELO] = "helo",
		[SMTP_STATE_MAIL] = "mail", [SMTP_STATE_RCPT] = "rcpt",
		[SMTP_STATE_DATA] = "data", [SMTP_STATE_BDAT] = "bdat",
		[SMTP_STATE_CLOSED] = "closed",
	};

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/*
 * Every state change goes through here (OpenSMTPD smtp_enter_state).  A
 * closed session stays closed: a handler that runs on after its reply
 * closed the session (a hook's disconnect verdict, an output overflow)
 * cannot bring it back to life and out of the reaper's reach.
 */
void
session_enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == SMTP_STATE_CLOSED || s->state == st)
		return;
	log_debug(s->id, "smtp state %s -> %s", state_name(s->state),
	    state_name(st));
	s->state = st;
}

void
smtp_session_close(struct smtp_session *s, const char *reason)
{
	if (s->state == SMTP_STATE_CLOSED)
		return;
	log_debug(s->id, "smtp state %s -> closed", state_name(s->state));
	s->state = SMTP_STATE_CLOSED;
	s->close_reason = reason;
	ev_timer_stop(server.loop, &s->timer);
	ev_timer_stop(server.loop, &s->greet_timer);
	ev_timer_stop(server.loop, &s->delay_timer);
	/* No further input; unflushed output goes with the socket. */
	conn_want_read(&s->conn, false);
	if (s->busy == BUSY_HOOK && hook_impl != NULL)
		hook_impl->cancel(s);
	if (!s->close_queued) {
		s->close_queued = true;
		server_defer_close(s);
	}
}

/* The reaper: release what the session holds, then the disconnect hook. */
void
smtp_session_finish_close(struct smtp_session *s)
{
	/* Unless the client is gone already, let it read our last words. */
	s->conn.linger = !(s->flags & SESS_F_EOF);
	conn_close(&s->conn);
	buf_reset(&s->in);
	iplimit_release((struct sockaddr *)&s->peer);
	server.connections--;
	session_summary(s);
	/* A worker may still hold the transaction: it is freed at its end. */
	if (s->busy != BUSY_WORK) {
		tx_free(s->tx);
		s->tx = NULL;
	}
	if (hook_impl != NULL && hook_impl->has(HOOK_DISCONNECT)) {
		struct hook_verdict v;

		memset(&v, 0, sizeof(v));
		s->pending_hook = HOOK_DISCONNECT;
		session_ref(s);
		s->flags |= SESS_F_HOOK_CLOSE;
		if (hook_impl->run(s, HOOK_DISCONNECT, NULL, &v) == HOOK_DONE) {
			s->flags &= ~SESS_F_HOOK_CLOSE;
			s->refs--;
		}
	}
	maybe_free(s);
}

void
smtp_session_free(struct smtp_session *s)
{
	if (hook_impl != NULL)
		hook_impl->release(s);
	tx_free(s->tx);
	free(s->helo);
	free(s->pending_arg);
	free(s->greet_verdict);
	free(s->auth_user);
	free(s->auth_try_user);
	free(s->auth_authzid);
	if (s->auth_pass != NULL) {
		explicit_bzero(s->auth_pass, strlen(s->auth_pass));
		free(s->auth_pass);
	}
	buf_reset(&s->in);
	free(s);
}

const char *
smtp_session_protocol(const struct smtp_session *s)
{
	bool utf8 = s->tx != NULL && s->tx->opts.smtputf8;
	bool tls = s->flags & SESS_F_TLS;
	bool auth = s->flags & SESS_F_AUTH;

	if (s->lc->lmtp)
		return utf8 ? "UTF8LMTP" : "LMTP";
	if (!(s->flags & SESS_F_ESMTP))
		return "SMTP";
	if (utf8)
		return tls ? (auth ? "UTF8SMTPSA" : "UTF8SMTPS") :
		    (auth ? "UTF8SMTPA" : "UTF8SMTP");
	return tls ? (auth ? "ESMTPSA" : "ESMTPS") : (auth ? "ESMTPA" : "ESMTP");
}
