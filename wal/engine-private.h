/* engine-private.h - the engine's internal state, shared by the files of wal/
 * and by nothing else. */
#ifndef CHRONIK_ENGINE_PRIVATE_H
#define CHRONIK_ENGINE_PRIVATE_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>

#include "engine.h"
#include "frame.h"
#include "segment.h"

/* One hot-index entry per stored batch (or V1 record) of a partition: where
 * its frame lies in the WAL. 40 bytes a batch. The batch's last offset is
 * the next entry's base offset - 1 (or the partition's next offset - 1), its
 * raw length the next entry's raw_pos - raw_pos (or raw_size - raw_pos). */
struct hot_entry {
	int64_t base_offset;
	uint64_t raw_pos;
	int64_t max_timestamp;
	uint32_t file_seq; /* WAL file sequence number */
	uint32_t file_pos; /* frame position in that file (files < 4 GiB) */
	uint32_t frame_len;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hot_entry) == 40, "hot index entry is 40 bytes");

struct topic;

/* Invariants (guarded by lock): segs[0..nsegs) are the registered segments
 * in offset order (the partition holds one reference on each); they end at
 * seg_next_offset / seg_raw_end (the registry's next_offset / raw_end), and
 * the hot index continues exactly there: idx[0] (when n > 0) has
 * base_offset == seg_next_offset and raw_pos == seg_raw_end. idx[0..n) covers
 * only WAL frames not yet indexed, sorted by base_offset and by raw_pos;
 * next_offset == last entry's last offset + 1; raw_size == last entry's
 * raw_pos + its raw length (or seg_next_offset / seg_raw_end when n == 0).
 * Only the indexer thread changes segs and drops entries from the front of
 * idx, both in one critical section, so a reader sees every offset in
 * exactly one of them. Only the writer's token holder (commit.c; or recovery,
 * before it starts) appends entries and advances next_offset / raw_size;
 * readers copy entries out under lock and do their I/O without it.
 * c_next_offset / c_raw_size are the token holder's own counters: equal to
 * the published ones except while a group is being written. */
struct partition {
	struct engine *e;
	struct topic *t; /* NULL once the topic is deleted (under meta_lock) */
	uint32_t topic_id; /* copies, so a partition outlives its topic */
	char *topic_name;
	int64_t ctime_ns;
	int32_t index;
	atomic_int refcnt;

	pthread_mutex_t lock;
	pthread_cond_t grown; /* broadcast when next_offset advances or on delete */
	struct hot_entry *idx;
	size_t n, cap;
	/* Entries the token holder reserved room for in idx (n + reserved <=
	 * cap) and has not published yet: its group is being written. The
	 * indexer's shrink of idx (hot_drop) keeps that room. */
	size_t reserved;
	int64_t log_start_offset;
	int64_t next_offset;
	uint64_t raw_start;
	uint64_t raw_size;
	uint64_t wal_bytes;
	int64_t max_timestamp;
	int64_t mtime_ns;
	bool deleted;
	struct segment **segs;
	size_t nsegs, segs_cap;
	int64_t seg_next_offset;
	uint64_t seg_raw_end;
	uint64_t seg_bytes;
	/* Bumped (under lock) whenever segs changes: a segment added,
	 * dropped, swapped for compaction's output or for its remote copy,
	 * the list reloaded. compact.c ("WHEN", backoff) compares it. */
	uint64_t segs_changes;
	/* Under retention.bytes, the bound of the segment the indexer is
	 * writing for this partition, from the make-room that let it in
	 * until it is listed or given up (retention.c, "DISK"); compaction
	 * counts it as a segment. */
	uint64_t seg_reserved;
	/* Bytes of the segment files the running compaction of this partition
	 * has written and not yet swapped in (compact.c, "DISK"); retention
	 * counts those past compaction's allowance with seg_bytes
	 * (compact_counted_bytes). */
	uint64_t compact_bytes;
	/* The background backoff (compact.c, "WHEN"), under compact_lock:
	 * after a compaction failed with -ENOSPC or -EAGAIN, its error, the
	 * segs_changes and retention.bytes it saw; compact_fail_rc 0: none. */
	int compact_fail_rc;
	uint64_t compact_fail_changes;
	int64_t compact_fail_limit;
	/* 0, or the error of a registry save that failed with the registry
	 * on disk listing one set or the other (compact.c, "HALT"): the
	 * partition's warm tier is halted until the engine is reopened. Set
	 * under warm_lock and lock, never cleared; every registry saver
	 * (indexer, retention, DeleteRecords, compaction, the cold tier)
	 * checks it under warm_lock and leaves the partition alone. */
	int warm_halt_rc;
	/* engine_partition_info's count of the records past the log start in
	 * the segment the log start cuts (when its offsets have holes), kept
	 * so that it reads that segment's batch headers once, not at every
	 * call: valid while the segment (base, last, gen) and the log start
	 * are the ones it was counted for. */
	struct {
		bool valid;
		int64_t base, last, from;
		uint32_t gen;
		uint64_t n;
	} cut_count;

