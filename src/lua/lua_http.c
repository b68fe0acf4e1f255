/*
 * lua_http.c — require "luasmtpd.http": HTTP(S) requests from hooks to a
 * policy service, through the client main.c made from the `http` setting
 * (libcurl multi on the loop, src/http).
 *
 *   http.request{ method = "GET" | "POST" | "PUT" | "DELETE" | "HEAD",
 *                 url = "http(s)://...", headers = { name = value, ... },
 *                 body = "...", timeout = s, connect_timeout = s,
 *                 verify = true, follow = false, max_body = bytes }
 *     -> { status = 200, headers = { ["lower-case-name"] = value },
 *          body = "...", time = seconds, url = effective url }
 *      | nil, err, detail
 *   http.get(url [, opts])           opts: the same without method/url/body
 *   http.post(url, body [, opts])
 *
 * Each call yields the hook (an operation of the task layer) and works in
 * any hook and inside smtp.all.  method defaults to POST with a body, GET
 * without.  Repeated response headers are joined with ", " (RFC 9110
 * §5.3).  Every answer with a status is a response, 404 and 500 included.
 * err is one of http.h's stable texts ("timeout", "connection refused",
 * "certificate verify failed", "response too large", ...), detail is
 * libcurl's message.  Misuse raises: a url that is not http:// or
 * https://, an unknown option or method, a body with GET or HEAD, a bad
 * header name or value (control characters, Content-Length and
 * Transfer-Encoding are refused: libcurl frames the body), a bound of
 * http.h exceeded, a call outside a hook, or no client (the config
 * neither set `http` nor required this module while it loaded).
 *
 * Defaults: timeout and connect_timeout from the `http` setting (10 s and
 * 5 s), verify = true (chain and host name, with http.ca_file or the
 * system's CAs), follow = false (at most HTTP_REDIRECTS_MAX when true),
 * max_body = 1 MiB (a longer body is the error "response too large").
 *
 * Ownership: an http_job belongs to its operation; the response is copied
 * in the client's callback (it is valid only then) and turned into a Lua
 * table at collect, inside the hook.  A hook let go (session closed,
 * timeout) cancels the request, after which the client never calls back.
 * The operation's backstop timer fires HTTP_LUA_BACKSTOP_SLACK after the
 * client's own.
 *
 * SECURITY: URLs and bodies may carry secrets (tokens): they are not
 * logged.  Response header bytes and count, and the body, are bounded by
 * the client (http.h), before anything reaches Lua.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "lua/lua_deliver.h"
#include "lua/lua_vm.h"
#include "server.h"
#include "task/task.h"
#include "util/xmalloc.h"

/* Seconds after the client's own backstop (timeout + HTTP_BACKSTOP_SLACK). */
#define HTTP_LUA_BACKSTOP_SLACK	1.0

struct http_job {
	struct task_op		*op;
	struct http_req		*req;		/* NULL once answered/cancelled */
	/* the response, copied in the callback */
	bool			 ok;
	char			*error;
	char			*detail;
	long			 status;
	struct http_header	*headers;	/* names lower-cased */
	size_t			 nheaders;
	char			*body;
	size_t			 body_len;
	double			 time;
	char			*url;
};

/* A request being checked: pointers into the Lua arguments (on the stack). */
struct http_args {
	struct http_request_opts o;
	struct http_header	 hdrs[HTTP_REQ_HEADERS_MAX];
};

static const char *const method_names[] = {
	[HTTP_GET] = "GET", [HTTP_POST] = "POST", [HTTP_PUT] = "PUT",
	[HTTP_DELETE] = "DELETE", [HTTP_HEAD] = "HEAD",
};

/* ---- arguments ---- */

static struct http_client *
client(lua_State *L, const char *what)
{
	if (task_current(L) == NULL)
		luaL_error(L, "%s: only inside a hook", what);
	if (server.http == NULL)
		luaL_error(L, "%s: no HTTP client: set http = { ... } or require "
		    "\"luasmtpd.http\" at the top of the config", what);
	return server.http;
}

static void
check_keys(lua_State *L, int idx, const char *what, const char *const *known)
{
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		size_t i;

		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "%s: option names are strings", what);
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(lua_tostring(L, -1), known[i]) == 0)
				break;
		if (known[i] == NULL)
			luaL_error(L, "%s: unknown option '%s'", what,
			    lua_tostring(L, -1));
	}
}

