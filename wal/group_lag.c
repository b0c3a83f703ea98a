/* group_lag.c - a consumer group's lag, as Kafka's consumer-group tooling
 * computes it, for `chronik groups` and the mount's .groups/<group>.json.
 *
 * For every partition the group has committed an offset for: the committed
 * offset, the partition's high watermark (its next offset, as Kafka's
 * ListOffsets latest answers) and the lag, high watermark minus committed
 * offset, never below 0. One JSON object, on one line:
 *
 *   {"group": G, "lag": total, "partitions": [{"topic", "partition",
 *    "committed_offset", "high_watermark", "lag"}, ...]}
 *
 * partitions in topic-name order, then by partition; committed offsets of
 * topics since deleted are left out. Membership lives in the Kafka
 * listener's memory, not in the engine, and is not part of it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine-private.h"

static bool group_known(struct engine *e, const char *group)
{
	pthread_rwlock_rdlock(&e->meta_lock);
	bool known = json_object_object_get_ex(e->groups, group, NULL);
	pthread_rwlock_unlock(&e->meta_lock);
	return known;
}

/* The partitions of topic the group committed to, into parts; *total
 * grows by their lag. */
static void topic_lag(struct engine *e, const char *group, const char *topic,
		      json_object *parts, int64_t *total)
{
	int32_t n = 0;

	if (engine_topic_partitions(e, topic, &n) != 0)
		return;
	for (int32_t i = 0; i < n; i++) {
		int64_t committed = -1;
		char *md = NULL;
		struct partition *p = NULL;
		struct partition_info in;
		int rc = engine_group_offset_fetch(e, group, topic, i, &committed, &md);

		free(md);
		if (rc != 0 || committed < 0 || engine_partition_get(e, topic, i, &p) != 0)
			continue;
		engine_partition_info(p, &in);
		engine_partition_unref(p);
		int64_t lag = in.next_offset > committed ? in.next_offset - committed : 0;
		*total += lag;
		json_object *x = json_object_new_object();
		json_object_object_add(x, "topic", json_object_new_string(topic));
		json_object_object_add(x, "partition", json_object_new_int(i));
		json_object_object_add(x, "committed_offset", json_object_new_int64(committed));
		json_object_object_add(x, "high_watermark", json_object_new_int64(in.next_offset));
		json_object_object_add(x, "lag", json_object_new_int64(lag));
		json_object_array_add(parts, x);
	}
}

int engine_group_lag_json(struct engine *e, const char *group, char **json)
{
	char **topics = NULL;
	size_t ntopics = 0;
	int64_t total = 0;
	int rc;

	if (!group_known(e, group))
		return -ENOENT;
	rc = engine_topic_list(e, &topics, &ntopics);
	if (rc)
		return rc;
	json_object *o = json_object_new_object(), *parts = json_object_new_array();
	if (!o || !parts) {
		json_object_put(o);
		json_object_put(parts);
		engine_strv_free(topics, ntopics);
		return -ENOMEM;
	}
	for (size_t t = 0; t < ntopics; t++)
		topic_lag(e, group, topics[t], parts, &total);
	engine_strv_free(topics, ntopics);
	json_object_object_add(o, "group", json_object_new_string(group));
	json_object_object_add(o, "lag", json_object_new_int64(total));
	json_object_object_add(o, "partitions", parts);
	*json = strdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return *json ? 0 : -ENOMEM;
}
