/*
 * test_reply.c — unit cases for src/deliver/reply_parse.c.
 *
 * RFC 5321 §4.2 (reply lines, multi-line replies, codes), §4.1.1.1 (EHLO
 * keywords); RFC 2034/3463 (enhanced codes); the parser's bounds, each at
 * n and n+1: REPLY_LINE_MAX octets per line, REPLY_LINES_MAX lines,
 * REPLY_TEXT_MAX octets of text kept.
 *
 * Every input is an exact-size heap copy with no terminator (unit_dup), so
 * a read past the length is an ASan report.  Each malformed input is its
 * own case.
 */
#include "deliver/reply_parse.h"

#include "unit.h"

#define LIT(s)		(s), (sizeof(s) - 1)

struct fed {
	int			rc;
	size_t			used;
	struct reply_parser	p;
};

/* Feed len bytes in one call. */
static struct fed *
feed(const char *s, size_t len, bool caps)
{
	struct fed *f = unit_alloc(sizeof(*f));

	reply_parser_reset(&f->p, caps);
	f->rc = reply_parse(&f->p, unit_dup(s, len), len, &f->used);
	return f;
}

#define ONE(lit)	feed(LIT(lit), false)
#define CAPS(lit)	feed(LIT(lit), true)

/* A case-owned string: prefix, n copies of c, suffix. */
static char *
line_of(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t lp = strlen(prefix), ls = strlen(suffix);
	char *s = unit_alloc(lp + n + ls + 1);

	memcpy(s, prefix, lp);
	memset(s + lp, c, n);
	memcpy(s + lp + n, suffix, ls);
	s[lp + n + ls] = '\0';
	return s;
}

/* n continuation lines "250-x" and a last "250 end", as one string. */
static char *
lines_of(size_t n)
{
	char *s = unit_alloc(n * 7 + 10), *p = s;

	for (size_t i = 0; i < n; i++) {
		memcpy(p, "250-x\r\n", 7);
		p += 7;
	}
	memcpy(p, "250 end\r\n", 10);
	return s;
}

#define CHECK_DONE(f, c, ec, txt) do {					\
	CHECK_INT((f)->rc, REPLY_DONE);					\
	CHECK_INT((f)->p.r.code, (c));					\
	CHECK_STR((f)->p.r.ecode, (ec));				\
	CHECK_STR((f)->p.r.text, (txt));				\
	CHECK_INT((f)->p.r.textlen, strlen(txt));			\
} while (0)

#define CHECK_ERROR(f, why) do {					\
	CHECK_INT((f)->rc, REPLY_ERROR);				\
	CHECK_STR((f)->p.error, (why));					\
} while (0)

#define REFUSE(fn, lit, why)						\
static void fn(void) { CHECK_ERROR(ONE(lit), why); }

#define MALFORMED	"malformed reply line (no 3-digit code)"
#define NO_SEP		"malformed reply line (no space or hyphen after the code)"
#define RANGE		"reply code out of range (200-599)"

/* ---- well-formed replies ---- */

static void
t_single(void)
{
	struct fed *f = ONE("250 Ok\r\n");

	CHECK_DONE(f, 250, "", "Ok");
	CHECK_INT(f->used, 8);
	CHECK_INT(f->p.r.nlines, 1);
	CHECK(!f->p.r.truncated);
}

static void t_ecode(void) { CHECK_DONE(ONE("250 2.1.0 Ok\r\n"), 250, "2.1.0", "Ok"); }
static void t_ecode_4xx(void) { CHECK_DONE(ONE("451 4.3.0 later\r\n"), 451, "4.3.0", "later"); }
static void t_ecode_3digits(void)
{
	CHECK_DONE(ONE("550 5.123.456 x\r\n"), 550, "5.123.456", "x");
}
static void t_ecode_only(void) { CHECK_DONE(ONE("250 2.0.0\r\n"), 250, "2.0.0", ""); }
static void t_ecode_wrong_class(void)
{
	CHECK_DONE(ONE("550 2.1.0 Ok\r\n"), 550, "", "2.1.0 Ok");
}
static void t_ecode_4digits(void)
{
	CHECK_DONE(ONE("550 5.1234.1 x\r\n"), 550, "", "5.1234.1 x");
}
static void t_ecode_no_space(void)
{
	CHECK_DONE(ONE("250 2.1.0x\r\n"), 250, "", "2.1.0x");
}
static void t_ecode_missing_part(void)
{
	CHECK_DONE(ONE("250 2.1 Ok\r\n"), 250, "", "2.1 Ok");
}
static void t_ecode_3xx(void)
{
	CHECK_DONE(ONE("354 3.0.0 go\r\n"), 354, "", "3.0.0 go");
}

