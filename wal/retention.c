/* retention.c - time and size retention on the segments of a partition.
 *
 * POLICY (per topic, its config; Kafka's names):
 *   cleanup.policy   "delete" (the default), "compact", or "compact,delete"
 *                    (also "delete,compact"); retention runs when it
 *                    includes delete.
 *   retention.ms     a segment whose max timestamp is older than now minus
 *                    this is deleted; -1 (the default here) keeps forever.
 *   retention.bytes  while the partition's bytes (segments plus WAL not yet
 *                    indexed) minus its oldest segment's stay >= this, the
 *                    oldest segment is deleted; -1 (the default) = no limit.
 * Only whole segments go, oldest first (the WAL not yet indexed is never
 * touched: it becomes a segment first). The defaults keep everything, as
 * the filesystem's users expect of a file; Kafka's 7 days is one config
 * away.
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
 * WHEN: the indexer thread runs a pass over every partition after each WAL
 * file it indexes and each time it has nothing left to index, and at least
 * every RETENTION_CHECK_MS when idle; config changes are read at every
 * pass, so they take effect live. So under retention.bytes a partition
 * never holds more than one indexed file's segment beyond the limit plus
 * the WAL not yet indexed.
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

static int retention_partition(struct engine *e, struct partition *p,
			       const struct retention_policy *pol, int64_t now)
{
	char dir[4200];
	struct registry reg = { 0 };
	struct segment **gone = NULL;
	size_t k = 0;
	int rc;

	pthread_mutex_lock(&p->lock);
	uint64_t total = p->seg_bytes + p->wal_bytes;
	while (k < p->nsegs) {
		const struct segment_meta *m = segment_meta_get(p->segs[k]);
		bool old = pol->ms >= 0 && m->max_timestamp < now - pol->ms;
		bool big = pol->bytes >= 0 && total - m->bytes >= (uint64_t)pol->bytes;
		if (!old && !big)
			break;
		total -= m->bytes;
		k++;
	}
	if (k == 0 || p->deleted) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	reg.n = p->nsegs - k;
	reg.segs = calloc(reg.n ? reg.n : 1, sizeof(*reg.segs));
	if (!reg.segs) {
		pthread_mutex_unlock(&p->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < reg.n; i++)
		reg.segs[i] = *segment_meta_get(p->segs[k + i]);
	reg.log_start_offset = reg.n ? reg.segs[0].base_offset : p->seg_next_offset;
	reg.raw_start = reg.n ? reg.segs[0].raw_start : p->seg_raw_end;
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
	gone = malloc(k * sizeof(*gone));
	pthread_mutex_lock(&p->lock);
	/* Only this thread changes segs, so they are the k seen above. */
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
	p->log_start_offset = reg.log_start_offset;
	p->raw_start = reg.raw_start;
	pthread_cond_broadcast(&p->grown);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; gone && i < k; i++) {
		tier_remote_delete(e, segment_meta_get(gone[i]));
		segment_doom(gone[i]);
		segment_unref(gone[i]);
	}
	free(gone);
	log_msg(LOG_LVL_INFO, "retention", "%s/%d: %zu segments deleted, log start now %" PRId64,
		p->topic_name, p->index, k, reg.log_start_offset);
	return 0;
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
