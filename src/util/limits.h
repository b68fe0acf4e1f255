/*
 * limits.h — every fixed bound of luasmtpd in one place, with its source.
 *
 * Values that the config may change have a DEFAULT_ prefix; the config
 * loader enforces the RFC minimums noted beside them.  Everything the
 * network can make us allocate is bounded by one of these.
 */
#ifndef LUASMTPD_LIMITS_H
#define LUASMTPD_LIMITS_H

/* RFC 5321 §4.5.3.1.4: command line, including the verb and CRLF. */
#define SMTP_CMD_LINE_MAX		512
/*
 * RFC 5321 §4.5.3.1.4 lets extensions raise the command limit.  MAIL and
 * RCPT carry ESMTP parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531
 * SMTPUTF8, RFC 4954 AUTH= with up to 500 octets of xtext): allow this much
 * more on those two verbs.
 */
#define SMTP_PARAM_ALLOWANCE		512
/* RFC 4954 §4: an AUTH line (initial response) may be 12288 octets. */
#define SMTP_AUTH_LINE_MAX		12288
/* Largest line the reader holds while looking for its end. */
#define SMTP_READ_LINE_MAX		SMTP_AUTH_LINE_MAX

/* RFC 5321 §4.5.3.1.6: text line, including CRLF. */
#define SMTP_TEXT_LINE_MAX		1000
/* RFC 5321 §4.5.3.1.3: path 256 octets including the angle brackets. */
#define SMTP_PATH_MAX			256
/* RFC 5321 §4.5.3.1.1 and §4.5.3.1.2. */
#define SMTP_LOCAL_PART_MAX		64
#define SMTP_DOMAIN_MAX			255
/* HELO/EHLO argument: a domain or an address literal. */
#define SMTP_HELO_MAX			255
/* Reply text we accept from a hook (one line, after the codes). */
#define SMTP_REPLY_TEXT_MAX		400
/* ESMTP parameters on one MAIL or RCPT command. */
#define SMTP_PARAMS_MAX			16
#define SMTP_PARAM_NAME_MAX		32

/* RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted. */
#define SMTP_RCPTS_MIN			100
#define DEFAULT_MAX_RECIPIENTS		1000
/* RFC 1870 SIZE: the advertised and enforced maximum message size. */
#define DEFAULT_MAX_MESSAGE_SIZE	(25u * 1024 * 1024)
/* RFC 5321 §6.3: hop count (Received: headers) before we call it a loop. */
#define DEFAULT_MAX_HOPS		50

/* Per-session bounds (a session that reaches one gets 421 and is closed). */
#define DEFAULT_MAX_ERRORS		20
#define DEFAULT_MAX_COMMANDS		10000
#define DEFAULT_MAX_JUNK_COMMANDS	100
#define DEFAULT_MAX_TRANSACTIONS	1000

/* Connection bounds. */
#define DEFAULT_MAX_CONNECTIONS		1000
#define DEFAULT_MAX_CONNECTIONS_PER_IP	50

/* RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for a command. */
#define DEFAULT_TIMEOUT_COMMAND		300.0
#define DEFAULT_TIMEOUT_DATA		300.0
/* A hook, across all of its yields. */
#define DEFAULT_TIMEOUT_HOOK		60.0
/* A hook between two yields (CPU time on the event loop). */
#define DEFAULT_HOOK_CPU_LIMIT		1.0
/*
 * A PROXY protocol header, from accept to its last octet (a balancer
 * sends it at once; the header's own bound is in net/proxy.h).
 */
#define DEFAULT_TIMEOUT_PROXY		5.0
/* How long we keep a session open to deliver a final reply (421, 221). */
#define CLOSE_LINGER_SECONDS		5.0

/* Output we queue for a client that does not read its replies. */
#define OUTPUT_HIGH_WATER		(16 * 1024)
#define OUTPUT_MAX			(64 * 1024)
/* Input held for one session (pipelined commands + one partial line). */
#define INPUT_MAX			(SMTP_READ_LINE_MAX + 4096)
/* Shared read scratch: one read(2) of at most this many bytes. */
#define READ_CHUNK			(64 * 1024)

/* Header section the message object parses for Lua. */
#define MESSAGE_HEADER_MAX		(256 * 1024)
/*
 * Header fields hooks add to a message (tx:add_header): all of them, one
 * field's value, and one field name (RFC 5322 §2.1.1: lines of at most
 * 998 octets; we fold at 78 where the value has white space).
 */
#define ADDED_HEADERS_MAX		(64 * 1024)
#define ADDED_HEADER_VALUE_MAX		8192
#define ADDED_HEADER_NAME_MAX		76

/* Bounded excerpts of client text in logs. */
#define LOG_EXCERPT_MAX			100

#endif
