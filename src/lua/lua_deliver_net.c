/*
 * lua_deliver_net.c — deliver.lmtp, deliver.smtp and deliver.lmtp_check:
 * delivery over LMTP (RFC 2033) and SMTP (RFC 5321) from a hook, through
 * the client engine in deliver/smtp_client.c.
 *
 *   deliver.lmtp{ to = "unix:/path" | "host:port" | "[ipv6]:port",
 *                 rcpts = nil | recipient | { recipients },
 *                 timeout = seconds, lhlo = name }        -> results (yields)
 *   deliver.smtp{ host = "name" | "ip", port = 25,
 *                 starttls = "opportunistic" | "required" | "none",
 *                 verify = bool, verify_name = name, ca = path,
 *                 auth = { user = ..., pass = ... },
 *                 allow_plaintext_auth = false, helo = name,
 *                 rcpts = ..., timeout = seconds }        -> results (yields)
 *   deliver.lmtp_check{ to = ..., rcpt = address, sender = address,
 *                 timeout = seconds, lhlo = name }
 *                 -> { code = n, ecode = "x.y.z", text = "..." } (yields)
 *
 * lmtp and smtp run in the message hook; the results table and the
 * per-recipient recording and logging are lb_deliver_record()'s (kind
 * "lmtp" or "smtp", target the `to` string or "host:port").  lmtp_check
 * runs in any hook (it needs no message): LHLO, MAIL FROM (sender, default
 * the transaction's, else <>), RCPT TO, QUIT, and returns the server's
 * answer to RCPT (or to MAIL, or a 451 when the server cannot be reached),
 * so the rcpt hook can refuse with the server's own words.
 *
 * Misuse (a wrong type, an unknown option, a bad target or address, the
 * wrong hook) raises; every run-time failure is a result.  Defaults:
 * timeout = the RFC 5321 §4.5.3.2 timeouts per stage (smtp_client.h),
 * lhlo/helo = the configured hostname, starttls = "opportunistic", verify
 * = true with starttls = "required" and false otherwise, verify_name =
 * host.  Note that a hook also has timeouts.hook in all (default 60 s).
 *
 * Ownership: a net_job belongs to its operation (task.h).  The outcomes are
 * recorded on the transaction when the client reports; the results table
 * is built at collect, inside the hook.  A hook let go (session closed,
 * timeout) cancels the client, which never calls back after a cancel, so
 * no callback touches a dead session; the operation's free() frees the job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/smtp_client.h"
#include "lua/lua_deliver.h"
#include "lua/lua_vm.h"
#include "server.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_session.h"
#include "task/task.h"
#include "util/log.h"
#include "util/xmalloc.h"

struct net_job {
	struct task_op		*op;
	struct lua_sess		*ls;
	struct smtp_client	*cl;		/* NULL once it reported */
	const char		*kind;		/* "lmtp", "smtp", "lmtp_check" */
	char			 target[sizeof(((struct smtpc_target *)0)->name)];
	size_t			*rcpts;		/* tx indices (not for checks) */
	size_t			 nrcpts;
	struct dlv_outcome	*out;		/* at completion */
	char			*error;
	struct smtpc_result	 check;		/* lmtp_check's answer */
};

static void
job_free(struct net_job *j)
{
	if (j == NULL)
		return;
	free(j->rcpts);
	free(j->out);
	free(j->error);
	free(j);
}

/* ---- option tables ---- */

/* Raise on keys that are not in known (typos must not pass silently). */
static void
check_keys(lua_State *L, const char *what, const char *const *known)
{
	lua_pushnil(L);
	while (lua_next(L, 1) != 0) {
		const char *k;
		size_t i;

		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "%s: option names are strings", what);
		k = lua_tostring(L, -1);
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (known[i] == NULL)
			luaL_error(L, "%s: unknown option '%s'", what, k);
	}
}

