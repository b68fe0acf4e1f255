/*
 * test_sealed.c — the sealed file format (src/privacy/sealed_file.c):
 * round trips at every size that matters, and every kind of tampering
 * (each byte flipped, every truncation, extension, records reordered or
 * swapped between files, the wrong key) refused.
 *
 * Usage: test_sealed TMPDIR    (spec/unit/privacy_spec.lua runs it)
 *
 * Files are written under TMPDIR.  Truncations are also fed through a
 * pipe, where the reader cannot use the file size and must find the cut
 * from the records alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privacy/sealed_file.h"
#include "unit.h"

#define SMALL_RECORD	64
#define SMALL_PLAIN	150	/* 64 + 64 + 22: three records */
#define TOKEN		"TOKEN-7f3a9c1e-sealed"
#define FILE_MAX	(4 * 1024 * 1024)

static const char	*tmpdir;
static struct sealed_key *key, *key2;
static char		 err[SEALED_ERR_MAX];

static const char *
tmp_path(const char *name)
{
	char *p = unit_alloc(strlen(tmpdir) + strlen(name) + 2);

	sprintf(p, "%s/%s", tmpdir, name);
	return p;
}

/* Deterministic bytes with every value, and the token here and there. */
static unsigned char *
make_plain(size_t n)
{
	unsigned char *p = unit_alloc(n);
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	for (size_t i = 0; i + sizeof(TOKEN) < n; i += 5000)
		memcpy(p + i, TOKEN, sizeof(TOKEN) - 1);
	return p;
}

static void
write_sealed(const char *path, const unsigned char *p, size_t n, size_t rec,
    size_t piece)
{
	struct sealed_writer *w;

	unlink(path);
	w = sealed_writer_open(key, path, rec, err, sizeof(err));
	if (w == NULL)
		unit_fail(__FILE__, __LINE__, "writer: %s", err);
	for (size_t off = 0; off < n; off += piece)
		CHECK_INT(sealed_writer_write(w, p + off,
		    n - off < piece ? n - off : piece), 0);
	CHECK_U64(sealed_writer_size(w), n);
	if (sealed_writer_finish(w, err, sizeof(err)) != 0)
		unit_fail(__FILE__, __LINE__, "finish: %s", err);
	sealed_writer_free(w);
}

