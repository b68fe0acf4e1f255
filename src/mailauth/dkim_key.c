/*
 * dkim_key.c — DKIM private keys in memory (see dkim.h).
 *
 * A PEM file is parsed once with OpenSSL: RSA of DKIM_KEY_BITS_MIN to
 * DKIM_KEY_BITS_MAX bits, or Ed25519; an encrypted key is refused, never
 * prompted for.  We keep it twice: as normalized unencrypted PKCS#8 PEM,
 * which is what libopendkim's dkim_sign() takes for RSA (it parses it again
 * per signature: tens of microseconds next to the signature itself), and
 * as an EVP_PKEY, which signs Ed25519 (dkim_sign_ed.c).  Both are shared by
 * reference between the loop and the CPU pool (an EVP_PKEY may be used by
 * several threads at once in OpenSSL 3), and the PEM is cleansed when the
 * last reference goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mailauth/dkim_int.h"
#include "util/xmalloc.h"

static int
no_password(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return -1;
}

static char *
b64(const unsigned char *p, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

static char *
public_record(EVP_PKEY *pk, enum dkim_key_type type)
{
	unsigned char raw[32], *der = NULL;
	size_t rawlen = sizeof(raw);
	char *p64, *rec;
	int n;

	if (type == DKIM_KEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1)
			return NULL;
		p64 = b64(raw, rawlen);
	} else {
		if ((n = i2d_PUBKEY(pk, &der)) <= 0)
			return NULL;
		p64 = b64(der, (size_t)n);
		OPENSSL_free(der);
	}
	n = snprintf(NULL, 0, "v=DKIM1; k=%s; p=%s",
	    type == DKIM_KEY_ED25519 ? "ed25519" : "rsa", p64);
	rec = xmalloc((size_t)n + 1);
	snprintf(rec, (size_t)n + 1, "v=DKIM1; k=%s; p=%s",
	    type == DKIM_KEY_ED25519 ? "ed25519" : "rsa", p64);
	free(p64);
	return rec;
}

struct dkim_key *
dkim_key_from_pem(const char *pem, size_t len, char *err, size_t errlen)
{
	BIO *in = NULL, *out = NULL;
	EVP_PKEY *pk = NULL;
	struct dkim_key *k = NULL;
	char *data;
	long dlen;

	if (len > DKIM_KEY_FILE_MAX || (in = BIO_new_mem_buf(pem,
	    (int)len)) == NULL) {
		snprintf(err, errlen, "key too large");
		return NULL;
	}
	if ((pk = PEM_read_bio_PrivateKey(in, NULL, no_password, NULL)) ==
	    NULL) {
		snprintf(err, errlen, "no unencrypted PEM private key");
		goto out;
	}
	k = xcalloc(1, sizeof(*k));
	atomic_init(&k->refs, 1);
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		k->type = DKIM_KEY_RSA;
		k->bits = (unsigned)EVP_PKEY_get_bits(pk);
		if (k->bits < DKIM_KEY_BITS_MIN || k->bits > DKIM_KEY_BITS_MAX) {
			snprintf(err, errlen, "RSA key of %u bits (%d to %d "
			    "allowed)", k->bits, DKIM_KEY_BITS_MIN,
			    DKIM_KEY_BITS_MAX);
			goto bad;
		}
		break;
	case EVP_PKEY_ED25519:
		k->type = DKIM_KEY_ED25519;
		k->bits = 256;
		break;
	default:
		snprintf(err, errlen, "not an RSA or Ed25519 key");
		goto bad;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PrivateKey(out, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (dlen = BIO_get_mem_data(out, &data)) <= 0 ||
	    (k->record = public_record(pk, k->type)) == NULL) {
		snprintf(err, errlen, "cannot re-encode the key");
		goto bad;
	}
	k->pem = xmalloc((size_t)dlen + 1);
	memcpy(k->pem, data, (size_t)dlen);
	k->pem[dlen] = '\0';
	k->pemlen = (size_t)dlen;
	OPENSSL_cleanse(data, (size_t)dlen);
	k->pkey = pk;
	pk = NULL;
	goto out;
bad:
	free(k->record);
	free(k);
	k = NULL;
out:
	BIO_free(out);
	BIO_free(in);
	EVP_PKEY_free(pk);
	return k;
}

struct dkim_key *
dkim_key_load(const char *path, char *err, size_t errlen)
{
	struct dkim_key *k;
	char *buf;
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > DKIM_KEY_FILE_MAX) {
		snprintf(err, errlen, "%s: not a key file of at most %d octets",
		    path, DKIM_KEY_FILE_MAX);
		close(fd);
		return NULL;
	}
	buf = xmalloc(DKIM_KEY_FILE_MAX + 1);
	while (got < DKIM_KEY_FILE_MAX) {
		n = read(fd, buf + got, DKIM_KEY_FILE_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	k = dkim_key_from_pem(buf, got, err, errlen);
	OPENSSL_cleanse(buf, DKIM_KEY_FILE_MAX + 1);
	free(buf);
	if (k == NULL) {
		char why[DKIM_REASON_MAX];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "%s: %s", path, why);
	}
	return k;
}

struct dkim_key *
dkim_key_ref(struct dkim_key *k)
{
	atomic_fetch_add(&k->refs, 1);
	return k;
}

void
dkim_key_unref(struct dkim_key *k)
{
	if (k == NULL || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	OPENSSL_cleanse(k->pem, k->pemlen);
	free(k->pem);
	free(k->record);
	EVP_PKEY_free(k->pkey);
	free(k);
}

enum dkim_key_type
dkim_key_type(const struct dkim_key *k)
{
	return k->type;
}

unsigned
dkim_key_bits(const struct dkim_key *k)
{
	return k->bits;
}

int
dkim_key_record(const struct dkim_key *k, char *out, size_t outlen)
{
	size_t n = strlen(k->record);

	if (n >= outlen)
		return -1;
	memcpy(out, k->record, n + 1);
	return 0;
}
