/*
 * lua_config_kv.c — the `kv` setting: where luasmtpd.kv keeps its state.
 *
 *   kv = { backend = "lmdb", path = "/var/lib/luasmtpd/kv",
 *          map_size = 256 * 1024 * 1024 }
 *   kv = { backend = "redis", redis = "127.0.0.1:6379" | "[::1]:6379" |
 *          "unix:/run/redis/redis.sock", password = "...", db = 0,
 *          prefix = "luasmtpd:", connect_timeout = 2, command_timeout = 1 }
 *   both: max_inflight = 1024
 *
 * backend defaults to "redis" when `redis` is given, else "lmdb"; LMDB's
 * path defaults to <spool>/kv (filled in by main.c, which knows the final
 * spool), Redis's address to 127.0.0.1:6379 and its prefix to
 * "luasmtpd:" ("" for none).  A key of the other backend is an error, not
 * silently ignored.  Everything is checked here so that `luasmtpd -t`
 * fails on a bad value; nothing is opened or connected (that is kv_open's,
 * at start, see main.c).
 *
 * SECURITY: the Redis host must be an IP address (kv_redis.c refuses
 * names: hiredis would resolve them blocking the loop); the password is
 * never put into an error message.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "lua/lua_config_int.h"
#include "util/xmalloc.h"

/* Bounds of the settings (the store checks them again at kv_open). */
#define KV_CONFIG_MAP_MIN	(1024.0 * 1024)			/* 1 MiB */
#define KV_CONFIG_MAP_MAX	(1024.0 * 1024 * 1024 * 1024)	/* 1 TiB */
#define KV_CONFIG_PASSWORD_MAX	512
/* kv_redis.c's REDIS_TIMEOUT_MAX, seconds. */
#define KV_CONFIG_TIMEOUT_MIN	0.001
#define KV_CONFIG_TIMEOUT_MAX	3600.0
/* kv.c's KV_INFLIGHT_LIMIT. */
#define KV_CONFIG_INFLIGHT_MAX	1000000.0
#define KV_CONFIG_ADDR_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path) + 4)
#define KV_REDIS_ADDR_DEFAULT	"127.0.0.1:6379"
#define KV_REDIS_PREFIX_DEFAULT	"luasmtpd:"

static const char *const known[] = {
	"backend", "path", "map_size", "redis", "password", "db", "prefix",
	"connect_timeout", "command_timeout", "max_inflight", NULL,
};
static const char *const lmdb_only[] = { "path", "map_size", NULL };
static const char *const redis_only[] = {
	"redis", "password", "db", "prefix", "connect_timeout",
	"command_timeout", NULL,
};

/* What kv_redis.c accepts: "ip:port", "[v6]:port", an address, unix:/path. */
static const char *
redis_addr_error(const char *s)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char buf[sizeof(struct in6_addr)];
	const char *colon, *h = s, *port = NULL;
	size_t hlen;
	char *end;
	long p;

	if (strncmp(s, "unix:", 5) == 0)
		return s[5] == '/' && strlen(s) < KV_CONFIG_ADDR_MAX ? NULL :
		    "unix: needs an absolute path (at most 107 bytes)";
	if (s[0] == '[') {
		if ((colon = strchr(s, ']')) == NULL)
			return "missing ]";
		h = s + 1;
		hlen = (size_t)(colon - h);
		if (colon[1] == ':')
			port = colon + 2;
		else if (colon[1] != '\0')
			return "expected [address]:port";
	} else if ((colon = strrchr(s, ':')) != NULL && strchr(s, ':') == colon) {
		hlen = (size_t)(colon - s);
		port = colon + 1;
	} else {
		hlen = strlen(s);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return "bad host";
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (strcmp(host, "localhost") != 0 &&
	    inet_pton(AF_INET, host, buf) != 1 &&
	    inet_pton(AF_INET6, host, buf) != 1)
		return "the host must be an IP address (a name would be "
		    "resolved blocking the server)";
	if (port != NULL) {
		p = strtol(port, &end, 10);
		if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
			return "bad port";
	}
	return NULL;
}