static void
t_multi(void)
{
	struct fed *f = ONE("250-first\r\n250-second\r\n250 third\r\n");

	CHECK_DONE(f, 250, "", "first second third");
	CHECK_INT(f->p.r.nlines, 3);
}

static void
t_multi_ecodes(void)
{
	CHECK_DONE(ONE("550-5.7.1 a\r\n550-5.7.1 b\r\n550 5.7.1 c\r\n"), 550,
	    "5.7.1", "a b c");
}

static void t_bare_code(void) { CHECK_DONE(ONE("250\r\n"), 250, "", ""); }
/* Postfix's smtp-sink ends its EHLO reply with "250 ". */
static void t_code_space(void) { CHECK_DONE(ONE("250 \r\n"), 250, "", ""); }
static void t_bare_lf(void) { CHECK_DONE(ONE("250 Ok\n"), 250, "", "Ok"); }
static void t_hyphen_empty(void)
{
	CHECK_DONE(ONE("250-\r\n250 x\r\n"), 250, "", "x");
}

static void
t_byte_by_byte(void)
{
	const char *in = "250-a\r\n250 2.0.0 b\r\n";
	size_t len = strlen(in);
	struct reply_parser *p = unit_alloc(sizeof(*p));
	char *buf = unit_dup(in, len);

	reply_parser_reset(p, false);
	for (size_t i = 0; i < len; i++) {
		size_t used = 99;
		int rc = reply_parse(p, buf + i, 1, &used);

		CHECK_INT(used, 1);
		CHECK_INT(rc, i + 1 == len ? REPLY_DONE : REPLY_AGAIN);
	}
	CHECK_STR(p->r.text, "a b");
	CHECK_STR(p->r.ecode, "");	/* only the first line's counts */
}

static void
t_two_replies(void)
{
	const char *in = "250 2.1.0 Ok\r\n550 5.1.1 no\r\n";
	struct fed *f = feed(in, strlen(in), false);
	size_t used;
	int rc;

	CHECK_DONE(f, 250, "2.1.0", "Ok");
	CHECK_INT(f->used, 14);
	reply_parser_reset(&f->p, false);
	rc = reply_parse(&f->p, unit_dup(in + 14, 14), 14, &used);
	CHECK_INT(rc, REPLY_DONE);
	CHECK_INT(used, 14);
	CHECK_INT(f->p.r.code, 550);
	CHECK_STR(f->p.r.text, "no");
}

static void
t_incomplete(void)
{
	struct fed *f = ONE("250-a\r\n250 b");

	CHECK_INT(f->rc, REPLY_AGAIN);
	CHECK_INT(f->used, 12);
}

static void
t_empty_input(void)
{
	struct fed *f = feed("", 0, false);

	CHECK_INT(f->rc, REPLY_AGAIN);
	CHECK_INT(f->used, 0);
}

static void
t_control_bytes(void)
{
	CHECK_DONE(ONE("250 a\x01" "b\x7f" "c\xff" "d\0e\tf\rg\r\n"), 250, "",
	    "a?b?c?d?e?f?g");
}

static void
t_feed_after_done(void)
{
	struct fed *f = ONE("250 Ok\r\n");
	size_t used;

	CHECK_INT(reply_parse(&f->p, unit_dup(LIT("250 x\r\n")), 7, &used),
	    REPLY_ERROR);
	CHECK_STR(f->p.error, "reply parser used without a reset");
}

/* ---- malformed ---- */