/* A string option (no NUL inside); NULL if absent. */
static const char *
opt_string(lua_State *L, const char *what, const char *name, size_t max)
{
	const char *s;
	size_t len;

	lb_rawfield(L, 1, name);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return NULL;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "%s: %s must be a string", what, name);
	s = lua_tolstring(L, -1, &len);
	if (strlen(s) != len || len == 0 || len > max)
		luaL_error(L, "%s: %s must be 1-%d characters without NUL",
		    what, name, (int)max);
	/* The table holds the string: the pointer stays valid meanwhile. */
	lua_pop(L, 1);
	return s;
}

static double
opt_timeout(lua_State *L, const char *what)
{
	double t = 0;

	lb_rawfield(L, 1, "timeout");
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0) ||
		    lua_tonumber(L, -1) > 86400)
			luaL_error(L, "%s: timeout must be a number of seconds "
			    "(0 < timeout <= 86400)", what);
		t = lua_tonumber(L, -1);
	}
	lua_pop(L, 1);
	return t;
}

static bool
opt_bool(lua_State *L, const char *what, const char *name, bool dflt)
{
	bool v = dflt;

	lb_rawfield(L, 1, name);
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TBOOLEAN)
			luaL_error(L, "%s: %s must be true or false", what, name);
		v = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

static void
parse_target(lua_State *L, const char *what, const char *spec,
    const char *default_port, struct smtpc_target *t)
{
	char err[200];

	if (smtpc_target_parse(spec, default_port, t, err, sizeof(err)) != 0)
		luaL_error(L, "%s: %s", what, err);
}

/* Recipient indices from opts.rcpts (may raise; call it last). */
static size_t *
opt_rcpts(lua_State *L, struct lua_sess *ls, size_t *n)
{
	size_t *list;

	lb_rawfield(L, 1, "rcpts");
	list = lb_deliver_rcpts(L, lua_gettop(L), ls->s, n);
	lua_pop(L, 1);
	return list;
}

/* ---- completion ---- */

static int
push_report(lua_State *L, struct task_op *op)
{
	struct net_job *j = op->data;

	return lb_deliver_push(L, j->ls->s, j->out, j->nrcpts, j->error);
}

static void
delivery_done(void *arg, const struct smtpc_result *res, size_t n,
    const char *error)
{
	struct net_job *j = arg;

	j->cl = NULL;		/* it frees itself from here on */
	j->out = xcalloc(j->nrcpts ? j->nrcpts : 1, sizeof(*j->out));
	for (size_t i = 0; i < j->nrcpts; i++) {
		j->out[i].rcpt = j->rcpts[i];
		if (i < n) {
			j->out[i].code = res[i].code;
			snprintf(j->out[i].ecode, sizeof(j->out[i].ecode), "%s",
			    res[i].ecode);
			snprintf(j->out[i].text, sizeof(j->out[i].text), "%s",
			    res[i].text);
		} else {
			j->out[i].code = 451;
			snprintf(j->out[i].ecode, sizeof(j->out[i].ecode), "4.3.0");
			snprintf(j->out[i].text, sizeof(j->out[i].text),
			    "no outcome reported");
		}
	}
	j->error = error != NULL ? xstrdup(error) : NULL;
	lb_deliver_record(j->ls->s, j->kind, j->target, j->out, j->nrcpts);
	task_op_complete(j->op);
}

static int
push_check(lua_State *L, struct task_op *op)
{
	struct net_job *j = op->data;

	lua_createtable(L, 0, 3);
	lua_pushinteger(L, j->check.code);
	lua_setfield(L, -2, "code");
	lua_pushstring(L, j->check.ecode);
	lua_setfield(L, -2, "ecode");
	lua_pushstring(L, j->check.text);
	lua_setfield(L, -2, "text");
	return 1;
}

static void
check_done(void *arg, const struct smtpc_result *res, size_t n,
    const char *error)
{
	struct net_job *j = arg;
	char ex[LOG_EXCERPT_BUFSZ(200)];

	(void)error;
	j->cl = NULL;
	if (n > 0)
		j->check = res[0];
	log_info(j->ls->s->id, "deliver lmtp_check target=%s code=%d ecode=%s "
	    "text=\"%s\"", j->target, j->check.code,
	    j->check.ecode[0] ? j->check.ecode : "-",
	    log_excerpt(ex, j->check.text, strlen(j->check.text), 200));
	task_op_complete(j->op);
}

