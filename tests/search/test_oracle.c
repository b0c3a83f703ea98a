/* test_oracle.c - full-text search (search/) against `grep -w`.
 *
 * A generated corpus (CHRONIK_SEARCH_LINES lines, default 200000 as in the
 * issue; tests/search/meson.build runs 50000 and 200000), over two
 * partitions (words from a fixed vocabulary, common ones and rare ones)
 * is appended and indexed into segments, then more lines are appended
 * that stay in the WAL. For 50 random one-word and two-word queries (seed
 * printed; CHRONIK_SEARCH_SEED picks one), the offsets search_run returns
 * for each partition must equal those of the lines `grep -w` finds (AND of
 * the words) in the partition's data (each remaining record's value and
 * '\n', in offset order, as `cat data` shows it). That holds:
 *   1. over indexed segments and the unindexed tail;
 *   2. with one segment's index removed and another's damaged (a crash
 *      between a segment and its index): those segments are scanned;
 *   3. after size retention dropped the oldest segments (the damaged
 *      ones among them);
 *   4. after compaction (a filter drops every third record; the new
 *      segments get indexes, the old indexes go with their segments).
 * Besides: every registered segment has an index and no index outlives its
 * segment; a line appended after indexing is found at once; the topic-wide
 * result is the union of the partitions' in timestamp order; limit:;
 * since:/until: (each chunk of lines appended has a timestamp of its own,
 * so a range cuts some hits out: the answer must be the unranged hits
 * filtered by timestamp); bad queries are -EINVAL; binary keys, values and headers
 * are skipped (counted) and the text beside them is still found;
 * search_index_verify is clean on every segment; a deleted topic leaves no
 * index behind.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "search.h"
#include "testutil.h"

#define NPART 2
#define NQUERIES 50
#define TAIL_LINES 1500 /* per partition, left in the WAL */

/* ---- corpus --------------------------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

#define NCOMMON 400
#define NRARE 40
static char vocab[NCOMMON + NRARE][16];

static void vocab_init(void)
{
	static const char *syl[] = { "ka", "lo", "mi", "ne", "ru", "ti", "sa", "po", "de", "fu",
				     "gi", "ho", "ja", "ve", "zo", "bu" };
	for (int i = 0; i < NCOMMON + NRARE; i++) {
		int v = i;
		char *w = vocab[i];
		w[0] = 0;
		if (i >= NCOMMON)
			strcat(w, "qx"); /* rare words look different */
		do {
			strcat(w, syl[v % 16]);
			v /= 16;
		} while (v);
		strcat(w, i < NCOMMON ? "n" : "r");
	}
}

/* One line: 4-11 words; a rare word in about one line of 2000. */
static size_t gen_line(char *buf)
{
	int nw = 4 + (int)(rnd() % 8);
	size_t len = 0;
	for (int k = 0; k < nw; k++) {
		int idx;
		if (rnd() % 2000 == 0)
			idx = NCOMMON + (int)(rnd() % NRARE);
		else /* skewed: low indices more often */
			idx = (int)((rnd() % NCOMMON) * (rnd() % NCOMMON) / NCOMMON);
		len += (size_t)sprintf(buf + len, "%s%s", k ? (rnd() % 5 ? " " : ", ") : "", vocab[idx]);
	}
	buf[len++] = '\n';
	return len;
}

/* Each call's records share one timestamp, one millisecond after the
 * previous call's (whatever the clock says), so that a time range cuts
 * between chunks for certain (check_time_range). */
static int64_t chunk_ts = 1700000000000;

static void append_lines(struct partition *p, int n)
{
	char *buf = malloc((size_t)n * 160);
	struct record_in *r = calloc((size_t)n, sizeof(*r));
	size_t len = 0;
	int64_t base;
	if (!buf || !r)
		bail("out of memory");
	for (int i = 0; i < n; i++) {
		size_t l = gen_line(buf + len);
		r[i] = (struct record_in){ .timestamp = chunk_ts,
					   .key = NULL,
					   .key_len = -1,
					   .value = buf + len,
					   .value_len = (int32_t)(l - 1) };
		len += l;
	}
	chunk_ts++;
	int rc = engine_append_records(p, r, (size_t)n, &base);
	if (rc)
		bail("append: %s", chronik_strerror(rc));
	free(r);
	free(buf);
}

/* ---- the oracle ----------------------------------------------------------- */

struct offs {
	int64_t *v;
	size_t n, cap;
};

