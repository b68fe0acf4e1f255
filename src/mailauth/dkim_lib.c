/*
 * dkim_lib.c — the two libopendkim handles (one to verify, one to sign)
 * and small helpers the DKIM files share (see dkim.h, dkim_int.h).
 *
 * The verify handle: DELAYSIGPROC (signatures are checked at the end of
 * the message, after our resolver fetched the keys, not at the end of the
 * header), BADSIGHANDLES (a malformed signature is reported, not dropped),
 * our key lookup callback (dkimv_key_lookup) and prescreen callback (which
 * names the keys to fetch).  Its minimum key size is 0: our lookup
 * callback applies the caller's minimum and our maximum before libopendkim
 * decodes a key.  Its DNS functions are replaced by ones that fail, so
 * libopendkim can never block a thread on its own resolver.
 *
 * The sign handle (RSA signatures) oversigns From (RFC 6376 §8.15):
 * libopendkim keeps the oversigned names per handle, so the list is fixed
 * here; dkim_sign_ed.c oversigns From the same way.  The verify handle also
 * hashes for dkim_sign_ed.c: with no user context its callbacks ask for no
 * key.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailauth/dkim_int.h"
#include "util/log.h"

DKIM_LIB	*dkim_vlib;
DKIM_LIB	*dkim_slib;
unsigned	 dkim_live;

static const char *res_names[] = {
	[DKIM_RES_NONE] = "none",
	[DKIM_RES_PASS] = "pass",
	[DKIM_RES_FAIL] = "fail",
	[DKIM_RES_POLICY] = "policy",
	[DKIM_RES_NEUTRAL] = "neutral",
	[DKIM_RES_TEMPERROR] = "temperror",
	[DKIM_RES_PERMERROR] = "permerror",
};

const char *
dkim_res_name(enum dkim_res r)
{
	if ((unsigned)r < sizeof(res_names) / sizeof(res_names[0]))
		return res_names[r];
	return "?";
}

unsigned
dkim_pending(void)
{
	return dkim_live;
}

/* ---- libopendkim's resolver, disabled ------------------------------------ */

static int
no_dns_init(void **srv)
{
	*srv = NULL;
	return 0;
}

static void
no_dns_close(void *srv)
{
	(void)srv;
}

static int
no_dns_start(void *srv, int type, unsigned char *query, unsigned char *buf,
    size_t buflen, void **qh)
{
	(void)srv;
	(void)type;
	(void)query;
	(void)buf;
	(void)buflen;
	*qh = NULL;
	return -1;	/* DKIM_DNS_ERROR */
}

static int
no_dns_cancel(void *srv, void *qh)
{
	(void)srv;
	(void)qh;
	return 0;
}

static int
no_dns_wait(void *srv, void *qh, struct timeval *to, size_t *bytes,
    int *error, int *dnssec)
{
	(void)srv;
	(void)qh;
	(void)to;
	*bytes = 0;
	if (error != NULL)
		*error = 0;
	if (dnssec != NULL)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	return -1;	/* DKIM_DNS_ERROR */
}

static void
disable_dns(DKIM_LIB *lib)
{
	dkim_dns_set_init(lib, no_dns_init);
	dkim_dns_set_close(lib, no_dns_close);
	dkim_dns_set_query_start(lib, no_dns_start);
	dkim_dns_set_query_cancel(lib, no_dns_cancel);
	dkim_dns_set_query_waitreply(lib, no_dns_wait);
}

static int
set_opt(DKIM_LIB *lib, int opt, void *val, size_t len, const char *name,
    char *err, size_t errlen)
{
	if (dkim_options(lib, DKIM_OP_SETOPT, opt, val, len) == DKIM_STAT_OK)
		return 0;
	snprintf(err, errlen, "libopendkim refused option %s", name);
	return -1;
}

