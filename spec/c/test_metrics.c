/*
 * test_metrics.c — unit cases for src/metrics/metrics.c and its table:
 * counters, gauges and histograms by label, bucket bounds (le is
 * inclusive), what out-of-range ids and labels do (nothing), the text
 * exposition line by line, the bound of the output buffer, label and
 * operation-kind lookups, shards summed (also across fork(2), as workers
 * will), and updates from several threads at once.
 *
 * The process maps SHARDS shards once; every case works on shard 0 unless
 * it says otherwise, and reads values as deltas, so the order of cases
 * does not matter except for the first, which runs before metrics_init.
 */
#include <math.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "smtp/hook.h"
#include "unit.h"

#define SHARDS		3
#define THREADS		4
#define PER_THREAD	100000
#define RENDER_MAX	(1024 * 1024)

/* Render everything; a case-owned NUL-terminated copy. */
static char *
render(void)
{
	struct buf b;
	char *out;

	buf_init(&b, RENDER_MAX);
	CHECK_INT(metrics_render(&b), 0);
	out = unit_alloc(buf_used(&b) + 1);
	memcpy(out, buf_head(&b), buf_used(&b));
	out[buf_used(&b)] = '\0';
	buf_reset(&b);
	return out;
}

/* text holds this exact line. */
static void
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	unit_fail(__FILE__, __LINE__, "no line \"%s\"", line);
}

static void
nothing_counts_before_init(void)
{
	struct buf b;

	metric_inc(M_CONNECTIONS_ACCEPTED);
	hist_observe_l(M_HOOK_WALL, HOOK_RCPT, 1.0);
	CHECK_INT(metric_value(M_CONNECTIONS_ACCEPTED, 0, 0), 0);
	buf_init(&b, 1024);
	CHECK_INT(metrics_render(&b), 0);
	CHECK_INT(buf_used(&b), 0);
	metrics_init(SHARDS);
}

static void
counters_count_per_label(void)
{
	int64_t q = metric_value(M_SESSIONS, M_SESS_QUIT, 0);
	int64_t t = metric_value(M_SESSIONS, M_SESS_TIMEOUT, 0);

	metric_inc_l(M_SESSIONS, M_SESS_QUIT);
	metric_add_l(M_SESSIONS, M_SESS_QUIT, 41);
	CHECK_INT(metric_value(M_SESSIONS, M_SESS_QUIT, 0), q + 42);
	CHECK_INT(metric_value(M_SESSIONS, M_SESS_TIMEOUT, 0), t);
}

static void
out_of_range_ids_and_labels_do_nothing(void)
{
	char *before = render(), *after;

	metric_inc_l(M_SESSIONS, 5);		/* five outcomes: 0..4 */
	metric_inc_l(M_SESSIONS, 1000000);
	metric_inc_l2(M_SESSIONS, 0, 1);	/* no second dimension */
	metric_inc(M_COUNT);
	metric_inc((enum metric_id)(M_COUNT + 5));
	hist_observe_l(M_HOOK_CPU, HOOK_COUNT, 1.0);
	hist_observe(M_CONNECTIONS_ACCEPTED, 1.0);	/* not a histogram */
	metric_set_l(M_QUEUE_MESSAGES, 2, 7);
	after = render();
	CHECK_STR(after, before);
}

static void
gauges_go_up_and_down(void)
{
	metric_set(M_CONNECTIONS_OPEN, 5);
	metric_gauge_add(M_CONNECTIONS_OPEN, -7);
	CHECK_INT(metric_value(M_CONNECTIONS_OPEN, 0, 0), -2);
	has_line(render(), "luasmtpd_connections_open -2");
	metric_set(M_CONNECTIONS_OPEN, 0);
}

static void
two_labels_address_their_own_series(void)
{
	int maildir = metric_label_index(M_DELIVERIES, 0, "maildir");
	int pipe = metric_label_index(M_DELIVERIES, 0, "pipe");
	int rej = metric_label_index(M_DELIVERIES, 1, "reject");

	CHECK(maildir >= 0 && pipe >= 0 && rej >= 0);
	metric_inc_l2(M_DELIVERIES, (unsigned)maildir, 0);
	metric_inc_l2(M_DELIVERIES, (unsigned)maildir, 0);
	metric_inc_l2(M_DELIVERIES, (unsigned)pipe, (unsigned)rej);
	has_line(render(), "luasmtpd_deliveries_total{target=\"maildir\","
	    "outcome=\"delivered\"} 2");
	has_line(render(), "luasmtpd_deliveries_total{target=\"pipe\","
	    "outcome=\"reject\"} 1");
	has_line(render(), "luasmtpd_deliveries_total{target=\"pipe\","
	    "outcome=\"delivered\"} 0");
}

