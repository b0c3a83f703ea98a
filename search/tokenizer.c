/* tokenizer.c - the FTS5 tokenizer "chronik" every search table uses.
 *
 * It is unicode61 (arguments passed on: remove_diacritics 0 tokenchars
 * '_') with one addition, for the header column (index.c) and the
 * header:NAME filter (query.c):
 *
 * HEADER TEXT. A text that starts with the byte 0x01 is a list of
 * headers:
 *     0x01 { NAME 0x02 VALUE 0x03 }...
 * NAME and VALUE are header text (index.c: no control byte other than
 * TAB, LF, CR, ESC, so 0x01-0x03 cannot occur in them); VALUE may be
 * empty.
 * For each header, in order, the tokens are
 *     0x01 name 0x02              the header is there
 *     0x01 name 0x02 t            for each unicode61 token t of VALUE
 *     0x01                        the end of the header
 * where name is NAME with ASCII letters folded to lower case. So a
 * header's value tokens are consecutive (phrases and NEAR work within one
 * header) and never adjacent to another header's; no token of ordinary
 * text starts with 0x01, so ordinary words never match in the header
 * column and header tokens never match anything else.
 *
 * QUERY. In a query (FTS5_TOKENIZE_QUERY), a header text of one header
 * 0x01 NAME 0x02 VALUE yields only the value's tokens 0x01 name 0x02 t
 * (none when VALUE has no word: the phrase is then an empty one, which
 * FTS5 drops from an implicit AND and from NEAR and which otherwise
 * matches nothing), or, when VALUE is empty, the presence token
 * 0x01 name 0x02. So the
 * FTS5 string "\x01Name\x02a b" is the phrase "a b" inside a header
 * called name, and "\x01Name\x02" is "has a header called name".
 *
 * Anything else is tokenized by unicode61 unchanged.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "search-private.h"

/* unicode61, as found in the connection. */
struct base {
	fts5_tokenizer x;
	void *ud;
};

struct tok {
	fts5_tokenizer base;
	Fts5Tokenizer *inner;
};

struct emit {
	void *ctx;
	int (*x)(void *, int, const char *, int, int, int);
	char *buf; /* 0x01 name 0x02, then the token */
	int prefix, cap, count;
};

static int emit_put(struct emit *em, const char *t, int n, int flags, int start, int end)
{
	if (em->prefix + n > em->cap) {
		int cap = (em->prefix + n) * 2;
		char *b = realloc(em->buf, (size_t)cap);
		if (!b)
			return SQLITE_NOMEM;
		em->buf = b;
		em->cap = cap;
	}
	memcpy(em->buf + em->prefix, t, (size_t)n);
	em->count++;
	return em->x(em->ctx, flags, em->buf, em->prefix + n, start, end);
}

static int emit_value_token(void *arg, int flags, const char *t, int n, int start, int end)
{
	return emit_put(arg, t, n, flags, start, end);
}

static int tok_create(void *ud, const char **argv, int argc, Fts5Tokenizer **out)
{
	struct base *base = ud;
	struct tok *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return SQLITE_NOMEM;
	t->base = base->x;
	rc = base->x.xCreate(base->ud, argv, argc, &t->inner);
	if (rc != SQLITE_OK) {
		free(t);
		return rc;
	}
	*out = (Fts5Tokenizer *)t;
	return SQLITE_OK;
}

static void tok_delete(Fts5Tokenizer *p)
{
	struct tok *t = (struct tok *)p;

	t->base.xDelete(t->inner);
	free(t);
}

