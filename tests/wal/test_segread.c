/* test_segread.c - the read path's shortcuts give the same answers as the
 * long way: a raw reader that keeps its cursor between sequential reads
 * (across segments, the WAL, growth, indexing and retention meanwhile), lz4
 * batches decoded into a kept buffer (batch_scratch), Fetch reads of
 * segments that weigh a batch by its decoded bytes and stay the file's
 * bytes, and raw reads at and around every batch boundary, for each
 * compression.type, with batches larger than the read-ahead, each
 * compressed batch decoded once per stream. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "batch.h"
#include "byteorder.h"
#include "codecs.h"
#include "errors.h"
#include "recode.h"
#include "segment.h"
#include "testutil.h"

#define T0 1700000000000LL

/* Record i's value: "v<i>:" and then a run of letters, 0 to 2999 long,
 * so lines cross read boundaries of every size. */
static size_t value_of(int64_t i, char *buf)
{
	size_t n = (size_t)sprintf(buf, "v%lld:", (long long)i);
	size_t pad = (size_t)((i * 7919) % 3000);
	for (size_t k = 0; k < pad; k++)
		buf[n + k] = (char)('a' + (i + (int64_t)k) % 26);
	return n + pad;
}

/* The raw view of records [0, n), built the long way. */
static char *expect_raw(int64_t n, size_t *len)
{
	size_t cap = (size_t)n * 3100 + 1, l = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	for (int64_t i = 0; i < n; i++) {
		l += value_of(i, out + l);
		out[l++] = '\n';
	}
	*len = l;
	return out;
}

static int append_range(struct partition *p, int64_t from, int64_t to, int per_batch)
{
	static char vals[64][3100];
	struct record_in recs[64];
	for (int64_t i = from; i < to;) {
		int n = 0;
		for (; n < per_batch && i < to; n++, i++) {
			recs[n] = (struct record_in){ .timestamp = T0 + i, .key_len = -1 };
			recs[n].value_len = (int32_t)value_of(i, vals[n]);
			recs[n].value = vals[n];
		}
		int64_t base;
		int rc = engine_append_records(p, recs, (size_t)n, &base);
		if (rc || base != i - n)
			return rc ? rc : -EINVAL;
	}
	return 0;
}

/* Read [pos, end of view) through rd in reads of varying sizes, the way
 * fs/ does (each read at where the last one's bytes ended), into out;
 * returns the bytes read or -1 when a read went wrong. */
static ssize_t stream_to_end(struct engine_raw_reader *rd, uint64_t pos, char *out, size_t cap,
			     int *reads)
{
	static char buf[1 << 16];
	size_t got = 0;
	for (int k = 0;; k++) {
		size_t len = (size_t)(k * 4111 % 9000) + 1;
		uint64_t from;
		if (len > sizeof(buf))
			len = sizeof(buf);
		ssize_t n = engine_raw_reader_read(rd, pos, buf, len, &from);
		if (n < 0 || (n > 0 && from != pos) || got + (size_t)n > cap)
			return -1;
		if (n == 0)
			break;
		memcpy(out + got, buf, (size_t)n);
		got += (size_t)n;
		pos += (uint64_t)n;
		(*reads)++;
	}
	return (ssize_t)got;
}

