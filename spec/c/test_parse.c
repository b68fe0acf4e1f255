/*
 * test_parse.c — unit cases for src/smtp/smtp_parse.c.
 *
 * RFC 5321 §4.1.1 (verbs), §4.1.2 (paths), §4.1.3 (address literals),
 * §4.5.3.1 (size limits, each tested at n and n+1); RFC 6531 (UTF-8
 * mailboxes); RFC 1870 SIZE, RFC 6152 BODY, RFC 4954 AUTH=, RFC 3030 BDAT.
 *
 * Every input is handed to the parser as an exact-size heap copy with no
 * terminator (unit_dup), so a read past the length is an ASan report.
 * Each malformed input is its own case.
 */
#include "smtp/smtp_parse.h"

#include "unit.h"

/* A string literal as (pointer, length): keeps embedded NULs. */
#define LIT(s)		(s), (sizeof(s) - 1)

/* ---- helpers ---- */

/* A case-owned string of n copies of c. */
static char *
rep(char c, size_t n)
{
	char *s = unit_alloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A case-owned concatenation of up to three strings. */
static char *
cat(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = unit_alloc(la + lb + lc + 1);

	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc);
	s[la + lb + lc] = '\0';
	return s;
}

/* A well-formed domain of exactly n octets: 9-letter labels and dots. */
static char *
domain_of(size_t n)
{
	char *s = rep('a', n);

	for (size_t i = 9; i + 1 < n; i += 10)
		s[i] = '.';
	return s;
}

static struct smtp_cmd *
command(const char *line, size_t len)
{
	struct smtp_cmd *c = unit_alloc(sizeof(*c));

	smtp_parse_command(unit_dup(line, len), len, c);
	return c;
}

#define CHECK_CMD(c, v, n, a) do {					\
	CHECK_INT((c)->verb, (v));					\
	CHECK_STR((c)->name, (n));					\
	CHECK_MEM((c)->arg, (c)->arglen, (a), strlen(a));		\
} while (0)

struct parsed {
	int			rc;
	struct smtp_path	path;
	struct smtp_params	params;
	struct smtp_err		err;
};

static struct parsed *
parse_path(enum smtp_path_kind kind, const char *arg, size_t len)
{
	struct parsed *r = unit_alloc(sizeof(*r));

	memset(r, 0, sizeof(*r));
	r->err = (struct smtp_err){ 0, "(unset)", "(unset)" };
	r->rc = smtp_parse_path_arg(unit_dup(arg, len), len, kind, &r->path,
	    &r->params, &r->err);
	return r;
}

/* The argument of MAIL / RCPT, after the verb. */
#define MAIL(lit)	parse_path(SMTP_PATH_REVERSE, LIT(lit))
#define RCPT(lit)	parse_path(SMTP_PATH_FORWARD, LIT(lit))
#define MAIL_S(s)	parse_path(SMTP_PATH_REVERSE, (s), strlen(s))
#define RCPT_S(s)	parse_path(SMTP_PATH_FORWARD, (s), strlen(s))

/* The err arguments may be one macro (BAD_RCPT): expand before use. */
#define CHECK_ERR(e, ...)	CHECK_ERR_(e, __VA_ARGS__)
#define CHECK_ERR_(e, c, ec, t) do {					\
	CHECK_INT((e).code, (c));					\
	CHECK_STR((e).ecode, (ec));					\
	CHECK_STR((e).text, (t));					\
} while (0)

#define CHECK_OK(r, mbox) do {						\
	CHECK_INT((r)->rc, 0);						\
	CHECK_STR((r)->path.mailbox, (mbox));				\
} while (0)

#define CHECK_REFUSED(r, ...) do {					\
	CHECK_INT((r)->rc, -1);						\
	CHECK_ERR((r)->err, __VA_ARGS__);				\
} while (0)

#define MAIL_SYNTAX	501, "5.5.4", "Syntax: MAIL FROM:<address>"
#define RCPT_SYNTAX	501, "5.5.4", "Syntax: RCPT TO:<address>"
#define BAD_SENDER	501, "5.1.7", "Bad sender address syntax"
#define BAD_RCPT	501, "5.1.3", "Bad recipient address syntax"
#define PARAM_SYNTAX	501, "5.5.4", "Syntax error in parameters"

/* One case per malformed sender / recipient. */
#define REFUSE_MAIL(fn, lit, ...)					\
static void fn(void) { CHECK_REFUSED(MAIL(lit), __VA_ARGS__); }
#define REFUSE_RCPT(fn, lit, ...)					\
static void fn(void) { CHECK_REFUSED(RCPT(lit), __VA_ARGS__); }

static int
mailbox(const char *s, size_t len, struct smtp_path *p)
{
	return smtp_parse_mailbox(unit_dup(s, len), len, p);
}

static int
helo(const char *s, size_t len, struct smtp_err *err)
{
	*err = (struct smtp_err){ 0, "(unset)", "(unset)" };
	return smtp_parse_helo(unit_dup(s, len), len, err);
}

#define HELO_BAD	501, "5.5.4", "Invalid hostname syntax"
#define REFUSE_HELO(fn, lit)						\
static void fn(void)							\
{									\
	struct smtp_err e;						\
	CHECK_INT(helo(LIT(lit), &e), -1);				\
	CHECK_ERR(e, HELO_BAD);						\
}

struct mailp {
	int			rc;
	struct smtp_mail_opts	opts;
	struct smtp_err		err;
};

static const struct smtp_ext ext_all = { true, true, true, true };
static const struct smtp_ext ext_none = { false, false, false, false };

/* MAIL FROM:<a@b> followed by the parameter text, then interpreted. */
static struct mailp *
mail_params(const char *params, const struct smtp_ext *ext)
{
	struct mailp *m = unit_alloc(sizeof(*m));
	struct parsed *r = MAIL_S(cat("FROM:<a@b> ", params, ""));

	if (r->rc != 0)
		unit_fail(__FILE__, __LINE__, "parameters \"%.60s\" refused "
		    "by the path parser: %s", params, r->err.text);
	memset(m, 0, sizeof(*m));
	m->err = (struct smtp_err){ 0, "(unset)", "(unset)" };
	m->rc = smtp_parse_mail_params(&r->params, ext, &m->opts, &m->err);
	return m;
}

#define REFUSE_PARAMS(fn, text, ext, ...)				\
static void fn(void)							\
{									\
	struct mailp *m = mail_params(text, ext);			\
	CHECK_INT(m->rc, -1);						\
	CHECK_ERR(m->err, __VA_ARGS__);					\
}

struct bdat {
	int		rc;
	uint64_t	size;
	bool		last;
	struct smtp_err	err;
};

static struct bdat *
bdat(const char *arg, size_t len)
{
	struct bdat *b = unit_alloc(sizeof(*b));

	memset(b, 0, sizeof(*b));
	b->size = 12345;
	b->err = (struct smtp_err){ 0, "(unset)", "(unset)" };
	b->rc = smtp_parse_bdat(unit_dup(arg, len), len, &b->size, &b->last,
	    &b->err);
	return b;
}

#define BDAT_SYNTAX	501, "5.5.4", "Syntax: BDAT size [LAST]"
#define REFUSE_BDAT(fn, lit)						\
static void fn(void)							\
{									\
	struct bdat *b = bdat(LIT(lit));				\
	CHECK_INT(b->rc, -1);						\
	CHECK_ERR(b->err, BDAT_SYNTAX);					\
}

static bool
utf8(const char *s, size_t len)
{
	return smtp_utf8_valid((const unsigned char *)unit_dup(s, len), len);
}

#define UTF8_VALID(fn, lit)						\
static void fn(void) { CHECK(utf8(LIT(lit))); }
#define UTF8_INVALID(fn, lit)						\
static void fn(void) { CHECK(!utf8(LIT(lit))); }

/* ==== smtp_parse_command ==== */

static void
t_verb_upper(void)
{
	CHECK_CMD(command(LIT("HELO mx.example")), SMTP_VERB_HELO, "HELO",
	    "mx.example");
}

static void
t_verb_lower(void)
{
	CHECK_CMD(command(LIT("mail FROM:<a@b>")), SMTP_VERB_MAIL, "MAIL",
	    "FROM:<a@b>");
}

static void
t_verb_mixed(void)
{
	CHECK_CMD(command(LIT("StartTls")), SMTP_VERB_STARTTLS, "STARTTLS", "");
}

static void
t_verb_all(void)
{
	static const struct {
		const char	*line;
		enum smtp_verb	 verb;
	} v[] = {
		{ "HELO", SMTP_VERB_HELO }, { "EHLO", SMTP_VERB_EHLO },
		{ "LHLO", SMTP_VERB_LHLO }, { "MAIL", SMTP_VERB_MAIL },
		{ "RCPT", SMTP_VERB_RCPT }, { "DATA", SMTP_VERB_DATA },
		{ "BDAT", SMTP_VERB_BDAT }, { "RSET", SMTP_VERB_RSET },
		{ "NOOP", SMTP_VERB_NOOP }, { "QUIT", SMTP_VERB_QUIT },
		{ "VRFY", SMTP_VERB_VRFY }, { "EXPN", SMTP_VERB_EXPN },
		{ "HELP", SMTP_VERB_HELP }, { "STARTTLS", SMTP_VERB_STARTTLS },
		{ "AUTH", SMTP_VERB_AUTH },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct smtp_cmd *c = command(v[i].line, strlen(v[i].line));

		CHECK_CMD(c, v[i].verb, v[i].line, "");
	}
}

static void
t_verb_unknown(void)
{
	CHECK_CMD(command(LIT("FOO bar")), SMTP_VERB_UNKNOWN, "", "bar");
}

