/*
 * lua_core.c — require "luasmtpd": the core API for configs and hooks.
 *
 *   smtp.var(name [, default])     a -D name=value setting, else default
 *   smtp.log([level,] text)        a log line (level: debug info warn error)
 *   smtp.sleep(seconds)            yields the hook; other sessions go on
 *   smtp.now()                     the event loop's time (seconds, float)
 *   smtp.hostname()                the configured hostname
 *   smtp.split_address(a)          local part, domain (nil for Postmaster)
 *   smtp.accept([text | {text=, rewrite=}])   smtp.rewrite(address)
 *   smtp.reject([code] [, ecode] [, text])    5xx
 *   smtp.tempfail([code] [, ecode] [, text])  4xx
 *   smtp.disconnect([code] [, ecode] [, text])
 *   smtp.discard()
 *
 * Verdict constructors check their arguments and raise on misuse (a 2xx
 * reject, a 5.x.x enhanced code on a 4xx, CR/LF in the text), so a bad
 * verdict is a hook error with a traceback rather than a strange reply.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua/lua_vm.h"
#include "server.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_session.h"
#include "util/log.h"

#define VERDICT_MT	"luasmtpd.verdict"

static int
lb_var(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);

	for (size_t i = 0; i < vm.ndefines; i++) {
		if (strcmp(vm.defines[i].name, name) == 0) {
			vm.defines[i].used = true;
			lua_pushstring(L, vm.defines[i].value);
			return 1;
		}
	}
	if (lua_isnoneornil(L, 2)) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushvalue(L, 2);
	return 1;
}

static int
lb_log(lua_State *L)
{
	enum log_level lvl = LOG_LVL_INFO;
	char ex[LOG_EXCERPT_BUFSZ(1000)];
	const char *msg;
	size_t len;
	int idx = 1;

	if (lua_gettop(L) >= 2) {
		if (log_level_from_name(luaL_checkstring(L, 1), &lvl) != 0)
			return luaL_argerror(L, 1, "level must be debug, info, "
			    "warn or error");
		idx = 2;
	}
	msg = luaL_checklstring(L, idx, &len);
	log_sid(lvl, 0, "lua log text=\"%s\"", log_excerpt(ex, msg, len, 1000));
	return 0;
}

static void
sleep_cancel(struct lua_sess *ls, void *arg)
{
	(void)arg;
	ev_timer_stop(server.loop, &ls->op_timer);
}

static void
sleep_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	lua_co_wake(w->data, NULL, NULL);
}

static int
lb_sleep(lua_State *L)
{
	lua_Number secs = luaL_checknumber(L, 1);
	struct lua_sess *ls;

	if (!(secs >= 0) || isinf(secs))
		return luaL_argerror(L, 1, "seconds must be a number >= 0");
	ls = lua_co_current(L, "sleep");
	lua_co_begin_wait(ls, sleep_cancel, NULL);
	ev_timer_stop(server.loop, &ls->op_timer);
	ev_set_cb(&ls->op_timer, sleep_done);
	ev_timer_set(&ls->op_timer, secs, 0.);
	ev_timer_start(server.loop, &ls->op_timer);
	return lua_yield(L, 0);
}

static int
lb_now(lua_State *L)
{
	lua_pushnumber(L, server.loop != NULL ? ev_now(server.loop) : 0);
	return 1;
}

static int
lb_hostname(lua_State *L)
{
	lua_pushstring(L, vm.cfg->hostname);
	return 1;
}

static int
lb_split_address(lua_State *L)
{
	size_t len;
	const char *a = luaL_checklstring(L, 1, &len);
	bool quoted = false;
	const char *at = NULL;

	for (size_t i = 0; i < len; i++) {
		if (a[i] == '\\' && quoted)
			i++;
		else if (a[i] == '"')
			quoted = !quoted;
		else if (a[i] == '@' && !quoted)
			at = a + i;
	}
	if (at == NULL) {
		lua_pushlstring(L, a, len);
		lua_pushnil(L);
		return 2;
	}
	lua_pushlstring(L, a, (size_t)(at - a));
	lua_pushlstring(L, at + 1, len - (size_t)(at - a) - 1);
	return 2;
}

/* ---- verdicts ---- */

static bool
is_ecode(const char *s)
{
	int a, b, c, n = 0;

	return sscanf(s, "%1d.%3d.%3d%n", &a, &b, &c, &n) == 3 &&
	    s[n] == '\0' && (a == 2 || a == 4 || a == 5) && strlen(s) < 12;
}

