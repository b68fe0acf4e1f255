/*
 * metrics.h — counters, gauges and histograms of luasmtpd, and their
 * Prometheus text exposition (format 0.0.4).
 *
 * Every metric is a row of one table (metrics_table.c): a fixed id below,
 * its name, help text, type and at most two label dimensions, each a small
 * fixed list of values.  A label value is an index into that list, never
 * text from a client or a peer, so the number of series is fixed when the
 * binary is built and a scrape is bounded.
 *
 *   metric_inc(M_CONNECTIONS_ACCEPTED);
 *   metric_inc_l(M_SESSIONS, M_SESS_QUIT);
 *   metric_add_l2(M_MESSAGE_BYTES, M_MSG_ACCEPTED, 0, tx->size);
 *   hist_observe_l(M_HOOK_WALL, HOOK_RCPT, seconds);
 *
 * Storage and processes: all values live in one flat array of 64-bit slots
 * per process, a "shard", inside a MAP_SHARED anonymous mapping made by
 * metrics_init(nshards).  Today there is one process and one shard.  A
 * master that forks workers (issue 11) makes one shard per worker before
 * the fork, each worker writes only its own (metrics_use_shard), and the
 * exposition sums every shard — counters and histograms add up, and so do
 * gauges such as open connections.  Slots are updated with relaxed atomic
 * operations, so a scrape from another process (or a pool thread calling
 * metric_inc) never sees a torn value.
 *
 * Ownership: this module owns the mapping; nothing here allocates per
 * event.  The functions are safe from any thread.
 */
#ifndef LUASMTPD_METRICS_H
#define LUASMTPD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum metric_type {
	METRIC_COUNTER,		/* exposed with the suffix _total */
	METRIC_GAUGE,
	METRIC_HISTOGRAM,	/* _bucket{le=...}, _sum, _count */
};

/* The metrics (rows of metrics_table.c, same order). */
enum metric_id {
	M_CONNECTIONS_ACCEPTED,	/* luasmtpd_connections_accepted_total */
	M_CONNECTIONS_REFUSED,	/* {reason} */
	M_CONNECTIONS_OPEN,	/* gauge */
	M_SESSIONS,		/* {outcome} */
	M_REPLIES,		/* {class} */
	M_MESSAGES,		/* {outcome} */
	M_MESSAGE_BYTES,	/* {outcome} */
	M_HOOK_ERRORS,		/* {hook} */
	M_HOOK_WALL,		/* histogram {hook} */
	M_HOOK_CPU,		/* histogram {hook} */
	M_OP_SECONDS,		/* histogram {op} */
	M_DELIVERIES,		/* {target, outcome} */
	M_QUEUE_MESSAGES,	/* gauge {state} */
	M_LOG_DROPPED,		/* log lines the sink did not take */
	M_SCRAPES,		/* {status} of requests to the endpoint */
	M_COUNT
};

/* Label values, in the order of metrics_table.c's lists. */
enum m_refuse_reason {
	M_REFUSE_MAX_CONNECTIONS,
	M_REFUSE_MAX_PER_IP,
	M_REFUSE_NO_FDS,
};

enum m_session_outcome {
	M_SESS_QUIT,		/* the client said QUIT */
	M_SESS_TIMEOUT,		/* a command, data or TLS deadline passed */
	M_SESS_DROPPED,		/* the client went away (EOF, reset) */
	M_SESS_REJECTED,	/* policy: a hook's disconnect, early talker */
	M_SESS_ERROR,		/* protocol errors, limits, TLS failures */
};

enum m_reply_class {
	M_REPLY_2XX,
	M_REPLY_3XX,
	M_REPLY_4XX,
	M_REPLY_5XX,
};

enum m_message_outcome {
	M_MSG_ACCEPTED,		/* 250: delivered or queued */
	M_MSG_DISCARDED,	/* 250, then dropped (smtp.discard) */
	M_MSG_REJECTED,		/* 5xx */
	M_MSG_TEMPFAILED,	/* 4xx */
};

enum m_queue_state {
	M_QUEUE_QUEUED,		/* queue/<id> with its envelope */
	M_QUEUE_LOST,		/* queue/<id>.env.lost: data missing */
};

enum m_scrape_status {
	M_SCRAPE_OK,		/* 200 */
	M_SCRAPE_BAD,		/* 400, 431: malformed or oversized */
	M_SCRAPE_NOT_FOUND,	/* 404, 405 */
	M_SCRAPE_TIMEOUT,	/* closed at the deadline */
	M_SCRAPE_BUSY,		/* closed at once: too many clients */
};

/* A label dimension: its name and the NULL-terminated list of values. */
struct metric_label {
	const char		*name;
	const char *const	*values;
};

struct metric_def {
	const char		*name;		/* without _total */
	const char		*help;		/* no backslash, no newline */
	enum metric_type	 type;
	const struct metric_label *labels[2];	/* NULL: fewer dimensions */
	const double		*buckets;	/* upper bounds, ascending */
	unsigned		 nbuckets;	/* +Inf is implied */
};

extern const struct metric_def metric_defs[M_COUNT];

/*
 * Map nshards shards (at least 1) and write into shard 0.  Once, before
 * any metric is touched; fatal when the mapping cannot be made (at start).
 */
void	metrics_init(unsigned nshards);
/* A worker writes into its own shard (after the fork). */
void	metrics_use_shard(unsigned shard);

/*
 * Update a series.  l1 and l2 index the first and second label lists
 * (0 for a dimension the metric does not have); an index out of range is
 * a bug and is ignored (never a crash).  No-ops before metrics_init().
 */
void	metric_add_l2(enum metric_id, unsigned l1, unsigned l2, uint64_t n);
/* Gauges: set, or add a signed amount. */
void	metric_set_l(enum metric_id, unsigned l1, int64_t v);
void	metric_gauge_add_l(enum metric_id, unsigned l1, int64_t d);
/* Histograms: one observation (seconds; negative counts as 0). */
void	hist_observe_l2(enum metric_id, unsigned l1, unsigned l2, double v);

#define metric_inc(id)			metric_add_l2((id), 0, 0, 1)
#define metric_add(id, n)		metric_add_l2((id), 0, 0, (n))
#define metric_inc_l(id, l1)		metric_add_l2((id), (l1), 0, 1)
#define metric_add_l(id, l1, n)		metric_add_l2((id), (l1), 0, (n))
#define metric_inc_l2(id, l1, l2)	metric_add_l2((id), (l1), (l2), 1)
#define metric_set(id, v)		metric_set_l((id), 0, (v))
#define metric_gauge_add(id, d)		metric_gauge_add_l((id), 0, (d))
#define hist_observe(id, v)		hist_observe_l2((id), 0, 0, (v))
#define hist_observe_l(id, l1, v)	hist_observe_l2((id), (l1), 0, (v))

/*
 * The index of value in dimension dim of metric id, or of the value
 * "other" when the list has one; -1 otherwise.  For C string constants
 * (a delivery kind, an operation name), not for client text.
 */
int	metric_label_index(enum metric_id, unsigned dim, const char *value);
/*
 * The same for an operation name ("dns.mx", "deliver.maildir", "message
 * read"): its first word, up to '.' or ' ', in M_OP_SECONDS's op list.
 */
unsigned metric_op_kind(const char *opname);

/* The value of one series of a counter or gauge, summed over the shards. */
int64_t	metric_value(enum metric_id, unsigned l1, unsigned l2);

/*
 * Append the exposition (text format 0.0.4) of every metric, summed over
 * the shards, to out.  0, or -1 if out's bound was reached.
 */
int	metrics_render(struct buf *out);

#endif
