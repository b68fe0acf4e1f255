/*
 * listener.c — TCP and unix-socket listeners (see listener.h).
 *
 * Out of descriptors (EMFILE, ENFILE): accept(2) fails while the
 * connection stays queued, so the listener would be readable forever.  As
 * nginx, Redis and libuv do, we keep one reserve descriptor (/dev/null,
 * opened when the listeners open): on EMFILE we close it, accept the
 * waiting connections one at a time, answer "421 4.3.2" and close each,
 * reopen the reserve, and stop accepting for ACCEPT_PAUSE seconds.  Those
 * clients hear why instead of hanging until their own timeout.
 *
 * A unix socket's path is ours while we run: a stale socket left there
 * (by a crash) is replaced at start, but a socket some process still
 * accepts on is not taken over, and anything else at the path is an
 * error.  The mode and owner are set between bind(2) and listen(2), so
 * no client connects before they apply.  At exit the path is removed if
 * it is still the socket we made.
 *
 * SECURITY: the limits are applied before any session memory exists; a
 * refused connection costs one accept(2), one write(2) and one close(2).
 * A refusal on an implicit-TLS listener writes nothing: plaintext before
 * the handshake would be read by the client's TLS stack as garbage (and
 * RFC 8314 clients expect TLS from the first byte), so we just close; so
 * does one on a PROXY listener, whose peer is unknown until its header
 * (net/frontend.h).
 * Refusals for lack of descriptors are logged at most once a second per
 * listener with a count (ACCEPT_LOG_INTERVAL): a client flood must not
 * turn into a log flood.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "net/frontend.h"
#include "net/listener.h"
#include "server.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define LISTEN_BACKLOG		511
#define ACCEPT_BURST		64	/* accepts per readiness event */
#define ACCEPT_PAUSE		0.1	/* seconds without accepting after
					   EMFILE/ENFILE/ENOBUFS/ENOMEM */
#define ACCEPT_LOG_INTERVAL	1.0	/* seconds between accept-pause lines */

struct listener {
	ev_io				 io;
	ev_timer			 pause;		/* resumes accepting */
	ev_timer			 log_timer;	/* flushes a held line */
	ev_tstamp			 last_log;	/* of accept-pause */
	unsigned			 refused;	/* since that line */
	int				 pause_errno;	/* for the next line */
	bool				 log_held;	/* a line is due */
	int				 fd;
	const struct listener_config	*lc;
	/* A unix socket: what to unlink at exit if it is still there. */
	bool				 is_unix;
	dev_t				 dev;
	ino_t				 ino;
	struct listener			*next;
};

static struct listener *listeners;
/* One spare descriptor for all listeners: the loop is single-threaded. */
static int reserve_fd = -1;

static void
reserve_open(void)
{
	/*
	 * XXX: /dev/null must be reachable here; a future chroot would have
	 * to provide it (or dup a descriptor kept for the purpose).
	 */
	if (reserve_fd < 0)
		reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
reserve_close(void)
{
	if (reserve_fd >= 0)
		close(reserve_fd);
	reserve_fd = -1;
}

static void
log_pause(struct listener *l)
{
	log_warn(0, "net accept-pause listener=%s error=\"%s\" refused=%u "
	    "pause=%.1f", l->lc->name, strerror(l->pause_errno), l->refused,
	    ACCEPT_PAUSE);
	l->refused = 0;
	l->log_held = false;
	l->last_log = ev_now(server.loop);
}

static void
log_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listener *l = w->data;

	(void)loop;
	(void)revents;
	if (l->log_held)
		log_pause(l);
}

/*
 * Stop accepting for ACCEPT_PAUSE after error err, having refused n more
 * clients; the line goes out now or, within ACCEPT_LOG_INTERVAL of the
 * last one, from log_timer with the sum of the counts.
 */
