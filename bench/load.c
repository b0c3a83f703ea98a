/* load.c - chronik-load: many concurrent clients on one chronikd, checked.
 *
 *   chronik-load kafka PORT TOPIC PARTITIONS CONNS SECONDS [PID]
 *   chronik-load fs DATAFILE READERS WRITERS SECONDS [PID]
 *
 * kafka: CONNS connections to 127.0.0.1:PORT from one epoll loop, every
 * other one a producer (Produce v3, acks=-1, a 4-record batch, one request
 * in flight, every PRODUCE_GAP_MS) and the rest consumers (Fetch v11 long
 * polls, max_wait 500 ms, from offset 0). Connection i works on partition
 * (i / 2) % PARTITIONS. After SECONDS no new request is sent and every one
 * in flight must be answered within DRAIN_MS. Checked:
 *   - every connection connected and was never closed by the server;
 *   - every request answered, with its correlation id, parsing whole;
 *   - error codes: 0, or 7 REQUEST_TIMED_OUT (back-pressure: the group
 *     commit did not finish within the request's timeout), counted apart;
 *   - per partition, the acknowledged produces' offset ranges are disjoint
 *     and together exactly [0, acknowledged records): dense, no duplicate;
 *   - every consumer's fetched batches continue each other in offset order
 *     (no gap, no reordering).
 *
 * fs: READERS `tail -c +1 -f DATAFILE` processes, and WRITERS threads
 * appending lines "w<writer> <seq>\n" (1 to 4 lines per write(2), O_APPEND)
 * for SECONDS. Then, once every reader's output has the file's final size
 * (within TAIL_WAIT_MS), the tails are stopped. Checked: every write
 * returned; the file holds each writer's lines exactly once, seq 0, 1, ...
 * in order, and nothing else; every reader's output is the file, byte for
 * byte (each line seen once, in the file's order).
 *
 * With PID, chronikd's VmRSS (/proc/PID/status) is sampled every
 * SECONDS / 20 seconds (at least 1 s) and reported: the first sample after
 * warm-up (a tenth of the run), the last, the peak, and the growth.
 *
 * Output: "key value" lines, then "errors N" last; exit status 0 when N is
 * 0. No figure here is a timing: the caller (bench/load, tests/load) reads
 * the counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "codec.h"
#include "kclient.h"

#define PRODUCE_GAP_MS 100
#define RECORDS_PER_PRODUCE 4
#define DRAIN_MS 40000
#define TAIL_WAIT_MS 60000
#define MAX_FRAME (8u << 20)

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static void nofile_raise(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- chronikd's memory ---------------------------------------------------- */

/* Every sample is kept (up to RSS_SERIES) and printed as rss_series_kb,
 * with its anonymous part (heap, stacks: rss_anon_series_kb) and its
 * file-backed part (mapped files: rss_file_series_kb), so that a growth can
 * be told apart: heap that keeps growing, or pages of mapped files. */
#define RSS_SERIES 64

struct rss {
	pid_t pid;
	int64_t start_ms, warm_ms, every_ms, next_ms;
	long first_kb, warm_kb, last_kb, peak_kb;
	int samples;
	long series[RSS_SERIES][3]; /* VmRSS, RssAnon, RssFile */
};

/* VmRSS (the return value), RssAnon and RssFile of pid in KiB; -1 if gone. */
static long rss_kb3(pid_t pid, long *anon, long *file)
{
	char path[64], line[256];
	long kb = -1;
	*anon = *file = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			continue;
		if (sscanf(line, "RssAnon: %ld", anon) == 1)
			continue;
		sscanf(line, "RssFile: %ld", file);
	}
	fclose(f);
	return kb;
}

static void rss_init(struct rss *r, pid_t pid, int seconds)
{
	memset(r, 0, sizeof(*r));
	r->pid = pid;
	r->start_ms = r->next_ms = now_ms();
	r->warm_ms = r->start_ms + seconds * 100;
	r->every_ms = seconds * 50 > 1000 ? seconds * 50 : 1000;
	r->warm_kb = -1;
}

static void rss_tick(struct rss *r)
{
	int64_t t = now_ms();
	if (r->pid <= 0 || t < r->next_ms)
		return;
	r->next_ms = t + r->every_ms;
	long anon, file;
	long kb = rss_kb3(r->pid, &anon, &file);
	if (kb < 0)
		return;
	if (r->samples < RSS_SERIES) {
		r->series[r->samples][0] = kb;
		r->series[r->samples][1] = anon;
		r->series[r->samples][2] = file;
	}
	if (r->samples++ == 0)
		r->first_kb = kb;
	if (t >= r->warm_ms && r->warm_kb < 0)
		r->warm_kb = kb;
	r->last_kb = kb;
	if (kb > r->peak_kb)
		r->peak_kb = kb;
}

