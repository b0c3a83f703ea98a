/* batch.h - Kafka RecordBatch v2 (magic 2): chronik's canonical batch.
 *
 * Layout (big-endian, as Kafka's DefaultRecordBatch.java):
 *
 *   off  size  field
 *     0     8  baseOffset            patched by the engine on append
 *     8     4  batchLength           bytes after this field (= total - 12)
 *    12     4  partitionLeaderEpoch
 *    16     1  magic                 must be 2
 *    17     4  crc                   CRC-32C of bytes [21, end)
 *    21     2  attributes            bits 0-2 compression (0 none, 1 gzip,
 *                                    2 snappy, 3 lz4, 4 zstd), bit 3
 *                                    timestampType, bit 4 transactional,
 *                                    bit 5 control, bit 6 delete horizon
 *    23     4  lastOffsetDelta
 *    27     8  baseTimestamp
 *    35     8  maxTimestamp
 *    43     8  producerId
 *    51     2  producerEpoch
 *    53     4  baseSequence
 *    57     4  recordCount
 *    61     .  records (compressed as a whole when attributes say so)
 *
 * Each record (zig-zag varints as in protobuf):
 *   length varint (bytes after it), attributes int8, timestampDelta varlong,
 *   offsetDelta varint, keyLength varint (-1 = null), key,
 *   valueLength varint (-1 = null), value, headerCount varint,
 *   then per header: keyLength varint, key, valueLength varint (-1 = null), value.
 *
 * Bytes 0-7 sit outside the CRC, so the engine patches the base offset in
 * place and the batch stays byte-for-byte what its producer sent.
 */
#ifndef CHRONIK_BATCH_H
#define CHRONIK_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BATCH_HEADER_SIZE 61
#define BATCH_MAGIC 2
#define BATCH_CRC_START 21

enum batch_codec {
	BATCH_CODEC_NONE = 0,
	BATCH_CODEC_GZIP = 1,
	BATCH_CODEC_SNAPPY = 2,
	BATCH_CODEC_LZ4 = 3,
	BATCH_CODEC_ZSTD = 4,
};
#define BATCH_ATTR_CODEC_MASK 0x07
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

struct batch_header {
	int64_t base_offset;
	int32_t batch_length;
	int32_t partition_leader_epoch;
	int8_t magic;
	uint32_t crc;
	int16_t attributes;
	int32_t last_offset_delta;
	int64_t base_timestamp;
	int64_t max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int32_t record_count;
};

/* One header of a record, input side. value_len -1 = null value. */
struct record_header_in {
	const void *key;
	int32_t key_len;
	const void *value;
	int32_t value_len;
};

/* One record to encode. key_len / value_len -1 = null. */
struct record_in {
	int64_t timestamp;
	const void *key;
	int32_t key_len;
	const void *value;
	int32_t value_len;
	const struct record_header_in *headers;
	int32_t header_count;
};

/* Parse and sanity-check the 61-byte header of the batch at buf[0, len).
 * Checks: len >= 61, magic == 2 (else CHRONIK_EVERSION), batchLength + 12 ==
 * len, recordCount >= 0. Returns 0 or CHRONIK_ECORRUPT / CHRONIK_EVERSION. */
int batch_header_parse(const uint8_t *buf, size_t len, struct batch_header *h);

/* 0 if the stored crc equals CRC-32C of [21, len), else CHRONIK_EBADCRC.
 * The caller has checked len >= BATCH_HEADER_SIZE. */
int batch_crc_check(const uint8_t *buf, size_t len);

/* Patch baseOffset (bytes 0-7) in place. */
void batch_set_base_offset(uint8_t *buf, int64_t base_offset);

/* ---- decoding ---------------------------------------------------------- */

/* One decoded record; pointers borrow from the batch (or from the iterator's
 * decompressed copy) and live until the next batch_iter_next / _fini. */
struct batch_record {
	int8_t attributes;
	int64_t timestamp_delta;
	int32_t offset_delta;
	const uint8_t *key;
	int32_t key_len; /* -1 = null */
	const uint8_t *value;
	int32_t value_len; /* -1 = null */
	int32_t header_count;
	const uint8_t *headers; /* header_count encoded headers, headers_len bytes */
	size_t headers_len;
};

