/* retention.c - time and size retention on the segments of a partition.
 *
 * POLICY (per topic, its config; Kafka's names):
 *   cleanup.policy   "delete" (the default), "compact", or "compact,delete"
 *                    (also "delete,compact"); retention runs when it
 *                    includes delete.
 *   retention.ms     a segment whose max timestamp is older than now minus
 *                    this is deleted; -1 (the default here) keeps forever.
 *   retention.bytes  the partition's segment files hold at most this many
 *                    bytes (their sizes, remote segments counted too):
 *                    after every pass, and while the indexer writes a new
 *                    one (DISK below); -1 (the default) = no limit.
 * Only whole segments go, oldest first (the WAL not yet indexed is never
 * touched: it becomes a segment first). The defaults keep everything, as
 * the filesystem's users expect of a file; Kafka's 7 days is one config
 * away.
 *
 * DISK. retention.bytes is a bound, not a floor. Kafka deletes a segment
 * only while the rest stays >= retention.bytes, so its partitions hold up
 * to retention.bytes + one segment, plus the active one; here the limit
 * is the disk a partition's history may take, so the segments never pass
 * it, and the WAL not yet indexed is bounded apart (wal.unindexed.max.bytes,
 * commit.c "BACK-PRESSURE"). The data directory of a partition under
 * retention.bytes holds, at every moment, at most retention.bytes of
 * segment files (retention.bytes + wal.segment.bytes while a compaction
 * of it writes, below) plus wal.unindexed.max.bytes of WAL files (2 x
 * wal.segment.bytes by default; the WAL is shared by all partitions),
 * plus the metadata (meta.log, registries, directories) and the file
 * system's rounding to blocks. Two rules make it so:
 *   1. a pass deletes the oldest segments while the partition's segments
 *      hold more than retention.bytes (compaction's files past its
 *      allowance counted with them, below);
 *   2. the indexer makes room before it writes (retention_make_room):
 *      before a segment file is begun, the oldest segments are deleted
 *      while the segments kept plus an upper bound of the new file's size
 *      would pass retention.bytes (deleted by DELETION below, so the
 *      registry drops them before the new file takes their place). The
 *      bound is the file's header, trailer and index (one entry per
 *      SEGMENT_INDEX_INTERVAL bytes, at most one per batch) plus its
 *      frames' batch bytes (re-encoding never grows them: a merge that
 *      does not get smaller keeps its batches), so the new file fits.
 * and, so that a whole segment deleted does not take a large share of the
 * limit with it, under retention.bytes the indexer cuts a partition's
 * frames of one WAL file into segments of at most retention_cut_bytes
 * (retention.bytes / 8, at least 64 KiB; a single batch larger than that
 * is a segment by itself). So after indexing the segments hold more than
 * retention.bytes minus two cuts (at least 3/4 of it when the cut is
 * retention.bytes / 8), the records still in the WAL besides; a
 * partition's newest segment is deleted too when it alone passes the
 * limit (retention.bytes below the cut: below 64 KiB, or a batch larger
 * than the limit). Compaction's rewritten segments, written beside the old
 * ones until the swap, have an allowance of wal.segment.bytes over the
 * limit (compact.c, "DISK"): both rules add to the segments only the part
 * of the partition's compact_bytes (what the running compaction has
 * written) past that allowance, and compaction refuses to write past
 * retention.bytes + wal.segment.bytes counting the segments, the one the
 * indexer is writing (rule 2 reserves its bound, seg_reserved, until it
 * is listed) and its own files. So while a partition is compacted its
 * segment files and compaction's hold at most retention.bytes +
 * wal.segment.bytes, and a compaction whose files stay within the
 * allowance makes neither rule drop a segment; otherwise the bound is
 * retention.bytes. Outside the bound: a segment a reader still holds stays
 * on disk until the reader lets go (LevelDB's rule, below; a compaction
 * under way is such a reader of its inputs), and full-text indexes
 * (search/, one per segment).
 *
 * DELETION: the registry is saved without the segments and with the new
 * log start offset (the first remaining segment's base offset, or the
 * partition's warm end when none remains) and raw start (its raw start);
 * then, under the partition lock, the segments leave the partition's list
 * and the log start advances. Each one is removed from disk at its last
 * unref, so a reader holding one finishes on it (LevelDB's rule). A crash
 * after the save leaves unlisted files, which the next open removes. Raw
 * positions do not move: raw_size stays, and reads before the log start
 * continue at the first record that remains (read.c).
 *
 * DELETE RECORDS (engine_partition_delete_records, Kafka's DeleteRecords):
 * the log start moves to the offset asked for (-1 = the high watermark),
 * which may lie inside a segment (registry.h, version 3): the segments
 * wholly below it go as above, the one holding it stays whole (its
 * records below the log start are never read again: cursors start at
 * the log start, raw reads before raw_start are served from the first
 * record that remains, Fetch below it is out of range). Records still in
 * the WAL are indexed first (engine_index_now), so the new log start is
 * always within the registered segments or at their end, and the
 * registry alone makes it durable. raw_start is the raw position of the
 * first record at or after the new log start. The log start never moves
 * back: an offset at or below it changes nothing, and retention keeps the
 * later of the two.
 *
 * WHEN: the indexer thread runs a pass over every partition after each WAL
 * file it indexes and each time it has nothing left to index, and at least
 * every RETENTION_CHECK_MS when idle, and makes room before each segment
 * it writes (DISK, rule 2); config changes are read at every pass and
 * every file indexed, so they take effect live. A partition whose warm
 * tier is halted (compact.c, "HALT") is skipped, and DeleteRecords on it
 * returns the failed save's error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-private.h"
#include "log.h"
#include "registry.h"

struct retention_policy {
	bool delete;
	int64_t ms; /* -1 = none */
	int64_t bytes; /* -1 = none */
};

