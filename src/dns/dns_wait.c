/*
 * dns_wait.c — dns_query_wait(): a lookup from a worker thread through the
 * resolver of the loop thread (see dns.h), so that blocking libraries
 * (libspf2) share its cache, its servers and its timeouts.
 *
 * The worker puts a request on the context's list under wait_lock and
 * wakes the loop (ev_async); the loop thread starts an ordinary query for
 * it, and the query's result is handed over under the same lock, with a
 * condition variable per request.  The worker waits on CLOCK_MONOTONIC for
 * the query's timeout plus DNS_WAIT_GRACE, so it returns even if the loop
 * never runs again (shutdown joins the worker pools while the loop is
 * stopped).  A request has two references, the worker's and the loop's;
 * whichever lets go last frees it, so a worker that gave up and a query
 * that ends later never touch freed memory.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/dns_int.h"
#include "util/xmalloc.h"

/* How much longer than the query's own timeout a worker waits for the loop
 * to deliver it: the loop may be busy for a moment. */
#define DNS_WAIT_GRACE	1.0

struct dns_wait {
	struct dns_wait		*next;		/* ctx->wait_head list */
	struct dns_ctx		*ctx;
	pthread_cond_t		 cond;
	int			 refs;		/* under ctx->wait_lock */
	bool			 done;		/* res is set */
	bool			 abandoned;	/* the worker stopped waiting */
	struct dns_result	*res;
	int			 rrtype;
	double			 timeout;
	char			 name[DNS_NAME_MAX];
};

static struct dns_wait *
wait_new(struct dns_ctx *ctx, const char *name, int rrtype, double timeout)
{
	struct dns_wait *w = xcalloc(1, sizeof(*w));
	pthread_condattr_t attr;

	w->ctx = ctx;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	w->refs = 2;
	w->rrtype = rrtype;
	w->timeout = timeout;
	memcpy(w->name, name, strlen(name) + 1);
	return w;
}

/* Drop one reference; with ctx->wait_lock held.  True if w must be freed
 * (after the lock is released). */
static bool
wait_release(struct dns_wait *w)
{
	return --w->refs == 0;
}

static void
wait_free(struct dns_wait *w)
{
	dns_result_free(w->res);
	pthread_cond_destroy(&w->cond);
	free(w);
}

/* The query's result, on the loop thread (or from dns_free()). */
static void
wait_done(void *arg, struct dns_result *res)
{
	struct dns_wait *w = arg;
	struct dns_ctx *ctx = w->ctx;
	bool last;

	pthread_mutex_lock(&ctx->wait_lock);
	if (!w->abandoned) {
		w->res = res;
		res = NULL;
		w->done = true;
		pthread_cond_signal(&w->cond);
	}
	last = wait_release(w);
	pthread_mutex_unlock(&ctx->wait_lock);
	dns_result_free(res);
	if (last)
		wait_free(w);
}

void
dns_wait_run_posted(struct dns_ctx *ctx)
{
	struct dns_wait *list;

	pthread_mutex_lock(&ctx->wait_lock);
	list = ctx->wait_head;
	ctx->wait_head = ctx->wait_tail = NULL;
	pthread_mutex_unlock(&ctx->wait_lock);
	while (list != NULL) {
		struct dns_wait *w = list;
		bool gone;

		list = w->next;
		pthread_mutex_lock(&ctx->wait_lock);
		gone = w->abandoned;
		if (gone && wait_release(w)) {
			pthread_mutex_unlock(&ctx->wait_lock);
			wait_free(w);
			continue;
		}
		pthread_mutex_unlock(&ctx->wait_lock);
		if (gone)
			continue;
		(void)dns_query_take(ctx, w->name, w->rrtype, w->timeout,
		    wait_done, w);
	}
}

void
dns_wait_fail_posted(struct dns_ctx *ctx)
{
	struct dns_wait *list, *w;

	pthread_mutex_lock(&ctx->wait_lock);
	ctx->closing = true;
	list = ctx->wait_head;
	ctx->wait_head = ctx->wait_tail = NULL;
	while ((w = list) != NULL) {
		list = w->next;
		if (!w->abandoned) {
			w->res = dns_result_error(w->name, w->rrtype, DNS_ERROR,
			    "resolver closed");
			w->done = true;
			pthread_cond_signal(&w->cond);
		}
		if (wait_release(w)) {
			/* Only an abandoned request has no worker left. */
			wait_free(w);
		}
	}
	pthread_mutex_unlock(&ctx->wait_lock);
}

int
dns_query_wait(struct dns_ctx *ctx, const char *name, int rrtype,
    double timeout, struct dns_result **out)
{
	struct dns_wait *w;
	struct timespec deadline;
	double t, whole;
	bool last;

	assert(!pthread_equal(pthread_self(), ctx->loop_thread));
	if (name == NULL || strnlen(name, DNS_NAME_MAX) == DNS_NAME_MAX) {
		*out = dns_result_error(name != NULL ? "(too long)" : "", rrtype,
		    DNS_ERROR, "invalid query name");
		return 0;
	}
	t = dns_timeout_for(ctx, timeout);
	w = wait_new(ctx, name, rrtype, t);

	pthread_mutex_lock(&ctx->wait_lock);
	if (ctx->closing) {
		pthread_mutex_unlock(&ctx->wait_lock);
		wait_free(w);
		*out = dns_result_error(name, rrtype, DNS_ERROR,
		    "resolver closed");
		return 0;
	}
	if (ctx->wait_tail != NULL)
		ctx->wait_tail->next = w;
	else
		ctx->wait_head = w;
	ctx->wait_tail = w;
	pthread_mutex_unlock(&ctx->wait_lock);
	ev_async_send(ctx->loop, &ctx->kick);

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	t += DNS_WAIT_GRACE;
	whole = (double)(long)t;
	deadline.tv_sec += (time_t)whole;
	deadline.tv_nsec += (long)((t - whole) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	pthread_mutex_lock(&ctx->wait_lock);
	while (!w->done) {
		if (pthread_cond_timedwait(&w->cond, &ctx->wait_lock,
		    &deadline) == ETIMEDOUT && !w->done) {
			w->abandoned = true;
			break;
		}
	}
	if (w->done) {
		*out = w->res;
		w->res = NULL;
	} else {
		*out = NULL;
	}
	last = wait_release(w);
	pthread_mutex_unlock(&ctx->wait_lock);
	if (last)
		wait_free(w);
	if (*out == NULL)
		*out = dns_result_error(name, rrtype, DNS_TIMEOUT,
		    "no answer from the resolver loop within %.3gs", t);
	return 0;
}
