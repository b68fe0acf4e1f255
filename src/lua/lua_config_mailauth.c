/*
 * lua_config_mailauth.c — the `mailauth` setting (src/mailauth: DKIM,
 * DMARC, Authentication-Results; luasmtpd.mailauth).
 *
 *   mailauth = { authserv_id = "mx.example.org", dkim_verify = true,
 *                strip_results = true,
 *                psl = "/usr/share/publicsuffix/public_suffix_list.dat" }
 *
 * authserv_id (RFC 8601 §2.5) names us in Authentication-Results: the
 * hostname by default.  dkim_verify: every message's DKIM signatures are
 * checked while it arrives (its hashes on the CPU pool); msg:dkim() waits
 * for the result.  strip_results (default true): incoming
 * Authentication-Results fields that claim our authserv-id are removed
 * as the message is received (RFC 8601 §5).  psl: Debian's public suffix
 * list for DMARC's organizational domain (RFC 7489 §3.2), read at start.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/lua_config_int.h"

#define MAILAUTH_PSL_DEFAULT	"/usr/share/publicsuffix/public_suffix_list.dat"
#define MAILAUTH_ID_MAX		255
#define MAILAUTH_PATH_MAX	4096

static const char *const known[] = {
	"authserv_id", "dkim_verify", "strip_results", "psl", NULL,
};

static int
field_bool(struct cfgctx *c, int idx, const char *name, bool *out)
{
	int r = 0;

	lua_pushstring(c->L, name);
	lua_rawget(c->L, idx);
	if (lua_type(c->L, -1) == LUA_TBOOLEAN)
		*out = lua_toboolean(c->L, -1);
	else if (!lua_isnil(c->L, -1))
		r = lua_config_error(c, "mailauth.%s must be true or false", name);
	lua_pop(c->L, 1);
	return r;
}

int
lua_config_mailauth(struct cfgctx *c, struct config *cfg)
{
	int idx = lua_gettop(c->L);
	char *id = NULL, *psl = NULL;
	struct stat st;

	if (!lua_istable(c->L, idx))
		return lua_config_error(c, "mailauth must be a table");
	if (lua_config_field_keys(c, idx, "mailauth", known) != 0 ||
	    lua_config_field_string(c, idx, "mailauth", "authserv_id",
	    MAILAUTH_ID_MAX, false, &id) != 0 ||
	    lua_config_field_string(c, idx, "mailauth", "psl",
	    MAILAUTH_PATH_MAX, false, &psl) != 0 ||
	    field_bool(c, idx, "dkim_verify", &cfg->mailauth.dkim_verify) != 0 ||
	    field_bool(c, idx, "strip_results", &cfg->mailauth.strip_results)
	    != 0)
		return -1;
	if (id != NULL) {
		for (const char *p = id; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
			    strchr("()<>@,;:\\\"/[]?=", *p) != NULL)
				return lua_config_error(c, "mailauth.authserv_id "
				    "must be a domain name (RFC 8601 §2.5)");
		cfg->mailauth.authserv_id = id;
	}
	if (psl == NULL)
		psl = strdup(MAILAUTH_PSL_DEFAULT);
	errno = 0;
	if (stat(psl, &st) != 0 || !S_ISREG(st.st_mode) || access(psl, R_OK))
		return lua_config_error(c, "mailauth.psl '%s': %s", psl,
		    errno ? strerror(errno) : "not a file");
	cfg->mailauth.psl = psl;
	cfg->mailauth.wanted = true;
	return 0;
}
