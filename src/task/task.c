/*
 * task.c — tasks, fibers, operations and the run queue (see task.h).
 *
 * A fiber's life: created RUNNABLE (queued, or run at once as a task's
 * main fiber) -> RUNNING inside lua_resume -> WAIT_OP (an operation is
 * pending) or WAIT_ALL (its smtp.all children run) -> RUNNABLE again when
 * the operation completes or the last child ends -> ... -> it returns or
 * fails, and is freed.  Its generation goes up at every resume, so an
 * operation begun before cannot complete into a later wait.
 *
 * SECURITY: the run queue holds fiber ids, not pointers: a fiber freed
 * while queued (its task was abandoned) is simply not found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "lua/lua_vm.h"
#include "metrics/metrics.h"
#include "task/task.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define FIBER_BUCKETS	4096		/* power of two */
#define TRACEBACK_MAX	2048		/* bytes of an error we keep */

enum fiber_state {
	F_RUNNABLE,
	F_RUNNING,
	F_WAIT_OP,
	F_WAIT_ALL,
};

struct fiber {
	uint64_t		 id;
	uint64_t		 gen;
	struct task		*task;
	struct fiber		*parent;	/* NULL for the main fiber */
	unsigned		 index;		/* 1-based among its siblings */
	lua_State		*co;
	int			 co_ref;
	enum fiber_state	 state;
	int			 nargs;		/* for the next resume */
	struct task_op		*op;		/* pending, or done and uncollected */
	/* smtp.all: children still running, their results, the first error */
	unsigned		 nchildren;
	unsigned		 pending;
	int			 results_ref;
	char			*child_error;
	struct fiber		*hash_next;
	struct fiber		*task_next;	/* all fibers of the task */
};

struct task {
	struct task_config	 cfg;
	struct fiber		*main;
	struct fiber		*fibers;
	unsigned		 nfibers;
	ev_timer		 timer;
	unsigned		 running;	/* its fibers inside lua_resume */
	double			 started;	/* monotonic */
	double			 cpu;		/* task_times.cpu so far */
	bool			 abandoned;	/* while running: free after */
	bool			 finished;	/* done() called */
};

static lua_State	*vmL;
static struct ev_loop	*loop;
static struct fiber	*buckets[FIBER_BUCKETS];
static uint64_t		 next_id;
static struct fiber	*running;		/* inside lua_resume */
/* The run queue: ids of runnable fibers, a growing ring. */
static uint64_t		*runq;
static size_t		 runq_cap, runq_head, runq_len;
static ev_prepare	 runq_prepare;
static ev_idle		 runq_idle;

static void	fiber_free(struct fiber *);
static void	task_free(struct task *);

/*
 * Seconds on clock id.  CLOCK_MONOTONIC is read in the vDSO (~50 ns);
 * CLOCK_THREAD_CPUTIME_ID is a system call (the vDSO has no CPU clocks):
 * two per resume, measured at ~1.1 µs each on the 2-core VM of
 * BENCHMARKS.md, so a hook call that cost 1.9 µs costs about 4 µs.  The
 * price of telling a hook that computes from one that waits
 * (luasmtpd_hook_cpu_seconds, the summary line's hook_cpu).
 */
