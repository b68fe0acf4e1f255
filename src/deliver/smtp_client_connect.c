/*
 * smtp_client_connect.c — where the client connects: target strings,
 * name resolution on a worker thread, non-blocking connects that try
 * each address in turn (see smtp_client.h).
 *
 * Ownership: a resolver job owns itself.  It points back at the client
 * until the client lets it go (smtpc_resolve_abandon: cancelled, timed
 * out, closed); then it only frees itself and getaddrinfo's result when
 * the worker is done.  The address list, once handed over, is the
 * client's (freeaddrinfo in client_free).
 *
 * SECURITY: target strings come from the config, not from the network,
 * but are still checked strictly (a host is letters, digits, '.', '-',
 * '_'; an IPv6 address must parse; a port is 1-65535).  At most
 * SMTPC_MAX_ADDRS addresses are tried, each under the connect timeout,
 * and resolving runs under it too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deliver/smtp_client_int.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xmalloc.h"

struct resolve_job {
	struct work		 work;
	struct smtp_client	*cl;		/* NULL once let go */
	char			 host[SMTP_DOMAIN_MAX + 1];
	char			 port[6];
	int			 rc;
	struct addrinfo		*res;
};

/* ---- targets ---- */

static bool
valid_port(const char *p, char *out)
{
	size_t n = strlen(p);
	long v;

	if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
		return false;
	v = strtol(p, NULL, 10);
	if (v < 1 || v > 65535)
		return false;
	snprintf(out, 6, "%ld", v);
	return true;
}

/* A host name or an IPv4 address: letters, digits, '.', '-', '_'. */
static bool
valid_host(const char *h, size_t n)
{
	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

int
smtpc_target_parse(const char *spec, const char *default_port,
    struct smtpc_target *t, char *err, size_t errlen)
{
	const char *host, *port = NULL, *colon;
	size_t hl, n = strlen(spec);
	char portbuf[8];

	memset(t, 0, sizeof(*t));
	if (n == 0 || n >= sizeof(t->name)) {
		snprintf(err, errlen, "target must be 1-%zu characters",
		    sizeof(t->name) - 1);
		return -1;
	}
	memcpy(t->name, spec, n + 1);
	if (strncmp(spec, "unix:", 5) == 0) {
		if (n - 5 == 0 || n - 5 >= sizeof(t->path)) {
			snprintf(err, errlen, "unix socket path must be 1-%zu "
			    "characters", sizeof(t->path) - 1);
			return -1;
		}
		t->is_unix = true;
		memcpy(t->path, spec + 5, n - 5 + 1);
		return 0;
	}
	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		struct in6_addr a6;

		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			goto bad;
		host = spec + 1;
		hl = (size_t)(end - host);
		if (hl == 0 || hl >= sizeof(t->host))
			goto bad;
		memcpy(t->host, host, hl);
		t->host[hl] = '\0';
		if (inet_pton(AF_INET6, t->host, &a6) != 1)
			goto bad;
		if (end[1] == ':')
			port = end + 2;
	} else if ((colon = strchr(spec, ':')) != NULL &&
	    strchr(colon + 1, ':') != NULL) {
		/* A bare IPv6 address (no port). */
		struct in6_addr a6;

		if (n >= sizeof(t->host) || inet_pton(AF_INET6, spec, &a6) != 1)
			goto bad;
		memcpy(t->host, spec, n + 1);
	} else {
		hl = colon != NULL ? (size_t)(colon - spec) : n;
		if (!valid_host(spec, hl))
			goto bad;
		memcpy(t->host, spec, hl);
		t->host[hl] = '\0';
		if (colon != NULL)
			port = colon + 1;
	}
	if (port == NULL)
		port = default_port;
	if (port == NULL) {
		snprintf(err, errlen, "target %s has no port (host:port)", spec);
		return -1;
	}
	if (!valid_port(port, portbuf)) {
		snprintf(err, errlen, "bad port in target %s", spec);
		return -1;
	}
	memcpy(t->port, portbuf, sizeof(t->port));
	return 0;
bad:
	snprintf(err, errlen, "bad target %s (unix:/path, host:port or "
	    "[ipv6]:port)", spec);
	return -1;
}

/* ---- connecting ---- */

static void
addr_string(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(out, outlen, "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(out, outlen, "[%s]:%d", host, port);
	} else {
		snprintf(out, outlen, "?");
	}
}

static void
connect_failed(struct smtp_client *cl, const char *addr, const char *why)
{
	snprintf(cl->last_err, sizeof(cl->last_err), "connect to %s: %s",
	    addr, why);
	log_info(cl->sid, "smtpc connect-failed target=%s addr=%s error=\"%s\"",
	    cl->t.name, addr, why);
}

