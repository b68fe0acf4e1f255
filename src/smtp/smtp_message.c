/*
 * smtp_message.c — receiving the message: DATA and BDAT content, the
 * Received: header, the message hook and the durable commit.
 *
 * RFC 5321 §4.1.1.4 (DATA), §4.4 (trace information), §6.1 (reliable
 * delivery: "When the receiver-SMTP accepts a piece of mail ... it is
 * accepting responsibility"), RFC 3030 (BDAT), RFC 1870 (SIZE).
 *
 * The content is decoded (smtp_data.c) and streamed into a spool file as
 * it arrives; the message is never held whole in memory.  After the end of
 * data the message hook decides.  "250" is sent only when every recipient
 * was delivered (delivery code fsyncs) or when the spool file has been
 * committed to the queue (fsync, rename, fsync of the directory), on a
 * worker thread so the disk never stalls the event loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mailauth/authres.h"
#include "mailauth/dkim.h"
#include "message/envelope.h"
#include "queue/commit.h"
#include "server.h"
#include "smtp/smtp_internal.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xmalloc.h"

/* Decoded output of one input slice: at most 3 bytes per input byte... */
#define DECODE_OUT	(3 * INPUT_MAX)

static const struct stage_replies st_message = {
	0, NULL, NULL,
	550, "5.7.1", "Error: message rejected",
	451, "4.7.1", "Error: message temporarily rejected, try again later",
};

static void	message_end(struct smtp_session *);

