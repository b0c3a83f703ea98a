/* engine.h - chronik's storage engine, the one API both front-ends use.
 *
 * An engine owns one data directory:
 *   DATA/LOCK            flock()ed by the process that has the engine open
 *   DATA/wal/NNNN.wal    the WAL: one stream of frames for every partition,
 *                        rotated into sealed files (see wal/frame.h)
 *   DATA/meta.log        the metadata log: V1 frames whose values are JSON
 *                        (topics, configs, consumer-group offsets; wal/meta.c)
 *   DATA/segments/<topic-id>/<partition>/
 *                        the warm tier: indexed segment files (segment.h)
 *                        and their registry (registry.h), written by the
 *                        indexer thread (indexer.c) from sealed WAL files,
 *                        which it then deletes
 *   DATA/wal/failed.syncpoint  only after the engine entered FAILED: the
 *                        last good sync point, where the next writable open
 *                        cuts the WAL (wal/syncmark.c)
 *
 * Reads merge the segments and the WAL not yet indexed into one stream in
 * offset order (read.c).
 *
 * Threads: every function here is thread-safe unless it says otherwise.
 * Appends from any thread join the current group commit (wal/commit.c).
 *
 * Errors: 0 or a negative code (-errno or CHRONIK_E*, see errors.h).
 */
#ifndef CHRONIK_ENGINE_H
#define CHRONIK_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "batch.h"
#include "errors.h"

struct engine;
struct partition;
struct engine_cursor;

enum fsync_policy {
	FSYNC_EVERY = 0, /* an append returns after its group's fsync (default) */
	FSYNC_INTERVAL, /* fsync at most every fsync_interval_ms */
	FSYNC_NEVER, /* only engine_sync(), WAL rotation and close fsync */
};

struct engine_options {
	uint64_t wal_segment_bytes; /* rotate the WAL at this size; default 128 MiB */
	uint32_t wal_seal_ms; /* seal a non-empty active WAL file this old; default
			       * 60000, 0 = only at wal_segment_bytes */
	/* Back-pressure (wal.unindexed.max.bytes, commit.c "BACK-PRESSURE"):
	 * the WAL not yet indexed (sealed files waiting for the indexer plus
	 * the active one) stays at or below this many bytes: an append that
	 * would take it past waits for the indexer (only a group larger than
	 * the bound by itself goes past it, once nothing is left to index).
	 * 0 = 2 x wal_segment_bytes (the default). Not applied without an
	 * indexer (no_index, read_only) nor while indexing fails. */
	uint64_t wal_unindexed_max_bytes;
	enum fsync_policy fsync;
	uint32_t fsync_interval_ms;
	int32_t default_partitions; /* default 1 */
	/* Limits on what topic creation may add up to (max.topics,
	 * max.partitions): topics, and partitions summed over every topic. A
	 * create past either fails with CHRONIK_ELIMIT and creates nothing; a
	 * log that already holds more (written under higher limits) still
	 * opens. Each topic has at most 100000 partitions in any case. */
	int32_t max_topics; /* default 10000 */
	int32_t max_partitions; /* default 100000 */
	bool repair; /* truncate at a corrupt frame before the tail */
	bool read_only; /* no appends, no repair, no lock: reads beside a live writer */
	bool no_index; /* no indexer thread: sealed WAL files stay (tests) */
	/* The segment hook (engine_segment_hook_set) from the start, so that
	 * the segments the indexer writes right after open (WAL files sealed
	 * before) get it too. NULL: none. */
	const char *segment_sidecar;
	void (*segment_written)(void *arg, struct partition *p, const char *seg_path);
	void *segment_written_arg;
	/* Where the cold tier keeps its copies of remote segments (tier.c,
	 * READS): NULL = DATA/cold-cache, the daemon's. A reader beside a
	 * running daemon gives a directory of its own (chronik search
	 * --remote), so that it neither evicts the daemon's files nor reads
	 * one the daemon is filling. Borrowed: it must outlive the engine. */
	const char *remote_cache_dir;
};

/* Fill *o with the defaults above. */
void engine_options_init(struct engine_options *o);
/* Parse "every", "never" or "interval:MS" into o. 0 or -EINVAL. */
int engine_options_parse_fsync(struct engine_options *o, const char *s);
/* Set one option from its configuration name ("wal.segment.bytes", "fsync",
 * "default.partitions", "max.topics", "max.partitions", "wal.seal.ms",
 * "wal.unindexed.max.bytes"). 0,
 * -ENOENT (unknown key) or -EINVAL (bad value). */