static void rss_report(const struct rss *r)
{
	if (r->pid <= 0)
		return;
	long warm = r->warm_kb >= 0 ? r->warm_kb : r->first_kb;
	printf("rss_samples %d\nrss_first_kb %ld\nrss_warm_kb %ld\nrss_last_kb %ld\n"
	       "rss_peak_kb %ld\nrss_growth_kb %ld\nrss_growth_pct %.1f\n",
	       r->samples, r->first_kb, warm, r->last_kb, r->peak_kb, r->last_kb - warm,
	       warm > 0 ? 100.0 * (double)(r->last_kb - warm) / (double)warm : 0.0);
	static const char *names[3] = { "rss_series_kb", "rss_anon_series_kb",
					"rss_file_series_kb" };
	int n = r->samples < RSS_SERIES ? r->samples : RSS_SERIES;
	for (int k = 0; k < 3; k++) {
		printf("%s ", names[k]);
		for (int i = 0; i < n; i++)
			printf("%s%ld", i ? "," : "", r->series[i][k]);
		printf("\n");
	}
}

/* ---- kafka ------------------------------------------------------------------ */

struct conn {
	int fd;
	int idx;
	bool producer, connected, in_flight;
	int32_t partition, corr;
	int64_t next_send_ms;
	int64_t next_offset; /* consumer: the next offset it expects */
	int64_t seq;
	struct kafka_writer w;
	size_t sent;
	uint8_t *rbuf;
	size_t rlen, rcap;
};

struct range {
	int64_t base, count;
};

struct kload {
	const char *topic;
	int partitions;
	struct range **acked; /* per partition */
	size_t *nacked, *capacked;
	uint64_t requests, responses, produced_records, fetched_records;
	uint64_t backpressure, err_codes, err_transport, err_parse, err_gap, err_connect;
	uint64_t unanswered;
};

static void conn_produce(struct kload *k, struct conn *c)
{
	struct batch_builder b;
	char val[64];
	uint8_t *batch;
	size_t blen;

	batch_builder_init(&b);
	for (int i = 0; i < RECORDS_PER_PRODUCE; i++) {
		int n = snprintf(val, sizeof(val), "c%d-%" PRId64, c->idx, c->seq++);
		struct record_in r = { .timestamp = 0, .key = NULL, .key_len = -1,
				       .value = val, .value_len = n };
		batch_builder_add(&b, &r);
	}
	if (batch_builder_finish(&b, &batch, &blen) != 0)
		abort();
	batch_builder_fini(&b);
	kc_begin(&c->w, 0, 3, ++c->corr, 0);
	kafka_write_string(&c->w, false, NULL); /* transactional_id */
	kafka_write_i16(&c->w, -1); /* acks */
	kafka_write_i32(&c->w, 30000); /* timeout_ms */
	kc_write_one_partition(&c->w, k->topic, c->partition);
	kafka_write_bytes(&c->w, false, batch, (int32_t)blen);
	free(batch);
}

static void conn_fetch(struct kload *k, struct conn *c)
{
	kc_begin(&c->w, 1, 11, ++c->corr, 0);
	kafka_write_i32(&c->w, -1); /* replica_id */
	kafka_write_i32(&c->w, 500); /* max_wait_ms */
	kafka_write_i32(&c->w, 1); /* min_bytes */
	kafka_write_i32(&c->w, 256 << 10); /* max_bytes */
	kafka_write_i8(&c->w, 0); /* isolation_level */
	kafka_write_i32(&c->w, 0); /* session_id */
	kafka_write_i32(&c->w, -1); /* session_epoch */
	kc_write_one_partition(&c->w, k->topic, c->partition);
	kafka_write_i32(&c->w, -1); /* current_leader_epoch */
	kafka_write_i64(&c->w, c->next_offset); /* fetch_offset */
	kafka_write_i64(&c->w, -1); /* log_start_offset */
	kafka_write_i32(&c->w, 256 << 10); /* partition_max_bytes */
	kafka_write_array(&c->w, false, 0); /* forgotten_topics_data */
	kafka_write_string(&c->w, false, ""); /* rack_id */
}

