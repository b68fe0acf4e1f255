/*
 * task.h — the task layer between C and Lua: hooks and queue jobs run as
 * tasks of coroutines, and every slow call is an operation that yields.
 *
 * A task is one run of a Lua function for an owner (a session's hook, a
 * queue job's routing hook).  It has a main fiber — a coroutine — and, while
 * smtp.all() waits, child fibers running in parallel.  A fiber waits for at
 * most one operation at a time (DNS, key-value, HTTP, a delivery, a sleep,
 * work on a worker pool); each operation has its own timeout, and the task
 * as a whole has one too.
 *
 * The rules that keep it safe (rspamd's generation-checked resume,
 * lua-nginx-module's one resume path, OpenSMTPD's request ids):
 *   - An operation records the id and generation of its fiber.  Its
 *     completion looks the fiber up by id and checks the generation and that
 *     the fiber still waits for exactly this operation; a late answer from
 *     a shared client (a DNS reply after a timeout, a Redis reply after the
 *     session closed) finds nothing and is dropped.
 *   - Completions never resume a coroutine themselves: they mark the fiber
 *     runnable, and the run queue (an ev_prepare + ev_idle pair) resumes it
 *     from the loop, never from inside a library's callback (curl and
 *     hiredis must not be re-entered) or from inside Lua.
 *   - The results of an operation are pushed inside the coroutine, by the
 *     binding's collect step (lua_task.c), so an error while building them
 *     is a Lua error of the hook, not a panic.  Arguments of a new task are
 *     pushed under lua_cpcall, and so are tracebacks.  Nothing here calls
 *     the Lua API outside a protected call except to move values that exist.
 *   - Abandoning a task (the session closed, the hook timed out) cancels
 *     every pending operation: the module's cancel guarantees no callback
 *     follows, and the generation check covers any that would.
 *
 * Ownership: the task layer owns tasks, fibers and operations; an operation
 * is freed when its results were collected or when its fiber is dropped.
 * A binding owns what its operation's data points to and frees it in the
 * operation's free() callback.
 */
#ifndef LUASMTPD_TASK_H
#define LUASMTPD_TASK_H

#include <ev.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* smtp.all(): functions run in parallel by one call, and fibers per task. */
#define TASK_ALL_MAX		64
#define TASK_FIBERS_MAX		256

struct task;
struct task_op;

/*
 * The main fiber ended.  On success err is NULL and the function's results
 * are co's stack slots base..base+nres-1; otherwise err says why (an error
 * with its traceback, a timeout).  Called from the loop (or from inside
 * task_start, see there), never from inside Lua; the results are valid
 * only during the call.  The task is freed right after.
 */
typedef void	(*task_done_fn)(void *owner, lua_State *co, int base, int nres,
		    const char *err);

/* Who a task works for: bindings that need a session check this. */
enum task_owner_kind {
	TASK_OWNER_SESSION,		/* owner: struct lua_sess */
	TASK_OWNER_QUEUE,		/* owner: a queue job */
};

/*
 * What a task cost, filled in just before done() (task_config.times):
 * cpu is the loop thread's CPU time inside lua_resume for the task's
 * fibers (CLOCK_THREAD_CPUTIME_ID around each resume), wall the time from
 * task_start to done().  A hook that computes has cpu close to wall; one
 * that waits (DNS, a delivery, smtp.sleep) has cpu far below it.
 */
struct task_times {
	double		 cpu;
	double		 wall;
};

struct task_config {
	const char	*name;		/* "rcpt", "route": for logs and errors */
	enum task_owner_kind kind;
	uint64_t	 log_id;	/* session id (or 0) for log lines */
	double		 timeout;	/* the whole task; 0: none */
	double		 cpu_limit;	/* per resume, for the watchdog */
	const char	*timeout_setting; /* named in the timeout error */
	task_done_fn	 done;
	void		*owner;
	struct task_times *times;	/* NULL, or filled before done() */
};

/* Push the arguments onto co; runs protected.  Returns how many. */
typedef int	(*task_push_fn)(lua_State *co, void *ud);

/*
 * Start fn (a registry reference) with the arguments push() supplies.
 * The main fiber runs at once when no Lua code is running (the usual case:
 * an SMTP command's handler); if it ends without yielding, done() is called
 * before task_start returns and the result is NULL.  Otherwise the running
 * task is returned (to abandon it).  If the task cannot even start (out of
 * memory while pushing the arguments), done() is called with the error and
 * NULL is returned.
 */
struct task	*task_start(const struct task_config *, int fn_ref,
		    task_push_fn push, void *ud);
/* Drop the task without calling done(): cancels every operation. */
void		 task_abandon(struct task *);
/* Is a fiber of this task inside lua_resume right now? */
bool		 task_running(const struct task *);

/* ---- operations, for bindings (see lua_task.c for the Lua side) ---- */

struct task_op_ops {
	const char	*name;		/* "dns", "sleep": for logs */
	/*
	 * Push the results into the coroutine, inside it (may raise); return
	 * how many.  Not called for a timed-out operation: that one returns
	 * nil, "timeout".
	 */
	int		(*push)(lua_State *L, struct task_op *);
	/* Stop the operation; no completion may follow.  May be NULL. */
	void		(*cancel)(struct task_op *);
	/* Free what data points to.  May be NULL. */
	void		(*free)(struct task_op *);
};

struct task_op {
	const struct task_op_ops *ops;
	uint64_t		 fiber_id;
	uint64_t		 gen;
	ev_timer		 timer;
	bool			 done;
	bool			 timed_out;
	double			 timeout;
	void			*data;		/* the binding's */
	double			 begun;		/* monotonic, for its latency */
	unsigned		 kind;		/* metrics' op label */
};

/*
 * In a binding (a C function called by Lua): begin an operation of the
 * running fiber.  Raises if L is not the running fiber of a task ("only
 * inside a hook") or the fiber already waits.  Check every argument before:
 * after this, raising would leave the operation to the fiber's cleanup.
 * timeout > 0 arms the operation's own timer.
 */
struct task_op	*task_op_begin(lua_State *L, const struct task_op_ops *,
		    void *data, double timeout);
/* `return task_op_yield(L, op);` once the operation is started. */
int		 task_op_yield(lua_State *L, struct task_op *);
/*
 * The operation finished (results are in op->data).  From a loop callback;
 * a completion that comes before the binding yielded (an answer known at
 * once) makes task_op_yield() return without yielding.  Late or stray
 * completions are dropped (and the op freed).
 */
void		 task_op_complete(struct task_op *);

/*
 * The Lua side: the running fiber's finished operation, detached (NULL if
 * none).  The caller pushes its results and frees it with task_op_free().
 */
struct task_op	*task_take_result(lua_State *L);
void		 task_op_free(struct task_op *);

/*
 * smtp.all(): run the functions at stack slots 1..n of L (the running
 * fiber) as child fibers and wait for all.  Returns what lua_yield returns.
 * After the resume, task_take_all() pushes their first results, or raises
 * the first error.
 */
int		 task_all(lua_State *L, int n);
int		 task_take_all(lua_State *L);

/* The task the running fiber belongs to, or NULL outside any task. */
struct task	*task_current(lua_State *L);
void		*task_owner(const struct task *);
enum task_owner_kind task_owner_kind(const struct task *);
const char	*task_name(const struct task *);
uint64_t	 task_log_id(const struct task *);

/* Once, with the Lua state, before any task starts; and at exit. */
void		 task_init(struct ev_loop *, lua_State *);
void		 task_shutdown(void);

#endif
