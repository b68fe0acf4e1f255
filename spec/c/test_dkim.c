/*
 * test_dkim.c — DKIM signing and verification (src/mailauth/dkim*.c)
 * against an independent implementation (dkimpy) and the keys of
 * spec/fixtures/dns/dkim.test.zone served by the real NSD of
 * spec/support/dns.lua (run from spec/unit/dkim_spec.lua): both key types,
 * both canonicalizations each way, changed headers and bodies, every key
 * problem, DNS failures, the caps.
 */
#include "dkim_test_util.h"

#define MSG								\
	"From: Alice <alice@dkim.test>\r\n"				\
	"To: Bob <bob@example.test>\r\n"				\
	"Subject: Hello  there\r\n"					\
	"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"			\
	"Message-ID: <1@dkim.test>\r\n"					\
	"\r\n"								\
	"Hello  world \r\n"						\
	".a line that began with a dot\r\n"				\
	"\r\n"								\
	"\r\n"

static struct dkim_key	*k_rsa, *k_ed, *k_1024;

static void
keys(void)
{
	setup();
	if (k_rsa == NULL) {
		k_rsa = key("rsa2048.pem");
		k_ed = key("ed25519.pem");
		k_1024 = key("rsa1024.pem");
	}
}

static struct dkim_sign_opts
opts(const char *sel, struct dkim_key *k, enum dkim_canon hc,
    enum dkim_canon bc)
{
	struct dkim_sign_opts o;

	memset(&o, 0, sizeof(o));
	o.domain = "dkim.test";
	o.selector = sel;
	o.key = k;
	o.header_canon = hc;
	o.body_canon = bc;
	return o;
}

/* s with the first occurrence of from replaced by to (case-owned). */
static char *
replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	char *out = unit_alloc(strlen(s) + strlen(to) + 1);

	if (at == NULL)
		unit_fail(__FILE__, __LINE__, "no \"%s\" in the message", from);
	memcpy(out, s, (size_t)(at - s));
	strcpy(out + (at - s), to);
	strcat(out, at + strlen(from));
	return out;
}

/* Our signature of MSG verifies with dkimpy and with us. */
static void
interop(const char *sel, struct dkim_key *k, enum dkim_canon hc,
    enum dkim_canon bc)
{
	struct dkim_sign_opts o = opts(sel, k, hc, bc);
	char out[TOOL_OUT_MAX], *m;
	struct dkim_verify_result *r;

	keys();
	m = sign_msg(&o, 1, MSG);
	if (dkimpy_verify(m, out, sizeof(out)) != 0)
		unit_fail(__FILE__, __LINE__, "dkimpy: %.300s", out);
	r = verify(m);
	CHECK_RES(r->res, "pass");
	CHECK_INT(r->nsigs, 1);
	CHECK_RES(r->sig[0].res, "pass");
}

static void
t_rsa_relaxed(void)
{
	keys();
	interop("rsa", k_rsa, DKIM_C_RELAXED, DKIM_C_RELAXED);
}

static void
t_rsa_simple(void)
{
	keys();
	interop("rsa", k_rsa, DKIM_C_SIMPLE, DKIM_C_SIMPLE);
}

static void
t_ed_relaxed(void)
{
	keys();
	interop("ed", k_ed, DKIM_C_RELAXED, DKIM_C_RELAXED);
}

static void
t_ed_simple(void)
{
	keys();
	interop("ed", k_ed, DKIM_C_SIMPLE, DKIM_C_SIMPLE);
}

static void
t_mixed_canon(void)
{
	keys();
	interop("rsa", k_rsa, DKIM_C_RELAXED, DKIM_C_SIMPLE);
	interop("ed", k_ed, DKIM_C_SIMPLE, DKIM_C_RELAXED);
}

