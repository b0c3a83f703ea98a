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
	{ KAPI_PRODUCE, 0, 7, -1, "Produce", kafka_handle_produce },
	{ KAPI_FETCH, 4, 11, -1, "Fetch", kafka_handle_fetch },
	{ KAPI_LIST_OFFSETS, 1, 5, -1, "ListOffsets", kafka_handle_list_offsets },
	{ KAPI_METADATA, 0, 4, -1, "Metadata", kafka_handle_metadata },
	{ KAPI_OFFSET_COMMIT, 0, 5, -1, "OffsetCommit", kafka_handle_offset_commit },
	{ KAPI_OFFSET_FETCH, 0, 5, -1, "OffsetFetch", kafka_handle_offset_fetch },
	{ KAPI_FIND_COORDINATOR, 0, 2, -1, "FindCoordinator", kafka_handle_find_coordinator },
	{ KAPI_JOIN_GROUP, 0, 5, -1, "JoinGroup", kafka_handle_join_group },
	{ KAPI_HEARTBEAT, 0, 3, -1, "Heartbeat", kafka_handle_heartbeat },
	{ KAPI_LEAVE_GROUP, 0, 3, -1, "LeaveGroup", kafka_handle_leave_group },
	{ KAPI_SYNC_GROUP, 0, 3, -1, "SyncGroup", kafka_handle_sync_group },
	{ KAPI_DESCRIBE_GROUPS, 0, 4, -1, "DescribeGroups", kafka_handle_describe_groups },
	{ KAPI_LIST_GROUPS, 0, 2, -1, "ListGroups", kafka_handle_list_groups },
	{ KAPI_API_VERSIONS, 0, 3, 3, "ApiVersions", kafka_handle_api_versions },
	{ KAPI_CREATE_TOPICS, 0, 4, -1, "CreateTopics", kafka_handle_create_topics },
	{ KAPI_DELETE_TOPICS, 0, 3, -1, "DeleteTopics", kafka_handle_delete_topics },
	{ KAPI_INIT_PRODUCER_ID, 0, 1, -1, "InitProducerId", kafka_handle_init_producer_id },
	{ KAPI_DESCRIBE_CONFIGS, 0, 2, -1, "DescribeConfigs", kafka_handle_describe_configs },
	{ KAPI_ALTER_CONFIGS, 0, 1, -1, "AlterConfigs", kafka_handle_alter_configs },
	{ KAPI_CREATE_PARTITIONS, 0, 1, -1, "CreatePartitions", kafka_handle_create_partitions },
	{ KAPI_DELETE_GROUPS, 0, 1, -1, "DeleteGroups", kafka_handle_delete_groups },
	{ KAPI_INCREMENTAL_ALTER_CONFIGS, 0, 0, -1, "IncrementalAlterConfigs",
	  kafka_handle_incremental_alter_configs },
	{ KAPI_OFFSET_DELETE, 0, 0, -1, "OffsetDelete", kafka_handle_offset_delete },
	/* sasl.c */
	{ KAPI_SASL_HANDSHAKE, 0, 1, -1, "SaslHandshake", kafka_handle_sasl_handshake },
	{ KAPI_SASL_AUTHENTICATE, 0, 1, -1, "SaslAuthenticate", kafka_handle_sasl_authenticate },
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
	kafka_write_array(req->w, false, 1);
	kafka_write_i32(req->w, NODE_ID);
	kafka_write_string(req->w, false, req->c->host);
	kafka_write_i32(req->w, req->c->port);
	if (v >= 1)
		kafka_write_string(req->w, false, NULL); /* Rack */
}

/* One MetadataResponseTopic for name (which may not exist). */
static void write_topic_metadata(struct kafka_request *req, const char *name,
				 struct kafka_str raw_name, bool create)
{
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	int16_t error = KERR_NONE;
	int32_t parts = 0;

	if (!name) {
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
		error = kafka_error_from(rc);
		if (rc)
			parts = 0;
	}
	kafka_write_i16(w, error);
	kafka_write_str(w, false, raw_name);
	if (v >= 1)
		kafka_write_bool(w, false); /* IsInternal */
	kafka_write_array(w, false, parts);
	for (int32_t i = 0; i < parts; i++) {
		kafka_write_i16(w, KERR_NONE);
		kafka_write_i32(w, i);
		kafka_write_i32(w, NODE_ID); /* LeaderId */
		kafka_write_array(w, false, 1); /* ReplicaNodes */
		kafka_write_i32(w, NODE_ID);
		kafka_write_array(w, false, 1); /* IsrNodes */
		kafka_write_i32(w, NODE_ID);
	}
}

/* MetadataRequest v0-4: Topics [Name] (v0: empty = all; v1+: null = all),
 * AllowAutoTopicCreation bool (v4+).
 * MetadataResponse v0-4: ThrottleTimeMs (v3+), Brokers [NodeId, Host, Port,
 * Rack (v1+)], ClusterId (v2+), ControllerId (v1+), Topics [ErrorCode, Name,
 * IsInternal (v1+), Partitions [ErrorCode, PartitionIndex, LeaderId,
 * ReplicaNodes [int32], IsrNodes [int32]]]. */
