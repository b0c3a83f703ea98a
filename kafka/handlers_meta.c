/* handlers_meta.c - the request table, and the cluster-level requests:
 * ApiVersions, Metadata, FindCoordinator, CreateTopics, DeleteTopics.
 *
 * chronik is a one-broker cluster: node id 1, controller 1, leader and only
 * replica of every partition, at the address the client connected to.
 */
#include "kafka-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_ID 1
#define CLUSTER_ID "chronik"

/* The single source of truth for ApiVersions (see listener.c notes). */
const struct kafka_api kafka_apis[] = {
	{ KAPI_PRODUCE, 0, 9, 9, "Produce", kafka_handle_produce },
	{ KAPI_FETCH, 4, 17, 12, "Fetch", kafka_handle_fetch },
	{ KAPI_LIST_OFFSETS, 1, 7, 6, "ListOffsets", kafka_handle_list_offsets },
	{ KAPI_METADATA, 0, 12, 9, "Metadata", kafka_handle_metadata },
	{ KAPI_OFFSET_COMMIT, 0, 8, 8, "OffsetCommit", kafka_handle_offset_commit },
	{ KAPI_OFFSET_FETCH, 0, 7, 6, "OffsetFetch", kafka_handle_offset_fetch },
	{ KAPI_FIND_COORDINATOR, 0, 4, 3, "FindCoordinator", kafka_handle_find_coordinator },
	{ KAPI_JOIN_GROUP, 0, 9, 6, "JoinGroup", kafka_handle_join_group },
	{ KAPI_HEARTBEAT, 0, 4, 4, "Heartbeat", kafka_handle_heartbeat },
	{ KAPI_LEAVE_GROUP, 0, 5, 4, "LeaveGroup", kafka_handle_leave_group },
	{ KAPI_SYNC_GROUP, 0, 5, 4, "SyncGroup", kafka_handle_sync_group },
	{ KAPI_DESCRIBE_GROUPS, 0, 5, 5, "DescribeGroups", kafka_handle_describe_groups },
	{ KAPI_LIST_GROUPS, 0, 4, 3, "ListGroups", kafka_handle_list_groups },
	{ KAPI_API_VERSIONS, 0, 3, 3, "ApiVersions", kafka_handle_api_versions },
	{ KAPI_CREATE_TOPICS, 0, 7, 5, "CreateTopics", kafka_handle_create_topics },
	{ KAPI_DELETE_TOPICS, 0, 6, 4, "DeleteTopics", kafka_handle_delete_topics },
	{ KAPI_DELETE_RECORDS, 0, 2, 2, "DeleteRecords", kafka_handle_delete_records },
	{ KAPI_INIT_PRODUCER_ID, 0, 2, 2, "InitProducerId", kafka_handle_init_producer_id },
	{ KAPI_DESCRIBE_CONFIGS, 0, 4, 4, "DescribeConfigs", kafka_handle_describe_configs },
	{ KAPI_ALTER_CONFIGS, 0, 2, 2, "AlterConfigs", kafka_handle_alter_configs },
	{ KAPI_CREATE_PARTITIONS, 0, 3, 2, "CreatePartitions", kafka_handle_create_partitions },
	{ KAPI_DELETE_GROUPS, 0, 2, 2, "DeleteGroups", kafka_handle_delete_groups },
	{ KAPI_INCREMENTAL_ALTER_CONFIGS, 0, 1, 1, "IncrementalAlterConfigs",
	  kafka_handle_incremental_alter_configs },
	{ KAPI_OFFSET_DELETE, 0, 0, -1, "OffsetDelete", kafka_handle_offset_delete },
	{ KAPI_DESCRIBE_CLUSTER, 0, 1, 0, "DescribeCluster", kafka_handle_describe_cluster },
	/* sasl.c */
	{ KAPI_SASL_HANDSHAKE, 0, 1, -1, "SaslHandshake", kafka_handle_sasl_handshake },
	{ KAPI_SASL_AUTHENTICATE, 0, 2, 2, "SaslAuthenticate", kafka_handle_sasl_authenticate },
};
const size_t kafka_apis_count = sizeof(kafka_apis) / sizeof(kafka_apis[0]);

const struct kafka_api *kafka_api_find(int16_t key)
{
	for (size_t i = 0; i < kafka_apis_count; i++)
		if (kafka_apis[i].key == key)
			return &kafka_apis[i];
	return NULL;
}

