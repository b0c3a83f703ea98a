/* handlers_config.c - configs: DescribeConfigs (32), AlterConfigs (33) and
 * IncrementalAlterConfigs (44), for topics and (read-only) the broker.
 *
 * A topic's config is the engine's JSON object of strings
 * (engine_topic_config_get / engine_topic_config_set; the mount shows it as
 * TOPIC/config.json). Kafka's topic keys known here, each with the broker
 * setting it falls back to (its synonym) and the values it takes; their
 * defaults are the engine's (engine_topic_config_default, wal/topic_config.c:
 * retention.ms -1, compression.type lz4, the others Kafka's):
 *
 *   cleanup.policy              log.cleanup.policy (a list: delete, compact,
 *                               or both)
 *   retention.ms                log.retention.ms (>= -1)
 *   retention.bytes             log.retention.bytes (>= -1)
 *   compression.type            compression.type (uncompressed, zstd, lz4,
 *                               snappy, gzip, producer; and none, the
 *                               same as uncompressed)
 *   segment.bytes               log.segment.bytes (int32 >= 14)
 *   min.cleanable.dirty.ratio   log.cleaner.min.cleanable.ratio (in [0, 1])
 *   delete.retention.ms         log.cleaner.delete.retention.ms (>= 0)
 *
 * DescribeConfigs lists these keys for a topic: a key set in the topic's
 * config has source TOPIC_CONFIG (1), else its default has DEFAULT_CONFIG
 * (5) and IsDefault (v0). With IncludeSynonyms (v1+) a key lists itself
 * when set, then its broker synonym at its default. Keys of the JSON object
 * that are not Kafka's (the engine's own, e.g. compaction.filter) are not
 * listed, and the alters leave them alone.
 *
 * The broker resource (type 4, name "" or the node id "1") answers its
 * settings read-only (STATIC_BROKER_CONFIG 4, or DEFAULT_CONFIG 5 for the
 * synonyms above at their defaults); altering it gets 42 INVALID_REQUEST
 * ("broker configs are read-only"), as Kafka answers a config that cannot
 * change dynamically. Another resource type gets 42; an unknown topic 3.
 *
 * AlterConfigs replaces every Kafka key of the topic with the request's
 * (keys not given return to their defaults; a null value is not given).
 * IncrementalAlterConfigs applies SET (0), DELETE (1) and, for the list
 * key cleanup.policy, APPEND (2) and SUBTRACT (3); APPEND or SUBTRACT on
 * another key, or an unknown operation, is 40 INVALID_CONFIG. In both, an
 * unknown key or a value out of its range gets 40 INVALID_CONFIG for its
 * resource and changes nothing there (the values are checked by
 * engine_topic_config_check, wal/topic_config.c, the check every way of
 * setting a config shares); ValidateOnly checks and changes
 * nothing. A resource's change is one engine_topic_config_set (one durable
 * metadata-log event).
 */
#include "kafka-private.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_ID_STR "1"

enum { RESOURCE_TOPIC = 2, RESOURCE_BROKER = 4 };
enum {
	SOURCE_TOPIC_CONFIG = 1,
	SOURCE_STATIC_BROKER_CONFIG = 4,
	SOURCE_DEFAULT_CONFIG = 5,
};
enum { OP_SET = 0, OP_DELETE = 1, OP_APPEND = 2, OP_SUBTRACT = 3 };

enum value_kind { V_POLICY, V_LONG_MIN1, V_LONG_MIN0, V_INT_MIN14, V_RATIO, V_COMPRESSION };

struct topic_key {
	const char *name;
	const char *synonym;
	enum value_kind kind;
};

/* The keys shown and accepted; their defaults are the engine's
 * (engine_topic_config_default), so what a client is told is what the
 * engine does. */
static const struct topic_key topic_keys[] = {
	{ "cleanup.policy", "log.cleanup.policy", V_POLICY },
	{ "compression.type", "compression.type", V_COMPRESSION },
	{ "delete.retention.ms", "log.cleaner.delete.retention.ms", V_LONG_MIN0 },
	{ "min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", V_RATIO },
	{ "retention.bytes", "log.retention.bytes", V_LONG_MIN1 },
	{ "retention.ms", "log.retention.ms", V_LONG_MIN1 },
	{ "segment.bytes", "log.segment.bytes", V_INT_MIN14 },
};
#define NKEYS (sizeof(topic_keys) / sizeof(topic_keys[0]))