/* The hook let go (session closed, timeout): stop the client. */
static void
job_cancel(struct task_op *op)
{
	struct net_job *j = op->data;

	if (j != NULL && j->cl != NULL) {
		smtp_client_cancel(j->cl);
		j->cl = NULL;
	}
}

static void
job_op_free(struct task_op *op)
{
	job_free(op->data);
}

static const struct task_op_ops deliver_ops = {
	.name = "deliver", .push = push_report, .cancel = job_cancel,
	.free = job_op_free,
};
static const struct task_op_ops check_ops = {
	.name = "deliver.lmtp_check", .push = push_check, .cancel = job_cancel,
	.free = job_op_free,
};

/*
 * Start the client for the running message hook and yield.  Takes
 * ownership of rcpts; op was begun by the caller.
 */
static int
start_delivery(lua_State *L, struct lua_sess *ls, struct task_op *op,
    const char *kind, const struct smtpc_target *t, const struct smtpc_opts *o,
    size_t *rcpts, size_t nrcpts)
{
	struct smtp_tx *tx = ls->s->tx;
	struct net_job *j = xcalloc(1, sizeof(*j));
	const char **addrs = xcalloc(nrcpts ? nrcpts : 1, sizeof(*addrs));
	struct smtpc_msg m;

	/* Nothing below raises. */
	for (size_t i = 0; i < nrcpts; i++)
		addrs[i] = tx->rcpts[rcpts[i]].address;
	memset(&m, 0, sizeof(m));
	m.sender = tx->sender;
	m.rcpts = addrs;
	m.nrcpts = nrcpts;
	m.path = tx->spool.path;
	m.prefix = buf_head(&tx->added);
	m.prefix_len = buf_used(&tx->added);
	m.eightbit = tx->opts.body == SMTP_BODY_8BITMIME;
	m.smtputf8 = tx->opts.smtputf8;
	j->op = op;
	op->data = j;
	j->ls = ls;
	j->kind = kind;
	snprintf(j->target, sizeof(j->target), "%s", t->name);
	j->rcpts = rcpts;
	j->nrcpts = nrcpts;
	/* The client copies what it needs: addrs may go at once. */
	j->cl = smtp_client_start(server.loop, ls->s->id, t, o, &m,
	    delivery_done, j);
	free(addrs);
	return task_op_yield(L, op);
}

/* ---- the bindings ---- */

/***
 * deliver.lmtp{ to =, rcpts =, timeout =, lhlo = } -> results   (yields)
 */
static int
lb_deliver_lmtp(lua_State *L)
{
	static const char *const known[] = { "to", "rcpts", "timeout", "lhlo",
	    NULL };
	const char *what = "deliver.lmtp", *to, *lhlo;
	struct task_op *op;
	struct lua_sess *ls;
	struct smtpc_target t;
	struct smtpc_opts o;
	size_t *rcpts, nrcpts;

	luaL_checktype(L, 1, LUA_TTABLE);
	ls = lb_deliver_context(L, what);
	check_keys(L, what, known);
	if ((to = opt_string(L, what, "to", 300)) == NULL)
		return luaL_error(L, "%s: to = \"unix:/path\" or \"host:port\" "
		    "is required", what);
	parse_target(L, what, to, NULL, &t);
	memset(&o, 0, sizeof(o));
	o.proto = SMTPC_LMTP;
	lhlo = opt_string(L, what, "lhlo", SMTP_HELO_MAX);
	o.helo = lhlo != NULL ? lhlo : ls->s->cfg->hostname;
	o.tls = SMTPC_TLS_NONE;
	o.timeout = opt_timeout(L, what);
	op = task_op_begin(L, &deliver_ops, NULL, 0);
	rcpts = opt_rcpts(L, ls, &nrcpts);	/* raises before it allocates */
	return start_delivery(L, ls, op, "lmtp", &t, &o, rcpts, nrcpts);
}

