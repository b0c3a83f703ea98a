/* compact.c - compaction: rewriting a partition's segments without the
 * records its topic's cleanup policy no longer needs.
 *
 * WHAT IS CLEANED. Every registered segment of the partition but the
 * newest (Kafka's active segment: the one later appends continue) - the
 * "cleanable" segments. The WAL not yet indexed is never touched: it
 * becomes a segment first. With fewer than two segments nothing is done.
 *
 * POLICY (per topic, its config; Kafka's names where Kafka has one):
 *   cleanup.policy "compact": key-based. A first pass over the cleanable
 *       segments builds the offset map: key -> offset of its last record
 *       there (Kafka's LogCleaner). It reads each segment's key table
 *       (segment.h: each key of the segment once, a 128-bit digest and
 *       the offset of its newest record there; the largest over the
 *       segments is the newest), so that no batch is decompressed or
 *       decoded for it; a
 *       segment without one (version 1, a remote segment, whose cache
 *       file need not hold the table, or a table failing its CRC) has its
 *       records decoded as before. The map is keyed by the digest, 24
 *       bytes a key whatever its length (it held the key bytes before):
 *       two keys with one digest count as one key (segment.h,
 *       "COLLISIONS": below 2^-89 for a million keys; Kafka's cleaner
 *       takes the same risk with MD5). engine_compact_result counts the
 *       key table entries read and the records decoded for the map. A
 *       second pass keeps a record when
 *       it has no key (a record without a key cannot be superseded), or
 *       when it is the record the map names for its key. A newer record of
 *       the key in the newest segment or the WAL does not count: the map
 *       covers what is cleaned only, as Kafka's does.
 *     Tombstones: a kept record whose value is null is a tombstone. It
 *       stays while its timestamp >= now - delete.retention.ms (default
 *       86400000, Kafka's) and is dropped by the first compaction after.
 *       Kafka counts from the time the segment holding it was first
 *       cleaned; here the record's own timestamp counts, so that nothing
 *       but the records decides (no per-segment clean time to keep), and
 *       a tombstone a producer stamped long ago goes at the next clean.
 *   cleanup.policy "delete" with retention.ms >= 0: time-based. Inside the
 *       cleanable segments, a record whose timestamp < now - retention.ms
 *       is dropped (retention.c drops whole segments whose newest record
 *       is that old; this drops the older records of the segments that
 *       remain). retention.bytes stays retention.c's: whole segments.
 *   "compact,delete" (or "delete,compact"): hybrid, time then key: a
 *       record is kept only if both keep it. The offset map is built over
 *       every record, also those time drops, so that an older version of
 *       a key never comes back because its newer version expired.
 *   A custom filter (engine_compact_filter_register): when the topic's
 *       config names one in "compaction.filter", the engine calls it for
 *       every record the rules above keep; it answers keep (1) or drop
 *       (0). It runs whatever cleanup.policy says (a topic naming a filter
 *       is compacted even under "delete"). It is called on the compacting
 *       thread holding compact_lock and nothing else (the indexer and
 *       retention go on); engine_compact_filter_register takes
 *       compact_lock, so it waits for a compaction under way, and a
 *       filter removed is never called after it returns.
 *
 * REWRITE. The kept records of the cleanable segments are written to new
 * segments (segment.h), one for each run of cleanable segments of at most
 * COMPACT_GROUP_BYTES input bytes. Each run of kept records contiguous in
 * offsets becomes one batch (split every SEGMENT_MERGE_BYTES), so every
 * hole falls between two batches and the segment's index has an entry
 * there; each record keeps its offset, timestamp, key, value and headers,
 * and its raw position (the run's first record's, then line after line,
 * as they were). Batches are encoded anew: producerId -1, CreateTime,
 * compressed with the topic's compression.type as the indexer does
 * (kept uncompressed when that does not pay). A group whose records are
 * all dropped writes no segment. The new file of a group is named after
 * its first kept offset and a generation one above its inputs' highest
 * (registry.h, "gen"), so it never takes the name of a file still listed.
 *
 * WHY SCATTERED SURVIVORS ARE NOT MERGED. Kafka's cleaner may put kept
 * records with offset holes between them into one batch (offsetDelta may
 * skip). Here a batch cannot span a hole: a record's raw position is not
 * stored, it is its batch's raw position plus the lines of the records
 * before it in the batch (segment.h), and every dropped record took at
 * least one raw byte (its '\n'), so a merged batch would move the raw
 * positions of the records after the first hole, which compaction must
 * keep (cat, dd skip= and tail -f offsets of a kept line never change).
 * The cost: a kept record with dropped neighbours on both sides takes a
 * batch of its own, 61 bytes of batch header and a 32-byte index entry
 * on top of its record, uncompressed when compressing it alone does not
 * pay (key compaction of many keys rewritten in turn is the worst case).
 * Merging would take a format change (a raw position per record, or a
 * table of raw gaps per batch in the segment) and a cursor that walks
 * holes inside a batch; not done.
 *
 * SNAPSHOT AND SWAP. One compaction runs at a time (compact_lock: the
 * compaction thread's and engine_partition_compact's); warm_lock (which
 * the indexer, retention, DeleteRecords, topic deletion and the cold
 * tier's swap take) is held only at the two ends:
 *   1. the snapshot, under warm_lock: a reference on each cleanable
 *      segment (segs[0, k), k = nsegs - 1) and the log start offset;
 *   2. the rewrite, without it: the passes above read the snapshot's
 *      segments through a cursor, the filter is called, the new
 *      segments are written and fsynced (each file created under
 *      warm_lock, so that a topic deletion removes it or is seen first),
 *      the segment hook is called, the directory fsynced; meanwhile the
 *      indexer appends segments after the snapshot's, retention drops
 *      whole segments, readers go on;
 *   3. the swap, under warm_lock: only when the inputs are still the
 *      head of the list, the same segments (retention or DeleteRecords
 *      did not drop one, the cold tier did not swap one for its remote
 *      copy), the log start unchanged (DeleteRecords did not move it
 *      inside them), the topic not deleted and the partition not halted.
 *      Then the registry is saved with the new segments in place of the
 *      inputs and the segments after them as they are now (registry.h,
 *      update rule): the one atomic step; then, under the partition lock,
 *      the new segments replace the inputs in the list; each input is
 *      removed from disk at its last unref, so a reader holding one
 *      finishes on it (segment.h).
 * When the inputs changed (also when the rewrite failed because they did:
 * a segment gone under the cursor), the new files are removed and the
 * compaction starts again at step 1, up to COMPACT_RETRIES (3) times;
 * then engine_partition_compact returns -EAGAIN and the partition waits
 * for the next pass. A topic deleted meanwhile ends it with 0.
 *
 * CRASH SAFETY. A crash before the save's rename leaves the old set
 * registered and the new files unlisted; after it, the new set registered
 * and the old files unlisted. Either way the next open removes the files
 * no registry lists (warm_load), so the partition holds the old set or
 * the new one, never a mix, never neither. Log start offset, next offset
 * and raw end do not change.
 *
 * HALT. A failed save (a write, the temp file's fsync, the rename, the
 * directory's fsync) may have left either registry on disk: the rename
 * may have happened before the directory fsync failed. Memory keeps the
 * old set, but if the disk lists the new one, any later save of this
 * partition's registry from memory (the indexer's next segment,
 * retention, the cold tier) would list the old segments again, some of
 * them beside files the disk's registry already dropped, others replaced
 * by new ones the next open would then remove: a mix, or records counted
 * twice. So the partition's warm tier halts (warm_halt_rc, an ERROR in
 * the log, engine_partition_info's warm_halted, "warm_halted" in
 * info.json): from then on no registry of it is saved in this engine.
 * The indexer indexes a WAL file's other partitions and keeps the file
 * (open, for this partition's reads, and for the next open: nothing is
 * lost); retention, compaction and the cold tier's upload skip it;
 * DeleteRecords and engine_partition_compact return the save's error.
 * Reads and appends go on (its records stay in the hot index and the
 * WAL, which grows). Both sets' files stay. Reopening the engine recovers:
 * warm_load keeps the set the registry lists and removes the other
 * files, recovery skips the kept WAL files' frames that registries cover
 * and takes up the rest.
 *
 * DISK. Under retention.bytes L (retention.c, "DISK"), the segments sit
 * just under L in steady state, so compaction's new files, written beside
 * their inputs until the swap replaces these, get an allowance A over it:
 * A = wal.segment.bytes (the engine option wal_segment_bytes). Before
 * each batch is written, the most it adds to its file (the batch, an
 * index entry, a key table entry per record, the header and the format 2
 * trailer of a new file) is added to the
 * partition's compact_bytes C, and refused (-ENOSPC, the compaction
 * abandoned, its files removed) when
 *     segments + R + C > L + A,
 * R being the bound of the segment the indexer is writing for the
 * partition, reserved by its make-room until the segment is listed
 * (seg_reserved). Retention's passes and the indexer's make-room count
 * only the part of C past the allowance, max(0, C - A)
 * (compact_counted_bytes), with the segments. So:
 *   - at every moment segments + R + C <= L + A: compaction checks it as
 *     C grows; make-room keeps segments + R + max(0, C - A) <= L, which
 *     is segments + R <= L while C <= A and segments + R + C <= L + A
 *     after; the swap only shrinks the sum (the new files were counted in
 *     C, the inputs leave the segments). The partition's segment files
 *     and compaction's together never pass retention.bytes +
 *     wal.segment.bytes; a partition not being compacted keeps retention's
 *     bound, retention.bytes.
 *   - a compaction whose output fits in A never makes retention drop
 *     anything (least of all its inputs), so at the limit a compaction
 *     that shrinks the segments to A or less completes; one whose output
 *     needs more than A can still use the room the segments leave under
 *     L, but that part counts against L, and if the indexer then makes
 *     room by dropping compaction's inputs, the compaction retries
 *     (SNAPSHOT AND SWAP). An output larger than the room fails -ENOSPC
 *     (and the background backs off, WHEN).
 * Make-room that drops inputs while compaction reads them leaves those
 * files on disk until compaction lets go of them (retention.c, "DISK":
 * a reader's segments are outside the bound). A new segment can also be
 * refused room while make-room is saving the registry without the
 * segments it drops (they count until then): compaction fails -ENOSPC
 * and tries again after the segment (WHEN). compact_bytes goes back to 0
 * at the swap (the new files are then counted as segments) or when they
 * are removed.
 *
 * WHEN. On demand (engine_partition_compact, `chronik compact`), and in
 * the background: a compaction thread of its own (compactor_main; none in
 * a read-only engine or one opened with no_index, started and stopped with
 * the indexer) runs a pass (compact_run) each time the indexer has
 * indexed a WAL file (compactor_kick) and at least every
 * RETENTION_CHECK_MS. engine_compact_now kicks it and waits for the end
 * of a pass begun after the call (a pass counts as begun in the same hold
 * of compactor_lock that takes the kick). A pass compacts each partition
 * of a topic whose cleanup.policy includes compact, or whose config names a
 * registered compaction.filter, once its dirty ratio is above
 * min.cleanable.dirty.ratio (default 0.5, Kafka's; a JSON number or a
 * decimal string in [0, 1]; 1 keeps the background out, as nothing is
 * dirtier than 1). The dirty ratio is, over the cleanable
 * segments, the bytes of those never compacted (gen 0: as the indexer
 * wrote them) over all their bytes; the registry's gen keeps it across
 * restarts. Time-only policies ("delete" with retention.ms) are left to
 * retention.c's whole segments in the background; their in-segment drop
 * runs on demand. A halted partition is skipped, and with the indexer
 * halted (indexer_halt_rc) no pass runs.
 *   Backoff: a compaction of a partition that failed with -ENOSPC (DISK)
 * or -EAGAIN (SNAPSHOT AND SWAP) would fail the same way on the same
 * segments, so the partition remembers the failure (its error, its
 * segs_changes, a counter bumped whenever its segment list changes: a
 * segment listed, dropped, swapped for compaction's output or for its
 * remote copy; and its retention.bytes), and the background pass skips
 * the partition, reporting the remembered error, while the counter and
 * retention.bytes are unchanged. The counter remembered is the failed
 * attempt's snapshot's for -ENOSPC, the one at the failure for -EAGAIN
 * (its changes were the cause). Any compaction sets or clears it (an
 * on-demand one fails the same as the background's would); on demand
 * always tries. Other config changes (min.cleanable.dirty.ratio, the
 * policy) and time (tombstones and retention.ms expiring) take effect at
 * the next segment change or on demand.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "byteorder.h"
#include "engine-private.h"
#include "log.h"
#include "recode.h"
#include "registry.h"

#define COMPACT_GROUP_BYTES ((uint64_t)256 << 20)

struct compact_policy {
	bool key; /* cleanup.policy has compact */
	double min_dirty; /* min.cleanable.dirty.ratio */
	int64_t retention_ms; /* -1: no time rule */
	int64_t delete_retention_ms;
	char *filter; /* compaction.filter, NULL if none */
	int64_t bytes_limit; /* retention.bytes when it applies, else -1 (DISK) */
};

