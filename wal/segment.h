/* segment.h - the indexed segment file (the warm tier) and its index.
 *
 * SEGMENT FILES
 * -------------
 * DATA/segments/<topic-id>/<partition>/<base-offset, %020lld>.seg holds a
 * run of one partition's batches, immutable once written. The indexer
 * (wal/indexer.c) writes one from the frames a sealed WAL file holds for
 * that partition (several, each a run of them, under retention.bytes:
 * indexer.c, "SEGMENT CUT"); compaction (wal/compact.c) writes
 * <base-offset, %020lld>.g<gen>.seg, gen its generation (registry.h). All integers of chronik's own fields are little-endian;
 * the batches are Kafka RecordBatch v2 (batch.h), big-endian as Kafka's.
 *
 *   version 2 (written now):
 *   file = header (64) | batches | index entries (32 each)
 *          | key entries (24 each) | trailer (80)
 *   version 1 (read only; see VERSION POLICY):
 *   file = header (64) | batches | index entries (32 each) | trailer (64)
 *
 * Header, 64 bytes:
 *
 *   off size field
 *     0    8 magic "CHRONIKS"
 *     8    4 format version: 2 (1 for the older layout, no key table)
 *    12    4 topic id (u32)
 *    16    4 partition (i32)
 *    20    4 reserved, 0
 *    24    8 base offset (i64): the first batch's baseOffset (the name)
 *    32    8 WAL sequence number of the file the batches came from
 *    40   20 reserved, 0
 *    60    4 CRC-32C of bytes [0, 60)
 *
 * Batches follow from byte 64, back to back, no padding: each one a valid
 * Kafka RecordBatch v2 with its final baseOffset, so a Fetch sends a range
 * of this file as it is. A batch a producer compressed is kept byte for
 * byte (its own CRC); a batch that arrived uncompressed is, under the
 * topic's compression.type lz4 (the default), merged with the uncompressed
 * batches that follow it (same offsets and timestamps, producerId -1, up to
 * SEGMENT_MERGE_BYTES of records) into one lz4 batch (LZ4 frame, Kafka's
 * lz4 codec); one larger than SEGMENT_SPLIT_BYTES (a filesystem write of
 * 1 MiB of lines is one batch) is split into lz4 batches of about
 * SEGMENT_MERGE_BYTES of records each (recode_split), so that reading one
 * record (a search hit, a read by offset) decodes at most that much.
 * Batches are in offset order. Within one batch offsets run
 * densely (offset deltas 0, 1, ... recordCount - 1) and raw-view positions
 * run densely (each record's line follows the previous one's).
 *
 * Index, at position data_end (trailer), entry count from the trailer,
 * 32 bytes an entry, sorted by offset, raw position, max timestamp and
 * file position:
 *
 *     0    8 offset (i64): baseOffset of the batch the entry points to
 *     8    8 raw position (u64): raw-view position of that batch's first
 *            record (value bytes + '\n' per record, see engine.h)
 *    16    8 max timestamp (i64): the running maximum of every record's
 *            timestamp from the segment's first record to the record
 *            just before the next entry's batch (to the end for the last
 *            entry), so it never decreases from entry to entry
 *    24    4 file position (u32) of that batch (segments are < 4 GiB)
 *    28    4 span CRC: CRC-32C of the file bytes from this entry's batch
 *            to the next entry's (to data_end for the last), so that every
 *            batch byte is covered, the partitionLeaderEpoch and the other
 *            bytes a Kafka batch CRC leaves out included
 *
 *   An entry exists for the first batch, for every batch whose file
 *   position is SEGMENT_INDEX_INTERVAL bytes or more past the previous
 *   entry's, and for every batch that does not continue the batch before
 *   it: its baseOffset is not the previous batch's last offset + 1, or its
 *   raw position is not the previous batch's raw end. So between two
 *   entries batches are dense in offsets and in raw positions, and a
 *   reader finds a record by binary search (offset -> file position,
 *   raw position -> offset and file position, timestamp -> offset: the
 *   first entry whose max timestamp >= ts starts the span that holds the
 *   first record at or after ts) and then walks at most the interval's
 *   batches, summing raw lengths as it decodes them.
 *
 *   How a rewritten segment keeps positions: retention drops whole
 *   segments; compaction writes a segment whose batches each hold one run
 *   of kept records contiguous in offsets and raw positions (one batch per
 *   run), so every hole, in offsets and in raw positions, falls between
 *   two batches and carries an index entry: a kept record's raw position
 *   is its entry's raw position plus the lines of the records before it in
 *   the run, the position it had when it was appended.
 *
 * Key table (version 2), at the key table position (trailer), right after
 * the index entries, key count entries of 24 bytes: one for every distinct
 * key among the segment's records whose key is not null (keyLength >= 0,
 * the empty key included), holding the offset of the segment's newest
 * record with that key, sorted by digest (word 0, then word 1; digests
 * are distinct):
 *
 *     0    8 digest word 0 (u64): lane A of the key digest (below)
 *     8    8 digest word 1 (u64): lane B of the key digest
 *    16    8 offset (i64) of the segment's last record with that key
 *
 *   It lets compaction build its offset map (compact.c: key -> newest
 *   offset) from 24 bytes a key of each segment instead of decompressing
 *   and decoding every batch: the newest offset of a key over several
 *   segments is the largest of their entries for it. One entry a key,
 *   not a record: a record superseded inside its own segment never
 *   counts for the map, and a log of few keys written many times (what
 *   compaction is for) gets a table of a few entries, not one as large
 *   as its compressed records. By digest: the order the writer can sort
 *   its entries into and a reader can check (and binary-search) without
 *   the records. A record without a key has no entry (it is never
 *   superseded). No tombstone flag: compaction's rewrite decodes every
 *   kept record and sees its null value there.
 *
 *   Key digest (segment_key_digest), 128 bits, two 64-bit lanes over the
 *   key bytes k[0, n). With fmix(x) = x ^= x >> 33, x *= 0xff51afd7ed558ccd,
 *   x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53, x ^= x >> 33 (all mod 2^64) and
 *   rotl(x, r) the 64-bit left rotation, a lane with seed S and multiplier
 *   M is:
 *       h = S
 *       for each 8-byte block w of k (little-endian u64; the last block,
 *         when n is not a multiple of 8, zero-padded; none when n = 0):
 *           h = rotl((h ^ fmix(w ^ S)) * M, 29)
 *       h = fmix(h ^ n)
 *   lane A: S = 0x9e3779b97f4a7c15, M = 0xbf58476d1ce4e5b9;
 *   lane B: S = 0xd6e8feb86659fd93, M = 0x94d049bb133111eb.
 *
 *   COLLISIONS. Compaction takes two keys with the same digest for one key
 *   (the older record of the other key would be dropped), the risk Kafka's
 *   cleaner takes with the MD5 of keys in its offset map. For keys that
 *   are not chosen to collide, treating the digest as a random 128-bit
 *   function, the chance that any two of n distinct keys of one
 *   compaction share a digest is at most n(n-1)/2^129: below 2^-89 for a
 *   million keys, below 2^-63 for 2^32 keys. The digest is not
 *   cryptographic: someone who can choose keys can make two collide (as
 *   with MD5) and so make compaction drop their own older record of the
 *   other key.
 *
 * Trailer, the last 80 bytes (version 2):
 *
 *     0    8 magic "CHRONIKX"
 *     8    8 data end (u64): position of the first index entry
 *    16    4 index entry count (u32)
 *    20    4 batch count (u32)
 *    24    8 last offset (i64) of the last batch
 *    32    8 raw end (u64): raw position just past the last record's line
 *    40    8 min timestamp (i64): the smallest batch baseTimestamp
 *    48    8 max timestamp (i64): the largest batch maxTimestamp
 *    56    4 CRC-32C of the index entries
 *    60    4 key count (u32): entries in the key table
 *    64    8 key table position (u64): data end + 32 * index entry count
 *    72    4 CRC-32C of the key table (of zero bytes, 0, when it is empty)
 *    76    4 CRC-32C of trailer bytes [0, 76)
 *
 * Trailer, the last 64 bytes (version 1): bytes 0-56 as version 2's, then
 *    60    4 CRC-32C of trailer bytes [0, 60)
 * (and no key table).
 *
 * VALIDITY: a segment file is valid if and only if
 *   1. its header has the magic, version 1 or 2, and its CRC matches;
 *   2. its trailer (80 bytes for version 2, 64 for 1) has the magic and its
 *      CRC matches, and the file size is exactly data_end + 32 * entry
 *      count + 24 * key count + 80 (version 1: data_end + 32 * entry count
 *      + 64), with data_end >= 64 and (version 2) the key table position
 *      data_end + 32 * entry count;
 *   3. the index CRC matches and the entries are sorted as said above,
 *      the first pointing at position 64;
 *   4. (verify) the batches fill [64, data_end) exactly, each one parses
 *      and its CRC matches, every span CRC matches, they are in offset order, their count is the
 *      trailer's, and the index agrees with them entry for entry: each
 *      entry's offset is its batch's baseOffset, its max timestamp the
 *      running maximum, and its raw position the one the batches give:
 *      the raw end of the batches before it (records' value bytes + '\n'
 *      each) when it continues them in offsets, and at least one byte
 *      per missing offset further when it follows a hole; the trailer's
 *      last offset, raw end and min/max timestamps are the batches';
 *      (version 2) the key table's CRC matches and it is exactly the
 *      table the records make: one entry for each distinct non-null key,
 *      its digest and the offset of the last record with it, by digest;
 *   5. (verify, against the registry entry, registry.h) base and last
 *      offset, min and max timestamp, raw start and end, bytes (the file
 *      size), data_end, records (the batches' recordCounts summed) and
 *      batches are the file's.
 * Opening a segment checks 1-3 (a truncated or torn file fails them);
 * `chronik verify` checks 4 and 5 too; segment_read_keys checks the key
 * table's CRC, its order and its offsets' range when it reads it. A
 * segment is only read once the registry
 * (registry.h) lists it, and it is listed only after it was fsynced.
 *
 * VERSION POLICY: a new layout takes a new version; a reader that does not
 * know it fails with CHRONIK_EVERSION. Every reader here reads versions 1
 * and 2 (a version 1 segment simply has no key table: compaction decodes
 * its batches instead); writers write version 2 (segment_write_version
 * can ask for 1, for tests of mixed sets).
 */
