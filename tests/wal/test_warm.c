/* test_warm.c - the warm tier end to end: 1,000,000 records (200,000 under
 * ThreadSanitizer, see NREC) across many
 * small WAL files, indexed into segments, read back by offset, raw
 * position and timestamp, Fetch batches, reopen; producer batches kept
 * byte for byte; the crash states of indexing; readers across segment/WAL
 * boundaries while the indexer runs; topic deletion frees the space; a
 * read-only engine beside an indexing writer. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include <fcntl.h>

#include "byteorder.h"
#include "errors.h"
#include "frame.h"
#include "recode.h"
#include "warmutil.h"

/* Under ThreadSanitizer (tests/run runs this test again there, for the
 * indexer's, the followers' and the readers' interplay with the
 * appenders), where every memory access is instrumented and the run is
 * ten times as long, the two largest corpora are smaller: the
 * interleavings of the threads are those of many WAL files and segments,
 * which 200,000 records still make, not of how many. The ASan run keeps
 * the full sizes. */
#if defined(__SANITIZE_THREAD__)
#define NREC 200000
#define MILLION_WAL_BYTES (64 << 10) /* still more than 20 segments */
#define UNDER_LOAD_NREC 200000
#else
#define NREC 1000000
#define MILLION_WAL_BYTES (256 << 10)
#define UNDER_LOAD_NREC 400000
#endif
#define PER_BATCH 50
#define T0 1700000000000LL
#define REC_LEN 12 /* "rec-%07d\n" */

static int rec_value(char *buf, int64_t i)
{
	return sprintf(buf, "rec-%07lld", (long long)i);
}

/* Expected raw bytes [pos, pos + len) of a partition holding records
 * from..: record i's line sits at REC_LEN * i. */
static void raw_expect(char *out, uint64_t pos, size_t len)
{
	for (size_t k = 0; k < len; k++) {
		uint64_t at = pos + k, i = at / REC_LEN, col = at % REC_LEN;
		char line[32];
		rec_value(line, (int64_t)i);
		line[REC_LEN - 1] = '\n';
		out[k] = line[col];
	}
}

static int append_range(struct partition *p, int64_t from, int64_t to)
{
	struct record_in recs[PER_BATCH];
	char vals[PER_BATCH][16];
	for (int64_t i = from; i < to;) {
		int n = 0;
		for (; n < PER_BATCH && i < to; n++, i++) {
			recs[n] = (struct record_in){ .timestamp = T0 + i, .key_len = -1 };
			recs[n].value_len = rec_value(vals[n], i);
			recs[n].value = vals[n];
		}
		int64_t base;
		int rc = engine_append_records(p, recs, (size_t)n, &base);
		if (rc || base != i - n)
			return rc ? rc : -EINVAL;
	}
	return 0;
}

static uint64_t du_total;
static int du_add(const char *f, const struct stat *st, int flag, struct FTW *w)
{
	(void)f;
	(void)w;
	if (flag == FTW_F)
		du_total += (uint64_t)st->st_blocks * 512;
	return 0;
}

static uint64_t disk_usage(const char *path)
{
	du_total = 0;
	nftw(path, du_add, 16, FTW_PHYS);
	return du_total;
}

/* Every record by a cursor from 0: offsets dense, values right. */
static int check_all(struct partition *p, int64_t n)
{
	struct engine_cursor *c;
	struct engine_record r;
	int64_t i = 0;
	int bad = 0, rc;
	char want[32];

	if (engine_cursor_open(p, 0, &c))
		return -1;
	while ((rc = engine_cursor_next(c, &r)) == 1) {
		int wl = rec_value(want, i);
		if (r.offset != i || r.value_len != wl || memcmp(r.value, want, (size_t)wl) != 0 ||
		    r.timestamp != T0 + i || r.raw_pos != (uint64_t)i * REC_LEN)
			bad++;
		i++;
	}
	engine_cursor_close(c);
	return rc == 0 && i == n ? bad : bad + 1;
}

static int check_reads(struct partition *p, int64_t n, const char *what)
{
	struct engine_segment_info *segs;
	size_t nseg;
	static char got[1 << 16], want[1 << 16];
	int bad = 0;

	ok(check_all(p, n) == 0, "%s: every record by offset from 0, in order", what);
	engine_partition_segments(p, &segs, &nseg);
	/* Raw reads at every segment boundary, and across it. */
	for (size_t k = 0; k < nseg; k++) {
		uint64_t b = segs[k].raw_start;
		for (uint64_t pos = b > 30 ? b - 30 : 0; pos < b + 30; pos += 7) {
			size_t len = 100;
			ssize_t m = engine_read_raw(p, pos, got, len);
			raw_expect(want, pos, len);
			if (m != (ssize_t)len || memcmp(got, want, len) != 0)
				bad++;
		}
	}
	ok(bad == 0, "%s: raw reads across %zu segment boundaries (%d bad)", what, nseg, bad);
	/* Cursors opened at offsets and raw positions all over. */
	bad = 0;
	for (int64_t i = 0; i < n; i += 9973) {
		struct engine_cursor *c;
		struct engine_record r;
		if (engine_cursor_open(p, i, &c) || engine_cursor_next(c, &r) != 1 || r.offset != i)
			bad++;
		engine_cursor_close(c);
		if (engine_cursor_open_raw(p, (uint64_t)i * REC_LEN + 5, &c) ||
		    engine_cursor_next(c, &r) != 1 || r.offset != i)
			bad++;
		engine_cursor_close(c);
		int64_t off;
		if (engine_offset_for_timestamp(p, T0 + i, &off) || off != i)
			bad++;
	}
	ok(bad == 0, "%s: by offset, by raw position and by timestamp (%d bad)", what, bad);
	/* Fetch: whole batches holding the offset asked for, CRCs intact. */
	bad = 0;
	for (int64_t i = 0; i < n; i += 4999) {
		uint8_t *bb;
		size_t blen;
		struct batch_header bh;
		if (engine_read_batches(p, i, 1, &bb, &blen) || blen == 0 ||
		    batch_header_parse(bb, blen, &bh) || batch_crc_check(bb, blen) ||
		    bh.base_offset > i || bh.base_offset + bh.last_offset_delta < i)
			bad++;
		else if (nseg && i < segs[nseg - 1].last_offset &&
			 (bh.attributes & BATCH_ATTR_CODEC_MASK) != BATCH_CODEC_LZ4)
			bad++;
		free(bb);
	}
	ok(bad == 0, "%s: Fetch batches hold the offsets asked for, lz4 from segments (%d bad)",
	   what, bad);
	int64_t off;
	ok(engine_offset_for_timestamp(p, T0 + n, &off) == 0 && off == n,
	   "%s: a timestamp after the last gives the end", what);
	free(segs);
	return bad;
}