static void policy_parse(const char *config_json, struct compact_policy *pol)
{
	json_object *o = config_json ? json_tokener_parse(config_json) : NULL, *v;
	bool del = true;

	pol->key = false;
	pol->retention_ms = topic_config_i64(NULL, "retention.ms");
	pol->delete_retention_ms = topic_config_i64(NULL, "delete.retention.ms");
	pol->filter = NULL;
	pol->bytes_limit = -1;
	pol->min_dirty = strtod(engine_topic_config_default("min.cleanable.dirty.ratio"), NULL);
	if (!o)
		return;
	if (json_object_object_get_ex(o, "min.cleanable.dirty.ratio", &v)) {
		char *end;
		const char *str = json_object_get_string(v);
		double d = strtod(str, &end);
		if (end != str && !*end && d >= 0 && d <= 1)
			pol->min_dirty = d;
	}
	if (json_object_object_get_ex(o, "cleanup.policy", &v)) {
		const char *s = json_object_get_string(v);
		pol->key = strstr(s, "compact") != NULL;
		del = strstr(s, "delete") != NULL;
	}
	if (del)
		pol->retention_ms = topic_config_i64(o, "retention.ms");
	pol->delete_retention_ms = topic_config_i64(o, "delete.retention.ms");
	if (json_object_object_get_ex(o, "compaction.filter", &v) &&
	    json_object_is_type(v, json_type_string))
		pol->filter = strdup(json_object_get_string(v));
	json_object_put(o);
}