static void
pause_accepting(struct listener *l, int err, unsigned n)
{
	struct ev_loop *loop = server.loop;
	ev_tstamp now = ev_now(loop), due = l->last_log + ACCEPT_LOG_INTERVAL;

	l->refused += n;
	metric_add_l(M_CONNECTIONS_REFUSED, M_REFUSE_NO_FDS, n);
	l->pause_errno = err;
	l->log_held = true;
	if (now >= due) {
		log_pause(l);
	} else if (!ev_is_active(&l->log_timer)) {
		ev_timer_set(&l->log_timer, due - now, 0.);
		ev_timer_start(loop, &l->log_timer);
	}
	ev_io_stop(loop, &l->io);
	/*
	 * A one-shot timer must be set again before each start: libev keeps
	 * a stopped timer's remaining time, which after it fired is <= 0, so
	 * a plain restart fires at once (the 100% CPU spin of issue 8).
	 */
	ev_timer_stop(loop, &l->pause);
	ev_timer_set(&l->pause, ACCEPT_PAUSE, 0.);
	ev_timer_start(loop, &l->pause);
}

/*
 * Out of descriptors: spend the reserve to tell up to ACCEPT_BURST queued
 * clients "421" and close them.  Returns how many were refused.
 */
static unsigned
refuse_queued(struct listener *l)
{
	unsigned n = 0;

	if (reserve_fd < 0)
		return 0;	/* lost to another thread; pause_cb retries */
	reserve_close();
	while (n < ACCEPT_BURST) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		frontend_refuse(l->lc, fd, "4.3.2",
		    "Error: too many open files, try again later");
		n++;
	}
	reserve_open();
	return n;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	const struct config *cfg = server.cfg;

	(void)loop;
	(void)revents;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		char ip[INET6_ADDRSTRLEN] = "?";
		int fd, err;

		fd = accept4(l->fd, (struct sockaddr *)&peer, &plen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			if (err == EINTR || err == ECONNABORTED)
				continue;
			if (err == EMFILE || err == ENFILE)
				pause_accepting(l, err, refuse_queued(l));
			else if (err == ENOBUFS || err == ENOMEM)
				pause_accepting(l, err, 0);
			return;
		}
		if (cfg->max_connections > 0 && server.connections +
		    frontend_pending() >= cfg->max_connections) {
			frontend_addr_str(&peer, ip, sizeof(ip));
			log_warn(0, "net refuse ip=%s reason=max_connections limit=%u",
			    ip, cfg->max_connections);
			metric_inc_l(M_CONNECTIONS_REFUSED,
			    M_REFUSE_MAX_CONNECTIONS);
			frontend_refuse(l->lc, fd, "4.7.0",
			    "Error: too many connections, try again later");
			continue;
		}
		frontend_accept(fd, &peer, l->lc);
	}
}

static void
pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listener *l = w->data;

	(void)revents;
	reserve_open();		/* if a refusal could not get it back */
	ev_io_start(loop, &l->io);
}

static const char *
tls_name(const struct listener_config *lc)
{
	return lc->tls == TLS_IMPLICIT ? "implicit" :
	    lc->tls == TLS_STARTTLS ? "starttls" : "none";
}

/* Start accepting on a bound, listening fd. */
static struct listener *
listener_add(int fd, const struct listener_config *lc)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	l->fd = fd;
	l->lc = lc;
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	l->io.data = l;
	ev_timer_init(&l->pause, pause_cb, ACCEPT_PAUSE, 0.);
	l->pause.data = l;
	ev_timer_init(&l->log_timer, log_timer_cb, ACCEPT_LOG_INTERVAL, 0.);
	l->log_timer.data = l;
	ev_io_start(server.loop, &l->io);
	l->next = listeners;
	listeners = l;
	log_info(0, "net listening addr=%s tls=%s%s", lc->name, tls_name(lc),
	    lc->proxy ? " proxy=required" : "");
	return l;
}

static int
open_tcp(struct listener_config *lc)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	char ip[INET6_ADDRSTRLEN];
	int fd, on = 1, port;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, lc->address,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)lc->port);
		slen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, lc->address,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)lc->port);
		slen = sizeof(struct sockaddr_in6);
	} else {
		log_error(0, "net listen-error address=%s error=\"not a numeric "
		    "IPv4 or IPv6 address\"", lc->address);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error(0, "net listen-error listener=%s error=\"%s\"", lc->name,
		    strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, slen) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		log_error(0, "net listen-error listener=%s error=\"%s\"", lc->name,
		    strerror(errno));
		close(fd);
		return -1;
	}
	/* Report the real port: tests bind port 0 and read it from the log. */
	slen = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &slen);
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip,
		    sizeof(ip));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		/* Logs name the port really bound, not a configured 0. */
		snprintf(lc->name, sizeof(lc->name), "%s:%d", ip, port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip,
		    sizeof(ip));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(lc->name, sizeof(lc->name), "[%s]:%d", ip, port);
	}
	listener_add(fd, lc);
	return 0;
}