static void test_raw_reader(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	struct engine_raw_reader *rd;
	const int64_t n1 = 6000, n2 = 7500, n3 = 9000;
	size_t elen = 0;
	char *want = expect_raw(n3, &elen), *got = malloc(elen + 1);
	int reads = 0;
	uint64_t from;

	e = open_fresh_or_bail(root, "reader", 1 << 20, &o, dir, sizeof(dir));
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "create t (compression.type lz4)");
	p = part_or_bail(e, "t", 0);
	/* Small batches: the indexer merges them into lz4 batches. */
	ok(append_range(p, 0, n1, 7) == 0 && engine_index_now(e) == 0, "%lld records indexed",
	   (long long)n1);
	ok(append_range(p, n1, n2, 7) == 0, "%lld more left in the WAL", (long long)(n2 - n1));
	engine_partition_info(p, &info);
	ok(info.segments > 3 && info.batches > 0,
	   "%" PRIu64 " segments and %" PRIu64 " batches in the WAL", info.segments, info.batches);

	size_t len2 = 0;
	for (int64_t i = 0; i < n2; i++)
		len2 += value_of(i, got) + 1;
	ok(engine_raw_reader_new(p, &rd) == 0, "a raw reader");
	ssize_t m = stream_to_end(rd, 0, got, elen, &reads);
	ok(m == (ssize_t)len2 && memcmp(got, want, len2) == 0,
	   "sequential reads of 1-9000 bytes read the whole view, segments then WAL (%d reads)",
	   reads);

	/* Growth after the end: the next read goes on from there. */
	ok(append_range(p, n2, n3, 7) == 0, "more appended after the reader reached the end");
	reads = 0;
	m = stream_to_end(rd, len2, got + len2, elen - len2, &reads);
	ok(m == (ssize_t)(elen - len2) && memcmp(got + len2, want + len2, elen - len2) == 0,
	   "the reader goes on with what was appended");

	/* A jump back, then the indexer moves the WAL into segments while
	 * the reader is in the middle of it. */
	uint64_t mid = len2 - 12345;
	static char buf[5000];
	m = engine_raw_reader_read(rd, mid, buf, sizeof(buf), &from);
	ok(m == (ssize_t)sizeof(buf) && from == mid && memcmp(buf, want + mid, sizeof(buf)) == 0,
	   "a read at another position starts over there");
	ok(engine_index_now(e) == 0, "the WAL indexed meanwhile");
	engine_partition_info(p, &info);
	ok(info.batches == 0, "nothing left in the WAL");
	reads = 0;
	m = stream_to_end(rd, mid + sizeof(buf), got, elen, &reads);
	ok(m == (ssize_t)(elen - mid - sizeof(buf)) &&
		   memcmp(got, want + mid + sizeof(buf), (size_t)m) == 0,
	   "the stream goes on exactly, from what it held into the new segments");

	/* The same answers as one-off reads at every kind of position. */
	int bad = 0;
	for (uint64_t pos = 0; pos < elen; pos += 77777) {
		static char a[3000], b[3000];
		uint64_t fa, fb;
		ssize_t na = engine_raw_reader_read(rd, pos, a, sizeof(a), &fa);
		ssize_t nb = engine_read_raw_at(p, pos, b, sizeof(b), &fb);
		if (na != nb || fa != fb || na < 0 || memcmp(a, b, (size_t)na) != 0)
			bad++;
	}
	ok(bad == 0, "reader and engine_read_raw_at agree at positions all over (%d bad)", bad);

	/* Retention while the reader is in the middle of a segment it holds:
	 * it finishes its stream, then goes on at what remains. */
	uint64_t at = 1000;
	m = engine_raw_reader_read(rd, at, buf, 100, &from);
	ok(m == 100 && memcmp(buf, want + at, 100) == 0, "a read near the start");
	ok(engine_topic_config_set(e, "t", "{\"retention.bytes\":\"20000\"}") == 0 &&
		   engine_index_now(e) == 0,
	   "retention.bytes=20000 on the live topic");
	engine_partition_info(p, &info);
	ok(info.log_start_offset > 0, "log start now %" PRId64, info.log_start_offset);
	at += 100;
	bad = 0;
	uint64_t last_end = at;
	for (;;) {
		m = engine_raw_reader_read(rd, at, buf, 4000, &from);
		if (m <= 0)
			break;
		if (from < at || from + (uint64_t)m > elen ||
		    memcmp(buf, want + from, (size_t)m) != 0)
			bad++;
		at = from + (uint64_t)m;
		last_end = at;
	}
	ok(m == 0 && bad == 0 && last_end == elen,
	   "the stream reads only true bytes at their stable positions, to the end (%d bad)", bad);
	engine_raw_reader_free(rd);
	ok(engine_verify(e, NULL, NULL) == 0, "verify clean");
	engine_partition_unref(p);
	engine_close(e);
	free(want);
	free(got);
}

