/*
 * lua_dns_policy.c — the policy checks of luasmtpd.dns, built on its
 * lookups (lua_dns.h):
 *
 *   dns.iprev(ip [, { timeout = s }])
 *       -> { result = "pass" | "fail" | "temperror" | "permerror",
 *            names = { PTR names }, name = the verified name or nil,
 *            error = "timeout" | "servfail" | ... (temperror only) }
 *   dns.dnsbl(ip, zone [, { timeout = s }])
 *       -> listed, { codes = { "127.0.0.2", ... }, text = reason or nil }
 *        | nil, err
 *   dns.helo_check(name, ip [, { timeout = s }])   or   dns.helo_check(s)
 *       -> { result = "match" | "mismatch" | "unresolvable" | "not_fqdn"
 *                   | "invalid" | "foreign_literal",
 *            fqdn = bool, literal = bool, addresses = { ... } }
 *        | nil, err
 *
 * iprev (RFC 8601 §3, "FCrDNS"): the PTR names of ip, then the addresses
 * (A for IPv4, AAAA for IPv6) of the first LDNS_IPREV_NAMES_MAX of them,
 * in parallel.  pass: a name has ip among its addresses (name is the
 * first such name in PTR order); permerror: no PTR (NXDOMAIN or NODATA);
 * fail: no name leads back to ip; temperror: a lookup failed (SERVFAIL,
 * bogus, timeout) and no name passed.  It never returns nil, err.
 *
 * dnsbl (RFC 5782 §2.1, §2.4; DNSWLs work the same way): the A records of
 * the reversed address under zone.  listed is true when one is in
 * 127.0.0.0/8 (RFC 5782 §2.1; an answer outside it, as from a resolver
 * that rewrites NXDOMAIN, is reported in codes but does not list); then
 * the TXT record at the same name gives text, cut to LDNS_DNSBL_TEXT_MAX
 * printable octets (other octets become '?'), so it may go into a reply.
 * NXDOMAIN or NODATA: false, { codes = {} }.  A failed lookup: nil, err.
 *
 * helo_check: what a HELO/EHLO name says about the client (RFC 5321
 * §4.1.1.1, §4.1.3, §2.3.5).  No DNS is asked unless the name is a
 * syntactically valid domain of two labels or more:
 *   invalid          empty, not a domain or an address literal, or a
 *                    bare address without brackets
 *   not_fqdn         one label ("localhost", "PC-123")
 *   foreign_literal  an address literal that is not the client's
 *   match            the client's own literal, or a name with the
 *                    client's address among its A/AAAA records
 *   mismatch         a name whose addresses do not include the client's
 *   unresolvable     a name without A or AAAA records (NXDOMAIN/NODATA)
 * A lookup failure with no match: nil, err.  The session form reads
 * s.helo and s.remote_ip (raises before HELO).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "lua/lua_dns.h"
#include "lua/lua_vm.h"
#include "task/task.h"
#include "util/limits.h"

static const struct task_op_ops iprev_ops = { .name = "dns.iprev",
    .push = ldns_op_push, .cancel = ldns_op_cancel, .free = ldns_op_free };
static const struct task_op_ops dnsbl_ops = { .name = "dns.dnsbl",
    .push = ldns_op_push, .cancel = ldns_op_cancel, .free = ldns_op_free };
static const struct task_op_ops helo_ops = { .name = "dns.helo_check",
    .push = ldns_op_push, .cancel = ldns_op_cancel, .free = ldns_op_free };

/* A list of the answers (strings) of slot i, appended to the table on top. */
static void
append_answers(lua_State *L, const struct dns_result *r, int *n)
{
	for (size_t k = 0; r != NULL && k < r->nrr; k++) {
		const struct dns_rr *rr = &r->rr[k];

		if (rr->type == DNS_T_A || rr->type == DNS_T_AAAA)
			lua_pushstring(L, rr->addr.text);
		else if (rr->type == DNS_T_PTR)
			lua_pushstring(L, rr->ptr.name);
		else
			continue;
		lua_rawseti(L, -2, ++*n);
	}
}