/* RFC 5322 date-time for the Received: header. */
static void
rfc5322_date(char *out, size_t outsz)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(out, outsz, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* RFC 5321 §4.4: the trace header we prepend. */
static void
write_received(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	char hdr[1024], date[64], forpart[SMTP_PATH_MAX + 16];
	int fam = s->peer.ss_family, n;

	if (!s->cfg->received_header)
		return;
	rfc5322_date(date, sizeof(date));
	/* "for" only with one recipient: do not disclose the others. */
	if (tx->nrcpts == 1)
		snprintf(forpart, sizeof(forpart), "\r\n\tfor <%s>",
		    tx->rcpts[0].original);
	else
		forpart[0] = '\0';
	n = snprintf(hdr, sizeof(hdr),
	    "Received: from %s (%s%s%s)\r\n"
	    "\tby %s (luasmtpd) with %s id %s%s;\r\n"
	    "\t%s\r\n",
	    s->helo != NULL ? s->helo : "unknown",
	    /* RFC 5321 TCP-info; other peers by name: "(unix)", "(stdin)" */
	    fam == AF_INET6 ? "[IPv6:" : fam == AF_INET ? "[" : "", s->peer_ip,
	    fam == AF_INET6 || fam == AF_INET ? "]" : "",
	    s->cfg->hostname, smtp_session_protocol(s), tx->id, forpart, date);
	if (n > 0 && (size_t)n < sizeof(hdr))
		spool_write(&tx->spool, hdr, (size_t)n);
}

/* ---- message authentication while the message arrives ---- */

static const char *
authserv_id(const struct smtp_session *s)
{
	return s->cfg->mailauth.authserv_id != NULL ?
	    s->cfg->mailauth.authserv_id : s->cfg->hostname;
}

/* RFC 8601 §5: an Authentication-Results field that claims to be ours. */
static bool
forged_results(void *arg, const char *field, size_t len)
{
	struct smtp_session *s = arg;
	static const char name[] = "Authentication-Results:";
	bool forged;

	if (len < sizeof(name) - 1 ||
	    strncasecmp(field, name, sizeof(name) - 1) != 0)
		return false;
	forged = authres_claims_id(field, len, authserv_id(s));
	if (forged)
		log_info(s->id, "mailauth dropped-forged-results tx=%s",
		    s->tx->id);
	return forged;
}

static void
filter_out(void *arg, const char *p, size_t n)
{
	struct smtp_session *s = arg;

	spool_write(&s->tx->spool, p, n);
	if (s->tx->dkim != NULL)
		dkim_verify_write(s->tx->dkim, p, n);
}

static void
dkim_done(void *arg, const struct dkim_verify_result *r)
{
	struct smtp_tx *tx = arg;

	tx->dkim = NULL;	/* freed when this returns */
	tx->dkim_res = xmalloc(sizeof(*tx->dkim_res));
	*tx->dkim_res = *r;
	if (tx->dkim_wake != NULL) {
		void (*wake)(void *) = tx->dkim_wake;

		tx->dkim_wake = NULL;
		wake(tx->dkim_waiter);
	}
}

int
message_open_spool(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (spool_open(&tx->spool, s->cfg->spool_dir) != 0) {
		log_error(s->id, "spool open-error dir=%s/tmp error=\"%s\"",
		    s->cfg->spool_dir, strerror(errno));
		return -1;
	}
	tx->spool_open = true;
	write_received(s);
	if (s->cfg->mailauth.wanted && s->cfg->mailauth.strip_results) {
		hdrfilter_init(&tx->afilter, forged_results, filter_out, s);
		tx->afilter_on = true;
	}
	if (s->cfg->mailauth.wanted && s->cfg->mailauth.dkim_verify &&
	    server.dns != NULL) {
		struct dkim_verify_opts o = { .log_id = s->id };

		/* It sees what the spool gets: the client's octets, after the
		 * filter above, from the file offset past our Received:. */
		tx->dkim = dkim_verify_new(server.dns, tx->spool.fd,
		    tx->spool.size, &o);
	}
	return 0;
}

void
message_begin_data(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (message_open_spool(s) != 0) {
		reply(s, 451, "4.3.0", "Error: local error in processing");
		return;
	}
	smtp_data_init(&tx->dec, false, s->cfg->bare_lf, s->cfg->text_line_max);
	reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	session_enter_state(s, SMTP_STATE_DATA);
	s->data_started = ev_now(server.loop);
	s->data_bytes = 0;
	session_restart_timer(s);
	/* The client waits for 354 before it sends content. */
	if (conn_flush(&s->conn) == CONN_ERR)
		smtp_session_close(s, "write error");
}

/* After the data hook of the first chunk, or for any later chunk. */
void
message_begin_chunk(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	/* First chunk, not refused by the data hook (data_done): open. */
	if (s->chunk_err_code == 0 && tx != NULL && !tx->spool_open &&
	    tx->err_code == 0) {
		if (message_open_spool(s) != 0) {
			tx->err_code = 451;
			tx->err_ecode = "4.3.0";
			tx->err_text = "Error: local error in processing";
		} else {
			smtp_data_init(&tx->dec, true, s->cfg->bare_lf,
			    s->cfg->text_line_max);
		}
	}
	/* Every chunk, refused or not, is read at min_data_rate or dropped. */
	s->data_started = ev_now(server.loop);
	s->data_bytes = 0;
	session_enter_state(s, SMTP_STATE_BDAT);
	session_restart_timer(s);
	if (s->chunk_left == 0)
		(void)message_consume(s, "", 0);
}

/* Account for and store decoded bytes. */
static void
message_store(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_tx *tx = s->tx;

	tx->size += n;
	if (tx->size > s->cfg->max_message_size && tx->err_code == 0) {
		/* Keep reading to the end; the reply comes then (sticky). */
		tx->err_code = 552;
		tx->err_ecode = "5.3.4";
		tx->err_text = "Error: message size exceeds fixed maximum "
		    "message size";
	}
	if (tx->err_code != 0 || tx->dec.errors != 0)
		return;
	if (tx->afilter_on)
		hdrfilter_write(&tx->afilter, p, n);	/* calls filter_out */
	else
		filter_out(s, p, n);
}

/* BDAT chunk fully read: reply, or end the message on LAST. */
static void
chunk_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (s->chunk_err_code != 0) {
		reply(s, s->chunk_err_code, s->chunk_err_ecode, "%s",
		    s->chunk_err_text);
		s->chunk_err_code = 0;
		session_enter_state(s, tx == NULL ? (s->helo ? SMTP_STATE_HELO :
		    SMTP_STATE_INIT) : (tx->nrcpts ? SMTP_STATE_RCPT :
		    SMTP_STATE_MAIL));
		return;
	}
	if (!s->chunk_last) {
		if (tx->err_code != 0)
			reply(s, tx->err_code, tx->err_ecode, "%s", tx->err_text);
		else
			reply(s, 250, "2.0.0", "Ok: %llu octets received",
			    (unsigned long long)tx->size);
		session_enter_state(s, SMTP_STATE_RCPT);
		return;
	}
	if (tx->spool_open) {
		char crlf[2];
		size_t n = smtp_data_finish_bdat(&tx->dec, crlf);

		message_store(s, crlf, n);
	}
	message_end(s);
}

size_t
message_consume(struct smtp_session *s, const char *p, size_t n)
{
	static char out[DECODE_OUT];
	struct smtp_tx *tx = s->tx;
	size_t total = 0, c, o;

	if (s->state == SMTP_STATE_BDAT) {
		size_t take = n < s->chunk_left ? n : (size_t)s->chunk_left;

		if (s->chunk_err_code == 0 && tx->err_code == 0 &&
		    tx->spool_open) {
			while (total < take) {
				(void)smtp_data_decode(&tx->dec, p + total,
				    take - total, &c, out, sizeof(out), &o);
				total += c;
				message_store(s, out, o);
			}
		}
		s->chunk_left -= take;
		if (s->chunk_left == 0)
			chunk_end(s);
		return take;
	}

	while (total < n) {
		enum smtp_data_result r;

		r = smtp_data_decode(&tx->dec, p + total, n - total, &c, out,
		    sizeof(out), &o);
		total += c;
		message_store(s, out, o);
		if (r == SMTP_DATA_END) {
			message_end(s);
			break;
		}
	}
	return total;
}