/* The whole file into a case-owned buffer. */
static unsigned char *
slurp(const char *path, size_t *len)
{
	unsigned char *p = unit_alloc(FILE_MAX);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	CHECK(fd >= 0);
	n = read(fd, p, FILE_MAX);
	close(fd);
	CHECK(n >= 0 && n < FILE_MAX);
	*len = (size_t)n;
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

/*
 * Read everything from r into out[0..cap) in pieces of `piece` bytes.
 * Returns the bytes read, or -1 if the reader failed (then the bytes it
 * returned before must still be a prefix of want).
 */
static long long
drain(struct sealed_reader *r, unsigned char *out, size_t cap, size_t piece,
    const unsigned char *want, size_t wantlen)
{
	size_t got = 0;
	ssize_t n;

	while ((n = sealed_reader_read(r, out + got, piece)) > 0) {
		got += (size_t)n;
		CHECK(got + piece <= cap);
	}
	if (n < 0) {
		CHECK(sealed_reader_error(r)[0] != '\0');
		CHECK(got <= wantlen && memcmp(out, want, got) == 0);
		CHECK_INT(sealed_reader_read(r, out, piece), -1); /* sticky */
		return -1;
	}
	return (long long)got;
}

/* Read a sealed file's bytes through a pipe (no file size to lean on). */
static long long
read_via_pipe(const unsigned char *file, size_t len, unsigned char *out,
    size_t cap, const unsigned char *want, size_t wantlen, char *why,
    size_t whylen)
{
	struct sealed_reader *r;
	long long got;
	int fds[2];

	CHECK(len <= 60000);	/* fits in the pipe buffer */
	CHECK_INT(pipe(fds), 0);
	CHECK_INT(write(fds[1], file, len), (long long)len);
	close(fds[1]);
	r = sealed_reader_new(key, fds[0], why, whylen);
	if (r == NULL) {
		close(fds[0]);
		return -1;
	}
	CHECK(sealed_reader_plain_size(r, &(uint64_t){0}) == -1);
	got = drain(r, out, cap, 7, want, wantlen);
	if (got < 0)
		snprintf(why, whylen, "%s", sealed_reader_error(r));
	sealed_reader_free(r);
	close(fds[0]);
	return got;
}

/* Whether reading path fails, by path (size check included). */
static bool
read_fails(const char *path, const unsigned char *want, size_t wantlen)
{
	unsigned char *out = unit_alloc(wantlen + 4096);
	struct sealed_reader *r = sealed_reader_open(key, path, err,
	    sizeof(err));
	long long got;

	if (r == NULL)
		return true;
	got = drain(r, out, wantlen + 4096, 4096, want, wantlen);
	sealed_reader_free(r);
	return got < 0;
}

static void
check_round_trip(size_t n, size_t rec, size_t wpiece, size_t rpiece)
{
	size_t mark = unit_mark(), flen, cap = n + rpiece + 16;
	const char *path = tmp_path("rt");
	const unsigned char *plain = make_plain(n);
	unsigned char *out = unit_alloc(cap), *file;
	struct sealed_reader *r;
	uint64_t size;
	size_t reclen = rec == 0 ? SEALED_RECORD_DEFAULT : rec;

	write_sealed(path, plain, n, rec, wpiece);
	file = slurp(path, &flen);
	CHECK_U64(flen, SEALED_HEADER_LEN + (n / reclen + 1) * SEALED_TAG_LEN
	    + n);
	CHECK_INT(sealed_plain_size(flen, reclen, &size), 0);
	CHECK_U64(size, n);
	r = sealed_reader_open(key, path, err, sizeof(err));
	if (r == NULL)
		unit_fail(__FILE__, __LINE__, "size %zu: %s", n, err);
	CHECK_INT(sealed_reader_plain_size(r, &size), 0);
	CHECK_U64(size, n);
	CHECK_INT(drain(r, out, cap, rpiece, plain, n), (long long)n);
	CHECK(memcmp(out, plain, n) == 0);
	CHECK_INT(sealed_reader_read(r, out, 1), 0);	/* stays at the end */
	sealed_reader_free(r);
	CHECK_INT(sealed_file_verify(key, path, err, sizeof(err)), 0);
	if (n <= 60000) {
		CHECK_INT(read_via_pipe(file, flen, out, cap, plain, n, err,
		    sizeof(err)), (long long)n);
		CHECK(memcmp(out, plain, n) == 0);
	}
	unit_release(mark);
}

/* ---- cases ---- */

static void
key_file_rules(void)
{
	const char *p = tmp_path("k");
	struct sealed_key *k;
	unsigned char b[64];

	memset(b, 'k', sizeof(b));
	unlink(p);
	CHECK(sealed_key_load(p, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "No such file") != NULL);
	put_file(p, b, 31);
	CHECK(sealed_key_load(p, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "has 31 bytes") != NULL);
	put_file(p, b, 32);
	chmod(p, 0604);
	CHECK(sealed_key_load(p, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "accessible to others") != NULL);
	chmod(p, 0640);
	k = sealed_key_load(p, err, sizeof(err));
	CHECK(k != NULL);
	sealed_key_free(k);
	/* a base64 line, as `openssl rand -base64 32` writes */
	put_file(p, "q2d1W9mJ0c3Hnq+2YbS6Yk3o0J2m3cF6jXQwzqg7Gx4=\n", 45);
	k = sealed_key_load(p, err, sizeof(err));
	CHECK(k != NULL);
	sealed_key_free(k);
	unlink(p);
	CHECK_INT(mkfifo(p, 0600), 0);
	CHECK(sealed_key_load(p, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "not a regular file") != NULL);
	unlink(p);
	CHECK(sealed_key_load(tmpdir, err, sizeof(err)) == NULL);
}

static void
round_trip_default_records(void)
{
	static const size_t sizes[] = { 0, 1, SEALED_RECORD_DEFAULT - 1,
	    SEALED_RECORD_DEFAULT, SEALED_RECORD_DEFAULT + 1,
	    2 * SEALED_RECORD_DEFAULT, 5 * SEALED_RECORD_DEFAULT + 7 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		check_round_trip(sizes[i], 0, 8192, 4096);
		check_round_trip(sizes[i], 0, 65537, 65536 + 3);
	}
}

static void
round_trip_small_records_every_size(void)
{
	for (size_t n = 0; n <= 4 * SMALL_RECORD + 1; n++)
		check_round_trip(n, SMALL_RECORD, n % 7 + 1, n % 5 + 1);
}

static void
writer_refuses_bad_use(void)
{
	const char *p = tmp_path("bad");
	struct sealed_writer *w;
	int fd, fds[2];

	unlink(p);
	CHECK(sealed_writer_open(key, p, SEALED_RECORD_MIN - 1, err,
	    sizeof(err)) == NULL);
	CHECK(strstr(err, "record size") != NULL);
	CHECK(sealed_writer_open(key, p, SEALED_RECORD_MAX + 1, err,
	    sizeof(err)) == NULL);
	/* O_EXCL: an existing file is never overwritten */
	put_file(p, "x", 1);
	CHECK(sealed_writer_open(key, p, 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "File exists") != NULL);
	/* a write error is kept and reported by finish */
	fd = open(p, O_RDONLY);
	CHECK(sealed_writer_new(key, fd, 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "write") != NULL);
	close(fd);
	fd = open("/dev/full", O_WRONLY);
	CHECK(fd >= 0);
	CHECK(sealed_writer_new(key, fd, 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "No space left") != NULL);
	close(fd);
	/* the header went out, then the reader went away */
	CHECK_INT(pipe(fds), 0);
	w = sealed_writer_new(key, fds[1], SMALL_RECORD, err, sizeof(err));
	CHECK(w != NULL);
	close(fds[0]);
	CHECK_INT(sealed_writer_write(w, make_plain(1000), 1000), -1);
	CHECK_INT(sealed_writer_write(w, "x", 1), -1);	/* sticky */
	CHECK_INT(sealed_writer_finish(w, err, sizeof(err)), -1);
	CHECK(strstr(err, "Broken pipe") != NULL);
	sealed_writer_free(w);
	close(fds[1]);
	/* after finish, writing is refused */
	unlink(p);
	w = sealed_writer_open(key, p, 0, err, sizeof(err));
	CHECK(w != NULL);
	CHECK_INT(sealed_writer_finish(w, err, sizeof(err)), 0);
	CHECK_INT(sealed_writer_write(w, "x", 1), -1);
	sealed_writer_free(w);
}

static void
unfinished_file_is_refused(void)
{
	const char *p = tmp_path("unfinished");
	const unsigned char *plain = make_plain(3 * SMALL_RECORD);
	struct sealed_writer *w;

	unlink(p);
	w = sealed_writer_open(key, p, SMALL_RECORD, err, sizeof(err));
	CHECK(w != NULL);
	CHECK_INT(sealed_writer_write(w, plain, 3 * SMALL_RECORD), 0);
	sealed_writer_free(w);	/* no finish: no final record */
	CHECK(read_fails(p, plain, 3 * SMALL_RECORD));
	CHECK_INT(sealed_file_verify(key, p, err, sizeof(err)), -1);
	CHECK(strstr(err, "truncated") != NULL);
}

static void
every_byte_flip_is_detected(void)
{
	const char *good = tmp_path("flip-good"), *bad = tmp_path("flip-bad");
	const unsigned char *plain = make_plain(SMALL_PLAIN);
	static const unsigned char masks[] = { 0x01, 0x80, 0xff };
	unsigned char *file, *copy;
	size_t flen, tried = 0;

	write_sealed(good, plain, SMALL_PLAIN, SMALL_RECORD, 50);
	file = slurp(good, &flen);
	copy = unit_alloc(flen);
	for (size_t i = 0; i < flen; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			size_t mark = unit_mark();

			memcpy(copy, file, flen);
			copy[i] ^= masks[m];
			put_file(bad, copy, flen);
			if (!read_fails(bad, plain, SMALL_PLAIN))
				unit_fail(__FILE__, __LINE__, "byte %zu ^ 0x%02x "
				    "of %zu not detected", i, masks[m], flen);
			unit_release(mark);
			tried++;
		}
	}
	CHECK_U64(tried, flen * sizeof(masks));
	printf("# flipped each of %zu bytes 3 ways: all refused\n", flen);
}

