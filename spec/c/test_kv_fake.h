/*
 * test_kv_fake.h — a fake Redis inside test_kv_redis, on 127.0.0.1, for
 * what a real one will not do: replies of the wrong type, protocol
 * garbage, a refused AUTH, silence.  Commands are read with hiredis's
 * reader (they are RESP arrays); AUTH and SELECT get auth_reply and "+OK"
 * (nothing when setup_silent), every other command gets `reply` (nothing
 * when NULL).  One client at a time; a new one replaces the old.
 */
#ifndef LUASMTPD_TEST_KV_FAKE_H
#define LUASMTPD_TEST_KV_FAKE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

struct fake {
	int		 lfd, cfd;
	char		 addr[32];
	ev_io		 accept_w, read_w;
	redisReader	*rd;
	const char	*reply;
	const char	*auth_reply;
	bool		 setup_silent;
	int		 connections, commands;
	char		 auth[64];
};

static struct fake	fk;

static void
fake_send(const char *s)
{
	if (s != NULL && write(fk.cfd, s, strlen(s)) < 0)
		fprintf(stderr, "fake: write: %s\n", strerror(errno));
}

static void
fake_drop_client(void)
{
	if (fk.cfd < 0)
		return;
	ev_io_stop(kvh_loop, &fk.read_w);
	close(fk.cfd);
	redisReaderFree(fk.rd);
	fk.cfd = -1;
}

static void
fake_read_cb(struct ev_loop *l, ev_io *w, int revents)
{
	char buf[4096];
	void *obj;
	ssize_t n;

	(void)l;
	(void)w;
	(void)revents;
	if ((n = read(fk.cfd, buf, sizeof(buf))) <= 0) {
		if (n == 0 || errno != EAGAIN)
			fake_drop_client();
		return;
	}
	redisReaderFeed(fk.rd, buf, (size_t)n);
	while (redisReaderGetReply(fk.rd, &obj) == REDIS_OK && obj != NULL) {
		redisReply *cmd = obj;
		const char *verb = cmd->elements > 0 ? cmd->element[0]->str : "";

		if (strcmp(verb, "AUTH") == 0 && cmd->elements == 2) {
			snprintf(fk.auth, sizeof(fk.auth), "%s",
			    cmd->element[1]->str);
			if (!fk.setup_silent)
				fake_send(fk.auth_reply);
		} else if (strcmp(verb, "SELECT") == 0) {
			if (!fk.setup_silent)
				fake_send("+OK\r\n");
		} else {
			fk.commands++;
			fake_send(fk.reply);
		}
		freeReplyObject(obj);
	}
}

static void
fake_accept_cb(struct ev_loop *l, ev_io *w, int revents)
{
	int fd;

	(void)l;
	(void)w;
	(void)revents;
	if ((fd = accept4(fk.lfd, NULL, NULL, SOCK_NONBLOCK)) < 0)
		return;
	fake_drop_client();
	fk.cfd = fd;
	fk.rd = redisReaderCreate();
	fk.connections++;
	ev_io_init(&fk.read_w, fake_read_cb, fd, EV_READ);
	ev_io_start(kvh_loop, &fk.read_w);
}

/* A port on 127.0.0.1 bound and closed again: nothing listens there. */
static int
fake_listen(bool keep, char *out, size_t outsz)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd, one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(listen(fd, 16) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	snprintf(out, outsz, "127.0.0.1:%d", ntohs(sin.sin_port));
	if (!keep) {
		close(fd);
		return -1;
	}
	return fd;
}

static const char *
fake_unused_addr(void)
{
	static char a[32];

	fake_listen(false, a, sizeof(a));
	return a;
}

static void
fake_start(const char *reply)
{
	memset(&fk, 0, sizeof(fk));
	fk.cfd = -1;
	fk.reply = reply;
	fk.auth_reply = "+OK\r\n";
	fk.lfd = fake_listen(true, fk.addr, sizeof(fk.addr));
	ev_io_init(&fk.accept_w, fake_accept_cb, fk.lfd, EV_READ);
	ev_io_start(kvh_loop, &fk.accept_w);
}

static void
fake_stop(void)
{
	fake_drop_client();
	ev_io_stop(kvh_loop, &fk.accept_w);
	close(fk.lfd);
}

/* ---- cases ----------------------------------------------------------- */

struct bad_reply {
	enum kv_op	 op;
	unsigned	 flags;
	const char	*reply;
	enum kv_status	 want;
};

