/*
 * lua_deliver_pipe.c — deliver.pipe: deliver by running a command.
 *
 *   deliver.pipe{ argv = { "/usr/bin/prog", "arg", ... },
 *                 env = { NAME = "value", ... },      -- optional
 *                 rcpts = <nil | recipient | list>,    -- default: all
 *                 timeout = 30, output_max = 4096, crlf = false }
 *     -> results table (lua_deliver.h), kind "pipe", target argv[1]
 *                                                          (yields)
 *
 * The command runs without a shell (deliver/pipe.h): argv[1] must be an
 * absolute path and every argument reaches it exactly as given.  Its
 * stdin is the message (CRLF -> LF unless crlf = true), its stdout and
 * stderr are captured into one buffer of output_max bytes.  The child's
 * whole environment:
 *
 *   PATH=/usr/bin:/bin
 *   SENDER          the envelope sender ("" for <>)
 *   RECIPIENT       the recipient, only when the call is for exactly one
 *   RECIPIENTS      the recipients of this call, one per line
 *   SIZE            the message size (msg.size)
 *   QUEUE_ID        the transaction id (msg.id)
 *   CLIENT_ADDRESS  the client's IP address
 *   CLIENT_HELO     the EHLO/HELO name ("" if none)
 *   + env           the caller's entries; one named like a built-in
 *                   replaces it (e.g. PATH)
 *
 * Outcome for every recipient of the call (sysexits, as Postfix pipe(8),
 * whose enhanced codes these are):
 *
 *   exit 0                  250 2.0.0   delivered
 *   exit 64 EX_USAGE        554 5.3.0   exit 65 EX_DATAERR     554 5.6.0
 *   exit 66 EX_NOINPUT      554 5.3.0   exit 67 EX_NOUSER      550 5.1.1
 *   exit 68 EX_NOHOST       550 5.1.2   exit 69 EX_UNAVAILABLE 554 5.3.0
 *   exit 70 EX_SOFTWARE     554 5.3.0   exit 71 EX_OSERR       451 4.3.0
 *   exit 72 EX_OSFILE       554 5.3.0   exit 73 EX_CANTCREAT   550 5.2.0
 *   exit 74 EX_IOERR        554 5.3.0   exit 75 EX_TEMPFAIL    451 4.3.0
 *   exit 76 EX_PROTOCOL     554 5.5.0   exit 77 EX_NOPERM      554 5.7.1
 *   exit 78 EX_CONFIG       554 5.3.5   any other exit         554 5.3.0
 *   killed by a signal      451 4.3.0   timed out              451 4.4.2
 *   cannot start (fork, pipe, execve, the spool file)          451 4.3.0
 *
 * A failure's text is "<what happened>: <captured output>", the output
 * with control characters as spaces and 8-bit bytes as '?', cut to
 * SMTP_REPLY_TEXT_MAX.  The results table also carries exit (the exit
 * code) or signal (the signal number), output (the captured bytes as
 * they are) and output_dropped (bytes past output_max).
 *
 * Misuse raises (not in the message hook, unknown option, argv not a
 * list of strings or argv[1] relative, a bad env name or value, bounds
 * of deliver/pipe.h exceeded).  Everything is checked before any C
 * resource is taken.  If the hook is abandoned meanwhile (session
 * closed, hook timeout), the child's process group gets SIGKILL and is
 * reaped in the background.  timeouts.hook still bounds the whole hook:
 * a `timeout` longer than what is left of it ends as a hook error
 * (451 4.3.0) with the command killed.
 *
 * SECURITY: the command runs as the server's user, in "/", in a process
 * group of its own, with no descriptor but its stdin/stdout/stderr.
 * Client-chosen strings (SENDER, RECIPIENT(S), CLIENT_HELO) reach it
 * only through the environment, never through argv unless the config
 * puts them there, and never through a shell.  The sender and
 * recipients are syntax-checked addresses (RFC 5321 §4.1.2) but may
 * hold quotes, spaces and, with SMTPUTF8, UTF-8: a command must treat
 * them as data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/pipe.h"
#include "deliver/smtp_client.h"
#include "lua/lua_deliver.h"
#include "lua/lua_vm.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* The built-in environment, in the order the child sees it. */
enum {
	ENV_PATH, ENV_SENDER, ENV_RECIPIENT, ENV_RECIPIENTS, ENV_SIZE,
	ENV_QUEUE_ID, ENV_CLIENT_ADDRESS, ENV_CLIENT_HELO, ENV_BUILTINS
};
static const char *const builtin_names[ENV_BUILTINS] = {
	"PATH", "SENDER", "RECIPIENT", "RECIPIENTS", "SIZE", "QUEUE_ID",
	"CLIENT_ADDRESS", "CLIENT_HELO",
};
#define PIPE_PATH	"/usr/bin:/bin"

