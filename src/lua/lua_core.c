/*
 * lua_core.c — require "luasmtpd": the core API for configs and hooks.
 *
 *   smtp.var(name [, default])     a -D name=value setting, else default
 *   smtp.log([level,] text)        a log line (level: debug info warn error)
 *   smtp.sleep(seconds)            yields the hook; other sessions go on
 *   smtp.all(f1, f2, ...)          runs the functions in parallel, waits
 *                                  for all (lua_task.c)
 *   smtp.crypt_check(pw, hash)     a crypt(3) hash checked on the CPU pool
 *                                  (lua_crypt.c; yields)
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
 * verdict is a hook error naming the config line rather than a strange
 * reply.  Verdicts are immutable (see "verdicts" below).
 */
#include <math.h>
#include <stdarg.h>
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

/* ---- verdicts ----
 *
 * A verdict is an immutable userdata holding the struct hook_verdict the
 * core will act on, checked completely when it is made: the reply code is
 * in the range of its kind, the enhanced code in the class of the reply
 * code, the text one line of printable characters, a rewrite a mailbox.
 * Lua can read its fields (v.kind, v.code, v.ecode, v.text, v.rewrite) but
 * not change them, and its metatable is locked, so what C reads back after
 * the hook is exactly what the constructor checked; decoding it calls no
 * metamethod and cannot raise.
 */

struct lb_verdict {
	struct hook_verdict	v;
};

static const char *const kind_names[] = {
	[VERDICT_DEFAULT] = "default", [VERDICT_ACCEPT] = "accept",
	[VERDICT_REJECT] = "reject", [VERDICT_TEMPFAIL] = "tempfail",
	[VERDICT_DISCONNECT] = "disconnect", [VERDICT_DISCARD] = "discard",
	[VERDICT_ERROR] = "error",
};

/*
 * "file:line: " of the config code that made a bad verdict.  A verdict is
 * usually made in a tail call (`return smtp.reject(...)`), which leaves no
 * caller frame to point at; the running hook's definition is the best
 * place to point at then.
 */
static void
push_where(lua_State *L)
{
	lua_Debug ar;
	struct lua_sess *ls;

	luaL_where(L, 1);
	if (lua_objlen(L, -1) > 0)
		return;
	lua_pop(L, 1);
	ls = lb_session_running(L);
	if (ls != NULL && vm.hook_refs[ls->hook] != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, vm.hook_refs[ls->hook]);
		if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0) {
			lua_pushfstring(L, "%s:%d: in hooks.%s: ", ar.short_src,
			    ar.linedefined, hook_name(ls->hook));
			return;
		}
	}
	lua_pushliteral(L, "");
}

static int
verdict_error(lua_State *L, const char *fmt, ...)
{
	va_list ap;

	push_where(L);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	lua_concat(L, 2);
	return lua_error(L);
}

static bool
is_ecode(const char *s, size_t len)
{
	size_t i = 1;

	/* RFC 3463 §2: class "." subject "." detail, class 2, 4 or 5,
	 * subject and detail 1 to 3 digits.  Digits only: no sign, no
	 * space (sscanf's %d would take both). */
	if (len < 5 || len > 9 || memchr(s, '\0', len) != NULL ||
	    (s[0] != '2' && s[0] != '4' && s[0] != '5'))
		return false;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;

		if (i >= len || s[i] != '.')
			return false;
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return false;
	}
	return i == len;
}