static void
every_truncation_is_detected(void)
{
	const char *good = tmp_path("cut-good"), *bad = tmp_path("cut-bad");
	const unsigned char *plain = make_plain(SMALL_PLAIN);
	unsigned char *file, *out = unit_alloc(SMALL_PLAIN + 64);
	char why[SEALED_ERR_MAX];
	size_t flen;
	bool boundary_seen = false;

	write_sealed(good, plain, SMALL_PLAIN, SMALL_RECORD, 64);
	file = slurp(good, &flen);
	for (size_t cut = 0; cut < flen; cut++) {
		size_t mark = unit_mark();

		put_file(bad, file, cut);
		if (!read_fails(bad, plain, SMALL_PLAIN))
			unit_fail(__FILE__, __LINE__, "cut at %zu of %zu by path "
			    "not detected", cut, flen);
		why[0] = '\0';
		if (read_via_pipe(file, cut, out, SMALL_PLAIN + 64, plain,
		    SMALL_PLAIN, why, sizeof(why)) != -1)
			unit_fail(__FILE__, __LINE__, "cut at %zu of %zu via a "
			    "pipe not detected", cut, flen);
		/* at a record boundary: "ends before record i" */
		if (cut > SEALED_HEADER_LEN && (cut - SEALED_HEADER_LEN) %
		    (SMALL_RECORD + SEALED_TAG_LEN) == 0) {
			CHECK(strstr(why, "truncated") != NULL);
			boundary_seen = true;
		}
		unit_release(mark);
	}
	CHECK(boundary_seen);
}