int engine_options_set(struct engine_options *o, const char *key, const char *value);

/* The options e was opened with (the defaults filled in). */
void engine_options_get(struct engine *e, struct engine_options *out);
/* Open (creating if needed) the data directory dir, take its lock, recover
 * the WAL. CHRONIK_ELOCKED if another process holds it; CHRONIK_ECORRUPT if
 * a frame before the tail is invalid and !o->repair. *out owned by caller. */
int engine_open(const char *dir, const struct engine_options *o, struct engine **out);
/* Flush and fsync everything appended, stop the commit thread, release the
 * lock, free. Drop every partition reference and close every cursor first:
 * a partition still referenced only answers appends with CHRONIK_ENOTOPIC,
 * and nothing else may be called on it. */
int engine_close(struct engine *e);
/* A read-only engine reads beside a writer (another process may hold the
 * data directory): engine_refresh picks up the topics and frames written
 * since open or the last refresh, stopping quietly at a frame still being
 * written, and wakes engine_partition_wait. A no-op for a writer. */
int engine_refresh(struct engine *e);
/* Force durability of everything appended so far (fsync() on a file).
 * 0 only when every append reported successful so far is durable; after a
 * failed fsync that may have lost such data, this and every later append
 * return the error (usually -EIO) until the engine is reopened (commit.c,
 * "FAILED WRITES AND SYNCS"). */
int engine_sync(struct engine *e);
/* Seal the active WAL file (when non-empty) and wait until the indexer has
 * turned every sealed file into segments. 0, or the error the indexer met
 * (the files it could not index stay in the WAL). A no-op for a read-only
 * engine or one opened with no_index. */
int engine_index_now(struct engine *e);
/* Wake the compaction thread and wait until a whole compaction pass that
 * began after this call has ended: every partition whose dirty ratio
 * passes its min.cleanable.dirty.ratio compacted (wal/compact.c, "WHEN").
 * It does not index: call engine_index_now first for the WAL's records.
 * 0, or that pass's first error (-EAGAIN: a partition's segments kept
 * changing under it, compact.c "SWAP"; -ENOSPC: "DISK"; a partition
 * skipped by the backoff, compact.c "WHEN", reports its last failure). A no-op (0) for a read-only
 * engine; an engine opened with no_index has no compaction thread, and
 * the pass runs on the caller's. */
int engine_compact_now(struct engine *e);

/* Group-commit counters since open. appends / groups is the average group
 * size; fsyncs counts WAL fdatasyncs (group commits, intervals, rotations,
 * engine_sync). */
struct engine_stats {
	uint64_t appends;
	uint64_t groups;
	uint64_t bytes;
	uint64_t fsyncs;
	uint64_t failed_groups;
	/* WAL files the engine holds (sealed ones not yet indexed, and the
	 * active one): bounded by the backlog, not by history. */
	uint64_t wal_files;
	/* Back-pressure (commit.c): the bytes of those files as of the last
	 * group (wal_unindexed_bytes) and the most they ever held
	 * (wal_unindexed_max); the appends the commit thread is holding back
	 * right now, waiting for the indexer (appends_waiting), and how many
	 * times it started holding appends back (backpressure_waits). */
	uint64_t wal_unindexed_bytes;
	uint64_t wal_unindexed_max;
	uint64_t appends_waiting;
	uint64_t backpressure_waits;
};
void engine_stats_get(struct engine *e, struct engine_stats *out);

/* ---- topics -------------------------------------------------------------- */

/* Kafka's rule: [A-Za-z0-9._-], 1-249 characters, not "." or "..". */
bool engine_topic_name_valid(const char *name);

/* partitions <= 0 means the default. config_json may be NULL (no config) or
 * a JSON object of string/number values. CHRONIK_EBADNAME, -EINVAL,
 * CHRONIK_ETOPICEXISTS. Durable (metadata log fsynced) on return. */
int engine_topic_create(struct engine *e, const char *name, int32_t partitions,
			const char *config_json);
/* CHRONIK_ENOTOPIC if absent. Its partitions stop accepting appends; its WAL
 * frames are ignored from then on. */
