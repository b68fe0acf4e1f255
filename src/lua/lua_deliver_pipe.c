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
#include "task/task.h"
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
 * One deliver.pipe call in flight.  Owned by its operation (task.h): the
 * outcomes are recorded when the child is reaped (and, for lmtp, the
 * exchange is over), the results table is built at collect, and the
 * operation's free() frees the job; a hook that lets go cancels the run
 * and the client first, which never call back after that.
 */
struct pipe_job {
	struct task_op		*op;
	struct lua_sess		*ls;
	struct pipe_run		*run;		/* borrowed, see pipe.h */
	char			*target;	/* argv[1] */
	size_t			*rcpts;		/* 0-based indices */
	size_t			 nrcpts;
	double			 timeout;
	/*
	 * lmtp = true: the child speaks LMTP on stdin/stdout (RFC 2033).
	 * The call ends when the LMTP exchange is over AND the child was
	 * reaped; the recipients' outcomes are the LMTP replies.
	 */
	bool			 lmtp;
	struct smtp_client	*client;	/* borrowed until lmtp_done() */
	struct dlv_outcome	*out;		/* the outcomes, once known */
	char			*error;
	bool			 child_done;
	struct pipe_result	 child;		/* a copy; output in child_output */
	char			*child_output;
};

static void
job_free(struct pipe_job *j)
{
	if (j == NULL)
		return;
	free(j->target);
	free(j->rcpts);
	free(j->out);
	free(j->error);
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

/* exit/signal, output and output_dropped of the child, into the table. */
static void
push_child(lua_State *L, const struct pipe_job *j)
{
	if (j->child.how == PIPE_END_EXIT) {
		lua_pushinteger(L, j->child.status);
		lua_setfield(L, -2, "exit");
	} else if (j->child.how == PIPE_END_SIGNAL) {
		lua_pushinteger(L, j->child.status);
		lua_setfield(L, -2, "signal");
	}
	lua_pushstring(L, j->child_output != NULL ? j->child_output : "");
	lua_setfield(L, -2, "output");
	lua_pushnumber(L, (lua_Number)j->child.dropped);
	lua_setfield(L, -2, "output_dropped");
}

static int
push_result(lua_State *L, struct task_op *op)
{
	struct pipe_job *j = op->data;

	lb_deliver_push(L, j->ls->s, j->out, j->nrcpts, j->error);
	push_child(L, j);
	return 1;
}

/* Keep the reaped child's result past the callback. */
static void
keep_child(struct pipe_job *j, const struct pipe_result *res)
{
	j->run = NULL;
	j->child = *res;
	j->child.output = NULL;
	j->child_output = xstrndup(res->output, res->output_len);
	j->child_done = true;
}

/* The runner reaped the child (libev callback): outcomes from its end. */
static void
pipe_done(const struct pipe_result *res, void *arg)
{
	struct pipe_job *j = arg;
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
	j->out = xcalloc(j->nrcpts ? j->nrcpts : 1, sizeof(*j->out));
	for (size_t i = 0; i < j->nrcpts; i++) {
		j->out[i].rcpt = j->rcpts[i];
		j->out[i].code = code;
		snprintf(j->out[i].ecode, sizeof(j->out[i].ecode), "%s", ecode);
		snprintf(j->out[i].text, sizeof(j->out[i].text), "%s", text);
	}
	j->error = error != NULL ? xstrdup(error) : NULL;
	keep_child(j, res);
	lb_deliver_record(j->ls->s, "pipe", j->target, j->out, j->nrcpts);
	task_op_complete(j->op);
}

/* Both halves of an LMTP pipe are over: the hook may go on. */
static void
lmtp_maybe_finish(struct pipe_job *j)
{
	if (j->out == NULL || !j->child_done)
		return;
	lb_deliver_record(j->ls->s, "pipe-lmtp", j->target, j->out, j->nrcpts);
	task_op_complete(j->op);
}

static void
lmtp_done(void *arg, const struct smtpc_result *res, size_t n,
    const char *error)
{
	struct pipe_job *j = arg;

	j->client = NULL;
	j->out = xcalloc(j->nrcpts ? j->nrcpts : 1, sizeof(*j->out));
	for (size_t i = 0; i < j->nrcpts; i++) {
		j->out[i].rcpt = j->rcpts[i];
		if (i < n) {
			j->out[i].code = res[i].code;
			snprintf(j->out[i].ecode, sizeof(j->out[i].ecode), "%s",
			    res[i].ecode);
			snprintf(j->out[i].text, sizeof(j->out[i].text), "%s",
			    res[i].text);
		} else {
			j->out[i].code = 451;
			snprintf(j->out[i].ecode, sizeof(j->out[i].ecode), "4.3.0");
			snprintf(j->out[i].text, sizeof(j->out[i].text),
			    "no LMTP reply");
		}
	}
	j->error = error != NULL ? xstrdup(error) : NULL;
	/* The child ends after QUIT; its timeout bounds the wait. */
	lmtp_maybe_finish(j);
}

static void
lmtp_child_done(const struct pipe_result *res, void *arg)
{
	struct pipe_job *j = arg;

	keep_child(j, res);
	lmtp_maybe_finish(j);
}

/* The hook let go: kill, reap in the background, forget. */
static void
pipe_cancel(struct task_op *op)
{
	struct pipe_job *j = op->data;

	if (j == NULL)
		return;
	if (j->client != NULL)
		smtp_client_cancel(j->client);
	j->client = NULL;
	if (j->run != NULL)
		pipe_run_cancel(j->run);
	j->run = NULL;
}

static void
pipe_op_free(struct task_op *op)
{
	job_free(op->data);
}

static const struct task_op_ops pipe_ops = {
	.name = "deliver.pipe", .push = push_result, .cancel = pipe_cancel,
	.free = pipe_op_free,
};

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
	struct task_op *op;
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
	lb_rawfield(L, 1, "argv");		/* 2 */
	lb_rawfield(L, 1, "env");		/* 3 */
	lb_rawfield(L, 1, "rcpts");		/* 4 */
	lb_rawfield(L, 1, "timeout");		/* 5 */
	lb_rawfield(L, 1, "output_max");	/* 6 */
	lb_rawfield(L, 1, "crlf");		/* 7 */
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
	lb_rawfield(L, 1, "lmtp");
	if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
		luaL_error(L, "deliver.pipe: lmtp must be a boolean");
	lmtp = lua_toboolean(L, -1);
	lua_pop(L, 1);
	op = task_op_begin(L, &pipe_ops, NULL, 0);	/* may raise: busy */
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
	spec.input_prefix = lmtp ? NULL : buf_head(&s->tx->added);
	spec.input_prefix_len = lmtp ? 0 : buf_used(&s->tx->added);
	spec.crlf = crlf;
	spec.output_max = (size_t)output_max;
	spec.timeout = timeout;
	spec.sid = s->id;
	spec.tag = s->tx->id;

	j = xcalloc(1, sizeof(*j));
	j->op = op;
	op->data = j;
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
		/* Nothing to wait for: the outcome is known now. */
		char ex[LOG_EXCERPT_BUFSZ(200)];

		log_error(s->id, "pipe start-failed tx=%s error=\"%s\"",
		    s->tx->id, log_excerpt(ex, err, strlen(err), 200));
		j->out = xcalloc(nrcpts ? nrcpts : 1, sizeof(*j->out));
		for (size_t i = 0; i < nrcpts; i++) {
			j->out[i].rcpt = rcpts[i];
			j->out[i].code = 451;
			snprintf(j->out[i].ecode, sizeof(j->out[i].ecode), "4.3.0");
			clean_text(j->out[i].text, sizeof(j->out[i].text), err,
			    strlen(err));
		}
		j->error = xstrdup(err);
		lb_deliver_record(s, "pipe", j->target, j->out, nrcpts);
		task_op_complete(op);		/* before the yield: no yield */
		return task_op_yield(L, op);
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
		m.prefix = buf_head(&s->tx->added);
		m.prefix_len = buf_used(&s->tx->added);
		m.eightbit = s->tx->opts.body == SMTP_BODY_8BITMIME;
		m.smtputf8 = s->tx->opts.smtputf8;
		snprintf(name, sizeof(name), "pipe:%s", j->target);
		/* The client copies what it is given and owns sock now. */
		j->client = smtp_client_start_fd(server.loop, s->id, sock, name, &o,
		    &m, lmtp_done, j);
		free(to);
	}
	return task_op_yield(L, op);
}

void
lb_deliver_register_pipe(lua_State *L)
{
	lb_task_wrap(L, lb_deliver_pipe, "pipe");
	lua_setfield(L, -2, "pipe");
}
