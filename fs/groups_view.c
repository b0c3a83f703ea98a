/* groups_view.c - MNT/.groups/<group>.json: consumer-group lag as files.
 *
 * .groups is a read-only directory at the mount root listing one file per
 * consumer group that has committed offsets (engine_group_list); each
 * file holds the group's lag as `chronik groups GROUP --json` prints it
 * (engine_group_lag_json, wal/group_lag.c) and a newline, rendered once
 * per open (direct_io; st_size is the length when stat'ed). A group whose
 * name cannot be a file name ('/' in it, empty, longer than 250 bytes) is
 * not listed. A group file takes a slot of the mount's named-file table
 * (the one search/ query files use, fs-private.h) with topic id 0, so its
 * inode number says which group it is; a file whose group has no committed
 * offset left answers ENOENT. The directory shadows a topic named
 * ".groups" (a valid Kafka name), which only Kafka clients then reach;
 * mkdir .groups fails with EEXIST.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs-private.h"

#define JSON_SUFFIX ".json"

bool fs_group_name_ok(const char *group)
{
	size_t n = strlen(group);
	return n > 0 && n <= 250 && !strchr(group, '/');
}

int fs_group_child(struct chronikfs *fs, const char *name, struct fs_ino *child)
{
	size_t n = strlen(name), sl = strlen(JSON_SUFFIX);
	char *group, *json;
	int err;

	if (n <= sl || strcmp(name + n - sl, JSON_SUFFIX) != 0)
		return -ENOENT;
	group = strndup(name, n - sl);
	if (!group)
		return -ENOMEM;
	err = engine_group_lag_json(fs->e, group, &json);
	if (err == 0) {
		free(json);
		child->kind = FS_GROUP;
		child->tid = 0;
		child->part = -1;
		child->slot = fs_query_slot(fs, 0, -1, group);
	}
	free(group);
	return err == 0 ? 0 : err == -ENOENT ? -ENOENT : -fs_errno(err);
}

int fs_group_render(struct chronikfs *fs, uint32_t slot, char **out, size_t *len)
{
	struct fs_queries *q = &fs->queries;
	char *group = NULL, *json = NULL;
	int err;

	pthread_mutex_lock(&q->lock);
	struct fs_query_slot *e = fs_query_slot_get(q, slot);
	if (e && e->tid == 0)
		group = strdup(e->text);
	pthread_mutex_unlock(&q->lock);
	if (!group)
		return -ENOENT;
	err = engine_group_lag_json(fs->e, group, &json);
	free(group);
	if (err)
		return err;
	size_t n = strlen(json);
	char *s = realloc(json, n + 2);
	if (!s) {
		free(json);
		return -ENOMEM;
	}
	s[n++] = '\n';
	s[n] = '\0';
	*out = s;
	*len = n;
	return 0;
}
