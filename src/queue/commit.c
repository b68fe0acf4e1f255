/*
 * commit.c — group commit (see commit.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/commit.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xmalloc.h"

enum stage {
	ST_NEW,
	ST_ENV_WRITTEN,		/* tmp/<id>.env exists */
	ST_RENAMED,		/* both are in queue/ */
	ST_FAILED,
};

static struct {
	struct ev_loop		*loop;
	enum commit_mode	 mode;
	char			 dir[PATH_MAX];
	int			 spoolfd;	/* for syncfs */
	int			 queuefd;	/* for the directory fsync */
	pthread_t		 thread;
	bool			 started;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cond;
	struct commit_req	*todo, **todo_tail;
	struct commit_req	*finished;
	bool			 stopping;
	unsigned		 pending;	/* loop thread */
	ev_async		 wakeup;
} c;

static int
fail(struct commit_req *r, int errnum, const char *what, const char *path)
{
	r->rc = -1;
	r->stage = ST_FAILED;
	r->err.errnum = errnum;
	snprintf(r->err.text, sizeof(r->err.text), "%s %s: %s", what, path,
	    strerror(errnum));
	return -1;
}

static void
paths(const struct commit_req *r, char *envtmp, char *envq, char *msgq,
    size_t sz)
{
	snprintf(envtmp, sz, "%s/tmp/%s.env", c.dir, r->id);
	snprintf(envq, sz, "%s/queue/%s.env", c.dir, r->id);
	snprintf(msgq, sz, "%s/queue/%s", c.dir, r->id);
}

/* 1. The envelope next to the message, not yet durable. */
static void
write_envelope(struct commit_req *r)
{
	char envtmp[PATH_MAX], envq[PATH_MAX], msgq[PATH_MAX];
	int fd, saved;

	r->f->reusable = false;
	paths(r, envtmp, envq, msgq, sizeof(envtmp));
	if (r->f->err != 0 || r->f->wlen != 0) {
		fail(r, r->f->err ? r->f->err : EIO, "spool write",
		    r->f->path);
		return;
	}
	if ((fd = open(envtmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0) {
		fail(r, errno, "open", envtmp);
		return;
	}
	if (write_all(fd, r->env, r->envlen) != 0) {
		saved = errno;
		close(fd);
		unlink(envtmp);
		fail(r, saved, "write", envtmp);
		return;
	}
	if (close(fd) != 0) {
		saved = errno;
		unlink(envtmp);
		fail(r, saved, "close", envtmp);
		return;
	}
	r->stage = ST_ENV_WRITTEN;
}

/* Undo a request that got as far as its stage, then mark it failed. */
static void
undo(struct commit_req *r, int errnum, const char *what, const char *path)
{
	char envtmp[PATH_MAX], envq[PATH_MAX], msgq[PATH_MAX];

	paths(r, envtmp, envq, msgq, sizeof(envtmp));
	if (r->stage == ST_RENAMED) {
		/* The envelope first: without it the entry is not queued. */
		unlink(envq);
		unlink(msgq);
	} else if (r->stage == ST_ENV_WRITTEN) {
		unlink(envtmp);
	}
	fail(r, errnum, what, path);
}

/* 3. Message then envelope into queue/ (the commit point). */
static void
rename_in(struct commit_req *r)
{
	char envtmp[PATH_MAX], envq[PATH_MAX], msgq[PATH_MAX];

	paths(r, envtmp, envq, msgq, sizeof(envtmp));
	if (rename(r->f->path, msgq) != 0) {
		undo(r, errno, "rename", r->f->path);
		return;
	}
	free(r->f->path);
	r->f->path = xstrdup(msgq);
	r->stage = ST_RENAMED;
	if (rename(envtmp, envq) != 0) {
		int saved = errno;

		unlink(envtmp);
		unlink(msgq);
		r->stage = ST_NEW;
		fail(r, saved, "rename", envtmp);
	}
}

static void
run_batch(struct commit_req *batch)
{
	struct commit_req *r;
	int saved;
	bool any = false;

	for (r = batch; r != NULL; r = r->next)
		write_envelope(r);
	for (r = batch; r != NULL; r = r->next)
		any = any || r->stage == ST_ENV_WRITTEN;
	if (!any)
		return;
	/* 2. Data and envelopes on disk before any of them is committed. */
	if (syncfs(c.spoolfd) != 0) {
		saved = errno;
		for (r = batch; r != NULL; r = r->next)
			if (r->stage == ST_ENV_WRITTEN)
				undo(r, saved, "syncfs", c.dir);
		return;
	}
	for (r = batch; r != NULL; r = r->next)
		if (r->stage == ST_ENV_WRITTEN)
			rename_in(r);
	/* 4. The renames of the whole batch, durable at once. */
	if (fsync(c.queuefd) != 0) {
		saved = errno;
		for (r = batch; r != NULL; r = r->next)
			if (r->stage == ST_RENAMED)
				undo(r, saved, "fsync", "queue/");
		return;
	}
	for (r = batch; r != NULL; r = r->next)
		if (r->stage == ST_RENAMED)
			r->rc = 0;
}

static void *
committer_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct commit_req *batch, *last = NULL, *r;
		unsigned n = 0;

		pthread_mutex_lock(&c.mu);
		while (c.todo == NULL && !c.stopping)
			pthread_cond_wait(&c.cond, &c.mu);
		if (c.todo == NULL) {
			pthread_mutex_unlock(&c.mu);
			return NULL;
		}
		/* Everything that arrived meanwhile, up to the bound. */
		batch = c.todo;
		for (r = batch; r != NULL && n < COMMIT_BATCH_MAX; r = r->next) {
			last = r;
			n++;
		}
		c.todo = last->next;
		if (c.todo == NULL)
			c.todo_tail = &c.todo;
		last->next = NULL;
		pthread_mutex_unlock(&c.mu);

		run_batch(batch);

		pthread_mutex_lock(&c.mu);
		last->next = c.finished;
		c.finished = batch;
		pthread_mutex_unlock(&c.mu);
		ev_async_send(c.loop, &c.wakeup);
	}
}

