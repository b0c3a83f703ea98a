/* inode.c - inode numbers and the topics this mount knows.
 *
 * The numbering is in fs-private.h. Topics live in the engine; this table
 * only gives each one a topic id (tid) for inode numbers and keeps an engine
 * reference on every partition, so request handlers never look partitions
 * up by name. A topic created elsewhere (Kafka) enters the table on its
 * first lookup; a topic deleted here leaves it at once; one deleted or
 * recreated elsewhere is noticed on the next lookup of its name (the root's
 * entries have a zero entry timeout, so every path walk does that lookup).
 *
 * A lookup reads a topic's partition count and gets its partitions by name,
 * in several engine calls, while another front-end may delete the topic and
 * create it again with another count. Topic ids are never reused and a
 * topic's count never goes down, so a lookup is consistent when every
 * partition it holds has partition 0's topic id and the count was read
 * while that topic was current: partition 0 is got before and after the
 * count (same id: the topic was current in between). Otherwise the lookup
 * starts again (at most LOOKUP_TRIES times, then EAGAIN).
 *
 * A count raised (Kafka's CreatePartitions) is seen by the next lookup of
 * the name, which every path walk does: the table's topic, with fewer
 * partitions than the engine's, is replaced by one built anew under the
 * same tid, so inode numbers stay and the new partition directories show
 * at once. Open files keep the topic object they were opened on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs-private.h"

#define LOOKUP_TRIES 16

fuse_ino_t fs_ino_make(enum fs_kind kind, uint32_t tid, int32_t part)
{
	uint64_t hi = (uint64_t)tid << 32;
	uint64_t pd = ((uint64_t)(uint32_t)part + 1) << 3;

	switch (kind) {
	case FS_ROOT:
		return FUSE_ROOT_ID;
	case FS_TOPIC:
		return hi;
	case FS_CONFIG:
		return hi | 1;
	case FS_PART:
		return hi | pd;
	case FS_DATA:
		return hi | pd | 1;
	case FS_JSONL:
		return hi | pd | 2;
	case FS_INFO:
		return hi | pd | 3;
	case FS_SEARCHDIR:
		return part < 0 ? hi | 2 : hi | pd | 4;
	case FS_GROUPSDIR:
		return 2;
	case FS_QUERY:
	case FS_GROUP:
		return 0; /* fs_ino_number: it needs the slot */
	}
	return 0;
}

fuse_ino_t fs_ino_number(const struct fs_ino *in)
{
	if (in->kind == FS_QUERY)
		return (1ull << 63) | ((uint64_t)in->tid << 32) | in->slot;
	if (in->kind == FS_GROUP)
		return (1ull << 63) | in->slot;
	return fs_ino_make(in->kind, in->tid, in->part);
}

int fs_ino_decode(fuse_ino_t ino, struct fs_ino *out)
{
	uint32_t lo = (uint32_t)ino;

	out->tid = (uint32_t)(ino >> 32);
	out->part = -1;
	out->slot = 0;
	if (ino >> 63) {
		out->tid &= 0x7fffffff;
		out->kind = out->tid ? FS_QUERY : FS_GROUP;
		out->slot = lo; /* checked at use (fs_query_slot_get) */
		return 0;
	}
	if (ino == FUSE_ROOT_ID) {
		out->kind = FS_ROOT;
		return 0;
	}
	if (ino == 2) {
		out->kind = FS_GROUPSDIR;
		return 0;
	}
	if (out->tid == 0)
		return -ENOENT;
	if (lo == 0) {
		out->kind = FS_TOPIC;
		return 0;
	}
	if (lo == 1) {
		out->kind = FS_CONFIG;
		return 0;
	}
	if (lo == 2) {
		out->kind = FS_SEARCHDIR;
		return 0;
	}
	if (lo < 8 || (lo & 7) > 4)
		return -ENOENT;
	out->part = (int32_t)((lo >> 3) - 1);
	static const enum fs_kind kinds[5] = { FS_PART, FS_DATA, FS_JSONL, FS_INFO, FS_SEARCHDIR };
	out->kind = kinds[lo & 7];
	return 0;
}

void fs_table_init(struct fs_table *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->next_tid = 1;
}

void fs_table_fini(struct fs_table *t)
{
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i])
			fs_topic_unref(t->slots[i]);
	free(t->slots);
	pthread_mutex_destroy(&t->lock);
}

void fs_topic_ref(struct fs_topic *t)
{
	atomic_fetch_add(&t->refs, 1);
}

