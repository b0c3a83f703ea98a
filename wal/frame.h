/* frame.h - the WAL file and frame formats.
 *
 * WAL FILES
 * ---------
 * DATA/wal/ holds files named %020llu.wal by sequence number (0, 1, 2, ...).
 * The highest-numbered file is active (appended to); every other file is
 * sealed: it was fully written and fsynced before the next one was created.
 * Each file begins with a 32-byte file header; all integers little-endian:
 *
 *   off size field
 *     0    8 magic "CHRONIKW"
 *     8    4 format version, 1
 *    12    4 reserved, 0
 *    16    8 sequence number of this file (matches its name)
 *    24    4 reserved, 0
 *    28    4 CRC-32C of bytes [0, 28)
 *
 * Frames follow back to back from byte 32, with no padding.
 *
 * FRAMES
 * ------
 * Every frame starts with the same 16 bytes (little-endian):
 *
 *   off size field
 *     0    4 magic "CHKF" (0x43 0x48 0x4B 0x46)
 *     4    1 version: 2 = batch frame, 1 = single-record frame
 *     5    1 flags: bit 0 (FRAME_FLAG_GROUP_END) marks the last frame of
 *            a group commit; the other bits are 0 and a reader ignores them
 *     6    2 header length: 64 for V2, 56 for V1
 *     8    4 frame length: every byte of the frame, header included
 *    12    4 frame CRC (CRC-32C, what it covers is per version below)
 *
 * V2 frame (one Kafka RecordBatch v2, see batch.h), header length 64:
 *
 *    16    4 topic id (u32, assigned at topic creation, never reused)
 *    20    4 partition (i32)
 *    24    8 base offset (i64), equal to the batch's baseOffset
 *    32    8 last offset (i64) = base offset + batch lastOffsetDelta
 *    40    4 record count (u32), equal to the batch's recordCount
 *    44    4 raw length (u32): raw-view bytes of the batch, the sum over its
 *            records of value length (null = 0) + 1 for the newline
 *    48    8 max timestamp (i64), the batch's maxTimestamp
 *    56    8 raw position (u64): raw-view byte position of the first record
 *    64    . the batch: frame length - 64 bytes, stored byte for byte
 *
 *   The frame CRC covers bytes [0, 12) and [16, 64) of the header and bytes
 *   [0, 21) of the batch: the batch's own CRC-32C (batch bytes 17-20)
 *   covers the rest of the batch, [21, end). Together every byte of the
 *   frame but the frame CRC field is covered, and the append path, which
 *   has already computed or checked the batch CRC, hashes only 85 bytes.
 *
 * V1 frame (one record; the metadata log's unit), header length 56:
 *
 *    16    4 topic id (0 in the metadata log)
 *    20    4 partition (i32)
 *    24    8 offset (i64)
 *    32    8 timestamp (i64, ms since the epoch)
 *    40    4 key length (i32, -1 = null)
 *    44    4 value length (i32, -1 = null)
 *    48    4 header count (u32)
 *    52    4 reserved, 0
 *    56    . key bytes, value bytes, then per header: key length (u32),
 *            key bytes, value length (i32, -1 = null), value bytes
 *
 *   The frame CRC covers bytes [0, 12) and [16, frame length).
 *
 * VALIDITY
 * --------
 * A frame at position p of a file of size n is valid if and only if:
 *   1. p + 16 <= n and bytes [p, p+4) are the magic;
 *   2. the version is 1 or 2 (any other: "unknown version", an error that
 *      names file and position, never skipped);
 *   3. the header length is the version's, the frame length is at least the
 *      header length (V2: header + 61) and at most FRAME_MAX_LEN, and
 *      p + frame length <= n;
 *   4. the frame CRC matches;
 *   5. V2: the batch parses (magic 2, batchLength + 12 == its size), its CRC
 *      matches, and its baseOffset, lastOffsetDelta and recordCount agree
 *      with the header; V1: key, value and headers fill the frame exactly.
 * The records inside a V2 batch are not decoded here (recovery would have
 * to decompress every batch): the append path checked them (batch_raw_size:
 * recordCount records, offset deltas 0, 1, 2, ..., raw length), the CRCs
 * keep them, and engine_verify decodes them again.
 *
 * RECOVERY (wal/recover.c)
 * ------------------------
 * Files are scanned in sequence order, frames in file order. A frame that
 * is valid but does not continue its partition (base offset != the
 * partition's next offset, or raw position != its raw size) counts as
 * invalid. In a sealed file every frame must be valid up to the end of the
 * file. In the active file, the first invalid frame at position p ends the
 * scan, and the frames after p decide what it is. A group is written with
 * one write and then fsynced, so before that fsync the kernel may have put
 * any of its pages on disk, in any order: damage with intact frames after
 * it is a torn tail as long as those frames all belong to the group that
 * was being written. So: if no valid frame (rules 1-5) lies after p, or the
 * valid frames after p end with the first GROUP_END frame after p, the
 * bytes from p are a torn tail: the file is truncated to p, fsynced, and
 * this is logged once. If a valid frame follows a GROUP_END frame that lies
 * after p, a later group was written after the damaged one, so the damage
 * is before the tail: the open fails with CHRONIK_ECORRUPT naming file and
 * position, unless repair is set, in which case the file is truncated to p
 * (the later frames are lost, so offsets stay dense) and that is logged as
 * an error. A frame of unknown version is an error (CHRONIK_EVERSION) that
 * repair also cuts. Frames of a topic id that no longer exists are
 * skipped.
 *
 * VERSION POLICY
 * --------------
 * Readers accept V1 and V2 anywhere. A new frame layout takes a new version
 * number; readers that do not know it stop with CHRONIK_EVERSION.
 */
