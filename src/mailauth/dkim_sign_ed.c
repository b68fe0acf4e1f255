/*
 * dkim_sign_ed.c — Ed25519 DKIM signatures (RFC 8463) with libopendkim's
 * canonicalization and OpenSSL's signature.
 *
 * Why not libopendkim's signer: its dkim_free() releases the loaded key
 * only for RSA (struct dkim_crypto, the BIO and the EVP_PKEY of every
 * Ed25519 signature leak, some 600 octets each), and with "simple" header
 * canonicalization it folds the field differently when it hashes it and
 * when it writes it (such signatures fail everywhere).
 *
 * How: libopendkim's verifier hashes what a verifier would, so we let it
 * hash our signature before it exists, in two passes over two handles of
 * the verify library handle (with no user context its callbacks fetch no
 * key: see dkim_verify_run.c):
 *
 *   1. a DKIM-Signature field with our a=, c=, d=, s= and placeholder bh=
 *      and b=, then the message's fields, then the body: dkim_eom() fails
 *      the signature (no key), but dkim_sig_gethashes() gives the body
 *      hash of our canonicalization;
 *   2. the real field (t=, h=, bh=, and b= with a placeholder value, which
 *      canonicalization strips as it will strip the real one), then the
 *      message's fields and no body: the header hash.
 *
 * The header hash is signed with EVP_DigestSign() (PureEdDSA over the
 * SHA-256 digest, RFC 8463 §3).  We write the field ourselves, so it is
 * folded the same way in pass 2 and in the message; b= comes last.
 *
 * h= names every field of the message whose name is in the list to sign,
 * top to bottom, once per occurrence (as libopendkim's signer does), and
 * From once more (oversigning, RFC 6376 §8.15).  The message's own
 * DKIM-Signature fields are given to neither pass (they are never signed:
 * dkim_sign.c refuses the name).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "mailauth/dkim_int.h"
#include "util/xmalloc.h"

/* Valid base64 of the right sizes, replaced before anything is signed. */
#define ED_BH_PLACEHOLDER	"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define ED_B_PLACEHOLDER	"AAAA"
#define ED_FOLD_AT		76
/* The field: tags, and h= of DKIM_SIGN_FIELDS_MAX names of at most
 * DKIM_HEADER_NAME_MAX octets, each with ":" and a fold. */
#define ED_FIELD_MAX		(1024 + DKIM_IDENTITY_MAX + \
			    DKIM_SIGN_FIELDS_MAX * (DKIM_HEADER_NAME_MAX + 4))
#define ED_HASH_LEN		32
#define ED_SIG_LEN		64

struct ed_feed {
	DKIM		*dkim;
	bool		 failed;
};

static void
feed_field(void *arg, unsigned char *f, size_t len)
{
	struct ed_feed *e = arg;
	DKIM_STAT st;

	if (e->failed || dkimv_is_sig_field(f, len))
		return;
	st = dkim_header(e->dkim, f, len);
	if (st != DKIM_STAT_OK && st != DKIM_STAT_SYNTAX)
		e->failed = true;
}

/* A verify handle fed field (our signature) and the message's header. */
static DKIM *
hash_handle(const char *field, size_t flen, unsigned char *hdr, size_t hdrlen)
{
	struct ed_feed e = { NULL, false };
	DKIM_STAT st;

	if ((e.dkim = dkim_verify(dkim_vlib, (const unsigned char *)"ed25519",
	    NULL, &st)) == NULL)
		return NULL;
	if (dkim_header(e.dkim, (unsigned char *)field, flen) != DKIM_STAT_OK)
		e.failed = true;
	else
		dkimv_fields(hdr, hdrlen, feed_field, &e);
	if (e.failed || dkim_eoh(e.dkim) != DKIM_STAT_OK) {
		(void)dkim_free(e.dkim);
		return NULL;
	}
	return e.dkim;
}

