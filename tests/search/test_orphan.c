/* test_orphan.c - a segment removed while its index is being built leaves
 * no index behind (index.c, "A SEGMENT GONE DURING ITS BUILD").
 *
 * The race is made deterministic with the build's test point
 * (fts_build_before_rename, search-private.h): it runs once the index is
 * complete under its .tmp name and before the rename. In it:
 *   1. through the builder (chronikd's path): the first build to get
 *      there waits, the test removes every segment meanwhile (DeleteRecords
 *      to the high watermark, a segment removed at its last unref as
 *      retention and compaction remove them) and checks the held one is
 *      gone from disk, then lets the build go on; once the builder is
 *      idle, no .fts (nor .fts.tmp) is left without its segment. The
 *      builder's sweep would remove such an orphan too, but it runs only
 *      at start and after 30 s without work, which the test never leaves,
 *      and under steady ingest never comes;
 *   2. directly: search_index_build of a copy of a segment whose file the
 *      point unlinks fails with -ENOENT and leaves neither name; the same
 *      build without the point succeeds (the control).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "search-private.h"
#include "search_test.h"

/* The builder's held build: stage 0 none yet, 1 one waits at the point
 * (held names its segment), 2 let go. Guarded by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int stage;
static char held[4400];

static void hold_first(const char *seg_path)
{
	pthread_mutex_lock(&lock);
	if (stage == 0) {
		snprintf(held, sizeof(held), "%s", seg_path);
		stage = 1;
		pthread_cond_broadcast(&cond);
		while (stage == 1)
			pthread_cond_wait(&cond, &lock);
	}
	pthread_mutex_unlock(&lock);
}

static void unlink_segment(const char *seg_path)
{
	if (unlink(seg_path) != 0)
		bail("unlink %s", seg_path);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void append_lines(struct partition *p, int n, int salt)
{
	char *buf = malloc((size_t)n * 64);
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += (size_t)sprintf(buf + len, "line %d word%d salt%d\n", i, i % 7, salt);
	int rc = engine_append_lines(p, buf, len, NULL);
	if (rc)
		bail("append: %s", chronik_strerror(rc));
	free(buf);
}

/* Files of dir ending in SEARCH_INDEX_SUFFIX (or its .tmp) whose segment
 * file is not there; *nidx gets how many indexes there are. */
