/* search.h - full-text search over a topic's records (issue 12).
 *
 * Every record of a partition is searchable up to the moment of the query:
 *   - each sealed segment has a full-text index beside it, an SQLite FTS5
 *     database of rowids only (format: index.c), built when the segment
 *     is written through the engine's segment hook
 *     (engine_segment_hook_set): on the indexer's thread (search_attach),
 *     or on the builder's own threads
 *     (search_builder, below: chronikd), and removed with it (retention,
 *     compaction, topic deletion);
 *   - a segment whose index is missing or does not match it (a crash
 *     between the segment and its index; a failed build) and the WAL tail
 *     not yet indexed are scanned at query time: their records are loaded
 *     into an in-memory FTS5 table of the same schema and tokenizer and the
 *     same query runs there, so the full syntax means the same everywhere;
 *   - a query an index cannot answer exactly (a phrase of several tokens,
 *     NEAR, ^, a column filter other than header:NAME's: the index keeps
 *     neither positions nor columns) runs there relaxed (a superset: a
 *     phrase's words ANDed, the filter dropped, ...) and each candidate's
 *     record is read back and checked by the query itself in that
 *     in-memory table (query.c, "EXACT ANSWERS"); results are exact
 *     everywhere, only slower for such queries.
 *
 * QUERY TEXT. FTS5's query syntax (words, "phrases", prefix*, AND, OR,
 * NOT, NEAR(...), parentheses), over the columns key, value and headers;
 * a column filter is FTS5's own: key:word, value:"a phrase",
 * headers:word, {key value}:word. Words separated by spaces are ANDed.
 * header:NAME filters on one named header (names compared ignoring ASCII
 * case; NAME holds no ':', ')', '(' or '"'), at a term's start or after
 * '(':
 *   header:NAME:word      a header called NAME holds word
 *   header:NAME:pre*      ... a word starting with pre
 *   header:NAME:"a b"     ... the phrase a b (within one header's value)
 *   header:NAME           the record has a header called NAME
 * and combines with the rest (AND, OR, NOT, parentheses; not inside
 * NEAR's phrase list).
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
 * fsynced. 0 or <0 (nothing left under either name); -ENOENT when the
 * segment file is gone, also when it went during the build (index.c). */
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

/* The builder (builder.c): indexes built on threads of their own (two, at
 * most one per online CPU), off the indexer's path, and missing or stale
 * ones rebuilt. Life cycle:
 *   search_builder_new, search_builder_options (into the options of the
 *   engine to open), engine_open, search_builder_start; ... ;
 *   search_builder_stop, engine_close, search_builder_free.
 * Started, it sweeps every partition (rebuilds each local segment's index
 * that is missing or does not match; removes indexes whose segment is gone
 * and leftover .fts.tmp files), then builds each segment the engine writes
 * after the hook queued it, and sweeps again when idle for 30 s. Segments
 * not built yet are scanned by queries (complete results, slower). */
struct search_builder;
int search_builder_new(struct search_builder **out);
/* Install b's hook (it only queues the segment) in o. */
void search_builder_options(struct search_builder *b, struct engine_options *o);
/* Start b's thread on e (opened with b's options, not read-only). 0 or <0. */
int search_builder_start(struct search_builder *b, struct engine *e);
/* Ask for a sweep now. */
void search_builder_sweep(struct search_builder *b);
/* Block until b has nothing queued and no sweep pending or running (at
 * once when not started or stopping). */
void search_builder_wait(struct search_builder *b);
/* Stop and join the thread (before engine_close); queued work is left to
 * the next start's sweep. NULL is fine (no builder: search.index=false). */
void search_builder_stop(struct search_builder *b);
/* Stop, and free b (NULL is fine). */
void search_builder_free(struct search_builder *b);

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
 * records: its meta must give the segment's format, base and last offset
 * and record count, and FTS5's integrity-check must pass on it (run on an
 * in-memory copy: the file is never opened for writing), and its rows
 * must be the segment's records: an index built afresh from the segment
 * in memory has the same terms, each in as many records (fts5vocab; a
 * contentless table cannot list its rows, so which rowids hold a term is
 * not compared). problem() once per problem; returns the count, or
 * -ENOENT when there is no index file (not damage: it is not built yet,
 * or search.index=false; queries scan the segment and the builder builds
 * it), or another <0. */
typedef void (*search_problem_fn)(void *arg, const char *what);
int search_index_verify(const char *seg_path, search_problem_fn problem, void *arg);
/* What p's full-text indexes hold: the bytes of the index files of its
 * registered segments, how many local segments have no index file (yet),
 * and the sum of the "binary" meta counts (index.c) of the indexes that
 * match their segment. 0 or <0. */
struct search_partition_stats {
	uint64_t index_bytes;
	uint64_t unindexed_segments;
	uint64_t binary_values; /* keys, values, header names and values not indexed */
};
int search_partition_stats(struct partition *p, struct search_partition_stats *st);

#endif
