/* meta.c - topics, configs and consumer-group offsets, kept in the metadata
 * log DATA/meta.log.
 *
 * The metadata log is a WAL file (the 32-byte file header of frame.h, with
 * sequence number 0) holding V1 frames only: topic id 0, partition 0, offset
 * = the frame's sequence in the log, timestamp = wall clock (ms); the key
 * names the event and the value is a JSON object (json-c):
 *
 *   key "topic.create"  {"name": S, "id": N, "partitions": N,
 *                        "config": {...}, "ctime_ns": N}
 *   key "topic.delete"  {"id": N}
 *   key "topic.config"  {"id": N, "config": {...}}
 *   key "topic.partitions" {"id": N, "partitions": N}  (the count raised
 *                        by engine_topic_partitions_add; never lowered)
 *   key "group.offset"  {"group": S, "topic": S, "partition": N,
 *                        "offset": N, "metadata": S or null}
 *   key "group.offsets" {"group": S, "offsets": [{"topic": S,
 *                        "partition": N, "offset": N, "metadata": S or
 *                        null}, ...]}  (one OffsetCommit request's)
 *   key "group.offsets_delete" {"group": S, "offsets": [{"topic": S,
 *                        "partition": N}, ...]}  (one OffsetDelete
 *                        request's: those committed offsets forgotten)
 *   key "group.delete"  {"group": S}  (every offset of the group forgotten)
 *   key "topic.next_id" {"next_id": N}  (written by snapshots, so that a
 *                        deleted topic's id is never handed out again)
 *
 * A group exists while it has at least one committed offset: forgetting
 * its last one forgets the group. A snapshot holds only the offsets that
 * remain.
 *
 * Replaying the log in order rebuilds the state; an unknown key is logged
 * and skipped (forward compatibility). A known event is checked as the
 * live call that wrote it would have checked it, and one that the live
 * call could not have written is corruption (CHRONIK_ECORRUPT, the open
 * fails as for any damage before the tail):
 *   topic.create  name valid (engine_topic_name_valid), 1 <= id <=
 *                 UINT32_MAX, 1 <= partitions <= TOPIC_PARTITIONS_MAX,
 *                 config absent or an object, and no other live topic of
 *                 that name (the same id again is a snapshot's repeat,
 *                 and is skipped);
 *   topic.config  config an object;
 *   topic.partitions  1 <= partitions <= TOPIC_PARTITIONS_MAX, and above
 *                 the topic's count (an unknown id is skipped, as for
 *                 topic.config);
 *   group.offset  group and topic strings, partition >= 0 (each entry of
 *                 group.offsets and group.offsets_delete likewise);
 *   group.delete  group a string.
 *
 * Each event is one frame, written
 * with one pwrite and made durable with one fdatasync before the call
 * returns (the offsets of one engine_group_offsets_commit call, one
 * OffsetCommit request, are one "group.offsets" event); a failed one is
 * cut off durably, or every later one fails (meta_write). Every frame
 * carries FRAME_FLAG_GROUP_END. An event is written only once the one
 * before it is durable, so only the last frame can be torn: recovery
 * truncates an invalid frame that no valid frame follows, and any other
 * invalid frame fails the open unless repair. A value cannot fake a valid
 * frame after a torn one: values are JSON text, in which a frame header's
 * binary fields (NUL bytes among them) cannot stand. When the log holds
 * many more entries than the state needs (an offsets event counts one per
 * offset; more than META_SNAPSHOT_MIN_FRAMES, and four times the state's),
 * it is rewritten
 * as a snapshot, at open and after an offset commit while running:
 * meta.log.tmp is written and fsynced, renamed over meta.log, and the
 * directory fsynced. So offsets committed over and over keep the log
 * bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine-private.h"
#include "log.h"

#define META_SNAPSHOT_MIN_FRAMES 4096
/* The most partitions a topic may have (create and replay). */
#define TOPIC_PARTITIONS_MAX 100000

bool engine_topic_name_valid(const char *name)
{
	size_t n = 0;
	if (!name)
		return false;
	for (const char *c = name; *c; c++, n++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
			return false;
	}
	return n >= 1 && n <= 249 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

struct topic *meta_topic_find(struct engine *e, const char *name)
{
	for (size_t i = 0; i < e->ntopics; i++)
		if (strcmp(e->topics[i]->name, name) == 0)
			return e->topics[i];
	return NULL;
}

struct topic *meta_topic_find_id(struct engine *e, uint32_t id)
{
	for (size_t i = 0; i < e->ntopics; i++)
		if (e->topics[i]->id == id)
			return e->topics[i];
	return NULL;
}

/* ---- the state ----------------------------------------------------------- */

static void topic_free(struct topic *t)
{
	for (int32_t i = 0; i < t->nparts; i++)
		if (t->parts[i]) {
			pthread_mutex_lock(&t->parts[i]->lock);
			t->parts[i]->deleted = true;
			t->parts[i]->t = NULL;
			pthread_cond_broadcast(&t->parts[i]->grown);
			pthread_mutex_unlock(&t->parts[i]->lock);
			engine_partition_unref(t->parts[i]);
		}
	free(t->parts);
	free(t->name);
	free(t->config_json);
	free(t);
}

/* Only a JSON object whose pairs pass engine_topic_config_check is a
 * config (-EINVAL); NULL means {}. The pairs old (the topic's stored
 * config, or NULL) holds unchanged are not checked again
 * (topic_config_check_object). *out malloc'd, canonical. */
static int config_normalize(const char *json, const char *old, char **out)
{
	json_object *o, *keep;
	char why[160] = "";
	int rc;

	if (!json) {
		*out = strdup("{}");
		return *out ? 0 : -ENOMEM;
	}
	o = json_tokener_parse(json);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EINVAL;
	}
	keep = old ? json_tokener_parse(old) : NULL;
	rc = topic_config_check_object(o, keep, why, sizeof(why));
	json_object_put(keep);
	if (rc) {
		log_msg(LOG_LVL_DEBUG, "meta", "topic config refused: %s", why);
		json_object_put(o);
		return rc;
	}
	*out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return *out ? 0 : -ENOMEM;
}