static double
clock_seconds(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the fiber table ---- */

static struct fiber **
bucket_of(uint64_t id)
{
	return &buckets[(id * 0x9e3779b97f4a7c15ull >> 52) & (FIBER_BUCKETS - 1)];
}

static struct fiber *
fiber_lookup(uint64_t id)
{
	struct fiber *f;

	for (f = *bucket_of(id); f != NULL; f = f->hash_next)
		if (f->id == id)
			return f;
	return NULL;
}

static struct fiber *
fiber_new(struct task *t, struct fiber *parent, unsigned index, lua_State *co,
    int co_ref)
{
	struct fiber *f = xcalloc(1, sizeof(*f));
	struct fiber **b;

	f->id = ++next_id;
	f->task = t;
	f->parent = parent;
	f->index = index;
	f->co = co;
	f->co_ref = co_ref;
	f->state = F_RUNNABLE;
	f->results_ref = LUA_NOREF;
	b = bucket_of(f->id);
	f->hash_next = *b;
	*b = f;
	f->task_next = t->fibers;
	t->fibers = f;
	t->nfibers++;
	return f;
}

/* ---- the run queue ---- */

static void
queue_fiber(struct fiber *f)
{
	if (runq_len == runq_cap) {
		size_t ncap = runq_cap ? runq_cap * 2 : 64;
		uint64_t *n = xcalloc(ncap, sizeof(*n));

		for (size_t i = 0; i < runq_len; i++)
			n[i] = runq[(runq_head + i) % runq_cap];
		free(runq);
		runq = n;
		runq_cap = ncap;
		runq_head = 0;
	}
	runq[(runq_head + runq_len++) % runq_cap] = f->id;
	f->state = F_RUNNABLE;
	/* An active idle watcher keeps the loop from blocking in poll. */
	if (!ev_is_active(&runq_idle))
		ev_idle_start(loop, &runq_idle);
}

/* ---- errors ---- */

struct traceback_ctx {
	lua_State	*co;
	char		*out;
	size_t		 outsz;
};

static int
traceback_fn(lua_State *L)
{
	struct traceback_ctx *c = lua_touserdata(L, 1);
	const char *msg = lua_tostring(c->co, -1);

	if (msg == NULL)
		msg = lua_pushfstring(L, "(error object is a %s value)",
		    luaL_typename(c->co, -1));
	luaL_traceback(L, c->co, msg, 0);
	snprintf(c->out, c->outsz, "%s", lua_tostring(L, -1));
	return 0;
}

/* The error on top of co, with its traceback, into out (protected). */
static void
error_text(lua_State *co, char *out, size_t outsz)
{
	struct traceback_ctx c = { co, out, outsz };

	snprintf(out, outsz, "(no error text: out of memory)");
	if (lua_cpcall(vmL, traceback_fn, &c) != 0)
		lua_pop(vmL, 1);
}

/* ---- the end of a fiber ---- */

static void
task_finish(struct task *t, lua_State *co, int base, int nres, const char *err)
{
	t->finished = true;
	ev_timer_stop(loop, &t->timer);
	if (t->cfg.times != NULL) {
		t->cfg.times->cpu = t->cpu;
		t->cfg.times->wall = clock_seconds(CLOCK_MONOTONIC) - t->started;
	}
	if (t->cfg.done != NULL)
		t->cfg.done(t->cfg.owner, co, base, nres, err);
	task_free(t);
}

struct child_result {
	struct fiber	*child;
	int		 nres;
};

/* parent's results[index] = the child's first result (protected). */
static int
store_child_fn(lua_State *L)
{
	struct child_result *c = lua_touserdata(L, 1);
	struct fiber *child = c->child;

	lua_rawgeti(L, LUA_REGISTRYINDEX, child->parent->results_ref);
	if (c->nres > 0) {
		lua_pushvalue(child->co, 1);
		lua_xmove(child->co, L, 1);
	} else {
		lua_pushnil(L);
	}
	lua_rawseti(L, -2, (int)child->index);
	return 0;
}

/* A child failed, or could not store its result: fail the whole smtp.all. */
static void
all_fails(struct fiber *parent, unsigned index, const char *err)
{
	char msg[TRACEBACK_MAX + 64];

	if (parent->child_error == NULL) {
		snprintf(msg, sizeof(msg), "smtp.all: function #%u failed: %s",
		    index, err);
		parent->child_error = xstrdup(msg);
	}
	/* The other children are cancelled: their answers no longer matter. */
	for (struct fiber *f = parent->task->fibers; f != NULL; ) {
		struct fiber *next = f->task_next;

		if (f->parent == parent && f != running)
			fiber_free(f);
		f = next;
	}
	parent->pending = 0;
	queue_fiber(parent);
}

static void
child_done(struct fiber *child, const char *err)
{
	struct fiber *parent = child->parent;
	struct child_result c = { child, lua_gettop(child->co) };
	unsigned index = child->index;

	if (err == NULL && lua_cpcall(vmL, store_child_fn, &c) != 0) {
		lua_pop(vmL, 1);
		err = "out of memory storing its result";
	}
	fiber_free(child);
	if (err != NULL) {
		all_fails(parent, index, err);
		return;
	}
	if (--parent->pending == 0)
		queue_fiber(parent);
}

static void
fiber_failed(struct fiber *f, const char *err)
{
	if (f->parent == NULL)
		task_finish(f->task, NULL, 0, 0, err);
	else
		child_done(f, err);
}

/*
 * Resume f with its nargs values.  Only from the loop (the run queue) or
 * from task_start; never while another fiber runs.  May free f and its
 * task.
 */
static void
fiber_resume(struct fiber *f)
{
	struct task *t = f->task;
	char err[TRACEBACK_MAX];
	int nargs = f->nargs, r;
	double cpu;

	f->nargs = 0;
	f->state = F_RUNNING;
	f->gen++;
	running = f;
	t->running++;
	cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
	lua_watchdog_enter(t->cfg.cpu_limit);
	r = lua_resume(f->co, nargs);
	lua_watchdog_leave();
	t->cpu += clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu;
	running = NULL;
	t->running--;
	if (t->abandoned) {
		if (t->running == 0)
			task_free(t);
		return;
	}
	if (r == LUA_YIELD) {
		if (f->state == F_WAIT_OP || f->state == F_WAIT_ALL)
			return;
		/* coroutine.yield() in the hook itself: nobody would resume it. */
		snprintf(err, sizeof(err), "the %s hook yielded outside a "
		    "luasmtpd call (coroutine.yield in a hook is not allowed)",
		    t->cfg.name);
		fiber_failed(f, err);
	} else if (r == 0) {
		if (f->parent == NULL)
			task_finish(t, f->co, 1, lua_gettop(f->co), NULL);
		else
			child_done(f, NULL);
	} else {
		error_text(f->co, err, sizeof(err));
		fiber_failed(f, err);
	}
}

static void
run_queue(void)
{
	/* Fibers queued while we run wait for the next round: bounded work. */
	size_t n = runq_len;

	while (n-- > 0 && runq_len > 0) {
		uint64_t id = runq[runq_head];
		struct fiber *f;

		runq_head = (runq_head + 1) % runq_cap;
		runq_len--;
		if ((f = fiber_lookup(id)) != NULL && f->state == F_RUNNABLE)
			fiber_resume(f);
	}
	if (runq_len == 0 && ev_is_active(&runq_idle))
		ev_idle_stop(loop, &runq_idle);
}

static void
runq_prepare_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	if (running == NULL)
		run_queue();
}

