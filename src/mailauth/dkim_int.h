/*
 * dkim_int.h — what the DKIM files share: the libopendkim handles
 * (dkim_lib.c), one verifier as its loop side (dkim_verify.c) and its
 * worker side (dkim_verify_run.c) see it, and the header scanner.
 *
 * Ownership of a verifier's fields: "loop" fields are touched only on the
 * loop thread; "job" fields only by the job in flight (at most one per
 * verifier), or by the loop while no job is in flight.  workq's hand-off
 * (a mutex on submit and on completion) orders the two.
 */
#ifndef LUASMTPD_DKIM_INT_H
#define LUASMTPD_DKIM_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ev.h>
#include <opendkim/dkim.h>

#include "dns/dns.h"
#include "mailauth/dkim.h"
#include "util/workq.h"

/* File reads of the worker (spool tail, signing). */
#define DKIM_READ_SIZE		(64 * 1024)
/* A new job once this much is queued (fewer, larger jobs). */
#define DKIM_JOB_MIN		DKIM_CHUNK_SIZE
#define DKIM_BACKLOG_CHUNKS	(DKIM_BACKLOG_MAX / DKIM_CHUNK_SIZE)

/* The libopendkim handles (dkim_lib.c): read-only once made, shared by
 * every thread, as libopendkim allows. */
extern DKIM_LIB	*dkim_vlib;
extern DKIM_LIB	*dkim_slib;

/* A private key (dkim_key.c): immutable once loaded but for refs. */
struct dkim_key {
	atomic_uint	 refs;
	enum dkim_key_type type;
	unsigned	 bits;
	char		*pem;		/* PKCS#8, NUL-terminated, for RSA */
	size_t		 pemlen;
	struct evp_pkey_st *pkey;	/* for Ed25519 (EVP_PKEY) */
	char		*record;	/* the public TXT record */
};

/* Verifiers and signers alive (loop thread). */
extern unsigned	 dkim_live;

/* ---- the header/body boundary: CRLF CRLF, or a CRLF at the start ---- */

struct dkim_hdrscan {
	unsigned	 state;		/* CRLF CRLF octets matched */
	bool		 done;
	uint64_t	 header_len;	/* octets before the empty line */
};

void		 dkimv_hdrscan_init(struct dkim_hdrscan *);
/* Feeds p[0..len); returns how many octets belong to the header block and
 * its empty line (len if the block goes on), setting done at its end. */
size_t		 dkimv_hdrscan_feed(struct dkim_hdrscan *, const unsigned char *p,
		    size_t len);

/* A DKIM-Signature field (its name, case-insensitively). */
bool		 dkimv_is_sig_field(const unsigned char *f, size_t len);
/* fn for each field of the header block p[0..len) without its CRLF:
 * fields end at a CRLF not followed by white space (RFC 5322 §2.2.3);
 * empty lines are skipped. */
void		 dkimv_fields(unsigned char *p, size_t len,
		    void (*fn)(void *, unsigned char *, size_t), void *arg);

/* ---- one verifier ---------------------------------------------------- */

struct dkim_chunk {
	struct dkim_chunk *next;
	size_t		 len;
	unsigned char	 data[DKIM_CHUNK_SIZE];
};

enum dkim_vstate {
	DKIM_V_STREAMING,	/* write() accepted */
	DKIM_V_FINISHING,	/* finish() called, working */
	DKIM_V_DELIVERING,	/* the callback runs */
	DKIM_V_ABANDONED,	/* cancelled or timed out: free when idle */
};

enum dkim_job_kind {
	DKIM_JOB_DATA,		/* header and/or body octets */
	DKIM_JOB_EOM,		/* signatures checked, results made */
};

/* A key to fetch: one per distinct (d=, s=). */
struct dkim_keyq {
	struct dkim_verify *v;
	char		 domain[DKIM_DOMAIN_MAX + 1];
	char		 selector[DKIM_SELECTOR_MAX + 1];
	struct dns_query *q;		/* loop; NULL when done */
	bool		 done;
	enum dns_status	 status;
	bool		 secure;
	char		*record;	/* the TXT chosen, or NULL */
	/* Set by the worker's lookup callback: why the key was refused
	 * before libopendkim saw it, and its size. */
	enum dkim_res	 refused;	/* DKIM_RES_NONE if not refused */
	char		 why[DKIM_REASON_MAX];
	unsigned	 bits;
};

