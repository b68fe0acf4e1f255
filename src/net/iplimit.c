/*
 * iplimit.c — per-address connection counts (see iplimit.h).
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/iplimit.h"
#include "util/xmalloc.h"

#define IPLIMIT_BUCKETS	4096	/* power of two */

struct ip_entry {
	struct ip_entry	*next;
	uint8_t		 family;
	uint8_t		 addr[16];
	unsigned	 count;
};

static struct ip_entry *buckets[IPLIMIT_BUCKETS];

static int
key_of(const struct sockaddr *sa, uint8_t *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(addr, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(addr, &in6->sin6_addr, 16);
	} else {
		return -1;
	}
	*family = (uint8_t)sa->sa_family;
	return 0;
}

static uint32_t
hash_key(uint8_t family, const uint8_t addr[16])
{
	/* FNV-1a: the table only needs spread, not secrecy. */
	uint32_t h = 2166136261u ^ family;

	for (int i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 16777619u;
	return h & (IPLIMIT_BUCKETS - 1);
}

static struct ip_entry **
find(uint8_t family, const uint8_t addr[16])
{
	struct ip_entry **pp = &buckets[hash_key(family, addr)];

	while (*pp != NULL && ((*pp)->family != family ||
	    memcmp((*pp)->addr, addr, 16) != 0))
		pp = &(*pp)->next;
	return pp;
}

int
iplimit_acquire(const struct sockaddr *sa, unsigned max)
{
	struct ip_entry **pp, *e;
	uint8_t family, addr[16];

	if (key_of(sa, &family, addr) != 0)
		return 0;	/* unix sockets are not limited per address */
	pp = find(family, addr);
	if ((e = *pp) == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->family = family;
		memcpy(e->addr, addr, 16);
		*pp = e;
	}
	if (max > 0 && e->count >= max)
		return -1;
	e->count++;
	return 0;
}

void
iplimit_release(const struct sockaddr *sa)
{
	struct ip_entry **pp, *e;
	uint8_t family, addr[16];

	if (key_of(sa, &family, addr) != 0)
		return;
	pp = find(family, addr);
	if ((e = *pp) == NULL)
		return;
	if (e->count > 0)
		e->count--;
	if (e->count == 0) {
		*pp = e->next;
		free(e);
	}
}

unsigned
iplimit_count(const struct sockaddr *sa)
{
	struct ip_entry **pp;
	uint8_t family, addr[16];

	if (key_of(sa, &family, addr) != 0)
		return 0;
	pp = find(family, addr);
	return *pp != NULL ? (*pp)->count : 0;
}