int engine_topic_delete(struct engine *e, const char *name);
/* Names of all topics, sorted; *names is a malloc'd array of malloc'd strings,
 * free with engine_strv_free. */
int engine_topic_list(struct engine *e, char ***names, size_t *count);
void engine_strv_free(char **v, size_t count);
/* Partition count of a topic, or CHRONIK_ENOTOPIC. */
int engine_topic_partitions(struct engine *e, const char *name, int32_t *partitions);
/* Raise the topic's partition count to partitions (Kafka's
 * CreatePartitions): the new partitions exist, empty, on return, durable in
 * the metadata log. -EINVAL unless partitions is above the current count
 * and at most 100000; CHRONIK_ELIMIT when the partitions of every topic
 * would add up to more than max.partitions; CHRONIK_ENOTOPIC. */
int engine_topic_partitions_add(struct engine *e, const char *name, int32_t partitions);
/* Config as a JSON object text; *json malloc'd. */
int engine_topic_config_get(struct engine *e, const char *name, char **json);
/* Replace the config with json (a JSON object); -EINVAL, and nothing
 * changed, if it is not an object or a pair fails
 * engine_topic_config_check (engine_topic_create checks the same). */
int engine_topic_config_set(struct engine *e, const char *name, const char *json);
/* The default of a topic config key the engine knows (topic_config.c),
 * or NULL for a key it does not. Static storage. */
const char *engine_topic_config_default(const char *key);
/* Is value a valid value of the topic config key (topic_config.c,
 * VALIDATION: the accepted keys and values)? NULL when it is, else why,
 * a static text. The one check of every way a config is set. */
const char *engine_topic_config_check(const char *key, const char *value);
/* The whole metadata (topics, partitions, configs, group offsets) as JSON. */
int engine_metadata_json(struct engine *e, char **json);

/* ---- partitions ------------------------------------------------------------ */

/* A referenced partition: valid until engine_partition_unref. After its topic
 * is deleted, appends return CHRONIK_ENOTOPIC and reads see no new data. */
int engine_partition_get(struct engine *e, const char *topic, int32_t partition,
			 struct partition **out);
void engine_partition_ref(struct partition *p);
void engine_partition_unref(struct partition *p);
const char *engine_partition_topic(const struct partition *p);
int32_t engine_partition_index(const struct partition *p);
/* The topic's id: assigned at creation, never reused, so a topic deleted and
 * created again under the same name has a new one. */
uint32_t engine_partition_topic_id(const struct partition *p);

struct partition_info {
	int64_t log_start_offset;
	int64_t next_offset; /* the high watermark: offsets < this are readable */
	uint64_t raw_start; /* raw-view position of log_start_offset */
	uint64_t raw_size; /* raw-view size: sum(value len + 1) */
	uint64_t records; /* records the partition holds now, at offsets
			   * [log_start_offset, next_offset): retention,
			   * compaction and DeleteRecords take theirs away */
	uint64_t wal_bytes; /* bytes of frames of this partition in the WAL not yet indexed */
	uint64_t batches; /* batches in the WAL not yet indexed */
	uint64_t segments; /* indexed segments */
	uint64_t segment_bytes; /* their size, local and remote */
	uint64_t remote_segments; /* of them, those in the object store (tier.c) */
	uint64_t remote_bytes; /* and their size; local disk holds
				* segment_bytes - remote_bytes + wal_bytes */
	int64_t max_timestamp; /* -1 when empty */
	int64_t mtime_ns; /* wall clock of the last append (or open) */
	int64_t ctime_ns; /* when the topic was created */
	/* A registry save failed during compaction (wal/compact.c, "HALT"):
	 * the partition's warm tier is halted until the data directory is
	 * opened again (no indexing, retention or compaction for it; reads
	 * and appends go on, its records stay in the WAL). */
	bool warm_halted;
};
void engine_partition_info(struct partition *p, struct partition_info *out);

/* Kafka's DeleteRecords: advance the partition's log start offset to
 * offset (-1 = the high watermark), as retention does (retention.c,
 * "DELETE RECORDS"): durably (the registry holds it), records below it
 * read as nothing (raw positions do not move), whole segments below it
 * are deleted. An offset at or below the log start changes nothing. The
 * records below offset are indexed first (engine_index_now) when they are
 * still in the WAL. *log_start (may be NULL) gets the log start after the
 * call. CHRONIK_ERANGE when offset is above the high watermark or below
 * -1; -EROFS on a read-only engine; -EAGAIN when offset lies in the WAL
 * and the engine has no indexer (no_index); CHRONIK_ENOTOPIC after the
 * topic's deletion. */