/* An lz4 batch of n records with values of vlen bytes, made the way the
 * indexer makes them (recode_merge of uncompressed batches). */
static int lz4_batch(int n, size_t vlen, uint8_t **out, size_t *len)
{
	struct batch_builder b;
	uint8_t *plain;
	size_t plen;
	char *v = malloc(vlen);
	int rc;

	memset(v, 'x', vlen);
	batch_builder_init(&b);
	for (int i = 0; i < n; i++) {
		struct record_in r = { .timestamp = T0 + i, .key_len = -1, .value = v };
		v[0] = (char)('a' + i % 26);
		r.value_len = (int32_t)vlen;
		batch_builder_add(&b, &r);
	}
	rc = batch_builder_finish(&b, &plain, &plen);
	batch_builder_fini(&b);
	free(v);
	if (rc)
		return rc;
	const uint8_t *in[1] = { plain };
	rc = recode_merge(in, &plen, 1, BATCH_CODEC_LZ4, out, len);
	free(plain);
	return rc;
}

static int iter_equal(struct batch_iter *a, struct batch_iter *b, int *count)
{
	struct batch_record ra, rb;
	int x, y;
	*count = 0;
	while ((x = batch_iter_next(a, &ra)) == 1 && (y = batch_iter_next(b, &rb)) == 1) {
		if (ra.offset_delta != rb.offset_delta ||
		    ra.timestamp_delta != rb.timestamp_delta || ra.value_len != rb.value_len ||
		    memcmp(ra.value, rb.value, (size_t)ra.value_len) != 0)
			return -1;
		(*count)++;
	}
	return x == 0 && batch_iter_next(b, &rb) == 0 ? 0 : -1;
}

static void test_scratch(void)
{
	struct batch_scratch s = { 0 };
	struct batch_iter a, b;
	uint8_t *bt;
	size_t blen;
	int count;
	size_t used0 = batch_decompress_budget_used();

	ok(lz4_batch(200, 1000, &bt, &blen) == 0 && (get_be16(bt + 21) & 7) == BATCH_CODEC_LZ4,
	   "an lz4 batch of 200 records");
	ok(batch_iter_init(&a, bt, blen) == 0 && batch_iter_init_with(&b, bt, blen, &s) == 0 &&
		   iter_equal(&a, &b, &count) == 0 && count == 200,
	   "decoded into the scratch buffer: the same records");
	batch_iter_fini(&a);
	batch_iter_fini(&b);
	ok(s.buf && s.cap >= 200 * 1000 && batch_decompress_budget_used() == used0 + s.cap,
	   "the scratch buffer stays, charged to the budget");
	uint8_t *keep = s.buf;
	ok(batch_iter_init_with(&b, bt, blen, &s) == 0 && s.buf == keep,
	   "the next batch decodes into the same buffer");
	batch_iter_fini(&b);
	/* A frame that declares a wrong content size fails, cleanly. */
	uint8_t *bad = malloc(blen);
	memcpy(bad, bt, blen);
	put_le32(bad + BATCH_HEADER_SIZE + 6, get_le32(bad + BATCH_HEADER_SIZE + 6) + 1);
	/* (The frame header's own checksum byte would catch it: recompute
	 * is not possible here, so the header is refused or the size is.) */
	ok(batch_iter_init_with(&b, bad, blen, &s) < 0, "a wrong declared content size fails");
	batch_iter_fini(&b);
	free(bad);
	batch_scratch_fini(&s);
	ok(batch_decompress_budget_used() == used0 && s.buf == NULL,
	   "batch_scratch_fini gives every byte back");
	free(bt);
}

