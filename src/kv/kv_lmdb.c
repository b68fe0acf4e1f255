/*
 * kv_lmdb.c — the embedded kv backend on LMDB (see kv.h for where its
 * transactions run and what survives a crash).
 *
 * Entry format: key -> [expiry, 8 bytes big-endian, milliseconds since the
 * epoch, 0 = none][value bytes].  Keys shorter than mdb_env_get_maxkeysize()
 * are stored as they are; a longer key (up to KV_KEY_MAX) as its first
 * maxkey - 32 bytes and the SHA-256 of all of it, exactly maxkey bytes, a
 * length no plain key has, so the two forms cannot meet.
 *
 * Owns: the MDB_env, one unnamed database, the sweep and sync timers, and
 * the sync job (struct lmdb_sync), which may outlive the store: a sync
 * running on the disk pool when kv_close() comes is let finish (close
 * waits on its lock), and its completion on the loop frees it later.
 *
 * SECURITY: values read back are checked against KV_VALUE_MAX before
 * they are copied; an entry shorter than its header counts as absent and
 * is overwritten by the next write.
 */
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/kv_int.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/workq.h"
#include "util/xmalloc.h"

#define LMDB_HDR	8	/* the expiry in front of every value */
#define LMDB_HASH	32	/* SHA-256 of a long key */
#define LMDB_MODE	0600

struct lmdb_sync {
	struct work	 work;		/* first: the workq hands it back */
	pthread_mutex_t	 lock;		/* held by run() while it syncs */
	MDB_env		*env;		/* NULL once the store closed */
	struct kv_lmdb	*owner;		/* NULL once orphaned: done() frees */
	bool		 busy;
};

