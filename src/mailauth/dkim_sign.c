/*
 * dkim_sign.c — DKIM signatures made on the CPU pool (see dkim.h): a sign
 * request's life on the loop, and reading its message once for all its
 * signatures.
 *
 * The worker reads the message (an in-memory prefix, then the spool file
 * with pread() on its own descriptor): first the header block, kept in
 * memory (at most DKIM_HEADER_MAX octets), then the body in DKIM_READ_SIZE
 * pieces.  RSA signatures are made by libopendkim (dkim_sign(), fed with
 * dkim_chunk(), the field from dkim_getsighdr_d()); Ed25519 signatures by
 * dkim_sign_ed.c, because libopendkim 2.11's own Ed25519 signing leaks the
 * loaded key on every signature (its dkim_free() releases key material of
 * RSA keys only) and, with "simple" header canonicalization, writes the
 * field folded differently from how it hashed it.
 *
 * Its life on the loop is spf.c's: a timeout answers at once and lets the
 * worker finish alone (it stops between reads); cancel drops the callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mailauth/dkim_int.h"
#include "util/xmalloc.h"

const char *const dkim_sign_default_headers[] = {
	/* RFC 6376 §5.4.1, and what identifies the content */
	"From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc",
	"In-Reply-To", "References", "Message-ID", "Sender",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post",
	"List-Subscribe", "List-Post", "List-Owner", "List-Archive",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	NULL,
};

/* ---- a sign request ------------------------------------------------------- */

enum sign_state {
	SIGN_RUNNING,
	SIGN_DELIVERING,
	SIGN_ABANDONED,
};

struct dkim_sign_req {
	struct work	 work;		/* first: workq_submit() */
	struct ev_loop	*loop;
	ev_timer	 timer;
	enum sign_state	 state;
	atomic_bool	 stopping;
	dkim_sign_cb	 cb;
	void		*arg;
	int		 fd;
	uint64_t	 offset;
	unsigned char	*prefix;
	size_t		 prefixlen;
	size_t		 n;
	struct dkim_sign_one one[DKIM_SIGN_MAX];
	struct dkim_sign_result res;
	/* worker */
	unsigned char	*hdr;		/* the header block and empty line */
	size_t		 hdrlen;	/* its fields, without the empty line */
	unsigned char	*buf;		/* DKIM_READ_SIZE */
};

static void
req_free(struct dkim_sign_req *r)
{
	for (size_t i = 0; i < r->n; i++)
		dkim_key_unref(r->one[i].key);
	for (size_t i = 0; i < r->res.n; i++)
		free(r->res.field[i]);
	if (r->fd >= 0)
		close(r->fd);
	free(r->prefix);
	dkim_live--;
	free(r);
}

static void
sign_fail(struct dkim_sign_req *r, const char *what, DKIM *d)
{
	const char *why = d != NULL ? dkim_geterror(d) : NULL;

	if (!r->res.ok && r->res.error[0] != '\0')
		return;
	r->res.ok = false;
	snprintf(r->res.error, sizeof(r->res.error), "%s%s%s", what,
	    why != NULL && why[0] != '\0' ? ": " : "", why != NULL ? why : "");
	dkimv_printable(r->res.error, sizeof(r->res.error), r->res.error);
}

static bool
is_ed(const struct dkim_sign_one *o)
{
	return o->key->type == DKIM_KEY_ED25519;
}

/*
 * Read the message from position *pos (0 is the prefix's start) into buf:
 * the prefix first, then the file.  Returns the octets read, 0 at the end,
 * -1 on a read error.
 */
static ssize_t
read_at(struct dkim_sign_req *r, uint64_t *pos, unsigned char *buf,
    size_t len)
{
	ssize_t n;

	if (*pos < r->prefixlen) {
		size_t take = r->prefixlen - *pos < len ?
		    (size_t)(r->prefixlen - *pos) : len;

		memcpy(buf, r->prefix + *pos, take);
		*pos += take;
		return (ssize_t)take;
	}
	if (r->fd < 0)
		return 0;
	do
		n = pread(r->fd, buf, len, (off_t)(r->offset + *pos -
		    r->prefixlen));
	while (n < 0 && errno == EINTR);
	if (n > 0)
		*pos += (uint64_t)n;
	return n;
}