int engine_partition_delete_records(struct partition *p, int64_t offset, int64_t *log_start);

/* One registered segment of a partition (`chronik segments`). */
struct engine_segment_info {
	int64_t base_offset;
	int64_t last_offset;
	int64_t min_timestamp;
	int64_t max_timestamp;
	uint64_t raw_start;
	uint64_t raw_end;
	uint64_t bytes;
	uint64_t records;
	uint32_t batches;
	uint64_t wal_seq; /* the WAL file it was made from */
	char file[64]; /* its name in DATA/segments/<topic-id>/<partition>/ */
	bool remote; /* the cold tier holds it (wal/tier.c), under remote_key */
	char remote_key[256]; /* "" when local */
};
/* The partition's segments in offset order; *out malloc'd (caller frees),
 * NULL when *count is 0. */
int engine_partition_segments(struct partition *p, struct engine_segment_info **out, size_t *count);

/* What one compaction of a partition did (wal/compact.c). */
struct engine_compact_result {
	uint64_t segments_in, segments_out; /* segments rewritten, written */
	uint64_t records_in, records_out; /* records read, kept */
	uint64_t bytes_in, bytes_out; /* segment file bytes before, after */
	/* The offset map's pass (key compaction): key table entries read,
	 * records decoded from segments without a key table (compact.c). */
	uint64_t map_keys_read, map_records_decoded;
};
/* Compact the partition now by its topic's cleanup.policy and configs
 * (wal/compact.c states the policy): every registered segment but the
 * newest is rewritten, keeping each kept record's offset and raw
 * position; the new segments replace the old ones in the registry in
 * one step. One compaction runs at a time (this waits for the compaction
 * thread's); indexing, retention and reads go on meanwhile. 0 (also when
 * there was nothing to do: *out all zero), or <0 and the partition as it
 * was: -EAGAIN when its segments changed under the rewrite four times
 * running (retention, DeleteRecords, the cold tier; compact.c "SWAP"),
 * -ENOSPC when the rewrite would take the partition past its
 * retention.bytes plus wal.segment.bytes (compact.c "DISK"; the
 * background then leaves the partition alone until its segments change,
 * compact.c "WHEN"), the save's error when the registry
 * could not be saved (the partition is then halted: compact.c "HALT";
 * also when it was halted before). -EROFS on a read-only engine. out may
 * be NULL. */
int engine_partition_compact(struct partition *p, struct engine_compact_result *out);

/* A custom compaction policy: called by compaction for every record the
 * topic's cleanup.policy keeps, with the topic's config; returns 1 to keep
 * the record, 0 to drop it. It runs on the compacting thread (the
 * compaction thread, or the caller of engine_partition_compact) while
 * the indexer, retention and readers go on; it must not call into the
 * engine. */
struct engine_record;
typedef int (*engine_compact_fn)(void *arg, const char *config_json, const struct engine_record *r);
/* Register fn under name (replacing one of that name; fn NULL removes
 * it). Waits for a compaction under way, so a filter removed or replaced
 * is not called once this returns. A topic whose config says "compaction.filter": name is compacted
 * through it. The engine ships "value.prefix": it drops the records whose
 * value starts with the topic's "compaction.drop.value.prefix". */
int engine_compact_filter_register(struct engine *e, const char *name, engine_compact_fn fn,
				   void *arg);

/* ---- segment hooks -------------------------------------------------------- */

/* A companion of the warm tier (the full-text index of search/, for one)
 * keeps a file of its own beside each segment: <segment file><suffix>.
 * written is called on the thread that wrote a segment (the indexer, or
 * compaction for the segments it writes) once the segment file at
 * seg_path is complete and fsynced and before the registry lists it, one
 * call at a time (the indexer and compaction may both write segments):
 * it must read the file itself
 * (segment_file_walk) and must not call into the engine. A failure is its
 * own business (the segment is registered all the same). Files named
 * <segment file><suffix> are removed with their segment (retention,
 * compaction, topic deletion). One hook per engine; fn NULL clears it
 * (the suffix stays known: such files keep being removed). 0 or -EINVAL
 * (suffix NULL, empty, longer than 15 bytes, or more than 4 suffixes). */