/* ---- iprev ---- */

static void
iprev_step(struct ldns_job *j)
{
	const struct dns_result *ptr = j->slot[0].res;

	if (j->stage == 0) {
		if (ptr->status == DNS_OK) {
			size_t n = ptr->nrr < LDNS_IPREV_NAMES_MAX ? ptr->nrr :
			    LDNS_IPREV_NAMES_MAX;

			j->stage = 1;
			for (size_t i = 0; i < n; i++)
				ldns_ask(j, ptr->rr[i].ptr.name, j->rrtype);
			if (n > 0)
				return;
		}
		if (ldns_absent(ptr) || ptr->status == DNS_OK) {
			j->result = "permerror";
		} else {
			j->result = "temperror";
			j->error = ldns_failure(ptr);
		}
		ldns_finish(j);
		return;
	}
	j->result = "fail";
	for (unsigned i = 1; i < j->nslots; i++) {
		const struct dns_result *r = j->slot[i].res;

		if (ldns_has_addr(r, j->family, j->addr)) {
			j->result = "pass";
			j->found = (int)i;
			j->error = NULL;
			break;
		}
		if (ldns_failure(r) != NULL && j->error == NULL) {
			j->result = "temperror";
			j->error = ldns_failure(r);
		}
	}
	ldns_finish(j);
}

static int
iprev_push(lua_State *L, struct ldns_job *j)
{
	int n = 0;

	lua_createtable(L, 0, 4);
	lua_pushstring(L, j->result);
	lua_setfield(L, -2, "result");
	lua_newtable(L);
	if (j->stage == 1)
		append_answers(L, j->slot[0].res, &n);
	lua_setfield(L, -2, "names");
	if (j->found > 0) {
		lua_pushstring(L, j->slot[0].res->rr[j->found - 1].ptr.name);
		lua_setfield(L, -2, "name");
	}
	if (j->error != NULL) {
		lua_pushstring(L, j->error);
		lua_setfield(L, -2, "error");
	}
	return 1;
}

/***
 * dns.iprev(ip [, { timeout = s }]) -> { result =, names =, name = }
 */
static int
lb_dns_iprev(lua_State *L)
{
	char text[INET6_ADDRSTRLEN], name[DNS_PTR_NAME_MAX];
	unsigned char addr[16];
	int family;
	double timeout;
	struct ldns_job *j;

	ldns_check_ip(L, 1, &family, addr, text, sizeof(text));
	timeout = ldns_opt_timeout(L, 2, "dns.iprev");
	if (dns_ptr_name(text, name, sizeof(name)) != 0)
		return luaL_argerror(L, 1, "no PTR name for this address");
	j = ldns_begin(L, &iprev_ops, timeout, iprev_step, iprev_push);
	j->family = family;
	memcpy(j->addr, addr, sizeof(addr));
	j->rrtype = family == AF_INET ? DNS_T_A : DNS_T_AAAA;
	ldns_ask(j, name, DNS_T_PTR);
	return task_op_yield(L, j->op);
}

/* ---- dnsbl ---- */