/* Fetch from a segment of lz4 batches that decode to 64 KiB each. */
static void test_fetch_weight(const char *root)
{
	char dir[4200], path[4400];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct engine_segment_info *segs;
	size_t nseg;
	uint8_t *bb;
	size_t blen;

	e = open_fresh_or_bail(root, "fetch", 64 << 20, &o, dir, sizeof(dir));
	p = topic_or_bail(e, "f", NULL);
	/* 1 KiB lines of one letter: lz4 squeezes them about 100 to 1. */
	{
		static char line[1024 * 50];
		for (int b = 0; b < 400; b++) {
			for (int k = 0; k < 50; k++) {
				memset(line + k * 1024, 'a' + (b + k) % 26, 1023);
				line[k * 1024 + 1023] = '\n';
			}
			int64_t base;
			if (engine_append_lines(p, line, sizeof(line), &base))
				break;
		}
	}
	ok(engine_index_now(e) == 0 && engine_partition_segments(p, &segs, &nseg) == 0 && nseg == 1,
	   "20,000 lines of 1 KiB in one segment");
	snprintf(path, sizeof(path), "%s/segments", dir);

	const size_t max = 256 << 10;
	ok(engine_read_batches(p, 0, max, &bb, &blen) == 0 && blen > 0, "Fetch of 256 KiB at 0");
	size_t pos = 0, nb = 0, decoded = 0;
	int bad = 0;
	while (pos < blen) {
		struct batch_header h;
		size_t l = (size_t)get_be32(bb + pos + 8) + 12;
		if (batch_header_parse(bb + pos, l, &h) || batch_crc_check(bb + pos, l) ||
		    (h.attributes & 7) != BATCH_CODEC_LZ4)
			bad++;
		uint64_t raw;
		if (batch_raw_size(bb + pos, l, &raw) == 0)
			decoded += raw;
		pos += l;
		nb++;
	}
	ok(bad == 0 && nb >= 2 && decoded <= max && blen < max / 20,
	   "%zu lz4 batches, %zu bytes stored, %zu decoded: within 256 KiB decoded", nb, blen,
	   decoded);
	/* The same bytes as the segment file holds from its first batch. */
	{
		char seg[4600];
		uint8_t *file = malloc(blen);
		struct stat st;
		snprintf(seg, sizeof(seg), "%s/segments", dir);
		/* The one segment's path: DATA/segments/<topic-id>/0/<file>. */
		int fd = -1;
		for (int id = 0; id < 16 && fd < 0; id++) {
			snprintf(seg, sizeof(seg), "%s/segments/%d/0/%s", dir, id, segs[0].file);
			fd = open(seg, O_RDONLY);
		}
		ok(fd >= 0 && fstat(fd, &st) == 0 && pread(fd, file, blen, 64) == (ssize_t)blen &&
			   memcmp(file, bb, blen) == 0,
		   "Fetch sends the segment file's bytes as they are");
		if (fd >= 0)
			close(fd);
		free(file);
	}
	free(bb);
	/* The next Fetch goes on at the next batch; all of it reads back. */
	int64_t off = 0;
	size_t fetches = 0;
	bad = 0;
	while (off < 20000) {
		if (engine_read_batches(p, off, max, &bb, &blen) || blen == 0) {
			bad++;
			break;
		}
		for (size_t q = 0; q < blen;) {
			struct batch_header h;
			size_t l = (size_t)get_be32(bb + q + 8) + 12;
			if (batch_header_parse(bb + q, l, &h) || h.base_offset != off)
				bad++;
			off = h.base_offset + h.last_offset_delta + 1;
			q += l;
		}
		free(bb);
		fetches++;
	}
	ok(bad == 0 && off == 20000 && fetches >= 20000 / (max / 1024) - 1,
	   "%zu Fetches read every offset once", fetches);
	/* A max below one batch still gets one whole batch. */
	ok(engine_read_batches(p, 100, 1, &bb, &blen) == 0 && blen > 0, "max_bytes 1: one batch");
	free(bb);
	free(segs);
	engine_partition_unref(p);
	engine_close(e);
}

