/* test_index_now.c - engine_index_now while the indexer is inside an idle
 * pass, past its look for sealed WAL files, in retention and background
 * compaction (indexer.c). A compaction filter holds that pass: once
 * called, it returns only after engine_index_now has sealed the active
 * file (engine_stats: one WAL file more), so the pass began before the
 * seal and did not see the sealed file. engine_index_now must not take
 * the end of that pass for the end of its own: when it returns, the
 * records appended before it are in a segment, none left in the WAL.
 * Background compaction now runs on a thread of its own (compact.c,
 * "WHEN"), so the filter holds that thread, not the indexer's idle pass:
 * the test now also checks that engine_index_now does not wait for a
 * compaction under way. The idle pass's own race (a file sealed during
 * its retention) has no hook to hold it here.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

#include "testutil.h"

#define NREC 100

/* The filter "gate": the first call after arming holds the pass. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t entered_cond;
	struct engine *e;
	bool armed, entered;
};

static int gate_fn(void *arg, const char *config_json, const struct engine_record *r)
{
	struct gate *g = arg;
	struct engine_stats st;
	uint64_t files;
	bool hold;

	(void)config_json;
	(void)r;
	pthread_mutex_lock(&g->lock);
	hold = g->armed;
	g->armed = false;
	if (hold) {
		engine_stats_get(g->e, &st);
		files = st.wal_files;
		g->entered = true;
		pthread_cond_broadcast(&g->entered_cond);
	}
	pthread_mutex_unlock(&g->lock);
	/* Until the seal: the indexer is here, so nothing trims the files. */
	while (hold) {
		engine_stats_get(g->e, &st);
		if (st.wal_files > files)
			break;
		sched_yield();
	}
	/* Then a little longer, so that engine_index_now is likely waiting
	 * before the pass ends: the verdict does not depend on it, it only
	 * makes an engine_index_now that counts this pass fail more often. */
	for (int i = 0; hold && i < 1000; i++)
		sched_yield();
	return 1;
}

int main(void)
{
	char *root = tmpdir_new("index-now");
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *s, *x;
	struct partition_info info;
	struct gate g = { .lock = PTHREAD_MUTEX_INITIALIZER,
			  .entered_cond = PTHREAD_COND_INITIALIZER,
			  .armed = true };
	int err = 0;

	snprintf(dir, sizeof(dir), "%s/e", root);
	engine_options_init(&o);
	o.fsync = FSYNC_NEVER;
	o.wal_seal_ms = 0; /* no seal by age: only engine_index_now's */
	e = open_or_bail(dir, &o);
	g.e = e;
	/* s: two segments, the older never compacted (dirty ratio 1, above
	 * 0), so each idle pass compacts it through the filter once it is
	 * registered; x: the records engine_index_now must index. */
	s = topic_or_bail(e, "s",
			  "{\"compaction.filter\":\"gate\",\"min.cleanable.dirty.ratio\":\"0\"}");
	x = topic_or_bail(e, "x", NULL);
	err |= engine_append_lines(s, "one\n", 4, NULL);
	err |= engine_index_now(e);
	err |= engine_append_lines(s, "two\n", 4, NULL);
	err |= engine_index_now(e);
	engine_partition_info(s, &info);
	ok(err == 0 && info.segments == 2 && info.wal_bytes == 0, "s: two segments");

	ok(engine_compact_filter_register(e, "gate", gate_fn, &g) == 0,
	   "the filter registered: the next idle pass holds in it");
	/* The indexer starts one when kicked or every RETENTION_CHECK_MS. */
	pthread_mutex_lock(&g.lock);
	while (!g.entered)
		pthread_cond_wait(&g.entered_cond, &g.lock);
	pthread_mutex_unlock(&g.lock);

	for (int i = 0; i < NREC; i++) {
		char line[32];
		int n = snprintf(line, sizeof(line), "rec-%03d\n", i);
		err |= engine_append_lines(x, line, (size_t)n, NULL);
	}
	int rc = engine_index_now(e);
	engine_partition_info(x, &info);
	ok(err == 0 && rc == 0 && info.wal_bytes == 0 && info.segments >= 1 &&
		   info.next_offset == NREC,
	   "engine_index_now returns with the %d records appended before it in a segment "
	   "(%" PRIu64 " segments, %" PRIu64 " WAL bytes)",
	   NREC, info.segments, info.wal_bytes);

	engine_partition_unref(x);
	engine_partition_unref(s);
	ok(engine_compact_filter_register(e, "gate", NULL, NULL) == 0, "unregistered");
	engine_close(e);
	tmpdir_free(root);
	return tap_exit();
}
