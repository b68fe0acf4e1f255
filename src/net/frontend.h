/*
 * frontend.h — from an accepted socket to a session: PROXY header, client
 * identity, per-address limit (DESIGN.md, seam 3).
 *
 * The listener accepts and applies the global connection limit; then
 * frontend_accept() takes the socket.  On a listener with `proxy = true`
 * the peer must be a trusted proxy (proxy_from) and must send a PROXY
 * header (net/proxy.h) within timeouts.proxy, before anything else —
 * before implicit TLS and before our banner.  The address in the header
 * becomes the client's: the per-address limit is taken on it (the
 * proxy's own address is never counted: one balancer carries many
 * clients), and the session, its logs, Received: and Lua see it.  A LOCAL
 * header (a health check) or v1 UNKNOWN leaves the proxy's own address.
 *
 * SECURITY: nothing is written to a connection that has not sent a valid
 * header, nor to one from an untrusted address, nor to any connection of
 * a proxy listener refused before its header: it is closed, and the log
 * says why.  The header is read without reading past it (MSG_PEEK, then
 * exactly its length), so the first octet of the session — a TLS
 * ClientHello, an early talker's command — stays in the socket.  Waiting
 * connections hold PROXY_HEADER_MAX octets each and count against
 * limits.max_connections like sessions.
 */
#ifndef LUASMTPD_FRONTEND_H
#define LUASMTPD_FRONTEND_H

#include <sys/socket.h>

#include "config.h"

/*
 * A socket accepted on lc's listener from peer (takes ownership of fd).
 * Never calls back into the listener; a refusal closes fd here.
 */
void	frontend_accept(int fd, const struct sockaddr_storage *peer,
	    const struct listener_config *lc);

/*
 * Refuse fd at accept (no limit or no descriptor for it): "421 <status>
 * <hostname> <text>" and close, but close without a word on a listener
 * that speaks TLS from the first octet or expects a PROXY header (its
 * peer is unknown until the header).  A client refused after its header
 * (max_connections_per_ip) does get the 421, in plaintext.
 */
void	frontend_refuse(const struct listener_config *, int fd,
	    const char *status, const char *text);

/* Connections still waiting for their PROXY header. */
unsigned frontend_pending(void);

/* Close every connection still waiting for its header (at exit). */
void	frontend_close_all(void);

/* An address for logs: "192.0.2.7", "2001:db8::7", "unix", "unknown". */
void	frontend_addr_str(const struct sockaddr_storage *, char *, size_t);

#endif
