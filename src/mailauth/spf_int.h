/*
 * spf_int.h — one SPF check as spf.c (its life on the loop and the worker)
 * and spf_dns.c (libspf2's DNS layer) share it.
 */
#ifndef LUASMTPD_SPF_INT_H
#define LUASMTPD_SPF_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#include <ev.h>

#include "dns/dns.h"
#include "mailauth/spf.h"
#include "util/workq.h"

/* Names remembered per check: exp= targets, MX and PTR answers. */
#define SPF_EXP_NAMES_MAX	8

enum spf_state {
	SPF_S_RUNNING,		/* the worker has it; cb not called yet */
	SPF_S_DELIVERING,	/* cb is running */
	SPF_S_ABANDONED,	/* timed out or cancelled: free when done */
};

/* Why our DNS layer stopped the evaluation (a permerror or temperror). */
enum spf_stop {
	SPF_STOP_NONE,
	SPF_STOP_TERMS,		/* more than SPF_TERMS_MAX terms */
	SPF_STOP_VOIDS,		/* more than SPF_VOIDS_MAX void lookups */
	SPF_STOP_QUERIES,	/* more than SPF_QUERIES_MAX queries */
	SPF_STOP_UNSAFE,	/* a record we refuse to give libspf2 */
	SPF_STOP_TIME,		/* the check's deadline passed */
};

/* What the DNS layer keeps while libspf2 evaluates (worker thread only). */
struct spf_lookups {
	unsigned	 terms, voids, queries;
	bool		 first_txt_done;
	enum spf_stop	 stop;
	/* Names of the last MX or PTR answer: their A/AAAA lookups are part
	 * of that term, not terms of their own; each is used once. */
	char		**second;
	size_t		 nsecond;
	/* exp= targets seen in records: their TXT lookups are no terms. */
	char		*exp[SPF_EXP_NAMES_MAX];
	size_t		 nexp;
};

struct spf_req {
	struct work		 work;		/* first: workq_submit() */
	struct ev_loop		*loop;
	struct dns_ctx		*dns;
	ev_timer		 timer;
	spf_cb			 cb;
	void			*arg;
	enum spf_state		 state;		/* loop thread only */
	atomic_bool		 stopping;	/* cancelled or timed out */
	double			 deadline;	/* CLOCK_MONOTONIC seconds */
	/* Inputs (copied, bounded). */
	char			 ip[48];
	char			 helo[SPF_DOMAIN_MAX + 1];
	char			 sender[SPF_SENDER_MAX + 1];
	bool			 too_long;	/* an input did not fit */
	/* The worker's. */
	struct spf_lookups	 lk;
	struct spf_result	 res;
};

/* spf_dns.c: libspf2's DNS layer for one check. */
struct SPF_dns_server_struct *spf_dns_layer_new(struct spf_req *);
void		 spf_dns_layer_free(struct SPF_dns_server_struct *);
/* spf_dns.c: seconds left before the check's deadline. */
double		 spf_time_left(const struct spf_req *);

#endif