static void
t_two_in_one_pass(void)
{
	struct dkim_sign_opts o[2];
	struct dkim_verify_result *r;
	char out[TOOL_OUT_MAX], *m;

	keys();
	o[0] = opts("rsa", k_rsa, DKIM_C_RELAXED, DKIM_C_RELAXED);
	o[1] = opts("ed", k_ed, DKIM_C_SIMPLE, DKIM_C_SIMPLE);
	m = sign_msg(o, 2, MSG);
	if (dkimpy_verify(m, out, sizeof(out)) != 0)
		unit_fail(__FILE__, __LINE__, "dkimpy: %.300s", out);
	CHECK(strstr(out, "sig 1 pass") != NULL);
	r = verify(m);
	CHECK_INT(r->nsigs, 2);
	CHECK_RES(r->sig[0].res, "pass");
	CHECK_RES(r->sig[1].res, "pass");
	CHECK_STR(r->sig[0].algorithm, "rsa-sha256");
	CHECK_STR(r->sig[1].algorithm, "ed25519-sha256");
}

static void
t_result_fields(void)
{
	struct dkim_sign_opts o;
	struct dkim_verify_result *r;
	const char *b;
	char *m;

	keys();
	o = opts("rsa", k_rsa, DKIM_C_RELAXED, DKIM_C_RELAXED);
	m = sign_msg(&o, 1, MSG);
	r = verify(m);
	CHECK_STR(r->sig[0].domain, "dkim.test");
	CHECK_STR(r->sig[0].selector, "rsa");
	CHECK_STR(r->sig[0].identity, "@dkim.test");
	CHECK_STR(r->sig[0].reason, "signature verified");
	CHECK_INT(r->sig[0].key_bits, 2048);
	CHECK_INT(r->sig[0].body_length, -1);
	CHECK(!r->sig[0].partial);
	CHECK(!r->sig[0].testing);
	CHECK_INT(r->octets, strlen(m));
	/* header.b: the first octets of b= */
	b = strstr(m, "\tb=");
	CHECK(b != NULL);
	CHECK(strncmp(r->sig[0].b, b + 3, 8) == 0);
	CHECK_INT(strlen(r->sig[0].b), DKIM_HEADER_B_MAX);
	/* h= names From once more than it occurs (oversigning). */
	CHECK(strstr(m, "h=From:To:Subject:Date:Message-ID:From") != NULL ||
	    strstr(m, "h=From:To:Subject:Date:Message-ID:\r\n\t From") !=
	    NULL);
}

static void
t_dkimpy_signed(void)
{
	static const struct {
		const char *key, *sel, *canon;
	} c[] = {
		{ "rsa2048.pem", "rsa", "relaxed/relaxed" },
		{ "rsa2048.pem", "rsa", "simple/simple" },
		{ "ed25519.pem", "ed", "relaxed/relaxed" },
		{ "ed25519.pem", "ed", "simple/simple" },
		{ "ed25519.pem", "ed", "relaxed/simple" },
	};

	setup();
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *m = dkimpy_sign(c[i].key, c[i].sel, c[i].canon, "-", MSG);
		struct dkim_verify_result *r = verify(m);

		if (r->res != DKIM_RES_PASS)
			unit_fail(__FILE__, __LINE__, "%s %s: %s (%s)",
			    c[i].key, c[i].canon, dkim_res_name(r->res),
			    r->reason);
		CHECK_STR(r->sig[0].selector, c[i].sel);
	}
}

static void
t_header_changed(void)
{
	struct dkim_sign_opts o;
	char out[TOOL_OUT_MAX], *m;
	struct dkim_verify_result *r;

	keys();
	o = opts("rsa", k_rsa, DKIM_C_RELAXED, DKIM_C_RELAXED);
	m = replace(sign_msg(&o, 1, MSG), "Subject: Hello", "Subject: Hello!");
	CHECK(dkimpy_verify(m, out, sizeof(out)) != 0);
	r = verify(m);
	CHECK_RES(r->res, "fail");
	CHECK_STR(r->sig[0].reason, "signature did not verify");
	/* And a header dkimpy signed. */
	m = replace(dkimpy_sign("ed25519.pem", "ed", "simple/simple", "-", MSG),
	    "To: Bob", "To: Eve");
	r = verify(m);
	CHECK_RES(r->res, "fail");
}

