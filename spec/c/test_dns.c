/*
 * test_dns.c — the resolver of src/dns against the real NSD of
 * spec/support/dns.lua (run from spec/unit/dns_spec.lua, which sets the
 * DNS_TEST_* environment; see dns_test_util.h).  Built with ASan, UBSan
 * and LeakSanitizer: a cancelled or dropped query that leaks fails the run.
 *
 * Callbacks only record what they got; every check runs after the loop
 * returned (a failed check longjmps, which must not cross ev_run).
 */
#include <pthread.h>

#include "unit.h"
#include "dns_test_util.h"

#define GOT_TEXT_MAX	8192
#define WAIT_S		10.0

struct got {
	bool		 done;
	int		 calls;
	double		 at;
	enum dns_status	 status;
	int		 rcode;
	bool		 secure, bogus, truncated;
	size_t		 nrr;
	char		 canon[DNS_NAME_MAX];
	char		 why[DNS_ERROR_MAX];
	char		 error[DNS_ERROR_MAX];
	char		 text[GOT_TEXT_MAX];	/* records, sorted, " | " */
	/* For TXT: the strings of the first record with two or more. */
	size_t		 nstrings;
	char		 strings[GOT_TEXT_MAX];
};

static struct ev_loop	*loop;
static struct dns_ctx	*ctx;
static struct test_env	 env;

static struct dns_ctx *
resolver(void)
{
	char err[256];

	if (ctx == NULL) {
		loop = ev_default_loop(0);
		ctx = dns_new(loop, &env.cfg, err, sizeof(err));
		if (ctx == NULL)
			unit_fail(__FILE__, __LINE__, "dns_new: %s", err);
	}
	return ctx;
}

