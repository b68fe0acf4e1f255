/*
 * cms_recips.c — the recipient certificates of an S/MIME encryption
 * (cms_encrypt.h): PEM files, by path or as dir/<address>.pem.
 *
 * Owns: a stack of X509 references (one per distinct certificate).
 *
 * SECURITY: the address comes from the network (RCPT TO): it is checked
 * (cms_address_check) before it becomes part of a path, and left out of
 * error messages (leave-no-trace logs must not learn it from us).  A
 * certificate file is read whole, bounded (CMS_CERT_FILE_MAX), only if it
 * is a regular file (opened O_NONBLOCK so a FIFO cannot hang a worker),
 * and refused if it holds a private key: a key in the certificate
 * directory is a mistake the operator must hear about.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "privacy/cms_encrypt.h"
#include "privacy/cms_int.h"
#include "privacy/privacy_int.h"

struct cms_recips {
	STACK_OF(X509)	*certs;
	unsigned	 flags;
};

struct cms_recips *
cms_recips_new(unsigned flags)
{
	struct cms_recips *r;

	if ((r = OPENSSL_zalloc(sizeof(*r))) == NULL)
		return NULL;
	if ((r->certs = sk_X509_new_null()) == NULL) {
		OPENSSL_free(r);
		return NULL;
	}
	r->flags = flags;
	return r;
}

void
cms_recips_free(struct cms_recips *r)
{
	if (r == NULL)
		return;
	sk_X509_pop_free(r->certs, X509_free);
	OPENSSL_free(r);
}

size_t
cms_recips_count(const struct cms_recips *r)
{
	return (size_t)sk_X509_num(r->certs);
}

STACK_OF(X509) *
cms_recips_certs(const struct cms_recips *r)
{
	return r->certs;
}

const char *
cms_address_check(const char *a, size_t len)
{
	if (len == 0)
		return "empty address";
	if (len > CMS_ADDRESS_MAX)
		return "address too long";
	if (a[0] == '.')
		return "address starts with a dot";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c == '\0' || c < 0x20 || c == 0x7f)
			return "address has a control character";
		if (c == '/' || c == '\\')
			return "address has a slash";
	}
	return NULL;
}

/* Whether x can receive: key type and size, key usage, dates.  0 or -1. */
static int
check_cert(X509 *x, unsigned flags, int nth, const char *label, char *err,
    size_t errlen)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	uint32_t ku = X509_get_key_usage(x);	/* UINT32_MAX: no extension */
	uint32_t need;

	if (pk == NULL) {
		privacy_seterr(err, errlen, "certificate %d of %s has no usable "
		    "public key", nth, label);
		return -1;
	}
	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (EVP_PKEY_get_bits(pk) < CMS_RSA_MIN_BITS) {
			privacy_seterr(err, errlen, "certificate %d of %s has "
			    "a %d-bit RSA key (at least %d)", nth, label,
			    EVP_PKEY_get_bits(pk), CMS_RSA_MIN_BITS);
			return -1;
		}
		need = KU_KEY_ENCIPHERMENT;
	} else if (EVP_PKEY_is_a(pk, "EC")) {
		need = KU_KEY_AGREEMENT;
	} else {
		privacy_seterr(err, errlen, "certificate %d of %s has a %s key: "
		    "S/MIME encryption needs RSA or EC", nth, label,
		    EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) :
		    "unknown");
		return -1;
	}
	if ((ku & need) == 0) {
		privacy_seterr(err, errlen, "certificate %d of %s: its key usage "
		    "does not allow %s", nth, label, need == KU_KEY_AGREEMENT ?
		    "keyAgreement" : "keyEncipherment");
		return -1;
	}
	if ((flags & CMS_RECIPS_CHECK_DATES) &&
	    (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)) {
		privacy_seterr(err, errlen, "certificate %d of %s is expired or "
		    "not yet valid", nth, label);
		return -1;
	}
	return 0;
}

/* Read the regular file at path, at most CMS_CERT_FILE_MAX bytes. */
static char *
read_cert_file(const char *path, const char *label, size_t *len, char *err,
    size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		saved = errno;
		privacy_seterr(err, errlen, "%s: %s", label, strerror(errno));
		errno = saved;
		return NULL;
	}
	if (fstat(fd, &st) != 0)
		privacy_seterr(err, errlen, "%s: %s", label, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		privacy_seterr(err, errlen, "%s is not a regular file", label);
	else if (st.st_size > CMS_CERT_FILE_MAX)
		privacy_seterr(err, errlen, "%s is larger than %d bytes", label,
		    CMS_CERT_FILE_MAX);
	else if ((buf = OPENSSL_malloc((size_t)st.st_size + 1)) == NULL)
		privacy_seterr(err, errlen, "out of memory");
	else if ((n = privacy_read_full(fd, buf, (size_t)st.st_size + 1)) < 0 ||
	    n != st.st_size) {
		privacy_seterr(err, errlen, "%s: %s", label, n < 0 ?
		    strerror(errno) : "changed while read");
		OPENSSL_free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = (size_t)n;
	}
	close(fd);
	errno = EINVAL;
	return buf;
}

