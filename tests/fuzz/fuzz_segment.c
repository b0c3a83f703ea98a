/* fuzz_segment.c - the segment reader (wal/segment.c): a segment file and
 * its index, as segment_read_begin, the index lookups, segment_pread,
 * segment_verify and segment_file_walk read it.
 *
 * Input: one byte of flags, then the bytes of one segment file (the
 * corpus: segments the indexer and compaction wrote, make_corpus.sh).
 * Flags: bit 0 make the CRCs right first (fuzz_fix_segment_crcs), so that
 * the mutations reach the index rules and the batches behind the checks;
 * bit 1 describe the segment to segment_new by a metadata record that
 * disagrees with the file by one (the registry's and the file's last
 * offset differ), which the reader must refuse.
 *
 * The harness decodes the trailer and the index itself, straight from the
 * layout of segment.h, and checks, when segment_read_begin accepts the
 * file (rules 1-3):
 *   - the metadata disagreement of bit 1 was refused (it never opens);
 *   - every index entry's offset, raw position and max timestamp, looked
 *     up, finds that entry (offset: exactly it, offsets being strictly
 *     increasing; raw position: an entry with that raw position; time: the
 *     first entry whose max timestamp is >= it), a key before the first
 *     entry finds the first, and a time past the last finds none;
 *   - segment_pread never returns bytes at or past data_end, and returns
 *     the file's bytes;
 *   - segment_file_walk and segment_verify answer without crashing, and
 *     when segment_verify finds no problem (rule 4) the walk visits exactly
 *     the trailer's batch count, back to back from 64 to data_end.
 * When segment_read_begin refuses, segment_verify must report a problem.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "byteorder.h"
#include "errors.h"
#include "fuzz.h"
#include "segment.h"

static char path[4200];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	snprintf(path, sizeof(path), "%s/00000000000000000000.seg", fuzz_workdir());
	return 0;
}

static void count_problem(void *arg, const char *what)
{
	(void)what;
	(*(int *)arg)++;
}

struct walk {
	uint64_t next_pos;
	uint32_t batches;
	bool back_to_back;
};

static int walk_batch(void *arg, uint64_t pos, const uint8_t *batch, size_t len)
{
	struct walk *w = arg;
	(void)batch;
	w->back_to_back &= pos == w->next_pos;
	w->next_pos = pos + len;
	w->batches++;
	return 0;
}

static void entry_at(const uint8_t *p, struct segment_index_entry *e)
{
	e->offset = (int64_t)get_le64(p);
	e->raw_pos = get_le64(p + 8);
	e->max_timestamp = (int64_t)get_le64(p + 16);
	e->file_pos = get_le32(p + 24);
	e->span_crc = get_le32(p + 28);
}

static bool entry_eq(const struct segment_index_entry *a, const struct segment_index_entry *b)
{
	return a->offset == b->offset && a->raw_pos == b->raw_pos &&
	       a->max_timestamp == b->max_timestamp && a->file_pos == b->file_pos &&
	       a->span_crc == b->span_crc;
}

/* The lookups, once the reader accepted file[0, len) whose index of n
 * entries sits at data_end. */
