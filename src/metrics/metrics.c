/*
 * metrics.c — the values of the metrics and their exposition (metrics.h).
 *
 * Prometheus text format 0.0.4 ("Exposition formats", prometheus.io):
 * per metric a "# HELP" and a "# TYPE" line, then one sample line per
 * series; counters carry the suffix _total; a histogram's series are
 * cumulative _bucket{le="..."} lines ending with le="+Inf", then _sum and
 * _count (equal to the +Inf bucket).
 *
 * Layout of a shard: for each metric, in table order, its series in
 * row-major order of (l1, l2); a counter or gauge series is one slot, a
 * histogram series is nbuckets + 1 bucket counts (not cumulative: one
 * increment per observation) and its sum (a double's bits).  The layout
 * depends only on the table, so every process of one binary agrees on it.
 *
 * SECURITY: label values come from the table only; help texts and names
 * are constants checked once (metrics_init) for what the format forbids.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "metrics/metrics.h"
#include "util/log.h"

static uint64_t		*shards;	/* nshards * nslots */
static uint64_t		*mine;		/* this process's shard */
static unsigned		 nshards;
static size_t		 nslots;
static size_t		 offset[M_COUNT];	/* first slot of each metric */

static unsigned
dim_size(const struct metric_def *d, unsigned dim)
{
	unsigned n = 0;

	if (d->labels[dim] == NULL)
		return 1;
	while (d->labels[dim]->values[n] != NULL)
		n++;
	return n;
}

static size_t
series_slots(const struct metric_def *d)
{
	return d->type == METRIC_HISTOGRAM ? (size_t)d->nbuckets + 2 : 1;
}

/* The first slot of a series in shard base, or NULL if out of range. */
static uint64_t *
series(uint64_t *base, enum metric_id id, unsigned l1, unsigned l2)
{
	const struct metric_def *d;

	if (base == NULL || (unsigned)id >= M_COUNT)
		return NULL;
	d = &metric_defs[id];
	if (l1 >= dim_size(d, 0) || l2 >= dim_size(d, 1))
		return NULL;
	return base + offset[id] +
	    ((size_t)l1 * dim_size(d, 1) + l2) * series_slots(d);
}

/* Names and help may hold nothing the text format would have to escape. */
static void
check_def(const struct metric_def *d)
{
	if (d->name == NULL || d->help == NULL || strpbrk(d->help, "\\\n") ||
	    strspn(d->name, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
	    strlen(d->name))
		fatalx("metrics: bad definition of %s", d->name ? d->name : "?");
	for (unsigned i = 1; i < d->nbuckets; i++)
		if (!(d->buckets[i] > d->buckets[i - 1]))
			fatalx("metrics: %s: buckets must ascend", d->name);
}

void
metrics_init(unsigned n)
{
	size_t bytes;

	if (shards != NULL)
		return;
	nslots = 0;
	for (unsigned id = 0; id < M_COUNT; id++) {
		const struct metric_def *d = &metric_defs[id];

		check_def(d);
		offset[id] = nslots;
		nslots += (size_t)dim_size(d, 0) * dim_size(d, 1) *
		    series_slots(d);
	}
	nshards = n > 0 ? n : 1;
	bytes = (size_t)nshards * nslots * sizeof(uint64_t);
	/* Shared: workers forked later write here and the scraper sums. */
	shards = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shards == MAP_FAILED) {
		shards = NULL;
		fatal("metrics: cannot map %zu bytes", bytes);
	}
	mine = shards;
}

void
metrics_use_shard(unsigned shard)
{
	if (shards != NULL && shard < nshards)
		mine = shards + (size_t)shard * nslots;
}

