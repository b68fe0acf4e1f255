/*
 * test_cms.c — S/MIME encryption at rest (src/privacy/cms_encrypt.c,
 * cms_recips.c), checked against the openssl command-line tool: every
 * message encrypted here is decrypted by `openssl cms -decrypt` with the
 * recipient's key and compared with the original, byte for byte.
 *
 * Usage: test_cms TMPDIR    (spec/unit/privacy_spec.lua runs it)
 *
 * The certificates are made at start with `openssl req` (RSA 2048, EC
 * P-256, and the kinds that must be refused); an expired one is made
 * with the library.  Memory: OpenSSL's allocations go through counting
 * functions (CRYPTO_set_mem_functions) so that the 10 MB case can show
 * its peak heap, with the process's peak RSS as a second witness.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "privacy/cms_encrypt.h"
#include "privacy/sealed_file.h"
#include "unit.h"
#include "cms_test_util.h"

#define TOKEN		"TOKEN-4b1d8e22-secret"
#define BIG_SIZE	(10u * 1024 * 1024)
/* The 10 MB case must stay far below the message size. */
#define BIG_HEAP_MAX	(1024 * 1024)
#define BIG_RSS_MAX_KB	(4 * 1024)

static const char *const small_msg =
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.org\r\n"
    "Subject: the plan SUBJECT-TOKEN-91\r\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "Message-ID: <mid-7781@example.org>\r\n"
    "X-Folded: first part\r\n"
    "\tsecond part\r\n"
    "\r\n"
    "Body line with " TOKEN "\r\n";

/* The small message plus every byte value and no final line end. */
static const char *
write_small(const char *name, size_t *len)
{
	const char *p = tmp_path(name);
	unsigned char *m = unit_alloc(strlen(small_msg) + 256 + 5);
	size_t n = strlen(small_msg);

	memcpy(m, small_msg, n);
	for (int i = 0; i < 256; i++)
		m[n++] = (unsigned char)i;
	memcpy(m + n, "\r\nend", 5);
	n += 5;
	put_file(p, m, n);
	*len = n;
	return p;
}

static struct cms_recips *
recips_of(const char *const *files)
{
	struct cms_recips *r = cms_recips_new(0);

	CHECK(r != NULL);
	for (size_t i = 0; files[i] != NULL; i++)
		if (cms_recips_add_file(r, tmp_path(files[i]), err,
		    sizeof(err)) != 0) {
			cms_recips_free(r);
			unit_fail(__FILE__, __LINE__, "%s: %s", files[i], err);
		}
	return r;
}

static void
encrypt_ok(const struct cms_recips *r, const struct cms_encrypt_opts *o,
    const char *in, const char *out)
{
	unlink(out);
	if (cms_encrypt_file(r, o, in, out, err, sizeof(err)) != 0)
		unit_fail(__FILE__, __LINE__, "encrypt: %s", err);
}

/* openssl cms -decrypt with name.key/name.pem gives exactly `want`. */
static void
decrypts_to(const char *out, const char *name, const char *want)
{
	const char *dec = tmp_path("decrypted");
	char keyf[64], certf[64];

	snprintf(keyf, sizeof(keyf), "%s.key", name);
	snprintf(certf, sizeof(certf), "%s.pem", name);
	unlink(dec);
	if (openssl_decrypt(out, tmp_path(keyf), tmp_path(certf), dec) != 0)
		unit_fail(__FILE__, __LINE__, "openssl cms -decrypt with %s "
		    "failed: %s", name, last_log());
	if (!same_file(dec, want))
		unit_fail(__FILE__, __LINE__, "decrypted with %s: not the "
		    "original bytes", name);
}

/* ---- cases ---- */

static void
ten_megabytes_stream_in_little_memory(void)
{
	const char *in = tmp_path("big.eml"), *out = tmp_path("big.p7m");
	const char *const files[] = { "rsa.pem", "ec.pem", NULL };
	struct cms_recips *r = recips_of(files);
	struct rusage ru0, ru1;
	size_t base;
	long rss_growth;

	write_big_message(in, BIG_SIZE, TOKEN);
	getrusage(RUSAGE_SELF, &ru0);
	base = mem_live;
	mem_peak = mem_live;
	encrypt_ok(r, NULL, in, out);
	getrusage(RUSAGE_SELF, &ru1);
	rss_growth = ru1.ru_maxrss - ru0.ru_maxrss;
	printf("# 10 MB message: OpenSSL heap peak %zu bytes above its "
	    "baseline, peak RSS grew %ld KiB (%ld -> %ld)\n", mem_peak - base,
	    rss_growth, ru0.ru_maxrss, ru1.ru_maxrss);
	cms_recips_free(r);
	CHECK(mem_peak - base < BIG_HEAP_MAX);
	CHECK(rss_growth < BIG_RSS_MAX_KB);
	CHECK(!file_has(out, TOKEN));
	decrypts_to(out, "rsa", in);
	decrypts_to(out, "ec", in);
}

