/*
 * lua_kv.c — require "luasmtpd.kv": key-value state for hooks, on the
 * store main.c opened from the `kv` setting (LMDB or Redis, src/kv).
 *
 *   kv.get(key)                     -> value | nil           (absent: one nil)
 *   kv.set(key, value [, { ttl = s, nx = true }])
 *                                   -> true | false, existing (nx, it existed)
 *   kv.incr(key [, delta] [, { ttl = s }])
 *                                   -> the new integer (ttl: when created)
 *   kv.del(key)                     -> true (removed) | false (absent)
 *   kv.limit(key, { rate = per_second, burst = n [, cost = 1] })
 *                                   -> allowed, retry_after, remaining (GCRA)
 *   kv.memoize(fn, { ttl =, key =, prefix = })  (lua/luasmtpd/memoize.lua)
 *   kv.backend()                    -> "lmdb" | "redis" | nil (no store)
 *   kv.KEY_MAX, kv.VALUE_MAX        the bounds, bytes
 *
 * Every call but backend and memoize yields the hook (an operation of the
 * task layer, src/task/task.h), so it works in any hook and in parallel
 * inside smtp.all.  Misuse raises: a key that is not a string of 1 to
 * KV_KEY_MAX bytes, a value that is not a string or number or is over
 * KV_VALUE_MAX, a bad option, a call outside a hook, or no store (the
 * config neither set `kv` nor required this module while it loaded).
 * Failures at run time return nil, err [, detail]: "timeout" (Redis did
 * not answer in kv.command_timeout), "unavailable" (no connection to
 * Redis: calls fail at once during an outage, nothing queues), "busy"
 * (too many requests in flight), "error" (anything else, e.g. incr on a
 * value that is not an integer; detail says what).  Values are bytes;
 * numbers are stored as their decimal text ("42").
 *
 * Ownership: a kv_job belongs to its operation and is freed by the
 * operation's free().  The store copies key and value before kv_* returns;
 * its answer is copied into the job in the callback (valid only then) and
 * turned into Lua values at collect, inside the hook.  A hook let go (the
 * session closed, a timeout) cancels the request: the store never calls
 * back after kv_cancel.  Each operation also has a backstop timer (the
 * store's own timeouts plus KV_LUA_BACKSTOP_SLACK) so no hook can wait
 * forever, whatever the store does.
 *
 * SECURITY: keys often hold client data (addresses, HELO names); they are
 * never logged here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "lua/lua_deliver.h"
#include "lua/lua_vm.h"
#include "server.h"
#include "task/task.h"
#include "util/xmalloc.h"

/* Seconds added to the store's own timeouts for an operation's backstop. */
#define KV_LUA_BACKSTOP_SLACK	1.0
/* LMDB answers in the next loop iteration; this only guards a bug. */
#define KV_LUA_LMDB_BACKSTOP	10.0
/* incr's delta: integers a double holds exactly. */
#define KV_LUA_DELTA_MAX	9007199254740992.0	/* 2^53 */

enum kv_call {
	KVC_GET,
	KVC_SET,
	KVC_INCR,
	KVC_DEL,
	KVC_LIMIT,
};

struct kv_job {
	struct task_op	*op;
	struct kv_req	*req;		/* NULL once answered or cancelled */
	enum kv_call	 call;
	bool		 nx;
	/* the answer, copied in the callback */
	enum kv_status	 status;
	char		*value;
	size_t		 vlen;
	long long	 integer;
	bool		 set;
	bool		 allowed;
	double		 retry_after;
	long long	 remaining;
	char		 error[KV_ERROR_TEXT_MAX];
};

/* ---- arguments (all checked before the operation begins) ---- */

static struct kv *
store(lua_State *L, const char *what)
{
	if (task_current(L) == NULL)
		luaL_error(L, "%s: only inside a hook", what);
	if (server.kv == NULL)
		luaL_error(L, "%s: no key-value store: set kv = { ... } or "
		    "require \"luasmtpd.kv\" at the top of the config", what);
	return server.kv;
}

static const char *
check_key(lua_State *L, int idx, size_t *len)
{
	const char *k;

	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_argerror(L, idx, "the key must be a string");
	k = lua_tolstring(L, idx, len);
	if (*len == 0 || *len > KV_KEY_MAX)
		luaL_argerror(L, idx, lua_pushfstring(L, "the key must be 1 to %d "
		    "bytes", KV_KEY_MAX));
	return k;
}

