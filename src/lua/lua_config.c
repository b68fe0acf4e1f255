/*
 * lua_config.c — the config file's settings (documented in README.md,
 * "Options", with their defaults in config.c and limits.h).
 *
 * Every error names the file and the line of the assignment it is about,
 * e.g. "examples/default.lua:12: limits.max_recipients must be at least
 * 100 (RFC 5321 4.5.3.1.8)".  A global that is not a setting is an error
 * (a typo must not run silently with the default); only functions may be
 * the config's own globals.
 *
 * The listeners (`listen`) are read by lua_config_listen.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/lua_config.h"
#include "lua/lua_config_int.h"
#include "lua/lua_vm.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/xmalloc.h"

static int
fail(struct cfgctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
fail(struct cfgctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int line = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->key != NULL) {
		lua_getfield(c->L, c->lines, c->key);
		line = (int)lua_tointeger(c->L, -1);
		lua_pop(c->L, 1);
	}
	if (line > 0)
		snprintf(c->err, c->errlen, "%s:%d: %s", c->path, line, msg);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
	return -1;
}

int
lua_config_error(struct cfgctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail(c, "%s", msg);
}

/* Number at the top of the stack, as an integer within [lo, hi]. */
static int
get_uint(struct cfgctx *c, const char *name, double lo, double hi, double *out)
{
	lua_Number v;

	if (!lua_isnumber(c->L, -1) || lua_type(c->L, -1) != LUA_TNUMBER)
		return fail(c, "%s must be a number", name);
	v = lua_tonumber(c->L, -1);
	if (v != floor(v) || v < lo || v > hi)
		return fail(c, "%s must be a whole number from %.0f to %.0f", name,
		    lo, hi);
	*out = v;
	return 0;
}

static int
get_secs(struct cfgctx *c, const char *name, double lo, double *out)
{
	lua_Number v;

	if (lua_type(c->L, -1) != LUA_TNUMBER)
		return fail(c, "%s must be a number of seconds", name);
	v = lua_tonumber(c->L, -1);
	if (!(v >= lo) || v > 86400)
		return fail(c, "%s must be between %g and 86400 seconds", name, lo);
	*out = v;
	return 0;
}

static int
get_bool(struct cfgctx *c, const char *name, bool *out)
{
	if (lua_type(c->L, -1) != LUA_TBOOLEAN)
		return fail(c, "%s must be true or false", name);
	*out = lua_toboolean(c->L, -1);
	return 0;
}

static int
get_string(struct cfgctx *c, const char *name, char *out, size_t outsz)
{
	size_t len;
	const char *s;

	if (lua_type(c->L, -1) != LUA_TSTRING)
		return fail(c, "%s must be a string", name);
	s = lua_tolstring(c->L, -1, &len);
	if (len == 0 || len >= outsz)
		return fail(c, "%s must be 1 to %zu bytes long", name, outsz - 1);
	memcpy(out, s, len + 1);
	return 0;
}

struct numopt {
	const char	*name;
	double		 lo, hi;
	size_t		 off;
	int		 kind;		/* 0 unsigned, 1 size_t, 2 seconds */
};

#define U(n, lo, hi, f)	{ n, lo, hi, offsetof(struct config, f), 0 }
#define Z(n, lo, hi, f)	{ n, lo, hi, offsetof(struct config, f), 1 }
#define S(n, lo, f)	{ n, lo, 0, offsetof(struct config, f), 2 }

static const struct numopt limit_opts[] = {
	Z("max_message_size", 1024, 4294967295.0, max_message_size),
	/* RFC 5321 §4.5.3.1.8: 100 recipients MUST be accepted. */
	U("max_recipients", SMTP_RCPTS_MIN, 1000000, max_recipients),
	U("max_hops", 1, 1000, max_hops),
	U("max_errors", 1, 100000, max_errors),
	U("max_commands", 1, 100000000, max_commands),
	U("max_junk_commands", 0, 100000000, max_junk_commands),
	U("max_transactions", 1, 100000000, max_transactions),
	U("max_connections", 1, 1000000, max_connections),
	U("max_connections_per_ip", 1, 1000000, max_connections_per_ip),
	U("max_auth_failures", 1, 1000, max_auth_failures),
	/* RFC 5321 §4.5.3.1.4 and §4.5.3.1.6: never below the minimums. */
	Z("command_line", SMTP_CMD_LINE_MAX, SMTP_AUTH_LINE_MAX, command_line_max),
	Z("text_line", SMTP_TEXT_LINE_MAX, 1000000, text_line_max),
	U("min_data_rate", 0, 1000000000, min_data_rate),
	{ NULL, 0, 0, 0, 0 },
};

