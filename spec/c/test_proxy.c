/*
 * test_proxy.c — unit cases for src/net/proxy.c (PROXY protocol v1 and
 * v2 headers) and src/net/cidr.c (the trusted-proxy list).
 *
 * Every header is also fed one octet at a time: each proper prefix must
 * be AGAIN (or INVALID at the same octet the whole header is), and the
 * complete one must give the same result; octets after the header are
 * never counted in its length.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "net/cidr.h"
#include "net/proxy.h"
#include "unit.h"

static const char sig[] = "\r\n\r\n\0\r\nQUIT\n";	/* 12 octets */

/* The header at p (n octets) parsed whole, and prefix by prefix. */
static enum proxy_status
parse(const void *p, size_t n, struct proxy_result *r)
{
	const uint8_t *in = (const uint8_t *)unit_dup(p, n);
	enum proxy_status whole = proxy_parse(in, n, r), st = PROXY_AGAIN;
	struct proxy_result pr;
	size_t i, mark = unit_mark();

	/* Exact-size copies: ASan sees any read past the octets given. */
	for (i = 1; i <= n && st == PROXY_AGAIN; i++) {
		st = proxy_parse((const uint8_t *)unit_dup(p, i), i, &pr);
		unit_release(mark);
	}
	if (whole == PROXY_DONE) {
		CHECK_INT(st, PROXY_DONE);
		CHECK_INT(pr.len, r->len);
		CHECK_INT(i - 1, r->len);	/* done exactly at its end */
		CHECK(r->len <= n);
	} else {
		CHECK_INT(st, whole);
	}
	return whole;
}

static enum proxy_status
parse_str(const char *s, struct proxy_result *r)
{
	return parse(s, strlen(s), r);
}

static void
check_in(const struct sockaddr_storage *ss, const char *ip, int port)
{
	char buf[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf));
		CHECK_INT(ntohs(s->sin_port), port);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		CHECK_INT(ss->ss_family, AF_INET6);
		inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf));
		CHECK_INT(ntohs(s->sin6_port), port);
	}
	CHECK_STR(buf, ip);
}

/* A v2 header: fixed part, then body (blen octets) into out; its size. */
static size_t
v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t blen)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen > 0)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

static void
v1_tcp4(void)
{
	struct proxy_result r;
	const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 51234 25\r\n";

	CHECK_INT(parse_str(h, &r), PROXY_DONE);
	CHECK_INT(r.version, 1);
	CHECK_INT(r.command, PROXY_CMD_PROXY);
	CHECK_INT(r.len, strlen(h));
	check_in(&r.src, "192.0.2.7", 51234);
	check_in(&r.dst, "198.51.100.1", 25);
}

static void
v1_tcp6_with_data_behind(void)
{
	struct proxy_result r;
	const char *h = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
	char buf[200];

	snprintf(buf, sizeof(buf), "%sEHLO x\r\n", h);
	CHECK_INT(proxy_parse((const uint8_t *)buf, strlen(buf), &r),
	    PROXY_DONE);
	CHECK_INT(r.len, strlen(h));
	check_in(&r.src, "2001:db8::7", 65535);
	check_in(&r.dst, "2001:db8::1", 0);
}

