/*
 * kv_harness.h — what the kv drivers (test_kv_lmdb.c, test_kv_redis.c)
 * share: a loop, answers captured by value, waits with a bound, and the
 * cases every backend must pass (kvh_case_*), each given a fresh store.
 *
 * Every request goes through REQ(), which notes that a request function
 * is running: an answer given from inside it (synchronously) fails the
 * case.  Every wait runs the loop with a watchdog timer, so nothing here
 * waits longer than its timeout.
 */
#ifndef LUASMTPD_KV_HARNESS_H
#define LUASMTPD_KV_HARNESS_H

#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kv/kv_int.h"	/* kv_parse_ll */
#include "unit.h"

#define KVH_WAIT	5.0	/* seconds an answer may take in a test */

static struct ev_loop	*kvh_loop;
static bool		 kvh_in_request;

/* One request's answer, copied. */
struct cap {
	int		 calls;
	bool		 sync;		/* answered inside the request call */
	enum kv_status	 status;
	char		*value;		/* case-owned copy, or NULL */
	size_t		 vlen;
	long long	 integer;
	bool		 set, allowed;
	double		 retry_after;
	long long	 remaining;
	char		 error[KV_ERROR_TEXT_MAX];
	double		 at;		/* ev_time() of the answer */
};

static void
kvh_cb(void *arg, const struct kv_result *r)
{
	struct cap *c = arg;

	c->calls++;
	c->sync = c->sync || kvh_in_request;
	c->status = r->status;
	c->value = NULL;
	c->vlen = r->vlen;
	if (r->value != NULL)
		c->value = unit_dup(r->value, r->vlen);
	c->integer = r->integer;
	c->set = r->set;
	c->allowed = r->allowed;
	c->retry_after = r->retry_after;
	c->remaining = r->remaining;
	snprintf(c->error, sizeof(c->error), "%s", r->error ? r->error : "");
	c->at = ev_time();
}

static struct cap *
kvh_cap(void)
{
	struct cap *c = unit_alloc(sizeof(*c));

	memset(c, 0, sizeof(*c));
	return c;
}

/* Make a request with a fresh capture c: REQ(c, kv_get(kv, ..., kvh_cb, c)) */
#define REQ(c, call) kvh_req_done(((c) = kvh_cap(), kvh_in_request = true, \
	(call)))
static inline struct kv_req *
kvh_req_done(struct kv_req *req)
{
	kvh_in_request = false;
	return req;
}

static bool	kvh_fired;

static void
kvh_watchdog_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	kvh_fired = true;
}

/* Run the loop until every cap in cs[0..n) answered, or timeout. */
static bool
kvh_wait_all(struct cap **cs, size_t n, double timeout)
{
	ev_timer wd;
	bool done = false;

	ev_timer_init(&wd, kvh_watchdog_cb, timeout, 0.);
	kvh_fired = false;
	ev_timer_start(kvh_loop, &wd);
	while (!kvh_fired) {
		done = true;
		for (size_t i = 0; i < n; i++)
			done = done && cs[i]->calls > 0;
		if (done)
			break;
		ev_run(kvh_loop, EVRUN_ONCE);
	}
	ev_timer_stop(kvh_loop, &wd);
	return done;
}

/* Run the loop for s seconds. */
static void
kvh_sleep(double s)
{
	ev_timer wd;

	ev_timer_init(&wd, kvh_watchdog_cb, s, 0.);
	kvh_fired = false;
	ev_timer_start(kvh_loop, &wd);
	while (!kvh_fired)
		ev_run(kvh_loop, EVRUN_ONCE);
}

