/* test_sendfile.c - Fetch with file spans and sendfile(2) against the copy
 * path, in one process: one engine, two listeners on it, one with
 * kafka.fetch.sendfile on and one with it off. The same raw Fetch request
 * sent to both must get byte-identical responses: over the WAL (batches
 * large enough to be file spans and small ones that are copied), over
 * segments, at the segment/WAL boundary, with max_bytes cutting, over
 * several partitions, non-flexible (v11) and flexible (v12) versions.
 * Then the engine's spans themselves: file spans where the bytes on disk
 * are the bytes sent, and a span set read before the indexer removes its
 * WAL file and before retention (DeleteRecords) removes its segment still
 * reads exactly the bytes it counted. Last, fetches on the sendfile
 * listener racing the indexer and DeleteRecords: every response holds
 * whole batches with valid CRCs, contiguous in offsets.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "batch.h"
#include "crc32c.h"
#include "engine.h"
#include "kclient.h"
#include "listener.h"

#define NPARTS 3
#define TOPIC "sf"

static struct engine *eng;

/* lines of ~100 pseudo-random bytes: lz4 leaves them about their size */
static size_t make_lines(char *buf, int n, uint32_t *seed)
{
	size_t at = 0;
	for (int i = 0; i < n; i++) {
		int len = 60 + (int)(*seed % 80);
		for (int k = 0; k < len; k++) {
			*seed = *seed * 1103515245u + 12345u;
			buf[at++] = (char)('!' + (*seed >> 16) % 90);
		}
		buf[at++] = '\n';
	}
	return at;
}

static void append(int32_t part, int lines, uint32_t *seed)
{
	static char buf[4 << 20];
	struct partition *p;
	int64_t base;
	size_t len = make_lines(buf, lines, seed);
	if (engine_partition_get(eng, TOPIC, part, &p) || engine_append_lines(p, buf, len, &base))
		bail("append to %d", part);
	engine_partition_unref(p);
}

/* A Fetch request (v11 or v12) for partitions parts[0..n) at offsets. */
static void build_fetch(struct kafka_writer *w, int16_t v, int32_t corr, int32_t max_bytes,
			int32_t part_max, const int32_t *parts, const int64_t *offs, int n)
{
	bool f = v >= 12;
	kc_begin(w, 1, v, corr, f);
	kafka_write_i32(w, -1); /* replica id */
	kafka_write_i32(w, 0); /* max wait */
	kafka_write_i32(w, 0); /* min bytes */
	kafka_write_i32(w, max_bytes);
	kafka_write_i8(w, 0);
	kafka_write_i32(w, 0); /* session id */
	kafka_write_i32(w, -1); /* session epoch */
	kafka_write_array(w, f, 1);
	kafka_write_string(w, f, TOPIC);
	kafka_write_array(w, f, n);
	for (int i = 0; i < n; i++) {
		kafka_write_i32(w, parts[i]);
		kafka_write_i32(w, -1); /* current leader epoch */
		kafka_write_i64(w, offs[i]);
		if (f)
			kafka_write_i32(w, -1); /* last fetched epoch */
		kafka_write_i64(w, -1); /* log start offset */
		kafka_write_i32(w, part_max);
		if (f)
			kafka_write_tags(w);
	}
	if (f)
		kafka_write_tags(w);
	kafka_write_array(w, f, 0); /* forgotten topics */
	kafka_write_string(w, f, ""); /* rack id */
	if (f)
		kafka_write_tags(w);
}

static int fd_on, fd_off;

static int roundtrip(int fd, struct kafka_writer *w, uint8_t **buf, size_t *len)
{
	return kc_send(fd, w) < 0 || kc_recv(fd, buf, len) < 0 ? -1 : 0;
}

/* The same request to both listeners: 1 when the answers are identical
 * and carry at least min_records bytes of records in all. */
static int same_answer(int16_t v, int32_t max_bytes, int32_t part_max, const int32_t *parts,
		       const int64_t *offs, int n, const char *what)
{
	static int32_t corr = 100;
	struct kafka_writer w;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	kafka_writer_init(&w, 0);
	build_fetch(&w, v, ++corr, max_bytes, part_max, parts, offs, n);
	int ra = roundtrip(fd_on, &w, &a, &alen);
	int rb = roundtrip(fd_off, &w, &b, &blen);
	int same = ra == 0 && rb == 0 && alen == blen && memcmp(a, b, alen) == 0;
	if (!same)
		diag("%s: sendfile %zu bytes, copy %zu bytes", what, alen, blen);
	/* the answer must carry records: a response of errors proves nothing */
	int big = alen > 200;
	ok(same && big, "%s: v%d, %d partition(s), max %d/%d: identical (%zu bytes)", what, v, n,
	   max_bytes, part_max, alen);
	free(a);
	free(b);
	kafka_writer_fini(&w);
	return same;
}

