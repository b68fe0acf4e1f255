/*
 * dns.c — the resolver's life cycle and its queries on the event loop
 * (see dns.h).
 *
 * A query is in one of two lists of its context: pending (libunbound is
 * working, or the query failed before it reached libunbound) and ready
 * (the result is set and waits for delivery).  Results reach the ready
 * list from libunbound's answer callback, which runs inside libunbound
 * (from one of its socket or timer events, dns_event.c, or even from
 * ub_resolve_event() itself for local data and some cached answers);
 * they are delivered after libunbound returned: by the event base's after
 * hook, or by the ev_async "kick" when the answer came during dns_query().
 * So no user callback runs inside libunbound (a callback may cancel
 * queries, start new ones or free the context), and none inside
 * dns_query().  The per-query ev_timer runs until delivery: it keeps the
 * loop alive while a query is outstanding, and when it fires first it
 * cancels the libunbound query and delivers DNS_TIMEOUT.
 *
 * SECURITY: libunbound's cancel is final: a late answer for a cancelled or
 * timed-out query is dropped inside libunbound (it never calls back), so a
 * freed query is never touched.  The number of outstanding queries is
 * bounded by the callers (sessions, jobs), each query by its timeout.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unbound.h>
#include <unbound-event.h>

#include "dns/dns_event.h"
#include "dns/dns_int.h"
#include "util/log.h"
#include "util/xmalloc.h"

static void	ub_answer(void *arg, int rcode, void *packet, int len, int sec,
		    char *why_bogus, int was_ratelimited);

static void
list_add(struct dns_list *l, struct dns_query *q)
{
	q->prev = l->tail;
	q->next = NULL;
	if (l->tail != NULL)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
}

static void
list_del(struct dns_list *l, struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		l->head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		l->tail = q->prev;
	q->prev = q->next = NULL;
}

static struct dns_list *
list_of(struct dns_query *q)
{
	return q->state == DNS_Q_READY ? &q->ctx->ready : &q->ctx->pending;
}

static void
query_free(struct dns_query *q)
{
	dns_result_free(q->res);
	free(q->name);
	free(q);
}

/* Stop libunbound's work on q; it will not call us back for it. */
static void
ub_drop(struct dns_query *q)
{
	if (q->in_ub) {
		(void)ub_cancel(q->ctx->ub, q->ub_id);
		q->in_ub = false;
	}
}

/* Move q to the ready list with res; it is delivered later. */
static void
query_ready(struct dns_query *q, struct dns_result *res)
{
	struct dns_ctx *ctx = q->ctx;

	assert(q->state == DNS_Q_PENDING);
	list_del(&ctx->pending, q);
	q->res = res;
	q->state = DNS_Q_READY;
	list_add(&ctx->ready, q);
}

/* Run q's callback and free q.  Only from a libev callback. */
static void
deliver(struct dns_query *q)
{
	struct dns_ctx *ctx = q->ctx;
	struct dns_result *res = q->res;

	list_del(list_of(q), q);
	ctx->npending--;
	ev_timer_stop(ctx->loop, &q->timer);
	ub_drop(q);
	q->state = DNS_Q_DELIVERING;
	ctx->in_callback++;
	if (q->take != NULL) {
		q->res = NULL;
		q->take(q->arg, res);
	} else {
		q->cb(q->arg, res);
	}
	ctx->in_callback--;
	query_free(q);
}

/* Deliver every ready result, in order; callbacks may add more. */
static void
deliver_ready(struct dns_ctx *ctx)
{
	while (ctx->ready.head != NULL)
		deliver(ctx->ready.head);
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct dns_query *q = t->data;

	(void)loop;
	(void)revents;
	if (q->state != DNS_Q_PENDING) {
		/* The result is ready: deliver it rather than a timeout. */
		deliver(q);
		return;
	}
	ub_drop(q);
	query_ready(q, dns_result_error(q->name, q->rrtype, DNS_TIMEOUT,
	    "no answer within %.3gs", q->timer.repeat));
	deliver(q);
}

/* The event base's after hook: a libunbound callback has returned. */
static void
after_ub(void *arg)
{
	deliver_ready(arg);
}

