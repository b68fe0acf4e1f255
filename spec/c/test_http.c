/*
 * test_http.c — cases for src/http/ (the libcurl multi client on libev)
 * against real servers on 127.0.0.1.
 *
 * spec/unit/http_spec.lua starts nginx (spec/support/http_peer.lua) with a
 * plain and a TLS listener (self-signed certificate) and runs this driver
 * with HTTP_PORT, HTTPS_PORT, HTTP_CA (the certificate, as a CA file) and
 * HTTP_TOKEN (marks the connection-reuse requests in nginx's access log,
 * which the spec reads afterwards).  Servers that never answer and ports
 * that refuse are sockets this driver makes itself on 127.0.0.1.
 *
 * Helpers (recording callback, bounded loop runs) are in http_driver.h.
 * Built with ASan, UBSan and LeakSanitizer: a request freed twice, a
 * watcher left on freed memory or a leak is a report.
 */
#include "http_driver.h"

/* ---- answers ------------------------------------------------------------ */

static void
t_get_json(void)
{
	struct http_client *c = client(NULL);
	struct http_header h[] = { { "X-Req", "hello there" } };
	struct http_request_opts o = { .method = HTTP_GET, .url = HTTP("/json"),
	    .headers = h, .nheaders = 1 };
	struct got *g = start(c, &o);

	CHECK(run(1, 10));
	CHECK_OK(g, 200);
	CHECK_STR(g->body, JSON_BODY);
	CHECK_INT(g->body_len, strlen(JSON_BODY));
	CHECK_STR(header(g, "Content-Type"), "application/json");
	CHECK_STR(header(g, "X-Echo"), "hello there");
	CHECK_INT(g->connects, 1);
	CHECK(g->total_time > 0 && g->total_time < 10);
	CHECK_STR(g->url, HTTP("/json"));
	CHECK_INT(http_pending(c), 0);
	http_free(c);
}

static void
t_get_404(void)
{
	struct http_client *c = client(NULL);
	struct got *g = get(c, HTTP("/missing"));

	CHECK(run(1, 10));
	CHECK_OK(g, 404);
	CHECK(strstr(g->body, "404") != NULL);
	http_free(c);
}

static void
t_post_body(void)
{
	struct http_client *c = client(NULL);
	struct http_header h[] = { { "Content-Type", "application/json" } };
	static const char body[] = "{\"rcpt\":\"bob@example.test\"}";
	struct http_request_opts o = { .method = HTTP_POST, .url = HTTP("/echo"),
	    .headers = h, .nheaders = 1, .body = body,
	    .body_len = sizeof(body) - 1 };
	struct got *g = start(c, &o);

	CHECK(run(1, 10));
	CHECK_OK(g, 200);
	CHECK_STR(header(g, "X-Method"), "POST");
	CHECK_STR(header(g, "X-Content-Type"), "application/json");
	CHECK_STR(g->body, body);
	http_free(c);
}

static void
t_put_delete(void)
{
	struct http_client *c = client(NULL);
	struct http_request_opts put = { .method = HTTP_PUT,
	    .url = HTTP("/echo"), .body = "state=1", .body_len = 7 };
	struct http_request_opts del = { .method = HTTP_DELETE,
	    .url = HTTP("/echo") };
	struct got *gp = start(c, &put), *gd = start(c, &del);

	CHECK(run(2, 10));
	CHECK_OK(gp, 200);
	CHECK_STR(header(gp, "X-Method"), "PUT");
	CHECK_STR(gp->body, "state=1");
	CHECK_OK(gd, 200);
	CHECK_STR(header(gd, "X-Method"), "DELETE");
	CHECK_INT(gd->body_len, 0);
	http_free(c);
}

static void
t_head(void)
{
	struct http_client *c = client(NULL);
	struct http_request_opts o = { .method = HTTP_HEAD, .url = HTTP("/big") };
	struct got *g = start(c, &o);

	CHECK(run(1, 10));
	/* The Content-Length of a body never sent is not over the limit. */
	CHECK_OK(g, 200);
	CHECK_INT(g->body_len, 0);
	CHECK_INT(atol(header(g, "Content-Length")), BIG_BYTES);
	http_free(c);
}

/* ---- redirects -------------------------------------------------------- */

static void
t_redirect_not_followed(void)
{
	struct http_client *c = client(NULL);
	struct got *g = get(c, HTTP("/redirect"));

	CHECK(run(1, 10));
	CHECK_OK(g, 302);
	CHECK_STR(header(g, "Location"), HTTP("/json"));
	http_free(c);
}

