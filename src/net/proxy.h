/*
 * proxy.h — the PROXY protocol header a load balancer puts in front of a
 * connection (HAProxy's "The PROXY protocol", versions 1 and 2).
 *
 * Version 1 is one text line of at most 107 octets with its CRLF:
 *
 *	PROXY TCP4 192.0.2.7 198.51.100.1 51234 25\r\n
 *	PROXY TCP6 2001:db8::7 2001:db8::1 51234 25\r\n
 *	PROXY UNKNOWN[ anything]\r\n
 *
 * Version 2 is binary: a 12-octet signature, a version/command octet
 * (LOCAL or PROXY), a family/transport octet (UNSPEC, INET, INET6, UNIX;
 * STREAM), a 16-bit length, the addresses, and TLVs up to that length.
 *
 * proxy_parse() is pure (bytes in, result out, no I/O, no allocation) and
 * is called with everything received so far: it answers AGAIN while the
 * bytes are a valid beginning of a header, DONE with the header's length
 * once it is complete, and INVALID as soon as they cannot become one.
 * AGAIN therefore means every byte given belongs to the header, so the
 * caller may consume them (net/frontend.c relies on this).
 *
 * SECURITY: a header is at most PROXY_HEADER_MAX octets; a v2 length
 * beyond PROXY_V2_LEN_MAX is refused before it is read.  TLVs are checked
 * to lie within the stated length and are skipped, never interpreted.
 */
#ifndef LUASMTPD_PROXY_H
#define LUASMTPD_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The spec's bound for a v1 line, "PROXY TCP6 ..." with CRLF. */
#define PROXY_V1_MAX		107
/* The v2 fixed part: signature, version/command, family, length. */
#define PROXY_V2_FIXED		16
/*
 * The largest v2 address block plus TLVs we accept.  Addresses take at
 * most 216 octets (two unix paths); the rest is room for the TLVs a
 * balancer adds (ALPN, authority, unique id, SSL details).  HAProxy's
 * own limit is its buffer size; this is ours.
 */
#define PROXY_V2_LEN_MAX	2048
#define PROXY_HEADER_MAX	(PROXY_V2_FIXED + PROXY_V2_LEN_MAX)

enum proxy_status {
	PROXY_AGAIN,		/* a valid beginning: wait for more */
	PROXY_DONE,		/* complete: see the result */
	PROXY_INVALID,		/* not a PROXY header: drop the connection */
};

enum proxy_command {
	/*
	 * v1 PROXY TCP4/TCP6, v2 PROXY with INET, INET6 or UNIX: the
	 * client's address is in src.
	 */
	PROXY_CMD_PROXY,
	/*
	 * v2 LOCAL (the balancer's own health check), v1 UNKNOWN, v2 PROXY
	 * with UNSPEC: use the connection's own endpoints.
	 */
	PROXY_CMD_LOCAL,
};

struct proxy_result {
	int			 version;	/* 1 or 2 */
	enum proxy_command	 command;
	/* PROXY_CMD_PROXY only: AF_INET, AF_INET6 or AF_UNIX. */
	struct sockaddr_storage	 src;
	struct sockaddr_storage	 dst;
	size_t			 len;		/* octets of the header */
	/* PROXY_INVALID: why, a static string for the log. */
	const char		*error;
};

/*
 * Parse the n octets received so far at p.  PROXY_DONE fills r, with
 * r->len <= n (octets past it belong to the protocol that follows);
 * PROXY_INVALID sets r->error; PROXY_AGAIN never happens with
 * n >= PROXY_HEADER_MAX.
 */
enum proxy_status proxy_parse(const uint8_t *p, size_t n,
	    struct proxy_result *r);

/* "proxy", "local" for logs. */
const char *proxy_command_name(enum proxy_command);

#endif
