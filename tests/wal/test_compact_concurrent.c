/* test_compact_concurrent.c - compaction's rewrite runs beside the rest of
 * the warm tier (wal/compact.c, "SWAP"). A compaction filter ("gate")
 * holds a compaction partway through its rewrite; meanwhile:
 *   - appends, a rotation and engine_index_now index a new WAL file (the
 *     partition's segments grow, no WAL left unindexed), and retention
 *     runs on another topic (its old records go);
 *   - a cursor opened before the compaction reads every offset once;
 * then the gate opens and the compaction swaps its segments in: the
 * newest value of every key, the records appended meanwhile after them,
 * verify clean, the same after a reopen. Where compaction held warm_lock
 * for the whole rewrite, engine_index_now waited for the gate: each wait
 * here is bounded (WAIT_S) and fails the test instead of hanging it.
 *
 * The retry case: DeleteRecords moves the log start (and drops whole
 * segments) while the gate holds a compaction; the compaction sees its
 * inputs changed at the swap, discards its output and compacts again from
 * a new snapshot: the log start stays, no dropped segment comes back.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>

#include "warmutil.h"

#define NKEYS 50
#define NVERS 40
#define NMORE 200
#define T0 1700000000000LL
#define WAIT_S 60

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int64_t hold_at; /* the call that holds (1 = the first); 0 = none */
	int64_t calls;
	bool entered, open;
};

static struct gate g = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static int gate_fn(void *arg, const char *config_json, const struct engine_record *r)
{
	(void)arg;
	(void)config_json;
	(void)r;
	pthread_mutex_lock(&g.lock);
	if (++g.calls == g.hold_at) {
		g.entered = true;
		pthread_cond_broadcast(&g.cond);
		while (!g.open)
			pthread_cond_wait(&g.cond, &g.lock);
	}
	pthread_mutex_unlock(&g.lock);
	return 1;
}

static void gate_arm(int64_t at)
{
	pthread_mutex_lock(&g.lock);
	g.calls = 0;
	g.hold_at = at;
	g.entered = g.open = false;
	pthread_mutex_unlock(&g.lock);
}

static void gate_open(void)
{
	pthread_mutex_lock(&g.lock);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
}

static struct timespec deadline(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_S;
	return ts;
}

/* Wait (bounded) until the gate holds a compaction. */
static bool gate_wait_entered(void)
{
	struct timespec ts = deadline();
	int rc = 0;
	pthread_mutex_lock(&g.lock);
	while (!g.entered && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&g.cond, &g.lock, &ts);
	bool in = g.entered;
	pthread_mutex_unlock(&g.lock);
	return in;
}

/* A call on a thread of its own, waited for with a bound. */
struct call {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
	struct engine *e;
	struct partition *p;
	struct engine_compact_result res;
	int64_t arg;
	int (*fn)(struct call *);
	pthread_t tid;
};

