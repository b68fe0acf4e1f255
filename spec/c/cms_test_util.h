/*
 * cms_test_util.h — files, the openssl command-line tool, test
 * certificates and allocation counting for spec/c/test_cms.c (included
 * once, after unit.h).
 */
#ifndef LUASMTPD_CMS_TEST_UTIL_H
#define LUASMTPD_CMS_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "unit.h"

#define UTIL_CHUNK	(64 * 1024)
#define UTIL_SMALL_MAX	(1024 * 1024)	/* slurp() bound */
#define UTIL_LOG_SHOWN	300

static const char	*tmpdir;
static char		 err[512];

/* ---- OpenSSL's heap, counted (CRYPTO_set_mem_functions) ---- */

/* A 16-byte prefix keeps the size and malloc's alignment. */
#define MEM_PREFIX	16

static size_t	mem_live, mem_peak;	/* single-threaded driver */

static void *
mem_malloc(size_t n, const char *file, int line)
{
	unsigned char *p = malloc(n + MEM_PREFIX);

	if (p == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	mem_live += n;
	if (mem_live > mem_peak)
		mem_peak = mem_live;
	return p + MEM_PREFIX;
}

static void
mem_free(void *q, const char *file, int line)
{
	unsigned char *p = q;
	size_t n;

	if (p == NULL)
		return;
	p -= MEM_PREFIX;
	memcpy(&n, p, sizeof(n));
	mem_live -= n;
	free(p);
}

static void *
mem_realloc(void *q, size_t n, const char *file, int line)
{
	unsigned char *p, *np;
	size_t old;

	if (q == NULL)
		return mem_malloc(n, file, line);
	if (n == 0) {
		mem_free(q, file, line);
		return NULL;
	}
	p = (unsigned char *)q - MEM_PREFIX;
	memcpy(&old, p, sizeof(old));
	if ((np = realloc(p, n + MEM_PREFIX)) == NULL)
		return NULL;
	memcpy(np, &n, sizeof(n));
	mem_live = mem_live - old + n;
	if (mem_live > mem_peak)
		mem_peak = mem_live;
	return np + MEM_PREFIX;
}

/* ---- files ---- */

static const char *
tmp_path(const char *name)
{
	char *p = unit_alloc(strlen(tmpdir) + strlen(name) + 2);

	sprintf(p, "%s/%s", tmpdir, name);
	return p;
}

static void
put_file(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	CHECK_INT(write(fd, p, len), (long long)len);
	close(fd);
}

/* A small file into a case-owned buffer. */
static unsigned char *
slurp(const char *path, size_t *len)
{
	unsigned char *p = unit_alloc(UTIL_SMALL_MAX);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	CHECK(fd >= 0);
	n = read(fd, p, UTIL_SMALL_MAX);
	close(fd);
	CHECK(n >= 0 && n < UTIL_SMALL_MAX);
	*len = (size_t)n;
	return p;
}

/* The first len - 1 bytes of path, NUL-terminated. */
static void
read_head(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	CHECK(fd >= 0);
	n = read(fd, buf, len - 1);
	close(fd);
	CHECK(n >= 0);
	buf[n] = '\0';
}

static bool
same_file(const char *a, const char *b)
{
	unsigned char *ba = unit_alloc(UTIL_CHUNK), *bb = unit_alloc(UTIL_CHUNK);
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	bool same = fa >= 0 && fb >= 0;

	while (same) {
		ssize_t na = read(fa, ba, UTIL_CHUNK), nb;

		/* regular files: a short read is the end */
		nb = read(fb, bb, na > 0 ? (size_t)na : 1);
		if (na != nb || na < 0 || memcmp(ba, bb, (size_t)na) != 0)
			same = false;
		if (na <= 0)
			break;
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same;
}

/* Whether the bytes of s appear anywhere in the file at path. */
static bool
file_has(const char *path, const char *s)
{
	size_t slen = strlen(s), have = 0;
	unsigned char *b = unit_alloc(UTIL_CHUNK + slen);
	int fd = open(path, O_RDONLY);
	bool found = false;
	ssize_t n;

	CHECK(fd >= 0 && slen > 0);
	while (!found && (n = read(fd, b + have, UTIL_CHUNK)) > 0) {
		have += (size_t)n;
		found = memmem(b, have, s, slen) != NULL;
		if (have >= slen) {	/* keep a tail that may start s */
			memmove(b, b + have - (slen - 1), slen - 1);
			have = slen - 1;
		}
	}
	close(fd);
	return found;
}

static void
flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	CHECK(fd >= 0);
	CHECK_INT(pread(fd, &c, 1, off), 1);
	c ^= 0x01;
	CHECK_INT(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* Change a base64 letter about `back` bytes before the end of path. */
static void
flip_b64_near_end(const char *path, off_t back)
{
	struct stat st;
	int fd = open(path, O_RDWR);
	unsigned char c;
	off_t off;

	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > back);
	for (off = st.st_size - back; off < st.st_size; off++) {
		CHECK_INT(pread(fd, &c, 1, off), 1);
		if ((c >= 'A' && c <= 'Y') || (c >= 'a' && c <= 'y'))
			break;
	}
	CHECK(off < st.st_size);
	c++;
	CHECK_INT(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* Lines of text with a header, the token in the middle: size bytes. */
static void
write_big_message(const char *path, size_t size, const char *token)
{
	unsigned char *b = unit_alloc(UTIL_CHUNK);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t done = 0, line = 0, have;
	bool token_done = false;

	CHECK(fd >= 0);
	have = (size_t)snprintf((char *)b, UTIL_CHUNK, "From: a@example.org"
	    "\r\nSubject: big\r\n\r\n");
	while (done < size) {
		while (have + 100 < UTIL_CHUNK) {
			if (!token_done && done + have > size / 2) {
				have += (size_t)snprintf((char *)b + have, 100,
				    "%s\r\n", token);
				token_done = true;
			}
			have += (size_t)snprintf((char *)b + have, 100,
			    "line %08zu: the quick brown fox jumps over the "
			    "lazy dog\r\n", line++);
		}
		if (have > size - done)
			have = size - done;
		CHECK_INT(write(fd, b, have), (long long)have);
		done += have;
		have = 0;
	}
	close(fd);
	CHECK(token_done);
}

/* ---- the openssl tool ---- */

/* Run argv, output to TMPDIR/cmd.log; the exit status (or -1). */
static int
run_cmd(const char *const argv[])
{
	const char *log = tmp_path("cmd.log");
	int status;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The last command's output, cut and made one printable line. */
static const char *
last_log(void)
{
	char *s = unit_alloc(UTIL_LOG_SHOWN + 1);
	int fd = open(tmp_path("cmd.log"), O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, s, UTIL_LOG_SHOWN) : 0;

	if (fd >= 0)
		close(fd);
	if (n < 0)
		n = 0;
	for (ssize_t i = 0; i < n; i++)
		if (s[i] < 32 || s[i] > 126)
			s[i] = ' ';
	s[n] = '\0';
	return s;
}

static int
openssl_decrypt(const char *in, const char *key, const char *cert,
    const char *out)
{
	const char *const argv[] = { "openssl", "cms", "-decrypt", "-binary",
	    "-in", in, "-inkey", key, "-recip", cert, "-out", out, NULL };

	return run_cmd(argv);
}

/* openssl req: a self-signed certificate and key, name.pem/name.key. */
static int
make_cert(const char *name, const char *alg, const char *opt,
    const char *ku)
{
	char key[64], pem[64], subj[80], ext[80];
	const char *argv[20];
	int i = 0;

	snprintf(key, sizeof(key), "%s/%s.key", tmpdir, name);
	snprintf(pem, sizeof(pem), "%s/%s.pem", tmpdir, name);
	snprintf(subj, sizeof(subj), "/CN=%s@example.org", name);
	snprintf(ext, sizeof(ext), "keyUsage=%s", ku);
	argv[i++] = "openssl"; argv[i++] = "req"; argv[i++] = "-x509";
	argv[i++] = "-nodes"; argv[i++] = "-newkey"; argv[i++] = alg;
	if (opt != NULL) {
		argv[i++] = "-pkeyopt";
		argv[i++] = opt;
	}
	argv[i++] = "-keyout"; argv[i++] = key; argv[i++] = "-out";
	argv[i++] = pem; argv[i++] = "-days"; argv[i++] = "3650";
	argv[i++] = "-subj"; argv[i++] = subj;
	if (ku != NULL) {
		argv[i++] = "-addext";
		argv[i++] = ext;
	}
	argv[i] = NULL;
	if (run_cmd(argv) != 0) {
		snprintf(err, sizeof(err), "openssl req %s: %s", name,
		    last_log());
		return -1;
	}
	return 0;
}

/* An RSA certificate that expired yesterday, with the library. */
static int
make_expired(const char *keypath, const char *out)
{
	FILE *f = fopen(keypath, "r");
	EVP_PKEY *pk = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) :
	    NULL;
	X509 *x = X509_new();
	X509_NAME *n;
	int ok;

	if (f != NULL)
		fclose(f);
	ok = pk != NULL && x != NULL && X509_set_version(x, 2) &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 7) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), -86400) != NULL &&
	    X509_set_pubkey(x, pk) && (n = X509_get_subject_name(x)) != NULL &&
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"expired", -1, -1, 0) &&
	    X509_set_issuer_name(x, n) && X509_sign(x, pk, EVP_sha256()) > 0 &&
	    (f = fopen(out, "w")) != NULL;
	if (ok) {
		ok = PEM_write_X509(f, x);
		fclose(f);
	}
	X509_free(x);
	EVP_PKEY_free(pk);
	if (!ok)
		snprintf(err, sizeof(err), "cannot make the expired certificate");
	return ok ? 0 : -1;
}

