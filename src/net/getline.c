/*
 * getline.c — the one bounded line reader (see getline.h).
 */
#include <string.h>

#include "net/getline.h"

enum getline_status
getline_next(const struct buf *in, size_t max, struct line *line)
{
	size_t used = buf_used(in), look = used < max ? used : max;
	const char *p = buf_head(in), *lf;
	size_t n;

	if (used == 0)
		return GETLINE_AGAIN;
	/* The bound is applied here, before the LF is even looked for. */
	if ((lf = memchr(p, '\n', look)) == NULL)
		return used >= max ? GETLINE_TOO_LONG : GETLINE_AGAIN;
	n = (size_t)(lf - p);
	line->p = p;
	line->span = n + 1;
	if (n > 0 && p[n - 1] == '\r') {
		line->len = n - 1;
		line->end = LINE_END_CRLF;
	} else {
		line->len = n;
		line->end = LINE_END_LF;
	}
	return GETLINE_OK;
}
