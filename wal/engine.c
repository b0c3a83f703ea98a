/* engine.c - open and close a data directory; partitions and appends.
 *
 * engine_open: create DATA and DATA/wal if needed, take DATA/LOCK (flock,
 * exclusive, non-blocking: a second writer gets CHRONIK_ELOCKED; the
 * holder's pid is written into the file for the message; a read-only open
 * takes no lock and never writes, so it can follow a live writer), replay the
 * metadata log (meta.c), recover the WAL (recover.c), start the commit
 * thread (commit.c). engine_close undoes it in reverse.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine-private.h"
#include "segment.h"
#include "log.h"

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t now_ms(void)
{
	return now_ns() / 1000000;
}

int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);
	if (rc)
		return -rc;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
	return -rc;
}

int fsync_dir(int dir_fd)
{
	return fsync(dir_fd) < 0 ? -errno : 0;
}

void engine_options_init(struct engine_options *o)
{
	memset(o, 0, sizeof(*o));
	o->wal_segment_bytes = 128ull << 20;
	o->fsync = FSYNC_EVERY;
	o->fsync_interval_ms = 1000;
	o->default_partitions = 1;
	o->wal_seal_ms = 60000;
	o->max_topics = 10000;
	o->max_partitions = 100000;
}

int engine_options_parse_fsync(struct engine_options *o, const char *s)
{
	char *end;
	unsigned long ms;

	if (strcmp(s, "every") == 0) {
		o->fsync = FSYNC_EVERY;
		return 0;
	}
	if (strcmp(s, "never") == 0) {
		o->fsync = FSYNC_NEVER;
		return 0;
	}
	if (strncmp(s, "interval:", 9) == 0) {
		errno = 0;
		ms = strtoul(s + 9, &end, 10);
		if (errno || end == s + 9 || *end || ms == 0 || ms > 3600000)
			return -EINVAL;
		o->fsync = FSYNC_INTERVAL;
		o->fsync_interval_ms = (uint32_t)ms;
		return 0;
	}
	return -EINVAL;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int engine_options_set(struct engine_options *o, const char *key, const char *value)
{
	uint64_t v;
	int rc;

	if (strcmp(key, "fsync") == 0)
		return engine_options_parse_fsync(o, value);
	if (strcmp(key, "wal.segment.bytes") == 0) {
		/* A hot-index entry holds a 32-bit file position. */
		rc = parse_u64(value, 4096, 1ull << 31, &v);
		if (rc == 0)
			o->wal_segment_bytes = v;
		return rc;
	}
	if (strcmp(key, "wal.seal.ms") == 0) {
		rc = parse_u64(value, 0, 86400000, &v);
		if (rc == 0)
			o->wal_seal_ms = (uint32_t)v;
		return rc;
	}
	if (strcmp(key, "wal.unindexed.max.bytes") == 0) {
		rc = parse_u64(value, 4096, 1ull << 50, &v);
		if (rc == 0)
			o->wal_unindexed_max_bytes = v;
		return rc;
	}
	if (strcmp(key, "default.partitions") == 0) {
		rc = parse_u64(value, 1, 100000, &v);
		if (rc == 0)
			o->default_partitions = (int32_t)v;
		return rc;
	}
	if (strcmp(key, "max.topics") == 0) {
		rc = parse_u64(value, 1, 10000000, &v);
		if (rc == 0)
			o->max_topics = (int32_t)v;
		return rc;
	}
	if (strcmp(key, "max.partitions") == 0) {
		rc = parse_u64(value, 1, 100000000, &v);
		if (rc == 0)
			o->max_partitions = (int32_t)v;
		return rc;
	}
	return -ENOENT;
}

void engine_stats_get(struct engine *e, struct engine_stats *out)
{
	out->appends = atomic_load(&e->st_appends);
	out->groups = atomic_load(&e->st_groups);
	out->bytes = atomic_load(&e->st_bytes);
	out->fsyncs = atomic_load(&e->st_fsyncs);
	out->failed_groups = atomic_load(&e->st_failed);
	out->wal_unindexed_bytes = atomic_load(&e->st_unindexed);
	out->wal_unindexed_max = atomic_load(&e->st_unindexed_max);
	out->backpressure_waits = atomic_load(&e->st_bp_waits);
	pthread_mutex_lock(&e->files_lock);
	out->wal_files = e->nfiles;
	pthread_mutex_unlock(&e->files_lock);
	pthread_mutex_lock(&e->commit_lock);
	out->appends_waiting = e->bp_holding ? e->queue_len : 0;
	pthread_mutex_unlock(&e->commit_lock);
}