static void
kick_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct dns_ctx *ctx = w->data;

	(void)loop;
	(void)revents;
	dns_wait_run_posted(ctx);
	deliver_ready(ctx);
}

/*
 * libunbound's answer (ub_resolve_event()): rcode is non-zero when it
 * failed (mostly SERVFAIL), else packet is the reply; sec is 0 insecure,
 * 1 bogus, 2 secure.  The packet and why_bogus are libunbound's.
 */
static void
ub_answer(void *arg, int rcode, void *packet, int len, int sec,
    char *why_bogus, int was_ratelimited)
{
	struct dns_query *q = arg;

	(void)was_ratelimited;
	if (q == NULL)			/* the warm-up query of dns_new() */
		return;
	q->in_ub = false;
	if (q->state != DNS_Q_PENDING)	/* cannot happen: cancel is final */
		return;
	query_ready(q, dns_result_from_packet(q->name, q->rrtype, rcode,
	    packet, len, sec, why_bogus));
}

double
dns_timeout_for(const struct dns_ctx *ctx, double requested)
{
	if (!(requested > 0))		/* also NaN */
		return ctx->timeout;
	return requested < DNS_TIMEOUT_MAX ? requested : DNS_TIMEOUT_MAX;
}

static struct dns_query *
query_start(struct dns_ctx *ctx, const char *name, int rrtype,
    double timeout, dns_cb cb, dns_take_cb take, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	size_t len = name != NULL ? strnlen(name, DNS_NAME_MAX) : 0;
	int r;

	assert(pthread_equal(pthread_self(), ctx->loop_thread));
	assert(!ctx->closing);
	q->ctx = ctx;
	q->cb = cb;
	q->take = take;
	q->arg = arg;
	q->rrtype = rrtype;
	q->name = xstrndup(name != NULL ? name : "", len);
	q->state = DNS_Q_PENDING;
	list_add(&ctx->pending, q);
	ctx->npending++;
	ev_timer_init(&q->timer, timeout_cb, dns_timeout_for(ctx, timeout), 0);
	q->timer.data = q;
	ev_timer_start(ctx->loop, &q->timer);

	if (name == NULL || len == 0 || len == DNS_NAME_MAX) {
		query_ready(q, dns_result_error(q->name, rrtype, DNS_ERROR,
		    "invalid query name"));
	} else if (rrtype <= 0 || rrtype > 65535) {
		query_ready(q, dns_result_error(q->name, rrtype, DNS_ERROR,
		    "invalid record type %d", rrtype));
	} else {
		/* The answer may come before ub_resolve_event() returns. */
		q->in_ub = true;
		if ((r = ub_resolve_event(ctx->ub, q->name, rrtype, 1, q,
		    ub_answer, &q->ub_id)) != 0 && q->state == DNS_Q_PENDING) {
			/* UB_SYNTAX for a name libunbound cannot parse. */
			q->in_ub = false;
			query_ready(q, dns_result_error(q->name, rrtype,
			    DNS_ERROR, "%s", ub_strerror(r)));
		}
	}
	if (q->state == DNS_Q_READY)
		ev_async_send(ctx->loop, &ctx->kick);
	return q;
}

struct dns_query *
dns_query(struct dns_ctx *ctx, const char *name, int rrtype, double timeout,
    dns_cb cb, void *arg)
{
	assert(cb != NULL);
	return query_start(ctx, name, rrtype, timeout, cb, NULL, arg);
}

struct dns_query *
dns_query_take(struct dns_ctx *ctx, const char *name, int rrtype,
    double timeout, dns_take_cb take, void *arg)
{
	assert(take != NULL);
	return query_start(ctx, name, rrtype, timeout, NULL, take, arg);
}

void
dns_cancel(struct dns_query *q)
{
	struct dns_ctx *ctx;

	if (q == NULL || q->state == DNS_Q_DELIVERING)
		return;
	ctx = q->ctx;
	assert(pthread_equal(pthread_self(), ctx->loop_thread));
	list_del(list_of(q), q);
	ctx->npending--;
	ev_timer_stop(ctx->loop, &q->timer);
	ub_drop(q);
	query_free(q);
}