static void
check_text(lua_State *L, const char *what, const char *t, size_t len)
{
	if (len > SMTP_REPLY_TEXT_MAX)
		verdict_error(L, "%s: reply text longer than %d bytes", what,
		    SMTP_REPLY_TEXT_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
			verdict_error(L, "%s: reply text contains a control "
			    "character", what);
}

static struct hook_verdict *
new_verdict(lua_State *L, enum verdict_kind kind)
{
	struct lb_verdict *u = lua_newuserdata(L, sizeof(*u));

	memset(u, 0, sizeof(*u));
	u->v.kind = kind;
	luaL_getmetatable(L, VERDICT_MT);
	lua_setmetatable(L, -2);
	return &u->v;
}

/* (code, ecode, text) in any combination, each optional, in that order. */
static int
make_verdict(lua_State *L, enum verdict_kind kind, int lo, int hi, int defcode)
{
	const char *what = kind_names[kind];
	int n = lua_gettop(L), code = 0;
	const char *ecode = NULL, *text = NULL;
	size_t elen = 0, tlen = 0;
	struct hook_verdict *v;

	for (int i = 1; i <= n; i++) {
		if (lua_type(L, i) == LUA_TNUMBER && code == 0 && ecode == NULL &&
		    text == NULL) {
			lua_Number c = lua_tonumber(L, i);

			if (c != floor(c) || c < lo || c > hi)
				return verdict_error(L, "%s: reply code must be "
				    "%d..%d", what, lo, hi);
			code = (int)c;
		} else if (lua_type(L, i) == LUA_TSTRING && ecode == NULL &&
		    text == NULL && is_ecode(lua_tostring(L, i),
		    lua_objlen(L, i))) {
			ecode = lua_tolstring(L, i, &elen);
		} else if (lua_type(L, i) == LUA_TSTRING && text == NULL) {
			text = lua_tolstring(L, i, &tlen);
		} else if (!lua_isnil(L, i)) {
			return verdict_error(L, "%s: expected ([code], [enhanced "
			    "code], [text])", what);
		}
	}
	if (ecode != NULL && ecode[0] - '0' != (code ? code : defcode) / 100)
		return verdict_error(L, "%s: enhanced code %s does not match "
		    "reply class %dxx", what, ecode, (code ? code : defcode) / 100);
	if (text != NULL)
		check_text(L, what, text, tlen);
	v = new_verdict(L, kind);
	v->code = code;
	if (ecode != NULL)
		memcpy(v->ecode, ecode, elen + 1);
	if (text != NULL)
		memcpy(v->text, text, tlen + 1);
	return 1;
}

static int
lb_reject(lua_State *L)
{
	return make_verdict(L, VERDICT_REJECT, 500, 599, 550);
}

static int
lb_tempfail(lua_State *L)
{
	return make_verdict(L, VERDICT_TEMPFAIL, 400, 499, 451);
}

static int
lb_disconnect(lua_State *L)
{
	return make_verdict(L, VERDICT_DISCONNECT, 400, 599, 421);
}

static int
lb_discard(lua_State *L)
{
	lua_settop(L, 0);
	return make_verdict(L, VERDICT_DISCARD, 200, 299, 250);
}

/*
 * SECURITY: a rewrite becomes the recipient of the envelope and the RCPT
 * TO of the next hop: it must be one mailbox (RFC 5321 §4.1.2), no longer
 * than a path, with no byte that could end or extend a protocol line.
 */
static void
set_rewrite(lua_State *L, struct hook_verdict *v, int aidx)
{
	size_t len;
	const char *a;
	struct smtp_path p;

	if (lua_type(L, aidx) != LUA_TSTRING)
		verdict_error(L, "rewrite: the address must be a string, not a %s",
		    luaL_typename(L, aidx));
	a = lua_tolstring(L, aidx, &len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)a[i] < 0x20 || a[i] == 0x7f || a[i] == '<' ||
		    a[i] == '>')
			verdict_error(L, "rewrite: the address contains a control "
			    "character or an angle bracket");
	if (len + 2 > SMTP_PATH_MAX || smtp_parse_mailbox(a, len, &p) != 0)
		verdict_error(L, "rewrite: '%s' is not a valid mailbox",
		    len > 64 ? "(too long)" : a);
	memcpy(v->rewrite, a, len + 1);
	v->has_rewrite = true;
}