/* Try the next address; fail once none is left. */
static void
connect_next(struct smtp_client *cl)
{
	char addr[INET6_ADDRSTRLEN + 10];

	for (;;) {
		struct addrinfo *ai = cl->ai_next;
		int fd;

		if (ai == NULL || cl->ntried >= SMTPC_MAX_ADDRS) {
			smtpc_fail(cl, false, 451, "4.4.1", "%s: %s", cl->t.name,
			    cl->last_err[0] ? cl->last_err : "no address");
			return;
		}
		cl->ai_next = ai->ai_next;
		cl->ntried++;
		addr_string(ai->ai_addr, addr, sizeof(addr));
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0) {
			connect_failed(cl, addr, strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			log_debug(cl->sid, "smtpc connected target=%s addr=%s",
			    cl->t.name, addr);
			smtpc_connected(cl, fd);
			return;
		}
		if (errno == EINPROGRESS) {
			cl->fd = fd;
			cl->stage = ST_CONNECT;
			ev_io_set(&cl->cio, fd, EV_WRITE);
			ev_io_start(cl->loop, &cl->cio);
			smtpc_arm(cl, SMTPC_TIMEOUT_CONNECT);
			return;
		}
		connect_failed(cl, addr, strerror(errno));
		close(fd);
	}
}

static void
connect_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct smtp_client *cl = w->data;
	char addr[INET6_ADDRSTRLEN + 10];
	int err = 0, fd = cl->fd;
	socklen_t len = sizeof(err);

	(void)loop;
	(void)revents;
	ev_io_stop(cl->loop, &cl->cio);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0) {
		smtpc_connected(cl, fd);
		return;
	}
	/* The address just tried is the one before ai_next. */
	snprintf(addr, sizeof(addr), "%s", cl->t.name);
	for (struct addrinfo *ai = cl->ai; ai != NULL; ai = ai->ai_next)
		if (ai->ai_next == cl->ai_next)
			addr_string(ai->ai_addr, addr, sizeof(addr));
	connect_failed(cl, addr, strerror(err));
	close(fd);
	cl->fd = -1;
	connect_next(cl);
}

static void
connect_unix(struct smtp_client *cl)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, cl->t.path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		smtpc_connected(cl, fd);
		return;
	}
	/* A unix connect completes at once or fails (EAGAIN: backlog full). */
	connect_failed(cl, cl->t.path, strerror(errno));
	if (fd >= 0)
		close(fd);
	smtpc_fail(cl, false, 451, "4.4.1", "%s", cl->last_err);
}

static void
resolve_run(struct work *w)
{
	struct resolve_job *j = (struct resolve_job *)w;
	struct addrinfo hints;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	j->rc = getaddrinfo(j->host, j->port, &hints, &j->res);
}

static void
resolve_done(struct work *w)
{
	struct resolve_job *j = (struct resolve_job *)w;
	struct smtp_client *cl = j->cl;

	if (cl == NULL) {
		/* Let go (cancelled, timed out): only clean up. */
		if (j->rc == 0)
			freeaddrinfo(j->res);
		free(j);
		return;
	}
	cl->job = NULL;
	ev_timer_stop(cl->loop, &cl->timer);
	if (j->rc != 0) {
		bool perm = j->rc == EAI_NONAME || j->rc == EAI_NODATA;

		smtpc_fail(cl, false, 451, perm ? "4.4.4" : "4.4.3",
		    "%s: cannot resolve %s: %s", cl->t.name, cl->t.host,
		    gai_strerror(j->rc));
		free(j);
		return;
	}
	cl->ai = cl->ai_next = j->res;
	free(j);
	connect_next(cl);
}

static void
start_tcp(struct smtp_client *cl)
{
	struct addrinfo hints, *res;
	struct resolve_job *j;

	/* A numeric address needs no worker thread. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(cl->t.host, cl->t.port, &hints, &res) == 0) {
		cl->ai = cl->ai_next = res;
		connect_next(cl);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->cl = cl;
	memcpy(j->host, cl->t.host, sizeof(j->host));
	memcpy(j->port, cl->t.port, sizeof(j->port));
	j->work.run = resolve_run;
	j->work.done = resolve_done;
	cl->job = j;
	cl->stage = ST_RESOLVE;
	smtpc_arm(cl, SMTPC_TIMEOUT_CONNECT);
	workq_submit(workq_resolve, &j->work);
}

void
smtpc_connect_init(struct smtp_client *cl)
{
	ev_init(&cl->cio, connect_cb);
	cl->cio.data = cl;
}

void
smtpc_connect(struct smtp_client *cl)
{
	if (cl->t.is_unix)
		connect_unix(cl);
	else
		start_tcp(cl);
}

void
smtpc_connect_timeout(struct smtp_client *cl)
{
	ev_io_stop(cl->loop, &cl->cio);
	close(cl->fd);
	cl->fd = -1;
	snprintf(cl->last_err, sizeof(cl->last_err), "connect to %s: timed out",
	    cl->t.name);
	connect_next(cl);
}

void
smtpc_resolve_abandon(struct smtp_client *cl)
{
	if (cl->job != NULL)
		cl->job->cl = NULL;	/* it frees itself */
	cl->job = NULL;
}
