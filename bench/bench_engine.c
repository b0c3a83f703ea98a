/* bench_engine.c - the engine's side of bench/run: append throughput,
 * recovery time and memory, the warm tier's indexer, retention and
 * compaction, through the public API of wal/engine.h.
 *
 *   chronik-bench-engine append DIR [options]
 *       Opens (creating) DIR, creates the topic (--topic, default "bench")
 *       with --partitions P (or appends to it when it exists), starts
 *       --threads T appenders (thread i appends to partition i % P) and
 *       appends until --bytes of record values have been appended.
 *       --value-size V  bytes per record value (the raw line minus its '\n')
 *       --records R     records per batch
 *       With V < 64 KiB each thread builds its batch once (R lines of V
 *       bytes and a '\n', batch_encode_lines) and appends it again and again
 *       with engine_append_batch (the engine patches the base offset in
 *       place). Otherwise each append is engine_append_records of R records
 *       of V bytes, so the encoding is part of the measure.
 *       --encode        each append is engine_append_lines of the R lines
 *                       (the filesystem's path for one write of R lines:
 *                       the batch is encoded inside every call)
 *       --keys K        record i of a thread gets the key "key-<i mod K>"
 *                       (each append is then engine_append_records, which
 *                       encodes its batch)
 *       --input FILE    append FILE's lines instead (one thread, partition
 *                       0), in calls of engine_append_lines of at most
 *                       --chunk BYTES (default 1 MiB), each cut after a
 *                       newline; FILE must end with '\n' and hold no line
 *                       longer than the chunk
 *       --fsync every|never, --sync-end (engine_sync() inside the timing),
 *       --segment BYTES (wal.segment.bytes), --set KEY=VALUE (any engine
 *       setting, engine_options_set; repeatable), --no-index (no indexer
 *       thread: the WAL keeps everything, as before the warm tier),
 *       --topic NAME, --config JSON (the topic's config when this run
 *       creates it).
 *       --index-end     after the timing, seal the active file and wait
 *                       for the indexer (engine_index_now; timed apart as
 *                       index_end_seconds), then report the segments and
 *                       the resident memory
 *       While appending, a sampler thread looks every 20 ms at the WAL not
 *       yet indexed (the topic's partitions' wal_bytes summed:
 *       wal_max_bytes) and at the disk DIR holds (st_blocks of every file
 *       and directory under it, as du counts: disk_max_kib).
 *       rss_start_kib is the resident memory once the engine is open and
 *       the topic exists, before any append; rss_end_kib at the end (after
 *       --index-end), rss_trimmed_kib the same after malloc_trim(0).
 *   chronik-bench-engine index DIR
 *       Opens DIR with its indexer and times engine_index_now (seal the
 *       active file, index every sealed one) from the end of engine_open to
 *       its return: index_seconds for wal_bytes of WAL, the bytes the open
 *       found not yet indexed (open_seconds is the open before it), and
 *       index_cpu_seconds, the CPU (user + system, every thread) the
 *       process used over the same span.
 *   chronik-bench-engine compact DIR
 *       Opens DIR, indexes what its WAL holds (engine_index_now), then times
 *       engine_partition_compact of every partition of --topic and reports
 *       what it read and kept (segment bytes and records, summed), and how
 *       the offset map was built: map_keys_read key table entries read,
 *       map_records_decoded records decoded (segments without a table).
 *   chronik-bench-engine recover DIR
 *       Opens an empty engine in DIR.empty (the fixed cost), then times
 *       engine_open(DIR) (seconds, and cpu_seconds: user + system of every
 *       thread over the open) and reports the resident memory it added, before
 *       and after malloc_trim(0) (which returns freed heap pages), and what
 *       the partitions hold: batches and bytes in the WAL not yet indexed,
 *       segments and their bytes. Without --no-index its engine_close
 *       indexes every sealed WAL file, so a second recover opens from the
 *       segments; --index-now seals the active file too and waits for the
 *       indexer (engine_index_now) after the measure.
 *
 * Output: one line of key=value pairs on stdout, for bench/run to parse.
 * Timing uses CLOCK_MONOTONIC; memory comes from getrusage (peak) and
 * /proc/self/statm (current).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include "batch.h"
#include "engine.h"
#include "frame.h"
#include "log.h"

#define SAMPLE_MS 20

struct bench_opts {
	const char *dir;
	const char *topic;
	const char *config;
	const char *input;
	uint64_t chunk;
	uint64_t keys;
	bool encode;
	bool index_end;
	int threads;
	int partitions;
	uint64_t bytes;
	size_t value_size;
	int records;
	struct engine_options eo;
	bool sync_end;
	bool index_now;
};

struct appender {
	pthread_t tid;
	struct engine *e;
	struct partition *p;
	const struct bench_opts *o;
	atomic_uint_fast64_t *claimed; /* batches handed out so far */
	uint64_t total; /* batches to append in all */
	pthread_barrier_t *start;
	uint64_t batches;
	uint64_t records; /* records appended (--input: lines) */
	uint64_t value_bytes; /* their value bytes */
	int status;
};

