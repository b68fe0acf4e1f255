/*
 * lua_config_int.h — what the config reader (lua_config.c) shares with
 * the files that read one settings table each (lua_config_kv.c,
 * lua_config_http.c) and their typed field readers (lua_config_field.c).
 *
 * Every reader fails through lua_config_error(), so every message names
 * the config file and the line of the setting's last assignment.
 */
#ifndef LUASMTPD_LUA_CONFIG_INT_H
#define LUASMTPD_LUA_CONFIG_INT_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct cfgctx {
	lua_State	*L;
	int		 lines;
	const char	*path;
	const char	*key;		/* top-level setting being read */
	char		*err;
	size_t		 errlen;
};

/* "path:line: <message>" into c->err; returns -1. */
int	lua_config_error(struct cfgctx *c, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* One call each from read_setting(); the table is at the top of the stack. */
int	lua_config_kv(struct cfgctx *c, struct config *cfg);	/* kv = {...} */
int	lua_config_http(struct cfgctx *c, struct config *cfg);	/* http = {...} */
int	lua_config_mailauth(struct cfgctx *c, struct config *cfg); /* mailauth */
/* listen = "ip:port" | "unix:path" | { ... } (lua_config_listen.c) */
int	lua_config_listen(struct cfgctx *c, struct config *cfg);
/*
 * After every setting was read: a listener exists (unless cfg->stdio),
 * TLS listeners have certificates, addresses bind, unix paths are usable.
 */
int	lua_config_listen_check(struct cfgctx *c, const struct config *cfg);
/* lua_config_obs.c: metrics = "ip:port" | {...}, log = {...} */
int	lua_config_metrics(struct cfgctx *c, struct config *cfg);
int	lua_config_log(struct cfgctx *c, struct config *cfg);

/*
 * lua_config_listen.c: "ip:port" or "[ipv6]:port" (numeric only) into lc's
 * address and port; and whether that address can be bound on this host
 * (bound with port 0 and closed).  Each returns 0 or -1 with the error.
 */
struct listener_config;
int	lua_config_hostport(struct cfgctx *c, const char *s,
	    struct listener_config *lc);
int	lua_config_bindable(struct cfgctx *c, const struct listener_config *lc);

/*
 * Fields of the settings table `table` (its name, for messages) at stack
 * index idx, read raw (no metamethods).  Each returns 0 when the field is
 * absent (out untouched) or valid (out set), -1 with the error set.
 */
/* Every key is a string listed in known (NULL-terminated). */
int	lua_config_field_keys(struct cfgctx *c, int idx, const char *table,
	    const char *const *known);
/* A string of 1..max bytes without NUL (allow_empty: 0..max); a copy. */
int	lua_config_field_string(struct cfgctx *c, int idx, const char *table,
	    const char *name, size_t max, bool allow_empty, char **out);
/* A number in [lo, hi]; whole: an integer. */
int	lua_config_field_number(struct cfgctx *c, int idx, const char *table,
	    const char *name, double lo, double hi, bool whole, double *out);
/* Whether the field is present (not nil). */
bool	lua_config_field_present(struct cfgctx *c, int idx, const char *name);

#endif