static void offs_push(struct offs *o, int64_t x)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 1024;
		o->v = realloc(o->v, o->cap * sizeof(*o->v));
		if (!o->v)
			bail("out of memory");
	}
	o->v[o->n++] = x;
}

/* Write p's data (values and '\n' of the remaining records, offset order)
 * to path; *lines gets each line's offset. */
static void write_data(struct partition *p, const char *path, struct offs *lines)
{
	struct engine_cursor *c;
	struct engine_record r;
	FILE *f = fopen(path, "w");
	int rc;

	lines->n = 0;
	if (!f || engine_cursor_open(p, 0, &c))
		bail("write_data");
	while ((rc = engine_cursor_next(c, &r)) == 1) {
		if (r.value_len > 0)
			fwrite(r.value, 1, (size_t)r.value_len, f);
		fputc('\n', f);
		offs_push(lines, r.offset);
	}
	engine_cursor_close(c);
	if (rc < 0 || fclose(f))
		bail("write_data: %d", rc);
}

/* Offsets of the lines of data that grep -w finds for every word. */
static void grep_offsets(const char *data, const struct offs *lines, char **words, int nw,
			 struct offs *out)
{
	char cmd[8192], line[4096];
	size_t len = (size_t)snprintf(cmd, sizeof(cmd), "grep -n -w -e '%s' '%s'", words[0], data);
	for (int k = 1; k < nw; k++)
		len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " | grep -w -e '%s'", words[k]);
	FILE *f = popen(cmd, "r");
	out->n = 0;
	if (!f)
		bail("popen");
	while (fgets(line, sizeof(line), f)) {
		long ln = strtol(line, NULL, 10);
		if (ln < 1 || (size_t)ln > lines->n)
			bail("grep said line %ld", ln);
		offs_push(out, lines->v[ln - 1]);
	}
	pclose(f);
}

struct collect {
	struct offs o;
	int32_t want_partition; /* -1 any */
	int64_t last_ts;
	int32_t last_p;
	int64_t last_off;
	bool order_ok;
	int npart[NPART];
};

static int collect_hit(void *arg, struct partition *p, const struct engine_record *r)
{
	struct collect *c = arg;
	int32_t pi = engine_partition_index(p);
	if (c->want_partition >= 0) {
		if (pi != c->want_partition || (c->o.n && r->offset <= c->last_off))
			c->order_ok = false;
	} else if (c->o.n && (r->timestamp < c->last_ts ||
			      (r->timestamp == c->last_ts && pi == c->last_p && r->offset <= c->last_off))) {
		c->order_ok = false;
	}
	c->last_ts = r->timestamp;
	c->last_p = pi;
	c->last_off = r->offset;
	if (pi < NPART)
		c->npart[pi]++;
	offs_push(&c->o, r->offset);
	return 0;
}

static int run_query(struct engine *e, int32_t part, const char *text, struct collect *c)
{
	struct search_query *q;
	char err[256];
	int rc = search_query_new(text, &q, err, sizeof(err));
	memset(c->npart, 0, sizeof(c->npart));
	c->o.n = 0;
	c->want_partition = part;
	c->order_ok = true;
	if (rc) {
		diag("%s: %s", text, err);
		return rc;
	}
	rc = search_run(e, "t", part, q, collect_hit, c);
	search_query_free(q);
	return rc;
}

static bool same(const struct offs *a, const struct offs *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(*a->v)) == 0);
}

/* NQUERIES queries (nq of them when smaller) on every partition; one ok per
 * query. */
