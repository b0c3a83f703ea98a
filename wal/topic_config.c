/* topic_config.c - the topic configuration keys the engine knows and
 * their defaults: the one table that the engine's policies (retention.c,
 * indexer.c) and the front-ends that show configs (kafka/handlers_config.c)
 * read, so that what a client is told is what the engine does.
 *
 *   cleanup.policy             "delete"      retention.c
 *   compression.type           "lz4"         indexer.c: how segments store
 *                                            batches that came uncompressed
 *   delete.retention.ms        "86400000"    compaction's tombstone grace
 *   min.cleanable.dirty.ratio  "0.5"         when compaction runs
 *   retention.bytes            "-1"          retention.c (-1 = no limit)
 *   retention.ms               "-1"          retention.c (-1 = keep forever)
 *   segment.bytes              "1073741824"  accepted; segments follow the
 *                                            WAL files (wal.segment.bytes)
 *   remote.storage.enable      "false"       tier.c: segments move to the
 *                                            object store (when attached)
 *   local.retention.bytes      "-2"          tier.c: what stays local
 *   local.retention.ms         "-2"          (-2 = retention.*, -1 = all)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine-private.h"

static const struct {
	const char *key, *value;
} defaults[] = {
	{ "cleanup.policy", "delete" },	       { "compression.type", "lz4" },
	{ "delete.retention.ms", "86400000" }, { "min.cleanable.dirty.ratio", "0.5" },
	{ "retention.bytes", "-1" },	       { "retention.ms", "-1" },
	{ "segment.bytes", "1073741824" },     { "remote.storage.enable", "false" },
	{ "local.retention.bytes", "-2" },     { "local.retention.ms", "-2" },
};

const char *engine_topic_config_default(const char *key)
{
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (strcmp(defaults[i].key, key) == 0)
			return defaults[i].value;
	return NULL;
}

int64_t topic_config_i64(json_object *o, const char *key)
{
	const char *d = engine_topic_config_default(key);
	int64_t dflt = d ? strtoll(d, NULL, 10) : -1;
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return dflt;
	if (json_object_is_type(v, json_type_int))
		return json_object_get_int64(v);
	if (json_object_is_type(v, json_type_string)) {
		char *end;
		const char *s = json_object_get_string(v);
		errno = 0;
		long long x = strtoll(s, &end, 10);
		if (!errno && end != s && !*end)
			return x;
	}
	return dflt;
}
