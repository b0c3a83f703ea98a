/* tier.c - the cold tier: sealed segments move to an object store, and
 * readers fetch them back into a bounded local cache.
 *
 * POLICY (per topic config, Kafka's KIP-405 names; topic_config.c):
 *   remote.storage.enable   "true" moves this topic's segments out
 *   local.retention.bytes   while the partition's local bytes (local
 *                           segments plus WAL not yet indexed) minus its
 *                           oldest local segment's stay >= this, that
 *                           segment is uploaded; -2 = retention.bytes
 *   local.retention.ms      a local segment whose max timestamp is older
 *                           than now minus this is uploaded; -2 =
 *                           retention.ms
 * (-1 = no limit). Oldest local segments go first; retention.ms and
 * retention.bytes (retention.c) still govern the whole log, remote and
 * local, and delete remote objects too: retention queues the keys and
 * the upload thread deletes them (retried at each pass while the store
 * refuses; a crash before leaves them in the bucket, named by no
 * registry).
 *
 * ORPHAN SWEEP (the upload thread, every sweep_ms, when the client can
 * list): an object can be left in the bucket named by no registry: by a
 * crash between retention's registry save and its delete, by a crash
 * between an upload's PUT and its registry save (step 5 below), or by a
 * delete the store refused until the daemon stopped. The sweep lists the
 * objects under PREFIX (ListObjectsV2), takes the set of remote_keys that
 * the partitions' registries name (memory holds them all; the upload
 * thread is the only one that makes a segment remote, and it is the one
 * sweeping, so no upload is between its PUT and its registry save
 * meanwhile), and deletes each object that is (a) of the shape
 * PREFIX<digits>/<digits>/<name>.seg, so nothing else in the bucket is
 * touched, (b) named by no registry and (c) last modified more than
 * orphan_age_ms ago. The prefix belongs to one data directory: two
 * daemons must not share it.
 *
 * OBJECTS: one object per segment file, key
 * PREFIX<topic-id>/<partition>/<segment file name> (remote.h). The file is
 * the segment format of segment.h unchanged, so a fetched copy is read by
 * the same code as a local one.
 *
 * UPLOAD PROTOCOL (one segment S of partition P, the upload thread):
 *   1. Under P's lock: S is the oldest local segment past the local
 *      retention; take a reference (S stays readable and its file stays
 *      on disk while we hold it, even if compaction or retention drop it).
 *   2. Read the file once for its CRC32C (and its size, which must be the
 *      registry's "bytes").
 *   3. PUT it (the client sends Content-MD5: the store refuses a body that
 *      arrived damaged, and the ETag it answers must be that MD5). A big
 *      file goes up as a multipart upload (cold/s3.c: each part with its
 *      Content-MD5 and ETag checked, the final ETag computed by the client
 *      from the parts); a multipart upload that fails half done is aborted
 *      by the client, and one a crash cut is no object at all (the store
 *      keeps its parts apart, unnamed): either way step 3 is redone from
 *      its start, with a new upload, and nothing of the old one counts.
 *   4. HEAD it: the size the store reports must be "bytes" and the ETag
 *      the one the PUT answered. Any failure in 2-4: nothing changed on
 *      disk, S is still "live" in the registry, and the attempt is retried
 *      after a backoff (1 s doubling to 60 s). An object left in the bucket
 *      by a failed or cut attempt counts for nothing (no registry names it)
 *      and the retry overwrites it under the same key.
 *   5. Under warm_lock (the indexer, retention and compaction's swap
 *      wait; a compaction whose inputs hold S finds it swapped and
 *      retries, compact.c "SNAPSHOT AND SWAP"): if S is no longer
 *      registered (retention or compaction dropped it meanwhile), or its
 *      partition is halted (compact.c, "HALT"), delete the object and
 *      stop. Else save the registry with S as
 *      "remote" (remote_key, etag, crc32c) by registry.h's update rule
 *      (temp + fsync + rename + directory fsync). This rename is the
 *      commit point.
 *   6. Under P's lock, S is replaced in P's list by a remote segment S'
 *      (same metadata, state remote, path in the cache); S is doomed, so
 *      its local file is unlinked at its last unref (a reader on it
 *      finishes on the local copy).
 * CRASH at any point: before 5's rename the registry says "live" and the
 * local file is there (the upload is redone from 1); after it the registry
 * says "remote", the object was verified before, and a local file still
 * lying in the segment directory is removed by the next open (indexer.c's
 * warm_load removes every file the registry does not list as local). So
 * the segment is always local or remote-and-registered, never neither,
 * and never both counted.
 *
 * READS, index first (segment.h's segment_remote_ops, which tier.c fills):
 * a remote segment is read from its cache file
 * DATA/cold-cache/<topic-id>/<partition>/<segment file name> (under the
 * engine's remote_cache_dir instead when it has one: a reader beside the
 * daemon, such as chronik search --remote, keeps a cache of its own), a sparse
 * file of the object's size whose bytes are the object's at the same
 * offsets wherever they were fetched, and holes elsewhere. A reader's
 * segment_read_begin fetches (ranged GETs) the header [0, 64) and the
 * index with the trailer [data_end, bytes), unless the file holds them
 * already (their CRCs decide), and checks the trailer against the
 * registry; each segment_pread then fetches only the index spans it
 * reads that the file lacks, in one ranged GET per run of missing spans
 * (plus read-ahead to SEGMENT_FETCH_BYTES), and checks every span's CRC
 * (so every byte of a fetched range is covered by a CRC: the header's,
 * the trailer's, the index's, the spans'). Nothing else describes the
 * file: which spans are there is decided by their CRCs, so a file a
 * crash cut, or one from an earlier run, serves what it holds and the
 * rest is fetched. The cache is bounded by cache_bytes counting the
 * blocks each file has allocated (st_blocks): after each fetch the least
 * recently used files go (mtime is the LRU stamp, set at each open) until
 * it holds at most cache_bytes; an unlinked file still open keeps serving
 * its reader, and the next reader starts a new one. A fetch that fails
 * returns -EIO to the reader (EIO through the filesystem,
 * KAFKA_STORAGE_ERROR, retriable, through Kafka) after the client's
 * timeout; nothing else waits on it: appends, local reads and uploads of
 * other segments go on. `chronik verify --remote` fetches every span
 * (segment_fetch_all) and checks the whole file's CRC32C against the
 * registry's too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "engine-private.h"
#include "log.h"
#include "registry.h"
#include "remote.h"

struct tier {
	const struct engine_remote_ops *ops;
	void *arg;
	char *prefix;
	uint64_t cache_bytes;
	uint32_t scan_ms;

	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t wake; /* the upload thread waits on it */
	pthread_cond_t idle; /* broadcast when a pass ends */
	bool stop, kicked, running;
	uint64_t pass_gen; /* passes finished */
	int pass_rc; /* the last pass's result */
	uint32_t backoff_ms; /* 0 = no failure pending */
	pthread_t thread;
	struct engine_remote_stats st;
	int64_t behind_logged_ms; /* upload thread only */
	uint32_t sweep_ms;
	uint64_t orphan_age_ms;
	int64_t swept_ms; /* upload thread only: the last sweep */
	/* Objects retention dropped, to delete (lock): the upload thread
	 * deletes them at its next pass, so retention (under warm_lock)
	 * never waits on the store, and a store that is down gets them
	 * again at the next pass. Memory only: a crash leaves them in the
	 * bucket, where no registry names them. */
	char **doomed;
	size_t ndoomed, doomed_cap;

	pthread_mutex_t cache_lock; /* one eviction at a time */
};