/* What the sampler thread saw; max_* written by it only, read after join. */
struct sampler {
	pthread_t tid;
	struct engine *e;
	const struct bench_opts *o;
	atomic_bool stop;
	uint64_t wal_max_bytes;
	uint64_t disk_max_bytes;
};

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long maxrss_kib(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -1;
	return ru.ru_maxrss;
}

static void quiet_sink(void *arg, enum log_level level, const char *module, const char *msg)
{
	(void)arg;
	if (level >= LOG_LVL_WARN)
		fprintf(stderr, "chronik-bench-engine: %s: %s\n", module, msg);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "chronik-bench-engine: %s: %s\n", what, chronik_strerror(rc));
	exit(1);
}

/* ---- what a directory holds on disk (du) ------------------------------------ */

/* nftw passes no argument to its callback: the sum lives here. Only one
 * thread (the sampler, or main once it has stopped) walks at a time. */
static uint64_t du_sum;

static int du_add(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	(void)type;
	(void)ftw;
	du_sum += (uint64_t)st->st_blocks * 512u;
	return 0;
}

/* Bytes of disk under dir, st_blocks summed (a file removed while the walk
 * runs is skipped). */
static uint64_t du_bytes(const char *dir)
{
	du_sum = 0;
	nftw(dir, du_add, 16, FTW_PHYS);
	return du_sum;
}

