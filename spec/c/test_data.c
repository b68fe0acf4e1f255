/*
 * test_data.c — unit cases for src/smtp/smtp_data.c, the DATA/BDAT decoder.
 *
 * RFC 5321 §4.1.1.4 (end of data), §4.5.2 (dot transparency), §4.5.3.1.6
 * (text line 1000 octets with CRLF, n and n+1), §6.3 (Received: count);
 * RFC 3030 (BDAT); SMTP smuggling (CVE-2023-51764/51765/51766).
 *
 * Every case decodes its input several ways: in one piece, byte by byte,
 * in 7-byte pieces, each with a roomy output buffer and with the smallest
 * one allowed (3 bytes), and fails unless all of them agree.  Input and
 * output buffers are exact-size heap blocks, so ASan sees any overrun.
 */
#include "smtp/smtp_data.h"

#include "unit.h"

#define LIT(s)		(s), (sizeof(s) - 1)
/* An exact-size copy of a literal, and its length. */
#define IN(s)		unit_dup(LIT(s)), (sizeof(s) - 1)
#define LINE_MAX_RFC	1000

#define ERR_LF		SMTP_DATA_ERR_BARE_LF
#define ERR_CR		SMTP_DATA_ERR_BARE_CR
#define ERR_LONG	SMTP_DATA_ERR_LINE_TOO_LONG

/* ---- helpers ---- */

struct decoded {
	enum smtp_data_result	 res;
	size_t			 consumed;
	char			*out;
	size_t			 outlen;
	struct smtp_data	 d;	/* decoder state after the input */
};

struct how {
	const char	*name;
	size_t		 first;		/* first piece; 0: all */
	size_t		 step;		/* next pieces; 0: the rest */
	size_t		 outcap;
};

static const struct how hows[] = {
	{ "in one piece", 0, 0, 4096 },
	{ "byte by byte", 1, 1, 4096 },
	{ "in one piece with outcap 3", 0, 0, 3 },
	{ "byte by byte with outcap 3", 1, 1, 3 },
	{ "in 7-byte pieces with outcap 5", 7, 7, 5 },
};

/*
 * Feed in[0..len) to a fresh decoder in pieces, as the session does:
 * call again while a piece is not used up, stop at SMTP_DATA_END.
 */
static struct decoded *
feed(bool bdat, enum bare_lf_mode mode, size_t line_max, const char *in,
    size_t len, size_t first, size_t step, size_t outcap)
{
	struct decoded *r = unit_alloc(sizeof(*r));
	char *out = unit_alloc(outcap);
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	r->out = unit_alloc(2 * len + 3);
	r->res = SMTP_DATA_MORE;
	smtp_data_init(&r->d, bdat, mode, line_max);
	while (pos < len && r->res == SMTP_DATA_MORE) {
		size_t n = pos == 0 ? first : step;
		size_t off = 0;
		char *piece;

		if (n == 0 || n > len - pos)
			n = len - pos;
		piece = malloc(n);	/* freed here: byte-by-byte is many */
		if (piece == NULL)
			unit_fail(__FILE__, __LINE__, "out of memory");
		memcpy(piece, in + pos, n);
		while (off < n && r->res == SMTP_DATA_MORE) {
			size_t c = 0, o = 0;

			r->res = smtp_data_decode(&r->d, piece + off, n - off, &c,
			    out, outcap, &o);
			if (c > n - off || o > outcap || (c == 0 && o == 0 &&
			    r->res == SMTP_DATA_MORE)) {
				free(piece);
				unit_fail(__FILE__, __LINE__, "decode of %zu bytes "
				    "into %zu consumed %zu produced %zu",
				    n - off, outcap, c, o);
			}
			if (r->outlen + o > 2 * len + 3) {
				free(piece);
				unit_fail(__FILE__, __LINE__, "output grew past "
				    "twice the input");
			}
			memcpy(r->out + r->outlen, out, o);
			r->outlen += o;
			off += c;
		}
		free(piece);
		pos += off;
	}
	r->consumed = pos;
	if (r->d.out_bytes != r->outlen)
		unit_fail(__FILE__, __LINE__, "out_bytes is %llu but %zu bytes "
		    "were produced", (unsigned long long)r->d.out_bytes,
		    r->outlen);
	return r;
}

static void
check_same(const struct decoded *a, const struct decoded *b, const char *how)
{
	char e1[160], e2[160];

	if (a->res != b->res || a->consumed != b->consumed)
		unit_fail(__FILE__, __LINE__, "%s: result %d consumed %zu, "
		    "in one piece %d consumed %zu", how, b->res, b->consumed,
		    a->res, a->consumed);
	if (a->outlen != b->outlen || memcmp(a->out, b->out, a->outlen) != 0)
		unit_fail(__FILE__, __LINE__, "%s: output \"%s\", in one piece "
		    "\"%s\"", how, unit_escape(b->out, b->outlen, e2, sizeof(e2)),
		    unit_escape(a->out, a->outlen, e1, sizeof(e1)));
	if (a->d.errors != b->d.errors || a->d.received != b->d.received)
		unit_fail(__FILE__, __LINE__, "%s: errors %#x received %u, in "
		    "one piece errors %#x received %u", how, b->d.errors,
		    b->d.received, a->d.errors, a->d.received);
}