static void
dnsbl_step(struct ldns_job *j)
{
	const struct dns_result *r = j->slot[j->nslots - 1].res;

	if (j->stage == 0) {
		if (ldns_failure(r) != NULL) {
			j->error = ldns_failure(r);
		} else {
			for (size_t i = 0; i < r->nrr; i++)
				if (r->rr[i].type == DNS_T_A &&
				    r->rr[i].addr.addr[0] == 127)
					j->flag = true;
			if (j->flag) {
				j->stage = 1;
				ldns_ask(j, j->name, DNS_T_TXT);
				return;
			}
		}
		ldns_finish(j);
		return;
	}
	/* The reason is optional: a failed TXT lookup leaves it out. */
	if (r->status == DNS_OK && r->nrr > 0 && r->rr[0].type == DNS_T_TXT) {
		size_t i;

		for (i = 0; i < r->rr[0].txt.len && i < LDNS_DNSBL_TEXT_MAX;
		    i++) {
			unsigned char c = (unsigned char)r->rr[0].txt.text[i];

			j->text[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
		j->text[i] = '\0';
		j->has_text = true;
	}
	ldns_finish(j);
}

static int
dnsbl_push(lua_State *L, struct ldns_job *j)
{
	int n = 0;

	if (j->error != NULL) {
		lua_pushnil(L);
		if (strcmp(j->error, "error") == 0)
			lua_pushfstring(L, "error: %s", j->slot[0].res->error);
		else
			lua_pushstring(L, j->error);
		return 2;
	}
	lua_pushboolean(L, j->flag);
	lua_createtable(L, 0, 2);
	lua_newtable(L);
	append_answers(L, j->slot[0].res, &n);
	lua_setfield(L, -2, "codes");
	if (j->has_text) {
		lua_pushstring(L, j->text);
		lua_setfield(L, -2, "text");
	}
	return 2;
}

/***
 * dns.dnsbl(ip, zone [, { timeout = s }]) -> listed, { codes =, text = }
 */
static int
lb_dns_dnsbl(lua_State *L)
{
	char text[INET6_ADDRSTRLEN];
	unsigned char addr[16];
	const char *zone;
	int family;
	double timeout;
	struct ldns_job *j;
	char name[DNS_NAME_MAX];

	ldns_check_ip(L, 1, &family, addr, text, sizeof(text));
	zone = ldns_check_name(L, 2, SMTP_DOMAIN_MAX);
	timeout = ldns_opt_timeout(L, 3, "dns.dnsbl");
	if (dns_dnsbl_name(text, zone, name, sizeof(name)) != 0)
		return luaL_argerror(L, 2, "zone too long for a DNSBL name");
	j = ldns_begin(L, &dnsbl_ops, timeout, dnsbl_step, dnsbl_push);
	snprintf(j->name, sizeof(j->name), "%s", name);
	ldns_ask(j, name, DNS_T_A);
	return task_op_yield(L, j->op);
}

/* ---- helo_check ---- */

/* RFC 5321 §4.1.2 Domain: LDH labels of 1-63, 253 octets, an optional
 * final dot.  Returns the number of labels, 0 if not a domain, -1 if it
 * is all digits and dots (an address without brackets). */
static int
domain_labels(const char *s)
{
	size_t len = strlen(s), label = 0;
	int labels = 0;
	bool digits_only = true;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			labels++;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-') {
			if ((label == 0 && c == '-') || ++label > 63)
				return 0;
			if (c < '0' || c > '9')
				digits_only = false;
		} else {
			return 0;
		}
	}
	return digits_only ? -1 : labels;
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3) into family and
 * addr; false if not a literal of either kind. */
static bool
parse_literal(const char *s, int *family, unsigned char addr[16])
{
	char inner[INET6_ADDRSTRLEN + 8];
	size_t len = strlen(s);

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' ||
	    len - 2 >= sizeof(inner))
		return false;
	memcpy(inner, s + 1, len - 2);
	inner[len - 2] = '\0';
	if (strncasecmp(inner, "IPv6:", 5) == 0) {
		*family = AF_INET6;
		if (inet_pton(AF_INET6, inner + 5, addr) != 1)
			return false;
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)addr)) {
			memmove(addr, addr + 12, 4);
			*family = AF_INET;
		}
		return true;
	}
	*family = AF_INET;
	return inet_pton(AF_INET, inner, addr) == 1;
}

static void
helo_step(struct ldns_job *j)
{
	bool any = false;

	j->result = "unresolvable";
	for (unsigned i = 0; i < j->nslots; i++) {
		const struct dns_result *r = j->slot[i].res;

		if (ldns_has_addr(r, j->family, j->addr)) {
			j->result = "match";
			j->error = NULL;
			ldns_finish(j);
			return;
		}
		if (ldns_failure(r) != NULL)
			j->error = ldns_failure(r);
		else if (r->status == DNS_OK)
			any = true;
	}
	if (any)
		j->result = "mismatch";
	ldns_finish(j);
}