struct kv_lmdb {
	MDB_env		*env;
	MDB_dbi		 dbi;
	size_t		 maxkey;
	ev_timer	 sweep;
	ev_timer	 sync;
	struct lmdb_sync *job;
	bool		 dirty;		/* written since the last sync began */
	unsigned char	*sweep_from;	/* maxkey bytes: where to resume */
	size_t		 sweep_len;	/* 0: from the start */
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t
get_be64(const void *p)
{
	const unsigned char *b = p;
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void
put_be64(void *p, uint64_t v)
{
	unsigned char *b = p;

	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (unsigned char)v;
}

/* The stored form of a key; buf holds at least maxkey bytes. */
static void
map_key(const struct kv_lmdb *l, const struct kv_args *a,
    unsigned char *buf, MDB_val *k)
{
	if (a->klen < l->maxkey) {
		k->mv_data = (void *)a->key;
		k->mv_size = a->klen;
		return;
	}
	memcpy(buf, a->key, l->maxkey - LMDB_HASH);
	if (EVP_Digest(a->key, a->klen, buf + l->maxkey - LMDB_HASH, NULL,
	    EVP_sha256(), NULL) != 1)
		fatalx("kv lmdb: SHA-256 failed");
	k->mv_data = buf;
	k->mv_size = l->maxkey;
}

/*
 * Look a key up: 0 with the value (header stripped) and its expiry if it
 * is there and not expired, MDB_NOTFOUND if not, or an LMDB error.
 */
static int
lookup(struct kv_lmdb *l, MDB_txn *txn, MDB_val *k, int64_t now_ms,
    MDB_val *v, uint64_t *expiry)
{
	MDB_val d;
	int rc;

	if ((rc = mdb_get(txn, l->dbi, k, &d)) != 0)
		return rc;
	if (d.mv_size < LMDB_HDR)
		return MDB_NOTFOUND;
	*expiry = get_be64(d.mv_data);
	if (*expiry != 0 && *expiry <= (uint64_t)now_ms)
		return MDB_NOTFOUND;
	v->mv_data = (char *)d.mv_data + LMDB_HDR;
	v->mv_size = d.mv_size - LMDB_HDR;
	return 0;
}

static int
store(struct kv_lmdb *l, MDB_txn *txn, MDB_val *k, uint64_t expiry,
    const void *val, size_t vlen)
{
	MDB_val d = { .mv_size = LMDB_HDR + vlen };
	int rc;

	if ((rc = mdb_put(txn, l->dbi, k, &d, MDB_RESERVE)) != 0)
		return rc;
	put_be64(d.mv_data, expiry);
	memcpy((char *)d.mv_data + LMDB_HDR, val, vlen);
	l->dirty = true;
	return 0;
}

static const char *
lmdb_error(int rc)
{
	if (rc == MDB_MAP_FULL)
		return "store full (map_size)";
	return mdb_strerror(rc);
}

/* Copy v out (the txn ends before the answer); NULL if over the bound. */
static char *
copy_out(struct kv_req *req, const MDB_val *v)
{
	if (v->mv_size > KV_VALUE_MAX)
		return NULL;
	free(req->copy);
	req->copy = xmalloc(v->mv_size);
	memcpy(req->copy, v->mv_data, v->mv_size);
	return req->copy;
}

/* One request in one transaction; fills res (status KV_OK unless not). */
static int
run_txn(struct kv_lmdb *l, struct kv_req *req, MDB_txn *txn,
    struct kv_result *res)
{
	const struct kv_args *a = &req->a;
	unsigned char kbuf[KV_KEY_MAX + LMDB_HASH];
	int64_t now = now_us(), now_ms = now / 1000, tat = 0, new_tat;
	char num[24];
	uint64_t expiry = 0;
	long long n;
	MDB_val k, v;
	int rc, found;

	map_key(l, a, kbuf, &k);
	found = lookup(l, txn, &k, now_ms, &v, &expiry);
	if (found != 0 && found != MDB_NOTFOUND)
		return found;
	res->status = KV_OK;
	switch (req->op) {
	case KV_OP_GET:
		if (found != 0) {
			res->status = KV_NOTFOUND;
			return 0;
		}
		if ((res->value = copy_out(req, &v)) == NULL)
			goto too_big;
		res->vlen = v.mv_size;
		return 0;
	case KV_OP_SET:
		if (found == 0 && (a->flags & KV_NX)) {
			if ((res->value = copy_out(req, &v)) == NULL)
				goto too_big;
			res->vlen = v.mv_size;
			return 0;
		}
		expiry = a->ttl ? (uint64_t)now_ms + a->ttl * 1000ull : 0;
		res->set = true;
		return store(l, txn, &k, expiry, a->val, a->vlen);
	case KV_OP_INCR:
		if (found == 0) {
			if (kv_parse_ll(v.mv_data, v.mv_size, &n) != 0) {
				res->status = KV_ERROR;
				res->error = "value is not an integer";
				return 0;
			}
			if (__builtin_add_overflow(n, a->delta, &n)) {
				res->status = KV_ERROR;
				res->error = "increment would overflow";
				return 0;
			}
		} else {
			n = a->delta;
			expiry = a->ttl ? (uint64_t)now_ms + a->ttl * 1000ull : 0;
		}
		res->integer = n;
		snprintf(num, sizeof(num), "%lld", n);
		return store(l, txn, &k, expiry, num, strlen(num));
	case KV_OP_DEL:
		res->integer = found == 0;
		rc = mdb_del(txn, l->dbi, &k, NULL);
		if (rc == 0)
			l->dirty = true;
		return rc == MDB_NOTFOUND ? 0 : rc;
	case KV_OP_GCRA:
		/* Not an integer: someone else's key; start afresh. */
		if (found == 0 && (kv_parse_ll(v.mv_data, v.mv_size, &n) != 0 ||
		    (tat = n) < 0))
			tat = 0;
		if (!kv_gcra_step(now, tat, a, &new_tat, res) || a->cost == 0)
			return 0;
		snprintf(num, sizeof(num), "%lld", (long long)new_tat);
		/* Past new_tat the state means nothing: let it expire. */
		expiry = (uint64_t)(new_tat + 999) / 1000;
		return store(l, txn, &k, expiry, num, strlen(num));
	}
	return 0;
too_big:
	res->status = KV_ERROR;
	res->error = "stored value too large";
	res->value = NULL;
	return 0;
}

static void
lmdb_run(struct kv *kv, struct kv_req *req)
{
	struct kv_lmdb *l = kv->be;
	struct kv_result res = { .status = KV_OK };
	bool rdonly = req->op == KV_OP_GET;
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(l->env, NULL, rdonly ? MDB_RDONLY : 0, &txn);
	if (rc == 0) {
		rc = run_txn(l, req, txn, &res);
		if (rc != 0 || rdonly || res.status != KV_OK)
			mdb_txn_abort(txn);
		else
			rc = mdb_txn_commit(txn);
	}
	if (rc != 0) {
		memset(&res, 0, sizeof(res));
		res.status = KV_ERROR;
		res.error = lmdb_error(rc);
	}
	kv_req_answer(req, &res);
	kv_req_free(req);
}

static void
lmdb_submit(struct kv *kv, struct kv_req *req)
{
	struct kv_args *a = &req->a;

	/* The request runs next iteration: keep copies of key and value. */
	req->copy = xmalloc(a->klen + a->vlen);
	memcpy(req->copy, a->key, a->klen);
	if (a->vlen > 0)
		memcpy(req->copy + a->klen, a->val, a->vlen);
	a->key = req->copy;
	a->val = req->copy + a->klen;
	kv_req_queue(req);
}

static void
lmdb_cancel(struct kv *kv, struct kv_req *req)
{
	(void)kv;
	(void)req;
	/* LMDB requests are never KV_RS_SENT. */
	abort();
}

/* ---- expiry sweep ---------------------------------------------------- */

static void
sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kv_lmdb *l = w->data;
	uint64_t now_ms = (uint64_t)(now_us() / 1000);
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, d;
	int rc, n;

	(void)loop;
	(void)revents;
	if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_cursor_open(txn, l->dbi, &cur)) != 0)
		goto fail;
	k.mv_data = l->sweep_from;
	k.mv_size = l->sweep_len;
	rc = mdb_cursor_get(cur, &k, &d, l->sweep_len ? MDB_SET_RANGE :
	    MDB_FIRST);
	for (n = 0; rc == 0 && n < KV_LMDB_SWEEP_BATCH; n++) {
		uint64_t exp = d.mv_size >= LMDB_HDR ? get_be64(d.mv_data) : 1;

		if (exp != 0 && exp <= now_ms) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				goto fail;
			l->dirty = true;
		}
		/* After a delete the cursor already stands on the next key. */
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND) {
		l->sweep_len = 0;	/* the end: next sweep starts over */
	} else if (rc == 0) {
		memcpy(l->sweep_from, k.mv_data, k.mv_size);
		l->sweep_len = k.mv_size;
	} else {
		goto fail;
	}
	mdb_cursor_close(cur);
	if ((rc = mdb_txn_commit(txn)) != 0)
		log_warn(0, "kv lmdb sweep failed: %s", lmdb_error(rc));
	return;
