/*
 * pipe.c — the process runner behind deliver.pipe (see pipe.h).
 *
 * Life of a run:
 *   pipe_run_start   open the input file, make the pipes, fork; the child
 *                    resets signals, joins its own process group, moves
 *                    its ends onto 0/1/2, closes everything else and
 *                    execs; execve's errno comes back over a close-on-exec
 *                    pipe.  The parent starts four watchers: stdin writer
 *                    (ev_io), output reader (ev_io), timeout (ev_timer)
 *                    and the reaper (ev_child).
 *   in_cb            refill a PIPE_CHUNK buffer from the file (CRLF -> LF
 *                    unless crlf), write as much as the pipe takes; at
 *                    the end of the file, or on EPIPE, close stdin.
 *   out_cb           read into the bounded buffer; past it, count and drop.
 *   timeout_cb       SIGTERM to the group, then SIGKILL after the grace.
 *   child_cb         the child was reaped: drain what it left in the
 *                    capture pipe, stop everything, call done(), free.
 *
 * Ownership: the run owns every fd and watcher it created and frees
 * itself, either after done() or, once cancelled, after the reap.  No
 * fd or watcher outlives the run; the child is always reaped (ev_child
 * stays started until it is).
 *
 * SECURITY: no shell; execve of the given argv and envp only.  Between
 * fork and execve only async-signal-safe calls (the server has worker
 * threads that may hold malloc's lock).  The server must ignore SIGPIPE
 * (main.c does) so that a child closing its stdin gives EPIPE.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deliver/pipe.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* Reads per output callback, and when draining after the reap. */
#define OUT_READS_PER_CB	8
#define OUT_DRAIN_READS		64
/* Writes per stdin callback (fairness towards other sessions). */
#define IN_WRITES_PER_CB	16
/* Captured output shown in the end-of-run log line. */
#define LOG_OUTPUT_MAX		300

struct pipe_run {
	struct ev_loop	*loop;
	pid_t		 pid;
	enum pipe_mode	 mode;
	pipe_done_fn	 done;		/* NULL once cancelled */
	void		*arg;
	uint64_t	 sid;
	char		*tag;		/* owned copies, for log lines */
	char		*cmd;
	ev_tstamp	 started;

	ev_child	 child_w;	/* started until the reap */
	ev_timer	 timer_w;	/* timeout, then the kill grace */
	ev_io		 in_w;		/* the child's stdin is writable */
	ev_io		 out_w;		/* captured output is readable */
	int		 in_fd;		/* write end of the child's stdin */
	int		 file_fd;	/* the input file */
	char		*prefix;	/* fed before the file (owned) */
	size_t		 prefix_len, prefix_off;
	int		 out_fd;	/* read end of the capture pipe */

	/* stdin: one chunk at a time; wbuf[0] is room for a held-back CR. */
	bool		 crlf;
	bool		 pending_cr;	/* chunk ended in CR: LF may follow */
	bool		 input_eof;
	bool		 input_done;
	int		 input_err;	/* reading the file failed: errno */
	int		 write_err;	/* EPIPE: the child stopped reading */
	char		*wbuf;		/* PIPE_CHUNK + 1 */
	size_t		 wpos, wlen;
	uint64_t	 written;

	/* Captured output: out_max bytes kept, the rest counted. */
	char		*out;		/* out_max + 1 */
	size_t		 out_len, out_max;
	uint64_t	 dropped;

	bool		 timed_out;	/* SIGTERM sent */
	bool		 reaped;
	bool		 cancelled;
	int		 wstatus;
};

static void	in_cb(struct ev_loop *, ev_io *, int);
static void	out_cb(struct ev_loop *, ev_io *, int);
static void	timeout_cb(struct ev_loop *, ev_timer *, int);
static void	child_cb(struct ev_loop *, ev_child *, int);

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/*
 * The child's ends must not be 0, 1 or 2 before the dup2 dance (a server
 * started with a closed stdin would get fd 0 from pipe(2)).
 */
