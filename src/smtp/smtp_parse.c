/*
 * smtp_parse.c — pure parsing of SMTP command lines.
 *
 * RFC 5321 §4.1.1, §4.1.2, §4.1.3, §4.5.3.1; RFC 6531 §3.3; RFC 1870;
 * RFC 6152; RFC 3030; RFC 4954 §5 (AUTH= xtext, RFC 3461 §4).
 *
 * SECURITY: every input is a (pointer, length) pair from the network; no
 * function reads past len and no function writes past its output's size.
 * Mailboxes are copied only after every length check has passed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_parse.h"

struct verb_entry {
	const char	*name;
	enum smtp_verb	 verb;
};

static const struct verb_entry verbs[] = {
	{ "HELO", SMTP_VERB_HELO },
	{ "EHLO", SMTP_VERB_EHLO },
	{ "LHLO", SMTP_VERB_LHLO },
	{ "MAIL", SMTP_VERB_MAIL },
	{ "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA },
	{ "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET },
	{ "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT },
	{ "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN },
	{ "HELP", SMTP_VERB_HELP },
	{ "STARTTLS", SMTP_VERB_STARTTLS },
	{ "AUTH", SMTP_VERB_AUTH },
	/* Not SMTP: an HTTP client or a proxy probe (Postfix smtpd_forbidden_commands). */
	{ "GET", SMTP_VERB_FORBIDDEN },
	{ "POST", SMTP_VERB_FORBIDDEN },
	{ "PUT", SMTP_VERB_FORBIDDEN },
	{ "HEAD", SMTP_VERB_FORBIDDEN },
	{ "CONNECT", SMTP_VERB_FORBIDDEN },
	{ "OPTIONS", SMTP_VERB_FORBIDDEN },
};

static bool
is_header_label(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || !isalpha((unsigned char)s[0]))
		return false;
	while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '-'))
		i++;
	return i < len && s[i] == ':';
}

void
smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd)
{
	size_t vlen = 0, a, e;

	memset(cmd, 0, sizeof(*cmd));
	cmd->name = "";
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(line, verbs[i].name, vlen) == 0) {
			cmd->verb = verbs[i].verb;
			cmd->name = verbs[i].name;
			break;
		}
	}
	if (cmd->verb == SMTP_VERB_UNKNOWN && is_header_label(line, len))
		cmd->verb = SMTP_VERB_FORBIDDEN;
	if (memchr(line, '\0', len) != NULL && cmd->verb != SMTP_VERB_FORBIDDEN) {
		cmd->verb = SMTP_VERB_UNKNOWN;
		cmd->name = "";
	}
	/* Tolerate extra spaces between verb and argument and at the end. */
	a = vlen;
	while (a < len && line[a] == ' ')
		a++;
	e = len;
	while (e > a && (line[e - 1] == ' ' || line[e - 1] == '\t'))
		e--;
	cmd->arg = line + a;
	cmd->arglen = e - a;
}

bool
smtp_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