static void
t_body_changed(void)
{
	struct dkim_sign_opts o;
	char out[TOOL_OUT_MAX], *m;
	struct dkim_verify_result *r;

	keys();
	o = opts("ed", k_ed, DKIM_C_SIMPLE, DKIM_C_SIMPLE);
	m = replace(sign_msg(&o, 1, MSG), "Hello  world", "Hello world");
	CHECK(dkimpy_verify(m, out, sizeof(out)) != 0);
	r = verify(m);
	CHECK_RES(r->res, "fail");
	CHECK_STR(r->sig[0].reason, "body hash did not verify");
	/* Relaxed: white space changes are allowed. */
	o = opts("ed", k_ed, DKIM_C_RELAXED, DKIM_C_RELAXED);
	m = replace(sign_msg(&o, 1, MSG), "Hello  world", "Hello world");
	CHECK_RES(verify(m)->res, "pass");
}

static void
t_from_oversigned(void)
{
	struct dkim_sign_opts o;
	char out[TOOL_OUT_MAX], *m;

	keys();
	o = opts("rsa", k_rsa, DKIM_C_RELAXED, DKIM_C_RELAXED);
	m = sign_msg(&o, 1, MSG);
	/* A second From added above the signed one, after signing. */
	m = replace(m, "From: Alice", "From: Mallory <m@evil.test>\r\nFrom: Alice");
	CHECK(dkimpy_verify(m, out, sizeof(out)) != 0);
	CHECK_RES(verify(m)->res, "fail");
}

static void
t_sign_from_file(void)
{
	static const char prefix[] = "X-Added: by the delivery\r\n";
	static const char junk[] = "JUNK BEFORE THE MESSAGE";
	struct dkim_sign_opts o;
	struct sgot *g;
	char *path = tmp_path("spool"), *file, *m;
	size_t flen;
	int fd;

	keys();
	o = opts("rsa", k_rsa, DKIM_C_SIMPLE, DKIM_C_SIMPLE);
	file = unit_alloc(sizeof(junk) + sizeof(MSG));
	strcpy(file, junk);
	strcat(file, MSG);
	write_file(path, file, strlen(file));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	g = sign_any(&o, 1, fd, strlen(junk), prefix, strlen(prefix));
	close(fd);
	CHECK(g->ok);
	flen = g->len + strlen(prefix) + strlen(MSG);
	m = unit_alloc(flen + 1);
	snprintf(m, flen + 1, "%s%s%s", g->fields, prefix, MSG);
	CHECK_RES(verify(m)->res, "pass");
	/* The file was read from the offset on: the junk is not signed (and
	 * X-Added is not in h=, so the message verifies without it too). */
	m = unit_alloc(g->len + strlen(MSG) + 1);
	snprintf(m, g->len + strlen(MSG) + 1, "%s%s", g->fields, MSG);
	CHECK_RES(verify(m)->res, "pass");
	/* With a signed field in the prefix, the prefix is what counts. */
	o.headers = (const char *const[]){ "From", "X-Added", NULL };
	fd = open(path, O_RDONLY | O_CLOEXEC);
	g = sign_any(&o, 1, fd, strlen(junk), prefix, strlen(prefix));
	close(fd);
	CHECK(g->ok);
	snprintf(m, g->len + strlen(MSG) + 1, "%s%s", g->fields, MSG);
	CHECK_RES(verify(m)->res, "fail");
}

static void
t_identity(void)
{
	struct dkim_sign_opts o;
	struct dkim_verify_result *r;
	char err[256];

	keys();
	o = opts("rsa", k_rsa, DKIM_C_RELAXED, DKIM_C_RELAXED);
	o.identity = "alice@mail.dkim.test";
	r = verify(sign_msg(&o, 1, MSG));
	CHECK_RES(r->res, "pass");
	CHECK_STR(r->sig[0].identity, "alice@mail.dkim.test");
	o.identity = "alice@other.test";
	CHECK(dkim_sign_start(&o, 1, -1, 0, MSG, strlen(MSG), 5, sign_cb,
	    NULL, err, sizeof(err)) == NULL);
	o.identity = "@xdkim.test";
	CHECK(dkim_sign_start(&o, 1, -1, 0, MSG, strlen(MSG), 5, sign_cb,
	    NULL, err, sizeof(err)) == NULL);
}

