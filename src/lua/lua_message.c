/*
 * lua_message.c — the message given to the message hook.
 *
 *   msg.id msg.path msg.size msg.sender msg.rcpts
 *   msg:header(name) -> first value or nil     msg:headers() -> { {name=, value=}, ... }
 *   msg:body() -> the body as a string         msg:read() -> the whole message
 *
 * The message is the spool file: headers are parsed from its first
 * MESSAGE_HEADER_MAX bytes on first use (folded lines unfolded), and the
 * readers load at most max_message_size bytes.  A message value is valid
 * only during the message hook of its transaction.
 *
 * XXX: the readers use blocking read(2) on a local file the kernel just
 * wrote; it is in the page cache, and the size is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lua/lua_vm.h"
#include "smtp/smtp_session.h"
#include "util/xmalloc.h"

#define MESSAGE_MT	"luasmtpd.message"

struct lb_message {
	unsigned	seq;
};

static struct smtp_tx *
check_message(lua_State *L, int idx)
{
	struct lb_message *m = luaL_checkudata(L, idx, MESSAGE_MT);
	struct smtp_session *s = lb_session_of(L, idx);

	if (s->tx == NULL || s->tx->seq != m->seq || !s->tx->spool_open)
		luaL_error(L, "message is gone (only valid in its message hook)");
	return s->tx;
}

void
lb_push_message(lua_State *L, struct lua_sess *ls)
{
	struct lb_message *m = lua_newuserdata(L, sizeof(*m));

	m->seq = ls->s->tx->seq;
	luaL_getmetatable(L, MESSAGE_MT);
	lua_setmetatable(L, -2);
	lua_createtable(L, 2, 0);
	lb_push_session(L, ls);
	lua_rawseti(L, -2, 1);
	lua_setfenv(L, -2);
}

/* Read up to max bytes of the spool file into a fresh buffer. */
static char *
read_spool(lua_State *L, struct smtp_tx *tx, size_t max, size_t *len)
{
	char *p;
	size_t n = 0;
	int fd;

	if ((fd = open(tx->spool.path, O_RDONLY | O_CLOEXEC)) < 0) {
		luaL_error(L, "cannot open message: %s", strerror(errno));
		return NULL;
	}
	p = xmalloc(max + 1);
	while (n < max) {
		ssize_t r = read(fd, p + n, max - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return p;
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

/* Push { {name=, value=}, ... } parsed from p[0..n). */
static void
push_headers(lua_State *L, const char *p, size_t n)
{
	size_t i = 0;
	int idx = 0;

	lua_newtable(L);
	while (i < n) {
		size_t start = i, colon, vstart, vend;
		luaL_Buffer b;

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
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		vstart = i;
		luaL_buffinit(L, &b);
		for (;;) {
			while (i < n && p[i] != '\n')
				i++;
			vend = i;
			if (vend > vstart && p[vend - 1] == '\r')
				vend--;
			luaL_addlstring(&b, p + vstart, vend - vstart);
			i++;
			/* Folded continuation (RFC 5322 §2.2.3): unfold. */
			if (i < n && (p[i] == ' ' || p[i] == '\t')) {
				vstart = i;
				continue;
			}
			break;
		}
		lua_createtable(L, 0, 2);
		lua_pushlstring(L, p + start, colon - start);
		lua_setfield(L, -2, "name");
		luaL_pushresult(&b);
		lua_setfield(L, -2, "value");
		lua_rawseti(L, -2, ++idx);
	}
}

static int
lb_message_headers(lua_State *L)
{
	struct smtp_tx *tx = check_message(L, 1);
	size_t n;
	char *p = read_spool(L, tx, MESSAGE_HEADER_MAX, &n);

	push_headers(L, p, header_end(p, n));
	free(p);
	return 1;
}

static int
lb_message_header(lua_State *L)
{
	const char *want;
	size_t n;

	(void)check_message(L, 1);
	want = luaL_checkstring(L, 2);
	lua_settop(L, 2);
	lb_message_headers(L);
	n = lua_objlen(L, -1);
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, (int)i);
		lua_getfield(L, -1, "name");
		if (strcasecmp(lua_tostring(L, -1), want) == 0) {
			lua_getfield(L, -2, "value");
			return 1;
		}
		lua_pop(L, 2);
	}
	lua_pushnil(L);
	return 1;
}

static int
read_all(lua_State *L, bool body_only)
{
	struct smtp_tx *tx = check_message(L, 1);
	size_t n, off = 0;
	char *p = read_spool(L, tx, (size_t)tx->spool.size, &n);

	if (body_only)
		off = header_end(p, n);
	lua_pushlstring(L, p + off, n - off);
	free(p);
	return 1;
}

static int
lb_message_body(lua_State *L)
{
	return read_all(L, true);
}

static int
lb_message_read(lua_State *L)
{
	return read_all(L, false);
}

static int
lb_message_index(lua_State *L)
{
	struct smtp_tx *tx = check_message(L, 1);
	const char *k = luaL_checkstring(L, 2);

	if (strcmp(k, "header") == 0)
		lua_pushcfunction(L, lb_message_header);
	else if (strcmp(k, "headers") == 0)
		lua_pushcfunction(L, lb_message_headers);
	else if (strcmp(k, "body") == 0)
		lua_pushcfunction(L, lb_message_body);
	else if (strcmp(k, "read") == 0)
		lua_pushcfunction(L, lb_message_read);
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

void
lb_message_open(lua_State *L)
{
	luaL_newmetatable(L, MESSAGE_MT);
	lua_pushcfunction(L, lb_message_index);
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "luasmtpd.message");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}
