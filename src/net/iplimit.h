/*
 * iplimit.h — concurrent connections per client address.
 *
 * A small chained hash keyed by address family and bytes.  Entries exist
 * only while the address has connections, so the table never holds more
 * than max_connections entries.
 */
#ifndef LUASMTPD_IPLIMIT_H
#define LUASMTPD_IPLIMIT_H

#include <sys/socket.h>

/* 0 and the address counted, or -1 if it already has max connections. */
int	iplimit_acquire(const struct sockaddr *, unsigned max);
void	iplimit_release(const struct sockaddr *);
/* Current count for an address (for tests and logs). */
unsigned iplimit_count(const struct sockaddr *);

#endif
