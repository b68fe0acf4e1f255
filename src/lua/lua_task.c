/*
 * lua_task.c — the Lua face of the task layer: how a yielding binding
 * returns its results, smtp.sleep and smtp.all.
 *
 * A yielding binding is two C functions joined by a small Lua closure
 * (lb_task_wrap, wrap_chunk below):
 *
 *   function(...) start(...) return collect() end
 *
 * start() checks its arguments, begins an operation (task_op_begin),
 * starts the I/O and yields.  When the operation completes, the run queue
 * resumes the coroutine with no values; collect() then pushes the results
 * from inside the coroutine, so building them is ordinary hook code: a
 * memory error there fails the hook, it cannot panic the server.  An
 * operation that timed out returns nil, "timeout".
 *
 *   smtp.sleep(seconds)              yields; other sessions go on
 *   smtp.all(f1, f2, ...)            runs the functions in parallel (each
 *                                    may call yielding functions) and
 *                                    returns their first results in order;
 *                                    the first error is raised, the others
 *                                    are cancelled
 */
#include <math.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "lua/lua_vm.h"
#include "server.h"
#include "task/task.h"
#include "util/xmalloc.h"

/* Registry key of the closure factory (an address: cannot collide). */
static const char wrap_key;

static int
push_trampoline(lua_State *L)
{
	struct task_op *op = lua_touserdata(L, 1);

	lua_settop(L, 0);
	return op->ops->push(L, op);
}

static int
lb_collect(lua_State *L)
{
	struct task_op *op = task_take_result(L);
	int base, r;

	if (op == NULL)
		return luaL_error(L, "no finished operation to collect");
	if (op->timed_out) {
		task_op_free(op);
		lua_pushnil(L);
		lua_pushliteral(L, "timeout");
		return 2;
	}
	if (op->ops->push == NULL) {
		task_op_free(op);
		return 0;
	}
	/* The operation is freed whatever happens while pushing. */
	base = lua_gettop(L);
	lua_pushcfunction(L, push_trampoline);
	lua_pushlightuserdata(L, op);
	r = lua_pcall(L, 1, LUA_MULTRET, 0);
	task_op_free(op);
	if (r != 0)
		return lua_error(L);
	return lua_gettop(L) - base;
}

/*
 * The closure factory.  start() runs under pcall so that its errors can be
 * re-raised at the caller's line (error level 3: fail, the closure, the
 * caller) under the binding's own name: the closure is our detail, not
 * the config author's.  LuaJIT yields across pcall, so start() may yield.
 */
static const char wrap_chunk[] =
    "local start, collect, name = ...\n"
    "local pcall, error, type = pcall, error, type\n"
    "local function fail(err)\n"
    "  if type(err) == 'string' then\n"
    "    err = err:gsub(\"to '%?'\", \"to '\" .. name .. \"'\", 1)\n"
    "  end\n"
    "  error(err, 3)\n"
    "end\n"
    "return function(...)\n"
    "  local ok, err = pcall(start, ...)\n"
    "  if not ok then fail(err) end\n"
    "  return collect()\n"
    "end\n";

void
lb_task_wrap(lua_State *L, lua_CFunction start, const char *name)
{
	lb_task_wrap_collect(L, start, lb_collect, name);
}

void
lb_task_wrap_collect(lua_State *L, lua_CFunction start, lua_CFunction collect,
    const char *name)
{
	lua_pushlightuserdata(L, (void *)&wrap_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		if (luaL_loadbuffer(L, wrap_chunk, sizeof(wrap_chunk) - 1,
		    "=luasmtpd") != 0)
			lua_error(L);
		lua_pushlightuserdata(L, (void *)&wrap_key);
		lua_pushvalue(L, -2);
		lua_rawset(L, LUA_REGISTRYINDEX);
	}
	lua_pushcfunction(L, start);
	lua_pushcfunction(L, collect);
	lua_pushstring(L, name);
	lua_call(L, 3, 1);
}

/* ---- smtp.sleep ---- */

struct sleep_op {
	ev_timer	 timer;
	struct task_op	*op;
};

static void
sleep_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sleep_op *s = w->data;

	(void)loop;
	(void)revents;
	task_op_complete(s->op);
}

static void
sleep_cancel(struct task_op *op)
{
	struct sleep_op *s = op->data;

	ev_timer_stop(server.loop, &s->timer);
}

static void
sleep_free(struct task_op *op)
{
	struct sleep_op *s = op->data;

	ev_timer_stop(server.loop, &s->timer);
	free(s);
}

static const struct task_op_ops sleep_ops = {
	.name = "sleep",
	.push = NULL,
	.cancel = sleep_cancel,
	.free = sleep_free,
};

static int
lb_sleep_start(lua_State *L)
{
	lua_Number secs = luaL_checknumber(L, 1);
	struct task_op *op;
	struct sleep_op *s;

	if (!(secs >= 0) || isinf(secs))
		return luaL_argerror(L, 1, "seconds must be a number >= 0");
	op = task_op_begin(L, &sleep_ops, NULL, 0);	/* may raise */
	s = xcalloc(1, sizeof(*s));
	op->data = s;
	s->op = op;
	ev_timer_init(&s->timer, sleep_done, secs, 0.);
	s->timer.data = s;
	ev_timer_start(server.loop, &s->timer);
	return task_op_yield(L, s->op);
}

/* ---- smtp.all ---- */

static int
lb_all_start(lua_State *L)
{
	return task_all(L, lua_gettop(L));
}

static int
lb_all_collect(lua_State *L)
{
	return task_take_all(L);
}

void
lb_task_register(lua_State *L)
{
	lb_task_wrap(L, lb_sleep_start, "sleep");
	lua_setfield(L, -2, "sleep");
	lb_task_wrap_collect(L, lb_all_start, lb_all_collect, "all");
	lua_setfield(L, -2, "all");
}

/* ---- work on a worker pool, as an operation ---- */

static void
work_run(struct work *w)
{
	struct lb_work *lw = (struct lb_work *)w;

	lw->run(lw);
}

static void
work_done(struct work *w)
{
	struct lb_work *lw = (struct lb_work *)w;

	lw->in_pool = false;
	if (lw->op == NULL) {
		/* The hook let go meanwhile; what the job did stays done. */
		if (lw->orphan)
			lw->free(lw);
		return;
	}
	if (lw->finish != NULL)
		lw->finish(lw);
	task_op_complete(lw->op);
}

int
lb_work_push(lua_State *L, struct task_op *op)
{
	struct lb_work *lw = op->data;

	return lw->push != NULL ? lw->push(L, lw) : 0;
}

/* Both are called with data NULL if the binding raised before its job. */
void
lb_work_cancel(struct task_op *op)
{
	struct lb_work *lw = op->data;

	if (lw != NULL)
		lw->op = NULL;
}

void
lb_work_free(struct task_op *op)
{
	struct lb_work *lw = op->data;

	if (lw == NULL)
		return;
	lw->op = NULL;
	if (lw->in_pool)
		lw->orphan = true;	/* work_done frees it */
	else
		lw->free(lw);
}

int
lb_work_yield(lua_State *L, struct task_op *op, struct workq *q,
    struct lb_work *lw)
{
	op->data = lw;
	lw->op = op;
	lw->in_pool = true;
	lw->work.run = work_run;
	lw->work.done = work_done;
	workq_submit(q, &lw->work);
	return task_op_yield(L, op);
}