/* ApiVersionsResponse: ErrorCode int16, ApiKeys [ApiKey, MinVersion,
 * MaxVersion], ThrottleTimeMs int32 (v1+); v3 is flexible (compact array,
 * tagged fields after each entry and at the end). */
void kafka_api_versions_write(struct kafka_writer *w, int16_t version, int16_t error_code)
{
	bool flex = version >= 3;
	kafka_write_i16(w, error_code);
	kafka_write_array(w, flex, (int32_t)kafka_apis_count);
	for (size_t i = 0; i < kafka_apis_count; i++) {
		kafka_write_i16(w, kafka_apis[i].key);
		kafka_write_i16(w, kafka_apis[i].min_version);
		kafka_write_i16(w, kafka_apis[i].max_version);
		if (flex)
			kafka_write_tags(w);
	}
	if (version >= 1)
		kafka_write_i32(w, 0);
	if (flex)
		kafka_write_tags(w);
}

int kafka_handle_api_versions(struct kafka_request *req)
{
	if (req->api_version >= 3) {
		(void)kafka_read_string(req->r, true, false); /* ClientSoftwareName */
		(void)kafka_read_string(req->r, true, false); /* ClientSoftwareVersion */
		kafka_read_tags(req->r);
	}
	if (kafka_reader_failed(req->r))
		return -1;
	kafka_api_versions_write(req->w, req->api_version, KERR_NONE);
	return 0;
}

static void write_broker_list(struct kafka_request *req, int16_t v)
{
	bool f = req->flexible;
	kafka_write_array(req->w, f, 1);
	kafka_write_i32(req->w, NODE_ID);
	kafka_write_string(req->w, f, req->c->host);
	kafka_write_i32(req->w, req->c->port);
	if (v >= 1)
		kafka_write_string(req->w, f, NULL); /* Rack */
	if (f)
		kafka_write_tags(req->w);
}

void kafka_topic_uuid(uint32_t topic_id, uint8_t out[static 16])
{
	static const char prefix[] = "chronik\x40\x80tid"; /* kafka-private.h */
	_Static_assert(sizeof(prefix) == 12 + 1, "a 12-byte prefix");
	memcpy(out, prefix, 12);
	kafka_put_be32(out + 12, topic_id);
}

int kafka_topic_uuid_of(struct engine *e, const char *name, uint8_t out[static 16])
{
	struct partition *p;
	int rc = engine_partition_get(e, name, 0, &p);
	if (rc)
		return rc;
	kafka_topic_uuid(engine_partition_topic_id(p), out);
	engine_partition_unref(p);
	return 0;
}

bool kafka_topic_name_by_uuid(struct engine *e, const uint8_t id[16], char name[static 250])
{
	char **names = NULL;
	size_t count = 0;
	bool found = false;
	if (engine_topic_list(e, &names, &count))
		return false;
	for (size_t i = 0; i < count && !found; i++) {
		uint8_t u[16];
		if (kafka_topic_uuid_of(e, names[i], u) == 0 && memcmp(u, id, 16) == 0) {
			snprintf(name, 250, "%s", names[i]);
			found = true;
		}
	}
	engine_strv_free(names, count);
	return found;
}

static const uint8_t zero_uuid[16];

/* One MetadataResponseTopic for name (which may not exist). With id (v10+,
 * a topic asked for by id), an unknown id is answered 100 UNKNOWN_TOPIC_ID
 * with a null name. */
static void write_topic_metadata(struct kafka_request *req, const char *name,
				 struct kafka_str raw_name, bool create, const uint8_t *id)
{
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	bool f = req->flexible;
	int16_t error = KERR_NONE;
	int32_t parts = 0;
	uint8_t uuid[16];