static void oracle(struct engine *e, const char *dir, const char *what, int nq)
{
	struct offs lines[NPART] = { 0 }, want = { 0 };
	struct collect got = { 0 };
	char data[NPART][4200];
	size_t total_hits = 0;

	for (int pi = 0; pi < NPART; pi++) {
		struct partition *p = part_or_bail(e, "t", pi);
		snprintf(data[pi], sizeof(data[pi]), "%s/data.%d", dir, pi);
		write_data(p, data[pi], &lines[pi]);
		engine_partition_unref(p);
	}
	for (int qi = 0; qi < nq; qi++) {
		char *words[2], text[64];
		int nw = 1 + (qi % 5 >= 2); /* 2 in 5 one-word, 3 in 5 two-word */
		for (int k = 0; k < nw; k++) {
			int idx = (qi % 4 == 0) ? NCOMMON + (int)(rnd() % NRARE)
						 : (int)((rnd() % NCOMMON) * (rnd() % NCOMMON) / NCOMMON);
			words[k] = vocab[idx];
		}
		snprintf(text, sizeof(text), "%s%s%s", words[0], nw > 1 ? " " : "",
			 nw > 1 ? words[1] : "");
		bool good = true;
		size_t hits = 0;
		for (int pi = 0; pi < NPART && good; pi++) {
			grep_offsets(data[pi], &lines[pi], words, nw, &want);
			int rc = run_query(e, pi, text, &got);
			if (rc || !got.order_ok || !same(&got.o, &want)) {
				diag("%s: partition %d: search %zu hits (rc %d), grep -w %zu", text, pi,
				     got.o.n, rc, want.n);
				good = false;
			}
			hits += want.n;
		}
		total_hits += hits;
		ok(good, "%s: '%s' = grep -w (%zu lines)", what, text, hits);
	}
	diag("%s: %zu hits over %d queries", what, total_hits, nq);
	for (int pi = 0; pi < NPART; pi++)
		free(lines[pi].v);
	free(want.v);
	free(got.o.v);
}

/* ---- files on disk -------------------------------------------------------- */

/* Every registered segment of t/pi has its index; no index without its
 * segment in the directory. */
static bool indexes_match(struct engine *e, int pi, size_t *nidx)
{
	struct partition *p = part_or_bail(e, "t", pi);
	struct engine_segment_info *segs;
	size_t n;
	char dir[4200], path[4400];
	struct stat st;
	bool good = engine_partition_segments(p, &segs, &n) == 0;
	engine_partition_segment_dir(p, dir, sizeof(dir));
	engine_partition_unref(p);
	*nidx = 0;
	for (size_t i = 0; good && i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s" SEARCH_INDEX_SUFFIX, dir, segs[i].file);
		if (stat(path, &st) != 0) {
			diag("no index for %s", segs[i].file);
			good = false;
		}
	}
	DIR *d = opendir(dir);
	struct dirent *de;
	while (good && d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 4 || strcmp(de->d_name + len - 4, SEARCH_INDEX_SUFFIX) != 0)
			continue;
		(*nidx)++;
		snprintf(path, sizeof(path), "%s/%.*s", dir, (int)(len - 4), de->d_name);
		if (stat(path, &st) != 0) {
			diag("index without segment: %s", de->d_name);
			good = false;
		}
	}
	if (d)
		closedir(d);
	free(segs);
	return good;
}

static void count_problem(void *arg, const char *what)
{
	diag("verify: %s", what);
	(*(int *)arg)++;
}

static int verify_all(struct engine *e)
{
	int problems = 0;
	for (int pi = 0; pi < NPART; pi++) {
		struct partition *p = part_or_bail(e, "t", pi);
		struct engine_segment_info *segs;
		size_t n;
		char dir[4200], path[4400];
		engine_partition_segment_dir(p, dir, sizeof(dir));
		if (engine_partition_segments(p, &segs, &n))
			bail("segments");
		for (size_t i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, segs[i].file);
			int rc = search_index_verify(path, count_problem, &problems);
			if (rc < 0)
				problems++;
		}
		free(segs);
		engine_partition_unref(p);
	}
	return problems;
}

static int drop_third(void *arg, const char *config_json, const struct engine_record *r)
{
	(void)arg;
	(void)config_json;
	return r->offset % 3 != 0;
}

static int64_t count_query(struct engine *e, int32_t part, const char *text);

struct timed {
	struct offs off, ts;
};

static int timed_hit(void *arg, struct partition *p, const struct engine_record *r)
{
	struct timed *t = arg;
	(void)p;
	offs_push(&t->off, r->offset);
	offs_push(&t->ts, r->timestamp);
	return 0;
}

static int run_timed(struct engine *e, const char *text, struct timed *t)
{
	struct search_query *q;
	char err[256];
	int rc = search_query_new(text, &q, err, sizeof(err));
	t->off.n = t->ts.n = 0;
	if (rc) {
		diag("%s: %s", text, err);
		return rc;
	}
	rc = search_run(e, "t", 0, q, timed_hit, t);
	search_query_free(q);
	return rc;
}

/* One range query (since, until: -1 for none) of word on partition 0: it
 * must return exactly the hits of all (word without a range, the oracle
 * for this) whose timestamp lies in since <= ts < until, in the same
 * order, and the range must leave out some hits and keep some. */