static void policy_parse(const char *config_json, struct retention_policy *r)
{
	json_object *o = config_json ? json_tokener_parse(config_json) : NULL, *v;

	r->delete = strstr(engine_topic_config_default("cleanup.policy"), "delete") != NULL;
	r->ms = topic_config_i64(NULL, "retention.ms");
	r->bytes = topic_config_i64(NULL, "retention.bytes");
	if (!o)
		return;
	if (json_object_object_get_ex(o, "cleanup.policy", &v))
		r->delete = strstr(json_object_get_string(v), "delete") != NULL;
	r->ms = topic_config_i64(o, "retention.ms");
	r->bytes = topic_config_i64(o, "retention.bytes");
	json_object_put(o);
}

int64_t retention_bytes_limit(const char *config_json)
{
	struct retention_policy pol;
	policy_parse(config_json, &pol);
	return pol.delete ? pol.bytes : -1;
}

uint64_t retention_cut_bytes(int64_t limit)
{
	uint64_t cut = (uint64_t)limit / 8;
	return cut < RETENTION_CUT_MIN ? RETENTION_CUT_MIN : cut;
}

/* Drop p's first k segments and move its log start to log_start (raw
 * start raw_start), by DELETION above: the registry first, then memory.
 * Called with warm_lock and p->lock held; returns with p->lock released. */
