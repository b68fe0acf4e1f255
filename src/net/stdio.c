/*
 * stdio.c — one session on standard input and output (see stdio.h).
 *
 * The descriptors are made non-blocking: the session shares the event
 * loop with its hooks and must never block in read(2) or write(2).  A
 * regular file (a recorded conversation) cannot be polled; libev treats
 * it as always ready, which is what a file is.
 *
 * Reading a whole recorded conversation at once makes the client an early
 * talker (input before the banner) and may trip forbid_unauth_pipelining
 * after the end of data; a config that replays recordings turns those
 * off.  A scripted client that waits for each reply needs nothing.
 *
 * SECURITY: an inetd that gives the connection as descriptor 2 as well
 * would send our log lines to the client, into its protocol stream; if
 * standard error is the same socket or pipe as standard input or output,
 * it is pointed at /dev/null instead (the logs are lost, not the mail).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/client.h"
#include "net/linger.h"
#include "net/stdio.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "util/log.h"

/* What the session's s.listener, Received: and the logs call it. */
static struct listener_config stdio_listener = {
	.name = "stdio",
	.tls = TLS_NONE,
	.unix_mode = -1,
	.unix_owner = (uid_t)-1,
	.unix_group = (gid_t)-1,
};

static bool
same_stream(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	    (S_ISSOCK(sa.st_mode) || S_ISFIFO(sa.st_mode)) &&
	    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int
set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void
session_freed(void)
{
	ev_break(server.loop, EVBREAK_ALL);
}

int
stdio_serve(struct ev_loop *loop)
{
	struct net_client nc;
	struct stat st;
	socklen_t len = sizeof(nc.addr);
	int null;

	if (same_stream(STDERR_FILENO, STDIN_FILENO) ||
	    same_stream(STDERR_FILENO, STDOUT_FILENO)) {
		if ((null = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0) {
			dup2(null, STDERR_FILENO);
			close(null);
		}
	}
	memset(&nc, 0, sizeof(nc));
	nc.fd = STDIN_FILENO;
	nc.wfd = -1;
	if (fstat(STDIN_FILENO, &st) != 0) {
		log_error(0, "stdio error=\"standard input: %s\"", strerror(errno));
		return -1;
	}
	if (S_ISSOCK(st.st_mode)) {
		/* inetd, a socketpair: one socket both ways, a real peer. */
		if (getpeername(STDIN_FILENO, (struct sockaddr *)&nc.addr,
		    &len) != 0)
			memset(&nc.addr, 0, sizeof(nc.addr));
		if (nc.addr.ss_family == AF_UNIX)
			nc.name = "unix";
		else if (nc.addr.ss_family != AF_INET &&
		    nc.addr.ss_family != AF_INET6)
			nc.name = "stdin";
	} else {
		if (fstat(STDOUT_FILENO, &st) != 0) {
			log_error(0, "stdio error=\"standard output: %s\"",
			    strerror(errno));
			return -1;
		}
		nc.wfd = STDOUT_FILENO;
		nc.name = "stdin";
	}
	if (set_nonblocking(nc.fd) != 0 ||
	    (nc.wfd >= 0 && set_nonblocking(nc.wfd) != 0)) {
		log_error(0, "stdio error=\"non-blocking: %s\"", strerror(errno));
		return -1;
	}
	server.on_session_freed = session_freed;
	smtp_session_new(&nc, &stdio_listener);
	ev_run(loop, 0);
	/* Our last reply is read before the socket closes (linger.h). */
	while (linger_count() > 0)
		ev_run(loop, EVRUN_ONCE);
	server.on_session_freed = NULL;
	return 0;
}
