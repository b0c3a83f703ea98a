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
 *   compaction.filter          (none)        compact.c: a custom policy
 *   compaction.drop.value.prefix (none)      its shipped example's prefix
 *
 * VALIDATION (engine_topic_config_check, the one check every way of
 * setting a config goes through: engine_topic_create and
 * engine_topic_config_set refuse a config that fails it with -EINVAL and
 * change nothing; the CLI, Kafka's CreateTopics / AlterConfigs /
 * IncrementalAlterConfigs and config.json on the mount call it or get
 * that -EINVAL). A key must be one of the above; its value, as a string
 * (a JSON number or boolean as its text), must be:
 *
 *   cleanup.policy             a comma-separated list of delete and
 *                              compact, each at most once, blanks
 *                              around an item allowed ("compact, delete")
 *   compression.type           lz4, zstd, gzip, snappy, none,
 *                              uncompressed (Kafka's name for none: the
 *                              same everywhere) or producer
 *   retention.ms, retention.bytes          an integer >= -1
 *   local.retention.ms, local.retention.bytes  an integer >= -2
 *   delete.retention.ms        an integer >= 0
 *   segment.bytes              an integer in [14, 2^31 - 1] (Kafka's)
 *   min.cleanable.dirty.ratio  a decimal number in [0, 1]
 *   remote.storage.enable      true or false
 *   compaction.filter, compaction.drop.value.prefix   any string
 *
 * Integers are decimal, with an optional '-', nothing else around them,
 * within int64.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
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

/* s as a whole a decimal integer within int64 into *out. */
static bool parse_i64(const char *s, long long *out)
{
	char *end;
	if (!*s || !(*s == '-' || (*s >= '0' && *s <= '9')))
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return !errno && end != s && !*end;
}

static const char *check_int(const char *v, long long min, long long max, const char *why)
{
	long long x;
	return parse_i64(v, &x) && x >= min && x <= max ? NULL : why;
}

static bool one_of(const char *v, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(v, *set) == 0)
			return true;
	return false;
}

/* cleanup.policy: a comma-separated list of "delete" and "compact", each
 * at most once, blanks around an item allowed (Kafka's list syntax:
 * "compact, delete" is Kafka's too; compact.c and retention.c look for the
 * words, so every spelling accepted here means what it says). */
static bool policy_list(const char *v)
{
	bool seen[2] = { false, false };
	static const char *const names[2] = { "delete", "compact" };

	for (;;) {
		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strcspn(v, ", \t");
		int which = -1;
		for (int i = 0; i < 2; i++)
			if (n == strlen(names[i]) && strncmp(v, names[i], n) == 0)
				which = i;
		if (which < 0 || seen[which])
			return false;
		seen[which] = true;
		v += n;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!*v)
			return true;
		if (*v++ != ',')
			return false;
	}
}

const char *engine_topic_config_check(const char *key, const char *value)
{
	static const char *const codecs[] = { "lz4",  "zstd",	      "gzip",	  "snappy",
					      "none", "uncompressed", "producer", NULL };
	static const char *const bools[] = { "true", "false", NULL };

	if (!key || !value)
		return "missing key or value";
	if (strcmp(key, "cleanup.policy") == 0)
		return policy_list(value) ? NULL :
					    "cleanup.policy must be delete, compact, "
					    "compact,delete or delete,compact";
	if (strcmp(key, "compression.type") == 0)
		return one_of(value, codecs) ? NULL :
					       "compression.type must be lz4, zstd, gzip, snappy, "
					       "none, uncompressed or producer";
	if (strcmp(key, "retention.ms") == 0 || strcmp(key, "retention.bytes") == 0)
		return check_int(value, -1, INT64_MAX, "must be an integer >= -1");
	if (strcmp(key, "local.retention.ms") == 0 || strcmp(key, "local.retention.bytes") == 0)
		return check_int(value, -2, INT64_MAX, "must be an integer >= -2");
	if (strcmp(key, "delete.retention.ms") == 0)
		return check_int(value, 0, INT64_MAX, "must be an integer >= 0");
	if (strcmp(key, "segment.bytes") == 0)
		return check_int(value, 14, INT32_MAX, "must be an integer in [14, 2147483647]");
	if (strcmp(key, "min.cleanable.dirty.ratio") == 0) {
		char *end;
		errno = 0;
		double x = strtod(value, &end);
		bool num = *value && ((*value >= '0' && *value <= '9') || *value == '.');
		return num && !errno && !*end && isfinite(x) && x >= 0.0 && x <= 1.0 ?
			       NULL :
			       "min.cleanable.dirty.ratio must be a number in [0, 1]";
	}
	if (strcmp(key, "remote.storage.enable") == 0)
		return one_of(value, bools) ? NULL : "remote.storage.enable must be true or false";
	if (strcmp(key, "compaction.filter") == 0 ||
	    strcmp(key, "compaction.drop.value.prefix") == 0)
		return NULL;
	return "unknown topic config key";
}

int topic_config_check_object(json_object *o, json_object *keep, char *why, size_t len)
{
	json_object_object_foreach(o, key, v)
	{
		const char *text, *bad;
		json_object *was;
		if (keep && json_object_object_get_ex(keep, key, &was) &&
		    json_object_get_type(was) == json_object_get_type(v) &&
		    strcmp(json_object_get_string(was), json_object_get_string(v)) == 0)
			continue; /* kept as stored: not checked again */
		if (json_object_is_type(v, json_type_string) ||
		    json_object_is_type(v, json_type_int) ||
		    json_object_is_type(v, json_type_double) ||
		    json_object_is_type(v, json_type_boolean)) {
			text = json_object_get_string(v);
			bad = engine_topic_config_check(key, text);
		} else {
			bad = "a config value must be a string, a number or a boolean";
		}
		if (bad) {
			if (why)
				snprintf(why, len, "%s: %s", key, bad);
			return -EINVAL;
		}
	}
	return 0;
}
