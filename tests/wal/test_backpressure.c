/* test_backpressure.c - appends wait for the indexer once the WAL not yet
 * indexed reaches wal.unindexed.max.bytes (commit.c, "BACK-PRESSURE").
 *
 * The indexer is paused from here: the segment hook (engine_segment_hook_set)
 * runs on the indexer thread after it wrote a segment, and this one blocks
 * until the test opens its gate. An appender thread then writes far past the
 * bound; the test waits until the engine says an append is held back
 * (engine_stats.appends_waiting), checks that nothing more is written while
 * held, that reads and topic creation still work meanwhile, and that the WAL
 * not yet indexed came within one group of the bound and never went past
 * it. It opens the
 * gate: every append completes, every record reads back once, in order.
 * An engine with no indexer (no_index) is never held back. (A failing
 * indexer is test_index_backoff.c's.) No timing is measured: the waits
 * below only wait for states.
 */
#include <errno.h>
#include <stdatomic.h>

#include "frame.h"
#include "testutil.h"

#define SEG (64u << 10)
#define BOUND (128u << 10)
#define LINES 8
#define LINE 128 /* bytes with its newline */
#define BATCHES 400 /* 400 KiB of lines: over 3 x the bound */
/* A group of one such batch at most: the batch (its header and per-record
 * overhead are well under a line's worth), its frame header, a sync point
 * in front of it and, at a rotation, the new file's header. The engine
 * holds an append back when the next one like it could not fit. */
#define GROUP_MAX (LINES * LINE + LINE + FRAME_V2_HEADER_SIZE + FRAME_SYNC_SIZE + WAL_FILE_HEADER_SIZE)

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open, hook_entered;