static void
extension_is_detected(void)
{
	const char *good = tmp_path("ext-good"), *bad = tmp_path("ext-bad");
	const unsigned char *plain = make_plain(2 * SMALL_RECORD);
	unsigned char *file, *big, *out = unit_alloc(4 * SMALL_RECORD);
	size_t flen, last = SMALL_RECORD + SEALED_TAG_LEN;
	char why[SEALED_ERR_MAX];

	/* 2 full records and an empty final record (16 bytes) */
	write_sealed(good, plain, 2 * SMALL_RECORD, SMALL_RECORD, 64);
	file = slurp(good, &flen);
	CHECK_U64(flen, SEALED_HEADER_LEN + 2 * last + SEALED_TAG_LEN);
	big = unit_alloc(flen + 2 * last);
	for (size_t extra = 1; extra <= last + SEALED_TAG_LEN; extra++) {
		memcpy(big, file, flen);
		/* more of the file's own bytes after its end */
		memcpy(big + flen, file + SEALED_HEADER_LEN, extra);
		put_file(bad, big, flen + extra);
		CHECK(read_fails(bad, plain, 2 * SMALL_RECORD));
		CHECK_INT(read_via_pipe(big, flen + extra, out,
		    4 * SMALL_RECORD, plain, 2 * SMALL_RECORD, why,
		    sizeof(why)), -1);
	}
	/* the final record repeated */
	memcpy(big, file, flen);
	memcpy(big + flen, file + flen - SEALED_TAG_LEN, SEALED_TAG_LEN);
	CHECK_INT(read_via_pipe(big, flen + SEALED_TAG_LEN, out,
	    4 * SMALL_RECORD, plain, 2 * SMALL_RECORD, why, sizeof(why)), -1);
}

