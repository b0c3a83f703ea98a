/* test_header.c - header:NAME (search.h) against a model.
 *
 * Records with 0-3 headers (names from a few, in mixed case, values of
 * 0-4 words from a small vocabulary joined by spaces or punctuation,
 * sometimes binary) and values from the same vocabulary are appended;
 * part is indexed into segments, the rest stays in the WAL tail. Every
 * query's offsets must equal those a model computes from the records
 * kept in memory (tokens: runs of [A-Za-z0-9_], case folded; header names
 * compared with ASCII case folded):
 *   header:NAME:w        some header called NAME has the word w
 *   header:NAME:w*       ... a word starting with w
 *   header:NAME:"a b"    ... the words a b next to each other in ONE value
 *   header:NAME          some header is called NAME
 *   and combinations with a plain word, NOT and OR, in parentheses.
 * The same queries run twice: with the indexes, and after every index is
 * removed (all scanned). Every query of a kind (word, phrase, NOT, OR,
 * prefix, exists) together must have hits in the model, so that no kind is
 * checked on empty answers alone.
 *
 * Size: each query scans what is not indexed into a fresh in-memory table,
 * so the run costs queries x records scanned. 1200 records are plenty for
 * what is checked, record by record: about 1800 headers, each name in its
 * three case variants hundreds of times, about 90 binary names and 120
 * binary values, tens of hits per word query; more records only repeat
 * those cases.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "search_test.h"

#define NREC 1200
#define MAXH 3
#define MAXW 4

static const char *names[] = { "Trace", "user", "Content-Type", "x_id" };
#define NNAMES 4
static const char *words[] = { "alpha", "alpine", "beta", "gamma", "delta", "omega",
			       "sigma", "tau", "kappa", "zeta", "eta", "iota" };
#define NWORDS 12
static const char *seps[] = { " ", "/", "-", ", ", " ; " };

struct mhdr {
	int name; /* -1: binary name */
	int nw; /* -1: binary value */
	int w[MAXW];
};
struct mrec {
	int nh;
	struct mhdr h[MAXH];
	int vw[MAXW], nvw;
};
static struct mrec model[NREC];

static uint64_t rng;
static uint32_t rnd(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng >> 33);
}

/* Case variants of a name: as is, lower, upper. */
static void name_variant(char *out, const char *name, int v)
{
	size_t i;
	for (i = 0; name[i]; i++)
		out[i] = v == 1 ? (char)tolower((unsigned char)name[i])
			 : v == 2 ? (char)toupper((unsigned char)name[i]) : name[i];
	out[i] = 0;
}

static void append_all(struct partition *p, int from, int to)
{
	static const uint8_t bin[] = { 0x00, 0xff, 'x', 0x01 };
	for (int r = from; r < to; r++) {
		struct mrec *m = &model[r];
		char hname[MAXH][32], hval[MAXH][128], val[128];
		struct record_header_in h[MAXH];
		m->nh = (int)(rnd() % (MAXH + 1));
		for (int i = 0; i < m->nh; i++) {
			struct mhdr *mh = &m->h[i];
			mh->name = rnd() % 20 == 0 ? -1 : (int)(rnd() % NNAMES);
			mh->nw = rnd() % 15 == 0 ? -1 : (int)(rnd() % (MAXW + 1));
			if (mh->name >= 0)
				name_variant(hname[i], names[mh->name], (int)(rnd() % 3));
			size_t len = 0;
			for (int k = 0; k < mh->nw; k++) {
				mh->w[k] = (int)(rnd() % NWORDS);
				len += (size_t)sprintf(hval[i] + len, "%s%s", k ? seps[rnd() % 5] : "",
						       words[mh->w[k]]);
			}
			h[i].key = mh->name >= 0 ? hname[i] : (const char *)bin;
			h[i].key_len = mh->name >= 0 ? (int32_t)strlen(hname[i]) : (int32_t)sizeof(bin);
			h[i].value = mh->nw >= 0 ? hval[i] : (const char *)bin;
			h[i].value_len = mh->nw >= 0 ? (int32_t)len : (int32_t)sizeof(bin);
		}
		m->nvw = 1 + (int)(rnd() % MAXW);
		size_t vl = 0;
		for (int k = 0; k < m->nvw; k++) {
			m->vw[k] = (int)(rnd() % NWORDS);
			vl += (size_t)sprintf(val + vl, "%s%s", k ? " " : "", words[m->vw[k]]);
		}
		struct record_in ri = { 0, NULL, -1, val, (int32_t)vl, h, m->nh };
		int rc = engine_append_records(p, &ri, 1, NULL);
		if (rc)
			bail("append: %s", chronik_strerror(rc));
	}
}