static const struct topic_key *topic_key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(topic_keys[i].name, name) == 0)
			return &topic_keys[i];
	return NULL;
}

const char *kafka_topic_config_check(struct kafka_str key, struct kafka_str value)
{
	char name[256], v[256];
	if (key.len < 0 || key.len >= (int32_t)sizeof(name))
		return "unknown topic config name";
	snprintf(name, sizeof(name), "%.*s", key.len, key.ptr);
	const struct topic_key *tk = topic_key_find(name);
	if (!tk)
		return "unknown topic config name";
	if (value.len < 0)
		return NULL; /* null: the default */
	if (value.len >= (int32_t)sizeof(v))
		return "invalid value for this config";
	snprintf(v, sizeof(v), "%.*s", value.len, value.ptr);
	return engine_topic_config_check(tk->name, v);
}

/* ---- DescribeConfigs ------------------------------------------------------ */

/* Kafka's ConfigType (DescribeConfigs v3+) of a topic key. */
static int8_t config_type(const struct topic_key *k)
{
	switch (k->kind) {
	case V_POLICY:
		return 7; /* LIST */
	case V_COMPRESSION:
		return 2; /* STRING */
	case V_LONG_MIN1:
	case V_LONG_MIN0:
		return 5; /* LONG */
	case V_INT_MIN14:
		return 3; /* INT */
	case V_RATIO:
		return 6; /* DOUBLE */
	}
	return 0; /* UNKNOWN */
}

/* One DescribeConfigsResourceResult config entry (v0-4); ctype is its
 * ConfigType (v3+). */
static void config_entry_write(struct kafka_writer *w, int16_t v, const char *name,
			       const char *value, bool read_only, int8_t source, bool synonyms,
			       const char *syn_name, const char *syn_value, int8_t syn_source,
			       int8_t ctype)
{
	bool f = v >= 4;
	kafka_write_string(w, f, name);
	kafka_write_string(w, f, value);
	kafka_write_bool(w, read_only);
	if (v == 0)
		kafka_write_bool(w, source == SOURCE_DEFAULT_CONFIG);
	else
		kafka_write_i8(w, source);
	kafka_write_bool(w, false); /* IsSensitive */
	if (v >= 1) {
		int32_t n = 0;
		if (synonyms)
			n = (source == SOURCE_TOPIC_CONFIG ? 1 : 0) + (syn_name ? 1 : 0);
		kafka_write_array(w, f, n);
		if (synonyms && source == SOURCE_TOPIC_CONFIG) {
			kafka_write_string(w, f, name);
			kafka_write_string(w, f, value);
			kafka_write_i8(w, source);
			if (f)
				kafka_write_tags(w);
		}
		if (synonyms && syn_name) {
			kafka_write_string(w, f, syn_name);
			kafka_write_string(w, f, syn_value);
			kafka_write_i8(w, syn_source);
			if (f)
				kafka_write_tags(w);
		}
	}
	if (v >= 3) {
		kafka_write_i8(w, ctype);
		kafka_write_string(w, f, NULL); /* Documentation */
	}
	if (f)
		kafka_write_tags(w);
}

/* Is name among the requested keys (keys at, n of them; n < 0 = all)? */
static bool key_requested(const uint8_t *at, const uint8_t *end, int32_t n, bool f,
			  const char *name)
{
	struct kafka_reader kr;
	if (n < 0)
		return true;
	kafka_reader_init(&kr, at, (size_t)(end - at));
	for (int32_t i = 0; i < n; i++)
		if (kafka_str_eq(kafka_read_string(&kr, f, false), name))
			return true;
	return false;
}

