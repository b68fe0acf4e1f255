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
#include "task/task.h"
#include "util/workq.h"
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

/* ---- per-session state (lua_hooks.c) ---- */

struct task;

struct lua_sess {
	struct smtp_session	*s;
	int			 ud_ref;	/* session userdata */
	int			 data_ref;	/* s.data */
	/* The running hook: a task of the task layer (src/task). */
	struct task		*task;
	enum hook_id		 hook;
	struct task_times	 times;		/* of the last hook (task.h) */
	bool			 in_run;	/* inside hook_ops.run() */
	bool			 done_sync;
	struct hook_verdict	*sync_out;
};

/*
 * The session whose hook is running in L, for a binding called "what";
 * raises outside a session's hook.
 */
struct lua_sess	*lb_session_task(lua_State *L, const char *what);
/* The same or NULL, without raising. */
struct lua_sess	*lb_session_running(lua_State *L);

/* lua_task.c: a yielding binding is start() + collect() (see there). */
void	lb_task_wrap(lua_State *L, lua_CFunction start, const char *name);
void	lb_task_wrap_collect(lua_State *L, lua_CFunction start,
	    lua_CFunction collect, const char *name);
void	lb_task_register(lua_State *L);
/* lua_crypt.c: smtp.crypt_check into the table on top. */
void	lb_crypt_register(lua_State *L);

/*
 * Blocking work on a pool as the operation of a hook.  A binding embeds
 * struct lb_work first in its job, fills run/finish/push/free, begins an
 * operation whose ops are { name, lb_work_push, lb_work_cancel,
 * lb_work_free } and returns lb_work_yield(L, op, pool, &job->lw).  run()
 * executes on the pool; finish() on the loop thread when the hook still
 * waits (record outcomes there, not in push); push() inside the coroutine
 * at collect; free() once neither the pool nor the hook holds the job —
 * a job whose hook let go (session closed, timeout) finishes its work and
 * is freed then.
 */
struct task_op;
struct workq;
struct lb_work {
	struct work	 work;		/* first: the pool's handle */
	struct task_op	*op;		/* NULL once the hook let go */
	bool		 in_pool;
	bool		 orphan;
	void		(*run)(struct lb_work *);
	void		(*finish)(struct lb_work *);
	int		(*push)(lua_State *, struct lb_work *);
	void		(*free)(struct lb_work *);
};
int	lb_work_push(lua_State *, struct task_op *);
void	lb_work_cancel(struct task_op *);
void	lb_work_free(struct task_op *);
int	lb_work_yield(lua_State *, struct task_op *, struct workq *,
	    struct lb_work *);

/* lua_hooks.c */
extern const struct hook_ops lua_hook_ops;
struct lua_sess	*lua_sess_get(struct smtp_session *);

/* lua_session.c */
void	lb_session_open(lua_State *L);
void	lb_push_session(lua_State *L, struct lua_sess *);
void	lb_push_params(lua_State *L, const char *raw);
void	lb_push_rcpts(lua_State *L, const struct smtp_session *);
void	lb_session_invalidate(struct lua_sess *);
/* tx:add_header / msg:add_header with (_, name, value) at 1..3. */
struct smtp_tx;
int	lb_tx_add_header(lua_State *L, struct smtp_tx *tx);
/* The live session behind a session, transaction or message value. */
struct smtp_session *lb_session_of(lua_State *L, int idx);

/* lua_message.c */
void	lb_message_open(lua_State *L);
/* The live transaction of a message value (raises when it is gone). */
struct smtp_tx *lb_check_message(lua_State *L, int idx);
/* lua_mailauth.c: package.preload["luasmtpd.mailauth"], msg:dkim() */
int	luaopen_luasmtpd_mailauth(lua_State *L);
void	lb_mailauth_dkim_method(lua_State *L);
void	lb_push_message(lua_State *L, struct lua_sess *);

/* lua_core.c: package.preload["luasmtpd"] and the verdict type */
int	luaopen_luasmtpd(lua_State *L);
/* Turn a hook's return values (stack top n values of co) into v. */
void	lb_verdict_from_results(lua_State *co, int base, int n, enum hook_id,
	    struct hook_verdict *v, char *err, size_t errlen);

/* lua_deliver.c: package.preload["luasmtpd.deliver"] */
int	luaopen_luasmtpd_deliver(lua_State *L);

/* lua_kv.c, lua_http.c: package.preload["luasmtpd.kv"], ["luasmtpd.http"] */
int	luaopen_luasmtpd_kv(lua_State *L);
int	luaopen_luasmtpd_http(lua_State *L);
/* lua_dns.c, lua_spf.c: package.preload["luasmtpd.dns"], ["luasmtpd.spf"] */
int	luaopen_luasmtpd_dns(lua_State *L);
int	luaopen_luasmtpd_spf(lua_State *L);

/* lua_watchdog.c: stops a hook that runs too long without yielding. */
void	lua_watchdog_start(lua_State *L);
void	lua_watchdog_enter(double limit);
void	lua_watchdog_leave(void);
bool	lua_watchdog_fired(void);

#endif