static void
fmt_rr(const struct dns_rr *rr, char *out, size_t n)
{
	char esc[600];
	size_t o;

	switch (rr->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		snprintf(out, n, "%s", rr->addr.text);
		break;
	case DNS_T_MX:
		snprintf(out, n, "%u %s", rr->mx.preference, rr->mx.exchange);
		break;
	case DNS_T_TXT:
		snprintf(out, n, "\"%s\"", unit_escape(rr->txt.text, rr->txt.len,
		    esc, sizeof(esc)));
		break;
	case DNS_T_PTR:
	case DNS_T_CNAME:
		snprintf(out, n, "%s", rr->ptr.name);
		break;
	case DNS_T_TLSA:
		o = (size_t)snprintf(out, n, "%u %u %u ", rr->tlsa.usage,
		    rr->tlsa.selector, rr->tlsa.mtype);
		for (size_t i = 0; i < rr->tlsa.len && o + 3 < n; i++)
			o += (size_t)snprintf(out + o, n - o, "%02x",
			    rr->tlsa.data[i]);
		break;
	default:
		snprintf(out, n, "type %d, %zu octets", rr->type, rr->raw.len);
		break;
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
got_cb(void *arg, const struct dns_result *r)
{
	struct got *g = arg;
	char *lines[DNS_ANSWERS_MAX];
	char buf[DNS_ANSWERS_MAX][600];
	size_t o = 0;

	g->calls++;
	g->done = true;
	g->at = test_now();
	g->status = r->status;
	g->rcode = r->rcode;
	g->secure = r->secure;
	g->bogus = r->bogus;
	g->truncated = r->truncated;
	g->nrr = r->nrr;
	snprintf(g->canon, sizeof(g->canon), "%s",
	    r->canonname != NULL ? r->canonname : "");
	snprintf(g->why, sizeof(g->why), "%s", r->why_bogus);
	snprintf(g->error, sizeof(g->error), "%s", r->error);
	for (size_t i = 0; i < r->nrr && i < DNS_ANSWERS_MAX; i++) {
		fmt_rr(&r->rr[i], buf[i], sizeof(buf[i]));
		lines[i] = buf[i];
		if (r->rr[i].type == DNS_T_TXT && g->nstrings == 0 &&
		    r->rr[i].txt.nstrings > 1) {
			size_t so = 0;

			g->nstrings = r->rr[i].txt.nstrings;
			for (size_t k = 0; k < g->nstrings; k++) {
				char esc[600];
				const struct dns_txt_string *s =
				    &r->rr[i].txt.strings[k];

				so += (size_t)snprintf(g->strings + so,
				    sizeof(g->strings) - so, "%s[%s]",
				    k > 0 ? " " : "", unit_escape(s->s, s->len,
				    esc, sizeof(esc)));
				if (so >= sizeof(g->strings))
					break;
			}
		}
	}
	qsort(lines, r->nrr < DNS_ANSWERS_MAX ? r->nrr : DNS_ANSWERS_MAX,
	    sizeof(lines[0]), cmp_str);
	g->text[0] = '\0';
	for (size_t i = 0; i < r->nrr && i < DNS_ANSWERS_MAX; i++) {
		int w = snprintf(g->text + o, sizeof(g->text) - o, "%s%s",
		    i > 0 ? " | " : "", lines[i]);

		if (w < 0 || (size_t)w >= sizeof(g->text) - o)
			break;
		o += (size_t)w;
	}
}

/* Look name up and wait for the answer (fails the case after WAIT_S). */
static struct got *
resolve(const char *name, int type)
{
	struct got *g = unit_alloc(sizeof(*g));

	memset(g, 0, sizeof(*g));
	(void)dns_query(resolver(), name, type, 0, got_cb, g);
	if (!test_run_until(loop, &g->done, WAIT_S))
		unit_fail(__FILE__, __LINE__, "no callback for %s", name);
	CHECK_INT(g->calls, 1);
	return g;
}

#define CHECK_OK(g, want) do {						\
	CHECK_STR(dns_status_name((g)->status), "OK");			\
	CHECK_STR((g)->text, (want));					\
} while (0)

/* ---- record types --------------------------------------------------- */

static void
t_a(void)
{
	struct got *g = resolve("www.rr.test", DNS_T_A);

	CHECK_OK(g, "192.0.2.1 | 192.0.2.2");
	CHECK_INT(g->rcode, 0);
	CHECK(!g->secure && !g->bogus && !g->truncated);
	CHECK_STR(g->canon, "");
}

static void
t_aaaa(void)
{
	CHECK_OK(resolve("www.rr.test", DNS_T_AAAA), "2001:db8::1");
}

static void
t_cname_followed(void)
{
	struct got *g = resolve("alias.rr.test", DNS_T_A);

	CHECK_OK(g, "192.0.2.1 | 192.0.2.2");
	CHECK_STR(g->canon, "www.rr.test");
}

static void
t_cname_itself(void)
{
	CHECK_OK(resolve("alias.rr.test", DNS_T_CNAME), "www.rr.test");
}

static void
t_mx(void)
{
	CHECK_OK(resolve("mx.rr.test", DNS_T_MX), "10 mx1.rr.test | 20 mx2.rr.test");
}

static void
t_txt_records_and_strings(void)
{
	struct got *g = resolve("txt.rr.test", DNS_T_TXT);

	CHECK_OK(g, "\"first parts\" | \"second\"");
	CHECK_INT(g->nstrings, 3);
	CHECK_STR(g->strings, "[first] [ part] [s]");
}

static void
t_txt_255(void)
{
	struct got *g = resolve("long.rr.test", DNS_T_TXT);
	char want[260];

	memset(want, 'a', 255);
	want[255] = '\0';
	CHECK_STR(dns_status_name(g->status), "OK");
	CHECK_INT(strlen(g->text), 255 + 2);
	CHECK(strstr(g->text, want) != NULL);
}

static void
t_txt_empty_and_binary(void)
{
	struct got *g = resolve("odd.rr.test", DNS_T_TXT);

	CHECK_OK(g, "\"tab\\x09quote\\\"nul\\x00end\"");
	CHECK_INT(g->nstrings, 2);
	CHECK_STR(g->strings, "[] [tab\\x09quote\\\"nul\\x00end]");
}

static void
t_ptr_v4(void)
{
	CHECK_OK(resolve("10.2.0.192.in-addr.arpa", DNS_T_PTR),
	    "mail.fcrdns.test");
}

static void
t_ptr_v6(void)
{
	char name[DNS_PTR_NAME_MAX];

	CHECK_INT(dns_ptr_name("2001:db8::10", name, sizeof(name)), 0);
	CHECK_OK(resolve(name, DNS_T_PTR), "mail6.fcrdns.test");
}

static void
t_tlsa_insecure(void)
{
	struct got *g = resolve("_25._tcp.mx1.rr.test", DNS_T_TLSA);

	CHECK_OK(g, "3 1 1 0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef");
	CHECK(!g->secure);
}

static void
t_other_type_raw(void)
{
	struct got *g = resolve("rr.test", DNS_T_SOA);

	CHECK_STR(dns_status_name(g->status), "OK");
	CHECK_INT(g->nrr, 1);
	CHECK(strncmp(g->text, "type 6, ", 8) == 0);
}

/* ---- statuses and rcodes -------------------------------------------- */

static void
t_nxdomain(void)
{
	struct got *g = resolve("nope.rr.test", DNS_T_A);

	CHECK_STR(dns_status_name(g->status), "NXDOMAIN");
	CHECK_INT(g->rcode, 3);
	CHECK_INT(g->nrr, 0);
}

static void
t_nodata(void)
{
	struct got *g = resolve("onlytxt.rr.test", DNS_T_A);

	CHECK_STR(dns_status_name(g->status), "NODATA");
	CHECK_INT(g->rcode, 0);
	CHECK_INT(g->nrr, 0);
}

static void
t_servfail(void)
{
	struct got *g = resolve("x.servfail.test", DNS_T_A);

	CHECK_STR(dns_status_name(g->status), "SERVFAIL");
	CHECK_INT(g->rcode, 2);
	CHECK(!g->bogus);
}

static void
t_truncated_at_cap(void)
{
	struct got *g = resolve("many.rr.test", DNS_T_A);

	CHECK_STR(dns_status_name(g->status), "OK");
	CHECK_INT(g->nrr, DNS_ANSWERS_MAX);
	CHECK(g->truncated);
}

static void
t_invalid_name(void)
{
	struct got *g = resolve("a..b", DNS_T_A);

	CHECK_STR(dns_status_name(g->status), "ERROR");
	CHECK(g->error[0] != '\0');
	g = resolve("", DNS_T_A);
	CHECK_STR(dns_status_name(g->status), "ERROR");
	CHECK_STR(g->error, "invalid query name");
}

static void
t_invalid_type(void)
{
	struct got *g = resolve("www.rr.test", 70000);

	CHECK_STR(dns_status_name(g->status), "ERROR");
	CHECK_STR(g->error, "invalid record type 70000");
}

/* ---- DNSSEC --------------------------------------------------------- */

static void
t_secure(void)
{
	struct got *g = resolve("www.secure.test", DNS_T_A);

	CHECK_OK(g, "192.0.2.1");
	CHECK(g->secure);
	CHECK(!g->bogus);
}

static void
t_tlsa_secure(void)
{
	struct got *g = resolve("_25._tcp.mx.secure.test", DNS_T_TLSA);

	CHECK_OK(g, "3 1 1 8bd1da95272f7fa4ffb24137fc0ed03aae67e5c4d8b3c"
	    "50734e1050a7920b922");
	CHECK(g->secure);
}

static void
t_secure_nxdomain(void)
{
	struct got *g = resolve("nope.secure.test", DNS_T_A);

	CHECK_STR(dns_status_name(g->status), "NXDOMAIN");
	CHECK(g->secure);
}

static void
t_bogus(void)
{
	struct got *g = resolve("www.bogus.test", DNS_T_A);

	CHECK_STR(dns_status_name(g->status), "SERVFAIL");
	CHECK(g->bogus);
	CHECK(!g->secure);
	CHECK_INT(g->nrr, 0);
	CHECK(g->why[0] != '\0');
}

/* ---- MX routing cases (RFC 5321 §5.1, RFC 7505) ----------------------- */

static void
t_mx_preferences(void)
{
	CHECK_OK(resolve("multi.mx.test", DNS_T_MX),
	    "10 mx1.mx.test | 20 mx2.mx.test | 20 mx3.mx.test");
}

static void
t_mx_implicit(void)
{
	CHECK_STR(dns_status_name(resolve("implicit.mx.test", DNS_T_MX)->status),
	    "NODATA");
	CHECK_OK(resolve("implicit.mx.test", DNS_T_A), "192.0.2.25");
}

static void
t_mx_null(void)
{
	CHECK_OK(resolve("nullmx.mx.test", DNS_T_MX), "0 .");
}

static void
t_mx_through_cname(void)
{
	struct got *g = resolve("alias.mx.test", DNS_T_MX);

	CHECK_OK(g, "10 mx1.mx.test | 20 mx2.mx.test | 20 mx3.mx.test");
	CHECK_STR(g->canon, "multi.mx.test");
}

/* ---- DNSBL and FCrDNS -------------------------------------------------- */

static void
t_dnsbl_listed(void)
{
	char name[DNS_PTR_NAME_MAX];

	CHECK_INT(dns_dnsbl_name("127.0.0.2", "dnsbl.test", name, sizeof(name)), 0);
	CHECK_STR(name, "2.0.0.127.dnsbl.test");
	CHECK_OK(resolve(name, DNS_T_A), "127.0.0.2");
	CHECK_OK(resolve(name, DNS_T_TXT),
	    "\"listed: see https://dnsbl.test/lookup?ip=127.0.0.2\"");
	CHECK_INT(dns_dnsbl_name("2001:db8::2", "dnsbl.test", name, sizeof(name)), 0);
	CHECK_OK(resolve(name, DNS_T_A), "127.0.0.2");
}

static void
t_dnsbl_not_listed(void)
{
	char name[DNS_PTR_NAME_MAX];

	CHECK_INT(dns_dnsbl_name("192.0.2.1", "dnsbl.test", name, sizeof(name)), 0);
	CHECK_STR(dns_status_name(resolve(name, DNS_T_A)->status), "NXDOMAIN");
}

/* The forward-confirmed reverse name of ip, or "" (RFC 8601 §3 iprev). */
static const char *
fcrdns(const char *ip, int family_type)
{
	char name[DNS_PTR_NAME_MAX];
	struct got *p, *f;
	char *host = unit_alloc(DNS_NAME_MAX);

	CHECK_INT(dns_ptr_name(ip, name, sizeof(name)), 0);
	p = resolve(name, DNS_T_PTR);
	if (p->status != DNS_OK)
		return dns_status_name(p->status);
	snprintf(host, DNS_NAME_MAX, "%s", p->text);
	f = resolve(host, family_type);
	if (f->status == DNS_OK && strstr(f->text, ip) != NULL)
		return host;
	return "mismatch";
}

static void
t_fcrdns(void)
{
	CHECK_STR(fcrdns("192.0.2.10", DNS_T_A), "mail.fcrdns.test");
	CHECK_STR(fcrdns("192.0.2.11", DNS_T_A), "mismatch");
	CHECK_STR(fcrdns("192.0.2.12", DNS_T_A), "NXDOMAIN");
	CHECK_STR(fcrdns("2001:db8::10", DNS_T_AAAA), "mail6.fcrdns.test");
}

/* ---- names ------------------------------------------------------------ */

static void
t_ptr_names(void)
{
	char out[DNS_PTR_NAME_MAX];

	CHECK_INT(dns_ptr_name("192.0.2.1", out, sizeof(out)), 0);
	CHECK_STR(out, "1.2.0.192.in-addr.arpa");
	CHECK_INT(dns_ptr_name("2001:db8::1", out, sizeof(out)), 0);
	CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0."
	    "1.0.0.2.ip6.arpa");
	CHECK_INT(dns_ptr_name("::ffff:192.0.2.1", out, sizeof(out)), 0);
	CHECK(strstr(out, "f.f.f.f.0.0.0.0") != NULL);
	CHECK_INT(dns_ptr_name("192.0.2", out, sizeof(out)), -1);
	CHECK_INT(dns_ptr_name("example.org", out, sizeof(out)), -1);
	CHECK_INT(dns_ptr_name("192.0.2.1", out, 22), -1);	/* n - 1 */
	CHECK_INT(dns_ptr_name("192.0.2.1", out, 23), 0);	/* n */
	CHECK_INT(dns_dnsbl_name("192.0.2.1", ".zen.example.", out,
	    sizeof(out)), 0);
	CHECK_STR(out, "1.2.0.192.zen.example.");
	CHECK_INT(dns_dnsbl_name("192.0.2.1", "", out, sizeof(out)), -1);
	CHECK_INT(dns_dnsbl_name("192.0.2.1", NULL, out, sizeof(out)), -1);
}

