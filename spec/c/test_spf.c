/*
 * test_spf.c — SPF checks (src/mailauth/spf.c) on the CPU pool against the
 * zones of spec/fixtures/dns/spf.test.zone served by the real NSD of
 * spec/support/dns.lua (run from spec/unit/spf_spec.lua).  The client
 * addresses are documentation addresses: 192.0.2.1 and 2001:db8::1 are
 * permitted by the zone, 192.0.2.200 and 2001:db8:1::1 are not.
 *
 * Callbacks only copy the result; checks run after the loop returned.
 */
#include "unit.h"
#include "dns_test_util.h"
#include "mailauth/spf.h"
#include "util/workq.h"

#define WAIT_S		15.0
#define RECEIVER	"mx.luasmtpd.test"

struct got {
	bool			 done;
	int			 calls;
	double			 at;
	struct spf_result	 r;
};

static struct ev_loop	*loop;
static struct dns_ctx	*dns;
static struct test_env	 env;

static void
setup(void)
{
	char err[256];

	if (dns != NULL)
		return;
	loop = ev_default_loop(0);
	workq_init_pools(loop, 1);
	spf_init(RECEIVER);
	dns = dns_new(loop, &env.cfg, err, sizeof(err));
	if (dns == NULL)
		unit_fail(__FILE__, __LINE__, "dns_new: %s", err);
}

static void
got_cb(void *arg, const struct spf_result *r)
{
	struct got *g = arg;

	g->calls++;
	g->done = true;
	g->at = test_now();
	g->r = *r;
}

static struct spf_result *
check_t(const char *ip, const char *helo, const char *sender, double timeout)
{
	struct got *g = unit_alloc(sizeof(*g));

	setup();
	memset(g, 0, sizeof(*g));
	if (spf_check(dns, ip, helo, sender, timeout, got_cb, g) == NULL)
		unit_fail(__FILE__, __LINE__, "spf_check refused %s", ip);
	if (g->calls != 0)
		unit_fail(__FILE__, __LINE__, "callback inside spf_check");
	if (!test_run_until(loop, &g->done, WAIT_S))
		unit_fail(__FILE__, __LINE__, "no result for %s", sender);
	CHECK_INT(g->calls, 1);
	return &g->r;
}

static struct spf_result *
check(const char *ip, const char *sender)
{
	return check_t(ip, "mail.example", sender, 10);
}

#define CHECK_KIND(res, want) do {					\
	const struct spf_result *r_ = (res);				\
	if (strcmp(r_->kind_name, (want)) != 0)				\
		unit_fail(__FILE__, __LINE__, "result %s (%s), want %s", \
		    r_->kind_name, r_->reason, (want));			\
} while (0)

/* ---- every result kind -------------------------------------------------- */

static void
t_pass(void)
{
	struct spf_result *r = check("192.0.2.1", "alice@pass.spf.test");

	CHECK_KIND(r, "pass");
	CHECK_STR(r->domain, "pass.spf.test");
	CHECK_STR(r->explanation, "");
	CHECK_STR(r->received_spf, "pass (" RECEIVER ": domain of "
	    "alice@pass.spf.test designates 192.0.2.1 as permitted sender) "
	    "receiver=" RECEIVER "; client-ip=192.0.2.1; "
	    "envelope-from=\"alice@pass.spf.test\"; helo=mail.example; "
	    "identity=mailfrom;");
}

static void
t_fail(void)
{
	struct spf_result *r = check("192.0.2.200", "alice@pass.spf.test");

	CHECK_KIND(r, "fail");
	CHECK_STR(r->explanation,
	    "192.0.2.200 is not allowed to send mail for pass.spf.test");
	CHECK(strstr(r->received_spf, "fail (" RECEIVER ": domain of "
	    "alice@pass.spf.test does not designate 192.0.2.200 as permitted "
	    "sender) ") == r->received_spf);
	CHECK_KIND(check("192.0.2.1", "x@fail.spf.test"), "fail");
}

static void
t_softfail(void)
{
	struct spf_result *r = check("192.0.2.1", "x@softfail.spf.test");

	CHECK_KIND(r, "softfail");
	CHECK(strstr(r->received_spf, "domain of transitioning "
	    "x@softfail.spf.test does not designate") != NULL);
}

static void
t_neutral(void)
{
	struct spf_result *r = check("192.0.2.1", "x@neutral.spf.test");

	CHECK_KIND(r, "neutral");
	CHECK(strstr(r->received_spf, "192.0.2.1 is neither permitted nor "
	    "denied by domain of x@neutral.spf.test") != NULL);
}