static const struct numopt timeout_opts[] = {
	S("command", 0.01, timeout_command),
	S("data", 0.01, timeout_data),
	S("hook", 0.01, timeout_hook),
	S("hook_cpu", 0.01, hook_cpu_limit),
	S("tls_handshake", 0.01, timeout_tls_handshake),
	S("proxy", 0.01, timeout_proxy),
	{ NULL, 0, 0, 0, 0 },
};

static int
read_numtable(struct cfgctx *c, const char *table, const struct numopt *opts,
    struct config *cfg)
{
	char name[96];

	if (!lua_istable(c->L, -1))
		return fail(c, "%s must be a table", table);
	lua_pushnil(c->L);
	while (lua_next(c->L, -2) != 0) {
		const struct numopt *o;
		const char *k;
		double v;

		if (lua_type(c->L, -2) != LUA_TSTRING)
			return fail(c, "%s: keys must be names", table);
		k = lua_tostring(c->L, -2);
		for (o = opts; o->name != NULL; o++)
			if (strcmp(o->name, k) == 0)
				break;
		if (o->name == NULL)
			return fail(c, "unknown setting %s.%s", table, k);
		snprintf(name, sizeof(name), "%s.%s", table, k);
		if (o->kind == 2) {
			if (get_secs(c, name, o->lo, &v) != 0)
				return -1;
			*(double *)((char *)cfg + o->off) = v;
		} else {
			if (get_uint(c, name, o->lo, o->hi, &v) != 0)
				return -1;
			if (o->kind == 1)
				*(size_t *)((char *)cfg + o->off) = (size_t)v;
			else
				*(unsigned *)((char *)cfg + o->off) = (unsigned)v;
		}
		lua_pop(c->L, 1);
	}
	return 0;
}

static char *
opt_string(struct cfgctx *c, int idx, const char *k, int *err)
{
	char *v = NULL;

	lua_getfield(c->L, idx, k);
	if (lua_type(c->L, -1) == LUA_TSTRING)
		v = xstrdup(lua_tostring(c->L, -1));
	else if (!lua_isnil(c->L, -1))
		*err = fail(c, "tls.%s must be a string", k);
	lua_pop(c->L, 1);
	return v;
}

