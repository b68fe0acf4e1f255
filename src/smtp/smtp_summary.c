/*
 * smtp_summary.c — what a session did, for operators: the one summary line
 * at its end and the session and message metrics (metrics/metrics.h).
 *
 * The summary line keeps the event name and the first key of the line it
 * replaces ("smtp disconnect reason=..."), so scripts that grep it still
 * work, and adds the rest on the same line:
 *
 *   smtp disconnect reason="quit" outcome=quit ip=192.0.2.1 port=41234
 *     listener=127.0.0.1:25 helo=mx.example.test user=- tls=yes
 *     transactions=2 accepted=1 refused=1 commands=9 errors=1
 *     bytes_in=2048 bytes_out=512 duration=0.204 hook_wall=0.012345
 *     hook_cpu=0.003456
 *
 * accepted and refused count messages whose content arrived (after the
 * final dot or BDAT LAST), by their reply; hook_wall and hook_cpu add up
 * the hooks of the session that ended before the line (the disconnect
 * hook runs after it).  The outcome is the close reason's class, the
 * label of luasmtpd_sessions_total.
 *
 * SECURITY: helo and user come from the client: each is cut and escaped
 * as a bare token (log_token), so it cannot end early and forge a key.
 */
#include <stdio.h>
#include <string.h>

#include "metrics/metrics.h"
#include "server.h"
#include "smtp/smtp_internal.h"
#include "util/log.h"

/* Octets of the authenticated identity the line shows (then "..."). */
#define SUMMARY_USER_MAX	255

/* Every close reason of src/smtp/ (string constants), by outcome. */
static const struct {
	const char		*reason;
	enum m_session_outcome	 outcome;
} outcomes[] = {
	{ "quit", M_SESS_QUIT },
	{ "timeout", M_SESS_TIMEOUT },
	{ "TLS handshake timeout", M_SESS_TIMEOUT },
	{ "linger timeout", M_SESS_TIMEOUT },
	{ "client disconnected before greeting", M_SESS_DROPPED },
	{ "client disconnected while busy", M_SESS_DROPPED },
	{ "client disconnected without QUIT", M_SESS_DROPPED },
	{ "client disconnected during message", M_SESS_DROPPED },
	{ "read error", M_SESS_DROPPED },
	{ "write error", M_SESS_DROPPED },
	{ "hook disconnect", M_SESS_REJECTED },
	{ "connect refused", M_SESS_REJECTED },
	{ "early talker", M_SESS_REJECTED },
	{ "improper pipelining after DATA", M_SESS_REJECTED },
	{ "forbidden command", M_SESS_REJECTED },
	/* Everything else: limits, protocol errors, TLS, hook errors. */
};

static enum m_session_outcome
outcome_of(const char *reason)
{
	if (reason == NULL)
		return M_SESS_ERROR;
	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		if (strcmp(outcomes[i].reason, reason) == 0)
			return outcomes[i].outcome;
	return M_SESS_ERROR;
}

void
session_summary(struct smtp_session *s)
{
	static const char *names[] = {
		[M_SESS_QUIT] = "quit", [M_SESS_TIMEOUT] = "timeout",
		[M_SESS_DROPPED] = "dropped", [M_SESS_REJECTED] = "rejected",
		[M_SESS_ERROR] = "error",
	};
	enum m_session_outcome o = outcome_of(s->close_reason);
	char helo[LOG_EXCERPT_BUFSZ(SMTP_HELO_MAX)];
	char user[LOG_EXCERPT_BUFSZ(SUMMARY_USER_MAX)];

	metric_inc_l(M_SESSIONS, o);
	metric_gauge_add(M_CONNECTIONS_OPEN, -1);
	log_info(s->id, "smtp disconnect reason=\"%s\" outcome=%s ip=%s "
	    "port=%d listener=%s helo=%s user=%s tls=%s transactions=%u "
	    "accepted=%u refused=%u commands=%u errors=%u bytes_in=%llu "
	    "bytes_out=%llu duration=%.3f hook_wall=%.6f hook_cpu=%.6f",
	    s->close_reason ? s->close_reason : "-", names[o], s->peer_ip,
	    s->peer_port, s->lc->name,
	    s->helo != NULL ? log_token(helo, s->helo, SMTP_HELO_MAX) : "-",
	    s->auth_user != NULL ? log_token(user, s->auth_user,
	    SUMMARY_USER_MAX) : "-", (s->flags & SESS_F_TLS) ? "yes" : "no",
	    s->ntx, s->msgs_accepted, s->msgs_refused, s->ncmds, s->nerrors,
	    (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	    ev_now(server.loop) - s->started, s->hook_wall, s->hook_cpu);
}

void
session_count_message(struct smtp_session *s, enum m_message_outcome o)
{
	uint64_t size = s->tx != NULL ? s->tx->size : 0;

	metric_inc_l(M_MESSAGES, o);
	metric_add_l(M_MESSAGE_BYTES, o, size);
	if (o == M_MSG_ACCEPTED || o == M_MSG_DISCARDED)
		s->msgs_accepted++;
	else
		s->msgs_refused++;
}

void
session_count_reply(struct smtp_session *s, int code, size_t bytes)
{
	s->bytes_out += bytes;
	if (code >= 200 && code < 600)
		metric_inc_l(M_REPLIES, (unsigned)(code / 100 - 2));
}