void
metric_add_l2(enum metric_id id, unsigned l1, unsigned l2, uint64_t n)
{
	uint64_t *p = series(mine, id, l1, l2);

	if (p != NULL)
		__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

void
metric_set_l(enum metric_id id, unsigned l1, int64_t v)
{
	uint64_t *p = series(mine, id, l1, 0);

	if (p != NULL)
		__atomic_store_n(p, (uint64_t)v, __ATOMIC_RELAXED);
}

void
metric_gauge_add_l(enum metric_id id, unsigned l1, int64_t d)
{
	uint64_t *p = series(mine, id, l1, 0);

	/* Two's complement: adding the unsigned image subtracts too. */
	if (p != NULL)
		__atomic_fetch_add(p, (uint64_t)d, __ATOMIC_RELAXED);
}

static double
bits_to_double(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static uint64_t
double_to_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

void
hist_observe_l2(enum metric_id id, unsigned l1, unsigned l2, double v)
{
	const struct metric_def *d;
	uint64_t *p = series(mine, id, l1, l2), *sum, old;
	unsigned b;

	if (p == NULL || metric_defs[id].type != METRIC_HISTOGRAM)
		return;
	d = &metric_defs[id];
	if (!(v > 0) || isnan(v))
		v = 0;
	for (b = 0; b < d->nbuckets && v > d->buckets[b]; b++)
		;
	__atomic_fetch_add(&p[b], 1, __ATOMIC_RELAXED);
	sum = &p[d->nbuckets + 1];
	old = __atomic_load_n(sum, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(sum, &old,
	    double_to_bits(bits_to_double(old) + v), true, __ATOMIC_RELAXED,
	    __ATOMIC_RELAXED))
		;
}

int
metric_label_index(enum metric_id id, unsigned dim, const char *value)
{
	const struct metric_label *l;
	int other = -1;

	if ((unsigned)id >= M_COUNT || dim > 1 ||
	    (l = metric_defs[id].labels[dim]) == NULL || value == NULL)
		return -1;
	for (int i = 0; l->values[i] != NULL; i++) {
		if (strcmp(l->values[i], value) == 0)
			return i;
		if (strcmp(l->values[i], "other") == 0)
			other = i;
	}
	return other;
}

unsigned
metric_op_kind(const char *opname)
{
	const char *const *v = metric_defs[M_OP_SECONDS].labels[0]->values;
	size_t n = strcspn(opname, ". ");
	unsigned i;

	for (i = 0; v[i] != NULL; i++)
		if (strlen(v[i]) == n && strncmp(v[i], opname, n) == 0)
			return i;
	return (unsigned)metric_label_index(M_OP_SECONDS, 0, "other");
}

/* One slot summed over every shard. */
static uint64_t
slot_sum(size_t slot)
{
	uint64_t v = 0;

	for (unsigned s = 0; s < nshards; s++)
		v += __atomic_load_n(&shards[(size_t)s * nslots + slot],
		    __ATOMIC_RELAXED);
	return v;
}

static double
slot_sum_double(size_t slot)
{
	double v = 0;

	for (unsigned s = 0; s < nshards; s++)
		v += bits_to_double(__atomic_load_n(&shards[(size_t)s * nslots +
		    slot], __ATOMIC_RELAXED));
	return v;
}

int64_t
metric_value(enum metric_id id, unsigned l1, unsigned l2)
{
	uint64_t *p = series(shards, id, l1, l2);

	if (p == NULL || metric_defs[id].type == METRIC_HISTOGRAM)
		return 0;
	return (int64_t)slot_sum((size_t)(p - shards));
}

/* `{a="x",b="y"` — the caller closes it (or adds le first). */
static int
labels(struct buf *out, const struct metric_def *d, unsigned l1, unsigned l2)
{
	unsigned idx[2] = { l1, l2 };
	int r = 0;

	for (unsigned dim = 0; dim < 2 && d->labels[dim] != NULL; dim++)
		r |= buf_appendf(out, "%s%s=\"%s\"", dim == 0 ? "{" : ",",
		    d->labels[dim]->name, d->labels[dim]->values[idx[dim]]);
	return r;
}

static int
render_series(struct buf *out, const struct metric_def *d, size_t slot,
    unsigned l1, unsigned l2)
{
	bool has = d->labels[0] != NULL;
	uint64_t cum = 0;
	int r = 0;

	switch (d->type) {
	case METRIC_COUNTER:
	case METRIC_GAUGE:
		r |= buf_appendf(out, "%s%s", d->name,
		    d->type == METRIC_COUNTER ? "_total" : "");
		r |= labels(out, d, l1, l2);
		if (d->type == METRIC_COUNTER)
			r |= buf_appendf(out, "%s %llu\n", has ? "}" : "",
			    (unsigned long long)slot_sum(slot));
		else
			r |= buf_appendf(out, "%s %lld\n", has ? "}" : "",
			    (long long)(int64_t)slot_sum(slot));
		return r;
	case METRIC_HISTOGRAM:
		for (unsigned b = 0; b <= d->nbuckets; b++) {
			cum += slot_sum(slot + b);
			r |= buf_appendf(out, "%s_bucket", d->name);
			r |= labels(out, d, l1, l2);
			if (b < d->nbuckets)
				r |= buf_appendf(out, "%sle=\"%g\"} %llu\n",
				    has ? "," : "{", d->buckets[b],
				    (unsigned long long)cum);
			else
				r |= buf_appendf(out, "%sle=\"+Inf\"} %llu\n",
				    has ? "," : "{", (unsigned long long)cum);
		}
		r |= buf_appendf(out, "%s_sum", d->name);
		r |= labels(out, d, l1, l2);
		r |= buf_appendf(out, "%s %.9f\n", has ? "}" : "",
		    slot_sum_double(slot + d->nbuckets + 1));
		r |= buf_appendf(out, "%s_count", d->name);
		r |= labels(out, d, l1, l2);
		r |= buf_appendf(out, "%s %llu\n", has ? "}" : "",
		    (unsigned long long)cum);
		return r;
	}
	return -1;
}

int
metrics_render(struct buf *out)
{
	static const char *types[] = { "counter", "gauge", "histogram" };

	if (shards == NULL)
		return 0;
	for (unsigned id = 0; id < M_COUNT; id++) {
		const struct metric_def *d = &metric_defs[id];
		const char *suffix = d->type == METRIC_COUNTER ? "_total" : "";
		unsigned n1 = dim_size(d, 0), n2 = dim_size(d, 1);
		size_t slot = offset[id];

		if (buf_appendf(out, "# HELP %s%s %s\n# TYPE %s%s %s\n", d->name,
		    suffix, d->help, d->name, suffix, types[d->type]) != 0)
			return -1;
		for (unsigned l1 = 0; l1 < n1; l1++)
			for (unsigned l2 = 0; l2 < n2; l2++) {
				if (render_series(out, d, slot, l1, l2) != 0)
					return -1;
				slot += series_slots(d);
			}
	}
	return 0;
}