/* The sysexits table (see the header comment). */
static const struct {
	int		 exit;
	int		 code;
	const char	*ecode;
} exit_map[] = {
	{ 0, 250, "2.0.0" },
	{ 64, 554, "5.3.0" }, { 65, 554, "5.6.0" }, { 66, 554, "5.3.0" },
	{ 67, 550, "5.1.1" }, { 68, 550, "5.1.2" }, { 69, 554, "5.3.0" },
	{ 70, 554, "5.3.0" }, { 71, 451, "4.3.0" }, { 72, 554, "5.3.0" },
	{ 73, 550, "5.2.0" }, { 74, 554, "5.3.0" }, { 75, 451, "4.3.0" },
	{ 76, 554, "5.5.0" }, { 77, 554, "5.7.1" }, { 78, 554, "5.3.5" },
};

/*
 * One deliver.pipe call in flight.  Owned by the binding: freed by
 * pipe_done() after the coroutine was resumed, or by pipe_cancel().
 */
struct pipe_job {
	struct lua_sess		*ls;
	struct pipe_run		*run;		/* borrowed, see pipe.h */
	char			*target;	/* argv[1] */
	size_t			*rcpts;		/* 0-based indices */
	size_t			 nrcpts;
	double			 timeout;
	const struct pipe_result *res;		/* during pipe_done() only */
	/*
	 * lmtp = true: the child speaks LMTP on stdin/stdout (RFC 2033).
	 * The call ends when the LMTP exchange is over AND the child was
	 * reaped; the recipients' outcomes are the LMTP replies.
	 */
	bool			 lmtp;
	struct smtp_client	*client;	/* borrowed until lmtp_done() */
	struct dlv_outcome	*lmtp_out;	/* once the exchange is over */
	char			*lmtp_error;
	bool			 child_done;
	struct pipe_result	 child;		/* a copy; output in child_output */
	char			*child_output;
};

static void
job_free(struct pipe_job *j)
{
	free(j->target);
	free(j->rcpts);
	free(j->lmtp_out);
	free(j->lmtp_error);
	free(j->child_output);
	free(j);
}

/*
 * Text for an outcome: control characters become spaces (runs collapse),
 * 8-bit bytes '?', cut to dstsz - 1; leading and trailing blanks go.
 */
static void
clean_text(char *dst, size_t dstsz, const char *src, size_t len)
{
	size_t o = 0;
	bool space = true;	/* drops leading blanks */

	for (size_t i = 0; i < len && o + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c <= 0x20 || c == 0x7f) {
			if (!space)
				dst[o++] = ' ';
			space = true;
			continue;
		}
		dst[o++] = c >= 0x80 ? '?' : (char)c;
		space = false;
	}
	while (o > 0 && dst[o - 1] == ' ')
		o--;
	dst[o] = '\0';
}

/*
 * Code and enhanced code of a result; returns the whole-delivery error
 * written into what, or NULL when the command delivered.
 */
