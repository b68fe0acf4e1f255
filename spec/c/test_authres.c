/*
 * test_authres.c — Authentication-Results (src/mailauth/authres.c, RFC
 * 8601): the field built from SPF, DKIM, DMARC and iprev results checked
 * octet by octet, quoting and folding of hostile values, the size cap, and
 * the authserv-id of existing fields (run from spec/unit/authres_spec.lua).
 */
#include "unit.h"
#include "mailauth/authres.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf.h"

#define ID	"mx.example.org"
#define NAME	"Authentication-Results: "

static const char *
field(struct authres *a)
{
	size_t len;
	const char *f = authres_field(a, &len);

	CHECK_INT(len, strlen(f));
	return f;
}

/* Every line break is a fold: CRLF then a tab or space; ends in CRLF. */
static void
check_folds(const char *f)
{
	size_t len = strlen(f), line = 0;

	CHECK(len >= 2 && strcmp(f + len - 2, "\r\n") == 0);
	for (size_t i = 0; i + 2 < len; i++) {
		if (f[i] == '\r') {
			CHECK(f[i + 1] == '\n');
			CHECK(f[i + 2] == '\t' || f[i + 2] == ' ');
		}
		CHECK(f[i] != '\n' || f[i - 1] == '\r');
		line = f[i] == '\n' ? 0 : line + 1;
		CHECK(line <= 998);
	}
}

static struct dkim_sig_result
sig(enum dkim_res res, const char *d, const char *s, const char *b)
{
	struct dkim_sig_result r;

	memset(&r, 0, sizeof(r));
	r.res = res;
	snprintf(r.domain, sizeof(r.domain), "%s", d);
	snprintf(r.selector, sizeof(r.selector), "%s", s);
	snprintf(r.identity, sizeof(r.identity), "@%s", d);
	snprintf(r.algorithm, sizeof(r.algorithm), "rsa-sha256");
	snprintf(r.b, sizeof(r.b), "%s", b);
	snprintf(r.reason, sizeof(r.reason), "%s", res == DKIM_RES_PASS ?
	    "signature verified" : "body hash did not verify");
	r.body_length = -1;
	return r;
}

static void
t_none(void)
{
	struct authres a;

	authres_init(&a, ID);
	CHECK_STR(field(&a), NAME ID "; none\r\n");
	/* Asking twice gives the same field. */
	CHECK_STR(field(&a), NAME ID "; none\r\n");
}

static void
t_spf(void)
{
	struct spf_result s;
	struct authres a;

	memset(&s, 0, sizeof(s));
	s.kind = SPF_KIND_PASS;
	snprintf(s.domain, sizeof(s.domain), "example.com");
	snprintf(s.reason, sizeof(s.reason), "matched a mechanism");
	authres_init(&a, ID);
	CHECK_INT(authres_add_spf(&a, &s), 0);
	CHECK_STR(field(&a), NAME ID ";\r\n\tspf=pass smtp.mailfrom=example.com"
	    "\r\n");
	s.kind = SPF_KIND_SOFTFAIL;
	snprintf(s.reason, sizeof(s.reason), "no mechanism matched (default "
	    "result)");
	authres_init(&a, ID);
	CHECK_INT(authres_add_spf(&a, &s), 0);
	CHECK_STR(field(&a), NAME ID ";\r\n\tspf=softfail reason=\"no mechanism "
	    "matched (default result)\"\r\n\t"
	    "smtp.mailfrom=example.com\r\n");
	check_folds(field(&a));
}

static void
t_dkim(void)
{
	struct dkim_verify_result v;
	struct authres a;

	memset(&v, 0, sizeof(v));
	v.nsigs = 2;
	v.sig[0] = sig(DKIM_RES_PASS, "example.com", "sel", "abcdEFGH12345678");
	v.sig[1] = sig(DKIM_RES_FAIL, "mail.example.net", "s2024",
	    "ab/d+FGH12345678");
	authres_init(&a, ID);
	CHECK_INT(authres_add_dkim(&a, &v), 0);
	CHECK_STR(field(&a), NAME ID ";\r\n"
	    "\tdkim=pass header.d=example.com header.i=@example.com header.s=sel"
	    "\r\n\theader.a=rsa-sha256 header.b=abcdEFGH;\r\n"
	    "\tdkim=fail reason=\"body hash did not verify\" "
	    "header.d=mail.example.net\r\n"
	    "\theader.i=@mail.example.net header.s=s2024 header.a=rsa-sha256"
	    "\r\n\theader.b=\"ab/d+FGH\"\r\n");
	check_folds(field(&a));
	/* No signature; a message that could not be checked. */
	memset(&v, 0, sizeof(v));
	authres_init(&a, ID);
	CHECK_INT(authres_add_dkim(&a, &v), 0);
	CHECK_STR(field(&a), NAME ID ";\r\n\tdkim=none\r\n");
	v.res = DKIM_RES_PERMERROR;
	snprintf(v.reason, sizeof(v.reason), "header block larger than 262144 "
	    "octets");
	authres_init(&a, ID);
	CHECK_INT(authres_add_dkim(&a, &v), 0);
	CHECK_STR(field(&a), NAME ID ";\r\n\tdkim=permerror reason=\"header "
	    "block larger than 262144 octets\"\r\n");
}

