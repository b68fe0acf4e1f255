/*
 * lua_message.c — the message given to the message hook.
 *
 *   msg.id msg.path msg.size msg.sender msg.rcpts
 *   msg:headers() -> { {name=, value=}, ... [, truncated = true] }
 *                                                 (yields the first time)
 *       names without the blanks the obsolete syntax allows before ':';
 *       truncated: the section is longer than MESSAGE_HEADER_MAX (256 KiB),
 *       the fields after that are missing
 *   msg:header(name) -> the first value or nil    (yields the first time)
 *   msg:body() -> the body as a string            (yields)
 *   msg:read() -> the whole message               (yields)
 *   msg:dkim() -> DKIM results (lua_mailauth.c)   (yields)
 *   msg:add_header(name, value)
 *
 * The message is the spool file.  Every read runs on the disk pool, never
 * on the event loop (a hook's CPU limit cannot stop a read(2), and a slow
 * disk must not stall every session): the header section, at most
 * MESSAGE_HEADER_MAX bytes, is read once and parsed (folded lines
 * unfolded, RFC 5322 §2.2.3) into a table cached on the message value;
 * read() and body() load at most the message's size, and a failed
 * allocation is an error of the call (nil, "out of memory"), not of the
 * server.  A message value is valid only during the message hook of its
 * transaction.
 *
 * SECURITY: header names and values come from the client; they are Lua
 * strings of bounded size, never interpreted here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua/lua_deliver.h"
#include "lua/lua_vm.h"
#include "smtp/smtp_session.h"
#include "task/task.h"
#include "util/xmalloc.h"

#define MESSAGE_MT	"luasmtpd.message"

/* Environment table slots of a message value. */
#define ENV_SESSION	1
#define ENV_HEADERS	2	/* the parsed header table, once read */
#define ENV_METHODS	3
#define ENV_ADDEDLEN	4	/* tx->added's length when it was parsed */

struct lb_message {
	unsigned	seq;
};

enum read_what {
	READ_HEADERS,
	READ_BODY,
	READ_ALL,
};

struct read_job {
	struct lb_work	 lw;		/* first */
	char		*path;
	char		*added;		/* tx->added, read before the file */
	size_t		 addedlen;
	size_t		 max;
	enum read_what	 what;
	char		*data;		/* what was read, malloc'ed */
	size_t		 len;
	bool		 truncated;	/* headers: the section is longer */
	char		 err[128];
};

struct smtp_tx *
lb_check_message(lua_State *L, int idx)
{
	struct lb_message *m = luaL_checkudata(L, idx, MESSAGE_MT);
	struct smtp_session *s = lb_session_of(L, idx);

	if (s->tx == NULL || s->tx->seq != m->seq || !s->tx->spool_open)
		luaL_error(L, "message is gone (only valid in its message hook)");
	return s->tx;
}

/* Length of the header section including its blank line, or n if none. */
static size_t
header_end(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] == '\n' && (p[i + 1] == '\n' ||
		    (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')))
			return i + 1 + (p[i + 1] == '\r' ? 2 : 1);
	}
	return n;
}

/* ---- reading, on the disk pool ---- */

