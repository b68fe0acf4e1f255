/*
 * dkim_verify_run.c — a DKIM verifier's jobs on the CPU pool, and the
 * libopendkim callbacks they trigger (see dkim_verify.c for the loop side).
 *
 * The header block is split into fields here (dkimv_fields()), not by
 * dkim_chunk(): so that DKIM-Signature fields past DKIM_SIGS_MAX never
 * reach libopendkim (it sets up a canonicalization, and hashes the body,
 * for each signature before any callback could ignore it).  A field
 * libopendkim refuses as malformed is skipped, as dkim_chunk() does with
 * BADSIGHANDLES.
 *
 * Key lookups: the prescreen callback (inside dkim_eoh()) names the keys;
 * the loop fetches them; the key lookup callback (inside dkim_eom()) hands
 * libopendkim the record, after our checks of its length and key size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mailauth/dkim_int.h"
#include "util/xmalloc.h"

/* A p= value: 4096-bit RSA is about 740 base64 octets; the record cap
 * bounds what we decode anyway. */
#define DKIM_P_MAX		(2 * DNS_TXT_MAX)

/* The worker reads only job fields: the loop may set its own error
 * meanwhile (job_done() merges both). */
static bool
going(const struct dkim_verify *v)
{
	return v->jerr_res == DKIM_RES_NONE && !v->jnosig &&
	    !atomic_load(&v->stopping);
}

static void
fail(struct dkim_verify *v, enum dkim_res res, const char *what)
{
	const char *why = v->dkim != NULL ? dkim_geterror(v->dkim) : NULL;

	if (v->jerr_res != DKIM_RES_NONE)
		return;
	v->jerr_res = res;
	snprintf(v->jerr, sizeof(v->jerr), "%s%s%s", what,
	    why != NULL && why[0] != '\0' ? ": " : "", why != NULL ? why : "");
	dkimv_printable(v->jerr, sizeof(v->jerr), v->jerr);
}

/* ---- header and body -------------------------------------------------------- */

static void
feed_field(void *arg, unsigned char *f, size_t len)
{
	struct dkim_verify *v = arg;
	DKIM_STAT st;

	if (!going(v))
		return;
	if (dkimv_is_sig_field(f, len) && ++v->nsigfields > DKIM_SIGS_MAX) {
		v->skipped++;
		return;
	}
	st = dkim_header(v->dkim, f, len);
	if (st != DKIM_STAT_OK && st != DKIM_STAT_SYNTAX)
		fail(v, DKIM_RES_TEMPERROR, "libopendkim header");
}

static void
feed_header(struct dkim_verify *v, unsigned char *p, size_t len)
{
	DKIM_STAT st;

	dkimv_fields(p, len, feed_field, v);
	if (!going(v))
		return;
	st = dkim_eoh(v->dkim);
	v->eoh_done = true;
	if (st == DKIM_STAT_NOSIG)
		v->jnosig = true;
	else if (st != DKIM_STAT_OK)
		fail(v, DKIM_RES_PERMERROR, "header");
}

static void
feed_body(struct dkim_verify *v, unsigned char *p, size_t len)
{
	if (len > 0 && dkim_body(v->dkim, p, len) != DKIM_STAT_OK)
		fail(v, DKIM_RES_TEMPERROR, "libopendkim body");
}

