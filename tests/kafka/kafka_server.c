/* kafka_server.c - the engine and the Kafka listener, without FUSE: what the
 * Kafka tests run against.
 *
 * Usage: kafka_server DATA_DIR [--partitions N] [--fsync POLICY]
 *                              [--max-request-bytes N] [--no-auto-create]
 *                              [--idle-ms N] [--request-timeout-ms N]
 *                              [--max-groups N] [--max-producer-states N]
 *                              [--max-connections N]
 *                              [--set ENGINE_KEY=VALUE]
 *                              [--producer-evict-ms N] [--no-sendfile]
 *                              [--host HOST] [--allow-plaintext-remote]
 *                              [--users FILE]
 *                              [--tls HOST:PORT --tls-cert PEM --tls-key PEM]
 *                              [--stats FILE]
 * Listens on 127.0.0.1 on a free port and prints "PORT <n>" on stdout once
 * it accepts connections (then "TLSPORT <n>" with --tls). With --stats, the
 * engine's group-commit counters go to FILE at stop ("appends N groups M"). SIGTERM or SIGINT stops it cleanly (listener
 * stopped, engine closed); exit status 0 then.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "listener.h"

/* "appends N groups M\n", the engine's group-commit counters, into path:
 * 0 or -1. */
static int stats_write(struct engine *e, const char *path)
{
	struct engine_stats st;
	engine_stats_get(e, &st);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "appends %llu groups %llu\n", (unsigned long long)st.appends,
		(unsigned long long)st.groups);
	return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *stats_path = NULL;
	struct engine_options eo;
	struct kafka_options ko;
	struct engine *e = NULL;
	struct kafka_listener *l = NULL;
	sigset_t set;
	int sig, rc;

	if (argc < 2 || argv[1][0] == '-') { /* DATA_DIR first, never an option */
		fprintf(stderr,
			"usage: %s DATA_DIR [--partitions N] [--fsync POLICY] "
			"[--max-request-bytes N] [--no-auto-create]\n",
			argv[0]);
		return 2;
	}
	engine_options_init(&eo);
	kafka_options_init(&ko);
	ko.port = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--partitions") == 0 && i + 1 < argc) {
			eo.default_partitions = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--fsync") == 0 && i + 1 < argc) {
			if (engine_options_parse_fsync(&eo, argv[++i]) != 0) {
				fprintf(stderr, "bad fsync policy\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--max-request-bytes") == 0 && i + 1 < argc) {
			ko.max_request_bytes = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--idle-ms") == 0 && i + 1 < argc) {
			ko.connections_max_idle_ms = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--request-timeout-ms") == 0 && i + 1 < argc) {
			ko.request_receive_timeout_ms = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--max-connections") == 0 && i + 1 < argc) {
			ko.max_connections = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--max-groups") == 0 && i + 1 < argc) {
			ko.max_groups = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--max-producer-states") == 0 && i + 1 < argc) {
			ko.max_producer_states = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--producer-evict-ms") == 0 && i + 1 < argc) {
			ko.producer_state_evict_idle_ms = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
			/* An engine setting, KEY=VALUE (max.topics=2). */
			char key[64];
			const char *kv = argv[++i], *eq = strchr(kv, '=');
			if (!eq || (size_t)(eq - kv) >= sizeof(key)) {
				fprintf(stderr, "--set %s: expected KEY=VALUE\n", kv);
				return 2;
			}
			memcpy(key, kv, (size_t)(eq - kv));
			key[eq - kv] = 0;
			if (engine_options_set(&eo, key, eq + 1) != 0) {
				fprintf(stderr, "--set %s: bad setting\n", kv);
				return 2;
			}
		} else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
			ko.host = argv[++i];
		} else if (strcmp(argv[i], "--allow-plaintext-remote") == 0) {
			ko.allow_plaintext_remote = true;
		} else if (strcmp(argv[i], "--users") == 0 && i + 1 < argc) {
			ko.users_file = argv[++i];
		} else if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc) {
			ko.tls_listen = argv[++i];
		} else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc) {
			ko.tls_cert = argv[++i];
		} else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc) {
			ko.tls_key = argv[++i];
		} else if (strcmp(argv[i], "--stats") == 0 && i + 1 < argc) {
			stats_path = argv[++i];
		} else if (strcmp(argv[i], "--no-sendfile") == 0) {
			ko.fetch_sendfile = false;
		} else if (strcmp(argv[i], "--no-auto-create") == 0) {
			ko.auto_create_topics = false;
		} else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}

	/* Block the stop signals before any thread starts: they inherit it. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = engine_open(argv[1], &eo, &e);
	if (rc) {
		fprintf(stderr, "engine_open %s: %s\n", argv[1], chronik_strerror(rc));
		return 1;
	}
	rc = kafka_listener_start(e, &ko, &l);
	if (rc) {
		fprintf(stderr, "kafka_listener_start: %s\n", chronik_strerror(rc));
		engine_close(e);
		return 1;
	}
	printf("PORT %u\n", (unsigned)kafka_listener_port(l));
	if (ko.tls_listen)
		printf("TLSPORT %u\n", (unsigned)kafka_listener_tls_port(l));
	fflush(stdout);

	sigwait(&set, &sig);
	kafka_listener_stop(l);
	if (stats_path && stats_write(e, stats_path) < 0) {
		fprintf(stderr, "cannot write %s\n", stats_path);
		engine_close(e);
		return 1;
	}
	rc = engine_close(e);
	if (rc) {
		fprintf(stderr, "engine_close: %s\n", chronik_strerror(rc));
		return 1;
	}
	return 0;
}