static void
t_sign_options_checked(void)
{
	static const char *bad_names[] = { "From", "Sub ject", NULL };
	static const char *few[] = { "Subject", NULL };
	struct dkim_sign_opts o[DKIM_SIGN_MAX + 1];
	char err[256], *m;

	keys();
	for (size_t i = 0; i <= DKIM_SIGN_MAX; i++)
		o[i] = opts("rsa", k_rsa, DKIM_C_RELAXED, DKIM_C_RELAXED);
	CHECK(dkim_sign_start(o, DKIM_SIGN_MAX + 1, -1, 0, MSG, strlen(MSG),
	    5, sign_cb, NULL, err, sizeof(err)) == NULL);
	CHECK(dkim_sign_start(o, 0, -1, 0, MSG, strlen(MSG), 5, sign_cb, NULL,
	    err, sizeof(err)) == NULL);
	o[0].headers = bad_names;
	CHECK(dkim_sign_start(o, 1, -1, 0, MSG, strlen(MSG), 5, sign_cb, NULL,
	    err, sizeof(err)) == NULL);
	o[0].headers = (const char *const[]){ "From", "dkim-signature", NULL };
	CHECK(dkim_sign_start(o, 1, -1, 0, MSG, strlen(MSG), 5, sign_cb, NULL,
	    err, sizeof(err)) == NULL);
	o[0].headers = NULL;
	o[0].identity = "a=b@dkim.test";
	CHECK(dkim_sign_start(o, 1, -1, 0, MSG, strlen(MSG), 5, sign_cb, NULL,
	    err, sizeof(err)) == NULL);
	o[0].identity = NULL;
	o[0].domain = "dkim..test";
	CHECK(dkim_sign_start(o, 1, -1, 0, MSG, strlen(MSG), 5, sign_cb, NULL,
	    err, sizeof(err)) == NULL);
	o[0].domain = "dkim.test";
	o[0].key = NULL;
	CHECK(dkim_sign_start(o, 1, -1, 0, MSG, strlen(MSG), 5, sign_cb, NULL,
	    err, sizeof(err)) == NULL);
	CHECK(dkim_sign_start(o, 1, -1, 0, NULL, 0, 5, sign_cb, NULL, err,
	    sizeof(err)) == NULL);
	/* A short list: From is still signed (libopendkim requires it). */
	o[0].key = k_rsa;
	o[0].headers = few;
	m = sign_msg(o, 1, MSG);
	CHECK(strstr(m, "h=From:Subject:From;") != NULL);
	CHECK_RES(verify(m)->res, "pass");
	CHECK_INT(dkim_pending(), 0);
}

static void
t_key_loading(void)
{
	static const char *refused[] = { "rsa512.pem", "rsa8192.pem",
	    "dkimpy_tool.py" };
	static const char enc[] =
	    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0w"
	    "\n-----END ENCRYPTED PRIVATE KEY-----\n";
	char err[256], path[128], rec[1024];
	struct dkim_key *k;

	keys();
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(path, sizeof(path), FIX "%s", refused[i]);
		CHECK(dkim_key_load(path, err, sizeof(err)) == NULL);
	}
	CHECK(strstr(err, "no unencrypted PEM") != NULL);
	CHECK(dkim_key_load(FIX "missing.pem", err, sizeof(err)) == NULL);
	CHECK(dkim_key_from_pem(enc, strlen(enc), err, sizeof(err)) == NULL);
	CHECK_INT(dkim_key_type(k_rsa), DKIM_KEY_RSA);
	CHECK_INT(dkim_key_bits(k_rsa), 2048);
	CHECK_INT(dkim_key_type(k_ed), DKIM_KEY_ED25519);
	CHECK_INT(dkim_key_record(k_ed, rec, sizeof(rec)), 0);
	CHECK(strncmp(rec, "v=DKIM1; k=ed25519; p=", 22) == 0);
	CHECK_INT(strlen(rec), 22 + 44);
	CHECK_INT(dkim_key_record(k_rsa, rec, 100), -1);
	CHECK_INT(dkim_key_record(k_rsa, rec, sizeof(rec)), 0);
	CHECK(strncmp(rec, "v=DKIM1; k=rsa; p=MIIBIjAN", 26) == 0);
	/* The zone publishes the same key. */
	{
		char *zone = read_file("spec/fixtures/dns/dkim.test.zone",
		    NULL);

		CHECK(strstr(zone, rec + 18 + 200) != NULL ||
		    strstr(zone, "MIIBIjAN") != NULL);
	}
	k = dkim_key_ref(k_1024);
	dkim_key_unref(k);
	dkim_key_unref(NULL);
}