static int segments_drop_front(struct engine *e, struct partition *p, size_t k, int64_t log_start,
			       uint64_t raw_start)
{
	char dir[4200];
	struct registry reg = { 0 };
	struct segment **gone = NULL;
	int rc;

	reg.n = p->nsegs - k;
	reg.segs = calloc(reg.n ? reg.n : 1, sizeof(*reg.segs));
	if (!reg.segs) {
		pthread_mutex_unlock(&p->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < reg.n; i++)
		reg.segs[i] = *segment_meta_get(p->segs[k + i]);
	reg.log_start_offset = log_start;
	reg.raw_start = raw_start;
	reg.next_offset = p->seg_next_offset;
	reg.raw_end = p->seg_raw_end;
	pthread_mutex_unlock(&p->lock);

	warm_dir(e, p->topic_id, p->index, dir, sizeof(dir));
	rc = registry_save(dir, p->topic_id, p->index, &reg);
	free(reg.segs);
	if (rc) {
		log_msg(LOG_LVL_ERROR, "retention", "%s/%s: %s", dir, REGISTRY_FILE,
			chronik_strerror(rc));
		return rc;
	}
	gone = k ? malloc(k * sizeof(*gone)) : NULL;
	pthread_mutex_lock(&p->lock);
	/* Only warm_lock holders change segs, so they are the k seen above. */
	for (size_t i = 0; i < k; i++) {
		p->seg_bytes -= segment_meta_get(p->segs[i])->bytes;
		if (gone) {
			gone[i] = p->segs[i];
		} else {
			segment_doom(p->segs[i]);
			segment_unref(p->segs[i]);
		}
	}
	memmove(p->segs, p->segs + k, (p->nsegs - k) * sizeof(*p->segs));
	p->nsegs -= k;
	p->segs_changes++;
	p->log_start_offset = log_start;
	p->raw_start = raw_start;
	pthread_cond_broadcast(&p->grown);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; gone && i < k; i++) {
		tier_remote_delete(e, segment_meta_get(gone[i]));
		segment_doom(gone[i]);
		segment_unref(gone[i]);
	}
	free(gone);
	return 0;
}

/* Drop p's first k segments (k > 0) as retention does: the log start
 * moves to the first segment kept, or to the warm end when none is, but
 * never back (DeleteRecords may have moved it inside segs[k]). warm_lock
 * and p->lock held; returns with p->lock released. */
static int retention_drop(struct engine *e, struct partition *p, size_t k, const char *why)
{
	int64_t log_start = k < p->nsegs ? segment_meta_get(p->segs[k])->base_offset :
					   p->seg_next_offset;
	uint64_t raw_start = k < p->nsegs ? segment_meta_get(p->segs[k])->raw_start :
					    p->seg_raw_end;
	int rc;

	if (log_start < p->log_start_offset) {
		log_start = p->log_start_offset;
		raw_start = p->raw_start;
	}
	rc = segments_drop_front(e, p, k, log_start, raw_start);
	if (rc == 0)
		log_msg(LOG_LVL_INFO, "retention",
			"%s/%d: %zu segments deleted%s, log start now %" PRId64, p->topic_name,
			p->index, k, why, log_start);
	return rc;
}

static int retention_partition(struct engine *e, struct partition *p,
			       const struct retention_policy *pol, int64_t now)
{
	size_t k = 0;

	pthread_mutex_lock(&p->lock);
	uint64_t total = p->seg_bytes + compact_counted_bytes(e, p);
	while (k < p->nsegs) {
		const struct segment_meta *m = segment_meta_get(p->segs[k]);
		bool old = pol->ms >= 0 && m->max_timestamp < now - pol->ms;
		bool big = pol->bytes >= 0 && total > (uint64_t)pol->bytes;
		if (!old && !big)
			break;
		total -= m->bytes;
		k++;
	}
	if (k == 0 || p->deleted || p->warm_halt_rc) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	return retention_drop(e, p, k, "");
}

int retention_make_room(struct engine *e, struct partition *p, int64_t limit, uint64_t bytes)
{
	size_t k = 0;

	if (limit < 0)
		return 0;
	pthread_mutex_lock(&p->lock);
	/* The new file's room, held until index_partition_cut lets it go
	 * (the segment listed or given up), so that compaction, which
	 * counts it, never takes it meanwhile. */
	p->seg_reserved = bytes;
	uint64_t total = p->seg_bytes + compact_counted_bytes(e, p);
	while (k < p->nsegs && total + bytes > (uint64_t)limit)
		total -= segment_meta_get(p->segs[k++])->bytes;
	if (k == 0 || p->deleted || p->warm_halt_rc) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	return retention_drop(e, p, k, " to make room for a new one");
}

/* The raw start of a log start at offset: the raw position of the first
 * registered record at or after it, else the warm end. warm_lock held
 * (so the segments and seg_next_offset stay), p->lock not. */