/* Refuse the message with its sticky error; 521 also hangs up. */
static void
message_refuse(struct smtp_session *s, int code, const char *ecode,
    const char *text)
{
	{
		char ex[LOG_EXCERPT_BUFSZ(SMTP_REPLY_TEXT_MAX)];

		log_info(s->id, "smtp message-refused tx=%s code=%d reason=\"%s\"",
		    s->tx->id, code, log_excerpt(ex, text, strlen(text),
		    SMTP_REPLY_TEXT_MAX));
	}
	session_count_message(s, code >= 500 ? M_MSG_REJECTED : M_MSG_TEMPFAILED);
	reply(s, code, ecode, "%s", text);
	tx_end(s);
	if (code == 521)
		session_quit(s, "bare newline");
}

static void
message_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const unsigned e = tx->dec.errors;
	const int nl = s->cfg->bare_lf_reject_code;

	session_enter_state(s, SMTP_STATE_RCPT);
	session_restart_timer(s);
	/* From here on the file is read (hooks, deliveries, the commit). */
	if (tx->afilter_on && tx->err_code == 0 && e == 0)
		hdrfilter_finish(&tx->afilter);
	if (tx->spool_open)
		(void)spool_flush(&tx->spool);
	if (tx->dkim != NULL) {
		if (tx->err_code == 0 && e == 0 && tx->spool.err == 0) {
			dkim_verify_finish(tx->dkim, dkim_done, tx);
		} else {
			dkim_verify_cancel(tx->dkim);
			tx->dkim = NULL;
		}
	}
	if (e & SMTP_DATA_ERR_BARE_LF)
		return message_refuse(s, nl, "5.5.2", "Error: bare <LF> received");
	if (e & SMTP_DATA_ERR_BARE_CR)
		return message_refuse(s, nl, "5.5.2", "Error: bare <CR> received");
	if (tx->err_code != 0)
		return message_refuse(s, tx->err_code, tx->err_ecode, tx->err_text);
	if (e & SMTP_DATA_ERR_LINE_TOO_LONG)
		return message_refuse(s, 554, "5.6.0", "Error: message line "
		    "longer than 1000 octets (RFC 5321 4.5.3.1.6)");
	if (tx->dec.received > s->cfg->max_hops)
		return message_refuse(s, 554, "5.4.6", "Error: too many hops "
		    "(mail loop?)");
	if (tx->spool.err != 0) {
		log_error(s->id, "spool write-error path=%s error=\"%s\"",
		    tx->spool.path, strerror(tx->spool.err));
		/* The file cannot be trusted any more: never reuse it. */
		tx->spool.reusable = false;
		if (tx->spool.err == ENOSPC || tx->spool.err == EDQUOT)
			return message_refuse(s, 452, "4.3.1", "Error: insufficient "
			    "system storage, try again later");
		return message_refuse(s, 451, "4.3.0", "Error: local error in "
		    "processing");
	}
	{
		char from[LOG_ADDR_BUFSZ];

		log_info(s->id, "smtp message tx=%s from=<%s> rcpts=%zu size=%llu",
		    tx->id, log_token(from, tx->sender, 256), tx->nrcpts,
		    (unsigned long long)tx->size);
	}
	session_call_hook(s, HOOK_MESSAGE, NULL);
}

/* ---- the durable commit, on a worker thread ---- */

struct commit_job {
	struct commit_req	 req;		/* first */
	struct smtp_session	*s;
	char			*envelope;
};

/* RFC 3463: 4.3.1 "mail system full" says what happened. */
static bool
no_room(int errnum)
{
	return errnum == ENOSPC || errnum == EDQUOT;
}