/* The broker's settings, "name\0value" pairs (static, read-only). */
static int broker_settings(struct kafka_request *req, char (*out)[2][64], int cap)
{
	struct engine_options eo;
	const struct kafka_options *ko = &req->l->o;
	int n = 0;
	engine_options_get(req->l->e, &eo);
#define SET(k, ...)                                           \
	do {                                                  \
		if (n < cap) {                                \
			snprintf(out[n][0], 64, "%s", k);     \
			snprintf(out[n][1], 64, __VA_ARGS__); \
			n++;                                  \
		}                                             \
	} while (0)
	SET("auto.create.topics.enable", "%s", ko->auto_create_topics ? "true" : "false");
	SET("broker.id", "%s", NODE_ID_STR);
	SET("connections.max.idle.ms", "%d", (int)ko->connections_max_idle_ms);
	SET("default.replication.factor", "1");
	SET("fsync", "%s",
	    eo.fsync == FSYNC_EVERY ? "every" :
	    eo.fsync == FSYNC_NEVER ? "never" :
				      "interval");
	SET("max.partitions", "%d", (int)eo.max_partitions);
	SET("max.topics", "%d", (int)eo.max_topics);
	SET("num.partitions", "%d", (int)eo.default_partitions);
	SET("socket.request.max.bytes", "%zu", ko->max_request_bytes);
	SET("wal.segment.bytes", "%llu", (unsigned long long)eo.wal_segment_bytes);
#undef SET
	return n;
}

static bool broker_name_ok(struct kafka_str name)
{
	return name.len == 0 || kafka_str_eq(name, NODE_ID_STR);
}

/* DescribeConfigsRequest v0-4: Resources [ResourceType int8, ResourceName,
 * ConfigurationKeys nullable [string]], IncludeSynonyms bool (v1+),
 * IncludeDocumentation bool (v3+).
 * DescribeConfigsResponse v0-4: ThrottleTimeMs, Results [ErrorCode,
 * ErrorMessage nullable, ResourceType int8, ResourceName, Configs [Name,
 * Value nullable, ReadOnly bool, IsDefault bool (v0) | ConfigSource int8
 * (v1+), IsSensitive bool, Synonyms (v1+) [Name, Value nullable, Source
 * int8], ConfigType int8 (v3+), Documentation nullable (v3+, always null)]].
 * v4 is flexible. ConfigType follows each topic key's kind (LIST, STRING,
 * LONG, INT, DOUBLE); the broker's settings say UNKNOWN (0). */
