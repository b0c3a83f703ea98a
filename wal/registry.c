/* registry.c - load and save a partition's segment registry (format and
 * update rule in registry.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "registry.h"

void registry_segment_name(int64_t base_offset, char *buf, size_t len)
{
	snprintf(buf, len, "%020" PRId64 ".seg", base_offset);
}

void registry_segment_file(const struct segment_meta *m, char *buf, size_t len)
{
	if (m->gen == 0)
		registry_segment_name(m->base_offset, buf, len);
	else
		snprintf(buf, len, "%020" PRId64 ".g%" PRIu32 ".seg", m->base_offset, m->gen);
}

void registry_fini(struct registry *r)
{
	free(r->segs);
	memset(r, 0, sizeof(*r));
}

static int get_i64(json_object *o, const char *key, int64_t *out)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return CHRONIK_ECORRUPT;
	*out = json_object_get_int64(v);
	return 0;
}

static int get_u64(json_object *o, const char *key, uint64_t *out)
{
	int64_t v = 0;
	int rc = get_i64(o, key, &v);
	if (rc == 0 && v < 0)
		rc = CHRONIK_ECORRUPT;
	*out = (uint64_t)v;
	return rc;
}

static int seg_parse(json_object *o, struct segment_meta *m)
{
	json_object *v;
	int64_t batches = 0;
	char name[64];
	int rc = 0;

	if (!json_object_is_type(o, json_type_object))
		return CHRONIK_ECORRUPT;
	rc |= get_i64(o, "base_offset", &m->base_offset);
	rc |= get_i64(o, "last_offset", &m->last_offset);
	rc |= get_i64(o, "min_timestamp", &m->min_timestamp);
	rc |= get_i64(o, "max_timestamp", &m->max_timestamp);
	rc |= get_u64(o, "raw_start", &m->raw_start);
	rc |= get_u64(o, "raw_end", &m->raw_end);
	rc |= get_u64(o, "bytes", &m->bytes);
	rc |= get_u64(o, "data_end", &m->data_end);
	rc |= get_u64(o, "records", &m->records);
	rc |= get_i64(o, "batches", &batches);
	rc |= get_u64(o, "wal_seq", &m->wal_seq);
	if (rc)
		return CHRONIK_ECORRUPT;
	m->batches = (uint32_t)batches;
	m->gen = 0;
	if (json_object_object_get_ex(o, "gen", &v)) {
		int64_t gen = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || gen <= 0 || gen > UINT32_MAX)
			return CHRONIK_ECORRUPT;
		m->gen = (uint32_t)gen;
	}
	m->state = SEGMENT_LOCAL;
	if (!json_object_object_get_ex(o, "state", &v))
		return CHRONIK_ECORRUPT;
	if (strcmp(json_object_get_string(v), "remote") == 0) {
		json_object *k, *t;
		int64_t crc = 0;
		if (!json_object_object_get_ex(o, "remote_key", &k) ||
		    !json_object_is_type(k, json_type_string) ||
		    !json_object_object_get_ex(o, "etag", &t) ||
		    !json_object_is_type(t, json_type_string) || get_i64(o, "crc32c", &crc) ||
		    crc < 0 || crc > UINT32_MAX ||
		    (size_t)json_object_get_string_len(k) >= sizeof(m->remote_key) ||
		    json_object_get_string_len(k) == 0 ||
		    (size_t)json_object_get_string_len(t) >= sizeof(m->etag))
			return CHRONIK_ECORRUPT;
		m->state = SEGMENT_REMOTE;
		m->crc32c = (uint32_t)crc;
		snprintf(m->remote_key, sizeof(m->remote_key), "%s", json_object_get_string(k));
		snprintf(m->etag, sizeof(m->etag), "%s", json_object_get_string(t));
	} else if (strcmp(json_object_get_string(v), "live") != 0) {
		return CHRONIK_EVERSION;
	}
	registry_segment_file(m, name, sizeof(name));
	if (!json_object_object_get_ex(o, "file", &v) ||
	    strcmp(json_object_get_string(v), name) != 0)
		return CHRONIK_ECORRUPT;
	/* Offsets are in [0, INT64_MAX): next_offset, last_offset + 1, must be
	 * an offset too. */
	if (m->base_offset < 0 || m->last_offset == INT64_MAX ||
	    m->last_offset < m->base_offset || m->raw_end <= m->raw_start ||
	    m->data_end >= m->bytes || batches <= 0 || batches > UINT32_MAX)
		return CHRONIK_ECORRUPT;
	return 0;
}