/* ---- partitions --------------------------------------------------------------- */

struct partition *partition_new(struct engine *e, struct topic *t, int32_t index)
{
	struct partition *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->e = e;
	p->t = t;
	p->topic_id = t->id;
	p->topic_name = strdup(t->name);
	p->ctime_ns = t->ctime_ns ? t->ctime_ns : now_ns();
	p->index = index;
	if (!p->topic_name) {
		free(p);
		return NULL;
	}
	atomic_init(&p->refcnt, 1);
	pthread_mutex_init(&p->lock, NULL);
	if (cond_init_monotonic(&p->grown)) {
		pthread_mutex_destroy(&p->lock);
		free(p->topic_name);
		free(p);
		return NULL;
	}
	p->max_timestamp = -1;
	p->mtime_ns = p->ctime_ns;
	return p;
}

int partition_index_reserve(struct partition *p, size_t need)
{
	size_t cap = p->cap ? p->cap : 64;
	struct hot_entry *v;

	if (need <= p->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	v = realloc(p->idx, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->idx = v;
	p->cap = cap;
	return 0;
}

int partition_index_push(struct partition *p, const struct hot_entry *he)
{
	int rc = partition_index_reserve(p, p->n + 1);
	if (rc == 0)
		p->idx[p->n++] = *he;
	return rc;
}

void engine_partition_ref(struct partition *p)
{
	atomic_fetch_add(&p->refcnt, 1);
}

void engine_partition_unref(struct partition *p)
{
	if (!p || atomic_fetch_sub(&p->refcnt, 1) != 1)
		return;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->grown);
	free(p->idx);
	for (size_t i = 0; i < p->nsegs; i++)
		segment_unref(p->segs[i]);
	free(p->segs);
	free(p->topic_name);
	free(p);
}

void engine_options_get(struct engine *e, struct engine_options *out)
{
	*out = e->opt; /* set at open, never changed */
}

int engine_partition_get(struct engine *e, const char *topic, int32_t partition,
			 struct partition **out)
{
	struct topic *t;
	int rc = CHRONIK_ENOTOPIC;

	pthread_rwlock_rdlock(&e->meta_lock);
	t = meta_topic_find(e, topic);
	if (t && partition >= 0 && partition < t->nparts) {
		*out = t->parts[partition];
		engine_partition_ref(*out);
		rc = 0;
	}
	pthread_rwlock_unlock(&e->meta_lock);
	return rc;
}

/* Borrowed: valid as long as the caller holds its reference. */
const char *engine_partition_topic(const struct partition *p)
{
	return p->topic_name;
}

int32_t engine_partition_index(const struct partition *p)
{
	return p->index;
}

uint32_t engine_partition_topic_id(const struct partition *p)
{
	return p->topic_id;
}

void engine_partition_info(struct partition *p, struct partition_info *out)
{
	struct segment *cut = NULL; /* the segment log_start_offset lies inside */
	uint64_t seg_records = 0;

	pthread_mutex_lock(&p->lock);
	out->log_start_offset = p->log_start_offset;
	out->next_offset = p->next_offset;
	out->raw_start = p->raw_start;
	out->raw_size = p->raw_size;
	out->wal_bytes = p->wal_bytes;
	out->batches = p->n;
	out->segments = p->nsegs;
	out->segment_bytes = p->seg_bytes;
	out->warm_halted = p->warm_halt_rc != 0;
	out->remote_segments = out->remote_bytes = 0;
	for (size_t i = 0; i < p->nsegs; i++) {
		const struct segment_meta *m = segment_meta_get(p->segs[i]);
		if (m->state == SEGMENT_REMOTE) {
			out->remote_segments++;
			out->remote_bytes += m->bytes;
		}
		/* Records: the registry's count of each segment wholly at or
		 * past the log start; the one the log start cuts (DeleteRecords)
		 * is counted below, from its batches, unless it is dense (or
		 * was counted before: p->cut_count). */
		if (m->base_offset >= p->log_start_offset) {
			seg_records += m->records;
		} else if (m->last_offset >= p->log_start_offset) {
			if (m->records == (uint64_t)(m->last_offset - m->base_offset + 1)) {
				seg_records += (uint64_t)(m->last_offset - p->log_start_offset + 1);
			} else if (p->cut_count.valid && p->cut_count.base == m->base_offset &&
				   p->cut_count.last == m->last_offset &&
				   p->cut_count.gen == m->gen &&
				   p->cut_count.from == p->log_start_offset) {
				seg_records += p->cut_count.n;
			} else {
				cut = p->segs[i];
				segment_ref(cut);
			}
		}
	}
	/* The WAL not yet indexed is dense in offsets. */
	int64_t wal_from = p->seg_next_offset > p->log_start_offset ? p->seg_next_offset :
								      p->log_start_offset;
	out->records =
		seg_records + (uint64_t)(p->next_offset > wal_from ? p->next_offset - wal_from : 0);
	out->max_timestamp = p->max_timestamp;
	out->mtime_ns = p->mtime_ns;
	out->ctime_ns = p->ctime_ns;
	pthread_mutex_unlock(&p->lock);
	if (cut) {
		uint64_t n = 0;
		const struct segment_meta *m = segment_meta_get(cut);
		/* Unreadable: the upper bound, what is past the log start. */
		if (segment_count_from(cut, out->log_start_offset, &n) != 0) {
			n = (uint64_t)(m->last_offset - out->log_start_offset + 1);
		} else {
			pthread_mutex_lock(&p->lock);
			p->cut_count.valid = true;
			p->cut_count.base = m->base_offset;
			p->cut_count.last = m->last_offset;
			p->cut_count.gen = m->gen;
			p->cut_count.from = out->log_start_offset;
			p->cut_count.n = n;
			pthread_mutex_unlock(&p->lock);
		}
		out->records += n;
		segment_unref(cut);
	}
}

/* ---- appends ------------------------------------------------------------------- */

int engine_append_batch(struct partition *p, uint8_t *batch, size_t len, bool verify_crc,
			int64_t *base_offset)
{
	if (len < BATCH_HEADER_SIZE)
		return CHRONIK_ECORRUPT;
	if (verify_crc) {
		int rc = batch_crc_check(batch, len);
		if (rc)
			return rc;
	}
	return commit_submit(p, batch, len, -1, base_offset);
}

int engine_append_records(struct partition *p, const struct record_in *recs, size_t n,
			  int64_t *base_offset)
{
	struct batch_builder b;
	uint8_t *buf;
	size_t len;
	int64_t raw = 0;
	int rc = 0;

	if (n == 0)
		return -EINVAL;
	batch_builder_init(&b);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = batch_builder_add(&b, &recs[i]);
		raw += (recs[i].value_len > 0 ? recs[i].value_len : 0) + 1;
	}
	if (rc == 0)
		rc = batch_builder_finish(&b, &buf, &len);
	batch_builder_fini(&b);
	if (rc)
		return rc;
	rc = commit_submit(p, buf, len, raw, base_offset);
	free(buf);
	return rc;
}

