/*
 * kv_redis.c — the kv backend on Redis, through hiredis 0.14's async API
 * and its libev adapter (see kv.h for the connection's behaviour).
 *
 * Commands: GET, SET NX, INCR and the GCRA are Lua scripts run with EVAL
 * (atomic, one round trip, the key in KEYS[1] so Redis Cluster can route
 * it); plain SET and DEL are commands.  The scripts return only what is
 * bounded: a value is measured with STRLEN before it is sent, so a big
 * value stored by someone else costs an error, not a megabyte read.  The
 * GCRA takes the time from Redis (TIME) so that every node agrees; its
 * state is the theoretical arrival time in microseconds as decimal text
 * (string.format("%d"), exact below 2^53), which is what kv_lmdb.c
 * stores.  redis.replicate_commands() lets TIME precede a write on Redis
 * 3.2 to 4 (effects replication is the only mode from 7).
 *
 * Connection states: DOWN (no context; a retry timer runs), CONNECTING
 * (context made, AUTH/SELECT sent, a connect timer runs), READY.  Every
 * way a context can end goes through lost(), which forgets it first, so
 * that no request is ever written to a dying context: hiredis itself ends
 * a context on a connect error (on_connect, then our reply callbacks with
 * NULL) and on a read error or EOF (NULL replies, then on_disconnect); we
 * end it with drop() on a timeout, a refused AUTH/SELECT or kv_close.
 * Inside a hiredis callback redisAsyncFree() only marks the context and
 * hiredis frees it when the callback returns, before the loop runs any
 * timer; so when a request's timer fires, its context is r->ac.
 *
 * Owns: the context, the timers, copies of the address, password (wiped
 * at close) and prefix.  Requests written to Redis belong to hiredis's
 * callback list (privdata) until their reply callback, which answers and
 * frees them (cancelled ones silently).
 *
 * SECURITY: the host must be an IP address: hiredis resolves names with a
 * blocking getaddrinfo() on the loop.  Error texts from Redis are cut to
 * KV_ERROR_TEXT_MAX and escaped before they are logged.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#include "kv/kv_int.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define REDIS_PORT_DEFAULT	6379
#define REDIS_TIMEOUT_MAX	3600.0	/* seconds, for both timeouts */
#define REDIS_ARGS_MAX		8

enum redis_state {
	REDIS_DOWN,
	REDIS_CONNECTING,
	REDIS_READY,
};