struct dkim_verify {
	struct work	 work;		/* first: workq_submit() */
	/* loop */
	struct ev_loop	*loop;
	struct dns_ctx	*dns;
	struct dkim_verify_opts opts;
	enum dkim_vstate state;
	ev_timer	 timer;		/* the check's timeout */
	ev_timer	 kick;		/* finish() goes on from the loop */
	dkim_verify_cb	 cb;
	void		*arg;
	int		 fd;		/* our dup() of the spool file, or -1 */
	uint64_t	 base;		/* file offset of the message */
	uint64_t	 fed;		/* message octets given to write() */
	struct dkim_hdrscan scan;
	unsigned char	*hdr;		/* the header block so far */
	size_t		 hdrlen, hdrcap;
	bool		 hdr_sent;	/* given to a job */
	struct dkim_chunk *qhead, *qtail;	/* body copies not yet sent */
	size_t		 qbytes;
	struct dkim_chunk *freel;	/* spare chunks */
	unsigned	 nchunks;	/* chunks allocated */
	bool		 spill;		/* the rest comes from the file */
	uint64_t	 spill_from;	/* message offset where it starts */
	bool		 job_running;
	bool		 end_sent;	/* the final data job was submitted */
	bool		 eom_sent;
	unsigned	 keys_pending;
	bool		 keys_started;
	/* job: inputs of the data job in flight */
	enum dkim_job_kind kind;
	unsigned char	*jhdr;		/* header block to feed, or NULL */
	size_t		 jhdrlen;
	struct dkim_chunk *batch;
	bool		 jfinal;	/* feed the file tail, end the message */
	uint64_t	 tail_from, tail_to;	/* message offsets */
	atomic_bool	 stopping;	/* cancelled or timed out */
	/* loop: the outcome so far (job_done() merges the job's) */
	bool		 nosig;		/* no signature: nothing more to do */
	enum dkim_res	 err_res;	/* a message-level error, or NONE */
	char		 err[DKIM_REASON_MAX];
	/* job (then loop when idle): libopendkim and what it found */
	DKIM		*dkim;
	bool		 eoh_done;	/* dkim_eoh() was called */
	bool		 jnosig;
	enum dkim_res	 jerr_res;
	char		 jerr[DKIM_REASON_MAX];
	unsigned	 nsigfields;	/* DKIM-Signature fields seen */
	unsigned	 skipped;
	struct dkim_keyq keys[DKIM_SIGS_MAX];
	size_t		 nkeys;
	unsigned char	*rbuf;		/* DKIM_READ_SIZE, for the file tail */
	uint64_t	 reread;	/* octets read from the file */
	struct dkim_verify_result res;
};

/* ---- one signature being made (dkim_sign.c, dkim_sign_ed.c) ---------- */

/* libopendkim builds a regex of the names to sign in 1024 octets. */
#define DKIM_SIGN_NAMES_MAX	900
/* h= entries of an Ed25519 signature (each signed field instance). */
#define DKIM_SIGN_FIELDS_MAX	256
#define DKIM_FIELD_PREFIX	"DKIM-Signature: "

struct dkim_sign_one {
	char		 domain[DKIM_DOMAIN_MAX + 1];
	char		 selector[DKIM_SELECTOR_MAX + 1];
	char		 identity[DKIM_IDENTITY_MAX + 1];
	struct dkim_key	*key;
	enum dkim_canon	 hc, bc;
	const char	*names[DKIM_SIGN_HEADERS_MAX + 1];
	char		 namebuf[DKIM_SIGN_NAMES_MAX + DKIM_SIGN_HEADERS_MAX];
	/* worker: libopendkim's signing handle (RSA), or the handle that
	 * hashes the body (Ed25519, dkim_sign_ed.c) */
	DKIM		*dkim;
};

/* dkim_sign_ed.c: an Ed25519 signature.  begin() with the header block
 * (its fields, without the empty line), body() per body chunk, finish()
 * gives the whole field (malloc'ed, "DKIM-Signature: ...\r\n").  Each
 * returns 0 / the field, or -1 / NULL with err set. */
int		 dkims_ed_begin(struct dkim_sign_one *, unsigned char *hdr,
		    size_t hdrlen, char *err, size_t errlen);
int		 dkims_ed_body(struct dkim_sign_one *, unsigned char *p,
		    size_t len, char *err, size_t errlen);
char		*dkims_ed_finish(struct dkim_sign_one *, unsigned char *hdr,
		    size_t hdrlen, size_t *len, char *err, size_t errlen);

/* dkim_verify_run.c: the jobs' run(). */
void		 dkimv_run(struct work *);
/* dkim_verify_run.c: libopendkim callbacks, installed by dkim_lib.c. */
DKIM_CBSTAT	 dkimv_prescreen(DKIM *, DKIM_SIGINFO **, int);
DKIM_CBSTAT	 dkimv_key_lookup(DKIM *, DKIM_SIGINFO *, unsigned char *,
		    size_t);

/* dkim_lib.c: dst = src cut to dstlen, every octet that is not printable
 * ASCII as '?'. */
void		 dkimv_printable(char *dst, size_t dstlen, const char *src);
/* dkim_lib.c: a name fit for a DNS query ("selector._domainkey.domain"):
 * labels of letters, digits, '-' and '_', 1 to 63 octets, 253 in all. */
bool		 dkimv_dns_name_ok(const char *name);

#endif
