/*
 * pipe.h — run a command as a child process for delivery (no Lua here).
 *
 * A run is one child: fork + execve of an argv and an environment exactly
 * as given (no shell, no PATH search, nothing inherited), in a process
 * group of its own, with every descriptor but 0, 1 and 2 closed.  Two
 * modes:
 *
 *   PIPE_MODE_STDIN   the child's stdin is a pipe that the runner fills
 *                     from a file (the spool file), chunk by chunk as it
 *                     drains, CRLF -> LF unless crlf is set; stdout and
 *                     stderr go to ONE capture pipe.  This is deliver.pipe,
 *                     as Postfix pipe(8) runs its commands.
 *   PIPE_MODE_SOCKET  the child's stdin and stdout are one end of an
 *                     AF_UNIX socketpair; the caller gets the other end
 *                     (non-blocking, close-on-exec) and speaks to the
 *                     child over it (LMTP over stdio, e.g. `dovecot lmtp`
 *                     run as a child).  stderr is captured.
 *
 * Captured output is bounded (output_max bytes kept; the rest is read and
 * dropped, so the child never blocks on a full pipe).  A run ends when
 * the child has been reaped (libev ev_child, so the loop must be the
 * default loop); output the child left in the pipe is drained then,
 * output that grandchildren write later is not waited for.  After
 * `timeout` seconds the process group gets SIGTERM, PIPE_KILL_GRACE
 * seconds later SIGKILL; the run still ends only at the reap.
 *
 * Ownership: a run owns itself — its pid, pipes, input file, buffers and
 * watchers.  The caller holds a borrowed pointer that is valid until
 * done() returns (the run frees itself right after) or until it calls
 * pipe_run_cancel() (after which the run kills the group, reaps the child
 * in the background, frees itself and never calls done()).  In
 * PIPE_MODE_SOCKET the caller owns the returned socket fd and closes it.
 *
 * SECURITY: the child gets only what the spec lists.  The parent uses no
 * shell; between fork and execve the child calls only async-signal-safe
 * functions (the server has threads).  Signal dispositions and the mask
 * are reset in the child (the server ignores SIGPIPE, which execve would
 * otherwise pass on).  Every buffer is bounded by the constants below.
 */
#ifndef LUASMTPD_PIPE_H
#define LUASMTPD_PIPE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bounds of a spec (checked by the Lua binding; asserted here). */
#define PIPE_ARGV_MAX		256		/* arguments, argv[0] included */
#define PIPE_ARG_MAX		4096		/* bytes in one argument */
#define PIPE_ENV_MAX		64		/* caller-supplied entries */
#define PIPE_ENV_NAME_MAX	128
#define PIPE_ENV_ENTRY_MAX	8192		/* "NAME=value" */
#define PIPE_OUTPUT_DEFAULT	4096		/* captured output kept */
#define PIPE_OUTPUT_LIMIT	(1024 * 1024)	/* largest output_max */
#define PIPE_TIMEOUT_DEFAULT	30.0
#define PIPE_TIMEOUT_LIMIT	3600.0
/* SIGTERM to SIGKILL after a timeout, seconds. */
#define PIPE_KILL_GRACE		2.0
/* Bytes read from the input file per refill; one read(2) of output. */
#define PIPE_CHUNK		(16 * 1024)

enum pipe_mode {
	PIPE_MODE_STDIN,
	PIPE_MODE_SOCKET,
};

struct pipe_spec {
	char *const	*argv;		/* NULL-terminated; argv[0] absolute */
	char *const	*envp;		/* NULL-terminated: the whole env */
	enum pipe_mode	 mode;
	const char	*input_path;	/* PIPE_MODE_STDIN: fed to stdin */
	/* Header fields to feed before the file (CRLF; copied), or NULL. */
	const char	*input_prefix;
	size_t		 input_prefix_len;
	bool		 crlf;		/* keep CRLF; default CRLF -> LF */
	size_t		 output_max;	/* 0: PIPE_OUTPUT_DEFAULT */
	double		 timeout;	/* seconds, > 0 */
	uint64_t	 sid;		/* session id for log lines */
	const char	*tag;		/* e.g. the tx id, for log lines */
};

/* How the child ended, in order of precedence. */
enum pipe_end {
	PIPE_END_EXIT,		/* status = exit code */
	PIPE_END_SIGNAL,	/* status = signal number */
	PIPE_END_TIMEOUT,	/* timed out (status: what the kill did) */
	PIPE_END_INPUT,		/* reading the input file failed (errno) */
};

/* What done() sees.  Pointers are valid only during done(). */
struct pipe_result {
	enum pipe_end	 how;
	int		 status;	/* exit code, signal or errno */
	int		 wstatus;	/* raw waitpid status */
	double		 duration;	/* seconds, spawn to reap */
	uint64_t	 written;	/* bytes written to the child's stdin */
	bool		 input_done;	/* all of the input was written */
	const char	*output;	/* captured stdout+stderr, NUL-ended */
	size_t		 output_len;
	uint64_t	 dropped;	/* output bytes read past output_max */
	pid_t		 pid;
};

struct pipe_run;
/* The child was reaped.  Called once, from a libev callback. */
typedef void	(*pipe_done_fn)(const struct pipe_result *, void *arg);

/*
 * Start argv as a child.  loop must be libev's default loop.  In
 * PIPE_MODE_SOCKET *sock receives the caller's end of the socketpair
 * (owned by the caller); otherwise sock may be NULL.
 *
 * Returns the run, or NULL with a reason in err when no child could be
 * started: pipe(2), fork(2), the input file, or execve(2) failed (the
 * child reports execve's errno through a close-on-exec pipe before the
 * call returns, so "no such file" is an error here, not an exit code).
 * Blocks only for that fork/exec round trip.
 */
struct pipe_run	*pipe_run_start(struct ev_loop *, const struct pipe_spec *,
		    pipe_done_fn done, void *arg, int *sock, char *err,
		    size_t errlen);

/*
 * Abandon a run: SIGKILL to the child's process group, stop every
 * watcher, close every fd the run owns; the child is reaped in the
 * background and the run frees itself then.  done() is never called.
 * Safe from any callback; run must not be used afterwards.
 */
void		 pipe_run_cancel(struct pipe_run *);

pid_t		 pipe_run_pid(const struct pipe_run *);

/* "exit 75 (EX_TEMPFAIL)", "signal 9 (SIGKILL)", ... into buf. */
const char	*pipe_result_describe(const struct pipe_result *, char *buf,
		    size_t len);
/* sysexits name of an exit code ("EX_NOUSER"), or NULL. */
const char	*pipe_sysexit_name(int code);

#endif
