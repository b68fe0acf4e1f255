/*
 * lua_config_dns.c — the config file's `dns` setting: the resolver's
 * servers, stub zones, trust anchors and timeout (src/dns, dns_config).
 *
 *   dns = {
 *     servers = { "127.0.0.1@5353", "::1" },     -- forwarders, "ip[@port]"
 *     stubs = { ["example.test."] = "192.0.2.53@53" },  -- zone -> server
 *     trust_anchors = { "example.test. IN DS 12345 13 2 ..." },
 *     trust_anchor_file = "/etc/luasmtpd/anchors",
 *     nodefault = { "test." },   -- zones libunbound would answer itself
 *     resolv_conf = true,        -- no servers: /etc/resolv.conf's
 *     timeout = 5,               -- seconds per query (at most 60)
 *   }
 *
 * Without the setting (config.c): the servers of /etc/resolv.conf, and
 * DNSSEC validation under /usr/share/dns/root.key (Debian's dns-root-data)
 * when that file is readable.  A `dns` table that names neither
 * trust_anchors nor trust_anchor_file keeps that default; trust_anchors =
 * {} turns validation off.
 *
 * Every key and value is checked here, each error naming the file and the
 * line of the assignment ("config.lua:7: dns.servers[2]: ...").  Then the
 * settings are tried on a throw-away resolver on a loop of its own, which
 * sends nothing (its one query is for the local data "localhost"): so a
 * trust anchor or file libunbound cannot parse fails the load, and
 * `luasmtpd -t`, rather than the start.
 *
 * Ownership: the strings and arrays stored in cfg->dns live as long as the
 * process (the config is never freed).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <lauxlib.h>

#include "dns/dns.h"
#include "lua/lua_config.h"
#include "util/xmalloc.h"

/* Entries of servers, trust_anchors, nodefault, and stub zones. */
#define DNS_CFG_LIST_MAX	64
/* "ip@port": an IPv6 address in text and a port. */
#define DNS_CFG_SERVER_MAX	(INET6_ADDRSTRLEN + 6)
/* A zone name: 253 octets and the final dot (RFC 1035 §2.3.4). */
#define DNS_CFG_ZONE_MAX	254
/* One trust anchor record in presentation form (a DNSKEY of RSA-4096). */
#define DNS_CFG_ANCHOR_MAX	4096
#define DNS_CFG_PATH_MAX	4096

struct dnscfg {
	lua_State	*L;
	int		 lines;
	const char	*path;
	char		*err;
	size_t		 errlen;
};

static int
fail(struct dnscfg *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* As lua_config.c's: the line is that of the last `dns = ...`. */
static int
fail(struct dnscfg *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int line;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lua_getfield(c->L, c->lines, "dns");
	line = (int)lua_tointeger(c->L, -1);
	lua_pop(c->L, 1);
	if (line > 0)
		snprintf(c->err, c->errlen, "%s:%d: %s", c->path, line, msg);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
	return -1;
}

/* "ip" or "ip@port" with a numeric IPv4 or IPv6 address. */
static bool
server_ok(const char *s)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned char a[16];
	const char *at = strrchr(s, '@');
	size_t n = at != NULL ? (size_t)(at - s) : strlen(s);

	if (n == 0 || n >= sizeof(ip))
		return false;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, a) != 1 && inet_pton(AF_INET6, ip, a) != 1)
		return false;
	if (at != NULL) {
		char *end;
		long port = strtol(at + 1, &end, 10);

		if (at[1] < '0' || at[1] > '9' || *end != '\0' || port < 1 ||
		    port > 65535)
			return false;
	}
	return true;
}

/* A zone name: labels of 1-63 letters, digits, '-' or '_', an optional
 * final dot, or "." (the root). */
