/*
 * dns_event.c — libunbound's pluggable event base (unbound-event.h) on our
 * libev loop, so that libunbound's sockets and timers are libev watchers
 * and its whole resolver runs on the loop thread.
 *
 * Why not libunbound's own event base (ub_fd/ub_process with its thread
 * or process): libunbound calls libevent through the libevent 1.x names
 * (event_base_new, event_set, event_add...), and Debian's libev exports
 * libevent-compatible functions with those very names.  In a program that
 * links libev, the dynamic linker binds libunbound's calls to libev's
 * versions, whose struct event is laid out differently: the heap is
 * corrupted at the first query.  With a pluggable base libunbound calls
 * only the functions below.
 *
 * Semantics are libevent's: a non-persistent event is deactivated when it
 * fires; a persistent one stays, and its timeout (if any) starts again.
 * libunbound may free an event from inside its own callback, so nothing
 * touches the event after the callback returns.  After every callback, the
 * base's after() hook runs (dns.c delivers the results that callback made
 * ready), outside libunbound.
 *
 * Our watchers do not keep the loop running (ev_unref): a query's own
 * timer does, while it is pending.
 */
#include <stdlib.h>
#include <sys/time.h>

#include <unbound-event.h>

#include "dns/dns_event.h"
#include "util/log.h"
#include "util/xmalloc.h"

struct dns_evbase {
	struct ub_event_base	 base;		/* first: libunbound's view */
	struct ev_loop		*loop;
	void			(*after)(void *);
	void			*after_arg;
};

struct dns_ev {
	struct ub_event		 hdr;		/* first: libunbound's view */
	struct dns_evbase	*eb;
	int			 fd;
	short			 bits;		/* UB_EV_* */
	void			(*cb)(int, short, void *);
	void			*arg;
	ev_io			 io;
	ev_timer		 timer;
	double			 timeout;	/* of the last add; 0: none */
};

static void
watch_start_io(struct dns_ev *e, int events)
{
	ev_io_set(&e->io, e->fd, events);
	ev_io_start(e->eb->loop, &e->io);
	ev_unref(e->eb->loop);
}

static void
watch_start_timer(struct dns_ev *e, double after)
{
	ev_timer_set(&e->timer, after, 0);
	ev_timer_start(e->eb->loop, &e->timer);
	ev_unref(e->eb->loop);
}

static void
watch_stop(struct dns_ev *e)
{
	if (ev_is_active(&e->io)) {
		ev_ref(e->eb->loop);
		ev_io_stop(e->eb->loop, &e->io);
	}
	if (ev_is_active(&e->timer)) {
		ev_ref(e->eb->loop);
		ev_timer_stop(e->eb->loop, &e->timer);
	}
}

/* Run libunbound's callback; e may be freed by it. */
static void
fire(struct dns_ev *e, short what)
{
	struct dns_evbase *eb = e->eb;
	void (*cb)(int, short, void *) = e->cb;
	void *arg = e->arg;
	int fd = e->fd;

	if (!(e->bits & UB_EV_PERSIST))
		watch_stop(e);
	else if (e->timeout > 0 && ev_is_active(&e->timer)) {
		/* libevent restarts a persistent event's timeout. */
		ev_ref(eb->loop);
		ev_timer_stop(eb->loop, &e->timer);
		watch_start_timer(e, e->timeout);
	}
	cb(fd, what, arg);
	if (eb->after != NULL)
		eb->after(eb->after_arg);
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dns_ev *e = w->data;
	short what = 0;

	(void)loop;
	if (revents & EV_READ)
		what |= UB_EV_READ;
	if (revents & EV_WRITE)
		what |= UB_EV_WRITE;
	fire(e, what);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns_ev *e = w->data;

	(void)loop;
	(void)revents;
	/* The timer has stopped itself (no repeat); it is inactive now. */
	ev_ref(e->eb->loop);
	if ((e->bits & UB_EV_PERSIST) && e->timeout > 0)
		watch_start_timer(e, e->timeout);
	else if (ev_is_active(&e->io)) {
		ev_ref(e->eb->loop);
		ev_io_stop(e->eb->loop, &e->io);
	}
	{
		struct dns_evbase *eb = e->eb;

		e->cb(e->fd, UB_EV_TIMEOUT, e->arg);
		if (eb->after != NULL)
			eb->after(eb->after_arg);
	}
}

