/*
 * cms_encrypt.h — encryption at rest to the recipient's key: a message
 * becomes an S/MIME message (CMS, RFC 5652; S/MIME 4.0, RFC 8551) that
 * only the holders of the recipients' private keys can read.
 *
 * WHAT IS WRITTEN (at the output descriptor's current offset, so the
 * caller may write lines of its own first):
 *
 *   <copied header fields, only if asked: opts.clear_headers>
 *   MIME-Version: 1.0
 *   Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data;
 *    name=smime.p7m              (folded; smime-type=enveloped-data for CBC)
 *   Content-Disposition: attachment; filename=smime.p7m
 *   Content-Transfer-Encoding: base64
 *
 *   <the BER ContentInfo (indefinite lengths: it is streamed) in base64,
 *    64 characters a line>
 *
 * Nothing is written before the first byte of the message (or finish).
 * with CRLF line ends (the spool's, SMTP's), or LF with opts.lf (Maildir).
 * The encrypted content is the input message, byte for byte (CMS binary
 * mode, no line-end canonicalisation): headers and body.  So From, To,
 * Cc, Subject, Date, Message-ID, Received... are NOT in the clear: the
 * clear part is the four MIME lines above.  opts.clear_headers names
 * header fields to copy into the clear too (for instance Date and
 * Message-ID, so a mail client can sort and thread before decrypting);
 * each copied field is the original's lines verbatim (folding kept, line
 * ends converted), every occurrence, found in the message's first
 * CMS_HEADER_SCAN_MAX bytes (none is copied from a header section longer
 * than that).  MIME-Version and Content-* cannot be copied: they belong
 * to the wrapper.  The encrypted copy always keeps them all.
 *
 * CIPHERS.  CMS_CIPHER_AES256_GCM (the default): AuthEnvelopedData
 * (RFC 5083, AES-GCM RFC 5084), authenticated; CMS_CIPHER_AES256_CBC:
 * EnvelopedData, for mail clients that cannot read AuthEnvelopedData.
 * Both decrypt with `openssl cms -decrypt` of Debian 12 (OpenSSL 3.0).
 * RSA recipients get key transport (KeyTransRecipientInfo, RSA PKCS#1
 * v1.5, what every S/MIME client reads); EC recipients key agreement
 * (KeyAgreeRecipientInfo, ephemeral-static ECDH, RFC 5753, with
 * OpenSSL's defaults: the X9.63 KDF over SHA-1, which RFC 5753 requires
 * receivers to support, and AES-256 key wrap).  Each recipient can
 * decrypt on its own.  XXX: an empty message is encrypted in one go, not
 * streamed: OpenSSL 3.0 cannot finish a streamed AuthEnvelopedData with
 * no content.
 *
 * STREAMING.  The plaintext passes through in chunks (CMS_STREAM: BER
 * with indefinite lengths); memory stays at a few buffers whatever the
 * message size.  The base64 output is written by this module (not by
 * SMIME_write_CMS, whose base64 lines always end in LF) so that the line
 * ends are the ones asked for and a write error keeps its errno.
 *
 * THREADS.  These are plain blocking functions (file I/O and public-key
 * operations of a few hundred microseconds); run them in a workq_disk job
 * (lb_work, as maildir_deliver).  They touch no loop, no Lua, no global
 * state; a recipient set is read-only once built and may be shared.
 * Cancellation: a running workq job cannot be interrupted, so a job API
 * with cancel() could only set a flag; opts.cancel is that flag, checked
 * before every chunk.
 *
 * Recipients: RSA (at least CMS_RSA_MIN_BITS) or EC certificates, from
 * PEM files.  A certificate whose key usage extension is present must
 * allow keyEncipherment (RSA) or keyAgreement (EC).  Validity dates are
 * checked only with CMS_RECIPS_CHECK_DATES: an expired certificate still
 * names a key its owner holds, and refusing would refuse the mail.
 *
 * SECURITY: address → file name (cms_recips_add_address) refuses every
 * address that could leave the directory or be misread as a path; the
 * names are lower-cased, so the files must be named in lower case.  A
 * certificate file is bounded (CMS_CERT_FILE_MAX), must be a regular
 * file, and is refused if it holds a private key.  The plaintext chunk
 * buffers are wiped before they are freed.
 */
