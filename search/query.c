/* query.c - parsing a query and running it over partitions (search.h).
 *
 * One partition:
 *   1. its registered segments (engine_partition_segments): each one
 *      whose time span meets the query's range is answered by its index
 *      (index.c) when that opens and its meta matches the segment, else
 *      its records (read through an engine cursor) go into an in-memory
 *      table of the index schema;
 *   2. the records past the last segment (the WAL tail, up to the current
 *      end) go into that in-memory table too;
 *   3. the query runs on the in-memory table; the offsets from 1 and 3
 *      are sorted, and each is read back through a cursor (in offset
 *      order, a cursor reused while hits are close) to be filtered by time
 *      and handed to the caller. An offset no longer readable (compaction
 *      or retention ran meanwhile) is skipped.
 * Topic-wide: step 3 of every partition runs side by side, the record
 * with the lowest timestamp handed on first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "search-private.h"
#include "search.h"

/* Hits at most this far beyond the cursor are reached by reading on. */
#define SEEK_GAP 512

struct search_query {
	char *match; /* the FTS5 expression */
	int64_t since, until, limit; /* until exclusive; limit -1 = none */
};

__attribute__((format(printf, 3, 4))) static int set_err(char *err, size_t errlen,
							   const char *fmt, ...)
{
	va_list ap;

	if (err && errlen)
	{
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool parse_i64(const char *s, size_t n, int64_t *out)
{
	char buf[32], *end;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = 0;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* Check q->match against an empty table of the schema. */
static int check_syntax(const char *match, char *err, size_t errlen)
{
	struct fts_loader l;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = fts_memory_open(&db);

	if (rc)
		return rc;
	rc = fts_loader_init(&l, db);
	fts_loader_fini(&l);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(db, "SELECT rowid FROM records WHERE records MATCH ?", -1, &st,
			       NULL) != SQLITE_OK) {
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = set_err(err, errlen, "bad query: %s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* Copy the term t (tl bytes, outside quotes at its start) to out + *m,
 * rewriting each header:NAME[:TERM] that starts it or follows a '(' into
 * the header column's form (tokenizer.c):
 *   header:NAME:word[*]        header:"\x01NAME\x02word"[*]
 *   header:NAME:"a phrase"[*]  header:"\x01NAME\x02a phrase"[*]
 *   header:NAME                header:"\x01NAME\x02"
 * NAME runs to the next ':' or ')' and holds no '"' or '('. Each rewrite
 * grows the text by at most 3 bytes and consumes at least 8. 0 or -EINVAL. */
static int copy_term(char *out, size_t *m, const char *t, size_t tl, char *err, size_t errlen)
{
	bool in = false;

	for (size_t k = 0; k < tl;) {
		if (t[k] == '"')
			in = !in;
		if (in || (k > 0 && t[k - 1] != '(') || tl - k < 7 || memcmp(t + k, "header:", 7)) {
			out[(*m)++] = t[k++];
			continue;
		}
		size_t name = k + 7, nend = name;
		while (nend < tl && t[nend] != ':' && t[nend] != ')') {
			if (t[nend] == '"' || t[nend] == '(')
				return set_err(err, errlen, "bad query: header:NAME wants a name "
							    "without '\"' or '('");
			nend++;
		}
		if (nend == name)
			return set_err(err, errlen, "bad query: header: wants a name (header:NAME)");
		size_t v = nend, vend = nend;
		bool phrase = false;
		if (nend < tl && t[nend] == ':') {
			v = nend + 1;
			phrase = v < tl && t[v] == '"';
			if (phrase) {
				vend = ++v;
				while (vend < tl && (t[vend] != '"' || (vend + 1 < tl && t[vend + 1] == '"')))
					vend += t[vend] == '"' ? 2 : 1;
				if (vend >= tl)
					return set_err(err, errlen, "bad query: unterminated phrase");
			} else {
				for (vend = v; vend < tl && t[vend] != ')' && t[vend] != '*'; vend++)
					if (t[vend] == '"')
						return set_err(err, errlen, "bad query: header:NAME:"
									    "word holds a '\"'");
			}
			if (vend == v)
				return set_err(err, errlen, "bad query: header:NAME: wants a word");
		}
		memcpy(out + *m, "header:\"\x01", 9);
		*m += 9;
		memcpy(out + *m, t + name, nend - name);
		*m += nend - name;
		out[(*m)++] = '\x02';
		memcpy(out + *m, t + v, vend - v);
		*m += vend - v;
		out[(*m)++] = '"';
		k = vend + phrase;
		if (k < tl && t[k] == '*') {
			out[(*m)++] = '*';
			k++;
		}
	}
	return 0;
}

int search_query_new(const char *text, struct search_query **out, char *err, size_t errlen)
{
	struct search_query *q = calloc(1, sizeof(*q));
	size_t n = strlen(text), m = 0;
	bool quoted = false, any = false;
	int rc;

	if (!q || !(q->match = malloc(2 * n + 16))) {
		free(q);
		return -ENOMEM;
	}
	q->since = INT64_MIN;
	q->until = INT64_MAX;
	q->limit = -1;
	for (size_t i = 0; i < n;) {
		if (!quoted && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) {
			q->match[m++] = ' ';
			i++;
			continue;
		}
		/* One whitespace-separated term, quotes respected. */
		size_t j = i;
		bool in = quoted;
		while (j < n && (in || (text[j] != ' ' && text[j] != '\t' && text[j] != '\n'))) {
			if (text[j] == '"')
				in = !in;
			j++;
		}
		const char *t = text + i;
		size_t tl = j - i;
		int64_t v;
		if (!quoted && tl > 6 && memcmp(t, "since:", 6) == 0) {
			if (!parse_i64(t + 6, tl - 6, &v)) {
				rc = set_err(err, errlen, "bad query: since: wants milliseconds");
				goto fail;
			}
			if (v > q->since)
				q->since = v;
		} else if (!quoted && tl > 6 && memcmp(t, "until:", 6) == 0) {
			if (!parse_i64(t + 6, tl - 6, &v)) {
				rc = set_err(err, errlen, "bad query: until: wants milliseconds");
				goto fail;
			}
			if (v < q->until)
				q->until = v;
		} else if (!quoted && tl > 6 && memcmp(t, "limit:", 6) == 0) {
			if (!parse_i64(t + 6, tl - 6, &v) || v < 0) {
				rc = set_err(err, errlen, "bad query: limit: wants a count");
				goto fail;
			}
			q->limit = v;
		} else if (quoted) {
			memcpy(q->match + m, t, tl);
			m += tl;
			any = true;
		} else {
			rc = copy_term(q->match, &m, t, tl, err, errlen);
			if (rc)
				goto fail;
			any = true;
		}
		quoted = in;
		i = j;
	}
	q->match[m] = 0;
	if (!any) {
		rc = set_err(err, errlen, "bad query: no search terms");
		goto fail;
	}
	rc = check_syntax(q->match, err, errlen);
	if (rc)
		goto fail;
	*out = q;
	return 0;
fail:
	search_query_free(q);
	return rc;
}

void search_query_free(struct search_query *q)
{
	if (!q)
		return;
	free(q->match);
	free(q);
}

void search_query_since(struct search_query *q, int64_t since_ms)
{
	if (since_ms > q->since)
		q->since = since_ms;
}

void search_query_until(struct search_query *q, int64_t until_ms)
{
	if (until_ms < q->until)
		q->until = until_ms;
}

void search_query_limit(struct search_query *q, int64_t limit)
{
	if (limit >= 0 && (q->limit < 0 || limit < q->limit))
		q->limit = limit;
}

/* ---- one partition's hits ------------------------------------------------- */

struct hits {
	int64_t *v;
	size_t n, cap;
};

static int hits_push(struct hits *h, int64_t off)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		int64_t *v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = off;
	return 0;
}

/* Run match on db's records table, rowids in [lo, hi], into h. */
static int run_match(sqlite3 *db, const char *match, int64_t lo, int64_t hi, struct hits *h)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, s;

	if (sqlite3_prepare_v2(db,
			       "SELECT rowid FROM records WHERE records MATCH ?1 AND rowid >= ?2 "
			       "AND rowid <= ?3",
			       -1, &st, NULL) != SQLITE_OK) {
		log_msg(LOG_LVL_ERROR, "search", "query: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, lo);
	sqlite3_bind_int64(st, 3, hi);
	while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW)
		rc = hits_push(h, sqlite3_column_int64(st, 0));
	if (rc == 0 && s != SQLITE_DONE) {
		log_msg(LOG_LVL_ERROR, "search", "query: %s", sqlite3_errmsg(db));
		rc = -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Load the records of [from, to] (to < 0: to the current end) into l. */
static int scan_into(struct partition *p, int64_t from, int64_t to, struct fts_loader *l)
{
	struct engine_cursor *c = NULL;
	struct engine_record r;
	int rc = engine_cursor_open(p, from, &c);

	if (rc == CHRONIK_ERANGE)
		return 0;
	if (rc)
		return rc;
	while ((rc = engine_cursor_next(c, &r)) == 1) {
		if (to >= 0 && r.offset > to)
			break;
		rc = fts_loader_add(l, r.offset, r.key, r.key_len, r.value, r.value_len,
				    r.headers, r.headers_len, r.header_count);
		if (rc)
			break;
	}
	engine_cursor_close(c);
	return rc < 0 ? rc : 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int partition_hits(struct partition *p, const struct search_query *q, struct hits *h)
{
	struct engine_segment_info *segs = NULL;
	struct partition_info info;
	struct fts_loader l;
	sqlite3 *mem = NULL;
	char dir[4200];
	size_t nsegs = 0;
	int64_t tail;
	bool loaded = false;
	int rc;

	engine_partition_info(p, &info);
	engine_partition_segment_dir(p, dir, sizeof(dir));
	rc = engine_partition_segments(p, &segs, &nsegs);
	if (rc)
		return rc;
	rc = fts_memory_open(&mem);
	if (rc)
		goto out;
	rc = fts_loader_init(&l, mem);
	if (rc)
		goto out_loader;
	tail = info.log_start_offset;
	for (size_t i = 0; i < nsegs && rc == 0; i++) {
		const struct engine_segment_info *s = &segs[i];
		if (s->last_offset + 1 > tail)
			tail = s->last_offset + 1;
		if (s->max_timestamp < q->since || s->min_timestamp >= q->until)
			continue;
		sqlite3 *db = fts_index_open(dir, s);
		if (db) {
			rc = run_match(db, q->match, s->base_offset, s->last_offset, h);
			sqlite3_close(db);
		} else {
			rc = scan_into(p, s->base_offset, s->last_offset, &l);
			loaded = true;
		}
	}
	if (rc == 0)
		rc = scan_into(p, tail, -1, &l);
	if (rc == 0 && (loaded || l.records))
		rc = run_match(mem, q->match, INT64_MIN, INT64_MAX, h);
	if (rc == 0 && h->n > 1) {
		qsort(h->v, h->n, sizeof(*h->v), cmp_i64);
		size_t k = 1;
		for (size_t i = 1; i < h->n; i++)
			if (h->v[i] != h->v[k - 1])
				h->v[k++] = h->v[i];
		h->n = k;
	}
out_loader:
	fts_loader_fini(&l);
out:
	sqlite3_close(mem);
	free(segs);
	return rc;
}

/* ---- reading the hits back ------------------------------------------------ */

struct pstate {
	struct partition *p;
	struct hits h;
	size_t i;
	struct engine_cursor *c;
	int64_t pos; /* the offset the cursor reads next (at least) */
	struct engine_record r;
	bool have;
};

/* Move ps to its next hit in the time range: 1 (ps->r), 0 none left, <0. */
static int ps_next(struct pstate *ps, const struct search_query *q)
{
	int rc;

	for (;;) {
		if (ps->i >= ps->h.n)
			return ps->have = false, 0;
		int64_t want = ps->h.v[ps->i];
		if (!ps->c || want < ps->pos || want - ps->pos > SEEK_GAP) {
			engine_cursor_close(ps->c);
			ps->c = NULL;
			rc = engine_cursor_open(ps->p, want, &ps->c);
			if (rc == CHRONIK_ERANGE)
				return ps->have = false, 0;
			if (rc)
				return rc;
			ps->pos = want;
		}
		rc = engine_cursor_next(ps->c, &ps->r);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return ps->have = false, 0;
		ps->pos = ps->r.offset + 1;
		while (ps->i < ps->h.n && ps->h.v[ps->i] < ps->r.offset)
			ps->i++; /* gone meanwhile */
		if (ps->i < ps->h.n && ps->h.v[ps->i] == ps->r.offset) {
			ps->i++;
			if (ps->r.timestamp >= q->since && ps->r.timestamp < q->until)
				return ps->have = true, 1;
		}
	}
}

int search_run(struct engine *e, const char *topic, int32_t partition, const struct search_query *q,
	       search_hit_fn fn, void *arg)
{
	struct pstate *ps = NULL;
	int32_t np, first, count;
	int64_t sent = 0;
	int rc;

	rc = engine_topic_partitions(e, topic, &np);
	if (rc)
		return rc;
	if (partition >= np)
		return -ENOENT;
	first = partition < 0 ? 0 : partition;
	count = partition < 0 ? np : 1;
	ps = calloc((size_t)count, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	for (int32_t i = 0; i < count && rc == 0; i++) {
		rc = engine_partition_get(e, topic, first + i, &ps[i].p);
		if (rc == 0)
			rc = partition_hits(ps[i].p, q, &ps[i].h);
		if (rc == 0 && q->limit != 0)
			{
			int n = ps_next(&ps[i], q);
			rc = n < 0 ? n : 0;
		}
	}
	while (rc == 0 && (q->limit < 0 || sent < q->limit)) {
		struct pstate *best = NULL;
		for (int32_t i = 0; i < count; i++)
			if (ps[i].have && (!best || ps[i].r.timestamp < best->r.timestamp))
				best = &ps[i];
		if (!best)
			break;
		rc = fn(arg, best->p, &best->r);
		sent++;
		if (rc == 0) {
			int n = ps_next(best, q);
			if (n < 0)
				rc = n;
		}
	}
	for (int32_t i = 0; i < count; i++) {
		engine_cursor_close(ps[i].c);
		if (ps[i].p)
			engine_partition_unref(ps[i].p);
		free(ps[i].h.v);
	}
	free(ps);
	return rc;
}