typedef void (*engine_segment_written_fn)(void *arg, struct partition *p, const char *seg_path);
int engine_segment_hook_set(struct engine *e, const char *suffix, engine_segment_written_fn fn,
			    void *arg);
/* The directory holding p's segment files (DATA/segments/<topic-id>/<p>),
 * into buf (len bytes, truncated if too small). */
void engine_partition_segment_dir(struct partition *p, char *buf, size_t len);

/* ---- appends ---------------------------------------------------------------- */

/* Append one Kafka RecordBatch v2 as received. Its baseOffset (bytes 0-7) is
 * patched in place; the rest is stored byte for byte. With verify_crc the
 * batch CRC is checked first (CHRONIK_EBADCRC). Returns when the group is
 * written (and fsynced under FSYNC_EVERY); *base_offset gets the first
 * offset. A failed write consumes no offsets. batch must stay valid and
 * unchanged until the call returns. */
int engine_append_batch(struct partition *p, uint8_t *batch, size_t len, bool verify_crc,
			int64_t *base_offset);
/* The same append in two steps, so that one thread can have several
 * appends in one group commit, or queue its next while one is being
 * written. engine_append_start checks the batch (as engine_append_batch)
 * and queues it: 0 and *out, or the error, and nothing is queued. Appends
 * take their offsets in the order they were started, whichever thread
 * starts them. engine_append_finish waits until the group holding it is
 * written (and fsynced under FSYNC_EVERY), leading the group itself when
 * none is in progress, and returns as engine_append_batch would; it frees
 * *a, and must be called exactly once for every started append, even by
 * a caller that no longer wants the answer: until then batch must stay
 * valid and unchanged, and p referenced. A started append is written by
 * the next group whoever leads it; one that nobody finishes waits for the
 * next appender, so a thread that will block on something else first
 * (a socket read) calls engine_append_kick, which hands whatever is
 * queued to the commit thread when no group is in progress. */
struct engine_append;
int engine_append_start(struct partition *p, uint8_t *batch, size_t len, bool verify_crc,
			struct engine_append **out);
int engine_append_finish(struct engine_append *a, int64_t *base_offset);
void engine_append_kick(struct engine *e);
/* Encode n records into one batch and append it. */
int engine_append_records(struct partition *p, const struct record_in *recs, size_t n,
			  int64_t *base_offset);
/* Append buf[0, len), complete '\n'-terminated lines, as one batch of one
 * record per line (values without the newline). -EINVAL if len == 0 or the
 * last byte is not '\n'. */
int engine_append_lines(struct partition *p, const char *buf, size_t len, int64_t *base_offset);

/* Called by the thread that wrote the group (the commit thread, or an
 * appender that led its own group: commit.c) after each group is
 * published, before any later group is written, once per
 * partition that grew, without engine locks held. It must not block for
 * long nor call back into appends or into engine_set_append_listener. One
 * listener per engine; NULL clears. When engine_set_append_listener returns,
 * no call to the previous listener is running or will start. */
typedef void (*engine_append_fn)(void *arg, struct partition *p);
void engine_set_append_listener(struct engine *e, engine_append_fn fn, void *arg);

/* ---- reads ------------------------------------------------------------------ */

/* One record as read; pointers borrowed from the cursor, valid until the
 * next engine_cursor_next or engine_cursor_close. */
struct engine_record {
	int64_t offset;
	int64_t timestamp;
	uint64_t raw_pos; /* raw-view position of this record's value */
	const uint8_t *key;
	int32_t key_len; /* -1 = null */
	const uint8_t *value;
	int32_t value_len; /* -1 = null */
	int32_t header_count;
	const uint8_t *headers; /* walk with batch_record_header_next */
	size_t headers_len;
};

/* A cursor from an offset (clamped up to the log start; CHRONIK_ERANGE if
 * beyond next_offset). */
int engine_cursor_open(struct partition *p, int64_t from_offset, struct engine_cursor **out);
/* A cursor at the record whose raw-view line contains raw_pos. */
int engine_cursor_open_raw(struct partition *p, uint64_t raw_pos, struct engine_cursor **out);
/* 1 = *r filled, 0 = at the current end (call again later for more),
 * <0 error. */