static void
recipients_load(void)
{
	struct cms_recips *r = cms_recips_new(0);

	CHECK_INT(cms_recips_add_file(r, tmp_path("rsa.pem"), err,
	    sizeof(err)), 0);
	CHECK_INT(cms_recips_count(r), 1);
	/* the same certificate again counts once */
	CHECK_INT(cms_recips_add_file(r, tmp_path("rsa.pem"), err,
	    sizeof(err)), 0);
	CHECK_INT(cms_recips_count(r), 1);
	/* two certificates in one file, found by address, any case */
	CHECK_INT(cms_recips_add_address(r, tmp_path("certs"),
	    "Both@Example.ORG", err, sizeof(err)), 0);
	CHECK_INT(cms_recips_count(r), 2);
	CHECK_INT(cms_recips_add_address(r, tmp_path("certs"),
	    "expired@example.org", err, sizeof(err)), 0);
	CHECK_INT(cms_recips_count(r), 3);
	cms_recips_free(r);
}

/* add_file(name) fails and err contains want. */
static void
refuses(const char *name, const char *want, int want_errno,
    unsigned flags)
{
	struct cms_recips *r = cms_recips_new(flags);
	int rc;

	errno = 0;
	rc = cms_recips_add_file(r, tmp_path(name), err, sizeof(err));
	if (rc == 0 || strstr(err, want) == NULL || errno != want_errno) {
		int e = errno;

		cms_recips_free(r);
		unit_fail(__FILE__, __LINE__, "%s: rc %d errno %d err \"%s\", "
		    "want \"%s\"", name, rc, e, err, want);
	}
	CHECK_INT(cms_recips_count(r), 0);	/* nothing half-added */
	cms_recips_free(r);
}

static void
bad_certificates_are_clear_errors(void)
{
	refuses("missing.pem", "No such file", ENOENT, 0);
	refuses("empty.pem", "no PEM certificate", EINVAL, 0);
	refuses("garbage.pem", "no PEM certificate", EINVAL, 0);
	refuses("damaged.pem", "certificate 1 is damaged", EINVAL, 0);
	refuses("withkey.pem", "holds a private key", EINVAL, 0);
	refuses("rsa1024.pem", "1024-bit RSA key", EINVAL, 0);
	refuses("ed25519.pem", "needs RSA or EC", EINVAL, 0);
	refuses("sigonly.pem", "does not allow keyEncipherment", EINVAL, 0);
	refuses("ecsig.pem", "does not allow keyAgreement", EINVAL, 0);
	refuses("certs", "not a regular file", EINVAL, 0);
	refuses("rsa-then-ed.pem", "certificate 2 of", EINVAL, 0);
	refuses("expired.pem", "expired or not yet valid", EINVAL,
	    CMS_RECIPS_CHECK_DATES);
}