static void check_range(struct engine *e, const char *word, const struct timed *all, int64_t since,
			int64_t until)
{
	struct timed got = { 0 };
	struct offs want = { 0 };
	char text[160];
	size_t len = (size_t)snprintf(text, sizeof(text), "%s", word);

	if (since >= 0)
		len += (size_t)snprintf(text + len, sizeof(text) - len, " since:%" PRId64, since);
	if (until >= 0)
		snprintf(text + len, sizeof(text) - len, " until:%" PRId64, until);
	for (size_t i = 0; i < all->off.n; i++)
		if ((since < 0 || all->ts.v[i] >= since) && (until < 0 || all->ts.v[i] < until))
			offs_push(&want, all->off.v[i]);
	int rc = run_timed(e, text, &got);
	ok(rc == 0 && want.n > 0 && want.n < all->off.n && same(&got.off, &want),
	   "'%s': %zu of %zu hits, the oracle's %zu (0 < it < all)", text, got.off.n, all->off.n,
	   want.n);
	free(got.off.v);
	free(got.ts.v);
	free(want.v);
}

/* Time ranges that cut through word's hits on partition 0 (at the 1/3 and
 * 2/3 timestamps: the corpus has one timestamp per chunk of lines, so
 * these differ and each cut falls between chunks): since and until, since
 * alone, until alone. */
static void check_time_range(struct engine *e, const char *word)
{
	struct timed all = { 0 };

	if (run_timed(e, word, &all) != 0 || all.off.n < 3) {
		ok(0, "time range: '%s' has %zu hits, too few to cut", word, all.off.n);
		goto out;
	}
	int64_t lo = all.ts.v[all.off.n / 3], hi = all.ts.v[2 * all.off.n / 3];
	ok(all.ts.v[0] < lo && lo < hi && hi <= all.ts.v[all.off.n - 1],
	   "'%s': %zu hits, timestamps %" PRId64 " < %" PRId64 " < %" PRId64 " <= %" PRId64, word,
	   all.off.n, all.ts.v[0], lo, hi, all.ts.v[all.off.n - 1]);
	check_range(e, word, &all, lo, hi);
	check_range(e, word, &all, lo, -1);
	check_range(e, word, &all, -1, hi);
out:
	free(all.off.v);
	free(all.ts.v);
}

static int64_t count_query(struct engine *e, int32_t part, const char *text)
{
	struct collect c = { 0 };
	int rc = run_query(e, part, text, &c);
	int64_t n = rc ? rc : (int64_t)c.o.n;
	free(c.o.v);
	return n;
}

