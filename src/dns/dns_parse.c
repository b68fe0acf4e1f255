/*
 * dns_parse.c — libunbound's answer (a reply packet, RFC 1035 §4) to
 * struct dns_result: the status from the rcode and the DNSSEC state, and
 * the answer's records of the asked type for the final name (CNAMEs
 * followed, RFC 1034 §3.6.2), each parsed per type (RFC 1035 §3.3,
 * RFC 3596 §2.2, RFC 6698 §2.1).
 *
 * The packet is walked with glibc's ns_initparse(3)/ns_parserr(3), which
 * check every length against the end of the packet; names in record data
 * go through dn_expand(3), which follows compression pointers only inside
 * the packet, refuses loops, and writes RFC 1035 §5.1 presentation form
 * with escapes.
 *
 * SECURITY: the data is from the network.  Each record is checked against
 * its type's layout before use; a record that does not fit, or that is
 * larger than DNS_TXT_MAX / DNS_RDATA_MAX, is skipped and .truncated set,
 * and at most DNS_ANSWERS_MAX records are kept.  Bogus (DNSSEC) answers
 * keep no records at all, so that nobody uses forged data by mistake.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns_int.h"
#include "util/xmalloc.h"

/* RFC 1035 §4.1.1 and RFC 6895 §2.3 rcodes we name in .error. */
static const char *rcode_names[] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
};

static struct dns_result *
result_new(const char *name, int rrtype)
{
	struct dns_result *res = xcalloc(1, sizeof(*res));

	res->qname = xstrndup(name, strnlen(name, DNS_NAME_MAX - 1));
	res->qtype = rrtype;
	res->rcode = -1;
	return res;
}

struct dns_result *
dns_result_error(const char *name, int rrtype, enum dns_status status,
    const char *fmt, ...)
{
	struct dns_result *res = result_new(name, rrtype);
	va_list ap;

	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
	return res;
}

/* CNAMEs followed at most (RFC 1034 §3.6.2 chains; unbound caps at 11). */
#define DNS_CNAME_HOPS_MAX	16

/* The packet a record's data is in: names may point into all of it. */
struct pkt {
	const unsigned char	*msg, *eom;
};

/* The name at p (inside the data p[0..len)) in presentation form;
 * returns the octets it takes in the data, or -1. */
static int
wire_name(const struct pkt *m, const unsigned char *p, size_t len,
    char *out, size_t outlen)
{
	int n;

	if (p + len > m->eom)
		return -1;
	n = dn_expand(m->msg, m->eom, p, out, (int)outlen);
	if (n > (int)len)
		return -1;

	if (n < 0)
		return -1;
	if (out[0] == '\0')		/* the root, as in a null MX */
		snprintf(out, outlen, ".");
	return n;
}

static char *
dup_bytes(const unsigned char *p, size_t len)
{
	char *s = xmalloc(len + 1);

	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

static int
parse_addr(struct dns_rr *rr, int type, const unsigned char *p, size_t len)
{
	int family = type == DNS_T_A ? AF_INET : AF_INET6;

	if (len != (type == DNS_T_A ? 4u : 16u))
		return -1;
	rr->addr.family = family;
	memcpy(rr->addr.addr, p, len);
	if (inet_ntop(family, p, rr->addr.text, sizeof(rr->addr.text)) == NULL)
		return -1;
	return 0;
}

static int
parse_mx(struct dns_rr *rr, const struct pkt *m, const unsigned char *p,
    size_t len)
{
	char name[DNS_NAME_MAX];

	if (len < 3 || wire_name(m, p + 2, len - 2, name, sizeof(name)) !=
	    (int)(len - 2))
		return -1;
	rr->mx.preference = (unsigned)p[0] << 8 | p[1];
	rr->mx.exchange = xstrdup(name);
	return 0;
}

static int
parse_name(struct dns_rr *rr, const struct pkt *m, const unsigned char *p,
    size_t len)
{
	char name[DNS_NAME_MAX];

	if (wire_name(m, p, len, name, sizeof(name)) != (int)len)
		return -1;
	rr->ptr.name = xstrdup(name);
	return 0;
}

/* RFC 1035 §3.3.14: one or more <character-string>s. */
static int
parse_txt(struct dns_rr *rr, const unsigned char *p, size_t len)
{
	size_t n = 0, total = 0, off = 0;

	if (len == 0)
		return -1;
	while (off < len) {		/* check the layout first */
		size_t l = p[off];

		if (l > len - off - 1)
			return -1;
		off += 1 + l;
		total += l;
		n++;
	}
	if (total > DNS_TXT_MAX)
		return -1;
	rr->txt.strings = xcalloc(n, sizeof(*rr->txt.strings));
	rr->txt.text = xmalloc(total + 1);
	rr->txt.len = total;
	rr->txt.nstrings = n;
	off = total = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = p[off];

		rr->txt.strings[i].s = dup_bytes(p + off + 1, l);
		rr->txt.strings[i].len = l;
		memcpy(rr->txt.text + total, p + off + 1, l);
		total += l;
		off += 1 + l;
	}
	rr->txt.text[total] = '\0';
	return 0;
}

