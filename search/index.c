/* index.c - the full-text index of one segment, and the schema every
 * search table shares.
 *
 * FILE. DATA/segments/<topic-id>/<partition>/<segment file>.fts, beside
 * its segment (e.g. 00000000000000004096.seg.fts,
 * 00000000000000000000.g2.seg.fts). It is an SQLite 3 database (file
 * format: https://sqlite.org/fileformat.html, page size SQLite's default)
 * holding exactly:
 *
 *   CREATE VIRTUAL TABLE records USING fts5(key, value, headers, header,
 *       content='', columnsize=0, detail=none,
 *       tokenize="chronik remove_diacritics 0 tokenchars '_'");
 *   CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID;
 *
 * records is a contentless FTS5 table (only the inverted index is stored,
 * never the text) with detail=none: for each token, only the rowids of the
 * rows holding it, neither the column nor the position (FTS5's own b-tree
 * format; about 0.2 x the raw text, where detail=full, with positions, was
 * 0.78 x). So the index itself answers words, prefix*, AND, OR, NOT and
 * parentheses, but FTS5 refuses phrases of more than one token, NEAR, ^
 * and column filters on it: query.c runs a relaxed query there instead
 * and checks each candidate exactly ("EXACT ANSWERS" in query.c). One row
 * per record of the segment, rowid = the record's offset, and
 *   key      the key's text, NULL when the key is null or binary
 *   value    the value's text, NULL when null or binary
 *   headers  for each header in order, its name, a space, its value's text
 *            (the value left out when null or binary), a newline
 *   header   for header:NAME: 0x01, then for each header whose name is
 *            text, in order, its name, 0x02, its value's text (empty when
 *            null or binary), 0x03; NULL when no header has a text name
 * The in-memory tables queries fill (the WAL tail, segments without an
 * index, the candidates checked) have the same schema but detail=full
 * (positions and columns kept), so every query runs there as written.
 * The tokenizer "chronik" (tokenizer.c; registered on every connection
 * that opens an index) is unicode61 with these arguments, except that a
 * header column text is turned into tokens 0x01 name 0x02 word (name
 * ASCII-lower-cased) so that a word is found only under its header's
 * name (so header:NAME:word needs no column, only its token). Every
 * connection that reads an index must register it first
 * (fts_open), or FTS5 refuses the table.
 * meta rows (all integers): "format" = 4, "base_offset" and "last_offset"
 * (the first and last offsets of the rows, -1 when none), "records" (rows),
 * "binary" (what was skipped as not text: each key and value that is not
 * null, each header name, and each header value that is not null; shown
 * summed per partition as info's "binary_values").
 *
 * The FTS5 configuration table (records_config, FTS5's own) holds
 * ('hashsize', FTS_HASH_BYTES), the builder's setting below; it changes
 * nothing for a reader (FTS5 reads it only to bound what one connection
 * holds in memory while it writes).
 *
 * BUILD. When the segment file is complete and fsynced (engine segment
 * hook: at once with search_attach / search_engine_options, or queued to
 * the builder's threads, builder.c), its batches are read back (segment_file_walk, batch_iter), rows
 * inserted in one transaction into <file>.fts.tmp (journal off,
 * synchronous off: the file is thrown away if anything fails), then FTS5's
 * 'optimize' merges the index into one b-tree, VACUUM drops the pages a
 * merge freed when they are more than an eighth of the file, the database
 * is closed, the file fsynced, renamed to <file>.fts and the directory
 * fsynced. So an index under its final name is complete. Queries open it
 * read-only (immutable).
 *
 * A SEGMENT GONE DURING ITS BUILD. Retention, compaction or topic deletion
 * may remove the segment while its index is built (the builder reads the
 * file by path and holds no reference on it). A segment is removed at its
 * last unref (wal/segment.c): first the segment file is unlinked, then
 * its sidecars, this index among them. So the build, after its rename,
 * looks for the segment file again and, when it is gone, unlinks the
 * index it just renamed into place and fails with -ENOENT. No order of
 * the two leaves an orphan: if the build still finds the segment file,
 * its unlink, and then the sidecars', come after the rename, and remove
 * the index; if not, the build removes it. (A segment already gone when
 * the walk opens it fails the walk; its .tmp is removed.) The builder's sweep
 * (builder.c) still removes any index without its segment, as after a
 * crash between the rename and that check.
 *
 * FTS5 keeps the rows inserted in an in-memory hash table and writes it to
 * the file as one b-tree (a "segment" of FTS5's) whenever it holds more
 * than 'hashsize' bytes; its default (1 MiB) cut a 32 MiB segment's index
 * into many b-trees, merged as they came (automerge) and again by
 * 'optimize': about 14% of the build's CPU, and VACUUM then had half the
 * file to drop. With FTS_HASH_BYTES (32 MiB: more than the index of a segment of
 * the default wal.segment.bytes, 128 MiB of text, which is about 27 MiB)
 * the index is written once, at COMMIT, as one b-tree: 'optimize' finds
 * nothing to merge and no page is freed. A larger segment is written in
 * several b-trees and merged as before. The cost is memory: at most about
 * FTS_HASH_BYTES per build in progress.
 *
 * CRASH. A crash before the rename leaves at most a .tmp (never read; the
 * next build of that name overwrites it); a segment then has no index and
 * queries scan it (search.h). A query also scans a segment whose index's
 * meta does not give the segment's base offset, last offset and record
 * count (a stale index of an earlier file of the same name); the builder
 * rebuilds such an index and removes a .tmp and an index whose segment
 * is gone.
 *
 * VERSION POLICY. A reader that finds a format other than 4 scans the
 * segment instead, and the builder (builder.c) rebuilds it at its next
 * sweep. Earlier formats: 1 (no header column, tokenizer unicode61,
 * detail=full), 2 (this schema with detail=full), 3 (this one, but a
 * value holding ESC counted binary and not indexed: TEXT OR BINARY below;
 * its rows would miss coloured log lines the WAL scan finds).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "jsonl.h"
#include "log.h"
#include "search-private.h"
#include "search.h"
#include "segment.h"

#define SEARCH_FORMAT 4
/* FTS5's 'hashsize' while an index is built (BUILD above). */
#define FTS_HASH_BYTES (32 * 1024 * 1024)

