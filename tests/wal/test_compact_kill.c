/* test_compact_kill.c - kill -9 while compaction rewrites segments, 25
 * times at pseudo-random points. The child appends records of 50 keys
 * ("key-<offset % 50>", value "v-<offset>") to a compact topic whose WAL
 * rotates every 8 KiB, with min.cleanable.dirty.ratio 0 (the compaction
 * thread compacts after every segment) and a thread compacting on demand in a
 * loop; it reports each acknowledged offset through a pipe. After each
 * kill the partition is checked against a model of what compaction may
 * and may not have removed (check(), "THE MODEL"): by a cursor, by raw
 * position, through the offset and raw indexes, against the registry and
 * info's record count; every acknowledged offset is below the next offset,
 * no segment file is left that the registry does not list, and verify is
 * clean. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "warmutil.h"

#define ROUNDS 25
#define KEYS 50
#define MAXOFF 400000

static void *compactor(void *arg)
{
	struct partition *p = arg;
	for (;;) {
		engine_partition_compact(p, NULL);
		usleep(2000);
	}
	return NULL;
}

static void child(const char *dir, int wfd)
{
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	pthread_t t;

	engine_options_init(&o);
	o.wal_segment_bytes = 8192;
	if (engine_open(dir, &o, &e))
		_exit(2);
	if (engine_partition_get(e, "k", 0, &p))
		_exit(3);
	if (pthread_create(&t, NULL, compactor, p))
		_exit(6);
	engine_partition_info(p, &info);
	for (int64_t i = info.next_offset;; i += 2) {
		char k[2][16], v[2][24];
		struct record_in r[2];
		int64_t base;
		for (int j = 0; j < 2; j++) {
			snprintf(k[j], sizeof(k[j]), "key-%lld", (long long)((i + j) % KEYS));
			snprintf(v[j], sizeof(v[j]), "v-%lld", (long long)(i + j));
			r[j] = (struct record_in){ .timestamp = 1700000000000LL,
						   .key = k[j],
						   .key_len = (int32_t)strlen(k[j]),
						   .value = v[j],
						   .value_len = (int32_t)strlen(v[j]) };
		}
		if (engine_append_records(p, r, 2, &base) || base != i)
			_exit(4);
		int64_t end = i + 2;
		if (write(wfd, &end, sizeof(end)) != sizeof(end))
			_exit(5);
	}
}

static uint64_t raw_at[MAXOFF + 1]; /* raw position of each offset */
static bool present[MAXOFF]; /* read back by the cursor from 0 */

/* The line appended at offset o ("v-<o>\n") into buf: its length. */
static int line_of(int64_t o, char *buf)
{
	return sprintf(buf, "v-%lld\n", (long long)o);
}

/* THE MODEL. The child appended offset o with key "key-<o % KEYS>" and
 * value "v-<o>" at raw position raw_at[o]; every offset below acked was
 * acknowledged, and every offset below the next offset N was written
 * (an unacknowledged append that reached the WAL counts as written).
 * Compaction cleans the segments before the newest one (base offset B)
 * and its offset map covers only them (compact.c), so after any number of
 * compactions, each cut short by a kill or not:
 *   - every o in [B, N) (the newest segment and the WAL) is there;
 *   - every o < B whose next version o + KEYS is not below B (the newest
 *     of its key in the cleanable range) is there;
 *   - an o < B with o + KEYS < B may be there or gone;
 *   - nothing else is there, nothing twice, nothing changed, each at its
 *     offset and raw position.
 * The records read back are checked against it by a cursor from 0, then
 * by raw position (engine_read_raw_at of each record's line, and of each
 * hole, which reads on at the next kept record), by the raw-position and
 * offset indexes (a cursor opened at each hole), and against the registry
 * (each segment's records and range) and info's record count. 0 when all
 * holds; *kept and *next as seen. */
