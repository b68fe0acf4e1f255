/*
 * lua_session.c — the session and transaction objects seen by hooks.
 *
 *   s.id s.remote_ip s.remote_port s.local_ip s.local_port s.listener
 *   s.helo s.esmtp s.tls s.auth s.data (a table for the script's state)
 *   s.tx (the transaction, or nil) s:log(text)
 *   tx.id tx.sender tx.params tx.rcpts tx.size tx.smtputf8 tx.body
 *   tx:add_header(name, value)
 *
 * A session value is a userdata holding a pointer that the C side clears
 * when the session is freed; any later use raises "session is closed".
 * Transaction and message values keep their session value alive (through
 * their environment table) and check that their transaction is still the
 * current one.
 */
#include <string.h>

#include "lua/lua_vm.h"
#include "smtp/smtp_session.h"
#include "tls/tls.h"
#include "util/log.h"

#define SESSION_MT	"luasmtpd.session"
#define TX_MT		"luasmtpd.transaction"

struct lb_session {
	struct smtp_session	*s;	/* NULL once the session is gone */
};

struct lb_tx {
	unsigned		 seq;
};

static struct lb_session *
check_session_ud(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, SESSION_MT);
}

static struct smtp_session *
check_session(lua_State *L, int idx)
{
	struct lb_session *u = check_session_ud(L, idx);

	if (u->s == NULL)
		luaL_error(L, "session is closed");
	return u->s;
}

void
lb_push_session(lua_State *L, struct lua_sess *ls)
{
	if (ls->ud_ref == LUA_NOREF) {
		struct lb_session *u = lua_newuserdata(vm.L, sizeof(*u));

		u->s = ls->s;
		luaL_getmetatable(vm.L, SESSION_MT);
		lua_setmetatable(vm.L, -2);
		ls->ud_ref = luaL_ref(vm.L, LUA_REGISTRYINDEX);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, ls->ud_ref);
}

void
lb_session_invalidate(struct lua_sess *ls)
{
	if (ls->ud_ref == LUA_NOREF)
		return;
	lua_rawgeti(vm.L, LUA_REGISTRYINDEX, ls->ud_ref);
	((struct lb_session *)lua_touserdata(vm.L, -1))->s = NULL;
	lua_pop(vm.L, 1);
	luaL_unref(vm.L, LUA_REGISTRYINDEX, ls->ud_ref);
	ls->ud_ref = LUA_NOREF;
}

struct smtp_session *
lb_session_of(lua_State *L, int idx)
{
	struct lb_session *u;

	/* A transaction or message: its environment holds the session. */
	lua_getfenv(L, idx);
	lua_rawgeti(L, -1, 1);
	u = luaL_checkudata(L, -1, SESSION_MT);
	lua_pop(L, 2);
	if (u->s == NULL)
		luaL_error(L, "session is closed");
	return u->s;
}

/* "SIZE=123 BODY=8BITMIME SMTPUTF8" -> { SIZE="123", BODY=..., SMTPUTF8=true } */
void
lb_push_params(lua_State *L, const char *raw)
{
	lua_newtable(L);
	if (raw == NULL)
		return;
	while (*raw != '\0') {
		const char *end, *eq;

		while (*raw == ' ')
			raw++;
		if (*raw == '\0')
			break;
		end = strchr(raw, ' ');
		if (end == NULL)
			end = raw + strlen(raw);
		eq = memchr(raw, '=', (size_t)(end - raw));
		if (eq != NULL) {
			char name[SMTP_PARAM_NAME_MAX + 1];
			size_t n = (size_t)(eq - raw);

			if (n > SMTP_PARAM_NAME_MAX)
				n = SMTP_PARAM_NAME_MAX;
			for (size_t i = 0; i < n; i++)
				name[i] = (char)(raw[i] >= 'a' && raw[i] <= 'z' ?
				    raw[i] - 32 : raw[i]);
			lua_pushlstring(L, name, n);
			lua_pushlstring(L, eq + 1, (size_t)(end - eq - 1));
		} else {
			char name[SMTP_PARAM_NAME_MAX + 1];
			size_t n = (size_t)(end - raw);

			if (n > SMTP_PARAM_NAME_MAX)
				n = SMTP_PARAM_NAME_MAX;
			for (size_t i = 0; i < n; i++)
				name[i] = (char)(raw[i] >= 'a' && raw[i] <= 'z' ?
				    raw[i] - 32 : raw[i]);
			lua_pushlstring(L, name, n);
			lua_pushboolean(L, 1);
		}
		lua_rawset(L, -3);
		raw = end;
	}
}