/* ---- the model ------------------------------------------------------------ */

enum kind { WORD, PREFIX, PHRASE, EXISTS };

/* Header name n (index into names) matches query name q ignoring case. */
static bool name_is(int n, const char *q)
{
	return n >= 0 && strcasecmp(names[n], q) == 0;
}

static bool word_is(int w, const char *q, bool prefix)
{
	return prefix ? strncmp(words[w], q, strlen(q)) == 0 : strcmp(words[w], q) == 0;
}

static bool hdr_match(const struct mrec *m, const char *name, enum kind k, const char *a,
		      const char *b)
{
	for (int i = 0; i < m->nh; i++) {
		const struct mhdr *h = &m->h[i];
		if (!name_is(h->name, name))
			continue;
		if (k == EXISTS)
			return true;
		for (int j = 0; j < h->nw; j++) {
			if (k == PHRASE ? j + 1 < h->nw && word_is(h->w[j], a, false) &&
						  word_is(h->w[j + 1], b, false)
					: word_is(h->w[j], a, k == PREFIX))
				return true;
		}
	}
	return false;
}

static bool value_has(const struct mrec *m, const char *w)
{
	for (int j = 0; j < m->nvw; j++)
		if (word_is(m->vw[j], w, false))
			return true;
	return false;
}

/* ---- running ---------------------------------------------------------------- */

struct offs {
	int64_t v[NREC];
	int n;
};

static int collect(void *arg, struct partition *p, const struct engine_record *r)
{
	struct offs *o = arg;
	(void)p;
	if (o->n < NREC)
		o->v[o->n++] = r->offset;
	return 0;
}

static int failures;

/* Runs text and compares its offsets with want's; returns how many the
 * model has. */
static int check(struct engine *e, const char *what, const char *text, bool want[NREC])
{
	struct search_query *q = NULL;
	struct offs got = { .n = 0 }, exp = { .n = 0 };
	char err[256] = "";
	int rc = search_query_new(text, &q, err, sizeof(err));
	if (rc == 0)
		rc = search_run(e, "t", 0, q, collect, &got);
	search_query_free(q);
	for (int r = 0; r < NREC; r++)
		if (want[r])
			exp.v[exp.n++] = r;
	bool same = rc == 0 && got.n == exp.n &&
		    memcmp(got.v, exp.v, (size_t)exp.n * sizeof(int64_t)) == 0;
	if (!same) {
		failures++;
		diag("%s: '%s': rc %d (%s), %d hits, model %d", what, text, rc, err, got.n, exp.n);
	}
	return exp.n;
}

