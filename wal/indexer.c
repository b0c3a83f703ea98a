/* indexer.c - the warm tier: loading the registries at open, and the
 * indexer thread that turns sealed WAL files into segments.
 *
 * SEALING. The commit thread seals the active WAL file when a group would
 * take it past wal.segment.bytes, and also when it is non-empty and older
 * than wal.seal.ms (so a quiet log is indexed too); each rotation kicks the
 * indexer. Every WAL file but the last (active) one is sealed.
 *
 * INDEXING one sealed file, oldest first:
 *   1. its frames are split by partition (file order is offset order),
 *      each frame checked as frame_decode does except for its batch's own
 *      CRC (frame_decode_no_batch_crc), which step 2 checks just before it
 *      reads the batch, so that the file is streamed from memory once;
 *      frames of deleted topics are dropped, frames a partition's registry
 *      already covers (a crash after its registry was saved) are skipped;
 *      a frame of a live topic for a partition it does not have cannot be
 *      written (partition counts only grow, and recovery refuses such a
 *      frame too), so it is damage: the file is not indexed and stays;
 *   2. per partition, under warm_lock (held by the indexer thread for
 *      all of the file's partitions at once, which are indexed in
 *      parallel: up to INDEX_WORKERS threads, the indexer thread one of
 *      them, each taking the next partition; what waits in indexing is
 *      mostly fsync, and the device serves concurrent fsyncs together;
 *      the segment hook, retention's making room and the first mkdir of
 *      a topic's directory are called one at a time): the remaining
 *      frames become one segment file, or under retention.bytes several,
 *      each at most retention_cut_bytes (SEGMENT CUT below), and before
 *      each one is begun retention makes room for it (retention.c,
 *      "DISK"). A segment file (segment.h): a batch a producer compressed is kept byte
 *      for byte; uncompressed batches are merged (up to
 *      SEGMENT_MERGE_BYTES) and re-encoded with the topic's
 *      compression.type (recode.h; lz4 by default, also zstd, gzip,
 *      snappy), unless it is "producer" or "none"/"uncompressed"; one
 *      larger than SEGMENT_SPLIT_BYTES is split into batches of about
 *      SEGMENT_MERGE_BYTES (split_add); a merge or split that does not
 *      get smaller keeps its batches as they were. The file
 *      is fsynced,
 *      then the registry is saved listing it (registry.h, update rule);
 *   3. under the partition lock, in one step, the segment joins the
 *      partition's list and the hot-index entries it covers (of this file
 *      and older ones) leave it (they are a prefix: offsets follow WAL
 *      order);
 *   4. once every partition is done, the WAL file is unlinked, the WAL
 *      directory fsynced, and its descriptor closed under wal_retire_lock.
 * A batch whose CRC does not match fails its partition at step 2 (the
 * file's other partitions may be registered by then: they are skipped at
 * the retry, as after a crash).
 * A failure leaves the WAL file in place (what was registered stays
 * registered and is skipped next time) and is retried after a backoff that
 * doubles from 1 s to 64 s (engine_index_now retries at once); it is
 * logged when it begins, when the error changes and when indexing resumes,
 * not at every retry.
 * engine_close lets the indexer finish the sealed files first, so a clean
 * close leaves only the active WAL file. After each file it indexes, the
 * thread runs a retention pass (retention.c), so that retention keeps up
 * with a load that never lets it idle, and kicks the compaction thread
 * (compact.c, "WHEN"), which compacts on its own, without warm_lock but
 * for its snapshot and swap; with nothing left to index, it runs
 * retention, then sleeps until kicked or for RETENTION_CHECK_MS. That
 * idle pass ends (what engine_index_now waits for) only once a last look
 * finds no sealed file: one sealed while retention ran is indexed first.
 * A partition whose warm tier is halted (compact.c, "HALT") is not
 * indexed: a file holding its frames is indexed for the other partitions
 * and kept, open (wal_file.kept), until the next open.
 *
 * SEGMENT CUT. Under retention.bytes (retention_bytes_limit >= 0) a
 * partition's frames of one file are cut, in file order, into runs whose
 * segment file fits retention_cut_bytes: a run takes frames while
 * seg_bytes_bound of them stays within it, and at least one. The bound: a
 * V2 frame's batch as it is (re-encoding never grows it), a V1 frame's
 * twice its length plus a batch header (it is rebuilt as a batch), plus
 * the header, trailer, one index entry per SEGMENT_INDEX_INTERVAL bytes
 * (at most one a batch: one file's frames of a partition are dense in
 * offsets and raw positions) and one key table entry per record (as if
 * every record had a key). Each run is indexed as steps 2 and 3 say, so
 * a crash between two of them leaves the first registered, as a crash
 * between two partitions does.
 *
 * CRASH SAFETY (registry.h, "What counts"): at open, warm_load reads every
 * registry, and a writer removes segment files no registry lists (written
 * but not registered) and the segment directories of topics that no longer
 * exist; recovery then skips WAL frames below a partition's registered
 * next offset, and the indexer deletes WAL files whose frames are all
 * registered. So every frame counts once: in the WAL or in a segment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "byteorder.h"
#include "engine-private.h"
#include "log.h"
#include "recode.h"
#include "registry.h"

void warm_dir(const struct engine *e, uint32_t topic_id, int32_t partition, char *buf, size_t len)
{
	if (partition < 0)
		snprintf(buf, len, "%s/segments/%" PRIu32, e->dir, topic_id);
	else
		snprintf(buf, len, "%s/segments/%" PRIu32 "/%" PRId32, e->dir, topic_id, partition);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		log_msg(LOG_LVL_ERROR, "warm", "cannot remove %s: %s", path, strerror(errno));
	return 0;
}

static void fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0)
			log_msg(LOG_LVL_ERROR, "warm", "fsync of %s failed", path);
		close(fd);
	}
}

static void rm_tree(const struct engine *e, const char *path)
{
	char root[4200];
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(root, sizeof(root), "%s/segments", e->dir);
	fsync_path(root);
}

void warm_topic_drop(struct engine *e, uint32_t topic_id)
{
	char path[4200];
	if (e->opt.read_only)
		return;
	warm_dir(e, topic_id, -1, path, sizeof(path));
	pthread_mutex_lock(&e->warm_lock);
	rm_tree(e, path);
	pthread_mutex_unlock(&e->warm_lock);
}

/* mkdir that fsyncs the parent when it created the directory. */
static int mkdir_durable(const char *path)
{
	char parent[4200];
	char *slash;
	if (mkdir(path, 0755) < 0)
		return errno == EEXIST ? 0 : -errno;
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	if (slash) {
		*slash = 0;
		fsync_path(parent);
	}
	return 0;
}