int
dkim_lib_init(char *err, size_t errlen)
{
	unsigned int flags, minbits = 0;
	const char *oversign[] = { "From", NULL };	/* copied */

	if (dkim_vlib != NULL)
		return 0;
	dkim_vlib = dkim_init(NULL, NULL);
	dkim_slib = dkim_init(NULL, NULL);
	if (dkim_vlib == NULL || dkim_slib == NULL) {
		snprintf(err, errlen, "dkim_init failed");
		goto fail;
	}
	if (!dkim_libfeature(dkim_vlib, DKIM_FEATURE_SHA256) ||
	    !dkim_libfeature(dkim_vlib, DKIM_FEATURE_ED25519) ||
	    !dkim_libfeature(dkim_slib, DKIM_FEATURE_OVERSIGN)) {
		snprintf(err, errlen, "libopendkim lacks sha256, ed25519 or "
		    "oversigning");
		goto fail;
	}
	flags = DKIM_LIBFLAGS_DELAYSIGPROC | DKIM_LIBFLAGS_BADSIGHANDLES;
	if (set_opt(dkim_vlib, DKIM_OPTS_FLAGS, &flags, sizeof(flags),
	    "FLAGS", err, errlen) != 0 ||
	    set_opt(dkim_vlib, DKIM_OPTS_MINKEYBITS, &minbits, sizeof(minbits),
	    "MINKEYBITS", err, errlen) != 0 ||
	    set_opt(dkim_slib, DKIM_OPTS_OVERSIGNHDRS, oversign,
	    sizeof(oversign[0]), "OVERSIGNHDRS", err, errlen) != 0)
		goto fail;
	(void)dkim_set_key_lookup(dkim_vlib, dkimv_key_lookup);
	(void)dkim_set_prescreen(dkim_vlib, dkimv_prescreen);
	disable_dns(dkim_vlib);
	disable_dns(dkim_slib);
	return 0;
fail:
	dkim_lib_shutdown();
	return -1;
}

void
dkim_lib_shutdown(void)
{
	if (dkim_vlib != NULL)
		dkim_close(dkim_vlib);
	if (dkim_slib != NULL)
		dkim_close(dkim_slib);
	dkim_vlib = dkim_slib = NULL;
}

/* ---- helpers ------------------------------------------------------------- */

void
dkimv_printable(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	if (dstlen == 0)
		return;
	for (i = 0; src != NULL && src[i] != '\0' && i + 1 < dstlen; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[i] = '\0';
}

bool
dkimv_dns_name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > 253 || name[0] == '.' || name[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

bool
dkimv_is_sig_field(const unsigned char *f, size_t len)
{
	static const char name[] = "DKIM-Signature";
	size_t n = sizeof(name) - 1, i = n;

	if (len < n || strncasecmp((const char *)f, name, n) != 0)
		return false;
	while (i < len && (f[i] == ' ' || f[i] == '\t'))
		i++;
	return i < len && f[i] == ':';
}

void
dkimv_fields(unsigned char *p, size_t len,
    void (*fn)(void *, unsigned char *, size_t), void *arg)
{
	size_t start = 0, i = 0;

	while (i < len) {
		unsigned char *cr = memchr(p + i, '\r', len - i);

		if (cr == NULL)
			break;
		i = (size_t)(cr - p);
		if (i + 1 < len && p[i + 1] == '\n' && (i + 2 == len ||
		    (p[i + 2] != ' ' && p[i + 2] != '\t'))) {
			if (i > start)
				fn(arg, p + start, i - start);
			i += 2;
			start = i;
		} else {
			i++;
		}
	}
	if (start < len)
		fn(arg, p + start, len - start);
}

void
dkimv_hdrscan_init(struct dkim_hdrscan *s)
{
	/* As if a line had just ended: a CRLF first is the empty line. */
	s->state = 2;
	s->done = false;
	s->header_len = 0;
}

size_t
dkimv_hdrscan_feed(struct dkim_hdrscan *s, const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len && !s->done; i++) {
		unsigned char c = p[i];

		switch (s->state) {
		case 0:
		case 2:
			s->state = c == '\r' ? s->state + 1 : 0;
			break;
		case 1:
			s->state = c == '\n' ? 2 : c == '\r' ? 1 : 0;
			break;
		case 3:
			if (c == '\n')
				s->done = true;
			else
				s->state = c == '\r' ? 1 : 0;
			break;
		}
		s->header_len++;
	}
	if (s->done)
		s->header_len -= 2;	/* the empty line */
	return i;
}
