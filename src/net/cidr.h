/*
 * cidr.h — address prefixes ("192.0.2.0/24", "2001:db8::/32", "::1") and
 * whether an address lies in one of a list (the trusted PROXY senders of
 * a listener, config "proxy_from").
 *
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2)
 * matches as the IPv4 address it is, so a dual-stack socket cannot slip
 * past an IPv4 entry.
 */
#ifndef LUASMTPD_CIDR_H
#define LUASMTPD_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int	family;		/* AF_INET or AF_INET6 */
	uint8_t	addr[16];	/* network order, bits past prefix zero */
	int	prefix;		/* 0..32 or 0..128 */
};

/*
 * Parse "ADDR" (a whole address: /32 or /128) or "ADDR/N"; numeric only.
 * 0, or -1 if malformed (the host bits need not be zero: they are
 * cleared, as "192.0.2.7/24" means 192.0.2.0/24).
 */
int	cidr_parse(const char *, struct cidr *);
/* Whether sa (AF_INET or AF_INET6; others never match) is in one of n. */
bool	cidr_match(const struct cidr *, size_t n, const struct sockaddr *sa);

#endif