static void
t_none(void)
{
	struct spf_result *r = check("192.0.2.1", "x@nospf.spf.test");

	CHECK_KIND(r, "none");
	CHECK(strstr(r->received_spf, "does not designate permitted sender "
	    "hosts") != NULL);
	CHECK_KIND(check("192.0.2.1", "x@nx.spf.test"), "none");
}

static void
t_temperror(void)
{
	struct spf_result *r = check("192.0.2.1", "x@temperror.spf.test");

	CHECK_KIND(r, "temperror");
	CHECK(strstr(r->received_spf, "problem=") != NULL);
	CHECK_KIND(check("192.0.2.1", "x@y.servfail.test"), "temperror");
}

static void
t_permerror(void)
{
	struct spf_result *r = check("192.0.2.1", "x@permerror.spf.test");

	CHECK_KIND(r, "permerror");
	CHECK(r->reason[0] != '\0');
	CHECK(strstr(r->received_spf, "permanent error in processing domain "
	    "of x@permerror.spf.test") != NULL);
	CHECK_KIND(check("192.0.2.1", "x@twice.spf.test"), "permerror");
}

static void
t_split_record(void)
{
	CHECK_KIND(check("192.0.2.1", "x@split.spf.test"), "pass");
	CHECK_KIND(check("192.0.2.2", "x@split.spf.test"), "fail");
}

/* ---- include, redirect, macros, exp ----------------------------------- */

static void
t_include(void)
{
	CHECK_KIND(check("192.0.2.1", "x@include.spf.test"), "pass");
	CHECK_KIND(check("192.0.2.200", "x@include.spf.test"), "fail");
	CHECK_KIND(check("192.0.2.1", "x@incnone.spf.test"), "permerror");
}

static void
t_redirect(void)
{
	struct spf_result *r = check("192.0.2.1", "x@redirect.spf.test");

	CHECK_KIND(r, "softfail");
	CHECK_STR(r->domain, "redirect.spf.test");
}

static void
t_macros(void)
{
	CHECK_KIND(check("192.0.2.1", "alice@macro.spf.test"), "pass");
	CHECK_KIND(check("192.0.2.1", "bob@macro.spf.test"), "fail");
	CHECK_KIND(check("192.0.2.9", "alice@macro.spf.test"), "fail");
	CHECK_KIND(check("2001:db8::1", "alice@macro.spf.test"), "pass");
	CHECK_KIND(check_t("192.0.2.1", "good.example", "x@helo.spf.test", 10),
	    "pass");
	CHECK_KIND(check_t("192.0.2.1", "bad.example", "x@helo.spf.test", 10),
	    "fail");
}

static void
t_macro_malformed_name(void)
{
	CHECK_KIND(check("192.0.2.1", "a..b@badname.spf.test"), "pass");
	CHECK_KIND(check("192.0.2.1", "ok@badname.spf.test"), "pass");
}

static void
t_explanation(void)
{
	struct spf_result *r = check("192.0.2.200", "x@explained.spf.test");

	CHECK_KIND(r, "fail");
	CHECK_STR(r->explanation, "192.0.2.200 is not one of "
	    "explained.spf.test's designated mail servers");
	CHECK_INT(r->dns_terms, 0);	/* exp= is no DNS-querying term */
}

/* ---- mechanisms and IPv6 ------------------------------------------------- */

static void
t_mx_mechanism(void)
{
	struct spf_result *r = check("192.0.2.1", "x@mx.spf.test");

	CHECK_KIND(r, "pass");
	CHECK_INT(r->dns_terms, 1);	/* the MX lookup; its A is part of it */
	CHECK_INT(r->dns_queries, 3);	/* TXT, MX, A */
	CHECK_KIND(check("192.0.2.2", "x@mx.spf.test"), "fail");
}

static void
t_ipv6(void)
{
	struct spf_result *r = check("2001:db8::1", "x@v6.spf.test");

	CHECK_KIND(r, "pass");
	CHECK(strstr(r->received_spf, "client-ip=\"2001:db8::1\";") != NULL);
	CHECK_KIND(check("2001:db8:1::1", "x@v6.spf.test"), "fail");
	CHECK_KIND(check("2001:db8::1", "x@pass.spf.test"), "pass");
	CHECK_KIND(check("2001:db8::1", "x@a6.spf.test"), "pass");
	CHECK_KIND(check("2001:db8::2", "x@a6.spf.test"), "fail");
	/* RFC 7208 §5: an IPv4-mapped address is checked as IPv4. */
	CHECK_KIND(check("::ffff:192.0.2.1", "x@pass.spf.test"), "pass");
}

/* ---- RFC 7208 §4.6.4 limits ---------------------------------------------- */