static int check(struct engine *e, int64_t acked, int64_t *kept, int64_t *next)
{
	struct partition *p = part_or_bail(e, "k", 0);
	struct partition_info info;
	struct engine_cursor *c;
	struct engine_record r;
	struct engine_segment_info *si = NULL;
	size_t nsi = 0;
	int64_t prev = -1, n, b;
	int bad = 0, rc;
	char want[32], got[64];

#define BAD(...)                           \
	do {                               \
		if (bad++ < 8)             \
			diag(__VA_ARGS__); \
	} while (0)

	engine_partition_info(p, &info);
	n = *next = info.next_offset;
	*kept = 0;
	if (n < acked || n > MAXOFF) {
		diag("next offset %" PRId64 ", acknowledged %" PRId64, n, acked);
		engine_partition_unref(p);
		return 1;
	}
	if (engine_partition_segments(p, &si, &nsi) != 0)
		bail("engine_partition_segments");
	b = nsi ? si[nsi - 1].base_offset : n;
	memset(present, 0, (size_t)n * sizeof(present[0]));

	/* The cursor from 0. */
	if (engine_cursor_open(p, 0, &c))
		bail("engine_cursor_open");
	while ((rc = engine_cursor_next(c, &r)) == 1) {
		int wl = sprintf(want, "v-%lld", (long long)r.offset);
		char key[16];
		int kl = sprintf(key, "key-%lld", (long long)(r.offset % KEYS));
		if (r.offset <= prev || r.offset >= n) {
			BAD("offset %" PRId64 " after %" PRId64 " (next %" PRId64 ")", r.offset,
			    prev, n);
			continue;
		}
		if (r.value_len != wl || memcmp(r.value, want, (size_t)wl) || r.key_len != kl ||
		    memcmp(r.key, key, (size_t)kl) || r.raw_pos != raw_at[r.offset])
			BAD("record at %" PRId64 " changed (raw %" PRIu64 ")", r.offset, r.raw_pos);
		present[r.offset] = true;
		prev = r.offset;
		(*kept)++;
	}
	engine_cursor_close(c);
	if (rc < 0)
		BAD("cursor: %s", chronik_strerror(rc));
	for (int64_t o = 0; o < n; o++) {
		bool must = o >= b || o + KEYS >= b;
		if (must && !present[o])
			BAD("offset %" PRId64 " is missing (newest segment at %" PRId64
			    ", next %" PRId64 ", acknowledged %" PRId64 ")",
			    o, b, n, acked);
	}

	/* By raw position: every kept line where it was appended; a read in
	 * a hole continues at the next kept record. The offset and raw
	 * indexes: a cursor opened at a hole starts at the next kept record. */
	int64_t next_kept = n;
	for (int64_t o = n - 1; o >= 0; o--) {
		uint64_t from = 0;
		int ll = line_of(o, want);
		if (present[o]) {
			ssize_t m = engine_read_raw_at(p, raw_at[o], got, (size_t)ll, &from);
			if (m != ll || from != raw_at[o] || memcmp(got, want, (size_t)ll))
				BAD("raw read at %" PRIu64 " (offset %" PRId64
				    "): %zd bytes from %" PRIu64,
				    raw_at[o], o, m, from);
			next_kept = o;
			continue;
		}
		if (o > 0 && !present[o - 1] && o % 7)
			continue; /* inside a hole: its first offset and every 7th */
		ssize_t m = engine_read_raw_at(p, raw_at[o] + 1, got, 8, &from);
		if (next_kept < n ? (m <= 0 || from != raw_at[next_kept]) : m > 0)
			BAD("raw read inside removed offset %" PRId64 ": %zd bytes from %" PRIu64
			    " (next kept %" PRId64 ")",
			    o, m, from, next_kept);
		for (int by_raw = 0; by_raw < 2; by_raw++) {
			rc = by_raw ? engine_cursor_open_raw(p, raw_at[o], &c) :
				      engine_cursor_open(p, o, &c);
			if (rc)
				bail("cursor open");
			rc = engine_cursor_next(c, &r);
			if (next_kept < n ? (rc != 1 || r.offset != next_kept) : rc != 0)
				BAD("cursor at removed %s %" PRId64 " starts at %" PRId64
				    " (rc %d), not %" PRId64,
				    by_raw ? "raw position of" : "offset", o,
				    rc == 1 ? r.offset : -1, rc, next_kept);
			engine_cursor_close(c);
		}
	}

	/* The registry: each segment's range and records are what is there,
	 * ranges in order, and the WAL holds the rest; info counts them. */
	int64_t seg_end = 0;
	for (size_t i = 0; i < nsi; i++) {
		uint64_t cnt = 0;
		if (si[i].base_offset < seg_end || si[i].last_offset >= n ||
		    si[i].last_offset < si[i].base_offset || !present[si[i].base_offset] ||
		    !present[si[i].last_offset] || si[i].raw_start != raw_at[si[i].base_offset] ||
		    si[i].raw_end != raw_at[si[i].last_offset + 1])
			BAD("segment %s: offsets %" PRId64 "-%" PRId64 ", raw %" PRIu64 "-%" PRIu64,
			    si[i].file, si[i].base_offset, si[i].last_offset, si[i].raw_start,
			    si[i].raw_end);
		for (int64_t o = si[i].base_offset; o <= si[i].last_offset && o < n; o++)
			cnt += present[o];
		for (int64_t o = seg_end; o < si[i].base_offset && o < n; o++)
			if (present[o])
				BAD("offset %" PRId64 " is there but in no segment", o);
		if (cnt != si[i].records)
			BAD("segment %s: %" PRIu64 " records registered, %" PRIu64 " there",
			    si[i].file, si[i].records, cnt);
		seg_end = si[i].last_offset + 1;
	}
	if (info.records != (uint64_t)*kept)
		BAD("info: %" PRIu64 " records, %" PRId64 " there", info.records, *kept);
	free(si);
	engine_partition_unref(p);
#undef BAD
	return bad;
}

