/* search.h - full-text search over a topic's records (issue 12).
 *
 * Every record of a partition is searchable up to the moment of the query:
 *   - each sealed segment has a full-text index beside it, an SQLite FTS5
 *     database (format: index.c), built by the indexer's thread through the
 *     engine's segment hook (engine_segment_hook_set) when the segment is
 *     written, and removed with it (retention, compaction, topic deletion);
 *   - a segment whose index is missing or does not match it (a crash
 *     between the segment and its index; a failed build) and the WAL tail
 *     not yet indexed are scanned at query time: their records are loaded
 *     into an in-memory FTS5 table of the same schema and tokenizer and the
 *     same query runs there, so the full syntax means the same everywhere.
 *
 * QUERY TEXT. FTS5's query syntax (words, "phrases", prefix*, AND, OR,
 * NOT, NEAR(...), parentheses), over the columns key, value and headers;
 * a column filter is FTS5's own: key:word, value:"a phrase",
 * headers:word, {key value}:word. Words separated by spaces are ANDed.
 * Besides, whitespace-separated terms of the form
 *   since:TS   until:TS   limit:N
 * (outside double quotes) are taken out of the text: only records with
 * since <= timestamp < until (milliseconds) match, and at most N records
 * are returned (no limit unless one is given). What remains must be a
 * valid FTS5 expression; an empty remainder or a syntax error is -EINVAL
 * with a message.
 *
 * TOKENS. unicode61 with '_' a token character and diacritics kept: a
 * token is a maximal run of Unicode letters, digits and '_'. On ASCII text
 * that is `grep -w`'s notion of a word ([A-Za-z0-9_]); unlike grep, FTS5
 * folds case (ASCII and Unicode), so "Error" matches "error".
 *
 * NOT DONE: header:NAME (a filter on one named header) is not supported;
 * the headers column holds every header's name and text value and is
 * searched with headers:.
 *
 * RESULTS. Per partition in offset order; a topic-wide query merges its
 * partitions by timestamp (ties: lower partition, then lower offset).
 */
#ifndef CHRONIK_SEARCH_H
#define CHRONIK_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* The suffix of a segment's index: <segment file>.fts. */
#define SEARCH_INDEX_SUFFIX ".fts"

/* Build the index of the segment file at seg_path as seg_path.fts: written
 * as seg_path.fts.tmp, optimized, fsynced, renamed into place, directory
 * fsynced. 0 or <0 (nothing left under either name). */
struct search_index_stats {
	uint64_t records; /* rows (records) indexed */
	uint64_t binary; /* key, value or header values skipped as binary */
};
int search_index_build(const char *seg_path, struct search_index_stats *st);

/* Register search with e: every segment e writes gets its index
 * (engine_segment_hook_set). A failed build is logged; queries then scan
 * that segment. 0 or <0. */
int search_attach(struct engine *e);
/* The same through the options of an engine not yet open (preferred: the
 * segments indexed right after open get their index too). */
void search_engine_options(struct engine_options *o);

struct search_query;
/* Parse text (QUERY TEXT above). 0 and *out (free with search_query_free),
 * or -EINVAL with a message in err (errlen bytes), or -ENOMEM. */
int search_query_new(const char *text, struct search_query **out, char *err, size_t errlen);
void search_query_free(struct search_query *q);
/* Narrow the time range / set the limit (the tighter of these and the
 * text's own wins). */
void search_query_since(struct search_query *q, int64_t since_ms);
void search_query_until(struct search_query *q, int64_t until_ms);
void search_query_limit(struct search_query *q, int64_t limit);

/* Called once per matching record, in result order; r is borrowed for the
 * call. A non-zero return stops the search (search_run returns it). */
typedef int (*search_hit_fn)(void *arg, struct partition *p, const struct engine_record *r);
/* Run q over topic's partition, or over every partition when partition <
 * 0. 0, a non-zero return of fn, or <0 (CHRONIK_ENOTOPIC, -ENOENT for a
 * partition that does not exist, I/O errors). */
int search_run(struct engine *e, const char *topic, int32_t partition, const struct search_query *q,
	       search_hit_fn fn, void *arg);

/* Check the index of the segment file seg_path against the segment's
 * records: it must exist, match base/last offset and record count, and
 * hold exactly one row per record, rowid = offset. problem() once per
 * problem; returns the count or <0. */
typedef void (*search_problem_fn)(void *arg, const char *what);
int search_index_verify(const char *seg_path, search_problem_fn problem, void *arg);
/* Bytes of the index files of p's registered segments. */
int search_index_bytes(struct partition *p, uint64_t *bytes);

#endif