static void
t_verb_prefix(void)
{
	CHECK_CMD(command(LIT("MAI FROM:<a@b>")), SMTP_VERB_UNKNOWN, "",
	    "FROM:<a@b>");
}

static void
t_verb_suffix(void)
{
	CHECK_CMD(command(LIT("QUITX")), SMTP_VERB_UNKNOWN, "", "");
}

static void
t_verb_empty(void)
{
	CHECK_CMD(command(LIT("")), SMTP_VERB_UNKNOWN, "", "");
}

static void
t_verb_leading_space(void)
{
	CHECK_CMD(command(LIT(" QUIT")), SMTP_VERB_UNKNOWN, "", "QUIT");
}

static void
t_verb_tab(void)
{
	/* Only SP separates the verb (RFC 5321 §4.1.1). */
	CHECK_CMD(command(LIT("NOOP\tx")), SMTP_VERB_UNKNOWN, "", "");
}

static void
t_arg_spaces(void)
{
	CHECK_CMD(command(LIT("EHLO    mx.example")), SMTP_VERB_EHLO, "EHLO",
	    "mx.example");
}

static void
t_arg_trailing(void)
{
	CHECK_CMD(command(LIT("EHLO mx.example \t \t")), SMTP_VERB_EHLO,
	    "EHLO", "mx.example");
}

static void
t_arg_inner_spaces(void)
{
	CHECK_CMD(command(LIT("MAIL FROM:<a@b>  SIZE=1")), SMTP_VERB_MAIL,
	    "MAIL", "FROM:<a@b>  SIZE=1");
}

static void
t_nul_arg(void)
{
	struct smtp_cmd *c = command(LIT("MAIL FROM:<a\0@b>"));

	CHECK_INT(c->verb, SMTP_VERB_UNKNOWN);
	CHECK_STR(c->name, "");
}

static void
t_nul_verb(void)
{
	CHECK_INT(command(LIT("QU\0T"))->verb, SMTP_VERB_UNKNOWN);
}

static void
t_nul_after_verb(void)
{
	CHECK_INT(command(LIT("QUIT\0"))->verb, SMTP_VERB_UNKNOWN);
}

static void
t_header_subject(void)
{
	CHECK_INT(command(LIT("Subject: hello"))->verb, SMTP_VERB_FORBIDDEN);
}

static void
t_header_nospace(void)
{
	CHECK_INT(command(LIT("Subject:x"))->verb, SMTP_VERB_FORBIDDEN);
}

static void
t_header_dash(void)
{
	CHECK_INT(command(LIT("X-Mailer: foo"))->verb, SMTP_VERB_FORBIDDEN);
}

static void
t_header_from(void)
{
	CHECK_INT(command(LIT("From: <a@b>"))->verb, SMTP_VERB_FORBIDDEN);
}

static void
t_header_nul(void)
{
	CHECK_INT(command(LIT("Subject: a\0b"))->verb, SMTP_VERB_FORBIDDEN);
}

static void
t_not_header_digit(void)
{
	/* A header field name here must start with a letter. */
	CHECK_INT(command(LIT("1x: y"))->verb, SMTP_VERB_UNKNOWN);
}

static void
t_not_header_space(void)
{
	CHECK_INT(command(LIT("Sub ject: y"))->verb, SMTP_VERB_UNKNOWN);
}

static void
t_http_get(void)
{
	CHECK_CMD(command(LIT("GET / HTTP/1.1")), SMTP_VERB_FORBIDDEN, "GET",
	    "/ HTTP/1.1");
}

static void
t_http_post(void)
{
	CHECK_INT(command(LIT("POST /x HTTP/1.0"))->verb, SMTP_VERB_FORBIDDEN);
}

static void
t_http_connect(void)
{
	CHECK_INT(command(LIT("CONNECT mx:25 HTTP/1.1"))->verb,
	    SMTP_VERB_FORBIDDEN);
}

static void
t_http_others(void)
{
	CHECK_INT(command(LIT("PUT /"))->verb, SMTP_VERB_FORBIDDEN);
	CHECK_INT(command(LIT("HEAD /"))->verb, SMTP_VERB_FORBIDDEN);
	CHECK_INT(command(LIT("OPTIONS *"))->verb, SMTP_VERB_FORBIDDEN);
}

static void
t_http_lower(void)
{
	CHECK_INT(command(LIT("get /"))->verb, SMTP_VERB_FORBIDDEN);
}

/* ==== MAIL FROM / RCPT TO paths ==== */

static void
t_mail_plain(void)
{
	struct parsed *r = MAIL("FROM:<alice@example.org>");

	CHECK_OK(r, "alice@example.org");
	CHECK_INT(r->path.local_len, 5);
	CHECK(!r->path.null);
	CHECK(!r->path.postmaster);
	CHECK(!r->path.utf8);
	CHECK_INT(r->params.n, 0);
}

static void
t_rcpt_plain(void)
{
	struct parsed *r = RCPT("TO:<bob@example.org>");

	CHECK_OK(r, "bob@example.org");
	CHECK_INT(r->path.local_len, 3);
	CHECK(!r->path.postmaster);
}

static void
t_mail_kw_case(void)
{
	CHECK_OK(MAIL("from:<a@b>"), "a@b");
	CHECK_OK(MAIL("FrOm:<a@b>"), "a@b");
}

static void
t_rcpt_kw_case(void)
{
	CHECK_OK(RCPT("to:<a@b>"), "a@b");
}

static void
t_mail_space_after_colon(void)
{
	CHECK_OK(MAIL("FROM: <a@b>"), "a@b");
	CHECK_OK(MAIL("FROM:   <a@b>"), "a@b");
}

static void
t_rcpt_space_after_colon(void)
{
	CHECK_OK(RCPT("TO: <a@b>"), "a@b");
}

static void
t_mail_null(void)
{
	struct parsed *r = MAIL("FROM:<>");

	CHECK_OK(r, "");
	CHECK(r->path.null);
	CHECK_INT(r->path.local_len, 0);
}

static void
t_mail_null_params(void)
{
	struct parsed *r = MAIL("FROM:<> SIZE=100");

	CHECK_OK(r, "");
	CHECK(r->path.null);
	CHECK_INT(r->params.n, 1);
	CHECK_STR(r->params.p[0].name, "SIZE");
}

REFUSE_RCPT(t_rcpt_null, "TO:<>", BAD_RCPT)

static void
t_rcpt_postmaster(void)
{
	struct parsed *r = RCPT("TO:<Postmaster>");

	CHECK_OK(r, "Postmaster");
	CHECK(r->path.postmaster);
	CHECK_INT(r->path.local_len, 10);
	CHECK(!r->path.null);
}

static void
t_rcpt_postmaster_case(void)
{
	struct parsed *r = RCPT("TO:<pOSTMASTER>");

	CHECK_OK(r, "Postmaster");
	CHECK(r->path.postmaster);
	CHECK_OK(RCPT("TO:<postmaster>"), "Postmaster");
}

static void
t_rcpt_postmaster_params(void)
{
	struct parsed *r = RCPT("TO:<Postmaster> NOTIFY=NEVER");

	CHECK_OK(r, "Postmaster");
	CHECK(r->path.postmaster);
	CHECK_INT(r->params.n, 1);
}

static void
t_rcpt_postmaster_domain(void)
{
	struct parsed *r = RCPT("TO:<postmaster@example.org>");

	CHECK_OK(r, "postmaster@example.org");
	CHECK(!r->path.postmaster);
}

REFUSE_MAIL(t_mail_postmaster, "FROM:<Postmaster>", BAD_SENDER)
REFUSE_RCPT(t_rcpt_postmaster_long, "TO:<Postmasters>", BAD_RCPT)
REFUSE_RCPT(t_rcpt_postmaster_quoted, "TO:<\"Postmaster\">", BAD_RCPT)

/* Syntax around the path. */
REFUSE_MAIL(t_mail_empty, "", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_kw_only, "FROM:", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_kw_spaces, "FROM:   ", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_no_kw, "<a@b>", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_no_colon, "FROM <a@b>", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_space_before_colon, "FROM :<a@b>", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_to_kw, "TO:<a@b>", MAIL_SYNTAX)
REFUSE_RCPT(t_rcpt_from_kw, "FROM:<a@b>", RCPT_SYNTAX)
REFUSE_MAIL(t_mail_no_lt, "FROM:a@b", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_no_lt_gt, "FROM:a@b>", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_no_gt, "FROM:<a@b", MAIL_SYNTAX)
REFUSE_RCPT(t_rcpt_no_lt, "TO:a@b", RCPT_SYNTAX)
REFUSE_RCPT(t_rcpt_no_gt, "TO:<a@b", RCPT_SYNTAX)
REFUSE_MAIL(t_mail_tab_before_path, "FROM:\t<a@b>", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_after_gt, "FROM:<a@b>x", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_tab_after_gt, "FROM:<a@b>\tSIZE=1", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_nul_kw, "FR\0M:<a@b>", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_double_lt, "FROM:<<a@b>>", MAIL_SYNTAX)
REFUSE_MAIL(t_mail_two_paths, "FROM:<a@b><c@d>", MAIL_SYNTAX)

/* Quoted local parts (RFC 5321 §4.1.2 Quoted-string). */
static void
t_quoted(void)
{
	struct parsed *r = MAIL("FROM:<\"john doe\"@example.org>");

	CHECK_OK(r, "\"john doe\"@example.org");
	CHECK_INT(r->path.local_len, 10);
}