fail:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	log_warn(0, "kv lmdb sweep failed: %s", lmdb_error(rc));
}

/* ---- periodic sync on the disk pool ---------------------------------- */

static void
sync_run(struct work *w)
{
	struct lmdb_sync *job = (struct lmdb_sync *)w;
	int rc = 0;

	pthread_mutex_lock(&job->lock);
	if (job->env != NULL)
		rc = mdb_env_sync(job->env, 1);
	pthread_mutex_unlock(&job->lock);
	if (rc != 0)
		log_warn(0, "kv lmdb sync failed: %s", mdb_strerror(rc));
}

static void
sync_done(struct work *w)
{
	struct lmdb_sync *job = (struct lmdb_sync *)w;

	if (job->owner == NULL) {
		pthread_mutex_destroy(&job->lock);
		free(job);
		return;
	}
	job->busy = false;
}

static void
sync_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kv_lmdb *l = w->data;

	(void)loop;
	(void)revents;
	if (!l->dirty || l->job->busy || workq_disk == NULL)
		return;
	l->dirty = false;
	l->job->busy = true;
	workq_submit(workq_disk, &l->job->work);
}

/* ---- open and close -------------------------------------------------- */

static int
lmdb_open(struct kv *kv, const struct kv_config *cfg, char *err,
    size_t errlen)
{
	size_t map = cfg->map_size ? cfg->map_size : KV_LMDB_MAP_SIZE_DEFAULT;
	double sweep = cfg->sweep_interval ? cfg->sweep_interval :
	    KV_LMDB_SWEEP_INTERVAL;
	struct kv_lmdb *l;
	MDB_txn *txn;
	int rc, dead;

	if (cfg->path == NULL || cfg->path[0] == '\0' ||
	    strlen(cfg->path) >= PATH_MAX) {
		snprintf(err, errlen, "kv lmdb: path missing or too long");
		return -1;
	}
	if (!isfinite(sweep) || sweep < 0.001 || sweep > KV_TTL_MAX) {
		snprintf(err, errlen, "kv lmdb: sweep_interval out of range");
		return -1;
	}
	if (mkdir_p(cfg->path, 0700) != 0) {
		snprintf(err, errlen, "kv lmdb: %s: %s", cfg->path,
		    strerror(errno));
		return -1;
	}
	l = xcalloc(1, sizeof(*l));
	if ((rc = mdb_env_create(&l->env)) != 0)
		goto fail;
	if ((rc = mdb_env_set_mapsize(l->env, map)) != 0 ||
	    (rc = mdb_env_open(l->env, cfg->path, MDB_NOSYNC | MDB_NOMETASYNC,
	    LMDB_MODE)) != 0)
		goto fail_env;
	/* Reader slots left by a process that died. */
	mdb_reader_check(l->env, &dead);
	if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0)
		goto fail_env;
	if ((rc = mdb_dbi_open(txn, NULL, 0, &l->dbi)) != 0) {
		mdb_txn_abort(txn);
		goto fail_env;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail_env;
	l->maxkey = (size_t)mdb_env_get_maxkeysize(l->env);
	if (l->maxkey <= LMDB_HASH + 1) {
		rc = EINVAL;
		goto fail_env;
	}
	l->sweep_from = xmalloc(l->maxkey);
	l->job = xcalloc(1, sizeof(*l->job));
	pthread_mutex_init(&l->job->lock, NULL);
	l->job->work.run = sync_run;
	l->job->work.done = sync_done;
	l->job->env = l->env;
	l->job->owner = l;
	/* Housekeeping timers must not keep an idle loop running. */
	ev_timer_init(&l->sweep, sweep_cb, sweep, sweep);
	l->sweep.data = l;
	ev_timer_start(kv->loop, &l->sweep);
	ev_unref(kv->loop);
	ev_timer_init(&l->sync, sync_cb, KV_LMDB_SYNC_INTERVAL,
	    KV_LMDB_SYNC_INTERVAL);
	l->sync.data = l;
	ev_timer_start(kv->loop, &l->sync);
	ev_unref(kv->loop);
	kv->be = l;
	return 0;
fail_env:
	mdb_env_close(l->env);
fail:
	snprintf(err, errlen, "kv lmdb: %s: %s", cfg->path, lmdb_error(rc));
	free(l);
	return -1;
}

static void
lmdb_close(struct kv *kv)
{
	struct kv_lmdb *l = kv->be;
	struct lmdb_sync *job = l->job;
	int rc;

	ev_ref(kv->loop);
	ev_timer_stop(kv->loop, &l->sweep);
	ev_ref(kv->loop);
	ev_timer_stop(kv->loop, &l->sync);
	if (job->busy) {
		/* Waits for a sync in progress; afterwards run() skips it. */
		pthread_mutex_lock(&job->lock);
		job->env = NULL;
		job->owner = NULL;
		pthread_mutex_unlock(&job->lock);
	} else {
		pthread_mutex_destroy(&job->lock);
		free(job);
	}
	if ((rc = mdb_env_sync(l->env, 1)) != 0)
		log_warn(0, "kv lmdb sync at close failed: %s",
		    mdb_strerror(rc));
	mdb_env_close(l->env);
	free(l->sweep_from);
	free(l);
}

const struct kv_ops kv_lmdb_ops = {
	.name = "lmdb",
	.open = lmdb_open,
	.close = lmdb_close,
	.submit = lmdb_submit,
	.run = lmdb_run,
	.cancel = lmdb_cancel,
};