static void
wakeup_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct commit_req *list;

	(void)loop;
	(void)w;
	(void)revents;
	pthread_mutex_lock(&c.mu);
	list = c.finished;
	c.finished = NULL;
	pthread_mutex_unlock(&c.mu);
	while (list != NULL) {
		struct commit_req *r = list;

		list = r->next;
		r->next = NULL;
		if (--c.pending == 0)
			ev_unref(c.loop);
		r->done(r);
	}
}

/* ---- COMMIT_FILE: one spool_commit per message on the disk pool ---- */

struct file_job {
	struct work		 work;
	struct commit_req	*r;
};

static void
file_run(struct work *w)
{
	struct commit_req *r = ((struct file_job *)w)->r;

	r->rc = spool_commit(c.dir, r->f, r->id, r->env, r->envlen, &r->err);
}

static void
file_done(struct work *w)
{
	struct file_job *j = (struct file_job *)w;
	struct commit_req *r = j->r;

	free(j);
	r->done(r);
}

/* ---- the API ---- */

int
commit_init(struct ev_loop *loop, const char *dir, enum commit_mode mode,
    char *err, size_t errlen)
{
	char q[PATH_MAX];
	sigset_t all, old;

	memset(&c, 0, sizeof(c));
	c.loop = loop;
	c.mode = mode;
	c.spoolfd = c.queuefd = -1;
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	if (mode == COMMIT_FILE)
		return 0;
	snprintf(q, sizeof(q), "%s/queue", dir);
	if ((c.spoolfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (c.queuefd = open(q, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "open %s: %s", c.spoolfd < 0 ? dir : q,
		    strerror(errno));
		if (c.spoolfd >= 0)
			close(c.spoolfd);
		return -1;
	}
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cond, NULL);
	c.todo_tail = &c.todo;
	ev_async_init(&c.wakeup, wakeup_cb);
	ev_async_start(loop, &c.wakeup);
	ev_unref(loop);		/* idle, it must not keep the loop running */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&c.thread, NULL, committer_main, NULL) != 0)
		fatalx("commit: cannot start the committer thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	c.started = true;
	return 0;
}

void
commit_submit(struct commit_req *r)
{
	r->rc = -1;
	r->stage = ST_NEW;
	r->next = NULL;
	memset(&r->err, 0, sizeof(r->err));
	if (c.mode == COMMIT_FILE) {
		struct file_job *j = xcalloc(1, sizeof(*j));

		j->r = r;
		j->work.run = file_run;
		j->work.done = file_done;
		workq_submit(workq_disk, &j->work);
		return;
	}
	/* Requests in flight keep the loop alive (the watcher does not). */
	if (c.pending++ == 0)
		ev_ref(c.loop);
	pthread_mutex_lock(&c.mu);
	*c.todo_tail = r;
	c.todo_tail = &r->next;
	pthread_cond_signal(&c.cond);
	pthread_mutex_unlock(&c.mu);
}

void
commit_shutdown(void)
{
	if (!c.started)
		return;
	pthread_mutex_lock(&c.mu);
	c.stopping = true;
	pthread_cond_signal(&c.cond);
	pthread_mutex_unlock(&c.mu);
	pthread_join(c.thread, NULL);
	ev_ref(c.loop);
	ev_async_stop(c.loop, &c.wakeup);
	close(c.spoolfd);
	close(c.queuefd);
	c.started = false;
}
