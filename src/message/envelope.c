/*
 * envelope.c — the queue envelope (see envelope.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message/envelope.h"
#include "util/xmalloc.h"

static bool
xtext_plain(unsigned char c)
{
	return c >= '!' && c <= '~' && c != '+' && c != '=';
}

int
xtext_append(struct buf *b, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";

	if (src == NULL || src[0] == '\0')
		return buf_append(b, "+", 1);	/* the empty field */
	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		char enc[3] = { '+', hex[*p >> 4], hex[*p & 15] };

		if (xtext_plain(*p) ? buf_append(b, p, 1) : buf_append(b, enc, 3))
			return -1;
	}
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
xtext_decode(const char *src, size_t len)
{
	char *out, *o;

	if (len == 1 && src[0] == '+')
		return xstrdup("");
	o = out = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '+') {
			int hi, lo;

			/* "+00" would be a NUL inside a C string: refused. */
			if (i + 2 >= len || (hi = hexval(src[i + 1])) < 0 ||
			    (lo = hexval(src[i + 2])) < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (xtext_plain(c)) {
			*o++ = (char)c;
		} else {
			free(out);
			return NULL;
		}
	}
	*o = '\0';
	return out;
}

void
envelope_add_rcpt(struct envelope *e, const char *address, const char *original,
    const char *orcpt, const char *notify)
{
	struct env_rcpt *r;

	if (e->nrcpts == e->caprcpts) {
		e->caprcpts = e->caprcpts ? e->caprcpts * 2 : 4;
		e->rcpts = xrealloc(e->rcpts, e->caprcpts * sizeof(*e->rcpts));
	}
	r = &e->rcpts[e->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	r->original = xstrdup(original != NULL ? original : address);
	r->orcpt = orcpt != NULL ? xstrdup(orcpt) : NULL;
	r->notify = notify != NULL ? xstrdup(notify) : NULL;
}

static int
field(struct buf *b, const char *name, const char *value)
{
	return buf_append(b, name, strlen(name)) != 0 ||
	    buf_append(b, " ", 1) != 0 || xtext_append(b, value) != 0 ||
	    buf_append(b, "\n", 1) != 0 ? -1 : 0;
}

int
envelope_write(const struct envelope *e, struct buf *b)
{
	if (buf_appendf(b, "luasmtpd-envelope %d\n", ENVELOPE_VERSION) != 0 ||
	    field(b, "id", e->id) != 0 ||
	    buf_appendf(b, "created %" PRId64 "\n", e->created) != 0 ||
	    field(b, "from", e->sender) != 0 ||
	    (e->mail_params != NULL && field(b, "mail", e->mail_params) != 0) ||
	    (e->envid != NULL && field(b, "envid", e->envid) != 0) ||
	    (e->ret != NULL && field(b, "ret", e->ret) != 0) ||
	    buf_appendf(b, "smtputf8 %d\n", e->smtputf8 ? 1 : 0) != 0 ||
	    (e->headers != NULL && e->headers[0] != '\0' &&
	    field(b, "headers", e->headers) != 0))
		return -1;
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct env_rcpt *r = &e->rcpts[i];

		if (buf_append(b, "rcpt ", 5) != 0 ||
		    xtext_append(b, r->address) != 0 ||
		    buf_append(b, " ", 1) != 0 ||
		    xtext_append(b, r->original) != 0 ||
		    buf_append(b, " ", 1) != 0 ||
		    xtext_append(b, r->orcpt) != 0 ||
		    buf_append(b, " ", 1) != 0 ||
		    xtext_append(b, r->notify) != 0 ||
		    buf_appendf(b, " %d %u %" PRId64 "\n", r->status,
		    r->attempts, r->next) != 0)
			return -1;
	}
	return buf_append(b, "end\n", 4);
}

/* Split line into at most n space-separated fields. */
static size_t
split(char *line, char **f, size_t n)
{
	size_t k = 0;

	while (*line != '\0' && k < n) {
		f[k++] = line;
		while (*line != '\0' && *line != ' ')
			line++;
		if (*line == ' ')
			*line++ = '\0';
	}
	return *line == '\0' ? k : n + 1;	/* n + 1: too many */
}

static char *
dec(const char *s)
{
	return xtext_decode(s, strlen(s));
}

