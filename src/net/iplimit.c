/*
 * iplimit.c — per-address connection counts (see iplimit.h).
 *
 * SECURITY: the key is the unit an attacker pays for.  An IPv4 client has
 * one address; an IPv6 client is routinely given a whole /64 (RFC 4291
 * section 2.5.1: interface identifiers are 64 bits; RFC 6177 assigns a /48
 * or /56 to a site), so counting per /128 would let one host open 2^64
 * "different" clients.  IPv6 addresses are cut to IPLIMIT_V6_PREFIX bits;
 * IPv4-mapped addresses (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2) count
 * as the IPv4 address they are.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/iplimit.h"
#include "util/xmalloc.h"

#define IPLIMIT_BUCKETS	4096	/* power of two */
/*
 * Bits of an IPv6 address that name a client: a /64 is the smallest
 * prefix a host gets (see the header), so it is counted as one address.
 * A multiple of 8.
 */
#define IPLIMIT_V6_PREFIX	64
_Static_assert(IPLIMIT_V6_PREFIX % 8 == 0 && IPLIMIT_V6_PREFIX <= 128,
    "IPLIMIT_V6_PREFIX is a whole number of bytes of an IPv6 address");

struct ip_entry {
	struct ip_entry	*next;
	uint8_t		 family;
	uint8_t		 addr[16];
	unsigned	 count;
};

static struct ip_entry *buckets[IPLIMIT_BUCKETS];
static unsigned nentries;

static const uint8_t v4_mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static int
key_of(const struct sockaddr *sa, uint8_t *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(addr, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *a = in6->sin6_addr.s6_addr;

		if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0) {
			memcpy(addr, a + 12, 4);
			*family = AF_INET;
			return 0;
		}
		memcpy(addr, a, IPLIMIT_V6_PREFIX / 8);
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
		nentries++;
	}
	if (max > 0 && e->count >= max)
		return -1;	/* e->count > 0: the entry stays in use */
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
		nentries--;
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

unsigned
iplimit_entries(void)
{
	return nentries;
}