/* ---- config ---------------------------------------------------------------- */

struct tier_policy {
	bool enable;
	int64_t local_ms, local_bytes; /* -1 = none */
};

static void policy_parse(const char *config_json, struct tier_policy *pol)
{
	json_object *o = config_json ? json_tokener_parse(config_json) : NULL, *v;
	const char *en = engine_topic_config_default("remote.storage.enable");

	pol->enable = en && strcmp(en, "true") == 0;
	if (o && json_object_object_get_ex(o, "remote.storage.enable", &v))
		pol->enable = json_object_is_type(v, json_type_boolean) ?
				      json_object_get_boolean(v) :
				      strcmp(json_object_get_string(v), "true") == 0;
	pol->local_ms = topic_config_i64(o, "local.retention.ms");
	if (pol->local_ms == -2)
		pol->local_ms = topic_config_i64(o, "retention.ms");
	pol->local_bytes = topic_config_i64(o, "local.retention.bytes");
	if (pol->local_bytes == -2)
		pol->local_bytes = topic_config_i64(o, "retention.bytes");
	if (o)
		json_object_put(o);
}

/* ---- paths ----------------------------------------------------------------- */

/* The cache's root: DATA/cold-cache, or the engine's remote_cache_dir. */
static void cache_root(const struct engine *e, char *buf, size_t len)
{
	if (e->opt.remote_cache_dir)
		snprintf(buf, len, "%s", e->opt.remote_cache_dir);
	else
		snprintf(buf, len, "%s/cold-cache", e->dir);
}