/* The header block into r->hdr; *pos is then the body's start. */
static bool
read_header(struct dkim_sign_req *r, uint64_t *pos)
{
	struct dkim_hdrscan scan;
	size_t cap = 0, len = 0;

	dkimv_hdrscan_init(&scan);
	while (!scan.done) {
		size_t want = DKIM_READ_SIZE, used;
		ssize_t n;

		if (len + want > DKIM_HEADER_MAX + 2)
			want = DKIM_HEADER_MAX + 2 - len;
		if (want == 0) {
			sign_fail(r, "header block too large to sign", NULL);
			return false;
		}
		if (len + want > cap) {
			cap = len + want;
			r->hdr = xrealloc(r->hdr, cap);
		}
		if ((n = read_at(r, pos, r->hdr + len, want)) < 0) {
			sign_fail(r, "spool file read error", NULL);
			return false;
		}
		if (n == 0)
			break;		/* no body: all of it is header */
		used = dkimv_hdrscan_feed(&scan, r->hdr + len, (size_t)n);
		/* What follows the empty line is read again as body. */
		*pos -= (uint64_t)((size_t)n - used);
		len += used;
	}
	r->hdr = xrealloc(r->hdr, len + 2);
	r->hdrlen = scan.done ? (size_t)scan.header_len : len;
	/* Every handle gets the header block with its empty line. */
	memcpy(r->hdr + r->hdrlen, "\r\n", 2);
	return true;
}

/* Start one signature with the header block. */
static bool
begin_one(struct dkim_sign_req *r, struct dkim_sign_one *o)
{
	char err[DKIM_REASON_MAX];
	DKIM_STAT st;

	if (is_ed(o)) {
		if (dkims_ed_begin(o, r->hdr, r->hdrlen, err, sizeof(err)) !=
		    0) {
			sign_fail(r, err, NULL);
			return false;
		}
		return true;
	}
	o->dkim = dkim_sign(dkim_slib, (const unsigned char *)"luasmtpd", NULL,
	    (unsigned char *)o->key->pem, (const unsigned char *)o->selector,
	    (const unsigned char *)o->domain,
	    o->hc == DKIM_C_SIMPLE ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED,
	    o->bc == DKIM_C_SIMPLE ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED,
	    DKIM_SIGN_RSASHA256, -1, &st);
	if (o->dkim == NULL) {
		sign_fail(r, "libopendkim refused the key", NULL);
		return false;
	}
	if (dkim_signhdrs(o->dkim, o->names) != DKIM_STAT_OK ||
	    (o->identity[0] != '\0' && dkim_set_signer(o->dkim,
	    (const unsigned char *)o->identity) != DKIM_STAT_OK) ||
	    dkim_chunk(o->dkim, r->hdr, r->hdrlen + 2) != DKIM_STAT_OK) {
		sign_fail(r, "libopendkim", o->dkim);
		return false;
	}
	return true;
}

static bool
body_all(struct dkim_sign_req *r, unsigned char *p, size_t len)
{
	char err[DKIM_REASON_MAX];

	for (size_t i = 0; i < r->n; i++) {
		struct dkim_sign_one *o = &r->one[i];

		if (is_ed(o)) {
			if (dkims_ed_body(o, p, len, err, sizeof(err)) != 0) {
				sign_fail(r, err, NULL);
				return false;
			}
		} else if (dkim_chunk(o->dkim, p, len) != DKIM_STAT_OK) {
			sign_fail(r, "libopendkim", o->dkim);
			return false;
		}
	}
	return true;
}

/* The field of one RSA handle at the end of the message, or NULL. */
static char *
rsa_field(struct dkim_sign_req *r, struct dkim_sign_one *o, size_t *len)
{
	unsigned char *h = NULL;
	size_t hl = 0, n;
	char *f;

	if (dkim_chunk(o->dkim, NULL, 0) != DKIM_STAT_OK ||
	    dkim_eom(o->dkim, NULL) != DKIM_STAT_OK ||
	    dkim_getsighdr_d(o->dkim, sizeof(DKIM_FIELD_PREFIX) - 1, &h,
	    &hl) != DKIM_STAT_OK || h == NULL) {
		sign_fail(r, "libopendkim", o->dkim);
		return NULL;
	}
	n = sizeof(DKIM_FIELD_PREFIX) - 1 + hl + 2;
	f = xmalloc(n + 1);
	snprintf(f, n + 1, "%s%.*s\r\n", DKIM_FIELD_PREFIX, (int)hl, h);
	*len = n;
	return f;
}

