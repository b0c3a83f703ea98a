/* bench_engine.c - the engine's side of bench/run: append throughput,
 * recovery time and memory, through the public API of wal/engine.h.
 *
 *   chronik-bench-engine append DIR [options]
 *       Opens (creating) DIR, creates topic "bench" with --partitions P,
 *       starts --threads T appenders (thread i appends to partition i % P)
 *       and appends until --bytes of record values have been appended.
 *       --value-size V  bytes per record value (the raw line minus its '\n')
 *       --records R     records per batch
 *       With V < 64 KiB each thread builds its batch once (R lines of V
 *       bytes and a '\n', batch_encode_lines) and appends it again and again
 *       with engine_append_batch (the engine patches the base offset in
 *       place). Otherwise each append is engine_append_records of R records
 *       of V bytes, so the encoding is part of the measure.
 *       --fsync every|never, --sync-end (engine_sync() inside the timing),
 *       --segment BYTES (wal.segment.bytes), --no-index (no indexer thread:
 *       the WAL keeps everything, as before the warm tier).
 *   chronik-bench-engine recover DIR
 *       Opens an empty engine in DIR.empty (the fixed cost), then times
 *       engine_open(DIR) and reports the resident memory it added, before
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
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include "batch.h"
#include "engine.h"
#include "frame.h"
#include "log.h"

#define TOPIC "bench"

struct bench_opts {
	const char *dir;
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
	int status;
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
	if (level >= LOG_LVL_WARN)
		fprintf(stderr, "chronik-bench-engine: %s: %s\n", module, msg);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "chronik-bench-engine: %s: %s\n", what, chronik_strerror(rc));
	exit(1);
}

/* Small batches: built once, appended many times. */
static int append_prebuilt(struct appender *a)
{
	const struct bench_opts *o = a->o;
	size_t line = o->value_size + 1, len = line * (size_t)o->records, blen;
	uint8_t *batch = NULL;
	int32_t count;
	char *lines;
	int rc;

	lines = malloc(len);
	if (!lines)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		lines[i] = (i + 1) % line == 0 ? '\n' : (char)('a' + (i % line) % 26);
	rc = batch_encode_lines(lines, len, 0, &batch, &blen, &count);
	free(lines);
	if (rc)
		return rc;
	pthread_barrier_wait(a->start);
	while (atomic_fetch_add(a->claimed, 1) < a->total) {
		rc = engine_append_batch(a->p, batch, blen, false, NULL);
		if (rc)
			break;
		a->batches++;
	}
	free(batch);
	return rc;
}

/* Large values: every append encodes its batch (engine_append_records). */
static int append_records(struct appender *a)
{
	const struct bench_opts *o = a->o;
	struct record_in *recs;
	uint8_t *value;
	int rc = 0;

	value = malloc(o->value_size);
	recs = calloc((size_t)o->records, sizeof(*recs));
	if (!value || !recs) {
		free(value);
		free(recs);
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
		rc = engine_append_records(a->p, recs, (size_t)o->records, NULL);
		if (rc)
			break;
		a->batches++;
	}
	free(recs);
	free(value);
	return rc;
}

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	if (a->o->value_size < 65536)
		a->status = append_prebuilt(a);
	else
		a->status = append_records(a);
	return NULL;
}

static int cmd_append(const struct bench_opts *o)
{
	struct appender *a;
	struct engine *e;
	pthread_barrier_t start;
	atomic_uint_fast64_t claimed = 0;
	uint64_t batch_bytes = (uint64_t)o->value_size * (uint64_t)o->records;
	uint64_t total = (o->bytes + batch_bytes - 1) / batch_bytes, batches = 0, wal_bytes = 0;
	double t0, t1;
	int rc, status = 0;

	rc = engine_open(o->dir, &o->eo, &e);
	if (rc)
		die("engine_open", rc);
	rc = engine_topic_create(e, TOPIC, o->partitions, NULL);
	if (rc)
		die("engine_topic_create", rc);
	a = calloc((size_t)o->threads, sizeof(*a));
	if (!a)
		die("calloc", -ENOMEM);
	pthread_barrier_init(&start, NULL, (unsigned)o->threads + 1);
	for (int i = 0; i < o->threads; i++) {
		a[i].e = e;
		a[i].o = o;
		a[i].claimed = &claimed;
		a[i].total = total;
		a[i].start = &start;
		rc = engine_partition_get(e, TOPIC, i % o->partitions, &a[i].p);
		if (rc)
			die("engine_partition_get", rc);
		rc = pthread_create(&a[i].tid, NULL, appender_main, &a[i]);
		if (rc)
			die("pthread_create", -rc);
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	for (int i = 0; i < o->threads; i++) {
		pthread_join(a[i].tid, NULL);
		if (a[i].status && !status)
			status = a[i].status;
		batches += a[i].batches;
	}
	if (status == 0 && o->sync_end)
		status = engine_sync(e);
	t1 = now_s();
	if (status)
		die("append", status);
	for (int i = 0; i < o->partitions; i++) {
		struct partition *p;
		struct partition_info pi;
		if (engine_partition_get(e, TOPIC, i, &p))
			continue;
		engine_partition_info(p, &pi);
		wal_bytes += pi.wal_bytes;
		engine_partition_unref(p);
	}
	struct engine_stats st;
	engine_stats_get(e, &st);
	printf("seconds=%.6f batches=%" PRIu64 " records=%" PRIu64 " value_bytes=%" PRIu64
	       " wal_bytes=%" PRIu64 " frame_bytes=%" PRIu64 " groups=%" PRIu64
	       " group_bytes=%" PRIu64 " maxrss_kib=%ld\n",
	       t1 - t0, batches, batches * (uint64_t)o->records, batches * batch_bytes, wal_bytes,
	       batches ? wal_bytes / batches : 0, st.groups, st.groups ? st.bytes / st.groups : 0,
	       maxrss_kib());
	for (int i = 0; i < o->threads; i++)
		engine_partition_unref(a[i].p);
	pthread_barrier_destroy(&start);
	free(a);
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
	double t0, t1;
	int rc;

	snprintf(path, sizeof(path), "%s.empty", o->dir);
	rc = engine_open(path, &o->eo, &empty);
	if (rc)
		die("engine_open (empty)", rc);
	rss0 = rss_kib();
	t0 = now_s();
	rc = engine_open(o->dir, &o->eo, &e);
	t1 = now_s();
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
	printf("seconds=%.6f batches=%" PRIu64 " wal_bytes=%" PRIu64 " segments=%" PRIu64
	       " segment_bytes=%" PRIu64
	       " rss_empty_kib=%ld rss_open_kib=%ld rss_trimmed_kib=%ld index_bytes_per_batch=%.1f"
	       " trimmed_bytes_per_batch=%.1f maxrss_kib=%ld\n",
	       t1 - t0, batches, wal_bytes, segments, segment_bytes, rss0, rss1, rss2,
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
	      "           [--sync-end] [--segment BYTES] [--no-index]\n"
	      "       chronik-bench-engine recover DIR [--no-index] [--index-now]\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
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
		else if (!strcmp(k, "--fsync")) {
			if (engine_options_parse_fsync(&o.eo, v))
				usage();
		} else if (!strcmp(k, "--segment")) {
			if (engine_options_set(&o.eo, "wal.segment.bytes", v))
				usage();
		} else
			usage();
	}
	if (!strcmp(argv[1], "append"))
		return cmd_append(&o);
	if (!strcmp(argv[1], "recover"))
		return cmd_recover(&o);
	usage();
	return 2;
}
