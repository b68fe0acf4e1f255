/*
 * lua_dns.c — require "luasmtpd.dns": DNS lookups from hooks through the
 * server's resolver (src/dns: libunbound on the loop, validating, caching).
 *
 *   dns.query(name, type [, { timeout = s }])
 *       -> { status = "ok" | "nxdomain" | "nodata" | "servfail",
 *            rcode = n, secure = bool, bogus = bool, why_bogus = text|nil,
 *            ttl = n, truncated = bool, name = asked, canonname = name|nil,
 *            answers = { ... } }                       | nil, err
 *   dns.a(name), dns.aaaa(name), dns.txt(name), dns.ptr(ip), dns.mx(name),
 *   dns.tlsa(name)  [, { timeout = s }]
 *       -> list, secure                                 | nil, err
 *
 * type is "A", "AAAA", "MX", "TXT", "PTR", "TLSA", "CNAME", "NS", "SOA",
 * "SRV" or a number.  Answers per type: an address or a name (A, AAAA,
 * PTR, CNAME, NS) as a string; MX { pref =, host = }; TXT its strings
 * joined (RFC 7208 §3.3 style); TLSA { usage =, selector =, mtype =,
 * data = hex }; any other type the record data as a binary string.
 * dns.mx sorts by preference (equal ones keep the server's order) and
 * marks a null MX (RFC 7505, "0 .") with list.null = true.  For the list
 * functions NXDOMAIN and NODATA are an empty list, not an error.
 *
 * Every call yields the hook (other sessions go on) and has a timeout:
 * the option's, else dns.timeout of the config (5 s), at most 60 s.
 * Misuse (a wrong type, a name too long, an unknown option, a call
 * outside a hook) raises; run-time failures return nil and "timeout",
 * "servfail", "bogus" (DNSSEC validation failed) or "error: <why>".
 * The policy checks (iprev, dnsbl, helo_check) are in lua_dns_policy.c.
 *
 * SECURITY: names and TXT data come from the network: they are bounded
 * (dns.h) but not printable; escape them before a log line or a reply.
 * Only .secure (and the list functions' second result) says that the
 * data was DNSSEC-validated.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "lua/lua_deliver.h"
#include "lua/lua_dns.h"
#include "lua/lua_vm.h"
#include "server.h"
#include "task/task.h"
#include "util/xmalloc.h"

/* ---- arguments ---- */

double
ldns_opt_timeout(lua_State *L, int idx, const char *what)
{
	double t = 0;

	if (lua_isnoneornil(L, idx))
		return 0;
	if (!lua_istable(L, idx))
		luaL_error(L, "%s: options must be a table { timeout = seconds }",
		    what);
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING ||
		    strcmp(lua_tostring(L, -1), "timeout") != 0)
			luaL_error(L, "%s: unknown option '%s'", what,
			    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) :
			    "?");
	}
	lb_rawfield(L, idx, "timeout");
	if (!lua_isnil(L, -1)) {
		t = lua_tonumber(L, -1);
		if (lua_type(L, -1) != LUA_TNUMBER || !(t > 0) ||
		    t > DNS_TIMEOUT_MAX)
			luaL_error(L, "%s: timeout must be a number of seconds "
			    "(0 < timeout <= %d)", what, (int)DNS_TIMEOUT_MAX);
	}
	lua_pop(L, 1);
	return t;
}

const char *
ldns_check_name(lua_State *L, int idx, size_t max)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);

	if (len == 0 || len > max || strlen(s) != len)
		luaL_argerror(L, idx, lua_pushfstring(L, "a name of 1 to %d "
		    "octets without NUL expected", (int)max));
	return s;
}

