/* search_test.h - helpers the search suite's C tests share (with
 * tests/wal/testutil.h, which it includes).
 *
 * search_test_open(dir, wal_segment_bytes): an engine on dir with small
 *   WAL files sealed only by the tests (wal.seal.ms 0), fsync never, and
 *   the search index built inline (search_engine_options); bails out on
 *   failure.
 * search_count(e, topic, part, query): how many records of topic/part
 *   the query finds, or a negative chronik error; bails out on a query
 *   that does not parse.
 */
#ifndef CHRONIK_SEARCH_TEST_H
#define CHRONIK_SEARCH_TEST_H

#include <stdint.h>

#include "search.h"
#include "testutil.h"

static inline struct engine *search_test_open(const char *dir, uint64_t wal_segment_bytes)
{
	struct engine_options o;

	engine_options_init(&o);
	o.wal_segment_bytes = wal_segment_bytes;
	o.wal_seal_ms = 0;
	o.fsync = FSYNC_NEVER;
	search_engine_options(&o);
	return open_or_bail(dir, &o);
}

static inline int search_count_hit(void *arg, struct partition *p, const struct engine_record *r)
{
	(void)p;
	(void)r;
	(*(int64_t *)arg)++;
	return 0;
}

static inline int64_t search_count(struct engine *e, const char *topic, int32_t part,
				   const char *text)
{
	struct search_query *q;
	int64_t n = 0;
	char err[200];

	if (search_query_new(text, &q, err, sizeof(err)))
		bail("query %s: %s", text, err);
	int rc = search_run(e, topic, part, q, search_count_hit, &n);
	search_query_free(q);
	return rc ? rc : n;
}

#endif