/* ---- batch and segment boundaries, every codec ------------------------- */

/* Decodes of the codec under test, through batch_iter_init's path. */
static enum batch_codec counted_codec;
static batch_codec_fn counted_fn;
static int decodes;

static int counting_decompress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	decodes++;
	return counted_fn(in, in_len, out, out_len);
}

static batch_codec_fn codec_fn_of(enum batch_codec c)
{
	switch (c) {
	case BATCH_CODEC_GZIP:
		return codec_gzip_decompress;
	case BATCH_CODEC_SNAPPY:
		return codec_snappy_decompress;
	case BATCH_CODEC_LZ4:
		return codec_lz4_decompress;
	case BATCH_CODEC_ZSTD:
		return codec_zstd_decompress;
	default:
		return NULL;
	}
}

/* Records [from, to) as one batch (larger than the cursor's 1 MiB
 * read-ahead for a thousand of them). */
static int append_big(struct partition *p, int64_t from, int64_t to)
{
	size_t n = (size_t)(to - from);
	struct record_in *recs = calloc(n, sizeof(*recs));
	char *vals = malloc(n * 3100);
	int64_t base;
	int rc = recs && vals ? 0 : -ENOMEM;

	for (size_t k = 0; rc == 0 && k < n; k++) {
		recs[k] = (struct record_in){ .timestamp = T0 + from + (int64_t)k, .key_len = -1 };
		recs[k].value = vals + k * 3100;
		recs[k].value_len = (int32_t)value_of(from + (int64_t)k, vals + k * 3100);
	}
	if (rc == 0)
		rc = engine_append_records(p, recs, n, &base);
	if (rc == 0 && base != from)
		rc = -EINVAL;
	free(recs);
	free(vals);
	return rc;
}

struct bounds {
	uint64_t *raw; /* raw position of each batch's first record */
	size_t n;
	int compressed; /* batches whose records are compressed */
	size_t largest_plain; /* the largest uncompressed batch in a segment */
};

/* The batches of p as Fetch finds them, one at a time (max_bytes 1), from
 * offset 0 to next; starts[i] is record i's raw position. */
static int bounds_find(struct partition *p, int64_t next, const uint64_t *starts, struct bounds *b)
{
	struct engine_segment_info *segs;
	size_t nseg;
	int64_t seg_end;

	memset(b, 0, sizeof(*b));
	if (engine_partition_segments(p, &segs, &nseg) || nseg == 0)
		return -EIO;
	seg_end = segs[nseg - 1].last_offset + 1;
	free(segs);
	b->raw = malloc((size_t)next * sizeof(*b->raw));
	if (!b->raw)
		return -ENOMEM;
	for (int64_t off = 0; off < next;) {
		uint8_t *bb;
		size_t blen;
		int rc = engine_read_batches(p, off, 1, &bb, &blen);
		if (rc || blen < BATCH_HEADER_SIZE)
			return rc ? rc : -EIO;
		int64_t base = (int64_t)get_be64(bb);
		int64_t last = base + (int64_t)get_be32(bb + 23);
		size_t len = (size_t)get_be32(bb + 8) + 12;
		if ((get_be16(bb + 21) & 7) != BATCH_CODEC_NONE)
			b->compressed++;
		else if (base < seg_end && len > b->largest_plain)
			b->largest_plain = len;
		free(bb);
		if (base != off || last < base || last >= next)
			return -EIO;
		b->raw[b->n++] = starts[base];
		off = last + 1;
	}
	return 0;
}

/* Stream the view through rd, each read ending at a boundary - 1, at it
 * or at it + 1 in turn (then to the end); every byte must be want's. */