REFUSE(t_letters, "abc Ok\r\n", MALFORMED)
REFUSE(t_two_digits, "25\r\n", MALFORMED)
REFUSE(t_empty_line, "\r\n", MALFORMED)
REFUSE(t_leading_space, " 250 Ok\r\n", MALFORMED)
REFUSE(t_four_digits, "2500 x\r\n", NO_SEP)
REFUSE(t_code_letter, "250x\r\n", NO_SEP)
REFUSE(t_code_tab, "250\tOk\r\n", NO_SEP)
REFUSE(t_1xx, "199 x\r\n", RANGE)
REFUSE(t_6xx, "600 x\r\n", RANGE)
REFUSE(t_000, "000 x\r\n", RANGE)
REFUSE(t_999, "999 x\r\n", RANGE)
REFUSE(t_mixed_codes, "250-a\r\n550 b\r\n",
    "the lines of a multi-line reply have different codes")
REFUSE(t_garbage_continuation, "250-a\r\nhello\r\n", MALFORMED)

static void t_200(void) { CHECK_DONE(ONE("200 x\r\n"), 200, "", "x"); }
static void t_599(void) { CHECK_DONE(ONE("599 x\r\n"), 599, "", "x"); }

/* ---- bounds ---- */

static void
t_line_max(void)
{
	/* "250 " + text + CRLF = REPLY_LINE_MAX exactly. */
	char *s = line_of("250 ", 'x', REPLY_LINE_MAX - 6, "\r\n");
	struct fed *f = feed(s, strlen(s), false);

	CHECK_INT(strlen(s), REPLY_LINE_MAX);
	CHECK_INT(f->rc, REPLY_DONE);
	CHECK(f->p.r.truncated);
	CHECK_INT(f->p.r.textlen, REPLY_TEXT_MAX);
}

static void
t_line_max_plus_one(void)
{
	char *s = line_of("250 ", 'x', REPLY_LINE_MAX - 5, "\r\n");

	CHECK_ERROR(feed(s, strlen(s), false), "reply line too long");
}

static void
t_line_max_lf(void)
{
	char *s = line_of("250 ", 'x', REPLY_LINE_MAX - 5, "\n");

	CHECK_INT(feed(s, strlen(s), false)->rc, REPLY_DONE);
}

static void
t_line_without_end(void)
{
	/* No line end in sight: refused as soon as it cannot fit. */
	char *s = line_of("250 ", 'x', REPLY_LINE_MAX - 4, "");

	CHECK_ERROR(feed(s, strlen(s), false), "reply line too long");
}

static void
t_line_split_over_feeds(void)
{
	char *s = line_of("250 ", 'x', REPLY_LINE_MAX - 5, "\r\n");
	size_t len = strlen(s), used;
	struct reply_parser *p = unit_alloc(sizeof(*p));

	reply_parser_reset(p, false);
	CHECK_INT(reply_parse(p, unit_dup(s, 1000), 1000, &used), REPLY_AGAIN);
	CHECK_INT(reply_parse(p, unit_dup(s + 1000, len - 1000), len - 1000,
	    &used), REPLY_ERROR);
	CHECK_STR(p->error, "reply line too long");
}

static void
t_lines_max(void)
{
	char *s = lines_of(REPLY_LINES_MAX - 1);
	struct fed *f = feed(s, strlen(s), false);

	CHECK_INT(f->rc, REPLY_DONE);
	CHECK_INT(f->p.r.nlines, REPLY_LINES_MAX);
}

static void
t_lines_max_plus_one(void)
{
	char *s = lines_of(REPLY_LINES_MAX);

	CHECK_ERROR(feed(s, strlen(s), false), "reply has too many lines");
}

static void
t_text_max(void)
{
	char *s = line_of("250 ", 'y', REPLY_TEXT_MAX, "\r\n");
	struct fed *f = feed(s, strlen(s), false);

	CHECK_INT(f->rc, REPLY_DONE);
	CHECK_INT(f->p.r.textlen, REPLY_TEXT_MAX);
	CHECK(!f->p.r.truncated);
}

