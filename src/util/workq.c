/*
 * workq.c — thread pool with completions on the event loop (see workq.h).
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/workq.h"
#include "util/xmalloc.h"

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 cond = PTHREAD_COND_INITIALIZER;
static struct work	*todo_head, *todo_tail;
static struct work	*finished;
static pthread_t	*threads;
static unsigned		 nthreads;
static unsigned		 pending;
static bool		 stopping;
static struct ev_loop	*loop;
static ev_async		 wakeup;

static void *
worker_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct work *w;

		pthread_mutex_lock(&lock);
		while (todo_head == NULL && !stopping)
			pthread_cond_wait(&cond, &lock);
		if (todo_head == NULL) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		w = todo_head;
		todo_head = w->next;
		if (todo_head == NULL)
			todo_tail = NULL;
		pthread_mutex_unlock(&lock);

		w->run(w);

		pthread_mutex_lock(&lock);
		w->next = finished;
		finished = w;
		pthread_mutex_unlock(&lock);
		ev_async_send(loop, &wakeup);
	}
}

static void
wakeup_cb(struct ev_loop *l, ev_async *a, int revents)
{
	struct work *list;

	(void)l;
	(void)a;
	(void)revents;
	pthread_mutex_lock(&lock);
	list = finished;
	finished = NULL;
	pthread_mutex_unlock(&lock);
	while (list != NULL) {
		struct work *w = list;

		list = w->next;
		if (--pending == 0)
			ev_unref(loop);	/* see workq_submit() */
		w->done(w);
	}
}

void
workq_init(struct ev_loop *l, unsigned n)
{
	sigset_t all, old;

	loop = l;
	nthreads = n ? n : 1;
	ev_async_init(&wakeup, wakeup_cb);
	ev_async_start(loop, &wakeup);
	ev_unref(loop);		/* idle pool must not keep the loop running */
	threads = xcalloc(nthreads, sizeof(*threads));
	/* Workers take no signals: those belong to the loop thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < nthreads; i++)
		if (pthread_create(&threads[i], NULL, worker_main, NULL) != 0)
			fatalx("workq: cannot start worker thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
workq_submit(struct work *w)
{
	w->next = NULL;
	/* Outstanding jobs keep the loop alive (the async watcher does not). */
	if (pending++ == 0)
		ev_ref(loop);
	pthread_mutex_lock(&lock);
	if (todo_tail != NULL)
		todo_tail->next = w;
	else
		todo_head = w;
	todo_tail = w;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

unsigned
workq_pending(void)
{
	return pending;
}

void
workq_shutdown(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	threads = NULL;
}