/*
 * What is at a unix listener's path may go: nothing, or a socket nobody
 * accepts on (a connect is refused).  0, or -1 after logging why not.
 */
static int
unix_path_free(const struct listener_config *lc,
    const struct sockaddr_un *sun)
{
	struct stat st;
	int probe, r, e;

	if (lstat(lc->path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		log_error(0, "net listen-error listener=%s error=\"exists and is "
		    "not a socket\"", lc->name);
		return -1;
	}
	/* Non-blocking: a live server's full backlog must not hang us. */
	if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		return -1;
	r = connect(probe, (const struct sockaddr *)sun, sizeof(*sun));
	e = errno;
	close(probe);
	if (r == 0 || e != ECONNREFUSED) {
		log_error(0, "net listen-error listener=%s error=\"%s\"", lc->name,
		    r == 0 ? "another process accepts on this socket" :
		    strerror(e));
		return -1;
	}
	if (unlink(lc->path) != 0) {
		log_error(0, "net listen-error listener=%s error=\"unlink stale "
		    "socket: %s\"", lc->name, strerror(errno));
		return -1;
	}
	log_info(0, "net stale-socket-removed path=%s", lc->path);
	return 0;
}

static int
open_unix(struct listener_config *lc)
{
	struct sockaddr_un sun;
	struct listener *l;
	struct stat st;
	const char *step;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, lc->path, sizeof(sun.sun_path));
	sun.sun_path[sizeof(sun.sun_path) - 1] = '\0';
	if (unix_path_free(lc, &sun) != 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error(0, "net listen-error listener=%s error=\"%s\"", lc->name,
		    strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		log_error(0, "net listen-error listener=%s error=\"%s\"", lc->name,
		    strerror(errno));
		close(fd);
		return -1;
	}
	/* Before listen(2): no client connects while the mode is the umask's. */
	step = NULL;
	if (lc->unix_mode >= 0 && chmod(lc->path, (mode_t)lc->unix_mode) != 0)
		step = "chmod";
	else if ((lc->unix_owner != (uid_t)-1 || lc->unix_group != (gid_t)-1) &&
	    lchown(lc->path, lc->unix_owner, lc->unix_group) != 0)
		step = "chown";
	else if (lstat(lc->path, &st) != 0)
		step = "stat";
	else if (listen(fd, LISTEN_BACKLOG) != 0)
		step = "listen";
	if (step != NULL) {
		log_error(0, "net listen-error listener=%s error=\"%s: %s\"",
		    lc->name, step, strerror(errno));
		close(fd);
		unlink(lc->path);
		return -1;
	}
	l = listener_add(fd, lc);
	l->is_unix = true;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return 0;
}

/* Remove a unix listener's path if it is still the socket we bound. */
static void
unlink_ours(const struct listener *l)
{
	struct stat st;

	if (lstat(l->lc->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->lc->path);
}

int
listeners_open(struct config *cfg)
{
	reserve_open();
	if (reserve_fd < 0) {
		log_error(0, "net listen-error error=\"open /dev/null: %s\" "
		    "(the reserve descriptor for EMFILE)", strerror(errno));
		return -1;
	}
	for (struct listener_config *lc = cfg->listeners; lc != NULL;
	    lc = lc->next)
		if ((lc->is_unix ? open_unix(lc) : open_tcp(lc)) != 0)
			return -1;
	return 0;
}

void
listeners_close(void)
{
	while (listeners != NULL) {
		struct listener *l = listeners;

		listeners = l->next;
		ev_io_stop(server.loop, &l->io);
		ev_timer_stop(server.loop, &l->pause);
		ev_timer_stop(server.loop, &l->log_timer);
		close(l->fd);
		if (l->is_unix)
			unlink_ours(l);
		free(l);
	}
	frontend_close_all();
	reserve_close();
}
