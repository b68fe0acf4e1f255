/*
 * test_dmarc.c — DMARC (src/mailauth/dmarc.c) against the records of
 * spec/fixtures/dns/dmarc.test.zone on the NSD of spec/support/dns.lua
 * (run from spec/unit/dmarc_spec.lua): each policy, pct, sp, strict and
 * relaxed alignment of SPF and DKIM, the organizational domain fallback,
 * malformed and duplicate records, DNS failures, cancel.
 *
 *	DMARC_TEST_PSL	Debian's public suffix list with "test" and
 *			"dmarc.test" added (made by the spec)
 */
#include "unit.h"
#include "dns_test_util.h"
#include "mailauth/dmarc.h"
#include "util/workq.h"

#define WAIT_S		15.0

struct got {
	bool			 done;
	int			 calls;
	struct dmarc_result	 r;
};

static struct ev_loop	*loop;
static struct dns_ctx	*dns;
static struct test_env	 env;
static bool		 test_psl;

static void
setup(void)
{
	char err[256];

	if (dns != NULL)
		return;
	loop = ev_default_loop(0);
	dns = dns_new(loop, &env.cfg, err, sizeof(err));
	if (dns == NULL)
		unit_fail(__FILE__, __LINE__, "dns_new: %s", err);
}

static void
use_test_psl(void)
{
	char err[256];

	setup();
	if (test_psl)
		return;
	if (dmarc_init(getenv("DMARC_TEST_PSL"), err, sizeof(err)) != 0)
		unit_fail(__FILE__, __LINE__, "dmarc_init: %s", err);
	test_psl = true;
}

static void
got_cb(void *arg, const struct dmarc_result *r)
{
	struct got *g = arg;

	g->calls++;
	g->done = true;
	g->r = *r;
}

/* A check of From: from with SPF spf (for spf_domain) and one DKIM
 * result (d= dkim_d, NULL for none); pct decided by roll. */
static struct dmarc_result *
check_full(const char *from, enum spf_kind spf, const char *spf_domain,
    const char *dkim_d, enum dkim_res dkim, int roll, double timeout)
{
	struct got *g = unit_alloc(sizeof(*g));
	struct dmarc_dkim_input di = { dkim_d, "sel", dkim };
	struct dmarc_input in;

	use_test_psl();
	memset(g, 0, sizeof(*g));
	memset(&in, 0, sizeof(in));
	in.from_domain = from;
	in.spf = spf;
	in.spf_domain = spf_domain;
	in.dkim = &di;
	in.ndkim = dkim_d != NULL ? 1 : 0;
	in.pct_roll = roll;
	in.timeout = timeout;
	(void)dmarc_check(dns, &in, got_cb, g);
	if (g->calls != 0)
		unit_fail(__FILE__, __LINE__, "callback inside dmarc_check");
	if (!test_run_until(loop, &g->done, WAIT_S))
		unit_fail(__FILE__, __LINE__, "no result for %s", from);
	CHECK_INT(g->calls, 1);
	return &g->r;
}

/* SPF fail, no DKIM: the policy decides. */
static struct dmarc_result *
failing(const char *from)
{
	return check_full(from, SPF_KIND_FAIL, from, NULL, DKIM_RES_NONE, 0, 5);
}

#define CHECK_DM(r, wres, wpol, wdis) do {				\
	const struct dmarc_result *r_ = (r);				\
	if (strcmp(dmarc_res_name(r_->res), (wres)) != 0 ||		\
	    strcmp(dmarc_policy_name(r_->policy), (wpol)) != 0 ||	\
	    strcmp(dmarc_policy_name(r_->disposition), (wdis)) != 0)	\
		unit_fail(__FILE__, __LINE__, "got %s/%s/%s (%s), want "\
		    "%s/%s/%s", dmarc_res_name(r_->res),			\
		    dmarc_policy_name(r_->policy),			\
		    dmarc_policy_name(r_->disposition), r_->reason,	\
		    (wres), (wpol), (wdis));				\
} while (0)

/* ---- the organizational domain ---------------------------------------- */

