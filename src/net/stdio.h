/*
 * stdio.h — one SMTP session on standard input and output
 * (`luasmtpd --stdio`): for inetd-style launchers that hand us an
 * accepted socket as descriptors 0 and 1, and for piping a recorded or
 * scripted conversation through a policy.
 *
 * If descriptor 0 is a socket it carries both directions, and the client
 * is its peer (getpeername: an IP address, or "unix" for a unix socket or
 * a socketpair).  Otherwise the session reads 0 and writes 1 (pipes, a
 * file) and the client is "stdin".  The session is like one from a plain
 * listener named "stdio": no TLS, no AUTH, no PROXY header, no per-address
 * limit; logs go to standard error.
 */
#ifndef LUASMTPD_STDIO_H
#define LUASMTPD_STDIO_H

#include <ev.h>

/*
 * Serve the one session on loop (server_init done, no listeners) and
 * return once it has been freed — after the spool commit of an accepted
 * message, the disconnect hook and a lingering close — or the loop was
 * broken by a signal.  0, or -1 if descriptor 0 or 1 is unusable (logged).
 */
int	stdio_serve(struct ev_loop *);

#endif
