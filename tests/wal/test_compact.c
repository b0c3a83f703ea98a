/* test_compact.c - compaction (wal/compact.c): key-based compaction of 100
 * keys x 100 versions keeps the newest record of each key at its offset
 * and raw position; tombstones kept for delete.retention.ms and then
 * removed; the newest segment is never cleaned; time-based, hybrid and
 * custom policies; the background pass by min.cleanable.dirty.ratio;
 * reopen and verify. The topics of the on-demand tests set the ratio to 1,
 * which keeps the background pass out. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sys/time.h>

#include "byteorder.h"
#include "warmutil.h"

#define NKEYS 100
#define NVERS 100
#define T0 1700000000000LL
#define LINE 10 /* "v%03d-k%03d\n" */

static int64_t wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int append_one(struct partition *p, const char *key, const char *val, int64_t ts)
{
	struct record_in r = { .timestamp = ts, .key = key, .key_len = (int32_t)strlen(key),
			       .value = val, .value_len = val ? (int32_t)strlen(val) : -1 };
	int64_t base;
	return engine_append_records(p, &r, 1, &base);
}

static int64_t offs[20000];
static uint64_t raws[20000];
static char vals[20000][32];

static int check_newest(struct partition *p, const char *what)
{
	int64_t n = read_all(p, offs, raws, vals, 20000);
	int bad = 0;
	if (n != NKEYS + 1)
		return diag("%s: %" PRId64 " records", what, n), 0;
	for (int i = 0; i < NKEYS; i++) {
		char want[32];
		int64_t off = (int64_t)(NVERS - 1) * NKEYS + i;
		snprintf(want, sizeof(want), "v%03d-k%03d", NVERS - 1, i);
		if (offs[i] != off || raws[i] != (uint64_t)off * LINE || strcmp(vals[i], want))
			bad++;
	}
	if (bad)
		diag("%s: %d records wrong", what, bad);
	return bad == 0 && offs[NKEYS] == (int64_t)NKEYS * NVERS;
}

