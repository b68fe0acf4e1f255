/*
 * kv.c — the store-independent half of kv.h: argument checks and bounds,
 * requests in flight, the deferred queue, cancel, and the GCRA step.
 *
 * Owns: struct kv and every struct kv_req until its backend takes it
 * (KV_RS_SENT) or it is answered.  The queue is run from one ev_timer of
 * zero delay, which makes the loop poll without blocking and fire it in
 * the next iteration; requests queued while it runs wait for the next
 * (their seq is past the mark), so a callback that makes a request per
 * answer cannot hold the loop.
 *
 * SECURITY: every bound of kv.h is checked here, before a backend copies
 * or sends anything.
 */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv_int.h"
#include "util/xmalloc.h"

#define KV_INFLIGHT_LIMIT	1000000u	/* the most max_inflight may be */

static void	kick_cb(struct ev_loop *, ev_timer *, int);
static void	kick(struct kv *);

struct kv *
kv_open(struct ev_loop *loop, const struct kv_config *cfg, char *err,
    size_t errlen)
{
	const struct kv_ops *ops;
	const char *name = cfg->backend != NULL ? cfg->backend : "lmdb";
	struct kv *kv;

	if (strcmp(name, "lmdb") == 0)
		ops = &kv_lmdb_ops;
	else if (strcmp(name, "redis") == 0)
		ops = &kv_redis_ops;
	else {
		snprintf(err, errlen, "kv: unknown backend (lmdb or redis)");
		return NULL;
	}
	if (cfg->max_inflight > KV_INFLIGHT_LIMIT) {
		snprintf(err, errlen, "kv: max_inflight over %u",
		    KV_INFLIGHT_LIMIT);
		return NULL;
	}
	kv = xcalloc(1, sizeof(*kv));
	kv->ops = ops;
	kv->loop = loop;
	kv->max_inflight = cfg->max_inflight ? cfg->max_inflight :
	    KV_INFLIGHT_DEFAULT;
	TAILQ_INIT(&kv->queue);
	ev_timer_init(&kv->kick, kick_cb, 0., 0.);
	kv->kick.data = kv;
	if (ops->open(kv, cfg, err, errlen) != 0) {
		free(kv);
		return NULL;
	}
	return kv;
}

void
kv_close(struct kv *kv)
{
	struct kv_req *req;

	if (kv == NULL)
		return;
	/* The caller's callback would return into freed memory. */
	assert(kv->depth == 0);
	kv->closing = true;
	ev_timer_stop(kv->loop, &kv->kick);
	while ((req = TAILQ_FIRST(&kv->queue)) != NULL) {
		TAILQ_REMOVE(&kv->queue, req, entry);
		kv_req_free(req);
	}
	kv->ops->close(kv);
	assert(kv->inflight == 0);
	free(kv);
}

const char *
kv_backend_name(const struct kv *kv)
{
	return kv->ops->name;
}

const char *
kv_status_name(enum kv_status s)
{
	switch (s) {
	case KV_OK:		return "ok";
	case KV_NOTFOUND:	return "notfound";
	case KV_ERROR:		return "error";
	case KV_TIMEOUT:	return "timeout";
	case KV_UNAVAILABLE:	return "unavailable";
	}
	return "error";
}

/* ---- requests -------------------------------------------------------- */

static struct kv_req *
req_new(struct kv *kv, enum kv_op op, kv_cb cb, void *arg)
{
	struct kv_req *req = xcalloc(1, sizeof(*req));

	assert(kv != NULL && cb != NULL && !kv->closing);
	req->kv = kv;
	req->op = op;
	req->cb = cb;
	req->arg = arg;
	req->state = KV_RS_QUEUED;
	req->early_status = KV_OK;
	kv->inflight++;
	return req;
}

/* Check the common arguments; NULL if fine, else why not. */
static const char *
check_key(const void *key, size_t klen)
{
	if (key == NULL || klen == 0)
		return "empty key";
	if (klen > KV_KEY_MAX)
		return "key too long";
	return NULL;
}

