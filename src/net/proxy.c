/*
 * proxy.c — PROXY protocol v1 and v2 header parser (see proxy.h).
 *
 * Follows HAProxy's specification (doc/proxy-protocol.txt) strictly: v1
 * fields are separated by single spaces, addresses must be of the family
 * the protocol names, the line ends in CRLF within 107 octets; v2 needs
 * version 2, a known command, one of the family/transport pairs the spec
 * defines for a stream (UNSPEC, TCP over IPv4 or IPv6, UNIX stream), an
 * address block as long as its family needs, and TLVs that fit exactly.
 * Anything else is INVALID at the first octet that proves it.
 *
 * SECURITY: no octet is read past n, and nothing is copied into a buffer
 * without a bound check; a unix path is cut to sun_path and terminated.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "net/proxy.h"

static const uint8_t v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char v1_prefix[] = "PROXY ";

/* v2 octet 13: the version in the high nibble, the command in the low. */
#define V2_VERSION		0x20
#define V2_CMD_LOCAL		0x00
#define V2_CMD_PROXY		0x01
/* v2 octet 14: family << 4 | transport. */
#define V2_UNSPEC		0x00
#define V2_TCP4			0x11
#define V2_TCP6			0x21
#define V2_UNIX_STREAM		0x31
/* Address block lengths of each family. */
#define V2_LEN_INET		12
#define V2_LEN_INET6		36
#define V2_UNIX_PATH		108
#define V2_LEN_UNIX		(2 * V2_UNIX_PATH)
#define V2_TLV_HEAD		3	/* type, length (16 bits) */

/* The longest address token of v1: a full IPv6 address with IPv4 tail. */
#define V1_ADDR_MAX		45
#define V1_PORT_MAX		5

static enum proxy_status
invalid(struct proxy_result *r, const char *why)
{
	r->error = why;
	return PROXY_INVALID;
}

/* The token of [p, end) up to the next space: its length, 0 if none. */
static size_t
token(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && *q != ' ')
		q++;
	return (size_t)(q - p);
}

/* A v1 address of family af with port into ss; -1 if malformed. */
static int
v1_addr(int af, const char *a, size_t alen, const char *port, size_t plen,
    struct sockaddr_storage *ss)
{
	char buf[V1_ADDR_MAX + 1];
	unsigned long v = 0;

	if (alen == 0 || alen > V1_ADDR_MAX || plen == 0 || plen > V1_PORT_MAX)
		return -1;
	for (size_t i = 0; i < plen; i++) {
		if (port[i] < '0' || port[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(port[i] - '0');
	}
	if (v > 65535)
		return -1;
	memcpy(buf, a, alen);
	buf[alen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)v);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)v);
	}
	return 0;
}

/* "PROXY TCP4 src dst sport dport" without CRLF, len octets at line. */
static enum proxy_status
v1_line(const char *line, size_t len, struct proxy_result *r)
{
	const char *p = line + sizeof(v1_prefix) - 1, *end = line + len;
	const char *f[4];
	size_t flen[4], n;
	int af;

	n = token(p, end);
	if (n == 7 && memcmp(p, "UNKNOWN", 7) == 0) {
		/* The rest of the line, if any, is to be ignored. */
		if (p + n != end && p[n] != ' ')
			return invalid(r, "v1: bad protocol");
		r->command = PROXY_CMD_LOCAL;
		return PROXY_DONE;
	}
	if (n == 4 && memcmp(p, "TCP4", 4) == 0)
		af = AF_INET;
	else if (n == 4 && memcmp(p, "TCP6", 4) == 0)
		af = AF_INET6;
	else
		return invalid(r, "v1: bad protocol");
	p += n;
	for (int i = 0; i < 4; i++) {
		if (p >= end || *p != ' ')
			return invalid(r, "v1: missing field");
		p++;
		f[i] = p;
		flen[i] = token(p, end);
		p += flen[i];
	}
	if (p != end)
		return invalid(r, "v1: trailing data");
	if (v1_addr(af, f[0], flen[0], f[2], flen[2], &r->src) != 0 ||
	    v1_addr(af, f[1], flen[1], f[3], flen[3], &r->dst) != 0)
		return invalid(r, "v1: bad address or port");
	r->command = PROXY_CMD_PROXY;
	return PROXY_DONE;
}

static enum proxy_status
parse_v1(const uint8_t *p, size_t n, struct proxy_result *r)
{
	size_t look = n < PROXY_V1_MAX ? n : PROXY_V1_MAX;
	const uint8_t *lf;

	if (memcmp(p, v1_prefix, n < 6 ? n : 6) != 0)
		return invalid(r, "not a PROXY header");
	lf = memchr(p, '\n', look);
	if (lf == NULL)
		return n >= PROXY_V1_MAX ? invalid(r, "v1: line too long") :
		    PROXY_AGAIN;
	if (lf == p || lf[-1] != '\r')
		return invalid(r, "v1: line not ended by CRLF");
	if ((size_t)(lf - p) < 7)
		return invalid(r, "v1: line too short");
	r->version = 1;
	r->len = (size_t)(lf - p) + 1;
	/* The line holds no NUL or other control octet. */
	for (const uint8_t *q = p; q < lf - 1; q++)
		if (*q < 0x20 || *q > 0x7e)
			return invalid(r, "v1: control octet in the line");
	return v1_line((const char *)p, r->len - 2, r);
}

