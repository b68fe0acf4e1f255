/*
 * dkim_verify.c — a DKIM verifier's life on the loop thread (see dkim.h
 * for why the work is split this way, dkim_verify_run.c for the jobs).
 *
 * write() copies: the header block into one buffer (at most
 * DKIM_HEADER_MAX), the body into chunks (at most DKIM_BACKLOG_CHUNKS
 * alive, reused).  pump() decides what happens next, whenever something
 * changed (octets written, a job done, a key fetched, finish()):
 *
 *	header complete, not sent     -> data job (header + queued body)
 *	DKIM_JOB_MIN octets queued    -> data job
 *	finishing, end not sent       -> final data job (queue, file tail,
 *	                                 end of message)
 *	end sent, keys fetched        -> end-of-message job (signatures)
 *	end-of-message job done       -> the callback
 *
 * One job at a time per verifier keeps libopendkim's handle on one
 * thread at a time and the octets in order.  The keys are fetched as soon
 * as the job that ran dkim_eoh() is done, so they are usually there
 * before the body is.
 *
 * The verifier owns itself from dkim_verify_new() to its callback (or
 * dkim_verify_cancel()); a job in flight at a cancel or timeout makes the
 * free wait for its done().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailauth/dkim_int.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* First allocation of the header buffer; it doubles up to the cap. */
#define DKIM_HDR_INITIAL	4096

static void	pump(struct dkim_verify *);

/* ---- memory ----------------------------------------------------------------- */

static struct dkim_chunk *
chunk_get(struct dkim_verify *v)
{
	struct dkim_chunk *c = v->freel;

	if (c != NULL) {
		v->freel = c->next;
	} else if (v->nchunks < DKIM_BACKLOG_CHUNKS) {
		c = xmalloc(sizeof(*c));
		v->nchunks++;
	} else {
		return NULL;
	}
	c->next = NULL;
	c->len = 0;
	return c;
}

static void
chunks_recycle(struct dkim_verify *v, struct dkim_chunk *list)
{
	while (list != NULL) {
		struct dkim_chunk *next = list->next;

		list->next = v->freel;
		v->freel = list;
		list = next;
	}
}

static void
chunks_free(struct dkim_chunk *list)
{
	while (list != NULL) {
		struct dkim_chunk *next = list->next;

		free(list);
		list = next;
	}
}

static void
keys_cancel(struct dkim_verify *v)
{
	for (size_t i = 0; i < v->nkeys; i++) {
		if (v->keys[i].q != NULL) {
			dns_cancel(v->keys[i].q);
			v->keys[i].q = NULL;
			v->keys_pending--;
		}
	}
}

static void
vfree(struct dkim_verify *v)
{
	ev_timer_stop(v->loop, &v->timer);
	ev_timer_stop(v->loop, &v->kick);
	keys_cancel(v);
	for (size_t i = 0; i < v->nkeys; i++)
		free(v->keys[i].record);
	if (v->dkim != NULL)
		(void)dkim_free(v->dkim);
	chunks_free(v->qhead);
	chunks_free(v->batch);
	chunks_free(v->freel);
	free(v->hdr);
	free(v->rbuf);
	if (v->fd >= 0)
		close(v->fd);
	dkim_live--;
	free(v);
}

static void
set_error(struct dkim_verify *v, enum dkim_res res, const char *why)
{
	if (v->err_res != DKIM_RES_NONE)
		return;
	v->err_res = res;
	snprintf(v->err, sizeof(v->err), "%s", why);
}

/* ---- delivery -------------------------------------------------------------- */

