/*
 * test_dkim_stream.c — DKIM verification as the server streams a message
 * (src/mailauth/dkim_verify*.c): a 25 MB message verified with memory that
 * does not grow with its size (getrusage's peak RSS) while a loop timer
 * keeps firing, the read-back from the spool file when the CPU pool falls
 * behind, and every way a verifier or a signature ends early (cancel,
 * timeout).  Keys from spec/fixtures/dns/dkim.test.zone on the NSD of
 * spec/support/dns.lua (run from spec/unit/dkim_spec.lua).
 *
 * The "spool file" is a file of the whole signed message; the driver
 * reads it in READ_SIZE pieces from an ev_idle watcher (as fast as
 * the loop allows: the worst case for the backlog) or from a timer (a
 * paced client), and writes each piece to the verifier.
 */
#include <sys/resource.h>

#include "dkim_test_util.h"

#define BIG_OCTETS	(25u * 1024 * 1024)
#define PACED_OCTETS	(6u * 1024 * 1024)
#define LINE_LEN	78
#define READ_SIZE	(64 * 1024)
/* The peak RSS may grow by this much while 25 MB pass: the header block,
 * the backlog, a chunk, libopendkim's and the sanitizers' own. */
#define RSS_GROWTH_MAX_KB	(24 * 1024)
/* Liveness, not speed: the loop timer must not stop for this long. */
#define TICK_S		0.01
#define GAP_MAX_S	1.0

#define HDR								\
	"From: Alice <alice@dkim.test>\r\n"				\
	"To: Bob <bob@example.test>\r\n"				\
	"Subject: a large message\r\n"					\
	"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"			\
	"\r\n"

static struct dkim_key	*k_rsa;

static long
peak_rss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* A message of about octets: HDR and numbered lines, into path. */
static void
make_message(const char *path, size_t octets)
{
	char *buf = unit_alloc(READ_SIZE);
	size_t len = strlen(HDR), total = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		unit_fail(__FILE__, __LINE__, "cannot create %s", path);
	memcpy(buf, HDR, len);
	for (unsigned i = 0; total < octets; i++) {
		len += (size_t)snprintf(buf + len, LINE_LEN + 1, "%07u %068u\r\n",
		    i, i);
		if (len + LINE_LEN + 1 > READ_SIZE) {
			if (write(fd, buf, len) != (ssize_t)len)
				unit_fail(__FILE__, __LINE__, "write failed");
			total += len;
			len = 0;
		}
	}
	if (len > 0 && write(fd, buf, len) != (ssize_t)len)
		unit_fail(__FILE__, __LINE__, "write failed");
	close(fd);
}

/* path signed (RSA, relaxed) into out: our field, then the message. */
static void
sign_file(const char *path, const char *out)
{
	struct dkim_sign_opts o;
	struct sgot *g;
	char *buf = unit_alloc(READ_SIZE);
	int in = open(path, O_RDONLY | O_CLOEXEC), fd;
	ssize_t n;

	memset(&o, 0, sizeof(o));
	o.domain = "dkim.test";
	o.selector = "rsa";
	o.key = k_rsa;
	g = sign_any(&o, 1, in, 0, NULL, 0);
	if (!g->ok)
		unit_fail(__FILE__, __LINE__, "signing failed: %s", g->err);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, g->fields, g->len) != (ssize_t)g->len)
		unit_fail(__FILE__, __LINE__, "cannot write %s", out);
	while ((n = read(in, buf, READ_SIZE)) > 0)
		if (write(fd, buf, (size_t)n) != n)
			unit_fail(__FILE__, __LINE__, "cannot write %s", out);
	close(fd);
	close(in);
}

static void
keys(void)
{
	setup();
	if (k_rsa == NULL)
		k_rsa = key("rsa2048.pem");
}

/* ---- a client that writes a file to a verifier ---------------------------- */

struct stream {
	struct dkim_verify *v;
	int		 fd;
	unsigned char	*buf;
	ev_idle		 idle;
	ev_timer	 pace;
	ev_timer	 tick;
	size_t		 step;
	bool		 eof;
	struct vgot	 got;
	unsigned	 ticks, ticks_after_finish;
	double		 last, gap;
};