static void *call_main(void *arg)
{
	struct call *c = arg;
	int rc = c->fn(c);
	pthread_mutex_lock(&c->lock);
	c->rc = rc;
	c->done = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void call_start(struct call *c, int (*fn)(struct call *))
{
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->done = false;
	c->fn = fn;
	if (pthread_create(&c->tid, NULL, call_main, c))
		bail("pthread_create");
}

/* true when the call returned within WAIT_S (its result in c->rc). */
static bool call_wait(struct call *c)
{
	struct timespec ts = deadline();
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	while (!c->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	bool done = c->done;
	pthread_mutex_unlock(&c->lock);
	return done;
}

static void call_join(struct call *c)
{
	pthread_join(c->tid, NULL);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
}

static int do_compact(struct call *c)
{
	return engine_partition_compact(c->p, &c->res);
}

static int do_index(struct call *c)
{
	return engine_index_now(c->e);
}

static int do_delete_records(struct call *c)
{
	return engine_partition_delete_records(c->p, c->arg, NULL);
}

static int append_one(struct partition *p, const char *key, const char *val, int64_t ts)
{
	struct record_in r = { .timestamp = ts,
			       .key = key,
			       .key_len = (int32_t)strlen(key),
			       .value = val,
			       .value_len = val ? (int32_t)strlen(val) : -1 };
	int64_t base;
	return engine_append_records(p, &r, 1, &base);
}

/* NVERS versions of NKEYS keys, indexed, then a filler record in a segment
 * of its own (the newest, never cleaned). */
static int fill(struct engine *e, struct partition *p)
{
	int err = 0;
	for (int v = 0; v < NVERS; v++)
		for (int i = 0; i < NKEYS; i++) {
			char key[16], val[16];
			snprintf(key, sizeof(key), "key-%03d", i);
			snprintf(val, sizeof(val), "v%03d-k%03d", v, i);
			err |= append_one(p, key, val, T0 + v * NKEYS + i);
		}
	err |= engine_index_now(e);
	err |= append_one(p, "filler", "filler", T0 + NKEYS * NVERS);
	err |= engine_index_now(e);
	return err;
}

static int64_t offs[20000];
static uint64_t raws[20000];
static char vals[20000][32];

/* After a compaction of the fill (and more appended after it): the newest
 * value of each key, the filler, then NMORE "more-%d" records. */
static bool check_compacted(struct partition *p, int64_t more, const char *what)
{
	int64_t n = read_all(p, offs, raws, vals, 20000);
	int bad = 0;
	if (n != NKEYS + 1 + more)
		return diag("%s: %" PRId64 " records", what, n), false;
	for (int i = 0; i < NKEYS; i++) {
		char want[32];
		int64_t off = (int64_t)(NVERS - 1) * NKEYS + i;
		snprintf(want, sizeof(want), "v%03d-k%03d", NVERS - 1, i);
		if (offs[i] != off || strcmp(vals[i], want))
			bad++;
	}
	if (offs[NKEYS] != (int64_t)NKEYS * NVERS || strcmp(vals[NKEYS], "filler"))
		bad++;
	for (int64_t j = 0; j < more; j++) {
		char want[32];
		snprintf(want, sizeof(want), "more-%" PRId64, j);
		if (offs[NKEYS + 1 + j] != (int64_t)NKEYS * NVERS + 1 + j ||
		    strcmp(vals[NKEYS + 1 + j], want))
			bad++;
	}
	if (bad)
		diag("%s: %d records wrong", what, bad);
	return bad == 0;
}

static void test_concurrent(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p, *old;
	struct partition_info info, oinfo;
	struct call cc = { 0 }, ic = { 0 };
	int err = 0;

	e = open_fresh_or_bail(root, "conc", 16 << 10, &o, dir, sizeof(dir));
	ok(engine_compact_filter_register(e, "gate", gate_fn, NULL) == 0, "filter gate");
	/* Ratio 1: no background pass, only the one this test starts. */
	p = topic_or_bail(e, "c",
			  "{\"cleanup.policy\":\"compact\",\"compaction.filter\":\"gate\","
			  "\"min.cleanable.dirty.ratio\":\"1\"}");
	old = topic_or_bail(e, "old", "{\"retention.ms\":\"1000\"}");
	ok(fill(e, p) == 0, "%d keys x %d versions and a filler, indexed", NKEYS, NVERS);
	engine_partition_info(p, &info);
	uint64_t segs0 = info.segments;
	ok(info.segments > 3 && info.wal_bytes == 0, "%" PRIu64 " segments", info.segments);

	/* A reader from offset 0, opened before the compaction. */
	struct engine_cursor *rd;
	struct engine_record r;
	int64_t expect = 0;
	int misread = 0;
	ok(engine_cursor_open(p, 0, &rd) == 0, "a reader opened");
	for (int i = 0; i < 100 && engine_cursor_next(rd, &r) == 1; i++)
		misread += r.offset != expect++;

	/* Hold the compaction at its 10th record kept: pass 2 under way. */
	gate_arm(10);
	cc.p = p;
	call_start(&cc, do_compact);
	bool held = gate_wait_entered();
	ok(held, "the compaction is held in its filter");
	if (!held) {
		gate_open();
		call_join(&cc);
		bail("the compaction never reached its filter");
	}

	/* Meanwhile: appends, a seal, the indexer. */
	for (int j = 0; j < NMORE; j++) {
		char val[32];
		snprintf(val, sizeof(val), "more-%d", j);
		err |= append_one(p, "more", val, T0 + NKEYS * NVERS + 1 + j);
	}
	for (int j = 0; j < 10; j++)
		err |= append_one(old, "k", "old", T0);
	ic.e = e;
	call_start(&ic, do_index);
	bool indexed = call_wait(&ic);
	ok(indexed && ic.rc == 0 && err == 0,
	   "engine_index_now returns while the compaction is held (%s)",
	   indexed ? "returned" : "still waiting: the indexer waits for the compaction");
	engine_partition_info(p, &info);
	ok(info.wal_bytes == 0 && info.segments > segs0 &&
		   info.next_offset == (int64_t)NKEYS * NVERS + 1 + NMORE,
	   "the new records are in segments (%" PRIu64 " -> %" PRIu64 " segments, %" PRIu64
	   " WAL bytes)",
	   segs0, info.segments, info.wal_bytes);
	engine_partition_info(old, &oinfo);
	ok(oinfo.log_start_offset == 10 && oinfo.segments == 0,
	   "retention ran meanwhile: the old records of topic old are gone (log start %" PRId64
	   ", %" PRIu64 " segments)",
	   oinfo.log_start_offset, oinfo.segments);

	/* The reader reads on, to the records just indexed. */
	while (engine_cursor_next(rd, &r) == 1)
		misread += r.offset != expect++;
	ok(misread == 0 && expect == info.next_offset,
	   "the reader read every offset once, in order (%" PRId64 " of %" PRId64 ", %d wrong)",
	   expect, info.next_offset, misread);

	gate_open();
	bool compacted = call_wait(&cc);
	if (indexed)
		call_join(&ic);
	ok(compacted && cc.rc == 0, "the compaction ends (rc %d)", cc.rc);
	call_join(&cc);
	if (!indexed) {
		/* The indexer went on once the gate opened. */
		call_wait(&ic);
		call_join(&ic);
	}
	ok(cc.res.records_in == (uint64_t)NKEYS * NVERS && cc.res.records_out == NKEYS &&
		   cc.res.segments_in == segs0 - 1,
	   "it compacted the segments of its snapshot: %" PRIu64 " records in %" PRIu64
	   " segments -> %" PRIu64,
	   cc.res.records_in, cc.res.segments_in, cc.res.records_out);
	ok(check_compacted(p, NMORE, "after compaction"),
	   "the newest value of each key, the filler, then the %d records indexed meanwhile",
	   NMORE);
	/* The old reader is past the swap: it holds no old segment now. */
	engine_cursor_close(rd);
	ok(engine_verify(e, verify_problem, NULL) == 0, "verify clean");
	engine_partition_unref(old);
	engine_partition_unref(p);
	engine_close(e);

	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "c", 0);
	ok(check_compacted(p, NMORE, "after reopen") && engine_verify(e, verify_problem, NULL) == 0,
	   "after reopen: the same records, verify clean");
	engine_partition_unref(p);
	engine_close(e);
}

static void test_retry(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	struct engine_segment_info *si = NULL;
	size_t nsi = 0;
	struct call cc = { 0 }, dc = { 0 };

	e = open_fresh_or_bail(root, "retry", 16 << 10, &o, dir, sizeof(dir));
	ok(engine_compact_filter_register(e, "gate", gate_fn, NULL) == 0, "filter gate");
	p = topic_or_bail(e, "c",
			  "{\"cleanup.policy\":\"compact\",\"compaction.filter\":\"gate\","
			  "\"min.cleanable.dirty.ratio\":\"1\"}");
	ok(fill(e, p) == 0, "%d keys x %d versions and a filler, indexed", NKEYS, NVERS);
	int src = engine_partition_segments(p, &si, &nsi);
	ok(src == 0 && nsi > 4, "%zu segments", nsi);
	if (src || nsi <= 4)
		bail("too few segments");
	/* DeleteRecords to the start of the third segment: two go whole. */
	int64_t cut = si[2].base_offset;
	free(si);

	gate_arm(5);
	cc.p = p;
	call_start(&cc, do_compact);
	bool held = gate_wait_entered();
	ok(held, "the compaction is held in its filter");
	if (!held) {
		gate_open();
		call_join(&cc);
		bail("the compaction never reached its filter");
	}
	dc.p = p;
	dc.arg = cut;
	call_start(&dc, do_delete_records);
	bool deleted = call_wait(&dc);
	ok(deleted && dc.rc == 0, "DeleteRecords to %" PRId64 " while it is held (%s)", cut,
	   deleted ? "returned" : "still waiting");
	engine_partition_info(p, &info);
	ok(info.log_start_offset == cut && info.segments == nsi - 2,
	   "log start %" PRId64 ", %" PRIu64 " segments", info.log_start_offset, info.segments);
	gate_open();
	bool compacted = call_wait(&cc);
	ok(compacted && cc.rc == 0, "the compaction ends (rc %d)", cc.rc);
	call_join(&cc);
	if (deleted)
		call_join(&dc);
	/* Each attempt calls the filter for the NKEYS records it keeps. */
	ok(cc.res.segments_in == nsi - 3 && g.calls == 2 * NKEYS,
	   "it retried from a new snapshot: %" PRIu64 " segments in (of %zu left), %" PRId64
	   " filter calls",
	   cc.res.segments_in, nsi - 2, g.calls);

	engine_partition_info(p, &info);
	src = engine_partition_segments(p, &si, &nsi);
	int64_t first = src == 0 && nsi ? si[0].base_offset : -1;
	ok(src == 0 && nsi >= 2 && first >= cut && info.log_start_offset == cut,
	   "no dropped segment came back (first segment at %" PRId64 "), log start kept", first);
	free(si);
	ok(check_compacted(p, 0, "after the retried compaction"),
	   "the newest value of each key and the filler");
	ok(engine_verify(e, verify_problem, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);

	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "c", 0);
	engine_partition_info(p, &info);
	ok(info.log_start_offset == cut && check_compacted(p, 0, "after reopen") &&
		   engine_verify(e, verify_problem, NULL) == 0,
	   "after reopen: log start %" PRId64 ", the same records, verify clean",
	   info.log_start_offset);
	engine_partition_unref(p);
	engine_close(e);
}

int main(void)
{
	char *root = tmpdir_new("compact-conc");
	test_concurrent(root);
	test_retry(root);
	tmpdir_free(root);
	return tap_exit();
}