int kafka_handle_metadata(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	int32_t n = kafka_read_array(r, false, v >= 1, 2);
	const uint8_t *topics_at = r->p;

	/* Skip the names to reach AllowAutoTopicCreation, then come back. */
	for (int32_t i = 0; i < n; i++)
		(void)kafka_read_string(r, false, false);
	bool allow_create = v >= 4 ? kafka_read_bool(r) : true;
	if (kafka_reader_failed(r))
		return -1;
	allow_create = allow_create && req->l->o.auto_create_topics;

	if (v >= 3)
		kafka_write_i32(w, 0);
	write_broker_list(req, v);
	if (v >= 2)
		kafka_write_string(w, false, CLUSTER_ID);
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
		kafka_write_array(w, false, shown);
		for (size_t i = 0; i < count; i++) {
			struct kafka_str s = { names[i], (int32_t)strlen(names[i]) };
			if (kafka_conn_allows(req->c, KACL_ALL, KACL_TOPIC, names[i]))
				write_topic_metadata(req, names[i], s, false);
		}
		engine_strv_free(names, count);
		return 0;
	}

	struct kafka_reader tr;
	kafka_reader_init(&tr, topics_at, (size_t)(r->end - topics_at));
	kafka_write_array(w, false, n);
	for (int32_t i = 0; i < n; i++) {
		char name[250];
		struct kafka_str s = kafka_read_string(&tr, false, false);
		bool ok = kafka_topic_name_copy(s, name);
		write_topic_metadata(req, ok ? name : NULL, s, allow_create);
	}
	return 0;
}

/* FindCoordinatorRequest v0-2: Key string, KeyType int8 (v1+; 0 group,
 * 1 transaction).
 * FindCoordinatorResponse v0-2: ThrottleTimeMs (v1+), ErrorCode,
 * ErrorMessage nullable (v1+), NodeId, Host, Port. */
