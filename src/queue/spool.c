/*
 * spool.c — the message spool (see spool.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "queue/spool.h"
#include "util/fsutil.h"

int
spool_init(const char *dir)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/tmp", dir);
	if (mkdir_p(p, 0700) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/queue", dir);
	return mkdir_p(p, 0700);
}

int
spool_open(struct spool_file *f, const char *dir, const char *name)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	if ((size_t)snprintf(f->path, sizeof(f->path), "%s/tmp/%s", dir, name) >=
	    sizeof(f->path)) {
		f->fd = -1;
		errno = ENAMETOOLONG;
		return -1;
	}
	f->fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return f->fd < 0 ? -1 : 0;
}

void
spool_write(struct spool_file *f, const void *p, size_t n)
{
	if (f->err != 0 || n == 0)
		return;
	if (write_all(f->fd, p, n) != 0) {
		f->err = errno;
		return;
	}
	f->size += n;
}

void
spool_discard(struct spool_file *f)
{
	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	if (f->path[0] != '\0')
		unlink(f->path);
	f->path[0] = '\0';
}

int
spool_commit(const char *dir, struct spool_file *f, const char *env,
    size_t envlen, char *err, size_t errlen)
{
	char envtmp[PATH_MAX], envq[PATH_MAX], msgq[PATH_MAX], qdir[PATH_MAX];
	int efd;

	snprintf(qdir, sizeof(qdir), "%s/queue", dir);
	snprintf(envtmp, sizeof(envtmp), "%s/tmp/%s.env", dir, f->name);
	snprintf(envq, sizeof(envq), "%s/queue/%s.env", dir, f->name);
	snprintf(msgq, sizeof(msgq), "%s/queue/%s", dir, f->name);

	if (f->err != 0) {
		snprintf(err, errlen, "spool write: %s", strerror(f->err));
		return -1;
	}
	if (fsync(f->fd) != 0) {
		snprintf(err, errlen, "fsync %s: %s", f->path, strerror(errno));
		return -1;
	}
	efd = open(envtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (efd < 0) {
		snprintf(err, errlen, "open %s: %s", envtmp, strerror(errno));
		return -1;
	}
	if (write_all(efd, env, envlen) != 0 || fsync(efd) != 0) {
		snprintf(err, errlen, "write %s: %s", envtmp, strerror(errno));
		close(efd);
		unlink(envtmp);
		return -1;
	}
	close(efd);
	/* Envelope first: a queue file is complete only with its envelope. */
	if (rename(envtmp, envq) != 0 || rename(f->path, msgq) != 0) {
		snprintf(err, errlen, "rename into %s: %s", qdir, strerror(errno));
		unlink(envtmp);
		return -1;
	}
	if (fsync_dir(qdir) != 0) {
		snprintf(err, errlen, "fsync %s: %s", qdir, strerror(errno));
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s", msgq);
	return 0;
}
