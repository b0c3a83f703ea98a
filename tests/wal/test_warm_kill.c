/* test_warm_kill.c - kill -9 while the indexer turns WAL files into
 * segments, 25 times at pseudo-random points: after each, the partition
 * is exactly the model's (check(), "THE MODEL": every record the killed
 * process had acknowledged there once, unchanged, at its offset and raw
 * position, found by raw position and through the indexes, the registry
 * and info agreeing), and verify is clean. The child appends records
 * "k-<offset>" to a WAL rotating every 8 KiB (so the indexer runs all the
 * time) and reports each acknowledged offset through a pipe. */
#include <errno.h>
#include <inttypes.h>
#include <time.h>

#include "warmutil.h"

#define ROUNDS 25

static void child(const char *dir, int wfd)
{
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;

	engine_options_init(&o);
	o.wal_segment_bytes = 8192;
	if (engine_open(dir, &o, &e))
		_exit(2);
	if (engine_partition_get(e, "k", 0, &p))
		_exit(3);
	engine_partition_info(p, &info);
	for (int64_t i = info.next_offset;; i++) {
		char buf[64];
		int64_t base;
		int n = sprintf(buf, "k-%lld\nk-%lld\n", (long long)i, (long long)i + 1);
		if (engine_append_lines(p, buf, (size_t)n, &base) || base != i)
			_exit(4);
		i++;
		if (write(wfd, &i, sizeof(i)) != sizeof(i))
			_exit(5);
	}
}

/* THE MODEL: with nothing removed (no retention, no compaction), the
 * partition holds exactly the records k-0 .. k-(N-1), N its next offset
 * (>= the acknowledged count: an unacknowledged append that reached the
 * WAL counts too), record i at raw position sum over j < i of
 * len("k-<j>") + 1. Checked by a cursor from 0 (offsets dense, values and
 * raw positions exact), by raw position (engine_read_raw_at of every
 * 97th line, engine_cursor_open_raw inside it), by offset (a cursor
 * opened at it), against the registry (segments in order, each dense:
 * records = last - base + 1, raw range the model's) and info's record
 * count. Returns N, or -1 when anything differs. */
static int64_t check(struct engine *e)
{
	struct partition *p = part_or_bail(e, "k", 0);
	struct partition_info info;
	struct engine_cursor *c;
	struct engine_record r;
	struct engine_segment_info *si = NULL;
	size_t nsi = 0;
	int64_t n = 0;
	uint64_t raw = 0;
	int rc, bad = 0;
	char want[32], got[32];
	static uint64_t raw_at[1 << 20];

	engine_partition_info(p, &info);
	if (engine_cursor_open(p, 0, &c)) {
		engine_partition_unref(p);
		return -1;
	}
	while ((rc = engine_cursor_next(c, &r)) == 1) {
		int wl = sprintf(want, "k-%lld", (long long)n);
		if (r.offset != n || r.value_len != wl || memcmp(r.value, want, (size_t)wl) ||
		    r.raw_pos != raw || n >= (int64_t)(sizeof(raw_at) / sizeof(raw_at[0])) - 1) {
			diag("record %lld: offset %lld raw %llu, expected raw %llu", (long long)n,
			     (long long)r.offset, (unsigned long long)r.raw_pos,
			     (unsigned long long)raw);
			bad++;
			break;
		}
		raw_at[n] = raw;
		raw += (uint64_t)wl + 1;
		n++;
	}
	raw_at[n] = raw;
	engine_cursor_close(c);
	if (rc < 0 || n != info.next_offset || raw != info.raw_size ||
	    info.records != (uint64_t)n) {
		diag("%lld records read, next offset %lld, raw %llu / %llu, info records %llu",
		     (long long)n, (long long)info.next_offset, (unsigned long long)raw,
		     (unsigned long long)info.raw_size, (unsigned long long)info.records);
		bad++;
	}
	for (int64_t i = 0; !bad && i < n; i += 97) {
		uint64_t from = 0;
		int wl = sprintf(want, "k-%lld\n", (long long)i);
		ssize_t m = engine_read_raw_at(p, raw_at[i], got, (size_t)wl, &from);
		if (m != wl || from != raw_at[i] || memcmp(got, want, (size_t)wl)) {
			diag("raw read of line %lld at %llu: %zd bytes from %llu", (long long)i,
			     (unsigned long long)raw_at[i], m, (unsigned long long)from);
			bad++;
		}
		for (int by_raw = 0; by_raw < 2 && !bad; by_raw++) {
			rc = by_raw ? engine_cursor_open_raw(p, raw_at[i] + 1, &c) :
				      engine_cursor_open(p, i, &c);
			if (rc)
				bail("cursor open");
			if (engine_cursor_next(c, &r) != 1 || r.offset != i) {
				diag("cursor at %s of %lld starts elsewhere",
				     by_raw ? "the raw position" : "the offset", (long long)i);
				bad++;
			}
			engine_cursor_close(c);
		}
	}
	if (engine_partition_segments(p, &si, &nsi) != 0)
		bail("engine_partition_segments");
	int64_t end = 0;
	for (size_t i = 0; !bad && i < nsi; i++) {
		if (si[i].base_offset != end || si[i].last_offset >= n ||
		    si[i].records != (uint64_t)(si[i].last_offset - si[i].base_offset + 1) ||
		    si[i].raw_start != raw_at[si[i].base_offset] ||
		    si[i].raw_end != raw_at[si[i].last_offset + 1]) {
			diag("segment %s: offsets %lld-%lld, %llu records, raw %llu-%llu",
			     si[i].file, (long long)si[i].base_offset, (long long)si[i].last_offset,
			     (unsigned long long)si[i].records, (unsigned long long)si[i].raw_start,
			     (unsigned long long)si[i].raw_end);
			bad++;
		}
		end = si[i].last_offset + 1;
	}
	free(si);
	engine_partition_unref(p);
	return bad ? -1 : n;
}

int main(void)
{
	char *dir = tmpdir_new("warmkill");
	struct engine *e = open_or_bail(dir, NULL);
	unsigned seed = 12345;
	int bad_rounds = 0, unclean = 0;
	int64_t acked = 0, have = 0;
	uint64_t segments = 0;

	engine_topic_create(e, "k", 1, NULL);
	engine_close(e);
	for (int round = 0; round < ROUNDS; round++) {
		/* Let it run for a pseudo-random number of acknowledged appends,
		 * so the kill lands anywhere in the indexer's work. */
		kill_round(dir, child, 50 + (int64_t)(rand_r(&seed) % 1500), &acked);

		e = open_or_bail(dir, NULL);
		have = check(e);
		if (have < acked)
			bad_rounds++;
		if (engine_verify(e, verify_problem, NULL) != 0)
			unclean++;
		struct partition *p = part_or_bail(e, "k", 0);
		struct partition_info info;
		engine_partition_info(p, &info);
		segments = info.segments;
		engine_partition_unref(p);
		engine_close(e);
	}
	ok(bad_rounds == 0,
	   "%d kills: the partition is the model's, by cursor, raw position, indexes and registry (%d bad)",
	   ROUNDS, bad_rounds);
	ok(unclean == 0, "verify clean after every kill (%d not)", unclean);
	ok(segments > 10 && have >= acked, "%lld records, %llu segments at the end",
	   (long long)have, (unsigned long long)segments);
	tmpdir_free(dir);
	return tap_exit();
}