static void
t_redirect_followed(void)
{
	struct http_client *c = client(NULL);
	struct http_request_opts o = { .url = HTTP("/redirect"),
	    .follow_redirects = true };
	struct got *g = start(c, &o);

	CHECK(run(1, 10));
	CHECK_OK(g, 200);
	CHECK_STR(g->body, JSON_BODY);
	CHECK_STR(g->url, HTTP("/json"));
	/* Only the last response's headers. */
	CHECK(header(g, "Location") == NULL);
	http_free(c);
}

static void
t_redirect_limit(void)
{
	struct http_client *c = client(NULL);
	struct http_request_opts three = { .url = HTTP("/hop3"),
	    .follow_redirects = true };
	struct http_request_opts four = { .url = HTTP("/hop4"),
	    .follow_redirects = true };
	struct got *g3 = start(c, &three), *g4 = start(c, &four);

	CHECK(run(2, 10));
	CHECK_OK(g3, 200);	/* n = HTTP_REDIRECTS_MAX */
	CHECK_ERR(g4, "too many redirects");	/* n + 1 */
	http_free(c);
}

static void
t_redirect_to_file(void)
{
	struct http_client *c = client(NULL);
	struct http_request_opts o = { .url = HTTP("/to-file"),
	    .follow_redirects = true };
	struct got *g = start(c, &o);

	CHECK(run(1, 10));
	CHECK_ERR(g, "unsupported scheme");
	http_free(c);
}

/* ---- failures: timeout, refused ------------------------------------------ */

static void
t_timeout_alone(void)
{
	struct http_client *c = client(NULL);
	int port, fd = local_socket(8, &port);
	struct http_request_opts slow = { .url = url("http", port, "/"),
	    .timeout = 0.5 };
	struct got *gs = start(c, &slow);
	struct got *gj = get(c, HTTP("/json"));

	CHECK(run(2, 10));
	close(fd);
	/* The answer came meanwhile; the silent server's request failed on
	 * its own timeout afterwards. */
	CHECK_OK(gj, 200);
	CHECK_ERR(gs, "timeout");
	CHECK(gj->order < gs->order);
	CHECK(gs->elapsed >= 0.45 && gs->elapsed < 0.5 + 1.0);
	CHECK_INT(http_pending(c), 0);
	http_free(c);
}

static void
t_connect_timeout(void)
{
	struct http_client *c = client(NULL);
	int port, fd = local_socket(0, &port), fill[3];
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };
	struct http_request_opts o = { .url = url("http", port, "/"),
	    .timeout = 5, .connect_timeout = 0.3 };
	struct got *g;

	/* A full accept queue: the kernel drops further SYNs, so the
	 * handshake never completes (no address outside loopback needed). */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < 3; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		CHECK(fill[i] >= 0);
		(void)connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
		usleep(50000);
	}
	g = start(c, &o);
	CHECK(run(1, 10));
	for (int i = 0; i < 3; i++)
		close(fill[i]);
	close(fd);
	CHECK_ERR(g, "timeout");
	CHECK(g->elapsed >= 0.25 && g->elapsed < 2.0);
	http_free(c);
}

static void
t_refused(void)
{
	struct http_client *c = client(NULL);
	int port, fd = local_socket(-1, &port);	/* bound, not listening */
	struct got *g = get(c, url("http", port, "/"));

	CHECK(run(1, 10));
	close(fd);
	CHECK_ERR(g, "connection refused");
	CHECK_INT(g->status, 0);
	http_free(c);
}

/* A request queued behind the pool limit still ends at its timeout. */
static void
t_queued_timeout(void)
{
	struct http_config cfg = { .max_host_connections = 1 };
	struct http_client *c = client(&cfg);
	int port, fd = local_socket(8, &port);
	struct http_request_opts first = { .url = url("http", port, "/a"),
	    .timeout = 5 };
	struct http_request_opts queued = { .url = url("http", port, "/b"),
	    .timeout = 0.3 };
	struct got *g1 = start(c, &first), *g2 = start(c, &queued);

	CHECK(run(1, 10));
	CHECK_ERR(g2, "timeout");
	CHECK(g2->elapsed >= 0.25 && g2->elapsed < 0.3 + 1.0);
	CHECK_INT(g1->calls, 0);
	http_free(c);	/* with g1 in flight: no callback, no leak */
	close(fd);
	CHECK(run(0, 0.1));
	CHECK_INT(g1->calls, 0);
}

