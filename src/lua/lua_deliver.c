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
#include "lua/lua_vm.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xmalloc.h"

struct maildir_job {
	struct work		 work;
	struct lua_sess		*ls;		/* NULL once abandoned */
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
job_free(struct maildir_job *j)
{
	free(j->dir);
	free(j->spool);
	free(j->prefix);
	free(j->hostname);
	free(j->rcpts);
	free(j);
}

static void
maildir_run(struct work *w)
{
	struct maildir_job *j = (struct maildir_job *)w;

	j->rc = maildir_deliver(j->dir, j->spool, j->prefix, j->hostname,
	    j->path, sizeof(j->path), j->err, sizeof(j->err));
}

static int
push_result(lua_State *co, void *arg)
{
	struct maildir_job *j = arg;

	if (j->rc == 0) {
		lua_pushboolean(co, 1);
		return 1;
	}
	lua_pushnil(co);
	lua_pushstring(co, j->err);
	return 2;
}

static void
maildir_done(struct work *w)
{
	struct maildir_job *j = (struct maildir_job *)w;
	struct lua_sess *ls = j->ls;

	if (ls == NULL) {
		/* The hook was abandoned; a written copy stays delivered. */
		job_free(j);
		return;
	}
	for (size_t i = 0; i < j->nrcpts; i++) {
		struct smtp_rcpt *r = &ls->s->tx->rcpts[j->rcpts[i]];

		if (j->rc == 0)
			smtp_rcpt_set_result(r, 250, "2.0.0", "delivered to maildir");
		else
			smtp_rcpt_set_result(r, 451, "4.3.0", j->err);
		log_info(ls->s->id, "deliver maildir tx=%s to=<%s> result=%s "
		    "%s=\"%s\"", ls->s->tx->id, r->address,
		    j->rc == 0 ? "delivered" : "failed",
		    j->rc == 0 ? "path" : "error", j->rc == 0 ? j->path : j->err);
	}
	lua_co_wake(ls, push_result, j);
	job_free(j);
}

static void
maildir_cancel(struct lua_sess *ls, void *arg)
{
	struct maildir_job *j = arg;

	(void)ls;
	j->ls = NULL;
}

/* Collect recipient indices from arg 2 (nil, index, rcpt table, list). */
static size_t *
collect_rcpts(lua_State *L, const struct smtp_tx *tx, size_t *n)
{
	size_t *idx;

	*n = 0;
	if (lua_isnoneornil(L, 2)) {
		idx = xcalloc(tx->nrcpts, sizeof(*idx));
		for (size_t i = 0; i < tx->nrcpts; i++)
			idx[(*n)++] = i;
		return idx;
	}
	idx = xcalloc(tx->nrcpts + 1, sizeof(*idx));
	if (lua_istable(L, 2) && lua_objlen(L, 2) > 0) {
		size_t len = lua_objlen(L, 2);

		for (size_t i = 1; i <= len && *n < tx->nrcpts; i++) {
			lua_Integer k;

			lua_rawgeti(L, 2, (int)i);
			if (lua_istable(L, -1)) {
				lua_getfield(L, -1, "index");
				k = lua_tointeger(L, -1);
				lua_pop(L, 1);
			} else {
				k = lua_tointeger(L, -1);
			}
			lua_pop(L, 1);
			if (k < 1 || (size_t)k > tx->nrcpts) {
				free(idx);
				luaL_error(L, "deliver: no recipient %d", (int)k);
			}
			idx[(*n)++] = (size_t)k - 1;
		}
		return idx;
	}
	{
		lua_Integer k;

		if (lua_istable(L, 2)) {
			lua_getfield(L, 2, "index");
			k = lua_tointeger(L, -1);
			lua_pop(L, 1);
		} else {
			k = luaL_checkinteger(L, 2);
		}
		if (k < 1 || (size_t)k > tx->nrcpts) {
			free(idx);
			luaL_error(L, "deliver: no recipient %d", (int)k);
		}
		idx[(*n)++] = (size_t)k - 1;
	}
	return idx;
}

static int
lb_deliver_maildir(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	struct lua_sess *ls = lua_co_current(L, "deliver.maildir");
	struct smtp_tx *tx = ls->s->tx;
	struct maildir_job *j;
	char prefix[2 * SMTP_PATH_MAX + 64];
	size_t *rcpts, nrcpts;

	if (ls->hook != HOOK_MESSAGE || tx == NULL || !tx->spool_open)
		return luaL_error(L, "deliver.maildir: only in the message hook");
	if (dir[0] == '\0')
		return luaL_argerror(L, 1, "empty path");
	/* May raise: collect before anything else is allocated. */
	rcpts = collect_rcpts(L, tx, &nrcpts);
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
	j->ls = ls;
	j->dir = xstrdup(dir);
	j->spool = xstrdup(tx->spool.path);
	j->prefix = xstrdup(prefix);
	j->hostname = xstrdup(ls->s->cfg->hostname);
	j->work.run = maildir_run;
	j->work.done = maildir_done;
	lua_co_begin_wait(ls, maildir_cancel, j);
	workq_submit(&j->work);
	return lua_yield(L, 0);
}

static const luaL_Reg deliver_funcs[] = {
	{ "maildir", lb_deliver_maildir },
	{ NULL, NULL },
};

int
luaopen_luasmtpd_deliver(lua_State *L)
{
	lua_newtable(L);
	luaL_register(L, NULL, deliver_funcs);
	return 1;
}
