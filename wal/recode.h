/* recode.h - re-encode uncompressed batches as one compressed Kafka batch,
 * for the segments (segment.h).
 *
 * The input: n >= 1 RecordBatch v2 (batch.h) of one partition, each
 * mergeable (recode_mergeable), back to back in offsets (each one's
 * baseOffset is the previous one's last offset + 1). The output: one
 * RecordBatch v2 whose records are the inputs' records in order, with the
 * same offsets, timestamps, keys, values and headers:
 *   baseOffset = the first input's; offset deltas 0 .. count - 1;
 *   baseTimestamp = the first record's timestamp (Kafka's RecordBatch:
 *   "the timestamp of the first Record"; bit 6 of the attributes, the
 *   cleaner's delete horizon in baseTimestamp, is never set here), and
 *   every record's timestampDelta = its timestamp - baseTimestamp (a
 *   varlong, negative for a record older than the first). An input's own
 *   baseTimestamp is not copied: a record's timestamp is its batch's
 *   baseTimestamp + its delta, whatever the batch chose as the base;
 *   maxTimestamp = the largest input maxTimestamp;
 *   attributes = the codec (CreateTime, not transactional, not control);
 *   producerId -1, producerEpoch -1, baseSequence -1, partitionLeaderEpoch -1;
 *   records compressed as a whole, as Kafka's codecs: lz4 = one LZ4 frame
 *   (64 KiB independent blocks), zstd = one zstd frame (level 3), gzip =
 *   one gzip member (zlib, default level), snappy = one raw snappy block
 *   (the framing librdkafka writes; Kafka's Java client reads it too).
 * Its CRC-32C is computed over [21, end) as Kafka's.
 */
#ifndef CHRONIK_RECODE_H
#define CHRONIK_RECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"

/* An input a merge may take: uncompressed, CreateTime, not transactional,
 * not control, no producer id (an idempotent producer's batch keeps its
 * sequence, so it is kept as it is). */
bool recode_mergeable(const struct batch_header *h);

/* Merge batches[0, n) (lens[i] bytes each) into one batch compressed with
 * codec (-ENOTSUP for BATCH_CODEC_NONE or an unknown one). *out malloc'd,
 * caller frees. CHRONIK_ECORRUPT when an input does not decode or does not
 * continue the one before it. */
int recode_merge(const uint8_t *const *batches, const size_t *lens, size_t n,
		 enum batch_codec codec, uint8_t **out, size_t *out_len);

/* recode_merge of the one batch batch[0, len), without re-encoding its
 * records when that would not change them: when its first record has
 * offsetDelta 0 and timestampDelta 0 (baseTimestamp is the first record's
 * timestamp, as Kafka's producers and this engine's encoder write it), its
 * records section [61, len) is compressed as it is, so the output's
 * records are the input's byte for byte (baseTimestamp kept; the other
 * header fields as recode_merge sets them). Otherwise it is recode_merge.
 * Only the first record is read: the caller vouches that the records
 * decode and that their offset deltas run 0 .. count - 1, as every batch
 * in the WAL does (commit_submit checks a batch from outside; the engine's
 * own encoder writes them so) - the indexer's case. *out malloc'd. */
int recode_one(const uint8_t *batch, size_t len, enum batch_codec codec, uint8_t **out,
	       size_t *out_len);

/* One batch recode_split wrote: b[0, len) malloc'd, holding records
 * records whose raw view is raw_len bytes (value bytes + 1 each). */
struct recode_piece {
	uint8_t *b;
	size_t len;
	uint64_t raw_len;
	uint32_t records;
};

/* The one mergeable batch batch[0, len) re-encoded as several batches
 * compressed with codec, each as recode_merge writes one (header fields,
 * timestamps, compression as above), in offset order, together holding
 * the input's records in order: a piece ends after the record that makes
 * its records section reach piece_bytes, so each but the last holds at
 * least piece_bytes of records (one record larger than that is a piece
 * of its own). A piece's maxTimestamp is the largest timestamp of its
 * records; the last piece's is at least the input's maxTimestamp, so the
 * pieces' largest equals the input's. Why: a point read (a search hit, a
 * read by offset) decodes the whole batch that holds its record, and a
 * filesystem write of 1 MiB of lines arrives as one batch. *pieces (n
 * of them) malloc'd; free with recode_pieces_free. -ENOTSUP and -EINVAL
 * as recode_merge; CHRONIK_ECORRUPT when the records do not decode or
 * their offset deltas do not run 0 .. count - 1. */
int recode_split(const uint8_t *batch, size_t len, enum batch_codec codec, size_t piece_bytes,
		 struct recode_piece **pieces, size_t *n);
void recode_pieces_free(struct recode_piece *pieces, size_t n);

#endif