/* After dkim_eom(): our signature's header and body hashes. */
static int
hashes(DKIM *d, unsigned char *hh, unsigned char *bh)
{
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0;
	void *h, *b;
	size_t hl, bl;

	(void)dkim_eom(d, NULL);
	/* Only "no key" means it was canonicalized and went no further;
	 * any other error may leave no hash to read. */
	if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK || nsigs != 1 ||
	    dkim_sig_geterror(sigs[0]) != DKIM_SIGERROR_NOKEY ||
	    dkim_sig_gethashes(sigs[0], &h, &hl, &b, &bl) != DKIM_STAT_OK ||
	    hl != ED_HASH_LEN || bl != ED_HASH_LEN)
		return -1;
	memcpy(hh, h, ED_HASH_LEN);
	memcpy(bh, b, ED_HASH_LEN);
	return 0;
}

static const char *
canon_name(enum dkim_canon c)
{
	return c == DKIM_C_SIMPLE ? "simple" : "relaxed";
}

int
dkims_ed_begin(struct dkim_sign_one *o, unsigned char *hdr, size_t hdrlen,
    char *err, size_t errlen)
{
	char field[DKIM_DOMAIN_MAX + DKIM_SELECTOR_MAX + 256];
	int n = snprintf(field, sizeof(field), DKIM_FIELD_PREFIX "v=1; "
	    "a=ed25519-sha256; c=%s/%s; d=%s; s=%s; h=From; bh="
	    ED_BH_PLACEHOLDER "; b=" ED_B_PLACEHOLDER, canon_name(o->hc),
	    canon_name(o->bc), o->domain, o->selector);

	if (n < 0 || (size_t)n >= sizeof(field) ||
	    (o->dkim = hash_handle(field, (size_t)n, hdr, hdrlen)) == NULL) {
		snprintf(err, errlen, "libopendkim: cannot hash the message");
		return -1;
	}
	return 0;
}

int
dkims_ed_body(struct dkim_sign_one *o, unsigned char *p, size_t len,
    char *err, size_t errlen)
{
	if (dkim_body(o->dkim, p, len) == DKIM_STAT_OK)
		return 0;
	snprintf(err, errlen, "libopendkim: cannot hash the body");
	return -1;
}

/* ---- the field ------------------------------------------------------------- */

struct fbuf {
	char	*p;
	size_t	 len, col;
	bool	 full;
};

static void
f_raw(struct fbuf *f, const char *s, size_t n)
{
	if (f->full || f->len + n >= ED_FIELD_MAX) {
		f->full = true;
		return;
	}
	memcpy(f->p + f->len, s, n);
	f->len += n;
	f->p[f->len] = '\0';
	for (size_t i = 0; i < n; i++)
		f->col = s[i] == '\n' ? 0 : f->col + (s[i] == '\t' ? 8 : 1);
}

/* A tag, after a space or a fold. */
static void
f_tag(struct fbuf *f, const char *s)
{
	size_t n = strlen(s);

	f_raw(f, f->col + 1 + n > ED_FOLD_AT ? "\r\n\t" : " ",
	    f->col + 1 + n > ED_FOLD_AT ? 3 : 1);
	f_raw(f, s, n);
}

struct hlist {
	struct fbuf	*f;
	const char	*const *names;
	unsigned	 n;
};

/* One more h= name: "h=" first, then ":" and a fold when needed. */
static void
h_name(struct hlist *h, const char *name, size_t len)
{
	if (h->n++ == 0) {
		f_raw(h->f, " h=", 3);
	} else {
		f_raw(h->f, ":", 1);
		if (h->f->col + len + 1 > ED_FOLD_AT)
			f_raw(h->f, "\r\n\t ", 4);
	}
	f_raw(h->f, name, len);
}

static void
h_field(void *arg, unsigned char *field, size_t len)
{
	struct hlist *h = arg;
	size_t n = 0;

	while (n < len && field[n] != ':' && field[n] != ' ' &&
	    field[n] != '\t')
		n++;
	if (n == 0 || n > DKIM_HEADER_NAME_MAX)
		return;
	for (const char *const *s = h->names; *s != NULL; s++) {
		if (strlen(*s) == n && strncasecmp(*s, (const char *)field,
		    n) == 0) {
			if (h->n >= DKIM_SIGN_FIELDS_MAX)
				h->f->full = true;
			else
				h_name(h, (const char *)field, n);
			return;
		}
	}
}

