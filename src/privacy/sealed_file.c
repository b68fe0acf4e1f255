/*
 * sealed_file.c — the sealed file format: AES-256-GCM records keyed per
 * file with HKDF-SHA256 (format, threat model and usage in sealed_file.h).
 *
 * Owns: the key material (wiped on free), one record buffer per writer or
 * reader (plaintext and ciphertext share it: GCM encrypts in place), and
 * the descriptor when opened by path.
 *
 * SECURITY: a reader hands out a record's plaintext only after its tag
 * verified; every length it reads is bounded by the record size, itself
 * bounded (SEALED_RECORD_MAX) before anything is allocated; every failure
 * is sticky, so a caller that ignores one -1 still cannot read past it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "privacy/privacy_int.h"
#include "privacy/sealed_file.h"
#include "util/fsutil.h"

#define SEALED_MAGIC		"\x89SEALED\n"
#define SEALED_MAGIC_LEN	8
#define SEALED_VERSION		1
#define SEALED_SUITE		1	/* AES-256-GCM, HKDF-SHA256 */
#define SEALED_KEY_LEN		32
#define SEALED_NONCE_LEN	12
#define SEALED_OKM_LEN		(SEALED_KEY_LEN + SEALED_NONCE_LEN + \
				    SEALED_CHECK_LEN)
#define SEALED_AAD_TAIL_LEN	9	/* record index (8) + final flag (1) */
#define SEALED_INFO		"luasmtpd sealed-file v1"

/* Header field offsets (sealed_file.h). */
#define OFF_VERSION	8
#define OFF_SUITE	9
#define OFF_ZERO	10
#define OFF_RECORD	12
#define OFF_SALT	16
#define OFF_CHECK	48

struct sealed_key {
	unsigned char	 ikm[SEALED_KEY_FILE_MAX];
	size_t		 len;
	EVP_CIPHER	*gcm;		/* fetched once, shared read-only */
	EVP_KDF		*hkdf;
};

/* What a writer and a reader share: one file's key state and record. */
struct sealed_stream {
	EVP_CIPHER_CTX	*ctx;		/* holds this file's key */
	unsigned char	 header[SEALED_HEADER_LEN];
	unsigned char	 nonce_base[SEALED_NONCE_LEN];
	uint64_t	 index;		/* of the next record */
	size_t		 rec;		/* plaintext bytes per record */
	unsigned char	*buf;		/* rec + SEALED_TAG_LEN bytes */
	int		 fd;
	bool		 own_fd;
	bool		 failed;
	char		 err[SEALED_ERR_MAX];
};

struct sealed_writer {
	struct sealed_stream	s;
	size_t			len;	/* plaintext bytes in buf */
	uint64_t		size;
	bool			finished;
};

struct sealed_reader {
	struct sealed_stream	s;
	size_t			pos, len;	/* unread plaintext in buf */
	bool			eof;		/* the final record was read */
	bool			size_known;
	uint64_t		plain_size;
};

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* ---- keys ---- */

