/*
 * authres.h — the Authentication-Results header field (RFC 8601): built
 * from the SPF, DKIM, DMARC and iprev results, and recognized when an
 * incoming one claims our authserv-id (§5: such fields are removed).
 *
 * DESCRIPTION
 *	authres_init() with our authserv-id, one authres_add_*() per method
 *	result (several DKIM signatures give several "dkim=" results), then
 *	authres_field() gives the whole field, folded one result per line,
 *	ready to prepend:
 *
 *	  Authentication-Results: mx.example.org;
 *	  	spf=pass smtp.mailfrom=example.com;
 *	  	dkim=pass header.d=example.com header.s=sel
 *	  	 header.a=rsa-sha256 header.b="abc/defg";
 *	  	dmarc=pass (p=reject dis=none) header.from=example.com
 *
 *	authres_claims_id() reads the authserv-id of an existing field.
 *
 * STANDARDS
 *	RFC 8601 §2.2 (syntax), §2.3 (authserv-id), §2.7 (methods, results,
 *	properties: smtp.mailfrom, header.d, header.i, header.s, header.a,
 *	header.from, policy.iprev), §5 (removing fields that claim our id),
 *	RFC 6008 (header.b), RFC 7489 §11.2 (dmarc), RFC 5322 §3.2 (quoting,
 *	comments, folding).
 *
 * RESOURCE CONTROLS
 *	AUTHRES_FIELD_MAX octets per field (a result that would not fit is
 *	left out and authres_add_*() returns -1), AUTHRES_VALUE_MAX per
 *	property value and reason, AUTHRES_DEPTH_MAX nested comments when
 *	reading a field.
 *
 * SECURITY
 *	Every value is written as an RFC 5322 token or a quoted string with
 *	'"' and '\' escaped; comments escape '(' ')' '\'; octets outside
 *	printable ASCII become '?'.  So nothing from a message or from DNS
 *	can end the field, start a new result or inject a header.
 */
#ifndef LUASMTPD_AUTHRES_H
#define LUASMTPD_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

struct spf_result;
struct dkim_sig_result;
struct dkim_verify_result;
struct dmarc_result;

#define AUTHRES_FIELD_MAX	8192
#define AUTHRES_VALUE_MAX	256
#define AUTHRES_ID_MAX		255
#define AUTHRES_DEPTH_MAX	8
/* Octets of b= written as header.b (RFC 6008 §4). */
#define AUTHRES_HEADER_B_LEN	8
/* Fold a property onto the next line past this column. */
#define AUTHRES_FOLD_AT		76

struct authres {
	char	 buf[AUTHRES_FIELD_MAX];
	size_t	 len;
	size_t	 col;		/* octets since the last line break */
	size_t	 nres;
	bool	 bad_id;	/* the authserv-id could not be used */
};

/* A ptype.property=value (RFC 8601 §2.2 propspec). */
struct authres_prop {
	const char	*ptype;		/* "smtp", "header", "policy" */
	const char	*property;	/* "mailfrom", "d", ... */
	const char	*value;
};

/*
 * Start a field for authserv_id (usually our host name: a dot-atom or
 * token of at most AUTHRES_ID_MAX octets; anything else is quoted).
 */
void		 authres_init(struct authres *, const char *authserv_id);
/*
 * One result: "method=result", then a comment (NULL: none), a reason
 * (RFC 8601 §2.2 reasonspec; NULL: none) and properties.  0, or -1 if it
 * did not fit (the field is unchanged) or a name is no token.
 */
int		 authres_add(struct authres *, const char *method,
		    const char *result, const char *comment, const char *reason,
		    const struct authres_prop *props, size_t nprops);
/* spf=<result> smtp.mailfrom=<domain> with the reason. */
int		 authres_add_spf(struct authres *, const struct spf_result *);
/* One dkim= per signature (header.d, header.i, header.s, header.a,
 * header.b), or one dkim=none / dkim=temperror... for the message. */
int		 authres_add_dkim(struct authres *,
		    const struct dkim_verify_result *);
int		 authres_add_dkim_sig(struct authres *,
		    const struct dkim_sig_result *);
/* dmarc=<result> (p=... dis=...) header.from=<domain>. */
int		 authres_add_dmarc(struct authres *, const struct dmarc_result *);
/* iprev=<result> (ptr name) policy.iprev=<ip> (RFC 8601 §3). */
int		 authres_add_iprev(struct authres *, const char *result,
		    const char *ip, const char *ptr_name);
/*
 * The whole field, "Authentication-Results: id;\r\n\t...\r\n" (with
 * "id; none" when nothing was added), NUL-terminated inside the struct;
 * *len gets its length.
 */
const char	*authres_field(struct authres *, size_t *len);

/*
 * Whether the field (its value after the colon, or the whole field with
 * its name) claims authserv_id: its authserv-id, unquoted and unfolded,
 * equals ours, case-insensitively (RFC 8601 §5).  A field we cannot read
 * claims nothing.
 */
bool		 authres_claims_id(const char *field, size_t len,
		    const char *authserv_id);

#endif
