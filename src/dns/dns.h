/*
 * dns.h — one asynchronous, validating DNS resolver on the event loop.
 *
 * DESCRIPTION
 *	dns_new() wraps a libunbound context: a caching, DNSSEC-validating
 *	resolver that asks the configured forwarders (or /etc/resolv.conf's
 *	servers, or the root).  dns_query() starts a lookup and returns at
 *	once; its callback runs later, from a libev callback, with the answer
 *	parsed per record type.  Every query has its own timeout (an ev_timer),
 *	whatever libunbound would wait.  dns_cancel() drops a query: its
 *	callback is never called.  dns_query_wait() is the blocking form for
 *	worker threads (libspf2 runs on one, see src/mailauth/spf.c).
 *
 *	Users: the policy primitives (A, AAAA, MX, TXT, PTR, TLSA; FCrDNS,
 *	DNSBL), SPF, the queue's MX routing, DKIM key lookups, later DANE.
 *
 * THREADS AND EVENTS
 *	libunbound runs on our loop, through its pluggable event base
 *	(ub_ctx_create_ub_event(), dns_event.c): its sockets and timers are
 *	libev watchers on the loop thread, with no thread, pipe or process of
 *	its own.  Its other modes cannot work in this program: ub_fd() with
 *	ub_process() runs the resolver in a thread (ub_ctx_async(ctx, 1)) or a
 *	fork()ed copy of the whole server (ub_ctx_async(ctx, 0), which would
 *	also keep every listener and client socket open in that copy), and
 *	both build a libevent base with the libevent 1.x names event_base_new,
 *	event_set, event_add, which Debian's libev exports too: in a program
 *	linked with libev the dynamic linker binds libunbound to libev's
 *	versions, and the heap is corrupted at the first query.  DNSSEC
 *	validation thus runs on the loop thread (a few signature checks per
 *	answer, bounded by libunbound's limits).  Everything in this module
 *	except dns_query_wait() runs on the loop thread only.
 *
 * STANDARDS
 *	RFC 1035 (messages, names, A, MX, PTR, TXT), RFC 3596 (AAAA, ip6.arpa),
 *	RFC 2308 (NXDOMAIN, NODATA), RFC 4033-4035 (DNSSEC), RFC 6698 (TLSA),
 *	RFC 5782 (DNSBL query names), RFC 7505 (null MX, returned as ".").
 *
 * RESOURCE CONTROLS
 *	DNS_ANSWERS_MAX records per result (more set .truncated), a TXT record
 *	of DNS_TXT_MAX octets, other record data of DNS_RDATA_MAX octets, names
 *	of DNS_NAME_MAX octets in presentation form (longer or malformed
 *	records are skipped and set .truncated), DNS_TIMEOUT_DEFAULT when no
 *	timeout is given, DNS_TIMEOUT_MAX at most.
 *
 * SECURITY
 *	Everything in a result came from the network: names and TXT strings
 *	are bounded but not printable; escape them before logging (log.h
 *	log_excerpt) or putting them in a header.  Names are in presentation
 *	form with RFC 1035 §5.1 escapes (\. and \DDD), so a label cannot
 *	smuggle a dot.  Only .secure says the data was DNSSEC-validated.
 */
#ifndef LUASMTPD_DNS_H
#define LUASMTPD_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

/* Record types (RFC 1035 §3.2.2, RFC 3596, RFC 6698). */
#define DNS_T_A		1
#define DNS_T_NS	2
#define DNS_T_CNAME	5
#define DNS_T_SOA	6
#define DNS_T_PTR	12
#define DNS_T_MX	15
#define DNS_T_TXT	16
#define DNS_T_AAAA	28
#define DNS_T_TLSA	52

/* Records kept per result; a result with more sets .truncated. */
#define DNS_ANSWERS_MAX		64
/* One TXT record, its strings joined (DKIM keys and SPF records fit). */
#define DNS_TXT_MAX		4096
/* The data of one record of any other type (TLSA with a full certificate). */
#define DNS_RDATA_MAX		4096
/* A name in presentation form with its NUL: 255 octets, each may be \DDD. */
#define DNS_NAME_MAX		1025
/* Text of .error and .why_bogus. */
#define DNS_ERROR_MAX		256
/* Timeouts in seconds: the default for a query given 0, and the cap. */
#define DNS_TIMEOUT_DEFAULT	5.0
#define DNS_TIMEOUT_MAX		60.0
/* An IPv6 PTR or DNSBL name: 32 nibbles, "ip6.arpa" or a zone. */
#define DNS_PTR_NAME_MAX	(64 + DNS_NAME_MAX)

enum dns_status {
	DNS_OK,		/* an answer with at least one record */
	DNS_NXDOMAIN,	/* the name does not exist (rcode 3) */
	DNS_NODATA,	/* the name exists, no record of this type */
	DNS_SERVFAIL,	/* the servers failed, or DNSSEC says bogus */
	DNS_TIMEOUT,	/* our timeout fired first */
	DNS_ERROR,	/* anything else; .error says what */
};

struct dns_txt_string {
	char		*s;		/* NUL-terminated, may contain NULs */
	size_t		 len;
};

struct dns_rr {
	int		 type;		/* DNS_T_... */
	union {
		struct {		/* A, AAAA */
			int		 family;	/* AF_INET, AF_INET6 */
			unsigned char	 addr[16];	/* 4 or 16 octets */
			char		 text[46];	/* inet_ntop() form */
		} addr;
		struct {		/* MX */
			unsigned	 preference;
			char		*exchange;	/* "." for a null MX */
		} mx;
		struct {		/* TXT */
			char		*text;		/* strings joined, NUL-ended */
			size_t		 len;
			struct dns_txt_string *strings;
			size_t		 nstrings;
		} txt;
		struct {		/* PTR, CNAME, NS */
			char		*name;
		} ptr;
		struct {		/* TLSA (RFC 6698 §2.1) */
			unsigned	 usage, selector, mtype;
			unsigned char	*data;
			size_t		 len;
		} tlsa;
		struct {		/* any other type: the record data */
			unsigned char	*data;
			size_t		 len;
		} raw;
	};
};

