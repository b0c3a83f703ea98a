/* builder.c - the index builder thread (search.h, "search_builder").
 *
 * WHY A THREAD. Building a segment's index (index.c) costs several times
 * what writing the segment does (FTS5 inserts, optimize, VACUUM). Done in
 * the segment hook, it ran on the indexer's thread with the engine's
 * segment work paused, so the WAL drained at the pace of FTS5. With a
 * builder, the hook only queues the segment's path and returns; the
 * builder's own thread builds the index afterwards. Until then the segment
 * has no index and queries scan it (query.c), so results stay complete and
 * exact meanwhile; only slower.
 *
 * THE THREAD. One per builder. It
 *   1. sweeps once when started: for every topic and partition, each local
 *      registered segment whose index is missing, unreadable, of another
 *      format or does not match the segment (fts_index_open) is rebuilt;
 *      in each partition's segment directory every <name>.fts whose
 *      segment file <name> is gone, and every <name>.fts.tmp (only this
 *      thread writes those), is removed;
 *   2. then builds the queued segments in the order they were written (a
 *      segment gone meanwhile fails its build quietly; an index renamed
 *      into place after its segment went is an orphan for the next sweep);
 *   3. sweeps again after SWEEP_IDLE_MS without work, and when
 *      search_builder_sweep asks.
 * A build that fails is logged; the segment is retried by the next sweep.
 * search_builder_stop joins the thread; what is still queued is built by
 * the next start's sweep.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "search-private.h"
#include "search.h"

#define SWEEP_IDLE_MS 30000

struct job {
	struct job *next;
	char path[];
};

struct search_builder {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* work queued, a sweep asked, stop */
	pthread_cond_t idle; /* the thread has nothing to do */
	struct engine *e;
	pthread_t thread;
	bool running, stop, sweep, busy;
	/* Guarded by lock: the queue (head..tail), the flags above. busy: the
	 * thread is building or sweeping outside the lock. */
	struct job *head, *tail;
};

int search_builder_new(struct search_builder **out)
{
	struct search_builder *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->wake, NULL);
	pthread_cond_init(&b->idle, NULL);
	*out = b;
	return 0;
}

/* The segment hook: queue the path (engine work is paused; be quick). */
static void on_segment_written(void *arg, struct partition *p, const char *seg_path)
{
	struct search_builder *b = arg;
	size_t n = strlen(seg_path) + 1;
	struct job *j = malloc(sizeof(*j) + n);

	(void)p;
	if (!j) {
		log_msg(LOG_LVL_ERROR, "search", "%s: out of memory; the next sweep indexes it",
			seg_path);
		return;
	}
	memcpy(j->path, seg_path, n);
	j->next = NULL;
	pthread_mutex_lock(&b->lock);
	if (b->tail)
		b->tail->next = j;
	else
		b->head = j;
	b->tail = j;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
}

void search_builder_options(struct search_builder *b, struct engine_options *o)
{
	o->segment_sidecar = SEARCH_INDEX_SUFFIX;
	o->segment_written = on_segment_written;
	o->segment_written_arg = b;
}

static bool has_suffix(const char *s, size_t len, const char *suf)
{
	size_t n = strlen(suf);
	return len > n && strcmp(s + len - n, suf) == 0;
}

/* Remove what no segment of dir owns: <name>.fts without <name>, and any
 * <name>.fts.tmp. */
static void sweep_orphans(const char *dir)
{
	char path[4400];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		bool tmp = has_suffix(de->d_name, len, SEARCH_INDEX_SUFFIX ".tmp");
		if (!tmp && !has_suffix(de->d_name, len, SEARCH_INDEX_SUFFIX))
			continue;
		if (!tmp) {
			snprintf(path, sizeof(path), "%s/%.*s", dir,
				 (int)(len - strlen(SEARCH_INDEX_SUFFIX)), de->d_name);
			if (stat(path, &st) == 0 || errno != ENOENT)
				continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == 0)
			log_msg(LOG_LVL_INFO, "search", "%s: removed (no segment, or a leftover)", path);
	}
	closedir(d);
}