static void
v2_unix(const uint8_t *path, struct sockaddr_storage *ss)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t room = sizeof(sun->sun_path) - 1;
	const uint8_t *nul = memchr(path, 0, V2_UNIX_PATH);
	size_t len = nul != NULL ? (size_t)(nul - path) : V2_UNIX_PATH;

	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len < room ? len : room);
}

/* The address block of a PROXY command (octets 16 .. 16 + len). */
static enum proxy_status
v2_addresses(uint8_t fam, const uint8_t *a, size_t len,
    struct proxy_result *r)
{
	size_t need;

	switch (fam) {
	case V2_UNSPEC:
		r->command = PROXY_CMD_LOCAL;
		return PROXY_DONE;	/* "use the real connection endpoints" */
	case V2_TCP4:
		need = V2_LEN_INET;
		break;
	case V2_TCP6:
		need = V2_LEN_INET6;
		break;
	case V2_UNIX_STREAM:
		need = V2_LEN_UNIX;
		break;
	default:
		return invalid(r, "v2: unsupported family or transport");
	}
	if (len < need)
		return invalid(r, "v2: address block too short");
	r->command = PROXY_CMD_PROXY;
	memset(&r->src, 0, sizeof(r->src));
	memset(&r->dst, 0, sizeof(r->dst));
	if (fam == V2_TCP4) {
		struct sockaddr_in *s = (struct sockaddr_in *)&r->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&r->dst;

		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
	} else if (fam == V2_TCP6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&r->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&r->dst;

		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
	} else {
		v2_unix(a, &r->src);
		v2_unix(a + V2_UNIX_PATH, &r->dst);
	}
	return PROXY_DONE;
}

/* TLVs in [p, p + len): each must fit; their contents are not used. */
static int
v2_tlvs_fit(const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t vlen;

		if (len - off < V2_TLV_HEAD)
			return -1;
		vlen = (size_t)p[off + 1] << 8 | p[off + 2];
		off += V2_TLV_HEAD;
		if (vlen > len - off)
			return -1;
		off += vlen;
	}
	return 0;
}

static enum proxy_status
parse_v2(const uint8_t *p, size_t n, struct proxy_result *r)
{
	size_t len, alen;
	enum proxy_status st;
	uint8_t cmd;

	if (memcmp(p, v2_sig, n < sizeof(v2_sig) ? n : sizeof(v2_sig)) != 0)
		return invalid(r, "not a PROXY header");
	if (n > 12 && (p[12] & 0xf0) != V2_VERSION)
		return invalid(r, "v2: bad version");
	if (n > 12 && (p[12] & 0x0f) > V2_CMD_PROXY)
		return invalid(r, "v2: bad command");
	if (n < PROXY_V2_FIXED)
		return PROXY_AGAIN;
	cmd = p[12] & 0x0f;
	len = (size_t)p[14] << 8 | p[15];
	if (len > PROXY_V2_LEN_MAX)
		return invalid(r, "v2: header too long");
	if (n < PROXY_V2_FIXED + len)
		return PROXY_AGAIN;
	r->version = 2;
	r->len = PROXY_V2_FIXED + len;
	if (cmd == V2_CMD_LOCAL) {
		/* Health checks: the family and the block are ignored. */
		r->command = PROXY_CMD_LOCAL;
		return PROXY_DONE;
	}
	st = v2_addresses(p[13], p + PROXY_V2_FIXED, len, r);
	if (st != PROXY_DONE)
		return st;
	alen = p[13] == V2_TCP4 ? V2_LEN_INET : p[13] == V2_TCP6 ?
	    V2_LEN_INET6 : p[13] == V2_UNIX_STREAM ? V2_LEN_UNIX : 0;
	/* UNSPEC: the block is ignored whole, like LOCAL's. */
	if (alen > 0 && v2_tlvs_fit(p + PROXY_V2_FIXED + alen, len - alen) != 0)
		return invalid(r, "v2: TLV beyond the header");
	return PROXY_DONE;
}

enum proxy_status
proxy_parse(const uint8_t *p, size_t n, struct proxy_result *r)
{
	memset(r, 0, sizeof(*r));
	if (n == 0)
		return PROXY_AGAIN;
	if (p[0] == v1_prefix[0])
		return parse_v1(p, n, r);
	if (p[0] == v2_sig[0])
		return parse_v2(p, n, r);
	return invalid(r, "not a PROXY header");
}

const char *
proxy_command_name(enum proxy_command c)
{
	return c == PROXY_CMD_PROXY ? "proxy" : "local";
}