static bool stream_to_bounds(struct engine_raw_reader *rd, const struct bounds *b, const char *want,
			     size_t wlen)
{
	static char buf[4 << 20];
	uint64_t pos = 0;
	for (size_t i = 0; i <= b->n; i++) {
		uint64_t to = i < b->n ? b->raw[i] + (uint64_t)((int)(i % 3) - 1) : wlen;
		if (to > wlen)
			to = wlen;
		while (pos < to) {
			size_t len = to - pos > sizeof(buf) ? sizeof(buf) : (size_t)(to - pos);
			uint64_t from;
			ssize_t n = engine_raw_reader_read(rd, pos, buf, len, &from);
			if (n <= 0 || from != pos || memcmp(buf, want + pos, (size_t)n) != 0)
				return false;
			pos += (uint64_t)n;
		}
	}
	uint64_t from;
	return engine_raw_reader_read(rd, pos, buf, 1, &from) == 0;
}

/* Stream the whole view in reads of len bytes; every byte must be want's. */
static bool stream_by(struct engine_raw_reader *rd, size_t len, const char *want, size_t wlen)
{
	static char buf[1 << 20];
	uint64_t pos = 0, from;
	ssize_t n;
	if (len > sizeof(buf))
		len = sizeof(buf);
	while ((n = engine_raw_reader_read(rd, pos, buf, len, &from)) > 0) {
		if (from != pos || pos + (uint64_t)n > wlen ||
		    memcmp(buf, want + pos, (size_t)n) != 0)
			return false;
		pos += (uint64_t)n;
	}
	return n == 0 && pos == wlen;
}

/* A topic of compression.type codec holding small batches and batches
 * larger than the cursor's read-ahead, in segments (several, of up to
 * 4 MiB) and in the WAL: reads at every batch boundary - 1, + 0 and + 1,
 * one-off and streamed, return the raw view byte for byte, and a stream
 * decodes each compressed batch once however short its reads. */