void
ldns_check_ip(lua_State *L, int idx, int *family, unsigned char addr[16],
    char *text, size_t textlen)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);

	if (len < INET6_ADDRSTRLEN && strlen(s) == len &&
	    inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
	} else if (len < INET6_ADDRSTRLEN && strlen(s) == len &&
	    inet_pton(AF_INET6, s, addr) == 1) {
		*family = AF_INET6;
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)addr)) {
			/* The client of a dual-stack socket is an IPv4 one. */
			memmove(addr, addr + 12, 4);
			*family = AF_INET;
		}
	} else {
		luaL_argerror(L, idx, "an IPv4 or IPv6 address expected");
	}
	inet_ntop(*family, addr, text, (socklen_t)textlen);
}

/* ---- the job: slots, steps, the operation ---- */

static void
slot_answer(void *arg, const struct dns_result *res)
{
	struct ldns_slot *s = arg;
	struct ldns_job *j = s->job;

	s->q = NULL;
	s->res = dns_result_dup(res);
	if (--j->pending == 0)
		j->step(j);	/* may finish: j may be gone after */
}

void
ldns_ask(struct ldns_job *j, const char *name, int rrtype)
{
	struct ldns_slot *s;
	double left = j->deadline - ev_now(server.loop);

	if (j->nslots == LDNS_QUERIES_MAX)
		abort();	/* a bug of a step: bounded by construction */
	s = &j->slot[j->nslots++];
	s->job = j;
	j->pending++;
	s->q = dns_query(server.dns, name, rrtype, left > LDNS_TIMEOUT_MIN ?
	    left : LDNS_TIMEOUT_MIN, slot_answer, s);
}

void
ldns_finish(struct ldns_job *j)
{
	task_op_complete(j->op);
}

struct ldns_job *
ldns_begin(lua_State *L, const struct task_op_ops *ops, double timeout,
    void (*step)(struct ldns_job *), int (*push)(lua_State *, struct ldns_job *))
{
	struct task_op *op = task_op_begin(L, ops, NULL, 0);	/* may raise */
	struct ldns_job *j;

	if (server.dns == NULL)		/* only before main() made it */
		luaL_error(L, "%s: the resolver is not running", ops->name);
	if (!(timeout > 0))
		timeout = server.cfg->dns.timeout > 0 ? server.cfg->dns.timeout :
		    DNS_TIMEOUT_DEFAULT;
	j = xcalloc(1, sizeof(*j));
	j->op = op;
	op->data = j;
	j->deadline = ev_now(server.loop) + timeout;
	j->step = step;
	j->push = push;
	j->found = -1;
	return j;
}

void
ldns_op_cancel(struct task_op *op)
{
	struct ldns_job *j = op->data;

	if (j == NULL)
		return;
	for (unsigned i = 0; i < j->nslots; i++)
		if (j->slot[i].q != NULL) {
			dns_cancel(j->slot[i].q);
			j->slot[i].q = NULL;
		}
	j->pending = 0;
}

void
ldns_op_free(struct task_op *op)
{
	struct ldns_job *j = op->data;

	if (j == NULL)
		return;
	ldns_op_cancel(op);
	for (unsigned i = 0; i < j->nslots; i++)
		dns_result_free(j->slot[i].res);
	free(j);
	op->data = NULL;
}

int
ldns_op_push(lua_State *L, struct task_op *op)
{
	struct ldns_job *j = op->data;

	return j->push(L, j);
}

const char *
ldns_failure(const struct dns_result *r)
{
	switch (r->status) {
	case DNS_TIMEOUT:	return "timeout";
	case DNS_SERVFAIL:	return r->bogus ? "bogus" : "servfail";
	case DNS_ERROR:		return "error";
	default:		return NULL;
	}
}

bool
ldns_absent(const struct dns_result *r)
{
	return r->status == DNS_NXDOMAIN || r->status == DNS_NODATA;
}