unsigned
dns_pending(const struct dns_ctx *ctx)
{
	return ctx->npending;
}

struct ev_loop *
dns_loop(const struct dns_ctx *ctx)
{
	return ctx->loop;
}

/*
 * libunbound logs with fprintf() to a FILE (stderr by default), in a
 * format of its own: "[time] libunbound[pid:0] error: text".  This FILE
 * turns each line into one of our log lines.  libunbound's log target is
 * global, so there is one for the process.
 */
#define DNS_LOG_LINE_MAX	512

static char	ub_line[DNS_LOG_LINE_MAX];
static size_t	ub_line_len;

static void
ub_log_line(void)
{
	char esc[LOG_EXCERPT_BUFSZ(DNS_LOG_LINE_MAX)];
	const char *text = ub_line, *p;

	ub_line[ub_line_len] = '\0';
	/* Drop libunbound's time and process prefix: "[...] name[...] ". */
	if ((p = strstr(ub_line, "] ")) != NULL && (p = strstr(p + 2, "] ")) !=
	    NULL)
		text = p + 2;
	log_warn(0, "dns libunbound msg=\"%s\"",
	    log_excerpt(esc, text, strlen(text), DNS_LOG_LINE_MAX));
	ub_line_len = 0;
}

static ssize_t
ub_log_write(void *cookie, const char *buf, size_t n)
{
	(void)cookie;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			ub_log_line();
		} else if (ub_line_len + 1 < sizeof(ub_line)) {
			ub_line[ub_line_len++] = buf[i];
		}
	}
	return (ssize_t)n;
}

