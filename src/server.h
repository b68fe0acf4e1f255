/*
 * server.h — process-wide state: the loop, the configuration, connection
 * counts, session ids and the deferred-free queue.
 */
#ifndef LUASMTPD_SERVER_H
#define LUASMTPD_SERVER_H

#include <ev.h>
#include <stdint.h>

#include "config.h"

struct http_client;
struct kv;
struct dns_ctx;
struct smtp_session;

struct server {
	struct ev_loop		*loop;
	const struct config	*cfg;
	unsigned		 connections;	/* open sessions */
	uint64_t		 next_session;	/* random base + counter */
	struct smtp_session	*closing;	/* to close after callbacks */
	struct smtp_session	*dead;		/* to free after callbacks */
	ev_prepare		 reaper;
	/* Policy clients of the hooks, opened by main.c; NULL when unused. */
	struct kv		*kv;		/* luasmtpd.kv */
	struct http_client	*http;		/* luasmtpd.http */
	/* The resolver of the Lua bindings (luasmtpd.dns, luasmtpd.spf);
	 * made by main() once the loop and the pools exist. */
	struct dns_ctx		*dns;
	/* Called by the reaper after each session is freed (--stdio's end). */
	void			(*on_session_freed)(void);
};

extern struct server server;

void		server_init(struct ev_loop *, const struct config *);
uint64_t	server_new_session_id(void);
/* Queue a session to close (smtp_session_close) or to free, after the
 * current callbacks. */
void		server_defer_close(struct smtp_session *);
void		server_defer_free(struct smtp_session *);

#endif