static void
t_no_signature(void)
{
	struct dkim_verify_result *r;

	setup();
	r = verify(MSG);
	CHECK_RES(r->res, "none");
	CHECK_INT(r->nsigs, 0);
	CHECK_STR(r->reason, "no signature");
	/* No header at all. */
	CHECK_RES(verify("\r\nonly a body\r\n")->res, "none");
	CHECK_RES(verify("")->res, "none");
}

static void
t_key_sizes(void)
{
	struct dkim_sign_opts o;
	struct dkim_verify_opts vo;
	struct dkim_verify_result *r;
	char *m;

	keys();
	o = opts("rsa1024", k_1024, DKIM_C_RELAXED, DKIM_C_RELAXED);
	m = sign_msg(&o, 1, MSG);
	r = verify(m);
	CHECK_RES(r->res, "pass");
	CHECK_INT(r->sig[0].key_bits, 1024);
	memset(&vo, 0, sizeof(vo));
	vo.min_key_bits = 2048;
	r = verify_step(m, strlen(m), &vo, 4096);
	CHECK_RES(r->res, "policy");
	CHECK_STR(r->sig[0].reason, "key too small (1024 bits)");
	r = verify(dkimpy_sign("rsa512.pem", "small", "relaxed/relaxed", "-",
	    MSG));
	CHECK_RES(r->res, "policy");
	CHECK_STR(r->sig[0].reason, "key too small (512 bits)");
	r = verify(dkimpy_sign("rsa8192.pem", "big", "relaxed/relaxed", "-",
	    MSG));
	CHECK_RES(r->res, "policy");
	CHECK_STR(r->sig[0].reason, "key too large (8192 bits)");
}

/* MSG signed by dkimpy with the rsa key as selector sel of domain d. */
static char *
signed_as(const char *sel, const char *d)
{
	return dkimpy_sign_d("rsa2048.pem", sel, d, "relaxed/relaxed", "-",
	    MSG);
}

static void
t_key_records(void)
{
	static const struct {
		const char *sel, *res;
	} c[] = {
		{ "revoked", "permerror" },
		{ "garbage", "permerror" },
		{ "notemail", "permerror" },
		{ "nokey", "permerror" },
		{ "two", "pass" },
	};

	setup();
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct dkim_verify_result *r = verify(signed_as(c[i].sel,
		    "dkim.test"));

		if (strcmp(dkim_res_name(r->res), c[i].res) != 0)
			unit_fail(__FILE__, __LINE__, "%s: %s (%s), want %s",
			    c[i].sel, dkim_res_name(r->res), r->sig[0].reason,
			    c[i].res);
	}
}

static void
t_dns_failures(void)
{
	struct dkim_verify_opts vo;
	struct dkim_verify_result *r;
	char *m;

	setup();
	m = signed_as("x", "servfail.test");
	r = verify(m);
	CHECK_RES(r->res, "temperror");
	CHECK_STR(r->sig[0].reason, "key lookup: SERVFAIL");
	memset(&vo, 0, sizeof(vo));
	vo.dns_timeout = 1;
	m = signed_as("x", "slow.test");
	r = verify_step(m, strlen(m), &vo, 4096);
	CHECK_RES(r->res, "temperror");
	CHECK_STR(r->sig[0].reason, "key lookup: TIMEOUT");
	/* A selector that makes no DNS name. */
	r = verify(replace(signed_as("rsa", "dkim.test"), "s=rsa;", "s=a..b;"));
	CHECK_RES(r->sig[0].res, "permerror");
	CHECK_STR(r->sig[0].reason, "s= and d= make no valid DNS name");
}

