/*
 * lua_hooks.c — hook_ops for the SMTP engine, implemented with Lua.
 *
 * Each hook runs as a task of the task layer (src/task/task.h), with the
 * session object first and the stage's arguments after it:
 *
 *   connect(s)            helo(s, name)          mail(s, sender, params)
 *   rcpt(s, rcpt, params) data(s)                message(s, msg)
 *   reset(s)              vrfy(s, arg)           disconnect(s)
 *   auth(s, user, password, mechanism, authzid)
 *
 * The arguments are built under a protected call (task_start), the verdict
 * is read back without any metamethod (lb_verdict_from_results), and an
 * error or a timeout (timeouts.hook) is a 451 4.3.0 with the traceback in
 * the log.  Per-session Lua state (struct lua_sess) is created at the first
 * hook, so an idle session without hooks costs no Lua memory at all.
 */
#include <stdlib.h>
#include <string.h>

#include "lua/lua_vm.h"
#include "metrics/metrics.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "task/task.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* Bytes of a hook error (message and traceback) that reach the log. */
#define HOOK_ERROR_LOG_MAX	2000

struct lua_sess *
lua_sess_get(struct smtp_session *s)
{
	struct lua_sess *ls = s->hook_state;

	if (ls != NULL)
		return ls;
	ls = xcalloc(1, sizeof(*ls));
	ls->s = s;
	ls->ud_ref = LUA_NOREF;
	ls->data_ref = LUA_NOREF;
	s->hook_state = ls;
	return ls;
}

struct lua_sess *
lb_session_running(lua_State *L)
{
	struct task *t = task_current(L);

	if (t == NULL || task_owner_kind(t) != TASK_OWNER_SESSION)
		return NULL;
	return task_owner(t);
}

struct lua_sess *
lb_session_task(lua_State *L, const char *what)
{
	struct lua_sess *ls = lb_session_running(L);

	if (ls == NULL)
		luaL_error(L, "%s: only inside a session's hook", what);
	return ls;
}

static bool
lh_has(enum hook_id id)
{
	return id < HOOK_COUNT && vm.hook_refs[id] != LUA_NOREF &&
	    vm.hook_refs[id] != LUA_REFNIL;
}

struct hook_args {
	struct lua_sess	*ls;
	enum hook_id	 id;
	const char	*arg;
};

/* Runs protected (task_start): may raise. */
static int
push_args(lua_State *L, void *ud)
{
	struct hook_args *a = ud;
	struct smtp_session *s = a->ls->s;
	const char *arg = a->arg != NULL ? a->arg : "";

	lb_push_session(L, a->ls);
	switch (a->id) {
	case HOOK_HELO:
	case HOOK_VRFY:
		lua_pushstring(L, arg);
		return 2;
	case HOOK_MAIL:
		lua_pushstring(L, arg);
		lb_push_params(L, s->tx != NULL ? s->tx->params : NULL);
		return 3;
	case HOOK_RCPT:
		lua_pushstring(L, arg);
		lb_push_params(L, s->tx != NULL && s->tx->pending != NULL ?
		    s->tx->pending->params : NULL);
		return 3;
	case HOOK_MESSAGE:
		lb_push_message(L, a->ls);
		return 2;
	case HOOK_AUTH:
		lua_pushstring(L, s->auth_try_user ? s->auth_try_user : "");
		lua_pushstring(L, s->auth_pass ? s->auth_pass : "");
		lua_pushstring(L, auth_mech_name(s));
		lua_pushstring(L, s->auth_authzid ? s->auth_authzid : "");
		return 5;
	default:
		return 1;
	}
}

/* The hook ended (task_done_fn): its verdict goes to the session. */
static void
hook_done(void *owner, lua_State *co, int base, int nres, const char *err)
{
	struct lua_sess *ls = owner;
	struct hook_verdict v;
	char why[256], ex[LOG_EXCERPT_BUFSZ(HOOK_ERROR_LOG_MAX)];

	ls->task = NULL;
	memset(&v, 0, sizeof(v));
	if (err != NULL) {
		v.kind = VERDICT_ERROR;
		log_error(ls->s->id, "hook error hook=%s error=\"%s\"",
		    hook_name(ls->hook), log_excerpt(ex, err, strlen(err),
		    HOOK_ERROR_LOG_MAX));
	} else {
		why[0] = '\0';
		lb_verdict_from_results(co, base, nres, ls->hook, &v, why,
		    sizeof(why));
		if (v.kind == VERDICT_ERROR)
			log_error(ls->s->id, "hook error hook=%s error=\"%s\"",
			    hook_name(ls->hook), log_excerpt(ex, why, strlen(why),
			    HOOK_ERROR_LOG_MAX));
	}
	if (v.kind == VERDICT_ERROR)
		metric_inc_l(M_HOOK_ERRORS, ls->hook);
	hist_observe_l(M_HOOK_WALL, ls->hook, ls->times.wall);
	hist_observe_l(M_HOOK_CPU, ls->hook, ls->times.cpu);
	ls->s->hook_wall += ls->times.wall;
	ls->s->hook_cpu += ls->times.cpu;
	if (ls->in_run) {
		*ls->sync_out = v;
		ls->done_sync = true;
		return;
	}
	smtp_session_hook_done(ls->s, &v);
}

static int
lh_run(struct smtp_session *s, enum hook_id id, const char *arg,
    struct hook_verdict *out)
{
	struct lua_sess *ls = lua_sess_get(s);
	struct hook_args a = { ls, id, arg };
	struct task_config cfg = {
		.name = hook_name(id),
		.kind = TASK_OWNER_SESSION,
		.log_id = s->id,
		.timeout = s->cfg->timeout_hook,
		.cpu_limit = s->cfg->hook_cpu_limit,
		.timeout_setting = "timeouts.hook",
		.done = hook_done,
		.owner = ls,
		.times = &ls->times,
	};

	ls->hook = id;
	memset(&ls->times, 0, sizeof(ls->times));
	ls->in_run = true;
	ls->done_sync = false;
	ls->sync_out = out;
	ls->task = task_start(&cfg, vm.hook_refs[id], push_args, &a);
	ls->in_run = false;
	ls->sync_out = NULL;
	if (ls->done_sync) {
		ls->task = NULL;
		return HOOK_DONE;
	}
	return HOOK_PENDING;
}

static void
lh_cancel(struct smtp_session *s)
{
	struct lua_sess *ls = s->hook_state;

	if (ls != NULL && ls->task != NULL) {
		/*
		 * An abandoned operation (a worker writing a Maildir copy,
		 * say) may still read the message file: never reuse it.
		 */
		if (s->tx != NULL)
			s->tx->spool.reusable = false;
		task_abandon(ls->task);
		ls->task = NULL;
	}
}

static void
lh_release(struct smtp_session *s)
{
	struct lua_sess *ls = s->hook_state;

	if (ls == NULL)
		return;
	lh_cancel(s);
	lb_session_invalidate(ls);
	if (ls->data_ref != LUA_NOREF)
		luaL_unref(vm.L, LUA_REGISTRYINDEX, ls->data_ref);
	s->hook_state = NULL;
	free(ls);
}

const struct hook_ops lua_hook_ops = {
	.has = lh_has,
	.run = lh_run,
	.cancel = lh_cancel,
	.release = lh_release,
};
