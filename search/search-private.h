/* search-private.h - what index.c and query.c share. */
#ifndef CHRONIK_SEARCH_PRIVATE_H
#define CHRONIK_SEARCH_PRIVATE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

struct fts_buf {
	char *s;
	size_t len, cap;
};

/* A table of the index schema (index.c) being filled, in a file or in
 * memory. */
struct fts_loader {
	sqlite3 *db;
	sqlite3_stmt *ins;
	uint64_t records, binary;
	int64_t first, last; /* offsets of the first and last record added; -1 */
	struct fts_buf hbuf, nbuf; /* headers and header column text, reused */
};

/* Create the schema in db (an empty database) and prepare the insert:
 * file, an index file's (detail=none), else an in-memory table's
 * (detail=full; index.c). 0 or -EIO (message logged). */
int fts_loader_init(struct fts_loader *l, sqlite3 *db, bool file);
/* Add one record as row rowid = offset. 0, -ENOMEM or -EIO. */
int fts_loader_add(struct fts_loader *l, int64_t offset, const uint8_t *key, int32_t key_len,
		   const uint8_t *value, int32_t value_len, const uint8_t *headers,
		   size_t headers_len, int32_t header_count);
void fts_loader_fini(struct fts_loader *l);

/* Open the database name (sqlite3_open_v2 flags) with the tokenizer
 * registered; 0 or <0 (*db NULL). */
int fts_open(const char *name, int flags, sqlite3 **db);
/* An in-memory database, the same way; 0 or <0. */
int fts_memory_open(sqlite3 **db);
/* Register the tokenizer "chronik" (tokenizer.c) with db. 0 or <0. */
int fts_tokenizer_register(sqlite3 *db);

/* Tokenize s (n bytes) as the tokenizer "chronik" of the schema (index.c)
 * does a query's string (FTS5_TOKENIZE_QUERY): fn once per token, in
 * order (a non-zero return stops). db has the tokenizer registered. 0 or
 * <0. */
int fts_query_tokenize(sqlite3 *db, const char *s, int n, int (*fn)(void *, const char *, int),
		       void *arg);

/* For tests only (NULL otherwise): when set, search_index_build calls it
 * with seg_path once the index is complete under its .tmp name, just
 * before the rename, so that a test can remove the segment in that window
 * ("A SEGMENT GONE DURING ITS BUILD", index.c). Set it before any thread
 * that builds indexes starts. */
extern void (*fts_build_before_rename)(const char *seg_path);

/* Build seg_path's index (search_index_build), logging a failure unless
 * the segment is gone. */
void fts_build_logged(const char *seg_path);

/* The integer meta row name of db, or INT64_MIN when absent. */
int64_t fts_meta_get(sqlite3 *db, const char *name);
/* Open the index of segment s (in dir) read-only when it is there, of this
 * format and its meta matches s (base and last offset, records); else
 * NULL. Close with sqlite3_close. */
sqlite3 *fts_index_open(const char *dir, const struct engine_segment_info *s);

/* Close the cached index handles (query.c, "INDEX HANDLES") whose file is
 * gone or changed. */
void fts_cache_prune(void);

#endif