static void
addresses_that_are_no_file_name(void)
{
	static const char *const bad[] = { "", "../rsa", "a/b@example.org",
	    ".hidden@example.org", "a\\b@example.org", "a\r\n@example.org",
	    "a\tb@example.org" };
	struct cms_recips *r = cms_recips_new(0);
	char longaddr[CMS_ADDRESS_MAX + 2];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		CHECK_INT(cms_recips_add_address(r, tmp_path("certs"), bad[i],
		    err, sizeof(err)), -1);
		CHECK_INT(errno, EINVAL);
	}
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	CHECK_INT(cms_recips_add_address(r, tmp_path("certs"), longaddr, err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "too long") != NULL);
	/* a valid address without a file: ENOENT, and not in the message */
	errno = 0;
	CHECK_INT(cms_recips_add_address(r, tmp_path("certs"),
	    "nobody@secret.example", err, sizeof(err)), -1);
	CHECK_INT(errno, ENOENT);
	CHECK(strstr(err, "no certificate for this address") != NULL);
	CHECK(strstr(err, "secret.example") == NULL);
	CHECK_INT(cms_recips_count(r), 0);
	/* no recipients: nothing to encrypt to */
	CHECK(cms_enc_begin(r, NULL, 1, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no recipient certificate") != NULL);
	cms_recips_free(r);
}

/* For one cipher: RSA, EC and both; decrypt each; token; headers. */
static void
encrypt_decrypt(enum cms_cipher c, const char *ctype)
{
	static const char *const rsa[] = { "rsa.pem", NULL };
	static const char *const ec[] = { "ec.pem", NULL };
	const char *const *sets[] = { rsa, ec };
	struct cms_encrypt_opts o = { .cipher = c };
	const char *out = tmp_path("small.p7m");
	size_t len;
	const char *in = write_small("small.eml", &len);
	char head[512];

	for (size_t i = 0; i < 3; i++) {
		struct cms_recips *r;

		if (i < 2) {
			r = recips_of(sets[i]);
		} else {	/* both: two certificates in one file */
			r = cms_recips_new(0);
			CHECK_INT(cms_recips_add_address(r, tmp_path("certs"),
			    "both@example.org", err, sizeof(err)), 0);
			CHECK_INT(cms_recips_count(r), 2);
		}
		encrypt_ok(r, &o, in, out);
		cms_recips_free(r);
		CHECK(!file_has(out, TOKEN));
		CHECK(!file_has(out, "SUBJECT-TOKEN"));
		CHECK(!file_has(out, "alice@example.org"));
		CHECK(!file_has(out, "mid-7781"));
		read_head(out, head, sizeof(head));
		snprintf(err, sizeof(err), "MIME-Version: 1.0\r\n"
		    "Content-Type: application/pkcs7-mime; smime-type=%s;\r\n"
		    " name=smime.p7m\r\n"
		    "Content-Disposition: attachment; filename=smime.p7m\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\n", ctype);
		CHECK(strncmp(head, err, strlen(err)) == 0);
		if (i != 1)
			decrypts_to(out, "rsa", in);
		if (i != 0)
			decrypts_to(out, "ec", in);
		/* the other key cannot */
		if (i < 2)
			CHECK(openssl_decrypt(out, tmp_path(i == 0 ? "ec.key" :
			    "rsa.key"), tmp_path(i == 0 ? "ec.pem" : "rsa.pem"),
			    tmp_path("decrypted")) != 0);
	}
}

static void
aes256_gcm_auth_enveloped(void)
{
	encrypt_decrypt(CMS_CIPHER_AES256_GCM, "authEnveloped-data");
}

static void
aes256_cbc_enveloped(void)
{
	encrypt_decrypt(CMS_CIPHER_AES256_CBC, "enveloped-data");
}

static void
gcm_tampering_fails_openssl(void)
{
	static const char *const rsa[] = { "rsa.pem", NULL };
	struct cms_recips *r = recips_of(rsa);
	const char *out = tmp_path("tamper.p7m");
	size_t len;
	const char *in = write_small("tamper.eml", &len);

	encrypt_ok(r, NULL, in, out);
	cms_recips_free(r);
	/* a base64 character near the end (ciphertext or tag) changed */
	flip_b64_near_end(out, 120);
	CHECK(openssl_decrypt(out, tmp_path("rsa.key"), tmp_path("rsa.pem"),
	    tmp_path("decrypted")) != 0);
}

static void
lf_line_ends(void)
{
	static const char *const ec[] = { "ec.pem", NULL };
	struct cms_recips *r = recips_of(ec);
	struct cms_encrypt_opts o = { .lf = true };
	const char *out = tmp_path("lf.p7m");
	size_t len;
	const char *in = write_small("lf.eml", &len);

	encrypt_ok(r, &o, in, out);
	cms_recips_free(r);
	CHECK(!file_has(out, "\r"));
	decrypts_to(out, "ec", in);
}

static void
clear_headers_are_copied_on_request(void)
{
	static const char *const rsa[] = { "rsa.pem", NULL };
	static const char *const names[] = { "date", "Message-ID", "X-Folded",
	    NULL };
	struct cms_recips *r = recips_of(rsa);
	struct cms_encrypt_opts o = { .clear_headers = names };
	const char *out = tmp_path("clear.p7m"), *out1 = tmp_path("clear1.p7m");
	size_t len, n;
	const char *in = write_small("clear.eml", &len);
	char head[512];
	struct cms_enc *e;
	unsigned char *m;
	int fd;

	encrypt_ok(r, &o, in, out);
	read_head(out, head, sizeof(head));
	CHECK(strncmp(head, "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "Message-ID: <mid-7781@example.org>\r\n"
	    "X-Folded: first part\r\n\tsecond part\r\n"
	    "MIME-Version: 1.0\r\n", 111) == 0);
	CHECK(!file_has(out, "SUBJECT-TOKEN"));
	CHECK(!file_has(out, TOKEN));
	decrypts_to(out, "rsa", in);
	/* fed a byte at a time: the same clear part */
	m = slurp(in, &n);
	fd = open(out1, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	e = cms_enc_begin(r, &o, fd, err, sizeof(err));
	CHECK(e != NULL);
	for (size_t i = 0; i < n; i++)
		CHECK_INT(cms_enc_update(e, m + i, 1), 0);
	CHECK_U64(cms_enc_in_bytes(e), n);
	CHECK_INT(cms_enc_finish(e, err, sizeof(err)), 0);
	close(fd);
	read_head(out1, err, sizeof(err));
	CHECK(strncmp(head, err, 111) == 0);
	decrypts_to(out1, "rsa", in);
	cms_recips_free(r);
}

static void
clear_header_names_are_checked(void)
{
	static const char *const ctype[] = { "Content-Type", NULL };
	static const char *const mime[] = { "mime-version", NULL };
	static const char *const colon[] = { "Subject:", NULL };
	static const char *const empty[] = { "", NULL };
	static const char *const *bad[] = { ctype, mime, colon, empty };
	static const char *const rsa[] = { "rsa.pem", NULL };
	const char *many[CMS_CLEAR_HEADERS_MAX + 2];
	struct cms_recips *r = recips_of(rsa);
	struct cms_encrypt_opts o = { 0 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.clear_headers = bad[i];
		CHECK(cms_enc_begin(r, &o, 1, err, sizeof(err)) == NULL);
	}
	for (size_t i = 0; i <= CMS_CLEAR_HEADERS_MAX; i++)
		many[i] = "Date";
	many[CMS_CLEAR_HEADERS_MAX + 1] = NULL;
	o.clear_headers = many;
	CHECK(cms_enc_begin(r, &o, 1, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "more than") != NULL);
	cms_recips_free(r);
}

static void
odd_messages(void)
{
	static const char *const ec[] = { "ec.pem", NULL };
	static const char *const names[] = { "Date", NULL };
	struct cms_recips *r = recips_of(ec);
	struct cms_encrypt_opts o = { .clear_headers = names };
	const char *in = tmp_path("odd.eml"), *out = tmp_path("odd.p7m");
	char head[256];
	size_t n;
	unsigned char *big;

	/* empty */
	put_file(in, "", 0);
	encrypt_ok(r, &o, in, out);
	decrypts_to(out, "ec", in);
	/* headers only, no blank line, no final line end */
	put_file(in, "Date: today\r\nSubject: x", 23);
	encrypt_ok(r, &o, in, out);
	read_head(out, head, sizeof(head));
	CHECK(strncmp(head, "Date: today\r\nMIME-Version", 25) == 0);
	decrypts_to(out, "ec", in);
	/* a whitespace-only folding line is not copied (a lax parser
	 * could take it for the end of the header block) */
	put_file(in, "Date: x\r\n \r\n\tmore\r\n\r\nbody\r\n", 27);
	encrypt_ok(r, &o, in, out);
	read_head(out, head, sizeof(head));
	CHECK(strncmp(head, "Date: x\r\n\tmore\r\nMIME-Version", 28) == 0);
	decrypts_to(out, "ec", in);
	/* a header section beyond the scan: nothing copied */
	n = CMS_HEADER_SCAN_MAX + 1000;
	big = unit_alloc(n);
	memcpy(big, "Date: today\r\n", 13);
	for (size_t i = 13; i < n - 4; i += 10)
		memcpy(big + i, "X-Pad: x\r\n", 10 < n - 4 - i ? 10 : n - 4 - i);
	memcpy(big + n - 4, "\r\nb\n", 4);
	put_file(in, big, n);
	encrypt_ok(r, &o, in, out);
	read_head(out, head, sizeof(head));
	CHECK(strncmp(head, "MIME-Version", 12) == 0);
	decrypts_to(out, "ec", in);
	cms_recips_free(r);
}

/* The sealed spool as the input: what integration will do. */
static ssize_t
read_sealed(void *arg, void *p, size_t len, char *e, size_t elen)
{
	ssize_t n = sealed_reader_read(arg, p, len);

	if (n < 0)
		snprintf(e, elen, "spool: %s", sealed_reader_error(arg));
	return n;
}

static void
from_a_sealed_spool_file(void)
{
	static const char *const both[] = { "rsa.pem", "ec.pem", NULL };
	struct cms_recips *r = recips_of(both);
	const char *sealed = tmp_path("spool.sealed");
	const char *out = tmp_path("spool.p7m");
	unsigned char kb[32], *m;
	struct sealed_key *k;
	struct sealed_writer *w;
	struct sealed_reader *rd;
	size_t len;
	const char *in = write_small("spool.eml", &len);
	int fd;

	memset(kb, 7, sizeof(kb));
	k = sealed_key_new(kb, sizeof(kb), err, sizeof(err));
	CHECK(k != NULL);
	unlink(sealed);
	w = sealed_writer_open(k, sealed, 64, err, sizeof(err));
	CHECK(w != NULL);
	m = slurp(in, &len);
	CHECK_INT(sealed_writer_write(w, m, len), 0);
	CHECK_INT(sealed_writer_finish(w, err, sizeof(err)), 0);
	sealed_writer_free(w);
	for (int tamper = 0; tamper < 2; tamper++) {
		if (tamper)
			flip_byte(sealed, 200);
		rd = sealed_reader_open(k, sealed, err, sizeof(err));
		CHECK(rd != NULL);
		unlink(out);
		fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0600);
		CHECK_INT(cms_encrypt_stream(r, NULL, read_sealed, rd, fd, err,
		    sizeof(err)), tamper ? -1 : 0);
		close(fd);
		sealed_reader_free(rd);
		if (!tamper) {
			decrypts_to(out, "rsa", in);
			decrypts_to(out, "ec", in);
		} else {
			/* byte 200: record 1 (64 + 80 .. 64 + 160) */
			CHECK(strstr(err, "spool: record 1 fails "
			    "authentication") != NULL);
		}
	}
	sealed_key_free(k);
	cms_recips_free(r);
}

static void
write_errors_and_cancel(void)
{
	static const char *const rsa[] = { "rsa.pem", NULL };
	struct cms_recips *r = recips_of(rsa);
	atomic_bool stop = true;
	struct cms_encrypt_opts o = { .cancel = &stop };
	const char *out = tmp_path("cancel.p7m");
	size_t len;
	const char *in = write_small("cancel.eml", &len);
	int fd = open("/dev/full", O_WRONLY), infd = open(in, O_RDONLY);

	CHECK(fd >= 0 && infd >= 0);
	CHECK_INT(cms_encrypt_fd(r, NULL, infd, fd, err, sizeof(err)), -1);
	close(infd);
	close(fd);
	CHECK(strstr(err, "No space left") != NULL);
	unlink(out);
	CHECK_INT(cms_encrypt_file(r, &o, in, out, err, sizeof(err)), -1);
	CHECK(strstr(err, "cancelled") != NULL);
	CHECK(access(out, F_OK) != 0);		/* removed */
	CHECK_INT(cms_encrypt_file(r, NULL, tmp_path("nope.eml"), out, err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "No such file") != NULL);
	cms_recips_free(r);
}

static const struct unit_case cases[] = {
	/* first, so that the peak RSS before it is the driver's start-up */
	{ "a 10 MB message streams in far less memory than its size",
	    ten_megabytes_stream_in_little_memory },
	{ "certificates load from files and by address", recipients_load },
	{ "a missing or unusable certificate is a clear error",
	    bad_certificates_are_clear_errors },
	{ "addresses that cannot name a file are refused",
	    addresses_that_are_no_file_name },
	{ "AES-256-GCM to RSA EC and both decrypts with openssl cms",
	    aes256_gcm_auth_enveloped },
	{ "AES-256-CBC to RSA EC and both decrypts with openssl cms",
	    aes256_cbc_enveloped },
	{ "a changed GCM message fails openssl cms -decrypt",
	    gcm_tampering_fails_openssl },
	{ "LF line ends on request", lf_line_ends },
	{ "named header fields are copied into the clear",
	    clear_headers_are_copied_on_request },
	{ "clear header names are checked", clear_header_names_are_checked },
	{ "empty header-only and huge-header messages", odd_messages },
	{ "a sealed spool file streams into S/MIME and tampering stops it",
	    from_a_sealed_spool_file },
	{ "write errors cancel and missing input are reported",
	    write_errors_and_cancel },
};

int
main(int argc, char **argv)
{
	int rc;

	/* Before any OpenSSL call: count every allocation it makes. */
	if (!CRYPTO_set_mem_functions(mem_malloc, mem_realloc, mem_free)) {
		printf("not ok setup: CRYPTO_set_mem_functions refused\n");
		return 1;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: test_cms TMPDIR\n");
		return 2;
	}
	tmpdir = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (make_certificates() != 0) {
		printf("not ok setup: %s\n", err);
		return 1;
	}
	rc = unit_run(cases, sizeof(cases) / sizeof(cases[0]));
	printf("# done rc=%d\n", rc);
	return rc;
}