void fs_topic_unref(struct fs_topic *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (int32_t i = 0; i < t->nparts; i++) {
		jsonl_view_fini(&t->parts[i].jv);
		if (t->parts[i].p)
			engine_partition_unref(t->parts[i].p);
	}
	free(t->name);
	free(t);
}

/* The slot holding a topic called name, or NULL. Caller holds the lock. */
static struct fs_topic **table_find_name(struct fs_table *tb, const char *name)
{
	for (size_t i = 0; i < tb->cap; i++)
		if (tb->slots[i] && strcmp(tb->slots[i]->name, name) == 0)
			return &tb->slots[i];
	return NULL;
}

/* Build a topic object holding references on all nparts partitions; p0
 * (already referenced) becomes partition 0's: it is the new topic's, or
 * released, whatever happens. */
static int topic_build(struct engine *e, const char *name, int32_t nparts, struct partition *p0,
		       struct fs_topic **out)
{
	struct fs_topic *t = calloc(1, sizeof(*t) + (size_t)nparts * sizeof(t->parts[0]));
	int err;

	if (!t) {
		engine_partition_unref(p0);
		return -ENOMEM;
	}
	t->name = strdup(name);
	if (!t->name) {
		free(t);
		engine_partition_unref(p0);
		return -ENOMEM;
	}
	atomic_init(&t->refs, 1);
	atomic_init(&t->config_mtime_ns, 0);
	t->nparts = nparts;
	for (int32_t i = 0; i < nparts; i++) {
		t->parts[i].topic = t;
		t->parts[i].index = i;
		jsonl_view_init(&t->parts[i].jv);
	}
	t->parts[0].p = p0;
	uint32_t id = engine_partition_topic_id(p0);
	for (int32_t i = 1; i < nparts; i++) {
		err = engine_partition_get(e, name, i, &t->parts[i].p);
		if (err == 0 && engine_partition_topic_id(t->parts[i].p) != id)
			err = -EAGAIN; /* the name is another topic's now */
		if (err < 0) {
			fs_topic_unref(t);
			/* p0's topic is gone or replaced (its count was read
			 * while it was current): the caller looks again. */
			return err == CHRONIK_ENOTOPIC ? -EAGAIN : err;
		}
	}
	*out = t;
	return 0;
}

/* Put t in the table: under tid when tid != 0 (a topic rebuilt with more
 * partitions, whose slot the caller has emptied), else under a new tid. */
