/* registry.h - a partition's segment registry: which segments make up its
 * warm history.
 *
 * FILE
 * ----
 * DATA/segments/<topic-id>/<partition>/registry.json, one JSON object
 * (json-c), rewritten whole on every change:
 *
 *   {
 *     "version": 1,
 *     "topic_id": 7,               the directory's topic id
 *     "partition": 0,
 *     "log_start_offset": 0,       first offset a reader may ask for:
 *                                  retention moves it to a segment's
 *                                  base offset; DeleteRecords
 *                                  (engine_partition_delete_records) to
 *                                  any offset up to next_offset, so it
 *                                  may lie inside the first segment
 *                                  (version 3)
 *     "raw_start": 0,              raw-view position of the first record
 *                                  at or after log_start_offset (raw_end
 *                                  when none is registered)
 *     "next_offset": 1200,         last segment's last offset + 1
 *     "raw_end": 9000,             last segment's raw end
 *     "segments": [                in offset order, ranges disjoint
 *       { "file": "00000000000000000000.seg",
 *         "state": "live",         "live" (the file is in this directory)
 *                                  or, version 2 only, "remote"
 *                                  (wal/tier.c: the file is in the
 *                                  object store; no local copy counts)
 *         "base_offset": 0, "last_offset": 1199,
 *         "min_timestamp": ..., "max_timestamp": ...,
 *         "raw_start": 0, "raw_end": 9000,
 *         "bytes": 4242,           file size
 *         "data_end": 4100,        where the batches end (segment.h)
 *         "records": 1200, "batches": 3,
 *         "wal_seq": 12,           the WAL file the batches came from
         "gen": 1 }               only when not 0: the segment was written
                                  by compaction (wal/compact.c), gen times
                                  over; its file is "%020lld.g<gen>.seg"
                                  so that it never has the name of the
                                  segment it replaces
 *       plus, when "state" is "remote" (all three required):
 *         "remote_key": "chronik/7/0/00000000000000000000.seg",
 *                                  the object's key in the bucket
 *                                  (1-255 bytes)
 *         "etag": "\"9b2c...\"",    the store's ETag of it (< 72 bytes)
 *         "crc32c": 123456789      CRC32C of the whole file, checked
 *                                  against every copy fetched back
 *     ]
 *   }
 *
 * VERSIONS: version 1 knows only "live"; version 2 adds "remote";
 * version 3 lets log_start_offset lie past the first segment's base
 * offset (records deleted from inside it by DeleteRecords: they stay in
 * the file and are never read). A save writes the lowest version that
 * describes the registry: 3 when log_start_offset > the first segment's
 * base_offset, else 2 when a segment is remote, else 1 (so a registry
 * that never saw the cold tier or DeleteRecords stays readable by older
 * builds); a load reads all three, holds versions 1 and 2 to
 * log_start_offset <= the first segment's base_offset, and refuses any
 * other version with CHRONIK_EVERSION. There is no
 * persisted "uploading" state on purpose: while an upload runs the
 * registry says "live" and the local file is the only copy that counts;
 * an object in the bucket that the registry does not name counts for
 * nothing and is overwritten by the next upload of that segment (the
 * upload protocol, wal/tier.c).
 *
 * Integers are JSON numbers (json-c int64; u64 fields stay below 2^63).
 * A segment's offsets are in [0, 2^63 - 1): a base_offset below 0 or a
 * last_offset of 2^63 - 1 (whose next offset would not be one) is corrupt.
 * next_offset and raw_end also hold when every segment is gone (retention),
 * so the partition's offsets and raw positions continue where they were.
 *
 * UPDATE RULE (LevelDB's CURRENT, in one step): the new text is written to
 * registry.json.tmp, fsynced, renamed over registry.json, and the directory
 * fsynced. A reader sees the old registry or the new one, never a mix; a
 * crash leaves one of them and at worst a stray .tmp that the next save
 * overwrites.
 *
 * WHAT COUNTS (crash safety, wal/indexer.c): a segment file counts only once
 * the registry lists it. A WAL frame of a partition counts unless the
 * partition's registry already covers its offsets (frame base offset <
 * next_offset), in which case recovery skips it. The indexer writes and
 * fsyncs a segment, then saves the registry, then (once every partition's
 * registry covers the WAL file) deletes the WAL file. So a crash leaves each
 * frame counted exactly once: in the WAL (segment not yet listed: recovery
 * removes the unlisted file) or in a segment (registry saved: recovery skips
 * the frame, the indexer deletes the WAL file on its next pass).
 */
#ifndef CHRONIK_REGISTRY_H
#define CHRONIK_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "segment.h"

#define REGISTRY_FILE "registry.json"
#define REGISTRY_VERSION 3

struct registry {
	int64_t log_start_offset;
	uint64_t raw_start;
	int64_t next_offset;
	uint64_t raw_end;
	struct segment_meta *segs;
	size_t n;
};

/* Read dir/registry.json into *r (caller frees with registry_fini). A
 * missing file is an empty registry (0). CHRONIK_ECORRUPT when the file
 * does not parse or breaks the rules above (order, disjoint ranges). */
int registry_load(const char *dir, uint32_t topic_id, int32_t partition, struct registry *r);
/* Write r as dir/registry.json by the update rule. */
int registry_save(const char *dir, uint32_t topic_id, int32_t partition, const struct registry *r);
/* The file name of a segment: "%020lld.seg" of its base offset. */
void registry_segment_name(int64_t base_offset, char *buf, size_t len);
/* The file name of the segment m describes: registry_segment_name's when
 * m->gen is 0, else "%020lld.g%u.seg" of its base offset and gen. */
void registry_segment_file(const struct segment_meta *m, char *buf, size_t len);
void registry_fini(struct registry *r);

#endif
