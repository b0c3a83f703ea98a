/* test_topic_config.c - topic config validation (wal/topic_config.c,
 * VALIDATION): engine_topic_config_check accepts every listed value and
 * refuses the rest; engine_topic_create and engine_topic_config_set refuse
 * a config with a bad pair (-EINVAL) and change nothing; JSON numbers and
 * booleans are checked as their text; compression.type "uncompressed"
 * stores segments as "none" does; a pair the stored config already holds
 * unchanged is not checked again (a topic stored before a rule was
 * tightened can have its other keys changed). */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>

#include "engine-private.h"
#include "testutil.h"

static const struct {
	const char *key, *value;
	bool valid;
} cases[] = {
	{ "cleanup.policy", "delete", true },
	{ "cleanup.policy", "compact", true },
	{ "cleanup.policy", "compact,delete", true },
	{ "cleanup.policy", "delete,compact", true },
	{ "cleanup.policy", "", false },
	{ "cleanup.policy", "compact, delete", true },
	{ "cleanup.policy", " delete ,compact ", true },
	{ "cleanup.policy", "compact,,delete", false },
	{ "cleanup.policy", "delete,", false },
	{ "cleanup.policy", "compact delete", false },
	{ "cleanup.policy", "delete,delete", false },
	{ "cleanup.policy", "compact,delete,compact", false },
	{ "cleanup.policy", "Delete", false },
	{ "cleanup.policy", "remove", false },
	{ "compression.type", "lz4", true },
	{ "compression.type", "zstd", true },
	{ "compression.type", "gzip", true },
	{ "compression.type", "snappy", true },
	{ "compression.type", "none", true },
	{ "compression.type", "uncompressed", true },
	{ "compression.type", "producer", true },
	{ "compression.type", "brotli", false },
	{ "compression.type", "", false },
	{ "compression.type", "LZ4", false },
	{ "retention.ms", "-1", true },
	{ "retention.ms", "0", true },
	{ "retention.ms", "604800000", true },
	{ "retention.ms", "9223372036854775807", true },
	{ "retention.ms", "-2", false },
	{ "retention.ms", "9223372036854775808", false },
	{ "retention.ms", "1h", false },
	{ "retention.ms", " 5", false },
	{ "retention.ms", "5 ", false },
	{ "retention.ms", "", false },
	{ "retention.ms", "1.5", false },
	{ "retention.bytes", "-1", true },
	{ "retention.bytes", "268435456", true },
	{ "retention.bytes", "-5", false },
	{ "retention.bytes", "0x10", false },
	{ "local.retention.ms", "-2", true },
	{ "local.retention.bytes", "-3", false },
	{ "delete.retention.ms", "0", true },
	{ "delete.retention.ms", "-1", false },
	{ "segment.bytes", "14", true },
	{ "segment.bytes", "2147483647", true },
	{ "segment.bytes", "13", false },
	{ "segment.bytes", "2147483648", false },
	{ "min.cleanable.dirty.ratio", "0", true },
	{ "min.cleanable.dirty.ratio", "0.5", true },
	{ "min.cleanable.dirty.ratio", "1", true },
	{ "min.cleanable.dirty.ratio", "1.0", true },
	{ "min.cleanable.dirty.ratio", "1.01", false },
	{ "min.cleanable.dirty.ratio", "-0.1", false },
	{ "min.cleanable.dirty.ratio", "nan", false },
	{ "min.cleanable.dirty.ratio", "half", false },
	{ "min.cleanable.dirty.ratio", "", false },
	{ "remote.storage.enable", "true", true },
	{ "remote.storage.enable", "false", true },
	{ "remote.storage.enable", "yes", false },
	{ "compaction.filter", "value.prefix", true },
	{ "compaction.drop.value.prefix", "DEBUG ", true },
	{ "retention.hours", "1", false },
	{ "no.such.key", "x", false },
};

/* The compression attribute (codec bits) of the first batch at offset 0 in
 * the segment of p, or -1. */
static int first_codec(struct partition *p)
{
	uint8_t *b = NULL;
	size_t len = 0;
	int c = -1;
	if (engine_read_batches(p, 0, 1 << 20, &b, &len) == 0 && len > 22)
		c = b[22] & 7; /* attributes, big-endian int16 at 21 */
	free(b);
	return c;
}

