/* test_compact_kill.c - kill -9 while compaction rewrites segments, 25
 * times at pseudo-random points. The child appends records of 50 keys
 * ("key-<offset % 50>", value "v-<offset>") to a compact topic whose WAL
 * rotates every 8 KiB, with min.cleanable.dirty.ratio 0 (the indexer
 * compacts after every segment) and a thread compacting on demand in a
 * loop; it reports each acknowledged offset through a pipe. After each
 * kill: offsets strictly increase, every record is the one appended at its
 * offset and at its raw position (none twice, none changed), the newest
 * record of every key is there (none lost: only superseded records go),
 * every acknowledged offset is below the next offset, no segment file is
 * left that the registry does not list, and verify is clean. */
#include <errno.h>
#include <inttypes.h>

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

/* 0 when the partition is as said above; counts kept records in *kept. */
static int check(struct engine *e, int64_t acked, int64_t *kept, int64_t *next)
{
	struct partition *p = part_or_bail(e, "k", 0);
	struct partition_info info;
	struct engine_cursor *c;
	struct engine_record r;
	int64_t prev = -1, newest[KEYS];
	int bad = 0, rc;
	char want[32];

	for (int i = 0; i < KEYS; i++)
		newest[i] = -1;
	engine_partition_info(p, &info);
	*next = info.next_offset;
	*kept = 0;
	if (info.next_offset < acked || info.next_offset > MAXOFF) {
		diag("next offset %" PRId64 ", acknowledged %" PRId64, info.next_offset, acked);
		bad++;
	}
	if (engine_cursor_open(p, 0, &c)) {
		engine_partition_unref(p);
		return 1;
	}
	while ((rc = engine_cursor_next(c, &r)) == 1) {
		int wl = sprintf(want, "v-%lld", (long long)r.offset);
		if (r.offset <= prev || r.offset >= MAXOFF || r.value_len != wl ||
		    memcmp(r.value, want, (size_t)wl) || r.raw_pos != raw_at[r.offset]) {
			if (bad++ < 5)
				diag("record at %" PRId64 " (after %" PRId64 ") is wrong", r.offset,
				     prev);
			continue;
		}
		newest[r.offset % KEYS] = r.offset;
		prev = r.offset;
		(*kept)++;
	}
	engine_cursor_close(c);
	if (rc < 0)
		bad++;
	/* The newest record of each key: the last KEYS offsets. */
	for (int64_t o = info.next_offset - KEYS; o < info.next_offset; o++)
		if (o >= 0 && newest[o % KEYS] != o) {
			if (bad++ < 5)
				diag("the newest record of key-%lld (offset %" PRId64
				     ") is missing",
				     (long long)(o % KEYS), o);
		}
	engine_partition_unref(p);
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
	   "%d kills: every record once, unchanged at its offset and position, the newest of every key kept (%d bad)",
	   ROUNDS, bad_rounds);
	ok(unclean == 0, "verify clean after every kill (%d not)", unclean);
	ok(stray == 0, "only registered segment files after every open (%d rounds not)", stray);
	ok(kept < next / 2 && next >= acked,
	   "compaction ran: %" PRId64 " records kept of %" PRId64 " offsets", kept, next);
	tmpdir_free(dir);
	return tap_exit();
}
