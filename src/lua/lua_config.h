/*
 * lua_config.h — turn the config file's globals into struct config.
 */
#ifndef LUASMTPD_LUA_CONFIG_H
#define LUASMTPD_LUA_CONFIG_H

#include <lua.h>
#include <stddef.h>

#include "config.h"

/*
 * Read settings from the table at env_idx (lines of each assignment at
 * lines_idx) and hook functions from the table at hooks_idx.  Returns 0,
 * or -1 with "path:line: message" in err.
 */
int	lua_config_read(lua_State *L, int env_idx, int lines_idx, int hooks_idx,
	    const char *path, struct config *, char *err, size_t errlen);

#endif