/* ---- open ------------------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Remove the files of dir that the registry does not list. Each listed
 * name is made once and looked up by binary search, not formatted again
 * for every directory entry (open time grows with the segments). */
static void remove_unlisted(const char *dir, const struct registry *r)
{
	DIR *d;
	struct dirent *de;
	bool removed = false;
	char(*names)[64] = r->n ? malloc(r->n * sizeof(*names)) : NULL;
	char **sorted = r->n ? malloc(r->n * sizeof(*sorted)) : NULL;
	size_t nl = 0;

	if (r->n && (!names || !sorted)) {
		free(names);
		free(sorted);
		return; /* nothing is removed rather than something listed */
	}
	for (size_t i = 0; i < r->n; i++) {
		if (r->segs[i].state != SEGMENT_LOCAL)
			continue; /* remote: a local copy is left over (tier.c) */
		registry_segment_file(&r->segs[i], names[nl], sizeof(names[nl]));
		sorted[nl] = names[nl];
		nl++;
	}
	if (nl)
		qsort(sorted, nl, sizeof(*sorted), name_cmp);
	d = opendir(dir);
	if (!d)
		goto out;
	while ((de = readdir(d))) {
		char path[4600];
		const char *key = de->d_name;
		size_t len = strlen(de->d_name);
		bool tmp = strcmp(de->d_name, REGISTRY_FILE ".tmp") == 0;
		if (!tmp && (len < 4 || strcmp(de->d_name + len - 4, ".seg") != 0))
			continue;
		if (!tmp && nl && bsearch(&key, sorted, nl, sizeof(*sorted), name_cmp))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!tmp)
			log_msg(LOG_LVL_WARN, "warm",
				"%s: not registered (indexing or compaction was cut short), removed",
				path);
		unlink(path);
		removed = true;
	}
	closedir(d);
	if (removed)
		fsync_path(dir);
out:
	free(sorted);
	free(names);
}

static int partition_load(struct engine *e, struct partition *p)
{
	char dir[4200];
	struct registry r;
	int rc;

	warm_dir(e, p->topic_id, p->index, dir, sizeof(dir));
	rc = registry_load(dir, p->topic_id, p->index, &r);
	if (rc) {
		log_msg(LOG_LVL_ERROR, "warm", "%s/%s: %s", dir, REGISTRY_FILE,
			chronik_strerror(rc));
		return rc;
	}
	if (!e->opt.read_only)
		remove_unlisted(dir, &r);
	if (r.n) {
		p->segs = calloc(r.n, sizeof(*p->segs));
		if (!p->segs) {
			registry_fini(&r);
			return -ENOMEM;
		}
		p->segs_cap = r.n;
	}
	for (size_t i = 0; i < r.n; i++) {
		rc = tier_segment_new(e, p->topic_id, p->index, dir, &r.segs[i], &p->segs[i]);
		if (rc) {
			registry_fini(&r);
			return rc;
		}
		p->nsegs++;
		p->seg_bytes += r.segs[i].bytes;
		if (r.segs[i].max_timestamp > p->max_timestamp)
			p->max_timestamp = r.segs[i].max_timestamp;
	}
	p->log_start_offset = r.log_start_offset;
	p->raw_start = r.raw_start;
	p->seg_next_offset = p->next_offset = r.next_offset;
	p->seg_raw_end = p->raw_size = r.raw_end;
	registry_fini(&r);
	return 0;
}

int warm_load(struct engine *e)
{
	char root[4200];
	DIR *d;
	struct dirent *de;
	int rc = 0;

	pthread_rwlock_rdlock(&e->meta_lock);
	for (size_t i = 0; i < e->ntopics && rc == 0; i++)
		for (int32_t j = 0; j < e->topics[i]->nparts && rc == 0; j++)
			rc = partition_load(e, e->topics[i]->parts[j]);
	pthread_rwlock_unlock(&e->meta_lock);
	if (rc || e->opt.read_only)
		return rc;

	/* Directories of topics deleted while their removal was under way. */
	snprintf(root, sizeof(root), "%s/segments", e->dir);
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char *end, path[4600];
		unsigned long id;
		if (de->d_name[0] == '.')
			continue;
		errno = 0;
		id = strtoul(de->d_name, &end, 10);
		pthread_rwlock_rdlock(&e->meta_lock);
		bool known = !errno && !*end && id <= UINT32_MAX &&
			     meta_topic_find_id(e, (uint32_t)id);
		pthread_rwlock_unlock(&e->meta_lock);
		if (known)
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		log_msg(LOG_LVL_INFO, "warm", "%s: segments of a deleted topic removed", path);
		rm_tree(e, path);
	}
	closedir(d);
	return 0;
}

/* Make p's segments below p->seg_next_offset those of registry r (p->lock
 * held): what the writer's retention removed goes, what its compaction
 * swapped in (same offsets, a new gen) replaces the old files, one the
 * writer's cold tier moved to the object store (same gen, state remote)
 * is read from there from now on, the rest is kept as it is. Only a
 * read-only engine's view can fall behind so. */
static int partition_resync(const char *dir, struct partition *p, const struct registry *r)
{
	struct segment **v = NULL;
	size_t n = 0, j = 0;
	uint64_t bytes = 0;
	int rc = 0;

	if (r->n && !(v = calloc(r->n, sizeof(*v))))
		return -ENOMEM;
	for (size_t i = 0; i < r->n && rc == 0; i++) {
		const struct segment_meta *m = &r->segs[i];
		if (m->base_offset >= p->seg_next_offset)
			break;
		/* p->segs and r are both in offset order. */
		while (j < p->nsegs && segment_meta_get(p->segs[j])->base_offset < m->base_offset)
			j++;
		if (j < p->nsegs && segment_meta_get(p->segs[j])->base_offset == m->base_offset &&
		    segment_meta_get(p->segs[j])->gen == m->gen &&
		    segment_meta_get(p->segs[j])->state == m->state) {
			segment_ref(p->segs[j]);
			v[n++] = p->segs[j];
		} else {
			rc = tier_segment_new(p->e, p->topic_id, p->index, dir, m, &v[n]);
			if (rc == 0)
				n++;
		}
		bytes += m->bytes;
	}
	if (rc) {
		for (size_t i = 0; i < n; i++)
			segment_unref(v[i]);
		free(v);
		return rc;
	}
	for (size_t i = 0; i < p->nsegs; i++)
		segment_unref(p->segs[i]);
	free(p->segs);
	p->segs = v;
	p->nsegs = n;
	p->segs_cap = r->n;
	p->segs_changes++;
	p->seg_bytes = bytes;
	if (r->log_start_offset > p->log_start_offset) {
		p->log_start_offset = r->log_start_offset;
		p->raw_start = r->raw_start;
	}
	return 0;
}

