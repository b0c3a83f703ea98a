/* kafka-private.h - what the listener's files share: the listener and
 * connection structs, the request context, the request table, the group
 * coordinator and producer-state entry points, and Kafka's error codes.
 */
#ifndef CHRONIK_KAFKA_PRIVATE_H
#define CHRONIK_KAFKA_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"
#include "engine.h"
#include "listener.h"
#include "users.h"

/* Kafka's error codes used here (org.apache.kafka.common.protocol.Errors). */
enum kafka_error {
	KERR_UNKNOWN_SERVER_ERROR = -1,
	KERR_NONE = 0,
	KERR_OFFSET_OUT_OF_RANGE = 1,
	KERR_CORRUPT_MESSAGE = 2,
	KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
	KERR_INVALID_FETCH_SIZE = 4,
	KERR_REQUEST_TIMED_OUT = 7,
	KERR_OFFSET_METADATA_TOO_LARGE = 12,
	KERR_COORDINATOR_NOT_AVAILABLE = 15,
	KERR_NOT_COORDINATOR = 16,
	KERR_INVALID_TOPIC_EXCEPTION = 17,
	KERR_RECORD_LIST_TOO_LARGE = 18,
	KERR_INVALID_REQUIRED_ACKS = 21,
	KERR_ILLEGAL_GENERATION = 22,
	KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
	KERR_INVALID_GROUP_ID = 24,
	KERR_UNKNOWN_MEMBER_ID = 25,
	KERR_INVALID_SESSION_TIMEOUT = 26,
	KERR_REBALANCE_IN_PROGRESS = 27,
	KERR_UNSUPPORTED_VERSION = 35,
	KERR_TOPIC_ALREADY_EXISTS = 36,
	KERR_INVALID_PARTITIONS = 37,
	KERR_TOPIC_AUTHORIZATION_FAILED = 29,
	KERR_GROUP_AUTHORIZATION_FAILED = 30,
	KERR_UNSUPPORTED_SASL_MECHANISM = 33,
	KERR_ILLEGAL_SASL_STATE = 34,
	KERR_INVALID_REPLICATION_FACTOR = 38,
	KERR_INVALID_CONFIG = 40,
	KERR_INVALID_REQUEST = 42,
	KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
	KERR_POLICY_VIOLATION = 44,
	KERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
	KERR_INVALID_PRODUCER_EPOCH = 47,
	KERR_KAFKA_STORAGE_ERROR = 56,
	KERR_SASL_AUTHENTICATION_FAILED = 58,
	KERR_NON_EMPTY_GROUP = 68,
	KERR_GROUP_ID_NOT_FOUND = 69,
	KERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
	KERR_GROUP_SUBSCRIBED_TO_TOPIC = 86,
	KERR_INVALID_RECORD = 87,
	KERR_UNKNOWN_TOPIC_ID = 100,
	KERR_MISMATCHED_ENDPOINT_TYPE = 114,
	KERR_UNSUPPORTED_ENDPOINT_TYPE = 115,
};

/* Kafka error code for a chronik error (0 -> 0). The one translation table. */
int16_t kafka_error_from(int err);

enum kafka_api_key {
	KAPI_PRODUCE = 0,
	KAPI_FETCH = 1,
	KAPI_LIST_OFFSETS = 2,
	KAPI_METADATA = 3,
	KAPI_OFFSET_COMMIT = 8,
	KAPI_OFFSET_FETCH = 9,
	KAPI_FIND_COORDINATOR = 10,
	KAPI_JOIN_GROUP = 11,
	KAPI_HEARTBEAT = 12,
	KAPI_LEAVE_GROUP = 13,
	KAPI_SYNC_GROUP = 14,
	KAPI_DESCRIBE_GROUPS = 15,
	KAPI_LIST_GROUPS = 16,
	KAPI_SASL_HANDSHAKE = 17,
	KAPI_API_VERSIONS = 18,
	KAPI_CREATE_TOPICS = 19,
	KAPI_DELETE_TOPICS = 20,
	KAPI_DELETE_RECORDS = 21,
	KAPI_INIT_PRODUCER_ID = 22,
	KAPI_DESCRIBE_CONFIGS = 32,
	KAPI_SASL_AUTHENTICATE = 36,
	KAPI_ALTER_CONFIGS = 33,
	KAPI_CREATE_PARTITIONS = 37,
	KAPI_DELETE_GROUPS = 42,
	KAPI_INCREMENTAL_ALTER_CONFIGS = 44,
	KAPI_OFFSET_DELETE = 47,
	KAPI_DESCRIBE_CLUSTER = 60,
};