/* ---- the offset map ------------------------------------------------------ */

/* Key digest (segment_key_digest) -> the highest offset seen with it; 24
 * bytes a key, whatever the key's length. Open addressing, linear
 * probing on digest word 0. */
struct map_slot {
	uint64_t d[2];
	int64_t offset1; /* offset + 1; 0 = empty */
};

struct offset_map {
	struct map_slot *slots;
	size_t cap, n; /* cap a power of two */
};

static struct map_slot *map_find(struct offset_map *m, const uint64_t d[2])
{
	size_t i = d[0] & (m->cap - 1);
	for (;; i = (i + 1) & (m->cap - 1)) {
		struct map_slot *s = &m->slots[i];
		if (s->offset1 == 0 || (s->d[0] == d[0] && s->d[1] == d[1]))
			return s;
	}
}

static int map_grow(struct offset_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct map_slot *old = m->slots, *v = calloc(cap, sizeof(*v));
	size_t ocap = m->cap;
	if (!v)
		return -ENOMEM;
	m->slots = v;
	m->cap = cap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].offset1 == 0)
			continue;
		size_t j = old[i].d[0] & (cap - 1);
		while (v[j].offset1)
			j = (j + 1) & (cap - 1);
		v[j] = old[i];
	}
	free(old);
	return 0;
}

static int map_put(struct offset_map *m, const uint64_t d[2], int64_t offset)
{
	struct map_slot *s;

	if ((m->n + 1) * 4 > m->cap * 3) {
		int rc = map_grow(m);
		if (rc)
			return rc;
	}
	s = map_find(m, d);
	if (s->offset1 == 0) {
		s->d[0] = d[0];
		s->d[1] = d[1];
		m->n++;
	}
	if (offset + 1 > s->offset1)
		s->offset1 = offset + 1;
	return 0;
}

static int64_t map_get(struct offset_map *m, const uint8_t *k, int32_t len)
{
	uint64_t d[2];

	if (!m->cap)
		return -1;
	segment_key_digest(k, (size_t)len, d);
	return map_find(m, d)->offset1 - 1;
}

static void map_fini(struct offset_map *m)
{
	free(m->slots);
}

/* Pass 1 over one cleanable segment: its key table when it has one, else
 * (version 1, remote, or a table that fails its CRC) its records decoded
 * through a cursor. */
static int map_segment(struct partition *p, struct segment *s, struct offset_map *map,
		       struct engine_compact_result *res)
{
	const struct segment_meta *m = segment_meta_get(s);
	struct segment_key *keys = NULL;
	struct engine_cursor *c = NULL;
	struct engine_record r;
	size_t n = 0;
	int rc = segment_read_begin(s);

	if (rc == 0) {
		rc = segment_read_keys(s, &keys, &n);
		segment_read_end(s);
		if (rc == CHRONIK_ECORRUPT) {
			log_msg(LOG_LVL_WARN, "compact", "%s: key table: %s; decoding its batches",
				segment_path(s), chronik_strerror(rc));
			rc = 1;
		}
	}
	if (rc < 0)
		return rc;
	if (rc == 0) {
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = map_put(map, keys[i].digest, keys[i].offset);
		free(keys);
		res->map_keys_read += n;
		return rc;
	}
	rc = engine_cursor_open(p, m->base_offset, &c);
	while (rc == 0 && (rc = engine_cursor_next(c, &r)) == 1 && r.offset <= m->last_offset) {
		res->map_records_decoded++;
		rc = 0;
		if (r.key_len >= 0) {
			uint64_t d[2];
			segment_key_digest(r.key, (size_t)r.key_len, d);
			rc = map_put(map, d, r.offset);
		}
	}
	engine_cursor_close(c);
	return rc > 0 ? 0 : rc;
}

