/* testutil.h - helpers shared by the engine tests: temporary data
 * directories and quick engine set-up. Header-only. */
#ifndef CHRONIK_TESTUTIL_H
#define CHRONIK_TESTUTIL_H

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "tap.h"

static inline int testutil_rm_one(const char *path, const struct stat *st, int flag,
				  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A fresh directory under $TMPDIR (or /tmp); caller frees with tmpdir_free. */
static inline char *tmpdir_new(const char *tag)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path;
	if (asprintf(&path, "%s/chronik-%s-XXXXXX", base, tag) < 0 || !mkdtemp(path))
		bail("cannot create a temporary directory");
	return path;
}

static inline void tmpdir_free(char *path)
{
	nftw(path, testutil_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(path);
}

static inline struct engine *open_or_bail(const char *dir, const struct engine_options *o)
{
	struct engine *e;
	int rc = engine_open(dir, o, &e);
	if (rc)
		bail("engine_open(%s): %s", dir, chronik_strerror(rc));
	return e;
}

static inline struct partition *part_or_bail(struct engine *e, const char *topic, int32_t idx)
{
	struct partition *p;
	int rc = engine_partition_get(e, topic, idx, &p);
	if (rc)
		bail("engine_partition_get(%s/%d): %s", topic, idx, chronik_strerror(rc));
	return p;
}

/* The usual start of a test: *o becomes the defaults with
 * wal.segment.bytes seg_bytes (0 keeps the default) and fsync never, and
 * an engine is opened with them on root/sub, whose path goes to dir
 * (dirlen bytes): open_or_bail(dir, o) reopens it. */
static inline struct engine *open_fresh_or_bail(const char *root, const char *sub,
					       uint64_t seg_bytes, struct engine_options *o,
					       char *dir, size_t dirlen)
{
	snprintf(dir, dirlen, "%s/%s", root, sub);
	engine_options_init(o);
	if (seg_bytes)
		o->wal_segment_bytes = seg_bytes;
	o->fsync = FSYNC_NEVER;
	return open_or_bail(dir, o);
}

/* A topic of one partition (config_json NULL: the defaults) created in e;
 * returns its partition 0, for the caller to unref. */
static inline struct partition *topic_or_bail(struct engine *e, const char *name,
					      const char *config_json)
{
	int rc = engine_topic_create(e, name, 1, config_json);
	if (rc)
		bail("engine_topic_create(%s): %s", name, chronik_strerror(rc));
	return part_or_bail(e, name, 0);
}

#endif
