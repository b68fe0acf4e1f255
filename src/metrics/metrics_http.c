/*
 * metrics_http.c — the Prometheus endpoint (metrics_http.h): a minimal
 * HTTP/1.0 and HTTP/1.1 responder on libev for exactly one request,
 * `GET /metrics` (a query string is ignored), answered with the text
 * exposition (Content-Type: text/plain; version=0.0.4) and
 * "Connection: close".
 *
 * RFC 9112 (HTTP/1.1 message syntax): the request line is
 * method SP request-target SP HTTP-version; the head ends with an empty
 * line.  We read the head only (a GET has no body), check the request
 * line strictly, refuse control characters in the head, and answer:
 *   200  GET /metrics
 *   400  anything malformed (no version, HTTP/0.9 or 2, bytes < 0x20)
 *   404  another path;  405  another method (Allow: GET)
 *   431  a head longer than METRICS_REQUEST_MAX
 * Every connection is closed after its one response (a lingering close:
 * shut our side, discard what the client still sends for a moment, so a
 * reset cannot destroy the response before the client has read it).
 *
 * SECURITY: the endpoint is meant for a loopback or management address;
 * it serves nothing but counters.  Each client holds at most
 * METRICS_REQUEST_MAX bytes of input and one rendered response; at most
 * METRICS_CLIENTS_MAX clients at once (more are closed at accept); each
 * has METRICS_TIMEOUT seconds in all, from accept to close, so a slow or
 * silent client cannot hold a slot.  Nothing the client sends is logged
 * or echoed.  Out of descriptors (EMFILE), accepting pauses for
 * METRICS_ACCEPT_PAUSE instead of spinning.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "metrics/metrics_http.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* The request head (line and headers); curl and Prometheus send ~200. */
#define METRICS_REQUEST_MAX	4096
/* Seconds a client may take from accept to close. */
#define METRICS_TIMEOUT		10.0
/* Seconds we discard input after the response, before closing. */
#define METRICS_LINGER		2.0
/* Reads of discarded input per wakeup while lingering. */
#define METRICS_LINGER_READS	8
#define METRICS_CLIENTS_MAX	16
#define METRICS_ACCEPT_BURST	16
#define METRICS_ACCEPT_PAUSE	0.1
#define METRICS_BACKLOG		16
/* The whole response: far above what the fixed table renders (~60 KiB). */
#define METRICS_RESPONSE_MAX	(4 * 1024 * 1024)

enum mc_state {
	MC_READ,		/* reading the head */
	MC_WRITE,		/* sending the response */
	MC_LINGER,		/* sent; discarding input until EOF */
};

struct mclient {
	ev_io		 io;
	ev_timer	 timer;
	int		 fd;
	enum mc_state	 state;
	size_t		 reqlen;
	char		 req[METRICS_REQUEST_MAX];
	struct buf	 out;
	struct mclient	*prev, *next;
};

static struct ev_loop	*loop;
static int		 listen_fd = -1;
static ev_io		 accept_io;
static ev_timer		 accept_pause;
static struct mclient	*clients;
static unsigned		 nclients;

static void	client_cb(struct ev_loop *, ev_io *, int);

static void
client_free(struct mclient *c)
{
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	buf_reset(&c->out);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	nclients--;
	free(c);
}

static void
timeout_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct mclient *c = w->data;

	(void)l;
	(void)revents;
	if (c->state == MC_READ)
		metric_inc_l(M_SCRAPES, M_SCRAPE_TIMEOUT);
	client_free(c);
}

/* Watch fd for events (EV_READ or EV_WRITE). */
static void
client_watch(struct mclient *c, int events)
{
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(loop, &c->io);
}

