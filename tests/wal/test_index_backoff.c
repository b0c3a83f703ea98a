/* test_index_backoff.c - a partition whose indexing keeps failing: every
 * write to a segment file fails (the faultfs shim, FAULTFS_WRITE_PATH
 * *.seg, armed and disarmed from here). Each engine_index_now retries at
 * once and fails, but the failure is logged once when it begins, not at
 * every retry; no record is lost meanwhile; once writes work again the
 * next pass indexes the file, logs that indexing resumed, and every record
 * reads back once, from a segment. While indexing fails, back-pressure
 * (commit.c) does not hold appends back: appends far past
 * wal.unindexed.max.bytes complete (they would hang here otherwise) and
 * the WAL grows past the bound. (The backoff's waits themselves are not
 * measured: no timing in tests.)
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>

#include "log.h"
#include "testutil.h"

typedef void (*arm_fn)(const char *cls, unsigned long nth, unsigned long count, int err);
static arm_fn arm;

#define RETRIES 6
#define NREC 500
#define EXTRA 2000 /* appended while indexing fails */
#define BOUND (128u << 10) /* above the NREC records, below all of them */

static atomic_int errors, resumed;

static void sink(void *arg, enum log_level level, const char *module, const char *msg)
{
	(void)arg;
	if (strcmp(module, "warm") != 0)
		return;
	if (level >= LOG_LVL_ERROR)
		atomic_fetch_add(&errors, 1);
	if (strstr(msg, "indexing resumed"))
		atomic_fetch_add(&resumed, 1);
}

int main(void)
{
	char *dir = tmpdir_new("backoff");
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	int fails = 0;

	*(void **)&arm = dlsym(RTLD_DEFAULT, "faultfs_arm");
	if (!arm)
		bail("the faultfs shim is not loaded (LD_PRELOAD)");
	log_set_sink(sink, NULL);
	engine_options_init(&o);
	o.fsync = FSYNC_NEVER;
	o.wal_unindexed_max_bytes = BOUND;
	e = open_or_bail(dir, &o);
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "topic t");
	p = part_or_bail(e, "t", 0);
	for (int i = 0; i < NREC; i++) {
		char line[32];
		int n = snprintf(line, sizeof(line), "rec-%d\n", i);
		if (engine_append_lines(p, line, (size_t)n, NULL))
			bail("append");
	}
	arm("write", 1, 0, EIO); /* every segment write from now on */
	for (int i = 0; i < RETRIES; i++)
		fails += engine_index_now(e) != 0;
	engine_partition_info(p, &info);
	ok(fails == RETRIES && info.segments == 0 && info.wal_bytes > 0,
	   "%d passes with segment writes failing: each fails, nothing indexed", fails);
	ok(atomic_load(&errors) >= 1 && atomic_load(&errors) <= 2,
	   "the failure is logged when it begins, not at each of the %d retries (%d errors)",
	   RETRIES, atomic_load(&errors));
	ok(atomic_load(&resumed) == 0, "no resumption logged yet");

	/* Indexing fails: appends past the bound are not held back. */
	int afail = 0;
	for (int i = NREC; i < NREC + EXTRA; i++) {
		char line[32];
		int n = snprintf(line, sizeof(line), "rec-%d\n", i);
		afail += engine_append_lines(p, line, (size_t)n, NULL) != 0;
	}
	struct engine_stats st;
	engine_stats_get(e, &st);
	ok(afail == 0 && st.backpressure_waits == 0 && st.wal_unindexed_max > 2 * BOUND,
	   "indexing failing: %d appends past the bound complete, none held back, the WAL "
	   "grows to %llu (bound %u)",
	   EXTRA, (unsigned long long)st.wal_unindexed_max, BOUND);

	arm("write", 0, 0, 0);
	ok(engine_index_now(e) == 0, "writes work again: the next pass indexes");
	engine_partition_info(p, &info);
	ok(info.segments >= 1 && info.wal_bytes == 0 && info.next_offset == NREC + EXTRA,
	   "%llu segment(s), nothing left in the WAL", (unsigned long long)info.segments);
	ok(atomic_load(&resumed) == 1, "indexing resumed is logged once");

	struct engine_cursor *c;
	struct engine_record r;
	int64_t n = 0;
	int bad = 0;
	if (engine_cursor_open(p, 0, &c) == 0) {
		while (engine_cursor_next(c, &r) == 1) {
			char want[32];
			int wl = snprintf(want, sizeof(want), "rec-%lld", (long long)n);
			if (r.offset != n || r.value_len != wl || memcmp(r.value, want, (size_t)wl))
				bad++;
			n++;
		}
		engine_cursor_close(c);
	}
	ok(n == NREC + EXTRA && bad == 0, "every record reads back once, in order (%lld, %d bad)",
	   (long long)n, bad);
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);
	log_set_sink(NULL, NULL);
	tmpdir_free(dir);
	return tap_exit();
}