static void test_key(const char *root)
{
	char dir[4200], sub[64];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	struct engine_compact_result res;

	e = open_fresh_or_bail(root, "key", 16 << 10, &o, dir, sizeof(dir));
	ok(engine_topic_create(e, "k", 1, "{\"cleanup.policy\":\"compact\",\"min.cleanable.dirty.ratio\":\"1\"}") == 0, "topic k");
	p = part_or_bail(e, "k", 0);
	int err = 0;
	for (int v = 0; v < NVERS; v++)
		for (int i = 0; i < NKEYS; i++) {
			char key[16], val[16];
			snprintf(key, sizeof(key), "key-%03d", i);
			snprintf(val, sizeof(val), "v%03d-k%03d", v, i);
			err |= append_one(p, key, val, T0 + v * NKEYS + i);
		}
	ok(err == 0 && engine_index_now(e) == 0, "100 keys x 100 versions appended and indexed");
	/* The newest segment is never cleaned: one record of its own there. */
	ok(append_one(p, "filler", "filler", T0 + NKEYS * NVERS) == 0 &&
		   engine_index_now(e) == 0,
	   "a last record in a segment of its own");
	engine_partition_info(p, &info);
	ok(info.segments > 3 && info.wal_bytes == 0, "%" PRIu64 " segments", info.segments);
	ok(info.records == NKEYS * NVERS + 1, "records before compaction: %" PRIu64, info.records);
	uint64_t bytes_before = info.segment_bytes, raw_size = info.raw_size;

	struct engine_cursor *held;
	struct engine_record r;
	ok(engine_cursor_open(p, 0, &held) == 0 && engine_cursor_next(held, &r) == 1 &&
		   r.offset == 0,
	   "a reader holds the first old segment");

	ok(engine_partition_compact(p, &res) == 0, "compacted");
	ok(res.records_in == NKEYS * NVERS && res.records_out == NKEYS &&
		   res.segments_in == info.segments - 1 && res.segments_out >= 1,
	   "%" PRIu64 " records in %" PRIu64 " segments -> %" PRIu64 " in %" PRIu64,
	   res.records_in, res.segments_in, res.records_out, res.segments_out);
	ok(check_newest(p, "after compaction"),
	   "100 records, the newest values, at their offsets and raw positions, then the newest segment");
	engine_partition_info(p, &info);
	ok(info.segment_bytes < bytes_before / 10 && info.raw_size == raw_size &&
		   info.next_offset == NKEYS * NVERS + 1 && info.log_start_offset == 0,
	   "space freed (%" PRIu64 " -> %" PRIu64 " bytes); raw size and offsets unchanged",
	   bytes_before, info.segment_bytes);
	ok(info.records == NKEYS + 1,
	   "records: the 100 kept and the newest segment's one, not every offset (%" PRIu64 ")",
	   info.records);

	/* The reader finishes on the old segment it holds. */
	int64_t prev = 0, got = 1;
	int order = 0;
	while (engine_cursor_next(held, &r) == 1) {
		if (r.offset <= prev)
			order++;
		prev = r.offset;
		got++;
	}
	engine_cursor_close(held);
	ok(order == 0 && prev == NKEYS * NVERS && got >= NKEYS + 1,
	   "the reader of the old set read on in order to the end (%" PRId64 " records)", got);

	/* dd-style raw reads. */
	char buf[64];
	uint64_t from;
	int64_t kept = (int64_t)(NVERS - 1) * NKEYS + 50;
	ok(engine_read_raw_at(p, (uint64_t)kept * LINE, buf, LINE, &from) == LINE &&
		   from == (uint64_t)kept * LINE && memcmp(buf, "v099-k050\n", LINE) == 0,
	   "a raw read at a kept record's position reads exactly it");
	ok(engine_read_raw_at(p, 5 * LINE + 3, buf, LINE, &from) == LINE &&
		   from == (uint64_t)(NVERS - 1) * NKEYS * LINE && memcmp(buf, "v099-k000\n", LINE) == 0,
	   "a raw read inside a removed record continues at the next kept one");
	uint8_t *bb;
	size_t blen;
	ok(engine_read_batches(p, 10, 1 << 20, &bb, &blen) == 0 && blen > 0 &&
		   (int64_t)get_be64(bb) == (NVERS - 1) * NKEYS,
	   "Fetch inside a hole starts at the next kept batch");
	free(bb);
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	snprintf(sub, sizeof(sub), "segments/%u/0", engine_partition_topic_id(p));
	ok(count_seg_files(dir, sub) == info.segments, "the old files are gone (%zu files)",
	   count_seg_files(dir, sub));

	/* Compacting again changes nothing but the file. */
	ok(engine_partition_compact(p, &res) == 0 && res.records_in == NKEYS &&
		   res.records_out == NKEYS && check_newest(p, "again"),
	   "a second compaction keeps the same records");
	engine_partition_unref(p);
	engine_close(e);

	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "k", 0);
	ok(check_newest(p, "after reopen") && engine_verify(e, NULL, NULL) == 0,
	   "after reopen: the same records, verify clean");
	ok(append_one(p, "key-000", "after", T0) == 0, "appends continue");
	engine_partition_unref(p);
	engine_close(e);
}