bool
ldns_has_addr(const struct dns_result *r, int family, const unsigned char *addr)
{
	for (size_t i = 0; i < r->nrr; i++) {
		const struct dns_rr *rr = &r->rr[i];

		if ((rr->type == DNS_T_A || rr->type == DNS_T_AAAA) &&
		    rr->addr.family == family && memcmp(rr->addr.addr, addr,
		    family == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}

/* The step of a single lookup: its answer is all there is. */
static void
step_done(struct ldns_job *j)
{
	ldns_finish(j);
}

/* ---- results ---- */

static void
push_hex(lua_State *L, const unsigned char *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	for (size_t i = 0; i < len; i++) {
		luaL_addchar(&b, hex[p[i] >> 4]);
		luaL_addchar(&b, hex[p[i] & 0xf]);
	}
	luaL_pushresult(&b);
}

static void
push_rr(lua_State *L, const struct dns_rr *rr)
{
	switch (rr->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		lua_pushstring(L, rr->addr.text);
		break;
	case DNS_T_MX:
		lua_createtable(L, 0, 2);
		lua_pushinteger(L, rr->mx.preference);
		lua_setfield(L, -2, "pref");
		lua_pushstring(L, rr->mx.exchange);
		lua_setfield(L, -2, "host");
		break;
	case DNS_T_TXT:
		lua_pushlstring(L, rr->txt.text, rr->txt.len);
		break;
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		lua_pushstring(L, rr->ptr.name);
		break;
	case DNS_T_TLSA:
		lua_createtable(L, 0, 4);
		lua_pushinteger(L, rr->tlsa.usage);
		lua_setfield(L, -2, "usage");
		lua_pushinteger(L, rr->tlsa.selector);
		lua_setfield(L, -2, "selector");
		lua_pushinteger(L, rr->tlsa.mtype);
		lua_setfield(L, -2, "mtype");
		push_hex(L, rr->tlsa.data, rr->tlsa.len);
		lua_setfield(L, -2, "data");
		break;
	default:
		lua_pushlstring(L, (const char *)rr->raw.data, rr->raw.len);
		break;
	}
}

/* nil, "timeout" | "error: why" for what has no result table. */
static int
push_error(lua_State *L, const struct dns_result *r)
{
	lua_pushnil(L);
	if (r->status == DNS_ERROR)
		lua_pushfstring(L, "error: %s", r->error[0] ? r->error :
		    "resolver error");
	else
		lua_pushstring(L, ldns_failure(r));
	return 2;
}

static int
push_query(lua_State *L, struct ldns_job *j)
{
	static const char *status[] = {
		[DNS_OK] = "ok", [DNS_NXDOMAIN] = "nxdomain",
		[DNS_NODATA] = "nodata", [DNS_SERVFAIL] = "servfail",
	};
	const struct dns_result *r = j->slot[0].res;

	if (r->status == DNS_TIMEOUT || r->status == DNS_ERROR)
		return push_error(L, r);
	lua_createtable(L, 0, 11);
	lua_pushstring(L, status[r->status]);
	lua_setfield(L, -2, "status");
	lua_pushinteger(L, r->rcode);
	lua_setfield(L, -2, "rcode");
	lua_pushboolean(L, r->secure);
	lua_setfield(L, -2, "secure");
	lua_pushboolean(L, r->bogus);
	lua_setfield(L, -2, "bogus");
	if (r->bogus && r->why_bogus[0] != '\0') {
		lua_pushstring(L, r->why_bogus);
		lua_setfield(L, -2, "why_bogus");
	}
	lua_pushinteger(L, (lua_Integer)r->ttl);
	lua_setfield(L, -2, "ttl");
	lua_pushboolean(L, r->truncated);
	lua_setfield(L, -2, "truncated");
	lua_pushstring(L, r->qname != NULL ? r->qname : j->name);
	lua_setfield(L, -2, "name");
	if (r->canonname != NULL) {
		lua_pushstring(L, r->canonname);
		lua_setfield(L, -2, "canonname");
	}
	lua_createtable(L, (int)r->nrr, 0);
	for (size_t i = 0; i < r->nrr; i++) {
		push_rr(L, &r->rr[i]);
		lua_rawseti(L, -2, (int)i + 1);
	}
	lua_setfield(L, -2, "answers");
	return 1;
}

/* list, secure; MX sorted by preference, a null MX flagged. */
static int
push_list(lua_State *L, struct ldns_job *j)
{
	const struct dns_result *r = j->slot[0].res;
	size_t order[DNS_ANSWERS_MAX];
	size_t n = r->nrr < DNS_ANSWERS_MAX ? r->nrr : DNS_ANSWERS_MAX;

	if (ldns_failure(r) != NULL)
		return push_error(L, r);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	if (j->rrtype == DNS_T_MX) {
		/* Insertion sort: stable, and n is at most 64. */
		for (size_t i = 1; i < n; i++) {
			size_t k = order[i], p = i;

			while (p > 0 && r->rr[order[p - 1]].mx.preference >
			    r->rr[k].mx.preference) {
				order[p] = order[p - 1];
				p--;
			}
			order[p] = k;
		}
	}
	lua_createtable(L, (int)n, 1);
	for (size_t i = 0; i < n; i++) {
		push_rr(L, &r->rr[order[i]]);
		lua_rawseti(L, -2, (int)i + 1);
	}
	/* RFC 7505 §3: a null MX is the only MX record, "0 .". */
	if (j->rrtype == DNS_T_MX && n == 1 && r->rr[0].mx.preference == 0 &&
	    strcmp(r->rr[0].mx.exchange, ".") == 0) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "null");
	}
	lua_pushboolean(L, r->secure);
	return 2;
}

/* ---- the bindings ---- */

static const struct {
	const char	*name;
	int		 type;
} rr_types[] = {
	{ "A", DNS_T_A }, { "NS", DNS_T_NS }, { "CNAME", DNS_T_CNAME },
	{ "SOA", DNS_T_SOA }, { "PTR", DNS_T_PTR }, { "MX", DNS_T_MX },
	{ "TXT", DNS_T_TXT }, { "AAAA", DNS_T_AAAA }, { "SRV", 33 },
	{ "TLSA", DNS_T_TLSA },
};

/* RFC 6895 §3.1: OPT (41) and the QTYPEs 249-255 (TKEY ... ANY) are not
 * record types to look up. */
static int
check_type(lua_State *L, int idx)
{
	if (lua_type(L, idx) == LUA_TNUMBER) {
		lua_Number t = lua_tonumber(L, idx);

		if (t != (int)t || t < 1 || t > 65535 || t == 41 ||
		    (t >= 249 && t <= 255))
			luaL_argerror(L, idx, "a record type (1-65535, not a "
			    "meta type) expected");
		return (int)t;
	}
	if (lua_type(L, idx) == LUA_TSTRING) {
		const char *s = lua_tostring(L, idx);

		for (size_t i = 0; i < sizeof(rr_types) / sizeof(rr_types[0]);
		    i++)
			if (strcasecmp(s, rr_types[i].name) == 0)
				return rr_types[i].type;
	}
	return luaL_argerror(L, idx, "\"A\", \"AAAA\", \"MX\", \"TXT\", "
	    "\"PTR\", \"TLSA\", \"CNAME\", \"NS\", \"SOA\", \"SRV\" or a number "
	    "expected");
}

#define LDNS_OPS(var, lname) \
	static const struct task_op_ops var = { .name = lname, \
	    .push = ldns_op_push, .cancel = ldns_op_cancel, \
	    .free = ldns_op_free }

LDNS_OPS(query_ops, "dns.query");
LDNS_OPS(a_ops, "dns.a");
LDNS_OPS(aaaa_ops, "dns.aaaa");
LDNS_OPS(mx_ops, "dns.mx");
LDNS_OPS(txt_ops, "dns.txt");
LDNS_OPS(ptr_ops, "dns.ptr");
LDNS_OPS(tlsa_ops, "dns.tlsa");

/* One query of name/type; the checks are done. */
static int
lookup(lua_State *L, const struct task_op_ops *ops, const char *name,
    int type, double timeout, int (*push)(lua_State *, struct ldns_job *))
{
	struct ldns_job *j = ldns_begin(L, ops, timeout, step_done, push);

	j->rrtype = type;
	snprintf(j->name, sizeof(j->name), "%s", name);
	ldns_ask(j, name, type);
	return task_op_yield(L, j->op);
}

/***
 * dns.query(name, type [, { timeout = s }]) -> result | nil, err  (yields)
 */
static int
lb_dns_query(lua_State *L)
{
	const char *name = ldns_check_name(L, 1, DNS_NAME_MAX - 1);
	int type = check_type(L, 2);
	double timeout = ldns_opt_timeout(L, 3, "dns.query");

	return lookup(L, &query_ops, name, type, timeout, push_query);
}

static int
list_lookup(lua_State *L, const struct task_op_ops *ops, int type)
{
	const char *name = ldns_check_name(L, 1, DNS_NAME_MAX - 1);
	double timeout = ldns_opt_timeout(L, 2, ops->name);

	return lookup(L, ops, name, type, timeout, push_list);
}

/*** dns.a(name [, opts]) -> { "192.0.2.1", ... }, secure | nil, err */
static int
lb_dns_a(lua_State *L)
{
	return list_lookup(L, &a_ops, DNS_T_A);
}

/*** dns.aaaa(name [, opts]) -> { "2001:db8::1", ... }, secure | nil, err */
static int
lb_dns_aaaa(lua_State *L)
{
	return list_lookup(L, &aaaa_ops, DNS_T_AAAA);
}

/*** dns.mx(name [, opts]) -> { { pref =, host = }, ..., null = bool } ... */
static int
lb_dns_mx(lua_State *L)
{
	return list_lookup(L, &mx_ops, DNS_T_MX);
}

/*** dns.txt(name [, opts]) -> { "joined strings", ... }, secure | nil, err */
static int
lb_dns_txt(lua_State *L)
{
	return list_lookup(L, &txt_ops, DNS_T_TXT);
}

/*** dns.tlsa(name [, opts]) -> { { usage, selector, mtype, data } }, secure */
static int
lb_dns_tlsa(lua_State *L)
{
	return list_lookup(L, &tlsa_ops, DNS_T_TLSA);
}

/*** dns.ptr(ip [, opts]) -> { "name.", ... }, secure | nil, err */
static int
lb_dns_ptr(lua_State *L)
{
	char text[INET6_ADDRSTRLEN], name[DNS_PTR_NAME_MAX];
	unsigned char addr[16];
	int family;
	double timeout;

	ldns_check_ip(L, 1, &family, addr, text, sizeof(text));
	timeout = ldns_opt_timeout(L, 2, "dns.ptr");
	if (dns_ptr_name(text, name, sizeof(name)) != 0)
		return luaL_argerror(L, 1, "no PTR name for this address");
	return lookup(L, &ptr_ops, name, DNS_T_PTR, timeout, push_list);
}

int
luaopen_luasmtpd_dns(lua_State *L)
{
	static const struct {
		const char	*name;
		lua_CFunction	 start;
	} fns[] = {
		{ "query", lb_dns_query }, { "a", lb_dns_a },
		{ "aaaa", lb_dns_aaaa }, { "mx", lb_dns_mx },
		{ "txt", lb_dns_txt }, { "ptr", lb_dns_ptr },
		{ "tlsa", lb_dns_tlsa },
	};
	char full[32];

	lua_newtable(L);
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		snprintf(full, sizeof(full), "dns.%s", fns[i].name);
		lb_task_wrap(L, fns[i].start, full);
		lua_setfield(L, -2, fns[i].name);
	}
	ldns_register_policy(L);
	return 1;
}
