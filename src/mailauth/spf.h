/*
 * spf.h — SPF (RFC 7208) checks through libspf2, never on the event loop.
 *
 * DESCRIPTION
 *	spf_check() evaluates check_host() for the MAIL FROM identity of a
 *	client (RFC 7208 §2.4: the sender's domain, or postmaster@HELO for
 *	the null sender) and calls back, on the loop thread, with the result,
 *	the explanation, the reason and a Received-SPF field value (§9.1).
 *	libspf2 runs on the resolver worker pool (workq_resolve: it mostly
 *	waits on lookups, which must not hold up CPU work); its DNS layer
 *	(spf_dns.c) asks our resolver (src/dns) with dns_query_wait(), so SPF
 *	shares the resolver's cache, servers, DNSSEC and timeouts.  Each check
 *	has one SPF_server_t of its own: libspf2 keeps no shared mutable
 *	state besides its log handlers, set once by spf_init().
 *
 * STANDARDS
 *	RFC 7208 (SPF): §2.4 identities, §4.3 malformed domains (none),
 *	§4.4 multiple records (permerror), §4.6.4 the limits of 10 terms that
 *	query DNS and of 2 void lookups, §5 mechanisms, §6 redirect and exp,
 *	§7 macros, §8 results, §9.1 Received-SPF.
 *
 * RESOURCE CONTROLS
 *	SPF_TERMS_MAX (10) DNS-querying terms and SPF_VOIDS_MAX (2) void
 *	lookups per check, counted across include and redirect by our DNS
 *	layer (libspf2 1.2.10 counts terms per record, so a chain of includes
 *	escapes its own limit, and it has no void limit); SPF_QUERIES_MAX DNS
 *	queries in all (the A lookups of MX and PTR names too); the check's
 *	timeout covers every lookup.  Exceeding a limit is a permerror.
 *
 * SECURITY
 *	Records come from the sender's DNS.  Debian 12's libspf2 1.2.10 has
 *	CVE-2023-42118 (an integer underflow compiling a macro-heavy term, a
 *	stack overflow; an exp= text of about 620 octets is enough, see
 *	spf.test.zone "expcve"): the DNS layer refuses any SPF term, and drops
 *	any other TXT string (an explanation), longer than SPF_MACRO_TERM_MAX
 *	octets with a macro variable in it, before libspf2 sees it (a refused
 *	SPF record is a permerror).  Explanations from DNS are cut to SPF_EXPLANATION_MAX
 *	and made printable; the Received-SPF value quotes or escapes every
 *	input, so no CR, LF or unbalanced comment reaches a header.
 */
#ifndef LUASMTPD_SPF_H
#define LUASMTPD_SPF_H

#include <stdbool.h>

struct dns_ctx;
struct spf_req;

/* RFC 7208 §4.6.4. */
#define SPF_TERMS_MAX		10
#define SPF_VOIDS_MAX		2
/* Every DNS query of one check: 10 terms, each with up to 10 A or AAAA
 * lookups of MX or PTR names (§4.6.4), the %{p} macro, the explanation. */
#define SPF_QUERIES_MAX		150
/* CVE-2023-42118: terms this long with a macro are refused (see spf_dns.c
 * for why 150 is safe: libspf2 overflows at 508 compiled octets). */
#define SPF_MACRO_TERM_MAX	150
/* Inputs: RFC 5321 §4.5.3.1: a domain of 255, a local part of 64. */
#define SPF_DOMAIN_MAX		255
#define SPF_SENDER_MAX		(64 + 1 + SPF_DOMAIN_MAX)
/* Outputs. */
#define SPF_EXPLANATION_MAX	512
#define SPF_REASON_MAX		256
#define SPF_HEADER_MAX		4096
/* The check's timeout when none is given, and its cap (RFC 7208 §4.6.4:
 * at least 20 s). */
#define SPF_TIMEOUT_DEFAULT	20.0
#define SPF_TIMEOUT_MAX		60.0

enum spf_kind {
	SPF_KIND_PASS,
	SPF_KIND_FAIL,
	SPF_KIND_SOFTFAIL,
	SPF_KIND_NEUTRAL,
	SPF_KIND_NONE,
	SPF_KIND_TEMPERROR,
	SPF_KIND_PERMERROR,
};

struct spf_result {
	enum spf_kind	 kind;
	const char	*kind_name;	/* "pass" ... "permerror" (§8) */
	/* The domain checked: the sender's, or the HELO name for <>. */
	char		 domain[SPF_DOMAIN_MAX + 1];
	/* For fail: the exp= text (macros expanded) or our default; else "". */
	char		 explanation[SPF_EXPLANATION_MAX];
	/* Why, for logs and the header comment: "matched a mechanism",
	 * "no SPF record", "more than 10 DNS lookups", libspf2's error... */
	char		 reason[SPF_REASON_MAX];
	/* The Received-SPF field value (after "Received-SPF: "), one line. */
	char		 received_spf[SPF_HEADER_MAX];
	unsigned	 dns_terms;	/* DNS-querying terms evaluated */
	unsigned	 void_lookups;
	unsigned	 dns_queries;
};

/* Called once per check on the loop thread; the result is valid only
 * during the call, and so is the handle. */
typedef void (*spf_cb)(void *arg, const struct spf_result *);

/*
 * Once, on the loop thread, before the first check: receiver is the name
 * of this server for the Received-SPF field and the %{r} macro (NULL: the
 * host name).  Also routes libspf2's messages to our log.
 */
void		 spf_init(const char *receiver);

/*
 * Check ip (text form, IPv4 or IPv6) sending as sender (the MAIL FROM
 * address without angle brackets; "" for the null sender) after HELO helo,
 * within timeout seconds (0: SPF_TIMEOUT_DEFAULT).  cb is called later,
 * never from inside spf_check().  Returns NULL (and never calls cb) if ip
 * is not an address or cb is NULL.  dns must outlive the check; the pool
 * workq_resolve must exist (workq_init_pools()).
 */
struct spf_req	*spf_check(struct dns_ctx *dns, const char *ip, const char *helo,
		    const char *sender, double timeout, spf_cb cb, void *arg);
/* After this, cb is never called.  Safe inside any callback; does nothing
 * for the check being delivered.  The worker finishes on its own (its
 * lookups stop at once). */
void		 spf_cancel(struct spf_req *);
/* Checks started and not yet finished by their workers (shutdown, tests). */
unsigned	 spf_pending(void);

const char	*spf_kind_name(enum spf_kind);

#endif
