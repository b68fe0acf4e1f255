/*
 * http_internal.h — what http.c (the client and its loop glue) and
 * http_easy.c (one request's easy handle, capture and result) share.
 * Nothing outside src/http/ includes this.
 */
#ifndef LUASMTPD_HTTP_INTERNAL_H
#define LUASMTPD_HTTP_INTERNAL_H

#include <curl/curl.h>
#include <sys/queue.h>

#include "http/http.h"

enum http_req_state {
	REQ_RUNNING,		/* easy handle in the multi; on client->reqs */
	REQ_REFUSED,		/* setup failed; on client->refused */
	REQ_CANCELLED,		/* cancelled inside libcurl; on client->dead */
	REQ_DELIVERING,		/* its callback runs; on no list */
};

struct http_req {
	TAILQ_ENTRY(http_req)	 entry;
	struct http_client	*client;
	enum http_req_state	 state;
	http_cb			 cb;
	void			*arg;
	CURL			*easy;		/* NULL if refused before init */
	struct curl_slist	*headers;
	ev_timer		 backstop;	/* timeout + HTTP_BACKSTOP_SLACK */
	ev_tstamp		 started;
	const char		*refused;	/* error text when refused */
	const char		*refused_detail;

	/* The response as it arrives (bounded by body_max, hdr_max). */
	char			*body;
	size_t			 body_len, body_cap, body_max;
	bool			 body_over;
	char			*hdr;		/* "name\0value\0" pairs */
	size_t			 hdr_len, hdr_cap, hdr_max;
	size_t			 hdr_count;
	size_t			 hdr_raw;	/* bytes of this response's head */
	bool			 hdr_done;	/* its blank line was seen */
	bool			 hdr_over;
	char			 errbuf[CURL_ERROR_SIZE];
};

/* The client's defaults that every request setup reads. */
struct http_defaults {
	double		 timeout;
	double		 connect_timeout;
	char		*ca_file;
	char		*ca_path;
	char		*user_agent;
	char		*proxy;
};

/*
 * Create r->easy and set every option from o and d.  Returns 0, or -1 with
 * r->refused and r->refused_detail set (static texts).  Calls no callback.
 */
int		 http_easy_setup(struct http_req *r, const struct http_defaults *d,
		    const struct http_request_opts *o, double *timeout);
/*
 * Fill resp for a finished transfer (result rc) of r, whose easy handle
 * is out of the multi but not yet cleaned up.  hdrs has room for
 * HTTP_RESP_HEADERS_MAX entries.  Everything resp points to lives in r.
 */
void		 http_easy_result(struct http_req *r, CURLcode rc,
		    struct http_response *resp, struct http_header *hdrs);
/* Free the easy handle, header list and buffers of r, and r itself. */
void		 http_easy_free(struct http_req *r);

#endif