static int table_insert(struct fs_table *tb, struct fs_topic *t, uint32_t tid)
{
	if (tid) {
		t->tid = tid;
		tb->slots[tid] = t;
		fs_topic_ref(t); /* the table's reference */
		return 0;
	}
	tid = tb->next_tid;

	if (tid >= tb->cap) {
		size_t ncap = tb->cap ? tb->cap * 2 : 64;
		while (ncap <= tid)
			ncap *= 2;
		struct fs_topic **ns = realloc(tb->slots, ncap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		memset(ns + tb->cap, 0, (ncap - tb->cap) * sizeof(*ns));
		tb->slots = ns;
		tb->cap = ncap;
	}
	tb->next_tid++;
	t->tid = tid;
	tb->slots[tid] = t;
	fs_topic_ref(t); /* the table's reference */
	return 0;
}

/* Partition 0 of the topic called name (referenced) and that topic's
 * partition count, read while it was the topic of that name (see the top). */
static int topic_current(struct engine *e, const char *name, int32_t *nparts, struct partition **p0)
{
	for (int tries = 0; tries < LOOKUP_TRIES; tries++) {
		struct partition *a, *b;
		int32_t n = 0;
		int err = engine_partition_get(e, name, 0, &a);
		if (err < 0)
			return err;
		err = engine_topic_partitions(e, name, &n);
		if (err == 0)
			err = engine_partition_get(e, name, 0, &b);
		if (err < 0) {
			engine_partition_unref(a);
			return err;
		}
		bool same = engine_partition_topic_id(a) == engine_partition_topic_id(b);
		engine_partition_unref(b);
		if (same) {
			*nparts = n;
			*p0 = a;
			return 0;
		}
		engine_partition_unref(a);
	}
	return -EAGAIN;
}

int fs_topic_lookup(struct chronikfs *fs, const char *name, struct fs_topic **out)
{
	struct fs_table *tb = &fs->table;
	struct partition *p0 = NULL;
	struct fs_topic **slot, *t = NULL, *stale = NULL;
	int32_t nparts = 0;
	uint32_t keep_tid;
	int err, tries = 0;

	if (!engine_topic_name_valid(name))
		return -ENOENT;
again:
	t = NULL;
	stale = NULL;
	p0 = NULL;
	keep_tid = 0;
	err = topic_current(fs->e, name, &nparts, &p0);
	if (err < 0 || nparts <= 0) {
		if (p0)
			engine_partition_unref(p0);
		/* gone from the engine: drop it here too */
		pthread_mutex_lock(&tb->lock);
		slot = table_find_name(tb, name);
		if (slot) {
			stale = *slot;
			*slot = NULL;
		}
		pthread_mutex_unlock(&tb->lock);
		fs_topic_unref(stale);
		return err == CHRONIK_ENOTOPIC || err == 0 ? -ENOENT : -fs_errno(err);
	}

	pthread_mutex_lock(&tb->lock);
	slot = table_find_name(tb, name);
	if (slot && (*slot)->parts[0].p == p0 && (*slot)->nparts >= nparts) {
		t = *slot;
		fs_topic_ref(t);
	} else if (slot && (*slot)->parts[0].p == p0) {
		keep_tid = (*slot)->tid; /* grown: rebuilt below, same tid */
	} else if (slot) {
		stale = *slot; /* recreated behind our back */
		*slot = NULL;
	}
	pthread_mutex_unlock(&tb->lock);
	fs_topic_unref(stale);
	if (t) {
		engine_partition_unref(p0);
		*out = t;
		return 0;
	}

	/* Not known: build outside the lock (engine calls), then insert
	 * unless another thread won the race. */
	err = topic_build(fs->e, name, nparts, p0, &t);
	if (err == -EAGAIN && ++tries < LOOKUP_TRIES)
		goto again;
	if (err < 0)
		return -fs_errno(err);
	pthread_mutex_lock(&tb->lock);
	slot = table_find_name(tb, name);
	if (slot && (*slot)->parts[0].p == t->parts[0].p && (*slot)->nparts >= t->nparts) {
		struct fs_topic *won = *slot;
		fs_topic_ref(won);
		pthread_mutex_unlock(&tb->lock);
		fs_topic_unref(t);
		*out = won;
		return 0;
	}
	if (slot) {
		/* The same topic with fewer partitions keeps its tid. */
		if ((*slot)->parts[0].p != t->parts[0].p || (*slot)->tid != keep_tid)
			keep_tid = 0;
		stale = *slot;
		*slot = NULL;
	} else {
		keep_tid = 0;
	}
	err = table_insert(tb, t, keep_tid);
	pthread_mutex_unlock(&tb->lock);
	fs_topic_unref(stale);
	if (err < 0) {
		fs_topic_unref(t);
		return err;
	}
	*out = t;
	return 0;
}

struct fs_topic *fs_topic_get(struct chronikfs *fs, uint32_t tid)
{
	struct fs_table *tb = &fs->table;
	struct fs_topic *t = NULL;

	pthread_mutex_lock(&tb->lock);
	if (tid < tb->cap && tb->slots[tid]) {
		t = tb->slots[tid];
		fs_topic_ref(t);
	}
	pthread_mutex_unlock(&tb->lock);
	return t;
}

void fs_topic_forget(struct chronikfs *fs, struct fs_topic *t)
{
	struct fs_table *tb = &fs->table;
	bool had = false;

	pthread_mutex_lock(&tb->lock);
	if (t->tid < tb->cap && tb->slots[t->tid] == t) {
		tb->slots[t->tid] = NULL;
		had = true;
	}
	pthread_mutex_unlock(&tb->lock);
	if (had)
		fs_topic_unref(t);
}

int fs_partition_inodes(struct chronikfs *fs, struct partition *p, fuse_ino_t ino[3])
{
	struct fs_table *tb = &fs->table;
	const char *name = engine_partition_topic(p);
	int32_t idx = engine_partition_index(p);
	int found = 0;

	pthread_mutex_lock(&tb->lock);
	struct fs_topic **slot = table_find_name(tb, name);
	if (slot && idx >= 0 && idx < (*slot)->nparts && (*slot)->parts[idx].p == p) {
		uint32_t tid = (*slot)->tid;
		ino[0] = fs_ino_make(FS_DATA, tid, idx);
		ino[1] = fs_ino_make(FS_JSONL, tid, idx);
		ino[2] = fs_ino_make(FS_INFO, tid, idx);
		found = 1;
	}
	pthread_mutex_unlock(&tb->lock);
	return found;
}