struct kafka_groups; /* handlers_group.c */
struct kafka_sasl; /* sasl.c */
struct kafka_tls; /* tls.c */
struct kafka_producers; /* handlers_produce.c */

struct kafka_conn {
	struct kafka_listener *l;
	int fd;
	pthread_t thread;
	atomic_bool done; /* set by the connection thread as it exits */
	char host[64]; /* our address as the client reached it */
	int32_t port;
	char peer[64]; /* the client's address, for logs and member ids */
	int64_t accepted_ms; /* kafka_now_ms() at accept; set before the thread starts */
	/* kafka_now_ms() since when the connection waits for the first byte of
	 * a request, 0 while one is arriving or being served. Written by the
	 * connection thread, read by the accept thread. */
	atomic_llong idle_since_ms;
	atomic_bool served; /* at least one request answered */
	atomic_bool serving; /* a request is being served (never evicted then) */
	atomic_bool evicted; /* shut down by the accept thread to make room */
	struct kafka_conn *next; /* listener's list, under l->lock */
	/* Security (sasl.c, tls.c); connection thread only. */
	bool tls; /* accepted on the TLS listener */
	void *ssl; /* the TLS session (SSL *), NULL on plaintext */
	struct kafka_sasl *sasl; /* from SaslHandshake on */
	const struct kafka_user *user; /* authenticated principal; borrowed from l->users */
	/* Appends of a deferred Produce may sit in the engine's queue with no
	 * group in progress: kick the engine before blocking on the socket
	 * (listener.c, PIPELINING). Connection thread only. */
	bool appends_queued;
};

struct kafka_listener {
	struct engine *e;
	struct kafka_options o;
	int listen_fd;
	uint16_t port;
	pthread_t accept_thread;
	pthread_t timer_thread;
	atomic_bool stopping;

	int64_t last_warn_ms; /* accept thread only: rate limit of its warnings */
	pthread_mutex_t lock; /* guards conns, nconns */
	struct kafka_conn *conns;
	int nconns;
	int max_conns; /* set at start, then read-only (kafka_options.max_connections) */

	struct kafka_groups *groups;
	struct kafka_producers *producers;

	/* Security: users (NULL = SASL off), the TLS listener (NULL = none). */
	struct kafka_users *users;
	struct kafka_tls *tls;
	int tls_fd; /* the TLS listener's socket, -1 without one */
	char tls_host[256]; /* kafka.tls.listen split by kafka_security_setup */
	uint16_t tls_port;
};

/* The most connections ever served at once (kafka_options.max_connections),
 * and the file descriptors kept free of them for the engine's WAL and
 * segment files, the FUSE session and the log. Each connection holds one
 * descriptor (and a thread). */
#define KAFKA_MAX_CONNS 4096
#define KAFKA_FD_RESERVE 256
/* Longest single blocking wait inside a handler, so stop() is prompt. */
#define KAFKA_WAIT_SLICE_MS 100

/* One request being served. The dispatcher has written the response header
 * (size placeholder, correlation id) into w; the handler appends the body. */
struct kafka_request {
	struct kafka_listener *l;
	struct kafka_conn *c;
	int16_t api_key;
	int16_t api_version;
	int32_t correlation_id;
	struct kafka_str client_id;
	bool flexible; /* the body uses the compact encodings */
	bool no_response; /* set by a handler (Produce with acks=0) */
	bool close_after; /* send the response, then close (failed SASL) */
	/* Set by the connection: a Produce may leave its response for later.
	 * The handler then sets deferred, and the connection calls
	 * kafka_produce_finish, in request order, with the request's bytes
	 * still in place. */
	bool defer;
	struct kafka_produce *deferred;
	struct kafka_reader *r;
	struct kafka_writer *w;
};

/* A handler returns 0 (response body written; send it unless no_response)
 * or -1 (malformed request: close the connection). */
typedef int (*kafka_handler_fn)(struct kafka_request *req);