static void
deliver(struct dkim_verify *v)
{
	struct dkim_verify_result *r = &v->res;

	ev_timer_stop(v->loop, &v->timer);
	ev_timer_stop(v->loop, &v->kick);
	keys_cancel(v);
	if (v->err_res != DKIM_RES_NONE) {
		memset(r, 0, sizeof(*r));
		r->res = v->err_res;
		snprintf(r->reason, sizeof(r->reason), "%s", v->err);
	} else if (v->nosig) {
		memset(r, 0, sizeof(*r));
		r->res = DKIM_RES_NONE;
		snprintf(r->reason, sizeof(r->reason), "no signature");
	}
	r->skipped = v->skipped;
	r->octets = v->fed;
	r->reread = v->reread;
	log_debug(v->opts.log_id, "dkim verified result=%s sigs=%zu "
	    "skipped=%u octets=%llu", dkim_res_name(r->res), r->nsigs,
	    r->skipped, (unsigned long long)r->octets);
	v->state = DKIM_V_DELIVERING;
	v->cb(v->arg, r);
	vfree(v);
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct dkim_verify *v = t->data;
	struct dkim_verify_result r;

	(void)loop;
	(void)revents;
	atomic_store(&v->stopping, true);
	ev_timer_stop(v->loop, &v->kick);
	keys_cancel(v);
	/* A job may still write v->res: the caller gets a result of its own. */
	memset(&r, 0, sizeof(r));
	r.res = DKIM_RES_TEMPERROR;
	snprintf(r.reason, sizeof(r.reason), "timeout");
	r.octets = v->fed;
	v->state = DKIM_V_DELIVERING;
	v->cb(v->arg, &r);
	v->state = DKIM_V_ABANDONED;
	if (!v->job_running)
		vfree(v);
}

static void
kick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	pump(t->data);
}

/* ---- key lookups ----------------------------------------------------------- */

static void
key_cb(void *arg, const struct dns_result *res)
{
	struct dkim_keyq *k = arg;
	struct dkim_verify *v = k->v;

	k->q = NULL;
	k->done = true;
	k->status = res->status;
	k->secure = res->secure;
	for (size_t i = 0; res->status == DNS_OK && i < res->nrr; i++) {
		/* RFC 6376 §6.1.2: with several records, the verifier may
		 * choose; the first TXT it is. */
		if (res->rr[i].type == DNS_T_TXT) {
			k->record = xstrndup(res->rr[i].txt.text,
			    res->rr[i].txt.len);
			break;
		}
	}
	v->keys_pending--;
	pump(v);
}

static void
keys_start(struct dkim_verify *v)
{
	char name[DKIM_SELECTOR_MAX + DKIM_DOMAIN_MAX + 16];

	v->keys_started = true;
	for (size_t i = 0; i < v->nkeys; i++) {
		struct dkim_keyq *k = &v->keys[i];
		int n = snprintf(name, sizeof(name), "%s._domainkey.%s",
		    k->selector, k->domain);

		k->v = v;
		if (n < 0 || (size_t)n >= sizeof(name) ||
		    !dkimv_dns_name_ok(name)) {
			k->done = true;
			k->status = DNS_ERROR;
			k->refused = DKIM_RES_PERMERROR;
			snprintf(k->why, sizeof(k->why), "s= and d= make no "
			    "valid DNS name");
			continue;
		}
		v->keys_pending++;
		k->q = dns_query(v->dns, name, DNS_T_TXT, v->opts.dns_timeout,
		    key_cb, k);
	}
}

/* ---- jobs ------------------------------------------------------------------- */

static void
job_done(struct work *w)
{
	struct dkim_verify *v = (struct dkim_verify *)w;

	v->job_running = false;
	if (v->jerr_res != DKIM_RES_NONE)
		set_error(v, v->jerr_res, v->jerr);
	if (v->jnosig)
		v->nosig = true;
	chunks_recycle(v, v->batch);
	v->batch = NULL;
	if (v->jhdr != NULL) {
		/* The header block is libopendkim's now. */
		free(v->hdr);
		v->hdr = v->jhdr = NULL;
		v->hdrlen = v->hdrcap = 0;
	}
	if (v->state == DKIM_V_ABANDONED) {
		vfree(v);
		return;
	}
	if (v->kind == DKIM_JOB_EOM) {
		deliver(v);
		return;
	}
	if (v->eoh_done && !v->keys_started && v->err_res == DKIM_RES_NONE &&
	    !v->nosig)
		keys_start(v);
	pump(v);
}

