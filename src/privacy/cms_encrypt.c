/*
 * cms_encrypt.c — a message to an S/MIME message, streaming (RFC 5652
 * CMS EnvelopedData / RFC 5083 AuthEnvelopedData, RFC 8551 S/MIME 4.0;
 * the output format is in cms_encrypt.h).
 *
 * The chain: cms_enc_update() writes plaintext into BIO_new_CMS() (the
 * content cipher, then OpenSSL's streaming BER encoder), whose output
 * lands in a sink BIO of ours that base64-encodes it into 64-character
 * lines with the asked line end and writes them to the descriptor.
 * BIO_flush() on the chain makes OpenSSL finish the content (the GCM tag)
 * and write the rest of the structure; then the sink writes its last line.
 *
 * Owns: the CMS structure, the BIO chain, a header scan buffer while
 * clear headers are looked for (wiped), and the output buffer.
 *
 * SECURITY: nothing of the plaintext reaches out_fd but the header fields
 * the caller named; those are copied line by line from a bounded scan
 * (CMS_HEADER_SCAN_MAX), with any CR or NUL that is not a line end made a
 * space so a copied field cannot end the header block early.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>

#include "privacy/cms_encrypt.h"
#include "privacy/cms_int.h"
#include "privacy/privacy_int.h"
#include "util/fsutil.h"

/* 48 bytes make a 64-character base64 line (what OpenSSL writes). */
#define B64_LINE_IN	48
#define B64_LINE_OUT	64
/* Output buffered before a write(2). */
#define SINK_BUF	(16 * 1024)
/* Plaintext handed to BIO_write at once (it takes an int). */
#define CMS_WRITE_MAX	(1024 * 1024)

struct b64sink {
	int		fd;
	int		err;		/* errno of the first failed write */
	const char	*eol;
	size_t		eollen;
	unsigned char	carry[B64_LINE_IN];
	size_t		ncarry;
	char		out[SINK_BUF];
	size_t		nout;
	uint64_t	written;
};

struct cms_enc {
	CMS_ContentInfo	*cms;
	BIO		*sink;		/* our base64 sink */
	BIO		*in;		/* plaintext in; NULL until started */
	struct b64sink	 s;
	const atomic_bool *cancel;
	bool		 auth;		/* AuthEnvelopedData (GCM) */
	char		 names[CMS_CLEAR_HEADERS_MAX][CMS_FIELD_NAME_MAX + 1];
	size_t		 nnames;
	unsigned char	*hbuf;		/* header scan, CMS_HEADER_SCAN_MAX */
	size_t		 hlen;
	bool		 scanning;
	uint64_t	 in_bytes;
	bool		 failed;
	char		 err[CMS_ERR_MAX];
};

static void enc_fail(struct cms_enc *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
enc_fail(struct cms_enc *e, const char *fmt, ...)
{
	va_list ap;

	if (e->failed)
		return;
	e->failed = true;
	va_start(ap, fmt);
	vsnprintf(e->err, sizeof(e->err), fmt, ap);
	va_end(ap);
}

/* ---- the base64 sink BIO ---- */

static int
sink_flush(struct b64sink *s)
{
	if (s->err == 0 && s->nout > 0) {
		if (write_all(s->fd, s->out, s->nout) != 0)
			s->err = errno != 0 ? errno : EIO;
		else
			s->written += s->nout;
	}
	s->nout = 0;
	return s->err == 0 ? 0 : -1;
}

/* Append raw bytes (header lines) to the output. */
static int
sink_raw(struct b64sink *s, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0 && s->err == 0) {
		size_t n = sizeof(s->out) - s->nout;

		if (n > len)
			n = len;
		memcpy(s->out + s->nout, c, n);
		s->nout += n;
		c += n;
		len -= n;
		if (s->nout == sizeof(s->out))
			(void)sink_flush(s);
	}
	return s->err == 0 ? 0 : -1;
}

/* Encode s->carry (n <= 48 bytes) as one line. */
static int
sink_line(struct b64sink *s)
{
	/* EVP_EncodeBlock writes a NUL after the 64 characters. */
	if (sizeof(s->out) - s->nout < B64_LINE_OUT + 1 + 2 &&
	    sink_flush(s) != 0)
		return -1;
	s->nout += (size_t)EVP_EncodeBlock((unsigned char *)s->out + s->nout,
	    s->carry, (int)s->ncarry);
	memcpy(s->out + s->nout, s->eol, s->eollen);
	s->nout += s->eollen;
	s->ncarry = 0;
	return 0;
}

