/*
 * authres.c — building and reading Authentication-Results fields (see
 * authres.h).  Pure string work: no I/O, no allocation.
 *
 * Each result is rendered piece by piece into the fixed buffer and kept
 * only if all of it fits, so a field never holds half a result.  Pieces
 * after "method=result" are separated by a space, or by a fold ("\r\n\t")
 * when the line would pass AUTHRES_FOLD_AT; a result never splits inside
 * a value.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailauth/authres.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf.h"

#define AR_NAME		"Authentication-Results"
/* Room kept for "; none\r\n" and the NUL. */
#define AR_RESERVE	16
/* One rendered piece: a property with a quoted value, every octet
 * escaped. */
#define AR_PIECE_MAX	(2 * AUTHRES_VALUE_MAX + 64)

struct piece {
	char	 s[AR_PIECE_MAX];
	size_t	 len;
	bool	 full;
};

static void
p_raw(struct piece *p, const char *s, size_t n)
{
	if (p->full || p->len + n >= sizeof(p->s)) {
		p->full = true;
		return;
	}
	memcpy(p->s + p->len, s, n);
	p->len += n;
	p->s[p->len] = '\0';
}

static void
p_str(struct piece *p, const char *s)
{
	p_raw(p, s, strlen(s));
}

/* RFC 2045 §5.1 token: printable ASCII but SPACE and tspecials. */
static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c))
			return false;
	}
	return true;
}

/* A method, result, ptype or property name (RFC 8601 §2.2 Keyword). */
static bool
is_keyword(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* RFC 5322 §3.2.3 atext. */
static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 8601 §2.2 pvalue's [ [ local-part ] "@" ] domain-name, with a
 * dot-atom local part: written as is. */
static bool
is_address(const char *v)
{
	const char *at = strchr(v, '@'), *p;

	if (at == NULL || strchr(at + 1, '@') != NULL || at[1] == '\0')
		return false;
	for (p = v; p < at; p++)
		if (!is_atext((unsigned char)*p) && !(*p == '.' && p > v &&
		    p[-1] != '.' && p + 1 < at))
			return false;
	for (p = at + 1; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		    (*p == '.' && p[-1] != '.' && p[-1] != '@' && p[1] != '\0')))
			return false;
	return true;
}

/* A value: as a token if it is one (or, for a property, an address),
 * else a quoted-string. */
static void
p_value(struct piece *p, const char *v, bool property)
{
	size_t n = strnlen(v, AUTHRES_VALUE_MAX);

	if (n < AUTHRES_VALUE_MAX && (is_token(v) || (property &&
	    is_address(v)))) {
		p_str(p, v);
		return;
	}
	p_raw(p, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		char q[2] = { '\\', (char)c };

		if (c == '"' || c == '\\')
			p_raw(p, q, 2);
		else if (c < 0x20 || c >= 0x7f)
			p_raw(p, "?", 1);
		else
			p_raw(p, v + i, 1);
	}
	p_raw(p, "\"", 1);
}

/* A comment (RFC 5322 §3.2.2): ( ) \ quoted, the rest made printable. */
static void
p_comment(struct piece *p, const char *c)
{
	size_t n = strnlen(c, AUTHRES_VALUE_MAX);

	p_raw(p, "(", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)c[i];
		char q[2] = { '\\', (char)ch };

		if (ch == '(' || ch == ')' || ch == '\\')
			p_raw(p, q, 2);
		else if (ch < 0x20 || ch >= 0x7f)
			p_raw(p, "?", 1);
		else
			p_raw(p, c + i, 1);
	}
	p_raw(p, ")", 1);
}

/* ---- the field ------------------------------------------------------------ */

struct pos {
	size_t	 len, col;
	bool	 full;
};

static void
f_raw(struct authres *a, struct pos *w, const char *s, size_t n)
{
	if (w->full || w->len + n + AR_RESERVE > sizeof(a->buf)) {
		w->full = true;
		return;
	}
	memcpy(a->buf + w->len, s, n);
	w->len += n;
	for (size_t i = 0; i < n; i++)
		w->col = s[i] == '\n' ? 0 : w->col + 1;
}