static void
submit(struct dkim_verify *v, enum dkim_job_kind kind)
{
	v->kind = kind;
	v->job_running = true;
	v->work.run = dkimv_run;
	v->work.done = job_done;
	workq_submit(workq_cpu, &v->work);
}

static void
submit_data(struct dkim_verify *v, bool final)
{
	v->jhdr = NULL;
	if (!v->hdr_sent) {
		v->hdr_sent = true;
		/* Without an empty line the whole message is header. */
		v->jhdr = v->hdr != NULL ? v->hdr : (unsigned char *)"";
		v->jhdrlen = v->scan.done ? (size_t)v->scan.header_len :
		    v->hdrlen;
	}
	v->batch = v->qhead;
	v->qhead = v->qtail = NULL;
	v->qbytes = 0;
	v->jfinal = final;
	if (final) {
		v->end_sent = true;
		v->tail_from = v->spill ? v->spill_from : v->fed;
		v->tail_to = v->fed;
	}
	submit(v, DKIM_JOB_DATA);
}

static void
pump(struct dkim_verify *v)
{
	bool finishing = v->state == DKIM_V_FINISHING;

	if (v->job_running || (v->state != DKIM_V_STREAMING && !finishing))
		return;
	if (v->err_res != DKIM_RES_NONE || v->nosig) {
		/* Nothing more to hash. */
		chunks_recycle(v, v->qhead);
		v->qhead = v->qtail = NULL;
		v->qbytes = 0;
		if (finishing)
			deliver(v);
		return;
	}
	if (!v->hdr_sent) {
		if (v->scan.done || finishing)
			submit_data(v, finishing);
		return;
	}
	if (!v->end_sent) {
		if (finishing)
			submit_data(v, true);
		else if (v->qbytes >= DKIM_JOB_MIN)
			submit_data(v, false);
		return;
	}
	if (v->keys_pending == 0 && !v->eom_sent) {
		v->eom_sent = true;
		submit(v, DKIM_JOB_EOM);
	}
}

/* ---- the API ---------------------------------------------------------------- */

