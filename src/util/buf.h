/*
 * buf.h — a bounded, lazily allocated byte buffer.
 *
 * A buf holds bytes [off, len) of data.  It allocates nothing until the
 * first append (idle sessions cost no buffer memory) and never grows past
 * max: buf_append() refuses instead.  buf_reset() frees the storage.
 */
#ifndef LUASMTPD_BUF_H
#define LUASMTPD_BUF_H

#include <stddef.h>

struct buf {
	char	*data;
	size_t	 off;		/* first unconsumed byte */
	size_t	 len;		/* end of valid bytes */
	size_t	 cap;
	size_t	 max;		/* hard bound on cap */
};

void	 buf_init(struct buf *, size_t max);
/* 0, or -1 if the result would exceed max (nothing is appended then). */
int	 buf_append(struct buf *, const void *, size_t);
/* Like buf_append() but formats; -1 on overflow. */
int	 buf_appendf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Drop n bytes from the front; frees the storage when it becomes empty. */
void	 buf_consume(struct buf *, size_t n);
/* Make room for at least n more bytes at the end; returns NULL past max. */
char	*buf_reserve(struct buf *, size_t n);
void	 buf_commit(struct buf *, size_t n);
void	 buf_reset(struct buf *);

static inline size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* Never NULL: an empty buffer (no storage yet) gives "". */
static inline const char *
buf_head(const struct buf *b)
{
	return b->data != NULL ? b->data + b->off : "";
}

static inline size_t
buf_room(const struct buf *b)
{
	return b->max - buf_used(b);
}

#endif
