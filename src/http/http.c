/*
 * http.c — the HTTP client (see http.h): a libcurl multi handle on libev.
 *
 * How the loop drives libcurl (the multi-socket interface):
 *   sock_cb      libcurl says which events it wants on a socket; we keep
 *                one ev_io per socket (struct http_sock, attached with
 *                curl_multi_assign) and stop it on CURL_POLL_REMOVE.
 *   timer_cb     libcurl asks for one timeout; an ev_timer stands for it.
 *                It may not call back into libcurl, so even a 0 ms
 *                timeout fires from the loop.
 *   io_cb        a socket is ready: curl_multi_socket_action(fd, flags).
 *   timeout_cb   curl_multi_socket_action(CURL_SOCKET_TIMEOUT).
 * After every socket_action: reap requests cancelled meanwhile, then
 * deliver finished ones (curl_multi_info_read): remove the easy handle,
 * build the response, call back, free.
 *
 * Requests refused at setup go on a list that a 0 s timer (defer_cb)
 * drains, so no callback ever runs inside http_request().  Each running
 * request also has a backstop timer at its timeout + HTTP_BACKSTOP_SLACK
 * that fails it with "timeout" should libcurl not have (for instance
 * while queued behind the pool limits).
 *
 * Lifetime rules:
 *   - An easy handle is never removed from the multi while libcurl runs
 *     (in_curl > 0): http_cancel() then parks the request on `dead`, and
 *     reap_dead() removes it once curl_multi_socket_action() returned.
 *   - While user callbacks run (dispatching > 0), http_free() only
 *     cancels everything and marks the client; the last dispatcher out
 *     frees it.  Every libev callback here touches the client no more
 *     after a dispatch that may have freed it.
 *
 * Ownership: the client owns the multi handle, all requests (running,
 * refused, dead), their easy handles and timers, and every http_sock.
 *
 * SECURITY: see http.h.  Every path a request takes ends at a callback,
 * a cancel or http_free(), each of which frees it.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "util/log.h"
#include "util/xmalloc.h"

#ifndef LUASMTPD_VERSION
#define LUASMTPD_VERSION	"0"
#endif
#define USER_AGENT_DEFAULT	"luasmtpd/" LUASMTPD_VERSION
/* Longest CA file or directory path accepted from the config. */
#define HTTP_CA_PATH_MAX	4096
#define HTTP_PROXY_MAX		HTTP_URL_MAX

/* One socket libcurl asked us to watch. */
struct http_sock {
	ev_io			 io;
	struct http_client	*client;
	curl_socket_t		 fd;
	LIST_ENTRY(http_sock)	 entry;
};

struct http_client {
	struct ev_loop		*loop;
	CURLM			*multi;
	ev_timer		 timer;		/* libcurl's timeout */
	ev_timer		 defer;		/* refused requests' callbacks */
	TAILQ_HEAD(, http_req)	 reqs;		/* REQ_RUNNING */
	TAILQ_HEAD(, http_req)	 refused;	/* REQ_REFUSED */
	TAILQ_HEAD(, http_req)	 dead;		/* REQ_CANCELLED */
	LIST_HEAD(, http_sock)	 socks;
	unsigned		 npending;	/* running + refused */
	unsigned		 max_requests;
	unsigned		 in_curl;	/* inside socket_action */
	unsigned		 dispatching;	/* user callbacks running */
	bool			 free_pending;
	struct http_defaults	 defaults;
};

static pthread_once_t	 global_once = PTHREAD_ONCE_INIT;
static CURLcode		 global_rc;

static void	 io_cb(struct ev_loop *, ev_io *, int);
static void	 timeout_cb(struct ev_loop *, ev_timer *, int);
static void	 defer_cb(struct ev_loop *, ev_timer *, int);
static void	 backstop_cb(struct ev_loop *, ev_timer *, int);
static void	 client_destroy(struct http_client *);

/*
 * Once per process.  The server already has worker threads when the first
 * client is made; Debian's libcurl has CURL_VERSION_THREADSAFE, so its
 * global init is safe then, and OpenSSL 3 initialises itself once.
 */
static void
global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A config string: NULL stays NULL; no CR/LF, at most max bytes. */
static int
copy_string(char **dst, const char *src, size_t max, const char *what,
    char *err, size_t errlen)
{
	if (src == NULL)
		return 0;
	if (strnlen(src, max + 1) > max || src[strcspn(src, "\r\n")] != '\0' ||
	    src[0] == '\0')
		return fail(err, errlen, "http: %s is empty, too long or has "
		    "a line break", what);
	*dst = xstrdup(src);
	return 0;
}