/* RFC 5322 atext, plus UTF-8 bytes (RFC 6531 §3.3), validated later. */
static bool
is_atext(unsigned char c)
{
	if (isalnum(c) || c >= 0x80)
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
is_let_dig(unsigned char c)
{
	return isalnum(c) || c >= 0x80;
}

/*
 * Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str].
 * Returns the number of bytes consumed (0 if none form a domain).
 */
static size_t
scan_domain(const char *s, size_t len)
{
	size_t i = 0, label_start;

	for (;;) {
		label_start = i;
		if (i >= len || !is_let_dig((unsigned char)s[i]))
			return 0;
		while (i < len && (is_let_dig((unsigned char)s[i]) || s[i] == '-'))
			i++;
		if (s[i - 1] == '-' || i - label_start > 63)
			return 0;
		if (i < len && s[i] == '.' ) {
			i++;
			continue;
		}
		return i;
	}
}

/* address-literal = "[" ( IPv4 / "IPv6:" IPv6 / tag ":" 1*dcontent ) "]" */
static size_t
scan_address_literal(const char *s, size_t len)
{
	char tmp[64];
	struct in6_addr a6;
	struct in_addr a4;
	const char *close;
	size_t inner, tag;

	if (len < 3 || s[0] != '[')
		return 0;
	if ((close = memchr(s, ']', len)) == NULL)
		return 0;
	inner = (size_t)(close - s) - 1;
	if (inner == 0 || inner >= sizeof(tmp))
		return 0;
	/* inet_pton() would stop at a NUL and accept "[1.2.3.4<NUL>junk]". */
	if (memchr(s + 1, '\0', inner) != NULL)
		return 0;
	memcpy(tmp, s + 1, inner);
	tmp[inner] = '\0';
	if (inet_pton(AF_INET, tmp, &a4) == 1)
		return inner + 2;
	if (inner > 5 && strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, &a6) == 1 ? inner + 2 : 0;
	/* General-address-literal: Standardized-tag ":" 1*dcontent */
	tag = 0;
	while (tag < inner && (isalnum((unsigned char)tmp[tag]) || tmp[tag] == '-'))
		tag++;
	if (tag == 0 || tag >= inner || tmp[tag] != ':' || tag + 1 == inner ||
	    tmp[tag - 1] == '-')
		return 0;
	for (size_t i = tag + 1; i < inner; i++) {
		unsigned char c = (unsigned char)tmp[i];

		if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
			return 0;
	}
	/* An all-digit-and-dot tag is a malformed IPv4 address, not a tag. */
	if (strspn(tmp, "0123456789.") == inner)
		return 0;
	return inner + 2;
}

/* Local-part = Dot-string / Quoted-string; returns bytes consumed or 0. */
static size_t
scan_local_part(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return 0;
	if (s[0] == '"') {
		for (i = 1; i < len; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '"')
				return i + 1;
			if (c == '\\') {
				/* quoted-pairSMTP = "\" %d32-126 */
				if (i + 1 >= len || (unsigned char)s[i + 1] < 32 ||
				    (unsigned char)s[i + 1] > 126)
					return 0;
				i++;
				continue;
			}
			/* qtextSMTP = %d32-33 / %d35-91 / %d93-126 / UTF-8 */
			if (c < 32 || c == 127)
				return 0;
		}
		return 0;
	}
	for (;;) {
		size_t atom = i;

		while (i < len && is_atext((unsigned char)s[i]))
			i++;
		if (i == atom)
			return 0;
		if (i < len && s[i] == '.') {
			i++;
			continue;
		}
		return i;
	}
}

int
smtp_parse_mailbox(const char *s, size_t len, struct smtp_path *path)
{
	size_t lp, dom;

	memset(path, 0, sizeof(*path));
	if ((lp = scan_local_part(s, len)) == 0 || lp > SMTP_LOCAL_PART_MAX)
		return -1;
	if (lp >= len || s[lp] != '@')
		return -1;
	if (lp + 1 < len && s[lp + 1] == '[')
		dom = scan_address_literal(s + lp + 1, len - lp - 1);
	else
		dom = scan_domain(s + lp + 1, len - lp - 1);
	if (dom == 0 || dom > SMTP_DOMAIN_MAX || lp + 1 + dom != len)
		return -1;
	/* Path = "<" Mailbox ">" must fit 256 octets (§4.5.3.1.3). */
	if (len + 2 > SMTP_PATH_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80) {
			path->utf8 = true;
			break;
		}
	}
	if (path->utf8 && !smtp_utf8_valid((const unsigned char *)s, len))
		return -1;
	memcpy(path->mailbox, s, len);
	path->mailbox[len] = '\0';
	path->local_len = lp;
	return 0;
}

/* A-d-l = At-domain *( "," At-domain ) ":" ; returns bytes consumed or 0. */
static size_t
scan_source_route(const char *s, size_t len)
{
	size_t i = 0, d;

	for (;;) {
		if (i >= len || s[i] != '@')
			return 0;
		i++;
		if ((d = scan_domain(s + i, len - i)) == 0)
			return 0;
		i += d;
		if (i < len && s[i] == ',') {
			i++;
			continue;
		}
		if (i < len && s[i] == ':')
			return i + 1;
		return 0;
	}
}

/* Find the '>' that closes a path, skipping quoted strings. */
static const char *
find_path_end(const char *s, size_t len)
{
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		if (quoted) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				quoted = false;
		} else if (s[i] == '"') {
			quoted = true;
		} else if (s[i] == '>') {
			return s + i;
		}
	}
	return NULL;
}

static int
parse_params(const char *s, size_t len, struct smtp_params *params,
    struct smtp_err *err)
{
	size_t i = 0;