/* A piece after a separator: a space, or a fold if the line is long. */
static void
f_piece(struct authres *a, struct pos *w, const struct piece *p)
{
	if (p->full) {
		w->full = true;
		return;
	}
	if (w->col + 1 + p->len > AUTHRES_FOLD_AT)
		f_raw(a, w, "\r\n\t", 3);
	else
		f_raw(a, w, " ", 1);
	f_raw(a, w, p->s, p->len);
}

void
authres_init(struct authres *a, const char *authserv_id)
{
	struct piece id = { .len = 0 };
	struct pos w = { 0, 0, false };

	memset(a, 0, sizeof(*a));
	if (authserv_id == NULL || authserv_id[0] == '\0' ||
	    strlen(authserv_id) > AUTHRES_ID_MAX) {
		a->bad_id = true;
		authserv_id = "localhost";
	}
	p_value(&id, authserv_id, false);
	f_raw(a, &w, AR_NAME ": ", sizeof(AR_NAME ": ") - 1);
	f_raw(a, &w, id.s, id.len);
	a->len = w.len;
	a->col = w.col;
	a->buf[a->len] = '\0';
}

int
authres_add(struct authres *a, const char *method, const char *result,
    const char *comment, const char *reason, const struct authres_prop *props,
    size_t nprops)
{
	struct pos w = { a->len, a->col, false };
	struct piece p;

	if (!is_keyword(method) || !is_keyword(result))
		return -1;
	f_raw(a, &w, ";\r\n\t", 4);
	f_raw(a, &w, method, strlen(method));
	f_raw(a, &w, "=", 1);
	f_raw(a, &w, result, strlen(result));
	if (comment != NULL && comment[0] != '\0') {
		memset(&p, 0, sizeof(p));
		p_comment(&p, comment);
		f_piece(a, &w, &p);
	}
	if (reason != NULL && reason[0] != '\0') {
		memset(&p, 0, sizeof(p));
		p_str(&p, "reason=");
		p_value(&p, reason, false);
		f_piece(a, &w, &p);
	}
	for (size_t i = 0; i < nprops; i++) {
		const struct authres_prop *pr = &props[i];

		if (pr->value == NULL || pr->value[0] == '\0')
			continue;
		if (!is_keyword(pr->ptype) || !is_keyword(pr->property))
			return -1;
		memset(&p, 0, sizeof(p));
		p_str(&p, pr->ptype);
		p_str(&p, ".");
		p_str(&p, pr->property);
		p_str(&p, "=");
		p_value(&p, pr->value, true);
		f_piece(a, &w, &p);
	}
	if (w.full)
		return -1;
	a->len = w.len;
	a->col = w.col;
	a->buf[a->len] = '\0';
	a->nres++;
	return 0;
}

const char *
authres_field(struct authres *a, size_t *len)
{
	size_t n = a->len;

	/* AR_RESERVE keeps room for these. */
	if (a->nres == 0) {
		memcpy(a->buf + n, "; none", 6);
		n += 6;
	}
	memcpy(a->buf + n, "\r\n", 3);
	if (len != NULL)
		*len = n + 2;
	return a->buf;
}

/* ---- results of our modules ----------------------------------------------- */

int
authres_add_spf(struct authres *a, const struct spf_result *r)
{
	struct authres_prop pr[] = {
		{ "smtp", "mailfrom", r->domain },
	};

	return authres_add(a, "spf", spf_kind_name(r->kind), NULL,
	    r->kind == SPF_KIND_PASS ? NULL : r->reason, pr, 1);
}

int
authres_add_dkim_sig(struct authres *a, const struct dkim_sig_result *s)
{
	char b[AUTHRES_HEADER_B_LEN + 1];
	struct authres_prop pr[] = {
		{ "header", "d", s->domain },
		{ "header", "i", s->identity },
		{ "header", "s", s->selector },
		{ "header", "a", s->algorithm },
		{ "header", "b", b },
	};

	snprintf(b, sizeof(b), "%s", s->b);
	return authres_add(a, "dkim", dkim_res_name(s->res), NULL,
	    s->res == DKIM_RES_PASS ? NULL : s->reason, pr,
	    sizeof(pr) / sizeof(pr[0]));
}

