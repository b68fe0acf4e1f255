/*
 * http_easy.c — one HTTP request as a libcurl easy handle: checking and
 * copying the caller's options, capturing the response within its
 * bounds, and turning libcurl's result into a struct http_response.
 *
 * The loop glue, pooling and callbacks are in http.c; nothing here calls
 * a user callback or touches the multi handle.
 *
 * STANDARDS
 *	RFC 9110 §5.1 (field names are tokens), §5.5 (field values: no
 *	control characters but HTAB), §15.2 (1xx responses come before the
 *	final one); RFC 9112 §5.2 (obsolete line folding: a continuation
 *	line is joined to the previous value with one space), §7.1.2
 *	(trailers, which are not kept).
 *
 * SECURITY
 *	Options are checked before anything is allocated in libcurl.  The
 *	URL must parse with libcurl's own parser (so the check and the use
 *	cannot disagree) and name http or https; the easy handle is also
 *	limited to those protocols, redirects included.  Request header
 *	lines are built only from checked names and values, and never frame
 *	the body (Content-Length, Transfer-Encoding are libcurl's).  The
 *	body and header buffers grow by doubling up to their limits; one
 *	byte over
 *	fails the transfer (the write/header callback returns short, libcurl
 *	stops with CURLE_WRITE_ERROR) and the flag says why.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "util/xmalloc.h"

#define ALLOWED_PROTOCOLS	"http,https"
/* First allocation of the body and header buffers. */
#define BODY_CHUNK		(16 * 1024)
#define HDR_CHUNK		1024

static const char *method_names[] = {
	[HTTP_GET] = "GET",
	[HTTP_POST] = "POST",
	[HTTP_PUT] = "PUT",
	[HTTP_DELETE] = "DELETE",
	[HTTP_HEAD] = "HEAD",
};

const char *
http_method_name(enum http_method m)
{
	if ((unsigned)m >= sizeof(method_names) / sizeof(method_names[0]))
		return NULL;
	return method_names[m];
}

/* RFC 9110 §5.6.2 tchar. */
static bool
is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool
valid_name(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (n == HTTP_REQ_HEADER_NAME_MAX ||
		    !is_tchar((unsigned char)s[n]))
			return false;
	return n > 0;
}

/*
 * RFC 9110 §5.5: visible characters, obs-text, SP and HTAB.  A CR or LF
 * would start a new header line (or a new request); other controls are
 * refused too.  The value ends at its NUL.
 */
static bool
valid_value(const char *s, size_t *len)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)s[n];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	*len = n;
	return true;
}

/*
 * Framing is libcurl's, from the body it was given: a caller's
 * Content-Length or Transfer-Encoding could desynchronise a pooled
 * connection (the next response read as this one's).
 */
static bool
reserved_name(const char *name)
{
	return strcasecmp(name, "Content-Length") == 0 ||
	    strcasecmp(name, "Transfer-Encoding") == 0;
}

static int
refuse(struct http_req *r, const char *error, const char *detail)
{
	r->refused = error;
	r->refused_detail = detail;
	return -1;
}

/* 0: the URL parses and its scheme is http or https. */
static int
check_url(struct http_req *r, const char *url)
{
	CURLU *u;
	char *scheme = NULL;
	int rv = 0;

	if (url == NULL)
		return refuse(r, "bad url", "no url");
	if (strnlen(url, HTTP_URL_MAX + 1) > HTTP_URL_MAX)
		return refuse(r, "bad url", "url too long");
	if ((u = curl_url()) == NULL)
		return refuse(r, "transfer failed", "out of memory");
	/* NON_SUPPORT_SCHEME: parse any scheme, so that ours is the refusal. */
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) !=
	    CURLUE_OK)
		rv = refuse(r, "bad url", "url does not parse");
	else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 &&
	    strcasecmp(scheme, "https") != 0))
		rv = refuse(r, "unsupported scheme",
		    "only http and https urls are allowed");
	curl_free(scheme);
	curl_url_cleanup(u);
	return rv;
}

/* A duration: 0 takes def; otherwise within [MIN, LIMIT]. */
static int
pick_timeout(double given, double def, double *out)
{
	if (given == 0) {
		*out = def;
		return 0;
	}
	if (!isfinite(given) || given < HTTP_TIMEOUT_MIN ||
	    given > HTTP_TIMEOUT_LIMIT)
		return -1;
	*out = given;
	return 0;
}