	params->n = 0;
	while (i < len && s[i] == ' ')
		i++;
	params->raw = s + i;
	params->rawlen = len - i;
	while (i < len) {
		struct smtp_param *p;
		size_t start, nlen;

		while (i < len && s[i] == ' ')
			i++;
		if (i >= len)
			break;
		if (params->n == SMTP_PARAMS_MAX) {
			*err = (struct smtp_err){ 501, "5.5.4",
			    "Too many parameters" };
			return -1;
		}
		p = &params->p[params->n];
		start = i;
		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		if (!isalnum((unsigned char)s[i]))
			goto syntax;
		while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '-'))
			i++;
		nlen = i - start;
		if (nlen > SMTP_PARAM_NAME_MAX)
			goto syntax;
		for (size_t k = 0; k < nlen; k++)
			p->name[k] = (char)toupper((unsigned char)s[start + k]);
		p->name[nlen] = '\0';
		p->value = NULL;
		p->vlen = 0;
		if (i < len && s[i] == '=') {
			i++;
			start = i;
			/* esmtp-value = 1*(%d33-60 / %d62-126), UTF-8 (RFC 6531) */
			while (i < len && s[i] != ' ') {
				unsigned char c = (unsigned char)s[i];

				if (c == '=' || (c < 33) || c == 127)
					goto syntax;
				i++;
			}
			if (i == start)
				goto syntax;
			p->value = s + start;
			p->vlen = i - start;
		}
		if (i < len && s[i] != ' ')
			goto syntax;
		params->n++;
	}
	return 0;
syntax:
	*err = (struct smtp_err){ 501, "5.5.4", "Syntax error in parameters" };
	return -1;
}

int
smtp_parse_path_arg(const char *arg, size_t len, enum smtp_path_kind kind,
    struct smtp_path *path, struct smtp_params *params, struct smtp_err *err)
{
	const bool rev = kind == SMTP_PATH_REVERSE;
	const char *kw = rev ? "FROM:" : "TO:";
	const size_t kwlen = strlen(kw);
	const char *end, *p, *inner;
	size_t i, inlen, route;

	memset(path, 0, sizeof(*path));
	params->n = 0;
	params->raw = NULL;
	params->rawlen = 0;
	if (len < kwlen || strncasecmp(arg, kw, kwlen) != 0)
		goto syntax;
	i = kwlen;
	while (i < len && arg[i] == ' ')
		i++;
	if (i >= len || arg[i] != '<')
		goto syntax;
	if ((end = find_path_end(arg + i, len - i)) == NULL)
		goto syntax;
	inner = arg + i + 1;
	inlen = (size_t)(end - inner);
	if (inlen + 2 > SMTP_PATH_MAX) {
		*err = (struct smtp_err){ 501, rev ? "5.1.7" : "5.1.3",
		    "Path too long" };
		return -1;
	}
	p = end + 1;
	if (p < arg + len && *p != ' ')
		goto syntax;
	if (parse_params(p, (size_t)(arg + len - p), params, err) != 0)
		return -1;

	if (inlen == 0) {
		if (!rev)
			goto bad_address;
		path->null = true;
		return 0;
	}
	/* RFC 5321 §4.1.2: accept source routes, then ignore them (§C). */
	if (inner[0] == '@') {
		if ((route = scan_source_route(inner, inlen)) == 0)
			goto bad_address;
		inner += route;
		inlen -= route;
	}
	if (!rev && inlen == 10 && strncasecmp(inner, "postmaster", 10) == 0) {
		memcpy(path->mailbox, "Postmaster", 10);
		path->mailbox[10] = '\0';
		path->local_len = 10;
		path->postmaster = true;
		return 0;
	}
	if (smtp_parse_mailbox(inner, inlen, path) != 0)
		goto bad_address;
	return 0;

syntax:
	*err = rev ?
	    (struct smtp_err){ 501, "5.5.4", "Syntax: MAIL FROM:<address>" } :
	    (struct smtp_err){ 501, "5.5.4", "Syntax: RCPT TO:<address>" };
	return -1;
bad_address:
	*err = rev ?
	    (struct smtp_err){ 501, "5.1.7", "Bad sender address syntax" } :
	    (struct smtp_err){ 501, "5.1.3", "Bad recipient address syntax" };
	return -1;
}

int
smtp_parse_helo(const char *arg, size_t len, struct smtp_err *err)
{
	if (len == 0) {
		*err = (struct smtp_err){ 501, "5.5.4", "Syntax: EHLO hostname" };
		return -1;
	}
	if (len > SMTP_HELO_MAX) {
		*err = (struct smtp_err){ 501, "5.5.4", "Hostname too long" };
		return -1;
	}
	if (arg[0] == '[') {
		if (scan_address_literal(arg, len) != len)
			goto bad;
		return 0;
	}
	/*
	 * Deliberately more tolerant than the Domain grammar: real clients
	 * send underscores and other oddities here.  One token of visible
	 * ASCII or well-formed UTF-8; stricter policy belongs to the helo hook.
	 */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)arg[i];

		if (c <= 32 || c == 127)
			goto bad;
	}
	if (!smtp_utf8_valid((const unsigned char *)arg, len))
		goto bad;
	return 0;
