/*
 * smtp_client_int.h — shared by smtp_client.c (life cycle, reading,
 * timers, outcomes), smtp_client_connect.c (targets, resolving,
 * connecting) and smtp_client_proto.c (the protocol state machine).
 * Nothing else includes it.
 */
#ifndef LUASMTPD_SMTP_CLIENT_INT_H
#define LUASMTPD_SMTP_CLIENT_INT_H

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "deliver/reply_parse.h"
#include "deliver/smtp_client.h"
#include "net/conn.h"

/*
 * The stages; each waits for exactly one thing, under the one timer.
 * ST_ENVELOPE waits for the oldest unanswered of MAIL, RCPT..., DATA.
 */
enum smtpc_stage {
	ST_START,	/* the kick-off timer (nothing may happen in start()) */
	ST_RESOLVE,	/* getaddrinfo on a worker thread */
	ST_CONNECT,	/* non-blocking connect */
	ST_GREETING,
	ST_EHLO,	/* EHLO or LHLO sent */
	ST_HELO,	/* the HELO fallback sent */
	ST_STARTTLS,
	ST_TLS,		/* handshake */
	ST_AUTH_PLAIN,	/* AUTH PLAIN <response> sent */
	ST_AUTH_PLAIN2,	/* the response again, after a 334 */
	ST_AUTH_LOGIN,	/* AUTH LOGIN sent */
	ST_AUTH_USER,	/* the user name sent */
	ST_AUTH_PASS,	/* the password sent */
	ST_ENVELOPE,	/* MAIL, RCPT..., DATA */
	ST_BODY,	/* streaming the message */
	ST_DOT,		/* the final reply (LMTP: one per accepted rcpt) */
	ST_DOT_EMPTY,	/* "." after a 354 with no recipient accepted */
	ST_QUIT,	/* outcome reported; QUIT sent */
	ST_DONE,	/* closed; freed by the reaper */
};

/* Per-recipient progress. */
#define RST_PENDING	0
#define RST_ACCEPTED	1	/* 2xx to RCPT, final reply due */
#define RST_DECIDED	2	/* res[i] is final */

struct resolve_job;

struct smtp_client {
	struct ev_loop		*loop;
	uint64_t		 sid;		/* session, for log lines */
	struct smtpc_target	 t;

	/* Options (strings owned). */
	enum smtpc_proto	 proto;
	char			*helo;
	enum smtpc_tls		 tls;
	bool			 verify;
	char			*verify_name;
	char			*ca_file;
	char			*auth_user;
	char			*auth_pass;	/* wiped before free */
	bool			 allow_plaintext_auth;
	double			 timeout;
	bool			 check_only;

	/* The message (strings owned). */
	char			*sender;
	char			**rcpts;
	size_t			 nrcpts;
	char			*path;
	char			*prefix;	/* sent before the file, owned */
	size_t			 prefix_len, prefix_off;
	int			 msgfd;		/* -1 until opened */
	uint64_t		 size;
	bool			 eightbit;
	bool			 need_utf8;

	/* Outcomes. */
	struct smtpc_result	*res;		/* nrcpts of them */
	uint8_t			*rst;		/* RST_* per recipient */
	size_t			 naccepted;
	size_t			 dot_next;	/* LMTP: next rcpt to look at */
	char			 error[SMTP_REPLY_TEXT_MAX + 1];
	smtpc_done_cb		 done;		/* NULL once called/cancelled */
	void			*arg;
	bool			 reported;

	/* Resolving and connecting. */
	struct resolve_job	*job;		/* in flight, or NULL */
	struct addrinfo		*ai;		/* owned (freeaddrinfo) */
	struct addrinfo		*ai_next;
	unsigned		 ntried;
	int			 fd;		/* before conn_init, or -1 */
	int			 given_fd;	/* start_fd's, or -1 */
	char			 last_err[200];
	ev_io			 cio;		/* connect completion */

	/* The connection. */
	bool			 have_conn;
	struct conn		 conn;
	ev_timer		 timer;		/* the current stage's */
	ev_timer		 reaper;	/* frees the client */
	enum smtpc_stage	 stage;
	struct reply_parser	 rp;
	struct reply_caps	 caps;
	bool			 tls_on;
	bool			 tls_tried;
	bool			 authed;

	/* Envelope (ST_ENVELOPE). */
	size_t			 env_total;	/* MAIL + RCPTs (+ DATA) */
	size_t			 env_sent;
	size_t			 env_answered;
	bool			 mail_failed;

	/* Body (ST_BODY). */
	bool			 body_eof;
	bool			 at_bol;
	unsigned char		 last;
};

/* smtp_client.c */
/* The socket is connected: make it the conn and wait for the greeting. */
void	smtpc_connected(struct smtp_client *, int fd);
void	smtpc_arm(struct smtp_client *, double default_secs);
/* Queue a command line (CRLF added); -1 if the output bound is reached. */
int	smtpc_send(struct smtp_client *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Flush; a write failure fails the attempt.  Returns the conn result. */
int	smtpc_flush(struct smtp_client *);
void	smtpc_decide(struct smtp_client *, size_t i, int code,
	    const char *ecode, const char *text);
/* Decide i from a server reply (a 421 becomes 451). */
void	smtpc_decide_reply(struct smtp_client *, size_t i, const struct reply *);
/*
 * Fail every recipient not yet decided with code/ecode and the formatted
 * text (also the attempt's error), report, then QUIT (quit) or close.
 */
void	smtpc_fail(struct smtp_client *, bool quit, int code, const char *ecode,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Report the outcomes (done) once, then send QUIT. */
void	smtpc_quit(struct smtp_client *);
/* Stop everything, close, and free at the next loop iteration. */
void	smtpc_close(struct smtp_client *);
const char *smtpc_stage_name(const struct smtp_client *);

/* smtp_client_connect.c */
void	smtpc_connect_init(struct smtp_client *);
/* Resolve (if needed) and connect; smtpc_connected() or smtpc_fail(). */
void	smtpc_connect(struct smtp_client *);
/* The connect timer fired: try the next address. */
void	smtpc_connect_timeout(struct smtp_client *);
/* Forget a resolver job in flight (it frees itself). */
void	smtpc_resolve_abandon(struct smtp_client *);

/* smtp_client_proto.c */
void	smtpc_proto_connected(struct smtp_client *);
/* A complete reply; more is true if input follows it in the same read. */
void	smtpc_proto_reply(struct smtp_client *, const struct reply *, bool more);
void	smtpc_proto_drain(struct smtp_client *);
double	smtpc_stage_timeout(const struct smtp_client *);

#endif
