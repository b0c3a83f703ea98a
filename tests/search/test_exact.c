/* test_exact.c - queries an index cannot answer by itself stay exact.
 *
 * The indexes keep neither positions nor columns (index.c, detail=none):
 * phrases, NEAR, ^ and column filters run there relaxed and each
 * candidate is checked on its record (query.c, "EXACT ANSWERS"). A wrong
 * relaxation, or a skipped check, shows here:
 *   1. a fixed set of records, written three times (in a first indexed
 *      segment, in a later one, and in the WAL tail, checked to be there
 *      before and after the queries), against answers
 *      written out by hand (each one also what SQLite FTS5 with
 *      detail=full gives on the same text): a phrase whose words occur in
 *      the other order, apart, in two columns or two headers (no match),
 *      NEAR within and beyond its distance, key:, value:, headers:,
 *      {a b}:, -col:, ^, header:NAME with the word in another column or
 *      header, a NOT of a phrase or a NEAR, a NOT inside a filter that
 *      leaves out the header column, strings with no token (FTS5's empty
 *      phrase) beside others, in NEAR, under NOT and OR, a '*' after one;
 *   2. random records over a vocabulary of five words and random queries
 *      of those kinds: the offsets with the indexes must equal those with
 *      every index removed (all scanned: FTS5 detail=full on every
 *      record);
 *   3. part 1 again with every index removed.
 * Besides, the index handles queries keep open (query.c, "INDEX HANDLES"):
 * after the queries at most 64 index files are open, some are, and once
 * every index is removed the next query leaves none of them open.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "search_test.h"

struct crec {
	const char *key, *value;
	const char *hn[2], *hv[2];
};

static const struct crec crafted[] = {
	/* 0 */ { NULL, "red fox jumps", { 0 }, { 0 } },
	/* 1 */ { NULL, "fox red jumps", { 0 }, { 0 } },
	/* 2 */ { NULL, "red big fox", { 0 }, { 0 } },
	/* 3 */ { NULL, "red one two three four five fox", { 0 }, { 0 } },
	/* 4 */ { "red", "fox", { 0 }, { 0 } },
	/* 5 */ { "fox red", "none", { 0 }, { 0 } },
	/* 6 */ { NULL, "plain", { "Trace" }, { "red fox" } },
	/* 7 */ { NULL, "plain", { "user", "Trace" }, { "red", "fox" } },
	/* 8 */ { NULL, "the red fo here", { 0 }, { 0 } },
	/* 9 */ { "x", "fox", { 0 }, { 0 } },
	/* 10 */ { NULL, "red", { 0 }, { 0 } },
	/* 11 */ { NULL, "red_fox", { 0 }, { 0 } },
};
#define NCRAFTED ((int)(sizeof(crafted) / sizeof(crafted[0])))

