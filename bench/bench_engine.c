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
 *       --topic NAME    the topic (default "bench"); an existing one is
 *                       appended to
 *       --config JSON   the topic's config when this run creates it
 *       --set KEY=VALUE an engine setting (engine_options_set), repeatable
 *       --keys K        record i of a thread gets the key "key-<i mod K>"
 *                       (each append then encodes its batch)
 *       --input FILE    append FILE's lines instead (one thread), in
 *                       batches of --chunk BYTES (default 1 MiB) cut
 *                       after a newline (engine_append_lines); FILE must
 *                       end with '\n'
 *       --index-end     after the timing, seal the active file and wait
 *                       for the indexer (engine_index_now), then report the
 *                       segments
 *       While appending, a sampler thread looks every 20 ms at the WAL not
 *       yet indexed (the partitions' wal_bytes summed: wal_max_bytes) and
 *       at the disk DIR holds (st_blocks of every file under it:
 *       disk_max_kib).
 *   chronik-bench-engine index DIR
 *       Opens DIR with its indexer and times engine_index_now (seal the
 *       active file, index every sealed one), from the end of engine_open
 *       to its return: index_seconds for wal_bytes of WAL (what the open
 *       found not yet indexed); open_seconds is the open before it.
 *   chronik-bench-engine compact DIR
 *       Opens DIR, indexes what the WAL holds (engine_index_now), then
 *       times engine_partition_compact of every partition of --topic, and
 *       reports what it read and kept (segment bytes and records).
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
#include <ftw.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include "batch.h"
#include "engine.h"
#include "frame.h"
#include "log.h"

#define MAX_PARTITIONS 64

struct bench_opts {
	const char *dir;
	const char *topic;
	const char *config;
	const char *input;
	uint64_t chunk;
	uint64_t keys;
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

/* Large values, or keyed records: every append encodes its batch
 * (engine_append_records). With --keys the thread's n-th record gets the
 * key "key-<n mod K>". */
static int append_records(struct appender *a)
{
	const struct bench_opts *o = a->o;
	struct record_in *recs;
	uint8_t *value;
	char(*keys)[24] = NULL;
	uint64_t n = 0;
	int rc = 0;

	value = malloc(o->value_size);
	recs = calloc((size_t)o->records, sizeof(*recs));
	if (o->keys)
		keys = calloc((size_t)o->records, sizeof(*keys));
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
		for (int i = 0; keys && i < o->records; i++, n++) {
			recs[i].key = keys[i];
			recs[i].key_len =
				snprintf(keys[i], sizeof(keys[i]), "key-%" PRIu64, n % o->keys);
		}
		rc = engine_append_records(a->p, recs, (size_t)o->records, NULL);
		if (rc)
			break;
		a->batches++;
	}
	free(keys);
	free(recs);
	free(value);
	return rc;
}

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	if (a->o->value_size < 65536 && !a->o->keys)
		a->status = append_prebuilt(a);
	else
		a->status = append_records(a);
	return NULL;
}

/* --input: the file's lines in batches of about o->chunk bytes, each cut
 * after a newline. The file is read whole before the timing. */
struct input_file {
	char *buf;
	size_t len;
};

static void input_load(const struct bench_opts *o, struct input_file *in)
{
	FILE *f = fopen(o->input, "rb");
	struct stat st;
	if (!f || fstat(fileno(f), &st) < 0) {
		fprintf(stderr, "chronik-bench-engine: %s: %s\n", o->input, strerror(errno));
		exit(1);
	}
	in->len = (size_t)st.st_size;
	in->buf = malloc(in->len ? in->len : 1);
	if (!in->buf || fread(in->buf, 1, in->len, f) != in->len)
		die("reading --input", -EIO);
	fclose(f);
	if (in->len == 0 || in->buf[in->len - 1] != '\n')
		die("--input must be non-empty and end with a newline", -EINVAL);
}

static int append_input(struct partition *p, const struct input_file *in, uint64_t chunk,
			uint64_t *batches, uint64_t *records)
{
	size_t pos = 0;
	while (pos < in->len) {
		size_t end = pos + chunk < in->len ? pos + chunk : in->len;
		/* Cut after the last newline in [pos, end), or after the
		 * first one past it for a line longer than chunk. */
		const char *nl = memrchr(in->buf + pos, '\n', end - pos);
		if (!nl)
			nl = memchr(in->buf + end, '\n', in->len - end);
		size_t cut = (size_t)(nl - in->buf) + 1;
		int rc = engine_append_lines(p, in->buf + pos, cut - pos, NULL);
		if (rc)
			return rc;
		for (size_t i = pos; i < cut; i++)
			*records += in->buf[i] == '\n';
		(*batches)++;
		pos = cut;
	}
	return 0;
}

/* The sampler: the largest WAL not yet indexed and the largest disk usage
 * of the data directory seen while appending. */
struct sampler {
	pthread_t tid;
	struct partition **parts;
	int nparts;
	const char *dir;
	atomic_bool stop;
	uint64_t wal_max;
	uint64_t disk_max;
};

static _Thread_local uint64_t du_sum;

