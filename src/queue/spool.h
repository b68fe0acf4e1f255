/*
 * spool.h — the message spool.
 *
 * Layout under spool_dir:
 *   tmp/<name>       a message being received (streamed as it arrives)
 *   queue/<id>       a message accepted but not (fully) delivered
 *   queue/<id>.env   its envelope (message/envelope.h), the commit record
 *
 * A message only moves to queue/ through spool_commit(), which fsyncs the
 * file, renames it and fsyncs the directory, so that a 250 sent after it
 * survives a crash.  tmp/ files are never acknowledged; they are deleted
 * at start-up.
 *
 * Writes are buffered (SPOOL_WBUF bytes); spool_flush() before anything
 * reads the file.  A file whose message was delivered or refused is not
 * unlinked but truncated and kept for the next message (a small pool):
 * creating and deleting an inode per message cost more than everything
 * else the server does for a small message, and a file truncated before
 * writeback never reached the disk.  A file that something may still be
 * reading (a delivery abandoned mid-way) is marked !reusable and unlinked.
 */
#ifndef LUASMTPD_SPOOL_H
#define LUASMTPD_SPOOL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_WBUF	(16 * 1024)

struct spool_file {
	int		fd;
	int		err;		/* first write errno, 0 if none */
	uint64_t	size;		/* bytes written (buffered included) */
	bool		reusable;	/* may go back to the pool */
	char		name[48];	/* under tmp/ */
	char		*path;		/* owned; NULL when closed */
	char		*wbuf;		/* SPOOL_WBUF bytes, or NULL */
	size_t		 wlen;
};

/* Create spool_dir/tmp and spool_dir/queue.  0 or -1/errno. */
int	spool_init(const char *spool_dir);
/*
 * Take spool_dir/lock (flock, exclusive) for the life of the process: one
 * server per spool, since start-up recovery deletes what another server
 * would be writing.  The fd (close-on-exec, never closed) or -1/errno
 * (EWOULDBLOCK: another process holds it).
 */
int	spool_lock(const char *spool_dir);
/* What start-up found in the spool (spool_recover). */
struct spool_recovery {
	unsigned	tmp_removed;	/* tmp/: never acknowledged */
	unsigned	orphans_removed; /* queue/ data without its envelope */
	unsigned	envelopes_lost;	/* queue/ envelope without its data */
	unsigned	queued;		/* queue/ entries with both (kept) */
	unsigned	lost;		/* <id>.env.lost, from now or before */
};

/*
 * At start-up, before anything writes: empty tmp/, remove queue/ data
 * that has no envelope (a commit that did not finish: no 250 was sent),
 * and rename an envelope whose data is missing to <id>.env.lost.  Returns
 * 0, or -1 if queue/ cannot be read.
 */
int	spool_recover(const char *spool_dir, struct spool_recovery *);
/* A fresh or reused, empty file under tmp/.  0 or -1/errno. */
int	spool_open(struct spool_file *, const char *spool_dir);
/* Append (buffered); after the first failure it only records the error. */
void	spool_write(struct spool_file *, const void *, size_t);
/* Write what is buffered; returns 0 or -1 (f->err). */
int	spool_flush(struct spool_file *);
/* The message will not be acknowledged or is delivered: pool or unlink. */
void	spool_discard(struct spool_file *);
/* After a commit: close the descriptor (the file is the queue's). */
void	spool_close(struct spool_file *);
/* Why a commit failed: errno (ENOSPC, EDQUOT: no room) and a log text. */
struct spool_commit_err {
	int	errnum;
	char	text[PATH_MAX + 128];
};

/*
 * Blocking (a worker thread).  In this order: fsync the flushed message;
 * write and fsync the envelope in tmp/; rename the message to queue/<id>;
 * rename the envelope to queue/<id>.env (the commit record: an entry is
 * queued only once its envelope is there); fsync queue/ (shared by the
 * commits of that moment, groupsync).  Returns 0, or -1 with e filled and
 * nothing left in queue/ for this id.  Either way the file is never
 * reused for another message (f->reusable is cleared); on success f->path
 * is the queue path.
 */
int	spool_commit(const char *spool_dir, struct spool_file *, const char *id,
	    const char *envelope, size_t envlen, struct spool_commit_err *e);

#endif