static const char *
map_result(const struct pipe_job *j, const struct pipe_result *res,
    int *code, const char **ecode, char *what, size_t whatlen)
{
	char desc[96];

	*code = 451;
	*ecode = "4.3.0";
	pipe_result_describe(res, desc, sizeof(desc));
	switch (res->how) {
	case PIPE_END_EXIT:
		*code = 554;
		*ecode = "5.3.0";
		for (size_t i = 0; i < sizeof(exit_map) / sizeof(exit_map[0]); i++)
			if (exit_map[i].exit == res->status) {
				*code = exit_map[i].code;
				*ecode = exit_map[i].ecode;
			}
		if (res->status == 0)
			return NULL;
		snprintf(what, whatlen, "command failed: %s", desc);
		break;
	case PIPE_END_SIGNAL:
		snprintf(what, whatlen, "command killed by %s", desc);
		break;
	case PIPE_END_TIMEOUT:
		*ecode = "4.4.2";
		snprintf(what, whatlen, "command timed out after %g s",
		    j->timeout);
		break;
	case PIPE_END_INPUT:
		snprintf(what, whatlen, "%s", desc);
		break;
	}
	return what;
}

static int
push_result(lua_State *co, void *arg)
{
	struct pipe_job *j = arg;
	const struct pipe_result *res = j->res;
	struct dlv_outcome *out = xcalloc(j->nrcpts, sizeof(*out));
	char what[128], text[SMTP_REPLY_TEXT_MAX + 1], clean[SMTP_REPLY_TEXT_MAX + 1];
	const char *error, *ecode;
	int code;

	error = map_result(j, res, &code, &ecode, what, sizeof(what));
	if (error == NULL) {
		snprintf(text, sizeof(text), "delivered to command %s", j->target);
	} else {
		clean_text(clean, sizeof(clean), res->output, res->output_len);
		snprintf(text, sizeof(text), "%s%s%s", what, clean[0] ? ": " : "",
		    clean);
	}
	for (size_t i = 0; i < j->nrcpts; i++) {
		out[i].rcpt = j->rcpts[i];
		out[i].code = code;
		snprintf(out[i].ecode, sizeof(out[i].ecode), "%s", ecode);
		snprintf(out[i].text, sizeof(out[i].text), "%s", text);
	}
	lb_deliver_report(co, j->ls->s, "pipe", j->target, out, j->nrcpts, error);
	free(out);
	if (res->how == PIPE_END_EXIT) {
		lua_pushinteger(co, res->status);
		lua_setfield(co, -2, "exit");
	} else if (res->how == PIPE_END_SIGNAL) {
		lua_pushinteger(co, res->status);
		lua_setfield(co, -2, "signal");
	}
	lua_pushlstring(co, res->output, res->output_len);
	lua_setfield(co, -2, "output");
	lua_pushnumber(co, (lua_Number)res->dropped);
	lua_setfield(co, -2, "output_dropped");
	return 1;
}

/* The runner reaped the child (libev callback). */
static void
pipe_done(const struct pipe_result *res, void *arg)
{
	struct pipe_job *j = arg;

	j->run = NULL;
	j->res = res;
	/* Resumes the hook; it may start another deliver.pipe meanwhile. */
	lua_co_wake(j->ls, push_result, j);
	job_free(j);
}

/* LMTP over stdio: the outcomes are the LMTP replies. */
static int
push_lmtp_result(lua_State *co, void *arg)
{
	struct pipe_job *j = arg;
	char what[128];

	lb_deliver_report(co, j->ls->s, "pipe-lmtp", j->target, j->lmtp_out,
	    j->nrcpts, j->lmtp_error);
	pipe_result_describe(&j->child, what, sizeof(what));
	if (j->child.how == PIPE_END_EXIT) {
		lua_pushinteger(co, j->child.status);
		lua_setfield(co, -2, "exit");
	} else if (j->child.how == PIPE_END_SIGNAL) {
		lua_pushinteger(co, j->child.status);
		lua_setfield(co, -2, "signal");
	}
	lua_pushstring(co, j->child_output ? j->child_output : "");
	lua_setfield(co, -2, "output");
	lua_pushnumber(co, (lua_Number)j->child.dropped);
	lua_setfield(co, -2, "output_dropped");
	return 1;
}