static void cache_dir(const struct engine *e, uint32_t topic_id, int32_t partition, char *buf,
		      size_t len)
{
	char root[4200];

	cache_root(e, root, sizeof(root));
	snprintf(buf, len, "%s/%" PRIu32 "/%" PRId32, root, topic_id, partition);
}

static int mkdirs(const char *path)
{
	char tmp[4800];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static const struct segment_remote_ops tier_segment_ops;

int tier_segment_new(struct engine *e, uint32_t topic_id, int32_t partition, const char *dir,
		     const struct segment_meta *m, struct segment **out)
{
	char path[4600], name[64];
	int rc;

	registry_segment_file(m, name, sizeof(name));
	if (m->state == SEGMENT_REMOTE) {
		char cdir[4300];
		cache_dir(e, topic_id, partition, cdir, sizeof(cdir));
		snprintf(path, sizeof(path), "%s/%s", cdir, name);
	} else {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	}
	rc = segment_new(path, m, out);
	if (rc == 0 && m->state == SEGMENT_REMOTE)
		segment_set_remote(*out, &tier_segment_ops, e);
	return rc;
}

/* ---- the cache ------------------------------------------------------------- */

struct cached {
	char path[5200];
	off_t size; /* allocated bytes */
	struct timespec mtime;
};

static int cached_cmp(const void *a, const void *b)
{
	const struct cached *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return 0;
}

/* Every file under the cache's root (DATA/cold-cache)/<t>/<p>/ into *v
 * (malloc'd). */
static int cache_list(const struct engine *e, struct cached **v, size_t *n)
{
	char root[4200];
	size_t cap = 0;
	DIR *d1;
	struct dirent *a;

	*v = NULL;
	*n = 0;
	cache_root(e, root, sizeof(root));
	d1 = opendir(root);
	if (!d1)
		return errno == ENOENT ? 0 : -errno;
	while ((a = readdir(d1))) {
		char p1[4500];
		DIR *d2;
		struct dirent *b;
		if (a->d_name[0] == '.')
			continue;
		snprintf(p1, sizeof(p1), "%s/%s", root, a->d_name);
		if (!(d2 = opendir(p1)))
			continue;
		while ((b = readdir(d2))) {
			char p2[4800];
			DIR *d3;
			struct dirent *c;
			if (b->d_name[0] == '.')
				continue;
			snprintf(p2, sizeof(p2), "%s/%s", p1, b->d_name);
			if (!(d3 = opendir(p2)))
				continue;
			while ((c = readdir(d3))) {
				struct stat st;
				if (c->d_name[0] == '.')
					continue;
				if (*n == cap) {
					cap = cap ? cap * 2 : 64;
					struct cached *w = realloc(*v, cap * sizeof(*w));
					if (!w) {
						closedir(d3);
						closedir(d2);
						closedir(d1);
						return -ENOMEM;
					}
					*v = w;
				}
				snprintf((*v)[*n].path, sizeof((*v)[*n].path), "%s/%s", p2,
					 c->d_name);
				if (stat((*v)[*n].path, &st) < 0 || !S_ISREG(st.st_mode))
					continue;
				(*v)[*n].size = (off_t)st.st_blocks * 512;
				(*v)[*n].mtime = st.st_mtim;
				(*n)++;
			}
			closedir(d3);
		}
		closedir(d2);
	}
	closedir(d1);
	return 0;
}

/* Remove least recently used files until the cache holds <= the bound;
 * keep is never removed. Returns the bytes left. */
static uint64_t cache_evict(struct engine *e, const char *keep)
{
	struct tier *t = e->tier;
	struct cached *v;
	size_t n;
	uint64_t total = 0;

	pthread_mutex_lock(&t->cache_lock);
	if (cache_list(e, &v, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			total += (uint64_t)v[i].size;
		if (n > 1) /* v is NULL when the cache holds no file */
			qsort(v, n, sizeof(*v), cached_cmp);
		for (size_t i = 0; i < n && total > t->cache_bytes; i++) {
			if (strcmp(v[i].path, keep) == 0)
				continue;
			if (unlink(v[i].path) == 0)
				total -= (uint64_t)v[i].size;
		}
		free(v);
	}
	pthread_mutex_unlock(&t->cache_lock);
	return total;
}

static int file_crc(int fd, uint64_t size, uint32_t *crc_out)
{
	static const size_t bufsz = 1 << 20;
	uint8_t *buf = malloc(bufsz);
	uint32_t crc = 0;
	uint64_t pos = 0;

	if (!buf)
		return -ENOMEM;
	while (pos < size) {
		size_t want = size - pos < bufsz ? (size_t)(size - pos) : bufsz;
		ssize_t r = pread(fd, buf, want, (off_t)pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			return r < 0 ? -errno : CHRONIK_ECORRUPT;
		}
		crc = crc32c(crc, buf, (size_t)r);
		pos += (uint64_t)r;
	}
	free(buf);
	*crc_out = crc;
	return 0;
}

static void stat_fail(struct tier *t, uint64_t *counter, int rc)
{
	pthread_mutex_lock(&t->lock);
	(*counter)++;
	t->st.last_error = rc;
	pthread_mutex_unlock(&t->lock);
}

/* segment_remote_ops.open: the cache file, created when missing. */
static int tier_open(void *arg, struct segment *s)
{
	struct engine *e = arg;
	const struct segment_meta *m = segment_meta_get(s);
	const char *path = segment_path(s);
	char dir[4600];
	struct stat st;
	int fd, rc;

	if (!e->tier) {
		log_msg(LOG_LVL_ERROR, "cold", "%s: remote segment and no object store attached",
			m->remote_key);
		return CHRONIK_ENOSTORE;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	rc = mkdirs(dir);
	if (rc)
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || ((uint64_t)st.st_size != m->bytes &&
				   (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)m->bytes) < 0))) {
		rc = -errno;
		close(fd);
		return rc;
	}
	futimens(fd, NULL); /* its LRU stamp */
	return fd;
}

