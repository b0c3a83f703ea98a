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

/* Send the request built in w, read the response, check its correlation
 * id and leave r just after it. Returns the frame (free it), or NULL with
 * r failed on a transport error. */
static inline uint8_t *kc_roundtrip(int fd, struct kafka_writer *w, struct kafka_reader *r)
{
	uint8_t *buf;
	size_t len;
	int32_t want = (int32_t)kafka_get_be32(w->buf + 8);
	if (kc_send(fd, w) < 0 || kc_recv(fd, &buf, &len) < 0) {
		kafka_reader_init(r, "", 0);
		kafka_reader_fail(r);
		return NULL;
	}
	kafka_reader_init(r, buf, len);
	if (kafka_read_i32(r) != want)
		kafka_reader_fail(r);
	return buf;
}

/* The one-topic, one-partition request part Produce, Fetch and
 * ListOffsets share: Topics [Name] then Partitions [PartitionIndex]. */
static inline void kc_write_one_partition(struct kafka_writer *w, const char *topic,
					  int32_t partition)
{
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, topic);
	kafka_write_array(w, false, 1);
	kafka_write_i32(w, partition);
}

/* The answer's counterpart: skip Topics [Name], Partitions [PartitionIndex]
 * and return the partition's ErrorCode. */
static inline int16_t kc_read_one_partition(struct kafka_reader *r)
{
	kafka_read_array(r, false, false, 0);
	kafka_read_string(r, false, false);
	kafka_read_array(r, false, false, 0);
	kafka_read_i32(r);
	return kafka_read_i16(r);
}

/* Produce (v2+) one batch to topic/partition with correlation id corr: the
 * partition's error code, *offset (may be NULL) the base offset; -100 on
 * a transport or parse failure. */
static inline int kc_produce(int fd, struct kafka_writer *w, int32_t corr, int16_t version,
			     int16_t acks, int32_t timeout_ms, const char *topic, int32_t partition,
			     const uint8_t *batch, size_t len, int64_t *offset)
{
	struct kafka_reader r;
	if (offset)
		*offset = -1;
	kc_begin(w, 0, version, corr, 0);
	if (version >= 3)
		kafka_write_string(w, false, NULL); /* transactional id */
	kafka_write_i16(w, acks);
	kafka_write_i32(w, timeout_ms);
	kc_write_one_partition(w, topic, partition);
	kafka_write_bytes(w, false, batch, (int32_t)len);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	if (!buf)
		return -100;
	int16_t err = kc_read_one_partition(&r);
	int64_t base = kafka_read_i64(&r);
	if (offset)
		*offset = base;
	int bad = kafka_reader_failed(&r);
	free(buf);
	return bad ? -100 : err;
}

/* Fetch v11 of topic/0 from offset, waiting up to max_wait ms for
 * min_bytes, at most max_bytes (the whole answer and the partition). The
 * partition's error code, or -100 when the answer is not exactly one
 * well-formed partition without a top-level error; *records (malloc'd,
 * NULL when empty) and *rlen the record bytes, *hw (may be NULL) the high
 * watermark. */
static inline int kc_fetch(int fd, struct kafka_writer *w, int32_t corr, const char *topic,
			   int64_t offset, int32_t min_bytes, int32_t max_wait, int32_t max_bytes,
			   uint8_t **records, int32_t *rlen, int64_t *hw)
{
	struct kafka_reader r;
	*records = NULL;
	*rlen = 0;
	kc_begin(w, 1, 11, corr, 0);
	kafka_write_i32(w, -1); /* replica id */
	kafka_write_i32(w, max_wait);
	kafka_write_i32(w, min_bytes);
	kafka_write_i32(w, max_bytes);
	kafka_write_i8(w, 0); /* isolation level */
	kafka_write_i32(w, 0); /* session id */
	kafka_write_i32(w, -1); /* session epoch */
	kc_write_one_partition(w, topic, 0);
	kafka_write_i32(w, -1); /* current leader epoch */
	kafka_write_i64(w, offset);
	kafka_write_i64(w, -1); /* log start offset */
	kafka_write_i32(w, max_bytes);
	kafka_write_array(w, false, 0); /* forgotten topics */
	kafka_write_string(w, false, ""); /* rack id */
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	if (!buf)
		return -100;
	kafka_read_i32(&r);
	int16_t top = kafka_read_i16(&r);
	int32_t session = kafka_read_i32(&r);
	int16_t err = kc_read_one_partition(&r);
	int64_t high = kafka_read_i64(&r);
	if (hw)
		*hw = high;
	kafka_read_i64(&r); /* LSO */
	kafka_read_i64(&r); /* log start */
	int32_t na = kafka_read_array(&r, false, true, 16);
	kafka_read_skip(&r, (size_t)(na > 0 ? na : 0) * 16);
	kafka_read_i32(&r); /* preferred read replica */
	struct kafka_str rec = kafka_read_bytes(&r, false, true);
	int bad = kafka_reader_failed(&r) || kafka_reader_left(&r) != 0 || top != 0 || session != 0;
	*rlen = rec.len;
	if (rec.len > 0) {
		*records = malloc((size_t)rec.len);
		memcpy(*records, rec.ptr, (size_t)rec.len);
	}
	free(buf);
	return bad ? -100 : err;
}

/* 1 when the peer closed the connection (EOF) within the timeout. */
static inline int kc_closed(int fd)
{
	uint8_t b;
	ssize_t k = recv(fd, &b, 1, 0);
	return k == 0 || (k < 0 && errno == ECONNRESET);
}

#endif
