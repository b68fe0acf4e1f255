/*
 * smtp_internal.h — what the files of the SMTP engine share among
 * themselves (smtp_session.c, smtp_commands.c, smtp_message.c,
 * smtp_reply.c, smtp_tx.c).  Not for use outside src/smtp/.
 */
#ifndef LUASMTPD_SMTP_INTERNAL_H
#define LUASMTPD_SMTP_INTERNAL_H

#include "metrics/metrics.h"
#include "smtp/smtp_session.h"

/* Default replies of one hook stage, used when a verdict leaves them out. */
struct stage_replies {
	int		 ok_code;
	const char	*ok_ecode;
	const char	*ok_text;
	int		 rej_code;
	const char	*rej_ecode;
	const char	*rej_text;
	int		 tmp_code;
	const char	*tmp_ecode;
	const char	*tmp_text;
};

/* smtp_reply.c */
void	reply(struct smtp_session *, int code, const char *ecode,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	reply_multi(struct smtp_session *, int code, const char *ecode,
	    const char *const *lines, size_t n);
/*
 * Reply for a verdict at a stage.  Returns the verdict kind acted on:
 * ACCEPT (for DEFAULT too, unless deny_default), REJECT, TEMPFAIL (also
 * for ERROR) or DISCONNECT (the session is quitting).
 */
enum verdict_kind reply_verdict(struct smtp_session *, const struct hook_verdict *,
	    const struct stage_replies *, bool deny_default);
/*
 * The reply a refusing verdict (REJECT, DEFAULT denied, TEMPFAIL, ERROR)
 * gets at a stage, without sending it: its code, with ecode and *text
 * filled in (*text points into v or st).  BDAT gives it to every chunk.
 */
int	verdict_refusal(const struct hook_verdict *v,
	    const struct stage_replies *st, char ecode[12], const char **text);
/* Log a verdict that was not a plain accept. */
void	log_verdict(struct smtp_session *, enum hook_id, const struct hook_verdict *);

/* smtp_session.c */
void	session_enter_state(struct smtp_session *, enum smtp_state);
void	session_call_hook(struct smtp_session *, enum hook_id, char *arg);
void	session_quit(struct smtp_session *, const char *reason);
void	session_process(struct smtp_session *);
void	session_set_busy(struct smtp_session *, enum smtp_busy);
void	session_restart_timer(struct smtp_session *);
void	session_ref(struct smtp_session *);
void	session_unref(struct smtp_session *);

/* smtp_commands.c */
void	cmd_line(struct smtp_session *, const char *line, size_t len,
	    bool crlf);
void	cmd_hook_done(struct smtp_session *, enum hook_id,
	    const struct hook_verdict *);
void	cmd_send_greeting(struct smtp_session *, const struct hook_verdict *);

/* smtp_message.c */
size_t	message_consume(struct smtp_session *, const char *, size_t);
void	message_begin_data(struct smtp_session *);
void	message_begin_chunk(struct smtp_session *);
void	message_hook_done(struct smtp_session *, const struct hook_verdict *);
int	message_open_spool(struct smtp_session *);

/* smtp_auth.c */
bool	auth_offered(const struct smtp_session *);
void	cmd_auth(struct smtp_session *, const struct smtp_cmd *);
void	auth_line(struct smtp_session *, const char *, size_t);
/* End an AUTH exchange in progress (its credentials are wiped). */
void	auth_reset(struct smtp_session *);
void	auth_hook_done(struct smtp_session *, const struct hook_verdict *);

/* smtp_session.c: STARTTLS (the 220 is queued already) */
void	session_starttls(struct smtp_session *);

/* smtp_summary.c: the line at the end, and the counts behind it */
void	session_summary(struct smtp_session *);
/* A message's content arrived and got its final reply (or was queued). */
void	session_count_message(struct smtp_session *, enum m_message_outcome);
/* A reply line went out: bytes; code is 0 except on a reply's last line. */
void	session_count_reply(struct smtp_session *, int code, size_t bytes);

/* smtp_tx.c */
struct smtp_tx *tx_new(struct smtp_session *);
void	tx_free(struct smtp_tx *);
/* Free the transaction and return to the greeted state. */
void	tx_end(struct smtp_session *);
struct smtp_rcpt *rcpt_new(const char *address, const char *params);
void	rcpt_free(struct smtp_rcpt *);
void	tx_add_rcpt(struct smtp_tx *, struct smtp_rcpt *);

#endif
