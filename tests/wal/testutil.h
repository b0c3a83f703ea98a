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

#endif