static void
t_sha1(void)
{
	struct dkim_verify_opts vo;
	struct dkim_verify_result *r;
	char *m;

	setup();
	m = dkimpy_sign("rsa2048.pem", "rsa", "relaxed/relaxed", "1", MSG);
	r = verify(m);
	CHECK_RES(r->res, "policy");
	CHECK_STR(r->sig[0].reason, "rsa-sha1 is not accepted (RFC 8301)");
	CHECK_STR(r->sig[0].algorithm, "rsa-sha1");
	memset(&vo, 0, sizeof(vo));
	vo.allow_sha1 = true;
	CHECK_RES(verify_step(m, strlen(m), &vo, 4096)->res, "pass");
}

static void
t_malformed_signature(void)
{
	struct dkim_verify_result *r;
	char *m = dkimpy_sign("rsa2048.pem", "rsa", "relaxed/relaxed", "-",
	    MSG);

	r = verify(replace(m, " b=", " y="));
	CHECK_INT(r->nsigs, 1);
	CHECK_RES(r->sig[0].res, "neutral");
	CHECK_STR(r->sig[0].reason, "signature data missing");
	r = verify(replace(m, "v=1;", "v=9;"));
	CHECK_RES(r->sig[0].res, "neutral");
	/* Garbage in the header block is skipped, not fatal. */
	r = verify(replace(m, "To: Bob", "\x80\x81: x\r\nTo: Bob"));
	CHECK_RES(r->res, "pass");
	r = verify("DKIM-Signature: ;;;\r\n\r\nbody\r\n");
	CHECK_INT(r->nsigs, 1);
	CHECK(r->sig[0].res != DKIM_RES_PASS);
}

static void
t_partial_body(void)
{
	struct dkim_verify_result *r;
	char *m = dkimpy_sign("rsa2048.pem", "rsa", "relaxed/relaxed", "l",
	    MSG);
	char *more = unit_alloc(strlen(m) + 64);

	r = verify(m);
	CHECK_RES(r->res, "pass");
	CHECK(r->sig[0].body_length > 0);
	CHECK(r->sig[0].partial);
	strcpy(more, m);
	strcat(more, "Appended after signing.\r\n");
	r = verify(more);
	CHECK_RES(r->res, "pass");
	CHECK(r->sig[0].partial);
}

static void
t_signature_cap(void)
{
	struct dkim_verify_result *r;
	char *m = dkimpy_sign("ed25519.pem", "ed", "relaxed/relaxed", "-", MSG);
	const char *end = strstr(m, "From: Alice");
	size_t siglen = (size_t)(end - m), n = DKIM_SIGS_MAX + 1;
	char *many = unit_alloc(n * siglen + strlen(MSG) + 1);

	for (size_t i = 0; i < n; i++)
		memcpy(many + i * siglen, m, siglen);
	strcpy(many + n * siglen, MSG);
	r = verify(many);
	CHECK_RES(r->res, "pass");
	CHECK_INT(r->nsigs, DKIM_SIGS_MAX);
	CHECK_INT(r->skipped, 1);
	for (size_t i = 0; i < r->nsigs; i++)
		CHECK_RES(r->sig[i].res, "pass");
	/* At the cap exactly: nothing skipped. */
	strcpy(many + DKIM_SIGS_MAX * siglen, MSG);
	r = verify(many);
	CHECK_INT(r->nsigs, DKIM_SIGS_MAX);
	CHECK_INT(r->skipped, 0);
}

/* MSG behind filler fields, its header block exactly hlen octets (hlen
 * well above MSG's own header). */
static char *
header_of(size_t hlen)
{
	size_t mh = (size_t)(strstr(MSG, "\r\n\r\n") + 2 - MSG), len = 0;
	char *m = unit_alloc(hlen + sizeof(MSG));

	/* Lines of 400 octets, then one of 400 to 800 for the rest. */
	while (len + mh < hlen) {
		size_t left = hlen - mh - len, n = left > 800 ? 400 : left;

		CHECK(n >= 12);
		memcpy(m + len, "X-Filler: ", 10);
		memset(m + len + 10, 'x', n - 12);
		memcpy(m + len + n - 2, "\r\n", 2);
		len += n;
	}
	strcpy(m + len, MSG);
	CHECK_INT((size_t)(strstr(m, "\r\n\r\n") + 2 - m), hlen);
	return m;
}