static double
tv_seconds(const struct timeval *tv)
{
	double s;

	if (tv == NULL)
		return 0;
	s = (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
	/* A zero timeout means "at once": keep it distinct from "none". */
	return s > 0 ? s : 1e-6;
}

/* ---- struct ub_event methods ----------------------------------------- */

static void
ev_add_bits(struct ub_event *ev, short bits)
{
	((struct dns_ev *)ev)->bits |= bits;
}

static void
ev_del_bits(struct ub_event *ev, short bits)
{
	((struct dns_ev *)ev)->bits &= (short)~bits;
}

static void
ev_set_fd(struct ub_event *ev, int fd)
{
	((struct dns_ev *)ev)->fd = fd;
}

static void
ev_free(struct ub_event *ev)
{
	struct dns_ev *e = (struct dns_ev *)ev;

	if (e == NULL)
		return;
	watch_stop(e);
	free(e);
}

static int
ev_add(struct ub_event *ev, struct timeval *tv)
{
	struct dns_ev *e = (struct dns_ev *)ev;
	int events = 0;

	watch_stop(e);
	if (e->bits & UB_EV_READ)
		events |= EV_READ;
	if (e->bits & UB_EV_WRITE)
		events |= EV_WRITE;
	if (events != 0 && e->fd >= 0)
		watch_start_io(e, events);
	e->timeout = tv_seconds(tv);
	if (e->timeout > 0)
		watch_start_timer(e, e->timeout);
	return 0;
}

static int
ev_del(struct ub_event *ev)
{
	watch_stop((struct dns_ev *)ev);
	return 0;
}

static int
ev_add_timer(struct ub_event *ev, struct ub_event_base *base,
    void (*cb)(int, short, void *), void *arg, struct timeval *tv)
{
	struct dns_ev *e = (struct dns_ev *)ev;

	(void)base;
	watch_stop(e);
	e->cb = cb;
	e->arg = arg;
	e->bits = UB_EV_TIMEOUT;
	e->timeout = tv_seconds(tv);
	if (e->timeout > 0)
		watch_start_timer(e, e->timeout);
	return 0;
}

static int
ev_del_timer(struct ub_event *ev)
{
	watch_stop((struct dns_ev *)ev);
	return 0;
}

static int
ev_signal_unsupported(struct ub_event *ev, struct timeval *tv)
{
	(void)ev;
	(void)tv;
	return -1;
}

static int
ev_signal_del(struct ub_event *ev)
{
	(void)ev;
	return 0;
}

static void
ev_wsa_unregister(struct ub_event *ev)
{
	(void)ev;
}

static void
ev_wsa_wouldblock(struct ub_event *ev, int bit)
{
	(void)ev;
	(void)bit;
}

static struct ub_event_vmt ev_vmt = {
	ev_add_bits, ev_del_bits, ev_set_fd, ev_free, ev_add, ev_del,
	ev_add_timer, ev_del_timer, ev_signal_unsupported, ev_signal_del,
	ev_wsa_unregister, ev_wsa_wouldblock,
};

/* ---- struct ub_event_base methods ---------------------------------------- */

static void
base_free(struct ub_event_base *b)
{
	free(b);
}

static int
base_dispatch(struct ub_event_base *b)
{
	(void)b;
	return -1;		/* the loop is ours; libunbound never runs it */
}

static int
base_loopexit(struct ub_event_base *b, struct timeval *tv)
{
	(void)b;
	(void)tv;
	return 0;		/* likewise: never stop the server's loop */
}

static struct ub_event *
base_new_event(struct ub_event_base *b, int fd, short bits,
    void (*cb)(int, short, void *), void *arg)
{
	struct dns_ev *e = xcalloc(1, sizeof(*e));

	e->hdr.magic = UB_EVENT_MAGIC;
	e->hdr.vmt = &ev_vmt;
	e->eb = (struct dns_evbase *)b;
	e->fd = fd;
	e->bits = bits;
	e->cb = cb;
	e->arg = arg;
	ev_init(&e->io, io_cb);
	e->io.data = e;
	ev_init(&e->timer, timer_cb);
	e->timer.data = e;
	return &e->hdr;
}

static struct ub_event *
base_new_signal(struct ub_event_base *b, int fd,
    void (*cb)(int, short, void *), void *arg)
{
	(void)b;
	(void)fd;
	(void)cb;
	(void)arg;
	return NULL;		/* signals belong to the server */
}

static struct ub_event *
base_wsa_register(struct ub_event_base *b, void *wsaevent,
    void (*cb)(int, short, void *), void *arg)
{
	(void)b;
	(void)wsaevent;
	(void)cb;
	(void)arg;
	return NULL;
}

static struct ub_event_base_vmt base_vmt = {
	base_free, base_dispatch, base_loopexit, base_new_event,
	base_new_signal, base_wsa_register,
};

struct ub_event_base *
dns_event_base_new(struct ev_loop *loop, void (*after)(void *), void *arg)
{
	struct dns_evbase *eb = xcalloc(1, sizeof(*eb));

	eb->base.magic = UB_EVENT_MAGIC;
	eb->base.vmt = &base_vmt;
	eb->loop = loop;
	eb->after = after;
	eb->after_arg = arg;
	return &eb->base;
}

void
dns_event_base_free(struct ub_event_base *b)
{
	if (b != NULL)
		base_free(b);
}
