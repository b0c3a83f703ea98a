/* test_batch_librdkafka.c - decode RecordBatches captured from librdkafka
 * (kcat against librdkafka's mock broker; see tests/data/README.md).
 *
 * Every file holds one batch of 100 records: value "msg-<i>", key "key-<i>"
 * when i % 3 == 0 (else null), one header "src" = "kcat". Headers and CRCs
 * and records are checked for every codec: the engine decodes them all by
 * itself, with no decompressor registered by the program (this test links
 * the engine alone). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "tap.h"

#define COUNT 100

static const char *data_dir;

static uint8_t *load(const char *codec, size_t *len)
{
	char path[4096];
	FILE *f;
	uint8_t *buf = NULL;
	long size;

	snprintf(path, sizeof(path), "%s/rdkafka-%s.batch", data_dir, codec);
	f = fopen(path, "rb");
	if (!f)
		bail("cannot open %s", path);
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET))
		bail("cannot size %s", path);
	buf = malloc((size_t)size);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
		bail("cannot read %s", path);
	fclose(f);
	*len = (size_t)size;
	return buf;
}

static int eq(const uint8_t *p, int32_t len, const char *s)
{
	return len == (int32_t)strlen(s) && memcmp(p, s, (size_t)len) == 0;
}

/* Decode all records and compare with what was produced. */
static void check_records(const char *codec, const uint8_t *b, size_t len)
{
	struct batch_iter it;
	struct batch_record r;
	int i = 0, ret, bad = 0;
	int64_t max_ts = INT64_MIN;
	uint64_t raw_want = 0, raw = 0;

	ret = batch_iter_init(&it, b, len);
	ok(ret == 0, "%s: iterator starts (%d)", codec, ret);
	if (ret)
		return;
	while ((ret = batch_iter_next(&it, &r)) == 1) {
		char key[32], val[32];
		const uint8_t *hp = r.headers;
		struct batch_record_header h;
		int64_t ts = it.hdr.base_timestamp + r.timestamp_delta;

		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(val, sizeof(val), "msg-%d", i);
		raw_want += strlen(val) + 1;
		if (ts > max_ts)
			max_ts = ts;
		if (r.offset_delta != i || !eq(r.value, r.value_len, val) ||
		    (i % 3 == 0 ? !eq(r.key, r.key_len, key) : r.key_len != -1) ||
		    r.header_count != 1 ||
		    batch_record_header_next(&hp, r.headers + r.headers_len, &h) != 1 ||
		    !eq(h.key, h.key_len, "src") || !eq(h.value, h.value_len, "kcat") ||
		    batch_record_header_next(&hp, r.headers + r.headers_len, &h) != 0 ||
		    ts < it.hdr.base_timestamp) {
			if (bad++ < 3)
				diag("%s: record %d differs", codec, i);
		}
		i++;
	}
	ok(ret == 0 && i == COUNT && bad == 0,
	   "%s: %d records: offsets, values msg-N, keys, header src=kcat", codec, i);
	ok(max_ts == it.hdr.max_timestamp, "%s: maxTimestamp is the largest record timestamp",
	   codec);
	batch_iter_fini(&it);
	ret = batch_raw_size(b, len, &raw);
	ok(ret == 0 && raw == raw_want, "%s: raw size %llu (want %llu)", codec,
	   (unsigned long long)raw, (unsigned long long)raw_want);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int codec;
	} files[] = {
		{ "none", BATCH_CODEC_NONE },	  { "gzip", BATCH_CODEC_GZIP },
		{ "snappy", BATCH_CODEC_SNAPPY }, { "lz4", BATCH_CODEC_LZ4 },
		{ "zstd", BATCH_CODEC_ZSTD },
	};

	if (argc < 2)
		bail("usage: %s DATA_DIR", argv[0]);
	data_dir = argv[1];

	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		const char *codec = files[f].name;
		size_t len;
		uint8_t *b = load(codec, &len);
		struct batch_header h;
		int ret = batch_header_parse(b, len, &h);

		ok(ret == 0 && h.magic == 2 && h.record_count == COUNT &&
			   h.last_offset_delta == COUNT - 1 &&
			   (h.attributes & BATCH_ATTR_CODEC_MASK) == files[f].codec &&
			   !(h.attributes & (BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL)) &&
			   h.base_timestamp <= h.max_timestamp && h.base_timestamp > 1500000000000,
		   "%s: header: magic 2, %d records, codec %d, timestamps", codec, h.record_count,
		   h.attributes & BATCH_ATTR_CODEC_MASK);
		diag("%s: %zu bytes, producerId %lld, epoch %d, baseSequence %d, leaderEpoch %d",
		     codec, len, (long long)h.producer_id, h.producer_epoch, h.base_sequence,
		     h.partition_leader_epoch);
		ok(batch_crc_check(b, len) == 0, "%s: CRC-32C matches librdkafka's", codec);
		b[len / 2] ^= 0x01;
		ok(batch_crc_check(b, len) == CHRONIK_EBADCRC, "%s: one flipped bit fails the CRC",
		   codec);
		b[len / 2] ^= 0x01;

		check_records(codec, b, len);
		free(b);
	}
	return tap_exit();
}