static int
check_config(const struct http_config *cfg, char *err, size_t errlen)
{
	unsigned total = cfg->max_connections != 0 ? cfg->max_connections :
	    HTTP_MAX_CONNECTIONS_DEFAULT;

	if (total > HTTP_MAX_CONNECTIONS_LIMIT)
		return fail(err, errlen, "http: max_connections over %d",
		    HTTP_MAX_CONNECTIONS_LIMIT);
	if (cfg->max_host_connections > total)
		return fail(err, errlen, "http: max_host_connections over "
		    "max_connections");
	if (cfg->max_requests > HTTP_MAX_REQUESTS_LIMIT)
		return fail(err, errlen, "http: max_requests over %d",
		    HTTP_MAX_REQUESTS_LIMIT);
	if (cfg->timeout != 0 && !(cfg->timeout >= HTTP_TIMEOUT_MIN &&
	    cfg->timeout <= HTTP_TIMEOUT_LIMIT))
		return fail(err, errlen, "http: timeout out of range");
	if (cfg->connect_timeout != 0 &&
	    !(cfg->connect_timeout >= HTTP_TIMEOUT_MIN &&
	    cfg->connect_timeout <= HTTP_TIMEOUT_LIMIT))
		return fail(err, errlen, "http: connect_timeout out of range");
	return 0;
}

/* libcurl must resolve names without blocking the loop, and do TLS. */
static int
check_libcurl(char *err, size_t errlen)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	if (!(v->features & CURL_VERSION_ASYNCHDNS))
		return fail(err, errlen, "http: libcurl %s resolves names "
		    "synchronously (no threaded resolver); it would block "
		    "the event loop", v->version);
	if (!(v->features & CURL_VERSION_SSL))
		return fail(err, errlen, "http: libcurl %s has no TLS",
		    v->version);
	return 0;
}

/* ---- libcurl -> libev ------------------------------------------------- */

static int
sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct http_sock *s = socketp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			ev_io_stop(c->loop, &s->io);
			LIST_REMOVE(s, entry);
			free(s);
		}
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->client = c;
		s->fd = fd;
		LIST_INSERT_HEAD(&c->socks, s, entry);
		curl_multi_assign(c->multi, fd, s);
	} else {
		ev_io_stop(c->loop, &s->io);
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	ev_io_init(&s->io, io_cb, fd, events);
	s->io.data = s;
	ev_io_start(c->loop, &s->io);
	return 0;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;

	ev_timer_stop(c->loop, &c->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.);
		ev_timer_start(c->loop, &c->timer);
	}
	return 0;
}

/* ---- completion --------------------------------------------------------- */

/* Free requests cancelled while libcurl was running. */
static void
reap_dead(struct http_client *c)
{
	struct http_req *r;

	while ((r = TAILQ_FIRST(&c->dead)) != NULL) {
		TAILQ_REMOVE(&c->dead, r, entry);
		curl_multi_remove_handle(c->multi, r->easy);
		http_easy_free(r);
	}
}

/* Call r's callback with resp, then free r.  r is on no list. */
static void
deliver(struct http_client *c, struct http_req *r,
    const struct http_response *resp)
{
	r->state = REQ_DELIVERING;
	c->dispatching++;
	r->cb(r->arg, resp);
	c->dispatching--;
	http_easy_free(r);
}

/* A running request is over: out of the multi, off the list, called back. */
static void
finish(struct http_client *c, struct http_req *r, CURLcode rc,
    const char *error, const char *detail)
{
	struct http_header hdrs[HTTP_RESP_HEADERS_MAX];
	struct http_response resp;

	assert(r->state == REQ_RUNNING);
	ev_timer_stop(c->loop, &r->backstop);
	curl_multi_remove_handle(c->multi, r->easy);
	TAILQ_REMOVE(&c->reqs, r, entry);
	c->npending--;
	http_easy_result(r, rc, &resp, hdrs);
	if (error != NULL) {
		resp.ok = false;
		resp.error = error;
		resp.detail = detail;
		resp.headers = NULL;
		resp.nheaders = 0;
		resp.body = "";
		resp.body_len = 0;
		resp.total_time = ev_now(c->loop) - r->started;
	}
	deliver(c, r, &resp);
}

/*
 * Deliver what libcurl finished.  A callback may free the client: the
 * caller must not touch c afterwards.
 */