/* The field up to "b=" with a placeholder value (*bpos: where it starts). */
static int
build(struct dkim_sign_one *o, unsigned char *hdr, size_t hdrlen,
    const char *bh64, struct fbuf *f, size_t *bpos)
{
	struct hlist h = { f, o->names, 0 };
	char tag[DKIM_IDENTITY_MAX + 64];

	f_raw(f, DKIM_FIELD_PREFIX "v=1; a=ed25519-sha256;", sizeof(
	    DKIM_FIELD_PREFIX "v=1; a=ed25519-sha256;") - 1);
	snprintf(tag, sizeof(tag), "c=%s/%s;", canon_name(o->hc),
	    canon_name(o->bc));
	f_tag(f, tag);
	snprintf(tag, sizeof(tag), "d=%s;", o->domain);
	f_tag(f, tag);
	snprintf(tag, sizeof(tag), "s=%s;", o->selector);
	f_tag(f, tag);
	snprintf(tag, sizeof(tag), "t=%lld;", (long long)time(NULL));
	f_tag(f, tag);
	if (o->identity[0] != '\0') {
		snprintf(tag, sizeof(tag), "i=%s;", o->identity);
		f_tag(f, tag);
	}
	f_raw(f, "\r\n\t", 3);
	dkimv_fields(hdr, hdrlen, h_field, &h);
	h_name(&h, "From", 4);
	f_raw(f, ";", 1);
	snprintf(tag, sizeof(tag), "bh=%s;", bh64);
	f_tag(f, tag);
	f_raw(f, "\r\n\tb=", 5);
	*bpos = f->len;
	f_raw(f, ED_B_PLACEHOLDER, sizeof(ED_B_PLACEHOLDER) - 1);
	return f->full ? -1 : 0;
}

char *
dkims_ed_finish(struct dkim_sign_one *o, unsigned char *hdr, size_t hdrlen,
    size_t *len, char *err, size_t errlen)
{
	unsigned char hh[ED_HASH_LEN], bh[ED_HASH_LEN], sig[ED_SIG_LEN];
	char bh64[2 * ED_HASH_LEN], sig64[2 * ED_SIG_LEN];
	struct fbuf f = { xmalloc(ED_FIELD_MAX), 0, 0, false };
	size_t siglen = sizeof(sig), bpos = 0;
	EVP_MD_CTX *md = NULL;
	DKIM *d2 = NULL;

	err[0] = '\0';
	if (hashes(o->dkim, hh, bh) != 0) {
		snprintf(err, errlen, "libopendkim: no body hash");
		goto fail;
	}
	EVP_EncodeBlock((unsigned char *)bh64, bh, ED_HASH_LEN);
	if (build(o, hdr, hdrlen, bh64, &f, &bpos) != 0) {
		snprintf(err, errlen, "too many header fields to sign");
		goto fail;
	}
	if ((d2 = hash_handle(f.p, f.len, hdr, hdrlen)) == NULL ||
	    hashes(d2, hh, bh) != 0) {
		snprintf(err, errlen, "libopendkim: no header hash");
		goto fail;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, NULL, NULL, o->key->pkey) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, hh, sizeof(hh)) != 1 ||
	    siglen != ED_SIG_LEN) {
		snprintf(err, errlen, "Ed25519 signature failed");
		goto fail;
	}
	EVP_EncodeBlock((unsigned char *)sig64, sig, ED_SIG_LEN);
	f.len = bpos;
	f_raw(&f, sig64, strlen(sig64));
	f_raw(&f, "\r\n", 2);
	if (f.full)
		goto fail;
	EVP_MD_CTX_free(md);
	(void)dkim_free(d2);
	*len = f.len;
	return f.p;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "signature field too long");
	EVP_MD_CTX_free(md);
	if (d2 != NULL)
		(void)dkim_free(d2);
	free(f.p);
	return NULL;
}