int main(void)
{
	char *dir = tmpdir_new("compactkill");
	struct engine *e = open_or_bail(dir, NULL);
	unsigned seed = 4242;
	int bad_rounds = 0, unclean = 0, stray = 0;
	int64_t acked = 0, kept = 0, next = 0;

	raw_at[0] = 0;
	for (int64_t i = 0; i < MAXOFF; i++) {
		char b[32];
		raw_at[i + 1] = raw_at[i] + (uint64_t)sprintf(b, "v-%lld", (long long)i) + 1;
	}
	engine_topic_create(e, "k", 1,
			    "{\"cleanup.policy\":\"compact\",\"min.cleanable.dirty.ratio\":\"0\"}");
	engine_close(e);
	for (int round = 0; round < ROUNDS; round++) {
		kill_round(dir, child, 50 + (int64_t)(rand_r(&seed) % 1500), &acked);

		/* Opened without the indexer, so that nothing compacts while the
		 * files are counted: what the open left is what is checked. */
		struct engine_options po;
		engine_options_init(&po);
		po.no_index = true;
		e = open_or_bail(dir, &po);
		if (check(e, acked, &kept, &next))
			bad_rounds++;
		if (engine_verify(e, verify_problem, NULL) != 0)
			unclean++;
		struct partition *p = part_or_bail(e, "k", 0);
		struct partition_info info;
		engine_partition_info(p, &info);
		size_t nfiles = count_seg_files(dir, "segments/1/0");
		if (nfiles != info.segments) {
			diag("%zu segment files, %" PRIu64 " registered", nfiles, info.segments);
			stray++;
		}
		engine_partition_unref(p);
		engine_close(e);
	}
	ok(bad_rounds == 0,
	   "%d kills: the records are what the model allows, by cursor, raw position, indexes and registry (%d bad)",
	   ROUNDS, bad_rounds);
	ok(unclean == 0, "verify clean after every kill (%d not)", unclean);
	ok(stray == 0, "only registered segment files after every open (%d rounds not)", stray);
	ok(kept < next / 2 && next >= acked,
	   "compaction ran: %" PRId64 " records kept of %" PRId64 " offsets", kept, next);
	tmpdir_free(dir);
	return tap_exit();
}