static void
histogram_buckets_are_inclusive_and_cumulative(void)
{
	char *text;

	/* A bound is in its own bucket (le: less than or equal). */
	hist_observe_l(M_HOOK_WALL, HOOK_VRFY, 0.001);
	hist_observe_l(M_HOOK_WALL, HOOK_VRFY, 0.0010001);
	hist_observe_l(M_HOOK_WALL, HOOK_VRFY, 1000);	/* only +Inf */
	hist_observe_l(M_HOOK_WALL, HOOK_VRFY, -5);	/* counts as 0 */
	hist_observe_l(M_HOOK_WALL, HOOK_VRFY, NAN);	/* counts as 0 */
	text = render();
	has_line(text, "luasmtpd_hook_wall_seconds_bucket{hook=\"vrfy\","
	    "le=\"0.0001\"} 2");
	has_line(text, "luasmtpd_hook_wall_seconds_bucket{hook=\"vrfy\","
	    "le=\"0.0005\"} 2");
	has_line(text, "luasmtpd_hook_wall_seconds_bucket{hook=\"vrfy\","
	    "le=\"0.001\"} 3");
	has_line(text, "luasmtpd_hook_wall_seconds_bucket{hook=\"vrfy\","
	    "le=\"0.0025\"} 4");
	has_line(text, "luasmtpd_hook_wall_seconds_bucket{hook=\"vrfy\","
	    "le=\"60\"} 4");
	has_line(text, "luasmtpd_hook_wall_seconds_bucket{hook=\"vrfy\","
	    "le=\"+Inf\"} 5");
	has_line(text, "luasmtpd_hook_wall_seconds_count{hook=\"vrfy\"} 5");
	has_line(text, "luasmtpd_hook_wall_seconds_sum{hook=\"vrfy\"} "
	    "1000.002000100");
	/* The other clock and the other hooks saw nothing. */
	has_line(text, "luasmtpd_hook_cpu_seconds_count{hook=\"vrfy\"} 0");
	has_line(text, "luasmtpd_hook_wall_seconds_count{hook=\"auth\"} 0");
}

static void
the_exposition_has_help_and_type_before_its_samples(void)
{
	char *text = render();
	const char *help, *type, *sample;

	help = strstr(text, "# HELP luasmtpd_sessions_total ");
	type = strstr(text, "# TYPE luasmtpd_sessions_total counter\n");
	sample = strstr(text, "\nluasmtpd_sessions_total{outcome=\"quit\"} ");
	CHECK(help != NULL && type != NULL && sample != NULL);
	CHECK(help < type && type < sample);
	has_line(text, "# TYPE luasmtpd_connections_open gauge");
	has_line(text, "# TYPE luasmtpd_operation_seconds histogram");
	/* Unlabelled: no braces. */
	CHECK(strstr(text, "\nluasmtpd_connections_accepted_total ") != NULL);
	CHECK(strstr(text, "{}") == NULL);
	CHECK(text[strlen(text) - 1] == '\n');
	/* Every metric of the table, once. */
	for (unsigned id = 0; id < M_COUNT; id++) {
		char type_line[160];
		const char *p;

		snprintf(type_line, sizeof(type_line), "# TYPE %s%s ",
		    metric_defs[id].name, metric_defs[id].type ==
		    METRIC_COUNTER ? "_total" : "");
		p = strstr(text, type_line);
		CHECK(p != NULL);
		CHECK(strstr(p + 1, type_line) == NULL);
	}
}

static void
a_small_buffer_is_refused_not_overrun(void)
{
	struct buf b;

	buf_init(&b, 4096);
	CHECK_INT(metrics_render(&b), -1);
	CHECK(buf_used(&b) <= 4096);
	buf_reset(&b);
}

static void
label_lookups_fall_back_to_other(void)
{
	CHECK_INT(metric_label_index(M_DELIVERIES, 0, "pipe-lmtp"), 5);
	CHECK_INT(metric_label_index(M_DELIVERIES, 0, "carrier-pigeon"),
	    metric_label_index(M_DELIVERIES, 0, "other"));
	/* No "other" among the outcomes: -1. */
	CHECK_INT(metric_label_index(M_DELIVERIES, 1, "lost"), -1);
	CHECK_INT(metric_label_index(M_CONNECTIONS_ACCEPTED, 0, "x"), -1);
	CHECK_INT(metric_label_index(M_DELIVERIES, 2, "maildir"), -1);
	CHECK_INT(metric_label_index(M_DELIVERIES, 0, NULL), -1);
}