int engine_append_lines(struct partition *p, const char *buf, size_t len, int64_t *base_offset)
{
	uint8_t *batch;
	size_t blen;
	int32_t count;
	int rc;

	if (len == 0 || buf[len - 1] != '\n')
		return -EINVAL;
	rc = batch_encode_lines(buf, len, now_ms(), &batch, &blen, &count);
	if (rc)
		return rc;
	rc = commit_submit(p, batch, blen, (int64_t)len, base_offset);
	free(batch);
	return rc;
}

void engine_set_append_listener(struct engine *e, engine_append_fn fn, void *arg)
{
	pthread_mutex_lock(&e->commit_lock);
	e->listener = fn;
	e->listener_arg = arg;
	while (e->listener_busy)
		pthread_cond_wait(&e->commit_done, &e->commit_lock);
	pthread_mutex_unlock(&e->commit_lock);
}

/* The durability rules are commit.c's "FAILED WRITES AND SYNCS": under
 * fsync every, each acknowledged group is durable already and only the
 * FAILED state is reported; otherwise the active file is synced (sealed
 * files were synced when they were sealed), and a failure enters FAILED. */
int engine_sync(struct engine *e)
{
	int fd, rc;

	if (e->opt.read_only)
		return 0;
	pthread_mutex_lock(&e->files_lock);
	fd = e->nfiles ? e->files[e->nfiles - 1].fd : -1;
	pthread_mutex_unlock(&e->files_lock);
	pthread_mutex_lock(&e->sync_lock);
	rc = atomic_load(&e->failed_rc);
	if (rc == 0 && fd >= 0 && e->opt.fsync != FSYNC_EVERY) {
		if (fdatasync(fd) < 0) {
			rc = -errno;
			engine_fail(e, rc, "fsync of the WAL failed");
		} else {
			atomic_fetch_add(&e->st_fsyncs, 1);
			engine_synced(e);
			/* A FAILED state entered meanwhile (a failed cut outside
			 * sync_lock) is not reported as success. */
			rc = atomic_load(&e->failed_rc);
		}
	}
	pthread_mutex_unlock(&e->sync_lock);
	return rc;
}