static bool
zone_ok(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (strcmp(s, ".") == 0)
		return true;
	if (len == 0 || len > DNS_CFG_ZONE_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* The string at the top of the stack, 1..max octets without NUL, copied. */
static int
get_str(struct dnscfg *c, const char *name, size_t max, char **out)
{
	const char *s;
	size_t len;

	if (lua_type(c->L, -1) != LUA_TSTRING)
		return fail(c, "%s must be a string", name);
	s = lua_tolstring(c->L, -1, &len);
	if (len == 0 || len > max || strlen(s) != len)
		return fail(c, "%s must be 1 to %zu bytes without NUL", name, max);
	*out = xstrdup(s);
	return 0;
}

/*
 * The list at the top of the stack ({ "a", "b" }) into a NULL-terminated
 * array of checked strings.  An empty list gives an empty array.
 */
static int
get_list(struct dnscfg *c, const char *name, size_t max,
    bool (*ok)(const char *), const char *what, const char ***out)
{
	int t = lua_gettop(c->L);
	size_t n, count = 0;
	char item[64];
	char **list;

	if (!lua_istable(c->L, t))
		return fail(c, "%s must be a list of strings", name);
	n = lua_objlen(c->L, t);
	lua_pushnil(c->L);
	while (lua_next(c->L, t) != 0) {
		lua_Number k = lua_type(c->L, -2) == LUA_TNUMBER ?
		    lua_tonumber(c->L, -2) : 0;

		if (k < 1 || k > (lua_Number)n || k != (lua_Number)(size_t)k)
			return fail(c, "%s must be a list (keys 1..n)", name);
		lua_pop(c->L, 1);
		count++;
	}
	if (count != n)
		return fail(c, "%s must be a list (keys 1..n)", name);
	if (n > DNS_CFG_LIST_MAX)
		return fail(c, "%s: at most %d entries", name, DNS_CFG_LIST_MAX);
	/* Stored at once: what is read stays reachable from the config
	 * (never freed) even when a later entry fails. */
	list = xcalloc(n + 1, sizeof(*list));
	*out = (const char **)list;
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(c->L, t, (int)i + 1);
		snprintf(item, sizeof(item), "%s[%zu]", name, i + 1);
		if (get_str(c, item, max, &list[i]) != 0)
			return -1;
		if (ok != NULL && !ok(list[i]))
			return fail(c, "%s: \"%.100s\" is not %s", item, list[i],
			    what);
		lua_pop(c->L, 1);
	}
	return 0;
}

/* stubs = { ["zone."] = "ip@port", ... } */
static int
get_stubs(struct dnscfg *c, struct dns_config *d)
{
	int t = lua_gettop(c->L);
	struct dns_stub *stubs;
	size_t n = 0;

	if (!lua_istable(c->L, t))
		return fail(c, "dns.stubs must be a table { [\"zone.\"] = "
		    "\"ip@port\" }");
	stubs = xcalloc(DNS_CFG_LIST_MAX, sizeof(*stubs));
	d->stubs = stubs;
	lua_pushnil(c->L);
	while (lua_next(c->L, t) != 0) {
		const char *zone;
		char *addr;

		if (lua_type(c->L, -2) != LUA_TSTRING)
			return fail(c, "dns.stubs: keys must be zone names");
		if (n == DNS_CFG_LIST_MAX)
			return fail(c, "dns.stubs: at most %d zones",
			    DNS_CFG_LIST_MAX);
		zone = lua_tostring(c->L, -2);
		if (!zone_ok(zone))
			return fail(c, "dns.stubs: \"%.100s\" is not a zone name",
			    zone);
		if (get_str(c, "dns.stubs value", DNS_CFG_SERVER_MAX, &addr) != 0)
			return -1;
		stubs[n].zone = xstrdup(zone);
		stubs[n].addr = addr;
		d->nstubs = ++n;
		if (!server_ok(addr))
			return fail(c, "dns.stubs[\"%s\"]: \"%.100s\" is not ip or "
			    "ip@port", zone, addr);
		lua_pop(c->L, 1);
	}
	return 0;
}

/* Try the settings on a resolver of a loop of our own (see the header). */
static int
try_resolver(struct dnscfg *c, const struct dns_config *d)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct dns_ctx *ctx;
	char msg[400];

	if (loop == NULL)
		return fail(c, "dns: cannot create an event loop to check the "
		    "settings");
	ctx = dns_new(loop, d, msg, sizeof(msg));
	if (ctx != NULL)
		dns_free(ctx);
	ev_loop_destroy(loop);
	if (ctx == NULL)
		return fail(c, "%s", msg);
	return 0;
}