static void
runq_idle_cb(struct ev_loop *l, ev_idle *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	if (running == NULL)
		run_queue();
}

/* ---- tasks ---- */

static void
task_timeout_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct task *t = w->data;
	char err[256];

	(void)l;
	(void)revents;
	snprintf(err, sizeof(err), "hook timed out after %.1f s (%s)",
	    t->cfg.timeout, t->cfg.timeout_setting ?
	    t->cfg.timeout_setting : "timeout");
	/* Cancel everything first: done() may start the owner's next task. */
	while (t->fibers != NULL)
		fiber_free(t->fibers);
	task_finish(t, NULL, 0, 0, err);
}

struct start_ctx {
	int		 fn_ref;
	task_push_fn	 push;
	void		*ud;
	lua_State	*co;
	int		 co_ref;
	int		 nargs;
};

static int
start_fn(lua_State *L)
{
	struct start_ctx *c = lua_touserdata(L, 1);
	int top;

	c->co = lua_newthread(L);
	c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	top = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->fn_ref);
	c->nargs = c->push != NULL ? c->push(L, c->ud) : 0;
	/* Everything was made here, protected; moving it allocates nothing. */
	lua_xmove(L, c->co, lua_gettop(L) - top);
	return 0;
}

struct task *
task_start(const struct task_config *cfg, int fn_ref, task_push_fn push,
    void *ud)
{
	struct start_ctx c = { fn_ref, push, ud, NULL, LUA_NOREF, 0 };
	struct task *t;
	uint64_t id;

	if (lua_cpcall(vmL, start_fn, &c) != 0) {
		char err[TRACEBACK_MAX];

		snprintf(err, sizeof(err), "cannot start the %s hook: %s",
		    cfg->name, lua_isstring(vmL, -1) ? lua_tostring(vmL, -1) :
		    "error");
		lua_pop(vmL, 1);
		if (c.co_ref != LUA_NOREF)
			luaL_unref(vmL, LUA_REGISTRYINDEX, c.co_ref);
		if (cfg->done != NULL)
			cfg->done(cfg->owner, NULL, 0, 0, err);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->cfg = *cfg;
	t->started = clock_seconds(CLOCK_MONOTONIC);
	t->main = fiber_new(t, NULL, 0, c.co, c.co_ref);
	t->main->nargs = c.nargs;
	ev_timer_init(&t->timer, task_timeout_cb, cfg->timeout, 0.);
	t->timer.data = t;
	if (cfg->timeout > 0)
		ev_timer_start(loop, &t->timer);
	if (running != NULL) {
		/* Started from inside Lua (a binding): let the loop run it. */
		queue_fiber(t->main);
		return t;
	}
	id = t->main->id;
	fiber_resume(t->main);
	/* The fiber (and so the task) is gone if the hook ended at once. */
	return fiber_lookup(id) != NULL ? t : NULL;
}

static void
task_free(struct task *t)
{
	while (t->fibers != NULL)
		fiber_free(t->fibers);
	ev_timer_stop(loop, &t->timer);
	free(t);
}

void
task_abandon(struct task *t)
{
	if (t == NULL || t->finished || t->abandoned)
		return;
	if (t->running > 0) {
		/* A fiber is inside lua_resume: free it when it comes back. */
		t->abandoned = true;
		ev_timer_stop(loop, &t->timer);
		for (struct fiber *f = t->fibers; f != NULL; f = f->task_next)
			if (f->op != NULL && !f->op->done) {
				struct task_op *op = f->op;

				f->op = NULL;
				if (op->ops->cancel != NULL)
					op->ops->cancel(op);
				task_op_free(op);
			}
		return;
	}
	task_free(t);
}

bool
task_running(const struct task *t)
{
	return t != NULL && t->running > 0;
}

static void
fiber_free(struct fiber *f)
{
	struct task *t = f->task;
	struct fiber **pp;

	/* Children first (a fiber waiting in smtp.all). */
	for (struct fiber *c = t->fibers; c != NULL; ) {
		struct fiber *next = c->task_next;

		if (c->parent == f)
			fiber_free(c);
		c = next;
	}
	if (f->op != NULL) {
		struct task_op *op = f->op;

		f->op = NULL;
		if (!op->done && op->ops->cancel != NULL)
			op->ops->cancel(op);
		task_op_free(op);
	}
	for (pp = bucket_of(f->id); *pp != NULL; pp = &(*pp)->hash_next)
		if (*pp == f) {
			*pp = f->hash_next;
			break;
		}
	for (pp = &t->fibers; *pp != NULL; pp = &(*pp)->task_next)
		if (*pp == f) {
			*pp = f->task_next;
			break;
		}
	t->nfibers--;
	if (t->main == f)
		t->main = NULL;
	luaL_unref(vmL, LUA_REGISTRYINDEX, f->co_ref);
	if (f->results_ref != LUA_NOREF)
		luaL_unref(vmL, LUA_REGISTRYINDEX, f->results_ref);
	free(f->child_error);
	free(f);
}

/* ---- operations ---- */

static struct fiber *
fiber_of(lua_State *L, const char *what)
{
	if (running == NULL || running->task->abandoned)
		luaL_error(L, "%s: only inside a hook", what);
	if (running->co != L)
		luaL_error(L, "%s: not from a coroutine of your own; call it "
		    "from the hook itself (or use smtp.all)", what);
	return running;
}

static void
op_timeout_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct task_op *op = w->data;

	(void)l;
	(void)revents;
	op->timed_out = true;
	if (op->ops->cancel != NULL)
		op->ops->cancel(op);
	task_op_complete(op);
}