/* segment_remote_ops.fetch: bytes [off, off + len) of the object into fd
 * at off (segment locks held: one fetch per segment at a time). */
static int tier_fetch(void *arg, struct segment *s, int fd, uint64_t off, uint64_t len)
{
	struct engine *e = arg;
	struct tier *t = e->tier;
	const struct segment_meta *m = segment_meta_get(s);
	int rc = 0;

	if (lseek(fd, (off_t)off, SEEK_SET) < 0)
		rc = -errno;
	if (rc == 0)
		rc = t->ops->get(t->arg, m->remote_key, off, len, fd);
	if (rc) {
		log_msg(LOG_LVL_WARN, "cold", "%s: fetch failed: %s", m->remote_key,
			chronik_strerror(rc));
		stat_fail(t, &t->st.fetch_failures, rc);
		return rc == -ENOENT ? -EIO : rc;
	}
	log_msg(LOG_LVL_DEBUG, "cold", "%s: fetched bytes [%" PRIu64 ", %" PRIu64 ") of %" PRIu64,
		m->remote_key, off, off + len, m->bytes);
	uint64_t left = cache_evict(e, segment_path(s));
	pthread_mutex_lock(&t->lock);
	t->st.fetches++;
	t->st.fetch_bytes += len;
	t->st.cache_bytes = left;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static const struct segment_remote_ops tier_segment_ops = {
	.open = tier_open,
	.fetch = tier_fetch,
};

/* ---- upload ---------------------------------------------------------------- */

/* Step 1: the oldest local segment of p past the local retention,
 * referenced, or NULL. */
static struct segment *upload_pick(struct partition *p, const struct tier_policy *pol, int64_t now,
				   uint64_t *local_out)
{
	struct segment *pick = NULL;
	uint64_t local = 0;

	pthread_mutex_lock(&p->lock);
	if (!p->deleted) {
		local = p->wal_bytes;
		for (size_t i = 0; i < p->nsegs; i++) {
			const struct segment_meta *m = segment_meta_get(p->segs[i]);
			if (m->state == SEGMENT_LOCAL)
				local += m->bytes;
		}
		for (size_t i = 0; i < p->nsegs; i++) {
			const struct segment_meta *m = segment_meta_get(p->segs[i]);
			if (m->state != SEGMENT_LOCAL)
				continue;
			bool old = pol->local_ms >= 0 && m->max_timestamp < now - pol->local_ms;
			bool big = pol->local_bytes >= 0 &&
				   local - m->bytes >= (uint64_t)pol->local_bytes;
			if (old || big) {
				pick = p->segs[i];
				segment_ref(pick);
			}
			break; /* oldest first: only the first local one */
		}
	}
	pthread_mutex_unlock(&p->lock);
	*local_out = local;
	return pick;
}

static int upload_one(struct engine *e, struct partition *p, struct segment *s)
{
	struct tier *t = e->tier;
	struct segment_meta rm = *segment_meta_get(s);
	char name[64], dir[4200], etag[72], etag2[72];
	struct registry reg = { 0 };
	struct segment *ns = NULL;
	uint64_t size = 0;
	size_t at = 0;
	bool found = false;
	int fd, rc;

	/* Step 2. */
	fd = open(segment_path(s), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = file_crc(fd, rm.bytes, &rm.crc32c);
	struct stat st;
	if (rc == 0 && (fstat(fd, &st) < 0 || (uint64_t)st.st_size != rm.bytes))
		rc = CHRONIK_ECORRUPT;
	/* Step 3. */
	registry_segment_file(&rm, name, sizeof(name));
	snprintf(rm.remote_key, sizeof(rm.remote_key), "%s%" PRIu32 "/%" PRId32 "/%s", t->prefix,
		 p->topic_id, p->index, name);
	if (rc == 0)
		rc = t->ops->put(t->arg, rm.remote_key, fd, rm.bytes, etag, sizeof(etag));
	close(fd);
	/* Step 4. */
	if (rc == 0)
		rc = t->ops->head(t->arg, rm.remote_key, &size, etag2, sizeof(etag2));
	if (rc == 0 && (size != rm.bytes || strcmp(etag, etag2) != 0)) {
		log_msg(LOG_LVL_ERROR, "cold",
			"%s: stored object has %" PRIu64 " bytes, ETag %s; sent %" PRIu64 ", %s",
			rm.remote_key, size, etag2, rm.bytes, etag);
		rc = -EIO;
	}
	if (rc)
		return rc;
	snprintf(rm.etag, sizeof(rm.etag), "%s", etag);
	rm.state = SEGMENT_REMOTE;

	/* Step 5. */
	warm_dir(e, p->topic_id, p->index, dir, sizeof(dir));
	pthread_mutex_lock(&e->warm_lock);
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nsegs && !found; i++)
		if (p->segs[i] == s) {
			found = true;
			at = i;
		}
	if (found && !p->deleted) {
		reg.n = p->nsegs;
		reg.segs = calloc(reg.n, sizeof(*reg.segs));
		if (!reg.segs)
			rc = -ENOMEM;
		for (size_t i = 0; reg.segs && i < reg.n; i++)
			reg.segs[i] = i == at ? rm : *segment_meta_get(p->segs[i]);
		reg.log_start_offset = p->log_start_offset;
		reg.raw_start = p->raw_start;
		reg.next_offset = p->seg_next_offset;
		reg.raw_end = p->seg_raw_end;
	}
	/* A halted partition (compact.c, "HALT") saves no registry. */
	bool gone = !found || p->deleted || p->warm_halt_rc;
	pthread_mutex_unlock(&p->lock);
	if (gone) {
		pthread_mutex_unlock(&e->warm_lock);
		t->ops->del(t->arg, rm.remote_key);
		return 0;
	}
	if (rc == 0)
		rc = tier_segment_new(e, p->topic_id, p->index, dir, &rm, &ns);
	if (rc == 0)
		rc = registry_save(dir, p->topic_id, p->index, &reg);
	free(reg.segs);
	if (rc) {
		/* The rename may or may not have happened: either way the local
		 * file stays until the next open sorts it out (warm_load), and
		 * the object stays verified in the bucket. */
		pthread_mutex_unlock(&e->warm_lock);
		segment_unref(ns);
		log_msg(LOG_LVL_ERROR, "cold", "%s/%s: %s", dir, REGISTRY_FILE,
			chronik_strerror(rc));
		return rc;
	}
	/* Step 6. Only warm_lock holders change segs, so at still holds s. */
	pthread_mutex_lock(&p->lock);
	p->segs[at] = ns;
	p->segs_changes++;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&e->warm_lock);
	segment_doom(s);
	segment_unref(s); /* the list's reference */
	pthread_mutex_lock(&t->lock);
	t->st.uploads++;
	t->st.upload_bytes += rm.bytes;
	t->st.last_error = 0;
	pthread_mutex_unlock(&t->lock);
	log_msg(LOG_LVL_INFO, "cold", "%s/%d: segment %s uploaded as %s (%" PRIu64 " bytes)",
		p->topic_name, p->index, name, rm.remote_key, rm.bytes);
	return 0;
}