struct kv_redis {
	struct kv		*kv;
	redisAsyncContext	*ac;
	enum redis_state	 state;
	bool			 failed;	/* a failure since the last READY */
	bool			 logged_down;
	char			 addr[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	char			 host[INET6_ADDRSTRLEN];
	int			 port;
	const char		*unix_path;	/* into addr, or NULL */
	char			*password;
	int			 db;
	double			 connect_timeout, command_timeout;
	char			 prefix[KV_PREFIX_MAX];
	size_t			 plen;
	unsigned		 setup_pending;	/* AUTH/SELECT replies awaited */
	double			 backoff;
	ev_timer		 connect_timer;
	ev_timer		 retry_timer;
};

static const char script_get[] =
	"local n = redis.call('STRLEN', KEYS[1])\n"
	"if n > tonumber(ARGV[1]) then\n"
	"  return redis.error_reply('stored value too large')\n"
	"end\n"
	"return redis.call('GET', KEYS[1])\n";

static const char script_setnx[] =
	"local ok\n"
	"if ARGV[2] ~= '0' then\n"
	"  ok = redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX')\n"
	"else\n"
	"  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')\n"
	"end\n"
	"if ok then return {1} end\n"
	"if redis.call('STRLEN', KEYS[1]) > tonumber(ARGV[3]) then\n"
	"  return redis.error_reply('stored value too large')\n"
	"end\n"
	"return {0, redis.call('GET', KEYS[1])}\n";

static const char script_incr[] =
	"local created = redis.call('EXISTS', KEYS[1]) == 0\n"
	"local v = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
	"if created and ARGV[2] ~= '0' then\n"
	"  redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
	"end\n"
	"return v\n";

/* The same step as kv_gcra_step() in kv.c; ARGV: interval_us burst cost. */
static const char script_gcra[] =
	"if redis.replicate_commands then redis.replicate_commands() end\n"
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local interval = tonumber(ARGV[1])\n"
	"local burst = tonumber(ARGV[2])\n"
	"local cost = tonumber(ARGV[3])\n"
	"local tat = tonumber(redis.call('GET', KEYS[1]) or '') or 0\n"
	"if tat < now then tat = now end\n"
	"if tat > now + burst * interval then tat = now + burst * interval end\n"
	"local new_tat = tat + cost * interval\n"
	"local allow_at = new_tat - burst * interval\n"
	"local diff = now - allow_at\n"
	"if diff < 0 then return {0, allow_at - now, 0} end\n"
	"if cost > 0 then\n"
	"  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX',\n"
	"    math.ceil((new_tat - now) / 1000))\n"
	"end\n"
	"return {1, 0, math.floor(diff / interval)}\n";

static void	redis_connect(struct kv_redis *);

/* ---- connection ------------------------------------------------------ */

/* No context any more: refuse requests, retry after a backoff. */
static void
down(struct kv_redis *r, const char *why)
{
	char ex[LOG_EXCERPT_BUFSZ(KV_ERROR_TEXT_MAX)];
	struct kv *kv = r->kv;

	ev_timer_stop(kv->loop, &r->connect_timer);
	r->state = REDIS_DOWN;
	r->failed = true;
	if (kv->closing)
		return;
	if (!r->logged_down) {
		log_warn(0, "kv redis down addr=%s reason=\"%s\"", r->addr,
		    log_excerpt(ex, why, strlen(why), KV_ERROR_TEXT_MAX));
		r->logged_down = true;
	}
	ev_timer_stop(kv->loop, &r->retry_timer);
	ev_timer_set(&r->retry_timer, r->backoff, 0.);
	ev_timer_start(kv->loop, &r->retry_timer);
	r->backoff = fmin(r->backoff * 2, KV_REDIS_BACKOFF_MAX);
}

/* The context ac is ending (or ended); forget it if it is ours. */
static void
lost(struct kv_redis *r, const redisAsyncContext *ac, const char *why)
{
	if (r->ac != ac || ac == NULL)
		return;
	r->ac = NULL;
	down(r, why);
}

/* End our context: its requests are answered (or dropped) with NULL. */
static void
drop(struct kv_redis *r, const char *why)
{
	redisAsyncContext *ac = r->ac;

	if (ac == NULL)
		return;
	lost(r, ac, why);
	redisAsyncFree(ac);
}

/* An error reply's length, cut for "%.*s" into a KV_ERROR_TEXT_MAX buffer. */
static int
text_len(const redisReply *rep)
{
	return rep->len < KV_ERROR_TEXT_MAX ? (int)rep->len : KV_ERROR_TEXT_MAX;
}

static const char *
context_error(const redisAsyncContext *ac, const char *fallback)
{
	return ac->c.err != 0 && ac->c.errstr[0] != '\0' ? ac->c.errstr :
	    fallback;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct kv_redis *r = ac->data;

	/* hiredis frees the context after this on an error. */
	if (status != REDIS_OK)
		lost(r, ac, context_error(ac, "connect failed"));
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct kv_redis *r = ac->data;

	(void)status;
	lost(r, ac, context_error(ac, "connection closed"));
}

static void
setup_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct kv_redis *r = privdata;
	redisReply *rep = reply;
	char why[KV_ERROR_TEXT_MAX];

	if (rep == NULL || ac != r->ac)
		return;
	if (rep->type != REDIS_REPLY_STATUS) {
		snprintf(why, sizeof(why), "AUTH or SELECT refused: %.*s",
		    rep->type == REDIS_REPLY_ERROR ? text_len(rep) : 0,
		    rep->type == REDIS_REPLY_ERROR ? rep->str : "");
		drop(r, why);
		return;
	}
	if (--r->setup_pending > 0)
		return;
	ev_timer_stop(r->kv->loop, &r->connect_timer);
	r->state = REDIS_READY;
	r->failed = false;
	r->backoff = KV_REDIS_BACKOFF_MIN;
	if (r->logged_down)
		log_info(0, "kv redis up addr=%s", r->addr);
	r->logged_down = false;
}

static void
connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	drop(w->data, "connect timeout");
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	redis_connect(w->data);
}