int kafka_handle_find_coordinator(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;

	(void)kafka_read_string(r, false, false);
	int8_t key_type = v >= 1 ? kafka_read_i8(r) : 0;
	if (kafka_reader_failed(r))
		return -1;
	bool ok = key_type == 0;
	if (v >= 1)
		kafka_write_i32(w, 0);
	kafka_write_i16(w, ok ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE);
	if (v >= 1)
		kafka_write_string(w, false, ok ? NULL : "transactions are not supported");
	kafka_write_i32(w, ok ? NODE_ID : -1);
	kafka_write_string(w, false, ok ? req->c->host : "");
	kafka_write_i32(w, ok ? req->c->port : -1);
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

/* CreateTopicsRequest v0-4: Topics [Name, NumPartitions int32,
 * ReplicationFactor int16, Assignments [PartitionIndex, BrokerIds [int32]],
 * Configs [Name, Value nullable]], timeoutMs int32, validateOnly bool (v1+).
 * CreateTopicsResponse v0-4: ThrottleTimeMs (v2+), Topics [Name, ErrorCode,
 * ErrorMessage nullable (v1+)].
 * A name that appears more than once in the request gets 42 INVALID_REQUEST
 * on each of its entries and is not created (Kafka checks duplicates before
 * anything else); duplicates are found by sorting the names. */
int kafka_handle_create_topics(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;
	/* smallest topic: name 2 + 4 + 2 + two empty arrays 8 = 16 bytes */
	int32_t n = kafka_read_array(r, false, false, 16);
	struct create_topic *t = NULL;
	int rc = -1;

	if (kafka_reader_failed(r))
		return -1;
	t = calloc((size_t)n + 1, sizeof(*t));
	if (!t)
		return -1;
	for (int32_t i = 0; i < n && !kafka_reader_failed(r); i++) {
		t[i].name = kafka_read_string(r, false, false);
		t[i].num_partitions = kafka_read_i32(r);
		t[i].replication_factor = kafka_read_i16(r);
		t[i].assignments = kafka_read_array(r, false, false, 8);
		for (int32_t a = 0; a < t[i].assignments && !kafka_reader_failed(r); a++) {
			(void)kafka_read_i32(r);
			int32_t nb = kafka_read_array(r, false, false, 4);
			kafka_read_skip(r, (size_t)nb * 4);
		}
		t[i].configs = kafka_read_array(r, false, false, 4);
		t[i].configs_at = r->p;
		for (int32_t c = 0; c < t[i].configs && !kafka_reader_failed(r); c++) {
			(void)kafka_read_string(r, false, false);
			(void)kafka_read_string(r, false, true);
		}
	}
	(void)kafka_read_i32(r); /* timeoutMs */
	bool validate_only = v >= 1 ? kafka_read_bool(r) : false;
	if (kafka_reader_failed(r) || create_topics_mark_dups(t, n) < 0)
		goto out;

	if (v >= 2)
		kafka_write_i32(w, 0);
	kafka_write_array(w, false, n);
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
		} else {
			/* Configs as a JSON object of strings. */
			struct kafka_writer j;
			struct kafka_reader cr;
			kafka_writer_init(&j, 0);
			kafka_reader_init(&cr, t[i].configs_at, (size_t)(r->end - t[i].configs_at));
			kafka_write_raw(&j, "{", 1);
			bool first = true;
			for (int32_t c = 0; c < t[i].configs; c++) {
				struct kafka_str k = kafka_read_string(&cr, false, false);
				struct kafka_str val = kafka_read_string(&cr, false, true);
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
		kafka_write_str(w, false, t[i].name);
		kafka_write_i16(w, err);
		if (v >= 1)
			kafka_write_string(w, false, err ? msg : NULL);
	}
	rc = 0;
out:
	free(t);
	return rc;
}

/* DeleteTopicsRequest v0-3: TopicNames [string], TimeoutMs int32.
 * DeleteTopicsResponse v0-3: ThrottleTimeMs (v1+), Responses [Name,
 * ErrorCode].
 * design.md lists 0-1; 2 and 3 are advertised too because their layouts are
 * v1's byte for byte (DeleteTopicsRequest.json / DeleteTopicsResponse.json:
 * v2 and v3 only change what a broker may answer, v3 adding 41
 * TOPIC_DELETION_DISABLED, which never applies here); v4 is the first
 * flexible one and is not served. */
int kafka_handle_delete_topics(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int32_t n = kafka_read_array(r, false, false, 2);
	const uint8_t *names_at = r->p;

	for (int32_t i = 0; i < n; i++)
		(void)kafka_read_string(r, false, false);
	(void)kafka_read_i32(r);
	if (kafka_reader_failed(r))
		return -1;

	struct kafka_reader nr;
	kafka_reader_init(&nr, names_at, (size_t)(r->end - names_at));
	if (req->api_version >= 1)
		kafka_write_i32(w, 0);
	kafka_write_array(w, false, n);
	for (int32_t i = 0; i < n; i++) {
		char name[250];
		struct kafka_str s = kafka_read_string(&nr, false, false);
		int16_t err;
		if (!kafka_topic_name_copy(s, name))
			err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		else if (!kafka_conn_allows(req->c, KACL_DELETE, KACL_TOPIC, name))
			err = KERR_TOPIC_AUTHORIZATION_FAILED;
		else
			err = kafka_error_from(engine_topic_delete(req->l->e, name));
		kafka_write_str(w, false, s);
		kafka_write_i16(w, err);
	}
	return 0;
}

/* CreatePartitionsRequest v0-1 (v1 = v0): Topics [Name, Count int32,
 * Assignments nullable [BrokerIds [int32]]], TimeoutMs int32, ValidateOnly
 * bool.
 * CreatePartitionsResponse v0-1: ThrottleTimeMs, Results [Name, ErrorCode,
 * ErrorMessage nullable].
 * Count is the new total (engine_topic_partitions_add): one not above the
 * current count gets 37 INVALID_PARTITIONS, an unknown topic 3, a name
 * given twice 42 INVALID_REQUEST, max.partitions 44 POLICY_VIOLATION. The
 * assignments (broker ids) are read and ignored: there is one broker. */
int kafka_handle_create_partitions(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	/* smallest topic: name 2 + count 4 + null assignments 4 */
	int32_t n = kafka_read_array(r, false, false, 10);
	struct create_topic *t = NULL;
	int rc = -1;

	if (kafka_reader_failed(r))
		return -1;
	t = calloc((size_t)n + 1, sizeof(*t));
	if (!t)
		return -1;
	for (int32_t i = 0; i < n && !kafka_reader_failed(r); i++) {
		t[i].name = kafka_read_string(r, false, false);
		t[i].num_partitions = kafka_read_i32(r);
		int32_t na = kafka_read_array(r, false, true, 4);
		for (int32_t a = 0; a < na && !kafka_reader_failed(r); a++) {
			int32_t nb = kafka_read_array(r, false, false, 4);
			kafka_read_skip(r, (size_t)nb * 4);
		}
	}
	(void)kafka_read_i32(r); /* TimeoutMs */
	bool validate_only = kafka_read_bool(r);
	if (kafka_reader_failed(r) || create_topics_mark_dups(t, n) < 0)
		goto out;

	kafka_write_i32(w, 0);
	kafka_write_array(w, false, n);
	for (int32_t i = 0; i < n; i++) {
		char name[250], msg[128];
		int16_t err = KERR_NONE;
		int32_t have = 0, want = t[i].num_partitions;

		msg[0] = 0;
		if (t[i].dup) {
			err = KERR_INVALID_REQUEST;
			snprintf(msg, sizeof(msg), "the request names this topic more than once");
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
		kafka_write_str(w, false, t[i].name);
		kafka_write_i16(w, err);
		kafka_write_string(w, false, err ? msg : NULL);
	}
	rc = 0;
out:
	free(t);
	return rc;
}