/* ---- timing, parallel queries, cancel ---------------------------------- */

static void
t_slow_times_out_alone(void)
{
	struct got *slow = unit_alloc(sizeof(*slow));
	struct got *fast = unit_alloc(5 * sizeof(*fast));
	const char *names[5] = { "n1.spf.test", "n2.spf.test", "n3.spf.test",
	    "n4.spf.test", "n5.spf.test" };
	double t0 = test_now();

	memset(slow, 0, sizeof(*slow));
	memset(fast, 0, 5 * sizeof(*fast));
	(void)dns_query(resolver(), "x.slow.test", DNS_T_A, 1.0, got_cb, slow);
	for (int i = 0; i < 5; i++)
		(void)dns_query(ctx, names[i], DNS_T_A, 0, got_cb, &fast[i]);
	CHECK(test_run_until(loop, &slow->done, WAIT_S));
	CHECK_STR(dns_status_name(slow->status), "TIMEOUT");
	CHECK(slow->at - t0 >= 0.95);
	CHECK(slow->at - t0 < 3.0);
	for (int i = 0; i < 5; i++) {
		CHECK(fast[i].done);
		CHECK_OK(&fast[i], "192.0.2.250");
		CHECK(fast[i].at < slow->at);	/* served meanwhile */
	}
	CHECK_INT(dns_pending(ctx), 0);
}

