/*
 * workq.h — thread pools for blocking work, with completions on the loop.
 *
 * run() executes on a worker thread and must touch nothing but the job's
 * own data: no Lua, no libev, no session.  done() executes afterwards on
 * the event-loop thread, in submission-independent order.  This is how a
 * slow disk stays off the event loop, and why concurrent fsyncs from many
 * sessions overlap (the filesystem batches them into one journal commit).
 *
 * There are separate pools so that one kind of slowness cannot starve the
 * others (a slow DNS server must not delay the fsync behind a 250):
 *   workq_disk      spool commits, Maildir writes, reading messages
 *   workq_resolve   blocking name resolution: getaddrinfo for deliveries,
 *                   SPF checks (libspf2 waits on each lookup)
 *   workq_cpu       CPU-heavy work: crypt(3), DKIM
 * Each is created by workq_init_pools(); a pool's jobs run in FIFO order
 * on its threads.
 */
#ifndef LUASMTPD_WORKQ_H
#define LUASMTPD_WORKQ_H

#include <ev.h>

struct work {
	void		(*run)(struct work *);
	void		(*done)(struct work *);
	struct work	*next;
};

struct workq;

extern struct workq	*workq_disk;
extern struct workq	*workq_resolve;
extern struct workq	*workq_cpu;

/* A pool of nthreads (at least 1) named for logs ("disk", "cpu"...). */
struct workq	*workq_new(struct ev_loop *, const char *name, unsigned nthreads);
/* Create the three pools above: disk with ndisk threads, the others sized
 * for this machine. */
void		 workq_init_pools(struct ev_loop *, unsigned ndisk);
void		 workq_submit(struct workq *, struct work *);
/* Jobs submitted and not yet completed (for shutdown and tests). */
unsigned	 workq_pending(const struct workq *);
/* Let running jobs finish, join the threads, free the pool. */
void		 workq_free(struct workq *);
/* workq_free() of the three pools (NULL-safe). */
void		 workq_shutdown_pools(void);

#endif