/* Both halves are over: resume the hook. */
static void
lmtp_maybe_finish(struct pipe_job *j)
{
	if (j->lmtp_out == NULL || !j->child_done)
		return;
	lua_co_wake(j->ls, push_lmtp_result, j);
	job_free(j);
}

static void
lmtp_done(void *arg, const struct smtpc_result *res, size_t n,
    const char *error)
{
	struct pipe_job *j = arg;

	j->client = NULL;
	j->lmtp_out = xcalloc(j->nrcpts, sizeof(*j->lmtp_out));
	for (size_t i = 0; i < j->nrcpts && i < n; i++) {
		j->lmtp_out[i].rcpt = j->rcpts[i];
		j->lmtp_out[i].code = res[i].code;
		snprintf(j->lmtp_out[i].ecode, sizeof(j->lmtp_out[i].ecode), "%s",
		    res[i].ecode);
		snprintf(j->lmtp_out[i].text, sizeof(j->lmtp_out[i].text), "%s",
		    res[i].text);
	}
	j->lmtp_error = error != NULL ? xstrdup(error) : NULL;
	/* The child ends after QUIT; its timeout bounds the wait. */
	lmtp_maybe_finish(j);
}

static void
lmtp_child_done(const struct pipe_result *res, void *arg)
{
	struct pipe_job *j = arg;

	j->run = NULL;
	j->child = *res;
	j->child.output = NULL;
	j->child_output = xstrndup(res->output, res->output_len);
	j->child_done = true;
	lmtp_maybe_finish(j);
}

/* The hook was abandoned: kill, reap in the background, forget. */
static void
pipe_cancel(struct lua_sess *ls, void *arg)
{
	struct pipe_job *j = arg;

	(void)ls;
	if (j->client != NULL)
		smtp_client_cancel(j->client);
	if (j->run != NULL)
		pipe_run_cancel(j->run);
	job_free(j);
}

/* ---- argument checks: all of them raise, none allocates C memory ---- */

static const char *const option_names[] = {
	"argv", "env", "rcpts", "timeout", "output_max", "crlf", "lmtp", NULL,
};

static void
check_options(lua_State *L)
{
	lua_pushnil(L);
	while (lua_next(L, 1) != 0) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : NULL;
		size_t i;

		for (i = 0; k != NULL && option_names[i] != NULL; i++)
			if (strcmp(k, option_names[i]) == 0)
				break;
		if (k == NULL || option_names[i] == NULL)
			luaL_error(L, "deliver.pipe: unknown option '%s'",
			    k != NULL ? k : luaL_typename(L, -2));
		lua_pop(L, 1);
	}
}

static bool
has_nul(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

/*
 * argv at idx: a list of 1..PIPE_ARGV_MAX strings, argv[1] absolute.
 * Returns a NULL-terminated array of pointers into those strings, in a
 * userdata left on the stack (the strings live as long as the table).
 */
static char **
check_argv(lua_State *L, int idx)
{
	size_t n, count = 0, len;
	char **av;

	if (!lua_istable(L, idx))
		luaL_error(L, "deliver.pipe: argv must be a list of strings");
	n = lua_objlen(L, idx);
	if (n < 1 || n > PIPE_ARGV_MAX)
		luaL_error(L, "deliver.pipe: argv needs 1 to %d strings",
		    PIPE_ARGV_MAX);
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		count++;
		lua_pop(L, 1);
	}
	if (count != n)
		luaL_error(L, "deliver.pipe: argv must be a list (no holes, "
		    "no other keys)");
	av = lua_newuserdata(L, (n + 1) * sizeof(*av));
	for (size_t i = 0; i < n; i++) {
		const char *s;

		lua_rawgeti(L, idx, (int)i + 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "deliver.pipe: argv[%d] is a %s, not a "
			    "string", (int)i + 1, luaL_typename(L, -1));
		s = lua_tolstring(L, -1, &len);
		if (len > PIPE_ARG_MAX || has_nul(s, len))
			luaL_error(L, "deliver.pipe: argv[%d] is longer than "
			    "%d bytes or holds a NUL", (int)i + 1, PIPE_ARG_MAX);
		if (i == 0 && s[0] != '/')
			luaL_error(L, "deliver.pipe: argv[1] must be an absolute "
			    "path (no PATH search): '%s'", s);
		av[i] = (char *)s;	/* anchored by the argv table */
		lua_pop(L, 1);
	}
	av[n] = NULL;
	return av;
}

