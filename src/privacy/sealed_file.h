/*
 * sealed_file.h — an authenticated, encrypted file format for the spool
 * and the queue (AES-256-GCM in fixed-size records, HKDF-SHA256 keys).
 *
 * THREAT MODEL.  Whoever can read the disk (a stolen disk or backup, a
 * snapshot, another local user or service that can read the spool, an
 * operator browsing files) learns nothing from a sealed file but its
 * length (the plaintext length to within the record overhead) and its
 * times.  Whoever can write the disk cannot make the reader return bytes
 * that the writer did not write, in the order it wrote them, for this
 * file: a flipped bit, a cut, an extension, records reordered, dropped,
 * repeated or taken from another sealed file (same key) are all refused.
 * NOT covered: an attacker who can read the key file or the server's
 * memory (the key file lives outside the spool, readable by the server
 * only); replacing a whole sealed file by another complete sealed file
 * written with the same key (the file name is not bound — the queue's
 * envelope says which message a file holds); deleting a file; and
 * traffic analysis by size.  No forward secrecy: the key file opens
 * every file sealed with it, until it is replaced.
 *
 * THE FORMAT (version 1; all integers big-endian):
 *
 *   header, SEALED_HEADER_LEN = 64 bytes:
 *	 0   8  magic "\x89SEALED\n" (the high bit and the newline show a
 *		7-bit or line-end conversion at once)
 *	 8   1  version, 1
 *	 9   1  suite, 1 = AES-256-GCM with HKDF-SHA256
 *	10   2  zero
 *	12   4  R, plaintext bytes per record, SEALED_RECORD_MIN..MAX
 *	16  32  salt, random per file
 *	48  16  key check (below)
 *   then records, each the GCM ciphertext of its plaintext followed by
 *   the 16-byte GCM tag:
 *	every record but the last holds exactly R plaintext bytes;
 *	the last ("final") record holds 0..R-1 bytes, so a plaintext of a
 *	multiple of R bytes (0 included) ends with an empty final record.
 *   So a sealed file is never shorter than 64 + 16 bytes, its size tells
 *   its plaintext size (sealed_plain_size), and the reader knows a record
 *   is the final one from its length alone.
 *
 *   Keys: okm = HKDF-SHA256(ikm = the key file's contents, salt = salt,
 *   info = "luasmtpd sealed-file v1"), 60 bytes:
 *	okm[0..32)   the AES-256-GCM key of this file
 *	okm[32..44)  the nonce base N of this file
 *	okm[44..60)  the key check, stored in the header
 *   Record i (from 0) is sealed with nonce = N XOR i (i as 12 bytes
 *   big-endian, as TLS 1.3 does) and associated data
 *	the 64 header bytes || i (8 bytes) || final (1 byte: 1 or 0)
 *   Why this is enough: the key and nonce base are unique per file (a
 *   random 256-bit salt), so no nonce is ever used twice under a key and
 *   another file's records never authenticate here; i in the nonce and
 *   the AAD catches reordering; a cut at a record boundary leaves a
 *   file that ends on a full record, which is never the final one (and a
 *   cut inside a record leaves a short piece whose tag fails); data after
 *   the final record makes it, or what follows, fail its tag; the final
 *   flag puts "this is the end" under the tag too, so that no framing
 *   mistake in a future reader can take a full record for the end; the
 *   header in the AAD covers R and the salt; the key check turns a wrong
 *   key file into "wrong key" instead of a tamper report on record 0.
 *
 * USAGE.  A writer seals as data arrives and writes each full record at
 * once (a file is at most one record behind the data); sealed_writer_
 * finish() writes the final record.  A file whose writer never finished
 * has no final record and is refused by every reader: an interrupted
 * write can never pass for a complete message.
 *
 * A reader returns each record's plaintext only once its tag checked,
 * but a cut at a record boundary (or a record dropped from the end) can
 * only show at the end: the reader then fails with -1 after returning
 * everything before the cut.  So a consumer must treat -1 at ANY point
 * as "this message is bad", undo what it did with the bytes so far (a
 * Maildir tmp file is unlinked, an SMTP/LMTP transfer is aborted before
 * its final dot), and never act on a short read.  Where that cannot be
 * undone, call sealed_file_verify() first (one extra pass of AES-GCM).
 *
 * Blocking file I/O: call it where the spool already does its I/O (the
 * loop thread writes the spool, workers read it); the crypto costs about
 * a memcpy.  A key is immutable once loaded and may be shared by threads;
 * a writer or reader belongs to one thread at a time.
 *
 * SECURITY: keys, per-file keys and plaintext buffers are wiped when
 * freed (OPENSSL_cleanse).  The key file must be a regular file of
 * SEALED_KEY_FILE_MIN..MAX bytes, not accessible to "others"; its
 * contents must be random (`openssl rand 32 > FILE`; a base64 or hex
 * line of 32 random bytes is fine too): HKDF is not a password hash.
 */