static int
parse_tlsa(struct dns_rr *rr, const unsigned char *p, size_t len)
{
	if (len < 4)		/* three fields and at least one octet */
		return -1;
	rr->tlsa.usage = p[0];
	rr->tlsa.selector = p[1];
	rr->tlsa.mtype = p[2];
	rr->tlsa.len = len - 3;
	rr->tlsa.data = xmalloc(len - 3);
	memcpy(rr->tlsa.data, p + 3, len - 3);
	return 0;
}

static int
parse_rr(struct dns_rr *rr, int type, const struct pkt *m,
    const unsigned char *p, size_t len)
{
	rr->type = type;
	if (type != DNS_T_TXT && len > DNS_RDATA_MAX)
		return -1;
	switch (type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		return parse_addr(rr, type, p, len);
	case DNS_T_MX:
		return parse_mx(rr, m, p, len);
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		return parse_name(rr, m, p, len);
	case DNS_T_TXT:
		return parse_txt(rr, p, len);
	case DNS_T_TLSA:
		return parse_tlsa(rr, p, len);
	default:
		rr->raw.len = len;
		rr->raw.data = xmalloc(len > 0 ? len : 1);
		memcpy(rr->raw.data, p, len);
		return 0;
	}
}

static void
rr_clear(struct dns_rr *rr)
{
	switch (rr->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		break;
	case DNS_T_MX:
		free(rr->mx.exchange);
		break;
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		free(rr->ptr.name);
		break;
	case DNS_T_TXT:
		for (size_t i = 0; rr->txt.strings != NULL &&
		    i < rr->txt.nstrings; i++)
			free(rr->txt.strings[i].s);
		free(rr->txt.strings);
		free(rr->txt.text);
		break;
	case DNS_T_TLSA:
		free(rr->tlsa.data);
		break;
	default:
		free(rr->raw.data);
		break;
	}
	memset(rr, 0, sizeof(*rr));
}

/* The rcode of a failed or refused answer as .status and .error. */
static bool
rcode_status(struct dns_result *res, int rcode)
{
	switch (rcode) {
	case ns_r_noerror:
		return false;
	case ns_r_servfail:
		res->status = DNS_SERVFAIL;
		break;
	case ns_r_nxdomain:
		res->status = DNS_NXDOMAIN;
		break;
	default:
		res->status = DNS_ERROR;
		break;
	}
	if (rcode > 0 && (size_t)rcode <
	    sizeof(rcode_names) / sizeof(rcode_names[0]))
		snprintf(res->error, sizeof(res->error), "%s%s",
		    res->status == DNS_ERROR ? "rcode " : "",
		    rcode_names[rcode]);
	else
		snprintf(res->error, sizeof(res->error), "rcode %d", rcode);
	return true;
}

/*
 * Follow the answer section's CNAMEs from the question's name; cur is
 * updated to the final name.  Returns false if the chain is longer than
 * DNS_CNAME_HOPS_MAX (a loop).
 */
static bool
follow_cnames(ns_msg *msg, const struct pkt *m, int rrtype, char *cur,
    size_t curlen, struct dns_result *res)
{
	int n = ns_msg_count(*msg, ns_s_an);

	if (rrtype == DNS_T_CNAME)
		return true;
	for (int hop = 0; hop <= DNS_CNAME_HOPS_MAX; hop++) {
		bool moved = false;

		for (int i = 0; i < n && !moved; i++) {
			char target[DNS_NAME_MAX];
			ns_rr rr;

			if (ns_parserr(msg, ns_s_an, i, &rr) != 0 ||
			    ns_rr_type(rr) != ns_t_cname ||
			    strcasecmp(ns_rr_name(rr), cur) != 0)
				continue;
			if (wire_name(m, ns_rr_rdata(rr), ns_rr_rdlen(rr),
			    target, sizeof(target)) != (int)ns_rr_rdlen(rr))
				return false;
			snprintf(cur, curlen, "%s", target);
			free(res->canonname);
			res->canonname = xstrdup(target);
			moved = true;
		}
		if (!moved)
			return true;
	}
	return false;
}

/* The records of rrtype owned by name, at most DNS_ANSWERS_MAX. */
static void
collect(ns_msg *msg, const struct pkt *m, int rrtype, const char *name,
    struct dns_result *res)
{
	int n = ns_msg_count(*msg, ns_s_an);
	bool first = true;