static void
t_org_domain_debian_list(void)
{
	static const struct {
		const char *in, *out;
	} c[] = {
		{ "www.example.com", "example.com" },
		{ "example.com", "example.com" },
		{ "a.b.example.co.uk", "example.co.uk" },
		{ "Mail.Example.CO.UK.", "example.co.uk" },
		{ "x.y.example.org", "example.org" },
		/* under no listed suffix: the default rule "*" (RFC 7489
		 * §3.2 with the list's implicit rule) */
		{ "a.b.example.invalidtld", "example.invalidtld" },
		{ "mx.example.test", "example.test" },
	};
	char out[DMARC_DOMAIN_MAX + 1], err[256];

	setup();
	CHECK_INT(dmarc_init(NULL, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		CHECK_INT(dmarc_org_domain(c[i].in, out, sizeof(out)), 0);
		CHECK_STR(out, c[i].out);
	}
	CHECK_INT(dmarc_org_domain("", out, sizeof(out)), -1);
	CHECK_INT(dmarc_org_domain("com", out, sizeof(out)), -1);
	CHECK_INT(dmarc_org_domain("a..b.com", out, sizeof(out)), -1);
	CHECK_INT(dmarc_org_domain("a b.com", out, sizeof(out)), -1);
	CHECK_INT(dmarc_org_domain("www.example.com", out, 5), -1);
	CHECK(dmarc_init("/nonexistent/psl.dat", err, sizeof(err)) != 0);
	test_psl = false;
}

static void
t_org_domain_test_list(void)
{
	char out[DMARC_DOMAIN_MAX + 1];

	use_test_psl();
	CHECK_INT(dmarc_org_domain("a.b.reject.dmarc.test", out, sizeof(out)),
	    0);
	CHECK_STR(out, "reject.dmarc.test");
	CHECK_INT(dmarc_org_domain("x.servfail.test", out, sizeof(out)), 0);
	CHECK_STR(out, "servfail.test");
}

/* ---- policies ------------------------------------------------------------ */

static void
t_policies(void)
{
	struct dmarc_result *r;

	r = failing("none.dmarc.test");
	CHECK_DM(r, "fail", "none", "none");
	CHECK_STR(r->record_domain, "none.dmarc.test");
	CHECK_STR(r->reason, "no aligned SPF or DKIM pass");
	CHECK_DM(failing("quarantine.dmarc.test"), "fail", "quarantine",
	    "quarantine");
	r = failing("reject.dmarc.test");
	CHECK_DM(r, "fail", "reject", "reject");
	CHECK_INT(r->pct, 100);
	CHECK(!r->sampled_out);
	CHECK(!r->adkim_strict && !r->aspf_strict);
	/* A subdomain without a record of its own: the org's p=. */
	r = failing("deep.sub.reject.dmarc.test");
	CHECK_DM(r, "fail", "reject", "reject");
	CHECK_STR(r->record_domain, "reject.dmarc.test");
	CHECK_STR(r->org_domain, "reject.dmarc.test");
	CHECK_STR(r->from_domain, "deep.sub.reject.dmarc.test");
	CHECK(!r->used_sp);
}

static void
t_pct(void)
{
	struct dmarc_result *r;

	r = check_full("pct.dmarc.test", SPF_KIND_FAIL, "pct.dmarc.test",
	    NULL, DKIM_RES_NONE, 49, 5);
	CHECK_DM(r, "fail", "reject", "reject");
	CHECK_INT(r->pct, 50);
	CHECK(!r->sampled_out);
	r = check_full("pct.dmarc.test", SPF_KIND_FAIL, "pct.dmarc.test",
	    NULL, DKIM_RES_NONE, 50, 5);
	CHECK_DM(r, "fail", "reject", "quarantine");
	CHECK(r->sampled_out);
	r = check_full("pct.dmarc.test", SPF_KIND_FAIL, "pct.dmarc.test",
	    NULL, DKIM_RES_NONE, -1, 5);
	CHECK(r->disposition == DMARC_P_REJECT ||
	    r->disposition == DMARC_P_QUARANTINE);
	r = check_full("pct0.dmarc.test", SPF_KIND_FAIL, "pct0.dmarc.test",
	    NULL, DKIM_RES_NONE, 0, 5);
	CHECK_DM(r, "fail", "quarantine", "none");
	CHECK_INT(r->pct, 0);
	CHECK(r->sampled_out);
	/* A pass is never sampled. */
	r = check_full("pct.dmarc.test", SPF_KIND_PASS, "pct.dmarc.test",
	    NULL, DKIM_RES_NONE, 99, 5);
	CHECK_DM(r, "pass", "reject", "none");
}

static void
t_sp(void)
{
	struct dmarc_result *r;

	r = failing("mail.sp.dmarc.test");
	CHECK_DM(r, "fail", "none", "none");
	CHECK(r->used_sp);
	CHECK(r->has_sp);
	CHECK_INT(r->p, DMARC_P_REJECT);
	CHECK_INT(r->sp, DMARC_P_NONE);
	CHECK_STR(r->record_domain, "sp.dmarc.test");
	/* The organizational domain itself: p=. */
	r = failing("sp.dmarc.test");
	CHECK_DM(r, "fail", "reject", "reject");
	CHECK(!r->used_sp);
	/* A subdomain with a record of its own: that record's p=. */
	r = failing("own.sp.dmarc.test");
	CHECK_DM(r, "fail", "quarantine", "quarantine");
	CHECK(!r->used_sp);
	CHECK_STR(r->record_domain, "own.sp.dmarc.test");
}

/* ---- alignment ------------------------------------------------------------ */

static void
t_alignment_relaxed(void)
{
	struct dmarc_result *r;

	/* SPF for a subdomain of the same organizational domain. */
	r = check_full("reject.dmarc.test", SPF_KIND_PASS,
	    "bounce.reject.dmarc.test", NULL, DKIM_RES_NONE, 0, 5);
	CHECK_DM(r, "pass", "reject", "none");
	CHECK(r->spf_aligned && !r->dkim_aligned);
	CHECK_STR(r->spf_domain, "bounce.reject.dmarc.test");
	CHECK_STR(r->reason, "SPF aligned");
	/* DKIM of the parent for a subdomain's From. */
	r = check_full("news.reject.dmarc.test", SPF_KIND_FAIL,
	    "news.reject.dmarc.test", "reject.dmarc.test", DKIM_RES_PASS, 0,
	    5);
	CHECK_DM(r, "pass", "reject", "none");
	CHECK(r->dkim_aligned && !r->spf_aligned);
	CHECK_STR(r->dkim_domain, "reject.dmarc.test");
	/* Both. */
	r = check_full("reject.dmarc.test", SPF_KIND_PASS, "reject.dmarc.test",
	    "Reject.DMARC.test", DKIM_RES_PASS, 0, 5);
	CHECK_STR(r->reason, "SPF and DKIM aligned");
	/* Passes of other domains do not count. */
	r = check_full("reject.dmarc.test", SPF_KIND_PASS, "other.test",
	    "quarantine.dmarc.test", DKIM_RES_PASS, 0, 5);
	CHECK_DM(r, "fail", "reject", "reject");
	/* Aligned but failed. */
	r = check_full("reject.dmarc.test", SPF_KIND_SOFTFAIL,
	    "reject.dmarc.test", "reject.dmarc.test", DKIM_RES_FAIL, 0, 5);
	CHECK_DM(r, "fail", "reject", "reject");
	/* A public suffix aligns with nothing under it (libopendmarc's own
	 * check would align by string prefix). */
	r = check_full("x.reject.dmarc.test", SPF_KIND_PASS, "dmarc.test",
	    "dmarc.test", DKIM_RES_PASS, 0, 5);
	CHECK_DM(r, "fail", "reject", "reject");
}

static void
t_alignment_strict(void)
{
	struct dmarc_result *r;

	r = check_full("strict.dmarc.test", SPF_KIND_PASS,
	    "mail.strict.dmarc.test", "mail.strict.dmarc.test", DKIM_RES_PASS,
	    0, 5);
	CHECK_DM(r, "fail", "reject", "reject");
	CHECK(r->adkim_strict && r->aspf_strict);
	r = check_full("strict.dmarc.test", SPF_KIND_PASS, "strict.dmarc.test",
	    NULL, DKIM_RES_NONE, 0, 5);
	CHECK_DM(r, "pass", "reject", "none");
	CHECK(r->spf_aligned);
	r = check_full("strict.dmarc.test", SPF_KIND_FAIL, "strict.dmarc.test",
	    "STRICT.dmarc.test.", DKIM_RES_PASS, 0, 5);
	CHECK_DM(r, "pass", "reject", "none");
	CHECK(r->dkim_aligned);
}

/* ---- records and DNS ------------------------------------------------------ */

static void
t_records(void)
{
	struct dmarc_result *r;

	r = failing("multi.dmarc.test");
	CHECK_DM(r, "permerror", "none", "none");
	CHECK_STR(r->reason, "2 DMARC records at _dmarc.multi.dmarc.test");
	r = failing("bad.dmarc.test");
	CHECK_DM(r, "permerror", "none", "none");
	CHECK(strstr(r->reason, "invalid DMARC record at _dmarc.bad.dmarc."
	    "test") != NULL);
	r = failing("notdmarc.dmarc.test");
	CHECK_DM(r, "none", "none", "none");
	CHECK_STR(r->reason, "no DMARC record");
	CHECK_DM(failing("nothing.dmarc.test"), "none", "none", "none");
	CHECK_DM(failing("www.nothing.dmarc.test"), "none", "none", "none");
	/* A CNAME to another domain's record. */
	CHECK_DM(failing("cname.dmarc.test"), "fail", "reject", "reject");
}

static void
t_dns_failures(void)
{
	struct dmarc_result *r;

	r = failing("x.servfail.test");
	CHECK_DM(r, "temperror", "none", "none");
	CHECK_STR(r->reason, "DNS SERVFAIL at _dmarc.x.servfail.test");
	r = check_full("x.slow.test", SPF_KIND_FAIL, "x.slow.test", NULL,
	    DKIM_RES_NONE, 0, 1);
	CHECK_DM(r, "temperror", "none", "none");
	CHECK_STR(r->reason, "DNS TIMEOUT at _dmarc.x.slow.test");
}

static void
t_invalid_from(void)
{
	static const char *bad[] = { "", "com", "a..b.test", "x y.test",
	    "bad\r\nInjected: 1.test" };
	struct dmarc_result *r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = failing(bad[i]);
		CHECK_DM(r, "permerror", "none", "none");
		CHECK_STR(r->reason, "no valid From domain");
		CHECK(strchr(r->from_domain, '\r') == NULL);
	}
	r = check_full(NULL, SPF_KIND_NONE, NULL, NULL, DKIM_RES_NONE, 0, 5);
	CHECK_DM(r, "permerror", "none", "none");
}

