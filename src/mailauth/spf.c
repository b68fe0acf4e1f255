/*
 * spf.c — an SPF check's life (see spf.h): started on the loop, evaluated
 * by libspf2 on a CPU worker, delivered on the loop.
 *
 * The check owns its struct spf_req until the worker's done() ran.  The
 * caller's view ends earlier when the check's ev_timer fires (the callback
 * gets a temperror at once; the worker is told to stop, each of its
 * lookups returning at once) or when spf_cancel() is called (no callback);
 * done() then only frees.  The Received-SPF value is built here, not taken
 * from libspf2 (1.2.10 writes envelope-from and helo unquoted and puts the
 * raw domain in its comment), with every input quoted per RFC 5322.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spf2/spf.h>

#include "mailauth/spf_int.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* RFC 7208 §6.2 gives no default explanation; this one names no URL.
 * "%_" is a space (§7.3): libspf2 ends a macro-string at a space. */
#define SPF_DEFAULT_EXPLANATION	\
	"%{c}%_is%_not%_allowed%_to%_send%_mail%_for%_%{d}"

static char	 receiver[SPF_DOMAIN_MAX + 1];
static unsigned	 pending;	/* loop thread only */

static const char *kind_names[] = {
	"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror",
};

const char *
spf_kind_name(enum spf_kind k)
{
	if ((unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]))
		return kind_names[k];
	return "?";
}

unsigned
spf_pending(void)
{
	return pending;
}

/* ---- libspf2's messages go to our log ------------------------------- */

static void
spf_log(enum log_level lvl, const char *file, int line, const char *msg)
{
	char esc[LOG_EXCERPT_BUFSZ(200)];

	(void)file;
	(void)line;
	if (log_enabled(lvl))
		log_sid(lvl, 0, "spf libspf2 msg=\"%s\"",
		    log_excerpt(esc, msg, strlen(msg), 200));
}

static void __attribute__((noreturn))
spf_log_error(const char *file, int line, const char *msg)
{
	/* libspf2 calls this for out of memory and broken invariants only. */
	fatalx("spf: libspf2 %s:%d: %s", file, line, msg);
}

static void
spf_log_warning(const char *file, int line, const char *msg)
{
	spf_log(LOG_LVL_DEBUG, file, line, msg);
}

void
spf_init(const char *name)
{
	SPF_error_handler = spf_log_error;
	SPF_warning_handler = spf_log_warning;
	SPF_info_handler = spf_log_warning;
	SPF_debug_handler = spf_log_warning;
	if (name == NULL || name[0] == '\0') {
		if (gethostname(receiver, sizeof(receiver) - 1) != 0)
			snprintf(receiver, sizeof(receiver), "localhost");
		receiver[sizeof(receiver) - 1] = '\0';
	} else {
		snprintf(receiver, sizeof(receiver), "%s", name);
	}
}

/* ---- text for the result ---------------------------------------------- */

/* dst = src cut to fit, control and non-ASCII octets as '?'. */
static void
printable(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < dstlen; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[i] = '\0';
}

struct hbuf {
	char	*p;
	size_t	 len, size;
	bool	 full;
};

static void
hb_raw(struct hbuf *b, const char *s, size_t n)
{
	if (b->full || n >= b->size - b->len) {
		b->full = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
hb_str(struct hbuf *b, const char *s)
{
	hb_raw(b, s, strlen(s));
}

/* s inside a comment (RFC 5322 §3.2.2): quoted-pairs for ( ) \. */
static void
hb_ctext(struct hbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char q[2] = { '\\', (char)c };

		if (c == '(' || c == ')' || c == '\\')
			hb_raw(b, q, 2);
		else if (c < 0x20 || c >= 0x7f)
			hb_raw(b, "?", 1);
		else
			hb_raw(b, s, 1);
	}
}

/* RFC 5322 §3.2.3 atext. */
static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* "key=value; " with value a dot-atom if it is one, else quoted (§9.1). */
static void
hb_pair(struct hbuf *b, const char *key, const char *v)
{
	bool atom = v[0] != '\0' && v[0] != '.';
	size_t n = strlen(v);
	size_t mark = b->len;

	for (size_t i = 0; i < n && atom; i++)
		atom = is_atext((unsigned char)v[i]) || (v[i] == '.' &&
		    i + 1 < n && v[i + 1] != '.');
	hb_str(b, " ");
	hb_str(b, key);
	hb_str(b, "=");
	if (atom) {
		hb_str(b, v);
	} else {
		hb_str(b, "\"");
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)v[i];
			char q[2] = { '\\', (char)c };

			if (c == '"' || c == '\\')
				hb_raw(b, q, 2);
			else if (c < 0x20 || c >= 0x7f)
				hb_raw(b, "?", 1);
			else
				hb_raw(b, v + i, 1);
		}
		hb_str(b, "\"");
	}
	hb_str(b, ";");
	if (b->full) {		/* drop the whole pair rather than cut it */
		b->len = mark;
		b->p[mark] = '\0';
		b->full = false;
	}
}