static void test_tombstones(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct engine_compact_result res;
	int64_t old = wall_ms() - 10000; /* ten seconds ago */

	e = open_fresh_or_bail(root, "tomb", 0, &o, dir, sizeof(dir));
	ok(engine_topic_create(e, "t", 1,
			       "{\"cleanup.policy\":\"compact\",\"delete.retention.ms\":\"3600000\",\"min.cleanable.dirty.ratio\":\"1\"}") ==
		   0,
	   "topic t, delete.retention.ms one hour");
	p = part_or_bail(e, "t", 0);
	int err = 0;
	for (int i = 0; i < 10; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		err |= append_one(p, key, "old", old);
	}
	for (int i = 0; i < 10; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		err |= append_one(p, key, i < 5 ? NULL : "new", old);
	}
	err |= engine_index_now(e);
	err |= append_one(p, "filler", "x", old);
	err |= engine_index_now(e);
	ok(err == 0, "10 keys, then 5 tombstones and 5 new values, in a segment; a filler after");
	ok(engine_partition_compact(p, &res) == 0 && res.records_in == 20 && res.records_out == 10,
	   "compaction keeps the tombstones younger than delete.retention.ms");
	int64_t n = read_all(p, offs, raws, vals, 20000);
	int nulls = 0;
	for (int64_t i = 0; i < n; i++)
		nulls += strcmp(vals[i], "(null)") == 0;
	ok(n == 11 && nulls == 5 && offs[0] == 10 && raws[0] == 40 /* 10 x "old\n" */,
	   "5 tombstones and 5 values at their offsets, and the filler");
	ok(engine_topic_config_set(e, "t",
				   "{\"cleanup.policy\":\"compact\",\"delete.retention.ms\":\"1000\",\"min.cleanable.dirty.ratio\":\"1\"}") ==
		   0,
	   "delete.retention.ms set to one second");
	ok(engine_partition_compact(p, &res) == 0 && res.records_in == 10 && res.records_out == 5,
	   "tombstones older than delete.retention.ms are removed");
	n = read_all(p, offs, raws, vals, 20000);
	nulls = 0;
	int wrong = 0;
	for (int64_t i = 0; i < n; i++) {
		nulls += strcmp(vals[i], "(null)") == 0;
		if (i < 5 && (offs[i] != 15 + i || strcmp(vals[i], "new")))
			wrong++;
	}
	ok(n == 6 && nulls == 0 && wrong == 0, "the 5 new values and the filler remain");
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);
	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "t", 0);
	ok(read_all(p, offs, raws, vals, 20000) == 6 && engine_verify(e, NULL, NULL) == 0,
	   "after reopen: the same, verify clean");
	engine_partition_unref(p);
	engine_close(e);
}

/* A custom policy: drop the records at odd offsets; counts its calls. */
static int odd_calls;
static int drop_odd(void *arg, const char *config_json, const struct engine_record *r)
{
	(void)config_json;
	(*(int *)arg)++;
	return r->offset % 2 == 0;
}

/* Time-based (retention.ms inside a segment), hybrid (time then key), and
 * a custom filter. */