static void
dispatch_done(struct http_client *c)
{
	CURLMsg *m;
	int left;

	c->dispatching++;
	while (!c->free_pending &&
	    (m = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct http_req *r;
		char *priv = NULL;
		CURLcode rc;

		if (m->msg != CURLMSG_DONE)
			continue;
		rc = m->data.result;	/* m dies with the removal */
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		r = (struct http_req *)(void *)priv;
		if (r == NULL || r->state != REQ_RUNNING)
			continue;
		finish(c, r, rc, NULL, NULL);
	}
	c->dispatching--;
	if (c->dispatching == 0 && c->free_pending)
		client_destroy(c);
}

static void
socket_action(struct http_client *c, curl_socket_t fd, int flags)
{
	int running;

	c->in_curl++;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	c->in_curl--;
	reap_dead(c);
	dispatch_done(c);	/* c may be gone now */
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_sock *s = w->data;
	int flags = 0;

	if (revents & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (revents & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (revents & EV_ERROR)
		flags |= CURL_CSELECT_ERR;
	/* s may be freed inside (CURL_POLL_REMOVE): read it first. */
	socket_action(s->client, s->fd, flags);
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	socket_action(w->data, CURL_SOCKET_TIMEOUT, 0);
}

/*
 * A request outlived its timeout in libcurl (typically: queued for a
 * connection, where libcurl 7.88 does not time out): fail it ourselves.
 */
static void
backstop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_req *r = w->data;
	struct http_client *c = r->client;

	log_debug(0, "http backstop timeout elapsed=%.3f",
	    ev_now(loop) - r->started);
	c->dispatching++;
	finish(c, r, CURLE_OPERATION_TIMEDOUT, "timeout",
	    "no answer within the request's timeout");
	c->dispatching--;
	if (c->dispatching == 0 && c->free_pending)
		client_destroy(c);
}

/* Callbacks of requests refused at setup, as many as were queued. */
static void
defer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_client *c = w->data;
	struct http_response resp;
	struct http_req *r;
	unsigned n = 0;

	TAILQ_FOREACH(r, &c->refused, entry)
		n++;
	c->dispatching++;
	/* Requests refused by these callbacks wait for the next round. */
	while (n-- > 0 && !c->free_pending &&
	    (r = TAILQ_FIRST(&c->refused)) != NULL) {
		TAILQ_REMOVE(&c->refused, r, entry);
		c->npending--;
		memset(&resp, 0, sizeof(resp));
		resp.error = r->refused;
		resp.detail = r->refused_detail;
		resp.body = "";
		deliver(c, r, &resp);
	}
	c->dispatching--;
	if (c->dispatching == 0 && c->free_pending)
		client_destroy(c);
}

/* ---- the API ------------------------------------------------------------ */

static void
refuse(struct http_req *r, const char *error, const char *detail)
{
	r->refused = error;
	r->refused_detail = detail;
}

struct http_client *
http_new(struct ev_loop *loop, const struct http_config *cfg, char *err,
    size_t errlen)
{
	static const struct http_config zero;
	struct http_client *c;
	long total, host;

	if (cfg == NULL)
		cfg = &zero;
	if (check_config(cfg, err, errlen) == -1 ||
	    check_libcurl(err, errlen) == -1)
		return NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		fail(err, errlen, "http: curl_global_init: %s",
		    curl_easy_strerror(global_rc));
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	TAILQ_INIT(&c->reqs);
	TAILQ_INIT(&c->refused);
	TAILQ_INIT(&c->dead);
	LIST_INIT(&c->socks);
	ev_timer_init(&c->timer, timeout_cb, 0., 0.);
	c->timer.data = c;
	ev_timer_init(&c->defer, defer_cb, 0., 0.);
	c->defer.data = c;
	c->max_requests = cfg->max_requests != 0 ? cfg->max_requests :
	    HTTP_MAX_REQUESTS_DEFAULT;
	c->defaults.timeout = cfg->timeout != 0 ? cfg->timeout :
	    HTTP_TIMEOUT_DEFAULT;
	c->defaults.connect_timeout = cfg->connect_timeout != 0 ?
	    cfg->connect_timeout : HTTP_CONNECT_TIMEOUT_DEFAULT;
	if (copy_string(&c->defaults.ca_file, cfg->ca_file, HTTP_CA_PATH_MAX,
	    "ca_file", err, errlen) == -1 ||
	    copy_string(&c->defaults.ca_path, cfg->ca_path, HTTP_CA_PATH_MAX,
	    "ca_path", err, errlen) == -1 ||
	    copy_string(&c->defaults.user_agent, cfg->user_agent != NULL ?
	    cfg->user_agent : USER_AGENT_DEFAULT, HTTP_USER_AGENT_MAX,
	    "user_agent", err, errlen) == -1 ||
	    copy_string(&c->defaults.proxy, cfg->proxy, HTTP_PROXY_MAX,
	    "proxy", err, errlen) == -1) {
		client_destroy(c);
		return NULL;
	}
	total = cfg->max_connections != 0 ? (long)cfg->max_connections :
	    HTTP_MAX_CONNECTIONS_DEFAULT;
	host = cfg->max_host_connections != 0 ?
	    (long)cfg->max_host_connections : HTTP_MAX_HOST_CONNECTIONS_DEFAULT;
	if (host > total)
		host = total;
	if ((c->multi = curl_multi_init()) == NULL ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb) ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb) ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) ||
	    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total) ||
	    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host) ||
	    /* The pool of idle connections kept for reuse. */
	    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, total)) {
		fail(err, errlen, "http: cannot set up a libcurl multi handle");
		client_destroy(c);
		return NULL;
	}
	return c;
}

