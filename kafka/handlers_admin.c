/* handlers_admin.c - admin requests on the cluster and on partitions:
 * DescribeCluster, DeleteRecords.
 *
 * DescribeClusterRequest v0-1 (flexible from v0): IncludeClusterAuthorized-
 * Operations bool, EndpointType int8 (v1+; 1 = brokers, 2 = controllers).
 * DescribeClusterResponse v0-1: ThrottleTimeMs int32, ErrorCode int16,
 * ErrorMessage nullable string, EndpointType int8 (v1+), ClusterId string,
 * ControllerId int32, Brokers [BrokerId int32, Host string, Port int32,
 * Rack nullable string], ClusterAuthorizedOperations int32. Every struct
 * and the body end with tagged fields (none written, unknown ones skipped).
 *
 * chronik is one broker, node 1, which is also the controller id Metadata
 * reports, at the address the client connected to (the same answer as
 * Metadata's broker list). Authorized operations are not computed:
 * INT32_MIN, Kafka's "omitted". This listener is a broker endpoint, so
 * EndpointType 2 (controllers) is answered with 114
 * MISMATCHED_ENDPOINT_TYPE, as a Kafka broker does; any other type than 1
 * and 2 gets 115 UNSUPPORTED_ENDPOINT_TYPE.
 */
#include "kafka-private.h"


#define NODE_ID 1
#define CLUSTER_ID "chronik"

int kafka_handle_describe_cluster(struct kafka_request *req)
{
	struct kafka_reader *r = req->r;
	struct kafka_writer *w = req->w;
	int16_t v = req->api_version;

	(void)kafka_read_bool(r); /* IncludeClusterAuthorizedOperations */
	int8_t endpoint_type = v >= 1 ? kafka_read_i8(r) : 1;
	kafka_read_tags(r);
	if (kafka_reader_failed(r))
		return -1;

	int16_t err = KERR_NONE;
	const char *msg = NULL;
	if (endpoint_type == 2) {
		err = KERR_MISMATCHED_ENDPOINT_TYPE;
		msg = "this is a broker endpoint; controllers are not listed here";
	} else if (endpoint_type != 1) {
		err = KERR_UNSUPPORTED_ENDPOINT_TYPE;
		msg = "unknown endpoint type";
	}
	kafka_write_i32(w, 0); /* ThrottleTimeMs */
	kafka_write_i16(w, err);
	kafka_write_string(w, true, msg);
	if (v >= 1)
		kafka_write_i8(w, endpoint_type);
	kafka_write_string(w, true, CLUSTER_ID);
	kafka_write_i32(w, err ? -1 : NODE_ID); /* ControllerId */
	kafka_write_array(w, true, err ? 0 : 1);
	if (!err) {
		kafka_write_i32(w, NODE_ID);
		kafka_write_string(w, true, req->c->host);
		kafka_write_i32(w, req->c->port);
		kafka_write_string(w, true, NULL); /* Rack */
		kafka_write_tags(w);
	}
	kafka_write_i32(w, INT32_MIN); /* ClusterAuthorizedOperations */
	kafka_write_tags(w);
	return 0;
}

/* DeleteRecordsRequest v0-2 (v1 = v0; flexible from v2): Topics [Name
 * string, Partitions [PartitionIndex int32, Offset int64]], TimeoutMs
 * int32.
 * DeleteRecordsResponse v0-2: ThrottleTimeMs int32, Topics [Name string,
 * Partitions [PartitionIndex int32, LowWatermark int64, ErrorCode int16]].
 * In v2 every struct and the body end with tagged fields.
 *
 * Each partition's log start moves to Offset (-1 = the high watermark) as
 * retention moves it (engine_partition_delete_records): durable on
 * return, so TimeoutMs is read and not waited on; LowWatermark is the log
 * start after the request (also when Offset was below it: nothing
 * changes). Errors as Kafka's: 1 OFFSET_OUT_OF_RANGE for an Offset above
 * the high watermark (or below -1), 3 UNKNOWN_TOPIC_OR_PARTITION, 29
 * TOPIC_AUTHORIZATION_FAILED without the delete ACL on the topic (Kafka's
 * DELETE operation); LowWatermark is -1 with an error. The request is
 * read whole before anything is deleted, so a malformed one deletes
 * nothing. */
static int delete_records_topics(struct kafka_request *req, struct kafka_reader *r, bool apply)
{
	struct kafka_writer *w = req->w;
	bool f = req->flexible;
	/* smallest topic: name 2 + partitions 4 (flexible 1 + 1 + tags 1) */
	int32_t nt = kafka_read_array(r, f, false, f ? 3 : 6);

	if (apply)
		kafka_write_array(w, f, nt);
	for (int32_t t = 0; t < nt && !kafka_reader_failed(r); t++) {
		char name[250];
		struct kafka_str s = kafka_read_string(r, f, false);
		bool name_ok = kafka_topic_name_copy(s, name);
		bool allowed = name_ok && kafka_conn_allows(req->c, KACL_DELETE, KACL_TOPIC, name);
		int32_t np = kafka_read_array(r, f, false, f ? 13 : 12);
		if (apply) {
			kafka_write_str(w, f, s);
			kafka_write_array(w, f, np);
		}
		for (int32_t i = 0; i < np && !kafka_reader_failed(r); i++) {
			int32_t index = kafka_read_i32(r);
			int64_t offset = kafka_read_i64(r);
			if (f)
				kafka_read_tags(r);
			if (!apply || kafka_reader_failed(r))
				continue;
			struct partition *p = NULL;
			int64_t low = -1;
			int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			if (name_ok && !allowed) {
				err = KERR_TOPIC_AUTHORIZATION_FAILED;
			} else if (name_ok && engine_partition_get(req->l->e, name, index, &p) == 0) {
				int rc = engine_partition_delete_records(p, offset, &low);
				err = kafka_error_from(rc);
				if (rc)
					low = -1;
				engine_partition_unref(p);
			}
			kafka_write_i32(w, index);
			kafka_write_i64(w, low);
			kafka_write_i16(w, err);
			if (f)
				kafka_write_tags(w);
		}
		if (f) {
			kafka_read_tags(r);
			if (apply)
				kafka_write_tags(w);
		}
	}
	(void)kafka_read_i32(r); /* TimeoutMs */
	if (f)
		kafka_read_tags(r);
	return kafka_reader_failed(r) ? -1 : 0;
}

int kafka_handle_delete_records(struct kafka_request *req)
{
	struct kafka_reader check = *req->r;

	if (delete_records_topics(req, &check, false) < 0)
		return -1;
	kafka_write_i32(req->w, 0); /* ThrottleTimeMs */
	if (delete_records_topics(req, req->r, true) < 0)
		return -1;
	if (req->flexible)
		kafka_write_tags(req->w);
	return 0;
}