/* The topic's WAL bytes not yet indexed, its segments and their bytes. */
static void topic_totals(struct engine *e, const char *topic, uint64_t *wal_bytes,
			 uint64_t *segments, uint64_t *segment_bytes, uint64_t *batches)
{
	int32_t nparts = 0;
	uint64_t w = 0, s = 0, sb = 0, b = 0;

	if (engine_topic_partitions(e, topic, &nparts) == 0) {
		for (int32_t i = 0; i < nparts; i++) {
			struct partition *p;
			struct partition_info pi;
			if (engine_partition_get(e, topic, i, &p))
				continue;
			engine_partition_info(p, &pi);
			w += pi.wal_bytes;
			s += pi.segments;
			sb += pi.segment_bytes;
			b += pi.batches;
			engine_partition_unref(p);
		}
	}
	if (wal_bytes)
		*wal_bytes = w;
	if (segments)
		*segments = s;
	if (segment_bytes)
		*segment_bytes = sb;
	if (batches)
		*batches = b;
}

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	struct timespec ts = { 0, SAMPLE_MS * 1000000L };

	while (!atomic_load(&s->stop)) {
		uint64_t wal, disk;
		topic_totals(s->e, s->o->topic, &wal, NULL, NULL, NULL);
		disk = du_bytes(s->o->dir);
		if (wal > s->wal_max_bytes)
			s->wal_max_bytes = wal;
		if (disk > s->disk_max_bytes)
			s->disk_max_bytes = disk;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* ---- appenders ---------------------------------------------------------------- */

static char *lines_new(const struct bench_opts *o, size_t *len)
{
	size_t line = o->value_size + 1, n = line * (size_t)o->records;
	char *lines = malloc(n);
	if (!lines)
		return NULL;
	for (size_t i = 0; i < n; i++)
		lines[i] = (i + 1) % line == 0 ? '\n' : (char)('a' + (i % line) % 26);
	*len = n;
	return lines;
}

/* Small batches: built once, appended many times; with --encode, encoded
 * again by every call (engine_append_lines). */
static int append_prebuilt(struct appender *a)
{
	const struct bench_opts *o = a->o;
	size_t len, blen = 0;
	uint8_t *batch = NULL;
	int32_t count;
	char *lines;
	int rc = 0;

	lines = lines_new(o, &len);
	if (!lines)
		return -ENOMEM;
	if (!o->encode) {
		rc = batch_encode_lines(lines, len, 0, &batch, &blen, &count);
		if (rc) {
			free(lines);
			return rc;
		}
	}
	pthread_barrier_wait(a->start);
	while (atomic_fetch_add(a->claimed, 1) < a->total) {
		if (o->encode)
			rc = engine_append_lines(a->p, lines, len, NULL);
		else
			rc = engine_append_batch(a->p, batch, blen, false, NULL);
		if (rc)
			break;
		a->batches++;
	}
	a->records = a->batches * (uint64_t)o->records;
	a->value_bytes = a->records * o->value_size;
	free(batch);
	free(lines);
	return rc;
}

/* Large values, or keyed records: every append encodes its batch
 * (engine_append_records). */
static int append_records(struct appender *a)
{
	const struct bench_opts *o = a->o;
	struct record_in *recs;
	uint8_t *value;
	char *keys = NULL;
	uint64_t n = 0;
	int rc = 0;

	value = malloc(o->value_size);
	recs = calloc((size_t)o->records, sizeof(*recs));
	if (o->keys)
		keys = malloc((size_t)o->records * 32);
	if (!value || !recs || (o->keys && !keys)) {
		free(value);
		free(recs);
		free(keys);
		return -ENOMEM;
	}
	for (size_t i = 0; i < o->value_size; i++)
		value[i] = (uint8_t)('a' + i % 26);
	for (int i = 0; i < o->records; i++) {
		recs[i].key_len = -1;
		recs[i].value = value;
		recs[i].value_len = (int32_t)o->value_size;
	}
	pthread_barrier_wait(a->start);
	while (atomic_fetch_add(a->claimed, 1) < a->total) {
		for (int i = 0; o->keys && i < o->records; i++, n++) {
			char *k = keys + (size_t)i * 32;
			recs[i].key = k;
			recs[i].key_len = snprintf(k, 32, "key-%" PRIu64, n % o->keys);
		}
		rc = engine_append_records(a->p, recs, (size_t)o->records, NULL);
		if (rc)
			break;
		a->batches++;
	}
	a->records = a->batches * (uint64_t)o->records;
	a->value_bytes = a->records * o->value_size;
	free(keys);
	free(recs);
	free(value);
	return rc;
}

/* --input: FILE's lines in calls of at most --chunk bytes cut after a
 * newline. */
static int append_input(struct appender *a)
{
	const struct bench_opts *o = a->o;
	struct stat st;
	const char *buf;
	size_t size, pos = 0;
	int fd, rc = 0;

	fd = open(o->input, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		pthread_barrier_wait(a->start);
		return rc;
	}
	size = (size_t)st.st_size;
	buf = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (buf == MAP_FAILED || !size || buf[size - 1] != '\n') {
		pthread_barrier_wait(a->start);
		return buf == MAP_FAILED ? -errno : -EINVAL;
	}
	madvise((void *)buf, size, MADV_SEQUENTIAL);
	pthread_barrier_wait(a->start);
	while (pos < size) {
		size_t n = size - pos < o->chunk ? size - pos : o->chunk;
		const char *nl = memrchr(buf + pos, '\n', n);
		if (!nl) {
			rc = -E2BIG; /* a line longer than the chunk */
			break;
		}
		n = (size_t)(nl - (buf + pos)) + 1;
		rc = engine_append_lines(a->p, buf + pos, n, NULL);
		if (rc)
			break;
		for (size_t i = 0; i < n; i++)
			a->records += buf[pos + i] == '\n';
		a->value_bytes += n;
		a->batches++;
		pos += n;
	}
	a->value_bytes -= a->records; /* the newlines are not values */
	munmap((void *)buf, size);
	return rc;
}

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	if (a->o->input)
		a->status = append_input(a);
	else if (a->o->value_size < 65536 && !a->o->keys)
		a->status = append_prebuilt(a);
	else
		a->status = append_records(a);
	return NULL;
}