static void test_million(const char *root)
{
	char dir[4200], wal[4300], segdir[4300];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;

	e = open_fresh_or_bail(root, "million", MILLION_WAL_BYTES, &o, dir, sizeof(dir));
	ok(engine_topic_create(e, "m", 1, NULL) == 0, "create m");
	p = part_or_bail(e, "m", 0);
	ok(append_range(p, 0, NREC) == 0, "%d records appended", NREC);
	ok(engine_index_now(e) == 0, "indexed");
	engine_partition_info(p, &info);
	ok(info.segments > 20 && info.batches == 0 && info.wal_bytes == 0 &&
		   info.next_offset == NREC && info.raw_size == (uint64_t)NREC * REC_LEN,
	   "%" PRIu64 " segments, nothing left in the hot index", info.segments);
	snprintf(wal, sizeof(wal), "%s/wal", dir);
	ok(count_files(wal, ".wal") == 1, "only the active WAL file is left");
	struct engine_stats st;
	engine_stats_get(e, &st);
	ok(st.wal_files == 1, "the engine holds 1 WAL file, not every one it wrote (%" PRIu64 ")",
	   st.wal_files);
	ok(info.segment_bytes < st.bytes / 2,
	   "lz4 segments take less than half the WAL's bytes (%" PRIu64 " of %" PRIu64 ")",
	   info.segment_bytes, st.bytes);
	check_reads(p, NREC, "indexed");
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);

	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "m", 0);
	engine_partition_info(p, &info);
	ok(info.next_offset == NREC && info.batches == 0, "reopen: from the registry alone");
	/* More records: some in the WAL, the rest in segments. */
	ok(append_range(p, NREC, NREC + 777) == 0, "777 more");
	check_reads(p, NREC + 777, "segments then WAL");
	engine_partition_unref(p);
	engine_close(e);
	snprintf(segdir, sizeof(segdir), "%s/segments", dir);
	(void)segdir;
}

static int64_t count_records(struct engine *e, const char *topic);

/* A producer's compressed batch is kept byte for byte; compression.type
 * producer keeps uncompressed ones as they came. */
static void test_producer_bytes(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p, *q;
	uint8_t *lines[3], *z, *bb;
	size_t llen[3], zlen, blen;
	int32_t cnt;
	int64_t base;

	snprintf(dir, sizeof(dir), "%s/producer", root);
	engine_options_init(&o);
	o.wal_segment_bytes = 4096;
	e = open_or_bail(dir, &o);
	engine_topic_create(e, "z", 1, NULL);
	engine_topic_create(e, "asis", 1, "{\"compression.type\":\"producer\"}");
	engine_topic_create(e, "zs", 1, "{\"compression.type\":\"zstd\"}");
	p = part_or_bail(e, "z", 0);
	q = part_or_bail(e, "asis", 0);
	struct partition *zs = part_or_bail(e, "zs", 0);
	ok(append_range(zs, 0, 500) == 0, "500 records to a compression.type=zstd topic");
	for (int i = 0; i < 3; i++) {
		char text[64];
		int n = sprintf(text, "zz-%d\nyy-%d\n", i, i);
		batch_encode_lines(text, (size_t)n, T0, &lines[i], &llen[i], &cnt);
		batch_set_base_offset(lines[i], 2 * i);
	}
	ok(recode_merge((const uint8_t *const *)lines, llen, 3, BATCH_CODEC_LZ4, &z, &zlen) == 0,
	   "an lz4 batch, as a producer sends it");
	uint8_t *copy = malloc(zlen);
	memcpy(copy, z, zlen);
	ok(engine_append_batch(p, copy, zlen, true, &base) == 0 && base == 0, "appended");
	ok(engine_append_lines(q, "plain-1\nplain-2\n", 16, &base) == 0, "plain lines to asis");
	ok(engine_index_now(e) == 0, "indexed");
	struct partition_info info;
	engine_partition_info(p, &info);
	ok(info.segments == 1, "z is in a segment");
	ok(engine_read_batches(p, 0, 1 << 20, &bb, &blen) == 0 && blen == zlen &&
		   memcmp(bb, z, zlen) == 0,
	   "Fetch returns the producer's bytes");
	free(bb);
	struct batch_header bh;
	engine_partition_info(q, &info);
	ok(info.segments == 1 && engine_read_batches(q, 0, 1 << 20, &bb, &blen) == 0 &&
		   batch_header_parse(bb, blen, &bh) == 0 &&
		   (bh.attributes & BATCH_ATTR_CODEC_MASK) == BATCH_CODEC_NONE &&
		   bh.record_count == 2,
	   "compression.type=producer keeps an uncompressed batch as it came");
	free(bb);
	ok(engine_read_batches(zs, 0, 1 << 20, &bb, &blen) == 0 &&
		   batch_header_parse(bb, blen, &bh) == 0 &&
		   (bh.attributes & BATCH_ATTR_CODEC_MASK) == BATCH_CODEC_ZSTD &&
		   bh.record_count > PER_BATCH && batch_crc_check(bb, blen) == 0,
	   "compression.type=zstd: appended batches merged into zstd batches");
	free(bb);
	ok(count_records(e, "zs") == 500, "and they read back");
	engine_partition_unref(zs);
	free(copy);
	free(z);
	for (int i = 0; i < 3; i++)
		free(lines[i]);
	engine_partition_unref(p);
	engine_partition_unref(q);
	engine_close(e);
}