static void acked_add(struct kload *k, int32_t p, int64_t base, int64_t count)
{
	if (k->nacked[p] == k->capacked[p]) {
		k->capacked[p] = k->capacked[p] ? k->capacked[p] * 2 : 1024;
		k->acked[p] = realloc(k->acked[p], k->capacked[p] * sizeof(struct range));
		if (!k->acked[p])
			abort();
	}
	k->acked[p][k->nacked[p]++] = (struct range){ base, count };
}

/* A whole response frame of c's request: 0, or -1 when it does not parse. */
static int conn_answer(struct kload *k, struct conn *c, const uint8_t *buf, size_t len)
{
	struct kafka_reader r;
	kafka_reader_init(&r, buf, len);
	if (kafka_read_i32(&r) != c->corr)
		return -1;
	int16_t err;
	if (c->producer) {
		/* ProduceResponse v3: responses [name, partitions [index,
		 * error_code, base_offset, log_append_time_ms]],
		 * throttle_time_ms. */
		err = kc_read_one_partition(&r);
		int64_t base = kafka_read_i64(&r);
		kafka_read_i64(&r);
		kafka_read_i32(&r);
		if (kafka_reader_failed(&r) || kafka_reader_left(&r) != 0)
			return -1;
		if (err == 0) {
			acked_add(k, c->partition, base, RECORDS_PER_PRODUCE);
			k->produced_records += RECORDS_PER_PRODUCE;
		}
	} else {
		/* FetchResponse v11: throttle_time_ms, error_code, session_id,
		 * responses [topic, partitions [index, error_code,
		 * high_watermark, last_stable_offset, log_start_offset,
		 * aborted_transactions, preferred_read_replica, records]]. */
		kafka_read_i32(&r);
		int16_t top = kafka_read_i16(&r);
		kafka_read_i32(&r);
		err = kc_read_one_partition(&r);
		kafka_read_i64(&r);
		kafka_read_i64(&r);
		kafka_read_i64(&r);
		int32_t na = kafka_read_array(&r, false, true, 16);
		kafka_read_skip(&r, (size_t)(na > 0 ? na : 0) * 16);
		kafka_read_i32(&r);
		struct kafka_str rec = kafka_read_bytes(&r, false, true);
		if (kafka_reader_failed(&r) || kafka_reader_left(&r) != 0 || top != 0)
			return -1;
		const uint8_t *p = (const uint8_t *)rec.ptr;
		size_t left = rec.len > 0 ? (size_t)rec.len : 0;
		/* Whole batches, each continuing the last; a partial one at
		 * the end is what max_bytes cut. */
		while (err == 0 && left >= BATCH_HEADER_SIZE) {
			size_t blen = (size_t)kafka_get_be32(p + 8) + 12;
			if (blen > left)
				break;
			int64_t base = (int64_t)((uint64_t)kafka_get_be32(p) << 32 |
						 kafka_get_be32(p + 4));
			int64_t last = base + (int32_t)kafka_get_be32(p + 23);
			if (base > c->next_offset || last < base) {
				k->err_gap++;
				fprintf(stderr, "conn %d: partition %d: batch %" PRId64
					"-%" PRId64 " after %" PRId64 "\n",
					c->idx, c->partition, base, last, c->next_offset - 1);
				c->next_offset = last + 1;
			} else if (last >= c->next_offset) {
				k->fetched_records += (uint64_t)(last - c->next_offset + 1);
				c->next_offset = last + 1;
			}
			p += blen;
			left -= blen;
		}
	}
	if (err == 7) {
		k->backpressure++;
	} else if (err != 0) {
		k->err_codes++;
		fprintf(stderr, "conn %d: error code %d\n", c->idx, err);
	}
	return 0;
}

static void conn_drop(struct kload *k, struct conn *c, int ep, const char *why)
{
	fprintf(stderr, "conn %d: %s\n", c->idx, why);
	if (c->in_flight)
		k->unanswered++;
	k->err_transport++;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->in_flight = false;
}