/* Decode every way in hows[]; all must agree.  Returns the first. */
static struct decoded *
decode(bool bdat, enum bare_lf_mode mode, size_t line_max, const char *in,
    size_t len)
{
	struct decoded *first = NULL;

	for (size_t i = 0; i < sizeof(hows) / sizeof(hows[0]); i++) {
		struct decoded *r = feed(bdat, mode, line_max, in, len,
		    hows[i].first, hows[i].step, hows[i].outcap);

		if (first == NULL)
			first = r;
		else
			check_same(first, r, hows[i].name);
	}
	return first;
}

#define REJECT		BARE_LF_REJECT
#define NORMALIZE	BARE_LF_NORMALIZE
#define DATA(lit)	decode(false, REJECT, LINE_MAX_RFC, LIT(lit))
#define NORM(lit)	decode(false, NORMALIZE, LINE_MAX_RFC, LIT(lit))
#define BDAT(lit)	decode(true, REJECT, LINE_MAX_RFC, LIT(lit))
#define BDAT_NORM(lit)	decode(true, NORMALIZE, LINE_MAX_RFC, LIT(lit))
#define DATA_S(s)	decode(false, REJECT, LINE_MAX_RFC, (s), strlen(s))

/* Ended at the final dot, with exactly this output and these errors. */
#define CHECK_END(r, consumed_, out_, errors_) do {			\
	CHECK_INT((r)->res, SMTP_DATA_END);				\
	CHECK_INT((r)->consumed, (consumed_));				\
	CHECK_MEM((r)->out, (r)->outlen, (out_), sizeof(out_) - 1);	\
	CHECK_INT((r)->d.errors, (errors_));				\
} while (0)

/* Took all of the input without finding the end. */
#define CHECK_MORE(r, len_, out_, errors_) do {				\
	CHECK_INT((r)->res, SMTP_DATA_MORE);				\
	CHECK_INT((r)->consumed, (len_));				\
	CHECK_MEM((r)->out, (r)->outlen, (out_), sizeof(out_) - 1);	\
	CHECK_INT((r)->d.errors, (errors_));				\
} while (0)

/* A case-owned string: a + n copies of c + b. */
static char *
line_of(const char *a, char c, size_t n, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = unit_alloc(la + n + lb + 1);

	memcpy(s, a, la);
	memset(s + la, c, n);
	memcpy(s + la + n, b, lb + 1);
	return s;
}

/* ==== DATA: the end of data and dot transparency ==== */

static void
t_plain(void)
{
	struct decoded *r = DATA("Subject: hi\r\n\r\nHello.\r\n.\r\n");

	CHECK_END(r, 26, "Subject: hi\r\n\r\nHello.\r\n", 0);
}

static void
t_rest_not_consumed(void)
{
	/* Bytes after the final dot are the next command, not data. */
	struct decoded *r = DATA("a\r\n.\r\nQUIT\r\n");

	CHECK_END(r, 6, "a\r\n", 0);
}

static void
t_empty_message(void)
{
	CHECK_END(DATA(".\r\nQUIT\r\n"), 3, "", 0);
}

static void
t_blank_line_message(void)
{
	CHECK_END(DATA("\r\n.\r\n"), 5, "\r\n", 0);
}

static void
t_unfinished(void)
{
	CHECK_MORE(DATA("Subject: x\r\n\r\nbody"), 18, "Subject: x\r\n\r\nbody",
	    0);
}

static void
t_unfinished_dot(void)
{
	/* ".": wait for what follows before producing anything. */
	CHECK_MORE(DATA("a\r\n."), 4, "a\r\n", 0);
}

static void
t_unfinished_dot_cr(void)
{
	CHECK_MORE(DATA("a\r\n.\r"), 5, "a\r\n", 0);
}

static void
t_unfinished_cr(void)
{
	CHECK_MORE(DATA("a\r"), 2, "a", 0);
}

static void
t_empty_input(void)
{
	struct smtp_data d;
	char out[3];
	size_t c = 99, o = 99;

	smtp_data_init(&d, false, BARE_LF_REJECT, LINE_MAX_RFC);
	CHECK_INT(smtp_data_decode(&d, "", 0, &c, out, sizeof(out), &o),
	    SMTP_DATA_MORE);
	CHECK_INT(c, 0);
	CHECK_INT(o, 0);
}

static void
t_stuffed_dot(void)
{
	CHECK_END(DATA("..x\r\n.\r\n"), 8, ".x\r\n", 0);
}

static void
t_two_dots(void)
{
	/* A line that is just "..": the content line ".". */
	CHECK_END(DATA("a\r\n..\r\n.\r\n"), 10, "a\r\n.\r\n", 0);
}

static void
t_three_dots(void)
{
	CHECK_END(DATA("...\r\n.\r\n"), 8, "..\r\n", 0);
}

static void
t_two_dots_first(void)
{
	CHECK_END(DATA("..\r\n.\r\n"), 7, ".\r\n", 0);
}

static void
t_unstuffed_dot(void)
{
	/* §4.5.2: a leading dot is dropped even if the client forgot to
	 * double it. */
	CHECK_END(DATA(".x\r\n.\r\n"), 7, "x\r\n", 0);
}

static void
t_dot_space(void)
{
	CHECK_END(DATA(". \r\n.\r\n"), 7, " \r\n", 0);
}

static void
t_dot_mid_line(void)
{
	CHECK_END(DATA("a.\r\na.b\r\n.\r\n"), 12, "a.\r\na.b\r\n", 0);
}

static void
t_dot_after_text(void)
{
	/* The dot must open the line: "x.\r\n" is content. */
	CHECK_MORE(DATA("x.\r\n"), 4, "x.\r\n", 0);
}