/* %s: ", detail=none" for an index file, "" (detail=full) in memory. */
static const char schema[] =
	"CREATE VIRTUAL TABLE records USING fts5(key, value, headers, header, content='', "
	"columnsize=0%s, tokenize=\"chronik remove_diacritics 0 tokenchars '_'\");"
	"CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID;";

/* TEXT OR BINARY. A key, value, header name or header value is text, and
 * indexed, when it is valid UTF-8 (jsonl_utf8_valid) and holds no control
 * byte other than TAB, LF, CR and ESC (0x1b), and no DEL (0x7f); anything
 * else is binary: skipped and counted (meta "binary"). ESC is text so that
 * log lines with ANSI colour codes ("\x1b[31mERROR\x1b[0m: disk full")
 * are indexed as grep sees them: the tokenizer splits at ESC and '[' as at
 * any separator, so "disk" and "full" are words there, and the code's
 * final letter is glued to what follows ("31merror", as grep -w sees no
 * word ERROR there either). NUL and the other C0 bytes stay binary; 0x01,
 * 0x02 and 0x03 must, since the header column uses them as markers. Every
 * table of this schema is filled through fts_loader_add, so the index
 * files, the scanned WAL tail and unindexed segments, and the exact
 * re-check (query.c) all classify alike. */
static bool is_text(const uint8_t *s, int32_t n)
{
	if (n < 0)
		return false;
	for (int32_t i = 0; i < n; i++)
		if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != 0x1b) ||
		    s[i] == 0x7f)
			return false;
	return jsonl_utf8_valid(s, (size_t)n);
}