static void compare_all(const char *where, int64_t at)
{
	int32_t parts[NPARTS] = { 0, 1, 2 };
	int64_t offs[NPARTS] = { at, at > 0 ? at - 1 : 0, at + 1 };
	char what[128];
	for (int16_t v = 11; v <= 12; v++) {
		snprintf(what, sizeof(what), "%s, one partition", where);
		same_answer(v, 1 << 20, 1 << 20, parts, offs, 1, what);
		snprintf(what, sizeof(what), "%s, three partitions", where);
		same_answer(v, 1 << 20, 1 << 20, parts, offs, 3, what);
		snprintf(what, sizeof(what), "%s, max_bytes cuts", where);
		same_answer(v, 20000, 9000, parts, offs, 3, what);
		snprintf(what, sizeof(what), "%s, max_bytes 1", where);
		same_answer(v, 1, 1, parts, offs, 3, what);
	}
}

/* Read every span of sp into one buffer (pread for file spans). */
static uint8_t *spans_bytes(const struct engine_spans *sp)
{
	uint8_t *b = malloc(sp->len ? sp->len : 1);
	size_t at = 0;
	for (size_t i = 0; i < sp->n; i++) {
		const struct engine_span *s = &sp->v[i];
		if (s->mem)
			memcpy(b + at, s->mem, s->len);
		else if (pread(s->fd, b + at, s->len, (off_t)s->off) != (ssize_t)s->len)
			memset(b + at, 0, s->len);
		at += s->len;
	}
	return b;
}

static size_t file_spans(const struct engine_spans *sp)
{
	size_t n = 0;
	for (size_t i = 0; i < sp->n; i++)
		n += sp->v[i].mem == NULL;
	return n;
}

/* Whole batches with valid CRCs, offsets contiguous from the first: the
 * offset after the last, or -1. */
static int64_t check_batches(const uint8_t *b, size_t len, int64_t expect_from)
{
	size_t at = 0;
	int64_t next = -1;
	while (at < len) {
		if (len - at < BATCH_HEADER_SIZE)
			return -1;
		int64_t base = (int64_t)((uint64_t)kafka_get_be32(b + at) << 32 |
					 kafka_get_be32(b + at + 4));
		size_t blen = (size_t)kafka_get_be32(b + at + 8) + 12;
		int32_t last = (int32_t)kafka_get_be32(b + at + 23);
		if (blen < BATCH_HEADER_SIZE || blen > len - at ||
		    crc32c(0, b + at + 21, blen - 21) != kafka_get_be32(b + at + 17))
			return -1;
		if (next >= 0 ? base != next : base > expect_from)
			return -1;
		next = base + last + 1;
		at += blen;
	}
	return next;
}

static atomic_bool race_stop;

static void *race_thread(void *arg)
{
	uint32_t seed = 99;
	(void)arg;
	for (int round = 0; !atomic_load(&race_stop) && round < 40; round++) {
		append(0, 200, &seed);
		append(0, 20, &seed);
		if (round % 3 == 0)
			engine_index_now(eng);
		if (round % 5 == 4) {
			struct partition *p;
			struct partition_info info;
			int64_t ls;
			if (engine_partition_get(eng, TOPIC, 0, &p) == 0) {
				engine_partition_info(p, &info);
				engine_partition_delete_records(
					p,
					info.log_start_offset +
						(info.next_offset - info.log_start_offset) / 3,
					&ls);
				engine_partition_unref(p);
			}
		}
	}
	atomic_store(&race_stop, true);
	return NULL;
}