static void
operation_names_map_to_their_first_word(void)
{
	static const struct {
		const char *op, *kind;
	} cases[] = {
		{ "dns.mx", "dns" }, { "dns.helo_check", "dns" },
		{ "deliver.maildir", "deliver" }, { "deliver", "deliver" },
		{ "kv.limit", "kv" }, { "http", "http" },
		{ "spf.check", "spf" }, { "sleep", "sleep" },
		{ "message read", "message" }, { "dnsx", "other" },
		{ "", "other" }, { "d", "other" }, { "kvv.get", "other" },
	};
	const char *const *v = metric_defs[M_OP_SECONDS].labels[0]->values;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_STR(v[metric_op_kind(cases[i].op)], cases[i].kind);
}

static void
shards_are_summed(void)
{
	int64_t base = metric_value(M_REPLIES, M_REPLY_3XX, 0);

	metrics_use_shard(1);
	metric_add_l(M_REPLIES, M_REPLY_3XX, 10);
	metrics_use_shard(2);
	metric_add_l(M_REPLIES, M_REPLY_3XX, 100);
	metrics_use_shard(SHARDS);		/* no such shard: unchanged */
	metric_inc_l(M_REPLIES, M_REPLY_3XX);
	metrics_use_shard(0);
	metric_inc_l(M_REPLIES, M_REPLY_3XX);
	CHECK_INT(metric_value(M_REPLIES, M_REPLY_3XX, 0), base + 112);
}

static void
a_forked_worker_writes_into_its_shard(void)
{
	int64_t base = metric_value(M_MESSAGES, M_MSG_ACCEPTED, 0);
	int status;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		metrics_use_shard(1);
		metric_add_l(M_MESSAGES, M_MSG_ACCEPTED, 7);
		hist_observe_l(M_OP_SECONDS, metric_op_kind("dns.a"), 0.5);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
	CHECK_INT(metric_value(M_MESSAGES, M_MSG_ACCEPTED, 0), base + 7);
	has_line(render(), "luasmtpd_operation_seconds_count{op=\"dns\"} 1");
}

static void *
hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		metric_inc_l(M_HOOK_ERRORS, HOOK_AUTH);
		hist_observe_l(M_HOOK_CPU, HOOK_AUTH, 0.25);
	}
	return NULL;
}

static void
threads_lose_no_update(void)
{
	int64_t base = metric_value(M_HOOK_ERRORS, HOOK_AUTH, 0);
	pthread_t t[THREADS];
	char line[160];

	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, hammer, NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_INT(metric_value(M_HOOK_ERRORS, HOOK_AUTH, 0),
	    base + THREADS * PER_THREAD);
	snprintf(line, sizeof(line), "luasmtpd_hook_cpu_seconds_count"
	    "{hook=\"auth\"} %d", THREADS * PER_THREAD);
	has_line(render(), line);
	/* 0.25 is exact in binary: the sum is too. */
	snprintf(line, sizeof(line), "luasmtpd_hook_cpu_seconds_sum"
	    "{hook=\"auth\"} %.9f", 0.25 * THREADS * PER_THREAD);
	has_line(render(), line);
}

static const struct unit_case cases[] = {
	{ "nothing counts before metrics_init", nothing_counts_before_init },
	{ "counters count per label", counters_count_per_label },
	{ "out-of-range ids and labels change nothing",
	    out_of_range_ids_and_labels_do_nothing },
	{ "gauges go up and down", gauges_go_up_and_down },
	{ "two labels address their own series",
	    two_labels_address_their_own_series },
	{ "histogram buckets are inclusive and cumulative",
	    histogram_buckets_are_inclusive_and_cumulative },
	{ "the exposition has HELP and TYPE before its samples",
	    the_exposition_has_help_and_type_before_its_samples },
	{ "a small buffer is refused, not overrun",
	    a_small_buffer_is_refused_not_overrun },
	{ "label lookups fall back to other", label_lookups_fall_back_to_other },
	{ "operation names map to their first word",
	    operation_names_map_to_their_first_word },
	{ "shards are summed", shards_are_summed },
	{ "a forked worker writes into its shard",
	    a_forked_worker_writes_into_its_shard },
	{ "threads lose no update", threads_lose_no_update },
};

UNIT_MAIN(cases)
