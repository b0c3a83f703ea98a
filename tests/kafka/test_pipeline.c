/* test_pipeline.c - Produce requests written back to back on one socket
 * before any answer is read (listener.c, PIPELINING): answered in request
 * order with dense base offsets, acks=0 among them unanswered; a Fetch and
 * a ListOffsets pipelined after Produces see them; an idempotent
 * producer's pipelined batches keep their sequence order, retries and gaps
 * answered as when sent one by one; a client that half-closes after
 * writing still gets every answer; one that disconnects with requests in
 * flight loses nothing acknowledged, leaves the offsets dense, and what
 * was stored survives a restart. Last, the server's group-commit counters:
 * the pipelined Produces shared groups (fewer groups than appends), which
 * requests served one at a time under fsync every never do.
 *
 * Usage: test_kafka_pipeline KAFKA_SERVER_BINARY
 */
#include "batch.h"
#include "crc32c.h"
#include "kclient.h"

#define TOPIC "pipe"
#define PER_BATCH 3

static struct kserver srv;
static int32_t corr = 1000;
static char stats_path[300];

/* A batch of PER_BATCH records with producer fields (pid -1: none);
 * malloc'd. */
static uint8_t *make_batch(int64_t pid, int32_t seq, size_t *len)
{
	struct batch_builder b;
	uint8_t *out = NULL;
	char val[32];
	batch_builder_init(&b);
	for (int i = 0; i < PER_BATCH; i++) {
		snprintf(val, sizeof(val), "pipe-%d", i);
		struct record_in r = { 1700000000000 + i,    NULL, -1, val,
				       (int32_t)strlen(val), NULL, 0 };
		batch_builder_add(&b, &r);
	}
	if (batch_builder_finish(&b, &out, len) != 0)
		bail("batch_builder_finish");
	batch_builder_fini(&b);
	int16_t epoch = pid >= 0 ? 0 : -1;
	for (int i = 0; i < 8; i++)
		out[43 + i] = (uint8_t)((uint64_t)pid >> (56 - 8 * i));
	out[51] = (uint8_t)((uint16_t)epoch >> 8);
	out[52] = (uint8_t)epoch;
	kafka_put_be32(out + 53, (uint32_t)(pid >= 0 ? seq : -1));
	kafka_put_be32(out + 17, crc32c(0, out + 21, *len - 21));
	return out;
}

/* Append a framed Produce v7 of one batch to TOPIC/0 to all. */
static void add_produce(struct kafka_writer *all, struct kafka_writer *w, int32_t id, int16_t acks,
			const uint8_t *batch, size_t len)
{
	kc_begin(w, 0, 7, id, 0);
	kafka_write_string(w, false, NULL);
	kafka_write_i16(w, acks);
	kafka_write_i32(w, 5000);
	kc_write_one_partition(w, TOPIC, 0);
	kafka_write_bytes(w, false, batch, (int32_t)len);
	kafka_write_i32_at(w, 0, (int32_t)(w->len - 4));
	kafka_write_raw(all, w->buf, w->len);
}

/* Append a framed ListOffsets v1 (latest) of TOPIC/0 to all. */
static void add_list_latest(struct kafka_writer *all, struct kafka_writer *w, int32_t id)
{
	kc_begin(w, 2, 1, id, 0);
	kafka_write_i32(w, -1);
	kc_write_one_partition(w, TOPIC, 0);
	kafka_write_i64(w, -1);
	kafka_write_i32_at(w, 0, (int32_t)(w->len - 4));
	kafka_write_raw(all, w->buf, w->len);
}

/* Append a framed Fetch v4 of TOPIC/0 from offset (no wait) to all. */
static void add_fetch(struct kafka_writer *all, struct kafka_writer *w, int32_t id, int64_t offset)
{
	kc_begin(w, 1, 4, id, 0);
	kafka_write_i32(w, -1);
	kafka_write_i32(w, 0); /* max wait */
	kafka_write_i32(w, 0); /* min bytes */
	kafka_write_i32(w, 1 << 20);
	kafka_write_i8(w, 0);
	kc_write_one_partition(w, TOPIC, 0);
	kafka_write_i64(w, offset);
	kafka_write_i32(w, 1 << 20);
	kafka_write_i32_at(w, 0, (int32_t)(w->len - 4));
	kafka_write_raw(all, w->buf, w->len);
}