static bool
env_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > PIPE_ENV_NAME_MAX ||
	    !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
	    s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/*
 * env at idx (nil or a table of name = string value): pushes a list of
 * "NAME=value" strings (anchors) and a userdata of pointers to them.
 * Sets the bits of the built-ins the caller overrides.
 */
static char **
check_env(lua_State *L, int idx, size_t *n, unsigned *override)
{
	int list;
	char **ev;

	*n = 0;
	*override = 0;
	lua_newtable(L);
	list = lua_gettop(L);
	if (!lua_isnil(L, idx)) {
		if (!lua_istable(L, idx))
			luaL_error(L, "deliver.pipe: env must be a table of "
			    "NAME = \"value\"");
		lua_pushnil(L);
		while (lua_next(L, idx) != 0) {
			size_t klen = 0, vlen;
			const char *k = NULL, *v;

			/* Only a string key may be read with tolstring here
			 * (a number would be converted in place, breaking
			 * lua_next). */
			if (lua_type(L, -2) == LUA_TSTRING)
				k = lua_tolstring(L, -2, &klen);
			if (k == NULL || !env_name_ok(k, klen))
				luaL_error(L, "deliver.pipe: env names are "
				    "[A-Za-z_][A-Za-z0-9_]* (at most %d bytes)",
				    PIPE_ENV_NAME_MAX);
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "deliver.pipe: env %s is a %s, not "
				    "a string", k, luaL_typename(L, -1));
			v = lua_tolstring(L, -1, &vlen);
			if (has_nul(v, vlen) ||
			    klen + 1 + vlen > PIPE_ENV_ENTRY_MAX)
				luaL_error(L, "deliver.pipe: env %s holds a NUL "
				    "or is longer than %d bytes", k,
				    PIPE_ENV_ENTRY_MAX);
			if (++*n > PIPE_ENV_MAX)
				luaL_error(L, "deliver.pipe: more than %d env "
				    "entries", PIPE_ENV_MAX);
			for (int b = 0; b < ENV_BUILTINS; b++)
				if (strcmp(k, builtin_names[b]) == 0)
					*override |= 1u << b;
			lua_pushfstring(L, "%s=%s", k, v);
			lua_rawseti(L, list, (int)*n);
			lua_pop(L, 1);
		}
	}
	ev = lua_newuserdata(L, (*n + 1) * sizeof(*ev));
	for (size_t i = 0; i < *n; i++) {
		lua_rawgeti(L, list, (int)i + 1);
		ev[i] = (char *)lua_tostring(L, -1);	/* anchored by list */
		lua_pop(L, 1);
	}
	ev[*n] = NULL;
	return ev;
}

static double
check_number(lua_State *L, int idx, const char *name, double def, double min,
    double max)
{
	double v;

	if (lua_isnil(L, idx))
		return def;
	if (lua_type(L, idx) != LUA_TNUMBER)
		luaL_error(L, "deliver.pipe: %s must be a number", name);
	v = lua_tonumber(L, idx);
	if (!(v >= min && v <= max))
		luaL_error(L, "deliver.pipe: %s must be in %g..%g", name, min,
		    max);
	return v;
}

/* ---- the call ---- */

static char *
env_entry(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *e = xmalloc(n);

	snprintf(e, n, "%s=%s", name, value);
	return e;
}

