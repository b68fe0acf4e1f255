/*
 * dmarc.c — a DMARC check on the loop thread (see dmarc.h): policy
 * discovery with our resolver, the record parsed by libopendmarc,
 * alignment and disposition here.
 *
 * A check owns itself until its callback (or dmarc_cancel()); at most one
 * DNS query is pending at a time: _dmarc.<From domain>, then, without a
 * record there, _dmarc.<organizational domain>.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <ev.h>
#include <opendmarc/dmarc.h>

#include "dns/dns.h"
#include "mailauth/dmarc.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* Exported by libopendmarc.so.2 but not declared in dmarc.h: the
 * organizational domain by the loaded list ("" when no suffix matches). */
int	opendmarc_get_tld(u_char *domain, u_char *tld, size_t tld_len);

enum dmarc_state {
	DM_RUNNING,
	DM_DELIVERING,
	DM_CANCELLED,
};

struct dmarc_dkim {
	char		 domain[DMARC_DOMAIN_MAX + 1];
	enum dkim_res	 res;
};

struct dmarc_req {
	struct ev_loop	*loop;
	struct dns_ctx	*dns;
	struct dns_query *q;
	ev_timer	 kick;		/* early results go out from the loop */
	enum dmarc_state state;
	bool		 at_org;	/* the query is for the org domain */
	char		 from[DMARC_DOMAIN_MAX + 1];
	char		 org[DMARC_DOMAIN_MAX + 1];
	enum spf_kind	 spf;
	char		 spf_domain[DMARC_DOMAIN_MAX + 1];
	struct dmarc_dkim dkim[DMARC_DKIM_MAX];
	size_t		 ndkim;
	int		 roll;
	double		 timeout;
	dmarc_cb	 cb;
	void		*arg;
	struct dmarc_result res;
};

static bool	 psl_loaded;

static const char *res_names[] = {
	[DMARC_RES_NONE] = "none",
	[DMARC_RES_PASS] = "pass",
	[DMARC_RES_FAIL] = "fail",
	[DMARC_RES_TEMPERROR] = "temperror",
	[DMARC_RES_PERMERROR] = "permerror",
};

static const char *policy_names[] = {
	[DMARC_P_NONE] = "none",
	[DMARC_P_QUARANTINE] = "quarantine",
	[DMARC_P_REJECT] = "reject",
};

const char *
dmarc_res_name(enum dmarc_res r)
{
	return (unsigned)r < sizeof(res_names) / sizeof(res_names[0]) ?
	    res_names[r] : "?";
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	return (unsigned)p < sizeof(policy_names) / sizeof(policy_names[0]) ?
	    policy_names[p] : "?";
}

int
dmarc_init(const char *psl_path, char *err, size_t errlen)
{
	OPENDMARC_LIB_T lib;
	FILE *f;
	int rc;

	memset(&lib, 0, sizeof(lib));
	lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
	snprintf((char *)lib.tld_source_file, sizeof(lib.tld_source_file),
	    "%s", psl_path != NULL ? psl_path : DMARC_PSL_DEFAULT);
	/* libopendmarc leaks its table when the file cannot be opened. */
	if ((f = fopen((char *)lib.tld_source_file, "r")) == NULL) {
		snprintf(err, errlen, "public suffix list %s: %s",
		    lib.tld_source_file, strerror(errno));
		return -1;
	}
	fclose(f);
	if ((rc = opendmarc_policy_library_init(&lib)) != DMARC_PARSE_OKAY) {
		snprintf(err, errlen, "public suffix list %s: %s",
		    lib.tld_source_file, rc > 0 ? strerror(rc) : "unreadable");
		return -1;
	}
	psl_loaded = true;
	return 0;
}

void
dmarc_shutdown(void)
{
	OPENDMARC_LIB_T lib;

	memset(&lib, 0, sizeof(lib));
	(void)opendmarc_policy_library_shutdown(&lib);
	psl_loaded = false;
}