static int
build_headers(struct http_req *r, const struct http_request_opts *o)
{
	char line[HTTP_REQ_HEADER_LINE_MAX + 1];
	bool expect = false;

	if (o->nheaders > HTTP_REQ_HEADERS_MAX)
		return refuse(r, "bad request options", "too many headers");
	if (o->nheaders > 0 && o->headers == NULL)
		return refuse(r, "bad request options", "headers missing");
	for (size_t i = 0; i < o->nheaders; i++) {
		const struct http_header *h = &o->headers[i];
		struct curl_slist *l;
		size_t vlen;
		int n;

		if (h->name == NULL || !valid_name(h->name))
			return refuse(r, "bad request options",
			    "header name is not a token");
		if (reserved_name(h->name))
			return refuse(r, "bad request options",
			    "Content-Length and Transfer-Encoding are set "
			    "from the body");
		if (h->value == NULL || !valid_value(h->value, &vlen))
			return refuse(r, "bad request options",
			    "header value has a control character");
		/* "Name;" is how libcurl sends a header with an empty value
		 * ("Name:" would remove it). */
		if (vlen == 0)
			n = snprintf(line, sizeof(line), "%s;", h->name);
		else
			n = snprintf(line, sizeof(line), "%s: %s", h->name,
			    h->value);
		if (n < 0 || (size_t)n >= sizeof(line))
			return refuse(r, "bad request options",
			    "header line too long");
		if (strcasecmp(h->name, "Expect") == 0)
			expect = true;
		if ((l = curl_slist_append(r->headers, line)) == NULL)
			return refuse(r, "transfer failed", "out of memory");
		r->headers = l;
	}
	/* No "Expect: 100-continue" round trip (and its 1 s wait) for
	 * large bodies, unless the caller asked for one. */
	if (!expect) {
		struct curl_slist *l = curl_slist_append(r->headers, "Expect:");

		if (l == NULL)
			return refuse(r, "transfer failed", "out of memory");
		r->headers = l;
	}
	return 0;
}

/* Grow *buf to hold need bytes, doubling from first, never past limit. */
static void
grow(char **buf, size_t *cap, size_t need, size_t first, size_t limit)
{
	size_t n = *cap == 0 ? first : *cap;

	assert(need <= limit);
	if (need <= *cap)
		return;
	while (n < need)
		n = n > limit / 2 ? limit : n * 2;
	if (n > limit)
		n = limit;
	*buf = xrealloc(*buf, n);
	*cap = n;
}

static size_t
write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct http_req *r = arg;
	size_t len = size * nmemb;

	if (len > r->body_max - r->body_len) {
		r->body_over = true;
		return 0;	/* short: libcurl stops, CURLE_WRITE_ERROR */
	}
	/* +1: the body is handed out NUL-terminated. */
	grow(&r->body, &r->body_cap, r->body_len + len + 1, BODY_CHUNK,
	    r->body_max + 1);
	memcpy(r->body + r->body_len, p, len);
	r->body_len += len;
	return len;
}

static void
hdr_append(struct http_req *r, const char *p, size_t len)
{
	grow(&r->hdr, &r->hdr_cap, r->hdr_len + len, HDR_CHUNK, r->hdr_max);
	memcpy(r->hdr + r->hdr_len, p, len);
	r->hdr_len += len;
}

static size_t
trim_ows(const char **p, size_t len)
{
	while (len > 0 && (**p == ' ' || **p == '\t')) {
		(*p)++;
		len--;
	}
	while (len > 0 && ((*p)[len - 1] == ' ' || (*p)[len - 1] == '\t'))
		len--;
	return len;
}

/*
 * One header line of a response, CRLF included (libcurl's contract).  A
 * status line starts a new response (after 1xx or a redirect), so what was
 * kept so far is dropped; lines after the blank line are trailers and are
 * not kept.  Raw bytes per response and stored bytes are both bounded by
 * hdr_max.
 */
