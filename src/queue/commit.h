/*
 * commit.h — group commit: every message accepted at the same moment is
 * made durable by the same disk flushes.
 *
 * RFC 5321 §6.1: the 250 after DATA means the message is ours to deliver
 * or bounce, so it must be on stable storage first.  One fsync per file
 * per message caps a server at what the disk flushes per second; group
 * commit (Postfix's cleanup does one fsync per message; databases batch
 * their write-ahead log) shares the flushes among all the messages that
 * arrived meanwhile:
 *
 * COMMIT_FILESYSTEM (the default): one committer thread takes every
 * pending request at once (a batch) and, for the batch,
 *   1. writes each envelope to tmp/<id>.env (no fsync yet);
 *   2. syncfs(2) on the spool's filesystem: every message file and every
 *      envelope of the batch is on disk (data before commit record);
 *   3. renames each message, then its envelope, into queue/ (the commit
 *      points, see spool.h);
 *   4. fsyncs queue/ once: the renames are durable;
 * then every request of the batch is answered.  A request that arrives
 * during a batch waits for the next one: the more concurrent sessions,
 * the bigger the batches.  syncfs also writes out unrelated dirty data of
 * that filesystem: on a busy shared disk, give the spool a filesystem of
 * its own or use
 * COMMIT_FILE: each message committed alone with spool_commit() (fsync of
 * the file, of the envelope, of queue/ shared by concurrent commits) on
 * the disk pool.
 *
 * Any failure undoes its request (or the whole batch, for a failed flush):
 * nothing stays in queue/, the client gets a 4xx, and the file is never
 * reused.  Loop thread for the API; done() runs on the loop thread.
 */
#ifndef LUASMTPD_COMMIT_H
#define LUASMTPD_COMMIT_H

#include <ev.h>
#include <stddef.h>

#include "queue/spool.h"

/* Requests in one batch at most (the rest wait for the next). */
#define COMMIT_BATCH_MAX	1024

enum commit_mode {
	COMMIT_FILESYSTEM,
	COMMIT_FILE,
};

struct commit_req {
	/* In (the caller's until done() runs). */
	struct spool_file	*f;		/* flushed; f->path becomes the
						 * queue path on success */
	char			 id[64];
	const char		*env;
	size_t			 envlen;
	void			(*done)(struct commit_req *);
	void			*arg;
	/* Out. */
	int			 rc;		/* 0 or -1 */
	struct spool_commit_err	 err;
	/* The committer's. */
	struct commit_req	*next;
	int			 stage;
};

/* Once, after the worker pools exist.  0, or -1 with err. */
int	commit_init(struct ev_loop *, const char *spool_dir, enum commit_mode,
	    char *err, size_t errlen);
void	commit_submit(struct commit_req *);
/* Stop the committer thread (pending requests are finished first). */
void	commit_shutdown(void);

#endif