	res->rr = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*res->rr));
	for (int i = 0; i < n; i++) {
		struct dns_rr *rr = &res->rr[res->nrr];
		ns_rr r;

		if (ns_parserr(msg, ns_s_an, i, &r) != 0) {
			res->truncated = true;
			break;
		}
		if ((int)ns_rr_type(r) != rrtype || ns_rr_class(r) != ns_c_in ||
		    strcasecmp(ns_rr_name(r), name) != 0)
			continue;
		if (res->nrr == DNS_ANSWERS_MAX) {
			res->truncated = true;
			break;
		}
		if (parse_rr(rr, rrtype, m, ns_rr_rdata(r),
		    ns_rr_rdlen(r)) != 0) {
			rr_clear(rr);
			res->truncated = true;
			continue;
		}
		if (first || ns_rr_ttl(r) < res->ttl)
			res->ttl = ns_rr_ttl(r);
		first = false;
		res->nrr++;
	}
}

struct dns_result *
dns_result_from_packet(const char *name, int rrtype, int rcode,
    const void *packet, int len, int sec, const char *why_bogus)
{
	struct dns_result *res = result_new(name, rrtype);
	char cur[DNS_NAME_MAX];
	struct pkt m;
	ns_msg msg;
	ns_rr q;

	res->rcode = rcode;
	if (rcode != 0) {
		(void)rcode_status(res, rcode);
		return res;
	}
	if (packet == NULL || len <= 0 ||
	    ns_initparse(packet, len, &msg) != 0) {
		res->status = DNS_ERROR;
		snprintf(res->error, sizeof(res->error), "malformed answer");
		return res;
	}
	res->rcode = ns_msg_getflag(msg, ns_f_rcode);
	if (sec == 1) {
		res->status = DNS_SERVFAIL;
		res->bogus = true;
		snprintf(res->why_bogus, sizeof(res->why_bogus), "%s",
		    why_bogus != NULL ? why_bogus : "validation failed");
		snprintf(res->error, sizeof(res->error), "DNSSEC bogus: %s",
		    res->why_bogus);
		return res;
	}
	res->secure = sec == 2;
	if (rcode_status(res, res->rcode))
		return res;
	m.msg = packet;
	m.eom = m.msg + len;
	/* libunbound's reply repeats our question: start from its name. */
	if (ns_msg_count(msg, ns_s_qd) < 1 ||
	    ns_parserr(&msg, ns_s_qd, 0, &q) != 0) {
		res->status = DNS_ERROR;
		snprintf(res->error, sizeof(res->error), "answer without question");
		return res;
	}
	snprintf(cur, sizeof(cur), "%s", ns_rr_name(q));
	if (!follow_cnames(&msg, &m, rrtype, cur, sizeof(cur), res)) {
		res->status = DNS_ERROR;
		snprintf(res->error, sizeof(res->error), "CNAME chain too long");
		return res;
	}
	collect(&msg, &m, rrtype, cur, res);
	if (res->nrr > 0) {
		res->status = DNS_OK;
	} else if (res->truncated) {
		res->status = DNS_ERROR;
		snprintf(res->error, sizeof(res->error),
		    "no usable record (malformed or too large)");
	} else {
		res->status = DNS_NODATA;
		snprintf(res->error, sizeof(res->error), "no record of type %d",
		    rrtype);
	}
	return res;
}

/* Copies of one record's heap data; rr already holds the plain fields. */
static void
rr_dup(struct dns_rr *rr, const struct dns_rr *src)
{
	switch (src->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		break;
	case DNS_T_MX:
		rr->mx.exchange = xstrdup(src->mx.exchange);
		break;
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		rr->ptr.name = xstrdup(src->ptr.name);
		break;
	case DNS_T_TXT:
		rr->txt.text = dup_bytes((const unsigned char *)src->txt.text,
		    src->txt.len);
		rr->txt.strings = xcalloc(src->txt.nstrings ? src->txt.nstrings :
		    1, sizeof(*rr->txt.strings));
		for (size_t i = 0; i < src->txt.nstrings; i++) {
			rr->txt.strings[i].len = src->txt.strings[i].len;
			rr->txt.strings[i].s = dup_bytes((const unsigned char *)
			    src->txt.strings[i].s, src->txt.strings[i].len);
		}
		break;
	case DNS_T_TLSA:
		rr->tlsa.data = (unsigned char *)dup_bytes(src->tlsa.data,
		    src->tlsa.len);
		break;
	default:
		rr->raw.data = (unsigned char *)dup_bytes(src->raw.data,
		    src->raw.len);
		break;
	}
}

struct dns_result *
dns_result_dup(const struct dns_result *src)
{
	struct dns_result *res = xmalloc(sizeof(*res));

	*res = *src;
	res->qname = src->qname != NULL ? xstrdup(src->qname) : NULL;
	res->canonname = src->canonname != NULL ? xstrdup(src->canonname) :
	    NULL;
	res->rr = src->nrr > 0 ? xcalloc(src->nrr, sizeof(*res->rr)) : NULL;
	for (size_t i = 0; i < src->nrr; i++) {
		res->rr[i] = src->rr[i];
		rr_dup(&res->rr[i], &src->rr[i]);
	}
	return res;
}

void
dns_result_free(struct dns_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->nrr; i++)
		rr_clear(&res->rr[i]);
	free(res->rr);
	free(res->qname);
	free(res->canonname);
	free(res);
}