static void
t_no_synchronous_callback(void)
{
	struct got *g = unit_alloc(sizeof(*g));

	(void)resolve("www.rr.test", DNS_T_A);		/* now cached */
	memset(g, 0, sizeof(*g));
	(void)dns_query(ctx, "www.rr.test", DNS_T_A, 0, got_cb, g);
	CHECK_INT(g->calls, 0);
	(void)dns_query(ctx, "", DNS_T_A, 0, got_cb, g);	/* an error */
	CHECK_INT(g->calls, 0);
	test_run_for(loop, 0.3);
	CHECK_INT(g->calls, 2);
}

static void
t_cancel(void)
{
	struct got *g = unit_alloc(3 * sizeof(*g));
	struct got *later = unit_alloc(sizeof(*later));
	struct dns_query *q;

	memset(g, 0, 3 * sizeof(*g));
	memset(later, 0, sizeof(*later));
	/* Before libunbound answers, an error still queued, a slow one. */
	dns_cancel(dns_query(resolver(), "n6.spf.test", DNS_T_A, 0, got_cb, &g[0]));
	dns_cancel(dns_query(ctx, "", DNS_T_A, 0, got_cb, &g[1]));
	q = dns_query(ctx, "y.slow.test", DNS_T_A, 0.5, got_cb, &g[2]);
	test_run_for(loop, 0.1);
	dns_cancel(q);
	(void)dns_query(ctx, "n7.spf.test", DNS_T_A, 0, got_cb, later);
	CHECK(test_run_until(loop, &later->done, WAIT_S));
	test_run_for(loop, 0.8);	/* past the slow query's timeout */
	CHECK_INT(g[0].calls + g[1].calls + g[2].calls, 0);
	CHECK_INT(dns_pending(ctx), 0);
}