/* One pass: upload every segment past its partition's local retention.
 * 0, or the first error (the rest of the pass still runs). */
static int upload_pass(struct engine *e)
{
	struct tier *t = e->tier;
	struct partition **parts = NULL;
	struct tier_policy *pols = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&e->meta_lock);
	for (size_t i = 0; i < e->ntopics && rc == 0; i++) {
		struct tier_policy pol;
		struct topic *tp = e->topics[i];
		policy_parse(tp->config_json, &pol);
		if (!pol.enable || (pol.local_ms < 0 && pol.local_bytes < 0))
			continue;
		for (int32_t j = 0; j < tp->nparts; j++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				struct partition **v = realloc(parts, cap * sizeof(*v));
				if (v)
					parts = v;
				struct tier_policy *w = realloc(pols, cap * sizeof(*w));
				if (w)
					pols = w;
				if (!v || !w) {
					rc = -ENOMEM;
					break;
				}
			}
			parts[n] = tp->parts[j];
			pols[n++] = pol;
			engine_partition_ref(tp->parts[j]);
		}
	}
	pthread_rwlock_unlock(&e->meta_lock);
	for (size_t i = 0; i < n; i++) {
		for (;;) {
			pthread_mutex_lock(&t->lock);
			bool stop = t->stop;
			pthread_mutex_unlock(&t->lock);
			uint64_t local = 0;
			int64_t now = now_ms();
			struct segment *s = stop ? NULL :
						   upload_pick(parts[i], &pols[i], now, &local);
			/* Uploads behind (the store down or slow): say so, at most
			 * once a minute. */
			if (pols[i].local_bytes >= 0 && local > 2 * (uint64_t)pols[i].local_bytes &&
			    now - t->behind_logged_ms >= 60000) {
				t->behind_logged_ms = now;
				log_msg(LOG_LVL_WARN, "cold",
					"%s/%d: %" PRIu64
					" bytes on local disk, local.retention.bytes %" PRId64
					" (uploads behind)",
					parts[i]->topic_name, parts[i]->index, local,
					pols[i].local_bytes);
			}
			if (!s)
				break;
			int r = upload_one(e, parts[i], s);
			segment_unref(s);
			if (r) {
				log_msg(LOG_LVL_WARN, "cold",
					"%s/%d: upload failed: %s (retried later)",
					parts[i]->topic_name, parts[i]->index, chronik_strerror(r));
				stat_fail(t, &t->st.upload_failures, r);
				if (!rc)
					rc = r;
				break;
			}
		}
		engine_partition_unref(parts[i]);
	}
	free(parts);
	free(pols);
	return rc;
}