/* ---- custom filters -------------------------------------------------------- */

int engine_compact_filter_register(struct engine *e, const char *name, engine_compact_fn fn,
				   void *arg)
{
	int rc = 0;

	if (!name || !*name)
		return -EINVAL;
	/* compact_lock first: a compaction under way keeps the filter it
	 * looked up until it ends. */
	pthread_mutex_lock(&e->compact_lock);
	pthread_mutex_lock(&e->hook_lock);
	for (size_t i = 0; i < e->nfilters; i++) {
		if (strcmp(e->filters[i].name, name) == 0) {
			if (fn) {
				e->filters[i].fn = fn;
				e->filters[i].arg = arg;
			} else {
				free(e->filters[i].name);
				e->filters[i] = e->filters[--e->nfilters];
			}
			goto out;
		}
	}
	if (!fn)
		goto out;
	struct compact_filter *v = realloc(e->filters, (e->nfilters + 1) * sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	e->filters = v;
	v[e->nfilters].name = strdup(name);
	if (!v[e->nfilters].name) {
		rc = -ENOMEM;
		goto out;
	}
	v[e->nfilters].fn = fn;
	v[e->nfilters].arg = arg;
	e->nfilters++;
out:
	pthread_mutex_unlock(&e->hook_lock);
	pthread_mutex_unlock(&e->compact_lock);
	return rc;
}

/* The shipped example: "value.prefix" drops the records whose value starts
 * with the topic's compaction.drop.value.prefix (a non-empty string;
 * without one it keeps everything). */
int compact_filter_value_prefix(void *arg, const char *config_json, const struct engine_record *r)
{
	json_object *o = config_json ? json_tokener_parse(config_json) : NULL, *v;
	int keep = 1;

	(void)arg;
	if (o && json_object_object_get_ex(o, "compaction.drop.value.prefix", &v) &&
	    json_object_is_type(v, json_type_string)) {
		const char *pfx = json_object_get_string(v);
		size_t n = strlen(pfx);
		if (n && r->value_len >= 0 && (size_t)r->value_len >= n &&
		    memcmp(r->value, pfx, n) == 0)
			keep = 0;
	}
	json_object_put(o);
	return keep;
}

uint64_t compact_counted_bytes(const struct engine *e, const struct partition *p)
{
	uint64_t allowance = e->opt.wal_segment_bytes;
	return p->compact_bytes > allowance ? p->compact_bytes - allowance : 0;
}

/* ---- rewriting -------------------------------------------------------------- */

/* One output segment under construction. */
struct out_seg {
	struct engine *e;
	struct partition *p;
	int64_t limit; /* retention.bytes, -1: none (DISK) */
	uint64_t allowance; /* compaction's allowance over it (DISK) */
	uint64_t counted; /* bytes added to p->compact_bytes */
	const char *dir;
	uint32_t topic_id;
	int32_t partition;
	uint32_t gen;
	uint64_t wal_seq;
	enum batch_codec codec;
	struct segment_writer *w;
	char path[4400];
	/* the current run */
	struct batch_builder bb;
	int64_t run_base, run_next;
	uint64_t run_raw, run_raw_next;
	struct record_header_in *hdrs;
	size_t hdrs_cap;
};

static int out_emit(struct out_seg *o)
{
	uint8_t *b = NULL, *z = NULL;
	size_t blen, zlen;
	int32_t count = o->bb.count;
	int rc;

	if (count == 0)
		return 0;
	rc = batch_builder_finish(&o->bb, &b, &blen);
	if (rc)
		return rc;
	put_be64(b, (uint64_t)o->run_base);
	if (o->codec != BATCH_CODEC_NONE) {
		const uint8_t *in[1] = { b };
		size_t lens[1] = { blen };
		rc = recode_merge(in, lens, 1, o->codec, &z, &zlen);
		if (rc)
			goto out;
		if (zlen < blen) {
			free(b);
			b = z;
			blen = zlen;
		} else {
			free(z);
		}
	}
	/* DISK: what this batch can add to the file, counted before it is
	 * written, refused past retention.bytes plus the allowance. */
	uint64_t add = blen + SEGMENT_INDEX_ENTRY_SIZE +
		       (uint64_t)count * SEGMENT_KEY_ENTRY_SIZE /* at most one key each */ +
		       (o->w ? 0 : SEGMENT_HEADER_SIZE + SEGMENT_TRAILER_V2_SIZE);
	pthread_mutex_lock(&o->p->lock);
	if (o->limit >= 0 && o->p->seg_bytes + o->p->seg_reserved + o->p->compact_bytes + add >
				     (uint64_t)o->limit + o->allowance) {
		rc = -ENOSPC;
	} else {
		o->p->compact_bytes += add;
		o->counted += add;
	}
	pthread_mutex_unlock(&o->p->lock);
	if (rc)
		goto out;
	if (!o->w) {
		char name[64];
		struct segment_meta m = { .base_offset = o->run_base, .gen = o->gen };
		registry_segment_file(&m, name, sizeof(name));
		snprintf(o->path, sizeof(o->path), "%s/%s", o->dir, name);
		/* Created under warm_lock: topic deletion (which removes the
		 * directory under it) then either comes after, and removes
		 * this file too, or before, and the partition says so. */
		pthread_mutex_lock(&o->e->warm_lock);
		pthread_mutex_lock(&o->p->lock);
		bool deleted = o->p->deleted;
		pthread_mutex_unlock(&o->p->lock);
		if (deleted) {
			rc = CHRONIK_ENOTOPIC;
		} else {
			unlink(o->path); /* a stale unregistered one */
			rc = segment_writer_open(o->path, o->topic_id, o->partition, o->run_base,
						 o->wal_seq, &o->w);
		}
		pthread_mutex_unlock(&o->e->warm_lock);
		if (rc)
			goto out;
	}
	rc = segment_writer_add(o->w, b, blen, o->run_raw, o->run_raw_next - o->run_raw,
				(uint32_t)count);
out:
	free(b);
	return rc;
}

static int out_add(struct out_seg *o, const struct engine_record *r)
{
	uint64_t rlen = (r->value_len > 0 ? (uint64_t)r->value_len : 0) + 1;
	const uint8_t *hp = r->headers, *hend = r->headers + r->headers_len;
	struct record_in in;
	int rc;

	if (o->bb.count && (r->offset != o->run_next || r->raw_pos != o->run_raw_next ||
			    o->bb.len >= SEGMENT_MERGE_BYTES)) {
		rc = out_emit(o);
		if (rc)
			return rc;
	}
	if (o->bb.count == 0) {
		o->run_base = r->offset;
		o->run_raw = r->raw_pos;
	}
	if ((size_t)r->header_count > o->hdrs_cap) {
		struct record_header_in *v = realloc(o->hdrs, (size_t)r->header_count * sizeof(*v));
		if (!v)
			return -ENOMEM;
		o->hdrs = v;
		o->hdrs_cap = (size_t)r->header_count;
	}
	for (int32_t i = 0; i < r->header_count; i++) {
		struct batch_record_header h;
		if (batch_record_header_next(&hp, hend, &h) != 1)
			return CHRONIK_ECORRUPT;
		o->hdrs[i] = (struct record_header_in){ .key = h.key,
							.key_len = h.key_len,
							.value = h.value,
							.value_len = h.value_len };
	}
	in = (struct record_in){ .timestamp = r->timestamp,
				 .key = r->key,
				 .key_len = r->key_len,
				 .value = r->value,
				 .value_len = r->value_len,
				 .headers = o->hdrs,
				 .header_count = r->header_count };
	rc = batch_builder_add(&o->bb, &in);
	if (rc)
		return rc;
	o->run_next = r->offset + 1;
	o->run_raw_next = r->raw_pos + rlen;
	return 0;
}

static void fsync_dir_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

struct group {
	size_t first, count; /* cleanable segments [first, first + count) */
	int64_t last_offset;
	struct segment *out; /* NULL: nothing kept */
};

/* compact_partition's answer when the inputs changed under the rewrite
 * (SWAP): the outputs were discarded, take a new snapshot. */
#define COMPACT_CHANGED 1
/* How many times a compaction is retried from a new snapshot (SWAP). */
#define COMPACT_RETRIES 3

/* Are in[0, k) still the head of p's list, unchanged, and may p's registry
 * be saved? warm_lock and p->lock held. *rc: 0, or why not to go on. */
static bool inputs_same(struct engine *e, struct partition *p, struct segment **in, size_t k,
			int64_t log_start, int *rc)
{
	*rc = 0;
	if (p->deleted)
		return false;
	if (p->warm_halt_rc || atomic_load(&e->indexer_halt_rc)) {
		*rc = p->warm_halt_rc ? p->warm_halt_rc : atomic_load(&e->indexer_halt_rc);
		return false;
	}
	if (p->nsegs <= k || p->log_start_offset != log_start)
		return false;
	for (size_t i = 0; i < k; i++)
		if (p->segs[i] != in[i])
			return false;
	return true;
}

/* One compaction of p (compact_lock held, warm_lock not): 0 (done, or
 * nothing to do), COMPACT_CHANGED, or <0. *seen: p->segs_changes at the
 * snapshot (WHEN, backoff). */
static int compact_partition(struct engine *e, struct partition *p,
			     const struct compact_policy *pol, const char *config_json,
			     const struct compact_filter *filter, struct engine_compact_result *res,
			     uint64_t *seen)
{
	char dir[4200];
	struct segment **in = NULL;
	struct group *groups = NULL;
	size_t k = 0, ngroups = 0;
	struct offset_map map = { 0 };
	struct engine_cursor *c = NULL;
	struct engine_record r;
	struct out_seg o = { 0 };
	struct registry reg = { 0 };
	int64_t now = now_ms(), first, last, log_start;
	bool keep_files = false;
	int rc = 0, why;

	/* The snapshot, under warm_lock: references on the cleanable
	 * segments (SWAP). */
	pthread_mutex_lock(&e->warm_lock);
	pthread_mutex_lock(&p->lock);
	*seen = p->segs_changes;
	rc = p->warm_halt_rc ? p->warm_halt_rc : atomic_load(&e->indexer_halt_rc);
	if (rc || p->deleted || p->nsegs < 2) {
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&e->warm_lock);
		return rc;
	}
	k = p->nsegs - 1;
	log_start = p->log_start_offset;
	in = calloc(k, sizeof(*in));
	groups = calloc(k, sizeof(*groups));
	if (!in || !groups) {
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&e->warm_lock);
		k = 0;
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < k; i++) {
		in[i] = p->segs[i];
		segment_ref(in[i]);
	}
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&e->warm_lock);

	/* Groups of cleanable segments, each one output segment. */
	for (size_t i = 0; i < k; i++) {
		const struct segment_meta *m = segment_meta_get(in[i]);
		struct group *g = ngroups ? &groups[ngroups - 1] : NULL;
		uint64_t bytes = 0;
		for (size_t j = 0; g && j < g->count; j++)
			bytes += segment_meta_get(in[g->first + j])->bytes;
		if (!g || bytes + m->bytes > COMPACT_GROUP_BYTES) {
			g = &groups[ngroups++];
			g->first = i;
		}
		g->count++;
		g->last_offset = m->last_offset;
		res->segments_in++;
		res->bytes_in += m->bytes;
	}
	first = segment_meta_get(in[0])->base_offset;
	last = segment_meta_get(in[k - 1])->last_offset;

	/* Pass 1: the offset map, from the key tables (segment.h) of the
	 * segments that have one. */
	for (size_t i = 0; pol->key && i < k && rc == 0; i++)
		rc = map_segment(p, in[i], &map, res);
	if (rc)
		goto swap;

	/* Pass 2: the kept records, group by group. */
	warm_dir(e, p->topic_id, p->index, dir, sizeof(dir));
	o.e = e;
	o.p = p;
	o.limit = pol->bytes_limit;
	o.allowance = e->opt.wal_segment_bytes;
	o.dir = dir;
	o.topic_id = p->topic_id;
	o.partition = p->index;
	o.codec = warm_store_codec(config_json);
	batch_builder_init(&o.bb);
	size_t gi = 0;
	rc = engine_cursor_open(p, first, &c);
	for (;;) {
		bool have = false;
		if (rc == 0) {
			rc = engine_cursor_next(c, &r);
			have = rc == 1 && r.offset <= last;
			if (rc == 1)
				rc = 0;
		}
		if (rc)
			break;
		/* Close the groups this record is past (all at the end). */
		while (gi < ngroups && (!have || r.offset > groups[gi].last_offset)) {
			struct segment_meta meta;
			rc = out_emit(&o);
			if (rc == 0 && o.w) {
				rc = segment_writer_finish(o.w, &meta);
				o.w = NULL;
				if (rc == 0) {
					meta.gen = o.gen;
					warm_segment_written(e, p, o.path);
					rc = segment_new(o.path, &meta, &groups[gi].out);
					if (rc) /* the hook's sidecars too */
						segment_file_remove(o.path);
				}
			}
			if (rc)
				break;
			gi++;
		}
		if (rc || !have)
			break;
		if (o.bb.count == 0 && !o.w) {
			/* A new group's first kept record: its generation. */
			o.gen = 0;
			o.wal_seq = 0;
			for (size_t j = 0; j < groups[gi].count; j++) {
				const struct segment_meta *m =
					segment_meta_get(in[groups[gi].first + j]);
				if (m->gen >= o.gen)
					o.gen = m->gen + 1;
				if (j == 0)
					o.wal_seq = m->wal_seq;
			}
		}
		res->records_in++;
		bool keep = true;
		if (pol->key && r.key_len >= 0 && map_get(&map, r.key, r.key_len) != r.offset)
			keep = false;
		if (keep && pol->key && r.key_len >= 0 && r.value_len < 0 &&
		    r.timestamp < now - pol->delete_retention_ms)
			keep = false;
		if (keep && pol->retention_ms >= 0 && r.timestamp < now - pol->retention_ms)
			keep = false;
		if (keep && filter && filter->fn(filter->arg, config_json, &r) == 0)
			keep = false;
		if (!keep)
			continue;
		res->records_out++;
		rc = out_add(&o, &r);
		if (rc)
			break;
	}
	engine_cursor_close(c);
	c = NULL;
	if (rc == 0 && gi != ngroups)
		rc = CHRONIK_ECORRUPT; /* the cursor ended inside the segments */
	if (rc == 0)
		fsync_dir_path(dir);