static void
t_dmarc(void)
{
	struct dmarc_result d;
	struct authres a;

	memset(&d, 0, sizeof(d));
	d.res = DMARC_RES_FAIL;
	d.p = DMARC_P_REJECT;
	d.sp = DMARC_P_REJECT;
	d.policy = DMARC_P_REJECT;
	d.disposition = DMARC_P_QUARANTINE;
	snprintf(d.from_domain, sizeof(d.from_domain), "example.com");
	snprintf(d.reason, sizeof(d.reason), "no aligned SPF or DKIM pass");
	authres_init(&a, ID);
	CHECK_INT(authres_add_dmarc(&a, &d), 0);
	CHECK_STR(field(&a), NAME ID ";\r\n\tdmarc=fail (p=reject sp=reject "
	    "dis=quarantine)\r\n\treason=\"no aligned SPF or DKIM pass\" "
	    "header.from=example.com\r\n");
	d.res = DMARC_RES_NONE;
	authres_init(&a, ID);
	CHECK_INT(authres_add_dmarc(&a, &d), 0);
	CHECK_STR(field(&a), NAME ID ";\r\n\tdmarc=none header.from=example.com"
	    "\r\n");
}

static void
t_iprev_and_order(void)
{
	struct spf_result s;
	struct authres a;

	memset(&s, 0, sizeof(s));
	s.kind = SPF_KIND_NONE;
	snprintf(s.domain, sizeof(s.domain), "example.com");
	authres_init(&a, ID);
	CHECK_INT(authres_add_iprev(&a, "pass", "192.0.2.1",
	    "mail.example.com"), 0);
	CHECK_INT(authres_add_spf(&a, &s), 0);
	CHECK_STR(field(&a), NAME ID ";\r\n\tiprev=pass (mail.example.com) "
	    "policy.iprev=192.0.2.1;\r\n\tspf=none smtp.mailfrom=example.com"
	    "\r\n");
	authres_init(&a, ID);
	CHECK_INT(authres_add_iprev(&a, "pass", "2001:db8::1", NULL), 0);
	CHECK_STR(field(&a), NAME ID ";\r\n\tiprev=pass "
	    "policy.iprev=\"2001:db8::1\"\r\n");
}

static void
t_hostile_values(void)
{
	struct authres_prop p[] = {
		{ "header", "d", "evil.test\r\nX-Injected: yes" },
		{ "header", "s", "a\"b\\c;d" },
	};
	struct authres a;
	const char *f;

	authres_init(&a, ID);
	CHECK_INT(authres_add(&a, "dkim", "pass", "a (comment) \\ with )(",
	    "reason; with \"quotes\"\r\n", p, 2), 0);
	f = field(&a);
	check_folds(f);
	CHECK(strstr(f, "X-Injected") == NULL || strstr(f, "\nX-Injected") ==
	    NULL);
	CHECK(strstr(f, "header.d=\"evil.test??X-Injected: yes\"") != NULL);
	CHECK(strstr(f, "header.s=\"a\\\"b\\\\c;d\"") != NULL);
	CHECK(strstr(f, "(a \\(comment\\) \\\\ with \\)\\()") != NULL);
	CHECK(strstr(f, "reason=\"reason; with \\\"quotes\\\"??\"") != NULL);
	/* Names must be keywords. */
	CHECK_INT(authres_add(&a, "dk im", "pass", NULL, NULL, NULL, 0), -1);
	CHECK_INT(authres_add(&a, "dkim", "pa;ss", NULL, NULL, NULL, 0), -1);
	p[0].ptype = "hea.der";
	CHECK_INT(authres_add(&a, "dkim", "pass", NULL, NULL, p, 1), -1);
	CHECK_STR(field(&a), f);
}