#ifndef CHRONIK_FRAME_H
#define CHRONIK_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WAL_FILE_HEADER_SIZE 32
#define WAL_FILE_MAGIC "CHRONIKW"
#define WAL_FILE_VERSION 1

#define FRAME_COMMON_SIZE 16
#define FRAME_V2_HEADER_SIZE 64
#define FRAME_V1_HEADER_SIZE 56
#define FRAME_MAX_LEN (256u << 20)
#define FRAME_V2_CRC_BATCH_PREFIX 21
#define FRAME_FLAG_GROUP_END 0x01

struct frame_info {
	uint8_t version;
	uint8_t flags;
	uint32_t frame_len;
	uint32_t crc;
	uint32_t topic_id;
	int32_t partition;
	/* V2 */
	int64_t base_offset;
	int64_t last_offset;
	uint32_t record_count;
	int64_t max_timestamp;
	uint64_t raw_pos;
	uint32_t raw_len;
	const uint8_t *batch; /* borrowed from the decoded buffer */
	size_t batch_len;
	/* V1 (base_offset holds the record's offset too) */
	int64_t timestamp;
	const uint8_t *key;
	int32_t key_len;
	const uint8_t *value;
	int32_t value_len;
	uint32_t header_count;
	const uint8_t *headers; /* u32 klen, key, i32 vlen, value; repeated */
	size_t headers_len;
};

enum frame_status {
	FRAME_VALID = 0,
	FRAME_SHORT = 1, /* fewer bytes than the frame needs (torn) */
	FRAME_INVALID = 2, /* magic, lengths or a CRC wrong */
	FRAME_UNKNOWN_VERSION = 3,
};

/* Decode the frame at buf[0, avail): checks rules 1-5 above. On FRAME_VALID
 * *fi is filled (pointers borrow from buf). */
enum frame_status frame_decode(const uint8_t *buf, size_t avail, struct frame_info *fi);

/* Fill the 64-byte V2 header for batch (len bytes, baseOffset already set):
 * the fields come from fi (topic_id, partition, base_offset, last_offset,
 * record_count, raw_len, max_timestamp, raw_pos), the CRC is computed here. */
void frame_v2_header_encode(uint8_t hdr[FRAME_V2_HEADER_SIZE], const struct frame_info *fi,
			    const uint8_t *batch, size_t len);

/* Encode a V1 frame into a malloc'd buffer. headers: header_count headers in
 * the V1 encoding (u32 klen, key, i32 vlen, value), headers_len bytes. */
int frame_v1_encode(const struct frame_info *fi, uint8_t **out, size_t *out_len);

/* The 32-byte WAL file header. */
void wal_file_header_encode(uint8_t hdr[WAL_FILE_HEADER_SIZE], uint64_t seq);
/* Make the file at fd hold just a file header for seq, durably (truncate,
 * write, fsync). 0 or -errno. */
int wal_file_header_write(int fd, uint64_t seq);
/* 0 if valid (and *seq set), CHRONIK_ECORRUPT otherwise. */
int wal_file_header_decode(const uint8_t *hdr, size_t avail, uint64_t *seq);

/* Walk every frame of one WAL file (for `chronik dump` and verify). cb gets
 * each frame's position and status; on a non-VALID status the walk stops
 * after the call. Returns 0 when the whole file was valid, else the
 * status-derived error (CHRONIK_ECORRUPT / CHRONIK_EVERSION) or -errno.
 * A callback that returns non-zero ends the walk early (returns 0). */
typedef int (*frame_walk_fn)(void *arg, uint64_t pos, enum frame_status st,
			     const struct frame_info *fi);
int wal_file_walk(const char *path, frame_walk_fn cb, void *arg);

#endif