static int copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
	char buf[65536];
	size_t n;
	if (!a || !b) {
		if (a)
			fclose(a);
		if (b)
			fclose(b);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
		fwrite(buf, 1, n, b);
	fclose(a);
	return fclose(b);
}

static void copy_dir(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *de;
	mkdir(to, 0755);
	while (d && (de = readdir(d))) {
		char a[4600], b[4600];
		if (de->d_name[0] == '.')
			continue;
		snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
		copy_file(a, b);
	}
	if (d)
		closedir(d);
}

static int64_t count_records(struct engine *e, const char *topic)
{
	struct partition *p = part_or_bail(e, topic, 0);
	struct engine_cursor *c;
	struct engine_record r;
	int64_t n = 0;
	char want[32];
	if (engine_cursor_open(p, 0, &c) == 0) {
		while (engine_cursor_next(c, &r) == 1) {
			int wl = rec_value(want, n);
			if (r.offset != n || r.value_len != wl || memcmp(r.value, want, (size_t)wl))
				break;
			n++;
		}
		engine_cursor_close(c);
	}
	engine_partition_unref(p);
	return n;
}

/* The states a crash can leave indexing in, made by hand: the WAL as it
 * was before indexing restored beside (1) unregistered segments and (2)
 * registered ones. Each frame counts once. */
static void test_crash_states(const char *root)
{
	char dir[4200], wal[4300], saved[4300], pdir[4300], reg[4400];
	struct engine_options o;
	struct engine *e;
	const int64_t n = 20000;

	snprintf(dir, sizeof(dir), "%s/crash", root);
	snprintf(wal, sizeof(wal), "%s/wal", dir);
	snprintf(saved, sizeof(saved), "%s/wal-saved", root);
	engine_options_init(&o);
	o.wal_segment_bytes = 16 << 10;
	o.no_index = true;
	e = open_or_bail(dir, &o);
	engine_topic_create(e, "c", 1, NULL);
	struct partition *p = part_or_bail(e, "c", 0);
	append_range(p, 0, n);
	engine_partition_unref(p);
	engine_close(e);
	copy_dir(wal, saved);
	size_t nwal = count_files(wal, ".wal");

	o.no_index = false;
	e = open_or_bail(dir, &o);
	ok(engine_index_now(e) == 0 && count_records(e, "c") == n, "indexed: %lld records",
	   (long long)n);
	engine_close(e);
	ok(count_files(wal, ".wal") == 1 && nwal > 5, "the %zu WAL files became segments", nwal);

	/* (2) registered segments and the WAL files they came from. */
	copy_dir(saved, wal);
	o.no_index = true;
	e = open_or_bail(dir, &o);
	ok(count_records(e, "c") == n, "registry saved, WAL not yet removed: each record once");
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_close(e);
	o.no_index = false;
	e = open_or_bail(dir, &o);
	ok(engine_index_now(e) == 0 && count_records(e, "c") == n && count_files(wal, ".wal") == 1,
	   "the indexer removes the WAL files wholly registered");
	engine_close(e);

	/* (1) segments written but not registered. */
	copy_dir(saved, wal);
	snprintf(pdir, sizeof(pdir), "%s/segments/1/0", dir);
	size_t nseg = count_files(pdir, ".seg");
	snprintf(reg, sizeof(reg), "%s/registry.json", pdir);
	unlink(reg);
	o.no_index = true;
	e = open_or_bail(dir, &o);
	ok(nseg > 0 && count_files(pdir, ".seg") == 0,
	   "unregistered segments removed at open (%zu)", nseg);
	ok(count_records(e, "c") == n, "segments not registered: each record once, from the WAL");
	engine_close(e);
	o.no_index = false;
	e = open_or_bail(dir, &o);
	ok(engine_index_now(e) == 0 && count_records(e, "c") == n &&
		   engine_verify(e, NULL, NULL) == 0,
	   "indexed again, verify clean");
	engine_close(e);
}

/* Readers following a partition while it is appended to and indexed: each
 * offset once, in order, through cursors and through Fetch. */
struct follow {
	struct partition *p;
	int64_t n;
	int bad;
	bool fetch;
};

static void *follower(void *arg)
{
	struct follow *f = arg;
	int64_t next = 0;
	if (!f->fetch) {
		struct engine_cursor *c;
		struct engine_record r;
		engine_cursor_open(f->p, 0, &c);
		while (next < f->n) {
			int rc = engine_cursor_next(c, &r);
			if (rc == 0) {
				engine_partition_wait(f->p, next, 1000);
				continue;
			}
			if (rc < 0 || r.offset != next) {
				f->bad++;
				break;
			}
			next++;
		}
		engine_cursor_close(c);
		return NULL;
	}
	while (next < f->n) {
		uint8_t *bb;
		size_t blen;
		int rc = engine_read_batches(f->p, next, 64 << 10, &bb, &blen);
		if (rc) {
			f->bad++;
			break;
		}
		if (blen == 0) {
			engine_partition_wait(f->p, next, 1000);
			continue;
		}
		for (size_t at = 0; at + 12 <= blen;) {
			struct batch_iter it;
			struct batch_record br;
			size_t len = get_be32(bb + at + 8) + 12;
			if (batch_iter_init(&it, bb + at, len)) {
				f->bad++;
				break;
			}
			while (batch_iter_next(&it, &br) == 1) {
				int64_t off = it.hdr.base_offset + br.offset_delta;
				if (off < next)
					continue; /* a batch starts before the offset asked */
				if (off != next)
					f->bad++;
				next = off + 1;
			}
			batch_iter_fini(&it);
			at += len;
		}
		free(bb);
		if (f->bad)
			break;
	}
	return NULL;
}

