/*
 * fuzz_reply.c — libFuzzer target: the SMTP/LMTP reply parser the
 * delivery client uses on whatever a next hop sends.
 *
 * The input is parsed as a stream of replies, twice: in one piece and byte
 * by byte; both must agree on every reply and on where the stream failed.
 * Each reply must be what the client relies on: a 200-599 code, an
 * enhanced code only of the code's class, a bounded text without control
 * bytes, a bounded number of lines.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/reply_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REPLIES	64

struct seen {
	int	code[MAX_REPLIES];
	char	text[MAX_REPLIES][REPLY_TEXT_MAX + 1];
	size_t	n;
	int	end;		/* REPLY_AGAIN or REPLY_ERROR at the end */
};

static void
check(const struct reply *r)
{
	assert(r->code >= 200 && r->code <= 599);
	assert(r->ecode[0] == '\0' || r->ecode[0] - '0' == r->code / 100);
	assert(r->textlen <= REPLY_TEXT_MAX && strlen(r->text) == r->textlen);
	for (size_t i = 0; i < r->textlen; i++)
		assert((unsigned char)r->text[i] >= 0x20 && r->text[i] != 0x7f);
	assert(r->nlines >= 1 && r->nlines <= REPLY_LINES_MAX);
}

static void
run(const char *in, size_t n, bool bytewise, bool caps, struct seen *s)
{
	static struct reply_parser p;
	size_t pos = 0;

	memset(s, 0, sizeof(*s));
	reply_parser_reset(&p, caps);
	s->end = REPLY_AGAIN;
	while (pos < n && s->n < MAX_REPLIES) {
		size_t take = bytewise ? 1 : n - pos, used = 0;
		int r = reply_parse(&p, in + pos, take, &used);

		assert(used <= take);
		if (r == REPLY_ERROR) {
			s->end = REPLY_ERROR;
			return;
		}
		pos += used;
		if (r == REPLY_DONE) {
			check(&p.r);
			s->code[s->n] = p.r.code;
			memcpy(s->text[s->n], p.r.text, p.r.textlen + 1);
			s->n++;
			reply_parser_reset(&p, caps);
		} else {
			assert(used == take);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen a, b;
	char *in;
	bool caps;

	if (size < 1)
		return 0;
	caps = data[0] & 1;
	in = malloc(size - 1 ? size - 1 : 1);
	memcpy(in, data + 1, size - 1);
	run(in, size - 1, false, caps, &a);
	run(in, size - 1, true, caps, &b);
	assert(a.n == b.n && a.end == b.end);
	for (size_t i = 0; i < a.n; i++) {
		assert(a.code[i] == b.code[i]);
		assert(strcmp(a.text[i], b.text[i]) == 0);
	}
	free(in);
	return 0;
}
