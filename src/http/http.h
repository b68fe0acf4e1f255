/*
 * http.h — asynchronous HTTP(S) client on the event loop (libcurl multi).
 *
 * DESCRIPTION
 *	A client is one libcurl multi handle driven by libev through the
 *	multi-socket interface (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION,
 *	curl_multi_socket_action): no thread of ours, no blocking call on the
 *	loop.  Policy code uses it to ask a policy service (a user directory, a
 *	webhook) and gets one callback per request.  No Lua here: the Lua task
 *	layer wraps http_request() as a yielding primitive.
 *
 *	Connections are pooled by the multi handle and reused between requests
 *	to the same scheme, host and port (and TLS settings); the pool is
 *	bounded in total and per host.  Requests beyond those bounds wait in
 *	libcurl's queue, still under their own timeout.
 *
 * STANDARDS
 *	RFC 9110 (HTTP semantics), RFC 9112 (HTTP/1.1), RFC 9113 (HTTP/2,
 *	when the server offers it through ALPN), RFC 8446 (TLS 1.3), RFC 6125
 *	(host name checks on certificates, done by libcurl and OpenSSL).
 *
 * CALLBACKS
 *	The callback runs exactly once per request unless the request was
 *	cancelled, and only from a libev callback: never from inside
 *	http_request(), also when the request is refused at setup (bad
 *	options, a scheme other than http/https, too many requests in
 *	flight).  The response and everything it points to is valid only
 *	during the call; copy what you keep.  After the callback returns the
 *	request is freed: the struct http_req pointer is dead from the moment
 *	the callback starts (http_cancel() on it from inside its own callback
 *	is a harmless no-op).  From a callback one may start requests, cancel
 *	other requests and even http_free() the client.
 *
 * OWNERSHIP
 *	The client owns the multi handle, every request, easy handle, socket
 *	watcher and timer.  http_request() copies the URL, the headers and the
 *	body; the caller's buffers may go right after the call.  http_free()
 *	cancels every request still running (no callback) and closes the
 *	pooled connections.
 *
 * RESOURCE AND RATE CONTROLS
 *	Every request has a total timeout (HTTP_TIMEOUT_DEFAULT unless given,
 *	at most HTTP_TIMEOUT_LIMIT) and a connect timeout; the client adds a
 *	backstop timer of its own so that no request outlives its timeout by
 *	more than HTTP_BACKSTOP_SLACK, whatever state libcurl is in.  The
 *	response body is kept up to max_body bytes (default 1 MiB); a longer
 *	body fails the request ("response too large"), it is never cut
 *	silently.  Response header bytes (per response, redirects included)
 *	and header count are bounded the same way.  Requests in flight per
 *	client are bounded (max_requests); request headers, header lines, URL
 *	and body have fixed bounds below.
 *
 * SECURITY
 *	Only http and https, also on redirects (CURLOPT_PROTOCOLS_STR and
 *	CURLOPT_REDIR_PROTOCOLS_STR): file://, gopher://, dict:// and the
 *	rest are refused.  TLS peers are verified (chain and host name)
 *	unless a request sets insecure.  Redirects are followed only when
 *	asked, at most HTTP_REDIRECTS_MAX.  Request header names must be
 *	tokens and values must hold no control character but HTAB, so a
 *	caller cannot inject a header or a second request; Content-Length
 *	and Transfer-Encoding are refused (libcurl frames the body, so a
 *	pooled connection cannot be desynchronised).  No proxy from the
 *	environment (http_proxy and friends are ignored; a proxy is used
 *	only when the config names one), no .netrc, no cookies, no content
 *	decoding (the body limit applies to the bytes as sent).  libcurl's
 *	name resolution must be asynchronous (the threaded resolver of
 *	Debian's libcurl): http_new() refuses a libcurl without
 *	CURL_VERSION_ASYNCHDNS, and CURLOPT_QUICK_EXIT keeps a cancel
 *	during a slow lookup from waiting for the resolver thread.
 *	CURLOPT_NOSIGNAL: libcurl never touches signals.
 */
#ifndef LUASMTPD_HTTP_H
#define LUASMTPD_HTTP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

/* Pool: connections open at once, in total and to one host. */
#define HTTP_MAX_CONNECTIONS_DEFAULT	64
#define HTTP_MAX_HOST_CONNECTIONS_DEFAULT 8
#define HTTP_MAX_CONNECTIONS_LIMIT	1024
/* Requests in flight per client (queued ones included). */
#define HTTP_MAX_REQUESTS_DEFAULT	1024
#define HTTP_MAX_REQUESTS_LIMIT		65536
/* Seconds.  A pooled connection idle over HTTP_IDLE_MAX is not reused. */
#define HTTP_TIMEOUT_DEFAULT		10.0
#define HTTP_CONNECT_TIMEOUT_DEFAULT	5.0
#define HTTP_TIMEOUT_LIMIT		300.0
#define HTTP_TIMEOUT_MIN		0.001
#define HTTP_IDLE_MAX			60
/*
 * The client's own timer fires this long after a request's timeout.  It is
 * what ends a request queued behind the pool limits: libcurl 7.88 does not
 * time out a transfer still waiting for a connection.
 */
