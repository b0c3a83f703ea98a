/* test_binary.c - binary keys, values and headers are skipped and counted
 * (index.c's meta "binary"), and search_partition_stats sums the counts
 * of the partition's indexed segments (info's "binary_values").
 *
 * Records are appended with keys, values, header names and header values
 * that are text, null, or not text in the ways index.c's is_text refuses
 * (invalid UTF-8, a control character other than tab/CR/LF/ESC, DEL). A model
 * kept per offset counts, independently of the index code, what must be
 * skipped: each non-null key and value that is not text, each header
 * name that is not text, each non-null header value that is not text.
 * The sum over the registered segments' offsets must equal the stats
 * exactly: after indexing, with a tail not indexed yet (not counted),
 * after indexing that tail, and with one segment's index removed (that
 * segment left out, and counted as unindexed). Queries still find the
 * text around the binary parts.
 *
 * Log lines with ANSI colour codes (ESC, 0x1b) are text: a word in them
 * is found from an indexed segment and from the WAL tail alike, while a
 * value holding NUL beside them is still counted binary.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "search_test.h"

#define NREC 3000
#define MAXH 3

/* Per offset: how many parts of the record must be counted as binary. */
static unsigned model[NREC];

/* Not text: invalid UTF-8, a lone continuation byte, control bytes, DEL. */
static const char *const binaries[] = { "\xff\xfe", "ok\x80", "a\001b", "nul\x00z", "del\x7f" };
static const int32_t binary_lens[] = { 2, 3, 3, 5, 4 };
#define NBIN 5

/* A part: 0 text, 1 null, 2 binary, chosen by (i, salt). */
static int part_kind(int i, int salt)
{
	unsigned h = (unsigned)i * 2654435761u + (unsigned)salt * 40503u;
	h ^= h >> 13;
	return (int)(h % 5 == 0 ? 1 : h % 5 <= 2 ? 2 : 0);
}

static void append_range(struct partition *p, int from, int to)
{
	for (int i = from; i < to; i++) {
		char key[32], val[64], hname[MAXH][16], hval[MAXH][32];
		struct record_header_in h[MAXH];
		struct record_in r = { 0 };
		unsigned bin = 0;
		int k;

		snprintf(key, sizeof(key), "key%d", i);
		snprintf(val, sizeof(val), "value %d %s", i, i % 10 ? "plain" : "tenth");
		k = part_kind(i, 1);
		r.key = k == 2 ? binaries[i % NBIN] : key;
		r.key_len = k == 1 ? -1 : k == 2 ? binary_lens[i % NBIN] : (int32_t)strlen(key);
		bin += k == 2;
		k = part_kind(i, 2);
		r.value = k == 2 ? binaries[(i + 1) % NBIN] : val;
		r.value_len = k == 1 ? -1 :
			      k == 2 ? binary_lens[(i + 1) % NBIN] :
				       (int32_t)strlen(val);
		bin += k == 2;
		r.header_count = i % (MAXH + 1);
		for (int j = 0; j < r.header_count; j++) {
			snprintf(hname[j], sizeof(hname[j]), "h%d", j);
			snprintf(hval[j], sizeof(hval[j]), "hv%d", i);
			/* A name is never null: text or binary. */
			bool bname = part_kind(i, 10 + j) == 2;
			h[j].key = bname ? binaries[(i + j) % NBIN] : hname[j];
			h[j].key_len = bname ? binary_lens[(i + j) % NBIN] :
					       (int32_t)strlen(hname[j]);
			k = part_kind(i, 20 + j);
			h[j].value = k == 2 ? binaries[(i + j + 2) % NBIN] : hval[j];
			h[j].value_len = k == 1 ? -1 :
					 k == 2 ? binary_lens[(i + j + 2) % NBIN] :
						  (int32_t)strlen(hval[j]);
			bin += bname + (k == 2);
		}
		r.headers = h;
		model[i] = bin;
		int rc = engine_append_records(p, &r, 1, NULL);
		if (rc)
			bail("append %d: %s", i, chronik_strerror(rc));
	}
}

/* What the model says the indexed segments hold: the sum over every
 * registered segment's offsets, leaving out skip (a file name, or NULL). */
static uint64_t model_sum(struct partition *p, const char *skip, size_t *nsegs)
{
	struct engine_segment_info *segs;
	uint64_t sum = 0;
	size_t n;

	if (engine_partition_segments(p, &segs, &n))
		bail("segments");
	for (size_t i = 0; i < n; i++) {
		if (skip && strcmp(segs[i].file, skip) == 0)
			continue;
		for (int64_t o = segs[i].base_offset; o <= segs[i].last_offset && o < NREC; o++)
			sum += model[o];
	}
	*nsegs = n;
	free(segs);
	return sum;
}

static int64_t count(struct engine *e, const char *text)
{
	return search_count(e, "t", 0, text);
}