static int
move_high(int *fd)
{
	int nfd;

	if (*fd > 2)
		return 0;
	if ((nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return -1;
	close(*fd);
	*fd = nfd;
	return 0;
}

/* The group first (grandchildren), then the pid (if it left the group). */
static void
kill_child(struct pipe_run *r, int sig)
{
	if (r->reaped)
		return;		/* the pid may belong to someone else now */
	(void)kill(-r->pid, sig);
	(void)kill(r->pid, sig);
}

static void
stop_input(struct pipe_run *r)
{
	ev_io_stop(r->loop, &r->in_w);
	close_fd(&r->in_fd);
	close_fd(&r->file_fd);
	free(r->prefix);
	r->prefix = NULL;
}

static void
stop_output(struct pipe_run *r)
{
	ev_io_stop(r->loop, &r->out_w);
	close_fd(&r->out_fd);
}

static void
run_free(struct pipe_run *r)
{
	stop_input(r);
	stop_output(r);
	ev_timer_stop(r->loop, &r->timer_w);
	ev_child_stop(r->loop, &r->child_w);
	free(r->wbuf);
	free(r->out);
	free(r->tag);
	free(r->cmd);
	free(r);
}

/* ---- the child side: async-signal-safe calls only ---- */

struct child_plan {
	int		 fd0, fd1, fd2;	/* become stdin, stdout, stderr */
	int		 errfd;		/* execve's errno goes here */
	int		 maxfd;		/* for the close loop fallback */
	sigset_t	 empty;
	struct sigaction dfl;
};

static void __attribute__((noreturn))
child_exec(const struct pipe_spec *spec, const struct child_plan *p)
{
	int e;

	(void)setpgid(0, 0);
	/* Handlers would be reset by execve anyway; ignored signals would
	 * not (SIGPIPE).  The mask is still all-blocked from the parent. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &p->dfl, NULL);
	if (dup2(p->fd0, 0) < 0 || dup2(p->fd1, 1) < 0 || dup2(p->fd2, 2) < 0)
		goto fail;
	/* Everything else goes, except errfd (close-on-exec by itself).
	 * XXX: without close_range (Linux < 5.9) the loop stops at maxfd. */
	if ((p->errfd > 3 && close_range(3, (unsigned)p->errfd - 1, 0) != 0) ||
	    close_range((unsigned)p->errfd + 1, ~0U, 0) != 0) {
		for (int fd = 3; fd <= p->maxfd; fd++)
			if (fd != p->errfd)
				(void)close(fd);
	}
	/* A child left in our working directory still runs: ignore failure. */
	(void)!chdir("/");
	(void)sigprocmask(SIG_SETMASK, &p->empty, NULL);
	execve(spec->argv[0], spec->argv, spec->envp);
fail:
	e = errno;
	(void)!write(p->errfd, &e, sizeof(e));
	_exit(127);
}

/* ---- the parent side ---- */

static void
fill_err(char *err, size_t errlen, const char *what, int e)
{
	snprintf(err, errlen, "%s: %s", what, strerror(e));
}

/*
 * fork + execve.  Returns the pid, or -1 with err set (the child, if
 * there was one, is reaped here).  The fds in p stay the caller's.
 */
static pid_t
spawn(const struct pipe_spec *spec, struct child_plan *p, int errfd_r,
    char *err, size_t errlen)
{
	sigset_t all, old;
	struct rlimit rl;
	ssize_t n;
	pid_t pid;
	int e = 0;

	sigemptyset(&p->empty);
	memset(&p->dfl, 0, sizeof(p->dfl));
	p->dfl.sa_handler = SIG_DFL;
	sigemptyset(&p->dfl.sa_mask);
	p->maxfd = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		p->maxfd = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
	/* No signal handler of ours may run in the child before execve. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child_exec(spec, p);
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(p->errfd);
	p->errfd = -1;
	if (pid < 0) {
		fill_err(err, errlen, "fork", e);
		return -1;
	}
	/* Both sides set the group so a kill right after this cannot miss. */
	(void)setpgid(pid, pid);
	do
		n = read(errfd_r, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(e)) {
		/* execve failed: the child is in _exit(127) already. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		snprintf(err, errlen, "cannot execute %s: %s", spec->argv[0],
		    strerror(e));
		return -1;
	}
	return pid;
}

/* A bad spec is a bug in the caller (the binding checks user input). */
static void
check_spec(struct ev_loop *loop, const struct pipe_spec *spec)
{
	size_t n = 0;

	assert(ev_is_default_loop(loop));	/* ev_child needs it */
	assert(spec->argv != NULL && spec->argv[0] != NULL &&
	    spec->argv[0][0] == '/' && spec->envp != NULL);
	while (spec->argv[n] != NULL)
		n++;
	assert(n <= PIPE_ARGV_MAX);
	assert(spec->timeout > 0 && spec->output_max <= PIPE_OUTPUT_LIMIT);
	assert(spec->mode != PIPE_MODE_STDIN || spec->input_path != NULL);
}

/* The parent's ends of a run being started. */
struct parent_fds {
	int	file;		/* the input file (PIPE_MODE_STDIN) */
	int	in;		/* write end of the child's stdin */
	int	out;		/* read end of the capture pipe */
	int	sock;		/* the caller's socket (PIPE_MODE_SOCKET) */
	int	errfd_r;	/* execve's errno, read once */
};

static int
make_pipe(int fds[2], char *err, size_t errlen)
{
	if (pipe2(fds, O_CLOEXEC) == 0)
		return 0;
	fill_err(err, errlen, "pipe", errno);
	return -1;
}

/*
 * Open the input file and make every pipe, all close-on-exec; the
 * parent's ends non-blocking, the child's ends above 2.  0, or -1 with
 * err (the caller closes whatever was opened).
 */
static int
open_fds(const struct pipe_spec *spec, struct parent_fds *pf,
    struct child_plan *plan, char *err, size_t errlen)
{
	int fds[2];

	if (spec->mode == PIPE_MODE_STDIN) {
		if ((pf->file = open(spec->input_path, O_RDONLY | O_CLOEXEC)) < 0) {
			fill_err(err, errlen, "open message", errno);
			return -1;
		}
		if (make_pipe(fds, err, errlen) != 0)
			return -1;
		plan->fd0 = fds[0];
		pf->in = fds[1];
		if (make_pipe(fds, err, errlen) != 0)
			return -1;
		pf->out = fds[0];
		plan->fd1 = fds[1];
		plan->fd2 = dup(plan->fd1);	/* one capture for both */
	} else {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
			fill_err(err, errlen, "socketpair", errno);
			return -1;
		}
		pf->sock = fds[0];
		plan->fd0 = fds[1];
		if (make_pipe(fds, err, errlen) != 0)
			return -1;
		pf->out = fds[0];
		plan->fd2 = fds[1];
		plan->fd1 = dup(plan->fd0);	/* stdin and stdout */
	}
	if (plan->fd1 < 0 || plan->fd2 < 0) {
		fill_err(err, errlen, "dup", errno);
		return -1;
	}
	if (make_pipe(fds, err, errlen) != 0)
		return -1;
	pf->errfd_r = fds[0];
	plan->errfd = fds[1];
	if (move_high(&plan->fd0) != 0 || move_high(&plan->fd1) != 0 ||
	    move_high(&plan->fd2) != 0 || move_high(&plan->errfd) != 0 ||
	    (pf->in >= 0 && set_nonblock(pf->in) != 0) ||
	    set_nonblock(pf->out) != 0 ||
	    (pf->sock >= 0 && set_nonblock(pf->sock) != 0)) {
		fill_err(err, errlen, "fcntl", errno);
		return -1;
	}
	return 0;
}

static void
close_child_fds(struct child_plan *plan)
{
	close_fd(&plan->fd0);
	close_fd(&plan->fd1);
	close_fd(&plan->fd2);
	close_fd(&plan->errfd);
}

/* The child runs: the run takes pf's fds and starts its watchers. */
static struct pipe_run *
run_new(struct ev_loop *loop, const struct pipe_spec *spec, pid_t pid,
    const struct parent_fds *pf, pipe_done_fn done, void *arg)
{
	struct pipe_run *r = xcalloc(1, sizeof(*r));

	r->loop = loop;
	r->pid = pid;
	r->mode = spec->mode;
	r->done = done;
	r->arg = arg;
	r->sid = spec->sid;
	r->tag = xstrdup(spec->tag != NULL ? spec->tag : "-");
	r->cmd = xstrdup(spec->argv[0]);
	r->started = ev_time();
	r->in_fd = pf->in;
	r->file_fd = pf->file;
	if (spec->input_prefix != NULL && spec->input_prefix_len > 0) {
		r->prefix = xmalloc(spec->input_prefix_len);
		memcpy(r->prefix, spec->input_prefix, spec->input_prefix_len);
		r->prefix_len = spec->input_prefix_len;
	}
	r->out_fd = pf->out;
	r->crlf = spec->crlf;
	r->out_max = spec->output_max ? spec->output_max : PIPE_OUTPUT_DEFAULT;
	r->out = xmalloc(r->out_max + 1);
	/* Registered before the loop runs again, so the exit is not lost. */
	ev_child_init(&r->child_w, child_cb, pid, 0);
	r->child_w.data = r;
	ev_child_start(loop, &r->child_w);
	ev_io_init(&r->out_w, out_cb, r->out_fd, EV_READ);
	r->out_w.data = r;
	ev_io_start(loop, &r->out_w);
	if (r->in_fd >= 0) {
		r->wbuf = xmalloc(PIPE_CHUNK + 1);
		ev_io_init(&r->in_w, in_cb, r->in_fd, EV_WRITE);
		r->in_w.data = r;
		ev_io_start(loop, &r->in_w);
	} else {
		r->input_done = true;
	}
	ev_timer_init(&r->timer_w, timeout_cb, spec->timeout, 0.);
	r->timer_w.data = r;
	ev_timer_start(loop, &r->timer_w);
	return r;
}

struct pipe_run *
pipe_run_start(struct ev_loop *loop, const struct pipe_spec *spec,
    pipe_done_fn done, void *arg, int *sock, char *err, size_t errlen)
{
	struct child_plan plan = { .fd0 = -1, .fd1 = -1, .fd2 = -1, .errfd = -1 };
	struct parent_fds pf = { -1, -1, -1, -1, -1 };
	char ex[LOG_EXCERPT_BUFSZ(200)];
	struct pipe_run *r;
	pid_t pid;

	check_spec(loop, spec);
	if (sock != NULL)
		*sock = -1;
	/* spawn() closes plan.errfd whatever happens. */
	if (open_fds(spec, &pf, &plan, err, errlen) != 0 ||
	    (pid = spawn(spec, &plan, pf.errfd_r, err, errlen)) < 0) {
		close_fd(&pf.file);
		close_fd(&pf.in);
		close_fd(&pf.out);
		close_fd(&pf.sock);
		close_fd(&pf.errfd_r);
		close_child_fds(&plan);
		return NULL;
	}
	close_fd(&pf.errfd_r);
	close_child_fds(&plan);
	r = run_new(loop, spec, pid, &pf, done, arg);
	if (sock != NULL)
		*sock = pf.sock;
	log_info(r->sid, "pipe start tx=%s cmd=\"%s\" pid=%d mode=%s "
	    "timeout=%.1f", r->tag, log_excerpt(ex, r->cmd, strlen(r->cmd), 200),
	    (int)pid, r->mode == PIPE_MODE_STDIN ? "stdin" : "socket",
	    spec->timeout);
	return r;
}

/* ---- stdin: the input file, chunk by chunk ---- */

/*
 * Read the next chunk into wbuf[1..] and convert it in place to wbuf[0..]
 * (never ahead of the read position: output <= 1 + input so far).  A CR
 * at the end of a chunk is held back until we see whether LF follows.
 */
static int
refill(struct pipe_run *r)
{
	char *in = r->wbuf + 1, *o = r->wbuf;
	ssize_t n;

	if (r->prefix_off < r->prefix_len) {
		/* Added header fields go first, converted like the file. */
		n = (ssize_t)(r->prefix_len - r->prefix_off);
		if (n > PIPE_CHUNK)
			n = PIPE_CHUNK;
		memcpy(in, r->prefix + r->prefix_off, (size_t)n);
		r->prefix_off += (size_t)n;
	} else {
		do
			n = read(r->file_fd, in, PIPE_CHUNK);
		while (n < 0 && errno == EINTR);
	}
	if (n < 0)
		return -1;
	r->wpos = 0;
	if (n == 0) {
		r->input_eof = true;
		r->wlen = 0;
		if (r->pending_cr)
			r->wbuf[r->wlen++] = '\r';
		r->pending_cr = false;
		return 0;
	}
	if (r->crlf) {
		memmove(r->wbuf, in, (size_t)n);
		r->wlen = (size_t)n;
		return 0;
	}
	if (r->pending_cr && in[0] != '\n')
		*o++ = '\r';
	r->pending_cr = false;
	for (ssize_t i = 0; i < n; i++) {
		if (in[i] == '\r') {
			if (i + 1 == n) {
				r->pending_cr = true;
				break;
			}
			if (in[i + 1] == '\n')
				continue;
		}
		*o++ = in[i];
	}
	r->wlen = (size_t)(o - r->wbuf);
	return 0;
}

static void
in_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pipe_run *r = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	for (int i = 0; i < IN_WRITES_PER_CB; i++) {
		if (r->wpos == r->wlen) {
			if (r->input_eof) {
				r->input_done = true;
				stop_input(r);		/* the child sees EOF */
				return;
			}
			if (refill(r) != 0) {
				/* A truncated message must not look delivered. */
				r->input_err = errno;
				log_error(r->sid, "pipe input-error tx=%s pid=%d "
				    "error=\"%s\"", r->tag, (int)r->pid,
				    strerror(r->input_err));
				stop_input(r);
				kill_child(r, SIGKILL);
				return;
			}
			continue;
		}
		n = write(r->in_fd, r->wbuf + r->wpos, r->wlen - r->wpos);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* EPIPE: the child closed stdin.  Its exit decides. */
			r->write_err = errno;
			stop_input(r);
			return;
		}
		r->wpos += (size_t)n;
		r->written += (uint64_t)n;
	}
}

/* ---- captured output ---- */

/* Read up to max times into the bounded buffer; EOF closes the pipe. */
static void
read_output(struct pipe_run *r, int max)
{
	char buf[PIPE_CHUNK];
	ssize_t n;

	for (int i = 0; i < max && r->out_fd >= 0; i++) {
		n = read(r->out_fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				stop_output(r);
			return;
		}
		if (n == 0) {
			stop_output(r);
			return;
		}
		{
			size_t keep = r->out_max - r->out_len;

			if (keep > (size_t)n)
				keep = (size_t)n;
			memcpy(r->out + r->out_len, buf, keep);
			r->out_len += keep;
			r->dropped += (uint64_t)n - keep;
		}
	}
}

static void
out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	read_output(w->data, OUT_READS_PER_CB);
}