/***
 * deliver.smtp{ host =, port = 25, starttls =, verify =, verify_name =,
 *   ca =, auth = { user =, pass = }, allow_plaintext_auth =, helo =,
 *   rcpts =, timeout = } -> results                                (yields)
 */
static int
lb_deliver_smtp(lua_State *L)
{
	static const char *const known[] = { "host", "port", "starttls",
	    "verify", "verify_name", "ca", "auth", "allow_plaintext_auth",
	    "helo", "rcpts", "timeout", NULL };
	const char *what = "deliver.smtp", *host, *mode, *helo;
	char spec[SMTP_DOMAIN_MAX + 16], port[8] = "25";
	struct task_op *op;
	struct lua_sess *ls;
	struct smtpc_target t;
	struct smtpc_opts o;
	size_t *rcpts, nrcpts;

	luaL_checktype(L, 1, LUA_TTABLE);
	ls = lb_deliver_context(L, what);
	check_keys(L, what, known);
	if ((host = opt_string(L, what, "host", SMTP_DOMAIN_MAX)) == NULL)
		return luaL_error(L, "%s: host is required", what);
	lb_rawfield(L, 1, "port");
	if (!lua_isnil(L, -1)) {
		lua_Number p = lua_tonumber(L, -1);

		if (lua_type(L, -1) != LUA_TNUMBER || p != (int)p || p < 1 ||
		    p > 65535)
			return luaL_error(L, "%s: port must be 1-65535", what);
		snprintf(port, sizeof(port), "%d", (int)p);
	}
	lua_pop(L, 1);
	if (strchr(host, ':') != NULL && host[0] != '[')
		snprintf(spec, sizeof(spec), "[%s]:%s", host, port);
	else
		snprintf(spec, sizeof(spec), "%s:%s", host, port);
	parse_target(L, what, spec, NULL, &t);

	memset(&o, 0, sizeof(o));
	o.proto = SMTPC_SMTP;
	mode = opt_string(L, what, "starttls", 20);
	if (mode == NULL || strcmp(mode, "opportunistic") == 0)
		o.tls = SMTPC_TLS_MAY;
	else if (strcmp(mode, "required") == 0)
		o.tls = SMTPC_TLS_REQUIRE;
	else if (strcmp(mode, "none") == 0)
		o.tls = SMTPC_TLS_NONE;
	else
		return luaL_error(L, "%s: starttls must be \"opportunistic\", "
		    "\"required\" or \"none\"", what);
	o.verify = opt_bool(L, what, "verify", o.tls == SMTPC_TLS_REQUIRE);
	o.verify_name = opt_string(L, what, "verify_name", SMTP_DOMAIN_MAX);
	o.ca_file = opt_string(L, what, "ca", 4096);
	o.allow_plaintext_auth = opt_bool(L, what, "allow_plaintext_auth", false);
	helo = opt_string(L, what, "helo", SMTP_HELO_MAX);
	o.helo = helo != NULL ? helo : ls->s->cfg->hostname;
	o.timeout = opt_timeout(L, what);
	lb_rawfield(L, 1, "auth");
	if (!lua_isnil(L, -1)) {
		size_t ul, pl;

		if (!lua_istable(L, -1))
			return luaL_error(L, "%s: auth = { user = ..., pass = "
			    "... }", what);
		lb_rawfield(L, -1, "user");
		lb_rawfield(L, -2, "pass");
		if (lua_type(L, -2) != LUA_TSTRING ||
		    lua_type(L, -1) != LUA_TSTRING)
			return luaL_error(L, "%s: auth needs user and pass "
			    "strings", what);
		o.auth_user = lua_tolstring(L, -2, &ul);
		o.auth_pass = lua_tolstring(L, -1, &pl);
		if (ul == 0 || ul > SMTPC_AUTH_MAX || pl > SMTPC_AUTH_MAX ||
		    strlen(o.auth_user) != ul || strlen(o.auth_pass) != pl)
			return luaL_error(L, "%s: auth user and pass must be "
			    "1-%d characters without NUL", what, SMTPC_AUTH_MAX);
		/* Kept on the stack (below) until the client copied them. */
	}
	op = task_op_begin(L, &deliver_ops, NULL, 0);
	rcpts = opt_rcpts(L, ls, &nrcpts);	/* raises before it allocates */
	return start_delivery(L, ls, op, "smtp", &t, &o, rcpts, nrcpts);
}