/* The body octets past the copies, from the spool file. */
static void
feed_tail(struct dkim_verify *v)
{
	uint64_t off = v->tail_from;

	if (v->fd < 0) {
		fail(v, DKIM_RES_TEMPERROR, "no spool file to read");
		return;
	}
	if (v->rbuf == NULL)
		v->rbuf = xmalloc(DKIM_READ_SIZE);
	while (off < v->tail_to && going(v)) {
		size_t want = v->tail_to - off < DKIM_READ_SIZE ?
		    (size_t)(v->tail_to - off) : DKIM_READ_SIZE;
		ssize_t n = pread(v->fd, v->rbuf, want, (off_t)(v->base + off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fail(v, DKIM_RES_TEMPERROR, n < 0 ? "spool file read "
			    "error" : "spool file shorter than the message");
			return;
		}
		feed_body(v, v->rbuf, (size_t)n);
		off += (uint64_t)n;
		v->reread += (uint64_t)n;
	}
}

static void
run_data(struct dkim_verify *v)
{
	if (v->jhdr != NULL && going(v))
		feed_header(v, v->jhdr, v->jhdrlen);
	for (struct dkim_chunk *c = v->batch; c != NULL && going(v);
	    c = c->next)
		feed_body(v, c->data, c->len);
	if (v->jfinal && v->tail_to > v->tail_from && going(v))
		feed_tail(v);
}

/* ---- keys ------------------------------------------------------------------ */

static struct dkim_keyq *
find_key(struct dkim_verify *v, const char *d, const char *s)
{
	if (d == NULL || s == NULL)
		return NULL;
	for (size_t i = 0; i < v->nkeys; i++)
		if (strcasecmp(v->keys[i].domain, d) == 0 &&
		    strcasecmp(v->keys[i].selector, s) == 0)
			return &v->keys[i];
	return NULL;
}

DKIM_CBSTAT
dkimv_prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	struct dkim_verify *v = dkim_get_user_context(dkim);

	if (v == NULL)		/* a hashing handle of dkim_sign_ed.c */
		return DKIM_CBSTAT_CONTINUE;
	for (int i = 0; i < nsigs; i++) {
		const char *d = (const char *)dkim_sig_getdomain(sigs[i]);
		const char *s = (const char *)dkim_sig_getselector(sigs[i]);
		struct dkim_keyq *k;

		if (i >= DKIM_SIGS_MAX) {
			dkim_sig_ignore(sigs[i]);
			continue;
		}
		/* Syntax errors are known already: no key needed. */
		if (dkim_sig_geterror(sigs[i]) != DKIM_SIGERROR_UNKNOWN ||
		    d == NULL || s == NULL || strlen(d) > DKIM_DOMAIN_MAX ||
		    strlen(s) > DKIM_SELECTOR_MAX || find_key(v, d, s) != NULL ||
		    v->nkeys == DKIM_SIGS_MAX)
			continue;
		k = &v->keys[v->nkeys++];
		snprintf(k->domain, sizeof(k->domain), "%s", d);
		snprintf(k->selector, sizeof(k->selector), "%s", s);
	}
	return DKIM_CBSTAT_CONTINUE;
}

/* The tag's value in a tag-list (RFC 6376 §3.2), white space removed:
 * 0, or -1 if absent or longer than outlen - 1. */
static int
tag_value(const char *rec, const char *tag, char *out, size_t outlen)
{
	size_t tlen = strlen(tag);
	const char *p = rec;

	while (*p != '\0') {
		const char *end = strchr(p, ';');
		size_t o = 0;

		if (end == NULL)
			end = p + strlen(p);
		while (p < end && strchr(" \t\r\n", *p) != NULL)
			p++;
		if ((size_t)(end - p) > tlen && strncmp(p, tag, tlen) == 0) {
			const char *q = p + tlen;

			while (q < end && strchr(" \t\r\n", *q) != NULL)
				q++;
			if (q < end && *q == '=') {
				for (q++; q < end; q++) {
					if (strchr(" \t\r\n", *q) != NULL)
						continue;
					if (o + 1 >= outlen)
						return -1;
					out[o++] = *q;
				}
				out[o] = '\0';
				return 0;
			}
		}
		p = *end == ';' ? end + 1 : end;
	}
	return -1;
}

/* The key's size: 256 for Ed25519 (*rsa false), an RSA key's bits, or 0
 * if the record holds no key we can decode (libopendkim then says why). */
static unsigned
key_bits(const char *rec, bool *rsa)
{
	char k[32], *p = xmalloc(DKIM_P_MAX);
	unsigned char *der = NULL;
	const unsigned char *q;
	unsigned bits = 0;
	EVP_PKEY *key;
	int n;
	size_t plen;

	*rsa = false;
	if (tag_value(rec, "k", k, sizeof(k)) == 0 && strcmp(k, "rsa") != 0) {
		if (strcmp(k, "ed25519") == 0)
			bits = 256;	/* RFC 8463 §4: the raw 32-octet key */
		goto out;
	}
	*rsa = true;
	if (tag_value(rec, "p", p, DKIM_P_MAX) != 0 || (plen = strlen(p)) == 0 ||
	    plen % 4 != 0)
		goto out;
	der = xmalloc(plen);
	if ((n = EVP_DecodeBlock(der, (unsigned char *)p, (int)plen)) <= 0)
		goto out;
	q = der;
	if ((key = d2i_PUBKEY(NULL, &q, n)) != NULL) {
		bits = (unsigned)EVP_PKEY_get_bits(key);
		EVP_PKEY_free(key);
	}
out:
	free(der);
	free(p);
	return bits;
}