static int cmd_append(const struct bench_opts *o)
{
	struct appender *a;
	struct engine *e;
	struct sampler smp = { 0 };
	pthread_barrier_t start;
	atomic_uint_fast64_t claimed = 0;
	uint64_t batch_bytes = (uint64_t)o->value_size * (uint64_t)o->records;
	uint64_t total = (o->bytes + batch_bytes - 1) / batch_bytes, batches = 0, wal_bytes = 0;
	uint64_t records = 0, value_bytes = 0, segments = 0, segment_bytes = 0;
	double t0, t1, t2 = 0, t3 = 0, c0, c1;
	long rss_start, rss_end, rss_trimmed;
	int threads = o->input ? 1 : o->threads;
	int rc, status = 0;

	rc = engine_open(o->dir, &o->eo, &e);
	if (rc)
		die("engine_open", rc);
	rc = engine_topic_create(e, o->topic, o->partitions, o->config);
	if (rc && rc != CHRONIK_ETOPICEXISTS)
		die("engine_topic_create", rc);
	rss_start = rss_kib();
	a = calloc((size_t)threads, sizeof(*a));
	if (!a)
		die("calloc", -ENOMEM);
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		a[i].e = e;
		a[i].o = o;
		a[i].claimed = &claimed;
		a[i].total = total;
		a[i].start = &start;
		rc = engine_partition_get(e, o->topic, i % o->partitions, &a[i].p);
		if (rc)
			die("engine_partition_get", rc);
		rc = pthread_create(&a[i].tid, NULL, appender_main, &a[i]);
		if (rc)
			die("pthread_create", -rc);
	}
	smp.e = e;
	smp.o = o;
	rc = pthread_create(&smp.tid, NULL, sampler_main, &smp);
	if (rc)
		die("pthread_create", -rc);
	pthread_barrier_wait(&start);
	t0 = now_s();
	c0 = cpu_s();
	for (int i = 0; i < threads; i++) {
		pthread_join(a[i].tid, NULL);
		if (a[i].status && !status)
			status = a[i].status;
		batches += a[i].batches;
		records += a[i].records;
		value_bytes += a[i].value_bytes;
	}
	if (status == 0 && o->sync_end)
		status = engine_sync(e);
	t1 = now_s();
	c1 = cpu_s();
	atomic_store(&smp.stop, true);
	pthread_join(smp.tid, NULL);
	if (status)
		die("append", status);
	topic_totals(e, o->topic, &wal_bytes, NULL, NULL, NULL);
	if (o->index_end) {
		t2 = now_s();
		rc = engine_index_now(e);
		t3 = now_s();
		if (rc)
			die("engine_index_now", rc);
	}
	topic_totals(e, o->topic, NULL, &segments, &segment_bytes, NULL);
	rss_end = rss_kib();
	malloc_trim(0);
	rss_trimmed = rss_kib();
	struct engine_stats st;
	engine_stats_get(e, &st);
	printf("seconds=%.6f batches=%" PRIu64 " records=%" PRIu64 " value_bytes=%" PRIu64
	       " wal_bytes=%" PRIu64 " frame_bytes=%" PRIu64 " groups=%" PRIu64
	       " group_bytes=%" PRIu64 " wal_max_bytes=%" PRIu64 " disk_max_kib=%" PRIu64
	       " index_end_seconds=%.6f segments=%" PRIu64 " segment_bytes=%" PRIu64
	       " rss_start_kib=%ld rss_end_kib=%ld rss_trimmed_kib=%ld maxrss_kib=%ld"
	       " cpu_seconds=%.6f\n",
	       t1 - t0, batches, records, value_bytes, wal_bytes,
	       batches ? wal_bytes / batches : 0, st.groups, st.groups ? st.bytes / st.groups : 0,
	       smp.wal_max_bytes, smp.disk_max_bytes / 1024, t3 - t2, segments, segment_bytes,
	       rss_start, rss_end, rss_trimmed, maxrss_kib(), c1 - c0);
	for (int i = 0; i < threads; i++)
		engine_partition_unref(a[i].p);
	pthread_barrier_destroy(&start);
	free(a);
	rc = engine_close(e);
	if (rc)
		die("engine_close", rc);
	return 0;
}

/* ---- index and compact -------------------------------------------------------- */

