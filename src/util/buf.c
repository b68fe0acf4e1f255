/*
 * buf.c — bounded byte buffer (see buf.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xmalloc.h"

#define BUF_MIN_ALLOC	512

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
buf_reset(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

char *
buf_reserve(struct buf *b, size_t n)
{
	size_t used = buf_used(b);
	size_t want;

	if (n > b->max - used)
		return NULL;
	if (b->cap - b->len >= n)
		return b->data + b->len;
	/* Slide the unconsumed bytes to the front before growing. */
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
		if (b->cap - b->len >= n)
			return b->data + b->len;
	}
	want = b->cap ? b->cap : BUF_MIN_ALLOC;
	while (want < used + n)
		want *= 2;
	if (want > b->max)
		want = b->max;
	b->data = xrealloc(b->data, want);
	b->cap = want;
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	b->len += n;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	char *dst;

	if (n == 0)
		return 0;
	if ((dst = buf_reserve(b, n)) == NULL)
		return -1;
	memcpy(dst, p, n);
	b->len += n;
	return 0;
}

int
buf_appendf(struct buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	return buf_append(b, tmp, (size_t)n);
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= buf_used(b)) {
		/* Empty: give the memory back so idle sessions stay small. */
		buf_reset(b);
		return;
	}
	b->off += n;
}