static DKIM_CBSTAT
refuse(struct dkim_keyq *k, enum dkim_res res, const char *why)
{
	k->refused = res;
	snprintf(k->why, sizeof(k->why), "%s", why);
	return DKIM_CBSTAT_NOTFOUND;
}

DKIM_CBSTAT
dkimv_key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, unsigned char *buf,
    size_t buflen)
{
	struct dkim_verify *v = dkim_get_user_context(dkim);
	struct dkim_keyq *k;
	char why[DKIM_REASON_MAX];
	bool rsa;
	size_t len;

	if (v == NULL)		/* a hashing handle of dkim_sign_ed.c */
		return DKIM_CBSTAT_NOTFOUND;
	k = find_key(v, (const char *)dkim_sig_getdomain(sig),
	    (const char *)dkim_sig_getselector(sig));
	if (k == NULL || !k->done)
		return DKIM_CBSTAT_NOTFOUND;
	if (k->refused != DKIM_RES_NONE)
		return DKIM_CBSTAT_NOTFOUND;
	switch (k->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		return DKIM_CBSTAT_NOTFOUND;	/* libopendkim: no key */
	default:
		snprintf(why, sizeof(why), "key lookup: %s",
		    dns_status_name(k->status));
		return refuse(k, DKIM_RES_TEMPERROR, why);
	}
	if (k->record == NULL)
		return DKIM_CBSTAT_NOTFOUND;
	len = strlen(k->record);
	k->bits = key_bits(k->record, &rsa);
	if (rsa && k->bits != 0 && k->bits < v->opts.min_key_bits) {
		snprintf(why, sizeof(why), "key too small (%u bits)", k->bits);
		return refuse(k, DKIM_RES_POLICY, why);
	}
	if (rsa && k->bits > DKIM_KEY_BITS_MAX) {
		snprintf(why, sizeof(why), "key too large (%u bits)", k->bits);
		return refuse(k, DKIM_RES_POLICY, why);
	}
	if (len > DKIM_KEY_RECORD_MAX || len >= buflen) {
		snprintf(why, sizeof(why), "key record longer than %d octets",
		    DKIM_KEY_RECORD_MAX);
		return refuse(k, DKIM_RES_POLICY, why);
	}
	memcpy(buf, k->record, len + 1);
	dkim_sig_setdnssec(sig, k->secure ? DKIM_DNSSEC_SECURE :
	    DKIM_DNSSEC_INSECURE);
	return DKIM_CBSTAT_CONTINUE;
}

/* ---- results ---------------------------------------------------------------- */

static enum dkim_res
res_of_error(int err)
{
	switch (err) {
	case DKIM_SIGERROR_BADSIG:
	case DKIM_SIGERROR_TOOLARGE_L:
		return DKIM_RES_FAIL;
	case DKIM_SIGERROR_KEYFAIL:
		return DKIM_RES_TEMPERROR;
	case DKIM_SIGERROR_NOKEY:
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_MULTIREPLY:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_KEYREVOKED:
	case DKIM_SIGERROR_KEYDECODE:
		return DKIM_RES_PERMERROR;
	case DKIM_SIGERROR_KEYTOOSMALL:
	case DKIM_SIGERROR_EXPIRED:
	case DKIM_SIGERROR_FUTURE:
		return DKIM_RES_POLICY;
	default:
		/* RFC 8601 §2.7.1: syntax errors and what could not be
		 * processed are "neutral". */
		return DKIM_RES_NEUTRAL;
	}
}