static void test_boundaries(const char *root, const char *codec_name, enum batch_codec codec)
{
	char dir[4200], cfg[100], sub[64];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	struct engine_raw_reader *rd;
	struct bounds b;
	const int64_t n = 8800;
	size_t elen = 0;
	char *want = expect_raw(n, &elen);
	uint64_t *starts = malloc((size_t)(n + 1) * sizeof(*starts));
	static char vbuf[3100];

	starts[0] = 0;
	for (int64_t i = 0; i < n; i++)
		starts[i + 1] = starts[i] + value_of(i, vbuf) + 1;
	snprintf(sub, sizeof(sub), "bounds-%s", codec_name);
	snprintf(cfg, sizeof(cfg), "{\"compression.type\":\"%s\"}", codec_name);
	snprintf(dir, sizeof(dir), "%s/%s", root, sub);
	engine_options_init(&o);
	/* The WAL left at the end (about 2.7 MB) stays in one active file,
	 * sealed by nothing: the batches stay what bounds_find saw. */
	o.wal_segment_bytes = 4 << 20;
	o.wal_seal_ms = 0;
	o.fsync = FSYNC_NEVER;
	e = open_or_bail(dir, &o);
	ok(engine_topic_create(e, "t", 1, cfg) == 0, "%s: create t", codec_name);
	p = part_or_bail(e, "t", 0);
	ok(append_range(p, 0, 2000, 7) == 0 && append_big(p, 2000, 3000) == 0 &&
		   append_range(p, 3000, 5000, 13) == 0 && append_big(p, 5000, 6000) == 0 &&
		   append_big(p, 6000, 7000) == 0 && engine_index_now(e) == 0,
	   "%s: small batches and batches over 1 MiB indexed", codec_name);
	ok(append_range(p, 7000, 7500, 5) == 0 && append_big(p, 7500, 8300) == 0 &&
		   append_range(p, 8300, n, 3) == 0,
	   "%s: more small and large batches left in the WAL", codec_name);
	engine_partition_info(p, &info);
	ok(info.segments >= 2 && info.batches > 0,
	   "%s: %" PRIu64 " segments, %" PRIu64 " batches in the WAL", codec_name, info.segments,
	   info.batches);
	int rc = bounds_find(p, n, starts, &b);
	ok(rc == 0 && b.n > 100, "%s: %zu batches found", codec_name, b.n);
	if (codec == BATCH_CODEC_NONE)
		ok(b.largest_plain > (1u << 20) + (1u << 18),
		   "%s: an uncompressed batch of %zu bytes, larger than the read-ahead", codec_name,
		   b.largest_plain);
	else
		ok(b.compressed > 5, "%s: %d batches compressed", codec_name, b.compressed);

	int bad = 0;
	for (size_t i = 0; i < b.n; i++) {
		for (int d = -1; d <= 1; d++) {
			static char buf[5000];
			uint64_t at = b.raw[i] + (uint64_t)d, from;
			if (b.raw[i] == 0 && d < 0)
				continue;
			size_t exp = elen - at < sizeof(buf) ? (size_t)(elen - at) : sizeof(buf);
			ssize_t m = engine_read_raw_at(p, at, buf, sizeof(buf), &from);
			if (m != (ssize_t)exp || from != at || memcmp(buf, want + at, exp) != 0)
				bad++;
		}
	}
	ok(bad == 0, "%s: one-off reads at each boundary - 1, + 0, + 1 (%d bad)", codec_name, bad);

	counted_codec = codec;
	counted_fn = codec_fn_of(codec);
	/* lz4 batches decode through batch_scratch, unless a replacement
	 * codec is registered: it is, for this stream only, so that it
	 * counts; the streams after it take lz4's own way. */
	if (counted_fn)
		batch_codec_register(codec, counting_decompress);
	decodes = 0;
	ok(engine_raw_reader_new(p, &rd) == 0 && stream_to_bounds(rd, &b, want, elen),
	   "%s: a stream whose reads end at each boundary - 1, + 0, + 1", codec_name);
	if (counted_fn)
		ok(decodes == b.compressed, "%s: each compressed batch decoded once (%d for %d)",
		   codec_name, decodes, b.compressed);
	if (codec == BATCH_CODEC_LZ4) {
		batch_codec_register(codec, counted_fn);
		counted_fn = NULL;
	}
	int passes = 0;
	static const size_t lens[] = { 1, 4095, 131072, 1 << 20 };
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		decodes = 0;
		if (stream_by(rd, lens[k], want, elen) &&
		    (!counted_fn || lens[k] == 1 || decodes == b.compressed))
			passes++;
		else
			diag("%s: reads of %zu bytes: wrong (%d decodes)", codec_name, lens[k],
			     decodes);
	}
	ok(passes == 4,
	   "%s: streams of 1, 4095, 128 Ki and 1 Mi byte reads, each batch decoded once",
	   codec_name);
	engine_raw_reader_free(rd);
	if (counted_fn)
		batch_codec_register(codec, counted_fn);
	ok(engine_verify(e, NULL, NULL) == 0, "%s: verify clean", codec_name);
	free(b.raw);
	free(starts);
	free(want);
	engine_partition_unref(p);
	engine_close(e);
}

/* One batch of 2,000 lines (about 3 MB, as a filesystem write of lines
 * arrives), indexed: the segment holds it as lz4 batches of about
 * SEGMENT_MERGE_BYTES of records each (recode_split), and every read
 * gives what the one batch held. */
