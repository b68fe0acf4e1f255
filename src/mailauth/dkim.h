/*
 * dkim.h — DKIM verification and signing (RFC 6376, RFC 8463, RFC 8301)
 * through libopendkim, never on the event loop.
 *
 * DESCRIPTION
 *	Verification streams: dkim_verify_new() when the spool file is opened,
 *	dkim_verify_write() with the message octets as they are written to
 *	it, dkim_verify_finish() at the end of data; its callback runs later,
 *	on the loop thread, with one result per signature (several per
 *	message).  Signing reads the message from its spool file on a worker:
 *	dkim_sign_start() with one or more (domain, selector, key) and a
 *	callback that gets the DKIM-Signature fields to prepend.  RSA
 *	signatures are libopendkim's; Ed25519 signatures are made with
 *	OpenSSL over libopendkim's canonicalization (dkim_sign_ed.c says why:
 *	libopendkim 2.11 signs Ed25519, but leaks the key of every such
 *	signature and mis-folds the "simple" header case).
 *
 * WHERE THE WORK RUNS (verification)
 *	The loop thread only copies: the header block (at most
 *	DKIM_HEADER_MAX octets) and the body in DKIM_CHUNK_SIZE chunks, a
 *	memcpy of each octet (25 MB: a few milliseconds in all).  Hashing runs
 *	on the CPU pool (workq_cpu) in order, one job of a verifier at a
 *	time, overlapping the transfer: the header as soon as it is complete
 *	(so the key lookups start while the body still arrives), then each
 *	batch of chunks.  We did not hash on the loop (measured: libopendkim
 *	takes 36 ms for 25 MB with simple and 92 ms with relaxed body
 *	canonicalization, per signature, which every other client would wait
 *	out, times the messages arriving at once) and did not verify only at
 *	the end from the spool file (the verdict would wait for a second pass
 *	over the whole message).
 *	When the pool falls behind (its threads may be busy with SPF lookups)
 *	the copies are capped at DKIM_BACKLOG_MAX octets: past it the
 *	verifier stops copying and, at dkim_verify_finish(), reads the rest
 *	back from the spool file on the pool (pread on its own descriptor).
 *	So memory per message stays under DKIM_HEADER_MAX + DKIM_BACKLOG_MAX +
 *	DKIM_CHUNK_SIZE whatever its size, and the loop never waits.
 *
 *	Key lookups (TXT at selector._domainkey.domain) go through our
 *	resolver (src/dns) with dns_query() from the loop, all signatures'
 *	keys in parallel; libopendkim gets the answers through its key lookup
 *	callback (dkim_set_key_lookup) when it checks the signatures, on the
 *	pool.  Its own resolver is never used (its query functions are
 *	replaced by ones that fail).
 *
 * STANDARDS
 *	RFC 6376 (DKIM): §3.5 tags, §3.6.1 key records, §5.4 headers to sign,
 *	§6.1 verification, §8.15 oversigning.  RFC 8463 (ed25519-sha256).
 *	RFC 8301 (rsa-sha1 not valid, keys of 1024 bits at least).
 *	RFC 8601 §2.7.1 (the result names pass, fail, neutral, policy,
 *	temperror, permerror, none).
 *
 * RESOURCE CONTROLS
 *	DKIM_SIGS_MAX signatures evaluated per message (later DKIM-Signature
 *	fields are not given to libopendkim at all: it would hash the body
 *	once per distinct canonicalization and length of each), a header block
 *	of DKIM_HEADER_MAX octets, key records of DKIM_KEY_RECORD_MAX octets,
 *	RSA keys of DKIM_KEY_BITS_MIN to DKIM_KEY_BITS_MAX bits, one DNS
 *	lookup per distinct key, a timeout for the whole check.
 *
 * SECURITY
 *	Everything in a result (d=, s=, i=, reasons) came from the message or
 *	from DNS: printable ASCII, bounded, but not trusted; authres.c quotes
 *	it before it reaches a header.  Private keys stay in memory in one
 *	place (struct dkim_key) and are cleansed when freed.
 */
#ifndef LUASMTPD_DKIM_H
#define LUASMTPD_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dns_ctx;

/* Signatures evaluated per message; later ones are counted as skipped. */
#define DKIM_SIGS_MAX		10
/* The header block (all fields before the empty line). */
#define DKIM_HEADER_MAX		(256 * 1024)
/* Body copies: chunk size, and the copies in memory at most. */
#define DKIM_CHUNK_SIZE		(64 * 1024)
#define DKIM_BACKLOG_MAX	(16 * DKIM_CHUNK_SIZE)
/* A key record: libopendkim copies it into a buffer of 1024 octets
 * (BUFRSZ in its dkim_get_key()); a longer one is refused. */
#define DKIM_KEY_RECORD_MAX	1024
/* RSA key sizes accepted (RFC 8301 §3.2: verifiers must handle 1024 to
 * 4096 bits; more costs time and does not fit DKIM_KEY_RECORD_MAX). */