static FILE *
ub_log_stream(void)
{
	static FILE *f;
	cookie_io_functions_t io = { NULL, ub_log_write, NULL, NULL };

	if (f == NULL && (f = fopencookie(NULL, "w", io)) != NULL)
		setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

/* Apply cfg to ub; -1 with err set on the first setting it refuses. */
static int
configure(struct ub_ctx *ub, const struct dns_config *cfg, char *err,
    size_t errlen)
{
	const char *what = NULL, *arg = NULL;
	char opt[DNS_NAME_MAX + 16];
	bool fwd = false;
	int r = 0;

	for (size_t i = 0; cfg->servers != NULL && cfg->servers[i]; i++) {
		fwd = true;
		what = "forwarder";
		arg = cfg->servers[i];
		if ((r = ub_ctx_set_fwd(ub, arg)) != 0)
			goto fail;
	}
	if (!fwd && cfg->resolv_conf) {
		what = "resolv.conf";
		arg = NULL;
		if ((r = ub_ctx_resolvconf(ub, NULL)) != 0)
			goto fail;
	}
	for (size_t i = 0; i < cfg->nstubs; i++) {
		what = "stub zone";
		arg = cfg->stubs[i].zone;
		if ((r = ub_ctx_set_stub(ub, cfg->stubs[i].zone,
		    cfg->stubs[i].addr, 0)) != 0)
			goto fail;
	}
	/*
	 * "local-zone: Z nodefault" cannot be set through libunbound's API
	 * (cfg_parse_local_zone() keeps "Z nodefault" as the zone name, in
	 * 1.17 and later), so Z becomes a transparent local zone without
	 * data instead: it replaces the default zone, and every query in it
	 * is resolved as usual.
	 */
	for (size_t i = 0; cfg->nodefault != NULL && cfg->nodefault[i]; i++) {
		what = "nodefault zone";
		arg = cfg->nodefault[i];
		if ((size_t)snprintf(opt, sizeof(opt), "%s transparent", arg) >=
		    sizeof(opt)) {
			r = UB_SYNTAX;
			goto fail;
		}
		if ((r = ub_ctx_set_option(ub, "local-zone:", opt)) != 0)
			goto fail;
	}
	for (size_t i = 0; cfg->trust_anchors != NULL &&
	    cfg->trust_anchors[i]; i++) {
		what = "trust anchor";
		arg = cfg->trust_anchors[i];
		if ((r = ub_ctx_add_ta(ub, arg)) != 0)
			goto fail;
	}
	if (cfg->trust_anchor_file != NULL) {
		what = "trust anchor file";
		arg = cfg->trust_anchor_file;
		if ((r = ub_ctx_add_ta_file(ub, arg)) != 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "dns: %s%s%.200s%s: %s", what,
	    arg != NULL ? " \"" : "", arg != NULL ? arg : "",
	    arg != NULL ? "\"" : "", ub_strerror(r));
	return -1;
}

struct dns_ctx *
dns_new(struct ev_loop *loop, const struct dns_config *cfg, char *err,
    size_t errlen)
{
	struct dns_ctx *ctx;
	int r, id;

	if ((cfg->timeout != 0 && !(cfg->timeout > 0)) ||
	    cfg->timeout > DNS_TIMEOUT_MAX) {
		snprintf(err, errlen, "dns: timeout must be in (0, %g]",
		    DNS_TIMEOUT_MAX);
		return NULL;
	}
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->loop = loop;
	ctx->loop_thread = pthread_self();
	ctx->timeout = cfg->timeout > 0 ? cfg->timeout : DNS_TIMEOUT_DEFAULT;
	pthread_mutex_init(&ctx->wait_lock, NULL);
	ctx->evbase = dns_event_base_new(loop, after_ub, ctx);
	if ((ctx->ub = ub_ctx_create_ub_event(ctx->evbase)) == NULL) {
		snprintf(err, errlen, "dns: cannot create a libunbound context");
		goto fail;
	}
	if (ub_log_stream() != NULL)
		(void)ub_ctx_debugout(ctx->ub, ub_log_stream());
	if (configure(ctx->ub, cfg, err, errlen) != 0)
		goto fail;
	/*
	 * The first query makes libunbound check the settings (trust anchors
	 * are parsed only then): do it now, so that a bad setting fails the
	 * start.  localhost is local data, answered at once.
	 */
	r = ub_resolve_event(ctx->ub, "localhost.", DNS_T_A, 1, NULL,
	    ub_answer, &id);
	if (r != 0) {
		snprintf(err, errlen, "dns: libunbound: %s", ub_strerror(r));
		goto fail;
	}
	ev_async_init(&ctx->kick, kick_cb);
	ctx->kick.data = ctx;
	ev_async_start(loop, &ctx->kick);
	ev_unref(loop);
	return ctx;
fail:
	if (ctx->ub != NULL)
		ub_ctx_delete(ctx->ub);
	dns_event_base_free(ctx->evbase);
	pthread_mutex_destroy(&ctx->wait_lock);
	free(ctx);
	return NULL;
}

/* Drop every query of l; internal takers get DNS_ERROR. */
static void
drop_all(struct dns_ctx *ctx, struct dns_list *l)
{
	while (l->head != NULL) {
		struct dns_query *q = l->head;

		list_del(l, q);
		ctx->npending--;
		ev_timer_stop(ctx->loop, &q->timer);
		ub_drop(q);
		if (q->take != NULL) {
			q->state = DNS_Q_DELIVERING;
			q->take(q->arg, dns_result_error(q->name, q->rrtype,
			    DNS_ERROR, "resolver closed"));
		}
		query_free(q);
	}
}

void
dns_free(struct dns_ctx *ctx)
{
	if (ctx == NULL)
		return;
	assert(pthread_equal(pthread_self(), ctx->loop_thread));
	assert(ctx->in_callback == 0);
	dns_wait_fail_posted(ctx);	/* sets closing */
	drop_all(ctx, &ctx->ready);
	drop_all(ctx, &ctx->pending);
	ev_ref(ctx->loop);
	ev_async_stop(ctx->loop, &ctx->kick);
	/* Closes libunbound's sockets, frees its events and cancelled work. */
	ub_ctx_delete(ctx->ub);
	dns_event_base_free(ctx->evbase);
	pthread_mutex_destroy(&ctx->wait_lock);
	free(ctx);
}

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:		return "OK";
	case DNS_NXDOMAIN:	return "NXDOMAIN";
	case DNS_NODATA:	return "NODATA";
	case DNS_SERVFAIL:	return "SERVFAIL";
	case DNS_TIMEOUT:	return "TIMEOUT";
	case DNS_ERROR:		return "ERROR";
	}
	return "?";
}
