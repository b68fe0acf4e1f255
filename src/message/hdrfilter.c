/*
 * hdrfilter.c — drop chosen header fields from a stream (see hdrfilter.h).
 */
#include <stdlib.h>
#include <string.h>

#include "message/hdrfilter.h"
#include "util/xmalloc.h"

void
hdrfilter_init(struct hdrfilter *f, hdrfilter_drop_fn drop,
    hdrfilter_out_fn out, void *arg)
{
	memset(f, 0, sizeof(*f));
	f->drop = drop;
	f->out = out;
	f->arg = arg;
	f->at_bol = true;
}

/* The field held is complete: keep it or drop it. */
static void
decide(struct hdrfilter *f)
{
	if (f->len == 0)
		return;
	if (f->drop(f->arg, f->field, f->len))
		f->dropped++;
	else
		f->out(f->arg, f->field, f->len);
	f->len = 0;
}

static void
hold(struct hdrfilter *f, const char *p, size_t n)
{
	if (f->overflow) {
		f->out(f->arg, p, n);
		return;
	}
	if (f->field == NULL)
		f->field = xmalloc(HDRFILTER_FIELD_MAX);
	if (f->len + n > HDRFILTER_FIELD_MAX) {
		/* Too long to be one of ours: let it through unread. */
		f->out(f->arg, f->field, f->len);
		f->len = 0;
		f->overflow = true;
		f->out(f->arg, p, n);
		return;
	}
	memcpy(f->field + f->len, p, n);
	f->len += n;
}

void
hdrfilter_write(struct hdrfilter *f, const char *p, size_t n)
{
	while (n > 0 && !f->in_body) {
		const char *lf = memchr(p, '\n', n);
		size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;

		if (f->at_bol) {
			if (p[0] == ' ' || p[0] == '\t') {
				/* A folded continuation of the field held. */
			} else if (p[0] == '\r' || p[0] == '\n') {
				/* The empty line: the body follows. */
				decide(f);
				f->in_body = true;
				break;
			} else {
				decide(f);
				f->overflow = false;
			}
		}
		hold(f, p, take);
		f->at_bol = lf != NULL;
		p += take;
		n -= take;
	}
	if (n > 0)
		f->out(f->arg, p, n);
}

void
hdrfilter_finish(struct hdrfilter *f)
{
	if (!f->in_body)
		decide(f);
}

void
hdrfilter_free(struct hdrfilter *f)
{
	free(f->field);
	f->field = NULL;
	f->len = 0;
}