/* Send what is left; then shut our side and linger.  May free c. */
static void
client_write(struct mclient *c)
{
	while (buf_used(&c->out) > 0) {
		ssize_t n = send(c->fd, buf_head(&c->out), buf_used(&c->out),
		    MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			client_watch(c, EV_WRITE);
			return;
		}
		if (n <= 0) {
			client_free(c);
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
	shutdown(c->fd, SHUT_WR);
	c->state = MC_LINGER;
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, METRICS_LINGER, 0.);
	ev_timer_start(loop, &c->timer);
	client_watch(c, EV_READ);
}

/* Queue a whole response and start sending it.  May free c. */
static void
respond(struct mclient *c, int status, const char *reason,
    const char *extra, enum m_scrape_status counted)
{
	struct buf body;

	buf_init(&body, METRICS_RESPONSE_MAX);
	if (status == 200) {
		/* Counted by the logger, which knows nothing of metrics. */
		metric_set(M_LOG_DROPPED, (int64_t)log_dropped());
		if (metrics_render(&body) != 0) {
			log_error(0, "metrics render-failed bytes=%zu (over "
			    "METRICS_RESPONSE_MAX)", buf_used(&body));
			buf_reset(&body);
			client_free(c);
			return;
		}
	} else {
		(void)buf_appendf(&body, "%d %s\n", status, reason);
	}
	buf_init(&c->out, METRICS_RESPONSE_MAX + 512);
	if (buf_appendf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", status,
	    reason, status == 200 ? "text/plain; version=0.0.4; charset=utf-8" :
	    "text/plain; charset=utf-8", buf_used(&body), extra) != 0 ||
	    buf_append(&c->out, buf_head(&body), buf_used(&body)) != 0) {
		buf_reset(&body);
		client_free(c);
		return;
	}
	buf_reset(&body);
	metric_inc_l(M_SCRAPES, counted);
	log_debug(0, "metrics request status=%d bytes=%zu", status,
	    buf_used(&c->out));
	c->state = MC_WRITE;
	client_write(c);
}

/* The head is complete (len bytes up to its empty line): answer it. */
static void
handle_request(struct mclient *c, size_t len)
{
	const char *p = c->req, *eol, *sp1, *sp2;
	size_t line, tlen;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];

		if ((ch < 0x20 && ch != '\r' && ch != '\n' && ch != '\t') ||
		    ch == 0x7f) {
			respond(c, 400, "Bad Request", "", M_SCRAPE_BAD);
			return;
		}
	}
	eol = memchr(p, '\n', len);
	line = (size_t)(eol - p);
	if (line > 0 && p[line - 1] == '\r')
		line--;
	sp1 = memchr(p, ' ', line);
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', line - (size_t)(sp1 + 1 - p)) :
	    NULL;
	if (sp1 == NULL || sp2 == NULL || sp1 == p || sp2 == sp1 + 1 ||
	    memchr(sp2 + 1, ' ', line - (size_t)(sp2 + 1 - p)) != NULL ||
	    (size_t)(p + line - (sp2 + 1)) != 8 ||
	    (memcmp(sp2 + 1, "HTTP/1.0", 8) != 0 &&
	    memcmp(sp2 + 1, "HTTP/1.1", 8) != 0)) {
		respond(c, 400, "Bad Request", "", M_SCRAPE_BAD);
		return;
	}
	if ((size_t)(sp1 - p) != 3 || memcmp(p, "GET", 3) != 0) {
		respond(c, 405, "Method Not Allowed", "Allow: GET\r\n",
		    M_SCRAPE_NOT_FOUND);
		return;
	}
	tlen = (size_t)(sp2 - (sp1 + 1));
	if (tlen < 8 || memcmp(sp1 + 1, "/metrics", 8) != 0 ||
	    (tlen > 8 && sp1[9] != '?')) {
		respond(c, 404, "Not Found", "", M_SCRAPE_NOT_FOUND);
		return;
	}
	respond(c, 200, "OK", "", M_SCRAPE_OK);
}