/* The options table at idx (nil allowed): only the known names. */
static bool
check_opts(lua_State *L, int idx, const char *what, const char *const *known)
{
	if (lua_isnoneornil(L, idx))
		return false;
	if (!lua_istable(L, idx))
		luaL_argerror(L, idx, "expected an options table");
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		size_t i;

		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "%s: option names are strings", what);
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(lua_tostring(L, -1), known[i]) == 0)
				break;
		if (known[i] == NULL)
			luaL_error(L, "%s: unknown option '%s'", what,
			    lua_tostring(L, -1));
	}
	return true;
}

/* A whole number option in [lo, hi]; dflt if absent. */
static double
opt_whole(lua_State *L, int idx, const char *what, const char *name,
    double lo, double hi, double dflt)
{
	double v = dflt;

	lb_rawfield(L, idx, name);
	if (!lua_isnil(L, -1)) {
		v = lua_tonumber(L, -1);
		if (lua_type(L, -1) != LUA_TNUMBER || v != floor(v) ||
		    !(v >= lo && v <= hi))
			luaL_error(L, "%s: %s must be a whole number from %.0f to "
			    "%.0f", what, name, lo, hi);
	}
	lua_pop(L, 1);
	return v;
}

static unsigned
opt_ttl(lua_State *L, int idx, const char *what)
{
	return (unsigned)opt_whole(L, idx, what, "ttl", 1, KV_TTL_MAX, 0);
}

/* ---- the operation ---- */

static void
job_answer(void *arg, const struct kv_result *res)
{
	struct kv_job *j = arg;

	j->req = NULL;		/* the store frees it after we return */
	j->status = res->status;
	if (res->value != NULL && res->vlen <= KV_VALUE_MAX) {
		j->value = xmalloc(res->vlen + 1);
		memcpy(j->value, res->value, res->vlen);
		j->value[res->vlen] = '\0';
		j->vlen = res->vlen;
	}
	j->integer = res->integer;
	j->set = res->set;
	j->allowed = res->allowed;
	j->retry_after = res->retry_after;
	j->remaining = res->remaining;
	if (res->error != NULL)
		snprintf(j->error, sizeof(j->error), "%s", res->error);
	task_op_complete(j->op);	/* may free the job: the last use */
}

static void
job_cancel(struct task_op *op)
{
	struct kv_job *j = op->data;

	if (j != NULL && j->req != NULL) {
		kv_cancel(j->req);
		j->req = NULL;
	}
}

static void
job_free(struct task_op *op)
{
	struct kv_job *j = op->data;

	if (j == NULL)
		return;
	if (j->req != NULL)
		kv_cancel(j->req);
	free(j->value);
	free(j);
}

/* nil, "timeout" | "unavailable" | "busy" | "error" [, detail] */
static int
push_failure(lua_State *L, const struct kv_job *j)
{
	const char *err = "error";

	if (j->status == KV_TIMEOUT)
		err = "timeout";
	else if (j->status == KV_UNAVAILABLE)
		err = "unavailable";
	else if (strcmp(j->error, "busy") == 0)
		err = "busy";
	lua_pushnil(L);
	lua_pushstring(L, err);
	if (j->error[0] == '\0' || strcmp(j->error, err) == 0)
		return 2;
	lua_pushstring(L, j->error);
	return 3;
}

static int
push_result(lua_State *L, struct task_op *op)
{
	struct kv_job *j = op->data;

	if (j->call == KVC_GET && j->status == KV_NOTFOUND) {
		lua_pushnil(L);
		return 1;
	}
	if (j->status != KV_OK)
		return push_failure(L, j);
	switch (j->call) {
	case KVC_GET:
		lua_pushlstring(L, j->value != NULL ? j->value : "", j->vlen);
		return 1;
	case KVC_SET:
		if (j->nx && !j->set) {
			lua_pushboolean(L, 0);
			lua_pushlstring(L, j->value != NULL ? j->value : "",
			    j->vlen);
			return 2;
		}
		lua_pushboolean(L, 1);
		return 1;
	case KVC_INCR:
		lua_pushnumber(L, (lua_Number)j->integer);
		return 1;
	case KVC_DEL:
		lua_pushboolean(L, j->integer > 0);
		return 1;
	case KVC_LIMIT:
		lua_pushboolean(L, j->allowed);
		lua_pushnumber(L, j->retry_after);
		lua_pushnumber(L, (lua_Number)j->remaining);
		return 3;
	}
	return 0;
}