static const char *
check_url(lua_State *L, int idx, const char *what)
{
	const char *url;
	size_t len;

	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "%s: url must be a string", what);
	url = lua_tolstring(L, idx, &len);
	if (len == 0 || len > HTTP_URL_MAX || strlen(url) != len)
		luaL_error(L, "%s: url must be 1 to %d bytes without NUL", what,
		    HTTP_URL_MAX);
	if (strncasecmp(url, "http://", 7) != 0 &&
	    strncasecmp(url, "https://", 8) != 0)
		luaL_error(L, "%s: url must start with http:// or https://",
		    what);
	return url;
}

static const char *
check_body(lua_State *L, int idx, const char *what, size_t *len)
{
	const char *b;

	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "%s: body must be a string", what);
	b = lua_tolstring(L, idx, len);
	if (*len > HTTP_REQ_BODY_MAX)
		luaL_error(L, "%s: body over %d bytes", what, HTTP_REQ_BODY_MAX);
	return b;
}

/* RFC 9110 §5.6.2 tchar */
static bool
is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch));
}

static void
check_header(lua_State *L, const char *what, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	if (nlen == 0 || nlen > HTTP_REQ_HEADER_NAME_MAX)
		luaL_error(L, "%s: a header name must be 1 to %d bytes", what,
		    HTTP_REQ_HEADER_NAME_MAX);
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)name[i]))
			luaL_error(L, "%s: header name '%s' is not a token", what,
			    name);
	if (strcasecmp(name, "Content-Length") == 0 ||
	    strcasecmp(name, "Transfer-Encoding") == 0)
		luaL_error(L, "%s: %s is set by the client from the body", what,
		    name);
	for (size_t i = 0; i < vlen; i++) {
		unsigned char ch = (unsigned char)value[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			luaL_error(L, "%s: header %s: control characters are not "
			    "allowed in a value", what, name);
	}
	if (nlen + 2 + vlen > HTTP_REQ_HEADER_LINE_MAX)
		luaL_error(L, "%s: header %s is over %d bytes", what, name,
		    HTTP_REQ_HEADER_LINE_MAX);
}

/* headers = { name = value, ... } at idx into a->hdrs. */
static void
read_headers(lua_State *L, int idx, const char *what, struct http_args *a)
{
	if (!lua_istable(L, idx))
		luaL_error(L, "%s: headers must be a table { name = value }", what);
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		size_t nlen, vlen;
		const char *name, *value;

		if (lua_type(L, -2) != LUA_TSTRING ||
		    lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "%s: headers are name = \"value\" strings",
			    what);
		if (a->o.nheaders == HTTP_REQ_HEADERS_MAX)
			luaL_error(L, "%s: more than %d headers", what,
			    HTTP_REQ_HEADERS_MAX);
		name = lua_tolstring(L, -2, &nlen);
		value = lua_tolstring(L, -1, &vlen);
		check_header(L, what, name, nlen, value, vlen);
		/* The table holds both strings for the rest of the call. */
		a->hdrs[a->o.nheaders].name = name;
		a->hdrs[a->o.nheaders].value = value;
		a->o.nheaders++;
		lua_pop(L, 1);
	}
	a->o.headers = a->hdrs;
}

static double
opt_seconds(lua_State *L, int idx, const char *what, const char *name)
{
	double v = 0;

	lb_rawfield(L, idx, name);
	if (!lua_isnil(L, -1)) {
		v = lua_tonumber(L, -1);
		if (lua_type(L, -1) != LUA_TNUMBER ||
		    !(v >= HTTP_TIMEOUT_MIN && v <= HTTP_TIMEOUT_LIMIT))
			luaL_error(L, "%s: %s must be %g to %g seconds", what, name,
			    HTTP_TIMEOUT_MIN, HTTP_TIMEOUT_LIMIT);
	}
	lua_pop(L, 1);
	return v;
}

static bool
opt_bool(lua_State *L, int idx, const char *what, const char *name, bool dflt)
{
	bool v = dflt;

	lb_rawfield(L, idx, name);
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TBOOLEAN)
			luaL_error(L, "%s: %s must be true or false", what, name);
		v = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* The options every call shares, from the table at idx (may be absent). */
