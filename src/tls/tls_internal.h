/*
 * tls_internal.h — shared by tls_ctx.c and tls_conn.c only.
 */
#ifndef LUASMTPD_TLS_INTERNAL_H
#define LUASMTPD_TLS_INTERNAL_H

#include <openssl/ssl.h>

/* The current default server context (changes on reload). */
SSL_CTX	*tls_default_ctx(void);

#endif