#ifndef CHRONIK_SEGMENT_H
#define CHRONIK_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SEGMENT_HEADER_SIZE 64
#define SEGMENT_TRAILER_SIZE 64 /* version 1 */
#define SEGMENT_TRAILER_V2_SIZE 80
#define SEGMENT_INDEX_ENTRY_SIZE 32
#define SEGMENT_KEY_ENTRY_SIZE 24
#define SEGMENT_MAGIC "CHRONIKS"
#define SEGMENT_TRAILER_MAGIC "CHRONIKX"
#define SEGMENT_VERSION 2
#define SEGMENT_INDEX_INTERVAL 4096
#define SEGMENT_MERGE_BYTES (64u << 10)
#define SEGMENT_SPLIT_BYTES (256u << 10)
#define SEGMENT_MAX_BYTES 0xffffffffull
_Static_assert(SEGMENT_HEADER_SIZE == 64 && SEGMENT_TRAILER_SIZE == 64, "64-byte ends");
_Static_assert(SEGMENT_INDEX_ENTRY_SIZE == 32, "index entries are 32 bytes");

/* What the registry records of a segment (and the trailer repeats). */
struct segment_meta {
	int64_t base_offset;
	int64_t last_offset;
	int64_t min_timestamp;
	int64_t max_timestamp;
	uint64_t raw_start;
	uint64_t raw_end;
	uint64_t bytes; /* file size */
	uint64_t data_end; /* end of the batches */
	uint64_t records;
	uint32_t batches;
	uint64_t wal_seq;
	uint32_t gen; /* 0 as indexed; compaction writes max(inputs') + 1 */
	/* The cold tier (wal/tier.c; registry.h version 2). state is
	 * SEGMENT_LOCAL (0, as every writer makes it) or SEGMENT_REMOTE: the
	 * file lives in the object store under remote_key, and the local copy
	 * is gone (a cached copy may sit in DATA/cold-cache). crc32c is the
	 * CRC32C of the whole file and etag the store's ETag of it, both
	 * checked by the upload before the state changes. */
	uint8_t state;
	uint32_t crc32c;
	char etag[72];
	char remote_key[256];
};
#define SEGMENT_LOCAL 0
#define SEGMENT_REMOTE 2

