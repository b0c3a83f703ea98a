/* builder.c - the index builder threads (search.h, "search_builder").
 *
 * WHY THREADS. Building a segment's index (index.c) costs several times
 * what writing the segment does (FTS5 inserts, then optimize). Done in
 * the segment hook, it ran on the indexer's thread with the engine's
 * segment work paused, so the WAL drained at the pace of FTS5. With a
 * builder, the hook only queues the segment's path and returns; the
 * builder's own threads build the index afterwards. Until then the segment
 * has no index and queries scan it (query.c), so results stay complete and
 * exact meanwhile; only slower.
 *
 * WHY TWO. One build is one thread's work (one SQLite connection, one
 * FTS5 table), so one thread leaves the other cores idle once appends
 * stop, while the queue still holds segments. The builder runs
 * BUILDER_THREADS threads (fewer on a machine with fewer online CPUs):
 * with one segment queued one thread builds it; a second waiting segment
 * starts on the second thread. Each build holds up to about 32 MiB of FTS5
 * hash (index.c, BUILD), so two cost up to twice that.
 *
 * THE THREADS. They share one queue. They
 *   1. sweep once when started: for every topic and partition, each local
 *      registered segment whose index is missing, unreadable, of another
 *      format or does not match the segment (fts_index_open) is rebuilt;
 *      in each partition's segment directory every <name>.fts whose
 *      segment file <name> is gone, and every <name>.fts.tmp (only these
 *      threads write those), is removed, and the index handles queries
 *      keep open on files gone or changed are closed (fts_cache_prune);
 *   2. then build the queued segments in the order they were written (a
 *      segment gone meanwhile, before or during its build, fails its
 *      build quietly and leaves no index: index.c, "A SEGMENT GONE DURING
 *      ITS BUILD"; so no orphan waits for a sweep, which under steady
 *      ingest would come only at the next start);
 *   3. sweep again after SWEEP_IDLE_MS without work, and when
 *      search_builder_sweep asks.
 * A sweep runs alone: it starts once no build is running, and no build
 * starts while one is asked for or running (it rebuilds what it finds,
 * and removes .fts.tmp files, which a build in progress writes). Two
 * threads never build the same path at once: a thread skips a job whose
 * path the other is building (both would write <path>.fts.tmp).
 * A build that fails is logged; the segment is retried by the next sweep.
 * search_builder_stop joins the threads; what is still queued is built by
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
#define BUILDER_THREADS 2

struct job {
	struct job *next;
	char path[];
};

struct builder_thread {
	struct search_builder *b;
	pthread_t thread;
	const char *path; /* the job's path this thread builds, or NULL; under b->lock */
};

struct search_builder {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* work queued, a build or sweep done, a sweep asked, stop */
	pthread_cond_t idle; /* the threads have nothing to do */
	struct engine *e;
	struct builder_thread threads[BUILDER_THREADS];
	int nthreads; /* started, <= BUILDER_THREADS */
	bool running, stop, sweep, sweeping;
	int busy;
	/* Guarded by lock: the queue (head..tail), the flags above, busy and
	 * each thread's path. busy: how many threads are building or
	 * sweeping outside the lock; sweeping: one of them sweeps (busy is
	 * then 1). sweep: a sweep is asked for (no build starts meanwhile). */
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
	fts_cache_prune(); /* no handle left on what went */
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

/* The first queued job whose path no thread is building, taken out of
 * the queue; NULL when none. Under b->lock. */
static struct job *job_take(struct search_builder *b)
{
	struct job **link = &b->head, *prev = NULL;

	for (struct job *j = b->head; j; prev = j, link = &j->next, j = j->next) {
		bool taken = false;
		for (int i = 0; i < b->nthreads && !taken; i++)
			taken = b->threads[i].path && strcmp(b->threads[i].path, j->path) == 0;
		if (taken)
			continue;
		*link = j->next;
		if (b->tail == j)
			b->tail = prev;
		return j;
	}
	return NULL;
}

static void *builder_main(void *arg)
{
	struct builder_thread *self = arg;
	struct search_builder *b = self->b;
	struct timespec ts;
	struct job *j;

	pthread_mutex_lock(&b->lock);
	while (!b->stop) {
		if (b->sweep && b->busy == 0) {
			b->sweep = false;
			b->sweeping = true;
			b->busy++;
			pthread_mutex_unlock(&b->lock);
			sweep(b);
			pthread_mutex_lock(&b->lock);
			b->busy--;
			b->sweeping = false;
			pthread_cond_broadcast(&b->wake);
			continue;
		}
		if (!b->sweep && !b->sweeping && (j = job_take(b))) {
			self->path = j->path;
			b->busy++;
			pthread_mutex_unlock(&b->lock);
			fts_build_logged(j->path);
			pthread_mutex_lock(&b->lock);
			b->busy--;
			self->path = NULL;
			free(j);
			pthread_cond_broadcast(&b->wake);
			continue;
		}
		if (!b->head && !b->sweep && b->busy == 0)
			pthread_cond_broadcast(&b->idle);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SWEEP_IDLE_MS / 1000;
		if (pthread_cond_timedwait(&b->wake, &b->lock, &ts) == ETIMEDOUT && !b->head &&
		    b->busy == 0)
			b->sweep = true;
	}
	pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* How many threads to start: BUILDER_THREADS, at most one per online CPU. */
static int thread_count(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus < 1)
		return 1;
	return cpus < BUILDER_THREADS ? (int)cpus : BUILDER_THREADS;
}

int search_builder_start(struct search_builder *b, struct engine *e)
{
	int rc = 0, want = thread_count();

	pthread_mutex_lock(&b->lock);
	if (b->running) {
		pthread_mutex_unlock(&b->lock);
		return -EBUSY;
	}
	b->e = e;
	b->stop = false;
	b->sweep = true;
	b->nthreads = 0;
	for (int i = 0; i < want; i++) {
		b->threads[i] = (struct builder_thread){ .b = b, .path = NULL };
		rc = -pthread_create(&b->threads[i].thread, NULL, builder_main, &b->threads[i]);
		if (rc)
			break;
		b->nthreads++;
	}
	b->running = b->nthreads > 0;
	pthread_mutex_unlock(&b->lock);
	if (rc && b->running) {
		log_msg(LOG_LVL_WARN, "search", "index builder: %d of %d threads started (%s)",
			b->nthreads, want, chronik_strerror(rc));
		rc = 0;
	}
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
		return; /* none (chronikd with search.index=false) */
	pthread_mutex_lock(&b->lock);
	if (!b->running) {
		pthread_mutex_unlock(&b->lock);
		return;
	}
	b->stop = true;
	pthread_cond_broadcast(&b->wake);
	pthread_mutex_unlock(&b->lock);
	for (int i = 0; i < b->nthreads; i++)
		pthread_join(b->threads[i].thread, NULL);
	pthread_mutex_lock(&b->lock);
	b->running = false;
	b->nthreads = 0;
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
