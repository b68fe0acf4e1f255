/*
 * test_iplimit.c — unit cases for src/net/iplimit.c (per-client counts).
 *
 * Synthetic sockaddrs only: no socket is opened.  IPv4 counts per address,
 * IPv6 per /64, an IPv4-mapped IPv6 address as its IPv4 address, and
 * release gives the count back and frees the entry.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "net/iplimit.h"
#include "unit.h"

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(40000);
	} else if (inet_pton(AF_INET6, text,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(40001);
	} else {
		unit_fail(__FILE__, __LINE__, "bad test address %s", text);
	}
	return ss;
}

#define SA(ss)	((const struct sockaddr *)&(ss))

static void
ipv4_counts_per_address(void)
{
	struct sockaddr_storage a = addr("192.0.2.1"), b = addr("192.0.2.2");

	CHECK_INT(iplimit_acquire(SA(a), 2), 0);
	CHECK_INT(iplimit_acquire(SA(a), 2), 0);
	CHECK_INT(iplimit_acquire(SA(a), 2), -1);
	CHECK_INT(iplimit_acquire(SA(b), 2), 0);
	CHECK_INT(iplimit_count(SA(a)), 2);
	CHECK_INT(iplimit_count(SA(b)), 1);
	CHECK_INT(iplimit_entries(), 2);
	iplimit_release(SA(a));
	iplimit_release(SA(a));
	iplimit_release(SA(b));
	CHECK_INT(iplimit_entries(), 0);
}

static void
ipv6_addresses_in_one_64_share_the_count(void)
{
	struct sockaddr_storage a = addr("2001:db8:1:2::1");
	struct sockaddr_storage b = addr("2001:db8:1:2:ffff:ffff:ffff:ffff");
	struct sockaddr_storage c = addr("2001:db8:1:2:1234::99");

	CHECK_INT(iplimit_acquire(SA(a), 2), 0);
	CHECK_INT(iplimit_acquire(SA(b), 2), 0);
	CHECK_INT(iplimit_acquire(SA(c), 2), -1);
	CHECK_INT(iplimit_count(SA(c)), 2);
	CHECK_INT(iplimit_entries(), 1);
	iplimit_release(SA(b));
	CHECK_INT(iplimit_count(SA(a)), 1);
	CHECK_INT(iplimit_acquire(SA(c), 2), 0);
	iplimit_release(SA(a));
	iplimit_release(SA(c));
	CHECK_INT(iplimit_count(SA(a)), 0);
	CHECK_INT(iplimit_entries(), 0);
}

static void
ipv6_different_64s_count_apart(void)
{
	struct sockaddr_storage a = addr("2001:db8:1:2::1");
	struct sockaddr_storage b = addr("2001:db8:1:3::1");	/* next /64 */
	struct sockaddr_storage c = addr("2001:db9:1:2::1");	/* other /32 */

	CHECK_INT(iplimit_acquire(SA(a), 1), 0);
	CHECK_INT(iplimit_acquire(SA(b), 1), 0);
	CHECK_INT(iplimit_acquire(SA(c), 1), 0);
	CHECK_INT(iplimit_acquire(SA(a), 1), -1);
	CHECK_INT(iplimit_entries(), 3);
	CHECK_INT(iplimit_count(SA(b)), 1);
	iplimit_release(SA(a));
	iplimit_release(SA(b));
	iplimit_release(SA(c));
	CHECK_INT(iplimit_entries(), 0);
}

static void
ipv4_mapped_ipv6_counts_as_ipv4(void)
{
	struct sockaddr_storage v4 = addr("198.51.100.7");
	struct sockaddr_storage mapped = addr("::ffff:198.51.100.7");
	struct sockaddr_storage other = addr("::ffff:198.51.100.8");

	CHECK_INT(iplimit_acquire(SA(v4), 2), 0);
	CHECK_INT(iplimit_acquire(SA(mapped), 2), 0);
	CHECK_INT(iplimit_acquire(SA(v4), 2), -1);
	CHECK_INT(iplimit_acquire(SA(mapped), 2), -1);
	CHECK_INT(iplimit_count(SA(v4)), 2);
	/* The neighbour in ::ffff:0:0/96 is its own IPv4 address. */
	CHECK_INT(iplimit_acquire(SA(other), 2), 0);
	CHECK_INT(iplimit_entries(), 2);
	iplimit_release(SA(mapped));
	CHECK_INT(iplimit_count(SA(v4)), 1);
	iplimit_release(SA(v4));
	iplimit_release(SA(other));
	CHECK_INT(iplimit_entries(), 0);
}

static void
release_gives_back_and_frees(void)
{
	struct sockaddr_storage a = addr("203.0.113.9");
	struct sockaddr_storage b = addr("2001:db8::5");

	for (int i = 0; i < 100; i++) {
		CHECK_INT(iplimit_acquire(SA(a), 0), 0);	/* 0: no limit */
		CHECK_INT(iplimit_acquire(SA(b), 100), 0);
	}
	CHECK_INT(iplimit_count(SA(a)), 100);
	CHECK_INT(iplimit_acquire(SA(b), 100), -1);
	CHECK_INT(iplimit_entries(), 2);
	for (int i = 0; i < 100; i++) {
		iplimit_release(SA(a));
		iplimit_release(SA(b));
	}
	CHECK_INT(iplimit_count(SA(a)), 0);
	CHECK_INT(iplimit_count(SA(b)), 0);
	CHECK_INT(iplimit_entries(), 0);
	/* A release with nothing counted changes nothing. */
	iplimit_release(SA(a));
	CHECK_INT(iplimit_entries(), 0);
}

static void
unix_sockets_are_not_limited(void)
{
	struct sockaddr_un un;

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	for (int i = 0; i < 3; i++)
		CHECK_INT(iplimit_acquire((struct sockaddr *)&un, 1), 0);
	CHECK_INT(iplimit_count((struct sockaddr *)&un), 0);
	CHECK_INT(iplimit_entries(), 0);
	iplimit_release((struct sockaddr *)&un);
}

static const struct unit_case cases[] = {
	{ "ipv4 counts per address", ipv4_counts_per_address },
	{ "ipv6 addresses in one /64 share the count",
	    ipv6_addresses_in_one_64_share_the_count },
	{ "ipv6 different /64s count apart", ipv6_different_64s_count_apart },
	{ "ipv4-mapped ipv6 counts as ipv4", ipv4_mapped_ipv6_counts_as_ipv4 },
	{ "release gives the count back and frees the entry",
	    release_gives_back_and_frees },
	{ "unix sockets are not limited", unix_sockets_are_not_limited },
};

UNIT_MAIN(cases)