	int64_t c_next_offset;
	uint64_t c_raw_size;
	size_t c_group_entries; /* token holder: entries this group adds */
};

/* A topic: owned by the engine's topic table (guarded by e->meta_lock).
 * Holds one reference on each of its partitions. */
struct topic {
	char *name;
	uint32_t id;
	int32_t nparts;
	struct partition **parts;
	char *config_json;
	int64_t ctime_ns;
};

/* fd is -1 once the file was indexed and removed (the indexer closes it
 * under files_lock with wal_retire_lock held for writing). e->files holds
 * consecutive seqs, oldest first; the entries of removed files at its head
 * are trimmed (wal_files_trim), so its length is bounded by the WAL files
 * not yet indexed, not by history. Look a file up by seq (wal_fd_get), never
 * by an index kept across an unlock of files_lock. */
struct wal_file {
	uint64_t seq;
	int fd;
	uint64_t bytes; /* a sealed file's size, counted in wal_sealed_bytes
			 * (0 for the active file and for removed ones) */
	/* Indexed for every partition but a halted one (warm_halt_rc): the
	 * file stays, open, for that partition's reads and the next open; the
	 * indexer does not look at it again (bytes 0). */
	bool kept;
};

struct append_req;

struct engine {
	char *dir;
	struct engine_options opt;
	int lock_fd;
	int dir_fd; /* DATA/wal, for fsync after create/rename */

	/* Topics and the metadata log (meta.c). meta_lock guards topics, groups,
	 * next_topic_id and the meta log file. */
	pthread_rwlock_t meta_lock;
	struct topic **topics;
	size_t ntopics, topics_cap;
	uint32_t next_topic_id;
	json_object *groups; /* {group: {"topic/partition": {"offset", "metadata"}}} */
	int meta_fd;
	uint64_t meta_ino; /* to notice a snapshot replacing meta.log */
	uint64_t meta_size;
	int64_t meta_seq;
	uint64_t meta_frames;
	/* 0, or the error every later metadata change returns: a failed event
	 * whose cut could not be made durable (meta_log). */
	int meta_failed;

	/* WAL files (files_lock guards the array; fds live until close). */
	pthread_mutex_t files_lock;
	struct wal_file *files;
	size_t nfiles, files_cap;
	uint64_t active_size; /* token holder only (after recovery); in a
			       * read-only engine, where engine_refresh stopped */
	pthread_mutex_t refresh_lock; /* one engine_refresh at a time */
	/* A torn tail recovery left in place (read-only opens), so that verify
	 * can tell it from damage; torn_pos 0 = none. */
	uint64_t torn_seq, torn_pos;