static void
t_size_cap(void)
{
	char big[AUTHRES_VALUE_MAX + 100];
	struct authres_prop p = { "header", "d", big };
	struct authres a;
	int added = 0;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	authres_init(&a, ID);
	while (authres_add(&a, "dkim", "pass", NULL, big, &p, 1) == 0)
		if (++added > 1000)
			break;
	CHECK(added > 5 && added < 1000);
	CHECK(strlen(field(&a)) < AUTHRES_FIELD_MAX);
	check_folds(field(&a));
	/* Values are cut at AUTHRES_VALUE_MAX. */
	CHECK(strstr(field(&a), big) == NULL);
}

static void
t_authserv_id(void)
{
	struct authres a;
	char long_id[AUTHRES_ID_MAX + 2];

	authres_init(&a, "my host");
	CHECK_STR(field(&a), NAME "\"my host\"; none\r\n");
	authres_init(&a, "");
	CHECK(a.bad_id);
	CHECK_STR(field(&a), NAME "localhost; none\r\n");
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	authres_init(&a, long_id);
	CHECK(a.bad_id);
}

static void
t_claims_id(void)
{
	static const struct {
		const char *field;
		bool claims;
	} c[] = {
		{ ID "; spf=pass smtp.mailfrom=example.com", true },
		{ "MX.Example.ORG; none", true },
		{ "  (our (nested) comment) " ID " 1; spf=pass", true },
		{ "\"" ID "\"; none", true },
		{ "\"mx.exa\\mple.org\"; none", true },
		{ "\r\n\t" ID ";\r\n\tdkim=pass", true },
		{ "Authentication-Results: " ID "; none", true },
		{ "authentication-results :" ID ";none", true },
		{ ID, true },
		{ "other.example.org; " ID, false },
		{ ID ".evil; none", false },
		{ "mx.example.or; none", false },
		{ "(" ID "; none", false },
		{ "((((((((((deep)))))))))) " ID "; none", false },
		{ "\"" ID "; none", false },
		{ "", false },
		{ "   ", false },
		{ "Authentication-Results " ID, false },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (authres_claims_id(c[i].field, strlen(c[i].field), ID) !=
		    c[i].claims)
			unit_fail(__FILE__, __LINE__, "case %zu: \"%s\" %s", i,
			    c[i].field, c[i].claims ? "not seen" : "seen");
	}
	/* Exact lengths, no terminator (ASan sees any over-read). */
	CHECK(authres_claims_id(unit_dup(ID ";x", strlen(ID) + 2),
	    strlen(ID) + 2, ID));
	CHECK(!authres_claims_id(unit_dup(ID, strlen(ID) - 1),
	    strlen(ID) - 1, ID));
	CHECK(!authres_claims_id(unit_dup("\"" ID "\\", strlen(ID) + 2),
	    strlen(ID) + 2, ID));
	CHECK(!authres_claims_id(unit_dup("(\\", 2), 2, ID));
	CHECK(!authres_claims_id(ID, strlen(ID), ""));
	CHECK(!authres_claims_id(ID, strlen(ID), NULL));
}

static void
t_round_trip(void)
{
	struct authres a;
	const char *f;

	authres_init(&a, ID);
	CHECK_INT(authres_add_iprev(&a, "fail", "192.0.2.9", NULL), 0);
	f = field(&a);
	CHECK(authres_claims_id(f, strlen(f), ID));
	CHECK(!authres_claims_id(f, strlen(f), "mx.example.com"));
	authres_init(&a, "odd id");
	f = field(&a);
	CHECK(authres_claims_id(f, strlen(f), "odd id"));
}

static const struct unit_case cases[] = {
	{ "nothing to report is none", t_none },
	{ "spf with smtp.mailfrom and a reason", t_spf },
	{ "dkim per signature with header.d i s a b", t_dkim },
	{ "dmarc with policy and disposition", t_dmarc },
	{ "iprev and results in the order added", t_iprev_and_order },
	{ "hostile values are quoted and never break the field",
	    t_hostile_values },
	{ "results past the size cap are left out whole", t_size_cap },
	{ "an authserv-id that is no token is quoted", t_authserv_id },
	{ "fields that claim our authserv-id are recognized", t_claims_id },
	{ "our own field claims our id", t_round_trip },
};

UNIT_MAIN(cases)