static void test_time_hybrid_custom(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct engine_compact_result res;
	int64_t now = wall_ms(), old = now - 7200000; /* two hours ago */
	int err = 0;

	e = open_fresh_or_bail(root, "time", 0, &o, dir, sizeof(dir));

	/* Time: 50 records two hours old, then 50 fresh, in one segment. */
	ok(engine_topic_create(e, "d", 1,
			       "{\"cleanup.policy\":\"delete\",\"retention.ms\":\"3600000\"}") == 0,
	   "topic d, retention.ms one hour");
	p = part_or_bail(e, "d", 0);
	for (int i = 0; i < 100; i++) {
		char val[16];
		snprintf(val, sizeof(val), "d%02d", i);
		err |= append_one(p, "k", val, i < 50 ? old : now);
	}
	err |= engine_index_now(e);
	err |= append_one(p, "k", "last", now);
	err |= engine_index_now(e);
	ok(err == 0, "old and fresh records in a segment, a last one after");
	ok(engine_partition_compact(p, &res) == 0 && res.records_in == 100 && res.records_out == 50,
	   "time-based: the records older than retention.ms are dropped inside the segment");
	int64_t n = read_all(p, offs, raws, vals, 20000);
	ok(n == 51 && offs[0] == 50 && raws[0] == 50 * 4 && strcmp(vals[0], "d50") == 0 &&
		   offs[50] == 100,
	   "the fresh ones remain at their offsets and raw positions");
	struct partition_info info;
	engine_partition_info(p, &info);
	ok(info.records == 51, "records: 51 (%" PRIu64 ")", info.records);
	engine_partition_unref(p);

	/* Hybrid: ten keys two hours old, then five of them again, fresh. */
	ok(engine_topic_create(e, "h", 1,
			       "{\"cleanup.policy\":\"compact,delete\",\"retention.ms\":\"3600000\",\"min.cleanable.dirty.ratio\":\"1\"}") == 0,
	   "topic h, compact,delete");
	p = part_or_bail(e, "h", 0);
	err = 0;
	for (int i = 0; i < 15; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i % 10);
		err |= append_one(p, key, i < 10 ? "old" : "new", i < 10 ? old : now);
	}
	err |= engine_index_now(e);
	err |= append_one(p, "k0", "last", now);
	err |= engine_index_now(e);
	/* Compacted before ok(): its arguments are evaluated in no set order,
	 * so the message would show res from before the call. */
	int crc = engine_partition_compact(p, &res);
	ok(err == 0 && crc == 0 && res.records_in == 15 && res.records_out == 5,
	   "hybrid: superseded and expired records go (%" PRIu64 " kept)", res.records_out);
	n = read_all(p, offs, raws, vals, 20000);
	int wrong = 0;
	for (int i = 0; i < 5; i++)
		wrong += offs[i] != 10 + i || strcmp(vals[i], "new") != 0;
	ok(n == 6 && wrong == 0, "the five fresh versions remain, then the newest segment");
	engine_partition_unref(p);

	/* Custom: a callback registered by name. */
	ok(engine_topic_create(e, "c", 1,
			       "{\"compaction.filter\":\"drop-odd\",\"min.cleanable.dirty.ratio\":\"1\"}") == 0,
	   "topic c names the filter drop-odd (cleanup.policy delete, no retention)");
	p = part_or_bail(e, "c", 0);
	err = 0;
	for (int i = 0; i < 40; i++)
		err |= append_one(p, "k", "vv", now);
	err |= engine_index_now(e);
	err |= append_one(p, "k", "last", now);
	err |= engine_index_now(e);
	ok(err == 0 && engine_partition_compact(p, &res) == 0 && res.records_in == 0,
	   "not registered yet: nothing is rewritten");
	ok(engine_compact_filter_register(e, "drop-odd", drop_odd, &odd_calls) == 0,
	   "engine_compact_filter_register");
	crc = engine_partition_compact(p, &res);
	ok(crc == 0 && res.records_in == 40 && res.records_out == 20 && odd_calls == 40,
	   "the callback decides for every record (%d calls, %" PRIu64 " records in)", odd_calls,
	   res.records_in);
	n = read_all(p, offs, raws, vals, 20000);
	wrong = 0;
	for (int i = 0; i < 20; i++)
		wrong += offs[i] != 2 * i || raws[i] != (uint64_t)(2 * i) * 3;
	ok(n == 21 && wrong == 0, "the records at even offsets remain, at their raw positions");
	engine_partition_info(p, &info);
	ok(info.records == 21, "records: 21 (%" PRIu64 ")", info.records);
	/* DeleteRecords into the compacted segment, whose offsets have holes:
	 * the even offsets 12..38 and the last record remain. */
	int64_t ls;
	ok(engine_partition_delete_records(p, 11, &ls) == 0 && ls == 11,
	   "delete records below 11");
	engine_partition_info(p, &info);
	ok(info.records == 15, "records: 15 past the log start (%" PRIu64 ")", info.records);
	engine_partition_info(p, &info);
	ok(info.records == 15, "again, counted once and kept: 15 (%" PRIu64 ")", info.records);
	ok(engine_partition_delete_records(p, 14, &ls) == 0 && ls == 14,
	   "delete records below 14");
	engine_partition_info(p, &info);
	ok(info.records == 14, "records: 14 past the new log start (%" PRIu64 ")", info.records);
	ok(engine_compact_filter_register(e, "drop-odd", NULL, NULL) == 0, "unregistered");
	engine_partition_unref(p);

	/* The shipped example, value.prefix. */
	ok(engine_topic_create(e, "v", 1,
			       "{\"compaction.filter\":\"value.prefix\","
			       "\"compaction.drop.value.prefix\":\"DEBUG \",\"min.cleanable.dirty.ratio\":\"1\"}") == 0,
	   "topic v with the shipped value.prefix filter");
	p = part_or_bail(e, "v", 0);
	err = 0;
	for (int i = 0; i < 30; i++)
		err |= append_one(p, "k", i % 3 ? "DEBUG noise" : "INFO kept", now);
	err |= engine_index_now(e);
	err |= append_one(p, "k", "DEBUG last", now);
	err |= engine_index_now(e);
	ok(err == 0 && engine_partition_compact(p, &res) == 0 && res.records_out == 10,
	   "value.prefix drops the values starting with the prefix");
	n = read_all(p, offs, raws, vals, 20000);
	wrong = 0;
	for (int i = 0; i < 10; i++)
		wrong += offs[i] != 3 * i || strcmp(vals[i], "INFO kept") != 0;
	ok(n == 11 && wrong == 0 && strcmp(vals[10], "DEBUG last") == 0,
	   "the other records remain; the newest segment is untouched");
	engine_partition_unref(p);
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_close(e);
}

