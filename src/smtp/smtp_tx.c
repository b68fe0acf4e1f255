/*
 * smtp_tx.c — the mail transaction and its recipients.
 *
 * A transaction lives from an accepted MAIL to the reply after the message
 * (or RSET, EHLO, QUIT).  It owns its recipients and its spool file; an
 * uncommitted spool file is deleted with it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim.h"
#include "server.h"
#include "smtp/smtp_internal.h"
#include "util/xmalloc.h"

struct smtp_tx *
tx_new(struct smtp_session *s)
{
	struct smtp_tx *tx = xcalloc(1, sizeof(*tx));

	tx->seq = ++s->ntx;
	snprintf(tx->id, sizeof(tx->id), "%s.%u", s->idstr, tx->seq);
	tx->spool.fd = -1;
	buf_init(&tx->added, ADDED_HEADERS_MAX);
	return tx;
}

struct smtp_rcpt *
rcpt_new(const char *address, const char *params)
{
	struct smtp_rcpt *r = xcalloc(1, sizeof(*r));

	r->address = xstrdup(address);
	r->original = xstrdup(address);
	r->params = params != NULL && params[0] != '\0' ? xstrdup(params) : NULL;
	return r;
}

void
rcpt_free(struct smtp_rcpt *r)
{
	if (r == NULL)
		return;
	free(r->address);
	free(r->original);
	free(r->params);
	free(r->text);
	free(r);
}

void
tx_add_rcpt(struct smtp_tx *tx, struct smtp_rcpt *r)
{
	if (tx->nrcpts == tx->caprcpts) {
		tx->caprcpts = tx->caprcpts ? tx->caprcpts * 2 : 4;
		tx->rcpts = xrealloc(tx->rcpts, tx->caprcpts * sizeof(*tx->rcpts));
	}
	/* The array holds the recipients by value; r's shell is freed. */
	tx->rcpts[tx->nrcpts++] = *r;
	free(r);
}

void
tx_free(struct smtp_tx *tx)
{
	if (tx == NULL)
		return;
	if (tx->spool_open)
		spool_discard(&tx->spool);
	for (size_t i = 0; i < tx->nrcpts; i++) {
		free(tx->rcpts[i].address);
		free(tx->rcpts[i].original);
		free(tx->rcpts[i].params);
		free(tx->rcpts[i].text);
	}
	free(tx->rcpts);
	buf_reset(&tx->added);
	if (tx->dkim != NULL)
		dkim_verify_cancel(tx->dkim);
	free(tx->dkim_res);
	hdrfilter_free(&tx->afilter);
	rcpt_free(tx->pending);
	free(tx->sender);
	free(tx->params);
	free(tx);
}

void
tx_end(struct smtp_session *s)
{
	tx_free(s->tx);
	s->tx = NULL;
	if (s->state != SMTP_STATE_CLOSED && s->state != SMTP_STATE_REJECTED &&
	    s->helo != NULL)
		session_enter_state(s, SMTP_STATE_HELO);
}

void
smtp_rcpt_set_result(struct smtp_rcpt *r, int status, const char *ecode,
    const char *text)
{
	r->status = status;
	snprintf(r->ecode, sizeof(r->ecode), "%s", ecode != NULL ? ecode : "");
	free(r->text);
	r->text = text != NULL ? xstrdup(text) : NULL;
}

/* RFC 5322 §2.2 field name: printable US-ASCII except ":". */
static bool
good_name(const char *n, size_t len)
{
	if (len == 0 || len > ADDED_HEADER_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)n[i] < 33 || (unsigned char)n[i] > 126 ||
		    n[i] == ':')
			return false;
	return true;
}

/* Unstructured value: tabs and printable bytes (UTF-8 allowed, RFC
 * 6532); never CR, LF, NUL or another control character. */
static bool
good_value(const char *v, size_t len)
{
	if (len > ADDED_HEADER_VALUE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

int
smtp_tx_add_header(struct smtp_tx *tx, const char *name, size_t namelen,
    const char *value, size_t valuelen, char *err, size_t errlen)
{
	struct buf b;
	size_t col, i = 0;

	if (!good_name(name, namelen)) {
		snprintf(err, errlen, "a header name is 1-%d printable characters "
		    "without ':'", ADDED_HEADER_NAME_MAX);
		return -1;
	}
	if (!good_value(value, valuelen)) {
		snprintf(err, errlen, "a header value is at most %d bytes without "
		    "control characters (CR, LF, NUL...)", ADDED_HEADER_VALUE_MAX);
		return -1;
	}
	/* Build the folded field apart, then append it whole or not at all. */
	buf_init(&b, ADDED_HEADER_VALUE_MAX * 2 + ADDED_HEADER_NAME_MAX + 16);
	(void)buf_append(&b, name, namelen);
	(void)buf_append(&b, ": ", 2);
	col = namelen + 2;
	while (i < valuelen && (value[i] == ' ' || value[i] == '\t'))
		i++;
	while (i < valuelen) {
		/* The next word and the white space before it. */
		size_t ws = i, w;

		while (i < valuelen && (value[i] == ' ' || value[i] == '\t'))
			i++;
		w = i;
		while (i < valuelen && value[i] != ' ' && value[i] != '\t')
			i++;
		if (i - w > 990) {
			buf_reset(&b);
			snprintf(err, errlen, "a header value has a word longer than "
			    "990 bytes (it cannot be folded)");
			return -1;
		}
		/* RFC 5322 §2.2.3: fold before white space, at 78 if we can. */
		if (ws < w && col + (i - ws) > 78 && col > namelen + 2) {
			(void)buf_append(&b, "\r\n", 2);
			col = 0;
		}
		(void)buf_append(&b, value + ws, i - ws);
		col += i - ws;
	}
	(void)buf_append(&b, "\r\n", 2);
	if (buf_append(&tx->added, buf_head(&b), buf_used(&b)) != 0) {
		buf_reset(&b);
		snprintf(err, errlen, "the added header fields would exceed %d "
		    "bytes", ADDED_HEADERS_MAX);
		return -1;
	}
	buf_reset(&b);
	return 0;
}

int
smtp_tx_add_field_raw(struct smtp_tx *tx, const char *f, size_t len,
    char *err, size_t errlen)
{
	size_t i, line = 0, colon = 0;

	/* One field, folded, CRLF line ends: "Name: value\r\n\tmore\r\n". */
	for (i = 0; i < len && f[i] != ':'; i++)
		;
	colon = i;
	if (!good_name(f, colon) || len < colon + 3 ||
	    f[len - 2] != '\r' || f[len - 1] != '\n') {
		snprintf(err, errlen, "not a header field");
		return -1;
	}
	for (i = 0; i < len; i++, line++) {
		unsigned char c = (unsigned char)f[i];

		if (c == '\0' || line > 998 || (c == '\r' && (i + 1 >= len ||
		    f[i + 1] != '\n')) || (c == '\n' && (i == 0 ||
		    f[i - 1] != '\r'))) {
			snprintf(err, errlen, "not a header field (line ends)");
			return -1;
		}
		/* Every line after the first is a continuation. */
		if (c == '\n') {
			line = 0;
			if (i + 1 < len && f[i + 1] != ' ' && f[i + 1] != '\t') {
				snprintf(err, errlen, "not one header field");
				return -1;
			}
		}
	}
	if (buf_append(&tx->added, f, len) != 0) {
		snprintf(err, errlen, "the added header fields would exceed %d "
		    "bytes", ADDED_HEADERS_MAX);
		return -1;
	}
	return 0;
}