/* ---- TLS -------------------------------------------------------------- */

static void
t_tls_untrusted(void)
{
	struct http_client *c = client(NULL);
	struct got *g = get(c, HTTPS("/json"));

	CHECK(run(1, 10));
	CHECK_ERR(g, "certificate verify failed");
	http_free(c);
}

static void
t_tls_ca_file(void)
{
	struct http_config cfg = { .ca_file = ca_file };
	struct http_client *c = client(&cfg);
	struct got *g = get(c, HTTPS("/json"));

	CHECK(run(1, 10));
	CHECK_OK(g, 200);
	CHECK_STR(g->body, JSON_BODY);
	http_free(c);
}

static void
t_tls_name_mismatch(void)
{
	struct http_config cfg = { .ca_file = ca_file };
	struct http_client *c = client(&cfg);
	char *u = unit_alloc(256);
	struct got *g;

	/* The certificate names 127.0.0.1 only. */
	snprintf(u, 256, "https://localhost:%d/json", https_port);
	g = get(c, u);
	CHECK(run(1, 10));
	CHECK_ERR(g, "certificate verify failed");
	http_free(c);
}

static void
t_tls_insecure(void)
{
	struct http_client *c = client(NULL);
	struct http_request_opts o = { .url = HTTPS("/json"), .insecure = true };
	struct got *g = start(c, &o);

	CHECK(run(1, 10));
	CHECK_OK(g, 200);
	CHECK_STR(g->body, JSON_BODY);
	http_free(c);
}

/* ---- limits ------------------------------------------------------------- */

static void
t_body_over_default(void)
{
	struct http_client *c = client(NULL);
	struct got *g = get(c, HTTP("/big"));	/* 2 MiB, Content-Length */

	CHECK(run(1, 10));
	CHECK_ERR(g, "response too large");
	CHECK_INT(g->body_len, 0);
	http_free(c);
}

static void
t_body_over_chunked(void)
{
	struct http_client *c = client(NULL);
	struct http_request_opts over = { .url = HTTP("/chunked"),
	    .max_body = CHUNKED_BYTES - 1 };
	struct http_request_opts exact = { .url = HTTP("/chunked"),
	    .max_body = CHUNKED_BYTES };
	struct got *go = start(c, &over), *ge = start(c, &exact);

	CHECK(run(2, 10));
	CHECK_ERR(go, "response too large");
	CHECK_OK(ge, 200);
	CHECK_INT(ge->body_len, CHUNKED_BYTES);
	CHECK(header(ge, "Content-Length") == NULL);	/* really chunked */
	http_free(c);
}

static void
t_body_limit_exact(void)
{
	struct http_client *c = client(NULL);
	struct http_request_opts exact = { .url = HTTP("/json"),
	    .max_body = strlen(JSON_BODY) };
	struct http_request_opts over = { .url = HTTP("/json"),
	    .max_body = strlen(JSON_BODY) - 1 };
	struct got *ge = start(c, &exact), *go = start(c, &over);

	CHECK(run(2, 10));
	CHECK_OK(ge, 200);
	CHECK_STR(ge->body, JSON_BODY);
	CHECK_ERR(go, "response too large");
	http_free(c);
}

static void
t_header_limit(void)
{
	struct http_client *c = client(NULL);
	struct http_request_opts small = { .url = HTTP("/json"),
	    .max_header_bytes = 64 };
	struct got *g = start(c, &small);

	CHECK(run(1, 10));
	CHECK_ERR(g, "response headers too large");
	http_free(c);
}

static void
t_too_many_requests(void)
{
	struct http_config cfg = { .max_requests = 2 };
	struct http_client *c = client(&cfg);
	struct got *a = get(c, HTTP("/json")), *b = get(c, HTTP("/json"));
	struct got *x = get(c, HTTP("/json"));

	CHECK_INT(x->calls, 0);
	CHECK(run(3, 10));
	CHECK_OK(a, 200);
	CHECK_OK(b, 200);
	CHECK_ERR(x, "too many requests");
	/* Refused at once, from the loop: before the answers. */
	CHECK(x->order < a->order && x->order < b->order);
	http_free(c);
}

/* ---- the pool ------------------------------------------------------------ */