/* { {address=, original=, index=, status=, ecode=, text=}, ... } */
void
lb_push_rcpts(lua_State *L, const struct smtp_session *s)
{
	const struct smtp_tx *tx = s->tx;

	lua_newtable(L);
	if (tx == NULL)
		return;
	for (size_t i = 0; i < tx->nrcpts; i++) {
		const struct smtp_rcpt *r = &tx->rcpts[i];

		lua_createtable(L, 0, 6);
		lua_pushstring(L, r->address);
		lua_setfield(L, -2, "address");
		lua_pushstring(L, r->original);
		lua_setfield(L, -2, "original");
		lua_pushinteger(L, (lua_Integer)i + 1);
		lua_setfield(L, -2, "index");
		if (r->status != 0) {
			lua_pushinteger(L, r->status);
			lua_setfield(L, -2, "status");
			lua_pushstring(L, r->ecode);
			lua_setfield(L, -2, "ecode");
			if (r->text != NULL) {
				lua_pushstring(L, r->text);
				lua_setfield(L, -2, "text");
			}
		}
		lua_rawseti(L, -2, (int)i + 1);
	}
}

static void
push_tx(lua_State *L, int sess_idx, const struct smtp_session *s)
{
	struct lb_tx *t;

	sess_idx = sess_idx < 0 ? lua_gettop(L) + sess_idx + 1 : sess_idx;
	if (s->tx == NULL) {
		lua_pushnil(L);
		return;
	}
	t = lua_newuserdata(L, sizeof(*t));
	t->seq = s->tx->seq;
	luaL_getmetatable(L, TX_MT);
	lua_setmetatable(L, -2);
	lua_createtable(L, 1, 0);
	lua_pushvalue(L, sess_idx);
	lua_rawseti(L, -2, 1);
	lua_setfenv(L, -2);
}

/* nil, or { version=, cipher=, bits=, sni=, client_subject=, client_verified= } */
static void
push_tls(lua_State *L, const struct smtp_session *s)
{
	struct tls_info ti;

	if (!(s->flags & SESS_F_TLS) || !tls_conn_info(&s->conn, &ti)) {
		lua_pushnil(L);
		return;
	}
	lua_createtable(L, 0, 6);
	lua_pushstring(L, ti.version);
	lua_setfield(L, -2, "version");
	lua_pushstring(L, ti.cipher);
	lua_setfield(L, -2, "cipher");
	lua_pushinteger(L, ti.bits);
	lua_setfield(L, -2, "bits");
	if (ti.sni[0] != '\0') {
		lua_pushstring(L, ti.sni);
		lua_setfield(L, -2, "sni");
	}
	if (ti.peer_subject[0] != '\0') {
		lua_pushstring(L, ti.peer_subject);
		lua_setfield(L, -2, "client_subject");
		lua_pushboolean(L, ti.peer_verified);
		lua_setfield(L, -2, "client_verified");
	}
}

static int
lb_session_log(lua_State *L)
{
	struct smtp_session *s = check_session(L, 1);
	size_t len;
	const char *msg = luaL_checklstring(L, 2, &len);
	char ex[LOG_EXCERPT_BUFSZ(1000)];

	log_info(s->id, "lua log text=\"%s\"", log_excerpt(ex, msg, len, 1000));
	return 0;
}