struct canceller {
	struct dns_query	*victim;
	struct dns_query	*self;
	int			 calls;
	bool			 done;
};

static void
cancel_cb(void *arg, const struct dns_result *r)
{
	struct canceller *c = arg;

	(void)r;
	c->calls++;
	c->done = true;
	dns_cancel(c->victim);	/* another pending query */
	dns_cancel(c->self);	/* itself, being delivered: nothing */
}

static void
t_cancel_inside_callback(void)
{
	struct canceller *c = unit_alloc(sizeof(*c));
	struct got *victim = unit_alloc(sizeof(*victim));

	memset(c, 0, sizeof(*c));
	memset(victim, 0, sizeof(*victim));
	c->victim = dns_query(resolver(), "z.slow.test", DNS_T_A, 0.5, got_cb,
	    victim);
	c->self = dns_query(ctx, "www.rr.test", DNS_T_A, 0, cancel_cb, c);
	CHECK(test_run_until(loop, &c->done, WAIT_S));
	test_run_for(loop, 0.8);
	CHECK_INT(c->calls, 1);
	CHECK_INT(victim->calls, 0);
	CHECK_INT(dns_pending(ctx), 0);
}

struct waiter {
	const char		*name;
	double			 timeout;
	struct dns_result	*res;
	volatile bool		 done;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;