static void
commit_done(struct commit_req *r)
{
	struct commit_job *j = (struct commit_job *)r;
	struct smtp_session *s = j->s;
	struct smtp_tx *tx = s->tx;
	char ex[LOG_EXCERPT_BUFSZ(300)];

	if (r->rc == 0) {
		log_info(s->id, "queue committed tx=%s path=%s", tx->id,
		    log_excerpt(ex, tx->spool.path, strlen(tx->spool.path), 300));
		metric_gauge_add_l(M_QUEUE_MESSAGES, M_QUEUE_QUEUED, 1);
		/* Committed: the file is the queue's now, not the tx's. */
		spool_close(&tx->spool);
		tx->spool_open = false;
	} else {
		log_error(s->id, "queue commit-error tx=%s error=\"%s\"", tx->id,
		    log_excerpt(ex, r->err.text, strlen(r->err.text), 300));
	}
	s->busy = BUSY_NONE;
	session_count_message(s, r->rc == 0 ? M_MSG_ACCEPTED : M_MSG_TEMPFAILED);
	if (s->state == SMTP_STATE_CLOSED) {
		/* The client left; a committed message is kept all the same. */
		tx_free(s->tx);
		s->tx = NULL;
	} else {
		if (r->rc == 0)
			reply(s, 250, "2.0.0", "Ok: queued as %s", tx->id);
		else if (no_room(r->err.errnum))
			reply(s, 452, "4.3.1", "Error: insufficient system "
			    "storage, try again later");
		else
			reply(s, 451, "4.3.0", "Error: local error in processing");
		tx_end(s);
		session_set_busy(s, BUSY_NONE);
	}
	free(j->envelope);
	free(j);
	if (s->state != SMTP_STATE_CLOSED)
		session_process(s);
	session_unref(s);
}

/* The envelope of what is still to deliver (message/envelope.h). */
static char *
make_envelope(const struct smtp_tx *tx, size_t *len)
{
	struct envelope e;
	struct buf b;
	char *out = NULL;

	memset(&e, 0, sizeof(e));
	e.id = (char *)tx->id;
	e.created = (int64_t)time(NULL);
	e.sender = tx->sender;
	e.mail_params = tx->params;
	e.smtputf8 = tx->opts.smtputf8;
	if (buf_used(&tx->added) > 0)
		e.headers = xstrndup(buf_head(&tx->added), buf_used(&tx->added));
	for (size_t i = 0; i < tx->nrcpts; i++) {
		const struct smtp_rcpt *r = &tx->rcpts[i];

		/* Delivered already (a hook's delivery): done. */
		if (r->status >= 200 && r->status < 300)
			continue;
		envelope_add_rcpt(&e, r->address, r->original, NULL, NULL);
	}
	buf_init(&b, ENVELOPE_MAX);
	if (envelope_write(&e, &b) == 0) {
		*len = buf_used(&b);
		out = xstrndup(buf_head(&b), *len);
	}
	buf_reset(&b);
	/* Only the recipients are ours; the rest is borrowed from tx. */
	e.id = e.sender = e.mail_params = NULL;
	envelope_free(&e);
	return out;
}

static void
queue_commit(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct commit_job *j;
	char *env;
	size_t envlen = 0;

	if ((env = make_envelope(tx, &envlen)) == NULL) {
		log_error(s->id, "queue envelope-too-large tx=%s rcpts=%zu",
		    tx->id, tx->nrcpts);
		session_count_message(s, M_MSG_TEMPFAILED);
		reply(s, 452, "4.3.1", "Error: insufficient system storage, try "
		    "again later");
		tx_end(s);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->envelope = env;
	j->s = s;
	j->req.f = &tx->spool;
	snprintf(j->req.id, sizeof(j->req.id), "%s", tx->id);
	j->req.env = env;
	j->req.envlen = envlen;
	j->req.done = commit_done;
	session_ref(s);
	session_set_busy(s, BUSY_WORK);
	/* The commit thread owns tx->spool until commit_done. */
	commit_submit(&j->req);
}

void
message_hook_done(struct smtp_session *s, const struct hook_verdict *v)
{
	struct smtp_tx *tx = s->tx;
	enum verdict_kind k;
	size_t delivered = 0;

	log_verdict(s, HOOK_MESSAGE, v);
	for (size_t i = 0; i < tx->nrcpts; i++)
		if (tx->rcpts[i].status >= 200 && tx->rcpts[i].status < 300)
			delivered++;

	if (v->kind == VERDICT_DISCARD || (tx->discard &&
	    (v->kind == VERDICT_ACCEPT || v->kind == VERDICT_DEFAULT))) {
		log_info(s->id, "smtp discarded tx=%s", tx->id);
		session_count_message(s, M_MSG_DISCARDED);
		reply(s, 250, "2.0.0", "Ok: queued as %s", tx->id);
		tx_end(s);
		return;
	}
	if (v->kind != VERDICT_ACCEPT && v->kind != VERDICT_DEFAULT) {
		session_count_message(s, v->kind == VERDICT_REJECT ||
		    v->code >= 500 ? M_MSG_REJECTED : M_MSG_TEMPFAILED);
		k = reply_verdict(s, v, &st_message, false);
		if (k != VERDICT_DISCONNECT)
			tx_end(s);
		return;
	}
	if (delivered == tx->nrcpts) {
		/* Every copy is on disk or with the next hop already. */
		session_count_message(s, M_MSG_ACCEPTED);
		reply(s, 250, "2.0.0", "Ok: delivered as %s", tx->id);
		tx_end(s);
		return;
	}
	queue_commit(s);
}
