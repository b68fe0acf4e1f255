/*
 * cidr.c — address prefixes and matching (see cidr.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/cidr.h"

/* The longest "ADDR/NNN" we read: an IPv6 address with an IPv4 tail. */
#define CIDR_TEXT_MAX	(INET6_ADDRSTRLEN + 4)

static const uint8_t v4_mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Clear the bits of addr past prefix. */
static void
mask(uint8_t addr[16], int prefix)
{
	for (int i = 0; i < 16; i++) {
		int bits = prefix - i * 8;

		if (bits >= 8)
			continue;
		addr[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

int
cidr_parse(const char *text, struct cidr *c)
{
	char buf[CIDR_TEXT_MAX + 1], *slash, *end;
	long prefix;
	int max;

	if (strlen(text) > CIDR_TEXT_MAX)
		return -1;
	memcpy(buf, text, strlen(text) + 1);
	memset(c, 0, sizeof(*c));
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	c->prefix = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		prefix = strtol(slash + 1, &end, 10);
		if (*end != '\0' || prefix < 0 || prefix > max)
			return -1;
		c->prefix = (int)prefix;
	}
	mask(c->addr, c->prefix);
	return 0;
}

bool
cidr_match(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	uint8_t addr[16];
	int family;

	memset(addr, 0, sizeof(addr));
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a =
		    ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0) {
			memcpy(addr, a + 12, 4);
			family = AF_INET;
		} else {
			memcpy(addr, a, 16);
			family = AF_INET6;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t m[16];

		if (list[i].family != family)
			continue;
		memcpy(m, addr, sizeof(m));
		mask(m, list[i].prefix);
		if (memcmp(m, list[i].addr, sizeof(m)) == 0)
			return true;
	}
	return false;
}
