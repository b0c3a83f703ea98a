/* test_engine.c - the engine API end to end: topics (and the limits on
 * their number and total partitions), appends, cursors, raw
 * reads at every position, batch reads, waits, timestamps, group offsets,
 * the lock, WAL rotation and reopen. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/stat.h>
#include <stdatomic.h>

#include "crc32c.h"
#include "testutil.h"

static void test_topics(const char *dir)
{
	struct engine *e = open_or_bail(dir, NULL);
	char **names;
	size_t n;
	int32_t np;
	char *cfg;

	ok(engine_topic_create(e, "alpha", 3, "{\"retention.ms\":\"1000\"}") == 0,
	   "create alpha/3");
	ok(engine_topic_create(e, "beta", 0, NULL) == 0, "create beta with default partitions");
	ok(engine_topic_create(e, "alpha", 1, NULL) == CHRONIK_ETOPICEXISTS, "duplicate refused");
	ok(engine_topic_create(e, "a/b", 1, NULL) == CHRONIK_EBADNAME, "slash refused");
	ok(engine_topic_create(e, "..", 1, NULL) == CHRONIK_EBADNAME, "'..' refused");
	ok(engine_topic_create(e, "", 1, NULL) == CHRONIK_EBADNAME, "empty refused");
	char long_name[251];
	memset(long_name, 'x', 250);
	long_name[250] = 0;
	ok(engine_topic_create(e, long_name, 1, NULL) == CHRONIK_EBADNAME, "250 chars refused");
	long_name[249] = 0;
	ok(engine_topic_create(e, long_name, 1, NULL) == 0, "249 chars accepted");
	ok(engine_topic_create(e, "cfg", 1, "[1,2]") == -EINVAL, "non-object config refused");
	ok(engine_topic_delete(e, long_name) == 0, "delete the long one");
	ok(engine_topic_list(e, &names, &n) == 0 && n == 2 && strcmp(names[0], "alpha") == 0 &&
		   strcmp(names[1], "beta") == 0,
	   "list is sorted: alpha, beta");
	engine_strv_free(names, n);
	ok(engine_topic_partitions(e, "alpha", &np) == 0 && np == 3, "alpha has 3 partitions");
	ok(engine_topic_partitions(e, "beta", &np) == 0 && np == 1, "beta has 1 partition");
	ok(engine_topic_partitions(e, "gamma", &np) == CHRONIK_ENOTOPIC, "unknown topic");
	ok(engine_topic_config_set(e, "beta", "{\"cleanup.policy\":\"compact\"}") == 0,
	   "config set");
	engine_close(e);

	e = open_or_bail(dir, NULL);
	cfg = NULL;
	ok(engine_topic_config_get(e, "beta", &cfg) == 0 && strstr(cfg, "compact") != NULL,
	   "config survives reopen");
	free(cfg);
	ok(engine_topic_config_get(e, "alpha", &cfg) == 0 && strstr(cfg, "retention.ms") != NULL,
	   "creation config survives reopen");
	free(cfg);
	ok(engine_topic_delete(e, "beta") == 0, "delete beta");
	ok(engine_topic_delete(e, "beta") == CHRONIK_ENOTOPIC, "delete twice is ENOTOPIC");
	engine_close(e);
	e = open_or_bail(dir, NULL);
	ok(engine_topic_partitions(e, "beta", &np) == CHRONIK_ENOTOPIC, "deletion survives reopen");
	ok(engine_topic_create(e, "beta", 2, NULL) == 0, "recreate beta");
	engine_close(e);
}

/* Lines "line-<i>" for i in [from, to), into buf; returns length. */
static size_t make_lines(char *buf, int from, int to)
{
	size_t n = 0;
	for (int i = from; i < to; i++)
		n += (size_t)sprintf(buf + n, "line-%d\n", i);
	return n;
}

static uint32_t get_batch_len(const uint8_t *p)
{
	return ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
}