static void test_follow(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	const int64_t n = 60000;
	pthread_t th[2];
	struct follow f[2];

	e = open_fresh_or_bail(root, "follow", 8192, &o, dir, sizeof(dir));
	struct partition *p = topic_or_bail(e, "f", NULL);
	for (int i = 0; i < 2; i++) {
		f[i] = (struct follow){ .p = p, .n = n, .fetch = i == 1 };
		pthread_create(&th[i], NULL, follower, &f[i]);
	}
	for (int64_t i = 0; i < n; i += 1000) {
		append_range(p, i, i + 1000);
		if (i % 10000 == 0)
			engine_index_now(e);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ok(f[0].bad == 0, "a cursor following across segment/WAL boundaries sees each offset once");
	ok(f[1].bad == 0, "Fetch following across boundaries sees each offset once");
	struct partition_info info;
	engine_partition_info(p, &info);
	ok(info.segments > 1, "and the indexer ran meanwhile (%" PRIu64 " segments)",
	   info.segments);
	engine_partition_unref(p);
	engine_close(e);
}

static void test_delete_frees(const char *root)
{
	char dir[4200], segs[4300];
	struct engine_options o;
	struct engine *e;

	e = open_fresh_or_bail(root, "delete", 64 << 10, &o, dir, sizeof(dir));
	snprintf(segs, sizeof(segs), "%s/segments", dir);
	struct partition *big = topic_or_bail(e, "big", NULL), *small = topic_or_bail(e, "small", NULL);
	append_range(big, 0, 200000);
	append_range(small, 0, 5000);
	engine_index_now(e);
	uint64_t before = disk_usage(dir);
	struct partition_info si;
	engine_partition_info(small, &si);
	engine_partition_unref(big);
	ok(engine_topic_delete(e, "big") == 0, "delete big");
	uint64_t after = disk_usage(dir);
	ok(after < before / 2 && after < si.segment_bytes + 2 * o.wal_segment_bytes + (64 << 10),
	   "the data directory fell from %" PRIu64 " to %" PRIu64 " bytes", before, after);
	ok(count_records(e, "small") == 5000, "the other topic is whole");
	engine_partition_unref(small);
	engine_close(e);
	e = open_or_bail(dir, &o);
	ok(count_records(e, "small") == 5000 && engine_verify(e, NULL, NULL) == 0,
	   "after reopen too");
	engine_close(e);
}

/* A read-only engine beside a writer that indexes and removes WAL files. */
static void test_reader_beside(const char *root)
{
	char dir[4200];
	struct engine_options wo, ro;
	struct engine *w, *r;

	w = open_fresh_or_bail(root, "beside", 8192, &wo, dir, sizeof(dir));
	engine_options_init(&ro);
	ro.read_only = true;
	struct partition *wp = topic_or_bail(w, "b", NULL);
	append_range(wp, 0, 3000);
	engine_index_now(w);
	r = open_or_bail(dir, &ro);
	ok(count_records(r, "b") == 3000, "a reader opened after indexing sees every record");
	append_range(wp, 3000, 9000);
	engine_index_now(w);
	append_range(wp, 9000, 9500);
	ok(engine_refresh(r) == 0 && count_records(r, "b") == 9500,
	   "after the writer indexed and removed files, refresh sees every record once");
	ok(engine_verify(r, NULL, NULL) == 0, "verify of the reader clean");
	engine_partition_unref(wp);
	engine_close(r);
	engine_close(w);
}

/* A read-only engine whose segments the writer removed (retention) or
 * replaced (compaction) since it last looked: its reader reloads the
 * registries and continues at the next record, reading exactly what the
 * writer's reader reads, instead of failing. */
static void test_reader_beside_removed(const char *root)
{
	char dir[4200];
	struct engine_options wo, ro;
	struct engine *w, *r;
	struct partition *wp, *rp;
	struct partition_info wi;
	static int64_t wv[20000], rv[20000];
	int64_t nw, nr;

	w = open_fresh_or_bail(root, "beside-removed", 8192, &wo, dir, sizeof(dir));
	engine_options_init(&ro);
	ro.read_only = true;
	engine_topic_create(w, "ret", 1, NULL);
	engine_topic_create(w, "cmp", 1,
			    "{\"cleanup.policy\":\"compact\",\"min.cleanable.dirty.ratio\":\"1\"}");
	wp = part_or_bail(w, "ret", 0);
	append_range(wp, 0, 6000);
	struct partition *wc = part_or_bail(w, "cmp", 0);
	int err = 0;
	for (int64_t i = 0; i < 6000; i++) {
		struct record_in rec = { .timestamp = T0 + i };
		char key[16], val[16];
		int64_t base;
		rec.key_len = snprintf(key, sizeof(key), "k%02d", (int)(i % 50));
		rec.key = key;
		rec.value_len = rec_value(val, i);
		rec.value = val;
		err |= engine_append_records(wc, &rec, 1, &base);
	}
	ok(err == 0 && engine_index_now(w) == 0, "6000 records in two topics, indexed");
	r = open_or_bail(dir, &ro);
	ok(count_records(r, "ret") == 6000, "a reader beside the writer reads them all");

	/* Retention removes the oldest segments under the reader. */
	ok(engine_topic_config_set(w, "ret", "{\"retention.bytes\":\"20000\"}") == 0 &&
		   engine_index_now(w) == 0,
	   "the writer's retention removes segments");
	engine_partition_info(wp, &wi);
	rp = part_or_bail(r, "ret", 0);
	nw = read_all(wp, wv, NULL, NULL, 20000);
	nr = read_all(rp, rv, NULL, NULL, 20000);
	ok(wi.log_start_offset > 0 && nr == nw && nr == 6000 - wi.log_start_offset &&
		   rv[0] == wi.log_start_offset && memcmp(wv, rv, (size_t)nr * sizeof(*rv)) == 0,
	   "the reader continues at the log start %" PRId64 " (read %" PRId64 ", writer %" PRId64
	   ")",
	   wi.log_start_offset, nr, nw);
	engine_partition_unref(rp);

	/* Compaction replaces them. */
	rp = part_or_bail(r, "cmp", 0);
	nr = read_all(rp, rv, NULL, NULL, 20000);
	ok(nr == 6000, "the reader reads the compacting topic whole (%" PRId64 ")", nr);
	struct engine_compact_result res;
	ok(engine_partition_compact(wc, &res) == 0 && res.segments_in > 0 &&
		   res.records_out < res.records_in,
	   "the writer compacts %" PRIu64 " segments", res.segments_in);
	nw = read_all(wc, wv, NULL, NULL, 20000);
	nr = read_all(rp, rv, NULL, NULL, 20000);
	ok(nw > 0 && nw < 6000 && nr == nw && memcmp(wv, rv, (size_t)nr * sizeof(*rv)) == 0,
	   "the reader reads what the compacted segments hold (read %" PRId64 ", writer %" PRId64
	   ")",
	   nr, nw);
	ok(engine_verify(r, NULL, NULL) == 0, "verify of the reader clean");
	engine_partition_unref(rp);
	engine_partition_unref(wc);
	engine_partition_unref(wp);
	engine_close(r);
	engine_close(w);
}

/* Retention by size and by time: whole segments go, the log start moves,
 * raw positions stay; a cursor started before keeps going. */
static void test_retention(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p, *q;
	struct partition_info info;
	const int64_t n = 200000;
	static char got[4096], want[4096];
	uint64_t from;

	e = open_fresh_or_bail(root, "retention", 16 << 10, &o, dir, sizeof(dir));
	p = topic_or_bail(e, "r", NULL);
	q = topic_or_bail(e, "old", "{\"retention.ms\":\"3600000\"}");
	append_range(p, 0, n);
	append_range(q, 0, 5000);
	ok(engine_index_now(e) == 0, "indexed");
	engine_partition_info(p, &info);
	ok(info.log_start_offset == 0 && info.segments > 20,
	   "no retention config: everything kept (%" PRIu64 " segments)", info.segments);

	/* A follower positioned before retention. */
	struct engine_cursor *c;
	struct engine_record r;
	ok(engine_cursor_open(p, 0, &c) == 0 && engine_cursor_next(c, &r) == 1 && r.offset == 0,
	   "a cursor reads offset 0");
	ok(engine_topic_config_set(e, "r", "{\"retention.bytes\":\"200000\"}") == 0,
	   "retention.bytes=200000 set on the live topic");
	ok(engine_index_now(e) == 0, "a retention pass");
	engine_partition_info(p, &info);
	ok(info.log_start_offset > 0 && info.segment_bytes + info.wal_bytes < 200000 + (64 << 10),
	   "log start %" PRId64 ", %" PRIu64 " bytes kept", info.log_start_offset,
	   info.segment_bytes + info.wal_bytes);
	ok(info.next_offset == n && info.raw_size == (uint64_t)n * REC_LEN &&
		   info.raw_start == (uint64_t)info.log_start_offset * REC_LEN,
	   "raw size unchanged, raw start at the log start's position");
	ok(info.records == (uint64_t)(n - info.log_start_offset),
	   "records: the %" PRIu64 " the partition holds past the log start", info.records);
	int64_t ls = info.log_start_offset;
	ssize_t m = engine_read_raw_at(p, 0, got, 100, &from);
	raw_expect(want, (uint64_t)ls * REC_LEN, 100);
	ok(m == 100 && from == (uint64_t)ls * REC_LEN && memcmp(got, want, 100) == 0,
	   "a read before the log start is served from the first record kept");
	m = engine_read_raw_at(p, (uint64_t)ls * REC_LEN + 5, got, 50, &from);
	raw_expect(want, (uint64_t)ls * REC_LEN + 5, 50);
	ok(m == 50 && from == (uint64_t)ls * REC_LEN + 5 && memcmp(got, want, 50) == 0,
	   "a kept record reads at its old position");
	uint8_t *bb;
	size_t blen;
	ok(engine_read_batches(p, 0, 100, &bb, &blen) == CHRONIK_ERANGE,
	   "Fetch below the log start is out of range");
	ok(engine_read_batches(p, ls, 100, &bb, &blen) == 0 && blen > 0, "Fetch at the log start");
	free(bb);
	int64_t off;
	ok(engine_offset_for_timestamp(p, T0, &off) == 0 && off == ls,
	   "the earliest timestamp maps to the log start");
	int64_t prev = 0, cnt = 1;
	int bad = 0;
	while (engine_cursor_next(c, &r) == 1) {
		if (r.offset <= prev)
			bad++;
		prev = r.offset;
		cnt++;
	}
	engine_cursor_close(c);
	ok(bad == 0 && prev == n - 1 && cnt >= n - ls,
	   "the cursor from before kept going to the end (%lld records)", (long long)cnt);
	ok(engine_cursor_open(p, 0, &c) == 0 && engine_cursor_next(c, &r) == 1 && r.offset == ls,
	   "a new cursor from 0 starts at the log start");
	engine_cursor_close(c);

	engine_partition_info(q, &info);
	ok(info.segments == 0 && info.log_start_offset == 5000 && info.raw_size == 5000 * REC_LEN,
	   "retention.ms: records older than an hour are gone, positions kept");
	ok(info.records == 0, "records: none held (%" PRIu64 ")", info.records);
	int64_t base;
	ok(engine_append_lines(q, "fresh\n", 6, &base) == 0 && base == 5000 &&
		   engine_read_raw_at(q, 0, got, 100, &from) == 6 &&
		   memcmp(got, "fresh\n", 6) == 0 && from == 5000 * REC_LEN,
	   "new records continue at the old end");
	engine_partition_unref(q);
	engine_partition_unref(p);
	engine_close(e);

	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "r", 0);
	engine_partition_info(p, &info);
	ok(info.log_start_offset == ls && engine_verify(e, NULL, NULL) == 0,
	   "after reopen: the same log start, verify clean");
	engine_partition_unref(p);
	engine_close(e);
}

