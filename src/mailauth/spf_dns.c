/*
 * spf_dns.c — libspf2's DNS layer (an SPF_dns_server_t) for one check,
 * on its worker thread: every lookup goes to our resolver through
 * dns_query_wait(), and the RFC 7208 §4.6.4 limits are counted here.
 *
 * THE LIMITS
 *	libspf2 1.2.10 counts DNS-querying terms per record (an include
 *	starts a fresh count, and the 11th term is still evaluated) and has
 *	no void-lookup limit at all.  We count over the whole check, from the
 *	lookups libspf2 asks for:
 *	  - a TXT lookup is an include or redirect term, except the first one
 *	    (the checked domain's own record) and those of exp= targets named
 *	    in the records we returned;
 *	  - an MX lookup is an "mx" term, a PTR lookup a "ptr" term;
 *	  - an A or AAAA lookup is an "a" or "exists" term, unless its name
 *	    came in the last MX or PTR answer (then it belongs to that term).
 *	The 11th term, the 3rd void answer (NXDOMAIN or no records) to a
 *	term's own query, or the 151st query stops the check: the lookup
 *	returns TRY_AGAIN, so libspf2 ends at once with a temperror, and
 *	spf.c reports the permerror.  Void answers to TXT lookups are not
 *	counted: an include or redirect without a record is already a
 *	permerror.
 *	XXX: the PTR lookup of the %{p} macro counts as a term, and an exp=
 *	target written with macros as a term too (rare in practice).
 *
 * CVE-2023-42118
 *	libspf2 < 1.2.11 compiles a domain-spec into at most 511 octets and,
 *	once a macro leaves it 508 or more, computes the room left for the
 *	next literal as a negative size_t: a stack overflow.  A macro ("%{x}",
 *	4 octets of text) compiles to 4 octets and a literal of n characters
 *	to at most 4 + n + 7, so a term compiles to less than 3.2 times its
 *	length plus 15: no term of SPF_MACRO_TERM_MAX (150) octets reaches
 *	508.  Longer terms with a "%{" are refused before libspf2 sees them:
 *	the whole record (SPF_STOP_UNSAFE, a permerror), or for a TXT string
 *	that is no SPF record (an explanation) just that string.  Only a
 *	macro variable ("%{") moves the count the overflow needs.
 *
 * SECURITY: names and strings are copied into libspf2's records with
 * their lengths; a TXT string with a NUL in it is dropped (libspf2 reads
 * C strings).  The deadline and a cancel stop every further lookup.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "mailauth/spf_int.h"
#include "util/xmalloc.h"

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
spf_time_left(const struct spf_req *r)
{
	return r->deadline - mono_now();
}

/* name lowercased, without a final dot, into out[outlen]. */
static void
norm_name(const char *name, char *out, size_t outlen)
{
	size_t n = strnlen(name, outlen - 1);

	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	if (n > 0 && out[n - 1] == '.')
		n--;
	out[n] = '\0';
}

static void
second_clear(struct spf_lookups *lk)
{
	for (size_t i = 0; i < lk->nsecond; i++)
		free(lk->second[i]);
	free(lk->second);
	lk->second = NULL;
	lk->nsecond = 0;
}

/* True (and forget it) if name came in the last MX or PTR answer. */
static bool
second_take(struct spf_lookups *lk, const char *name)
{
	for (size_t i = 0; i < lk->nsecond; i++) {
		if (lk->second[i] != NULL && strcmp(lk->second[i], name) == 0) {
			free(lk->second[i]);
			lk->second[i] = NULL;
			return true;
		}
	}
	return false;
}

static bool
is_exp_name(const struct spf_lookups *lk, const char *name)
{
	for (size_t i = 0; i < lk->nexp; i++)
		if (strcmp(lk->exp[i], name) == 0)
			return true;
	return false;
}

/* A macro variable ("%{") in s[0..len): what CVE-2023-42118 needs. */
static bool
has_macro(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if (s[i] == '%' && s[i + 1] == '{')
			return true;
	return false;
}

/* A name libunbound can ask: labels of 1..63, 253 octets at most, an
 * optional final dot (RFC 1035 §2.3.4).  A macro may expand to others. */
static bool
name_ok(const char *name)
{
	size_t len = strnlen(name, DNS_NAME_MAX), label = 0;

	if (len == 0 || len > 254 || (len == 254 && name[253] != '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.') {
			if (++label > 63)
				return false;
		} else if (label == 0) {
			return false;
		} else {
			label = 0;
		}
	}
	return true;
}