/* RFC 7208 §9.1: result (comment) key=value; ... */
static void
build_header(struct spf_result *res, const char *ip, const char *helo,
    const char *sender, const char *identity)
{
	struct hbuf b = { res->received_spf, 0, sizeof(res->received_spf),
	    false };
	const char *k = res->kind_name;

	res->received_spf[0] = '\0';
	hb_str(&b, k);
	hb_str(&b, " (");
	hb_ctext(&b, receiver);
	hb_str(&b, ": ");
	switch (res->kind) {
	case SPF_KIND_PASS:
	case SPF_KIND_FAIL:
	case SPF_KIND_SOFTFAIL:
		hb_str(&b, res->kind == SPF_KIND_SOFTFAIL ?
		    "domain of transitioning " : "domain of ");
		hb_ctext(&b, identity);
		hb_str(&b, res->kind == SPF_KIND_PASS ? " designates " :
		    " does not designate ");
		hb_ctext(&b, ip);
		hb_str(&b, " as permitted sender");
		break;
	case SPF_KIND_NEUTRAL:
		hb_ctext(&b, ip);
		hb_str(&b, " is neither permitted nor denied by domain of ");
		hb_ctext(&b, identity);
		break;
	case SPF_KIND_NONE:
		hb_str(&b, "domain of ");
		hb_ctext(&b, identity);
		hb_str(&b, " does not designate permitted sender hosts");
		break;
	default:
		hb_str(&b, res->kind == SPF_KIND_TEMPERROR ?
		    "temporary error" : "permanent error");
		hb_str(&b, " in processing domain of ");
		hb_ctext(&b, identity);
		break;
	}
	hb_str(&b, ")");
	if (b.full) {		/* cannot happen with bounded inputs */
		snprintf(res->received_spf, sizeof(res->received_spf), "%s", k);
		b.len = strlen(k);
		b.full = false;
	}
	hb_pair(&b, "receiver", receiver);
	hb_pair(&b, "client-ip", ip);
	hb_pair(&b, "envelope-from", sender);
	if (helo[0] != '\0')
		hb_pair(&b, "helo", helo);
	hb_pair(&b, "identity", "mailfrom");
	if (res->kind == SPF_KIND_TEMPERROR || res->kind == SPF_KIND_PERMERROR)
		hb_pair(&b, "problem", res->reason);
}

/* ---- the check on the worker ------------------------------------------- */