int kafka_handle_describe_configs(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	bool f = req->flexible;

	/* smallest resource: type 1 + name 2 + null keys 4 (flexible: 1 + 1 +
	 * 1 + tags 1) */
	int32_t n = kafka_read_array(r, f, false, f ? 4 : 7);
	if (kafka_reader_failed(r))
		return -1;
	const uint8_t *resources_at = r->p;
	for (int32_t i = 0; i < n; i++) {
		(void)kafka_read_i8(r);
		(void)kafka_read_string(r, f, false);
		int32_t nk = kafka_read_array(r, f, true, 2);
		for (int32_t k = 0; k < nk && !kafka_reader_failed(r); k++)
			(void)kafka_read_string(r, f, false);
		if (f)
			kafka_read_tags(r);
	}
	bool synonyms = v >= 1 ? kafka_read_bool(r) : false;
	if (v >= 3)
		(void)kafka_read_bool(r); /* IncludeDocumentation: none to give */
	if (kafka_reader_failed(r))
		return -1;

	struct kafka_reader rr;
	kafka_reader_init(&rr, resources_at, (size_t)(r->end - resources_at));
	kafka_write_i32(w, 0);
	kafka_write_array(w, f, n);
	for (int32_t i = 0; i < n; i++) {
		int8_t type = kafka_read_i8(&rr);
		struct kafka_str name = kafka_read_string(&rr, f, false);
		int32_t nk = kafka_read_array(&rr, f, true, 2);
		const uint8_t *keys_at = rr.p;
		for (int32_t k = 0; k < nk; k++)
			(void)kafka_read_string(&rr, f, false);
		if (f)
			kafka_read_tags(&rr);

		char topic[250];
		char *json = NULL;
		int16_t err = KERR_NONE;
		const char *msg = NULL;
		if (type == RESOURCE_TOPIC) {
			int rc = kafka_topic_name_copy(name, topic) ?
					 engine_topic_config_get(req->l->e, topic, &json) :
					 CHRONIK_ENOTOPIC;
			err = kafka_error_from(rc);
			if (rc)
				msg = rc == CHRONIK_ENOTOPIC ? "unknown topic" :
							       chronik_strerror(rc);
		} else if (type == RESOURCE_BROKER) {
			if (!broker_name_ok(name)) {
				err = KERR_INVALID_REQUEST;
				msg = "unknown broker id";
			}
		} else {
			err = KERR_INVALID_REQUEST;
			msg = "unsupported resource type";
		}
		kafka_write_i16(w, err);
		kafka_write_string(w, f, msg);
		kafka_write_i8(w, type);
		kafka_write_str(w, f, name);
		if (err) {
			kafka_write_array(w, f, 0);
			if (f)
				kafka_write_tags(w);
			free(json);
			continue;
		}
		/* The entries go to e first: a compact count cannot be patched. */
		struct kafka_writer e;
		kafka_writer_init(&e, 0);
		int32_t written = 0;
		if (type == RESOURCE_TOPIC) {
			json_object *cfg = json ? json_tokener_parse(json) : NULL;
			for (size_t k = 0; k < NKEYS; k++) {
				const struct topic_key *tk = &topic_keys[k];
				json_object *val = NULL;
				if (!key_requested(keys_at, rr.end, nk, f, tk->name))
					continue;
				bool set = cfg && json_object_object_get_ex(cfg, tk->name, &val) &&
					   val;
				config_entry_write(
					&e, v, tk->name,
					set ? json_object_get_string(val) :
					      engine_topic_config_default(tk->name),
					false, set ? SOURCE_TOPIC_CONFIG : SOURCE_DEFAULT_CONFIG,
					synonyms, tk->synonym,
					engine_topic_config_default(tk->name),
					SOURCE_DEFAULT_CONFIG, config_type(tk));
				written++;
			}
			json_object_put(cfg);
		} else {
			char settings[16][2][64];
			int ns = broker_settings(req, settings, 16);
			for (int k = 0; k < ns; k++) {
				if (!key_requested(keys_at, rr.end, nk, f, settings[k][0]))
					continue;
				config_entry_write(&e, v, settings[k][0], settings[k][1], true,
						   SOURCE_STATIC_BROKER_CONFIG, synonyms,
						   settings[k][0], settings[k][1],
						   SOURCE_STATIC_BROKER_CONFIG, 0);
				written++;
			}
			for (size_t k = 0; k < NKEYS; k++) {
				const struct topic_key *tk = &topic_keys[k];
				if (strcmp(tk->synonym, tk->name) == 0 ||
				    !key_requested(keys_at, rr.end, nk, f, tk->synonym))
					continue;
				config_entry_write(&e, v, tk->synonym,
						   engine_topic_config_default(tk->name), true,
						   SOURCE_DEFAULT_CONFIG, synonyms, NULL, NULL, 0,
						   config_type(tk));
				written++;
			}
		}
		kafka_write_array(w, f, written);
		kafka_write_raw(w, e.buf, e.len);
		if (e.failed)
			w->failed = true;
		kafka_writer_fini(&e);
		if (f)
			kafka_write_tags(w);
		free(json);
	}
	if (f)
		kafka_write_tags(w);
	return 0;
}

/* ---- AlterConfigs, IncrementalAlterConfigs ---------------------------------- */

/* cleanup.policy's list with item added (append) or removed (subtract);
 * a malloc'd string, "" when nothing is left. */
static char *policy_edit(const char *cur, const char *item, bool append)
{
	char buf[64], *out = calloc(1, 64);
	bool have = false;
	if (!out)
		return NULL;
	snprintf(buf, sizeof(buf), "%s", cur);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ' || *t == '\t')
			t++;
		for (size_t n = strlen(t); n && (t[n - 1] == ' ' || t[n - 1] == '\t');)
			t[--n] = '\0';
		if (strcmp(t, item) == 0) {
			have = true;
			if (!append)
				continue;
		}
		snprintf(out + strlen(out), 64 - strlen(out), "%s%s", out[0] ? "," : "", t);
	}
	if (append && !have)
		snprintf(out + strlen(out), 64 - strlen(out), "%s%s", out[0] ? "," : "", item);
	return out;
}