struct dkim_verify *
dkim_verify_new(struct dns_ctx *dns, int spool_fd, uint64_t offset,
    const struct dkim_verify_opts *opts)
{
	struct dkim_verify *v = xcalloc(1, sizeof(*v));
	char err[DKIM_REASON_MAX];
	DKIM_STAT st;

	dkim_live++;
	v->loop = dns_loop(dns);
	v->dns = dns;
	if (opts != NULL)
		v->opts = *opts;
	if (v->opts.timeout <= 0)
		v->opts.timeout = DKIM_TIMEOUT_DEFAULT;
	if (v->opts.timeout > DKIM_TIMEOUT_MAX)
		v->opts.timeout = DKIM_TIMEOUT_MAX;
	if (v->opts.dns_timeout < 0)
		v->opts.dns_timeout = 0;
	if (v->opts.min_key_bits == 0)
		v->opts.min_key_bits = DKIM_KEY_BITS_MIN;
	if (v->opts.min_key_bits > DKIM_KEY_BITS_MAX)
		v->opts.min_key_bits = DKIM_KEY_BITS_MAX;
	v->state = DKIM_V_STREAMING;
	v->base = offset;
	v->fd = -1;
	if (spool_fd >= 0 && (v->fd = fcntl(spool_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		log_warn(v->opts.log_id, "dkim dup-error error=\"%s\"",
		    strerror(errno));
	atomic_init(&v->stopping, false);
	dkimv_hdrscan_init(&v->scan);
	ev_timer_init(&v->timer, timeout_cb, v->opts.timeout, 0);
	v->timer.data = v;
	ev_timer_init(&v->kick, kick_cb, 0, 0);
	v->kick.data = v;
	if (dkim_lib_init(err, sizeof(err)) != 0) {
		set_error(v, DKIM_RES_TEMPERROR, err);
		return v;
	}
	v->dkim = dkim_verify(dkim_vlib, (const unsigned char *)"luasmtpd",
	    NULL, &st);
	if (v->dkim == NULL)
		set_error(v, DKIM_RES_TEMPERROR, "libopendkim: cannot start");
	else
		(void)dkim_set_user_context(v->dkim, v);
	return v;
}

/* Append to the header block; -1 (and the verifier fails) past the cap. */
static int
hdr_append(struct dkim_verify *v, const unsigned char *p, size_t n)
{
	/* The empty line's CRLF may come on top of a full header. */
	if (v->hdrlen + n > DKIM_HEADER_MAX + 2) {
		char why[DKIM_REASON_MAX];

		snprintf(why, sizeof(why), "header block larger than %d octets",
		    DKIM_HEADER_MAX);
		set_error(v, DKIM_RES_PERMERROR, why);
		free(v->hdr);
		v->hdr = NULL;
		v->hdrlen = v->hdrcap = 0;
		return -1;
	}
	if (v->hdrlen + n > v->hdrcap) {
		size_t cap = v->hdrcap ? v->hdrcap : DKIM_HDR_INITIAL;

		while (cap < v->hdrlen + n)
			cap *= 2;
		if (cap > DKIM_HEADER_MAX + 2)
			cap = DKIM_HEADER_MAX + 2;
		v->hdr = xrealloc(v->hdr, cap);
		v->hdrcap = cap;
	}
	memcpy(v->hdr + v->hdrlen, p, n);
	v->hdrlen += n;
	return 0;
}

/* Queue body octets starting at message offset at. */
static void
body_append(struct dkim_verify *v, const unsigned char *p, size_t len,
    uint64_t at)
{
	while (len > 0 && !v->spill) {
		struct dkim_chunk *c = v->qtail;
		size_t take;

		if (c == NULL || c->len == DKIM_CHUNK_SIZE) {
			if ((c = chunk_get(v)) == NULL) {
				if (v->fd < 0) {
					set_error(v, DKIM_RES_TEMPERROR,
					    "verifier backlog full and no "
					    "spool file");
					return;
				}
				/* The pool is behind: read the rest back
				 * from the file at the end. */
				v->spill = true;
				v->spill_from = at;
				log_debug(v->opts.log_id, "dkim spill at=%llu",
				    (unsigned long long)at);
				return;
			}
			if (v->qtail != NULL)
				v->qtail->next = c;
			else
				v->qhead = c;
			v->qtail = c;
		}
		take = DKIM_CHUNK_SIZE - c->len;
		if (take > len)
			take = len;
		memcpy(c->data + c->len, p, take);
		c->len += take;
		v->qbytes += take;
		p += take;
		len -= take;
		at += take;
	}
}

void
dkim_verify_write(struct dkim_verify *v, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t at = v->fed;

	if (v->state != DKIM_V_STREAMING || len == 0)
		return;
	v->fed += len;
	if (v->err_res != DKIM_RES_NONE || v->nosig)
		return;
	if (!v->scan.done) {
		size_t n = dkimv_hdrscan_feed(&v->scan, p, len);

		if (hdr_append(v, p, n) != 0)
			return;
		p += n;
		len -= n;
		at += n;
		if (!v->scan.done)
			return;
	}
	if (len > 0)
		body_append(v, p, len, at);
	pump(v);
}

void
dkim_verify_finish(struct dkim_verify *v, dkim_verify_cb cb, void *arg)
{
	if (v->state != DKIM_V_STREAMING || cb == NULL)
		return;
	v->cb = cb;
	v->arg = arg;
	v->state = DKIM_V_FINISHING;
	ev_timer_start(v->loop, &v->timer);
	/* pump() may deliver at once: never from inside this call. */
	ev_timer_start(v->loop, &v->kick);
}

void
dkim_verify_cancel(struct dkim_verify *v)
{
	if (v == NULL || v->state == DKIM_V_DELIVERING ||
	    v->state == DKIM_V_ABANDONED)
		return;
	atomic_store(&v->stopping, true);
	ev_timer_stop(v->loop, &v->timer);
	ev_timer_stop(v->loop, &v->kick);
	keys_cancel(v);
	v->state = DKIM_V_ABANDONED;
	if (!v->job_running)
		vfree(v);
}