/* DeleteRecords: the log start moves to any offset, inside a segment or
 * in the WAL not yet indexed, durably; whole segments below it go, raw
 * positions stay. */
static void test_delete_records(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	struct engine_cursor *c;
	struct engine_record r;
	const int64_t n = 100000;
	static char got[4096], want[4096];
	uint64_t from, segs_before;
	int64_t ls = -5;
	uint8_t *bb;
	size_t blen;

	e = open_fresh_or_bail(root, "delete-records", 16 << 10, &o, dir, sizeof(dir));
	p = topic_or_bail(e, "d", NULL);
	append_range(p, 0, n);
	ok(engine_index_now(e) == 0, "indexed");
	engine_partition_info(p, &info);
	segs_before = info.segments;
	ok(segs_before > 10, "%" PRIu64 " segments", segs_before);

	/* 40001 is inside a segment (batches of PER_BATCH, files of 16 KiB). */
	ok(engine_partition_delete_records(p, 40001, &ls) == 0 && ls == 40001,
	   "delete below 40001: log start 40001");
	engine_partition_info(p, &info);
	ok(info.log_start_offset == 40001 && info.raw_start == 40001 * REC_LEN &&
		   info.next_offset == n && info.raw_size == (uint64_t)n * REC_LEN,
	   "log start 40001, raw start at its position, sizes unchanged");
	ok(info.records == (uint64_t)(n - 40001),
	   "records: the %" PRIu64 " at and past the log start", info.records);
	ok(info.segments < segs_before && info.segments > 0,
	   "whole segments below it deleted (%" PRIu64 " of %" PRIu64 " left)", info.segments,
	   segs_before);
	ssize_t m = engine_read_raw_at(p, 0, got, 100, &from);
	raw_expect(want, 40001 * REC_LEN, 100);
	ok(m == 100 && from == 40001 * REC_LEN && memcmp(got, want, 100) == 0,
	   "a raw read before the log start is served from record 40001");
	ok(engine_cursor_open(p, 0, &c) == 0 && engine_cursor_next(c, &r) == 1 &&
		   r.offset == 40001,
	   "a cursor from 0 starts at 40001 (the rest of its segment is not read)");
	engine_cursor_close(c);
	ok(engine_read_batches(p, 40000, 100, &bb, &blen) == CHRONIK_ERANGE,
	   "Fetch below the log start is out of range");
	ok(engine_read_batches(p, 40001, 100, &bb, &blen) == 0 && blen > 0, "Fetch at it");
	free(bb);
	ok(engine_partition_delete_records(p, 100, &ls) == 0 && ls == 40001,
	   "an offset below the log start changes nothing");
	ok(engine_partition_delete_records(p, n + 1, &ls) == CHRONIK_ERANGE &&
		   engine_partition_delete_records(p, -2, &ls) == CHRONIK_ERANGE,
	   "above the high watermark, or below -1: out of range");

	/* Records still in the WAL: indexed first. */
	append_range(p, n, n + 1000);
	engine_partition_info(p, &info);
	ok(info.wal_bytes > 0, "1000 more records in the WAL");
	ok(engine_partition_delete_records(p, n + 500, &ls) == 0 && ls == n + 500,
	   "delete below an offset in the WAL");
	engine_partition_info(p, &info);
	struct engine_segment_info *si = NULL;
	size_t nsi = 0;
	int src = engine_partition_segments(p, &si, &nsi);
	ok(src == 0 && nsi >= 1 && nsi == info.segments && si[0].base_offset <= n + 500 &&
		   si[0].last_offset >= n + 500,
	   "only segments reaching past %" PRId64 " are left (%zu)", n + 500, nsi);
	free(si);
	ok(info.log_start_offset == n + 500 && info.raw_start == (uint64_t)(n + 500) * REC_LEN &&
		   info.wal_bytes == 0,
	   "log start %" PRId64 ", raw start %" PRIu64 ", the WAL indexed",
	   info.log_start_offset, info.raw_start);
	engine_partition_unref(p);
	engine_close(e);

	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "d", 0);
	engine_partition_info(p, &info);
	ok(info.log_start_offset == n + 500 && info.raw_start == (uint64_t)(n + 500) * REC_LEN &&
		   engine_verify(e, NULL, NULL) == 0,
	   "after reopen: the same log start, verify clean");
	ok(engine_cursor_open(p, 0, &c) == 0 && engine_cursor_next(c, &r) == 1 &&
		   r.offset == n + 500,
	   "and reads start there");
	engine_cursor_close(c);
	ok(engine_partition_delete_records(p, -1, &ls) == 0 && ls == n + 1000,
	   "-1: everything up to the high watermark");
	engine_partition_info(p, &info);
	ok(info.segments == 0 && info.raw_start == info.raw_size &&
		   engine_read_raw_at(p, 0, got, 100, &from) == 0,
	   "no segment left, nothing to read");
	int64_t base;
	ok(engine_append_lines(p, "after\n", 6, &base) == 0 && base == n + 1000 &&
		   engine_read_raw_at(p, 0, got, 100, &from) == 6 && memcmp(got, "after\n", 6) == 0,
	   "new records continue at the old end");
	engine_partition_unref(p);
	engine_close(e);
}