/* Write what is left of c's request; arm EPOLLOUT while some is. */
static void conn_flush(struct kload *k, struct conn *c, int ep)
{
	while (c->sent < c->w.len) {
		ssize_t n = send(c->fd, c->w.buf + c->sent, c->w.len - c->sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_drop(k, c, ep, "send failed");
			return;
		}
		c->sent += (size_t)n;
	}
	struct epoll_event ev = { .events = EPOLLIN | (c->sent < c->w.len ? EPOLLOUT : 0),
				  .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_send(struct kload *k, struct conn *c, int ep)
{
	if (c->producer)
		conn_produce(k, c);
	else
		conn_fetch(k, c);
	kafka_write_i32_at(&c->w, 0, (int32_t)(c->w.len - 4));
	c->sent = 0;
	c->in_flight = true;
	k->requests++;
	conn_flush(k, c, ep);
}

static void conn_read(struct kload *k, struct conn *c, int ep)
{
	for (;;) {
		if (c->rcap - c->rlen < 65536) {
			c->rcap = c->rcap ? c->rcap * 2 : 131072;
			c->rbuf = realloc(c->rbuf, c->rcap);
			if (!c->rbuf)
				abort();
		}
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_drop(k, c, ep, n == 0 ? "closed by the server" : "recv failed");
			return;
		}
		c->rlen += (size_t)n;
		while (c->rlen >= 4) {
			uint32_t flen = kafka_get_be32(c->rbuf);
			if (flen > MAX_FRAME) {
				conn_drop(k, c, ep, "oversized response");
				return;
			}
			if (c->rlen < 4 + (size_t)flen)
				break;
			if (!c->in_flight || conn_answer(k, c, c->rbuf + 4, flen) != 0) {
				k->err_parse++;
				conn_drop(k, c, ep, "response does not parse");
				return;
			}
			k->responses++;
			c->in_flight = false;
			c->next_send_ms = c->producer ? now_ms() + PRODUCE_GAP_MS : 0;
			memmove(c->rbuf, c->rbuf + 4 + flen, c->rlen - 4 - flen);
			c->rlen -= 4 + (size_t)flen;
		}
	}
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->base < y->base ? -1 : x->base > y->base;
}

static uint64_t check_acked(struct kload *k)
{
	uint64_t bad = 0;
	for (int p = 0; p < k->partitions; p++) {
		qsort(k->acked[p], k->nacked[p], sizeof(struct range), cmp_range);
		int64_t next = 0;
		for (size_t i = 0; i < k->nacked[p]; i++) {
			if (k->acked[p][i].base != next) {
				fprintf(stderr, "partition %d: acknowledged offset %" PRId64
					" where %" PRId64 " was next\n",
					p, k->acked[p][i].base, next);
				bad++;
			}
			next = k->acked[p][i].base + k->acked[p][i].count;
		}
	}
	return bad;
}

static int run_kafka(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	int port = atoi(argv[1]);
	struct kload k = { .topic = argv[2], .partitions = atoi(argv[3]) };
	int nconns = atoi(argv[4]), seconds = atoi(argv[5]);
	pid_t pid = argc > 6 ? (pid_t)atoi(argv[6]) : 0;
	if (port <= 0 || k.partitions <= 0 || nconns <= 0 || seconds <= 0)
		return 2;
	k.acked = calloc((size_t)k.partitions, sizeof(*k.acked));
	k.nacked = calloc((size_t)k.partitions, sizeof(*k.nacked));
	k.capacked = calloc((size_t)k.partitions, sizeof(*k.capacked));
	struct conn *cs = calloc((size_t)nconns, sizeof(*cs));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!k.acked || !k.nacked || !k.capacked || !cs || ep < 0)
		return 1;

	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	for (int i = 0; i < nconns; i++) {
		struct conn *c = &cs[i];
		c->idx = i;
		c->producer = i % 2 == 0;
		c->partition = (i / 2) % k.partitions;
		kafka_writer_init(&c->w, 0);
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
				  errno != EINPROGRESS)) {
			fprintf(stderr, "conn %d: connect: %s\n", i, strerror(errno));
			k.err_connect++;
			if (c->fd >= 0)
				close(c->fd);
			c->fd = -1;
			continue;
		}
		struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}

	struct rss rss;
	rss_init(&rss, pid, seconds);
	int64_t end = now_ms() + (int64_t)seconds * 1000, drain_end = end + DRAIN_MS;
	struct epoll_event evs[256];
	for (;;) {
		int64_t t = now_ms();
		bool sending = t < end;
		rss_tick(&rss);
		int busy = 0;
		for (int i = 0; i < nconns; i++) {
			struct conn *c = &cs[i];
			if (c->fd < 0)
				continue;
			if (c->in_flight)
				busy++;
			else if (sending && c->connected && t >= c->next_send_ms)
				conn_send(&k, c, ep);
		}
		if (!sending && (busy == 0 || t >= drain_end))
			break;
		int n = epoll_wait(ep, evs, 256, 20);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->fd < 0)
				continue;
			if (!c->connected) {
				int soerr = 0;
				socklen_t sl = sizeof(soerr);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
				if (soerr) {
					fprintf(stderr, "conn %d: connect: %s\n", c->idx,
						strerror(soerr));
					k.err_connect++;
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					close(c->fd);
					c->fd = -1;
					continue;
				}
				c->connected = true;
				struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			if (evs[i].events & EPOLLOUT)
				conn_flush(&k, c, ep);
			if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_read(&k, c, ep);
		}
	}

	int connected = 0, open_at_end = 0;
	for (int i = 0; i < nconns; i++) {
		connected += cs[i].connected;
		if (cs[i].fd >= 0) {
			open_at_end++;
			if (cs[i].in_flight)
				k.unanswered++;
			close(cs[i].fd);
		}
		kafka_writer_fini(&cs[i].w);
		free(cs[i].rbuf);
	}
	uint64_t bad_offsets = check_acked(&k);
	uint64_t errors = k.err_codes + k.err_transport + k.err_parse + k.err_gap +
			  k.err_connect + k.unanswered + bad_offsets +
			  (uint64_t)(nconns - connected);
	printf("connections %d\nconnected %d\nopen_at_end %d\nrequests %" PRIu64
	       "\nresponses %" PRIu64 "\nunanswered %" PRIu64 "\nproduced_records %" PRIu64
	       "\nfetched_records %" PRIu64 "\nbackpressure %" PRIu64 "\nerror_codes %" PRIu64
	       "\ntransport_errors %" PRIu64 "\nparse_errors %" PRIu64 "\noffset_gaps %" PRIu64
	       "\nacked_offset_holes %" PRIu64 "\n",
	       nconns, connected, open_at_end, k.requests, k.responses, k.unanswered,
	       k.produced_records, k.fetched_records, k.backpressure, k.err_codes,
	       k.err_transport, k.err_parse, k.err_gap, bad_offsets);
	rss_report(&rss);
	printf("errors %" PRIu64 "\n", errors);
	for (int p = 0; p < k.partitions; p++)
		free(k.acked[p]);
	free(k.acked);
	free(k.nacked);
	free(k.capacked);
	free(cs);
	close(ep);
	return errors ? 1 : 0;
}

