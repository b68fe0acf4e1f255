/*
 * config.c — defaults of struct config (see config.h and limits.h).
 */
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util/limits.h"

void
config_defaults(struct config *c)
{
	char host[sizeof(c->hostname)] = "";

	memset(c, 0, sizeof(*c));
	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		strcpy(host, "localhost");
	memcpy(c->hostname, host, sizeof(host));
	strcpy(c->spool_dir, "var/spool");
	c->max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
	c->max_recipients = DEFAULT_MAX_RECIPIENTS;
	c->max_hops = DEFAULT_MAX_HOPS;
	c->max_errors = DEFAULT_MAX_ERRORS;
	c->max_commands = DEFAULT_MAX_COMMANDS;
	c->max_junk_commands = DEFAULT_MAX_JUNK_COMMANDS;
	c->max_transactions = DEFAULT_MAX_TRANSACTIONS;
	c->max_connections = DEFAULT_MAX_CONNECTIONS;
	c->max_connections_per_ip = DEFAULT_MAX_CONNECTIONS_PER_IP;
	c->command_line_max = SMTP_CMD_LINE_MAX;
	c->text_line_max = SMTP_TEXT_LINE_MAX;
	c->min_data_rate = 500;		/* Postfix's smtpd_min_data_rate */
	c->timeout_command = DEFAULT_TIMEOUT_COMMAND;
	c->timeout_data = DEFAULT_TIMEOUT_DATA;
	c->timeout_hook = DEFAULT_TIMEOUT_HOOK;
	c->hook_cpu_limit = DEFAULT_HOOK_CPU_LIMIT;
	c->timeout_tls_handshake = 30.0;
	c->timeout_proxy = DEFAULT_TIMEOUT_PROXY;
	c->greet_pause = 0;
	c->reject_early_talkers = true;
	c->forbid_unauth_pipelining = true;	/* Postfix >= 3.9 */
	c->mailauth.strip_results = true;
	c->bare_lf = BARE_LF_REJECT;
	c->bare_lf_reject_code = 550;
	c->received_header = true;
	c->smtputf8 = true;
	c->chunking = true;
	c->workers = 16;	/* deliveries in flight: fsyncs overlap */
	c->max_auth_failures = 3;
	c->auth_failure_delay = 1.0;
	log_sink_defaults(&c->log);
	/* Without the file libunbound resolves from the root itself. */
	c->dns.resolv_conf = access("/etc/resolv.conf", R_OK) == 0;
	if (access(CONFIG_DNS_ROOT_KEY, R_OK) == 0)
		c->dns.trust_anchor_file = CONFIG_DNS_ROOT_KEY;
}