static int state_topic_add(struct engine *e, const char *name, uint32_t id, int32_t nparts,
			   const char *config, int64_t ctime)
{
	struct topic *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->name = strdup(name);
	t->config_json = strdup(config);
	t->parts = calloc((size_t)nparts, sizeof(*t->parts));
	t->id = id;
	t->nparts = nparts;
	t->ctime_ns = ctime;
	if (!t->name || !t->config_json || !t->parts)
		goto fail;
	for (int32_t i = 0; i < nparts; i++) {
		t->parts[i] = partition_new(e, t, i);
		if (!t->parts[i])
			goto fail;
	}
	if (e->ntopics == e->topics_cap) {
		size_t cap = e->topics_cap ? e->topics_cap * 2 : 16;
		struct topic **v = realloc(e->topics, cap * sizeof(*v));
		if (!v)
			goto fail;
		e->topics = v;
		e->topics_cap = cap;
	}
	e->topics[e->ntopics++] = t;
	if (id >= e->next_topic_id)
		e->next_topic_id = id + 1;
	return 0;
fail:
	topic_free(t);
	return -ENOMEM;
}

static void state_topic_remove(struct engine *e, struct topic *t)
{
	for (size_t i = 0; i < e->ntopics; i++)
		if (e->topics[i] == t) {
			e->topics[i] = e->topics[--e->ntopics];
			break;
		}
	topic_free(t);
}

static json_object *group_slot(struct engine *e, const char *group, bool create)
{
	json_object *g;
	if (json_object_object_get_ex(e->groups, group, &g))
		return g;
	if (!create)
		return NULL;
	g = json_object_new_object();
	json_object_object_add(e->groups, group, g);
	return g;
}

static void state_group_offset(struct engine *e, const char *group, const char *topic,
			       int32_t partition, int64_t offset, const char *metadata)
{
	char key[300];
	json_object *g = group_slot(e, group, true), *v = json_object_new_object();
	snprintf(key, sizeof(key), "%s/%d", topic, partition);
	json_object_object_add(v, "offset", json_object_new_int64(offset));
	json_object_object_add(v, "metadata", metadata ? json_object_new_string(metadata) : NULL);
	json_object_object_add(g, key, v);
}

static void state_group_offset_delete(struct engine *e, const char *group, const char *topic,
				      int32_t partition)
{
	char key[300];
	json_object *g = group_slot(e, group, false);
	if (!g)
		return;
	snprintf(key, sizeof(key), "%s/%d", topic, partition);
	json_object_object_del(g, key);
	if (json_object_object_length(g) == 0)
		json_object_object_del(e->groups, group);
}

/* Raise t's partition count to np (> t->nparts). Caller holds meta_lock
 * (write), so no reader walks t->parts meanwhile. */
