/*
 * dkim_test_util.h — what the DKIM drivers (test_dkim.c, test_dkim_stream.c)
 * share: the resolver and pools against spec/support/dns.lua's NSD, keys
 * from spec/fixtures/dkim/, signing and verifying with a bounded wait, and
 * dkimpy (spec/fixtures/dkim/dkimpy_tool.py, /usr/bin/python3) run on
 * files under a temporary directory.
 *
 * Callbacks only copy; checks run after the loop returned.
 */
#ifndef LUASMTPD_DKIM_TEST_UTIL_H
#define LUASMTPD_DKIM_TEST_UTIL_H

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "dns_test_util.h"
#include "mailauth/dkim.h"
#include "util/workq.h"

#define WAIT_S		30.0
#define FIX		"spec/fixtures/dkim/"
#define PYTHON		"/usr/bin/python3"
#define TOOL		PYTHON " " FIX "dkimpy_tool.py"
#define TOOL_OUT_MAX	4096

static struct ev_loop	*loop;
static struct dns_ctx	*dns;
static struct test_env	 env;
static char		 tmpdir[64];
static int		 dns_port;

static inline void
setup(void)
{
	char err[256];
	const char *at;

	if (dns != NULL)
		return;
	loop = ev_default_loop(0);
	workq_init_pools(loop, 1);
	dns = dns_new(loop, &env.cfg, err, sizeof(err));
	if (dns == NULL)
		unit_fail(__FILE__, __LINE__, "dns_new: %s", err);
	if (dkim_lib_init(err, sizeof(err)) != 0)
		unit_fail(__FILE__, __LINE__, "dkim_lib_init: %s", err);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/luasmtpd-dkim.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		unit_fail(__FILE__, __LINE__, "mkdtemp failed");
	at = strchr(env.servers[0], '@');
	dns_port = at != NULL ? atoi(at + 1) : 53;
}

static inline void
teardown(void)
{
	char cmd[128];

	if (dns == NULL)
		return;
	/* Let abandoned workers finish before the pools and resolver go. */
	test_run_for(loop, 0.2);
	workq_shutdown_pools();
	dns_free(dns);
	dkim_lib_shutdown();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
}

/* A case-owned path under the temporary directory. */
static inline char *
tmp_path(const char *name)
{
	char *p = unit_alloc(128);

	snprintf(p, 128, "%s/%s", tmpdir, name);
	return p;
}

static inline void
write_file(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, p, len) != (ssize_t)len)
		unit_fail(__FILE__, __LINE__, "cannot write %s", path);
	close(fd);
}

/* The whole file, NUL-terminated, case-owned; *len its length. */
static inline char *
read_file(const char *path, size_t *len)
{
	struct stat st;
	char *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0)
		unit_fail(__FILE__, __LINE__, "cannot read %s", path);
	p = unit_alloc((size_t)st.st_size + 1);
	if (read(fd, p, (size_t)st.st_size) != st.st_size)
		unit_fail(__FILE__, __LINE__, "short read of %s", path);
	close(fd);
	p[st.st_size] = '\0';
	if (len != NULL)
		*len = (size_t)st.st_size;
	return p;
}