static void
t_cr_cr_lf(void)
{
	/* CR CR LF: a bare CR, then the real end of line. */
	CHECK_END(DATA("a\r\r\n.\r\n"), 7, "a\r\r\n", ERR_CR);
}

static void
t_bare_lf_start(void)
{
	CHECK_MORE(DATA("\n.\r\n"), 4, "\n.\r\n", ERR_LF);
}

static void
t_bare_cr_start(void)
{
	CHECK_MORE(DATA("\r.\r\n"), 4, "\r.\r\n", ERR_CR);
}

static void
t_errors_sticky(void)
{
	/* The bare LF of line 1 is still reported at the final dot. */
	CHECK_END(DATA("a\nb\r\nc\r\nd\r\n.\r\n"), 14, "a\nb\r\nc\r\nd\r\n",
	    ERR_LF);
}

/* ==== SMTP smuggling in reject mode ==== */

/*
 * A bogus end of data F inside a message: nothing before the real
 * CRLF "." CRLF ends it, the smuggled command stays content, the error is
 * flagged, and the real end still ends the data.  In reject mode every
 * byte up to the real end is kept as it came.
 */
#define SMUGGLE_HEAD	"Subject: x\r\n\r\nbody"
#define SMUGGLE_CMD	"MAIL FROM:<evil@example>\r\n"
#define SMUGGLE(fn, form, errors_)					\
static void fn(void)							\
{									\
	struct decoded *r;						\
									\
	r = DATA(SMUGGLE_HEAD form SMUGGLE_CMD);			\
	CHECK_MORE(r, sizeof(SMUGGLE_HEAD form SMUGGLE_CMD) - 1,	\
	    SMUGGLE_HEAD form SMUGGLE_CMD, (errors_));			\
	r = DATA(SMUGGLE_HEAD form SMUGGLE_CMD ".\r\nQUIT\r\n");	\
	CHECK_END(r, sizeof(SMUGGLE_HEAD form SMUGGLE_CMD ".\r\n") - 1, \
	    SMUGGLE_HEAD form SMUGGLE_CMD, (errors_));			\
}

SMUGGLE(t_smuggle_lf_dot_lf, "\n.\n", ERR_LF)
SMUGGLE(t_smuggle_lf_dot_crlf, "\n.\r\n", ERR_LF)
SMUGGLE(t_smuggle_crlf_dot_lf, "\r\n.\n", ERR_LF)
SMUGGLE(t_smuggle_cr_dot_cr, "\r.\r", ERR_CR)
SMUGGLE(t_smuggle_cr_dot_crlf, "\r.\r\n", ERR_CR)
SMUGGLE(t_smuggle_crlf_dot_cr, "\r\n.\r", ERR_CR)
SMUGGLE(t_smuggle_lf_dot_cr, "\n.\r", ERR_LF | ERR_CR)
SMUGGLE(t_smuggle_cr_dot_lf, "\r.\n", ERR_CR | ERR_LF)
SMUGGLE(t_smuggle_crlf_dot_crcrlf, "\r\n.\r\r\n", ERR_CR)
SMUGGLE(t_smuggle_lf_lf_dot_lf_lf, "\n\n.\n\n", ERR_LF)
SMUGGLE(t_smuggle_cr_cr_dot_cr_cr, "\r\r.\r\r", ERR_CR)

/* ==== normalize mode ==== */

static void
t_norm_bare_lf(void)
{
	CHECK_END(NORM("a\nb\r\n.\r\n"), 8, "a\r\nb\r\n", 0);
}

static void
t_norm_no_end_after_lf(void)
{
	/* The line after a bare LF cannot end the data. */
	CHECK_END(NORM("a\n.\r\nb\r\n.\r\n"), 11, "a\r\n.\r\nb\r\n", 0);
}

static void
t_norm_lf_dot_lf(void)
{
	CHECK_END(NORM("a\n.\nb\r\n.\r\n"), 10, "a\r\n.\r\nb\r\n", 0);
}

static void
t_norm_lf_dot_lf_dot(void)
{
	/* ".<LF>" is content and so is the "." line after it. */
	CHECK_END(NORM("a\n.\n.\r\n.\r\n"), 10, "a\r\n.\r\n.\r\n", 0);
}

static void
t_norm_crlf_dot_lf(void)
{
	CHECK_END(NORM("a\r\n.\nb\r\n.\r\n"), 11, "a\r\n.\r\nb\r\n", 0);
}

static void
t_norm_lf_at_start(void)
{
	CHECK_MORE(NORM("\n.\r\n"), 4, "\r\n.\r\n", 0);
}

static void
t_norm_cr_dot_cr(void)
{
	/* Only a bare LF is normalized; a bare CR is still an error. */
	CHECK_END(NORM("a\r.\rb\r\n.\r\n"), 10, "a\r.\rb\r\n", ERR_CR);
}

static void
t_norm_cr_dot_crlf(void)
{
	CHECK_END(NORM("a\r.\r\nb\r\n.\r\n"), 11, "a\r.\r\nb\r\n", ERR_CR);
}

static void
t_norm_crlf_dot_cr(void)
{
	CHECK_END(NORM("a\r\n.\rb\r\n.\r\n"), 11, "a\r\n.\rb\r\n", ERR_CR);
}

static void
t_norm_stuffing_after_lf(void)
{
	CHECK_END(NORM("a\n..x\r\n.\r\n"), 10, "a\r\n.x\r\n", 0);
}

static void
t_norm_crlf_ends(void)
{
	CHECK_END(NORM("a\r\nb\r\n.\r\n"), 9, "a\r\nb\r\n", 0);
}

