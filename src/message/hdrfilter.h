/*
 * hdrfilter.h — drop chosen header fields while a message streams to the
 * spool.
 *
 * RFC 8601 §5: an MTA that writes Authentication-Results must remove the
 * ones that arrive claiming its own authserv-id (forgeries meant to look
 * like our verdicts).  The message is never held whole: the filter sees
 * the octets as the DATA decoder produces them (CRLF, unstuffed), passes
 * the body through untouched, and holds at most one header field (with
 * its folded continuations) at a time, up to HDRFILTER_FIELD_MAX octets:
 * a longer field is passed through as it is (it cannot be one of ours).
 * The first empty line ends the header section.
 */
#ifndef LUASMTPD_HDRFILTER_H
#define LUASMTPD_HDRFILTER_H

#include <stdbool.h>
#include <stddef.h>

#define HDRFILTER_FIELD_MAX	(16 * 1024)

/* Drop this field?  field is the whole field with its CRLFs. */
typedef bool	(*hdrfilter_drop_fn)(void *arg, const char *field, size_t len);
/* Where the kept octets go. */
typedef void	(*hdrfilter_out_fn)(void *arg, const char *p, size_t n);

struct hdrfilter {
	hdrfilter_drop_fn	 drop;
	hdrfilter_out_fn	 out;
	void			*arg;
	bool			 in_body;
	bool			 overflow;	/* the field is passed through */
	bool			 at_bol;	/* the next octet starts a line */
	char			*field;		/* HDRFILTER_FIELD_MAX, lazily */
	size_t			 len;
	unsigned		 dropped;	/* fields dropped so far */
};

void	hdrfilter_init(struct hdrfilter *, hdrfilter_drop_fn,
	    hdrfilter_out_fn, void *arg);
void	hdrfilter_write(struct hdrfilter *, const char *p, size_t n);
/* The end of the message: decide on a field still held. */
void	hdrfilter_finish(struct hdrfilter *);
void	hdrfilter_free(struct hdrfilter *);

#endif
