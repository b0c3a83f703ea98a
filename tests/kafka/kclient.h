/* kclient.h - helpers for the kafka suite's C tests: start kafka_server on a
 * fresh data directory, and speak raw Kafka frames to it.
 * Header-only (static inline functions), one copy per test program.
 */
#ifndef CHRONIK_TESTS_KCLIENT_H
#define CHRONIK_TESTS_KCLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "tap.h"

struct kserver {
	pid_t pid;
	int port;
	char dir[256];
	const char *bin;
};

/* Start bin on dir/data (dir created if empty string) with extra args (NULL
 * terminated list, may be NULL). Bails out when it does not start. */
static inline void kserver_start(struct kserver *s, const char *bin, const char *const *args)
{
	int pfd[2];
	if (!s->dir[0]) {
		snprintf(s->dir, sizeof(s->dir), "%s/chronik-kafka.XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(s->dir))
			bail("mkdtemp: %s", strerror(errno));
	}
	s->bin = bin;
	if (pipe(pfd) < 0)
		bail("pipe");
	s->pid = fork();
	if (s->pid < 0)
		bail("fork");
	if (s->pid == 0) {
		char data[300];
		const char *argv[32];
		int n = 0;
		snprintf(data, sizeof(data), "%s/data", s->dir);
		argv[n++] = bin;
		argv[n++] = data;
		for (int i = 0; args && args[i] && n < 30; i++)
			argv[n++] = args[i];
		argv[n] = NULL;
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	FILE *f = fdopen(pfd[0], "r");
	char line[128];
	s->port = 0;
	/* The server prints its port once it listens (or exits). */
	if (fgets(line, sizeof(line), f))
		sscanf(line, "PORT %d", &s->port);
	fclose(f);
	if (s->port <= 0)
		bail("kafka_server did not start");
}

/* SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status, -1 if
 * it had to be killed or died of a signal. */
static inline int kserver_stop(struct kserver *s)
{
	int st = 0;
	if (s->pid <= 0)
		return 0;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		usleep(100000);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	return -1;
}

/* 1 if the server process is still running. */
static inline int kserver_alive(struct kserver *s)
{
	int st;
	return s->pid > 0 && waitpid(s->pid, &st, WNOHANG) == 0;
}

static inline void kserver_cleanup(struct kserver *s)
{
	char cmd[300];
	kserver_stop(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		diag("could not remove %s", s->dir);
}

/* A connection with a receive timeout (so a test never hangs). */
static inline int kc_connect(int port, int timeout_s)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	struct timeval tv = { timeout_s, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static inline int kc_send_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Begin a request in w: size placeholder and header v1 (v2 when flexible). */
static inline void kc_begin(struct kafka_writer *w, int16_t key, int16_t version, int32_t corr,
			    int flexible_header)
{
	kafka_writer_reset(w);
	(void)kafka_write_i32_later(w);
	kafka_write_i16(w, key);
	kafka_write_i16(w, version);
	kafka_write_i32(w, corr);
	kafka_write_string(w, false, "kclient");
	if (flexible_header)
		kafka_write_tags(w);
}

/* Fill in the size and send. */
static inline int kc_send(int fd, struct kafka_writer *w)
{
	kafka_write_i32_at(w, 0, (int32_t)(w->len - 4));
	return kc_send_all(fd, w->buf, w->len);
}

/* Receive one response frame: *buf malloc'd (body after the size). 0, or
 * -1 on EOF/timeout/error. */
static inline int kc_recv(int fd, uint8_t **buf, size_t *len)
{
	uint8_t hdr[4];
	size_t got = 0;
	while (got < 4) {
		ssize_t k = recv(fd, hdr + got, 4 - got, 0);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	uint32_t n = kafka_get_be32(hdr);
	if (n > (1u << 30))
		return -1;
	*buf = malloc(n ? n : 1);
	got = 0;
	while (got < n) {
		ssize_t k = recv(fd, *buf + got, n - got, 0);
		if (k <= 0) {
			free(*buf);
			return -1;
		}
		got += (size_t)k;
	}
	*len = n;
	return 0;
}

/* 1 when the peer closed the connection (EOF) within the timeout. */
static inline int kc_closed(int fd)
{
	uint8_t b;
	ssize_t k = recv(fd, &b, 1, 0);
	return k == 0 || (k < 0 && errno == ECONNRESET);
}

#endif