/* out = d lower-cased without a final dot, if it is a host name of two or
 * more labels (letters, digits, '-', '_'); else -1. */
static int
normalize(const char *d, char *out, size_t outlen)
{
	size_t len = d != NULL ? strlen(d) : 0, label = 0, labels = 1;

	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > DMARC_DOMAIN_MAX || len >= outlen ||
	    d[0] == '.')
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			labels++;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return label > 0 && labels >= 2 ? 0 : -1;
}

/* RFC 7489 §3.2 on an already normalized name. */
static void
org_of(const char *d, char *out, size_t outlen)
{
	char tld[256];
	size_t dl = strlen(d), tl;
	const char *p;

	tld[0] = '\0';
	if (psl_loaded)
		(void)opendmarc_get_tld((u_char *)d, (u_char *)tld, sizeof(tld));
	tl = strlen(tld);
	/* The list's answer must be d or a parent of d. */
	if (tl > 0 && (tl == dl || (tl < dl && d[dl - tl - 1] == '.')) &&
	    strcasecmp(d + dl - tl, tld) == 0) {
		snprintf(out, outlen, "%s", d + dl - tl);
		return;
	}
	/* The default rule "*": the last label is the public suffix. */
	p = d + dl;
	for (int dots = 0; p > d; p--)
		if (p[-1] == '.' && ++dots == 2)
			break;
	snprintf(out, outlen, "%s", p);
}

int
dmarc_org_domain(const char *domain, char *out, size_t outlen)
{
	char d[DMARC_DOMAIN_MAX + 1], org[DMARC_DOMAIN_MAX + 1];

	if (normalize(domain, d, sizeof(d)) != 0)
		return -1;
	org_of(d, org, sizeof(org));
	if (strlen(org) >= outlen)
		return -1;
	snprintf(out, outlen, "%s", org);
	return 0;
}

/* ---- evaluation --------------------------------------------------------- */

/* RFC 7489 §6.6.3 step 3: a record starts with v=DMARC1 (§6.4 ABNF). */
static bool
is_dmarc(const char *t)
{
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t++ != 'v')
		return false;
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t++ != '=')
		return false;
	while (*t == ' ' || *t == '\t')
		t++;
	if (strncmp(t, "DMARC1", 6) != 0)
		return false;
	for (t += 6; *t == ' ' || *t == '\t'; t++)
		;
	return *t == ';' || *t == '\0';
}

static bool
aligned(const struct dmarc_req *r, const char *id, bool strict)
{
	char d[DMARC_DOMAIN_MAX + 1], org[DMARC_DOMAIN_MAX + 1];

	if (normalize(id, d, sizeof(d)) != 0)
		return false;
	if (strict)
		return strcmp(d, r->from) == 0;
	org_of(d, org, sizeof(org));
	return strcmp(org, r->org) == 0;
}