static void
v1_longest_line_is_107(void)
{
	struct proxy_result r;
	const char *f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
	char h[160];

	/* The spec's worst case: UNKNOWN with every optional field. */
	snprintf(h, sizeof(h), "PROXY UNKNOWN %s %s 65535 65535\r\n", f, f);
	CHECK_INT(strlen(h), PROXY_V1_MAX);
	CHECK_INT(parse_str(h, &r), PROXY_DONE);
	snprintf(h, sizeof(h), "PROXY TCP6 %s %s 65535 65535\r\n", f, f);
	CHECK_INT(parse_str(h, &r), PROXY_DONE);
	check_in(&r.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	/* One octet more is too long, whatever it says. */
	snprintf(h, sizeof(h), "PROXY UNKNOWN %s %s 65535 655350\r\n", f, f);
	CHECK_INT(parse_str(h, &r), PROXY_INVALID);
	CHECK_STR(r.error, "v1: line too long");
}

static void
v1_unknown(void)
{
	struct proxy_result r;

	CHECK_INT(parse_str("PROXY UNKNOWN\r\n", &r), PROXY_DONE);
	CHECK_INT(r.command, PROXY_CMD_LOCAL);
	CHECK_INT(parse_str("PROXY UNKNOWN ffff:: ffff:: 1 2\r\n", &r),
	    PROXY_DONE);
	CHECK_INT(r.command, PROXY_CMD_LOCAL);
	CHECK_INT(parse_str("PROXY UNKNOWNX\r\n", &r), PROXY_INVALID);
}

static void
v1_malformed(void)
{
	static const char *bad[] = {
		"PROXY TCP4 192.0.2.7 198.51.100.1 51234 25\n",	/* bare LF */
		"PROXY TCP4 192.0.2.7 198.51.100.1 51234\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 51234 25 \r\n",
		"PROXY TCP4  192.0.2.7 198.51.100.1 51234 25\r\n",
		"PROXY TCP4 2001:db8::7 198.51.100.1 51234 25\r\n",
		"PROXY TCP6 192.0.2.7 2001:db8::1 51234 25\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 -1 25\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 +1 25\r\n",
		"PROXY TCP4 192.0.2.256 198.51.100.1 1 25\r\n",
		"PROXY TCP4 192.0.2.07 198.51.100.1 1 25\r\n",
		"PROXY TCP6 fe80::1%eth0 ::1 1 25\r\n",
		"PROXY UDP4 192.0.2.7 198.51.100.1 1 25\r\n",
		"PROXY tcp4 192.0.2.7 198.51.100.1 1 25\r\n",
		"PROXY \r\n",
		"PROXY\r\n",
		"proxy TCP4 192.0.2.7 198.51.100.1 1 25\r\n",
		"EHLO client.test\r\n",
		"\r\n\r\n\r",	/* neither v1 nor the v2 signature */
	};
	struct proxy_result r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_str(bad[i], &r) != PROXY_INVALID)
			unit_fail(__FILE__, __LINE__, "case %zu accepted", i);
		CHECK(r.error != NULL);
	}
}

static void
v1_control_octets(void)
{
	struct proxy_result r;
	const char h[] = "PROXY TCP4 192.0.2.7\0198.51.100.1 1 25\r\n";

	CHECK_INT(parse(h, sizeof(h) - 1, &r), PROXY_INVALID);
	CHECK_INT(parse_str("PROXY TCP4 192.0.2.7\t198.51.100.1 1 25\r\n", &r),
	    PROXY_INVALID);
}

static void
v1_without_end_is_again_then_too_long(void)
{
	struct proxy_result r;
	char h[PROXY_V1_MAX + 1];

	CHECK_INT(proxy_parse((const uint8_t *)"PRO", 3, &r), PROXY_AGAIN);
	memset(h, 'x', sizeof(h));
	memcpy(h, "PROXY ", 6);
	CHECK_INT(proxy_parse((const uint8_t *)h, PROXY_V1_MAX - 1, &r),
	    PROXY_AGAIN);
	CHECK_INT(proxy_parse((const uint8_t *)h, PROXY_V1_MAX, &r),
	    PROXY_INVALID);
}

static void
v2_inet_with_tlvs(void)
{
	uint8_t body[12 + 3 + 4 + 3], h[64];
	struct proxy_result r;
	size_t n;

	inet_pton(AF_INET, "192.0.2.7", body);
	inet_pton(AF_INET, "198.51.100.1", body + 4);
	body[8] = 0xc8, body[9] = 0x22;		/* 51234 */
	body[10] = 0, body[11] = 25;
	memcpy(body + 12, "\x04\x00\x04" "abcd", 7);	/* NOOP TLV */
	memcpy(body + 19, "\x01\x00\x00", 3);	/* empty ALPN TLV */
	n = v2(h, 0x21, 0x11, body, sizeof(body));
	CHECK_INT(parse(h, n, &r), PROXY_DONE);
	CHECK_INT(r.version, 2);
	CHECK_INT(r.command, PROXY_CMD_PROXY);
	CHECK_INT(r.len, n);
	check_in(&r.src, "192.0.2.7", 51234);
	check_in(&r.dst, "198.51.100.1", 25);
}

static void
v2_inet6(void)
{
	uint8_t body[36], h[64];
	struct proxy_result r;
	size_t n;

	inet_pton(AF_INET6, "2001:db8::7", body);
	inet_pton(AF_INET6, "2001:db8::1", body + 16);
	body[32] = 0x01, body[33] = 0x00;
	body[34] = 0, body[35] = 25;
	n = v2(h, 0x21, 0x21, body, sizeof(body));
	CHECK_INT(parse(h, n, &r), PROXY_DONE);
	check_in(&r.src, "2001:db8::7", 256);
	check_in(&r.dst, "2001:db8::1", 25);
}