	(void)dns_query_wait(ctx, w->name, DNS_T_A, w->timeout, &w->res);
	w->done = true;
	return NULL;
}

static void
t_query_wait_from_thread(void)
{
	struct waiter w[2] = {
		{ "www.rr.test", 0, NULL, false },
		{ "w.slow.test", 0.5, NULL, false },
	};
	pthread_t th[2];
	volatile bool both = false;
	double end = test_now() + WAIT_S;

	(void)resolver();
	for (int i = 0; i < 2; i++)
		CHECK_INT(pthread_create(&th[i], NULL, waiter_main, &w[i]), 0);
	while (!both && test_now() < end) {
		test_run_for(loop, 0.05);
		both = w[0].done && w[1].done;
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(both);
	CHECK_STR(dns_status_name(w[0].res->status), "OK");
	CHECK_INT(w[0].res->nrr, 2);
	CHECK_STR(dns_status_name(w[1].res->status), "TIMEOUT");
	dns_result_free(w[0].res);
	dns_result_free(w[1].res);
}

static void
t_query_wait_without_loop(void)
{
	/* The loop does not run: the waiter gives up on its own. */
	struct waiter w = { "v.slow.test", 0.2, NULL, false };
	pthread_t th;
	double t0 = test_now();

	(void)resolver();
	CHECK_INT(pthread_create(&th, NULL, waiter_main, &w), 0);
	pthread_join(th, NULL);
	CHECK_STR(dns_status_name(w.res->status), "TIMEOUT");
	CHECK(test_now() - t0 < 3.0);
	dns_result_free(w.res);
	test_run_for(loop, 0.5);	/* the posted query runs and ends */
	CHECK_INT(dns_pending(ctx), 0);
}

/* ---- configuration and shutdown -------------------------------------- */

static void
t_bad_settings(void)
{
	struct dns_config cfg = env.cfg;
	const char *bad_ta[] = { "secure.test. IN DS not a ds record", NULL };
	const char *bad_fwd[] = { "not-an-address", NULL };
	char err[256];

	(void)resolver();
	cfg.trust_anchors = bad_ta;
	CHECK(dns_new(loop, &cfg, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "dns: ") == err);
	cfg = env.cfg;
	cfg.servers = bad_fwd;
	CHECK(dns_new(loop, &cfg, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "forwarder") != NULL);
	cfg = env.cfg;
	cfg.timeout = -1;
	CHECK(dns_new(loop, &cfg, err, sizeof(err)) == NULL);
}

static void
t_free_with_pending(void)
{
	struct got *g = unit_alloc(2 * sizeof(*g));
	struct dns_ctx *c2;
	char err[256];

	(void)resolver();
	memset(g, 0, 2 * sizeof(*g));
	c2 = dns_new(loop, &env.cfg, err, sizeof(err));
	CHECK(c2 != NULL);
	(void)dns_query(c2, "u.slow.test", DNS_T_A, 5, got_cb, &g[0]);
	test_run_for(loop, 0.1);	/* in flight at libunbound */
	(void)dns_query(c2, "", DNS_T_A, 5, got_cb, &g[1]);	/* queued */
	dns_free(c2);
	test_run_for(loop, 0.2);
	CHECK_INT(g[0].calls + g[1].calls, 0);
}

/* ---- dns_result_dup ---------------------------------------------------- */

struct dup_got {
	bool			 done;
	struct dns_result	*copy;
};

static void
dup_cb(void *arg, const struct dns_result *r)
{
	struct dup_got *d = arg;

	d->copy = dns_result_dup(r);
	d->done = true;
}

/* A copy kept past the callback reads the same as the answer (ASan checks
 * that it owns every byte and that dns_result_free frees them all). */
static void
t_result_dup(void)
{
	static const struct {
		const char	*name;
		int		 type;
	} q[] = {
		{ "www.rr.test", DNS_T_A }, { "www.rr.test", DNS_T_AAAA },
		{ "alias.rr.test", DNS_T_A }, { "mx.rr.test", DNS_T_MX },
		{ "txt.rr.test", DNS_T_TXT }, { "odd.rr.test", DNS_T_TXT },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR },
		{ "_25._tcp.mx1.rr.test", DNS_T_TLSA }, { "rr.test", DNS_T_SOA },
		{ "www.bogus.test", DNS_T_A }, { "nx.rr.test", DNS_T_A },
	};

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		struct got *want = resolve(q[i].name, q[i].type);
		struct got *g = unit_alloc(sizeof(*g));
		struct dup_got d = { false, NULL };

		(void)dns_query(resolver(), q[i].name, q[i].type, 0, dup_cb, &d);
		if (!test_run_until(loop, &d.done, WAIT_S))
			unit_fail(__FILE__, __LINE__, "no callback for %s",
			    q[i].name);
		memset(g, 0, sizeof(*g));
		got_cb(g, d.copy);
		CHECK_INT(g->status, want->status);
		CHECK_INT(g->nrr, want->nrr);
		CHECK_INT(g->bogus, want->bogus);
		CHECK_STR(g->text, want->text);
		CHECK_STR(g->strings, want->strings);
		CHECK_STR(g->canon, want->canon);
		CHECK_STR(g->why, want->why);
		CHECK_STR(d.copy->qname, q[i].name);
		dns_result_free(d.copy);
	}
}

