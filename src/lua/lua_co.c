/*
 * lua_co.c — hooks run in coroutines; slow calls yield and are resumed by
 * the event loop.
 *
 * The one pattern (STYLE.md "Async Lua"):
 *   binding:   ls = lua_co_current(L); <fast path?>; lua_co_begin_wait(ls,
 *              cancel, arg); <start watchers + a timer>; return lua_yield(L, 0);
 *   callback:  <stop watchers>; lua_co_wake(ls, push_results, arg);
 * lua_co_wake() is the only place that resumes a waiting coroutine, and it
 * is only called from libev callbacks.  A hook that is abandoned (session
 * closed, hook timeout) has its operation's cancel() run, so no completion
 * can reach a dead coroutine.
 *
 * What a resume ends with:
 *   0          the hook returned: its values are the verdict;
 *   LUA_YIELD  an operation is pending (or the script yielded by itself,
 *              which is an error: only core calls may yield a hook);
 *   an error   traceback to the log, verdict ERROR (451 4.3.0), the
 *              coroutine is dropped.
 */
#include <string.h>

#include "lua/lua_vm.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "util/log.h"

/* The coroutine being resumed right now, and its session. */
static struct lua_sess *running;

struct lua_sess *
lua_co_running(void)
{
	return running;
}

struct lua_sess *
lua_co_current(lua_State *L, const char *what)
{
	if (running == NULL || running->co == NULL)
		luaL_error(L, "%s: only inside a hook", what);
	if (running->co != L)
		luaL_error(L, "%s: not from a coroutine of your own; call it "
		    "from the hook itself", what);
	return running;
}

void
lua_co_begin_wait(struct lua_sess *ls, co_cancel_fn cancel, void *arg)
{
	if (ls->waiting)
		luaL_error(ls->co, "busy: another operation is pending");
	ls->waiting = true;
	ls->cancel = cancel;
	ls->cancel_arg = arg;
}

/* Stop whatever the hook waits for; no completion will follow. */
static void
drop_wait(struct lua_sess *ls)
{
	if (ls->waiting) {
		co_cancel_fn cancel = ls->cancel;

		ls->waiting = false;
		ls->cancel = NULL;
		if (cancel != NULL)
			cancel(ls, ls->cancel_arg);
		/*
		 * An abandoned operation (a worker writing a Maildir copy,
		 * say) may still read the message file: never reuse it.
		 */
		if (ls->s->tx != NULL)
			ls->s->tx->spool.reusable = false;
	}
	ev_timer_stop(server.loop, &ls->op_timer);
}

/* End the hook: drop the coroutine, hand the verdict to the session. */
void
lua_co_finish(struct lua_sess *ls, const struct hook_verdict *v)
{
	drop_wait(ls);
	ev_timer_stop(server.loop, &ls->hook_timer);
	if (ls->co_ref != LUA_NOREF)
		luaL_unref(vm.L, LUA_REGISTRYINDEX, ls->co_ref);
	ls->co_ref = LUA_NOREF;
	ls->co = NULL;
	ls->gen++;
	if (ls->in_run) {
		*ls->sync_out = *v;
		ls->done_sync = true;
		return;
	}
	smtp_session_hook_done(ls->s, v);
}

static void
log_hook_error(struct lua_sess *ls, lua_State *co)
{
	const char *msg = lua_tostring(co, -1);

	if (msg == NULL)
		msg = "(error object is not a string)";
	luaL_traceback(vm.L, co, msg, 0);
	log_error(ls->s->id, "hook error hook=%s error=\"%s\"",
	    hook_name(ls->hook), lua_tostring(vm.L, -1));
	lua_pop(vm.L, 1);
}

void
lua_co_resume(struct lua_sess *ls, int nargs)
{
	struct lua_sess *saved = running;
	struct hook_verdict v;
	lua_State *co = ls->co;
	char err[256];
	int r;

	running = ls;
	lua_watchdog_enter(ls->s->cfg->hook_cpu_limit);
	r = lua_resume(co, nargs);
	lua_watchdog_leave();
	running = saved;

	memset(&v, 0, sizeof(v));
	if (r == LUA_YIELD) {
		if (ls->waiting)
			return;		/* a core operation is pending */
		log_error(ls->s->id, "hook error hook=%s error=\"the hook "
		    "yielded outside a luasmtpd call\"", hook_name(ls->hook));
		v.kind = VERDICT_ERROR;
	} else if (r == 0) {
		err[0] = '\0';
		lb_verdict_from_results(co, 1, lua_gettop(co), ls->hook, &v, err,
		    sizeof(err));
		if (v.kind == VERDICT_ERROR)
			log_error(ls->s->id, "hook error hook=%s error=\"%s\"",
			    hook_name(ls->hook), err);
		lua_settop(co, 0);
	} else {
		log_hook_error(ls, co);
		v.kind = VERDICT_ERROR;
	}
	lua_co_finish(ls, &v);
}

void
lua_co_wake(struct lua_sess *ls, co_push_fn push, void *arg)
{
	int n;

	if (!ls->waiting || ls->co == NULL)
		return;		/* abandoned meanwhile: nothing to resume */
	ls->waiting = false;
	ls->cancel = NULL;
	ev_timer_stop(server.loop, &ls->op_timer);
	n = push != NULL ? push(ls->co, arg) : 0;
	lua_co_resume(ls, n);
}

/* The hook as a whole ran out of time (timeout_hook). */
void
lua_co_hook_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lua_sess *ls = w->data;
	struct hook_verdict v;

	(void)loop;
	(void)revents;
	if (ls->co == NULL)
		return;
	log_error(ls->s->id, "hook error hook=%s error=\"hook timed out after "
	    "%.1f s (timeout_hook)\"", hook_name(ls->hook),
	    ls->s->cfg->timeout_hook);
	memset(&v, 0, sizeof(v));
	v.kind = VERDICT_ERROR;
	lua_co_finish(ls, &v);
}

/* Abandon the running hook without a verdict (session closing). */
void
lua_co_abandon(struct lua_sess *ls)
{
	drop_wait(ls);
	ev_timer_stop(server.loop, &ls->hook_timer);
	if (ls->co_ref != LUA_NOREF)
		luaL_unref(vm.L, LUA_REGISTRYINDEX, ls->co_ref);
	ls->co_ref = LUA_NOREF;
	ls->co = NULL;
	ls->gen++;
}