static size_t
header_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct http_req *r = arg;
	size_t len = size * nmemb, n = len;
	const char *colon, *v;
	size_t nlen, vlen;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		r->hdr_len = r->hdr_count = r->hdr_raw = 0;
		r->hdr_done = false;
	}
	if (len > r->hdr_max - r->hdr_raw)
		goto over;
	r->hdr_raw += len;
	if (r->hdr_done || (len >= 5 && memcmp(p, "HTTP/", 5) == 0))
		return len;
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n == 0) {
		r->hdr_done = true;
		return len;
	}
	if (p[0] == ' ' || p[0] == '\t') {
		/* obs-fold: the last stored value ends the buffer. */
		v = p;
		vlen = trim_ows(&v, n);
		if (r->hdr_count > 0 && vlen > 0) {
			if (vlen + 1 > r->hdr_max - r->hdr_len)
				goto over;
			r->hdr[r->hdr_len - 1] = ' ';
			hdr_append(r, v, vlen);
			hdr_append(r, "", 1);
		}
		return len;
	}
	if ((colon = memchr(p, ':', n)) == NULL)
		return len;	/* not a field; libcurl let it through */
	nlen = (size_t)(colon - p);
	while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
		nlen--;
	v = colon + 1;
	vlen = trim_ows(&v, n - (size_t)(v - p));
	if (r->hdr_count == HTTP_RESP_HEADERS_MAX ||
	    nlen + vlen + 2 > r->hdr_max - r->hdr_len)
		goto over;
	hdr_append(r, p, nlen);
	hdr_append(r, "", 1);
	hdr_append(r, v, vlen);
	hdr_append(r, "", 1);
	r->hdr_count++;
	return len;
over:
	r->hdr_over = true;
	return 0;	/* short: libcurl stops the transfer */
}

#define SETOPT(opt, val) do {						\
	if (curl_easy_setopt(r->easy, (opt), (val)) != CURLE_OK)	\
		return refuse(r, "bad request options",			\
		    "libcurl refused option " #opt);			\
} while (0)

static int
set_body(struct http_req *r, const struct http_request_opts *o)
{
	SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
	/* COPYPOSTFIELDS: the caller's buffer may go after return. */
	SETOPT(CURLOPT_COPYPOSTFIELDS, o->body_len > 0 ?
	    (const char *)o->body : "");
	return 0;
}

static int
set_method(struct http_req *r, const struct http_request_opts *o)
{
	switch (o->method) {
	case HTTP_GET:
		SETOPT(CURLOPT_HTTPGET, 1L);
		return 0;
	case HTTP_HEAD:
		SETOPT(CURLOPT_NOBODY, 1L);
		return 0;
	case HTTP_PUT:
	case HTTP_DELETE:
		/* A body goes as POST fields sent under that verb. */
		SETOPT(CURLOPT_CUSTOMREQUEST, http_method_name(o->method));
		return o->body_len > 0 ? set_body(r, o) : 0;
	case HTTP_POST:
		return set_body(r, o);
	}
	return refuse(r, "bad request options", "unknown method");
}

