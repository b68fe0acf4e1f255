/*
 * listener.c — TCP listeners (see listener.h).
 *
 * Out of descriptors (EMFILE, ENFILE): accept(2) fails while the
 * connection stays queued, so the listener would be readable forever.  As
 * nginx, Redis and libuv do, we keep one reserve descriptor (/dev/null,
 * opened when the listeners open): on EMFILE we close it, accept the
 * waiting connections one at a time, answer "421 4.3.2" and close each,
 * reopen the reserve, and stop accepting for ACCEPT_PAUSE seconds.  Those
 * clients hear why instead of hanging until their own timeout.
 *
 * SECURITY: the limits are applied before any session memory exists; a
 * refused connection costs one accept(2), one write(2) and one close(2).
 * A refusal on an implicit-TLS listener writes nothing: plaintext before
 * the handshake would be read by the client's TLS stack as garbage (and
 * RFC 8314 clients expect TLS from the first byte), so we just close.
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
#include <unistd.h>

#include "metrics/metrics.h"
#include "net/iplimit.h"
#include "net/listener.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define LISTEN_BACKLOG		511
#define ACCEPT_BURST		64	/* accepts per readiness event */
#define ACCEPT_PAUSE		0.1	/* seconds without accepting after
					   EMFILE/ENFILE/ENOBUFS/ENOMEM */
#define ACCEPT_LOG_INTERVAL	1.0	/* seconds between accept-pause lines */
#define REFUSE_LINE_MAX		384	/* "421 ..." + a 255-byte hostname */

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

/*
 * Answer "421 <status> <hostname> <text>" and close fd; on an implicit-TLS
 * listener close without a byte (see the header).
 */
static void
refuse(const struct listener *l, int fd, const char *status, const char *text)
{
	char line[REFUSE_LINE_MAX];
	int n;

	if (l->lc->tls != TLS_IMPLICIT) {
		n = snprintf(line, sizeof(line), "421 %s %s %s\r\n", status,
		    server.cfg->hostname, text);
		if (n > 0 && (size_t)n >= sizeof(line))
			n = 0;
		/* Best effort: a fresh socket's send buffer is empty. */
		if (n > 0 && write(fd, line, (size_t)n) < 0) {
			/* nothing to do: we are closing anyway */
		}
	}
	close(fd);
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
		refuse(l, fd, "4.3.2",
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
		if (peer.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr,
			    ip, sizeof(ip));
		else if (peer.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&peer)->sin6_addr, ip, sizeof(ip));
		if (cfg->max_connections > 0 &&
		    server.connections >= cfg->max_connections) {
			log_warn(0, "net refuse ip=%s reason=max_connections limit=%u",
			    ip, cfg->max_connections);
			metric_inc_l(M_CONNECTIONS_REFUSED,
			    M_REFUSE_MAX_CONNECTIONS);
			refuse(l, fd, "4.7.0",
			    "Error: too many connections, try again later");
			continue;
		}
		if (iplimit_acquire((struct sockaddr *)&peer,
		    cfg->max_connections_per_ip) != 0) {
			log_warn(0, "net refuse ip=%s reason=max_connections_per_ip "
			    "limit=%u", ip, cfg->max_connections_per_ip);
			metric_inc_l(M_CONNECTIONS_REFUSED, M_REFUSE_MAX_PER_IP);
			refuse(l, fd, "4.7.0",
			    "Error: too many connections from your address");
			continue;
		}
		metric_inc(M_CONNECTIONS_ACCEPTED);
		smtp_session_new(fd, &peer, plen, l->lc);
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

static int
open_one(struct listener_config *lc)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	struct listener *l;
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
		log_info(0, "net listening addr=%s:%d tls=%s", ip, port,
		    lc->tls == TLS_IMPLICIT ? "implicit" :
		    lc->tls == TLS_STARTTLS ? "starttls" : "none");
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip,
		    sizeof(ip));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(lc->name, sizeof(lc->name), "[%s]:%d", ip, port);
		log_info(0, "net listening addr=[%s]:%d tls=%s", ip, port,
		    lc->tls == TLS_IMPLICIT ? "implicit" :
		    lc->tls == TLS_STARTTLS ? "starttls" : "none");
	}

	l = xcalloc(1, sizeof(*l));
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
	return 0;
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
		if (open_one(lc) != 0)
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
		free(l);
	}
	reserve_close();
}