static void
t_quoted_escaped_quote(void)
{
	CHECK_OK(RCPT("TO:<\"a\\\"b\"@x>"), "\"a\\\"b\"@x");
}

static void
t_quoted_escaped_backslash(void)
{
	CHECK_OK(RCPT("TO:<\"a\\\\\"@x>"), "\"a\\\\\"@x");
}

static void
t_quoted_gt(void)
{
	CHECK_OK(RCPT("TO:<\"a>b\"@x> SIZE=1"), "\"a>b\"@x");
}

static void
t_quoted_at(void)
{
	CHECK_OK(RCPT("TO:<\"a@b\"@x>"), "\"a@b\"@x");
}

static void
t_quoted_empty(void)
{
	/* QcontentSMTP may be empty (*); a policy hook may refuse it. */
	CHECK_OK(RCPT("TO:<\"\"@x>"), "\"\"@x");
}

REFUSE_RCPT(t_quoted_unterminated, "TO:<\"abc@x>", RCPT_SYNTAX)
REFUSE_RCPT(t_quoted_no_at, "TO:<\"abc\">", BAD_RCPT)
REFUSE_RCPT(t_quoted_then_atom, "TO:<\"a\"b@x>", BAD_RCPT)
REFUSE_RCPT(t_quoted_tab, "TO:<\"a\tb\"@x>", BAD_RCPT)
REFUSE_RCPT(t_quoted_del, "TO:<\"a\x7f" "b\"@x>", BAD_RCPT)
REFUSE_RCPT(t_quoted_pair_ctl, "TO:<\"a\\\tb\"@x>", BAD_RCPT)
REFUSE_RCPT(t_quoted_nul, "TO:<\"a\0b\"@x>", BAD_RCPT)

/* Address literals (RFC 5321 §4.1.3). */
static void
t_literal_v4(void)
{
	CHECK_OK(RCPT("TO:<postmaster@[127.0.0.1]>"), "postmaster@[127.0.0.1]");
}

static void
t_literal_v6(void)
{
	CHECK_OK(RCPT("TO:<u@[IPv6:::1]>"), "u@[IPv6:::1]");
}

static void
t_literal_v6_full(void)
{
	CHECK_OK(RCPT("TO:<u@[IPv6:2001:db8:0:0:0:0:0:1]>"),
	    "u@[IPv6:2001:db8:0:0:0:0:0:1]");
}

static void
t_literal_v6_v4(void)
{
	CHECK_OK(RCPT("TO:<u@[IPv6:::ffff:192.0.2.1]>"),
	    "u@[IPv6:::ffff:192.0.2.1]");
}

static void
t_literal_general(void)
{
	CHECK_OK(RCPT("TO:<u@[x-tag:some-thing]>"), "u@[x-tag:some-thing]");
}

REFUSE_RCPT(t_literal_v4_short, "TO:<u@[127.0.0]>", BAD_RCPT)
REFUSE_RCPT(t_literal_v4_long, "TO:<u@[1.2.3.4.5]>", BAD_RCPT)
REFUSE_RCPT(t_literal_v4_octet, "TO:<u@[256.0.0.1]>", BAD_RCPT)
REFUSE_RCPT(t_literal_v4_zero, "TO:<u@[01.2.3.4]>", BAD_RCPT)
REFUSE_RCPT(t_literal_v4_space, "TO:<u@[ 1.2.3.4]>", BAD_RCPT)
REFUSE_RCPT(t_literal_v6_bad, "TO:<u@[IPv6:zz::1]>", BAD_RCPT)
REFUSE_RCPT(t_literal_v6_empty, "TO:<u@[IPv6:]>", BAD_RCPT)
REFUSE_RCPT(t_literal_v6_notag, "TO:<u@[::1]>", BAD_RCPT)
REFUSE_RCPT(t_literal_v6_v4only, "TO:<u@[IPv6:1.2.3.4]>", BAD_RCPT)
REFUSE_RCPT(t_literal_empty, "TO:<u@[]>", BAD_RCPT)
REFUSE_RCPT(t_literal_unclosed, "TO:<u@[1.2.3.4>", BAD_RCPT)
REFUSE_RCPT(t_literal_trailing, "TO:<u@[1.2.3.4]x>", BAD_RCPT)
REFUSE_RCPT(t_literal_tag_hyphen, "TO:<u@[tag-:x]>", BAD_RCPT)
REFUSE_RCPT(t_literal_tag_empty, "TO:<u@[:x]>", BAD_RCPT)
REFUSE_RCPT(t_literal_tag_nocontent, "TO:<u@[tag:]>", BAD_RCPT)
REFUSE_RCPT(t_literal_tag_space, "TO:<u@[tag:a b]>", BAD_RCPT)
REFUSE_RCPT(t_literal_tag_bracket, "TO:<u@[tag:a[b]>", BAD_RCPT)
REFUSE_RCPT(t_literal_nul_v4, "TO:<u@[1.2.3.4\0]>", BAD_RCPT)
REFUSE_RCPT(t_literal_nul_v6, "TO:<u@[IPv6:::1\0x]>", BAD_RCPT)

/* Source routes are accepted and dropped (RFC 5321 §4.1.2, appendix C). */
static void
t_route(void)
{
	struct parsed *r = RCPT("TO:<@a.example,@b.example:user@d.example>");

	CHECK_OK(r, "user@d.example");
	CHECK_INT(r->path.local_len, 4);
}

static void
t_route_one(void)
{
	CHECK_OK(MAIL("FROM:<@relay.example:user@d.example>"), "user@d.example");
}

static void
t_route_postmaster(void)
{
	struct parsed *r = RCPT("TO:<@relay.example:Postmaster>");

	CHECK_OK(r, "Postmaster");
	CHECK(r->path.postmaster);
}

REFUSE_RCPT(t_route_no_at, "TO:<@a,b:user@d>", BAD_RCPT)
REFUSE_RCPT(t_route_empty_domain, "TO:<@:user@d>", BAD_RCPT)
REFUSE_RCPT(t_route_no_colon, "TO:<@a user@d>", BAD_RCPT)
REFUSE_RCPT(t_route_only, "TO:<@a:>", BAD_RCPT)
REFUSE_RCPT(t_route_bare, "TO:<@a>", BAD_RCPT)
REFUSE_RCPT(t_route_trailing_comma, "TO:<@a,:user@d>", BAD_RCPT)
REFUSE_RCPT(t_route_literal, "TO:<@[1.2.3.4]:user@d>", BAD_RCPT)
REFUSE_MAIL(t_route_to_null, "FROM:<@a:>", BAD_SENDER)

/* Domains (RFC 5321 §4.1.2 Domain, sub-domain). */
static void
t_domain_hyphen_inside(void)
{
	CHECK_OK(RCPT("TO:<a@my-host.ex--ample.org>"), "a@my-host.ex--ample.org");
}

static void
t_domain_digits(void)
{
	CHECK_OK(RCPT("TO:<a@123.example>"), "a@123.example");
}

static void
t_domain_single_label(void)
{
	CHECK_OK(RCPT("TO:<a@localhost>"), "a@localhost");
}

REFUSE_RCPT(t_domain_trailing_dot, "TO:<a@example.org.>", BAD_RCPT)
REFUSE_RCPT(t_domain_leading_dot, "TO:<a@.example.org>", BAD_RCPT)
REFUSE_RCPT(t_domain_empty_label, "TO:<a@example..org>", BAD_RCPT)
REFUSE_RCPT(t_domain_leading_hyphen, "TO:<a@-host.example>", BAD_RCPT)
REFUSE_RCPT(t_domain_trailing_hyphen, "TO:<a@host-.example>", BAD_RCPT)
REFUSE_RCPT(t_domain_last_hyphen, "TO:<a@host.example->", BAD_RCPT)
REFUSE_RCPT(t_domain_underscore, "TO:<a@my_host.example>", BAD_RCPT)
REFUSE_RCPT(t_domain_missing, "TO:<a@>", BAD_RCPT)
REFUSE_RCPT(t_domain_no_at, "TO:<ab>", BAD_RCPT)
REFUSE_RCPT(t_domain_two_at, "TO:<a@b@c>", BAD_RCPT)
REFUSE_RCPT(t_domain_space, "TO:<a@b c>", BAD_RCPT)
REFUSE_RCPT(t_domain_nul, "TO:<a@b\0c>", BAD_RCPT)
REFUSE_MAIL(t_domain_nul_mail, "FROM:<a@b\0>", BAD_SENDER)

/* Local parts (Dot-string). */
static void
t_local_specials(void)
{
	CHECK_OK(RCPT("TO:<a+b!#$%&'*/=?^_`{|}~-c@x>"),
	    "a+b!#$%&'*/=?^_`{|}~-c@x");
}

static void
t_local_dots(void)
{
	struct parsed *r = RCPT("TO:<first.middle.last@x>");

	CHECK_OK(r, "first.middle.last@x");
	CHECK_INT(r->path.local_len, 17);
}

REFUSE_RCPT(t_local_empty_atom, "TO:<a..b@x>", BAD_RCPT)
REFUSE_RCPT(t_local_leading_dot, "TO:<.a@x>", BAD_RCPT)
REFUSE_RCPT(t_local_trailing_dot, "TO:<a.@x>", BAD_RCPT)
REFUSE_RCPT(t_local_empty, "TO:<@x>", BAD_RCPT)
REFUSE_RCPT(t_local_comma, "TO:<a,b@x>", BAD_RCPT)
REFUSE_RCPT(t_local_space, "TO:<a b@x>", BAD_RCPT)
REFUSE_RCPT(t_local_paren, "TO:<a(b)@x>", BAD_RCPT)
REFUSE_RCPT(t_local_backslash, "TO:<a\\b@x>", BAD_RCPT)
REFUSE_RCPT(t_local_nul, "TO:<a\0b@x>", BAD_RCPT)
REFUSE_MAIL(t_local_nul_mail, "FROM:<a\0b@x>", BAD_SENDER)
REFUSE_RCPT(t_local_ctl, "TO:<a\x01" "b@x>", BAD_RCPT)

