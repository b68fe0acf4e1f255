/*
 * fuzz_data.c — libFuzzer target: the DATA/BDAT decoder, differentially.
 *
 * The first byte picks the mode (reject/normalize, DATA/BDAT) and the line
 * limit.  The rest is decoded twice: in one piece with a roomy output
 * buffer, and byte by byte with the smallest output buffer allowed.  Both
 * must agree on every output byte, error flag, header count and on where
 * the data ended.  In reject mode the data may only end right after the
 * bytes CR LF "." CR LF (or "." CR LF at the very start): no bare LF or CR
 * form can end it — the SMTP smuggling property.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	char		*out;
	size_t		 outlen;
	size_t		 end;		/* input consumed when END came, or SIZE_MAX */
	struct smtp_data d;
};

static void
decode(struct run *r, const char *in, size_t n, bool bytewise, bool bdat,
    enum bare_lf_mode mode, size_t line_max)
{
	size_t pos = 0, cap = 3 * n + 8;

	r->out = malloc(cap);
	r->outlen = 0;
	r->end = SIZE_MAX;
	smtp_data_init(&r->d, bdat, mode, line_max);
	while (pos < n) {
		size_t take = bytewise ? 1 : n - pos, c, o;
		size_t room = bytewise ? 3 : cap - r->outlen;
		enum smtp_data_result res;

		res = smtp_data_decode(&r->d, in + pos, take, &c, r->out + r->outlen,
		    room, &o);
		assert(c <= take && r->outlen + o <= cap);
		assert(c > 0 || o > 0 || res == SMTP_DATA_END);
		pos += c;
		r->outlen += o;
		if (res == SMTP_DATA_END) {
			r->end = pos;
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run a, b;
	bool bdat, normalize;
	size_t line_max;
	char *in;

	if (size < 1)
		return 0;
	bdat = data[0] & 1;
	normalize = data[0] & 2;
	line_max = (data[0] & 4) ? 1000 : 8 + (data[0] >> 4);
	in = malloc(size - 1 ? size - 1 : 1);
	memcpy(in, data + 1, size - 1);

	decode(&a, in, size - 1, false, bdat, normalize ? BARE_LF_NORMALIZE :
	    BARE_LF_REJECT, line_max);
	decode(&b, in, size - 1, true, bdat, normalize ? BARE_LF_NORMALIZE :
	    BARE_LF_REJECT, line_max);
	assert(a.end == b.end);
	assert(a.outlen == b.outlen && memcmp(a.out, b.out, a.outlen) == 0);
	assert(a.d.errors == b.d.errors);
	assert(a.d.received == b.d.received);
	assert(a.d.out_bytes == a.outlen);

	if (bdat)
		assert(a.end == SIZE_MAX);	/* BDAT never ends by content */
	if (a.end != SIZE_MAX && !normalize) {
		size_t e = a.end;

		assert(e >= 3 && memcmp(in + e - 3, ".\r\n", 3) == 0);
		assert(e == 3 || (e >= 5 && memcmp(in + e - 5, "\r\n", 2) == 0));
	}
	if (!normalize && a.d.errors == 0) {
		/* A clean message has only CRLF line ends. */
		for (size_t i = 0; i < a.outlen; i++) {
			if (a.out[i] == '\n')
				assert(i > 0 && a.out[i - 1] == '\r');
			if (a.out[i] == '\r')
				assert(i + 1 < a.outlen && a.out[i + 1] == '\n');
		}
	}
	free(a.out);
	free(b.out);
	free(in);
	return 0;
}