/* Adopt the segments of p's registry past p->seg_next_offset, and what
 * retention and compaction changed below it; p->lock not held. */
static int partition_refresh(struct engine *e, struct partition *p)
{
	char dir[4200];
	struct registry r;
	int rc;

	warm_dir(e, p->topic_id, p->index, dir, sizeof(dir));
	rc = registry_load(dir, p->topic_id, p->index, &r);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	rc = partition_resync(dir, p, &r);
	pthread_mutex_unlock(&p->lock);
	if (rc) {
		registry_fini(&r);
		return rc;
	}
	for (size_t i = 0; i < r.n && rc == 0; i++) {
		const struct segment_meta *m = &r.segs[i];
		struct segment *s;
		pthread_mutex_lock(&p->lock);
		int64_t warm_end = p->seg_next_offset;
		pthread_mutex_unlock(&p->lock);
		if (m->base_offset < warm_end)
			continue;
		rc = tier_segment_new(e, p->topic_id, p->index, dir, m, &s);
		if (rc)
			break;
		pthread_mutex_lock(&p->lock);
		if (p->nsegs == p->segs_cap) {
			size_t cap = p->segs_cap ? p->segs_cap * 2 : 8;
			struct segment **v = realloc(p->segs, cap * sizeof(*v));
			if (v) {
				p->segs = v;
				p->segs_cap = cap;
			}
		}
		/* It must continue the warm tier and meet the hot index. */
		if (p->nsegs == p->segs_cap)
			rc = -ENOMEM;
		else if (m->base_offset != p->seg_next_offset ||
			 (p->n && p->idx[0].base_offset != m->base_offset) ||
			 (!p->n && p->next_offset < m->base_offset))
			rc = CHRONIK_ECORRUPT;
		if (rc) {
			pthread_mutex_unlock(&p->lock);
			segment_unref(s);
			break;
		}
		p->segs[p->nsegs++] = s;
		p->segs_changes++;
		p->seg_next_offset = m->last_offset + 1;
		p->seg_raw_end = m->raw_end;
		p->seg_bytes += m->bytes;
		/* The hot entries the segment covers are a prefix. */
		size_t k = 0;
		uint64_t bytes = 0;
		while (k < p->n && p->idx[k].base_offset <= m->last_offset)
			bytes += p->idx[k++].frame_len;
		if (k)
			memmove(p->idx, p->idx + k, (p->n - k) * sizeof(*p->idx));
		p->n -= k;
		p->wal_bytes -= bytes;
		if (p->next_offset < p->seg_next_offset) {
			p->next_offset = p->c_next_offset = p->seg_next_offset;
			p->raw_size = p->c_raw_size = p->seg_raw_end;
		}
		if (m->max_timestamp > p->max_timestamp)
			p->max_timestamp = m->max_timestamp;
		pthread_cond_broadcast(&p->grown);
		pthread_mutex_unlock(&p->lock);
	}
	registry_fini(&r);
	return rc;
}

int warm_refresh(struct engine *e)
{
	int rc = 0;
	pthread_rwlock_rdlock(&e->meta_lock);
	for (size_t i = 0; i < e->ntopics && rc == 0; i++)
		for (int32_t j = 0; j < e->topics[i]->nparts && rc == 0; j++)
			rc = partition_refresh(e, e->topics[i]->parts[j]);
	pthread_rwlock_unlock(&e->meta_lock);
	return rc;
}

/* ---- indexing ----------------------------------------------------------------- */

/* What the topic's compression.type makes of an uncompressed batch: the
 * codec to re-encode it with, or BATCH_CODEC_NONE to keep it as it came
 * ("producer", "none", "uncompressed"). Unknown values mean the default,
 * lz4. */
static enum batch_codec codec_named(const char *s)
{
	if (strcmp(s, "producer") == 0 || strcmp(s, "none") == 0 || strcmp(s, "uncompressed") == 0)
		return BATCH_CODEC_NONE;
	if (strcmp(s, "zstd") == 0)
		return BATCH_CODEC_ZSTD;
	if (strcmp(s, "gzip") == 0)
		return BATCH_CODEC_GZIP;
	if (strcmp(s, "snappy") == 0)
		return BATCH_CODEC_SNAPPY;
	return BATCH_CODEC_LZ4;
}

enum batch_codec warm_store_codec(const char *config_json)
{
	enum batch_codec c = codec_named(engine_topic_config_default("compression.type"));
	json_object *o = config_json ? json_tokener_parse(config_json) : NULL, *v;
	if (o && json_object_object_get_ex(o, "compression.type", &v))
		c = codec_named(json_object_get_string(v));
	json_object_put(o);
	return c;
}

/* A frame of the file being indexed, as index_file decoded (and checked)
 * it once: the later steps read these fields instead of decoding again. */
struct ifr {
	uint32_t topic_id;
	int32_t partition;
	uint32_t pos;
	uint32_t len;
	int64_t base_offset;
	int64_t last_offset;
	uint64_t raw_pos; /* V2 */
	uint32_t raw_len; /* V2 */
	uint8_t version;
};

