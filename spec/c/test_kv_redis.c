/*
 * test_kv_redis.c — the kv store on Redis (src/kv/kv_redis.c), built with
 * ASan and UBSan and run by spec/unit/kv_spec.lua:
 *
 *	test_kv_redis live HOST:PORT SOCKET	a real redis-server (peers.redis)
 *	test_kv_redis fake			a fake Redis in this process
 *	test_kv_redis outage HOST:PORT		the spec stops/starts the peer
 *
 * live: the cases shared with LMDB (kv_harness.h), two handles on one
 * Redis acting as one (NX, counter, GCRA), prefix and db, a unix socket,
 * values stored by others that are too big or of the wrong type, and
 * replies of cancelled requests dropped.
 *
 * fake (test_kv_fake.h): a listener on 127.0.0.1 that answers every
 * command with a chosen reply: replies of the wrong type, protocol
 * garbage, a refused AUTH, silence (command and connect timeouts).
 *
 * outage: the driver prints "# need stop|start|pause|resume" and waits
 * (at most KVR_SIGNAL_WAIT s) for SIGUSR1, sent by the spec once it
 * stopped, restarted (same port), SIGSTOPped or SIGCONTed redis-server.
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>

#include "kv_harness.h"
#include "util/workq.h"

#define KVR_SIGNAL_WAIT		30.0
#define KVR_RECONNECT_WAIT	15.0

static const char	*addr;		/* HOST:PORT */
static const char	*sock;		/* unix socket path */

static struct kv *
open_redis(const char *where, const char *prefix, int db, double cmd_timeout,
    unsigned inflight)
{
	char err[256];
	struct kv_config cfg = {
		.backend = "redis",
		.redis = where,
		.prefix = prefix,
		.db = db,
		.command_timeout = cmd_timeout,
		.connect_timeout = cmd_timeout,
		.max_inflight = inflight,
	};
	struct kv *kv;

	if ((kv = kv_open(kvh_loop, &cfg, err, sizeof(err))) == NULL)
		unit_fail(__FILE__, __LINE__, "kv_open %s: %s", where, err);
	CHECK_STR(kv_backend_name(kv), "redis");
	return kv;
}

#include "test_kv_fake.h"

