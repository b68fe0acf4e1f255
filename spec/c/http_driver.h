/*
 * http_driver.h — what the HTTP client drivers (spec/c/test_http.c against
 * nginx, spec/c/test_http_wire.c against canned bytes) share: a callback
 * that records a response (struct got), a bounded loop runner, URL and
 * socket helpers, checks on a recorded response, and a raw server on the
 * loop that answers with canned bytes (what nginx will not send: folded or
 * too many headers, trailers, broken answers).  Helpers are static inline:
 * each driver uses some.
 *
 * Callbacks only record; checks run after the loop returned, because a
 * failed check longjmps (unit.h) and must not leave a libev or libcurl
 * frame behind.  Every loop run is bounded by a guard timer.
 */
#ifndef LUASMTPD_HTTP_DRIVER_H
#define LUASMTPD_HTTP_DRIVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"

#include "unit.h"

#define GOT_BODY_MAX	32768
#define GOT_HDRS_MAX	32
#define JSON_BODY	"{\"user\":\"alice\",\"ok\":true}"
#define BIG_BYTES	(2 * 1024 * 1024)	/* /big in http_peer.lua */
#define CHUNKED_BYTES	20000			/* /chunked */

struct got {
	int			 calls;
	int			 order;		/* completion order in the case */
	bool			 ok;
	char			 error[64];
	char			 detail[256];
	long			 status;
	long			 connects;
	double			 total_time;
	double			 elapsed;	/* loop time from start to cb */
	double			 started;
	size_t			 body_len;
	char			 body[GOT_BODY_MAX + 1];
	size_t			 nheaders;
	char			 hname[GOT_HDRS_MAX][64];
	char			 hvalue[GOT_HDRS_MAX][512];
	char			 url[256];
	struct http_req		*req;
	/* Run at the end of the callback (cancel, free ...). */
	void			(*then)(struct got *);
	void			*then_arg;
};

#define DRIVER_SHARED	__attribute__((unused))	/* not every driver uses all */

static struct ev_loop	*loop;
static int		 http_port DRIVER_SHARED, https_port DRIVER_SHARED;
static const char	*ca_file DRIVER_SHARED, *token DRIVER_SHARED;
static int		 done_count, done_target, order_seq;

static inline void
on_done(void *arg, const struct http_response *r)
{
	struct got *g = arg;

	g->calls++;
	g->order = ++order_seq;
	g->elapsed = ev_now(loop) - g->started;
	g->ok = r->ok;
	snprintf(g->error, sizeof(g->error), "%s", r->error ? r->error : "");
	snprintf(g->detail, sizeof(g->detail), "%s", r->detail ? r->detail : "");
	g->status = r->status;
	g->connects = r->connects;
	g->total_time = r->total_time;
	g->body_len = r->body_len;
	memcpy(g->body, r->body, r->body_len < GOT_BODY_MAX ? r->body_len :
	    GOT_BODY_MAX);
	g->body[r->body_len < GOT_BODY_MAX ? r->body_len : GOT_BODY_MAX] = 0;
	g->nheaders = r->nheaders;
	for (size_t i = 0; i < r->nheaders && i < GOT_HDRS_MAX; i++) {
		snprintf(g->hname[i], sizeof(g->hname[i]), "%s",
		    r->headers[i].name);
		snprintf(g->hvalue[i], sizeof(g->hvalue[i]), "%s",
		    r->headers[i].value);
	}
	snprintf(g->url, sizeof(g->url), "%s", r->url ? r->url : "");
	if (g->then != NULL)
		g->then(g);
	if (done_target > 0 && ++done_count >= done_target)
		ev_break(loop, EVBREAK_ONE);
}

static inline void
guard_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	ev_break(l, EVBREAK_ONE);
}

/* Run the loop until n callbacks ran or seconds passed; n = 0: seconds. */
static inline bool
run(int n, double seconds)
{
	ev_timer guard;

	done_count = 0;
	done_target = n;
	ev_timer_init(&guard, guard_cb, seconds, 0.);
	ev_timer_start(loop, &guard);
	ev_run(loop, 0);
	ev_timer_stop(loop, &guard);
	done_target = 0;
	return n == 0 || done_count >= n;
}

static inline const char *
header(const struct got *g, const char *name)
{
	for (size_t i = 0; i < g->nheaders && i < GOT_HDRS_MAX; i++)
		if (strcasecmp(g->hname[i], name) == 0)
			return g->hvalue[i];
	return NULL;
}

static inline char *
url(const char *scheme, int port, const char *path)
{
	char *s = unit_alloc(256);

	snprintf(s, 256, "%s://127.0.0.1:%d%s", scheme, port, path);
	return s;
}

#define HTTP(path)	url("http", http_port, (path))
#define HTTPS(path)	url("https", https_port, (path))

