/* query.c - parsing a query and running it over partitions (search.h).
 *
 * One partition:
 *   1. its registered segments (engine_partition_segments): each one
 *      whose time span meets the query's range is answered by its index
 *      (index.c; its handle kept open between queries: INDEX HANDLES)
 *      when that opens and its meta matches the segment
 *      (EXACT ANSWERS below), else its records (read through an engine
 *      cursor) go into an in-memory table of the index schema with
 *      detail=full;
 *   2. the records past the last segment (the WAL tail, up to the current
 *      end) go into that in-memory table too;
 *   3. the query runs on the in-memory table; the offsets from 1 and 3
 *      are sorted, and each is read back through a cursor (in offset
 *      order, a cursor reused while hits are close) to be filtered by time
 *      and handed to the caller. An offset no longer readable (compaction
 *      or retention ran meanwhile) is skipped.
 * Topic-wide: step 3 of every partition runs side by side, the record
 * with the lowest timestamp handed on first.
 *
 * EXACT ANSWERS. An index holds no positions and no columns (detail=none,
 * index.c), so FTS5 refuses there phrases of more than one token, NEAR,
 * ^ and column filters. search_query_new therefore also makes a relaxed
 * form of the query (relax, below), which matches a superset of the
 * records the query matches, and notes whether it matches exactly the
 * same ones:
 *   - a phrase "a b c" (or a + b + c) becomes ("a" AND "b" AND "c"), a
 *     '*' after a string marking the phrase's last token so far (as FTS5
 *     does: fo + "@"* is fo*); one of at most one token is exact;
 *   - a phrase with no token ("@", "-", header:NAME:"@") is FTS5's empty
 *     phrase, whose node matches nothing (fts5_expr.c, FTS5_EOF) but
 *     which FTS5's parser drops from an implicit AND and from NEAR when
 *     another operand has a token (sqlite3Fts5ParseImplicitAnd,
 *     sqlite3Fts5ParseNearset): so does the relaxation; one left alone,
 *     or under an explicit AND, OR or NOT, becomes "", which matches
 *     nothing there too (a AND "@": nothing; a OR "@", a NOT "@": a);
 *   - NEAR(p q ..., N) becomes the AND of its phrases relaxed, ^p becomes
 *     p relaxed: never exact;
 *   - a column filter (col:, {a b}:, -col:) is dropped: exact only when
 *     it takes the column header and every token under it is a header
 *     token (tokenizer.c: 0x01 name 0x02 word, which occurs in no other
 *     column), as header:NAME:word and header:NAME are;
 *   - a NOT b becomes a' NOT b when b is exact (inside a filter: made of
 *     header tokens, every filter around it taking the header column;
 *     see rx_not), else a' (dropping the NOT only adds rows); AND, OR and
 *     implicit AND keep their operands relaxed, exact when both are;
 *     every node is parenthesized.
 * The parser follows FTS5's grammar (fts5parse.y: OR below AND below NOT,
 * all left-associative; juxtaposed phrases, an implicit AND, bind
 * tightest; its lexer's barewords, strings and keywords), and the tokens
 * of every string are the tokenizer's own (fts_query_tokenize), so the
 * relaxed form is a superset by construction. A query it does not follow,
 * or whose relaxed form a detail=none table refuses, is logged and has
 * none: every segment is then scanned (exact, slow).
 * On a segment with an index, an exact relaxed query's rows are the hits.
 * Otherwise they are only candidates: each candidate's record is read
 * back from the segment (in offset order, a cursor reused while they are
 * close; those outside the time range skipped) into the in-memory
 * detail=full table of step 2, where the query itself runs in step 3. So
 * every answer is FTS5's own on the records' text, with the same
 * tokenizer: phrases, NEAR and column filters mean the same on indexed
 * segments, scanned ones and the tail; a query the index answers exactly
 * costs no reading, one it does not costs reading its candidates.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "search-private.h"
#include "search.h"

/* Hits at most this far beyond the cursor are reached by reading on. */
#define SEEK_GAP 512