/* retention.bytes keeps up with an indexer that never idles: many sealed
 * WAL files wait at open (written with no indexer), and while the indexer
 * works through them back to back, the segments the partition holds never
 * pass the limit by more than the files in flight. (Retention once ran
 * only when the indexer had nothing left to do, so under a steady load
 * the segments grew with everything appended.) */
static void test_retention_under_load(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	/* 400,000: 4.8 MB of raw view, about 500 WAL files (250 under TSan) */
	const int64_t n = UNDER_LOAD_NREC;
	const uint64_t limit = 64 << 10;
	uint64_t max_seg = 0, polls = 0;

	snprintf(dir, sizeof(dir), "%s/retention-load", root);
	engine_options_init(&o);
	o.wal_segment_bytes = 16 << 10;
	o.fsync = FSYNC_NEVER;
	o.no_index = true;
	e = open_or_bail(dir, &o);
	ok(engine_topic_create(
		   e, "b", 1, "{\"retention.bytes\":\"65536\",\"compression.type\":\"none\"}") == 0,
	   "topic with retention.bytes 64 KiB");
	p = part_or_bail(e, "b", 0);
	ok(append_range(p, 0, n) == 0, "appended with no indexer");
	engine_partition_info(p, &info);
	ok(info.segments == 0 && info.wal_bytes > 50 * limit,
	   "all of it in the WAL (%" PRIu64 " bytes)", info.wal_bytes);
	engine_partition_unref(p);
	engine_close(e);

	o.no_index = false;
	e = open_or_bail(dir, &o);
	p = part_or_bail(e, "b", 0);
	/* Sampled until the indexer has taken every sealed file, leaving at
	 * most the active one (at most 120 s). */
	for (int i = 0; i < 120000; i++) {
		engine_partition_info(p, &info);
		polls++;
		if (info.segment_bytes > max_seg)
			max_seg = info.segment_bytes;
		if (info.wal_bytes <= o.wal_segment_bytes)
			break;
		usleep(1000);
	}
	ok(info.wal_bytes <= o.wal_segment_bytes, "the indexer took every sealed WAL file");
	ok(max_seg <= limit + 4 * o.wal_segment_bytes,
	   "segments held at most %" PRIu64 " bytes while indexing (limit %" PRIu64
	   " + 4 WAL files; %" PRIu64 " samples)",
	   max_seg, limit, polls);
	ok(engine_index_now(e) == 0, "indexed");
	engine_partition_info(p, &info);
	ok(info.log_start_offset > 0 && info.next_offset == n &&
		   info.segment_bytes <= limit + 2 * o.wal_segment_bytes,
	   "log start %" PRId64 ", %" PRIu64 " bytes kept", info.log_start_offset,
	   info.segment_bytes);
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);
}

