/*
 * lua_deliver.c — require "luasmtpd.deliver": delivery from the message
 * hook.
 *
 *   deliver.maildir(path [, rcpts]) -> true | nil, err     (yields)
 *
 * rcpts is one recipient (a table from msg.rcpts, or its index) or a list
 * of them; without it the copy counts for every recipient.  Each counted
 * recipient gets the outcome (250 2.0.0, or 451 4.3.0 with the reason), so
 * the core answers 250 without queueing once all recipients are delivered.
 * The write, fsync, rename and directory fsync run on a worker thread; the
 * hook yields meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/maildir.h"
#include "lua/lua_deliver.h"
#include "lua/lua_vm.h"
#include "metrics/metrics.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "task/task.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xmalloc.h"

struct maildir_job {
	struct lb_work		 lw;		/* first */
	struct lua_sess		*ls;
	char			*dir;
	char			*spool;
	char			*prefix;
	char			*hostname;
	size_t			*rcpts;		/* 0-based indices */
	size_t			 nrcpts;
	int			 rc;
	char			 path[4096];
	char			 err[512];
};

static void
maildir_free(struct lb_work *lw)
{
	struct maildir_job *j = (struct maildir_job *)lw;

	free(j->dir);
	free(j->spool);
	free(j->prefix);
	free(j->hostname);
	free(j->rcpts);
	free(j);
}

static void
maildir_run(struct lb_work *lw)
{
	struct maildir_job *j = (struct maildir_job *)lw;

	j->rc = maildir_deliver(j->dir, j->spool, j->prefix, j->hostname,
	    j->path, sizeof(j->path), j->err, sizeof(j->err));
}

/* On the loop, while the hook still waits: the outcomes go on the tx. */
static void
maildir_finish(struct lb_work *lw)
{
	struct maildir_job *j = (struct maildir_job *)lw;
	struct dlv_outcome *out = xcalloc(j->nrcpts ? j->nrcpts : 1,
	    sizeof(*out));

	for (size_t i = 0; i < j->nrcpts; i++) {
		out[i].rcpt = j->rcpts[i];
		out[i].code = j->rc == 0 ? 250 : 451;
		snprintf(out[i].ecode, sizeof(out[i].ecode), "%s",
		    j->rc == 0 ? "2.0.0" : "4.3.0");
		snprintf(out[i].text, sizeof(out[i].text), "%s",
		    j->rc == 0 ? j->path : j->err);
	}
	lb_deliver_record(j->ls->s, "maildir", j->dir, out, j->nrcpts);
	free(out);
}

