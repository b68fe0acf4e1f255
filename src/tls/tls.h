/*
 * tls.h — TLS for connections (OpenSSL), server and client side.
 *
 * RFC 3207 (STARTTLS), RFC 8314 (implicit TLS), RFC 6066 §3 (SNI).
 *
 * The SMTP code never calls OpenSSL: it asks for a handshake on a conn
 * (tls_conn_accept, tls_conn_connect) and from then on reads and writes
 * through the conn as before; tls_conn.c fills struct conn_ops.
 *
 * Certificates are loaded into one SSL_CTX each.  The first is the
 * default; a client's SNI name picks the first certificate whose names
 * match it (X509_check_host: exact and wildcard names as OpenSSL matches
 * them), else the default.  tls_reload() re-reads every file for new
 * connections; established ones keep their context (reference counted).
 *
 * SECURITY: TLS 1.2 and 1.3 only by default; renegotiation is off; the
 * handshake has its own timeout (the caller's timer).
 */
#ifndef LUASMTPD_TLS_H
#define LUASMTPD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "net/conn.h"

struct tls_cert_config {
	char	*cert;		/* PEM certificate (chain) file */
	char	*key;		/* PEM private key file */
	char	*self_signed;	/* if set and the files are missing: create a
				   self-signed certificate for this name */
};

struct tls_config {
	struct tls_cert_config	*certs;
	size_t			 ncerts;
	char			*min_version;	/* "TLSv1.2" (default), "TLSv1.3" */
	char			*ciphers;	/* TLS 1.2 cipher list, or NULL */
	char			*ciphersuites;	/* TLS 1.3 suites, or NULL */
	bool			 request_client_cert;
	char			*client_ca;	/* CA file for client certs */
};

/* Load the server contexts; 0, or -1 with a reason in err. */
int	tls_server_init(const struct tls_config *, char *err, size_t errlen);
bool	tls_server_ready(void);
/* Re-read all certificate files; on failure the old ones stay. */
int	tls_reload(char *err, size_t errlen);

typedef void (*tls_done_cb)(void *owner, bool ok);

/*
 * Start a server handshake on c (its socket is connected).  done() runs
 * from an event callback when it finishes; on failure c->error says why.
 */
void	tls_conn_accept(struct conn *, tls_done_cb done);
/*
 * Start a client handshake: sni may be NULL; with verify, the peer's
 * certificate must chain to the system CAs (or ca_file) and match
 * verify_name.
 */
int	tls_conn_connect(struct conn *, const char *sni, bool verify,
	    const char *verify_name, const char *ca_file, tls_done_cb done,
	    char *err, size_t errlen);

/* What a TLS session negotiated (for logs and Lua); false if not TLS. */
struct tls_info {
	char	version[16];
	char	cipher[64];
	int	bits;
	char	sni[256];
	char	peer_subject[256];	/* client certificate, or "" */
	bool	peer_verified;
};
bool	tls_conn_info(const struct conn *, struct tls_info *);

/* Whether the conn's transport is TLS. */
bool	tls_conn_active(const struct conn *);

#endif
