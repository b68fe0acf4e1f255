/*
 * dns_int.h — what dns.c, dns_parse.c and dns_wait.c share; not for users
 * of the resolver (they include dns.h).
 */
#ifndef LUASMTPD_DNS_INT_H
#define LUASMTPD_DNS_INT_H

#include <pthread.h>
#include <stdarg.h>

#include "dns/dns.h"

struct ub_ctx;
struct ub_event_base;
struct dns_wait;

/*
 * Internal callbacks take ownership of the result (dns_query_wait() hands
 * it to another thread).  They may also run from dns_free(), with a
 * DNS_ERROR result, which user callbacks never do.
 */
typedef void (*dns_take_cb)(void *arg, struct dns_result *owned);

enum dns_qstate {
	DNS_Q_PENDING,		/* asked; no result yet */
	DNS_Q_READY,		/* result set, waiting to be delivered */
	DNS_Q_DELIVERING,	/* its callback is running */
};

struct dns_query {
	struct dns_ctx		*ctx;
	struct dns_query	*prev, *next;	/* ctx->pending or ctx->ready */
	enum dns_qstate		 state;
	ev_timer		 timer;
	int			 ub_id;
	bool			 in_ub;		/* libunbound may call us back */
	dns_cb			 cb;
	dns_take_cb		 take;		/* instead of cb: internal users */
	void			*arg;
	struct dns_result	*res;
	int			 rrtype;
	char			*name;
};

struct dns_list {
	struct dns_query	*head, *tail;
};

struct dns_ctx {
	struct ev_loop		*loop;
	pthread_t		 loop_thread;
	struct ub_ctx		*ub;
	struct ub_event_base	*evbase;	/* dns_event.c */
	ev_async		 kick;		/* deferred results, thread posts */
	double			 timeout;
	struct dns_list		 pending;
	struct dns_list		 ready;		/* delivered at the next kick */
	unsigned		 npending;	/* both lists */
	unsigned		 in_callback;	/* dns_free() must not run then */
	/* dns_query_wait() requests from other threads (dns_wait.c). */
	pthread_mutex_t		 wait_lock;
	struct dns_wait		*wait_head, *wait_tail;
	bool			 closing;
};

/* dns.c: a query whose result goes to take (ownership) instead of a cb. */
struct dns_query *dns_query_take(struct dns_ctx *, const char *name,
		    int rrtype, double timeout, dns_take_cb take, void *arg);
/* dns.c: the timeout to use for a requested one (0: the default). */
double		 dns_timeout_for(const struct dns_ctx *, double requested);

/* dns_parse.c: a result for name/rrtype from libunbound's answer: its
 * rcode (non-zero: failed), the reply packet, sec (0 insecure, 1 bogus,
 * 2 secure) and why it is bogus. */
struct dns_result *dns_result_from_packet(const char *name, int rrtype,
		    int rcode, const void *packet, int len, int sec,
		    const char *why_bogus);
/* dns_parse.c: a result without records, with .error formatted. */
struct dns_result *dns_result_error(const char *name, int rrtype,
		    enum dns_status, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));

/* dns_wait.c: start the queries threads posted (loop thread, kick). */
void		 dns_wait_run_posted(struct dns_ctx *);
/* dns_wait.c: fail every posted request (dns_free). */
void		 dns_wait_fail_posted(struct dns_ctx *);

#endif