/* UTF-8 mailboxes (RFC 6531 §3.3). */
static void
t_utf8_mailbox(void)
{
	struct parsed *r = RCPT("TO:<用户@例子.广告>");

	CHECK_OK(r, "用户@例子.广告");
	CHECK(r->path.utf8);
	CHECK_INT(r->path.local_len, 6);
}

static void
t_utf8_local_only(void)
{
	struct parsed *r = MAIL("FROM:<jörg@example.org>");

	CHECK_OK(r, "jörg@example.org");
	CHECK(r->path.utf8);
}

static void
t_utf8_quoted(void)
{
	struct parsed *r = RCPT("TO:<\"jö rg\"@x>");

	CHECK_OK(r, "\"jö rg\"@x");
	CHECK(r->path.utf8);
}

REFUSE_RCPT(t_utf8_overlong, "TO:<\xc0\xaf@x>", BAD_RCPT)
REFUSE_RCPT(t_utf8_overlong3, "TO:<a\xe0\x80\xaf" "b@x>", BAD_RCPT)
REFUSE_RCPT(t_utf8_lone_cont, "TO:<a\x80" "b@x>", BAD_RCPT)
REFUSE_RCPT(t_utf8_truncated, "TO:<a\xc3@x>", BAD_RCPT)
REFUSE_RCPT(t_utf8_surrogate, "TO:<a\xed\xa0\x80@x>", BAD_RCPT)
REFUSE_RCPT(t_utf8_ff, "TO:<a\xff" "b@x>", BAD_RCPT)
REFUSE_RCPT(t_utf8_bad_domain, "TO:<a@b\xc3\x28" "c>", BAD_RCPT)
REFUSE_MAIL(t_utf8_bad_mail, "FROM:<\xc0\xaf@x>", BAD_SENDER)

/* Limits at n and n+1 (RFC 5321 §4.5.3.1). */
static void
t_local_64(void)
{
	struct parsed *r = RCPT_S(cat("TO:<", rep('l', 64), "@x>"));

	CHECK_INT(r->rc, 0);
	CHECK_INT(r->path.local_len, 64);
}

static void
t_local_65(void)
{
	CHECK_REFUSED(RCPT_S(cat("TO:<", rep('l', 65), "@x>")), BAD_RCPT);
}

static void
t_local_quoted_64(void)
{
	/* The quotes count: 62 octets between them is 64 in all. */
	char *lp = cat("\"", rep('q', 62), "\"");

	CHECK_INT(RCPT_S(cat("TO:<", lp, "@x>"))->rc, 0);
}

static void
t_local_quoted_65(void)
{
	char *lp = cat("\"", rep('q', 63), "\"");

	CHECK_REFUSED(RCPT_S(cat("TO:<", lp, "@x>")), BAD_RCPT);
}

static void
t_label_63(void)
{
	char *mbox = cat("a@", rep('d', 63), ".example");

	CHECK_OK(RCPT_S(cat("TO:<", mbox, ">")), mbox);
}

static void
t_label_64(void)
{
	CHECK_REFUSED(RCPT_S(cat("TO:<a@", rep('d', 64), ".example>")),
	    BAD_RCPT);
}

static void
t_label_64_last(void)
{
	CHECK_REFUSED(RCPT_S(cat("TO:<a@example.", rep('d', 64), ">")),
	    BAD_RCPT);
}

/* Path = "<" Mailbox ">": 256 octets with the brackets, so 254 inside. */
static char *
mailbox_of(size_t n)
{
	return cat(rep('l', 64), "@", domain_of(n - 65));
}

static void
t_path_256(void)
{
	char *mbox = mailbox_of(254);
	struct parsed *r = RCPT_S(cat("TO:<", mbox, ">"));

	CHECK_INT(strlen(mbox) + 2, 256);
	CHECK_OK(r, mbox);
	CHECK_OK(MAIL_S(cat("FROM:<", mbox, "> SIZE=1")), mbox);
}

static void
t_path_257_rcpt(void)
{
	CHECK_REFUSED(RCPT_S(cat("TO:<", mailbox_of(255), ">")), 501, "5.1.3",
	    "Path too long");
}

static void
t_path_257_mail(void)
{
	CHECK_REFUSED(MAIL_S(cat("FROM:<", mailbox_of(255), ">")), 501, "5.1.7",
	    "Path too long");
}

static void
t_path_route_257(void)
{
	/* The source route counts toward the 256 octets. */
	char *route = cat("@", domain_of(100), ":");
	char *mbox = cat(rep('l', 64), "@", domain_of(255 - 65 - 102));

	CHECK_INT(strlen(route) + strlen(mbox) + 2, 257);
	CHECK_REFUSED(RCPT_S(cat("TO:<", route, cat(mbox, ">", ""))), 501,
	    "5.1.3", "Path too long");
}

static void
t_path_huge(void)
{
	CHECK_REFUSED(RCPT_S(cat("TO:<", rep('a', 5000), "@x>")), 501, "5.1.3",
	    "Path too long");
}

/* Parameters (RFC 5321 §4.1.2 Mail-parameters / Rcpt-parameters). */
static void
t_params_split(void)
{
	struct parsed *r = MAIL("FROM:<a@b> size=10  BODY=8BITMIME SMTPUTF8");

	CHECK_OK(r, "a@b");
	CHECK_INT(r->params.n, 3);
	CHECK_STR(r->params.p[0].name, "SIZE");
	CHECK_MEM(r->params.p[0].value, r->params.p[0].vlen, "10", 2);
	CHECK_STR(r->params.p[1].name, "BODY");
	CHECK_MEM(r->params.p[1].value, r->params.p[1].vlen, "8BITMIME", 8);
	CHECK_STR(r->params.p[2].name, "SMTPUTF8");
	CHECK(r->params.p[2].value == NULL);
	CHECK_MEM(r->params.raw, r->params.rawlen,
	    "size=10  BODY=8BITMIME SMTPUTF8", 31);
}

static void
t_params_rcpt(void)
{
	struct parsed *r = RCPT("TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b");

	CHECK_OK(r, "a@b");
	CHECK_INT(r->params.n, 2);
	CHECK_STR(r->params.p[1].name, "ORCPT");
	CHECK_MEM(r->params.p[1].value, r->params.p[1].vlen, "rfc822;a@b", 10);
}

static void
t_params_trailing_space(void)
{
	struct parsed *r = MAIL("FROM:<a@b> SIZE=1 ");

	CHECK_OK(r, "a@b");
	CHECK_INT(r->params.n, 1);
}

static void
t_params_utf8_value(void)
{
	struct parsed *r = MAIL("FROM:<a@b> X=ö");

	CHECK_INT(r->rc, 0);
	CHECK_MEM(r->params.p[0].value, r->params.p[0].vlen, "ö", 2);
}

/* n parameters named P1..Pn */
static char *
params_of(size_t n)
{
	char *s = unit_alloc(n * 5 + 1);
	size_t o = 0;

	for (size_t i = 1; i <= n; i++)
		o += (size_t)sprintf(s + o, " P%zu", i);
	return s;
}

static void
t_params_16(void)
{
	struct parsed *r = MAIL_S(cat("FROM:<a@b>", params_of(16), ""));

	CHECK_INT(r->rc, 0);
	CHECK_INT(r->params.n, 16);
	CHECK_STR(r->params.p[15].name, "P16");
}

static void
t_params_17(void)
{
	CHECK_REFUSED(MAIL_S(cat("FROM:<a@b>", params_of(17), "")), 501,
	    "5.5.4", "Too many parameters");
}

static void
t_param_name_32(void)
{
	char *name = rep('N', 32);
	struct parsed *r = MAIL_S(cat("FROM:<a@b> ", name, "=1"));

	CHECK_INT(r->rc, 0);
	CHECK_STR(r->params.p[0].name, name);
}

static void
t_param_name_33(void)
{
	CHECK_REFUSED(MAIL_S(cat("FROM:<a@b> ", rep('N', 33), "=1")),
	    PARAM_SYNTAX);
}

REFUSE_MAIL(t_param_empty_value, "FROM:<a@b> SIZE=", PARAM_SYNTAX)
REFUSE_MAIL(t_param_double_eq, "FROM:<a@b> A=b=c", PARAM_SYNTAX)
REFUSE_MAIL(t_param_leading_hyphen, "FROM:<a@b> -A=1", PARAM_SYNTAX)
REFUSE_MAIL(t_param_bad_name_char, "FROM:<a@b> A_B=1", PARAM_SYNTAX)
REFUSE_MAIL(t_param_eq_only, "FROM:<a@b> =1", PARAM_SYNTAX)
REFUSE_MAIL(t_param_ctl_value, "FROM:<a@b> A=b\x01" "c", PARAM_SYNTAX)
REFUSE_MAIL(t_param_nul_value, "FROM:<a@b> A=b\0c", PARAM_SYNTAX)
REFUSE_MAIL(t_param_del_value, "FROM:<a@b> A=\x7f", PARAM_SYNTAX)
REFUSE_MAIL(t_param_tab, "FROM:<a@b> A=1\tB=2", PARAM_SYNTAX)
REFUSE_RCPT(t_param_rcpt_bad, "TO:<a@b> =x", PARAM_SYNTAX)

