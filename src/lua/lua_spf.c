/*
 * lua_spf.c — require "luasmtpd.spf": SPF (RFC 7208) checks from hooks,
 * through src/mailauth/spf.h (libspf2 on the CPU pool, its lookups through
 * the server's resolver).
 *
 *   spf.check{ ip = "192.0.2.1", helo = "mail.example", sender = "a@b",
 *              timeout = s }
 *       -> { result = "pass" | "fail" | "softfail" | "neutral" | "none"
 *                   | "temperror" | "permerror",
 *            domain = the domain checked, reason = why (for logs),
 *            explanation = the exp= text (fail only) or nil,
 *            header = "Received-SPF: pass (...) client-ip=...; ...",
 *            lookups = DNS-querying terms, void_lookups = n }
 *
 * sender "" (or nil) is the null sender: the identity is then
 * postmaster@helo (RFC 7208 §2.4).  helo may be nil.  The check yields
 * the hook; its timeout (default 20 s, at most 60 s, RFC 7208 §4.6.4)
 * covers every lookup, and running out of it is a temperror whose reason
 * is "timeout", like any DNS failure: a check always has a result.
 * Misuse (no ip, not an address, a wrong type, an unknown option, a
 * call outside a hook) raises.
 *
 * header is one line, the whole field with its name, every input quoted
 * or escaped (spf.c): ready for a message.  explanation comes from the
 * sender's DNS, made printable and bounded (SPF_EXPLANATION_MAX).
 *
 * Ownership: the job belongs to its operation.  The result is copied at
 * the callback; cancel() (session closed, hook timed out) calls
 * spf_cancel(), after which the callback never runs, and the worker ends
 * on its own.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/lua_deliver.h"
#include "lua/lua_vm.h"
#include "mailauth/spf.h"
#include "server.h"
#include "task/task.h"
#include "util/xmalloc.h"

struct spf_job {
	struct task_op		*op;
	struct spf_req		*req;		/* NULL once it reported */
	struct spf_result	 res;
};

static void
spf_answer(void *arg, const struct spf_result *res)
{
	struct spf_job *j = arg;

	j->req = NULL;		/* spf.c frees it after this call */
	j->res = *res;
	task_op_complete(j->op);	/* the last: may free j */
}

static void
job_cancel(struct task_op *op)
{
	struct spf_job *j = op->data;

	if (j != NULL && j->req != NULL) {
		spf_cancel(j->req);
		j->req = NULL;
	}
}

static void
job_free(struct task_op *op)
{
	job_cancel(op);
	free(op->data);
	op->data = NULL;
}

static void
set_string(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

static int
push_result(lua_State *L, struct task_op *op)
{
	struct spf_job *j = op->data;
	const struct spf_result *r = &j->res;

	lua_createtable(L, 0, 7);
	set_string(L, "result", r->kind_name);
	set_string(L, "domain", r->domain);
	set_string(L, "reason", r->reason);
	if (r->explanation[0] != '\0')
		set_string(L, "explanation", r->explanation);
	lua_pushfstring(L, "Received-SPF: %s", r->received_spf);
	lua_setfield(L, -2, "header");
	lua_pushinteger(L, r->dns_terms);
	lua_setfield(L, -2, "lookups");
	lua_pushinteger(L, r->void_lookups);
	lua_setfield(L, -2, "void_lookups");
	return 1;
}

static const struct task_op_ops check_ops = {
	.name = "spf.check", .push = push_result, .cancel = job_cancel,
	.free = job_free,
};

/* opts[name]: nil or a string without NUL of at most max octets. */
static const char *
opt_string(lua_State *L, const char *name, size_t max)
{
	const char *s;
	size_t len;

	lb_rawfield(L, 1, name);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return NULL;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "spf.check: %s must be a string", name);
	s = lua_tolstring(L, -1, &len);
	if (strlen(s) != len || len > max)
		luaL_error(L, "spf.check: %s must be at most %d octets without "
		    "NUL", name, (int)max);
	lua_pop(L, 1);		/* the table keeps it */
	return s;
}

/***
 * spf.check{ ip =, helo =, sender =, timeout = } -> result    (yields)
 */
static int
lb_spf_check(lua_State *L)
{
	static const char *const known[] = { "ip", "helo", "sender",
	    "timeout", NULL };
	unsigned char a[16];
	const char *ip, *helo, *sender;
	double timeout = 0;
	struct task_op *op;
	struct spf_job *j;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, 1) != 0) {
		size_t i;

		lua_pop(L, 1);
		for (i = 0; known[i] != NULL; i++)
			if (lua_type(L, -1) == LUA_TSTRING &&
			    strcmp(lua_tostring(L, -1), known[i]) == 0)
				break;
		if (known[i] == NULL)
			return luaL_error(L, "spf.check: unknown option '%s'",
			    lua_type(L, -1) == LUA_TSTRING ?
			    lua_tostring(L, -1) : "?");
	}
	ip = opt_string(L, "ip", INET6_ADDRSTRLEN);
	if (ip == NULL || (inet_pton(AF_INET, ip, a) != 1 &&
	    inet_pton(AF_INET6, ip, a) != 1))
		return luaL_error(L, "spf.check: ip must be an IPv4 or IPv6 "
		    "address");
	/* Longer inputs are checked as "none" (malformed) by spf.c. */
	helo = opt_string(L, "helo", 1024);
	sender = opt_string(L, "sender", 1024);
	lb_rawfield(L, 1, "timeout");
	if (!lua_isnil(L, -1)) {
		timeout = lua_tonumber(L, -1);
		if (lua_type(L, -1) != LUA_TNUMBER || !(timeout > 0) ||
		    timeout > SPF_TIMEOUT_MAX)
			return luaL_error(L, "spf.check: timeout must be a number "
			    "of seconds (0 < timeout <= %d)",
			    (int)SPF_TIMEOUT_MAX);
	}
	lua_pop(L, 1);
	op = task_op_begin(L, &check_ops, NULL, 0);	/* may raise */
	if (server.dns == NULL)
		return luaL_error(L, "spf.check: the resolver is not running");
	j = xcalloc(1, sizeof(*j));
	j->op = op;
	op->data = j;
	/* spf.c copies ip, helo and sender; it never calls back at once. */
	j->req = spf_check(server.dns, ip, helo != NULL ? helo : "",
	    sender != NULL ? sender : "", timeout, spf_answer, j);
	if (j->req == NULL)		/* cannot happen: ip was checked */
		return luaL_error(L, "spf.check: the check did not start");
	return task_op_yield(L, op);
}

int
luaopen_luasmtpd_spf(lua_State *L)
{
	lua_newtable(L);
	lb_task_wrap(L, lb_spf_check, "spf.check");
	lua_setfield(L, -2, "check");
	return 1;
}