int engine_cursor_next(struct engine_cursor *c, struct engine_record *r);
void engine_cursor_close(struct engine_cursor *c);

/* Copy raw-view bytes from pos into buf: returns bytes copied (0 at or
 * past the end) or <0. Raw positions are stable, and where nothing remains
 * (before the log start, inside records compaction removed) the bytes come
 * from the next record that remains: *from says where the bytes returned
 * start (pos unless pos was in such a hole). Fewer than len at the end,
 * and where a later hole begins (the next read continues past it). */
ssize_t engine_read_raw_at(struct partition *p, uint64_t pos, void *buf, size_t len,
			   uint64_t *from);
/* engine_read_raw_at without *from. */
ssize_t engine_read_raw(struct partition *p, uint64_t pos, void *buf, size_t len);

/* A raw-view reader for one stream of reads (an open file): the same
 * answers as engine_read_raw_at, but a read at exactly the position where
 * the previous one ended (its *from plus the bytes it returned) goes on
 * with the cursor, the decoded batch and the read-ahead buffer the previous
 * read left, instead of locating, reading and decoding them again; any
 * other read starts over at its position. It holds a cursor (and so may pin
 * one segment, segment.h) only between reads that are not at the end: a
 * read that reaches the current end lets it go, and so does the first read
 * after the topic was deleted. One thread at a time;
 * owned by the caller (_free). */
struct engine_raw_reader;
int engine_raw_reader_new(struct partition *p, struct engine_raw_reader **out);
ssize_t engine_raw_reader_read(struct engine_raw_reader *r, uint64_t pos, void *buf, size_t len,
			       uint64_t *from);
void engine_raw_reader_free(struct engine_raw_reader *r);

/* Whole stored batches from the one containing from_offset, for a Kafka
 * Fetch: at least one batch if any exists at or past from_offset, then more
 * while the total stays <= max_bytes, and so does the total weight: a batch
 * weighs the larger of its stored bytes and its records' decoded bytes (the
 * raw-view bytes of a WAL batch's records; for a segment's lz4 batch, the
 * content size its frame declares), so that a response of highly
 * compressed batches does not hand the client a hundred times max_bytes to
 * decode at once. *out is malloc'd (caller frees), *len its size (0 =
 * nothing yet). CHRONIK_ERANGE outside [log start, next]. */
int engine_read_batches(struct partition *p, int64_t from_offset, size_t max_bytes, uint8_t **out,
			size_t *len);

/* The same batches as engine_read_batches (same from_offset and max_bytes:
 * the same bytes, in the same order), as spans instead of one buffer, so
 * that a sender can hand the file spans to sendfile(2) rather than copy
 * them through user space. A span is either bytes in memory (mem != NULL,
 * owned by the set) or a range [off, off + len) of a file (fd, a
 * descriptor the set owns: a dup of the engine's). What is a file span:
 *   - a local segment's run of batches (segments hold the final batches,
 *     segment.h): one span for the whole run;
 *   - a V2 WAL frame's batch (frame.h: the batch bytes follow the 64-byte
 *     header unchanged, baseOffset final at append) of at least
 *     ENGINE_SPAN_MIN bytes: one span per frame (frames of one partition
 *     are not adjacent in a WAL file). Its frame header is read first and
 *     must agree with the hot index (magic, version 2, base offset, frame
 *     length), else CHRONIK_ECORRUPT.
 * What is copied into memory (the bytes that are not on disk as sent, or
 * not worth a system call of their own): a V1 frame (re-encoded as a
 * batch), a WAL batch smaller than ENGINE_SPAN_MIN, a remote segment's
 * batches (its cache file holds only what was fetched), and any span
 * whose descriptor could not be duplicated (EMFILE).
 * Lifetime: a WAL file or segment may be indexed, retained away or
 * compacted away after this returns; the set's own descriptor keeps the
 * file (unlinked or not) open, and neither kind of file ever changes the
 * bytes at a position once a reader could see them (WAL files are
 * append-only and a failed group is cut before its entries are
 * published; segments are immutable), so the bytes sent are the bytes
 * whose lengths were counted here. The spans are appended to *out (which
 * may hold spans already); out->next_offset becomes the offset after the
 * last record of the batches added. CHRONIK_ERANGE outside [log start,
 * next]; on any error nothing is added. */
