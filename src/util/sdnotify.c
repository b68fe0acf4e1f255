/*
 * sdnotify.c — the sd_notify(3) datagram, for a systemd unit of
 * Type=notify, written by hand: libsystemd is one more library on the
 * link line for one sendmsg(2).
 *
 * Protocol (sd_notify(3), "NOTIFY_SOCKET"): the service manager puts the
 * address of a datagram socket into $NOTIFY_SOCKET, either an absolute
 * file system path or "@name" for the abstract namespace (the '@' stands
 * for the leading NUL byte).  The service sends one datagram of
 * newline-separated assignments; "READY=1" says the start-up is complete,
 * so `systemctl start` returns only once the listeners accept
 * connections.  Without the variable nothing is sent: the same binary
 * runs under Type=simple, from a shell or from a test.
 *
 * Owns: nothing beyond the call (one socket, opened and closed in it).
 *
 * SECURITY: the variable comes from our parent, like the rest of the
 * environment.  A value that does not fit sun_path is refused, never cut:
 * a truncated path could name another socket.  The datagram is sent with
 * MSG_DONTWAIT (a manager that stopped reading cannot stall the start) and
 * MSG_NOSIGNAL.  $NOTIFY_SOCKET is left in the environment for later
 * states; children of deliver.pipe never see it (they get a fixed
 * environment, src/deliver/pipe.c).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "util/sdnotify.h"

/* The longest state we send; systemd reads datagrams of up to a page. */
#define SDNOTIFY_STATE_MAX	1024

/*
 * The address in $NOTIFY_SOCKET into *sun; its length in *len.
 * 0, or -1 (EINVAL) for a relative path, an empty name or one too long.
 */
static int
notify_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
	size_t n = strlen(path);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (path[0] == '@') {
		/* Abstract: a NUL, then the name; no terminator counts. */
		if (n < 2 || n > sizeof(sun->sun_path)) {
			errno = EINVAL;
			return -1;
		}
		memcpy(sun->sun_path + 1, path + 1, n - 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		return 0;
	}
	if (path[0] != '/' || n >= sizeof(sun->sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sun->sun_path, path, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int
sdnotify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t n;
	ssize_t r;
	int fd, e;

	if (path == NULL || path[0] == '\0')
		return 0;
	n = state != NULL ? strlen(state) : 0;
	if (n == 0 || n > SDNOTIFY_STATE_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (notify_addr(path, &sun, &len) != 0)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	do {
		r = sendto(fd, state, n, MSG_DONTWAIT | MSG_NOSIGNAL,
		    (struct sockaddr *)&sun, len);
	} while (r < 0 && errno == EINTR);
	e = errno;
	close(fd);
	if (r < 0) {
		errno = e;
		return -1;
	}
	if ((size_t)r != n) {
		errno = EMSGSIZE;	/* a datagram goes whole or not at all */
		return -1;
	}
	return 1;
}

void
sdnotify_ready(void)
{
	int r = sdnotify_send("READY=1");

	if (r < 0)
		log_warn(0, "main notify-failed state=READY=1 error=\"%s\" "
		    "(NOTIFY_SOCKET is set; the service manager may time the "
		    "start out)", strerror(errno));
	else if (r > 0)
		log_debug(0, "main notified state=READY=1");
}
