/*
 * lua_dns.h — shared by the bindings of luasmtpd.dns: lookups (lua_dns.c)
 * and the policy checks built on them (lua_dns_policy.c).
 *
 * A call of the module is one operation of the task layer (task.h) that
 * may need several queries, in parallel or one after the other (iprev:
 * the PTR, then each name's addresses).  Its job keeps a slot per query:
 * the pending handle, then a copy of the answer.  When no query is pending
 * any more the job's step() runs (on the loop, from the resolver's
 * callback): it asks more (ldns_ask) or ends the operation (ldns_finish);
 * push() builds the Lua results at collect, inside the hook.  Every query
 * of a call gets what is left of the call's timeout, so a call ends by
 * its deadline whatever it asks.
 *
 * Ownership: the job belongs to its operation and is freed by the
 * operation's free(); cancel() cancels every pending query (the resolver
 * then never calls back), so no answer reaches a freed job.
 */
#ifndef LUASMTPD_LUA_DNS_H
#define LUASMTPD_LUA_DNS_H

#include <netinet/in.h>
#include <stdbool.h>

#include <lua.h>

#include "dns/dns.h"

struct task_op;
struct task_op_ops;

/* FCrDNS: PTR names whose addresses are looked up (Sendmail, Postfix and
 * rspamd all stop at about ten). */
#define LDNS_IPREV_NAMES_MAX	10
/* Queries of one call: iprev's PTR and one per name. */
#define LDNS_QUERIES_MAX	(1 + LDNS_IPREV_NAMES_MAX)
/* A query asked after the deadline still gets this long (it then times
 * out at once, through the resolver, like any other). */
#define LDNS_TIMEOUT_MIN	0.001
/* A DNSBL's TXT reason as returned: printable ASCII, cut to fit a reply. */
#define LDNS_DNSBL_TEXT_MAX	200

struct ldns_job;

struct ldns_slot {
	struct ldns_job		*job;
	struct dns_query	*q;		/* pending, else NULL */
	struct dns_result	*res;		/* a copy, once answered */
};

struct ldns_job {
	struct task_op		*op;
	double			 deadline;	/* ev_now() + the timeout */
	unsigned		 nslots;
	unsigned		 pending;
	struct ldns_slot	 slot[LDNS_QUERIES_MAX];
	/* No query pending: ask more or ldns_finish().  Loop thread. */
	void			(*step)(struct ldns_job *);
	/* Inside the hook, at collect: push the results, return how many. */
	int			(*push)(lua_State *, struct ldns_job *);
	int			 stage;		/* the step's own */
	/* What the call is about, for step() and push(). */
	int			 rrtype;
	int			 family;	/* of addr: AF_INET or AF_INET6 */
	unsigned char		 addr[16];
	char			 name[DNS_NAME_MAX];
	/* Outcomes set by step(). */
	const char		*result;	/* "pass", "match", ... */
	const char		*error;		/* "timeout", "servfail", ... */
	int			 found;		/* a slot index, or -1 */
	bool			 flag;		/* fqdn, listed, literal... */
	bool			 literal;
	bool			 has_text;	/* text is set */
	char			 text[LDNS_DNSBL_TEXT_MAX + 1];
};

/* Option table at idx (nil or { timeout = s }): the timeout, or 0 for
 * the resolver's default.  Raises on misuse (what names the call). */
double		 ldns_opt_timeout(lua_State *L, int idx, const char *what);
/* The string argument at idx: 1..max octets without NUL, or raise. */
const char	*ldns_check_name(lua_State *L, int idx, size_t max);
/* The address argument at idx ("192.0.2.1", "2001:db8::1", an IPv4-mapped
 * IPv6 address counts as IPv4): its family and octets; raises if none. */
void		 ldns_check_ip(lua_State *L, int idx, int *family,
		    unsigned char addr[16], char *text, size_t textlen);

/*
 * Begin the operation (raises outside a hook: call it after every check)
 * and its job, with timeout (0: the resolver's default) for the whole
 * call.  step and push as above.
 */
struct ldns_job	*ldns_begin(lua_State *L, const struct task_op_ops *,
		    double timeout, void (*step)(struct ldns_job *),
		    int (*push)(lua_State *, struct ldns_job *));
/* Ask name/rrtype in the next slot, with what is left of the timeout. */
void		 ldns_ask(struct ldns_job *, const char *name, int rrtype);
/* End the operation: the last thing step() (or the binding) does, since
 * the job may be freed inside it. */
void		 ldns_finish(struct ldns_job *);
/* The ops' cancel and free, and the push that calls job->push. */
void		 ldns_op_cancel(struct task_op *);
void		 ldns_op_free(struct task_op *);
int		 ldns_op_push(lua_State *, struct task_op *);

/* "timeout", "servfail", "bogus", "error": why a lookup gave no data. */
const char	*ldns_failure(const struct dns_result *);
/* True for NXDOMAIN and NODATA: the name or the records do not exist. */
bool		 ldns_absent(const struct dns_result *);
/* True if an A or AAAA record of res is family/addr. */
bool		 ldns_has_addr(const struct dns_result *, int family,
		    const unsigned char *addr);

/* lua_dns_policy.c: dns.iprev, dns.dnsbl, dns.helo_check into the module
 * table at the top of the stack. */
void		 ldns_register_policy(lua_State *L);

#endif
