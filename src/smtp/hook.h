/*
 * hook.h — how the SMTP engine asks for policy decisions.
 *
 * smtp/ never includes lua.h.  It calls the hook implementation through
 * struct hook_ops (filled by lua/lua_hooks.c), so the parser and the state
 * machine build and test without Lua.
 *
 * A hook either answers at once (HOOK_DONE, verdict filled) or later
 * (HOOK_PENDING): the implementation then calls smtp_session_hook_done()
 * from an event-loop callback, never from inside run().  While a hook is
 * pending the session reads no further commands.
 */
#ifndef LUASMTPD_HOOK_H
#define LUASMTPD_HOOK_H

#include <stdbool.h>

#include "util/limits.h"

struct smtp_session;

enum hook_id {
	HOOK_CONNECT,
	HOOK_HELO,
	HOOK_MAIL,
	HOOK_RCPT,
	HOOK_DATA,
	HOOK_MESSAGE,
	HOOK_RESET,
	HOOK_DISCONNECT,
	HOOK_VRFY,
	HOOK_AUTH,
	HOOK_COUNT
};

enum verdict_kind {
	VERDICT_DEFAULT,	/* the hook returned nothing: built-in default */
	VERDICT_ACCEPT,
	VERDICT_REJECT,		/* 5xx */
	VERDICT_TEMPFAIL,	/* 4xx */
	VERDICT_DISCONNECT,	/* reply (421 by default) and close */
	VERDICT_DISCARD,	/* accept, then drop the message */
	VERDICT_ERROR,		/* the hook failed: 451 4.3.0, logged */
};

struct hook_verdict {
	enum verdict_kind	kind;
	int			code;		/* 0: the stage's default */
	char			ecode[12];	/* "": the stage's default */
	char			text[SMTP_REPLY_TEXT_MAX + 1]; /* "": default */
	bool			has_rewrite;	/* rcpt: new recipient */
	char			rewrite[SMTP_PATH_MAX + 1];
};

#define HOOK_DONE	0
#define HOOK_PENDING	1

struct hook_ops {
	bool	(*has)(enum hook_id);
	/*
	 * Run hook id for s.  arg is the HELO name, sender, recipient or
	 * VRFY argument (NULL otherwise) and stays valid until the verdict.
	 */
	int	(*run)(struct smtp_session *, enum hook_id, const char *arg,
		    struct hook_verdict *);
	/* Abandon a pending hook: no smtp_session_hook_done() will follow. */
	void	(*cancel)(struct smtp_session *);
	/* The session is being freed: drop all per-session state. */
	void	(*release)(struct smtp_session *);
};

/* Set once at start-up by the hook implementation. */
extern const struct hook_ops *hook_impl;

const char	*hook_name(enum hook_id);

#endif
