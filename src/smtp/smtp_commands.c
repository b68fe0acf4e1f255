/*
 * smtp_commands.c — SMTP commands: check, hook, proceed.
 *
 * RFC 5321 §4.1.1 (commands), §4.1.4 (order), §4.3.2 (reply codes),
 * §4.5.3.1 (limits); RFC 1869 (EHLO), RFC 1870 (SIZE), RFC 6152, RFC 6531,
 * RFC 2034, RFC 2920, RFC 3030.
 *
 * Each command follows the OpenSMTPD shape: check syntax and state here,
 * ask the hook (session_call_hook), and act on the verdict in the
 * matching *_done function, which the hook glue calls either at once or
 * when an asynchronous hook finishes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"
#include "smtp/smtp_internal.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/xmalloc.h"

static const struct stage_replies st_helo = {
	0, NULL, NULL,
	550, "5.7.1", "Error: HELO/EHLO rejected",
	450, "4.7.1", "Error: HELO/EHLO temporarily rejected",
};
static const struct stage_replies st_mail = {
	250, "2.1.0", "Ok",
	550, "5.7.1", "Error: sender rejected",
	451, "4.7.1", "Error: sender temporarily rejected, try again later",
};
static const struct stage_replies st_rcpt = {
	250, "2.1.5", "Ok",
	554, "5.7.1", "Error: relay access denied",
	451, "4.7.1", "Error: recipient temporarily rejected, try again later",
};
static const struct stage_replies st_data = {
	0, NULL, NULL,
	554, "5.7.1", "Error: message refused",
	451, "4.7.1", "Error: message temporarily refused, try again later",
};
static const struct stage_replies st_vrfy = {
	250, "2.1.5", "Ok",
	550, "5.1.1", "Error: mailbox unavailable",
	450, "4.1.1", "Error: mailbox temporarily unavailable",
};
static const struct stage_replies st_reset = {
	250, "2.0.0", "Ok",
	250, "2.0.0", "Ok",
	250, "2.0.0", "Ok",
};

static bool
is_junk(enum smtp_verb v)
{
	return v == SMTP_VERB_NOOP || v == SMTP_VERB_RSET ||
	    v == SMTP_VERB_VRFY || v == SMTP_VERB_EXPN || v == SMTP_VERB_HELP;
}

/* Octets a command line may have, including CRLF (RFC 5321 §4.5.3.1.4). */
static size_t
line_limit(const struct smtp_session *s, enum smtp_verb v)
{
	if (v == SMTP_VERB_MAIL || v == SMTP_VERB_RCPT)
		return s->cfg->command_line_max + SMTP_PARAM_ALLOWANCE;
	if (v == SMTP_VERB_AUTH)
		return SMTP_AUTH_LINE_MAX;
	return s->cfg->command_line_max;
}

void
cmd_send_greeting(struct smtp_session *s, const struct hook_verdict *given)
{
	struct hook_verdict v;

	if (given == NULL) {
		if (s->greet_verdict == NULL)
			return;		/* the connect hook is still running */
		v = *s->greet_verdict;
	} else {
		v = *given;
	}
	free(s->greet_verdict);
	s->greet_verdict = NULL;

	switch (v.kind) {
	case VERDICT_ERROR:
		reply(s, 421, "4.3.0", "%s Error: temporary local problem, try "
		    "again later", s->cfg->hostname);
		session_quit(s, "connect hook error");
		return;
	case VERDICT_TEMPFAIL:
	case VERDICT_DISCONNECT:
		reply(s, v.code && v.code / 100 == 4 ? v.code : 421,
		    v.ecode[0] ? v.ecode : "4.7.0", "%s %s", s->cfg->hostname,
		    v.text[0] ? v.text : "Service not available, closing");
		session_quit(s, "connect refused");
		return;
	case VERDICT_REJECT:
		/*
		 * RFC 5321 §3.1: a 554 greeting; the client should QUIT, and
		 * anything else gets 503 until it does.
		 */
		reply(s, v.code ? v.code : 554, v.ecode[0] ? v.ecode : "5.7.1",
		    "%s %s", s->cfg->hostname,
		    v.text[0] ? v.text : "Error: connection refused");
		session_enter_state(s, SMTP_STATE_REJECTED);
		break;
	default:
		/* RFC 2034 §3: no enhanced code on the greeting. */
		reply(s, 220, NULL, "%s %s", s->cfg->hostname,
		    v.text[0] ? v.text : "ESMTP luasmtpd");
		session_enter_state(s, SMTP_STATE_INIT);
		break;
	}
	conn_want_read(&s->conn, true);
	session_process(s);
}