static int delete_pass(struct engine *e);

/* ---- the orphan sweep -------------------------------------------------------- */

struct sweep {
	struct engine *e;
	char **keys; /* the registries' remote keys, sorted */
	size_t n, cap;
	int64_t before_ms; /* objects modified before this may go */
};

static int keycmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* PREFIX<digits>/<digits>/<name>.seg: the keys the tier makes. */
static bool tier_key_shape(const char *prefix, const char *key)
{
	size_t pl = strlen(prefix), kl = strlen(key);
	const char *p = key + pl;

	if (strncmp(key, prefix, pl) != 0 || kl < pl + 8 || strcmp(key + kl - 4, ".seg") != 0)
		return false;
	for (int part = 0; part < 2; part++) {
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p++ != '/')
			return false;
	}
	return *p && !strchr(p, '/');
}

static int sweep_one(void *arg, const char *key, uint64_t size, int64_t mtime_ms)
{
	struct sweep *w = arg;
	struct tier *t = w->e->tier;

	if (mtime_ms >= w->before_ms || !tier_key_shape(t->prefix, key) ||
	    (w->n && bsearch(&key, w->keys, w->n, sizeof(*w->keys), keycmp)))
		return 0;
	pthread_mutex_lock(&t->lock);
	bool stop = t->stop;
	pthread_mutex_unlock(&t->lock);
	if (stop)
		return -ECANCELED;
	int rc = t->ops->del(t->arg, key);
	if (rc) {
		log_msg(LOG_LVL_WARN, "cold", "%s: orphan not deleted: %s", key,
			chronik_strerror(rc));
		return 0; /* the next sweep tries again */
	}
	log_msg(LOG_LVL_INFO, "cold",
		"%s: orphan deleted (%" PRIu64 " bytes, named by no registry)", key, size);
	pthread_mutex_lock(&t->lock);
	t->st.orphans_deleted++;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void sweep_pass(struct engine *e, int64_t now)
{
	struct tier *t = e->tier;
	struct sweep w = { .e = e, .before_ms = now - (int64_t)t->orphan_age_ms };
	int rc = 0;

	pthread_rwlock_rdlock(&e->meta_lock);
	for (size_t i = 0; i < e->ntopics && rc == 0; i++) {
		struct topic *tp = e->topics[i];
		for (int32_t j = 0; j < tp->nparts && rc == 0; j++) {
			struct partition *p = tp->parts[j];
			pthread_mutex_lock(&p->lock);
			for (size_t k = 0; k < p->nsegs && rc == 0; k++) {
				const struct segment_meta *m = segment_meta_get(p->segs[k]);
				if (m->state != SEGMENT_REMOTE)
					continue;
				if (w.n == w.cap) {
					size_t cap = w.cap ? w.cap * 2 : 64;
					char **v = realloc(w.keys, cap * sizeof(*v));
					if (!v) {
						rc = -ENOMEM;
						break;
					}
					w.keys = v;
					w.cap = cap;
				}
				if (!(w.keys[w.n] = strdup(m->remote_key)))
					rc = -ENOMEM;
				else
					w.n++;
			}
			pthread_mutex_unlock(&p->lock);
		}
	}
	pthread_rwlock_unlock(&e->meta_lock);
	if (rc == 0) {
		if (w.n > 1) /* keys is NULL when no registry names a key */
			qsort(w.keys, w.n, sizeof(*w.keys), keycmp);
		rc = t->ops->list(t->arg, t->prefix, sweep_one, &w);
		if (rc && rc != -ECANCELED)
			log_msg(LOG_LVL_WARN, "cold",
				"orphan sweep: listing %s: %s (retried later)", t->prefix,
				chronik_strerror(rc));
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.keys[i]);
	free(w.keys);
}

static void *upload_thread(void *arg)
{
	struct engine *e = arg;
	struct tier *t = e->tier;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		uint32_t wait_ms = t->backoff_ms ? t->backoff_ms : t->scan_ms;
		if (!t->kicked) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += wait_ms / 1000;
			ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&t->wake, &t->lock, &ts);
		}
		if (t->stop)
			break;
		t->kicked = false;
		pthread_mutex_unlock(&t->lock);
		int rc = delete_pass(e);
		int r2 = upload_pass(e);
		if (!rc)
			rc = r2;
		int64_t now = now_ms();
		if (t->ops->list && now - t->swept_ms >= (int64_t)t->sweep_ms) {
			t->swept_ms = now;
			sweep_pass(e, now);
		}
		pthread_mutex_lock(&t->lock);
		if (rc)
			t->backoff_ms =
				t->backoff_ms ?
					(t->backoff_ms >= 30000 ? 60000 : t->backoff_ms * 2) :
					1000;
		else
			t->backoff_ms = 0;
		t->pass_rc = rc;
		t->pass_gen++;
		pthread_cond_broadcast(&t->idle);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* ---- the engine's hooks ------------------------------------------------------ */

