/*
 * tls_conn.c — TLS as a conn transport (see tls.h).
 *
 * OpenSSL's WANT_READ/WANT_WRITE become CONN_AGAIN with the readiness the
 * operation waits for; conn.c arms the matching watcher, so a TLS read
 * that must write first (or the reverse) still completes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"
#include "tls/tls_internal.h"

static SSL_CTX *client_ctx;

/* Map an SSL result to CONN_*; fills c->error on failure. */
static int
ssl_result(struct conn *c, SSL *ssl, int r, enum conn_want *want)
{
	int e = SSL_get_error(ssl, r);
	unsigned long code;

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = CONN_WANT_READ;
		return CONN_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = CONN_WANT_WRITE;
		return CONN_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return CONN_EOF;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
				snprintf(c->error, sizeof(c->error),
				    "connection closed by peer");
				return CONN_EOF;
			}
			snprintf(c->error, sizeof(c->error), "%s", strerror(errno));
			ERR_clear_error();
			return CONN_ERR;
		}
		/* FALLTHROUGH */
	default:
		code = ERR_get_error();
		ERR_error_string_n(code, c->error, sizeof(c->error));
		ERR_clear_error();
		return CONN_ERR;
	}
}

static ssize_t
tls_read(struct conn *c, void *p, size_t n, enum conn_want *want)
{
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_read(c->transport, p, n > INT32_MAX ? INT32_MAX : (int)n);
	if (r > 0)
		return r;
	return ssl_result(c, c->transport, r, want);
}

static ssize_t
tls_write(struct conn *c, const void *p, size_t n, enum conn_want *want)
{
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_write(c->transport, p, n > INT32_MAX ? INT32_MAX : (int)n);
	if (r > 0)
		return r;
	r = ssl_result(c, c->transport, r, want);
	return r == CONN_EOF ? CONN_ERR : r;
}

static void
tls_shutdown(struct conn *c)
{
	SSL *ssl = c->transport;

	if (ssl == NULL)
		return;
	/* Best effort close_notify; we do not wait for the peer's. */
	if (!c->failed && SSL_is_init_finished(ssl))
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
	SSL_free(ssl);
	c->transport = NULL;
}

static size_t
tls_pending(struct conn *c)
{
	int n = c->transport != NULL ? SSL_pending(c->transport) : 0;

	return n > 0 ? (size_t)n : 0;
}

/*
 * For a busy owner: has the client closed (close_notify, or the socket)?
 * SSL_peek moves whole records from the socket into OpenSSL, so the
 * close_notify alert that a plain MSG_PEEK would only see as "bytes
 * waiting" is recognised; application data stays unread (tls_pending
 * reports it, and conn_want_read() resumes it later).
 */
static int
tls_peek_closed(struct conn *c)
{
	SSL *ssl = c->transport;
	char b;
	int r;

	if (ssl == NULL)
		return 1;
	if (SSL_pending(ssl) > 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	r = SSL_peek(ssl, &b, 1);
	if (r > 0)
		return 0;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -1;		/* half a record: wait for the rest */
	default:
		ERR_clear_error();
		return 1;		/* close_notify, EOF or a broken stream */
	}
}

static int
tls_handshake(struct conn *c, enum conn_want *want)
{
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(c->transport);
	if (r == 1)
		return CONN_OK;
	r = ssl_result(c, c->transport, r, want);
	if (r == CONN_EOF) {
		if (c->error[0] == '\0')
			snprintf(c->error, sizeof(c->error),
			    "connection closed during handshake");
		return CONN_ERR;
	}
	return r;
}

static const struct conn_ops tls_ops = {
	.name = "tls",
	.read = tls_read,
	.write = tls_write,
	.shutdown = tls_shutdown,
	.pending = tls_pending,
	.handshake = tls_handshake,
	.peek_closed = tls_peek_closed,
};

bool
tls_conn_active(const struct conn *c)
{
	return c->ops == &tls_ops;
}

void
tls_conn_accept(struct conn *c, tls_done_cb done)
{
	SSL *ssl = SSL_new(tls_default_ctx());

	if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
		snprintf(c->error, sizeof(c->error), "cannot create a TLS session");
		SSL_free(ssl);
		c->failed = true;
		done(c->owner, false);
		return;
	}
	SSL_set_accept_state(ssl);
	conn_set_transport(c, &tls_ops, ssl);
	conn_handshake(c, done);
}

static SSL_CTX *
get_client_ctx(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if (ca_file == NULL && client_ctx != NULL)
		return client_ctx;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "cannot load CA file %s", ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
		return ctx;	/* the caller frees it after SSL_new */
	}
	SSL_CTX_set_default_verify_paths(ctx);
	client_ctx = ctx;
	return ctx;
}

int
tls_conn_connect(struct conn *c, const char *sni, bool verify,
    const char *verify_name, const char *ca_file, tls_done_cb done,
    char *err, size_t errlen)
{
	SSL_CTX *ctx = get_client_ctx(ca_file, err, errlen);
	SSL *ssl;

	if (ctx == NULL)
		return -1;
	ssl = SSL_new(ctx);
	if (ca_file != NULL)
		SSL_CTX_free(ctx);	/* the SSL keeps its reference */
	if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
		snprintf(err, errlen, "cannot create a TLS session");
		SSL_free(ssl);
		return -1;
	}
	if (sni != NULL)
		SSL_set_tlsext_host_name(ssl, sni);
	if (verify) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		if (verify_name != NULL && SSL_set1_host(ssl, verify_name) != 1) {
			snprintf(err, errlen, "bad name to verify: %s", verify_name);
			SSL_free(ssl);
			return -1;
		}
	} else {
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	}
	SSL_set_connect_state(ssl);
	conn_set_transport(c, &tls_ops, ssl);
	conn_handshake(c, done);
	return 0;
}

bool
tls_conn_info(const struct conn *c, struct tls_info *info)
{
	SSL *ssl;
	const char *sni;
	X509 *peer;

	memset(info, 0, sizeof(*info));
	if (!tls_conn_active(c) || (ssl = c->transport) == NULL)
		return false;
	snprintf(info->version, sizeof(info->version), "%s", SSL_get_version(ssl));
	snprintf(info->cipher, sizeof(info->cipher), "%s",
	    SSL_get_cipher_name(ssl));
	info->bits = SSL_get_cipher_bits(ssl, NULL);
	sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	snprintf(info->sni, sizeof(info->sni), "%s", sni ? sni : "");
	if ((peer = SSL_get1_peer_certificate(ssl)) != NULL) {
		X509_NAME_oneline(X509_get_subject_name(peer), info->peer_subject,
		    sizeof(info->peer_subject));
		info->peer_verified = SSL_get_verify_result(ssl) == X509_V_OK;
		X509_free(peer);
	}
	return true;
}
