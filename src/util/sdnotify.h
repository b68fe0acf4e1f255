/*
 * sdnotify.h — tell the service manager our state (systemd's sd_notify(3)
 * protocol, without libsystemd).
 */
#ifndef LUASMTPD_SDNOTIFY_H
#define LUASMTPD_SDNOTIFY_H

/*
 * Send state ("READY=1", newline-separated assignments) to the socket
 * named by $NOTIFY_SOCKET.  1: sent; 0: no $NOTIFY_SOCKET (not started
 * by systemd as Type=notify), nothing done; -1 and errno: not sent
 * (EINVAL: the variable names no usable socket, or state is empty or
 * too long; otherwise from socket(2)/sendmsg(2)).  Never blocks.
 */
int	sdnotify_send(const char *state);

/* "READY=1": the listeners are open.  A failure is logged, not fatal. */
void	sdnotify_ready(void);

#endif