int engine_remote_attach(struct engine *e, const struct engine_remote_ops *ops, void *arg,
			 const struct engine_remote_options *o)
{
	struct tier *t;

	if (e->tier || !ops || !ops->put || !ops->head || !ops->get || !ops->del)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ops = ops;
	t->arg = arg;
	t->prefix = strdup(o && o->key_prefix ? o->key_prefix : "");
	t->cache_bytes = o && o->cache_bytes ? o->cache_bytes : (uint64_t)1 << 30;
	t->scan_ms = o && o->scan_ms ? o->scan_ms : 1000;
	t->sweep_ms = o && o->sweep_ms ? o->sweep_ms : 600000;
	t->orphan_age_ms = o && o->orphan_age_ms ? o->orphan_age_ms : 3600000;
	if (!t->prefix) {
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->cache_lock, NULL);
	cond_init_monotonic(&t->wake);
	pthread_cond_init(&t->idle, NULL);
	e->tier = t;
	if (!e->opt.read_only) {
		int rc = pthread_create(&t->thread, NULL, upload_thread, e);
		if (rc) {
			e->tier = NULL;
			free(t->prefix);
			free(t);
			return -rc;
		}
		t->running = true;
	}
	return 0;
}

void tier_stop(struct engine *e)
{
	struct tier *t = e->tier;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
	if (t->running)
		pthread_join(t->thread, NULL);
	t->running = false;
}

void tier_free(struct engine *e)
{
	struct tier *t = e->tier;

	if (!t)
		return;
	tier_stop(e);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->cache_lock);
	pthread_cond_destroy(&t->wake);
	pthread_cond_destroy(&t->idle);
	for (size_t i = 0; i < t->ndoomed; i++) {
		log_msg(LOG_LVL_WARN, "cold",
			"%s: left in the object store (not deleted before close)", t->doomed[i]);
		free(t->doomed[i]);
	}
	free(t->doomed);
	free(t->prefix);
	free(t);
	e->tier = NULL;
}

void tier_remote_delete(struct engine *e, const struct segment_meta *m)
{
	struct tier *t = e->tier;
	char *key;

	if (m->state != SEGMENT_REMOTE)
		return;
	if (!t || !(key = strdup(m->remote_key))) {
		log_msg(LOG_LVL_WARN, "cold", "%s: left in the object store", m->remote_key);
		return;
	}
	pthread_mutex_lock(&t->lock);
	if (t->ndoomed == t->doomed_cap) {
		size_t cap = t->doomed_cap ? t->doomed_cap * 2 : 16;
		char **v = realloc(t->doomed, cap * sizeof(*v));
		if (v) {
			t->doomed = v;
			t->doomed_cap = cap;
		}
	}
	if (t->ndoomed < t->doomed_cap) {
		t->doomed[t->ndoomed++] = key;
		key = NULL;
	}
	t->kicked = true;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
	if (key) {
		log_msg(LOG_LVL_WARN, "cold", "%s: left in the object store", key);
		free(key);
	}
}

