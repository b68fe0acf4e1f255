/*
 * server.c — process-wide state (see server.h).
 *
 * Sessions are never closed or freed inside their own callbacks (Redis'
 * freeClientAsync): a closed session goes onto server.closing, then, once
 * nothing holds it, onto server.dead, and an ev_prepare watcher finishes
 * both once the current iteration's callbacks are done and before the loop
 * waits again (Redis' beforeSleep), so a close never waits for an event.
 */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server.h"
#include "smtp/smtp_session.h"

struct server server;

static void
reaper_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	/* Closing may run the disconnect hook and free: closes first. */
	while (server.closing != NULL) {
		struct smtp_session *s = server.closing;

		server.closing = s->close_next;
		smtp_session_finish_close(s);
	}
	while (server.dead != NULL) {
		struct smtp_session *s = server.dead;

		server.dead = s->dead_next;
		smtp_session_free(s);
		if (server.on_session_freed != NULL)
			server.on_session_freed();
	}
}

void
server_init(struct ev_loop *loop, const struct config *cfg)
{
	uint64_t seed = 0;

	memset(&server, 0, sizeof(server));
	server.loop = loop;
	server.cfg = cfg;
	/*
	 * Session ids name spool files and appear in Received: headers, so
	 * they must not repeat across restarts: start from a random base.
	 */
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) * 2654435761u;
	server.next_session = seed & ~(uint64_t)0xffffff;
	ev_prepare_init(&server.reaper, reaper_cb);
	ev_prepare_start(loop, &server.reaper);
	/* The reaper must not keep the loop alive by itself. */
	ev_unref(loop);
}

uint64_t
server_new_session_id(void)
{
	return ++server.next_session;
}

void
server_defer_close(struct smtp_session *s)
{
	s->close_next = server.closing;
	server.closing = s;
}

void
server_defer_free(struct smtp_session *s)
{
	s->dead_next = server.dead;
	server.dead = s;
}