static int raw_start_at(struct partition *p, int64_t offset, uint64_t *raw_start)
{
	struct engine_cursor *c;
	struct engine_record r;
	int rc = engine_cursor_open(p, offset, &c);

	if (rc)
		return rc;
	rc = engine_cursor_next(c, &r);
	pthread_mutex_lock(&p->lock);
	*raw_start = rc == 1 && r.offset < p->seg_next_offset ? r.raw_pos : p->seg_raw_end;
	pthread_mutex_unlock(&p->lock);
	engine_cursor_close(c);
	return rc < 0 ? rc : 0;
}

int engine_partition_delete_records(struct partition *p, int64_t offset, int64_t *log_start)
{
	struct engine *e = p->e;
	uint64_t raw_start;
	int rc;

	if (e->opt.read_only)
		return -EROFS;
	pthread_mutex_lock(&p->lock);
	bool deleted = p->deleted;
	int64_t hw = p->next_offset, warm_end = p->seg_next_offset;
	pthread_mutex_unlock(&p->lock);
	if (deleted)
		return CHRONIK_ENOTOPIC;
	if (offset == -1)
		offset = hw;
	if (offset < 0 || offset > hw)
		return CHRONIK_ERANGE;
	if (offset > warm_end && (rc = engine_index_now(e)) != 0)
		return rc;

	pthread_mutex_lock(&e->warm_lock);
	rc = raw_start_at(p, offset, &raw_start);
	if (rc)
		goto out;
	pthread_mutex_lock(&p->lock);
	if (p->warm_halt_rc) {
		rc = p->warm_halt_rc; /* no registry saved (compact.c, "HALT") */
		pthread_mutex_unlock(&p->lock);
		goto out;
	}
	if (p->deleted || offset <= p->log_start_offset || offset > p->seg_next_offset) {
		rc = p->deleted ? CHRONIK_ENOTOPIC : offset > p->log_start_offset ? -EAGAIN : 0;
		pthread_mutex_unlock(&p->lock);
		goto out;
	}
	size_t k = 0;
	while (k < p->nsegs && segment_meta_get(p->segs[k])->last_offset < offset)
		k++;
	rc = segments_drop_front(e, p, k, offset, raw_start);
	if (rc == 0)
		log_msg(LOG_LVL_INFO, "retention",
			"%s/%d: records below %" PRId64 " deleted (%zu segments)", p->topic_name,
			p->index, offset, k);
out:
	pthread_mutex_unlock(&e->warm_lock);
	if (log_start) {
		pthread_mutex_lock(&p->lock);
		*log_start = p->log_start_offset;
		pthread_mutex_unlock(&p->lock);
	}
	return rc;
}

int retention_run(struct engine *e)
{
	struct partition **parts = NULL;
	struct retention_policy *pols = NULL;
	size_t n = 0, cap = 0;
	int64_t now = now_ms();
	int rc = 0;

	pthread_rwlock_rdlock(&e->meta_lock);
	for (size_t i = 0; i < e->ntopics; i++) {
		struct retention_policy pol;
		struct topic *t = e->topics[i];
		policy_parse(t->config_json, &pol);
		if (!pol.delete || (pol.ms < 0 && pol.bytes < 0))
			continue;
		for (int32_t j = 0; j < t->nparts; j++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				struct partition **v = realloc(parts, cap * sizeof(*v));
				struct retention_policy *w = realloc(pols, cap * sizeof(*w));
				if (v)
					parts = v;
				if (w)
					pols = w;
				if (!v || !w) {
					rc = -ENOMEM;
					break;
				}
			}
			parts[n] = t->parts[j];
			pols[n++] = pol;
			engine_partition_ref(t->parts[j]);
		}
	}
	pthread_rwlock_unlock(&e->meta_lock);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&e->warm_lock);
		int r = retention_partition(e, parts[i], &pols[i], now);
		pthread_mutex_unlock(&e->warm_lock);
		if (r && !rc)
			rc = r;
		engine_partition_unref(parts[i]);
	}
	free(parts);
	free(pols);
	return rc;
}
