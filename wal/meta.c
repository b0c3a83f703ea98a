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
 *   key "group.offset"  {"group": S, "topic": S, "partition": N,
 *                        "offset": N, "metadata": S or null}
 *   key "topic.next_id" {"next_id": N}  (written by snapshots, so that a
 *                        deleted topic's id is never handed out again)
 *
 * Replaying the log in order rebuilds the state; an unknown key is logged
 * and skipped (forward compatibility). Every event is written with one
 * pwrite and made durable with fdatasync before the call returns. Recovery
 * follows frame.h: a torn tail is truncated, earlier damage fails the open
 * unless repair. When the log holds many more events than the state needs
 * (group offsets committed over and over), open rewrites it as a snapshot:
 * meta.log.tmp is written and fsynced, renamed over meta.log, and the
 * directory fsynced.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine-private.h"
#include "log.h"

#define META_SNAPSHOT_MIN_FRAMES 4096

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

/* Only a JSON object is a config; NULL means {}. *out malloc'd, canonical. */
static int config_normalize(const char *json, char **out)
{
	json_object *o;
	if (!json) {
		*out = strdup("{}");
		return *out ? 0 : -ENOMEM;
	}
	o = json_tokener_parse(json);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EINVAL;
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
		if (!name || id <= 0 || np <= 0 || np > 1000000)
			return CHRONIK_ECORRUPT;
		/* A snapshot re-read by a live reader repeats known topics. */
		if (meta_topic_find_id(e, (uint32_t)id))
			return 0;
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
		if (!t || !cfg)
			return 0;
		c = strdup(json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN));
		if (!c)
			return -ENOMEM;
		free(t->config_json);
		t->config_json = c;
		return 0;
	}
	if (strcmp(type, "group.offset") == 0) {
		const char *group = GET_STR("group"), *topic = GET_STR("topic");
		if (!group || !topic)
			return CHRONIK_ECORRUPT;
		s = GET_STR("metadata");
		state_group_offset(e, group, topic, (int32_t)GET_INT("partition"),
				   GET_INT("offset"), s);
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

static int meta_encode(struct engine *e, const char *type, json_object *v, uint8_t **out,
		       size_t *len)
{
	struct frame_info fi = { 0 };
	const char *val = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	fi.flags = FRAME_FLAG_GROUP_END; /* every event is a group of its own */
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
 * Takes ownership of v. */
static int meta_log(struct engine *e, const char *type, json_object *v)
{
	uint8_t *f;
	size_t len;
	int rc;

	if (e->opt.read_only) {
		json_object_put(v);
		return -EROFS;
	}
	rc = meta_encode(e, type, v, &f, &len);
	if (rc)
		goto out;
	if (pwrite(e->meta_fd, f, len, (off_t)e->meta_size) != (ssize_t)len ||
	    fdatasync(e->meta_fd) < 0) {
		rc = errno ? -errno : -EIO;
		log_msg(LOG_LVL_ERROR, "meta", "metadata log write failed: %s",
			chronik_strerror(rc));
		if (ftruncate(e->meta_fd, (off_t)e->meta_size) < 0)
			log_msg(LOG_LVL_ERROR, "meta", "cannot truncate the metadata log");
		free(f);
		goto out;
	}
	free(f);
	e->meta_size += len;
	e->meta_seq++;
	e->meta_frames++;
	rc = state_apply(e, type, v);
out:
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
		if (pwrite(s->fd, f, len, (off_t)s->size) != (ssize_t)len)
			s->rc = -errno;
		s->size += len;
		s->seq++;
		free(f);
	}
	s->e->meta_seq = saved;
	json_object_put(v);
}

/* Rewrite meta.log as the events of the current state. */
static int meta_snapshot(struct engine *e, int top_fd)
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
	/* Renamed: meta.log is the snapshot now, whatever the directory fsync
	 * says, so switch to it before reporting anything. */
	if (fsync_dir(top_fd) < 0)
		log_msg(LOG_LVL_WARN, "meta", "fsync of %s after the snapshot failed", e->dir);
	log_msg(LOG_LVL_INFO, "meta",
		"metadata log compacted from %" PRIu64 " to %" PRId64 " events", e->meta_frames,
		s.seq);
	close(e->meta_fd);
	e->meta_fd = s.fd;
	e->meta_size = s.size;
	e->meta_seq = s.seq;
	e->meta_frames = (uint64_t)s.seq;
	return 0;
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
		uint8_t *map =
			mmap(NULL, (size_t)st2.st_size, PROT_READ, MAP_PRIVATE, e->meta_fd, 0);
		bool later = false;
		if (map != MAP_FAILED) {
			for (size_t q = r.bad_pos + 1; q + 4 <= (size_t)st2.st_size && !later;
			     q++) {
				struct frame_info fi;
				if (memcmp(map + q, "CHKF", 4) == 0 &&
				    frame_decode(map + q, (size_t)st2.st_size - q, &fi) ==
					    FRAME_VALID)
					later = true;
			}
			munmap(map, (size_t)st2.st_size);
		}
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
	if (!e->opt.read_only && e->meta_frames > META_SNAPSHOT_MIN_FRAMES &&
	    e->meta_frames >
		    4 * (e->ntopics + (uint64_t)json_object_object_length(e->groups) + 1)) {
		rc = meta_snapshot(e, top_fd);
		if (rc)
			log_msg(LOG_LVL_WARN, "meta", "metadata snapshot failed: %s",
				chronik_strerror(rc));
		rc = 0;
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
	uint8_t *map;
	size_t size;
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
	size = (size_t)st.st_size;
	if (size <= e->meta_size) {
		close(fd);
		return 0;
	}
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -errno;
	pthread_rwlock_wrlock(&e->meta_lock);
	for (uint64_t pos = e->meta_size; pos < size;) {
		struct frame_info fi;
		if (frame_decode(map + pos, size - pos, &fi) != FRAME_VALID)
			break; /* not written yet */
		if (replay_frame(&r, pos, FRAME_VALID, &fi))
			break;
		pos += fi.frame_len;
		e->meta_size = pos;
	}
	pthread_rwlock_unlock(&e->meta_lock);
	munmap(map, size);
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
	if (partitions > 100000)
		return -EINVAL;
	rc = config_normalize(config_json, &cfg);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&e->meta_lock);
	if (meta_topic_find(e, name)) {
		rc = CHRONIK_ETOPICEXISTS;
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
	rc = config_normalize(json, &cfg);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&e->meta_lock);
	t = meta_topic_find(e, name);
	if (!t) {
		rc = CHRONIK_ENOTOPIC;
		goto out;
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
	json_object *v;
	int rc;

	if (!group || !topic || strlen(topic) > 249 || partition < 0)
		return -EINVAL;
	v = json_object_new_object();
	json_object_object_add(v, "group", json_object_new_string(group));
	json_object_object_add(v, "topic", json_object_new_string(topic));
	json_object_object_add(v, "partition", json_object_new_int(partition));
	json_object_object_add(v, "offset", json_object_new_int64(offset));
	json_object_object_add(v, "metadata", metadata ? json_object_new_string(metadata) : NULL);
	pthread_rwlock_wrlock(&e->meta_lock);
	rc = meta_log(e, "group.offset", v);
	pthread_rwlock_unlock(&e->meta_lock);
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