/* Refuse the keys of list in the table at idx: they belong elsewhere. */
static int
refuse_keys(struct cfgctx *c, int idx, const char *const *list,
    const char *backend)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (lua_config_field_present(c, idx, list[i]))
			return lua_config_error(c, "kv.%s does not apply to "
			    "backend = \"%s\"", list[i], backend);
	return 0;
}

static int
read_strings(struct cfgctx *c, int idx, struct kv_config *k, char **backend)
{
	char *path = NULL, *redis = NULL, *password = NULL, *prefix = NULL;
	int r = -1;

	if (lua_config_field_string(c, idx, "kv", "backend", 16, false,
	    backend) != 0 ||
	    lua_config_field_string(c, idx, "kv", "path", PATH_MAX - 1, false,
	    &path) != 0 ||
	    lua_config_field_string(c, idx, "kv", "redis",
	    KV_CONFIG_ADDR_MAX - 1, false, &redis) != 0 ||
	    lua_config_field_string(c, idx, "kv", "password",
	    KV_CONFIG_PASSWORD_MAX, false, &password) != 0 ||
	    lua_config_field_string(c, idx, "kv", "prefix", KV_PREFIX_MAX, true,
	    &prefix) != 0)
		goto out;
	if (redis != NULL) {
		const char *why = redis_addr_error(redis);

		if (why != NULL) {
			lua_config_error(c, "kv.redis '%s': %s (host:port, "
			    "[ipv6]:port or unix:/path)", redis, why);
			goto out;
		}
	}
	k->path = path;
	k->redis = redis;
	k->password = password;
	k->prefix = prefix;
	path = redis = password = prefix = NULL;
	r = 0;
out:
	free(path);
	free(redis);
	free(password);
	free(prefix);
	return r;
}

int
lua_config_kv(struct cfgctx *c, struct config *cfg)
{
	struct kv_config *k = &cfg->kv;
	int idx = lua_gettop(c->L);
	char *backend = NULL;
	double map = 0, db = 0, ct = 0, mt = 0, inflight = 0;

	if (lua_config_field_keys(c, idx, "kv", known) != 0)
		return -1;
	if (read_strings(c, idx, k, &backend) != 0 ||
	    lua_config_field_number(c, idx, "kv", "map_size", KV_CONFIG_MAP_MIN,
	    KV_CONFIG_MAP_MAX, true, &map) != 0 ||
	    lua_config_field_number(c, idx, "kv", "db", 0, KV_REDIS_DB_MAX,
	    true, &db) != 0 ||
	    lua_config_field_number(c, idx, "kv", "connect_timeout",
	    KV_CONFIG_TIMEOUT_MIN, KV_CONFIG_TIMEOUT_MAX, false, &ct) != 0 ||
	    lua_config_field_number(c, idx, "kv", "command_timeout",
	    KV_CONFIG_TIMEOUT_MIN, KV_CONFIG_TIMEOUT_MAX, false, &mt) != 0 ||
	    lua_config_field_number(c, idx, "kv", "max_inflight", 1,
	    KV_CONFIG_INFLIGHT_MAX, true, &inflight) != 0)
		goto fail;
	if (backend == NULL)
		backend = xstrdup(k->redis != NULL ? "redis" : "lmdb");
	if (strcmp(backend, "lmdb") == 0) {
		if (refuse_keys(c, idx, redis_only, backend) != 0)
			goto fail;
		k->backend = "lmdb";
	} else if (strcmp(backend, "redis") == 0) {
		if (refuse_keys(c, idx, lmdb_only, backend) != 0)
			goto fail;
		k->backend = "redis";
		if (k->redis == NULL)
			k->redis = xstrdup(KV_REDIS_ADDR_DEFAULT);
		if (k->prefix == NULL)
			k->prefix = xstrdup(KV_REDIS_PREFIX_DEFAULT);
	} else {
		lua_config_error(c, "kv.backend must be \"lmdb\" or \"redis\"");
		goto fail;
	}
	free(backend);
	k->map_size = (size_t)map;
	k->db = (int)db;
	k->connect_timeout = ct;
	k->command_timeout = mt;
	k->max_inflight = (unsigned)inflight;
	cfg->kv_wanted = true;
	return 0;
fail:
	free(backend);
	return -1;
}