static int
sink_bwrite(BIO *b, const char *in, int inl)
{
	struct b64sink *s = BIO_get_data(b);
	int done = 0;

	if (s == NULL || s->err != 0)
		return -1;
	while (done < inl) {
		size_t n = B64_LINE_IN - s->ncarry;

		if (n > (size_t)(inl - done))
			n = (size_t)(inl - done);
		memcpy(s->carry + s->ncarry, in + done, n);
		s->ncarry += n;
		done += (int)n;
		if (s->ncarry == B64_LINE_IN && sink_line(s) != 0)
			return -1;
	}
	return inl;
}

static long
sink_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	/* Lines are written when full; the last one by sink_finish. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
sink_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD	*sink_method;
static pthread_once_t	 sink_once = PTHREAD_ONCE_INIT;

static void
sink_method_init(void)
{
	BIO_METHOD *m;

	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "luasmtpd smime base64");
	if (m == NULL || !BIO_meth_set_write(m, sink_bwrite) ||
	    !BIO_meth_set_ctrl(m, sink_ctrl) ||
	    !BIO_meth_set_create(m, sink_create)) {
		BIO_meth_free(m);
		return;
	}
	sink_method = m;	/* lives as long as the process */
}

/* The last (partial) base64 line, then everything to the descriptor. */
static int
sink_finish(struct b64sink *s)
{
	if (s->ncarry > 0 && sink_line(s) != 0)
		return -1;
	return sink_flush(s);
}

/* ---- clear header fields ---- */

/*
 * Offset just past the blank line ending the header section p[0..n), or
 * 0 if none yet.  A line end at an offset below i0 was already looked at
 * (with the two bytes after it) by an earlier call.
 */