static void
sig_result(struct dkim_verify *v, DKIM_SIGINFO *sig, struct dkim_sig_result *o)
{
	const char *d = (const char *)dkim_sig_getdomain(sig);
	const char *s = (const char *)dkim_sig_getselector(sig);
	const char *a = (const char *)dkim_sig_gettagvalue(sig, 0,
	    (unsigned char *)"a");
	const char *b = (const char *)dkim_sig_gettagvalue(sig, 0,
	    (unsigned char *)"b");
	struct dkim_keyq *k = find_key(v, d, s);
	unsigned flags = dkim_sig_getflags(sig);
	int err = dkim_sig_geterror(sig);
	ssize_t msglen = 0, canonlen = 0, signlen = -1;
	char ident[DKIM_IDENTITY_MAX + 1];
	size_t nb = 0;
	dkim_alg_t alg = DKIM_SIGN_UNKNOWN;

	memset(o, 0, sizeof(*o));
	dkimv_printable(o->domain, sizeof(o->domain), d);
	dkimv_printable(o->selector, sizeof(o->selector), s);
	dkimv_printable(o->algorithm, sizeof(o->algorithm), a);
	if (d != NULL && dkim_sig_getidentity(v->dkim, sig,
	    (unsigned char *)ident, sizeof(ident)) == DKIM_STAT_OK)
		dkimv_printable(o->identity, sizeof(o->identity), ident);
	for (; b != NULL && *b != '\0' && nb < DKIM_HEADER_B_MAX; b++)
		if (strchr(" \t\r\n", *b) == NULL)
			o->b[nb++] = *b;
	dkimv_printable(o->b, sizeof(o->b), o->b);
	o->body_length = -1;
	if (dkim_sig_getcanonlen(v->dkim, sig, &msglen, &canonlen,
	    &signlen) == DKIM_STAT_OK && signlen >= 0) {
		/* The signed length is of the canonicalized body, which is
		 * shorter than what arrived (trailing empty lines, white space):
		 * whether octets follow it is not known here. */
		o->body_length = signlen;
		o->partial = true;
	}
	o->testing = (flags & DKIM_SIGFLAG_TESTKEY) != 0;
	o->dnssec = dkim_sig_getdnssec(sig) == DKIM_DNSSEC_SECURE;
	o->key_bits = k != NULL ? k->bits : 0;
	if (k != NULL && k->refused != DKIM_RES_NONE) {
		o->res = k->refused;
		snprintf(o->reason, sizeof(o->reason), "%s", k->why);
	} else if ((flags & DKIM_SIGFLAG_PASSED) != 0 &&
	    dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH) {
		if (dkim_sig_getsignalg(sig, &alg) == DKIM_STAT_OK &&
		    alg == DKIM_SIGN_RSASHA1 && !v->opts.allow_sha1) {
			o->res = DKIM_RES_POLICY;
			snprintf(o->reason, sizeof(o->reason), "rsa-sha1 is not "
			    "accepted (RFC 8301)");
		} else {
			o->res = DKIM_RES_PASS;
			snprintf(o->reason, sizeof(o->reason),
			    "signature verified");
		}
	} else if (err == DKIM_SIGERROR_UNKNOWN || err == DKIM_SIGERROR_OK) {
		o->res = DKIM_RES_TEMPERROR;
		snprintf(o->reason, sizeof(o->reason), "not evaluated");
	} else {
		o->res = res_of_error(err);
		if (err == DKIM_SIGERROR_BADSIG)
			snprintf(o->reason, sizeof(o->reason), "%s",
			    dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH ?
			    "body hash did not verify" :
			    "signature did not verify");
		else
			dkimv_printable(o->reason, sizeof(o->reason),
			    dkim_sig_geterrorstr(err));
	}
}

static void
run_eom(struct dkim_verify *v)
{
	struct dkim_verify_result *r = &v->res;
	DKIM_SIGINFO **sigs = NULL;
	_Bool testkey = 0;
	int nsigs = 0;
	DKIM_STAT st;

	memset(r, 0, sizeof(*r));
	st = dkim_eom(v->dkim, &testkey);
	if (st == DKIM_STAT_NOSIG) {
		v->jnosig = true;
		return;
	}
	if (dkim_getsiglist(v->dkim, &sigs, &nsigs) != DKIM_STAT_OK ||
	    nsigs <= 0) {
		fail(v, DKIM_RES_TEMPERROR, "libopendkim end of message");
		return;
	}
	for (int i = 0; i < nsigs && r->nsigs < DKIM_SIGS_MAX; i++)
		sig_result(v, sigs[i], &r->sig[r->nsigs++]);
	/* The best one speaks for the message: a pass if any. */
	r->res = r->sig[0].res;
	snprintf(r->reason, sizeof(r->reason), "%s", r->sig[0].reason);
	for (size_t i = 0; i < r->nsigs; i++) {
		if (r->sig[i].res == DKIM_RES_PASS) {
			r->res = DKIM_RES_PASS;
			snprintf(r->reason, sizeof(r->reason), "%s", "signature "
			    "verified");
			break;
		}
	}
}

void
dkimv_run(struct work *w)
{
	struct dkim_verify *v = (struct dkim_verify *)w;

	if (!going(v))
		return;
	if (v->kind == DKIM_JOB_EOM)
		run_eom(v);
	else
		run_data(v);
}