/* "v=spf1" followed by a space or the end (RFC 7208 §4.5). */
static bool
is_spf_record(const char *s, size_t len)
{
	return len >= 6 && strncasecmp(s, "v=spf1", 6) == 0 &&
	    (len == 6 || s[6] == ' ');
}

/*
 * Screen one SPF record: false if a term is unsafe for libspf2 (see
 * CVE-2023-42118 above).  Remembers exp= targets without macros.
 */
static bool
screen_record(struct spf_lookups *lk, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t start, tlen;

		while (i < len && s[i] == ' ')
			i++;
		start = i;
		while (i < len && s[i] != ' ')
			i++;
		tlen = i - start;
		if (tlen > SPF_MACRO_TERM_MAX && has_macro(s + start, tlen))
			return false;
		if (tlen > 4 && tlen - 4 <= SPF_DOMAIN_MAX &&
		    strncasecmp(s + start, "exp=", 4) == 0 &&
		    memchr(s + start, '%', tlen) == NULL &&
		    lk->nexp < SPF_EXP_NAMES_MAX) {
			char name[SPF_DOMAIN_MAX + 2];

			memcpy(name, s + start + 4, tlen - 4);
			name[tlen - 4] = '\0';
			norm_name(name, name, sizeof(name));
			lk->exp[lk->nexp++] = xstrdup(name);
		}
	}
	return true;
}

/* A record for libspf2 with herrno and no data. */
static SPF_dns_rr_t *
rr_status(SPF_dns_server_t *layer, const char *domain, ns_type type,
    SPF_dns_stat_t herrno)
{
	SPF_dns_rr_t *rr = SPF_dns_rr_new_init(layer, domain, type, 0, herrno);

	if (rr == NULL)
		SPF_error("out of memory");
	return rr;
}

/* Copy len octets into libspf2's record slot i (a NUL is added). */
static void
rr_put(SPF_dns_rr_t *rr, int i, const void *p, size_t len, bool text)
{
	if (SPF_dns_rr_buf_realloc(rr, i, len + (text ? 1 : 0)) !=
	    SPF_E_SUCCESS)
		SPF_error("out of memory");
	memcpy(rr->rr[i], p, len);
	if (text)
		((char *)rr->rr[i])[len] = '\0';
}

/*
 * A TXT string that is no SPF record, as an explanation libspf2 can
 * compile: RFC 7208 §6.2 allows spaces in it, libspf2 1.2.10 reads a
 * space as the end of a macro-string, so each becomes "%_" (§7.3: a
 * space).  Dropped (-1) if unsafe for libspf2 (see CVE-2023-42118 above).
 */
static int
put_explanation(SPF_dns_rr_t *rr, int i, const char *s, size_t len)
{
	char buf[2 * DNS_TXT_MAX];
	size_t o = 0;

	for (size_t k = 0; k < len && o + 2 < sizeof(buf); k++) {
		if (s[k] == ' ') {
			buf[o++] = '%';
			buf[o++] = '_';
		} else {
			buf[o++] = s[k];
		}
	}
	if (o > SPF_MACRO_TERM_MAX && has_macro(buf, o))
		return -1;
	rr_put(rr, i, buf, o, true);
	return 0;
}

/* Our answer as libspf2's; also remembers MX and PTR names. */
static SPF_dns_rr_t *
convert(SPF_dns_server_t *layer, struct spf_req *r, const char *domain,
    ns_type type, const struct dns_result *res)
{
	SPF_dns_rr_t *rr = rr_status(layer, domain, type, NETDB_SUCCESS);
	struct spf_lookups *lk = &r->lk;
	int n = 0;

	rr->ttl = res->ttl;
	if (type == ns_t_mx || type == ns_t_ptr) {
		second_clear(lk);
		lk->second = xcalloc(res->nrr + 1, sizeof(*lk->second));
	}
	for (size_t i = 0; i < res->nrr; i++) {
		const struct dns_rr *d = &res->rr[i];
		char name[DNS_NAME_MAX];

		switch (type) {
		case ns_t_a:
		case ns_t_aaaa:
			rr_put(rr, n++, d->addr.addr, type == ns_t_a ? 4 : 16,
			    false);
			break;
		case ns_t_mx:
		case ns_t_ptr: {
			const char *host = type == ns_t_mx ? d->mx.exchange :
			    d->ptr.name;

			rr_put(rr, n++, host, strlen(host), true);
			norm_name(host, name, sizeof(name));
			lk->second[lk->nsecond++] = xstrdup(name);
			break;
		}
		case ns_t_txt:
			if (memchr(d->txt.text, '\0', d->txt.len) != NULL)
				break;
			if (is_spf_record(d->txt.text, d->txt.len)) {
				if (!screen_record(lk, d->txt.text, d->txt.len)) {
					lk->stop = SPF_STOP_UNSAFE;
					SPF_dns_rr_free(rr);
					return rr_status(layer, domain, type,
					    TRY_AGAIN);
				}
				rr_put(rr, n++, d->txt.text, d->txt.len, true);
			} else {
				/* Maybe an explanation (exp=). */
				if (put_explanation(rr, n, d->txt.text,
				    d->txt.len) == 0)
					n++;
			}
			break;
		default:
			break;
		}
	}
	rr->num_rr = n;
	if (n == 0)
		rr->herrno = NO_DATA;
	return rr;
}