/* tls = { certs = { { cert =, key =, self_signed = }, ... }, min_version = ... } */
static int
read_tls(struct cfgctx *c, struct config *cfg)
{
	static const char *known[] = { "certs", "min_version", "ciphers",
	    "ciphersuites", "request_client_cert", "client_ca", NULL };
	struct tls_config *t = &cfg->tls;
	int idx = lua_gettop(c->L), err = 0;
	size_t n;

	if (!lua_istable(c->L, idx))
		return fail(c, "tls must be a table");
	lua_pushnil(c->L);
	while (lua_next(c->L, idx) != 0) {
		const char *k = lua_type(c->L, -2) == LUA_TSTRING ?
		    lua_tostring(c->L, -2) : "?";
		int i;

		for (i = 0; known[i] != NULL; i++)
			if (strcmp(known[i], k) == 0)
				break;
		if (known[i] == NULL)
			return fail(c, "unknown setting tls.%s", k);
		lua_pop(c->L, 1);
	}
	lua_getfield(c->L, idx, "certs");
	if (!lua_istable(c->L, -1) || (n = lua_objlen(c->L, -1)) == 0)
		return fail(c, "tls.certs must list at least one { cert = ..., "
		    "key = ... }");
	t->certs = xcalloc(n, sizeof(*t->certs));
	t->ncerts = n;
	for (size_t i = 0; i < n; i++) {
		struct tls_cert_config *cc = &t->certs[i];
		int e = lua_gettop(c->L) + 1;

		lua_rawgeti(c->L, -1, (int)i + 1);
		if (!lua_istable(c->L, e))
			return fail(c, "tls.certs[%zu] must be a table", i + 1);
		cc->cert = opt_string(c, e, "cert", &err);
		cc->key = opt_string(c, e, "key", &err);
		cc->self_signed = opt_string(c, e, "self_signed", &err);
		if (err != 0)
			return -1;
		if (cc->cert == NULL || cc->key == NULL)
			return fail(c, "tls.certs[%zu] needs cert and key", i + 1);
		lua_pop(c->L, 1);
	}
	lua_pop(c->L, 1);
	t->min_version = opt_string(c, idx, "min_version", &err);
	t->ciphers = opt_string(c, idx, "ciphers", &err);
	t->ciphersuites = opt_string(c, idx, "ciphersuites", &err);
	t->client_ca = opt_string(c, idx, "client_ca", &err);
	if (err != 0)
		return -1;
	lua_getfield(c->L, idx, "request_client_cert");
	if (!lua_isnil(c->L, -1) && get_bool(c, "tls.request_client_cert",
	    &t->request_client_cert) != 0)
		return -1;
	lua_pop(c->L, 1);
	cfg->tls_configured = true;
	return 0;
}

static int
read_setting(struct cfgctx *c, const char *k, struct config *cfg)
{
	double v;

	if (strcmp(k, "hostname") == 0)
		return get_string(c, k, cfg->hostname, sizeof(cfg->hostname));
	if (strcmp(k, "spool") == 0)
		return get_string(c, k, cfg->spool_dir, sizeof(cfg->spool_dir));
	if (strcmp(k, "listen") == 0)
		return lua_config_listen(c, cfg);
	if (strcmp(k, "limits") == 0)
		return read_numtable(c, "limits", limit_opts, cfg);
	if (strcmp(k, "timeouts") == 0)
		return read_numtable(c, "timeouts", timeout_opts, cfg);
	if (strcmp(k, "greet_pause") == 0)
		return get_secs(c, k, 0, &cfg->greet_pause);
	if (strcmp(k, "auth_failure_delay") == 0)
		return get_secs(c, k, 0, &cfg->auth_failure_delay);
	if (strcmp(k, "reject_early_talkers") == 0)
		return get_bool(c, k, &cfg->reject_early_talkers);
	if (strcmp(k, "forbid_unauth_pipelining") == 0)
		return get_bool(c, k, &cfg->forbid_unauth_pipelining);
	if (strcmp(k, "commit_sync") == 0) {
		const char *m = lua_tostring(c->L, -1);

		if (lua_type(c->L, -1) == LUA_TSTRING &&
		    strcmp(m, "filesystem") == 0)
			cfg->commit_per_file = false;
		else if (lua_type(c->L, -1) == LUA_TSTRING &&
		    strcmp(m, "file") == 0)
			cfg->commit_per_file = true;
		else
			return fail(c, "commit_sync must be \"filesystem\" or "
			    "\"file\"");
		return 0;
	}
	if (strcmp(k, "received_header") == 0)
		return get_bool(c, k, &cfg->received_header);
	if (strcmp(k, "smtputf8") == 0)
		return get_bool(c, k, &cfg->smtputf8);
	if (strcmp(k, "chunking") == 0)
		return get_bool(c, k, &cfg->chunking);
	if (strcmp(k, "workers") == 0) {
		if (get_uint(c, k, 1, 64, &v) != 0)
			return -1;
		cfg->workers = (unsigned)v;
		return 0;
	}
	if (strcmp(k, "bare_lf") == 0) {
		const char *m = lua_tostring(c->L, -1);

		if (lua_type(c->L, -1) == LUA_TSTRING && strcmp(m, "reject") == 0)
			cfg->bare_lf = BARE_LF_REJECT;
		else if (lua_type(c->L, -1) == LUA_TSTRING &&
		    strcmp(m, "normalize") == 0)
			cfg->bare_lf = BARE_LF_NORMALIZE;
		else
			return fail(c, "bare_lf must be \"reject\" or \"normalize\"");
		return 0;
	}
	if (strcmp(k, "bare_lf_reject_code") == 0) {
		if (get_uint(c, k, 500, 599, &v) != 0)
			return -1;
		cfg->bare_lf_reject_code = (int)v;
		return 0;
	}
	if (strcmp(k, "log_level") == 0) {
		enum log_level lvl;

		if (lua_type(c->L, -1) != LUA_TSTRING ||
		    log_level_from_name(lua_tostring(c->L, -1), &lvl) != 0)
			return fail(c, "log_level must be debug, info, warn or "
			    "error");
		log_set_level(lvl);
		return 0;
	}
	if (strcmp(k, "tls") == 0)
		return read_tls(c, cfg);
	if (strcmp(k, "kv") == 0)
		return lua_config_kv(c, cfg);
	if (strcmp(k, "http") == 0)
		return lua_config_http(c, cfg);
	if (strcmp(k, "mailauth") == 0)
		return lua_config_mailauth(c, cfg);
	if (strcmp(k, "metrics") == 0)
		return lua_config_metrics(c, cfg);
	if (strcmp(k, "log") == 0)
		return lua_config_log(c, cfg);
	if (strcmp(k, "dns") == 0)
		return lua_config_dns(c->L, c->lines, c->path, cfg, c->err,
		    c->errlen);
	if (strcmp(k, "hooks") == 0)
		return 0;	/* read separately */
	/*
	 * A function is the config's own helper.  Anything else is most
	 * likely a misspelt setting, which must not run with the default.
	 */
	if (lua_type(c->L, -1) == LUA_TFUNCTION)
		return 0;
	return fail(c, "unknown setting '%s' (use local for the config's own "
	    "variables)", k);
}