static void test_append_read(const char *dir)
{
	struct engine_options o;
	engine_options_init(&o);
	o.wal_segment_bytes = 8192; /* force rotations */
	o.no_index = true; /* the WAL path: batches as appended (test_warm: segments) */
	struct engine *e = open_or_bail(dir, &o);
	struct partition *p;
	struct partition_info info;
	static char lines[1 << 20], raw[1 << 20], got[1 << 20];
	size_t rawlen = 0;
	int64_t base;
	int rc, i, bad;

	ok(engine_topic_create(e, "logs", 2, NULL) == 0, "create logs/2");
	p = part_or_bail(e, "logs", 1);
	for (i = 0; i < 50; i++) {
		size_t n = make_lines(lines, i * 20, i * 20 + 20);
		rc = engine_append_lines(p, lines, n, &base);
		if (rc || base != i * 20)
			break;
		memcpy(raw + rawlen, lines, n);
		rawlen += n;
	}
	ok(i == 50, "50 appends of 20 lines, offsets dense (stopped at %d, rc %d)", i, rc);
	ok(engine_append_lines(p, "no newline", 10, &base) == -EINVAL, "partial line refused");
	engine_partition_info(p, &info);
	ok(info.next_offset == 1000 && info.raw_size == rawlen && info.batches == 50,
	   "info: next %lld raw %llu batches %llu", (long long)info.next_offset,
	   (unsigned long long)info.raw_size, (unsigned long long)info.batches);

	/* records with keys and headers, null value */
	struct record_header_in h = { "h", 1, "v", 1 };
	struct record_in recs[2] = {
		{ .timestamp = 5000,
		  .key = "k1",
		  .key_len = 2,
		  .value = "v1",
		  .value_len = 2,
		  .headers = &h,
		  .header_count = 1 },
		{ .timestamp = 6000, .key = NULL, .key_len = -1, .value = NULL, .value_len = -1 },
	};
	ok(engine_append_records(p, recs, 2, &base) == 0 && base == 1000,
	   "records appended at 1000");
	memcpy(raw + rawlen, "v1\n\n", 4);
	rawlen += 4;

	/* cursor from an offset in the middle of a batch */
	struct engine_cursor *c;
	struct engine_record r;
	ok(engine_cursor_open(p, 437, &c) == 0, "cursor at 437");
	bad = 0;
	for (i = 437; (rc = engine_cursor_next(c, &r)) == 1; i++) {
		char want[32];
		if (i >= 1000)
			continue;
		int wl = sprintf(want, "line-%d", i);
		if (r.offset != i || r.value_len != wl || memcmp(r.value, want, (size_t)wl) != 0)
			bad++;
	}
	ok(rc == 0 && i == 1002 && bad == 0, "cursor returns 437..1001 in order (%d bad, end %d)",
	   bad, i);
	engine_cursor_close(c);

	ok(engine_cursor_open(p, 1000, &c) == 0 && engine_cursor_next(c, &r) == 1 &&
		   r.key_len == 2 && memcmp(r.key, "k1", 2) == 0 && r.timestamp == 5000 &&
		   r.header_count == 1,
	   "keyed record with header and timestamp");
	ok(engine_cursor_next(c, &r) == 1 && r.value_len == -1 && r.key_len == -1 &&
		   r.offset == 1001,
	   "null key and value");
	ok(engine_cursor_next(c, &r) == 0, "end of partition");
	engine_cursor_close(c);
	ok(engine_cursor_open(p, 5000, &c) == CHRONIK_ERANGE, "cursor past the end is ERANGE");

	/* raw reads at every position, in odd sizes */
	bad = 0;
	for (size_t pos = 0; pos < rawlen; pos += 1 + pos % 7) {
		size_t want = (pos * 31) % 3000 + 1;
		if (want > rawlen - pos)
			want = rawlen - pos;
		ssize_t n = engine_read_raw(p, pos, got, (pos * 31) % 3000 + 1);
		if (n != (ssize_t)want || memcmp(got, raw + pos, want) != 0)
			bad++;
	}
	ok(bad == 0, "raw reads at every position match (%d bad)", bad);
	ok(engine_read_raw(p, rawlen, got, 10) == 0, "raw read at the end is 0");
	ok(engine_read_raw(p, 0, got, sizeof(got)) == (ssize_t)rawlen &&
		   memcmp(got, raw, rawlen) == 0,
	   "whole raw view in one read");

	/* batches */
	uint8_t *bb;
	size_t blen;
	ok(engine_read_batches(p, 430, 1, &bb, &blen) == 0 && blen > 0,
	   "read_batches gives one batch");
	struct batch_header bh;
	ok(batch_header_parse(bb, blen, &bh) == 0 && bh.base_offset == 420 &&
		   bh.record_count == 20 && batch_crc_check(bb, blen) == 0,
	   "it is the batch holding 430, base offset patched, CRC intact");
	free(bb);
	ok(engine_read_batches(p, 0, 1 << 20, &bb, &blen) == 0, "read_batches from 0");
	size_t nb = 0;
	for (size_t off = 0; off + 12 <= blen; nb++)
		off += 12 + get_batch_len(bb + off);
	ok(nb == 51, "all 51 batches returned (%zu)", nb);
	free(bb);
	ok(engine_read_batches(p, 1002, 100, &bb, &blen) == 0 && blen == 0, "nothing at the end");
	ok(engine_read_batches(p, 1003, 100, &bb, &blen) == CHRONIK_ERANGE,
	   "past the end is ERANGE");

	/* timestamps */
	int64_t off;
	struct partition *p0 = part_or_bail(e, "logs", 0);
	struct record_in tsr[3] = {
		{ .timestamp = 1000, .key_len = -1, .value = "a", .value_len = 1 },
		{ .timestamp = 2000, .key_len = -1, .value = "b", .value_len = 1 },
		{ .timestamp = 3000, .key_len = -1, .value = "c", .value_len = 1 },
	};
	ok(engine_append_records(p0, tsr, 3, &base) == 0 && base == 0,
	   "timestamped records in logs/0");
	ok(engine_offset_for_timestamp(p0, 1500, &off) == 0 && off == 1, "offset for ts 1500 is 1");
	ok(engine_offset_for_timestamp(p0, 0, &off) == 0 && off == 0, "offset for ts 0 is 0");
	ok(engine_offset_for_timestamp(p0, 3001, &off) == 0 && off == 3, "future ts gives the end");
	engine_partition_unref(p0);

	/* waits */
	ok(engine_partition_wait(p, 1001, 10) == 1, "wait for existing data returns at once");
	ok(engine_partition_wait(p, 1002, 50) == 0, "wait times out");
	engine_partition_unref(p);
	engine_close(e);

	/* reopen: rotation produced several files; everything is recovered */
	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "logs", 1);
	engine_partition_info(p, &info);
	ok(info.next_offset == 1002 && info.raw_size == rawlen && info.batches == 51,
	   "after reopen: next %lld raw %llu", (long long)info.next_offset,
	   (unsigned long long)info.raw_size);
	ok(engine_read_raw(p, 0, got, sizeof(got)) == (ssize_t)rawlen &&
		   memcmp(got, raw, rawlen) == 0,
	   "raw view identical after reopen");
	ok(engine_append_lines(p, "after\n", 6, &base) == 0 && base == 1002,
	   "append continues at 1002");
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);
}