static int tok_headers(struct tok *t, void *ctx, int flags, const char *s, int n,
		       int (*x)(void *, int, const char *, int, int, int))
{
	struct emit em = { ctx, x, NULL, 0, 0, 0 };
	bool query = flags & FTS5_TOKENIZE_QUERY;
	int i = 1, rc = SQLITE_OK;

	while (i < n && rc == SQLITE_OK) {
		int name = i, nend, vend;
		for (nend = name; nend < n && s[nend] != 0x02; nend++)
			;
		for (vend = nend < n ? nend + 1 : n; vend < n && s[vend] != 0x03; vend++)
			;
		int nlen = nend - name, cap = nlen + 2 + 64;
		char *b = realloc(em.buf, (size_t)cap);
		if (!b)
			return free(em.buf), SQLITE_NOMEM;
		em.buf = b;
		em.cap = cap;
		em.buf[0] = 0x01;
		for (int k = 0; k < nlen; k++) {
			char c = s[name + k];
			em.buf[1 + k] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		em.buf[1 + nlen] = 0x02;
		em.prefix = nlen + 2;
		em.count = 0;
		if (!query)
			rc = x(ctx, 0, em.buf, em.prefix, name, nend);
		if (rc == SQLITE_OK && nend + 1 < vend)
			rc = t->base.xTokenize(t->inner, &em, flags, s + nend + 1, vend - nend - 1,
					       emit_value_token);
		if (rc == SQLITE_OK && query && nend + 1 >= vend)
			rc = x(ctx, 0, em.buf, em.prefix, name, nend);
		if (rc == SQLITE_OK && !query)
			rc = x(ctx, 0, "\x01", 1, vend, vend);
		i = vend + 1;
		if (query)
			break; /* one header per query string */
	}
	free(em.buf);
	return rc;
}

static int tok_tokenize(Fts5Tokenizer *p, void *ctx, int flags, const char *s, int n,
			int (*x)(void *, int, const char *, int, int, int))
{
	struct tok *t = (struct tok *)p;

	if (n > 0 && s[0] == 0x01)
		return tok_headers(t, ctx, flags, s, n, x);
	return t->base.xTokenize(t->inner, ctx, flags, s, n, x);
}

static fts5_api *fts5_api_get(sqlite3 *db)
{
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_pointer(st, 1, &api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	return api;
}

int fts_tokenizer_register(sqlite3 *db)
{
	fts5_api *api = fts5_api_get(db);
	struct base *base;

	if (!api)
		return -EIO;
	base = malloc(sizeof(*base));
	if (!base)
		return -ENOMEM;
	if (api->xFindTokenizer(api, "unicode61", &base->ud, &base->x) != SQLITE_OK) {
		free(base);
		return -EIO;
	}
	fts5_tokenizer mine = { tok_create, tok_delete, tok_tokenize };
	if (api->xCreateTokenizer(api, "chronik", base, &mine, free) != SQLITE_OK) {
		free(base);
		return -EIO;
	}
	return 0;
}

struct qtok {
	int (*fn)(void *, const char *, int);
	void *arg;
};

static int qtok_token(void *ctx, int flags, const char *t, int n, int start, int end)
{
	struct qtok *q = ctx;

	(void)start;
	(void)end;
	if (flags & FTS5_TOKEN_COLOCATED)
		return SQLITE_OK; /* a synonym of the previous token: none here */
	return q->fn(q->arg, t, n) ? SQLITE_ERROR : SQLITE_OK;
}

int fts_query_tokenize(sqlite3 *db, const char *s, int n, int (*fn)(void *, const char *, int),
		       void *arg)
{
	static const char *argv[] = { "remove_diacritics", "0", "tokenchars", "_" };
	fts5_api *api = fts5_api_get(db);
	fts5_tokenizer x;
	Fts5Tokenizer *t = NULL;
	void *ud = NULL;
	struct qtok q = { fn, arg };
	int rc;

	if (!api || api->xFindTokenizer(api, "chronik", &ud, &x) != SQLITE_OK ||
	    x.xCreate(ud, argv, 4, &t) != SQLITE_OK)
		return -EIO;
	rc = x.xTokenize(t, &q, FTS5_TOKENIZE_QUERY, s, n, qtok_token);
	x.xDelete(t);
	return rc == SQLITE_OK ? 0 : -EIO;
}