#define KV_OPS(call, label) \
	static const struct task_op_ops call##_ops = { \
		.name = label, .push = push_result, .cancel = job_cancel, \
		.free = job_free, \
	}
KV_OPS(get, "kv.get");
KV_OPS(set, "kv.set");
KV_OPS(incr, "kv.incr");
KV_OPS(del, "kv.del");
KV_OPS(limit, "kv.limit");

/* The store's own timeouts plus slack (Redis), or the LMDB guard. */
static double
backstop(void)
{
	const struct kv_config *k = &server.cfg->kv;

	if (strcmp(kv_backend_name(server.kv), "redis") != 0)
		return KV_LUA_LMDB_BACKSTOP;
	return (k->connect_timeout > 0 ? k->connect_timeout :
	    KV_REDIS_CONNECT_TIMEOUT) + (k->command_timeout > 0 ?
	    k->command_timeout : KV_REDIS_COMMAND_TIMEOUT) +
	    KV_LUA_BACKSTOP_SLACK;
}

/* Begin the running fiber's operation (raises outside a hook). */
static struct kv_job *
job_begin(lua_State *L, const struct task_op_ops *ops, enum kv_call call)
{
	struct task_op *op = task_op_begin(L, ops, NULL, backstop());
	struct kv_job *j = xcalloc(1, sizeof(*j));

	op->data = j;
	j->op = op;
	j->call = call;
	return j;
}

/* ---- the calls ---- */

static int
lb_kv_get_start(lua_State *L)
{
	struct kv *kv = store(L, "kv.get");
	size_t klen;
	const char *key = check_key(L, 1, &klen);
	struct kv_job *j = job_begin(L, &get_ops, KVC_GET);

	j->req = kv_get(kv, key, klen, job_answer, j);
	return task_op_yield(L, j->op);
}

static int
lb_kv_set_start(lua_State *L)
{
	static const char *const known[] = { "ttl", "nx", NULL };
	struct kv *kv = store(L, "kv.set");
	size_t klen, vlen;
	const char *key = check_key(L, 1, &klen), *val;
	unsigned ttl = 0;
	bool nx = false;
	struct kv_job *j;

	if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TNUMBER)
		return luaL_argerror(L, 2, "the value must be a string or a "
		    "number");
	val = lua_tolstring(L, 2, &vlen);
	if (vlen > KV_VALUE_MAX)
		return luaL_argerror(L, 2, lua_pushfstring(L, "the value is over "
		    "%d bytes", KV_VALUE_MAX));
	if (check_opts(L, 3, "kv.set", known)) {
		ttl = opt_ttl(L, 3, "kv.set");
		lb_rawfield(L, 3, "nx");
		if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN)
			return luaL_error(L, "kv.set: nx must be true or false");
		nx = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	j = job_begin(L, &set_ops, KVC_SET);
	j->nx = nx;
	j->req = kv_set(kv, key, klen, val, vlen, ttl, nx ? KV_NX : 0,
	    job_answer, j);
	return task_op_yield(L, j->op);
}

static int
lb_kv_incr_start(lua_State *L)
{
	static const char *const known[] = { "ttl", NULL };
	struct kv *kv = store(L, "kv.incr");
	size_t klen;
	const char *key = check_key(L, 1, &klen);
	double delta = 1;
	int opts = 3;
	unsigned ttl = 0;
	struct kv_job *j;

	if (lua_istable(L, 2)) {
		opts = 2;		/* kv.incr(key, { ttl = ... }) */
	} else if (!lua_isnoneornil(L, 2)) {
		delta = lua_tonumber(L, 2);
		if (lua_type(L, 2) != LUA_TNUMBER || delta != floor(delta) ||
		    fabs(delta) > KV_LUA_DELTA_MAX)
			return luaL_argerror(L, 2, "delta must be a whole number "
			    "(at most 2^53)");
	}
	if (check_opts(L, opts, "kv.incr", known))
		ttl = opt_ttl(L, opts, "kv.incr");
	j = job_begin(L, &incr_ops, KVC_INCR);
	j->req = kv_incr(kv, key, klen, (long long)delta, ttl, job_answer, j);
	return task_op_yield(L, j->op);
}

