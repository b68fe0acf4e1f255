/*
 * conn.c — non-blocking stream connection (see conn.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "net/conn.h"
#include "net/linger.h"
#include "util/limits.h"

static ssize_t
plain_read(struct conn *c, void *p, size_t n, enum conn_want *want)
{
	ssize_t r;

	do {
		r = read(c->fd, p, n);
	} while (r < 0 && errno == EINTR);
	if (r > 0)
		return r;
	if (r == 0)
		return CONN_EOF;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		*want = CONN_WANT_READ;
		return CONN_AGAIN;
	}
	snprintf(c->error, sizeof(c->error), "%s", strerror(errno));
	return CONN_ERR;
}

static ssize_t
plain_write(struct conn *c, const void *p, size_t n, enum conn_want *want)
{
	ssize_t r;

	do {
		r = write(c->wfd, p, n);
	} while (r < 0 && errno == EINTR);
	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		*want = CONN_WANT_WRITE;
		return CONN_AGAIN;
	}
	snprintf(c->error, sizeof(c->error), "%s", strerror(errno));
	return CONN_ERR;
}

static void
plain_shutdown(struct conn *c)
{
	(void)c;
}

static size_t
plain_pending(struct conn *c)
{
	(void)c;
	return 0;
}

const struct conn_ops conn_plain_ops = {
	.name = "plain",
	.read = plain_read,
	.write = plain_write,
	.shutdown = plain_shutdown,
	.pending = plain_pending,
	.handshake = NULL,
};

/*
 * conn_peek_closed() without MSG_PEEK: bytes in a pipe (FIONREAD) are
 * input waiting; a pipe whose writer has gone and is empty, or a file
 * read to its end, is a closed client.
 */
static int
pipe_peek_closed(struct conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	struct stat st;
	int avail = 0;

	if (ioctl(c->fd, FIONREAD, &avail) == 0) {
		if (avail > 0)
			return 0;
		if (fstat(c->fd, &st) == 0 && S_ISREG(st.st_mode))
			return 1;
	}
	if (poll(&pfd, 1, 0) == 1) {
		if (pfd.revents & POLLIN)
			return 0;
		if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
			return 1;
	}
	return -1;
}

const struct conn_ops conn_pipe_ops = {
	.name = "pipe",
	.read = plain_read,
	.write = plain_write,
	.shutdown = plain_shutdown,
	.pending = plain_pending,
	.handshake = NULL,
	.peek_closed = pipe_peek_closed,
};

/* Start or stop the read watcher to match what owner and transport need. */
static void
update_watchers(struct conn *c)
{
	bool need_r, need_w;

	if (c->closed)
		return;
	if (c->handshaking) {
		need_r = c->hs_want == CONN_WANT_READ;
		need_w = c->hs_want == CONN_WANT_WRITE;
	} else {
		need_r = (c->want_read && !c->read_needs_write) ||
		    c->write_needs_read;
		need_w = buf_used(&c->out) > 0 || c->read_needs_write;
	}
	if (need_r && !ev_is_active(&c->rio))
		ev_io_start(c->loop, &c->rio);
	else if (!need_r && ev_is_active(&c->rio))
		ev_io_stop(c->loop, &c->rio);
	if (need_w && !ev_is_active(&c->wio))
		ev_io_start(c->loop, &c->wio);
	else if (!need_w && ev_is_active(&c->wio))
		ev_io_stop(c->loop, &c->wio);
}

static void
handshake_step(struct conn *c)
{
	enum conn_want want = CONN_WANT_NONE;
	int r = c->ops->handshake(c, &want);

	if (r == CONN_AGAIN) {
		c->hs_want = want;
		update_watchers(c);
		return;
	}
	c->handshaking = false;
	c->hs_want = CONN_WANT_NONE;
	if (r != CONN_OK)
		c->failed = true;
	update_watchers(c);
	c->hs_done(c->owner, r == CONN_OK);
}

void
conn_handshake(struct conn *c, void (*done)(void *owner, bool ok))
{
	c->handshaking = true;
	c->hs_done = done;
	c->hs_want = CONN_WANT_NONE;
	handshake_step(c);
}

static void
rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->handshaking) {
		handshake_step(c);
		return;
	}
	if (c->write_needs_read) {
		/* A transport write was waiting for input (TLS). */
		c->write_needs_read = false;
		if (conn_flush(c) == CONN_OK && c->on_drain != NULL)
			c->on_drain(c->owner);
		if (c->closed)
			return;
	}
	if (c->want_read && !c->read_needs_write)
		c->on_read(c->owner);
}