static void
redis_connect(struct kv_redis *r)
{
	struct kv *kv = r->kv;
	redisAsyncContext *ac;
	char why[KV_ERROR_TEXT_MAX];
	const char *argv[2];
	size_t lens[2];
	char dbnum[16];
	int rc;

	if (r->unix_path != NULL)
		ac = redisAsyncConnectUnix(r->unix_path);
	else
		ac = redisAsyncConnect(r->host, r->port);
	if (ac == NULL || ac->err) {
		snprintf(why, sizeof(why), "%s", ac ? ac->errstr : "no memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		down(r, why);
		return;
	}
	ac->data = r;
	redisLibevAttach(kv->loop, ac);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	r->ac = ac;
	r->state = REDIS_CONNECTING;
	r->setup_pending = 0;
	rc = REDIS_OK;
	if (r->password != NULL) {
		argv[0] = "AUTH";
		argv[1] = r->password;
		lens[0] = 4;
		lens[1] = strlen(r->password);
		rc = redisAsyncCommandArgv(ac, setup_cb, r, 2, argv, lens);
		r->setup_pending++;
	}
	snprintf(dbnum, sizeof(dbnum), "%d", r->db);
	argv[0] = "SELECT";
	argv[1] = dbnum;
	lens[0] = 6;
	lens[1] = strlen(dbnum);
	if (rc == REDIS_OK)
		rc = redisAsyncCommandArgv(ac, setup_cb, r, 2, argv, lens);
	r->setup_pending++;
	ev_timer_set(&r->connect_timer, r->connect_timeout, 0.);
	ev_timer_start(kv->loop, &r->connect_timer);
	if (rc != REDIS_OK)
		drop(r, "cannot queue AUTH or SELECT");
}

/* ---- requests -------------------------------------------------------- */

static bool
value_fits(const redisReply *rep)
{
	return rep->type == REDIS_REPLY_STRING && rep->len <= KV_VALUE_MAX;
}

/* Read a reply into res; false if its shape is not the request's. */
static bool
decode(const struct kv_req *req, const redisReply *rep,
    struct kv_result *res, char *etext)
{
	redisReply **e = rep->element;

	res->status = KV_OK;
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(etext, KV_ERROR_TEXT_MAX, "%.*s", text_len(rep),
		    rep->str);
		res->status = KV_ERROR;
		res->error = etext;
		return true;
	}
	switch (req->op) {
	case KV_OP_GET:
		if (rep->type == REDIS_REPLY_NIL) {
			res->status = KV_NOTFOUND;
			return true;
		}
		if (!value_fits(rep))
			return false;
		res->value = rep->str;
		res->vlen = rep->len;
		return true;
	case KV_OP_SET:
		if (!(req->a.flags & KV_NX)) {
			res->set = true;
			return rep->type == REDIS_REPLY_STATUS;
		}
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
		    e[0]->type != REDIS_REPLY_INTEGER)
			return false;
		if (e[0]->integer == 1) {
			res->set = true;
			return true;
		}
		/* Not set; the value may have expired inside the script. */
		if (rep->elements < 2 || e[1]->type == REDIS_REPLY_NIL)
			return true;
		if (!value_fits(e[1]))
			return false;
		res->value = e[1]->str;
		res->vlen = e[1]->len;
		return true;
	case KV_OP_INCR:
	case KV_OP_DEL:
		res->integer = rep->integer;
		return rep->type == REDIS_REPLY_INTEGER;
	case KV_OP_GCRA:
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
			return false;
		for (size_t i = 0; i < 3; i++)
			if (e[i]->type != REDIS_REPLY_INTEGER ||
			    e[i]->integer < 0)
				return false;
		res->allowed = e[0]->integer != 0;
		res->retry_after = (double)e[1]->integer / 1e6;
		res->remaining = e[2]->integer;
		return true;
	}
	return false;
}

static void
reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct kv_req *req = privdata;
	struct kv *kv = req->kv;
	struct kv_result res = { .status = KV_OK };
	char etext[KV_ERROR_TEXT_MAX];

	ev_timer_stop(kv->loop, &req->timer);
	req->state = KV_RS_ANSWERING;
	if (reply == NULL) {
		lost(kv->be, ac, context_error(ac, "connection lost"));
		res.status = req->timed_out ? KV_TIMEOUT : KV_UNAVAILABLE;
		res.error = req->timed_out ? "redis did not answer in time" :
		    "redis connection lost";
	} else if (!decode(req, reply, &res, etext)) {
		memset(&res, 0, sizeof(res));
		res.status = KV_ERROR;
		res.error = "unexpected reply type from redis";
	}
	kv_req_answer(req, &res);
	kv_req_free(req);
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kv_req *req = w->data;
	struct kv_redis *r = req->kv->be;

	(void)loop;
	(void)revents;
	/*
	 * Answers behind this one would be late too: start afresh.  The
	 * request is on r->ac (see the top of the file), so drop() answers
	 * it with a NULL reply, as KV_TIMEOUT.
	 */
	assert(r->ac != NULL);
	req->timed_out = true;
	drop(r, "command timeout");
}

