/*
 * smtp_session.h — one SMTP connection: state machine, transaction,
 * recipients.
 *
 * RFC 5321 (SMTP), RFC 2920 (PIPELINING), RFC 1870 (SIZE), RFC 6152
 * (8BITMIME), RFC 6531 (SMTPUTF8), RFC 2034/3463 (enhanced status codes),
 * RFC 3030 (CHUNKING/BDAT).
 *
 * Ownership: a session owns its conn, its input buffer, its transaction
 * (which owns the recipients and the spool file) and an opaque hook_state
 * owned by the hook implementation.  Sessions are freed only by the
 * server's reaper (server_defer_free), never inside their own callbacks.
 */
#ifndef LUASMTPD_SMTP_SESSION_H
#define LUASMTPD_SMTP_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include "config.h"
#include "net/client.h"
#include "net/conn.h"
#include "queue/spool.h"
#include "smtp/hook.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"
#include "message/hdrfilter.h"
#include "util/buf.h"

enum smtp_state {
	SMTP_STATE_GREETING,	/* banner not sent yet (connect hook, pause) */
	SMTP_STATE_REJECTED,	/* 554 greeting: only QUIT is useful now */
	SMTP_STATE_INIT,	/* banner sent, no HELO/EHLO yet */
	SMTP_STATE_HELO,	/* greeted, no transaction */
	SMTP_STATE_MAIL,	/* MAIL accepted */
	SMTP_STATE_RCPT,	/* at least one RCPT accepted */
	SMTP_STATE_DATA,	/* reading DATA content */
	SMTP_STATE_BDAT,	/* reading a BDAT chunk */
	SMTP_STATE_CLOSED,
};

/* Session flags. */
#define SESS_F_ESMTP		0x0001	/* EHLO (not HELO) */
#define SESS_F_EOF		0x0002	/* client closed its side */
#define SESS_F_QUITTING		0x0004	/* close once output is flushed */
#define SESS_F_EARLY_TALKER	0x0008	/* input before the banner */
#define SESS_F_GREET_WAIT	0x0010	/* greet_pause still running */
#define SESS_F_TLS		0x0020	/* TLS is active */
#define SESS_F_AUTH		0x0040	/* authenticated */
#define SESS_F_HOOK_CLOSE	0x0080	/* disconnect hook running */
#define SESS_F_STARTTLS		0x0100	/* handshake starts once 220 is out */
#define SESS_F_ILL_PIPELINING	0x0200	/* input right behind end of data */

/* What the session waits for besides the client. */
enum smtp_busy {
	BUSY_NONE,
	BUSY_HOOK,	/* a hook is pending */
	BUSY_WORK,	/* a worker thread holds the message (commit) */
	BUSY_TLS,	/* a TLS handshake is running */
	BUSY_DELAY,	/* an AUTH failure is being slowed down */
};

struct dkim_verify;
struct dkim_verify_result;

struct smtp_rcpt {
	char		*address;	/* after any rewrite */
	char		*original;	/* as the client sent it */
	char		*params;	/* raw ESMTP parameters, or NULL */
	/* Delivery outcome (0 while nothing was attempted). */
	int		 status;
	char		 ecode[12];
	char		*text;
};

struct smtp_tx {
	unsigned		 seq;
	char			 id[40];	/* "<session id>.<seq>" */
	/*
	 * Header fields added by hooks (CRLF lines, folded), in the order they
	 * were added: every delivery path sends them before the spool file's
	 * content, and the queue keeps them in the envelope.
	 */
	struct buf		 added;
	/*
	 * Message authentication while the message arrives (src/mailauth):
	 * the DKIM verifier and its result, and the filter that drops
	 * Authentication-Results claiming our authserv-id (RFC 8601 §5).
	 * dkim_wake(dkim_waiter) is called once the result is in (Lua's
	 * msg:dkim() waits that way; smtp/ does not know about tasks).
	 */
	struct dkim_verify	*dkim;
	struct dkim_verify_result *dkim_res;
	void			(*dkim_wake)(void *);
	void			*dkim_waiter;
	bool			 afilter_on;
	struct hdrfilter	 afilter;
	char			*sender;	/* "" for the null sender */
	char			*params;	/* raw MAIL parameters, or NULL */
	struct smtp_mail_opts	 opts;
	struct smtp_rcpt	*rcpts;
	size_t			 nrcpts;
	size_t			 caprcpts;
	struct smtp_rcpt	*pending;	/* RCPT whose hook is running */

	/* Message content. */
	bool			 bdat;		/* BDAT used in this transaction */
	bool			 bdat_last;	/* current chunk is the LAST one */
	uint64_t		 bdat_left;	/* bytes of the chunk still due */
	bool			 discard_chunk;	/* consume but drop (error) */
	bool			 spool_open;
	struct smtp_data	 dec;
	struct spool_file	 spool;
	uint64_t		 size;		/* message bytes received */
	/* A sticky error: the reply after the final dot or BDAT LAST. */
	int			 err_code;
	const char		*err_ecode;
	const char		*err_text;
	bool			 discard;	/* a hook said discard */
	char			 err_textbuf[SMTP_REPLY_TEXT_MAX + 1];
	char			 err_ecodebuf[12];
};

