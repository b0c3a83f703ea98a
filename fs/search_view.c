/* search_view.c - MNT/<topic>/search/<query> and
 * MNT/<topic>/<p>/search/<query>: full-text search (search/search.h) as
 * files.
 *
 * A search/ directory lists nothing; looking up any name in it gives a
 * query file whose name is the query text (search.h, QUERY TEXT; a '/'
 * cannot be in a name, everything else can). open() runs the query, over
 * the partition or over the whole topic (merged by timestamp), and the
 * file then holds every matching record (all of them unless the query says
 * limit:N) as JSON Lines, each line as records.jsonl renders it
 * (wal/jsonl.h). The result is made once per open, in memory, and read
 * with direct_io (st_size is 0). A bad query fails open() with EINVAL and
 * says why in the daemon's log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs-private.h"
#include "jsonl.h"
#include "log.h"
#include "search.h"

void fs_queries_init(struct fs_queries *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
}

void fs_queries_fini(struct fs_queries *q)
{
	for (size_t i = 0; i < FS_QUERY_SLOTS; i++)
		free(q->slots[i].text);
	pthread_mutex_destroy(&q->lock);
}

uint32_t fs_query_slot(struct chronikfs *fs, uint32_t tid, int32_t part, const char *text)
{
	struct fs_queries *q = &fs->queries;
	uint32_t s;

	pthread_mutex_lock(&q->lock);
	for (s = 0; s < FS_QUERY_SLOTS; s++) {
		struct fs_query_slot *e = &q->slots[s];
		if (e->tid == tid && e->part == part && e->text && strcmp(e->text, text) == 0)
			goto out;
	}
	s = q->next;
	q->next = (q->next + 1) % FS_QUERY_SLOTS;
	free(q->slots[s].text);
	q->slots[s].text = strdup(text);
	q->slots[s].tid = q->slots[s].text ? tid : 0;
	q->slots[s].part = part;
	q->slots[s].gen = (q->slots[s].gen + 1) & ((1u << (32 - FS_QUERY_SLOT_BITS)) - 1);
out:
	s |= q->slots[s].gen << FS_QUERY_SLOT_BITS;
	pthread_mutex_unlock(&q->lock);
	return s;
}

struct fs_query_slot *fs_query_slot_get(struct fs_queries *q, uint32_t id)
{
	struct fs_query_slot *e = &q->slots[id & (FS_QUERY_SLOTS - 1)];

	return e->text && e->gen == id >> FS_QUERY_SLOT_BITS ? e : NULL;
}

static int render_hit(void *arg, struct partition *p, const struct engine_record *r)
{
	(void)p;
	return jsonl_render(arg, r);
}

int fs_query_render(struct chronikfs *fs, struct fs_topic *t, uint32_t slot, char **out,
		    size_t *len)
{
	struct fs_queries *qs = &fs->queries;
	struct jsonl_buf b = { NULL, 0, 0 };
	struct search_query *q = NULL;
	char *text = NULL, err[512], where[300];
	int32_t part = -1;
	int rc;

	pthread_mutex_lock(&qs->lock);
	struct fs_query_slot *e = fs_query_slot_get(qs, slot);
	if (e && e->tid == t->tid) {
		text = strdup(e->text);
		part = e->part;
	}
	pthread_mutex_unlock(&qs->lock);
	if (!text)
		return -ENOENT;
	if (part >= 0)
		snprintf(where, sizeof(where), "%s/%d", t->name, part);
	else
		snprintf(where, sizeof(where), "%s", t->name);
	rc = search_query_new(text, &q, err, sizeof(err));
	if (rc == -EINVAL) {
		log_msg(LOG_LVL_WARN, "fs", "%s/search/%s: %s", where, text, err);
		goto out;
	}
	if (rc)
		goto out;
	rc = search_run(fs->e, t->name, part, q, render_hit, &b);
	if (rc == 0) {
		*out = b.p;
		*len = b.len;
		b.p = NULL;
	} else {
		log_msg(LOG_LVL_WARN, "fs", "%s/search/%s: %s", where, text, chronik_strerror(rc));
	}
out:
	search_query_free(q);
	free(b.p);
	free(text);
	return rc;
}