static int
parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int
envelope_parse(const char *data, size_t len, struct envelope *e, char *err,
    size_t errlen)
{
	char *copy, *line, *next;
	bool header = false, ended = false, from = false;
	int lineno = 0;

	if (len > ENVELOPE_MAX || memchr(data, '\0', len) != NULL) {
		snprintf(err, errlen, "not an envelope (size or NUL)");
		return -1;
	}
	copy = xstrndup(data, len);
	for (line = copy; line != NULL && *line != '\0'; line = next) {
		char *f[9];
		size_t n;

		lineno++;
		if ((next = strchr(line, '\n')) == NULL) {
			snprintf(err, errlen, "line %d: no line end (cut off?)",
			    lineno);
			goto bad;
		}
		*next++ = '\0';
		if (ended) {
			snprintf(err, errlen, "line %d: data after end", lineno);
			goto bad;
		}
		n = split(line, f, 8);
		if (n == 0 || n > 8) {
			snprintf(err, errlen, "line %d: bad record", lineno);
			goto bad;
		}
		if (!header) {
			if (n != 2 || strcmp(f[0], "luasmtpd-envelope") != 0 ||
			    strcmp(f[1], "1") != 0) {
				snprintf(err, errlen, "not a version %d envelope",
				    ENVELOPE_VERSION);
				goto bad;
			}
			header = true;
		} else if (strcmp(f[0], "end") == 0 && n == 1) {
			ended = true;
		} else if (strcmp(f[0], "rcpt") == 0 && n == 8) {
			struct env_rcpt *r;
			int64_t st, at;
			char *a = dec(f[1]), *o = dec(f[2]), *oc = dec(f[3]),
			    *nt = dec(f[4]);

			if (a == NULL || o == NULL || oc == NULL || nt == NULL ||
			    parse_int64(f[5], &st) != 0 || st < 0 || st > 599 ||
			    parse_int64(f[6], &at) != 0 || at < 0 ||
			    at > 1000000 || e->nrcpts >= ENVELOPE_RCPTS_MAX) {
				free(a);
				free(o);
				free(oc);
				free(nt);
				snprintf(err, errlen, "line %d: bad rcpt", lineno);
				goto bad;
			}
			envelope_add_rcpt(e, a, o, oc[0] ? oc : NULL,
			    nt[0] ? nt : NULL);
			free(a);
			free(o);
			free(oc);
			free(nt);
			r = &e->rcpts[e->nrcpts - 1];
			r->status = (int)st;
			r->attempts = (unsigned)at;
			if (parse_int64(f[7], &r->next) != 0) {
				snprintf(err, errlen, "line %d: bad rcpt", lineno);
				goto bad;
			}
		} else if (n == 2) {
			char **slot = NULL;

			if (strcmp(f[0], "id") == 0)
				slot = &e->id;
			else if (strcmp(f[0], "from") == 0) {
				slot = &e->sender;
				from = true;
			} else if (strcmp(f[0], "mail") == 0)
				slot = &e->mail_params;
			else if (strcmp(f[0], "envid") == 0)
				slot = &e->envid;
			else if (strcmp(f[0], "ret") == 0)
				slot = &e->ret;
			else if (strcmp(f[0], "headers") == 0)
				slot = &e->headers;
			if (slot != NULL) {
				free(*slot);
				if ((*slot = dec(f[1])) == NULL) {
					snprintf(err, errlen, "line %d: bad %s",
					    lineno, f[0]);
					goto bad;
				}
			} else if (strcmp(f[0], "created") == 0) {
				if (parse_int64(f[1], &e->created) != 0) {
					snprintf(err, errlen, "line %d: bad "
					    "created", lineno);
					goto bad;
				}
			} else if (strcmp(f[0], "smtputf8") == 0) {
				e->smtputf8 = strcmp(f[1], "1") == 0;
			} else {
				/* Unknown single fields of a later minor
				 * change are skipped, not fatal. */
			}
		} else {
			snprintf(err, errlen, "line %d: unknown record", lineno);
			goto bad;
		}
	}
	if (!ended || e->id == NULL || !from) {
		snprintf(err, errlen, "incomplete envelope (no end, id or from)");
		goto bad;
	}
	free(copy);
	return 0;
bad:
	free(copy);
	envelope_free(e);
	return -1;
}

void
envelope_free(struct envelope *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].address);
		free(e->rcpts[i].original);
		free(e->rcpts[i].orcpt);
		free(e->rcpts[i].notify);
	}
	free(e->rcpts);
	free(e->id);
	free(e->sender);
	free(e->mail_params);
	free(e->envid);
	free(e->ret);
	free(e->headers);
	memset(e, 0, sizeof(*e));
}