/* The lookup libspf2 calls for every query. */
static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
    int should_cache)
{
	struct spf_req *r = layer->hook;
	struct spf_lookups *lk = &r->lk;
	char name[DNS_NAME_MAX];
	struct dns_result *res;
	SPF_dns_rr_t *rr;
	bool term, is_void;
	double left;

	(void)should_cache;
	/* RFC 7208 §3.1, §14.1: type SPF (99) is not used any more. */
	if (type == ns_t_spf)
		return rr_status(layer, domain, type, NO_DATA);
	if (lk->stop != SPF_STOP_NONE)
		return rr_status(layer, domain, type, TRY_AGAIN);
	left = spf_time_left(r);
	if (atomic_load(&r->stopping) || left <= 0) {
		lk->stop = SPF_STOP_TIME;
		return rr_status(layer, domain, type, TRY_AGAIN);
	}
	norm_name(domain, name, sizeof(name));
	switch (type) {
	case ns_t_txt:
		term = lk->first_txt_done && !is_exp_name(lk, name);
		lk->first_txt_done = true;
		second_clear(lk);
		break;
	case ns_t_a:
	case ns_t_aaaa:
		term = !second_take(lk, name);
		break;
	default:
		term = true;
		second_clear(lk);
		break;
	}
	if (term && ++lk->terms > SPF_TERMS_MAX) {
		lk->stop = SPF_STOP_TERMS;
		return rr_status(layer, domain, type, TRY_AGAIN);
	}
	if (++lk->queries > SPF_QUERIES_MAX) {
		lk->stop = SPF_STOP_QUERIES;
		return rr_status(layer, domain, type, TRY_AGAIN);
	}
	/* A malformed name is no DNS failure: an "a" or "exists" term does
	 * not match, an include or redirect is a permerror (libspf2's
	 * reading of NO_RECOVERY). */
	if (!name_ok(domain))
		return rr_status(layer, domain, type, NO_RECOVERY);

	(void)dns_query_wait(r->dns, domain, (int)type, left, &res);
	is_void = res->status == DNS_NXDOMAIN || res->status == DNS_NODATA;
	if (term && is_void && type != ns_t_txt &&
	    ++lk->voids > SPF_VOIDS_MAX) {
		lk->stop = SPF_STOP_VOIDS;
		rr = rr_status(layer, domain, type, TRY_AGAIN);
	} else {
		switch (res->status) {
		case DNS_OK:
			rr = convert(layer, r, domain, type, res);
			break;
		case DNS_NXDOMAIN:
			rr = rr_status(layer, domain, type, HOST_NOT_FOUND);
			break;
		case DNS_NODATA:
			rr = rr_status(layer, domain, type, NO_DATA);
			break;
		case DNS_TIMEOUT:
			if (spf_time_left(r) <= 0)
				lk->stop = SPF_STOP_TIME;
			rr = rr_status(layer, domain, type, TRY_AGAIN);
			break;
		default:	/* SERVFAIL (also DNSSEC bogus), errors */
			rr = rr_status(layer, domain, type, TRY_AGAIN);
			break;
		}
	}
	dns_result_free(res);
	return rr;
}

static void
layer_destroy(SPF_dns_server_t *layer)
{
	(void)layer;		/* spf_dns_layer_free() does it */
}

SPF_dns_server_t *
spf_dns_layer_new(struct spf_req *r)
{
	SPF_dns_server_t *layer = xcalloc(1, sizeof(*layer));

	layer->destroy = layer_destroy;
	layer->lookup = layer_lookup;
	layer->name = "luasmtpd";
	layer->hook = r;
	return layer;
}

void
spf_dns_layer_free(SPF_dns_server_t *layer)
{
	struct spf_req *r = layer->hook;

	second_clear(&r->lk);
	for (size_t i = 0; i < r->lk.nexp; i++)
		free(r->lk.exp[i]);
	r->lk.nexp = 0;
	free(layer);
}