static void
connect_done(struct smtp_session *s, const struct hook_verdict *v)
{
	log_verdict(s, HOOK_CONNECT, v);
	if (s->flags & SESS_F_GREET_WAIT) {
		/* greet_pause still running: the timer sends it. */
		s->greet_verdict = xmalloc(sizeof(*v));
		*s->greet_verdict = *v;
		return;
	}
	cmd_send_greeting(s, v);
}

/* RFC 5321 §4.1.4: EHLO/HELO and RSET discard the transaction. */
static void
reset_transaction(struct smtp_session *s)
{
	tx_end(s);
}

static void
cmd_helo(struct smtp_session *s, const struct smtp_cmd *cmd, bool esmtp)
{
	struct smtp_err err;

	if (smtp_parse_helo(cmd->arg, cmd->arglen, &err) != 0) {
		reply(s, err.code, err.ecode, "%s", err.text);
		return;
	}
	reset_transaction(s);
	if (esmtp)
		s->flags |= SESS_F_ESMTP;
	else
		s->flags &= ~SESS_F_ESMTP;
	session_call_hook(s, HOOK_HELO, xstrndup(cmd->arg, cmd->arglen));
}

static void
send_ehlo(struct smtp_session *s)
{
	const char *lines[16];
	char first[SMTP_REPLY_TEXT_MAX], size[48];
	size_t n = 0;

	snprintf(first, sizeof(first), "%s", s->cfg->hostname);
	lines[n++] = first;
	lines[n++] = "PIPELINING";
	snprintf(size, sizeof(size), "SIZE %zu", s->cfg->max_message_size);
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	if (s->cfg->smtputf8)
		lines[n++] = "SMTPUTF8";
	lines[n++] = "ENHANCEDSTATUSCODES";
	if (s->cfg->chunking)
		lines[n++] = "CHUNKING";
	if (s->lc->tls == TLS_STARTTLS && !(s->flags & SESS_F_TLS) &&
	    tls_server_ready())
		lines[n++] = "STARTTLS";
	/* RFC 4954 / security: AUTH only under TLS or on a trusted listener. */
	if (auth_offered(s) && !(s->flags & SESS_F_AUTH))
		lines[n++] = "AUTH PLAIN LOGIN";
	lines[n++] = "HELP";
	/* RFC 2034 §3: no enhanced codes on the EHLO reply. */
	reply_multi(s, 250, NULL, lines, n);
}

static void
helo_done(struct smtp_session *s, const struct hook_verdict *v)
{
	log_verdict(s, HOOK_HELO, v);
	if (reply_verdict(s, v, &st_helo, false) != VERDICT_ACCEPT) {
		/* A refused greeting leaves the client ungreeted. */
		free(s->helo);
		s->helo = NULL;
		s->flags &= ~SESS_F_ESMTP;
		session_enter_state(s, SMTP_STATE_INIT);
		return;
	}
	free(s->helo);
	s->helo = s->pending_arg;
	s->pending_arg = NULL;
	session_enter_state(s, SMTP_STATE_HELO);
	if (s->flags & SESS_F_ESMTP)
		send_ehlo(s);
	else
		reply(s, 250, NULL, "%s", s->cfg->hostname);
}