#define SHARED(fn) static void						\
redis_##fn(void)							\
{									\
	struct kv *kv = open_redis(addr, #fn ":", 0, 0, 0);		\
	kvh_case_##fn(kv);						\
	kv_close(kv);							\
}
SHARED(get_set)
SHARED(ttl)
SHARED(nx)
SHARED(incr)
SHARED(incr_errors)
SHARED(del)
SHARED(gcra)
SHARED(bounds)
SHARED(cancel)
SHARED(chain)

static void
redis_busy(void)
{
	struct kv *kv = open_redis(addr, "busy:", 0, 0, 4);

	kvh_case_busy(kv);
	kv_close(kv);
}

static void
redis_close_pending(void)
{
	kvh_case_close_pending(open_redis(addr, "close:", 0, 0, 0));
}

/* One command on a blocking connection of our own (test setup only). */
static void
raw(const char *fmt, ...)
{
	char host[64];
	const char *colon = strrchr(addr, ':');
	struct timeval tv = { 5, 0 };
	redisContext *c;
	redisReply *r;
	va_list ap;

	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
	CHECK(c != NULL && c->err == 0);
	redisSetTimeout(c, tv);
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	CHECK(r != NULL && r->type != REDIS_REPLY_ERROR);
	freeReplyObject(r);
	redisFree(c);
}

/* Two nodes on one Redis: one NX key, one counter, one limit. */
static void
redis_two_nodes(void)
{
	struct kv *n1 = open_redis(addr, "mx:", 0, 0, 0);
	struct kv *n2 = open_redis(addr, "mx:", 0, 0, 0);
	struct cap *c;
	int allowed = 0;

	REQ(c, kv_set(n1, S("grey:1.2.3.4"), S("t0"), 60, KV_NX, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(c->set);
	REQ(c, kv_set(n2, S("grey:1.2.3.4"), S("t1"), 60, KV_NX, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(!c->set);
	CHECK_MEM(c->value, c->vlen, "t0", 2);
	REQ(c, kv_incr(n1, S("count"), 2, 60, kvh_cb, c));
	WAIT(c, KV_OK);
	REQ(c, kv_incr(n2, S("count"), 3, 60, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, 5);
	/* A burst of 4 shared: alternate nodes; the fifth is refused. */
	for (int i = 0; i < 5; i++) {
		REQ(c, kv_gcra(i % 2 ? n2 : n1, S("rate"), 0.1, 4, 1, kvh_cb,
		    c));
		WAIT(c, KV_OK);
		allowed += c->allowed;
	}
	CHECK_INT(allowed, 4);
	CHECK(c->retry_after > 9 && c->retry_after <= 10);
	kv_close(n1);
	kv_close(n2);
}

/* The prefix is part of the key; the db number picks another database. */
static void
redis_prefix_db(void)
{
	struct kv *a = open_redis(addr, "appA:", 0, 0, 0);
	struct kv *none = open_redis(addr, NULL, 0, 0, 0);
	struct kv *db3 = open_redis(addr, "appA:", 3, 0, 0);
	struct cap *c;

	REQ(c, kv_set(a, S("k"), S("v"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	REQ(c, kv_get(none, S("appA:k"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_MEM(c->value, c->vlen, "v", 1);
	REQ(c, kv_get(none, S("k"), kvh_cb, c));
	WAIT(c, KV_NOTFOUND);
	REQ(c, kv_get(db3, S("k"), kvh_cb, c));
	WAIT(c, KV_NOTFOUND);
	kv_close(a);
	kv_close(none);
	kv_close(db3);
}

static void
redis_unix_socket(void)
{
	char where[200];
	struct kv *kv;
	struct cap *c;

	snprintf(where, sizeof(where), "unix:%s", sock);
	kv = open_redis(where, "unix:", 0, 0, 0);
	REQ(c, kv_incr(kv, S("n"), 7, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, 7);
	kv_close(kv);
}

/* Keys written by someone else: too big to read, or not a string. */
static void
redis_foreign_values(void)
{
	struct kv *kv = open_redis(addr, "foreign:", 0, 0, 0);
	struct cap *c;

	raw("SETRANGE foreign:huge %d x", KV_VALUE_MAX);	/* MAX + 1 bytes */
	raw("HSET foreign:hash f v");
	REQ(c, kv_get(kv, S("huge"), kvh_cb, c));
	WAIT(c, KV_ERROR);
	CHECK(strstr(c->error, "stored value too large") != NULL);
	REQ(c, kv_set(kv, S("huge"), S("v"), 0, KV_NX, kvh_cb, c));
	WAIT(c, KV_ERROR);
	REQ(c, kv_get(kv, S("hash"), kvh_cb, c));
	WAIT(c, KV_ERROR);
	CHECK(strstr(c->error, "WRONGTYPE") != NULL);
	REQ(c, kv_incr(kv, S("hash"), 1, 0, kvh_cb, c));
	WAIT(c, KV_ERROR);
	REQ(c, kv_gcra(kv, S("hash"), 1, 1, 1, kvh_cb, c));
	WAIT(c, KV_ERROR);
	/* Still fine for the next request. */
	REQ(c, kv_del(kv, S("hash"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, 1);
	kv_close(kv);
}

/*
 * Requests cancelled after they were written: their replies arrive and
 * are dropped, and the next answers still match their requests.
 */
static void
redis_cancel_after_send(void)
{
	struct kv *kv = open_redis(addr, "tomb:", 0, 0, 0);
	struct cap *c[50], *last;
	struct kv_req *r[50];
	char key[16];

	REQ(last, kv_set(kv, S("b"), S("B"), 0, 0, kvh_cb, last));
	WAIT(last, KV_OK);
	/* Redis holds every client's commands for 500 ms (Redis >= 3.2). */
	raw("CLIENT PAUSE 500");
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "a%d", i);
		r[i] = REQ(c[i], kv_set(kv, S(key), S("A"), 0, 0, kvh_cb,
		    c[i]));
	}
	kvh_sleep(0.05);	/* written to the socket, not answered */
	for (int i = 0; i < 50; i++)
		CHECK_INT(c[i]->calls, 0);
	for (int i = 0; i < 50; i += 2)
		kv_cancel(r[i]);
	REQ(last, kv_get(kv, S("b"), kvh_cb, last));
	WAIT(last, KV_OK);
	CHECK_MEM(last->value, last->vlen, "B", 1);
	for (int i = 0; i < 50; i++)
		CHECK_INT(c[i]->calls, i % 2);
	/* Cancelled, yet done in Redis: hiredis cannot unsend. */
	REQ(last, kv_get(kv, S("a0"), kvh_cb, last));
	WAIT(last, KV_OK);
	/* Tombstones still in flight at close are freed too. */
	for (int i = 0; i < 10; i++)
		kv_cancel(REQ(c[i], kv_get(kv, S("b"), kvh_cb, c[i])));
	kv_close(kv);
}

/* Nothing listens: requests fail fast with KV_UNAVAILABLE. */
static void
redis_refused(void)
{
	struct kv *kv = open_redis(fake_unused_addr(), NULL, 0, 5, 0);
	struct cap *c;
	double t0 = ev_time();

	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_UNAVAILABLE);
	CHECK(c->at - t0 < 1.0);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_UNAVAILABLE);
	kv_close(kv);
}

static void
redis_bad_config(void)
{
	static const char *bad[] = { "localhost.example:6379", "127.0.0.1:0",
	    "127.0.0.1:70000", "127.0.0.1:", "[::1", "unix:relative", "",
	    "1.2.3.4:5x" };
	struct kv_config cfg = { .backend = "redis" };
	char err[256], prefix[KV_PREFIX_MAX + 2];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.redis = bad[i];
		err[0] = '\0';
		if (kv_open(kvh_loop, &cfg, err, sizeof(err)) != NULL)
			unit_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
		CHECK(err[0] != '\0');
	}
	cfg.redis = NULL;
	CHECK(kv_open(kvh_loop, &cfg, err, sizeof(err)) == NULL);
	cfg.redis = addr;
	cfg.db = -1;
	CHECK(kv_open(kvh_loop, &cfg, err, sizeof(err)) == NULL);
	cfg.db = 0;
	cfg.command_timeout = -1;
	CHECK(kv_open(kvh_loop, &cfg, err, sizeof(err)) == NULL);
	cfg.command_timeout = 0;
	memset(prefix, 'p', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	cfg.prefix = prefix;
	CHECK(kv_open(kvh_loop, &cfg, err, sizeof(err)) == NULL);
}

static const struct unit_case live_cases[] = {
	{ "redis get and set, binary values", redis_get_set },
	{ "redis ttl expires a key", redis_ttl },
	{ "redis set NX sets once and returns the value there", redis_nx },
	{ "redis incr counts and sets the ttl only on create", redis_incr },
	{ "redis incr of a non-integer or past the range is an error",
	    redis_incr_errors },
	{ "redis del says whether a key was removed", redis_del },
	{ "redis gcra allows burst then refuses with retry_after",
	    redis_gcra },
	{ "redis keys and values at their bound pass and one more is refused",
	    redis_bounds },
	{ "redis cancelled requests never call back", redis_cancel },
	{ "redis past max_inflight is busy", redis_busy },
	{ "redis a callback may make the next request", redis_chain },
	{ "redis close with requests pending calls nothing back",
	    redis_close_pending },
	{ "redis two handles act as one node (NX, counter, gcra)",
	    redis_two_nodes },
	{ "redis the prefix is part of the key and db selects a database",
	    redis_prefix_db },
	{ "redis over a unix socket", redis_unix_socket },
	{ "redis values too big or of the wrong type are errors",
	    redis_foreign_values },
	{ "redis replies to cancelled requests are dropped",
	    redis_cancel_after_send },
	{ "redis nothing listening is unavailable at once", redis_refused },
	{ "redis bad configs are refused", redis_bad_config },
};

/* ---- outage: the spec stops and starts the peer ---------------------- */

static bool	got_signal;

static void
usr1_cb(struct ev_loop *l, ev_signal *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	got_signal = true;
}

/* Ask the spec for an action and wait until it says it is done. */
static void
need(const char *what)
{
	double end = ev_time() + KVR_SIGNAL_WAIT;

	got_signal = false;
	printf("# need %s\n", what);
	fflush(stdout);
	while (!got_signal && ev_time() < end)
		kvh_sleep(0.02);
	if (!got_signal)
		unit_fail(__FILE__, __LINE__, "no signal after need %s", what);
}

/* Poll until a request is answered OK or NOTFOUND again. */
static void
wait_reconnected(struct kv *kv)
{
	double end = ev_time() + KVR_RECONNECT_WAIT;
	size_t mark = unit_mark();
	struct cap *c;

	for (;;) {
		REQ(c, kv_get(kv, S("k"), kvh_cb, c));
		if (!kvh_wait_all(&c, 1, KVH_WAIT))
			unit_fail(__FILE__, __LINE__, "no answer");
		if (c->status == KV_OK || c->status == KV_NOTFOUND)
			break;
		if (ev_time() > end)
			unit_fail(__FILE__, __LINE__, "not reconnected: %s",
			    c->error);
		unit_release(mark);
		kvh_sleep(0.1);
	}
	unit_release(mark);
}

static void
outage_stop_start(void)
{
	struct kv *kv = open_redis(addr, "out:", 0, 5, 0);
	struct cap *c;
	double t0;

	REQ(c, kv_set(kv, S("k"), S("v"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	need("stop");
	/* Well before the 5 s command timeout, and nothing queues. */
	t0 = ev_time();
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_UNAVAILABLE);
	CHECK(c->at - t0 < 1.0);
	for (int i = 0; i < 3; i++) {
		t0 = ev_time();
		REQ(c, kv_incr(kv, S("n"), 1, 0, kvh_cb, c));
		WAIT(c, KV_UNAVAILABLE);
		CHECK(c->at - t0 < 1.0);
		kvh_sleep(0.2);
	}
	need("start");
	wait_reconnected(kv);
	REQ(c, kv_incr(kv, S("n"), 1, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, 1);	/* a fresh Redis: no persistence */
	kv_close(kv);
}

static void
outage_pause_resume(void)
{
	struct kv *kv = open_redis(addr, "pause:", 0, 0.5, 0);
	struct cap *c, *d;

	REQ(c, kv_set(kv, S("k"), S("v"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	need("pause");
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	kvh_sleep(0.1);		/* so that c's timer fires first */
	REQ(d, kv_get(kv, S("k"), kvh_cb, d));
	WAIT(c, KV_TIMEOUT);
	/* The one behind it goes with the connection. */
	WAIT(d, KV_UNAVAILABLE);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_UNAVAILABLE);
	need("resume");
	wait_reconnected(kv);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_OK);
	kv_close(kv);
}

static const struct unit_case outage_cases[] = {
	{ "redis stopped is unavailable at once and reconnects when back",
	    outage_stop_start },
	{ "redis hung times out, fails fast, and reconnects when it answers",
	    outage_pause_resume },
};

int
main(int argc, char **argv)
{
	ev_signal usr1;
	int rc = 2;

	kvh_loop = ev_default_loop(0);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && strcmp(argv[1], "live") == 0) {
		addr = argv[2];
		sock = argv[3];
		rc = unit_run(live_cases, sizeof(live_cases) /
		    sizeof(live_cases[0]));
	} else if (argc == 2 && strcmp(argv[1], "fake") == 0) {
		rc = unit_run(fake_cases, sizeof(fake_cases) /
		    sizeof(fake_cases[0]));
	} else if (argc == 3 && strcmp(argv[1], "outage") == 0) {
		addr = argv[2];
		ev_signal_init(&usr1, usr1_cb, SIGUSR1);
		ev_signal_start(kvh_loop, &usr1);
		rc = unit_run(outage_cases, sizeof(outage_cases) /
		    sizeof(outage_cases[0]));
		ev_signal_stop(kvh_loop, &usr1);
	} else {
		fprintf(stderr, "usage: test_kv_redis live HOST:PORT SOCKET |"
		    " fake | outage HOST:PORT\n");
	}
	ev_loop_destroy(kvh_loop);
	printf("# done rc=%d\n", rc);
	return rc;
}