int fts_open(const char *name, int flags, sqlite3 **db)
{
	int rc;

	if (sqlite3_open_v2(name, db, flags, NULL) != SQLITE_OK) {
		rc = -EIO;
		goto fail;
	}
	rc = fts_tokenizer_register(*db);
	if (rc)
		goto fail;
	return 0;
fail:
	sqlite3_close(*db);
	*db = NULL;
	return rc;
}

int fts_memory_open(sqlite3 **db)
{
	return fts_open(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, db);
}

/* An index file's table flushes its in-memory rows every FTS_HASH_BYTES
 * (BUILD above). */
static int fts_hash_size_set(sqlite3 *db)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "INSERT INTO records(records, rank) VALUES('hashsize', %d)",
		 FTS_HASH_BYTES);
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

int fts_loader_init(struct fts_loader *l, sqlite3 *db, bool file)
{
	char sql[sizeof(schema) + 16];

	memset(l, 0, sizeof(*l));
	l->db = db;
	l->first = l->last = -1;
	snprintf(sql, sizeof(sql), schema, file ? ", detail=none" : "");
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    (file && fts_hash_size_set(db) != SQLITE_OK) ||
	    sqlite3_prepare_v2(db, "INSERT INTO records(rowid, key, value, headers, header) "
			       "VALUES(?,?,?,?,?)",
			       -1, &l->ins, NULL) != SQLITE_OK) {
		log_msg(LOG_LVL_ERROR, "search", "index schema: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}

void fts_loader_fini(struct fts_loader *l)
{
	sqlite3_finalize(l->ins);
	l->ins = NULL;
	free(l->hbuf.s);
	free(l->nbuf.s);
	memset(&l->hbuf, 0, sizeof(l->hbuf));
	memset(&l->nbuf, 0, sizeof(l->nbuf));
}

/* Append s (n bytes) and then sep (unless 0) to b. */
static int buf_put(struct fts_buf *b, const uint8_t *s, size_t n, char sep)
{
	if (b->len + n + 2 > b->cap) {
		size_t cap = (b->len + n + 2) * 2;
		char *p = realloc(b->s, cap);
		if (!p)
			return -ENOMEM;
		b->s = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->s + b->len, s, n);
	b->len += n;
	if (sep)
		b->s[b->len++] = sep;
	return 0;
}

int fts_loader_add(struct fts_loader *l, int64_t offset, const uint8_t *key, int32_t key_len,
		   const uint8_t *value, int32_t value_len, const uint8_t *headers,
		   size_t headers_len, int32_t header_count)
{
	const uint8_t *hp = headers, *hend = headers + headers_len;
	struct batch_record_header h;
	int rc;

	sqlite3_reset(l->ins);
	sqlite3_bind_int64(l->ins, 1, offset);
	if (is_text(key, key_len))
		sqlite3_bind_text(l->ins, 2, (const char *)key, key_len, SQLITE_STATIC);
	else {
		sqlite3_bind_null(l->ins, 2);
		l->binary += key_len >= 0;
	}
	if (is_text(value, value_len))
		sqlite3_bind_text(l->ins, 3, (const char *)value, value_len, SQLITE_STATIC);
	else {
		sqlite3_bind_null(l->ins, 3);
		l->binary += value_len >= 0;
	}
	l->hbuf.len = 0;
	l->nbuf.len = 0;
	for (int32_t i = 0; header_count > 0 && i < header_count; i++) {
		rc = batch_record_header_next(&hp, hend, &h);
		if (rc <= 0)
			break; /* a malformed header: index what came before */
		bool name = is_text(h.key, h.key_len), val = is_text(h.value, h.value_len);
		l->binary += !name + (!val && h.value_len >= 0);
		if (name && (rc = buf_put(&l->hbuf, h.key, (size_t)h.key_len, val ? ' ' : '\n')))
			return rc;
		if (val && (rc = buf_put(&l->hbuf, h.value, (size_t)h.value_len, '\n')))
			return rc;
		if (!name)
			continue; /* no header:NAME for a binary name */
		if ((!l->nbuf.len && (rc = buf_put(&l->nbuf, (const uint8_t *)"\x01", 1, 0))) ||
		    (rc = buf_put(&l->nbuf, h.key, (size_t)h.key_len, '\x02')) ||
		    (rc = buf_put(&l->nbuf, h.value, val ? (size_t)h.value_len : 0, '\x03')))
			return rc;
	}
	if (l->hbuf.len)
		sqlite3_bind_text(l->ins, 4, l->hbuf.s, (int)l->hbuf.len, SQLITE_STATIC);
	else
		sqlite3_bind_null(l->ins, 4);
	if (l->nbuf.len)
		sqlite3_bind_text(l->ins, 5, l->nbuf.s, (int)l->nbuf.len, SQLITE_STATIC);
	else
		sqlite3_bind_null(l->ins, 5);
	if (sqlite3_step(l->ins) != SQLITE_DONE) {
		log_msg(LOG_LVL_ERROR, "search", "index insert at offset %" PRId64 ": %s", offset,
			sqlite3_errmsg(l->db));
		return -EIO;
	}
	if (l->first < 0)
		l->first = offset;
	l->last = offset;
	l->records++;
	return 0;
}

/* ---- building a segment's index ------------------------------------------ */

struct build {
	struct fts_loader l;
	int rc;
};

static int build_batch(void *arg, uint64_t pos, const uint8_t *batch, size_t len)
{
	struct build *b = arg;
	struct batch_iter it;
	struct batch_record r;
	int rc;

	(void)pos;
	rc = batch_iter_init(&it, batch, len);
	while (rc == 0 && (rc = batch_iter_next(&it, &r)) == 1)
		rc = fts_loader_add(&b->l, it.hdr.base_offset + r.offset_delta, r.key, r.key_len,
				    r.value, r.value_len, r.headers, r.headers_len, r.header_count);
	batch_iter_fini(&it);
	b->rc = rc < 0 ? rc : 0;
	return b->rc;
}

static int fsync_file(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* VACUUM db when more than an eighth of its pages are free (BUILD above).
 * 0 or -EIO. */
static int vacuum_if_sparse(sqlite3 *db)
{
	int64_t free_pages = pragma_int(db, "PRAGMA freelist_count");
	int64_t pages = pragma_int(db, "PRAGMA page_count");

	if (free_pages < 0 || pages < 0)
		return -EIO;
	if (free_pages * 8 <= pages)
		return 0;
	return sqlite3_exec(db, "VACUUM", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

void (*fts_build_before_rename)(const char *seg_path);

int search_index_build(const char *seg_path, struct search_index_stats *st)
{
	char tmp[4300], final[4200], dir[4200];
	struct build b = { .rc = 0 };
	sqlite3 *db = NULL;
	char sql[256];
	int rc;

	snprintf(final, sizeof(final), "%s" SEARCH_INDEX_SUFFIX, seg_path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", final);
	unlink(tmp);
	rc = fts_open(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);
	if (rc)
		goto fail;
	if (sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN", NULL, NULL,
			 NULL) != SQLITE_OK) {
		rc = -EIO;
		goto fail;
	}
	rc = fts_loader_init(&b.l, db, true);
	if (rc)
		goto fail_loader;
	rc = segment_file_walk(seg_path, build_batch, &b);
	if (rc == 0)
		rc = b.rc;
	if (rc)
		goto fail_loader;
	snprintf(sql, sizeof(sql),
		 "INSERT INTO meta VALUES('format',%d),('base_offset',%" PRId64
		 "),('last_offset',%" PRId64 "),('records',%" PRIu64 "),('binary',%" PRIu64 ");"
		 "COMMIT;"
		 "INSERT INTO records(records) VALUES('optimize');",
		 SEARCH_FORMAT, b.l.first, b.l.last, b.l.records, b.l.binary);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK || vacuum_if_sparse(db) != 0) {
		rc = -EIO;
		goto fail_loader;
	}
	if (st) {
		st->records = b.l.records;
		st->binary = b.l.binary;
	}
	fts_loader_fini(&b.l);
	if (sqlite3_close(db) != SQLITE_OK) {
		db = NULL;
		rc = -EIO;
		goto fail;
	}
	db = NULL;
	rc = fsync_file(tmp, false);
	if (rc)
		goto fail;
	if (fts_build_before_rename)
		fts_build_before_rename(seg_path);
	if (rename(tmp, final) < 0) {
		rc = -errno;
		goto fail;
	}
	/* A SEGMENT GONE DURING ITS BUILD (above): after the rename. */
	if (access(seg_path, F_OK) < 0 && errno == ENOENT) {
		unlink(final);
		return -ENOENT;
	}
	snprintf(dir, sizeof(dir), "%s", seg_path);
	return fsync_file(dirname(dir), true);

fail_loader:
	if (rc == -EIO && db)
		log_msg(LOG_LVL_ERROR, "search", "%s: %s", tmp, sqlite3_errmsg(db));
	fts_loader_fini(&b.l);
fail:
	sqlite3_close(db);
	unlink(tmp);
	return rc;
}

void fts_build_logged(const char *seg_path)
{
	struct search_index_stats st;
	struct stat sb;
	int rc = search_index_build(seg_path, &st);

	if (rc && stat(seg_path, &sb) != 0)
		return; /* the segment went meanwhile (retention, compaction) */
	if (rc)
		log_msg(LOG_LVL_ERROR, "search",
			"%s: index not built (%s); queries scan this segment", seg_path,
			chronik_strerror(rc));
	else if (st.binary)
		log_msg(LOG_LVL_INFO, "search", "%s: %" PRIu64 " binary values not indexed",
			seg_path, st.binary);
}

static void on_segment_written(void *arg, struct partition *p, const char *seg_path)
{
	(void)arg;
	(void)p;
	fts_build_logged(seg_path);
}

void search_engine_options(struct engine_options *o)
{
	o->segment_sidecar = SEARCH_INDEX_SUFFIX;
	o->segment_written = on_segment_written;
	o->segment_written_arg = NULL;
}

int search_attach(struct engine *e)
{
	return engine_segment_hook_set(e, SEARCH_INDEX_SUFFIX, on_segment_written, NULL);
}

/* ---- checks ----------------------------------------------------------------- */

struct vcount {
	uint64_t records;
	int64_t first, last;
	int rc;
};

static int count_batch(void *arg, uint64_t pos, const uint8_t *batch, size_t len)
{
	struct vcount *v = arg;
	struct batch_iter it;
	struct batch_record r;
	int rc;

	(void)pos;
	rc = batch_iter_init(&it, batch, len);
	while (rc == 0 && (rc = batch_iter_next(&it, &r)) == 1) {
		int64_t off = it.hdr.base_offset + r.offset_delta;
		if (v->first < 0)
			v->first = off;
		v->last = off;
		v->records++;
		rc = 0;
	}
	batch_iter_fini(&it);
	v->rc = rc < 0 ? rc : 0;
	return v->rc;
}

int64_t fts_meta_get(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st = NULL;
	int64_t v = INT64_MIN;

	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = ?", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

sqlite3 *fts_index_open(const char *dir, const struct engine_segment_info *s)
{
	char uri[4400];
	sqlite3 *db = NULL;

	snprintf(uri, sizeof(uri), "file:%s/%s" SEARCH_INDEX_SUFFIX "?immutable=1", dir, s->file);
	if (fts_open(uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, &db))
		goto fail;
	if (fts_meta_get(db, "format") != SEARCH_FORMAT ||
	    fts_meta_get(db, "base_offset") != s->base_offset ||
	    fts_meta_get(db, "last_offset") != s->last_offset ||
	    fts_meta_get(db, "records") != (int64_t)s->records)
		goto fail;
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

/* The index built afresh from the segment at seg_path, in memory, as
 * search_index_build builds the file (without meta). 0 and *out, or <0. */
static int build_in_memory(const char *seg_path, sqlite3 **out)
{
	struct build b = { .rc = 0 };
	sqlite3 *db = NULL;
	int rc = fts_open(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);

	if (rc == 0 && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc == 0)
		rc = fts_loader_init(&b.l, db, true);
	if (rc == 0) {
		rc = segment_file_walk(seg_path, build_batch, &b);
		if (rc == 0)
			rc = b.rc;
		fts_loader_fini(&b.l);
	}
	if (rc == 0 && sqlite3_exec(db, "COMMIT; INSERT INTO records(records) VALUES('optimize')",
				    NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

/* Compare the terms of two indexes and, for each, the number of records
 * that hold it (fts5vocab, 'row'): 0 when the same, 1 when not (*what
 * says where), <0 on error. */
static int vocab_compare(sqlite3 *a, sqlite3 *b, char *what, size_t cap)
{
	static const char *sql = "SELECT term, doc FROM v ORDER BY term";
	sqlite3 *dbs[2] = { a, b };
	sqlite3_stmt *st[2] = { NULL, NULL };
	int rc = 0, diff = 0;

	for (int i = 0; i < 2 && rc == 0; i++)
		if (sqlite3_exec(dbs[i], "CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, records, row)",
				 NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(dbs[i], sql, -1, &st[i], NULL) != SQLITE_OK)
			rc = -EIO;
	while (rc == 0 && !diff) {
		int ra = sqlite3_step(st[0]), rb = sqlite3_step(st[1]);
		if ((ra != SQLITE_ROW && ra != SQLITE_DONE) || (rb != SQLITE_ROW && rb != SQLITE_DONE)) {
			rc = -EIO;
			break;
		}
		if (ra == SQLITE_DONE && rb == SQLITE_DONE)
			break;
		if (ra != rb) {
			snprintf(what, cap, "term '%s' only in the %s",
				 sqlite3_column_text(st[ra == SQLITE_ROW ? 0 : 1], 0),
				 ra == SQLITE_ROW ? "index" : "segment");
			diff = 1;
		} else if ((diff = strcmp((const char *)sqlite3_column_text(st[0], 0),
					  (const char *)sqlite3_column_text(st[1], 0))) != 0) {
			/* Both in term order: the smaller is missing on the other side. */
			snprintf(what, cap, "term '%s' only in the %s",
				 sqlite3_column_text(st[diff < 0 ? 0 : 1], 0),
				 diff < 0 ? "index" : "segment");
			diff = 1;
		} else if (sqlite3_column_int64(st[0], 1) != sqlite3_column_int64(st[1], 1)) {
			snprintf(what, cap, "term '%s' in %lld records, the segment's %lld",
				 sqlite3_column_text(st[0], 0), (long long)sqlite3_column_int64(st[0], 1),
				 (long long)sqlite3_column_int64(st[1], 1));
			diff = 1;
		}
	}
	sqlite3_finalize(st[0]);
	sqlite3_finalize(st[1]);
	return rc ? rc : diff;
}

int search_index_verify(const char *seg_path, search_problem_fn problem, void *arg)
{
	char uri[4300], what[4600];
	struct vcount v = { 0, -1, -1, 0 };
	sqlite3 *db = NULL;
	int n = 0, rc;

	rc = segment_file_walk(seg_path, count_batch, &v);
	if (rc == 0)
		rc = v.rc;
	if (rc)
		return rc;
	snprintf(what, sizeof(what), "%s" SEARCH_INDEX_SUFFIX, seg_path);
	if (access(what, F_OK) < 0 && errno == ENOENT)
		return -ENOENT; /* not built yet: not damage */
	snprintf(uri, sizeof(uri), "file:%s" SEARCH_INDEX_SUFFIX "?immutable=1", seg_path);
	if (fts_open(uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, &db) ||
	    fts_meta_get(db, "format") == INT64_MIN) {
		snprintf(what, sizeof(what), "%s" SEARCH_INDEX_SUFFIX ": unreadable", seg_path);
		problem(arg, what);
		sqlite3_close(db);
		return 1;
	}
	if (fts_meta_get(db, "format") != SEARCH_FORMAT || fts_meta_get(db, "records") != (int64_t)v.records ||
	    fts_meta_get(db, "base_offset") != v.first || fts_meta_get(db, "last_offset") != v.last) {
		snprintf(what, sizeof(what),
			 "%s" SEARCH_INDEX_SUFFIX ": covers %" PRId64 " records [%" PRId64 ", %" PRId64
			 "], the segment %" PRIu64 " [%" PRId64 ", %" PRId64 "]",
			 seg_path, fts_meta_get(db, "records"), fts_meta_get(db, "base_offset"),
			 fts_meta_get(db, "last_offset"), v.records, v.first, v.last);
		problem(arg, what);
		n++;
	}
	/* FTS5's integrity-check is an INSERT: it needs a writable
	 * connection, and the index file is never written after its rename
	 * (a daemon may be reading it immutable). So it runs on a private
	 * in-memory copy made with the backup API. */
	sqlite3 *mem = NULL;
	const char *err = NULL;
	if (fts_open(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &mem)) {
		err = mem ? sqlite3_errmsg(mem) : "out of memory";
	} else {
		sqlite3_backup *b = sqlite3_backup_init(mem, "main", db, "main");
		if (!b || sqlite3_backup_step(b, -1) != SQLITE_DONE)
			err = sqlite3_errmsg(mem);
		if (b && sqlite3_backup_finish(b) != SQLITE_OK && !err)
			err = sqlite3_errmsg(mem);
		if (!err &&
		    sqlite3_exec(mem, "INSERT INTO records(records, rank) VALUES('integrity-check', 0)",
				 NULL, NULL, NULL) != SQLITE_OK)
			err = sqlite3_errmsg(mem);
	}
	if (err) {
		snprintf(what, sizeof(what), "%s" SEARCH_INDEX_SUFFIX ": integrity-check: %s",
			 seg_path, err);
		problem(arg, what);
		n++;
	}
	/* Its rows against the segment's records: the same terms, each in
	 * as many records as in an index built afresh from the segment. */
	sqlite3 *ref = NULL;
	if (!err && (rc = build_in_memory(seg_path, &ref)) == 0) {
		char diff[512];
		rc = vocab_compare(mem, ref, diff, sizeof(diff));
		if (rc != 0) {
			if (rc < 0)
				snprintf(diff, sizeof(diff), "cannot compare its terms (%s)",
					 sqlite3_errmsg(ref));
			snprintf(what, sizeof(what), "%s" SEARCH_INDEX_SUFFIX ": %s", seg_path, diff);
			problem(arg, what);
			n++;
		}
	} else if (!err) {
		snprintf(what, sizeof(what), "%s" SEARCH_INDEX_SUFFIX ": cannot rebuild it to compare (%d)",
			 seg_path, rc);
		problem(arg, what);
		n++;
	}
	sqlite3_close(ref);
	sqlite3_close(mem);
	sqlite3_close(db);
	return n;
}

/* BINARY COUNTS. An index's "binary" count never changes while its file
 * does not, so search_partition_stats (run at every read of info.json)
 * keeps the counts it read, each with the file's identity (inode, size,
 * mtime), its path and its segment's last offset and record count; a
 * count is used only while all of them are still the same, so a rebuilt
 * index, or one left beside a segment that changed, is read again. At most BINARY_CACHE
 * counts are kept; when full, the table starts over. */
#define BINARY_CACHE 4096

struct binary_count {
	char *path;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int64_t last_offset;
	uint64_t records;
	uint64_t binary;
};

static struct {
	pthread_mutex_t lock;
	struct binary_count *v;
	size_t n;
} binary_cache = { PTHREAD_MUTEX_INITIALIZER, NULL, 0 };

static bool same_file(const struct binary_count *c, const struct stat *sb,
		      const struct engine_segment_info *seg)
{
	return c->last_offset == seg->last_offset && c->records == seg->records &&
	       c->ino == sb->st_ino && c->size == sb->st_size &&
	       c->mtime.tv_sec == sb->st_mtim.tv_sec && c->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

/* The cached count of path (whose stat is sb): true and *b, or false. */
static bool binary_cached(const char *path, const struct stat *sb,
			  const struct engine_segment_info *seg, uint64_t *b)
{
	bool hit = false;

	pthread_mutex_lock(&binary_cache.lock);
	for (size_t i = 0; i < binary_cache.n && !hit; i++) {
		struct binary_count *c = &binary_cache.v[i];
		if (strcmp(c->path, path) == 0 && same_file(c, sb, seg)) {
			*b = c->binary;
			hit = true;
		}
	}
	pthread_mutex_unlock(&binary_cache.lock);
	return hit;
}

static void binary_remember(const char *path, const struct stat *sb,
			    const struct engine_segment_info *seg, uint64_t b)
{
	char *copy = strdup(path);

	if (!copy)
		return;
	pthread_mutex_lock(&binary_cache.lock);
	if (!binary_cache.v) {
		binary_cache.v = calloc(BINARY_CACHE, sizeof(*binary_cache.v));
		if (!binary_cache.v) {
			pthread_mutex_unlock(&binary_cache.lock);
			free(copy);
			return;
		}
	}
	/* A path seen before (its index rebuilt) takes its old slot. */
	size_t i = 0;
	while (i < binary_cache.n && strcmp(binary_cache.v[i].path, path) != 0)
		i++;
	if (i == binary_cache.n) {
		if (binary_cache.n == BINARY_CACHE) {
			for (size_t k = 0; k < binary_cache.n; k++)
				free(binary_cache.v[k].path);
			binary_cache.n = i = 0;
		}
		binary_cache.n++;
	} else {
		free(binary_cache.v[i].path);
	}
	binary_cache.v[i] = (struct binary_count){ .path = copy,
						   .ino = sb->st_ino,
						   .size = sb->st_size,
						   .mtime = sb->st_mtim,
						   .last_offset = seg->last_offset,
						   .records = seg->records,
						   .binary = b };
	pthread_mutex_unlock(&binary_cache.lock);
}

int search_partition_stats(struct partition *p, struct search_partition_stats *st)
{
	struct engine_segment_info *segs = NULL;
	char dir[4200], path[4400];
	size_t n = 0;
	struct stat sb;
	int rc = engine_partition_segments(p, &segs, &n);

	memset(st, 0, sizeof(*st));
	if (rc)
		return rc;
	engine_partition_segment_dir(p, dir, sizeof(dir));
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s" SEARCH_INDEX_SUFFIX, dir, segs[i].file);
		if (stat(path, &sb) != 0) {
			st->unindexed_segments += !segs[i].remote;
			continue;
		}
		st->index_bytes += (uint64_t)sb.st_size;
		uint64_t cached;
		if (binary_cached(path, &sb, &segs[i], &cached)) {
			st->binary_values += cached;
			continue;
		}
		sqlite3 *db = fts_index_open(dir, &segs[i]);
		if (!db)
			continue; /* stale or damaged: its segment is scanned */
		int64_t b = fts_meta_get(db, "binary");
		sqlite3_close(db);
		binary_remember(path, &sb, &segs[i], b > 0 ? (uint64_t)b : 0);
		if (b > 0)
			st->binary_values += (uint64_t)b;
	}
	free(segs);
	return 0;
}