int
lua_config_read(lua_State *L, int env, int lines, int hooks, const char *path,
    struct config *cfg, char *err, size_t errlen)
{
	static const char *names[HOOK_COUNT] = {
		"connect", "helo", "mail", "rcpt", "data", "message", "reset",
		"disconnect", "vrfy", "auth",
	};
	struct cfgctx c = { L, lines, path, NULL, err, errlen };
	int values;

	/* prelude.lua keeps the assigned values behind env: its __index. */
	if (!lua_getmetatable(L, env))
		return fail(&c, "the config environment has no metatable");
	lua_getfield(L, -1, "__index");
	lua_remove(L, -2);
	if (!lua_istable(L, -1))
		return fail(&c, "the config environment has no values table");
	values = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, values) != 0) {
		/* key at values + 1, value at values + 2 */
		if (lua_type(L, -2) == LUA_TSTRING) {
			c.key = lua_tostring(L, -2);
			if (read_setting(&c, c.key, cfg) != 0)
				return -1;
		}
		lua_settop(L, values + 1);
	}
	c.key = cfg->listeners != NULL ? "listen" : NULL;
	if (lua_config_listen_check(&c, cfg) != 0)
		return -1;
	c.key = NULL;
	if (cfg->tls_configured &&
	    tls_server_init(&cfg->tls, err, errlen) != 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err);
		c.key = "tls";
		return fail(&c, "%s", msg);
	}

	c.key = "hooks";
	if (!lua_istable(L, hooks))
		return fail(&c, "hooks must be a table of functions");
	for (int i = 0; i < HOOK_COUNT; i++) {
		lua_getfield(L, hooks, names[i]);
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			continue;
		}
		if (!lua_isfunction(L, -1))
			return fail(&c, "hook '%s' must be a function", names[i]);
		vm.hook_refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	for (const struct listener_config *lc = cfg->listeners; lc != NULL;
	    lc = lc->next)
		if (lc->auth && vm.hook_refs[HOOK_AUTH] == LUA_NOREF)
			return fail(&c, "listen %s: auth = true needs hooks.auth to "
			    "check credentials", lc->name);
	return 0;
}