static void
check_address(lua_State *L, const char *what, const char *name,
    const char *a, bool may_be_empty)
{
	struct smtp_path p;

	if (a[0] == '\0' && may_be_empty)
		return;
	if (strcmp(a, "Postmaster") == 0 && !may_be_empty)
		return;
	if (smtp_parse_mailbox(a, strlen(a), &p) != 0)
		luaL_error(L, "%s: %s is not a valid address", what, name);
}

/***
 * deliver.lmtp_check{ to =, rcpt =, sender =, timeout =, lhlo = }
 *   -> { code =, ecode =, text = }                                 (yields)
 */
static int
lb_deliver_lmtp_check(lua_State *L)
{
	static const char *const known[] = { "to", "rcpt", "sender", "timeout",
	    "lhlo", NULL };
	const char *what = "deliver.lmtp_check", *to, *rcpt, *sender, *lhlo;
	struct lua_sess *ls;
	struct smtpc_target t;
	struct smtpc_opts o;
	struct smtpc_msg m;
	struct task_op *op;
	struct net_job *j;

	luaL_checktype(L, 1, LUA_TTABLE);
	ls = lb_session_task(L, what);
	check_keys(L, what, known);
	if ((to = opt_string(L, what, "to", 300)) == NULL)
		return luaL_error(L, "%s: to is required", what);
	parse_target(L, what, to, NULL, &t);
	if ((rcpt = opt_string(L, what, "rcpt", SMTP_PATH_MAX)) == NULL)
		return luaL_error(L, "%s: rcpt is required", what);
	check_address(L, what, "rcpt", rcpt, false);
	lb_rawfield(L, 1, "sender");
	if (lua_isnil(L, -1))
		sender = ls->s->tx != NULL ? ls->s->tx->sender : "";
	else if (lua_type(L, -1) == LUA_TSTRING)
		sender = lua_tostring(L, -1);
	else
		return luaL_error(L, "%s: sender must be a string", what);
	lua_pop(L, 1);		/* the table (or the tx) holds it */
	if (strlen(sender) > SMTP_PATH_MAX)
		return luaL_error(L, "%s: sender is too long", what);
	check_address(L, what, "sender", sender, true);
	memset(&o, 0, sizeof(o));
	o.proto = SMTPC_LMTP;
	lhlo = opt_string(L, what, "lhlo", SMTP_HELO_MAX);
	o.helo = lhlo != NULL ? lhlo : ls->s->cfg->hostname;
	o.tls = SMTPC_TLS_NONE;
	o.timeout = opt_timeout(L, what);
	o.check_only = true;

	memset(&m, 0, sizeof(m));
	m.sender = sender;
	m.rcpts = &rcpt;
	m.nrcpts = 1;
	m.smtputf8 = ls->s->tx != NULL && ls->s->tx->opts.smtputf8;
	op = task_op_begin(L, &check_ops, NULL, 0);	/* the last that raises */
	j = xcalloc(1, sizeof(*j));
	j->op = op;
	op->data = j;
	j->ls = ls;
	j->kind = "lmtp_check";
	snprintf(j->target, sizeof(j->target), "%s", t.name);
	j->cl = smtp_client_start(server.loop, ls->s->id, &t, &o, &m,
	    check_done, j);
	return task_op_yield(L, op);
}

void
lb_deliver_register_net(lua_State *L)
{
	lb_task_wrap(L, lb_deliver_lmtp, "lmtp");
	lua_setfield(L, -2, "lmtp");
	lb_task_wrap(L, lb_deliver_smtp, "smtp");
	lua_setfield(L, -2, "smtp");
	lb_task_wrap(L, lb_deliver_lmtp_check, "lmtp_check");
	lua_setfield(L, -2, "lmtp_check");
}
