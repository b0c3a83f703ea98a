/* test_clock.c - intervals and deadlines run on CLOCK_MONOTONIC: a wall
 * clock stepped forward must not stretch a long poll, one stepped back
 * must not hold up the interval fsync. Runs under the faultfs shim, whose
 * faultfs_clock_shift moves every CLOCK_REALTIME reading of this process.
 * With the wall clock, each step below would wait for an hour (the test's
 * timeout fails it); nothing here measures time. */
#include <dlfcn.h>
#include <errno.h>
#include <time.h>

#include "testutil.h"

#define HOUR_NS (3600ll * 1000000000)

/* Until the engine counted an fsync more than before. */
static void wait_fsync(struct engine *e, uint64_t before)
{
	struct engine_stats st;
	for (;;) {
		struct timespec ts = { 0, 5 * 1000000 };
		engine_stats_get(e, &st);
		if (st.fsyncs > before)
			return;
		nanosleep(&ts, NULL);
	}
}

int main(void)
{
	void (*shift)(long long ns);
	struct engine_options o;
	struct engine_stats st;
	struct partition *p;
	struct engine *e;
	char *dir;
	uint64_t before;
	int rc;

	*(void **)&shift = dlsym(RTLD_DEFAULT, "faultfs_clock_shift");
	if (!shift)
		bail("the faultfs shim is not loaded (LD_PRELOAD)");
	dir = tmpdir_new("clock");
	engine_options_init(&o);
	engine_options_parse_fsync(&o, "interval:20");
	e = open_or_bail(dir, &o);
	if (engine_topic_create(e, "t", 1, NULL))
		bail("cannot create topic t");
	p = part_or_bail(e, "t", 0);

	shift(HOUR_NS);
	rc = engine_partition_wait(p, 0, 50);
	ok(rc == 0, "with the wall clock an hour ahead a 50 ms wait times out (rc %d)", rc);
	shift(0);

	/* a: its interval sync comes before the clock moves, so the commit
	 * thread then has nothing left to sync and b is the one that waits. */
	engine_stats_get(e, &st);
	before = st.fsyncs;
	ok(engine_append_lines(p, "a\n", 2, NULL) == 0, "a is written");
	wait_fsync(e, before);
	engine_stats_get(e, &st);
	before = st.fsyncs;
	shift(-HOUR_NS);
	ok(engine_append_lines(p, "b\n", 2, NULL) == 0,
	   "b is written, the wall clock an hour back");
	wait_fsync(e, before);
	engine_stats_get(e, &st);
	ok(st.fsyncs > before, "the interval fsync came all the same");
	shift(0);
	engine_partition_unref(p);
	ok(engine_close(e) == 0, "close");
	tmpdir_free(dir);
	return tap_exit();
}