struct sealed_key *
sealed_key_new(const void *p, size_t len, char *err, size_t errlen)
{
	struct sealed_key *k;
	char reason[160];

	if (len < SEALED_KEY_FILE_MIN || len > SEALED_KEY_FILE_MAX) {
		privacy_seterr(err, errlen, "a key must have %d to %d bytes, "
		    "not %zu", SEALED_KEY_FILE_MIN, SEALED_KEY_FILE_MAX, len);
		return NULL;
	}
	if ((k = OPENSSL_zalloc(sizeof(*k))) == NULL) {
		privacy_seterr(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(k->ikm, p, len);
	k->len = len;
	k->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	k->hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (k->gcm == NULL || k->hkdf == NULL) {
		privacy_seterr(err, errlen, "AES-256-GCM or HKDF unavailable: "
		    "%s", privacy_ossl_reason(reason, sizeof(reason)));
		sealed_key_free(k);
		return NULL;
	}
	return k;
}

struct sealed_key *
sealed_key_load(const char *path, char *err, size_t errlen)
{
	unsigned char buf[SEALED_KEY_FILE_MAX];
	struct sealed_key *k = NULL;
	struct stat st;
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO planted as the key file must not hang us. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		privacy_seterr(err, errlen, "key file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		privacy_seterr(err, errlen, "key file %s: %s", path,
		    strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		privacy_seterr(err, errlen, "key file %s is not a regular "
		    "file", path);
	} else if ((st.st_mode & S_IRWXO) != 0) {
		privacy_seterr(err, errlen, "key file %s is accessible to "
		    "others (chmod o-rwx)", path);
	} else if (st.st_size < SEALED_KEY_FILE_MIN ||
	    st.st_size > SEALED_KEY_FILE_MAX) {
		privacy_seterr(err, errlen, "key file %s has %jd bytes, not "
		    "%d to %d (make one with: openssl rand 32 > FILE)", path,
		    (intmax_t)st.st_size, SEALED_KEY_FILE_MIN,
		    SEALED_KEY_FILE_MAX);
	} else if ((n = privacy_read_full(fd, buf, (size_t)st.st_size)) < 0) {
		privacy_seterr(err, errlen, "key file %s: %s", path,
		    strerror(errno));
	} else if (n != st.st_size) {
		privacy_seterr(err, errlen, "key file %s changed while read",
		    path);
	} else {
		k = sealed_key_new(buf, (size_t)n, err, errlen);
	}
	close(fd);
	OPENSSL_cleanse(buf, sizeof(buf));
	return k;
}

void
sealed_key_free(struct sealed_key *k)
{
	if (k == NULL)
		return;
	EVP_CIPHER_free(k->gcm);
	EVP_KDF_free(k->hkdf);
	OPENSSL_clear_free(k, sizeof(*k));
}

/* ---- the stream both directions share ---- */

static void
stream_fail(struct sealed_stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
stream_fail(struct sealed_stream *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failed)
		return;		/* the first reason is the one that matters */
	s->failed = true;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

/*
 * From the header (salt in place): this file's key into s->ctx, its
 * nonce base, and the key check into check.  0 or -1 (reason in s).
 */
static int
stream_keys(struct sealed_stream *s, const struct sealed_key *k,
    unsigned char check[SEALED_CHECK_LEN])
{
	unsigned char okm[SEALED_OKM_LEN];
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *kctx;
	char reason[160];
	int ok;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *)k->ikm, k->len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    s->header + OFF_SALT, SEALED_SALT_LEN);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (char *)SEALED_INFO, sizeof(SEALED_INFO) - 1);
	*p = OSSL_PARAM_construct_end();
	ok = (kctx = EVP_KDF_CTX_new(k->hkdf)) != NULL &&
	    EVP_KDF_derive(kctx, okm, sizeof(okm), params) == 1 &&
	    (s->ctx = EVP_CIPHER_CTX_new()) != NULL &&
	    EVP_CipherInit_ex2(s->ctx, k->gcm, okm, NULL, -1, NULL) == 1;
	EVP_KDF_CTX_free(kctx);
	if (ok) {
		memcpy(s->nonce_base, okm + SEALED_KEY_LEN, SEALED_NONCE_LEN);
		memcpy(check, okm + SEALED_KEY_LEN + SEALED_NONCE_LEN,
		    SEALED_CHECK_LEN);
	} else {
		stream_fail(s, "key derivation failed: %s",
		    privacy_ossl_reason(reason, sizeof(reason)));
	}
	OPENSSL_cleanse(okm, sizeof(okm));
	return ok ? 0 : -1;
}

static int
stream_alloc(struct sealed_stream *s, size_t rec)
{
	s->rec = rec;
	if ((s->buf = OPENSSL_malloc(rec + SEALED_TAG_LEN)) == NULL) {
		stream_fail(s, "out of memory");
		return -1;
	}
	return 0;
}

static void
stream_free(struct sealed_stream *s)
{
	EVP_CIPHER_CTX_free(s->ctx);	/* wipes the key schedule */
	if (s->buf != NULL)
		OPENSSL_clear_free(s->buf, s->rec + SEALED_TAG_LEN);
	if (s->own_fd && s->fd >= 0)
		close(s->fd);
	OPENSSL_cleanse(s->nonce_base, sizeof(s->nonce_base));
}

/*
 * Seal (enc = 1) or open (enc = 0) record s->index in place: len bytes
 * of s->buf, the tag after them.  0, or -1 if encryption failed or the
 * tag does not verify.
 */
