/* test_concurrency.c - four threads append to two partitions at once while
 * a reader follows; offsets are dense per partition, and every record is
 * there exactly once, in each writer's order. */
#include <stdatomic.h>

#include "testutil.h"

#define WRITERS 4
#define BATCHES 300
#define PER_BATCH 10

static struct engine *eng;

static void *writer(void *arg)
{
	int w = (int)(intptr_t)arg;
	struct partition *p[2] = { part_or_bail(eng, "cc", 0), part_or_bail(eng, "cc", 1) };
	intptr_t fails = 0;
	for (int b = 0; b < BATCHES; b++) {
		char buf[1024];
		size_t n = 0;
		int64_t base;
		for (int r = 0; r < PER_BATCH; r++)
			n += (size_t)sprintf(buf + n, "w%d-%d\n", w, b * PER_BATCH + r);
		if (engine_append_lines(p[(b + w) % 2], buf, n, &base) != 0)
			fails++;
	}
	engine_partition_unref(p[0]);
	engine_partition_unref(p[1]);
	return (void *)fails;
}

static atomic_int writers_done;

/* Follows partition 0 while it grows: offsets must come in order. */
static void *reader(void *arg)
{
	struct partition *p = part_or_bail(eng, "cc", 0);
	struct engine_cursor *c;
	struct engine_record r;
	int64_t want = 0;
	intptr_t bad = 0;
	(void)arg;
	engine_cursor_open(p, 0, &c);
	for (;;) {
		int rc = engine_cursor_next(c, &r);
		if (rc == 1) {
			if (r.offset != want)
				bad++;
			want = r.offset + 1;
			continue;
		}
		if (rc < 0) {
			bad++;
			break;
		}
		if (writers_done) {
			struct partition_info info;
			engine_partition_info(p, &info);
			if (want == info.next_offset)
				break;
		}
		engine_partition_wait(p, want, 100);
	}
	engine_cursor_close(c);
	engine_partition_unref(p);
	return (void *)bad;
}

int main(void)
{
	char *dir = tmpdir_new("conc");
	pthread_t t[WRITERS], rt;
	intptr_t fails = 0;
	void *res;
	struct engine_options o;

	engine_options_init(&o);
	o.wal_segment_bytes = 64 * 1024; /* rotate while writing */
	eng = open_or_bail(dir, &o);
	engine_topic_create(eng, "cc", 2, NULL);
	pthread_create(&rt, NULL, reader, NULL);
	for (intptr_t i = 0; i < WRITERS; i++)
		pthread_create(&t[i], NULL, writer, (void *)i);
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(t[i], &res);
		fails += (intptr_t)res;
	}
	writers_done = 1;
	pthread_join(rt, &res);
	ok(fails == 0, "%d writers x %d appends succeeded", WRITERS, BATCHES);
	struct engine_stats st;
	engine_stats_get(eng, &st);
	/* Four threads appending under fsync every: appends that arrive while a
	 * group is being fsynced share the next group, so there are fewer
	 * groups than appends and one fsync per group (plus rotations). */
	ok(st.appends == WRITERS * BATCHES && st.groups >= 1 && st.groups < st.appends &&
		   st.fsyncs >= st.groups && st.failed_groups == 0,
	   "stats: %llu appends in %llu groups, %llu fsyncs", (unsigned long long)st.appends,
	   (unsigned long long)st.groups, (unsigned long long)st.fsyncs);
	ok((intptr_t)res == 0, "a concurrent reader saw dense offsets in order");

	for (int round = 0; round < 2; round++) {
		int seen[WRITERS][BATCHES * PER_BATCH];
		int last[2][WRITERS];
		int64_t total = 0;
		int bad = 0;
		memset(seen, 0, sizeof(seen));
		memset(last, -1, sizeof(last));
		for (int32_t i = 0; i < 2; i++) {
			struct partition *p = part_or_bail(eng, "cc", i);
			struct engine_cursor *c;
			struct engine_record r;
			int64_t want = 0;
			engine_cursor_open(p, 0, &c);
			while (engine_cursor_next(c, &r) == 1) {
				int w, seq;
				char v[64];
				memcpy(v, r.value, (size_t)r.value_len);
				v[r.value_len] = 0;
				if (r.offset != want++ || sscanf(v, "w%d-%d", &w, &seq) != 2 ||
				    w < 0 || w >= WRITERS || seq < 0 ||
				    seq >= BATCHES * PER_BATCH || seen[w][seq]++ ||
				    seq <= last[i][w])
					bad++;
				else
					last[i][w] = seq;
				total++;
			}
			engine_cursor_close(c);
			engine_partition_unref(p);
		}
		ok(bad == 0 && total == WRITERS * BATCHES * PER_BATCH,
		   "%s: %lld records, each once, dense, in writer order (%d bad)",
		   round ? "after reopen" : "live", (long long)total, bad);
		if (round == 0) {
			engine_close(eng);
			eng = open_or_bail(dir, &o);
		}
	}
	ok(engine_verify(eng, NULL, NULL) == 0, "verify clean");
	engine_close(eng);
	tmpdir_free(dir);
	return tap_exit();
}