static void
t_ten_lookups(void)
{
	struct spf_result *r = check("192.0.2.1", "x@ten.spf.test");

	CHECK_KIND(r, "pass");
	CHECK_INT(r->dns_terms, 10);
}

static void
t_eleven_lookups_through_include(void)
{
	struct spf_result *r = check("192.0.2.1", "x@eleven.spf.test");

	CHECK_KIND(r, "permerror");
	CHECK_STR(r->reason, "more than 10 DNS-querying terms");
	CHECK(strstr(r->received_spf, "problem=\"more than 10 DNS-querying "
	    "terms\";") != NULL);
}

static void
t_eleventh_term_would_match(void)
{
	CHECK_KIND(check("192.0.2.1", "x@flat11.spf.test"), "permerror");
}

static void
t_two_void_lookups(void)
{
	struct spf_result *r = check("192.0.2.1", "x@void2.spf.test");

	CHECK_KIND(r, "pass");
	CHECK_INT(r->void_lookups, 2);
}

static void
t_three_void_lookups(void)
{
	struct spf_result *r = check("192.0.2.1", "x@void3.spf.test");

	CHECK_KIND(r, "permerror");
	CHECK_STR(r->reason, "more than 2 void DNS lookups");
}

static void
t_unsafe_macro_record(void)
{
	struct spf_result *r = check("192.0.2.1", "x@longmacro.spf.test");

	CHECK_KIND(r, "permerror");
	CHECK(strstr(r->reason, "refused") != NULL);
}

static void
t_unsafe_macro_explanation(void)
{
	struct spf_result *r = check("192.0.2.1", "x@expcve.spf.test");

	CHECK_KIND(r, "fail");
	CHECK_STR(r->explanation,
	    "192.0.2.1 is not allowed to send mail for expcve.spf.test");
}

/* ---- identities and the header ------------------------------------------ */

static void
t_null_sender_uses_helo(void)
{
	struct spf_result *r = check_t("192.0.2.1", "pass.spf.test", "", 10);

	CHECK_KIND(r, "pass");
	CHECK_STR(r->domain, "pass.spf.test");
	CHECK(strstr(r->received_spf, "domain of postmaster@pass.spf.test "
	    "designates") != NULL);
	CHECK(strstr(r->received_spf, "envelope-from=\"\";") != NULL);
}

static void
t_malformed_domain(void)
{
	char longs[400];

	CHECK_STR(check("192.0.2.1", "x@nodot")->reason, "malformed domain");
	CHECK_KIND(check("192.0.2.1", "no-at-sign"), "none");
	memset(longs, 'a', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	longs[10] = '@';
	CHECK_KIND(check("192.0.2.1", longs), "none");
}

static void
t_header_quotes_inputs(void)
{
	struct spf_result *r = check_t("192.0.2.1", "x\"y(z)\r\n",
	    "\"a (b)\\\\c\"@fail.spf.test", 10);
	const char *h = r->received_spf;
	int depth = 0;

	CHECK_KIND(r, "fail");
	CHECK(strpbrk(h, "\r\n") == NULL);
	CHECK(strstr(h, "domain of \"a \\(b\\)\\\\\\\\c\"@fail.spf.test does "
	    "not designate") != NULL);
	CHECK(strstr(h, "envelope-from=\"\\\"a (b)\\\\\\\\c\\\"@fail.spf.test\";")
	    != NULL);
	CHECK(strstr(h, "helo=\"x\\\"y(z)??\";") != NULL);
	for (const char *p = h; *p != '\0' && *p != ')'; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '(')
			depth++;
	}
	CHECK_INT(depth, 1);	/* the comment opens once, closes once */
}

static void
t_invalid_ip(void)
{
	struct got g;

	setup();
	CHECK(spf_check(dns, "not-an-ip", "h", "x@pass.spf.test", 1, got_cb,
	    &g) == NULL);
	CHECK(spf_check(dns, "192.0.2.1", "h", "x@pass.spf.test", 1, NULL,
	    &g) == NULL);
}

/* ---- the loop is never blocked; timeout; cancel ------------------------- */

struct ticker {
	ev_timer	 t;
	int		 ticks;
};

static void
tick_cb(struct ev_loop *l, ev_timer *t, int revents)
{
	(void)l;
	(void)revents;
	((struct ticker *)t->data)->ticks++;
}

static void
dns_cb_done(void *arg, const struct dns_result *r)
{
	*(int *)arg = r->status == DNS_OK ? 1 : 2;
}

