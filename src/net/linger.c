/*
 * linger.c — lingering close (see linger.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/linger.h"
#include "util/xmalloc.h"

struct lingerer {
	ev_io		io;
	ev_timer	timer;
	size_t		drained;
};

static unsigned lingering;

static void
finish(struct ev_loop *loop, struct lingerer *l)
{
	ev_io_stop(loop, &l->io);
	ev_timer_stop(loop, &l->timer);
	close(l->io.fd);
	free(l);
	lingering--;
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lingerer *l = w->data;
	static char scratch[16 * 1024];
	ssize_t n;

	(void)revents;
	n = read(w->fd, scratch, sizeof(scratch));
	if (n > 0) {
		l->drained += (size_t)n;
		if (l->drained < LINGER_BYTES)
			return;
	} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return;
	}
	finish(loop, l);	/* EOF, an error, or enough */
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	finish(loop, w->data);
}

void
linger_close(struct ev_loop *loop, int fd)
{
	struct lingerer *l;

	if (fd < 0)
		return;
	if (lingering >= LINGER_MAX || shutdown(fd, SHUT_WR) != 0) {
		close(fd);
		return;
	}
	l = xcalloc(1, sizeof(*l));
	ev_io_init(&l->io, read_cb, fd, EV_READ);
	l->io.data = l;
	ev_timer_init(&l->timer, timer_cb, LINGER_SECONDS, 0.);
	l->timer.data = l;
	ev_io_start(loop, &l->io);
	ev_timer_start(loop, &l->timer);
	lingering++;
}

unsigned
linger_count(void)
{
	return lingering;
}