	memset(uuid, 0, sizeof(uuid));
	if (id && !name) {
		error = KERR_UNKNOWN_TOPIC_ID;
		memcpy(uuid, id, 16);
	} else if (!name) {
		error = KERR_INVALID_TOPIC_EXCEPTION;
	} else if (!kafka_conn_allows(req->c, KACL_ALL, KACL_TOPIC, name)) {
		error = KERR_TOPIC_AUTHORIZATION_FAILED; /* no operation on it at all */
	} else {
		int rc = engine_topic_partitions(req->l->e, name, &parts);
		if (rc == CHRONIK_ENOTOPIC && create &&
		    kafka_conn_allows(req->c, KACL_CREATE, KACL_TOPIC, name)) {
			rc = engine_topic_create(req->l->e, name, 0, NULL);
			if (rc == 0 || rc == CHRONIK_ETOPICEXISTS)
				rc = engine_topic_partitions(req->l->e, name, &parts);
		}
		if (rc == 0 && v >= 10 && kafka_topic_uuid_of(req->l->e, name, uuid) != 0)
			memset(uuid, 0, sizeof(uuid));
		error = kafka_error_from(rc);
		if (rc)
			parts = 0;
	}
	kafka_write_i16(w, error);
	if (id && !name)
		kafka_write_string(w, f, v >= 12 ? NULL : ""); /* nullable from v12 */
	else
		kafka_write_str(w, f, raw_name);
	if (v >= 10)
		kafka_write_raw(w, uuid, 16); /* TopicId */
	if (v >= 1)
		kafka_write_bool(w, false); /* IsInternal */
	kafka_write_array(w, f, parts);
	for (int32_t i = 0; i < parts; i++) {
		kafka_write_i16(w, KERR_NONE);
		kafka_write_i32(w, i);
		kafka_write_i32(w, NODE_ID); /* LeaderId */
		if (v >= 7)
			kafka_write_i32(w, 0); /* LeaderEpoch */
		kafka_write_array(w, f, 1); /* ReplicaNodes */
		kafka_write_i32(w, NODE_ID);
		kafka_write_array(w, f, 1); /* IsrNodes */
		kafka_write_i32(w, NODE_ID);
		if (v >= 5)
			kafka_write_array(w, f, 0); /* OfflineReplicas */
		if (f)
			kafka_write_tags(w);
	}
	if (v >= 8)
		kafka_write_i32(w, INT32_MIN); /* TopicAuthorizedOperations: not computed */
	if (f)
		kafka_write_tags(w);
}

/* One MetadataRequestTopic: TopicId (v10+), Name (nullable v10+), tags
 * (flexible). */
static struct kafka_str read_metadata_topic(struct kafka_request *req, struct kafka_reader *r,
					    uint8_t id[16])
{
	int16_t v = req->api_version;
	if (v >= 10) {
		const uint8_t *p = r->p;
		kafka_read_skip(r, 16);
		if (!kafka_reader_failed(r))
			memcpy(id, p, 16);
	}
	struct kafka_str s = kafka_read_string(r, req->flexible, v >= 10);
	if (req->flexible)
		kafka_read_tags(r);
	return s;
}

/* MetadataRequest v0-12: Topics [TopicId uuid (v10+), Name (nullable
 * v10+)] (v0: empty = all; v1+: null = all), AllowAutoTopicCreation bool
 * (v4+), IncludeClusterAuthorizedOperations bool (v8-10),
 * IncludeTopicAuthorizedOperations bool (v8+).
 * MetadataResponse v0-12: ThrottleTimeMs (v3+), Brokers [NodeId, Host, Port,
 * Rack (v1+)], ClusterId (v2+), ControllerId (v1+), Topics [ErrorCode, Name
 * (nullable v12+), TopicId uuid (v10+), IsInternal (v1+), Partitions
 * [ErrorCode, PartitionIndex, LeaderId, LeaderEpoch int32 (v7+),
 * ReplicaNodes [int32], IsrNodes [int32], OfflineReplicas [int32] (v5+)],
 * TopicAuthorizedOperations int32 (v8+)], ClusterAuthorizedOperations int32
 * (v8-10).
 * v9+ is flexible: compact forms, tagged fields closing every struct.
 * Authorized operations are not computed: INT32_MIN, Kafka's "omitted".
 * Topic ids: see kafka_topic_uuid (kafka-private.h). A topic asked for by
 * id alone (null name, v10+) is looked up among the topics; an unknown id
 * gets 100 UNKNOWN_TOPIC_ID. The leader epoch is always 0 (one broker,
 * never a leader change). */
