/*
 * config.h — the server configuration as the C core sees it.
 *
 * Filled once by lua/lua_config.c from the Lua config file; read-only
 * afterwards.  smtp/ and net/ read it without knowing about Lua.  Every
 * option is documented with its default in README.md ("Options").
 */
#ifndef LUASMTPD_CONFIG_H
#define LUASMTPD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <sys/types.h>

#include "http/http.h"
#include "kv/kv.h"
#include "dns/dns.h"
#include "net/cidr.h"
#include "metrics/metrics_http.h"
#include "tls/tls.h"
#include "util/log.h"

/* Debian's dns-root-data: the root zone's trust anchor, used when the
 * config names none (see lua/lua_config_dns.c). */
#define CONFIG_DNS_ROOT_KEY	"/usr/share/dns/root.key"

enum bare_lf_mode {
	BARE_LF_REJECT,		/* refuse the command or message (default) */
	BARE_LF_NORMALIZE,	/* treat bare LF as CRLF; only CRLF.CRLF ends DATA */
};

enum tls_mode {
	TLS_NONE,
	TLS_STARTTLS,
	TLS_IMPLICIT,
};

/* sizeof(((struct sockaddr_un *)0)->sun_path), with its NUL. */
#define CONFIG_UNIX_PATH_MAX	108

struct listener_config {
	/* For logs and s.listener: "127.0.0.1:2525", "unix:/run/smtp.sock". */
	char			 name[CONFIG_UNIX_PATH_MAX + 8];
	char			 address[64];	/* numeric IPv4 or IPv6 */
	int			 port;		/* 0: let the kernel choose */
	enum tls_mode		 tls;
	bool			 require_tls;	/* MAIL before STARTTLS: 530 */
	bool			 auth;		/* offer AUTH (RFC 4954) */
	bool			 auth_plaintext; /* trusted: AUTH without TLS */
	bool			 require_auth;	/* MAIL before AUTH: 530 */
	bool			 lmtp;		/* speak LMTP (RFC 2033) */

	/* A unix-domain socket ("unix:PATH") instead of address:port. */
	bool			 is_unix;
	char			 path[CONFIG_UNIX_PATH_MAX];
	int			 unix_mode;	/* chmod after bind; -1: umask's */
	uid_t			 unix_owner;	/* chown; (uid_t)-1: unchanged */
	gid_t			 unix_group;	/* (gid_t)-1: unchanged */

	/*
	 * PROXY protocol (net/proxy.h): a header is required before
	 * anything else, from a TCP peer in proxy_from (a unix socket's
	 * mode and owner decide who may connect, so it has no list).
	 */
	bool			 proxy;
	struct cidr		*proxy_from;
	size_t			 nproxy_from;
	struct listener_config	*next;
};

struct config {
	char		 hostname[256];
	char		 spool_dir[PATH_MAX];
	struct listener_config *listeners;

	/* limits */
	size_t		 max_message_size;
	unsigned	 max_recipients;
	unsigned	 max_hops;
	unsigned	 max_errors;
	unsigned	 max_commands;
	unsigned	 max_junk_commands;
	unsigned	 max_transactions;
	unsigned	 max_connections;
	unsigned	 max_connections_per_ip;
	size_t		 command_line_max;	/* RFC 5321: 512 */
	size_t		 text_line_max;		/* RFC 5321: 1000 */
	unsigned	 min_data_rate;		/* bytes/s during DATA, 0: off */

	/* timeouts, seconds */
	double		 timeout_command;
	double		 timeout_data;
	double		 timeout_hook;
	double		 hook_cpu_limit;
	double		 timeout_tls_handshake;
	double		 timeout_proxy;		/* a PROXY header, whole */

	/* protocol behaviour */
	double		 greet_pause;
	bool		 reject_early_talkers;
	bool		 forbid_unauth_pipelining; /* after end of data: 554 */
	bool		 commit_per_file;	/* commit_sync = "file" (commit.h) */
	enum bare_lf_mode bare_lf;
	int		 bare_lf_reject_code;	/* 5xx; 521 also disconnects */
	bool		 received_header;
	bool		 smtputf8;
	bool		 chunking;
	unsigned	 workers;		/* disk/delivery threads */
	/*
	 * Set by main before the config loads: luasmtpd --stdio serves one
	 * session on standard input and output, so no listener is needed.
	 */
	bool		 stdio;

	/* TLS certificates and options (the `tls` table), if any. */
	bool		 tls_configured;
	struct tls_config tls;

	/* AUTH */
	unsigned	 max_auth_failures;	/* then 421 and close */
	double		 auth_failure_delay;	/* seconds, times failures */

	/*
	 * Policy clients for hooks (lua/lua_config_kv.c, lua_config_http.c):
	 * the `kv` and `http` tables, strings owned.  *_wanted: the config
	 * set the table or required the module while it loaded, so main.c
	 * opens it at start (kv.path NULL: <spool>/kv).
	 */
	struct kv_config kv;
	bool		 kv_wanted;
	struct http_config http;
	bool		 http_wanted;

	/*
	 * The resolver (the `dns` table, lua/lua_config_dns.c), as dns_new()
	 * takes it; its strings live as long as the process.  Default: the
	 * servers of /etc/resolv.conf, validating under CONFIG_DNS_ROOT_KEY
	 * if that file is readable.
	 */
	struct dns_config dns;

	/*
	 * Message authentication (the `mailauth` table,
	 * lua/lua_config_mailauth.c; src/mailauth).  wanted: the config set
	 * it or required luasmtpd.mailauth while it loaded.
	 */
	struct {
		bool	 wanted;
		char	*authserv_id;	/* NULL: the hostname */
		bool	 dkim_verify;	/* verify every message as it arrives */
		bool	 strip_results;	/* drop A-R claiming our id (RFC 8601 §5) */
		char	*psl;		/* public suffix list (DMARC) */
	} mailauth;
	/* Observability (lua/lua_config_obs.c): the Prometheus endpoint
	 * (`metrics`; not enabled: none) and the log sink (`log`). */
	struct metrics_http_config metrics;
	struct log_sink_config log;
};

void	config_defaults(struct config *);

#endif