static void hook(void *arg, struct partition *p, const char *seg_path)
{
	(void)arg;
	(void)p;
	(void)seg_path;
	pthread_mutex_lock(&gate_lock);
	hook_entered = true;
	pthread_cond_broadcast(&gate_cond);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

struct appender {
	struct partition *p;
	atomic_int done; /* batches appended */
	int failed;
};

static void batch_text(char *buf, int b)
{
	for (int l = 0; l < LINES; l++) {
		char *line = buf + l * LINE;
		int n = snprintf(line, LINE, "rec-%06d-", b * LINES + l);
		memset(line + n, 'x', (size_t)(LINE - 1 - n));
		line[LINE - 1] = '\n';
	}
}

static void *append_main(void *arg)
{
	struct appender *a = arg;
	char buf[LINES * LINE];
	for (int b = 0; b < BATCHES; b++) {
		batch_text(buf, b);
		if (engine_append_lines(a->p, buf, sizeof(buf), NULL))
			a->failed++;
		atomic_fetch_add(&a->done, 1);
	}
	return NULL;
}

/* Wait for a state; bounded by the test's timeout, not by a figure here. */
static void wait_state(bool (*cond)(struct engine *), struct engine *e)
{
	while (!cond(e))
		usleep(2000);
}

static bool any_waiting(struct engine *e)
{
	struct engine_stats st;
	engine_stats_get(e, &st);
	return st.appends_waiting > 0;
}

static bool hook_was_entered(struct engine *e)
{
	(void)e;
	pthread_mutex_lock(&gate_lock);
	bool v = hook_entered;
	pthread_mutex_unlock(&gate_lock);
	return v;
}

/* Every record in order, once, with the value batch_text gave it. */
static int check_records(struct partition *p, int64_t *count)
{
	struct engine_cursor *c;
	struct engine_record r;
	char buf[LINES * LINE];
	int bad = 0;
	int64_t n = 0;

	if (engine_cursor_open(p, 0, &c))
		return -1;
	while (engine_cursor_next(c, &r) == 1) {
		int b = (int)(n / LINES), l = (int)(n % LINES);
		batch_text(buf, b);
		if (r.offset != n || r.value_len != LINE - 1 ||
		    memcmp(r.value, buf + l * LINE, LINE - 1) != 0)
			bad++;
		n++;
	}
	engine_cursor_close(c);
	*count = n;
	return bad;
}

static void held_back(void)
{
	char *dir = tmpdir_new("bp");
	char bound[32];
	struct engine_options o;
	struct engine_stats st;
	struct partition_info before, after;
	struct appender a = { 0 };
	pthread_t th;
	struct engine *e;
	int64_t n = 0;
	int bad;

	engine_options_init(&o);
	o.fsync = FSYNC_NEVER;
	o.wal_segment_bytes = SEG;
	o.wal_seal_ms = 0;
	snprintf(bound, sizeof(bound), "%u", BOUND);
	ok(engine_options_set(&o, "wal.unindexed.max.bytes", bound) == 0 &&
		   o.wal_unindexed_max_bytes == BOUND,
	   "wal.unindexed.max.bytes is a setting");
	ok(engine_options_set(&o, "wal.unindexed.max.bytes", "12") == -EINVAL,
	   "a bound below 4096 is refused");
	e = open_or_bail(dir, &o);
	ok(engine_segment_hook_set(e, ".bp", hook, NULL) == 0, "indexer pause hook set");
	ok(engine_topic_create(e, "t", 1, "{\"compression.type\": \"none\"}") == 0, "topic t");
	a.p = part_or_bail(e, "t", 0);
	if (pthread_create(&th, NULL, append_main, &a))
		bail("pthread_create");

	wait_state(hook_was_entered, e); /* the indexer is paused in its first segment */
	wait_state(any_waiting, e);
	engine_stats_get(e, &st);
	ok(st.appends_waiting == 1 && st.backpressure_waits >= 1,
	   "with the indexer paused, the append is held back (%llu waiting, %llu waits)",
	   (unsigned long long)st.appends_waiting, (unsigned long long)st.backpressure_waits);
	ok(atomic_load(&a.done) < BATCHES, "the appender has not finished (%d of %d batches)",
	   atomic_load(&a.done), BATCHES);
	ok(st.wal_unindexed_max + GROUP_MAX > BOUND && st.wal_unindexed_max <= BOUND,
	   "WAL not yet indexed came within one group of the bound, never past it (%llu, "
	   "bound %u)",
	   (unsigned long long)st.wal_unindexed_max, BOUND);

	/* Held back, nothing is written; everything else still works. */
	engine_partition_info(a.p, &before);
	char head[LINE];
	ok(engine_read_raw(a.p, 0, head, sizeof(head)) == (ssize_t)sizeof(head) &&
		   memcmp(head, "rec-000000-", 11) == 0,
	   "reads go on while appends are held back");
	ok(engine_topic_create(e, "other", 1, NULL) == 0,
	   "metadata changes go on while appends are held back");
	usleep(50000);
	engine_partition_info(a.p, &after);
	engine_stats_get(e, &st);
	ok(after.next_offset == before.next_offset && st.appends_waiting == 1,
	   "nothing is appended while held back (next offset %lld, then %lld)",
	   (long long)before.next_offset, (long long)after.next_offset);

	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	pthread_join(th, NULL);
	ok(a.failed == 0 && atomic_load(&a.done) == BATCHES,
	   "indexer resumed: every append completes, none fails (%d failed)", a.failed);
	ok(engine_index_now(e) == 0, "everything indexes");
	engine_stats_get(e, &st);
	ok(st.appends_waiting == 0 && st.wal_unindexed_max <= BOUND,
	   "nothing waits; the WAL not yet indexed never went past the bound (%llu)",
	   (unsigned long long)st.wal_unindexed_max);
	bad = check_records(a.p, &n);
	ok(n == (int64_t)BATCHES * LINES && bad == 0,
	   "every record reads back once, in order (%lld, %d bad)", (long long)n, bad);
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_partition_unref(a.p);
	engine_close(e);
	tmpdir_free(dir);
}

static void no_indexer(void)
{
	char *dir = tmpdir_new("bp-noidx");
	struct engine_options o;
	struct engine_stats st;
	struct appender a = { 0 };
	struct engine *e;

	engine_options_init(&o);
	o.fsync = FSYNC_NEVER;
	o.wal_segment_bytes = SEG;
	o.wal_unindexed_max_bytes = BOUND;
	o.no_index = true;
	e = open_or_bail(dir, &o);
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "no indexer: topic t");
	a.p = part_or_bail(e, "t", 0);
	append_main(&a);
	engine_stats_get(e, &st);
	ok(a.failed == 0 && st.backpressure_waits == 0 && st.wal_unindexed_max > 2 * BOUND,
	   "no indexer: appends never wait, the WAL grows past the bound (%llu)",
	   (unsigned long long)st.wal_unindexed_max);
	engine_partition_unref(a.p);
	engine_close(e);
	tmpdir_free(dir);
}

int main(void)
{
	held_back();
	no_indexer();
	return tap_exit();
}