/* Apply one resource's changes (configs at, n of them; incremental: with
 * an operation each) to the topic's config. *msg: a static text on error. */
static int16_t topic_config_alter(struct kafka_request *req, const char *topic, const uint8_t *at,
				  int32_t n, bool incremental, bool validate_only, const char **msg)
{
	struct kafka_reader cr;
	char *json = NULL;
	json_object *cfg = NULL;
	int16_t err = KERR_NONE;
	int rc;

	rc = engine_topic_config_get(req->l->e, topic, &json);
	if (rc) {
		*msg = rc == CHRONIK_ENOTOPIC ? "unknown topic" : chronik_strerror(rc);
		return kafka_error_from(rc);
	}
	cfg = json_tokener_parse(json);
	free(json);
	if (!cfg || !json_object_is_type(cfg, json_type_object)) {
		json_object_put(cfg);
		cfg = json_object_new_object();
	}
	if (!incremental) /* every Kafka key is replaced */
		for (size_t k = 0; k < NKEYS; k++)
			json_object_object_del(cfg, topic_keys[k].name);

	kafka_reader_init(&cr, at, (size_t)(req->r->end - at));
	for (int32_t i = 0; i < n && !err; i++) {
		char name[256], value[256];
		struct kafka_str ks = kafka_read_string(&cr, req->flexible, false);
		int8_t op = incremental ? kafka_read_i8(&cr) : OP_SET;
		struct kafka_str vs = kafka_read_string(&cr, req->flexible, true);
		if (req->flexible)
			kafka_read_tags(&cr);
		snprintf(name, sizeof(name), "%.*s", ks.len, ks.ptr);
		snprintf(value, sizeof(value), "%.*s", vs.len > 0 ? vs.len : 0,
			 vs.ptr ? vs.ptr : "");
		const struct topic_key *tk = topic_key_find(name);
		if (!tk || ks.len >= (int32_t)sizeof(name)) {
			err = KERR_INVALID_CONFIG;
			*msg = "unknown topic config name";
		} else if (!incremental && vs.len < 0) {
			continue; /* not given: back to the default */
		} else if (op == OP_DELETE) {
			json_object_object_del(cfg, tk->name);
		} else if (op == OP_SET) {
			const char *why = vs.len < 0 || vs.len >= (int32_t)sizeof(value) ?
						  "invalid value for this config" :
						  engine_topic_config_check(tk->name, value);
			if (why) {
				err = KERR_INVALID_CONFIG;
				*msg = why;
			} else {
				json_object_object_add(cfg, tk->name,
						       json_object_new_string(value));
			}
		} else if ((op == OP_APPEND || op == OP_SUBTRACT) && tk->kind == V_POLICY) {
			json_object *cur = NULL;
			const char *base = json_object_object_get_ex(cfg, tk->name, &cur) && cur ?
						   json_object_get_string(cur) :
						   engine_topic_config_default(tk->name);
			if (strcmp(value, "delete") != 0 && strcmp(value, "compact") != 0) {
				err = KERR_INVALID_CONFIG;
				*msg = "invalid value for this config";
				break;
			}
			char *edited = policy_edit(base, value, op == OP_APPEND);
			if (!edited) {
				err = KERR_UNKNOWN_SERVER_ERROR;
			} else if (!edited[0]) {
				err = KERR_INVALID_CONFIG;
				*msg = "cleanup.policy cannot be empty";
			} else if ((*msg = engine_topic_config_check(tk->name, edited)) != NULL) {
				err = KERR_INVALID_CONFIG;
			} else {
				json_object_object_add(cfg, tk->name,
						       json_object_new_string(edited));
			}
			free(edited);
		} else {
			err = KERR_INVALID_CONFIG;
			*msg = "operation not allowed for this config";
		}
	}
	if (!err && !validate_only) {
		rc = engine_topic_config_set(
			req->l->e, topic,
			json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN));
		err = kafka_error_from(rc);
		if (rc)
			*msg = chronik_strerror(rc);
	}
	json_object_put(cfg);
	return err;
}

