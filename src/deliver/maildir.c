/*
 * maildir.c — Maildir delivery (see maildir.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "deliver/maildir.h"
#include "util/fsutil.h"
#include "util/groupsync.h"

#define COPY_CHUNK	(64 * 1024)

static atomic_uint delivery_seq;

/* Host part of a unique name: '/' and ':' are not allowed (Maildir spec). */
static void
safe_host(const char *h, char *out, size_t outsz)
{
	size_t o = 0;

	for (; *h != '\0' && o + 5 < outsz; h++) {
		if (*h == '/')
			o += (size_t)snprintf(out + o, outsz - o, "\\057");
		else if (*h == ':')
			o += (size_t)snprintf(out + o, outsz - o, "\\072");
		else
			out[o++] = *h;
	}
	out[o] = '\0';
}

/* Copy the spool file to fd, CRLF -> LF.  Returns bytes written or -1. */
static long long
copy_lf(int in, int out, char *err, size_t errlen)
{
	static _Thread_local char ibuf[COPY_CHUNK], obuf[COPY_CHUNK];
	bool cr_pending = false;
	long long total = 0;

	for (;;) {
		ssize_t n = read(in, ibuf, sizeof(ibuf));
		size_t o = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "read spool: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			char c = ibuf[i];

			if (cr_pending) {
				cr_pending = false;
				if (c != '\n')
					obuf[o++] = '\r';	/* a lone CR stays */
			}
			if (c == '\r') {
				cr_pending = true;
				continue;
			}
			obuf[o++] = c;
			if (o >= sizeof(obuf) - 1) {
				if (write_all(out, obuf, o) != 0)
					goto werr;
				total += (long long)o;
				o = 0;
			}
		}
		if (o > 0) {
			if (write_all(out, obuf, o) != 0)
				goto werr;
			total += (long long)o;
		}
	}
	if (cr_pending) {
		if (write_all(out, "\r", 1) != 0)
			goto werr;
		total++;
	}
	return total;
werr:
	snprintf(err, errlen, "write: %s", strerror(errno));
	return -1;
}

const char *
maildir_dir_check(const char *dir, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return "empty path";
	if (len > MAILDIR_DIR_MAX)
		return "path too long";
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)dir[i] : '/';

		if (c == '\0')
			return "path contains a NUL byte";
		if (c < 0x20 || c == 0x7f)
			return "path contains a control character";
		if (c != '/')
			continue;
		if (i - start == 2 && dir[start] == '.' && dir[start + 1] == '.')
			return "path has a '..' component";
		start = i + 1;
	}
	return NULL;
}

int
maildir_deliver(const char *dir, const char *spool_path, const char *prefix,
    const char *hostname, char *out, size_t outsz, char *err, size_t errlen)
{
	char sub[PATH_MAX], tmp[PATH_MAX], host[256], base[256], newdir[PATH_MAX];
	struct timeval tv;
	long long size;
	int in = -1, fd = -1, dfd = -1;
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	const char *bad;

	if ((bad = maildir_dir_check(dir, strlen(dir))) != NULL) {
		snprintf(err, errlen, "maildir: %s", bad);
		return -1;
	}
	for (int i = 0; i < 3; i++) {
		static const char *subs[] = { "tmp", "new", "cur" };

		snprintf(sub, sizeof(sub), "%s/%s", dir, subs[i]);
		if (mkdir_p(sub, 0700) != 0) {
			snprintf(err, errlen, "mkdir %s: %s", sub, strerror(errno));
			return -1;
		}
	}
	gettimeofday(&tv, NULL);
	safe_host(hostname, host, sizeof(host));
	snprintf(base, sizeof(base), "%lld.M%06ldP%dQ%u.%s",
	    (long long)tv.tv_sec, (long)tv.tv_usec, (int)getpid(),
	    atomic_fetch_add(&delivery_seq, 1) + 1, host);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, base);

	if ((in = open(spool_path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "open %s: %s", spool_path, strerror(errno));
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "create %s: %s", tmp, strerror(errno));
		close(in);
		return -1;
	}
	if (plen > 0 && write_all(fd, prefix, plen) != 0) {
		snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if ((size = copy_lf(in, fd, err, errlen)) < 0)
		goto fail;
	size += (long long)plen;
	if (fsync(fd) != 0) {
		snprintf(err, errlen, "fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	close(in);
	fd = in = -1;
	/* ",S=<size>" lets Dovecot and Courier skip a stat for quota. */
	snprintf(out, outsz, "%s/new/%s,S=%lld", dir, base, size);
	if (rename(tmp, out) != 0) {
		snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	/*
	 * Make the rename durable.  Deliveries into the same new/ share one
	 * directory fsync (group commit, util/groupsync.h).
	 */
	snprintf(newdir, sizeof(newdir), "%s/new", dir);
	if ((dfd = open(newdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    groupsync(dfd) != 0) {
		snprintf(err, errlen, "fsync %s: %s", newdir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	close(dfd);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (in >= 0)
		close(in);
	unlink(tmp);
	return -1;
}