static void
feed_some(struct stream *s)
{
	ssize_t n = read(s->fd, s->buf, s->step);

	if (n > 0) {
		dkim_verify_write(s->v, s->buf, (size_t)n);
		return;
	}
	s->eof = true;
	ev_idle_stop(loop, &s->idle);
	ev_timer_stop(loop, &s->pace);
	dkim_verify_finish(s->v, verify_cb, &s->got);
}

static void
idle_cb(struct ev_loop *l, ev_idle *w, int revents)
{
	(void)l;
	(void)revents;
	feed_some(w->data);
}

static void
pace_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)revents;
	feed_some(w->data);
}

static void
tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct stream *s = w->data;
	double now = test_now();

	(void)l;
	(void)revents;
	if (now - s->last > s->gap)
		s->gap = now - s->last;
	s->last = now;
	s->ticks++;
	if (s->eof)
		s->ticks_after_finish++;
}

/* Verify the file at path, read fast (idle) or paced (every pace_s). */
static struct stream *
stream(const char *path, bool with_spool_fd, double pace_s, size_t step)
{
	struct stream *s = unit_alloc(sizeof(*s));

	memset(s, 0, sizeof(*s));
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		unit_fail(__FILE__, __LINE__, "cannot open %s", path);
	s->buf = unit_alloc(step);
	s->step = step;
	s->v = dkim_verify_new(dns, with_spool_fd ? s->fd : -1, 0, NULL);
	ev_idle_init(&s->idle, idle_cb);
	s->idle.data = s;
	ev_timer_init(&s->pace, pace_cb, pace_s, pace_s);
	s->pace.data = s;
	ev_timer_init(&s->tick, tick_cb, TICK_S, TICK_S);
	s->tick.data = s;
	s->last = test_now();
	ev_timer_start(loop, &s->tick);
	if (pace_s > 0)
		ev_timer_start(loop, &s->pace);
	else
		ev_idle_start(loop, &s->idle);
	if (!test_run_until(loop, &s->got.done, 120))
		unit_fail(__FILE__, __LINE__, "no verification result");
	ev_timer_stop(loop, &s->tick);
	close(s->fd);
	CHECK_INT(s->got.calls, 1);
	return s;
}

/* ---- cases ------------------------------------------------------------------- */

static void
t_big(void)
{
	char *plain = tmp_path("big.eml"), *signed_path = tmp_path("big.signed");
	struct stream *s;
	long before;
	size_t size;
	struct stat st;

	keys();
	make_message(plain, BIG_OCTETS);
	sign_file(plain, signed_path);
	unlink(plain);
	CHECK(stat(signed_path, &st) == 0);
	size = (size_t)st.st_size;
	CHECK(size > BIG_OCTETS);
	before = peak_rss_kb();
	s = stream(signed_path, true, 0, READ_SIZE);
	CHECK_RES(s->got.r.res, "pass");
	CHECK_INT(s->got.r.octets, size);
	/* The pool fell behind the idle reader: the rest came from the file. */
	CHECK(s->got.r.reread > 0);
	printf("# 25 MB: peak RSS +%ld kB, longest loop gap %.3f s, %u ticks "
	    "after finish, %llu octets read back\n", peak_rss_kb() - before,
	    s->gap, s->ticks_after_finish,
	    (unsigned long long)s->got.r.reread);
	if (peak_rss_kb() - before > RSS_GROWTH_MAX_KB)
		unit_fail(__FILE__, __LINE__, "peak RSS grew by %ld kB for a "
		    "%zu octet message", peak_rss_kb() - before, size);
	if (s->gap > GAP_MAX_S || s->ticks_after_finish < 3)
		unit_fail(__FILE__, __LINE__, "loop timer: longest gap %.3f s, "
		    "%u ticks after finish", s->gap, s->ticks_after_finish);
	unlink(signed_path);
}