static void *waiter(void *arg)
{
	struct partition *p = arg;
	return (void *)(intptr_t)engine_partition_wait(p, 0, 5000);
}

static void test_wait_wakes(const char *dir)
{
	struct engine *e = open_or_bail(dir, NULL);
	struct partition *p;
	pthread_t t;
	void *res;
	int64_t base;

	engine_topic_create(e, "w", 1, NULL);
	p = part_or_bail(e, "w", 0);
	pthread_create(&t, NULL, waiter, p);
	usleep(50000);
	engine_append_lines(p, "x\n", 2, &base);
	pthread_join(t, &res);
	ok((intptr_t)res == 1, "a blocked waiter wakes on append");
	engine_partition_unref(p);
	engine_close(e);
}

/* A batch from outside must say the truth about its records. */
static void test_batch_checks(const char *dir)
{
	struct engine *e = open_or_bail(dir, NULL);
	struct partition *p;
	struct batch_builder b;
	uint8_t *buf;
	size_t len;
	int64_t base;

	engine_topic_create(e, "chk", 1, NULL);
	p = part_or_bail(e, "chk", 0);
	batch_builder_init(&b);
	for (int i = 0; i < 3; i++) {
		struct record_in r = {
			.timestamp = 1, .key_len = -1, .value = "abc", .value_len = 3
		};
		batch_builder_add(&b, &r);
	}
	batch_builder_finish(&b, &buf, &len);
	batch_builder_fini(&b);

	/* lastOffsetDelta (bytes 23-26) says 0 for 3 records; CRC redone */
	uint8_t *bad = malloc(len);
	memcpy(bad, buf, len);
	bad[23] = bad[24] = bad[25] = bad[26] = 0;
	uint32_t crc = crc32c(0, bad + 21, len - 21);
	bad[17] = (uint8_t)(crc >> 24);
	bad[18] = (uint8_t)(crc >> 16);
	bad[19] = (uint8_t)(crc >> 8);
	bad[20] = (uint8_t)crc;
	ok(engine_append_batch(p, bad, len, true, &base) == CHRONIK_ECORRUPT,
	   "a batch whose lastOffsetDelta disagrees with its count is refused");
	ok(engine_append_batch(p, buf, len, true, &base) == 0 && base == 0,
	   "the honest batch is taken at offset 0");
	memcpy(bad, buf, len);
	bad[30] ^= 1; /* inside the CRC: the stored CRC no longer matches */
	ok(engine_append_batch(p, bad, len, true, &base) == CHRONIK_EBADCRC,
	   "a bad CRC is refused");
	/* lastOffsetDelta INT32_MAX: delta + 1 must not overflow (UBSan). */
	memcpy(bad, buf, len);
	bad[23] = 0x7f;
	bad[24] = bad[25] = bad[26] = 0xff;
	crc = crc32c(0, bad + 21, len - 21);
	bad[17] = (uint8_t)(crc >> 24);
	bad[18] = (uint8_t)(crc >> 16);
	bad[19] = (uint8_t)(crc >> 8);
	bad[20] = (uint8_t)crc;
	ok(engine_append_batch(p, bad, len, true, &base) == CHRONIK_ECORRUPT,
	   "a batch whose lastOffsetDelta is INT32_MAX is refused");
	struct partition_info info;
	engine_partition_info(p, &info);
	ok(info.next_offset == 3, "refused batches consumed no offsets");
	free(bad);
	free(buf);
	engine_partition_unref(p);
	engine_close(e);
}