static void
check_text(lua_State *L, const char *t, size_t len)
{
	if (len > SMTP_REPLY_TEXT_MAX)
		luaL_error(L, "reply text longer than %d bytes",
		    SMTP_REPLY_TEXT_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
			luaL_error(L, "reply text contains a control character");
}

/* Push a verdict table; text must have passed check_text(). */
static int
push_verdict(lua_State *L, const char *kind, int code, const char *ecode,
    const char *text, size_t tlen)
{
	lua_createtable(L, 0, 5);
	lua_pushstring(L, kind);
	lua_setfield(L, -2, "kind");
	if (code != 0) {
		lua_pushinteger(L, code);
		lua_setfield(L, -2, "code");
	}
	if (ecode != NULL) {
		lua_pushstring(L, ecode);
		lua_setfield(L, -2, "ecode");
	}
	if (text != NULL) {
		lua_pushlstring(L, text, tlen);
		lua_setfield(L, -2, "text");
	}
	luaL_getmetatable(L, VERDICT_MT);
	lua_setmetatable(L, -2);
	return 1;
}

/* Build { kind=, code=, ecode=, text= } from (code, ecode, text) args. */
static int
make_verdict(lua_State *L, const char *kind, int lo, int hi, int defcode)
{
	int n = lua_gettop(L), code = 0;
	const char *ecode = NULL, *text = NULL;
	size_t tlen = 0;

	for (int i = 1; i <= n; i++) {
		if (lua_type(L, i) == LUA_TNUMBER && code == 0 && ecode == NULL &&
		    text == NULL) {
			lua_Number c = lua_tonumber(L, i);

			if (c != floor(c) || c < lo || c > hi)
				return luaL_error(L, "%s: reply code must be %d..%d",
				    kind, lo, hi);
			code = (int)c;
		} else if (lua_type(L, i) == LUA_TSTRING && ecode == NULL &&
		    text == NULL && is_ecode(lua_tostring(L, i))) {
			ecode = lua_tostring(L, i);
		} else if (lua_type(L, i) == LUA_TSTRING && text == NULL) {
			text = lua_tolstring(L, i, &tlen);
		} else if (!lua_isnil(L, i)) {
			return luaL_error(L, "%s: expected ([code], [enhanced "
			    "code], [text])", kind);
		}
	}
	if (ecode != NULL) {
		int cls = code ? code / 100 : defcode / 100;

		if (ecode[0] - '0' != cls)
			return luaL_error(L, "%s: enhanced code %s does not match "
			    "reply class %dxx", kind, ecode, cls);
	}
	if (text != NULL)
		check_text(L, text, tlen);
	return push_verdict(L, kind, code, ecode, text, tlen);
}

static int
lb_reject(lua_State *L)
{
	return make_verdict(L, "reject", 500, 599, 550);
}

static int
lb_tempfail(lua_State *L)
{
	return make_verdict(L, "tempfail", 400, 499, 451);
}

static int
lb_disconnect(lua_State *L)
{
	return make_verdict(L, "disconnect", 400, 599, 421);
}

static int
lb_discard(lua_State *L)
{
	lua_settop(L, 0);
	return make_verdict(L, "discard", 200, 299, 250);
}

static void
set_rewrite(lua_State *L, int vidx, int aidx)
{
	size_t len;
	const char *a = luaL_checklstring(L, aidx, &len);
	struct smtp_path p;

	if (smtp_parse_mailbox(a, len, &p) != 0)
		luaL_error(L, "rewrite: '%s' is not a valid mailbox", a);
	lua_pushvalue(L, aidx);
	lua_setfield(L, vidx, "rewrite");
}

static int
lb_accept(lua_State *L)
{
	const char *text = NULL;
	size_t tlen = 0;
	int rewrite = 0;

	if (lua_istable(L, 1)) {
		lua_settop(L, 1);
		lua_getfield(L, 1, "text");		/* 2 */
		lua_getfield(L, 1, "rewrite");		/* 3 */
		if (!lua_isnil(L, 2))
			text = luaL_checklstring(L, 2, &tlen);
		if (!lua_isnil(L, 3))
			rewrite = 3;
	} else if (!lua_isnoneornil(L, 1)) {
		text = luaL_checklstring(L, 1, &tlen);
	}
	if (text != NULL)
		check_text(L, text, tlen);
	push_verdict(L, "accept", 0, NULL, text, tlen);
	if (rewrite != 0)
		set_rewrite(L, lua_gettop(L), rewrite);
	return 1;
}

static int
lb_rewrite(lua_State *L)
{
	luaL_checkstring(L, 1);
	lua_settop(L, 1);
	push_verdict(L, "accept", 0, NULL, NULL, 0);
	set_rewrite(L, 2, 1);
	return 1;
}

static void
copy_field(lua_State *co, int idx, const char *name, char *out, size_t outsz)
{
	lua_getfield(co, idx, name);
	if (lua_isstring(co, -1))
		snprintf(out, outsz, "%s", lua_tostring(co, -1));
	lua_pop(co, 1);
}

static enum verdict_kind
kind_from_name(const char *k)
{
	if (strcmp(k, "accept") == 0)
		return VERDICT_ACCEPT;
	if (strcmp(k, "reject") == 0)
		return VERDICT_REJECT;
	if (strcmp(k, "tempfail") == 0)
		return VERDICT_TEMPFAIL;
	if (strcmp(k, "disconnect") == 0)
		return VERDICT_DISCONNECT;
	if (strcmp(k, "discard") == 0)
		return VERDICT_DISCARD;
	return VERDICT_ERROR;
}

void
lb_verdict_from_results(lua_State *co, int base, int n, enum hook_id id,
    struct hook_verdict *v, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	if (n < base || lua_isnil(co, base)) {
		v->kind = VERDICT_DEFAULT;
		return;
	}
	switch (lua_type(co, base)) {
	case LUA_TBOOLEAN:
		v->kind = lua_toboolean(co, base) ? VERDICT_ACCEPT : VERDICT_REJECT;
		return;
	case LUA_TSTRING:
		v->kind = kind_from_name(lua_tostring(co, base));
		if (v->kind == VERDICT_ERROR)
			snprintf(err, errlen, "unknown verdict '%.40s' (use accept, "
			    "reject, tempfail, disconnect or discard)",
			    lua_tostring(co, base));
		return;
	case LUA_TTABLE:
		break;
	default:
		v->kind = VERDICT_ERROR;
		snprintf(err, errlen, "a hook must return a verdict, not a %s",
		    luaL_typename(co, base));
		return;
	}
	lua_getmetatable(co, base);
	luaL_getmetatable(co, VERDICT_MT);
	if (!lua_rawequal(co, -1, -2)) {
		lua_pop(co, 2);
		v->kind = VERDICT_ERROR;
		snprintf(err, errlen, "a hook returned a table that is not a "
		    "verdict (make one with luasmtpd.accept, reject, ...)");
		return;
	}
	lua_pop(co, 2);
	lua_getfield(co, base, "kind");
	v->kind = kind_from_name(lua_tostring(co, -1));
	lua_pop(co, 1);
	lua_getfield(co, base, "code");
	v->code = (int)lua_tointeger(co, -1);
	lua_pop(co, 1);
	copy_field(co, base, "ecode", v->ecode, sizeof(v->ecode));
	copy_field(co, base, "text", v->text, sizeof(v->text));
	copy_field(co, base, "rewrite", v->rewrite, sizeof(v->rewrite));
	if (v->rewrite[0] != '\0') {
		if (id != HOOK_RCPT) {
			v->kind = VERDICT_ERROR;
			snprintf(err, errlen, "rewrite is only for the rcpt hook, "
			    "not %s", hook_name(id));
			return;
		}
		v->has_rewrite = true;
	}
}

static const luaL_Reg core_funcs[] = {
	{ "var", lb_var },
	{ "log", lb_log },
	{ "sleep", lb_sleep },
	{ "now", lb_now },
	{ "hostname", lb_hostname },
	{ "split_address", lb_split_address },
	{ "accept", lb_accept },
	{ "rewrite", lb_rewrite },
	{ "reject", lb_reject },
	{ "tempfail", lb_tempfail },
	{ "disconnect", lb_disconnect },
	{ "discard", lb_discard },
	{ NULL, NULL },
};

int
luaopen_luasmtpd(lua_State *L)
{
	luaL_newmetatable(L, VERDICT_MT);
	lua_pop(L, 1);
	lua_newtable(L);
	luaL_register(L, NULL, core_funcs);
	lua_pushliteral(L, LUASMTPD_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