static void
redis_submit(struct kv *kv, struct kv_req *req)
{
	struct kv_redis *r = kv->be;
	const struct kv_args *a = &req->a;
	char key[KV_PREFIX_MAX + KV_KEY_MAX];
	const char *argv[REDIS_ARGS_MAX];
	size_t lens[REDIS_ARGS_MAX];
	char n[3][24];
	int argc = 0;

#define ARG(p, l)	do { argv[argc] = (p); lens[argc++] = (l); } while (0)
#define ARGS(s)		ARG((s), strlen(s))
#define SCRIPT(s)	do { ARGS("EVAL"); ARG((s), sizeof(s) - 1); \
			    ARGS("1"); ARG(key, klen); } while (0)
	size_t klen = r->plen + a->klen;

	if (r->state != REDIS_READY &&
	    (r->state != REDIS_CONNECTING || r->failed)) {
		kv_req_fail(req, KV_UNAVAILABLE, "redis unavailable");
		return;
	}
	memcpy(key, r->prefix, r->plen);
	memcpy(key + r->plen, a->key, a->klen);
	switch (req->op) {
	case KV_OP_GET:
		SCRIPT(script_get);
		snprintf(n[0], sizeof(n[0]), "%d", KV_VALUE_MAX);
		ARGS(n[0]);
		break;
	case KV_OP_SET:
		snprintf(n[0], sizeof(n[0]), "%u", a->ttl);
		snprintf(n[1], sizeof(n[1]), "%d", KV_VALUE_MAX);
		if (a->flags & KV_NX) {
			SCRIPT(script_setnx);
			ARG(a->val, a->vlen);
			ARGS(n[0]);
			ARGS(n[1]);
			break;
		}
		ARGS("SET");
		ARG(key, klen);
		ARG(a->val, a->vlen);
		if (a->ttl > 0) {
			ARGS("EX");
			ARGS(n[0]);
		}
		break;
	case KV_OP_INCR:
		SCRIPT(script_incr);
		snprintf(n[0], sizeof(n[0]), "%lld", a->delta);
		snprintf(n[1], sizeof(n[1]), "%u", a->ttl);
		ARGS(n[0]);
		ARGS(n[1]);
		break;
	case KV_OP_DEL:
		ARGS("DEL");
		ARG(key, klen);
		break;
	case KV_OP_GCRA:
		SCRIPT(script_gcra);
		snprintf(n[0], sizeof(n[0]), "%lld", (long long)a->interval_us);
		snprintf(n[1], sizeof(n[1]), "%u", a->burst);
		snprintf(n[2], sizeof(n[2]), "%u", a->cost);
		ARGS(n[0]);
		ARGS(n[1]);
		ARGS(n[2]);
		break;
	}
#undef SCRIPT
#undef ARGS
#undef ARG
	if (redisAsyncCommandArgv(r->ac, reply_cb, req, argc, argv, lens) !=
	    REDIS_OK) {
		kv_req_fail(req, KV_UNAVAILABLE, "redis unavailable");
		return;
	}
	req->state = KV_RS_SENT;
	ev_timer_init(&req->timer, timeout_cb, r->command_timeout, 0.);
	req->timer.data = req;
	ev_timer_start(kv->loop, &req->timer);
}

static void
redis_cancel(struct kv *kv, struct kv_req *req)
{
	(void)kv;
	/*
	 * A tombstone: hiredis still holds it and its reply will come (or a
	 * NULL); reply_cb frees it then.  Its timer stays, so a Redis that
	 * stops answering is still noticed when every request was cancelled.
	 */
	(void)req;
}

static void
redis_run(struct kv *kv, struct kv_req *req)
{
	(void)kv;
	(void)req;
	/* Redis requests are sent or refused, never queued to run. */
	abort();
}

/* ---- open and close -------------------------------------------------- */