static int
maildir_push(lua_State *L, struct lb_work *lw)
{
	struct maildir_job *j = (struct maildir_job *)lw;

	if (j->rc == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	lua_pushstring(L, j->err);
	return 2;
}

/*
 * The Maildir's own fields, then the fields hooks added (CRLF in the tx,
 * LF in a Maildir file like the rest of it).
 */
static char *
maildir_prefix(const char *own, const struct buf *added)
{
	size_t olen = strlen(own), alen = buf_used(added), o = olen;
	const char *a = buf_head(added);
	char *p = xmalloc(olen + alen + 1);

	memcpy(p, own, olen);
	for (size_t i = 0; i < alen; i++)
		if (a[i] != '\r')
			p[o++] = a[i];
	p[o] = '\0';
	return p;
}

static const struct task_op_ops maildir_ops = {
	.name = "deliver.maildir",
	.push = lb_work_push,
	.cancel = lb_work_cancel,
	.free = lb_work_free,
};

static size_t
rcpt_index(lua_State *L, int idx, const struct smtp_tx *tx)
{
	lua_Integer k;

	if (lua_istable(L, idx)) {
		lb_rawfield(L, idx, "index");
		k = lua_tointeger(L, -1);
		lua_pop(L, 1);
	} else if (lua_type(L, idx) == LUA_TNUMBER) {
		k = lua_tointeger(L, idx);
	} else {
		return (size_t)luaL_error(L, "deliver: a recipient is a table "
		    "from msg.rcpts or its index");
	}
	if (k < 1 || (size_t)k > tx->nrcpts)
		luaL_error(L, "deliver: no recipient %d", (int)k);
	return (size_t)k - 1;
}

size_t *
lb_deliver_rcpts(lua_State *L, int idx, const struct smtp_session *s, size_t *n)
{
	const struct smtp_tx *tx = s->tx;
	size_t *list, len;

	*n = 0;
	if (lua_isnoneornil(L, idx)) {
		list = xcalloc(tx->nrcpts, sizeof(*list));
		for (size_t i = 0; i < tx->nrcpts; i++)
			list[(*n)++] = i;
		return list;
	}
	if (lua_istable(L, idx) && (len = lua_objlen(L, idx)) > 0) {
		if (len > tx->nrcpts)
			luaL_error(L, "deliver: more recipients than the message has");
		/* First pass: anything wrong raises before we allocate. */
		for (size_t i = 0; i < len; i++) {
			lua_rawgeti(L, idx, (int)i + 1);
			(void)rcpt_index(L, lua_gettop(L), tx);
			lua_pop(L, 1);
		}
		list = xcalloc(len, sizeof(*list));
		for (size_t i = 0; i < len; i++) {
			lua_rawgeti(L, idx, (int)i + 1);
			list[i] = rcpt_index(L, lua_gettop(L), tx);
			lua_pop(L, 1);
		}
		*n = len;
		return list;
	}
	{
		size_t k = rcpt_index(L, idx, tx);

		list = xcalloc(1, sizeof(*list));
		list[0] = k;
		*n = 1;
		return list;
	}
}

struct lua_sess *
lb_deliver_context(lua_State *L, const char *what)
{
	struct lua_sess *ls = lb_session_task(L, what);
	struct smtp_tx *tx = ls->s->tx;

	if (ls->hook != HOOK_MESSAGE || tx == NULL || !tx->spool_open)
		luaL_error(L, "%s: only in the message hook", what);
	return ls;
}

void
lb_rawfield(lua_State *L, int idx, const char *name)
{
	idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
	lua_pushstring(L, name);
	lua_rawget(L, idx);
}

static const char *
outcome_status(int code)
{
	return code >= 200 && code < 300 ? "delivered" :
	    code >= 500 ? "reject" : "tempfail";
}

void
lb_deliver_record(struct smtp_session *s, const char *kind, const char *target,
    const struct dlv_outcome *out, size_t n)
{
	struct smtp_tx *tx = s->tx;
	char ex[LOG_EXCERPT_BUFSZ(200)], tg[LOG_EXCERPT_BUFSZ(200)];
	char to[LOG_ADDR_BUFSZ];
	int target_kind = metric_label_index(M_DELIVERIES, 0, kind);

	/* The target comes from the config: escape it like client text. */
	log_token(tg, target, 200);
	for (size_t i = 0; i < n; i++) {
		const struct dlv_outcome *o = &out[i];
		struct smtp_rcpt *r = &tx->rcpts[o->rcpt];

		smtp_rcpt_set_result(r, o->code, o->ecode, o->text);
		metric_inc_l2(M_DELIVERIES, (unsigned)target_kind, (unsigned)
		    metric_label_index(M_DELIVERIES, 1, outcome_status(o->code)));
		/* A failed delivery is something an operator must see. */
		log_sid(o->code >= 200 && o->code < 300 ? LOG_LVL_INFO :
		    LOG_LVL_WARN, s->id, "deliver %s tx=%s to=<%s> target=%s "
		    "result=%s code=%d ecode=%s text=\"%s\"", kind, tx->id,
		    log_token(to, r->address, 256), tg, outcome_status(o->code),
		    o->code,
		    o->ecode[0] ? o->ecode : "-",
		    log_excerpt(ex, o->text, strlen(o->text), 200));
	}
}

int
lb_deliver_push(lua_State *co, const struct smtp_session *s,
    const struct dlv_outcome *out, size_t n, const char *error)
{
	const struct smtp_tx *tx = s->tx;
	int delivered = 0, tempfail = 0, reject = 0;

	lua_createtable(co, (int)n, 4);
	for (size_t i = 0; i < n; i++) {
		const struct dlv_outcome *o = &out[i];

		if (o->code >= 200 && o->code < 300)
			delivered++;
		else if (o->code >= 500)
			reject++;
		else
			tempfail++;
		lua_createtable(co, 0, 6);
		lua_pushinteger(co, (lua_Integer)o->rcpt + 1);
		lua_setfield(co, -2, "index");
		lua_pushstring(co, tx->rcpts[o->rcpt].address);
		lua_setfield(co, -2, "address");
		lua_pushinteger(co, o->code);
		lua_setfield(co, -2, "code");
		lua_pushstring(co, o->ecode);
		lua_setfield(co, -2, "ecode");
		lua_pushstring(co, o->text);
		lua_setfield(co, -2, "text");
		lua_pushstring(co, outcome_status(o->code));
		lua_setfield(co, -2, "status");
		lua_rawseti(co, -2, (int)i + 1);
	}
	lua_pushinteger(co, delivered);
	lua_setfield(co, -2, "delivered");
	lua_pushinteger(co, tempfail);
	lua_setfield(co, -2, "tempfail");
	lua_pushinteger(co, reject);
	lua_setfield(co, -2, "reject");
	if (error != NULL) {
		lua_pushstring(co, error);
		lua_setfield(co, -2, "error");
	}
	return 1;
}

/*
 * A path made from a recipient address ("var/mail/" .. r.address) could
 * name any directory; one with "..", a NUL or a control character is a
 * mistake in the config (util.maildir_path maps addresses safely), so it
 * raises instead of returning nil, err.
 */
static int
lb_deliver_maildir_start(lua_State *L)
{
	size_t dirlen;
	const char *dir = luaL_checklstring(L, 1, &dirlen), *bad;
	struct lua_sess *ls = lb_deliver_context(L, "deliver.maildir");
	struct smtp_tx *tx = ls->s->tx;
	struct maildir_job *j;
	struct task_op *op;
	char prefix[2 * SMTP_PATH_MAX + 64];
	size_t *rcpts, nrcpts;

	if ((bad = maildir_dir_check(dir, dirlen)) != NULL)
		return luaL_argerror(L, 1, bad);
	/* Both may raise: before anything is allocated. */
	op = task_op_begin(L, &maildir_ops, NULL, 0);
	rcpts = lb_deliver_rcpts(L, 2, ls->s, &nrcpts);
	j = xcalloc(1, sizeof(*j));
	j->rcpts = rcpts;
	j->nrcpts = nrcpts;
	/* RFC 5321 §4.4: the final delivery adds Return-Path (and loops
	 * are caught by Delivered-To, as Postfix local(8) does). */
	if (j->nrcpts == 1)
		snprintf(prefix, sizeof(prefix), "Return-Path: <%s>\n"
		    "Delivered-To: %s\n", tx->sender,
		    tx->rcpts[j->rcpts[0]].address);
	else
		snprintf(prefix, sizeof(prefix), "Return-Path: <%s>\n",
		    tx->sender);
	j->prefix = maildir_prefix(prefix, &tx->added);
	j->ls = ls;
	j->dir = xstrdup(dir);
	j->spool = xstrdup(tx->spool.path);
	j->hostname = xstrdup(ls->s->cfg->hostname);
	j->lw.run = maildir_run;
	j->lw.finish = maildir_finish;
	j->lw.push = maildir_push;
	j->lw.free = maildir_free;
	return lb_work_yield(L, op, workq_disk, &j->lw);
}

int
luaopen_luasmtpd_deliver(lua_State *L)
{
	lua_newtable(L);
	lb_task_wrap(L, lb_deliver_maildir_start, "maildir");
	lua_setfield(L, -2, "maildir");
	lb_deliver_register_net(L);
	lb_deliver_register_pipe(L);
	return 1;
}
