/*
 * spool.c — the message spool (see spool.h).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/spool.h"
#include "util/fsutil.h"
#include "util/groupsync.h"
#include "util/xmalloc.h"

#define SPOOL_POOL_MAX	64

struct pooled {
	int	fd;
	char	name[48];
	char	*path;		/* owned by the pool */
};

/* Emptied files ready for the next message (loop thread only). */
static struct pooled	pool[SPOOL_POOL_MAX];
static size_t		pool_len;
static unsigned long	file_seq;

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
spool_lock(const char *dir)
{
	char p[PATH_MAX];
	int fd, e;

	if ((size_t)snprintf(p, sizeof(p), "%s/lock", dir) >= sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Does dir/name exist? */
static bool
exists_in(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int
spool_recover(const char *dir, struct spool_recovery *r)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int dfd;

	memset(r, 0, sizeof(*r));
	/* tmp/: never acknowledged, the clients will send them again. */
	snprintf(p, sizeof(p), "%s/tmp", dir);
	if ((d = opendir(p)) != NULL) {
		dfd = dirfd(d);
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.' && unlinkat(dfd, de->d_name, 0) == 0)
				r->tmp_removed++;
		closedir(d);
	}
	/*
	 * queue/: an entry is queued once its envelope is there (the commit
	 * record).  Message data without one is a commit that never
	 * finished: its client got no 250.  An envelope without its data
	 * cannot be delivered: it is set aside as <id>.env.lost for a look.
	 */
	snprintf(p, sizeof(p), "%s/queue", dir);
	if ((d = opendir(p)) == NULL)
		return -1;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		size_t len = strlen(n);
		char other[NAME_MAX + 8];

		if (n[0] == '.')
			continue;
		if (len > 4 && strcmp(n + len - 4, ".env") == 0) {
			snprintf(other, sizeof(other), "%.*s", (int)(len - 4), n);
			if (!exists_in(dfd, other)) {
				snprintf(other, sizeof(other), "%s.lost", n);
				if (renameat(dfd, n, dfd, other) == 0)
					r->envelopes_lost++;
			} else {
				r->queued++;
			}
		} else if (len > 5 && strcmp(n + len - 5, ".lost") == 0) {
			continue;
		} else {
			snprintf(other, sizeof(other), "%s.env", n);
			if (!exists_in(dfd, other) && unlinkat(dfd, n, 0) == 0)
				r->orphans_removed++;
		}
	}
	/* Renamed entries may or may not show up again: count them apart. */
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len > 9 && strcmp(de->d_name + len - 9, ".env.lost") == 0)
			r->lost++;
	}
	closedir(d);
	return 0;
}

int
spool_open(struct spool_file *f, const char *dir)
{
	memset(f, 0, sizeof(*f));
	f->reusable = true;
	if (pool_len > 0) {
		struct pooled *p = &pool[--pool_len];

		f->fd = p->fd;
		memcpy(f->name, p->name, sizeof(f->name));
		f->path = p->path;
		p->path = NULL;
	} else {
		char path[PATH_MAX];

		snprintf(f->name, sizeof(f->name), "s%d.%lu", (int)getpid(),
		    ++file_seq);
		if ((size_t)snprintf(path, sizeof(path), "%s/tmp/%s", dir,
		    f->name) >= sizeof(path)) {
			f->fd = -1;
			errno = ENAMETOOLONG;
			return -1;
		}
		f->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (f->fd < 0)
			return -1;
		f->path = xstrdup(path);
	}
	f->wbuf = xmalloc(SPOOL_WBUF);
	return 0;
}

int
spool_flush(struct spool_file *f)
{
	if (f->err == 0 && f->wlen > 0 && write_all(f->fd, f->wbuf, f->wlen) != 0)
		f->err = errno;
	f->wlen = 0;
	return f->err == 0 ? 0 : -1;
}

void
spool_write(struct spool_file *f, const void *p, size_t n)
{
	if (f->err != 0 || n == 0)
		return;
	f->size += n;
	if (f->wlen + n > SPOOL_WBUF) {
		if (spool_flush(f) != 0)
			return;
		if (n >= SPOOL_WBUF) {
			if (write_all(f->fd, p, n) != 0)
				f->err = errno;
			return;
		}
	}
	memcpy(f->wbuf + f->wlen, p, n);
	f->wlen += n;
}

