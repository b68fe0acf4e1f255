/*
 * linger.h — a lingering close.
 *
 * Closing a socket that still holds unread input makes the kernel send a
 * reset instead of an orderly FIN, and a reset can destroy the replies the
 * peer has not read yet (the 421 that explains why we hung up).  So we
 * shut down our sending side and read and discard whatever still arrives,
 * until the peer closes, LINGER_SECONDS pass or LINGER_BYTES were read —
 * bounded like everything else — and only then close (Apache's
 * lingering_close does the same for HTTP).
 */
#ifndef LUASMTPD_LINGER_H
#define LUASMTPD_LINGER_H

#include <ev.h>

#define LINGER_SECONDS	2.0
#define LINGER_BYTES	(256 * 1024)
#define LINGER_MAX	1024	/* sockets lingering at once; past it: close */

/* Take ownership of fd: shut down writing, drain, close. */
void	linger_close(struct ev_loop *, int fd);
unsigned linger_count(void);

#endif
