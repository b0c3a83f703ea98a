/* search-private.h - what index.c and query.c share. */
#ifndef CHRONIK_SEARCH_PRIVATE_H
#define CHRONIK_SEARCH_PRIVATE_H

#include <sqlite3.h>
#include <stdint.h>

#include "engine.h"

/* A table of the index schema (index.c) being filled, in a file or in
 * memory. */
struct fts_loader {
	sqlite3 *db;
	sqlite3_stmt *ins;
	uint64_t records, binary;
	int64_t first, last; /* offsets of the first and last record added; -1 */
	char *hbuf; /* headers column text, reused */
	size_t hcap;
};

/* Create the schema in db (an empty database) and prepare the insert. 0
 * or -EIO (message logged). */
int fts_loader_init(struct fts_loader *l, sqlite3 *db);
/* Add one record as row rowid = offset. 0, -ENOMEM or -EIO. */
int fts_loader_add(struct fts_loader *l, int64_t offset, const uint8_t *key, int32_t key_len,
		   const uint8_t *value, int32_t value_len, const uint8_t *headers,
		   size_t headers_len, int32_t header_count);
void fts_loader_fini(struct fts_loader *l);

/* An in-memory database; 0 or -EIO. */
int fts_memory_open(sqlite3 **db);

#endif
