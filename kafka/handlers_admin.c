/* handlers_admin.c - cluster-level admin requests: DescribeCluster.
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