static int
stream_record(struct sealed_stream *s, int enc, size_t len, bool final)
{
	unsigned char nonce[SEALED_NONCE_LEN], tail[SEALED_AAD_TAIL_LEN];
	unsigned char *tag = s->buf + len;
	int outl;

	/* nonce = base XOR index, the index right-aligned (TLS 1.3). */
	memcpy(nonce, s->nonce_base, sizeof(nonce));
	put_be64(tail, s->index);
	for (int i = 0; i < 8; i++)
		nonce[SEALED_NONCE_LEN - 8 + i] ^= tail[i];
	tail[8] = final ? 1 : 0;
	if (EVP_CipherInit_ex2(s->ctx, NULL, NULL, nonce, enc, NULL) != 1 ||
	    EVP_CipherUpdate(s->ctx, NULL, &outl, s->header,
	    SEALED_HEADER_LEN) != 1 ||
	    EVP_CipherUpdate(s->ctx, NULL, &outl, tail, sizeof(tail)) != 1)
		return -1;
	if (len > 0 && EVP_CipherUpdate(s->ctx, s->buf, &outl, s->buf,
	    (int)len) != 1)
		return -1;
	if (!enc && EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_SET_TAG,
	    SEALED_TAG_LEN, tag) != 1)
		return -1;
	if (EVP_CipherFinal_ex(s->ctx, s->buf + len, &outl) != 1)
		return -1;	/* decrypting: the tag did not verify */
	if (enc && EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG,
	    SEALED_TAG_LEN, tag) != 1)
		return -1;
	s->index++;	/* 2^64 records of >= 16 bytes: cannot wrap */
	return 0;
}

/* ---- writer ---- */

struct sealed_writer *
sealed_writer_new(const struct sealed_key *k, int fd, size_t record_size,
    char *err, size_t errlen)
{
	unsigned char check[SEALED_CHECK_LEN];
	struct sealed_writer *w;
	struct sealed_stream *s;
	char reason[160];

	if (record_size == 0)
		record_size = SEALED_RECORD_DEFAULT;
	if (record_size < SEALED_RECORD_MIN ||
	    record_size > SEALED_RECORD_MAX) {
		privacy_seterr(err, errlen, "record size %zu is not within "
		    "%d..%d", record_size, SEALED_RECORD_MIN,
		    SEALED_RECORD_MAX);
		return NULL;
	}
	if ((w = OPENSSL_zalloc(sizeof(*w))) == NULL) {
		privacy_seterr(err, errlen, "out of memory");
		return NULL;
	}
	s = &w->s;
	s->fd = fd;
	memcpy(s->header, SEALED_MAGIC, SEALED_MAGIC_LEN);
	s->header[OFF_VERSION] = SEALED_VERSION;
	s->header[OFF_SUITE] = SEALED_SUITE;
	put_be32(s->header + OFF_RECORD, (uint32_t)record_size);
	if (RAND_bytes(s->header + OFF_SALT, SEALED_SALT_LEN) != 1)
		stream_fail(s, "no random salt: %s",
		    privacy_ossl_reason(reason, sizeof(reason)));
	else if (stream_keys(s, k, check) == 0 &&
	    stream_alloc(s, record_size) == 0) {
		memcpy(s->header + OFF_CHECK, check, SEALED_CHECK_LEN);
		if (write_all(fd, s->header, SEALED_HEADER_LEN) != 0)
			stream_fail(s, "write: %s", strerror(errno));
	}
	if (s->failed) {
		privacy_seterr(err, errlen, "%s", s->err);
		sealed_writer_free(w);
		return NULL;
	}
	return w;
}

struct sealed_writer *
sealed_writer_open(const struct sealed_key *k, const char *path,
    size_t record_size, char *err, size_t errlen)
{
	struct sealed_writer *w;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		privacy_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((w = sealed_writer_new(k, fd, record_size, err, errlen)) == NULL) {
		close(fd);
		return NULL;
	}
	w->s.own_fd = true;
	return w;
}

/* Seal the buffered plaintext as the next record and write it. */
static int
writer_flush(struct sealed_writer *w, bool final)
{
	struct sealed_stream *s = &w->s;

	if (stream_record(s, 1, w->len, final) != 0) {
		char reason[160];

		stream_fail(s, "encryption failed: %s",
		    privacy_ossl_reason(reason, sizeof(reason)));
		return -1;
	}
	if (write_all(s->fd, s->buf, w->len + SEALED_TAG_LEN) != 0) {
		stream_fail(s, "write: %s", strerror(errno));
		return -1;
	}
	w->len = 0;
	return 0;
}

