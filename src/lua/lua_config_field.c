/*
 * lua_config_field.c — typed fields of a settings table (kv = {...},
 * http = {...}): strings, numbers in a range, booleans, and the check that
 * every key is known.  Errors read "path:line: kv.db must be ...".
 *
 * Fields are read with lua_rawget: a config's table cannot run code of its
 * own (an __index) while the settings are read.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/lua_config_int.h"
#include "util/xmalloc.h"

static void
rawfield(struct cfgctx *c, int idx, const char *name)
{
	lua_pushstring(c->L, name);
	lua_rawget(c->L, idx);
}

int
lua_config_field_keys(struct cfgctx *c, int idx, const char *table,
    const char *const *known)
{
	lua_State *L = c->L;

	if (!lua_istable(L, idx))
		return lua_config_error(c, "%s must be a table", table);
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		const char *k;
		size_t i;

		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pop(L, 2);
			return lua_config_error(c, "%s: keys must be names", table);
		}
		k = lua_tostring(L, -2);
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (known[i] == NULL) {
			int r = lua_config_error(c, "unknown setting %s.%s", table,
			    k);

			lua_pop(L, 2);
			return r;
		}
		lua_pop(L, 1);
	}
	return 0;
}

bool
lua_config_field_present(struct cfgctx *c, int idx, const char *name)
{
	bool present;

	rawfield(c, idx, name);
	present = !lua_isnil(c->L, -1);
	lua_pop(c->L, 1);
	return present;
}

int
lua_config_field_string(struct cfgctx *c, int idx, const char *table,
    const char *name, size_t max, bool allow_empty, char **out)
{
	const char *s;
	size_t len;
	int r = 0;

	rawfield(c, idx, name);
	if (lua_isnil(c->L, -1))
		goto done;
	if (lua_type(c->L, -1) != LUA_TSTRING) {
		r = lua_config_error(c, "%s.%s must be a string", table, name);
		goto done;
	}
	s = lua_tolstring(c->L, -1, &len);
	if ((len == 0 && !allow_empty) || len > max || strlen(s) != len) {
		r = lua_config_error(c, "%s.%s must be %d to %zu bytes without "
		    "NUL", table, name, allow_empty ? 0 : 1, max);
		goto done;
	}
	free(*out);
	*out = xstrdup(s);
done:
	lua_pop(c->L, 1);
	return r;
}

int
lua_config_field_number(struct cfgctx *c, int idx, const char *table,
    const char *name, double lo, double hi, bool whole, double *out)
{
	double v;
	int r = 0;

	rawfield(c, idx, name);
	if (lua_isnil(c->L, -1))
		goto done;
	if (lua_type(c->L, -1) != LUA_TNUMBER) {
		r = lua_config_error(c, "%s.%s must be a number", table, name);
		goto done;
	}
	v = lua_tonumber(c->L, -1);
	if (whole && (v != floor(v) || !(v >= lo && v <= hi))) {
		r = lua_config_error(c, "%s.%s must be a whole number from %.0f "
		    "to %.0f", table, name, lo, hi);
		goto done;
	}
	if (!(v >= lo && v <= hi)) {
		r = lua_config_error(c, "%s.%s must be from %g to %g", table,
		    name, lo, hi);
		goto done;
	}
	*out = v;
done:
	lua_pop(c->L, 1);
	return r;
}