int main(void)
{
	char dir[256];
	struct engine_options eo;
	struct kafka_options ko;
	struct kafka_listener *lon, *loff;
	uint32_t seed = 7;

	snprintf(dir, sizeof(dir), "%s/chronik-sendfile.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		bail("mkdtemp");
	signal(SIGPIPE, SIG_IGN);
	engine_options_init(&eo);
	eo.fsync = FSYNC_NEVER;
	if (engine_open(dir, &eo, &eng))
		bail("engine_open");
	if (engine_topic_create(eng, TOPIC, NPARTS, NULL))
		bail("topic create");
	kafka_options_init(&ko);
	ko.port = 0;
	if (kafka_listener_start(eng, &ko, &lon))
		bail("listener on");
	ko.fetch_sendfile = false;
	if (kafka_listener_start(eng, &ko, &loff))
		bail("listener off");
	fd_on = kc_connect(kafka_listener_port(lon), 10);
	fd_off = kc_connect(kafka_listener_port(loff), 10);
	if (fd_on < 0 || fd_off < 0)
		bail("connect");

	/* WAL only: large batches (file spans) between small ones (copied). */
	for (int r = 0; r < 6; r++)
		for (int32_t p = 0; p < NPARTS; p++) {
			append(p, 150, &seed);
			append(p, 3, &seed);
		}
	compare_all("WAL", 0);
	compare_all("WAL, mid-batch", 200);

	struct partition *p0;
	if (engine_partition_get(eng, TOPIC, 0, &p0))
		bail("partition");
	{
		struct engine_spans sp;
		uint8_t *copy = NULL;
		size_t clen = 0;
		engine_spans_init(&sp);
		int rc = engine_read_batch_spans(p0, 0, 1 << 20, &sp);
		engine_read_batches(p0, 0, 1 << 20, &copy, &clen);
		ok(rc == 0 && file_spans(&sp) >= 6 && sp.mem_len > 0 && sp.mem_len < sp.len,
		   "WAL spans: %zu file spans, %zu of %zu bytes in memory", file_spans(&sp),
		   sp.mem_len, sp.len);
		/* The indexer removes the WAL file the spans point into. */
		ok(engine_index_now(eng) == 0, "indexed");
		uint8_t *got = spans_bytes(&sp);
		ok(sp.len == clen && memcmp(got, copy, clen) == 0 &&
			   check_batches(got, sp.len, 0) == sp.next_offset,
		   "WAL spans read after their file was indexed and removed: the same %zu bytes",
		   clen);
		free(got);
		free(copy);
		engine_spans_fini(&sp);
	}

	/* Segments, then more in the WAL after them. */
	struct partition_info info;
	engine_partition_info(p0, &info);
	int64_t seg_end = info.next_offset;
	for (int r = 0; r < 3; r++)
		for (int32_t p = 0; p < NPARTS; p++) {
			append(p, 150, &seed);
			append(p, 2, &seed);
		}
	compare_all("segments", 0);
	compare_all("segments, mid", seg_end / 2);
	compare_all("segment/WAL boundary", seg_end - 1);
	compare_all("WAL after segments", seg_end);
	{
		struct engine_spans sp;
		uint8_t *copy = NULL;
		size_t clen = 0;
		engine_spans_init(&sp);
		int rc = engine_read_batch_spans(p0, 10, 1 << 20, &sp);
		engine_read_batches(p0, 10, 1 << 20, &copy, &clen);
		ok(rc == 0 && sp.n == 1 && file_spans(&sp) == 1 && sp.len == clen,
		   "a segment's batches: one file span of %zu bytes", sp.len);
		/* Retention: the segment goes (unlinked at its last unref). */
		int64_t ls;
		ok(engine_partition_delete_records(p0, seg_end, &ls) == 0 && ls == seg_end,
		   "log start moved past the segment");
		engine_partition_info(p0, &info);
		uint8_t *got = spans_bytes(&sp);
		ok(info.segments == 0 && memcmp(got, copy, clen) == 0 &&
			   check_batches(got, sp.len, 10) == sp.next_offset,
		   "segment span read after the segment was deleted: the same %zu bytes", clen);
		free(got);
		free(copy);
		engine_spans_fini(&sp);
	}
	engine_partition_unref(p0);

	/* Fetches on the sendfile listener racing the indexer and
	 * DeleteRecords on partition 0. */
	pthread_t th;
	pthread_create(&th, NULL, race_thread, NULL);
	int fetches = 0, bad = 0, out_of_range = 0;
	int64_t at = 0;
	struct kafka_writer w;
	kafka_writer_init(&w, 0);
	while (!atomic_load(&race_stop) || fetches < 20) {
		uint8_t *recs = NULL;
		int32_t rlen = 0;
		int64_t hw = 0;
		int err = kc_fetch(fd_on, &w, 1000 + fetches, TOPIC, at, 0, 0, 64 << 10, &recs,
				   &rlen, &hw);
		fetches++;
		if (err == 1) { /* OFFSET_OUT_OF_RANGE: retention passed us */
			struct partition *p1;
			engine_partition_get(eng, TOPIC, 0, &p1);
			engine_partition_info(p1, &info);
			engine_partition_unref(p1);
			at = info.log_start_offset;
			out_of_range++;
		} else if (err != 0) {
			bad++;
		} else if (rlen > 0) {
			int64_t next = check_batches(recs, (size_t)rlen, at);
			if (next < 0)
				bad++;
			else
				at = next;
		}
		free(recs);
		if (fetches > 100000)
			break;
	}
	pthread_join(th, NULL);
	kafka_writer_fini(&w);
	ok(bad == 0,
	   "%d fetches racing the indexer and DeleteRecords: every answer whole batches "
	   "with valid CRCs, contiguous (%d out of range, reset)",
	   fetches, out_of_range);

	close(fd_on);
	close(fd_off);
	kafka_listener_stop(lon);
	kafka_listener_stop(loff);
	ok(engine_close(eng) == 0, "engine closed");
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("rm failed");
	return tap_exit();
}
