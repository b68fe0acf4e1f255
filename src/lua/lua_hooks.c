/*
 * lua_hooks.c — hook_ops for the SMTP engine, implemented with Lua.
 *
 * Each hook runs in a new coroutine of the one Lua state, with the session
 * object first and the stage's arguments after it:
 *
 *   connect(s)            helo(s, name)          mail(s, sender, params)
 *   rcpt(s, rcpt, params) data(s)                message(s, msg)
 *   reset(s)              vrfy(s, arg)           disconnect(s)
 *
 * Per-session Lua state (struct lua_sess) is created at the first hook, so
 * an idle session without hooks costs no Lua memory at all.
 */
#include <stdlib.h>
#include <string.h>

#include "lua/lua_vm.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "util/xmalloc.h"

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
	ls->co_ref = LUA_NOREF;
	ev_init(&ls->hook_timer, lua_co_hook_timeout);
	ls->hook_timer.data = ls;
	ev_init(&ls->op_timer, NULL);
	ls->op_timer.data = ls;
	s->hook_state = ls;
	return ls;
}

static bool
lh_has(enum hook_id id)
{
	return id < HOOK_COUNT && vm.hook_refs[id] != LUA_NOREF &&
	    vm.hook_refs[id] != LUA_REFNIL;
}

static int
lh_run(struct smtp_session *s, enum hook_id id, const char *arg,
    struct hook_verdict *out)
{
	struct lua_sess *ls = lua_sess_get(s);
	lua_State *L = vm.L, *co;
	int nargs = 1;

	co = lua_newthread(L);
	ls->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	ls->co = co;
	ls->hook = id;
	ls->gen++;
	ls->waiting = false;

	lua_rawgeti(co, LUA_REGISTRYINDEX, vm.hook_refs[id]);
	lb_push_session(co, ls);
	switch (id) {
	case HOOK_HELO:
	case HOOK_VRFY:
		lua_pushstring(co, arg != NULL ? arg : "");
		nargs++;
		break;
	case HOOK_MAIL:
		lua_pushstring(co, arg != NULL ? arg : "");
		lb_push_params(co, s->tx != NULL ? s->tx->params : NULL);
		nargs += 2;
		break;
	case HOOK_RCPT:
		lua_pushstring(co, arg != NULL ? arg : "");
		lb_push_params(co, s->tx != NULL && s->tx->pending != NULL ?
		    s->tx->pending->params : NULL);
		nargs += 2;
		break;
	case HOOK_MESSAGE:
		lb_push_message(co, ls);
		nargs++;
		break;
	case HOOK_AUTH:
		/* auth(s, user, password, mechanism, authzid) */
		lua_pushstring(co, s->auth_try_user ? s->auth_try_user : "");
		lua_pushstring(co, s->auth_pass ? s->auth_pass : "");
		lua_pushstring(co, auth_mech_name(s));
		lua_pushstring(co, s->auth_authzid ? s->auth_authzid : "");
		nargs += 4;
		break;
	default:
		break;
	}
	ev_timer_set(&ls->hook_timer, s->cfg->timeout_hook, 0.);
	ev_timer_start(server.loop, &ls->hook_timer);

	ls->in_run = true;
	ls->done_sync = false;
	ls->sync_out = out;
	lua_co_resume(ls, nargs);
	ls->in_run = false;
	ls->sync_out = NULL;
	return ls->done_sync ? HOOK_DONE : HOOK_PENDING;
}

static void
lh_cancel(struct smtp_session *s)
{
	struct lua_sess *ls = s->hook_state;

	if (ls != NULL && ls->co != NULL)
		lua_co_abandon(ls);
}

static void
lh_release(struct smtp_session *s)
{
	struct lua_sess *ls = s->hook_state;

	if (ls == NULL)
		return;
	if (ls->co != NULL)
		lua_co_abandon(ls);
	ev_timer_stop(server.loop, &ls->op_timer);
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
