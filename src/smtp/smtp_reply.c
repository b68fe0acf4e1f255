/*
 * smtp_reply.c — reply formatting and verdict-to-reply mapping.
 *
 * RFC 5321 §4.2 (reply lines), RFC 2034 §3 and RFC 3463 (enhanced status
 * codes on every reply except the greeting and the HELO/EHLO replies).
 *
 * SECURITY: a reply line never contains CR or LF other than its own
 * terminator, whatever the hook or the client supplied; text is cut to
 * SMTP_REPLY_TEXT_MAX.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp/smtp_internal.h"
#include "util/log.h"

#define REPLY_LINE_MAX	(SMTP_REPLY_TEXT_MAX + 64)

static void
send_line(struct smtp_session *s, int code, char sep, const char *ecode,
    const char *text)
{
	char line[REPLY_LINE_MAX];
	int n;

	if (ecode != NULL && ecode[0] != '\0')
		n = snprintf(line, sizeof(line) - 2, "%03d%c%s %s", code, sep,
		    ecode, text);
	else
		n = snprintf(line, sizeof(line) - 2, "%03d%c%s", code, sep, text);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	for (int i = 0; i < n; i++)
		if (line[i] == '\r' || line[i] == '\n')
			line[i] = ' ';
	/* Drop a trailing blank from an empty text ("250 "). */
	while (n > 4 && line[n - 1] == ' ')
		n--;
	line[n++] = '\r';
	line[n++] = '\n';
	if (conn_send(&s->conn, line, (size_t)n) != 0) {
		/* The client does not read its replies: give up on it. */
		log_warn(s->id, "smtp output-overflow bytes=%zu",
		    conn_out_pending(&s->conn));
		smtp_session_close(s, "output overflow");
		return;
	}
	session_count_reply(s, sep == ' ' ? code : 0, (size_t)n);
	if (log_enabled(LOG_LVL_DEBUG)) {
		/* Replies may quote the client (a hook's text). */
		char ex[LOG_EXCERPT_BUFSZ(REPLY_LINE_MAX)];

		log_debug(s->id, "smtp reply line=\"%s\"",
		    log_excerpt(ex, line, (size_t)n - 2, REPLY_LINE_MAX));
	}
	/* Error replies count towards max_errors (RFC 5321 §4.3.2 spirit). */
	if (sep == ' ' && code >= 400 && code != 421 && code != 452)
		s->nerrors++;
}

void
reply(struct smtp_session *s, int code, const char *ecode, const char *fmt, ...)
{
	char text[SMTP_REPLY_TEXT_MAX + 1];
	va_list ap;

	if (s->state == SMTP_STATE_CLOSED)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	send_line(s, code, ' ', ecode, text);
}

void
reply_multi(struct smtp_session *s, int code, const char *ecode,
    const char *const *lines, size_t n)
{
	for (size_t i = 0; i < n && s->state != SMTP_STATE_CLOSED; i++)
		send_line(s, code, i + 1 < n ? '-' : ' ', ecode, lines[i]);
}

/* The enhanced code for code: the stage's default, in code's class. */
static void
derive_ecode(char out[12], int code, const char *given, const char *def)
{
	if (given != NULL && given[0] != '\0') {
		snprintf(out, 12, "%s", given);
		return;
	}
	snprintf(out, 12, "%s", def != NULL ? def : "0.0.0");
	if (code >= 200 && code < 600 && code / 100 != 3)
		out[0] = (char)('0' + code / 100);
}

int
verdict_refusal(const struct hook_verdict *v, const struct stage_replies *st,
    char ecode[12], const char **text)
{
	int code;

	switch (v->kind) {
	case VERDICT_REJECT:
	case VERDICT_DEFAULT:
		code = v->code ? v->code : st->rej_code;
		derive_ecode(ecode, code, v->ecode, st->rej_ecode);
		*text = v->text[0] != '\0' ? v->text : st->rej_text;
		return code;
	case VERDICT_TEMPFAIL:
		code = v->code ? v->code : st->tmp_code;
		derive_ecode(ecode, code, v->ecode, st->tmp_ecode);
		*text = v->text[0] != '\0' ? v->text : st->tmp_text;
		return code;
	default:
		/* The hook failed; its traceback is in the log already. */
		snprintf(ecode, 12, "4.3.0");
		*text = "Error: temporary local problem, try again later";
		return 451;
	}
}

enum verdict_kind
reply_verdict(struct smtp_session *s, const struct hook_verdict *v,
    const struct stage_replies *st, bool deny_default)
{
	char ecode[12];
	const char *text;
	int code;

	switch (v->kind) {
	case VERDICT_ACCEPT:
	case VERDICT_DISCARD:
	accept:
		if (st->ok_code == 0)
			return VERDICT_ACCEPT;	/* the caller replies */
		text = v->text[0] != '\0' ? v->text : st->ok_text;
		reply(s, st->ok_code, st->ok_ecode, "%s", text);
		return VERDICT_ACCEPT;
	case VERDICT_DEFAULT:
		if (!deny_default)
			goto accept;
		/* FALLTHROUGH */
	case VERDICT_REJECT:
		code = verdict_refusal(v, st, ecode, &text);
		reply(s, code, ecode, "%s", text);
		return VERDICT_REJECT;
	case VERDICT_TEMPFAIL:
	case VERDICT_ERROR:
		code = verdict_refusal(v, st, ecode, &text);
		reply(s, code, ecode, "%s", text);
		return VERDICT_TEMPFAIL;
	case VERDICT_DISCONNECT:
		code = v->code ? v->code : 421;
		derive_ecode(ecode, code, v->ecode, "4.7.0");
		text = v->text[0] != '\0' ? v->text : "Error: closing connection";
		reply(s, code, ecode, "%s %s", s->cfg->hostname, text);
		session_quit(s, "hook disconnect");
		return VERDICT_DISCONNECT;
	}
	return VERDICT_REJECT;
}

void
log_verdict(struct smtp_session *s, enum hook_id id, const struct hook_verdict *v)
{
	static const char *names[] = {
		[VERDICT_DEFAULT] = "default", [VERDICT_ACCEPT] = "accept",
		[VERDICT_REJECT] = "reject", [VERDICT_TEMPFAIL] = "tempfail",
		[VERDICT_DISCONNECT] = "disconnect", [VERDICT_DISCARD] = "discard",
		[VERDICT_ERROR] = "error",
	};

	/* Acceptance is in the "smtp rcpt"/"smtp message" lines already. */
	if (v->kind == VERDICT_ACCEPT || v->kind == VERDICT_DEFAULT ||
	    v->kind == VERDICT_DISCARD)
		return;
	{
		char ex[LOG_EXCERPT_BUFSZ(SMTP_REPLY_TEXT_MAX)];

		log_info(s->id, "hook verdict hook=%s verdict=%s code=%d "
		    "text=\"%s\"", hook_name(id), names[v->kind], v->code,
		    log_excerpt(ex, v->text, strlen(v->text),
		    SMTP_REPLY_TEXT_MAX));
	}
}