static void
set_result(struct spf_result *res, enum spf_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_result(struct spf_result *res, enum spf_kind kind, const char *fmt, ...)
{
	va_list ap;

	res->kind = kind;
	res->kind_name = spf_kind_name(kind);
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

/* RFC 7208 §4.3: a checkable domain (labels of 1..63, 2 or more labels,
 * 253 at most); else the result is none. */
static bool
domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0, labels = 0;

	if (len == 0 || len > 253 || d[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '.') {
			if (label == 0)
				return false;
			labels++;
			label = 0;
		} else if (++label > 63) {
			return false;
		}
	}
	if (label > 0)
		labels++;
	return labels >= 2;
}

static enum spf_kind
kind_of(SPF_result_t r, SPF_errcode_t err)
{
	switch (r) {
	case SPF_RESULT_INVALID:
		/* A record that does not compile (RFC 7208 §4.6: permerror);
		 * libspf2 leaves the result unset then. */
		return err == SPF_E_DNS_ERROR ? SPF_KIND_TEMPERROR :
		    SPF_KIND_PERMERROR;
	case SPF_RESULT_PASS:		return SPF_KIND_PASS;
	case SPF_RESULT_FAIL:		return SPF_KIND_FAIL;
	case SPF_RESULT_SOFTFAIL:	return SPF_KIND_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:	return SPF_KIND_NEUTRAL;
	case SPF_RESULT_NONE:		return SPF_KIND_NONE;
	case SPF_RESULT_PERMERROR:	return SPF_KIND_PERMERROR;
	default:			return SPF_KIND_TEMPERROR;
	}
}

/* The result of libspf2's response: kind, reason, explanation. */
static void
take_response(struct spf_req *r, SPF_response_t *resp)
{
	struct spf_result *res = &r->res;
	SPF_errcode_t err = SPF_response_errcode(resp);
	enum spf_kind kind;

	/* libspf2 1.2.10 leaves the result unset (INVALID) and the error
	 * code zero when the checked domain's record fails to load; the
	 * response's first error message tells a DNS failure from others. */
	if (err == SPF_E_SUCCESS && SPF_response_messages(resp) > 0 &&
	    SPF_response_message(resp, 0) != NULL)
		err = SPF_error_code(SPF_response_message(resp, 0));
	kind = kind_of(SPF_response_result(resp), err);
	char why[SPF_REASON_MAX];

	why[0] = '\0';
	if (SPF_response_messages(resp) > 0) {
		SPF_error_t *e = SPF_response_message(resp, 0);

		if (e != NULL && SPF_error_message(e) != NULL)
			printable(why, sizeof(why), SPF_error_message(e));
	}
	if (why[0] == '\0' && SPF_response_errcode(resp) != SPF_E_SUCCESS)
		printable(why, sizeof(why),
		    SPF_strerror(SPF_response_errcode(resp)));
	switch (kind) {
	case SPF_KIND_NONE:
		set_result(res, kind, "no SPF record%s%s", why[0] ? ": " : "",
		    why);
		break;
	case SPF_KIND_TEMPERROR:
	case SPF_KIND_PERMERROR:
		set_result(res, kind, "%s", why[0] ? why : "DNS error");
		break;
	default:
		set_result(res, kind, "%s",
		    SPF_response_reason(resp) == SPF_REASON_DEFAULT ?
		    "no mechanism matched (default result)" :
		    "matched a mechanism");
		break;
	}
	if (kind == SPF_KIND_FAIL && SPF_response_get_explanation(resp))
		printable(res->explanation, sizeof(res->explanation),
		    SPF_response_get_explanation(resp));
}

/* Our DNS layer's limits win over libspf2's result (spf_dns.c). */
static void
apply_stop(struct spf_req *r)
{
	static const char *why[] = {
		[SPF_STOP_TERMS] = "more than 10 DNS-querying terms",
		[SPF_STOP_VOIDS] = "more than 2 void DNS lookups",
		[SPF_STOP_QUERIES] = "more than 150 DNS queries",
		[SPF_STOP_UNSAFE] = "SPF record refused (a term too long "
		    "with macros)",
	};

	switch (r->lk.stop) {
	case SPF_STOP_NONE:
		break;
	case SPF_STOP_TIME:
		set_result(&r->res, SPF_KIND_TEMPERROR, "timeout");
		break;
	default:
		set_result(&r->res, SPF_KIND_PERMERROR, "%s", why[r->lk.stop]);
		break;
	}
}

static void
evaluate(struct spf_req *r)
{
	SPF_dns_server_t *layer = spf_dns_layer_new(r);
	SPF_server_t *srv = SPF_server_new_dns(layer, 0);
	SPF_response_t *resp = NULL;
	SPF_request_t *req;
	struct in_addr a4;
	struct in6_addr a6;

	if (srv == NULL)
		SPF_error("out of memory");
	SPF_server_set_rec_dom(srv, receiver);
	SPF_server_set_sanitize(srv, 1);
	if (SPF_server_set_explanation(srv, SPF_DEFAULT_EXPLANATION, &resp) !=
	    SPF_E_SUCCESS)
		SPF_error("cannot compile the default explanation");
	SPF_response_free(resp);
	resp = NULL;
	if ((req = SPF_request_new(srv)) == NULL)
		SPF_error("out of memory");
	if (inet_pton(AF_INET, r->ip, &a4) == 1) {
		SPF_request_set_ipv4(req, a4);
	} else if (inet_pton(AF_INET6, r->ip, &a6) == 1 &&
	    IN6_IS_ADDR_V4MAPPED(&a6)) {
		/* RFC 7208 §5: an IPv4-mapped address is checked as IPv4. */
		memcpy(&a4, &a6.s6_addr[12], 4);
		SPF_request_set_ipv4(req, a4);
	} else if (inet_pton(AF_INET6, r->ip, &a6) == 1) {
		SPF_request_set_ipv6(req, a6);
	}
	if (r->helo[0] != '\0')
		SPF_request_set_helo_dom(req, r->helo);
	SPF_request_set_env_from(req, r->sender);
	(void)SPF_request_query_mailfrom(req, &resp);
	if (resp != NULL)
		take_response(r, resp);
	else
		set_result(&r->res, SPF_KIND_TEMPERROR, "libspf2 gave no result");
	apply_stop(r);
	r->res.dns_terms = r->lk.terms;
	r->res.void_lookups = r->lk.voids;
	r->res.dns_queries = r->lk.queries;
	SPF_response_free(resp);
	SPF_request_free(req);
	SPF_server_free(srv);
	spf_dns_layer_free(layer);
}

/* RFC 7208 §2.4: the identity checked, the null sender being postmaster
 * at the HELO name; and its domain ("" if the sender has no '@'). */
static const char *
identity_of(const char *sender, const char *helo, char *out, size_t outlen)
{
	const char *at = strrchr(sender, '@');

	if (sender[0] != '\0')
		snprintf(out, outlen, "%s", sender);
	else
		snprintf(out, outlen, "postmaster@%s", helo);
	if (sender[0] == '\0')
		return helo;
	return at != NULL ? at + 1 : "";
}

static void
spf_run(struct work *w)
{
	struct spf_req *r = (struct spf_req *)w;
	char identity[SPF_SENDER_MAX + 16];
	const char *domain = identity_of(r->sender, r->helo, identity,
	    sizeof(identity));

	printable(r->res.domain, sizeof(r->res.domain), domain);
	if (r->too_long || !domain_ok(domain))
		set_result(&r->res, SPF_KIND_NONE, "malformed domain");
	else if (atomic_load(&r->stopping))
		set_result(&r->res, SPF_KIND_TEMPERROR, "cancelled");
	else
		evaluate(r);
	build_header(&r->res, r->ip, r->helo, r->sender, identity);
}

/* ---- the check on the loop ---------------------------------------------- */

static void
deliver(struct spf_req *r)
{
	ev_timer_stop(r->loop, &r->timer);
	r->state = SPF_S_DELIVERING;
	r->cb(r->arg, &r->res);
}

static void
spf_done(struct work *w)
{
	struct spf_req *r = (struct spf_req *)w;

	pending--;
	if (r->state == SPF_S_RUNNING)
		deliver(r);
	free(r);
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct spf_req *r = t->data;
	/* The worker still writes r->res: the caller gets a result of its
	 * own. */
	struct spf_result res;
	char identity[SPF_SENDER_MAX + 16];
	const char *domain = identity_of(r->sender, r->helo, identity,
	    sizeof(identity));

	(void)loop;
	(void)revents;
	atomic_store(&r->stopping, true);
	memset(&res, 0, sizeof(res));
	printable(res.domain, sizeof(res.domain), domain);
	set_result(&res, SPF_KIND_TEMPERROR, "timeout");
	build_header(&res, r->ip, r->helo, r->sender, identity);
	r->state = SPF_S_DELIVERING;
	r->cb(r->arg, &res);
	r->state = SPF_S_ABANDONED;
}

struct spf_req *
spf_check(struct dns_ctx *dns, const char *ip, const char *helo,
    const char *sender, double timeout, spf_cb cb, void *arg)
{
	struct spf_req *r;
	unsigned char a[16];
	double t;

	if (cb == NULL || ip == NULL || (inet_pton(AF_INET, ip, a) != 1 &&
	    inet_pton(AF_INET6, ip, a) != 1))
		return NULL;
	assert(workq_resolve != NULL);
	if (receiver[0] == '\0')
		spf_init(NULL);
	helo = helo != NULL ? helo : "";
	sender = sender != NULL ? sender : "";
	r = xcalloc(1, sizeof(*r));
	r->loop = dns_loop(dns);
	r->dns = dns;
	r->cb = cb;
	r->arg = arg;
	r->state = SPF_S_RUNNING;
	atomic_init(&r->stopping, false);
	snprintf(r->ip, sizeof(r->ip), "%s", ip);
	r->too_long = strlen(helo) > SPF_DOMAIN_MAX ||
	    strlen(sender) > SPF_SENDER_MAX;
	snprintf(r->helo, sizeof(r->helo), "%s", helo);
	snprintf(r->sender, sizeof(r->sender), "%s", sender);
	t = timeout > 0 ? timeout : SPF_TIMEOUT_DEFAULT;
	if (t > SPF_TIMEOUT_MAX)
		t = SPF_TIMEOUT_MAX;
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		r->deadline = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + t;
	}
	ev_timer_init(&r->timer, timeout_cb, t, 0);
	r->timer.data = r;
	ev_timer_start(r->loop, &r->timer);
	r->work.run = spf_run;
	r->work.done = spf_done;
	pending++;
	/* Mostly waiting on DNS: the pool for blocking lookups, not the CPU one. */
	workq_submit(workq_resolve, &r->work);
	return r;
}

void
spf_cancel(struct spf_req *r)
{
	if (r == NULL || r->state != SPF_S_RUNNING)
		return;
	ev_timer_stop(r->loop, &r->timer);
	atomic_store(&r->stopping, true);
	r->state = SPF_S_ABANDONED;
}