/* Wait for c's one answer (asynchronous) and check its status. */
#define WAIT(c, want) do {						\
	struct cap *w_ = (c);						\
	if (!kvh_wait_all(&w_, 1, KVH_WAIT))				\
		unit_fail(__FILE__, __LINE__, "no answer to %s", #c);	\
	if (w_->sync)							\
		unit_fail(__FILE__, __LINE__, "%s answered synchronously", #c); \
	if (w_->status != (want))					\
		unit_fail(__FILE__, __LINE__, "%s is %s (%s), want %s", #c, \
		    kv_status_name(w_->status), w_->error,		\
		    kv_status_name(want));				\
} while (0)

#define S(s)	(s), strlen(s)

/* ---- the cases every backend passes; kv is fresh and empty ---------- */

static void
kvh_case_get_set(struct kv *kv)
{
	static const char bin[] = "a\0b\r\n\xff";
	struct cap *c;

	REQ(c, kv_get(kv, S("missing"), kvh_cb, c));
	WAIT(c, KV_NOTFOUND);
	CHECK(c->value == NULL);
	REQ(c, kv_set(kv, S("k"), bin, sizeof(bin), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(c->set);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_MEM(c->value, c->vlen, bin, sizeof(bin));
	REQ(c, kv_set(kv, S("k"), "", 0, 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->vlen, 0);
	CHECK_INT(c->calls, 1);
}

static void
kvh_case_ttl(struct kv *kv)
{
	struct cap *a, *b, *c;

	REQ(a, kv_set(kv, S("short"), S("v"), 1, 0, kvh_cb, a));
	REQ(b, kv_set(kv, S("long"), S("v"), 100, 0, kvh_cb, b));
	WAIT(a, KV_OK);
	WAIT(b, KV_OK);
	REQ(c, kv_get(kv, S("short"), kvh_cb, c));
	WAIT(c, KV_OK);
	kvh_sleep(1.3);
	REQ(c, kv_get(kv, S("short"), kvh_cb, c));
	WAIT(c, KV_NOTFOUND);
	REQ(c, kv_get(kv, S("long"), kvh_cb, c));
	WAIT(c, KV_OK);
	/* A plain set drops the TTL. */
	REQ(c, kv_set(kv, S("long"), S("w"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
}

static void
kvh_case_nx(struct kv *kv)
{
	struct cap *c;

	REQ(c, kv_set(kv, S("nx"), S("first"), 0, KV_NX, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(c->set);
	REQ(c, kv_set(kv, S("nx"), S("second"), 0, KV_NX, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(!c->set);
	CHECK_MEM(c->value, c->vlen, "first", 5);
	REQ(c, kv_get(kv, S("nx"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_MEM(c->value, c->vlen, "first", 5);
	/* NX with a TTL: set again once the first expired. */
	REQ(c, kv_set(kv, S("nxt"), S("a"), 1, KV_NX, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(c->set);
	kvh_sleep(1.3);
	REQ(c, kv_set(kv, S("nxt"), S("b"), 1, KV_NX, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(c->set);
}

static void
kvh_case_incr(struct kv *kv)
{
	struct cap *c;

	REQ(c, kv_incr(kv, S("n"), 1, 1, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, 1);
	/* A later ttl_on_create does not extend the window. */
	REQ(c, kv_incr(kv, S("n"), 41, 100, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, 42);
	REQ(c, kv_get(kv, S("n"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_MEM(c->value, c->vlen, "42", 2);
	kvh_sleep(1.3);
	REQ(c, kv_incr(kv, S("n"), -5, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, -5);
	REQ(c, kv_get(kv, S("n"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_MEM(c->value, c->vlen, "-5", 2);
	/* No TTL when created without one: still there. */
	kvh_sleep(0.1);
	REQ(c, kv_incr(kv, S("n"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, -5);
}

static void
kvh_case_incr_errors(struct kv *kv)
{
	struct cap *c;

	REQ(c, kv_set(kv, S("word"), S("abc"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	REQ(c, kv_incr(kv, S("word"), 1, 0, kvh_cb, c));
	WAIT(c, KV_ERROR);
	REQ(c, kv_set(kv, S("big"), S("9223372036854775807"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	REQ(c, kv_incr(kv, S("big"), 1, 0, kvh_cb, c));
	WAIT(c, KV_ERROR);
	REQ(c, kv_get(kv, S("big"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_MEM(c->value, c->vlen, "9223372036854775807", 19);
}

static void
kvh_case_del(struct kv *kv)
{
	struct cap *c;

	REQ(c, kv_set(kv, S("d"), S("v"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	REQ(c, kv_del(kv, S("d"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, 1);
	REQ(c, kv_del(kv, S("d"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, 0);
	REQ(c, kv_get(kv, S("d"), kvh_cb, c));
	WAIT(c, KV_NOTFOUND);
}

/* burst requests pass at once, the next waits one interval (1/rate). */
static void
kvh_case_gcra(struct kv *kv)
{
	struct cap *c;
	long long n;

	for (unsigned i = 0; i < 5; i++) {
		REQ(c, kv_gcra(kv, S("rl"), 2.0, 5, 1, kvh_cb, c));
		WAIT(c, KV_OK);
		if (!c->allowed)
			unit_fail(__FILE__, __LINE__, "request %u refused", i + 1);
		CHECK_INT(c->remaining, 4 - i);
		CHECK(c->retry_after == 0);
	}
	REQ(c, kv_gcra(kv, S("rl"), 2.0, 5, 1, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(!c->allowed);
	CHECK_INT(c->remaining, 0);
	/* One interval (0.5 s), less the time the five took. */
	if (!(c->retry_after > 0.3 && c->retry_after <= 0.5))
		unit_fail(__FILE__, __LINE__, "retry_after %g", c->retry_after);
	/* A refusal costs nothing: after retry_after one more passes. */
	kvh_sleep(c->retry_after + 0.02);
	REQ(c, kv_gcra(kv, S("rl"), 2.0, 5, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(c->allowed);
	CHECK_INT(c->remaining, 1);
	REQ(c, kv_gcra(kv, S("rl"), 2.0, 5, 1, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(c->allowed);
	REQ(c, kv_gcra(kv, S("rl"), 2.0, 5, 1, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(!c->allowed);
	/* A cost of several at once, and a cost over what is left. */
	REQ(c, kv_gcra(kv, S("rl2"), 1.0, 5, 3, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(c->allowed);
	CHECK_INT(c->remaining, 2);
	REQ(c, kv_gcra(kv, S("rl2"), 1.0, 5, 3, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(!c->allowed);
	if (!(c->retry_after > 0.8 && c->retry_after <= 1.0))
		unit_fail(__FILE__, __LINE__, "retry_after %g", c->retry_after);
	/* The state is decimal text (microseconds), as in both backends. */
	REQ(c, kv_get(kv, S("rl2"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(kv_parse_ll(c->value, c->vlen, &n) == 0);
	CHECK(n > 1000000000000000LL);
	/* A state left by a clock that went back costs one burst at most. */
	REQ(c, kv_set(kv, S("rl4"), S("9000000000000000"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	REQ(c, kv_gcra(kv, S("rl4"), 1.0, 2, 1, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(!c->allowed);
	if (!(c->retry_after > 0.9 && c->retry_after <= 1.0))
		unit_fail(__FILE__, __LINE__, "retry_after %g", c->retry_after);
	/* Arguments out of range. */
	REQ(c, kv_gcra(kv, S("rl3"), 1.0, 2, 3, kvh_cb, c));
	WAIT(c, KV_ERROR);
	CHECK_STR(c->error, "cost exceeds burst");
	REQ(c, kv_gcra(kv, S("rl3"), 0.0, 2, 1, kvh_cb, c));
	WAIT(c, KV_ERROR);
	REQ(c, kv_gcra(kv, S("rl3"), NAN, 2, 1, kvh_cb, c));
	WAIT(c, KV_ERROR);
	REQ(c, kv_gcra(kv, S("rl3"), 1.0, 0, 0, kvh_cb, c));
	WAIT(c, KV_ERROR);
}

/* Keys at KV_KEY_MAX and values at KV_VALUE_MAX pass, one more is refused. */
static void
kvh_case_bounds(struct kv *kv)
{
	char *key = unit_alloc(KV_KEY_MAX + 1), *val;
	struct cap *c, *d;

	memset(key, 'k', KV_KEY_MAX + 1);
	REQ(c, kv_set(kv, key, KV_KEY_MAX, S("max"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	REQ(c, kv_set(kv, key, KV_KEY_MAX + 1, S("over"), 0, 0, kvh_cb, c));
	WAIT(c, KV_ERROR);
	CHECK_STR(c->error, "key too long");
	/* Long keys that differ only in their last byte stay apart. */
	key[KV_KEY_MAX - 1] = 'z';
	REQ(c, kv_get(kv, key, KV_KEY_MAX, kvh_cb, c));
	WAIT(c, KV_NOTFOUND);
	key[KV_KEY_MAX - 1] = 'k';
	REQ(c, kv_get(kv, key, KV_KEY_MAX, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_MEM(c->value, c->vlen, "max", 3);
	REQ(c, kv_get(kv, key, 0, kvh_cb, c));
	WAIT(c, KV_ERROR);
	CHECK_STR(c->error, "empty key");

	val = unit_alloc(KV_VALUE_MAX + 1);
	memset(val, 'v', KV_VALUE_MAX + 1);
	REQ(c, kv_set(kv, S("big"), val, KV_VALUE_MAX, 0, 0, kvh_cb, c));
	REQ(d, kv_set(kv, S("bigger"), val, KV_VALUE_MAX + 1, 0, 0, kvh_cb, d));
	WAIT(c, KV_OK);
	WAIT(d, KV_ERROR);
	CHECK_STR(d->error, "value too large");
	REQ(c, kv_get(kv, S("big"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->vlen, KV_VALUE_MAX);
	REQ(c, kv_set(kv, S("t"), S("v"), KV_TTL_MAX + 1, 0, kvh_cb, c));
	WAIT(c, KV_ERROR);
	REQ(c, kv_set(kv, S("t"), S("v"), 0, 0x80, kvh_cb, c));
	WAIT(c, KV_ERROR);
}

/* A cancelled request never calls back, whatever its state. */
static void
kvh_case_cancel(struct kv *kv)
{
	struct cap *c[8], *last;
	struct kv_req *r[8];

	REQ(c[0], kv_set(kv, S("c"), S("v"), 0, 0, kvh_cb, c[0]));
	r[1] = REQ(c[1], kv_get(kv, S("c"), kvh_cb, c[1]));
	r[2] = REQ(c[2], kv_incr(kv, S("ci"), 1, 0, kvh_cb, c[2]));
	/* (A cancelled request may still be done: Redis got it.) */
	r[3] = REQ(c[3], kv_del(kv, S("cd"), kvh_cb, c[3]));
	r[4] = REQ(c[4], kv_gcra(kv, S("cg"), 1, 1, 1, kvh_cb, c[4]));
	r[5] = REQ(c[5], kv_get(kv, S(""), kvh_cb, c[5]));	/* refused */
	for (int i = 1; i < 6; i++)
		kv_cancel(r[i]);
	kv_cancel(NULL);
	REQ(last, kv_get(kv, S("c"), kvh_cb, last));
	WAIT(c[0], KV_OK);
	/* Answers come in order: the ones before the last are settled. */
	WAIT(last, KV_OK);
	CHECK_MEM(last->value, last->vlen, "v", 1);
	kvh_sleep(0.2);
	for (int i = 1; i < 6; i++)
		CHECK_INT(c[i]->calls, 0);
}

/* Past max_inflight (4 here) a request is refused as busy. */
static void
kvh_case_busy(struct kv *kv)
{
	struct cap *c[6];

	for (int i = 0; i < 5; i++)
		REQ(c[i], kv_incr(kv, S("b"), 1, 0, kvh_cb, c[i]));
	for (int i = 0; i < 4; i++)
		WAIT(c[i], KV_OK);
	WAIT(c[4], KV_ERROR);
	CHECK_STR(c[4]->error, "busy");
	/* Room again once answered. */
	REQ(c[5], kv_incr(kv, S("b"), 1, 0, kvh_cb, c[5]));
	WAIT(c[5], KV_OK);
	CHECK_INT(c[5]->integer, 5);
}

/* A callback may make the next request (chained work). */
struct chain {
	struct kv	*kv;
	int		 left;
	struct cap	*last;
};

static void
kvh_chain_cb(void *arg, const struct kv_result *r)
{
	struct chain *ch = arg;

	kvh_cb(ch->last, r);
	if (r->status == KV_OK && --ch->left > 0) {
		ch->last = kvh_cap();
		kv_incr(ch->kv, S("chain"), 1, 0, kvh_chain_cb, ch);
	}
}

static void
kvh_case_chain(struct kv *kv)
{
	struct chain ch = { kv, 10, kvh_cap() };
	struct cap *c;

	kv_incr(kv, S("chain"), 1, 0, kvh_chain_cb, &ch);
	for (int i = 0; i < 100 && ch.left > 0; i++)
		kvh_sleep(0.05);
	CHECK_INT(ch.left, 0);
	REQ(c, kv_get(kv, S("chain"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_MEM(c->value, c->vlen, "10", 2);
}

/* kv_close with requests pending: no callback, nothing leaks. */
static void
kvh_case_close_pending(struct kv *kv)
{
	struct cap *c[3];

	REQ(c[0], kv_set(kv, S("p"), S("v"), 0, 0, kvh_cb, c[0]));
	REQ(c[1], kv_get(kv, S("p"), kvh_cb, c[1]));
	REQ(c[2], kv_get(kv, S(""), kvh_cb, c[2]));
	kv_close(kv);
	kvh_sleep(0.1);
	for (int i = 0; i < 3; i++)
		CHECK_INT(c[i]->calls, 0);
}

#endif