static void
t_slow_check_times_out_loop_keeps_running(void)
{
	struct got *g = unit_alloc(sizeof(*g));
	struct ticker tk;
	int dns_done = 0;
	double t0;

	setup();
	memset(g, 0, sizeof(*g));
	tk.ticks = 0;
	ev_timer_init(&tk.t, tick_cb, 0.1, 0.1);
	tk.t.data = &tk;
	ev_timer_start(loop, &tk.t);
	t0 = test_now();
	CHECK(spf_check(dns, "192.0.2.1", "mail.example", "x@slow.spf.test",
	    1.5, got_cb, g) != NULL);
	test_run_for(loop, 0.5);
	/* While the worker waits on the slow zone, the loop answers DNS. */
	(void)dns_query(dns, "n11.spf.test", DNS_T_A, 0, dns_cb_done, &dns_done);
	CHECK(test_run_until(loop, &g->done, WAIT_S));
	ev_timer_stop(loop, &tk.t);
	CHECK_KIND(&g->r, "temperror");
	CHECK_STR(g->r.reason, "timeout");
	CHECK(g->at - t0 >= 1.4 && g->at - t0 < 3.0);
	CHECK_INT(dns_done, 1);
	CHECK(tk.ticks >= 10);		/* ~15 expected in 1.5 s */
	CHECK_INT(g->calls, 1);
	/* The worker gives up on its own soon after. */
	{
		double end = test_now() + WAIT_S;

		while (spf_pending() > 0 && test_now() < end)
			test_run_for(loop, 0.05);
	}
	CHECK_INT(spf_pending(), 0);
	CHECK_INT(g->calls, 1);
}

static void
t_cancel(void)
{
	struct got *g = unit_alloc(2 * sizeof(*g));
	struct spf_req *a, *b;
	double end;

	setup();
	memset(g, 0, 2 * sizeof(*g));
	a = spf_check(dns, "192.0.2.1", "h.example", "x@pass.spf.test", 5,
	    got_cb, &g[0]);
	b = spf_check(dns, "192.0.2.1", "h.example", "x@slow.spf.test", 1,
	    got_cb, &g[1]);
	CHECK(a != NULL && b != NULL);
	spf_cancel(a);
	test_run_for(loop, 0.2);
	spf_cancel(b);			/* while its worker waits */
	end = test_now() + WAIT_S;
	while (spf_pending() > 0 && test_now() < end)
		test_run_for(loop, 0.05);
	CHECK_INT(spf_pending(), 0);
	CHECK_INT(g[0].calls + g[1].calls, 0);
}

static void
t_shutdown(void)
{
	setup();
	CHECK_INT(spf_pending(), 0);
	workq_shutdown_pools();
	dns_free(dns);
	dns = NULL;
}

static const struct unit_case cases[] = {
	{ "pass, with its Received-SPF field", t_pass },
	{ "fail, with the default explanation", t_fail },
	{ "softfail", t_softfail },
	{ "neutral", t_neutral },
	{ "none (no SPF record, no domain)", t_none },
	{ "temperror (SERVFAIL)", t_temperror },
	{ "permerror (syntax, two records)", t_permerror },
	{ "a record split over strings", t_split_record },
	{ "include", t_include },
	{ "redirect", t_redirect },
	{ "macros l ir v h", t_macros },
	{ "a macro that makes a malformed name does not match",
	    t_macro_malformed_name },
	{ "exp with macros", t_explanation },
	{ "mx mechanism", t_mx_mechanism },
	{ "IPv6 ip6 and a", t_ipv6 },
	{ "10 DNS-querying terms across include pass", t_ten_lookups },
	{ "11 DNS-querying terms across include is permerror",
	    t_eleven_lookups_through_include },
	{ "11 terms is permerror even if the 11th matches",
	    t_eleventh_term_would_match },
	{ "2 void lookups pass", t_two_void_lookups },
	{ "3 void lookups is permerror", t_three_void_lookups },
	{ "a macro-heavy term (CVE-2023-42118) is refused",
	    t_unsafe_macro_record },
	{ "a macro-heavy explanation (CVE-2023-42118) is dropped",
	    t_unsafe_macro_explanation },
	{ "the null sender is checked as postmaster at HELO",
	    t_null_sender_uses_helo },
	{ "malformed domains are none", t_malformed_domain },
	{ "the header quotes and escapes every input", t_header_quotes_inputs },
	{ "an invalid address or no callback is refused", t_invalid_ip },
	{ "a slow zone times the check out while the loop runs",
	    t_slow_check_times_out_loop_keeps_running },
	{ "cancel before and during the worker", t_cancel },
	{ "shutdown", t_shutdown },
};

int
main(void)
{
	if (test_env_load(&env) != 0)
		return 1;
	return unit_run(cases, sizeof(cases) / sizeof(cases[0]));
}