#define ENGINE_SPAN_MIN 4096
struct engine_span {
	const uint8_t *mem; /* NULL: a file span */
	int fd;
	uint64_t off;
	size_t len;
};
struct engine_spans {
	struct engine_span *v;
	size_t n, cap;
	int *fds; /* descriptors owned (closed by _free) */
	size_t nfds, fds_cap;
	void **blocks; /* memory owned (freed by _free) */
	size_t nblocks, blocks_cap;
	size_t len; /* bytes of every span */
	size_t mem_len; /* bytes of the memory spans */
	int64_t next_offset; /* after the last record added; -1 before */
};
void engine_spans_init(struct engine_spans *s);
/* Close its descriptors, free its memory; it is empty (as _init) after. */
void engine_spans_fini(struct engine_spans *s);
/* Append src's spans to dst, moving what src owns: 0 (src is then empty,
 * as _init) or -ENOMEM (both unchanged). */
int engine_spans_move(struct engine_spans *dst, struct engine_spans *src);
/* Append block[0, len) as one memory span, taking the malloc'd block
 * (freed on failure too). 0 or -ENOMEM. */
int engine_spans_add_block(struct engine_spans *s, void *block, size_t len);
int engine_read_batch_spans(struct partition *p, int64_t from_offset, size_t max_bytes,
			    struct engine_spans *out);

/* Block until next_offset > offset, up to timeout_ms (-1 = forever).
 * 1 = data available, 0 = timed out, <0 error (topic deleted, engine closing). */
int engine_partition_wait(struct partition *p, int64_t offset, int timeout_ms);

/* The offset of the first record whose timestamp >= ts (Kafka ListOffsets by
 * time); next_offset if none. */
int engine_offset_for_timestamp(struct partition *p, int64_t ts, int64_t *offset);

/* ---- consumer-group offsets (metadata log) ----------------------------------- */

int engine_group_offset_commit(struct engine *e, const char *group, const char *topic,
			       int32_t partition, int64_t offset, const char *metadata);
/* One partition's offset for engine_group_offsets_commit. */
struct engine_offset_commit {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const char *metadata; /* NULL: null */
	int rc; /* out: 0 once durable, else why not */
};
/* Commit n offsets of one group (one OffsetCommit request) with one
 * metadata-log write and one fdatasync: the valid ones are all durable on
 * return, or none is. c[i].rc: -EINVAL for an invalid entry (not
 * written), else the write's result. Returns 0, or the first error. */
int engine_group_offsets_commit(struct engine *e, const char *group, struct engine_offset_commit *c,
				size_t n);
/* Forget the committed offsets of n partitions of one group (Kafka's
 * OffsetDelete) with one metadata-log write and one fdatasync, as
 * engine_group_offsets_commit: c[i].offset and .metadata are not used;
 * c[i].rc is 0 once forgotten (also when nothing was committed there),
 * -EINVAL for an invalid entry. -ENOENT (and nothing written) when the
 * group has no committed offset at all. */
int engine_group_offsets_delete(struct engine *e, const char *group, struct engine_offset_commit *c,
				size_t n);
/* Forget every committed offset of group, durably (Kafka's DeleteGroups).
 * -ENOENT when it has none. */
int engine_group_delete(struct engine *e, const char *group);
/* The groups that have a committed offset, sorted; free with
 * engine_strv_free. */
int engine_group_list(struct engine *e, char ***names, size_t *count);
/* The group's lag as one line of JSON (wal/group_lag.c states it): per
 * committed partition the committed offset, the high watermark and their
 * difference. *json malloc'd. -ENOENT when the group has no committed
 * offset. */
int engine_group_lag_json(struct engine *e, const char *group, char **json);
/* *offset = -1 and *metadata = NULL when none committed; *metadata malloc'd. */
int engine_group_offset_fetch(struct engine *e, const char *group, const char *topic,
			      int32_t partition, int64_t *offset, char **metadata);

/* ---- checks --------------------------------------------------------------------- */

/* Re-read every frame of the WAL and check every CRC and every hot-index
 * entry against it, and that every batch's records decode to the raw
 * length its frame says. problem() (may be NULL) is called once per problem
 * found. Returns the number of problems (0 = clean) or <0 on error. */
typedef void (*engine_problem_fn)(void *arg, const char *what);
int engine_verify(struct engine *e, engine_problem_fn problem, void *arg);

#endif