static void
t_paced(void)
{
	char *plain = tmp_path("paced.eml"), *signed_path =
	    tmp_path("paced.signed");
	struct stream *s;
	long before;

	keys();
	make_message(plain, PACED_OCTETS);
	sign_file(plain, signed_path);
	unlink(plain);
	before = peak_rss_kb();
	/* 32 kB every 2 ms: about 16 MB/s, a fast client. */
	s = stream(signed_path, true, 0.002, 32 * 1024);
	CHECK_RES(s->got.r.res, "pass");
	CHECK(peak_rss_kb() - before <= RSS_GROWTH_MAX_KB);
	CHECK(s->gap <= GAP_MAX_S);
	unlink(signed_path);
}

static void
t_changed_big_body_fails(void)
{
	char *plain = tmp_path("c.eml"), *signed_path = tmp_path("c.signed");
	struct stream *s;
	int fd;

	keys();
	make_message(plain, 3 * DKIM_BACKLOG_MAX);
	sign_file(plain, signed_path);
	/* One octet near the end, in the part read back from the file. */
	fd = open(signed_path, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, "X", 1, 3 * DKIM_BACKLOG_MAX - 100) == 1);
	close(fd);
	s = stream(signed_path, true, 0, READ_SIZE);
	CHECK_RES(s->got.r.res, "fail");
	CHECK_STR(s->got.r.sig[0].reason, "body hash did not verify");
	CHECK(s->got.r.reread > 0);
}

static void
t_backlog_without_file(void)
{
	char *plain = tmp_path("nf.eml"), *signed_path = tmp_path("nf.signed");
	struct stream *s;

	keys();
	make_message(plain, 3 * DKIM_BACKLOG_MAX);
	sign_file(plain, signed_path);
	s = stream(signed_path, false, 0, READ_SIZE);
	CHECK_RES(s->got.r.res, "temperror");
	CHECK_STR(s->got.r.reason, "verifier backlog full and no spool file");
}

static void
t_cancel(void)
{
	static const char msg[] = HDR "body\r\n";
	struct vgot g;
	struct dkim_verify *v;
	char *m;

	keys();
	/* Before finish, with octets queued. */
	memset(&g, 0, sizeof(g));
	v = dkim_verify_new(dns, -1, 0, NULL);
	dkim_verify_write(v, msg, sizeof(msg) - 1);
	dkim_verify_cancel(v);
	test_run_for(loop, 0.1);
	/* While the key lookup hangs (slow.test never answers). */
	m = dkimpy_sign_d("rsa2048.pem", "x", "slow.test", "relaxed/relaxed",
	    "-", msg);
	v = dkim_verify_new(dns, -1, 0, NULL);
	dkim_verify_write(v, m, strlen(m));
	dkim_verify_finish(v, verify_cb, &g);
	test_run_for(loop, 0.3);
	CHECK_INT(g.calls, 0);
	dkim_verify_cancel(v);
	/* Right after finish, while its jobs run. */
	v = dkim_verify_new(dns, -1, 0, NULL);
	dkim_verify_write(v, m, strlen(m));
	dkim_verify_finish(v, verify_cb, &g);
	dkim_verify_cancel(v);
	dkim_verify_cancel(NULL);
	test_run_for(loop, 0.3);
	CHECK_INT(g.calls, 0);
	CHECK_INT(dkim_pending(), 0);
}

static void
t_timeout(void)
{
	static const char msg[] = HDR "body\r\n";
	struct dkim_verify_opts vo;
	struct vgot g;
	struct dkim_verify *v;
	double t0;
	char *m;

	keys();
	memset(&g, 0, sizeof(g));
	memset(&vo, 0, sizeof(vo));
	vo.timeout = 0.5;
	vo.dns_timeout = 5;
	m = dkimpy_sign_d("rsa2048.pem", "x", "slow.test", "relaxed/relaxed",
	    "-", msg);
	v = dkim_verify_new(dns, -1, 0, &vo);
	dkim_verify_write(v, m, strlen(m));
	t0 = test_now();
	dkim_verify_finish(v, verify_cb, &g);
	CHECK(test_run_until(loop, &g.done, 10));
	CHECK_INT(g.calls, 1);
	CHECK_RES(g.r.res, "temperror");
	CHECK_STR(g.r.reason, "timeout");
	CHECK(test_now() - t0 < 4);
	test_run_for(loop, 0.1);
	CHECK_INT(g.calls, 1);
	CHECK_INT(dkim_pending(), 0);
}

