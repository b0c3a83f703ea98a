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
 *     8    4 format version: 2 (WAL files written now), 1 (older WAL files,
 *            and the metadata log, which has no sync points)
 *    12    4 reserved, 0
 *    16    8 sequence number of this file (matches its name)
 *    24    4 salt (version 2): a random u32 drawn when the file is created;
 *            version 1: reserved, 0
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
 *     4    1 version: 2 = batch frame, 1 = single-record frame,
 *            3 = sync point (version 2 files only)
 *     5    1 flags: bit 0 (FRAME_FLAG_GROUP_END) marks the last frame of
 *            a group commit; the other bits are 0 and a reader ignores them
 *     6    2 header length: 64 for V2, 56 for V1, 32 for V3
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
 * V3 frame: a sync point, header length = frame length = 32:
 *
 *    16    8 position (u64) of this frame in its file
 *    24    4 the file's salt (file header bytes 24-27)
 *    28    4 reserved, 0
 *
 *   The frame CRC covers bytes [0, 12) and [16, 32). A sync point says:
 *   every byte of this file before it was durable (an fdatasync of the file
 *   had returned success) when it was written. The commit thread puts one
 *   in front of a group whenever everything written before the group is
 *   durable: under fsync "every" in front of each group but a file's first,
 *   under "interval" after each interval fsync, under "never" only after
 *   the fsync at open. It becomes durable itself with the next fsync, like
 *   the group behind it. A sync point is genuine at position p of a file
 *   if and only if it is valid (rules 1-4 below), its position field is p
 *   and its salt is the file's: a record value cannot forge one, because
 *   it cannot know the salt, and even a copied one names another position.
 *   Sync points belong to no partition: the hot index never points at
 *   them, and wal_file_walk checks and skips them.
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
 *      with the header; V1: key, value and headers fill the frame exactly;
 *      V3: the frame is 32 bytes (its genuineness is checked by the reader
 *      of the file, who knows position and salt).
 * The records inside a V2 batch are not decoded here (recovery would have
 * to decompress every batch): the append path checked them (batch_raw_size:
 * recordCount records, offset deltas 0, 1, 2, ..., raw length), the CRCs
 * keep them, and engine_verify decodes them again.
 *
 * RECOVERY (wal/recover.c)
 * ------------------------
 * Files are scanned in sequence order, frames in file order. A frame that
 * is valid but does not continue its partition (base offset != the
 * partition's next offset, or raw position != its raw size), and a sync
 * point that is not genuine, count as invalid. In a sealed file every
 * frame must be valid up to the end of the file. In the active file, the
 * first invalid frame at position p ends the scan, and what follows p
 * decides what it is. Before an fsync completes the kernel may have put
 * any of the pages written since the last completed one on disk, in any
 * order: under "every" that is the last group, under "interval" and
 * "never" it may be many groups. So:
 *   - version 2 file: if a genuine sync point lies after p, the damage is
 *     in bytes that were durable: the open fails with CHRONIK_ECORRUPT
 *     naming file and position, unless repair is set, in which case the
 *     file is truncated to p (the later frames are lost, so offsets stay
 *     dense) and that is logged as an error. If none does, every byte from
 *     p on was written after the last completed sync and may be torn: the
 *     file is truncated to p, fsynced, and this is logged once. The search
 *     looks at each occurrence of the magic after p and tests only whether
 *     a genuine sync point starts there (32 bytes, one CRC): it never
 *     trusts a frame length found in the damaged region, so bytes inside a
 *     record value that look like frames can neither hide a sync point nor
 *     fake one, and the work is linear in the file.
 *   - version 1 file (written before sync points existed, under an unknown
 *     policy): the rule of that version holds. The bytes from p are a torn
 *     tail if no valid frame lies after p, or the valid frames after p end
 *     with the first GROUP_END frame after p; a valid frame after that
 *     GROUP_END frame is damage, as above. The search decodes frames at the
 *     magic's occurrences with a budget of four times the file's size in
 *     bytes hashed; past it the tail is called damage (repair cuts it). A
 *     writable open does not append to a version 1 file: it seals it and
 *     starts a version 2 file.
 * A frame of unknown version is an error (CHRONIK_EVERSION) that repair
 * also cuts. Frames of a topic id that no longer exists are skipped. A
 * writable open fdatasyncs the active file once recovery is done (what it
 * read may have been in the page cache only), so the first group it
 * writes may carry a sync point.
 *
 * VERSION POLICY
 * --------------
 * Readers accept V1 and V2 anywhere, V3 in version 2 files. A new frame
 * layout takes a new version number; readers that do not know it stop with
 * CHRONIK_EVERSION. File version 2 (salt, sync points) replaced version 1:
 * readers accept both; a reader that knows only version 1 refuses a
 * version 2 file at its header (CHRONIK_EVERSION) rather than meet a V3
 * frame in the middle of it.
 */
#ifndef CHRONIK_FRAME_H
#define CHRONIK_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WAL_FILE_HEADER_SIZE 32
#define WAL_FILE_MAGIC "CHRONIKW"
#define WAL_FILE_VERSION 2 /* what wal_file_header_write_salted writes */
#define WAL_FILE_VERSION_UNSALTED 1 /* older WAL files; the metadata log */

#define FRAME_COMMON_SIZE 16
#define FRAME_V2_HEADER_SIZE 64
#define FRAME_V1_HEADER_SIZE 56
#define FRAME_MAX_LEN (256u << 20)
#define FRAME_V2_CRC_BATCH_PREFIX 21
#define FRAME_FLAG_GROUP_END 0x01
#define FRAME_SYNC_SIZE 32

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
	/* V3 (sync point) */
	uint64_t sync_pos;
	uint32_t sync_salt;
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

/* frame_decode without the V2 batch's own CRC (the "its CRC matches" of
 * rule 5): every other rule is checked, so the frame CRC still covers the
 * header and the batch's first 21 bytes, its CRC field included. For a
 * reader that reads the whole batch later anyway and runs batch_crc_check
 * on it then, while the batch is in the CPU cache, instead of streaming
 * the file from memory twice (the indexer, wal/indexer.c). A frame
 * FRAME_VALID here is valid only once that check passes too. */
enum frame_status frame_decode_no_batch_crc(const uint8_t *buf, size_t avail,
					    struct frame_info *fi);

/* Fill the 64-byte V2 header for batch (len bytes, baseOffset already set):
 * the fields come from fi (topic_id, partition, base_offset, last_offset,
 * record_count, raw_len, max_timestamp, raw_pos), the CRC is computed here. */
void frame_v2_header_encode(uint8_t hdr[FRAME_V2_HEADER_SIZE], const struct frame_info *fi,
			    const uint8_t *batch, size_t len);

/* Encode a V1 frame into a malloc'd buffer. headers: header_count headers in
 * the V1 encoding (u32 klen, key, i32 vlen, value), headers_len bytes. */
int frame_v1_encode(const struct frame_info *fi, uint8_t **out, size_t *out_len);

/* Encode the 32-byte sync point for position pos of a file with salt. */
void frame_sync_encode(uint8_t f[FRAME_SYNC_SIZE], uint64_t pos, uint32_t salt);
/* Is buf[0, avail), at position pos of a file with salt, a genuine sync
 * point (frame.h, V3)? Looks at 32 bytes at most. */
bool frame_sync_genuine(const uint8_t *buf, size_t avail, uint64_t pos, uint32_t salt);

/* The 32-byte WAL file header. version 1 takes salt 0. */
void wal_file_header_encode(uint8_t hdr[WAL_FILE_HEADER_SIZE], uint64_t seq, uint32_t version,
			    uint32_t salt);
/* Make the file at fd hold just a version 1 file header for seq, durably
 * (truncate, write, fsync). 0 or -errno. The metadata log's header. */
int wal_file_header_write(int fd, uint64_t seq);
/* The same with a version 2 header and a new random salt, returned in
 * *salt. A WAL file's header. */
int wal_file_header_write_salted(int fd, uint64_t seq, uint32_t *salt);
/* 0 if valid (and *seq set), CHRONIK_ECORRUPT, or CHRONIK_EVERSION for a
 * version other than 1 and 2. */
int wal_file_header_decode(const uint8_t *hdr, size_t avail, uint64_t *seq);
/* The same, also giving the version and the salt (0 in version 1). */
int wal_file_header_parse(const uint8_t *hdr, size_t avail, uint64_t *seq, uint32_t *version,
			  uint32_t *salt);

/* Reads the frames of a file that a live writer may append to or truncate
 * meanwhile (a read-only engine beside it), with pread into a buffer of
 * its own: a mapping of the file would turn a truncation into SIGBUS, a
 * short read only ends the frames seen this time. */
struct frame_reader {
	int fd; /* borrowed */
	uint8_t *buf;
	size_t cap;
	uint64_t start; /* file position of buf[0] */
	size_t len; /* bytes of buf read from there */
	/* The last read got less than it asked for: the file ended at
	 * start + len then. A frame whose length field runs past that end is
	 * FRAME_SHORT without a read of its length (a damaged length would
	 * otherwise cost a buffer of up to FRAME_MAX_LEN for a small file). */
	bool eof;
};
void frame_reader_init(struct frame_reader *r, int fd);
void frame_reader_fini(struct frame_reader *r);
/* Decode the frame at file position pos, reading what it needs: a frame
 * status (FRAME_VALID fills *fi, its pointers borrowed until the next
 * call or _fini; FRAME_SHORT when the file ends inside it) or -errno. */
int frame_reader_decode(struct frame_reader *r, uint64_t pos, struct frame_info *fi);
/* Read up to len bytes at pos into buf (a short count at the end of the
 * file): the count or -errno. */
ssize_t frame_reader_pread(int fd, void *buf, size_t len, uint64_t pos);

/* Walk every frame of one WAL file (for `chronik dump` and verify). cb gets
 * each frame's position and status; on a non-VALID status the walk stops
 * after the call. Returns 0 when the whole file was valid, else the
 * status-derived error (CHRONIK_ECORRUPT / CHRONIK_EVERSION) or -errno.
 * A callback that returns non-zero ends the walk early (returns 0). */
typedef int (*frame_walk_fn)(void *arg, uint64_t pos, enum frame_status st,
			     const struct frame_info *fi);
int wal_file_walk(const char *path, frame_walk_fn cb, void *arg);

#endif