/* Read one response; its correlation id must be want. Returns the frame
 * (free it) with r after the correlation id, or NULL. */
static uint8_t *recv_answer(int fd, int32_t want, struct kafka_reader *r)
{
	uint8_t *buf;
	size_t n;
	if (kc_recv(fd, &buf, &n) < 0)
		return NULL;
	kafka_reader_init(r, buf, n);
	if (kafka_read_i32(r) != want) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Read a Produce v7 answer with correlation id want: its error code and
 * *base; -100 when missing, out of order or malformed. */
static int recv_produce(int fd, int32_t want, int64_t *base)
{
	struct kafka_reader r;
	uint8_t *buf = recv_answer(fd, want, &r);
	if (!buf)
		return -100;
	int16_t err = kc_read_one_partition(&r);
	*base = kafka_read_i64(&r);
	int bad = kafka_reader_failed(&r);
	free(buf);
	return bad ? -100 : err;
}

/* Read a ListOffsets v1 answer: the offset, or -100. */
static int64_t recv_list(int fd, int32_t want)
{
	struct kafka_reader r;
	uint8_t *buf = recv_answer(fd, want, &r);
	if (!buf)
		return -100;
	int16_t err = kc_read_one_partition(&r);
	kafka_read_i64(&r); /* timestamp */
	int64_t off = kafka_read_i64(&r);
	int bad = kafka_reader_failed(&r) || err;
	free(buf);
	return bad ? -100 : off;
}

/* Read a Fetch v4 answer: the high watermark, or -100; *dense whether its
 * batches, from `from` on, follow each other without a gap, and *end the
 * offset after the last one. */
static int64_t recv_fetch(int fd, int32_t want, int64_t from, int *dense, int64_t *end)
{
	struct kafka_reader r;
	uint8_t *buf = recv_answer(fd, want, &r);
	*dense = 0;
	*end = -1;
	if (!buf)
		return -100;
	kafka_read_i32(&r); /* throttle */
	int16_t err = kc_read_one_partition(&r);
	int64_t hw = kafka_read_i64(&r);
	kafka_read_i64(&r); /* LSO */
	int32_t na = kafka_read_array(&r, false, true, 16);
	kafka_read_skip(&r, (size_t)(na > 0 ? na : 0) * 16);
	struct kafka_str rec = kafka_read_bytes(&r, false, true);
	int bad = kafka_reader_failed(&r) || err;
	int64_t next = from;
	int ok_dense = 1;
	const uint8_t *p = (const uint8_t *)rec.ptr;
	size_t left = rec.len > 0 ? (size_t)rec.len : 0;
	while (!bad && left >= 61) {
		int64_t base =
			(int64_t)(((uint64_t)kafka_get_be32(p) << 32) | kafka_get_be32(p + 4));
		uint32_t blen = kafka_get_be32(p + 8);
		int32_t delta = (int32_t)kafka_get_be32(p + 23);
		if ((size_t)blen + 12 > left)
			break; /* a partial batch at the end */
		if (base != next)
			ok_dense = 0;
		next = base + delta + 1;
		p += blen + 12;
		left -= blen + 12;
	}
	*dense = ok_dense;
	*end = next;
	free(buf);
	return bad ? -100 : hw;
}

static int64_t init_producer_id(int fd, struct kafka_writer *w)
{
	struct kafka_reader r;
	kc_begin(w, 22, 1, ++corr, 0);
	kafka_write_string(w, false, NULL);
	kafka_write_i32(w, 60000);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	int16_t err = kafka_read_i16(&r);
	int64_t pid = kafka_read_i64(&r);
	int bad = !buf || kafka_reader_failed(&r) || err;
	free(buf);
	return bad ? -1 : pid;
}

/* The log end of TOPIC/0 on a new connection. */
static int64_t log_end(struct kafka_writer *w)
{
	struct kafka_writer all;
	int fd = kc_connect(srv.port, 30);
	if (fd < 0)
		return -100;
	kafka_writer_init(&all, 0);
	add_list_latest(&all, w, ++corr);
	int64_t end = kc_send_all(fd, all.buf, all.len) < 0 ? -100 : recv_list(fd, corr);
	kafka_writer_fini(&all);
	close(fd);
	return end;
}

/* CreateTopics v4 of TOPIC, one partition: the error code, or -100. */
static int create_topic(int fd, struct kafka_writer *w)
{
	struct kafka_reader r;
	kc_begin(w, 19, 4, ++corr, 0);
	kafka_write_array(w, false, 1);
	kafka_write_string(w, false, TOPIC);
	kafka_write_i32(w, 1);
	kafka_write_i16(w, -1);
	kafka_write_array(w, false, 0);
	kafka_write_array(w, false, 0);
	kafka_write_i32(w, 1000);
	kafka_write_bool(w, false);
	uint8_t *buf = kc_roundtrip(fd, w, &r);
	kafka_read_i32(&r);
	kafka_read_array(&r, false, false, 0);
	kafka_read_string(&r, false, false);
	int16_t err = kafka_read_i16(&r);
	int bad = !buf || kafka_reader_failed(&r);
	free(buf);
	return bad ? -100 : err;
}

/* 40 Produces, the 21st with acks=0, in one write: 39 answers in order,
 * base offsets 3 apart from the first, the acks=0 one's batch in its place. */
static int64_t test_in_order(int fd, struct kafka_writer *w)
{
	struct kafka_writer all;
	size_t len;
	uint8_t *b = make_batch(-1, 0, &len);
	int32_t first = corr + 1;
	kafka_writer_init(&all, 0);
	for (int i = 0; i < 40; i++)
		add_produce(&all, w, ++corr, i == 20 ? 0 : -1, b, len);
	ok(kc_send_all(fd, all.buf, all.len) == 0, "40 Produce requests written at once");
	int in_order = 1, dense = 1;
	int64_t start = -1, base;
	for (int i = 0; i < 40; i++) {
		if (i == 20)
			continue;
		int err = recv_produce(fd, first + i, &base);
		if (err != 0) {
			diag("answer %d: error %d", i, err);
			in_order = 0;
			break;
		}
		if (i == 0)
			start = base;
		if (base != start + (int64_t)i * PER_BATCH) {
			diag("answer %d: base %lld, want %lld", i, (long long)base,
			     (long long)(start + i * PER_BATCH));
			dense = 0;
		}
	}
	ok(in_order, "39 answers, in request order, none for acks=0");
	ok(in_order && dense, "base offsets dense in request order (acks=0's batch in its place)");
	kafka_writer_fini(&all);
	free(b);
	return start + 40 * PER_BATCH;
}

/* Produces, then a Fetch and a ListOffsets, in one write. */
static int64_t test_read_after(int fd, struct kafka_writer *w, int64_t start)
{
	struct kafka_writer all;
	size_t len;
	uint8_t *b = make_batch(-1, 0, &len);
	int32_t first = corr + 1;
	kafka_writer_init(&all, 0);
	for (int i = 0; i < 5; i++)
		add_produce(&all, w, ++corr, -1, b, len);
	add_fetch(&all, w, ++corr, start);
	add_list_latest(&all, w, ++corr);
	kc_send_all(fd, all.buf, all.len);
	int64_t base;
	int produced = 1;
	for (int i = 0; i < 5; i++)
		if (recv_produce(fd, first + i, &base) != 0 || base != start + i * PER_BATCH)
			produced = 0;
	ok(produced, "5 pipelined Produces appended from %lld", (long long)start);
	int dense;
	int64_t end;
	int64_t hw = recv_fetch(fd, first + 5, start, &dense, &end);
	int64_t want = start + 5 * PER_BATCH;
	ok(hw == want && end == want && dense,
	   "a Fetch pipelined after them sees all of them (hw %lld, last %lld, want %lld)",
	   (long long)hw, (long long)end, (long long)want);
	int64_t latest = recv_list(fd, first + 6);
	ok(latest == want, "so does a ListOffsets after the Fetch (%lld)", (long long)latest);
	kafka_writer_fini(&all);
	free(b);
	return want;
}

/* An idempotent producer with 5 requests in flight. */
static int64_t test_idempotent(int fd, struct kafka_writer *w, int64_t start)
{
	struct kafka_writer all;
	uint8_t *b[6];
	size_t len[6];
	int64_t base;
	int64_t pid = init_producer_id(fd, w);
	ok(pid >= 0, "InitProducerId");
	for (int i = 0; i < 6; i++)
		b[i] = make_batch(pid, i * PER_BATCH, &len[i]);

	/* Sequences 0, 3, ... 12 in one write. */
	kafka_writer_init(&all, 0);
	int32_t first = corr + 1;
	for (int i = 0; i < 5; i++)
		add_produce(&all, w, ++corr, -1, b[i], len[i]);
	kc_send_all(fd, all.buf, all.len);
	int in_seq = 1;
	for (int i = 0; i < 5; i++)
		if (recv_produce(fd, first + i, &base) != 0 || base != start + i * PER_BATCH)
			in_seq = 0;
	ok(in_seq, "5 pipelined idempotent batches stored in sequence order, dense");

	/* The next one, a retry of the third, a gap, then the next again:
	 * the retry is never stored twice, the gap refused. */
	kafka_writer_reset(&all);
	first = corr + 1;
	size_t gap_len;
	uint8_t *gap = make_batch(pid, 100, &gap_len);
	add_produce(&all, w, ++corr, -1, b[5], len[5]);
	add_produce(&all, w, ++corr, -1, b[2], len[2]);
	add_produce(&all, w, ++corr, -1, gap, gap_len);
	add_produce(&all, w, ++corr, -1, b[5], len[5]);
	kc_send_all(fd, all.buf, all.len);
	int e0 = recv_produce(fd, first, &base);
	ok(e0 == 0 && base == start + 5 * PER_BATCH, "the sixth batch follows (%d, %lld)", e0,
	   (long long)base);
	int e1 = recv_produce(fd, first + 1, &base);
	ok(e1 == 0 && base == start + 2 * PER_BATCH,
	   "a pipelined retry of the third gets its offset (%d, %lld)", e1, (long long)base);
	int e2 = recv_produce(fd, first + 2, &base);
	ok(e2 == 45, "a pipelined sequence gap gets 45 (%d)", e2);
	int e3 = recv_produce(fd, first + 3, &base);
	ok(e3 == 0 && base == start + 5 * PER_BATCH,
	   "the sixth again, right behind itself, is a retry (%d, %lld)", e3, (long long)base);
	int64_t end = log_end(w);
	ok(end == start + 6 * PER_BATCH, "each batch stored once (log end %lld, want %lld)",
	   (long long)end, (long long)(start + 6 * PER_BATCH));
	kafka_writer_fini(&all);
	for (int i = 0; i < 6; i++)
		free(b[i]);
	free(gap);
	return start + 6 * PER_BATCH;
}

/* A client writes 30 Produces and shuts its side down: all 30 answered. */
static int64_t test_half_close(struct kafka_writer *w, int64_t start)
{
	struct kafka_writer all;
	size_t len;
	uint8_t *b = make_batch(-1, 0, &len);
	int fd = kc_connect(srv.port, 30);
	if (fd < 0)
		bail("connect");
	kafka_writer_init(&all, 0);
	int32_t first = corr + 1;
	for (int i = 0; i < 30; i++)
		add_produce(&all, w, ++corr, -1, b, len);
	kc_send_all(fd, all.buf, all.len);
	shutdown(fd, SHUT_WR);
	int answered = 0;
	int64_t base;
	for (int i = 0; i < 30; i++)
		if (recv_produce(fd, first + i, &base) == 0 && base == start + i * PER_BATCH)
			answered++;
	ok(answered == 30, "written then half-closed: %d of 30 answered, in order", answered);
	ok(kc_closed(fd), "then the server closes");
	close(fd);
	kafka_writer_fini(&all);
	free(b);
	return start + 30 * PER_BATCH;
}

/* A client writes 30 Produces, reads 5 answers and closes abruptly. */
static int64_t test_disconnect(struct kafka_writer *w, int64_t start)
{
	struct kafka_writer all;
	size_t len;
	uint8_t *b = make_batch(-1, 0, &len);
	int fd = kc_connect(srv.port, 30);
	if (fd < 0)
		bail("connect");
	kafka_writer_init(&all, 0);
	int32_t first = corr + 1;
	for (int i = 0; i < 30; i++)
		add_produce(&all, w, ++corr, -1, b, len);
	kc_send_all(fd, all.buf, all.len);
	int64_t base;
	int acked = 0;
	for (int i = 0; i < 5; i++)
		if (recv_produce(fd, first + i, &base) == 0 && base == start + i * PER_BATCH)
			acked++;
	ok(acked == 5, "5 answers read before closing");
	/* Unread data at close: the kernel resets the connection. */
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);

	/* A new connection's Fetch and ListOffsets run after the closed
	 * one's appends only once they ended: wait for the log end to stop
	 * moving past the acknowledged ones, then check. */
	int64_t end = -100, prev;
	do {
		prev = end;
		usleep(200000);
		end = log_end(w);
	} while (end != prev && end >= 0);
	ok(end >= start + 5 * PER_BATCH && end <= start + 30 * PER_BATCH &&
		   (end - start) % PER_BATCH == 0,
	   "nothing acknowledged lost, whole batches only (log end %lld)", (long long)end);

	fd = kc_connect(srv.port, 30);
	kafka_writer_reset(&all);
	add_fetch(&all, w, ++corr, 0);
	kc_send_all(fd, all.buf, all.len);
	int dense;
	int64_t last;
	int64_t hw = recv_fetch(fd, corr, 0, &dense, &last);
	ok(hw == end && last == end && dense, "offsets 0..%lld dense (hw %lld, last %lld)",
	   (long long)end, (long long)hw, (long long)last);
	close(fd);
	kafka_writer_fini(&all);
	free(b);
	return end;
}