int
authres_add_dkim(struct authres *a, const struct dkim_verify_result *r)
{
	int rc = 0;

	if (r->nsigs == 0)
		return authres_add(a, "dkim", dkim_res_name(r->res), NULL,
		    r->res == DKIM_RES_NONE ? NULL : r->reason, NULL, 0);
	for (size_t i = 0; i < r->nsigs; i++)
		if (authres_add_dkim_sig(a, &r->sig[i]) != 0)
			rc = -1;
	return rc;
}

int
authres_add_dmarc(struct authres *a, const struct dmarc_result *r)
{
	char comment[96];
	struct authres_prop pr[] = {
		{ "header", "from", r->from_domain },
	};

	comment[0] = '\0';
	if (r->res == DMARC_RES_PASS || r->res == DMARC_RES_FAIL)
		snprintf(comment, sizeof(comment), "p=%s sp=%s dis=%s",
		    dmarc_policy_name(r->p), dmarc_policy_name(r->sp),
		    dmarc_policy_name(r->disposition));
	return authres_add(a, "dmarc", dmarc_res_name(r->res), comment,
	    r->res == DMARC_RES_PASS || r->res == DMARC_RES_NONE ? NULL :
	    r->reason, pr, 1);
}

int
authres_add_iprev(struct authres *a, const char *result, const char *ip,
    const char *ptr_name)
{
	struct authres_prop pr[] = {
		{ "policy", "iprev", ip },
	};

	return authres_add(a, "iprev", result, ptr_name, NULL, pr, 1);
}

/* ---- reading a field's authserv-id -------------------------------------- */

/* Skip white space, folds and (nested) comments; false if a comment is
 * unterminated or too deep. */
static bool
skip_cfws(const char *f, size_t len, size_t *i)
{
	unsigned depth = 0;

	while (*i < len) {
		char c = f[*i];

		if (depth == 0 && (c == ' ' || c == '\t' || c == '\r' ||
		    c == '\n')) {
			(*i)++;
		} else if (c == '(') {
			if (++depth > AUTHRES_DEPTH_MAX)
				return false;
			(*i)++;
		} else if (depth > 0 && c == ')') {
			depth--;
			(*i)++;
		} else if (depth > 0 && c == '\\') {
			*i += 2;
		} else if (depth > 0) {
			(*i)++;
		} else {
			break;
		}
	}
	return depth == 0 && *i <= len;
}

bool
authres_claims_id(const char *f, size_t len, const char *authserv_id)
{
	char id[AUTHRES_ID_MAX + 1];
	size_t i = 0, n = 0, nlen = sizeof(AR_NAME) - 1;

	if (authserv_id == NULL || authserv_id[0] == '\0')
		return false;
	if (len >= nlen && strncasecmp(f, AR_NAME, nlen) == 0) {
		i = nlen;
		while (i < len && (f[i] == ' ' || f[i] == '\t'))
			i++;
		if (i >= len || f[i] != ':')
			return false;
		i++;
	}
	if (!skip_cfws(f, len, &i) || i >= len)
		return false;
	if (f[i] == '"') {
		for (i++; i < len && f[i] != '"'; i++) {
			if (f[i] == '\r' || f[i] == '\n')
				continue;	/* a fold inside the quotes */
			if (f[i] == '\\' && ++i >= len)
				return false;
			if (n == AUTHRES_ID_MAX)
				return false;
			id[n++] = f[i];
		}
		if (i >= len)
			return false;	/* unterminated */
	} else {
		for (; i < len; i++) {
			unsigned char c = (unsigned char)f[i];

			if (c <= 0x20 || c >= 0x7f || c == ';' || c == '(')
				break;
			if (n == AUTHRES_ID_MAX)
				return false;
			id[n++] = (char)c;
		}
	}
	id[n] = '\0';
	return n > 0 && strcasecmp(id, authserv_id) == 0;
}