struct task_op *
task_op_begin(lua_State *L, const struct task_op_ops *ops, void *data,
    double timeout)
{
	struct fiber *f = fiber_of(L, ops->name);
	struct task_op *op;

	if (f->op != NULL)
		luaL_error(L, "%s: busy: another operation is pending", ops->name);
	op = xcalloc(1, sizeof(*op));
	op->ops = ops;
	op->data = data;
	op->fiber_id = f->id;
	op->gen = f->gen;
	op->timeout = timeout;
	op->begun = clock_seconds(CLOCK_MONOTONIC);
	op->kind = metric_op_kind(ops->name);
	ev_timer_init(&op->timer, op_timeout_cb, timeout, 0.);
	op->timer.data = op;
	if (timeout > 0)
		ev_timer_start(loop, &op->timer);
	f->op = op;
	return op;
}

int
task_op_yield(lua_State *L, struct task_op *op)
{
	struct fiber *f = fiber_of(L, op->ops->name);

	if (op->done)
		return 0;	/* collect() takes it at once */
	f->state = F_WAIT_OP;
	return lua_yield(L, 0);
}

void
task_op_complete(struct task_op *op)
{
	struct fiber *f = fiber_lookup(op->fiber_id);

	ev_timer_stop(loop, &op->timer);
	if (f == NULL || f->op != op) {
		/* Its fiber is gone: nobody waits for this answer. */
		log_debug(0, "task late-completion op=%s", op->ops->name);
		if (!op->done && op->ops->cancel != NULL && !op->timed_out)
			op->ops->cancel(op);
		task_op_free(op);
		return;
	}
	if (!op->done)
		hist_observe_l(M_OP_SECONDS, op->kind,
		    clock_seconds(CLOCK_MONOTONIC) - op->begun);
	if (f == running && f->state == F_RUNNING && !op->done) {
		/* Completed before the binding yielded: it will not yield. */
		op->done = true;
		return;
	}
	if (f->gen != op->gen || f->state != F_WAIT_OP || op->done) {
		log_error(f->task->cfg.log_id, "task stale-completion op=%s "
		    "(dropped)", op->ops->name);
		return;
	}
	op->done = true;
	queue_fiber(f);
}