static void
v2_unix(void)
{
	uint8_t body[216], h[240];
	struct proxy_result r;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&r.src;
	size_t n;

	memset(body, 0, sizeof(body));
	memcpy(body, "/run/client.sock", 16);
	memset(body + 108, 'p', 108);		/* no NUL: cut, terminated */
	n = v2(h, 0x21, 0x31, body, sizeof(body));
	CHECK_INT(parse(h, n, &r), PROXY_DONE);
	CHECK_INT(r.src.ss_family, AF_UNIX);
	CHECK_STR(sun->sun_path, "/run/client.sock");
	sun = (const struct sockaddr_un *)&r.dst;
	CHECK_INT(strlen(sun->sun_path), sizeof(sun->sun_path) - 1);
}

static void
v2_local_and_unspec_use_the_connection(void)
{
	uint8_t h[64], junk[5] = { 1, 2, 3, 4, 5 };
	struct proxy_result r;
	size_t n;

	n = v2(h, 0x20, 0x00, NULL, 0);
	CHECK_INT(parse(h, n, &r), PROXY_DONE);
	CHECK_INT(r.command, PROXY_CMD_LOCAL);
	CHECK_INT(r.len, 16);
	/* LOCAL ignores the family and the block, even a short one. */
	n = v2(h, 0x20, 0x11, junk, sizeof(junk));
	CHECK_INT(parse(h, n, &r), PROXY_DONE);
	CHECK_INT(r.command, PROXY_CMD_LOCAL);
	CHECK_INT(r.len, 21);
	n = v2(h, 0x21, 0x00, junk, sizeof(junk));
	CHECK_INT(parse(h, n, &r), PROXY_DONE);
	CHECK_INT(r.command, PROXY_CMD_LOCAL);
}

static void
v2_malformed(void)
{
	uint8_t body[40], h[80];
	struct proxy_result r;
	size_t n;

	memset(body, 0, sizeof(body));
	n = v2(h, 0x11, 0x11, body, 12);	/* version 1 */
	CHECK_INT(parse(h, n, &r), PROXY_INVALID);
	n = v2(h, 0x22, 0x11, body, 12);	/* command 2 */
	CHECK_INT(parse(h, n, &r), PROXY_INVALID);
	n = v2(h, 0x21, 0x12, body, 12);	/* UDP */
	CHECK_INT(parse(h, n, &r), PROXY_INVALID);
	n = v2(h, 0x21, 0x41, body, 12);	/* family 4 */
	CHECK_INT(parse(h, n, &r), PROXY_INVALID);
	n = v2(h, 0x21, 0x11, body, 11);	/* short IPv4 block */
	CHECK_INT(parse(h, n, &r), PROXY_INVALID);
	n = v2(h, 0x21, 0x21, body, 35);	/* short IPv6 block */
	CHECK_INT(parse(h, n, &r), PROXY_INVALID);
	body[12] = 4, body[13] = 0, body[14] = 9;	/* TLV past the end */
	n = v2(h, 0x21, 0x11, body, 12 + 3 + 8);
	CHECK_INT(parse(h, n, &r), PROXY_INVALID);
	CHECK_STR(r.error, "v2: TLV beyond the header");
	n = v2(h, 0x21, 0x11, body, 12 + 2);	/* half a TLV head */
	CHECK_INT(parse(h, n, &r), PROXY_INVALID);
	memcpy(h, sig, 12);
	h[5] = 'X';				/* bad signature */
	CHECK_INT(proxy_parse(h, 6, &r), PROXY_INVALID);
}

static void
v2_length_bound(void)
{
	static uint8_t h[PROXY_HEADER_MAX + 16];
	struct proxy_result r;

	memset(h, 0, sizeof(h));
	memcpy(h, sig, 12);
	h[12] = 0x20;
	h[14] = PROXY_V2_LEN_MAX >> 8;
	h[15] = PROXY_V2_LEN_MAX & 0xff;
	CHECK_INT(proxy_parse(h, 16, &r), PROXY_AGAIN);
	CHECK_INT(proxy_parse(h, PROXY_HEADER_MAX - 1, &r), PROXY_AGAIN);
	CHECK_INT(proxy_parse(h, sizeof(h), &r), PROXY_DONE);
	CHECK_INT(r.len, PROXY_HEADER_MAX);
	h[15]++;				/* one more: refused unread */
	CHECK_INT(proxy_parse(h, 16, &r), PROXY_INVALID);
	CHECK_STR(r.error, "v2: header too long");
	h[14] = 0xff, h[15] = 0xff;
	CHECK_INT(proxy_parse(h, 16, &r), PROXY_INVALID);
}