	/* Group commit (commit.c). */
	pthread_mutex_t commit_lock;
	pthread_cond_t commit_wake; /* the commit thread waits for work */
	pthread_cond_t commit_done; /* appenders wait for their group */
	struct append_req *queue_head, *queue_tail;
	/* The writer's token (commit_lock): true while one thread - an
	 * appender leading its group, or the commit thread writing a group,
	 * sealing or syncing - writes the active file. The fields marked
	 * "token holder" below are touched only by the thread holding it
	 * (taking and releasing it under commit_lock orders them). */
	bool writing;
	/* When the commit thread sleeps until (mono_ns; INT64_MAX = until
	 * woken, 0 = not sleeping); commit_lock. */
	int64_t commit_sleep_until;
	bool stopping;
	bool commit_running;
	pthread_t commit_thread;
	int64_t last_sync_ns; /* CLOCK_MONOTONIC (mono_ns); token holder */
	uint64_t unsynced; /* bytes written since the last fsync (token holder);
			    * 0 means every byte of the active file is durable,
			    * so the next group carries a sync point (frame.h) */
	uint32_t active_salt; /* the active file's salt (token holder) */
	uint32_t active_version; /* its file format version (recovery) */
	/* The FAILED state of commit.c's "FAILED WRITES AND SYNCS": 0, or the
	 * error every append and engine_sync return until the engine is
	 * reopened. Set once (engine_fail), never cleared. sync_lock is held
	 * around every fdatasync of the active WAL file together with the
	 * check or change of failed_rc that goes with it. */
	pthread_mutex_t sync_lock;
	atomic_int failed_rc;
	/* The sync points of rule 4 (syncmark.c): written_* is the end of what
	 * the commit thread wrote to the active file and still stands by (a
	 * failed group is taken back before its cut), durable_* the end of what
	 * the last successful fdatasync of the active file covered. Both
	 * change under sync_lock; durable_* also under durable_lock (a leaf
	 * lock), which engine_fail takes to write the marker from either side
	 * of sync_lock. durable_* never moves once failed_rc is set. */
	uint64_t written_seq, written_pos;
	pthread_mutex_t durable_lock;
	uint64_t durable_seq, durable_pos;
	/* A read-only open of a directory holding a failed-sync marker reads
	 * the WAL only up to it (file ro_cap_seq up to ro_cap_pos, nothing
	 * after) and refreshes no more frames (recovery sets these). */
	bool ro_capped;
	uint64_t ro_cap_seq, ro_cap_pos;

	/* The append listener (commit_lock); listener_busy while the token
	 * holder is calling it, commit_done broadcast when it stops being. */
	engine_append_fn listener;
	void *listener_arg;
	bool listener_busy;