static inline struct dkim_key *
key(const char *file)
{
	char err[256], path[128];
	struct dkim_key *k;

	snprintf(path, sizeof(path), FIX "%s", file);
	if ((k = dkim_key_load(path, err, sizeof(err))) == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	return k;
}

/* ---- our signer ------------------------------------------------------------- */

struct sgot {
	bool		 done;
	int		 calls;
	bool		 ok;
	char		 err[DKIM_REASON_MAX];
	char		*fields;
	size_t		 len;
};

static inline void
sign_cb(void *arg, const struct dkim_sign_result *r)
{
	struct sgot *g = arg;
	size_t n = 0;

	g->calls++;
	g->done = true;
	g->ok = r->ok;
	snprintf(g->err, sizeof(g->err), "%s", r->error);
	for (size_t i = 0; i < r->n; i++)
		n += r->len[i];
	g->fields = unit_alloc(n + 1);
	for (size_t i = 0; i < r->n; i++) {
		memcpy(g->fields + g->len, r->field[i], r->len[i]);
		g->len += r->len[i];
	}
	g->fields[g->len] = '\0';
}

/* Sign msg (in memory, or from fd at offset); the fields, or a failure. */
static inline struct sgot *
sign_any(const struct dkim_sign_opts *o, size_t n, int fd, uint64_t offset,
    const char *prefix, size_t prefixlen)
{
	struct sgot *g = unit_alloc(sizeof(*g));
	char err[256];

	memset(g, 0, sizeof(*g));
	if (dkim_sign_start(o, n, fd, offset, prefix, prefixlen, 20, sign_cb,
	    g, err, sizeof(err)) == NULL)
		unit_fail(__FILE__, __LINE__, "dkim_sign_start: %s", err);
	if (g->calls != 0)
		unit_fail(__FILE__, __LINE__, "callback inside dkim_sign_start");
	if (!test_run_until(loop, &g->done, WAIT_S))
		unit_fail(__FILE__, __LINE__, "no signing result");
	CHECK_INT(g->calls, 1);
	return g;
}

/* The signed message: our fields, then msg. */
static inline char *
sign_msg(const struct dkim_sign_opts *o, size_t n, const char *msg)
{
	struct sgot *g = sign_any(o, n, -1, 0, msg, strlen(msg));
	char *out;

	if (!g->ok)
		unit_fail(__FILE__, __LINE__, "signing failed: %s", g->err);
	out = unit_alloc(g->len + strlen(msg) + 1);
	memcpy(out, g->fields, g->len);
	strcpy(out + g->len, msg);
	return out;
}

/* ---- our verifier ------------------------------------------------------------ */

struct vgot {
	bool		 done;
	int		 calls;
	struct dkim_verify_result r;
};

static inline void
verify_cb(void *arg, const struct dkim_verify_result *r)
{
	struct vgot *g = arg;

	g->calls++;
	g->done = true;
	g->r = *r;
}

/* Verify msg[0..len) written step octets at a time. */
static inline struct dkim_verify_result *
verify_step(const char *msg, size_t len, const struct dkim_verify_opts *o,
    size_t step)
{
	struct vgot *g = unit_alloc(sizeof(*g));
	struct dkim_verify *v;

	memset(g, 0, sizeof(*g));
	v = dkim_verify_new(dns, -1, 0, o);
	for (size_t off = 0; off < len; off += step)
		dkim_verify_write(v, msg + off, len - off < step ? len - off :
		    step);
	dkim_verify_finish(v, verify_cb, g);
	if (g->calls != 0)
		unit_fail(__FILE__, __LINE__, "callback inside finish");
	if (!test_run_until(loop, &g->done, WAIT_S))
		unit_fail(__FILE__, __LINE__, "no verification result");
	CHECK_INT(g->calls, 1);
	return &g->r;
}

static inline struct dkim_verify_result *
verify(const char *msg)
{
	return verify_step(msg, strlen(msg), NULL, 4096);
}

#define CHECK_RES(got, want) do {					\
	const char *g_ = dkim_res_name(got), *w_ = (want);		\
	if (strcmp(g_, w_) != 0)					\
		unit_fail(__FILE__, __LINE__, "result %s, want %s",	\
		    g_, w_);						\
} while (0)

/* ---- dkimpy --------------------------------------------------------------- */

/* Run the tool with input on stdin; its exit status, output in out. */
static inline int
tool(const char *args, const char *input, size_t len, char *out,
    size_t outlen)
{
	char *in = tmp_path("tool.in"), *res = tmp_path("tool.out");
	char cmd[512];
	size_t n;
	char *o;
	int st;

	write_file(in, input, len);
	snprintf(cmd, sizeof(cmd), "%s %s < %s > %s 2>&1", TOOL, args, in, res);
	st = system(cmd);
	o = read_file(res, &n);
	snprintf(out, outlen, "%s", o);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* 0 if dkimpy verifies every signature of msg. */
static inline int
dkimpy_verify(const char *msg, char *out, size_t outlen)
{
	char args[32];

	snprintf(args, sizeof(args), "verify %d", dns_port);
	return tool(args, msg, strlen(msg), out, outlen);
}

/* msg signed by dkimpy as d=domain. */
static inline char *
dkimpy_sign_d(const char *keyfile, const char *sel, const char *domain,
    const char *canon, const char *flags, const char *msg)
{
	char args[256], *out = unit_alloc(2 * strlen(msg) + 8192);

	snprintf(args, sizeof(args), "sign " FIX "%s %s %s %s %s",
	    keyfile, sel, domain, canon, flags);
	if (tool(args, msg, strlen(msg), out, 2 * strlen(msg) + 8192) != 0)
		unit_fail(__FILE__, __LINE__, "dkimpy sign: %.200s", out);
	return out;
}

/* msg signed by dkimpy as d=dkim.test. */
static inline char *
dkimpy_sign(const char *keyfile, const char *sel, const char *canon,
    const char *flags, const char *msg)
{
	return dkimpy_sign_d(keyfile, sel, "dkim.test", canon, flags, msg);
}

#endif
