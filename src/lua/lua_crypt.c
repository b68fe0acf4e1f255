/*
 * lua_crypt.c — password hashes checked off the event loop.
 *
 *   smtp.crypt_check(password, hash) -> true | false      (yields)
 *
 * crypt(3) is slow on purpose (yescrypt and SHA-512 crypt take
 * milliseconds, more with higher costs): run on the event loop it would
 * stall every session and no watchdog could stop it.  crypt_rn() runs on
 * the CPU pool with its own struct crypt_data (reentrant), and the result
 * is compared in constant time.  A hash crypt does not understand is
 * simply "false".
 *
 * SECURITY: the password is copied into the job and wiped when the job is
 * freed; it never reaches a log line.  Bounds: SMTP_AUTH_LINE_MAX for the
 * password (it came from an AUTH line), 512 bytes for the hash.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_vm.h"
#include "task/task.h"
#include "util/limits.h"
#include "util/workq.h"
#include "util/xmalloc.h"

#define CRYPT_HASH_MAX	512

struct crypt_job {
	struct lb_work		 lw;		/* first */
	char			*password;
	size_t			 passlen;
	char			*hash;
	bool			 match;
	struct crypt_data	 data;
};

static void
crypt_run(struct lb_work *lw)
{
	struct crypt_job *j = (struct crypt_job *)lw;
	const char *out;
	size_t n, m;
	unsigned char diff = 0;

	memset(&j->data, 0, sizeof(j->data));
	out = crypt_rn(j->password, j->hash, &j->data, (int)sizeof(j->data));
	/* "*0"-style failure tokens never equal a valid hash (they start
	 * with '*'), but a NULL must not be compared at all. */
	if (out == NULL || out[0] == '*')
		return;
	n = strlen(out);
	m = strlen(j->hash);
	for (size_t i = 0; i < n && i < m; i++)
		diff |= (unsigned char)(out[i] ^ j->hash[i]);
	j->match = diff == 0 && n == m;
}

static int
crypt_push(lua_State *L, struct lb_work *lw)
{
	struct crypt_job *j = (struct crypt_job *)lw;

	lua_pushboolean(L, j->match);
	return 1;
}

static void
crypt_free(struct lb_work *lw)
{
	struct crypt_job *j = (struct crypt_job *)lw;

	explicit_bzero(j->password, j->passlen);
	explicit_bzero(&j->data, sizeof(j->data));
	free(j->password);
	free(j->hash);
	free(j);
}

static const struct task_op_ops crypt_ops = {
	.name = "crypt_check",
	.push = lb_work_push,
	.cancel = lb_work_cancel,
	.free = lb_work_free,
};

static int
lb_crypt_check_start(lua_State *L)
{
	size_t plen, hlen;
	const char *pass = luaL_checklstring(L, 1, &plen);
	const char *hash = luaL_checklstring(L, 2, &hlen);
	struct task_op *op;
	struct crypt_job *j;

	if (plen > SMTP_AUTH_LINE_MAX || memchr(pass, '\0', plen) != NULL)
		return luaL_argerror(L, 1, "a password of at most 12288 bytes "
		    "without NUL");
	if (hlen == 0 || hlen > CRYPT_HASH_MAX || memchr(hash, '\0', hlen))
		return luaL_argerror(L, 2, "a crypt(3) hash");
	op = task_op_begin(L, &crypt_ops, NULL, 0);
	j = xcalloc(1, sizeof(*j));
	j->password = xstrndup(pass, plen);
	j->passlen = plen;
	j->hash = xstrndup(hash, hlen);
	j->lw.run = crypt_run;
	j->lw.push = crypt_push;
	j->lw.free = crypt_free;
	return lb_work_yield(L, op, workq_cpu, &j->lw);
}

void
lb_crypt_register(lua_State *L)
{
	lb_task_wrap(L, lb_crypt_check_start, "crypt_check");
	lua_setfield(L, -2, "crypt_check");
}
