/* fuzz_frame.c - the WAL frame decoder (wal/frame.h) over a buffer of
 * frames, and the file walker over the same bytes as a file.
 *
 * Input: one byte of flags, then a WAL file image (the corpus: WAL files
 * the engine wrote). Flag bit 0: make the CRCs right first (fuzz.h). The
 * decoder walks the frames from byte 32 as recovery does; checked:
 *   - a FRAME_VALID frame lies inside the buffer (frame_len <= avail), its
 *     header length is its version's, a V2 frame's batch is the frame's
 *     tail and parses, its offsets agree (last = base + lastOffsetDelta,
 *     record count), and its records decode; a V1 frame's key, value and
 *     headers lie inside the frame;
 *   - wal_file_walk over the same bytes written to a file stops where the
 *     buffer walk stopped, with the same status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "frame.h"
#include "fuzz.h"

static int within(const uint8_t *p, size_t n, const uint8_t *lo, size_t len)
{
	return n == 0 || (p >= lo && n <= len && (size_t)(p - lo) <= len - n);
}

struct walk_seen {
	uint64_t last_pos;
	enum frame_status last_st;
	int calls;
};

static int walk_cb(void *arg, uint64_t pos, enum frame_status st, const struct frame_info *fi)
{
	struct walk_seen *w = arg;
	(void)fi;
	w->last_pos = pos;
	w->last_st = st;
	w->calls++;
	return 0;
}

static void check_v2(const uint8_t *f, const struct frame_info *fi)
{
	struct batch_header h;
	FUZZ_CHECK(fi->batch == f + FRAME_V2_HEADER_SIZE);
	FUZZ_CHECK(fi->batch_len == fi->frame_len - FRAME_V2_HEADER_SIZE);
	FUZZ_CHECK(batch_header_parse(fi->batch, fi->batch_len, &h) == 0);
	FUZZ_CHECK(batch_crc_check(fi->batch, fi->batch_len) == 0);
	FUZZ_CHECK(h.base_offset == fi->base_offset);
	FUZZ_CHECK(fi->last_offset == fi->base_offset + h.last_offset_delta);
	FUZZ_CHECK((int64_t)fi->record_count == h.record_count);
	struct batch_iter it;
	struct batch_record r;
	if (batch_iter_init(&it, fi->batch, fi->batch_len) == 0)
		while (batch_iter_next(&it, &r) == 1)
			;
	batch_iter_fini(&it);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, len);
	if (data[0] & 1)
		fuzz_fix_wal_crcs(buf, len, WAL_FILE_HEADER_SIZE);

	uint64_t seq;
	if (wal_file_header_decode(buf, len, &seq) != 0) {
		free(buf);
		return 0;
	}
	size_t p = WAL_FILE_HEADER_SIZE;
	enum frame_status st = FRAME_VALID;
	while (p < len) {
		struct frame_info fi;
		memset(&fi, 0, sizeof(fi));
		st = frame_decode(buf + p, len - p, &fi);
		if (st != FRAME_VALID)
			break;
		FUZZ_CHECK(fi.frame_len <= len - p);
		FUZZ_CHECK(fi.version == 1 || fi.version == 2);
		if (fi.version == 2) {
			check_v2(buf + p, &fi);
		} else {
			FUZZ_CHECK(fi.frame_len >= FRAME_V1_HEADER_SIZE);
			FUZZ_CHECK(within(fi.key, fi.key_len > 0 ? (size_t)fi.key_len : 0, buf + p,
					  fi.frame_len));
			FUZZ_CHECK(within(fi.value, fi.value_len > 0 ? (size_t)fi.value_len : 0,
					  buf + p, fi.frame_len));
			FUZZ_CHECK(within(fi.headers, fi.headers_len, buf + p, fi.frame_len));
		}
		p += fi.frame_len;
	}

	char path[4096];
	snprintf(path, sizeof(path), "%s/frames.wal", fuzz_workdir());
	if (fuzz_write_file(path, buf, len) == 0) {
		struct walk_seen w = { 0, FRAME_VALID, 0 };
		int rc = wal_file_walk(path, walk_cb, &w);
		if (p >= len) {
			FUZZ_CHECK(rc == 0);
		} else {
			FUZZ_CHECK(rc != 0);
			FUZZ_CHECK(w.calls > 0 && w.last_pos == p && w.last_st == st);
		}
	}
	free(buf);
	return 0;
}