/* "host:port", "[v6]:port", "host" or "unix:/path" into r; 0 or -1. */
static int
parse_addr(struct kv_redis *r, const char *s, char *err, size_t errlen)
{
	const char *colon, *host = s, *port = NULL;
	size_t hlen;
	unsigned char buf[sizeof(struct in6_addr)];
	char *end;
	long p = REDIS_PORT_DEFAULT;

	if (s == NULL || *s == '\0' ||
	    snprintf(r->addr, sizeof(r->addr), "%s", s) >= (int)sizeof(r->addr))
		goto bad;
	if (strncmp(s, "unix:", 5) == 0) {
		r->unix_path = r->addr + 5;
		if (r->unix_path[0] != '/')
			goto bad;
		return 0;
	}
	if (s[0] == '[') {
		if ((colon = strchr(s, ']')) == NULL)
			goto bad;
		host = s + 1;
		hlen = (size_t)(colon - host);
		if (colon[1] == ':')
			port = colon + 2;
		else if (colon[1] != '\0')
			goto bad;
	} else if ((colon = strrchr(s, ':')) != NULL &&
	    strchr(s, ':') == colon) {
		hlen = (size_t)(colon - s);
		port = colon + 1;
	} else {
		hlen = strlen(s);	/* an address alone (v4 or bare v6) */
	}
	if (hlen == 0 || hlen >= sizeof(r->host))
		goto bad;
	memcpy(r->host, host, hlen);
	r->host[hlen] = '\0';
	if (strcmp(r->host, "localhost") == 0)
		snprintf(r->host, sizeof(r->host), "127.0.0.1");
	if (inet_pton(AF_INET, r->host, buf) != 1 &&
	    inet_pton(AF_INET6, r->host, buf) != 1) {
		snprintf(err, errlen, "kv redis: the host must be an IP address"
		    " (a name would be resolved blocking the loop)");
		return -1;
	}
	if (port != NULL) {
		p = strtol(port, &end, 10);
		if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
			goto bad;
	}
	r->port = (int)p;
	return 0;
bad:
	snprintf(err, errlen, "kv redis: bad address (host:port, [v6]:port"
	    " or unix:/path)");
	return -1;
}

static bool
timeout_ok(double t)
{
	return isfinite(t) && t > 0 && t <= REDIS_TIMEOUT_MAX;
}

static int
redis_open(struct kv *kv, const struct kv_config *cfg, char *err,
    size_t errlen)
{
	struct kv_redis *r = xcalloc(1, sizeof(*r));

	r->kv = kv;
	r->connect_timeout = cfg->connect_timeout ? cfg->connect_timeout :
	    KV_REDIS_CONNECT_TIMEOUT;
	r->command_timeout = cfg->command_timeout ? cfg->command_timeout :
	    KV_REDIS_COMMAND_TIMEOUT;
	if (parse_addr(r, cfg->redis, err, errlen) != 0)
		goto fail;
	if (!timeout_ok(r->connect_timeout) || !timeout_ok(r->command_timeout)) {
		snprintf(err, errlen, "kv redis: timeouts must be in (0, %g]",
		    REDIS_TIMEOUT_MAX);
		goto fail;
	}
	if (cfg->db < 0 || cfg->db > KV_REDIS_DB_MAX) {
		snprintf(err, errlen, "kv redis: db out of range");
		goto fail;
	}
	if (cfg->prefix != NULL && strlen(cfg->prefix) > KV_PREFIX_MAX) {
		snprintf(err, errlen, "kv redis: prefix over %d bytes",
		    KV_PREFIX_MAX);
		goto fail;
	}
	r->db = cfg->db;
	if (cfg->prefix != NULL) {
		r->plen = strlen(cfg->prefix);
		memcpy(r->prefix, cfg->prefix, r->plen);
	}
	if (cfg->password != NULL && cfg->password[0] != '\0')
		r->password = xstrdup(cfg->password);
	r->backoff = KV_REDIS_BACKOFF_MIN;
	ev_timer_init(&r->connect_timer, connect_timeout_cb, 0., 0.);
	r->connect_timer.data = r;
	ev_timer_init(&r->retry_timer, retry_cb, 0., 0.);
	r->retry_timer.data = r;
	kv->be = r;
	redis_connect(r);
	return 0;
fail:
	free(r);
	return -1;
}

static void
redis_close(struct kv *kv)
{
	struct kv_redis *r = kv->be;

	/* kv->closing: the requests' NULL replies answer nobody. */
	drop(r, "closing");
	ev_timer_stop(kv->loop, &r->connect_timer);
	ev_timer_stop(kv->loop, &r->retry_timer);
	if (r->password != NULL) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r);
}

const struct kv_ops kv_redis_ops = {
	.name = "redis",
	.open = redis_open,
	.close = redis_close,
	.submit = redis_submit,
	.run = redis_run,
	.cancel = redis_cancel,
};