static void check_index(struct segment *s, const uint8_t *file, size_t len, uint64_t data_end,
			uint32_t n)
{
	const uint8_t *idx = file + data_end;
	struct segment_index_entry e, got, first;

	entry_at(idx, &first);
	for (uint32_t i = 0; i < n; i++) {
		entry_at(idx + (size_t)i * SEGMENT_INDEX_ENTRY_SIZE, &e);
		segment_find_offset(s, e.offset, &got);
		FUZZ_CHECK(entry_eq(&got, &e));
		segment_find_raw(s, e.raw_pos, &got);
		FUZZ_CHECK(got.raw_pos == e.raw_pos);
		FUZZ_CHECK(segment_find_time(s, e.max_timestamp, &got) == 0);
		FUZZ_CHECK(got.max_timestamp >= e.max_timestamp && got.file_pos <= e.file_pos);
		if (i + 1 == n)
			FUZZ_CHECK(e.max_timestamp == INT64_MAX ||
				   segment_find_time(s, e.max_timestamp + 1, &got) == 1);
	}
	if (first.offset > 0) {
		segment_find_offset(s, first.offset - 1, &got);
		FUZZ_CHECK(entry_eq(&got, &first));
	}
	if (first.raw_pos > 0) {
		segment_find_raw(s, first.raw_pos - 1, &got);
		FUZZ_CHECK(entry_eq(&got, &first));
	}

	uint8_t buf[512];
	uint64_t positions[] = { 0, SEGMENT_HEADER_SIZE, data_end > 100 ? data_end - 100 : 0,
				 data_end, len };
	for (size_t i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
		ssize_t r = segment_pread(s, buf, sizeof(buf), positions[i]);
		FUZZ_CHECK(r >= 0 && (uint64_t)r <= sizeof(buf));
		FUZZ_CHECK(positions[i] >= data_end ? r == 0 : positions[i] + (uint64_t)r <= data_end);
		FUZZ_CHECK(memcmp(buf, file + positions[i], (size_t)r) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	size_t len = size - 1;
	uint8_t *file = malloc(len ? len : 1);
	FUZZ_CHECK(file != NULL);
	memcpy(file, data + 1, len);
	if (flags & 1)
		fuzz_fix_segment_crcs(file, len);
	FUZZ_CHECK(fuzz_write_file(path, file, len) == 0);

	/* The metadata a registry would hold, taken from the file's trailer
	 * and first index entry (zeros where the file is too short). */
	struct segment_meta m;
	uint64_t data_end = 0;
	uint32_t n = 0;
	memset(&m, 0, sizeof(m));
	/* Version 1's trailer is 64 bytes, version 2's 80 with the key
	 * table before it (segment.h). */
	bool v1 = len >= 12 && get_le32(file + 8) == 1;
	uint64_t tsize = v1 ? SEGMENT_TRAILER_SIZE : SEGMENT_TRAILER_V2_SIZE, tail = tsize;
	if (len >= SEGMENT_HEADER_SIZE + SEGMENT_INDEX_ENTRY_SIZE + tsize) {
		const uint8_t *t = file + len - tsize;
		if (!v1)
			tail += (uint64_t)get_le32(t + 60) * SEGMENT_KEY_ENTRY_SIZE;
		data_end = get_le64(t + 8);
		n = get_le32(t + 16);
		m.batches = get_le32(t + 20);
		m.last_offset = (int64_t)get_le64(t + 24);
		m.raw_end = get_le64(t + 32);
		m.min_timestamp = (int64_t)get_le64(t + 40);
		m.max_timestamp = (int64_t)get_le64(t + 48);
		m.data_end = data_end;
		m.bytes = len;
		if (tail + SEGMENT_INDEX_ENTRY_SIZE <= len &&
		    data_end <= len - tail - SEGMENT_INDEX_ENTRY_SIZE) {
			m.base_offset = (int64_t)get_le64(file + data_end);
			m.raw_start = get_le64(file + data_end + 8);
		}
	}
	bool disagree = (flags & 2) != 0;
	if (disagree)
		m.last_offset++;

	struct segment *s;
	FUZZ_CHECK(segment_new(path, &m, &s) == 0);
	int rc = segment_read_begin(s);
	if (rc == 0) {
		FUZZ_CHECK(!disagree);
		/* Rules 1-3 held: the trailer's sizes are the file's. */
		FUZZ_CHECK(n >= 1 && data_end >= SEGMENT_HEADER_SIZE &&
			   data_end + (uint64_t)n * SEGMENT_INDEX_ENTRY_SIZE + tail == len);
		check_index(s, file, len, data_end, n);
		segment_read_end(s);
	}
	segment_unref(s);

	int problems = 0;
	int vr = segment_verify(path, NULL, count_problem, &problems);
	FUZZ_CHECK(vr >= 0 ? vr == problems : problems == 0);
	struct walk w = { .next_pos = SEGMENT_HEADER_SIZE, .back_to_back = true };
	int wr = segment_file_walk(path, walk_batch, &w);
	if (rc != 0 && !disagree)
		FUZZ_CHECK(vr != 0);
	if (vr == 0) {
		FUZZ_CHECK(rc == 0 || disagree);
		FUZZ_CHECK(wr == 0 && w.back_to_back && w.next_pos == data_end &&
			   w.batches == m.batches);
	}
	free(file);
	return 0;
}