int kafka_handle_metadata(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	bool f = req->flexible;
	int32_t n = kafka_read_array(r, f, v >= 1, f ? 2 : 2);
	const uint8_t *topics_at = r->p;
	uint8_t id[16];

	/* Skip the topics to reach AllowAutoTopicCreation, then come back. */
	for (int32_t i = 0; i < n && !kafka_reader_failed(r); i++)
		(void)read_metadata_topic(req, r, id);
	bool allow_create = v >= 4 ? kafka_read_bool(r) : true;
	if (v >= 8 && v <= 10)
		(void)kafka_read_bool(r); /* IncludeClusterAuthorizedOperations */
	if (v >= 8)
		(void)kafka_read_bool(r); /* IncludeTopicAuthorizedOperations */
	if (kafka_reader_failed(r))
		return -1;
	allow_create = allow_create && req->l->o.auto_create_topics;

	if (v >= 3)
		kafka_write_i32(w, 0);
	write_broker_list(req, v);
	if (v >= 2)
		kafka_write_string(w, f, CLUSTER_ID);
	if (v >= 1)
		kafka_write_i32(w, NODE_ID);

	if (n < 0 || (v == 0 && n == 0)) {
		char **names = NULL;
		size_t count = 0;
		int rc = engine_topic_list(req->l->e, &names, &count);
		if (rc)
			count = 0;
		/* Topics the user may not describe are left out (as Kafka). */
		int32_t shown = 0;
		for (size_t i = 0; i < count; i++)
			shown += kafka_conn_allows(req->c, KACL_ALL, KACL_TOPIC, names[i]);
		kafka_write_array(w, f, shown);
		for (size_t i = 0; i < count; i++) {
			struct kafka_str s = { names[i], (int32_t)strlen(names[i]) };
			if (kafka_conn_allows(req->c, KACL_ALL, KACL_TOPIC, names[i]))
				write_topic_metadata(req, names[i], s, false, NULL);
		}
		engine_strv_free(names, count);
	} else {
		struct kafka_reader tr;
		kafka_reader_init(&tr, topics_at, (size_t)(r->end - topics_at));
		kafka_write_array(w, f, n);
		for (int32_t i = 0; i < n; i++) {
			char name[250];
			memset(id, 0, sizeof(id));
			struct kafka_str s = read_metadata_topic(req, &tr, id);
			bool ok;
			if (s.len < 0) { /* by id (v10+) */
				ok = memcmp(id, zero_uuid, 16) != 0 &&
				     kafka_topic_name_by_uuid(req->l->e, id, name);
				if (ok)
					s = (struct kafka_str){ name, (int32_t)strlen(name) };
				write_topic_metadata(req, ok ? name : NULL, s, false, id);
				continue;
			}
			ok = kafka_topic_name_copy(s, name);
			write_topic_metadata(req, ok ? name : NULL, s, allow_create, NULL);
		}
	}
	if (v >= 8 && v <= 10)
		kafka_write_i32(w, INT32_MIN); /* ClusterAuthorizedOperations */
	if (f)
		kafka_write_tags(w);
	return 0;
}

/* FindCoordinatorRequest v0-4: Key string (v0-3), KeyType int8 (v1+; 0
 * group, 1 transaction), CoordinatorKeys [string] (v4+).
 * FindCoordinatorResponse v0-3: ThrottleTimeMs (v1+), ErrorCode,
 * ErrorMessage nullable (v1+), NodeId, Host, Port; v4: ThrottleTimeMs,
 * Coordinators [Key, NodeId, Host, Port, ErrorCode, ErrorMessage nullable].
 * v3+ is flexible. Transactions have no coordinator here: 15
 * COORDINATOR_NOT_AVAILABLE. */
int kafka_handle_find_coordinator(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	bool f = req->flexible;

	if (v <= 3)
		(void)kafka_read_string(r, f, false);
	int8_t key_type = v >= 1 ? kafka_read_i8(r) : 0;
	int32_t nkeys = 0;
	const uint8_t *keys_at = r->p;
	if (v >= 4) {
		nkeys = kafka_read_array(r, f, false, 1);
		keys_at = r->p;
		for (int32_t i = 0; i < nkeys && !kafka_reader_failed(r); i++)
			(void)kafka_read_string(r, f, false);
	}
	if (kafka_reader_failed(r))
		return -1;
	bool ok = key_type == 0;
	const char *msg = ok ? NULL : "transactions are not supported";
	if (v >= 1)
		kafka_write_i32(w, 0);
	if (v >= 4) {
		struct kafka_reader kr;
		kafka_reader_init(&kr, keys_at, (size_t)(r->end - keys_at));
		kafka_write_array(w, f, nkeys);
		for (int32_t i = 0; i < nkeys; i++) {
			kafka_write_str(w, f, kafka_read_string(&kr, f, false));
			kafka_write_i32(w, ok ? NODE_ID : -1);
			kafka_write_string(w, f, ok ? req->c->host : "");
			kafka_write_i32(w, ok ? req->c->port : -1);
			kafka_write_i16(w, ok ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE);
			kafka_write_string(w, f, msg);
			kafka_write_tags(w);
		}
		kafka_write_tags(w);
		return 0;
	}
	kafka_write_i16(w, ok ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE);
	if (v >= 1)
		kafka_write_string(w, f, msg);
	kafka_write_i32(w, ok ? NODE_ID : -1);
	kafka_write_string(w, f, ok ? req->c->host : "");
	kafka_write_i32(w, ok ? req->c->port : -1);
	if (f)
		kafka_write_tags(w);
	return 0;
}