#ifndef LUASMTPD_CMS_ENCRYPT_H
#define LUASMTPD_CMS_ENCRYPT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A certificate file: a few PEM certificates, nothing near this. */
#define CMS_CERT_FILE_MAX	(256 * 1024)
/* Recipients of one message (certificates, all files together). */
#define CMS_RECIPIENTS_MAX	64
/* RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its <>. */
#define CMS_ADDRESS_MAX		254
#define CMS_RSA_MIN_BITS	2048
/* How far into the message header fields are looked for to copy. */
#define CMS_HEADER_SCAN_MAX	(64 * 1024)
/* Header field names in opts.clear_headers: count and length. */
#define CMS_CLEAR_HEADERS_MAX	16
#define CMS_FIELD_NAME_MAX	64
/* Plaintext read per chunk by cms_encrypt_fd/_stream. */
#define CMS_CHUNK		(64 * 1024)
#define CMS_ERR_MAX		256

enum cms_cipher {
	CMS_CIPHER_AES256_GCM = 0,	/* AuthEnvelopedData */
	CMS_CIPHER_AES256_CBC		/* EnvelopedData */
};

struct cms_encrypt_opts {
	enum cms_cipher		 cipher;
	/* Field names to copy into the clear, NULL-terminated; NULL = none. */
	const char *const	*clear_headers;
	bool			 lf;		/* LF line ends, not CRLF */
	const atomic_bool	*cancel;	/* NULL, or stop when true */
};

/* Flags of cms_recips_new(). */
#define CMS_RECIPS_CHECK_DATES	0x1	/* refuse expired/not yet valid */

struct cms_recips;
struct cms_enc;

struct cms_recips	*cms_recips_new(unsigned flags);
void			 cms_recips_free(struct cms_recips *);
size_t			 cms_recips_count(const struct cms_recips *);
/*
 * Add every certificate of the PEM file at path (at least one; the same
 * certificate twice counts once).  0, or -1 and the reason (nothing is
 * added then); errno is ENOENT when the file does not exist.
 */
int	cms_recips_add_file(struct cms_recips *, const char *path, char *err,
	    size_t errlen);
/*
 * Add the certificates of dir/<address>.pem, address lower-cased.  0, or
 * -1 and the reason; errno ENOENT when there is no such file (no
 * certificate for this address: the caller's policy decides), EINVAL
 * when the address cannot name a file (cms_address_check).
 */
int	cms_recips_add_address(struct cms_recips *, const char *dir,
	    const char *address, char *err, size_t errlen);
/*
 * Whether the len bytes of address may name a certificate file: 1 to
 * CMS_ADDRESS_MAX bytes, no NUL, '/', '\\' or control character, not
 * starting with '.'.  NULL if so, else a static reason.
 */
const char *cms_address_check(const char *address, size_t len);

/*
 * Begin an S/MIME message to every certificate of recips (at least one)
 * on out_fd (borrowed, written from its current offset).  opts may be
 * NULL (the defaults).  Returns a context, or NULL and the reason.
 */
struct cms_enc	*cms_enc_begin(const struct cms_recips *,
		    const struct cms_encrypt_opts *, int out_fd, char *err,
		    size_t errlen);
/*
 * Encrypt the next len bytes of the message.  0, or -1 after a failure
 * (sticky; cms_enc_finish gives the reason).
 */
int		cms_enc_update(struct cms_enc *, const void *p, size_t len);
/*
 * Complete the message (the GCM tag, the last base64 line) and free the
 * context.  0, or -1 and the first failure's reason.  The caller fsyncs.
 */
int		cms_enc_finish(struct cms_enc *, char *err, size_t errlen);
/* Free without completing (what was written is not a valid message). */
void		cms_enc_abort(struct cms_enc *);
/* Plaintext bytes accepted so far, output bytes written so far. */
uint64_t	cms_enc_in_bytes(const struct cms_enc *);
uint64_t	cms_enc_out_bytes(const struct cms_enc *);

/*
 * Pull-style input: read up to len bytes into p; > 0, 0 at the end, or
 * -1 with a reason in err (a sealed_reader fits with a 3-line adapter).
 */
typedef ssize_t (*cms_read_fn)(void *arg, void *p, size_t len, char *err,
		    size_t errlen);

/* The whole message from read() to out_fd.  0, or -1 and the reason. */
int	cms_encrypt_stream(const struct cms_recips *,
	    const struct cms_encrypt_opts *, cms_read_fn read, void *arg,
	    int out_fd, char *err, size_t errlen);
/* The whole message from in_fd (read to its end) to out_fd. */
int	cms_encrypt_fd(const struct cms_recips *,
	    const struct cms_encrypt_opts *, int in_fd, int out_fd, char *err,
	    size_t errlen);
/*
 * in_path to a new out_path (O_EXCL, mode 0600), fsynced; on failure
 * out_path is removed.  0, or -1 and the reason.
 */
int	cms_encrypt_file(const struct cms_recips *,
	    const struct cms_encrypt_opts *, const char *in_path,
	    const char *out_path, char *err, size_t errlen);

#endif