static void test_split_batch(const char *root)
{
	char dir[4200];
	struct engine_options o;
	struct engine *e;
	struct partition *p;
	struct partition_info info;
	const int64_t n = 2000;
	size_t elen = 0;
	char *want = expect_raw(n, &elen), *got = malloc(elen + 1);
	uint8_t *b, *bb;
	size_t blen, bblen;
	int32_t count;
	int64_t base;
	int reads = 0, bad = 0, batches = 0;
	size_t largest = 0;

	if (!want || !got)
		bail("malloc");
	e = open_fresh_or_bail(root, "split", 64 << 20, &o, dir, sizeof(dir));
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "create t (compression.type lz4)");
	p = part_or_bail(e, "t", 0);
	ok(batch_encode_lines(want, elen, T0, &b, &blen, &count) == 0 && count == n &&
		   engine_append_batch(p, b, blen, true, &base) == 0 && base == 0,
	   "one batch of %lld lines, %zu bytes", (long long)n, blen);
	ok(engine_index_now(e) == 0, "indexed");
	engine_partition_info(p, &info);
	ok(info.segments == 1 && info.batches == 0, "one segment, nothing in the WAL");

	/* The segment's batches, as Fetch reads them: lz4, offsets dense,
	 * each at most a piece plus one line decoded. */
	int64_t next = 0;
	while (next < n) {
		if (engine_read_batches(p, next, 1, &bb, &bblen) != 0 || bblen == 0) {
			bad++;
			break;
		}
		struct batch_iter it;
		struct batch_record r;
		size_t dec = 0;
		if (batch_iter_init(&it, bb, bblen) != 0 || it.hdr.base_offset != next ||
		    (it.hdr.attributes & BATCH_ATTR_CODEC_MASK) != BATCH_CODEC_LZ4)
			bad++;
		while (batch_iter_next(&it, &r) == 1)
			dec += (size_t)r.value_len + 1;
		next = it.hdr.base_offset + it.hdr.last_offset_delta + 1;
		batch_iter_fini(&it);
		free(bb);
		largest = dec > largest ? dec : largest;
		batches++;
	}
	ok(bad == 0 && next == n && batches > 20 && largest < SEGMENT_MERGE_BYTES + 3100,
	   "Fetch reads %d lz4 batches, offsets dense, the largest %zu bytes of lines", batches,
	   largest);

	struct engine_raw_reader *rd;
	ok(engine_raw_reader_new(p, &rd) == 0, "a raw reader");
	ssize_t m = stream_to_end(rd, 0, got, elen, &reads);
	ok(m == (ssize_t)elen && memcmp(got, want, elen) == 0,
	   "sequential reads give the batch's lines (%d reads)", reads);
	int wrong = 0;
	for (uint64_t pos = 0; pos < elen; pos += 65521) {
		static char a[7000];
		uint64_t from;
		ssize_t na = engine_read_raw_at(p, pos, a, sizeof(a), &from);
		if (na <= 0 || from > pos || memcmp(a, want + from, (size_t)na) != 0)
			wrong++;
	}
	ok(wrong == 0, "reads at positions all over give the same bytes (%d wrong)", wrong);
	wrong = 0;
	for (int64_t off = 0; off < n; off += 37) {
		struct engine_cursor *c = NULL;
		struct engine_record r;
		char v[3100];
		size_t vl = value_of(off, v);
		if (engine_cursor_open(p, off, &c) != 0 || engine_cursor_next(c, &r) != 1 ||
		    r.offset != off || r.timestamp != T0 || r.value_len != (int32_t)vl ||
		    memcmp(r.value, v, vl) != 0)
			wrong++;
		engine_cursor_close(c);
	}
	ok(wrong == 0, "records read by offset are the lines (%d wrong)", wrong);
	engine_raw_reader_free(rd);
	engine_partition_unref(p);
	engine_close(e);
	free(b);
	free(want);
	free(got);
}

int main(void)
{
	char *root = tmpdir_new("segread");
	test_scratch();
	test_raw_reader(root);
	test_split_batch(root);
	test_fetch_weight(root);
	test_boundaries(root, "none", BATCH_CODEC_NONE);
	test_boundaries(root, "lz4", BATCH_CODEC_LZ4);
	test_boundaries(root, "zstd", BATCH_CODEC_ZSTD);
	test_boundaries(root, "gzip", BATCH_CODEC_GZIP);
	test_boundaries(root, "snappy", BATCH_CODEC_SNAPPY);
	tmpdir_free(root);
	return tap_exit();
}