int main(void)
{
	char *dir = tmpdir_new("search-binary");
	struct search_partition_stats st;
	struct partition_info info;
	uint64_t want, total = 0;
	size_t nsegs;

	struct engine *e = search_test_open(dir, 32768);
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "topic t");
	struct partition *p = part_or_bail(e, "t", 0);

	append_range(p, 0, 2000);
	ok(engine_index_now(e) == 0, "indexed");
	append_range(p, 2000, NREC);
	for (int i = 0; i < NREC; i++)
		total += model[i];
	engine_partition_info(p, &info);
	want = model_sum(p, NULL, &nsegs);
	ok(nsegs >= 2 && info.wal_bytes > 0, "%zu segments and a tail", nsegs);
	ok(search_partition_stats(p, &st) == 0, "stats");
	ok(want > 0 && st.binary_values == want,
	   "binary_values %" PRIu64 " = the model's %" PRIu64 " over the segments",
	   st.binary_values, want);
	ok(want < total, "... the tail's (%" PRIu64 " in all) not counted yet", total);
	ok(st.unindexed_segments == 0 && st.index_bytes > 0, "every segment indexed");

	ok(engine_index_now(e) == 0, "tail indexed");
	want = model_sum(p, NULL, &nsegs);
	if (search_partition_stats(p, &st))
		bail("stats");
	ok(want == total && st.binary_values == total,
	   "binary_values %" PRIu64 " = the model's %" PRIu64 " over all records", st.binary_values,
	   total);

	/* Without one segment's index: that segment is left out. */
	{
		struct engine_segment_info *segs;
		char sdir[4200], path[4400];
		size_t n;
		if (engine_partition_segments(p, &segs, &n) || n < 2)
			bail("segments");
		engine_partition_segment_dir(p, sdir, sizeof(sdir));
		snprintf(path, sizeof(path), "%s/%s" SEARCH_INDEX_SUFFIX, sdir, segs[1].file);
		ok(unlink(path) == 0, "index of %s removed", segs[1].file);
		want = model_sum(p, segs[1].file, &nsegs);
		if (search_partition_stats(p, &st))
			bail("stats");
		ok(st.binary_values == want && st.unindexed_segments == 1,
		   "binary_values %" PRIu64 " = the model's %" PRIu64
		   " without that segment; 1 unindexed",
		   st.binary_values, want);
		free(segs);
	}

	/* The text around the binary parts is indexed and found. */
	{
		int64_t tenth = 0, plain = 0;
		for (int i = 0; i < NREC; i++)
			if (part_kind(i, 2) == 0) {
				if (i % 10)
					plain++;
				else
					tenth++;
			}
		ok(count(e, "value:tenth") == tenth,
		   "value:tenth finds the %" PRId64 " text values", tenth);
		ok(count(e, "plain") == plain, "plain finds the %" PRId64 " text values", plain);
	}

	engine_partition_unref(p);

	/* Coloured log lines: in a segment, then in the tail. */
	{
		static const char seg_lines[] = "\x1b[31mERROR\x1b[0m disk overheated segword\n"
						"\x1b[1;33mWARN\x1b[0m: fan overheated segword\n"
						"plain line overheated segword\n";
		static const char tail_lines[] = "\x1b[32mok\x1b[0m cooled overheated tailword\n"
						 "\x1b[2K\x1b[36m[progress]\x1b[0m tailword\n";
		struct record_in nul = { 0, NULL, -1, "nul\0 overheated", 15, NULL, 0 };
		ok(engine_topic_create(e, "c", 1, NULL) == 0, "topic c");
		struct partition *c = part_or_bail(e, "c", 0);
		ok(engine_append_lines(c, seg_lines, sizeof(seg_lines) - 1, NULL) == 0 &&
			   engine_append_records(c, &nul, 1, NULL) == 0,
		   "three lines (two coloured) and a value with NUL appended");
		ok(engine_index_now(e) == 0, "indexed");
		engine_partition_info(c, &info);
		ok(search_partition_stats(c, &st) == 0 && info.wal_bytes == 0 &&
			   info.segments >= 1 && st.unindexed_segments == 0,
		   "all in indexed segments");
		ok(st.binary_values == 1, "the NUL value is counted binary (%" PRIu64 ")",
		   st.binary_values);
		ok(search_count(e, "c", 0, "segword") == 3 &&
			   search_count(e, "c", 0, "disk") == 1 &&
			   search_count(e, "c", 0, "value:fan") == 1,
		   "segment: words of coloured lines found");
		ok(search_count(e, "c", 0, "overheated") == 3, "segment: not the NUL value's word");
		ok(engine_append_lines(c, tail_lines, sizeof(tail_lines) - 1, NULL) == 0,
		   "two coloured lines appended");
		engine_partition_info(c, &info);
		ok(info.wal_bytes > 0, "they are in the WAL tail");
		ok(search_count(e, "c", 0, "tailword") == 2 &&
			   search_count(e, "c", 0, "cooled") == 1 &&
			   search_count(e, "c", 0, "progress") == 1,
		   "tail: words of coloured lines found");
		ok(search_count(e, "c", 0, "overheated") == 4, "tail and segment together");
		engine_partition_unref(c);
	}

	ok(engine_close(e) == 0, "engine closed");
	tmpdir_free(dir);
	return tap_exit();
}
