/* fuzz_kafka.c - the Kafka request decoder: every API and version of the
 * listener's request table, through kafka_conn_serve, the entry the
 * connection thread uses for each request.
 *
 * Input: one request as it follows its size field on the wire (api_key,
 * api_version, correlation_id, client_id, the body). The corpus holds
 * requests captured from kcat and librdkafka on the wire, and for every
 * API of the table a request at each of its versions.
 *
 * The listener is real (engine, group coordinator, producer state) but has
 * no socket of its own: the connection's fd is one end of a socketpair
 * whose other end has shut down its writing side, so the connection looks
 * closed by its client. Every wait on a client's behalf (Fetch long poll,
 * JoinGroup and SyncGroup waiting for the group) ends at once, as it does
 * when a real client goes away; a thread drains the responses. The engine
 * (topic "t", two partitions, fsync never) lives in a temporary directory
 * and is made anew every RESET_EVERY inputs so the WAL does not grow
 * without end.
 *
 * Checked: kafka_conn_serve returns 0 or -1 and nothing else, and the
 * sanitizers see no bad access, leak or undefined behaviour.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "kafka-private.h"

#define RESET_EVERY 4096

static struct kafka_listener listener;
static struct kafka_conn conn;
static struct kafka_writer writer;
static int peer_fd;
static pthread_t drain_thread;
static char dir[4096];
static unsigned inputs;

static void *drain_main(void *arg)
{
	char buf[65536];
	(void)arg;
	for (;;) {
		ssize_t k = read(peer_fd, buf, sizeof(buf));
		if (k == 0)
			break;
		if (k < 0 && errno != EINTR)
			break;
	}
	return NULL;
}

static void state_open(void)
{
	struct engine_options o;
	engine_options_init(&o);
	o.fsync = FSYNC_NEVER;
	fuzz_rm_below(dir);
	FUZZ_CHECK(engine_open(dir, &o, &listener.e) == 0);
	FUZZ_CHECK(engine_topic_create(listener.e, "t", 2, NULL) == 0);
	FUZZ_CHECK(kafka_groups_new(listener.o.max_groups, &listener.groups) == 0);
	FUZZ_CHECK(kafka_producers_new(&listener.o, &listener.producers) == 0);
}

static void state_close(void)
{
	kafka_producers_free(listener.producers);
	kafka_groups_free(listener.groups);
	FUZZ_CHECK(engine_close(listener.e) == 0);
	listener.e = NULL;
}

static void at_exit(void)
{
	state_close();
	kafka_writer_fini(&writer);
	shutdown(conn.fd, SHUT_RDWR);
	pthread_join(drain_thread, NULL);
	close(conn.fd);
	close(peer_fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int sv[2];
	(void)argc;
	(void)argv;
	fuzz_quiet();
	snprintf(dir, sizeof(dir), "%s/data", fuzz_workdir());
	kafka_options_init(&listener.o);
	listener.o.port = 0;
	atomic_init(&listener.stopping, false);
	pthread_mutex_init(&listener.lock, NULL);
	state_open();

	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FUZZ_CHECK(shutdown(sv[1], SHUT_WR) == 0);
	conn.l = &listener;
	conn.fd = sv[0];
	peer_fd = sv[1];
	snprintf(conn.host, sizeof(conn.host), "127.0.0.1");
	conn.port = 9092;
	snprintf(conn.peer, sizeof(conn.peer), "127.0.0.1:40000");
	atomic_init(&conn.done, false);
	atomic_init(&conn.idle_since_ms, 0);
	atomic_init(&conn.served, false);
	atomic_init(&conn.serving, false);
	atomic_init(&conn.evicted, false);
	kafka_writer_init(&writer, 0);
	FUZZ_CHECK(pthread_create(&drain_thread, NULL, drain_main, NULL) == 0);
	atexit(at_exit);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (++inputs % RESET_EVERY == 0) {
		state_close();
		state_open();
	}
	int rc = kafka_conn_serve(&conn, data, size, &writer);
	FUZZ_CHECK(rc == 0 || rc == -1);
	return 0;
}