static void
read_common(lua_State *L, int idx, const char *what, struct http_args *a)
{
	double mb;

	lb_rawfield(L, idx, "headers");
	if (!lua_isnil(L, -1))
		read_headers(L, lua_gettop(L), what, a);
	lua_pop(L, 1);	/* the option table still holds the strings */
	a->o.timeout = opt_seconds(L, idx, what, "timeout");
	a->o.connect_timeout = opt_seconds(L, idx, what, "connect_timeout");
	a->o.insecure = !opt_bool(L, idx, what, "verify", true);
	a->o.follow_redirects = opt_bool(L, idx, what, "follow", false);
	lb_rawfield(L, idx, "max_body");
	if (!lua_isnil(L, -1)) {
		mb = lua_tonumber(L, -1);
		if (lua_type(L, -1) != LUA_TNUMBER || mb != floor(mb) ||
		    !(mb >= 1 && mb <= HTTP_BODY_LIMIT))
			luaL_error(L, "%s: max_body must be a whole number from 1 "
			    "to %d", what, HTTP_BODY_LIMIT);
		a->o.max_body = (size_t)mb;
	}
	lua_pop(L, 1);
}

static enum http_method
check_method(lua_State *L, int idx, const char *what)
{
	const char *m;

	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "%s: method must be a string", what);
	m = lua_tostring(L, idx);
	for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]);
	    i++)
		if (strcasecmp(m, method_names[i]) == 0)
			return (enum http_method)i;
	luaL_error(L, "%s: method must be GET, POST, PUT, DELETE or HEAD", what);
	return HTTP_GET;
}

/* ---- the operation ---- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
job_answer(void *arg, const struct http_response *res)
{
	struct http_job *j = arg;

	j->req = NULL;		/* dead from the moment the callback starts */
	j->ok = res->ok;
	j->error = dup_or_null(res->error);
	j->detail = dup_or_null(res->detail);
	j->status = res->status;
	j->time = res->total_time;
	j->url = dup_or_null(res->url);
	if (res->ok) {
		j->headers = xcalloc(res->nheaders ? res->nheaders : 1,
		    sizeof(*j->headers));
		for (size_t i = 0; i < res->nheaders; i++) {
			char *n = xstrdup(res->headers[i].name);

			for (char *p = n; *p != '\0'; p++)
				*p = (char)tolower((unsigned char)*p);
			j->headers[i].name = n;
			j->headers[i].value = xstrdup(res->headers[i].value);
		}
		j->nheaders = res->nheaders;
		j->body = xmalloc(res->body_len + 1);
		memcpy(j->body, res->body, res->body_len);
		j->body[res->body_len] = '\0';
		j->body_len = res->body_len;
	}
	task_op_complete(j->op);	/* may free the job: the last use */
}

static void
job_cancel(struct task_op *op)
{
	struct http_job *j = op->data;

	if (j != NULL && j->req != NULL) {
		http_cancel(j->req);
		j->req = NULL;
	}
}

static void
job_free(struct task_op *op)
{
	struct http_job *j = op->data;

	if (j == NULL)
		return;
	if (j->req != NULL)
		http_cancel(j->req);
	for (size_t i = 0; i < j->nheaders; i++) {
		free((char *)j->headers[i].name);
		free((char *)j->headers[i].value);
	}
	free(j->headers);
	free(j->body);
	free(j->error);
	free(j->detail);
	free(j->url);
	free(j);
}

static int
push_response(lua_State *L, struct task_op *op)
{
	struct http_job *j = op->data;
	int t, h;

	if (!j->ok) {
		lua_pushnil(L);
		lua_pushstring(L, j->error != NULL ? j->error : "transfer failed");
		lua_pushstring(L, j->detail != NULL ? j->detail : "");
		return 3;
	}
	lua_createtable(L, 0, 5);
	t = lua_gettop(L);
	lua_pushinteger(L, (lua_Integer)j->status);
	lua_setfield(L, t, "status");
	lua_pushlstring(L, j->body, j->body_len);
	lua_setfield(L, t, "body");
	lua_pushnumber(L, j->time);
	lua_setfield(L, t, "time");
	if (j->url != NULL) {
		lua_pushstring(L, j->url);
		lua_setfield(L, t, "url");
	}
	lua_createtable(L, 0, (int)j->nheaders);
	h = lua_gettop(L);
	for (size_t i = 0; i < j->nheaders; i++) {
		lua_pushstring(L, j->headers[i].name);
		lua_pushvalue(L, -1);
		lua_rawget(L, h);
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			lua_pushstring(L, j->headers[i].value);
		} else {
			lua_pushliteral(L, ", ");
			lua_pushstring(L, j->headers[i].value);
			lua_concat(L, 3);
		}
		lua_rawset(L, h);
	}
	lua_setfield(L, t, "headers");
	return 1;
}