static void
t_text_max_plus_one(void)
{
	char *s = line_of("250 ", 'y', REPLY_TEXT_MAX + 1, "\r\n");
	struct fed *f = feed(s, strlen(s), false);

	CHECK_INT(f->rc, REPLY_DONE);
	CHECK_INT(f->p.r.textlen, REPLY_TEXT_MAX);
	CHECK_INT(strlen(f->p.r.text), REPLY_TEXT_MAX);
	CHECK(f->p.r.truncated);
}

static void
t_text_cut_across_lines(void)
{
	char *a = line_of("250-", 'a', REPLY_TEXT_MAX - 1, "\r\n");
	char *s = line_of(a, 'b', 0, "250 bbb\r\n");
	struct fed *f = feed(s, strlen(s), false);

	/* REPLY_TEXT_MAX - 1 a's, the separating space, no b. */
	CHECK_INT(f->rc, REPLY_DONE);
	CHECK_INT(f->p.r.textlen, REPLY_TEXT_MAX);
	CHECK_INT(f->p.r.text[REPLY_TEXT_MAX - 1], ' ');
	CHECK(f->p.r.truncated);
}

/* ---- EHLO / LHLO capabilities ---- */

static void
t_caps_all(void)
{
	struct fed *f = CAPS("250-mx.example Hello\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
	    "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n"
	    "250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 DSN\r\n");
	struct reply_caps *c = &f->p.r.caps;

	CHECK_INT(f->rc, REPLY_DONE);
	CHECK(c->pipelining && c->size && c->eightbitmime && c->smtputf8);
	CHECK(c->starttls && c->enhancedstatuscodes && c->chunking);
	CHECK(c->auth && c->auth_plain && c->auth_login);
	CHECK_U64(c->size_max, 10240000);
}

static void
t_caps_smtp_sink(void)
{
	struct fed *f = CAPS("250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
	    "250-AUTH PLAIN LOGIN\r\n250-XCLIENT NAME HELO\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 \r\n");
	struct reply_caps *c = &f->p.r.caps;

	CHECK_INT(f->rc, REPLY_DONE);
	CHECK(c->pipelining && c->eightbitmime && c->enhancedstatuscodes);
	CHECK(!c->size && !c->starttls && !c->smtputf8 && !c->chunking);
}

static void
t_caps_lower_case(void)
{
	struct fed *f = CAPS("250-x\r\n250-pipelining\r\n250 StartTLS\r\n");

	CHECK(f->p.r.caps.pipelining && f->p.r.caps.starttls);
}

static void
t_caps_auth_equals(void)
{
	struct fed *f = CAPS("250-x\r\n250 AUTH=LOGIN\r\n");

	CHECK(f->p.r.caps.auth && f->p.r.caps.auth_login);
	CHECK(!f->p.r.caps.auth_plain);
}

static void
t_caps_auth_other(void)
{
	struct fed *f = CAPS("250-x\r\n250 AUTH CRAM-MD5 PLAINX\r\n");

	CHECK(f->p.r.caps.auth);
	CHECK(!f->p.r.caps.auth_plain && !f->p.r.caps.auth_login);
}

static void
t_caps_size_no_value(void)
{
	struct fed *f = CAPS("250-x\r\n250 SIZE\r\n");

	CHECK(f->p.r.caps.size);
	CHECK_U64(f->p.r.caps.size_max, 0);
}

static void
t_caps_size_garbage(void)
{
	struct fed *f = CAPS("250-x\r\n250 SIZE 12ab\r\n");

	CHECK(f->p.r.caps.size);
	CHECK_U64(f->p.r.caps.size_max, 0);
}

static void
t_caps_size_max_u64(void)
{
	struct fed *f = CAPS("250-x\r\n250 SIZE 18446744073709551615\r\n");

	CHECK_U64(f->p.r.caps.size_max, UINT64_MAX);
}

static void
t_caps_size_overflow(void)
{
	struct fed *f = CAPS("250-x\r\n250 SIZE 18446744073709551616\r\n");

	CHECK(f->p.r.caps.size);
	CHECK_U64(f->p.r.caps.size_max, 0);
}

static void
t_caps_prefix_word(void)
{
	struct fed *f = CAPS("250-x\r\n250-SIZEX 100\r\n250 PIPELININGS\r\n");

	CHECK(!f->p.r.caps.size && !f->p.r.caps.pipelining);
}

