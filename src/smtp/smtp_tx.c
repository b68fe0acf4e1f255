/*
 * smtp_tx.c — the mail transaction and its recipients.
 *
 * A transaction lives from an accepted MAIL to the reply after the message
 * (or RSET, EHLO, QUIT).  It owns its recipients and its spool file; an
 * uncommitted spool file is deleted with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