static int ifr_cmp(const void *a, const void *b)
{
	const struct ifr *x = a, *y = b;
	if (x->topic_id != y->topic_id)
		return x->topic_id < y->topic_id ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Uncompressed batches waiting to be merged into one lz4 batch. */
struct pending {
	const uint8_t **b;
	size_t *len;
	size_t n, cap, bytes;
	uint64_t raw_pos, raw_len;
	uint32_t records;
};

static int pending_flush(struct pending *pd, struct segment_writer *w, enum batch_codec codec)
{
	uint8_t *out;
	size_t out_len;
	int rc;

	if (pd->n == 0)
		return 0;
	/* A batch alone (as large as a merge) keeps its records' encoding
	 * when it can: the WAL's batches were checked at append. */
	if (pd->n == 1)
		rc = recode_one(pd->b[0], pd->len[0], codec, &out, &out_len);
	else
		rc = recode_merge(pd->b, pd->len, pd->n, codec, &out, &out_len);
	if (rc)
		return rc;
	/* Compression that does not pay keeps the batches as they were. */
	if (out_len >= pd->bytes) {
		free(out);
		for (size_t i = 0; i < pd->n; i++) {
			uint64_t raw;
			rc = batch_raw_size(pd->b[i], pd->len[i], &raw);
			if (rc == 0)
				rc = segment_writer_add(w, pd->b[i], pd->len[i], pd->raw_pos, raw,
							(uint32_t)get_be32(pd->b[i] + 57));
			if (rc)
				return rc;
			pd->raw_pos += raw;
		}
	} else {
		/* the keys from the uncompressed batches it was made of */
		rc = segment_writer_add_from(w, out, out_len, pd->raw_pos, pd->raw_len, pd->records,
					     pd->b, pd->len, pd->n);
		free(out);
		if (rc)
			return rc;
	}
	pd->n = pd->bytes = 0;
	pd->raw_len = 0;
	pd->records = 0;
	return 0;
}

/* A batch larger than SEGMENT_SPLIT_BYTES, b[0, len) at raw position raw
 * (rlen bytes of raw view, records records), re-encoded as batches of
 * about SEGMENT_MERGE_BYTES of records each (recode_split), or kept as it
 * is when that does not make it smaller. */
static int split_add(struct segment_writer *w, const uint8_t *b, size_t len, uint64_t raw,
		     uint64_t rlen, uint32_t records, enum batch_codec codec)
{
	struct recode_piece *pc;
	size_t n, total = 0;
	int rc = recode_split(b, len, codec, SEGMENT_MERGE_BYTES, &pc, &n);

	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		total += pc[i].len;
	if (total >= len) {
		recode_pieces_free(pc, n);
		return segment_writer_add(w, b, len, raw, rlen, records);
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		/* the keys from the uncompressed batch they are pieces of,
		 * with the first */
		rc = segment_writer_add_from(w, pc[i].b, pc[i].len, raw, pc[i].raw_len,
					     pc[i].records, &b, &len, i == 0);
		raw += pc[i].raw_len;
	}
	recode_pieces_free(pc, n);
	return rc;
}

static int pending_add(struct pending *pd, const uint8_t *b, size_t len, uint64_t raw_pos,
		       uint64_t raw_len, uint32_t records)
{
	if (pd->n == pd->cap) {
		size_t cap = pd->cap ? pd->cap * 2 : 64;
		const uint8_t **v = realloc(pd->b, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		pd->b = v;
		size_t *l = realloc(pd->len, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		pd->len = l;
		pd->cap = cap;
	}
	if (pd->n == 0)
		pd->raw_pos = raw_pos;
	pd->b[pd->n] = b;
	pd->len[pd->n++] = len;
	pd->bytes += len;
	pd->raw_len += raw_len;
	pd->records += records;
	return 0;
}

/* Drop the hot-index entries of WAL files <= seq that the segments now
 * cover; p->lock held. */
static void hot_drop(struct partition *p, uint64_t seq)
{
	size_t k = 0;
	uint64_t bytes = 0;
	while (k < p->n && p->idx[k].file_seq <= seq && p->idx[k].base_offset < p->seg_next_offset)
		bytes += p->idx[k++].frame_len;
	if (k == 0)
		return;
	memmove(p->idx, p->idx + k, (p->n - k) * sizeof(*p->idx));
	p->n -= k;
	p->wal_bytes -= bytes;
	/* Give memory back, keeping the room the commit thread reserved for
	 * the group it is writing (p->reserved: it reserves before it writes
	 * and publishes after, so publishing must not need to grow idx). */
	size_t keep = p->n + p->reserved;
	if (p->cap > 1024 && p->cap >= 8 * (keep + 64)) {
		size_t cap = 2 * (keep + 64);
		struct hot_entry *v = realloc(p->idx, cap * sizeof(*v));
		if (v) {
			p->idx = v;
			p->cap = cap;
		}
	}
}

static int index_partition(struct engine *e, struct partition *p, uint64_t seq, const uint8_t *map,
			   const struct ifr *fr, size_t n, enum batch_codec codec,
			   pthread_mutex_t *serial)
{
	char dir[4200], path[4400], name[64];
	struct segment_writer *w = NULL;
	struct pending pd = { 0 };
	struct segment_meta meta = { 0 };
	struct segment *s = NULL;
	struct registry reg = { 0 };
	int64_t next;
	uint64_t raw;
	size_t i = 0;
	bool deleted;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	next = p->seg_next_offset;
	raw = p->seg_raw_end;
	deleted = p->deleted;
	pthread_mutex_unlock(&p->lock);
	if (deleted)
		return 0;

	/* Frames already registered (a crash after the registry was saved). */
	for (; i < n; i++) {
		if (fr[i].base_offset >= next)
			break;
		if (fr[i].last_offset >= next)
			return CHRONIK_ECORRUPT;
	}
	if (i == n)
		goto publish;

	/* Serial: a partition that finds its topic's directory made by
	 * another one must not go on before that one has fsynced its parent. */
	warm_dir(e, p->topic_id, -1, dir, sizeof(dir));
	pthread_mutex_lock(serial);
	rc = mkdir_durable(dir);
	pthread_mutex_unlock(serial);
	warm_dir(e, p->topic_id, p->index, dir, sizeof(dir));
	if (rc == 0)
		rc = mkdir_durable(dir);
	if (rc)
		return rc;
	{
		if (fr[i].base_offset != next || (fr[i].version == 2 && fr[i].raw_pos != raw))
			return CHRONIK_ECORRUPT;
		registry_segment_name(next, name, sizeof(name));
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		unlink(path); /* a stale unregistered one */
		rc = segment_writer_open(path, p->topic_id, p->index, next, seq, &w);
		if (rc)
			return rc;
	}
	uint8_t **owned = calloc(n, sizeof(*owned));
	if (!owned) {
		rc = -ENOMEM;
		goto fail;
	}
	for (; i < n && rc == 0; i++) {
		struct frame_info fi;
		struct batch_header bh;
		const uint8_t *b;
		size_t blen;
		uint64_t rlen;
		if (fr[i].base_offset != next) {
			rc = CHRONIK_ECORRUPT;
			break;
		}
		if (fr[i].version == 2) {
			/* index_file checked the frame but not its batch's
			 * CRC: checked here, just before the batch is
			 * compressed or copied, so that it is read from
			 * memory once. */
			b = map + fr[i].pos + FRAME_V2_HEADER_SIZE;
			blen = fr[i].len - FRAME_V2_HEADER_SIZE;
			rlen = fr[i].raw_len;
			if (batch_crc_check(b, blen) != 0) {
				/* index_file logs the failure (once, not
				 * at every retry); the position is a detail. */
				log_msg(LOG_LVL_DEBUG, "warm",
					"WAL file %" PRIu64 " position %" PRIu32
					": batch CRC mismatch",
					seq, fr[i].pos);
				rc = CHRONIK_ECORRUPT;
				break;
			}
		} else {
			/* Not written by this engine's data path (V1 is the
			 * metadata log's), but valid: kept as a batch. */
			if (frame_decode(map + fr[i].pos, fr[i].len, &fi) != FRAME_VALID) {
				rc = CHRONIK_ECORRUPT;
				break;
			}
			rc = frame_v1_as_batch(map + fr[i].pos, fr[i].len, &owned[i], &blen);
			if (rc)
				break;
			b = owned[i];
			rlen = (fi.value_len > 0 ? (uint64_t)fi.value_len : 0) + 1;
		}
		rc = batch_header_parse(b, blen, &bh);
		if (rc)
			break;
		if (codec != BATCH_CODEC_NONE && recode_mergeable(&bh) &&
		    blen > SEGMENT_SPLIT_BYTES) {
			rc = pending_flush(&pd, w, codec);
			if (rc == 0)
				rc = split_add(w, b, blen, raw, rlen, (uint32_t)bh.record_count,
					       codec);
		} else if (codec != BATCH_CODEC_NONE && recode_mergeable(&bh)) {
			/* A batch as large as a merge is re-encoded alone. */
			if (pd.bytes + blen > SEGMENT_MERGE_BYTES)
				rc = pending_flush(&pd, w, codec);
			if (rc == 0)
				rc = pending_add(&pd, b, blen, raw, rlen,
						 (uint32_t)bh.record_count);
			if (rc == 0 && pd.bytes >= SEGMENT_MERGE_BYTES)
				rc = pending_flush(&pd, w, codec);
		} else {
			rc = pending_flush(&pd, w, codec);
			if (rc == 0)
				rc = segment_writer_add(w, b, blen, raw, rlen,
							(uint32_t)bh.record_count);
		}
		next = bh.base_offset + bh.last_offset_delta + 1;
		raw += rlen;
	}
	if (rc == 0)
		rc = pending_flush(&pd, w, codec);
	for (size_t k = 0; k < n; k++)
		free(owned[k]);
	free(owned);
	free(pd.b);
	free(pd.len);
	if (rc)
		goto fail;
	rc = segment_writer_finish(w, &meta);
	w = NULL;
	if (rc)
		return rc;
	fsync_path(dir);
	pthread_mutex_lock(serial); /* the hook is called one segment at a time */
	warm_segment_written(e, p, path);
	pthread_mutex_unlock(serial);
	rc = segment_new(path, &meta, &s);
	if (rc)
		goto unlink_seg;

	/* The registry with the new segment. */
	pthread_mutex_lock(&p->lock);
	reg.segs = calloc(p->nsegs + 1, sizeof(*reg.segs));
	if (reg.segs) {
		for (size_t k = 0; k < p->nsegs; k++)
			reg.segs[k] = *segment_meta_get(p->segs[k]);
		reg.segs[p->nsegs] = meta;
		reg.n = p->nsegs + 1;
	}
	reg.log_start_offset = p->log_start_offset;
	reg.raw_start = p->raw_start;
	pthread_mutex_unlock(&p->lock);
	if (!reg.segs) {
		rc = -ENOMEM;
		goto unlink_seg;
	}
	reg.next_offset = meta.last_offset + 1;
	reg.raw_end = meta.raw_end;
	rc = registry_save(dir, p->topic_id, p->index, &reg);
	free(reg.segs);
	if (rc) {
		/* Listed or not, the next open decides; the WAL file stays. A
		 * retry would take the file for a stale unregistered one and
		 * remove it, so indexing stops (indexer_halt_rc). */
		log_msg(LOG_LVL_ERROR, "warm", "%s/%s: %s", dir, REGISTRY_FILE,
			chronik_strerror(rc));
		atomic_store(&e->indexer_halt_rc, rc);
		segment_unref(s);
		return rc;
	}

publish:
	pthread_mutex_lock(&p->lock);
	if (s) {
		if (p->nsegs == p->segs_cap) {
			size_t cap = p->segs_cap ? p->segs_cap * 2 : 8;
			struct segment **v = realloc(p->segs, cap * sizeof(*v));
			if (!v) {
				/* Registered on disk: counted at the next open;
				 * until then nothing is indexed (as above). */
				pthread_mutex_unlock(&p->lock);
				atomic_store(&e->indexer_halt_rc, -ENOMEM);
				segment_unref(s);
				return -ENOMEM;
			}
			p->segs = v;
			p->segs_cap = cap;
		}
		p->segs[p->nsegs++] = s;
		p->segs_changes++;
		p->seg_next_offset = meta.last_offset + 1;
		p->seg_raw_end = meta.raw_end;
		p->seg_bytes += meta.bytes;
	}
	hot_drop(p, seq);
	if ((p->n && (p->idx[0].base_offset != p->seg_next_offset ||
		      p->idx[0].raw_pos != p->seg_raw_end)) ||
	    (!p->n && p->next_offset != p->seg_next_offset))
		log_msg(LOG_LVL_ERROR, "warm", "%s/%d: hot index does not continue the segments",
			p->topic_name, p->index);
	pthread_mutex_unlock(&p->lock);
	return 0;

unlink_seg:
	segment_unref(s);
	unlink(path);
	return rc;
fail:
	segment_writer_abort(w);
	return rc;
}

/* The most a frame's batch weighs in a segment (SEGMENT CUT). */
static uint64_t frame_batch_bound(const struct ifr *f)
{
	return f->version == 2 ? f->len - FRAME_V2_HEADER_SIZE :
				 2 * (uint64_t)f->len + BATCH_HEADER_SIZE;
}

/* The records of a frame: the key table entries it may take. */
static uint64_t frame_records(const struct ifr *f)
{
	return (uint64_t)(f->last_offset - f->base_offset + 1);
}

/* The most a segment file of n frames holding records records whose
 * batches weigh at most data bytes can weigh (SEGMENT CUT). */
static uint64_t seg_bytes_bound(uint64_t data, size_t n, uint64_t records)
{
	uint64_t entries = 1 + data / SEGMENT_INDEX_INTERVAL;
	if (entries > n)
		entries = n;
	return SEGMENT_HEADER_SIZE + data + entries * SEGMENT_INDEX_ENTRY_SIZE +
	       records * SEGMENT_KEY_ENTRY_SIZE + SEGMENT_TRAILER_V2_SIZE;
}

/* Index p's frames fr[0, n) of file seq: one segment, or under
 * retention.bytes limit (>= 0) runs of at most retention_cut_bytes, each
 * after retention made room for it (SEGMENT CUT). warm_lock held by the
 * indexer thread; serial as index_partition's. */
static int index_partition_cut(struct engine *e, struct partition *p, uint64_t seq,
			       const uint8_t *map, const struct ifr *fr, size_t n,
			       enum batch_codec codec, int64_t limit, pthread_mutex_t *serial)
{
	size_t i = 0;
	int rc = 0;

	if (limit < 0)
		return index_partition(e, p, seq, map, fr, n, codec, serial);
	uint64_t cut = retention_cut_bytes(limit);
	pthread_mutex_lock(&p->lock);
	int64_t next = p->seg_next_offset;
	pthread_mutex_unlock(&p->lock);
	/* Frames already registered are index_partition's to skip. */
	while (i < n && fr[i].base_offset < next)
		i++;
	if (i > 0)
		rc = index_partition(e, p, seq, map, fr, i, codec, serial);
	while (rc == 0 && i < n) {
		size_t j = i + 1;
		uint64_t data = frame_batch_bound(&fr[i]), recs = frame_records(&fr[i]);
		while (j < n && seg_bytes_bound(data + frame_batch_bound(&fr[j]), j + 1 - i,
						recs + frame_records(&fr[j])) <= cut) {
			recs += frame_records(&fr[j]);
			data += frame_batch_bound(&fr[j++]);
		}
		pthread_mutex_lock(serial);
		rc = retention_make_room(e, p, limit, seg_bytes_bound(data, j - i, recs));
		pthread_mutex_unlock(serial);
		if (rc == 0)
			rc = index_partition(e, p, seq, map, fr + i, j - i, codec, serial);
		pthread_mutex_lock(&p->lock);
		p->seg_reserved = 0; /* listed (counted in seg_bytes) or given up */
		pthread_mutex_unlock(&p->lock);
		i = j;
	}
	return rc;
}

/* Threads indexing one file's partitions side by side (INDEXING, 2). */
#define INDEX_WORKERS 4

/* One partition's share of the file being indexed (index_file). */
struct index_job {
	struct partition *p;
	const struct ifr *fr;
	size_t n;
	enum batch_codec codec;
	int64_t limit; /* retention.bytes, -1 when none (SEGMENT CUT) */
	int rc;
	bool halted; /* its partition's warm tier is halted: not indexed */
};

struct index_pool {
	struct engine *e;
	uint64_t seq;
	const uint8_t *map;
	struct index_job *jobs;
	size_t njobs;
	atomic_size_t next;
	pthread_mutex_t serial;
};

static void *index_worker(void *arg)
{
	struct index_pool *pl = arg;
	size_t k;
	while ((k = atomic_fetch_add(&pl->next, 1)) < pl->njobs) {
		struct index_job *j = &pl->jobs[k];
		/* A halted partition (compact.c, "HALT") saves no registry:
		 * its frames stay in the WAL, and so does the file. Stable
		 * here: warm_lock is held (halting takes it). */
		pthread_mutex_lock(&j->p->lock);
		j->halted = j->p->warm_halt_rc != 0;
		pthread_mutex_unlock(&j->p->lock);
		if (j->halted)
			continue;
		j->rc = index_partition_cut(pl->e, j->p, pl->seq, pl->map, j->fr, j->n, j->codec,
					    j->limit, &pl->serial);
	}
	return NULL;
}

#define INDEX_BACKOFF_MIN_MS 1000u
#define INDEX_BACKOFF_MAX_MS 64000u

/* quiet: a retry of a failure already logged (its details go to debug). */
static int index_file(struct engine *e, uint64_t seq, int fd, bool quiet)
{
	char path[4096];
	struct stat st;
	struct ifr *fr = NULL;
	struct index_job *jobs = NULL;
	size_t n = 0, cap = 0, size;
	uint8_t *map;
	uint64_t pos = WAL_FILE_HEADER_SIZE;
	int rc = 0;

	wal_path(e, seq, path, sizeof(path));
	if (fstat(fd, &st) < 0)
		return -errno;
	size = (size_t)st.st_size;
	if (size < WAL_FILE_HEADER_SIZE)
		return CHRONIK_ECORRUPT;
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	while (pos < size) {
		struct frame_info fi;
		if (frame_decode_no_batch_crc(map + pos, size - pos, &fi) != FRAME_VALID) {
			log_msg(LOG_LVL_ERROR, "warm", "%s position %" PRIu64 ": invalid frame",
				path, pos);
			rc = CHRONIK_ECORRUPT;
			goto out;
		}
		if (fi.version == 3) { /* a sync point: no partition's */
			pos += fi.frame_len;
			continue;
		}
		if (n == cap) {
			struct ifr *v = realloc(fr, (cap = cap ? cap * 2 : 256) * sizeof(*v));
			if (!v) {
				rc = -ENOMEM;
				goto out;
			}
			fr = v;
		}
		fr[n++] = (struct ifr){ .topic_id = fi.topic_id,
					.partition = fi.partition,
					.pos = (uint32_t)pos,
					.len = fi.frame_len,
					.base_offset = fi.base_offset,
					.last_offset = fi.last_offset,
					.raw_pos = fi.raw_pos,
					.raw_len = fi.raw_len,
					.version = fi.version };
		pos += fi.frame_len;
	}
	if (n)
		qsort(fr, n, sizeof(*fr), ifr_cmp);
	/* The partitions' shares, each with its partition and codec. */
	size_t njobs = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || fr[i].topic_id != fr[i - 1].topic_id ||
		    fr[i].partition != fr[i - 1].partition)
			njobs++;
	jobs = njobs ? calloc(njobs, sizeof(*jobs)) : NULL;
	if (njobs && !jobs) {
		rc = -ENOMEM;
		goto out;
	}
	njobs = 0;
	pthread_mutex_lock(&e->warm_lock);
	pthread_rwlock_rdlock(&e->meta_lock);
	for (size_t i = 0; i < n && rc == 0;) {
		size_t j = i;
		while (j < n && fr[j].topic_id == fr[i].topic_id &&
		       fr[j].partition == fr[i].partition)
			j++;
		struct topic *t = meta_topic_find_id(e, fr[i].topic_id);
		/* Only a deleted topic's frames may go unindexed: dropping
		 * anything else would remove acknowledged records with the file. */
		if (t && (fr[i].partition < 0 || fr[i].partition >= t->nparts)) {
			log_msg(quiet ? LOG_LVL_DEBUG : LOG_LVL_ERROR, "warm",
				"%s: frames of topic id %" PRIu32 " partition %" PRId32
				", which has %" PRId32 " partitions: not indexed, file kept",
				path, fr[i].topic_id, fr[i].partition, t->nparts);
			rc = CHRONIK_ECORRUPT;
		} else if (t) {
			struct index_job *jb = &jobs[njobs++];
			jb->p = t->parts[fr[i].partition];
			engine_partition_ref(jb->p);
			jb->codec = warm_store_codec(t->config_json);
			jb->limit = retention_bytes_limit(t->config_json);
			jb->fr = fr + i;
			jb->n = j - i;
		}
		i = j;
	}
	pthread_rwlock_unlock(&e->meta_lock);
	/* The partitions are indexed side by side, under the one warm_lock
	 * this thread holds for them all (INDEXING, "in parallel"). */
	if (rc == 0 && njobs) {
		struct index_pool pl = {
			.e = e, .seq = seq, .map = map, .jobs = jobs, .njobs = njobs
		};
		pthread_t tid[INDEX_WORKERS - 1];
		size_t nt = 0;
		atomic_init(&pl.next, 0);
		pthread_mutex_init(&pl.serial, NULL);
		while (nt < INDEX_WORKERS - 1 && nt + 1 < njobs &&
		       pthread_create(&tid[nt], NULL, index_worker, &pl) == 0)
			nt++;
		index_worker(&pl);
		for (size_t k = 0; k < nt; k++)
			pthread_join(tid[k], NULL);
		pthread_mutex_destroy(&pl.serial);
	}
	pthread_mutex_unlock(&e->warm_lock);
	bool keep = false;
	for (size_t k = 0; k < njobs; k++) {
		struct index_job *jb = &jobs[k];
		keep |= jb->halted;
		if (jb->rc) {
			log_msg(quiet ? LOG_LVL_DEBUG : LOG_LVL_ERROR, "warm",
				"%s: indexing %s/%d failed: %s", path, jb->p->topic_name,
				jb->p->index, chronik_strerror(jb->rc));
			if (rc == 0)
				rc = jb->rc;
		}
		engine_partition_unref(jb->p);
	}
	if (rc)
		goto out;
	if (keep) {
		/* Every partition but a halted one is indexed: the file stays,
		 * open, for the halted one's reads and for the next open, which
		 * skips what the registries list; it no longer counts as WAL
		 * waiting for the indexer (back-pressure). */
		pthread_mutex_lock(&e->files_lock);
		for (size_t i = 0; i < e->nfiles; i++)
			if (e->files[i].seq == seq && e->files[i].fd >= 0) {
				e->files[i].kept = true;
				atomic_fetch_sub(&e->wal_sealed_bytes, e->files[i].bytes);
				e->files[i].bytes = 0;
			}
		pthread_mutex_unlock(&e->files_lock);
		log_msg(LOG_LVL_DEBUG, "warm", "%s indexed but kept: a partition is halted", path);
		goto out;
	}

	/* Every partition's segment from this file is durable and registered. */
	if (unlink(path) < 0) {
		rc = -errno;
		goto out;
	}
	rc = fsync_dir(e->dir_fd);
	pthread_rwlock_wrlock(&e->wal_retire_lock);
	pthread_mutex_lock(&e->files_lock);
	for (size_t i = 0; i < e->nfiles; i++)
		if (e->files[i].seq == seq && e->files[i].fd >= 0) {
			close(e->files[i].fd);
			e->files[i].fd = -1;
			atomic_fetch_sub(&e->wal_sealed_bytes, e->files[i].bytes);
			e->files[i].bytes = 0;
		}
	wal_files_trim(e);
	pthread_mutex_unlock(&e->files_lock);
	pthread_rwlock_unlock(&e->wal_retire_lock);
	log_msg(LOG_LVL_DEBUG, "warm", "%s indexed and removed", path);
out:
	munmap(map, size);
	free(jobs);
	free(fr);
	return rc;
}

/* The oldest sealed WAL file not yet indexed: 1 and *seq / *fd, else 0. */
static int next_sealed(struct engine *e, uint64_t *seq, int *fd)
{
	int found = 0;
	pthread_mutex_lock(&e->files_lock);
	for (size_t i = 0; i + 1 < e->nfiles; i++)
		if (e->files[i].fd >= 0 && !e->files[i].kept) {
			*seq = e->files[i].seq;
			*fd = e->files[i].fd;
			found = 1;
			break;
		}
	pthread_mutex_unlock(&e->files_lock);
	return found;
}

static void *indexer_main(void *arg)
{
	struct engine *e = arg;

	pthread_mutex_lock(&e->indexer_lock);
	for (;;) {
		uint64_t seq;
		int fd, rc;
		/* Stopping, it still indexes what is sealed (engine_close leaves
		 * only the active file), unless indexing fails. */
		int halt = atomic_load(&e->indexer_halt_rc);
		if (halt || !next_sealed(e, &seq, &fd)) {
			if (e->indexer_stop) {
				/* A last retention pass: a short-lived writer (the
				 * CLI) applies the policy too. */
				pthread_mutex_unlock(&e->indexer_lock);
				if (!halt)
					retention_run(e);
				pthread_mutex_lock(&e->indexer_lock);
				break;
			}
			pthread_mutex_unlock(&e->indexer_lock);
			/* Halted, retention waits too: it saves registries. */
			rc = halt;
			if (!halt)
				rc = retention_run(e);
			pthread_mutex_lock(&e->indexer_lock);
			/* A file sealed while retention ran
			 * (engine_index_now's seal, a rotation) was not seen by
			 * the look above: index it before this pass counts as
			 * ended, or engine_index_now would return with it still
			 * in the WAL. */
			if (!halt && next_sealed(e, &seq, &fd))
				continue;
			e->indexer_err = rc;
			e->indexer_idle_gen++;
			pthread_cond_broadcast(&e->indexer_idle);
			if (!e->indexer_kicked && !e->indexer_stop) {
				struct timespec ts;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				ts.tv_sec += RETENTION_CHECK_MS / 1000;
				pthread_cond_timedwait(&e->indexer_wake, &e->indexer_lock, &ts);
			}
			e->indexer_kicked = false;
			continue;
		}
		bool quiet = e->index_fail_rc != 0;
		e->index_urgent = false;
		pthread_mutex_unlock(&e->indexer_lock);
		/* fd stays open: only this thread closes sealed files. */
		rc = index_file(e, seq, fd, quiet);
		/* Appends held back (commit.c, "BACK-PRESSURE") go on: room was
		 * made, or, after a failure, nothing holds them back while
		 * indexing fails. */
		atomic_store(&e->backpressure_off, rc != 0);
		commit_wake_up(e);
		/* Retention after every indexed file too, not only when idle:
		 * under a load that always keeps a sealed file waiting the
		 * idle branch never runs, and retention.bytes would not bound
		 * the disk. A failed pass is retried at the next one. */
		if (rc == 0) {
			(void)retention_run(e);
			compactor_kick(e); /* new segments: dirt to look at */
		}
		pthread_mutex_lock(&e->indexer_lock);
		if (rc == 0 && e->index_fail_rc) {
			log_msg(LOG_LVL_INFO, "warm",
				"indexing resumed: WAL file %" PRIu64 " indexed", seq);
			e->index_fail_rc = 0;
			e->index_backoff_ms = 0;
		}
		if (rc && e->indexer_stop)
			break;
		if (rc) {
			struct timespec ts;
			bool halted = atomic_load(&e->indexer_halt_rc) != 0;
			if (rc != e->index_fail_rc || halted)
				log_msg(LOG_LVL_ERROR, "warm",
					"WAL file %" PRIu64 " not indexed: %s%s", seq,
					chronik_strerror(rc),
					halted ?
						"; indexing stops until the data directory is opened again" :
						"; retrying, less and less often");
			e->index_fail_rc = rc;
			e->index_backoff_ms = e->index_backoff_ms == 0 ? INDEX_BACKOFF_MIN_MS :
					      e->index_backoff_ms >= INDEX_BACKOFF_MAX_MS / 2 ?
									 INDEX_BACKOFF_MAX_MS :
									 2 * e->index_backoff_ms;
			e->indexer_err = rc;
			e->indexer_idle_gen++;
			pthread_cond_broadcast(&e->indexer_idle);
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += e->index_backoff_ms / 1000;
			ts.tv_nsec += (long)(e->index_backoff_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			while (!e->index_urgent && !e->indexer_stop &&
			       pthread_cond_timedwait(&e->indexer_wake, &e->indexer_lock, &ts) == 0)
				;
			e->index_urgent = false;
			e->indexer_kicked = false;
		}
	}
	pthread_mutex_unlock(&e->indexer_lock);
	atomic_store(&e->backpressure_off, true);
	commit_wake_up(e);
	return NULL;
}

int indexer_start(struct engine *e)
{
	int rc;
	/* From now on appends wait for the indexer past the bound. */
	atomic_store(&e->backpressure_off, false);
	rc = pthread_create(&e->indexer_thread, NULL, indexer_main, e);
	if (rc) {
		atomic_store(&e->backpressure_off, true);
		return -rc;
	}
	e->indexer_running = true;
	return 0;
}

void indexer_stop(struct engine *e)
{
	if (!e->indexer_running)
		return;
	pthread_mutex_lock(&e->indexer_lock);
	e->indexer_stop = true;
	pthread_cond_broadcast(&e->indexer_wake);
	pthread_mutex_unlock(&e->indexer_lock);
	pthread_join(e->indexer_thread, NULL);
	e->indexer_running = false;
	pthread_mutex_lock(&e->indexer_lock);
	pthread_cond_broadcast(&e->indexer_idle);
	pthread_mutex_unlock(&e->indexer_lock);
}

int engine_index_now(struct engine *e)
{
	uint64_t gen;
	int rc;

	if (e->opt.read_only || !e->indexer_running)
		return 0;
	/* Ask the commit thread to seal, and wait until it has. */
	pthread_mutex_lock(&e->commit_lock);
	e->seal_now = true;
	pthread_cond_broadcast(&e->commit_wake);
	while (e->seal_now && !e->stopping)
		pthread_cond_wait(&e->commit_done, &e->commit_lock);
	pthread_mutex_unlock(&e->commit_lock);
	/* Then for the end of an idle pass after the seal: an idle pass ends
	 * (idle_gen++) only in the same hold of indexer_lock as a look that
	 * found no sealed file, so the first end after this read of idle_gen
	 * comes after every file sealed so far is indexed. */
	pthread_mutex_lock(&e->indexer_lock);
	gen = e->indexer_idle_gen;
	e->indexer_kicked = true;
	e->index_urgent = true;
	pthread_cond_broadcast(&e->indexer_wake);
	while (e->indexer_idle_gen == gen && !e->indexer_stop)
		pthread_cond_wait(&e->indexer_idle, &e->indexer_lock);
	rc = e->indexer_err;
	pthread_mutex_unlock(&e->indexer_lock);
	return rc;
}

void indexer_kick(struct engine *e)
{
	pthread_mutex_lock(&e->indexer_lock);
	e->indexer_kicked = true;
	pthread_cond_broadcast(&e->indexer_wake);
	pthread_mutex_unlock(&e->indexer_lock);
}

int engine_partition_segments(struct partition *p, struct engine_segment_info **out, size_t *count)
{
	struct engine_segment_info *v = NULL;
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->nsegs;
	if (n && !(v = calloc(n, sizeof(*v)))) {
		pthread_mutex_unlock(&p->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct segment_meta *m = segment_meta_get(p->segs[i]);
		v[i].base_offset = m->base_offset;
		v[i].last_offset = m->last_offset;
		v[i].min_timestamp = m->min_timestamp;
		v[i].max_timestamp = m->max_timestamp;
		v[i].raw_start = m->raw_start;
		v[i].raw_end = m->raw_end;
		v[i].bytes = m->bytes;
		v[i].records = m->records;
		v[i].batches = m->batches;
		v[i].wal_seq = m->wal_seq;
		registry_segment_file(m, v[i].file, sizeof(v[i].file));
		v[i].remote = m->state == SEGMENT_REMOTE;
		snprintf(v[i].remote_key, sizeof(v[i].remote_key), "%s", m->remote_key);
	}
	pthread_mutex_unlock(&p->lock);
	*out = v;
	*count = n;
	return 0;
}