int
sealed_writer_write(struct sealed_writer *w, const void *p, size_t len)
{
	const unsigned char *c = p;
	struct sealed_stream *s = &w->s;

	if (w->finished)
		stream_fail(s, "write after finish");
	while (len > 0 && !s->failed) {
		size_t n = s->rec - w->len;

		if (n > len)
			n = len;
		memcpy(s->buf + w->len, c, n);
		w->len += n;
		w->size += n;
		c += n;
		len -= n;
		/* A full record is never the final one (sealed_file.h). */
		if (w->len == s->rec)
			(void)writer_flush(w, false);
	}
	return s->failed ? -1 : 0;
}

int
sealed_writer_finish(struct sealed_writer *w, char *err, size_t errlen)
{
	struct sealed_stream *s = &w->s;

	if (w->finished)
		stream_fail(s, "finished twice");
	w->finished = true;
	if (!s->failed && writer_flush(w, true) == 0 && s->own_fd) {
		if (fsync(s->fd) != 0)
			stream_fail(s, "fsync: %s", strerror(errno));
		if (close(s->fd) != 0)
			stream_fail(s, "close: %s", strerror(errno));
		s->fd = -1;
	}
	if (s->failed) {
		privacy_seterr(err, errlen, "%s", s->err);
		return -1;
	}
	return 0;
}

uint64_t
sealed_writer_size(const struct sealed_writer *w)
{
	return w->size;
}

void
sealed_writer_free(struct sealed_writer *w)
{
	if (w == NULL)
		return;
	stream_free(&w->s);
	OPENSSL_clear_free(w, sizeof(*w));
}

/* ---- reader ---- */

int
sealed_plain_size(uint64_t file_size, size_t record_size, uint64_t *size)
{
	uint64_t n, full, rem;

	if (record_size < SEALED_RECORD_MIN ||
	    record_size > SEALED_RECORD_MAX ||
	    file_size < SEALED_HEADER_LEN + SEALED_TAG_LEN)
		return -1;
	n = file_size - SEALED_HEADER_LEN;
	full = n / (record_size + SEALED_TAG_LEN);
	rem = n % (record_size + SEALED_TAG_LEN);
	if (rem < SEALED_TAG_LEN)
		return -1;	/* no room for a final record */
	*size = full * record_size + (rem - SEALED_TAG_LEN);
	return 0;
}

/* Read and check the header; set up the stream.  0 or -1 (s->err). */
static int
reader_header(struct sealed_reader *r, const struct sealed_key *k)
{
	struct sealed_stream *s = &r->s;
	unsigned char check[SEALED_CHECK_LEN];
	off_t start = lseek(s->fd, 0, SEEK_CUR);
	struct stat st;
	uint32_t rec;
	ssize_t n;

	n = privacy_read_full(s->fd, s->header, SEALED_HEADER_LEN);
	if (n < 0) {
		stream_fail(s, "read: %s", strerror(errno));
		return -1;
	}
	if (n < SEALED_HEADER_LEN ||
	    memcmp(s->header, SEALED_MAGIC, SEALED_MAGIC_LEN) != 0) {
		stream_fail(s, "not a sealed file (%s)",
		    n < SEALED_HEADER_LEN ? "shorter than a header" :
		    "bad magic");
		return -1;
	}
	if (s->header[OFF_VERSION] != SEALED_VERSION ||
	    s->header[OFF_SUITE] != SEALED_SUITE ||
	    s->header[OFF_ZERO] != 0 || s->header[OFF_ZERO + 1] != 0) {
		stream_fail(s, "unsupported sealed file (version %u, suite "
		    "%u)", s->header[OFF_VERSION], s->header[OFF_SUITE]);
		return -1;
	}
	rec = get_be32(s->header + OFF_RECORD);
	if (rec < SEALED_RECORD_MIN || rec > SEALED_RECORD_MAX) {
		stream_fail(s, "damaged header (record size %" PRIu32 ")",
		    rec);
		return -1;
	}
	if (stream_keys(s, k, check) != 0)
		return -1;
	if (CRYPTO_memcmp(check, s->header + OFF_CHECK, SEALED_CHECK_LEN)) {
		stream_fail(s, "wrong key (the key check does not match: "
		    "another key file, or a damaged header)");
		return -1;
	}
	if (start >= 0 && fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode)) {
		uint64_t fsize = st.st_size > start ?
		    (uint64_t)(st.st_size - start) : 0;

		if (sealed_plain_size(fsize, rec, &r->plain_size) != 0) {
			stream_fail(s, "truncated or extended (%" PRIu64
			    " bytes is no sealed file's size)", fsize);
			return -1;
		}
		r->size_known = true;
	}
	return stream_alloc(s, rec);
}