static void
cmd_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_path path;
	struct smtp_params params;
	struct smtp_err err;
	struct smtp_ext ext;
	struct smtp_mail_opts opts;

	if (s->state == SMTP_STATE_INIT) {
		reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (s->tx != NULL) {
		reply(s, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (s->lc->require_tls && !(s->flags & SESS_F_TLS)) {
		/* RFC 3207 §4: the "refuse unencrypted sessions" policy. */
		reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	if (s->lc->require_auth && !(s->flags & SESS_F_AUTH)) {
		reply(s, 530, "5.7.0", "Authentication required");
		return;
	}
	if (s->ntx >= s->cfg->max_transactions) {
		reply(s, 421, "4.7.0", "%s Error: too many transactions in one "
		    "session", s->cfg->hostname);
		session_quit(s, "too many transactions");
		return;
	}
	if (smtp_parse_path_arg(cmd->arg, cmd->arglen, SMTP_PATH_REVERSE, &path,
	    &params, &err) != 0) {
		reply(s, err.code, err.ecode, "%s", err.text);
		return;
	}
	/* Parameters exist only for extensions this EHLO advertised. */
	memset(&ext, 0, sizeof(ext));
	if (s->flags & SESS_F_ESMTP) {
		ext.size = true;
		ext.eightbitmime = true;
		ext.smtputf8 = s->cfg->smtputf8;
		ext.auth = auth_offered(s);
	}
	if (smtp_parse_mail_params(&params, &ext, &opts, &err) != 0) {
		reply(s, err.code, err.ecode, "%s", err.text);
		return;
	}
	if (opts.has_size && opts.size > s->cfg->max_message_size) {
		reply(s, 552, "5.3.4", "Error: message size exceeds fixed "
		    "maximum message size");
		return;
	}
	if (path.utf8 && !opts.smtputf8) {
		reply(s, 553, "5.6.7", "Error: the address is not ASCII and "
		    "SMTPUTF8 was not requested");
		return;
	}
	s->tx = tx_new(s);
	s->tx->sender = xstrdup(path.mailbox);
	s->tx->opts = opts;
	if (params.n > 0)
		s->tx->params = xstrndup(params.raw, params.rawlen);
	session_enter_state(s, SMTP_STATE_MAIL);
	session_call_hook(s, HOOK_MAIL, xstrdup(path.mailbox));
}

static void
mail_done(struct smtp_session *s, const struct hook_verdict *v)
{
	log_verdict(s, HOOK_MAIL, v);
	if (reply_verdict(s, v, &st_mail, false) != VERDICT_ACCEPT) {
		tx_end(s);
		return;
	}
	/* The "smtp message" line says it all at info level. */
	if (log_enabled(LOG_LVL_DEBUG)) {
		char from[LOG_ADDR_BUFSZ];

		log_debug(s->id, "smtp mail tx=%s from=<%s> size=%llu",
		    s->tx->id, log_token(from, s->tx->sender, 256),
		    (unsigned long long)s->tx->opts.size);
	}
}

static void
cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_path path;
	struct smtp_params params;
	struct smtp_err err;

	if (s->tx == NULL) {
		reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (s->tx->bdat) {
		reply(s, 503, "5.5.1", "Error: RCPT after BDAT");
		return;
	}
	if (smtp_parse_path_arg(cmd->arg, cmd->arglen, SMTP_PATH_FORWARD, &path,
	    &params, &err) != 0) {
		reply(s, err.code, err.ecode, "%s", err.text);
		return;
	}
	if (params.n > 0) {
		/* No RCPT extension (DSN NOTIFY/ORCPT) is advertised. */
		reply(s, 555, "5.5.4", "Error: unsupported RCPT parameter");
		return;
	}
	if (path.utf8 && !s->tx->opts.smtputf8) {
		reply(s, 553, "5.6.7", "Error: the address is not ASCII and "
		    "SMTPUTF8 was not requested");
		return;
	}
	if (s->tx->nrcpts >= s->cfg->max_recipients) {
		/* RFC 5321 §4.5.3.1.10: 452, the client sends the rest later. */
		reply(s, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	rcpt_free(s->tx->pending);
	s->tx->pending = rcpt_new(path.mailbox, NULL);
	session_call_hook(s, HOOK_RCPT, xstrdup(path.mailbox));
}

static void
rcpt_done(struct smtp_session *s, const struct hook_verdict *v)
{
	struct smtp_tx *tx = s->tx;
	struct smtp_rcpt *r = tx->pending;
	char to[LOG_ADDR_BUFSZ], addr[LOG_ADDR_BUFSZ];
	enum verdict_kind k;

	tx->pending = NULL;
	log_verdict(s, HOOK_RCPT, v);
	if (v->kind == VERDICT_DEFAULT) {
		/* No hook accepted it: we are not an open relay. */
		k = reply_verdict(s, v, &st_rcpt, true);
	} else {
		if ((v->kind == VERDICT_ACCEPT || v->kind == VERDICT_DISCARD) &&
		    v->has_rewrite) {
			free(r->address);
			r->address = xstrdup(v->rewrite);
		}
		k = reply_verdict(s, v, &st_rcpt, false);
	}
	if (k != VERDICT_ACCEPT) {
		log_info(s->id, "smtp rcpt-refused tx=%s to=<%s>", tx->id,
		    log_token(to, r->original, 256));
		rcpt_free(r);
		return;
	}
	if (v->kind == VERDICT_DISCARD)
		tx->discard = true;
	log_info(s->id, "smtp rcpt tx=%s to=<%s> address=<%s>", tx->id,
	    log_token(to, r->original, 256), log_token(addr, r->address, 256));
	tx_add_rcpt(tx, r);
	session_enter_state(s, SMTP_STATE_RCPT);
}

static void
cmd_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (cmd->arglen != 0) {
		reply(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (s->tx == NULL) {
		reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (s->tx->bdat) {
		reply(s, 503, "5.5.1", "Error: DATA after BDAT");
		return;
	}
	if (s->tx->nrcpts == 0) {
		/* RFC 5321 §3.3: no valid recipients. */
		reply(s, 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	session_call_hook(s, HOOK_DATA, NULL);
}

static void
data_done(struct smtp_session *s, const struct hook_verdict *v)
{
	log_verdict(s, HOOK_DATA, v);
	if (s->tx->bdat) {
		struct smtp_tx *tx = s->tx;
		const char *text;

		switch (v->kind) {
		case VERDICT_DISCONNECT:
			/* The chunk behind the command is never read. */
			(void)reply_verdict(s, v, &st_data, false);
			return;
		case VERDICT_REJECT:
		case VERDICT_TEMPFAIL:
		case VERDICT_ERROR:
			/* Refused: every chunk is read and gets this reply. */
			tx->err_code = verdict_refusal(v, &st_data,
			    tx->err_ecodebuf, &text);
			snprintf(tx->err_textbuf, sizeof(tx->err_textbuf), "%s",
			    text);
			tx->err_ecode = tx->err_ecodebuf;
			tx->err_text = tx->err_textbuf;
			break;
		case VERDICT_DISCARD:
			tx->discard = true;
			break;
		default:
			break;
		}
		message_begin_chunk(s);
		return;
	}
	if (reply_verdict(s, v, &st_data, false) != VERDICT_ACCEPT)
		return;
	if (v->kind == VERDICT_DISCARD)
		s->tx->discard = true;
	message_begin_data(s);
}

static void
cmd_bdat(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_err err;
	uint64_t size;
	bool last;

	if (smtp_parse_bdat(cmd->arg, cmd->arglen, &size, &last, &err) != 0) {
		/* Without a size we cannot find the next command: hang up. */
		reply(s, err.code, err.ecode, "%s", err.text);
		session_quit(s, "bad BDAT syntax");
		return;
	}
	/*
	 * SECURITY: a chunk that would take the message past the size limit
	 * by itself is not read: RFC 3030 asks us to read a refused chunk to
	 * stay in step, but reading gigabytes to refuse them helps nobody.
	 */
	if (size > s->cfg->max_message_size - (s->tx != NULL &&
	    s->tx->size < s->cfg->max_message_size ? s->tx->size : 0)) {
		log_info(s->id, "smtp bdat-too-large size=%llu",
		    (unsigned long long)size);
		reply(s, 552, "5.3.4", "Error: message size exceeds fixed "
		    "maximum message size");
		reply(s, 421, "4.7.0", "%s Error: closing connection",
		    s->cfg->hostname);
		session_quit(s, "BDAT chunk too large");
		return;
	}
	s->chunk_left = size;
	s->chunk_last = last;
	s->chunk_err_code = 0;
	if (!s->cfg->chunking || !(s->flags & SESS_F_ESMTP)) {
		s->chunk_err_code = 503;
		s->chunk_err_ecode = "5.5.1";
		s->chunk_err_text = "Error: BDAT not available, send EHLO first";
	} else if (s->tx == NULL) {
		s->chunk_err_code = 503;
		s->chunk_err_ecode = "5.5.1";
		s->chunk_err_text = "Error: need MAIL command";
	} else if (s->tx->nrcpts == 0) {
		s->chunk_err_code = 554;
		s->chunk_err_ecode = "5.5.1";
		s->chunk_err_text = "Error: no valid recipients";
	} else if (s->tx->spool_open || s->tx->err_code != 0) {
		/* A later chunk of a message under way. */
		message_begin_chunk(s);
		return;
	}
	if (s->chunk_err_code != 0) {
		/* RFC 3030 §2: the chunk is read even when refused. */
		message_begin_chunk(s);
		return;
	}
	s->tx->bdat = true;
	session_call_hook(s, HOOK_DATA, NULL);
}

static void
cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (cmd->arglen == 0) {
		reply(s, 501, "5.5.4", "Syntax: VRFY address");
		return;
	}
	session_call_hook(s, HOOK_VRFY, xstrndup(cmd->arg, cmd->arglen));
}

static void
vrfy_done(struct smtp_session *s, const struct hook_verdict *v)
{
	log_verdict(s, HOOK_VRFY, v);
	if (v->kind == VERDICT_DEFAULT) {
		/* RFC 5321 §3.5.3: 252 when we do not verify. */
		reply(s, 252, "2.0.0", "Cannot VRFY user, but will accept "
		    "message and attempt delivery");
		return;
	}
	(void)reply_verdict(s, v, &st_vrfy, false);
}

static void
cmd_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (s->lc->tls != TLS_STARTTLS || !tls_server_ready()) {
		reply(s, 502, "5.5.1", "Error: command not implemented");
		return;
	}
	if (s->flags & SESS_F_TLS) {
		reply(s, 503, "5.5.1", "Error: TLS is already active");
		return;
	}
	if (cmd->arglen != 0) {
		reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (s->tx != NULL) {
		reply(s, 503, "5.5.1", "Error: MAIL transaction in progress");
		return;
	}
	reply(s, 220, "2.0.0", "Ready to start TLS");
	session_starttls(s);
}

static void
send_help(struct smtp_session *s)
{
	reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET "
	    "NOOP QUIT VRFY HELP; see RFC 5321");
}

void
cmd_hook_done(struct smtp_session *s, enum hook_id id,
    const struct hook_verdict *v)
{
	switch (id) {
	case HOOK_CONNECT:
		connect_done(s, v);
		break;
	case HOOK_HELO:
		helo_done(s, v);
		break;
	case HOOK_MAIL:
		mail_done(s, v);
		break;
	case HOOK_RCPT:
		rcpt_done(s, v);
		break;
	case HOOK_DATA:
		data_done(s, v);
		break;
	case HOOK_MESSAGE:
		message_hook_done(s, v);
		break;
	case HOOK_RESET:
		(void)reply_verdict(s, v, &st_reset, false);
		break;
	case HOOK_VRFY:
		vrfy_done(s, v);
		break;
	case HOOK_AUTH:
		auth_hook_done(s, v);
		break;
	case HOOK_DISCONNECT:
	case HOOK_COUNT:
		break;
	}
	free(s->pending_arg);
	s->pending_arg = NULL;
}

void
cmd_line(struct smtp_session *s, const char *line, size_t len, bool crlf)
{
	struct smtp_cmd cmd;
	char excerpt[LOG_EXCERPT_BUFSZ(LOG_EXCERPT_MAX)];
	bool bare_cr = memchr(line, '\r', len) != NULL;

	if ((!crlf && s->cfg->bare_lf == BARE_LF_REJECT) || bare_cr) {
		int code = s->cfg->bare_lf_reject_code;

		/* SECURITY: an AUTH response line is a credential. */
		log_info(s->id, "smtp bare-newline kind=%s line=\"%s\"",
		    bare_cr ? "CR" : "LF", s->auth_step != 0 ? "(AUTH response)" :
		    log_excerpt(excerpt, line, len, LOG_EXCERPT_MAX));
		reply(s, code, "5.5.2", "Error: bare <%s> received",
		    bare_cr ? "CR" : "LF");
		/*
		 * RFC 4954 §4: a refused response ends the AUTH command;
		 * otherwise the next command would be read as a credential.
		 */
		if (s->auth_step != 0)
			auth_reset(s);
		if (code == 521)
			session_quit(s, "bare newline");
		return;
	}
	if (s->auth_step != 0) {
		/* A response to an AUTH challenge, not a command. */
		if (len + 2 > SMTP_AUTH_LINE_MAX) {
			reply(s, 500, "5.5.2", "Error: line too long");
			return;
		}
		auth_line(s, line, len);
		return;
	}
	if (++s->ncmds > s->cfg->max_commands) {
		reply(s, 421, "4.7.0", "%s Error: too many commands",
		    s->cfg->hostname);
		session_quit(s, "too many commands");
		return;
	}
	smtp_parse_command(line, len, &cmd);
	/* SECURITY: AUTH lines carry credentials: log the verb only. */
	log_debug(s->id, "smtp command line=\"%s\"", cmd.verb == SMTP_VERB_AUTH ?
	    "AUTH ..." : log_excerpt(excerpt, line, len, LOG_EXCERPT_MAX));

	if (len + 2 > line_limit(s, cmd.verb)) {
		reply(s, 500, "5.5.2", "Error: line too long");
		return;
	}
	if (cmd.verb == SMTP_VERB_FORBIDDEN) {
		/* Postfix smtpd_forbidden_commands: an HTTP client or worse. */
		log_info(s->id, "smtp forbidden-command line=\"%s\"",
		    log_excerpt(excerpt, line, len, 40));
		reply(s, 221, "2.7.0", "Error: this is an SMTP server, goodbye");
		session_quit(s, "forbidden command");
		return;
	}
	if (is_junk(cmd.verb) && ++s->njunk > s->cfg->max_junk_commands)
		s->nerrors++;	/* Postfix smtpd_junk_command_limit */

	if (s->state == SMTP_STATE_REJECTED && cmd.verb != SMTP_VERB_QUIT) {
		reply(s, 503, "5.5.1", "Error: connection refused, send QUIT");
		return;
	}

	switch (cmd.verb) {
	case SMTP_VERB_EHLO:
		cmd_helo(s, &cmd, true);
		break;
	case SMTP_VERB_HELO:
		cmd_helo(s, &cmd, false);
		break;
	case SMTP_VERB_MAIL:
		cmd_mail(s, &cmd);
		break;
	case SMTP_VERB_RCPT:
		cmd_rcpt(s, &cmd);
		break;
	case SMTP_VERB_DATA:
		cmd_data(s, &cmd);
		break;
	case SMTP_VERB_BDAT:
		cmd_bdat(s, &cmd);
		break;
	case SMTP_VERB_RSET:
		if (cmd.arglen != 0) {
			reply(s, 501, "5.5.4", "Syntax: RSET");
			break;
		}
		reset_transaction(s);
		session_call_hook(s, HOOK_RESET, NULL);
		break;
	case SMTP_VERB_NOOP:
		reply(s, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_QUIT:
		reply(s, 221, "2.0.0", "Bye");
		session_quit(s, "quit");
		break;
	case SMTP_VERB_VRFY:
		cmd_vrfy(s, &cmd);
		break;
	case SMTP_VERB_EXPN:
		reply(s, 502, "5.5.1", "Error: command not implemented");
		break;
	case SMTP_VERB_HELP:
		send_help(s);
		break;
	case SMTP_VERB_STARTTLS:
		cmd_starttls(s, &cmd);
		break;
	case SMTP_VERB_AUTH:
		cmd_auth(s, &cmd);
		break;
	case SMTP_VERB_LHLO:
	case SMTP_VERB_UNKNOWN:
	default:
		log_info(s->id, "smtp unknown-command line=\"%s\"",
		    log_excerpt(excerpt, line, len, 40));
		reply(s, 500, "5.5.1", "Error: command not recognized");
		break;
	}
}
