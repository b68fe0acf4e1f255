/*
 * kv.h — key-value state with TTL and atomic operations for policies
 * (greylisting, rate limits, memoized lookups), on LMDB or on Redis.
 *
 * SYNOPSIS
 *	struct kv *kv = kv_open(loop, &cfg, err, sizeof(err));
 *	kv_incr(kv, "rcpt:1.2.3.4", 12, 1, 3600, on_count, ctx);
 *	...
 *	kv_close(kv);
 *
 * DESCRIPTION
 *	One interface, two backends filling struct kv_ops (kv_int.h):
 *
 *	lmdb	The embedded default: an LMDB environment in a directory
 *		(kv_lmdb.c).  State survives a restart of the server.
 *		Several processes on one host may open the same directory.
 *	redis	A Redis server over hiredis and its libev adapter
 *		(kv_redis.c).  Several luasmtpd nodes on one Redis see one
 *		state; a key prefix lets other applications share the Redis.
 *
 *	Every request returns a struct kv_req * and answers exactly once
 *	through its callback, always from a libev callback and never from
 *	inside the request function (an answer known at once, such as a
 *	refusal, waits for the next loop iteration), unless kv_cancel() came
 *	first: after kv_cancel() the callback is never called.  The request
 *	is freed after its callback returns or when it is cancelled; forget
 *	the pointer then.  The struct kv_result and everything it points to
 *	are valid only during the callback.  A callback may start new
 *	requests and cancel others, but must not call kv_close().
 *
 *	kv_get		KV_OK with value/vlen, or KV_NOTFOUND.
 *	kv_set		stores the value with a TTL (0: none).  With KV_NX only
 *			if the key is absent: KV_OK with set = true, or with
 *			set = false and the value already there.  A plain set
 *			replaces any TTL the key had.
 *	kv_incr		adds delta to the decimal integer stored under the
 *			key (absent: 0) and answers the new value in integer.
 *			ttl_on_create is set only when the key is created,
 *			so a counter is a fixed window.  A value that is not
 *			a decimal integer, or an overflow, is KV_ERROR.
 *	kv_del		KV_OK with integer 1 if a key was removed, 0 if none.
 *	kv_gcra		the generic cell rate algorithm (RFC-less; ATM's
 *			virtual scheduling, a token bucket in disguise),
 *			done atomically in the store: up to burst requests
 *			at once, then one per 1/rate seconds.  KV_OK with
 *			allowed, retry_after (seconds until this cost would
 *			be allowed, 0 if allowed) and remaining (requests of
 *			cost 1 still allowed now).  cost 0 only asks.  Redis
 *			runs it as one EVAL with the server's clock (TIME),
 *			so nodes with skewed clocks share one limit.
 *	Integers (incr, and the GCRA's state, microseconds) are stored as
 *	decimal text in both backends, so a kv_get sees "42" either way.
 *	A GCRA state further ahead than one burst (a clock that went back)
 *	is cut to one burst.  A cancelled request that already reached
 *	Redis is still done there: cancel forgets the answer, not the work.
 *
 *	Errors: KV_ERROR (a bad argument, a bound, busy, a value that is not
 *	an integer, a store error; error says which), KV_TIMEOUT (Redis did
 *	not answer in command_timeout), KV_UNAVAILABLE (no Redis connection).
 *
 * LMDB: WHERE OPERATIONS RUN, AND DURABILITY
 *	LMDB reads are memory accesses and a write transaction is a few
 *	page copies plus pwrite(2) into the page cache as long as it does
 *	not fsync.  So the environment is opened MDB_NOSYNC|MDB_NOMETASYNC
 *	and every transaction runs on the loop thread, one per request, in
 *	the loop iteration after the request was made (requests made in one
 *	iteration run together).  The fsync is taken off the loop: every
 *	KV_LMDB_SYNC_INTERVAL seconds, if anything was written, one
 *	mdb_env_sync() runs on the disk pool (workq_disk); kv_close() syncs
 *	before it returns.  (The alternative, every transaction on a
 *	one-thread pool, costs two thread hops per request for the same
 *	durability.)  A page fault on a cold map can still stall the loop
 *	briefly; the map is small next to the page cache.  What survives:
 *	  - a clean stop or restart (kv_close): everything;
 *	  - a crash of luasmtpd (kill -9, abort): every committed request,
 *	    since the pages are in the kernel's cache;
 *	  - a crash of the machine (power, kernel): the state as of the last
 *	    periodic sync, up to KV_LMDB_SYNC_INTERVAL seconds old, and
 *	    LMDB's integrity only if the filesystem kept the order of the
 *	    writes (MDB_NOSYNC gives that up).  This is soft state (a
 *	    greylisted triplet, a counter); if the store is reported corrupt,
 *	    remove the directory.
 *	Expiry is stored with the value (8 bytes, milliseconds since the
 *	epoch, wall clock); an expired key is not found, and a sweep every
 *	sweep_interval seconds deletes at most KV_LMDB_SWEEP_BATCH expired
 *	keys, resuming where the last one stopped.  LMDB keys are at most
 *	511 bytes (mdb_env_get_maxkeysize); a longer key is stored as its
 *	first bytes plus its SHA-256, so KV_KEY_MAX holds in both backends.
 *	LMDB requests have no timer: they never wait outside the loop.
 *	Open the store in the process that uses it (after any fork: LMDB's
 *	locks and map do not survive one), once per process per directory.
 *	Without the pools (workq_disk NULL) only kv_close() syncs.
 *
 * REDIS: CONNECTION
 *	One connection per struct kv, connected at kv_open() (AUTH when a
 *	password is set, then SELECT db) and reconnected with exponential
 *	backoff (KV_REDIS_BACKOFF_MIN to KV_REDIS_BACKOFF_MAX) when it drops.
 *	Requests made before the first connection is up are queued on it;
 *	once a connection failed, requests fail fast with KV_UNAVAILABLE
 *	until a new one is up: nothing queues during an outage.  A request
 *	that gets no answer in command_timeout gets KV_TIMEOUT and the
 *	connection is dropped and made anew: Redis answers in order, so
 *	everything behind a late answer is late too.  hiredis cannot unsend,
 *	so a request cancelled after it was written stays as a tombstone (no
 *	callback, no copy of the key or value) until its answer arrives and
 *	is dropped; tombstones count as requests in flight and keep their
 *	timer.  A reply of a type the request does not expect is KV_ERROR.
 *	hiredis writes with write(2): the process must ignore SIGPIPE (main.c
 *	does).  One server only: no Cluster redirections (MOVED) and no
 *	Sentinel discovery; point it at the master (or a proxy in front).
 *
 * RESOURCE AND RATE CONTROLS
 *	KV_KEY_MAX (1024) key bytes, at least 1; KV_VALUE_MAX (1 MiB) value
 *	bytes; KV_PREFIX_MAX (64) Redis key prefix; KV_TTL_MAX seconds;
 *	max_inflight requests not yet answered or dropped (default
 *	KV_INFLIGHT_DEFAULT) and KV_BYTES_INFLIGHT_MAX bytes of keys and
 *	values in them: past either, KV_ERROR "busy".  Values read back are
 *	bounded too (a Redis value over KV_VALUE_MAX is KV_ERROR, checked in
 *	the server before it is sent).
 *
 * SECURITY
 *	Keys and values are bytes; nothing is parsed but decimal integers.
 *	Keys often hold client data (addresses, HELO names): never log them
 *	unescaped.  Long LMDB keys are hashed with SHA-256, so a client
 *	cannot make two keys collide.  The Redis server is trusted as far as
 *	the size of its error replies goes (hiredis 0.14 has no bound on a
 *	reply; every value we ask for is bounded by the scripts).  The
 *	password is not logged.
 */