swap:
	/* The swap, under warm_lock: only if the inputs are still the head
	 * of the list as they were (SWAP). A rewrite that failed because
	 * they changed (retention removed one under the cursor, the topic
	 * went) is a change too. */
	pthread_mutex_lock(&e->warm_lock);
	pthread_mutex_lock(&p->lock);
	bool same = inputs_same(e, p, in, k, log_start, &why);
	if (!same || rc) {
		bool deleted = p->deleted;
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&e->warm_lock);
		if (why)
			rc = why; /* halted meanwhile */
		else if (!same)
			rc = deleted ? 0 : COMPACT_CHANGED;
		goto out;
	}
	size_t nout = 0;
	for (size_t i = 0; i < ngroups; i++)
		nout += groups[i].out != NULL;
	/* Room for the swap, made now so that nothing can fail after the
	 * registry is saved. */
	if (p->nsegs - k + nout > p->segs_cap) {
		struct segment **v = realloc(p->segs, (p->nsegs - k + nout) * sizeof(*v));
		if (v) {
			p->segs = v;
			p->segs_cap = p->nsegs - k + nout;
		} else {
			rc = -ENOMEM;
		}
	}
	if (rc == 0) {
		reg.segs = calloc(p->nsegs, sizeof(*reg.segs));
		if (reg.segs) {
			for (size_t i = 0; i < ngroups; i++)
				if (groups[i].out)
					reg.segs[reg.n++] = *segment_meta_get(groups[i].out);
			for (size_t i = k; i < p->nsegs; i++)
				reg.segs[reg.n++] = *segment_meta_get(p->segs[i]);
		} else {
			rc = -ENOMEM;
		}
		reg.log_start_offset = p->log_start_offset;
		reg.raw_start = p->raw_start;
		reg.next_offset = p->seg_next_offset;
		reg.raw_end = p->seg_raw_end;
	}
	pthread_mutex_unlock(&p->lock);
	if (rc == 0)
		rc = registry_save(dir, p->topic_id, p->index, &reg);
	if (rc && reg.segs) {
		/* HALT: saved or not, the next open decides (it removes the
		 * set the registry does not list). Until then no registry of
		 * this partition is saved again: one saved from memory (the
		 * old set) after a rename that did happen would list the old
		 * set beside files the disk's registry already dropped, or
		 * bring back segments the new set replaced. Both sets' files
		 * stay; reads go on from the old set in memory. */
		pthread_mutex_lock(&p->lock);
		p->warm_halt_rc = rc;
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&e->warm_lock);
		log_msg(LOG_LVL_ERROR, "compact",
			"%s/%s: %s; the warm tier of %s/%d is halted until the data directory is "
			"opened again (its records stay in the WAL)",
			dir, REGISTRY_FILE, chronik_strerror(rc), p->topic_name, p->index);
		keep_files = true;
		goto out;
	}
	if (rc) {
		pthread_mutex_unlock(&e->warm_lock);
		goto out;
	}

	/* The swap in memory (room made above; only warm_lock holders change
	 * the list, so it is the one seen then). */
	pthread_mutex_lock(&p->lock);
	memmove(p->segs + nout, p->segs + k, (p->nsegs - k) * sizeof(*p->segs));
	for (size_t i = 0, j = 0; i < ngroups; i++) {
		if (!groups[i].out)
			continue;
		p->segs[j++] = groups[i].out;
		res->segments_out++;
		res->bytes_out += segment_meta_get(groups[i].out)->bytes;
		groups[i].out = NULL; /* the list's reference now */
	}
	p->nsegs = p->nsegs - k + nout;
	p->segs_changes++;
	p->seg_bytes = p->seg_bytes - res->bytes_in + res->bytes_out;
	p->compact_bytes -= o.counted;
	o.counted = 0;
	pthread_cond_broadcast(&p->grown);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&e->warm_lock);
	for (size_t i = 0; i < k; i++) {
		tier_remote_delete(p->e, segment_meta_get(in[i])); /* cold tier: queued */
		segment_doom(in[i]);
		segment_unref(in[i]); /* the list's reference */
	}
	log_msg(LOG_LVL_INFO, "compact",
		"%s/%d: %" PRIu64 " segments, %" PRIu64 " records -> %" PRIu64 " segments, %" PRIu64
		" records",
		p->topic_name, p->index, res->segments_in, res->records_in, res->segments_out,
		res->records_out);