static int
lb_accept(lua_State *L)
{
	const char *text = NULL;
	size_t tlen = 0;
	int rewrite = 0;
	struct hook_verdict *v;

	if (lua_istable(L, 1)) {
		lua_settop(L, 1);
		lua_getfield(L, 1, "text");		/* 2 */
		lua_getfield(L, 1, "rewrite");		/* 3 */
		if (!lua_isnil(L, 2)) {
			if (lua_type(L, 2) != LUA_TSTRING)
				return verdict_error(L, "accept: text must be a "
				    "string");
			text = lua_tolstring(L, 2, &tlen);
		}
		if (!lua_isnil(L, 3))
			rewrite = 3;
	} else if (lua_type(L, 1) == LUA_TSTRING) {
		text = lua_tolstring(L, 1, &tlen);
	} else if (!lua_isnoneornil(L, 1)) {
		return verdict_error(L, "accept: expected a text or { text =, "
		    "rewrite = }");
	}
	if (text != NULL)
		check_text(L, "accept", text, tlen);
	v = new_verdict(L, VERDICT_ACCEPT);
	if (text != NULL)
		memcpy(v->text, text, tlen + 1);
	if (rewrite != 0)
		set_rewrite(L, v, rewrite);
	return 1;
}

static int
lb_rewrite(lua_State *L)
{
	struct hook_verdict *v;

	lua_settop(L, 1);
	v = new_verdict(L, VERDICT_ACCEPT);
	set_rewrite(L, v, 1);
	return 1;
}

/* The verdict at idx, or NULL (raw checks only: no metamethod runs). */
static const struct hook_verdict *
to_verdict(lua_State *L, int idx)
{
	struct lb_verdict *u = lua_touserdata(L, idx);
	bool ok;

	if (u == NULL || lua_type(L, idx) != LUA_TUSERDATA ||
	    !lua_getmetatable(L, idx))
		return NULL;
	luaL_getmetatable(L, VERDICT_MT);
	ok = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return ok ? &u->v : NULL;
}

static int
lb_verdict_index(lua_State *L)
{
	const struct hook_verdict *v = to_verdict(L, 1);
	const char *k = lua_tostring(L, 2);

	if (v == NULL || k == NULL) {
		lua_pushnil(L);
		return 1;
	}
	if (strcmp(k, "kind") == 0)
		lua_pushstring(L, kind_names[v->kind]);
	else if (strcmp(k, "code") == 0 && v->code != 0)
		lua_pushinteger(L, v->code);
	else if (strcmp(k, "ecode") == 0 && v->ecode[0] != '\0')
		lua_pushstring(L, v->ecode);
	else if (strcmp(k, "text") == 0 && v->text[0] != '\0')
		lua_pushstring(L, v->text);
	else if (strcmp(k, "rewrite") == 0 && v->has_rewrite)
		lua_pushstring(L, v->rewrite);
	else
		lua_pushnil(L);
	return 1;
}

static int
lb_verdict_newindex(lua_State *L)
{
	return luaL_error(L, "a verdict cannot be changed; make a new one "
	    "with luasmtpd.accept, reject, tempfail, disconnect or discard");
}

static int
lb_verdict_tostring(lua_State *L)
{
	const struct hook_verdict *v = to_verdict(L, 1);

	if (v == NULL)
		return luaL_error(L, "not a verdict");
	lua_pushfstring(L, "verdict %s %d %s %s", kind_names[v->kind], v->code,
	    v->ecode, v->text);
	return 1;
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
	const struct hook_verdict *given;

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
	case LUA_TUSERDATA:
		if ((given = to_verdict(co, base)) != NULL)
			break;
		/* FALLTHROUGH */
	default:
		v->kind = VERDICT_ERROR;
		snprintf(err, errlen, "a hook must return a verdict, not a %s "
		    "(make one with luasmtpd.accept, reject, ...)",
		    luaL_typename(co, base));
		return;
	}
	*v = *given;
	if (v->has_rewrite && id != HOOK_RCPT) {
		v->kind = VERDICT_ERROR;
		snprintf(err, errlen, "rewrite is only for the rcpt hook, not %s",
		    hook_name(id));
	}
}

static const luaL_Reg core_funcs[] = {
	{ "var", lb_var },
	{ "log", lb_log },
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
	lua_pushcfunction(L, lb_verdict_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, lb_verdict_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushcfunction(L, lb_verdict_tostring);
	lua_setfield(L, -2, "__tostring");
	/* getmetatable() returns this string; setmetatable() refuses. */
	lua_pushliteral(L, VERDICT_MT);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	lua_newtable(L);
	luaL_register(L, NULL, core_funcs);
	lb_task_register(L);		/* sleep, all */
	lb_crypt_register(L);		/* crypt_check */
	lua_pushliteral(L, LUASMTPD_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