/* ==== line length (RFC 5321 §4.5.3.1.6), n and n+1 ==== */

static void
t_line_1000(void)
{
	char *in = line_of("", 'x', 998, "\r\n.\r\n");
	struct decoded *r = DATA_S(in);

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->outlen, 1000);
	CHECK_INT(r->d.errors, 0);
}

static void
t_line_1001(void)
{
	struct decoded *r = DATA_S(line_of("", 'x', 999, "\r\n.\r\n"));

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->outlen, 1001);
	CHECK_INT(r->d.errors, ERR_LONG);
}

static void
t_line_1000_after_others(void)
{
	struct decoded *r = DATA_S(line_of("a\r\nb\r\n", 'x', 998,
	    "\r\nc\r\n.\r\n"));

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->d.errors, 0);
}

static void
t_line_1001_after_others(void)
{
	struct decoded *r = DATA_S(line_of("a\r\nb\r\n", 'x', 999,
	    "\r\nc\r\n.\r\n"));

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->d.errors, ERR_LONG);
}

static void
t_line_stuffed_1000(void)
{
	/* The doubled dot is not counted: ".." + 997 + CRLF is 1000. */
	struct decoded *r = DATA_S(line_of("..", 'x', 997, "\r\n.\r\n"));

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->outlen, 1000);
	CHECK_INT(r->d.errors, 0);
}

static void
t_line_stuffed_1001(void)
{
	struct decoded *r = DATA_S(line_of("..", 'x', 998, "\r\n.\r\n"));

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->outlen, 1001);
	CHECK_INT(r->d.errors, ERR_LONG);
}

static void
t_line_unfinished_1001(void)
{
	/* Flagged as soon as the line is too long, before its CRLF. */
	struct decoded *r = DATA_S(line_of("", 'x', 1001, ""));

	CHECK_INT(r->res, SMTP_DATA_MORE);
	CHECK_INT(r->d.errors, ERR_LONG);
}

static void
t_line_long_sticky(void)
{
	/* A long line neither ends the data nor clears with short lines. */
	struct decoded *r = DATA_S(line_of("", 'x', 5000,
	    "\r\nshort\r\n.\r\nQUIT\r\n"));

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->consumed, 5000 + 2 + 7 + 3);
	CHECK_INT(r->outlen, 5000 + 2 + 7);
	CHECK_INT(r->d.errors, ERR_LONG);
}

static void
t_line_max_10(void)
{
	/* line_max is the caller's: 8 + CRLF fits 10, 9 + CRLF does not. */
	struct decoded *r = decode(false, BARE_LF_REJECT, 10,
	    LIT("12345678\r\n.\r\n"));

	CHECK_INT(r->d.errors, 0);
	r = decode(false, BARE_LF_REJECT, 10, LIT("123456789\r\n.\r\n"));
	CHECK_INT(r->d.errors, ERR_LONG);
}

static void
t_line_norm_lf_999(void)
{
	/* 998 + bare LF is stored as 998 + CRLF: 1000. */
	char *in = line_of("", 'x', 998, "\n\r\n.\r\n");
	struct decoded *r = decode(false, BARE_LF_NORMALIZE, LINE_MAX_RFC, in,
	    strlen(in));

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->d.errors, 0);
}

static void
t_line_norm_lf_1000(void)
{
	/* 999 + bare LF is stored as 999 + CRLF: 1001. */
	char *in = line_of("", 'x', 999, "\n\r\n.\r\n");
	struct decoded *r = decode(false, BARE_LF_NORMALIZE, LINE_MAX_RFC, in,
	    strlen(in));

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->d.errors, ERR_LONG);
}

static void
t_line_bdat_1000(void)
{
	char *in = line_of("", 'x', 998, "\r\n");
	struct decoded *r = decode(true, BARE_LF_REJECT, LINE_MAX_RFC, in,
	    strlen(in));

	CHECK_INT(r->outlen, 1000);
	CHECK_INT(r->d.errors, 0);
}

static void
t_line_bdat_1001(void)
{
	char *in = line_of("", 'x', 999, "\r\n");
	struct decoded *r = decode(true, BARE_LF_REJECT, LINE_MAX_RFC, in,
	    strlen(in));

	CHECK_INT(r->d.errors, ERR_LONG);
}

static void
t_line_bdat_dots_count(void)
{
	/* BDAT has no dot stuffing: a leading dot is content and counts. */
	char *in = line_of("..", 'x', 997, "\r\n");
	struct decoded *r = decode(true, BARE_LF_REJECT, LINE_MAX_RFC, in,
	    strlen(in));

	CHECK_INT(r->d.errors, ERR_LONG);
}

/* ==== Received: count in the header section (RFC 5321 §6.3) ==== */

static void
t_received_count(void)
{
	struct decoded *r = DATA("Received: from a\r\nReceived: from b\r\n"
	    "Subject: c\r\n\r\nbody\r\n.\r\n");

	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->d.received, 2);
}

static void
t_received_none(void)
{
	CHECK_INT(DATA("Subject: a\r\n\r\nb\r\n.\r\n")->d.received, 0);
}

static void
t_received_case(void)
{
	struct decoded *r = DATA("RECEIVED: a\r\nreceived: b\r\nReCeIvEd: c\r\n"
	    "\r\n.\r\n");

	CHECK_INT(r->d.received, 3);
}