static int orphans(const char *dir, int *nidx)
{
	static const char sfx[] = SEARCH_INDEX_SUFFIX, tsfx[] = SEARCH_INDEX_SUFFIX ".tmp";
	char path[4400];
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	*nidx = 0;
	if (!d)
		bail("opendir %s", dir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len > sizeof(tsfx) - 1 &&
		    strcmp(de->d_name + len - (sizeof(tsfx) - 1), tsfx) == 0) {
			diag("leftover: %s", de->d_name);
			n++;
			continue;
		}
		if (len <= sizeof(sfx) - 1 ||
		    strcmp(de->d_name + len - (sizeof(sfx) - 1), sfx) != 0)
			continue;
		(*nidx)++;
		snprintf(path, sizeof(path), "%s/%.*s", dir, (int)(len - (sizeof(sfx) - 1)),
			 de->d_name);
		if (!exists(path)) {
			diag("orphan: %s", de->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

static int copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;
	int rc = in && out ? 0 : -1;

	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = -1;
	if (in && ferror(in))
		rc = -1;
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		rc = -1;
	return rc;
}

int main(void)
{
	char *dir = tmpdir_new("search-orphan");
	char sdir[4200], path[4400], copy[4400], idx[4500];
	struct engine_options o;
	struct search_builder *b;
	int nidx;

	/* 1. Through the builder. */
	fts_build_before_rename = hold_first;
	engine_options_init(&o);
	o.wal_segment_bytes = 65536;
	o.wal_seal_ms = 0;
	o.fsync = FSYNC_NEVER;
	if (search_builder_new(&b))
		bail("search_builder_new");
	search_builder_options(b, &o);
	struct engine *e = open_or_bail(dir, &o);
	if (search_builder_start(b, e))
		bail("search_builder_start");
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "topic t");
	struct partition *p = part_or_bail(e, "t", 0);
	engine_partition_segment_dir(p, sdir, sizeof(sdir));
	for (int i = 0; i < 8; i++)
		append_lines(p, 1000, i);
	ok(engine_index_now(e) == 0, "indexed into segments");

	/* A guard against a hang only (the build reaches the point unless
	 * the builder is broken); nothing is timed. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 240;
	pthread_mutex_lock(&lock);
	while (stage == 0)
		if (pthread_cond_timedwait(&cond, &lock, &until) == ETIMEDOUT)
			bail("no build reached the point before its rename");
	pthread_mutex_unlock(&lock);
	diag("held before its rename: %s", held);

	int64_t log_start = -1;
	ok(engine_partition_delete_records(p, -1, &log_start) == 0 && log_start > 0,
	   "every segment removed meanwhile (log start %" PRId64 ")", log_start);
	ok(!exists(held), "the held build's segment is gone from disk");
	snprintf(idx, sizeof(idx), "%s" SEARCH_INDEX_SUFFIX ".tmp", held);
	ok(exists(idx), "its index is complete under the .tmp name");

	pthread_mutex_lock(&lock);
	stage = 2;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	search_builder_wait(b);
	int norphans = orphans(sdir, &nidx);
	ok(norphans == 0, "builder idle: no index without its segment (%d indexes)", nidx);
	snprintf(idx, sizeof(idx), "%s" SEARCH_INDEX_SUFFIX, held);
	ok(!exists(idx), "the held build left no index");

	/* Ingest goes on: new segments get their indexes, still no orphan. */
	for (int i = 0; i < 4; i++)
		append_lines(p, 1000, 100 + i);
	ok(engine_index_now(e) == 0, "more segments");
	search_builder_wait(b);
	struct partition_info info;
	engine_partition_info(p, &info);
	norphans = orphans(sdir, &nidx);
	ok(norphans == 0 && info.segments >= 1 && nidx == (int)info.segments,
	   "each of the %" PRIu64 " new segments has its index, no orphan", info.segments);
	ok(search_count(e, "t", 0, "salt101") == 1000 && search_count(e, "t", 0, "salt3") == 0,
	   "queries see the new segments and not the removed ones");
	search_builder_stop(b);
	fts_build_before_rename = NULL;

	/* 2. Directly, on a copy of a segment. */
	struct engine_segment_info *segs;
	size_t n;
	if (engine_partition_segments(p, &segs, &n) || n == 0)
		bail("segments");
	snprintf(path, sizeof(path), "%s/%s", sdir, segs[0].file);
	free(segs);
	snprintf(copy, sizeof(copy), "%s/copy.seg", dir);
	snprintf(idx, sizeof(idx), "%s" SEARCH_INDEX_SUFFIX, copy);
	ok(copy_file(path, copy) == 0, "a segment copied");
	ok(search_index_build(copy, NULL) == 0 && exists(idx), "control: its index builds");
	ok(unlink(idx) == 0, "that index removed");
	fts_build_before_rename = unlink_segment;
	int rc = search_index_build(copy, NULL);
	fts_build_before_rename = NULL;
	ok(rc == -ENOENT, "its segment unlinked before the rename: -ENOENT (%d)", rc);
	ok(!exists(idx), "no index left");
	snprintf(idx, sizeof(idx), "%s" SEARCH_INDEX_SUFFIX ".tmp", copy);
	ok(!exists(idx), "no .tmp left");

	engine_partition_unref(p);
	ok(engine_close(e) == 0, "engine closed");
	search_builder_free(b);
	tmpdir_free(dir);
	return tap_exit();
}