/* wal.seal.ms: a quiet, non-empty active file is sealed and indexed by
 * itself (no rotation by size, no engine_index_now). */
static void test_seal_by_age(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition_info info;
	int64_t base;

	engine_options_init(&o);
	ok(o.wal_seal_ms == 60000, "wal.seal.ms defaults to 60000");
	ok(engine_options_set(&o, "wal.seal.ms", "100") == 0 && o.wal_seal_ms == 100 &&
		   engine_options_set(&o, "wal.seal.ms", "-1") == -EINVAL &&
		   engine_options_set(&o, "wal.seal.ms", "x") == -EINVAL,
	   "wal.seal.ms is a setting");
	snprintf(dir, sizeof(dir), "%s/age", root);
	e = open_or_bail(dir, &o);
	engine_topic_create(e, "q", 1, NULL);
	struct partition *p = part_or_bail(e, "q", 0);
	engine_append_lines(p, "quiet\n", 6, &base);
	/* Polled up to 30 s: the seal is due 100 ms after the append. */
	for (int i = 0; i < 3000; i++) {
		engine_partition_info(p, &info);
		if (info.segments == 1 && info.wal_bytes == 0)
			break;
		usleep(10000);
	}
	ok(info.segments == 1 && info.wal_bytes == 0, "a quiet active file is sealed and indexed");
	char got[8];
	ok(engine_read_raw(p, 0, got, 6) == 6 && memcmp(got, "quiet\n", 6) == 0,
	   "and reads back from its segment");
	engine_partition_unref(p);
	engine_close(e);
}

/* A batch whose own CRC is damaged while its frame CRC (which covers only
 * the batch's first 21 bytes) still matches: the indexer checks each
 * batch's CRC when it compresses it, not when it splits the file
 * (indexer.c, step 1), and it must still refuse it. The damage is made on
 * the active file after the open (recovery would refuse it in a sealed
 * file at open), then engine_index_now seals and indexes: partition 0 is
 * indexed; partition 1, damaged, is not, and the WAL file stays. */