out:
	engine_cursor_close(c);
	if (o.w)
		segment_writer_abort(o.w);
	if (o.counted) {
		pthread_mutex_lock(&p->lock);
		p->compact_bytes -= o.counted;
		pthread_mutex_unlock(&p->lock);
	}
	batch_builder_fini(&o.bb);
	free(o.hdrs);
	for (size_t i = 0; groups && i < ngroups; i++) {
		if (groups[i].out) {
			/* Not registered: its file goes. */
			if (!keep_files)
				segment_doom(groups[i].out);
			segment_unref(groups[i].out);
		}
	}
	for (size_t i = 0; in && i < k; i++)
		segment_unref(in[i]);
	free(in);
	free(groups);
	free(reg.segs);
	map_fini(&map);
	if (rc)
		memset(res, 0, sizeof(*res));
	return rc;
}

/* engine_partition_compact, and the background pass's compaction of p
 * (background: skipped while the backoff holds, WHEN). */
static int partition_compact(struct partition *p, struct engine_compact_result *out,
			     bool background)
{
	struct engine *e = p->e;
	struct engine_compact_result res = { 0 };
	struct compact_policy pol;
	struct compact_filter filter = { 0 };
	char *config = NULL;
	bool have_filter = false;
	uint64_t seen = 0;
	int rc = 0;

	if (out)
		memset(out, 0, sizeof(*out));
	if (e->opt.read_only)
		return -EROFS;
	pthread_rwlock_rdlock(&e->meta_lock);
	if (p->t && p->t->config_json)
		config = strdup(p->t->config_json);
	pthread_rwlock_unlock(&e->meta_lock);
	policy_parse(config, &pol);
	pol.bytes_limit = retention_bytes_limit(config);

	/* One compaction at a time; held while the filter is called, so that
	 * engine_compact_filter_register (which takes it) never returns with
	 * a removed filter still in use. */
	pthread_mutex_lock(&e->compact_lock);
	if (background && p->compact_fail_rc && p->compact_fail_limit == pol.bytes_limit) {
		/* The backoff (WHEN): the segments as the failed compaction
		 * left them, the same retention.bytes; not tried again. */
		pthread_mutex_lock(&p->lock);
		bool same = p->segs_changes == p->compact_fail_changes;
		pthread_mutex_unlock(&p->lock);
		if (same) {
			rc = p->compact_fail_rc;
			pthread_mutex_unlock(&e->compact_lock);
			free(pol.filter);
			free(config);
			return rc;
		}
	}
	if (pol.filter) {
		pthread_mutex_lock(&e->hook_lock);
		for (size_t i = 0; i < e->nfilters; i++)
			if (strcmp(e->filters[i].name, pol.filter) == 0) {
				filter = e->filters[i];
				have_filter = true;
			}
		pthread_mutex_unlock(&e->hook_lock);
		if (!have_filter)
			log_msg(LOG_LVL_WARN, "compact",
				"%s: compaction.filter %s is not registered", p->topic_name,
				pol.filter);
	}
	if (pol.key || pol.retention_ms >= 0 || have_filter) {
		for (int attempt = 0;; attempt++) {
			memset(&res, 0, sizeof(res));
			rc = compact_partition(e, p, &pol, config, have_filter ? &filter : NULL,
					       &res, &seen);
			if (rc != COMPACT_CHANGED)
				break;
			if (attempt == COMPACT_RETRIES) {
				log_msg(LOG_LVL_WARN, "compact",
					"%s/%d: segments changed under %d compactions running; "
					"left for later",
					p->topic_name, p->index, COMPACT_RETRIES + 1);
				rc = -EAGAIN;
				/* The backoff counts the changes after this
				 * failure, not those that caused it. */
				pthread_mutex_lock(&p->lock);
				seen = p->segs_changes;
				pthread_mutex_unlock(&p->lock);
				break;
			}
			log_msg(LOG_LVL_DEBUG, "compact",
				"%s/%d: segments changed under the rewrite; again", p->topic_name,
				p->index);
		}
		if (rc == -ENOSPC)
			log_msg(LOG_LVL_WARN, "compact",
				"%s/%d: the rewritten segments would not fit in retention.bytes "
				"plus wal.segment.bytes beside the old ones; not compacted, not "
				"tried again in the background before the segments change",
				p->topic_name, p->index);
		/* The backoff (WHEN), set by either kind of compaction: what
		 * failed here would fail the same in the background. */
		p->compact_fail_rc = rc == -ENOSPC || rc == -EAGAIN ? rc : 0;
		p->compact_fail_changes = seen;
		p->compact_fail_limit = pol.bytes_limit;
	}
	pthread_mutex_unlock(&e->compact_lock);
	free(pol.filter);
	free(config);
	if (rc == 0 && out)
		*out = res;
	return rc;
}