static void
t_received_body(void)
{
	/* The blank line ends the header section. */
	struct decoded *r = DATA("Received: a\r\n\r\nReceived: b\r\n"
	    "Received: c\r\n.\r\n");

	CHECK_INT(r->d.received, 1);
}

static void
t_received_no_headers(void)
{
	CHECK_INT(DATA("\r\nReceived: a\r\n.\r\n")->d.received, 0);
}

static void
t_received_folded(void)
{
	struct decoded *r = DATA("Received: from a\r\n\tby b\r\n"
	    " Received: c\r\n\tReceived: d\r\nSubject: e\r\n\r\n.\r\n");

	CHECK_INT(r->d.received, 1);
}

static void
t_received_empty_value(void)
{
	CHECK_INT(DATA("Received:\r\n\r\n.\r\n")->d.received, 1);
}

static void
t_received_lookalikes(void)
{
	struct decoded *r = DATA("X-Received: a\r\nReceived a\r\n"
	    "Receivedx: a\r\nReceive: a\r\nReceived : a\r\n"
	    "Subject: Received: a\r\n\r\n.\r\n");

	CHECK_INT(r->d.received, 0);
}

static void
t_received_after_other(void)
{
	struct decoded *r = DATA("Subject: a\r\nFrom: b\r\nReceived: c\r\n"
	    "\r\n.\r\n");

	CHECK_INT(r->d.received, 1);
}

static void
t_received_unstuffed(void)
{
	/* ".Received:" on the wire is the content line "Received:". */
	CHECK_INT(DATA(".Received: a\r\n\r\n.\r\n")->d.received, 1);
}

static void
t_received_stuffed(void)
{
	/* "..Received:" is the content line ".Received:": not a header. */
	CHECK_INT(DATA("..Received: a\r\n\r\n.\r\n")->d.received, 0);
}

static void
t_received_norm_lf(void)
{
	/* Normalized bare LFs end header lines and the header section. */
	struct decoded *r = NORM("Received: a\nReceived: b\n\nReceived: c\r\n"
	    ".\r\n");

	CHECK_INT(r->d.received, 2);
	CHECK_INT(r->d.errors, 0);
}

static void
t_received_bdat(void)
{
	struct decoded *r = BDAT("Received: a\r\nreceived: b\r\n\r\n"
	    "Received: c\r\n");

	CHECK_INT(r->d.received, 2);
}

static void
t_received_many(void)
{
	char *in = unit_alloc(60 * 14 + 16);
	struct decoded *r;

	in[0] = '\0';
	for (int i = 0; i < 60; i++)
		strcat(in, "Received: x\r\n");
	strcat(in, "\r\n.\r\n");
	r = DATA_S(in);
	CHECK_INT(r->res, SMTP_DATA_END);
	CHECK_INT(r->d.received, 60);
}

/* ==== BDAT (RFC 3030): no dots, no end ==== */

static void
t_bdat_dots_are_content(void)
{
	CHECK_MORE(BDAT("..x\r\n.\r\nQUIT\r\n"), 14, "..x\r\n.\r\nQUIT\r\n", 0);
}

static void
t_bdat_dot_crlf_first(void)
{
	CHECK_MORE(BDAT(".\r\n"), 3, ".\r\n", 0);
}

static void
t_bdat_bare_lf(void)
{
	CHECK_MORE(BDAT("a\nb\r\n"), 5, "a\nb\r\n", ERR_LF);
}

static void
t_bdat_bare_cr(void)
{
	CHECK_MORE(BDAT("a\rb\r\n"), 5, "a\rb\r\n", ERR_CR);
}

static void
t_bdat_norm_lf(void)
{
	CHECK_MORE(BDAT_NORM("a\nb\r\n"), 5, "a\r\nb\r\n", 0);
}

static void
t_bdat_smuggle(void)
{
	CHECK_MORE(BDAT("a\r\n.\r\nMAIL FROM:<e@x>\r\n"), 23,
	    "a\r\n.\r\nMAIL FROM:<e@x>\r\n", 0);
}

/* Finish a BDAT LAST message; returns what was appended. */
static size_t
finish(struct decoded *r, char crlf[2])
{
	uint64_t before = r->d.out_bytes;
	size_t n;

	crlf[0] = crlf[1] = '#';
	n = smtp_data_finish_bdat(&r->d, crlf);
	CHECK_U64(r->d.out_bytes, before + n);
	return n;
}

static void
t_finish_crlf(void)
{
	struct decoded *r = BDAT("a\r\nb\r\n");
	char crlf[2];

	CHECK_INT(finish(r, crlf), 0);
	CHECK_INT(r->d.errors, 0);
}

static void
t_finish_no_crlf(void)
{
	struct decoded *r = BDAT("a\r\nb");
	char crlf[2];

	CHECK_INT(finish(r, crlf), 2);
	CHECK_MEM(crlf, 2, "\r\n", 2);
	CHECK_INT(r->d.errors, 0);
}

static void
t_finish_empty(void)
{
	struct decoded *r = BDAT("");
	char crlf[2];

	CHECK_INT(finish(r, crlf), 0);
	CHECK_INT(r->d.errors, 0);
}

static void
t_finish_pending_cr(void)
{
	struct decoded *r = BDAT("a\r\nb\r");
	char crlf[2];

	CHECK_MEM(r->out, r->outlen, "a\r\nb", 4);
	CHECK_INT(r->d.errors, 0);
	CHECK_INT(finish(r, crlf), 2);
	CHECK_MEM(crlf, 2, "\r\n", 2);
	CHECK_INT(r->d.errors, ERR_CR);
}