/* Each query and the crafted records it matches (-1 ends the list). */
static const struct {
	const char *q;
	int want[NCRAFTED + 1];
} cases[] = {
	{ "\"red fox\"", { 0, 6, -1 } },
	{ "red + fox", { 0, 6, -1 } },
	{ "value:\"red fox\"", { 0, -1 } },
	{ "\"fox red\"", { 1, 5, -1 } },
	{ "NEAR(red fox, 0)", { 0, 1, 5, 6, -1 } },
	{ "NEAR(red fox, 1)", { 0, 1, 2, 5, 6, 7, -1 } },
	{ "NEAR(red fox, 4)", { 0, 1, 2, 5, 6, 7, -1 } },
	{ "NEAR(red fox, 5)", { 0, 1, 2, 3, 5, 6, 7, -1 } },
	{ "key:red", { 4, 5, -1 } },
	{ "value:red", { 0, 1, 2, 3, 8, 10, -1 } },
	{ "key:red value:fox", { 4, -1 } },
	{ "headers:red", { 6, 7, -1 } },
	{ "value:red NOT \"red fox\"", { 1, 2, 3, 8, 10, -1 } },
	{ "\"red fo\"*", { 0, 6, 8, -1 } },
	{ "^red", { 0, 2, 3, 4, 10, -1 } },
	{ "{key headers}:\"red fox\"", { 6, -1 } },
	{ "-value:red", { 4, 5, 6, 7, -1 } },
	{ "(value:fox OR key:fox) NOT value:\"red fox\"", { 1, 2, 3, 4, 5, 9, -1 } },
	{ "red fox NOT NEAR(red fox, 0)", { 2, 3, 4, 7, -1 } },
	{ "header:Trace:red", { 6, -1 } },
	{ "header:user:red", { 7, -1 } },
	{ "header:Trace:fox", { 6, 7, -1 } },
	{ "header:Trace:\"red fox\"", { 6, -1 } },
	{ "header:user:\"red fox\"", { -1 } },
	{ "\"red fox\" OR header:user:red", { 0, 6, 7, -1 } },
	{ "header:user plain", { 7, -1 } },
	{ "red_fox", { 11, -1 } },
	{ "value:(fox NOT red)", { 4, 9, -1 } },
	{ "key:(red NOT fox)", { 4, -1 } },
	{ "-key:(fox NOT red)", { 4, 9, -1 } },
	/* A filter that leaves out the header column makes a header:NAME
	 * inside it match nothing (FTS5 intersects the column sets), so the
	 * NOT takes nothing away. */
	{ "value:(plain NOT header:user:red)", { 6, 7, -1 } },
	{ "value:(plain NOT header:user)", { 6, 7, -1 } },
	{ "-header:(plain NOT header:user:red)", { 6, 7, -1 } },
	{ "{key value}:(plain NOT header:user:red)", { 6, 7, -1 } },
	{ "value:({value header}:(plain NOT header:user:red))", { 6, 7, -1 } },
	{ "{value header}:(plain NOT header:user:red)", { 6, -1 } },
	/* A string with no token is FTS5's empty phrase: dropped from an
	 * implicit AND and from NEAR, nothing elsewhere. */
	{ "plain \"@\"", { 6, 7, -1 } },
	{ "\"@\" plain", { 6, 7, -1 } },
	{ "NEAR(plain \"@\")", { 6, 7, -1 } },
	{ "plain header:user:\"@\"", { 6, 7, -1 } },
	{ "plain ^\"@\"", { 6, 7, -1 } },
	{ "plain NEAR(\"@\" \"-\", 3)", { 6, 7, -1 } },
	{ "value:(plain \"...\")", { 6, 7, -1 } },
	{ "red NOT (fox \"@\")", { 8, 10, -1 } },
	{ "plain OR (fox \"@\")", { 0, 1, 2, 3, 4, 5, 6, 7, 9, -1 } },
	{ "plain AND \"@\"", { -1 } },
	{ "NEAR(\"@\" \"-\")", { -1 } },
	/* A '*' after a string marks the phrase's last token so far. */
	{ "fo + \"@\"*", { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1 } },
	{ "fo* + \"@\"", { 8, -1 } },
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static void append_crec(struct partition *p, const struct crec *c)
{
	struct record_header_in h[2];
	int nh = 0;

	for (; nh < 2 && c->hn[nh]; nh++) {
		h[nh].key = c->hn[nh];
		h[nh].key_len = (int32_t)strlen(c->hn[nh]);
		h[nh].value = c->hv[nh];
		h[nh].value_len = (int32_t)strlen(c->hv[nh]);
	}
	struct record_in ri = { 0, c->key, c->key ? (int32_t)strlen(c->key) : -1, c->value,
				(int32_t)strlen(c->value), h, nh };
	int rc = engine_append_records(p, &ri, 1, NULL);
	if (rc)
		bail("append: %s", chronik_strerror(rc));
}

static void append_fillers(struct partition *p, int n)
{
	char v[96];
	for (int i = 0; i < n; i++) {
		int len = snprintf(v, sizeof(v), "filler lorem ipsum dolor %d sit amet", i);
		struct record_in ri = { 0, NULL, -1, v, len, NULL, 0 };
		if (engine_append_records(p, &ri, 1, NULL))
			bail("append filler");
	}
}

#define MAXHITS 4096
struct offs {
	int64_t v[MAXHITS];
	int n;
};

static int collect(void *arg, struct partition *p, const struct engine_record *r)
{
	struct offs *o = arg;
	(void)p;
	if (o->n < MAXHITS)
		o->v[o->n++] = r->offset;
	return 0;
}

static int run(struct engine *e, const char *topic, const char *text, struct offs *got)
{
	struct search_query *q = NULL;
	char err[256] = "";
	int rc = search_query_new(text, &q, err, sizeof(err));

	got->n = 0;
	if (rc == 0)
		rc = search_run(e, topic, 0, q, collect, got);
	else
		diag("'%s': %s", text, err);
	search_query_free(q);
	return rc;
}

/* Whether the offsets from base on of p are all in the WAL tail: no
 * segment reaches them. With wal_seal_ms 0 only a rotation (the WAL of
 * both topics past wal_segment_bytes) or engine_index_now seals, so the
 * tail stays until then: the tail's bytes, of p and pr, are checked
 * against the rotation size too. */
static bool in_tail(struct engine *e, struct partition *p, struct partition *pr, int64_t base)
{
	struct engine_segment_info *segs;
	struct partition_info pi, ri;
	struct engine_options o;
	size_t n;

	if (engine_partition_segments(p, &segs, &n))
		bail("segments");
	int64_t indexed_end = n ? segs[n - 1].last_offset + 1 : 0;
	free(segs);
	engine_partition_info(p, &pi);
	engine_partition_info(pr, &ri);
	engine_options_get(e, &o);
	diag("t: indexed up to %" PRId64 ", tail from %" PRId64 " to %" PRId64 "; WAL tail %" PRIu64
	     " + %" PRIu64 " bytes of %" PRIu64,
	     indexed_end, base, pi.next_offset, pi.wal_bytes, ri.wal_bytes, o.wal_segment_bytes);
	return indexed_end <= base && pi.next_offset == base + NCRAFTED &&
	       pi.wal_bytes + ri.wal_bytes < o.wal_segment_bytes / 2;
}

/* Part 1: every case against its crafted answer, at each copy's base. */
static void run_cases(struct engine *e, const int64_t *bases, int nbases, const char *what)
{
	int bad = 0;

	for (int c = 0; c < NCASES; c++) {
		struct offs got, want = { .n = 0 };
		for (int b = 0; b < nbases; b++)
			for (int k = 0; cases[c].want[k] >= 0; k++)
				want.v[want.n++] = bases[b] + cases[c].want[k];
		int rc = run(e, "t", cases[c].q, &got);
		if (rc || got.n != want.n || memcmp(got.v, want.v, (size_t)want.n * sizeof(int64_t))) {
			bad++;
			diag("%s: '%s': rc %d, %d hits, want %d", what, cases[c].q, rc, got.n, want.n);
			for (int i = 0; i < got.n && i < 20; i++)
				diag("  got %" PRId64, got.v[i]);
		}
	}
	ok(bad == 0, "%s: %d crafted queries exact in %d copies", what, NCASES, nbases);
}

/* ---- part 2: random records, indexed against scanned ---------------------- */

#define NRAND 2000
#define NRQ 80
static const char *vocab[] = { "red", "fox", "big", "jumps", "redx" };
#define NV 5

static uint64_t rng;
static uint32_t rnd(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng >> 33);
}