/* ---- open / close ----------------------------------------------------------------- */

static int lock_dir(struct engine *e)
{
	char path[4096], pid[32];
	int n;

	snprintf(path, sizeof(path), "%s/LOCK", e->dir);
	e->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (e->lock_fd < 0)
		return -errno;
	if (flock(e->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		n = (int)pread(e->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		close(e->lock_fd);
		e->lock_fd = -1;
		if (err == EWOULDBLOCK) {
			log_msg(LOG_LVL_ERROR, "engine", "%s is held by pid %s", e->dir,
				*pid ? pid : "unknown");
			return CHRONIK_ELOCKED;
		}
		return -err;
	}
	/* Overwrite the pid in place and cut only what an older, longer one
	 * left: a truncate is a journal transaction, and it would wait for
	 * the filesystem's journal on every open. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	struct stat st;
	if (pwrite(e->lock_fd, pid, (size_t)n, 0) != n || fstat(e->lock_fd, &st) < 0 ||
	    (st.st_size > n && ftruncate(e->lock_fd, n) < 0))
		log_msg(LOG_LVL_WARN, "engine", "cannot write pid into %s", path);
	return 0;
}

/* Create directory path unless it exists; a new one is made durable by an
 * fsync of its parent, so that a crash cannot lose the directory (and the
 * files later created and fsynced in it) after open reported success. */
static int mkdir_p(const char *path)
{
	char parent[4096];
	char *slash;
	int fd, rc;

	if (mkdir(path, 0755) < 0)
		return errno == EEXIST ? 0 : -errno;
	snprintf(parent, sizeof(parent), "%s", path);
	while ((slash = strrchr(parent, '/')) && slash[1] == 0 && slash > parent)
		*slash = 0; /* "a/b/" names b */
	slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == parent)
		parent[1] = 0;
	else
		*slash = 0;
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fsync_dir(fd);
	close(fd);
	return rc;
}

int engine_open(const char *dir, const struct engine_options *o, struct engine **out)
{
	struct engine *e = calloc(1, sizeof(*e));
	char path[4096];
	int rc;

	if (!e)
		return -ENOMEM;
	e->lock_fd = e->dir_fd = e->meta_fd = -1;
	if (o)
		e->opt = *o;
	else
		engine_options_init(&e->opt);
	if (e->opt.segment_sidecar) {
		rc = segment_sidecar_register(e->opt.segment_sidecar);
		if (rc) {
			free(e);
			return rc;
		}
		e->seg_written = e->opt.segment_written;
		e->seg_written_arg = e->opt.segment_written_arg;
	}
	if (e->opt.default_partitions <= 0)
		e->opt.default_partitions = 1;
	if (e->opt.max_topics <= 0)
		e->opt.max_topics = 10000;
	if (e->opt.max_partitions <= 0)
		e->opt.max_partitions = 100000;
	if (e->opt.wal_unindexed_max_bytes == 0)
		e->opt.wal_unindexed_max_bytes = 2 * e->opt.wal_segment_bytes;
	atomic_init(&e->wal_sealed_bytes, 0);
	atomic_init(&e->backpressure_off, true);
	pthread_rwlock_init(&e->meta_lock, NULL);
	pthread_mutex_init(&e->files_lock, NULL);
	pthread_mutex_init(&e->refresh_lock, NULL);
	pthread_mutex_init(&e->commit_lock, NULL);
	pthread_mutex_init(&e->sync_lock, NULL);
	pthread_mutex_init(&e->durable_lock, NULL);
	atomic_init(&e->failed_rc, 0);
	atomic_init(&e->indexer_halt_rc, 0);
	cond_init_monotonic(&e->commit_wake); /* the interval sync's timed wait */
	pthread_cond_init(&e->commit_done, NULL);
	pthread_rwlock_init(&e->wal_retire_lock, NULL);
	pthread_mutex_init(&e->warm_lock, NULL);
	pthread_mutex_init(&e->hook_lock, NULL);
	pthread_mutex_init(&e->compact_lock, NULL);
	pthread_mutex_init(&e->compactor_lock, NULL);
	pthread_cond_init(&e->compactor_done, NULL);
	pthread_mutex_init(&e->indexer_lock, NULL);
	pthread_condattr_t ica;
	pthread_condattr_init(&ica);
	pthread_condattr_setclock(&ica, CLOCK_MONOTONIC); /* the indexer's timed waits */
	pthread_cond_init(&e->indexer_wake, &ica);
	pthread_cond_init(&e->compactor_wake, &ica); /* its periodic wake too */
	pthread_condattr_destroy(&ica);
	pthread_cond_init(&e->indexer_idle, NULL);
	/* The shipped example filter (compact.c). */
	e->filters = calloc(1, sizeof(*e->filters));
	if (e->filters && (e->filters[0].name = strdup("value.prefix"))) {
		e->filters[0].fn = compact_filter_value_prefix;
		e->nfilters = 1;
	}
	e->dir = strdup(dir);
	if (!e->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/wal", dir);
	if (!e->opt.read_only && ((rc = mkdir_p(dir)) || (rc = mkdir_p(path))))
		goto fail;
	if (!e->opt.read_only) {
		char seg[4200];
		snprintf(seg, sizeof(seg), "%s/segments", dir);
		rc = mkdir_p(seg);
		if (rc)
			goto fail;
	}
	/* A read-only engine changes nothing, so it may read beside a writer. */
	if (!e->opt.read_only) {
		rc = lock_dir(e);
		if (rc)
			goto fail;
	}
	e->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->dir_fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = meta_open(e);
	if (rc)
		goto fail;
	rc = wal_recover(e);
	if (rc)
		goto fail;
	if (!e->opt.read_only) {
		rc = commit_start(e);
		if (rc)
			goto fail;
		rc = e->opt.no_index ? 0 : indexer_start(e);
		if (rc)
			goto fail;
		rc = e->opt.no_index ? 0 : compactor_start(e);
		if (rc)
			goto fail;
	}
	*out = e;
	return 0;
fail:
	engine_close(e);
	return rc;
}

int engine_close(struct engine *e)
{
	int rc = 0;

	if (!e)
		return 0;
	tier_stop(e);
	compactor_stop(e); /* waits for a compaction under way */
	indexer_stop(e);
	commit_stop(e);
	tier_free(e);
	if (!e->opt.read_only && e->nfiles)
		rc = engine_sync(e);
	meta_close(e);
	for (size_t i = 0; i < e->nfiles; i++)
		if (e->files[i].fd >= 0)
			close(e->files[i].fd);
	free(e->files);
	if (e->dir_fd >= 0)
		close(e->dir_fd);
	if (e->lock_fd >= 0)
		close(e->lock_fd);
	pthread_rwlock_destroy(&e->meta_lock);
	pthread_mutex_destroy(&e->files_lock);
	pthread_mutex_destroy(&e->refresh_lock);
	pthread_mutex_destroy(&e->commit_lock);
	pthread_mutex_destroy(&e->sync_lock);
	pthread_mutex_destroy(&e->durable_lock);
	pthread_cond_destroy(&e->commit_wake);
	pthread_cond_destroy(&e->commit_done);
	pthread_rwlock_destroy(&e->wal_retire_lock);
	pthread_mutex_destroy(&e->warm_lock);
	pthread_mutex_destroy(&e->hook_lock);
	pthread_mutex_destroy(&e->compact_lock);
	pthread_mutex_destroy(&e->compactor_lock);
	pthread_cond_destroy(&e->compactor_wake);
	pthread_cond_destroy(&e->compactor_done);
	pthread_mutex_destroy(&e->indexer_lock);
	pthread_cond_destroy(&e->indexer_wake);
	pthread_cond_destroy(&e->indexer_idle);
	for (size_t i = 0; i < e->nfilters; i++)
		free(e->filters[i].name);
	free(e->filters);
	free(e->dir);
	free(e);
	return rc;
}