/* Parse every certificate of buf into out (empty on entry).  0 or -1. */
static int
parse_certs(const char *buf, size_t len, STACK_OF(X509) *out,
    const char *label, char *err, size_t errlen)
{
	char reason[160];
	BIO *bio;
	X509 *x;

	if (memmem(buf, len, "PRIVATE KEY-----", 16) != NULL) {
		privacy_seterr(err, errlen, "%s holds a private key: only "
		    "certificates belong there", label);
		return -1;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		privacy_seterr(err, errlen, "out of memory");
		return -1;
	}
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_num(out) == CMS_RECIPIENTS_MAX ||
		    !sk_X509_push(out, x)) {
			X509_free(x);
			BIO_free(bio);
			privacy_seterr(err, errlen, "%s has more than %d "
			    "certificates", label, CMS_RECIPIENTS_MAX);
			return -1;
		}
	}
	BIO_free(bio);
	/* The loop ends at the first block that is no certificate. */
	if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE &&
	    sk_X509_num(out) > 0) {
		ERR_clear_error();
		return 0;
	}
	if (sk_X509_num(out) == 0 &&
	    ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE) {
		ERR_clear_error();
		privacy_seterr(err, errlen, "%s has no PEM certificate", label);
	} else {
		privacy_seterr(err, errlen, "%s: certificate %d is damaged: %s",
		    label, sk_X509_num(out) + 1,
		    privacy_ossl_reason(reason, sizeof(reason)));
	}
	return -1;
}

static bool
has_cert(STACK_OF(X509) *sk, X509 *x)
{
	for (int i = 0; i < sk_X509_num(sk); i++)
		if (X509_cmp(sk_X509_value(sk, i), x) == 0)
			return true;
	return false;
}

/* cms_recips_add_file with label naming the file in messages. */
static int
add_file(struct cms_recips *r, const char *path, const char *label,
    char *err, size_t errlen)
{
	STACK_OF(X509) *got;
	size_t len;
	char *buf;
	int rc = -1;

	if ((buf = read_cert_file(path, label, &len, err, errlen)) == NULL)
		return -1;	/* errno: ENOENT for a missing file */
	if ((got = sk_X509_new_null()) == NULL) {
		privacy_seterr(err, errlen, "out of memory");
	} else if (parse_certs(buf, len, got, label, err, errlen) == 0) {
		int n = 0;

		rc = 0;
		for (int i = 0; i < sk_X509_num(got) && rc == 0; i++)
			rc = check_cert(sk_X509_value(got, i), r->flags, i + 1,
			    label, err, errlen);
		/* Count what is new (an upper bound: repeats inside the
		 * file count twice), then add it all or nothing. */
		for (int i = 0; rc == 0 && i < sk_X509_num(got); i++)
			if (!has_cert(r->certs, sk_X509_value(got, i)))
				n++;
		if (rc == 0 && sk_X509_num(r->certs) + n > CMS_RECIPIENTS_MAX) {
			privacy_seterr(err, errlen, "more than %d recipient "
			    "certificates", CMS_RECIPIENTS_MAX);
			rc = -1;
		}
		for (int i = 0; rc == 0 && i < sk_X509_num(got); i++) {
			X509 *x = sk_X509_value(got, i);

			if (has_cert(r->certs, x))
				continue;
			if (!sk_X509_push(r->certs, x)) {
				privacy_seterr(err, errlen, "out of memory");
				rc = -1;
				break;
			}
			X509_up_ref(x);
		}
	}
	sk_X509_pop_free(got, X509_free);
	OPENSSL_free(buf);
	if (rc != 0)
		errno = EINVAL;
	return rc;
}

int
cms_recips_add_file(struct cms_recips *r, const char *path, char *err,
    size_t errlen)
{
	return add_file(r, path, path, err, errlen);
}

int
cms_recips_add_address(struct cms_recips *r, const char *dir,
    const char *address, char *err, size_t errlen)
{
	char path[PATH_MAX], label[PATH_MAX];
	size_t len = strlen(address), dlen = strlen(dir), o;
	const char *why;

	if ((why = cms_address_check(address, len)) != NULL) {
		privacy_seterr(err, errlen, "no certificate file for this "
		    "address: %s", why);
		errno = EINVAL;
		return -1;
	}
	if (dlen + 1 + len + sizeof(".pem") > sizeof(path)) {
		privacy_seterr(err, errlen, "certificate path too long");
		errno = EINVAL;
		return -1;
	}
	memcpy(path, dir, dlen);
	path[dlen] = '/';
	o = dlen + 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)address[i];

		path[o++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	memcpy(path + o, ".pem", sizeof(".pem"));
	snprintf(label, sizeof(label), "the certificate file of this "
	    "address in %s", dir);
	if (add_file(r, path, label, err, errlen) == 0)
		return 0;
	if (errno == ENOENT)
		privacy_seterr(err, errlen, "no certificate for this address "
		    "in %s", dir);
	return -1;
}