int engine_partition_compact(struct partition *p, struct engine_compact_result *out)
{
	return partition_compact(p, out, false);
}

/* The partition's dirty ratio (WHEN, above); -1 with fewer than two
 * segments or when it is halted. */
static double dirty_ratio(struct partition *p)
{
	uint64_t dirty = 0, total = 0;
	double r = -1;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i + 1 < p->nsegs; i++) {
		const struct segment_meta *m = segment_meta_get(p->segs[i]);
		total += m->bytes;
		if (m->gen == 0)
			dirty += m->bytes;
	}
	if (p->nsegs >= 2 && total && !p->warm_halt_rc && !p->deleted)
		r = (double)dirty / (double)total;
	pthread_mutex_unlock(&p->lock);
	return r;
}

int compact_run(struct engine *e)
{
	struct partition **parts = NULL;
	double *mins = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (atomic_load(&e->indexer_halt_rc))
		return atomic_load(&e->indexer_halt_rc); /* no registry is saved */
	pthread_rwlock_rdlock(&e->meta_lock);
	pthread_mutex_lock(&e->hook_lock);
	for (size_t i = 0; i < e->ntopics && rc == 0; i++) {
		struct topic *t = e->topics[i];
		struct compact_policy pol;
		bool filter = false;
		policy_parse(t->config_json, &pol);
		if (pol.filter) {
			for (size_t j = 0; j < e->nfilters; j++)
				filter |= strcmp(e->filters[j].name, pol.filter) == 0;
			free(pol.filter);
		}
		if (!pol.key && !filter)
			continue;
		for (int32_t j = 0; j < t->nparts; j++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				struct partition **v = realloc(parts, cap * sizeof(*v));
				double *w = realloc(mins, cap * sizeof(*w));
				if (v)
					parts = v;
				if (w)
					mins = w;
				if (!v || !w) {
					rc = -ENOMEM;
					break;
				}
			}
			parts[n] = t->parts[j];
			mins[n++] = pol.min_dirty;
			engine_partition_ref(t->parts[j]);
		}
	}
	pthread_mutex_unlock(&e->hook_lock);
	pthread_rwlock_unlock(&e->meta_lock);
	for (size_t i = 0; i < n; i++) {
		double r = dirty_ratio(parts[i]);
		if (r >= 0 && r > mins[i]) {
			int x = partition_compact(parts[i], NULL, true);
			if (x && !rc)
				rc = x;
		}
		engine_partition_unref(parts[i]);
	}
	free(parts);
	free(mins);
	return rc;
}

