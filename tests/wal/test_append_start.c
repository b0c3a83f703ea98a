/* test_append_start.c - an append in two steps (engine_append_start, then
 * engine_append_finish): appends started by one thread before any is
 * finished take their offsets in start order and share group commits,
 * whatever order they are finished in; a refused batch queues nothing; an
 * append nobody finishes yet is written once the engine is kicked; and
 * two threads each keeping several appends in flight get dense offsets in
 * their own order (the ThreadSanitizer run covers the hand-offs). fsync
 * every throughout. */
#include <stdatomic.h>

#include "batch.h"
#include "testutil.h"

#define ROUNDS 40
#define IN_FLIGHT 8

static struct engine *eng;

/* A batch of one record "tag-n"; malloc'd. */
static uint8_t *make_batch(const char *tag, int n, size_t *len)
{
	struct batch_builder b;
	uint8_t *out = NULL;
	char val[64];
	snprintf(val, sizeof(val), "%s-%d", tag, n);
	struct record_in r = { 1700000000000, NULL, -1, val, (int32_t)strlen(val), NULL, 0 };
	batch_builder_init(&b);
	if (batch_builder_add(&b, &r) != 0 || batch_builder_finish(&b, &out, len) != 0)
		bail("batch_builder");
	batch_builder_fini(&b);
	return out;
}

static int64_t next_offset(struct partition *p)
{
	struct partition_info info;
	engine_partition_info(p, &info);
	return info.next_offset;
}

/* 20 appends to two partitions started, then finished (in reverse order
 * when reverse is set): offsets in start order per partition. */
static void test_one_thread(bool reverse)
{
	struct partition *p[2] = { part_or_bail(eng, "as", 0), part_or_bail(eng, "as", 1) };
	struct engine_append *a[20];
	uint8_t *b[20];
	int64_t base[20], start[2] = { next_offset(p[0]), next_offset(p[1]) };
	struct engine_stats before, after;
	int started = 0, finished = 0, dense = 1;

	engine_stats_get(eng, &before);
	for (int i = 0; i < 20; i++) {
		size_t len;
		b[i] = make_batch("one", i, &len);
		if (engine_append_start(p[i % 2], b[i], len, true, &a[i]) == 0)
			started++;
	}
	for (int k = 0; k < 20; k++) {
		int i = reverse ? 19 - k : k;
		if (engine_append_finish(a[i], &base[i]) == 0)
			finished++;
	}
	for (int i = 0; i < 20; i++)
		if (base[i] != start[i % 2] + i / 2)
			dense = 0;
	engine_stats_get(eng, &after);
	uint64_t appends = after.appends - before.appends, groups = after.groups - before.groups;
	ok(started == 20 && finished == 20, "%s: 20 appends started, then finished",
	   reverse ? "reverse" : "in order");
	ok(dense, "%s: offsets in start order, dense per partition",
	   reverse ? "finished last to first" : "finished in order");
	ok(appends == 20 && groups < appends, "%s: they shared groups (%llu appends, %llu groups)",
	   reverse ? "reverse" : "in order", (unsigned long long)appends,
	   (unsigned long long)groups);
	for (int i = 0; i < 20; i++)
		free(b[i]);
	engine_partition_unref(p[0]);
	engine_partition_unref(p[1]);
}

static void test_refused(void)
{
	struct partition *p = part_or_bail(eng, "as", 0);
	struct engine_append *a = (struct engine_append *)(uintptr_t)1;
	size_t len;
	uint8_t *b = make_batch("bad", 0, &len);
	int64_t before = next_offset(p);
	b[len - 1] ^= 1;
	int rc = engine_append_start(p, b, len, true, &a);
	ok(rc == CHRONIK_EBADCRC && a == NULL, "a bad CRC is refused at start, nothing to finish");
	ok(next_offset(p) == before, "and takes no offset");
	free(b);
	engine_partition_unref(p);
}

