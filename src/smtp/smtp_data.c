/*
 * smtp_data.c — DATA/BDAT content decoder (see smtp_data.h).
 *
 * A small state machine, one byte at a time at line starts and line ends;
 * the run of text in between (the hot path of message reception) is
 * copied with memchr/memcpy.
 */
#include <string.h>

#include "smtp/smtp_data.h"

enum {
	S_BOL,		/* beginning of a line */
	S_TEXT,		/* inside a line */
	S_CR,		/* saw CR inside a line */
	S_DOT,		/* "." at the beginning of a line */
	S_DOT_CR,	/* "." CR at the beginning of a line */
};

static const char received_prefix[] = "received:";

void
smtp_data_init(struct smtp_data *d, bool bdat, enum bare_lf_mode mode,
    size_t line_max)
{
	memset(d, 0, sizeof(*d));
	d->state = S_BOL;
	d->bdat = bdat;
	d->mode = mode;
	d->line_max = line_max;
	d->eod_allowed = true;	/* ".\r\n" right after 354: empty message */
	d->in_headers = true;
}

/* Header scan: called with each produced byte at the start of a line. */
static inline void
scan_header_byte(struct smtp_data *d, unsigned char c)
{
	if (d->hdr_match < sizeof(received_prefix) - 1) {
		unsigned char lc = (c >= 'A' && c <= 'Z') ? c + 32 : c;

		if (lc == (unsigned char)received_prefix[d->hdr_match]) {
			if (++d->hdr_match == sizeof(received_prefix) - 1)
				d->received++;
		} else {
			d->hdr_match = sizeof(received_prefix); /* no match */
		}
	}
}

enum smtp_data_result
smtp_data_decode(struct smtp_data *d, const char *in, size_t inlen,
    size_t *consumed, char *out, size_t outcap, size_t *produced)
{
	size_t i = 0, o = 0;
	const bool normalize = d->mode == BARE_LF_NORMALIZE;
	enum smtp_data_result res = SMTP_DATA_MORE;

	/* Leave room for the widest single step: "." CRLF (3 bytes). */
	while (i < inlen && o + 3 <= outcap) {
		unsigned char c;

		/*
		 * Fast path: inside a line, past the bytes the Received:
		 * scan looks at, copy everything up to the next CR or LF in
		 * one go.  Same result as the byte steps below, which handle
		 * every CR, LF and line start.
		 */
		if (d->state == S_TEXT && (!d->in_headers ||
		    d->line_len >= sizeof(received_prefix))) {
			size_t n = inlen - i, room = outcap - o - 3;
			const char *cr, *lf;

			if (n > room)
				n = room;
			if ((cr = memchr(in + i, '\r', n)) != NULL)
				n = (size_t)(cr - (in + i));
			if ((lf = memchr(in + i, '\n', n)) != NULL)
				n = (size_t)(lf - (in + i));
			if (n > 0) {
				memcpy(out + o, in + i, n);
				i += n;
				o += n;
				d->line_len += n;
				if (d->line_len > d->line_max)
					d->errors |= SMTP_DATA_ERR_LINE_TOO_LONG;
				continue;
			}
		}
		c = (unsigned char)in[i++];

		if (++d->line_len > d->line_max)
			d->errors |= SMTP_DATA_ERR_LINE_TOO_LONG;

		switch (d->state) {
		case S_TEXT:
		text:
			if (c == '\r') {
				d->state = S_CR;
			} else if (c == '\n') {
				if (normalize)
					goto newline;
				/*
				 * Reject mode: flag the message and keep the LF as
				 * content, so the next "." cannot end the data.
				 */
				d->errors |= SMTP_DATA_ERR_BARE_LF;
				out[o++] = (char)c;
			} else {
				if (d->in_headers && d->line_len <= sizeof(received_prefix))
					scan_header_byte(d, c);
				out[o++] = (char)c;
			}
			break;

		case S_BOL:
			d->hdr_match = 0;
			if (c == '.' && !d->bdat) {
				d->state = S_DOT;
				break;
			}
			if (d->in_headers && (c == '\r' || c == '\n'))
				d->in_headers = false;	/* blank line: body */
			d->state = S_TEXT;
			goto text;

		case S_DOT:
			if (c == '\r') {
				d->state = S_DOT_CR;
				break;
			}
			if (c == '\n') {
				if (normalize) {
					/* ".<LF>" is a content line, never the end. */
					out[o++] = '.';
					goto newline;
				}
				d->errors |= SMTP_DATA_ERR_BARE_LF;
				out[o++] = '.';
				out[o++] = (char)c;
				d->state = S_TEXT;
				break;
			}
			/*
			 * Dot transparency: drop the leading dot, which does
			 * not count toward the line length (§4.5.3.1.6).
			 */
			d->state = S_TEXT;
			d->line_len--;
			goto text;

		case S_DOT_CR:
			if (c == '\n') {
				if (d->eod_allowed) {
					res = SMTP_DATA_END;
					goto out;
				}
				/* After a normalized bare LF: "." is content. */
				out[o++] = '.';
				goto newline_crlf;
			}
			/* "." CR <not LF>: a bare CR (the <CR>.<CR> forms). */
			d->errors |= SMTP_DATA_ERR_BARE_CR;
			out[o++] = '.';
			out[o++] = '\r';
			d->state = S_TEXT;
			i--;			/* look at c again as text */
			d->line_len--;
			break;

		case S_CR:
			if (c == '\n')
				goto newline_crlf;
			d->errors |= SMTP_DATA_ERR_BARE_CR;
			out[o++] = '\r';
			d->state = S_TEXT;
			i--;			/* look at c again as text */
			d->line_len--;
			break;
		}
		continue;

	newline:
		/* A normalized bare LF: stored as CRLF, but the next line may
		 * not end the data (Postfix "normalize" semantics).  The CR we
		 * add counts toward the length of the line we store. */
		if (++d->line_len > d->line_max)
			d->errors |= SMTP_DATA_ERR_LINE_TOO_LONG;
		out[o++] = '\r';
		out[o++] = '\n';
		d->state = S_BOL;
		d->line_len = 0;
		d->eod_allowed = false;
		continue;
	newline_crlf:
		out[o++] = '\r';
		out[o++] = '\n';
		d->state = S_BOL;
		d->line_len = 0;
		d->eod_allowed = true;
	}
out:
	d->out_bytes += o;
	*consumed = i;
	*produced = o;
	return res;
}

size_t
smtp_data_finish_bdat(struct smtp_data *d, char out[2])
{
	if (d->state == S_CR)
		d->errors |= SMTP_DATA_ERR_BARE_CR;
	if (d->state == S_BOL)
		return 0;
	d->state = S_BOL;
	out[0] = '\r';
	out[1] = '\n';
	d->out_bytes += 2;
	return 2;
}