/* ---- the compaction thread ------------------------------------------------ */

static void *compactor_main(void *arg)
{
	struct engine *e = arg;

	pthread_mutex_lock(&e->compactor_lock);
	while (!e->compactor_stop) {
		if (!e->compactor_kicked) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += RETENTION_CHECK_MS / 1000;
			pthread_cond_timedwait(&e->compactor_wake, &e->compactor_lock, &ts);
			if (e->compactor_stop)
				break;
		}
		/* A pass begins in the same hold of compactor_lock as the kick
		 * it answers is taken: engine_compact_now waits for the first
		 * pass begun after its kick (compact_pass_begun + 1 then). */
		e->compactor_kicked = false;
		e->compact_pass_begun++;
		pthread_mutex_unlock(&e->compactor_lock);
		int rc = compact_run(e);
		pthread_mutex_lock(&e->compactor_lock);
		e->compact_pass_err = rc;
		e->compact_pass_ended++;
		pthread_cond_broadcast(&e->compactor_done);
	}
	pthread_mutex_unlock(&e->compactor_lock);
	return NULL;
}

int compactor_start(struct engine *e)
{
	int rc = pthread_create(&e->compactor_thread, NULL, compactor_main, e);
	if (rc)
		return -rc;
	e->compactor_running = true;
	return 0;
}

void compactor_stop(struct engine *e)
{
	if (!e->compactor_running)
		return;
	pthread_mutex_lock(&e->compactor_lock);
	e->compactor_stop = true;
	pthread_cond_broadcast(&e->compactor_wake);
	pthread_mutex_unlock(&e->compactor_lock);
	pthread_join(e->compactor_thread, NULL);
	pthread_mutex_lock(&e->compactor_lock);
	e->compactor_running = false;
	pthread_cond_broadcast(&e->compactor_done);
	pthread_mutex_unlock(&e->compactor_lock);
}

void compactor_kick(struct engine *e)
{
	pthread_mutex_lock(&e->compactor_lock);
	e->compactor_kicked = true;
	pthread_cond_broadcast(&e->compactor_wake);
	pthread_mutex_unlock(&e->compactor_lock);
}

int engine_compact_now(struct engine *e)
{
	uint64_t want;
	int rc;

	if (e->opt.read_only)
		return 0;
	pthread_mutex_lock(&e->compactor_lock);
	if (!e->compactor_running) {
		pthread_mutex_unlock(&e->compactor_lock);
		return compact_run(e); /* no_index: on this thread */
	}
	/* The first pass begun after this kick: a pass under way now may
	 * have passed a partition over before the caller's segments were
	 * registered, so its end is not enough (engine_index_now's idle
	 * pass had that race with a file sealed during it). Passes begin in
	 * the same hold of compactor_lock that takes the kick, so the one
	 * numbered compact_pass_begun + 1 begins after this point. If more
	 * passes ended meanwhile, the error is the last one's (it began
	 * after this point too). */
	want = e->compact_pass_begun + 1;
	e->compactor_kicked = true;
	pthread_cond_broadcast(&e->compactor_wake);
	while (e->compact_pass_ended < want && !e->compactor_stop)
		pthread_cond_wait(&e->compactor_done, &e->compactor_lock);
	rc = e->compact_pass_ended >= want ? e->compact_pass_err : 0;
	pthread_mutex_unlock(&e->compactor_lock);
	return rc;
}