static size_t
header_end(const unsigned char *p, size_t n, size_t i0)
{
	if (i0 == 0 && n >= 1 && p[0] == '\n')
		return 1;
	if (i0 == 0 && n >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	for (size_t i = i0; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static bool
wanted(const struct cms_enc *e, const unsigned char *name, size_t len)
{
	while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
		len--;		/* obsolete "Name :" syntax, RFC 5322 §4.5 */
	for (size_t i = 0; i < e->nnames; i++)
		if (strlen(e->names[i]) == len &&
		    strncasecmp(e->names[i], (const char *)name, len) == 0)
			return true;
	return false;
}

/* Whether a line is blank once emit_line made CR and NUL spaces. */
static bool
blank(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\0')
			return false;
	return true;
}

/* Write one header line p[0..n) (no line end) with the output's eol. */
static void
emit_line(struct cms_enc *e, const unsigned char *p, size_t n)
{
	char buf[256];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		buf[o++] = (char)(c == '\r' || c == '\0' ? ' ' : c);
		if (o == sizeof(buf)) {
			(void)sink_raw(&e->s, buf, o);
			o = 0;
		}
	}
	(void)sink_raw(&e->s, buf, o);
	(void)sink_raw(&e->s, e->s.eol, e->s.eollen);
}

/*
 * Copy the wanted fields of the header section p[0..n): complete lines
 * only; a field is its first line and the lines after it that start
 * with a space or a tab (folding, RFC 5322 §2.2.3).
 */
static void
emit_clear_headers(struct cms_enc *e, const unsigned char *p, size_t n)
{
	size_t i = 0;
	bool copying = false;

	while (i < n) {
		const unsigned char *nl = memchr(p + i, '\n', n - i);
		size_t end, len;

		if (nl == NULL)
			break;			/* an incomplete line */
		end = (size_t)(nl - p);
		len = end - i;
		if (len > 0 && p[end - 1] == '\r')
			len--;
		if (len == 0)
			break;			/* the blank line */
		if (p[i] == ' ' || p[i] == '\t') {
			/* A blank-looking line could end the header block
			 * for a lax parser: folding whitespace only, drop. */
			if (copying && !blank(p + i, len))
				emit_line(e, p + i, len);
		} else {
			const unsigned char *colon = memchr(p + i, ':', len);

			copying = colon != NULL &&
			    wanted(e, p + i, (size_t)(colon - (p + i)));
			if (copying)
				emit_line(e, p + i, len);
		}
		i = end + 1;
	}
}

/* ---- the encryption ---- */

static int
write_wrapper(struct cms_enc *e)
{
	static const char *const lines[] = {
		"MIME-Version: 1.0",
		NULL,	/* Content-Type, below */
		" name=smime.p7m",
		"Content-Disposition: attachment; filename=smime.p7m",
		"Content-Transfer-Encoding: base64",
		"",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		const char *l = lines[i] != NULL ? lines[i] : e->auth ?
		    "Content-Type: application/pkcs7-mime; "
		    "smime-type=authEnveloped-data;" :
		    "Content-Type: application/pkcs7-mime; "
		    "smime-type=enveloped-data;";

		(void)sink_raw(&e->s, l, strlen(l));
		(void)sink_raw(&e->s, e->s.eol, e->s.eollen);
	}
	return e->s.err == 0 ? 0 : -1;
}

/* Write the wrapper and open the CMS stream.  0 or -1 (e->err). */
static int
start_stream(struct cms_enc *e)
{
	char reason[160];

	if (write_wrapper(e) != 0) {
		enc_fail(e, "write: %s", strerror(e->s.err));
		return -1;
	}
	/* This writes the start of the BER structure through the sink. */
	if ((e->in = BIO_new_CMS(e->sink, e->cms)) == NULL) {
		if (e->s.err != 0)
			enc_fail(e, "write: %s", strerror(e->s.err));
		else
			enc_fail(e, "cannot start the CMS stream: %s",
			    privacy_ossl_reason(reason, sizeof(reason)));
		return -1;
	}
	return 0;
}

/*
 * Plaintext into the CMS stream, started by the first byte.  0 or -1
 * (e->err).
 */
static int
stream_write(struct cms_enc *e, const void *p, size_t len)
{
	const char *c = p;
	char reason[160];

	if (len > 0 && e->in == NULL && start_stream(e) != 0)
		return -1;
	while (len > 0) {
		int n = len > CMS_WRITE_MAX ? CMS_WRITE_MAX : (int)len;

		if (BIO_write(e->in, c, n) != n) {
			if (e->s.err != 0)
				enc_fail(e, "write: %s", strerror(e->s.err));
			else
				enc_fail(e, "encryption failed: %s",
				    privacy_ossl_reason(reason,
				    sizeof(reason)));
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Stop scanning: copy fields from hbuf[0..hend), start, feed hbuf. */
static int
end_scan(struct cms_enc *e, size_t hend)
{
	e->scanning = false;
	emit_clear_headers(e, e->hbuf, hend);
	return stream_write(e, e->hbuf, e->hlen);
}

/*
 * An empty message in one go: OpenSSL 3.0 cannot finish a streamed
 * AuthEnvelopedData that got no content (`openssl cms -encrypt -stream
 * -aes-256-gcm` of an empty file fails too), but encrypts an empty
 * content all at once.
 */
static void
finish_empty(struct cms_enc *e)
{
	BIO *empty = BIO_new_mem_buf("", 0);
	char reason[160];

	if (empty == NULL) {
		enc_fail(e, "out of memory");
		return;
	}
	if (write_wrapper(e) != 0)
		enc_fail(e, "write: %s", strerror(e->s.err));
	else if (CMS_final(e->cms, empty, NULL, CMS_BINARY) != 1 ||
	    i2d_CMS_bio(e->sink, e->cms) != 1) {
		if (e->s.err != 0)
			enc_fail(e, "write: %s", strerror(e->s.err));
		else
			enc_fail(e, "cannot encrypt an empty message: %s",
			    privacy_ossl_reason(reason, sizeof(reason)));
	}
	BIO_free(empty);
}

static int
check_names(struct cms_enc *e, const char *const *names, char *err,
    size_t errlen)
{
	for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
		const char *n = names[i];
		size_t len = strlen(n);

		if (i == CMS_CLEAR_HEADERS_MAX) {
			privacy_seterr(err, errlen, "more than %d clear headers",
			    CMS_CLEAR_HEADERS_MAX);
			return -1;
		}
		if (len == 0 || len > CMS_FIELD_NAME_MAX ||
		    strspn(n, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~") !=
		    len) {
			privacy_seterr(err, errlen, "clear header %zu is not a "
			    "field name", i + 1);
			return -1;
		}
		if (strcasecmp(n, "MIME-Version") == 0 ||
		    strncasecmp(n, "Content-", 8) == 0) {
			privacy_seterr(err, errlen, "%s cannot be copied into "
			    "the clear: the S/MIME wrapper has its own", n);
			return -1;
		}
		memcpy(e->names[i], n, len + 1);
		e->nnames = i + 1;
	}
	return 0;
}

struct cms_enc *
cms_enc_begin(const struct cms_recips *r, const struct cms_encrypt_opts *o,
    int out_fd, char *err, size_t errlen)
{
	static const struct cms_encrypt_opts defaults;
	const EVP_CIPHER *cipher;
	struct cms_enc *e;
	char reason[160];

	if (o == NULL)
		o = &defaults;
	ERR_clear_error();
	if (cms_recips_count(r) == 0) {
		privacy_seterr(err, errlen, "no recipient certificate");
		return NULL;
	}
	if (o->cipher == CMS_CIPHER_AES256_GCM)
		cipher = EVP_aes_256_gcm();
	else if (o->cipher == CMS_CIPHER_AES256_CBC)
		cipher = EVP_aes_256_cbc();
	else {
		privacy_seterr(err, errlen, "unknown cipher %d", (int)o->cipher);
		return NULL;
	}
	pthread_once(&sink_once, sink_method_init);
	if (sink_method == NULL || (e = OPENSSL_zalloc(sizeof(*e))) == NULL) {
		privacy_seterr(err, errlen, "out of memory");
		return NULL;
	}
	e->s.fd = out_fd;
	e->s.eol = o->lf ? "\n" : "\r\n";
	e->s.eollen = o->lf ? 1 : 2;
	e->cancel = o->cancel;
	e->auth = o->cipher == CMS_CIPHER_AES256_GCM;
	if (check_names(e, o->clear_headers, err, errlen) != 0) {
		cms_enc_abort(e);
		return NULL;
	}
	e->cms = CMS_encrypt(cms_recips_certs(r), NULL, cipher,
	    CMS_BINARY | CMS_STREAM);
	if (e->cms == NULL || (e->sink = BIO_new(sink_method)) == NULL) {
		privacy_seterr(err, errlen, "cannot set up the encryption: %s",
		    privacy_ossl_reason(reason, sizeof(reason)));
		cms_enc_abort(e);
		return NULL;
	}
	BIO_set_data(e->sink, &e->s);
	if (e->nnames > 0) {
		if ((e->hbuf = OPENSSL_malloc(CMS_HEADER_SCAN_MAX)) == NULL) {
			privacy_seterr(err, errlen, "out of memory");
			cms_enc_abort(e);
			return NULL;
		}
		e->scanning = true;
	}
	return e;
}

int
cms_enc_update(struct cms_enc *e, const void *p, size_t len)
{
	const unsigned char *c = p;

	if (e->failed)
		return -1;
	if (e->cancel != NULL && atomic_load(e->cancel)) {
		enc_fail(e, "cancelled");
		return -1;
	}
	e->in_bytes += len;
	if (e->scanning) {
		size_t i0 = e->hlen >= 2 ? e->hlen - 2 : 0;
		size_t n = CMS_HEADER_SCAN_MAX - e->hlen, hend;

		if (n > len)
			n = len;
		memcpy(e->hbuf + e->hlen, c, n);
		e->hlen += n;
		c += n;
		len -= n;
		hend = header_end(e->hbuf, e->hlen, i0);
		if (hend > 0 || e->hlen == CMS_HEADER_SCAN_MAX) {
			/* Too long a header section: copy nothing. */
			if (end_scan(e, hend) != 0)
				return -1;
		}
	}
	if (len > 0 && stream_write(e, c, len) != 0)
		return -1;
	return 0;
}

int
cms_enc_finish(struct cms_enc *e, char *err, size_t errlen)
{
	char reason[160];
	int rc;

	if (!e->failed && e->scanning)
		(void)end_scan(e, e->hlen);	/* the message was headers */
	if (!e->failed && e->in == NULL)
		finish_empty(e);
	else if (!e->failed && BIO_flush(e->in) <= 0) {
		if (e->s.err != 0)
			enc_fail(e, "write: %s", strerror(e->s.err));
		else
			enc_fail(e, "cannot complete the CMS structure: %s",
			    privacy_ossl_reason(reason, sizeof(reason)));
	}
	if (!e->failed && sink_finish(&e->s) != 0)
		enc_fail(e, "write: %s", strerror(e->s.err));
	rc = e->failed ? -1 : 0;
	if (rc != 0)
		privacy_seterr(err, errlen, "%s", e->err);
	cms_enc_abort(e);
	return rc;
}

void
cms_enc_abort(struct cms_enc *e)
{
	if (e == NULL)
		return;
	/* Free the chain down to (not including) the sink, as OpenSSL's
	 * own i2d_ASN1_bio_stream does. */
	while (e->in != NULL && e->in != e->sink) {
		BIO *next = BIO_pop(e->in);

		BIO_free(e->in);
		e->in = next;
	}
	BIO_free(e->sink);
	CMS_ContentInfo_free(e->cms);
	if (e->hbuf != NULL)
		OPENSSL_clear_free(e->hbuf, CMS_HEADER_SCAN_MAX);
	ERR_clear_error();
	OPENSSL_clear_free(e, sizeof(*e));
}

uint64_t
cms_enc_in_bytes(const struct cms_enc *e)
{
	return e->in_bytes;
}

uint64_t
cms_enc_out_bytes(const struct cms_enc *e)
{
	return e->s.written + e->s.nout;
}

/* ---- whole messages ---- */

int
cms_encrypt_stream(const struct cms_recips *r,
    const struct cms_encrypt_opts *o, cms_read_fn readfn, void *arg,
    int out_fd, char *err, size_t errlen)
{
	struct cms_enc *e;
	unsigned char *buf;
	ssize_t n;

	if ((buf = OPENSSL_malloc(CMS_CHUNK)) == NULL) {
		privacy_seterr(err, errlen, "out of memory");
		return -1;
	}
	if ((e = cms_enc_begin(r, o, out_fd, err, errlen)) == NULL) {
		OPENSSL_free(buf);
		return -1;
	}
	while ((n = readfn(arg, buf, CMS_CHUNK, err, errlen)) > 0)
		if (cms_enc_update(e, buf, (size_t)n) != 0)
			break;
	OPENSSL_clear_free(buf, CMS_CHUNK);
	if (n < 0) {
		cms_enc_abort(e);	/* the reader's reason is in err */
		return -1;
	}
	return cms_enc_finish(e, err, errlen);
}

static ssize_t
read_fd(void *arg, void *p, size_t len, char *err, size_t errlen)
{
	int fd = *(int *)arg;
	ssize_t n;

	while ((n = read(fd, p, len)) < 0 && errno == EINTR)
		;
	if (n < 0)
		privacy_seterr(err, errlen, "read: %s", strerror(errno));
	return n;
}

int
cms_encrypt_fd(const struct cms_recips *r, const struct cms_encrypt_opts *o,
    int in_fd, int out_fd, char *err, size_t errlen)
{
	return cms_encrypt_stream(r, o, read_fd, &in_fd, out_fd, err, errlen);
}

int
cms_encrypt_file(const struct cms_recips *r, const struct cms_encrypt_opts *o,
    const char *in_path, const char *out_path, char *err, size_t errlen)
{
	int in, out, rc;

	if ((in = open(in_path, O_RDONLY | O_CLOEXEC)) < 0) {
		privacy_seterr(err, errlen, "%s: %s", in_path, strerror(errno));
		return -1;
	}
	out = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		privacy_seterr(err, errlen, "%s: %s", out_path,
		    strerror(errno));
		close(in);
		return -1;
	}
	rc = cms_encrypt_fd(r, o, in, out, err, errlen);
	if (rc == 0 && fsync(out) != 0) {
		privacy_seterr(err, errlen, "fsync %s: %s", out_path,
		    strerror(errno));
		rc = -1;
	}
	if (close(out) != 0 && rc == 0) {
		privacy_seterr(err, errlen, "close %s: %s", out_path,
		    strerror(errno));
		rc = -1;
	}
	close(in);
	if (rc != 0)
		(void)unlink(out_path);
	return rc;
}
