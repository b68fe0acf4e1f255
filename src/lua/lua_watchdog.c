/*
 * lua_watchdog.c — stop a Lua hook that runs too long without yielding.
 *
 * While a hook runs, the event loop waits for it: a `while true do end`
 * would freeze every session.  A watchdog thread samples a counter that
 * the loop thread bumps at every lua_resume; if the same resume is still
 * running after hook_cpu_limit, it signals the loop thread, whose handler
 * installs a count hook (lua_sethook is signal-safe; LuaJIT's own REPL
 * stops scripts on SIGINT this way).  The hook raises an error in the
 * running coroutine, which becomes a 451 4.3.0 and a logged traceback.
 *
 * LuaJIT does not run debug hooks inside compiled traces, so a compiled
 * `while true do end` would never see that hook.  That is why user code
 * (the config file, what it requires from outside lua/, and whatever it
 * load()s) is compiled with the JIT off for its functions (lua_vm.c):
 * the LuaJIT interpreter then runs it and the hook fires.  Our own lua/
 * modules keep the JIT.  The hook keeps firing at every instruction until
 * the resume returns, so a pcall() in the script cannot swallow it.
 *
 * The loop thread pays no system call per resume: it only writes two
 * atomics.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "lua/lua_vm.h"
#include "util/log.h"

#define WATCHDOG_SIGNAL	SIGVTALRM

static lua_State		*wd_L;
static pthread_t		 wd_loop_thread;
static pthread_t		 wd_thread;
static atomic_uint_fast64_t	 wd_seq;	/* bumped per resume */
static atomic_int		 wd_active;
static atomic_uint_fast64_t	 wd_limit_ns;
static atomic_uint_fast64_t	 wd_fire_seq;	/* the resume to stop */
static volatile sig_atomic_t	 wd_armed;	/* count hook installed */
static bool			 wd_fired;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
stop_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (!atomic_load(&wd_active) ||
	    atomic_load(&wd_seq) != atomic_load(&wd_fire_seq)) {
		/* A late signal for a resume that already ended. */
		lua_sethook(L, NULL, 0, 0);
		wd_armed = 0;
		return;
	}
	wd_fired = true;
	luaL_error(L, "hook exceeded its CPU time limit (hook_cpu_limit)");
}

static void
on_signal(int sig)
{
	(void)sig;
	if (atomic_load(&wd_active) &&
	    atomic_load(&wd_seq) == atomic_load(&wd_fire_seq)) {
		lua_sethook(wd_L, stop_hook,
		    LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
		wd_armed = 1;
	}
}

static void *
watchdog_main(void *arg)
{
	uint64_t seen_seq = 0, seen_at = 0;

	(void)arg;
	for (;;) {
		uint64_t limit = atomic_load(&wd_limit_ns);
		uint64_t period = limit / 8;
		struct timespec ts;

		if (period < 2000000u)
			period = 2000000u;	/* 2 ms */
		if (period > 100000000u)
			period = 100000000u;	/* 100 ms */
		ts.tv_sec = (time_t)(period / 1000000000u);
		ts.tv_nsec = (long)(period % 1000000000u);
		nanosleep(&ts, NULL);

		if (!atomic_load(&wd_active)) {
			seen_seq = 0;
			continue;
		}
		uint64_t seq = atomic_load(&wd_seq);
		uint64_t now = now_ns();

		if (seq != seen_seq) {
			seen_seq = seq;
			seen_at = now;
			continue;
		}
		if (now - seen_at >= limit &&
		    atomic_load(&wd_fire_seq) != seq) {
			atomic_store(&wd_fire_seq, seq);
			pthread_kill(wd_loop_thread, WATCHDOG_SIGNAL);
		}
	}
	return NULL;
}

void
lua_watchdog_start(lua_State *L)
{
	struct sigaction sa;
	sigset_t block, old;

	wd_L = L;
	wd_loop_thread = pthread_self();
	atomic_store(&wd_limit_ns, 1000000000u);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(WATCHDOG_SIGNAL, &sa, NULL);
	/* The watchdog thread itself takes no signals. */
	sigfillset(&block);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (pthread_create(&wd_thread, NULL, watchdog_main, NULL) != 0)
		fatalx("watchdog: cannot start thread");
	pthread_detach(wd_thread);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
lua_watchdog_enter(double limit)
{
	wd_fired = false;
	atomic_store(&wd_limit_ns, (uint64_t)(limit * 1e9));
	atomic_fetch_add(&wd_seq, 1);
	atomic_store(&wd_active, 1);
}

void
lua_watchdog_leave(void)
{
	atomic_store(&wd_active, 0);
	atomic_fetch_add(&wd_seq, 1);
	if (wd_armed) {
		lua_sethook(wd_L, NULL, 0, 0);
		wd_armed = 0;
	}
}

bool
lua_watchdog_fired(void)
{
	return wd_fired;
}