static void test_batch_crc_damage(const char *root)
{
	char dir[4200], wal[4600];
	struct engine_options o;
	struct engine *e;
	struct partition_info i0, i1;
	struct partition *p[2];
	int64_t base;

	engine_options_init(&o);
	snprintf(dir, sizeof(dir), "%s/crcdamage", root);
	e = open_or_bail(dir, &o);
	engine_topic_create(e, "d", 2, NULL);
	for (int k = 0; k < 2; k++) {
		p[k] = part_or_bail(e, "d", k);
		for (int r = 0; r < 20; r++)
			engine_append_lines(p[k], "some line of text\nanother one\n", 30, &base);
	}
	/* The one WAL file: find partition 1's first frame, flip a byte of
	 * its records (batch byte 61 on: under the batch CRC only). */
	DIR *d;
	struct dirent *de;
	snprintf(wal, sizeof(wal), "%s/wal", dir);
	d = opendir(wal);
	while (d && (de = readdir(d)))
		if (strstr(de->d_name, ".wal")) {
			snprintf(wal, sizeof(wal), "%s/wal/%s", dir, de->d_name);
			break;
		}
	if (d)
		closedir(d);
	int fd = open(wal, O_RDWR);
	struct stat st;
	struct frame_info fi;
	uint8_t *buf = NULL;
	size_t pos = WAL_FILE_HEADER_SIZE, size = 0;
	bool found = false;
	if (fd >= 0 && fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size)) &&
	    pread(fd, buf, (size_t)st.st_size, 0) == st.st_size) {
		size = (size_t)st.st_size;
		while (pos < size && frame_decode(buf + pos, size - pos, &fi) == FRAME_VALID) {
			if (fi.version == 2 && fi.partition == 1 && fi.batch_len > BATCH_HEADER_SIZE) {
				found = true;
				break;
			}
			pos += fi.frame_len;
		}
	}
	size_t flip = pos + FRAME_V2_HEADER_SIZE + BATCH_HEADER_SIZE + 2;
	if (found) {
		buf[flip] ^= 0x20;
		found = pwrite(fd, buf + flip, 1, (off_t)flip) == 1;
	}
	ok(found && frame_decode_no_batch_crc(buf + pos, size - pos, &fi) == FRAME_VALID &&
		   frame_decode(buf + pos, size - pos, &fi) == FRAME_INVALID,
	   "a records byte of partition 1's first batch flipped: its frame CRC holds, its "
	   "batch CRC does not");
	free(buf);
	if (fd >= 0)
		close(fd);

	ok(engine_index_now(e) == CHRONIK_ECORRUPT, "engine_index_now reports the damage");
	engine_partition_info(p[0], &i0);
	engine_partition_info(p[1], &i1);
	ok(i0.segments == 1 && i0.wal_bytes == 0, "partition 0 is indexed");
	ok(i1.segments == 0 && i1.wal_bytes > 0, "partition 1, damaged, is not");
	ok(access(wal, F_OK) == 0, "the WAL file stays");
	for (int k = 0; k < 2; k++)
		engine_partition_unref(p[k]);
	engine_close(e);
}

/* One WAL file's partitions are indexed side by side (indexer.c, INDEXING
 * step 2, INDEX_WORKERS threads): more partitions than workers, their
 * batches interleaved in every WAL file, a topic created after the first
 * files (its segment directory made while the others index). Every
 * partition reads back whole and in order, from segments only, and the
 * data directory verifies clean, also after a reopen. */
static void test_parallel_partitions(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	enum { NP = 7, ROUNDS = 60, PER = 20 };
	struct partition *p[NP + 1];
	int bad = 0;

	engine_options_init(&o);
	o.wal_segment_bytes = 32 << 10;
	snprintf(dir, sizeof(dir), "%s/parallel", root);
	e = open_or_bail(dir, &o);
	engine_topic_create(e, "par", NP, NULL);
	for (int k = 0; k < NP; k++)
		p[k] = part_or_bail(e, "par", k);
	p[NP] = NULL;
	for (int r = 0; r < ROUNDS; r++) {
		if (r == ROUNDS / 2) {
			engine_topic_create(e, "late", 1, NULL);
			p[NP] = part_or_bail(e, "late", 0);
		}
		for (int k = 0; k <= NP; k++) {
			struct record_in recs[PER];
			char vals[PER][32];
			int64_t base;
			if (!p[k])
				continue;
			for (int i = 0; i < PER; i++) {
				recs[i] = (struct record_in){ .timestamp = T0 + r, .key_len = -1 };
				recs[i].value_len = snprintf(vals[i], sizeof(vals[i]), "p%d-%06d", k,
							     r * PER + i);
				recs[i].value = vals[i];
			}
			if (engine_append_records(p[k], recs, PER, &base))
				bad++;
		}
	}
	ok(bad == 0, "%d partitions appended, batches interleaved", NP + 1);
	ok(engine_index_now(e) == 0, "indexed");
	for (int pass = 0; pass < 2; pass++) {
		bad = 0;
		for (int k = 0; k <= NP; k++) {
			struct partition_info info;
			struct engine_cursor *c;
			struct engine_record rec;
			int64_t want = k == NP ? (ROUNDS - ROUNDS / 2) * PER : ROUNDS * PER, n = 0;
			int64_t first = k == NP ? (ROUNDS / 2) * PER : 0;
			char v[32];
			engine_partition_info(p[k], &info);
			if (info.wal_bytes != 0 || info.segments < 2)
				bad++;
			if (engine_cursor_open(p[k], 0, &c)) {
				bad++;
				continue;
			}
			while (engine_cursor_next(c, &rec) == 1) {
				int vl = snprintf(v, sizeof(v), "p%d-%06lld", k, (long long)(first + n));
				if (rec.offset != n || rec.value_len != vl ||
				    memcmp(rec.value, v, (size_t)vl) != 0)
					bad++;
				n++;
			}
			engine_cursor_close(c);
			if (n != want)
				bad++;
		}
		ok(bad == 0, "%s: every partition whole and in order, from segments (%d bad)",
		   pass ? "reopened" : "indexed", bad);
		ok(engine_verify(e, verify_problem, NULL) == 0, "%s: verify clean",
		   pass ? "reopened" : "indexed");
		for (int k = 0; k <= NP; k++)
			engine_partition_unref(p[k]);
		engine_close(e);
		if (pass == 0) {
			e = open_or_bail(dir, &o);
			for (int k = 0; k < NP; k++)
				p[k] = part_or_bail(e, "par", k);
			p[NP] = part_or_bail(e, "late", 0);
		}
	}
}

int main(void)
{
	char *root = tmpdir_new("warm");
	test_seal_by_age(root);
	test_batch_crc_damage(root);
	test_parallel_partitions(root);
	test_retention(root);
	test_delete_records(root);
	test_retention_under_load(root);
	test_producer_bytes(root);
	test_crash_states(root);
	test_follow(root);
	test_delete_frees(root);
	test_reader_beside(root);
	test_reader_beside_removed(root);
	test_million(root);
	tmpdir_free(root);
	return tap_exit();
}