struct sealed_reader *
sealed_reader_new(const struct sealed_key *k, int fd, char *err,
    size_t errlen)
{
	struct sealed_reader *r;

	if ((r = OPENSSL_zalloc(sizeof(*r))) == NULL) {
		privacy_seterr(err, errlen, "out of memory");
		return NULL;
	}
	r->s.fd = fd;
	if (reader_header(r, k) != 0) {
		privacy_seterr(err, errlen, "%s", r->s.err);
		sealed_reader_free(r);
		return NULL;
	}
	return r;
}

struct sealed_reader *
sealed_reader_open(const struct sealed_key *k, const char *path, char *err,
    size_t errlen)
{
	struct sealed_reader *r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		privacy_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((r = sealed_reader_new(k, fd, err, errlen)) == NULL) {
		close(fd);
		return NULL;
	}
	r->s.own_fd = true;
	return r;
}

/* Read and open the next record into buf.  0 or -1 (s->err). */
static int
reader_next(struct sealed_reader *r)
{
	struct sealed_stream *s = &r->s;
	size_t want = s->rec + SEALED_TAG_LEN;
	ssize_t n = privacy_read_full(s->fd, s->buf, want);
	bool final;

	if (n < 0) {
		stream_fail(s, "read: %s", strerror(errno));
		return -1;
	}
	if (n < SEALED_TAG_LEN) {
		stream_fail(s, "truncated: the file ends %s record %" PRIu64
		    " without a final record", n == 0 ? "before" : "inside",
		    s->index);
		return -1;
	}
	/* Only the final record is short (sealed_file.h). */
	final = (size_t)n < want;
	if (stream_record(s, 0, (size_t)n - SEALED_TAG_LEN, final) != 0) {
		ERR_clear_error();
		stream_fail(s, "record %" PRIu64 " fails authentication "
		    "(tampered, truncated, reordered or from another file)",
		    s->index);
		return -1;
	}
	r->pos = 0;
	r->len = (size_t)n - SEALED_TAG_LEN;
	r->eof = final;
	return 0;
}

ssize_t
sealed_reader_read(struct sealed_reader *r, void *p, size_t len)
{
	unsigned char *c = p;
	size_t got = 0;

	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (got < len && !r->s.failed) {
		if (r->pos == r->len) {
			if (r->eof || reader_next(r) != 0)
				break;
			continue;
		}
		size_t n = r->len - r->pos;

		if (n > len - got)
			n = len - got;
		memcpy(c + got, r->s.buf + r->pos, n);
		r->pos += n;
		got += n;
	}
	/* Bytes before a failure go out now; the failure on the next call. */
	if (got == 0 && r->s.failed)
		return -1;
	return (ssize_t)got;
}

const char *
sealed_reader_error(const struct sealed_reader *r)
{
	return r->s.err;
}

int
sealed_reader_plain_size(const struct sealed_reader *r, uint64_t *size)
{
	if (!r->size_known)
		return -1;
	*size = r->plain_size;
	return 0;
}

void
sealed_reader_free(struct sealed_reader *r)
{
	if (r == NULL)
		return;
	stream_free(&r->s);
	OPENSSL_clear_free(r, sizeof(*r));
}

int
sealed_file_verify(const struct sealed_key *k, const char *path, char *err,
    size_t errlen)
{
	struct sealed_reader *r;
	unsigned char scratch[16 * 1024];
	ssize_t n;

	if ((r = sealed_reader_open(k, path, err, errlen)) == NULL)
		return -1;
	while ((n = sealed_reader_read(r, scratch, sizeof(scratch))) > 0)
		;
	if (n < 0)
		privacy_seterr(err, errlen, "%s: %s", path, r->s.err);
	OPENSSL_cleanse(scratch, sizeof(scratch));
	sealed_reader_free(r);
	return n < 0 ? -1 : 0;
}
