/*
 * lua_config.h — turn the config file's globals into struct config.
 */
#ifndef LUASMTPD_LUA_CONFIG_H
#define LUASMTPD_LUA_CONFIG_H

#include <lua.h>
#include <stddef.h>

#include "config.h"

/*
 * Read settings from the config environment at env_idx (prelude.lua: the
 * values sit in the table that is its metatable's __index; lines_idx maps
 * each name to the line of its last assignment) and hook functions from
 * the table at hooks_idx.  Checks every listen address by binding it with
 * port 0.  Returns 0, or -1 with "path:line: message" in err.
 */
int	lua_config_read(lua_State *L, int env_idx, int lines_idx, int hooks_idx,
	    const char *path, struct config *, char *err, size_t errlen);

/*
 * lua_config_dns.c: the `dns` table at the top of L's stack into cfg->dns,
 * tried on a throw-away resolver.  Returns 0, or -1 with "path:line:
 * message" in err (the line of `dns` in the table at lines_idx).
 */
int	lua_config_dns(lua_State *L, int lines_idx, const char *path,
	    struct config *, char *err, size_t errlen);

#endif