bad:
	*err = (struct smtp_err){ 501, "5.5.4", "Invalid hostname syntax" };
	return -1;
}

static int
parse_decimal(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* p->value is not NUL-terminated: no strspn() on it. */
static bool
all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 3461 §4: xtext, "+" followed by two upper-case hex digits. */
static int
xtext_decode(const char *s, size_t len, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '+') {
			int hi, lo;

			if (len - i < 3)	/* need "+XX" */
				return -1;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
			/*
			 * The value is a mailbox (RFC 4954 §5) kept as a C
			 * string: "+00" would cut it and "+0D+0A" would
			 * carry a line break into logs and headers.
			 */
			if (c < 32 || c == 127)
				return -1;
		} else if (c < 33 || c > 126 || c == '=') {
			return -1;
		}
		if (o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int
smtp_parse_mail_params(const struct smtp_params *params,
    const struct smtp_ext *ext, struct smtp_mail_opts *opts,
    struct smtp_err *err)
{
	memset(opts, 0, sizeof(*opts));
	for (size_t i = 0; i < params->n; i++) {
		const struct smtp_param *p = &params->p[i];

		for (size_t k = 0; k < i; k++) {
			if (strcmp(params->p[k].name, p->name) == 0) {
				*err = (struct smtp_err){ 501, "5.5.4",
				    "Duplicate parameter" };
				return -1;
			}
		}
		if (strcmp(p->name, "SIZE") == 0 && ext->size) {
			if (p->value == NULL ||
			    parse_decimal(p->value, p->vlen, &opts->size) != 0) {
				if (p->value != NULL && p->vlen <= 40 &&
				    all_digits(p->value, p->vlen)) {
					/* Too large to represent: certainly too big. */
					opts->size = UINT64_MAX;
				} else {
					*err = (struct smtp_err){ 501, "5.5.4",
					    "Bad SIZE parameter" };
					return -1;
				}
			}
			opts->has_size = true;
		} else if (strcmp(p->name, "BODY") == 0 && ext->eightbitmime) {
			if (p->value != NULL && p->vlen == 4 &&
			    strncasecmp(p->value, "7BIT", 4) == 0) {
				opts->body = SMTP_BODY_7BIT;
			} else if (p->value != NULL && p->vlen == 8 &&
			    strncasecmp(p->value, "8BITMIME", 8) == 0) {
				opts->body = SMTP_BODY_8BITMIME;
			} else if (p->value != NULL && p->vlen == 10 &&
			    strncasecmp(p->value, "BINARYMIME", 10) == 0) {
				*err = (struct smtp_err){ 555, "5.5.4",
				    "BODY=BINARYMIME is not supported" };
				return -1;
			} else {
				*err = (struct smtp_err){ 501, "5.5.4",
				    "Bad BODY parameter" };
				return -1;
			}
		} else if (strcmp(p->name, "SMTPUTF8") == 0 && ext->smtputf8) {
			if (p->value != NULL) {
				*err = (struct smtp_err){ 501, "5.5.4",
				    "SMTPUTF8 takes no value" };
				return -1;
			}
			opts->smtputf8 = true;
		} else if (strcmp(p->name, "AUTH") == 0 && ext->auth) {
			if (p->value == NULL || xtext_decode(p->value, p->vlen,
			    opts->auth, sizeof(opts->auth)) != 0) {
				*err = (struct smtp_err){ 501, "5.5.4",
				    "Bad AUTH parameter" };
				return -1;
			}
			opts->has_auth = true;
		} else {
			*err = (struct smtp_err){ 555, "5.5.4",
			    "Unsupported parameter" };
			return -1;
		}
	}
	return 0;
}

int
smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last,
    struct smtp_err *err)
{
	size_t n = 0;

	*last = false;
	while (n < len && arg[n] != ' ')
		n++;
	if (parse_decimal(arg, n, size) != 0)
		goto syntax;
	while (n < len && arg[n] == ' ')
		n++;
	if (n < len) {
		if (len - n != 4 || strncasecmp(arg + n, "LAST", 4) != 0)
			goto syntax;
		*last = true;
	}
	return 0;
syntax:
	*err = (struct smtp_err){ 501, "5.5.4", "Syntax: BDAT size [LAST]" };
	return -1;
}
