/*
 * frontend.c — accepted socket → PROXY header → client identity →
 * per-address limit → session (see frontend.h).
 *
 * HAProxy's "The PROXY protocol" (doc/proxy-protocol.txt), section 2.2:
 * the receiver must not start the protocol that follows before the whole
 * header has arrived, must close a connection whose header is missing or
 * invalid, and should accept headers only from trusted addresses.
 *
 * The header is read in two steps per readiness event: recv(MSG_PEEK)
 * shows what has arrived, proxy_parse() says whether it is a header so
 * far (AGAIN: every octet seen belongs to it, so all are consumed, and
 * the socket does not stay readable for octets we already judged) or
 * complete (DONE: exactly its length is consumed).  So nothing behind the
 * header is ever taken from the socket.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/cidr.h"
#include "net/client.h"
#include "metrics/metrics.h"
#include "net/frontend.h"
#include "net/iplimit.h"
#include "net/proxy.h"
#include "server.h"
#include "smtp/smtp_session.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define REFUSE_LINE_MAX		384	/* "421 ..." + a 255-byte hostname */

/* A connection whose PROXY header is being read. */
struct proxy_wait {
	ev_io				 io;
	ev_timer			 timer;		/* timeouts.proxy */
	int				 fd;
	struct sockaddr_storage		 peer;		/* the proxy */
	const struct listener_config	*lc;
	size_t				 have;		/* header octets read */
	struct proxy_wait		*prev;
	struct proxy_wait		*next;
	uint8_t				 buf[PROXY_HEADER_MAX];
};

static struct proxy_wait *waiting;
static unsigned nwaiting;

void
frontend_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	snprintf(buf, len, "unknown");
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    buf, (socklen_t)len);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)ss)->sin6_addr, buf,
		    (socklen_t)len);
	else if (ss->ss_family == AF_UNIX)
		snprintf(buf, len, "unix");
}

/*
 * "421 <status> <hostname> <text>" and close fd; on an implicit-TLS
 * listener just close: plaintext before the handshake would be read by
 * the client's TLS stack as garbage (RFC 8314).
 */