#ifndef LUASMTPD_SEALED_FILE_H
#define LUASMTPD_SEALED_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SEALED_HEADER_LEN	64
#define SEALED_TAG_LEN		16
#define SEALED_SALT_LEN		32
#define SEALED_CHECK_LEN	16
/* Plaintext bytes per record: 64 KiB keeps the overhead at 0.02% and a
 * reader or writer at one 64 KiB buffer. */
#define SEALED_RECORD_DEFAULT	(64 * 1024)
#define SEALED_RECORD_MIN	16
/* SECURITY: bounds what a file's header makes a reader allocate. */
#define SEALED_RECORD_MAX	(1024 * 1024)
#define SEALED_KEY_FILE_MIN	32
#define SEALED_KEY_FILE_MAX	4096
/* Enough for every message these functions write. */
#define SEALED_ERR_MAX		256

struct sealed_key;
struct sealed_writer;
struct sealed_reader;

/*
 * Load the key file at path (see SECURITY above).  Returns a key, or
 * NULL and a reason in err.  Free with sealed_key_free().
 */
struct sealed_key	*sealed_key_load(const char *path, char *err,
			    size_t errlen);
/* A key from len bytes at p (SEALED_KEY_FILE_MIN..MAX), copied. */
struct sealed_key	*sealed_key_new(const void *p, size_t len, char *err,
			    size_t errlen);
void			 sealed_key_free(struct sealed_key *);

/*
 * A writer to fd (borrowed: the caller closes and fsyncs it), starting
 * at its current offset, with record_size plaintext bytes per record (0
 * means SEALED_RECORD_DEFAULT).  Writes the header at once.  Returns
 * NULL and a reason on failure.
 */
struct sealed_writer	*sealed_writer_new(const struct sealed_key *, int fd,
			    size_t record_size, char *err, size_t errlen);
/*
 * Create path (O_EXCL, mode 0600) and write to it; the writer owns the
 * descriptor: finish fsyncs and closes it, free closes it.
 */
struct sealed_writer	*sealed_writer_open(const struct sealed_key *,
			    const char *path, size_t record_size, char *err,
			    size_t errlen);
/*
 * Append len bytes.  0, or -1 after a failure (sticky: later calls fail
 * too; finish reports the reason).
 */
int			 sealed_writer_write(struct sealed_writer *,
			    const void *p, size_t len);
/*
 * Write the final record (and, for sealed_writer_open, fsync and close).
 * Returns 0, or -1 and the first failure's reason.  Only a finished file
 * is readable.  Call at most once; then free the writer.
 */
int			 sealed_writer_finish(struct sealed_writer *,
			    char *err, size_t errlen);
/* Plaintext bytes accepted so far. */
uint64_t		 sealed_writer_size(const struct sealed_writer *);
/* Wipe and free (an unfinished file stays unreadable).  NULL is fine. */
void			 sealed_writer_free(struct sealed_writer *);

/*
 * A reader of fd (borrowed) from its current offset: reads and checks
 * the header (magic, version, record size, key check) and, for a regular
 * file, that its size is one a sealed file can have.  NULL and a reason
 * on failure ("wrong key", "not a sealed file", "truncated", ...).
 */
struct sealed_reader	*sealed_reader_new(const struct sealed_key *, int fd,
			    char *err, size_t errlen);
/* Open path read-only; the reader owns the descriptor. */
struct sealed_reader	*sealed_reader_open(const struct sealed_key *,
			    const char *path, char *err, size_t errlen);
/*
 * Read up to len authenticated plaintext bytes in order.  Returns the
 * count (> 0), 0 at the authenticated end of the file, or -1 on any
 * failure (sticky; sealed_reader_error() says why).  See USAGE above:
 * -1 after some data means the whole message is bad.
 */
ssize_t			 sealed_reader_read(struct sealed_reader *, void *p,
			    size_t len);
/* Why the last call failed ("" if none). */
const char		*sealed_reader_error(const struct sealed_reader *);
/*
 * The plaintext size, known at open for a regular file: 0 and *size, or
 * -1 (a pipe, say).  Trust it only once the reader reached its end.
 */
int			 sealed_reader_plain_size(const struct sealed_reader *,
			    uint64_t *size);
/* Wipe and free.  NULL is fine. */
void			 sealed_reader_free(struct sealed_reader *);

/*
 * The plaintext size of a sealed file of file_size bytes with records of
 * record_size bytes, or -1 if no sealed file has that size.
 */
int			 sealed_plain_size(uint64_t file_size,
			    size_t record_size, uint64_t *size);
/*
 * Read all of path and check every record: 0, or -1 and the reason.  For
 * consumers that cannot undo what they did with a prefix of the data.
 */
int			 sealed_file_verify(const struct sealed_key *,
			    const char *path, char *err, size_t errlen);

#endif