/* The built-ins not overridden; C memory only (nothing may raise now). */
static size_t
builtin_env(struct smtp_session *s, const size_t *rcpts, size_t n,
    unsigned override, char **out)
{
	struct smtp_tx *tx = s->tx;
	char *vals[ENV_BUILTINS] = { NULL }, size[32], *list;
	size_t len = 1, k = 0;

	for (size_t i = 0; i < n; i++)
		len += strlen(tx->rcpts[rcpts[i]].address) + 1;
	list = xmalloc(len);
	list[0] = '\0';
	for (size_t i = 0, o = 0; i < n; i++)
		o += (size_t)snprintf(list + o, len - o, "%s%s", i ? "\n" : "",
		    tx->rcpts[rcpts[i]].address);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)tx->size);
	vals[ENV_PATH] = PIPE_PATH;
	vals[ENV_SENDER] = tx->sender;
	vals[ENV_RECIPIENT] = n == 1 ? tx->rcpts[rcpts[0]].address : NULL;
	vals[ENV_RECIPIENTS] = list;
	vals[ENV_SIZE] = size;
	vals[ENV_QUEUE_ID] = tx->id;
	vals[ENV_CLIENT_ADDRESS] = s->peer_ip;
	vals[ENV_CLIENT_HELO] = s->helo != NULL ? s->helo : "";
	for (int b = 0; b < ENV_BUILTINS; b++)
		if (vals[b] != NULL && !(override & (1u << b)))
			out[k++] = env_entry(builtin_names[b], vals[b]);
	free(list);
	return k;
}

/***
 * deliver.pipe{ argv =, env =, rcpts =, timeout =, output_max =, crlf = }
 *   -> results table                (yields; misuse raises, see the top)
 *
 * Message hook only.  Every check that may raise comes before the first
 * C allocation; a command that cannot be started answers at once (451
 * 4.3.0) without yielding.  Ownership: the job (and the recipient list)
 * belongs to this file until pipe_done() or pipe_cancel() frees it; the
 * run belongs to pipe.c.
 */