/* ---- timeout and reaping ---- */

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pipe_run *r = w->data;

	(void)revents;
	if (!r->timed_out) {
		r->timed_out = true;
		log_warn(r->sid, "pipe timeout tx=%s pid=%d after=%.1f "
		    "signal=SIGTERM", r->tag, (int)r->pid,
		    ev_time() - r->started);
		stop_input(r);
		kill_child(r, SIGTERM);
		ev_timer_set(w, PIPE_KILL_GRACE, 0.);
		ev_timer_start(loop, w);
		return;
	}
	log_warn(r->sid, "pipe timeout tx=%s pid=%d signal=SIGKILL", r->tag,
	    (int)r->pid);
	kill_child(r, SIGKILL);
}

const char *
pipe_sysexit_name(int code)
{
	static const char *const names[] = {
		"EX_USAGE", "EX_DATAERR", "EX_NOINPUT", "EX_NOUSER",
		"EX_NOHOST", "EX_UNAVAILABLE", "EX_SOFTWARE", "EX_OSERR",
		"EX_OSFILE", "EX_CANTCREAT", "EX_IOERR", "EX_TEMPFAIL",
		"EX_PROTOCOL", "EX_NOPERM", "EX_CONFIG",
	};

	if (code < 64 || code > 78)
		return NULL;
	return names[code - 64];
}