#ifndef LUASMTPD_KV_H
#define LUASMTPD_KV_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

/* Bytes of a key (the Redis prefix not counted); a key is never empty. */
#define KV_KEY_MAX		1024
/* Bytes of a value. */
#define KV_VALUE_MAX		(1024 * 1024)
/* Bytes of the Redis key prefix. */
#define KV_PREFIX_MAX		64
/* Longest TTL, seconds (ten years). */
#define KV_TTL_MAX		(10u * 366 * 24 * 3600)
/* Requests in flight per struct kv when the config says 0. */
#define KV_INFLIGHT_DEFAULT	1024
/* Bytes of keys and values held by requests in flight. */
#define KV_BYTES_INFLIGHT_MAX	(16 * 1024 * 1024)
/* Bytes of an error text in a kv_result, with its NUL. */
#define KV_ERROR_TEXT_MAX	256
/* GCRA: rate from 1 per 10 years... */
#define KV_GCRA_RATE_MIN	(1.0 / KV_TTL_MAX)
/* ...to a million a second (one per microsecond, the clock's grain). */
#define KV_GCRA_RATE_MAX	1e6
/* GCRA: burst and cost; burst/rate must stay under KV_TTL_MAX too. */
#define KV_GCRA_BURST_MAX	1000000u

/* LMDB defaults (kv_config fields set to 0). */
#define KV_LMDB_MAP_SIZE_DEFAULT	((size_t)256 * 1024 * 1024)
#define KV_LMDB_SWEEP_INTERVAL		60.0	/* seconds */
#define KV_LMDB_SWEEP_BATCH		1000	/* keys looked at per sweep */
#define KV_LMDB_SYNC_INTERVAL		1.0	/* seconds */