static int
lb_deliver_pipe(lua_State *L)
{
	struct lua_sess *ls = lb_deliver_context(L, "deliver.pipe");
	struct smtp_session *s = ls->s;
	struct pipe_spec spec;
	struct pipe_job *j;
	char **argv, **cenv, *benv[ENV_BUILTINS], **envp, err[512];
	size_t ncenv, nbenv, *rcpts, nrcpts;
	unsigned override;
	double timeout, output_max;
	bool crlf, lmtp;
	int top, sock = -1;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	check_options(L);
	lua_getfield(L, 1, "argv");		/* 2 */
	lua_getfield(L, 1, "env");		/* 3 */
	lua_getfield(L, 1, "rcpts");		/* 4 */
	lua_getfield(L, 1, "timeout");		/* 5 */
	lua_getfield(L, 1, "output_max");	/* 6 */
	lua_getfield(L, 1, "crlf");		/* 7 */
	argv = check_argv(L, 2);
	cenv = check_env(L, 3, &ncenv, &override);
	timeout = check_number(L, 5, "timeout", PIPE_TIMEOUT_DEFAULT, 0.001,
	    PIPE_TIMEOUT_LIMIT);
	output_max = check_number(L, 6, "output_max", PIPE_OUTPUT_DEFAULT, 1,
	    PIPE_OUTPUT_LIMIT);
	if (output_max != (double)(size_t)output_max)
		luaL_error(L, "deliver.pipe: output_max must be an integer");
	if (!lua_isnil(L, 7) && !lua_isboolean(L, 7))
		luaL_error(L, "deliver.pipe: crlf must be a boolean");
	crlf = lua_toboolean(L, 7);
	lua_getfield(L, 1, "lmtp");
	if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
		luaL_error(L, "deliver.pipe: lmtp must be a boolean");
	lmtp = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (ls->waiting)
		luaL_error(L, "deliver.pipe: busy: another operation is pending");
	top = lua_gettop(L);
	/* Raises before it allocates; the last call that may raise. */
	rcpts = lb_deliver_rcpts(L, 4, s, &nrcpts);
	lua_settop(L, top);

	nbenv = builtin_env(s, rcpts, nrcpts, override, benv);
	envp = xcalloc(nbenv + ncenv + 1, sizeof(*envp));
	memcpy(envp, benv, nbenv * sizeof(*envp));
	memcpy(envp + nbenv, cenv, ncenv * sizeof(*envp));
	memset(&spec, 0, sizeof(spec));
	spec.argv = argv;
	spec.envp = envp;
	spec.mode = lmtp ? PIPE_MODE_SOCKET : PIPE_MODE_STDIN;
	spec.input_path = lmtp ? NULL : s->tx->spool.path;
	spec.crlf = crlf;
	spec.output_max = (size_t)output_max;
	spec.timeout = timeout;
	spec.sid = s->id;
	spec.tag = s->tx->id;

	j = xcalloc(1, sizeof(*j));
	j->ls = ls;
	j->target = xstrdup(argv[0]);
	j->rcpts = rcpts;
	j->nrcpts = nrcpts;
	j->timeout = timeout;
	j->lmtp = lmtp;
	/* execve has copied argv and envp (or failed) when this returns. */
	j->run = pipe_run_start(server.loop, &spec, lmtp ? lmtp_child_done :
	    pipe_done, j, lmtp ? &sock : NULL, err, sizeof(err));
	for (size_t i = 0; i < nbenv; i++)
		free(benv[i]);
	free(envp);
	if (j->run == NULL) {
		/* Fast path: nothing to wait for, answer now. */
		struct dlv_outcome *out = xcalloc(nrcpts, sizeof(*out));
		char ex[LOG_EXCERPT_BUFSZ(200)];

		log_error(s->id, "pipe start-failed tx=%s error=\"%s\"",
		    s->tx->id, log_excerpt(ex, err, strlen(err), 200));
		for (size_t i = 0; i < nrcpts; i++) {
			out[i].rcpt = rcpts[i];
			out[i].code = 451;
			snprintf(out[i].ecode, sizeof(out[i].ecode), "4.3.0");
			clean_text(out[i].text, sizeof(out[i].text), err,
			    strlen(err));
		}
		lua_settop(L, 0);
		lb_deliver_report(L, s, "pipe", j->target, out, nrcpts, err);
		free(out);
		lua_pushliteral(L, "");
		lua_setfield(L, -2, "output");
		lua_pushnumber(L, 0);
		lua_setfield(L, -2, "output_dropped");
		job_free(j);
		return 1;
	}
	if (lmtp) {
		struct smtpc_opts o;
		struct smtpc_msg m;
		const char **to = xcalloc(nrcpts, sizeof(*to));
		char name[300];

		memset(&o, 0, sizeof(o));
		o.proto = SMTPC_LMTP;
		o.helo = s->cfg->hostname;
		o.tls = SMTPC_TLS_NONE;
		o.timeout = timeout;
		memset(&m, 0, sizeof(m));
		m.sender = s->tx->sender;
		for (size_t i = 0; i < nrcpts; i++)
			to[i] = s->tx->rcpts[rcpts[i]].address;
		m.rcpts = to;
		m.nrcpts = nrcpts;
		m.path = s->tx->spool.path;
		m.eightbit = s->tx->opts.body == SMTP_BODY_8BITMIME;
		m.smtputf8 = s->tx->opts.smtputf8;
		snprintf(name, sizeof(name), "pipe:%s", j->target);
		/* The client copies what it is given and owns sock now. */
		j->client = smtp_client_start_fd(server.loop, s->id, sock, name, &o,
		    &m, lmtp_done, j);
		free(to);
	}
	lua_co_begin_wait(ls, pipe_cancel, j);	/* cannot raise: checked */
	return lua_yield(L, 0);
}

void
lb_deliver_register_pipe(lua_State *L)
{
	lua_pushcfunction(L, lb_deliver_pipe);
	lua_setfield(L, -2, "pipe");
}