/* ---- fs -------------------------------------------------------------------------- */

struct writer {
	pthread_t thread;
	int id;
	const char *path;
	int64_t end_ms;
	int64_t lines;
	int failed;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	int fd = open(w->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0) {
		w->failed++;
		return NULL;
	}
	unsigned seed = (unsigned)w->id * 2654435761u;
	char buf[256];
	while (now_ms() < w->end_ms) {
		int k = 1 + (int)(rand_r(&seed) % 4), len = 0;
		for (int i = 0; i < k; i++)
			len += snprintf(buf + len, sizeof(buf) - (size_t)len, "w%d %" PRId64 "\n",
					w->id, w->lines + i);
		ssize_t n = write(fd, buf, (size_t)len);
		if (n != len) {
			w->failed++;
			break;
		}
		w->lines += k;
		sleep_ms(5 + (int)(rand_r(&seed) % 20));
	}
	if (close(fd) < 0)
		w->failed++;
	return NULL;
}

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		if (!buf)
			abort();
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	*len = n;
	return buf;
}

/* The file's lines are each writer's, exactly once and in order. */
static uint64_t check_lines(const char *buf, size_t len, struct writer *ws, int nw)
{
	int64_t *next = calloc((size_t)nw, sizeof(*next));
	uint64_t bad = 0;
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		int id;
		long long seq;
		char extra;
		char line[128];
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		snprintf(line, sizeof(line), "%.*s", (int)(ll < 127 ? ll : 127), p);
		if (!nl || sscanf(line, "w%d %lld%c", &id, &seq, &extra) != 2 || id < 0 ||
		    id >= nw || seq != next[id]) {
			if (bad++ < 5)
				fprintf(stderr, "data: unexpected line '%s'\n", line);
		} else {
			next[id]++;
		}
		p = nl ? nl + 1 : end;
	}
	for (int i = 0; i < nw; i++)
		if (next[i] != ws[i].lines) {
			fprintf(stderr, "writer %d: %" PRId64 " lines written, %" PRId64
				" in order in the file\n",
				i, ws[i].lines, next[i]);
			bad++;
		}
	free(next);
	return bad;
}