/* One decoded record header; borrows like batch_record. */
struct batch_record_header {
	const uint8_t *key;
	int32_t key_len;
	const uint8_t *value;
	int32_t value_len; /* -1 = null */
};

struct batch_iter {
	struct batch_header hdr;
	const uint8_t *p, *end;
	int32_t remaining;
	uint8_t *owned; /* decompressed records, freed by _fini */
	size_t owned_charge; /* budget bytes charged for owned, given back by _fini */
};

/* Start walking the records of a batch (header parsed, not CRC-checked).
 * A compressed batch is decompressed through the engine's codec table
 * (gzip, snappy, lz4 and zstd are in it from the start, codecs.h;
 * CHRONIK_ECODEC for codecs 5-7, which Kafka does not define). batch_iter_fini
 * is safe after a failed init. */
int batch_iter_init(struct batch_iter *it, const uint8_t *batch, size_t len);
/* A decode buffer (and lz4 context) a reader keeps from batch to batch,
 * so that walking many lz4 batches allocates once, not once a batch. Its
 * bytes are charged to the budget (rule 2 below) while it holds them.
 * Zero-initialise; batch_scratch_fini frees it. */
struct batch_scratch {
	uint8_t *buf;
	size_t cap;
	void *lz4;
};
void batch_scratch_fini(struct batch_scratch *s);
/* batch_iter_init that decodes an lz4 batch of one frame with its content
 * size declared (as the indexer writes them) into s, which then backs the
 * records until the next use of s; anything else as batch_iter_init. s
 * may be NULL. */
int batch_iter_init_with(struct batch_iter *it, const uint8_t *batch, size_t len,
			 struct batch_scratch *s);
/* 1 = *r filled, 0 = no more records, <0 = CHRONIK_ECORRUPT. */
int batch_iter_next(struct batch_iter *it, struct batch_record *r);
void batch_iter_fini(struct batch_iter *it);

/* Walk a record's headers: *pos starts at r->headers; returns 1 with *h
 * filled, 0 at the end, CHRONIK_ECORRUPT on a malformed header. */
int batch_record_header_next(const uint8_t **pos, const uint8_t *end,
			     struct batch_record_header *h);

/* Raw-view size of a batch: sum of value lengths (null = 0) plus one newline
 * per record. Decompresses when needed. */
int batch_raw_size(const uint8_t *batch, size_t len, uint64_t *raw_size);
/* (It walks every record, so it also checks what the engine relies on: the
 * batch holds recordCount records whose offset deltas run 0, 1, 2, ...;
 * CHRONIK_ECORRUPT otherwise.) */

/* ---- decompression bounds --------------------------------------------- */

/* A compressed batch is decompressed whole in memory (the engine walks its
 * records on append; the filesystem views read them). Two bounds keep a
 * small hostile batch (a "compression bomb") from exhausting memory:
 *
 *   1. per batch: the decompressed records may be no larger than
 *      batch_decompressed_limit(in_len) = min(BATCH_DECOMPRESSED_MAX,
 *      max(BATCH_DECOMPRESSED_FLOOR, in_len * BATCH_DECOMPRESSED_RATIO)).
 *      Past it the codec fails with CHRONIK_ECORRUPT. The ratio is above
 *      what gzip (about 1032:1), lz4 (about 255:1) and snappy (about 21:1)
 *      can reach at all, so it only bites the codecs without a ceiling
 *      (zstd) and hand-made frames.
 *   2. process-wide: every codec output buffer takes its bytes from one
 *      budget of BATCH_DECOMPRESS_BUDGET while it is allocated (growth
 *      included). A codec that would pass it fails with -ENOMEM; the bytes
 *      go back when the buffer is freed (batch_iter_fini, or the codec's own
 *      failure path). So all the decompressions under way at once, whatever
 *      the number of connections or readers, hold at most that much.
 *
 * Codecs grow their output through batch_outbuf (below), which does both. */
#define BATCH_DECOMPRESSED_MAX ((size_t)64 << 20)
#define BATCH_DECOMPRESSED_FLOOR ((size_t)1 << 20)
#define BATCH_DECOMPRESSED_RATIO 2048
#define BATCH_DECOMPRESS_BUDGET ((size_t)256 << 20)
_Static_assert(BATCH_DECOMPRESSED_FLOOR <= BATCH_DECOMPRESSED_MAX, "floor under the cap");
_Static_assert(BATCH_DECOMPRESSED_MAX <= BATCH_DECOMPRESS_BUDGET, "one batch fits the budget");