static void
refuse(const struct listener_config *lc, int fd, const char *status,
    const char *text)
{
	char line[REFUSE_LINE_MAX];
	int n;

	if (lc->tls != TLS_IMPLICIT) {
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

void
frontend_refuse(const struct listener_config *lc, int fd, const char *status,
    const char *text)
{
	/* Before its header the peer may be anyone: not a word (header). */
	if (lc->proxy)
		close(fd);
	else
		refuse(lc, fd, status, text);
}

/*
 * The client is known: take its per-address slot and start its session.
 * NULL if it was refused (fd closed).
 */
static struct smtp_session *
start_session(int fd, const struct sockaddr_storage *client,
    const struct listener_config *lc)
{
	const struct config *cfg = server.cfg;
	struct net_client nc;
	char ip[INET6_ADDRSTRLEN];

	/* A unix-socket client has no address: iplimit counts none. */
	if (iplimit_acquire((const struct sockaddr *)client,
	    cfg->max_connections_per_ip) != 0) {
		frontend_addr_str(client, ip, sizeof(ip));
		log_warn(0, "net refuse ip=%s reason=max_connections_per_ip "
		    "limit=%u", ip, cfg->max_connections_per_ip);
		metric_inc_l(M_CONNECTIONS_REFUSED, M_REFUSE_MAX_PER_IP);
		refuse(lc, fd, "4.7.0",
		    "Error: too many connections from your address");
		return NULL;
	}
	memset(&nc, 0, sizeof(nc));
	nc.fd = fd;
	nc.wfd = -1;
	nc.addr = *client;
	nc.name = client->ss_family == AF_UNIX ? "unix" : NULL;
	metric_inc(M_CONNECTIONS_ACCEPTED);
	return smtp_session_new(&nc, lc);
}

/* Stop waiting for w's header; close its socket unless it goes on. */
static void
wait_end(struct proxy_wait *w, bool close_fd)
{
	ev_io_stop(server.loop, &w->io);
	ev_timer_stop(server.loop, &w->timer);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		waiting = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	nwaiting--;
	if (close_fd)
		close(w->fd);
	free(w);
}

/* No valid header: close without a word (frontend.h, SECURITY). */
static void
drop(struct proxy_wait *w, const char *reason)
{
	char ip[INET6_ADDRSTRLEN];

	frontend_addr_str(&w->peer, ip, sizeof(ip));
	log_info(0, "net proxy-refused ip=%s listener=%s reason=\"%s\" "
	    "octets=%zu", ip, w->lc->name, reason, w->have);
	wait_end(w, true);
}

/* The header is complete and consumed: hand the socket to a session. */
static void
header_done(struct proxy_wait *w, const struct proxy_result *r)
{
	const struct listener_config *lc = w->lc;
	struct sockaddr_storage client;
	struct smtp_session *s;
	char via[INET6_ADDRSTRLEN];
	int fd = w->fd;

	client = r->command == PROXY_CMD_PROXY ? r->src : w->peer;
	frontend_addr_str(&w->peer, via, sizeof(via));
	wait_end(w, false);
	if ((s = start_session(fd, &client, lc)) != NULL)
		log_info(s->id, "net proxy version=%d command=%s via=%s",
		    r->version, proxy_command_name(r->command), via);
}

/* Exactly n octets the peek showed: they are in the socket. */
static int
consume(int fd, uint8_t *p, size_t n)
{
	ssize_t r;

	do {
		r = recv(fd, p, n, 0);
	} while (r < 0 && errno == EINTR);
	return r == (ssize_t)n ? 0 : -1;
}

static void
read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct proxy_wait *w = io->data;
	struct proxy_result r;
	enum proxy_status st;
	size_t take;
	ssize_t n;

	(void)loop;
	(void)revents;
	assert(w->have < sizeof(w->buf));	/* AGAIN never fills it */
	do {
		n = recv(w->fd, w->buf + w->have, sizeof(w->buf) - w->have,
		    MSG_PEEK);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			drop(w, strerror(errno));
		return;
	}
	if (n == 0) {
		drop(w, "closed before a complete header");
		return;
	}
	st = proxy_parse(w->buf, w->have + (size_t)n, &r);
	if (st == PROXY_INVALID) {
		drop(w, r.error);
		return;
	}
	take = st == PROXY_DONE ? r.len - w->have : (size_t)n;
	if (consume(w->fd, w->buf + w->have, take) != 0) {
		drop(w, "read error");
		return;
	}
	w->have += take;
	if (st == PROXY_DONE)
		header_done(w, &r);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	drop(t->data, "timeout");
}

void
frontend_accept(int fd, const struct sockaddr_storage *peer,
    const struct listener_config *lc)
{
	struct proxy_wait *w;
	char ip[INET6_ADDRSTRLEN];

	if (!lc->proxy) {
		start_session(fd, peer, lc);
		return;
	}
	if (!lc->is_unix && !cidr_match(lc->proxy_from, lc->nproxy_from,
	    (const struct sockaddr *)peer)) {
		frontend_addr_str(peer, ip, sizeof(ip));
		log_info(0, "net proxy-refused ip=%s listener=%s "
		    "reason=\"not in proxy_from\"", ip, lc->name);
		close(fd);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	w->peer = *peer;
	w->lc = lc;
	ev_io_init(&w->io, read_cb, fd, EV_READ);
	w->io.data = w;
	ev_timer_init(&w->timer, timer_cb, server.cfg->timeout_proxy, 0.);
	w->timer.data = w;
	ev_io_start(server.loop, &w->io);
	ev_timer_start(server.loop, &w->timer);
	w->next = waiting;
	if (waiting != NULL)
		waiting->prev = w;
	waiting = w;
	nwaiting++;
}

unsigned
frontend_pending(void)
{
	return nwaiting;
}

void
frontend_close_all(void)
{
	while (waiting != NULL)
		wait_end(waiting, true);
}
