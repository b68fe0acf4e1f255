/*
 * lua_config_listen.c — the `listen` setting: TCP and unix-socket
 * listeners with their options (documented in README.md "Options" and in
 * luasmtpd.conf(5), LISTENERS; spec/unit/man_spec.lua reads known[] in
 * read_listener_opts to check that every option is documented there).
 *
 *	listen = "127.0.0.1:2525"
 *	listen = { "127.0.0.1:25", "[::1]:25", "unix:/run/luasmtpd/smtp.sock" }
 *	listen = { { address = "0.0.0.0:25", tls = "starttls",
 *	             proxy = true, proxy_from = { "10.0.0.0/8" } },
 *	           { address = "unix:/run/smtp.sock", mode = "0660",
 *	             owner = "mail", group = "mail" } }
 *
 * IP addresses are numeric (no name is resolved) and each is bound once
 * with port 0 to prove it exists on this host; nothing is connected.  A
 * unix path is checked, not created: its directory must exist, and a file
 * already there must be a socket (net/listener.c replaces a stale one at
 * start).  Owner and group names are resolved here, so -t reports a
 * misspelt one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lua/lua_config_int.h"
#include "util/xmalloc.h"

#define UNIX_PREFIX	"unix:"
#define UNIX_MODE_MAX	0777

/* A numeric IPv4 or IPv6 address with port 0 into ss; -1 if not numeric. */
static int
listen_sockaddr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		*len = sizeof(*sin);
		return 0;
	}
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/*
 * "unix:PATH": a path that fits sun_path, without spaces or control
 * octets (it appears in key=value log lines).
 */
static int
parse_unix(struct cfgctx *c, const char *s, struct listener_config *lc)
{
	const char *path = s + strlen(UNIX_PREFIX);
	size_t len = strlen(path);

	if (len == 0)
		return lua_config_error(c, "listen '%s': no path after unix:", s);
	if (len >= sizeof(lc->path))
		return lua_config_error(c, "listen '%s': the path is longer than "
		    "%zu bytes (a unix socket's limit)", s, sizeof(lc->path) - 1);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)path[i] <= ' ' || path[i] == 0x7f)
			return lua_config_error(c, "listen '%s': the path has a "
			    "space or control character", s);
	lc->is_unix = true;
	memcpy(lc->path, path, len + 1);
	snprintf(lc->name, sizeof(lc->name), "%s%s", UNIX_PREFIX, lc->path);
	return 0;
}

/*
 * "127.0.0.1:2525", "[::1]:2525" (numeric only): a listener's or
 * (lua_config_obs.c) the metrics endpoint's address; errors name the
 * setting being read (c->key, "listen" when none).
 */
int
lua_config_hostport(struct cfgctx *c, const char *s, struct listener_config *lc)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	const char *colon;
	char *end;
	long port;
	size_t alen;
	const char *what = c->key != NULL ? c->key : "listen";

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return lua_config_error(c, "%s '%s': expected "
			    "[address]:port", what, s);
		alen = (size_t)(close - s - 1);
		if (alen >= sizeof(lc->address))
			return lua_config_error(c, "%s '%s': address too long",
			    what, s);
		memcpy(lc->address, s + 1, alen);
		lc->address[alen] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s)
			return lua_config_error(c, "%s '%s': expected "
			    "address:port%s", what, s,
			    strcmp(what, "listen") == 0 ? " or unix:path" : "");
		alen = (size_t)(colon - s);
		if (alen >= sizeof(lc->address))
			return lua_config_error(c, "%s '%s': address too long",
			    what, s);
		memcpy(lc->address, s, alen);
		lc->address[alen] = '\0';
	}
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
		return lua_config_error(c, "%s '%s': bad port", what, s);
	lc->port = (int)port;
	if (listen_sockaddr(lc->address, &ss, &slen) != 0)
		return lua_config_error(c, "%s '%s': '%s' is not a numeric "
		    "IPv4 or IPv6 address (names are not resolved)", what, s,
		    lc->address);
	snprintf(lc->name, sizeof(lc->name), strchr(lc->address, ':') ?
	    "[%s]:%d" : "%s:%d", lc->address, lc->port);
	return 0;
}