struct segment_index_entry {
	int64_t offset;
	uint64_t raw_pos;
	int64_t max_timestamp;
	uint32_t file_pos;
	uint32_t span_crc;
};

/* One entry of the key table. */
struct segment_key {
	uint64_t digest[2];
	int64_t offset;
};

/* The key digest (format above) of key[0, len). */
void segment_key_digest(const void *key, size_t len, uint64_t digest[2]);

/* ---- writing ------------------------------------------------------------- */

/* The version writers opened from now on write: SEGMENT_VERSION (the
 * default) or 1 (no key table), so that tests can make version 1 segments
 * through the engine. Process-wide; returns the previous one, or -EINVAL. */
int segment_write_version(uint32_t version);

struct segment_writer;

/* Create path (O_EXCL) and write its header. *out owned by the caller:
 * finish or abort it. */
int segment_writer_open(const char *path, uint32_t topic_id, int32_t partition, int64_t base_offset,
			uint64_t wal_seq, struct segment_writer **out);
/* Append one batch (final baseOffset set, CRC valid) whose first record
 * sits at raw position raw_pos and whose records take raw_len raw bytes.
 * Batches must come in offset order. */
int segment_writer_add(struct segment_writer *w, const uint8_t *batch, size_t len, uint64_t raw_pos,
		       uint64_t raw_len, uint32_t records);
