/*
 * lua_vm.h — the Lua side of luasmtpd: one LuaJIT state for the process.
 *
 * Shared by the files of src/lua/.  The C core reaches Lua only through
 * hook_impl (smtp/hook.h) and lua_vm_load().
 */
#ifndef LUASMTPD_LUA_VM_H
#define LUASMTPD_LUA_VM_H

#include <ev.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "smtp/hook.h"

struct smtp_session;

/* A -D name=value from the command line. */
struct define {
	const char	*name;
	const char	*value;
	bool		 used;
};

struct lua_vm {
	lua_State	*L;
	struct config	*cfg;
	const char	*config_path;
	struct define	*defines;
	size_t		 ndefines;
	int		 hook_refs[HOOK_COUNT];	/* LUA_NOREF if absent */
};

extern struct lua_vm vm;

/*
 * Create the state, run the config file and fill cfg.  Returns 0, or -1
 * with "file:line: message" in err.
 */
int	lua_vm_load(const char *path, struct define *, size_t ndefines,
	    struct config *cfg, char *err, size_t errlen);
void	lua_vm_close(void);

/* ---- per-session state and the one yield/resume path (lua_co.c) ---- */

struct lua_sess;
typedef void	(*co_cancel_fn)(struct lua_sess *, void *arg);
typedef int	(*co_push_fn)(lua_State *co, void *arg);

struct lua_sess {
	struct smtp_session	*s;
	int			 ud_ref;	/* session userdata */
	int			 data_ref;	/* s.data */
	/* The running hook. */
	lua_State		*co;
	int			 co_ref;
	enum hook_id		 hook;
	uint64_t		 gen;		/* bumped at every start/stop */
	ev_timer		 hook_timer;	/* timeout_hook, across yields */
	bool			 in_run;	/* inside hook_ops.run() */
	bool			 done_sync;
	struct hook_verdict	*sync_out;
	/* The pending operation of the hook, if it yielded. */
	bool			 waiting;
	co_cancel_fn		 cancel;
	void			*cancel_arg;
	ev_timer		 op_timer;	/* free for the operation's use */
};

/* The session whose hook is being resumed right now, or NULL. */
struct lua_sess	*lua_co_running(void);
/* The session whose hook is running; raises outside a hook. */
struct lua_sess	*lua_co_current(lua_State *L, const char *what);
/*
 * Declare that the running hook will yield for an operation.  Raises if
 * one is already pending.  cancel() is called if the hook is abandoned
 * (session closed, hook timeout) before lua_co_wake(); it must stop the
 * operation's watchers and make any later completion a no-op.
 */
void	lua_co_begin_wait(struct lua_sess *, co_cancel_fn, void *arg);
/*
 * Complete the pending operation: push() its results onto the coroutine
 * and resume it.  Only from an event-loop callback.  May finish the hook
 * and so run the session's next command.
 */
void	lua_co_wake(struct lua_sess *, co_push_fn, void *arg);
/* Resume with nargs values pushed on ls->co (start of a hook). */
void	lua_co_resume(struct lua_sess *, int nargs);
/* Deliver a verdict: drop the coroutine, tell the session. */
void	lua_co_finish(struct lua_sess *, const struct hook_verdict *);
/* Drop the coroutine with no verdict (the session is closing). */
void	lua_co_abandon(struct lua_sess *);
void	lua_co_hook_timeout(struct ev_loop *, ev_timer *, int);

/* lua_hooks.c */
extern const struct hook_ops lua_hook_ops;
struct lua_sess	*lua_sess_get(struct smtp_session *);

/* lua_session.c */
void	lb_session_open(lua_State *L);
void	lb_push_session(lua_State *L, struct lua_sess *);
void	lb_push_params(lua_State *L, const char *raw);
void	lb_push_rcpts(lua_State *L, const struct smtp_session *);
void	lb_session_invalidate(struct lua_sess *);
/* The live session behind a session, transaction or message value. */
struct smtp_session *lb_session_of(lua_State *L, int idx);

/* lua_message.c */
void	lb_message_open(lua_State *L);
void	lb_push_message(lua_State *L, struct lua_sess *);

/* lua_core.c: package.preload["luasmtpd"] and the verdict type */
int	luaopen_luasmtpd(lua_State *L);
/* Turn a hook's return values (stack top n values of co) into v. */
void	lb_verdict_from_results(lua_State *co, int base, int n, enum hook_id,
	    struct hook_verdict *v, char *err, size_t errlen);

/* lua_deliver.c: package.preload["luasmtpd.deliver"] */
int	luaopen_luasmtpd_deliver(lua_State *L);

/* lua_watchdog.c: stops a hook that runs too long without yielding. */
void	lua_watchdog_start(lua_State *L);
void	lua_watchdog_enter(double limit);
void	lua_watchdog_leave(void);
bool	lua_watchdog_fired(void);

#endif