static void
reordered_records_are_detected(void)
{
	const char *good = tmp_path("ord-good"), *bad = tmp_path("ord-bad");
	const unsigned char *plain = make_plain(3 * SMALL_RECORD + 5);
	size_t rl = SMALL_RECORD + SEALED_TAG_LEN, flen;
	unsigned char *file, *copy;

	write_sealed(good, plain, 3 * SMALL_RECORD + 5, SMALL_RECORD, 64);
	file = slurp(good, &flen);
	copy = unit_alloc(flen);
	for (size_t a = 0; a < 3; a++) {
		for (size_t b = 0; b < 3; b++) {
			if (a == b)
				continue;
			/* record a swapped with b, then a copied over b */
			memcpy(copy, file, flen);
			memcpy(copy + SEALED_HEADER_LEN + a * rl, file +
			    SEALED_HEADER_LEN + b * rl, rl);
			memcpy(copy + SEALED_HEADER_LEN + b * rl, file +
			    SEALED_HEADER_LEN + a * rl, rl);
			put_file(bad, copy, flen);
			CHECK(read_fails(bad, plain, 3 * SMALL_RECORD + 5));
			memcpy(copy + SEALED_HEADER_LEN + b * rl, file +
			    SEALED_HEADER_LEN + a * rl, rl);
			memcpy(copy + SEALED_HEADER_LEN + a * rl, file +
			    SEALED_HEADER_LEN + a * rl, rl);
			put_file(bad, copy, flen);
			CHECK(read_fails(bad, plain, 3 * SMALL_RECORD + 5));
		}
	}
	/* a record dropped from the middle, the final one moved up */
	memcpy(copy, file, SEALED_HEADER_LEN + rl);
	memcpy(copy + SEALED_HEADER_LEN + rl, file + SEALED_HEADER_LEN + 2 * rl,
	    flen - SEALED_HEADER_LEN - 2 * rl);
	put_file(bad, copy, flen - rl);
	CHECK(read_fails(bad, plain, 3 * SMALL_RECORD + 5));
}

static void
records_swapped_between_files_are_detected(void)
{
	const char *pa = tmp_path("swap-a"), *pb = tmp_path("swap-b");
	const char *bad = tmp_path("swap-bad");
	const unsigned char *plain = make_plain(3 * SMALL_RECORD + 5);
	size_t rl = SMALL_RECORD + SEALED_TAG_LEN, la, lb;
	unsigned char *fa, *fb, *copy;

	/* the same plaintext and key: only the per-file salt differs */
	write_sealed(pa, plain, 3 * SMALL_RECORD + 5, SMALL_RECORD, 64);
	write_sealed(pb, plain, 3 * SMALL_RECORD + 5, SMALL_RECORD, 64);
	fa = slurp(pa, &la);
	fb = slurp(pb, &lb);
	CHECK_U64(la, lb);
	CHECK(memcmp(fa + SEALED_HEADER_LEN, fb + SEALED_HEADER_LEN,
	    la - SEALED_HEADER_LEN) != 0);
	copy = unit_alloc(la);
	for (size_t i = 0; i < 4; i++) {	/* 3 full + the final */
		size_t off = SEALED_HEADER_LEN + i * rl;
		size_t n = i < 3 ? rl : la - off;

		memcpy(copy, fa, la);
		memcpy(copy + off, fb + off, n);
		put_file(bad, copy, la);
		CHECK(read_fails(bad, plain, 3 * SMALL_RECORD + 5));
	}
	/* B's header on A's records: the key check passes, records fail */
	memcpy(copy, fa, la);
	memcpy(copy, fb, SEALED_HEADER_LEN);
	put_file(bad, copy, la);
	CHECK(read_fails(bad, plain, 3 * SMALL_RECORD + 5));
	CHECK_INT(sealed_file_verify(key, bad, err, sizeof(err)), -1);
	CHECK(strstr(err, "record 0 fails authentication") != NULL);
}

static void
wrong_key_is_detected(void)
{
	const char *p = tmp_path("wrongkey");
	const unsigned char *plain = make_plain(100);
	struct sealed_reader *r;

	write_sealed(p, plain, 100, 0, 100);
	r = sealed_reader_open(key2, p, err, sizeof(err));
	CHECK(r == NULL);
	CHECK(strstr(err, "wrong key") != NULL);
	CHECK_INT(sealed_file_verify(key2, p, err, sizeof(err)), -1);
	CHECK_INT(sealed_file_verify(key, p, err, sizeof(err)), 0);
}