int
http_easy_setup(struct http_req *r, const struct http_defaults *d,
    const struct http_request_opts *o, double *timeout)
{
	double total, conn;

	if (http_method_name(o->method) == NULL)
		return refuse(r, "bad request options", "unknown method");
	if (check_url(r, o->url) == -1)
		return -1;
	if (o->body_len > HTTP_REQ_BODY_MAX)
		return refuse(r, "bad request options",
		    "request body too large");
	if (o->body_len > 0 && o->body == NULL)
		return refuse(r, "bad request options", "body missing");
	if (o->body_len > 0 &&
	    (o->method == HTTP_GET || o->method == HTTP_HEAD))
		return refuse(r, "bad request options",
		    "GET and HEAD take no body");
	if (pick_timeout(o->timeout, d->timeout, &total) == -1 ||
	    pick_timeout(o->connect_timeout, d->connect_timeout, &conn) == -1)
		return refuse(r, "bad request options", "timeout out of range");
	if (conn > total)
		conn = total;
	if (o->max_body > HTTP_BODY_LIMIT ||
	    o->max_header_bytes > HTTP_HEADER_BYTES_LIMIT)
		return refuse(r, "bad request options", "limit out of range");
	r->body_max = o->max_body != 0 ? o->max_body : HTTP_BODY_DEFAULT;
	r->hdr_max = o->max_header_bytes != 0 ? o->max_header_bytes :
	    HTTP_HEADER_BYTES_DEFAULT;
	*timeout = total;
	if (build_headers(r, o) == -1)
		return -1;

	if ((r->easy = curl_easy_init()) == NULL)
		return refuse(r, "transfer failed", "out of memory");
	SETOPT(CURLOPT_PRIVATE, r);
	SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	/* A cancel during a threaded lookup must not join the thread. */
	SETOPT(CURLOPT_QUICK_EXIT, 1L);
	SETOPT(CURLOPT_PROTOCOLS_STR, ALLOWED_PROTOCOLS);
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, ALLOWED_PROTOCOLS);
	SETOPT(CURLOPT_URL, o->url);
	SETOPT(CURLOPT_TIMEOUT_MS, (long)ceil(total * 1000));
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)ceil(conn * 1000));
	SETOPT(CURLOPT_MAXAGE_CONN, (long)HTTP_IDLE_MAX);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_WRITEDATA, r);
	SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(CURLOPT_HEADERDATA, r);
	SETOPT(CURLOPT_HTTPHEADER, r->headers);
	SETOPT(CURLOPT_USERAGENT, d->user_agent);
	/* "" disables a proxy, also one from the environment. */
	SETOPT(CURLOPT_PROXY, d->proxy != NULL ? d->proxy : "");
	SETOPT(CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	SETOPT(CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
	if (d->ca_file != NULL)
		SETOPT(CURLOPT_CAINFO, d->ca_file);
	if (d->ca_path != NULL)
		SETOPT(CURLOPT_CAPATH, d->ca_path);
	if (o->follow_redirects) {
		SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
		SETOPT(CURLOPT_MAXREDIRS, (long)HTTP_REDIRECTS_MAX);
	}
	/* A Content-Length over the limit fails before the body is read.
	 * Not for HEAD: its Content-Length describes a body never sent. */
	if (o->method != HTTP_HEAD)
		SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->body_max);
	return set_method(r, o);
}

#undef SETOPT

/* The stable error text for a failed transfer. */
static const char *
classify(struct http_req *r, CURLcode rc)
{
	long oserr = 0, status = 0;

	if (r->body_over)
		return "response too large";
	if (r->hdr_over)
		return "response headers too large";
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
		return oserr == ECONNREFUSED ? "connection refused" :
		    "connect failed";
	case CURLE_COULDNT_RESOLVE_HOST:
		return "name resolution failed";
	case CURLE_PEER_FAILED_VERIFICATION:
		return "certificate verify failed";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return "tls handshake failed";
	case CURLE_UNSUPPORTED_PROTOCOL:
		/* The URL's scheme was checked: with no response yet, this
		 * is an HTTP/0.9 answer (no status line); after one, a
		 * redirect to another scheme. */
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		return status == 0 ? "bad response" : "unsupported scheme";
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return "bad response";
	case CURLE_URL_MALFORMAT:
		return "bad url";
	case CURLE_TOO_MANY_REDIRECTS:
		return "too many redirects";
	case CURLE_FILESIZE_EXCEEDED:
		return "response too large";
	default:
		return "transfer failed";
	}
}

void
http_easy_result(struct http_req *r, CURLcode rc, struct http_response *resp,
    struct http_header *hdrs)
{
	const char *p;
	char *url = NULL;
	double t = 0;

	memset(resp, 0, sizeof(*resp));
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp->status);
	curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &t);
	curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &resp->connects);
	curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
	resp->total_time = t;
	resp->url = url;
	resp->body = "";
	if (rc != CURLE_OK || r->body_over || r->hdr_over) {
		resp->error = classify(r, rc);
		resp->detail = r->errbuf[0] != '\0' ? r->errbuf :
		    curl_easy_strerror(rc);
		return;
	}
	resp->ok = true;
	if (r->body_len > 0) {
		r->body[r->body_len] = '\0';	/* room kept by write_cb */
		resp->body = r->body;
		resp->body_len = r->body_len;
	}
	p = r->hdr;
	for (size_t i = 0; i < r->hdr_count; i++) {
		hdrs[i].name = p;
		p += strlen(p) + 1;
		hdrs[i].value = p;
		p += strlen(p) + 1;
	}
	resp->headers = hdrs;
	resp->nheaders = r->hdr_count;
}

void
http_easy_free(struct http_req *r)
{
	if (r == NULL)
		return;
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r->hdr);
	free(r);
}