int registry_load(const char *dir, uint32_t topic_id, int32_t partition, struct registry *r)
{
	char path[4200];
	json_object *root, *v, *segs;
	int64_t tid, part, version;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/%s", dir, REGISTRY_FILE);
	if (access(path, F_OK) < 0)
		return errno == ENOENT ? 0 : -errno;
	root = json_object_from_file(path);
	if (!root)
		return CHRONIK_ECORRUPT;
	rc = CHRONIK_ECORRUPT;
	if (!json_object_is_type(root, json_type_object) || get_i64(root, "version", &version) ||
	    get_i64(root, "topic_id", &tid) || get_i64(root, "partition", &part) ||
	    get_i64(root, "log_start_offset", &r->log_start_offset) ||
	    get_u64(root, "raw_start", &r->raw_start) ||
	    get_i64(root, "next_offset", &r->next_offset) ||
	    get_u64(root, "raw_end", &r->raw_end) ||
	    !json_object_object_get_ex(root, "segments", &segs) ||
	    !json_object_is_type(segs, json_type_array))
		goto out;
	if (version < 1 || version > REGISTRY_VERSION) {
		rc = CHRONIK_EVERSION;
		goto out;
	}
	if (tid != topic_id || part != partition)
		goto out;
	r->n = json_object_array_length(segs);
	if (r->n) {
		r->segs = calloc(r->n, sizeof(*r->segs));
		if (!r->segs) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < r->n; i++) {
		v = json_object_array_get_idx(segs, i);
		rc = seg_parse(v, &r->segs[i]);
		if (rc)
			goto out;
		rc = CHRONIK_ECORRUPT;
		if (i > 0 && (r->segs[i].base_offset <= r->segs[i - 1].last_offset ||
			      r->segs[i].raw_start < r->segs[i - 1].raw_end))
			goto out;
	}
	rc = CHRONIK_ECORRUPT;
	if (r->n && (r->segs[r->n - 1].last_offset + 1 != r->next_offset ||
		     r->segs[r->n - 1].raw_end != r->raw_end ||
		     (version < 3 && r->log_start_offset > r->segs[0].base_offset)))
		goto out;
	if (r->log_start_offset > r->next_offset || r->raw_start > r->raw_end)
		goto out;
	rc = 0;
out:
	json_object_put(root);
	if (rc)
		registry_fini(r);
	return rc;
}

static json_object *seg_json(const struct segment_meta *m)
{
	json_object *o = json_object_new_object();
	char name[64];

	registry_segment_file(m, name, sizeof(name));
	json_object_object_add(o, "file", json_object_new_string(name));
	json_object_object_add(o, "state", json_object_new_string(
						   m->state == SEGMENT_REMOTE ? "remote" : "live"));
	json_object_object_add(o, "base_offset", json_object_new_int64(m->base_offset));
	json_object_object_add(o, "last_offset", json_object_new_int64(m->last_offset));
	json_object_object_add(o, "min_timestamp", json_object_new_int64(m->min_timestamp));
	json_object_object_add(o, "max_timestamp", json_object_new_int64(m->max_timestamp));
	json_object_object_add(o, "raw_start", json_object_new_int64((int64_t)m->raw_start));
	json_object_object_add(o, "raw_end", json_object_new_int64((int64_t)m->raw_end));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)m->bytes));
	json_object_object_add(o, "data_end", json_object_new_int64((int64_t)m->data_end));
	json_object_object_add(o, "records", json_object_new_int64((int64_t)m->records));
	json_object_object_add(o, "batches", json_object_new_int64(m->batches));
	json_object_object_add(o, "wal_seq", json_object_new_int64((int64_t)m->wal_seq));
	if (m->gen)
		json_object_object_add(o, "gen", json_object_new_int64(m->gen));
	if (m->state == SEGMENT_REMOTE) {
		json_object_object_add(o, "remote_key", json_object_new_string(m->remote_key));
		json_object_object_add(o, "etag", json_object_new_string(m->etag));
		json_object_object_add(o, "crc32c", json_object_new_int64(m->crc32c));
	}
	return o;
}

int registry_save(const char *dir, uint32_t topic_id, int32_t partition, const struct registry *r)
{
	char path[4200], tmp[4200];
	json_object *root = json_object_new_object(), *segs = json_object_new_array();
	const char *text;
	size_t len;
	int fd = -1, dfd = -1, rc = 0;

	int version = 1;
	for (size_t i = 0; i < r->n; i++)
		if (r->segs[i].state == SEGMENT_REMOTE)
			version = 2;
	if (r->n && r->log_start_offset > r->segs[0].base_offset)
		version = 3;
	json_object_object_add(root, "version", json_object_new_int(version));
	json_object_object_add(root, "topic_id", json_object_new_int64(topic_id));
	json_object_object_add(root, "partition", json_object_new_int(partition));
	json_object_object_add(root, "log_start_offset",
			       json_object_new_int64(r->log_start_offset));
	json_object_object_add(root, "raw_start", json_object_new_int64((int64_t)r->raw_start));
	json_object_object_add(root, "next_offset", json_object_new_int64(r->next_offset));
	json_object_object_add(root, "raw_end", json_object_new_int64((int64_t)r->raw_end));
	for (size_t i = 0; i < r->n; i++)
		json_object_array_add(segs, seg_json(&r->segs[i]));
	json_object_object_add(root, "segments", segs);
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
	len = strlen(text);

	snprintf(path, sizeof(path), "%s/%s", dir, REGISTRY_FILE);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, REGISTRY_FILE);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		done += (size_t)n;
	}
	if (write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		rc = -errno;
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		rc = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	json_object_put(root);
	return rc;
}