/* Check, count and hand the request to the backend (or refuse it). */
static struct kv_req *
start(struct kv *kv, struct kv_req *req, const char *why)
{
	size_t bytes = req->a.klen + req->a.vlen;

	if (why == NULL && (kv->inflight > kv->max_inflight ||
	    kv->bytes_inflight + bytes > KV_BYTES_INFLIGHT_MAX))
		why = "busy";
	if (why != NULL) {
		kv_req_fail(req, KV_ERROR, why);
		return req;
	}
	req->bytes = bytes;
	kv->bytes_inflight += bytes;
	kv->ops->submit(kv, req);
	return req;
}

struct kv_req *
kv_get(struct kv *kv, const void *key, size_t klen, kv_cb cb, void *arg)
{
	struct kv_req *req = req_new(kv, KV_OP_GET, cb, arg);
	const char *why = check_key(key, klen);

	req->a.key = key;
	req->a.klen = why ? 0 : klen;
	return start(kv, req, why);
}

struct kv_req *
kv_set(struct kv *kv, const void *key, size_t klen, const void *val,
    size_t vlen, unsigned ttl, unsigned flags, kv_cb cb, void *arg)
{
	struct kv_req *req = req_new(kv, KV_OP_SET, cb, arg);
	const char *why = check_key(key, klen);

	if (why == NULL && vlen > KV_VALUE_MAX)
		why = "value too large";
	if (why == NULL && val == NULL && vlen > 0)
		why = "no value";
	if (why == NULL && ttl > KV_TTL_MAX)
		why = "ttl too long";
	if (why == NULL && (flags & ~(unsigned)KV_NX) != 0)
		why = "unknown flags";
	if (why == NULL) {
		req->a.key = key;
		req->a.klen = klen;
		req->a.val = val != NULL ? val : "";
		req->a.vlen = vlen;
		req->a.ttl = ttl;
		req->a.flags = flags;
	}
	return start(kv, req, why);
}

struct kv_req *
kv_incr(struct kv *kv, const void *key, size_t klen, long long delta,
    unsigned ttl_on_create, kv_cb cb, void *arg)
{
	struct kv_req *req = req_new(kv, KV_OP_INCR, cb, arg);
	const char *why = check_key(key, klen);

	if (why == NULL && ttl_on_create > KV_TTL_MAX)
		why = "ttl too long";
	if (why == NULL) {
		req->a.key = key;
		req->a.klen = klen;
		req->a.delta = delta;
		req->a.ttl = ttl_on_create;
	}
	return start(kv, req, why);
}

struct kv_req *
kv_del(struct kv *kv, const void *key, size_t klen, kv_cb cb, void *arg)
{
	struct kv_req *req = req_new(kv, KV_OP_DEL, cb, arg);
	const char *why = check_key(key, klen);

	req->a.key = key;
	req->a.klen = why ? 0 : klen;
	return start(kv, req, why);
}

struct kv_req *
kv_gcra(struct kv *kv, const void *key, size_t klen, double rate,
    unsigned burst, unsigned cost, kv_cb cb, void *arg)
{
	struct kv_req *req = req_new(kv, KV_OP_GCRA, cb, arg);
	const char *why = check_key(key, klen);
	double interval = 0;

	if (why == NULL && (!isfinite(rate) || rate < KV_GCRA_RATE_MIN ||
	    rate > KV_GCRA_RATE_MAX))
		why = "rate out of range";
	if (why == NULL && (burst == 0 || burst > KV_GCRA_BURST_MAX))
		why = "burst out of range";
	if (why == NULL && cost > burst)
		why = "cost exceeds burst";
	if (why == NULL) {
		interval = nearbyint(1e6 / rate);
		/* The whole burst must fit the TTL bound (and a double). */
		if (interval * burst > 1e6 * KV_TTL_MAX)
			why = "burst / rate too long";
	}
	if (why == NULL) {
		req->a.key = key;
		req->a.klen = klen;
		req->a.interval_us = (int64_t)interval;
		req->a.burst = burst;
		req->a.cost = cost;
	}
	return start(kv, req, why);
}

