/* remote.h - the cold tier's hook table: how the engine reaches an object
 * store without linking any client.
 *
 * The engine (wal/tier.c) decides what to upload, when, and what the
 * registry says; an object-store client (cold/s3.c for S3) only moves
 * bytes. The client registers a table of four operations with
 * engine_remote_attach, as codecs do in wal/codecs.c, so that wal/ links
 * no HTTP library and a test can attach a fake store.
 *
 * Every operation returns 0 or <0 (-errno; -EIO for "the store did not
 * answer or answered an error"), may block up to the client's timeout,
 * and is called from several threads at once (the upload thread, readers).
 * Keys are the object names in the store, 1-255 bytes.
 */
#ifndef CHRONIK_REMOTE_H
#define CHRONIK_REMOTE_H

#include <stddef.h>
#include <stdint.h>

struct engine;

/* One object of a listing: its key, size and last-modified time (ms since
 * the epoch). Non-zero stops the listing and is returned. */
typedef int (*engine_remote_list_fn)(void *arg, const char *key, uint64_t size, int64_t mtime_ms);

struct engine_remote_ops {
	/* Store size bytes read from fd (pread from 0) under key; the client
	 * checks the store received them intact (its own checksum, e.g.
	 * Content-MD5) and copies the store's ETag (NUL-terminated) to etag. */
	int (*put)(void *arg, const char *key, int fd, uint64_t size, char *etag, size_t etag_len);
	/* The stored object's size and ETag; -ENOENT when there is none. */
	int (*head)(void *arg, const char *key, uint64_t *size, char *etag, size_t etag_len);
	/* Write bytes [off, off + len) of the object to fd at its current
	 * position; fewer than len is an error (-EIO). */
	int (*get)(void *arg, const char *key, uint64_t off, uint64_t len, int fd);
	/* Remove the object; one that is not there is success. */
	int (*del)(void *arg, const char *key);
	/* Every object whose key begins with prefix, cb once each; NULL when
	 * the client cannot list (then there is no orphan sweep). */
	int (*list)(void *arg, const char *prefix, engine_remote_list_fn cb, void *cbarg);
};

struct engine_remote_options {
	/* Prefix of every key ("" or "path/"); keys are
	 * PREFIX<topic-id>/<partition>/<segment file>. */
	const char *key_prefix;
	/* Bound of DATA/cold-cache, the copies of remote segments readers
	 * fetched (least recently used go first); default 1 GiB. */
	uint64_t cache_bytes;
	/* How often the upload thread looks for work (ms); default 1000. */
	uint32_t scan_ms;
	/* The orphan sweep (tier.c): every sweep_ms (default 600000), objects
	 * under key_prefix that no registry names and that are older than
	 * orphan_age_ms (default 3600000) are deleted. */
	uint32_t sweep_ms;
	uint64_t orphan_age_ms;
};

/* Start the cold tier on a writable engine: the upload thread runs until
 * engine_close, calling ops with arg (which must outlive the engine). At
 * most once per engine. 0, -EINVAL (read-only engine, second attach) or
 * -errno. A read-only engine may attach too: it only reads (no uploads). */
int engine_remote_attach(struct engine *e, const struct engine_remote_ops *ops, void *arg,
			 const struct engine_remote_options *o);

/* Counters of the cold tier since attach (all 0 when none is attached). */
struct engine_remote_stats {
	uint64_t uploads; /* segments uploaded and registered */
	uint64_t upload_bytes;
	uint64_t upload_failures; /* attempts that failed (retried later) */
	uint64_t fetches; /* remote segments fetched into the cache */
	uint64_t fetch_bytes;
	uint64_t fetch_failures;
	uint64_t remote_deletes; /* objects deleted by retention */
	uint64_t orphans_deleted; /* objects deleted by the orphan sweep */
	uint64_t cache_bytes; /* DATA/cold-cache's size after the last fetch */
	int last_error; /* the last failure (0 = none since the last success) */
};
void engine_remote_stats_get(struct engine *e, struct engine_remote_stats *out);

/* Wake the upload thread now; engine_remote_drain waits until it finds no
 * segment left to upload (0), or returns its error once an attempt failed
 * after the call (tests, `chronik` tools). */
void engine_remote_kick(struct engine *e);
int engine_remote_drain(struct engine *e);

#endif