	/* The warm tier (indexer.c). A reader that copied hot-index entries
	 * under a partition lock takes wal_retire_lock for reading before it
	 * drops that lock and holds it while it preads those frames, so the
	 * indexer (which drops the entries first, then takes the lock for
	 * writing to close the file) never closes a descriptor under it.
	 * warm_lock serializes the changes of a partition's segment list and
	 * registry (the indexer, retention, DeleteRecords, the cold tier's
	 * swap, compaction's snapshot and swap) with topic deletion (which
	 * removes the topic's segment directory); compaction's rewrite runs
	 * without it.
	 *
	 * LOCK ORDER (a thread holding one takes only locks below it):
	 *   compact_lock       one compaction at a time (compact.c)
	 *   compactor_lock     the compaction thread's wake-ups (not held
	 *                      while compacting)
	 *   indexer_lock       (never held while indexing)
	 *   warm_lock
	 *   meta_lock          (read)
	 *   hook_lock          the filter table and the segment hook
	 *   p->lock, files_lock, wal_retire_lock (leaves as before)
	 * The compaction thread calls filters and the segment hook holding
	 * compact_lock only, so the indexer, retention, topic deletion and the
	 * cold tier never wait for a rewrite. They do wait for one hook call
	 * (hook_lock makes the hook one segment at a time, and the indexer
	 * calls it under warm_lock): a hook that does slow work inline (a
	 * search index built synchronously, as in library use) delays them
	 * by that call; chronikd's hook only queues the segment for the
	 * builder threads (search/builder.c), so there the wait is short. */
	pthread_rwlock_t wal_retire_lock;
	pthread_mutex_t warm_lock;
	/* Compaction filters by name (compact.c) and the segment hook
	 * (engine_segment_hook_set), guarded by hook_lock. A segment hook call
	 * holds it, so the hook is called one segment at a time. A filter is
	 * looked up under it by the compaction that calls it, which holds
	 * compact_lock meanwhile; engine_compact_filter_register takes
	 * compact_lock first, so a filter removed is not called once it
	 * returns. */
	pthread_mutex_t hook_lock;
	struct compact_filter *filters;
	size_t nfilters;
	engine_segment_written_fn seg_written;
	void *seg_written_arg;
	/* The compaction thread (compact.c, "WHEN"): compactor_lock guards the
	 * flags and counters below. compact_pass_begun counts the passes
	 * begun, compact_pass_ended those ended (broadcast on compactor_done),
	 * compact_pass_err is the last ended pass's first error. */
	pthread_mutex_t compact_lock;
	pthread_mutex_t compactor_lock;
	pthread_cond_t compactor_wake, compactor_done;
	bool compactor_stop, compactor_kicked, compactor_running;
	uint64_t compact_pass_begun, compact_pass_ended;
	int compact_pass_err;
	pthread_t compactor_thread;
	pthread_mutex_t indexer_lock;
	pthread_cond_t indexer_wake;
	bool indexer_stop, indexer_kicked, indexer_running;
	/* indexer_idle_gen counts the passes that ended, broadcast on
	 * indexer_idle: an idle pass ends under indexer_lock right after a
	 * look that found no sealed WAL file (a file sealed during its
	 * retention and compaction is indexed first), a failed file's pass
	 * ends with indexer_err set. */
	pthread_cond_t indexer_idle;
	uint64_t indexer_idle_gen;
	int indexer_err; /* the last pass's error, 0 = all indexed */
	/* A failing WAL file is retried after index_backoff_ms, doubling from
	 * INDEX_BACKOFF_MIN_MS to INDEX_BACKOFF_MAX_MS, sooner only when
	 * engine_index_now asks (index_urgent; a rotation's kick does not cut
	 * the wait short). index_fail_rc: the failure being retried (0 =
	 * none); it is logged when it starts, changes and ends, not at every
	 * retry. All three under indexer_lock. */
	int index_fail_rc;
	unsigned index_backoff_ms;
	bool index_urgent;
	/* Set once when a registry may or may not list a segment on disk (a
	 * registry save failed after its rename could have happened, or
	 * publishing a saved segment failed): memory no longer knows what
	 * the disk says, so indexing stops until the next open, which reads
	 * the registry and keeps the WAL file (indexer.c). Never cleared. */
	atomic_int indexer_halt_rc;
	bool seal_now; /* commit_lock: engine_index_now asks the commit thread to seal */
	pthread_t indexer_thread;
	int64_t active_birth_ns; /* token holder: first frame in the active file; 0 = empty */

	/* Back-pressure (commit.c, "BACK-PRESSURE"). wal_sealed_bytes: the
	 * bytes of the sealed WAL files not yet indexed (sum of their
	 * wal_file.bytes); the commit thread adds a file's size when it seals
	 * it, the indexer subtracts it when it removes the file (both under
	 * files_lock; atomic so the commit thread reads it without).
	 * backpressure_off: appends are not held back (no indexer thread, or
	 * it is failing, halted or stopped); set by indexer_start and the
	 * indexer thread, read by the commit thread, which the indexer wakes
	 * (commit_wake) after each file it removes and whenever this changes.
	 * queue_len (commit_lock): requests queued; bp_holding (commit_lock):
	 * the commit thread is holding them back. */
	atomic_uint_fast64_t wal_sealed_bytes;
	atomic_bool backpressure_off;
	size_t queue_len;
	bool bp_holding;

	/* The cold tier (tier.c): NULL until engine_remote_attach. */
	struct tier *tier;

	/* Counters (engine_stats_get); written by the token holder. */
	atomic_uint_fast64_t st_appends, st_groups, st_bytes, st_fsyncs, st_failed;
	atomic_uint_fast64_t st_unindexed, st_unindexed_max, st_bp_waits;
};