static int
lb_session_index(lua_State *L)
{
	struct lb_session *u = check_session_ud(L, 1);
	const char *k = luaL_checkstring(L, 2);
	struct smtp_session *s;

	if (strcmp(k, "log") == 0) {
		lua_pushcfunction(L, lb_session_log);
		return 1;
	}
	if ((s = u->s) == NULL)
		return luaL_error(L, "session is closed");
	if (strcmp(k, "id") == 0)
		lua_pushstring(L, s->idstr);
	else if (strcmp(k, "remote_ip") == 0)
		lua_pushstring(L, s->peer_ip);
	else if (strcmp(k, "remote_port") == 0)
		lua_pushinteger(L, s->peer_port);
	else if (strcmp(k, "local_ip") == 0)
		lua_pushstring(L, s->local_ip);
	else if (strcmp(k, "local_port") == 0)
		lua_pushinteger(L, s->local_port);
	else if (strcmp(k, "listener") == 0)
		lua_pushstring(L, s->lc->name);
	else if (strcmp(k, "helo") == 0)
		s->helo != NULL ? lua_pushstring(L, s->helo) : lua_pushnil(L);
	else if (strcmp(k, "esmtp") == 0)
		lua_pushboolean(L, (s->flags & SESS_F_ESMTP) != 0);
	else if (strcmp(k, "tx") == 0)
		push_tx(L, 1, s);
	else if (strcmp(k, "tls") == 0)
		push_tls(L, s);
	else if (strcmp(k, "auth") == 0) {
		if (!(s->flags & SESS_F_AUTH)) {
			lua_pushnil(L);
		} else {
			lua_createtable(L, 0, 2);
			lua_pushstring(L, s->auth_user);
			lua_setfield(L, -2, "user");
			lua_pushstring(L, auth_mech_name(s));
			lua_setfield(L, -2, "mechanism");
		}
	}
	else if (strcmp(k, "data") == 0) {
		struct lua_sess *ls = lua_sess_get(s);

		if (ls->data_ref == LUA_NOREF) {
			lua_newtable(L);
			lua_pushvalue(L, -1);
			ls->data_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		} else {
			lua_rawgeti(L, LUA_REGISTRYINDEX, ls->data_ref);
		}
	} else
		lua_pushnil(L);
	return 1;
}

static int
lb_session_tostring(lua_State *L)
{
	struct lb_session *u = check_session_ud(L, 1);

	if (u->s == NULL)
		lua_pushstring(L, "session (closed)");
	else
		lua_pushfstring(L, "session %s", u->s->idstr);
	return 1;
}

/* The live transaction of a transaction value, or raise. */
static struct smtp_tx *
check_tx(lua_State *L, int idx)
{
	struct lb_tx *t = luaL_checkudata(L, idx, TX_MT);
	struct smtp_session *s = lb_session_of(L, idx);

	if (s->tx == NULL || s->tx->seq != t->seq)
		luaL_error(L, "transaction is over");
	return s->tx;
}

/***
 * tx:add_header(name, value)      (does not yield)
 * Adds "name: value" to the message, above our Received: field, for every
 * delivery and for the queue.  Misuse (a bad name or value, too much)
 * raises: it is the config's text, not the client's.
 */
int
lb_tx_add_header(lua_State *L, struct smtp_tx *tx)
{
	size_t nlen, vlen;
	const char *name = luaL_checklstring(L, 2, &nlen);
	const char *value = luaL_checklstring(L, 3, &vlen);
	char err[200];

	if (smtp_tx_add_header(tx, name, nlen, value, vlen, err,
	    sizeof(err)) != 0)
		return luaL_error(L, "add_header: %s", err);
	return 0;
}

static int
lb_tx_add_header_method(lua_State *L)
{
	return lb_tx_add_header(L, check_tx(L, 1));
}

static int
lb_tx_index(lua_State *L)
{
	struct smtp_tx *tx = check_tx(L, 1);
	const char *k = luaL_checkstring(L, 2);

	if (strcmp(k, "add_header") == 0)
		lua_pushcfunction(L, lb_tx_add_header_method);
	else if (strcmp(k, "id") == 0)
		lua_pushstring(L, tx->id);
	else if (strcmp(k, "sender") == 0)
		lua_pushstring(L, tx->sender);
	else if (strcmp(k, "params") == 0)
		lb_push_params(L, tx->params);
	else if (strcmp(k, "rcpts") == 0)
		lb_push_rcpts(L, lb_session_of(L, 1));
	else if (strcmp(k, "size") == 0)
		lua_pushnumber(L, (lua_Number)(tx->size ? tx->size :
		    tx->opts.size));
	else if (strcmp(k, "smtputf8") == 0)
		lua_pushboolean(L, tx->opts.smtputf8);
	else if (strcmp(k, "body") == 0)
		lua_pushstring(L, tx->opts.body == SMTP_BODY_8BITMIME ? "8BITMIME" :
		    tx->opts.body == SMTP_BODY_7BIT ? "7BIT" : "");
	else
		lua_pushnil(L);
	return 1;
}

void
lb_session_open(lua_State *L)
{
	luaL_newmetatable(L, SESSION_MT);
	lua_pushcfunction(L, lb_session_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, lb_session_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushliteral(L, "luasmtpd.session");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);

	luaL_newmetatable(L, TX_MT);
	lua_pushcfunction(L, lb_tx_index);
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "luasmtpd.transaction");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}
