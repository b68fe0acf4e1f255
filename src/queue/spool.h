/*
 * spool.h — the message spool.
 *
 * Layout under spool_dir:
 *   tmp/<id>         a message being received (streamed as it arrives)
 *   queue/<id>       a message accepted but not (fully) delivered
 *   queue/<id>.env   its envelope: "from <sender>" and "to <rcpt>" lines
 *
 * A message only moves to queue/ through spool_commit(), which fsyncs the
 * file, renames it and fsyncs the directory, so that a 250 sent after it
 * survives a crash.  tmp/ files are never acknowledged; they may be
 * deleted at start-up.
 */
#ifndef LUASMTPD_SPOOL_H
#define LUASMTPD_SPOOL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

struct spool_file {
	int		fd;
	int		err;		/* first write errno, 0 if none */
	uint64_t	size;		/* bytes written */
	char		name[48];
	char		path[PATH_MAX];
};

/* Create spool_dir/tmp and spool_dir/queue.  0 or -1/errno. */
int	spool_init(const char *spool_dir);
/* Create tmp/<name> exclusively.  0 or -1/errno. */
int	spool_open(struct spool_file *, const char *spool_dir, const char *name);
/* Append; after the first failure it only records the error. */
void	spool_write(struct spool_file *, const void *, size_t);
/* Close and unlink (a message that will not be acknowledged). */
void	spool_discard(struct spool_file *);
/*
 * Blocking: fsync the message, write and fsync the envelope, rename both
 * into queue/ and fsync queue/.  Run it on a worker thread.  On failure
 * returns -1 with a reason in err; the file stays in tmp/.
 */
int	spool_commit(const char *spool_dir, struct spool_file *,
	    const char *envelope, size_t envlen, char *err, size_t errlen);

#endif