/* (The writer decodes each batch it is given, for the key table; after a
 * failed add the writer is fit only for _abort.) */
/* segment_writer_add, with the key table's keys taken from the records of
 * the batches src[0, nsrc) (src_lens their lengths) instead of the
 * batch's: the same records in an encoding cheaper to decode (the
 * uncompressed batches the indexer re-encoded it from). The records of
 * src must be this batch's, or this batch's and those of the batches
 * added right after it with nsrc 0 (the pieces of one split batch: the
 * source goes with the first). */
int segment_writer_add_from(struct segment_writer *w, const uint8_t *batch, size_t len,
			    uint64_t raw_pos, uint64_t raw_len, uint32_t records,
			    const uint8_t *const *src, const size_t *src_lens, size_t nsrc);
/* Write index, key table and trailer, fsync, close; *meta describes the segment. The
 * writer is freed whatever the result (on failure the file is removed). */
int segment_writer_finish(struct segment_writer *w, struct segment_meta *meta);
/* Close and remove the file, free the writer. */
void segment_writer_abort(struct segment_writer *w);

/* ---- reading ------------------------------------------------------------- */

/* A segment in memory: its path, its metadata and, once a reader asked,
 * its index and file descriptor. Shared: _ref/_unref; the registry's list
 * holds one reference, every reader holding it another. The last unref
 * closes it, and removes the file when segment_doom was called. */
struct segment;

/* A segment described by m at path; nothing is opened yet. */
int segment_new(const char *path, const struct segment_meta *m, struct segment **out);
void segment_ref(struct segment *s);
void segment_unref(struct segment *s);
/* A remote segment (state SEGMENT_REMOTE) is read from a local cache file
 * (segment_path) that holds only the bytes readers needed: ops->open
 * opens (creating, sized to the object) and returns its descriptor, or
 * <0; ops->fetch writes bytes [off, off + len) of the object into fd at
 * off, or fails (<0, returned to the reader). segment_read_begin fetches
 * the header, the index and the trailer (unless the file holds them
 * already, as their CRCs say; not a version 2 key table, compaction
 * decodes a remote segment's batches instead); segment_pread then fetches the index spans
 * it reads that the file lacks (with read-ahead up to SEGMENT_FETCH_BYTES)
 * and checks each span's CRC. Both hooks are called with the segment's
 * locks held, one fetch per segment at a time. Set before the segment is
 * published. */
struct segment_remote_ops {
	int (*open)(void *arg, struct segment *s);
	int (*fetch)(void *arg, struct segment *s, int fd, uint64_t off, uint64_t len);
};
#define SEGMENT_FETCH_BYTES (256u << 10)
/* Spans checked in one buffer (longer ones, a batch bigger than this,
 * take their own). */