static int state_topic_grow(struct engine *e, struct topic *t, int32_t np)
{
	struct partition **v = realloc(t->parts, (size_t)np * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->parts = v;
	for (int32_t i = t->nparts; i < np; i++) {
		t->parts[i] = partition_new(e, t, i);
		if (!t->parts[i])
			return -ENOMEM;
		t->nparts = i + 1;
	}
	return 0;
}

/* Apply one event to the state (replay and live). */
static int state_apply(struct engine *e, const char *type, json_object *v)
{
	json_object *f;
	const char *s;
#define GET_INT(name) (json_object_object_get_ex(v, name, &f) ? json_object_get_int64(f) : -1)
#define GET_STR(name) (json_object_object_get_ex(v, name, &f) ? json_object_get_string(f) : NULL)
	if (strcmp(type, "topic.create") == 0) {
		const char *name = GET_STR("name");
		int64_t id = GET_INT("id"), np = GET_INT("partitions"), ct = GET_INT("ctime_ns");
		json_object *cfg = NULL;
		json_object_object_get_ex(v, "config", &cfg);
		if (!name || !engine_topic_name_valid(name) || id <= 0 || id > UINT32_MAX ||
		    np <= 0 || np > TOPIC_PARTITIONS_MAX ||
		    (cfg && !json_object_is_type(cfg, json_type_object)))
			return CHRONIK_ECORRUPT;
		/* A snapshot re-read by a live reader repeats known topics. */
		if (meta_topic_find_id(e, (uint32_t)id))
			return 0;
		if (meta_topic_find(e, name))
			return CHRONIK_ECORRUPT;
		return state_topic_add(
			e, name, (uint32_t)id, (int32_t)np,
			cfg ? json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN) : "{}",
			ct);
	}
	if (strcmp(type, "topic.delete") == 0) {
		struct topic *t = meta_topic_find_id(e, (uint32_t)GET_INT("id"));
		if (t)
			state_topic_remove(e, t);
		return 0;
	}
	if (strcmp(type, "topic.config") == 0) {
		struct topic *t = meta_topic_find_id(e, (uint32_t)GET_INT("id"));
		json_object *cfg = NULL;
		char *c;
		json_object_object_get_ex(v, "config", &cfg);
		if (!cfg || !json_object_is_type(cfg, json_type_object))
			return CHRONIK_ECORRUPT;
		if (!t)
			return 0;
		c = strdup(json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN));
		if (!c)
			return -ENOMEM;
		free(t->config_json);
		t->config_json = c;
		return 0;
	}
	if (strcmp(type, "topic.partitions") == 0) {
		struct topic *t = meta_topic_find_id(e, (uint32_t)GET_INT("id"));
		int64_t np = GET_INT("partitions");
		if (np <= 0 || np > TOPIC_PARTITIONS_MAX || (t && np <= t->nparts))
			return CHRONIK_ECORRUPT;
		return t ? state_topic_grow(e, t, (int32_t)np) : 0;
	}
	if (strcmp(type, "group.delete") == 0) {
		const char *group = GET_STR("group");
		if (!group)
			return CHRONIK_ECORRUPT;
		json_object_object_del(e->groups, group);
		return 0;
	}
	if (strcmp(type, "group.offset") == 0) {
		const char *group = GET_STR("group"), *topic = GET_STR("topic");
		if (!group || !topic || GET_INT("partition") < 0 ||
		    GET_INT("partition") > INT32_MAX)
			return CHRONIK_ECORRUPT;
		s = GET_STR("metadata");
		state_group_offset(e, group, topic, (int32_t)GET_INT("partition"),
				   GET_INT("offset"), s);
		return 0;
	}
	if (strcmp(type, "group.offsets") == 0 || strcmp(type, "group.offsets_delete") == 0) {
		bool forget = strcmp(type, "group.offsets_delete") == 0;
		const char *group = GET_STR("group");
		json_object *arr = NULL, *x;
		size_t n;
		if (!group || !json_object_object_get_ex(v, "offsets", &arr) ||
		    !json_object_is_type(arr, json_type_array))
			return CHRONIK_ECORRUPT;
		n = json_object_array_length(arr);
		/* Every entry is checked before any is applied. */
		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_array_get_idx(arr, i);
			int64_t part;
			if (!json_object_object_get_ex(o, "topic", &x) ||
			    !json_object_is_type(x, json_type_string) ||
			    !json_object_object_get_ex(o, "partition", &x) ||
			    !json_object_is_type(x, json_type_int))
				return CHRONIK_ECORRUPT;
			part = json_object_get_int64(x);
			if (part < 0 || part > INT32_MAX)
				return CHRONIK_ECORRUPT;
		}
		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_array_get_idx(arr, i);
			json_object_object_get_ex(o, "topic", &x);
			const char *topic = json_object_get_string(x);
			json_object_object_get_ex(o, "partition", &x);
			int32_t part = json_object_get_int(x);
			if (forget) {
				state_group_offset_delete(e, group, topic, part);
				continue;
			}
			int64_t off = json_object_object_get_ex(o, "offset", &x) ?
					      json_object_get_int64(x) :
					      -1;
			s = json_object_object_get_ex(o, "metadata", &x) &&
					    json_object_is_type(x, json_type_string) ?
				    json_object_get_string(x) :
				    NULL;
			state_group_offset(e, group, topic, part, off, s);
		}
		return 0;
	}
	if (strcmp(type, "topic.next_id") == 0) {
		int64_t n = GET_INT("next_id");
		if (n > 0 && (uint64_t)n > e->next_topic_id)
			e->next_topic_id = (uint32_t)n;
		return 0;
	}
#undef GET_INT
#undef GET_STR
	log_msg(LOG_LVL_WARN, "meta", "unknown metadata event \"%s\" skipped", type);
	return 0;
}

/* ---- the log -------------------------------------------------------------- */

/* One event as one frame (a group of its own: FRAME_FLAG_GROUP_END). */
static int meta_encode(struct engine *e, const char *type, json_object *v, uint8_t **out,
		       size_t *len)
{
	struct frame_info fi = { 0 };
	const char *val = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	fi.flags = FRAME_FLAG_GROUP_END;
	fi.topic_id = 0;
	fi.partition = 0;
	fi.base_offset = e->meta_seq;
	fi.timestamp = now_ms();
	fi.key = (const uint8_t *)type;
	fi.key_len = (int32_t)strlen(type);
	fi.value = (const uint8_t *)val;
	fi.value_len = (int32_t)strlen(val);
	return frame_v1_encode(&fi, out, len);
}

/* Write one event durably, then apply it. Caller holds meta_lock (write).
 * Takes ownership of v.
 *
 * A failed write or fdatasync fails the event, and the log is cut back to
 * where the event began and the cut made durable (ftruncate + fdatasync;
 * every earlier event was synced already, so that fdatasync has only the
 * size to persist): else the event, complete in the page cache, could
 * reach the disk and be replayed after a crash although it was reported
 * failed. When the cut fails too, every later event fails with the error
 * (meta_failed, logged once) until the engine is reopened. */
/* Write buf[0, len) (whole events, the last with GROUP_END) at the log's
 * end and fdatasync it; on success the log has grown by len. Caller holds
 * meta_lock (write). A failed write or fdatasync is cut off durably, or
 * else every later write fails (meta_failed): see meta_log. */
