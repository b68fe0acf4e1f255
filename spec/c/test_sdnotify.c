/*
 * test_sdnotify.c — unit cases for src/util/sdnotify.c (the sd_notify(3)
 * datagram for Type=notify units).
 *
 * Each case plays the service manager: it binds a datagram socket (a path
 * in a fresh directory under /tmp, or a name in the abstract namespace),
 * points $NOTIFY_SOCKET at it and reads what arrived.  Paths are swept at
 * the sun_path bound (n-1, n, n+1); a receiver whose queue is full must
 * make the send fail at once instead of blocking the start.  alarm(2)
 * bounds the whole driver: a blocked send fails the run.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/sdnotify.h"
#include "unit.h"

#define DRIVER_SECONDS		30
/* Datagrams to send at most while filling a receiver's queue. */
#define FILL_MAX		100000
#define SUN_PATH_SIZE		sizeof(((struct sockaddr_un *)0)->sun_path)

static char	 tmpdir[64];

/* A bound datagram socket at path ("@name": abstract); its fd. */
static int
receiver(const char *path)
{
	struct sockaddr_un sun;
	size_t n = strlen(path);
	socklen_t len;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	CHECK(n <= SUN_PATH_SIZE);
	if (path[0] == '@') {
		memcpy(sun.sun_path + 1, path + 1, n - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		CHECK(n < SUN_PATH_SIZE);
		memcpy(sun.sun_path, path, n + 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	if (bind(fd, (struct sockaddr *)&sun, len) != 0)
		unit_fail(__FILE__, __LINE__, "bind %s: %s", path,
		    strerror(errno));
	return fd;
}

/* The next datagram on fd, already queued (never waits); "" if none. */
static const char *
received(int fd)
{
	static char buf[2048];
	ssize_t r = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	buf[r > 0 ? r : 0] = '\0';
	return buf;
}

/* A path under tmpdir of exactly len bytes (unlinked first). */
static const char *
path_of_len(size_t len)
{
	static char p[512];
	size_t n = strlen(tmpdir);

	CHECK(len > n + 2 && len < sizeof(p));
	memcpy(p, tmpdir, n);
	p[n] = '/';
	memset(p + n + 1, 's', len - n - 1);
	p[len] = '\0';
	unlink(p);
	return p;
}

static void
no_variable_sends_nothing(void)
{
	unsetenv("NOTIFY_SOCKET");
	CHECK_INT(sdnotify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK_INT(sdnotify_send("READY=1"), 0);
	sdnotify_ready();	/* no variable: silent, no crash */
	unsetenv("NOTIFY_SOCKET");
}

static void
a_path_socket_gets_ready(void)
{
	const char *path = path_of_len(strlen(tmpdir) + 8);
	int fd = receiver(path);

	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_INT(sdnotify_send("READY=1"), 1);
	CHECK_STR(received(fd), "READY=1");
	sdnotify_ready();
	CHECK_STR(received(fd), "READY=1");
	CHECK_STR(received(fd), "");
	close(fd);
	unlink(path);
	unsetenv("NOTIFY_SOCKET");
}

static void
an_abstract_socket_gets_ready(void)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@luasmtpd-test-sdnotify-%d", (int)getpid());
	fd = receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK_INT(sdnotify_send("READY=1\nSTATUS=listening"), 1);
	CHECK_STR(received(fd), "READY=1\nSTATUS=listening");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

/* sun_path holds 107 bytes and the NUL of a path: 107 fits, 108 not. */
static void
a_path_at_the_sun_path_bound(void)
{
	const char *path = path_of_len(SUN_PATH_SIZE - 1);
	int fd = receiver(path);

	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_INT(sdnotify_send("READY=1"), 1);
	CHECK_STR(received(fd), "READY=1");
	close(fd);
	unlink(path);

	path = path_of_len(SUN_PATH_SIZE);
	setenv("NOTIFY_SOCKET", path, 1);
	errno = 0;
	CHECK_INT(sdnotify_send("READY=1"), -1);
	CHECK_INT(errno, EINVAL);

	path = path_of_len(SUN_PATH_SIZE + 1);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_INT(sdnotify_send("READY=1"), -1);
	CHECK_INT(errno, EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

/* An abstract name has no terminator: '@' + 107 bytes fill sun_path. */
static void
an_abstract_name_at_the_sun_path_bound(void)
{
	char name[SUN_PATH_SIZE + 2];
	int fd;

	memset(name, 'a', sizeof(name));
	name[0] = '@';
	snprintf(name + 1, 16, "%d-", (int)getpid());
	name[strlen(name)] = 'a';
	name[SUN_PATH_SIZE] = '\0';		/* '@' + 107: fits */
	fd = receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK_INT(sdnotify_send("READY=1"), 1);
	CHECK_STR(received(fd), "READY=1");
	close(fd);

	name[SUN_PATH_SIZE] = 'a';
	name[SUN_PATH_SIZE + 1] = '\0';		/* '@' + 108: refused */
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK_INT(sdnotify_send("READY=1"), -1);
	CHECK_INT(errno, EINVAL);
	setenv("NOTIFY_SOCKET", "@", 1);	/* no name at all */
	CHECK_INT(sdnotify_send("READY=1"), -1);
	CHECK_INT(errno, EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

static void
a_relative_path_is_refused(void)
{
	setenv("NOTIFY_SOCKET", "run/notify", 1);
	CHECK_INT(sdnotify_send("READY=1"), -1);
	CHECK_INT(errno, EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

static void
nobody_listening_is_an_error_not_a_crash(void)
{
	const char *path = path_of_len(strlen(tmpdir) + 10);

	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_INT(sdnotify_send("READY=1"), -1);
	CHECK(errno == ENOENT || errno == ECONNREFUSED);
	sdnotify_ready();	/* logs a warning, goes on */
	unsetenv("NOTIFY_SOCKET");
}

static void
empty_and_oversized_states_are_refused(void)
{
	const char *path = path_of_len(strlen(tmpdir) + 12);
	char *big = unit_alloc(1026);
	int fd = receiver(path);

	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_INT(sdnotify_send(""), -1);
	CHECK_INT(errno, EINVAL);
	CHECK_INT(sdnotify_send(NULL), -1);
	CHECK_INT(errno, EINVAL);
	memset(big, 'x', 1025);
	memcpy(big, "STATUS=", 7);
	big[1024] = '\0';			/* 1024 bytes: the bound */
	CHECK_INT(sdnotify_send(big), 1);
	CHECK_INT(strlen(received(fd)), 1024);
	big[1024] = 'x';
	big[1025] = '\0';			/* 1025: refused */
	CHECK_INT(sdnotify_send(big), -1);
	CHECK_INT(errno, EINVAL);
	CHECK_STR(received(fd), "");
	close(fd);
	unlink(path);
	unsetenv("NOTIFY_SOCKET");
}

/* A manager that stopped reading: the send fails at once (EAGAIN). */
static void
a_full_receiver_does_not_block(void)
{
	const char *path = path_of_len(strlen(tmpdir) + 14);
	int fd = receiver(path), r = 1, i;

	setenv("NOTIFY_SOCKET", path, 1);
	for (i = 0; i < FILL_MAX && r == 1; i++)
		r = sdnotify_send("STATUS=filling the queue");
	CHECK_INT(r, -1);
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
	CHECK(i > 1);
	close(fd);
	unlink(path);
	unsetenv("NOTIFY_SOCKET");
}

static void
cleanup(void)
{
	rmdir(tmpdir);
}

static const struct unit_case cases[] = {
	{ "without NOTIFY_SOCKET nothing is sent", no_variable_sends_nothing },
	{ "a path socket gets READY=1", a_path_socket_gets_ready },
	{ "an abstract socket gets the state", an_abstract_socket_gets_ready },
	{ "a path of 107 bytes works, 108 and 109 are refused",
	    a_path_at_the_sun_path_bound },
	{ "an abstract name of 107 bytes works, 108 and none are refused",
	    an_abstract_name_at_the_sun_path_bound },
	{ "a relative path is refused", a_relative_path_is_refused },
	{ "no socket at the path is an error, not a crash",
	    nobody_listening_is_an_error_not_a_crash },
	{ "empty and oversized states are refused, 1024 bytes sent",
	    empty_and_oversized_states_are_refused },
	{ "a full receiver makes the send fail without blocking",
	    a_full_receiver_does_not_block },
};

int
main(void)
{
	int r;

	alarm(DRIVER_SECONDS);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sdnotify.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		printf("not ok mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	r = unit_run(cases, sizeof(cases) / sizeof(cases[0]));
	cleanup();
	return r;
}
