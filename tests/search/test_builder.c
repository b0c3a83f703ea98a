/* test_builder.c - the index builder (search/builder.c).
 *
 * An engine opened with the builder's hook writes segments; once the
 * builder is idle every segment has its index and verifies, and queries
 * find what a scan finds. Then a removed index and a damaged one come
 * back at the next sweep, an index whose segment is gone and a leftover
 * .fts.tmp are removed; after a restart (engine closed with an index
 * removed), the sweep on start builds it. Counts of a word's matches are
 * compared with the count the same query gives with no index at all
 * (every segment scanned), so a rebuilt index that lost rows fails.
 * An index whose meta says another format (2, as written before indexes
 * lost their positions) fails verify, is not used, and the next sweep
 * rebuilds it as format 4.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "search-private.h"
#include "search_test.h"

static void append_lines(struct partition *p, int n, int salt)
{
	char *buf = malloc((size_t)n * 64);
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += (size_t)sprintf(buf + len, "line %d word%d salt%d%s\n", i, i % 7, salt,
				       i % 97 == 0 ? " rarebird" : "");
	int rc = engine_append_lines(p, buf, len, NULL);
	if (rc)
		bail("append: %s", chronik_strerror(rc));
	free(buf);
}

static int64_t count(struct engine *e, const char *text)
{
	return search_count(e, "t", 0, text);
}

static void problem(void *arg, const char *what)
{
	diag("verify: %s", what);
	(*(int *)arg)++;
}

/* Problems of every segment's index (missing ones included). */
static int verify(struct engine *e, size_t *nsegs)
{
	struct partition *p = part_or_bail(e, "t", 0);
	struct engine_segment_info *segs;
	char dir[4200], path[4400];
	int n = 0;
	engine_partition_segment_dir(p, dir, sizeof(dir));
	if (engine_partition_segments(p, &segs, nsegs))
		bail("segments");
	for (size_t i = 0; i < *nsegs; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, segs[i].file);
		if (search_index_verify(path, problem, &n) < 0)
			n++;
	}
	free(segs);
	engine_partition_unref(p);
	return n;
}

/* The path of segment i's index (or, i < 0, of a file named after no
 * segment) into buf. */