/* Topic helpers (meta.c); callers hold meta_lock. */
struct topic *meta_topic_find(struct engine *e, const char *name);
struct topic *meta_topic_find_id(struct engine *e, uint32_t id);
int meta_open(struct engine *e);
int meta_refresh(struct engine *e);
void meta_close(struct engine *e);

/* WAL files (recover.c). */
int wal_recover(struct engine *e);
int wal_file_create(struct engine *e, uint64_t seq, int *fd_out);
int wal_fd_get(struct engine *e, uint32_t seq);
/* Add an open WAL file to e->files (caller holds files_lock once readers
 * may look). */
int wal_files_push(struct engine *e, uint64_t seq, int fd);
/* Drop the leading entries of removed files (fd -1) from e->files, never
 * the last (active) one; caller holds files_lock. */
void wal_files_trim(struct engine *e);
void wal_path(const struct engine *e, uint64_t seq, char *buf, size_t len);

/* Commit thread (commit.c). */
int commit_start(struct engine *e);
void commit_stop(struct engine *e);
/* Queue a batch and wait for its group. raw_len: the batch's raw-view size
 * when the caller knows it, -1 to have it computed from the records. */
int commit_submit(struct partition *p, uint8_t *batch, size_t len, int64_t raw_len,
		  int64_t *base_offset);

/* The warm tier (indexer.c). warm_load: read every partition's registry
 * (a writer also removes unregistered segment files and the directories of
 * deleted topics); called by wal_recover once the WAL files are open,
 * before they are scanned. */
int warm_load(struct engine *e);
/* A read-only engine: take up the segments the writer registered since
 * (dropping the hot entries they cover). engine_refresh calls it after
 * opening the new WAL files and before reading them. */
int warm_refresh(struct engine *e);
int indexer_start(struct engine *e);
void indexer_stop(struct engine *e);
/* One retention pass over every partition (retention.c); the indexer
 * thread runs it after each WAL file it indexes, and when idle at least
 * every RETENTION_CHECK_MS. */
#define RETENTION_CHECK_MS 1000
int retention_run(struct engine *e);
/* A topic config's retention.bytes, or -1 when there is none or its
 * cleanup.policy does not include delete (retention.c). */
int64_t retention_bytes_limit(const char *config_json);
/* The largest segment the indexer writes for a partition under
 * retention.bytes limit (retention.c, "DISK"): limit / 8, at least
 * RETENTION_CUT_MIN. */
#define RETENTION_CUT_MIN (64u << 10)
uint64_t retention_cut_bytes(int64_t limit);
/* Before the indexer writes a segment of at most bytes: delete p's oldest
 * segments while the rest plus bytes would pass limit (-1: none), by
 * retention's rules (retention.c, "DISK", rule 2). warm_lock held. */
int retention_make_room(struct engine *e, struct partition *p, int64_t limit, uint64_t bytes);
/* What of p's compact_bytes retention counts with its segments: the part
 * past compaction's allowance, wal_segment_bytes (compact.c, "DISK").
 * p->lock held. */
uint64_t compact_counted_bytes(const struct engine *e, const struct partition *p);
struct compact_filter {
	char *name;
	engine_compact_fn fn;
	void *arg;
};
/* One compaction pass over every partition whose dirty ratio passes
 * (compact.c, "WHEN"); the compaction thread runs it. */
int compact_run(struct engine *e);
/* The compaction thread (compact.c): started and stopped with the
 * indexer; compactor_kick wakes it for a pass (the indexer, after it
 * indexed a file). */
int compactor_start(struct engine *e);
void compactor_stop(struct engine *e);
void compactor_kick(struct engine *e);
/* The shipped filter "value.prefix" (compact.c). */
int compact_filter_value_prefix(void *arg, const char *config_json, const struct engine_record *r);

/* The codec the topic's compression.type re-encodes uncompressed batches
 * with (BATCH_CODEC_NONE: keep them as they are); indexer.c. */
enum batch_codec warm_store_codec(const char *config_json);
/* A topic config's integer value in o (a JSON number or a decimal string),
 * or the key's default (topic_config.c) when o is NULL, lacks it, or holds
 * something else. */
