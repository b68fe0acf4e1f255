/*
 * test_kv_lmdb.c — the kv store on LMDB (src/kv/kv_lmdb.c), built with
 * ASan and UBSan and run by spec/unit/kv_spec.lua:
 *
 *	test_kv_lmdb DIR
 *
 * Each case opens a fresh environment under DIR (the spec's temp dir).
 * The cases shared with Redis are in kv_harness.h; here are those only
 * LMDB has: a restart keeps the data, the sweep deletes expired entries,
 * a full map, keys around LMDB's key size, bad configs.
 */
#include <lmdb.h>
#include <limits.h>
#include <stdlib.h>

#include "kv_harness.h"
#include "util/workq.h"

static char	base[PATH_MAX];

static struct kv *
open_lmdb(const char *name, size_t map, double sweep, unsigned inflight)
{
	char path[PATH_MAX], err[256];
	struct kv_config cfg = {
		.backend = "lmdb",
		.path = path,
		.map_size = map,
		.sweep_interval = sweep,
		.max_inflight = inflight,
	};
	struct kv *kv;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	if ((kv = kv_open(kvh_loop, &cfg, err, sizeof(err))) == NULL)
		unit_fail(__FILE__, __LINE__, "kv_open %s: %s", name, err);
	CHECK_STR(kv_backend_name(kv), "lmdb");
	return kv;
}

#define SHARED(fn, name) static void					\
lmdb_##fn(void)								\
{									\
	struct kv *kv = open_lmdb(name, 0, 0, 0);			\
	kvh_case_##fn(kv);						\
	kv_close(kv);							\
}
SHARED(get_set, "get_set")
SHARED(ttl, "ttl")
SHARED(nx, "nx")
SHARED(incr, "incr")
SHARED(incr_errors, "incr_errors")
SHARED(del, "del")
SHARED(gcra, "gcra")
SHARED(bounds, "bounds")
SHARED(cancel, "cancel")
SHARED(chain, "chain")

static void
lmdb_busy(void)
{
	struct kv *kv = open_lmdb("busy", 0, 0, 4);

	kvh_case_busy(kv);
	kv_close(kv);
}

static void
lmdb_close_pending(void)
{
	kvh_case_close_pending(open_lmdb("close_pending", 0, 0, 0));
}

static void
lmdb_not_synchronous(void)
{
	struct kv *kv = open_lmdb("sync", 0, 0, 0);
	struct cap *c;

	REQ(c, kv_get(kv, S("x"), kvh_cb, c));
	CHECK_INT(c->calls, 0);
	REQ(c, kv_get(kv, S(""), kvh_cb, c));	/* refused at once */
	CHECK_INT(c->calls, 0);
	WAIT(c, KV_ERROR);
	kv_close(kv);
}