struct smtp_session {
	uint64_t			 id;
	char				 idstr[17];
	struct conn			 conn;
	struct buf			 in;
	ev_timer			 timer;		/* idle and linger */
	ev_timer			 greet_timer;	/* greet_pause */
	const struct config		*cfg;
	const struct listener_config	*lc;

	struct sockaddr_storage		 peer;
	struct sockaddr_storage		 local;
	char				 peer_ip[INET6_ADDRSTRLEN];
	int				 peer_port;
	char				 local_ip[INET6_ADDRSTRLEN];
	int				 local_port;

	enum smtp_state			 state;
	enum smtp_busy			 busy;
	enum hook_id			 pending_hook;
	unsigned			 flags;
	char				*helo;
	char				*pending_arg;	/* owned arg of a pending hook */
	struct smtp_tx			*tx;
	unsigned			 ntx;
	unsigned			 ncmds;
	unsigned			 nerrors;
	unsigned			 njunk;
	uint64_t			 bytes_in;
	const char			*close_reason;
	double				 started;
	/* For the summary line (smtp_summary.c). */
	uint64_t			 bytes_out;
	unsigned			 msgs_accepted;
	unsigned			 msgs_refused;
	double				 hook_wall;	/* seconds, all hooks */
	double				 hook_cpu;

	struct hook_verdict		*greet_verdict;	/* held during greet_pause */
	/*
	 * min_data_rate: when DATA or the current BDAT chunk began, and the
	 * raw bytes read since.  Kept on the session, not the transaction: a
	 * chunk read without one (refused, no MAIL) is bounded just the same.
	 */
	double				 data_started;
	uint64_t			 data_bytes;
	/* The BDAT chunk being read (RFC 3030). */
	uint64_t			 chunk_left;
	bool				 chunk_last;
	int				 chunk_err_code; /* refused: reply this */
	const char			*chunk_err_ecode;
	const char			*chunk_err_text;
	/* AUTH (smtp_auth.c) */
	ev_timer			 delay_timer;
	uint8_t				 auth_mech;
	uint8_t				 auth_step;	/* waiting for a response */
	unsigned			 auth_failures;
	char				*auth_user;	/* authenticated identity */
	char				*auth_try_user;	/* during the auth hook */
	char				*auth_pass;	/* during the auth hook */
	char				*auth_authzid;
	unsigned			 refs;		/* disconnect hook, worker */
	bool				 in_process;	/* session_process() runs */
	size_t				 line_span;	/* octets of the line being handled */
	bool				 close_queued;	/* on server.closing */
	bool				 queued_free;	/* on server.dead */
	void				*hook_state;	/* owned by hook_impl */
	struct smtp_session		*dead_next;
	struct smtp_session		*close_next;
};

/*
 * Create a session for a client the front end accepted (net/client.h):
 * takes ownership of its descriptors; its address is the client's for
 * every purpose (a PROXY header already applied).
 */
struct smtp_session *smtp_session_new(const struct net_client *,
	    const struct listener_config *);

/*
 * A pending hook finished.  Called by the hook implementation from an
 * event-loop callback.  May close the session (it is not freed here).
 */
void	smtp_session_hook_done(struct smtp_session *, const struct hook_verdict *);

/*
 * Close: safe to call from anywhere, including from inside the session's
 * own handlers and hooks (Redis' freeClientAsync).  The session enters
 * SMTP_STATE_CLOSED at once — it reads, replies and changes state no more,
 * its timers stop and a pending hook is abandoned — but the socket, the
 * transaction and the disconnect hook are dealt with by the server's
 * reaper after the current callbacks (smtp_session_finish_close), so no
 * caller up the stack ever sees freed memory.
 */
void	smtp_session_close(struct smtp_session *, const char *reason);
/* Only the server's reaper calls these two. */
void	smtp_session_finish_close(struct smtp_session *);
void	smtp_session_free(struct smtp_session *);

/*
 * Add a header field "name: value" to the transaction's message (see
 * smtp_tx.added).  Returns 0, or -1 with a reason in err (a bad name or
 * value, or the bound reached).
 */
int	smtp_tx_add_header(struct smtp_tx *, const char *name, size_t namelen,
	    const char *value, size_t valuelen, char *err, size_t errlen);

/* The same for a whole field already folded (CRLF lines), checked. */
int	smtp_tx_add_field_raw(struct smtp_tx *, const char *field, size_t len,
	    char *err, size_t errlen);

/* Record a recipient's delivery outcome (delivery code, Lua). */
void	smtp_rcpt_set_result(struct smtp_rcpt *, int status, const char *ecode,
	    const char *text);

/* The Received: protocol keyword (RFC 3848, RFC 6531 §3.7.3). */
const char *smtp_session_protocol(const struct smtp_session *);
/* The AUTH mechanism in use ("PLAIN", "LOGIN") or "". */
const char *auth_mech_name(const struct smtp_session *);

#endif