int
lua_config_dns(lua_State *L, int lines_idx, const char *path,
    struct config *cfg, char *err, size_t errlen)
{
	static const char *const known[] = { "servers", "stubs",
	    "trust_anchors", "trust_anchor_file", "nodefault", "resolv_conf",
	    "timeout", NULL };
	struct dnscfg c = { L, lines_idx, path, err, errlen };
	struct dns_config *d = &cfg->dns;
	int t = lua_gettop(L);
	bool anchors_named = false;

	if (!lua_istable(L, t))
		return fail(&c, "dns must be a table (servers = ..., stubs = "
		    "..., trust_anchors = ..., timeout = ...)");
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : "?";
		size_t i;

		for (i = 0; known[i] != NULL; i++)
			if (strcmp(known[i], k) == 0)
				break;
		if (known[i] == NULL)
			return fail(&c, "unknown setting dns.%s", k);
		lua_pop(L, 1);
	}

	lua_getfield(L, t, "servers");
	if (!lua_isnil(L, -1) && get_list(&c, "dns.servers",
	    DNS_CFG_SERVER_MAX, server_ok, "ip or ip@port",
	    (const char ***)&d->servers) != 0)
		return -1;
	lua_settop(L, t);
	lua_getfield(L, t, "stubs");
	if (!lua_isnil(L, -1) && get_stubs(&c, d) != 0)
		return -1;
	lua_settop(L, t);
	lua_getfield(L, t, "nodefault");
	if (!lua_isnil(L, -1) && get_list(&c, "dns.nodefault",
	    DNS_CFG_ZONE_MAX, zone_ok, "a zone name",
	    (const char ***)&d->nodefault) != 0)
		return -1;
	lua_settop(L, t);
	lua_getfield(L, t, "trust_anchors");
	if (!lua_isnil(L, -1)) {
		anchors_named = true;
		if (get_list(&c, "dns.trust_anchors", DNS_CFG_ANCHOR_MAX, NULL,
		    NULL, (const char ***)&d->trust_anchors) != 0)
			return -1;
	}
	lua_settop(L, t);
	lua_getfield(L, t, "trust_anchor_file");
	if (!lua_isnil(L, -1)) {
		char *file;

		anchors_named = true;
		if (get_str(&c, "dns.trust_anchor_file", DNS_CFG_PATH_MAX,
		    &file) != 0)
			return -1;
		d->trust_anchor_file = file;
		if (access(file, R_OK) != 0)
			return fail(&c, "dns.trust_anchor_file: cannot read "
			    "\"%.200s\"", file);
	} else if (anchors_named) {
		d->trust_anchor_file = NULL;	/* not the root's default */
	}
	lua_settop(L, t);
	lua_getfield(L, t, "resolv_conf");
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TBOOLEAN)
			return fail(&c, "dns.resolv_conf must be true or false");
		d->resolv_conf = lua_toboolean(L, -1);
	}
	lua_settop(L, t);
	lua_getfield(L, t, "timeout");
	if (!lua_isnil(L, -1)) {
		lua_Number v = lua_tonumber(L, -1);

		if (lua_type(L, -1) != LUA_TNUMBER || !(v > 0) ||
		    v > DNS_TIMEOUT_MAX)
			return fail(&c, "dns.timeout must be a number of seconds "
			    "(0 < timeout <= %g)", DNS_TIMEOUT_MAX);
		d->timeout = v;
	}
	lua_settop(L, t);
	return try_resolver(&c, d);
}
