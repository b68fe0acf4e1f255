/*
 * metrics_table.c — every metric of luasmtpd: name, help, type, labels
 * and histogram buckets (see metrics.h).  README.md ("Observability")
 * lists the same names for operators; spec/e2e/55-metrics_spec.lua scrapes
 * them.
 *
 * A label list is the fixed set of values a series can have; its order is
 * that of the matching enum in metrics.h (m_session_outcome, ...) or, for
 * the hook label, of enum hook_id (smtp/hook.h), which is checked at
 * compile time.  Names follow Prometheus' conventions: a luasmtpd_ prefix,
 * base units (seconds, bytes), counters get _total when exposed.
 */
#include <assert.h>

#include "metrics/metrics.h"
#include "smtp/hook.h"

#define NVALUES(a)	(sizeof(a) / sizeof((a)[0]) - 1)

static const char *const refuse_reasons[] = {
	"max_connections", "max_connections_per_ip", "no_descriptors", NULL,
};
static const char *const session_outcomes[] = {
	"quit", "timeout", "dropped", "rejected", "error", NULL,
};
static const char *const reply_classes[] = {
	"2xx", "3xx", "4xx", "5xx", NULL,
};
static const char *const message_outcomes[] = {
	"accepted", "discarded", "rejected", "tempfailed", NULL,
};
/* enum hook_id's order (hook.c's names). */
static const char *const hooks[] = {
	"connect", "helo", "mail", "rcpt", "data", "message", "reset",
	"disconnect", "vrfy", "auth", NULL,
};
static_assert(NVALUES(hooks) == HOOK_COUNT, "hook labels out of step with "
    "enum hook_id");
/* The first word of a task operation's name (task_op_ops.name). */
static const char *const op_kinds[] = {
	"deliver", "dns", "kv", "http", "spf", "sleep", "message", "other",
	NULL,
};
/* lb_deliver_record's kinds. */
static const char *const delivery_targets[] = {
	"maildir", "lmtp", "smtp", "lmtp_check", "pipe", "pipe-lmtp", "other",
	NULL,
};
static const char *const delivery_outcomes[] = {
	"delivered", "tempfail", "reject", NULL,
};
static const char *const queue_states[] = {
	"queued", "lost", NULL,
};
static const char *const scrape_statuses[] = {
	"ok", "bad_request", "not_found", "timeout", "busy", NULL,
};

static const struct metric_label l_refuse = { "reason", refuse_reasons };
static const struct metric_label l_session = { "outcome", session_outcomes };
static const struct metric_label l_class = { "class", reply_classes };
static const struct metric_label l_message = { "outcome", message_outcomes };
static const struct metric_label l_hook = { "hook", hooks };
static const struct metric_label l_op = { "op", op_kinds };
static const struct metric_label l_target = { "target", delivery_targets };
static const struct metric_label l_dlv = { "outcome", delivery_outcomes };
static const struct metric_label l_queue = { "state", queue_states };
static const struct metric_label l_scrape = { "status", scrape_statuses };

/*
 * Latency buckets, seconds: from 100 µs (a hook's CPU time, a cached DNS
 * answer) to a minute (timeouts.hook's default).
 */
static const double latency[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
#define LATENCY	latency, (unsigned)(sizeof(latency) / sizeof(latency[0]))

static_assert(NVALUES(refuse_reasons) == M_REFUSE_NO_FDS + 1, "refuse");
static_assert(NVALUES(session_outcomes) == M_SESS_ERROR + 1, "sessions");
static_assert(NVALUES(reply_classes) == M_REPLY_5XX + 1, "replies");
static_assert(NVALUES(message_outcomes) == M_MSG_TEMPFAILED + 1, "messages");
static_assert(NVALUES(queue_states) == M_QUEUE_LOST + 1, "queue");
static_assert(NVALUES(scrape_statuses) == M_SCRAPE_BUSY + 1, "scrapes");

const struct metric_def metric_defs[M_COUNT] = {
	[M_CONNECTIONS_ACCEPTED] = { "luasmtpd_connections_accepted",
	    "SMTP connections accepted (a session was started).",
	    METRIC_COUNTER, { NULL, NULL }, NULL, 0 },
	[M_CONNECTIONS_REFUSED] = { "luasmtpd_connections_refused",
	    "SMTP connections refused before a session, by reason.",
	    METRIC_COUNTER, { &l_refuse, NULL }, NULL, 0 },
	[M_CONNECTIONS_OPEN] = { "luasmtpd_connections_open",
	    "SMTP sessions open now.",
	    METRIC_GAUGE, { NULL, NULL }, NULL, 0 },
	[M_SESSIONS] = { "luasmtpd_sessions",
	    "SMTP sessions ended, by outcome.",
	    METRIC_COUNTER, { &l_session, NULL }, NULL, 0 },
	[M_REPLIES] = { "luasmtpd_replies",
	    "SMTP replies sent, by code class.",
	    METRIC_COUNTER, { &l_class, NULL }, NULL, 0 },
	[M_MESSAGES] = { "luasmtpd_messages",
	    "Messages whose content arrived, by the reply they got.",
	    METRIC_COUNTER, { &l_message, NULL }, NULL, 0 },
	[M_MESSAGE_BYTES] = { "luasmtpd_message_bytes",
	    "Octets of message content received, by the reply it got.",
	    METRIC_COUNTER, { &l_message, NULL }, NULL, 0 },
	[M_HOOK_ERRORS] = { "luasmtpd_hook_errors",
	    "Hooks that raised an error, timed out or returned a bad verdict.",
	    METRIC_COUNTER, { &l_hook, NULL }, NULL, 0 },
	[M_HOOK_WALL] = { "luasmtpd_hook_wall_seconds",
	    "Wall-clock time of a hook, from its start to its verdict.",
	    METRIC_HISTOGRAM, { &l_hook, NULL }, LATENCY },
	[M_HOOK_CPU] = { "luasmtpd_hook_cpu_seconds",
	    "CPU time the event loop spent running a hook's Lua code.",
	    METRIC_HISTOGRAM, { &l_hook, NULL }, LATENCY },
	[M_OP_SECONDS] = { "luasmtpd_operation_seconds",
	    "Time a hook waited for an operation (delivery, DNS, key-value, "
	    "HTTP, ...), by kind.",
	    METRIC_HISTOGRAM, { &l_op, NULL }, LATENCY },
	[M_DELIVERIES] = { "luasmtpd_deliveries",
	    "Recipient deliveries from hooks, by target kind and outcome.",
	    METRIC_COUNTER, { &l_target, &l_dlv }, NULL, 0 },
	[M_QUEUE_MESSAGES] = { "luasmtpd_queue_messages",
	    "Messages in the queue directory, by state.",
	    METRIC_GAUGE, { &l_queue, NULL }, NULL, 0 },
	[M_LOG_DROPPED] = { "luasmtpd_log_lines_dropped",
	    "Log lines the syslog or journal socket refused (written to "
	    "stderr instead).",
	    METRIC_COUNTER, { NULL, NULL }, NULL, 0 },
	[M_SCRAPES] = { "luasmtpd_metrics_requests",
	    "Requests to this endpoint, by how they were answered.",
	    METRIC_COUNTER, { &l_scrape, NULL }, NULL, 0 },
};