/* ==== smtp_parse_mailbox (a hook's rewrite) ==== */

static void
t_mailbox_ok(void)
{
	struct smtp_path p;

	CHECK_INT(mailbox(LIT("new@example.org"), &p), 0);
	CHECK_STR(p.mailbox, "new@example.org");
	CHECK_INT(p.local_len, 3);
	CHECK(!p.utf8);
}

static void
t_mailbox_utf8(void)
{
	struct smtp_path p;

	CHECK_INT(mailbox(LIT("ü@example.org"), &p), 0);
	CHECK(p.utf8);
}

static void
t_mailbox_254(void)
{
	struct smtp_path p;
	char *m = mailbox_of(254);

	CHECK_INT(mailbox(m, strlen(m), &p), 0);
	CHECK_STR(p.mailbox, m);
}

static void
t_mailbox_255(void)
{
	struct smtp_path p;
	char *m = mailbox_of(255);

	CHECK_INT(mailbox(m, strlen(m), &p), -1);
}

static void
t_mailbox_brackets(void)
{
	struct smtp_path p;

	CHECK_INT(mailbox(LIT("<a@b>"), &p), -1);
}

static void
t_mailbox_empty(void)
{
	struct smtp_path p;

	CHECK_INT(mailbox(LIT(""), &p), -1);
}

static void
t_mailbox_trailing_space(void)
{
	struct smtp_path p;

	CHECK_INT(mailbox(LIT("a@b "), &p), -1);
}

static void
t_mailbox_nul_literal(void)
{
	struct smtp_path p;

	CHECK_INT(mailbox(LIT("a@[192.0.2.1\0]"), &p), -1);
}

static void
t_mailbox_postmaster(void)
{
	struct smtp_path p;

	/* Only RCPT takes <Postmaster> without a domain. */
	CHECK_INT(mailbox(LIT("Postmaster"), &p), -1);
}

/* ==== smtp_parse_helo ==== */

static void
t_helo_domain(void)
{
	struct smtp_err e;

	CHECK_INT(helo(LIT("mx.example.org"), &e), 0);
}

static void
t_helo_tolerant(void)
{
	struct smtp_err e;

	/* Real clients send underscores; stricter policy is the hook's. */
	CHECK_INT(helo(LIT("my_pc.local"), &e), 0);
}

static void
t_helo_v4(void)
{
	struct smtp_err e;

	CHECK_INT(helo(LIT("[192.0.2.1]"), &e), 0);
}

static void
t_helo_v6(void)
{
	struct smtp_err e;

	CHECK_INT(helo(LIT("[IPv6:2001:db8::1]"), &e), 0);
}

static void
t_helo_utf8(void)
{
	struct smtp_err e;

	CHECK_INT(helo(LIT("bücher.example"), &e), 0);
}

static void
t_helo_empty(void)
{
	struct smtp_err e;

	CHECK_INT(helo(LIT(""), &e), -1);
	CHECK_ERR(e, 501, "5.5.4", "Syntax: EHLO hostname");
}

static void
t_helo_255(void)
{
	struct smtp_err e;
	char *d = domain_of(255);

	CHECK_INT(helo(d, strlen(d), &e), 0);
}

static void
t_helo_256(void)
{
	struct smtp_err e;
	char *d = domain_of(256);

	CHECK_INT(helo(d, strlen(d), &e), -1);
	CHECK_ERR(e, 501, "5.5.4", "Hostname too long");
}

REFUSE_HELO(t_helo_space, "mx example")
REFUSE_HELO(t_helo_tab, "mx\texample")
REFUSE_HELO(t_helo_ctl, "mx\x01")
REFUSE_HELO(t_helo_del, "mx\x7f")
REFUSE_HELO(t_helo_nul, "mx\0.example")
REFUSE_HELO(t_helo_bad_utf8, "mx\xc0\xaf")
REFUSE_HELO(t_helo_v4_short, "[1.2.3]")
REFUSE_HELO(t_helo_v4_octet, "[300.1.1.1]")
REFUSE_HELO(t_helo_v6_bad, "[IPv6:1:::2:::3]")
REFUSE_HELO(t_helo_unclosed, "[1.2.3.4")
REFUSE_HELO(t_helo_literal_trailing, "[1.2.3.4]x")
REFUSE_HELO(t_helo_literal_nul, "[1.2.3.4\0garbage]")
REFUSE_HELO(t_helo_literal_empty, "[]")

/* ==== smtp_parse_mail_params ==== */

static void
t_mp_none(void)
{
	struct mailp *m = mail_params("", &ext_none);

	CHECK_INT(m->rc, 0);
	CHECK(!m->opts.has_size);
	CHECK_INT(m->opts.body, SMTP_BODY_UNSPEC);
	CHECK(!m->opts.smtputf8);
	CHECK(!m->opts.has_auth);
}