struct dns_result {
	enum dns_status	 status;
	int		 rcode;		/* the DNS rcode libunbound gave, or -1 */
	bool		 secure;	/* DNSSEC-validated */
	bool		 bogus;		/* DNSSEC validation failed */
	bool		 truncated;	/* records left out (see the caps) */
	uint32_t	 ttl;
	int		 qtype;
	char		*qname;		/* the name asked */
	char		*canonname;	/* the name after CNAMEs, or NULL */
	char		 error[DNS_ERROR_MAX];		/* why, for errors */
	char		 why_bogus[DNS_ERROR_MAX];	/* "" unless bogus */
	size_t		 nrr;
	struct dns_rr	*rr;
};

struct dns_stub {
	const char	*zone;		/* "slow.test" */
	const char	*addr;		/* "127.0.0.1@5353" */
};

/*
 * The resolver's settings; dns_new() copies what it needs.  The Lua config
 * would read: dns = { servers = { "127.0.0.1@53" }, stubs = { ["zone"] =
 * "ip@port" }, trust_anchors = { "zone. DS ..." }, trust_anchor_file = F,
 * nodefault = { "test." }, resolv_conf = true, timeout = 5 }.
 */
struct dns_config {
	/* Forwarders, "ip" or "ip@port", NULL-terminated; NULL or empty: use
	 * /etc/resolv.conf if resolv_conf, else resolve from the root. */
	const char	*const *servers;
	/* Zones sent to their own authoritative server (no recursion). */
	const struct dns_stub *stubs;
	size_t		 nstubs;
	/* DS or DNSKEY records in presentation form, NULL-terminated, and/or
	 * a zone-format file of them: the zones under them are validated. */
	const char	*const *trust_anchors;
	const char	*trust_anchor_file;
	/* Zones libunbound answers by itself unless told (RFC 6761 "test.",
	 * the RFC 6303 / AS112 reverse zones of private and documentation
	 * addresses): these go to the servers instead.  NULL-terminated. */
	const char	*const *nodefault;
	bool		 resolv_conf;
	double		 timeout;	/* per query; 0: DNS_TIMEOUT_DEFAULT */
};

struct dns_ctx;
struct dns_query;

/* Called once per query, on the loop thread; the result (never NULL) is
 * valid only during the call, and so is the query handle. */
typedef void (*dns_cb)(void *arg, const struct dns_result *);

/*
 * A resolver on loop, which must be the loop of the calling thread.
 * Returns NULL with err set if libunbound refuses the settings (a bad
 * address, trust anchor or file).  Starts libunbound's thread.
 */
struct dns_ctx	*dns_new(struct ev_loop *loop, const struct dns_config *,
		    char *err, size_t errlen);
/*
 * Pending queries are dropped without their callbacks; threads blocked in
 * dns_query_wait() get DNS_ERROR.  Call it after the worker pools that may
 * call dns_query_wait() have stopped (workq_shutdown_pools(); their waits
 * end on their own timeouts), and never from inside a dns_cb.
 */
void		 dns_free(struct dns_ctx *);

/*
 * Look up name (presentation form, with or without the final dot) for
 * rrtype, for at most timeout seconds (0: the config's).  Never NULL and
 * never calls cb before returning: errors, cached answers and invalid
 * names are delivered from the loop like any answer.  The handle is valid
 * until cb is called or dns_cancel().
 */
struct dns_query *dns_query(struct dns_ctx *, const char *name, int rrtype,
		    double timeout, dns_cb cb, void *arg);
/* After this, cb is never called.  Safe from inside any dns_cb, including
 * for the query being delivered (then it does nothing). */
void		 dns_cancel(struct dns_query *);

/*
 * Blocking lookup for worker threads: posts the query to the loop thread
 * and waits at most timeout seconds (0: the config's) for the answer.
 * Returns 0 and *out (free with dns_result_free()); *out->status says what
 * happened.  Must never run on the loop thread (asserted).
 */
int		 dns_query_wait(struct dns_ctx *, const char *name, int rrtype,
		    double timeout, struct dns_result **out);
void		 dns_result_free(struct dns_result *);
/* A deep copy of res, for a dns_cb that keeps the answer past its call
 * (the Lua bindings); free it with dns_result_free(). */
struct dns_result *dns_result_dup(const struct dns_result *);

/* Queries not yet delivered (tests, shutdown). */
unsigned	 dns_pending(const struct dns_ctx *);
/* The loop the resolver runs on. */
struct ev_loop	*dns_loop(const struct dns_ctx *);

/* "OK", "NXDOMAIN", ... for logs. */
const char	*dns_status_name(enum dns_status);

/*
 * The PTR query name of an IPv4 or IPv6 address in text form:
 * "1.2.0.192.in-addr.arpa", or 32 reversed nibbles and "ip6.arpa".
 * The DNSBL query name (RFC 5782 §2.1, §2.4): the same labels under zone.
 * 0, or -1 if ip is no address or out[outlen] is too small.
 */
int		 dns_ptr_name(const char *ip, char *out, size_t outlen);
int		 dns_dnsbl_name(const char *ip, const char *zone, char *out,
		    size_t outlen);

#endif