const char *
pipe_result_describe(const struct pipe_result *res, char *buf, size_t len)
{
	const char *name;

	switch (res->how) {
	case PIPE_END_EXIT:
		if ((name = pipe_sysexit_name(res->status)) != NULL)
			snprintf(buf, len, "exit %d (%s)", res->status, name);
		else
			snprintf(buf, len, "exit %d", res->status);
		break;
	case PIPE_END_SIGNAL:
		name = sigabbrev_np(res->status);
		snprintf(buf, len, "signal %d (SIG%s)", res->status,
		    name != NULL ? name : "?");
		break;
	case PIPE_END_TIMEOUT:
		snprintf(buf, len, "timed out");
		break;
	case PIPE_END_INPUT:
		snprintf(buf, len, "cannot read the message: %s",
		    strerror(res->status));
		break;
	}
	return buf;
}

/* The child is gone: report, then free.  done() may start a new run. */
static void
finish(struct pipe_run *r)
{
	struct pipe_result res;
	char ex[LOG_EXCERPT_BUFSZ(LOG_OUTPUT_MAX)], how[64], killed[64];
	int st = r->wstatus;

	stop_input(r);
	stop_output(r);
	ev_timer_stop(r->loop, &r->timer_w);
	r->out[r->out_len] = '\0';
	memset(&res, 0, sizeof(res));
	res.wstatus = st;
	if (r->input_err != 0) {
		res.how = PIPE_END_INPUT;
		res.status = r->input_err;
	} else if (r->timed_out) {
		res.how = PIPE_END_TIMEOUT;
		res.status = WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		res.how = PIPE_END_SIGNAL;
		res.status = WTERMSIG(st);
	} else {
		res.how = PIPE_END_EXIT;
		res.status = WEXITSTATUS(st);
	}
	res.duration = ev_time() - r->started;
	res.written = r->written;
	res.input_done = r->input_done;
	res.output = r->out;
	res.output_len = r->out_len;
	res.dropped = r->dropped;
	res.pid = r->pid;
	pipe_result_describe(&res, how, sizeof(how));
	if (res.how == PIPE_END_TIMEOUT)
		snprintf(killed, sizeof(killed), " (%s %d)", WIFSIGNALED(st) ?
		    "signal" : "exit", res.status);
	else
		killed[0] = '\0';
	log_info(r->sid, "pipe end tx=%s pid=%d status=\"%s%s\" duration=%.3f "
	    "written=%llu stdin=%s output=%zu dropped=%llu text=\"%s\"",
	    r->tag, (int)r->pid, how, killed, res.duration,
	    (unsigned long long)r->written, r->mode == PIPE_MODE_SOCKET ?
	    "socket" : r->input_done ? "complete" : r->write_err == EPIPE ?
	    "closed-early" : "incomplete", r->out_len,
	    (unsigned long long)r->dropped,
	    log_excerpt(ex, r->out, r->out_len, LOG_OUTPUT_MAX));
	if (r->done != NULL)
		r->done(&res, r->arg);
	run_free(r);
}

static void
child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct pipe_run *r = w->data;

	(void)revents;
	ev_child_stop(loop, w);
	r->reaped = true;
	r->wstatus = w->rstatus;
	if (r->cancelled) {
		log_info(r->sid, "pipe reaped tx=%s pid=%d status=%d (cancelled)",
		    r->tag, (int)r->pid, r->wstatus);
		run_free(r);
		return;
	}
	/* What the child wrote before exiting is in the pipe already. */
	read_output(r, OUT_DRAIN_READS);
	finish(r);
}

void
pipe_run_cancel(struct pipe_run *r)
{
	if (r == NULL || r->cancelled)
		return;
	r->cancelled = true;
	r->done = NULL;
	r->arg = NULL;
	stop_input(r);
	stop_output(r);
	ev_timer_stop(r->loop, &r->timer_w);
	log_info(r->sid, "pipe cancel tx=%s pid=%d signal=SIGKILL", r->tag,
	    (int)r->pid);
	kill_child(r, SIGKILL);
	/* child_w stays started: child_cb reaps, then frees the run. */
}

pid_t
pipe_run_pid(const struct pipe_run *r)
{
	return r->pid;
}