static void
empty_is_again(void)
{
	struct proxy_result r;

	CHECK_INT(proxy_parse((const uint8_t *)"", 0, &r), PROXY_AGAIN);
}

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, text,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		unit_fail(__FILE__, __LINE__, "bad test address %s", text);
	return ss;
}

static bool
in_list(const char *const *list, size_t n, const char *text)
{
	struct cidr c[8];
	struct sockaddr_storage ss = addr(text);

	for (size_t i = 0; i < n; i++)
		if (cidr_parse(list[i], &c[i]) != 0)
			unit_fail(__FILE__, __LINE__, "cannot parse %s", list[i]);
	return cidr_match(c, n, (const struct sockaddr *)&ss);
}

static void
cidr_matches(void)
{
	static const char *list[] = { "127.0.0.1", "10.1.2.3/8", "::1/128",
	    "2001:db8::/32" };

	CHECK(in_list(list, 4, "127.0.0.1"));
	CHECK(!in_list(list, 4, "127.0.0.2"));
	CHECK(in_list(list, 4, "10.255.0.1"));
	CHECK(!in_list(list, 4, "11.0.0.1"));
	CHECK(in_list(list, 4, "::1"));
	CHECK(!in_list(list, 4, "::2"));
	CHECK(in_list(list, 4, "2001:db8:ffff::1"));
	CHECK(!in_list(list, 4, "2001:db9::1"));
	CHECK(in_list(list, 4, "::ffff:127.0.0.1"));	/* mapped */
	CHECK(!in_list(list, 4, "::ffff:127.0.0.2"));
}

static void
cidr_edges(void)
{
	static const char *all[] = { "0.0.0.0/0", "::/0" };
	static const char *odd[] = { "192.0.2.128/25", "2001:db8::/33" };
	struct cidr c;
	struct sockaddr_un un;

	CHECK(in_list(all, 2, "203.0.113.9"));
	CHECK(in_list(all, 2, "2001:db8::9"));
	CHECK(in_list(odd, 2, "192.0.2.200"));
	CHECK(!in_list(odd, 2, "192.0.2.100"));
	CHECK(in_list(odd, 2, "2001:db8:7fff::1"));
	CHECK(!in_list(odd, 2, "2001:db8:8000::1"));
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	CHECK(cidr_parse("0.0.0.0/0", &c) == 0);
	CHECK(!cidr_match(&c, 1, (const struct sockaddr *)&un));
	CHECK(cidr_parse("10.0.0.0/33", &c) != 0);
	CHECK(cidr_parse("::/129", &c) != 0);
	CHECK(cidr_parse("10.0.0.0/", &c) != 0);
	CHECK(cidr_parse("10.0.0.0/-1", &c) != 0);
	CHECK(cidr_parse("10.0.0.0/8x", &c) != 0);
	CHECK(cidr_parse("localhost", &c) != 0);
	CHECK(cidr_parse("", &c) != 0);
	CHECK(cidr_parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128/1",
	    &c) != 0);
}

static const struct unit_case cases[] = {
	{ "v1 TCP4 header", v1_tcp4 },
	{ "v1 TCP6 header with the session behind it",
	    v1_tcp6_with_data_behind },
	{ "v1 longest line is 107 octets", v1_longest_line_is_107 },
	{ "v1 UNKNOWN keeps the connection's addresses", v1_unknown },
	{ "v1 malformed lines are invalid", v1_malformed },
	{ "v1 control octets are invalid", v1_control_octets },
	{ "v1 without its end is again then too long",
	    v1_without_end_is_again_then_too_long },
	{ "v2 IPv4 with TLVs skipped", v2_inet_with_tlvs },
	{ "v2 IPv6", v2_inet6 },
	{ "v2 unix paths are cut and terminated", v2_unix },
	{ "v2 LOCAL and UNSPEC keep the connection's addresses",
	    v2_local_and_unspec_use_the_connection },
	{ "v2 malformed headers are invalid", v2_malformed },
	{ "v2 length is bounded", v2_length_bound },
	{ "nothing yet is again", empty_is_again },
	{ "cidr lists match addresses and mapped IPv4", cidr_matches },
	{ "cidr prefixes at the edges and bad ones", cidr_edges },
};

UNIT_MAIN(cases)