int main(void)
{
	const char *s = getenv("CHRONIK_SEARCH_LINES");
	const char *seed_s = getenv("CHRONIK_SEARCH_SEED");
	long total = s ? atol(s) : 200000;
	uint64_t seed = seed_s ? strtoull(seed_s, NULL, 10) : (uint64_t)time(NULL);
	char *dir = tmpdir_new("search");
	struct engine_options o;
	struct engine *e;
	size_t nidx;

	diag("seed %" PRIu64 " (CHRONIK_SEARCH_SEED), %ld lines", seed, total);
	rng_state = seed;
	vocab_init();
	engine_options_init(&o);
	/* About ten segments per partition whatever the corpus size. */
	o.wal_segment_bytes = (uint64_t)total * 5 > 65536 ? (uint64_t)total * 5 : 65536;
	o.wal_seal_ms = 0;
	o.fsync = FSYNC_NEVER;
	e = open_or_bail(dir, &o);
	ok(search_attach(e) == 0, "search attached");
	ok(engine_topic_create(e, "t", NPART, "{\"compaction.filter\":\"drop-third\","
					      "\"min.cleanable.dirty.ratio\":\"1\"}") == 0,
	   "topic t");

	/* Indexed part, then the tail. */
	struct partition *p[NPART];
	for (int pi = 0; pi < NPART; pi++)
		p[pi] = part_or_bail(e, "t", pi);
	long body = total - NPART * TAIL_LINES;
	for (long done = 0; done < body; done += 1000)
		append_lines(p[(done / 1000) % NPART], 1000);
	ok(engine_index_now(e) == 0, "indexed");
	for (int pi = 0; pi < NPART; pi++)
		append_lines(p[pi], TAIL_LINES);
	struct partition_info info;
	engine_partition_info(p[0], &info);
	diag("partition 0: %" PRIu64 " segments, %" PRIu64 " WAL bytes", info.segments, info.wal_bytes);
	ok(info.segments >= 3 && info.wal_bytes > 0, "segments and an unindexed tail");
	ok(indexes_match(e, 0, &nidx) && indexes_match(e, 1, &nidx), "every segment has its index");
	ok(verify_all(e) == 0, "search_index_verify: every index covers its segment");

	oracle(e, dir, "segments + tail", NQUERIES);

	/* Topic-wide: the union, by timestamp. */
	{
		struct collect c = { 0 };
		const char *w = vocab[3];
		int rc = run_query(e, -1, w, &c);
		int64_t n0 = count_query(e, 0, w), n1 = count_query(e, 1, w);
		ok(rc == 0 && c.order_ok && c.npart[0] == n0 && c.npart[1] == n1 && n0 > 0,
		   "topic-wide '%s': %d + %d records, in timestamp order", w, c.npart[0], c.npart[1]);
		free(c.o.v);
	}
	/* limit:, since:/until:, FTS5 syntax. */
	{
		char text[128];
		snprintf(text, sizeof(text), "%s limit:7", vocab[0]);
		ok(count_query(e, 0, text) == 7, "limit:7 returns 7");
		snprintf(text, sizeof(text), "%s until:1", vocab[0]);
		ok(count_query(e, 0, text) == 0, "until:1 excludes everything");
		snprintf(text, sizeof(text), "%s since:1", vocab[0]);
		ok(count_query(e, 0, text) == count_query(e, 0, vocab[0]), "since:1 excludes nothing");
		check_time_range(e, vocab[0]);
		char both[64];
		snprintf(both, sizeof(both), "%s %s", vocab[NCOMMON], vocab[NCOMMON + 1]);
		snprintf(text, sizeof(text), "%s OR %s", vocab[NCOMMON], vocab[NCOMMON + 1]);
		int64_t a = count_query(e, 0, vocab[NCOMMON]), b = count_query(e, 0, vocab[NCOMMON + 1]);
		ok(count_query(e, 0, text) == a + b - count_query(e, 0, both),
		   "OR = A + B - (A AND B) (%" PRId64 ", %" PRId64 ")", a, b);
		snprintf(text, sizeof(text), "value:%.3s*", vocab[NCOMMON]);
		ok(count_query(e, 0, text) >= count_query(e, 0, vocab[NCOMMON]), "prefix query");
	}
	/* Bad queries. */
	{
		struct search_query *q = NULL;
		char err[256] = "";
		ok(search_query_new("foo AND (", &q, err, sizeof(err)) == -EINVAL && !q && *err,
		   "syntax error: -EINVAL (%s)", err);
		ok(search_query_new("nosuchcolumn:foo", &q, err, sizeof(err)) == -EINVAL,
		   "unknown column: -EINVAL (%s)", err);
		ok(search_query_new("  limit:3 ", &q, err, sizeof(err)) == -EINVAL,
		   "no terms: -EINVAL (%s)", err);
		ok(search_query_new("foo limit:x", &q, err, sizeof(err)) == -EINVAL,
		   "bad limit: -EINVAL (%s)", err);
	}
	/* Found at once. */
	{
		engine_append_lines(p[1], "zzfreshword here\n", 17, NULL);
		ok(count_query(e, 1, "zzfreshword") == 1, "a line appended a moment ago is found");
	}

	/* A crash between a segment and its index: one missing, one damaged. */
	{
		struct engine_segment_info *segs;
		size_t n;
		char sdir[4200], path[4400];
		engine_partition_segment_dir(p[0], sdir, sizeof(sdir));
		engine_partition_segments(p[0], &segs, &n);
		snprintf(path, sizeof(path), "%s/%s" SEARCH_INDEX_SUFFIX, sdir, segs[0].file);
		ok(unlink(path) == 0, "index of the first segment removed");
		snprintf(path, sizeof(path), "%s/%s" SEARCH_INDEX_SUFFIX, sdir, segs[1].file);
		FILE *f = fopen(path, "r+");
		ok(f && fseek(f, 0, SEEK_SET) == 0 && fwrite("garbage!", 1, 8, f) == 8 &&
			   fclose(f) == 0,
		   "index of the second segment damaged");
		free(segs);
		ok(verify_all(e) == 2, "verify reports both");
		oracle(e, dir, "index missing/damaged", 10);
		/* Retention removes them with their segments below. */
	}

	/* Retention. */
	{
		engine_partition_info(p[0], &info);
		char cfg[160];
		snprintf(cfg, sizeof(cfg),
			 "{\"compaction.filter\":\"drop-third\",\"min.cleanable.dirty.ratio\":\"1\","
			 "\"retention.bytes\":\"%" PRIu64 "\"}",
			 (info.segment_bytes + info.wal_bytes) / 2);
		ok(engine_topic_config_set(e, "t", cfg) == 0, "retention.bytes set");
		ok(engine_index_now(e) == 0, "a retention pass");
		struct partition_info after;
		engine_partition_info(p[0], &after);
		ok(after.log_start_offset > 0 && after.segments < info.segments + 1,
		   "retention dropped segments (log start %" PRId64 ")", after.log_start_offset);
		ok(indexes_match(e, 0, &nidx) && indexes_match(e, 1, &nidx),
		   "no index outlives its segment (%zu indexes)", nidx);
		/* A tail not yet indexed beside the segments retention left. */
		append_lines(p[0], 1500);
		append_lines(p[1], 1500);
		engine_partition_info(p[0], &after);
		ok(after.wal_bytes > 0, "lines appended since: %" PRIu64 " WAL bytes not indexed",
		   after.wal_bytes);
		oracle(e, dir, "after retention", NQUERIES);
		ok(engine_topic_config_set(e, "t",
					   "{\"compaction.filter\":\"drop-third\","
					   "\"min.cleanable.dirty.ratio\":\"1\"}") == 0,
		   "retention.bytes unset");
	}

	/* Compaction. */
	{
		ok(engine_compact_filter_register(e, "drop-third", drop_third, NULL) == 0,
		   "filter registered");
		struct engine_compact_result res = { 0 };
		for (int pi = 0; pi < NPART; pi++) {
			int rc = engine_partition_compact(p[pi], &res);
			ok(rc == 0 && res.records_out < res.records_in,
			   "partition %d compacted: %" PRIu64 " -> %" PRIu64 " records", pi,
			   res.records_in, res.records_out);
		}
		ok(indexes_match(e, 0, &nidx) && indexes_match(e, 1, &nidx),
		   "compacted segments have indexes; the old ones are gone");
		ok(verify_all(e) == 0, "verify clean after compaction");
		append_lines(p[0], 1500);
		append_lines(p[1], 1500);
		struct partition_info now;
		engine_partition_info(p[0], &now);
		ok(now.wal_bytes > 0, "lines appended since: %" PRIu64 " WAL bytes not indexed",
		   now.wal_bytes);
		oracle(e, dir, "after compaction", NQUERIES);
	}

	/* Binary keys, values and headers. */
	{
		static const uint8_t bin[] = { 0x00, 0xff, 0xfe, 'b', 'i', 'n', 0x01 };
		struct record_header_in h[2] = {
			{ "trace", 5, bin, sizeof(bin) },
			{ "note", 4, "hdrword visible", 15 },
		};
		struct record_in r[3] = {
			{ 0, bin, sizeof(bin), bin, sizeof(bin), h, 2 },
			{ 0, "keyword", 7, "binneighbour text", 17, NULL, 0 },
			{ 0, NULL, -1, "\xc3\x28 invalid utf8 binword", 23, NULL, 0 },
		};
		ok(engine_append_records(p[0], r, 3, NULL) == 0, "binary records appended");
		ok(count_query(e, 0, "binneighbour") == 1 && count_query(e, 0, "headers:hdrword") == 1 &&
			   count_query(e, 0, "key:keyword") == 1 && count_query(e, 0, "binword") == 0,
		   "tail: text found, binary not indexed");
		ok(engine_index_now(e) == 0, "indexed with binary values");
		ok(indexes_match(e, 0, &nidx) && verify_all(e) == 0, "its index is built and verifies");
		ok(count_query(e, 0, "binneighbour") == 1 && count_query(e, 0, "headers:hdrword") == 1 &&
			   count_query(e, 0, "key:keyword") == 1 && count_query(e, 0, "value:keyword") == 0,
		   "segment: text found, column filters apply");
	}

	/* Topic deletion. */
	{
		char tdir[4200];
		engine_partition_segment_dir(p[0], tdir, sizeof(tdir));
		for (int pi = 0; pi < NPART; pi++)
			engine_partition_unref(p[pi]);
		ok(engine_topic_delete(e, "t") == 0, "topic deleted");
		struct stat st;
		ok(stat(tdir, &st) != 0 && errno == ENOENT, "its segments and indexes are gone");
	}
	ok(engine_close(e) == 0, "engine closed");
	tmpdir_free(dir);
	return tap_exit();
}