/* Concatenate files a and b (b may be NULL) into dst. */
static int
cat_files(const char *dst, const char *a, const char *b)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cat '%s/%s'%s%s%s%s%s > '%s/%s'", tmpdir,
	    a, b ? " '" : "", b ? tmpdir : "", b ? "/" : "", b ? b : "",
	    b ? "'" : "", tmpdir, dst);
	if (system(cmd) != 0) {
		snprintf(err, sizeof(err), "%s failed", cmd);
		return -1;
	}
	return 0;
}

/*
 * Every certificate the cases use: rsa, ec (usable), rsa1024, ed25519,
 * sigonly (RSA for signing), ecsig (EC for signing), expired; and
 * garbage.pem, empty.pem, damaged.pem, withkey.pem, rsa-then-ed.pem;
 * certs/<address>.pem for rsa, ec, both (rsa + ec) and expired.
 */
static int
make_certificates(void)
{
	char dir[512], cmd[1024];

	if (make_cert("rsa", "rsa:2048", NULL,
	    "keyEncipherment,digitalSignature") != 0 ||
	    make_cert("ec", "ec", "ec_paramgen_curve:P-256",
	    "keyAgreement,digitalSignature") != 0 ||
	    make_cert("rsa1024", "rsa:1024", NULL, NULL) != 0 ||
	    make_cert("ed25519", "ed25519", NULL, NULL) != 0 ||
	    make_cert("sigonly", "rsa:2048", NULL, "digitalSignature") != 0 ||
	    make_cert("ecsig", "ec", "ec_paramgen_curve:P-256",
	    "digitalSignature") != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/expired.pem", tmpdir);
	if (make_expired(tmp_path("rsa.key"), dir) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/certs", tmpdir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, sizeof(err), "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (cat_files("certs/rsa@example.org.pem", "rsa.pem", NULL) != 0 ||
	    cat_files("certs/ec@example.org.pem", "ec.pem", NULL) != 0 ||
	    cat_files("certs/both@example.org.pem", "rsa.pem", "ec.pem") ||
	    cat_files("certs/expired@example.org.pem", "expired.pem", NULL) ||
	    cat_files("withkey.pem", "rsa.pem", "rsa.key") != 0 ||
	    cat_files("rsa-then-ed.pem", "rsa.pem", "ed25519.pem") != 0)
		return -1;
	/* a certificate with its middle base64 line replaced */
	snprintf(cmd, sizeof(cmd), "sed '5s/.*/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/' '%s/rsa.pem' > '%s/damaged.pem'"
	    " && : > '%s/empty.pem' && echo 'not a certificate' > "
	    "'%s/garbage.pem'", tmpdir, tmpdir, tmpdir, tmpdir);
	if (system(cmd) != 0) {
		snprintf(err, sizeof(err), "%s failed", cmd);
		return -1;
	}
	return 0;
}

#endif