static void index_path(struct engine *e, int i, const char *suffix, char *buf, size_t len)
{
	struct partition *p = part_or_bail(e, "t", 0);
	struct engine_segment_info *segs;
	size_t n;
	char dir[4200];
	engine_partition_segment_dir(p, dir, sizeof(dir));
	if (engine_partition_segments(p, &segs, &n) || (i >= 0 && (size_t)i >= n))
		bail("segments");
	if (i < 0)
		snprintf(buf, len, "%s/99999999999999999999.seg%s", dir, suffix);
	else
		snprintf(buf, len, "%s/%s%s", dir, segs[i].file, suffix);
	free(segs);
	engine_partition_unref(p);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Set (v >= 0) or read (v < 0) the index file's meta "format". */
static int64_t index_format(const char *path, int v)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t got = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, v >= 0 ? "UPDATE meta SET value = ?1 WHERE name = 'format'"
					  : "SELECT value FROM meta WHERE name = 'format'",
			       -1, &st, NULL) == SQLITE_OK) {
		if (v >= 0)
			sqlite3_bind_int(st, 1, v);
		int rc = sqlite3_step(st);
		got = v >= 0 ? (rc == SQLITE_DONE ? v : -1)
			     : (rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return got;
}

/* Run sql (an INSERT into the records table) on the index file at path,
 * with the tokenizer registered: true when it went in. */
static bool index_rows_add(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	bool fine = fts_open(path, SQLITE_OPEN_READWRITE, &db) == 0 &&
		    sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
	if (!fine && db)
		diag("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
	return fine;
}

static struct engine *open_with(const char *dir, struct search_builder **b)
{
	struct engine_options o;
	engine_options_init(&o);
	o.wal_segment_bytes = 65536;
	o.wal_seal_ms = 0;
	o.fsync = FSYNC_NEVER;
	if (search_builder_new(b))
		bail("search_builder_new");
	search_builder_options(*b, &o);
	struct engine *e = open_or_bail(dir, &o);
	if (search_builder_start(*b, e))
		bail("search_builder_start");
	return e;
}

int main(void)
{
	char *dir = tmpdir_new("search-builder");
	struct search_builder *b;
	struct engine *e = open_with(dir, &b);
	char path[4400], path2[4400], orphan[4400], tmp[4400];
	size_t nsegs;

	/* chronikd with search.index=false has no builder and stops it. */
	search_builder_stop(NULL);
	ok(1, "search_builder_stop(NULL) is a no-op");
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "topic t");
	struct partition *p = part_or_bail(e, "t", 0);
	for (int i = 0; i < 20; i++)
		append_lines(p, 1000, i);
	engine_partition_unref(p);
	ok(engine_index_now(e) == 0, "indexed");
	search_builder_wait(b);
	ok(verify(e, &nsegs) == 0 && nsegs >= 4, "builder idle: each of %zu segments has its index",
	   nsegs);
	int64_t want = count(e, "rarebird"), want2 = count(e, "word3 salt5");
	ok(want == 20 * 11 && want2 == 143, "found: rarebird %" PRId64 " (20 x 11), word3 salt5 %" PRId64
	   " (143)", want, want2);

	/* Removed, damaged, orphan, leftover tmp: the sweep repairs all. */
	index_path(e, 0, SEARCH_INDEX_SUFFIX, path, sizeof(path));
	index_path(e, 1, SEARCH_INDEX_SUFFIX, path2, sizeof(path2));
	index_path(e, -1, SEARCH_INDEX_SUFFIX, orphan, sizeof(orphan));
	index_path(e, 2, SEARCH_INDEX_SUFFIX ".tmp", tmp, sizeof(tmp));
	ok(unlink(path) == 0, "index of segment 0 removed");
	FILE *f = fopen(path2, "r+");
	ok(f && fwrite("garbage!", 1, 8, f) == 8 && fclose(f) == 0, "index of segment 1 damaged");
	f = fopen(orphan, "w");
	ok(f && fputs("x", f) >= 0 && fclose(f) == 0, "an index without a segment");
	f = fopen(tmp, "w");
	ok(f && fputs("x", f) >= 0 && fclose(f) == 0, "a leftover .fts.tmp");
	ok(verify(e, &nsegs) == 2, "verify sees the two");
	ok(count(e, "rarebird") == want && count(e, "word3 salt5") == want2,
	   "results unchanged while those segments are scanned");
	search_builder_sweep(b);
	search_builder_wait(b);
	ok(exists(path) && verify(e, &nsegs) == 0, "after a sweep: rebuilt, verify clean");
	ok(!exists(orphan), "the orphan index is removed");
	ok(!exists(tmp), "the leftover .tmp is removed");
	ok(count(e, "rarebird") == want && count(e, "word3 salt5") == want2,
	   "rebuilt indexes give the same results");

	/* Gone across a restart: the sweep on start brings it back. */
	search_builder_stop(b);
	ok(unlink(path) == 0, "index removed with the builder stopped");
	ok(engine_close(e) == 0, "engine closed");
	search_builder_free(b);
	e = open_with(dir, &b);
	search_builder_wait(b);
	ok(exists(path) && verify(e, &nsegs) == 0, "rebuilt by the sweep on start");
	ok(count(e, "rarebird") == want, "same results after the restart");

	/* An index of format 2: not used, rebuilt by the next sweep. */
	index_path(e, 2, SEARCH_INDEX_SUFFIX, path, sizeof(path));
	ok(index_format(path, -1) == 4 && index_format(path, 2) == 2,
	   "index of segment 2 marked format 2");
	ok(verify(e, &nsegs) == 1, "verify sees it");
	ok(count(e, "rarebird") == want && count(e, "word3 salt5") == want2,
	   "results unchanged while that segment is scanned");
	search_builder_sweep(b);
	search_builder_wait(b);
	ok(index_format(path, -1) == 4 && verify(e, &nsegs) == 0,
	   "after a sweep: rebuilt as format 4, verify clean");

	/* Rows that are not the segment's records, meta and FTS5's own
	 * consistency intact: verify compares the terms with the segment's. */
	ok(index_rows_add(path, "INSERT INTO records(rowid, value) VALUES(1, 'bogusword')") &&
		   verify(e, &nsegs) == 1,
	   "an index with a record's row the segment does not have: a problem");
	search_builder_sweep(b);
	search_builder_wait(b);
	ok(verify(e, &nsegs) == 1, "(verify only reports; the sweep keeps an index whose meta matches)");
	ok(unlink(path) == 0, "that index removed");
	search_builder_sweep(b);
	search_builder_wait(b);
	ok(verify(e, &nsegs) == 0, "rebuilt: verify clean");
	ok(index_rows_add(path, "INSERT INTO records(rowid, value) VALUES(2, 'rarebird')") &&
		   verify(e, &nsegs) == 1,
	   "one more row for a word the segment has: a problem");
	ok(unlink(path) == 0, "that index removed");
	search_builder_sweep(b);
	search_builder_wait(b);
	ok(verify(e, &nsegs) == 0, "rebuilt: verify clean");

	/* Results stay complete with no index at all (every segment scanned):
	 * the reference the counts above are held against. */
	search_builder_stop(b);
	for (size_t i = 0; i < nsegs; i++) {
		index_path(e, (int)i, SEARCH_INDEX_SUFFIX, path, sizeof(path));
		unlink(path);
	}
	ok(verify(e, &nsegs) == (int)nsegs, "no index left");
	ok(count(e, "rarebird") == want && count(e, "word3 salt5") == want2,
	   "scanning every segment gives the same counts (%" PRId64 ", %" PRId64 ")", want,
	   want2);
	ok(engine_close(e) == 0, "engine closed");
	search_builder_free(b);
	tmpdir_free(dir);
	return tap_exit();
}