static int meta_write(struct engine *e, const uint8_t *buf, size_t len)
{
	int rc = e->meta_failed;

	if (rc)
		return rc;
	ssize_t w = pwrite(e->meta_fd, buf, len, (off_t)e->meta_size);
	if (w < 0)
		rc = -errno;
	else if ((size_t)w != len)
		rc = -ENOSPC; /* a short write: the device is full (errno is stale) */
	else if (fdatasync(e->meta_fd) < 0)
		rc = -errno;
	if (rc) {
		log_msg(LOG_LVL_ERROR, "meta", "metadata log write failed: %s",
			chronik_strerror(rc));
		if (ftruncate(e->meta_fd, (off_t)e->meta_size) < 0 || fdatasync(e->meta_fd) < 0) {
			e->meta_failed = rc;
			log_msg(LOG_LVL_ERROR, "meta",
				"cannot cut the failed event off the metadata log (%s): no more "
				"metadata changes until the data directory is opened again",
				chronik_strerror(-errno));
		}
		return rc;
	}
	e->meta_size += len;
	return 0;
}

/* Write one event v counting n entries (n offsets for "group.offsets" and
 * "group.offsets_delete", else 1) as one frame, one pwrite, one fdatasync,
 * then apply it. Caller
 * holds meta_lock (write). Does not take ownership of v. */
static int meta_log_entries(struct engine *e, const char *type, json_object *v, size_t n)
{
	uint8_t *f;
	size_t len;
	int rc;

	if (e->opt.read_only)
		return -EROFS;
	rc = e->meta_failed;
	if (rc)
		return rc;
	rc = meta_encode(e, type, v, &f, &len);
	if (rc)
		return rc;
	rc = meta_write(e, f, len);
	free(f);
	if (rc)
		return rc;
	e->meta_seq++;
	e->meta_frames += n; /* entries: the snapshot rule weighs offsets */
	return state_apply(e, type, v);
}

static int meta_log(struct engine *e, const char *type, json_object *v)
{
	int rc = meta_log_entries(e, type, v, 1);
	json_object_put(v);
	return rc;
}

struct replay {
	struct engine *e;
	int rc;
	uint64_t end;
	enum frame_status bad;
	uint64_t bad_pos;
};

static int replay_frame(void *arg, uint64_t pos, enum frame_status st, const struct frame_info *fi)
{
	struct replay *r = arg;
	char type[64];
	json_object *v;

	if (st != FRAME_VALID) {
		r->bad = st;
		r->bad_pos = pos;
		return 1;
	}
	r->end = pos + fi->frame_len;
	r->e->meta_seq = fi->base_offset + 1;
	r->e->meta_frames++;
	if (fi->version != 1 || fi->key_len <= 0 || fi->key_len >= (int32_t)sizeof(type) ||
	    fi->value_len <= 0) {
		r->rc = CHRONIK_ECORRUPT;
		return 1;
	}
	memcpy(type, fi->key, (size_t)fi->key_len);
	type[fi->key_len] = 0;
	char *text = strndup((const char *)fi->value, (size_t)fi->value_len);
	v = text ? json_tokener_parse(text) : NULL;
	free(text);
	if (!v) {
		r->rc = CHRONIK_ECORRUPT;
		return 1;
	}
	r->rc = state_apply(r->e, type, v);
	json_object_put(v);
	return r->rc != 0;
}

static void meta_state_events(struct engine *e, void (*emit)(void *, const char *, json_object *),
			      void *arg)
{
	json_object *v = json_object_new_object();
	json_object_object_add(v, "next_id", json_object_new_int64(e->next_topic_id));
	emit(arg, "topic.next_id", v);
	for (size_t i = 0; i < e->ntopics; i++) {
		struct topic *t = e->topics[i];
		v = json_object_new_object();
		json_object_object_add(v, "name", json_object_new_string(t->name));
		json_object_object_add(v, "id", json_object_new_int64(t->id));
		json_object_object_add(v, "partitions", json_object_new_int(t->nparts));
		json_object_object_add(v, "config", json_tokener_parse(t->config_json));
		json_object_object_add(v, "ctime_ns", json_object_new_int64(t->ctime_ns));
		emit(arg, "topic.create", v);
	}
	json_object_object_foreach(e->groups, group, g)
	{
		json_object_object_foreach(g, key, o)
		{
			const char *slash = strrchr(key, '/');
			json_object *f;
			if (!slash)
				continue;
			v = json_object_new_object();
			json_object_object_add(v, "group", json_object_new_string(group));
			json_object_object_add(v, "topic",
					       json_object_new_string_len(key, (int)(slash - key)));
			json_object_object_add(v, "partition",
					       json_object_new_int(atoi(slash + 1)));
			json_object_object_get_ex(o, "offset", &f);
			json_object_object_add(v, "offset", json_object_get(f));
			json_object_object_get_ex(o, "metadata", &f);
			json_object_object_add(v, "metadata", json_object_get(f));
			emit(arg, "group.offset", v);
		}
	}
}

struct snap {
	struct engine *e;
	int fd;
	uint64_t size;
	int64_t seq;
	int rc;
};

static void snap_emit(void *arg, const char *type, json_object *v)
{
	struct snap *s = arg;
	uint8_t *f;
	size_t len;
	int64_t saved = s->e->meta_seq;

	s->e->meta_seq = s->seq;
	if (s->rc == 0 && (s->rc = meta_encode(s->e, type, v, &f, &len)) == 0) {
		ssize_t w = pwrite(s->fd, f, len, (off_t)s->size);
		if (w != (ssize_t)len)
			s->rc = w < 0 ? -errno : -ENOSPC;
		s->size += len;
		s->seq++;
		free(f);
	}
	s->e->meta_seq = saved;
	json_object_put(v);
}

/* Rewrite meta.log as the events of the current state. *renamed: set once
 * meta.log is the snapshot (an error after that is the directory fsync). */
