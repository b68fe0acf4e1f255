/*
 * dns_test_util.h — what the DNS and SPF drivers (test_dns.c, test_spf.c)
 * share: the resolver settings of spec/support/dns.lua's peer, read from
 * the environment, and a bounded wait on the event loop.
 *
 *	DNS_TEST_SERVER		"127.0.0.1@PORT" (NSD)
 *	DNS_TEST_STUBS		"zone=ip@port,zone=ip@port"
 *	DNS_TEST_NODEFAULT	"test.,2.0.192.in-addr.arpa.,..."
 *	DNS_TEST_TA_FILE	a file of DS records
 */
#ifndef LUASMTPD_DNS_TEST_UTIL_H
#define LUASMTPD_DNS_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "dns/dns.h"

#define TEST_LIST_MAX		16
#define TEST_ENV_MAX		1024

struct test_env {
	char		 buf[4 * TEST_ENV_MAX];
	const char	*servers[2];
	struct dns_stub	 stubs[TEST_LIST_MAX];
	const char	*nodefault[TEST_LIST_MAX + 1];
	struct dns_config cfg;
};

/* Split s (copied into e->buf at *off) at sep; NULL-terminated parts. */
static inline size_t
test_split(struct test_env *e, size_t *off, const char *s, char sep,
    char **parts, size_t max)
{
	char *p = e->buf + *off;
	size_t n = 0, len = strlen(s);

	if (len >= TEST_ENV_MAX || *off + len + 1 > sizeof(e->buf))
		return 0;
	memcpy(p, s, len + 1);
	*off += len + 1;
	while (*p != '\0' && n < max) {
		char *end = strchr(p, sep);

		parts[n++] = p;
		if (end == NULL)
			break;
		*end = '\0';
		p = end + 1;
	}
	return n;
}

/* Fill e from the environment; -1 with a message on stdout if unset. */
static inline int
test_env_load(struct test_env *e)
{
	const char *server = getenv("DNS_TEST_SERVER");
	const char *stubs = getenv("DNS_TEST_STUBS");
	const char *nodef = getenv("DNS_TEST_NODEFAULT");
	const char *ta = getenv("DNS_TEST_TA_FILE");
	char *parts[TEST_LIST_MAX];
	size_t off = 0, n;

	memset(e, 0, sizeof(*e));
	if (server == NULL || stubs == NULL || nodef == NULL || ta == NULL) {
		printf("not ok environment: DNS_TEST_SERVER, DNS_TEST_STUBS, "
		    "DNS_TEST_NODEFAULT and DNS_TEST_TA_FILE must be set "
		    "(spec/support/dns.lua's .env)\n");
		return -1;
	}
	n = test_split(e, &off, server, ',', parts, 1);
	e->servers[0] = n > 0 ? parts[0] : NULL;
	n = test_split(e, &off, stubs, ',', parts, TEST_LIST_MAX);
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(parts[i], '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		e->stubs[e->cfg.nstubs].zone = parts[i];
		e->stubs[e->cfg.nstubs++].addr = eq + 1;
	}
	n = test_split(e, &off, nodef, ',', parts, TEST_LIST_MAX);
	for (size_t i = 0; i < n; i++)
		e->nodefault[i] = parts[i];
	e->cfg.servers = e->servers;
	e->cfg.stubs = e->stubs;
	e->cfg.nodefault = e->nodefault;
	e->cfg.trust_anchor_file = ta;
	e->cfg.timeout = 5;
	return 0;
}

static inline double
test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void
test_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
}

/* Run loop until *flag is true or seconds pass; true if *flag. */
static inline bool
test_run_until(struct ev_loop *loop, volatile bool *flag, double seconds)
{
	double end = test_now() + seconds;
	ev_timer tick;

	/* A short timer keeps each ev_run from blocking longer than 50 ms,
	 * and from returning at once when nothing else is active. */
	while (!*flag && test_now() < end) {
		ev_timer_init(&tick, test_tick, 0.05, 0);
		ev_timer_start(loop, &tick);
		ev_run(loop, EVRUN_ONCE);
		ev_timer_stop(loop, &tick);
	}
	return *flag;
}

/* Run loop for seconds (callbacks that must not come get a chance). */
static inline void
test_run_for(struct ev_loop *loop, double seconds)
{
	volatile bool never = false;

	(void)test_run_until(loop, &never, seconds);
}

#endif