/* Started, not finished, kicked: the commit thread writes it. */
static void test_kick(void)
{
	struct partition *p = part_or_bail(eng, "as", 0);
	struct engine_append *a;
	size_t len;
	uint8_t *b = make_batch("kick", 0, &len);
	int64_t before = next_offset(p), base = -1;
	if (engine_append_start(p, b, len, true, &a) != 0)
		bail("engine_append_start");
	engine_append_kick(eng);
	/* Published without a finish: wait for it (bounded, so a bug fails
	 * the test instead of hanging it). */
	int waited = 0;
	while (next_offset(p) == before && waited++ < 3000)
		usleep(10000);
	ok(next_offset(p) == before + 1, "a kicked append is written before anyone finishes it");
	ok(engine_append_finish(a, &base) == 0 && base == before,
	   "its finish returns at once with its offset");
	free(b);
	engine_partition_unref(p);
}

/* Each thread keeps IN_FLIGHT appends started, finishing the oldest
 * before starting the next. */
static void *pipeliner(void *arg)
{
	int t = (int)(intptr_t)arg;
	struct partition *p = part_or_bail(eng, "mt", 0);
	struct engine_append *a[IN_FLIGHT];
	uint8_t *b[IN_FLIGHT];
	intptr_t fails = 0;
	char tag[16];
	snprintf(tag, sizeof(tag), "t%d", t);
	for (int n = 0; n < ROUNDS * IN_FLIGHT + IN_FLIGHT; n++) {
		int slot = n % IN_FLIGHT;
		if (n >= IN_FLIGHT) {
			int64_t base;
			if (engine_append_finish(a[slot], &base) != 0)
				fails++;
			free(b[slot]);
		}
		if (n < ROUNDS * IN_FLIGHT) {
			size_t len;
			b[slot] = make_batch(tag, n, &len);
			if (engine_append_start(p, b[slot], len, true, &a[slot]) != 0)
				bail("engine_append_start");
		}
	}
	engine_partition_unref(p);
	return (void *)fails;
}

static void test_threads(void)
{
	pthread_t th[2];
	intptr_t fails = 0;
	void *res;
	for (intptr_t i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, pipeliner, (void *)i);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], &res);
		fails += (intptr_t)res;
	}
	ok(fails == 0, "two threads, %d appends each, %d in flight: all stored", ROUNDS * IN_FLIGHT,
	   IN_FLIGHT);

	struct partition *p = part_or_bail(eng, "mt", 0);
	struct engine_cursor *c;
	struct engine_record r;
	int last[2] = { -1, -1 }, bad = 0;
	int64_t want = 0;
	engine_cursor_open(p, 0, &c);
	while (engine_cursor_next(c, &r) == 1) {
		char v[64];
		int t, n;
		memcpy(v, r.value, (size_t)r.value_len);
		v[r.value_len] = 0;
		if (r.offset != want++ || sscanf(v, "t%d-%d", &t, &n) != 2 || t < 0 || t > 1 ||
		    n != last[t] + 1)
			bad++;
		else
			last[t] = n;
	}
	engine_cursor_close(c);
	engine_partition_unref(p);
	ok(bad == 0 && want == 2 * ROUNDS * IN_FLIGHT,
	   "offsets dense, each thread's records in its start order (%d bad of %lld)", bad,
	   (long long)want);
}

int main(void)
{
	char *dir = tmpdir_new("astart");
	struct engine_options o;

	engine_options_init(&o);
	o.fsync = FSYNC_EVERY;
	eng = open_or_bail(dir, &o);
	if (engine_topic_create(eng, "as", 2, NULL) || engine_topic_create(eng, "mt", 1, NULL))
		bail("engine_topic_create");
	test_one_thread(false);
	test_one_thread(true);
	test_refused();
	test_kick();
	test_threads();
	ok(engine_close(eng) == 0, "engine closes");
	tmpdir_free(dir);
	return tap_exit();
}