static void
drop_buffer(struct spool_file *f)
{
	free(f->wbuf);
	f->wbuf = NULL;
	f->wlen = 0;
}

void
spool_discard(struct spool_file *f)
{
	drop_buffer(f);
	if (f->fd < 0)
		return;
	if (f->reusable && pool_len < SPOOL_POOL_MAX &&
	    ftruncate(f->fd, 0) == 0 && lseek(f->fd, 0, SEEK_SET) == 0) {
		struct pooled *p = &pool[pool_len++];

		p->fd = f->fd;
		memcpy(p->name, f->name, sizeof(p->name));
		p->path = f->path;
		f->path = NULL;
	} else {
		close(f->fd);
		unlink(f->path);
	}
	f->fd = -1;
	free(f->path);
	f->path = NULL;
}

void
spool_close(struct spool_file *f)
{
	drop_buffer(f);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->path);
	f->path = NULL;
}

/* Record the first failure: what failed (for the log) and its errno. */
static int
commit_fail(struct spool_commit_err *e, int errnum, const char *fmt,
    const char *arg)
{
	e->errnum = errnum;
	snprintf(e->text, sizeof(e->text), fmt, arg, strerror(errnum));
	return -1;
}

int
spool_commit(const char *dir, struct spool_file *f, const char *id,
    const char *env, size_t envlen, struct spool_commit_err *e)
{
	char envtmp[PATH_MAX], envq[PATH_MAX], msgq[PATH_MAX], qdir[PATH_MAX];
	int efd, qfd, saved;

	memset(e, 0, sizeof(*e));
	/* Whatever happens, this file is not handed to another message. */
	f->reusable = false;
	if ((size_t)snprintf(qdir, sizeof(qdir), "%s/queue", dir) >= sizeof(qdir) ||
	    (size_t)snprintf(envtmp, sizeof(envtmp), "%s/tmp/%s.env", dir, id) >=
	    sizeof(envtmp) ||
	    (size_t)snprintf(envq, sizeof(envq), "%s/queue/%s.env", dir, id) >=
	    sizeof(envq) ||
	    (size_t)snprintf(msgq, sizeof(msgq), "%s/queue/%s", dir, id) >=
	    sizeof(msgq))
		return commit_fail(e, ENAMETOOLONG, "path %s: %s", dir);
	if (f->err != 0 || f->wlen != 0)
		return commit_fail(e, f->err ? f->err : EIO, "spool write %s: %s",
		    f->path);
	/* 1. The message's bytes are on disk. */
	if (fsync(f->fd) != 0)
		return commit_fail(e, errno, "fsync %s: %s", f->path);
	/* 2. The envelope is written and on disk, still outside queue/. */
	efd = open(envtmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (efd < 0)
		return commit_fail(e, errno, "open %s: %s", envtmp);
	if (write_all(efd, env, envlen) != 0 || fsync(efd) != 0) {
		saved = errno;
		close(efd);
		unlink(envtmp);
		return commit_fail(e, saved, "write %s: %s", envtmp);
	}
	if (close(efd) != 0) {
		saved = errno;
		unlink(envtmp);
		return commit_fail(e, saved, "close %s: %s", envtmp);
	}
	/*
	 * 3. The message into queue/, then 4. its envelope: the envelope is
	 * the commit record, so a queue/ entry without one is an orphan that
	 * start-up removes, never a message delivered half.
	 */
	if (rename(f->path, msgq) != 0) {
		saved = errno;
		unlink(envtmp);
		return commit_fail(e, saved, "rename into %s: %s", qdir);
	}
	free(f->path);
	f->path = xstrdup(msgq);
	if (rename(envtmp, envq) != 0) {
		saved = errno;
		unlink(envtmp);
		unlink(msgq);
		return commit_fail(e, saved, "rename into %s: %s", qdir);
	}
	/* 5. Both names are durable.  Commits at the same time share it. */
	if ((qfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    groupsync(qfd) != 0) {
		saved = errno;
		if (qfd >= 0)
			close(qfd);
		/*
		 * Not known to be on stable storage: the client gets a 4xx
		 * and will send it again, so this copy must never be
		 * delivered.  The envelope goes first (un-commit).
		 */
		unlink(envq);
		unlink(msgq);
		return commit_fail(e, saved, "fsync %s: %s", qdir);
	}
	close(qfd);
	return 0;
}