static void words(char *out, int n)
{
	size_t len = 0;
	out[0] = 0;
	for (int i = 0; i < n; i++)
		len += (size_t)sprintf(out + len, "%s%s", i ? (rnd() % 3 ? " " : ", ") : "",
				       vocab[rnd() % NV]);
}

static void append_random(struct partition *p, int n)
{
	static const char *names[] = { "Trace", "user" };
	for (int i = 0; i < n; i++) {
		char k[64], v[96], hv[2][64];
		struct record_header_in h[2];
		int nk = (int)(rnd() % 3), nh = (int)(rnd() % 3);
		words(k, nk);
		words(v, 1 + (int)(rnd() % 6));
		for (int j = 0; j < nh; j++) {
			words(hv[j], (int)(rnd() % 4));
			h[j].key = names[rnd() % 2];
			h[j].key_len = (int32_t)strlen(h[j].key);
			h[j].value = hv[j];
			h[j].value_len = (int32_t)strlen(hv[j]);
		}
		struct record_in ri = { 0, nk ? k : NULL, nk ? (int32_t)strlen(k) : -1, v,
					(int32_t)strlen(v), h, nh };
		if (engine_append_records(p, &ri, 1, NULL))
			bail("append random");
	}
}

static void random_query(char *q, size_t n)
{
	const char *a = vocab[rnd() % NV], *b = vocab[rnd() % NV], *c = vocab[rnd() % NV];
	int d = (int)(rnd() % 4);
	switch (rnd() % 16) {
	case 0: snprintf(q, n, "\"%s %s\"", a, b); break;
	case 1: snprintf(q, n, "value:\"%s %s\"", a, b); break;
	case 2: snprintf(q, n, "key:%s %s", a, b); break;
	case 3: snprintf(q, n, "NEAR(%s %s, %d)", a, b, d); break;
	case 4: snprintf(q, n, "%s NOT \"%s %s\"", a, b, c); break;
	case 5: snprintf(q, n, "\"%s %s\" OR key:%s", a, b, c); break;
	case 6: snprintf(q, n, "header:Trace:\"%s %s\"", a, b); break;
	case 7: snprintf(q, n, "{key headers}:%s NOT value:%s", a, b); break;
	case 8: snprintf(q, n, "-value:%s", a); break;
	case 9: snprintf(q, n, "^%s %s", a, b); break;
	case 10: snprintf(q, n, "%s + re*", a); break;
	case 11: snprintf(q, n, "NEAR(\"%s %s\" %s, %d)", a, b, c, d); break;
	case 12: snprintf(q, n, "(key:%s OR value:%s) NOT NEAR(%s %s, %d)", a, b, a, c, d); break;
	case 13: snprintf(q, n, "value:(%s NOT header:user:%s)", a, b); break;
	case 14: snprintf(q, n, "%s \"-\" NOT (%s \"@\") OR NEAR(%s \"@\")", a, b, c); break;
	default: snprintf(q, n, "header:user:%s %s OR header:Trace", a, b); break;
	}
}