static void run_all(struct engine *e, const char *what)
{
	static bool want[NREC];
	char text[200];
	int before = failures, n = 0;
	/* Model hits per kind: word, phrase, NOT, OR, prefix, exists. */
	int hits[6] = { 0 };

	for (int ni = 0; ni < NNAMES; ni++) {
		char qname[32];
		name_variant(qname, names[ni], ni % 3);
		for (int w = 0; w < NWORDS; w++) {
			const char *a = words[w], *b = words[(w + 1) % NWORDS];
			for (int r = 0; r < NREC; r++)
				want[r] = hdr_match(&model[r], qname, WORD, a, NULL);
			snprintf(text, sizeof(text), "header:%s:%s", qname, a);
			hits[0] += check(e, what, text, want), n++;
			for (int r = 0; r < NREC; r++)
				want[r] = hdr_match(&model[r], qname, PHRASE, a, b);
			snprintf(text, sizeof(text), "header:%s:\"%s %s\"", qname, a, b);
			hits[1] += check(e, what, text, want), n++;
			for (int r = 0; r < NREC; r++)
				want[r] = value_has(&model[r], b) &&
					  !hdr_match(&model[r], qname, WORD, a, NULL);
			snprintf(text, sizeof(text), "value:%s NOT header:%s:%s", b, qname, a);
			hits[2] += check(e, what, text, want), n++;
			const char *other = names[(ni + 1) % NNAMES];
			for (int r = 0; r < NREC; r++)
				want[r] = hdr_match(&model[r], qname, WORD, a, NULL) ||
					  hdr_match(&model[r], other, WORD, b, NULL);
			snprintf(text, sizeof(text), "(header:%s:%s OR header:%s:%s)", qname, a, other,
				 b);
			hits[3] += check(e, what, text, want), n++;
		}
		for (int r = 0; r < NREC; r++)
			want[r] = hdr_match(&model[r], qname, PREFIX, "al", NULL);
		snprintf(text, sizeof(text), "header:%s:al*", qname);
		hits[4] += check(e, what, text, want), n++;
		for (int r = 0; r < NREC; r++)
			want[r] = hdr_match(&model[r], qname, EXISTS, NULL, NULL);
		snprintf(text, sizeof(text), "header:%s", qname);
		hits[5] += check(e, what, text, want), n++;
	}
	/* A header's words never match a plain word's query on its own. */
	for (int r = 0; r < NREC; r++)
		want[r] = value_has(&model[r], "iota");
	check(e, what, "value:iota", want), n++;
	ok(failures == before, "%s: %d header queries equal the model", what, n);
	ok(hits[0] > 0 && hits[1] > 0 && hits[2] > 0 && hits[3] > 0 && hits[4] > 0 && hits[5] > 0,
	   "%s: every kind has hits (word %d, phrase %d, NOT %d, OR %d, prefix %d, exists %d)", what,
	   hits[0], hits[1], hits[2], hits[3], hits[4], hits[5]);
}

int main(void)
{
	const char *seed_s = getenv("CHRONIK_SEARCH_SEED");
	uint64_t seed = seed_s ? strtoull(seed_s, NULL, 10) : (uint64_t)time(NULL);
	char *dir = tmpdir_new("search-header");

	diag("seed %" PRIu64 " (CHRONIK_SEARCH_SEED)", seed);
	rng = seed;
	/* WAL files of 16 KiB: several segments of the 800 indexed records. */
	struct engine *e = search_test_open(dir, 16384);
	ok(engine_topic_create(e, "t", 1, NULL) == 0, "topic t");
	struct partition *p = part_or_bail(e, "t", 0);
	append_all(p, 0, NREC * 2 / 3);
	ok(engine_index_now(e) == 0, "indexed");
	append_all(p, NREC * 2 / 3, NREC);
	struct partition_info info;
	engine_partition_info(p, &info);
	ok(info.segments >= 2 && info.wal_bytes > 0, "%" PRIu64 " segments and a tail",
	   info.segments);
	run_all(e, "indexed + tail");

	/* Bad header queries. */
	{
		struct search_query *q = NULL;
		char err[256] = "";
		ok(search_query_new("header::alpha", &q, err, sizeof(err)) == -EINVAL,
		   "header: without a name: -EINVAL (%s)", err);
		ok(search_query_new("header:user:", &q, err, sizeof(err)) == -EINVAL,
		   "header:NAME: without a word: -EINVAL (%s)", err);
		ok(search_query_new("header:user:\"alpha", &q, err, sizeof(err)) == -EINVAL,
		   "an unterminated phrase: -EINVAL (%s)", err);
	}

	/* Every segment scanned. */
	{
		struct engine_segment_info *segs;
		size_t n;
		char sdir[4200], path[4400];
		engine_partition_segment_dir(p, sdir, sizeof(sdir));
		if (engine_partition_segments(p, &segs, &n))
			bail("segments");
		int removed = 0;
		for (size_t i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/%s" SEARCH_INDEX_SUFFIX, sdir, segs[i].file);
			removed += unlink(path) == 0;
		}
		free(segs);
		ok(removed == (int)n, "all %d indexes removed", removed);
		run_all(e, "all scanned");
	}
	engine_partition_unref(p);
	ok(engine_close(e) == 0, "engine closed");
	tmpdir_free(dir);
	return tap_exit();
}