static void
t_caps_first_line_ignored(void)
{
	struct fed *f = CAPS("250 PIPELINING\r\n");

	CHECK(!f->p.r.caps.pipelining);
}

static void
t_caps_off(void)
{
	struct fed *f = ONE("250-x\r\n250 PIPELINING\r\n");

	CHECK(!f->p.r.caps.pipelining);
}

static const struct unit_case cases[] = {
	/* well-formed */
	{ "single line", t_single },
	{ "enhanced code", t_ecode },
	{ "enhanced code on a 4xx", t_ecode_4xx },
	{ "enhanced code with 3-digit parts", t_ecode_3digits },
	{ "enhanced code and no text", t_ecode_only },
	{ "enhanced code of another class is text", t_ecode_wrong_class },
	{ "enhanced code with a 4-digit part is text", t_ecode_4digits },
	{ "enhanced code not followed by a space is text", t_ecode_no_space },
	{ "enhanced code with two parts is text", t_ecode_missing_part },
	{ "no enhanced code on a 354", t_ecode_3xx },
	{ "multi-line reply joined by spaces", t_multi },
	{ "enhanced code stripped from every line", t_multi_ecodes },
	{ "bare code as the last line", t_bare_code },
	{ "code and a space as the last line (smtp-sink)", t_code_space },
	{ "bare LF line end", t_bare_lf },
	{ "empty continuation line", t_hyphen_empty },
	{ "fed one byte at a time", t_byte_by_byte },
	{ "two pipelined replies in one buffer", t_two_replies },
	{ "incomplete reply takes every byte", t_incomplete },
	{ "empty input", t_empty_input },
	{ "control and non-ASCII bytes become question marks", t_control_bytes },
	{ "feeding after a reply without a reset", t_feed_after_done },
	{ "lowest code 200", t_200 },
	{ "highest code 599", t_599 },
	/* malformed */
	{ "letters instead of a code", t_letters },
	{ "two digits", t_two_digits },
	{ "empty line", t_empty_line },
	{ "space before the code", t_leading_space },
	{ "four digits", t_four_digits },
	{ "letter after the code", t_code_letter },
	{ "tab after the code", t_code_tab },
	{ "1xx code", t_1xx },
	{ "6xx code", t_6xx },
	{ "code 000", t_000 },
	{ "code 999", t_999 },
	{ "lines with different codes", t_mixed_codes },
	{ "garbage continuation line", t_garbage_continuation },
	/* bounds */
	{ "line of REPLY_LINE_MAX octets", t_line_max },
	{ "line of REPLY_LINE_MAX plus one octets", t_line_max_plus_one },
	{ "line of REPLY_LINE_MAX octets with a bare LF", t_line_max_lf },
	{ "line without an end", t_line_without_end },
	{ "overlong line split over two feeds", t_line_split_over_feeds },
	{ "reply of REPLY_LINES_MAX lines", t_lines_max },
	{ "reply of REPLY_LINES_MAX plus one lines", t_lines_max_plus_one },
	{ "text of REPLY_TEXT_MAX octets", t_text_max },
	{ "text of REPLY_TEXT_MAX plus one octets", t_text_max_plus_one },
	{ "text cut across lines", t_text_cut_across_lines },
	/* capabilities */
	{ "capabilities all known", t_caps_all },
	{ "capabilities of smtp-sink", t_caps_smtp_sink },
	{ "capabilities in lower case", t_caps_lower_case },
	{ "capability AUTH=", t_caps_auth_equals },
	{ "capability AUTH without PLAIN or LOGIN", t_caps_auth_other },
	{ "capability SIZE without a value", t_caps_size_no_value },
	{ "capability SIZE with garbage", t_caps_size_garbage },
	{ "capability SIZE of UINT64_MAX", t_caps_size_max_u64 },
	{ "capability SIZE overflowing", t_caps_size_overflow },
	{ "capability words with a suffix", t_caps_prefix_word },
	{ "capability on the first line ignored", t_caps_first_line_ignored },
	{ "capabilities not parsed unless asked", t_caps_off },
};

UNIT_MAIN(cases)
