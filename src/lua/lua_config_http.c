/*
 * lua_config_http.c — the `http` setting: the client behind luasmtpd.http.
 *
 *   http = { max_connections = 64, max_host_connections = 8,
 *            max_requests = 1024, timeout = 10, connect_timeout = 5,
 *            ca_file = "/etc/luasmtpd/ca.pem", ca_path = "/etc/ssl/certs",
 *            user_agent = "luasmtpd/0.1.0" }
 *
 * Every field is optional; the defaults and limits are http.h's.  timeout
 * and connect_timeout are the defaults of requests that give none.
 * ca_file must be a readable file and ca_path a directory (checked here,
 * so `luasmtpd -t` fails on a typo); their content is read by OpenSSL
 * when a request verifies a peer.  Nothing is opened here (http_new, at
 * start, see main.c).
 *
 * SECURITY: user_agent goes into every request's header block: control
 * characters are refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/lua_config_int.h"

/* http.c's HTTP_CA_PATH_MAX. */
#define HTTP_CONFIG_PATH_MAX	4096

static const char *const known[] = {
	"max_connections", "max_host_connections", "max_requests", "timeout",
	"connect_timeout", "ca_file", "ca_path", "user_agent", NULL,
};

static int
check_path(struct cfgctx *c, const char *name, const char *path, bool dir)
{
	struct stat st;

	if (path == NULL)
		return 0;
	if (stat(path, &st) != 0 || access(path, R_OK) != 0)
		return lua_config_error(c, "http.%s '%s': %s", name, path,
		    strerror(errno));
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		return lua_config_error(c, "http.%s '%s': not a %s", name, path,
		    dir ? "directory" : "file");
	return 0;
}

int
lua_config_http(struct cfgctx *c, struct config *cfg)
{
	struct http_config *h = &cfg->http;
	int idx = lua_gettop(c->L);
	double total = 0, host = 0, reqs = 0, t = 0, ct = 0;
	char *ca_file = NULL, *ca_path = NULL, *ua = NULL;

	if (lua_config_field_keys(c, idx, "http", known) != 0)
		return -1;
	if (lua_config_field_number(c, idx, "http", "max_connections", 1,
	    HTTP_MAX_CONNECTIONS_LIMIT, true, &total) != 0 ||
	    lua_config_field_number(c, idx, "http", "max_host_connections", 1,
	    HTTP_MAX_CONNECTIONS_LIMIT, true, &host) != 0 ||
	    lua_config_field_number(c, idx, "http", "max_requests", 1,
	    HTTP_MAX_REQUESTS_LIMIT, true, &reqs) != 0 ||
	    lua_config_field_number(c, idx, "http", "timeout", HTTP_TIMEOUT_MIN,
	    HTTP_TIMEOUT_LIMIT, false, &t) != 0 ||
	    lua_config_field_number(c, idx, "http", "connect_timeout",
	    HTTP_TIMEOUT_MIN, HTTP_TIMEOUT_LIMIT, false, &ct) != 0 ||
	    lua_config_field_string(c, idx, "http", "ca_file",
	    HTTP_CONFIG_PATH_MAX, false, &ca_file) != 0 ||
	    lua_config_field_string(c, idx, "http", "ca_path",
	    HTTP_CONFIG_PATH_MAX, false, &ca_path) != 0 ||
	    lua_config_field_string(c, idx, "http", "user_agent",
	    HTTP_USER_AGENT_MAX, false, &ua) != 0)
		goto fail;
	if (host > (total != 0 ? total : HTTP_MAX_CONNECTIONS_DEFAULT)) {
		lua_config_error(c, "http.max_host_connections must not exceed "
		    "max_connections (%.0f)", total != 0 ? total :
		    (double)HTTP_MAX_CONNECTIONS_DEFAULT);
		goto fail;
	}
	if (check_path(c, "ca_file", ca_file, false) != 0 ||
	    check_path(c, "ca_path", ca_path, true) != 0)
		goto fail;
	for (const char *p = ua; p != NULL && *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			lua_config_error(c, "http.user_agent must not contain "
			    "control characters");
			goto fail;
		}
	h->max_connections = (unsigned)total;
	h->max_host_connections = (unsigned)host;
	h->max_requests = (unsigned)reqs;
	h->timeout = t;
	h->connect_timeout = ct;
	h->ca_file = ca_file;
	h->ca_path = ca_path;
	h->user_agent = ua;
	cfg->http_wanted = true;
	return 0;
fail:
	free(ca_file);
	free(ca_path);
	free(ua);
	return -1;
}