static void
t_cancel(void)
{
	struct dmarc_input in;
	struct dmarc_req *q;
	struct got g;

	use_test_psl();
	memset(&g, 0, sizeof(g));
	memset(&in, 0, sizeof(in));
	in.from_domain = "x.slow.test";
	in.timeout = 5;
	q = dmarc_check(dns, &in, got_cb, &g);
	test_run_for(loop, 0.2);
	dmarc_cancel(q);
	/* And one cancelled before its early answer. */
	in.from_domain = "";
	q = dmarc_check(dns, &in, got_cb, &g);
	dmarc_cancel(q);
	dmarc_cancel(NULL);
	test_run_for(loop, 0.2);
	CHECK_INT(g.calls, 0);
}

static void
t_shutdown(void)
{
	setup();
	dmarc_shutdown();
	test_run_for(loop, 0.1);
	dns_free(dns);
	dns = NULL;
}

static const struct unit_case cases[] = {
	{ "organizational domains from Debian's public suffix list",
	    t_org_domain_debian_list },
	{ "organizational domains of the test zones", t_org_domain_test_list },
	{ "p=none quarantine reject and a subdomain without a record",
	    t_policies },
	{ "pct samples failures and lowers the rest one step", t_pct },
	{ "sp= for subdomains that use the organizational record", t_sp },
	{ "relaxed alignment of SPF and DKIM", t_alignment_relaxed },
	{ "strict alignment of SPF and DKIM", t_alignment_strict },
	{ "two records, a malformed one, none, a CNAME", t_records },
	{ "SERVFAIL and no answer are temperror", t_dns_failures },
	{ "an invalid From domain is permerror", t_invalid_from },
	{ "cancel", t_cancel },
	{ "shutdown", t_shutdown },
};

int
main(void)
{
	if (test_env_load(&env) != 0)
		return 1;
	if (getenv("DMARC_TEST_PSL") == NULL) {
		printf("not ok environment: DMARC_TEST_PSL must be set\n");
		return 1;
	}
	return unit_run(cases, sizeof(cases) / sizeof(cases[0]));
}