static bool
finish_all(struct dkim_sign_req *r)
{
	char err[DKIM_REASON_MAX];

	for (size_t i = 0; i < r->n; i++) {
		struct dkim_sign_one *o = &r->one[i];
		size_t len = 0;
		char *f;

		if (is_ed(o)) {
			f = dkims_ed_finish(o, r->hdr, r->hdrlen, &len, err,
			    sizeof(err));
			if (f == NULL)
				sign_fail(r, err, NULL);
		} else {
			f = rsa_field(r, o, &len);
		}
		if (f == NULL)
			return false;
		r->res.field[i] = f;
		r->res.len[i] = len;
		r->res.n = i + 1;
	}
	return true;
}

static void
sign_run(struct work *w)
{
	struct dkim_sign_req *r = (struct dkim_sign_req *)w;
	uint64_t pos = 0;
	bool ok = true;
	ssize_t n;

	r->res.ok = true;
	ok = read_header(r, &pos);
	for (size_t i = 0; i < r->n && ok; i++)
		ok = begin_one(r, &r->one[i]);
	r->buf = ok ? xmalloc(DKIM_READ_SIZE) : NULL;
	while (ok) {
		if (atomic_load(&r->stopping)) {
			sign_fail(r, "cancelled", NULL);
			ok = false;
		} else if ((n = read_at(r, &pos, r->buf, DKIM_READ_SIZE)) < 0) {
			sign_fail(r, "spool file read error", NULL);
			ok = false;
		} else if (n == 0) {
			break;
		} else {
			ok = body_all(r, r->buf, (size_t)n);
		}
	}
	if (ok)
		ok = finish_all(r);
	if (!ok) {
		for (size_t i = 0; i < r->res.n; i++)
			free(r->res.field[i]);
		r->res.n = 0;
	}
	r->res.ok = ok;
	for (size_t i = 0; i < r->n; i++)
		if (r->one[i].dkim != NULL)
			(void)dkim_free(r->one[i].dkim);
	free(r->buf);
	free(r->hdr);
	r->buf = r->hdr = NULL;
}

static void
sign_done(struct work *w)
{
	struct dkim_sign_req *r = (struct dkim_sign_req *)w;

	if (r->state == SIGN_RUNNING) {
		ev_timer_stop(r->loop, &r->timer);
		r->state = SIGN_DELIVERING;
		r->cb(r->arg, &r->res);
	}
	req_free(r);
}

static void
sign_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct dkim_sign_req *r = t->data;
	struct dkim_sign_result res;

	(void)loop;
	(void)revents;
	atomic_store(&r->stopping, true);
	memset(&res, 0, sizeof(res));
	snprintf(res.error, sizeof(res.error), "timeout");
	r->state = SIGN_DELIVERING;
	r->cb(r->arg, &res);
	r->state = SIGN_ABANDONED;
}

/* sub is d or a subdomain of d. */
static bool
domain_within(const char *sub, const char *d)
{
	size_t sl = strlen(sub), dl = strlen(d);

	if (strcasecmp(sub, d) == 0)
		return true;
	return sl > dl + 1 && sub[sl - dl - 1] == '.' &&
	    strcasecmp(sub + sl - dl, d) == 0;
}

static bool
printable_id(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f || *s == ';' || *s == '=')
			return false;
	return true;
}

