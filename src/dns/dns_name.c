/*
 * dns_name.c — reverse query names of addresses: PTR names (RFC 1035
 * §3.5 in-addr.arpa, RFC 3596 §2.5 ip6.arpa) and DNSBL names (RFC 5782
 * §2.1 IPv4: reversed octets, §2.4 IPv6: reversed nibbles) under a zone.
 * Pure functions: no allocation, no I/O.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dns/dns.h"

/* The reversed labels of ip ("1.2.0.192", 32 nibbles); -1 if no address. */
static int
reverse_labels(const char *ip, char *out, size_t outlen, bool *v6)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char a[16];
	size_t o = 0;

	if (inet_pton(AF_INET, ip, a) == 1) {
		*v6 = false;
		if ((size_t)snprintf(out, outlen, "%u.%u.%u.%u", a[3], a[2],
		    a[1], a[0]) >= outlen)
			return -1;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	*v6 = true;
	if (outlen < 64)
		return -1;
	for (int i = 15; i >= 0; i--) {
		out[o++] = hex[a[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = i > 0 ? '.' : '\0';
	}
	return 0;
}

int
dns_ptr_name(const char *ip, char *out, size_t outlen)
{
	char labels[64];
	bool v6;

	if (reverse_labels(ip, labels, sizeof(labels), &v6) != 0)
		return -1;
	if ((size_t)snprintf(out, outlen, "%s.%s", labels,
	    v6 ? "ip6.arpa" : "in-addr.arpa") >= outlen)
		return -1;
	return 0;
}

int
dns_dnsbl_name(const char *ip, const char *zone, char *out, size_t outlen)
{
	char labels[64];
	size_t zlen;
	bool v6;

	if (zone == NULL || reverse_labels(ip, labels, sizeof(labels), &v6) != 0)
		return -1;
	while (*zone == '.')
		zone++;
	zlen = strlen(zone);
	if (zlen == 0)
		return -1;
	if ((size_t)snprintf(out, outlen, "%s.%s", labels, zone) >= outlen)
		return -1;
	return 0;
}