static int meta_snapshot(struct engine *e, int top_fd, bool *renamed)
{
	char path[4096], tmp[4200];
	struct snap s = { .e = e, .size = WAL_FILE_HEADER_SIZE, .seq = 0 };

	snprintf(path, sizeof(path), "%s/meta.log", e->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	s.fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (s.fd < 0)
		return -errno;
	s.rc = wal_file_header_write(s.fd, 0);
	meta_state_events(e, snap_emit, &s);
	if (s.rc == 0 && fsync(s.fd) < 0)
		s.rc = -errno;
	if (s.rc == 0 && rename(tmp, path) < 0)
		s.rc = -errno;
	if (s.rc) {
		close(s.fd);
		unlink(tmp);
		return s.rc;
	}
	/* Renamed: meta.log is the snapshot now, so switch to it before
	 * reporting anything. */
	*renamed = true;
	log_msg(LOG_LVL_INFO, "meta",
		"metadata log compacted from %" PRIu64 " to %" PRId64 " events", e->meta_frames,
		s.seq);
	close(e->meta_fd);
	e->meta_fd = s.fd;
	e->meta_size = s.size;
	e->meta_seq = s.seq;
	e->meta_frames = (uint64_t)s.seq;
	if (fsync_dir(top_fd) < 0) {
		s.rc = -errno;
		log_msg(LOG_LVL_ERROR, "meta", "fsync of %s after the metadata snapshot failed: %s",
			e->dir, chronik_strerror(s.rc));
		return s.rc;
	}
	return 0;
}

/* Does the log hold many more events than the state? (meta_lock) */
static bool meta_snapshot_due(struct engine *e)
{
	uint64_t state = e->ntopics + 1;
	json_object_object_foreach(e->groups, group, g)
	{
		(void)group;
		state += (uint64_t)json_object_object_length(g);
	}
	return e->meta_frames > META_SNAPSHOT_MIN_FRAMES && e->meta_frames > 4 * state;
}

/* Compact while running, after a write (meta_lock held for writing). A
 * failure is logged: the log stays as it was, only longer. */
static void meta_compact_maybe(struct engine *e)
{
	int top_fd, rc;

	if (e->opt.read_only || !meta_snapshot_due(e))
		return;
	top_fd = open(e->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top_fd < 0) {
		log_msg(LOG_LVL_WARN, "meta", "metadata snapshot: cannot open %s: %s", e->dir,
			chronik_strerror(-errno));
		return;
	}
	bool renamed = false;
	rc = meta_snapshot(e, top_fd, &renamed);
	if (rc && renamed) {
		/* The rename may not be durable: events written to the new file
		 * could vanish with it after a crash, so none is written. */
		e->meta_failed = rc;
		log_msg(LOG_LVL_ERROR, "meta",
			"metadata snapshot not durable (%s): no more metadata changes until the "
			"data directory is opened again",
			chronik_strerror(rc));
	} else if (rc) {
		log_msg(LOG_LVL_WARN, "meta", "metadata snapshot failed: %s", chronik_strerror(rc));
	}
	close(top_fd);
}

int meta_open(struct engine *e)
{
	char path[4096];
	struct replay r = { .e = e, .bad = FRAME_VALID };
	struct stat st;
	int top_fd, rc;

	e->groups = json_object_new_object();
	e->next_topic_id = 1;
	snprintf(path, sizeof(path), "%s/meta.log", e->dir);
	top_fd = open(e->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top_fd < 0)
		return -errno;
	e->meta_fd = open(path, (e->opt.read_only ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0644);
	if (e->meta_fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(e->meta_fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	e->meta_ino = st.st_ino;
	if (st.st_size < WAL_FILE_HEADER_SIZE) {
		if (e->opt.read_only) {
			rc = 0;
			goto out;
		}
		rc = wal_file_header_write(e->meta_fd, 0);
		if (rc)
			goto out;
		e->meta_size = WAL_FILE_HEADER_SIZE;
		rc = fsync_dir(top_fd);
		goto out;
	}
	r.end = WAL_FILE_HEADER_SIZE;
	rc = wal_file_walk(path, replay_frame, &r);
	if (r.rc) {
		rc = r.rc;
		log_msg(LOG_LVL_ERROR, "meta", "%s: bad event at position %" PRIu64 ": %s", path,
			r.end, chronik_strerror(rc));
		goto out;
	}
	if (rc == CHRONIK_EVERSION) {
		log_msg(LOG_LVL_ERROR, "meta", "%s position %" PRIu64 ": unknown frame version",
			path, r.bad_pos);
		goto out;
	}
	if (rc == CHRONIK_ECORRUPT) {
		/* The metadata log is written one durable event at a time, so only
		 * its last event can be torn; anything else is damage. */
		struct stat st2;
		bool tail = fstat(e->meta_fd, &st2) == 0;
		if (tail && r.bad_pos < WAL_FILE_HEADER_SIZE) {
			log_msg(LOG_LVL_ERROR, "meta", "%s: invalid file header", path);
			goto out;
		}
		/* A copy read with pread: a read-only open may look while the
		 * writer cuts the log (frame_reader, frame.h). */
		uint8_t *map = malloc((size_t)st2.st_size + 1);
		ssize_t got = map ? frame_reader_pread(e->meta_fd, map, (size_t)st2.st_size, 0) :
				    -1;
		bool later = false;
		if (got >= 0) {
			size_t size = (size_t)got;
			for (size_t q = r.bad_pos + 1; q + 4 <= size && !later;) {
				const uint8_t *m = memmem(map + q, size - q, "CHKF", 4);
				struct frame_info fi;
				if (!m)
					break;
				q = (size_t)(m - map);
				if (frame_decode(m, size - q, &fi) != FRAME_VALID) {
					q++;
					continue;
				}
				later = true; /* a valid event after the damage */
			}
		}
		free(map);
		if (later && !e->opt.repair) {
			log_msg(LOG_LVL_ERROR, "meta",
				"%s position %" PRIu64 ": corrupt event before the end", path,
				r.bad_pos);
			goto out;
		}
		if (!e->opt.read_only) {
			log_msg(later ? LOG_LVL_ERROR : LOG_LVL_WARN, "meta",
				"%s: %s at position %" PRIu64 " truncated", path,
				later ? "corrupt event (repair)" : "torn tail", r.bad_pos);
			if (ftruncate(e->meta_fd, (off_t)r.bad_pos) < 0 || fsync(e->meta_fd) < 0) {
				rc = -errno;
				goto out;
			}
		}
		rc = 0;
	}
	if (rc)
		goto out;
	e->meta_size = r.end;
	if (!e->opt.read_only && meta_snapshot_due(e)) {
		/* A snapshot that failed before its rename changed nothing. One
		 * whose directory fsync failed fails the open: the rename may not
		 * be durable, and events appended to the new file would vanish
		 * with it after a crash. (The next open finds the same state in
		 * the snapshot or in the old log, whichever survived.) */
		bool renamed = false;
		rc = meta_snapshot(e, top_fd, &renamed);
		if (rc && !renamed) {
			log_msg(LOG_LVL_WARN, "meta", "metadata snapshot failed: %s",
				chronik_strerror(rc));
			rc = 0;
		}
	}
out:
	close(top_fd);
	return rc;
}

/* A read-only engine follows a live writer: apply the events written since
 * the last look. A snapshot (a new meta.log file) is read whole; known
 * topics are skipped by state_apply. */
int meta_refresh(struct engine *e)
{
	char path[4096];
	struct stat st;
	struct replay r = { .e = e, .bad = FRAME_VALID };
	struct frame_reader fr;
	int fd;

	snprintf(path, sizeof(path), "%s/meta.log", e->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	if (st.st_ino != e->meta_ino) {
		e->meta_ino = st.st_ino;
		e->meta_size = WAL_FILE_HEADER_SIZE;
	}
	if ((uint64_t)st.st_size <= e->meta_size) {
		close(fd);
		return 0;
	}
	/* pread, not a mapping: the writer may truncate the log meanwhile (a
	 * failed event, the torn-tail cut of its open), and a mapping past
	 * the new end would be SIGBUS (frame_reader, frame.h). */
	frame_reader_init(&fr, fd);
	pthread_rwlock_wrlock(&e->meta_lock);
	for (uint64_t pos = e->meta_size;;) {
		struct frame_info fi;
		int st2 = frame_reader_decode(&fr, pos, &fi);
		if (st2 < 0) {
			r.rc = st2;
			break;
		}
		if (st2 != FRAME_VALID)
			break; /* not written yet */
		if (replay_frame(&r, pos, FRAME_VALID, &fi))
			break;
		pos += fi.frame_len;
		e->meta_size = pos;
	}
	pthread_rwlock_unlock(&e->meta_lock);
	frame_reader_fini(&fr);
	close(fd);
	return r.rc;
}

void meta_close(struct engine *e)
{
	while (e->ntopics)
		state_topic_remove(e, e->topics[e->ntopics - 1]);
	free(e->topics);
	e->topics = NULL;
	json_object_put(e->groups);
	e->groups = NULL;
	if (e->meta_fd >= 0)
		close(e->meta_fd);
	e->meta_fd = -1;
}

/* ---- the API --------------------------------------------------------------- */

int engine_topic_create(struct engine *e, const char *name, int32_t partitions,
			const char *config_json)
{
	json_object *v;
	char *cfg;
	int rc;

	if (!engine_topic_name_valid(name))
		return CHRONIK_EBADNAME;
	if (partitions <= 0)
		partitions = e->opt.default_partitions;
	if (partitions > TOPIC_PARTITIONS_MAX)
		return -EINVAL;
	rc = config_normalize(config_json, NULL, &cfg);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&e->meta_lock);
	if (meta_topic_find(e, name)) {
		rc = CHRONIK_ETOPICEXISTS;
		goto out;
	}
	/* The limits count what exists now (ntopics is small: <= max_topics
	 * unless an older log holds more). */
	int64_t total = 0;
	for (size_t i = 0; i < e->ntopics; i++)
		total += e->topics[i]->nparts;
	if (e->ntopics >= (size_t)e->opt.max_topics ||
	    total + partitions > (int64_t)e->opt.max_partitions) {
		rc = CHRONIK_ELIMIT;
		goto out;
	}
	v = json_object_new_object();
	json_object_object_add(v, "name", json_object_new_string(name));
	json_object_object_add(v, "id", json_object_new_int64(e->next_topic_id));
	json_object_object_add(v, "partitions", json_object_new_int(partitions));
	json_object_object_add(v, "config", json_tokener_parse(cfg));
	json_object_object_add(v, "ctime_ns", json_object_new_int64(now_ns()));
	rc = meta_log(e, "topic.create", v);
out:
	pthread_rwlock_unlock(&e->meta_lock);
	free(cfg);
	return rc;
}

int engine_topic_delete(struct engine *e, const char *name)
{
	struct topic *t;
	json_object *v;
	uint32_t id = 0;
	int rc;

	pthread_rwlock_wrlock(&e->meta_lock);
	t = meta_topic_find(e, name);
	if (!t) {
		rc = CHRONIK_ENOTOPIC;
		goto out;
	}
	id = t->id;
	v = json_object_new_object();
	json_object_object_add(v, "id", json_object_new_int64(t->id));
	rc = meta_log(e, "topic.delete", v);
out:
	pthread_rwlock_unlock(&e->meta_lock);
	/* Its space goes at once: the segments now; its WAL frames when their
	 * files are indexed. */
	if (rc == 0)
		warm_topic_drop(e, id);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void engine_strv_free(char **v, size_t count)
{
	for (size_t i = 0; v && i < count; i++)
		free(v[i]);
	free(v);
}

int engine_topic_list(struct engine *e, char ***names, size_t *count)
{
	char **v;
	size_t n;

	pthread_rwlock_rdlock(&e->meta_lock);
	n = e->ntopics;
	v = calloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		v[i] = strdup(e->topics[i]->name);
		if (!v[i]) {
			engine_strv_free(v, i);
			v = NULL;
		}
	}
	pthread_rwlock_unlock(&e->meta_lock);
	if (!v)
		return -ENOMEM;
	qsort(v, n, sizeof(*v), cmp_str);
	*names = v;
	*count = n;
	return 0;
}

int engine_topic_partitions(struct engine *e, const char *name, int32_t *partitions)
{
	struct topic *t;
	int rc = CHRONIK_ENOTOPIC;
	pthread_rwlock_rdlock(&e->meta_lock);
	t = meta_topic_find(e, name);
	if (t) {
		*partitions = t->nparts;
		rc = 0;
	}
	pthread_rwlock_unlock(&e->meta_lock);
	return rc;
}

int engine_topic_partitions_add(struct engine *e, const char *name, int32_t partitions)
{
	struct topic *t;
	json_object *v;
	int rc;

	if (partitions <= 0 || partitions > 100000)
		return -EINVAL;
	pthread_rwlock_wrlock(&e->meta_lock);
	t = meta_topic_find(e, name);
	if (!t) {
		rc = CHRONIK_ENOTOPIC;
		goto out;
	}
	if (partitions <= t->nparts) {
		rc = -EINVAL;
		goto out;
	}
	int64_t total = 0;
	for (size_t i = 0; i < e->ntopics; i++)
		total += e->topics[i]->nparts;
	if (total + (partitions - t->nparts) > (int64_t)e->opt.max_partitions) {
		rc = CHRONIK_ELIMIT;
		goto out;
	}
	v = json_object_new_object();
	json_object_object_add(v, "id", json_object_new_int64(t->id));
	json_object_object_add(v, "partitions", json_object_new_int(partitions));
	rc = meta_log(e, "topic.partitions", v);
out:
	pthread_rwlock_unlock(&e->meta_lock);
	return rc;
}

int engine_topic_config_get(struct engine *e, const char *name, char **json)
{
	struct topic *t;
	int rc = CHRONIK_ENOTOPIC;
	pthread_rwlock_rdlock(&e->meta_lock);
	t = meta_topic_find(e, name);
	if (t) {
		*json = strdup(t->config_json);
		rc = *json ? 0 : -ENOMEM;
	}
	pthread_rwlock_unlock(&e->meta_lock);
	return rc;
}

int engine_topic_config_set(struct engine *e, const char *name, const char *json)
{
	struct topic *t;
	json_object *v;
	char *cfg;
	int rc;

	if (!json)
		return -EINVAL;
	pthread_rwlock_wrlock(&e->meta_lock);
	t = meta_topic_find(e, name);
	if (!t) {
		pthread_rwlock_unlock(&e->meta_lock);
		return CHRONIK_ENOTOPIC;
	}
	rc = config_normalize(json, t->config_json, &cfg);
	if (rc) {
		pthread_rwlock_unlock(&e->meta_lock);
		return rc;
	}
	if (strcmp(t->config_json, cfg) == 0)
		goto out;
	v = json_object_new_object();
	json_object_object_add(v, "id", json_object_new_int64(t->id));
	json_object_object_add(v, "config", json_tokener_parse(cfg));
	rc = meta_log(e, "topic.config", v);
out:
	pthread_rwlock_unlock(&e->meta_lock);
	free(cfg);
	return rc;
}

int engine_metadata_json(struct engine *e, char **json)
{
	json_object *root = json_object_new_object(), *topics = json_object_new_array();

	pthread_rwlock_rdlock(&e->meta_lock);
	for (size_t i = 0; i < e->ntopics; i++) {
		struct topic *t = e->topics[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(t->name));
		json_object_object_add(o, "id", json_object_new_int64(t->id));
		json_object_object_add(o, "partitions", json_object_new_int(t->nparts));
		json_object_object_add(o, "config", json_tokener_parse(t->config_json));
		json_object_array_add(topics, o);
	}
	json_object_object_add(root, "topics", topics);
	json_object_object_add(root, "groups", json_object_get(e->groups));
	*json = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
								    JSON_C_TO_STRING_SPACED));
	pthread_rwlock_unlock(&e->meta_lock);
	json_object_put(root);
	return *json ? 0 : -ENOMEM;
}

int engine_group_offset_commit(struct engine *e, const char *group, const char *topic,
			       int32_t partition, int64_t offset, const char *metadata)
{
	struct engine_offset_commit c = {
		.topic = topic, .partition = partition, .offset = offset, .metadata = metadata
	};
	return engine_group_offsets_commit(e, group, &c, 1);
}

/* The event of a commit (with_offsets) or a delete of c[0, n): a JSON
 * object {"group", "offsets": [...]}, owned by the caller, or NULL (no
 * memory). An entry that is not valid gets c[i].rc = -EINVAL and *rc too;
 * the valid ones get 0 and are counted in *nv. */
static json_object *offsets_event(const char *group, struct engine_offset_commit *c, size_t n,
				  bool with_offsets, size_t *nv, int *rc)
{
	json_object *v = json_object_new_object(), *arr = json_object_new_array();

	*nv = 0;
	if (!v || !arr) {
		json_object_put(v);
		json_object_put(arr);
		return NULL;
	}
	json_object_object_add(v, "group", json_object_new_string(group));
	json_object_object_add(v, "offsets", arr);
	for (size_t i = 0; i < n; i++) {
		json_object *o;
		if (!c[i].topic || strlen(c[i].topic) > 249 || c[i].partition < 0) {
			c[i].rc = -EINVAL;
			if (*rc == 0)
				*rc = -EINVAL;
			continue;
		}
		c[i].rc = 0;
		o = json_object_new_object();
		json_object_object_add(o, "topic", json_object_new_string(c[i].topic));
		json_object_object_add(o, "partition", json_object_new_int(c[i].partition));
		if (with_offsets) {
			json_object_object_add(o, "offset", json_object_new_int64(c[i].offset));
			json_object_object_add(
				o, "metadata",
				c[i].metadata ? json_object_new_string(c[i].metadata) : NULL);
		}
		json_object_array_add(arr, o);
		(*nv)++;
	}
	return v;
}

/* Write the event (meta_lock held for writing); its error goes to every
 * entry that was valid, and to *rc. */
static void offsets_event_log(struct engine *e, const char *type, json_object *v, size_t nv,
			      struct engine_offset_commit *c, size_t n, int *rc)
{
	int wrc = meta_log_entries(e, type, v, nv);
	if (wrc == 0) {
		meta_compact_maybe(e);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (c[i].rc == 0)
			c[i].rc = wrc;
	if (*rc == 0)
		*rc = wrc;
}

int engine_group_offsets_commit(struct engine *e, const char *group, struct engine_offset_commit *c,
				size_t n)
{
	json_object *v;
	size_t nv;
	int rc = 0;

	if (!group)
		return -EINVAL;
	v = offsets_event(group, c, n, true, &nv, &rc);
	if (!v)
		return -ENOMEM;
	if (nv) {
		pthread_rwlock_wrlock(&e->meta_lock);
		offsets_event_log(e, "group.offsets", v, nv, c, n, &rc);
		pthread_rwlock_unlock(&e->meta_lock);
	}
	json_object_put(v);
	return rc;
}

int engine_group_offset_fetch(struct engine *e, const char *group, const char *topic,
			      int32_t partition, int64_t *offset, char **metadata)
{
	char key[300];
	json_object *g, *o, *f;
	int rc = 0;

	*offset = -1;
	*metadata = NULL;
	snprintf(key, sizeof(key), "%s/%d", topic, partition);
	pthread_rwlock_rdlock(&e->meta_lock);
	g = group_slot(e, group, false);
	if (g && json_object_object_get_ex(g, key, &o)) {
		if (json_object_object_get_ex(o, "offset", &f))
			*offset = json_object_get_int64(f);
		if (json_object_object_get_ex(o, "metadata", &f) && f) {
			*metadata = strdup(json_object_get_string(f));
			if (!*metadata)
				rc = -ENOMEM;
		}
	}
	pthread_rwlock_unlock(&e->meta_lock);
	return rc;
}

int engine_group_offsets_delete(struct engine *e, const char *group, struct engine_offset_commit *c,
				size_t n)
{
	json_object *v;
	size_t nv;
	int rc = 0;

	if (!group)
		return -EINVAL;
	v = offsets_event(group, c, n, false, &nv, &rc);
	if (!v)
		return -ENOMEM;
	pthread_rwlock_wrlock(&e->meta_lock);
	if (!group_slot(e, group, false)) {
		for (size_t i = 0; i < n; i++)
			c[i].rc = -ENOENT;
		rc = -ENOENT;
	} else if (nv) {
		offsets_event_log(e, "group.offsets_delete", v, nv, c, n, &rc);
	}
	pthread_rwlock_unlock(&e->meta_lock);
	json_object_put(v);
	return rc;
}

int engine_group_delete(struct engine *e, const char *group)
{
	json_object *v;
	int rc;

	if (!group)
		return -EINVAL;
	pthread_rwlock_wrlock(&e->meta_lock);
	if (!group_slot(e, group, false)) {
		rc = -ENOENT;
		goto out;
	}
	v = json_object_new_object();
	json_object_object_add(v, "group", json_object_new_string(group));
	rc = meta_log(e, "group.delete", v);
	if (rc == 0)
		meta_compact_maybe(e);
out:
	pthread_rwlock_unlock(&e->meta_lock);
	return rc;
}

int engine_group_list(struct engine *e, char ***names, size_t *count)
{
	char **v;
	size_t n = 0;

	pthread_rwlock_rdlock(&e->meta_lock);
	v = calloc((size_t)json_object_object_length(e->groups) + 1, sizeof(*v));
	if (v) {
		json_object_object_foreach(e->groups, group, g)
		{
			(void)g;
			v[n] = strdup(group);
			if (!v[n]) {
				engine_strv_free(v, n);
				v = NULL;
				break;
			}
			n++;
		}
	}
	pthread_rwlock_unlock(&e->meta_lock);
	if (!v)
		return -ENOMEM;
	qsort(v, n, sizeof(*v), cmp_str);
	*names = v;
	*count = n;
	return 0;
}