static int run_fs(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	const char *path = argv[1];
	int nr = atoi(argv[2]), nw = atoi(argv[3]), seconds = atoi(argv[4]);
	pid_t pid = argc > 5 ? (pid_t)atoi(argv[5]) : 0;
	if (nr <= 0 || nw <= 0 || seconds <= 0)
		return 2;
	const char *tmp = getenv("TMPDIR");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/chronik-load.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	pid_t *tails = calloc((size_t)nr, sizeof(*tails));
	struct writer *ws = calloc((size_t)nw, sizeof(*ws));
	uint64_t errors = 0;

	for (int i = 0; i < nr; i++) {
		char out[4200];
		snprintf(out, sizeof(out), "%s/r%d", dir, i);
		tails[i] = fork();
		if (tails[i] == 0) {
			int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0 || dup2(fd, 1) < 0)
				_exit(127);
			execlp("tail", "tail", "-c", "+1", "-f", path, (char *)NULL);
			_exit(127);
		}
	}
	struct rss rss;
	rss_init(&rss, pid, seconds);
	int64_t end = now_ms() + (int64_t)seconds * 1000;
	for (int i = 0; i < nw; i++) {
		ws[i] = (struct writer){ .id = i, .path = path, .end_ms = end };
		pthread_create(&ws[i].thread, NULL, writer_main, &ws[i]);
	}
	while (now_ms() < end) {
		rss_tick(&rss);
		sleep_ms(100);
	}
	int64_t lines = 0;
	for (int i = 0; i < nw; i++) {
		pthread_join(ws[i].thread, NULL);
		errors += (uint64_t)ws[i].failed;
		lines += ws[i].lines;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return 1;
	/* Every reader catches up with the final size (tail polls once a
	 * second on FUSE), then stops. */
	int64_t wait_end = now_ms() + TAIL_WAIT_MS;
	int behind = nr;
	while (behind > 0 && now_ms() < wait_end) {
		behind = 0;
		for (int i = 0; i < nr; i++) {
			char out[4200];
			struct stat os;
			snprintf(out, sizeof(out), "%s/r%d", dir, i);
			if (stat(out, &os) < 0 || os.st_size < st.st_size)
				behind++;
		}
		if (behind)
			sleep_ms(200);
	}
	for (int i = 0; i < nr; i++)
		if (tails[i] > 0)
			kill(tails[i], SIGTERM);
	for (int i = 0; i < nr; i++)
		if (tails[i] > 0)
			waitpid(tails[i], NULL, 0);

	size_t dlen;
	char *data = slurp(path, &dlen);
	if (!data)
		return 1;
	uint64_t bad_lines = check_lines(data, dlen, ws, nw);
	int readers_ok = 0;
	for (int i = 0; i < nr; i++) {
		char out[4200];
		size_t olen;
		snprintf(out, sizeof(out), "%s/r%d", dir, i);
		char *o = slurp(out, &olen);
		if (o && olen == dlen && memcmp(o, data, dlen) == 0)
			readers_ok++;
		else
			fprintf(stderr, "reader %d: %zu bytes, the file has %zu%s\n", i,
				o ? olen : 0, dlen, o && olen == dlen ? " (different)" : "");
		free(o);
		unlink(out);
	}
	rmdir(dir);
	errors += bad_lines + (uint64_t)(nr - readers_ok) + (dlen != (size_t)st.st_size);
	printf("readers %d\nwriters %d\nlines_written %" PRId64 "\nbytes %zu\n"
	       "bad_lines %" PRIu64 "\nreaders_exact %d\n",
	       nr, nw, lines, dlen, bad_lines, readers_ok);
	rss_report(&rss);
	printf("errors %" PRIu64 "\n", errors);
	free(data);
	free(tails);
	free(ws);
	return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	nofile_raise();
	signal(SIGPIPE, SIG_IGN);
	int rc = 2;
	if (argc >= 2 && strcmp(argv[1], "kafka") == 0)
		rc = run_kafka(argc - 1, argv + 1);
	else if (argc >= 2 && strcmp(argv[1], "fs") == 0)
		rc = run_fs(argc - 1, argv + 1);
	if (rc == 2)
		fprintf(stderr, "usage: chronik-load kafka PORT TOPIC PARTITIONS CONNS SECONDS [PID]\n"
				"       chronik-load fs DATAFILE READERS WRITERS SECONDS [PID]\n");
	fflush(stdout);
	return rc;
}