/* JSON string body of s (quotes excluded), escaped. */
static void json_escape(struct kafka_writer *j, struct kafka_str s)
{
	for (int32_t i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.ptr[i];
		char esc[8];
		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			kafka_write_raw(j, esc, 2);
		} else if (ch < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			kafka_write_raw(j, esc, 6);
		} else {
			kafka_write_raw(j, &ch, 1);
		}
	}
}

struct create_topic {
	struct kafka_str name;
	int32_t num_partitions;
	int16_t replication_factor;
	int32_t assignments;
	const uint8_t *configs_at; /* start of the Configs array in the request */
	int32_t configs;
	bool dup; /* the name appears more than once in the request */
};

static int create_topic_name_cmp(const void *a, const void *b)
{
	const struct create_topic *x = *(const struct create_topic *const *)a;
	const struct create_topic *y = *(const struct create_topic *const *)b;
	int32_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
	int c = n > 0 ? memcmp(x->name.ptr, y->name.ptr, (size_t)n) : 0;
	return c ? c : (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

/* Set dup on every entry whose name another entry has too. */
static int create_topics_mark_dups(struct create_topic *t, int32_t n)
{
	struct create_topic **sorted = calloc((size_t)n + 1, sizeof(*sorted));
	if (!sorted)
		return -1;
	for (int32_t i = 0; i < n; i++)
		sorted[i] = &t[i];
	qsort(sorted, (size_t)n, sizeof(*sorted), create_topic_name_cmp);
	for (int32_t i = 1; i < n; i++)
		if (create_topic_name_cmp(&sorted[i - 1], &sorted[i]) == 0)
			sorted[i - 1]->dup = sorted[i]->dup = true;
	free(sorted);
	return 0;
}

/* The first config of topic t that this broker does not know or whose
 * value it refuses: why (the topic gets 40 INVALID_CONFIG), else NULL. */
static const char *create_topic_configs_check(const struct create_topic *t,
					      const struct kafka_reader *r, bool f)
{
	struct kafka_reader cr;
	kafka_reader_init(&cr, t->configs_at, (size_t)(r->end - t->configs_at));
	for (int32_t c = 0; c < t->configs; c++) {
		struct kafka_str k = kafka_read_string(&cr, f, false);
		struct kafka_str val = kafka_read_string(&cr, f, true);
		if (f)
			kafka_read_tags(&cr);
		const char *why = kafka_topic_config_check(k, val);
		if (why)
			return why;
	}
	return NULL;
}

/* CreateTopicsRequest v0-7: Topics [Name, NumPartitions int32,
 * ReplicationFactor int16, Assignments [PartitionIndex, BrokerIds [int32]],
 * Configs [Name, Value nullable]], timeoutMs int32, validateOnly bool (v1+).
 * CreateTopicsResponse v0-7: ThrottleTimeMs (v2+), Topics [Name, TopicId
 * uuid (v7+), ErrorCode, ErrorMessage nullable (v1+), NumPartitions int32
 * (v5+), ReplicationFactor int16 (v5+), Configs nullable (v5+) [Name,
 * Value, ReadOnly, ConfigSource, IsSensitive]]. v5+ is flexible.
 * The response's Configs is an empty list (DescribeConfigs lists them);
 * its tagged TopicConfigErrorCode is never written. On error NumPartitions
 * and ReplicationFactor are -1, TopicId the zero uuid, as Kafka answers.
 * A config key this broker does not know, or a value it refuses
 * (kafka_topic_config_check, the table AlterConfigs uses), gets 40
 * INVALID_CONFIG and the topic is not created.
 * A name that appears more than once in the request gets 42 INVALID_REQUEST
 * on each of its entries and is not created (Kafka checks duplicates before
 * anything else); duplicates are found by sorting the names. */
int kafka_handle_create_topics(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	bool f = req->flexible;
	/* smallest topic: name 2 + 4 + 2 + two empty arrays 8 = 16 bytes
	 * (flexible: 1 + 4 + 2 + 1 + 1 + tags 1 = 10) */
	int32_t n = kafka_read_array(r, f, false, f ? 10 : 16);
	struct create_topic *t = NULL;
	int rc = -1;

	if (kafka_reader_failed(r))
		return -1;
	t = calloc((size_t)n + 1, sizeof(*t));
	if (!t)
		return -1;
	for (int32_t i = 0; i < n && !kafka_reader_failed(r); i++) {
		t[i].name = kafka_read_string(r, f, false);
		t[i].num_partitions = kafka_read_i32(r);
		t[i].replication_factor = kafka_read_i16(r);
		t[i].assignments = kafka_read_array(r, f, false, f ? 6 : 8);
		for (int32_t a = 0; a < t[i].assignments && !kafka_reader_failed(r); a++) {
			(void)kafka_read_i32(r);
			int32_t nb = kafka_read_array(r, f, false, 4);
			kafka_read_skip(r, (size_t)nb * 4);
			if (f)
				kafka_read_tags(r);
		}
		t[i].configs = kafka_read_array(r, f, false, f ? 3 : 4);
		t[i].configs_at = r->p;
		for (int32_t c = 0; c < t[i].configs && !kafka_reader_failed(r); c++) {
			(void)kafka_read_string(r, f, false);
			(void)kafka_read_string(r, f, true);
			if (f)
				kafka_read_tags(r);
		}
		if (f)
			kafka_read_tags(r);
	}
	(void)kafka_read_i32(r); /* timeoutMs */
	bool validate_only = v >= 1 ? kafka_read_bool(r) : false;
	if (kafka_reader_failed(r) || create_topics_mark_dups(t, n) < 0)
		goto out;

	if (v >= 2)
		kafka_write_i32(w, 0);
	kafka_write_array(w, f, n);
	for (int32_t i = 0; i < n; i++) {
		char name[250];
		const char *msg = NULL;
		int16_t err = KERR_NONE;
		int32_t parts = t[i].num_partitions;
		if (t[i].assignments > 0)
			parts = t[i].assignments;

		if (t[i].dup) {
			/* As Kafka: every entry of a name given twice is
			 * refused, and nothing is created for it. */
			err = KERR_INVALID_REQUEST;
			msg = "the request names this topic more than once";
		} else if (!kafka_topic_name_copy(t[i].name, name)) {
			err = KERR_INVALID_TOPIC_EXCEPTION;
			msg = "invalid topic name";
		} else if (!kafka_conn_allows(req->c, KACL_CREATE, KACL_TOPIC, name)) {
			err = KERR_TOPIC_AUTHORIZATION_FAILED;
			msg = "not authorized to create this topic";
		} else if (parts == 0 || parts < -1) {
			err = KERR_INVALID_PARTITIONS;
			msg = "number of partitions must be at least 1";
		} else if (t[i].replication_factor != -1 && t[i].replication_factor != 1) {
			err = KERR_INVALID_REPLICATION_FACTOR;
			msg = "replication factor must be 1 (one broker)";
		} else if ((msg = create_topic_configs_check(&t[i], r, f)) != NULL) {
			err = KERR_INVALID_CONFIG;
		} else {
			/* Configs as a JSON object of strings. */
			struct kafka_writer j;
			struct kafka_reader cr;
			kafka_writer_init(&j, 0);
			kafka_reader_init(&cr, t[i].configs_at, (size_t)(r->end - t[i].configs_at));
			kafka_write_raw(&j, "{", 1);
			bool first = true;
			for (int32_t c = 0; c < t[i].configs; c++) {
				struct kafka_str k = kafka_read_string(&cr, f, false);
				struct kafka_str val = kafka_read_string(&cr, f, true);
				if (f)
					kafka_read_tags(&cr);
				if (val.len < 0)
					continue;
				if (!first)
					kafka_write_raw(&j, ",", 1);
				first = false;
				kafka_write_raw(&j, "\"", 1);
				json_escape(&j, k);
				kafka_write_raw(&j, "\":\"", 3);
				json_escape(&j, val);
				kafka_write_raw(&j, "\"", 1);
			}
			kafka_write_raw(&j, "}", 2); /* with the NUL */
			if (j.failed) {
				err = KERR_UNKNOWN_SERVER_ERROR;
			} else if (validate_only) {
				int32_t have;
				if (engine_topic_partitions(req->l->e, name, &have) == 0)
					err = KERR_TOPIC_ALREADY_EXISTS;
			} else {
				int erc = engine_topic_create(req->l->e, name, parts,
							      first ? NULL : (char *)j.buf);
				err = kafka_error_from(erc);
				if (erc)
					msg = chronik_strerror(erc);
			}
			kafka_writer_fini(&j);
		}
		kafka_write_str(w, f, t[i].name);
		if (v >= 7) {
			uint8_t uuid[16] = { 0 };
			if (err || validate_only || kafka_topic_uuid_of(req->l->e, name, uuid) != 0)
				memset(uuid, 0, sizeof(uuid));
			kafka_write_raw(w, uuid, 16); /* TopicId */
		}
		kafka_write_i16(w, err);
		if (v >= 1)
			kafka_write_string(w, f, err ? msg : NULL);
		if (v >= 5) {
			int32_t have = -1;
			if (!err && !validate_only &&
			    engine_topic_partitions(req->l->e, name, &have) != 0)
				have = -1;
			if (!err && validate_only)
				have = parts > 0 ? parts : 1;
			kafka_write_i32(w, err ? -1 : have); /* NumPartitions */
			kafka_write_i16(w, err ? -1 : 1); /* ReplicationFactor */
			kafka_write_array(w, f, 0); /* Configs: not listed (DescribeConfigs) */
		}
		if (f)
			kafka_write_tags(w);
	}
	if (f)
		kafka_write_tags(w);
	rc = 0;
out:
	free(t);
	return rc;
}

/* DeleteTopicsRequest v0-6: TopicNames [string] (v0-5), Topics [Name
 * nullable, TopicId uuid] (v6+), TimeoutMs int32.
 * DeleteTopicsResponse v0-6: ThrottleTimeMs (v1+), Responses [Name
 * (nullable v6+), TopicId uuid (v6+), ErrorCode, ErrorMessage nullable
 * (v5+)]. v4+ is flexible.
 * v6 names a topic by name or by id (a null name: by id; an unknown id
 * gets 100 UNKNOWN_TOPIC_ID). v3 adds 41 TOPIC_DELETION_DISABLED, which
 * never applies here. */
int kafka_handle_delete_topics(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	bool f = req->flexible;
	int32_t n = kafka_read_array(r, f, false, v >= 6 ? 18 : f ? 1 : 2);
	const uint8_t *names_at = r->p;

	for (int32_t i = 0; i < n && !kafka_reader_failed(r); i++) {
		(void)kafka_read_string(r, f, v >= 6);
		if (v >= 6) {
			kafka_read_skip(r, 16);
			kafka_read_tags(r);
		}
	}
	(void)kafka_read_i32(r);
	if (kafka_reader_failed(r))
		return -1;

	struct kafka_reader nr;
	kafka_reader_init(&nr, names_at, (size_t)(r->end - names_at));
	if (v >= 1)
		kafka_write_i32(w, 0);
	kafka_write_array(w, f, n);
	for (int32_t i = 0; i < n; i++) {
		char name[250];
		uint8_t id[16] = { 0 };
		struct kafka_str s = kafka_read_string(&nr, f, v >= 6);
		if (v >= 6) {
			memcpy(id, nr.p, 16);
			kafka_read_skip(&nr, 16);
			kafka_read_tags(&nr);
		}
		int16_t err;
		bool named;
		if (s.len < 0) { /* by id */
			named = memcmp(id, zero_uuid, 16) != 0 &&
				kafka_topic_name_by_uuid(req->l->e, id, name);
			err = named ? KERR_NONE : KERR_UNKNOWN_TOPIC_ID;
		} else {
			named = kafka_topic_name_copy(s, name);
			err = named ? KERR_NONE : KERR_UNKNOWN_TOPIC_OR_PARTITION;
		}
		if (named) {
			if (v >= 6 && s.len >= 0 && kafka_topic_uuid_of(req->l->e, name, id) != 0)
				memset(id, 0, sizeof(id));
			if (!kafka_conn_allows(req->c, KACL_DELETE, KACL_TOPIC, name))
				err = KERR_TOPIC_AUTHORIZATION_FAILED;
			else
				err = kafka_error_from(engine_topic_delete(req->l->e, name));
		}
		if (s.len < 0 && named)
			kafka_write_string(w, f, name);
		else
			kafka_write_str(w, f, s);
		if (v >= 6)
			kafka_write_raw(w, id, 16);
		kafka_write_i16(w, err);
		if (v >= 5)
			kafka_write_string(w, f, err ? "topic not deleted" : NULL);
		if (f)
			kafka_write_tags(w);
	}
	if (f)
		kafka_write_tags(w);
	return 0;
}

/* CreatePartitionsRequest v0-3 (v1 = v0, v3 = v2): Topics [Name, Count
 * int32, Assignments nullable [BrokerIds [int32]]], TimeoutMs int32,
 * ValidateOnly bool. v2+ is flexible.
 * CreatePartitionsResponse v0-3: ThrottleTimeMs, Results [Name, ErrorCode,
 * ErrorMessage nullable].
 * Count is the new total (engine_topic_partitions_add): one not above the
 * current count gets 37 INVALID_PARTITIONS, an unknown topic 3, a name
 * given twice 42 INVALID_REQUEST, max.partitions 44 POLICY_VIOLATION. The
 * assignments (broker ids) are read and ignored: there is one broker. */
int kafka_handle_create_partitions(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	bool f = req->flexible;
	/* smallest topic: name 2 + count 4 + null assignments 4 (flexible:
	 * 1 + 4 + 1 + tags 1) */
	int32_t n = kafka_read_array(r, f, false, f ? 7 : 10);
	struct create_topic *t = NULL;
	int rc = -1;

	if (kafka_reader_failed(r))
		return -1;
	t = calloc((size_t)n + 1, sizeof(*t));
	if (!t)
		return -1;
	for (int32_t i = 0; i < n && !kafka_reader_failed(r); i++) {
		t[i].name = kafka_read_string(r, f, false);
		t[i].num_partitions = kafka_read_i32(r);
		int32_t na = kafka_read_array(r, f, true, f ? 2 : 4);
		for (int32_t a = 0; a < na && !kafka_reader_failed(r); a++) {
			int32_t nb = kafka_read_array(r, f, false, 4);
			kafka_read_skip(r, (size_t)nb * 4);
			if (f)
				kafka_read_tags(r);
		}
		if (f)
			kafka_read_tags(r);
	}
	(void)kafka_read_i32(r); /* TimeoutMs */
	bool validate_only = kafka_read_bool(r);
	if (kafka_reader_failed(r) || create_topics_mark_dups(t, n) < 0)
		goto out;

	kafka_write_i32(w, 0);
	kafka_write_array(w, f, n);
	for (int32_t i = 0; i < n; i++) {
		char name[250], msg[128];
		int16_t err = KERR_NONE;
		int32_t have = 0, want = t[i].num_partitions;

		msg[0] = 0;
		if (t[i].dup) {
			err = KERR_INVALID_REQUEST;
			snprintf(msg, sizeof(msg), "the request names this topic more than once");
		} else if (kafka_topic_name_copy(t[i].name, name) &&
			   !kafka_conn_allows(req->c, KACL_CREATE, KACL_TOPIC, name)) {
			err = KERR_TOPIC_AUTHORIZATION_FAILED;
			snprintf(msg, sizeof(msg), "adding partitions needs the create ACL");
		} else if (!kafka_topic_name_copy(t[i].name, name) ||
			   engine_topic_partitions(req->l->e, name, &have) != 0) {
			err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			snprintf(msg, sizeof(msg), "unknown topic");
		} else if (want <= have) {
			err = KERR_INVALID_PARTITIONS;
			snprintf(msg, sizeof(msg),
				 "topic has %d partitions; the new count must be higher, not %d",
				 have, want);
		} else if (!validate_only) {
			int erc = engine_topic_partitions_add(req->l->e, name, want);
			err = erc == -EINVAL ? KERR_INVALID_PARTITIONS : kafka_error_from(erc);
			if (erc)
				snprintf(msg, sizeof(msg), "%s", chronik_strerror(erc));
		}
		kafka_write_str(w, f, t[i].name);
		kafka_write_i16(w, err);
		kafka_write_string(w, f, err ? msg : NULL);
		if (f)
			kafka_write_tags(w);
	}
	if (f)
		kafka_write_tags(w);
	rc = 0;
out:
	free(t);
	return rc;
}