/* Every topic's WAL bytes not yet indexed, summed. */
static uint64_t all_wal_bytes(struct engine *e)
{
	char **names = NULL;
	size_t n = 0;
	uint64_t sum = 0, w;

	if (engine_topic_list(e, &names, &n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		topic_totals(e, names[i], &w, NULL, NULL, NULL);
		sum += w;
	}
	engine_strv_free(names, n);
	return sum;
}

static int cmd_index(const struct bench_opts *o)
{
	struct engine *e;
	uint64_t wal_bytes;
	double t0, t1, t2, c1, c2;
	int rc;

	t0 = now_s();
	rc = engine_open(o->dir, &o->eo, &e);
	t1 = now_s();
	c1 = cpu_s();
	if (rc)
		die("engine_open", rc);
	wal_bytes = all_wal_bytes(e);
	rc = engine_index_now(e);
	t2 = now_s();
	c2 = cpu_s();
	if (rc)
		die("engine_index_now", rc);
	printf("open_seconds=%.6f index_seconds=%.6f index_cpu_seconds=%.6f wal_bytes=%" PRIu64
	       " wal_left=%" PRIu64 "\n",
	       t1 - t0, t2 - t1, c2 - c1, wal_bytes, all_wal_bytes(e));
	rc = engine_close(e);
	if (rc)
		die("engine_close", rc);
	return 0;
}

static int cmd_compact(const struct bench_opts *o)
{
	struct engine_compact_result sum = { 0 };
	struct engine *e;
	int32_t nparts = 0;
	double secs = 0;
	int rc;

	rc = engine_open(o->dir, &o->eo, &e);
	if (rc)
		die("engine_open", rc);
	rc = engine_index_now(e);
	if (rc)
		die("engine_index_now", rc);
	rc = engine_topic_partitions(e, o->topic, &nparts);
	if (rc)
		die("engine_topic_partitions", rc);
	for (int32_t i = 0; i < nparts; i++) {
		struct engine_compact_result r;
		struct partition *p;
		double t0, t1;
		rc = engine_partition_get(e, o->topic, i, &p);
		if (rc)
			die("engine_partition_get", rc);
		t0 = now_s();
		rc = engine_partition_compact(p, &r);
		t1 = now_s();
		engine_partition_unref(p);
		if (rc)
			die("engine_partition_compact", rc);
		secs += t1 - t0;
		sum.segments_in += r.segments_in;
		sum.segments_out += r.segments_out;
		sum.records_in += r.records_in;
		sum.records_out += r.records_out;
		sum.bytes_in += r.bytes_in;
		sum.bytes_out += r.bytes_out;
		sum.map_keys_read += r.map_keys_read;
		sum.map_records_decoded += r.map_records_decoded;
	}
	printf("seconds=%.6f segments_in=%" PRIu64 " segments_out=%" PRIu64 " records_in=%" PRIu64
	       " records_out=%" PRIu64 " bytes_in=%" PRIu64 " bytes_out=%" PRIu64
	       " map_keys_read=%" PRIu64 " map_records_decoded=%" PRIu64 "\n",
	       secs, sum.segments_in, sum.segments_out, sum.records_in, sum.records_out,
	       sum.bytes_in, sum.bytes_out, sum.map_keys_read, sum.map_records_decoded);
	rc = engine_close(e);
	if (rc)
		die("engine_close", rc);
	return 0;
}
static int cmd_recover(const struct bench_opts *o)
{
	struct engine *empty, *e;
	char path[4096];
	char **names = NULL;
	size_t ntopics = 0;
	uint64_t batches = 0, wal_bytes = 0, segments = 0, segment_bytes = 0;
	long rss0, rss1, rss2;
	double t0, t1, c0, c1;
	int rc;

	snprintf(path, sizeof(path), "%s.empty", o->dir);
	rc = engine_open(path, &o->eo, &empty);
	if (rc)
		die("engine_open (empty)", rc);
	rss0 = rss_kib();
	c0 = cpu_s();
	t0 = now_s();
	rc = engine_open(o->dir, &o->eo, &e);
	t1 = now_s();
	c1 = cpu_s();
	if (rc)
		die("engine_open", rc);
	rss1 = rss_kib();
	/* What of rss1 - rss0 is freed heap memory kept resident (the hot
	 * index arrays grow by realloc, the smaller copies are freed). */
	malloc_trim(0);
	rss2 = rss_kib();
	rc = engine_topic_list(e, &names, &ntopics);
	if (rc)
		die("engine_topic_list", rc);
	for (size_t t = 0; t < ntopics; t++) {
		int32_t nparts = 0;
		if (engine_topic_partitions(e, names[t], &nparts))
			continue;
		for (int32_t i = 0; i < nparts; i++) {
			struct partition *p;
			struct partition_info pi;
			if (engine_partition_get(e, names[t], i, &p))
				continue;
			engine_partition_info(p, &pi);
			batches += pi.batches;
			wal_bytes += pi.wal_bytes;
			segments += pi.segments;
			segment_bytes += pi.segment_bytes;
			engine_partition_unref(p);
		}
	}
	engine_strv_free(names, ntopics);
	printf("seconds=%.6f cpu_seconds=%.6f batches=%" PRIu64 " wal_bytes=%" PRIu64
	       " segments=%" PRIu64 " segment_bytes=%" PRIu64
	       " rss_empty_kib=%ld rss_open_kib=%ld rss_trimmed_kib=%ld index_bytes_per_batch=%.1f"
	       " trimmed_bytes_per_batch=%.1f maxrss_kib=%ld\n",
	       t1 - t0, c1 - c0, batches, wal_bytes, segments, segment_bytes, rss0, rss1, rss2,
	       batches ? (double)(rss1 - rss0) * 1024.0 / (double)batches : 0.0,
	       batches ? (double)(rss2 - rss0) * 1024.0 / (double)batches : 0.0, maxrss_kib());
	if (o->index_now) {
		rc = engine_index_now(e);
		if (rc)
			die("engine_index_now", rc);
	}
	rc = engine_close(e);
	if (rc)
		die("engine_close", rc);
	rc = engine_close(empty);
	if (rc)
		die("engine_close (empty)", rc);
	return 0;
}

static void usage(void)
{
	fputs("usage: chronik-bench-engine append DIR [--threads N] [--partitions N]\n"
	      "           [--bytes N] [--value-size N] [--records N] [--fsync every|never]\n"
	      "           [--sync-end] [--segment BYTES] [--set KEY=VALUE]... [--no-index]\n"
	      "           [--topic NAME] [--config JSON] [--encode] [--keys K]\n"
	      "           [--input FILE [--chunk BYTES]] [--index-end]\n"
	      "       chronik-bench-engine recover DIR [--no-index] [--index-now]\n"
	      "       chronik-bench-engine index DIR [--set KEY=VALUE]...\n"
	      "       chronik-bench-engine compact DIR [--topic NAME]\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.topic = "bench",
		.chunk = 1u << 20,
		.threads = 1,
		.partitions = 1,
		.bytes = 64u << 20,
		.value_size = 99,
		.records = 1000,
	};

	if (argc < 3)
		usage();
	o.dir = argv[2];
	engine_options_init(&o.eo);
	log_set_sink(quiet_sink, NULL);
	for (int i = 3; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(k, "--sync-end")) {
			o.sync_end = true;
			continue;
		}
		if (!strcmp(k, "--no-index")) {
			o.eo.no_index = true;
			continue;
		}
		if (!strcmp(k, "--index-now")) {
			o.index_now = true;
			continue;
		}
		if (!strcmp(k, "--index-end")) {
			o.index_end = true;
			continue;
		}
		if (!strcmp(k, "--encode")) {
			o.encode = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(k, "--threads"))
			o.threads = (int)num_arg(v);
		else if (!strcmp(k, "--partitions"))
			o.partitions = (int)num_arg(v);
		else if (!strcmp(k, "--bytes"))
			o.bytes = num_arg(v);
		else if (!strcmp(k, "--value-size"))
			o.value_size = (size_t)num_arg(v);
		else if (!strcmp(k, "--records"))
			o.records = (int)num_arg(v);
		else if (!strcmp(k, "--keys"))
			o.keys = num_arg(v);
		else if (!strcmp(k, "--chunk"))
			o.chunk = num_arg(v);
		else if (!strcmp(k, "--topic"))
			o.topic = v;
		else if (!strcmp(k, "--config"))
			o.config = v;
		else if (!strcmp(k, "--input"))
			o.input = v;
		else if (!strcmp(k, "--fsync")) {
			if (engine_options_parse_fsync(&o.eo, v))
				usage();
		} else if (!strcmp(k, "--segment")) {
			if (engine_options_set(&o.eo, "wal.segment.bytes", v))
				usage();
		} else if (!strcmp(k, "--set")) {
			char key[128];
			const char *eq = strchr(v, '=');
			if (!eq || (size_t)(eq - v) >= sizeof(key))
				usage();
			memcpy(key, v, (size_t)(eq - v));
			key[eq - v] = '\0';
			if (engine_options_set(&o.eo, key, eq + 1))
				usage();
		} else
			usage();
	}
	if (!strcmp(argv[1], "append"))
		return cmd_append(&o);
	if (!strcmp(argv[1], "recover"))
		return cmd_recover(&o);
	if (!strcmp(argv[1], "index"))
		return cmd_index(&o);
	if (!strcmp(argv[1], "compact"))
		return cmd_compact(&o);
	usage();
	return 2;
}