static int
lb_kv_del_start(lua_State *L)
{
	struct kv *kv = store(L, "kv.del");
	size_t klen;
	const char *key = check_key(L, 1, &klen);
	struct kv_job *j = job_begin(L, &del_ops, KVC_DEL);

	j->req = kv_del(kv, key, klen, job_answer, j);
	return task_op_yield(L, j->op);
}

static int
lb_kv_limit_start(lua_State *L)
{
	static const char *const known[] = { "rate", "burst", "cost", NULL };
	struct kv *kv = store(L, "kv.limit");
	size_t klen;
	const char *key = check_key(L, 1, &klen);
	double rate, burst, cost;
	struct kv_job *j;

	if (!check_opts(L, 2, "kv.limit", known))
		return luaL_argerror(L, 2, "expected { rate = per_second, "
		    "burst = n }");
	lb_rawfield(L, 2, "rate");
	rate = lua_tonumber(L, -1);
	if (lua_type(L, -1) != LUA_TNUMBER || !isfinite(rate) ||
	    rate < KV_GCRA_RATE_MIN || rate > KV_GCRA_RATE_MAX)
		return luaL_error(L, "kv.limit: rate must be a number of requests "
		    "per second from 1 per 10 years to %.0f", KV_GCRA_RATE_MAX);
	lua_pop(L, 1);
	burst = opt_whole(L, 2, "kv.limit", "burst", 1, KV_GCRA_BURST_MAX, 0);
	if (burst == 0)
		return luaL_error(L, "kv.limit: burst is required");
	cost = opt_whole(L, 2, "kv.limit", "cost", 0, burst, 1);
	/* kv_gcra's own bound: the whole burst within KV_TTL_MAX. */
	if (nearbyint(1e6 / rate) * burst > 1e6 * KV_TTL_MAX)
		return luaL_error(L, "kv.limit: burst / rate is over ten years");
	j = job_begin(L, &limit_ops, KVC_LIMIT);
	j->req = kv_gcra(kv, key, klen, rate, (unsigned)burst, (unsigned)cost,
	    job_answer, j);
	return task_op_yield(L, j->op);
}

/* kv.backend() -> "lmdb" | "redis" | nil; does not yield. */
static int
lb_kv_backend(lua_State *L)
{
	if (server.kv == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, kv_backend_name(server.kv));
	return 1;
}

int
luaopen_luasmtpd_kv(lua_State *L)
{
	static const struct {
		const char	*name;
		const char	*label;
		lua_CFunction	 start;
	} calls[] = {
		{ "get", "kv.get", lb_kv_get_start },
		{ "set", "kv.set", lb_kv_set_start },
		{ "incr", "kv.incr", lb_kv_incr_start },
		{ "del", "kv.del", lb_kv_del_start },
		{ "limit", "kv.limit", lb_kv_limit_start },
	};
	int m;

	/* Required while the config loads: main.c opens the store at start. */
	if (vm.cfg != NULL)
		vm.cfg->kv_wanted = true;
	lua_newtable(L);
	m = lua_gettop(L);
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		lb_task_wrap(L, calls[i].start, calls[i].label);
		lua_setfield(L, m, calls[i].name);
	}
	lua_pushcfunction(L, lb_kv_backend);
	lua_setfield(L, m, "backend");
	lua_pushinteger(L, KV_KEY_MAX);
	lua_setfield(L, m, "KEY_MAX");
	lua_pushinteger(L, KV_VALUE_MAX);
	lua_setfield(L, m, "VALUE_MAX");
	/* kv.memoize = require("luasmtpd.memoize").bind(kv) */
	lua_getfield(L, LUA_GLOBALSINDEX, "require");
	lua_pushliteral(L, "luasmtpd.memoize");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "bind");
	lua_pushvalue(L, m);
	lua_call(L, 1, 1);
	lua_setfield(L, m, "memoize");
	lua_settop(L, m);
	return 1;
}