struct task_op *
task_take_result(lua_State *L)
{
	struct fiber *f = fiber_of(L, "collect");
	struct task_op *op = f->op;

	if (op == NULL || !op->done)
		return NULL;
	f->op = NULL;
	return op;
}

void
task_op_free(struct task_op *op)
{
	if (op == NULL)
		return;
	ev_timer_stop(loop, &op->timer);
	if (op->ops->free != NULL)
		op->ops->free(op);
	free(op);
}

/* ---- smtp.all ---- */

int
task_all(lua_State *L, int n)
{
	struct fiber *f = fiber_of(L, "smtp.all");
	struct task *t = f->task;
	struct fiber **kids;

	if (n > TASK_ALL_MAX)
		return luaL_error(L, "smtp.all: at most %d functions", TASK_ALL_MAX);
	if (t->nfibers + (unsigned)n > TASK_FIBERS_MAX)
		return luaL_error(L, "smtp.all: more than %d parallel calls in one "
		    "hook", TASK_FIBERS_MAX);
	if (f->op != NULL)
		return luaL_error(L, "smtp.all: busy: another operation is "
		    "pending");
	for (int i = 1; i <= n; i++)
		luaL_checktype(L, i, LUA_TFUNCTION);
	if (n == 0) {
		f->nchildren = 0;
		return 0;	/* nothing to wait for: collect returns nothing */
	}
	lua_createtable(L, n, 0);
	f->results_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	kids = xcalloc((size_t)n + 1, sizeof(*kids));
	for (int i = 1; i <= n; i++) {
		lua_State *co = lua_newthread(L);
		int ref;

		lua_pushvalue(L, i);
		lua_xmove(L, co, 1);
		ref = luaL_ref(L, LUA_REGISTRYINDEX);
		kids[i] = fiber_new(t, f, (unsigned)i, co, ref);
	}
	f->nchildren = f->pending = (unsigned)n;
	for (int i = 1; i <= n; i++)
		queue_fiber(kids[i]);
	free(kids);
	f->state = F_WAIT_ALL;
	return lua_yield(L, 0);
}

int
task_take_all(lua_State *L)
{
	struct fiber *f = fiber_of(L, "smtp.all");
	unsigned n = f->nchildren;

	if (f->child_error != NULL) {
		lua_pushstring(L, f->child_error);
		free(f->child_error);
		f->child_error = NULL;
		luaL_unref(L, LUA_REGISTRYINDEX, f->results_ref);
		f->results_ref = LUA_NOREF;
		return lua_error(L);
	}
	if (n == 0)
		return 0;
	luaL_checkstack(L, (int)n + 1, "smtp.all: too many results");
	lua_rawgeti(L, LUA_REGISTRYINDEX, f->results_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, f->results_ref);
	f->results_ref = LUA_NOREF;
	for (unsigned i = 1; i <= n; i++)
		lua_rawgeti(L, -1 - (int)(i - 1), (int)i);
	f->nchildren = 0;
	return (int)n;
}

/* ---- accessors, set-up ---- */

struct task *
task_current(lua_State *L)
{
	if (running == NULL || running->co != L || running->task->abandoned)
		return NULL;
	return running->task;
}

void *
task_owner(const struct task *t)
{
	return t->cfg.owner;
}

enum task_owner_kind
task_owner_kind(const struct task *t)
{
	return t->cfg.kind;
}

const char *
task_name(const struct task *t)
{
	return t->cfg.name;
}

uint64_t
task_log_id(const struct task *t)
{
	return t->cfg.log_id;
}

void
task_init(struct ev_loop *l, lua_State *L)
{
	loop = l;
	vmL = L;
	ev_prepare_init(&runq_prepare, runq_prepare_cb);
	ev_prepare_start(loop, &runq_prepare);
	ev_unref(loop);		/* the queue alone must not keep the loop up */
	ev_idle_init(&runq_idle, runq_idle_cb);
}

void
task_shutdown(void)
{
	if (loop == NULL)
		return;
	ev_ref(loop);
	ev_prepare_stop(loop, &runq_prepare);
	if (ev_is_active(&runq_idle))
		ev_idle_stop(loop, &runq_idle);
	free(runq);
	runq = NULL;
	runq_cap = runq_head = runq_len = 0;
	loop = NULL;
}