static void
t_free_resolver(void)
{
	(void)resolver();
	CHECK_INT(dns_pending(ctx), 0);
	dns_free(ctx);
	ctx = NULL;
}

static const struct unit_case cases[] = {
	{ "A records", t_a },
	{ "AAAA record", t_aaaa },
	{ "CNAME followed by libunbound", t_cname_followed },
	{ "CNAME record itself", t_cname_itself },
	{ "MX records", t_mx },
	{ "TXT records and their strings", t_txt_records_and_strings },
	{ "TXT string of 255 octets", t_txt_255 },
	{ "TXT with an empty string and binary bytes", t_txt_empty_and_binary },
	{ "PTR IPv4", t_ptr_v4 },
	{ "PTR IPv6", t_ptr_v6 },
	{ "TLSA without DNSSEC is not secure", t_tlsa_insecure },
	{ "other types keep their raw data", t_other_type_raw },
	{ "NXDOMAIN", t_nxdomain },
	{ "NODATA", t_nodata },
	{ "SERVFAIL", t_servfail },
	{ "answers past DNS_ANSWERS_MAX are cut and flagged", t_truncated_at_cap },
	{ "an invalid name is an error from the loop", t_invalid_name },
	{ "an invalid type is an error", t_invalid_type },
	{ "signed zone validates (secure)", t_secure },
	{ "TLSA in a signed zone is secure", t_tlsa_secure },
	{ "NXDOMAIN in a signed zone is secure", t_secure_nxdomain },
	{ "broken signature is bogus, without records", t_bogus },
	{ "MX preferences", t_mx_preferences },
	{ "implicit MX (no MX, an A)", t_mx_implicit },
	{ "null MX (RFC 7505)", t_mx_null },
	{ "MX through a CNAME", t_mx_through_cname },
	{ "DNSBL listed (IPv4 and IPv6)", t_dnsbl_listed },
	{ "DNSBL not listed", t_dnsbl_not_listed },
	{ "FCrDNS match, mismatch, missing PTR", t_fcrdns },
	{ "PTR and DNSBL names", t_ptr_names },
	{ "a slow zone times out on its own timeout while others complete",
	    t_slow_times_out_alone },
	{ "callbacks never run inside dns_query", t_no_synchronous_callback },
	{ "cancel before any answer", t_cancel },
	{ "cancel from inside a callback", t_cancel_inside_callback },
	{ "dns_query_wait from worker threads", t_query_wait_from_thread },
	{ "dns_query_wait returns when the loop does not run",
	    t_query_wait_without_loop },
	{ "bad settings fail dns_new", t_bad_settings },
	{ "dns_free drops pending queries", t_free_with_pending },
	{ "dns_result_dup copies every record type", t_result_dup },
	{ "dns_free of the shared resolver", t_free_resolver },
};

int
main(void)
{
	if (test_env_load(&env) != 0)
		return 1;
	return unit_run(cases, sizeof(cases) / sizeof(cases[0]));
}