static void
wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	int r;

	(void)loop;
	(void)revents;
	if (c->handshaking) {
		handshake_step(c);
		return;
	}
	if (c->read_needs_write) {
		c->read_needs_write = false;
		update_watchers(c);
		if (c->want_read)
			c->on_read(c->owner);
		if (c->closed)
			return;
	}
	if (buf_used(&c->out) == 0) {
		update_watchers(c);
		return;
	}
	r = conn_flush(c);
	if (c->closed)
		return;
	if (r == CONN_OK) {
		if (c->on_drain != NULL)
			c->on_drain(c->owner);
	} else if (r == CONN_ERR) {
		/* The owner's drain handler sees c->failed and closes. */
		if (c->on_drain != NULL)
			c->on_drain(c->owner);
	}
}

void
conn_init(struct conn *c, struct ev_loop *loop, int fd, void *owner,
    conn_cb on_read, conn_cb on_drain)
{
	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->fd = fd;
	c->wfd = fd;
	c->ops = &conn_plain_ops;
	c->owner = owner;
	c->on_read = on_read;
	c->on_drain = on_drain;
	buf_init(&c->out, OUTPUT_MAX);
	ev_io_init(&c->rio, rio_cb, fd, EV_READ);
	ev_io_init(&c->wio, wio_cb, fd, EV_WRITE);
	c->rio.data = c;
	c->wio.data = c;
}

void
conn_use_pipes(struct conn *c, int wfd)
{
	c->wfd = wfd;
	c->ops = &conn_pipe_ops;
	ev_io_set(&c->wio, wfd, EV_WRITE);
}

void
conn_want_read(struct conn *c, bool on)
{
	c->want_read = on;
	update_watchers(c);
	if (on && !c->closed && !c->handshaking && c->ops->pending(c) > 0)
		conn_kick_read(c);
}

void
conn_kick_read(struct conn *c)
{
	if (!c->closed)
		ev_feed_event(c->loop, &c->rio, EV_READ);
}

ssize_t
conn_read(struct conn *c, void *p, size_t n)
{
	enum conn_want want = CONN_WANT_NONE;
	ssize_t r;

	if (c->closed)
		return CONN_ERR;
	r = c->ops->read(c, p, n, &want);
	if (r == CONN_ERR)
		c->failed = true;
	if (r == CONN_AGAIN && want == CONN_WANT_WRITE) {
		c->read_needs_write = true;
		update_watchers(c);
	}
	return r;
}

int
conn_send(struct conn *c, const void *p, size_t n)
{
	if (c->closed)
		return -1;
	return buf_append(&c->out, p, n);
}

int
conn_flush(struct conn *c)
{
	enum conn_want want;
	ssize_t r;

	if (c->closed)
		return CONN_ERR;
	while (buf_used(&c->out) > 0) {
		want = CONN_WANT_NONE;
		r = c->ops->write(c, buf_head(&c->out), buf_used(&c->out), &want);
		if (r > 0) {
			buf_consume(&c->out, (size_t)r);
			continue;
		}
		if (r == CONN_AGAIN) {
			if (want == CONN_WANT_READ)
				c->write_needs_read = true;
			update_watchers(c);
			return CONN_AGAIN;
		}
		c->failed = true;
		return CONN_ERR;
	}
	update_watchers(c);
	return CONN_OK;
}

size_t
conn_out_pending(const struct conn *c)
{
	return buf_used(&c->out);
}

void
conn_set_transport(struct conn *c, const struct conn_ops *ops, void *t)
{
	c->ops = ops;
	c->transport = t;
}

int
conn_peek_closed(struct conn *c)
{
	char b;
	ssize_t r;

	if (c->closed)
		return 1;
	if (c->ops->pending(c) > 0)
		return 0;
	if (c->ops->peek_closed != NULL)
		return c->ops->peek_closed(c);
	r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r > 0)
		return 0;
	if (r == 0)
		return 1;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	return 1;	/* ECONNRESET and friends: gone as well */
}

void
conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	if (c->ops->shutdown != NULL)
		c->ops->shutdown(c);
	c->transport = NULL;
	if (c->fd >= 0) {
		if (c->linger && !c->failed)
			linger_close(c->loop, c->fd);
		else
			close(c->fd);
	}
	if (c->wfd >= 0 && c->wfd != c->fd)
		close(c->wfd);
	c->fd = -1;
	c->wfd = -1;
	buf_reset(&c->out);
}
