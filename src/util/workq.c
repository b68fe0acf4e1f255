/*
 * workq.c — thread pools with completions on the event loop (see workq.h).
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/log.h"
#include "util/workq.h"
#include "util/xmalloc.h"

struct workq {
	const char	*name;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct work	*todo_head, *todo_tail;
	struct work	*finished;
	pthread_t	*threads;
	unsigned	 nthreads;
	unsigned	 pending;	/* loop thread only */
	bool		 stopping;
	struct ev_loop	*loop;
	ev_async	 wakeup;
};

struct workq	*workq_disk;
struct workq	*workq_resolve;
struct workq	*workq_cpu;

static void *
worker_main(void *arg)
{
	struct workq *q = arg;

	for (;;) {
		struct work *w;

		pthread_mutex_lock(&q->lock);
		while (q->todo_head == NULL && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->todo_head == NULL) {
			pthread_mutex_unlock(&q->lock);
			return NULL;
		}
		w = q->todo_head;
		q->todo_head = w->next;
		if (q->todo_head == NULL)
			q->todo_tail = NULL;
		pthread_mutex_unlock(&q->lock);

		w->run(w);

		pthread_mutex_lock(&q->lock);
		w->next = q->finished;
		q->finished = w;
		pthread_mutex_unlock(&q->lock);
		ev_async_send(q->loop, &q->wakeup);
	}
}

static void
wakeup_cb(struct ev_loop *l, ev_async *a, int revents)
{
	struct workq *q = a->data;
	struct work *list;

	(void)l;
	(void)revents;
	pthread_mutex_lock(&q->lock);
	list = q->finished;
	q->finished = NULL;
	pthread_mutex_unlock(&q->lock);
	while (list != NULL) {
		struct work *w = list;

		list = w->next;
		if (--q->pending == 0)
			ev_unref(q->loop);	/* see workq_submit() */
		w->done(w);
	}
}

struct workq *
workq_new(struct ev_loop *loop, const char *name, unsigned n)
{
	struct workq *q = xcalloc(1, sizeof(*q));
	sigset_t all, old;

	q->name = name;
	q->loop = loop;
	q->nthreads = n ? n : 1;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	ev_async_init(&q->wakeup, wakeup_cb);
	q->wakeup.data = q;
	ev_async_start(loop, &q->wakeup);
	ev_unref(loop);		/* an idle pool must not keep the loop running */
	q->threads = xcalloc(q->nthreads, sizeof(*q->threads));
	/* Workers take no signals: those belong to the loop thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < q->nthreads; i++)
		if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0)
			fatalx("workq %s: cannot start worker thread", name);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return q;
}

void
workq_init_pools(struct ev_loop *loop, unsigned ndisk)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (ncpu < 1)
		ncpu = 1;
	workq_disk = workq_new(loop, "disk", ndisk);
	/*
	 * Lookups and SPF checks mostly wait on the network: many threads
	 * are cheap, and a few slow domains must not hold up the rest.
	 */
	workq_resolve = workq_new(loop, "resolve", 16);
	workq_cpu = workq_new(loop, "cpu", (unsigned)ncpu);
}

void
workq_submit(struct workq *q, struct work *w)
{
	w->next = NULL;
	/* Outstanding jobs keep the loop alive (the async watcher does not). */
	if (q->pending++ == 0)
		ev_ref(q->loop);
	pthread_mutex_lock(&q->lock);
	if (q->todo_tail != NULL)
		q->todo_tail->next = w;
	else
		q->todo_head = w;
	q->todo_tail = w;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

unsigned
workq_pending(const struct workq *q)
{
	return q->pending;
}

void
workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	free(q->threads);
	/* Completions not delivered yet are dropped with the pool. */
	ev_ref(q->loop);
	ev_async_stop(q->loop, &q->wakeup);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q);
}

void
workq_shutdown_pools(void)
{
	workq_free(workq_disk);
	workq_free(workq_resolve);
	workq_free(workq_cpu);
	workq_disk = workq_resolve = workq_cpu = NULL;
}