int main(void)
{
	char *dir = tmpdir_new("topicconfig");
	struct engine *e = open_or_bail(dir, NULL);
	size_t ncases = sizeof(cases) / sizeof(cases[0]);
	int wrong = 0, created = 0, changed = 0;
	int32_t np;
	char *cfg = NULL;

	for (size_t i = 0; i < ncases; i++) {
		const char *why = engine_topic_config_check(cases[i].key, cases[i].value);
		if ((why == NULL) != cases[i].valid) {
			wrong++;
			diag("%s=\"%s\": %s", cases[i].key, cases[i].value, why ? why : "accepted");
		} else if (why && !*why) {
			wrong++;
		}
	}
	ok(wrong == 0, "engine_topic_config_check: %zu keys and values as documented (%d wrong)",
	   ncases, wrong);

	json_object *stored = json_tokener_parse("{\"old.key\":\"x\",\"retention.ms\":\"5\"}");
	json_object *kept = json_tokener_parse("{\"old.key\":\"x\",\"retention.ms\":\"7\"}");
	json_object *moved = json_tokener_parse("{\"old.key\":\"y\",\"retention.ms\":\"7\"}");
	ok(topic_config_check_object(kept, NULL, NULL, 0) == -EINVAL &&
		   topic_config_check_object(kept, stored, NULL, 0) == 0 &&
		   topic_config_check_object(moved, stored, NULL, 0) == -EINVAL,
	   "a stored pair kept unchanged is not checked again; a changed one is");
	json_object_put(stored);
	json_object_put(kept);
	json_object_put(moved);

	ok(engine_topic_create(e, "t", 1, "{\"cleanup.policy\":\"compact\"}") == 0, "create t");
	wrong = 0;
	for (size_t i = 0; i < ncases; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, cases[i].key, json_object_new_string(cases[i].value));
		const char *text = json_object_to_json_string(o);
		int rc = engine_topic_create(e, "new", 1, text);
		if (rc == 0) {
			created += !cases[i].valid;
			engine_topic_delete(e, "new");
		} else if (cases[i].valid || rc != -EINVAL ||
			   engine_topic_partitions(e, "new", &np) != CHRONIK_ENOTOPIC) {
			wrong++;
		}
		rc = engine_topic_config_set(e, "t", text);
		if ((rc == 0) != cases[i].valid || (rc && rc != -EINVAL))
			wrong++;
		if (rc) {
			free(cfg);
			cfg = NULL;
			if (engine_topic_config_get(e, "t", &cfg) ||
			    !strstr(cfg, "\"cleanup.policy\""))
				changed++;
		} else {
			engine_topic_config_set(e, "t", "{\"cleanup.policy\":\"compact\"}");
		}
		json_object_put(o);
	}
	ok(wrong == 0 && created == 0,
	   "create and config set take exactly the valid values, -EINVAL for the others "
	   "(%d wrong, %d bad topics created)",
	   wrong, created);
	ok(changed == 0, "a refused config set leaves the old config (%d changed)", changed);
	free(cfg);
	cfg = NULL;

	int rc = engine_topic_config_set(
		e, "t", "{\"cleanup.policy\":\"compact\",\"retention.ms\":\"bad\"}");
	if (engine_topic_config_get(e, "t", &cfg))
		bail("engine_topic_config_get");
	ok(rc == -EINVAL && strcmp(cfg, "{\"cleanup.policy\":\"compact\"}") == 0,
	   "one bad pair refuses the whole config: %s", cfg);
	free(cfg);
	cfg = NULL;
	ok(engine_topic_config_set(e, "t",
				   "{\"retention.ms\":60000,\"min.cleanable.dirty.ratio\":0.25,"
				   "\"remote.storage.enable\":false}") == 0,
	   "JSON numbers and booleans are checked as their text");
	ok(engine_topic_config_set(e, "t", "{\"retention.ms\":-7}") == -EINVAL &&
		   engine_topic_config_set(e, "t", "{\"retention.ms\":{\"a\":1}}") == -EINVAL &&
		   engine_topic_config_set(e, "t", "{\"retention.ms\":null}") == -EINVAL &&
		   engine_topic_config_set(e, "t", "{\"min.cleanable.dirty.ratio\":2.5}") ==
			   -EINVAL,
	   "an out-of-range number, an object and null are refused");

	/* "uncompressed" is "none": batches kept as they came. */
	struct partition *p;
	const char *names[] = { "none", "uncompressed", "lz4" };
	int codec[3];
	for (int i = 0; i < 3; i++) {
		char c[64], t[16];
		int64_t base;
		snprintf(c, sizeof(c), "{\"compression.type\":\"%s\"}", names[i]);
		snprintf(t, sizeof(t), "c-%d", i);
		if (engine_topic_create(e, t, 1, c))
			bail("create %s", t);
		p = part_or_bail(e, t, 0);
		char lines[4000];
		for (size_t j = 0; j < sizeof(lines); j++)
			lines[j] = j % 40 == 39 ? '\n' : 'a' + (char)(j % 40 % 26);
		if (engine_append_lines(p, lines, sizeof(lines), &base) || engine_index_now(e))
			bail("append/index %s", t);
		codec[i] = first_codec(p);
		engine_partition_unref(p);
	}
	ok(codec[0] == 0 && codec[1] == 0 && codec[2] == 3,
	   "segments of none and uncompressed hold uncompressed batches, lz4's lz4 (%d %d %d)",
	   codec[0], codec[1], codec[2]);
	engine_close(e);
	tmpdir_free(dir);
	return tap_exit();
}