/* The length of the head up to its empty line, or 0 if incomplete. */
static size_t
head_length(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void
client_read(struct mclient *c)
{
	char discard[512];
	ssize_t n;
	size_t head;

	if (c->state == MC_LINGER) {
		/* Thrown away; a client that streams on meets the timer. */
		for (int i = 0; i < METRICS_LINGER_READS; i++) {
			n = recv(c->fd, discard, sizeof(discard), 0);
			if (n == 0 || (n < 0 && errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != EINTR)) {
				client_free(c);
				return;
			}
			if (n < 0)
				return;
		}
		return;
	}
	n = recv(c->fd, c->req + c->reqlen, sizeof(c->req) - c->reqlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n <= 0) {
		/* Gone before a whole request: nothing to answer. */
		if (c->reqlen > 0)
			metric_inc_l(M_SCRAPES, M_SCRAPE_BAD);
		client_free(c);
		return;
	}
	c->reqlen += (size_t)n;
	if ((head = head_length(c->req, c->reqlen)) > 0) {
		ev_io_stop(loop, &c->io);
		handle_request(c, head);
		return;
	}
	if (c->reqlen == sizeof(c->req)) {
		ev_io_stop(loop, &c->io);
		respond(c, 431, "Request Header Fields Too Large", "",
		    M_SCRAPE_BAD);
	}
}

static void
client_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct mclient *c = w->data;

	(void)l;
	if (c->state == MC_WRITE && (revents & EV_WRITE))
		client_write(c);
	else if (revents & EV_READ)
		client_read(c);
}

static void
pause_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_io_start(l, &accept_io);
}

static void
accept_cb(struct ev_loop *l, ev_io *w, int revents)
{
	(void)w;
	(void)revents;
	for (int i = 0; i < METRICS_ACCEPT_BURST; i++) {
		struct mclient *c;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				ev_io_stop(l, &accept_io);
				ev_timer_set(&accept_pause, METRICS_ACCEPT_PAUSE,
				    0.);
				ev_timer_start(l, &accept_pause);
			}
			return;
		}
		if (nclients >= METRICS_CLIENTS_MAX) {
			metric_inc_l(M_SCRAPES, M_SCRAPE_BUSY);
			close(fd);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->state = MC_READ;
		buf_init(&c->out, METRICS_RESPONSE_MAX);
		ev_io_init(&c->io, client_cb, fd, EV_READ);
		c->io.data = c;
		ev_timer_init(&c->timer, timeout_cb, METRICS_TIMEOUT, 0.);
		c->timer.data = c;
		ev_io_start(l, &c->io);
		ev_timer_start(l, &c->timer);
		c->next = clients;
		if (clients != NULL)
			clients->prev = c;
		clients = c;
		nclients++;
	}
}

int
metrics_http_open(struct ev_loop *l, const struct metrics_http_config *cfg)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	char ip[INET6_ADDRSTRLEN];
	int on = 1;

	if (!cfg->enabled)
		return 0;
	loop = l;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)cfg->port);
		slen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, cfg->address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)cfg->port);
		slen = sizeof(*sin6);
	} else {
		log_error(0, "metrics listen-error address=%s error=\"not a "
		    "numeric address\"", cfg->address);
		return -1;
	}
	listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		goto fail;
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(listen_fd, (struct sockaddr *)&ss, slen) != 0 ||
	    listen(listen_fd, METRICS_BACKLOG) != 0)
		goto fail;
	slen = sizeof(ss);
	getsockname(listen_fd, (struct sockaddr *)&ss, &slen);
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		log_info(0, "metrics listening addr=%s:%d", ip,
		    ntohs(sin->sin_port));
	} else {
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		log_info(0, "metrics listening addr=[%s]:%d", ip,
		    ntohs(sin6->sin6_port));
	}
	ev_io_init(&accept_io, accept_cb, listen_fd, EV_READ);
	ev_timer_init(&accept_pause, pause_cb, METRICS_ACCEPT_PAUSE, 0.);
	ev_io_start(loop, &accept_io);
	return 0;
fail:
	log_error(0, "metrics listen-error address=%s port=%d error=\"%s\"",
	    cfg->address, cfg->port, strerror(errno));
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	return -1;
}

void
metrics_http_close(void)
{
	while (clients != NULL)
		client_free(clients);
	if (listen_fd >= 0) {
		ev_io_stop(loop, &accept_io);
		ev_timer_stop(loop, &accept_pause);
		close(listen_fd);
		listen_fd = -1;
	}
}
