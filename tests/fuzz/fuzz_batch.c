/* fuzz_batch.c - the RecordBatch v2 decoder (wal/batch.h) and the four
 * decompressors (wal/codecs.h), bombs included.
 *
 * Input: one RecordBatch (the corpus: tests/data/rdkafka-*.batch, one per
 * codec, and small hand-made bombs: gzip, lz4 and snappy of 2-20 MB of
 * zeros, zstd of 100 MB). The batch CRC is made right first, so mutations
 * of the records are not all stopped by it (the decoder does not check
 * it; batch_crc_check must then pass). The codec is the one the
 * attributes name, so mutating them runs every codec over every input.
 * Checked:
 *   - batch_header_parse, batch_crc_check, batch_iter_* and
 *     batch_record_header_next never read outside the batch or the
 *     iterator's decompressed copy; every record's key, value and headers
 *     lie inside one of the two;
 *   - when the iterator walks the whole batch and finds recordCount
 *     records with offset deltas 0, 1, 2, ..., batch_raw_size succeeds
 *     and agrees with the sum the iterator gives; when the deltas or the
 *     count are off, batch_raw_size says CHRONIK_ECORRUPT (batch.h);
 *   - a codec's output is no larger than batch_decompressed_limit(in_len);
 *   - every byte of the decompression budget is given back afterwards.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "fuzz.h"

static int inside(const uint8_t *p, size_t n, const uint8_t *lo, size_t lo_len)
{
	return p >= lo && n <= lo_len && (size_t)(p - lo) <= lo_len - n;
}

static void check_range(const struct batch_iter *it, const uint8_t *batch, size_t len,
			const uint8_t *p, int32_t n)
{
	if (n <= 0)
		return;
	size_t owned_len = it->owned ? (size_t)(it->end - it->owned) : 0;
	FUZZ_CHECK(inside(p, (size_t)n, batch, len) ||
		   (it->owned && inside(p, (size_t)n, it->owned, owned_len)));
}

static void walk(const uint8_t *batch, size_t len)
{
	struct batch_header h;
	struct batch_iter it;
	struct batch_record r;
	uint64_t raw = 0, raw2;
	int rc, records = 0;
	bool dense = true;

	if (batch_header_parse(batch, len, &h) != 0)
		return;
	FUZZ_CHECK(batch_crc_check(batch, len) == 0);
	rc = batch_iter_init(&it, batch, len);
	if (rc == 0 && it.owned)
		FUZZ_CHECK((size_t)(it.end - it.owned) <=
			   batch_decompressed_limit(len - BATCH_HEADER_SIZE));
	if (rc == 0) {
		while ((rc = batch_iter_next(&it, &r)) == 1) {
			if (r.offset_delta != records)
				dense = false;
			records++;
			check_range(&it, batch, len, r.key, r.key_len);
			check_range(&it, batch, len, r.value, r.value_len);
			FUZZ_CHECK(r.key_len >= -1 && r.value_len >= -1);
			raw += (uint64_t)(r.value_len > 0 ? r.value_len : 0) + 1;
			const uint8_t *pos = r.headers;
			const uint8_t *end = r.headers + r.headers_len;
			struct batch_record_header rh;
			if (r.headers_len)
				check_range(&it, batch, len, r.headers, (int32_t)r.headers_len);
			int hn = 0, hr;
			while ((hr = batch_record_header_next(&pos, end, &rh)) == 1) {
				hn++;
				FUZZ_CHECK(pos <= end);
				check_range(&it, batch, len, rh.key, rh.key_len);
				check_range(&it, batch, len, rh.value, rh.value_len);
			}
			(void)hn;
		}
		FUZZ_CHECK(records <= h.record_count || h.record_count < 0);
	}
	batch_iter_fini(&it);
	if (rc == 0 && dense && records == h.record_count) {
		FUZZ_CHECK(batch_raw_size(batch, len, &raw2) == 0);
		FUZZ_CHECK(raw2 == raw);
	} else if (rc == 0) {
		FUZZ_CHECK(batch_raw_size(batch, len, &raw2) == CHRONIK_ECORRUPT);
	}
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
	uint8_t *b = malloc(size ? size : 1);
	if (!b)
		return 0;
	memcpy(b, data, size);
	fuzz_fix_batch_crc(b, size);
	walk(b, size);
	free(b);
	FUZZ_CHECK(batch_decompress_budget_used() == 0);
	return 0;
}