/* The compaction thread's pass (engine_compact_now waits for one)
 * compacts a partition once its dirty ratio is above
 * min.cleanable.dirty.ratio, and leaves a clean one alone. */
static void test_background(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p, *q;
	struct partition_info info;
	int err = 0;

	e = open_fresh_or_bail(root, "bg", 16 << 10, &o, dir, sizeof(dir));
	ok(engine_topic_create(e, "b", 1, "{\"cleanup.policy\":\"compact\"}") == 0 &&
		   engine_topic_create(e, "keep", 1,
				       "{\"cleanup.policy\":\"compact\","
				       "\"min.cleanable.dirty.ratio\":\"1\"}") == 0,
	   "topic b (default ratio 0.5) and keep (ratio 1)");
	p = part_or_bail(e, "b", 0);
	q = part_or_bail(e, "keep", 0);
	for (int v = 0; v < 20; v++)
		for (int i = 0; i < NKEYS; i++) {
			char key[16], val[16];
			snprintf(key, sizeof(key), "key-%03d", i);
			snprintf(val, sizeof(val), "v%03d-k%03d", v, i);
			err |= append_one(p, key, val, T0);
			err |= append_one(q, key, val, T0);
		}
	err |= engine_index_now(e);
	err |= engine_compact_now(e);
	err |= append_one(p, "filler", "filler", T0);
	err |= append_one(q, "filler", "filler", T0);
	/* The compaction thread's pass after this seal compacts b. */
	err |= engine_index_now(e);
	err |= engine_compact_now(e);
	ok(err == 0, "20 versions of 100 keys in both, indexed");
	/* The segment that was newest at the first pass stays dirty (too
	 * little of the whole to pass the ratio), so some older versions of
	 * its keys remain; the newest value of every key is there. */
	int64_t n = read_all(p, offs, raws, vals, 20000);
	int last[NKEYS], wrong = 0;
	for (int i = 0; i < NKEYS; i++)
		last[i] = -1;
	for (int64_t j = 0; j < n; j++) {
		int v, k;
		if (sscanf(vals[j], "v%3d-k%3d", &v, &k) == 2 && k >= 0 && k < NKEYS) {
			if (v <= last[k] || raws[j] != (uint64_t)offs[j] * LINE)
				wrong++;
			last[k] = v;
		}
	}
	for (int i = 0; i < NKEYS; i++)
		wrong += last[i] != 19;
	ok(n < 20 * NKEYS / 4 && wrong == 0,
	   "b was compacted in the background (%" PRId64 " of %d records left, newest values)", n,
	   20 * NKEYS + 1);
	ok(read_all(q, offs, raws, vals, 20000) == 20 * NKEYS + 1,
	   "keep, at ratio 1, was not");
	/* Clean it all first: the segment left dirty above holds however
	 * many records its WAL file took, which depends on when the
	 * indexer sealed it, and could tip the ratio below on its own. */
	err = engine_partition_compact(p, NULL);
	engine_partition_info(p, &info);
	uint64_t segs = info.segments, bytes = info.segment_bytes;
	/* One small new segment: the dirty part is far below half. */
	err |= append_one(p, "key-000", "v100-k000", T0);
	err |= engine_index_now(e);
	err |= append_one(p, "filler", "filler2", T0);
	err |= engine_index_now(e);
	err |= engine_compact_now(e);
	engine_partition_info(p, &info);
	ok(err == 0 && info.segments == segs + 2 && info.segment_bytes > bytes,
	   "a clean partition with a little new dirt is left alone (%" PRIu64 " segments)",
	   info.segments);
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_partition_unref(q);
	engine_partition_unref(p);
	engine_close(e);
}

int main(void)
{
	char *root = tmpdir_new("compact");
	test_key(root);
	test_tombstones(root);
	test_time_hybrid_custom(root);
	test_background(root);
	tmpdir_free(root);
	return tap_exit();
}