static const struct bad_reply bad_replies[] = {
	{ KV_OP_GET, 0, ":1\r\n", KV_ERROR },
	{ KV_OP_GET, 0, "*1\r\n$1\r\nx\r\n", KV_ERROR },
	{ KV_OP_GET, 0, "+OK\r\n", KV_ERROR },
	{ KV_OP_GET, 0, "$-1\r\n", KV_NOTFOUND },
	{ KV_OP_SET, 0, ":1\r\n", KV_ERROR },
	{ KV_OP_SET, 0, "$-1\r\n", KV_ERROR },
	{ KV_OP_SET, KV_NX, "+OK\r\n", KV_ERROR },
	{ KV_OP_SET, KV_NX, "*0\r\n", KV_ERROR },
	{ KV_OP_SET, KV_NX, "*2\r\n:0\r\n:5\r\n", KV_ERROR },
	{ KV_OP_SET, KV_NX, "*1\r\n$1\r\n1\r\n", KV_ERROR },
	{ KV_OP_SET, KV_NX, "*1\r\n:0\r\n", KV_OK },	/* expired meanwhile */
	{ KV_OP_INCR, 0, "$1\r\n5\r\n", KV_ERROR },
	{ KV_OP_INCR, 0, "*-1\r\n", KV_ERROR },
	{ KV_OP_DEL, 0, "+OK\r\n", KV_ERROR },
	{ KV_OP_GCRA, 0, "*3\r\n:1\r\n$1\r\nx\r\n:0\r\n", KV_ERROR },
	{ KV_OP_GCRA, 0, "*2\r\n:1\r\n:0\r\n", KV_ERROR },
	{ KV_OP_GCRA, 0, "*3\r\n:1\r\n:-5\r\n:0\r\n", KV_ERROR },
	{ KV_OP_GCRA, 0, "*3\r\n*0\r\n:0\r\n:0\r\n", KV_ERROR },
	{ KV_OP_GCRA, 0, ":1\r\n", KV_ERROR },
	{ KV_OP_GCRA, 0, "*3\r\n:0\r\n:1500000\r\n:0\r\n", KV_OK },
};

static void
fake_wrong_types(void)
{
	struct kv *kv;
	struct cap *c;

	fake_start(NULL);
	kv = open_redis(fk.addr, NULL, 0, 0, 0);
	for (size_t i = 0; i < sizeof(bad_replies) / sizeof(bad_replies[0]);
	    i++) {
		const struct bad_reply *b = &bad_replies[i];

		fk.reply = b->reply;
		switch (b->op) {
		case KV_OP_GET:
			REQ(c, kv_get(kv, S("k"), kvh_cb, c));
			break;
		case KV_OP_SET:
			REQ(c, kv_set(kv, S("k"), S("v"), 0, b->flags, kvh_cb,
			    c));
			break;
		case KV_OP_INCR:
			REQ(c, kv_incr(kv, S("k"), 1, 0, kvh_cb, c));
			break;
		case KV_OP_DEL:
			REQ(c, kv_del(kv, S("k"), kvh_cb, c));
			break;
		case KV_OP_GCRA:
			REQ(c, kv_gcra(kv, S("k"), 1, 1, 1, kvh_cb, c));
			break;
		}
		if (!kvh_wait_all(&c, 1, KVH_WAIT) || c->status != b->want)
			unit_fail(__FILE__, __LINE__, "reply %zu: %s (%s)", i,
			    kv_status_name(c->status), c->error);
		if (b->want == KV_ERROR)
			CHECK_STR(c->error, "unexpected reply type from redis");
	}
	CHECK(!c->allowed);
	CHECK(c->retry_after == 1.5);
	/* One connection all along: a wrong type is not a protocol error. */
	CHECK_INT(fk.connections, 1);
	kv_close(kv);
	fake_stop();
}

static void
fake_error_text(void)
{
	char *longerr = unit_alloc(1000);
	struct kv *kv;
	struct cap *c;

	fake_start("-ERR boom\r\n");
	kv = open_redis(fk.addr, NULL, 0, 0, 0);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_ERROR);
	CHECK_STR(c->error, "ERR boom");
	memset(longerr, 'e', 997);
	memcpy(longerr, "-", 1);
	memcpy(longerr + 995, "\r\n", 3);
	fk.reply = longerr;
	REQ(c, kv_incr(kv, S("k"), 1, 0, kvh_cb, c));
	WAIT(c, KV_ERROR);
	CHECK_INT(strlen(c->error), KV_ERROR_TEXT_MAX - 1);
	kv_close(kv);
	fake_stop();
}

