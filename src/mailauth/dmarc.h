/*
 * dmarc.h — DMARC (RFC 7489) policy checks: the record from our resolver,
 * parsed by libopendmarc, alignment of the SPF and DKIM results.
 *
 * DESCRIPTION
 *	dmarc_check() takes the RFC5322.From domain, the SPF result and its
 *	domain (spf.c) and the DKIM results (dkim.h), looks up
 *	_dmarc.<from domain> with dns_query() and, if there is no record
 *	there, _dmarc.<organizational domain>, and calls back on the loop
 *	thread with the result, the policy published, the disposition to
 *	apply (after pct) and the alignment of each identifier.  The decision
 *	is the caller's (Lua): reject, quarantine, accept.
 *
 *	libopendmarc does its own blocking DNS (res_query) in
 *	opendmarc_policy_query_dmarc(): we never call it.  We fetch the
 *	record ourselves and hand it to opendmarc_policy_store_dmarc(), which
 *	parses it; p=, sp=, pct=, adkim= and aspf= come from its fetch
 *	functions.  Parsing takes microseconds, so it runs on the loop.
 *
 *	Organizational domains come from Debian's public suffix list through
 *	libopendmarc (opendmarc_tld_read_file(), opendmarc_get_tld()), with
 *	RFC 7489 §3.2's default rule added: a domain under no listed suffix
 *	(libopendmarc then returns nothing) has its last two labels as its
 *	organizational domain.  Alignment is computed here, not by
 *	opendmarc_get_policy_to_enforce(): libopendmarc's check aligns any
 *	domain with its parent by string prefix, so d=co.uk would align with
 *	From: a.co.uk, and it cannot align two subdomains of a domain under a
 *	suffix the list lacks (.test, new TLDs).  Relaxed: the organizational
 *	domains are equal; strict: the domains are (RFC 7489 §3.1).
 *
 * STANDARDS
 *	RFC 7489: §3.1 alignment, §3.2 organizational domain, §6.3 tags,
 *	§6.6.2 evaluation, §6.6.3 policy discovery (v=DMARC1 first, one
 *	record, fallback to the organizational domain, sp=), §6.6.4 pct.
 *	RFC 8601 §2.7 (result names).
 *
 * RESOURCE CONTROLS
 *	Two TXT lookups at most per check, each with the resolver's caps and
 *	its own timeout; DMARC_DKIM_MAX DKIM results considered.
 *
 * SECURITY
 *	Records come from the sender's DNS: libopendmarc copies them into
 *	buffers of BUFSIZ (our TXT records are at most DNS_TXT_MAX, 4096).
 *	Result strings are printable ASCII; quote them before a header.
 */
#ifndef LUASMTPD_DMARC_H
#define LUASMTPD_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "mailauth/dkim.h"
#include "mailauth/spf.h"

struct dns_ctx;
struct dmarc_req;

#define DMARC_DOMAIN_MAX	253
#define DMARC_DKIM_MAX		DKIM_SIGS_MAX
#define DMARC_REASON_MAX	160
#define DMARC_PSL_DEFAULT	"/usr/share/publicsuffix/public_suffix_list.dat"

enum dmarc_res {
	DMARC_RES_NONE,		/* no policy published (or no valid From) */
	DMARC_RES_PASS,
	DMARC_RES_FAIL,
	DMARC_RES_TEMPERROR,	/* the record could not be fetched */
	DMARC_RES_PERMERROR,	/* malformed record, several records */
};

enum dmarc_policy {
	DMARC_P_NONE,
	DMARC_P_QUARANTINE,
	DMARC_P_REJECT,
};

struct dmarc_dkim_input {
	const char	*domain;	/* d= */
	const char	*selector;	/* s=, for the result only */
	enum dkim_res	 res;
};

struct dmarc_input {
	const char	*from_domain;	/* the RFC5322.From domain */
	/* The SPF result and the domain it is for (spf_result.domain: the
	 * MAIL FROM domain, or the HELO name for the null sender). */
	enum spf_kind	 spf;
	const char	*spf_domain;
	const struct dmarc_dkim_input *dkim;
	size_t		 ndkim;
	/* §6.6.4: 0..99 decides pct (the policy applies if roll < pct);
	 * -1: a random roll. */
	int		 pct_roll;
	double		 timeout;	/* per lookup; 0: the resolver's */
};

struct dmarc_result {
	enum dmarc_res	 res;
	/* The policy that applies on failure (sp= for a subdomain that uses
	 * its organizational domain's record, when given), and the
	 * disposition: none on pass or without a record, else the policy,
	 * lowered one step when pct sampled the message out. */
	enum dmarc_policy policy;
	enum dmarc_policy disposition;
	bool		 sampled_out;	/* pct < 100 spared this message */
	bool		 used_sp;
	bool		 has_sp;
	enum dmarc_policy p, sp;	/* as published (sp = p if absent) */
	unsigned	 pct;
	bool		 adkim_strict, aspf_strict;
	bool		 spf_aligned;
	bool		 dkim_aligned;
	char		 from_domain[DMARC_DOMAIN_MAX + 1];
	char		 org_domain[DMARC_DOMAIN_MAX + 1];
	/* Where the record was found: the From domain or its org domain. */
	char		 record_domain[DMARC_DOMAIN_MAX + 1];
	/* The aligned identifiers that passed ("" if none). */
	char		 spf_domain[DMARC_DOMAIN_MAX + 1];
	char		 dkim_domain[DMARC_DOMAIN_MAX + 1];
	char		 reason[DMARC_REASON_MAX];
};

/* Once on the loop thread; the result is valid during the call only. */
typedef void (*dmarc_cb)(void *arg, const struct dmarc_result *);

/*
 * Once, before any check (and again to reload): read the public suffix
 * list from psl_path (NULL: DMARC_PSL_DEFAULT).  Blocking file I/O.
 * 0, or -1 with err set.
 */
int		 dmarc_init(const char *psl_path, char *err, size_t errlen);
void		 dmarc_shutdown(void);

/*
 * The organizational domain of domain (RFC 7489 §3.2) into out: 0, or -1
 * if domain is no valid domain name or out is too small.  Lower case.
 */
int		 dmarc_org_domain(const char *domain, char *out, size_t outlen);

/*
 * Start a check; cb is called later from the loop, never from inside
 * this call.  Never NULL (an invalid From domain is a permerror
 * delivered like any result).  Input strings are copied.
 */
struct dmarc_req *dmarc_check(struct dns_ctx *, const struct dmarc_input *,
		    dmarc_cb cb, void *arg);
/* After this cb is never called.  Safe inside any callback. */
void		 dmarc_cancel(struct dmarc_req *);

const char	*dmarc_res_name(enum dmarc_res);	/* "pass" ... */
const char	*dmarc_policy_name(enum dmarc_policy);	/* "none" ... */

#endif