/* Open descriptors of this process on index files; *deleted: of them,
 * those on files removed. */
static int index_fds(int *deleted)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;
	char link[600], target[4400];

	*deleted = 0;
	if (!d)
		bail("/proc/self/fd");
	while ((de = readdir(d))) {
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		if (strstr(target, SEARCH_INDEX_SUFFIX " (deleted)"))
			n++, (*deleted)++;
		else if (len > 4 && !strcmp(target + len - 4, SEARCH_INDEX_SUFFIX))
			n++;
	}
	closedir(d);
	return n;
}

int main(void)
{
	const char *seed_s = getenv("CHRONIK_SEARCH_SEED");
	uint64_t seed = seed_s ? strtoull(seed_s, NULL, 10) : (uint64_t)time(NULL);
	char *dir = tmpdir_new("search-exact");
	struct partition_info info;
	int64_t bases[3];

	diag("seed %" PRIu64 " (CHRONIK_SEARCH_SEED)", seed);
	rng = seed;
	struct engine *e = search_test_open(dir, 65536);
	ok(engine_topic_create(e, "t", 1, NULL) == 0 && engine_topic_create(e, "r", 1, NULL) == 0,
	   "topics t and r");
	struct partition *p = part_or_bail(e, "t", 0), *pr = part_or_bail(e, "r", 0);

	/* Copy 0 in the first segment, copy 1 in a later one, copy 2 in the
	 * WAL tail. */
	bases[0] = 0;
	for (int i = 0; i < NCRAFTED; i++)
		append_crec(p, &crafted[i]);
	append_fillers(p, 2000);
	engine_partition_info(p, &info);
	bases[1] = info.next_offset;
	for (int i = 0; i < NCRAFTED; i++)
		append_crec(p, &crafted[i]);
	append_fillers(p, 2000);
	append_random(pr, NRAND);
	ok(engine_index_now(e) == 0, "indexed");
	engine_partition_info(p, &info);
	bases[2] = info.next_offset;
	for (int i = 0; i < NCRAFTED; i++)
		append_crec(p, &crafted[i]);
	append_random(pr, NRAND / 20);
	engine_partition_info(p, &info);
	ok(info.segments >= 3 && info.wal_bytes > 0, "t: %" PRIu64 " segments and a tail",
	   info.segments);
	ok(in_tail(e, p, pr, bases[2]), "copy 2 in the WAL tail");
	{
		struct engine_segment_info *segs;
		size_t n;
		if (engine_partition_segments(p, &segs, &n))
			bail("segments");
		bool apart = n >= 2 && segs[0].base_offset == 0 &&
			     segs[0].last_offset < bases[1] &&
			     segs[n - 1].last_offset >= bases[1] + NCRAFTED - 1;
		free(segs);
		ok(apart, "copies 0 and 1 in different indexed segments");
	}
	run_cases(e, bases, 3, "indexed + tail");
	ok(in_tail(e, p, pr, bases[2]), "copy 2 still in the WAL tail after the queries");

	/* Part 2: random queries with the indexes, kept for the comparison. */
	static struct offs indexed[NRQ];
	static char texts[NRQ][128];
	int errs = 0, nonempty = 0;
	for (int i = 0; i < NRQ; i++) {
		random_query(texts[i], sizeof(texts[i]));
		errs += run(e, "r", texts[i], &indexed[i]) != 0;
		nonempty += indexed[i].n > 0;
	}
	ok(errs == 0, "%d random queries ran (%d with hits)", NRQ, nonempty);
	int deleted, open_fds = index_fds(&deleted);
	ok(open_fds > 0 && open_fds <= 64 && deleted == 0,
	   "%d index files held open between queries (at most 64)", open_fds);

	/* Every index removed: every segment scanned. */
	int removed = 0, total = 0;
	struct partition *ps[2] = { p, pr };
	for (int k = 0; k < 2; k++) {
		struct engine_segment_info *segs;
		size_t n;
		char sdir[4200], path[4400];
		engine_partition_segment_dir(ps[k], sdir, sizeof(sdir));
		if (engine_partition_segments(ps[k], &segs, &n))
			bail("segments");
		for (size_t i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/%s" SEARCH_INDEX_SUFFIX, sdir, segs[i].file);
			removed += unlink(path) == 0;
		}
		total += (int)n;
		free(segs);
	}
	ok(removed == total && total >= 4, "all %d indexes removed", removed);

	int bad = 0;
	for (int i = 0; i < NRQ; i++) {
		struct offs scanned;
		int rc = run(e, "r", texts[i], &scanned);
		if (rc || scanned.n != indexed[i].n ||
		    memcmp(scanned.v, indexed[i].v, (size_t)scanned.n * sizeof(int64_t))) {
			bad++;
			diag("'%s': indexed %d hits, scanned %d (rc %d)", texts[i], indexed[i].n,
			     scanned.n, rc);
		}
	}
	ok(bad == 0, "%d random queries: indexed == scanned", NRQ);
	open_fds = index_fds(&deleted);
	ok(open_fds == 0, "no index file held open once removed (%d, %d deleted)", open_fds,
	   deleted);
	run_cases(e, bases, 3, "all scanned");

	engine_partition_unref(p);
	engine_partition_unref(pr);
	ok(engine_close(e) == 0, "engine closed");
	tmpdir_free(dir);
	return tap_exit();
}