static bool stopping(struct search_builder *b)
{
	pthread_mutex_lock(&b->lock);
	bool s = b->stop;
	pthread_mutex_unlock(&b->lock);
	return s;
}

static void sweep_partition(struct search_builder *b, struct partition *p)
{
	struct engine_segment_info *segs = NULL;
	char dir[4200], path[4400];
	size_t n = 0;

	engine_partition_segment_dir(p, dir, sizeof(dir));
	if (engine_partition_segments(p, &segs, &n) == 0) {
		for (size_t i = 0; i < n && !stopping(b); i++) {
			if (segs[i].remote)
				continue;
			sqlite3 *db = fts_index_open(dir, &segs[i]);
			if (db) {
				sqlite3_close(db);
				continue;
			}
			snprintf(path, sizeof(path), "%s/%s", dir, segs[i].file);
			log_msg(LOG_LVL_INFO, "search", "%s: index missing or stale; rebuilding",
				path);
			fts_build_logged(path);
		}
		free(segs);
	}
	sweep_orphans(dir);
}

static void sweep(struct search_builder *b)
{
	char **topics = NULL;
	size_t nt = 0;

	if (engine_topic_list(b->e, &topics, &nt))
		return;
	for (size_t t = 0; t < nt && !stopping(b); t++) {
		int32_t np = 0;
		if (engine_topic_partitions(b->e, topics[t], &np))
			continue;
		for (int32_t i = 0; i < np && !stopping(b); i++) {
			struct partition *p;
			if (engine_partition_get(b->e, topics[t], i, &p))
				continue;
			sweep_partition(b, p);
			engine_partition_unref(p);
		}
	}
	engine_strv_free(topics, nt);
}

static void *builder_main(void *arg)
{
	struct search_builder *b = arg;
	struct timespec ts;

	pthread_mutex_lock(&b->lock);
	while (!b->stop) {
		if (b->sweep) {
			b->sweep = false;
			b->busy = true;
			pthread_mutex_unlock(&b->lock);
			sweep(b);
			pthread_mutex_lock(&b->lock);
			b->busy = false;
			continue;
		}
		if (b->head) {
			struct job *j = b->head;
			b->head = j->next;
			if (!b->head)
				b->tail = NULL;
			b->busy = true;
			pthread_mutex_unlock(&b->lock);
			fts_build_logged(j->path);
			free(j);
			pthread_mutex_lock(&b->lock);
			b->busy = false;
			continue;
		}
		pthread_cond_broadcast(&b->idle);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SWEEP_IDLE_MS / 1000;
		if (pthread_cond_timedwait(&b->wake, &b->lock, &ts) == ETIMEDOUT)
			b->sweep = true;
	}
	pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

int search_builder_start(struct search_builder *b, struct engine *e)
{
	int rc;

	pthread_mutex_lock(&b->lock);
	if (b->running) {
		pthread_mutex_unlock(&b->lock);
		return -EBUSY;
	}
	b->e = e;
	b->stop = false;
	b->sweep = true;
	rc = -pthread_create(&b->thread, NULL, builder_main, b);
	b->running = rc == 0;
	pthread_mutex_unlock(&b->lock);
	return rc;
}

void search_builder_sweep(struct search_builder *b)
{
	pthread_mutex_lock(&b->lock);
	b->sweep = true;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
}

void search_builder_wait(struct search_builder *b)
{
	pthread_mutex_lock(&b->lock);
	while (b->running && !b->stop && (b->head || b->sweep || b->busy))
		pthread_cond_wait(&b->idle, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

void search_builder_stop(struct search_builder *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	if (!b->running) {
		pthread_mutex_unlock(&b->lock);
		return;
	}
	b->stop = true;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	pthread_mutex_lock(&b->lock);
	b->running = false;
	b->e = NULL;
	pthread_mutex_unlock(&b->lock);
}

void search_builder_free(struct search_builder *b)
{
	if (!b)
		return;
	search_builder_stop(b);
	while (b->head) {
		struct job *j = b->head;
		b->head = j->next;
		free(j);
	}
	pthread_cond_destroy(&b->idle);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
