/*
 * listener.c — TCP listeners (see listener.h).
 *
 * SECURITY: the limits are applied before any session memory exists; a
 * refused connection costs one accept(2), one write(2) and one close(2).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/iplimit.h"
#include "net/listener.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define LISTEN_BACKLOG		511
#define ACCEPT_BURST		64	/* accepts per readiness event */
#define ACCEPT_PAUSE		0.1	/* seconds, after EMFILE/ENFILE */

struct listener {
	ev_io				 io;
	ev_timer			 pause;
	int				 fd;
	const struct listener_config	*lc;
	struct listener			*next;
};

static struct listener *listeners;

static void
refuse(int fd, const char *text)
{
	char line[256];
	int n;

	n = snprintf(line, sizeof(line), "421 4.7.0 %s %s\r\n",
	    server.cfg->hostname, text);
	/* Best effort: a fresh socket's send buffer is empty. */
	if (n > 0 && write(fd, line, (size_t)n) < 0) {
		/* nothing to do: we are closing anyway */
	}
	close(fd);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	const struct config *cfg = server.cfg;

	(void)revents;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		char ip[INET6_ADDRSTRLEN] = "?";
		int fd;

		fd = accept4(l->fd, (struct sockaddr *)&peer, &plen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				log_warn(0, "net accept-pause listener=%s error=\"%s\"",
				    l->lc->name, strerror(errno));
				ev_io_stop(loop, &l->io);
				ev_timer_start(loop, &l->pause);
			}
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
			refuse(fd, "Error: too many connections, try again later");
			continue;
		}
		if (iplimit_acquire((struct sockaddr *)&peer,
		    cfg->max_connections_per_ip) != 0) {
			log_warn(0, "net refuse ip=%s reason=max_connections_per_ip "
			    "limit=%u", ip, cfg->max_connections_per_ip);
			refuse(fd, "Error: too many connections from your address");
			continue;
		}
		smtp_session_new(fd, &peer, plen, l->lc);
	}
}

static void
pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listener *l = w->data;

	(void)revents;
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
	ev_io_start(server.loop, &l->io);
	l->next = listeners;
	listeners = l;
	return 0;
}

int
listeners_open(struct config *cfg)
{
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
		close(l->fd);
		free(l);
	}
}
