/*
 * workq.h — a small thread pool for blocking work (fsync, Maildir writes).
 *
 * run() executes on a worker thread and must touch nothing but the job's
 * own data: no Lua, no libev, no session.  done() executes afterwards on
 * the event-loop thread, in submission-independent order.  This is how a
 * slow disk stays off the event loop, and why concurrent fsyncs from many
 * sessions overlap (the filesystem batches them into one journal commit).
 */
#ifndef LUASMTPD_WORKQ_H
#define LUASMTPD_WORKQ_H

#include <ev.h>

struct work {
	void		(*run)(struct work *);
	void		(*done)(struct work *);
	struct work	*next;
};

void	workq_init(struct ev_loop *, unsigned nthreads);
void	workq_submit(struct work *);
/* Jobs submitted and not yet completed (for shutdown and tests). */
unsigned workq_pending(void);
void	workq_shutdown(void);

#endif
