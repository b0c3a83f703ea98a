/* test_segment.c - segment files (segment.h), the lz4 re-encoding
 * (recode.h) and the registry (registry.h): every batch found again by
 * offset, raw position and timestamp; every truncation and a corruption of
 * every region detected; the key table (format version 2) and version 1
 * files; the registry round trip and its rules. */
#include <errno.h>
#include <json-c/json.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "byteorder.h"
#include "codecs.h"
#include "crc32c.h"
#include "errors.h"
#include "recode.h"
#include "registry.h"
#include "segment.h"
#include "tap.h"

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *w)
{
	(void)st;
	(void)f;
	(void)w;
	return remove(p);
}

#define NBATCH 300

struct fixture {
	uint8_t *b[NBATCH];
	size_t len[NBATCH];
	uint64_t raw[NBATCH], rawlen[NBATCH];
	int64_t base[NBATCH];
	int32_t count[NBATCH];
	int64_t ts[NBATCH];
};

/* Batches of 1..7 lines "r<offset>-xxxx", timestamps 1000 + 10 * batch;
 * an offset and raw hole after batch 100 (as compaction leaves). */
static void fixture_make(struct fixture *f)
{
	int64_t off = 5;
	uint64_t raw = 77;
	for (int i = 0; i < NBATCH; i++) {
		char text[1024];
		size_t n = 0;
		int32_t cnt;
		if (i == 101) {
			off += 13;
			raw += 500;
		}
		int lines = 1 + i % 7;
		for (int j = 0; j < lines; j++)
			n += (size_t)sprintf(text + n, "r%lld-%.*s\n", (long long)(off + j),
					     (i * 7 + j) % 40,
					     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		f->ts[i] = 1000 + 10 * i;
		if (batch_encode_lines(text, n, f->ts[i], &f->b[i], &f->len[i], &cnt))
			bail("encode");
		batch_set_base_offset(f->b[i], off);
		f->base[i] = off;
		f->count[i] = cnt;
		f->raw[i] = raw;
		f->rawlen[i] = n;
		off += cnt;
		raw += n;
	}
}

static int write_segment(const char *path, struct fixture *f, struct segment_meta *m)
{
	struct segment_writer *w;
	int rc = segment_writer_open(path, 9, 2, f->base[0], 41, &w);
	if (rc)
		return rc;
	for (int i = 0; i < NBATCH; i++) {
		rc = segment_writer_add(w, f->b[i], f->len[i], f->raw[i], f->rawlen[i],
					(uint32_t)f->count[i]);
		if (rc) {
			segment_writer_abort(w);
			return rc;
		}
	}
	return segment_writer_finish(w, m);
}

/* Walk from an index entry to the batch holding offset `off` (or raw
 * position `raw` when by_raw): returns the batch number in the fixture, or
 * -1. Checks the raw positions it sums on the way. */
static int locate(struct segment *s, const struct segment_index_entry *e, struct fixture *f,
		  bool by_raw, uint64_t key)
{
	uint64_t pos = e->file_pos, raw = e->raw_pos;
	int64_t next = e->offset;
	uint8_t hdr[BATCH_HEADER_SIZE];
	for (int guard = 0; guard < NBATCH; guard++) {
		if (segment_pread(s, hdr, sizeof(hdr), pos) != (ssize_t)sizeof(hdr))
			return -1;
		size_t len = get_be32(hdr + 8) + 12;
		int64_t base = (int64_t)get_be64(hdr);
		int32_t cnt = (int32_t)get_be32(hdr + 57);
		if (base != next)
			return -1;
		uint8_t *b = malloc(len);
		uint64_t rl = 0;
		if (segment_pread(s, b, len, pos) != (ssize_t)len || batch_raw_size(b, len, &rl)) {
			free(b);
			return -1;
		}
		free(b);
		bool hit = by_raw ? key < raw + rl : (uint64_t)(base + cnt) > key;
		if (hit) {
			for (int i = 0; i < NBATCH; i++)
				if (f->base[i] <= base && base < f->base[i] + f->count[i])
					return (f->raw[i] <= raw &&
						raw < f->raw[i] + f->rawlen[i]) ?
						       i :
						       -1;
			return -1;
		}
		pos += len;
		raw += rl;
		next = base + cnt;
	}
	return -1;
}

static void problem_count(void *arg, const char *what)
{
	(void)what;
	(*(int *)arg)++;
}

static void test_plain(const char *dir, struct fixture *f)
{
	char path[4200];
	struct segment_meta m;
	struct segment *s;
	struct segment_index_entry e;
	int bad = 0;

	snprintf(path, sizeof(path), "%s/00000000000000000005.seg", dir);
	ok(write_segment(path, f, &m) == 0, "segment written");
	ok(m.base_offset == 5 && m.last_offset == f->base[NBATCH - 1] + f->count[NBATCH - 1] - 1,
	   "meta offsets");
	ok(m.raw_start == 77 && m.raw_end == f->raw[NBATCH - 1] + f->rawlen[NBATCH - 1],
	   "meta raw range");
	ok(m.batches == NBATCH && m.min_timestamp == 1000 && m.max_timestamp == f->ts[NBATCH - 1],
	   "meta batches and timestamps");
	struct stat st;
	ok(stat(path, &st) == 0 && (uint64_t)st.st_size == m.bytes, "bytes is the file size");
	ok(segment_verify(path, &m, NULL, NULL) == 0, "verify: clean");

	ok(segment_new(path, &m, &s) == 0 && segment_read_begin(s) == 0, "opened");
	for (int i = 0; i < NBATCH; i++) {
		for (int32_t j = 0; j < f->count[i]; j++) {
			segment_find_offset(s, f->base[i] + j, &e);
			if (locate(s, &e, f, false, (uint64_t)(f->base[i] + j)) != i)
				bad++;
		}
		for (uint64_t r = f->raw[i]; r < f->raw[i] + f->rawlen[i]; r += 3) {
			segment_find_raw(s, r, &e);
			if (locate(s, &e, f, true, r) != i)
				bad++;
		}
		/* The first record at or after ts[i] is batch i's first. */
		if (segment_find_time(s, f->ts[i], &e) != 0 ||
		    locate(s, &e, f, false, (uint64_t)e.offset) < 0 || e.offset > f->base[i])
			bad++;
	}
	ok(bad == 0, "every record found by offset, raw position and timestamp (%d misses)", bad);
	/* Inside the hole: the raw lookup lands before it and walks past. */
	segment_find_offset(s, f->base[101], &e);
	ok(e.offset == f->base[101] && e.raw_pos == f->raw[101], "an index entry at the hole");
	ok(segment_find_time(s, 1000000, &e) == 1, "no record after the last timestamp");
	segment_read_end(s);
	segment_unref(s);

	/* Every truncation is detected by open and by verify. */
	uint8_t *orig = malloc(m.bytes);
	int fd = open(path, O_RDONLY);
	if (read(fd, orig, m.bytes) != (ssize_t)m.bytes)
		bail("read back");
	close(fd);
	int missed_open = 0, missed_verify = 0;
	char cut[4300];
	snprintf(cut, sizeof(cut), "%s/cut.seg", dir);
	for (uint64_t len = 0; len < m.bytes; len += (len < 200 || m.bytes - len < 400) ? 1 : 97) {
		fd = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (write(fd, orig, len) != (ssize_t)len)
			bail("write cut");
		close(fd);
		struct segment *c;
		segment_new(cut, &m, &c);
		if (segment_read_begin(c) == 0) {
			missed_open++;
			segment_read_end(c);
		}
		segment_unref(c);
		if (segment_verify(cut, &m, NULL, NULL) == 0)
			missed_verify++;
	}
	ok(missed_open == 0, "every truncation refused by open (%d missed)", missed_open);
	ok(missed_verify == 0, "every truncation reported by verify (%d missed)", missed_verify);

	/* A flipped byte in every region: header, batch bytes (CRC-covered and
	 * not), index, trailer. Verify reports each. */
	int missed = 0, tried = 0;
	for (uint64_t pos = 0; pos < m.bytes; pos += 1 + pos % 53) {
		uint8_t *copy = malloc(m.bytes);
		memcpy(copy, orig, m.bytes);
		copy[pos] ^= 0x5a;
		fd = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (write(fd, copy, m.bytes) != (ssize_t)m.bytes)
			bail("write flip");
		close(fd);
		free(copy);
		int n = 0;
		tried++;
		if (segment_verify(cut, &m, problem_count, &n) == 0 || n == 0)
			missed++;
	}
	ok(missed == 0, "every flipped byte reported by verify (%d of %d missed)", missed, tried);
	free(orig);
	unlink(cut);
}

/* The key digest against values computed from segment.h's description
 * of it by a separate implementation (so the format text and the code
 * agree). */
static void test_digest(void)
{
	static const struct {
		const char *key;
		uint64_t d0, d1;
	} v[] = {
		{ "", 0x9ca066f1a4ab2eeaull, 0xe514fd3ba51117adull },
		{ "a", 0x1a70409d9c475b87ull, 0x996b5986c8f0bafcull },
		{ "key-007", 0x1dffd5d77cd16427ull, 0x3ed79cc106f5c8d5ull },
		{ "0123456789abcdef-long key", 0x4f3a2e1ad5903af6ull, 0x67ed838bc2a6a302ull },
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint64_t d[2];
		segment_key_digest(v[i].key, strlen(v[i].key), d);
		bad += d[0] != v[i].d0 || d[1] != v[i].d1;
	}
	ok(bad == 0, "key digests as segment.h defines them (%d wrong)", bad);
}

static int key_order(const void *a, const void *b)
{
	const struct segment_key *x = a, *y = b;
	if (x->digest[0] != y->digest[0])
		return x->digest[0] < y->digest[0] ? -1 : 1;
	if (x->digest[1] != y->digest[1])
		return x->digest[1] < y->digest[1] ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Batches of keyed records (37 keys over 200 records, a null key every
 * third, the empty key once), written as version 2 and as version 1: the
 * version 2 table read through the segment holds each key once with the
 * offset of its last record, by digest; the
 * version 1 file has none; both verify clean; in version 2 a flipped byte
 * anywhere in the key table or trailer is reported, a truncation refused. */
static void test_keyed(const char *dir)
{
	char path[2][4200];
	struct segment_key want[400];
	size_t nwant = 0;
	struct segment_meta m[2];
	uint8_t *b[20];
	size_t len[20];
	int64_t off = 100;

	for (int i = 0; i < 20; i++) {
		struct batch_builder bb;
		batch_builder_init(&bb);
		int64_t base = off;
		uint64_t rawlen = 0;
		for (int j = 0; j < 10; j++, off++) {
			char key[32], val[32];
			snprintf(key, sizeof(key), "k%d", (i * 10 + j) % 37);
			snprintf(val, sizeof(val), "v%lld", (long long)off);
			struct record_in r = { .timestamp = 5000 + off,
					       .key = off == 105 ? "" : key,
					       .key_len = off % 3 == 0 ? -1 :
							  off == 105   ? 0 :
									 (int32_t)strlen(key),
					       .value = val,
					       .value_len = (int32_t)strlen(val) };
			if (batch_builder_add(&bb, &r))
				bail("builder");
			rawlen += strlen(val) + 1;
			if (r.key_len >= 0) {
				segment_key_digest(r.key, (size_t)r.key_len, want[nwant].digest);
				want[nwant++].offset = off;
			}
		}
		if (batch_builder_finish(&bb, &b[i], &len[i]))
			bail("builder finish");
		batch_builder_fini(&bb);
		batch_set_base_offset(b[i], base);
		if (i % 2) { /* half of them lz4: the writer decodes those too */
			uint8_t *z;
			size_t zlen;
			const uint8_t *in[1] = { b[i] };
			if (recode_merge(in, &len[i], 1, BATCH_CODEC_LZ4, &z, &zlen))
				bail("lz4");
			free(b[i]);
			b[i] = z;
			len[i] = zlen;
		}
	}
	/* The table those records make: by digest, each key's last offset. */
	size_t nrec = nwant;
	qsort(want, nwant, sizeof(want[0]), key_order);
	nwant = 0;
	for (size_t i = 0; i < nrec; i++)
		if (i + 1 == nrec || want[i + 1].digest[0] != want[i].digest[0] ||
		    want[i + 1].digest[1] != want[i].digest[1])
			want[nwant++] = want[i];
	for (int v = 0; v < 2; v++) {
		struct segment_writer *w;
		uint64_t rp = 0;
		snprintf(path[v], sizeof(path[v]), "%s/keyed-v%d.seg", dir, 2 - v);
		segment_write_version(v == 0 ? SEGMENT_VERSION : 1);
		if (segment_writer_open(path[v], 9, 2, 100, 41, &w))
			bail("writer open");
		segment_write_version(SEGMENT_VERSION);
		for (int i = 0; i < 20; i++) {
			uint64_t rl;
			if (batch_raw_size(b[i], len[i], &rl) ||
			    segment_writer_add(w, b[i], len[i], rp, rl, 10))
				bail("writer add");
			rp += rl;
		}
		if (segment_writer_finish(w, &m[v]))
			bail("writer finish");
	}
	struct segment *s;
	struct segment_key *keys = NULL;
	size_t n = 0;
	int same = 0;
	ok(segment_new(path[0], &m[0], &s) == 0 && segment_read_begin(s) == 0 &&
		   segment_version(s) == 2,
	   "version 2 segment opened");
	int krc = segment_read_keys(s, &keys, &n);
	ok(krc == 0 && n == nwant, "its key table: %zu entries of %zu", n, nwant);
	for (size_t i = 0; i < n && i < nwant; i++)
		same += keys[i].offset == want[i].offset &&
			keys[i].digest[0] == want[i].digest[0] &&
			keys[i].digest[1] == want[i].digest[1];
	ok(same == (int)nwant && nwant == 37,
	   "each key once (the empty key included, no null key), its last record's offset, by "
	   "digest");
	free(keys);
	segment_read_end(s);
	segment_unref(s);
	ok(segment_verify(path[0], &m[0], NULL, NULL) == 0, "version 2: verify clean");

	ok(segment_new(path[1], &m[1], &s) == 0 && segment_read_begin(s) == 0 &&
		   segment_version(s) == 1 && segment_read_keys(s, &keys, &n) == 1,
	   "version 1 segment opened, without a key table");
	segment_read_end(s);
	segment_unref(s);
	ok(segment_verify(path[1], &m[1], NULL, NULL) == 0 &&
		   m[1].bytes + nwant * SEGMENT_KEY_ENTRY_SIZE +
				   (SEGMENT_TRAILER_V2_SIZE - SEGMENT_TRAILER_SIZE) ==
			   m[0].bytes,
	   "version 1: verify clean; it is the table and 16 trailer bytes shorter");

	/* Flips in the index, key table and trailer of version 2; cuts. */
	uint8_t *orig = malloc(m[0].bytes);
	int fd = open(path[0], O_RDONLY);
	if (!orig || read(fd, orig, m[0].bytes) != (ssize_t)m[0].bytes)
		bail("read back");
	close(fd);
	char cut[4300];
	snprintf(cut, sizeof(cut), "%s/keyed-cut.seg", dir);
	int missed = 0, tried = 0, missed_open = 0;
	for (uint64_t pos = m[0].data_end; pos < m[0].bytes; pos++) {
		orig[pos] ^= 0x21;
		fd = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (write(fd, orig, m[0].bytes) != (ssize_t)m[0].bytes)
			bail("write flip");
		close(fd);
		orig[pos] ^= 0x21;
		int np = 0;
		tried++;
		if (segment_verify(cut, &m[0], problem_count, &np) == 0 || np == 0)
			missed++;
	}
	for (uint64_t l = m[0].data_end; l < m[0].bytes; l++) {
		fd = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (write(fd, orig, l) != (ssize_t)l)
			bail("write cut");
		close(fd);
		struct segment *c;
		segment_new(cut, &m[0], &c);
		if (segment_read_begin(c) == 0) {
			missed_open++;
			segment_read_end(c);
		}
		segment_unref(c);
	}
	ok(missed == 0 && missed_open == 0,
	   "version 2: every flip past the batches reported (%d of %d missed), every cut refused "
	   "(%d missed)",
	   missed, tried, missed_open);
	unlink(cut);
	free(orig);
	for (int i = 0; i < 20; i++)
		free(b[i]);
}

static void test_recode(const char *dir, struct fixture *f)
{
	uint8_t *out;
	size_t out_len;
	struct batch_iter it;
	struct batch_record r;
	int bad = 0, n = 0;
	uint64_t raw = 0, want_raw = 0;

	/* Batches 0..99 are contiguous: merge them. */
	ok(recode_merge((const uint8_t *const *)f->b, f->len, 100, BATCH_CODEC_LZ4, &out,
			&out_len) == 0,
	   "100 batches merged into one lz4 batch");
	ok(batch_crc_check(out, out_len) == 0, "its CRC is Kafka's");
	ok(batch_iter_init(&it, out, out_len) == 0 &&
		   (it.hdr.attributes & BATCH_ATTR_CODEC_MASK) == BATCH_CODEC_LZ4 &&
		   it.hdr.base_offset == f->base[0],
	   "lz4, same base offset");
	for (int i = 0; i < 100; i++) {
		struct batch_iter src;
		struct batch_record sr;
		want_raw += f->rawlen[i];
		batch_iter_init(&src, f->b[i], f->len[i]);
		while (batch_iter_next(&src, &sr) == 1) {
			if (batch_iter_next(&it, &r) != 1) {
				bad++;
				break;
			}
			n++;
			if (it.hdr.base_offset + r.offset_delta !=
				    src.hdr.base_offset + sr.offset_delta ||
			    it.hdr.base_timestamp + r.timestamp_delta !=
				    src.hdr.base_timestamp + sr.timestamp_delta ||
			    r.value_len != sr.value_len ||
			    memcmp(r.value, sr.value, (size_t)r.value_len))
				bad++;
		}
		batch_iter_fini(&src);
	}
	ok(bad == 0 && batch_iter_next(&it, &r) == 0,
	   "%d records: same offsets, timestamps, values", n);
	batch_iter_fini(&it);
	ok(batch_raw_size(out, out_len, &raw) == 0 && raw == want_raw, "same raw size");
	free(out);
	/* An input whose baseTimestamp is not its first record's (a valid
	 * batch: a record's timestamp is base + delta): the merged batch's
	 * base is the first record's timestamp, the record's time is kept. */
	{
		uint8_t one[61 + 8] = { 0 };
		const uint8_t *ins[1] = { one };
		size_t lens[1] = { sizeof(one) };
		const int64_t t = 1700000000000LL;
		put_be32(one + 8, (uint32_t)(sizeof(one) - 12));
		put_be32(one + 12, 0xffffffffu); /* partitionLeaderEpoch */
		one[16] = 2; /* magic */
		put_be64(one + 27, (uint64_t)t); /* baseTimestamp */
		put_be64(one + 35, (uint64_t)(t + 7)); /* maxTimestamp */
		put_be64(one + 43, UINT64_MAX); /* producerId -1 */
		put_be16(one + 51, 0xffff);
		put_be32(one + 53, 0xffffffffu);
		put_be32(one + 57, 1); /* one record */
		/* length 7, attributes 0, timestampDelta 7, offsetDelta 0,
		 * key null, value "x", no headers (zigzag varints) */
		static const uint8_t rec[8] = { 0x0e, 0x00, 0x0e, 0x00, 0x01, 0x02, 'x', 0x00 };
		memcpy(one + 61, rec, sizeof(rec));
		put_be32(one + 17, crc32c(0, one + 21, sizeof(one) - 21));
		bool fine = batch_crc_check(one, sizeof(one)) == 0 &&
			    recode_merge(ins, lens, 1, BATCH_CODEC_LZ4, &out, &out_len) == 0;
		fine = fine && batch_iter_init(&it, out, out_len) == 0;
		bool same = fine && it.hdr.base_timestamp == t + 7 &&
			    it.hdr.max_timestamp == t + 7 && batch_iter_next(&it, &r) == 1 &&
			    r.timestamp_delta == 0 && r.value_len == 1 && r.value[0] == 'x';
		if (fine) {
			batch_iter_fini(&it);
			free(out);
		}
		ok(same, "a merged batch's baseTimestamp is its first record's timestamp");
		/* recode_one of the same batch: its first record's delta is
		 * not 0, so the records are re-encoded as by recode_merge. */
		fine = recode_one(one, sizeof(one), BATCH_CODEC_LZ4, &out, &out_len) == 0 &&
		       batch_crc_check(out, out_len) == 0 &&
		       batch_iter_init(&it, out, out_len) == 0;
		same = fine && it.hdr.base_timestamp == t + 7 && batch_iter_next(&it, &r) == 1 &&
		       r.timestamp_delta == 0 && r.value_len == 1 && r.value[0] == 'x';
		if (fine) {
			batch_iter_fini(&it);
			free(out);
		}
		ok(same, "recode_one re-encodes a batch whose first record has a timestamp delta");
	}
	/* recode_one of a batch whose base is its first record's: the records
	 * are compressed byte for byte as they were, header fields kept. */
	{
		struct batch_iter src;
		bool fine = recode_one(f->b[0], f->len[0], BATCH_CODEC_LZ4, &out, &out_len) == 0 &&
			    batch_crc_check(out, out_len) == 0 &&
			    batch_iter_init(&it, out, out_len) == 0;
		bool same = fine && batch_iter_init(&src, f->b[0], f->len[0]) == 0 &&
			    (it.hdr.attributes & BATCH_ATTR_CODEC_MASK) == BATCH_CODEC_LZ4 &&
			    it.hdr.base_offset == src.hdr.base_offset &&
			    it.hdr.base_timestamp == src.hdr.base_timestamp &&
			    it.hdr.max_timestamp == src.hdr.max_timestamp &&
			    it.hdr.record_count == src.hdr.record_count &&
			    it.end - it.p == src.end - src.p &&
			    memcmp(it.p, src.p, (size_t)(src.end - src.p)) == 0;
		if (fine) {
			batch_iter_fini(&src);
			batch_iter_fini(&it);
			free(out);
		}
		ok(same, "recode_one keeps a batch's records byte for byte, compressed");
		ok(recode_one(f->b[0], f->len[0], BATCH_CODEC_NONE, &out, &out_len) == -ENOTSUP,
		   "recode_one refuses codec none");
	}
	ok(recode_merge((const uint8_t *const *)f->b + 99, f->len + 99, 3, BATCH_CODEC_LZ4, &out,
			&out_len) == CHRONIK_ECORRUPT,
	   "batches across an offset hole are refused");
	/* The other codecs: the engine's own decompressors read them back. */
	static const struct {
		enum batch_codec c;
		const char *name;
	} codecs[] = { { BATCH_CODEC_ZSTD, "zstd" },
		       { BATCH_CODEC_GZIP, "gzip" },
		       { BATCH_CODEC_SNAPPY, "snappy" } };
	for (size_t k = 0; k < sizeof(codecs) / sizeof(codecs[0]); k++) {
		int m = 0;
		bool same = recode_merge((const uint8_t *const *)f->b, f->len, 100, codecs[k].c,
					 &out, &out_len) == 0 &&
			    batch_crc_check(out, out_len) == 0 &&
			    batch_iter_init(&it, out, out_len) == 0 &&
			    (it.hdr.attributes & BATCH_ATTR_CODEC_MASK) == codecs[k].c;
		for (int i = 0; same && i < 100; i++) {
			struct batch_iter src;
			struct batch_record sr;
			batch_iter_init(&src, f->b[i], f->len[i]);
			while (same && batch_iter_next(&src, &sr) == 1) {
				same = batch_iter_next(&it, &r) == 1 &&
				       it.hdr.base_offset + r.offset_delta ==
					       src.hdr.base_offset + sr.offset_delta &&
				       r.value_len == sr.value_len &&
				       memcmp(r.value, sr.value, (size_t)r.value_len) == 0;
				m++;
			}
			batch_iter_fini(&src);
		}
		if (same)
			batch_iter_fini(&it);
		free(same ? out : NULL);
		ok(same && m == n, "%s: the same %d records", codecs[k].name, m);
	}
	(void)dir;
}

/* recode_split: one uncompressed batch of 3,000 records (values 0..399
 * bytes, one of 100 KiB, some null; keys on every third; timestamps not in
 * order) split at 16 KiB into lz4 pieces that hold the same records. */
static void test_split(void)
{
	enum { N = 3000, PIECE = 16 << 10, BIG = 100 << 10 };
	static char vbuf[BIG];
	struct batch_builder bb;
	uint8_t *in, *pbad;
	size_t in_len, n = 0;
	struct recode_piece *pc = NULL;
	const int64_t t0 = 1700000000000LL;
	uint64_t raw = 0, raw_sum = 0;
	int64_t max_ts = 0, next = 42;
	bool fine = true, sizes = true;
	int seen = 0;

	memset(vbuf, 'v', sizeof(vbuf));
	batch_builder_init(&bb);
	for (int i = 0; i < N; i++) {
		char key[16];
		int vlen = i == 1234 ? BIG : i % 97 == 5 ? -1 : (i * 37) % 400;
		int64_t ts = t0 + (i * 7919) % 5000;
		struct record_in r = { .timestamp = ts,
				       .key = key,
				       .key_len = i % 3 ? -1 : sprintf(key, "k%d", i),
				       .value = vbuf,
				       .value_len = vlen };
		if (batch_builder_add(&bb, &r))
			bail("builder");
		raw += (uint64_t)(vlen > 0 ? vlen : 0) + 1;
		if (ts > max_ts)
			max_ts = ts;
	}
	if (batch_builder_finish(&bb, &in, &in_len))
		bail("builder finish");
	batch_builder_fini(&bb);
	batch_set_base_offset(in, 42);
	put_be32(in + 17, crc32c(0, in + 21, in_len - 21));

	int rc = recode_split(in, in_len, BATCH_CODEC_LZ4, PIECE, &pc, &n);
	ok(rc == 0 && n > 10, "a %zu-byte batch split into %zu pieces", in_len, n);
	struct batch_iter src;
	struct batch_record sr;
	batch_iter_init(&src, in, in_len);
	int64_t pieces_max = INT64_MIN;
	for (size_t k = 0; k < n && fine; k++) {
		struct batch_iter it;
		struct batch_record r;
		int64_t pmax = INT64_MIN;
		size_t bytes = 0;
		uint64_t praw;
		fine = batch_crc_check(pc[k].b, pc[k].len) == 0 &&
		       batch_iter_init(&it, pc[k].b, pc[k].len) == 0 &&
		       (it.hdr.attributes & BATCH_ATTR_CODEC_MASK) == BATCH_CODEC_LZ4 &&
		       it.hdr.base_offset == next && it.hdr.record_count == (int32_t)pc[k].records &&
		       batch_raw_size(pc[k].b, pc[k].len, &praw) == 0 && praw == pc[k].raw_len;
		if (!fine)
			break;
		while (fine && batch_iter_next(&it, &r) == 1) {
			int64_t ts = it.hdr.base_timestamp + r.timestamp_delta;
			fine = batch_iter_next(&src, &sr) == 1 &&
			       it.hdr.base_offset + r.offset_delta ==
				       src.hdr.base_offset + sr.offset_delta &&
			       ts == src.hdr.base_timestamp + sr.timestamp_delta &&
			       r.key_len == sr.key_len &&
			       (r.key_len <= 0 || !memcmp(r.key, sr.key, (size_t)r.key_len)) &&
			       r.value_len == sr.value_len &&
			       (r.value_len <= 0 || !memcmp(r.value, sr.value, (size_t)r.value_len));
			if (ts > pmax)
				pmax = ts;
			if (r.value_len > (int32_t)bytes)
				bytes = (size_t)r.value_len; /* the largest value */
			seen++;
		}
		/* The last piece's max timestamp is at least the input's. */
		if (k + 1 == n && max_ts > pmax)
			pmax = max_ts;
		fine = fine && it.hdr.max_timestamp == pmax;
		/* Each piece but the last holds at least PIECE bytes of records
		 * (its LZ4 frame's content size), and less than PIECE plus
		 * its last record, unless that is the 100 KiB one. */
		{
			void *dctx = NULL;
			size_t content = 0;
			if (codec_lz4_frame_size(&dctx, pc[k].b + 61, pc[k].len - 61, &content) != 0 ||
			    (k + 1 < n && content < PIECE) ||
			    (content >= PIECE + 512 && bytes < BIG))
				sizes = false;
			codec_lz4_ctx_free(dctx);
		}
		if (pmax > pieces_max)
			pieces_max = pmax;
		next += it.hdr.record_count;
		raw_sum += pc[k].raw_len;
		batch_iter_fini(&it);
	}
	ok(fine && seen == N && batch_iter_next(&src, &sr) == 0,
	   "%d records: same offsets, timestamps, keys, values; pieces' CRCs, base offsets, max timestamps",
	   seen);
	batch_iter_fini(&src);
	ok(raw_sum == raw, "raw sizes add up to the input's (%llu)", (unsigned long long)raw);
	ok(pieces_max == max_ts, "the pieces' largest max timestamp is the input's");
	ok(sizes, "each piece but the last holds at least the piece size of records");
	recode_pieces_free(pc, n);

	/* A batch with a producer id is not split. */
	pbad = malloc(in_len);
	if (!pbad)
		bail("malloc");
	memcpy(pbad, in, in_len);
	put_be64(pbad + 43, 7);
	put_be32(pbad + 17, crc32c(0, pbad + 21, in_len - 21));
	ok(recode_split(pbad, in_len, BATCH_CODEC_LZ4, PIECE, &pc, &n) == -EINVAL,
	   "a batch with a producer id is refused");
	ok(recode_split(in, in_len, BATCH_CODEC_NONE, PIECE, &pc, &n) == -ENOTSUP,
	   "codec none is refused");
	free(pbad);
	free(in);
}

static void test_registry(const char *dir)
{
	struct registry r = { 0 }, back;
	struct segment_meta m[2] = {
		{ .base_offset = 0,
		  .last_offset = 99,
		  .min_timestamp = 5,
		  .max_timestamp = 9,
		  .raw_start = 0,
		  .raw_end = 1000,
		  .bytes = 5000,
		  .data_end = 4000,
		  .records = 100,
		  .batches = 3,
		  .wal_seq = 4 },
		{ .base_offset = 100,
		  .last_offset = 149,
		  .min_timestamp = 9,
		  .max_timestamp = 12,
		  .raw_start = 1000,
		  .raw_end = 1400,
		  .bytes = 900,
		  .data_end = 800,
		  .records = 50,
		  .batches = 1,
		  .wal_seq = 5 },
	};
	char path[4200];

	ok(registry_load(dir, 3, 1, &back) == 0 && back.n == 0 && back.next_offset == 0,
	   "a missing registry is empty");
	r.segs = m;
	r.n = 2;
	r.next_offset = 150;
	r.raw_end = 1400;
	ok(registry_save(dir, 3, 1, &r) == 0, "saved");
	ok(registry_load(dir, 3, 1, &back) == 0 && back.n == 2 &&
		   memcmp(&back.segs[1], &m[1], sizeof(m[1])) == 0 && back.next_offset == 150 &&
		   back.raw_end == 1400,
	   "loaded back the same");
	registry_fini(&back);
	ok(registry_load(dir, 3, 2, &back) == CHRONIK_ECORRUPT, "another partition's is refused");
	m[1].base_offset = 99;
	ok(registry_save(dir, 3, 1, &r) == 0 && registry_load(dir, 3, 1, &back) == CHRONIK_ECORRUPT,
	   "overlapping segments are refused");
	m[1].base_offset = 100;
	/* A log start inside the first segment (DeleteRecords): version 3. */
	r.log_start_offset = 40;
	r.raw_start = 400;
	snprintf(path, sizeof(path), "%s/%s", dir, REGISTRY_FILE);
	ok(registry_save(dir, 3, 1, &r) == 0 && registry_load(dir, 3, 1, &back) == 0 &&
		   back.log_start_offset == 40 && back.raw_start == 400 && back.n == 2,
	   "a log start inside the first segment round-trips");
	registry_fini(&back);
	json_object *jo = json_object_from_file(path), *jv;
	ok(jo && json_object_object_get_ex(jo, "version", &jv) && json_object_get_int(jv) == 3,
	   "and is saved as version 3");
	json_object_object_add(jo, "version", json_object_new_int(2));
	json_object_to_file(path, jo);
	json_object_put(jo);
	ok(registry_load(dir, 3, 1, &back) == CHRONIK_ECORRUPT,
	   "version 2 with a log start inside the first segment is refused");
	r.log_start_offset = 0;
	r.raw_start = 0;
	ok(registry_save(dir, 3, 1, &r) == 0 && (jo = json_object_from_file(path)) != NULL &&
		   json_object_object_get_ex(jo, "version", &jv) && json_object_get_int(jv) == 1,
	   "a log start at the first segment's base is saved as version 1");
	json_object_put(jo);
	FILE *fp = fopen(path, "w");
	fputs("{\"version\":1,", fp);
	fclose(fp);
	ok(registry_load(dir, 3, 1, &back) == CHRONIK_ECORRUPT, "a torn registry is refused");
	snprintf(path, sizeof(path), "%s/%s.tmp", dir, REGISTRY_FILE);
	ok(registry_save(dir, 3, 1, &r) == 0 && access(path, F_OK) != 0,
	   "save leaves no temp file");
}

int main(void)
{
	char tmpl[] = "/tmp/chronik-segment-XXXXXX";
	char *dir = mkdtemp(tmpl);
	struct fixture f;

	if (!dir)
		bail("mkdtemp");
	fixture_make(&f);
	test_plain(dir, &f);
	test_digest();
	test_keyed(dir);
	test_recode(dir, &f);
	test_split();
	test_registry(dir);
	for (int i = 0; i < NBATCH; i++)
		free(f.b[i]);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return tap_exit();
}