static void
t_finish_twice(void)
{
	struct decoded *r = BDAT("a");
	char crlf[2];

	CHECK_INT(finish(r, crlf), 2);
	CHECK_INT(finish(r, crlf), 0);
}

static void
t_finish_norm_lf(void)
{
	/* A final bare LF was stored as CRLF: nothing to add. */
	struct decoded *r = BDAT_NORM("a\nb\n");
	char crlf[2];

	CHECK_MEM(r->out, r->outlen, "a\r\nb\r\n", 6);
	CHECK_INT(finish(r, crlf), 0);
}

static void
t_finish_bare_lf(void)
{
	/* Reject mode: a final bare LF is content, so CRLF is added. */
	struct decoded *r = BDAT("a\n");
	char crlf[2];

	CHECK_INT(finish(r, crlf), 2);
	CHECK_INT(r->d.errors, ERR_LF);
}

static void
t_bdat_crlf_across_chunks(void)
{
	/* Two BDAT chunks, "a\r" and "\nb": one decoder, no bare CR. */
	struct smtp_data d;
	char out[16], crlf[2];
	size_t c, o, total = 0;

	smtp_data_init(&d, true, BARE_LF_REJECT, LINE_MAX_RFC);
	CHECK_INT(smtp_data_decode(&d, IN("a\r"), &c, out, sizeof(out),
	    &o), SMTP_DATA_MORE);
	CHECK_INT(c, 2);
	total += o;
	CHECK_INT(smtp_data_decode(&d, IN("\nb"), &c, out + total,
	    sizeof(out) - total, &o), SMTP_DATA_MORE);
	CHECK_INT(c, 2);
	total += o;
	CHECK_MEM(out, total, "a\r\nb", 4);
	CHECK_INT(smtp_data_finish_bdat(&d, crlf), 2);
	CHECK_INT(d.errors, 0);
}

/* ==== output capacity and input pieces ==== */

static void
t_outcap_3_one_call(void)
{
	struct smtp_data d;
	char *out = unit_alloc(3);
	size_t c, o;

	smtp_data_init(&d, false, BARE_LF_REJECT, LINE_MAX_RFC);
	CHECK_INT(smtp_data_decode(&d, IN("abcdef"), &c, out, 3, &o),
	    SMTP_DATA_MORE);
	CHECK_INT(c, 1);
	CHECK_MEM(out, o, "a", 1);
}

static void
t_outcap_5_one_call(void)
{
	struct smtp_data d;
	char *out = unit_alloc(5);
	size_t c, o;

	/* Stops while fewer than 3 bytes of room remain. */
	smtp_data_init(&d, false, BARE_LF_REJECT, LINE_MAX_RFC);
	CHECK_INT(smtp_data_decode(&d, IN("abcdef"), &c, out, 5, &o),
	    SMTP_DATA_MORE);
	CHECK_INT(c, 3);
	CHECK_MEM(out, o, "abc", 3);
}

static void
t_outcap_3_widest_step(void)
{
	/* Normalize ".<LF>" after a bare LF: "." CRLF in one step. */
	struct smtp_data d;
	char *out = unit_alloc(3);
	size_t c, o;

	smtp_data_init(&d, false, BARE_LF_NORMALIZE, LINE_MAX_RFC);
	CHECK_INT(smtp_data_decode(&d, IN("\n"), &c, out, 3, &o),
	    SMTP_DATA_MORE);
	CHECK_MEM(out, o, "\r\n", 2);
	CHECK_INT(smtp_data_decode(&d, IN(".\nx"), &c, out, 3, &o),
	    SMTP_DATA_MORE);
	CHECK_INT(c, 2);
	CHECK_MEM(out, o, ".\r\n", 3);
}

/* Inputs for the split and model cases: every tricky sequence. */
static const char *const corpus[] = {
	"Subject: hi\r\n\r\nHello.\r\n.\r\nQUIT\r\n",
	".\r\n",
	"..\r\n...\r\n.x\r\n. \r\n.\r\n",
	"a\n.\nb\r\n.\r\n",
	"a\n.\r\nb\r\n.\r\n",
	"a\r\n.\nb\r\n.\r\n",
	"a\r.\rb\r\n.\r\n",
	"a\r.\r\nb\r\n.\r\n",
	"a\r\n.\rb\r\n.\r\n",
	"a\r\n.\r\r\n.\r\n",
	"\n.\r\n.\r\n",
	"\r\r\n\n\r.\r\n.\r\n",
	"Received: a\r\n\tb\r\nRECEIVED: c\nReceived: d\r\n\r\nReceived: e\r\n"
	    ".\r\n",
	"a\r\n..\n..\r\n.\r\r\n.\r\n",
};

static void
t_every_split(void)
{
	static const struct {
		bool		 bdat;
		enum bare_lf_mode mode;
	} modes[] = {
		{ false, BARE_LF_REJECT }, { false, BARE_LF_NORMALIZE },
		{ true, BARE_LF_REJECT }, { true, BARE_LF_NORMALIZE },
	};

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		size_t mode_mark = unit_mark();

		for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
			const char *in = corpus[i];
			size_t len = strlen(in);
			struct decoded *whole = decode(modes[m].bdat,
			    modes[m].mode, 8, in, len);

			for (size_t k = 1; k < len; k++) {
				size_t mark = unit_mark();
				struct decoded *r = feed(modes[m].bdat,
				    modes[m].mode, 8, in, len, k, 0, 3);

				check_same(whole, r, "split in two");
				unit_release(mark);
			}
		}
		unit_release(mode_mark);
	}
}