static int du_add(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		du_sum += (uint64_t)st->st_blocks * 512;
	return 0;
}

/* Bytes of disk under dir, as du(1) counts them (files only; a file
 * deleted while walking is skipped). */
static uint64_t disk_bytes(const char *dir)
{
	du_sum = 0;
	nftw(dir, du_add, 16, FTW_PHYS);
	return du_sum;
}

static void sampler_measure(struct sampler *s)
{
	uint64_t wal = 0, disk;
	for (int i = 0; i < s->nparts; i++) {
		struct partition_info pi;
		engine_partition_info(s->parts[i], &pi);
		wal += pi.wal_bytes;
	}
	disk = disk_bytes(s->dir);
	if (wal > s->wal_max)
		s->wal_max = wal;
	if (disk > s->disk_max)
		s->disk_max = disk;
}

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	const struct timespec tick = { 0, 20 * 1000 * 1000 };
	while (!atomic_load(&s->stop)) {
		sampler_measure(s);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

static void partitions_sum(struct partition **parts, int n, struct partition_info *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < n; i++) {
		struct partition_info pi;
		engine_partition_info(parts[i], &pi);
		sum->wal_bytes += pi.wal_bytes;
		sum->batches += pi.batches;
		sum->segments += pi.segments;
		sum->segment_bytes += pi.segment_bytes;
		sum->raw_size += pi.raw_size - pi.raw_start;
	}
}

static void topic_open(struct engine *e, const struct bench_opts *o, struct partition **parts,
		       int *nparts)
{
	int32_t n = 0;
	int rc = engine_topic_create(e, o->topic, o->partitions, o->config);
	if (rc && rc != CHRONIK_ETOPICEXISTS)
		die("engine_topic_create", rc);
	rc = engine_topic_partitions(e, o->topic, &n);
	if (rc)
		die("engine_topic_partitions", rc);
	if (n > MAX_PARTITIONS)
		n = MAX_PARTITIONS;
	for (int32_t i = 0; i < n; i++) {
		rc = engine_partition_get(e, o->topic, i, &parts[i]);
		if (rc)
			die("engine_partition_get", rc);
	}
	*nparts = n;
}

static int cmd_append(const struct bench_opts *o)
{
	struct appender *a = NULL;
	struct engine *e;
	struct partition *parts[MAX_PARTITIONS];
	struct sampler smp = { .dir = o->dir };
	struct input_file in = { 0 };
	struct partition_info sum;
	pthread_barrier_t start;
	atomic_uint_fast64_t claimed = 0;
	uint64_t batch_bytes = (uint64_t)o->value_size * (uint64_t)o->records;
	uint64_t total = (o->bytes + batch_bytes - 1) / batch_bytes, batches = 0, records = 0;
	uint64_t value_bytes;
	int nparts = 0, rc, status = 0;
	double t0, t1;

	if (o->partitions > MAX_PARTITIONS)
		die("--partitions", -EINVAL);
	if (o->input)
		input_load(o, &in);
	rc = engine_open(o->dir, &o->eo, &e);
	if (rc)
		die("engine_open", rc);
	topic_open(e, o, parts, &nparts);
	smp.parts = parts;
	smp.nparts = nparts;
	atomic_init(&smp.stop, false);
	if (!o->input) {
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
			a[i].p = parts[i % nparts];
			rc = pthread_create(&a[i].tid, NULL, appender_main, &a[i]);
			if (rc)
				die("pthread_create", -rc);
		}
	}
	rc = pthread_create(&smp.tid, NULL, sampler_main, &smp);
	if (rc)
		die("pthread_create", -rc);
	t0 = now_s();
	if (o->input) {
		status = append_input(parts[0], &in, o->chunk, &batches, &records);
		value_bytes = in.len - records;
	} else {
		pthread_barrier_wait(&start);
		t0 = now_s();
		for (int i = 0; i < o->threads; i++) {
			pthread_join(a[i].tid, NULL);
			if (a[i].status && !status)
				status = a[i].status;
			batches += a[i].batches;
		}
		records = batches * (uint64_t)o->records;
		value_bytes = batches * batch_bytes;
	}
	if (status == 0 && o->sync_end)
		status = engine_sync(e);
	t1 = now_s();
	atomic_store(&smp.stop, true);
	pthread_join(smp.tid, NULL);
	sampler_measure(&smp);
	if (status)
		die("append", status);
	partitions_sum(parts, nparts, &sum);
	struct engine_stats st;
	engine_stats_get(e, &st);
	printf("seconds=%.6f batches=%" PRIu64 " records=%" PRIu64 " value_bytes=%" PRIu64
	       " wal_bytes=%" PRIu64 " frame_bytes=%" PRIu64 " groups=%" PRIu64
	       " group_bytes=%" PRIu64 " maxrss_kib=%ld wal_max_bytes=%" PRIu64
	       " disk_max_kib=%" PRIu64,
	       t1 - t0, batches, records, value_bytes, sum.wal_bytes,
	       batches ? sum.wal_bytes / batches : 0, st.groups,
	       st.groups ? st.bytes / st.groups : 0, maxrss_kib(), smp.wal_max,
	       smp.disk_max / 1024);
	if (o->index_end) {
		rc = engine_index_now(e);
		if (rc)
			die("engine_index_now", rc);
		partitions_sum(parts, nparts, &sum);
	}
	printf(" segments=%" PRIu64 " segment_bytes=%" PRIu64 " raw_bytes=%" PRIu64
	       " disk_kib=%" PRIu64 "\n",
	       sum.segments, sum.segment_bytes, sum.raw_size, disk_bytes(o->dir) / 1024);
	for (int i = 0; i < nparts; i++)
		engine_partition_unref(parts[i]);
	if (a)
		pthread_barrier_destroy(&start);
	free(a);
	free(in.buf);
	rc = engine_close(e);
	if (rc)
		die("engine_close", rc);
	return 0;
}