static void
read_run(struct lb_work *lw)
{
	struct read_job *j = (struct read_job *)lw;
	size_t n = 0;
	int fd;

	if ((fd = open(j->path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(j->err, sizeof(j->err), "cannot open the message: %s",
		    strerror(errno));
		return;
	}
	/* Plain malloc: running out of memory fails this call only. */
	if ((j->data = malloc(j->addedlen + j->max + 1)) == NULL) {
		snprintf(j->err, sizeof(j->err), "out of memory");
		close(fd);
		return;
	}
	/* The fields hooks added come first, as every delivery sends them. */
	if (j->addedlen > 0)
		memcpy(j->data, j->added, j->addedlen);
	n = j->addedlen;
	j->max += j->addedlen;
	while (n < j->max) {
		ssize_t r = read(fd, j->data + n, j->max - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(j->err, sizeof(j->err), "cannot read the "
			    "message: %s", strerror(errno));
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	j->len = n;
	if (j->what == READ_HEADERS) {
		j->len = header_end(j->data, n);
		/*
		 * No blank line within MESSAGE_HEADER_MAX: the section goes on.
		 * Keep whole lines only (the last one was cut) and say so: a
		 * policy must not take a cut value for the whole field.
		 */
		if (j->len == n && n == j->max) {
			while (j->len > 0 && j->data[j->len - 1] != '\n')
				j->len--;
			j->truncated = true;
		}
	}
}

/*
 * Push { {name=, value=}, ... } parsed from p[0..n).  Values are unfolded
 * into a scratch buffer first, then pushed whole: nothing is built on the
 * Lua stack while a table is being made.
 */
static void
push_headers(lua_State *L, const char *p, size_t n, char *scratch)
{
	size_t i = 0;
	int idx = 0;

	lua_newtable(L);
	while (i < n) {
		size_t start = i, colon, name_end, vlen = 0;

		if (p[i] == '\r' || p[i] == '\n')
			break;		/* the blank line */
		while (i < n && p[i] != ':' && p[i] != '\n')
			i++;
		if (i >= n || p[i] != ':') {
			/* Not a header line: skip it. */
			while (i < n && p[i] != '\n')
				i++;
			i++;
			continue;
		}
		colon = i++;
		name_end = colon;
		/* RFC 5322 §4.5 (obsolete syntax): "Subject :" names Subject. */
		while (name_end > start && (p[name_end - 1] == ' ' ||
		    p[name_end - 1] == '\t'))
			name_end--;
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		for (;;) {
			size_t vstart = i, vend;

			while (i < n && p[i] != '\n')
				i++;
			vend = i;
			if (vend > vstart && p[vend - 1] == '\r')
				vend--;
			memcpy(scratch + vlen, p + vstart, vend - vstart);
			vlen += vend - vstart;
			i++;
			/* Folded continuation (RFC 5322 §2.2.3): unfold. */
			if (i < n && (p[i] == ' ' || p[i] == '\t'))
				continue;
			break;
		}
		lua_createtable(L, 0, 2);
		lua_pushlstring(L, p + start, name_end - start);
		lua_setfield(L, -2, "name");
		lua_pushlstring(L, scratch, vlen);
		lua_setfield(L, -2, "value");
		lua_rawseti(L, -2, ++idx);
	}
}

/* At collect, inside the hook: the value(s) for what was read. */
static int
read_push(lua_State *L, struct lb_work *lw)
{
	struct read_job *j = (struct read_job *)lw;

	if (j->data == NULL || j->err[0] != '\0') {
		lua_pushnil(L);
		lua_pushstring(L, j->err[0] ? j->err : "cannot read the message");
		return 2;
	}
	switch (j->what) {
	case READ_HEADERS: {
		/* The unfolded values are never longer than the section. */
		char *scratch = lua_newuserdata(L, j->len + 1);

		push_headers(L, j->data, j->len, scratch);
		lua_remove(L, -2);
		if (j->truncated) {
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, "truncated");
		}
		return 1;
	}
	case READ_BODY: {
		size_t off = header_end(j->data, j->len);

		lua_pushlstring(L, j->data + off, j->len - off);
		return 1;
	}
	case READ_ALL:
		lua_pushlstring(L, j->data, j->len);
		return 1;
	}
	return 0;
}

static void
read_free(struct lb_work *lw)
{
	struct read_job *j = (struct read_job *)lw;

	free(j->path);
	free(j->added);
	free(j->data);
	free(j);
}

static const struct task_op_ops read_ops = {
	.name = "message read",
	.push = lb_work_push,
	.cancel = lb_work_cancel,
	.free = lb_work_free,
};

static int
start_read(lua_State *L, enum read_what what)
{
	struct smtp_tx *tx = lb_check_message(L, 1);
	struct task_op *op = task_op_begin(L, &read_ops, NULL, 0);
	struct read_job *j = xcalloc(1, sizeof(*j));

	j->path = xstrdup(tx->spool.path);
	if ((j->addedlen = buf_used(&tx->added)) > 0) {
		j->added = xmalloc(j->addedlen);
		memcpy(j->added, buf_head(&tx->added), j->addedlen);
	}
	j->what = what;
	j->max = what == READ_HEADERS ? MESSAGE_HEADER_MAX : (size_t)tx->spool.size;
	j->lw.run = read_run;
	j->lw.push = read_push;
	j->lw.free = read_free;
	return lb_work_yield(L, op, workq_disk, &j->lw);
}

static int
lb_message_read_start(lua_State *L)
{
	return start_read(L, READ_ALL);
}

static int
lb_message_body_start(lua_State *L)
{
	return start_read(L, READ_BODY);
}

static int
lb_message_headers_start(lua_State *L)
{
	return start_read(L, READ_HEADERS);
}

/* ---- the object ---- */

void
lb_push_message(lua_State *L, struct lua_sess *ls)
{
	struct lb_message *m = lua_newuserdata(L, sizeof(*m));

	m->seq = ls->s->tx->seq;
	luaL_getmetatable(L, MESSAGE_MT);
	lua_setmetatable(L, -2);
	lua_createtable(L, 3, 0);
	lb_push_session(L, ls);
	lua_rawseti(L, -2, ENV_SESSION);
	lua_setfenv(L, -2);
}

/* msg._headers_cache / msg._set_headers_cache for the Lua methods. */
static int
lb_message_cache(lua_State *L)
{
	bool store = lua_gettop(L) >= 2;	/* (msg, value) */
	struct smtp_tx *tx = lb_check_message(L, 1);

	lua_getfenv(L, 1);
	if (store) {
		lua_pushvalue(L, 2);
		lua_rawseti(L, -2, ENV_HEADERS);
		lua_pushnumber(L, (lua_Number)buf_used(&tx->added));
		lua_rawseti(L, -2, ENV_ADDEDLEN);
		return 0;
	}
	/* A field added since the parse makes the cache stale. */
	lua_rawgeti(L, -1, ENV_ADDEDLEN);
	if (lua_tonumber(L, -1) != (lua_Number)buf_used(&tx->added)) {
		lua_pushnil(L);
		return 1;
	}
	lua_rawgeti(L, -2, ENV_HEADERS);
	return 1;
}

static int
lb_message_add_header(lua_State *L)
{
	return lb_tx_add_header(L, lb_check_message(L, 1));
}

static int
lb_message_index(lua_State *L)
{
	struct smtp_tx *tx = lb_check_message(L, 1);
	const char *k = luaL_checkstring(L, 2);

	/* Methods first: the table is this closure's upvalue. */
	lua_pushvalue(L, 2);
	lua_rawget(L, lua_upvalueindex(1));
	if (!lua_isnil(L, -1))
		return 1;
	lua_pop(L, 1);
	if (strcmp(k, "add_header") == 0)
		lua_pushcfunction(L, lb_message_add_header);
	else if (strcmp(k, "id") == 0)
		lua_pushstring(L, tx->id);
	else if (strcmp(k, "path") == 0)
		lua_pushstring(L, tx->spool.path);
	else if (strcmp(k, "size") == 0)
		lua_pushnumber(L, (lua_Number)tx->size);
	else if (strcmp(k, "sender") == 0)
		lua_pushstring(L, tx->sender);
	else if (strcmp(k, "rcpts") == 0)
		lb_push_rcpts(L, lb_session_of(L, 1));
	else
		lua_pushnil(L);
	return 1;
}

/*
 * headers() and header() in Lua over the yielding read: the parsed table
 * is cached on the message, so a hook pays for one read however often it
 * asks.  The table is shared: change a copy, not it.
 */
static const char methods_chunk[] =
    "local read_headers, cache = ...\n"
    "local lower, type, error = string.lower, type, error\n"
    "local M = {}\n"
    "function M.headers(msg)\n"
    "  local h = cache(msg)\n"
    "  if h == nil then\n"
    "    local err\n"
    "    h, err = read_headers(msg)\n"
    "    if h == nil then return nil, err end\n"
    "    cache(msg, h)\n"
    "  end\n"
    "  return h\n"
    "end\n"
    "function M.header(msg, name)\n"
    "  if type(name) ~= 'string' then error(\"bad argument #1 to 'header' (a header name)\", 2) end\n"
    "  local h, err = M.headers(msg)\n"
    "  if h == nil then return nil, err end\n"
    "  name = lower(name)\n"
    "  for i = 1, #h do\n"
    "    if lower(h[i].name) == name then return h[i].value end\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "return M\n";

void
lb_message_open(lua_State *L)
{
	luaL_newmetatable(L, MESSAGE_MT);
	/* The methods table. */
	if (luaL_loadbuffer(L, methods_chunk, sizeof(methods_chunk) - 1,
	    "=luasmtpd.message") != 0)
		lua_error(L);
	lb_task_wrap(L, lb_message_headers_start, "headers");
	lua_pushcfunction(L, lb_message_cache);
	lua_call(L, 2, 1);
	lb_task_wrap(L, lb_message_read_start, "read");
	lua_setfield(L, -2, "read");
	lb_task_wrap(L, lb_message_body_start, "body");
	lua_setfield(L, -2, "body");
	lb_mailauth_dkim_method(L);
	lua_setfield(L, -2, "dkim");
	lua_pushcclosure(L, lb_message_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "luasmtpd.message");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}
