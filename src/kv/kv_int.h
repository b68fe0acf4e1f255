/*
 * kv_int.h — what kv.c shares with its backends (kv_lmdb.c, kv_redis.c).
 *
 * kv.c checks every argument and bound, counts requests in flight and
 * owns the deferred queue: requests that wait for the next loop iteration,
 * either with an answer already known (kv_req_fail) or, for LMDB, to be
 * run then (ops->run).  A backend answers a request with kv_req_answer()
 * and then frees it with kv_req_free(), both from a libev callback.
 */
#ifndef LUASMTPD_KV_INT_H
#define LUASMTPD_KV_INT_H

#include <stdint.h>
#include <sys/queue.h>

#include "kv/kv.h"

enum kv_op {
	KV_OP_GET,
	KV_OP_SET,
	KV_OP_INCR,
	KV_OP_DEL,
	KV_OP_GCRA,
};

enum kv_req_state {
	KV_RS_QUEUED,		/* on kv->queue, for the next iteration */
	KV_RS_SENT,		/* held by the backend (written to Redis) */
	KV_RS_ANSWERING,	/* its callback runs (or is about to) */
};

/* The arguments of a request, checked.  LMDB keeps copies until it runs. */
struct kv_args {
	const char	*key;
	size_t		 klen;
	const char	*val;
	size_t		 vlen;
	unsigned	 ttl;		/* set: ttl; incr: ttl_on_create */
	unsigned	 flags;		/* KV_NX */
	long long	 delta;
	int64_t		 interval_us;	/* gcra: 1/rate, microseconds */
	unsigned	 burst;
	unsigned	 cost;
};

struct kv_req {
	struct kv		*kv;
	kv_cb			 cb;
	void			*arg;
	enum kv_op		 op;
	enum kv_req_state	 state;
	bool			 cancelled;
	bool			 timed_out;	/* redis: its timer fired */
	struct kv_args		 a;
	char			*copy;		/* lmdb: key and value */
	size_t			 bytes;		/* counted in kv->bytes_inflight */
	uint64_t		 seq;		/* order on kv->queue */
	/* Known before the backend ran: refusals and outages. */
	enum kv_status		 early_status;
	char			 early_error[64];
	TAILQ_ENTRY(kv_req)	 entry;
	ev_timer		 timer;		/* redis: command timeout */
};

TAILQ_HEAD(kv_req_list, kv_req);

struct kv_ops {
	const char	*name;
	/* Fill kv->be from the config; 0, or -1 with err. */
	int		(*open)(struct kv *, const struct kv_config *,
			    char *err, size_t errlen);
	/* Release kv->be; every request was cancelled already. */
	void		(*close)(struct kv *);
	/*
	 * Take a checked request (state KV_RS_QUEUED, not on the queue):
	 * send it (KV_RS_SENT), or kv_req_queue() it to run() later, or
	 * kv_req_fail() it.  Never answers here.
	 */
	void		(*submit)(struct kv *, struct kv_req *);
	/* Run a queued request now and answer it (from the loop). */
	void		(*run)(struct kv *, struct kv_req *);
	/* kv_cancel() of a request in state KV_RS_SENT. */
	void		(*cancel)(struct kv *, struct kv_req *);
};

struct kv {
	const struct kv_ops	*ops;
	void			*be;		/* the backend's state */
	struct ev_loop		*loop;
	struct kv_req_list	 queue;
	uint64_t		 seq;
	ev_timer		 kick;		/* runs the queue next iteration */
	unsigned		 inflight, max_inflight;
	size_t			 bytes_inflight;
	int			 depth;		/* callbacks running now */
	bool			 closing;
};

extern const struct kv_ops	kv_lmdb_ops;
extern const struct kv_ops	kv_redis_ops;

/* Put a request on the queue, to be run by ops->run next iteration. */
void	kv_req_queue(struct kv_req *);
/* Answer status/text next iteration, without running the request. */
void	kv_req_fail(struct kv_req *, enum kv_status, const char *error);
/* Call the request's callback unless cancelled or closing. */
void	kv_req_answer(struct kv_req *, const struct kv_result *);
/* Forget a request (uncounts it); its timer must be stopped. */
void	kv_req_free(struct kv_req *);

/*
 * The GCRA step on integers (microseconds), shared with the Redis script
 * which does the same in Lua: tat is the stored theoretical arrival time
 * (0 if none).  Returns whether allowed; *new_tat is what to store if so.
 */
bool	kv_gcra_step(int64_t now, int64_t tat, const struct kv_args *,
	    int64_t *new_tat, struct kv_result *);
/* Strict decimal long long (what Redis's INCR accepts).  0 or -1. */
int	kv_parse_ll(const char *, size_t, long long *);

#endif