struct http_req *
http_request(struct http_client *c, const struct http_request_opts *o,
    http_cb cb, void *arg)
{
	struct http_req *r = xcalloc(1, sizeof(*r));
	double timeout = 0;
	CURLMcode mc;

	assert(cb != NULL);
	r->client = c;
	r->cb = cb;
	r->arg = arg;
	r->started = ev_now(c->loop);
	c->npending++;
	if (c->free_pending)
		refuse(r, "transfer failed", "the client is being freed");
	else if (c->npending > c->max_requests)
		refuse(r, "too many requests",
		    "too many requests in flight on this client");
	else if (o == NULL)
		refuse(r, "bad request options", "no options");
	else if (http_easy_setup(r, &c->defaults, o, &timeout) == 0 &&
	    (mc = curl_multi_add_handle(c->multi, r->easy)) != CURLM_OK)
		refuse(r, "transfer failed", curl_multi_strerror(mc));
	if (r->refused != NULL) {
		r->state = REQ_REFUSED;
		TAILQ_INSERT_TAIL(&c->refused, r, entry);
		if (!ev_is_active(&c->defer)) {
			ev_timer_set(&c->defer, 0., 0.);
			ev_timer_start(c->loop, &c->defer);
		}
		return r;
	}
	r->state = REQ_RUNNING;
	TAILQ_INSERT_TAIL(&c->reqs, r, entry);
	ev_timer_init(&r->backstop, backstop_cb, timeout + HTTP_BACKSTOP_SLACK,
	    0.);
	r->backstop.data = r;
	ev_timer_start(c->loop, &r->backstop);
	return r;
}

void
http_cancel(struct http_req *r)
{
	struct http_client *c;

	if (r == NULL)
		return;
	c = r->client;
	switch (r->state) {
	case REQ_DELIVERING:	/* its own callback: freed after it */
	case REQ_CANCELLED:
		return;
	case REQ_REFUSED:
		TAILQ_REMOVE(&c->refused, r, entry);
		c->npending--;
		http_easy_free(r);
		return;
	case REQ_RUNNING:
		ev_timer_stop(c->loop, &r->backstop);
		TAILQ_REMOVE(&c->reqs, r, entry);
		c->npending--;
		if (c->in_curl > 0) {
			r->state = REQ_CANCELLED;
			TAILQ_INSERT_TAIL(&c->dead, r, entry);
			return;
		}
		curl_multi_remove_handle(c->multi, r->easy);
		http_easy_free(r);
		return;
	}
}

unsigned
http_pending(const struct http_client *c)
{
	return c->npending;
}

/* Free everything; no callback.  Not while libcurl or a callback runs. */
static void
client_destroy(struct http_client *c)
{
	struct http_req *r;
	struct http_sock *s;

	assert(c->in_curl == 0 && c->dispatching == 0);
	while ((r = TAILQ_FIRST(&c->reqs)) != NULL)
		http_cancel(r);
	while ((r = TAILQ_FIRST(&c->refused)) != NULL)
		http_cancel(r);
	reap_dead(c);
	/* Closing pooled connections calls sock_cb (CURL_POLL_REMOVE). */
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	while ((s = LIST_FIRST(&c->socks)) != NULL) {
		ev_io_stop(c->loop, &s->io);
		LIST_REMOVE(s, entry);
		free(s);
	}
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_stop(c->loop, &c->defer);
	free(c->defaults.ca_file);
	free(c->defaults.ca_path);
	free(c->defaults.user_agent);
	free(c->defaults.proxy);
	free(c);
}

void
http_free(struct http_client *c)
{
	struct http_req *r;

	if (c == NULL || c->free_pending)
		return;
	if (c->dispatching == 0 && c->in_curl == 0) {
		client_destroy(c);
		return;
	}
	/* Inside a callback: no further callback, free on the way out. */
	c->free_pending = true;
	while ((r = TAILQ_FIRST(&c->reqs)) != NULL)
		http_cancel(r);
	while ((r = TAILQ_FIRST(&c->refused)) != NULL)
		http_cancel(r);
}