static enum dmarc_policy
policy_of(int p)
{
	return p == DMARC_RECORD_P_REJECT ? DMARC_P_REJECT :
	    p == DMARC_RECORD_P_QUARANTINE ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

static void
set_res(struct dmarc_req *r, enum dmarc_res res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_res(struct dmarc_req *r, enum dmarc_res res, const char *fmt, ...)
{
	va_list ap;

	r->res.res = res;
	va_start(ap, fmt);
	vsnprintf(r->res.reason, sizeof(r->res.reason), fmt, ap);
	va_end(ap);
}

/* The record found at _dmarc.<at>. */
static void
evaluate(struct dmarc_req *r, const char *record, const char *at)
{
	struct dmarc_result *o = &r->res;
	DMARC_POLICY_T *ctx = opendmarc_policy_connect_init((u_char *)"0.0.0.0",
	    0);
	int st, p = 0, sp = 0, pct = 100, adkim = 0, aspf = 0, roll;

	snprintf(o->record_domain, sizeof(o->record_domain), "%s", at);
	if (ctx == NULL) {
		set_res(r, DMARC_RES_TEMPERROR, "libopendmarc: out of memory");
		return;
	}
	st = opendmarc_policy_store_dmarc(ctx, (u_char *)record,
	    (u_char *)r->from, r->at_org ? (u_char *)r->org : NULL);
	if (st != DMARC_PARSE_OKAY) {
		set_res(r, DMARC_RES_PERMERROR, "invalid DMARC record at "
		    "_dmarc.%s: %s", at, opendmarc_policy_status_to_str(st));
		(void)opendmarc_policy_connect_shutdown(ctx);
		return;
	}
	(void)opendmarc_policy_fetch_p(ctx, &p);
	(void)opendmarc_policy_fetch_sp(ctx, &sp);
	(void)opendmarc_policy_fetch_pct(ctx, &pct);
	(void)opendmarc_policy_fetch_adkim(ctx, &adkim);
	(void)opendmarc_policy_fetch_aspf(ctx, &aspf);
	(void)opendmarc_policy_connect_shutdown(ctx);

	o->p = policy_of(p);
	o->has_sp = sp != DMARC_RECORD_P_UNSPECIFIED;
	o->sp = o->has_sp ? policy_of(sp) : o->p;
	o->pct = pct < 0 ? 0 : pct > 100 ? 100 : (unsigned)pct;
	o->adkim_strict = adkim == DMARC_RECORD_A_STRICT;
	o->aspf_strict = aspf == DMARC_RECORD_A_STRICT;
	/* §6.3 sp=: for subdomains that use the organizational record. */
	o->used_sp = r->at_org && o->has_sp;
	o->policy = o->used_sp ? o->sp : o->p;

	if (r->spf == SPF_KIND_PASS && aligned(r, r->spf_domain,
	    o->aspf_strict)) {
		o->spf_aligned = true;
		snprintf(o->spf_domain, sizeof(o->spf_domain), "%s",
		    r->spf_domain);
	}
	for (size_t i = 0; i < r->ndkim && !o->dkim_aligned; i++) {
		if (r->dkim[i].res == DKIM_RES_PASS &&
		    aligned(r, r->dkim[i].domain, o->adkim_strict)) {
			o->dkim_aligned = true;
			snprintf(o->dkim_domain, sizeof(o->dkim_domain), "%s",
			    r->dkim[i].domain);
		}
	}
	if (o->spf_aligned || o->dkim_aligned) {
		o->disposition = DMARC_P_NONE;
		set_res(r, DMARC_RES_PASS, "%s%s%s aligned",
		    o->spf_aligned ? "SPF" : "",
		    o->spf_aligned && o->dkim_aligned ? " and " : "",
		    o->dkim_aligned ? "DKIM" : "");
		return;
	}
	/* §6.6.4: outside pct, the next policy down. */
	roll = r->roll >= 0 && r->roll < 100 ? r->roll :
	    (int)arc4random_uniform(100);
	o->disposition = o->policy;
	if (roll >= (int)o->pct) {
		o->sampled_out = true;
		o->disposition = o->policy == DMARC_P_REJECT ?
		    DMARC_P_QUARANTINE : DMARC_P_NONE;
	}
	set_res(r, DMARC_RES_FAIL, "no aligned SPF or DKIM pass");
}

/* ---- the check on the loop --------------------------------------------- */

static void
deliver(struct dmarc_req *r)
{
	ev_timer_stop(r->loop, &r->kick);
	log_debug(0, "dmarc checked from=%s result=%s policy=%s "
	    "disposition=%s", r->from, dmarc_res_name(r->res.res),
	    dmarc_policy_name(r->res.policy),
	    dmarc_policy_name(r->res.disposition));
	r->state = DM_DELIVERING;
	r->cb(r->arg, &r->res);
	free(r);
}

static void	query(struct dmarc_req *, const char *domain);

static void
answer_cb(void *arg, const struct dns_result *res)
{
	struct dmarc_req *r = arg;
	const char *at = r->at_org ? r->org : r->from;
	const char *record = NULL;
	size_t nrec = 0;

	r->q = NULL;
	switch (res->status) {
	case DNS_OK:
		for (size_t i = 0; i < res->nrr; i++) {
			if (res->rr[i].type != DNS_T_TXT ||
			    !is_dmarc(res->rr[i].txt.text))
				continue;
			if (nrec++ == 0)
				record = res->rr[i].txt.text;
		}
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		break;
	default:
		set_res(r, DMARC_RES_TEMPERROR, "DNS %s at _dmarc.%s",
		    dns_status_name(res->status), at);
		deliver(r);
		return;
	}
	if (nrec > 1) {
		snprintf(r->res.record_domain, sizeof(r->res.record_domain),
		    "%s", at);
		set_res(r, DMARC_RES_PERMERROR, "%zu DMARC records at "
		    "_dmarc.%s", nrec, at);
	} else if (nrec == 1) {
		evaluate(r, record, at);
	} else if (!r->at_org && strcmp(r->org, r->from) != 0) {
		/* §6.6.3 step 4: ask the organizational domain. */
		r->at_org = true;
		query(r, r->org);
		return;
	} else {
		set_res(r, DMARC_RES_NONE, "no DMARC record");
	}
	deliver(r);
}

static void
query(struct dmarc_req *r, const char *domain)
{
	char name[DMARC_DOMAIN_MAX + 16];

	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	r->q = dns_query(r->dns, name, DNS_T_TXT, r->timeout, answer_cb, r);
}

static void
kick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	deliver(t->data);
}

struct dmarc_req *
dmarc_check(struct dns_ctx *dns, const struct dmarc_input *in, dmarc_cb cb,
    void *arg)
{
	struct dmarc_req *r = xcalloc(1, sizeof(*r));

	r->loop = dns_loop(dns);
	r->dns = dns;
	r->cb = cb;
	r->arg = arg;
	r->state = DM_RUNNING;
	r->roll = in->pct_roll;
	r->timeout = in->timeout > 0 ? in->timeout : 0;
	r->spf = in->spf;
	if (in->spf_domain != NULL)
		snprintf(r->spf_domain, sizeof(r->spf_domain), "%s",
		    in->spf_domain);
	for (size_t i = 0; i < in->ndkim && r->ndkim < DMARC_DKIM_MAX; i++) {
		if (in->dkim[i].domain == NULL)
			continue;
		snprintf(r->dkim[r->ndkim].domain, sizeof(r->dkim[0].domain),
		    "%s", in->dkim[i].domain);
		r->dkim[r->ndkim++].res = in->dkim[i].res;
	}
	ev_timer_init(&r->kick, kick_cb, 0, 0);
	r->kick.data = r;
	if (normalize(in->from_domain, r->from, sizeof(r->from)) != 0) {
		char esc[LOG_EXCERPT_BUFSZ(64)];
		const char *f = in->from_domain != NULL ? in->from_domain : "";

		snprintf(r->res.from_domain, sizeof(r->res.from_domain), "%s",
		    log_excerpt(esc, f, strlen(f), 64));
		set_res(r, DMARC_RES_PERMERROR, "no valid From domain");
		ev_timer_start(r->loop, &r->kick);
		return r;
	}
	org_of(r->from, r->org, sizeof(r->org));
	snprintf(r->res.from_domain, sizeof(r->res.from_domain), "%s", r->from);
	snprintf(r->res.org_domain, sizeof(r->res.org_domain), "%s", r->org);
	r->res.pct = 100;
	query(r, r->from);
	return r;
}

void
dmarc_cancel(struct dmarc_req *r)
{
	if (r == NULL || r->state != DM_RUNNING)
		return;
	r->state = DM_CANCELLED;
	ev_timer_stop(r->loop, &r->kick);
	if (r->q != NULL)
		dns_cancel(r->q);
	free(r);
}
