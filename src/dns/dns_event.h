/*
 * dns_event.h — libunbound's pluggable event base on a libev loop (see
 * dns_event.c for why); used by dns.c only.
 */
#ifndef LUASMTPD_DNS_EVENT_H
#define LUASMTPD_DNS_EVENT_H

#include <ev.h>

struct ub_event_base;

/* A base for ub_ctx_create_ub_event(); after(arg) runs after each of
 * libunbound's callbacks has returned. */
struct ub_event_base	*dns_event_base_new(struct ev_loop *,
			    void (*after)(void *), void *arg);
/* After ub_ctx_delete() of the context that used it. */
void			 dns_event_base_free(struct ub_event_base *);

#endif