static atomic_int listener_calls;

static void on_append(void *arg, struct partition *p)
{
	(void)p;
	usleep(20000); /* a slow listener: clearing it must wait for this call */
	atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_listener(const char *dir)
{
	struct engine *e = open_or_bail(dir, NULL);
	struct partition *p;
	int64_t base;
	int before;

	engine_topic_create(e, "l", 1, NULL);
	p = part_or_bail(e, "l", 0);
	engine_set_append_listener(e, on_append, &listener_calls);
	engine_append_lines(p, "a\n", 2, &base);
	engine_set_append_listener(e, NULL, NULL);
	before = atomic_load(&listener_calls);
	ok(before == 1,
	   "the listener was called once for one append, and had returned when cleared");
	engine_append_lines(p, "b\n", 2, &base);
	ok(atomic_load(&listener_calls) == before, "a cleared listener is not called");
	uint32_t id1 = engine_partition_topic_id(p);
	engine_topic_delete(e, "l");
	engine_topic_create(e, "l", 1, NULL);
	struct partition *p2 = part_or_bail(e, "l", 0);
	ok(engine_partition_topic_id(p2) > id1 && strcmp(engine_partition_topic(p2), "l") == 0,
	   "a recreated topic has a new id");
	ok(engine_append_lines(p, "c\n", 2, &base) == CHRONIK_ENOTOPIC,
	   "an append to a partition of the deleted topic fails");
	engine_partition_unref(p2);
	engine_partition_unref(p);
	engine_close(e);
}

/* Leader-based commit: an appender that finds no group in progress writes
 * its own group, so the listener (called by the thread that wrote the
 * group, before it gives the writer's token back) runs on the appending
 * thread. With fsync never and sealing by age off, the commit thread has
 * no reason to hold the token, so every one of these appends leads. */
static pthread_t leader_seen;
static atomic_int leader_calls;

static void on_append_thread(void *arg, struct partition *p)
{
	(void)arg;
	(void)p;
	leader_seen = pthread_self();
	atomic_fetch_add(&leader_calls, 1);
}

static void test_leader(const char *dir)
{
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct engine_stats st0, st1;
	int64_t base = -1;
	int led = 0, rc = 0;

	engine_options_init(&o);
	o.fsync = FSYNC_NEVER;
	o.wal_seal_ms = 0;
	e = open_or_bail(dir, &o);
	engine_topic_create(e, "lead", 1, NULL);
	p = part_or_bail(e, "lead", 0);
	engine_set_append_listener(e, on_append_thread, NULL);
	engine_stats_get(e, &st0);
	for (int i = 0; i < 100; i++) {
		leader_seen = 0;
		rc |= engine_append_lines(p, "x\n", 2, &base);
		led += pthread_equal(leader_seen, pthread_self()) != 0;
	}
	engine_stats_get(e, &st1);
	engine_set_append_listener(e, NULL, NULL);
	ok(rc == 0 && base == 99, "100 appends from one thread took offsets 0..99");
	ok(led == 100 && atomic_load(&leader_calls) == 100,
	   "each append was written by the appending thread itself (%d of 100)", led);
	ok(st1.groups - st0.groups == 100 && st1.appends - st0.appends == 100,
	   "one group per append");
	engine_partition_unref(p);
	engine_close(e);
}

/* A queue holding more than a WAL file's worth is written as several
 * groups, each within wal.segment.bytes (a group over 4 GiB would fail
 * every appender in it). The listener holds the writer's token (appender
 * a leads its own group) while the other appenders queue up behind it, so
 * they all wait for the same turn, the commit thread's next group. */
#define SPLIT_THREADS 4
static sem_t split_hold;
static atomic_int split_first;
static struct partition *split_part;
static int split_rc[SPLIT_THREADS];
static atomic_int split_tid[SPLIT_THREADS];

static void on_append_hold(void *arg, struct partition *p)
{
	(void)arg;
	(void)p;
	if (atomic_exchange(&split_first, 0))
		sem_wait(&split_hold);
}

static void *split_appender(void *arg)
{
	int i = (int)(intptr_t)arg;
	char line[3000];
	memset(line, 'a' + i, sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	atomic_store(&split_tid[i], (int)gettid());
	split_rc[i] = engine_append_lines(split_part, line, sizeof(line), NULL);
	return NULL;
}

/* How many of appenders [1, SPLIT_THREADS) sleep: they wait for their
 * group (nothing else in commit_submit sleeps for long). */
static int sleeping_appenders(void)
{
	int n = 0;
	for (int i = 1; i < SPLIT_THREADS; i++) {
		char path[64], buf[512];
		int tid = atomic_load(&split_tid[i]);
		FILE *f;
		if (!tid)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
		f = fopen(path, "r");
		if (f && fgets(buf, sizeof(buf), f)) {
			char *q = strrchr(buf, ')');
			if (q && q[1] == ' ' && q[2] == 'S')
				n++;
		}
		if (f)
			fclose(f);
	}
	return n;
}

static void test_group_split(const char *dir)
{
	struct engine_options o;
	struct engine *e;
	pthread_t t[SPLIT_THREADS];
	char path[4096];
	struct stat st;
	bool fits = true;
	int failed = 0;

	engine_options_init(&o);
	o.wal_segment_bytes = 4096;
	e = open_or_bail(dir, &o);
	engine_topic_create(e, "split", 1, NULL);
	split_part = part_or_bail(e, "split", 0);
	sem_init(&split_hold, 0, 0);
	atomic_store(&split_first, 1);
	engine_set_append_listener(e, on_append_hold, NULL);
	pthread_create(&t[0], NULL, split_appender, (void *)(intptr_t)0);
	/* a holds the token in the listener once it is published */
	while (atomic_load(&split_first))
		usleep(1000);
	for (intptr_t i = 1; i < SPLIT_THREADS; i++)
		pthread_create(&t[i], NULL, split_appender, (void *)i);
	while (sleeping_appenders() < SPLIT_THREADS - 1)
		usleep(1000);
	sem_post(&split_hold);
	for (int i = 0; i < SPLIT_THREADS; i++)
		pthread_join(t[i], NULL);
	engine_set_append_listener(e, NULL, NULL);
	for (int i = 0; i < SPLIT_THREADS; i++)
		failed += split_rc[i] != 0;
	ok(failed == 0, "every append of the long queue succeeded");
	for (int seq = 0; seq < 16; seq++) {
		snprintf(path, sizeof(path), "%s/wal/%020d.wal", dir, seq);
		if (stat(path, &st) == 0 && st.st_size > 4096) {
			diag("%s: %lld bytes", path, (long long)st.st_size);
			fits = false;
		}
	}
	ok(fits, "the queue became groups that each fit in wal.segment.bytes");
	sem_destroy(&split_hold);
	engine_partition_unref(split_part);
	engine_close(e);
}

/* A read-only engine beside a live writer follows it with engine_refresh:
 * new records (across WAL rotations), new topics. */
static void test_live_reader(const char *dir)
{
	struct engine_options wo, ro;
	struct engine *w, *r;
	struct partition *wp, *rp;
	struct partition_info info;
	int64_t base;
	char buf[64];

	engine_options_init(&wo);
	wo.wal_segment_bytes = 4096;
	engine_options_init(&ro);
	ro.read_only = true;
	w = open_or_bail(dir, &wo);
	engine_topic_create(w, "live", 1, NULL);
	wp = part_or_bail(w, "live", 0);
	engine_append_lines(wp, "one\n", 4, &base);
	ok(engine_open(dir, &ro, &r) == 0, "a read-only engine opens beside the writer");
	rp = part_or_bail(r, "live", 0);
	engine_partition_info(rp, &info);
	ok(info.next_offset == 1, "it sees what was written before it opened");
	ok(engine_append_lines(rp, "no\n", 3, &base) == -EROFS, "it cannot append");
	for (int i = 0; i < 200; i++) {
		int n = sprintf(buf, "rec-%03d-%s\n", i, "padding-padding-padding-padding");
		engine_append_lines(wp, buf, (size_t)n, &base);
	}
	engine_topic_create(w, "later", 2, NULL);
	engine_partition_info(rp, &info);
	ok(info.next_offset == 1, "nothing new before a refresh");
	ok(engine_refresh(r) == 0, "refresh");
	engine_partition_info(rp, &info);
	ok(info.next_offset == 201,
	   "after refresh it sees all 201 records, across rotations (%lld)",
	   (long long)info.next_offset);
	int32_t np;
	ok(engine_topic_partitions(r, "later", &np) == 0 && np == 2, "and the topic created since");
	char got[64];
	ssize_t n = engine_read_raw(rp, info.raw_size - 40, got, 40);
	ok(n == 40 && memcmp(got + 40 - 8, "padding\n", 8) == 0, "the newest bytes read back");
	ok(engine_verify(r, NULL, NULL) == 0, "verify of the live reader is clean");
	engine_partition_unref(rp);
	engine_close(r);
	engine_partition_unref(wp);
	engine_close(w);
}

static void test_groups_and_lock(const char *dir)
{
	struct engine *e = open_or_bail(dir, NULL), *e2;
	int64_t off;
	char *md;

	ok(engine_group_offset_commit(e, "g1", "logs", 1, 42, "meta") == 0, "commit offset");
	ok(engine_group_offset_commit(e, "g1", "logs", 1, 43, NULL) == 0, "commit again");
	ok(engine_open(dir, NULL, &e2) == CHRONIK_ELOCKED, "second open is ELOCKED");
	engine_close(e);
	e = open_or_bail(dir, NULL);
	ok(engine_group_offset_fetch(e, "g1", "logs", 1, &off, &md) == 0 && off == 43 && md == NULL,
	   "committed offset survives reopen");
	ok(engine_group_offset_fetch(e, "g2", "logs", 1, &off, &md) == 0 && off == -1,
	   "unknown group has no offset");
	/* many commits compact the metadata log (while running); a topic
	 * deleted before that must not lend its id to the next one */
	struct partition *gone = NULL;
	ok(engine_topic_create(e, "gone", 1, NULL) == 0 &&
		   engine_partition_get(e, "gone", 0, &gone) == 0,
	   "a topic to delete before the compaction");
	uint32_t gone_id = gone ? engine_partition_topic_id(gone) : 0;
	engine_partition_unref(gone);
	engine_topic_delete(e, "gone");
	char meta[4200];
	struct stat st;
	snprintf(meta, sizeof(meta), "%s/meta.log", dir);
	off_t one = stat(meta, &st) == 0 ? st.st_size : 0;
	engine_group_offset_commit(e, "g1", "logs", 0, 0, "m");
	one = stat(meta, &st) == 0 ? st.st_size - one : 0; /* one commit's bytes */
	for (int i = 1; i < 5000; i++)
		engine_group_offset_commit(e, "g1", "logs", 0, i, "m");
	engine_close(e);
	e = open_or_bail(dir, NULL);
	off_t after = stat(meta, &st) == 0 ? st.st_size : 0;
	ok(one > 0 && after < 5000 * one / 2,
	   "the metadata log was compacted (%lld bytes for 5000 commits of %lld bytes)",
	   (long long)after, (long long)one);
	struct partition *again = NULL;
	ok(engine_topic_create(e, "again", 1, NULL) == 0 &&
		   engine_partition_get(e, "again", 0, &again) == 0 &&
		   engine_partition_topic_id(again) > gone_id,
	   "a topic created after the compaction gets an id never used before");
	engine_partition_unref(again);
	ok(engine_group_offset_fetch(e, "g1", "logs", 0, &off, &md) == 0 && off == 4999 && md &&
		   strcmp(md, "m") == 0,
	   "offsets intact after the metadata log was compacted");
	free(md);
	int32_t np;
	ok(engine_topic_partitions(e, "logs", &np) == 0 && np == 2,
	   "topics intact after compaction");
	engine_close(e);
}

/* max.topics and max.partitions: settable as strings, default 10,000 and
 * 100,000, and a create past either is CHRONIK_ELIMIT, creating nothing;
 * a deleted topic gives its room back. */
static void test_topic_limits(const char *dir)
{
	struct engine_options o;
	engine_options_init(&o);
	ok(o.max_topics == 10000 && o.max_partitions == 100000,
	   "limits default to 10000 topics and 100000 partitions (%d, %d)", (int)o.max_topics,
	   (int)o.max_partitions);
	ok(engine_options_set(&o, "max.topics", "2") == 0 &&
		   engine_options_set(&o, "max.partitions", "5") == 0 &&
		   engine_options_set(&o, "max.topics", "0") == -EINVAL &&
		   engine_options_set(&o, "max.partitions", "x") == -EINVAL,
	   "max.topics and max.partitions are settings (0 and junk refused)");
	ok(o.max_topics == 2 && o.max_partitions == 5, "and keep the values set");
	struct engine *e = open_or_bail(dir, &o);
	int32_t np;
	ok(engine_topic_create(e, "l1", 2, NULL) == 0 && engine_topic_create(e, "l2", 2, NULL) == 0,
	   "two topics of 2 partitions are created");
	int rc = engine_topic_create(e, "l3", 1, NULL);
	ok(rc == CHRONIK_ELIMIT, "a third topic is CHRONIK_ELIMIT (%s)", chronik_strerror(rc));
	ok(engine_topic_partitions(e, "l3", &np) == CHRONIK_ENOTOPIC, "and does not exist");
	ok(engine_topic_delete(e, "l2") == 0, "one is deleted");
	rc = engine_topic_create(e, "l3", 4, NULL);
	ok(rc == CHRONIK_ELIMIT, "a topic of 4 partitions would make 6 > 5: CHRONIK_ELIMIT (%d)",
	   rc);
	ok(engine_topic_create(e, "l3", 3, NULL) == 0, "one of 3 makes exactly 5 and is created");
	ok(chronik_errno(CHRONIK_ELIMIT) == EDQUOT, "the limit is EDQUOT for the filesystem");
	engine_close(e);
}

int main(void)
{
	char *dir = tmpdir_new("engine");
	char *d1, *d2, *d3, *d4;
	if (asprintf(&d1, "%s/a", dir) < 0 || asprintf(&d2, "%s/b", dir) < 0 ||
	    asprintf(&d3, "%s/c", dir) < 0 || asprintf(&d4, "%s/d", dir) < 0)
		bail("oom");
	test_topics(d1);
	test_append_read(d2);
	test_wait_wakes(d3);
	test_listener(d1);
	test_live_reader(d3);
	test_batch_checks(d1);
	test_groups_and_lock(d2);
	test_group_split(d4);
	char *d5, *d6;
	if (asprintf(&d5, "%s/e", dir) < 0 || asprintf(&d6, "%s/f", dir) < 0)
		bail("oom");
	test_topic_limits(d5);
	test_leader(d6);
	free(d5);
	free(d6);
	free(d1);
	free(d2);
	free(d3);
	free(d4);
	tmpdir_free(dir);
	return tap_exit();
}