/* "127.0.0.1:2525", "[::1]:2525", "unix:/path" */
static int
parse_address(struct cfgctx *c, const char *s, struct listener_config *lc)
{
	if (strncmp(s, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
		return parse_unix(c, s, lc);
	return lua_config_hostport(c, s, lc);
}

/*
 * Bind the listener's address with port 0 and close: proves the address
 * belongs to this host (EADDRNOTAVAIL otherwise) without taking its port
 * or sending anything.
 */
int
lua_config_bindable(struct cfgctx *c, const struct listener_config *lc)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int fd, e;
	const char *what = c->key != NULL ? c->key : "listen";

	if (listen_sockaddr(lc->address, &ss, &slen) != 0)
		return lua_config_error(c, "%s %s: not a numeric address",
		    what, lc->name);
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, slen) != 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		return lua_config_error(c, "%s %s: cannot bind %s on this "
		    "host: %s", what, lc->name, lc->address, strerror(e));
	}
	close(fd);
	return 0;
}

/* The directory of a unix path exists; what is at the path is a socket. */
static int
check_unix_path(struct cfgctx *c, const struct listener_config *lc)
{
	char dir[sizeof(lc->path)];
	char *slash;
	struct stat st;

	memcpy(dir, lc->path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &st) != 0)
		return lua_config_error(c, "listen %s: the directory %s: %s",
		    lc->name, dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return lua_config_error(c, "listen %s: %s is not a directory",
		    lc->name, dir);
	if (lstat(lc->path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return lua_config_error(c, "listen %s: %s exists and is not a "
		    "socket (only a stale socket is replaced)", lc->name,
		    lc->path);
	return 0;
}

static int
opt_bool(struct cfgctx *c, int idx, const char *k, bool *out)
{
	int r = 0;

	lua_getfield(c->L, idx, k);
	if (!lua_isnil(c->L, -1)) {
		if (lua_type(c->L, -1) != LUA_TBOOLEAN)
			r = lua_config_error(c, "listen.%s must be true or false",
			    k);
		else
			*out = lua_toboolean(c->L, -1);
	}
	lua_pop(c->L, 1);
	return r;
}

/* mode = "0660": octal digits, permission bits only. */
static int
opt_mode(struct cfgctx *c, int idx, struct listener_config *lc)
{
	const char *s;
	char *end;
	long v;
	int r = 0;

	lua_getfield(c->L, idx, "mode");
	if (!lua_isnil(c->L, -1)) {
		s = lua_type(c->L, -1) == LUA_TSTRING ? lua_tostring(c->L, -1) :
		    "";
		v = strtol(s, &end, 8);
		if (s[0] < '0' || s[0] > '7' || *end != '\0' || strlen(s) > 4 ||
		    v < 0 || v > UNIX_MODE_MAX)
			r = lua_config_error(c, "listen.mode must be a string of "
			    "octal digits up to \"0777\", like \"0660\"");
		else
			lc->unix_mode = (int)v;
	}
	lua_pop(c->L, 1);
	return r;
}

/* owner = "name" | uid, group = "name" | gid: resolved now. */
static int
opt_id(struct cfgctx *c, int idx, const char *k, long *out)
{
	int r = 0;

	lua_getfield(c->L, idx, k);
	if (lua_type(c->L, -1) == LUA_TNUMBER) {
		lua_Number v = lua_tonumber(c->L, -1);

		if (v != floor(v) || v < 0 || v >= 4294967295.0)
			r = lua_config_error(c, "listen.%s: %g is not a %s id", k, v,
			    strcmp(k, "owner") == 0 ? "user" : "group");
		else
			*out = (long)v;
	} else if (lua_type(c->L, -1) == LUA_TSTRING) {
		const char *name = lua_tostring(c->L, -1);
		struct passwd *pw;
		struct group *gr;

		if (strcmp(k, "owner") == 0 && (pw = getpwnam(name)) != NULL)
			*out = (long)pw->pw_uid;
		else if (strcmp(k, "group") == 0 && (gr = getgrnam(name)) != NULL)
			*out = (long)gr->gr_gid;
		else
			r = lua_config_error(c, "listen.%s: no %s named '%s' on "
			    "this host", k, strcmp(k, "owner") == 0 ? "user" :
			    "group", name);
	} else if (!lua_isnil(c->L, -1)) {
		r = lua_config_error(c, "listen.%s must be a name or a number", k);
	}
	lua_pop(c->L, 1);
	return r;
}

/* proxy_from = { "127.0.0.1", "10.0.0.0/8", "::1" } (or one string). */
static int
opt_proxy_from(struct cfgctx *c, int idx, struct listener_config *lc)
{
	lua_State *L = c->L;
	size_t n;
	int t, r = 0;

	lua_getfield(L, idx, "proxy_from");
	t = lua_gettop(L);
	if (lua_isnil(L, t)) {
		lua_pop(L, 1);
		return 0;
	}
	if (lua_type(L, t) == LUA_TSTRING) {
		lua_createtable(L, 1, 0);
		lua_pushvalue(L, t);
		lua_rawseti(L, -2, 1);
		lua_replace(L, t);
	}
	if (!lua_istable(L, t) || (n = lua_objlen(L, t)) == 0) {
		lua_pop(L, 1);
		return lua_config_error(c, "listen.proxy_from must list the "
		    "trusted proxies' addresses, like { \"127.0.0.1\", "
		    "\"10.0.0.0/8\" }");
	}
	lc->proxy_from = xcalloc(n, sizeof(*lc->proxy_from));
	lc->nproxy_from = n;
	for (size_t i = 0; i < n && r == 0; i++) {
		lua_rawgeti(L, t, (int)i + 1);
		if (lua_type(L, -1) != LUA_TSTRING ||
		    cidr_parse(lua_tostring(L, -1), &lc->proxy_from[i]) != 0)
			r = lua_config_error(c, "listen.proxy_from[%zu]: '%s' is "
			    "not a numeric address or address/prefix", i + 1,
			    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) :
			    luaL_typename(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return r;
}

/* The options of a unix socket and of PROXY, and how they combine. */
static int
read_frontend_opts(struct cfgctx *c, int idx, struct listener_config *lc)
{
	long owner = -1, group = -1;
	bool has_unix_opt;

	if (opt_mode(c, idx, lc) != 0 || opt_id(c, idx, "owner", &owner) != 0 ||
	    opt_id(c, idx, "group", &group) != 0 ||
	    opt_bool(c, idx, "proxy", &lc->proxy) != 0 ||
	    opt_proxy_from(c, idx, lc) != 0)
		return -1;
	lc->unix_owner = (uid_t)owner;
	lc->unix_group = (gid_t)group;
	has_unix_opt = lc->unix_mode >= 0 || owner >= 0 || group >= 0;
	if (has_unix_opt && !lc->is_unix)
		return lua_config_error(c, "listen %s: mode, owner and group are "
		    "for a unix: address", lc->name);
	if (lc->nproxy_from > 0 && !lc->proxy)
		return lua_config_error(c, "listen %s: proxy_from needs proxy = "
		    "true", lc->name);
	if (lc->nproxy_from > 0 && lc->is_unix)
		return lua_config_error(c, "listen %s: a unix socket takes no "
		    "proxy_from (its mode and owner decide who may connect)",
		    lc->name);
	if (lc->proxy && !lc->is_unix && lc->nproxy_from == 0)
		return lua_config_error(c, "listen %s: proxy = true needs "
		    "proxy_from = { the proxies' addresses }", lc->name);
	return 0;
}

/* { address = "ip:port", tls = "starttls", require_tls = true, auth = ... } */
static int
read_listener_opts(struct cfgctx *c, int idx, struct listener_config *lc)
{
	static const char *known[] = { "address", "tls", "require_tls", "auth",
	    "auth_plaintext", "require_auth", "lmtp", "mode", "owner", "group",
	    "proxy", "proxy_from", NULL };
	/* The address without its port, as these messages always said. */
	const char *who = lc->is_unix ? lc->name : lc->address;
	const char *mode;

	lua_pushnil(c->L);
	while (lua_next(c->L, idx) != 0) {
		const char *k = lua_type(c->L, -2) == LUA_TSTRING ?
		    lua_tostring(c->L, -2) : "?";
		int i;

		for (i = 0; known[i] != NULL; i++)
			if (strcmp(known[i], k) == 0)
				break;
		if (known[i] == NULL) {
			lua_pop(c->L, 2);
			return lua_config_error(c, "listen: unknown listener "
			    "setting '%s'", k);
		}
		lua_pop(c->L, 1);
	}
	lua_getfield(c->L, idx, "tls");
	if (!lua_isnil(c->L, -1)) {
		mode = lua_tostring(c->L, -1);
		if (lua_type(c->L, -1) != LUA_TSTRING)
			mode = "?";
		if (strcmp(mode, "none") == 0)
			lc->tls = TLS_NONE;
		else if (strcmp(mode, "starttls") == 0)
			lc->tls = TLS_STARTTLS;
		else if (strcmp(mode, "implicit") == 0)
			lc->tls = TLS_IMPLICIT;
		else
			return lua_config_error(c, "listen.tls must be \"none\", "
			    "\"starttls\" or \"implicit\"");
	}
	lua_pop(c->L, 1);
	if (opt_bool(c, idx, "require_tls", &lc->require_tls) != 0 ||
	    opt_bool(c, idx, "auth", &lc->auth) != 0 ||
	    opt_bool(c, idx, "auth_plaintext", &lc->auth_plaintext) != 0 ||
	    opt_bool(c, idx, "require_auth", &lc->require_auth) != 0 ||
	    opt_bool(c, idx, "lmtp", &lc->lmtp) != 0)
		return -1;
	/* XXX: until the session speaks LMTP, LHLO would get 500. */
	if (lc->lmtp)
		return lua_config_error(c, "listen %s: lmtp listeners are not "
		    "implemented yet", who);
	if (lc->require_tls && lc->tls == TLS_NONE)
		return lua_config_error(c, "listen %s: require_tls needs tls = "
		    "\"starttls\" or \"implicit\"", who);
	if (lc->require_auth && !lc->auth)
		return lua_config_error(c, "listen %s: require_auth needs auth = "
		    "true", who);
	return read_frontend_opts(c, idx, lc);
}

static int
read_listener(struct cfgctx *c, struct config *cfg, int idx)
{
	struct listener_config *lc = xcalloc(1, sizeof(*lc));
	struct listener_config **tail;

	lc->unix_mode = -1;
	lc->unix_owner = (uid_t)-1;
	lc->unix_group = (gid_t)-1;
	idx = idx < 0 ? lua_gettop(c->L) + idx + 1 : idx;
	if (lua_type(c->L, idx) == LUA_TSTRING) {
		if (parse_address(c, lua_tostring(c->L, idx), lc) != 0)
			goto bad;
	} else if (lua_istable(c->L, idx)) {
		lua_getfield(c->L, idx, "address");
		if (lua_type(c->L, -1) != LUA_TSTRING) {
			lua_config_error(c, "listen: each listener needs address "
			    "= \"ip:port\" or \"unix:path\"");
			goto bad;
		}
		if (parse_address(c, lua_tostring(c->L, -1), lc) != 0)
			goto bad;
		lua_pop(c->L, 1);
		if (read_listener_opts(c, idx, lc) != 0)
			goto bad;
	} else {
		lua_config_error(c, "listen entries must be \"ip:port\" or "
		    "\"unix:path\" strings or tables");
		goto bad;
	}
	for (tail = &cfg->listeners; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = lc;
	return 0;
bad:
	free(lc->proxy_from);
	free(lc);
	return -1;
}

int
lua_config_listen(struct cfgctx *c, struct config *cfg)
{
	if (lua_type(c->L, -1) == LUA_TSTRING)
		return read_listener(c, cfg, -1);
	if (!lua_istable(c->L, -1))
		return lua_config_error(c, "listen must be \"ip:port\", "
		    "\"unix:path\" or a list of listeners");
	if (lua_objlen(c->L, -1) == 0) {
		/* A single listener table: { address = ... } */
		return read_listener(c, cfg, -1);
	}
	for (size_t i = 1; i <= lua_objlen(c->L, -1); i++) {
		lua_rawgeti(c->L, -1, (int)i);
		if (read_listener(c, cfg, -1) != 0)
			return -1;
		lua_pop(c->L, 1);
	}
	return 0;
}

int
lua_config_listen_check(struct cfgctx *c, const struct config *cfg)
{
	if (cfg->listeners == NULL && !cfg->stdio)
		return lua_config_error(c, "no listener: set listen = "
		    "\"127.0.0.1:2525\"");
	for (const struct listener_config *lc = cfg->listeners; lc != NULL;
	    lc = lc->next) {
		if (lc->tls != TLS_NONE && !cfg->tls_configured)
			return lua_config_error(c, "listen %s: TLS needs "
			    "certificates: set tls = { certs = { { cert = ..., "
			    "key = ... } } }", lc->name);
		if (lc->is_unix ? check_unix_path(c, lc) != 0 :
		    lua_config_bindable(c, lc) != 0)
			return -1;
	}
	return 0;
}
