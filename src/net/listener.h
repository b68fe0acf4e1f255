/*
 * listener.h — TCP and unix-socket listeners from the configuration.
 *
 * Each listener accepts connections, applies the global connection limit
 * (over it: "421 4.7.0" and close), and hands the socket to the front end
 * (net/frontend.h: PROXY header, per-address limit, session).  Out of descriptors, queued clients get
 * "421 4.3.2" and are closed (a reserve descriptor makes that possible),
 * and accepting pauses briefly.  Implicit-TLS listeners refuse by closing
 * without a byte: no plaintext before the handshake.
 */
#ifndef LUASMTPD_LISTENER_H
#define LUASMTPD_LISTENER_H

#include "config.h"

/*
 * Bind every configured listener and open the reserve descriptor; returns
 * 0 or -1 (error logged).  Also sets each listener's name to the address
 * really bound.  A unix listener replaces a stale socket at its path and
 * sets its mode and owner.
 */
int	listeners_open(struct config *);
/*
 * Close them, remove the unix sockets they made, and close connections
 * still waiting for a PROXY header.
 */
void	listeners_close(void);

#endif