/* Delete the objects retention dropped; those the store refused stay
 * queued. 0 or the first error. */
static int delete_pass(struct engine *e)
{
	struct tier *t = e->tier;
	int rc = 0;

	for (;;) {
		pthread_mutex_lock(&t->lock);
		char *key = t->ndoomed && !t->stop ? t->doomed[0] : NULL;
		pthread_mutex_unlock(&t->lock);
		if (!key)
			return rc;
		int r = t->ops->del(t->arg, key);
		pthread_mutex_lock(&t->lock);
		if (r == 0) {
			memmove(t->doomed, t->doomed + 1, (t->ndoomed - 1) * sizeof(*t->doomed));
			t->ndoomed--;
			t->st.remote_deletes++;
		} else {
			t->st.last_error = r;
		}
		pthread_mutex_unlock(&t->lock);
		if (r) {
			log_msg(LOG_LVL_WARN, "cold", "%s: delete failed (retried later): %s", key,
				chronik_strerror(r));
			return r;
		}
		free(key);
	}
}

int tier_segment_verify(struct engine *e, struct segment *s, segment_problem_fn problem, void *arg)
{
	const struct segment_meta *m = segment_meta_get(s);
	struct tier *t = e->tier;
	char etag[72], what[600];
	uint64_t size = 0;
	int rc, n = 0;

	if (m->state != SEGMENT_REMOTE)
		return segment_verify(segment_path(s), m, problem, arg);
	if (!t)
		return 0;
	rc = t->ops->head(t->arg, m->remote_key, &size, etag, sizeof(etag));
	if (rc) {
		snprintf(what, sizeof(what), "%s: remote object: %s", m->remote_key,
			 chronik_strerror(rc));
		problem(arg, what);
		return 1;
	}
	if (size != m->bytes || strcmp(etag, m->etag) != 0) {
		snprintf(what, sizeof(what),
			 "%s: remote object has %" PRIu64
			 " bytes, ETag %s; the registry says %" PRIu64 ", %s",
			 m->remote_key, size, etag, m->bytes, m->etag);
		problem(arg, what);
		n++;
	}
	uint32_t crc = 0;
	rc = segment_read_begin(s);
	if (rc == 0) {
		rc = segment_fetch_all(s); /* every span, each CRC checked */
		int fd = rc ? -1 : open(segment_path(s), O_RDONLY | O_CLOEXEC);
		if (rc == 0 && fd < 0)
			rc = -errno;
		if (rc == 0)
			rc = file_crc(fd, m->bytes, &crc);
		if (fd >= 0)
			close(fd);
		if (rc == 0 && crc != m->crc32c) {
			snprintf(what, sizeof(what),
				 "%s: fetched copy has CRC32C %08x, the registry %08x",
				 m->remote_key, crc, m->crc32c);
			problem(arg, what);
			n++;
		}
		if (rc)
			segment_read_end(s);
	}
	if (rc) {
		snprintf(what, sizeof(what), "%s: fetching the remote copy: %s", m->remote_key,
			 chronik_strerror(rc));
		problem(arg, what);
		return n + 1;
	}
	rc = segment_verify(segment_path(s), m, problem, arg);
	segment_read_end(s);
	return rc < 0 ? rc : n + rc;
}

void engine_remote_stats_get(struct engine *e, struct engine_remote_stats *out)
{
	struct tier *t = e->tier;

	memset(out, 0, sizeof(*out));
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	*out = t->st;
	pthread_mutex_unlock(&t->lock);
}

void engine_remote_kick(struct engine *e)
{
	struct tier *t = e->tier;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->kicked = true;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
}

int engine_remote_drain(struct engine *e)
{
	struct tier *t = e->tier;
	int rc;

	if (!t || !t->running)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	/* Two passes that begin after this call: the first may have started
	 * before it. */
	uint64_t want = t->pass_gen + 2;
	t->kicked = true;
	pthread_cond_broadcast(&t->wake);
	while (t->pass_gen < want && !t->stop)
		pthread_cond_wait(&t->idle, &t->lock);
	rc = t->stop ? -ECANCELED : t->pass_rc;
	pthread_mutex_unlock(&t->lock);
	return rc;
}