/* Poll until a request to kv is answered KV_OK. */
static void
fake_wait_ok(struct kv *kv)
{
	size_t mark = unit_mark();
	struct cap *c;

	for (int i = 0; i < 100; i++) {
		REQ(c, kv_get(kv, S("k"), kvh_cb, c));
		CHECK(kvh_wait_all(&c, 1, KVH_WAIT));
		if (c->status == KV_OK) {
			unit_release(mark);
			return;
		}
		unit_release(mark);
		kvh_sleep(0.05);
	}
	unit_fail(__FILE__, __LINE__, "never answered KV_OK again");
}

static void
fake_garbage(void)
{
	struct kv *kv;
	struct cap *c;

	fake_start("?garbage\r\n");
	kv = open_redis(fk.addr, NULL, 0, 0, 0);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_UNAVAILABLE);
	fk.reply = "$1\r\nv\r\n";
	fake_wait_ok(kv);
	CHECK_INT(fk.connections, 2);
	kv_close(kv);
	fake_stop();
}

static void
fake_auth(void)
{
	struct kv_config cfg = {
		.backend = "redis",
		.password = "s3cret",
		.db = 7,
	};
	char err[128];
	struct kv *kv;
	struct cap *c;

	fake_start("$1\r\nv\r\n");
	fk.auth_reply = "-WRONGPASS invalid username-password pair\r\n";
	cfg.redis = fk.addr;
	CHECK((kv = kv_open(kvh_loop, &cfg, err, sizeof(err))) != NULL);
	/* Queued behind AUTH on the first connection, which fails. */
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_UNAVAILABLE);
	CHECK_STR(fk.auth, "s3cret");
	fk.auth_reply = "+OK\r\n";
	fake_wait_ok(kv);
	kv_close(kv);
	fake_stop();
}

/* A server that stops answering: timeouts, then a new connection. */
static void
fake_silence(void)
{
	struct kv *kv;
	struct cap *c, *d;
	int before;

	fake_start("$1\r\nv\r\n");
	kv = open_redis(fk.addr, NULL, 0, 0.3, 0);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_OK);
	fk.reply = NULL;
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_TIMEOUT);
	CHECK(strstr(c->error, "in time") != NULL);
	fk.reply = "$1\r\nv\r\n";
	fake_wait_ok(kv);
	CHECK_INT(fk.connections, 2);
	/* A cancelled request still has its timer: the hang is noticed. */
	fk.reply = NULL;
	before = fk.connections;
	kv_cancel(REQ(d, kv_get(kv, S("k"), kvh_cb, d)));
	kvh_sleep(0.8);
	CHECK_INT(d->calls, 0);
	fk.reply = "$1\r\nv\r\n";
	fake_wait_ok(kv);
	CHECK(fk.connections > before);
	kv_close(kv);
	fake_stop();
}

/* No answer to SELECT: the connect timeout ends the first attempt. */
static void
fake_connect_timeout(void)
{
	struct kv *kv;
	struct cap *c;
	double t0 = ev_time();

	fake_start(NULL);		/* silent all along, as a real one */
	fk.setup_silent = true;
	kv = open_redis(fk.addr, NULL, 0, 0.3, 0);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));
	WAIT(c, KV_UNAVAILABLE);
	CHECK(c->at - t0 >= 0.25);
	REQ(c, kv_get(kv, S("k"), kvh_cb, c));	/* failed once: fast */
	WAIT(c, KV_UNAVAILABLE);
	fk.setup_silent = false;
	fk.reply = "$1\r\nv\r\n";
	fake_wait_ok(kv);
	kv_close(kv);
	fake_stop();
}

static const struct unit_case fake_cases[] = {
	{ "redis replies of an unexpected type are errors", fake_wrong_types },
	{ "redis error replies are errors with their text, cut",
	    fake_error_text },
	{ "redis protocol garbage drops the connection, then reconnects",
	    fake_garbage },
	{ "redis AUTH is sent and a refusal is unavailable", fake_auth },
	{ "redis silence times out and the store reconnects", fake_silence },
	{ "redis silent setup ends in the connect timeout",
	    fake_connect_timeout },
};

#endif