static int
helo_push(lua_State *L, struct ldns_job *j)
{
	int n = 0;

	if (j->error != NULL) {
		lua_pushnil(L);
		lua_pushstring(L, j->error);
		return 2;
	}
	lua_createtable(L, 0, 4);
	lua_pushstring(L, j->result);
	lua_setfield(L, -2, "result");
	lua_pushboolean(L, j->flag);
	lua_setfield(L, -2, "fqdn");
	lua_pushboolean(L, j->literal);
	lua_setfield(L, -2, "literal");
	lua_newtable(L);
	for (unsigned i = 0; i < j->nslots; i++)
		append_answers(L, j->slot[i].res, &n);
	lua_setfield(L, -2, "addresses");
	return 1;
}

/***
 * dns.helo_check(name, ip [, opts]) | dns.helo_check(s [, opts])
 *   -> { result =, fqdn =, literal =, addresses = } | nil, err   (yields)
 */
static int
lb_dns_helo_check(lua_State *L)
{
	char text[INET6_ADDRSTRLEN];
	unsigned char addr[16], lit[16];
	int family, lfamily, labels;
	const char *helo;
	size_t len;
	double timeout;
	struct ldns_job *j;

	if (lua_type(L, 1) == LUA_TUSERDATA) {
		/* A session: its fields (raises if it is closed). */
		lua_settop(L, 2);
		lua_getfield(L, 1, "helo");
		lua_getfield(L, 1, "remote_ip");
		if (lua_type(L, 3) != LUA_TSTRING)
			return luaL_error(L, "dns.helo_check: the session has "
			    "no HELO name yet");
		lua_replace(L, 1);	/* ip */
		lua_insert(L, 1);	/* helo, ip, opts */
	}
	helo = luaL_checklstring(L, 1, &len);
	ldns_check_ip(L, 2, &family, addr, text, sizeof(text));
	timeout = ldns_opt_timeout(L, 3, "dns.helo_check");
	if (len > SMTP_HELO_MAX || strlen(helo) != len)
		return luaL_argerror(L, 1, lua_pushfstring(L, "a HELO name of "
		    "at most %d octets without NUL expected", SMTP_HELO_MAX));
	j = ldns_begin(L, &helo_ops, timeout, helo_step, helo_push);
	j->family = family;
	memcpy(j->addr, addr, sizeof(addr));
	if (helo[0] == '[') {
		j->literal = true;
		if (!parse_literal(helo, &lfamily, lit))
			j->result = "invalid";
		else if (lfamily == family && memcmp(lit, addr,
		    family == AF_INET ? 4 : 16) == 0)
			j->result = "match";
		else
			j->result = "foreign_literal";
	} else if ((labels = domain_labels(helo)) <= 0) {
		j->result = "invalid";	/* includes a bare address */
	} else if (labels == 1) {
		j->result = "not_fqdn";
	} else {
		j->flag = true;
		snprintf(j->name, sizeof(j->name), "%s", helo);
		ldns_ask(j, helo, DNS_T_A);
		ldns_ask(j, helo, DNS_T_AAAA);
		return task_op_yield(L, j->op);
	}
	ldns_finish(j);		/* no lookup: done before the yield */
	return task_op_yield(L, j->op);
}

void
ldns_register_policy(lua_State *L)
{
	lb_task_wrap(L, lb_dns_iprev, "dns.iprev");
	lua_setfield(L, -2, "iprev");
	lb_task_wrap(L, lb_dns_dnsbl, "dns.dnsbl");
	lua_setfield(L, -2, "dnsbl");
	lb_task_wrap(L, lb_dns_helo_check, "dns.helo_check");
	lua_setfield(L, -2, "helo_check");
}