struct kafka_api {
	int16_t key;
	int16_t min_version, max_version;
	int16_t first_flexible; /* first flexible version, or -1 */
	const char *name;
	kafka_handler_fn handler;
};

/* The request table, the single source of truth for ApiVersions. */
extern const struct kafka_api kafka_apis[];
extern const size_t kafka_apis_count;
const struct kafka_api *kafka_api_find(int16_t key);
/* Write an ApiVersions body (v0 layout when the version is unsupported). */
void kafka_api_versions_write(struct kafka_writer *w, int16_t version, int16_t error_code);

/* Handlers (handlers_*.c). */
int kafka_handle_api_versions(struct kafka_request *req);
int kafka_handle_metadata(struct kafka_request *req);
int kafka_handle_create_topics(struct kafka_request *req);
int kafka_handle_delete_topics(struct kafka_request *req);
int kafka_handle_create_partitions(struct kafka_request *req);
int kafka_handle_describe_configs(struct kafka_request *req);
int kafka_handle_alter_configs(struct kafka_request *req);
int kafka_handle_incremental_alter_configs(struct kafka_request *req);
int kafka_handle_find_coordinator(struct kafka_request *req);
int kafka_handle_produce(struct kafka_request *req);
int kafka_handle_init_producer_id(struct kafka_request *req);
int kafka_handle_fetch(struct kafka_request *req);
int kafka_handle_list_offsets(struct kafka_request *req);
int kafka_handle_join_group(struct kafka_request *req);
int kafka_handle_sync_group(struct kafka_request *req);
int kafka_handle_heartbeat(struct kafka_request *req);
int kafka_handle_leave_group(struct kafka_request *req);
int kafka_handle_offset_commit(struct kafka_request *req);
int kafka_handle_offset_fetch(struct kafka_request *req);
int kafka_handle_describe_groups(struct kafka_request *req);
int kafka_handle_list_groups(struct kafka_request *req);
int kafka_handle_delete_groups(struct kafka_request *req);
int kafka_handle_offset_delete(struct kafka_request *req);
int kafka_handle_describe_cluster(struct kafka_request *req); /* handlers_admin.c */
int kafka_handle_delete_records(struct kafka_request *req); /* handlers_admin.c */
int kafka_handle_sasl_handshake(struct kafka_request *req);
int kafka_handle_sasl_authenticate(struct kafka_request *req);

/* SASL state (sasl.c). */
void kafka_sasl_free(struct kafka_sasl *s);
/* May this connection send api_key now? (Before authentication only
 * ApiVersions and the SASL APIs, when SASL is on.) */
bool kafka_sasl_allowed(const struct kafka_conn *c, int16_t api_key);
/* After a v0 SaslHandshake the next frames are raw SASL tokens. */
bool kafka_sasl_raw_pending(const struct kafka_conn *c);
int kafka_sasl_serve_raw(struct kafka_conn *c, const uint8_t *buf, size_t len,
			 struct kafka_writer *w);
/* ACL check for the connection's user (users.h: KACL_*). */
bool kafka_conn_allows(const struct kafka_conn *c, int op, enum kafka_acl_type type,
		       const char *name);
/* The same for a consumer group named by a request field. */
bool kafka_conn_allows_group(const struct kafka_conn *c, int op, struct kafka_str group_id);

/* Security at listener start (security.c): load the users file, set up
 * TLS, refuse a plaintext bind beyond loopback without SASL. 0 or -errno
 * after logging why; on failure l->users and l->tls are NULL. */
int kafka_security_setup(struct kafka_listener *l);

/* TLS (tls.c). The listener's context from kafka.tls.cert/key; 0 or
 * -EINVAL after logging why. */
int kafka_tls_new(const char *cert, const char *key, struct kafka_tls **out);
void kafka_tls_free(struct kafka_tls *t);
/* Handshake on c->fd (made non-blocking) by deadline; sets c->ssl. 0 / -1. */
int kafka_tls_conn_accept(struct kafka_tls *t, struct kafka_conn *c, int64_t deadline);
/* As recv_by in listener.c: >= 1 bytes, or -1 (EOF, error, timeout, stop). */
ssize_t kafka_tls_conn_recv(struct kafka_conn *c, void *buf, size_t n, int64_t deadline);
int kafka_tls_conn_send(struct kafka_conn *c, const void *buf, size_t n);
void kafka_tls_conn_close(struct kafka_conn *c);