static const struct task_op_ops request_ops = {
	.name = "http", .push = push_response, .cancel = job_cancel,
	.free = job_free,
};

/* Begin the operation and start the request (nothing below raises). */
static int
start(lua_State *L, struct http_client *c, struct http_args *a)
{
	double t = a->o.timeout;
	struct task_op *op;
	struct http_job *j;

	if (t == 0)
		t = server.cfg->http.timeout > 0 ? server.cfg->http.timeout :
		    HTTP_TIMEOUT_DEFAULT;
	op = task_op_begin(L, &request_ops, NULL,
	    t + HTTP_BACKSTOP_SLACK + HTTP_LUA_BACKSTOP_SLACK);
	j = xcalloc(1, sizeof(*j));
	op->data = j;
	j->op = op;
	j->req = http_request(c, &a->o, job_answer, j);	/* copies a */
	return task_op_yield(L, op);
}

static int
lb_http_request_start(lua_State *L)
{
	static const char *const known[] = { "method", "url", "headers", "body",
	    "timeout", "connect_timeout", "verify", "follow", "max_body", NULL };
	const char *what = "http.request";
	struct http_client *c = client(L, what);
	struct http_args a;

	memset(&a, 0, sizeof(a));
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	check_keys(L, 1, what, known);
	lb_rawfield(L, 1, "url");
	a.o.url = check_url(L, 2, what);
	lb_rawfield(L, 1, "body");
	if (!lua_isnil(L, 3))
		a.o.body = check_body(L, 3, what, &a.o.body_len);
	lb_rawfield(L, 1, "method");
	a.o.method = a.o.body != NULL ? HTTP_POST : HTTP_GET;
	if (!lua_isnil(L, 4))
		a.o.method = check_method(L, 4, what);
	if (a.o.body != NULL && (a.o.method == HTTP_GET ||
	    a.o.method == HTTP_HEAD))
		return luaL_error(L, "%s: a body needs method POST, PUT or "
		    "DELETE", what);
	read_common(L, 1, what, &a);
	return start(L, c, &a);
}

static int
lb_http_get_start(lua_State *L)
{
	static const char *const known[] = { "headers", "timeout",
	    "connect_timeout", "verify", "follow", "max_body", NULL };
	const char *what = "http.get";
	struct http_client *c = client(L, what);
	struct http_args a;

	memset(&a, 0, sizeof(a));
	lua_settop(L, 2);
	a.o.url = check_url(L, 1, what);
	a.o.method = HTTP_GET;
	if (!lua_isnil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		check_keys(L, 2, what, known);
		read_common(L, 2, what, &a);
	}
	return start(L, c, &a);
}

static int
lb_http_post_start(lua_State *L)
{
	static const char *const known[] = { "headers", "timeout",
	    "connect_timeout", "verify", "follow", "max_body", NULL };
	const char *what = "http.post";
	struct http_client *c = client(L, what);
	struct http_args a;

	memset(&a, 0, sizeof(a));
	lua_settop(L, 3);
	a.o.url = check_url(L, 1, what);
	a.o.body = check_body(L, 2, what, &a.o.body_len);
	a.o.method = HTTP_POST;
	if (!lua_isnil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		check_keys(L, 3, what, known);
		read_common(L, 3, what, &a);
	}
	return start(L, c, &a);
}

int
luaopen_luasmtpd_http(lua_State *L)
{
	/* Required while the config loads: main.c makes the client at start. */
	if (vm.cfg != NULL)
		vm.cfg->http_wanted = true;
	lua_newtable(L);
	lb_task_wrap(L, lb_http_request_start, "http.request");
	lua_setfield(L, -2, "request");
	lb_task_wrap(L, lb_http_get_start, "http.get");
	lua_setfield(L, -2, "get");
	lb_task_wrap(L, lb_http_post_start, "http.post");
	lua_setfield(L, -2, "post");
	return 1;
}