/* All partitions of every topic, summed. */
static void engine_sum(struct engine *e, struct partition_info *sum)
{
	char **names = NULL;
	size_t ntopics = 0;
	int rc = engine_topic_list(e, &names, &ntopics);
	if (rc)
		die("engine_topic_list", rc);
	memset(sum, 0, sizeof(*sum));
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
			sum->batches += pi.batches;
			sum->wal_bytes += pi.wal_bytes;
			sum->segments += pi.segments;
			sum->segment_bytes += pi.segment_bytes;
			engine_partition_unref(p);
		}
	}
	engine_strv_free(names, ntopics);
}

static int cmd_index(const struct bench_opts *o)
{
	struct engine *e;
	struct partition_info before, after;
	double t0, t1, t2;
	int rc;

	t0 = now_s();
	rc = engine_open(o->dir, &o->eo, &e);
	t1 = now_s();
	if (rc)
		die("engine_open", rc);
	engine_sum(e, &before);
	rc = engine_index_now(e);
	t2 = now_s();
	if (rc)
		die("engine_index_now", rc);
	engine_sum(e, &after);
	printf("open_seconds=%.6f index_seconds=%.6f wal_bytes=%" PRIu64 " batches=%" PRIu64
	       " segments=%" PRIu64 " segment_bytes=%" PRIu64 " wal_bytes_after=%" PRIu64 "\n",
	       t1 - t0, t2 - t1, before.wal_bytes, before.batches, after.segments,
	       after.segment_bytes, after.wal_bytes);
	rc = engine_close(e);
	if (rc)
		die("engine_close", rc);
	return 0;
}

static int cmd_compact(const struct bench_opts *o)
{
	struct engine *e;
	struct partition *parts[MAX_PARTITIONS];
	struct engine_compact_result sum = { 0 };
	int nparts = 0, rc;
	double t0, t1;

	rc = engine_open(o->dir, &o->eo, &e);
	if (rc)
		die("engine_open", rc);
	rc = engine_index_now(e);
	if (rc)
		die("engine_index_now", rc);
	topic_open(e, o, parts, &nparts);
	t0 = now_s();
	for (int i = 0; i < nparts; i++) {
		struct engine_compact_result r;
		rc = engine_partition_compact(parts[i], &r);
		if (rc)
			die("engine_partition_compact", rc);
		sum.segments_in += r.segments_in;
		sum.segments_out += r.segments_out;
		sum.records_in += r.records_in;
		sum.records_out += r.records_out;
		sum.bytes_in += r.bytes_in;
		sum.bytes_out += r.bytes_out;
	}
	t1 = now_s();
	printf("seconds=%.6f segments_in=%" PRIu64 " segments_out=%" PRIu64 " records_in=%" PRIu64
	       " records_out=%" PRIu64 " bytes_in=%" PRIu64 " bytes_out=%" PRIu64 "\n",
	       t1 - t0, sum.segments_in, sum.segments_out, sum.records_in, sum.records_out,
	       sum.bytes_in, sum.bytes_out);
	for (int i = 0; i < nparts; i++)
		engine_partition_unref(parts[i]);
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
	      "           [--sync-end] [--segment BYTES] [--no-index] [--topic NAME]\n"
	      "           [--config JSON] [--set KEY=VALUE]... [--keys K]\n"
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
		.threads = 1,
		.partitions = 1,
		.bytes = 64u << 20,
		.value_size = 99,
		.records = 1000,
		.topic = "bench",
		.chunk = 1u << 20,
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
		if (!strcmp(k, "--index-end")) {
			o.index_end = true;
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
		} else if (!strcmp(k, "--set")) {
			char key[128];
			const char *eq = strchr(v, '=');
			if (!eq || (size_t)(eq - v) >= sizeof(key))
				usage();
			memcpy(key, v, (size_t)(eq - v));
			key[eq - v] = '\0';
			if (engine_options_set(&o.eo, key, eq + 1))
				usage();
		} else if (!strcmp(k, "--topic"))
			o.topic = v;
		else if (!strcmp(k, "--config"))
			o.config = v;
		else if (!strcmp(k, "--input"))
			o.input = v;
		else if (!strcmp(k, "--chunk"))
			o.chunk = num_arg(v);
		else if (!strcmp(k, "--keys"))
			o.keys = num_arg(v);
		else
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
