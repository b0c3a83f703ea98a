/* segment_hook.c - the segment hook (engine.h, "segment hooks"): one
 * companion per engine is told of every segment file written, and keeps
 * sidecar files (<segment file><suffix>) that segment.c removes with their
 * segment. The engine calls it without knowing what it does, so that
 * wal/ links nothing a companion needs (search/ links SQLite). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "engine-private.h"
#include "segment.h"

int engine_segment_hook_set(struct engine *e, const char *suffix, engine_segment_written_fn fn,
			    void *arg)
{
	int rc = segment_sidecar_register(suffix);

	if (rc)
		return rc;
	pthread_mutex_lock(&e->hook_lock);
	e->seg_written = fn;
	e->seg_written_arg = arg;
	pthread_mutex_unlock(&e->hook_lock);
	return 0;
}

void warm_segment_written(struct engine *e, struct partition *p, const char *path)
{
	/* Under hook_lock: one call at a time, from the indexer's workers and
	 * the compaction thread alike. */
	pthread_mutex_lock(&e->hook_lock);
	if (e->seg_written)
		e->seg_written(e->seg_written_arg, p, path);
	pthread_mutex_unlock(&e->hook_lock);
}

void engine_partition_segment_dir(struct partition *p, char *buf, size_t len)
{
	warm_dir(p->e, p->topic_id, p->index, buf, len);
}