static void
t_reuse(void)
{
	struct http_client *c = client(NULL);
	char path[128];
	struct got *g1, *g2;

	snprintf(path, sizeof(path), "/reuse?n=1&t=%s", token);
	g1 = get(c, HTTP(path));
	CHECK(run(1, 10));
	snprintf(path, sizeof(path), "/reuse?n=2&t=%s", token);
	g2 = get(c, HTTP(path));
	CHECK(run(1, 10));
	CHECK_OK(g1, 200);
	CHECK_OK(g2, 200);
	CHECK_INT(g1->connects, 1);
	CHECK_INT(g2->connects, 0);	/* the pooled connection */
	http_free(c);
}

static void
t_pool_bounded(void)
{
	enum { N = 12 };
	struct http_config cfg = { .max_host_connections = 2 };
	struct http_client *c = client(&cfg);
	struct got *g[N];
	long connects = 0;

	for (int i = 0; i < N; i++)
		g[i] = get(c, HTTP("/json"));
	CHECK(run(N, 20));
	for (int i = 0; i < N; i++) {
		CHECK_OK(g[i], 200);
		connects += g[i]->connects;
	}
	CHECK(connects >= 1 && connects <= 2);
	http_free(c);
}

/* ---- cancel and free ----------------------------------------------------- */

static struct http_req	*cancel_target;

static void
cancel_later_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	http_cancel(w->data);
}

static void
t_cancel(void)
{
	struct http_client *c = client(NULL);
	int port, fd = local_socket(8, &port);
	struct http_request_opts o = { .url = url("http", port, "/"),
	    .timeout = 0.3 };
	struct got *running = start(c, &o), *at_once = start(c, &o);
	ev_timer later;

	/* One cancelled while it waits for an answer, one right away. */
	http_cancel(at_once->req);
	ev_timer_init(&later, cancel_later_cb, 0.1, 0.);
	later.data = running->req;
	ev_timer_start(loop, &later);
	CHECK(run(0, 0.3 + 1.0));	/* past timeout and backstop */
	ev_timer_stop(loop, &later);
	close(fd);
	CHECK_INT(running->calls, 0);
	CHECK_INT(at_once->calls, 0);
	CHECK_INT(http_pending(c), 0);
	http_cancel(NULL);
	http_free(c);
}

static void
t_cancel_refused(void)
{
	struct http_client *c = client(NULL);
	struct got *g = get(c, "gopher://127.0.0.1/");

	http_cancel(g->req);	/* before its deferred callback */
	CHECK(run(0, 0.1));
	CHECK_INT(g->calls, 0);
	CHECK_INT(http_pending(c), 0);
	http_free(c);
}

static void
cancel_other(struct got *g)
{
	http_cancel(cancel_target);
	http_cancel(g->req);	/* its own: a no-op */
}

static void
t_cancel_from_callback(void)
{
	struct http_client *c = client(NULL);
	int port, fd = local_socket(8, &port);
	struct http_request_opts o = { .url = url("http", port, "/"),
	    .timeout = 5 };
	struct got *victim = start(c, &o), *g = got_new();
	struct http_request_opts j = { .url = HTTP("/json") };

	cancel_target = victim->req;
	g->then = cancel_other;
	g->started = ev_now(loop);
	g->req = http_request(c, &j, on_done, g);
	CHECK(run(1, 10));
	CHECK(run(0, 0.2));
	close(fd);
	CHECK_OK(g, 200);
	CHECK_INT(g->calls, 1);
	CHECK_INT(victim->calls, 0);
	CHECK_INT(http_pending(c), 0);
	http_free(c);
}

static void
free_client(struct got *g)
{
	http_free(g->then_arg);
}

static void
t_free_from_callback(void)
{
	struct http_client *c = client(NULL);
	int port, fd = local_socket(8, &port);
	struct http_request_opts o = { .url = url("http", port, "/"),
	    .timeout = 5 };
	struct got *pending = start(c, &o), *refused, *g = got_new();
	struct http_request_opts j = { .url = HTTP("/json") };

	g->then = free_client;
	g->then_arg = c;
	g->started = ev_now(loop);
	g->req = http_request(c, &j, on_done, g);
	refused = get(c, "dict://127.0.0.1/");
	/* The refused one is called back first (0 s timer); then the
	 * answer, whose callback frees the client. */
	CHECK(run(2, 10));
	CHECK(run(0, 0.2));	/* nothing may fire on freed memory */
	close(fd);
	CHECK_ERR(refused, "unsupported scheme");
	CHECK_OK(g, 200);
	CHECK_INT(pending->calls, 0);
}

