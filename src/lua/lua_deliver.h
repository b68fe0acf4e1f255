/*
 * lua_deliver.h — shared by the delivery bindings (lua_deliver*.c).
 *
 * Every delivery target reports the same way: one outcome per recipient,
 * recorded on the transaction when the delivery ends (smtp_rcpt_set_result,
 * so the core knows what is delivered and the queue can take the rest, even
 * if the hook is abandoned right after), logged with the session id,
 * target, recipient and outcome, and returned to Lua (by the binding's
 * collect step, inside the hook) as
 *
 *   { { index = 1, address = "a@x", code = 250, ecode = "2.0.0",
 *       text = "...", status = "delivered" | "tempfail" | "reject" }, ...,
 *     delivered = n, tempfail = n, reject = n, error = "..." or nil }
 *
 * `error` describes a failure that hit the whole delivery (connection
 * refused, timeout); its recipients then carry 4xx outcomes.
 */
#ifndef LUASMTPD_LUA_DELIVER_H
#define LUASMTPD_LUA_DELIVER_H

#include <lua.h>
#include <stddef.h>

#include "lua/lua_vm.h"
#include "util/limits.h"

struct smtp_session;

/* One recipient's outcome. */
struct dlv_outcome {
	size_t	rcpt;			/* index into tx->rcpts (0-based) */
	int	code;			/* 2xx, 4xx, 5xx */
	char	ecode[12];		/* "" if the peer sent none */
	char	text[SMTP_REPLY_TEXT_MAX + 1];
};

/*
 * Recipient indices chosen by the Lua value at idx: nil (all), an index,
 * a recipient table (its .index), or a list of either.  Raises on misuse.
 * The caller frees the array.
 */
size_t	*lb_deliver_rcpts(lua_State *L, int idx, const struct smtp_session *,
	    size_t *n);

/* Record the outcomes on the transaction and log each one. */
void	lb_deliver_record(struct smtp_session *, const char *kind,
	    const char *target, const struct dlv_outcome *, size_t n);

/*
 * Push the results table of outcomes already recorded (at completion,
 * with lb_deliver_record) onto co, inside the hook (collect).  Returns 1.
 */
int	lb_deliver_push(lua_State *co, const struct smtp_session *,
	    const struct dlv_outcome *, size_t n, const char *error);

/* An option table's field, without metamethods (pushes it). */
void	lb_rawfield(lua_State *L, int idx, const char *name);

/* The running hook must be the message hook with its message on disk. */
struct lua_sess *lb_deliver_context(lua_State *L, const char *what);

/* Registration of each target's functions into the deliver module. */
void	lb_deliver_register_net(lua_State *L);	/* lmtp, smtp (lua_deliver_net.c) */
void	lb_deliver_register_pipe(lua_State *L);	/* pipe (lua_deliver_pipe.c) */

#endif