struct search_query {
	char *match; /* the FTS5 expression */
	char *relaxed; /* match relaxed for the indexes (NULL: scan them) */
	bool exact; /* relaxed matches exactly the rows match does */
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

/* Check match against an empty table of the schema: with file (an
 * index's, detail=none) quietly, 0 or -EINVAL. */
static int check_syntax(const char *match, bool file, char *err, size_t errlen)
{
	struct fts_loader l;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = fts_memory_open(&db);

	if (rc)
		return rc;
	rc = fts_loader_init(&l, db, file);
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
		rc = file ? -EINVAL : set_err(err, errlen, "bad query: %s", sqlite3_errmsg(db));
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

/* ---- the relaxed query (EXACT ANSWERS) -------------------------------------- */

/* A token of FTS5's query lexer: whitespace is ' ', TAB, LF, CR; a
 * bareword is a run of [0-9A-Za-z_], 0x1A and bytes >= 0x80, and AND, OR,
 * NOT (exactly so written) are keywords; "..." a string ("" a quote). */
enum rtok { R_END, R_STR, R_LP, R_RP, R_LCP, R_RCP, R_COLON, R_COMMA, R_PLUS, R_STAR, R_CARET,
	    R_MINUS, R_AND, R_OR, R_NOT, R_ERR };

struct rlex {
	const char *s;
	size_t i; /* where the next token starts */
	enum rtok tok;
	const char *t; /* the current token's text (a string's with its quotes) */
	size_t tl;
};

/* The result of relaxing one subexpression. */
struct rx {
	struct fts_buf b; /* its relaxed text, every node parenthesized */
	bool exact; /* it matches exactly the rows the original does */
	bool hdr; /* every token of the original is a header token (0x01...) */
	bool empty; /* a nearset with no token: FTS5's empty phrase (EXACT ANSWERS) */
};

struct relaxer {
	struct rlex lx;
	sqlite3 *db; /* for the tokenizer */
	int rc;
	int filters; /* column filters open around the token being parsed */
	int hdr_out; /* of them, those whose columns leave out header */
};

static bool is_bare(unsigned char c)
{
	return c >= 0x80 || c == 0x1a || c == '_' || (c >= '0' && c <= '9') ||
	       (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void rlex_next(struct rlex *x)
{
	const char *s = x->s;
	size_t i = x->i;

	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	x->t = s + i;
	x->tl = 1;
	switch (s[i]) {
	case 0: x->tok = R_END; x->tl = 0; break;
	case '(': x->tok = R_LP; break;
	case ')': x->tok = R_RP; break;
	case '{': x->tok = R_LCP; break;
	case '}': x->tok = R_RCP; break;
	case ':': x->tok = R_COLON; break;
	case ',': x->tok = R_COMMA; break;
	case '+': x->tok = R_PLUS; break;
	case '*': x->tok = R_STAR; break;
	case '^': x->tok = R_CARET; break;
	case '-': x->tok = R_MINUS; break;
	case '"': {
		size_t j = i + 1;
		for (;;) {
			if (!s[j]) {
				x->tok = R_ERR;
				break;
			}
			if (s[j] == '"' && s[j + 1] != '"') {
				x->tok = R_STR;
				break;
			}
			j += s[j] == '"' ? 2 : 1;
		}
		x->tl = j + 1 - i;
		break;
	}
	default:
		if (!is_bare((unsigned char)s[i])) {
			x->tok = R_ERR;
			break;
		}
		while (is_bare((unsigned char)s[i + x->tl]))
			x->tl++;
		x->tok = R_STR;
		if (x->tl == 2 && !memcmp(x->t, "OR", 2))
			x->tok = R_OR;
		else if (x->tl == 3 && !memcmp(x->t, "AND", 3))
			x->tok = R_AND;
		else if (x->tl == 3 && !memcmp(x->t, "NOT", 3))
			x->tok = R_NOT;
	}
	x->i = i + (x->tok == R_ERR ? 0 : x->tl);
}

/* The token after the current one. */
static enum rtok rlex_peek(const struct rlex *x)
{
	struct rlex y = *x;
	rlex_next(&y);
	return y.tok;
}

/* Append s (n bytes) to b; once out of memory, nothing more. */
static int rput(struct relaxer *r, struct fts_buf *b, const char *s, size_t n)
{
	if (r->rc)
		return r->rc;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->s, cap);
		if (!p)
			return r->rc = -ENOMEM;
		b->s = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->s + b->len, s, n);
	b->len += n;
	return 0;
}

static void rx_free(struct rx *a)
{
	free(a->b.s);
	memset(&a->b, 0, sizeof(a->b));
}

/* a = "(" a op b ")", flags combined; b freed. */
static void rx_join(struct relaxer *r, struct rx *a, const char *op, struct rx *b)
{
	struct fts_buf o = { 0 };

	rput(r, &o, "(", 1);
	rput(r, &o, a->b.s, a->b.len);
	rput(r, &o, op, strlen(op));
	rput(r, &o, b->b.s, b->b.len);
	rput(r, &o, ")", 1);
	rx_free(a);
	a->b = o;
	a->exact = a->exact && b->exact;
	a->hdr = a->hdr && b->hdr;
	a->empty = false;
	rx_free(b);
}

static bool rfail(struct relaxer *r)
{
	if (!r->rc)
		r->rc = -EINVAL;
	return false;
}

/* The current string token's text, dequoted, into d. */
static int rstring(struct relaxer *r, struct fts_buf *d)
{
	const char *t = r->lx.t;
	size_t n = r->lx.tl;

	d->len = 0;
	if (t[0] != '"')
		return rput(r, d, t, n);
	for (size_t k = 1; k + 1 < n; k++) {
		rput(r, d, t + k, 1);
		k += t[k] == '"';
	}
	return r->rc;
}

struct rphrase {
	struct relaxer *r;
	struct rx *out;
	int tokens; /* of the whole phrase so far */
	bool star; /* the last of them is a prefix (its '*' not written yet) */
};

/* Append token t to the phrase's relaxed text as an FTS5 string (quotes
 * doubled), ANDed to the ones before. */
static int phrase_token(void *arg, const char *t, int n)
{
	struct rphrase *ph = arg;
	struct relaxer *r = ph->r;

	if (ph->star)
		rput(r, &ph->out->b, "*", 1);
	ph->star = false;
	if (ph->tokens++)
		rput(r, &ph->out->b, " AND ", 5);
	rput(r, &ph->out->b, "\"", 1);
	for (int k = 0; k < n; k++)
		rput(r, &ph->out->b, t[k] == '"' ? "\"\"" : t + k, t[k] == '"' ? 2 : 1);
	rput(r, &ph->out->b, "\"", 1);
	ph->out->hdr = ph->out->hdr && n > 0 && t[0] == 0x01;
	return r->rc != 0;
}

/* phrase := STRING [*] { + STRING [*] }: the AND of its tokens, the
 * last token so far a prefix when a string is followed by '*' (FTS5 sets
 * the flag after each string, on whatever token is last then: fo + "@"*
 * is fo*, fo* + "@" is fo); exact when it has at most one token. With
 * none it is FTS5's empty phrase (out->empty): "". */
static bool rx_phrase(struct relaxer *r, struct rx *out)
{
	struct rphrase ph = { r, out, 0, false };
	struct fts_buf d = { 0 };

	out->hdr = true;
	rput(r, &out->b, "(", 1);
	for (;;) {
		if (r->lx.tok != R_STR)
			return free(d.s), rfail(r);
		if (rstring(r, &d) ||
		    (r->rc = fts_query_tokenize(r->db, d.s ? d.s : "", (int)d.len, phrase_token, &ph)))
			return free(d.s), false;
		rlex_next(&r->lx);
		bool star = r->lx.tok == R_STAR;
		if (star)
			rlex_next(&r->lx);
		if (ph.tokens)
			ph.star = star;
		if (r->lx.tok != R_PLUS)
			break;
		rlex_next(&r->lx);
	}
	free(d.s);
	if (ph.star)
		rput(r, &out->b, "*", 1);
	if (!ph.tokens)
		rput(r, &out->b, "\"\"", 2);
	rput(r, &out->b, ")", 1);
	out->exact = ph.tokens <= 1;
	out->empty = ph.tokens == 0;
	return r->rc == 0;
}

/* Add b to out as an operand of an implicit AND (or of NEAR): FTS5's
 * parser drops an empty one (sqlite3Fts5ParseImplicitAnd), unless every
 * operand is empty. b freed. */
static void rx_and_operand(struct relaxer *r, struct rx *out, struct rx *b)
{
	if (b->empty) {
		rx_free(b);
	} else if (out->empty) {
		rx_free(out);
		*out = *b;
	} else {
		rx_join(r, out, " AND ", b);
	}
}

/* nearset := ^ phrase | NEAR ( phrase phrase ... [, N] ) | phrase. ^ and
 * NEAR need positions: relaxed to the phrase(s) ANDed, never exact. As
 * FTS5 does (sqlite3Fts5ParseNearset), NEAR drops its empty phrases
 * while another has a token: it is empty only when all of them are. */
static bool rx_nearset(struct relaxer *r, struct rx *out)
{
	if (r->lx.tok == R_CARET) {
		rlex_next(&r->lx);
		if (!rx_phrase(r, out))
			return false;
		out->exact = false;
		return true;
	}
	if (r->lx.tok == R_STR && r->lx.tl == 4 && !memcmp(r->lx.t, "NEAR", 4) &&
	    rlex_peek(&r->lx) == R_LP) {
		rlex_next(&r->lx);
		rlex_next(&r->lx);
		if (!rx_phrase(r, out))
			return false;
		while (r->lx.tok == R_STR) {
			struct rx b = { .b = { 0 } };
			if (!rx_phrase(r, &b))
				return rx_free(&b), false;
			rx_and_operand(r, out, &b);
		}
		if (r->lx.tok == R_COMMA) {
			rlex_next(&r->lx);
			if (r->lx.tok != R_STR)
				return rfail(r);
			rlex_next(&r->lx);
		}
		if (r->lx.tok != R_RP)
			return rfail(r);
		rlex_next(&r->lx);
		out->exact = false;
		return r->rc == 0;
	}
	return rx_phrase(r, out);
}

static bool rx_or(struct relaxer *r, struct rx *out);

/* The current token starts a column filter: colset ':' where colset is
 * [-] STRING or [-] { STRING... }. */
static bool at_colset(const struct relaxer *r)
{
	struct rlex y = r->lx;

	if (y.tok == R_MINUS)
		rlex_next(&y);
	if (y.tok == R_LCP)
		return true;
	return y.tok == R_STR && rlex_peek(&y) == R_COLON;
}

/* colset ':' ( nearset | '(' expr ')' ). The detail=none index has no
 * columns: the filter is dropped (a superset), which is exact only when
 * the colset takes the column header and every token under it is a
 * header token: those occur in no other column (tokenizer.c). */
static bool rx_filtered(struct relaxer *r, struct rx *out)
{
	struct fts_buf d = { 0 };
	bool neg = false, header = false;

	if (r->lx.tok == R_MINUS) {
		neg = true;
		rlex_next(&r->lx);
	}
	bool list = r->lx.tok == R_LCP;
	if (list)
		rlex_next(&r->lx);
	do {
		if (r->lx.tok != R_STR || rstring(r, &d))
			return free(d.s), rfail(r);
		header = header || (d.len == 6 && !strncasecmp(d.s, "header", 6));
		rlex_next(&r->lx);
	} while (list && r->lx.tok != R_RCP);
	free(d.s);
	if (list)
		rlex_next(&r->lx);
	if (r->lx.tok != R_COLON)
		return rfail(r);
	rlex_next(&r->lx);
	bool hdr_out = header == neg; /* the colset leaves out header */
	r->filters++;
	r->hdr_out += hdr_out;
	bool fine;
	if (r->lx.tok == R_LP) {
		rlex_next(&r->lx);
		fine = rx_or(r, out) && (r->lx.tok == R_RP || rfail(r));
		if (fine)
			rlex_next(&r->lx);
		out->empty = false; /* an expression, not a nearset */
	} else {
		fine = rx_nearset(r, out);
	}
	r->filters--;
	r->hdr_out -= hdr_out;
	if (!fine)
		return false;
	out->exact = out->exact && out->hdr && header != neg;
	return true;
}

/* primary := '(' expr ')' | exprlist, exprlist := cnearset { cnearset }
 * (implicit AND), cnearset := [colset ':'] nearset. FTS5 accepts
 * colset ':' '(' expr ')' only as a primary; accepting it inside an
 * exprlist as well changes nothing for a query FTS5 took. */
static bool rx_primary(struct relaxer *r, struct rx *out)
{
	if (r->lx.tok == R_LP) {
		rlex_next(&r->lx);
		if (!rx_or(r, out))
			return false;
		if (r->lx.tok != R_RP)
			return rfail(r);
		rlex_next(&r->lx);
		out->empty = false; /* an expression, not a nearset */
		return true;
	}
	bool first = true;
	while (r->lx.tok == R_STR || r->lx.tok == R_CARET || r->lx.tok == R_LCP ||
	       r->lx.tok == R_MINUS) {
		struct rx b = { .b = { 0 } };
		if (!(at_colset(r) ? rx_filtered(r, &b) : rx_nearset(r, &b)))
			return rx_free(&b), false;
		if (first) {
			*out = b;
			first = false;
		} else
			rx_and_operand(r, out, &b);
	}
	return first ? rfail(r) : r->rc == 0;
}

/* not := primary { NOT primary } (left-associative, tightest). A NOT
 * whose right side is not exact is dropped: a NOT b relaxed is a', a
 * superset; with b exact it is a' NOT b. Inside a column filter, which
 * the relaxation drops, b counts as exact only when it is made of header
 * tokens (found in no other column) and every filter around it takes the
 * header column: value:(a NOT b) holds for a record with b in its key,
 * which a NOT b over every column would leave out, and FTS5 intersects
 * nested column sets, so under value:, key:, -header: or {key value}: a
 * header:NAME matches nothing and value:(a NOT header:NAME) is value:a. */
static bool rx_not(struct relaxer *r, struct rx *out)
{
	if (!rx_primary(r, out))
		return false;
	while (r->lx.tok == R_NOT) {
		struct rx b = { .b = { 0 } };
		rlex_next(&r->lx);
		if (!rx_primary(r, &b))
			return rx_free(&b), false;
		if (b.exact && (r->filters == 0 || (b.hdr && r->hdr_out == 0)))
			rx_join(r, out, " NOT ", &b);
		else {
			out->exact = false;
			out->hdr = out->hdr && b.hdr;
			rx_free(&b);
		}
	}
	return r->rc == 0;
}

/* and := not { AND not } */
static bool rx_and(struct relaxer *r, struct rx *out)
{
	if (!rx_not(r, out))
		return false;
	while (r->lx.tok == R_AND) {
		struct rx b = { .b = { 0 } };
		rlex_next(&r->lx);
		if (!rx_not(r, &b))
			return rx_free(&b), false;
		rx_join(r, out, " AND ", &b);
	}
	return r->rc == 0;
}

/* or := and { OR and } */
static bool rx_or(struct relaxer *r, struct rx *out)
{
	if (!rx_and(r, out))
		return false;
	while (r->lx.tok == R_OR) {
		struct rx b = { .b = { 0 } };
		rlex_next(&r->lx);
		if (!rx_and(r, &b))
			return rx_free(&b), false;
		rx_join(r, out, " OR ", &b);
	}
	return r->rc == 0;
}

/* Relax match (valid for FTS5 with detail=full) into *relaxed (malloc'd;
 * valid on a detail=none index) and *exact. db: a connection with the
 * tokenizer. 0 or <0 (a query this parser does not follow: -EINVAL). */
static int relax(sqlite3 *db, const char *match, char **relaxed, bool *exact)
{
	struct relaxer r = { .lx = { .s = match }, .db = db, .rc = 0 };
	struct rx out = { .b = { 0 } };

	rlex_next(&r.lx);
	if (!rx_or(&r, &out) || r.lx.tok != R_END || rput(&r, &out.b, "", 1)) {
		rx_free(&out);
		return r.rc ? r.rc : -EINVAL;
	}
	*relaxed = out.b.s;
	*exact = out.exact;
	return 0;
}

/* q->relaxed and q->exact for q->match. A query relax does not follow, or
 * whose relaxed form an index refuses, is logged and left NULL: the
 * indexes are then not used (every segment scanned: exact, slow). 0 or
 * -ENOMEM. */
static int make_relaxed(struct search_query *q)
{
	sqlite3 *db = NULL;
	int rc = fts_memory_open(&db);

	if (rc == 0)
		rc = relax(db, q->match, &q->relaxed, &q->exact);
	sqlite3_close(db);
	if (rc == 0 && check_syntax(q->relaxed, true, NULL, 0)) {
		free(q->relaxed);
		q->relaxed = NULL;
		rc = -EINVAL;
	}
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		log_msg(LOG_LVL_WARN, "search", "query '%s' not relaxed for the indexes (%s): "
			"every segment is scanned", q->match, chronik_strerror(rc));
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
	rc = check_syntax(q->match, false, err, errlen);
	if (rc)
		goto fail;
	rc = make_relaxed(q);
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
	free(q->relaxed);
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

/* Load the records at the offsets c (ascending) into l, those in q's time
 * range; an offset no longer there is skipped. */
static int load_offsets(struct partition *p, const struct hits *c, const struct search_query *q,
			struct fts_loader *l)
{
	struct engine_cursor *cur = NULL;
	struct engine_record r;
	int64_t pos = 0; /* the offset cur reads next (at least) */
	bool have = false; /* r holds the record read last */
	size_t i = 0;
	int rc = 0;

	while (i < c->n) {
		int64_t want = c->v[i];
		if (have && r.offset >= want) {
			if (r.offset == want && r.timestamp >= q->since && r.timestamp < q->until &&
			    (rc = fts_loader_add(l, r.offset, r.key, r.key_len, r.value, r.value_len,
						 r.headers, r.headers_len, r.header_count)))
				break;
			i++;
			continue;
		}
		if (!cur || want - pos > SEEK_GAP) {
			engine_cursor_close(cur);
			cur = NULL;
			have = false;
			rc = engine_cursor_open(p, want, &cur);
			if (rc == CHRONIK_ERANGE)
				rc = 0; /* past the end: so are the rest */
			if (rc)
				break;
			if (!cur)
				break;
			pos = want;
		}
		rc = engine_cursor_next(cur, &r);
		if (rc <= 0)
			break;
		rc = 0;
		have = true;
		pos = r.offset + 1;
	}
	engine_cursor_close(cur);
	return rc;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- index handles ---------------------------------------------------------- */

/* INDEX HANDLES. Opening an index (sqlite3_open_v2, the tokenizer, the
 * schema, four meta reads) costs about what a selective query on it does,
 * so the handles of the last CACHE_MAX indexes queried stay open, shared
 * by every engine of the process. An entry holds the index file's path,
 * its identity when opened (device, inode, size, modification time) and
 * the segment its meta matched (base and last offset, records). A query
 * takes the entry of each index it reads out of the cache (so a handle
 * serves one query at a time; a second query of the same index meanwhile
 * opens its own) and only when the file's identity (stat) and the
 * segment still match, else closes it and opens the index anew; it gives
 * the handle back after its query (a handle of the same path already back
 * meanwhile: the newer one is closed; a full cache closes the one least
 * recently used: a query over more than CACHE_MAX indexes in a row keeps
 * none of them). Each handle's page cache is at most CACHE_PAGES_KIB.
 * fts_cache_prune, at the start of every search_run and at each builder
 * sweep, closes the entries whose file is gone or changed: a segment
 * removed (retention, compaction, topic deletion) leaves no open index
 * behind past the next query or sweep. */
#define CACHE_MAX 64
#define CACHE_PAGES_KIB 128

struct cached {
	char path[4400];
	struct stat st;
	int64_t base, last;
	uint64_t records;
	sqlite3 *db;
	uint64_t used; /* cache_tick when given back */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached *cache[CACHE_MAX];
static int cache_n;
static uint64_t cache_tick;

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void cached_free(struct cached *c)
{
	if (c) {
		sqlite3_close(c->db);
		free(c);
	}
}

void fts_cache_prune(void)
{
	struct cached *gone[CACHE_MAX];
	int ngone = 0;
	struct stat st;

	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < cache_n;) {
		if (stat(cache[i]->path, &st) == 0 && same_file(&st, &cache[i]->st)) {
			i++;
			continue;
		}
		gone[ngone++] = cache[i];
		cache[i] = cache[--cache_n];
	}
	pthread_mutex_unlock(&cache_lock);
	for (int i = 0; i < ngone; i++)
		cached_free(gone[i]);
}

/* The handle of segment s's index (in dir), from the cache or opened:
 * NULL when there is none usable (fts_index_open). Give it back with
 * index_give. */
static struct cached *index_take(const char *dir, const struct engine_segment_info *s)
{
	struct cached *c = NULL;
	struct stat st;
	char path[4400];

	snprintf(path, sizeof(path), "%s/%s" SEARCH_INDEX_SUFFIX, dir, s->file);
	if (stat(path, &st) != 0)
		return NULL;
	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < cache_n; i++)
		if (strcmp(cache[i]->path, path) == 0) {
			c = cache[i];
			cache[i] = cache[--cache_n];
			break;
		}
	pthread_mutex_unlock(&cache_lock);
	if (c && same_file(&st, &c->st) && c->base == s->base_offset && c->last == s->last_offset &&
	    c->records == s->records)
		return c;
	cached_free(c);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->db = fts_index_open(dir, s);
	if (!c->db) {
		free(c);
		return NULL;
	}
	char pragma[64];
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size=-%d", CACHE_PAGES_KIB);
	sqlite3_exec(c->db, pragma, NULL, NULL, NULL);
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->st = st;
	c->base = s->base_offset;
	c->last = s->last_offset;
	c->records = s->records;
	return c;
}

static void index_give(struct cached *c)
{
	struct cached *drop = NULL;

	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < cache_n && !drop; i++)
		if (strcmp(cache[i]->path, c->path) == 0)
			drop = c; /* another query's handle came back first */
	if (!drop && cache_n == CACHE_MAX) {
		int lru = 0;
		for (int i = 1; i < cache_n; i++)
			if (cache[i]->used < cache[lru]->used)
				lru = i;
		drop = cache[lru];
		cache[lru] = cache[--cache_n];
	}
	if (drop != c) {
		c->used = ++cache_tick;
		cache[cache_n++] = c;
	}
	pthread_mutex_unlock(&cache_lock);
	cached_free(drop);
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
	rc = fts_loader_init(&l, mem, false);
	if (rc)
		goto out_loader;
	tail = info.log_start_offset;
	for (size_t i = 0; i < nsegs && rc == 0; i++) {
		const struct engine_segment_info *s = &segs[i];
		if (s->last_offset + 1 > tail)
			tail = s->last_offset + 1;
		if (s->max_timestamp < q->since || s->min_timestamp >= q->until)
			continue;
		struct cached *c = q->relaxed ? index_take(dir, s) : NULL;
		if (c && q->exact) {
			rc = run_match(c->db, q->relaxed, s->base_offset, s->last_offset, h);
			index_give(c);
		} else if (c) {
			struct hits cand = { NULL, 0, 0 };
			rc = run_match(c->db, q->relaxed, s->base_offset, s->last_offset, &cand);
			index_give(c);
			if (rc == 0)
				rc = load_offsets(p, &cand, q, &l);
			free(cand.v);
			loaded = true;
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

	fts_cache_prune();
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