/* The per-batch bound for in_len compressed bytes (rule 1). */
size_t batch_decompressed_limit(size_t in_len);
/* Bytes of the process-wide budget taken now (for tests and stats). */
size_t batch_decompress_budget_used(void);

/* A growing output buffer bounded by rule 1 and charged to rule 2. The
 * bytes charged are always exactly cap. */
struct batch_outbuf {
	uint8_t *buf;
	size_t len, cap, limit;
};
/* limit = batch_decompressed_limit(in_len); nothing allocated yet. */
void batch_outbuf_init(struct batch_outbuf *o, size_t in_len);
/* Make cap >= len + more (more >= 1), growing by doubling from at least
 * hint bytes: 0, CHRONIK_ECORRUPT past the limit, -ENOMEM past the budget
 * or when malloc fails. On failure the buffer is unchanged. */
int batch_outbuf_reserve(struct batch_outbuf *o, size_t more, size_t hint);
/* Success: shrink to len (at least 1 byte), hand buf to *out and len to
 * *out_len; len bytes stay charged until the caller's owner frees it (a
 * codec called by batch_iter_init: batch_iter_fini does). Failure (err !=
 * 0): free the buffer and give its bytes back. Returns err (or -ENOMEM). */
int batch_outbuf_finish(struct batch_outbuf *o, int err, uint8_t **out, size_t *out_len);
/* Give back bytes charged for a buffer handed out by batch_outbuf_finish,
 * for a caller that called a codec directly and frees *out itself. */
void batch_outbuf_release(size_t len);

/* Decompressor for one codec: *out is malloc'd, owned by the caller. It
 * should grow its output with batch_outbuf so that both bounds hold. */
typedef int (*batch_codec_fn)(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
/* Put a decompressor in the table, replacing the one there. No program
 * needs to: every Kafka codec is in the table from the start (codecs.h).
 * It is for a codec number Kafka does not define (tests). Not thread-safe:
 * call before any batch is decoded. */
void batch_codec_register(enum batch_codec codec, batch_codec_fn fn);

/* ---- encoding ---------------------------------------------------------- */

/* Builds one uncompressed batch: producerId -1, epoch -1, sequence -1,
 * leader epoch -1, timestampType CreateTime, baseOffset 0. */
struct batch_builder {
	uint8_t *buf;
	size_t len, cap;
	int32_t count;
	int64_t base_timestamp, max_timestamp;
};

void batch_builder_init(struct batch_builder *b);
/* Append one record. 0 or -ENOMEM / -EINVAL (negative length other than -1). */
int batch_builder_add(struct batch_builder *b, const struct record_in *r);
/* Fill in the header and CRC. On success *out (malloc'd, caller frees) holds
 * the batch and the builder is reset and empty. -EINVAL when no record. */
int batch_builder_finish(struct batch_builder *b, uint8_t **out, size_t *out_len);
void batch_builder_fini(struct batch_builder *b);

/* Fast path for the raw view: encode buf[0, len), a run of '\n'-terminated
 * lines (the last byte must be '\n'), as one batch of one record per line
 * (value = line without its newline, null key, no headers, timestamp ts).
 * *out is malloc'd; *count = number of records. The raw view grows by len.
 * -EINVAL when len is 0, the last byte is not '\n', or the batch would not fit
 * an int32 batchLength. */
int batch_encode_lines(const char *buf, size_t len, int64_t ts, uint8_t **out, size_t *out_len,
		       int32_t *count);

/* ---- varints (exposed for the Kafka codec and tests) ------------------- */

/* Zig-zag varint encode into buf (at least 10 bytes); returns bytes written. */
size_t varint_put(uint8_t *buf, int64_t v);
/* Decode a zig-zag varint from [p, end); returns bytes used or 0 if malformed. */
size_t varint_get(const uint8_t *p, const uint8_t *end, int64_t *v);
/* Unsigned varint (Kafka's compact lengths). */
size_t uvarint_put(uint8_t *buf, uint64_t v);
size_t uvarint_get(const uint8_t *p, const uint8_t *end, uint64_t *v);

#endif