static void
t_free_in_flight(void)
{
	struct http_client *c = client(NULL);
	int port, fd = local_socket(8, &port);
	struct http_request_opts o = { .url = url("http", port, "/"),
	    .timeout = 0.2 };
	struct got *a = start(c, &o), *b = get(c, HTTP("/json"));
	struct got *r = get(c, "file:///etc/passwd");

	CHECK(run(0, 0.05));
	http_free(c);
	CHECK(run(0, 0.2 + 1.0));	/* past timeout and backstop */
	close(fd);
	CHECK_INT(a->calls, 0);
	CHECK(b->calls <= 1);
	CHECK(r->calls <= 1);
}

/* ---- refused at setup, always from the loop ---------------------------- */

static void
t_schemes(void)
{
	static const char *bad[] = { "file:///etc/passwd",
	    "gopher://127.0.0.1/", "ftp://127.0.0.1/", "dict://127.0.0.1/",
	    "ldap://127.0.0.1/", "smtp://127.0.0.1/", "FILE:///etc/passwd" };
	enum { N = sizeof(bad) / sizeof(bad[0]) };
	struct http_client *c = client(NULL);
	struct got *g[N], *noscheme;

	for (size_t i = 0; i < N; i++) {
		g[i] = get(c, bad[i]);
		CHECK_INT(g[i]->calls, 0);	/* never inside http_request */
	}
	noscheme = get(c, "127.0.0.1/json");
	CHECK(run(N + 1, 10));
	for (size_t i = 0; i < N; i++)
		CHECK_ERR(g[i], "unsupported scheme");
	CHECK_ERR(noscheme, "bad url");
	http_free(c);
}

static void
t_bad_options(void)
{
	struct http_client *c = client(NULL);
	struct http_header crlf[] = { { "X-A", "1\r\nX-Injected: 1" } };
	struct http_header lf[] = { { "X-A", "1\nGET / HTTP/1.1" } };
	struct http_header space[] = { { "X A", "1" } };
	struct http_header colon[] = { { "X-A:", "1" } };
	struct http_header ctl[] = { { "X-A", "1\x01" } };
	struct http_header framing[] = { { "content-length", "0" } };
	struct http_header chunked[] = { { "Transfer-Encoding", "chunked" } };
	struct http_request_opts o[] = {
		{ .url = HTTP("/json"), .headers = crlf, .nheaders = 1 },
		{ .url = HTTP("/json"), .headers = lf, .nheaders = 1 },
		{ .url = HTTP("/json"), .headers = space, .nheaders = 1 },
		{ .url = HTTP("/json"), .headers = colon, .nheaders = 1 },
		{ .url = HTTP("/json"), .headers = ctl, .nheaders = 1 },
		{ .method = HTTP_POST, .url = HTTP("/echo"), .body = "x",
		  .body_len = 1, .headers = framing, .nheaders = 1 },
		{ .method = HTTP_POST, .url = HTTP("/echo"), .body = "x",
		  .body_len = 1, .headers = chunked, .nheaders = 1 },
		{ .url = HTTP("/json"), .body = "x", .body_len = 1 },
		{ .url = HTTP("/json"), .timeout = -1 },
		{ .url = HTTP("/json"), .timeout = HTTP_TIMEOUT_LIMIT + 1 },
		{ .url = HTTP("/json"), .max_body = HTTP_BODY_LIMIT + 1 },
		{ .url = HTTP("/json"), .nheaders = HTTP_REQ_HEADERS_MAX + 1,
		  .headers = crlf },
		{ .url = HTTP("/json"), .method = (enum http_method)99 },
		{ .url = NULL },
	};
	enum { N = sizeof(o) / sizeof(o[0]) };
	struct got *g[N];

	for (size_t i = 0; i < N; i++) {
		g[i] = start(c, &o[i]);
		CHECK_INT(g[i]->calls, 0);
	}
	CHECK(run(N, 10));
	for (size_t i = 0; i < N - 1; i++)
		CHECK_ERR(g[i], "bad request options");
	CHECK_ERR(g[N - 1], "bad url");
	http_free(c);
}

