/*
 * lua_vm.c — the process's LuaJIT state and the config file.
 *
 * The config file is a Lua chunk run once at start-up in its own
 * environment (lua/luasmtpd/prelude.lua): settings are globals it assigns,
 * hooks are functions in `hooks`, -D settings are read with
 * luasmtpd.var().  Its functions, and everything it loads from outside
 * lua/, run with the JIT off so the watchdog can stop them.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <luajit.h>
#include <lualib.h>

#include "lua/lua_config.h"
#include "lua/lua_vm.h"
#include "util/fsutil.h"
#include "util/log.h"

#ifndef LUASMTPD_LUA_DIR
#define LUASMTPD_LUA_DIR "/usr/share/luasmtpd/lua"
#endif

/* A config that loops at load time is stopped after this long. */
#define CONFIG_CPU_LIMIT	10.0

struct lua_vm vm;

static void
set_package_path(lua_State *L, const char *lua_dir, const char *config_path)
{
	char cdir[PATH_MAX];

	path_dir(config_path, cdir, sizeof(cdir));
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s/?.lua;", lua_dir, lua_dir,
	    cdir);
	lua_getfield(L, -2, "path");
	lua_concat(L, 2);
	lua_setfield(L, -2, "path");
	lua_pop(L, 1);
}

static void
preload(lua_State *L, const char *name, lua_CFunction f)
{
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "preload");
	lua_pushcfunction(L, f);
	lua_setfield(L, -2, name);
	lua_pop(L, 2);
}

/* Run the function on top with nargs under the watchdog; 0 or -1 + err. */
static int
protected_call(lua_State *L, int nargs, int nres, char *err, size_t errlen)
{
	int r;

	lua_watchdog_enter(CONFIG_CPU_LIMIT);
	r = lua_pcall(L, nargs, nres, 0);
	lua_watchdog_leave();
	if (r != 0) {
		snprintf(err, errlen, "%s", lua_isstring(L, -1) ?
		    lua_tostring(L, -1) : "(error object is not a string)");
		lua_pop(L, 1);
		return -1;
	}
	return 0;
}

int
lua_vm_load(const char *path, struct define *defines, size_t ndefines,
    struct config *cfg, char *err, size_t errlen)
{
	const char *lua_dir = getenv("LUASMTPD_LUA_DIR");
	char prelude[PATH_MAX];
	lua_State *L;
	int env_idx, lines_idx, hooks_idx;

	if (lua_dir == NULL || lua_dir[0] == '\0')
		lua_dir = LUASMTPD_LUA_DIR;
	memset(&vm, 0, sizeof(vm));
	vm.cfg = cfg;
	vm.config_path = path;
	vm.defines = defines;
	vm.ndefines = ndefines;
	for (int i = 0; i < HOOK_COUNT; i++)
		vm.hook_refs[i] = LUA_NOREF;

	if ((L = luaL_newstate()) == NULL)
		fatalx("cannot create the Lua state");
	vm.L = L;
	luaL_openlibs(L);
	set_package_path(L, lua_dir, path);
	preload(L, "luasmtpd", luaopen_luasmtpd);
	preload(L, "luasmtpd.deliver", luaopen_luasmtpd_deliver);
	preload(L, "luasmtpd.kv", luaopen_luasmtpd_kv);
	preload(L, "luasmtpd.http", luaopen_luasmtpd_http);
	preload(L, "luasmtpd.dns", luaopen_luasmtpd_dns);
	preload(L, "luasmtpd.spf", luaopen_luasmtpd_spf);
	preload(L, "luasmtpd.mailauth", luaopen_luasmtpd_mailauth);
	lb_session_open(L);
	lb_message_open(L);
	lua_watchdog_start(L);

	snprintf(prelude, sizeof(prelude), "%s/luasmtpd/prelude.lua", lua_dir);
	if (luaL_loadfile(L, prelude) != 0) {
		snprintf(err, errlen, "%s (is LUASMTPD_LUA_DIR right?)",
		    lua_tostring(L, -1));
		return -1;
	}
	lua_pushstring(L, lua_dir);
	if (protected_call(L, 1, 1, err, errlen) != 0)
		return -1;
	/* make_env(_G) -> env, lines, get_hooks */
	lua_pushvalue(L, LUA_GLOBALSINDEX);
	if (protected_call(L, 1, 3, err, errlen) != 0)
		return -1;
	hooks_idx = lua_gettop(L);
	lines_idx = hooks_idx - 1;
	env_idx = hooks_idx - 2;

	if (luaL_loadfile(L, path) != 0) {
		snprintf(err, errlen, "%s", lua_tostring(L, -1));
		return -1;
	}
	/* The config's functions (hooks!) must stay interpretable. */
	luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF);
	lua_pushvalue(L, env_idx);
	lua_setfenv(L, -2);
	if (protected_call(L, 0, 0, err, errlen) != 0)
		return -1;

	lua_pushvalue(L, hooks_idx);
	if (protected_call(L, 0, 1, err, errlen) != 0)
		return -1;
	hooks_idx = lua_gettop(L);
	if (lua_config_read(L, env_idx, lines_idx, hooks_idx, path, cfg, err,
	    errlen) != 0)
		return -1;
	lua_settop(L, 0);

	for (size_t i = 0; i < ndefines; i++)
		if (!defines[i].used)
			log_warn(0, "config unused-define name=%s (the config "
			    "never read it with luasmtpd.var)", defines[i].name);
	return 0;
}

void
lua_vm_close(void)
{
	if (vm.L != NULL)
		lua_close(vm.L);
	vm.L = NULL;
}
