/* codecs.h - the decompressors of Kafka's compressed batches (gzip, snappy,
 * lz4, zstd), part of the engine because compression is part of the
 * RecordBatch v2 format (batch.h, attributes bits 0-2).
 *
 * The engine's codec table (batch.c) holds all four from the start: a
 * program that links the engine reads every batch a Kafka client may have
 * compressed, with no registration call. What each one accepts (the bytes
 * from offset 61 of the batch, the records compressed as a whole):
 *
 *   1 gzip    RFC 1952 members, one or several concatenated; a zlib stream
 *             (RFC 1950) is accepted too. A stream that ends before its
 *             trailer, or fails its check, is CHRONIK_ECORRUPT.
 *   2 snappy  either one raw snappy block (librdkafka's and Kafka's
 *             non-Java framing), or Java's xerial framing:
 *               off  size  field
 *                 0     8  magic 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00
 *                 8     4  version (BE)
 *                12     4  minimum compatible version (BE)
 *                16     .  blocks: length u32 BE, then that many bytes of
 *                          one raw snappy block; the blocks' outputs are
 *                          concatenated
 *             A block length past the end of the input is CHRONIK_ECORRUPT.
 *   3 lz4     LZ4 frames (the standard frame format Kafka uses since
 *             message format v1), one or several concatenated; the last
 *             frame must end exactly at the end of the input.
 *   4 zstd    zstd frames, content size known or unknown (decoded
 *             streaming); a window larger than 2^27 is refused.
 *
 * Every decompressor has the batch_codec_fn shape: *out is malloc'd and
 * owned by the caller. Output grows through batch_outbuf (batch.h), so the
 * decompression bounds of batch.h hold: per batch batch_decompressed_limit
 * (past it CHRONIK_ECORRUPT), across the process BATCH_DECOMPRESS_BUDGET
 * (past it -ENOMEM), and a small hostile input (a "compression bomb")
 * cannot exhaust memory. A caller other than batch_iter_init that frees
 * *out itself gives the bytes back with batch_outbuf_release(*out_len).
 */
#ifndef CHRONIK_CODECS_H
#define CHRONIK_CODECS_H

#include <stddef.h>
#include <stdint.h>

int codec_gzip_decompress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
int codec_snappy_decompress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
int codec_lz4_decompress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
int codec_zstd_decompress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);

/* For a reader that decodes many lz4 batches into one buffer it keeps
 * (batch_scratch, batch.h): the input must be exactly one LZ4 frame that
 * declares its content size (as the indexer writes them, recode.c).
 * codec_lz4_frame_size reads the frame header with *dctx (created on first
 * use; the caller frees it with codec_lz4_ctx_free): 0 and *size, or 1 when
 * the input is not of that shape (use codec_lz4_decompress), <0 on error.
 * codec_lz4_frame_decode then decodes it into dst (dst_cap >= size; 64 KiB
 * more spares LZ4's own copy of the last block): 0, or CHRONIK_ECORRUPT
 * when the frame does not decode to exactly size bytes and end with the
 * input. */
int codec_lz4_frame_size(void **dctx, const uint8_t *in, size_t in_len, size_t *size);
int codec_lz4_frame_decode(void *dctx, const uint8_t *in, size_t in_len, uint8_t *dst,
			   size_t dst_cap, size_t size);
void codec_lz4_ctx_free(void *dctx);

#endif