#define HTTP_BACKSTOP_SLACK		0.25
/* Response limits: body and header bytes (defaults and largest allowed). */
#define HTTP_BODY_DEFAULT		(1024 * 1024)
#define HTTP_BODY_LIMIT			(64 * 1024 * 1024)
#define HTTP_HEADER_BYTES_DEFAULT	(32 * 1024)
#define HTTP_HEADER_BYTES_LIMIT		(1024 * 1024)
#define HTTP_RESP_HEADERS_MAX		128
/* Request limits. */
#define HTTP_URL_MAX			8192
#define HTTP_REQ_HEADERS_MAX		64
#define HTTP_REQ_HEADER_NAME_MAX	256
#define HTTP_REQ_HEADER_LINE_MAX	8192	/* "Name: value" */
#define HTTP_REQ_BODY_MAX		(16 * 1024 * 1024)
#define HTTP_USER_AGENT_MAX		256
/* Redirects followed when follow_redirects is set. */
#define HTTP_REDIRECTS_MAX		3

struct http_client;
struct http_req;

/* Zero fields take the defaults above; NULL strings: none/defaults. */
struct http_config {
	unsigned	 max_connections;	/* pool, total */
	unsigned	 max_host_connections;	/* pool, per host:port */
	unsigned	 max_requests;		/* in flight */
	double		 timeout;		/* default total, seconds */
	double		 connect_timeout;	/* default connect, seconds */
	const char	*ca_file;		/* PEM bundle; NULL: system's */
	const char	*ca_path;		/* hashed dir; NULL: system's */
	const char	*user_agent;		/* NULL: "luasmtpd/VERSION" */
	const char	*proxy;			/* NULL: no proxy at all */
};

enum http_method {
	HTTP_GET = 0,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_HEAD,
};

struct http_header {
	const char	*name;
	const char	*value;
};

/* Zero fields take the client's defaults (see http_config and above). */
struct http_request_opts {
	enum http_method	 method;
	const char		*url;		/* http:// or https:// */
	const struct http_header *headers;	/* nheaders entries */
	size_t			 nheaders;
	const void		*body;		/* POST, PUT, DELETE */
	size_t			 body_len;
	double			 timeout;	/* total, seconds */
	double			 connect_timeout;
	bool			 insecure;	/* skip TLS peer verification */
	bool			 follow_redirects; /* up to HTTP_REDIRECTS_MAX */
	size_t			 max_body;	/* response body bytes */
	size_t			 max_header_bytes; /* per response */
};

/*
 * ok: an HTTP response arrived (whatever its status).  Otherwise error is
 * one of these stable texts and detail is libcurl's message:
 *	"timeout"  "connection refused"  "connect failed"
 *	"name resolution failed"  "certificate verify failed"
 *	"tls handshake failed"  "unsupported scheme"  "bad url"
 *	"too many redirects"  "bad response" (no status line, closed
 *	before the answer or inside the body, broken HTTP/2)
 *	"response too large"
 *	"response headers too large"  "too many requests"
 *	"bad request options"  "transfer failed"
 */
struct http_response {
	bool			 ok;
	const char		*error;		/* NULL when ok */
	const char		*detail;	/* NULL when ok; never NULL else */
	long			 status;	/* 0 when no response */
	const struct http_header *headers;	/* last response's, in order */
	size_t			 nheaders;
	const char		*body;		/* NUL-terminated, "" if none */
	size_t			 body_len;
	double			 total_time;	/* seconds */
	long			 connects;	/* new connections; 0: reused */
	const char		*url;		/* effective (after redirects) */
};

typedef void (*http_cb)(void *arg, const struct http_response *);

/*
 * A client on loop.  NULL with a message in err on failure (bad config, a
 * libcurl without asynchronous name resolution, out of libcurl memory).
 * cfg is copied.
 */
struct http_client	*http_new(struct ev_loop *, const struct http_config *,
			    char *err, size_t errlen);
/* Cancel every request (no callback), close the pool, free.  NULL-safe. */
void			 http_free(struct http_client *);
/*
 * Start a request.  Always returns a request (never NULL): refused
 * options are reported through cb, later, from the loop.  Does not call
 * cb.  opts and what it points to are copied.
 */
struct http_req		*http_request(struct http_client *,
			    const struct http_request_opts *, http_cb cb,
			    void *arg);
/* Stop a request and free it; cb is never called.  NULL-safe. */
void			 http_cancel(struct http_req *);
/* Requests started and not yet completed or cancelled (for tests). */
unsigned		 http_pending(const struct http_client *);
/* "GET" ... for logs; NULL for a value outside the enum. */
const char		*http_method_name(enum http_method);

#endif
