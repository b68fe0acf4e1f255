/*
 * cms_int.h — what cms_encrypt.c needs of cms_recips.c (not an API).
 */
#ifndef LUASMTPD_CMS_INT_H
#define LUASMTPD_CMS_INT_H

#include <openssl/x509.h>

#include "privacy/cms_encrypt.h"

/* The certificates (borrowed; read-only while an encryption runs). */
STACK_OF(X509)	*cms_recips_certs(const struct cms_recips *);

#endif