static void
not_a_sealed_file(void)
{
	const char *p = tmp_path("plain");

	put_file(p, "From: a@b\r\n\r\nhello\r\n", 20);
	CHECK(sealed_reader_open(key, p, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "not a sealed file") != NULL);
	put_file(p, "", 0);
	CHECK(sealed_reader_open(key, p, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "shorter than a header") != NULL);
}

static void
plaintext_token_is_not_in_the_file(void)
{
	const char *p = tmp_path("token");
	size_t n = 3 * SEALED_RECORD_DEFAULT + 99, flen;
	const unsigned char *plain = make_plain(n);
	unsigned char *file;

	CHECK(memmem(plain, n, TOKEN, sizeof(TOKEN) - 1) != NULL);
	write_sealed(p, plain, n, 0, 4000);
	file = slurp(p, &flen);
	CHECK(memmem(file, flen, TOKEN, sizeof(TOKEN) - 1) == NULL);
	CHECK(memmem(file, flen, plain + 100, 16) == NULL);
}

static void
plain_size_formula(void)
{
	uint64_t s;

	CHECK_INT(sealed_plain_size(0, 64, &s), -1);
	CHECK_INT(sealed_plain_size(SEALED_HEADER_LEN + 15, 64, &s), -1);
	CHECK_INT(sealed_plain_size(SEALED_HEADER_LEN + 16, 64, &s), 0);
	CHECK_U64(s, 0);
	CHECK_INT(sealed_plain_size(SEALED_HEADER_LEN + 80, 64, &s), -1);
	CHECK_INT(sealed_plain_size(SEALED_HEADER_LEN + 96, 64, &s), 0);
	CHECK_U64(s, 64);
	CHECK_INT(sealed_plain_size(SEALED_HEADER_LEN + 80 + 16 + 63, 64, &s),
	    0);
	CHECK_U64(s, 127);
	CHECK_INT(sealed_plain_size(1000, 8, &s), -1);	/* record too small */
}

static const struct unit_case cases[] = {
	{ "a key file must be a private regular file of 32 bytes or more",
	    key_file_rules },
	{ "round trip with 64 KiB records at 0 1 R-1 R R+1 2R 5R+7 bytes",
	    round_trip_default_records },
	{ "round trip with 64-byte records at every size up to 4R+1",
	    round_trip_small_records_every_size },
	{ "the writer refuses bad sizes and reports write errors",
	    writer_refuses_bad_use },
	{ "a file whose writer never finished is refused",
	    unfinished_file_is_refused },
	{ "every byte flipped is detected", every_byte_flip_is_detected },
	{ "every truncation is detected by path and through a pipe",
	    every_truncation_is_detected },
	{ "bytes after the final record are detected",
	    extension_is_detected },
	{ "records reordered dropped or repeated are detected",
	    reordered_records_are_detected },
	{ "records swapped between two files are detected",
	    records_swapped_between_files_are_detected },
	{ "the wrong key is reported as such", wrong_key_is_detected },
	{ "a plain file is not a sealed file", not_a_sealed_file },
	{ "a token of the plaintext is nowhere in the file",
	    plaintext_token_is_not_in_the_file },
	{ "the plaintext size follows from the file size",
	    plain_size_formula },
};

int
main(int argc, char **argv)
{
	unsigned char k1[32], k2[32];
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: test_sealed TMPDIR\n");
		return 2;
	}
	tmpdir = argv[1];
	signal(SIGPIPE, SIG_IGN);
	memset(k1, 0x11, sizeof(k1));
	memset(k2, 0x11, sizeof(k2));
	k2[31] ^= 1;		/* one bit apart */
	key = sealed_key_new(k1, sizeof(k1), err, sizeof(err));
	key2 = sealed_key_new(k2, sizeof(k2), err, sizeof(err));
	if (key == NULL || key2 == NULL) {
		printf("not ok keys: %s\n", err);
		return 1;
	}
	rc = unit_run(cases, sizeof(cases) / sizeof(cases[0]));
	sealed_key_free(key);
	sealed_key_free(key2);
	printf("# done rc=%d\n", rc);
	return rc;
}