/* A callback that cancels and finishes its own verifier: no effect. */
static void
reentrant_cb(void *arg, const struct dkim_verify_result *r)
{
	struct dkim_verify **vp = arg;

	(void)r;
	dkim_verify_cancel(*vp);
	dkim_verify_write(*vp, "x", 1);
	*vp = NULL;
}

static void
t_misuse(void)
{
	static const char msg[] = HDR "body\r\n";
	struct dkim_verify *v, *self;
	struct vgot g;

	keys();
	memset(&g, 0, sizeof(g));
	v = dkim_verify_new(dns, -1, 0, NULL);
	dkim_verify_write(v, msg, sizeof(msg) - 1);
	dkim_verify_finish(v, verify_cb, &g);
	/* A second finish and writes after finish are ignored. */
	dkim_verify_finish(v, verify_cb, &g);
	dkim_verify_write(v, msg, sizeof(msg) - 1);
	CHECK(test_run_until(loop, &g.done, WAIT_S));
	CHECK_RES(g.r.res, "none");
	CHECK_INT(g.r.octets, sizeof(msg) - 1);
	test_run_for(loop, 0.05);
	CHECK_INT(g.calls, 1);
	self = dkim_verify_new(dns, -1, 0, NULL);
	v = self;
	dkim_verify_write(self, msg, sizeof(msg) - 1);
	dkim_verify_finish(self, reentrant_cb, &v);
	test_run_for(loop, 0.3);
	CHECK(v == NULL);
	CHECK_INT(dkim_pending(), 0);
}

static void
t_sign_timeout_and_cancel(void)
{
	char *plain = tmp_path("s.eml");
	struct dkim_sign_opts o;
	struct sgot g;
	struct dkim_sign_req *r;
	char err[256];
	int fd;

	keys();
	make_message(plain, 4 * 1024 * 1024);
	memset(&o, 0, sizeof(o));
	o.domain = "dkim.test";
	o.selector = "rsa";
	o.key = k_rsa;
	fd = open(plain, O_RDONLY | O_CLOEXEC);
	memset(&g, 0, sizeof(g));
	r = dkim_sign_start(&o, 1, fd, 0, NULL, 0, 0.001, sign_cb, &g, err,
	    sizeof(err));
	CHECK(r != NULL);
	CHECK(test_run_until(loop, &g.done, WAIT_S));
	CHECK(!g.ok);
	CHECK_STR(g.err, "timeout");
	memset(&g, 0, sizeof(g));
	r = dkim_sign_start(&o, 1, fd, 0, NULL, 0, 10, sign_cb, &g, err,
	    sizeof(err));
	dkim_sign_cancel(r);
	dkim_sign_cancel(NULL);
	close(fd);
	test_run_for(loop, 1.0);
	CHECK_INT(g.calls, 0);
	CHECK_INT(dkim_pending(), 0);
}

static void
t_shutdown(void)
{
	setup();
	CHECK_INT(dkim_pending(), 0);
	dkim_key_unref(k_rsa);
	k_rsa = NULL;
	teardown();
	dns = NULL;
}

static const struct unit_case cases[] = {
	/* First: the peak RSS before it must not include the others. */
	{ "a 25 MB message verifies with bounded memory while the loop runs",
	    t_big },
	{ "a paced 6 MB message verifies", t_paced },
	{ "a change in the part read back from the spool file fails",
	    t_changed_big_body_fails },
	{ "a backlog without a spool file is temperror",
	    t_backlog_without_file },
	{ "cancel before finish, during a key lookup and during a job",
	    t_cancel },
	{ "a check that times out answers temperror once", t_timeout },
	{ "finish twice, write after finish, cancel in the callback",
	    t_misuse },
	{ "signing times out or is cancelled", t_sign_timeout_and_cancel },
	{ "shutdown", t_shutdown },
};

int
main(void)
{
	if (test_env_load(&env) != 0)
		return 1;
	return unit_run(cases, sizeof(cases) / sizeof(cases[0]));
}