int64_t topic_config_i64(json_object *o, const char *key);
/* Every pair of the config object o through engine_topic_config_check,
 * but those keep (the config stored so far, or NULL) holds with the same
 * value: a topic stored before a rule was tightened can still have its
 * other keys changed. 0, or -EINVAL with "KEY: why" in why (len bytes;
 * why may be NULL). */
int topic_config_check_object(json_object *o, json_object *keep, char *why, size_t len);
/* Tell the indexer a WAL file was sealed. */
void indexer_kick(struct engine *e);
/* Wake the commit thread to look at back-pressure again (indexer). */
void commit_wake_up(struct engine *e);
/* Remove a deleted topic's segments (engine_topic_delete). */
void warm_topic_drop(struct engine *e, uint32_t topic_id);
/* Call the segment hook (engine_segment_hook_set) for the segment file
 * just written at path, under hook_lock (segment_hook.c). */
void warm_segment_written(struct engine *e, struct partition *p, const char *path);
/* Path of DATA/segments/<topic-id>/<partition> (partition < 0: the topic's). */
void warm_dir(const struct engine *e, uint32_t topic_id, int32_t partition, char *buf, size_t len);
/* A V1 frame (frame_decode'd) re-encoded as a one-record batch at its
 * offset (read.c); *out malloc'd. */
int frame_v1_as_batch(const uint8_t *frame, size_t len, uint8_t **out, size_t *out_len);

/* The cold tier (tier.c). A registered segment as a struct segment: a
 * local one at dir/<file>, a remote one at its cache path with the fetch
 * hook set. tier_stop ends the upload thread (engine_close, first);
 * tier_free releases the rest. tier_remote_delete: retention dropped m,
 * delete its object when it is remote (best effort, logged). */
int tier_segment_new(struct engine *e, uint32_t topic_id, int32_t partition, const char *dir,
		     const struct segment_meta *m, struct segment **out);
void tier_stop(struct engine *e);
void tier_free(struct engine *e);
void tier_remote_delete(struct engine *e, const struct segment_meta *m);
/* engine_verify's check of one segment: segment_verify on a local one; a
 * remote one only when a store is attached (chronik verify --remote):
 * the object's size and ETag against the registry, then a fetched copy
 * (CRC32C) by segment_verify. Without a store it is skipped (0). */
int tier_segment_verify(struct engine *e, struct segment *s, segment_problem_fn problem, void *arg);

/* Partitions (engine.c). */
struct partition *partition_new(struct engine *e, struct topic *t, int32_t index);
/* Room for need entries (doubling from 64); caller holds p->lock. */
int partition_index_reserve(struct partition *p, size_t need);
int partition_index_push(struct partition *p, const struct hot_entry *he);

/* Enter the FAILED state with rc (logged once; later calls keep the first). */
void engine_fail(struct engine *e, int rc, const char *why);
/* Caller holds sync_lock: a successful fdatasync of the active file made
 * everything written durable (durable_* := written_*), unless FAILED. */
void engine_synced(struct engine *e);
/* syncmark.c: the failed-sync marker (format there). write: 0 or -errno;
 * read: 0 with *found false when there is none, CHRONIK_ECORRUPT when it
 * is damaged; remove: unlink + directory fsync. */
int wal_syncmark_write(struct engine *e, uint64_t seq, uint64_t pos);
int wal_syncmark_read(struct engine *e, bool *found, uint64_t *seq, uint64_t *pos);
int wal_syncmark_remove(struct engine *e);

/* Wall clock, for timestamps that are stored or shown (record timestamps,
 * mtimes, ctimes). */
int64_t now_ns(void);
int64_t now_ms(void);
/* CLOCK_MONOTONIC, for every interval and deadline: a step of the wall
 * clock must not delay an fsync or a long poll. */
int64_t mono_ns(void);
/* Initialize a condition variable whose timed waits take CLOCK_MONOTONIC
 * deadlines. */
int cond_init_monotonic(pthread_cond_t *c);
int fsync_dir(int dir_fd);

#endif
