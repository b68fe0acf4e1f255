/*
 * main.c — luasmtpd: a Lua-scriptable SMTP server.
 *
 *   luasmtpd -c FILE.lua [-D name=value ...] [-v]   run the server
 *   luasmtpd -t -c FILE.lua [-D ...]                check the config, exit
 *   luasmtpd --stdio -c FILE.lua [-D ...]           one session on stdin
 *                                                   and stdout, then exit
 *
 * A -D the config never reads with luasmtpd.var() is a typo: -t fails on
 * it; a server start only warns (lua_vm.c), because the same -D set is
 * often passed to every config (make run, test harnesses, units).
 *
 * Logs go to stderr, one line per event (util/log.h), or once the config
 * has loaded to the sink it names (`log`: syslog, the journal).  The
 * metrics are mapped before anything counts, and their endpoint (`metrics`)
 * listens beside the SMTP listeners.  SIGTERM and SIGINT stop the server;
 * mail acknowledged with 250 is already on disk then.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "http/http.h"
#include "kv/kv.h"
#include "dns/dns.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "lua/lua_vm.h"
#include "mailauth/spf.h"
#include "metrics/metrics.h"
#include "metrics/metrics_http.h"
#include "net/listener.h"
#include "net/stdio.h"
#include "queue/commit.h"
#include "queue/spool.h"
#include "server.h"
#include "task/task.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/sdnotify.h"
#include "util/workq.h"
#include "util/xmalloc.h"

#ifndef LUASMTPD_VERSION
#define LUASMTPD_VERSION "0.0.0"
#endif

#define MAX_DEFINES	256

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: luasmtpd -c FILE.lua [-t | --stdio] [-D name=value ...] "
	    "[-v]\n"
	    "\n"
	    "  -c FILE        the Lua config file\n"
	    "  -t             check the config and exit (0 if it is valid)\n"
	    "  --stdio        serve one session on standard input and output\n"
	    "                 (no listener is opened), then exit\n"
	    "  -D name=value  a setting the config reads with luasmtpd.var()\n"
	    "  -v             debug logging\n"
	    "  -h, --help     this help\n"
	    "  -V, --version  the version\n");
}

/* SIGHUP: re-read the certificate files for new connections. */
static void
reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	char err[512];

	(void)loop;
	(void)w;
	(void)revents;
	if (tls_reload(err, sizeof(err)) != 0)
		log_error(0, "tls reload-failed error=\"%s\" (the old "
		    "certificates stay in use)", err);
	else
		log_info(0, "tls reloaded");
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_info(0, "main stop signal=%d", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/*
 * The policy clients of the hooks: the key-value store behind luasmtpd.kv
 * and the HTTP client behind luasmtpd.http, each opened only when the
 * config uses it (sets `kv`/`http` or requires the module while it loads;
 * a hook that requires it later gets an error that says so).  They are
 * opened once, at start, after the loop and the worker pools exist (LMDB
 * syncs on workq_disk) and before the listeners: LMDB opens its directory
 * here, so a bad path fails the start; Redis connects in the background
 * and reconnects by itself, so a Redis that is down does not stop the
 * server (calls return nil, "unavailable" until it is back).
 * Returns 0, or -1 after logging why.
 */
static int
policy_clients_open(struct ev_loop *loop, const struct config *cfg)
{
	char err[512], path[PATH_MAX];

	if (cfg->kv_wanted) {
		struct kv_config kc = cfg->kv;

		if (strcmp(kc.backend != NULL ? kc.backend : "lmdb", "lmdb") ==
		    0 && kc.path == NULL) {
			if ((size_t)snprintf(path, sizeof(path), "%s/kv",
			    cfg->spool_dir) >= sizeof(path)) {
				log_error(0, "kv open-failed error=\"spool path "
				    "too long\"");
				return -1;
			}
			kc.path = path;
		}
		if ((server.kv = kv_open(loop, &kc, err, sizeof(err))) == NULL) {
			log_error(0, "kv open-failed error=\"%s\"", err);
			return -1;
		}
		log_info(0, "kv opened backend=%s at=%s", kv_backend_name(server.kv),
		    strcmp(kv_backend_name(server.kv), "redis") == 0 ? kc.redis :
		    kc.path);
	}
	if (cfg->http_wanted) {
		if ((server.http = http_new(loop, &cfg->http, err,
		    sizeof(err))) == NULL) {
			log_error(0, "http open-failed error=\"%s\"", err);
			return -1;
		}
		log_info(0, "http ready");
	}
	return 0;
}

/*
 * At exit, from main after the loop returned (never from a callback: a
 * kv or curl callback must not free its own client): pending requests are
 * cancelled without callbacks, LMDB is synced.  Before the worker pools go
 * (a sync may still be on workq_disk).
 */
static void
policy_clients_close(void)
{
	kv_close(server.kv);
	server.kv = NULL;
	http_free(server.http);
	server.http = NULL;
}

/*
 * After the loop returned (never from a callback): the policy clients,
 * then the worker pools let their current job finish, then Lua's objects
 * are freed (their __gc free what C libraries allocated for them).
 */
static void
shutdown_all(const struct config *cfg)
{
	policy_clients_close();
	commit_shutdown();
	/* Let the workers finish their current job, then free Lua's objects
	 * (their __gc frees what C libraries allocated for them). */
	workq_shutdown_pools();
	task_shutdown();
	dns_free(server.dns);		/* after the pools: see dns.h */
	server.dns = NULL;
	if (cfg->mailauth.wanted) {
		dkim_lib_shutdown();
		dmarc_shutdown();
	}
	lua_vm_close();
}

/* -t: every -D must have been read while the config loaded. */
static int
check_defines(const char *config_path, const struct define *d, size_t n)
{
	int unread = 0;

	for (size_t i = 0; i < n; i++) {
		if (d[i].used)
			continue;
		/* The value is not printed: it may be a password. */
		fprintf(stderr, "luasmtpd: %s: -D %s is never read by the config "
		    "(luasmtpd.var(\"%s\"))\n", config_path, d[i].name, d[i].name);
		unread++;
	}
	return unread == 0 ? 0 : -1;
}

static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static struct define defines[MAX_DEFINES];
	static struct config cfg;
	const char *config_path = NULL;
	size_t ndefines = 0;
	bool check_only = false, verbose = false, stdio = false;
	char err[1024];
	struct ev_loop *loop;
	ev_signal sigterm, sigint, sighup;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("luasmtpd %s\n", LUASMTPD_VERSION);
			return 0;
		} else if (strcmp(a, "-t") == 0) {
			check_only = true;
		} else if (strcmp(a, "--stdio") == 0) {
			stdio = true;
		} else if (strcmp(a, "-v") == 0) {
			verbose = true;
		} else if (strcmp(a, "-c") == 0 && i + 1 < argc) {
			config_path = argv[++i];
		} else if (strcmp(a, "-D") == 0 && i + 1 < argc) {
			char *kv = argv[++i], *eq = strchr(kv, '=');

			if (eq == NULL || eq == kv) {
				fprintf(stderr, "luasmtpd: -D needs name=value, got "
				    "'%s'\n", kv);
				return 2;
			}
			if (ndefines == MAX_DEFINES) {
				fprintf(stderr, "luasmtpd: too many -D settings\n");
				return 2;
			}
			*eq = '\0';
			defines[ndefines].name = kv;
			defines[ndefines].value = eq + 1;
			ndefines++;
		} else {
			fprintf(stderr, "luasmtpd: unknown argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (config_path == NULL) {
		usage(stderr);
		return 2;
	}
	if (verbose)
		log_set_level(LOG_LVL_DEBUG);

	config_defaults(&cfg);
	cfg.stdio = stdio;	/* no listener needed */
	/*
	 * Every exit closes the Lua state: its objects' __gc free what C
	 * libraries allocated for them (PCRE2 code of rewrite rules), which
	 * LeakSanitizer would otherwise report.
	 */
	if (lua_vm_load(config_path, defines, ndefines, &cfg, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "luasmtpd: %s\n", err);
		lua_vm_close();
		return 1;
	}
	if (verbose)
		log_set_level(LOG_LVL_DEBUG);
	if (check_only) {
		if (check_defines(config_path, defines, ndefines) != 0) {
			lua_vm_close();
			return 1;
		}
		printf("luasmtpd: %s: config ok\n", config_path);
		lua_vm_close();
		return 0;
	}

	if (log_open_sink(&cfg.log) != 0)
		fatal("cannot open the log sink");
	/* One shard: one process (metrics.h, for workers later). */
	metrics_init(1);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	if (spool_init(cfg.spool_dir) != 0)
		fatal("cannot create the spool under %s", cfg.spool_dir);
	/*
	 * One server per spool: recovery empties tmp/, which another one
	 * would be writing.  A --stdio session is a guest in the spool of a
	 * daemon that may be running: it neither locks nor recovers.
	 */
	if (!stdio && spool_lock(cfg.spool_dir) < 0) {
		if (errno == EWOULDBLOCK)
			fatalx("the spool %s is in use by another luasmtpd "
			    "(%s/lock is locked)", cfg.spool_dir, cfg.spool_dir);
		fatal("cannot lock the spool: %s/lock", cfg.spool_dir);
	}
	if (!stdio) {
		struct spool_recovery rec;

		if (spool_recover(cfg.spool_dir, &rec) != 0)
			fatal("cannot read the queue under %s", cfg.spool_dir);
		if (rec.tmp_removed + rec.orphans_removed + rec.envelopes_lost > 0)
			log_info(0, "spool recovered tmp_removed=%u "
			    "orphans_removed=%u envelopes_lost=%u", rec.tmp_removed,
			    rec.orphans_removed, rec.envelopes_lost);
		metric_set_l(M_QUEUE_MESSAGES, M_QUEUE_QUEUED, rec.queued);
		metric_set_l(M_QUEUE_MESSAGES, M_QUEUE_LOST, rec.lost);
	}

	loop = ev_default_loop(EVFLAG_AUTO);
	server_init(loop, &cfg);
	workq_init_pools(loop, cfg.workers);
	if (commit_init(loop, cfg.spool_dir, cfg.commit_per_file ? COMMIT_FILE :
	    COMMIT_FILESYSTEM, err, sizeof(err)) != 0)
		fatalx("cannot start the committer: %s", err);
	task_init(loop, vm.L);
	hook_impl = &lua_hook_ops;
	if (policy_clients_open(loop, &cfg) != 0) {
		policy_clients_close();
		workq_shutdown_pools();
		lua_vm_close();
		return 1;
	}
	/*
	 * The resolver and SPF behind luasmtpd.dns and luasmtpd.spf: after
	 * the loop and the pools (SPF runs on workq_cpu and asks the resolver
	 * from there), before any hook runs.  Freed at exit after the pools
	 * have stopped and before the Lua state (dns.h, dns_free).
	 */
	if ((server.dns = dns_new(loop, &cfg.dns, err, sizeof(err))) == NULL) {
		fprintf(stderr, "luasmtpd: %s\n", err);
		policy_clients_close();
		workq_shutdown_pools();
		task_shutdown();
		lua_vm_close();
		return 1;
	}
	spf_init(cfg.hostname);
	/* DKIM and DMARC, when the config uses them (mailauth or the module). */
	if (cfg.mailauth.wanted) {
		const char *psl = cfg.mailauth.psl != NULL ? cfg.mailauth.psl :
		    "/usr/share/publicsuffix/public_suffix_list.dat";

		if (dkim_lib_init(err, sizeof(err)) != 0 ||
		    dmarc_init(psl, err, sizeof(err)) != 0)
			fatalx("mailauth: %s", err);
	}
	log_info(0, "dns resolver upstream=%s dnssec=%s",
	    cfg.dns.servers != NULL && cfg.dns.servers[0] != NULL ?
	    cfg.dns.servers[0] : cfg.dns.resolv_conf ? "resolv.conf" : "root",
	    cfg.dns.trust_anchor_file != NULL ? cfg.dns.trust_anchor_file :
	    cfg.dns.trust_anchors != NULL && cfg.dns.trust_anchors[0] != NULL ?
	    "trust_anchors" : "off");
	/* Before the listeners: once "net listening" is logged, a SIGTERM
	 * must already stop us cleanly (tests and service managers rely on
	 * it). */
	ev_signal_init(&sigterm, stop_cb, SIGTERM);
	ev_signal_start(loop, &sigterm);
	ev_signal_init(&sigint, stop_cb, SIGINT);
	ev_signal_start(loop, &sigint);
	ev_signal_init(&sighup, reload_cb, SIGHUP);
	ev_signal_start(loop, &sighup);
	if (stdio) {
		int r;

		log_info(0, "main stdio version=%s config=%s pid=%d",
		    LUASMTPD_VERSION, config_path, (int)getpid());
		r = stdio_serve(loop);
		shutdown_all(&cfg);
		log_info(0, "main stopped");
		log_close_sink();
		return r == 0 ? 0 : 1;
	}
	if (metrics_http_open(loop, &cfg.metrics) != 0 ||
	    listeners_open(&cfg) != 0) {
		metrics_http_close();
		listeners_close();
		shutdown_all(&cfg);
		return 1;
	}
	log_info(0, "main started version=%s config=%s pid=%d", LUASMTPD_VERSION,
	    config_path, (int)getpid());
	sdnotify_ready();	/* Type=notify: the listeners accept now */

	ev_run(loop, 0);

	metrics_http_close();
	listeners_close();
	shutdown_all(&cfg);
	log_info(0, "main stopped");
	log_close_sink();
	return 0;
}