/* Copy and check one signature's options. */
static int
take_opts(struct dkim_sign_one *o, const struct dkim_sign_opts *opt, char *err,
    size_t errlen)
{
	const char *const *h = opt->headers ? opt->headers :
	    dkim_sign_default_headers;
	char name[DKIM_SELECTOR_MAX + DKIM_DOMAIN_MAX + 16];
	size_t used = 0, n = 0;
	const char *at;

	if (opt->domain == NULL || opt->selector == NULL || opt->key == NULL ||
	    snprintf(name, sizeof(name), "%s._domainkey.%s", opt->selector,
	    opt->domain) >= (int)sizeof(name) || !dkimv_dns_name_ok(name)) {
		snprintf(err, errlen, "domain, selector and key are needed, "
		    "and must make a valid DNS name");
		return -1;
	}
	snprintf(o->domain, sizeof(o->domain), "%s", opt->domain);
	snprintf(o->selector, sizeof(o->selector), "%s", opt->selector);
	if (opt->identity != NULL) {
		/* RFC 6376 §3.5: i= is in d= or one of its subdomains; it
		 * is dkim-quoted-printable, so no '=' or ';' of its own. */
		at = strrchr(opt->identity, '@');
		if (strlen(opt->identity) > DKIM_IDENTITY_MAX || at == NULL ||
		    !printable_id(opt->identity) ||
		    !domain_within(at + 1, opt->domain)) {
			snprintf(err, errlen, "identity must be local@d= or "
			    "@subdomain of d=");
			return -1;
		}
		snprintf(o->identity, sizeof(o->identity), "%s", opt->identity);
	}
	for (; *h != NULL; h++) {
		size_t len = strlen(*h);

		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)(*h)[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_'))
				len = 0;
		}
		/* Signing other signatures is not supported. */
		if (strcasecmp(*h, "DKIM-Signature") == 0)
			len = 0;
		if (len == 0 || len > DKIM_HEADER_NAME_MAX ||
		    n == DKIM_SIGN_HEADERS_MAX ||
		    used + len + 1 > DKIM_SIGN_NAMES_MAX) {
			snprintf(err, errlen, "header names: at most %d of "
			    "letters, digits, '-' and '_' (not DKIM-Signature), "
			    "%d octets in all",
			    DKIM_SIGN_HEADERS_MAX, DKIM_SIGN_NAMES_MAX);
			return -1;
		}
		memcpy(o->namebuf + used, *h, len + 1);
		o->names[n++] = o->namebuf + used;
		used += len + 1;
	}
	o->names[n] = NULL;
	o->hc = opt->header_canon;
	o->bc = opt->body_canon;
	o->key = dkim_key_ref(opt->key);
	return 0;
}

struct dkim_sign_req *
dkim_sign_start(const struct dkim_sign_opts *opts, size_t n, int fd,
    uint64_t offset, const void *prefix, size_t prefixlen, double timeout,
    dkim_sign_cb cb, void *arg, char *err, size_t errlen)
{
	struct dkim_sign_req *r;
	double t = timeout > 0 ? timeout : DKIM_TIMEOUT_DEFAULT;

	if (cb == NULL || n == 0 || n > DKIM_SIGN_MAX || (fd < 0 &&
	    prefixlen == 0) || prefixlen > DKIM_SIGN_PREFIX_MAX) {
		snprintf(err, errlen, "1 to %d signatures of a message (a "
		    "prefix of at most %d octets and/or a file)", DKIM_SIGN_MAX,
		    DKIM_SIGN_PREFIX_MAX);
		return NULL;
	}
	if (dkim_lib_init(err, errlen) != 0)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	dkim_live++;
	r->fd = -1;
	for (size_t i = 0; i < n; i++) {
		if (take_opts(&r->one[i], &opts[i], err, errlen) != 0) {
			req_free(r);
			return NULL;
		}
		r->n = i + 1;
	}
	if (fd >= 0 && (r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		req_free(r);
		return NULL;
	}
	if (prefixlen > 0) {
		r->prefix = xmalloc(prefixlen);
		memcpy(r->prefix, prefix, prefixlen);
		r->prefixlen = prefixlen;
	}
	r->offset = offset;
	/* The loop workq_cpu completes on: the program's default loop. */
	r->loop = ev_default_loop(0);
	r->cb = cb;
	r->arg = arg;
	r->state = SIGN_RUNNING;
	atomic_init(&r->stopping, false);
	if (t > DKIM_TIMEOUT_MAX)
		t = DKIM_TIMEOUT_MAX;
	ev_timer_init(&r->timer, sign_timeout, t, 0);
	r->timer.data = r;
	ev_timer_start(r->loop, &r->timer);
	r->work.run = sign_run;
	r->work.done = sign_done;
	workq_submit(workq_cpu, &r->work);
	return r;
}

void
dkim_sign_cancel(struct dkim_sign_req *r)
{
	if (r == NULL || r->state != SIGN_RUNNING)
		return;
	ev_timer_stop(r->loop, &r->timer);
	atomic_store(&r->stopping, true);
	r->state = SIGN_ABANDONED;
}
