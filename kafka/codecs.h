/* codecs.h - decompressors for Kafka's gzip, snappy and zstd batches.
 *
 * Each has the batch_codec_fn shape: *out is malloc'd and owned by the
 * caller. Output grows through batch_outbuf (wal/batch.h), so it is bounded
 * per batch by batch_decompressed_limit (past it: CHRONIK_ECORRUPT) and
 * across the process by BATCH_DECOMPRESS_BUDGET (past it: -ENOMEM), and a
 * small hostile input ("compression bomb") cannot exhaust memory. A caller
 * other than batch_iter_init that frees *out itself gives the bytes back
 * with batch_outbuf_release(*out_len). lz4 frame is built into the engine
 * (wal/batch.c). kafka_codecs_register puts these in the engine's table;
 * chronikd and the chronik CLI call it at start.
 */
#ifndef CHRONIK_KAFKA_CODECS_H
#define CHRONIK_KAFKA_CODECS_H

#include <stddef.h>
#include <stdint.h>

/* gzip (RFC 1952; a zlib stream is accepted too). */
int kafka_codec_gzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
/* snappy: a raw snappy block, or Java's xerial framing:
 *   0  8  magic 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00
 *   8  4  version (BE), 12 4 minimum compatible version (BE)
 *  16  .  blocks: u32 BE length, then that many bytes of one raw snappy block */
int kafka_codec_snappy(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
/* zstd frames, content size unknown or known (streamed). */
int kafka_codec_zstd(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);

/* Register gzip, snappy and zstd with the engine's batch codec table
 * (batch_codec_register) so every front-end can look inside compressed
 * batches. Call once at start, before any read. */
void kafka_codecs_register(void);

#endif