void
kv_cancel(struct kv_req *req)
{
	struct kv *kv;

	if (req == NULL || req->cancelled)
		return;
	kv = req->kv;
	req->cancelled = true;
	switch (req->state) {
	case KV_RS_QUEUED:
		TAILQ_REMOVE(&kv->queue, req, entry);
		kv_req_free(req);
		break;
	case KV_RS_SENT:
		kv->ops->cancel(kv, req);
		break;
	case KV_RS_ANSWERING:
		/* Inside its own callback: it is freed when that returns. */
		break;
	}
}

/* ---- the deferred queue ---------------------------------------------- */

static void
kick(struct kv *kv)
{
	if (!ev_is_active(&kv->kick)) {
		ev_timer_set(&kv->kick, 0., 0.);
		ev_timer_start(kv->loop, &kv->kick);
	}
}

void
kv_req_queue(struct kv_req *req)
{
	struct kv *kv = req->kv;

	req->state = KV_RS_QUEUED;
	req->seq = ++kv->seq;
	TAILQ_INSERT_TAIL(&kv->queue, req, entry);
	kick(kv);
}

void
kv_req_fail(struct kv_req *req, enum kv_status status, const char *error)
{
	assert(status != KV_OK && status != KV_NOTFOUND);
	req->early_status = status;
	snprintf(req->early_error, sizeof(req->early_error), "%s", error);
	kv_req_queue(req);
}

static void
kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kv *kv = w->data;
	uint64_t mark = kv->seq;
	struct kv_req *req;

	(void)loop;
	(void)revents;
	while ((req = TAILQ_FIRST(&kv->queue)) != NULL && req->seq <= mark) {
		TAILQ_REMOVE(&kv->queue, req, entry);
		req->state = KV_RS_ANSWERING;
		if (req->early_status != KV_OK) {
			struct kv_result res = {
				.status = req->early_status,
				.error = req->early_error,
			};

			kv_req_answer(req, &res);
			kv_req_free(req);
		} else {
			kv->ops->run(kv, req);
		}
	}
	if (!TAILQ_EMPTY(&kv->queue))
		kick(kv);
}

void
kv_req_answer(struct kv_req *req, const struct kv_result *res)
{
	struct kv *kv = req->kv;

	if (req->cancelled || kv->closing)
		return;
	req->state = KV_RS_ANSWERING;
	kv->depth++;
	req->cb(req->arg, res);
	kv->depth--;
}

void
kv_req_free(struct kv_req *req)
{
	struct kv *kv = req->kv;

	assert(kv->inflight > 0 && kv->bytes_inflight >= req->bytes);
	kv->inflight--;
	kv->bytes_inflight -= req->bytes;
	free(req->copy);
	free(req);
}

/* ---- shared helpers -------------------------------------------------- */

bool
kv_gcra_step(int64_t now, int64_t tat, const struct kv_args *a,
    int64_t *new_tat, struct kv_result *res)
{
	int64_t t = a->interval_us, allow_at, diff;

	if (tat < now)
		tat = now;
	/*
	 * A stored tat is at most now + burst * t, unless the clock went
	 * back: then forget the difference instead of refusing for as long.
	 */
	if (tat > now + (int64_t)a->burst * t)
		tat = now + (int64_t)a->burst * t;
	*new_tat = tat + (int64_t)a->cost * t;
	allow_at = *new_tat - (int64_t)a->burst * t;
	diff = now - allow_at;
	res->status = KV_OK;
	if (diff < 0) {
		res->allowed = false;
		res->retry_after = (double)-diff / 1e6;
		res->remaining = 0;
		return false;
	}
	res->allowed = true;
	res->retry_after = 0;
	res->remaining = diff / t;
	return true;
}

int
kv_parse_ll(const char *s, size_t len, long long *out)
{
	unsigned long long v = 0, limit;
	bool neg = false;
	size_t i = 0;

	if (len > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	/* Redis's string2ll: no sign alone, no leading zero, no "-0". */
	if (i == len || (s[i] == '0' && (len - i > 1 || neg)))
		return -1;
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (limit - (unsigned)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 0;
}