/* What a clean restart keeps: every key, its TTL, counters, limits. */
static void
lmdb_survives_reopen(void)
{
	struct kv *kv = open_lmdb("reopen", 0, 0, 0);
	struct cap *c, *d, *e;

	REQ(c, kv_set(kv, S("greylist"), S("1700000000"), 0, 0, kvh_cb, c));
	REQ(d, kv_set(kv, S("soon"), S("x"), 1, 0, kvh_cb, d));
	REQ(e, kv_incr(kv, S("count"), 7, 3600, kvh_cb, e));
	WAIT(c, KV_OK);
	WAIT(d, KV_OK);
	WAIT(e, KV_OK);
	for (int i = 0; i < 2; i++) {
		REQ(c, kv_gcra(kv, S("limit"), 0.01, 2, 1, kvh_cb, c));
		WAIT(c, KV_OK);
		CHECK(c->allowed);
	}
	kv_close(kv);

	kv = open_lmdb("reopen", 0, 0, 0);
	REQ(c, kv_get(kv, S("greylist"), kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_MEM(c->value, c->vlen, "1700000000", 10);
	REQ(c, kv_incr(kv, S("count"), 1, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK_INT(c->integer, 8);
	REQ(c, kv_gcra(kv, S("limit"), 0.01, 2, 1, kvh_cb, c));
	WAIT(c, KV_OK);
	CHECK(!c->allowed);
	kvh_sleep(1.2);
	REQ(c, kv_get(kv, S("soon"), kvh_cb, c));
	WAIT(c, KV_NOTFOUND);
	kv_close(kv);
}

static size_t
raw_entries(const char *name)
{
	char path[PATH_MAX];
	MDB_env *env;
	MDB_txn *txn;
	MDB_stat st;
	MDB_dbi dbi;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	CHECK(mdb_env_create(&env) == 0);
	CHECK(mdb_env_open(env, path, MDB_RDONLY, 0600) == 0);
	CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0);
	CHECK(mdb_dbi_open(txn, NULL, 0, &dbi) == 0);
	CHECK(mdb_stat(txn, dbi, &st) == 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return st.ms_entries;
}

/*
 * 2600 keys expire (2 s, time enough to write them all); sweeps of at most KV_LMDB_SWEEP_BATCH keys every
 * 0.1 s remove them all, and only them.
 */
static void
lmdb_sweep(void)
{
	struct kv *kv = open_lmdb("sweep", 0, 0.1, 0);
	struct cap *c[200];
	char key[32];
	size_t mark = unit_mark();

	for (int n = 0; n < 13; n++) {
		for (int i = 0; i < 200; i++) {
			snprintf(key, sizeof(key), "k%d", n * 200 + i);
			REQ(c[i], kv_set(kv, S(key), S("v"), 2, 0, kvh_cb,
			    c[i]));
		}
		CHECK(kvh_wait_all(c, 200, KVH_WAIT));
		unit_release(mark);
	}
	REQ(c[0], kv_set(kv, S("keep"), S("v"), 0, 0, kvh_cb, c[0]));
	WAIT(c[0], KV_OK);
	kv_close(kv);
	CHECK_INT(raw_entries("sweep"), 2601);
	kv = open_lmdb("sweep", 0, 0.1, 0);
	kvh_sleep(2.8);
	kv_close(kv);
	CHECK_INT(raw_entries("sweep"), 1);
}

/* A map too small for a value: KV_ERROR, and the store still works. */
static void
lmdb_map_full(void)
{
	struct kv *kv = open_lmdb("full", 256 * 1024, 0, 0);
	char *val = unit_alloc(KV_VALUE_MAX);
	struct cap *c;

	memset(val, 'v', KV_VALUE_MAX);
	REQ(c, kv_set(kv, S("big"), val, KV_VALUE_MAX, 0, 0, kvh_cb, c));
	WAIT(c, KV_ERROR);
	CHECK_STR(c->error, "store full (map_size)");
	REQ(c, kv_set(kv, S("small"), S("v"), 0, 0, kvh_cb, c));
	WAIT(c, KV_OK);
	REQ(c, kv_get(kv, S("small"), kvh_cb, c));
	WAIT(c, KV_OK);
	kv_close(kv);
}

/* Keys just under, at and over LMDB's own key size are all distinct. */
static void
lmdb_key_sizes(void)
{
	struct kv *kv = open_lmdb("keysizes", 0, 0, 0);
	char key[600], val[8];
	struct cap *c;
	size_t lens[] = { 509, 510, 511, 512, 543, 544, 600 };
	size_t n = sizeof(lens) / sizeof(lens[0]);

	memset(key, 'x', sizeof(key));
	for (size_t i = 0; i < n; i++) {
		snprintf(val, sizeof(val), "%zu", lens[i]);
		REQ(c, kv_set(kv, key, lens[i], S(val), 0, 0, kvh_cb, c));
		WAIT(c, KV_OK);
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(val, sizeof(val), "%zu", lens[i]);
		REQ(c, kv_get(kv, key, lens[i], kvh_cb, c));
		WAIT(c, KV_OK);
		CHECK_MEM(c->value, c->vlen, val, strlen(val));
	}
	kv_close(kv);
	CHECK_INT(raw_entries("keysizes"), n);
}

static void
lmdb_bad_config(void)
{
	char err[256], file[PATH_MAX];
	struct kv_config cfg = { .backend = "memcached" };
	FILE *f;

	err[0] = '\0';
	CHECK(kv_open(kvh_loop, &cfg, err, sizeof(err)) == NULL);
	CHECK(err[0] != '\0');
	cfg.backend = NULL;	/* lmdb */
	CHECK(kv_open(kvh_loop, &cfg, err, sizeof(err)) == NULL);
	snprintf(file, sizeof(file), "%s/a_file", base);
	CHECK((f = fopen(file, "w")) != NULL);
	fclose(f);
	cfg.path = file;
	err[0] = '\0';
	CHECK(kv_open(kvh_loop, &cfg, err, sizeof(err)) == NULL);
	CHECK(err[0] != '\0');
	cfg.path = base;
	cfg.sweep_interval = -1;
	CHECK(kv_open(kvh_loop, &cfg, err, sizeof(err)) == NULL);
	cfg.sweep_interval = 0;
	cfg.max_inflight = 2000000;
	CHECK(kv_open(kvh_loop, &cfg, err, sizeof(err)) == NULL);
}

static void
lmdb_parse_ll(void)
{
	long long v;

	CHECK(kv_parse_ll(S("0"), &v) == 0 && v == 0);
	CHECK(kv_parse_ll(S("-42"), &v) == 0 && v == -42);
	CHECK(kv_parse_ll(S("9223372036854775807"), &v) == 0 &&
	    v == LLONG_MAX);
	CHECK(kv_parse_ll(S("-9223372036854775808"), &v) == 0 &&
	    v == LLONG_MIN);
	CHECK(kv_parse_ll(S("9223372036854775808"), &v) != 0);
	CHECK(kv_parse_ll(S("-9223372036854775809"), &v) != 0);
	CHECK(kv_parse_ll(S(""), &v) != 0);
	CHECK(kv_parse_ll(S("-"), &v) != 0);
	CHECK(kv_parse_ll(S("-0"), &v) != 0);
	CHECK(kv_parse_ll(S("01"), &v) != 0);
	CHECK(kv_parse_ll(S("+1"), &v) != 0);
	CHECK(kv_parse_ll(S(" 1"), &v) != 0);
	CHECK(kv_parse_ll(S("1x"), &v) != 0);
}

static const struct unit_case cases[] = {
	{ "lmdb get and set, binary values", lmdb_get_set },
	{ "lmdb answers only from the loop", lmdb_not_synchronous },
	{ "lmdb ttl expires a key", lmdb_ttl },
	{ "lmdb set NX sets once and returns the value there", lmdb_nx },
	{ "lmdb incr counts and sets the ttl only on create", lmdb_incr },
	{ "lmdb incr of a non-integer or past the range is an error",
	    lmdb_incr_errors },
	{ "lmdb del says whether a key was removed", lmdb_del },
	{ "lmdb gcra allows burst then refuses with retry_after", lmdb_gcra },
	{ "lmdb keys and values at their bound pass and one more is refused",
	    lmdb_bounds },
	{ "lmdb cancelled requests never call back", lmdb_cancel },
	{ "lmdb past max_inflight is busy", lmdb_busy },
	{ "lmdb a callback may make the next request", lmdb_chain },
	{ "lmdb close with requests pending calls nothing back",
	    lmdb_close_pending },
	{ "lmdb data survives close and reopen", lmdb_survives_reopen },
	{ "lmdb the sweep deletes expired keys in batches", lmdb_sweep },
	{ "lmdb a full map is an error and the store goes on", lmdb_map_full },
	{ "lmdb keys around the LMDB key size stay distinct", lmdb_key_sizes },
	{ "lmdb bad configs are refused", lmdb_bad_config },
	{ "kv_parse_ll takes what Redis INCR takes", lmdb_parse_ll },
};

int
main(int argc, char **argv)
{
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: test_kv_lmdb DIR\n");
		return 2;
	}
	snprintf(base, sizeof(base), "%s", argv[1]);
	kvh_loop = ev_default_loop(0);
	workq_disk = workq_new(kvh_loop, "disk", 1);
	rc = unit_run(cases, sizeof(cases) / sizeof(cases[0]));
	/* Let orphaned sync jobs complete (and free themselves). */
	for (int i = 0; i < 200 && workq_pending(workq_disk) > 0; i++)
		kvh_sleep(0.01);
	workq_free(workq_disk);
	ev_loop_destroy(kvh_loop);
	printf("# done rc=%d\n", rc);
	return rc;
}
