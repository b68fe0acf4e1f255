/*
 * tls_ctx.c — server certificates, SNI selection, reload, and the
 * self-signed certificate `make run` starts with.
 *
 * SECURITY: the self-signed private key is created mode 0600 by open(2);
 * the process umask is never changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"
#include "tls/tls_internal.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/xmalloc.h"

static struct tls_config	 conf;		/* a copy: reload re-reads it */
static SSL_CTX			**ctxs;		/* ctxs[0] is the default */
static size_t			 nctx;

static void
openssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e ? buf : strerror(errno));
	ERR_clear_error();
}

/* fclose(*fp) and forget it, so the error path does not close it again. */
static int
close_file(FILE **fp)
{
	int rc = fclose(*fp);

	*fp = NULL;
	return rc;
}

/* Write a fresh self-signed EC P-256 certificate for name. */
static int
make_self_signed(const struct tls_cert_config *cc, char *err, size_t errlen)
{
	char dir[4096], san[300];
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	FILE *f = NULL;
	int fd = -1, rc = -1;

	path_dir(cc->cert, dir, sizeof(dir));
	if (mkdir_p(dir, 0700) != 0) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	path_dir(cc->key, dir, sizeof(dir));
	if (mkdir_p(dir, 0700) != 0) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if ((pkey = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL) {
		openssl_error(err, errlen, "self-signed key");
		goto out;
	}
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400);
	X509_set_pubkey(x, pkey);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)cc->self_signed, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	snprintf(san, sizeof(san), "DNS:%s", cc->self_signed);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
	    san)) == NULL || !X509_add_ext(x, ext, -1) ||
	    !X509_sign(x, pkey, EVP_sha256())) {
		openssl_error(err, errlen, "self-signed certificate");
		goto out;
	}
	/*
	 * The key is created 0600 by open(2) itself, and fchmod covers a key
	 * file that was already there: changing the process umask instead
	 * would stay in force for everything the server creates afterwards
	 * (issue 8, finding 12).
	 */
	if ((fd = open(cc->key, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) < 0 || fchmod(fd, 0600) != 0 ||
	    (f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "write %s: %s", cc->key, strerror(errno));
		goto out;
	}
	fd = -1;	/* f owns it */
	if (!PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) ||
	    close_file(&f) != 0) {
		snprintf(err, errlen, "write %s: %s", cc->key, strerror(errno));
		goto out;
	}
	if ((f = fopen(cc->cert, "w")) == NULL || !PEM_write_X509(f, x) ||
	    close_file(&f) != 0) {
		snprintf(err, errlen, "write %s: %s", cc->cert, strerror(errno));
		goto out;
	}
	log_info(0, "tls self-signed-created name=%s cert=%s", cc->self_signed,
	    cc->cert);
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

static int
parse_version(const char *v)
{
	if (v == NULL || strcasecmp(v, "TLSv1.2") == 0)
		return TLS1_2_VERSION;
	if (strcasecmp(v, "TLSv1.3") == 0)
		return TLS1_3_VERSION;
	return -1;
}

/* The client's SNI picks the context of the first certificate that matches. */
static int
sni_cb(SSL *ssl, int *alert, void *arg)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	(void)arg;
	if (name == NULL || nctx < 2)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < nctx; i++) {
		X509 *x = SSL_CTX_get0_certificate(ctxs[i]);

		if (x != NULL && X509_check_host(x, name, 0, 0, NULL) == 1) {
			if (i != 0)
				SSL_set_SSL_CTX(ssl, ctxs[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_OK;	/* unknown name: the default */
}

/* Accept any client certificate; we report whether it verified. */
static int
verify_cb(int ok, X509_STORE_CTX *store)
{
	(void)ok;
	(void)store;
	return 1;
}

static SSL_CTX *
new_ctx(const struct tls_config *c, const struct tls_cert_config *cc,
    char *err, size_t errlen)
{
	struct stat st;
	SSL_CTX *ctx;
	int minv = parse_version(c->min_version);

	if (cc->self_signed != NULL && (stat(cc->cert, &st) != 0 ||
	    stat(cc->key, &st) != 0) && make_self_signed(cc, err, errlen) != 0)
		return NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		openssl_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, minv);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cc->cert) != 1) {
		openssl_error(err, errlen, cc->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cc->key, SSL_FILETYPE_PEM) != 1) {
		openssl_error(err, errlen, cc->key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		openssl_error(err, errlen, "key does not match certificate");
		goto fail;
	}
	if (c->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1) {
		openssl_error(err, errlen, "tls.ciphers");
		goto fail;
	}
	if (c->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, c->ciphersuites) != 1) {
		openssl_error(err, errlen, "tls.ciphersuites");
		goto fail;
	}
	if (c->request_client_cert) {
		if (c->client_ca != NULL &&
		    SSL_CTX_load_verify_locations(ctx, c->client_ca, NULL) != 1) {
			openssl_error(err, errlen, c->client_ca);
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
		/* Session id context: needed when peers are verified. */
		SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"smtp", 4);
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static int
load_all(char *err, size_t errlen)
{
	SSL_CTX **fresh;

	if (conf.ncerts == 0) {
		snprintf(err, errlen, "tls: no certificate configured");
		return -1;
	}
	if (parse_version(conf.min_version) < 0) {
		snprintf(err, errlen, "tls.min_version must be TLSv1.2 or TLSv1.3");
		return -1;
	}
	fresh = xcalloc(conf.ncerts, sizeof(*fresh));
	for (size_t i = 0; i < conf.ncerts; i++) {
		if ((fresh[i] = new_ctx(&conf, &conf.certs[i], err, errlen)) == NULL) {
			while (i-- > 0)
				SSL_CTX_free(fresh[i]);
			free(fresh);
			return -1;
		}
	}
	/* Established connections hold their own references. */
	for (size_t i = 0; i < nctx; i++)
		SSL_CTX_free(ctxs[i]);
	free(ctxs);
	ctxs = fresh;
	nctx = conf.ncerts;
	return 0;
}

int
tls_server_init(const struct tls_config *c, char *err, size_t errlen)
{
	conf = *c;
	return load_all(err, errlen);
}

bool
tls_server_ready(void)
{
	return nctx > 0;
}

int
tls_reload(char *err, size_t errlen)
{
	if (nctx == 0)
		return 0;
	return load_all(err, errlen);
}

SSL_CTX *
tls_default_ctx(void)
{
	return nctx > 0 ? ctxs[0] : NULL;
}