static void
t_mp_size(void)
{
	struct mailp *m = mail_params("SIZE=1000", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK(m->opts.has_size);
	CHECK_U64(m->opts.size, 1000);
}

static void
t_mp_size_zero(void)
{
	struct mailp *m = mail_params("SIZE=0", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK(m->opts.has_size);
	CHECK_U64(m->opts.size, 0);
}

static void
t_mp_size_lower(void)
{
	struct mailp *m = mail_params("size=7", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_U64(m->opts.size, 7);
}

static void
t_mp_size_20_digits(void)
{
	struct mailp *m = mail_params("SIZE=18446744073709551615", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_U64(m->opts.size, UINT64_MAX);
}

static void
t_mp_size_20_below(void)
{
	struct mailp *m = mail_params("SIZE=18446744073709551614", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_U64(m->opts.size, UINT64_MAX - 1);
}

static void
t_mp_size_overflow(void)
{
	/* Too large to represent: certainly too big, the session says 552. */
	struct mailp *m = mail_params("SIZE=18446744073709551616", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK(m->opts.has_size);
	CHECK_U64(m->opts.size, UINT64_MAX);
}

static void
t_mp_size_21_digits(void)
{
	struct mailp *m = mail_params(cat("SIZE=1", rep('0', 20), ""),
	    &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK(m->opts.has_size);
	CHECK_U64(m->opts.size, UINT64_MAX);
}

static void
t_mp_size_40_digits(void)
{
	struct mailp *m = mail_params(cat("SIZE=", rep('9', 40), ""), &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_U64(m->opts.size, UINT64_MAX);
}

static void
t_mp_size_41_digits(void)
{
	struct mailp *m = mail_params(cat("SIZE=", rep('9', 41), ""), &ext_all);

	CHECK_INT(m->rc, -1);
	CHECK_ERR(m->err, 501, "5.5.4", "Bad SIZE parameter");
}

#define BAD_SIZE	501, "5.5.4", "Bad SIZE parameter"
REFUSE_PARAMS(t_mp_size_novalue, "SIZE", &ext_all, BAD_SIZE)
REFUSE_PARAMS(t_mp_size_alpha, "SIZE=12a", &ext_all, BAD_SIZE)
REFUSE_PARAMS(t_mp_size_negative, "SIZE=-1", &ext_all, BAD_SIZE)
REFUSE_PARAMS(t_mp_size_plus, "SIZE=+1", &ext_all, BAD_SIZE)
REFUSE_PARAMS(t_mp_size_hex, "SIZE=0x10", &ext_all, BAD_SIZE)

static void
t_mp_body_7bit(void)
{
	struct mailp *m = mail_params("BODY=7BIT", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_INT(m->opts.body, SMTP_BODY_7BIT);
}

static void
t_mp_body_8bit(void)
{
	struct mailp *m = mail_params("BODY=8BITMIME", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_INT(m->opts.body, SMTP_BODY_8BITMIME);
}

static void
t_mp_body_lower(void)
{
	struct mailp *m = mail_params("body=8bitmime", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_INT(m->opts.body, SMTP_BODY_8BITMIME);
}

REFUSE_PARAMS(t_mp_body_binary, "BODY=BINARYMIME", &ext_all,
    555, "5.5.4", "BODY=BINARYMIME is not supported")
#define BAD_BODY	501, "5.5.4", "Bad BODY parameter"
REFUSE_PARAMS(t_mp_body_unknown, "BODY=9BIT", &ext_all, BAD_BODY)
REFUSE_PARAMS(t_mp_body_novalue, "BODY", &ext_all, BAD_BODY)
REFUSE_PARAMS(t_mp_body_prefix, "BODY=8BIT", &ext_all, BAD_BODY)

static void
t_mp_smtputf8(void)
{
	struct mailp *m = mail_params("SMTPUTF8", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK(m->opts.smtputf8);
}

REFUSE_PARAMS(t_mp_smtputf8_value, "SMTPUTF8=yes", &ext_all,
    501, "5.5.4", "SMTPUTF8 takes no value")

static void
t_mp_auth_null(void)
{
	struct mailp *m = mail_params("AUTH=<>", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK(m->opts.has_auth);
	CHECK_STR(m->opts.auth, "<>");
}

static void
t_mp_auth_xtext(void)
{
	struct mailp *m = mail_params("AUTH=user+2Btag+3D1@example.org",
	    &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_STR(m->opts.auth, "user+tag=1@example.org");
}

static void
t_mp_auth_256(void)
{
	struct mailp *m = mail_params(cat("AUTH=", rep('a', 256), ""),
	    &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_INT(strlen(m->opts.auth), 256);
}

static void
t_mp_auth_256_encoded(void)
{
	/* 256 decoded octets, most of them written as "+XX". */
	char *v = unit_alloc(256 * 3 + 1);
	struct mailp *m;

	for (size_t i = 0; i < 256; i++)
		memcpy(v + 3 * i, "+41", 3);
	v[256 * 3] = '\0';
	m = mail_params(cat("AUTH=", v, ""), &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK_STR(m->opts.auth, rep('A', 256));
}

#define BAD_AUTH	501, "5.5.4", "Bad AUTH parameter"
REFUSE_PARAMS(t_mp_auth_257, "AUTH=" /* 257 */
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    &ext_all, BAD_AUTH)
REFUSE_PARAMS(t_mp_auth_novalue, "AUTH", &ext_all, BAD_AUTH)
REFUSE_PARAMS(t_mp_auth_lower_hex, "AUTH=a+2b", &ext_all, BAD_AUTH)
REFUSE_PARAMS(t_mp_auth_short_hex, "AUTH=a+2", &ext_all, BAD_AUTH)
REFUSE_PARAMS(t_mp_auth_plus_end, "AUTH=a+", &ext_all, BAD_AUTH)
REFUSE_PARAMS(t_mp_auth_nonhex, "AUTH=a+GG", &ext_all, BAD_AUTH)
REFUSE_PARAMS(t_mp_auth_utf8_raw, "AUTH=ö@x", &ext_all, BAD_AUTH)
REFUSE_PARAMS(t_mp_auth_nul, "AUTH=a+00b@x", &ext_all, BAD_AUTH)
REFUSE_PARAMS(t_mp_auth_crlf, "AUTH=a+0D+0Ab@x", &ext_all, BAD_AUTH)

#define UNSUPPORTED	555, "5.5.4", "Unsupported parameter"
REFUSE_PARAMS(t_mp_unknown, "FOO=bar", &ext_all, UNSUPPORTED)
REFUSE_PARAMS(t_mp_unknown_flag, "XYZZY", &ext_all, UNSUPPORTED)
REFUSE_PARAMS(t_mp_rcpt_param, "NOTIFY=NEVER", &ext_all, UNSUPPORTED)
REFUSE_PARAMS(t_mp_unknown_after_good, "SIZE=1 FOO", &ext_all, UNSUPPORTED)

#define DUPLICATE	501, "5.5.4", "Duplicate parameter"
REFUSE_PARAMS(t_mp_dup_size, "SIZE=1 SIZE=2", &ext_all, DUPLICATE)
REFUSE_PARAMS(t_mp_dup_case, "SIZE=1 size=1", &ext_all, DUPLICATE)
REFUSE_PARAMS(t_mp_dup_body, "BODY=7BIT BODY=8BITMIME", &ext_all, DUPLICATE)
REFUSE_PARAMS(t_mp_dup_smtputf8, "SMTPUTF8 SMTPUTF8", &ext_all, DUPLICATE)
REFUSE_PARAMS(t_mp_dup_auth, "AUTH=<> AUTH=<>", &ext_all, DUPLICATE)

/* HELO, or EHLO without these extensions: every parameter is unknown. */
REFUSE_PARAMS(t_mp_noext_size, "SIZE=10", &ext_none, UNSUPPORTED)
REFUSE_PARAMS(t_mp_noext_body, "BODY=8BITMIME", &ext_none, UNSUPPORTED)
REFUSE_PARAMS(t_mp_noext_smtputf8, "SMTPUTF8", &ext_none, UNSUPPORTED)
REFUSE_PARAMS(t_mp_noext_auth, "AUTH=<>", &ext_none, UNSUPPORTED)

static void
t_mp_only_advertised(void)
{
	const struct smtp_ext ext = { true, true, false, false };
	struct mailp *m = mail_params("SIZE=1 BODY=8BITMIME", &ext);

	CHECK_INT(m->rc, 0);
	m = mail_params("SIZE=1 SMTPUTF8", &ext);
	CHECK_INT(m->rc, -1);
	CHECK_ERR(m->err, UNSUPPORTED);
	m = mail_params("AUTH=<>", &ext);
	CHECK_INT(m->rc, -1);
	CHECK_ERR(m->err, UNSUPPORTED);
}

static void
t_mp_all(void)
{
	struct mailp *m = mail_params("SIZE=42 BODY=8BITMIME SMTPUTF8 "
	    "AUTH=a@b", &ext_all);

	CHECK_INT(m->rc, 0);
	CHECK(m->opts.has_size);
	CHECK_U64(m->opts.size, 42);
	CHECK_INT(m->opts.body, SMTP_BODY_8BITMIME);
	CHECK(m->opts.smtputf8);
	CHECK(m->opts.has_auth);
	CHECK_STR(m->opts.auth, "a@b");
}

/* ==== smtp_parse_bdat ==== */

static void
t_bdat_0_last(void)
{
	struct bdat *b = bdat(LIT("0 LAST"));

	CHECK_INT(b->rc, 0);
	CHECK_U64(b->size, 0);
	CHECK(b->last);
}

static void
t_bdat_10_last_lower(void)
{
	struct bdat *b = bdat(LIT("10 last"));

	CHECK_INT(b->rc, 0);
	CHECK_U64(b->size, 10);
	CHECK(b->last);
}

static void
t_bdat_10(void)
{
	struct bdat *b = bdat(LIT("10"));

	CHECK_INT(b->rc, 0);
	CHECK_U64(b->size, 10);
	CHECK(!b->last);
}

static void
t_bdat_two_spaces(void)
{
	struct bdat *b = bdat(LIT("10  LAST"));

	CHECK_INT(b->rc, 0);
	CHECK(b->last);
}

static void
t_bdat_20_digits(void)
{
	struct bdat *b = bdat(LIT("18446744073709551615 LAST"));

	CHECK_INT(b->rc, 0);
	CHECK_U64(b->size, UINT64_MAX);
}

REFUSE_BDAT(t_bdat_x, "x")
REFUSE_BDAT(t_bdat_empty, "")
REFUSE_BDAT(t_bdat_extra, "10 LAST extra")
REFUSE_BDAT(t_bdat_lastx, "10 LASTX")
REFUSE_BDAT(t_bdat_first, "10 FIRST")
REFUSE_BDAT(t_bdat_negative, "-1")
REFUSE_BDAT(t_bdat_plus, "+1")
REFUSE_BDAT(t_bdat_suffix, "1x")
REFUSE_BDAT(t_bdat_tab, "10\tLAST")
REFUSE_BDAT(t_bdat_last_only, "LAST")
REFUSE_BDAT(t_bdat_nul, "1\0 LAST")
REFUSE_BDAT(t_bdat_20_overflow, "18446744073709551616")
REFUSE_BDAT(t_bdat_21_digits, "100000000000000000000 LAST")

/* ==== smtp_utf8_valid (RFC 3629) ==== */

UTF8_VALID(t_utf8_empty, "")
UTF8_VALID(t_utf8_ascii, "plain ascii")
UTF8_VALID(t_utf8_nul_ascii, "a\0b")
UTF8_VALID(t_utf8_2byte, "\xc3\xa9")
UTF8_VALID(t_utf8_3byte, "\xe2\x82\xac")
UTF8_VALID(t_utf8_4byte, "\xf0\x9f\x98\x80")
UTF8_VALID(t_utf8_min2, "\xc2\x80")
UTF8_VALID(t_utf8_min3, "\xe0\xa0\x80")
UTF8_VALID(t_utf8_min4, "\xf0\x90\x80\x80")
UTF8_VALID(t_utf8_max, "\xf4\x8f\xbf\xbf")
UTF8_VALID(t_utf8_before_surrogates, "\xed\x9f\xbf")
UTF8_VALID(t_utf8_after_surrogates, "\xee\x80\x80")
UTF8_INVALID(t_utf8_over2_c0, "\xc0\x80")
UTF8_INVALID(t_utf8_over2_c1, "\xc1\xbf")
UTF8_INVALID(t_utf8_over3, "\xe0\x9f\xbf")
UTF8_INVALID(t_utf8_over4, "\xf0\x8f\xbf\xbf")
UTF8_INVALID(t_utf8_surr_low, "\xed\xa0\x80")
UTF8_INVALID(t_utf8_surr_high, "\xed\xbf\xbf")
UTF8_INVALID(t_utf8_above_max, "\xf4\x90\x80\x80")
UTF8_INVALID(t_utf8_f5, "\xf5\x80\x80\x80")
UTF8_INVALID(t_utf8_fe, "\xfe")
UTF8_INVALID(t_utf8_cont, "\x80")
UTF8_INVALID(t_utf8_trunc2, "a\xc3")
UTF8_INVALID(t_utf8_trunc3, "\xe2\x82")
UTF8_INVALID(t_utf8_trunc4, "\xf0\x9f\x98")
UTF8_INVALID(t_utf8_bad_cont, "\xc3\x28")
UTF8_INVALID(t_utf8_bad_cont3, "\xe2\x28\xac")

static const struct unit_case cases[] = {
	/* command line */
	{ "verb HELO in upper case", t_verb_upper },
	{ "verb mail in lower case", t_verb_lower },
	{ "verb StartTls in mixed case", t_verb_mixed },
	{ "every SMTP verb is recognised", t_verb_all },
	{ "unknown verb FOO", t_verb_unknown },
	{ "verb prefix MAI is unknown", t_verb_prefix },
	{ "verb with suffix QUITX is unknown", t_verb_suffix },
	{ "empty line is unknown", t_verb_empty },
	{ "leading space makes the verb unknown", t_verb_leading_space },
	{ "tab after the verb does not separate it", t_verb_tab },
	{ "extra spaces before the argument are skipped", t_arg_spaces },
	{ "trailing spaces and tabs are trimmed", t_arg_trailing },
	{ "spaces inside the argument are kept", t_arg_inner_spaces },
	{ "NUL in the argument makes the verb unknown", t_nul_arg },
	{ "NUL in the verb makes it unknown", t_nul_verb },
	{ "NUL right after the verb makes it unknown", t_nul_after_verb },
	{ "header line Subject is forbidden", t_header_subject },
	{ "header line Subject without space is forbidden", t_header_nospace },
	{ "header line X-Mailer is forbidden", t_header_dash },
	{ "header line From is forbidden", t_header_from },
	{ "header line with NUL stays forbidden", t_header_nul },
	{ "label starting with a digit is not a header", t_not_header_digit },
	{ "label with a space is not a header", t_not_header_space },
	{ "HTTP GET is forbidden", t_http_get },
	{ "HTTP POST is forbidden", t_http_post },
	{ "HTTP CONNECT is forbidden", t_http_connect },
	{ "HTTP PUT HEAD OPTIONS are forbidden", t_http_others },
	{ "HTTP get in lower case is forbidden", t_http_lower },

	/* paths */
	{ "MAIL plain address", t_mail_plain },
	{ "RCPT plain address", t_rcpt_plain },
	{ "MAIL keyword is case-insensitive", t_mail_kw_case },
	{ "RCPT keyword is case-insensitive", t_rcpt_kw_case },
	{ "MAIL spaces after FROM colon tolerated", t_mail_space_after_colon },
	{ "RCPT space after TO colon tolerated", t_rcpt_space_after_colon },
	{ "MAIL null sender", t_mail_null },
	{ "MAIL null sender with parameters", t_mail_null_params },
	{ "RCPT null path refused", t_rcpt_null },
	{ "RCPT Postmaster without domain", t_rcpt_postmaster },
	{ "RCPT Postmaster is case-insensitive", t_rcpt_postmaster_case },
	{ "RCPT Postmaster with parameters", t_rcpt_postmaster_params },
	{ "RCPT postmaster with domain is a plain mailbox",
	    t_rcpt_postmaster_domain },
	{ "MAIL Postmaster without domain refused", t_mail_postmaster },
	{ "RCPT Postmasters without domain refused", t_rcpt_postmaster_long },
	{ "RCPT quoted Postmaster without domain refused",
	    t_rcpt_postmaster_quoted },
	{ "MAIL empty argument", t_mail_empty },
	{ "MAIL FROM colon only", t_mail_kw_only },
	{ "MAIL FROM colon and spaces only", t_mail_kw_spaces },
	{ "MAIL path without keyword", t_mail_no_kw },
	{ "MAIL FROM without colon", t_mail_no_colon },
	{ "MAIL space before colon", t_mail_space_before_colon },
	{ "MAIL with TO keyword", t_mail_to_kw },
	{ "RCPT with FROM keyword", t_rcpt_from_kw },
	{ "MAIL missing angle brackets", t_mail_no_lt },
	{ "MAIL missing opening bracket", t_mail_no_lt_gt },
	{ "MAIL missing closing bracket", t_mail_no_gt },
	{ "RCPT missing angle brackets", t_rcpt_no_lt },
	{ "RCPT missing closing bracket", t_rcpt_no_gt },
	{ "MAIL tab before the path", t_mail_tab_before_path },
	{ "MAIL text glued after the path", t_mail_after_gt },
	{ "MAIL tab after the path", t_mail_tab_after_gt },
	{ "MAIL NUL in the keyword", t_mail_nul_kw },
	{ "MAIL doubled angle brackets", t_mail_double_lt },
	{ "MAIL two paths", t_mail_two_paths },
	{ "quoted local part with space", t_quoted },
	{ "quoted local part with escaped quote", t_quoted_escaped_quote },
	{ "quoted local part with escaped backslash",
	    t_quoted_escaped_backslash },
	{ "quoted local part with a greater-than sign", t_quoted_gt },
	{ "quoted local part with an at sign", t_quoted_at },
	{ "empty quoted local part", t_quoted_empty },
	{ "unterminated quoted local part", t_quoted_unterminated },
	{ "quoted local part without domain", t_quoted_no_at },
	{ "quoted string followed by an atom", t_quoted_then_atom },
	{ "quoted local part with a tab", t_quoted_tab },
	{ "quoted local part with DEL", t_quoted_del },
	{ "quoted pair with a control character", t_quoted_pair_ctl },
	{ "quoted local part with NUL", t_quoted_nul },
	{ "address literal IPv4", t_literal_v4 },
	{ "address literal IPv6 loopback", t_literal_v6 },
	{ "address literal IPv6 full form", t_literal_v6_full },
	{ "address literal IPv6 with embedded IPv4", t_literal_v6_v4 },
	{ "general address literal with a tag", t_literal_general },
	{ "address literal IPv4 with three octets", t_literal_v4_short },
	{ "address literal IPv4 with five octets", t_literal_v4_long },
	{ "address literal IPv4 octet 256", t_literal_v4_octet },
	{ "address literal IPv4 leading zero", t_literal_v4_zero },
	{ "address literal IPv4 with a space", t_literal_v4_space },
	{ "address literal bad IPv6", t_literal_v6_bad },
	{ "address literal empty IPv6", t_literal_v6_empty },
	{ "address literal IPv6 without tag", t_literal_v6_notag },
	{ "address literal IPv6 tag with IPv4 only", t_literal_v6_v4only },
	{ "address literal empty brackets", t_literal_empty },
	{ "address literal without closing bracket", t_literal_unclosed },
	{ "address literal with trailing text", t_literal_trailing },
	{ "address literal tag ending in hyphen", t_literal_tag_hyphen },
	{ "address literal with empty tag", t_literal_tag_empty },
	{ "address literal tag without content", t_literal_tag_nocontent },
	{ "address literal content with space", t_literal_tag_space },
	{ "address literal content with bracket", t_literal_tag_bracket },
	{ "address literal IPv4 with NUL", t_literal_nul_v4 },
	{ "address literal IPv6 with NUL", t_literal_nul_v6 },
	{ "source route of two domains is dropped", t_route },
	{ "source route of one domain is dropped", t_route_one },
	{ "source route before Postmaster", t_route_postmaster },
	{ "source route hop without at sign", t_route_no_at },
	{ "source route with empty domain", t_route_empty_domain },
	{ "source route without colon", t_route_no_colon },
	{ "source route without mailbox", t_route_only },
	{ "source route alone", t_route_bare },
	{ "source route with trailing comma", t_route_trailing_comma },
	{ "source route with address literal", t_route_literal },
	{ "MAIL source route without mailbox", t_route_to_null },
	{ "domain with inner hyphens", t_domain_hyphen_inside },
	{ "domain label of digits", t_domain_digits },
	{ "domain of one label", t_domain_single_label },
	{ "domain with trailing dot", t_domain_trailing_dot },
	{ "domain with leading dot", t_domain_leading_dot },
	{ "domain with empty label", t_domain_empty_label },
	{ "domain label with leading hyphen", t_domain_leading_hyphen },
	{ "domain label with trailing hyphen", t_domain_trailing_hyphen },
	{ "domain last label with trailing hyphen", t_domain_last_hyphen },
	{ "domain with underscore", t_domain_underscore },
	{ "mailbox without domain", t_domain_missing },
	{ "mailbox without at sign", t_domain_no_at },
	{ "mailbox with two at signs", t_domain_two_at },
	{ "domain with a space", t_domain_space },
	{ "domain with NUL", t_domain_nul },
	{ "MAIL domain ending in NUL", t_domain_nul_mail },
	{ "local part with every atext special", t_local_specials },
	{ "local part of dotted atoms", t_local_dots },
	{ "local part with empty atom a..b", t_local_empty_atom },
	{ "local part with leading dot", t_local_leading_dot },
	{ "local part with trailing dot", t_local_trailing_dot },
	{ "empty local part", t_local_empty },
	{ "local part with comma", t_local_comma },
	{ "local part with space", t_local_space },
	{ "local part with parentheses", t_local_paren },
	{ "local part with bare backslash", t_local_backslash },
	{ "local part with NUL", t_local_nul },
	{ "MAIL local part with NUL", t_local_nul_mail },
	{ "local part with a control character", t_local_ctl },
	{ "UTF-8 mailbox sets the utf8 flag", t_utf8_mailbox },
	{ "UTF-8 local part sets the utf8 flag", t_utf8_local_only },
	{ "UTF-8 in a quoted local part", t_utf8_quoted },
	{ "overlong UTF-8 in local part", t_utf8_overlong },
	{ "overlong three-byte UTF-8 in local part", t_utf8_overlong3 },
	{ "lone UTF-8 continuation byte", t_utf8_lone_cont },
	{ "truncated UTF-8 sequence", t_utf8_truncated },
	{ "UTF-8 surrogate in local part", t_utf8_surrogate },
	{ "byte 0xff in local part", t_utf8_ff },
	{ "invalid UTF-8 in domain", t_utf8_bad_domain },
	{ "MAIL overlong UTF-8", t_utf8_bad_mail },
	{ "local part of 64 octets", t_local_64 },
	{ "local part of 65 octets", t_local_65 },
	{ "quoted local part of 64 octets", t_local_quoted_64 },
	{ "quoted local part of 65 octets", t_local_quoted_65 },
	{ "domain label of 63 octets", t_label_63 },
	{ "domain label of 64 octets", t_label_64 },
	{ "last domain label of 64 octets", t_label_64_last },
	{ "path of 256 octets", t_path_256 },
	{ "RCPT path of 257 octets", t_path_257_rcpt },
	{ "MAIL path of 257 octets", t_path_257_mail },
	{ "path of 257 octets with source route", t_path_route_257 },
	{ "path of 5000 octets", t_path_huge },
	{ "parameters are split and named in upper case", t_params_split },
	{ "RCPT parameters are split", t_params_rcpt },
	{ "trailing space after parameters", t_params_trailing_space },
	{ "UTF-8 parameter value", t_params_utf8_value },
	{ "16 parameters", t_params_16 },
	{ "17 parameters", t_params_17 },
	{ "parameter name of 32 octets", t_param_name_32 },
	{ "parameter name of 33 octets", t_param_name_33 },
	{ "parameter with empty value", t_param_empty_value },
	{ "parameter value with equals sign", t_param_double_eq },
	{ "parameter name with leading hyphen", t_param_leading_hyphen },
	{ "parameter name with underscore", t_param_bad_name_char },
	{ "parameter without name", t_param_eq_only },
	{ "parameter value with control character", t_param_ctl_value },
	{ "parameter value with NUL", t_param_nul_value },
	{ "parameter value with DEL", t_param_del_value },
	{ "parameters separated by tab", t_param_tab },
	{ "RCPT parameter without name", t_param_rcpt_bad },

	/* mailbox */
	{ "mailbox plain", t_mailbox_ok },
	{ "mailbox UTF-8", t_mailbox_utf8 },
	{ "mailbox of 254 octets", t_mailbox_254 },
	{ "mailbox of 255 octets", t_mailbox_255 },
	{ "mailbox with angle brackets", t_mailbox_brackets },
	{ "mailbox empty", t_mailbox_empty },
	{ "mailbox with trailing space", t_mailbox_trailing_space },
	{ "mailbox address literal with NUL", t_mailbox_nul_literal },
	{ "mailbox Postmaster without domain", t_mailbox_postmaster },

	/* HELO */
	{ "HELO domain", t_helo_domain },
	{ "HELO with underscore tolerated", t_helo_tolerant },
	{ "HELO IPv4 literal", t_helo_v4 },
	{ "HELO IPv6 literal", t_helo_v6 },
	{ "HELO UTF-8 name", t_helo_utf8 },
	{ "HELO empty", t_helo_empty },
	{ "HELO of 255 octets", t_helo_255 },
	{ "HELO of 256 octets", t_helo_256 },
	{ "HELO with space", t_helo_space },
	{ "HELO with tab", t_helo_tab },
	{ "HELO with control character", t_helo_ctl },
	{ "HELO with DEL", t_helo_del },
	{ "HELO with NUL", t_helo_nul },
	{ "HELO with invalid UTF-8", t_helo_bad_utf8 },
	{ "HELO IPv4 literal with three octets", t_helo_v4_short },
	{ "HELO IPv4 literal octet 300", t_helo_v4_octet },
	{ "HELO bad IPv6 literal", t_helo_v6_bad },
	{ "HELO literal without closing bracket", t_helo_unclosed },
	{ "HELO literal with trailing text", t_helo_literal_trailing },
	{ "HELO literal with NUL", t_helo_literal_nul },
	{ "HELO empty literal", t_helo_literal_empty },

	/* MAIL parameters */
	{ "no parameters", t_mp_none },
	{ "SIZE 1000", t_mp_size },
	{ "SIZE 0", t_mp_size_zero },
	{ "SIZE name in lower case", t_mp_size_lower },
	{ "SIZE of 20 digits at the maximum", t_mp_size_20_digits },
	{ "SIZE of 20 digits below the maximum", t_mp_size_20_below },
	{ "SIZE of 20 digits past the maximum", t_mp_size_overflow },
	{ "SIZE of 21 digits", t_mp_size_21_digits },
	{ "SIZE of 40 digits", t_mp_size_40_digits },
	{ "SIZE of 41 digits", t_mp_size_41_digits },
	{ "SIZE without value", t_mp_size_novalue },
	{ "SIZE with a letter", t_mp_size_alpha },
	{ "SIZE negative", t_mp_size_negative },
	{ "SIZE with plus sign", t_mp_size_plus },
	{ "SIZE in hex", t_mp_size_hex },
	{ "BODY 7BIT", t_mp_body_7bit },
	{ "BODY 8BITMIME", t_mp_body_8bit },
	{ "BODY 8bitmime in lower case", t_mp_body_lower },
	{ "BODY BINARYMIME", t_mp_body_binary },
	{ "BODY 9BIT", t_mp_body_unknown },
	{ "BODY without value", t_mp_body_novalue },
	{ "BODY 8BIT", t_mp_body_prefix },
	{ "SMTPUTF8", t_mp_smtputf8 },
	{ "SMTPUTF8 with a value", t_mp_smtputf8_value },
	{ "AUTH null mailbox", t_mp_auth_null },
	{ "AUTH xtext is decoded", t_mp_auth_xtext },
	{ "AUTH of 256 octets", t_mp_auth_256 },
	{ "AUTH of 256 octets as xtext", t_mp_auth_256_encoded },
	{ "AUTH of 257 octets", t_mp_auth_257 },
	{ "AUTH without value", t_mp_auth_novalue },
	{ "AUTH lower-case hex", t_mp_auth_lower_hex },
	{ "AUTH plus and one digit", t_mp_auth_short_hex },
	{ "AUTH ending in plus", t_mp_auth_plus_end },
	{ "AUTH plus and non-hex", t_mp_auth_nonhex },
	{ "AUTH raw UTF-8", t_mp_auth_utf8_raw },
	{ "AUTH xtext decoding to NUL", t_mp_auth_nul },
	{ "AUTH xtext decoding to CR LF", t_mp_auth_crlf },
	{ "unknown parameter", t_mp_unknown },
	{ "unknown parameter without value", t_mp_unknown_flag },
	{ "RCPT parameter on MAIL", t_mp_rcpt_param },
	{ "unknown parameter after a good one", t_mp_unknown_after_good },
	{ "duplicate SIZE", t_mp_dup_size },
	{ "duplicate SIZE in other case", t_mp_dup_case },
	{ "duplicate BODY", t_mp_dup_body },
	{ "duplicate SMTPUTF8", t_mp_dup_smtputf8 },
	{ "duplicate AUTH", t_mp_dup_auth },
	{ "SIZE without ESMTP", t_mp_noext_size },
	{ "BODY without ESMTP", t_mp_noext_body },
	{ "SMTPUTF8 without ESMTP", t_mp_noext_smtputf8 },
	{ "AUTH without ESMTP", t_mp_noext_auth },
	{ "only advertised extensions are accepted", t_mp_only_advertised },
	{ "every parameter at once", t_mp_all },

	/* BDAT */
	{ "BDAT 0 LAST", t_bdat_0_last },
	{ "BDAT 10 last", t_bdat_10_last_lower },
	{ "BDAT 10", t_bdat_10 },
	{ "BDAT two spaces before LAST", t_bdat_two_spaces },
	{ "BDAT size of 20 digits", t_bdat_20_digits },
	{ "BDAT x", t_bdat_x },
	{ "BDAT without size", t_bdat_empty },
	{ "BDAT 10 LAST extra", t_bdat_extra },
	{ "BDAT 10 LASTX", t_bdat_lastx },
	{ "BDAT 10 FIRST", t_bdat_first },
	{ "BDAT negative size", t_bdat_negative },
	{ "BDAT size with plus sign", t_bdat_plus },
	{ "BDAT size with suffix", t_bdat_suffix },
	{ "BDAT tab before LAST", t_bdat_tab },
	{ "BDAT LAST without size", t_bdat_last_only },
	{ "BDAT size with NUL", t_bdat_nul },
	{ "BDAT size of 20 digits past the maximum", t_bdat_20_overflow },
	{ "BDAT size of 21 digits", t_bdat_21_digits },

	/* UTF-8 */
	{ "UTF-8 empty", t_utf8_empty },
	{ "UTF-8 ASCII", t_utf8_ascii },
	{ "UTF-8 NUL is ASCII", t_utf8_nul_ascii },
	{ "UTF-8 two bytes", t_utf8_2byte },
	{ "UTF-8 three bytes", t_utf8_3byte },
	{ "UTF-8 four bytes", t_utf8_4byte },
	{ "UTF-8 smallest two-byte", t_utf8_min2 },
	{ "UTF-8 smallest three-byte", t_utf8_min3 },
	{ "UTF-8 smallest four-byte", t_utf8_min4 },
	{ "UTF-8 U+10FFFF", t_utf8_max },
	{ "UTF-8 U+D7FF", t_utf8_before_surrogates },
	{ "UTF-8 U+E000", t_utf8_after_surrogates },
	{ "UTF-8 overlong C0 80", t_utf8_over2_c0 },
	{ "UTF-8 overlong C1 BF", t_utf8_over2_c1 },
	{ "UTF-8 overlong three-byte", t_utf8_over3 },
	{ "UTF-8 overlong four-byte", t_utf8_over4 },
	{ "UTF-8 surrogate D800", t_utf8_surr_low },
	{ "UTF-8 surrogate DFFF", t_utf8_surr_high },
	{ "UTF-8 past U+10FFFF", t_utf8_above_max },
	{ "UTF-8 lead byte F5", t_utf8_f5 },
	{ "UTF-8 byte FE", t_utf8_fe },
	{ "UTF-8 lone continuation", t_utf8_cont },
	{ "UTF-8 truncated two-byte", t_utf8_trunc2 },
	{ "UTF-8 truncated three-byte", t_utf8_trunc3 },
	{ "UTF-8 truncated four-byte", t_utf8_trunc4 },
	{ "UTF-8 bad continuation", t_utf8_bad_cont },
	{ "UTF-8 bad middle continuation", t_utf8_bad_cont3 },
};

UNIT_MAIN(cases)