#define SEGMENT_MAX_SPAN (1u << 20)
void segment_set_remote(struct segment *s, const struct segment_remote_ops *ops, void *arg);
/* Between _begin and _end: bring every byte of a remote segment into its
 * cache file (0 at once for a local one), e.g. to verify it: the batches
 * (each span's CRC checked) and the key table (version 2), which
 * segment_read_begin does not fetch. */
int segment_fetch_all(struct segment *s);
/* Remove the file at the last unref (a segment dropped from the registry),
 * and with it every sidecar: <path><suffix> for each registered suffix. */
void segment_doom(struct segment *s);
/* Unlink the segment file at path, then every sidecar of it (the order
 * segment_unref keeps, search/index.c relies on it). */
void segment_file_remove(const char *path);
/* Register a sidecar suffix, process-wide (up to SEGMENT_SIDECARS_MAX,
 * each shorter than 16 bytes; registering one twice is a no-op). 0 or
 * -EINVAL. Thread-safe. */
#define SEGMENT_SIDECARS_MAX 4
int segment_sidecar_register(const char *suffix);
const struct segment_meta *segment_meta_get(const struct segment *s);
const char *segment_path(const struct segment *s);

/* Open for reading (checks rules 1-3 and that the trailer agrees with the
 * registry's metadata; loads the index). Pair with segment_read_end; the
 * file descriptor is closed once no reader has it open. */
int segment_read_begin(struct segment *s);
void segment_read_end(struct segment *s);
/* pread from the segment file (between _begin and _end): returns the
 * bytes read (short only at the end of the file) or <0. */
ssize_t segment_pread(struct segment *s, void *buf, size_t len, uint64_t pos);
/* A descriptor of a local segment's file (between _begin and _end), the
 * caller's to close: it keeps the file readable after the segment is
 * dropped and unlinked. -EINVAL for a remote segment (its cache file holds
 * only what was fetched), else <0 -errno. */
int segment_dup_fd(struct segment *s);
/* Index lookups (between _begin and _end). The last entry whose offset
 * (raw position) is <= key; the first entry if none. */
void segment_find_offset(struct segment *s, int64_t offset, struct segment_index_entry *out);
void segment_find_raw(struct segment *s, uint64_t raw_pos, struct segment_index_entry *out);
/* The first entry whose max timestamp >= ts: 0 and *out; 1 if none. */
int segment_find_time(struct segment *s, int64_t ts, struct segment_index_entry *out);

/* The records of segment s at offsets >= from: its batches' record counts
 * (a batch's offsets are dense, segment.h), read from the batch headers
 * (one pread each, so for the segment DeleteRecords cut into, not for
 * every segment: the registry's records count the others). 0 and *out,
 * or <0. Opens the segment for reading itself. */
int segment_count_from(struct segment *s, int64_t from, uint64_t *out);

/* The segment's version (between _begin and _end). */
uint32_t segment_version(const struct segment *s);
/* The key table (between _begin and _end), its CRC and order checked: 0
 * and *keys (malloc'd, the caller frees; NULL when *n is 0) and *n; 1 when
 * the segment has none (version 1) or is remote (its cache file need not
 * hold it), nothing set; CHRONIK_ECORRUPT, -errno. */
int segment_read_keys(struct segment *s, struct segment_key **keys, size_t *n);

/* ---- checks ---------------------------------------------------------------- */

/* Check the file at path against rules 1-4 (and 5, against m, when m is
 * not NULL).
 * problem(arg, text) once per problem found; returns the count, or <0 when
 * the file cannot be read at all. */
typedef void (*segment_problem_fn)(void *arg, const char *what);
int segment_verify(const char *path, const struct segment_meta *m, segment_problem_fn problem,
		   void *arg);

/* Walk the batches of a segment file for `chronik dump`: cb gets each
 * batch's file position and bytes; a non-zero return stops the walk. */
typedef int (*segment_batch_fn)(void *arg, uint64_t pos, const uint8_t *batch, size_t len);
int segment_file_walk(const char *path, segment_batch_fn cb, void *arg);
/* The version and the key table of the segment file at path (rules 1-3 and
 * the key table CRC checked), for `chronik dump`: 0, *version, and *keys
 * (malloc'd, NULL when none) with *n (0 for version 1); or <0. */
int segment_file_keys(const char *path, uint32_t *version, struct segment_key **keys, size_t *n);

#endif