/* The group-commit counters the server writes at stop. */
static int read_stats(uint64_t *appends, uint64_t *groups)
{
	FILE *f = fopen(stats_path, "r");
	if (!f)
		return -1;
	unsigned long long a, g;
	int n = fscanf(f, "appends %llu groups %llu", &a, &g);
	fclose(f);
	*appends = a;
	*groups = g;
	return n == 2 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		tap_skip_all("no kafka_server binary given");
	snprintf(srv.dir, sizeof(srv.dir), "%s/chronik-pipe.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(srv.dir))
		bail("mkdtemp");
	snprintf(stats_path, sizeof(stats_path), "%s/stats", srv.dir);
	const char *const args[] = { "--partitions", "1", "--fsync", "every", "--stats",
				     stats_path, NULL };
	kserver_start(&srv, argv[1], args);

	struct kafka_writer w;
	kafka_writer_init(&w, 0);
	int fd = kc_connect(srv.port, 30);
	if (fd < 0)
		bail("connect");
	ok(create_topic(fd, &w) == 0, "topic " TOPIC " created");
	int64_t at = test_in_order(fd, &w);
	at = test_read_after(fd, &w, at);
	at = test_idempotent(fd, &w, at);
	close(fd);
	at = test_half_close(&w, at);
	at = test_disconnect(&w, at);

	ok(kserver_stop(&srv) == 0, "the server stops cleanly");
	uint64_t appends = 0, groups = 0;
	int have_stats = read_stats(&appends, &groups) == 0;
	ok(have_stats && groups < appends,
	   "pipelined Produces shared group commits (%llu appends in %llu groups)",
	   (unsigned long long)appends, (unsigned long long)groups);
	kserver_start(&srv, argv[1], args);
	ok(log_end(&w) == at, "after a restart the log ends where it did (%lld)", (long long)at);
	kafka_writer_fini(&w);
	kserver_cleanup(&srv);
	return tap_exit();
}