/*
 * A model of the decoder, written from RFC 5321 and the SMTP-smuggling
 * rules rather than as a state machine: end of data only at CRLF "." CRLF
 * with a real CRLF (not a normalized LF) before the dot; a leading dot is
 * dropped unless CR or LF follows it; a bare CR is kept and flagged; a
 * bare LF is kept and flagged (reject) or becomes CRLF (normalize).
 * Bytes whose meaning depends on input not yet seen are held back.
 */
struct model {
	bool		 end;
	size_t		 consumed;
	char		 out[128];
	size_t		 outlen;
	unsigned	 errors;
};

static void
model_decode(const char *in, size_t len, bool normalize, struct model *m)
{
	bool bol = true, eod = true;
	size_t i = 0;

	memset(m, 0, sizeof(*m));
	while (i < len) {
		char c = in[i];

		if (bol && c == '.') {
			if (i + 1 >= len)
				break;			/* held back */
			if (in[i + 1] == '\r') {
				if (i + 2 >= len)
					break;		/* held back */
				if (in[i + 2] == '\n' && eod) {
					m->end = true;
					m->consumed = i + 3;
					return;
				}
				if (in[i + 2] == '\n') {
					memcpy(m->out + m->outlen, ".\r\n", 3);
					m->outlen += 3;
					i += 3;
					eod = true;
					continue;
				}
				m->out[m->outlen++] = '.';	/* then a bare CR */
				i++;
				bol = false;
				continue;
			}
			if (in[i + 1] == '\n') {
				m->out[m->outlen++] = '.';	/* then a bare LF */
				i++;
				bol = false;
				continue;
			}
			i++;				/* dot transparency */
			bol = false;
			continue;
		}
		if (c == '\r') {
			if (i + 1 >= len) {
				i++;			/* held back */
				break;
			}
			if (in[i + 1] == '\n') {
				memcpy(m->out + m->outlen, "\r\n", 2);
				m->outlen += 2;
				i += 2;
				bol = eod = true;
				continue;
			}
			m->errors |= ERR_CR;
			m->out[m->outlen++] = '\r';
			i++;
			bol = false;
			continue;
		}
		if (c == '\n' && normalize) {
			memcpy(m->out + m->outlen, "\r\n", 2);
			m->outlen += 2;
			i++;
			bol = true;
			eod = false;
			continue;
		}
		if (c == '\n')
			m->errors |= ERR_LF;
		m->out[m->outlen++] = c;
		i++;
		bol = false;
	}
	m->consumed = len;
}

/* A small deterministic generator (no libc rand: same on every host). */
static uint32_t
lcg(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 16;
}

static void
check_model(bool normalize)
{
	static const char alphabet[] = "\r\n.x";
	uint32_t seed = normalize ? 7 : 1;
	char in[32];
	struct model m;

	for (int n = 0; n < 4000; n++) {
		size_t len = lcg(&seed) % sizeof(in);
		size_t mark = unit_mark();
		struct decoded *r;
		char e1[160], e2[160], ei[120];

		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[lcg(&seed) % 4];
		model_decode(in, len, normalize, &m);
		r = decode(false, normalize ? BARE_LF_NORMALIZE : BARE_LF_REJECT,
		    LINE_MAX_RFC, in, len);
		if ((r->res == SMTP_DATA_END) != m.end ||
		    r->consumed != m.consumed || r->outlen != m.outlen ||
		    memcmp(r->out, m.out, m.outlen) != 0 ||
		    r->d.errors != m.errors)
			unit_fail(__FILE__, __LINE__, "input \"%s\" gave end %d "
			    "consumed %zu output \"%s\" errors %#x, model end %d "
			    "consumed %zu output \"%s\" errors %#x",
			    unit_escape(in, len, ei, sizeof(ei)),
			    r->res == SMTP_DATA_END, r->consumed,
			    unit_escape(r->out, r->outlen, e1, sizeof(e1)),
			    r->d.errors, m.end, m.consumed,
			    unit_escape(m.out, m.outlen, e2, sizeof(e2)),
			    m.errors);
		unit_release(mark);
	}
}

static void
t_model_reject(void)
{
	check_model(false);
}

static void
t_model_normalize(void)
{
	check_model(true);
}

