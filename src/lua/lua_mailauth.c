/*
 * lua_mailauth.c — require "luasmtpd.mailauth": DKIM, DMARC and
 * Authentication-Results in hooks (RFC 6376, RFC 8463, RFC 7489, RFC 8601).
 *
 *   msg:dkim()  or  mailauth.dkim(msg)                          (yields)
 *       -> { result =, reason =, skipped =, signatures = { { result =,
 *            domain =, selector =, identity =, algorithm =, b =, reason =,
 *            partial =, testing =, dnssec =, key_bits = }, ... } }
 *          the signatures were checked while the message arrived (the
 *          `mailauth = { dkim_verify = true }` setting); this waits for
 *          the last of them.  nil, err if verification is off.
 *   mailauth.dmarc{ from = domain, spf = { result =, domain = },
 *                   dkim = <msg:dkim() result> [, pct_roll =, timeout =] }
 *       -> { result =, policy =, disposition =, sampled_out =, p =, sp =,
 *            pct =, spf_aligned =, dkim_aligned =, from_domain =,
 *            org_domain =, record_domain =, reason = }      (yields)
 *   mailauth.results{ spf =, dkim =, dmarc =, iprev = { result =, name = },
 *                     ip = } -> the Authentication-Results field (a string)
 *   mailauth.add_results(msg, { ... })  adds that field to the message
 *   mailauth.key(path) -> a private key (load it when the config loads)
 *   mailauth.key_record(key) -> the TXT record to publish for it
 *   mailauth.sign(msg, { domain =, selector =, key =, canon = "relaxed/relaxed",
 *                  headers = { ... } } [, more signatures])  (yields)
 *       -> true | nil, err; the DKIM-Signature fields are added to the
 *          message (they cover the fields hooks added before, and go out
 *          on every delivery path)
 *
 * Misuse raises; run-time failures return nil, err.  The C work (hashes,
 * key lookups, record parsing) is src/mailauth's, on the CPU pool and the
 * resolver.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/lua_deliver.h"
#include "lua/lua_vm.h"
#include "mailauth/authres.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "task/task.h"
#include "util/xmalloc.h"

#define KEY_MT		"luasmtpd.dkim_key"

struct lb_key {
	struct dkim_key	*key;
};

/* ---- tables <-> results ---- */