static inline struct http_client *
client(const struct http_config *cfg)
{
	char err[256] = "";
	struct http_client *c = http_new(loop, cfg, err, sizeof(err));

	if (c == NULL)
		unit_fail(__FILE__, __LINE__, "http_new: %s", err);
	return c;
}

static inline struct got *
got_new(void)
{
	struct got *g = unit_alloc(sizeof(*g));

	memset(g, 0, sizeof(*g));
	return g;
}

/* Start a request recorded in a new got. */
static inline struct got *
start(struct http_client *c, const struct http_request_opts *o)
{
	struct got *g = got_new();

	g->started = ev_now(loop);
	g->req = http_request(c, o, on_done, g);
	CHECK(g->req != NULL);
	return g;
}

static inline struct got *
get(struct http_client *c, const char *u)
{
	struct http_request_opts o = { .method = HTTP_GET, .url = u };

	return start(c, &o);
}

#define CHECK_OK(g, code) do {						\
	if (!(g)->ok || (g)->status != (code))				\
		unit_fail(__FILE__, __LINE__, "want %d, got ok=%d "	\
		    "status=%ld error=%s detail=%s", (code), (g)->ok,	\
		    (g)->status, (g)->error, (g)->detail);		\
} while (0)

#define CHECK_ERR(g, text) do {						\
	if ((g)->ok || strcmp((g)->error, (text)) != 0)			\
		unit_fail(__FILE__, __LINE__, "want error \"%s\", got "	\
		    "ok=%d status=%ld error=%s detail=%s", (text),	\
		    (g)->ok, (g)->status, (g)->error, (g)->detail);	\
} while (0)

/* A socket on 127.0.0.1 that listens (backlog) or is only bound (-1). */
static inline int
local_socket(int backlog, int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	if (backlog >= 0)
		CHECK(listen(fd, backlog) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* ---- a raw server on the loop: canned bytes for one request ------------ */

#define RAW_REQ_MAX	8192
#define RAW_CONNS_MAX	8

struct raw_conn {
	ev_io			 w;
	struct raw_server	*srv;
	size_t			 len;
	char			 buf[RAW_REQ_MAX];
};

/*
 * Answers each connection with response[0..response_len) after the
 * request head (or closes without a word when response is NULL).
 */
struct raw_server {
	int			 fd;
	int			 port;
	ev_io			 accept_w;
	const char		*response;
	size_t			 response_len;
	struct raw_conn		*conns[RAW_CONNS_MAX];
};

static inline void
raw_close(struct raw_conn *rc)
{
	for (size_t i = 0; i < RAW_CONNS_MAX; i++)
		if (rc->srv->conns[i] == rc)
			rc->srv->conns[i] = NULL;
	ev_io_stop(loop, &rc->w);
	close(rc->w.fd);
	free(rc);
}

static inline void
raw_read_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct raw_conn *rc = w->data;
	ssize_t n = read(w->fd, rc->buf + rc->len, sizeof(rc->buf) - rc->len);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n > 0) {
		rc->len += (size_t)n;
		if (memmem(rc->buf, rc->len, "\r\n\r\n", 4) == NULL &&
		    rc->len < sizeof(rc->buf))
			return;
		/* Small answers: the socket buffer takes them at once. */
		if (rc->srv->response != NULL)
			(void)!write(w->fd, rc->srv->response,
			    rc->srv->response_len);
	}
	raw_close(rc);
}

static inline void
raw_accept_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct raw_server *srv = w->data;
	int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	size_t i;

	if (fd < 0)
		return;
	for (i = 0; i < RAW_CONNS_MAX && srv->conns[i] != NULL; i++)
		;
	if (i == RAW_CONNS_MAX) {
		close(fd);
		return;
	}
	srv->conns[i] = calloc(1, sizeof(struct raw_conn));
	if (srv->conns[i] == NULL) {
		close(fd);
		return;
	}
	srv->conns[i]->srv = srv;
	ev_io_init(&srv->conns[i]->w, raw_read_cb, fd, EV_READ);
	srv->conns[i]->w.data = srv->conns[i];
	ev_io_start(loop, &srv->conns[i]->w);
}

static inline struct raw_server *
raw_start(const char *response, size_t len)
{
	struct raw_server *srv = unit_alloc(sizeof(*srv));

	memset(srv, 0, sizeof(*srv));
	srv->fd = local_socket(8, &srv->port);
	CHECK(fcntl(srv->fd, F_SETFL, O_NONBLOCK) == 0);
	srv->response = response;
	srv->response_len = len;
	ev_io_init(&srv->accept_w, raw_accept_cb, srv->fd, EV_READ);
	srv->accept_w.data = srv;
	ev_io_start(loop, &srv->accept_w);
	return srv;
}

static inline void
raw_stop(struct raw_server *srv)
{
	for (size_t i = 0; i < RAW_CONNS_MAX; i++)
		if (srv->conns[i] != NULL)
			raw_close(srv->conns[i]);
	ev_io_stop(loop, &srv->accept_w);
	close(srv->fd);
}

#endif