#define DKIM_KEY_BITS_MIN	1024
#define DKIM_KEY_BITS_MAX	4096
/* Timeouts in seconds: from dkim_verify_finish() or dkim_sign_start() to
 * the callback, when none is given, and the cap. */
#define DKIM_TIMEOUT_DEFAULT	20.0
#define DKIM_TIMEOUT_MAX	60.0
/* Result fields. */
#define DKIM_DOMAIN_MAX		253
#define DKIM_SELECTOR_MAX	253
#define DKIM_IDENTITY_MAX	320
#define DKIM_ALGORITHM_MAX	24
/* The start of b= kept for header.b (RFC 6008 §4: 8 are usually enough). */
#define DKIM_HEADER_B_MAX	16
#define DKIM_REASON_MAX		160
/* Signing: signatures made in one pass, header names to sign. */
#define DKIM_SIGN_MAX		4
#define DKIM_SIGN_HEADERS_MAX	48
#define DKIM_HEADER_NAME_MAX	64
/* Header fields to prepend, or a whole message in memory, to sign. */
#define DKIM_SIGN_PREFIX_MAX	(1024 * 1024)
/* A private key file. */
#define DKIM_KEY_FILE_MAX	(16 * 1024)

/* RFC 8601 §2.7.1; DKIM_RES_NONE: the message has no signature. */
enum dkim_res {
	DKIM_RES_NONE,
	DKIM_RES_PASS,
	DKIM_RES_FAIL,
	DKIM_RES_POLICY,
	DKIM_RES_NEUTRAL,
	DKIM_RES_TEMPERROR,
	DKIM_RES_PERMERROR,
};

const char	*dkim_res_name(enum dkim_res);	/* "pass", ... */

/* One signature's outcome. */
struct dkim_sig_result {
	enum dkim_res	 res;
	char		 domain[DKIM_DOMAIN_MAX + 1];		/* d= */
	char		 selector[DKIM_SELECTOR_MAX + 1];	/* s= */
	char		 identity[DKIM_IDENTITY_MAX + 1];	/* i=, or "@d" */
	char		 algorithm[DKIM_ALGORITHM_MAX];		/* a= */
	char		 b[DKIM_HEADER_B_MAX + 1];		/* b= start */
	/* Why: "signature verified", "body hash did not verify", "key too
	 * small (512 bits)", "no key for signature", "DNS timeout"... */
	char		 reason[DKIM_REASON_MAX];
	int64_t		 body_length;	/* l=, or -1 */
	/* l= given: only the first body_length octets of the canonicalized
	 * body are signed, anything may follow (RFC 6376 §8.2). */
	bool		 partial;
	bool		 testing;	/* the key has t=y */
	bool		 dnssec;	/* the key record was DNSSEC-validated */
	unsigned	 key_bits;	/* 0 if no key was decoded */
};

struct dkim_verify_result {
	/* The best signature's result (pass if any passed), or NONE when the
	 * message has no signature, or TEMPERROR / PERMERROR when it could
	 * not be checked at all (reason says why; nsigs is then 0). */
	enum dkim_res	 res;
	char		 reason[DKIM_REASON_MAX];
	size_t		 nsigs;
	struct dkim_sig_result sig[DKIM_SIGS_MAX];	/* in header order */
	unsigned	 skipped;	/* signatures past DKIM_SIGS_MAX */
	uint64_t	 octets;	/* message octets given */
	/* Octets read back from the spool file because the CPU pool fell
	 * behind (see WHERE THE WORK RUNS). */
	uint64_t	 reread;
};

struct dkim_verify_opts {
	/* Seconds from dkim_verify_finish() to the callback; 0: default. */
	double		 timeout;
	/* Per key lookup; 0: the resolver's own. */
	double		 dns_timeout;
	/* RSA keys with fewer bits get "policy"; 0: DKIM_KEY_BITS_MIN.  At
	 * most DKIM_KEY_BITS_MAX. */
	unsigned	 min_key_bits;
	/* RFC 8301 §3.1: rsa-sha1 signatures are "policy" unless allowed. */
	bool		 allow_sha1;
	uint64_t	 log_id;	/* session id for log lines */
};

struct dkim_verify;

/* Called once, on the loop thread; the result is valid during the call
 * only, and so is the verifier (it is freed when the callback returns). */
typedef void (*dkim_verify_cb)(void *arg, const struct dkim_verify_result *);

/*
 * Once, on the loop thread, before any other call (dkim_verify_new() and
 * dkim_sign_start() call it if needed): the libopendkim handles.  0, or -1
 * with err set (libopendkim refused an option).
 */
int		 dkim_lib_init(char *err, size_t errlen);
/* After every verifier and signer is gone (tests, shutdown). */
void		 dkim_lib_shutdown(void);

/*
 * A verifier for one message.  spool_fd is the descriptor of the spool
 * file the message is written to (it is dup()ed: the caller may close
 * its own) and offset the file position of the message's first octet
 * (after the Received: field we wrote); spool_fd -1 means no file, and a
 * message larger than the backlog is then a temperror.  opts may be NULL.
 * dns and the pool workq_cpu must outlive the verifier.  Never NULL.
 */