static void
setstr(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

static void
setbool(lua_State *L, const char *k, bool v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

static void
push_dkim(lua_State *L, const struct dkim_verify_result *r)
{
	lua_createtable(L, 0, 4);
	setstr(L, "result", dkim_res_name(r->res));
	setstr(L, "reason", r->reason);
	lua_pushinteger(L, r->skipped);
	lua_setfield(L, -2, "skipped");
	lua_createtable(L, (int)r->nsigs, 0);
	for (size_t i = 0; i < r->nsigs; i++) {
		const struct dkim_sig_result *g = &r->sig[i];

		lua_createtable(L, 0, 11);
		setstr(L, "result", dkim_res_name(g->res));
		setstr(L, "domain", g->domain);
		setstr(L, "selector", g->selector);
		setstr(L, "identity", g->identity);
		setstr(L, "algorithm", g->algorithm);
		setstr(L, "b", g->b);
		setstr(L, "reason", g->reason);
		setbool(L, "partial", g->partial);
		setbool(L, "testing", g->testing);
		setbool(L, "dnssec", g->dnssec);
		lua_pushinteger(L, g->key_bits);
		lua_setfield(L, -2, "key_bits");
		lua_rawseti(L, -2, (int)i + 1);
	}
	lua_setfield(L, -2, "signatures");
}

static const char *
rawstr(lua_State *L, int idx, const char *k, size_t max)
{
	const char *v;
	size_t len;

	lb_rawfield(L, idx, k);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return NULL;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "mailauth: %s must be a string", k);
	v = lua_tolstring(L, -1, &len);
	if (len > max || strlen(v) != len)
		luaL_error(L, "mailauth: %s is too long or has a NUL", k);
	lua_pop(L, 1);		/* the table keeps it alive */
	return v;
}

static enum dkim_res
dkim_res_of(lua_State *L, const char *name)
{
	for (int i = DKIM_RES_NONE; i <= DKIM_RES_PERMERROR; i++)
		if (strcmp(dkim_res_name((enum dkim_res)i), name) == 0)
			return (enum dkim_res)i;
	return (enum dkim_res)luaL_error(L, "mailauth: unknown DKIM result '%s'",
	    name);
}

static enum spf_kind
spf_kind_of(lua_State *L, const char *name)
{
	for (int i = SPF_KIND_PASS; i <= SPF_KIND_PERMERROR; i++)
		if (strcmp(spf_kind_name((enum spf_kind)i), name) == 0)
			return (enum spf_kind)i;
	return (enum spf_kind)luaL_error(L, "mailauth: unknown SPF result '%s'",
	    name);
}

/* A msg:dkim() table (at idx) back into a result (raises on misuse). */
static void
dkim_from_table(lua_State *L, int idx, struct dkim_verify_result *r)
{
	const char *s;

	memset(r, 0, sizeof(*r));
	idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
	if ((s = rawstr(L, idx, "result", 32)) != NULL)
		r->res = dkim_res_of(L, s);
	if ((s = rawstr(L, idx, "reason", DKIM_REASON_MAX - 1)) != NULL)
		snprintf(r->reason, sizeof(r->reason), "%s", s);
	lb_rawfield(L, idx, "signatures");
	if (lua_istable(L, -1)) {
		int sigs = lua_gettop(L);

		for (size_t i = 1; i <= lua_objlen(L, sigs) &&
		    r->nsigs < DKIM_SIGS_MAX; i++) {
			struct dkim_sig_result *g = &r->sig[r->nsigs];

			lua_rawgeti(L, sigs, (int)i);
			if (!lua_istable(L, -1))
				luaL_error(L, "mailauth: dkim.signatures holds "
				    "tables");
			if ((s = rawstr(L, -1, "result", 32)) != NULL)
				g->res = dkim_res_of(L, s);
#define COPY(f, max) \
			if ((s = rawstr(L, -1, #f, max)) != NULL) \
				snprintf(g->f, sizeof(g->f), "%s", s)
			COPY(domain, DKIM_DOMAIN_MAX);
			COPY(selector, DKIM_SELECTOR_MAX);
			COPY(identity, DKIM_IDENTITY_MAX);
			COPY(algorithm, DKIM_ALGORITHM_MAX - 1);
			COPY(b, DKIM_HEADER_B_MAX);
			COPY(reason, DKIM_REASON_MAX - 1);
#undef COPY
			g->body_length = -1;
			r->nsigs++;
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
}

/* ---- msg:dkim() ---- */

struct dkim_wait {
	struct task_op		*op;
	struct smtp_tx		*tx;
};

static void
dkim_wake(void *arg)
{
	struct dkim_wait *w = arg;

	task_op_complete(w->op);
}

static int
dkim_push(lua_State *L, struct task_op *op)
{
	struct dkim_wait *w = op->data;

	if (w->tx->dkim_res == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "DKIM verification did not finish");
		return 2;
	}
	push_dkim(L, w->tx->dkim_res);
	return 1;
}

static void
dkim_wait_cancel(struct task_op *op)
{
	struct dkim_wait *w = op->data;

	if (w != NULL && w->tx->dkim_waiter == w) {
		w->tx->dkim_wake = NULL;
		w->tx->dkim_waiter = NULL;
	}
}

static void
dkim_wait_free(struct task_op *op)
{
	dkim_wait_cancel(op);
	free(op->data);
}

static const struct task_op_ops dkim_ops = {
	.name = "dkim", .push = dkim_push, .cancel = dkim_wait_cancel,
	.free = dkim_wait_free,
};

static int
lb_dkim_start(lua_State *L)
{
	struct smtp_tx *tx = lb_check_message(L, 1);
	struct dkim_wait *w;
	struct task_op *op;

	if (tx->dkim == NULL && tx->dkim_res == NULL)
		luaL_error(L, "dkim: verification is off (set mailauth = { "
		    "dkim_verify = true })");
	op = task_op_begin(L, &dkim_ops, NULL, 0);
	w = xcalloc(1, sizeof(*w));
	w->op = op;
	w->tx = tx;
	op->data = w;
	if (tx->dkim_res != NULL) {
		task_op_complete(op);		/* known: no yield */
	} else {
		tx->dkim_wake = dkim_wake;
		tx->dkim_waiter = w;
	}
	return task_op_yield(L, op);
}

/* ---- mailauth.dmarc{} ---- */

struct dmarc_job {
	struct task_op		*op;
	struct dmarc_req	*req;
	struct dmarc_result	 res;
	bool			 done;
};

static void
dmarc_done(void *arg, const struct dmarc_result *r)
{
	struct dmarc_job *j = arg;

	j->req = NULL;
	j->res = *r;
	j->done = true;
	task_op_complete(j->op);
}

static int
dmarc_push(lua_State *L, struct task_op *op)
{
	struct dmarc_job *j = op->data;
	const struct dmarc_result *r = &j->res;

	lua_createtable(L, 0, 16);
	setstr(L, "result", dmarc_res_name(r->res));
	setstr(L, "policy", dmarc_policy_name(r->policy));
	setstr(L, "disposition", dmarc_policy_name(r->disposition));
	setbool(L, "sampled_out", r->sampled_out);
	setstr(L, "p", dmarc_policy_name(r->p));
	setstr(L, "sp", dmarc_policy_name(r->sp));
	lua_pushinteger(L, r->pct);
	lua_setfield(L, -2, "pct");
	setbool(L, "spf_aligned", r->spf_aligned);
	setbool(L, "dkim_aligned", r->dkim_aligned);
	setstr(L, "from_domain", r->from_domain);
	setstr(L, "org_domain", r->org_domain);
	setstr(L, "record_domain", r->record_domain);
	setstr(L, "spf_domain", r->spf_domain);
	setstr(L, "dkim_domain", r->dkim_domain);
	setstr(L, "reason", r->reason);
	return 1;
}

static void
dmarc_op_cancel(struct task_op *op)
{
	struct dmarc_job *j = op->data;

	if (j != NULL && j->req != NULL) {
		dmarc_cancel(j->req);
		j->req = NULL;
	}
}

static void
dmarc_op_free(struct task_op *op)
{
	dmarc_op_cancel(op);
	free(op->data);
}

static const struct task_op_ops dmarc_ops = {
	.name = "dmarc", .push = dmarc_push, .cancel = dmarc_op_cancel,
	.free = dmarc_op_free,
};

static int
lb_dmarc_start(lua_State *L)
{
	struct dmarc_dkim_input dk[DKIM_SIGS_MAX];
	struct dkim_verify_result dres;
	struct dmarc_input in;
	struct dmarc_job *j;
	struct task_op *op;
	const char *s;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	if (server.dns == NULL)
		luaL_error(L, "dmarc: no resolver");
	memset(&in, 0, sizeof(in));
	if ((in.from_domain = rawstr(L, 1, "from", DMARC_DOMAIN_MAX)) == NULL)
		luaL_error(L, "dmarc: from = the From: domain is required");
	in.spf = SPF_KIND_NONE;
	lb_rawfield(L, 1, "spf");		/* 2 */
	if (lua_istable(L, 2)) {
		if ((s = rawstr(L, 2, "result", 32)) != NULL)
			in.spf = spf_kind_of(L, s);
		in.spf_domain = rawstr(L, 2, "domain", DMARC_DOMAIN_MAX);
	}
	lb_rawfield(L, 1, "dkim");		/* 3 */
	memset(&dres, 0, sizeof(dres));
	if (lua_istable(L, 3))
		dkim_from_table(L, 3, &dres);
	for (size_t i = 0; i < dres.nsigs; i++) {
		dk[i].domain = dres.sig[i].domain;
		dk[i].selector = dres.sig[i].selector;
		dk[i].res = dres.sig[i].res;
	}
	in.dkim = dk;
	in.ndkim = dres.nsigs;
	in.pct_roll = -1;
	lb_rawfield(L, 1, "pct_roll");
	if (!lua_isnil(L, -1))
		in.pct_roll = (int)luaL_checkinteger(L, -1);
	lua_pop(L, 1);
	if (in.pct_roll < -1 || in.pct_roll > 99)
		luaL_error(L, "dmarc: pct_roll is 0..99");
	op = task_op_begin(L, &dmarc_ops, NULL, 0);
	j = xcalloc(1, sizeof(*j));
	j->op = op;
	op->data = j;
	/* The strings are copied by dmarc_check (they live in this frame). */
	j->req = dmarc_check(server.dns, &in, dmarc_done, j);
	return task_op_yield(L, op);
}

/* ---- Authentication-Results ---- */

static void
build_results(lua_State *L, int idx, struct authres *ar, const char *id)
{
	const char *s;

	authres_init(ar, id);
	lb_rawfield(L, idx, "iprev");
	if (lua_istable(L, -1)) {
		const char *res = rawstr(L, -1, "result", 32);

		if (res != NULL)
			(void)authres_add_iprev(ar, res, rawstr(L, idx, "ip", 64),
			    rawstr(L, -1, "name", 255));
	}
	lua_pop(L, 1);
	lb_rawfield(L, idx, "spf");
	if (lua_istable(L, -1)) {
		struct spf_result sr;

		memset(&sr, 0, sizeof(sr));
		if ((s = rawstr(L, -1, "result", 32)) != NULL) {
			sr.kind = spf_kind_of(L, s);
			sr.kind_name = spf_kind_name(sr.kind);
			if ((s = rawstr(L, -1, "domain", SPF_DOMAIN_MAX)) != NULL)
				snprintf(sr.domain, sizeof(sr.domain), "%s", s);
			if ((s = rawstr(L, -1, "reason", 200)) != NULL)
				snprintf(sr.reason, sizeof(sr.reason), "%s", s);
			(void)authres_add_spf(ar, &sr);
		}
	}
	lua_pop(L, 1);
	lb_rawfield(L, idx, "dkim");
	if (lua_istable(L, -1)) {
		struct dkim_verify_result *dr = xmalloc(sizeof(*dr));

		dkim_from_table(L, -1, dr);
		(void)authres_add_dkim(ar, dr);
		free(dr);
	}
	lua_pop(L, 1);
	lb_rawfield(L, idx, "dmarc");
	if (lua_istable(L, -1)) {
		struct dmarc_result mr;

		memset(&mr, 0, sizeof(mr));
		if ((s = rawstr(L, -1, "result", 32)) != NULL) {
			for (int i = DMARC_RES_NONE; i <= DMARC_RES_PERMERROR; i++)
				if (strcmp(dmarc_res_name((enum dmarc_res)i), s) == 0)
					mr.res = (enum dmarc_res)i;
			if ((s = rawstr(L, -1, "from_domain", DMARC_DOMAIN_MAX)))
				snprintf(mr.from_domain, sizeof(mr.from_domain),
				    "%s", s);
			for (int k = 0; k < 2; k++) {
				const char *name = k ? "disposition" : "policy";

				if ((s = rawstr(L, -1, name, 32)) == NULL)
					continue;
				for (int i = DMARC_P_NONE; i <= DMARC_P_REJECT; i++)
					if (strcmp(dmarc_policy_name(
					    (enum dmarc_policy)i), s) == 0) {
						if (k)
							mr.disposition = i;
						else
							mr.policy = i;
					}
			}
			(void)authres_add_dmarc(ar, &mr);
		}
	}
	lua_pop(L, 1);
}

static const char *
our_id(void)
{
	return vm.cfg->mailauth.authserv_id != NULL ?
	    vm.cfg->mailauth.authserv_id : vm.cfg->hostname;
}

static int
lb_results(lua_State *L)
{
	struct authres *ar;
	const char *f;
	size_t len;

	luaL_checktype(L, 1, LUA_TTABLE);
	ar = lua_newuserdata(L, sizeof(*ar));	/* big: not on the C stack */
	build_results(L, 1, ar, our_id());
	f = authres_field(ar, &len);
	lua_pushlstring(L, f, len);
	return 1;
}

static int
lb_add_results(lua_State *L)
{
	struct smtp_tx *tx = lb_check_message(L, 1);
	struct authres *ar;
	char err[200];
	const char *f;
	size_t len;

	luaL_checktype(L, 2, LUA_TTABLE);
	ar = lua_newuserdata(L, sizeof(*ar));
	build_results(L, 2, ar, our_id());
	f = authres_field(ar, &len);
	if (smtp_tx_add_field_raw(tx, f, len, err, sizeof(err)) != 0)
		return luaL_error(L, "add_results: %s", err);
	return 0;
}

/* ---- keys and signing ---- */

static struct dkim_key *
check_key(lua_State *L, int idx)
{
	struct lb_key *k = luaL_checkudata(L, idx, KEY_MT);

	if (k->key == NULL)
		luaL_error(L, "dkim key is gone");
	return k->key;
}

static int
lb_key(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct lb_key *k = lua_newuserdata(L, sizeof(*k));
	char err[256];

	k->key = NULL;
	luaL_getmetatable(L, KEY_MT);
	lua_setmetatable(L, -2);
	/* Blocking read of a small file: load keys when the config loads. */
	if ((k->key = dkim_key_load(path, err, sizeof(err))) == NULL) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		return 2;
	}
	return 1;
}

static int
lb_key_gc(lua_State *L)
{
	struct lb_key *k = luaL_checkudata(L, 1, KEY_MT);

	dkim_key_unref(k->key);
	k->key = NULL;
	return 0;
}

static int
lb_key_record(lua_State *L)
{
	char rec[2048];

	if (dkim_key_record(check_key(L, 1), rec, sizeof(rec)) != 0)
		return luaL_error(L, "key_record: record too long");
	lua_pushstring(L, rec);
	return 1;
}

struct sign_job {
	struct task_op		*op;
	struct dkim_sign_req	*req;
	struct smtp_tx		*tx;
	bool			 ok;
	char			 err[DKIM_REASON_MAX];
};

static void
sign_done(void *arg, const struct dkim_sign_result *r)
{
	struct sign_job *j = arg;

	j->req = NULL;
	j->ok = r->ok;
	if (!r->ok)
		snprintf(j->err, sizeof(j->err), "%s", r->error);
	/* The hook still waits: the signatures go onto its message now. */
	for (size_t i = 0; r->ok && i < r->n; i++)
		if (smtp_tx_add_field_raw(j->tx, r->field[i], r->len[i], j->err,
		    sizeof(j->err)) != 0)
			j->ok = false;
	task_op_complete(j->op);
}

static int
sign_push(lua_State *L, struct task_op *op)
{
	struct sign_job *j = op->data;

	if (j->ok) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	lua_pushstring(L, j->err);
	return 2;
}

static void
sign_cancel(struct task_op *op)
{
	struct sign_job *j = op->data;

	if (j != NULL && j->req != NULL) {
		dkim_sign_cancel(j->req);
		j->req = NULL;
	}
}

static void
sign_free(struct task_op *op)
{
	sign_cancel(op);
	free(op->data);
}

static const struct task_op_ops sign_ops = {
	.name = "dkim sign", .push = sign_push, .cancel = sign_cancel,
	.free = sign_free,
};

static enum dkim_canon
canon_of(lua_State *L, const char *s, size_t len)
{
	if (len == 7 && strncmp(s, "relaxed", 7) == 0)
		return DKIM_C_RELAXED;
	if (len == 6 && strncmp(s, "simple", 6) == 0)
		return DKIM_C_SIMPLE;
	return (enum dkim_canon)luaL_error(L, "sign: canon is \"relaxed\" or "
	    "\"simple\", or two of them as \"header/body\"");
}

static int
lb_sign_start(lua_State *L)
{
	struct smtp_tx *tx = lb_check_message(L, 1);
	struct dkim_sign_opts o[DKIM_SIGN_MAX];
	const char *hdrs[DKIM_SIGN_MAX][DKIM_SIGN_HEADERS_MAX + 1];
	struct sign_job *j;
	struct task_op *op;
	char err[256];
	int n = lua_gettop(L) - 1;

	if (n < 1 || n > DKIM_SIGN_MAX)
		luaL_error(L, "sign: 1 to %d signatures", DKIM_SIGN_MAX);
	memset(o, 0, sizeof(o));
	for (int i = 0; i < n; i++) {
		int t = i + 2;
		const char *canon, *slash;

		luaL_checktype(L, t, LUA_TTABLE);
		o[i].domain = rawstr(L, t, "domain", DKIM_DOMAIN_MAX);
		o[i].selector = rawstr(L, t, "selector", DKIM_SELECTOR_MAX);
		o[i].identity = rawstr(L, t, "identity", DKIM_IDENTITY_MAX);
		if (o[i].domain == NULL || o[i].selector == NULL)
			luaL_error(L, "sign: domain and selector are required");
		lb_rawfield(L, t, "key");
		o[i].key = check_key(L, -1);
		lua_pop(L, 1);
		o[i].header_canon = o[i].body_canon = DKIM_C_RELAXED;
		if ((canon = rawstr(L, t, "canon", 32)) != NULL) {
			slash = strchr(canon, '/');
			o[i].header_canon = canon_of(L, canon, slash != NULL ?
			    (size_t)(slash - canon) : strlen(canon));
			o[i].body_canon = slash != NULL ? canon_of(L, slash + 1,
			    strlen(slash + 1)) : o[i].header_canon;
		}
		lb_rawfield(L, t, "headers");
		if (lua_istable(L, -1)) {
			size_t k, len = lua_objlen(L, -1);

			if (len > DKIM_SIGN_HEADERS_MAX)
				luaL_error(L, "sign: at most %d headers",
				    DKIM_SIGN_HEADERS_MAX);
			for (k = 0; k < len; k++) {
				lua_rawgeti(L, -1, (int)k + 1);
				if (lua_type(L, -1) != LUA_TSTRING)
					luaL_error(L, "sign: headers are names");
				hdrs[i][k] = lua_tostring(L, -1);
				lua_pop(L, 1);	/* the table keeps it */
			}
			hdrs[i][k] = NULL;
			o[i].headers = hdrs[i];
		}
		lua_pop(L, 1);
	}
	op = task_op_begin(L, &sign_ops, NULL, 0);
	j = xcalloc(1, sizeof(*j));
	j->op = op;
	j->tx = tx;
	op->data = j;
	/* The fields hooks added so far go out first: sign them too. */
	j->req = dkim_sign_start(o, (size_t)n, tx->spool.fd, 0,
	    buf_head(&tx->added), buf_used(&tx->added), 0, sign_done, j, err,
	    sizeof(err));
	if (j->req == NULL) {
		snprintf(j->err, sizeof(j->err), "%s", err);
		task_op_complete(op);
	}
	return task_op_yield(L, op);
}

/* ---- the module ---- */

int
luaopen_luasmtpd_mailauth(lua_State *L)
{
	vm.cfg->mailauth.wanted = true;
	luaL_newmetatable(L, KEY_MT);
	lua_pushcfunction(L, lb_key_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushliteral(L, KEY_MT);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	lua_newtable(L);
	lb_task_wrap(L, lb_dkim_start, "dkim");
	lua_setfield(L, -2, "dkim");
	lb_task_wrap(L, lb_dmarc_start, "dmarc");
	lua_setfield(L, -2, "dmarc");
	lb_task_wrap(L, lb_sign_start, "sign");
	lua_setfield(L, -2, "sign");
	lua_pushcfunction(L, lb_results);
	lua_setfield(L, -2, "results");
	lua_pushcfunction(L, lb_add_results);
	lua_setfield(L, -2, "add_results");
	lua_pushcfunction(L, lb_key);
	lua_setfield(L, -2, "key");
	lua_pushcfunction(L, lb_key_record);
	lua_setfield(L, -2, "key_record");
	return 1;
}

/* For lua_message.c: msg:dkim(). */
void
lb_mailauth_dkim_method(lua_State *L)
{
	lb_task_wrap(L, lb_dkim_start, "dkim");
}
