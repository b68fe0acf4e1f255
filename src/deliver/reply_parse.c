/*
 * reply_parse.c — SMTP/LMTP replies from a byte stream (see reply_parse.h).
 *
 * RFC 5321 §4.2:
 *   Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *                   Reply-code [ SP textstring ] CRLF
 * so a last line may be the bare code ("250") or the code and a space
 * ("250 ", Postfix's smtp-sink ends its EHLO reply so).  Every line of a
 * reply must carry the same code.
 *
 * SECURITY: no allocation; a line is copied into the fixed p->line and its
 * length is checked before every copy, so no input can write past it.
 */
#include <string.h>

#include "deliver/reply_parse.h"

void
reply_parser_reset(struct reply_parser *p, bool want_caps)
{
	p->want_caps = want_caps;
	p->len = 0;
	p->done = false;
	p->failed = false;
	p->error[0] = '\0';
	memset(&p->r, 0, sizeof(p->r));
}

static int
fail(struct reply_parser *p, const char *why)
{
	p->failed = true;
	/* why is a literal of ours: no client text reaches p->error. */
	strncpy(p->error, why, sizeof(p->error) - 1);
	p->error[sizeof(p->error) - 1] = '\0';
	return REPLY_ERROR;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char
upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Case-insensitive: s[0..n) is exactly the upper-case word w. */
static bool
word_is(const char *s, size_t n, const char *w)
{
	size_t wl = strlen(w);

	if (n != wl)
		return false;
	for (size_t i = 0; i < n; i++)
		if (upper(s[i]) != w[i])
			return false;
	return true;
}

/* 1 to 3 digits at s[*i]; advances *i.  false if none. */
static bool
digits3(const char *s, size_t n, size_t *i)
{
	size_t start = *i;

	while (*i < n && *i - start < 3 && is_digit(s[*i]))
		(*i)++;
	return *i > start;
}

/*
 * RFC 3463 status-code = class "." subject "." detail at the start of t,
 * followed by a space or the end.  The class must be that of the reply
 * code (2, 4 or 5).  Returns its length, or 0 if there is none.
 */
static size_t
ecode_len(const char *t, size_t n, int code)
{
	int cls = code / 100;
	size_t i = 0;

	if (cls != 2 && cls != 4 && cls != 5)
		return 0;
	if (n < 5 || t[0] != (char)('0' + cls) || t[1] != '.')
		return 0;
	i = 2;
	if (!digits3(t, n, &i) || i >= n || t[i] != '.')
		return 0;
	i++;
	if (!digits3(t, n, &i))
		return 0;
	if (i < n && t[i] != ' ')
		return 0;
	return i;
}

/* A decimal SIZE value; false if it is not 1-20 digits or overflows. */
static bool
parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* AUTH mechanisms: space-separated words after the keyword. */
static void
parse_auth(struct reply_caps *c, const char *s, size_t n)
{
	size_t i = 0;

	c->auth = true;
	while (i < n) {
		size_t start;

		while (i < n && s[i] == ' ')
			i++;
		start = i;
		while (i < n && s[i] != ' ')
			i++;
		if (word_is(s + start, i - start, "PLAIN"))
			c->auth_plain = true;
		else if (word_is(s + start, i - start, "LOGIN"))
			c->auth_login = true;
	}
}

/* One EHLO/LHLO keyword line (RFC 5321 §4.1.1.1: ehlo-line). */
static void
parse_cap(struct reply_caps *c, const char *t, size_t n)
{
	size_t k = 0, rest;

	while (k < n && t[k] != ' ' && t[k] != '=')
		k++;
	rest = k < n ? k + 1 : n;
	if (word_is(t, k, "PIPELINING"))
		c->pipelining = true;
	else if (word_is(t, k, "8BITMIME"))
		c->eightbitmime = true;
	else if (word_is(t, k, "SMTPUTF8"))
		c->smtputf8 = true;
	else if (word_is(t, k, "STARTTLS"))
		c->starttls = true;
	else if (word_is(t, k, "ENHANCEDSTATUSCODES"))
		c->enhancedstatuscodes = true;
	else if (word_is(t, k, "CHUNKING"))
		c->chunking = true;
	else if (word_is(t, k, "AUTH"))
		parse_auth(c, t + rest, n - rest);
	else if (word_is(t, k, "SIZE")) {
		uint64_t v;

		c->size = true;
		if (k < n && t[k] == ' ' && parse_u64(t + rest, n - rest, &v))
			c->size_max = v;
	}
}

/* Append text, control and non-ASCII bytes as '?', cut at the bound. */
static void
append_text(struct reply *r, const char *t, size_t n)
{
	if (n == 0)
		return;
	if (r->textlen > 0) {
		if (r->textlen >= REPLY_TEXT_MAX) {
			r->truncated = true;
			return;
		}
		r->text[r->textlen++] = ' ';
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];

		if (r->textlen >= REPLY_TEXT_MAX) {
			r->truncated = true;
			break;
		}
		r->text[r->textlen++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	r->text[r->textlen] = '\0';
}

/*
 * One complete line without its line end.  Returns REPLY_DONE for the
 * last line of the reply, REPLY_AGAIN for a continuation line.
 */
static int
process_line(struct reply_parser *p, const char *s, size_t n)
{
	struct reply *r = &p->r;
	const char *t;
	size_t tl, el;
	bool last;
	int code;

	if (n < 3 || !is_digit(s[0]) || !is_digit(s[1]) || !is_digit(s[2]))
		return fail(p, "malformed reply line (no 3-digit code)");
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (code < 200 || code > 599)
		return fail(p, "reply code out of range (200-599)");
	if (n > 3 && s[3] != ' ' && s[3] != '-')
		return fail(p, "malformed reply line (no space or hyphen "
		    "after the code)");
	last = n == 3 || s[3] == ' ';
	if (r->nlines > 0 && code != r->code)
		return fail(p, "the lines of a multi-line reply have "
		    "different codes");
	if (r->nlines >= REPLY_LINES_MAX)
		return fail(p, "reply has too many lines");
	r->nlines++;
	r->code = code;
	t = n > 4 ? s + 4 : s + n;
	tl = n > 4 ? n - 4 : 0;
	if ((el = ecode_len(t, tl, code)) > 0) {
		if (r->nlines == 1) {
			memcpy(r->ecode, t, el);
			r->ecode[el] = '\0';
		}
		t += el;
		tl -= el;
		while (tl > 0 && *t == ' ') {
			t++;
			tl--;
		}
	}
	if (p->want_caps && r->nlines > 1)
		parse_cap(&r->caps, t, tl);
	append_text(r, t, tl);
	return last ? REPLY_DONE : REPLY_AGAIN;
}

int
reply_parse(struct reply_parser *p, const char *buf, size_t len, size_t *used)
{
	size_t i = 0;

	*used = 0;
	if (p->done || p->failed)
		return fail(p, "reply parser used without a reset");
	while (i < len) {
		const char *lf = memchr(buf + i, '\n', len - i);
		size_t n = lf != NULL ? (size_t)(lf - (buf + i)) : len - i;
		size_t content;
		int rc;

		/* SECURITY: the line with its LF must fit REPLY_LINE_MAX. */
		if (p->len + n + 1 > REPLY_LINE_MAX)
			return fail(p, "reply line too long");
		memcpy(p->line + p->len, buf + i, n);
		p->len += n;
		i += n;
		if (lf == NULL)
			break;
		i++;		/* the LF */
		content = p->len;
		if (content > 0 && p->line[content - 1] == '\r')
			content--;
		p->len = 0;
		rc = process_line(p, p->line, content);
		if (rc == REPLY_ERROR)
			return rc;
		if (rc == REPLY_DONE) {
			p->done = true;
			*used = i;
			return REPLY_DONE;
		}
	}
	*used = i;
	return REPLY_AGAIN;
}