static const struct unit_case cases[] = {
	/* end of data, dot transparency */
	{ "plain message", t_plain },
	{ "bytes after the final dot are not consumed", t_rest_not_consumed },
	{ "empty message", t_empty_message },
	{ "message of one blank line", t_blank_line_message },
	{ "unfinished message", t_unfinished },
	{ "unfinished message ending in a dot", t_unfinished_dot },
	{ "unfinished message ending in dot CR", t_unfinished_dot_cr },
	{ "unfinished message ending in CR", t_unfinished_cr },
	{ "zero-length input", t_empty_input },
	{ "dot stuffing removes one dot", t_stuffed_dot },
	{ "a line that is just two dots", t_two_dots },
	{ "a line of three dots", t_three_dots },
	{ "first line of two dots", t_two_dots_first },
	{ "unstuffed leading dot is dropped", t_unstuffed_dot },
	{ "dot and space is not the end", t_dot_space },
	{ "dots inside lines are kept", t_dot_mid_line },
	{ "dot at the end of a line is not the end", t_dot_after_text },
	{ "CR CR LF is a bare CR", t_cr_cr_lf },
	{ "bare LF before the first dot", t_bare_lf_start },
	{ "bare CR before the first dot", t_bare_cr_start },
	{ "errors are sticky", t_errors_sticky },

	/* smuggling */
	{ "smuggling LF dot LF", t_smuggle_lf_dot_lf },
	{ "smuggling LF dot CR LF", t_smuggle_lf_dot_crlf },
	{ "smuggling CR LF dot LF", t_smuggle_crlf_dot_lf },
	{ "smuggling CR dot CR", t_smuggle_cr_dot_cr },
	{ "smuggling CR dot CR LF", t_smuggle_cr_dot_crlf },
	{ "smuggling CR LF dot CR", t_smuggle_crlf_dot_cr },
	{ "smuggling LF dot CR", t_smuggle_lf_dot_cr },
	{ "smuggling CR dot LF", t_smuggle_cr_dot_lf },
	{ "smuggling CR LF dot CR CR LF", t_smuggle_crlf_dot_crcrlf },
	{ "smuggling LF LF dot LF LF", t_smuggle_lf_lf_dot_lf_lf },
	{ "smuggling CR CR dot CR CR", t_smuggle_cr_cr_dot_cr_cr },

	/* normalize */
	{ "normalize stores a bare LF as CRLF", t_norm_bare_lf },
	{ "normalize line after a bare LF cannot end the data",
	    t_norm_no_end_after_lf },
	{ "normalize LF dot LF is content", t_norm_lf_dot_lf },
	{ "normalize dot line after LF dot LF is content",
	    t_norm_lf_dot_lf_dot },
	{ "normalize CR LF dot LF is content", t_norm_crlf_dot_lf },
	{ "normalize bare LF first", t_norm_lf_at_start },
	{ "normalize CR dot CR is a bare CR", t_norm_cr_dot_cr },
	{ "normalize CR dot CR LF is a bare CR", t_norm_cr_dot_crlf },
	{ "normalize CR LF dot CR is a bare CR", t_norm_crlf_dot_cr },
	{ "normalize dot stuffing after a bare LF", t_norm_stuffing_after_lf },
	{ "normalize CRLF dot CRLF ends the data", t_norm_crlf_ends },

	/* line length */
	{ "line of 1000 octets", t_line_1000 },
	{ "line of 1001 octets", t_line_1001 },
	{ "line of 1000 octets after others", t_line_1000_after_others },
	{ "line of 1001 octets after others", t_line_1001_after_others },
	{ "dot-stuffed line of 1000 octets", t_line_stuffed_1000 },
	{ "dot-stuffed line of 1001 octets", t_line_stuffed_1001 },
	{ "unfinished line past 1000 octets", t_line_unfinished_1001 },
	{ "long line is sticky and does not end the data", t_line_long_sticky },
	{ "line limit 10 at n and n+1", t_line_max_10 },
	{ "normalize 998 octets and bare LF", t_line_norm_lf_999 },
	{ "normalize 999 octets and bare LF", t_line_norm_lf_1000 },
	{ "BDAT line of 1000 octets", t_line_bdat_1000 },
	{ "BDAT line of 1001 octets", t_line_bdat_1001 },
	{ "BDAT leading dots count toward the line", t_line_bdat_dots_count },

	/* Received */
	{ "Received headers are counted", t_received_count },
	{ "no Received header", t_received_none },
	{ "Received is case-insensitive", t_received_case },
	{ "Received in the body is not counted", t_received_body },
	{ "Received after an empty header section", t_received_no_headers },
	{ "folded Received counts once", t_received_folded },
	{ "Received with empty value", t_received_empty_value },
	{ "Received lookalikes are not counted", t_received_lookalikes },
	{ "Received after other headers", t_received_after_other },
	{ "Received behind a dropped leading dot", t_received_unstuffed },
	{ "dot-stuffed Received is not a header", t_received_stuffed },
	{ "normalize Received lines end at bare LF", t_received_norm_lf },
	{ "BDAT Received headers are counted", t_received_bdat },
	{ "60 Received headers", t_received_many },

	/* BDAT */
	{ "BDAT dots are content", t_bdat_dots_are_content },
	{ "BDAT dot CRLF first is content", t_bdat_dot_crlf_first },
	{ "BDAT bare LF", t_bdat_bare_lf },
	{ "BDAT bare CR", t_bdat_bare_cr },
	{ "BDAT normalize bare LF", t_bdat_norm_lf },
	{ "BDAT CRLF dot CRLF is content", t_bdat_smuggle },
	{ "BDAT finish after CRLF adds nothing", t_finish_crlf },
	{ "BDAT finish without CRLF adds CRLF", t_finish_no_crlf },
	{ "BDAT finish of empty content", t_finish_empty },
	{ "BDAT finish with a pending CR", t_finish_pending_cr },
	{ "BDAT finish twice", t_finish_twice },
	{ "BDAT finish after normalized LF", t_finish_norm_lf },
	{ "BDAT finish after bare LF", t_finish_bare_lf },
	{ "BDAT CRLF split across chunks", t_bdat_crlf_across_chunks },

	/* pieces and capacity */
	{ "outcap 3 produces one byte per call", t_outcap_3_one_call },
	{ "outcap 5 keeps room for the widest step", t_outcap_5_one_call },
	{ "outcap 3 takes the widest step", t_outcap_3_widest_step },
	{ "every two-piece split decodes like the whole", t_every_split },
	{ "reject mode matches the model on 4000 inputs", t_model_reject },
	{ "normalize mode matches the model on 4000 inputs",
	    t_model_normalize },
};

UNIT_MAIN(cases)
