/*
 * iplimit.h — concurrent connections per client address.
 *
 * A small chained hash keyed by address family and bytes: an IPv4 address,
 * or the /64 (IPLIMIT_V6_PREFIX) of an IPv6 address; an IPv4-mapped IPv6
 * address counts as its IPv4 address.  Entries exist only while the key
 * has connections, so the table never holds more than max_connections
 * entries.
 */
#ifndef LUASMTPD_IPLIMIT_H
#define LUASMTPD_IPLIMIT_H

#include <sys/socket.h>

/* 0 and the address counted, or -1 if it already has max connections. */
int	iplimit_acquire(const struct sockaddr *, unsigned max);
void	iplimit_release(const struct sockaddr *);
/* Current count for an address's key (for tests and logs). */
unsigned iplimit_count(const struct sockaddr *);
/* Keys with connections now (for tests). */
unsigned iplimit_entries(void);

#endif