/* A header with an empty value is sent (not dropped); our User-Agent. */
static void
t_empty_header_value(void)
{
	struct http_client *c = client(NULL);
	struct http_header h[] = { { "X-Req", "" } };
	struct http_request_opts o = { .url = HTTP("/json"), .headers = h,
	    .nheaders = 1 };
	struct got *g;

	o.url = HTTP("/request-headers");
	g = start(c, &o);
	CHECK(run(1, 10));
	CHECK_OK(g, 200);
	CHECK(strstr(g->body, "\r\nX-Req:\r\n") != NULL);
	CHECK(strstr(g->body, "\r\nUser-Agent: luasmtpd/") != NULL);
	CHECK(strstr(g->body, "Expect") == NULL);
	http_free(c);
}

static void
t_config_checked(void)
{
	struct http_config host_over = { .max_connections = 2,
	    .max_host_connections = 3 };
	struct http_config too_many = { .max_connections =
	    HTTP_MAX_CONNECTIONS_LIMIT + 1 };
	struct http_config bad_timeout = { .timeout = -2 };
	struct http_config bad_agent = { .user_agent = "a\r\nX-B: 1" };
	char err[256];

	CHECK(http_new(loop, &host_over, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "max_host_connections") != NULL);
	CHECK(http_new(loop, &too_many, err, sizeof(err)) == NULL);
	CHECK(http_new(loop, &bad_timeout, err, sizeof(err)) == NULL);
	CHECK(http_new(loop, &bad_agent, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "user_agent") != NULL);
}

static const struct unit_case cases[] = {
	{ "GET answers 200 with headers and body", t_get_json },
	{ "GET answers 404 as a response", t_get_404 },
	{ "POST sends its body and headers", t_post_body },
	{ "PUT and DELETE send their verb", t_put_delete },
	{ "HEAD of a large resource has no body and passes", t_head },
	{ "a redirect is not followed by default", t_redirect_not_followed },
	{ "a redirect is followed when asked", t_redirect_followed },
	{ "3 redirects are followed and 4 fail", t_redirect_limit },
	{ "a redirect to file is refused", t_redirect_to_file },
	{ "a request times out alone while another completes", t_timeout_alone },
	{ "a connect that never completes hits the connect timeout",
	  t_connect_timeout },
	{ "a closed port gives connection refused", t_refused },
	{ "a request queued behind the pool limit keeps its timeout",
	  t_queued_timeout },
	{ "TLS with a self-signed certificate is refused by default",
	  t_tls_untrusted },
	{ "TLS is accepted with the CA file", t_tls_ca_file },
	{ "TLS to a name the certificate lacks is refused",
	  t_tls_name_mismatch },
	{ "TLS is accepted with verification off", t_tls_insecure },
	{ "a body over the default 1 MiB is refused", t_body_over_default },
	{ "a chunked body over max_body is refused and at max_body passes",
	  t_body_over_chunked },
	{ "a body of max_body passes and of max_body+1 is refused",
	  t_body_limit_exact },
	{ "response headers over max_header_bytes are refused",
	  t_header_limit },
	{ "requests over max_requests are refused from the loop",
	  t_too_many_requests },
	{ "two sequential requests to one host reuse one connection",
	  t_reuse },
	{ "concurrent requests stay within max_host_connections",
	  t_pool_bounded },
	{ "cancelled requests are never called back", t_cancel },
	{ "a refused request cancelled before its callback", t_cancel_refused },
	{ "a callback may cancel another request", t_cancel_from_callback },
	{ "a callback may free the client", t_free_from_callback },
	{ "http_free with requests in flight calls nothing back",
	  t_free_in_flight },
	{ "non-http schemes are refused from the loop", t_schemes },
	{ "bad request options are refused from the loop", t_bad_options },
	{ "a header with an empty value is sent", t_empty_header_value },
	{ "http_new checks its config", t_config_checked },
};

static int
env_port(const char *name)
{
	const char *s = getenv(name);
	int port = s != NULL ? atoi(s) : 0;

	if (port <= 0 || port > 65535) {
		printf("not ok environment: %s is not a port (run me from "
		    "spec/unit/http_spec.lua)\n", name);
		exit(1);
	}
	return port;
}

int
main(void)
{
	int rc;

	http_port = env_port("HTTP_PORT");
	https_port = env_port("HTTPS_PORT");
	ca_file = getenv("HTTP_CA");
	token = getenv("HTTP_TOKEN");
	if (ca_file == NULL || token == NULL) {
		printf("not ok environment: HTTP_CA and HTTP_TOKEN must be set\n");
		return 1;
	}
	loop = ev_default_loop(0);
	rc = unit_run(cases, sizeof(cases) / sizeof(cases[0]));
	ev_loop_destroy(loop);
	return rc;
}
