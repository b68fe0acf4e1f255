/*
 * test_http_wire.c — how src/http/ reads responses that nginx will not
 * send, from a raw server on the driver's own loop (127.0.0.1, canned
 * bytes): obsolete line folding, response header bounds at n and n+1
 * (bytes and count), trailers, 1xx before the answer, and broken answers.
 *
 * STANDARDS: RFC 9112 §4 (status line), §5.2 (obs-fold), §7.1.2 (chunked
 * trailer section), RFC 9110 §15.2 (1xx).
 *
 * Needs no environment; run from spec/unit/http_spec.lua like test_http.
 */
#include "http_driver.h"

#define LIT(s)		(s), (sizeof(s) - 1)
/* The head of HEAD_OK is 17 + 19 + 2 bytes. */
#define HEAD_OK		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
#define HEAD_OK_BYTES	38

/* Serve response, make one GET with opts (url filled in), wait for it. */
static struct got *
ask(const char *response, size_t len, struct http_request_opts *o)
{
	struct raw_server *srv = raw_start(response, len);
	struct http_client *c = client(NULL);
	struct http_request_opts dflt = { 0 };
	struct got *g;

	if (o == NULL)
		o = &dflt;
	o->url = url("http", srv->port, "/");
	if (o->timeout == 0)
		o->timeout = 5;
	g = start(c, o);
	CHECK(run(1, 10));
	CHECK_INT(http_pending(c), 0);
	http_free(c);
	raw_stop(srv);
	return g;
}

static void
t_fold(void)
{
	struct got *g = ask(LIT("HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\n"
	    "\tc\r\nX-Next: n\r\nContent-Length: 2\r\n\r\nok"), NULL);

	CHECK_OK(g, 200);
	CHECK_STR(header(g, "X-Fold"), "a b c");
	CHECK_STR(header(g, "X-Next"), "n");
	CHECK_STR(g->body, "ok");
}

static void
t_head_bytes(void)
{
	struct http_request_opts exact = { .max_header_bytes = HEAD_OK_BYTES };
	struct http_request_opts over = { .max_header_bytes = HEAD_OK_BYTES - 1 };

	CHECK_INT(strlen(HEAD_OK), HEAD_OK_BYTES);
	CHECK_OK(ask(LIT(HEAD_OK), &exact), 200);
	CHECK_ERR(ask(LIT(HEAD_OK), &over), "response headers too large");
}

/* A response with n header fields (Content-Length is one of them). */
static char *
many_headers(size_t n, size_t *len)
{
	size_t cap = 64 + n * 16, o;
	char *s = unit_alloc(cap);

	o = (size_t)snprintf(s, cap, "HTTP/1.1 200 OK\r\n");
	for (size_t i = 1; i < n; i++)
		o += (size_t)snprintf(s + o, cap - o, "X-H%zu: v\r\n", i);
	o += (size_t)snprintf(s + o, cap - o, "Content-Length: 0\r\n\r\n");
	*len = o;
	return s;
}

static void
t_header_count(void)
{
	size_t len;
	char *at = many_headers(HTTP_RESP_HEADERS_MAX, &len);
	struct got *g = ask(at, len, NULL);
	char *over;

	CHECK_OK(g, 200);
	CHECK_INT(g->nheaders, HTTP_RESP_HEADERS_MAX);
	over = many_headers(HTTP_RESP_HEADERS_MAX + 1, &len);
	CHECK_ERR(ask(over, len, NULL), "response headers too large");
}

static void
t_trailers(void)
{
	struct got *g = ask(LIT("HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\nX-Head: h\r\n\r\n"
	    "3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"), NULL);

	CHECK_OK(g, 200);
	CHECK_STR(g->body, "abc");
	CHECK_STR(header(g, "X-Head"), "h");
	CHECK(header(g, "X-Trailer") == NULL);
}

static void
t_continue(void)
{
	struct got *g = ask(LIT("HTTP/1.1 100 Continue\r\nX-Early: e\r\n\r\n"
	    "HTTP/1.1 201 Created\r\nX-Final: f\r\nContent-Length: 0\r\n\r\n"),
	    NULL);

	CHECK_OK(g, 201);
	CHECK_STR(header(g, "X-Final"), "f");
	CHECK(header(g, "X-Early") == NULL);
	CHECK_INT(g->nheaders, 2);
}

static void
t_closed_without_answer(void)
{
	CHECK_ERR(ask(NULL, 0, NULL), "bad response");
}

static void
t_no_status_line(void)
{
	CHECK_ERR(ask(LIT("hello, this is not HTTP\r\n\r\n"), NULL),
	    "bad response");
}

static void
t_short_body(void)
{
	CHECK_ERR(ask(LIT("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
	    NULL), "bad response");
}

static void
t_bad_status(void)
{
	CHECK_ERR(ask(LIT("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"),
	    NULL), "bad response");
}

static void
t_body_nul(void)
{
	struct got *g = ask(LIT("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
	    "a\0b"), NULL);

	CHECK_OK(g, 200);
	CHECK_MEM(g->body, g->body_len, "a\0b", 3);
}

static const struct unit_case cases[] = {
	{ "an obs-folded header is joined with single spaces", t_fold },
	{ "a head of max_header_bytes passes and one byte more fails",
	  t_head_bytes },
	{ "HTTP_RESP_HEADERS_MAX header fields pass and one more fails",
	  t_header_count },
	{ "chunked trailers are not taken as headers", t_trailers },
	{ "a 1xx before the answer leaves only the final headers", t_continue },
	{ "a server closing without an answer is a bad response",
	  t_closed_without_answer },
	{ "an answer without a status line is a bad response",
	  t_no_status_line },
	{ "a body shorter than its Content-Length is a bad response",
	  t_short_body },
	{ "a malformed status code is a bad response", t_bad_status },
	{ "a body with a NUL byte is kept whole", t_body_nul },
};

int
main(void)
{
	int rc;

	loop = ev_default_loop(0);
	rc = unit_run(cases, sizeof(cases) / sizeof(cases[0]));
	ev_loop_destroy(loop);
	return rc;
}