/* Wait until c->fd has one of events (POLLIN, POLLOUT), by deadline (a
 * kafka_now_ms() value; <= 0: none): 0, or -1 on error, timeout or the
 * listener stopping (listener.c). */
int kafka_conn_poll(struct kafka_conn *c, short events, int64_t deadline);
/* "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" into host (cap bytes; ""
 * when none is given) and *port. 0 or -EINVAL (listener.c). */
int kafka_addr_split(const char *addr, char *host, size_t cap, uint16_t *port);
/* Connection I/O, through TLS when the connection has it (listener.c). */
int kafka_conn_write(struct kafka_conn *c, const void *buf, size_t n);

/* Group coordinator state (handlers_group.c). */
int kafka_groups_new(int max_groups, struct kafka_groups **out);
void kafka_groups_free(struct kafka_groups *g);
/* Called about every 50 ms by the listener's timer thread: completes
 * rebalances whose wait is over, evicts members whose session expired. */
void kafka_groups_tick(struct kafka_listener *l);
/* Wake every waiter (listener stopping). */
void kafka_groups_wake_all(struct kafka_groups *g);

/* A Produce whose appends are started (handlers_produce.c): wait for
 * them, then write the response body into w (the response header is
 * there already), or with w NULL (acks=0, or the connection is closing)
 * just wait for them. Frees pr. The request bytes must stay unchanged
 * until it returns: the engine writes the batches from them. */
struct kafka_produce;
void kafka_produce_finish(struct kafka_produce *pr, struct kafka_writer *w);

/* Idempotent-producer state (handlers_produce.c). */
int kafka_producers_new(const struct kafka_options *o, struct kafka_producers **out);
void kafka_producers_free(struct kafka_producers *p);

/* Serve one request held in buf[0, len), the bytes after its size field:
 * parse the header, dispatch through the request table, write the
 * response to c->fd. 0 = keep the connection, -1 = close it (malformed).
 * The connection thread calls it for every request; the fuzz harness
 * (tests/fuzz/fuzz_kafka.c) calls it directly, on a fake connection. */
int kafka_conn_serve(struct kafka_conn *c, const uint8_t *buf, size_t len, struct kafka_writer *w);

/* 1 when the client has closed or reset its end of the connection (a long
 * wait on its behalf can stop early). */
bool kafka_conn_peer_closed(const struct kafka_conn *c);

/* Monotonic milliseconds. */
int64_t kafka_now_ms(void);
/* Wall-clock milliseconds since the epoch. */
int64_t kafka_wall_ms(void);

/* A topic's Kafka topic id (the 16-byte uuid of Metadata v10+): derived,
 * not stored, from the engine's topic id (engine_partition_topic_id), which
 * the metadata log persists with the topic and never reuses, so a topic
 * keeps its uuid across restarts and a topic deleted and created again
 * under the same name gets a new one, as in Kafka. Layout: bytes 0-11 the
 * constant "chronik" 0x40 0x80 "tid" (never the zero uuid, never Kafka's
 * reserved 0...01), bytes 12-15 the engine's topic id, big-endian. */
void kafka_topic_uuid(uint32_t topic_id, uint8_t out[static 16]);
/* The uuid of the topic name: 0, or the engine's error (unknown topic). */
int kafka_topic_uuid_of(struct engine *e, const char *name, uint8_t out[static 16]);
/* The topic whose uuid is id: its name into name and true, else false. A
 * walk over every topic (linear in the topics). */
bool kafka_topic_name_by_uuid(struct engine *e, const uint8_t id[16], char name[static 250]);

/* A topic config given at creation (CreateTopics): NULL when key is a
 * topic config this broker knows and value (null = the default) is valid
 * for it, else why not (the caller answers 40 INVALID_CONFIG). */
const char *kafka_topic_config_check(struct kafka_str key, struct kafka_str value);

/* Topic names as Kafka allows them (engine_topic_name_valid on a kafka_str).
 * Fills name (>= 250 bytes) on success. */
bool kafka_topic_name_copy(struct kafka_str s, char name[static 250]);

#endif