static void
t_header_cap(void)
{
	struct dkim_verify_result *r;

	setup();
	/* At the cap: read to the end (there is no signature). */
	r = verify(header_of(DKIM_HEADER_MAX));
	CHECK_RES(r->res, "none");
	r = verify(header_of(DKIM_HEADER_MAX + 1));
	CHECK_RES(r->res, "permerror");
	CHECK_STR(r->reason, "header block larger than 262144 octets");
}

static void
t_octet_writes(void)
{
	struct dkim_sign_opts o;
	char *m;

	keys();
	o = opts("ed", k_ed, DKIM_C_SIMPLE, DKIM_C_SIMPLE);
	m = sign_msg(&o, 1, MSG);
	CHECK_RES(verify_step(m, strlen(m), NULL, 1)->res, "pass");
	CHECK_RES(verify_step(m, strlen(m), NULL, 3)->res, "pass");
	CHECK_RES(verify_step(m, strlen(m), NULL, 700)->res, "pass");
}

static void
t_header_only(void)
{
	static const char hdr[] = "From: Alice <alice@dkim.test>\r\n"
	    "Subject: no body\r\n";
	struct dkim_sign_opts o;
	struct dkim_verify_result *r;

	keys();
	o = opts("rsa", k_rsa, DKIM_C_RELAXED, DKIM_C_RELAXED);
	r = verify(sign_msg(&o, 1, hdr));
	CHECK_RES(r->res, "pass");
}

static void
t_shutdown(void)
{
	setup();
	CHECK_INT(dkim_pending(), 0);
	dkim_key_unref(k_rsa);
	dkim_key_unref(k_ed);
	dkim_key_unref(k_1024);
	k_rsa = k_ed = k_1024 = NULL;
	teardown();
	dns = NULL;
}

static const struct unit_case cases[] = {
	{ "our rsa-sha256 relaxed signature verifies with dkimpy and us",
	    t_rsa_relaxed },
	{ "our rsa-sha256 simple signature verifies with dkimpy and us",
	    t_rsa_simple },
	{ "our ed25519-sha256 relaxed signature verifies with dkimpy and us",
	    t_ed_relaxed },
	{ "our ed25519-sha256 simple signature verifies with dkimpy and us",
	    t_ed_simple },
	{ "relaxed/simple and simple/relaxed verify both ways", t_mixed_canon },
	{ "rsa and ed25519 signatures made in one pass", t_two_in_one_pass },
	{ "result fields d s i a b and oversigned From", t_result_fields },
	{ "dkimpy signatures of both key types verify with us",
	    t_dkimpy_signed },
	{ "a header changed after signing fails", t_header_changed },
	{ "a body changed after signing fails (simple) or not (relaxed)",
	    t_body_changed },
	{ "a From added after signing fails (From is oversigned)",
	    t_from_oversigned },
	{ "signing a spool file at an offset with a prefix", t_sign_from_file },
	{ "i= in a subdomain of d= verifies; outside d= is refused",
	    t_identity },
	{ "sign options are checked", t_sign_options_checked },
	{ "key files are checked when loaded", t_key_loading },
	{ "no signature is none", t_no_signature },
	{ "key sizes 1024 pass and 512 or 8192 are policy", t_key_sizes },
	{ "revoked garbage non-email missing and duplicate key records",
	    t_key_records },
	{ "SERVFAIL and a timeout on the key lookup are temperror",
	    t_dns_failures },
	{ "rsa-sha1 is policy unless allowed", t_sha1 },
	{ "malformed signatures are neutral", t_malformed_signature },
	{ "l= passes and flags a partially signed body", t_partial_body },
	{ "10 signatures are evaluated and the rest skipped",
	    t_signature_cap },
	{ "a header block past the cap is permerror", t_header_cap },
	{ "octet-by-octet writes verify", t_octet_writes },
	{ "a message without a body verifies", t_header_only },
	{ "shutdown", t_shutdown },
};

int
main(void)
{
	if (test_env_load(&env) != 0)
		return 1;
	return unit_run(cases, sizeof(cases) / sizeof(cases[0]));
}
