/*
 * lua_config_obs.c — the observability settings: where the Prometheus
 * endpoint listens, and where log lines go.
 *
 *   metrics = "127.0.0.1:9465"            -- or "[::1]:9465"
 *   metrics = { address = "127.0.0.1:9465" }
 *
 *   log = "journal"                       -- the sink alone
 *   log = { sink = "stderr" | "syslog" | "journal",
 *           facility = "mail",            -- syslog and journal
 *           ident = "luasmtpd",           -- SYSLOG_IDENTIFIER, tag
 *           socket = "/path" }            -- for tests: the datagram
 *                                         -- socket instead of /dev/log or
 *                                         -- /run/systemd/journal/socket
 *
 * The metrics address is numeric, like a listener's, and is checked the
 * same way: bound with port 0 and closed, so `-t` fails on an address that
 * is not this host's.  Without `metrics` there is no endpoint; without
 * `log`, lines go to stderr.  The sink takes effect once the config has
 * loaded (main.c), so `-t` and load errors still print to stderr.
 *
 * SECURITY: ident goes into every syslog header and journal field:
 * letters, digits, '-', '_' and '.' only.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/lua_config_int.h"
#include "util/xmalloc.h"

#define LOG_SOCKET_MIN	2	/* "/x" */

static int
metrics_address(struct cfgctx *c, const char *s, struct config *cfg)
{
	struct listener_config lc;

	memset(&lc, 0, sizeof(lc));
	if (lua_config_hostport(c, s, &lc) != 0)
		return -1;
	snprintf(lc.name, sizeof(lc.name), "%s", s);
	if (lua_config_bindable(c, &lc) != 0)
		return -1;
	memcpy(cfg->metrics.address, lc.address, sizeof(cfg->metrics.address));
	cfg->metrics.port = lc.port;
	cfg->metrics.enabled = true;
	return 0;
}

int
lua_config_metrics(struct cfgctx *c, struct config *cfg)
{
	static const char *const known[] = { "address", NULL };
	int idx = lua_gettop(c->L);
	char *addr = NULL;
	int r;

	if (lua_type(c->L, idx) == LUA_TSTRING)
		return metrics_address(c, lua_tostring(c->L, idx), cfg);
	if (!lua_istable(c->L, idx))
		return lua_config_error(c, "metrics must be \"ip:port\" or "
		    "{ address = \"ip:port\" }");
	if (lua_config_field_keys(c, idx, "metrics", known) != 0 ||
	    lua_config_field_string(c, idx, "metrics", "address", 80, false,
	    &addr) != 0)
		return -1;
	if (addr == NULL)
		return lua_config_error(c, "metrics needs address = \"ip:port\"");
	r = metrics_address(c, addr, cfg);
	free(addr);
	return r;
}

static bool
ident_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		    *s == '.'))
			return false;
	return true;
}

static int
set_sink(struct cfgctx *c, const char *name, struct log_sink_config *l)
{
	if (log_sink_from_name(name, &l->sink) != 0)
		return lua_config_error(c, "log.sink must be \"stderr\", "
		    "\"syslog\" or \"journal\"");
	return 0;
}

int
lua_config_log(struct cfgctx *c, struct config *cfg)
{
	static const char *const known[] = { "sink", "facility", "ident",
	    "socket", NULL };
	struct log_sink_config l;
	int idx = lua_gettop(c->L), r = -1;
	char *sink = NULL, *facility = NULL, *ident = NULL, *sock = NULL;

	log_sink_defaults(&l);
	if (lua_type(c->L, idx) == LUA_TSTRING) {
		if (set_sink(c, lua_tostring(c->L, idx), &l) != 0)
			return -1;
		cfg->log = l;
		return 0;
	}
	if (!lua_istable(c->L, idx))
		return lua_config_error(c, "log must be a sink name or { sink = "
		    "..., facility = ..., ident = ... }");
	if (lua_config_field_keys(c, idx, "log", known) != 0 ||
	    lua_config_field_string(c, idx, "log", "sink", 16, false,
	    &sink) != 0 ||
	    lua_config_field_string(c, idx, "log", "facility", 16, false,
	    &facility) != 0 ||
	    lua_config_field_string(c, idx, "log", "ident", LOG_IDENT_MAX,
	    false, &ident) != 0 ||
	    lua_config_field_string(c, idx, "log", "socket",
	    LOG_SOCKET_PATH_MAX, false, &sock) != 0)
		goto out;
	if (sink != NULL && set_sink(c, sink, &l) != 0)
		goto out;
	if (facility != NULL &&
	    (l.facility = log_facility_from_name(facility)) < 0) {
		lua_config_error(c, "log.facility must be kern, user, mail, "
		    "daemon, auth, syslog or local0 to local7");
		goto out;
	}
	if (ident != NULL) {
		if (!ident_ok(ident)) {
			lua_config_error(c, "log.ident may hold letters, digits, "
			    "'-', '_' and '.' only");
			goto out;
		}
		snprintf(l.ident, sizeof(l.ident), "%s", ident);
	}
	if (sock != NULL) {
		if (sock[0] != '/' || strlen(sock) < LOG_SOCKET_MIN) {
			lua_config_error(c, "log.socket must be an absolute path");
			goto out;
		}
		snprintf(l.socket, sizeof(l.socket), "%s", sock);
	}
	cfg->log = l;
	r = 0;
out:
	free(sink);
	free(facility);
	free(ident);
	free(sock);
	return r;
}