struct dkim_verify *dkim_verify_new(struct dns_ctx *dns, int spool_fd,
		    uint64_t offset, const struct dkim_verify_opts *opts);
/*
 * The next octets of the message, exactly as written to the spool file
 * (CRLF line ends, dot-unstuffed), on the loop thread.  Copies at most
 * DKIM_CHUNK_SIZE at a time into bounded buffers and returns at once.
 */
void		 dkim_verify_write(struct dkim_verify *, const void *buf,
		    size_t len);
/*
 * The message is complete and its spool file flushed (spool_flush()):
 * cb is called later from the loop, never from inside this call.
 */
void		 dkim_verify_finish(struct dkim_verify *, dkim_verify_cb cb,
		    void *arg);
/* Drop the verifier at any time before its callback: the callback is never
 * called.  Safe from inside any callback; does nothing during its own. */
void		 dkim_verify_cancel(struct dkim_verify *);

/* ---- signing ------------------------------------------------------------ */

enum dkim_key_type {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

/* A private key in memory, shared by reference (loop thread). */
struct dkim_key;

/*
 * Read a PEM private key (RSA of DKIM_KEY_BITS_MIN to DKIM_KEY_BITS_MAX
 * bits, or Ed25519; unencrypted) from path: blocking file I/O, call it at
 * start-up or on a worker.  NULL with err set on failure.  The key starts
 * with one reference.  Reloading is loading again and replacing the old
 * pointer: signatures in progress keep their own reference.
 */
struct dkim_key	*dkim_key_load(const char *path, char *err, size_t errlen);
struct dkim_key	*dkim_key_from_pem(const char *pem, size_t len, char *err,
		    size_t errlen);
struct dkim_key	*dkim_key_ref(struct dkim_key *);
void		 dkim_key_unref(struct dkim_key *);	/* NULL-safe */
enum dkim_key_type dkim_key_type(const struct dkim_key *);
unsigned	 dkim_key_bits(const struct dkim_key *);
/* The TXT record to publish at selector._domainkey.domain (RFC 6376
 * §3.6.1, RFC 8463 §4: "v=DKIM1; k=rsa; p=..."): 0, or -1 if out is too
 * small (a 4096-bit RSA record needs about 760 octets). */
int		 dkim_key_record(const struct dkim_key *, char *out,
		    size_t outlen);

enum dkim_canon {
	DKIM_C_RELAXED,		/* the default */
	DKIM_C_SIMPLE,
};

/* One signature to make (all tags but v a c d s t h bh b are left out:
 * no l=, no x=, no z=; i= when given). */
struct dkim_sign_opts {
	const char	*domain;	/* d= */
	const char	*selector;	/* s= */
	struct dkim_key	*key;		/* its type selects a= */
	enum dkim_canon	 header_canon;
	enum dkim_canon	 body_canon;
	/* Header field names to sign, NULL-terminated; NULL: the default
	 * list (RFC 6376 §5.4.1, dkim_sign_default_headers).  "From" is
	 * always signed, and signed once more than it occurs (§8.15). */
	const char	*const *headers;
	const char	*identity;	/* i=, or NULL */
};

extern const char *const dkim_sign_default_headers[];

struct dkim_sign_result {
	bool		 ok;
	char		 error[DKIM_REASON_MAX];	/* when !ok */
	size_t		 n;
	/* "DKIM-Signature: v=1; ...\r\n", folded, one per dkim_sign_opts in
	 * order; prepend them (order among them does not matter). */
	char		*field[DKIM_SIGN_MAX];
	size_t		 len[DKIM_SIGN_MAX];
};

struct dkim_sign_req;

/* Once, on the loop thread; the result (and its fields) is valid during
 * the call only. */
typedef void (*dkim_sign_cb)(void *arg, const struct dkim_sign_result *);

/*
 * Sign the message made of prefix[0..prefixlen) (header fields that the
 * delivery will prepend; may be NULL) followed by the spool file from
 * offset to its end (fd -1: the prefix is the whole message), on the CPU
 * pool, with n signatures (1 to DKIM_SIGN_MAX).  The file is read with
 * pread() on a dup() of fd.  The completion comes on the loop of
 * workq_cpu, the program's default loop.
 * Strings and the header list are copied; each key gets a reference.
 * timeout 0: DKIM_TIMEOUT_DEFAULT.  Returns NULL (and never calls cb) if
 * an option is invalid, with err set; otherwise cb is called later, never
 * from inside this call.
 */
struct dkim_sign_req *dkim_sign_start(const struct dkim_sign_opts *opts,
		    size_t n, int fd, uint64_t offset, const void *prefix,
		    size_t prefixlen, double timeout, dkim_sign_cb cb, void *arg,
		    char *err, size_t errlen);
/* After this cb is never called; the worker finishes on its own. */
void		 dkim_sign_cancel(struct dkim_sign_req *);

/* Verifiers and signers not yet freed (shutdown, tests). */
unsigned	 dkim_pending(void);

#endif
