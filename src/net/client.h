/*
 * client.h — a client connection as the front end hands it to a protocol
 * session (smtp_session_new): its descriptors and who the client is.
 *
 * net/ establishes both before any session exists: accept(2), then the
 * PROXY header if the listener wants one (net/frontend.c), or standard
 * input and output (net/stdio.c).  The session trusts addr as the
 * client's address for per-address limits, logs, Received: and Lua.
 */
#ifndef LUASMTPD_NET_CLIENT_H
#define LUASMTPD_NET_CLIENT_H

#include <sys/socket.h>

struct net_client {
	/* Reads, and writes unless wfd >= 0; owned by the session. */
	int			 fd;
	/*
	 * -1, or where writes go when fd is not a socket (stdio's pipes:
	 * fd 0 and fd 1); owned by the session too.
	 */
	int			 wfd;
	/*
	 * The client: AF_INET or AF_INET6 (from accept(2) or a PROXY
	 * header), AF_UNIX (a unix-socket listener), or AF_UNSPEC.
	 */
	struct sockaddr_storage	 addr;
	/*
	 * NULL for an IP client, else what logs, Received: and Lua show
	 * instead of an address: "unix" (AF_UNIX), "stdin" (AF_UNSPEC).
	 */
	const char		*name;
};

#endif
