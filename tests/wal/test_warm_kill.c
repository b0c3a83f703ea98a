/* test_warm_kill.c - kill -9 while the indexer turns WAL files into
 * segments, 25 times at pseudo-random points: after each, every record
 * the killed process had acknowledged is there, offsets are dense, no
 * record is there twice, and verify is clean. The child appends records
 * "k-<offset>" to a WAL rotating every 8 KiB (so the indexer runs all the
 * time) and reports each acknowledged offset through a pipe. */
#include <errno.h>
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

/* Records must be exactly k-0 .. k-(n-1): returns n, or -1. */
static int64_t check(struct engine *e)
{
	struct partition *p = part_or_bail(e, "k", 0);
	struct engine_cursor *c;
	struct engine_record r;
	int64_t n = 0;
	int rc;
	char want[32];

	if (engine_cursor_open(p, 0, &c)) {
		engine_partition_unref(p);
		return -1;
	}
	while ((rc = engine_cursor_next(c, &r)) == 1) {
		int wl = sprintf(want, "k-%lld", (long long)n);
		if (r.offset != n || r.value_len != wl || memcmp(r.value, want, (size_t)wl)) {
			n = -1;
			break;
		}
		n++;
	}
	engine_cursor_close(c);
	engine_partition_unref(p);
	return rc < 0 ? -1 : n;
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
	   "%d kills: every acknowledged record there once, offsets dense (%d bad)", ROUNDS,
	   bad_rounds);
	ok(unclean == 0, "verify clean after every kill (%d not)", unclean);
	ok(segments > 10 && have >= acked, "%lld records, %llu segments at the end",
	   (long long)have, (unsigned long long)segments);
	tmpdir_free(dir);
	return tap_exit();
}