/* Redis defaults (kv_config fields set to 0) and reconnect backoff. */
#define KV_REDIS_CONNECT_TIMEOUT	2.0	/* seconds, with AUTH and SELECT */
#define KV_REDIS_COMMAND_TIMEOUT	1.0	/* seconds */
#define KV_REDIS_BACKOFF_MIN		0.1	/* seconds, doubled per failure */
#define KV_REDIS_BACKOFF_MAX		5.0
#define KV_REDIS_DB_MAX			1000000

/* kv_set flags */
#define KV_NX			0x01	/* only if the key is absent */

enum kv_status {
	KV_OK,
	KV_NOTFOUND,
	KV_ERROR,
	KV_TIMEOUT,
	KV_UNAVAILABLE,
};

/*
 * Zero means the default for every number; strings are copied by
 * kv_open().  backend NULL is "lmdb".
 */
struct kv_config {
	const char	*backend;	/* "lmdb" or "redis" */
	/* lmdb */
	const char	*path;		/* environment directory; made if absent */
	size_t		 map_size;	/* bytes; the most the store may hold */
	double		 sweep_interval; /* seconds between expiry sweeps */
	/* redis */
	const char	*redis;		/* "host:port", "[v6]:port", "unix:/path" */
	const char	*password;	/* NULL or "": no AUTH */
	int		 db;		/* SELECT; 0..KV_REDIS_DB_MAX */
	double		 connect_timeout; /* seconds */
	double		 command_timeout; /* seconds */
	const char	*prefix;	/* prepended to every key; NULL: none */
	/* both */
	unsigned	 max_inflight;	/* requests not yet answered */
};

/* What a request answered; valid only during the callback. */
struct kv_result {
	enum kv_status	 status;
	/* kv_get: the value; kv_set with KV_NX not set: the value there. */
	const char	*value;
	size_t		 vlen;
	/* kv_incr: the new value; kv_del: keys removed (0 or 1). */
	long long	 integer;
	/* kv_set: whether the value was stored. */
	bool		 set;
	/* kv_gcra */
	bool		 allowed;
	double		 retry_after;	/* seconds; 0 when allowed */
	long long	 remaining;
	/* KV_ERROR, KV_TIMEOUT, KV_UNAVAILABLE: why (NUL-terminated). */
	const char	*error;
};

struct kv;
struct kv_req;

typedef void (*kv_cb)(void *arg, const struct kv_result *);

/*
 * Open a store.  Returns NULL with a message in err on a bad config or
 * an LMDB environment that cannot be opened.  A Redis that does not
 * answer is not an error here: the store connects in the background.
 */
struct kv	*kv_open(struct ev_loop *, const struct kv_config *,
		    char *err, size_t errlen);
/*
 * Close a store: pending requests are cancelled (no callback), LMDB is
 * synced to disk, the Redis connection is closed.  Not from inside a
 * kv callback.  NULL-safe.
 */
void		 kv_close(struct kv *);

/* Requests: key and value are copied (or sent) before they return. */
struct kv_req	*kv_get(struct kv *, const void *key, size_t klen,
		    kv_cb, void *arg);
struct kv_req	*kv_set(struct kv *, const void *key, size_t klen,
		    const void *val, size_t vlen, unsigned ttl, unsigned flags,
		    kv_cb, void *arg);
struct kv_req	*kv_incr(struct kv *, const void *key, size_t klen,
		    long long delta, unsigned ttl_on_create, kv_cb, void *arg);
struct kv_req	*kv_del(struct kv *, const void *key, size_t klen,
		    kv_cb, void *arg);
struct kv_req	*kv_gcra(struct kv *, const void *key, size_t klen,
		    double rate_per_second, unsigned burst, unsigned cost,
		    kv_cb, void *arg);
/* Forget a request: its callback is never called.  NULL-safe. */
void		 kv_cancel(struct kv_req *);

/* "lmdb" or "redis". */
const char	*kv_backend_name(const struct kv *);
/* "ok", "notfound", "error", "timeout", "unavailable". */
const char	*kv_status_name(enum kv_status);

#endif