/* AlterConfigsRequest v0-1: Resources [ResourceType int8, ResourceName,
 * Configs [Name, Value nullable]], ValidateOnly bool.
 * IncrementalAlterConfigsRequest v0: Resources [ResourceType int8,
 * ResourceName, Configs [Name, ConfigOperation int8, Value nullable]],
 * ValidateOnly bool.
 * Both responses: ThrottleTimeMs, Responses [ErrorCode, ErrorMessage
 * nullable, ResourceType int8, ResourceName]. */
static int alter_configs(struct kafka_request *req, bool incremental)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	size_t min_config = incremental ? 5 : 4;
	bool f = req->flexible;
	if (f)
		min_config = incremental ? 4 : 3;

	int32_t n = kafka_read_array(r, f, false, f ? 4 : 7);
	if (kafka_reader_failed(r))
		return -1;
	const uint8_t *resources_at = r->p;
	for (int32_t i = 0; i < n && !kafka_reader_failed(r); i++) {
		(void)kafka_read_i8(r);
		(void)kafka_read_string(r, f, false);
		int32_t nc = kafka_read_array(r, f, false, min_config);
		for (int32_t c = 0; c < nc && !kafka_reader_failed(r); c++) {
			(void)kafka_read_string(r, f, false);
			if (incremental)
				(void)kafka_read_i8(r);
			(void)kafka_read_string(r, f, true);
			if (f)
				kafka_read_tags(r);
		}
		if (f)
			kafka_read_tags(r);
	}
	bool validate_only = kafka_read_bool(r);
	if (kafka_reader_failed(r))
		return -1;

	struct kafka_reader rr;
	kafka_reader_init(&rr, resources_at, (size_t)(r->end - resources_at));
	kafka_write_i32(w, 0);
	kafka_write_array(w, f, n);
	for (int32_t i = 0; i < n; i++) {
		int8_t type = kafka_read_i8(&rr);
		struct kafka_str name = kafka_read_string(&rr, f, false);
		int32_t nc = kafka_read_array(&rr, f, false, min_config);
		const uint8_t *configs_at = rr.p;
		for (int32_t c = 0; c < nc; c++) {
			(void)kafka_read_string(&rr, f, false);
			if (incremental)
				(void)kafka_read_i8(&rr);
			(void)kafka_read_string(&rr, f, true);
			if (f)
				kafka_read_tags(&rr);
		}
		if (f)
			kafka_read_tags(&rr);
		char topic[250];
		const char *msg = NULL;
		int16_t err;
		if (type == RESOURCE_TOPIC) {
			if (!kafka_topic_name_copy(name, topic)) {
				err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				msg = "unknown topic";
			} else if (!kafka_conn_allows(req->c, KACL_DELETE, KACL_TOPIC, topic)) {
				/* retention.ms, retention.bytes and cleanup.policy
				 * delete records: altering needs what deleting does. */
				err = KERR_TOPIC_AUTHORIZATION_FAILED;
				msg = "altering this topic's configs needs the delete ACL";
			} else {
				err = topic_config_alter(req, topic, configs_at, nc, incremental,
							 validate_only, &msg);
			}
		} else if (type == RESOURCE_BROKER) {
			err = KERR_INVALID_REQUEST;
			msg = "broker configs are read-only";
		} else {
			err = KERR_INVALID_REQUEST;
			msg = "unsupported resource type";
		}
		kafka_write_i16(w, err);
		kafka_write_string(w, f, err ? msg : NULL);
		kafka_write_i8(w, type);
		kafka_write_str(w, f, name);
		if (f)
			kafka_write_tags(w);
	}
	if (f)
		kafka_write_tags(w);
	return 0;
}

int kafka_handle_alter_configs(struct kafka_request *req)
{
	return alter_configs(req, false);
}

int kafka_handle_incremental_alter_configs(struct kafka_request *req)
{
	return alter_configs(req, true);
}
