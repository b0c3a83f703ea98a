/* listener.h - the Kafka listener inside chronikd.
 *
 * kafka_listener_start binds host:port (loopback unless told otherwise),
 * serves Kafka clients on the shared engine from its own threads, and
 * returns. kafka_listener_stop closes every connection and joins them.
 */
#ifndef CHRONIK_KAFKA_LISTENER_H
#define CHRONIK_KAFKA_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

struct kafka_listener;

struct kafka_options {
	const char *host;	   /* default "127.0.0.1" */
	uint16_t port;		   /* default 9092; 0 = any free port */
	size_t max_request_bytes;  /* kafka.max.request.bytes, default 100 MiB */
	bool auto_create_topics;   /* Metadata creates unknown topics; default true */
	/* kafka.connections.max.idle.ms: a connection with no request in
	 * progress and none arriving is closed after this long; default
	 * 600000 (Kafka's). <= 0: never. */
	int32_t connections_max_idle_ms;
	/* Once the first byte of a request has arrived, the whole request must
	 * arrive within this long or the connection is closed; default 30000. */
	int32_t request_receive_timeout_ms;
	/* Connections served at once (kafka.max.connections); 0 = as many as
	 * the file descriptor limit leaves room for: RLIMIT_NOFILE's soft
	 * limit (chronikd raises it to the hard limit at start) minus
	 * KAFKA_FD_RESERVE for the engine and the mount, at most
	 * KAFKA_MAX_CONNS, at least 16. A value above what the limit leaves
	 * room for is lowered to it (logged). */
	int32_t max_connections;
	/* Consumer groups with members at once (kafka.max.groups); 0 = 4096. */
	int32_t max_groups;
	/* Idempotent-producer states, one per (producer id, partition), kept
	 * at once; 0 = 65536. When full, the least recently used state idle
	 * for producer_state_evict_idle_ms (default 300000) makes room; if
	 * none is, the batch gets a retriable error. */
	int32_t max_producer_states;
	int32_t producer_state_evict_idle_ms;
	/* kafka.fetch.sendfile: a Fetch response on a plaintext connection
	 * sends the stored batches from their files with sendfile(2)
	 * (handlers_fetch.c, "ZERO COPY"); false copies them through the
	 * response buffer, as TLS connections always do. Default true. */
	bool fetch_sendfile;

	/* Security (README "Kafka security"). users_file: kafka.users.file,
	 * SASL required on every listener when set (NULL = SASL off).
	 * tls_listen: kafka.tls.listen "HOST:PORT" of the TLS listener (NULL =
	 * none), with tls_cert / tls_key (PEM files). allow_plaintext_remote:
	 * kafka.allow.plaintext.remote; without it (and without SASL) a
	 * plaintext listener on anything but loopback refuses to start. */
	const char *users_file;
	const char *tls_listen;
	const char *tls_cert;
	const char *tls_key;
	bool allow_plaintext_remote;
};

void kafka_options_init(struct kafka_options *o);
/* Parse "HOST:PORT" (or ":PORT", or "PORT") into o. 0 or -EINVAL. */
int kafka_options_parse_addr(struct kafka_options *o, const char *addr);

int kafka_listener_start(struct engine *e, const struct kafka_options *o,
			 struct kafka_listener **out);
/* The port actually bound (useful with port 0). */
uint16_t kafka_listener_port(const struct kafka_listener *l);
/* The TLS listener's port, 0 without one. */
uint16_t kafka_listener_tls_port(const struct kafka_listener *l);
void kafka_listener_stop(struct kafka_listener *l);

#endif
